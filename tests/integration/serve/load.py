"""Background traffic for serving tests: clients sending requests in a loop, every answer recorded,
and waits on what a server shows (its answers, its /metrics) that say which part failed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

Send = Callable[[httpx.Client, int, int], httpx.Response]  # (client, its slot, its request count) -> response


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic() when the request was sent
    status: int
    version: str  # x-model-version
    request_id: str  # x-request-id


class Load:
    """``clients`` threads, each on its own connection, calling ``send`` until the ``with`` block ends.

    Every answer is recorded in order (:attr:`answers`); a transport error or a status other than
    200 is also an :attr:`errors` line. ``stop_on_error``: a client stops at its first transport
    error (the server was told to stop). ``pause``: seconds each client waits between requests.
    """

    def __init__(self, url: str, send: Send, clients: int = 1, pause: float = 0.0, stop_on_error: bool = False):
        self.url, self.send, self.pause, self.stop_on_error = url, send, pause, stop_on_error
        self.answers: list[Answer] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    @property
    def versions(self) -> list[str]:
        """The version of each answer, in order."""
        return [answer.version for answer in self.answers]

    def _run(self, slot: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            count = 0
            while not self._stop.is_set():
                count += 1
                started = time.monotonic()
                try:
                    response = self.send(client, slot, count)
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    if self.stop_on_error:
                        return
                    continue
                self.answers.append(Answer(started, response.status_code, response.headers.get("x-model-version", ""),
                                           response.headers.get("x-request-id", "")))
                if response.status_code != 200:
                    self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                if self.pause:
                    time.sleep(self.pause)


def wait_for_swap(load: Load, version: str, what: str, timeout: float = 60) -> None:
    """Until ``load``'s last 20 answers all come from ``version``: under ``--workers 2``, both workers
    (unless every one of those connections went to one worker: see :func:`wait_for_metric`)."""
    deadline = time.monotonic() + timeout
    while load.versions[-20:] != [version] * 20:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not swap to {version} in {timeout} s: {load.versions[-20:]}")
        time.sleep(0.05)


def wait_for_metric(url: str, line: str, timeout: float = 60) -> str:
    """``/metrics`` once it shows ``line`` (each worker swaps on its own follower's poll, up to a
    second apart on a loaded machine); else a failure showing the reload and model lines."""
    deadline = time.monotonic() + timeout
    while line not in (metrics := httpx.get(f"{url}/metrics", timeout=30).text):
        if time.monotonic() > deadline:
            shown = [m for m in metrics.splitlines() if "reload" in m or "model_info" in m]
            pytest.fail("\n".join([f"no {line!r} in /metrics after {timeout} s:", *shown]))
        time.sleep(0.1)
    return metrics
