"""Gate, bundle and the git-tag registry with a bare origin and a real DVC remote."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TINY_OVERRIDES, git, run
from tests.projects import publish, publish_copy

pytestmark = pytest.mark.slow


def gate_report(project: Path) -> dict:
    return json.loads((project / "reports/gate.json").read_text())


def remote_tags(project: Path) -> set[str]:
    out = git("ls-remote", "--tags", "origin", cwd=project).stdout
    return {line.split("refs/tags/")[1].removesuffix("^{}") for line in out.splitlines() if "refs/tags/" in line}


@pytest.fixture(scope="module")
def published_world(reproduced_template, tmp_path_factory) -> Path:
    """A folder with a bare `origin.git`, a local `dvc-remote` and a `project` whose first run is pushed.

    Built once per module from the session's reproduced template; each test works on its
    own copy (``published``). The project names its DVC remote relative to itself
    (`../dvc-remote`), so in a copy of the folder the project and clones made beside it use
    the copy's remote.
    """
    world = tmp_path_factory.mktemp("published")
    publish_copy(reproduced_template, world)
    return world


@pytest.fixture
def published(published_world: Path, tmp_path: Path) -> Path:
    """A project with a bare `origin` and a local DVC remote, its first pipeline run pushed.

    A copy of ``published_world`` in ``tmp_path`` (origin.git, dvc-remote, project).
    """
    shutil.copytree(published_world, tmp_path, symlinks=True, dirs_exist_ok=True)
    project = tmp_path / "project"
    git("remote", "set-url", "origin", str(tmp_path / "origin.git"), cwd=project)
    return project


def test_promote_gate_champion_and_fetch_in_a_fresh_clone(published, tmp_path, gitml_main):
    project = published
    out = gitml_main("promote", "--stage", "staging", "--push", cwd=project)
    assert "model v1.0.0 registered and assigned to 'staging'" in out.stdout
    gitml_main("promote", "--stage", "prod", "--version", "v1.0.0", "--push", cwd=project)
    tags = remote_tags(project)
    # GTO numbers assignment events per artifact: model#staging#1, then model#prod#2
    assert "model@v1.0.0" in tags and "model#staging#1" in tags
    assert any(t.startswith("model#prod#") for t in tags)
    v1_id = json.loads((project / "models/bundle/metadata.json").read_text())["bundle_id"]

    # A worse model: the champion rule (re-scoring v1 on today's test split) fails it.
    gitml_main("config", "compose", *TINY_OVERRIDES, "model=random_forest", "model.estimator.n_estimators=1",
        "model.estimator.max_depth=1", "gate.thresholds=[]", cwd=project)
    run("dvc", "repro", cwd=project)
    report = gate_report(project)
    assert report["verdict"] == "fail" and report["champion_version"] == "v1.0.0"
    champion = next(r for r in report["rules"] if r["kind"] == "champion")
    assert champion["verdict"] == "fail" and "v1.0.0" in champion["reason"]
    verify = gitml_main("gate", "verify", cwd=project, check=False)
    assert verify.returncode == 1 and "champion" in verify.stderr
    publish(project, "worse model")
    refused = gitml_main("promote", "--stage", "staging", cwd=project, check=False)
    assert refused.returncode == 1 and "gate verdict is 'fail'" in refused.stderr
    assert not any(t.startswith("model@v1.1") for t in git("tag", cwd=project).stdout.split())

    # A good model passes against the champion and becomes v1.1.0 (same signature: minor).
    # Its latency is timed against the champion's in the same run (a generous opt-in ratio:
    # scikit-learn's input checks cost more per row than the champion's NumPy MLP).
    gitml_main("config", "compose", *TINY_OVERRIDES, "model=logreg", "gate.budgets.max_latency_ratio=50",
               cwd=project)
    run("dvc", "repro", cwd=project)
    assert gate_report(project)["verdict"] == "pass", gate_report(project)
    ratio = next(r for r in gate_report(project)["rules"] if r["kind"] == "latency_ratio")
    assert ratio["verdict"] == "pass" and ratio["value"] > 0 and "v1.0.0" in ratio["reason"], ratio
    gitml_main("gate", "verify", cwd=project)
    publish(project, "better model")
    gitml_main("promote", "--stage", "staging", "--push", cwd=project)
    gitml_main("promote", "--stage", "prod", "--version", "v1.1.0", "--push", cwd=project)
    v2_id = json.loads((project / "models/bundle/metadata.json").read_text())["bundle_id"]
    assert v2_id != v1_id

    shown = run("gto", "show", "model", cwd=project).stdout
    assert "v1.0.0" in shown and "v1.1.0" in shown and "prod" in shown
    history = run("gto", "history", "model", cwd=project).stdout
    assert "prod" in history and "v1.1.0" in history
    assert "v1.1.0" in gitml_main("registry", "show", cwd=project).stdout
    assert "registration" in gitml_main("registry", "history", cwd=project).stdout

    clone = tmp_path / "clone"
    git("clone", "-q", str(tmp_path / "origin.git"), str(clone), cwd=tmp_path)
    fetched = gitml_main("fetch", "--stage", "prod", "-o", str(tmp_path / "served"), cwd=clone)
    assert "model v1.1.0" in fetched.stdout
    metadata = json.loads((tmp_path / "served/metadata.json").read_text())
    assert metadata["bundle_id"] == v2_id
    gitml_main("fetch", "--version", "v1.0.0", "-o", str(tmp_path / "old"), cwd=clone)
    assert json.loads((tmp_path / "old/metadata.json").read_text())["bundle_id"] == v1_id

    # A rollback by assigning prod back to v1.0.0: GTO's `which` takes the highest version holding a
    # stage, so v1.1.0 gives prod up (an unassignment tag) in the same atomic push.
    out = gitml_main("promote", "--stage", "prod", "--version", "v1.0.0", "--push", cwd=project).stdout
    assert "model v1.0.0 assigned to 'prod'" in out and "model#prod!#" in out, out
    assert gitml_main("registry", "which", "prod", cwd=project).stdout.strip() == "v1.0.0"
    assert run("gto", "show", "model#prod", "--ref", cwd=project).stdout.strip() == "model@v1.0.0"
    assert any(t.startswith("model#prod!#") for t in remote_tags(project))
    fetched = gitml_main("fetch", "--stage", "prod", "-o", str(tmp_path / "rolled-back"), cwd=clone)
    assert "model v1.0.0" in fetched.stdout  # the clone takes the new tags from origin


def test_a_traffic_file_sending_everything_to_one_version_assigns_it_the_stage(published, tmp_path, gitml_main):
    """traffic.yml's `gitml deploy --traffic FILE --stage prod --push`: the registry names what is served."""
    from gitml.serve.deployment import read_pointer, read_split

    project, target, traffic = published, tmp_path / "target", tmp_path / "model.yaml"
    gitml_main("promote", "--stage", "staging", "--push", cwd=project)  # v1.0.0
    gitml_main("deploy", "--target", target, "--bundle", "models/bundle", "--version", "v1.0.0", cwd=project)
    # Published (its gate verdict admits it) but never registered: it can serve, not hold a stage.
    gitml_main("deploy", "--target", target, "--bundle", "models/bundle", "--version", "v7.0.0", "--publish-only",
               cwd=project)
    apply = ("deploy", "--target", target, "--traffic", traffic, "--stage", "prod", "--push")
    traffic.write_text("versions:\n  v7.0.0: 100\n")
    out = gitml_main(*apply, cwd=project, check=False)
    assert out.returncode == 1 and "v7.0.0, which is not a registered version of 'model'" in out.stderr
    assert read_split(target) is None and read_pointer(target).version == "v1.0.0"  # nothing changed
    wrong = gitml_main(*apply[:-3], "--stage", "production", cwd=project, check=False)
    assert wrong.returncode == 1 and "'production' is not a stage of this registry" in wrong.stderr

    traffic.write_text("versions:\n  v1.0.0: 50\n  v7.0.0: 50\n")  # a canary: no version settled
    out = gitml_main(*apply, cwd=project)
    assert "v1.0.0 50%, v7.0.0 50%" in out.stdout and "prod" not in out.stdout
    assert not any("#prod#" in tag for tag in remote_tags(project))

    traffic.write_text("versions:\n  v1.0.0: 100\n  v7.0.0: 0\nshadow: v7.0.0\n")  # promoted, v7 shadowing
    out = gitml_main(*apply, cwd=project)
    assert "model v1.0.0 assigned to 'prod'" in out.stdout and "pushed" in out.stdout
    assert any(tag.startswith("model#prod#") for tag in remote_tags(project))
    assert gitml_main("registry", "which", "prod", cwd=project).stdout.strip() == "v1.0.0"
    assert "v1.0.0 already in 'prod'" in gitml_main(*apply, cwd=project).stdout  # applying again: nothing new
    misuse = gitml_main("deploy", "--target", target, "--version", "v1.0.0", "--stage", "prod", cwd=project,
                        check=False)
    assert misuse.returncode == 2 and "--stage and --push go with --traffic" in misuse.stderr
    misuse = gitml_main(*apply[:-3], "--push", cwd=project, check=False)
    assert misuse.returncode == 2 and "--push pushes the stage tag of --stage" in misuse.stderr


