"""Data larger than memory: every stage streamed in tiny chunks gives what the whole frame gives.

Chunks of a few rows force many chunks (and files) on small data: ingest writes the same
rows and types, validation the same report, prepare the same split rows and preprocessor,
batch prediction the same predictions, as one chunk (the in-memory path) does.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from gitml.config.schema import DataConfig, SourceConfig, SourceKind, SplitConfig
from gitml.data.checks import check_chunks, check_file
from gitml.data.chunks import Snapshot
from gitml.data.contract import ColumnSpec, Contract, check_frame, infer_contract
from gitml.data.infer_chunks import infer_from_chunks
from gitml.data.preprocess import Preprocessor
from gitml.data.sources import load_source, snake_case
from gitml.data.split import split_frame
from gitml.stages.ingest import ingest
from gitml.stages.prepare import prepare
from gitml.stages.validate import validate
from tests.kinds_data import dataset_a, dataset_b

WHOLE = 1_000_000  # one chunk: the in-memory path


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def _source_frame(rows: int = 40) -> pd.DataFrame:
    """Types only the whole file shows: blanks after the first chunks, a class named "NA"."""
    frame = pd.DataFrame({
        "Count": np.arange(rows),  # int in the first chunks, float once a blank appears
        "Flag": pd.Series([True, False] * (rows // 2), dtype=object),  # bool, object once a blank appears
        "City": ["Oslo", "Rome", "Lima", "Pune"] * (rows // 4),
        "Region": ["NA", "EU", "SA", "AS"] * (rows // 4),  # "NA" is a class, not a missing value
    })
    frame.loc[[25, 33], "Count"] = None
    frame.loc[31, "Flag"] = None
    return frame


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_ingest_in_chunks_writes_the_whole_frame_in_row_groups(tmp_path, kind):
    path = tmp_path / f"source.{kind}"
    if kind == "csv":
        _source_frame().to_csv(path, index=False)
    else:
        _source_frame().astype({"Count": "Int64", "Flag": "boolean"}).to_parquet(path, index=False)
    data = DataConfig(name="t", target="region", source=SourceConfig(kind=SourceKind[kind], path=str(path), label="Region"))
    whole = load_source(data.source, data.target)  # what ingest wrote before it streamed
    assert "NA" in set(whole["region"]) and whole["count"].dtype == ("float64" if kind == "csv" else "Int64")
    _write(whole, tmp_path / "whole.parquet")
    for chunk_rows, groups in ((WHOLE, 1), (7, 6)):
        written = ingest(dataclasses.replace(data, chunk_rows=chunk_rows), tmp_path / f"raw{chunk_rows}") / "data.parquet"
        assert pq.ParquetFile(written).num_row_groups == groups
        pd.testing.assert_frame_equal(pd.read_parquet(written), pd.read_parquet(tmp_path / "whole.parquet"))
    assert (tmp_path / f"raw{WHOLE}" / "data.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


def test_a_snapshot_types_each_chunk_as_the_whole_files_concatenated(tmp_path):
    first = _write(pd.DataFrame({"n": [1, 2, 3, 4], "t": ["a", "b", None, "d"], "i": [1, 2, 3, 4],
                                 "f": [True, False, True, True]}), tmp_path / "a.parquet")
    second = _write(pd.DataFrame({"n": [5.5, None], "t": [None, None], "i": [5, 6], "f": [False, True]}),
                    tmp_path / "b.parquet")
    # a production batch without two columns: null there, as pandas.concat makes them (validation reports it)
    third = _write(pd.DataFrame({"n": [7.0], "t": ["e"]}), tmp_path / "c.parquet")
    snapshot = Snapshot([first, second, third])
    whole = pd.concat([pd.read_parquet(p) for p in (first, second, third)], ignore_index=True)
    chunks = list(snapshot.chunks(2))
    assert len(chunks) == 4 and all(list(c.dtypes) == list(whole.dtypes) for c in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    for name in ("n", "i", "f"):
        pd.testing.assert_series_equal(snapshot.column(name), whole[name])


def _messy() -> pd.DataFrame:
    return pd.DataFrame({
        "d": ["s", "t", None, "u", None, "v", 0.5, None], "y": [0, 1, 2, None, 1, 5, 0, 1],
        "c": [1.5, 20, 3, None, 2.5, -1, 2, 2], "b": ["x", "z", None, "w", "q", "x", "y", "y"],
        "a": [None, None, 5, 0.5, 7, None, 0.1, 0.2], "e": range(8),
    })


def test_a_check_in_chunks_reports_what_the_whole_frame_check_reports():
    contract = Contract(label="y", classes=[0, 1], columns={
        "a": ColumnSpec("float", 0, 1, max_null_fraction=0.3), "b": ColumnSpec("category", categories=["x", "y"]),
        "c": ColumnSpec("int", 0, 10), "d": ColumnSpec("float", 0, 1), "m": ColumnSpec("float")})
    frame = _messy()
    whole = check_frame(frame, contract, "snap")
    assert len(whole) == 13  # every rule kind: missing, undeclared, row checks, dtype, integral, null shares
    for size in (1, 3):
        rows, found = check_chunks([frame.iloc[i:i + size] for i in range(0, len(frame), size)], contract,
                                   "snap", list(frame.columns))
        assert (rows, found) == (len(frame), whole), size


def test_a_contract_inferred_in_chunks_is_the_whole_frames(tmp_path):
    frame = dataset_a(rows=400)  # ints and floats with nulls, a date, bools, an id, a many-level category
    frame.columns = [snake_case(c) for c in frame.columns]
    stamps = pd.Timestamp("2022-01-01") + pd.to_timedelta(np.arange(400) * 3600, unit="s")
    frame = frame.assign(stamp=stamps, stamp_text=stamps.astype(str), level=[f"L{i % 80}" for i in range(400)],
                         dates_then_text=["2022-01-01"] * 300 + ["x"] * 100)
    path = _write(frame, tmp_path / "data.parquet")
    whole = infer_contract(pd.read_parquet(path), "churned")
    assert {spec.dtype for spec in whole.columns.values()} == {"int", "float", "bool", "category", "datetime"}
    assert whole.excluded and any(spec.open for spec in whole.columns.values())
    for chunk_rows in (9, WHOLE):
        assert infer_from_chunks(Snapshot([path]), "churned", chunk_rows).to_dict() == whole.to_dict()


def test_validate_in_chunks_writes_the_same_report_and_contract(tmp_path):
    raw = _write(dataset_b(rows=120), tmp_path / "raw" / "data.parquet")
    bad = dataset_b(rows=40, seed=9)
    bad.loc[3:6, "Spend (EUR)"] = 1e9
    bad.loc[:20, "Region"] = None  # a null share over the limit, though no 7-row chunk holds it all
    bad.columns = [snake_case(c) for c in bad.columns]
    _write(bad, tmp_path / "production" / "batch.parquet")
    frame = pd.read_parquet(raw)
    frame.columns = [snake_case(c) for c in frame.columns]
    _write(frame, raw)
    reports = []
    for chunk_rows in (WHOLE, 7):
        data = DataConfig(name="t", target="tier", source=SourceConfig(kind=SourceKind.parquet), chunk_rows=chunk_rows)
        with pytest.raises(Exception, match="failed"):
            validate(data, tmp_path / "raw", tmp_path / "production", tmp_path / "c.json", tmp_path / f"r{chunk_rows}.json")
        reports.append(json.loads((tmp_path / f"r{chunk_rows}.json").read_text()))
    assert reports[0] == reports[1] and len(reports[0]["failures"]) >= 2
    contract = infer_contract(frame, "tier")
    assert check_file(raw, contract, 7) == (120, check_frame(frame, contract, str(raw)))


@pytest.mark.parametrize("regression", [False, True])
def test_prepare_in_chunks_splits_the_same_rows_and_fits_the_same_preprocessing(tmp_path, regression):
    target = "spend_eur" if regression else "tier"
    raw, later = dataset_b(rows=150), dataset_b(rows=60, seed=9)
    for frame in (raw, later):
        frame.columns = [snake_case(c) for c in frame.columns]
    if regression:
        raw, later = (f.dropna(subset=[target]).drop(columns=["tier"]) for f in (raw, later))
    files = [_write(raw, tmp_path / "raw" / "data.parquet"), _write(later, tmp_path / "production" / "batch.parquet")]
    whole = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)  # what prepare read before
    contract = infer_contract(whole, target, task="regression" if regression else None)
    (tmp_path / "contract.json").write_text(json.dumps(contract.to_dict()))
    split = SplitConfig(test_size=0.2, val_size=0.25, seed=3)
    data = DataConfig(name="t", target=target, source=SourceConfig(kind=SourceKind.parquet), split=split)
    expected = split_frame(whole, target, split, regression)
    prep = Preprocessor.fit(expected["train"], contract, data.preprocess)
    summaries = []
    for chunk_rows in (WHOLE, 7):
        out = tmp_path / f"prepared{chunk_rows}"
        summaries.append(prepare(dataclasses.replace(data, chunk_rows=chunk_rows), tmp_path / "raw",
                                 tmp_path / "production", tmp_path / "contract.json", out))
        for name, part in expected.items():  # what prepare wrote before: each split in one to_parquet
            pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"),
                                          pd.read_parquet(_write(part, tmp_path / "expected" / f"{name}.parquet")))
            features = pd.read_parquet(out / "features" / f"{name}.parquet")
            np.testing.assert_allclose(features.drop(columns=[target]).to_numpy(), prep.transform(part), rtol=1e-6)
        fitted = Preprocessor.load(out / "preprocessor.json").to_dict()
        assert fitted.keys() == prep.to_dict().keys()
        for key in ("fill", "center", "scale"):
            assert fitted[key] == pytest.approx(prep.to_dict()[key], rel=1e-9)
        assert fitted["levels"] == prep.to_dict()["levels"]
    assert pq.ParquetFile(tmp_path / f"prepared{7}" / "train.parquet").num_row_groups > 10
    assert summaries[0] == summaries[1] and summaries[0]["rows"]["production"] == len(later)


def test_batch_prediction_in_chunks_predicts_what_one_chunk_predicts(tmp_path):
    from gitml.package.bundle import load_bundle
    from gitml.package.predict import predict_file
    from tests.tiny_bundles import rows, tiny_bundle

    bundle = load_bundle(tiny_bundle(tmp_path / "bundle"), model=False)
    source = _write(rows(45, seed=4), tmp_path / "rows.parquet")
    outputs = []
    for chunk_rows in (WHOLE, 4):
        assert predict_file(bundle, source, tmp_path / f"p{chunk_rows}.parquet", chunk_rows) == 45
        outputs.append(pd.read_parquet(tmp_path / f"p{chunk_rows}.parquet"))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    assert pq.ParquetFile(tmp_path / "p4.parquet").num_row_groups == 12
