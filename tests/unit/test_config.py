"""Config: compose conf/ into params.yaml, the typed schema, errors naming key and file."""

from __future__ import annotations

import copy
import itertools
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitml.config.compose import check_params, compose, to_plain, write_params
from gitml.config.params import load_params
from gitml.config.schema import Config, SourceKind, TorchMLPConfig
from gitml.errors import ConfigError, ParamsOutOfSync

ROOT = Path(__file__).resolve().parents[2]
GROUP_OPTIONS = sorted(
    (path.parent.name, path.stem) for path in (ROOT / "conf").glob("*/*.yaml")
)


def test_default_config_composes_to_typed_objects(conf_dir, tmp_path):
    params = tmp_path / "params.yaml"
    write_params(compose(conf_dir), params)
    cfg = load_params(params)
    assert isinstance(cfg, Config)
    assert cfg.data.source.kind is SourceKind.sklearn
    assert isinstance(cfg.model, TorchMLPConfig)
    # interpolation resolved: the scheduler follows the epoch count
    assert cfg.model.scheduler["T_max"] == cfg.trainer.epochs


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_option_in_conf_composes_and_validates(conf_dir, tmp_path, group, option):
    cfg = compose(conf_dir, [f"{group}={option}"])
    params = tmp_path / "params.yaml"
    write_params(cfg, params)
    typed = load_params(params)
    assert getattr(typed, group) is not None


def test_each_group_has_at_least_two_options():
    groups = {group for group, _ in GROUP_OPTIONS}
    assert {"data", "model", "trainer", "paths"} <= groups
    # paths is the project layout (lightning-hydra-template's paths/default.yaml): one option,
    # moved key by key with overrides (tests/unit/test_paths.py).
    for group in groups - {"paths"}:
        assert sum(1 for g, _ in GROUP_OPTIONS if g == group) >= 2, group


def test_wrong_type_in_override_names_the_key(conf_dir):
    with pytest.raises(ConfigError) as info:
        compose(conf_dir, ["trainer.epochs=abc"])
    assert info.value.key == "trainer.epochs"
    assert "trainer.epochs=abc" in info.value.file
    assert "Integer" in str(info.value)


def test_unknown_key_in_override_names_the_key(conf_dir):
    for override in ("trainer.epochz=3", "+trainer.epochz=3"):
        with pytest.raises(ConfigError) as info:
            compose(conf_dir, [override])
        assert info.value.key == "trainer.epochz"
        assert "not a known key" in str(info.value)


def test_unknown_group_option_lists_the_allowed_ones(conf_dir):
    with pytest.raises(ConfigError) as info:
        compose(conf_dir, ["model=xgboost"])
    message = str(info.value)
    assert "xgboost" in message and "logreg" in message and "random_forest" in message
    assert "base_" not in message  # schema entries are not options


