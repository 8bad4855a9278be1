"""DVC's own content hashes, recomputed without DVC: a folder's ``<md5>.dir`` as dvc.lock records it.

DVC 3 (``hash: md5``) hashes a file as the md5 of its bytes and a folder as the md5 of
the JSON list ``[{"md5": ..., "relpath": ...}]`` sorted by relpath (dvc_data's
``Tree.as_bytes``), with ``.dir`` appended. Recomputing it from a bundle's own ``model/``
folder lets a check compare the bundle with the train stage's output in dvc.lock at any
commit, with no DVC cache at hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dir_md5(folder: str | Path) -> str:
    """``<md5>.dir`` of ``folder``, equal to what ``dvc commit`` writes for it in dvc.lock.

    Example:
        >>> dir_md5("models/model")  # doctest: +SKIP
        'fc0df446d539ad2aa369b5aad3ca03de.dir'
    """
    folder = Path(folder)
    return _tree_md5({p.relative_to(folder).as_posix(): file_md5(p) for p in folder.rglob("*") if p.is_file()})


def files_md5(files: Mapping[str, bytes]) -> str:
    """:func:`dir_md5` of a folder given as ``{relative path: bytes}`` (bytes already read and verified)."""
    return _tree_md5({name: hashlib.md5(data, usedforsecurity=False).hexdigest() for name, data in files.items()})


def _tree_md5(md5s: Mapping[str, str]) -> str:
    entries = [{"md5": md5, "relpath": relpath} for relpath, md5 in sorted(md5s.items())]
    listing = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(listing, usedforsecurity=False).hexdigest() + ".dir"


# The stages whose params shaped the model a bundle carries (dvc.yaml): what the bundle
# records a hash of, and what a check recomputes from dvc.lock at the promoted commit.
MODEL_PARAM_STAGES = ("prepare", "train")


def lock_out_md5(lock: dict[str, Any], stage: str, path: str) -> str | None:
    """The md5 dvc.lock (parsed) records for output ``path`` of ``stage``, or None."""
    outs = ((lock.get("stages") or {}).get(stage) or {}).get("outs") or []
    return next((str(o.get("md5")) for o in outs if isinstance(o, dict) and o.get("path") == path), None)


def stage_key(stage: str, model: str | None = None) -> str:
    """The name dvc.lock records ``stage`` under: ``train``, or ``train@churn`` for model ``churn``
    of a repository of several models (dvc.yaml's ``foreach: ${models}``)."""
    return stage if model is None else f"{stage}@{model}"


def lock_params_sha256(lock: dict[str, Any], stages: tuple[str, ...] = MODEL_PARAM_STAGES,
                       model: str | None = None) -> str | None:
    """sha256 of the params dvc.lock records for ``stages`` (canonical JSON), or None if one is missing.

    With ``model``, the stages of that model (:func:`stage_key`); the record keys them by
    their plain names and the params by the names the model's section has, so the hash
    says what the model was trained with.
    """
    recorded = {}
    for stage in stages:
        entry = (lock.get("stages") or {}).get(stage_key(stage, model))
        if not isinstance(entry, dict):
            return None
        recorded[stage] = entry.get("params") or {}
    return hashlib.sha256(json.dumps(recorded, sort_keys=True, default=str).encode("utf-8")).hexdigest()
