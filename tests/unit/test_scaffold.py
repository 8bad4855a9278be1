"""`gitml init`'s renderer and diff logic: the reference instance as it is, and a user's edits kept."""

from __future__ import annotations

import re

import pytest

from gitml import api
from gitml.errors import GitmlError, UsageError
from gitml.scaffold import plan as p
from gitml.scaffold.answers import Answers, decide_task, sha256
from gitml.scaffold.files import REFERENCE, fill
from gitml.scaffold.project import DVC_SETTINGS
from gitml.scaffold.render import render, select_options
from tests.projects import ROOT

VALUES = {"project": "demo", "gitml_spec": "gitml[serve] @ file:///src/gitml"}


@pytest.fixture(scope="module")
def built_in() -> dict[str, bytes]:
    return render(Answers("binary", "mlp", "breast_cancer"), VALUES)


def test_the_reference_files_are_this_repository_s_own(built_in):
    own = {}
    for dest in REFERENCE.values():
        source = ROOT / dest
        paths = sorted(f for f in source.rglob("*") if f.is_file()) if source.is_dir() else [source]
        own.update({str(f.relative_to(ROOT)): f.read_bytes() for f in paths if "__pycache__" not in f.parts})
    assert own, "no reference file found"
    assert {path: built_in[path] for path in own} == own  # conf/config.yaml included: same defaults
    assert built_in["params.yaml"].decode() == api.compose_params(ROOT / "conf", params_file=None)


def test_new_projects_get_the_dvc_settings_of_this_repository():
    # Set one by one, not copied: this repository's .dvc/config may name its own remote.
    config = (ROOT / ".dvc/config").read_text()
    for (section, key), value in DVC_SETTINGS.items():
        assert re.search(rf"\[{section}\][^\[]*\b{key} = {value}\b", config), f"{section}.{key}"


def test_a_data_file_changes_only_the_defaults_lines_and_adds_its_config(built_in):
    contract = "version: 1\nlabel: {column: churned, classes: ['no', 'yes']}\ncolumns: {}\n"
    files = render(Answers("binary", "hgb", "churn", "churn.csv", "Churned"), VALUES, contract)
    ours, reference = files["conf/config.yaml"].decode(), built_in["conf/config.yaml"].decode()
    changed = [(a, b) for a, b in zip(reference.splitlines(), ours.splitlines(), strict=True) if a != b]
    assert [b.split("#")[0].strip() for _, b in changed] == ["- data: churn", "- model: hgb"]
    assert [len(a.split("#")[0]) for a, _ in changed] == [len(b.split("#")[0]) for _, b in changed]
    assert files["data/external/churn.schema.yaml"].decode() == contract
    params = files["params.yaml"].decode()
    assert "path: data/external/churn.csv" in params and "label: Churned" in params
    assert "target: churned" in params and "family: sklearn" in params


def test_templates_name_the_project_and_where_gitml_comes_from(built_in):
    assert "GITML_SPEC ?= gitml[serve] @ file:///src/gitml" in built_in["Makefile"].decode()
    assert built_in["README.md"].decode().startswith("# demo\n")
    assert b"{{" not in b"".join(v for k, v in built_in.items() if not k.startswith(".github/"))


def test_fill_refuses_a_placeholder_without_a_value():
    assert fill("a {{ x }} b {{y}}", {"x": "1", "y": "2"}) == "a 1 b 2"
    with pytest.raises(KeyError, match="'z'"):
        fill("{{ z }}", {})


def test_select_options_keeps_comments_in_line_and_refuses_a_missing_group():
    text = "defaults:\n  - data: breast_cancer  # data\n  - model: mlp           # model\n"
    out = select_options(text, {"data": "a_much_longer_name_here", "model": "hgb"})
    assert out == "defaults:\n  - data: a_much_longer_name_here # data\n  - model: hgb           # model\n"
    with pytest.raises(ValueError, match="'trainer'"):
        select_options(text, {"trainer": "cpu"})


@pytest.mark.parametrize(("old", "recorded", "take", "action"), [
    (None, None, False, p.CREATE),
    (b"new\n", None, False, p.SAME),
    (b"as written\n", sha256(b"as written\n"), False, p.UPDATE),   # gitml init wrote it, nobody edited it
    (b"edited\n", sha256(b"as written\n"), False, p.KEEP),         # the user changed it
    (b"theirs\n", None, False, p.KEEP),                              # never written by gitml init
    (b"edited\n", sha256(b"as written\n"), True, p.TAKE),
])
def test_each_file_gets_one_action(old, recorded, take, action):
    assert p.decide("f.yaml", b"new\n", old, recorded, take).action == action


