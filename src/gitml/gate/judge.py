"""Judge a packaged bundle: every gate rule, measured on the bundle itself.

The metrics are the ones packaged in the bundle; the size is the bundle's own; the latency
is single-row requests through the server's parsing, validation and predict path; the
champion is fetched from the registry as a bundle and both are scored on the same
current test rows. :func:`judge` never raises over a rule: a champion that cannot be
scored fails the champion rules with the reason.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.config.schema import Config
from gitml.errors import GitmlError
from gitml.gate.rules import ChampionEvidence, GateResult, evaluate_gate

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.package.bundle import Bundle

log = logging.getLogger(__name__)


def judge(cfg: Config, bundle: Bundle, test_rows: pd.DataFrame, repo: Path = Path(".")) -> GateResult:
    """Every rule of ``cfg.gate`` for ``bundle``, with ``test_rows`` (the prepared test split).

    Example:
        >>> result = judge(cfg, load_bundle("models/bundle"), pd.read_parquet("data/prepared/test.parquet"))
        >>> result.verdict  # doctest: +SKIP
        'pass'
    """
    budgets = cfg.gate.budgets
    features = test_rows[bundle.signature.features]
    latency = None
    if budgets.max_latency_p95_ms is not None:
        latency = serving_p95_ms(bundle, features, budgets.latency_samples)
    size = bundle.size_bytes / 1e6 if budgets.max_bundle_mb is not None else None
    champion = None
    if cfg.gate.champion.enabled:
        y = bundle.preprocessor.encode_labels(test_rows[cfg.data.target])
        champion = champion_evidence(cfg, repo, bundle, features, y)
    return evaluate_gate(cfg.gate, bundle.metadata.get("metrics") or {}, champion, latency, size)


def serving_p95_ms(bundle: Bundle, features: pd.DataFrame, samples: int) -> float:
    """p95 of one-row JSON requests through the server's own path, less HTTP and logging.

    Each request is parsed by the server's /invocations parser, validated against the
    signature, predicted, and answered as the server's JSON rows.
    """
    import numpy as np

    from gitml.serve.formats import parse_invocations
    from gitml.serve.model import ServedModel

    served = ServedModel(bundle, bundle.version, str(bundle.path), bundle.signature.compiled)
    records = features.head(samples).to_dict("records")  # one conversion, not one per request
    bodies = [json.dumps({"dataframe_records": [records[i % len(records)]]}, default=str).encode()
              for i in range(samples)]

    def answer(body: bytes) -> None:
        parsed = parse_invocations(body, "application/json", served.signature, 1)
        json.dumps({"predictions": served.predictions(served.predict(parsed.frame))}, default=str)

    for body in bodies[:10]:  # warm-up
        answer(body)
    timings = []
    for body in bodies:
        started = time.perf_counter()
        answer(body)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(timings, 95))


def champion_evidence(cfg: Config, repo: Path, bundle: Bundle, features: pd.DataFrame,
                      y: np.ndarray) -> ChampionEvidence | None:
    """The bundle and the model in ``gate.champion_stage`` scored on the same rows (None: no champion)."""
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
    challenger = bundle.predict_proba(features)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _, champion = fetch_bundle(root, cfg.registry.model, Path(tmp) / "champion", version=current.version)
            if champion.signature.class_names != bundle.signature.class_names:
                raise GitmlError(f"champion {current.version} predicts classes {champion.classes}, "
                                 f"the challenger {bundle.classes}")
            proba = champion.predict_proba(features)
    except GitmlError as exc:
        return ChampionEvidence(current.version, y, challenger, None, problem=str(exc))
    log.info("champion %s (stage %s) re-scored on %d current test rows <gate.champion_stage=%s>",
             current.version, cfg.gate.champion_stage, len(features), cfg.gate.champion_stage)
    return ChampionEvidence(current.version, y, challenger, proba)
