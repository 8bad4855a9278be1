"""Prometheus metrics of one app, in its own registry (no global state)."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """Request counts and latencies by endpoint, rows and classes predicted, model and reloads."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("gitml_requests", "HTTP requests answered, by endpoint and status.",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("gitml_request_duration_seconds", "Time to answer a request, by endpoint.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.rows = Counter("gitml_predicted_rows", "Rows predicted.", ["model_version"], registry=r)
        self.classes = Counter("gitml_predicted_class", "Predicted class counts.", ["model_version", "class"],
                               registry=r)
        self.model_info = Gauge("gitml_model_info", "The model being served (value 1).",
                                ["name", "version", "bundle_id", "family"], registry=r)
        self.loaded_at = Gauge("gitml_model_loaded_timestamp_seconds", "When the served model was loaded.",
                               registry=r)
        self.reloads = Counter("gitml_model_reloads", "Model swaps completed.", registry=r)
        self.reload_failures = Counter("gitml_model_reload_failures",
                                       "Reloads refused (verification, loading or warm-up failed).", registry=r)
        self.log_rows = Counter("gitml_log_rows_written", "Rows written to the request/feedback logs.", ["log"],
                                registry=r)
        self.log_failures = Counter("gitml_log_write_failures", "Failed log writes (rows kept for a retry).",
                                    ["log"], registry=r)
        self.feedback = Counter("gitml_feedback_labels", "Labels received on /feedback.", registry=r)
        self._request_children: dict[tuple[str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(endpoint, str(status))
        child.inc()
        timer = self._latency_children.get(endpoint)
        if timer is None:
            timer = self._latency_children[endpoint] = self.latency.labels(endpoint)
        timer.observe(seconds)

    def predicted(self, version: str, class_names: list[str], predicted: Any) -> None:
        """Count rows and predicted classes (``predicted``: class indices, a numpy array)."""
        import numpy as np

        self.rows.labels(version).inc(len(predicted))
        for index, count in enumerate(np.bincount(predicted, minlength=len(class_names)).tolist()):
            if count:
                self.classes.labels(version, class_names[index]).inc(count)

    def serving(self, model: Any) -> None:
        self.model_info.clear()
        self.model_info.labels(model.name, model.version, model.bundle_id, model.family).set(1)
        self.loaded_at.set(model.loaded_at)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
