"""Family ``torch_module``: any ``torch.nn.Module`` named by ``model.module._target_``.

The module is built as ``_target_(n_features=..., n_classes=..., **other keys)`` (see
:mod:`gitml.models.examples` for the shape it must have) and trained by gitml's own
:class:`~gitml.train.loop.Trainer`. Saved as ``model.safetensors`` (tensors only) and
``model.json`` (the ``module`` mapping, classes, feature names). Loading checks every
``_target_`` in that mapping by exact name against gitml's registry and the loader's
``model.allowed_targets`` before importing anything, rebuilds the module and reads the
weights with ``load_state_dict(strict=True)``. Unlike ``torch_mlp`` (NumPy at serve time),
predicting needs torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitml.config.schema import ClassWeight, TorchModuleConfig, TrainerConfig
from gitml.errors import ConfigError, GitmlError, ModelLoadError, UnsafeTargetError
from gitml.models import MODEL_INFO, FitReport, parse_info, refuse_class_weight
from gitml.train.rows import ArrayRows, FeatureFile, mean_and_scale
from gitml.utils.targets import check_targets, instantiate, repository_importable

FAMILY = "torch_module"
WEIGHTS = "model.safetensors"


def build_module(node: dict[str, Any], n_features: int, n_classes: int, key: str,
                 extra: Iterable[str] = ()) -> Any:
    """The module ``node`` names, after the exact-name check, for ``n_features`` -> ``n_classes``.

    Raises UnsafeTargetError (a name outside the lists, nothing imported) or GitmlError
    (the class is not a ``torch.nn.Module``).
    """
    from hydra.utils import get_class
    from torch import nn

    extra = tuple(extra)
    check_targets(node, key, extra)
    if extra:
        repository_importable()
    target = str(node["_target_"])
    try:
        cls = get_class(target)
    except Exception as exc:  # hydra wraps ImportError and "not a class" alike
        raise GitmlError(f"'{key}._target_' {target!r} cannot be imported as a class ({exc}).") from exc
    if not issubclass(cls, nn.Module):
        raise GitmlError(f"'{key}._target_' {target!r} is not a torch.nn.Module subclass.")
    return instantiate(dict(node), key, n_features=n_features, n_classes=n_classes, extra=extra)


def fit_network(net: Any, cfg: Any, trainer: TrainerConfig, train: ArrayRows | FeatureFile,
                val: ArrayRows | FeatureFile | None, checkpoints: Path | None, identity: dict[str, Any],
                n_classes: int, target: tuple[float, float] | None = None) -> FitReport:
    """Train ``net`` with the config's optimizer, scheduler and class weights (both torch families),
    on rows in memory or streamed from their files (``trainer.stream``).

    ``target``: a regression's (center, scale): the network learns ``(y - center) / scale``.
    """
    from gitml.train.loop import Trainer

    extra = cfg.allowed_targets
    optimizer = instantiate(dict(cfg.optimizer), "model.optimizer", extra=extra) if cfg.optimizer else None
    scheduler = instantiate(dict(cfg.scheduler), "model.scheduler", extra=extra) if cfg.scheduler else None
    if target is not None:
        refuse_class_weight(cfg.class_weight)
        train = train.scaled(target)
        val = None if val is None else val.scaled(target)
    weights = (balanced_weights(train.label_counts(n_classes), train.rows, n_classes)
               if cfg.class_weight is not None else None)
    if weights is not None:
        identity = {**identity, "class_weight": ClassWeight(cfg.class_weight).value}
    return Trainer(trainer, checkpoints).fit_rows(net, train, val, optimizer, scheduler, identity=identity,
                                                  class_weight=weights, regression=target is not None)


def prepare_fit(model: Any, train: ArrayRows | FeatureFile) -> None:
    """What a torch family's fit settles before building its network: feature names, classes or the
    regression label's scaling, and the seeds (the same initial weights every run)."""
    from gitml.train.device import seed_everything

    if not model.feature_names_:
        model.feature_names_ = [f"x{i}" for i in range(train.n_features)]
    if model.task == "regression":
        model.target_ = train.label_scaling()
    elif not model.classes_:
        model.classes_ = train.classes()
    seed_everything(model.trainer.seed, model.trainer.deterministic)


def array_rows(X: Any, y: Any, X_val: Any, y_val: Any) -> tuple[ArrayRows, ArrayRows | None]:
    """A fit's arrays as the trainer's rows."""
    return ArrayRows(X, y), (ArrayRows(X_val, y_val) if X_val is not None else None)


