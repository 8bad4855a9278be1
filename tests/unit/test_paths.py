"""The ``paths`` group: the project layout in config, validated, and reaching dvc.yaml and the api verbs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitml import api
from gitml.config.compose import compose, write_params
from gitml.config.paths import PathsConfig, paths_from
from gitml.config.rules_paths import paths_problems
from gitml.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
KEYS = [f.name for f in dataclasses.fields(PathsConfig)]


def _strings(node: Any) -> list[str]:
    """Every key and value string of a parsed YAML tree (comments are gone already)."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_dvc_yaml_names_every_location_through_paths():
    strings = _strings(yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8")))
    literal = [s for s in strings if re.search(r"(^|[\s/])(data|models|reports)/", s)]
    assert literal == [], f"dvc.yaml names a path literally; use ${{paths.<key>}}: {literal}"
    used = {m for s in strings for m in re.findall(r"\$\{paths\.(\w+)\}", s)}
    assert used and used <= set(KEYS), f"unknown paths keys in dvc.yaml: {used - set(KEYS)}"
    assert not re.findall(r"\$\{(?!paths\.)", "\n".join(strings)), "dvc.yaml interpolates something besides paths"


def test_conf_default_layout_is_the_schema_default(conf_dir):
    composed = compose(conf_dir).paths
    assert dict(composed) == dataclasses.asdict(PathsConfig())
    assert paths_problems(PathsConfig()) == []


def test_bad_paths_are_all_named_at_once_with_the_file(conf_dir):
    overrides = ["paths.raw=/srv/raw", "paths.gate=../gate.json", "paths.bundle=models/model/bundle",
                 "paths.drift=reports/metrics.json", "paths.curves=.dvc/curves.csv"]
    with pytest.raises(ConfigError) as info:
        compose(conf_dir, overrides)
    text = str(info.value)
    assert "conf/config.yaml" in text and "paths.raw=/srv/raw" in text
    for key, why in [("paths.raw", "relative to the repository root"), ("paths.gate", "no '..'"),
                     ("paths.bundle", "inside paths.model"), ("paths.drift", "same location as paths.metrics"),
                     ("paths.curves", "must not be inside .dvc")]:
        assert re.search(rf"'{re.escape(key)}': [^\n]*{re.escape(why)}", text), (key, text)


@pytest.mark.parametrize(("changes", "key", "why"), [
    ({"model": "models"}, ["paths.checkpoints", "paths.bundle"], "inside paths.model ('models')"),
    ({"pr_plots": "models"}, ["paths.pr_plots"] * 3, "must not hold paths.model"),
    ({"checkpoints": "models/model/ckpt"}, "paths.checkpoints", "inside paths.model"),
    ({"raw": "data/external/raw"}, "paths.raw", "inside paths.external"),
    ({"prepared": "./data//raw/"}, "paths.prepared", "same location as paths.raw"),
    ({"bundle": ""}, "paths.bundle", "empty path"),
    ({"bundle": "."}, "paths.bundle", "not its root"),
    ({"bundle": "C:/models/bundle"}, "paths.bundle", "absolute"),
    ({"bundle": "models\\bundle"}, "paths.bundle", "'/' separates folders"),
    ({"metrics": "params.yaml"}, "paths.metrics", "must not be inside params.yaml"),
])
def test_each_paths_rule(changes, key, why):
    problems = paths_problems(dataclasses.replace(PathsConfig(), **changes))
    assert [k for k, _ in problems] == (key if isinstance(key, list) else [key])
    assert why in problems[0][1]


def test_report_files_may_sit_in_the_reports_folder_or_elsewhere():
    moved = dataclasses.replace(PathsConfig(), reports="out", gate="out/gate.json", metrics="metrics/test.json")
    assert paths_problems(moved) == []


def test_another_commits_layout_is_read_leniently():
    assert paths_from(None) == PathsConfig() == paths_from({"data": {}})
    older = paths_from({"paths": {"bundle": "artifacts/bundle", "gone_key": "x", "gate": None}})
    assert older.bundle == "artifacts/bundle" and older.gate == PathsConfig().gate


@pytest.fixture
def moved_params(conf_dir, tmp_path, monkeypatch) -> Path:
    """params.yaml with a non-default layout, in a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    overrides = ["paths.prepared=work/prepared", "paths.model=work/model", "paths.checkpoints=work/ckpt",
                 "paths.curves=out/curves.csv", "paths.train_summary=out/train.json", "paths.reports=out",
                 "paths.data_summary=out/data.json", "paths.bundle=work/bundle", "paths.metrics=out/metrics.json",
                 "paths.gate=out/verdict.json", "paths.gate_md=out/verdict.md"]
    params = tmp_path / "params.yaml"
    write_params(compose(conf_dir, overrides), params, overrides)
    return params


def test_a_moved_path_reaches_the_stage_verbs_defaults(moved_params, monkeypatch):
    import gitml.stages.package
    import gitml.stages.train

    seen: dict[str, Any] = {}
    monkeypatch.setattr(gitml.stages.train, "train", lambda cfg, *paths: seen.setdefault("train", paths))
    monkeypatch.setattr(gitml.stages.package, "package",
                        lambda cfg, inputs, out: seen.setdefault("package", (inputs, out)))
    api.train(moved_params)
    api.package(moved_params, contract="elsewhere/contract.json")
    assert seen["train"] == tuple(map(Path, ["work/prepared", "work/model", "work/ckpt", "out/curves.csv",
                                             "out/train.json"]))
    inputs, out = seen["package"]
    assert out == Path("work/bundle") and inputs.model_dir == Path("work/model")
    assert inputs.contract == Path("elsewhere/contract.json")  # a named path wins over the config


def test_a_moved_path_reaches_summary(moved_params):
    Path("out").mkdir()
    rows = {"total": 10, "raw": 8, "production": 2, "train": 6, "val": 2, "test": 2}
    Path("out/data.json").write_text(json.dumps({"rows": rows, "features": {"columns": 3, "encoded": 4}}))
    Path("out/metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))
    text = api.summary()  # ./params.yaml: the moved layout
    assert "10 rows (8 raw + 2 production)" in text and "accuracy 0.5000" in text
    assert api.project_paths().bundle == "work/bundle"


def _commands(command: Any, prefix: str = "gitml") -> list[tuple[str, Any]]:
    subcommands = getattr(command, "commands", {})
    found = [(prefix, command)]
    for name, sub in subcommands.items():
        found += _commands(sub, f"{prefix} {name}")
    return found


def test_no_cli_option_defaults_to_a_literal_project_path():
    import typer.main

    import gitml.cli  # noqa: F401  (registers every command)
    from gitml.cli.base import app

    named: set[str] = set()
    for name, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            default = str(param.default or "")
            assert not re.match(r"(data|models|reports)/", default), f"{name} {param.opts}: default {default}"
            named |= set(re.findall(r"default: paths\.(\w+) in params\.yaml", getattr(param, "help", "") or ""))
    assert named <= set(KEYS) and {"raw", "model", "bundle", "gate", "drift", "pr_report"} <= named


def test_deploy_reads_the_gate_verdict_where_params_puts_it(moved_params):
    from gitml.serve.deployment import gate_evidence

    Path("out").mkdir(exist_ok=True)
    Path("out/verdict.json").write_text(json.dumps({"verdict": "pass"}))
    evidence = gate_evidence("v1.0.0", repo=Path("."))
    assert evidence.where == "out/verdict.json" and evidence.verdict == {"verdict": "pass"}
