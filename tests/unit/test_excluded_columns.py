"""Columns the data contract excludes (a date, an id): in the signature, and ignored by `gitml predict`.

A row as the source data has it carries them; the model never reads them, so predict drops
them with one note and answers as without them. Any other extra column is still refused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from gitml.errors import InputValidationError
from gitml.package.bundle import SIGNATURE, load_bundle
from gitml.package.signature import ExcludedInput, Signature
from gitml.package.validation import validate_input
from tests.tiny_bundles import FEATURES, rows, tiny_bundle, with_excluded


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return tiny_bundle(tmp_path_factory.mktemp("excluded") / "bundle", excluded=True)


@pytest.fixture
def predict(bundle_dir, gitml_main, tmp_path):
    def run(source: Path, out: Path, *options: str, check: bool = False):
        return gitml_main("predict", "--bundle", bundle_dir, source, "-o", out, *options, cwd=tmp_path, check=check)

    return run


def test_the_signature_records_the_excluded_columns_and_an_old_one_still_loads(bundle_dir, tmp_path):
    written = json.loads((bundle_dir / SIGNATURE).read_text())
    assert written["excluded"] == [{"name": "signup_date", "kind": "datetime"}, {"name": "customer_id", "kind": "id"}]
    signature = load_bundle(bundle_dir, model=False).signature
    assert signature.excluded == (ExcludedInput("signup_date", "datetime"), ExcludedInput("customer_id", "id"))
    assert signature.features == FEATURES  # not inputs: the model never reads them
    assert Signature.from_dict(signature.to_dict()) == signature
    old = {k: v for k, v in written.items() if k != "excluded"}  # a bundle written before the key
    assert Signature.from_dict(old).excluded == () and "excluded" not in Signature.from_dict(old).to_dict()
    assert "excluded" not in json.loads((tiny_bundle(tmp_path / "plain") / SIGNATURE).read_text())


def test_validation_drops_excluded_columns_and_refuses_other_extras(bundle_dir):
    signature = load_bundle(bundle_dir, model=False).signature
    plain = rows(6)
    clean = validate_input(with_excluded(plain), signature)
    assert list(clean.columns) == FEATURES
    pd.testing.assert_frame_equal(clean, validate_input(plain, signature))
    with pytest.raises(InputValidationError) as refused:
        validate_input(with_excluded(plain).assign(surprise=1.0), signature)
    assert [p["field"] for p in refused.value.problems] == ["surprise"]


def test_predict_ignores_the_date_and_id_with_one_note_and_answers_as_without(predict, tmp_path, caplog):
    plain, full = tmp_path / "plain.csv", tmp_path / "full.csv"
    rows(7).to_csv(plain, index=False)
    with_excluded(rows(7)).assign(y=1).to_csv(full, index=False)  # the label too: a row as the source has it
    predict(plain, tmp_path / "plain_out.csv", check=True)
    with caplog.at_level(logging.INFO):
        predict(full, tmp_path / "full_out.csv", "--chunk-rows", "3", check=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "full_out.csv"), pd.read_csv(tmp_path / "plain_out.csv"))
    notes = [r.getMessage() for r in caplog.records if "excludes them" in r.getMessage()]
    assert len(notes) == 1, notes
    assert "'signup_date' (datetime), 'customer_id' (id)" in notes[0]


def test_keep_columns_copies_the_id_and_a_header_only_file_with_them_passes(predict, tmp_path):
    full, out = tmp_path / "full.csv", tmp_path / "kept.csv"
    frame = with_excluded(rows(4))
    frame.to_csv(full, index=False)
    predict(full, out, "--keep-columns", check=True)
    assert pd.read_csv(out)["customer_id"].tolist() == frame["customer_id"].tolist()
    frame.iloc[:0].to_csv(tmp_path / "header.csv", index=False)
    done = predict(tmp_path / "header.csv", tmp_path / "empty.csv")
    assert done.returncode == 0, done.stderr


def test_a_truly_unknown_column_is_still_refused(predict, tmp_path):
    odd = tmp_path / "odd.csv"
    with_excluded(rows(3)).assign(surprise=2.0).to_csv(odd, index=False)
    result = predict(odd, tmp_path / "odd_out.csv")
    assert result.returncode == 1 and "surprise: unexpected column" in result.stderr
    assert "signup_date" not in result.stderr and "customer_id" not in result.stderr
