"""Alerts reach a webhook receiver on 127.0.0.1 from the real commands: `gitml drift check` on shifted
traffic, a canary verdict through :func:`gitml.alerts.notify`, `gitml gate verify --alert`; the bearer
token is checked by the receiver and appears in no log line, stdout or stderr."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
import yaml

from gitml.alerts import Alert, notify
from gitml.config.schema import AlertsConfig, WebhookConfig
from gitml.package.bundle import load_bundle
from tests.alert_receiver import Receiver
from tests.drift_helpers import make_bundle, synthetic_pool, write_requests
from tests.projects import ROOT
from tests.unit.test_alerts import slack_problems


@pytest.fixture(scope="module")
def drift_setup(tmp_path_factory):
    """A bundle trained on 2000 synthetic rows; 600 later rows logged as drawn and shifted."""
    root = tmp_path_factory.mktemp("alerts")
    pool = synthetic_pool(2600)
    moved = synthetic_pool(2600, shift=1.0, shift_features=2)
    bundle = load_bundle(make_bundle(root / "bundle", pool.iloc[:2000]))
    features = bundle.signature.features
    for name, frame in (("same", pool.iloc[2000:]), ("moved", moved.iloc[2000:])):
        write_requests(root / name, frame[features], bundle.predict(frame[features]), model_version=bundle.version)
    return root, bundle


@pytest.fixture(scope="module")
def composed() -> dict:
    """The reference instance's params, composed once (webhooks are added per test)."""
    from gitml.config.compose import compose, to_plain

    return to_plain(compose(ROOT / "conf", ["registry.model=churn"]))


def write_params(composed: dict, path: Path, *hooks: dict) -> Path:
    path.write_text(yaml.safe_dump({**composed, "alerts": {"webhooks": list(hooks)}}, sort_keys=False))
    return path


@pytest.fixture
def token(monkeypatch) -> str:
    value = f"alert-{secrets.token_hex(16)}"
    monkeypatch.setenv("GITML_ALERT_TOKEN", value)
    return value


def assert_never_shown(token: str, caplog, *outputs: str) -> None:
    assert token not in caplog.text
    for output in outputs:
        assert token not in output


def drift_args(root: Path, params: Path, logs: str) -> list[str | Path]:
    return ["drift", "check", "--params", params, "--bundle", root / "bundle", "--log-dir", root / logs,
            "--out", root / f"out-{params.stem}-{logs}", "--cache", root / "cache"]


