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
MODEL = SimpleNamespace(signature=Signature.from_dict(SIGNATURE).compiled, classes=[0, 1], regression=False)


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


KINDS = {"inputs": [
    {"name": "day", "dtype": "datetime", "nullable": True},
    {"name": "city", "dtype": "category", "nullable": False, "categories": ["rome", "oslo"], "open": True},
    {"name": "flag", "dtype": "bool", "nullable": False},
], "outputs": {"label": "target", "classes": [0, 1]}}
KINDS_MODEL = SimpleNamespace(signature=Signature.from_dict(KINDS).compiled, classes=[0, 1], regression=False)


def test_dates_and_open_categories_in_the_column_schemas():
    from gitml.serve.oip import V2_DATATYPE, V2_TYPES
    from gitml.serve.request_schemas import column_schema

    day, city = (column_schema(c) for c in Signature.from_dict(KINDS).inputs[:2])
    assert day["anyOf"][1] == {"type": "null"} and day["anyOf"][0]["type"] == "string"
    assert re.match(day["anyOf"][0]["pattern"], "2031-12-28T23:59:59Z") and not re.match(day["anyOf"][0]["pattern"], "12")
    assert "enum" not in city and city["examples"] == ["rome", "oslo"]
    assert V2_TYPES["datetime"] == ("BYTES",) and V2_DATATYPE["datetime"] == "BYTES"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(csv_pattern(KINDS_MODEL), fullmatch=True).filter(lambda s: "\n" in s.strip()))
def test_csv_with_dates_and_open_levels_the_schema_allows_is_served(text):
    parsed = parse_csv(text.encode(), Signature.from_dict(KINDS).compiled, max_rows=10_000)
    # CSV ends a row at \r or \n only; str.splitlines would also split inside a level at \x0c or \x85
    assert parsed.n_rows == len([line for line in re.split(r"\r?\n", text)[1:] if line])


def test_an_arrow_timestamp_column_is_a_date():
    import pyarrow as pa

    from gitml.serve.formats import arrow_stream
    from gitml.serve.tabular import parse_arrow

    table = pa.table({"day": pa.array([0, None], pa.timestamp("s", tz="UTC")), "city": ["rome", "lima"],
                      "flag": [True, False]})
    parsed = parse_arrow(arrow_stream(table), Signature.from_dict(KINDS).compiled, max_rows=10)
    assert parsed.frame["day"].tolist()[0] == 0.0 and math.isnan(parsed.frame["day"].tolist()[1])


def test_an_empty_csv_field_is_a_missing_value_in_every_column_small_body_or_large():
    # Bodies under ARROW_CSV_BYTES read a blank category as the level '' and refused it as
    # "outside the allowed categories" (an open one read it as an unseen level); pyarrow,
    # past that size, and `gitml predict` read it as missing, as the CSV pattern promises.
    from gitml.serve.tabular import ARROW_CSV_BYTES

    sig = Signature.from_dict({"inputs": [
        {"name": "plan", "dtype": "category", "nullable": True, "categories": ["basic", "pro"]},
        {"name": "city", "dtype": "category", "nullable": True, "categories": ["rome"], "open": True},
        {"name": "day", "dtype": "datetime", "nullable": True},
        {"name": "flag", "dtype": "bool", "nullable": True},
        {"name": "n", "dtype": "int", "nullable": True},
    ], "outputs": {"label": "tier", "classes": ["bronze", "gold", "silver"]}}).compiled
    for copies in (1, 1000):
        body = ("plan,city,day,flag,n\n" + "basic,rome,2024-01-02,1,3\n,,,,\n" * copies).encode()
        assert (len(body) > ARROW_CSV_BYTES) == (copies > 1)
        frame = parse_csv(body, sig, max_rows=10_000).frame
        assert frame.iloc[1::2].isna().all().all() and frame.iloc[::2].notna().all().all()
