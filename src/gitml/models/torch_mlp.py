"""Family ``torch_mlp``: a PyTorch MLP for tabular data.

Saved as ``model.safetensors`` (weights) + ``model.json`` (architecture, classes, feature
names). Loading rebuilds the architecture from JSON and reads only tensors: nothing in
the files can execute code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitml.config.schema import TorchMLPConfig, TrainerConfig
from gitml.errors import GitmlError, ModelLoadError
from gitml.models import MODEL_INFO, FitReport, parse_info
from gitml.models.mlp_inference import MLPInference, expected_shapes, layer_plan
from gitml.train.rows import ArrayRows, FeatureFile

log = logging.getLogger(__name__)
FAMILY = "torch_mlp"
WEIGHTS = "model.safetensors"
ACTIVATIONS = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "tanh": "Tanh"}


def build_network(n_features: int, n_classes: int, hidden_sizes: list[int], activation: str,
                  dropout: float, batch_norm: bool) -> Any:
    """The torch network for training; :func:`layer_plan` is the layout inference reads back."""
    from torch import nn

    layers: list[Any] = []
    width = n_features
    for kind, size in layer_plan(hidden_sizes, activation, dropout, batch_norm):
        if kind == "linear":
            layers.append(nn.Linear(width, size or n_classes))
            width = size
        elif kind == "batch_norm":
            layers.append(nn.BatchNorm1d(size))
        elif kind == "activation":
            layers.append(getattr(nn, ACTIVATIONS[activation])())
        else:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class TorchMLPClassifier:
    """MLP classifier with the scikit-learn shape: ``fit`` returns self, state ends in ``_``."""

    family = FAMILY

    def __init__(self, cfg: TorchMLPConfig, trainer: TrainerConfig | None = None,
                 classes: list[Any] | None = None, feature_names: list[str] | None = None, task: str = ""):
        self.cfg, self.trainer = cfg, trainer or TrainerConfig()
        self.classes_ = list(classes or [])
        self.feature_names_ = list(feature_names or [])
        self.task = task or "classification"
        self.target_: tuple[float, float] | None = None  # regression: (center, scale) of the label
        self.net_: Any = None  # the torch network, in the process that trained it
        self.engine_: MLPInference | None = None  # the NumPy forward pass of a loaded model
        self.report_ = FitReport()

    def architecture(self) -> dict[str, Any]:
        """What model.json records; a regression network has one output (``n_classes`` 1)."""
        regression = self.task == "regression"
        arch = {
            "family": FAMILY, "format": "safetensors",
            "n_features": len(self.feature_names_), "n_classes": 1 if regression else len(self.classes_),
            "hidden_sizes": list(self.cfg.hidden_sizes), "activation": self.cfg.activation.value,
            "dropout": self.cfg.dropout, "batch_norm": self.cfg.batch_norm,
            "classes": self.classes_, "feature_names": self.feature_names_, "task": self.task,
        }
        if regression and self.target_ is not None:
            arch["target"] = list(self.target_)
        return arch

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *,
            checkpoints: Path | None = None) -> TorchMLPClassifier:
        from gitml.models.torch_module import array_rows

        return self.fit_stream(*array_rows(X, y, X_val, y_val), checkpoints=checkpoints)

    def fit_stream(self, train: ArrayRows | FeatureFile, val: ArrayRows | FeatureFile | None = None, *,
                   checkpoints: Path | None = None) -> TorchMLPClassifier:
        """Fit on rows in memory or prepared feature files read a row group at a time (``trainer.stream``)."""
        from gitml.models.torch_module import fit_network, prepare_fit

        prepare_fit(self, train)
        arch = self.architecture()
        self.net_ = build_network(arch["n_features"], arch["n_classes"], arch["hidden_sizes"],
                                  arch["activation"], arch["dropout"], arch["batch_norm"])
        identity = {"architecture": arch, "optimizer": self.cfg.optimizer, "scheduler": self.cfg.scheduler}
        self.report_ = fit_network(self.net_, self.cfg, self.trainer, train, val, checkpoints, identity,
                                   arch["n_classes"], self.target_)
        self.net_.to("cpu").eval()
        return self

    def predict(self, X: Any) -> Any:
        """Each row's class index; for regression, its predicted number."""
        if self.target_ is None:
            return self.predict_proba(X).argmax(axis=1)
        if self.engine_ is not None:
            return self.engine_.forward(X)[:, 0].astype("float64") * self.target_[1] + self.target_[0]
        from gitml.models.torch_module import torch_values

        return torch_values(self.net_, X, self.target_)

    def predict_proba(self, X: Any) -> Any:
        if self.target_ is not None:
            raise GitmlError("A regression model has no class probabilities: use predict.")
        if self.engine_ is not None:
            return self.engine_.predict_proba(X)
        if self.net_ is None:
            raise RuntimeError("TorchMLPClassifier is not fitted")
        from gitml.models.torch_module import torch_proba

        return torch_proba(self.net_, X)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.net_.state_dict().items()}
        save_file(state, str(path / WEIGHTS), metadata={"family": FAMILY})
        (path / MODEL_INFO).write_text(json.dumps(self.architecture(), indent=2) + "\n", encoding="utf-8")


