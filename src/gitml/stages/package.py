"""``gitml package``: assemble the bundle ``models/bundle/`` atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gitml.config.schema import Config
from gitml.data.contract import load_contract
from gitml.models import config_trusted_types
from gitml.package.bundle import assemble
from gitml.package.card import model_card
from gitml.package.manifest import folder_size, sha256_file
from gitml.package.signature import Signature
from gitml.utils.atomic import atomic_path
from gitml.utils.dvc_hash import dir_md5, lock_params_sha256

log = logging.getLogger(__name__)
LIBRARIES = ("gitml", "torch", "scikit-learn", "numpy", "pandas", "pyarrow", "safetensors", "skops", "dvc")


@dataclasses.dataclass
class PackageInputs:
    model_dir: Path
    prepared_dir: Path
    contract: Path
    metrics: Path
    data_summary: Path
    lock: Path


def package(cfg: Config, inputs: PackageInputs, gate_path: Path | None, out_dir: str | Path) -> Path:
    raw = gate_path.read_bytes() if gate_path and gate_path.is_file() else None
    gate = json.loads(raw) if raw is not None else None
    gate_sha256 = hashlib.sha256(raw).hexdigest() if raw is not None else None
    with atomic_path(out_dir) as tmp:
        build_bundle(tmp, cfg, inputs, gate, gate_sha256)
    log.info("packaged bundle %s (%.2f MB, gate %s)", out_dir, folder_size(Path(out_dir)) / 1e6,
             (gate or {}).get("verdict", "not run"))
    return Path(out_dir)


def bundle_size_mb(cfg: Config, inputs: PackageInputs) -> float:
    """Size the bundle would have, measured by assembling it in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "bundle"
        build_bundle(target, cfg, inputs, gate={"verdict": "pending", "rules": []})
        return folder_size(target) / 1e6


def build_bundle(out: Path, cfg: Config, inputs: PackageInputs, gate: dict[str, Any] | None,
                 gate_sha256: str | None = None) -> None:
    import pandas as pd

    contract = load_contract(inputs.contract)
    signature = Signature.from_contract(contract)
    split = cfg.package.reference_split
    records = pd.read_parquet(inputs.prepared_dir / f"{split}.parquet")
    reference = records.sample(n=min(cfg.package.reference_rows, len(records)), random_state=0)
    metadata = build_metadata(cfg, inputs, signature, gate, gate_sha256)
    card = model_card(metadata, cfg.package.intended_use, cfg.package.limitations)
    assemble(out, model_dir=inputs.model_dir, signature=signature, metadata=metadata,
             reference=reference, card=card, trusted_types=config_trusted_types(cfg.model))


def build_metadata(cfg: Config, inputs: PackageInputs, signature: Signature,
                   gate: dict[str, Any] | None, gate_sha256: str | None = None) -> dict[str, Any]:
    from omegaconf import OmegaConf

    model_info = json.loads((inputs.model_dir / "model.json").read_text())
    summary = json.loads(inputs.data_summary.read_text()) if inputs.data_summary.is_file() else {}
    return {
        "name": cfg.registry.model,
        "bundle_id": model_id(inputs.model_dir),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "model": {"family": model_info["family"], "format": model_info.get("format")},
        "classes": list(signature.classes),
        "inputs": signature.features,
        "data": {"name": cfg.data.name, "rows": summary.get("rows", {}), **lock_hashes(inputs.lock)},
        "params": OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True),
        "metrics": json.loads(inputs.metrics.read_text()),
        "gate": gate,
        "provenance": provenance(inputs, gate_sha256),
        "libraries": library_versions(),
        "python": sys.version.split()[0],
    }


def model_id(model_dir: Path) -> str:
    """Content hash of the model folder: the same weights give the same id."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(model_dir).as_posix().encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:16]


def provenance(inputs: PackageInputs, gate_sha256: str | None) -> dict[str, Any]:
    """What built this bundle, in the hashes dvc.lock and git hold (checked by registry/chain.py).

    ``model_md5`` and ``prepared_md5`` are DVC's own folder hashes, recomputed here from the
    folders themselves, so they equal the train and prepare outputs in dvc.lock;
    ``params_sha256`` hashes the params dvc.lock records for the stages that shaped the
    model; ``gate_sha256`` is the sha256 of the gate verdict file this bundle was packaged with.
    """
    import yaml

    lock = (yaml.safe_load(inputs.lock.read_text()) or {}) if inputs.lock.is_file() else {}
    return {
        "model_md5": dir_md5(inputs.model_dir),
        "prepared_md5": dir_md5(inputs.prepared_dir),
        "params_sha256": lock_params_sha256(lock),
        "gate_sha256": gate_sha256,
    }


def lock_hashes(lock: Path) -> dict[str, Any]:
    """Data hashes of the ``prepare`` stage as recorded in dvc.lock."""
    import yaml

    if not lock.is_file():
        return {"prepared_md5": None, "sources": {}}
    stage = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get("prepare", {})
    outs = {o["path"]: o.get("md5") for o in stage.get("outs", [])}
    deps = {d["path"]: d.get("md5") for d in stage.get("deps", [])}
    return {"prepared_md5": next(iter(outs.values()), None), "sources": deps}


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions
