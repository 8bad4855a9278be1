"""Estimated performance of the drift window (CBPE, :mod:`gitml.monitor.cbpe`) beside the realised one.

The window is cut into chunks of ``drift.cbpe.chunk_rows`` rows (oldest first). For each chunk
and for the whole window: the estimate from the logged probabilities, and the realised metric
on the rows whose labels have arrived (feedback log), when there are at least
:data:`REALISED_MIN` of them. The calibration is fitted, as NannyML's CBPE does, on reference
data with labels: the bundle's held-out scored rows and their true labels (packaged beside the
answers), so the estimate stands on its own before any production label arrives and the
realised value checks it. A bundle packaged without those labels falls back to the window's
labelled rows (``drift.cbpe.min_labelled`` at least, else the probabilities are used as they
are); on those rows estimate and realised then agree by construction.

An estimate of a metric the gate's whole-test-split thresholds bound, past that bound, is a
retraining reason (:attr:`Performance.breaches`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.config.schema import CbpeConfig, DriftConfig, GateConfig
    from gitml.package.bundle import Bundle

REALISED_MIN = 20  # labelled rows a realised metric needs to be shown (fewer: noise)


@dataclass
class Performance:
    """``drift.json``'s ``performance``: the estimate for the window and per chunk, and the realised metrics."""

    metric: str
    metrics: list[str]
    calibration: str
    rows: int
    n_labelled: int
    estimated: dict[str, float | None]
    realised: dict[str, float | None] | None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One console line: the window's estimate of ``metric`` and the realised value, if any."""
        estimated, realised = self.estimated.get(self.metric), (self.realised or {}).get(self.metric)
        line = f"performance: {self.metric} estimated " + ("n/a" if estimated is None else f"{estimated:.4f}")
        line += f" (CBPE on {self.rows} rows)"
        return line + (f", realised {realised:.4f} on {self.n_labelled} labelled rows" if realised is not None
                       else f"; {self.n_labelled} labelled rows, too few for a realised value")

    def to_dict(self) -> dict[str, Any]:
        return {"method": "cbpe", "metric": self.metric, "metrics": self.metrics, "calibration": self.calibration,
                "rows": self.rows, "n_labelled": self.n_labelled, "estimated": self.estimated,
                "realised": self.realised, "chunks": self.chunks, "breaches": self.breaches}


def window_performance(bundle: Bundle, window: pd.DataFrame, feedback: pd.DataFrame, cfg: DriftConfig,
                       gate: GateConfig | None, notes: list[str]) -> Performance | None:
    """:func:`estimate_performance` with ``drift.cbpe`` and the gate's rules; a failure is a note, not an error:
    the drift verdict stands without the estimate."""
    from gitml.errors import GitmlError
    from gitml.monitor.metrics import gated_rules

    try:
        return estimate_performance(bundle, window, feedback, cfg.cbpe, gated_rules(gate, bundle.metadata), notes)
    except GitmlError as exc:
        notes.append(f"performance estimate skipped: {exc}")
        return None


def estimate_performance(bundle: Bundle, window: pd.DataFrame, feedback: pd.DataFrame, cfg: CbpeConfig,
                         gated: list[dict[str, Any]], notes: list[str]) -> Performance | None:
    """CBPE over ``window`` (rows sorted by time), or None when off or not a classifier.

    ``gated``: the gate's whole-test-split threshold rules (plain dicts: metric, min, max).
    """

    from gitml.monitor.cbpe import ESTIMATED, fit_calibrator
    from gitml.monitor.metrics import answers

    if not cfg.enabled or bundle.regression or window.empty:
        return None
    rows = window.sort_values("ts", kind="stable").reset_index(drop=True)
    proba = answers(bundle, rows)
    truth = _truth(bundle, rows, feedback)
    labelled = truth >= 0
    metrics = list(dict.fromkeys([cfg.metric, *(r["metric"] for r in gated if r["metric"] in ESTIMATED)]))
    reference = _reference(bundle) if cfg.calibration == "isotonic" else None
    if reference is not None and len(reference[1]) >= cfg.min_labelled:
        calibrator = fit_calibrator(*reference, "isotonic")
        where = f"{len(reference[1])} labelled held-out rows of the bundle"
        calibration = (f"isotonic on {where}" if calibrator.applied else
                       f"none: isotonic did not lower the calibration error on {where}")
    elif cfg.calibration == "isotonic" and labelled.sum() >= cfg.min_labelled:
        calibrator = fit_calibrator(proba[labelled], truth[labelled], "isotonic")
        calibration = (f"isotonic on {int(labelled.sum())} labelled rows" if calibrator.applied else
                       f"none: isotonic did not lower the calibration error on {int(labelled.sum())} labelled rows")
    else:
        calibrator, calibration = fit_calibrator(proba, truth, "none"), "none"
        if cfg.calibration == "isotonic":
            held_out = ("the bundle holds no held-out labels (packaged before they were kept: repackage it)"
                        if reference is None else f"the bundle holds {len(reference[1])} held-out labels")
            notes.append(f"performance estimated from uncalibrated probabilities: {held_out} and the window "
                         f"{int(labelled.sum())}; drift.cbpe.min_labelled={cfg.min_labelled} needed to calibrate.")
    calibrated = calibrator.apply(proba)
    out = Performance(cfg.metric, metrics, calibration, len(rows), int(labelled.sum()),
                      _estimate(calibrated, proba, metrics), _realised(bundle, truth, proba, metrics))
    size = cfg.chunk_rows
    for start in range(0, len(rows), size):
        part = slice(start, start + size)
        out.chunks.append({
            "start": rows["ts"].iloc[start].isoformat(), "end": rows["ts"].iloc[min(start + size, len(rows)) - 1]
            .isoformat(), "rows": len(proba[part]), "n_labelled": int(labelled[part].sum()),
            "estimated": _estimate(calibrated[part], proba[part], metrics),
            "realised": _realised(bundle, truth[part], proba[part], metrics),
        })
    out.breaches = [_breach(out.estimated.get(r["metric"]), r, out) for r in gated
                    if _breaks(out.estimated.get(r["metric"]), r)]
    return out


