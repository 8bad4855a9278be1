"""Fitted detectors saved between runs, so a bundle's reference is fitted once per config.

One folder per (bundle, detector, settings), written atomically::

    <cache_dir>/<bundle_id>-<kind>-<settings hash>/
        gitml.json        what we need besides alibi-detect's object: columns, tests, encoding
        x_ref.npy         the encoded, subsampled reference the detector is rebuilt from

``bundle_id`` is the content hash of the model; the settings hash covers the detector's
options, the sha256 of the bundle's reference files and the alibi-detect version, so a
change to any of them misses the cache instead of reusing a stale fit.

No detector goes through alibi-detect's ``save_detector``/``load_detector``: that module
imports transformers (seconds on every check), and for ``ClassifierDrift`` it would write
the scikit-learn model with joblib and the loss with dill, both pickle. Building a
detector from its reference is cheap (KS and the tabular tests keep ``x_ref``; MMD's
loader recomputed the reference kernel matrix anyway; the classifier is retrained on
every test), so the cache keeps the encoded, subsampled reference (``x_ref.npy``, read
with ``allow_pickle=False``) and the encoding, and rebuilds the detector from them.

A folder holding any other file is refused (it could make alibi-detect unpickle
something) and refitted over.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitml.config.schema import DriftConfig
from gitml.monitor.detectors import UNIVARIATE, Detector, build_alibi
from gitml.monitor.encoding import FeatureEncoding
from gitml.utils.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT = "gitml.drift-cache/v2"
META, X_REF = "gitml.json", "x_ref.npy"
ALLOWED_FILES = {META, X_REF}


def cache_key(bundle_id: str, kind: str, cfg: DriftConfig, fingerprint: dict[str, Any]) -> str:
    """``<bundle_id>-<kind>-<hash>``: the folder name of one fitted detector.

    ``fingerprint`` holds what else the fit depends on (the reference files' sha256).
    """
    from importlib.metadata import version

    settings = {
        "format": FORMAT, "kind": kind, "p_val": cfg.p_val, "correction": cfg.correction.value,
        "seed": cfg.seed, "max_rows": None if kind in UNIVARIATE else cfg.max_rows,
        "fingerprint": fingerprint, "alibi_detect": version("alibi-detect"),
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return f"{bundle_id}-{kind}-{digest}"


def load_or_fit(cache_dir: Path | None, key: str, fit: Callable[[], Detector]) -> tuple[Detector, str]:
    """The cached detector under ``key``, or a new fit saved there.

    Returns the detector and what happened: ``"loaded"``, ``"saved"``, ``"off"`` (no cache
    folder given) or ``"not saved: <reason>"``.
    """
    if cache_dir is None:
        return fit(), "off"
    folder = Path(cache_dir) / key
    if folder.is_dir():
        try:
            detector = load(folder)
            log.info("reusing the fitted drift detector in %s", folder)
            return detector, "loaded"
        except Exception as exc:  # a damaged or foreign folder is refitted, not trusted
            log.warning("ignoring the drift cache %s (%s); fitting again", folder, exc)
    detector = fit()
    try:
        with atomic_path(folder) as tmp:
            save(detector, tmp)
    except Exception as exc:  # the check still has its verdict without a cache
        log.warning("could not save the fitted drift detector to %s: %s", folder, exc)
        return detector, f"not saved: {exc}"
    return detector, "saved"


def save(detector: Detector, folder: Path) -> None:
    """Write ``detector`` into the new folder ``folder`` (the caller makes it atomic)."""
    import numpy as np

    folder.mkdir(parents=True)
    meta = {
        "format": FORMAT, "kind": detector.kind, "columns": detector.columns, "tests": detector.tests,
        "encoding": detector.encoding.to_dict() if detector.encoding else None,
        "p_val": detector.p_val, "correction": detector.correction, "max_rows": detector.max_rows,
        "seed": detector.seed, "n_reference": detector.n_reference,
    }
    assert detector.x_ref is not None
    np.save(folder / X_REF, detector.x_ref, allow_pickle=False)
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load(folder: Path) -> Detector:
    """Read a detector saved by :func:`save`; refuse a folder with unexpected files."""
    import numpy as np

    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    unexpected = sorted(present - ALLOWED_FILES)
    if unexpected:
        raise ValueError(f"unexpected file(s) {unexpected}; only {sorted(ALLOWED_FILES)} are loaded")
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    encoding = FeatureEncoding.from_dict(meta["encoding"]) if meta["encoding"] else None
    detector = Detector(
        kind=meta["kind"], columns=meta["columns"], tests=meta["tests"], alibi=None, encoding=encoding,
        p_val=meta["p_val"], correction=meta["correction"], max_rows=meta["max_rows"],
        seed=meta["seed"], n_reference=meta["n_reference"],
    )
    detector.x_ref = np.load(folder / X_REF, allow_pickle=False)
    detector.alibi = build_alibi(detector, detector.x_ref)
    return detector
