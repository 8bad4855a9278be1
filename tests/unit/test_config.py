"""Config: compose conf/ into params.yaml, the typed schema, errors naming key and file."""

from __future__ import annotations

import shutil
from pathlib import Path

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
    assert {"data", "model", "trainer"} <= groups
    for group in groups:
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
