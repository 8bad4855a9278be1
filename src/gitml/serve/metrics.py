"""Prometheus metrics of one app, in its own registry (no global state).

Under ``--workers N`` every worker counts into prometheus_client's multiprocess files (the
supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start),
and ``/metrics`` answers from whichever worker with the sum over all of them: counters and
histograms add up across workers and survive a worker's restart; the model gauges show
what the live workers serve.
"""

from __future__ import annotations

import os
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """Request counts and latencies by endpoint, rows and classes predicted, models and reloads (by model)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("gitml_requests", "HTTP requests answered, by endpoint and status.",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("gitml_request_duration_seconds", "Time to answer a request, by endpoint.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        # model: the name a model is served under (several models in one server: docs/serve.md).
        self.rows = Counter("gitml_predicted_rows", "Rows predicted.", ["model", "model_version"], registry=r)
        self.classes = Counter("gitml_predicted_class", "Predicted class counts.",
                               ["model", "model_version", "class"], registry=r)
        self.model_info = Gauge("gitml_model_info", "The model being served (value 1).",
                                ["name", "version", "bundle_id", "family"], registry=r, multiprocess_mode="livemax")
        self.loaded_at = Gauge("gitml_model_loaded_timestamp_seconds", "When the served model was loaded.",
                               ["model"], registry=r, multiprocess_mode="livemax")
        self._serving: dict[str, tuple[str, ...]] = {}  # served name -> its model_info labels
        self.reloads = Counter("gitml_model_reloads", "Model swaps completed.", ["model"], registry=r)
        self.reload_failures = Counter("gitml_model_reload_failures",
                                       "Reloads refused (verification, loading or warm-up failed).", ["model"],
                                       registry=r)
        self.log_rows = Counter("gitml_log_rows_written", "Rows written to the request/feedback logs.", ["log"],
                                registry=r)
        self.log_failures = Counter("gitml_log_write_failures", "Failed log writes (rows kept for a retry).",
                                    ["log"], registry=r)
        self.feedback = Counter("gitml_feedback_labels", "Labels received on /feedback.", registry=r)
        # Traffic splits (docs/delivery.md): per version, its role (stable, canary, shadow, or
        # explicit: a request naming the version), its share and its prediction time.
        self.routed = Counter("gitml_routed_requests", "Requests predicted, by model, version and role.",
                              ["model", "model_version", "role"], registry=r)
        self.predict_seconds = Histogram("gitml_predict_duration_seconds", "Time to predict a request's rows.",
                                         ["model", "model_version", "role"], buckets=LATENCY_BUCKETS, registry=r)
        self.weight = Gauge("gitml_traffic_weight_percent", "Share of requests a version answers (a shadow: 0).",
                            ["model", "model_version"], registry=r, multiprocess_mode="livemax")
        self.predict_failures = Counter("gitml_predict_failures", "Predictions that raised (the request got a "
                                        "5xx), by model, version and role.", ["model", "model_version", "role"],
                                        registry=r)
        self.unkeyed = Counter("gitml_unkeyed_requests", "Requests under a split with no routing key (a random "
                               "bucket).", ["model"], registry=r)
        self.shadow_failures = Counter("gitml_shadow_failures", "Shadow predictions that failed (never seen by "
                                       "the client).", ["model", "model_version"], registry=r)
        self._weights: dict[str, dict[str, int]] = {}  # served name -> the shares last set
        self._timed_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
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

    def predicted(self, name: str, version: str, class_names: list[str], predicted: Any) -> None:
        """Count rows and predicted classes (``predicted``: class indices, a numpy array); a
        regression model (no class names) predicts numbers: its rows are counted alone."""
        import numpy as np

        self.rows.labels(name, version).inc(len(predicted))
        if not class_names:
            return
        for index, count in enumerate(np.bincount(predicted, minlength=len(class_names)).tolist()):
            if count:
                self.classes.labels(name, version, class_names[index]).inc(count)

    def serving(self, model: Any) -> None:
        """``model`` is now what its name serves (first load or swap)."""
        labels = (model.name, model.version, model.bundle_id, model.family)
        before = self._serving.get(model.name)
        if before is not None and before != labels:
            # 0, not removed: a worker's multiprocess file keeps whatever value it last had.
            self.model_info.labels(*before).set(0)
        self.model_info.labels(*labels).set(1)
        self._serving[model.name] = labels
        self.loaded_at.labels(model.name).set(model.loaded_at)
        self.reloads.labels(model.name)  # shown from the start, at 0
        self.reload_failures.labels(model.name)

    def traffic(self, name: str, weights: dict[str, int]) -> None:
        """The model served as ``name`` now splits its requests by ``weights`` ({version: percent};
        {version: 100} without a split); versions it no longer serves go to 0."""
        for version in self._weights.get(name, {}).keys() - weights.keys():
            self.weight.labels(name, version).set(0)
        for version, percent in weights.items():
            self.weight.labels(name, version).set(percent)
        self._weights[name] = weights

    def timed(self, name: str, version: str, role: str, seconds: float) -> None:
        """One request's prediction by ``version`` of ``name`` in ``role``, and how long it took."""
        key = (name, version, role)
        children = self._timed_children.get(key)
        if children is None:  # labels() takes a lock and builds a tuple: once per series, not per request
            children = self._timed_children[key] = (self.routed.labels(*key), self.predict_seconds.labels(*key))
        children[0].inc()
        children[1].observe(seconds)

    def failed(self, name: str, version: str, role: str) -> None:
        """A prediction by ``version`` of ``name`` in ``role`` raised: the canary check's error rate."""
        self.predict_failures.labels(name, version, role).inc()

    def unloaded(self, name: str) -> None:
        """The model served as ``name`` was unloaded (serve.max_loaded_models): no longer in memory."""
        before = self._serving.pop(name, None)
        if before is not None:
            self.model_info.labels(*before).set(0)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not self.multiprocess_dir:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=self.multiprocess_dir)
        return generate_latest(every_worker), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """A worker going away: its live gauges stop counting (its counters stay in the sums)."""
        if self.multiprocess_dir:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid(), self.multiprocess_dir)
