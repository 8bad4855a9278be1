"""Judge a packaged bundle: every gate rule, measured on the bundle itself.

The metrics are the ones packaged in the bundle; the size is the bundle's own; the latency
is single-row requests through the server's parsing, validation and predict path; the
champion is fetched from the registry as a bundle and both are scored on the same
current test rows. Latency against the champion is measured in this run with the two
models' requests interleaved, so whatever else loads the machine slows both alike.
:func:`judge` never raises over a rule: a champion that cannot be scored fails the
champion rules with the reason.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.config.schema import Config
from gitml.errors import GitmlError
from gitml.gate.result import LatencyEvidence
from gitml.gate.rules import ChampionEvidence, GateResult, evaluate_gate

if TYPE_CHECKING:
    import pandas as pd

    from gitml.package.bundle import Bundle

log = logging.getLogger(__name__)
WARM_UP = 10  # requests per model before timing starts


def judge(cfg: Config, bundle: Bundle, test_rows: pd.DataFrame, repo: Path = Path(".")) -> GateResult:
    """Every rule of ``cfg.gate`` for ``bundle``, with ``test_rows`` (the prepared test split).

    Example:
        >>> result = judge(cfg, load_bundle("models/bundle"), pd.read_parquet("data/prepared/test.parquet"))
        >>> result.verdict  # doctest: +SKIP
        'pass'
    """
    budgets = cfg.gate.budgets
    size = bundle.size_bytes / 1e6 if budgets.max_bundle_mb is not None else None
    evidence, champion = None, None
    with champion_bundle(cfg, repo) as (version, fetched):
        if version is not None:
            evidence = champion_evidence(cfg, bundle, fetched, version, test_rows)
            if evidence.problem is None and not isinstance(fetched, GitmlError):
                champion = fetched
        latency = None
        if budgets.max_latency_p95_ms is not None or (budgets.max_latency_ratio is not None and champion):
            latency = measure_latency(bundle, champion, test_rows, budgets.latency_samples)
            log.info("single-row latency p95 %.3g ms%s over %d requests", latency.p95_ms,
                     f", champion {latency.champion_p95_ms:.3g} ms" if latency.champion_p95_ms else "",
                     latency.samples)
    return evaluate_gate(cfg.gate, bundle.metadata.get("metrics") or {}, evidence, latency, size)


@contextmanager
def champion_bundle(cfg: Config, repo: Path) -> Iterator[tuple[str | None, Bundle | GitmlError | None]]:
    """(version, bundle) of the model in ``gate.champion_stage``, fetched into a temporary folder.

    (None, None) when no version is in that stage (or ``repo`` is no git repository); the
    bundle is the GitmlError instead when the version cannot be fetched or verified.
    """
    from gitml.gitops.git import repo_root
    from gitml.registry.fetch import fetch_bundle
    from gitml.registry.tags import stage_version

    if not cfg.gate.champion.enabled:
        yield None, None
        return
    try:
        root = repo_root(repo)
    except GitmlError:
        yield None, None
        return
    current = stage_version(root, cfg.registry.model, cfg.gate.champion_stage)
    if current is None:
        yield None, None
        return
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _, fetched = fetch_bundle(root, cfg.registry.model, Path(tmp) / "champion", version=current.version)
        except GitmlError as exc:
            yield current.version, exc
            return
        yield current.version, fetched


def champion_evidence(cfg: Config, bundle: Bundle, champion: Bundle | GitmlError | None, version: str,
                      test_rows: pd.DataFrame) -> ChampionEvidence:
    """The challenger and the champion scored on the same rows of the current test split."""
    from gitml.package.bundle import Bundle

    y = bundle.preprocessor.encode_labels(test_rows[cfg.data.target])
    challenger = bundle.model_output(test_rows[bundle.signature.features])
    if not isinstance(champion, Bundle):
        problem = str(champion) if champion is not None else f"champion {version} could not be fetched"
        return ChampionEvidence(version, y, challenger, None, problem=problem)
    if champion.task != bundle.task:
        return ChampionEvidence(version, y, challenger, None, f"champion {version} is a {champion.task} model, "
                                f"the challenger a {bundle.task} one", incomparable=True)
    if champion.signature.class_names != bundle.signature.class_names:
        return ChampionEvidence(version, y, challenger, None, f"champion {version} predicts the classes "
                                f"{champion.classes}, the challenger {bundle.classes}", incomparable=True)
    try:
        missing = [c for c in champion.signature.features if c not in test_rows.columns]
        if missing:
            raise GitmlError(f"champion {version} reads columns today's data no longer has: {', '.join(missing)}")
        proba = champion.model_output(test_rows[champion.signature.features])
    except GitmlError as exc:
        return ChampionEvidence(version, y, challenger, None, problem=str(exc))
    log.info("champion %s (stage %s) re-scored on %d current test rows <gate.champion_stage=%s>",
             version, cfg.gate.champion_stage, len(test_rows), cfg.gate.champion_stage)
    return ChampionEvidence(version, y, challenger, proba)


def measure_latency(bundle: Bundle, champion: Bundle | None, test_rows: pd.DataFrame,
                    samples: int) -> LatencyEvidence:
    """p95 of one-row JSON requests through the server's own path, less HTTP and logging.

    Each request is parsed by the server's /invocations parser, validated against the
    signature, predicted, and answered as the server's JSON rows. With a champion, its
    requests alternate with the challenger's, so both see the same machine.
    """
    import numpy as np

    answers = [_answerer(bundle, test_rows, samples)]
    if champion is not None:
        answers.append(_answerer(champion, test_rows, samples))
    for answer in answers:
        for i in range(WARM_UP):
            answer(i)
    timings: list[list[float]] = [[] for _ in answers]
    for i in range(samples):
        for answer, own in zip(answers, timings, strict=True):
            started = time.perf_counter()
            answer(i)
            own.append((time.perf_counter() - started) * 1000)
    p95 = [float(np.percentile(t, 95)) for t in timings]
    return LatencyEvidence(p95[0], p95[1] if champion is not None else None, samples)


def _answerer(bundle: Bundle, test_rows: pd.DataFrame, samples: int) -> Callable[[int], None]:
    """answer(i): the i-th one-row request to ``bundle``, as the server handles it."""
    from gitml.serve.formats import parse_invocations
    from gitml.serve.model import ServedModel

    served = ServedModel(bundle, bundle.version, str(bundle.path), bundle.signature.compiled)
    # one conversion, not one per request
    records = test_rows[bundle.signature.features].head(samples).to_dict("records")
    bodies = [json.dumps({"dataframe_records": [record]}, default=str).encode() for record in records]

    def answer(i: int) -> None:
        parsed = parse_invocations(bodies[i % len(bodies)], "application/json", served.signature, 1)
        json.dumps({"predictions": served.predictions(served.predict(parsed.frame))}, default=str)

    return answer
