"""``POST /feedback``: true labels for rows of earlier predictions, checked before they are queued.

Labels become training data (retraining pull requests read the feedback log), so a label is
accepted only for a row this server process answered and still remembers, once:

- the request id must be in this process's window of recent requests
  (``serve.feedback_window_requests``, an in-memory index of id -> row count), so ids from
  nowhere, ids of requests older than the window and ids of another worker process are refused;
- the row must be one of that request's rows (``0 <= row < rows``);
- a row takes one label: a second label for the same ``(request_id, row)`` is refused with
  409, in the same body or a later one (the first label stands);
- a body is accepted whole or refused whole; every problem is listed.

Request ids are unguessable (:class:`RequestIds`), so only a client that saw an answer can
label its rows. With ``serve.feedback_token_env`` naming a set environment variable, the
route also wants ``Authorization: Bearer <token>`` (compared in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import re
import secrets
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from gitml.errors import RequestError
from gitml.package.values import clip
from gitml.serve.formats import bad

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TAG_CHARS = 8  # hex characters of the server tag and of the worker tag that open every request id
AUTH_REALM = 'Bearer realm="gitml feedback"'


class Label(NamedTuple):
    request_id: str
    row: int
    label: str | float  # a class as text, or the true number of a regression model's row
    field: str  # where in the body it came from, for messages


def parse_feedback(doc: Any, classes: list[Any], max_items: int, max_rows: int) -> list[Label]:
    """``{"request_id", "row", "label"}``, ``{"request_id", "labels": [...]}`` or ``{"feedback": [...]}``.

    Returns one :class:`Label` per labelled row; labels must be among ``classes`` and rows
    below ``max_rows`` (no request has more rows than ``serve.max_batch_rows``). No classes:
    the model is a regression, and a label is a finite JSON number (a float).
    """
    if isinstance(doc, dict) and "feedback" in doc:
        if set(doc) != {"feedback"} or not isinstance(doc["feedback"], list) or not doc["feedback"]:
            raise bad('expected {"feedback": [{"request_id", "row", "label"}, ...]} and nothing else', "feedback")
        items = doc["feedback"]
    elif isinstance(doc, dict):
        items = [doc]
    else:
        raise bad('expected {"request_id": ..., "row": 0, "label": ...} or {"feedback": [...]}')
    known = {_class_key(c): str(c) for c in classes} if classes else None
    out: list[Label] = []
    problems: list[dict[str, str]] = []
    for position, item in enumerate(items):
        where = f"feedback[{position}]" if len(items) > 1 or "feedback" in doc else "(body)"
        out += _feedback_item(item, where, known, max_rows, problems)
        if len(out) > max_items:
            raise RequestError(413, f"more than {max_items} labels in one request <serve.max_batch_rows>")
    if problems:
        raise RequestError(400, f"The feedback is not valid ({len(problems)} problem(s)).", problems[:50])
    return out


def _feedback_item(item: Any, where: str, known: dict[str, str] | None, max_rows: int,
                   problems: list[dict[str, str]]) -> list[Label]:
    if not isinstance(item, dict):
        problems.append({"field": where, "message": "each feedback item is an object"})
        return []
    unknown = [k for k in item if k not in ("request_id", "row", "label", "labels")]
    request_id, row = item.get("request_id"), item.get("row", 0)
    if unknown:
        problems.append({"field": where, "message": f"unknown key(s) {', '.join(clip(repr(k)) for k in unknown[:5])}"})
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        problems.append({"field": f"{where}.request_id", "message": "expected the request id of a prediction "
                         "(the x-request-id header: letters, digits, . _ : -, at most 128)"})
    if ("label" in item) == ("labels" in item):
        problems.append({"field": where, "message": "give exactly one of 'label' (with 'row') or 'labels' (all rows)"})
        return []
    if "labels" in item:
        if "row" in item or not isinstance(item["labels"], list) or not item["labels"]:
            problems.append({"field": f"{where}.labels", "message": "labels is a non-empty list, one per row, "
                             "without 'row'"})
            return []
        labels = [(position, label, f"{where}.labels[{position}]", f"{where}.labels[{position}]")
                  for position, label in enumerate(item["labels"])]
        if len(labels) > max_rows:
            problems.append({"field": f"{where}.labels", "message": f"more labels than a request has rows "
                             f"(at most {max_rows} <serve.max_batch_rows>)"})
            return []
    else:
        if isinstance(row, float) and row.is_integer():  # JSON has one number type: 3.0 is row 3
            row = int(row)
        if type(row) is not int or not 0 <= row < max_rows:
            problems.append({"field": f"{where}.row", "message": f"row is an integer from 0 to {max_rows - 1} "
                             "(0 by default; no request has more rows <serve.max_batch_rows>)"})
            return []
        labels = [(row, item["label"], f"{where}.label", where)]
    out = []
    for position, label, field, item_field in labels:
        value = _label_value(label, known)
        if value is None:
            problems.append({"field": field, "message": _not_a_label(label, known)})
        else:
            out.append(Label(str(request_id), position, value, item_field))
    return out


def _label_value(label: Any, known: dict[str, str] | None) -> str | float | None:
    """The label as logged (a class as text, or for regression a float), or None if it is none."""
    if isinstance(label, bool) or not isinstance(label, (str, int, float)):
        return None
    if known is not None:
        return known.get(_class_key(label))
    if isinstance(label, str):
        return None
    try:
        number = float(label)  # an int past float's range raises
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _not_a_label(label: Any, known: dict[str, str] | None) -> str:
    if known is None:
        return f"{clip(repr(label))} is not a number: a regression model's label is the true value, a finite JSON number"
    return f"{clip(repr(label))} is not a class of the model; allowed: {clip(', '.join(known.values()), 200)}"


def _class_key(value: Any) -> str:
    # Labels round-trip through JSON, CSV and Parquet: 1, 1.0 and "1" name the same class.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


# ---------------------------------------------------------------------- request ids


class RequestIds:
    """Unguessable request ids: ``<server tag><worker tag><24 hex of a keyed hash of a counter>``.

    The hash is BLAKE2b keyed with 32 random bytes drawn once per process: its output cannot
    be predicted without the key, and no system call is made per request (os.urandom releases
    the GIL, and the log writer thread may then hold it for a whole switch interval). The
    server tag is shared by the workers of one ``gitml serve`` (it comes with the settings),
    the worker tag is this process's, so a worker can tell a sibling's id from a stranger's.
    """

    def __init__(self, server_tag: str):
        self.server_tag = server_tag[:TAG_CHARS].ljust(TAG_CHARS, "0")
        self.worker_tag = secrets.token_hex(TAG_CHARS // 2)
        self._prefix = self.server_tag + self.worker_tag
        self._key = secrets.token_bytes(32)
        self._count = itertools.count(1)  # next() on it is atomic: no lock between the loop and the pool

    def next(self) -> str:
        digest = hashlib.blake2b(next(self._count).to_bytes(8, "little"), key=self._key, digest_size=12).hexdigest()
        return self._prefix + digest

    def sibling(self, request_id: str) -> bool:
        """Whether ``request_id`` has the look of one drawn by another worker of this server."""
        return (len(request_id) == len(self._prefix) + 24 and request_id.startswith(self.server_tag)
                and request_id[TAG_CHARS:2 * TAG_CHARS] != self.worker_tag)


# ---------------------------------------------------------------------- the window


class _Answered:
    __slots__ = ("labelled", "rows")

    def __init__(self, rows: int):
        self.rows = rows
        self.labelled: bytearray | None = None  # one bit per row, made at the first label

    def has(self, row: int) -> bool:
        return self.labelled is not None and bool(self.labelled[row >> 3] & (1 << (row & 7)))

    def mark(self, row: int, on: bool) -> None:
        if self.labelled is None:
            self.labelled = bytearray((self.rows + 7) >> 3)
        if on:
            self.labelled[row >> 3] |= 1 << (row & 7)
        else:
            self.labelled[row >> 3] &= ~(1 << (row & 7)) & 0xFF


class FeedbackWindow:
    """The last ``size`` requests this process answered: id -> row count and labelled rows.

    About 250 bytes per remembered request, plus one bit per row of each labelled one.
    """

    def __init__(self, size: int, ids: RequestIds, workers: int = 1):
        self.size, self.ids, self.workers = max(1, size), ids, workers
        self._answered: OrderedDict[str, _Answered] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, request_id: str, rows: int) -> None:
        with self._lock:
            self._answered[request_id] = _Answered(rows)
            if len(self._answered) > self.size:
                self._answered.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answered)

    def claim(self, labels: list[Label]) -> None:
        """Mark every label's row as labelled, or mark none and raise a :class:`RequestError`.

        The status is the lowest among the problems: 400 (row out of range), 404 (request
        unknown here), 409 (row already labelled, or answered by another worker).
        """
        problems: list[tuple[int, dict[str, str]]] = []
        seen: set[tuple[str, int]] = set()
        with self._lock:
            for item in labels:
                status, message = self._check(item, seen)
                if status:
                    problems.append((status, {"field": item.field, "message": message}))
                seen.add((item.request_id, item.row))
            if not problems:
                for item in labels:
                    self._answered[item.request_id].mark(item.row, True)
                return
        status = min(s for s, _ in problems)
        raise RequestError(status, f"The feedback was refused ({len(problems)} problem(s)); no label of this "
                           "body was recorded.", [p for _, p in problems[:50]])

    def release(self, labels: list[Label]) -> None:
        """Undo :meth:`claim` (the log could not take the labels): the rows may be labelled again."""
        with self._lock:
            for item in labels:
                answered = self._answered.get(item.request_id)
                if answered is not None:
                    answered.mark(item.row, False)

    def _check(self, item: Label, seen: set[tuple[str, int]]) -> tuple[int, str]:
        request = clip(item.request_id, 60)
        answered = self._answered.get(item.request_id)
        if answered is None:
            if self.workers > 1 and self.ids.sibling(item.request_id):
                return 409, (f"request {request} was answered by another worker process of this server; each "
                             f"worker takes labels only for its own requests <serve.workers={self.workers}>: "
                             "post the label again on a new connection")
            return 404, (f"request {request} is unknown here: not answered by this server process, or older "
                         f"than the last {self.size} requests it remembers <serve.feedback_window_requests>")
        if not 0 <= item.row < answered.rows:
            return 400, f"row {item.row} is out of range: request {request} has {answered.rows} row(s)"
        if (item.request_id, item.row) in seen:
            return 409, f"row {item.row} of request {request} is labelled twice in this body"
        if answered.has(item.row):
            return 409, f"row {item.row} of request {request} already has a label; a row takes one label"
        return 0, ""


def bearer_matches(header: str | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time compare)."""
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode("utf-8", "replace"), token)


def feedback_responses() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries of /feedback's own refusals (beside 400, 413 and 415)."""
    from gitml.serve.openapi import ref

    described = {
        "401": "A token is configured (serve.feedback_token_env) and the Authorization header does not carry it.",
        "404": "A request id this server process does not know: never answered here, or older than its "
               "window (serve.feedback_window_requests).",
        "409": "A row that already has a label, a row labelled twice in the body, or a request answered "
               "by another worker process (post again on a new connection).",
        "503": "The feedback log cannot take the labels now (writer stopped or buffer full); nothing was "
               "recorded, post again later.",
    }
    return {code: {"description": text, "content": {"application/json": {"schema": ref("ErrorResponse")}}}
            for code, text in described.items()}
