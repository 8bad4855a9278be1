"""The PyTorch trainer: device choice, determinism, early stopping, checkpoints and resume."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

from gitml.config.schema import EarlyStoppingConfig, Monitor, TrainerConfig
from gitml.errors import DeviceError
from gitml.models.torch_mlp import build_network
from gitml.train.device import resolve_device
from gitml.train.loop import Trainer


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5)).astype("float32")
    y = (X[:, 0] - X[:, 1] > 0).astype("int64")
    return X[:500], y[:500], X[500:], y[500:]


def fit(cfg: TrainerConfig, data, checkpoint_dir=None, identity=None, class_weight=None):
    torch.manual_seed(cfg.seed)
    net = build_network(5, 2, [16], "relu", 0.1, True)
    result = Trainer(cfg, checkpoint_dir, progress=False).fit(
        net, *data, optimizer_factory=partial(torch.optim.Adam, lr=0.01), identity=identity,
        class_weight=class_weight,
    )
    return net, result


def test_auto_is_cpu_here_and_missing_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("machine has CUDA")
    assert resolve_device("auto").type == "cpu"
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DeviceError, match=r"'trainer.device' is 'cuda:1'.*not available"):
        resolve_device("cuda:1")


def test_same_seed_gives_identical_weights_and_history(data):
    cfg = TrainerConfig(epochs=4, batch_size=32, seed=3)
    net_a, res_a = fit(cfg, data)
    net_b, res_b = fit(cfg, data)
    for (_, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items(), strict=True):
        assert torch.equal(a, b)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in res_a.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in res_b.history]


def test_early_stopping_stops_and_restores_best_weights(data):
    stopping = EarlyStoppingConfig(enabled=True, monitor=Monitor.val_accuracy, patience=2, min_delta=0.5)
    cfg = TrainerConfig(epochs=30, batch_size=64, early_stopping=stopping)
    _, result = fit(cfg, data)
    # min_delta 0.5 makes every epoch after the first "no improvement": stop after 1 + patience.
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_checkpoint_each_epoch_and_resume_continues_where_it_stopped(data, tmp_path):
    cfg = TrainerConfig(epochs=6, batch_size=32, early_stopping=EarlyStoppingConfig(enabled=False))
    _, full = fit(cfg, data)

    ckpt = tmp_path / "ckpt"
    fit(replace(cfg, epochs=6), data, checkpoint_dir=ckpt, identity="run")
    # Simulate an interruption after epoch 3: train 3 epochs as a 6-epoch run would.
    ckpt2 = tmp_path / "ckpt2"
    partial_cfg = replace(cfg, epochs=3)
    fit(partial_cfg, data, checkpoint_dir=ckpt2, identity="run")
    meta = json.loads((ckpt2 / "state.json").read_text())
    assert meta["train"]["epoch"] == 3
    meta["train"]["complete"] = False  # as if killed before finishing
    (ckpt2 / "state.json").write_text(json.dumps(meta))

    _, resumed = fit(cfg, data, checkpoint_dir=ckpt2, identity="run")
    assert resumed.resumed_from == 3
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    # the resumed run reaches the same losses as the uninterrupted one
    np.testing.assert_allclose([r["train_loss"] for r in resumed.history],
                               [r["train_loss"] for r in full.history], rtol=1e-5)


def test_checkpoint_from_other_settings_is_not_resumed(data, tmp_path):
    cfg = TrainerConfig(epochs=2, batch_size=64, early_stopping=EarlyStoppingConfig(enabled=False))
    fit(cfg, data, checkpoint_dir=tmp_path / "c", identity="a")
    meta = json.loads((tmp_path / "c/state.json").read_text())
    meta["train"]["complete"] = False
    (tmp_path / "c/state.json").write_text(json.dumps(meta))
    _, result = fit(cfg, data, checkpoint_dir=tmp_path / "c", identity="b")
    assert result.resumed_from == 0


def test_class_weights_weigh_both_losses_and_make_another_run(data, tmp_path):
    """Equal weights are the plain loss (a weighted mean); others change it, and never resume an unweighted run."""
    cfg = TrainerConfig(epochs=2, batch_size=64, early_stopping=EarlyStoppingConfig(enabled=False))
    strip = lambda result: [{k: v for k, v in r.items() if k != "seconds"} for r in result.history]  # noqa: E731
    _, plain = fit(cfg, data, checkpoint_dir=tmp_path / "c", identity="a")
    _, equal = fit(cfg, data, class_weight=[1.0, 1.0])
    for got, want in zip(strip(equal), strip(plain), strict=True):
        assert got == pytest.approx(want, rel=1e-5)
    _, skewed = fit(cfg, data, class_weight=[1.0, 5.0])
    assert skewed.history[0]["val_loss"] != pytest.approx(plain.history[0]["val_loss"], rel=1e-3)

    meta = json.loads((tmp_path / "c/state.json").read_text())
    meta["train"]["complete"] = False
    (tmp_path / "c/state.json").write_text(json.dumps(meta))
    _, weighted = fit(cfg, data, checkpoint_dir=tmp_path / "c", identity="a", class_weight=[1.0, 5.0])
    assert weighted.resumed_from == 0
