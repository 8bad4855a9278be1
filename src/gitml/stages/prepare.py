"""``gitml prepare``: merge production batches, split, fit preprocessing, write Parquet.

Output folder layout (written atomically as a whole)::

    <out>/train.parquet, val.parquet, test.parquet     records: original columns + label
    <out>/features/{train,val,test}.parquet            model-ready float32 features + label code
    <out>/preprocessor.json                            fitted preprocessing (plain JSON)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gitml.config.schema import DataConfig
from gitml.data.contract import load_contract
from gitml.data.preprocess import Preprocessor
from gitml.data.snapshots import read_snapshots, snapshot_files
from gitml.data.split import split_frame
from gitml.utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)


def prepare(
    data: DataConfig, raw_dir: str | Path, production_dir: str | Path, contract_path: str | Path,
    out_dir: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    import pandas as pd
    import pyarrow.parquet as pq

    contract = load_contract(contract_path)
    frame = read_snapshots(raw_dir, production_dir)
    n_production = sum(pq.read_metadata(p).num_rows for p in snapshot_files(production_dir))  # footer only
    splits = split_frame(frame, data.target, data.split, contract.regression)
    prep = Preprocessor.fit(splits["train"], contract, data.preprocess)
    names = prep.feature_names()
    with atomic_path(out_dir) as tmp:
        (tmp / "features").mkdir(parents=True)
        for split, part in splits.items():
            part.to_parquet(tmp / f"{split}.parquet", index=False)
            features = pd.DataFrame(prep.transform(part), columns=names)
            features[data.target] = prep.encode_labels(part[data.target])
            features.to_parquet(tmp / "features" / f"{split}.parquet", index=False)
        prep.save(tmp / "preprocessor.json")
    summary = {
        "rows": {"total": len(frame), "raw": len(frame) - n_production, "production": n_production,
                 **{split: len(part) for split, part in splits.items()}},
        "features": {"columns": len(contract.columns), "encoded": len(names)},
        "task": contract.task,
    }
    if contract.regression:
        values = frame[data.target].astype("float64")
        summary["label"] = {"mean": float(values.mean()), "std": float(values.std(ddof=0)),
                            "min": float(values.min()), "max": float(values.max())}
    else:
        summary["classes"] = {str(c): int((frame[data.target] == c).sum()) for c in contract.classes}
    if summary_out:
        write_json(summary_out, summary)
    log.info("prepared %s rows (train %d / val %d / test %d), %d encoded features",
             len(frame), len(splits["train"]), len(splits["val"]), len(splits["test"]), len(names))
    return summary
