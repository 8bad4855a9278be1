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
# first three. models/sklearn.py's TRUSTED_TYPES holds exactly the extra types these write.
SKLEARN_ESTIMATORS = (
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
# model.optimizer of the torch_mlp family (built as a partial over the parameters).
TORCH_OPTIMIZERS = tuple(f"torch.optim.{name}" for name in (
    "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"))
# model.scheduler: stepped once per epoch without a metric (so not ReduceLROnPlateau).
TORCH_SCHEDULERS = tuple(f"torch.optim.lr_scheduler.{name}" for name in (
    "CosineAnnealingLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "ConstantLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR"))
# The activations model.activation names (models/torch_mlp.py ACTIVATIONS).
TORCH_MODULES = tuple(f"torch.nn.{name}" for name in ("ReLU", "GELU", "SiLU", "Tanh"))
ALLOWED_TARGETS = frozenset(SKLEARN_ESTIMATORS + TORCH_OPTIMIZERS + TORCH_SCHEDULERS + TORCH_MODULES)
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


def instantiate(node: dict[str, Any], key: str, *args: Any, extra: Iterable[str] = (), **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` after the registry check; errors name ``key``.

    ``extra``: the exact class names the config adds (``model.allowed_targets``).
    """
    from hydra.utils import instantiate as hydra_instantiate

    from gitml.errors import ConfigError

    check_targets(node, key, extra)
    try:
        return hydra_instantiate(node, *args, **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ConfigError("params.yaml", key, f"cannot instantiate {node.get('_target_')!r}: {cause}") from exc
