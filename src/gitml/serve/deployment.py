"""The deployment folder that ``gitml serve --follow --deployment DIR`` watches.

Layout::

    <target>/
      current.json            {"version": "v1.2.0", "path": "versions/v1.2.0", "deployed_at": "...Z"}
      traffic.json            optional: a split over published versions and a shadow (serve/traffic.py)
      versions/<version>/     one verified bundle per published version (immutable)

:func:`publish` copies a bundle into ``versions/<version>/`` (temporary folder, verified,
renamed into place), then replaces ``current.json`` atomically (temporary file +
``os.replace``), so a reader sees either the old pointer or the new one, and the folder a
pointer names is always complete. :func:`activate` points back at a version already
published (a rollback). :func:`publish_split` writes ``traffic.json`` (weights per version, a
shadow), then points current.json at its stable version, for servers that read no split; once
a target has a split, publish and activate rewrite it to 100% of their version, so the
split never names a version the pointer moved away from. A target may also be an ``s3://bucket/prefix`` URL, with the same
layout (:mod:`gitml.serve.objectstore`; docs/storage.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gitml.errors import BundleError, DeploymentError, GitmlError
from gitml.package.bundle import Bundle, load_bundle
from gitml.package.manifest import verify_manifest
from gitml.serve.traffic import TRAFFIC, Split
from gitml.utils.atomic import atomic_path, write_text
from gitml.utils.storage import Location, join, location, read_bytes, write_bytes

log = logging.getLogger(__name__)
POINTER, VERSIONS = "current.json", "versions"
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


@dataclass(frozen=True)
class Pointer:
    """What ``current.json`` says: the version to serve and where its bundle is."""

    version: str
    path: Path | str  # absolute local folder, or the version's URL on object storage
    deployed_at: str

    @property
    def key(self) -> str:
        """Changes whenever a publish or rollback happens, even to the same version."""
        return f"{self.version}|{self.path}|{self.deployed_at}"


def read_pointer(target: str | Path) -> Pointer:
    """Read and check ``<target>/current.json``; raises DeploymentError naming what is wrong."""
    target = _target(target)
    file = join(target, POINTER)
    try:
        raw = file.read_bytes() if isinstance(file, Path) else read_bytes(file)
    except FileNotFoundError:
        raw = None
    except OSError as exc:
        raise DeploymentError(f"Cannot read {file}: {exc}") from exc
    if raw is None:
        raise DeploymentError(f"No deployment in '{target}': {POINTER} is missing. "
                              f"Publish one with `gitml deploy --bundle DIR --target {target} --version vX`.")
    try:
        data = json.loads(raw.decode("utf-8"))
        version, relative, deployed_at = str(data["version"]), str(data["path"]), str(data.get("deployed_at", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"'{file}' is not a deployment pointer ({exc}); expected "
                              '{"version", "path", "deployed_at"}.') from exc
    check_version(version)
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts or (isinstance(target, str) and "\\" in relative):
        raise DeploymentError(f"'{file}': path '{relative}' must be relative and stay inside {target}.")
    if isinstance(target, str):
        return Pointer(version, str(join(target, path.as_posix())), deployed_at)
    return Pointer(version, (target / path).resolve(), deployed_at)


def _target(target: str | Path) -> Location:
    """A deployment target: a local folder, or an object-storage URL (checked)."""
    return location(target, "deployment target")


def check_version(version: str) -> str:
    if not VERSION.fullmatch(version):
        raise DeploymentError(f"Invalid version '{version[:80]}': use letters, digits and . _ + - "
                              "(at most 64, starting with a letter or digit), e.g. v1.2.0.")
    return version


@dataclass(frozen=True)
class GateEvidence:
    """The gate verdict a deploy is checked against, and where it was read."""

    verdict: Any  # parsed gate.json; None when there is none
    where: str

    def problems(self, bundle: Bundle) -> list[str]:
        """Why the verdict does not admit ``bundle`` (empty when it does: a pass naming this bundle)."""
        from gitml.gate.report import verdict_problems

        if self.verdict is None:
            return [f"there is no gate verdict at {self.where} (run the pipeline's gate: `dvc repro`)"]
        return verdict_problems(self.verdict, bundle, self.where)


def gate_evidence(version: str, gate_file: Path | None = None, repo: Path = Path("."),
                  model: str | None = None) -> GateEvidence:
    """The verdict that must admit the bundle published as ``version``.

    ``gate_file`` when given; else, when ``version`` of ``model`` is registered in ``repo``,
    the gate report (``paths.gate``) at that version's commit, as that commit's params.yaml
    places it (what the registry promoted it on); else the one in ``repo``'s working tree,
    as its params.yaml places it (the bundle ``dvc repro`` just judged).
    """
    from gitml.config.paths import paths_in
    from gitml.registry.chain import file_at, paths_at

    if gate_file is None and model is not None:
        from gitml.gitops.git import repo_root
        from gitml.registry.tags import find_version

        try:
            found = find_version(repo_root(repo), model, version)
        except GitmlError:
            found = None
        if found is not None:
            report = paths_at(repo, found.commit, model).gate
            where = f"{report} at {found.commit[:10]} ({model} {version})"
            return GateEvidence(_json_or_none(file_at(repo, found.commit, report), where), where)
    path = gate_file if gate_file is not None else repo / paths_in(repo, model).gate
    raw = path.read_bytes() if path.is_file() else None
    return GateEvidence(_json_or_none(raw, str(path)), str(path))


def _json_or_none(raw: bytes | None, where: str) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise DeploymentError(f"The gate verdict {where} is not JSON ({exc}).") from exc


def publish(bundle: Bundle | str | Path, target: str | Path, version: str,
            gate: GateEvidence | None = None, point: bool = True) -> Path | str:
    """Copy the bundle into ``<target>/versions/<version>``, verify it, then point current.json at it.

    Publishing the same bundle under the same version again only moves the pointer;
    a different bundle under a published version is refused (versions are immutable).
    With ``gate`` (what ``gitml deploy`` passes), a bundle the verdict does not admit is
    refused (:meth:`GateEvidence.problems`). With ``point=False`` the version is published and
    nothing else changes (a version a traffic split names next).

    Example:
        >>> publish("models/bundle", "/srv/gitml/model", "v1.2.0")
        PosixPath('/srv/gitml/model/versions/v1.2.0')
    """
    check_version(version)
    target = _target(target)
    if not isinstance(bundle, Bundle):
        try:
            bundle = load_bundle(bundle, model=False)
        except BundleError as exc:
            raise DeploymentError(f"Refusing to publish '{bundle}': {exc}") from exc
    source = bundle.path
    if gate is not None:
        problems = gate.problems(bundle)
        if problems:
            raise DeploymentError(f"Refusing to publish '{source}': " + "; ".join(problems)
                                  + ". Deploy only what the gate passed.")
    dest = join(target, VERSIONS, version)
    if isinstance(dest, str):
        _publish_remote(bundle, dest, version, target)
    elif dest.exists():
        if _published_files(dest) != bundle.manifest["files"]:
            raise _immutable(version, target)
    else:
        with atomic_path(dest) as tmp:
            shutil.copytree(source, tmp)
            load_bundle(tmp)  # verify the copy and that it loads, before it becomes visible
    if point:
        _point(target, version)
    log.info("published %s as %s in %s", source, version, target)
    return dest


def _publish_remote(bundle: Bundle, dest: str, version: str, target: Location) -> None:
    from gitml.serve.objectstore import published_files, upload_version

    published = published_files(dest)
    if published is None:  # not there, or a publish that stopped before its manifest: (re)send it whole
        upload_version(bundle.path, bundle.manifest["files"], dest)
    elif published != bundle.manifest["files"]:
        raise _immutable(version, target)


def _immutable(version: str, target: Location) -> DeploymentError:
    return DeploymentError(f"Version '{version}' is already published in '{target}' with other content; "
                           "published versions are immutable: pick a new version.")


def activate(target: str | Path, version: str) -> Pointer:
    """Point ``current.json`` at an already published version (e.g. a rollback)."""
    target = _target(target)
    _verify_published(target, version)
    _point(target, version)
    return read_pointer(target)


def publish_split(target: str | Path, split: Split) -> Pointer:
    """Make ``split`` what ``target`` serves: every version it names must be published (verified
    here); traffic.json is replaced atomically, then current.json points at its stable version."""
    target = _target(target)
    for version in split.loaded:
        _verify_published(target, version)
    _point(target, split.stable, split)
    return read_pointer(target)


def read_split(target: str | Path) -> tuple[Split, str] | None:
    """``target``'s traffic split and a key that changes with every write of it; None without one."""
    from gitml.serve.traffic import parse_split_json

    file = join(_target(target), TRAFFIC)
    try:
        raw = file.read_bytes() if isinstance(file, Path) else read_bytes(file)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DeploymentError(f"Cannot read {file}: {exc}") from exc
    return parse_split_json(raw, str(file)), hashlib.sha256(raw).hexdigest()


