"""Where a served model comes from: a source says which bundle (or, under a traffic split, which
bundles) should be served and makes them local; :mod:`gitml.serve.follow` polls it and swaps."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gitml.serve.traffic import Split
from gitml.utils.storage import join

if TYPE_CHECKING:
    from gitml.serve.objectstore import FetchedVersions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A bundle to serve: ``key`` changes whenever the source changes."""

    key: str
    version: str | None
    path: Path | None = None  # None until materialised (registry sources fetch on demand)
    split: Split | None = None  # a deployment's traffic split: ``parts`` are its versions
    parts: tuple[Target, ...] = ()


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
        from gitml.serve.deployment import VERSIONS, read_pointer, read_split

        found = read_split(self.target)  # a split, when there is one, says what to serve
        if found is not None:
            split, key = found
            parts, self._urls = [], {}
            for version in split.loaded:
                where = join(self.target, VERSIONS, version)
                if isinstance(where, str):
                    self._urls[f"{version}|{where}"] = where
                    parts.append(Target(f"{version}|{where}", version))
                else:
                    parts.append(Target(f"{version}|{where}", version, where.resolve()))
            return Target(f"split|{key}", split.stable, split=split, parts=tuple(parts))
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
