"""Real tiny bundles trained once per session, and real servers in subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.serve.bundles import ROOT, TINY, train_bundle
from tests.projects import built_once

SERVE_PARAMS = ("serve.follow_interval_seconds=0.2", "serve.log_flush_seconds=0.5")


@dataclass
class Trained:
    mlp: Path  # breast_cancer, the reference instance's default model
    logreg: Path  # same data and signature, another model: a second version to swap to
    synthetic: Path  # numeric and categorical inputs
    prepared: Path  # data/prepared of the breast_cancer runs
    params: Path  # params.yaml for breast_cancer with quick serve.* settings
    synthetic_params: Path


SYNTHETIC = ("data=synthetic", "data.source.synthetic.n_rows=800")


def train_all(work: Path) -> None:
    """The bundles and params files of :class:`Trained`, under ``work``."""
    from gitml.config.compose import compose, write_params

    train_bundle(work / "mlp")
    train_bundle(work / "logreg", ("model=logreg",), prepared=work / "mlp/data/prepared")
    train_bundle(work / "synthetic", SYNTHETIC)
    write_params(compose(ROOT / "conf", [*TINY, *SERVE_PARAMS]), work / "params.yaml")
    write_params(compose(ROOT / "conf", [*TINY, *SERVE_PARAMS, *SYNTHETIC]), work / "synthetic-params.yaml")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    """Trained once per run for both xdist workers (about 10 s of CPU each time): read, never write."""
    work = built_once(tmp_path_factory, "serve-bundles", train_all)
    bundle = Path("models/bundle")
    return Trained(work / "mlp" / bundle, work / "logreg" / bundle, work / "synthetic" / bundle,
                   work / "mlp/data/prepared", work / "params.yaml", work / "synthetic-params.yaml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``gitml serve`` in a subprocess on a free loopback port."""

    def __init__(self, cwd: Path, *args: str | Path):
        self.cwd, self.port = cwd, free_port()
        flags = list(map(str, args))
        self.workers = int(flags[flags.index("--workers") + 1]) if "--workers" in flags else 1
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = cwd / f"server-{self.port}.log"
        with open(self.output, "wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gitml", "serve", *map(str, args), "--port", str(self.port)],
                cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_ready(self, timeout: float = 90) -> Server:
        """Until /ping answers and, under ``--workers N``, every worker has started: the first one
        answers while the others may still be loading (and would load a version published meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if (httpx.get(f"{self.url}/ping", timeout=1).status_code == 200
                        and self.log().count("Application startup complete") >= self.workers):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def signal(self, number: int) -> None:
        self.proc.send_signal(number)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_server():
    """Start servers that are stopped (SIGTERM, then SIGKILL) at teardown."""
    servers: list[Server] = []

    def start(cwd: Path, *args: str | Path, ready: bool = True) -> Server:
        server = Server(cwd, *args)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in servers:
        server.stop()
