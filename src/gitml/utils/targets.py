"""Instantiate ``_target_`` objects from config, only from an explicit registry of classes.

Configs arrive through pull requests: a ``_target_`` of ``os.system``, or of a test helper
inside an allowed package (``sklearn.utils._testing.assert_run_python_script_without_output``),
must never run. So the check compares the exact string with the names below (and those the
config lists in ``model.allowed_targets``) before anything is imported: no prefix, no
"is it a class" test after import.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gitml.errors import UnsafeTargetError

# The scikit-learn classifiers gitml supports (each has predict_proba): conf/model/ uses the
# first three; then the regressors, for a regression task (conf/model/ridge.yaml,
# hgb_regressor.yaml). models/sklearn.py's TRUSTED_TYPES holds exactly the extra types these write.
# A Pipeline's steps are checked one by one, each `_target_` at any depth against these lists.
SKLEARN_CLASSIFIERS = (
    "sklearn.linear_model.LogisticRegression",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.neural_network.MLPClassifier",
)
SKLEARN_REGRESSORS = (
    "sklearn.linear_model.Ridge",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.linear_model.HuberRegressor",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.neighbors.KNeighborsRegressor",
    "sklearn.neural_network.MLPRegressor",
)
SKLEARN_ESTIMATORS = SKLEARN_CLASSIFIERS + SKLEARN_REGRESSORS
# Steps a model.estimator Pipeline may chain before its classifier: each writes no type
# outside skops' default set when fitted (tests/unit/test_custom_models.py dumps them all).
# Transformers that store a function (SelectKBest's score_func, FunctionTransformer) are
# left out: skops would have to call that function at load.
SKLEARN_PIPELINE = ("sklearn.pipeline.Pipeline",)
SKLEARN_TRANSFORMERS = tuple(f"sklearn.{name}" for name in (
    "preprocessing.StandardScaler", "preprocessing.MinMaxScaler", "preprocessing.RobustScaler",
    "preprocessing.MaxAbsScaler", "preprocessing.QuantileTransformer", "preprocessing.PowerTransformer",
    "preprocessing.PolynomialFeatures", "preprocessing.Normalizer", "decomposition.PCA",
    "decomposition.TruncatedSVD", "feature_selection.VarianceThreshold", "kernel_approximation.Nystroem",
    "kernel_approximation.RBFSampler"))
# model.module of the torch_module family: the example networks gitml ships (models/examples.py).
TORCH_NETWORKS = ("gitml.models.examples.ResidualMLP",)
# model.optimizer of the torch_mlp family (built as a partial over the parameters).
TORCH_OPTIMIZERS = tuple(f"torch.optim.{name}" for name in (
    "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"))
# model.scheduler: stepped once per epoch without a metric (so not ReduceLROnPlateau).
TORCH_SCHEDULERS = tuple(f"torch.optim.lr_scheduler.{name}" for name in (
    "CosineAnnealingLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "ConstantLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR"))
# The activations model.activation names (models/torch_mlp.py ACTIVATIONS).
TORCH_MODULES = tuple(f"torch.nn.{name}" for name in ("ReLU", "GELU", "SiLU", "Tanh"))
ALLOWED_TARGETS = frozenset(SKLEARN_ESTIMATORS + SKLEARN_PIPELINE + SKLEARN_TRANSFORMERS + TORCH_NETWORKS
                            + TORCH_OPTIMIZERS + TORCH_SCHEDULERS + TORCH_MODULES)
EXTRA_KEY = "model.allowed_targets"


def check_targets(node: Any, key: str, extra: Iterable[str] = ()) -> None:
    """Raise UnsafeTargetError for any ``_target_`` in ``node`` not in the registry or ``extra``.

    Example:
        >>> check_targets({"_target_": "torch.optim.AdamW", "lr": 1e-3}, "model.optimizer")
    """
    allowed = ALLOWED_TARGETS | frozenset(extra)
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and (not isinstance(target, str) or target not in allowed):
            raise UnsafeTargetError(key, str(target), sorted(ALLOWED_TARGETS), EXTRA_KEY)
        for name, value in node.items():
            check_targets(value, f"{key}.{name}", extra)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_targets(value, f"{key}.{i}", extra)


def repository_importable() -> None:
    """Let a class the repository itself defines (``models_ext/``, ``src/<pkg>/``) be imported.

    ``gitml`` runs as a console script, so the working directory (the repository root
    under ``dvc repro`` and ``gitml serve``) is not on ``sys.path``. It is appended, after
    the installed packages, so a file in the repository can never shadow one of them; and
    only an exact name from an allow-list is ever imported from it.
    """
    import os
    import sys

    for folder in (os.getcwd(), os.path.join(os.getcwd(), "src")):
        if folder not in sys.path and os.path.isdir(folder):
            sys.path.append(folder)


def instantiate(node: dict[str, Any], key: str, *args: Any, extra: Iterable[str] = (), **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` after the registry check; errors name ``key``.

    ``extra``: the exact class names the config adds (``model.allowed_targets``). Nested
    lists and mappings arrive as plain ``list``/``dict`` (a Pipeline's ``steps``), never as
    omegaconf containers, which no skops file may hold.
    """
    from hydra.utils import instantiate as hydra_instantiate

    from gitml.errors import ConfigError

    check_targets(node, key, extra)
    if extra:
        repository_importable()
    kwargs.setdefault("_convert_", "all")
    try:
        return hydra_instantiate(node, *args, **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ConfigError("params.yaml", key, f"cannot instantiate {node.get('_target_')!r}: {cause}") from exc
