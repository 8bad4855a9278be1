"""``gitml validate``: check every snapshot against the data contract and report.

The contract is the declared one (``data.schema.path``) or, when none is declared, the one
inferred from the raw snapshot; production batches are always checked against it. The
report lists every failure; the effective contract is written for review and for the
serving signature. Files are checked, and a contract inferred, ``data.chunk_rows`` rows at
a time (the label column is read alone), so no snapshot is ever held whole.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gitml.config.schema import DataConfig
from gitml.data.checks import check_file
from gitml.data.chunks import Snapshot, use_streaming_allocator
from gitml.data.contract import Contract, load_contract
from gitml.data.infer_chunks import infer_from_chunks
from gitml.data.snapshots import snapshot_files
from gitml.errors import DataSourceError, DataValidationError
from gitml.utils.atomic import write_json

log = logging.getLogger(__name__)


def effective_contract(data: DataConfig, raw_files: list[Path], raw_dir: Path, root: Path) -> tuple[Contract, str]:
    """The declared contract, or one inferred from ``raw_files`` (the raw snapshot), a chunk at a time."""
    task = None if data.task is None else data.task.value
    if data.schema.path:
        declared = load_contract(root / data.schema.path)
        return declared.with_task(task, "params.yaml"), f"declared: {data.schema.path}"
    if not raw_files:
        raise DataSourceError(f"No raw snapshot in '{raw_dir}': run `gitml ingest` first.")
    contract = infer_from_chunks(
        Snapshot(raw_files), data.target, data.chunk_rows, data.schema.range_margin, data.schema.max_null_fraction,
        max_categories=data.schema.max_categories, task=task,
    )
    return contract, f"inferred from {raw_dir}"


def validate(
    data: DataConfig, raw_dir: str | Path, production_dir: str | Path,
    contract_out: str | Path, report_out: str | Path, root: str | Path = ".",
) -> dict[str, Any]:
    """Validate all snapshots; write the report (always) and the contract (when valid)."""
    use_streaming_allocator()
    raw_dir, production_dir, root = Path(raw_dir), Path(production_dir), Path(root)
    raw = snapshot_files(raw_dir)  # inferred from and checked
    contract, origin = effective_contract(data, raw, raw_dir, root)
    if data.sensitive:  # a wrong fairness column fails here, before a model is trained, not at evaluate
        from gitml.errors import ConfigError
        from gitml.evaluate.fairness import contract_problems

        if problems := contract_problems(data, contract):
            raise ConfigError.of("params.yaml", problems)
    snapshots: list[dict[str, Any]] = []
    failures = []
    for path in [*raw, *snapshot_files(production_dir)]:
        rows, found = check_file(path, contract, data.chunk_rows)
        failures += found
        snapshots.append({"file": str(path), "rows": rows, "failures": len(found)})
    report = {
        "valid": not failures,
        "contract": origin,
        "rows": sum(s["rows"] for s in snapshots),
        "snapshots": snapshots,
        "failures": [
            {"snapshot": f.snapshot, "column": f.column, "rule": f.rule, "rows": f.count,
             "examples": f.examples, "message": f.sentence()}
            for f in failures
        ],
    }
    write_json(report_out, report)
    if failures:
        raise DataValidationError(str(report_out), [f.sentence() for f in failures])
    write_json(contract_out, contract.to_dict())
    log.info("validated %d rows in %d snapshot(s) against the contract (%s) <data.chunk_rows=%d>",
             report["rows"], len(snapshots), origin, data.chunk_rows)
    return report