def build(model_cfg: TorchMLPConfig, trainer_cfg: TrainerConfig, classes: list[Any] | None = None,
          feature_names: list[str] | None = None, task: str = "") -> TorchMLPClassifier:
    return TorchMLPClassifier(model_cfg, trainer_cfg, classes, feature_names, task)


def load_files(files: dict[str, bytes], where: Path, trusted_types: Iterable[str] = ()) -> TorchMLPClassifier:
    """The model, for inference, from the bytes of ``model.json`` and ``model.safetensors``.

    The weights are checked against the architecture as ``load_state_dict(strict=True)``
    would, and run by :class:`MLPInference` without importing torch. ``trusted_types`` is
    for the skops family; safetensors holds tensors only.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_tensors

    from gitml.config.schema import Activation
    from gitml.models.torch_module import read_target

    arch = parse_info(files, where)
    if arch.get("format") != "safetensors":
        raise ModelLoadError(str(where), f"format {arch.get('format')!r} is not safetensors")
    if WEIGHTS not in files:
        raise ModelLoadError(str(where), f"{WEIGHTS} is missing")
    try:
        cfg = TorchMLPConfig(hidden_sizes=[int(n) for n in arch["hidden_sizes"]],
                             activation=Activation(arch["activation"]), dropout=float(arch["dropout"]),
                             batch_norm=bool(arch["batch_norm"]))
        shapes = expected_shapes(arch)
        task, target = read_target(arch)
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelLoadError(str(where / MODEL_INFO), f"not a valid architecture ({type(exc).__name__}: {exc})") from exc
    try:
        state = load_tensors(files[WEIGHTS])
    except (SafetensorError, ValueError, OSError) as exc:
        raise ModelLoadError(str(where / WEIGHTS), f"not a valid safetensors file ({exc})") from exc
    mismatch = _state_mismatch(state, shapes)
    if mismatch:
        raise ModelLoadError(str(where), f"weights do not match the architecture in {MODEL_INFO} ({mismatch})")
    model = TorchMLPClassifier(cfg, classes=arch["classes"], feature_names=arch["feature_names"], task=task)
    model.engine_, model.target_ = MLPInference(arch, state), target
    return model


def _state_mismatch(state: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> str:
    """What differs between the saved tensors and the ones the architecture needs ('' if none)."""
    problems = []
    if missing := sorted(set(shapes) - set(state)):
        problems.append(f"missing: {', '.join(missing)}")
    if unexpected := sorted(set(state) - set(shapes)):
        problems.append(f"unexpected: {', '.join(unexpected)}")
    problems += [f"{name} has shape {tuple(state[name].shape)}, expected {shape}"
                 for name, shape in shapes.items() if name in state and tuple(state[name].shape) != shape]
    return "; ".join(problems)


def load(path: Path, trusted_types: Iterable[str] = ()) -> TorchMLPClassifier:
    from gitml.models import read_files

    return load_files(read_files(path, (MODEL_INFO, WEIGHTS)), path)
