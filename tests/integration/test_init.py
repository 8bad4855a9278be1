"""`gitml init` for real: a new project runs its pipeline and its own tests; a re-run keeps edits.

Every command is the real one in a subprocess (gitml, make, git), as a user types it; the
new project uses this venv (``VENV=``) instead of installing gitml again (minutes).
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from gitml.scaffold.answers import RECORD, sha256
from gitml.scaffold.files import reference_files
from tests.projects import BIN, ROOT, git, run

pytestmark = pytest.mark.slow
VENV = BIN.parent


def clean(project: Path) -> None:
    assert git("status", "--porcelain", cwd=project).stdout == ""


def test_init_then_make_demo_runs_the_pipeline_and_the_project_s_own_tests_pass(tmp_path):
    project = tmp_path / "fresh"
    out = run("gitml", "init", project, cwd=tmp_path).stdout
    assert "data=breast_cancer, model=mlp, task=binary" in out and "everything committed" in out
    clean(project)
    assert git("log", "--format=%s", cwd=project).stdout.strip() == "gitml init: data=breast_cancer, model=mlp"

    demo = run("make", "demo", f"VENV={VENV}", cwd=project)
    for stage in ("ingest", "validate", "prepare", "train", "evaluate", "package", "gate"):
        assert f"Running stage '{stage}'" in demo.stdout
    assert (project / "reports" / "gate.json").is_file() and (project / "models" / "bundle").is_dir()

    tests = run("make", "test", f"VENV={VENV}", cwd=project).stdout
    assert "8 passed" in tests and "skipped" not in tests, tests


def test_init_with_a_data_file_then_a_rerun_keeps_local_edits_and_shows_them(tmp_path):
    source = shutil.copy(ROOT / "data/external/churn.csv", tmp_path / "churn.csv")
    project = tmp_path / "churn-model"
    run("gitml", "init", project, "--data", source, "--label", "churned", "--model", "hgb", cwd=tmp_path)
    clean(project)
    assert git("ls-files", "data/external", cwd=project).stdout.split() == [
        "data/external/README.md", "data/external/churn.csv", "data/external/churn.schema.yaml"]

    hgb = project / "conf/model/hgb.yaml"
    hgb.write_text(hgb.read_text().replace("max_iter: 200", "max_iter: 50"))  # the user's edit
    (project / "tests/model/test_model.py").unlink()                          # a file the user lost
    written_by_an_older_gitml = b"# an older Makefile\n"                     # unchanged since written
    (project / "Makefile").write_bytes(written_by_an_older_gitml)
    record = yaml.safe_load((project / RECORD).read_text())
    record["files"]["Makefile"] = sha256(written_by_an_older_gitml)
    (project / RECORD).write_text(yaml.safe_dump(record, sort_keys=False))

    out = run("gitml", "init", project, cwd=tmp_path).stdout  # the recorded answers: churn, hgb
    assert "data=churn, model=hgb, task=binary, label=churned" in out
    assert "kept  conf/model/hgb.yaml (your version; the new one differs)" in out
    assert "-  max_iter: 50" in out and "+  max_iter: 200" in out
    assert f"to take the new version: gitml init {project} --take conf/model/hgb.yaml" in out
    assert "created  tests/model/test_model.py" in out
    assert "updated  Makefile" in out and "nothing committed" in out
    assert "max_iter: 50" in hgb.read_text()
    assert "GITML_SPEC ?=" in (project / "Makefile").read_text()

    again = run("gitml", "init", project, cwd=tmp_path).stdout  # still kept, and said so again
    assert "kept  conf/model/hgb.yaml" in again and "updated" not in again
    taken = run("gitml", "init", project, "--take", "conf/model/hgb.yaml", cwd=tmp_path).stdout
    assert "replaced  conf/model/hgb.yaml" in taken and "max_iter: 200" in hgb.read_text()
    clean(project)  # every file and the record are back to what the first init committed
    last = run("gitml", "init", project, cwd=tmp_path).stdout
    assert "kept" not in last and "updated" not in last and "unchanged" in last
    clean(project)  # a re-run with nothing to do changes nothing

    # The data config and the inferred contract are what the pipeline reads: its data stages pass.
    data_stages = run("dvc", "repro", "prepare", cwd=project, env={"PATH": f"{BIN}:{os.environ['PATH']}"})
    assert "validated 800 rows in 1 snapshot(s)" in data_stages.stderr + data_stages.stdout


def test_a_numeric_label_makes_a_regression_project(tmp_path):
    source = tmp_path / "scores.csv"
    source.write_text("x,score\n" + "".join(f"{i},{i * 1.37:.2f}\n" for i in range(60)))
    refused = run("gitml", "init", tmp_path / "p", "--data", source, "--label", "score", "--model", "hgb",
                  cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "--model hgb is a scikit-learn classifier" in refused.stderr
    assert not (tmp_path / "p").exists()
    run("gitml", "init", tmp_path / "p", "--data", source, "--label", "score", cwd=tmp_path)
    assert "task: regression" in (tmp_path / "p/conf/data/scores.yaml").read_text()
    contract = yaml.safe_load((tmp_path / "p/data/external/scores.schema.yaml").read_text())
    assert contract["label"] == {"column": "score", "task": "regression"}
    assert "regression of `score`" in (tmp_path / "p/README.md").read_text()


def test_a_built_wheel_carries_the_reference_files(tmp_path):
    # What `pip install .` installs: a wheel built from the files git would check out.
    tree = tmp_path / "tree"
    listed = git("ls-files", "-co", "--exclude-standard", cwd=ROOT).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_symlink() or source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tree / name, follow_symlinks=False)
    run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path,
        cwd=tree)
    [wheel] = tmp_path.glob("gitml-*.whl")
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    listing = run(sys.executable, "-c", "from gitml.scaffold.files import reference_files as r\n"
                  "from hashlib import sha256\nfor p, b in r().items(): print(p, sha256(b).hexdigest())",
                  cwd=tmp_path, env={"PYTHONPATH": str(installed)}).stdout
    shipped = dict(line.split() for line in listing.splitlines())
    assert "conf/config.yaml" in shipped and ".github/workflows/ci.yml" in shipped
    assert shipped == {path: sha256(data) for path, data in reference_files().items()}  # this checkout's
