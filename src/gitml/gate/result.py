"""What the gate decides: one :class:`RuleResult` per rule, the :class:`GateResult`, and the champion's evidence."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

VERDICTS = ("pass", "fail", "skip")


@dataclass
class RuleResult:
    """The outcome of one gate rule."""

    rule: str  # human name: "test.roc_auc >= 0.9"
    kind: str  # baseline | threshold | fairness | champion | significance | latency | latency_ratio | bundle_size
    value: float | None
    bound: str
    verdict: str  # pass | fail | skip
    reason: str


@dataclass
class ChampionEvidence:
    """The champion and the challenger scored on the same rows of the current test split."""

    version: str
    y: np.ndarray  # label codes (regression: the numbers)
    proba_challenger: np.ndarray  # class probabilities (regression: predicted numbers)
    proba_champion: np.ndarray | None  # None when the champion could not be scored (``problem`` says why)
    problem: str | None = None
    # The champion predicts something else (another task or class set): nothing to compare,
    # so the champion rules are skipped with ``problem`` as the reason, not failed.
    incomparable: bool = False


@dataclass
class LatencyEvidence:
    """p95 of single-row requests through the server's path, measured by the gate in this run."""

    p95_ms: float  # the challenger's
    champion_p95_ms: float | None  # None: no champion measured
    samples: int

    @property
    def ratio(self) -> float | None:
        if self.champion_p95_ms is None or self.champion_p95_ms <= 0:
            return None
        return self.p95_ms / self.champion_p95_ms


@dataclass
class GateResult:
    """All rule outcomes; ``verdict`` is ``"pass"`` when no rule failed."""

    verdict: str
    rules: list[RuleResult] = field(default_factory=list)
    champion_version: str | None = None

    def failed(self) -> list[RuleResult]:
        """The rules that failed, in evaluation order."""
        return [r for r in self.rules if r.verdict == "fail"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: verdict, champion version, counts per verdict and every rule."""
        counts = {v: sum(r.verdict == v for r in self.rules) for v in VERDICTS}
        rules = []
        for r in self.rules:
            row, value = asdict(r), r.value
            row["value"] = float(value) if value is not None and math.isfinite(value) else None
            rules.append(row)
        return {
            "verdict": self.verdict,
            "champion_version": self.champion_version,
            "counts": {**counts, "total": len(self.rules)},
            "rules": rules,
        }


def fmt(value: float) -> str:
    return f"{value:.4g}"
