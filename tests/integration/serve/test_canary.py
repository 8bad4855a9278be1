"""Canary and shadow delivery from a committed file (issue 17 item 1, docs/delivery.md).

A real ``gitml serve --deployment T --follow`` with two workers: v1 at 100%, then v2 at 10% with
a v3 shadow, then 50/50, then v2 alone, under traffic from the first request to the last.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from scipy.stats import binom

from gitml.serve.deployment import publish, publish_split, read_pointer, read_split
from gitml.serve.requestlog import read_log
from gitml.serve.traffic import SHADOW, Split, read_traffic_file
from tests.integration.serve.load import Load
from tests.tiny_bundles import tiny_bundle

ROW = {"x0": 1.5, "x1": -1.5, "x2": 1.5, "x3": 0.0}  # v1 (x0 > 0) says 1, v2 (x1 > 0) says 0, v3 (x2) 1
BODY = {"dataframe_records": [ROW]}
BODY_BYTES = json.dumps(BODY).encode()
MEASURED = 3_000


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("canary")
    return {f"v{rule + 1}": tiny_bundle(root / f"v{rule + 1}", version=f"v{rule + 1}", rule=rule) for rule in range(3)}


def keyed(client: httpx.Client, slot: int, count: int) -> httpx.Response:
    """Background traffic: each request with its own routing key."""
    return client.post("/invocations", json=BODY, headers={"x-gitml-key": f"bg-{slot}-{count}"})


def reloads(url: str) -> float:
    """Swaps summed over both workers (each worker swaps once per change of the split)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r'^gitml_model_reloads_total\{model="[^"]*"\} (\S+)$', text, re.M))


def apply(server, target: Path, split: Split, swaps: int) -> None:
    """Publish ``split`` and wait until both workers have swapped to it (``swaps`` in all, so far)."""
    publish_split(target, split)
    deadline = time.monotonic() + 60
    while reloads(server.url) < swaps:
        assert time.monotonic() < deadline, f"the workers did not swap to {split}:\n{server.log()[-3000:]}"
        time.sleep(0.05)


class Client:
    """One kept-alive connection through http.client: a third of httpx's CPU a request, for thousands."""

    def __init__(self, url: str):
        self.connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()

    def answer(self, key: str) -> tuple[str, str]:
        """(version, request id) of the answer to a request with routing key ``key``."""
        self.connection.request("POST", "/invocations", BODY_BYTES,
                                {"content-type": "application/json", "x-gitml-key": key})
        response = self.connection.getresponse()
        text = response.read()
        assert response.status == 200, text
        return response.getheader("x-model-version", ""), response.getheader("x-request-id", "")