def target_scaling(y: Any) -> tuple[float, float]:
    """A regression label's (mean, standard deviation): what a network's one output is scaled by.

    Example:
        >>> target_scaling([1.0, 3.0])
        (2.0, 1.0)
    """
    return mean_and_scale(y)


def balanced_class_weights(y: Any, n_classes: int) -> list[float]:
    """scikit-learn's ``class_weight='balanced'``: ``n_rows / (n_classes * rows of the class)``.

    A class absent from ``y`` counts as one row, so its weight is finite (and large).

    Example:
        >>> balanced_class_weights(np.array([0, 0, 0, 1]), 2)
        [0.6666666666666666, 2.0]
    """
    import numpy as np

    counts = np.bincount(np.asarray(y, dtype="int64"), minlength=n_classes)[:n_classes]
    return balanced_weights(counts, len(y), n_classes)


def balanced_weights(counts: Any, rows: int, n_classes: int) -> list[float]:
    """:func:`balanced_class_weights` from the label's per-class counts (streamed rows count them a row group at a time)."""
    import numpy as np

    return [float(v) for v in rows / (n_classes * np.maximum(counts, 1))]


def torch_values(net: Any, X: Any, target: tuple[float, float]) -> Any:
    """A regression network's one output for ``X``, back on the label's scale, as NumPy float64."""
    import numpy as np
    import torch

    with torch.inference_mode():
        out = net(torch.as_tensor(np.asarray(X, dtype="float32"))).float().numpy()[:, 0]
    return out.astype("float64") * target[1] + target[0]


def torch_proba(net: Any, X: Any) -> Any:
    """Softmax of ``net``'s logits for ``X``, on the CPU, as NumPy."""
    import numpy as np
    import torch

    with torch.inference_mode():
        logits = net(torch.as_tensor(np.asarray(X, dtype="float32")))
        return torch.softmax(logits.float(), dim=1).numpy()


class TorchModuleClassifier:
    """A user's ``nn.Module`` with the scikit-learn shape: ``fit`` returns self, state ends in ``_``."""

    family = FAMILY

    def __init__(self, cfg: TorchModuleConfig, trainer: TrainerConfig | None = None,
                 classes: list[Any] | None = None, feature_names: list[str] | None = None, task: str = ""):
        self.cfg, self.trainer = cfg, trainer or TrainerConfig()
        self.classes_ = list(classes or [])
        self.feature_names_ = list(feature_names or [])
        self.task = task or "classification"
        self.target_: tuple[float, float] | None = None  # regression: (center, scale) of the label
        self.net_: Any = None
        self.report_ = FitReport()

    def spec(self) -> dict[str, Any]:
        """What model.json records: enough to rebuild the module before reading its weights.

        A regression module has one output (``n_classes`` 1) and records the label's scaling.
        """
        regression = self.task == "regression"
        spec = {"family": FAMILY, "format": "safetensors", "module": dict(self.cfg.module),
                "n_features": len(self.feature_names_), "n_classes": 1 if regression else len(self.classes_),
                "classes": self.classes_, "feature_names": self.feature_names_, "task": self.task}
        if regression and self.target_ is not None:
            spec["target"] = list(self.target_)
        return spec

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *,
            checkpoints: Path | None = None) -> TorchModuleClassifier:
        return self.fit_stream(*array_rows(X, y, X_val, y_val), checkpoints=checkpoints)

    def fit_stream(self, train: ArrayRows | FeatureFile, val: ArrayRows | FeatureFile | None = None, *,
                   checkpoints: Path | None = None) -> TorchModuleClassifier:
        """Fit on rows in memory or prepared feature files read a row group at a time (``trainer.stream``)."""
        prepare_fit(self, train)
        spec = self.spec()
        self.net_ = build_module(spec["module"], spec["n_features"], spec["n_classes"], "model.module",
                                 self.cfg.allowed_targets)
        identity = {"spec": spec, "optimizer": self.cfg.optimizer, "scheduler": self.cfg.scheduler}
        self.report_ = fit_network(self.net_, self.cfg, self.trainer, train, val, checkpoints, identity,
                                   spec["n_classes"], self.target_)
        self.net_.to("cpu").eval()
        return self

    def predict(self, X: Any) -> Any:
        """Each row's class index; for regression, its predicted number."""
        if self.target_ is not None:
            return torch_values(self._net(), X, self.target_)
        return self.predict_proba(X).argmax(axis=1)

    def predict_proba(self, X: Any) -> Any:
        if self.target_ is not None:
            raise GitmlError("A regression model has no class probabilities: use predict.")
        return torch_proba(self._net(), X)

    def _net(self) -> Any:
        if self.net_ is None:
            raise RuntimeError("TorchModuleClassifier is not fitted")
        return self.net_

    def save(self, path: Path) -> None:
        """Write model.safetensors and model.json; refuses module keys that are not plain JSON values."""
        from safetensors.torch import save_file

        try:
            info = json.dumps(self.spec(), indent=2, allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise GitmlError(f"'model.module' holds a value model.json cannot record ({exc}): "
                             "use numbers, strings, booleans, lists and mappings.") from exc
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.net_.state_dict().items()}
        save_file(state, str(path / WEIGHTS), metadata={"family": FAMILY})
        (path / MODEL_INFO).write_text(info, encoding="utf-8")


