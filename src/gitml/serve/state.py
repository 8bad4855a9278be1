"""What one server process holds: settings, its models (each with holder, follower and logs), metrics."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field

from gitml.config.schema import ServeConfig
from gitml.errors import GitmlError
from gitml.serve.feedback import FeedbackWindow, RequestIds
from gitml.serve.follow import BundleSource, DeploymentSource, Follower, RegistrySource, Source
from gitml.serve.metrics import ServeMetrics
from gitml.serve.model import ModelHolder, ServedModel
from gitml.serve.requestlog import PartitionedLog
from gitml.serve.slots import ModelSlot, ModelSpec, ModelTable, check_names
from gitml.serve.traffic import Routes
from gitml.utils.storage import join, location

log = logging.getLogger(__name__)


SOURCE_KINDS = ("bundle", "deployment", "stage")


@dataclass
class ServeSettings:
    """Everything ``gitml serve`` was told: exactly one of bundle, deployment or stage, or named ``models``.

    ``models``: ``[name, kind, where]`` triples (kind one of :data:`SOURCE_KINDS`; for a stage,
    ``where`` is the stage and ``name`` the registry model), served together under those names.
    """

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
    models: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        given = [name for name in ("bundle", "deployment", "stage") if getattr(self, name)]
        if self.models:
            if given:
                raise GitmlError(f"Name every model when serving several: --{given[0]} NAME=LOCATION, "
                                 f"not a bare --{given[0]} beside named ones.")
            bad = [kind for _, kind, _ in self.models if kind not in SOURCE_KINDS]
            if bad:
                raise GitmlError(f"Unknown model source '{bad[0]}'. Allowed: {', '.join(SOURCE_KINDS)}.")
            check_names([name for name, _, _ in self.models], self.cfg.default_model or None)
        elif len(given) != 1:
            raise GitmlError("Give exactly one of --bundle DIR, --deployment DIR or --stage NAME"
                             + (f" (got {', '.join('--' + g for g in given)})." if given else "."))
        # An s3:// URL is checked before anything starts (a URL with credentials in it is refused).
        location(self.cfg.log_dir, "serve.log_dir")
        for _, kind, where in self.models or [["", "deployment", self.deployment or ""]]:
            if kind == "deployment" and where:
                location(where, "deployment target")

    def source(self, name: str = "") -> Source:
        """The source of the model served as ``name`` ("": the one bare source)."""
        kind, where, registry_name = next(
            ((k, w, n) for n, k, w in self.models if n == name), ("", "", self.registry_name))
        if not kind:
            kind = next(k for k in SOURCE_KINDS if getattr(self, k))
            where = str(getattr(self, kind))
        if kind == "bundle":
            return BundleSource(where)
        if kind == "deployment":
            return DeploymentSource(where)
        return RegistrySource(self.repo, registry_name, where, self.registry_remote,
                              allowed_signers=self.registry_allowed_signers)

    def names(self) -> list[str]:
        """The served names, in the order given ([""] for the one bare source)."""
        return [name for name, _, _ in self.models] or [""]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data = json.loads(text)
        return cls(**{**data, "cfg": ServeConfig(**data["cfg"])})


class ServeState:
    """The served models and their companions; :meth:`start` and :meth:`stop` run in the app's lifespan."""

    def __init__(self, settings: ServeSettings, model: ServedModel | None = None):
        self.settings, self.cfg = settings, settings.cfg
        self.metrics = ServeMetrics()
        # Request ids are unguessable and unique across workers and restarts (see RequestIds);
        # each model's window remembers its recent ones, so /feedback labels only rows served here.
        self.request_ids = RequestIds(settings.server_tag)
        names = settings.names()
        log_dir = self.cfg.log_dir  # a folder, or an s3:// URL (docs/storage.md)
        slots = [ModelSlot(ModelSpec(name, functools.partial(settings.source, name),
                                     str(join(location(log_dir, "serve.log_dir"), name)) if name else log_dir),
                           self.cfg, settings.follow, self.request_ids, self._log, self._swapped, self._refused)
                 for name in names]
        self.models = ModelTable(slots, self.cfg.default_model or names[0], self.cfg.max_loaded_models)
        self.models.on_unload = self.metrics.unloaded
        if model is not None:  # tests and benchmarks hand in a model they loaded
            slots[0].adopt(model)
        else:
            try:
                for name in self.eager_names():
                    self.models.model(name)
            except Exception:  # the server does not start: the models already loaded leave nothing behind
                for slot in slots:
                    slot.unload()
                raise
        self.started_at = time.time()
        self._started = False
        self.feedback_token = feedback_token(self.cfg)

    def eager_names(self) -> list[str]:
        """The models loaded before the server answers: all, or the first serve.max_loaded_models, or
        with serve.lazy_load none."""
        names = self.settings.names()
        if self.cfg.lazy_load:
            return []
        return names[:self.cfg.max_loaded_models] if self.cfg.max_loaded_models else names

    # The single model's parts (and the default one's when there are several), as before.
    @property
    def holder(self) -> ModelHolder:
        return self.models.slot(None).load()

    @property
    def follower(self) -> Follower:
        slot = self.models.slot(None)
        slot.load()
        assert slot.follower is not None
        return slot.follower

    @property
    def request_log(self) -> PartitionedLog:
        return self.models.slot(None).request_log

    @property
    def feedback_log(self) -> PartitionedLog:
        return self.models.slot(None).feedback_log

    @property
    def feedback_window(self) -> FeedbackWindow:
        return self.models.slot(None).feedback_window

    @property
    def reloads(self) -> int:
        return sum(slot.reloads for slot in self.models.slots.values())

    @property
    def reload_failures(self) -> int:
        return sum(slot.reload_failures for slot in self.models.slots.values())

    def next_request_id(self) -> str:
        return self.request_ids.next()

    def _log(self, root: str, kind: str, max_pending_rows: int | None = None) -> PartitionedLog:
        rows = self.metrics.log_rows.labels(kind)
        failures = self.metrics.log_failures.labels(kind)
        return PartitionedLog(root, kind, self.cfg.log_flush_rows, self.cfg.log_flush_seconds,
                              on_flush=rows.inc, on_error=failures.inc, max_pending_rows=max_pending_rows)

    def start(self) -> None:
        if not self._started:
            self._started = True
            for slot in self.models.slots.values():
                slot.start()
                if slot.holder is not None and slot.follower is not None:
                    model = slot.holder.current
                    log.info("serving %s %s from %s <serve.log_dir=%s>", model.name, model.version,
                             slot.follower.source.describe(), slot.spec.log_root)
                else:
                    log.info("serving %s when first asked <serve.lazy_load, serve.max_loaded_models>", slot.name)
            if self.feedback_token is None and not _loopback(self.cfg.host):
                log.warning("POST /feedback takes labels from anyone who can reach %s: set a token in the "
                            "environment variable named by serve.feedback_token_env (%s) to require "
                            "'Authorization: Bearer <token>'", self.cfg.host, self.cfg.feedback_token_env or "unset")

    def stop(self) -> None:
        """Stop following, then write every buffered log row (graceful shutdown)."""
        for slot in self.models.slots.values():
            slot.stop()
        self.metrics.close()
        self._started = False

    def hangup(self) -> None:
        """SIGHUP: every loaded model re-reads its source and reloads."""
        for slot in self.models.slots.values():
            slot.hangup()

    def _swapped(self, model: ServedModel, reloaded: bool, routes: Routes | None = None) -> None:
        if reloaded:
            self.metrics.reloads.labels(model.name).inc()
        self.metrics.serving(model)
        weights = dict(routes.split.weights) if routes else {model.version: 100}
        if routes and routes.split.shadow:
            weights[routes.split.shadow] = 0
        self.metrics.traffic(model.name, weights)

    def _refused(self, name: str, exc: Exception) -> None:
        slot = self.models.slots[name]
        served = slot.holder.current.name if slot.holder else name
        self.metrics.reload_failures.labels(served).inc()


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
