"""Signature validation: every rule, both paths (vectorised and per value), and their agreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitml.errors import InputValidationError
from gitml.package.signature import CompiledSignature, Signature
from gitml.package.validation import validate_columns, validate_input, validate_rows

SIGNATURE = Signature.from_dict({
    "format": "gitml.signature/v1",
    "inputs": [
        {"name": "x", "dtype": "float", "nullable": False, "min": 0.0, "max": 1.0},
        {"name": "n", "dtype": "int", "nullable": False},
        {"name": "flag", "dtype": "bool", "nullable": False},
        {"name": "maybe", "dtype": "float", "nullable": True},
        {"name": "color", "dtype": "category", "nullable": False, "categories": ["red", "green"]},
    ],
    "outputs": {"label": "target", "classes": [0, 1]},
})
NUMERIC = Signature.from_dict({"format": "gitml.signature/v1",
           "inputs": [{"name": f"f{i}", "dtype": "float", "nullable": False} for i in range(3)],
           "outputs": {"label": "target", "classes": ["a", "b"]}})


def good(rows: int = 2) -> dict[str, list]:
    return {"x": [0.5] * rows, "n": [3] * rows, "flag": [True] * rows, "maybe": [None] * rows,
            "color": ["red"] * rows}


def problems(columns, signature=SIGNATURE, **kwargs) -> dict[str, str]:
    with pytest.raises(InputValidationError) as info:
        validate_columns(columns, signature, **kwargs)
    return {p["field"]: p["message"] for p in info.value.problems}


def test_clean_columns_come_back_typed_in_signature_order():
    columns = good()
    frame = validate_columns(dict(reversed(list(columns.items()))), SIGNATURE)
    assert list(frame.columns) == ["x", "n", "flag", "maybe", "color"]
    assert frame["x"].dtype == np.float64 and frame["n"].tolist() == [3.0, 3.0]
    assert frame["flag"].tolist() == [1.0, 1.0] and frame["maybe"].isna().all()
    assert frame["color"].tolist() == ["red", "red"]


def test_every_problem_is_reported_with_field_and_rows():
    columns = good(7)
    columns["x"][1] = "abc"
    columns["n"][2] = 2.5
    columns["flag"][3] = 7
    columns["color"][4] = "blue"
    columns["color"][5] = 3
    del columns["maybe"]
    columns["surprise"] = [1] * 7
    found = problems(columns)
    assert found["x"] == "expected a number (float) (row(s) 1)"
    assert found["n"] == "expected an integer (row(s) 2)"
    assert found["flag"].startswith("expected a boolean")
    assert "outside the allowed categories ['green', 'red'] (e.g. 'blue')" in found["color"]
    assert found["maybe"] == "missing column" and found["surprise"].startswith("unexpected column")


def test_color_gets_both_a_type_and_a_category_problem():
    columns = good(3)
    columns["color"] = ["blue", 4, None]
    with pytest.raises(InputValidationError) as info:
        validate_columns(columns, SIGNATURE)
    messages = [p["message"] for p in info.value.problems if p["field"] == "color"]
    assert any("expected a string category (row(s) 1)" in m for m in messages)
    assert any("null not allowed (row(s) 2)" in m for m in messages)
    assert any("1 value(s) outside" in m for m in messages)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None, 10**400])
def test_non_finite_is_refused_unless_nullable(bad):
    columns = good(1)
    columns["x"] = [bad]
    assert problems(columns)["x"].startswith("NaN/inf not allowed")
    columns = good(1)
    columns["maybe"] = [bad]
    frame = validate_columns(columns, SIGNATURE)
    assert not math.isfinite(frame["maybe"].iloc[0])


def test_booleans_are_not_numbers_but_bool_columns_take_them_and_text():
    columns = good(1)
    columns["x"] = [True]
    assert problems(columns)["x"].startswith("expected a number")
    columns = good(4)
    columns["flag"] = [True, "false", "1", 0]
    assert validate_columns(columns, SIGNATURE)["flag"].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_numeric_text_is_accepted_and_an_empty_field_is_missing():
    columns = good(3)
    columns["x"] = ["0.25", " 1e-3 ", "2"]
    columns["maybe"] = ["", "1.5", None]
    frame = validate_columns(columns, SIGNATURE)
    assert frame["x"].tolist() == [0.25, 0.001, 2.0]
    assert math.isnan(frame["maybe"][0]) and frame["maybe"][1] == 1.5


def test_batch_limits():
    assert problems({k: [] for k in good()}) == {"(batch)": "empty batch: send at least one row"}
    assert "exceed the maximum of 1" in problems(good(2), max_rows=1)["(batch)"]


def test_messages_never_echo_long_inputs():
    columns = good(1)
    columns["color"] = ["z" * 10_000]
    columns["y" * 5_000] = [1]
    with pytest.raises(InputValidationError) as info:
        validate_columns(columns, SIGNATURE)
    for problem in info.value.problems:
        assert len(problem["field"]) <= 40 and len(problem["message"]) < 400


def test_validate_input_keeps_the_frame_index_in_row_numbers():
    frame = pd.DataFrame(good(3), index=[10, 11, 77])
    frame["x"] = frame["x"].astype(object)
    frame.loc[77, "x"] = "big"
    with pytest.raises(InputValidationError) as info:
        validate_input(frame, SIGNATURE)
    assert info.value.problems == [{"field": "x", "message": "expected a number (float) (row(s) 77)"}]
    clean = validate_input(frame.drop(index=77), SIGNATURE)
    assert list(clean.index) == [10, 11]


def test_numeric_fast_path_matches_the_general_path():
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["f0", "f1", "f2"])
    fast = validate_input(frame, NUMERIC)
    rows = validate_rows(frame.to_numpy().tolist(), ["f0", "f1", "f2"], NUMERIC)
    columns = validate_columns({c: frame[c].tolist() for c in frame.columns}, NUMERIC)
    shuffled = validate_rows(frame[["f2", "f0", "f1"]].to_numpy().tolist(), ["f2", "f0", "f1"], NUMERIC)
    for other in (rows, columns, shuffled):
        pd.testing.assert_frame_equal(fast, other)
    frame.iloc[4, 1] = np.nan
    with pytest.raises(InputValidationError, match="f1: NaN/inf not allowed"):
        validate_input(frame, NUMERIC)


def test_compiled_signature_is_reusable():
    sig = CompiledSignature.of(SIGNATURE)
    assert CompiledSignature.of(sig) is sig
    assert validate_columns(good(), sig).shape == (2, 5)


values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                   st.lists(st.integers(), max_size=2), st.sampled_from(["red", "green", "1.5", ""]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["x", "n", "flag", "maybe", "color", "other"]),
                       st.lists(values, min_size=1, max_size=4), min_size=1))
def test_any_input_is_either_clean_or_refused_with_field_problems(columns):
    lengths = {len(v) for v in columns.values()}
    n_rows = min(lengths)
    try:
        frame = validate_columns(columns, SIGNATURE, n_rows=n_rows)
    except InputValidationError as exc:
        assert exc.problems and all(set(p) == {"field", "message"} for p in exc.problems)
        return
    assert list(frame.columns) == ["x", "n", "flag", "maybe", "color"] and len(frame) == n_rows
    assert np.isfinite(frame[["x", "n", "flag"]].to_numpy()).all()


@pytest.mark.parametrize("no_booleans", [False, True])
def test_row_values_are_judged_alike_with_or_without_the_type_scan(no_booleans):
    names = ["f0", "f1", "f2"]
    clean = validate_rows([[1, "2.5", 3.0]], names, NUMERIC, no_booleans=no_booleans)
    assert clean.to_numpy().tolist() == [[1.0, 2.5, 3.0]]
    for row, field, words in [([1.0, None, 2.0], "f1", "NaN/inf"), ([1.0, {}, 2.0], "f1", "expected a number"),
                              ([[1], 2.0, 3.0], "f0", "expected a number"), ([1.0, 2.0, "x"], "f2", "expected a number"),
                              ([10**400, 1.0, 1.0], "f0", "NaN/inf")]:
        with pytest.raises(InputValidationError) as info:
            validate_rows([row], names, NUMERIC, no_booleans=no_booleans)
        assert info.value.problems[0]["field"] == field and words in info.value.problems[0]["message"]
    with pytest.raises(InputValidationError, match="f0: expected a number"):
        validate_rows([[True, 1.0, 1.0]], names, NUMERIC)


@pytest.mark.parametrize("value", [1e39, -3.5e38])
def test_a_number_beyond_float32_is_refused_on_every_path_even_when_nullable(value):
    # The model computes in float32: 1e39 overflowed to inf inside it and came back as NaN
    # probabilities with class 0 as the "prediction".
    frame = pd.DataFrame({"f0": [0.1, value], "f1": [0.2, 0.3], "f2": [0.4, 0.5]})
    with pytest.raises(InputValidationError, match="f0: outside the model's float32 range"):
        validate_input(frame, NUMERIC)
    with pytest.raises(InputValidationError, match="outside the model's float32 range"):
        validate_rows(frame.to_numpy().tolist(), ["f0", "f1", "f2"], NUMERIC)
    columns = good(1)
    columns["maybe"] = [value]
    assert problems(columns)["maybe"].startswith("outside the model's float32 range")
    validate_input(pd.DataFrame({"f0": [3.4e38], "f1": [0.0], "f2": [0.0]}), NUMERIC)  # the edge itself is fine


KINDS = Signature.from_dict({
    "format": "gitml.signature/v1",
    "inputs": [
        {"name": "signed_up", "dtype": "datetime", "nullable": True},
        {"name": "city", "dtype": "category", "nullable": False, "categories": ["rome", "oslo"], "open": True},
        {"name": "x", "dtype": "float", "nullable": False},
    ],
    "outputs": {"label": "target", "classes": [0, 1]},
})


def test_datetime_and_open_category_round_trip_and_older_signatures_lack_the_keys():
    assert Signature.from_dict(KINDS.to_dict()) == KINDS
    written = KINDS.to_dict()["inputs"]
    assert written[1]["open"] is True and "open" not in written[0] and "open" not in SIGNATURE.to_dict()["inputs"][4]
    assert not KINDS.compiled.all_numeric  # dates are text in a request: never the all-numbers fast path


def test_dates_come_back_as_epoch_seconds_from_text_objects_and_timestamps():
    import datetime as dt

    expected = [1717113600.0, 1717164000.0, math.nan, math.nan]
    texts = {"signed_up": ["2024-05-31", "2024-05-31T14:00:00Z", None, ""], "city": ["rome"] * 4, "x": [1.0] * 4}
    assert np.array_equal(validate_columns(texts, KINDS)["signed_up"], expected, equal_nan=True)
    objects = dict(texts, signed_up=[dt.date(2024, 5, 31), dt.datetime(2024, 5, 31, 14), None, math.nan])
    assert np.array_equal(validate_columns(objects, KINDS)["signed_up"], expected, equal_nan=True)
    stamps = pd.DataFrame(dict(texts, signed_up=pd.to_datetime(["2024-05-31 00:00", "2024-05-31 14:00", None, None])))
    assert np.array_equal(validate_input(stamps, KINDS)["signed_up"], expected, equal_nan=True)


def test_a_date_that_is_no_date_is_refused_and_nulls_only_where_allowed():
    found = problems({"signed_up": ["tomorrow", 1717113600, True], "city": ["rome"] * 3, "x": [1.0] * 3}, KINDS)
    assert "expected a date" in found["signed_up"] and "row(s) 0, 1, 2" in found["signed_up"]
    strict = Signature.from_dict({**KINDS.to_dict(), "inputs": [{"name": "d", "dtype": "datetime", "nullable": False}]})
    assert "null not allowed" in problems({"d": ["2024-01-01", None]}, strict)["d"]


def test_an_open_category_takes_any_text_but_still_only_text():
    clean = validate_columns({"signed_up": [None], "city": ["a town nobody saw"], "x": [1.0]}, KINDS)
    assert clean["city"].tolist() == ["a town nobody saw"]
    assert "expected a string category" in problems({"signed_up": [None], "city": [3], "x": [1.0]}, KINDS)["city"]


def test_an_int_column_s_bounds_are_written_alike():
    """signature.json wrote an int column's min as -4.0 and its max as 12: both are floats now."""
    from gitml.data.contract import ColumnSpec, Contract

    contract = Contract(label="y", classes=[0, 1], columns={"visits": ColumnSpec("int", min=-4, max=12)})
    entry = Signature.from_contract(contract).to_dict()["inputs"][0]
    assert (entry["min"], entry["max"]) == (-4.0, 12.0)
    assert type(entry["min"]) is type(entry["max"]) is float
