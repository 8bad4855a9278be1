"""Several models in one server: one slot per name, each with its own follower and logs.

A slot holds what one served model needs: where it comes from (a :class:`Source` made
fresh at every load), the :class:`Follower` that swaps it, its request and feedback logs
and the window of its answered requests. Slots never share a lock on the request path:
a swap of one model (loading, verifying, warming in its follower's thread) leaves the
others untouched.

With ``serve.lazy_load`` a model loads on its first request; with
``serve.max_loaded_models`` the least recently used loaded model beyond that many is
dropped (its follower stops; requests in flight keep the object they read) and loads
again on its next request.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gitml.config.schema import ServeConfig
from gitml.errors import GitmlError, RequestError
from gitml.package.logschema import FEEDBACK, REQUESTS
from gitml.serve.feedback import FeedbackWindow, RequestIds
from gitml.serve.follow import Follower, Source
from gitml.serve.model import ModelHolder, ServedModel
from gitml.serve.requestlog import PartitionedLog
from gitml.serve.traffic import SHADOW, Routes

log = logging.getLogger(__name__)
MODEL_HEADER = "x-gitml-model"  # names the model of /invocations and /feedback (default: serve.default_model)


@dataclass(frozen=True)
class ModelSpec:
    """A served name and how to make its source (a fresh one at every load: stopping closes it)."""

    name: str
    make_source: Callable[[], Source]
    log_root: str  # this model's request and feedback logs go under here


class ModelSlot:
    """One served name: holder (None while not loaded), follower, logs, feedback window.

    ``on_swap(model, reloaded)`` hears of every model this slot starts serving (``reloaded``: a
    follower's swap, not a first load); ``on_failure(name, exc)`` of every refused reload.
    The name "" is the single model of a server given one bare source: it keeps its bundle's name.
    """

    def __init__(self, spec: ModelSpec, cfg: ServeConfig, follow: bool, ids: RequestIds,
                 make_log: Callable[[str, str, int | None], PartitionedLog],
                 on_swap: Callable[[ServedModel, bool, Routes | None], None],
                 on_failure: Callable[[str, Exception], None]):
        self.name, self.spec, self.cfg, self.follow = spec.name, spec, cfg, follow
        self._on_swap, self._on_failure = on_swap, on_failure
        self.request_log = make_log(spec.log_root, REQUESTS, None)
        self.feedback_log = make_log(spec.log_root, FEEDBACK, cfg.feedback_max_pending_rows)
        self.shadow_log = make_log(spec.log_root, SHADOW, None)  # its writer starts with a shadow
        self.feedback_window = FeedbackWindow(cfg.feedback_window_requests, ids, cfg.workers)
        self.holder: ModelHolder | None = None
        self.follower: Follower | None = None
        self.reloads = self.reload_failures = 0
        self._load_lock = threading.Lock()  # one load of this model at a time; other models never wait on it
        self._running = False

    @property
    def loaded(self) -> bool:
        return self.holder is not None

    def load(self) -> ModelHolder:
        """Load the model if it is not loaded (errors propagate); start following when running."""
        with self._load_lock:
            if self.holder is None:
                follower = self._follower()
                holder = follower.load_initial()
                if self._running:
                    self._start_logs()  # before any request can reach the model
                self.holder, self.follower = holder, follower
                self._on_swap(holder.current, False, holder.routes)
                self._shadow_log_for(holder.routes)
                log.info("loaded %s %s from %s", self.name, holder.current.version, follower.source.describe())
                if self._running:
                    follower.start()
            return self.holder

    def adopt(self, model: ServedModel) -> None:
        """Serve ``model`` (loaded by the caller: tests, benchmarks) with a follower that has not loaded."""
        self.follower = self._follower()
        self.holder = self.follower.holder = ModelHolder(model)
        self._on_swap(model, False, None)

    def _follower(self) -> Follower:
        follower = Follower(self.spec.make_source(), self.cfg.follow_interval_seconds, self.follow,
                            on_swap=lambda model: self._swapped(follower, model),
                            on_failure=lambda exc: self._refused(follower, exc), name=self.name or None)
        return follower

    def start(self) -> None:
        """Run: a loaded model's log writers and follower now, a lazy one's at its first load, so a
        server naming many models runs two writer threads for each model used, not each named."""
        self._running = True
        if self.holder is not None:
            self._start_logs()
        if self.follower is not None:
            self.follower.start()

    def _start_logs(self) -> None:
        self.request_log.start()
        self.feedback_log.start()
        self._shadow_log_for(self.holder.routes if self.holder else None)

    def _shadow_log_for(self, routes: Routes | None) -> None:
        """Start the shadow log's writer when ``routes`` have a shadow (a server without one runs no
        third writer per model). Called under the load lock or from the one follower thread."""
        if self._running and routes is not None and routes.shadow is not None and not self.shadow_log.running:
            self.shadow_log.start()

    def unload(self) -> None:
        """Drop the model (eviction): requests in flight keep the object they read."""
        with self._load_lock:
            follower, self.follower, self.holder = self.follower, None, None
        if follower is not None:
            # Its thread may be mid-fetch: stopping joins it (up to 30 s), which is no work for
            # the request whose model pushed this one out. Its late swaps are ignored (_swapped).
            threading.Thread(target=follower.stop, name=f"unload-{self.name}", daemon=True).start()
            log.info("unloaded %s <serve.max_loaded_models=%d>", self.name, self.cfg.max_loaded_models)

    def stop(self) -> None:
        self._running = False
        if self.follower is not None:
            self.follower.stop()
        self.request_log.close()
        self.feedback_log.close()
        self.shadow_log.close()

    def hangup(self) -> None:
        if self.follower is not None:
            self.follower.hangup()

    def _swapped(self, follower: Follower, model: ServedModel) -> None:
        if follower is not self.follower:
            return  # the follower of an unloaded model, finishing a fetch it had begun
        self.reloads += 1
        routes = follower.holder.routes if follower.holder else None
        self._shadow_log_for(routes)
        self._on_swap(model, True, routes)

    def _refused(self, follower: Follower, exc: Exception) -> None:
        if follower is not self.follower:
            return
        self.reload_failures += 1
        self._on_failure(self.name, exc)


class ModelTable:
    """The slots by name, in the order given (the first is the default unless named), with LRU eviction."""

    def __init__(self, slots: list[ModelSlot], default: str, max_loaded: int):
        self.slots = {slot.name: slot for slot in slots}
        self.default, self.max_loaded = default, max_loaded
        self._used: OrderedDict[str, None] = OrderedDict()  # loaded names, least recently used first
        self._lock = threading.Lock()
        self.on_unload: Callable[[str], None] | None = None  # hears each name unloaded

    def names(self) -> list[str]:
        return list(self.slots)

    @property
    def single(self) -> bool:
        """One model from one bare source, served under its bundle's own name."""
        return "" in self.slots

    def slot(self, name: str | None) -> ModelSlot:
        """The slot of ``name`` (None: the default); an unknown name is a 404 naming the served ones."""
        slot = self.slots.get("" if self.single else self.default if name is None else name)
        if slot is None:
            raise RequestError(404, f"No model '{str(name)[:200]}' here; this server serves {self.describe()}.",
                               [{"field": MODEL_HEADER, "message": f"unknown model '{str(name)[:80]}'"}])
        return slot

    def default_name(self) -> str:
        """The name /invocations answers under without a header (the single model's own name)."""
        holder = self.slot(None).holder
        return holder.current.name if self.single and holder else self.default

    def describe(self) -> str:
        """The served names and versions, for a 404: "'churn' version 'v3', 'fraud' (not loaded)"."""
        holders = [(name, slot.holder) for name, slot in self.slots.items()]  # read once: eviction may clear one
        return ", ".join(f"'{holder.current.name}' version '{holder.current.version}'" if holder
                         else f"'{name}' (not loaded)" for name, holder in holders)

    def peek(self, name: str | None) -> ServedModel | None:
        """The served model of ``name`` when it is loaded, else None, without counting it as used."""
        holder = self.slot(name).holder
        return None if holder is None else holder.current

    def loaded(self, name: str | None) -> ServedModel | None:
        """The served model of ``name`` when it is loaded (no waiting), else None."""
        slot = self.slot(name)
        holder = slot.holder
        if holder is None:
            return None
        self.touch(slot.name)
        return holder.current

    def model(self, name: str | None) -> ServedModel:
        """The served model of ``name``, loading it first when it is not (may block: call off the loop)."""
        slot = self.slot(name)
        model = self.loaded(slot.name)
        if model is not None:
            return model
        current = slot.load().current
        self.touch(slot.name)
        return current

    def touch(self, name: str) -> None:
        """``name`` was just used; past serve.max_loaded_models the least recently used others unload."""
        with self._lock:
            self._used[name] = None
            self._used.move_to_end(name)
            evict = []
            while self.max_loaded and len(self._used) > self.max_loaded:
                oldest = next(iter(self._used))
                del self._used[oldest]
                evict.append(oldest)
        for other in evict:
            self.slots[other].unload()
            if self.on_unload is not None:
                self.on_unload(other)


