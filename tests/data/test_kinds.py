"""Column kinds real data has, one at a time: dates, booleans, many-level categories, nulls.

Data set (a) (tests/kinds_data.py): a 50-level and a 700-level category, a boolean and a
date with nulls, an id. Each test takes the contract inference makes of it, as
`gitml schema infer` would, and checks one kind through preprocessing and validation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from gitml.config.params import load_params
from gitml.config.rules_preprocess import preprocess_problems
from gitml.config.schema import CategoricalImpute, NumericImpute, PreprocessConfig
from gitml.data.contract import ColumnSpec, check_frame, infer_contract
from gitml.data.preprocess import Preprocessor
from gitml.data.sources import snake_case
from gitml.errors import ConfigError, InputValidationError
from gitml.monitor.encoding import FeatureEncoding
from gitml.package.signature import Signature
from gitml.package.validation import validate_input
from tests.kinds_data import dataset_a, future_rows

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def snake(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=snake_case)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return snake(dataset_a())


@pytest.fixture(scope="module")
def contract(frame):
    return infer_contract(frame, "churned")


def test_inference_gives_each_kind_and_the_source_passes(frame, contract):
    kinds = {name: spec.dtype for name, spec in contract.columns.items()}
    assert kinds == {"signup_date": "datetime", "age": "int", "balance": "float", "store": "category",
                     "city": "category", "newsletter": "bool"}
    assert set(contract.excluded) == {"customer_id"} and contract.classes == ["no", "yes"]
    assert len(contract.columns["store"].categories or []) == 50 and not contract.columns["store"].open
    city = contract.columns["city"]  # 684 levels seen: the 50 most frequent listed, the column open
    assert city.open and len(city.categories or []) == 50 and "city-000" in (city.categories or [])
    assert check_frame(frame, contract, "dataset-a") == []
    later = snake(future_rows(200)).assign(churned="no")  # later dates, unseen cities: still valid
    assert check_frame(later, contract, "later") == []


def test_dates_expand_into_numeric_parts_and_later_dates_are_valid(frame, contract):
    prep = Preprocessor.fit(frame, contract, PreprocessConfig(datetime_parts=["year", "dayofweek", "days"]))
    names = prep.feature_names()
    assert [n for n in names if n.startswith("signup_date")] == [
        "signup_date.year", "signup_date.dayofweek", "signup_date.days"]  # parts, never a category level
    later = snake(future_rows(50))
    matrix = prep.transform(later)
    assert np.isfinite(matrix).all()
    days = names.index("signup_date.days")
    train_days = prep.transform(frame)[:, days]
    dated = later["signup_date"].notna().to_numpy()
    assert (matrix[dated, days] > train_days.max()).all()  # the scale continues past the training range
    signature = Signature.from_contract(contract)
    clean = validate_input(later, signature)
    assert clean["signup_date"].dtype == np.float64  # epoch seconds, NaN where missing
    assert np.allclose(prep.transform(clean), matrix)  # a validated request encodes as the raw rows


@pytest.mark.parametrize("how, cap, city_width", [
    ("every level listed (closed)", None, 684),  # what inference wrote before: one column per level
    ("inferred: 50 frequent, open", None, 51),  # + "(other)"
    ("inferred, max_levels=20", 20, 21),
])
def test_many_levels_stay_bounded(frame, contract, how, cap, city_width):
    columns = dict(contract.columns)
    if how.startswith("every"):
        seen = sorted(frame["city"].dropna().unique().tolist())
        columns["city"] = ColumnSpec("category", categories=seen, max_null_fraction=0.1)
    listed = type(contract)(contract.label, contract.classes, columns, contract.excluded)
    prep = Preprocessor.fit(frame, listed, PreprocessConfig(max_levels=cap))
    names = prep.feature_names()
    assert sum(n.startswith("city=") for n in names) == city_width
    assert sum(n.startswith("store=") for n in names) == min(50, cap or 50) + (1 if cap and cap < 50 else 0)
    matrix = prep.transform(snake(future_rows(200)))
    assert matrix.nbytes == 200 * len(names) * 4  # one float32 matrix, rows x features
    if "(other)" in str(names):
        other = matrix[:, names.index("city=(other)")]
        assert other.sum() > 0  # unseen and rare cities land in "(other)", not in all zeros


def test_imputation_per_config_and_missing_indicators(frame, contract):
    cfg = PreprocessConfig(numeric_impute=NumericImpute.constant, fill_value=-1.0, scaling="none",
                           categorical_impute=CategoricalImpute.missing_level, missing_indicator=True)
    cfg.scaling = type(PreprocessConfig().scaling)("none")
    prep = Preprocessor.fit(frame, contract, cfg)
    names = prep.feature_names()
    assert {"age.missing", "balance.missing", "newsletter.missing", "signup_date.missing"} <= set(names)
    assert "store=(missing)" in names and "city=(missing)" in names
    matrix = prep.transform(frame)
    assert np.isfinite(matrix).all()
    missing_age = frame["age"].isna().to_numpy()
    assert (matrix[missing_age, names.index("age")] == -1.0).all()
    assert (matrix[:, names.index("age.missing")] == missing_age).all()
    assert (matrix[frame["store"].isna().to_numpy(), names.index("store=(missing)")] == 1.0).all()

    mean = Preprocessor.fit(frame, contract, PreprocessConfig(numeric_impute=NumericImpute.mean,
                                                               categorical_impute=CategoricalImpute.most_frequent))
    assert mean.fill["balance"] == pytest.approx(frame["balance"].mean())
    assert mean.category_fill["store"] == frame["store"].value_counts().index[0]
    store = mean.transform(frame)[:, mean.feature_names().index(f"store={mean.category_fill['store']}")]
    assert (store[frame["store"].isna().to_numpy()] == 1.0).all()


def test_booleans_take_true_false_and_0_1_and_nulls_where_the_contract_allows(contract):
    signature = Signature.from_contract(contract)
    spec = next(c for c in signature.inputs if c.name == "newsletter")
    assert spec.dtype == "bool" and spec.nullable
    rows = snake(future_rows(6)).dropna(subset=["age", "balance", "signup_date"])
    for values, expected in (([True, False], [1.0, 0.0]), ([1, 0], [1.0, 0.0]), (["true", "FALSE"], [1.0, 0.0]),
                             ([None, True], [np.nan, 1.0])):
        batch = rows.head(2).assign(newsletter=pd.Series(values, dtype=object, index=rows.index[:2]))
        got = validate_input(batch, signature)["newsletter"].to_numpy()
        assert np.array_equal(got, expected, equal_nan=True)
    with pytest.raises(InputValidationError, match="expected a boolean"):
        validate_input(rows.head(1).assign(newsletter="yes"), signature)  # yes/no is a category, not a bool


def test_dates_in_requests_iso_text_timestamps_and_refusals(contract):
    signature = Signature.from_contract(contract)
    rows = snake(future_rows(3)).dropna(subset=["age", "balance", "newsletter"])
    stamps = rows.assign(signup_date=pd.to_datetime(["2031-02-03T04:05:06Z", "2031-02-03T00:00:00Z", None][:len(rows)],
                                                    utc=True))
    text = rows.assign(signup_date=["2031-02-03T04:05:06+00:00", "2031-02-03", None][:len(rows)])
    assert np.allclose(validate_input(stamps, signature)["signup_date"], validate_input(text, signature)["signup_date"],
                       equal_nan=True)
    for bad in ("soon", 1700000000, "12"):
        with pytest.raises(InputValidationError, match="expected a date"):
            validate_input(rows.head(1).assign(signup_date=bad), signature)


def test_open_categories_take_unseen_levels_closed_ones_refuse(contract):
    signature = Signature.from_contract(contract)
    assert Signature.from_dict(signature.to_dict()) == signature
    rows = snake(future_rows(2)).dropna(subset=["age", "balance", "newsletter", "signup_date"]).head(1)
    assert validate_input(rows.assign(city="a city nobody saw"), signature)["city"].iloc[0] == "a city nobody saw"
    with pytest.raises(InputValidationError, match="outside the allowed categories"):
        validate_input(rows.assign(store="store-99"), signature)


def test_the_drift_encoding_leaves_dates_out(frame, contract):
    """Production rows are dated after training by nature: testing the date would fire every run."""
    signature = Signature.from_contract(contract)
    encoding = FeatureEncoding.fit(frame, signature)  # the reference sample: dates as text
    assert encoding.dates == ["signup_date"] and "signup_date" not in encoding.columns
    logged = validate_input(snake(future_rows(30)), signature)  # the request log: epoch seconds
    codes = encoding.codes(logged)
    assert codes.shape == (30, len(encoding.columns)) and np.isfinite(codes).all()
    assert FeatureEncoding.from_dict(encoding.to_dict()) == encoding


def test_preprocess_rules_name_the_key_and_the_file(tmp_path):
    assert preprocess_problems(PreprocessConfig()) == []
    keys = [key for key, _ in preprocess_problems(PreprocessConfig(datetime_parts=["year", "week"], max_levels=0))]
    assert keys == ["data.preprocess.datetime_parts", "data.preprocess.max_levels"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["preprocess"] = {**params["data"].get("preprocess", {}), "datetime_parts": ["fortnight"]}
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError) as info:
        load_params(bad)
    assert info.value.key == "data.preprocess.datetime_parts" and str(bad) in str(info.value)


def test_a_preprocessor_without_the_new_options_is_written_and_read_as_before(frame, contract):
    numeric_only = type(contract)(contract.label, contract.classes,
                                  {n: s for n, s in contract.columns.items() if n in ("age", "balance", "store")})
    prep = Preprocessor.fit(frame, numeric_only, PreprocessConfig())
    written = prep.to_dict()
    assert not {"dates", "origin", "indicators", "other", "missing_level", "category_fill"} & set(written)
    again = Preprocessor.from_bytes(__import__("json").dumps(written).encode(), "old.json")
    assert np.array_equal(again.transform(frame), prep.transform(frame))


def test_date_parts_agree_with_pandas_calendar_and_plain_iso_with_pandas_parser():
    from gitml.data.dates import DATE_PARTS, date_parts, epoch_seconds

    seconds = np.concatenate([np.random.default_rng(0).uniform(-2e9, 4e9, 20_000), [np.nan, 0.0, -1.0, -86_400.0]])
    ours = date_parts(seconds, list(DATE_PARTS), origin=1e9)
    stamps = pd.DatetimeIndex(pd.to_datetime(np.floor(seconds), unit="s"))
    for j, part in enumerate(DATE_PARTS[:-1]):
        assert np.array_equal(ours[:, j], np.asarray(getattr(stamps, part), dtype=float), equal_nan=True), part
    assert np.allclose(ours[:, -1], (seconds - 1e9) / 86_400, equal_nan=True)
    texts = ["2024-05-31", "2024-05-31T14:00:00Z", "2024-05-31 14:00", "2024-05-31T14:00:00.25", None, "2024-02-30"]
    slow = epoch_seconds(pd.Series(texts * 300, dtype=object))  # over 1,000 values: pandas' parser only
    assert np.array_equal(epoch_seconds(pd.Series(texts, dtype=object)), slow[:6], equal_nan=True)
