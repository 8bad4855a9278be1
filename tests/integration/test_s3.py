"""Object storage: DVC remotes, logs, drift reading and deployments on s3://, against moto_server.

The S3-compatible server is moto's own ``moto_server`` in a subprocess on a free loopback
port, started by the module fixture and stopped after it. Clients find it the way users
point s3fs, botocore and dvc-s3 at any S3-compatible store: ``AWS_ENDPOINT_URL`` and the
``AWS_*`` credential variables (for DVC also the remote's ``endpointurl``). The
credentials are fresh random strings, so every output can be searched for them.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from gitml.errors import DeploymentError
from gitml.package.bundle import load_bundle
from gitml.package.manifest import MANIFEST
from gitml.utils.storage import filesystem, list_files, read_bytes, write_bytes
from tests.conftest import BIN, copy_project, run
from tests.drift_helpers import write_feedback, write_requests
from tests.integration.serve.conftest import Server, free_port
from tests.integration.serve.test_stage_follow import Traffic, served_version
from tests.tiny_bundles import rows, tiny_bundle


@dataclass
class S3:
    endpoint: str
    key_id: str
    secret: str
    output: Path  # the server's own output

    def bucket(self, name: str) -> str:
        fs, _ = filesystem(f"s3://{name}")
        fs.mkdir(name)
        return f"s3://{name}"

    def assert_no_credentials(self, *texts: str | bytes) -> None:
        for text in texts:
            raw = text if isinstance(text, bytes) else text.encode()
            assert self.secret.encode() not in raw and self.key_id.encode() not in raw


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3]:
    """moto_server on 127.0.0.1, and the AWS_* variables that point every client at it."""
    work = tmp_path_factory.mktemp("moto")
    port = free_port()
    output = work / "moto.log"
    with open(output, "wb") as sink:
        proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=sink, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{endpoint}/moto-api/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, output.read_text()
        time.sleep(0.1)
    server = S3(endpoint, f"AKIAGITML{secrets.token_hex(6).upper()}", secrets.token_urlsafe(30), output)
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": server.key_id, "AWS_SECRET_ACCESS_KEY": server.secret,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
            # Nothing from this machine's AWS files, and never the instance metadata service.
            "AWS_CONFIG_FILE": str(work / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            env.setenv(name, value)
        yield server
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------- logs and drift reading


def test_the_drift_reader_reads_a_log_on_s3_as_it_reads_the_same_folder(s3, tmp_path):
    from gitml.monitor.logs import read_feedback, read_window

    local = tmp_path / "logs"
    features = rows(300, seed=3)
    logged = write_requests(local, features, every_seconds=120, rows_per_file=50)  # 16 files in 10 hour folders
    write_feedback(local, logged.iloc[:90], pd.Series([1, 0, 1] * 30))
    url = s3.bucket("gitml-read") + "/logs"
    fs, key = filesystem(url)
    fs.put(str(local), key, recursive=True)
    now = logged["ts"].max()
    for rows_, hours in ((None, None), (100, None), (None, 3.0), (250, 8.0)):
        here, there = read_window(local, rows_, hours, now=now), read_window(url, rows_, hours, now=now)
        pd.testing.assert_frame_equal(here.rows, there.rows)
        assert here.layouts == there.layouts and here.duplicates == there.duplicates
    pd.testing.assert_frame_equal(read_feedback(local), read_feedback(url))
    assert len(read_feedback(url)) == 90


def test_log_parts_go_to_s3_whole_and_a_failed_put_keeps_its_rows(s3):
    import numpy as np

    from gitml.serve.requestlog import PartitionedLog, RequestChunk, read_log

    schema = ((("x0", "float", False), ("x1", "float", False)), ("no", "yes"))
    log = PartitionedLog("s3://gitml-later/logs", "requests", flush_rows=10, flush_seconds=60)
    stamp = time.time_ns() // 1000
    for i in range(4):
        log.append(RequestChunk(f"r{i}", stamp + i, "v1", schema, np.full((5, 2), float(i)),
                                np.array([0, 1, 0, 1, 1]), np.full((5, 2), 0.5)))
    assert log.flush() is False and log.pending_rows == 20  # no bucket yet: an OSError, nothing dropped
    assert log.dropped_rows == 0
    s3.bucket("gitml-later")
    assert log.flush() is True and log.pending_rows == 0
    keys = list_files("s3://gitml-later/logs")
    assert len(keys) == 1 and all(k.startswith("requests/date=") and "/hour=" in k for k in keys), keys
    assert not [k for k in keys if k.rpartition("/")[2].startswith(".")]  # no temporary objects
    frame = read_log("s3://gitml-later/logs")
    assert len(frame) == 20 and sorted(frame["request_id"].unique()) == ["r0", "r1", "r2", "r3"]


# ---------------------------------------------------------------------- deployments


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("s3-versions")
    return {"v1": tiny_bundle(work / "v1", version="v1", rule=0),
            "v2": tiny_bundle(work / "v2", version="v2", rule=1)}


def test_publish_activate_and_fetch_on_s3(s3, versions, tmp_path):
    from gitml.serve.deployment import POINTER, activate, publish, read_pointer
    from gitml.serve.follow import DeploymentSource
    from gitml.serve.objectstore import fetch_version

    target = s3.bucket("gitml-deploy") + "/model"
    assert publish(versions["v1"], target, "v1") == f"{target}/versions/v1"
    pointer = read_pointer(target)
    assert (pointer.version, pointer.path) == ("v1", f"{target}/versions/v1")
    assert json.loads(read_bytes(f"{target}/{POINTER}"))["path"] == "versions/v1"
    publish(versions["v2"], target, "v2")
    with pytest.raises(DeploymentError, match="immutable"):
        publish(versions["v2"], target, "v1")
    assert activate(target, "v1").version == "v1"  # a rollback is one PUT of the pointer
    with pytest.raises(DeploymentError, match=r"not published.*Published: v1, v2"):
        activate(target, "v3")

    # A publish that stopped before its manifest is not a version; publishing it again completes it.
    fs, key = filesystem(target)
    fs.rm(f"{key}/versions/v2/{MANIFEST}")
    with pytest.raises(DeploymentError, match="Published: v1"):
        activate(target, "v2")
    publish(versions["v2"], target, "v2")
    assert read_pointer(target).version == "v2"

    # The follower fetches only what the manifest lists, checked before any byte is fetched.
    source = DeploymentSource(target)
    served = source.materialise(source.current())
    assert load_bundle(served).version == "v2" and served.parent == source._fetched.cache
    source.close()
    assert not served.exists()
    manifest = json.loads(read_bytes(f"{target}/versions/v1/{MANIFEST}"))
    manifest["files"]["../escape"] = {"sha256": "0" * 64, "bytes": 1}
    write_bytes(f"{target}/versions/v1/{MANIFEST}", json.dumps(manifest).encode())
    with pytest.raises(DeploymentError, match=r"'\.\./escape', which is not a file inside"):
        fetch_version(f"{target}/versions/v1", tmp_path / "copy")
    assert not (tmp_path / "copy").exists() and not (tmp_path / "escape").exists()


@pytest.mark.slow
def test_two_followers_of_one_s3_target_swap_with_no_failed_request_and_agree(
        s3, versions, fresh_template, tmp_path, monkeypatch, gitml_main):
    target = s3.bucket("gitml-replicas") + "/model"
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the servers' fetched versions go here
    shutil.copy(fresh_template / "params.yaml", tmp_path)  # deploy reads registry.model
    params = tmp_path / "serve.yaml"  # all the servers read
    params.write_text("serve:\n  follow_interval_seconds: 0.2\n  log_flush_seconds: 0.5\n")
    deploy = ("deploy", "--target", target, "--allow-failed-gate")  # tiny bundles have no gate verdict
    out = gitml_main(*deploy, "--version", "v1", "--bundle", versions["v1"], cwd=tmp_path)
    assert f"{target}/current.json -> v1" in out.stdout
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(Server(tmp_path / name, "--deployment", target, "--follow", "--params", params))
    try:
        for server in servers:
            server.wait_ready()
        assert [served_version(s.url) for s in servers] == ["v1", "v1"]
        body = {"dataframe_records": rows(5).to_dict("records")}
        with Traffic(servers[0].url, body) as one, Traffic(servers[1].url, body) as two:
            time.sleep(0.5)
            out = gitml_main(*deploy, "--version", "v2", "--bundle", versions["v2"], cwd=tmp_path)
            deadline = time.monotonic() + 60
            while {served_version(s.url) for s in servers} != {"v2"}:
                assert time.monotonic() < deadline, [s.log() for s in servers]
                time.sleep(0.1)
            time.sleep(0.5)  # traffic on the new version
        for traffic in (one, two):
            assert not traffic.errors, traffic.errors[:5]
            assert set(traffic.versions) == {"v1", "v2"}, set(traffic.versions)
            assert set(traffic.versions[traffic.versions.index("v2"):]) == {"v2"}  # never back to v1
        ids = {httpx.get(f"{s.url}/version").json()["bundle_id"] for s in servers}
        assert ids == {load_bundle(versions["v2"], model=False).metadata["bundle_id"]}
        assert [p.name for p in tmp_path.glob("gitml-serve-*/*")] == ["v2", "v2"]  # only the served one kept
    finally:
        codes = [server.stop() for server in servers]
    assert codes == [0, 0]
    assert not list(tmp_path.glob("gitml-serve-*"))
    logs = [server.log() for server in servers]
    assert all("Traceback" not in log and "refusing" not in log for log in logs), logs
    s3.assert_no_credentials(out.stdout, out.stderr, *logs)


# ---------------------------------------------------------------------- DVC, serving and drift on one project


@pytest.fixture(scope="module")
def project(reproduced_template, tmp_path_factory) -> Path:
    return copy_project(reproduced_template, tmp_path_factory.mktemp("s3-project") / "project")


@pytest.mark.slow
def test_dvc_push_and_pull_of_the_pipeline_outputs_through_an_s3_remote(s3, project):
    store = s3.bucket("gitml-dvc") + "/store"
    outputs = []
    outputs.append(run("dvc", "remote", "add", "-d", "s3store", store, cwd=project))
    outputs.append(run("dvc", "remote", "modify", "s3store", "endpointurl", s3.endpoint, cwd=project))
    manifest = (project / "models/bundle" / MANIFEST).read_bytes()
    outputs.append(run("dvc", "push", "-v", cwd=project))
    assert list_files(store), "nothing was pushed"
    shutil.rmtree(project / ".dvc/cache")
    for output in ("models/bundle", "models/model", "data/prepared"):
        shutil.rmtree(project / output)
    outputs.append(run("dvc", "pull", cwd=project))
    assert (project / "models/bundle" / MANIFEST).read_bytes() == manifest
    load_bundle(project / "models/bundle", model=False)  # verifies every file it lists
    status = run("dvc", "status", cwd=project)
    assert "up to date" in status.stdout, status.stdout
    config = (project / ".dvc/config").read_text()
    assert "endpointurl" in config and not (project / ".dvc/config.local").exists()
    s3.assert_no_credentials(config, *(o.stdout + o.stderr for o in outputs))


@pytest.mark.slow
def test_serve_logs_to_s3_and_drift_check_reads_them(s3, project, tmp_path):
    logs = s3.bucket("gitml-logs") + "/prod"
    bundle = load_bundle(project / "models/bundle", model=False)
    prepared = pd.concat([pd.read_parquet(project / f"data/prepared/{s}.parquet") for s in ("val", "test")])
    features, labels = prepared[bundle.signature.features], prepared["target"]
    server = Server(project, "--bundle", "models/bundle", "--log-dir", logs).wait_ready()
    sent = labelled = 0
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for start in range(0, 2 * len(features), 60):  # every row twice: more than drift.min_rows
                chunk = features.iloc[start % len(features):][:60]
                answer = client.post("/invocations", json={"dataframe_split": chunk.to_dict("split")})
                assert answer.status_code == 200, answer.text
                sent += len(chunk)
                if start < 120:
                    truth = labels.iloc[start % len(features):][:len(chunk)].tolist()
                    body = {"request_id": answer.headers["x-request-id"], "labels": truth}
                    assert client.post("/feedback", json=body).status_code == 200
                    labelled += len(truth)
    finally:
        assert server.stop() == 0  # a graceful stop writes what the buffers hold
    keys = list_files(logs)
    assert keys and all(k.endswith(".parquet") and "/date=" in k for k in keys), keys
    assert {k.split("/")[0] for k in keys} == {"requests", "feedback"}
    check = run("gitml", "drift", "check", "--bundle", "models/bundle", "--log-dir", logs,
                "--out", str(tmp_path / "drift"), cwd=project, check=False)
    assert check.returncode in (0, 1), check.stderr
    report = json.loads((tmp_path / "drift/drift.json").read_text())
    assert report["window"]["rows"] == sent and report["metrics"]["n_labelled"] == labelled, report["window"]
    s3.assert_no_credentials(server.log(), check.stdout, check.stderr,
                             *(read_bytes(f"{logs}/{key}") for key in keys))


@pytest.mark.slow
def test_credentials_stay_out_of_urls_messages_and_logs(s3, project, tmp_path):
    # A URL carrying credentials is refused before anything starts, and the message masks them.
    leaked = f"s3://{s3.key_id}:{s3.secret}@gitml-logs/x"
    refused = run("gitml", "serve", "--bundle", "models/bundle", "--log-dir", leaked, "--port", str(free_port()),
                  cwd=project, check=False)
    assert refused.returncode == 1 and "must not carry credentials" in refused.stderr, refused.stderr
    assert "s3://***@gitml-logs/x" in refused.stderr
    # Failures against the store (no such bucket) are reported, without the credentials.
    missing = run("gitml", "drift", "check", "--bundle", "models/bundle", "--log-dir", "s3://gitml-none/logs",
                  "--out", str(tmp_path / "drift"), cwd=project, check=False)
    assert missing.returncode == 2 and "No request log under 's3://gitml-none/logs/requests'" in missing.stderr
    assert "Found credentials" not in missing.stderr  # botocore's INFO lines stay for --verbose
    run("dvc", "remote", "add", "nowhere", "s3://gitml-none/store", cwd=project)
    run("dvc", "remote", "modify", "nowhere", "endpointurl", s3.endpoint, cwd=project)
    push = run("dvc", "push", "-v", "-r", "nowhere", cwd=project, check=False)
    assert push.returncode != 0 and "gitml-none" in push.stdout + push.stderr
    s3.assert_no_credentials(refused.stdout, refused.stderr, missing.stdout, missing.stderr,
                             push.stdout, push.stderr, s3.output.read_bytes())


def test_a_traffic_split_on_s3_is_followed_and_its_old_copies_go(s3, versions, tmp_path):
    """traffic.json on object storage: a follower fetches every version the split names, keeps the
    ones a new split still names, removes the copies it no longer serves."""
    from gitml.serve.deployment import TRAFFIC, publish, publish_split, read_pointer
    from gitml.serve.follow import DeploymentSource, Follower
    from gitml.serve.traffic import Split

    target = s3.bucket("gitml-split") + "/model"
    publish(versions["v1"], target, "v1")
    publish(versions["v2"], target, "v2", point=False)
    assert read_pointer(target).version == "v1"
    publish_split(target, Split((("v1", 80), ("v2", 20))))
    assert json.loads(read_bytes(f"{target}/{TRAFFIC}"))["versions"] == [["v1", 80], ["v2", 20]]
    source = DeploymentSource(target)
    follower = Follower(source, 0.1, True)
    try:
        holder = follower.load_initial()
        assert holder.routes is not None and sorted(holder.routes.models) == ["v1", "v2"]
        v2 = holder.routes.models["v2"]
        assert sorted(p.name for p in source._fetched.cache.iterdir()) == ["v1", "v2"]
        publish_split(target, Split((("v2", 100),)))
        assert follower.check()
        assert holder.routes.models == {"v2": v2} and holder.current is v2  # kept, not fetched again
        assert [p.name for p in source._fetched.cache.iterdir()] == ["v2"]  # v1's copy removed
    finally:
        follower.stop()