def _reference(bundle: Bundle) -> tuple[np.ndarray, np.ndarray] | None:
    """The bundle's held-out answers and their true class indices (rows whose label is not one of the
    classes left out), or None for a bundle packaged without the labels."""
    from gitml.monitor.logs import typed_labels
    from gitml.monitor.metrics import class_codes
    from gitml.package.bundle import REFERENCE_LABEL

    scored = bundle.reference_predictions()
    if REFERENCE_LABEL not in scored.columns:
        return None
    truth = class_codes(bundle, typed_labels(scored[REFERENCE_LABEL], bundle.classes))
    known = truth >= 0
    return scored.loc[known, bundle.signature.proba_columns].to_numpy(dtype="float64"), truth[known]


def _truth(bundle: Bundle, rows: pd.DataFrame, feedback: pd.DataFrame) -> np.ndarray:
    """Each window row's class index from the feedback log; -1 where no (usable) label arrived."""
    import numpy as np

    from gitml.monitor.logs import KEYS, typed_labels
    from gitml.monitor.metrics import class_codes

    if feedback.empty:
        return np.full(len(rows), -1)
    joined = rows[KEYS].merge(feedback[[*KEYS, "label"]].drop_duplicates(KEYS), on=KEYS, how="left")
    known = joined["label"].notna().to_numpy()
    codes = np.full(len(rows), -1)
    if known.any():
        codes[known] = class_codes(bundle, typed_labels(joined.loc[known, "label"], bundle.classes))
    return codes


def _estimate(calibrated: np.ndarray, proba: np.ndarray, metrics: list[str]) -> dict[str, float | None]:
    from gitml.monitor.cbpe import estimate

    return estimate(calibrated, metrics, proba=proba)


def _realised(bundle: Bundle, truth: np.ndarray, proba: np.ndarray, metrics: list[str]) -> dict[str, float | None] | None:
    from gitml.evaluate.metrics import classification_metrics

    known = truth >= 0
    if known.sum() < REALISED_MIN:
        return None
    scores = classification_metrics(truth[known], proba[known], bundle.classes)
    return {m: scores.get(m) for m in metrics}


def _breaks(value: float | None, rule: dict[str, Any]) -> bool:
    low, high = rule.get("min"), rule.get("max")
    return value is not None and ((low is not None and value < low) or (high is not None and value > high))


def _breach(value: float | None, rule: dict[str, Any], out: Performance) -> str:
    low = rule.get("min")
    bound = f"below the gate's min {low}" if low is not None and (value or 0) < low else f"above the gate's max {rule.get('max')}"
    return (f"estimated performance: {rule['metric']} ~ {value:.4f} (CBPE on {out.rows} rows, {out.n_labelled} "
            f"labelled; calibration {out.calibration}) is {bound}")


def performance_lines(perf: Performance) -> list[str]:
    """drift.md's section: the window's estimate beside the realised metric, then each chunk."""
    def cell(values: dict[str, float | None] | None, name: str) -> str:
        value = (values or {}).get(name)
        return "-" if value is None else f"{value:.4f}"

    lines = [f"CBPE from the logged probabilities (calibration: {perf.calibration}); realised on the rows whose "
             f"labels have arrived (at least {REALISED_MIN}). {perf.n_labelled} of {perf.rows} rows labelled.", "",
             "| metric | estimated | realised |", "| --- | ---: | ---: |"]
    lines += [f"| {m} | {cell(perf.estimated, m)} | {cell(perf.realised, m)} |" for m in perf.metrics]
    lines += ["", f"| chunk | from (UTC) | rows | labelled | estimated {perf.metric} | realised {perf.metric} |",
              "| ---: | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {i} | {c['start'][:19]} | {c['rows']} | {c['n_labelled']} | {cell(c['estimated'], perf.metric)} | "
              f"{cell(c['realised'], perf.metric)} |" for i, c in enumerate(perf.chunks, 1)]
    return lines + (["", *(f"- **{b}**" for b in perf.breaches)] if perf.breaches else [])
