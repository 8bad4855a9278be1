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
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gitml.serve.model import ModelHolder, ServedModel

if TYPE_CHECKING:
    from gitml.serve.objectstore import FetchedVersions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A bundle to serve: ``key`` changes whenever the source changes."""

    key: str
    version: str | None
    path: Path | None = None  # None until materialised (registry sources fetch on demand)


class Source(Protocol):
    def describe(self) -> str: ...

    def current(self) -> Target: ...

    def materialise(self, target: Target) -> Path: ...

    def forget(self, path: Path) -> None:
        """``path`` (from :meth:`materialise`) is no longer served: remove it if the source made it."""

    def close(self) -> None:
        """The server is stopping: remove whatever the source made."""


class _OperatorFolders:
    """A source serving folders the operator owns (or a deployment's published versions, kept
    for rollbacks): nothing to remove, ever."""

    def forget(self, path: Path) -> None:
        pass

    def close(self) -> None:
        pass


class BundleSource(_OperatorFolders):
    """A fixed bundle folder; only SIGHUP reloads it (e.g. after replacing it in place)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def describe(self) -> str:
        return f"bundle {self.path}"

    def current(self) -> Target:
        return Target(f"bundle|{self.path.resolve()}", None, self.path)

    def materialise(self, target: Target) -> Path:
        return self.path


class DeploymentSource:
    """A deployment's ``current.json`` (see :mod:`gitml.serve.deployment`): a folder, whose
    published versions are served in place, or an ``s3://`` URL, whose versions are fetched
    into a temporary folder of the source's own (only the served one is kept)."""

    def __init__(self, target: str | Path):
        from gitml.utils.storage import location

        self.target = location(target, "deployment target")
        self._urls: dict[str, str] = {}  # key -> the URL of the version the pointer names
        self._fetched: FetchedVersions | None = None
        if isinstance(self.target, str):
            from gitml.serve.objectstore import FetchedVersions

            self._fetched = FetchedVersions()

    def describe(self) -> str:
        return f"deployment {self.target}"

    def current(self) -> Target:
        from gitml.serve.deployment import read_pointer

        pointer = read_pointer(self.target)
        if isinstance(pointer.path, str):
            self._urls = {pointer.key: pointer.path}
            return Target(pointer.key, pointer.version)
        return Target(pointer.key, pointer.version, pointer.path)

    def materialise(self, target: Target) -> Path:
        if self._fetched is None or target.path is not None:
            assert target.path is not None
            return target.path
        assert target.version is not None
        return self._fetched.fetch(target.version, self._urls[target.key])

    def forget(self, path: Path) -> None:
        if self._fetched is not None and self._fetched.holds(path):
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        if self._fetched is not None:
            shutil.rmtree(self._fetched.cache, ignore_errors=True)


class RegistrySource:
    """The version a registry stage points at (GTO tags), fetched through DVC when it changes."""

    def __init__(self, repo: str | Path, name: str, stage: str, remote: str | None = None,
                 cache: str | Path | None = None, allowed_signers: str | Path | None = None):
        self.repo, self.name, self.stage, self.remote = Path(repo), name, stage, remote
        # A stage in registry.signed_stages: its assignment tag must verify against this file.
        self.allowed_signers = Path(allowed_signers) if allowed_signers else None
        # Fetched bundles live here; only the served one is kept, and a folder made here goes at close.
        self.cache = Path(cache) if cache else Path(tempfile.mkdtemp(prefix="gitml-serve-"))
        self._owns_cache = cache is None
        self._fetch_failure: str | None = None

    def describe(self) -> str:
        return f"registry {self.name}#{self.stage} in {self.repo}"

    def current(self) -> Target:
        from gitml.errors import GitmlError
        from gitml.registry.tags import stage_version, sync_stage_tags

        if self.remote:
            try:
                # Fetching never deletes a tag: a rollback made by deleting an assignment tag on
                # the remote reaches the host only through the sync. A stage tag the remote never
                # held (a local promotion on the host) is left alone.
                sync_stage_tags(self.repo, self.remote, self.name, keep_unrecorded=True)
            except Exception as exc:
                # The local tags still name a version, so serving goes on; but say so (once per
                # failure), or a host that can never fetch would never follow a promotion.
                if str(exc) != self._fetch_failure:
                    log.warning("cannot fetch tags from '%s' <registry.remote>: %s; following the tags "
                                "already in %s", self.remote, exc, self.repo)
                self._fetch_failure = str(exc)
            else:
                self._fetch_failure = None
        found = stage_version(self.repo, self.name, self.stage)
        if found is None:
            raise GitmlError(f"No version of '{self.name}' is in stage '{self.stage}'. See `gitml registry show`.")
        if self.allowed_signers is not None:
            from gitml.registry.signing import check_stage_signed

            check_stage_signed(self.repo, self.name, self.stage, found.tag, self.allowed_signers)
        return Target(f"{found.version}|{found.commit}", found.version)

    def materialise(self, target: Target) -> Path:
        from gitml.registry.fetch import fetch_bundle

        assert target.version is not None
        out = self.cache / target.version
        if not out.is_dir():  # fetch moves a verified bundle into place whole, or leaves nothing
            # With the remote, the version's commit must be on its default branch (registry/chain.py).
            fetch_bundle(self.repo, self.name, out, version=target.version, remote=self.remote)
        return out

    def forget(self, path: Path) -> None:
        if path.parent == self.cache:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        if self._owns_cache:
            shutil.rmtree(self.cache, ignore_errors=True)


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
        self._path: Path | None = None  # where the served model was loaded from

    def load_initial(self) -> ModelHolder:
        """Load what the source names now; errors propagate (the server does not start)."""
        try:
            target = self.source.current()
            self._path = self.source.materialise(target)
            model = self._loaded(target, self._path)
        except Exception:
            self.source.close()  # the server does not start: leave nothing behind
            raise
        self._key = target.key
        self.holder = ModelHolder(model)
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
        path = None
        try:
            path = self.source.materialise(target)
            model = self._loaded(target, path)
        except Exception as exc:
            if path is not None and path != self._path:
                self.source.forget(path)
            self._refused.add(target.key)
            log.error("refusing %s %s from %s: %s; still serving %s", self.holder.current.name,
                      target.version or "", self.source.describe(), exc, self.holder.current.version)
            if self.on_failure:
                self.on_failure(exc)
            return False
        self._key = target.key
        self._refused.discard(target.key)
        self.holder.swap(model)
        old, self._path = self._path, path
        if old is not None and old != path:  # requests in flight hold the old model in memory
            self.source.forget(old)
        if self.on_swap:
            self.on_swap(model)
        return True

    def _loaded(self, target: Target, path: Path) -> ServedModel:
        return ServedModel.load(path, target.version, f"{self.source.describe()} ({path})", self.name)
