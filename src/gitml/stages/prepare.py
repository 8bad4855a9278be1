"""``gitml prepare``: merge production batches, split, fit preprocessing, write Parquet.

Output folder layout (written atomically as a whole)::

    <out>/train.parquet, val.parquet, test.parquet     records: original columns + label
    <out>/features/{train,val,test}.parquet            model-ready float32 features + label code
    <out>/preprocessor.json                            fitted preprocessing (plain JSON)

The snapshot is streamed ``data.chunk_rows`` rows at a time (``gitml.data.prepared``): the
label column decides the split, the preprocessing is fitted a column at a time, and the
files are written row group by row group.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gitml.config.schema import DataConfig
from gitml.data.chunks import Snapshot, use_streaming_allocator
from gitml.data.contract import load_contract
from gitml.data.prepared import fit_on_train, write_splits
from gitml.data.snapshots import snapshot_files
from gitml.data.split import split_codes
from gitml.errors import DataSourceError
from gitml.utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)


def prepare(
    data: DataConfig, raw_dir: str | Path, production_dir: str | Path, contract_path: str | Path,
    out_dir: str | Path, summary_out: str | Path | None = None,
) -> dict[str, Any]:
    use_streaming_allocator()
    contract = load_contract(contract_path)
    raw, production = snapshot_files(raw_dir), snapshot_files(production_dir)
    if not raw + production:
        raise DataSourceError(f"No Parquet snapshot found in {raw_dir}, {production_dir}.")
    snapshot = Snapshot(raw + production, in_memory_rows=data.chunk_rows)
    n_production = sum(Snapshot(production).rows_per_file) if production else 0  # footers only
    labels = snapshot.column(data.target)
    codes = split_codes(labels, data.target, data.split, contract.regression)
    summary: dict[str, Any] = {"rows": {"total": len(labels), "raw": len(labels) - n_production,
                                        "production": n_production}}
    if contract.regression:
        values = labels.astype("float64")
        summary["label"] = {"mean": float(values.mean()), "std": float(values.std(ddof=0)),
                            "min": float(values.min()), "max": float(values.max())}
    else:
        summary["classes"] = {str(c): int((labels == c).sum()) for c in contract.classes}
    del labels
    prep = fit_on_train(snapshot, codes, contract, data.preprocess)
    with atomic_path(out_dir) as tmp:
        (tmp / "features").mkdir(parents=True)
        rows = write_splits(snapshot, codes, prep, tmp, data.chunk_rows)
        prep.save(tmp / "preprocessor.json")
    summary["rows"] |= rows
    summary["features"] = {"columns": len(contract.columns), "encoded": len(prep.feature_names())}
    summary["task"] = contract.task
    summary = {key: summary[key] for key in ("rows", "features", "task", "label", "classes") if key in summary}
    if summary_out:
        write_json(summary_out, summary)
    log.info("prepared %s rows (train %d / val %d / test %d), %d encoded features <data.chunk_rows=%d>",
             summary["rows"]["total"], rows["train"], rows["val"], rows["test"], len(prep.feature_names()),
             data.chunk_rows)
    return summary
