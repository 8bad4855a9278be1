"""The model being served: a verified bundle, warmed up, behind one swappable reference.

A request reads :attr:`ModelHolder.current` once and uses that object to the end, so a
swap never changes the model under a request in flight; the swap itself is a single
attribute assignment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.package.bundle import Bundle, load_bundle
from gitml.package.logschema import label_type
from gitml.package.signature import CompiledSignature
from gitml.package.validation import validate_input
from gitml.serve.oip import OUTPUTS, V2_DATATYPE
from gitml.serve.requestlog import RequestChunk

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.serve.traffic import Routes

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    """A loaded bundle with what the hot path needs precomputed."""

    bundle: Bundle
    version: str
    source: str
    signature: CompiledSignature
    loaded_at: float = field(default_factory=time.time)
    path: Path | None = None  # the folder it was loaded from (a follower reuses it while that stays)

    @classmethod
    def load(cls, path: str | Path, version: str | None = None, source: str | None = None,
             name: str | None = None) -> ServedModel:
        """Load and verify the bundle at ``path``, then warm it up (raises BundleError etc.).

        ``name``: the name it is served under (one of several models), instead of the bundle's own.
        """
        bundle = load_bundle(path)
        served = cls(bundle, version or bundle.version, source or str(path), bundle.signature.compiled)
        served.name, served.path = name or served.name, Path(path)
        served.warm_up()
        return served

    def __post_init__(self) -> None:
        self.task = self.bundle.task
        # A regression model answers a number per row: no classes, no probabilities.
        self.regression = self.bundle.regression
        self.classes = list(self.bundle.classes)
        self.class_names = self.bundle.signature.class_names
        self.outputs = OUTPUTS[:1] if self.regression else OUTPUTS  # the OIP outputs it answers
        # OIP binary BYTES elements: a 4-byte little-endian length, then the UTF-8 text.
        self.class_bytes = [len(b).to_bytes(4, "little") + b for b in (n.encode() for n in self.class_names)]
        info = self.bundle.info
        self.name, self.bundle_id, self.family = info.name, info.bundle_id, info.family
        self._row = _number_row if self.regression else _row_builder(self.classes, self.class_names)
        # What the request log needs to group rows into files of one schema.
        self.log_schema = self.bundle.signature.log_schema
        self.label_type = label_type(self.bundle.signature)  # of the feedback log's labels
        self.version = safe_version(self.version)

    # ---------------------------------------------------------------- predict
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's output for a frame already validated against the signature: class
        probabilities ``(n, k)``, or for a regression model the predicted numbers ``(n,)``, float64."""
        features = self.bundle.preprocessor.transform(frame)
        if self.regression:
            import numpy as np

            return np.asarray(self.bundle.model.predict(features), dtype=np.float64)
        return self.bundle.model.predict_proba(features)

    def predicted(self, output: np.ndarray) -> np.ndarray:
        """Each row's prediction from :meth:`predict`'s output: the index of its class (into
        :attr:`classes`), or for regression the number itself."""
        return output if self.regression else output.argmax(axis=1)

    def predictions(self, output: np.ndarray, predicted: np.ndarray | None = None) -> list[dict[str, Any]]:
        """MLflow-style rows: ``{"prediction": class, "probabilities": {"class": p}}``, or for
        regression ``{"prediction": number}`` (a non-finite number is answered as null)."""
        if self.regression:
            return list(map(_number_row, output.tolist()))
        predicted = output.argmax(axis=1) if predicted is None else predicted
        return list(map(self._row, predicted.tolist(), *output.T.tolist()))

    def log_chunk(self, request_id: str, ts_us: int, inputs: Any, output: np.ndarray,
                  predicted: np.ndarray) -> RequestChunk:
        """The request log's record of one answer (docs/logs.md): the predicted class of each row
        and its probabilities, or for regression the predicted number alone."""
        proba = None if self.regression else output
        return RequestChunk(request_id, ts_us, self.version, self.log_schema, inputs, predicted, proba)

    def warm_up(self) -> None:
        """Run the whole path once on reference rows, so the first request is not the slow one."""
        try:
            sample = self.bundle.reference().head(64)
        except Exception:
            return
        if len(sample):
            for rows in (sample.head(1), sample):
                self.predict(validate_input(rows, self.signature))

    # ---------------------------------------------------------------- describe
    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "bundle_id": self.bundle_id,
                "family": self.family, "task": self.task, "source": self.source,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}

    def v2_metadata(self) -> dict[str, Any]:
        """OIP model metadata. Excluded columns (dates, ids) are not ``inputs``, which OIP clients
        take as the tensors to send; ``parameters.ignored_inputs`` names them, as tensors that are
        taken and dropped unread. A regression model has one output, ``prediction``: FP64, a number a row."""
        parameters: dict[str, Any] = {"task": self.task, "bundle_id": self.bundle_id}
        if self.regression:
            outputs = [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
        else:
            parameters = {"classes": self.class_names, **parameters}
            outputs = [{"name": "prediction", "datatype": "BYTES", "shape": [-1]},
                       {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(self.classes)]}]
        if self.bundle.signature.excluded:
            parameters["ignored_inputs"] = [c.to_dict() for c in self.bundle.signature.excluded]
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": f"gitml_{self.family}",
            "inputs": [{"name": c.name, "datatype": V2_DATATYPE[c.dtype], "shape": [-1]}
                       for c in self.signature.inputs],
            "outputs": outputs,
            "parameters": parameters,
        }


def safe_version(version: str) -> str:
    """A version usable in a header and a metric label: printable ASCII, at most 128 characters."""
    cleaned = "".join(ch if 32 < ord(ch) < 127 else "_" for ch in str(version))[:128]
    return cleaned or "unversioned"


def _number_row(value: float) -> dict[str, Any]:
    return {"prediction": value}


def _row_builder(classes: list[Any], names: list[str]) -> Callable[..., dict[str, Any]]:
    # One row of the answer. The two-class case is the common one and worth a literal.
    if len(names) == 2:
        first, second = names

        def two(i: int, a: float, b: float) -> dict[str, Any]:
            return {"prediction": classes[i], "probabilities": {first: a, second: b}}

        return two

    def many(i: int, *p: float) -> dict[str, Any]:
        return {"prediction": classes[i], "probabilities": dict(zip(names, p, strict=True))}

    return many


class ModelHolder:
    """The one reference requests read; swaps are serialised and counted.

    Under a traffic split, ``routes`` holds every version and the routing table (requests read
    it first, once) and ``current`` its stable version (what status answers show); else None.
    """

    def __init__(self, model: ServedModel, routes: Routes | None = None):
        self.current = model
        self.routes = routes
        self._lock = threading.Lock()
        self.listeners: list[Callable[[ServedModel, ServedModel], None]] = []

    def swap(self, model: ServedModel, routes: Routes | None = None) -> ServedModel:
        with self._lock:
            # routes first: a request reading routes=None in between answers with the old
            # current, a version still loaded; one reading the new routes finds all it names.
            self.routes = routes
            old, self.current = self.current, model
        for listener in self.listeners:
            listener(old, model)
        log.info("now serving %s %s (was %s) from %s", model.name, model.version, old.version, model.source)
        return old
