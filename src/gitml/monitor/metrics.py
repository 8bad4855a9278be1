"""The bundle's metrics on the labelled rows of a drift window, against its test metrics.

Reported next to the drift verdict, not voted into it: labels arrive late and few. The
metrics compared are a fixed set plus every metric the gate's thresholds name (read from
the bundle's own params), and the report lists each gate bound the labelled rows would
now break.

The probabilities scored are the answers the request log recorded for the rows this
bundle answered (``model_version`` is its version or id; package/logschema.py); only rows
another model answered, or logged without probabilities, are predicted again, and only
then is the model loaded (skops.io's import alone takes about 1.5 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError
from gitml.package.logschema import MODEL_VERSION

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.package.bundle import Bundle

METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "pr_auc", "log_loss", "brier")


def label_metrics(bundle: Bundle, window: pd.DataFrame, feedback: pd.DataFrame,
                  notes: list[str]) -> dict[str, Any] | None:
    """The bundle's metrics on the window's labelled rows against its test metrics, or None."""
    from gitml.evaluate.metrics import classification_metrics
    from gitml.monitor.logs import class_key, join_labels

    target = bundle.signature.label or "target"
    logged = [c for c in (MODEL_VERSION, *bundle.signature.proba_columns) if c in window.columns]
    rows = join_labels(window, feedback, target, bundle.signature.features, classes=bundle.classes,
                       keep=logged)
    if rows.empty:
        return None
    index = {class_key(c): i for i, c in enumerate(bundle.classes)}
    codes = rows[target].map(lambda v: index.get(class_key(v), -1)).to_numpy()
    if (codes < 0).any():
        notes.append(f"{int((codes < 0).sum())} label(s) outside the classes {bundle.classes} ignored.")
        rows, codes = rows[codes >= 0], codes[codes >= 0]
    if rows.empty:
        return None
    try:
        proba = answers(bundle, rows)
    except GitmlError as exc:  # the drift verdict stands without the metrics
        notes.append(f"metrics on labelled rows skipped: {exc}")
        return None
    current = classification_metrics(codes, proba, bundle.classes)
    reference = (bundle.metadata.get("metrics") or {}).get("test") or {}
    gated = _gated_metrics(bundle.metadata)
    names = [m for m in dict.fromkeys([*METRICS, *(r["metric"] for r in gated)]) if m in current]
    table = {
        m: {"reference": reference.get(m), "current": current[m],
            "change": current[m] - reference[m] if isinstance(reference.get(m), (int, float)) else None,
            "gated": any(r["metric"] == m for r in gated)}
        for m in names
    }
    breaches = [_breach(current[r["metric"]], r, len(rows)) for r in gated
                if r["metric"] in current and _breaks(current[r["metric"]], r)]
    return {"n_labelled": len(rows), "metrics": table, "gate_breaches": breaches}


def answered_here(rows: pd.DataFrame, bundle: Bundle) -> pd.Series:
    """True for each logged row this bundle answered (its ``model_version`` is the bundle's version or id)."""
    import pandas as pd

    if MODEL_VERSION not in rows.columns:
        return pd.Series(False, index=rows.index)
    return rows[MODEL_VERSION].astype(str).isin({bundle.version, bundle.id})


def answers(bundle: Bundle, rows: pd.DataFrame) -> np.ndarray:
    """The bundle's class probabilities for ``rows``: as logged where it answered them, else predicted."""
    import numpy as np

    columns = bundle.signature.proba_columns
    if all(c in rows.columns for c in columns):
        logged = (answered_here(rows, bundle) & rows[columns].notna().all(axis=1)).to_numpy()
    else:
        logged = np.zeros(len(rows), dtype=bool)
    proba = np.empty((len(rows), len(columns)), dtype="float64")
    proba[logged] = rows.loc[logged, columns].to_numpy(dtype="float64")
    if not logged.all():  # the model is loaded here, on first use
        features = rows.loc[~logged, bundle.signature.features].reset_index(drop=True)
        proba[~logged] = bundle.predict_proba(features)
    return proba


def _gated_metrics(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole-test-split threshold rules of the gate the bundle passed (from its params)."""
    gate = ((metadata.get("params") or {}).get("gate") or {})
    return [r for r in gate.get("thresholds") or []
            if not r.get("slice") and r.get("split", "test") == "test" and "metric" in r]


def _breaks(value: float, rule: dict[str, Any]) -> bool:
    low, high = rule.get("min"), rule.get("max")
    return (low is not None and value < low) or (high is not None and value > high)


def _breach(value: float, rule: dict[str, Any], n: int) -> str:
    low = rule.get("min")
    bound = f"below the gate's min {low}" if low is not None and value < low else f"above the gate's max {rule.get('max')}"
    return f"{rule['metric']} = {value:.4f} on {n} labelled rows is {bound}"
