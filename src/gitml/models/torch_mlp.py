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
from gitml.errors import ModelLoadError
from gitml.models import MODEL_INFO, FitReport, parse_info
from gitml.utils.targets import instantiate

log = logging.getLogger(__name__)
FAMILY = "torch_mlp"
WEIGHTS = "model.safetensors"
ACTIVATIONS = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "tanh": "Tanh"}


def build_network(n_features: int, n_classes: int, hidden_sizes: list[int], activation: str,
                  dropout: float, batch_norm: bool) -> Any:
    from torch import nn

    layers: list[Any] = []
    width = n_features
    for size in hidden_sizes:
        layers.append(nn.Linear(width, size))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(getattr(nn, ACTIVATIONS[activation])())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class TorchMLPClassifier:
    """MLP classifier with the scikit-learn shape: ``fit`` returns self, state ends in ``_``."""

    family = FAMILY

    def __init__(self, cfg: TorchMLPConfig, trainer: TrainerConfig | None = None,
                 classes: list[Any] | None = None, feature_names: list[str] | None = None):
        self.cfg, self.trainer = cfg, trainer or TrainerConfig()
        self.classes_ = list(classes or [])
        self.feature_names_ = list(feature_names or [])
        self.net_: Any = None
        self.report_ = FitReport()

    def architecture(self) -> dict[str, Any]:
        return {
            "family": FAMILY, "format": "safetensors",
            "n_features": len(self.feature_names_), "n_classes": len(self.classes_),
            "hidden_sizes": list(self.cfg.hidden_sizes), "activation": self.cfg.activation.value,
            "dropout": self.cfg.dropout, "batch_norm": self.cfg.batch_norm,
            "classes": self.classes_, "feature_names": self.feature_names_,
        }

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *,
            checkpoints: Path | None = None) -> TorchMLPClassifier:
        from gitml.train.device import seed_everything
        from gitml.train.loop import Trainer

        if not self.feature_names_:
            self.feature_names_ = [f"x{i}" for i in range(X.shape[1])]
        if not self.classes_:
            self.classes_ = sorted({int(v) for v in y})
        seed_everything(self.trainer.seed, self.trainer.deterministic)  # same initial weights every run
        arch = self.architecture()
        self.net_ = build_network(arch["n_features"], arch["n_classes"], arch["hidden_sizes"],
                                  arch["activation"], arch["dropout"], arch["batch_norm"])
        extra = self.cfg.allowed_targets
        optimizer = instantiate(dict(self.cfg.optimizer), "model.optimizer", extra=extra) if self.cfg.optimizer else None
        scheduler = instantiate(dict(self.cfg.scheduler), "model.scheduler", extra=extra) if self.cfg.scheduler else None
        identity = {"architecture": arch, "optimizer": self.cfg.optimizer, "scheduler": self.cfg.scheduler}
        self.report_ = Trainer(self.trainer, checkpoints).fit(self.net_, X, y, X_val, y_val, optimizer, scheduler,
                                                              identity=identity)
        self.net_.to("cpu").eval()
        return self

    def predict(self, X: Any) -> Any:
        return self.predict_proba(X).argmax(axis=1)

    def predict_proba(self, X: Any) -> Any:
        import numpy as np
        import torch

        if self.net_ is None:
            raise RuntimeError("TorchMLPClassifier is not fitted")
        with torch.inference_mode():
            logits = self.net_(torch.as_tensor(np.asarray(X, dtype="float32")))
            return torch.softmax(logits, dim=1).numpy()

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.net_.state_dict().items()}
        save_file(state, str(path / WEIGHTS), metadata={"family": FAMILY})
        (path / MODEL_INFO).write_text(json.dumps(self.architecture(), indent=2) + "\n", encoding="utf-8")


def build(model_cfg: TorchMLPConfig, trainer_cfg: TrainerConfig, classes: list[Any] | None = None,
          feature_names: list[str] | None = None) -> TorchMLPClassifier:
    return TorchMLPClassifier(model_cfg, trainer_cfg, classes, feature_names)


def load_files(files: dict[str, bytes], where: Path, trusted_types: Iterable[str] = ()) -> TorchMLPClassifier:
    """Build the model from the bytes of ``model.json`` and ``model.safetensors`` (already read once).

    ``trusted_types`` is for the skops family; safetensors holds tensors only.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    from gitml.config.schema import Activation

    arch = parse_info(files, where)
    if arch.get("format") != "safetensors":
        raise ModelLoadError(str(where), f"format {arch.get('format')!r} is not safetensors")
    if WEIGHTS not in files:
        raise ModelLoadError(str(where), f"{WEIGHTS} is missing")
    try:
        net = build_network(int(arch["n_features"]), int(arch["n_classes"]), list(arch["hidden_sizes"]),
                            str(arch["activation"]), float(arch["dropout"]), bool(arch["batch_norm"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelLoadError(str(where / MODEL_INFO), f"not a valid architecture ({type(exc).__name__}: {exc})") from exc
    try:
        state = load_tensors(files[WEIGHTS])
    except (SafetensorError, ValueError, OSError) as exc:
        raise ModelLoadError(str(where / WEIGHTS), f"not a valid safetensors file ({exc})") from exc
    try:
        net.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(str(where), f"weights do not match the architecture in {MODEL_INFO} ({exc})") from exc
    cfg = TorchMLPConfig(hidden_sizes=arch["hidden_sizes"], activation=Activation(arch["activation"]),
                         dropout=arch["dropout"], batch_norm=arch["batch_norm"])
    model = TorchMLPClassifier(cfg, classes=arch["classes"], feature_names=arch["feature_names"])
    model.net_ = net.eval()
    return model


def load(path: Path, trusted_types: Iterable[str] = ()) -> TorchMLPClassifier:
    from gitml.models import read_files

    return load_files(read_files(path, (MODEL_INFO, WEIGHTS)), path)
