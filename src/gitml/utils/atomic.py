"""Atomic writes: a crashed stage leaves nothing that looks complete.

Every file or folder gitml produces is written to a temporary sibling first and moved
into place with a rename, which POSIX makes atomic on one filesystem.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    Works for a file or a directory: write whatever you like at the yielded path. On any
    exception the temporary path is removed and ``target`` is left as it was.

    Example:
        >>> with atomic_path("reports/metrics.json") as tmp:
        ...     tmp.write_text("{}")
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written for {target}")
        _replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _replace(src: Path, dst: Path) -> None:
    if src.is_dir() and not dst.is_symlink() and dst.is_dir():
        # A directory cannot be renamed over a non-empty one: move the old one aside
        # first, so the window without `dst` is one rename long, then drop it.
        old = dst.with_name(f".{dst.name}.old.{os.getpid()}")
        os.replace(dst, old)
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(old, dst)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON (keys in insertion order) atomically."""
    return write_text(target, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays show up in metrics and schemas; convert without importing numpy.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
