"""Family ``sklearn``: any scikit-learn classifier named by ``model.estimator._target_``.

Saved with skops (``model.skops``), never pickle. Loading lists the types the file would
create and accepts it only when every one is under the trusted prefixes below; anything
else is refused before a single object is built.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gitml.config.schema import SklearnConfig, TrainerConfig
from gitml.errors import GitmlError, ModelLoadError
from gitml.models import MODEL_INFO
from gitml.utils.targets import instantiate

log = logging.getLogger(__name__)
FAMILY = "sklearn"
WEIGHTS = "model.skops"
# The loader's explicit trust list: scikit-learn's own classes, numpy and scipy data types.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.")
UNTRUSTED_BUILTINS = ("builtins.eval", "builtins.exec", "builtins.compile", "builtins.open",
                      "builtins.__import__", "builtins.getattr", "builtins.setattr")


class SklearnClassifier:
    family = FAMILY

    def __init__(self, cfg: SklearnConfig | None = None, classes: list[Any] | None = None,
                 feature_names: list[str] | None = None, estimator: Any = None, **_: Any):
        self.cfg = cfg
        self.classes_ = list(classes or [])
        self.feature_names_ = list(feature_names or [])
        self.estimator_ = estimator
        self.result_: Any = None

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> SklearnClassifier:
        from sklearn.base import is_classifier

        assert self.cfg is not None
        estimator = instantiate(dict(self.cfg.estimator), "model.estimator")
        if not is_classifier(estimator) or not hasattr(estimator, "predict_proba"):
            raise GitmlError(
                f"'model.estimator._target_' {self.cfg.estimator['_target_']!r} is not a classifier "
                "with predict_proba."
            )
        self.estimator_ = estimator.fit(X, y)
        if not self.classes_:
            self.classes_ = [int(c) for c in estimator.classes_]
        return self

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        proba = self.estimator_.predict_proba(np.asarray(X, dtype="float32"))
        if proba.shape[1] != len(self.classes_):  # a class absent from training data
            full = np.zeros((len(proba), len(self.classes_)))
            full[:, [int(c) for c in self.estimator_.classes_]] = proba
            proba = full
        return proba

    def save(self, path: Path) -> None:
        import skops.io as sio

        path.mkdir(parents=True, exist_ok=True)
        sio.dump(self.estimator_, path / WEIGHTS)
        info = {"family": FAMILY, "format": "skops", "estimator": type(self.estimator_).__name__,
                "classes": self.classes_, "feature_names": self.feature_names_}
        (path / MODEL_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def build(model_cfg: SklearnConfig, trainer_cfg: TrainerConfig, **context: Any) -> SklearnClassifier:
    context.pop("checkpoint_dir", None)
    context.pop("run_fingerprint", None)
    return SklearnClassifier(model_cfg, **context)


def trusted_types(file: Path) -> list[str]:
    """The types in ``file`` this loader trusts; raises when any other type is present."""
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=file)
    except Exception as exc:
        raise ModelLoadError(str(file), f"not a skops file ({type(exc).__name__}: {exc})") from exc
    refused = [t for t in found if not t.startswith(TRUSTED_PREFIXES) or t in UNTRUSTED_BUILTINS]
    if refused:
        raise ModelLoadError(str(file), f"it contains untrusted types {refused}")
    return list(found)


def load(path: Path) -> SklearnClassifier:
    import skops.io as sio

    info = json.loads((path / MODEL_INFO).read_text(encoding="utf-8"))
    if info.get("format") != "skops":
        raise ModelLoadError(str(path), f"format {info.get('format')!r} is not skops")
    file = path / WEIGHTS
    trusted = trusted_types(file)
    try:
        estimator = sio.load(file, trusted=trusted)
    except Exception as exc:
        raise ModelLoadError(str(file), f"skops could not load it ({exc})") from exc
    return SklearnClassifier(classes=info["classes"], feature_names=info["feature_names"], estimator=estimator)