def test_a_drift_verdict_reaches_the_webhook_with_the_bearer_token_and_no_drift_sends_nothing(
        drift_setup, composed, token, gitml_main, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    root, bundle = drift_setup
    with Receiver(token=token) as hook:
        params = write_params(composed, tmp_path / "params.yaml", {"url": f"{hook.url}/gitml", "events": ["drift"]})
        same = gitml_main(*drift_args(root, params, "same"), cwd=tmp_path)
        assert hook.received == []  # no drift: no alert
        moved = gitml_main(*drift_args(root, params, "moved"), cwd=tmp_path, check=False)
    assert moved.returncode == 1, moved.stderr  # the drift exit code, unchanged by alerting
    [got] = hook.received
    assert (got.path, got.authorization, got.content_type) == ("/gitml", f"Bearer {token}", "application/json")
    body = got.body
    assert (body["event"], body["model"], body["version"]) == ("drift", "churn", bundle.version)
    assert set(body["details"]["drifted_features"]) == {"num_0", "num_1"} and body["details"]["rows"] == 600
    assert body["details"]["reasons"][0].startswith("features: 2 of 10 drifted")
    assert body["summary"].startswith(f"drift in churn {bundle.version}: 2 feature(s) drifted")
    assert set(body) == {"event", "model", "version", "summary", "details", "repository", "run_url", "time"}
    assert "alert drift sent to 127.0.0.1 <alerts.webhooks.0>" in caplog.text
    assert_never_shown(token, caplog, same.stdout, same.stderr, moved.stdout, moved.stderr)


def test_a_receiver_that_keeps_failing_is_a_warning_naming_the_host_and_the_exit_code_stays(
        drift_setup, composed, token, gitml_main, caplog, tmp_path, monkeypatch):
    caplog.set_level(logging.DEBUG)
    root, _ = drift_setup
    secret_path = f"services/T0/B0/{secrets.token_hex(12)}"
    with Receiver(token=token, statuses=[503, 503]) as failing, Receiver(token="other") as refusing:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{refusing.url}/{secret_path}")
        params = write_params(composed, tmp_path / "params.yaml",
                              {"url": failing.url, "events": ["drift"], "retries": 1, "timeout_seconds": 2},
                              {"url_env": "SLACK_WEBHOOK_URL", "format": "slack", "events": ["drift"]})
        moved = gitml_main(*drift_args(root, params, "moved"), cwd=tmp_path, check=False)
    assert moved.returncode == 1, moved.stderr
    assert len(failing.received) == 2  # one retry on a 503, then given up
    assert [r.authorization for r in refusing.received] == [f"Bearer {token}"]  # 401: not retried
    assert "alert drift not delivered to 127.0.0.1: HTTP 503, after 2 attempt(s) <alerts.webhooks.0>" in caplog.text
    assert "alert drift not delivered to 127.0.0.1: HTTP 401, after 1 attempt(s) <alerts.webhooks.1>" in caplog.text
    assert secret_path not in caplog.text + moved.stdout + moved.stderr
    assert_never_shown(token, caplog, moved.stdout, moved.stderr)


def test_a_canary_verdict_reaches_the_json_and_the_slack_webhooks(token, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    alert = Alert("canary", "churn", "canary v1.2.0 rolled back: error rate 4.1% > 1% <limit>", version="v1.2.0",
                  details={"verdict": "rollback", "stable_version": "v1.1.0", "canary_version": "v1.2.0",
                           "reasons": ["error rate 4.1% > 1%", "p95 latency 0.4 s > 0.2 s"],
                           "pull_request": "https://github.com/acme/app/pull/7"})
    with Receiver(token=token) as hook:
        cfg = AlertsConfig(webhooks=[WebhookConfig(url=f"{hook.url}/json", events=["canary"]),
                                     WebhookConfig(url=f"{hook.url}/slack", format="slack"),
                                     WebhookConfig(url=f"{hook.url}/drift-only", events=["drift"])])
        deliveries = notify(cfg, alert, env={"GITML_ALERT_TOKEN": token, "GITHUB_REPOSITORY": "acme/app",
                                             "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42"})
    assert [(d.ok, d.attempts, d.status) for d in deliveries] == [(True, 1, 200), (True, 1, 200)]
    by_path = {r.path: r for r in hook.received}
    assert set(by_path) == {"/json", "/slack"} and {r.authorization for r in hook.received} == {f"Bearer {token}"}
    body = by_path["/json"].body
    assert (body["event"], body["model"], body["version"], body["details"]["verdict"]) == (
        "canary", "churn", "v1.2.0", "rollback")
    assert body["run_url"] == "https://github.com/acme/app/actions/runs/42" and body["repository"] == "acme/app"
    slack = by_path["/slack"].body
    assert slack_problems(slack) == []
    assert "&lt;limit&gt;" in json.dumps(slack["blocks"]) and "rollback" in slack["blocks"][1]["text"]["text"]
    out = capsys.readouterr()
    assert_never_shown(token, caplog, out.out, out.err)


def test_gate_verify_alert_tells_the_webhook_and_still_exits_1(composed, token, gitml_main, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    report = tmp_path / "gate.json"
    report.write_text(json.dumps({"verdict": "fail", "rules": [
        {"rule": "test.roc_auc >= 0.9", "verdict": "fail", "reason": "0.81 is below 0.9"}]}))
    with Receiver(token=token) as hook:
        params = write_params(composed, tmp_path / "params.yaml", {"url": hook.url, "events": ["gate_failed"]})
        quiet = gitml_main("gate", "verify", "--report", report, "--params", params, cwd=tmp_path, check=False)
        assert hook.received == []  # without --alert, no alert
        loud = gitml_main("gate", "verify", "--report", report, "--params", params, "--alert", cwd=tmp_path,
                          check=False)
    assert quiet.returncode == loud.returncode == 1
    [got] = hook.received
    assert got.body["event"] == "gate_failed" and "test.roc_auc >= 0.9: 0.81 is below 0.9" in got.body["details"]["reason"]
    assert_never_shown(token, caplog, loud.stdout, loud.stderr)


def test_several_models_each_alert_with_their_own_webhooks(drift_setup, composed, token, gitml_main, tmp_path):
    """params.yaml models.NAME.alerts: churn tells the receiver, price (no webhooks) tells no one."""
    root, _ = drift_setup
    with Receiver(token=token) as hook:
        churn = {**composed, "alerts": {"webhooks": [{"url": hook.url, "events": ["drift"]}]}}
        price = {**composed, "registry": {**composed["registry"], "model": "price"}}
        params = tmp_path / "params.yaml"
        several = json.loads(json.dumps({**composed, "models": {"churn": churn, "price": price}}))  # no YAML aliases
        params.write_text(yaml.safe_dump(several, sort_keys=False))
        for name in ("price", "churn"):
            done = gitml_main(*drift_args(root, params, "moved"), "--model", name, cwd=tmp_path, check=False)
            assert done.returncode == 1, done.stderr
            assert hook.events() == ([] if name == "price" else ["drift"])
    assert hook.received[0].body["model"] == "churn"