def check_names(names: list[str], default: str | None) -> None:
    """Served names are GTO names, each once, none a folder of another (their logs nest); the
    default (serve.default_model) is one of them."""
    from gitml.config.rules import GTO_NAME

    problems = [f"'{n}' is not a model name (letters, digits, '-', '_', '/'; a letter or digit at each end)"
                for n in names if not re.fullmatch(GTO_NAME, n)]
    problems += [f"'{n}' is given twice" for n in sorted({n for n in names if names.count(n) > 1})]
    problems += [f"'{a}' would hold the logs of '{b}'" for a in names for b in names if b.startswith(a + "/")]
    if default and default not in names:
        problems.append(f"serve.default_model '{default}' is none of the served names {names}")
    if problems:
        raise GitmlError("Cannot serve these models: " + "; ".join(problems) + ".")


def named_sources(bundles: list[str], deployments: list[str], stage: str | None,
                  models: list[str]) -> tuple[dict[str, str], list[list[str]]]:
    """Split ``--bundle``/``--deployment`` values (``DIR`` or ``NAME=DIR``) and ``--stage`` with
    ``--model NAME``s into the one bare source (``{"bundle": DIR}``) or named ``[name, kind, where]``.

    A value is named when what comes before its first ``=`` is a model name; a folder whose name
    holds ``=`` is given as ``./a=b``.
    """
    from gitml.config.rules import GTO_NAME

    bare: dict[str, list[str]] = {"bundle": [], "deployment": []}
    named: list[list[str]] = []
    for kind, values in (("bundle", bundles), ("deployment", deployments)):
        for value in values:
            name, equals, where = value.partition("=")
            if equals and re.fullmatch(GTO_NAME, name) and where:
                named.append([name, kind, where])
            else:
                bare[kind].append(value)
    if models and stage is None:
        raise GitmlError("--model NAME serves the registry stage of that model: give --stage too.")
    named += [[model, "stage", stage] for model in models if stage is not None]
    single = {kind: values[0] for kind, values in bare.items() if values}
    if stage is not None and not models:
        single["stage"] = stage
    if named and single:
        kind = next(iter(single))
        raise GitmlError(f"Name every model when serving several: --{kind} NAME=LOCATION (or --stage S --model "
                         f"NAME), not a bare --{kind} beside named ones.")
    if sum(len(values) for values in bare.values()) > 1:
        raise GitmlError("Several bare --bundle/--deployment values: name each, e.g. --bundle churn=DIR "
                         "--bundle fraud=DIR.")
    return single, named
