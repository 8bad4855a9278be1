"""The deployment folder, the follower's reloads and refusals, and `gitml deploy`, in-process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from gitml.config.schema import ServeConfig
from gitml.errors import GitmlError
from gitml.serve.deployment import POINTER, DeploymentError, activate, publish, read_pointer
from gitml.serve.state import ServeSettings, ServeState


def corrupt(bundle, dest):
    shutil.copytree(bundle, dest)
    card = dest / "MODEL_CARD.md"
    card.chmod(0o644)
    card.write_text("tampered")
    return dest


def test_publish_is_atomic_verified_and_immutable(trained, tmp_path):
    target = tmp_path / "deploy"
    path = publish(trained.mlp, target, "v1.0.0")
    assert path == target / "versions/v1.0.0" and (path / "manifest.json").is_file()
    pointer = read_pointer(target)
    assert pointer.version == "v1.0.0" and pointer.path == path.resolve()
    assert json.loads((target / POINTER).read_text())["path"] == "versions/v1.0.0"
    assert sorted(p.name for p in target.iterdir()) == [POINTER, "versions"]  # no temporary leftovers

    publish(trained.logreg, target, "v2")
    assert read_pointer(target).version == "v2"
    again = publish(trained.mlp, target, "v1.0.0")  # same content again: only the pointer moves
    assert again == path and read_pointer(target).version == "v1.0.0"
    with pytest.raises(DeploymentError, match="immutable"):
        publish(trained.logreg, target, "v1.0.0")
    assert activate(target, "v2").version == "v2"
    with pytest.raises(DeploymentError, match=r"not published.*v1\.0\.0, v2"):
        activate(target, "v3")


def test_publish_refuses_bad_bundles_and_versions(trained, tmp_path):
    target = tmp_path / "deploy"
    with pytest.raises(DeploymentError, match=r"MODEL_CARD\.md"):
        publish(corrupt(trained.mlp, tmp_path / "bad"), target, "v1")
    assert not (target / "versions/v1").exists() and not (target / POINTER).exists()
    for version in ("../x", "", "v 1", "a" * 65):
        with pytest.raises(DeploymentError, match="Invalid version"):
            publish(trained.mlp, target, version)


@pytest.mark.parametrize(("content", "words"), [
    (None, "current.json is missing"),
    ("{", "not a deployment pointer"),
    ('{"version": "v1"}', "not a deployment pointer"),
    ('{"version": "v1", "path": "../elsewhere"}', "must be relative"),
    ('{"version": "v1", "path": "/abs"}', "must be relative"),
    ('{"version": "../v1", "path": "versions/v1"}', "Invalid version"),
])
def test_read_pointer_names_what_is_wrong(tmp_path, content, words):
    if content is not None:
        (tmp_path / POINTER).write_text(content)
    with pytest.raises(DeploymentError, match=words):
        read_pointer(tmp_path)


def state_for(target, log_dir) -> ServeState:
    return ServeState(ServeSettings(deployment=str(target), follow=True, cfg=ServeConfig(log_dir=str(log_dir))))


def test_follower_swaps_refuses_and_reloads_on_hangup(trained, tmp_path):
    target = tmp_path / "deploy"
    publish(trained.mlp, target, "v1")
    state = state_for(target, tmp_path / "logs")
    follower, holder = state.follower, state.holder
    first = holder.current
    assert first.version == "v1" and not follower.check()

    publish(trained.logreg, target, "v2")
    assert follower.check() and holder.current.version == "v2" and state.reloads == 1
    assert first.predict is not None  # the old model object still works for requests in flight

    # A pointer to a tampered bundle: refused, counted, old model serving, not retried.
    corrupt(trained.mlp, target / "versions/v3")
    (target / POINTER).write_text(json.dumps({"version": "v3", "path": "versions/v3", "deployed_at": "now"}))
    assert not follower.check() and holder.current.version == "v2"
    assert state.reload_failures == 1 and not follower.check() and state.reload_failures == 1
    metrics = state.metrics.render()[0].decode()
    assert 'gitml_model_reload_failures_total{model="model"} 1.0' in metrics and 'version="v2"' in metrics

    # A broken pointer is a warning, not a crash; a good one swaps again.
    (target / POINTER).write_text("{")
    assert not follower.check() and holder.current.version == "v2"
    activate(target, "v1")
    assert follower.check() and holder.current.version == "v1"
    # SIGHUP: the same pointer reloads anyway, in the follower thread.
    state.start()
    try:
        before = holder.current
        follower.hangup()
        for _ in range(200):
            if holder.current is not before:
                break
            time.sleep(0.05)
        assert holder.current is not before and holder.current.version == "v1" and state.reloads == 3
    finally:
        state.stop()


def test_settings_need_exactly_one_source(tmp_path):
    with pytest.raises(GitmlError, match="exactly one"):
        ServeSettings()
    with pytest.raises(GitmlError, match="got --bundle, --stage"):
        ServeSettings(bundle="a", stage="prod")
    round_trip = ServeSettings.from_json(ServeSettings(bundle="b", cfg=ServeConfig(port=9)).to_json())
    assert round_trip.cfg.port == 9 and round_trip.bundle == "b"


def test_deploy_command_publishes_and_rolls_back(trained, tmp_path):
    target = tmp_path / "deploy"

    def gitml(*args):
        return subprocess.run([sys.executable, "-m", "gitml", *map(str, args)], capture_output=True, text=True)

    # These test bundles were never judged by a gate: deploy refuses them unless told.
    ungated = gitml("deploy", "--bundle", trained.mlp, "--target", target, "--version", "v1",
                    "--gate", tmp_path / "no-such-gate.json")
    assert ungated.returncode == 1 and "there is no gate verdict at" in ungated.stderr, ungated.stderr
    assert not (target / POINTER).exists()
    out = gitml("deploy", "--bundle", trained.mlp, "--target", target, "--version", "v1", "--allow-failed-gate")
    assert out.returncode == 0 and "published" in out.stdout, out.stderr
    assert "WARNING --allow-failed-gate" in out.stderr
    assert gitml("deploy", "--bundle", trained.logreg, "--target", target, "--version", "v2",
                 "--allow-failed-gate").returncode == 0
    out = gitml("deploy", "--target", target, "--version", "v1")
    assert out.returncode == 0 and read_pointer(target).version == "v1"
    refused = gitml("deploy", "--bundle", trained.logreg, "--target", target, "--version", "v1", "--allow-failed-gate")
    assert refused.returncode == 1 and "immutable" in refused.stderr and "Traceback" not in refused.stderr
    none = gitml("serve", "--port", "1")
    assert none.returncode == 1 and "exactly one of --bundle" in none.stderr


def test_registry_source_fetches_a_new_stage_version_once(trained, tmp_path, monkeypatch):
    """The stage lookup and the DVC fetch are the registry's own (tested there); here: the follow logic."""
    import gitml.registry.fetch as fetch
    import gitml.registry.tags as tags
    from gitml.registry.tags import ModelVersion
    from gitml.serve.follow import Follower, RegistrySource

    assigned = {"version": ModelVersion("model", "v1.0.0", "a" * 40, ["prod"])}
    fetched: list[str] = []

    def fake_fetch(repo, name, out, stage=None, version=None, remote=None):
        fetched.append(version)
        shutil.copytree(trained.mlp if version == "v1.0.0" else trained.logreg, out)

    monkeypatch.setattr(tags, "stage_version", lambda repo, name, stage: assigned["version"])
    monkeypatch.setattr(fetch, "fetch_bundle", fake_fetch)
    source = RegistrySource(tmp_path, "model", "prod", cache=tmp_path / "cache")
    follower = Follower(source, 0.1, follow=True)
    holder = follower.load_initial()
    assert holder.current.version == "v1.0.0" and "registry model#prod" in holder.current.source
    assert not follower.check() and fetched == ["v1.0.0"]
    assigned["version"] = ModelVersion("model", "v1.1.0", "b" * 40, ["prod"])
    assert follower.check() and holder.current.version == "v1.1.0" and fetched == ["v1.0.0", "v1.1.0"]
    assert follower.check(forced=True) and fetched == ["v1.0.0", "v1.1.0"]  # cached: reloaded, not refetched
