"""The data stages under real DVC in a real git repository: what reruns, what fails, what stays.

Only the data stages run here (`dvc repro prepare`, `dvc exp run ... prepare`): training,
evaluation and the gate are the train pipeline's tests. Projects start from the session's
reproduced template (tests/projects.py), copied.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPRO_LOG, TINY_OVERRIDES, copy_project, git, run

pytestmark = pytest.mark.slow

DATA_STAGES = ("ingest", "validate", "prepare")


def repro(project: Path, *args: str, check: bool = True):
    return run("dvc", "repro", *args, cwd=project, check=check)


def repro_data(project: Path, check: bool = True):
    """`dvc repro prepare`: the data stages (ingest, validate, prepare), as far as they are stale."""
    return repro(project, "prepare", check=check)


def ran_stages(output: str) -> set[str]:
    return {s for s in DATA_STAGES if f"Running stage '{s}'" in output}


def tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reproduced(reproduced_template, tmp_path_factory) -> tuple[Path, str]:
    """A project after its first `dvc repro` (TINY_OVERRIDES), committed, and that run's output.

    The module's own copy of the session template: the tests that change it work on a copy.
    """
    project = copy_project(reproduced_template, tmp_path_factory.mktemp("reproduced") / "project")
    return project, (reproduced_template.parent / REPRO_LOG).read_text()


@pytest.fixture(scope="module")
def csv_reproduced(fresh_template, tmp_path_factory) -> Path:
    """A fresh project composed with data=csv after its data stages ran."""
    project = copy_project(fresh_template, tmp_path_factory.mktemp("csv") / "project")
    run("gitml", "config", "compose", "data=csv", *TINY_OVERRIDES, cwd=project)
    repro_data(project)
    return project


def test_fresh_clone_runs_then_is_up_to_date(reproduced):
    project, first = reproduced
    assert ran_stages(first) == set(DATA_STAGES)
    summary = json.loads((project / "reports/data.json").read_text())
    assert summary["rows"]["total"] == 569
    assert {"train", "val", "test"} <= set(summary["rows"])
    assert (project / "data/prepared/features/train.parquet").is_file()

    second = repro(project)
    assert ran_stages(second.stdout) == set()
    status = run("dvc", "status", cwd=project)
    assert "up to date" in status.stdout


def test_model_change_reruns_no_data_stage_and_data_change_reruns_from_ingest(reproduced, tmp_path, gitml_main):
    project = copy_project(reproduced[0], tmp_path / "project")
    gitml_main("config", "compose", *TINY_OVERRIDES, "model=random_forest", "trainer.epochs=4", cwd=project)
    assert ran_stages(repro_data(project).stdout) == set()

    gitml_main("config", "compose", *TINY_OVERRIDES, "data=wine", "model=logreg", cwd=project)
    out = repro_data(project)
    assert ran_stages(out.stdout) == set(DATA_STAGES)
    assert json.loads((project / "reports/data.json").read_text())["rows"]["total"] == 178

    gitml_main("config", "compose", *TINY_OVERRIDES, "data=wine", "model=logreg", "data.split.seed=7", cwd=project)
    assert ran_stages(repro_data(project).stdout) == {"prepare"}


def test_dvc_exp_run_composes_params_from_conf_and_config_check_accepts_it(project, gitml_main):
    out = run("dvc", "exp", "run", "-S", "data=synthetic", "-S", "data.source.synthetic.n_rows=800", "prepare",
              cwd=project)
    assert "Running stage 'ingest'" in out.stdout
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["data"]["name"] == "synthetic"
    assert params["data"]["source"]["synthetic"]["n_rows"] == 800
    assert json.loads((project / "reports/data.json").read_text())["rows"]["total"] == 800

    # DVC wrote params.yaml without our header and recorded no override: config check and
    # doctor recover them from the values (config/explain.py) and accept the file.
    written = (project / "params.yaml").read_text()
    assert "# overrides:" not in written
    overrides = "data=synthetic data.source.synthetic.n_rows=800"
    check = run("gitml", "config", "check", cwd=project)  # a subprocess: its line is a log record
    assert f"composed with {overrides}" in check.stderr, check.stderr
    doctor = gitml_main("doctor", "--json", cwd=project, check=False)
    sync = next(c for c in json.loads(doctor.stdout) if (c["section"], c["name"]) == ("config", "sync"))
    assert sync["status"] == "ok" and overrides in sync["detail"], sync
    # the command both print records them: same values, now with the header
    gitml_main("config", "compose", *overrides.split(), cwd=project)
    recorded = (project / "params.yaml").read_text()
    assert '# overrides: ["data=synthetic", "data.source.synthetic.n_rows=800"]' in recorded
    assert yaml.safe_load(recorded) == yaml.safe_load(written)
    # a hand edit on top of DVC's file is still caught, naming the key
    (project / "params.yaml").write_text(written.replace("patience:", "patiense:", 1))
    refused = gitml_main("config", "check", cwd=project, check=False)
    assert refused.returncode == 1 and "patiense" in refused.stderr, refused.stderr


def test_dvc_exp_run_with_bad_value_fails_naming_the_key(project):
    out = run("dvc", "exp", "run", "-S", "trainer.epochs=abc", cwd=project, check=False)
    assert out.returncode != 0
    assert "trainer.epochs" in out.stdout + out.stderr
    assert not (project / "data/raw").exists()


def test_config_check_passes_then_fails_naming_the_fix(project, gitml_main):
    gitml_main("config", "check", cwd=project)
    path = project / "conf/trainer/default.yaml"
    text = path.read_text()
    assert "\nbatch_size: " in text
    path.write_text(re.sub(r"\nbatch_size: \d+", "\nbatch_size: 999", text))
    out = gitml_main("config", "check", cwd=project, check=False)
    assert out.returncode == 1
    assert "trainer.batch_size" in out.stderr and "gitml config compose" in out.stderr
    gitml_main("config", "compose", cwd=project)
    gitml_main("config", "check", cwd=project)


@pytest.mark.parametrize(
    ("breakage", "column", "rule"),
    [
        ("missing_column", "monthly_charges", "column_present"),
        ("wrong_dtype", "tenure_months", "dtype_int"),
        ("unknown_label", "churned", "label_in_classes"),
    ],
)
def test_bad_csv_fails_validate_naming_column_and_rule_and_keeps_outputs(csv_reproduced, tmp_path, breakage,
                                                                        column, rule):
    project = copy_project(csv_reproduced, tmp_path / "project")
    before = tree_digest(project / "data/prepared")

    csv = project / "data/external/churn.csv"
    frame = pd.read_csv(csv)
    if breakage == "missing_column":
        frame = frame.drop(columns=[column])
    elif breakage == "wrong_dtype":
        frame[column] = frame[column].astype(str).where(frame.index != 5, "twelve")
    else:
        frame.loc[7, column] = "maybe"
    frame.to_csv(csv, index=False)

    out = repro_data(project, check=False)
    assert out.returncode != 0
    assert f"column '{column}' failed '{rule}'" in out.stdout + out.stderr
    report = json.loads((project / "reports/validation.json").read_text())
    assert report["valid"] is False
    assert any(f["column"] == column and f["rule"] == rule for f in report["failures"])
    assert tree_digest(project / "data/prepared") == before


def test_production_batch_is_validated_and_merged_by_prepare(reproduced, tmp_path):
    project = copy_project(reproduced[0], tmp_path / "project")
    raw = pd.read_parquet(project / "data/raw/data.parquet")
    batch = project / "data/production/2026-11-29-a.parquet"
    raw.sample(40, random_state=0).to_parquet(batch, index=False)
    run("dvc", "add", str(batch), cwd=project)
    out = repro_data(project)
    assert ran_stages(out.stdout) == {"validate", "prepare"}
    rows = json.loads((project / "reports/data.json").read_text())["rows"]
    assert rows["production"] == 40 and rows["total"] == 609

    bad = raw.sample(10, random_state=1).assign(target=5)
    bad_batch = project / "data/production/2026-11-29-b.parquet"
    bad.to_parquet(bad_batch, index=False)
    out = repro_data(project, check=False)
    assert out.returncode != 0
    assert "2026-11-29-b.parquet: column 'target' failed 'label_in_classes'" in out.stdout + out.stderr


def test_fresh_clone_of_a_pushed_project_reproduces_without_a_remote(reproduced, tmp_path):
    project = copy_project(reproduced[0], tmp_path / "project")  # the template committed its run
    assert git("status", "--porcelain", cwd=project).stdout == ""
    clone = tmp_path / "clone"
    git("clone", "-q", str(project), str(clone), cwd=tmp_path)
    out = repro_data(clone)
    # DVC-cached outputs are rebuilt; validate's outputs live in git and its inputs came
    # out identical, so DVC may rightly skip it.
    assert {"ingest", "prepare"} <= ran_stages(out.stdout)
    assert "up to date" in run("dvc", "status", "prepare", cwd=clone).stdout
    # same inputs, same seed: the same prepared data as the original run
    assert tree_digest(clone / "data/prepared") == tree_digest(project / "data/prepared")
    shutil.rmtree(clone)
