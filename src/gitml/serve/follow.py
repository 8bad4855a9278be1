"""Where the served model comes from, and the background reloader that follows it.

A source says which bundle should be served: a fixed folder (``--bundle``), a deployment
folder's or ``s3://`` URL's ``current.json`` (``--deployment``) or a registry stage (``--stage``). The
:class:`Follower` thread polls it every ``serve.follow_interval_seconds`` (with
``--follow``) and on SIGHUP (always). A reload loads, verifies and warms the new bundle in
that thread, off the request path, then swaps the one reference requests read. A bundle
that fails is refused and remembered (not retried until the source changes again or
SIGHUP), the old model keeps serving, and the failure is logged and counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from gitml.serve.model import ModelHolder, ServedModel
from gitml.serve.sources import BundleSource, DeploymentSource, RegistrySource, Source, Target
from gitml.serve.traffic import Routes

__all__ = ["BundleSource", "DeploymentSource", "Follower", "RegistrySource", "Source", "Target"]
log = logging.getLogger(__name__)


class Follower:
    """Loads the first model, then reloads in a background thread on change or SIGHUP."""

    def __init__(self, source: Source, interval: float, follow: bool,
                 on_swap: Callable[[ServedModel], None] | None = None,
                 on_failure: Callable[[Exception], None] | None = None, name: str | None = None):
        self.source, self.interval, self.follow = source, interval, follow
        self.name = name  # the name the model is served under, when one of several (else the bundle's)
        self.on_swap, self.on_failure = on_swap, on_failure
        self.holder: ModelHolder | None = None
        self._key: str | None = None
        self._refused: set[str] = set()
        self._wake = threading.Event()
        self._forced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: str | None = None
        self._paths: set[Path] = set()  # where the served models were loaded from

    def load_initial(self) -> ModelHolder:
        """Load what the source names now; errors propagate (the server does not start)."""
        try:
            target = self.source.current()
            model, routes, paths = self._load(target)
        except Exception:
            self.source.close()  # the server does not start: leave nothing behind
            raise
        self._key, self._paths = target.key, paths
        self.holder = ModelHolder(model, routes)
        return self.holder

    def hangup(self) -> None:
        """SIGHUP: re-read the source and reload even if it did not change (safe in a signal handler)."""
        self._forced.set()
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"gitml-follower-{self.name or ''}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.source.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval if self.follow else None)
            self._wake.clear()
            if self._stop.is_set():
                break
            forced = self._forced.is_set()
            self._forced.clear()
            if forced or self.follow:
                self.check(forced)

    def check(self, forced: bool = False) -> bool:
        """Poll the source once; reload when it changed (or ``forced``). True when a swap happened."""
        try:
            target = self.source.current()
        except Exception as exc:
            if str(exc) != self._warned:
                log.warning("cannot read %s: %s; still serving the current model", self.source.describe(), exc)
                self._warned = str(exc)
            return False
        self._warned = None
        if not forced and (target.key == self._key or target.key in self._refused):
            return False
        return self.reload(target)

    def reload(self, target: Target) -> bool:
        assert self.holder is not None
        try:
            model, routes, paths = self._load(target)
        except Exception as exc:
            self._refused.add(target.key)
            log.error("refusing %s %s from %s: %s; still serving %s", self.holder.current.name,
                      target.version or "", self.source.describe(), exc, self.holder.current.version)
            if self.on_failure:
                self.on_failure(exc)
            return False
        self._key = target.key
        self._refused.discard(target.key)
        self.holder.swap(model, routes)
        old, self._paths = self._paths, paths
        for path in old - paths:  # requests in flight hold the old models in memory
            self.source.forget(path)
        if self.on_swap:
            self.on_swap(model)
        return True

    def _load(self, target: Target) -> tuple[ServedModel, Routes | None, set[Path]]:
        """The model (and under a split, the routes over every version it names) and the paths they came
        from. A version the current routes hold is reused as it is (published versions are immutable),
        so a change of weights loads nothing; on failure, whatever was made here for it is forgotten."""
        parts = target.parts if target.split is not None else (target,)
        holding: dict[str, ServedModel] = {}
        if target.split is not None and self.holder is not None:
            held = self.holder.routes.models if self.holder.routes else {}
            holding = {self.holder.current.version: self.holder.current, **held}
        models: dict[str, ServedModel] = {}
        paths: set[Path] = set()
        try:
            for part in parts:
                path = self.source.materialise(part)
                paths.add(path)
                same = holding.get(part.version or "")
                models[part.version or ""] = (same if same is not None and same.path == path
                                              else self._loaded(part, path))
        except Exception:
            for path in paths - self._paths:
                self.source.forget(path)
            raise
        if target.split is None:
            return next(iter(models.values())), None, paths
        routes = Routes(target.split, models)
        return routes.primary, routes, paths

    def _loaded(self, target: Target, path: Path) -> ServedModel:
        return ServedModel.load(path, target.version, f"{self.source.describe()} ({path})", self.name)
