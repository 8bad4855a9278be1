"""Where a log, a deployment or a bundle lives: a local folder, or a URL on object storage.

A location is a local path (a :class:`~pathlib.Path`, handled as it always was: ``os``
calls, temp file + rename) or an ``s3://bucket/prefix`` URL, reached through fsspec
(s3fs, the ``s3`` extra). Callers branch once on :func:`is_url`, so local paths take no
fsspec import and no extra cost.

Object storage has no rename and no append: a file is written whole as one PUT of its
bytes (:func:`write_bytes`), which readers see entirely or not at all. The endpoint and
credentials come from the environment as botocore reads it (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for an
S3-compatible server, ``AWS_PROFILE``...), never from a URL or gitml's config, so they
are never written to a file or a log line (docs/storage.md).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import StorageError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

SCHEMES = ("s3",)  # exact: the object stores gitml is tested against (a local S3 server in the tests)
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3's bucket naming rules, less the fine print
Location = Path | str  # a local path, or a URL (checked by location())


def is_url(value: str | os.PathLike[str]) -> bool:
    """Whether ``value`` names object storage (``scheme://...``) rather than a local path."""
    return isinstance(value, str) and _URL.fullmatch(value) is not None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable object-storage location, or None.

    Example:
        >>> url_problem("s3://key:secret@bucket/logs")
        "must not carry credentials (they go in the environment: AWS_ACCESS_KEY_ID, ...), got 's3://***@bucket/logs'."
    """
    match = _URL.fullmatch(url)
    if match is None:
        return f"is not a URL, got {url!r}."
    scheme, rest = match.group(1), match.group(2)
    if scheme not in SCHEMES:
        return f"uses the scheme {scheme!r}; allowed: {', '.join(s + '://' for s in SCHEMES)} (or a local path)."
    bucket, _, key = rest.partition("/")
    if "@" in bucket:
        shown = f"{scheme}://***@{bucket.rpartition('@')[2]}/{key}".rstrip("/")
        return ("must not carry credentials (they go in the environment: AWS_ACCESS_KEY_ID, ...), "
                f"got {shown!r}.")
    if not _BUCKET.fullmatch(bucket):
        return f"must start with a bucket name (3-63 of a-z 0-9 . -), got {url!r}."
    if any(c in rest for c in "?#*[]") or any(part in (".", "..") for part in key.split("/")):
        return f"must be a plain bucket/prefix (no ?, #, wildcards, '.' or '..' parts), got {url!r}."
    return None


def location(value: str | os.PathLike[str], what: str = "location") -> Location:
    """A URL as it is (after :func:`url_problem`), anything else as a local :class:`Path`."""
    if is_url(value):
        problem = url_problem(str(value))
        if problem:
            raise StorageError(f"The {what} {problem}")
        return str(value).rstrip("/")
    return Path(value)


def join(base: Location, *parts: str) -> Location:
    """``base / parts``: a Path stays a Path, a URL gets ``/``-joined parts."""
    if isinstance(base, Path):
        return base.joinpath(*parts)
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/") not in ("", "."))])


def relative(path: Location, base: Location) -> str:
    """``path`` below ``base``, as a ``/``-separated string."""
    if isinstance(path, Path) and isinstance(base, Path):
        return path.relative_to(base).as_posix()
    return str(path)[len(str(base).rstrip("/")) + 1:]


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` and the path inside it (``bucket/key``).

    Listings are not cached: a follower polling a deployment and a reader of a log that
    grows must see the objects written since their last look.
    """
    try:
        import fsspec

        return fsspec.core.url_to_fs(url, use_listings_cache=False)
    except ImportError as exc:  # s3fs missing: fsspec names the package
        raise StorageError(f"Cannot open {url}: {exc}", hint="pip install 'gitml[s3]'") from exc


@contextlib.contextmanager
def _reaching(url: str) -> Iterator[None]:
    """A missing object stays FileNotFoundError; any other failure of the store is a StorageError."""
    try:
        yield
    except (FileNotFoundError, StorageError):
        raise
    except Exception as exc:  # botocore and aiohttp have their own types: no endpoint, no credentials...
        raise StorageError(f"Cannot reach {url}: {type(exc).__name__}: {exc}") from exc


def read_bytes(url: str) -> bytes:
    """The object's bytes; FileNotFoundError when there is none."""
    fs, path = filesystem(url)
    with _reaching(url):
        return bytes(fs.cat_file(path))


def write_bytes(url: str, data: bytes) -> None:
    """Write the object whole: one PUT, so a reader sees the old object or the new one, never a part."""
    fs, path = filesystem(url)
    with _reaching(url):
        fs.pipe_file(path, data)


def exists(url: str) -> bool:
    """Whether an object, or any object below ``url/``, exists."""
    fs, path = filesystem(url)
    with _reaching(url):
        return bool(fs.exists(path))


def list_files(url: str) -> dict[str, int]:
    """Every object below ``url/`` as its URL relative to ``url`` -> size in bytes."""
    fs, path = filesystem(url)
    prefix = path.rstrip("/") + "/"
    try:
        with _reaching(url):
            found: dict[str, Any] = fs.find(prefix, detail=True)
    except FileNotFoundError:  # no bucket
        return {}
    return {name[len(prefix):]: int(info.get("size") or 0) for name, info in found.items()
            if name.startswith(prefix) and info.get("type") != "directory"}


def download(url: str, folder: Path, names: list[str]) -> None:
    """Fetch the objects ``url/<name>`` into ``folder/<name>`` (concurrently)."""
    fs, path = filesystem(url)
    local = [str(folder / name) for name in names]
    for file in local:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
    with _reaching(url):
        fs.get([f"{path}/{name}" for name in names], local)


def upload(folder: Path, url: str, names: list[str]) -> None:
    """Send ``folder/<name>`` to ``url/<name>`` (concurrently), each object whole."""
    fs, path = filesystem(url)
    with _reaching(url):
        fs.put([str(folder / name) for name in names], [f"{path}/{name}" for name in names])
