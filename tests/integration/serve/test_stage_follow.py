"""`gitml serve --stage prod --follow` on a serving host: a fresh clone of a real registry.

The project pushes its pipeline to a bare `origin` and its data to a local DVC remote, as
CI does; the host is a clone of `origin` that nobody touches after cloning. Promotions made
in the project reach the server only through the remote: the follower fetches the tags,
resolves the stage with GTO and pulls the bundle through DVC.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pytest

from gitml.package.bundle import load_bundle
from tests.conftest import TINY_OVERRIDES, git, run
from tests.integration.serve.conftest import SERVE_PARAMS
from tests.projects import publish, publish_copy

pytestmark = pytest.mark.slow
SWAP_SECONDS = 60  # a poll, a DVC fetch of the new bundle, verification and warm-up


@pytest.fixture
def published(reproduced_template: Path, tmp_path: Path) -> Path:
    """A project with a bare `origin` and a local DVC remote, its first pipeline run pushed.

    The serve.* values go into params.yaml, which the host's clone serves with.
    """
    return publish_copy(reproduced_template, tmp_path, dvc_remote=str(tmp_path / "dvc-remote"),
                        overrides=SERVE_PARAMS)


class Traffic:
    """One client posting to /invocations in a loop; records each answer's status and version."""

    def __init__(self, url: str, body: dict):
        self.url, self.body = url, body
        self.versions: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/invocations", json=self.body)
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    self.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                self.versions.append(response.headers.get("x-model-version", ""))


def served_version(url: str) -> str:
    return httpx.get(f"{url}/version", timeout=10).json()["model_version"]


def wait_for_version(server, version: str, timeout: float = SWAP_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited {server.proc.returncode}:\n{server.log()}")
        if served_version(server.url) == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"still serving {served_version(server.url)}, not {version}, after {timeout}s:\n"
                         f"{server.log()}")


def serve_stage(host: Path, stage: str, *args: str) -> list[str | Path]:
    """`gitml serve --stage` as a serving host runs it: its clone's params.yaml, tags from origin."""
    return ["--stage", stage, "--repo", host, "--params", host / "params.yaml", "--log-dir", host.parent / "logs",
            *args]


def test_serve_stage_prod_follows_promotions_pushed_to_origin(published, tmp_path, start_server, monkeypatch, gitml_main):
    project = published
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the server's bundle cache (a temporary folder) goes here
    host = tmp_path / "host"
    git("clone", "-q", str(tmp_path / "origin.git"), str(host), cwd=tmp_path)

    # Nothing is in prod yet: the server refuses to start, in one line naming the stage.
    refused = run("gitml", "serve", *serve_stage(host, "prod"), "--port", "1", cwd=tmp_path, check=False)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.strip() == ("gitml: error: No version of 'model' is in stage 'prod'. "
                                      "See `gitml registry show`."), refused.stderr
    typo = run("gitml", "serve", *serve_stage(host, "prdo"), "--port", "1", cwd=tmp_path, check=False)
    assert typo.returncode == 2 and "stages: staging, prod" in typo.stderr, typo.stderr
    assert not list(tmp_path.glob("gitml-serve-*"))  # a server that did not start left nothing behind

    out = gitml_main("promote", "--stage", "prod", "--push", cwd=project).stdout
    assert "model v1.0.0 registered and assigned to 'prod'" in out, out
    v1 = load_bundle(project / "models/bundle")
    body = {"dataframe_records": v1.reference().head(5).to_dict("records")}

    # Another model through the pipeline, pushed but in no stage yet (trained before the
    # server starts, so training and the server's polls do not share the CPUs).
    gitml_main("config", "compose", *TINY_OVERRIDES, *SERVE_PARAMS, "model=logreg", cwd=project)
    run("dvc", "repro", cwd=project)
    publish(project, "logreg")
    v2_id = load_bundle(project / "models/bundle").metadata["bundle_id"]
    assert v2_id != v1.metadata["bundle_id"]

    # The host learns of v1 only through origin: the server fetches the tags itself.
    server = start_server(tmp_path, *serve_stage(host, "prod", "--follow"))
    assert httpx.get(f"{server.url}/version").json()["bundle_id"] == v1.metadata["bundle_id"]
    assert served_version(server.url) == "v1.0.0"
    answer = httpx.post(f"{server.url}/invocations", json=body, timeout=30)
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "v1.0.0", answer.text
    assert len(answer.json()["predictions"]) == 5

    with Traffic(server.url, body) as traffic:
        out = gitml_main("promote", "--stage", "staging", "--push", cwd=project).stdout
        assert "model v1.1.0 registered and assigned to 'staging'" in out, out
        time.sleep(1.0)  # several polls have seen the new tags: staging moved, prod did not
        assert served_version(server.url) == "v1.0.0", server.log()
        gitml_main("promote", "--stage", "prod", "--version", "v1.1.0", "--push", cwd=project)
        wait_for_version(server, "v1.1.0")
        time.sleep(0.5)  # traffic on the new version
    assert not traffic.errors, traffic.errors[:5]
    # Every answer came from one version or the other, and never from v1 again once swapped.
    assert set(traffic.versions) == {"v1.0.0", "v1.1.0"}, set(traffic.versions)
    first_new = traffic.versions.index("v1.1.0")
    assert set(traffic.versions[first_new:]) == {"v1.1.0"}

    assert httpx.get(f"{server.url}/version").json()["bundle_id"] == v2_id
    answer = httpx.post(f"{server.url}/invocations", json=body, timeout=30)
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "v1.1.0", answer.text
    health = httpx.get(f"{server.url}/health").json()
    assert health["version"] == "v1.1.0" and health["reloads"] == 1 and health["reload_failures"] == 0, health
    assert git("status", "--porcelain", cwd=host).stdout == ""  # the host's checkout was never touched
    # The fetched bundles: only the served version is kept, and nothing once the server stops.
    assert [p.name for p in tmp_path.glob("gitml-serve-*/*")] == ["v1.1.0"]
    assert server.stop() == 0
    assert not list(tmp_path.glob("gitml-serve-*"))
    log = server.log()
    assert "cannot fetch tags" not in log and "Traceback" not in log, log


