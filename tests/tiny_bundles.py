"""Small real bundles in well under a second, for the loading tests (no pipeline, no DVC).

Each is written by the library's own ``assemble`` (model saved by its family, real
preprocessor, signature from a contract, manifest written last); ``rule`` picks the
feature the label follows, so two versions predict differently on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitml.config.schema import PreprocessConfig, SklearnConfig, TorchMLPConfig, TrainerConfig
from gitml.data.contract import ColumnSpec, Contract, ExcludedColumn
from gitml.data.preprocess import Preprocessor
from gitml.models import build_model
from gitml.package.bundle import PREPROCESSOR, assemble
from gitml.package.signature import Signature

FEATURES = ["x0", "x1", "x2", "x3"]


def rows(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)


# What `gitml schema infer` records for a date and an id column (tests/data/test_infer.py).
EXCLUDED = {
    "signup_date": ExcludedColumn("datetime", "a date: not a feature until date parts are encoded", min="2023-01-01"),
    "customer_id": ExcludedColumn("id", "300 distinct values in 300 rows: an identifier, not a feature"),
}


def with_excluded(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``frame`` with a date and an id column, as the source data has them (the model never reads them)."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, len(frame)), unit="D")
    return frame.assign(signup_date=days.strftime("%Y-%m-%d"),
                        customer_id=[f"CUST-{i:06d}" for i in rng.permutation(10 * len(frame))[:len(frame)]])


def tiny_bundle(out: Path, *, version: str = "v1", rule: int = 0, family: str = "sklearn",
                estimator: dict[str, Any] | None = None, excluded: bool = False, regression: bool = False) -> Path:
    """Write bundle ``out`` (metadata version ``version``; label = feature ``rule`` > 0).

    ``excluded``: the contract also has the date and id columns of :data:`EXCLUDED`.
    ``regression``: the label is the number ``100 + 20 * feature rule`` (plus noise) instead,
    and the default estimator a Ridge regression.
    """
    train = rows(300, seed=1)
    if regression:
        noise = np.random.default_rng(2).normal(0, 1, len(train))
        labels = (100 + 20 * train[FEATURES[rule]] + noise).to_numpy(dtype="float64")
    else:
        labels = (train[FEATURES[rule]] > 0).astype("int64").to_numpy()
    contract = Contract(label="y", classes=[] if regression else [0, 1], task="regression" if regression else "",
                        columns={c: ColumnSpec("float", min=-10.0, max=10.0) for c in FEATURES},
                        excluded=dict(EXCLUDED) if excluded else {})
    prep = Preprocessor.fit(train, contract, PreprocessConfig())
    if family == "sklearn":
        default = "sklearn.linear_model.Ridge" if regression else "sklearn.linear_model.LogisticRegression"
        cfg: Any = SklearnConfig(estimator=estimator or {"_target_": default})
    else:
        cfg = TorchMLPConfig(hidden_sizes=[8], optimizer={"_target_": "torch.optim.AdamW", "_partial_": True,
                                                            "lr": 0.05})
    model = build_model(cfg, TrainerConfig(epochs=5, device="cpu"), classes=contract.classes,
                        feature_names=prep.feature_names(), task=contract.task)
    model_dir = out.parent / f".{out.name}-model"
    model.fit(prep.transform(train), labels).save(model_dir)
    prep.save(model_dir / PREPROCESSOR)
    assemble(out, model_dir=model_dir, signature=Signature.from_contract(contract),
             metadata={"version": version, "bundle_id": f"tiny-{version}", "rule": rule},
             reference=train, card=f"# tiny {version}\n")
    return out
