"""A real tiny training of every model option in conf/model: it learns, and it round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gitml.config.compose import compose, to_plain
from gitml.config.params import validate_config
from gitml.config.schema import SyntheticConfig
from gitml.data.contract import infer_contract
from gitml.data.preprocess import Preprocessor
from gitml.data.sources import generate_synthetic
from gitml.errors import GitmlError
from gitml.models import build_model, load_model
from tests.projects import TINY_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]
MODEL_OPTIONS = sorted(p.stem for p in (ROOT / "conf/model").glob("*.yaml"))
REGRESSORS = ("hgb_regressor", "ridge")  # scikit-learn regressors: regression only
CLASSIFIERS = [option for option in MODEL_OPTIONS if option not in REGRESSORS]
BOTH = ("mlp", "torch_custom")  # the torch families fit either task


@pytest.fixture(scope="module")
def dataset():
    frame = generate_synthetic(SyntheticConfig(n_rows=1500, n_numeric=6, n_categorical=1, seed=5), "target")
    contract = infer_contract(frame, "target")
    train, test = frame.iloc[:1000], frame.iloc[1000:]
    from gitml.config.schema import PreprocessConfig

    prep = Preprocessor.fit(train, contract, PreprocessConfig())
    return (prep, prep.transform(train), prep.encode_labels(train["target"]),
            prep.transform(test), prep.encode_labels(test["target"]))


@pytest.fixture(scope="module")
def quantities():
    """A regression set: a score of two numeric features, a category and noise, with nulls."""
    from gitml.config.schema import PreprocessConfig

    frame = generate_synthetic(SyntheticConfig(n_rows=1500, n_numeric=6, n_categorical=1, seed=6), "target")
    rng = np.random.default_rng(6)
    frame["target"] = (150 + 40 * frame["num_0"] - 25 * frame["num_1"] + 30 * (frame["cat_0"] == frame["cat_0"].iloc[0])
                       + rng.normal(0, 20, len(frame)))
    contract = infer_contract(frame, "target")
    assert contract.task == "regression"
    train, test = frame.iloc[:1000], frame.iloc[1000:]
    prep = Preprocessor.fit(train, contract, PreprocessConfig())
    return (prep, prep.transform(train), prep.encode_labels(train["target"]),
            prep.transform(test), prep.encode_labels(test["target"]))


def tiny_config(option: str):
    # More epochs than TINY_OVERRIDES: each option must learn, not only run.
    overrides = [f"model={option}", *TINY_OVERRIDES, "trainer.epochs=8", "trainer.early_stopping.patience=3"]
    cfg = validate_config(to_plain(compose(ROOT / "conf", overrides)), source="test")
    return cfg


@pytest.mark.parametrize("option", CLASSIFIERS)
def test_each_model_option_learns_and_round_trips(option, dataset, tmp_path):
    prep, X, y, X_test, y_test = dataset
    cfg = tiny_config(option)
    model = build_model(cfg.model, cfg.trainer, classes=prep.classes, feature_names=prep.feature_names())
    assert model.fit(X[:800], y[:800], X[800:], y[800:]) is model
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = (proba.argmax(1) == y_test).mean()
    majority = max(y_test.mean(), 1 - y_test.mean())
    assert accuracy > majority + 0.1, f"{option}: {accuracy:.3f} vs dummy {majority:.3f}"

    model.save(tmp_path / "model")
    again = load_model(tmp_path / "model")
    np.testing.assert_allclose(again.predict_proba(X_test), proba, atol=1e-6)
    assert again.classes_ == model.classes_


@pytest.mark.parametrize("option", [*REGRESSORS, *BOTH])
def test_each_regression_option_beats_the_mean_and_round_trips(option, quantities, tmp_path):
    prep, X, y, X_test, y_test = quantities
    cfg = tiny_config(option)
    model = build_model(cfg.model, cfg.trainer, feature_names=prep.feature_names(), task="regression")
    assert model.fit(X[:800], y[:800], X[800:], y[800:]) is model
    predicted = model.predict(X_test)
    assert predicted.shape == (len(X_test),) and predicted.dtype == np.float64
    rmse, dummy = (float(np.sqrt(np.mean((p - y_test) ** 2))) for p in (predicted, y[:800].mean()))
    assert rmse < 0.7 * dummy, f"{option}: RMSE {rmse:.3g} vs the training mean's {dummy:.3g}"
    with pytest.raises(GitmlError, match="no class probabilities"):
        model.predict_proba(X_test)

    model.save(tmp_path / "model")
    again = load_model(tmp_path / "model")
    assert again.task == "regression" and again.classes_ == []
    np.testing.assert_allclose(again.predict(X_test), predicted, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("option", "found"), [("hgb", "is not a regressor"), ("ridge", "is not a classifier")])
def test_a_scikit_learn_model_of_the_other_task_is_refused_naming_the_key(option, found, dataset, quantities):
    prep, X, y, *_ = quantities if option == "hgb" else dataset
    cfg = tiny_config(option)
    model = build_model(cfg.model, cfg.trainer, classes=prep.classes, feature_names=prep.feature_names(), task=prep.task)
    with pytest.raises(GitmlError, match=f"'model.estimator._target_' .*{found}"):
        model.fit(X, y)


def test_torch_training_loss_falls(dataset):
    prep, X, y, *_ = dataset
    cfg = tiny_config("mlp")
    model = build_model(cfg.model, cfg.trainer, classes=prep.classes).fit(X[:800], y[:800], X[800:], y[800:])
    losses = [row["train_loss"] for row in model.report_.history]
    assert losses[-1] < losses[0] * 0.8


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_a_loaded_mlp_answers_as_the_torch_network_it_was_saved_from(activation, batch_norm, tmp_path):
    """Loading runs the forward pass in NumPy (no torch import): same probabilities as torch's."""
    import torch

    from gitml.config.schema import Activation, TorchMLPConfig
    from gitml.models.torch_mlp import TorchMLPClassifier, build_network

    torch.manual_seed(0)
    net = build_network(5, 3, [16, 8], activation, dropout=0.2, batch_norm=batch_norm)
    for layer in net:  # running statistics far from the (0, 1) defaults, so eval-mode BN matters
        if isinstance(layer, torch.nn.BatchNorm1d):
            layer.running_mean.uniform_(-2, 2)
            layer.running_var.uniform_(0.5, 3)
    cfg = TorchMLPConfig(hidden_sizes=[16, 8], activation=Activation(activation), dropout=0.2, batch_norm=batch_norm)
    model = TorchMLPClassifier(cfg, classes=["a", "b", "c"], feature_names=[f"x{i}" for i in range(5)])
    model.net_ = net.eval()
    X = np.random.default_rng(1).normal(scale=3, size=(300, 5)).astype("float32")
    model.save(tmp_path / "model")

    loaded = load_model(tmp_path / "model")
    assert loaded.net_ is None  # nothing of torch in the loaded model
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=2e-6)
    assert (loaded.predict(X) == model.predict(X)).all()


@pytest.mark.parametrize("option", ["ridge", "mlp"])
def test_class_weight_on_a_regression_is_refused_naming_the_key(option, quantities):
    prep, X, y, *_ = quantities
    cfg = tiny_config(option)
    cfg.model.class_weight = "balanced"
    model = build_model(cfg.model, cfg.trainer, feature_names=prep.feature_names(), task="regression")
    with pytest.raises(GitmlError, match=r"'model.class_weight' is set, but the task is regression"):
        model.fit(X[:100], y[:100])
