"""``gitml gate``: judge the challenger; always write the verdict (``gate verify`` enforces it)."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.config.schema import Config
from gitml.data.contract import load_contract
from gitml.data.preprocess import Preprocessor
from gitml.errors import GitmlError
from gitml.models import config_trusted_types, load_model
from gitml.package.signature import CompiledSignature, Signature
from gitml.package.validation import validate_input
from gitml.stages.package import PackageInputs, bundle_size_mb
from gitml.utils.dvc_hash import dir_md5

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def gate(cfg: Config, inputs: PackageInputs, report_json: Path, report_md: Path, repo: Path = Path(".")) -> Any:
    import json

    import pandas as pd

    from gitml.gate.report import write_report
    from gitml.gate.rules import evaluate_gate

    metrics = json.loads(inputs.metrics.read_text())
    model = load_model(inputs.model_dir, config_trusted_types(cfg.model))
    prep = Preprocessor.load(inputs.model_dir / "preprocessor.json")
    signature = Signature.from_contract(load_contract(inputs.contract)).compiled
    records = pd.read_parquet(inputs.prepared_dir / "test.parquet")
    features = records[list(signature.names)]

    budgets = cfg.gate.budgets
    latency = None
    if budgets.max_latency_p95_ms is not None:
        latency = single_row_p95_ms(model, prep, signature, features, budgets.latency_samples)
    size = bundle_size_mb(cfg, inputs) if budgets.max_bundle_mb is not None else None

    champion, champion_problem = None, None
    if cfg.gate.champion.enabled:
        challenger = model.predict_proba(prep.transform(validate_input(features, signature)))
        y = prep.encode_labels(records[cfg.data.target])
        try:
            champion = champion_evidence(cfg, repo, features, y, challenger, prep.classes)
        except GitmlError as exc:
            champion_problem = str(exc)
    result = evaluate_gate(cfg.gate, metrics, champion, latency, size)
    if champion_problem:
        for rule in result.rules:
            if rule.kind in ("champion", "significance"):
                rule.verdict, rule.reason = "fail", f"the champion could not be scored: {champion_problem}"
        result.verdict = "fail"
    write_report(result, report_json, report_md, model_md5=dir_md5(inputs.model_dir))
    failed = result.failed()
    log.info("gate %s: %d rule(s), %d failed%s", result.verdict.upper(), len(result.rules), len(failed),
             "".join(f"\n  - {r.rule}: {r.reason}" for r in failed))
    return result


def single_row_p95_ms(model: Any, prep: Preprocessor, signature: CompiledSignature,
                      features: pd.DataFrame, samples: int) -> float:
    """p95 of single-row predictions through validation, preprocessing and the model."""
    import numpy as np

    rows = [features.iloc[[i % len(features)]] for i in range(samples)]
    for row in rows[:10]:  # warm-up
        model.predict_proba(prep.transform(validate_input(row, signature)))
    timings = []
    for row in rows:
        started = time.perf_counter()
        model.predict_proba(prep.transform(validate_input(row, signature)))
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(timings, 95))


def champion_evidence(
    cfg: Config, repo: Path, features: pd.DataFrame, y: Any, challenger: Any, classes: list[Any]
) -> Any:
    """Re-score the model in ``gate.champion_stage`` on the current test rows (None when none)."""
    from gitml.gate.rules import ChampionEvidence
    from gitml.gitops.git import repo_root
    from gitml.registry.fetch import fetch_bundle
    from gitml.registry.tags import stage_version

    try:
        root = repo_root(repo)
    except GitmlError:
        return None
    current = stage_version(root, cfg.registry.model, cfg.gate.champion_stage)
    if current is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        _, bundle = fetch_bundle(root, cfg.registry.model, Path(tmp) / "champion", version=current.version)
        if [str(c) for c in bundle.classes] != [str(c) for c in classes]:
            raise GitmlError(f"champion {current.version} predicts classes {bundle.classes}, the challenger others")
        proba = bundle.predict_proba(features)
    log.info("champion %s (stage %s) re-scored on %d current test rows <gate.champion_stage=%s>",
             current.version, cfg.gate.champion_stage, len(y), cfg.gate.champion_stage)
    return ChampionEvidence(version=current.version, y=y, proba_challenger=challenger, proba_champion=proba)

