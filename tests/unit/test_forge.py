"""GitHubForge against a real local HTTP server speaking GitHub's REST API."""

from __future__ import annotations

import json
import logging

import pytest

from gitml.gitops.forge import Forge, ForgeError, GitHubForge, PullRequest, sticky_tag
from gitml.testing.forge_stub import ForgeStub


@pytest.fixture
def forge(forge_stub, forge_token):
    with GitHubForge("acme/app", forge_token, forge_stub.url, sleep=lambda s: None) as forge:
        yield forge


def test_is_a_forge_and_its_repr_hides_the_token(forge, forge_token):
    assert isinstance(forge, Forge)
    assert forge_token not in repr(forge) and forge_token not in str(vars(forge))


def test_open_find_update_a_pull_request_with_labels(forge, forge_stub):
    assert forge.find_open_pull("feature", "main") is None
    pull = forge.open_pull("feature", "main", "Add feature", "the body", labels=["retrain"])
    assert pull == PullRequest(pull.number, pull.url, "feature", "main", "open", "Add feature")
    assert pull.url.endswith(f"/pull/{pull.number}")
    assert forge_stub.pulls[pull.number]["labels"] == [{"name": "retrain"}]
    label_calls = forge_stub.calls("POST", f"/issues/{pull.number}/labels")
    assert len(label_calls) == 1 and json.loads(label_calls[0].body) == {"labels": ["retrain"]}

    assert forge.find_open_pull("feature", "main") == pull
    assert forge.find_open_pull("feature", "develop") is None
    assert forge.find_open_pull("other", "main") is None
    assert "head=acme%3Aother" in forge_stub.calls("GET", "/pulls?")[-1].path  # owner:branch

    updated = forge.update_pull(pull.number, body="new body")
    assert updated.title == "Add feature" and forge_stub.pulls[pull.number]["body"] == "new body"
    assert forge.update_pull(pull.number, title="Renamed").title == "Renamed"


def test_find_open_pull_follows_pagination_and_checks_head_and_base_itself(forge, forge_stub):
    for name in ("a", "b", "c", "d", "e"):
        forge.open_pull(name, "main", f"PR {name}", "")
    forge.open_pull("e", "develop", "PR e into develop", "")
    forge_stub.pulls[1]["state"] = "closed"
    forge_stub.filter_head = False  # a server that ignores `head=`: 4 open pulls into main
    found = forge.find_open_pull("e", "main")
    assert found is not None and (found.head, found.base, found.number) == ("e", "main", 5)
    assert len(forge_stub.calls("GET", "/pulls?")) == 2  # page size 2: two pages
    assert forge.find_open_pull("a", "main") is None  # closed


def test_comments_paginate_and_edit(forge, forge_stub):
    pull = forge.open_pull("feature", "main", "t", "b")
    made = [forge.comment(pull.number, f"comment {i}") for i in range(5)]
    listed = forge.list_comments(pull.number)
    assert [c.body for c in listed] == [f"comment {i}" for i in range(5)]
    assert [c.id for c in listed] == [c.id for c in made]
    assert len(forge_stub.calls("GET", f"/issues/{pull.number}/comments")) == 3  # 2 + 2 + 1
    assert all('rel="next"' in e.response_headers.get("Link", "") for e in forge_stub.calls("GET")[:2])
    edited = forge.edit_comment(made[2].id, "changed")
    assert edited.id == made[2].id and forge_stub.comments[made[2].id]["body"] == "changed"


def test_sticky_comment_is_created_once_then_edited_never_duplicated(forge, forge_stub):
    pull = forge.open_pull("feature", "main", "t", "b")
    for i in range(3):  # push the sticky one off the first page
        forge.comment(pull.number, f"chatter {i}")
    first = forge.upsert_sticky_comment(pull.number, "ci-report", "metrics v1")
    assert first.body.startswith(sticky_tag("ci-report")) and "metrics v1" in first.body
    forge.comment(pull.number, "more chatter")
    second = forge.upsert_sticky_comment(pull.number, "ci-report", "metrics v2")
    third = forge.upsert_sticky_comment(pull.number, "ci-report", "metrics v2")  # unchanged: no edit
    other = forge.upsert_sticky_comment(pull.number, "drift", "drift table")
    assert first.id == second.id == third.id != other.id
    bodies = [c["body"] for c in forge_stub.comments_on(pull.number)]
    assert sum(sticky_tag("ci-report") in b for b in bodies) == 1
    assert sum(sticky_tag("drift") in b for b in bodies) == 1
    assert "metrics v2" in forge_stub.comments[first.id]["body"]
    assert len(forge_stub.calls("PATCH", "/issues/comments/")) == 1
    with pytest.raises(ForgeError, match="marker"):
        forge.upsert_sticky_comment(pull.number, "bad -->", "x")


def test_wrong_token_is_a_clear_forge_error_without_the_token(forge_stub, forge_token, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = forge_token[::-1]
    with GitHubForge("acme/app", wrong, forge_stub.url) as forge, pytest.raises(ForgeError) as info:
        forge.find_open_pull("feature", "main")
    text = str(info.value)
    assert info.value.status == 401
    assert "401" in text and "Bad credentials" in text and "GITML_TOKEN" in text
    assert "GET /repos/acme/app/pulls" in text
    assert wrong not in text and forge_token not in text
    assert wrong not in caplog.text and forge_token not in caplog.text
    assert wrong not in forge_stub.traffic()
    assert not forge_stub.exchanges[0].authorized


def test_not_found_and_invalid_requests_explain_themselves(forge_stub, forge_token):
    with GitHubForge("acme/missing", forge_token, forge_stub.url) as forge, pytest.raises(ForgeError) as info:
        forge.comment(1, "x")
    assert "404" in str(info.value) and "acme/missing" in str(info.value)
    with GitHubForge("acme/app", forge_token, forge_stub.url) as forge:
        forge.open_pull("feature", "main", "t", "b")
        with pytest.raises(ForgeError) as info:
            forge.open_pull("feature", "main", "t", "b")
    assert "422" in str(info.value) and "A pull request already exists for acme:feature" in str(info.value)


def test_token_comes_from_the_environment_in_order(monkeypatch, forge_stub, forge_token):
    monkeypatch.delenv("GITML_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(ForgeError, match="GITML_TOKEN or GITHUB_TOKEN"):
        GitHubForge("acme/app", base_url=forge_stub.url)
    monkeypatch.setenv("GITHUB_TOKEN", "wrong-token-value")
    monkeypatch.setenv("GITML_TOKEN", forge_token)
    monkeypatch.setenv("GITML_FORGE_URL", forge_stub.url)
    with GitHubForge("acme/app") as forge:
        assert forge.base_url == forge_stub.url
        assert forge.find_open_pull("x", "main") is None  # GITML_TOKEN won over GITHUB_TOKEN


def test_github_enterprise_base_url_keeps_its_path_prefix(forge_token):
    with ForgeStub(token=forge_token, prefix="/api/v3", page_size=2) as stub:
        with GitHubForge("acme/app", forge_token, stub.url + "/") as forge:
            pull = forge.open_pull("feature", "main", "t", "b")
            for i in range(3):
                forge.comment(pull.number, f"c{i}")
            assert len(forge.list_comments(pull.number)) == 3  # next links keep /api/v3 too
        assert stub.exchanges and all(e.path.startswith("/api/v3/repos/acme/app/") for e in stub.exchanges)
        with GitHubForge("acme/app", forge_token, stub.root) as forge, pytest.raises(ForgeError, match="404"):
            forge.find_open_pull("feature", "main")  # forgot /api/v3: a 404 naming the URL


def test_server_errors_and_secondary_rate_limits_are_retried_a_bounded_number_of_times(forge_stub, forge_token):
    waits: list[float] = []
    with GitHubForge("acme/app", forge_token, forge_stub.url, max_retries=2, sleep=waits.append) as forge:
        forge_stub.fail_next(502)
        assert forge.find_open_pull("x", "main") is None
        forge_stub.fail_next(403, headers={"Retry-After": "3"},
                             message="You have exceeded a secondary rate limit.")
        pull = forge.open_pull("feature", "main", "t", "b")  # POST retried: it was refused, not done
        assert pull.number == 1 and len(forge_stub.open_pulls()) == 1
        assert waits == [1.0, 3.0]
        forge_stub.fail_next(503, times=5)
        with pytest.raises(ForgeError, match="503"):
            forge.list_comments(pull.number)
        assert len(waits) == 4  # two more retries, then it gave up
        forge_stub.failures.clear()
        forge_stub.fail_next(500)
        with pytest.raises(ForgeError, match="500"):
            forge.comment(pull.number, "x")  # POST on 5xx is not retried: it may have happened
        assert forge_stub.comments_on(pull.number) == []


def test_pagination_link_to_another_host_is_refused(forge_stub, forge_token, monkeypatch):
    with GitHubForge("acme/app", forge_token, forge_stub.url) as forge:
        pull = forge.open_pull("feature", "main", "t", "b")
        for i in range(3):
            forge.comment(pull.number, f"c{i}")
        monkeypatch.setattr(ForgeStub, "root", property(lambda self: "http://evil.invalid:1"))
        with pytest.raises(ForgeError, match="refusing to follow"):
            forge.list_comments(pull.number)


def test_a_token_echoed_by_the_server_or_logged_by_anyone_is_redacted(forge_stub, forge_token, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI quiets httpx when run in-process
    with GitHubForge("acme/app", forge_token, forge_stub.url) as forge:
        forge_stub.fail_next(400, message=f"token {forge_token} is odd")
        with pytest.raises(ForgeError) as info:
            forge.find_open_pull("x", "main")
        assert forge_token not in str(info.value) and "token *** is odd" in str(info.value)
        logging.getLogger("httpx").debug("Authorization: Bearer %s", forge_token)
        logging.getLogger("gitml.gitops.forge").info("oops %s", forge_token)
        logging.getLogger("some.library").warning("leaked %s", forge_token)  # root handlers filter too
    assert forge_token not in caplog.text and caplog.text.count("***") >= 3