def test_promote_refuses_dirty_tree_and_stale_bundle_and_leaves_no_tag(published, gitml_main):
    project = published
    params = project / "params.yaml"
    params.write_text(params.read_text() + "\n# local edit\n")
    out = gitml_main("promote", "--stage", "staging", cwd=project, check=False)
    assert out.returncode == 1 and "uncommitted changes (params.yaml)" in out.stderr
    git("checkout", "params.yaml", cwd=project)

    card = project / "models/bundle/MODEL_CARD.md"
    card.chmod(0o644)
    card.write_text("tampered")
    out = gitml_main("promote", "--stage", "staging", cwd=project, check=False)
    assert out.returncode == 1 and "does not match dvc.lock" in out.stderr
    assert git("tag", cwd=project).stdout.strip() == ""


def test_two_promotions_at_once_end_with_distinct_versions_or_a_clean_refusal(published, tmp_path):
    clones = []
    for name in ("a", "b"):
        clone = tmp_path / name
        git("clone", "-q", str(tmp_path / "origin.git"), str(clone), cwd=tmp_path)
        run("dvc", "pull", "-q", cwd=clone)
        clones.append(clone)
    # b promotes a later commit of the same pipeline state
    git("commit", "-q", "--allow-empty", "-m", "docs", cwd=clones[1])
    git("push", "-q", "origin", "HEAD:main", cwd=clones[1])
    procs = [subprocess.Popen(["gitml", "promote", "--stage", "staging", "--push"], cwd=c,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in clones]
    results = [(p.wait(), *p.communicate()) for p in procs]
    ok = [r for r in results if r[0] == 0]
    assert ok, results
    for code, _, err in results:
        if code != 0:
            assert "No tag was left behind" in err or "Refusing" in err, err
    tags = remote_tags(clones[0])
    versions = sorted(t for t in tags if t.startswith("model@"))
    assert len(versions) == len(ok) and len(set(versions)) == len(versions)
    stage_tags = sorted(t for t in tags if t.startswith("model#staging#"))
    assert len(stage_tags) == len(set(stage_tags)) == len(ok)
    for clone in clones:
        local = set(git("tag", cwd=clone).stdout.split())
        git("fetch", "-q", "--tags", "origin", cwd=clone)
        assert local <= set(git("tag", cwd=clone).stdout.split()), f"{clone.name} kept a tag origin does not have"


def test_one_flipped_byte_in_any_bundle_file_fails_loading_naming_the_file(published, tmp_path):
    from gitml.errors import BundleError
    from gitml.package.bundle import load_bundle

    bundle = published / "models/bundle"
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert len(files) >= 8
    load_bundle(bundle)
    for relative in files:
        copy = tmp_path / "copy"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(bundle, copy)
        target = copy / relative
        target.chmod(0o644)
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        with pytest.raises(BundleError) as info:
            load_bundle(copy)
        assert relative.as_posix() in str(info.value)
