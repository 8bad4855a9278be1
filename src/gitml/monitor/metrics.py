"""What the model answered in a drift window: the rows prediction drift tests, and the
bundle's metrics on the labelled rows against its test metrics.

The metrics are reported next to the drift verdict, not voted into it: labels arrive late
and few. The metrics compared are a fixed set plus every metric the gate's thresholds name (read from
the bundle's own params), and the report lists each gate bound the labelled rows would
now break.

The answers scored (class probabilities, or a regression's predicted numbers) are the ones
the request log recorded for the rows this bundle answered (``model_version`` is its
version or id; package/logschema.py); only rows another model answered, or logged without
its answer, are predicted again, and only then is the model loaded (skops.io's import
alone takes about 1.5 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError
from gitml.package.logschema import MODEL_VERSION, PREDICTION

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.config.schema import GateConfig
    from gitml.package.bundle import Bundle

METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "pr_auc", "log_loss", "brier")
REGRESSION_METRICS = ("rmse", "mae", "r2")


def label_metrics(bundle: Bundle, window: pd.DataFrame, feedback: pd.DataFrame,
                  notes: list[str], gate: GateConfig | None = None) -> dict[str, Any] | None:
    """The bundle's metrics on the window's labelled rows against its test metrics, or None.

    Classification: accuracy, ROC AUC, ... of the probabilities; regression: RMSE, MAE and
    R^2 of the predicted numbers, with the ``decay`` of the metric the gate's baseline rule
    judges (``gate.baseline.metric``; ``auto`` is RMSE, lower is better). ``gate``: the
    repository's gate (params.yaml), whose whole-test-split thresholds the labelled rows are
    held to; without one, the gate a bundle recorded (bundles record no gate since the
    package stage stopped depending on it).
    """
    from gitml.monitor.logs import join_labels

    signature, target = bundle.signature, bundle.signature.label or "target"
    logged = [c for c in (MODEL_VERSION, *logged_outputs(signature)) if c in window.columns]
    rows = join_labels(window, feedback, target, signature.features, classes=bundle.classes, keep=logged,
                       regression=bundle.regression)
    if rows.empty:
        return None
    truth = rows[target].to_numpy(dtype="float64") if bundle.regression else class_codes(bundle, rows[target])
    if (bad := _unusable(truth, bundle.regression)).any():
        notes.append(f"{int(bad.sum())} label(s) " + ("that are not numbers" if bundle.regression
                     else f"outside the classes {bundle.classes}") + " ignored.")
        rows, truth = rows[~bad], truth[~bad]
    if rows.empty:
        return None
    try:
        output = answers(bundle, rows)
    except GitmlError as exc:  # the drift verdict stands without the metrics
        notes.append(f"metrics on labelled rows skipped: {exc}")
        return None
    current = _scores(bundle, truth, output)
    reference = (bundle.metadata.get("metrics") or {}).get("test") or {}
    rules = _gate_rules(gate, bundle.metadata)
    gated = _gated_metrics(rules)
    shown = REGRESSION_METRICS if bundle.regression else METRICS
    names = [m for m in dict.fromkeys([*shown, *(r["metric"] for r in gated)]) if m in current]
    table = {
        m: {"reference": reference.get(m), "current": current[m],
            "change": current[m] - reference[m] if isinstance(reference.get(m), (int, float)) else None,
            "gated": any(r["metric"] == m for r in gated)}
        for m in names
    }
    breaches = [_breach(current[r["metric"]], r, len(rows)) for r in gated
                if r["metric"] in current and _breaks(current[r["metric"]], r)]
    out = {"n_labelled": len(rows), "metrics": table, "gate_breaches": breaches}
    if bundle.regression:
        out = {"task": bundle.task, **out, "decay": _decay(rules, table)}
    return out


def logged_outputs(signature: Any) -> list[str]:
    """The request-log columns holding what the model answered: each class's probability,
    or for regression the predicted number (``prediction``; package/logschema.py)."""
    return [PREDICTION] if signature.regression else list(signature.proba_columns)


def prediction_rows(window: pd.DataFrame, bundle: Bundle, min_rows: int,
                    notes: list[str]) -> pd.DataFrame | None:
    """The window's rows answered by this bundle (all rows if too few), or None without the
    logged outputs (probabilities; for regression, the predicted numbers)."""
    from pandas.api.types import is_numeric_dtype

    columns = logged_outputs(bundle.signature)
    missing = [c for c in columns if c not in window.columns]
    if missing or not all(is_numeric_dtype(window[c]) for c in columns):
        found = (f"no column(s) {missing}" if missing
                 else f"{columns} as {window[columns].dtypes.astype(str).tolist()}")
        notes.append(f"prediction drift skipped: the request log has {found}, not the model's numbers.")
        return None
    rows = window.dropna(subset=columns)
    if "model_version" in rows.columns:
        mine = rows[answered_here(rows, bundle)]
        if len(mine) >= min_rows:
            return mine
        versions = sorted(rows["model_version"].astype(str).unique())
        if versions != [bundle.version]:
            notes.append(f"prediction drift tested on the predictions of model version(s) {versions}: "
                         f"only {len(mine)} row(s) were answered by this bundle ({bundle.version}).")
    return rows


def answered_here(rows: pd.DataFrame, bundle: Bundle) -> pd.Series:
    """True for each logged row this bundle answered (its ``model_version`` is the bundle's version or id)."""
    import pandas as pd

    if MODEL_VERSION not in rows.columns:
        return pd.Series(False, index=rows.index)
    return rows[MODEL_VERSION].astype(str).isin({bundle.version, bundle.id})


def answers(bundle: Bundle, rows: pd.DataFrame) -> np.ndarray:
    """The bundle's answers for ``rows``: class probabilities ``(n, k)`` or, for regression, the
    predicted numbers ``(n,)``; as logged where it answered them, else predicted."""
    import numpy as np
    from pandas.api.types import is_numeric_dtype

    columns = logged_outputs(bundle.signature)
    if all(c in rows.columns and is_numeric_dtype(rows[c]) for c in columns):
        logged = (answered_here(rows, bundle) & rows[columns].notna().all(axis=1)).to_numpy()
    else:
        logged = np.zeros(len(rows), dtype=bool)
    output = np.empty((len(rows), len(columns)), dtype="float64")
    output[logged] = rows.loc[logged, columns].to_numpy(dtype="float64")
    if not logged.all():  # the model is loaded here, on first use
        features = rows.loc[~logged, bundle.signature.features].reset_index(drop=True)
        output[~logged] = np.asarray(bundle.model_output(features), dtype="float64").reshape(-1, len(columns))
    return output[:, 0] if bundle.regression else output


def class_codes(bundle: Bundle, labels: pd.Series) -> np.ndarray:
    """Each label's index in the bundle's classes; -1 for a label outside them."""
    from gitml.monitor.logs import class_key

    index = {class_key(c): i for i, c in enumerate(bundle.classes)}
    return labels.map(lambda v: index.get(class_key(v), -1)).to_numpy()


def _unusable(truth: np.ndarray, regression: bool) -> np.ndarray:
    import numpy as np

    return ~np.isfinite(truth) if regression else truth < 0


def _scores(bundle: Bundle, truth: np.ndarray, output: np.ndarray) -> dict[str, Any]:
    from gitml.evaluate.metrics import classification_metrics, regression_metrics

    if bundle.regression:
        return regression_metrics(truth, output)
    return classification_metrics(truth, output, bundle.classes)


def _gate_rules(gate: GateConfig | None, metadata: dict[str, Any]) -> dict[str, Any]:
    """The gate as plain values: the one given, else the one the bundle's params recorded."""
    if gate is None:
        return (metadata.get("params") or {}).get("gate") or {}
    import dataclasses

    return {"baseline": {"metric": gate.baseline.metric},
            "thresholds": [dataclasses.asdict(rule) for rule in gate.thresholds]}


def _decay(gate: dict[str, Any], table: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The change of the metric the gate's baseline rule judged the bundle on, read in its own
    direction: ``worse`` when RMSE or MAE rose or R^2 fell (``relative``: the change as a share
    of the value at release)."""
    from gitml.gate.baseline import resolve_metric
    from gitml.gate.stats import LOWER_IS_BETTER

    named = resolve_metric(str((gate.get("baseline") or {}).get("metric") or "auto"), "regression", "baseline")
    metric = named if named in table else "rmse"
    row = table.get(metric)
    if row is None or row["change"] is None:
        return None
    lower = metric in LOWER_IS_BETTER
    relative = row["change"] / abs(row["reference"]) if row["reference"] else None
    return {"metric": metric, "higher_is_better": not lower, "reference": row["reference"],
            "current": row["current"], "change": row["change"], "relative": relative,
            "worse": row["change"] > 0 if lower else row["change"] < 0}


def gated_rules(gate: GateConfig | None, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The gate's whole-test-split threshold rules as plain dicts (the one given, else the bundle's)."""
    return _gated_metrics(_gate_rules(gate, metadata))


def _gated_metrics(gate: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole-test-split threshold rules of the gate (:func:`_gate_rules`)."""
    return [r for r in gate.get("thresholds") or []
            if not r.get("slice") and r.get("split", "test") == "test" and "metric" in r]


def _breaks(value: float, rule: dict[str, Any]) -> bool:
    low, high = rule.get("min"), rule.get("max")
    return (low is not None and value < low) or (high is not None and value > high)


def _breach(value: float, rule: dict[str, Any], n: int) -> str:
    low = rule.get("min")
    bound = f"below the gate's min {low}" if low is not None and value < low else f"above the gate's max {rule.get('max')}"
    return f"{rule['metric']} = {value:.4f} on {n} labelled rows is {bound}"
