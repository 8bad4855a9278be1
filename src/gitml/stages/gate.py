"""``gitml gate run``: judge the packaged bundle; always write the verdict (``gate verify`` enforces it)."""

from __future__ import annotations

import logging
from pathlib import Path

from gitml.config.schema import Config
from gitml.gate.judge import judge
from gitml.gate.report import write_report
from gitml.gate.rules import GateResult
from gitml.models import config_trusted_types
from gitml.package.bundle import load_bundle

log = logging.getLogger(__name__)


def gate(cfg: Config, bundle_dir: Path, prepared_dir: Path, report_json: Path, report_md: Path,
         repo: Path = Path(".")) -> GateResult:
    import pandas as pd

    bundle = load_bundle(bundle_dir, config_trusted_types(cfg.model))
    result = judge(cfg, bundle, pd.read_parquet(prepared_dir / "test.parquet"), repo)
    write_report(result, report_json, report_md, bundle)
    failed = result.failed()
    log.info("gate %s for bundle %s: %d rule(s), %d failed%s", result.verdict.upper(), bundle.id, len(result.rules),
             len(failed), "".join(f"\n  - {r.rule}: {r.reason}" for r in failed))
    return result
