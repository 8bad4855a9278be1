"""Model families behind one small protocol: fit / predict / predict_proba / save / load.

A family is one module ``gitml.models.<family>`` exposing ``build(model_cfg, trainer_cfg,
classes, feature_names, task)``, ``load(path)`` and ``load_files(files, where)``; its model
objects follow :class:`Model`, and each fit leaves a typed :class:`FitReport`. Adding a
family is that module plus a config file under ``conf/model/`` (and its schema in
``gitml.config.schema.MODEL_SCHEMAS``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gitml.errors import GitmlError, ModelLoadError

if TYPE_CHECKING:
    import numpy as np

MODEL_INFO = "model.json"
TRUSTED_ENV = "GITML_TRUSTED_TYPES"


@dataclass
class FitReport:
    """What a fit did. Families without epochs report one point: the fitted model on both splits."""

    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: train_loss, val_loss, ...
    best_epoch: int = 1  # the epoch whose weights the model keeps
    stopped_early: bool = False
    resumed_from: int = 0  # epochs a checkpoint already held when this fit started
    device: str = "cpu"
    peak_rows: int = 0  # the most training or validation rows held at once (trainer.stream); 0: not counted


class Model(Protocol):
    """What every family's model object offers (scikit-learn style: fit returns self).

    ``checkpoints``: a folder where a family that trains in epochs keeps per-epoch state, so
    a rerun resumes; families without epochs have nothing to keep there.
    """

    family: str
    task: str  # binary, multiclass or regression ("classification": a file written before tasks)
    classes_: list[Any]  # empty for regression
    report_: FitReport  # set by fit

    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, *, checkpoints: Path | None = None) -> Model: ...

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of the most probable class of each row; for regression, the predicted number."""
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:  # classification only
        ...

    def save(self, path: Path) -> None: ...


def refuse_class_weight(value: Any) -> None:
    """``model.class_weight`` has no meaning for a regression: refuse it naming the key (every family)."""
    if value is not None:
        raise GitmlError("'model.class_weight' is set, but the task is regression: there are no classes to "
                         "weigh. Set model.class_weight=null.")


def family_module(family: str) -> Any:
    from gitml.config.schema import MODEL_SCHEMAS

    if family not in MODEL_SCHEMAS:
        raise GitmlError(f"Unknown model family '{family}'. Allowed: {', '.join(MODEL_SCHEMAS)}.")
    return importlib.import_module(f"gitml.models.{family}")


def build_model(model_cfg: Any, trainer_cfg: Any, classes: list[Any] | None = None,
                feature_names: list[str] | None = None, task: str = "") -> Model:
    """Build an unfitted model of ``model_cfg.family`` for ``task`` (binary, multiclass or regression)."""
    return family_module(model_cfg.family).build(model_cfg, trainer_cfg, classes, feature_names, task)


def config_trusted_types(model_cfg: Any) -> tuple[str, ...]:
    """The exact names a loader's config adds to gitml's trust: what a saved model may hold.

    ``model.trusted_types`` (skops types of an sklearn model); for ``torch_module``,
    ``model.allowed_targets`` too, since loading rebuilds the module its config named.
    """
    names = tuple(getattr(model_cfg, "trusted_types", None) or ())
    if getattr(model_cfg, "family", None) == "torch_module":
        names += tuple(model_cfg.allowed_targets or ())
    return names


def operator_trusted_types() -> tuple[str, ...]:
    """Exact names in ``GITML_TRUSTED_TYPES`` (comma or space separated), for loaders that read no config.

    ``gitml serve`` and ``gitml predict`` load a bundle without the model section of
    params.yaml; whoever runs them names here the repository's own classes a bundle may hold.
    """
    import os
    import re

    names = tuple(re.split(r"[,\s]+", os.environ.get(TRUSTED_ENV, "").strip()))
    names = tuple(name for name in names if name)
    bad = [name for name in names if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name)]
    if bad:
        raise GitmlError(f"{TRUSTED_ENV} must list exact dotted names such as 'package.module.ClassName' "
                         f"(no wildcard, no prefix), got {bad}.")
    return names


def load_model(path: str | Path, trusted_types: Iterable[str] = ()) -> Model:
    """Load a saved model folder; its ``model.json`` names the family. Refuses unsafe files.

    ``trusted_types``: exact names the loader's config adds (:func:`config_trusted_types`);
    ``GITML_TRUSTED_TYPES`` adds to them.
    """
    path = Path(path)
    if not (path / MODEL_INFO).is_file():
        raise ModelLoadError(str(path), f"no {MODEL_INFO}: not a gitml model folder")
    info = parse_info(read_files(path, (MODEL_INFO,)), path)
    trusted = (*trusted_types, *operator_trusted_types())
    return family_module(str(info.get("family"))).load(path, trusted)


def load_model_files(files: dict[str, bytes], where: Path, trusted_types: Iterable[str] = ()) -> Model:
    """Build a model from the bytes of its folder's files (name -> bytes), read and verified once.

    Nothing is read from disk: ``where`` only names the folder in errors.
    """
    info = parse_info(files, where)
    trusted = (*trusted_types, *operator_trusted_types())
    return family_module(str(info.get("family"))).load_files(files, where, trusted)


def read_files(path: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The bytes of ``names`` in folder ``path``; a missing one is a ModelLoadError."""
    try:
        return {name: (path / name).read_bytes() for name in names}
    except OSError as exc:
        raise ModelLoadError(str(path), f"cannot read {exc.filename} ({exc.strerror})") from exc


def parse_info(files: dict[str, bytes], where: Path) -> dict[str, Any]:
    """``model.json`` from its bytes: a JSON object, or a ModelLoadError naming the file."""
    if MODEL_INFO not in files:
        raise ModelLoadError(str(where), f"no {MODEL_INFO}: not a gitml model folder")
    try:
        info = json.loads(files[MODEL_INFO].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(str(where / MODEL_INFO), f"not valid JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise ModelLoadError(str(where / MODEL_INFO), "not a JSON object")
    return info
