"""The version answering a request, and the shadow that predicts the same rows after the answer is sent.

A shadow's prediction never reaches the client: it runs in the thread pool once the answer
has gone (Starlette's background task), its rows go to the model's shadow log (same columns
as the request log, the same request id and row numbers, its own ``model_version``), and a
failure is counted and logged, never answered.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitml.package.validation import validate_input
from gitml.serve.traffic import SHADOW

if TYPE_CHECKING:
    from gitml.serve.model import ServedModel
    from gitml.serve.slots import ModelSlot
    from gitml.serve.state import ServeState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Who answers a request (its role: stable, canary, or explicit when the request named the version)
    and the shadow to run after, if any."""

    model: ServedModel
    shadow: ServedModel | None
    role: str


def shadow_predict(state: ServeState, slot: ModelSlot, shadow: ServedModel, frame: Any, request_id: str) -> None:
    """Predict ``frame`` (the answered request's clean rows) with ``shadow`` and log it as shadow rows."""
    try:
        started = time.perf_counter()
        rows = validate_input(frame, shadow.signature)  # the answering version's types may differ
        output = shadow.predict(rows)
        predicted = shadow.predicted(output)
        state.metrics.timed(shadow.name, shadow.version, SHADOW, time.perf_counter() - started)
        inputs = rows.to_numpy() if shadow.signature.all_numeric else rows
        slot.shadow_log.append(shadow.log_chunk(request_id, time.time_ns() // 1000, inputs, output, predicted))
    except Exception:
        state.metrics.shadow_failures.labels(shadow.name, shadow.version).inc()
        log.warning("shadow %s %s failed on request %s (the client had its answer)", shadow.name, shadow.version,
                    request_id, exc_info=True)
