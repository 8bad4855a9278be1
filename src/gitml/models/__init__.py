"""Model families behind one small protocol: fit / predict_proba / save / load.

A family is one module ``gitml.models.<family>`` exposing ``build(model_cfg, trainer_cfg,
**context)`` and ``load(path)``; its model objects follow :class:`Model`. Adding a family
is that module plus a config file under ``conf/model/`` (and its schema in
``gitml.config.schema.MODEL_SCHEMAS``).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gitml.errors import GitmlError, ModelLoadError

if TYPE_CHECKING:
    import numpy as np

MODEL_INFO = "model.json"


class Model(Protocol):
    """What every family's model object offers (scikit-learn style: fit returns self)."""

    family: str
    classes_: list[Any]

    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None) -> Model: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...


def family_module(family: str) -> Any:
    from gitml.config.schema import MODEL_SCHEMAS

    if family not in MODEL_SCHEMAS:
        raise GitmlError(f"Unknown model family '{family}'. Allowed: {', '.join(MODEL_SCHEMAS)}.")
    return importlib.import_module(f"gitml.models.{family}")


def build_model(model_cfg: Any, trainer_cfg: Any, **context: Any) -> Model:
    """Build an unfitted model of ``model_cfg.family``."""
    return family_module(model_cfg.family).build(model_cfg, trainer_cfg, **context)


def load_model(path: str | Path) -> Model:
    """Load a saved model folder; its ``model.json`` names the family. Refuses unsafe files."""
    path = Path(path)
    info_file = path / MODEL_INFO
    if not info_file.is_file():
        raise ModelLoadError(str(path), f"no {MODEL_INFO}: not a gitml model folder")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(str(info_file), f"not valid JSON ({exc})") from exc
    return family_module(str(info.get("family"))).load(path)


def read_info(path: Path) -> dict[str, Any]:
    return json.loads((path / MODEL_INFO).read_text(encoding="utf-8"))
