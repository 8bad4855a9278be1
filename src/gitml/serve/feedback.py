"""``POST /feedback`` bodies: true labels for rows of earlier predictions."""

from __future__ import annotations

import re
from typing import Any

from gitml.package.signature import clip
from gitml.serve.formats import RequestError, bad

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def parse_feedback(doc: Any, classes: list[Any], max_items: int) -> list[tuple[str, int, str]]:
    """``{"request_id", "row", "label"}``, ``{"request_id", "labels": [...]}`` or ``{"feedback": [...]}``.

    Returns ``(request_id, row, label text)`` triples; labels must be among ``classes``.
    """
    if isinstance(doc, dict) and "feedback" in doc:
        if set(doc) != {"feedback"} or not isinstance(doc["feedback"], list) or not doc["feedback"]:
            raise bad('expected {"feedback": [{"request_id", "row", "label"}, ...]} and nothing else', "feedback")
        items = doc["feedback"]
    elif isinstance(doc, dict):
        items = [doc]
    else:
        raise bad('expected {"request_id": ..., "row": 0, "label": ...} or {"feedback": [...]}')
    known = {_class_key(c): str(c) for c in classes}
    out: list[tuple[str, int, str]] = []
    problems: list[dict[str, str]] = []
    for position, item in enumerate(items):
        where = f"feedback[{position}]" if len(items) > 1 or "feedback" in doc else "(body)"
        out += _feedback_item(item, where, known, problems)
        if len(out) > max_items:
            raise RequestError(413, f"more than {max_items} labels in one request <serve.max_batch_rows>")
    if problems:
        raise RequestError(400, f"The feedback is not valid ({len(problems)} problem(s)).", problems[:50])
    return out


def _feedback_item(item: Any, where: str, known: dict[str, str], problems: list[dict[str, str]]) -> list[tuple[str, int, str]]:
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
        labels = list(enumerate(item["labels"]))
    else:
        if type(row) is not int or row < 0:
            problems.append({"field": f"{where}.row", "message": "row is an integer >= 0 (0 by default)"})
            return []
        labels = [(row, item["label"])]
    out = []
    for position, label in labels:
        text = known.get(_class_key(label)) if isinstance(label, (str, int, float)) and not isinstance(label, bool) else None
        if text is None:
            problems.append({"field": f"{where}.label", "message": f"{clip(repr(label))} is not a class of the "
                             f"model; allowed: {clip(', '.join(known.values()), 200)}"})
        else:
            out.append((str(request_id), position, text))
    return out


def _class_key(value: Any) -> str:
    # Labels round-trip through JSON, CSV and Parquet: 1, 1.0 and "1" name the same class.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
