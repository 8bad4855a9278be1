"""alerts.*: the config rules (every bad key named with the file), the JSON and Slack bodies, retries and
timeouts against a receiver on 127.0.0.1, and no secret in any warning."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest

from gitml.alerts import Alert, alert_promotion, notify, slack_message
from gitml.config.rules_alerts import alerts_problems, url_problem
from gitml.config.schema import AlertsConfig, Config, WebhookConfig
from gitml.errors import ConfigError
from gitml.registry.promote import Promotion
from tests.alert_receiver import Receiver

ALERT = Alert("drift", "churn", "drift in churn v1.0.0: 2 feature(s) drifted (600 rows)", "v1.0.0",
              {"verdict": "drift", "reasons": ["features: 2 of 10 drifted (num_0, num_1)"], "rows": 600})


def slack_problems(message: dict[str, Any]) -> list[str]:
    """What a Slack incoming webhook would refuse in ``message``: Block Kit's documented shape and limits
    (api.slack.com/reference/block-kit/blocks: header, section, context; text objects)."""
    problems = []
    if not isinstance(message.get("text"), str) or not message["text"]:
        problems.append("text: a non-empty fallback string is required with blocks")
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return [*problems, "blocks: 1 to 50 blocks"]
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            text = block["text"]
            if text.get("type") != "plain_text" or not 0 < len(text["text"]) <= 150 or set(text) - {"type", "text",
                                                                                                    "emoji"}:
                problems.append(f"blocks.{i}: a header holds plain_text of at most 150 characters")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"blocks.{i}: a section needs text or fields")
            if "text" in block and not _text_object(block["text"], 3000):
                problems.append(f"blocks.{i}.text: a text object of at most 3000 characters")
            fields = block.get("fields", [])
            if len(fields) > 10 or not all(_text_object(f, 2000) for f in fields):
                problems.append(f"blocks.{i}.fields: at most 10 text objects of at most 2000 characters")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= 10 or not all(_text_object(e, 3000) for e in elements):
                problems.append(f"blocks.{i}.elements: 1 to 10 text objects")
        else:
            problems.append(f"blocks.{i}: type {kind!r} is not one this message should use")
        if set(block) - {"type", "text", "fields", "elements", "block_id"}:
            problems.append(f"blocks.{i}: unknown keys {set(block) - {'type', 'text', 'fields', 'elements'}}")
    return problems


def _text_object(obj: dict[str, Any], limit: int) -> bool:
    return (obj.get("type") in ("mrkdwn", "plain_text") and isinstance(obj.get("text"), str)
            and 0 < len(obj["text"]) <= limit)


# ---------------------------------------------------------------------------- config


def test_every_bad_webhook_key_is_named():
    cfg = AlertsConfig(webhooks=[
        WebhookConfig(url="http://hooks.example.com/x", format="teams", events=["drift", "deploy"], token_env="1X",
                      timeout_seconds=0, retries=9),
        WebhookConfig(),
        WebhookConfig(url="https://a.example.com", url_env="HOOK"),
        WebhookConfig(url="https://a.example.com/x?token=s3cret", events=["drift", "drift"]),
        WebhookConfig(url_env="bad-name", events=[]),
    ])
    problems = dict(alerts_problems(cfg))
    assert sorted(problems) == [
        "alerts.webhooks.0.events", "alerts.webhooks.0.format", "alerts.webhooks.0.retries",
        "alerts.webhooks.0.timeout_seconds", "alerts.webhooks.0.token_env", "alerts.webhooks.0.url",
        "alerts.webhooks.1.url", "alerts.webhooks.2.url", "alerts.webhooks.3.events", "alerts.webhooks.3.url",
        "alerts.webhooks.4.events", "alerts.webhooks.4.url_env"]
    assert "Allowed: json, slack" in problems["alerts.webhooks.0.format"]
    assert "among drift, canary, gate_failed, promotion" in problems["alerts.webhooks.0.events"]
    assert "neither" in problems["alerts.webhooks.1.url"] and "both" in problems["alerts.webhooks.2.url"]
    assert "s3cret" not in problems["alerts.webhooks.3.url"] and "url_env" in problems["alerts.webhooks.3.url"]
    assert alerts_problems(AlertsConfig(webhooks=[WebhookConfig(url="https://hooks.example.com/gitml")])) == []


@pytest.mark.parametrize(("url", "problem"), [
    ("https://hooks.example.com/a/b", None),
    ("http://127.0.0.1:8080/hook", None),
    ("http://[::1]:9/hook", None),
    ("http://localhost/hook", None),
    ("http://hooks.example.com/a", "must be https"),
    ("ftp://hooks.example.com/a", "must be an https:// URL"),
    ("https:///nohost", "must be an https:// URL"),
    ("https://user:pw@hooks.example.com/a", "must not carry credentials"),
    ("https://hooks.example.com/a#frag", "query string or fragment"),
    ("https://hooks.example.com:port/a", "is not a URL"),
])
def test_url_rules(url, problem):
    found = url_problem(url)
    assert (found is None) if problem is None else (problem in found and "pw" not in found and "/a" not in found)


def test_a_bad_alerts_section_in_params_names_key_and_file(tmp_path):
    from gitml.config.compose import compose, to_plain
    from gitml.config.params import validate_config
    from tests.projects import ROOT

    raw = to_plain(compose(ROOT / "conf"))
    assert raw["alerts"] == {"webhooks": []}  # conf/alerts/default.yaml: nothing is told by default
    raw["alerts"] = {"webhooks": [{"url": "http://hooks.example.com/x", "events": ["deploy"]}]}
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, source="params.yaml")
    text = str(caught.value)
    assert "params.yaml" in text and "alerts.webhooks.0.url" in text and "alerts.webhooks.0.events" in text
    raw["alerts"] = {"webhooks": [{"url": "https://hooks.example.com/x", "colour": "red"}]}
    with pytest.raises(ConfigError, match="colour"):
        validate_config(raw, source="params.yaml")


# ----------------------------------------------------------------------------- bodies


def test_the_slack_message_has_slack_s_documented_shape_and_escapes_its_control_characters():
    long = Alert("gate_failed", "churn" * 40, "gate failed: <b> & " + "x" * 5000, None,
                 {"reason": "a\nb", "reasons": [f"rule {i}" for i in range(300)]})
    for alert in (ALERT, long):
        message = slack_message(alert.to_json({}))
        assert slack_problems(message) == [], message
    message = slack_message(long.to_json({}))
    assert "&lt;b&gt; &amp;" in message["blocks"][1]["text"]["text"] and "<b>" not in message["blocks"][1]["text"]["text"]
    assert message["blocks"][1]["text"]["text"].endswith("\u2026")
    assert slack_problems({"text": "", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]}) == [
        "text: a non-empty fallback string is required with blocks",
        "blocks.0: a header holds plain_text of at most 150 characters"]


def test_an_unknown_event_is_refused_when_the_alert_is_made():
    with pytest.raises(ValueError, match="Allowed: drift, canary, gate_failed, promotion"):
        Alert("deploy", "churn", "x")


def test_a_promotion_that_created_tags_is_told_and_one_that_did_not_is_not():
    with Receiver() as hook:
        cfg = Config(alerts=AlertsConfig(webhooks=[WebhookConfig(url=hook.url, events=["promotion"], token_env="")]))
        made = Promotion("churn", "v1.1.0", "prod", "a" * 40, ["churn#prod#3"], False, True)
        assert [d.ok for d in alert_promotion(cfg, made)] == [True]
        assert alert_promotion(cfg, Promotion("churn", "v1.1.0", "prod", "a" * 40, [], False, False)) == []
    [got] = hook.received
    assert got.authorization == ""  # no token_env: no Authorization header
    assert got.body["details"] == {"stage": "prod", "tags": ["churn#prod#3"], "commit": "a" * 40, "pushed": True}
    assert got.body["summary"] == made.describe()


# --------------------------------------------------------------------- delivery


def test_a_5xx_is_retried_a_4xx_is_not_and_neither_raises(caplog):
    token = secrets.token_hex(8)
    with Receiver(token=token, statuses=[502]) as flaky, Receiver(token=token, statuses=[400]) as refusing:
        cfg = AlertsConfig(webhooks=[WebhookConfig(url=flaky.url, retries=1),
                                     WebhookConfig(url=refusing.url, retries=3)])
        deliveries = notify(cfg, ALERT, env={"GITML_ALERT_TOKEN": token})
    assert [(d.ok, d.attempts, d.status) for d in deliveries] == [(True, 2, 200), (False, 1, 400)]
    assert "alert drift not delivered to 127.0.0.1: HTTP 400, after 1 attempt(s) <alerts.webhooks.1>" in caplog.text
    assert token not in caplog.text


def test_a_timeout_or_a_closed_port_is_a_warning_without_the_url_s_path(caplog):
    caplog.set_level(logging.DEBUG)
    secret = secrets.token_hex(12)
    with Receiver(delay=1.0) as slow:
        closed = f"http://127.0.0.1:{_closed_port()}/{secret}"
        env = {"SLOW": f"{slow.url}/{secret}?key={secret}", "CLOSED": closed, "GITML_ALERT_TOKEN": secret}
        cfg = AlertsConfig(webhooks=[WebhookConfig(url_env="SLOW", timeout_seconds=0.2, retries=0),
                                     WebhookConfig(url_env="CLOSED", retries=0),
                                     WebhookConfig(url_env="UNSET_ALERT_URL")])
        deliveries = notify(cfg, ALERT, env=env)
    assert [(d.ok, d.problem.split(":")[0]) for d in deliveries] == [
        (False, "ReadTimeout"), (False, "ConnectError"), (False, "the environment variable UNSET_ALERT_URL (url_env) is not set")]
    assert secret not in caplog.text and "<alerts.webhooks.2>" in caplog.text


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
