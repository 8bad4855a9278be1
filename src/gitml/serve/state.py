"""What one server process holds: settings, the model holder, logs, metrics and the follower."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from gitml.config.schema import ServeConfig
from gitml.errors import GitmlError
from gitml.serve.follow import BundleSource, DeploymentSource, Follower, RegistrySource, Source
from gitml.serve.metrics import ServeMetrics
from gitml.serve.model import ServedModel
from gitml.serve.requestlog import FEEDBACK, REQUESTS, PartitionedLog

log = logging.getLogger(__name__)


@dataclass
class ServeSettings:
    """Everything ``gitml serve`` was told: exactly one of bundle, deployment or stage."""

    bundle: str | None = None
    deployment: str | None = None
    stage: str | None = None
    follow: bool = False
    repo: str = "."
    registry_name: str = "model"
    registry_remote: str | None = None
    cfg: ServeConfig = field(default_factory=ServeConfig)

    def __post_init__(self) -> None:
        given = [name for name in ("bundle", "deployment", "stage") if getattr(self, name)]
        if len(given) != 1:
            raise GitmlError("Give exactly one of --bundle DIR, --deployment DIR or --stage NAME"
                             + (f" (got {', '.join('--' + g for g in given)})." if given else "."))

    def source(self) -> Source:
        if self.bundle:
            return BundleSource(self.bundle)
        if self.deployment:
            return DeploymentSource(self.deployment)
        return RegistrySource(self.repo, self.registry_name, str(self.stage), self.registry_remote)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data = json.loads(text)
        return cls(**{**data, "cfg": ServeConfig(**data["cfg"])})


class ServeState:
    """The served model and its companions; :meth:`start` and :meth:`stop` run in the app's lifespan."""

    def __init__(self, settings: ServeSettings, model: ServedModel | None = None):
        self.settings, self.cfg = settings, settings.cfg
        self.metrics = ServeMetrics()
        self.reloads = self.reload_failures = 0
        self.follower = Follower(settings.source(), self.cfg.follow_interval_seconds, settings.follow,
                                 on_swap=self._swapped, on_failure=self._refused)
        if model is None:
            self.holder = self.follower.load_initial()
        else:  # tests and benchmarks hand in a model they loaded
            from gitml.serve.model import ModelHolder

            self.holder = self.follower.holder = ModelHolder(model)
        self.metrics.serving(self.holder.current)
        log_dir = Path(self.cfg.log_dir)
        self.request_log = self._log(log_dir, REQUESTS)
        self.feedback_log = self._log(log_dir, FEEDBACK)
        self.started_at = time.time()
        self._started = False
        # Request ids: a random per-process prefix and a counter. Unique across workers and
        # restarts, and no system call per request (os.urandom releases the GIL, and the log
        # writer thread would take it for up to a switch interval).
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count()

    def next_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):016x}"

    def _log(self, root: Path, kind: str) -> PartitionedLog:
        rows = self.metrics.log_rows.labels(kind)
        failures = self.metrics.log_failures.labels(kind)
        return PartitionedLog(root, kind, self.cfg.log_flush_rows, self.cfg.log_flush_seconds,
                              on_flush=rows.inc, on_error=failures.inc)

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.request_log.start()
            self.feedback_log.start()
            self.follower.start()
            model = self.holder.current
            log.info("serving %s %s from %s <serve.log_dir=%s>", model.name, model.version,
                     self.follower.source.describe(), self.cfg.log_dir)

    def stop(self) -> None:
        """Stop following, then write every buffered log row (graceful shutdown)."""
        self.follower.stop()
        self.request_log.close()
        self.feedback_log.close()
        self.metrics.close()
        self._started = False

    def _swapped(self, model: ServedModel) -> None:
        self.reloads += 1
        self.metrics.reloads.inc()
        self.metrics.serving(model)

    def _refused(self, exc: Exception) -> None:
        self.reload_failures += 1
        self.metrics.reload_failures.inc()

