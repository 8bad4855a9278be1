"""``gitml drift check``: the bundle's reference sample against the recent request log.

Reads the window (``drift.window_rows`` / ``drift.window_hours``), tests the features with
``drift.detector`` and, with ``drift.predictions``, the predicted probabilities (for
regression, the predicted numbers); when the window has labels (the feedback log), compares
the model's metrics on them with the bundle's test metrics. Writes the report (:mod:`gitml.monitor.report`) and returns it.

Verdict: drift when the feature detector or the prediction detector says so, each at
``drift.p_val``. The metrics change is reported, not voted: labels arrive late and few.
Before any detector runs, the window's files are compared with the bundle's signature and
its values counted (:mod:`gitml.monitor.quality`): a schema change or a feature past
``drift.max_invalid_share`` is its own verdict (``schema_change``, ``invalid_data``), exit 2,
with a report that says which columns; repeated ``(request_id, row)`` are dropped on reading
and counted.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.config.schema import DriftConfig, GateConfig
from gitml.errors import DriftCheckError, GitmlError
from gitml.monitor.detectors import DriftResult
from gitml.monitor.metrics import prediction_rows
from gitml.monitor.quality import FeatureQuality, SchemaChange, over_limit
from gitml.monitor.settings import validate_drift_config
from gitml.utils.storage import Location, exists, join, location

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from gitml.monitor.detectors import Detector
    from gitml.monitor.performance import Performance
    from gitml.package.bundle import Bundle

log = logging.getLogger(__name__)

EXIT_NO_DRIFT, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2


@dataclass
class DriftReport:
    """Everything ``drift.json`` holds; ``exit_code`` is what the command exits with.

    ``features`` is None when no detector ran: the window's schema differs from the
    signature (``schema``) or a feature's invalid share is past the limit (``quality``).
    """

    is_drift: bool
    bundle: dict[str, Any]
    window: dict[str, Any]
    features: DriftResult | None
    predictions: DriftResult | None
    metrics: dict[str, Any] | None
    config: dict[str, Any]
    cache: dict[str, str]
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    schema: SchemaChange | None = None
    quality: list[FeatureQuality] = field(default_factory=list)
    performance: Performance | None = None  # CBPE estimate beside the realised metrics (classifiers)

    @property
    def invalid(self) -> list[FeatureQuality]:
        """Features past ``drift.max_invalid_share``."""
        return over_limit(self.quality, self.config["max_invalid_share"])

    @property
    def verdict(self) -> str:
        if self.schema is not None:
            return "schema_change"
        if self.invalid:
            return "invalid_data"
        return "drift" if self.is_drift else "no drift"

    @property
    def exit_code(self) -> int:
        if self.verdict in ("schema_change", "invalid_data"):
            return EXIT_ERROR
        return EXIT_DRIFT if self.is_drift else EXIT_NO_DRIFT

    def input_summary(self) -> list[str]:
        """Console lines on the input data: repeats dropped, features with missing or infinite values."""
        lines = []
        if self.window.get("duplicates_dropped"):
            lines.append(f"input: {self.window['duplicates_dropped']} repeated row(s) dropped "
                         f"({self.window['duplicates_conflicting']} with other values)")
        flawed = [q for q in self.quality if q.missing or q.infinite]
        shown = "; ".join(q.describe() for q in flawed[:5]) + (f"; and {len(flawed) - 5} more" if len(flawed) > 5 else "")
        return lines + ([f"input: {shown}"] if flawed else [])

    @property
    def reasons(self) -> list[str]:
        """One sentence per schema difference, per feature past the limit, or per detector that found drift."""
        if self.schema is not None or self.invalid:
            limit = self.config["max_invalid_share"]
            return [*(self.schema.reasons if self.schema else []),
                    *(f"invalid values: {q.describe()}; {q.invalid:.1%} invalid is above "
                      f"drift.max_invalid_share={limit}" for q in self.invalid)]
        out = []
        if self.features is not None and self.features.is_drift:
            out.append(_reason(self.features, "features"))
        if self.predictions is not None and self.predictions.is_drift:
            out.append(_reason(self.predictions, "predictions"))
        return out + (self.performance.breaches if self.performance is not None else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "is_drift": self.is_drift, "exit_code": self.exit_code,
            "reasons": self.reasons, "detector": self.config["detector"], "bundle": self.bundle,
            "window": self.window, "schema": self.schema.to_dict() if self.schema else None,
            "quality": {q.name: q.to_dict() for q in self.quality},
            "features": self.features.to_dict() if self.features else None,
            "predictions": self.predictions.to_dict() if self.predictions else None,
            "metrics": self.metrics, "performance": self.performance.to_dict() if self.performance else None,
            "config": self.config, "cache": self.cache,
            "notes": self.notes, "files": self.files,
        }


def drift_check(
    bundle_dir: str | Path, log_dir: str | Path, cfg: DriftConfig, out_dir: str | Path,
    cache_dir: str | Path | None = None, *, now: datetime | None = None, plots: bool = False,
    gate: GateConfig | None = None,
) -> DriftReport:
    """Test the recent request log for drift against the bundle; write the report to ``out_dir``.

    Raises DriftCheckError (exit 2) when no verdict is possible: a bad bundle, no log,
    fewer than ``drift.min_rows`` rows in the window; an earlier report in ``out_dir`` is
    removed then. A schema change or a feature past
    ``drift.max_invalid_share`` is a report too (verdict ``schema_change`` or
    ``invalid_data``, ``exit_code`` 2): the detectors do not run.

    Example:
        >>> report = drift_check("models/bundle", "logs", params.drift, "reports/drift",
        ...                      ".gitml/drift-cache")
        >>> report.verdict, report.features.drifted_features
        ('drift', ['num_0', 'num_1'])
    """
    from gitml.monitor.logs import read_feedback, read_window
    from gitml.monitor.quality import schema_change, value_quality
    from gitml.monitor.report import clear_report, write_report

    try:
        validate_drift_config(cfg)
        bundle = _read_bundle(Path(bundle_dir))
        read = read_window(log_dir, cfg.window_rows, cfg.window_hours, now=now)
        window = read.rows
        _check_window(window, cfg, location(log_dir, "log folder"))
    except GitmlError:
        clear_report(Path(out_dir))  # an earlier verdict there is not this run's: retrain-pr must not act on it
        raise
    notes = _duplicate_notes(read.duplicates, read.conflicting)
    if dates := [c.name for c in bundle.signature.inputs if c.dtype == "datetime"]:
        notes.append(f"date column(s) {', '.join(dates)} not tested for drift: production rows are dated after "
                     "the training range by nature; labelled rows and prediction drift still cover them.")
    schema = schema_change(read.layouts, bundle.signature)
    report = DriftReport(
        is_drift=False, features=None, predictions=None, metrics=None, cache={},
        bundle={"path": str(bundle_dir), "bundle_id": bundle.id, "version": bundle.version, "task": bundle.task},
        window={**_window_summary(window, cfg), "duplicates_dropped": read.duplicates,
                "duplicates_conflicting": read.conflicting},
        config=_config_dict(cfg), notes=notes, schema=schema,
        quality=value_quality(window, bundle.signature, schema),
    )
    if report.exit_code != EXIT_ERROR:  # the detectors see only a window that fits the signature
        _judge(report, window, bundle, cfg, Path(cache_dir) if cache_dir is not None else None,
               read_feedback(log_dir, since=window["ts"].min()), gate)
    write_report(report, Path(out_dir), reference=bundle.reference(), current=window,
                 top_features=cfg.top_features, plots=plots)
    log.debug("drift check: %s on %d rows <drift.detector=%s>", report.verdict, len(window), cfg.detector.value)
    return report


def _judge(report: DriftReport, window: pd.DataFrame, bundle: Bundle, cfg: DriftConfig, cache: Path | None,
           feedback: pd.DataFrame, gate: GateConfig | None) -> None:
    """The detectors, the metrics on labelled rows and the performance estimate, into ``report``; the verdict."""
    from gitml.monitor.metrics import label_metrics
    from gitml.monitor.performance import window_performance

    notes = report.notes
    result = _feature_drift(window, bundle, cfg, cache, report.cache)
    predictions = _prediction_drift(window, bundle, cfg, cache, report.cache, notes) if cfg.predictions else None
    report.features, report.predictions = result, predictions
    report.metrics = label_metrics(bundle, window, feedback, notes, gate)
    report.performance = window_performance(bundle, window, feedback, cfg, gate, notes)
    report.is_drift = (result.is_drift or bool(predictions and predictions.is_drift)
                       or bool(report.performance and report.performance.breaches))


def _cached(cache: Path | None, bundle: Bundle, cfg: DriftConfig, name: str,
            fit: Callable[[], Detector], statuses: dict[str, str]) -> Detector:
    """The ``name`` detector from the cache, or fitted (and saved); records what happened."""
    from gitml.monitor.cache import cache_key, load_or_fit

    detector, statuses[name] = load_or_fit(cache, cache_key(bundle.id, name, cfg, bundle.fingerprint), fit)
    return detector


def _feature_drift(window: pd.DataFrame, bundle: Bundle, cfg: DriftConfig,
                   cache: Path | None, statuses: dict[str, str]) -> DriftResult:
    from gitml.monitor.detectors import fit_detector

    def fitter(kind: str) -> Callable[[], Detector]:
        return lambda: fit_detector(kind, bundle.reference(), bundle.signature, cfg)

    kind = cfg.detector.value
    result = _cached(cache, bundle, cfg, kind, fitter(kind), statuses).test(window)
    if kind not in ("ks", "tabular"):
        # A multivariate verdict names no feature: add per-feature tests to say which moved.
        explain = _cached(cache, bundle, cfg, "tabular", fitter("tabular"), statuses)
        result.features, result.diagnostic = explain.test(window).features, True
    return result


def _prediction_drift(window: pd.DataFrame, bundle: Bundle, cfg: DriftConfig,
                      cache: Path | None, statuses: dict[str, str], notes: list[str]) -> DriftResult | None:
    from gitml.monitor.detectors import fit_prediction_detector, prediction_outputs

    rows = prediction_rows(window, bundle, cfg.min_rows, notes)
    if rows is None:
        return None
    outputs = prediction_outputs(bundle.signature)
    fit = lambda: fit_prediction_detector(bundle.reference_predictions(), outputs, cfg)  # noqa: E731
    return _cached(cache, bundle, cfg, "predictions", fit, statuses).test(rows)


# ------------------------------------------------------------------------- config


def _read_bundle(path: Path) -> Bundle:
    """The verified bundle, without its model (built only if labelled rows need it)."""
    from gitml.package.bundle import load_bundle

    if not path.is_dir():
        raise DriftCheckError(f"Bundle folder '{path}' does not exist. Build one with `dvc repro` "
                              "or fetch one with `gitml fetch`.")
    try:
        # Everything comes from the bytes that were hashed: a bundle replaced meanwhile is an error, not a mix.
        bundle = load_bundle(path, model=False)
        bundle.reference(), bundle.reference_predictions()  # present and readable, or exit 2 now
    except GitmlError as exc:
        raise DriftCheckError(str(exc)) from exc
    return bundle


def _check_window(window: pd.DataFrame, cfg: DriftConfig, log_dir: Location) -> None:
    limits = f"drift.window_rows={cfg.window_rows}, drift.window_hours={cfg.window_hours}"
    requests = join(log_dir, "requests")
    if window.empty and not (requests.is_dir() if isinstance(requests, Path) else exists(requests)):
        raise DriftCheckError(f"No request log under '{log_dir}/requests': nothing to check. "
                              "`gitml serve` writes it (serve.log_dir).")
    if len(window) < cfg.min_rows:
        raise DriftCheckError(
            f"Only {len(window)} logged row(s) in the window ({limits}); a verdict needs at least "
            f"drift.min_rows={cfg.min_rows}. Wait for more traffic or widen the window."
        )


def _duplicate_notes(duplicates: int, conflicting: int) -> list[str]:
    if not duplicates:
        return []
    note = (f"{duplicates} repeated row(s) dropped: the same (request_id, row) was read more than once "
            "(a log file shipped twice?); each row counts once.")
    if conflicting:
        note += (f" {conflicting} of them held other values than the row kept (the earliest): "
                 "the log has been altered or two writers share request ids.")
    return [note]


def _window_summary(window: pd.DataFrame, cfg: DriftConfig) -> dict[str, Any]:
    versions = window["model_version"].astype(str).value_counts() if "model_version" in window else None
    return {
        "rows": len(window), "window_rows": cfg.window_rows, "window_hours": cfg.window_hours,
        "start": window["ts"].min().isoformat(), "end": window["ts"].max().isoformat(),
        "model_versions": {} if versions is None else {k: int(v) for k, v in versions.items()},
    }


def _config_dict(cfg: DriftConfig) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in asdict(cfg).items()}


def _reason(result: DriftResult, what: str) -> str:
    if result.p_value is not None:  # multivariate: one test, features only explain it
        top = ", ".join(f.name for f in result.features[:3])
        return (f"{what}: {result.detector} test p-value {result.p_value_text}, below {result.threshold:.3g}"
                + (f"; largest univariate changes: {top}" if top else ""))
    names = result.drifted_features
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    means = [f"{n} mean {s['reference']['mean']:.4g} -> {s['current']['mean']:.4g}" for n in names[:3]
             if "mean" in (s := result.summary.get(n, {})).get("reference", {}) and "mean" in s["current"]]
    return f"{what}: {len(names)} of {len(result.features)} drifted ({shown})" + "".join(f"; {m}" for m in means)