@pytest.mark.slow
def test_canary_split_shadow_and_weight_changes_under_traffic(bundles, tmp_path, start_server):
    target = tmp_path / "target"
    publish(bundles["v1"], target, "v1")
    for version in ("v2", "v3"):
        publish(bundles[version], target, version, point=False)
    assert read_pointer(target).version == "v1" and read_split(target) is None
    params = tmp_path / "params.yaml"
    params.write_text("serve:\n  follow_interval_seconds: 0.1\n  log_flush_seconds: 0.5\n")
    server = start_server(tmp_path, "--deployment", target, "--follow", "--workers", "2",
                          "--log-dir", tmp_path / "logs", "--params", params)
    canary = Split((("v1", 90), ("v2", 10)), shadow="v3")
    # steady traffic through every change, leaving the CPU to the measured requests
    with Load(server.url, keyed, pause=0.002) as traffic, Client(server.url) as client:
        time.sleep(0.3)  # v1 alone answers for a while
        apply(server, target, canary, swaps=2)
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        assert health["traffic"] == {"versions": {"v1": 90, "v2": 10}, "shadow": "v3"} and health["version"] == "v1"
        answered = {key: client.answer(key) for key in (f"key-{i}" for i in range(MEASURED))}
        # Every worker routes a key the same way, by the file's buckets.
        assert all(version == canary.version_for(key) for key, (version, _) in answered.items())
        low, high = binom.interval(0.999, MEASURED, 0.10)
        share = sum(version == "v2" for version, _ in answered.values())
        assert low <= share <= high, (share, low, high)
        again = {key: client.answer(key)[0] for key in list(answered)[:200]}
        assert again == {key: answered[key][0] for key in again}  # the same key, the same version
        # A version of the split can be addressed by name; the shadow too.
        explicit = httpx.post(f"{server.url}/v2/models/model/versions/v3/infer", timeout=30,
                              json={"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                                               for c, v in ROW.items()]})
        assert explicit.status_code == 200 and explicit.json()["model_version"] == "v3", explicit.text
        half = Split((("v1", 50), ("v2", 50)), shadow="v3")
        apply(server, target, half, swaps=4)
        moved = {key: client.answer(key)[0] for key in list(answered)[:600]}
        # Raising the canary's share only moves keys towards it.
        assert all(moved[key] == "v2" for key in moved if answered[key][0] == "v2")
        low, high = binom.interval(0.999, len(moved), 0.5)
        assert low <= sum(version == "v2" for version in moved.values()) <= high
        apply(server, target, Split((("v2", 100),)), swaps=6)
        assert {client.answer(f"last-{i}")[0] for i in range(50)} == {"v2"}
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert traffic.errors == [], traffic.errors[:5]  # no request failed while the weights changed
    versions = Counter(traffic.versions)
    assert set(versions) == {"v1", "v2"} and versions["v1"] > 20, versions  # never v3
    assert 'model_version="v2",role="canary"' in metrics and 'model_version="v3",role="shadow"' in metrics
    assert 'gitml_traffic_weight_percent{model="model",model_version="v2"} 100.0' in metrics
    assert server.stop() == 0  # flushes every log
    shadow = read_log(tmp_path / "logs", SHADOW)
    requests = read_log(tmp_path / "logs")
    assert set(shadow["model_version"]) == {"v3"}
    # v3 answered only the request that named it.
    assert set(requests.loc[requests["model_version"] == "v3", "request_id"]) == {explicit.headers["x-request-id"]}
    measured_ids = {request_id for _, request_id in answered.values()}
    assert measured_ids <= set(shadow["request_id"])  # every answer under the canary was shadowed
    assert set(shadow["request_id"]) <= set(requests["request_id"])  # and only answered requests
    assert set(shadow["prediction"]) == {"1"}  # v3's answer (x2 > 0), logged, never returned


def test_canary_file_is_written_then_applied(bundles, tmp_path):
    """gitml deploy --canary writes deploy/<model>.yaml; --traffic publishes it into the target."""
    repo, target = tmp_path / "repo", tmp_path / "target"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    publish(bundles["v1"], target, "v1")
    gitml = [sys.executable, "-m", "gitml", "deploy", "--target", str(target)]
    done = subprocess.run([*gitml, "--canary", "10", "--version", "v2"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 1 and "v2: neither published" in done.stderr  # a file --traffic could not apply
    assert not (repo / "deploy").exists()
    done = subprocess.run([*gitml, "--canary", "10", "--version", "v2", "--bundle", str(bundles["v2"]),
                           "--allow-failed-gate"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    file = repo / "deploy" / "model.yaml"
    assert read_traffic_file(file) == Split((("v1", 90), ("v2", 10)))
    assert read_pointer(target).version == "v1" and read_split(target) is None  # nothing served changed
    file.write_text(file.read_text().replace("v1: 90", "v1: 40").replace("v2: 10", "v2: 60"))  # the review
    done = subprocess.run([*gitml, "--traffic", str(file)], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = read_split(target)
    assert found is not None and found[0] == Split((("v1", 40), ("v2", 60)))
    assert read_pointer(target).version == "v2"  # servers without splits serve the larger share
    file.write_text("versions:\n  v1: 100\n  v3: 0\nshadow: v3\n")  # a shadow that is not published
    done = subprocess.run([*gitml, "--traffic", str(file)], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 1 and "v3" in done.stderr
    publish(bundles["v1"], target, "v1")  # a plain deploy: the split becomes 100% of it
    found = read_split(target)
    assert found is not None and found[0] == Split((("v1", 100),))


def test_each_model_has_its_own_split_in_process(bundles, tmp_path):
    """Two named deployments in one server: churn splits with a shadow, fraud serves one version."""
    from fastapi.testclient import TestClient

    from gitml.config.schema import ServeConfig
    from gitml.serve.app import create_app
    from gitml.serve.state import ServeSettings, ServeState

    churn, fraud = tmp_path / "churn", tmp_path / "fraud"
    for version in ("v1", "v2", "v3"):
        publish(bundles[version], churn, version, point=False)
    publish_split(churn, Split((("v1", 70), ("v2", 30)), shadow="v3", key="x-customer"))
    publish(bundles["v2"], fraud, "v2")
    settings = ServeSettings(models=[["churn", "deployment", str(churn)], ["fraud", "deployment", str(fraud)]],
                             cfg=ServeConfig(log_dir=str(tmp_path / "logs")))
    split = read_split(churn)[0]
    with TestClient(create_app(ServeState(settings))) as client:
        for i in range(200):
            response = client.post("/invocations", json=BODY, headers={"x-gitml-model": "churn", "x-customer": f"c{i}"})
            assert response.headers["x-model-version"] == split.version_for(f"c{i}")
            assert client.post("/invocations", json=BODY,
                               headers={"x-gitml-model": "fraud", "x-customer": f"c{i}"}).headers["x-model-version"] == "v2"
        unkeyed = [client.post("/invocations", json=BODY).headers["x-model-version"] for _ in range(20)]
        assert set(unkeyed) <= {"v1", "v2"}
        health = client.get("/health").json()["models"]
        assert health["churn"]["traffic"]["shadow"] == "v3" and "traffic" not in health["fraud"]
        metrics = client.get("/metrics").text
    assert 'gitml_unkeyed_requests_total{model="churn"} 20.0' in metrics
    assert 'gitml_traffic_weight_percent{model="churn",model_version="v3"} 0.0' in metrics
    assert 'gitml_routed_requests_total{model="fraud",model_version="v2",role="stable"} 200.0' in metrics
    shadow = read_log(tmp_path / "logs" / "churn", SHADOW)
    assert len(shadow) == 220 and set(shadow["model_version"]) == {"v3"}
    assert not (tmp_path / "logs" / "fraud" / SHADOW).exists()  # no shadow, no shadow log
