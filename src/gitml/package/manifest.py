"""sha256 manifest of a folder: written last, verified first."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gitml.errors import BundleError

MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path) -> dict[str, Any]:
    """Record the sha256 and size of every file in ``folder`` in ``folder/manifest.json``."""
    files = {
        p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in _files(folder)
    }
    manifest = {"algorithm": "sha256", "files": files, "self_sha256": _self_digest(files)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def verify_manifest(folder: Path) -> dict[str, Any]:
    """Refuse the folder unless every file matches the manifest and none is unlisted.

    Raises BundleError naming each file that is missing, altered or unexpected. Streams the
    files; a loader that goes on to use them calls :func:`read_verified` instead.
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise BundleError(str(folder), [f"{MANIFEST} is missing"])
    manifest, listed = _parse(path.read_bytes(), folder)
    problems = []
    present = _present(folder)
    for name, entry in listed.items():
        file = folder / name
        if name not in present:
            problems.append(f"{name} is missing")
        elif file.stat().st_size != entry.get("bytes") or sha256_file(file) != entry.get("sha256"):
            problems.append(f"{name} does not match its sha256 in {MANIFEST} (altered)")
    problems += [f"{name} is not listed in {MANIFEST} (unexpected file)" for name in sorted(present - set(listed))]
    if problems:
        raise BundleError(str(folder), problems)
    return manifest


def read_verified(folder: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read each file of ``folder`` once and check those bytes against the manifest.

    Returns the manifest and ``{relative name: bytes}`` of every listed file: whoever builds
    objects from these bytes uses exactly what was hashed, so a writer replacing the folder
    meanwhile yields a BundleError, never a mix of two versions.

    Example:
        >>> manifest, files = read_verified(Path("models/bundle"))
        >>> json.loads(files["metadata.json"])["bundle_id"]
    """
    try:
        raw = (folder / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise BundleError(str(folder), [f"{MANIFEST} is missing"]) from None
    except OSError as exc:
        raise BundleError(str(folder), [f"{MANIFEST} cannot be read ({exc.strerror})"]) from exc
    manifest, listed = _parse(raw, folder)
    present = _present(folder)
    problems, contents = [], {}
    for name, entry in listed.items():
        if name not in present:  # also keeps a listed '../x' from being opened
            problems.append(f"{name} is missing")
            continue
        try:
            if (folder / name).stat().st_size != entry.get("bytes"):  # a planted huge file is never read
                problems.append(f"{name} does not match its size in {MANIFEST} (altered)")
                continue
            data = (folder / name).read_bytes()
        except OSError as exc:
            problems.append(f"{name} cannot be read ({exc.strerror})")
            continue
        if len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            problems.append(f"{name} does not match its sha256 in {MANIFEST} (altered)")
        else:
            contents[name] = data
    problems += [f"{name} is not listed in {MANIFEST} (unexpected file)" for name in sorted(present - set(listed))]
    if problems:
        raise BundleError(str(folder), problems)
    return manifest, contents


def _parse(raw: bytes, folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The manifest and its ``files`` table, checked against the manifest's own checksum."""
    try:
        manifest = json.loads(raw.decode("utf-8"))
        listed: dict[str, dict[str, Any]] = manifest["files"]
        if not isinstance(listed, dict) or not all(isinstance(e, dict) for e in listed.values()):
            raise TypeError("'files' is not a table of entries")
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(str(folder), [f"{MANIFEST} is unreadable ({exc})"]) from exc
    if manifest.get("self_sha256") != _self_digest(listed):
        # The manifest's own checksum catches an edit to the manifest itself, so the
        # message can name the right file.
        raise BundleError(str(folder), [f"{MANIFEST} does not match its own checksum (altered)"])
    return manifest, listed


def _present(folder: Path) -> set[str]:
    try:
        return {p.relative_to(folder).as_posix() for p in _files(folder)}
    except OSError as exc:  # the folder vanished or was swapped while listed
        raise BundleError(str(folder), [f"its files cannot be listed ({exc.strerror})"]) from exc


def _self_digest(files: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
