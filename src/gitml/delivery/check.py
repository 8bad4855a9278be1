"""``gitml canary check``: read the split, the logs and the settings; judge; report (docs/delivery.md).

The split is the committed ``deploy/<model>.yaml``: the stable version is the one with the
largest share, every other version with a share is a canary. Each is judged against the
stable version (:mod:`gitml.delivery.compare`) on the rows each answered in the request-log
window, with the labels the feedback log holds for them.

What the logs do not record comes from the server's ``/metrics`` when ``--metrics-url`` is
given: a request that failed writes no request-log row, so the error rate per version is
``gitml_predict_failures_total`` over it plus ``gitml_routed_requests_total``, and latency per
version is ``gitml_predict_duration_seconds`` by ``model_version``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.config.schema import CanaryConfig
from gitml.delivery.compare import Comparison, compare
from gitml.errors import ConfigError, GitmlError

log = logging.getLogger(__name__)
EXIT_CODES = {"promote": 0, "wait": 0, "rollback": 1}  # 2: no verdict (an error)


@dataclass
class CanaryReport:
    """The outcome of one check of one model: a comparison per canary and the overall verdict."""

    model: str
    file: str  # the traffic file read
    verdict: str  # promote | rollback | wait
    stable: str
    comparisons: list[Comparison] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    proposed: dict[str, int] | None = None  # the split a pull request proposes (versions -> percent)
    pull_request: str = ""  # its URL, once opened or updated
    pull_action: str = ""  # opened | updated | unchanged
    applied: bool = False  # the rollback was written to the target directly (a hard limit)
    latency_source: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def hard(self) -> bool:
        return any(c.hard for c in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "file": self.file, "verdict": self.verdict, "stable": self.stable,
                "hard_limit_crossed": self.hard, "reasons": self.reasons, "proposed": self.proposed,
                "pull_request": self.pull_request, "pull_action": self.pull_action, "applied": self.applied,
                "latency_source": self.latency_source, "comparisons": [c.to_dict() for c in self.comparisons]}


def judge(model: str, file: Path, log_dir: str, cfg: CanaryConfig, latency: dict[str, float] | None = None,
          errors: dict[str, tuple[int, int]] | None = None) -> CanaryReport:
    """Judge every canary of ``model``'s committed split ``file`` on the logs in ``log_dir``."""
    from gitml.monitor.logs import read_feedback, read_requests
    from gitml.serve.traffic import read_traffic_file

    split = read_traffic_file(file)
    stable = split.stable
    report = CanaryReport(model, str(file), "wait", stable)
    canaries = [version for version in split.served if version != stable]
    if not canaries:
        report.reasons.append(f"no canary: {file} sends every request to {stable}")
        return report
    rows = read_requests(log_dir, window_rows=cfg.window_rows, window_hours=cfg.window_hours)
    regression = not any(c.startswith("proba_") for c in rows.columns)
    since = rows["ts"].min() if len(rows) else None
    labels = labelled_rows(rows, read_feedback(log_dir, since) if len(rows) else None)
    report.comparisons = [compare(stable, canary, rows, labels, cfg, regression=regression, latency=latency,
                                  errors=errors)
                          for canary in canaries]
    verdicts = {c.verdict for c in report.comparisons}
    for comparison in report.comparisons:
        report.reasons += [f"{comparison.canary}: {reason}" for reason in comparison.reasons]
    if "rollback" in verdicts:
        report.verdict, report.proposed = "rollback", {stable: 100}
    elif verdicts == {"promote"} and len(canaries) == 1:
        report.verdict, report.proposed = "promote", {canaries[0]: 100}
    elif verdicts == {"promote"}:
        report.reasons.append(f"several canaries ({', '.join(canaries)}) are healthy: choose one in {file} by hand")
    return report


def labelled_rows(rows: Any, feedback: Any) -> Any:
    """Request-log rows (version, prediction, probabilities) joined with their first label."""
    import pandas as pd

    from gitml.monitor.logs import KEYS

    columns = [c for c in rows.columns if c in ("model_version", "prediction") or c.startswith("proba_")]
    if feedback is None or feedback.empty or rows.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in [*columns, "label"]})
    requests = rows.drop_duplicates(KEYS, keep="last")[[*KEYS, *columns]]
    joined = requests.merge(feedback[[*KEYS, "label"]], on=KEYS, how="inner", validate="one_to_one")
    return joined[[*columns, "label"]].reset_index(drop=True)


