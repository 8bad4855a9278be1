"""What one server process holds: settings, the model holder, logs, metrics and the follower."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field

from gitml.config.schema import ServeConfig
from gitml.errors import GitmlError
from gitml.package.logschema import FEEDBACK, REQUESTS
from gitml.serve.feedback import FeedbackWindow, RequestIds
from gitml.serve.follow import BundleSource, DeploymentSource, Follower, RegistrySource, Source
from gitml.serve.metrics import ServeMetrics
from gitml.serve.model import ServedModel
from gitml.serve.requestlog import PartitionedLog
from gitml.utils.storage import location

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
    registry_allowed_signers: str | None = None  # with a stage in registry.signed_stages
    cfg: ServeConfig = field(default_factory=ServeConfig)
    # Opens every request id this server (all its workers: they get it with the settings)
    # draws, so a worker can tell a sibling's request from an unknown one. Not a secret.
    server_tag: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        given = [name for name in ("bundle", "deployment", "stage") if getattr(self, name)]
        if len(given) != 1:
            raise GitmlError("Give exactly one of --bundle DIR, --deployment DIR or --stage NAME"
                             + (f" (got {', '.join('--' + g for g in given)})." if given else "."))
        # An s3:// URL is checked before anything starts (a URL with credentials in it is refused).
        location(self.cfg.log_dir, "serve.log_dir")
        if self.deployment:
            location(self.deployment, "deployment target")

    def source(self) -> Source:
        if self.bundle:
            return BundleSource(self.bundle)
        if self.deployment:
            return DeploymentSource(self.deployment)
        return RegistrySource(self.repo, self.registry_name, str(self.stage), self.registry_remote,
                              allowed_signers=self.registry_allowed_signers)

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
        log_dir = self.cfg.log_dir  # a folder, or an s3:// URL (docs/storage.md)
        self.request_log = self._log(log_dir, REQUESTS)
        self.feedback_log = self._log(log_dir, FEEDBACK, self.cfg.feedback_max_pending_rows)
        self.started_at = time.time()
        self._started = False
        # Request ids are unguessable and unique across workers and restarts (see RequestIds);
        # the window remembers the recent ones, so /feedback labels only rows served here.
        self.request_ids = RequestIds(settings.server_tag)
        self.feedback_window = FeedbackWindow(self.cfg.feedback_window_requests, self.request_ids, self.cfg.workers)
        self.feedback_token = feedback_token(self.cfg)

    def next_request_id(self) -> str:
        return self.request_ids.next()

    def answered(self, request_id: str, rows: int) -> None:
        """Remember an answered request (id and row count) for /feedback."""
        self.feedback_window.add(request_id, rows)

    def _log(self, root: str, kind: str, max_pending_rows: int | None = None) -> PartitionedLog:
        rows = self.metrics.log_rows.labels(kind)
        failures = self.metrics.log_failures.labels(kind)
        return PartitionedLog(root, kind, self.cfg.log_flush_rows, self.cfg.log_flush_seconds,
                              on_flush=rows.inc, on_error=failures.inc, max_pending_rows=max_pending_rows)

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.request_log.start()
            self.feedback_log.start()
            self.follower.start()
            model = self.holder.current
            log.info("serving %s %s from %s <serve.log_dir=%s>", model.name, model.version,
                     self.follower.source.describe(), self.cfg.log_dir)
            if self.feedback_token is None and not _loopback(self.cfg.host):
                log.warning("POST /feedback takes labels from anyone who can reach %s: set a token in the "
                            "environment variable named by serve.feedback_token_env (%s) to require "
                            "'Authorization: Bearer <token>'", self.cfg.host, self.cfg.feedback_token_env or "unset")

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



def feedback_token(cfg: ServeConfig) -> bytes | None:
    """The /feedback bearer token from the environment variable ``serve.feedback_token_env`` names.

    None (feedback open) when the key is empty or the variable unset; a set but blank
    variable is an error rather than an open door.
    """
    name = cfg.feedback_token_env
    value = os.environ.get(name) if name else None
    if value is None:
        return None
    if not value.strip():
        raise GitmlError(f"The environment variable {name} <serve.feedback_token_env> is set but blank; set the "
                         "/feedback token in it, or unset it to leave /feedback open.")
    return value.strip().encode("utf-8")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