def test_a_kept_file_shows_its_diff_and_how_to_take_the_new_version():
    changes = p.plan({"a.yaml": b"x: 1\ny: 2\n", "b.yaml": b"b\n", "c.yaml": b"c\n"},
                     {"a.yaml": b"x: 1\ny: 3\n", "c.yaml": b"old c\n"},
                     {"a.yaml": sha256(b"x: 1\ny: 1\n"), "c.yaml": sha256(b"old c\n")})
    assert [c.action for c in changes] == [p.KEEP, p.CREATE, p.UPDATE]
    text = "\n".join(p.report(changes, "gitml init . --take {path}"))
    assert "kept  a.yaml" in text and "-y: 3" in text and "+y: 2" in text
    assert "--- a.yaml (yours)" in text and "+++ a.yaml (gitml init)" in text
    assert "to take the new version: gitml init . --take a.yaml" in text
    assert "updated  c.yaml" in text and text.endswith("1 created, 1 updated, 1 kept")


def test_the_new_record_keeps_a_kept_file_s_old_hash():
    changes = p.plan({"a": b"new a", "b": b"new b", "c": b"c"}, {"a": b"mine", "b": b"mine"},
                     {"a": sha256(b"was a")})
    assert p.new_record(changes, {"a": sha256(b"was a")}) == {"a": sha256(b"was a"), "c": sha256(b"c")}


def test_a_binary_file_diff_is_one_line():
    assert p.Change("x.bin", p.KEEP, b"\xff\x00", b"\xfe").diff() == "Binary files x.bin differ\n"


@pytest.mark.parametrize(("requested", "classes", "numeric", "task"), [
    (None, ["no", "yes"], False, "binary"),
    (None, [0, 1, 2], True, "multiclass"),
    ("multiclass", list(range(30)), True, "multiclass"),  # the user says the numbers are classes
    (None, [float(i) / 3 for i in range(200)], True, "regression"),
    (None, list(range(25, 347)), True, "regression"),  # a score: more than 20 whole numbers
    ("regression", [0, 1], True, "regression"),  # the user says the numbers are quantities
])
def test_the_task_is_inferred_or_checked(requested, classes, numeric, task):
    assert decide_task(requested, "y", classes, numeric) == task


@pytest.mark.parametrize(("requested", "classes", "numeric", "match"), [
    ("regression", ["low", "high"], False, "regression needs a numeric label; 'y' holds text"),
    ("binary", ["a", "b", "c"], False, "exactly 2 classes; label 'y' has 3"),
    ("multiclass", ["a", "b"], False, "at least 3"),
    ("ranking", ["a", "b"], False, "'ranking' is not one of: binary, multiclass, regression"),
])
def test_a_task_the_pipeline_cannot_train_is_refused(requested, classes, numeric, match):
    with pytest.raises(UsageError, match=match):
        decide_task(requested, "y", classes, numeric)


@pytest.mark.parametrize(("options", "match"), [
    ({"label": "y"}, "--label names a column of --data"),
    ({"data": "missing.csv", "label": "y"}, "no such file"),
    ({"data": "rows.txt", "label": "y"}, r"reads \.csv, \.parquet, \.pq files"),
    ({"data": "rows.csv"}, "--data needs --label"),
    ({"data": "rows.csv", "label": "z"}, "--label 'z' is not a column of rows.csv; its columns: x, y"),
    ({"data": "csv.csv", "label": "y"}, "would make conf/data/csv.yaml, which gitml ships already"),
    ({"model": "xgboost"}, "--model 'xgboost' is not one of: hgb, hgb_regressor, logreg"),
    ({"task": "regression", "model": "hgb"}, "--model hgb is a scikit-learn classifier .*the task is regression"),
    ({"task": "binary", "model": "ridge"}, "--model ridge is a scikit-learn regressor .*the task is binary"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, options, match):
    from gitml.scaffold.project import init_project

    for name in ("rows.csv", "csv.csv"):
        (tmp_path / name).write_text("x,y\n1,a\n2,b\n")
    if "data" in options:
        options = {**options, "data": tmp_path / options["data"]}
    with pytest.raises(UsageError if "no such" not in match else GitmlError, match=match):
        init_project(tmp_path / "project", **options)
    assert not (tmp_path / "project").exists()


def test_a_new_repository_without_a_git_identity_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from gitml.scaffold.project import init_project

    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no.gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    with pytest.raises(GitmlError, match="git does not know who commits") as refused:
        init_project(tmp_path / "project")
    assert "git config --global user.email" in (refused.value.hint or "")
    assert not (tmp_path / "project").exists()


def test_files_gitml_init_no_longer_writes_are_named():
    assert p.dropped({"a": b"", "b": b""}, {"a": "1", "c": "2", "d": "3"}) == ["c", "d"]


def test_no_pipeline_file_of_this_repository_hides_in_the_package():
    """DVC reads every dvc.yaml in the repository: a reference copy under src/ broke `dvc repro` here."""
    package = ROOT / "src"
    assert not [p for p in package.rglob("*") if p.name in ("dvc.yaml", "dvc.lock", ".dvcignore")]