def build(model_cfg: TorchModuleConfig, trainer_cfg: TrainerConfig, classes: list[Any] | None = None,
          feature_names: list[str] | None = None, task: str = "") -> TorchModuleClassifier:
    return TorchModuleClassifier(model_cfg, trainer_cfg, classes, feature_names, task)


def load_files(files: dict[str, bytes], where: Path, trusted_types: Iterable[str] = ()) -> TorchModuleClassifier:
    """The model from the bytes of ``model.json`` and ``model.safetensors`` (already read once).

    ``trusted_types``: the loader's ``model.allowed_targets`` (exact class names beyond
    gitml's registry); the file's own ``module`` mapping is never a reason to trust a name.
    """
    info = parse_info(files, where)
    if info.get("format") != "safetensors":
        raise ModelLoadError(str(where), f"format {info.get('format')!r} is not safetensors")
    if WEIGHTS not in files:
        raise ModelLoadError(str(where), f"{WEIGHTS} is missing")
    node, spec_file = info.get("module"), str(where / MODEL_INFO)
    try:
        n_features, n_classes = int(info["n_features"]), int(info["n_classes"])
        classes, feature_names = list(info["classes"]), list(info["feature_names"])
        task, target = read_target(info)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(spec_file, f"lacks n_features, n_classes, classes or feature_names ({exc})") from exc
    if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
        raise ModelLoadError(spec_file, "its 'module' is not a mapping with a '_target_' class name")
    net = _rebuild(node, n_features, n_classes, spec_file, tuple(trusted_types))
    _load_weights(net, files[WEIGHTS], str(where / WEIGHTS))
    cfg = TorchModuleConfig(module=node)
    model = TorchModuleClassifier(cfg, classes=classes, feature_names=feature_names, task=task)
    model.net_, model.target_ = net.eval(), target
    return model


def read_target(info: dict[str, Any]) -> tuple[str, tuple[float, float] | None]:
    """The task model.json records and, for regression, the label's (center, scale)."""
    task = str(info.get("task") or "classification")
    if task != "regression":
        return task, None
    center, scale = (float(v) for v in info["target"])
    return task, (center, scale)


def _rebuild(node: dict[str, Any], n_features: int, n_classes: int, where: str, trusted: tuple[str, ...]) -> Any:
    try:
        return build_module(node, n_features, n_classes, "module", trusted)
    except UnsafeTargetError as exc:
        raise ModelLoadError(where, f"it names {exc.target!r} at '{exc.key}', which is neither in gitml's "
                             "registry nor in the loader's 'model.allowed_targets' (list the exact class "
                             "name there, or in GITML_TRUSTED_TYPES where no config is read, to trust it)") from exc
    except (ConfigError, GitmlError) as exc:
        raise ModelLoadError(where, f"its module cannot be rebuilt ({exc})") from exc


def _load_weights(net: Any, data: bytes, where: str) -> None:
    """``load_state_dict(strict=True)`` from safetensors bytes: every tensor present, none extra, shapes equal."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    try:
        state = load_tensors(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise ModelLoadError(where, f"not a valid safetensors file ({exc})") from exc
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())
        raise ModelLoadError(where, f"weights do not match the module in {MODEL_INFO} ({reason})") from exc


def load(path: Path, trusted_types: Iterable[str] = ()) -> TorchModuleClassifier:
    from gitml.models import read_files

    return load_files(read_files(path, (MODEL_INFO, WEIGHTS)), path, trusted_types)
