"""Bring your own model: Pipelines and torch modules by exact `_target_`, the repository's own
classes, save/load round trips, and class weights for both families."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from gitml.config.schema import ClassWeight, SklearnConfig, TorchModuleConfig, TrainerConfig
from gitml.errors import GitmlError, ModelLoadError, UnsafeTargetError
from gitml.models import TRUSTED_ENV, build_model, config_trusted_types, load_model
from gitml.models.sklearn import TRUSTED_TYPES
from gitml.models.torch_module import balanced_class_weights
from gitml.utils.targets import ALLOWED_TARGETS, SKLEARN_TRANSFORMERS
from tests.repo_classes import CLIPPER

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = {"_target_": "sklearn.pipeline.Pipeline", "steps": [
    ["scale", {"_target_": "sklearn.preprocessing.StandardScaler"}],
    ["pca", {"_target_": "sklearn.decomposition.PCA", "n_components": 3}],
    ["classify", {"_target_": "sklearn.linear_model.LogisticRegression"}],
]}
RESIDUAL = {"_target_": "gitml.models.examples.ResidualMLP", "width": 16, "blocks": 1, "dropout": 0.0}


@pytest.fixture
def xy():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5)).astype("float32")
    return X, (X[:, 0] + X[:, 1] > 0).astype("int64")


@pytest.fixture
def repo_module(tmp_path, monkeypatch):
    """Write ``models_ext/<unique>.py`` into a fresh working directory: a class the repository defines."""
    monkeypatch.chdir(tmp_path)
    package = tmp_path / "models_ext"
    package.mkdir()
    (package / "__init__.py").write_text("")

    def write(source: str) -> str:
        name = f"m{uuid.uuid4().hex[:8]}"
        (package / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        sys.modules.pop("models_ext", None)
        return f"models_ext.{name}"

    yield write
    sys.modules.pop("models_ext", None)
    for folder in (str(tmp_path), str(tmp_path / "src")):
        if folder in sys.path:
            sys.path.remove(folder)


# ------------------------------------------------------------------ sklearn pipelines


def test_a_pipeline_fits_saves_and_loads_with_gitml_trust_alone(xy, tmp_path):
    X, y = xy
    model = build_model(SklearnConfig(estimator=PIPELINE), TrainerConfig(), classes=[0, 1]).fit(X, y)
    assert type(model.estimator_.steps).__name__ == "list"  # plain lists, no omegaconf container in the file
    model.save(tmp_path / "m")
    info = json.loads((tmp_path / "m/model.json").read_text())
    assert info["estimator"] == "Pipeline(StandardScaler, PCA, LogisticRegression)"
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("target", ["sklearn.preprocessing.FunctionTransformer", "os.system"])
def test_every_step_of_a_pipeline_is_checked_by_exact_name_before_import(target, xy):
    steps = [["bad", {"_target_": target}], *PIPELINE["steps"][-1:]]
    cfg = SklearnConfig(estimator={**PIPELINE, "steps": steps})
    with pytest.raises(UnsafeTargetError, match=rf"'{target}' from 'model.estimator.steps.0.1'"):
        build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(*xy)


def test_pipeline_transformers_in_the_registry_write_no_untrusted_type():
    """A Pipeline of registered steps needs no model.trusted_types: its file holds gitml-trusted types only."""
    import skops.io as sio

    X = np.random.default_rng(0).normal(size=(120, 4))
    found = set()
    for target in SKLEARN_TRANSFORMERS:
        module, _, name = target.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        step = cls(n_components=20) if name == "Nystroem" else cls(n_quantiles=100) if name == "QuantileTransformer" else cls()
        found |= set(sio.get_untrusted_types(data=sio.dumps(step.fit(X))))
    assert found <= TRUSTED_TYPES
    assert set(SKLEARN_TRANSFORMERS) | {"sklearn.pipeline.Pipeline"} <= ALLOWED_TARGETS


def test_a_repository_class_needs_its_exact_name_to_build_to_save_and_to_load(xy, tmp_path, repo_module, monkeypatch):
    X, y = xy
    name = repo_module(CLIPPER) + ".Clipper"
    estimator = {**PIPELINE, "steps": [["clip", {"_target_": name, "limit": 1.5}], *PIPELINE["steps"]]}
    with pytest.raises(UnsafeTargetError, match=name):
        build_model(SklearnConfig(estimator=estimator), TrainerConfig(), classes=[0, 1]).fit(X, y)
    assert "models_ext" not in sys.modules  # refused on the string: nothing imported

    cfg = SklearnConfig(estimator=estimator, allowed_targets=[name])
    with pytest.raises(ModelLoadError, match=rf"outside gitml's trusted set \['{name}'\]"):
        build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(X, y).save(tmp_path / "a")
    cfg = SklearnConfig(estimator=estimator, allowed_targets=[name], trusted_types=[name])
    model = build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(X, y)
    model.save(tmp_path / "b")
    with pytest.raises(ModelLoadError, match=name):
        load_model(tmp_path / "b")
    expected = model.predict_proba(X)
    np.testing.assert_allclose(load_model(tmp_path / "b", config_trusted_types(cfg)).predict_proba(X), expected)
    monkeypatch.setenv(TRUSTED_ENV, name)  # serve and predict read no config: the operator names it
    np.testing.assert_allclose(load_model(tmp_path / "b").predict_proba(X), expected)


def test_operator_trust_takes_exact_names_only(monkeypatch):
    from gitml.models import operator_trusted_types

    monkeypatch.setenv(TRUSTED_ENV, "models_ext.a.B, pkg.C")
    assert operator_trusted_types() == ("models_ext.a.B", "pkg.C")
    monkeypatch.setenv(TRUSTED_ENV, "models_ext.*")
    with pytest.raises(GitmlError, match=rf"{TRUSTED_ENV} must list exact dotted names"):
        operator_trusted_types()


# ---------------------------------------------------------------------- torch modules


def torch_module_model(xy, module=RESIDUAL, **kwargs):
    cfg = TorchModuleConfig(module=module, **kwargs)
    trainer = TrainerConfig(epochs=4, batch_size=64, checkpoint=False)
    return build_model(cfg, trainer, classes=[0, 1], feature_names=[f"x{i}" for i in range(5)]).fit(*xy)


def test_a_torch_module_learns_saves_and_loads_strictly(xy, tmp_path):
    X, y = xy
    model = torch_module_model(xy)
    assert (model.predict(X) == y).mean() > 0.8
    model.save(tmp_path / "m")
    info = json.loads((tmp_path / "m/model.json").read_text())
    assert info["module"] == RESIDUAL and info["n_features"] == 5 and info["n_classes"] == 2
    again = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-6)

    info["module"]["width"] = 8  # the weights no longer fit the module model.json describes
    (tmp_path / "m/model.json").write_text(json.dumps(info))
    with pytest.raises(ModelLoadError, match=r"weights do not match the module in model.json \(.*size mismatch"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("target", ["os.system", "torch.nn.Linear", "gitml.api.train"])
def test_a_saved_module_naming_an_unlisted_class_is_refused_before_import(xy, tmp_path, target):
    torch_module_model(xy).save(tmp_path / "m")
    info = json.loads((tmp_path / "m/model.json").read_text())
    info["module"] = {"_target_": target}
    (tmp_path / "m/model.json").write_text(json.dumps(info))
    with pytest.raises(ModelLoadError, match=rf"names '{target}'.*'model.allowed_targets'"):
        load_model(tmp_path / "m")


def test_a_repository_module_trains_by_allowed_target_and_loads_by_the_loaders_list(xy, tmp_path, repo_module):
    X, _ = xy
    name = repo_module("""
        from torch import nn

        class Tiny(nn.Module):
            def __init__(self, n_features, n_classes, hidden=8):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
            def forward(self, x):
                return self.net(x)
    """) + ".Tiny"
    module = {"_target_": name, "hidden": 12}
    with pytest.raises(UnsafeTargetError, match=rf"'{name}' from 'model.module'"):
        torch_module_model(xy, module)
    model = torch_module_model(xy, module, allowed_targets=[name])
    model.save(tmp_path / "m")
    with pytest.raises(ModelLoadError, match=name):
        load_model(tmp_path / "m")
    cfg = TorchModuleConfig(module=module, allowed_targets=[name])
    again = load_model(tmp_path / "m", config_trusted_types(cfg))
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_a_module_target_that_is_not_a_torch_module_is_refused(xy):
    name = "sklearn.linear_model.LogisticRegression"
    with pytest.raises(GitmlError, match=rf"'model.module._target_' '{name}' is not a torch.nn.Module"):
        torch_module_model(xy, {"_target_": name}, allowed_targets=[name])


def test_module_values_model_json_cannot_record_are_refused_at_save(xy, tmp_path):
    model = torch_module_model(xy)
    model.cfg.module = {**RESIDUAL, "dropout": float("nan")}
    with pytest.raises(GitmlError, match=r"'model.module' holds a value model\.json cannot record"):
        model.save(tmp_path / "m")


# ------------------------------------------------------------------------ config rules


@pytest.mark.parametrize(("overrides", "key"), [
    (["model=torch_custom", "+model.module.n_features=3"], "model.module.n_features"),
    (["model=torch_custom", "model.optimizer.lr=0"], "model.optimizer.lr"),
    (["model=logreg", "+model.estimator.class_weight=balanced", "model.class_weight=balanced"], "model.class_weight"),
])
def test_model_rules_name_the_key(overrides, key):
    from gitml.config.compose import compose
    from gitml.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"'{key}'"):
        compose(ROOT / "conf", overrides)


# ------------------------------------------------------------------------ class weights


@pytest.fixture
def imbalanced():
    """One row in ten is class 1, and the classes overlap: unweighted models under-call it."""
    rng = np.random.default_rng(7)
    y = (rng.random(2000) < 0.1).astype("int64")
    X = (rng.normal(size=(2000, 5)) + 0.9 * y[:, None]).astype("float32")
    return X[:1500], y[:1500], X[1500:], y[1500:]


def minority_recall(model, X, y) -> float:
    return float((model.predict(X)[y == 1] == 1).mean())


def test_balanced_weights_follow_scikit_learn():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0] * 90 + [1] * 10)
    np.testing.assert_allclose(balanced_class_weights(y, 2), compute_class_weight("balanced", classes=np.array([0, 1]), y=y))
    assert balanced_class_weights(np.array([0, 0]), 2) == [0.5, 1.0]  # an absent class stays finite


@pytest.mark.parametrize("family", ["sklearn_pipeline", "torch_module"])
def test_balanced_class_weights_raise_minority_recall(family, imbalanced):
    X, y, X_test, y_test = imbalanced
    recalls = []
    for weight in (None, ClassWeight.balanced):
        if family == "torch_module":
            cfg = TorchModuleConfig(module=RESIDUAL, class_weight=weight)
            trainer = TrainerConfig(epochs=6, batch_size=128, checkpoint=False)
        else:
            cfg, trainer = SklearnConfig(estimator=PIPELINE, class_weight=weight), TrainerConfig()
        model = build_model(cfg, trainer, classes=[0, 1]).fit(X, y, X_test, y_test)
        recalls.append(minority_recall(model, X_test, y_test))
    assert recalls[1] > recalls[0] + 0.2, recalls


def test_class_weight_is_refused_clearly_where_the_estimator_takes_none(xy):
    cfg = SklearnConfig(estimator={"_target_": "sklearn.naive_bayes.GaussianNB"}, class_weight=ClassWeight.balanced)
    with pytest.raises(GitmlError, match=r"'model.class_weight' is 'balanced', but GaussianNB takes no class_weight"):
        build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(*xy)