def test_a_remote_that_cannot_be_fetched_is_warned_about_once_and_local_tags_still_serve(tmp_path, caplog):
    import gto.api

    from gitml.serve.follow import RegistrySource

    host = tmp_path / "host"
    git("init", "-q", "-b", "main", str(host), cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "v1", cwd=host)
    gto.api.register(str(host), "model", "HEAD", version="v1.0.0")
    gto.api.assign(str(host), "model", "prod", version="v1.0.0")
    source = RegistrySource(host, "model", "prod", remote="origin", cache=tmp_path / "cache")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "gitml.serve.sources"]

    with caplog.at_level(logging.WARNING, logger="gitml.serve.sources"):
        assert [source.current().version for _ in range(3)] == ["v1.0.0"] * 3  # no remote 'origin'
        assert len(warnings()) == 1 and "cannot fetch tags from 'origin'" in warnings()[0], warnings()
        git("init", "-q", "--bare", str(tmp_path / "origin.git"), cwd=tmp_path)
        git("remote", "add", "origin", str(tmp_path / "origin.git"), cwd=host)
        assert source.current().version == "v1.0.0" and len(warnings()) == 1
        git("remote", "remove", "origin", cwd=host)
        assert source.current().version == "v1.0.0" and len(warnings()) == 2  # a new failure: said again


def test_an_assignment_deleted_on_origin_rolls_the_host_back_to_the_one_before(tmp_path):
    import gto.api

    from gitml.serve.follow import RegistrySource

    origin, publisher, host = tmp_path / "origin.git", tmp_path / "publisher", tmp_path / "host"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("clone", "-q", str(origin), str(publisher), cwd=tmp_path)
    for version in ("v1.0.0", "v1.1.0"):
        git("commit", "-q", "--allow-empty", "-m", version, cwd=publisher)
        gto.api.register(str(publisher), "model", "HEAD", version=version)
        gto.api.assign(str(publisher), "model", "prod", version=version)
    git("push", "-q", "origin", "HEAD:main", "--tags", cwd=publisher)
    git("clone", "-q", str(origin), str(host), cwd=tmp_path)
    git("tag", "model#staging#9", cwd=host)  # a local assignment origin never held: not ours to delete
    source = RegistrySource(host, "model", "prod", remote="origin", cache=tmp_path / "cache")
    assert source.current().version == "v1.1.0"
    newest = max(git("tag", "--list", "model#prod#*", cwd=publisher).stdout.split(),
                 key=lambda tag: int(tag.rsplit("#", 1)[1]))  # GTO numbers the assignments
    git("push", "-q", "origin", f":refs/tags/{newest}", cwd=publisher)  # roll back by deleting the assignment
    assert source.current().version == "v1.0.0"
    assert newest not in git("tag", "--list", cwd=host).stdout.split()
    assert {"model@v1.0.0", "model@v1.1.0", "model#staging#9"} <= set(git("tag", "--list", cwd=host).stdout.split())
