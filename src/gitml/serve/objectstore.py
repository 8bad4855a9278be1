"""A deployment target on object storage (``s3://bucket/prefix``): the same layout as a folder.

::

    s3://bucket/prefix/current.json            {"version", "path", "deployed_at"}
    s3://bucket/prefix/versions/<version>/...  one verified bundle per published version

Object storage has no rename, so each step is ordered to be safe without one:

- a version's files go up first and its sha256 manifest last, so a version with a manifest
  has all its files (a crashed publish leaves a version without one, which the next
  publish of that version completes); the copy is then fetched back and verified;
- ``current.json`` is replaced by one PUT of a small object, so every reader (each
  ``gitml serve --follow`` replica) reads the old pointer or the new one, never a mix;
- a follower fetches the version the pointer names into a local folder, reads only the
  files the manifest lists (no '..', sizes checked against the listing before any byte is
  fetched) and serves it only once the bundle verifies (:mod:`gitml.serve.model`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from gitml.errors import DeploymentError
from gitml.package.manifest import MANIFEST
from gitml.utils.atomic import atomic_path
from gitml.utils.storage import download, join, list_files, read_bytes, upload

VERSIONS = "versions"


def published_files(version_url: str) -> dict[str, Any] | None:
    """The ``files`` table of a published version's manifest; None when it has no manifest yet."""
    try:
        raw = read_bytes(str(join(version_url, MANIFEST)))
    except FileNotFoundError:
        return None
    try:
        files = json.loads(raw)["files"]
    except (ValueError, KeyError, TypeError):
        return {}  # a manifest that cannot be read matches no bundle
    return dict(files) if isinstance(files, dict) else {}


def upload_version(source: Path, files: dict[str, Any], version_url: str) -> None:
    """Send a bundle's listed files, then its manifest; then fetch the copy back and verify it."""
    from gitml.errors import BundleError
    from gitml.package.bundle import load_bundle

    upload(source, version_url, sorted(files))
    upload(source, version_url, [MANIFEST])
    with tempfile.TemporaryDirectory(prefix="gitml-publish-") as work:
        try:
            load_bundle(fetch_version(version_url, Path(work) / "copy"), model=False)
        except BundleError as exc:
            raise DeploymentError(f"The copy published at {version_url} does not verify: {exc}") from exc


def fetch_version(version_url: str, folder: Path) -> Path:
    """Fetch the files a published version's manifest lists into ``folder`` (whole, or nothing).

    The bundle is not verified here: whoever loads ``folder`` does that (load_bundle).
    """
    listing = list_files(version_url)
    if MANIFEST not in listing:
        raise DeploymentError(f"{version_url} is not a published version: it has no {MANIFEST}.")
    files = published_files(version_url) or {}
    problems = [problem for name, entry in files.items() if (problem := _entry_problem(name, entry, listing))]
    if not files or problems:
        raise DeploymentError(f"{version_url} cannot be fetched: "
                              + ("; ".join(problems[:10]) or f"its {MANIFEST} lists no files") + ".")
    with atomic_path(folder) as tmp:
        download(version_url, tmp, [MANIFEST, *sorted(files)])
    return folder


def _entry_problem(name: str, entry: Any, listing: dict[str, int]) -> str | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or name == MANIFEST:
        return f"{MANIFEST} lists {name[:80]!r}, which is not a file inside the version"
    if name not in listing:
        return f"{name} is missing"
    if not isinstance(entry, dict) or listing[name] != entry.get("bytes"):
        return f"{name} does not match its size in {MANIFEST} (altered)"
    return None


def published_versions(target: str) -> list[str]:
    """The versions under ``target/versions/`` that have a manifest."""
    return sorted({name.split("/")[0] for name in list_files(str(join(target, VERSIONS)))
                   if name.count("/") == 1 and name.endswith(f"/{MANIFEST}")})


class FetchedVersions:
    """The follower's local copies of published versions, in a temporary folder of its own."""

    def __init__(self) -> None:
        self.cache = Path(tempfile.mkdtemp(prefix="gitml-serve-"))

    def fetch(self, version: str, version_url: str) -> Path:
        out = self.cache / version
        if not out.is_dir():  # published versions are immutable: one fetch per version served
            fetch_version(version_url, out)
        return out

    def holds(self, path: Path) -> bool:
        return path.parent == self.cache
