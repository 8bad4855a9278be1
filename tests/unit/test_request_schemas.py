"""The request schemas promise only what the server takes: text they allow is always served."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitml.package.signature import Signature
from gitml.serve.request_schemas import NUMERIC_TEXT, csv_pattern, feedback_schemas, numeric_text
from gitml.serve.tabular import parse_csv

SIGNATURE = {"inputs": [
    {"name": "x", "dtype": "float", "nullable": False},
    {"name": "n", "dtype": "int", "nullable": True},
    {"name": "plan", "dtype": "category", "nullable": False, "categories": ["basic", "pro+"]},
], "outputs": {"label": "target", "classes": [0, 1]}}
MODEL = SimpleNamespace(signature=Signature.from_dict(SIGNATURE).compiled, classes=[0, 1])


@given(st.from_regex(NUMERIC_TEXT, fullmatch=True))
def test_numeric_text_the_schema_allows_is_a_finite_number(text):
    assert math.isfinite(float(text.strip()))


@given(st.from_regex(numeric_text("int"), fullmatch=True))
def test_int_text_the_schema_allows_is_an_integer(text):
    assert float(text.strip()).is_integer()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(csv_pattern(MODEL), fullmatch=True).filter(lambda s: "\n" in s.strip()))
def test_csv_the_schema_allows_is_served(text):
    sig = Signature.from_dict(SIGNATURE).compiled
    parsed = parse_csv(text.encode(), sig, max_rows=10_000)
    assert parsed.n_rows == len([line for line in text.splitlines()[1:] if line])


def test_csv_pattern_refuses_unknown_categories_and_other_headers():
    pattern = re.compile(csv_pattern(MODEL))
    assert pattern.match("x,n,plan\n1.5,3,pro+\n2,,basic")
    assert not pattern.match("x,n,plan\n1.5,3,gold\n") and not pattern.match("x,plan\n1.5,basic\n")


def test_feedback_rows_stop_at_the_batch_limit():
    item = feedback_schemas(MODEL, max_rows=50)["FeedbackItem"]["oneOf"]
    assert item[0]["properties"]["row"]["maximum"] == 49 and item[1]["properties"]["labels"]["maxItems"] == 50
