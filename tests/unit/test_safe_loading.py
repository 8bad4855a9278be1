"""No pickle: planted pickle payloads, untrusted types and tampered weights are refused unrun."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from gitml.config.schema import SklearnConfig, TorchMLPConfig, TorchModuleConfig, TrainerConfig
from gitml.errors import ModelLoadError, UnsafeTargetError
from gitml.models import build_model, load_model


class Payload:
    """Unpickling this runs a command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def xy():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4)).astype("float32")
    return X, (X[:, 0] > 0).astype("int64")


@pytest.fixture
def sklearn_model(xy, tmp_path) -> Path:
    model = build_model(SklearnConfig(estimator={"_target_": "sklearn.linear_model.LogisticRegression"}),
                        TrainerConfig(), classes=[0, 1])
    model.fit(*xy).save(tmp_path / "sk")
    return tmp_path / "sk"


@pytest.fixture(params=["torch_mlp", "torch_module"])
def torch_model(xy, tmp_path, request) -> Path:
    cfg: TorchMLPConfig | TorchModuleConfig = TorchMLPConfig(hidden_sizes=[8])
    if request.param == "torch_module":
        cfg = TorchModuleConfig(module={"_target_": "gitml.models.examples.ResidualMLP", "width": 8, "blocks": 1})
    model = build_model(cfg, TrainerConfig(epochs=1, checkpoint=False), classes=[0, 1])
    model.fit(*xy).save(tmp_path / "torch")
    return tmp_path / "torch"


def test_pickle_planted_as_skops_file_is_refused_and_never_runs(sklearn_model, tmp_path):
    marker = tmp_path / "pwned"
    (sklearn_model / "model.skops").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelLoadError, match="not a skops file"):
        load_model(sklearn_model)
    assert not marker.exists()


def test_pickle_planted_as_safetensors_is_refused_and_never_runs(torch_model, tmp_path):
    marker = tmp_path / "pwned"
    (torch_model / "model.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelLoadError, match="not a valid safetensors file"):
        load_model(torch_model)
    assert not marker.exists()


def test_skops_file_with_an_untrusted_type_is_refused(sklearn_model, xy):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    # A transformer wrapping an arbitrary function: skops lists the function as untrusted.
    sio.dump(FunctionTransformer(func=os.getcwd), sklearn_model / "model.skops")
    with pytest.raises(ModelLoadError, match="outside gitml's trusted set"):
        load_model(sklearn_model)


def test_weights_that_do_not_match_the_architecture_are_refused(torch_model):
    info = json.loads((torch_model / "model.json").read_text())
    if info["family"] == "torch_module":
        info["module"]["width"] = 16
    else:
        info["hidden_sizes"] = [16]
    (torch_model / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelLoadError, match=r"do not match the (architecture|module)"):
        load_model(torch_model)


def test_folder_without_model_info_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="not a gitml model folder"):
        load_model(tmp_path)


def test_unsafe_target_in_config_is_refused_before_import(xy, tmp_path):
    marker = tmp_path / "pwned"
    cfg = SklearnConfig(estimator={"_target_": "os.system", "_args_": [f"touch {marker}"]})
    with pytest.raises(UnsafeTargetError, match=r"'os.system' from 'model.estimator'"):
        build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(*xy)
    assert not marker.exists()
