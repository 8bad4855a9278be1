"""``canary.*`` rules (gitml canary check, docs/delivery.md): what the schema's types let through
but the check cannot use. Run when params.yaml is composed or loaded, and again by the check."""

from __future__ import annotations

import math

from gitml.config.schema import CanaryConfig


def canary_problems(cfg: CanaryConfig) -> list[tuple[str, str]]:
    """Every value of ``canary.*`` the schema's types let through but the check cannot use."""
    from gitml.gate.stats import METRICS

    problems = []
    for key in ("min_rows", "min_labels", "resamples", "window_rows"):
        if getattr(cfg, key) < 1:
            problems.append((f"canary.{key}", f"{getattr(cfg, key)} must be at least 1"))
    if not 0 < cfg.alpha < 1:
        problems.append(("canary.alpha", f"{cfg.alpha} must be between 0 and 1"))
    if not (cfg.window_hours > 0 and math.isfinite(cfg.window_hours)):
        problems.append(("canary.window_hours", f"{cfg.window_hours} must be a positive number of hours"))
    if cfg.metric != "auto" and cfg.metric not in METRICS:
        problems.append(("canary.metric", f"unknown metric '{cfg.metric}'. Allowed: auto, {', '.join(METRICS)}"))
    for soft, hard in (("max_metric_drop", "hard_metric_drop"), ("max_prediction_psi", "hard_prediction_psi"),
                       ("max_latency_ratio", "hard_latency_ratio"),
                       ("max_error_rate_increase", "hard_error_rate_increase")):
        low, high = getattr(cfg, soft), getattr(cfg, hard)
        if not (math.isfinite(low) and low >= 0):
            problems.append((f"canary.{soft}", f"{low} must be a number >= 0"))
        elif not (math.isfinite(high) and high >= low):
            problems.append((f"canary.{hard}", f"{high} must be a number >= canary.{soft} ({low})"))
    return problems
