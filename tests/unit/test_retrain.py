"""Pure parts of the retraining pull request: verdict, batch shape, content hash, branch name."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gitml.gitops.retrain import (
    RetrainError,
    RetrainResult,
    align_batch,
    batch_digest,
    drift_verdict,
)
from gitml.package.signature import Signature

SIGNATURE = Signature.from_dict({"inputs": [{"name": "a", "dtype": "float"}, {"name": "b", "dtype": "float"}],
                                 "outputs": {"label": "target", "classes": [0, 1]}})


@pytest.mark.parametrize(("data", "verdict"), [
    ({"drift": True}, True), ({"drift": False, "is_drift": True}, False), ({"is_drift": True}, True),
    ({"verdict": "drift"}, True), ({"verdict": "no drift"}, False), ({"verdict": "Drift "}, True),
])
def test_drift_verdict_accepts_the_known_shapes(tmp_path, data, verdict):
    (tmp_path / "drift.json").write_text(json.dumps(data))
    assert drift_verdict(tmp_path / "drift.json") is verdict


def test_drift_verdict_errors_name_the_file(tmp_path):
    with pytest.raises(RetrainError, match="gitml drift check"):
        drift_verdict(tmp_path / "drift.json")
    (tmp_path / "drift.json").write_text('{"p_val": 0.05}')
    with pytest.raises(RetrainError, match="no verdict"):
        drift_verdict(tmp_path / "drift.json")


def test_align_batch_orders_columns_and_maps_text_labels_to_classes():
    rows = pd.DataFrame({"b": [1.0, 2.0, 3.0], "extra": [9, 9, 9], "a": [4.0, 5.0, 6.0],
                         "target": ["1", "0", None]})
    batch = align_batch(rows, SIGNATURE, "target")
    assert list(batch.columns) == ["a", "b", "target"] and len(batch) == 2
    assert batch["target"].tolist() == [1, 0] and batch["target"].dtype == "int64"
    with pytest.raises(RetrainError, match="lack column"):
        align_batch(rows.drop(columns="a"), SIGNATURE, "target")


def test_batch_digest_is_content_not_index_and_sees_dtypes():
    frame = pd.DataFrame({"a": [1, 2], "target": [0, 1]})
    assert batch_digest(frame) == batch_digest(frame.set_axis([10, 11]))
    assert batch_digest(frame) != batch_digest(frame.astype({"a": "float64"}))
    assert batch_digest(frame) != batch_digest(frame.iloc[::-1])
    assert len(batch_digest(frame)) == 12


def test_description():  # the branch name is checked by `git check-ref-format`: tests/integration
    assert RetrainResult("nothing", reason="no drift detected").describe() == "nothing to do: no drift detected"


def test_align_batch_reads_a_regression_label_as_numbers_and_the_pr_gives_their_range():
    from gitml.gitops.retrain import pr_body

    signature = Signature.from_dict({"inputs": [{"name": "a", "dtype": "float"}],
                                     "outputs": {"label": "y", "task": "regression"}})
    rows = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": ["12.5", "0.1", "n/a", None]})  # a text log
    batch = align_batch(rows, signature, "y")
    assert batch["y"].dtype == "float64" and batch["y"].tolist() == [12.5, 0.1]  # exact, non-numbers left out
    body = pr_body("# Drift check: DRIFT", "b.parquet", batch, "y", [], regression=True)
    assert "- 2 rows; labels (y): mean 6.3, min 0.1, max 12.5" in body and "classes" not in body