def scrape_metrics(url: str) -> str:
    """A server's ``/metrics`` text; the canary check reads latency and errors per version from it."""
    import httpx

    try:
        answer = httpx.get(url, timeout=10)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise GitmlError(f"Cannot read {url} (--metrics-url): {exc}") from exc
    return answer.text


def errors_from_metrics(text: str, model: str | None = None) -> dict[str, tuple[int, int]]:
    """``(failed, predictions)`` per version of ``model`` in Prometheus text, summed over the stable and
    canary roles and every worker (a failed prediction is not in ``gitml_routed_requests_total``)."""
    counts: dict[str, list[int]] = {}
    pattern = re.compile(r'^gitml_(routed_requests|predict_failures)_total\{([^}]*)\} (\S+)$', re.M)
    for kind, labels, value in pattern.findall(text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if found.get("role") not in ("stable", "canary") or (model and found.get("model", model) != model):
            continue
        pair = counts.setdefault(found.get("model_version", ""), [0, 0])
        pair[0 if kind == "predict_failures" else 1] += int(float(value))
    return {version: (failed, failed + ok) for version, (failed, ok) in counts.items()}


def latency_from_metrics(text: str, model: str | None = None) -> dict[str, float]:
    """Mean ``gitml_predict_duration_seconds`` per version of ``model`` in Prometheus text, summed over
    the stable and canary roles and every worker; the shadow's (predicted after the answer) left out."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    pattern = re.compile(r'^gitml_predict_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$', re.M)
    for kind, labels, value in pattern.findall(text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if found.get("role") == "shadow" or (model and found.get("model", model) != model):
            continue
        version = found.get("model_version", "")
        bucket = sums if kind == "sum" else counts
        bucket[version] = bucket.get(version, 0.0) + float(value)
    return {v: sums[v] / counts[v] for v in sums if counts.get(v)}


def write_report(report: CanaryReport, out: Path) -> None:
    """canary.json and canary.md in ``out``, atomically."""
    from gitml.utils.atomic import write_text

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "canary.json", json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    write_text(out / "canary.md", markdown(report))


def markdown(report: CanaryReport) -> str:
    """The evidence as a table: the pull request's body and canary.md."""
    lines = [f"## Canary check of `{report.model}`: **{report.verdict}**", "",
             f"Traffic file `{report.file}`; stable version `{report.stable}`."]
    if report.proposed:
        lines.append(f"Proposed split: `{json.dumps(report.proposed)}`.")
    if report.applied:
        lines.append("**A hard limit was crossed and `canary.apply_rollback` is on: the rollback was applied "
                     "to the target directly.** Merge this to keep the committed file in step.")
    for comparison in report.comparisons:
        lines += ["", f"### `{comparison.canary}` against `{comparison.stable}`: {comparison.verdict}", "",
                  f"Rows: stable {comparison.rows[comparison.stable]}, canary {comparison.rows[comparison.canary]}; "
                  f"labelled: stable {comparison.labelled[comparison.stable]}, "
                  f"canary {comparison.labelled[comparison.canary]}.", ""]
        if comparison.checks:
            lines += ["| check | stable | canary | effect | p-value | limit | hard limit | result |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- |"]
            for c in comparison.checks:
                result = "HARD" if c.hard else ("fail" if c.failed else "ok")
                lines.append(f"| {c.name} | {_cell(c.stable)} | {_cell(c.canary)} | {_cell(c.effect)} | "
                             f"{_cell(c.p_value)} | {c.limit:g} | {c.hard_limit:g} | {result} |")
    lines += ["", "### Reasons", "", *[f"- {r}" for r in report.reasons or ["none"]], "",
              "Error rate per version is not compared: the server does not count failed requests by version "
              "(docs/delivery.md). Opened by `gitml canary check`."]
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def check_config(cfg: CanaryConfig, source: str) -> None:
    from gitml.config.rules_canary import canary_problems

    problems = canary_problems(cfg)
    if problems:
        raise ConfigError.of(source, problems)
