"""Family ``sklearn``: a scikit-learn classifier (a regressor, for a regression task) or Pipeline
named by ``model.estimator._target_``.

A Pipeline's steps are ``[name, {_target_: ...}]`` pairs; every ``_target_`` at any depth
is checked by exact name (utils/targets.py) before anything is imported.

Saved with skops (``model.skops``), never pickle. skops itself trusts a small default set
(scikit-learn estimators, numpy dtypes and arrays, a few containers) and reports every other
type in a file as untrusted. gitml loads a file only when each reported type is in
:data:`TRUSTED_TYPES` below (or named exactly in ``model.trusted_types``): a fixed set of
classes, never a module prefix, never a function. The list a file was saved with is
recorded in ``model.json`` for review only; the load never trusts it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitml.config.schema import ClassWeight, SklearnConfig, TrainerConfig
from gitml.errors import GitmlError, ModelLoadError
from gitml.models import MODEL_INFO, FitReport, parse_info, refuse_class_weight
from gitml.models.skops_import import import_skops_io
from gitml.utils.targets import instantiate, repository_importable

log = logging.getLogger(__name__)
FAMILY = "sklearn"
WEIGHTS = "model.skops"
TRUSTED_KEY = "model.trusted_types"
# The types outside skops' default-trusted set that the estimators in
# utils/targets.SKLEARN_ESTIMATORS write when fitted (scikit-learn 1.9, skops 0.16): each a
# class holding fitted state. tests/unit/test_untrusted_payloads.py dumps fitted instances of
# every supported estimator and requires the types found to be exactly these.
TRUSTED_TYPES = frozenset({
    "sklearn.tree._tree.Tree",  # forests, gradient boosting, decision trees
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
})


class SklearnClassifier:
    family = FAMILY

    def __init__(self, cfg: SklearnConfig | None = None, classes: list[Any] | None = None,
                 feature_names: list[str] | None = None, estimator: Any = None, task: str = ""):
        self.cfg = cfg
        self.classes_ = list(classes or [])
        self.feature_names_ = list(feature_names or [])
        self.task = task or "classification"
        self.estimator_ = estimator
        self.report_ = FitReport()

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *,
            checkpoints: Path | None = None) -> SklearnClassifier:
        """Fit the estimator (no epochs: ``checkpoints`` has nothing to keep); report one point."""
        assert self.cfg is not None
        estimator = instantiate(dict(self.cfg.estimator), "model.estimator", extra=self.cfg.allowed_targets)
        check_kind(estimator, str(self.cfg.estimator["_target_"]), self.regression)
        if self.cfg.class_weight is not None:
            if self.regression:
                refuse_class_weight(self.cfg.class_weight)
            set_class_weight(estimator, ClassWeight(self.cfg.class_weight).value)
        if self.regression:  # in float64: a linear model keeps its inputs' dtype, and its answers too
            import numpy as np

            X, y = np.asarray(X, dtype="float64"), np.asarray(y, dtype="float64")
        self.estimator_ = estimator.fit(X, y)
        if not self.classes_ and not self.regression:
            self.classes_ = [int(c) for c in estimator.classes_]
        self.report_ = FitReport(history=[self._point(X, y, X_val, y_val)])
        return self

    def _point(self, X: Any, y: Any, X_val: Any, y_val: Any) -> dict[str, float]:
        """The fitted model on both splits, as one history row (the validation split when there is one).

        The loss is the log loss; for regression, the mean squared error.
        """
        import numpy as np
        from sklearn.metrics import log_loss

        if self.regression:
            point = {"epoch": 1, "train_loss": float(np.mean((self.predict(X) - y) ** 2))}
            if X_val is not None and len(X_val):
                point["val_loss"] = float(np.mean((self.predict(X_val) - y_val) ** 2))
            return point

        labels = list(range(len(self.classes_)))
        train_p = self.predict_proba(X)
        point = {"epoch": 1, "train_loss": float(log_loss(y, np.clip(train_p, 1e-15, 1), labels=labels))}
        if X_val is not None and len(X_val):
            val_p = self.predict_proba(X_val)
            point["val_loss"] = float(log_loss(y_val, np.clip(val_p, 1e-15, 1), labels=labels))
            point["val_accuracy"] = float((val_p.argmax(1) == y_val).mean())
        return point

    def predict(self, X: Any) -> Any:
        """Each row's class index; for regression, its predicted number."""
        if self.regression:
            import numpy as np

            return np.asarray(self.estimator_.predict(np.asarray(X, dtype="float64")), dtype="float64")
        return self.predict_proba(X).argmax(axis=1)

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        if self.regression:
            raise GitmlError("A regression model has no class probabilities: use predict.")
        proba = self.estimator_.predict_proba(np.asarray(X, dtype="float32"))
        if proba.shape[1] != len(self.classes_):  # a class absent from training data
            full = np.zeros((len(proba), len(self.classes_)))
            full[:, [int(c) for c in self.estimator_.classes_]] = proba
            proba = full
        return proba

    def save(self, path: Path) -> None:
        """Write model.skops and model.json; refuses a model whose file a load would refuse."""
        sio = import_skops_io()
        data = sio.dumps(self.estimator_)
        extra = self.cfg.trusted_types if self.cfg is not None else ()
        types = check_types(data, str(path / WEIGHTS), extra)
        _refuse_functions([name for name in types if name not in TRUSTED_TYPES])
        path.mkdir(parents=True, exist_ok=True)
        (path / WEIGHTS).write_bytes(data)
        info = {"family": FAMILY, "format": "skops", "estimator": describe(self.estimator_),
                "classes": self.classes_, "feature_names": self.feature_names_, "task": self.task,
                "skops_types": types}  # what skops reported at save: for review, never trusted at load
        (path / MODEL_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def check_kind(estimator: Any, target: str, regression: bool) -> None:
    """A classifier with predict_proba for a classification task, a regressor for regression.

    Raises GitmlError naming ``model.estimator._target_`` and what to choose instead.
    """
    from sklearn.base import is_classifier, is_regressor

    if regression and not is_regressor(estimator):
        raise GitmlError(
            f"'model.estimator._target_' {target!r} is not a regressor, and the task is regression "
            "(data.task). Choose a regressor: model=ridge, model=hgb_regressor, model=mlp, or any "
            "scikit-learn regressor (a Pipeline's last step must be one).")
    if not regression and (not is_classifier(estimator) or not hasattr(estimator, "predict_proba")):
        raise GitmlError(
            f"'model.estimator._target_' {target!r} is not a classifier with predict_proba (a "
            "Pipeline's last step must be one)"
            + (", and the task is classification (data.task)." if is_regressor(estimator) else "."))


def describe(estimator: Any) -> str:
    """The estimator's class name, with a Pipeline's steps: ``Pipeline(StandardScaler, LogisticRegression)``."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list):
        return f"{type(estimator).__name__}({', '.join(describe(step[1]) for step in steps)})"
    return type(estimator).__name__


def set_class_weight(estimator: Any, value: str) -> None:
    """``class_weight=value`` on the classifier: the estimator itself, or a Pipeline's last step.

    Raises GitmlError naming ``model.class_weight`` when that classifier takes no class_weight.
    """
    target = estimator
    while isinstance(getattr(target, "steps", None), list):  # a Pipeline (of Pipelines): its last step
        target = target.steps[-1][1]
    if "class_weight" not in target.get_params(deep=False):
        raise GitmlError(
            f"'model.class_weight' is {value!r}, but {type(target).__name__} takes no class_weight. "
            "Set model.class_weight=null, or choose a classifier that takes one (LogisticRegression, "
            "RandomForestClassifier, HistGradientBoostingClassifier, ...).")
    target.set_params(class_weight=value)


def build(model_cfg: SklearnConfig, trainer_cfg: TrainerConfig, classes: list[Any] | None = None,
          feature_names: list[str] | None = None, task: str = "") -> SklearnClassifier:
    return SklearnClassifier(model_cfg, classes, feature_names, task=task)


def check_types(data: bytes, where: str, extra: Iterable[str] = ()) -> list[str]:
    """The types skops reports in ``data``; raises ModelLoadError naming any outside the trust set.

    Reads the file's schema only: nothing in it is built or called.
    """
    sio = import_skops_io()
    if not data.startswith(b"PK"):  # a skops file is a zip archive; a pickle is not
        raise ModelLoadError(where, "not a skops file (no zip archive header)")
    try:
        found = sorted(sio.get_untrusted_types(data=data))
    except Exception as exc:
        raise ModelLoadError(where, f"not a skops file ({type(exc).__name__}: {exc})") from exc
    refused = [name for name in found if name not in TRUSTED_TYPES and name not in set(extra)]
    if refused:
        raise ModelLoadError(
            where, f"it contains types outside gitml's trusted set {refused} (trusted: "
            f"{sorted(TRUSTED_TYPES)}; to trust another class, list its exact name in '{TRUSTED_KEY}', "
            "or in GITML_TRUSTED_TYPES where no config is read: gitml serve, gitml predict)")
    return found


def _refuse_functions(names: list[str]) -> None:
    """At save, each name trusted through model.trusted_types must be a class (never a function).

    The estimator's modules are imported already (it was just fitted), so resolving is safe here.
    """
    import importlib
    import inspect

    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError):
            obj = None
        if not inspect.isclass(obj):
            raise GitmlError(f"'{TRUSTED_KEY}' lists {name!r}, which is not a class: a function or "
                             "method in model.skops would run at load, so it cannot be trusted.")


def load_files(files: dict[str, bytes], where: Path, trusted_types: Iterable[str] = ()) -> SklearnClassifier:
    """Build the model from the bytes of ``model.json`` and ``model.skops`` (already read once)."""
    sio = import_skops_io()
    info = parse_info(files, where)
    if info.get("format") != "skops":
        raise ModelLoadError(str(where), f"format {info.get('format')!r} is not skops")
    if WEIGHTS not in files:
        raise ModelLoadError(str(where), f"{WEIGHTS} is missing")
    data = files[WEIGHTS]
    trusted = check_types(data, str(where / WEIGHTS), trusted_types)
    if any(name not in TRUSTED_TYPES for name in trusted):
        repository_importable()  # a listed class may live in the repository (models_ext/)
    try:
        estimator = sio.loads(data, trusted=trusted)
    except Exception as exc:
        raise ModelLoadError(str(where / WEIGHTS), f"skops could not load it ({exc})") from exc
    try:
        return SklearnClassifier(classes=list(info["classes"]), feature_names=list(info["feature_names"]),
                                 estimator=estimator, task=str(info.get("task") or ""))
    except (KeyError, TypeError) as exc:
        raise ModelLoadError(str(where / MODEL_INFO), f"lacks classes or feature_names ({exc})") from exc


def load(path: Path, trusted_types: Iterable[str] = ()) -> SklearnClassifier:
    from gitml.models import read_files

    return load_files(read_files(path, (MODEL_INFO, WEIGHTS)), path, trusted_types)