def _verify_published(target: Location, version: str) -> None:
    check_version(version)
    dest = join(target, VERSIONS, version)
    if isinstance(target, str):
        from gitml.serve.objectstore import fetch_version, published_versions

        published = published_versions(target)
    else:
        published = sorted(p.name for p in (target / VERSIONS).glob("*") if p.is_dir())
    if version not in published:
        raise DeploymentError(f"Version '{version}' is not published in '{target}'. "
                              f"Published: {', '.join(published) or 'none'}.")
    if isinstance(dest, str):  # verified on a copy fetched here, as a follower will fetch it
        with tempfile.TemporaryDirectory(prefix="gitml-activate-") as work:
            verify_manifest(fetch_version(dest, Path(work) / version))
    else:
        verify_manifest(dest)


def _point(target: Location, version: str, split: Split | None = None) -> None:
    """Write ``split`` (or, when the target has one, a split of 100% ``version``), then current.json."""
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if split is None and read_split(target) is not None:
        split = Split(((version, 100),))
    if split is not None:
        from gitml.serve.traffic import split_json

        _write(target, TRAFFIC, split_json(split, now))
    pointer = {"version": version, "path": f"{VERSIONS}/{version}", "deployed_at": now}
    _write(target, POINTER, (json.dumps(pointer, indent=2) + "\n").encode("utf-8"))


def _write(target: Location, name: str, data: bytes) -> None:
    if isinstance(target, str):  # one PUT of a small object: readers see the old one or the new one
        write_bytes(str(join(target, name)), data)
    else:
        write_text(target / name, data.decode("utf-8"))


def _published_files(folder: Path) -> dict[str, object]:
    """The manifest of a published version (verified), or {} when it is not a sound bundle."""
    try:
        return dict(load_bundle(folder, model=False).manifest["files"])
    except BundleError:
        return {}
