"""`gitml config check` and doctor agree with the params.yaml `dvc exp run -S` writes.

DVC's Hydra integration recomposes params.yaml with the overrides and records none of them;
these tests write the file with DVC's own function (dvc.utils.hydra.compose_and_dump), as
`dvc exp run -S` does. tests/integration/test_data_pipeline.py runs the real command.
"""

from __future__ import annotations

import pytest
import yaml

from gitml.config.compose import check_params
from gitml.config.explain import _hydra_value
from gitml.errors import ParamsOutOfSync


def dvc_compose(conf_dir, params, overrides):
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(params, str(conf_dir), None, "config", str(params.parent), list(overrides))


def test_a_params_yaml_dvc_composed_with_overrides_is_in_sync_and_names_them(conf_dir, tmp_path):
    params = tmp_path / "params.yaml"
    dvc_compose(conf_dir, params, ["model=random_forest", "trainer.epochs=5", "data.split.test_size=0.25"])
    found = check_params(conf_dir, params)
    assert not found.recorded
    assert found.overrides == ["model=random_forest", "data.split.test_size=0.25", "trainer.epochs=5"]
    assert found.command == "gitml config compose model=random_forest data.split.test_size=0.25 trainer.epochs=5"


def test_without_overrides_dvc_composes_what_gitml_composes(conf_dir, tmp_path):
    params = tmp_path / "params.yaml"
    dvc_compose(conf_dir, params, [])
    assert check_params(conf_dir, params).overrides == []


def test_a_key_conf_does_not_have_or_a_refused_value_is_still_out_of_sync(conf_dir, tmp_path):
    params = tmp_path / "params.yaml"
    dvc_compose(conf_dir, params, ["trainer.epochs=5"])
    data = yaml.safe_load(params.read_text())
    data["trainer"]["epochz"] = 3  # a hand edit: no override of conf/ gives it
    params.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsOutOfSync, match=r"trainer\.epochz"):
        check_params(conf_dir, params)
    del data["trainer"]["epochz"]
    data["trainer"]["device"] = "tpu"  # the schema's rules refuse it, so it explains nothing
    params.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsOutOfSync, match=r"trainer\.device"):
        check_params(conf_dir, params)


def test_a_params_yaml_with_the_header_is_held_to_its_recorded_overrides(conf_dir, tmp_path):
    from gitml import api

    params = tmp_path / "params.yaml"
    api.compose_params(conf_dir, ["trainer.epochs=3"], params)
    params.write_text(params.read_text().replace("epochs: 3", "epochs: 4"))  # edited by hand
    with pytest.raises(ParamsOutOfSync, match=r"gitml config compose trainer\.epochs=3"):
        check_params(conf_dir, params)


@pytest.mark.parametrize("value", [None, True, 3, 0.001, 1e-05, "3", "a b'c\"", [1, "x"], {"a": [0.5, None]}])
def test_override_values_keep_their_type_through_hydra(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_override(f"k={_hydra_value(value)}")
    assert parsed.value() == value and type(parsed.value()) is type(value)
