"""``model.*`` rules: exact names in the allow-lists, hyper-parameters inside their ranges.

Like every ``*_problems`` function, these return ``(key, problem)`` pairs and never raise.
"""

from __future__ import annotations

import re
from typing import Any

from gitml.config.checks import Problems, at_least, positive

# Bounds on well-known numeric hyper-parameters, ('>', x) or ('>=', x). Only numbers are
# checked (a string there is the library's own choice, e.g. 'auto'), and only for the
# library whose conventions these are: lightgbm's max_depth=-1 means "no limit".
TORCH_BOUNDS: dict[str, tuple[str, float]] = {"lr": (">", 0), "weight_decay": (">=", 0), "T_max": (">=", 1), "step_size": (">=", 1)}
SKLEARN_BOUNDS: dict[str, tuple[str, float]] = {"n_estimators": (">=", 1), "max_iter": (">=", 1), "learning_rate": (">", 0), "C": (">", 0),
                  "max_depth": (">=", 1), "min_samples_leaf": (">", 0), "max_leaf_nodes": (">=", 2)}
# Arguments models/torch_module.build_module passes from the prepared data, never from config.
MODULE_RESERVED = ("n_features", "n_classes")


def _bounded(prefix: str, node: Any, bounds: dict[str, tuple[str, float]]) -> Problems:
    """The numeric entries of a ``_target_`` mapping that break ``bounds``."""
    problems: Problems = []
    if not isinstance(node, dict):
        return problems
    for name, (op, low) in bounds.items():
        value = node.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if op == ">":
            problems += positive(f"{prefix}.{name}", value)
        else:
            problems += at_least(f"{prefix}.{name}", value, low)
    return problems


def model_problems(model: Any) -> Problems:
    """``model.*``: exact names in the allow-lists, and hyper-parameters inside their ranges."""
    problems = model_name_problems(model)
    if getattr(model, "family", None) == "torch_mlp":
        problems += [(f"model.hidden_sizes.{i}", f"must be at least 1, got {size}.")
                     for i, size in enumerate(model.hidden_sizes) if size < 1]
        if not 0.0 <= model.dropout < 1.0:
            problems.append(("model.dropout", f"must be at least 0 and below 1, got {model.dropout}."))
        for key in ("optimizer", "scheduler"):
            problems += _bounded(f"model.{key}", getattr(model, key), TORCH_BOUNDS)
    elif getattr(model, "family", None) == "torch_module":
        problems += _module_problems(model)
    elif getattr(model, "family", None) == "sklearn":
        estimator = model.estimator
        target = estimator.get("_target_") if isinstance(estimator, dict) else None
        if not isinstance(target, str) or not target:
            problems.append(("model.estimator._target_", "the estimator needs a '_target_' class name, "
                             "e.g. sklearn.linear_model.LogisticRegression."))
        elif target.startswith("sklearn."):
            problems += _bounded("model.estimator", estimator, SKLEARN_BOUNDS)
        if model.class_weight is not None and isinstance(estimator, dict) and "class_weight" in estimator:
            problems.append(("model.class_weight", "is set and so is model.estimator.class_weight: keep one "
                             "(model.class_weight also reaches a Pipeline's last step)."))
    return problems


def _module_problems(model: Any) -> Problems:
    """``model.module`` of family torch_module: a class name, and no key gitml fills in itself."""
    module = model.module
    target = module.get("_target_") if isinstance(module, dict) else None
    if not isinstance(target, str) or not target:
        return [("model.module._target_", "the module needs a '_target_' class name (a torch.nn.Module "
                 "subclass), e.g. gitml.models.examples.ResidualMLP.")]
    problems = [(f"model.module.{key}", "is set from the prepared data (features, classes); remove it.")
                for key in MODULE_RESERVED if key in module]
    for key in ("optimizer", "scheduler"):
        problems += _bounded(f"model.{key}", getattr(model, key), TORCH_BOUNDS)
    return problems


def model_name_problems(model: Any) -> Problems:
    """``model.allowed_targets`` and ``model.trusted_types``: exact dotted names, each once."""
    problems = []
    for key in ("allowed_targets", "trusted_types"):
        names = list(getattr(model, key, None) or [])
        bad = [n for n in names if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", n)]
        if bad:
            problems.append((f"model.{key}", f"each entry must be an exact dotted name such as "
                             f"'package.module.ClassName' (no wildcard, no prefix), got {bad}."))
        if len(set(names)) != len(names):
            problems.append((f"model.{key}", f"lists a name twice: {sorted({n for n in names if names.count(n) > 1})}."))
    return problems
