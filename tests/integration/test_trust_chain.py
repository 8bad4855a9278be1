"""A bundle is bound to what built it: planted attacks on promote, fetch, deploy and the registry.

Real git (a bare ``origin``), real DVC (a local remote), one published world copied per test
(``published`` from test_registry.py: no training per test). `gitml` commands run through
the console entry point in this process (``gitml_main``): the same code without a new
interpreter's imports (1-1.5 s of CPU each, 21 of them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from gitml.package.bundle import load_bundle
from gitml.package.manifest import write_manifest
from gitml.registry.chain import verify_chain
from gitml.utils.dvc_hash import dir_md5, lock_out_md5, lock_params_sha256
from tests.conftest import TINY_OVERRIDES, git, run
from tests.integration import test_registry
from tests.integration.test_registry import remote_tags

# The registry tests' world (built once per module, copied per test), shared rather than rebuilt.
published_world, published = test_registry.published_world, test_registry.published

pytestmark = pytest.mark.slow


def head(project: Path) -> str:
    return git("rev-parse", "HEAD", cwd=project).stdout.strip()


def lock(project: Path) -> dict:
    return yaml.safe_load((project / "dvc.lock").read_text())


def commit_and_push(project: Path, message: str) -> None:
    run("dvc", "push", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", message, cwd=project)
    git("push", "-q", "origin", "HEAD:main", cwd=project)


def forged_bundle(bundle: Path, dest: Path, edit) -> Path:
    """A copy of ``bundle`` changed by ``edit(copy)``, with a fresh manifest: it verifies and loads."""
    shutil.copytree(bundle, dest)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    edit(dest)
    (dest / "manifest.json").unlink()
    write_manifest(dest)
    return dest


def swap_model(copy: Path) -> None:
    """Another model in the bundle (same format, other bytes), its metadata forged to claim it."""
    model_json = copy / "model/model.json"
    model_json.write_text(model_json.read_text() + "\n")
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["provenance"]["model_md5"] = dir_md5(copy / "model")
    (copy / "metadata.json").write_text(json.dumps(metadata))


def install_bundle(project: Path, bundle: Path) -> None:
    """Replace models/bundle and make dvc.lock agree: what `dvc commit -f package` lets anyone do."""
    target = project / "models/bundle"
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(target)
    shutil.copytree(bundle, target)
    run("dvc", "commit", "-q", "-f", "package", cwd=project)


def test_the_bundle_records_what_dvc_lock_and_the_gate_hold(published):
    project = published
    bundle = project / "models/bundle"
    provenance = json.loads((bundle / "metadata.json").read_text())["provenance"]
    recorded = lock(project)
    trained = lock_out_md5(recorded, "train", "models/model")
    assert trained and trained.endswith(".dir")
    # DVC's own hash of the model folder, recomputed from the bundle's copy of it
    assert dir_md5(bundle / "model") == provenance["model_md5"] == trained
    assert provenance["prepared_md5"] == lock_out_md5(recorded, "prepare", "data/prepared")
    assert provenance["params_sha256"] == lock_params_sha256(recorded)
    verdict = json.loads((project / "reports/gate.json").read_text())
    loaded = load_bundle(bundle)  # the gate judged this very bundle, after it was packaged
    assert verdict["bundle"] == {"id": loaded.id, "manifest_sha256": loaded.manifest_sha256}
    assert verdict["model"]["md5"] == loaded.model_md5 == trained
    assert trained in (project / "reports/gate.md").read_text()
    assert verify_chain(project, head(project), bundle, remote="origin") == []


def test_a_swapped_bundle_committed_with_dvc_commit_is_refused_by_promote_and_fetch(published, tmp_path, gitml_main):
    project = published
    swapped = forged_bundle(project / "models/bundle", tmp_path / "swapped", swap_model)
    install_bundle(project, swapped)
    commit_and_push(project, "a better bundle, trust me")
    run("dvc", "status", "package", cwd=project)  # dvc.lock agrees: DVC alone sees nothing wrong

    refused = gitml_main("promote", "--stage", "staging", "--push", cwd=project, check=False)
    assert refused.returncode == 1, refused.stdout
    assert "was not built from the model trained there" in refused.stderr
    assert "judged model" in refused.stderr  # the gate verdict is for the trained model, not this one
    assert "Traceback" not in refused.stderr
    assert git("tag", cwd=project).stdout.strip() == "" and remote_tags(project) == set()

    # Tags made around gitml (plain GTO) do not get it served: fetch checks the chain too.
    import gto.api

    gto.api.register(str(project), "model", "HEAD", version="v9.0.0")
    gto.api.assign(str(project), "model", "staging", version="v9.0.0")
    git("push", "-q", "origin", "--tags", cwd=project)
    clone = tmp_path / "clone"
    git("clone", "-q", str(tmp_path / "origin.git"), str(clone), cwd=tmp_path)
    out = tmp_path / "served"
    fetched = gitml_main("fetch", "--stage", "staging", "-o", str(out), cwd=clone, check=False)
    assert fetched.returncode == 1 and "was not built from the model trained there" in fetched.stderr
    assert "Traceback" not in fetched.stderr
    assert not out.exists()  # the refused bundle never became visible


def test_a_gate_verdict_for_another_model_or_bundle_is_refused(published, gitml_main):
    project = published
    report = project / "reports/gate.json"
    verdict = json.loads(report.read_text())
    verdict["model"]["md5"] = "0" * 32 + ".dir"  # a pass that some other model earned
    verdict["bundle"]["manifest_sha256"] = "1" * 64  # ... packaged as some other bundle
    report.write_text(json.dumps(verdict, indent=2) + "\n")
    run("dvc", "commit", "-q", "-f", "gate", cwd=project)
    commit_and_push(project, "gate verdict from elsewhere")

    problems = verify_chain(project, head(project), project / "models/bundle")
    assert any(f"judged model {'0' * 32}.dir, not this bundle's model" in p for p in problems), problems
    assert any(f"(manifest {'1' * 16}), not this bundle" in p for p in problems), problems
    refused = gitml_main("promote", "--stage", "staging", "--push", cwd=project, check=False)
    assert refused.returncode == 1 and "judged model" in refused.stderr
    assert remote_tags(project) == set()


def test_promote_push_refuses_a_commit_that_is_on_no_branch_of_the_remote(published, gitml_main):
    project = published
    git("commit", "-q", "--allow-empty", "-m", "local only, never reviewed", cwd=project)
    refused = gitml_main("promote", "--stage", "staging", "--push", cwd=project, check=False)
    assert refused.returncode == 1
    assert f"commit {head(project)[:10]} is not on 'origin/main'" in refused.stderr
    assert git("tag", cwd=project).stdout.strip() == "" and remote_tags(project) == set()

    git("push", "-q", "origin", "HEAD:main", cwd=project)  # reviewed and merged: now it may go
    gitml_main("promote", "--stage", "staging", "--push", cwd=project)
    assert {"model@v1.0.0", "model#staging#1"} <= remote_tags(project)


def test_a_stage_tag_deleted_on_the_remote_is_assigned_again(published, tmp_path, gitml_main):
    project = published
    gitml_main("promote", "--stage", "prod", "--push", cwd=project)
    prod = {t for t in remote_tags(project) if t.startswith("model#prod#")}
    assert len(prod) == 1
    # A rollback by deletion, made by someone else on the remote.
    git("tag", "-d", *prod, cwd=tmp_path / "origin.git")
    assert not any(t.startswith("model#prod#") for t in remote_tags(project))

    again = gitml_main("promote", "--stage", "prod", "--push", cwd=project)
    assert "nothing to do" not in again.stdout + again.stderr
    assert "assigned to 'prod'" in again.stdout
    now = {t for t in remote_tags(project) if t.startswith("model#prod#")}
    assert len(now) == 1  # GTO numbers from the tags that exist: the same name may come back
    assert set(git("tag", "--list", "model#prod#*", cwd=project).stdout.split()) == now


def test_a_local_promotion_survives_a_sync_and_a_deletion_reaches_a_clone(published, tmp_path, gitml_main):
    from gitml.registry.tags import stage_version, sync_stage_tags

    project = published
    gitml_main("promote", "--stage", "staging", "--push", cwd=project)
    clone = tmp_path / "clone"
    git("clone", "-q", str(tmp_path / "origin.git"), str(clone), cwd=tmp_path)
    gitml_main("promote", "--stage", "prod", "--version", "v1.0.0", cwd=project)  # local, not pushed
    assert sync_stage_tags(project, "origin", "model") == []
    assert stage_version(project, "model", "prod") is not None

    git("tag", "-d", "model#staging#1", cwd=tmp_path / "origin.git")
    # The clone got the tag from `git clone` (no record of it yet): the first sync still sees the deletion.
    assert sync_stage_tags(clone, "origin", "model") == ["model#staging#1"]
    assert stage_version(clone, "model", "staging") is None
    refused = gitml_main("fetch", "--stage", "staging", "-o", str(tmp_path / "out"), cwd=clone, check=False)
    assert refused.returncode == 1 and "No version of 'model' is in stage 'staging'" in refused.stderr
    assert sync_stage_tags(project, "origin", "model") == ["model#staging#1"]
    assert stage_version(project, "model", "prod") is not None  # the unpushed local one is kept


def test_deploy_refuses_a_bundle_whose_gate_failed_or_judged_another_bundle(published, tmp_path, gitml_main):
    project = published
    bundle = project / "models/bundle"
    verdict = json.loads((project / "reports/gate.json").read_text())
    failed = tmp_path / "failed-gate.json"
    failed.write_text(json.dumps({**verdict, "verdict": "fail",
                                  "rules": [{**verdict["rules"][0], "verdict": "fail"}]}))
    swapped = forged_bundle(bundle, tmp_path / "swapped", swap_model)
    cases = {  # (bundle, extra options): the message
        "gate verdict in reports/gate.json judged bundle": (swapped, []),
        f"gate verdict in {failed} is 'fail'": (bundle, ["--gate", str(failed)]),
    }
    target = tmp_path / "deploy"
    for message, (candidate, options) in cases.items():
        refused = gitml_main("deploy", "--bundle", candidate, "--target", target, "--version", "v1", *options,
                      cwd=project, check=False)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        assert not (target / "current.json").exists() and not (target / "versions/v1").exists()
    gitml_main("deploy", "--bundle", bundle, "--target", target, "--version", "v1", cwd=project)
    assert json.loads((target / "current.json").read_text())["version"] == "v1"


def ssh_key(folder: Path, name: str) -> Path:
    key = folder / name
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key, cwd=folder)
    return key


def tag_at(project: Path, tag: str, commit: str, when: str, key: Path | None = None) -> None:
    """An assignment tag made around gitml, dated ``when`` so GTO takes it as the newest event."""
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"] if key else []
    args = ["tag", "-s"] if key else ["tag", "-a"]
    run("git", *sign, *args, "-m", "Assigning stage prod to model v1.0.0", tag, commit, cwd=project,
        env={"GIT_COMMITTER_DATE": when})
    git("push", "-q", "origin", f"refs/tags/{tag}", cwd=project)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="git's SSH signing needs ssh-keygen")
def test_signed_prod_tags_are_made_by_promote_and_required_by_fetch_and_serve(published, tmp_path, gitml_main):
    from gitml.errors import TagSignatureError
    from gitml.serve.follow import RegistrySource

    project = published
    keys = tmp_path / "keys"
    keys.mkdir()
    release, intruder = ssh_key(keys, "release"), ssh_key(keys, "intruder")
    signers = project / ".github/allowed_signers"
    signers.parent.mkdir(exist_ok=True)
    signers.write_text("release@gitml " + " ".join(release.with_suffix(".pub").read_text().split()[:2]) + "\n")
    gitml_main("config", "compose", *TINY_OVERRIDES, "registry.signed_stages=[prod]", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "sign prod assignments", cwd=project)
    git("push", "-q", "origin", "HEAD:main", cwd=project)

    unsigned = gitml_main("promote", "--stage", "prod", "--push", cwd=project, check=False)
    assert unsigned.returncode == 1 and "Cannot sign the stage tag 'model#prod#" in unsigned.stderr, unsigned.stderr
    assert not any(t.startswith("model#prod#") for t in git("tag", cwd=project).stdout.split())
    assert not any(t.startswith("model#prod#") for t in remote_tags(project))

    git("config", "gpg.format", "ssh", cwd=project)
    git("config", "user.signingkey", str(release), cwd=project)
    gitml_main("promote", "--stage", "prod", "--push", cwd=project)
    [signed] = [t for t in remote_tags(project) if t.startswith("model#prod#")]
    clone = tmp_path / "clone"
    git("clone", "-q", str(tmp_path / "origin.git"), str(clone), cwd=tmp_path)
    gitml_main("fetch", "--stage", "prod", "-o", str(tmp_path / "good"), cwd=clone)
    assert gitml_main("registry", "which", "prod", cwd=clone).stdout.strip() == "v1.0.0"
    source = RegistrySource(clone, "model", "prod", allowed_signers=clone / ".github/allowed_signers")
    assert source.current().version == "v1.0.0"

    commit = git("rev-parse", f"{signed}^{{commit}}", cwd=project).stdout.strip()
    attacks = {
        "model#prod#90": (None, "@3800000000 +0000", "it is not signed"),
        "model#prod#91": (intruder, "@3900000000 +0000", "no key in the allowed-signers file signed it"),
    }
    for tag, (key, when, reason) in attacks.items():
        tag_at(project, tag, commit, when, key)
        out = tmp_path / f"served-{tag.rsplit('#', 1)[1]}"
        refused = gitml_main("fetch", "--stage", "prod", "-o", str(out), cwd=clone, check=False)
        assert refused.returncode == 1, refused.stdout
        assert f"'{tag}' is refused: {reason}" in refused.stderr and "Traceback" not in refused.stderr
        assert not out.exists()
        which = gitml_main("registry", "which", "prod", cwd=clone, check=False)  # what deploy.yml asks
        assert which.returncode == 1 and reason in which.stderr and which.stdout == ""
        with pytest.raises(TagSignatureError, match=reason):
            source.current()
    # Staging is not a signed stage: its tags need no signature.
    gitml_main("promote", "--stage", "staging", "--push", cwd=project)
    gitml_main("fetch", "--stage", "staging", "-o", str(tmp_path / "staging"), cwd=clone)
