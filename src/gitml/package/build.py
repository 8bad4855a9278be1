"""Build the bundle ``models/bundle/`` from the pipeline's outputs, atomically.

The package stage runs before the gate: the gate then judges this very bundle (its size,
its latency through the server's predict path, its predictions against the champion's)
and its verdict names the bundle's manifest, so the verdict cannot vouch for another.

The bundle is a function of its inputs: packaging twice from the same inputs gives the same
bytes, so DVC's hash of ``models/bundle`` in dvc.lock moves only when something that built
it did. Hence no wall-clock time and no HEAD commit in ``metadata.json``: the commit a bundle
belongs to is the one whose dvc.lock names it (registry/chain.py proves the link), and the
registry's tags carry the commit and the date a version was registered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from gitml.config.schema import Config
from gitml.data.contract import load_contract
from gitml.models import config_trusted_types
from gitml.package.bundle import Bundle, assemble, load_bundle
from gitml.package.card import model_card
from gitml.package.manifest import sha256_file
from gitml.package.signature import Signature
from gitml.utils.atomic import atomic_path
from gitml.utils.dvc_hash import dir_md5, lock_params_sha256, stage_key

log = logging.getLogger(__name__)
# The params sections a bundle records: what shaped the model and the bundle. Each is a param
# of the package stage in dvc.yaml (with registry.model, the name metadata.json records), so
# the bundle is a function of its declared inputs. Not the gate: a gate change re-judges the
# same bundle (reports/gate.json names it) instead of building another; serve, drift and
# paths are the host's, not the model's.
BUNDLED_PARAMS = ("data", "model", "trainer", "package")
LIBRARIES = ("gitml", "torch", "scikit-learn", "numpy", "pandas", "pyarrow", "safetensors", "skops", "dvc")


@dataclasses.dataclass
class PackageInputs:
    """The pipeline outputs a bundle is built from (the package stage's deps in dvc.yaml)."""

    model_dir: Path
    prepared_dir: Path
    contract: Path
    metrics: Path
    data_summary: Path
    lock: Path
    stages_of: str | None = None  # the model whose stages dvc.lock names train@<model> (several models)


def package(cfg: Config, inputs: PackageInputs, out_dir: str | Path) -> Bundle:
    """Assemble the bundle into ``out_dir`` (replaced whole, or left as it was) and load it back.

    Example:
        >>> bundle = package(cfg, inputs, "models/bundle")  # doctest: +SKIP
        >>> bundle.id
        '3f2a9c...'
    """
    import pandas as pd

    trusted = config_trusted_types(cfg.model)
    signature = Signature.from_contract(load_contract(inputs.contract))
    rows = cfg.package.reference_rows
    records = pd.read_parquet(inputs.prepared_dir / f"{cfg.package.reference_split}.parquet")
    reference = records.sample(n=min(rows, len(records)), random_state=0)
    held_out = pd.concat([pd.read_parquet(inputs.prepared_dir / f"{split}.parquet")
                          for split in cfg.package.prediction_reference_splits], ignore_index=True)
    scored = held_out.sample(n=min(rows, len(held_out)), random_state=0)
    metadata = build_metadata(cfg, inputs, signature)
    card = model_card(metadata, cfg.package.intended_use, cfg.package.limitations)
    with atomic_path(out_dir) as tmp:
        assemble(tmp, model_dir=inputs.model_dir, signature=signature, metadata=metadata,
                 reference=reference, card=card, trusted_types=trusted, scored=scored)
    bundle = load_bundle(out_dir, trusted)
    log.info("packaged bundle %s (id %s, %.2f MB)", out_dir, bundle.id, bundle.size_bytes / 1e6)
    return bundle


def build_metadata(cfg: Config, inputs: PackageInputs, signature: Signature) -> dict[str, Any]:

    model_info = json.loads((inputs.model_dir / "model.json").read_text())
    summary = json.loads(inputs.data_summary.read_text()) if inputs.data_summary.is_file() else {}
    lock = _read_lock(inputs.lock)
    return {
        "name": cfg.registry.model,
        "bundle_id": model_id(inputs.model_dir),
        "model": {"family": model_info["family"], "format": model_info.get("format")},
        "classes": list(signature.classes),
        "inputs": signature.features,
        "data": {"name": cfg.data.name, "rows": summary.get("rows", {}),
                 "sources": source_hashes(lock, inputs.stages_of)},
        "params": {section: values for section, values in _params(cfg).items() if section in BUNDLED_PARAMS},
        "metrics": json.loads(inputs.metrics.read_text()),
        "provenance": {
            # DVC's own folder hashes, recomputed from the folders: equal to the train and
            # prepare outputs in dvc.lock (registry/chain.py checks them at the promoted commit)
            "model_md5": dir_md5(inputs.model_dir),
            "prepared_md5": dir_md5(inputs.prepared_dir),
            "params_sha256": lock_params_sha256(lock, model=inputs.stages_of),
        },
        "libraries": library_versions(),
        "python": sys.version.split()[0],
    }


def _params(cfg: Config) -> dict[str, Any]:
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)
    assert isinstance(plain, dict)  # a structured config is a mapping
    return {str(k): v for k, v in plain.items()}


def model_id(model_dir: Path) -> str:
    """Content hash of the model folder: the same weights give the same id."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(model_dir).as_posix().encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:16]


def _read_lock(lock: Path) -> dict[str, Any]:
    import yaml

    return (yaml.safe_load(lock.read_text()) or {}) if lock.is_file() else {}


def source_hashes(lock: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """The md5 of each input of the ``prepare`` stage (of ``model``'s chain), as dvc.lock records them."""
    stage = (lock.get("stages") or {}).get(stage_key("prepare", model)) or {}
    return {d["path"]: d.get("md5") for d in stage.get("deps", []) if isinstance(d, dict) and "path" in d}


def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions
