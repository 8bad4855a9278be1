"""/feedback's checks without a server: request ids, the window of answered requests, the token, config."""

from __future__ import annotations

import itertools

import pytest

from gitml.errors import ConfigError
from gitml.serve.feedback import FeedbackWindow, Label, RequestIds, bearer_matches, parse_feedback
from gitml.serve.formats import RequestError


def label(request_id: str, row: int = 0, text: str = "1") -> Label:
    return Label(request_id, row, text, "(body)")


def refusal(window: FeedbackWindow, labels: list[Label]) -> RequestError:
    with pytest.raises(RequestError) as info:
        window.claim(labels)
    return info.value


def test_request_ids_are_unique_and_share_nothing_but_their_tags():
    ids = RequestIds("abcd1234")
    drawn = [ids.next() for _ in range(5000)]
    assert len(set(drawn)) == len(drawn)
    assert all(len(i) == 40 and i.startswith("abcd1234" + ids.worker_tag) for i in drawn)
    tails = [i[16:] for i in drawn]
    # A counter (the old ids) keeps its leading digits from one id to the next; a keyed hash does not.
    assert sum(a[:12] == b[:12] for a, b in itertools.pairwise(tails)) == 0
    other = RequestIds("abcd1234")  # another worker of the same server: same tag, other worker tag and key
    assert other.worker_tag != ids.worker_tag and other.next()[16:] not in set(tails)
    assert ids.sibling(other.next()) and not ids.sibling(ids.next()) and not ids.sibling("abc")


def test_labels_only_for_rows_of_requests_answered_here_once():
    window = FeedbackWindow(10, RequestIds("s0000001"))
    window.add("r1", 3)
    window.claim([label("r1", 0), label("r1", 2)])

    unknown = refusal(window, [label("never-answered")])
    assert unknown.status == 404 and "serve.feedback_window_requests" in unknown.problems[0]["message"]
    out_of_range = refusal(window, [label("r1", 3)])
    assert out_of_range.status == 400 and "has 3 row(s)" in out_of_range.problems[0]["message"]
    again = refusal(window, [label("r1", 0, "0")])
    assert again.status == 409 and "already has a label" in again.problems[0]["message"]
    twice = refusal(window, [label("r1", 1), label("r1", 1, "0")])
    assert twice.status == 409 and "twice in this body" in twice.problems[0]["message"]
    # A refused body records nothing: row 1 is still free, and the lowest status wins in a mixed body.
    mixed = refusal(window, [label("r1", 1), label("nope"), label("r1", 9)])
    assert mixed.status == 400 and len(mixed.problems) == 2
    window.claim([label("r1", 1)])
    window.release([label("r1", 1)])  # the log refused it: the row may be labelled again
    window.claim([label("r1", 1)])


def test_the_window_forgets_the_oldest_requests():
    window = FeedbackWindow(2, RequestIds("s0000001"))
    for request_id in ("a", "b", "c"):
        window.add(request_id, 1)
    assert len(window) == 2 and refusal(window, [label("a")]).status == 404
    window.claim([label("b"), label("c")])


def test_another_workers_request_is_a_conflict_only_with_workers():
    mine, sibling = RequestIds("s0000001"), RequestIds("s0000001")
    theirs = sibling.next()
    refused = refusal(FeedbackWindow(5, mine, workers=2), [label(theirs)])
    assert refused.status == 409 and "serve.workers=2" in refused.problems[0]["message"]
    assert refusal(FeedbackWindow(5, mine, workers=1), [label(theirs)]).status == 404
    assert refusal(FeedbackWindow(5, mine, workers=2), [label(RequestIds("other000").next())]).status == 404


def test_rows_beyond_any_request_are_refused_while_parsing():
    for row in (2**63, 2**64, 10):
        with pytest.raises(RequestError) as info:
            parse_feedback({"request_id": "r1", "row": row, "label": 1}, [0, 1], 100, max_rows=10)
        assert info.value.status == 400 and info.value.problems[0]["field"] == "(body).row"
    with pytest.raises(RequestError) as info:
        parse_feedback({"request_id": "r1", "labels": [0] * 11}, [0, 1], 100, max_rows=10)
    assert info.value.problems[0]["field"] == "(body).labels"
    labels = parse_feedback({"feedback": [{"request_id": "r1", "labels": [0, 1.0]}, {"request_id": "r2", "row": 9,
                                                                                  "label": "1"}]}, [0, 1], 100, 10)
    assert [tuple(item) for item in labels] == [("r1", 0, "0", "feedback[0].labels[0]"),
                                                ("r1", 1, "1", "feedback[0].labels[1]"), ("r2", 9, "1", "feedback[1]")]


def test_a_row_written_as_an_integral_float_is_that_row():
    """JSON (and the OpenAPI schema's "integer") has one number type: 3.0 is row 3; 3.5, inf, true are not rows."""
    assert parse_feedback({"request_id": "r1", "row": 3.0, "label": 1}, [0, 1], 100, 10)[0].row == 3
    for row in (3.5, float("inf"), float("nan"), 1e300, True, "3"):
        with pytest.raises(RequestError) as info:
            parse_feedback({"request_id": "r1", "row": row, "label": 1}, [0, 1], 100, 10)
        assert info.value.status == 400 and info.value.problems[0]["field"] == "(body).row"


def test_the_bearer_token_must_match_exactly():
    token = b"s3cret-token"
    assert bearer_matches("Bearer s3cret-token", token) and bearer_matches("bearer  s3cret-token ", token)
    for header in (None, "", "s3cret-token", "Basic s3cret-token", "Bearer s3cret", "Bearer s3cret-token2",
                   "Bearer S3CRET-TOKEN", "Bearer s3cret-token\udcff"):
        assert not bearer_matches(header, token), header


@pytest.mark.parametrize(("override", "key"), [
    ("serve.feedback_window_requests=0", "serve.feedback_window_requests"),
    ("serve.feedback_max_pending_rows=10", "serve.feedback_max_pending_rows"),
    ("serve.feedback_token_env='A-B'", "serve.feedback_token_env"),
])
def test_feedback_config_is_checked_naming_the_key(conf_dir, override, key):
    from gitml.config.compose import compose

    with pytest.raises(ConfigError) as info:
        compose(conf_dir, [override])
    assert key in str(info.value)


def test_a_blank_token_variable_is_an_error_not_an_open_door(monkeypatch):
    from gitml.config.schema import ServeConfig
    from gitml.errors import GitmlError
    from gitml.serve.state import feedback_token

    cfg = ServeConfig(feedback_token_env="GITML_TEST_FEEDBACK_TOKEN")
    monkeypatch.delenv("GITML_TEST_FEEDBACK_TOKEN", raising=False)
    assert feedback_token(cfg) is None and feedback_token(ServeConfig(feedback_token_env="")) is None
    monkeypatch.setenv("GITML_TEST_FEEDBACK_TOKEN", " t0ken\n")
    assert feedback_token(cfg) == b"t0ken"
    monkeypatch.setenv("GITML_TEST_FEEDBACK_TOKEN", "  ")
    with pytest.raises(GitmlError, match="GITML_TEST_FEEDBACK_TOKEN"):
        feedback_token(cfg)


def test_the_workers_of_one_server_share_its_tag_through_the_settings():
    from gitml.serve.state import ServeSettings

    settings = ServeSettings(bundle="models/bundle")
    assert ServeSettings.from_json(settings.to_json()).server_tag == settings.server_tag
    assert ServeSettings(bundle="models/bundle").server_tag != settings.server_tag


def test_a_regression_models_label_is_a_finite_number():
    """No classes: the label is the true value, any finite JSON number, logged as a float."""
    labels = parse_feedback({"request_id": "r1", "labels": [12.5, 3, -0.25, 10**20]}, [], 100, 10)
    assert [item.label for item in labels] == [12.5, 3.0, -0.25, 1e20]
    assert all(type(item.label) is float for item in labels)
    bad = ["12.5", True, None, float("nan"), float("inf"), 10**400, [1.0], {"v": 1}]
    with pytest.raises(RequestError) as info:
        parse_feedback({"request_id": "r1", "labels": bad}, [], 100, 10)
    assert info.value.status == 400
    assert [p["field"] for p in info.value.problems] == [f"(body).labels[{i}]" for i in range(len(bad))]
    assert all("is not a number" in p["message"] for p in info.value.problems)
    # A classifier's labels are unchanged: classes, as text.
    assert parse_feedback({"request_id": "r1", "label": 1.0}, [0, 1], 100, 10)[0].label == "1"