def test_bad_value_in_a_conf_file_names_that_file(tmp_path, conf_dir):
    conf = tmp_path / "conf"
    shutil.copytree(conf_dir, conf)
    text = (conf / "trainer" / "cpu.yaml").read_text().replace("epochs: 20", "epochs: lots")
    (conf / "trainer" / "cpu.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        compose(conf, ["trainer=cpu"])
    assert info.value.file.endswith("trainer/cpu.yaml")
    assert info.value.key == "trainer.epochs"


def test_missing_required_value_is_named(tmp_path, conf_dir):
    conf = tmp_path / "conf"
    shutil.copytree(conf_dir, conf)
    (conf / "data" / "breast_cancer.yaml").write_text(
        (conf / "data" / "breast_cancer.yaml").read_text().replace("name: breast_cancer\ntarget", "target")
    )
    with pytest.raises(ConfigError) as info:
        compose(conf)
    assert info.value.key == "data.name"


def test_semantic_rules_name_the_key(conf_dir):
    with pytest.raises(ConfigError) as info:
        compose(conf_dir, ["trainer.device=tpu"])
    assert info.value.key == "trainer.device"
    with pytest.raises(ConfigError) as info:
        compose(conf_dir, ["data=csv", "data.source.path=null"])
    assert info.value.key == "data.source.path"


def test_load_params_rejects_unknown_key_and_wrong_type_naming_file(conf_dir, tmp_path):
    params = tmp_path / "params.yaml"
    data = to_plain(compose(conf_dir))
    data["trainer"]["epochz"] = 3
    params.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_params(params)
    assert info.value.key == "trainer.epochz" and info.value.file == str(params)

    data = to_plain(compose(conf_dir))
    data["trainer"]["batch_size"] = "big"
    params.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_params(params)
    assert info.value.key == "trainer.batch_size"


def test_check_params_passes_in_sync_and_fails_naming_the_fix(conf_dir, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(conf_dir, conf)
    params = tmp_path / "params.yaml"
    write_params(compose(conf), params)
    check_params(conf, params)

    text = (conf / "trainer" / "default.yaml").read_text().replace("epochs: 30", "epochs: 12")
    (conf / "trainer" / "default.yaml").write_text(text)
    with pytest.raises(ParamsOutOfSync) as info:
        check_params(conf, params)
    assert "trainer.epochs" in str(info.value)
    assert "gitml config compose" in str(info.value)


def test_committed_params_yaml_is_in_sync_with_conf():
    check_params(ROOT / "conf", ROOT / "params.yaml")


def test_check_recomposes_with_the_overrides_params_records(conf_dir, tmp_path):
    from gitml import api

    params = tmp_path / "params.yaml"
    api.compose_params(conf_dir, ["model=logreg", "trainer.epochs=3"], params)
    assert '# overrides: ["model=logreg", "trainer.epochs=3"]' in params.read_text()
    check_params(conf_dir, params)
    params.write_text(params.read_text().replace("epochs: 3", "epochs: 4"))
    with pytest.raises(ParamsOutOfSync) as info:
        check_params(conf_dir, params)
    assert "gitml config compose model=logreg trainer.epochs=3" in str(info.value)


# ------------------------------------------------------------- validation rules (config/rules.py)


# The default gate has no absolute thresholds; the rule tests break these three.
THRESHOLDS = ("gate.thresholds=[{metric: roc_auc, min: 0.9}, {metric: accuracy, min: 0.85}, "
              "{metric: accuracy, slice: '*', min: 0.75}]")


@pytest.fixture(scope="module")
def valid_cfg() -> Config:
    """The shipped default config with three threshold rules, typed; each rule test breaks a copy of it."""
    from gitml.config.params import validate_config

    return validate_config(to_plain(compose(ROOT / "conf", [THRESHOLDS])), source="conf/config.yaml")


def test_the_shipped_configs_break_no_rule():
    from gitml.config.params import validate_config
    from gitml.config.rules import config_problems

    for overrides in ([], ["gate=strict"], ["model=random_forest"]):
        cfg = validate_config(to_plain(compose(ROOT / "conf", overrides)), source="conf/config.yaml")
        assert config_problems(cfg) == [], overrides


def _set(cfg: Any, dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node = cfg
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part] if isinstance(node, dict) else getattr(node, part)
    if isinstance(node, list):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        setattr(node, last, value)


def problem_keys(cfg: Config, changes: dict[str, Any]) -> dict[str, str]:
    """The keys (and first problem of each) that ``config_problems`` names after ``changes``."""
    from gitml.config.rules import config_problems

    broken = copy.deepcopy(cfg)
    for dotted, value in changes.items():
        _set(broken, dotted, value)
    found: dict[str, str] = {}
    for key, problem in config_problems(broken):
        found.setdefault(key, problem)
    return found


def test_the_shipped_default_config_breaks_no_rule(valid_cfg):
    from gitml.config.rules import config_problems

    assert config_problems(valid_cfg) == []


def test_three_bad_overrides_are_all_named_through_the_cli(tmp_path, conf_dir, monkeypatch, capsys):
    from gitml.cli import main

    monkeypatch.setattr(sys, "argv", [
        "gitml", "config", "compose", "--conf-dir", str(conf_dir), "--params", str(tmp_path / "p.yaml"),
        "drift.p_val=1.5", "serve.port=-3", "gate.significance.alpha=7",
    ])
    with pytest.raises(SystemExit) as exited:
        main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 1
    assert "3 problems" in stderr and "Traceback" not in stderr
    for line in ("'drift.p_val': must be between 0 and 1 (exclusive), got 1.5.",
                 "'serve.port': must be a positive whole number, got -3.",
                 "'gate.significance.alpha': must be between 0 and 1 (exclusive), got 7.0."):
        assert line in stderr
    assert stderr.count("config.yaml") == 1  # the file is named once, not per problem
    assert not (tmp_path / "p.yaml").exists()


def test_every_problem_is_on_the_error_with_the_first_as_key_and_problem(conf_dir):
    from gitml import api

    with pytest.raises(ConfigError) as info:
        api.compose_params(conf_dir, ["drift.p_val=1.5", "serve.port=-3", "gate.significance.alpha=7"], None)
    keys = [key for key, _ in info.value.problems]
    assert sorted(keys) == ["drift.p_val", "gate.significance.alpha", "serve.port"]
    assert (info.value.key, info.value.problem) == info.value.problems[0]


def test_validate_config_names_the_overrides_next_to_the_file():
    from gitml.config.params import validate_config

    data = to_plain(compose(ROOT / "conf"))
    data["drift"]["p_val"] = 1.5
    overrides = ["drift.p_val=1.5", "model=logreg"]
    with pytest.raises(ConfigError) as info:
        validate_config(data, "conf/config.yaml", overrides)
    assert info.value.file == "conf/config.yaml with overrides drift.p_val=1.5 model=logreg"
    assert str(info.value).startswith(f"Invalid config in {info.value.file}: 'drift.p_val': ")


def test_config_error_lists_each_problem_on_its_own_line_and_keeps_one_problem_on_one_line():
    one = ConfigError("params.yaml", "trainer.epochs", "must be at least 1, got 0.", hint="Fix it.")
    assert str(one) == "Invalid config in params.yaml: 'trainer.epochs': must be at least 1, got 0. Fix it."
    assert one.problems == [("trainer.epochs", "must be at least 1, got 0.")]
    many = ConfigError.of("conf/config.yaml", [("a.b", "bad."), ("c", "worse.")])
    assert str(many) == "Invalid config in conf/config.yaml: 2 problems:\n  'a.b': bad.\n  'c': worse."
    assert (many.key, many.problem) == ("a.b", "bad.")


def test_every_missing_required_value_is_named():
    from gitml.config.params import validate_config

    data = to_plain(compose(ROOT / "conf"))
    data["data"]["name"] = "???"
    data["data"]["source"]["kind"] = "???"
    with pytest.raises(ConfigError) as info:
        validate_config(data, "params.yaml")
    assert [key for key, _ in info.value.problems] == ["data.name", "data.source.kind"]


@pytest.mark.parametrize(("changes", "key", "words"), [
    # data
    ({"data.source.name": "iris2"}, "data.source.name", "Allowed: breast_cancer, wine, iris, digits"),
    ({"data.schema.range_margin": -0.1}, "data.schema.range_margin", "at least 0"),
    ({"data.schema.max_categories": 0}, "data.schema.max_categories", "at least 1"),
    ({"data.slices.0.bins": [15.0, 12.0]}, "data.slices.0.bins", "increasing"),
    # model (torch_mlp)
    ({"model.dropout": 1.0}, "model.dropout", "below 1"),
    ({"model.hidden_sizes": [64, 0]}, "model.hidden_sizes.1", "at least 1"),
    ({"model.optimizer.lr": 0.0}, "model.optimizer.lr", "positive"),
    ({"model.optimizer.weight_decay": -1e-4}, "model.optimizer.weight_decay", "at least 0"),
    # trainer
    ({"trainer.early_stopping.patience": 0}, "trainer.early_stopping.patience", "at least 1"),
    ({"trainer.num_threads": 0}, "trainer.num_threads", "at least 1 (or null)"),
    ({"trainer.early_stopping.min_delta": -0.5}, "trainer.early_stopping.min_delta", "at least 0"),
    # gate
    ({"gate.champion_stage": "production"}, "gate.champion_stage", "Allowed: staging, prod <registry.stages>"),
    ({"gate.thresholds.0.metric": "auc"}, "gate.thresholds.0.metric", "unknown metric 'auc'"),
    ({"gate.thresholds.0.min": 1.5}, "gate.thresholds.0.min", "between 0 and 1 (the range of roc_auc)"),
    ({"gate.thresholds.0.max": 0.5}, "gate.thresholds.0.min", "no value can pass"),
    ({"gate.thresholds.0.min": None}, "gate.thresholds.0", "sets neither min nor max"),
    ({"gate.thresholds.1.split": "holdout"}, "gate.thresholds.1.split", "Allowed: train, val, test"),
    ({"gate.thresholds.2.slice": "radius"}, "gate.thresholds.2.slice", "Allowed: '*', mean_radius"),
    ({"gate.thresholds.2.metric": "per_class.1.recall"}, "gate.thresholds.2.metric", "for a slice"),
    ({"gate.champion.metric": "f2"}, "gate.champion.metric", "Allowed: auto, accuracy"),
    ({"gate.champion.metric": "log_loss", "gate.champion.higher_is_better": True},
     "gate.champion.higher_is_better", "lower-is-better"),
    ({"gate.champion.higher_is_better": False}, "gate.champion.higher_is_better", "set it to null or true"),
    ({"gate.champion.abs_tolerance": -0.01}, "gate.champion.abs_tolerance", "at least 0"),
    ({"gate.significance.alpha": 7.0}, "gate.significance.alpha", "between 0 and 1 (exclusive)"),
    ({"gate.significance.n_resamples": 39}, "gate.significance.n_resamples", "use at least 40 resamples"),
    ({"gate.budgets.max_bundle_mb": 0.0}, "gate.budgets.max_bundle_mb", "positive (or null)"),
    ({"gate.budgets.latency_samples": 0}, "gate.budgets.latency_samples", "at least 1"),
    ({"gate.budgets.max_latency_ratio": -1.0}, "gate.budgets.max_latency_ratio", "positive (or null)"),
    ({"gate.baseline.metric": "auc"}, "gate.baseline.metric", "Allowed: auto, accuracy"),
    ({"gate.baseline.min_skill": 1.5}, "gate.baseline.min_skill", "between 0 and 1"),
    # package
    ({"package.reference_split": "holdout"}, "package.reference_split", "Allowed: train, val, test"),
    ({"package.reference_rows": 0}, "package.reference_rows", "at least 1"),
    # registry
    ({"registry.model": "my#model"}, "registry.model", "not a registry name"),
    ({"registry.stages": ["staging", "prod", "prod"]}, "registry.stages", "twice"),
    ({"registry.stages": ["staging", "prod#1"]}, "registry.stages", "letters, digits"),
    # serve
    ({"serve.host": ""}, "serve.host", "must not be empty"),
    # drift
    ({"drift.top_features": -1}, "drift.top_features", "at least 0"),
    ({"drift.window_rows": 100}, "drift.window_rows", "at least drift.min_rows (200)"),
])
def test_each_rule_names_its_key(valid_cfg, changes, key, words):
    found = problem_keys(valid_cfg, changes)
    assert key in found, found
    assert words in found[key]


@pytest.mark.parametrize("changes", [
    {"gate.thresholds.0.metric": "per_class.1.recall"},  # per split, any class label
    {"gate.thresholds.0.metric": "log_loss", "gate.thresholds.0.min": None, "gate.thresholds.0.max": 0.3},
    {"gate.significance.n_resamples": 40},  # the smallest count that can reach p < 0.05
    {"gate.significance.n_resamples": 10, "gate.significance.enabled": False},
    {"model.hidden_sizes": []},  # no hidden layer: a linear model
    {"model.dropout": 0.0, "model.scheduler": None},
    {"drift.window_rows": None, "drift.window_hours": 24.0},
    {"gate.budgets.max_latency_p95_ms": None, "gate.budgets.max_bundle_mb": None},
])
def test_values_inside_the_rules_are_accepted(valid_cfg, changes):
    assert problem_keys(valid_cfg, changes) == {}


@pytest.mark.parametrize(("estimator", "key"), [
    ({"_target_": "sklearn.ensemble.RandomForestClassifier", "n_estimators": 0}, "model.estimator.n_estimators"),
    ({"_target_": "sklearn.linear_model.LogisticRegression", "C": -1.0}, "model.estimator.C"),
    ({"_target_": "sklearn.ensemble.HistGradientBoostingClassifier", "max_leaf_nodes": 1}, "model.estimator.max_leaf_nodes"),
    ({"_target_": "sklearn.ensemble.HistGradientBoostingClassifier", "learning_rate": 0}, "model.estimator.learning_rate"),
    ({"n_estimators": 10}, "model.estimator._target_"),
])
def test_sklearn_hyper_parameters_are_checked(valid_cfg, estimator, key):
    from gitml.config.schema import SklearnConfig

    assert key in problem_keys(valid_cfg, {"model": SklearnConfig(estimator=estimator)})


def test_other_libraries_keep_their_own_conventions(valid_cfg):
    from gitml.config.schema import SklearnConfig

    estimator = {"_target_": "lightgbm.LGBMClassifier", "max_depth": -1}  # -1: no limit, in lightgbm
    model = SklearnConfig(estimator=estimator, allowed_targets=["lightgbm.LGBMClassifier"])
    assert problem_keys(valid_cfg, {"model": model}) == {}


def test_synthetic_source_rules(valid_cfg):
    from gitml.config.schema import SourceKind

    found = problem_keys(valid_cfg, {
        "data.source.kind": SourceKind.synthetic, "data.source.synthetic.n_classes": 3,
        "data.source.synthetic.class_weights": [1.0, 2.0], "data.source.synthetic.n_levels": 27,
    })
    assert "3 positive numbers" in found["data.source.synthetic.class_weights"]
    assert "between 1 and 26" in found["data.source.synthetic.n_levels"]
    found = problem_keys(valid_cfg, {"data.source.kind": SourceKind.synthetic, "data.source.synthetic.n_classes": 1})
    assert "at least 2" in found["data.source.synthetic.n_classes"]


def _option_section(group: str, option: str, schema: type) -> Any:
    from omegaconf import OmegaConf

    from gitml.config.paths import PathsConfig

    node = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(ROOT / "conf" / group / f"{option}.yaml"))
    # Options interpolate ${paths.*} (data=csv's source file): resolve them as a compose would.
    root = OmegaConf.create({"paths": OmegaConf.structured(PathsConfig), group: node})
    OmegaConf.resolve(root)
    return OmegaConf.to_object(root[group])


def test_cross_section_rules_accept_every_combination_of_shipped_options(valid_cfg):
    """gate x registry (champion stage) and gate x data (slice columns): no shipped pair conflicts."""
    from gitml.config.rules import config_problems
    from gitml.config.schema import (
        DataConfig,
        DriftConfig,
        GateConfig,
        PackageConfig,
        RegistryConfig,
    )

    schemas = {"data": DataConfig, "gate": GateConfig, "registry": RegistryConfig, "drift": DriftConfig,
               "package": PackageConfig}
    options = {g: [_option_section(g, o, schemas[g]) for gg, o in GROUP_OPTIONS if gg == g] for g in schemas}
    for combo in itertools.product(*options.values()):
        cfg = copy.deepcopy(valid_cfg)
        for group, section in zip(options, combo, strict=True):
            setattr(cfg, group, section)
        assert config_problems(cfg) == [], combo


def test_gate_metric_names_are_the_ones_evaluate_writes():
    import numpy as np

    from gitml.config.rules_gate import METRIC_RANGES, PER_CLASS_RANGES
    from gitml.evaluate.metrics import classification_metrics, regression_metrics
    from gitml.gate.stats import METRICS

    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    written = classification_metrics(y, proba, [0, 1])
    numbers = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    assert (set(written) - {"per_class"}) | set(numbers) == set(METRIC_RANGES)
    assert set(written["per_class"]["1"]) == set(PER_CLASS_RANGES)
    assert set(METRICS) <= set(METRIC_RANGES)


def test_registry_names_follow_gto():
    import gto.constants

    from gitml.config.rules import GTO_NAME

    assert gto.constants.name == GTO_NAME


def test_the_server_validates_only_the_sections_it_reads(tmp_path):
    """serve.* and registry.* errors name their keys; a broken model section is the pipeline's to report."""
    from gitml.config.params import load_sections

    params = tmp_path / "params.yaml"
    params.write_text("model: {family: no_such_family}\nserve: {port: 9000}\nregistry: {model: churn}\n")
    cfg = load_sections(params, ("serve", "registry"))
    assert (cfg.serve.port, cfg.registry.model, cfg.drift.p_val) == (9000, "churn", type(cfg.drift).p_val)
    params.write_text("serve: {port: -3, workers: zero}\n")
    with pytest.raises(ConfigError, match=r"serve\.workers"):
        load_sections(params, ("serve", "registry"))
    params.write_text("serve: {port: -3}\n")
    with pytest.raises(ConfigError, match=r"serve\.port.*must be a positive whole number"):
        load_sections(params, ("serve", "registry"))
