"""The request/feedback log writer: flush by rows and by age, hourly files, atomic, nothing lost."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from gitml.package.logschema import FEEDBACK, LABEL_NUMBER, REQUESTS
from gitml.serve.requestlog import (
    HOUR_US,
    FeedbackChunk,
    PartitionedLog,
    RequestChunk,
    read_log,
)

SCHEMA = ((("x", "float", False), ("n", "int", False), ("flag", "bool", False), ("color", "category", True)),
          ("no", "yes"))
NUMERIC = ((("x", "float", False), ("y", "float", False)), ("a", "b"))


def chunk(request_id: str, rows: int = 2, ts_us: int | None = None) -> RequestChunk:
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float), "n": [3.0] * rows, "flag": [1.0] * rows,
                          "color": ["red"] * (rows - 1) + [None]})
    proba = np.tile([0.25, 0.75], (rows, 1))
    return RequestChunk(request_id, ts_us or time.time_ns() // 1000, "v1", SCHEMA, frame, np.ones(rows, dtype=int),
                        proba)


def files(root, kind=REQUESTS):
    return sorted((root / kind).rglob("part-*.parquet"))


def test_rows_are_written_typed_as_the_signature_says(tmp_path):
    log = PartitionedLog(tmp_path, REQUESTS, flush_rows=100, flush_seconds=60)
    log.append(chunk("a", 3))
    log.append(chunk("b", 2))
    assert files(tmp_path) == [] and log.pending_rows == 5
    assert log.flush() and log.pending_rows == 0
    (part,) = files(tmp_path)
    schema = pq.read_schema(part)
    assert [str(schema.field(n).type) for n in ("request_id", "row", "ts", "model_version", "x", "n", "flag",
                                                   "color", "prediction", "proba_no", "proba_yes")] == [
        "string", "int64", "timestamp[us, tz=UTC]", "string", "double", "int64", "bool", "string", "string",
        "double", "double"]
    # Required where nothing can be missing (cheaper to write), optional where the signature allows it.
    assert [n for n in schema.names if schema.field(n).nullable] == ["color"]
    frame = read_log(tmp_path)
    assert frame["request_id"].tolist() == ["a", "a", "a", "b", "b"] and frame["row"].tolist() == [0, 1, 2, 0, 1]
    assert frame["color"].isna().tolist() == [False, False, True, False, True]
    assert frame["proba_yes"].tolist() == [0.75] * 5 and frame["prediction"].tolist() == ["yes"] * 5


def test_numeric_matrices_stack_like_frames(tmp_path):
    log = PartitionedLog(tmp_path, REQUESTS, flush_rows=100, flush_seconds=60)
    for i in range(3):
        matrix = np.array([[i, 10.0 + i]])
        log.append(RequestChunk(f"r{i}", time.time_ns() // 1000, "v1", NUMERIC, matrix, np.array([i % 2]),
                                np.array([[0.6, 0.4]])))
    log.close()
    frame = read_log(tmp_path)
    assert frame["x"].tolist() == [0, 1, 2] and frame["y"].tolist() == [10, 11, 12]
    assert frame["prediction"].tolist() == ["a", "b", "a"] and frame["row"].tolist() == [0, 0, 0]


def test_versions_and_missing_values_survive_one_flush_of_mixed_requests(tmp_path):
    # A swap mid-buffer: two versions in one file; a nullable column keeps its gaps as nulls.
    schema = ((("x", "float", False), ("y", "float", True)), ("a", "b"))
    log = PartitionedLog(tmp_path, REQUESTS, flush_rows=100, flush_seconds=60)
    for i, version in enumerate(["v1", "v1", "v2"]):
        matrix = np.array([[i, np.nan], [i, 1.0]]).T.copy().T  # stored column by column, as parsed requests are
        log.append(RequestChunk(f"r{i}", time.time_ns() // 1000, version, schema, matrix, np.array([0, 1]),
                                np.array([[0.9, 0.1], [0.2, 0.8]])))
    log.close()
    frame = read_log(tmp_path)
    assert frame["model_version"].tolist() == ["v1", "v1", "v1", "v1", "v2", "v2"]
    assert frame["request_id"].tolist() == ["r0", "r0", "r1", "r1", "r2", "r2"]
    assert frame["y"].isna().tolist() == [True, False] * 3 and frame["x"].tolist() == [0, 0, 1, 1, 2, 2]
    assert frame["prediction"].tolist() == ["a", "b"] * 3 and frame["proba_b"].tolist() == [0.1, 0.8] * 3
    assert frame["model_version"].dtype == object  # plain text for readers, whatever the writer built
    (part,) = files(tmp_path)
    assert pq.read_table(part)["y"].null_count == 3  # nulls, not NaN values


def test_flush_by_rows_and_by_age_in_the_background(tmp_path):
    # flush_seconds well above the 0.1 s "too young" wait, which a loaded machine can stretch
    log = PartitionedLog(tmp_path, REQUESTS, flush_rows=4, flush_seconds=1.0).start()
    try:
        log.append(chunk("a", 5))
        deadline = time.monotonic() + 20
        while not files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(files(tmp_path)) == 1
        log.append(chunk("b", 1))
        time.sleep(0.1)
        assert len(files(tmp_path)) == 1  # too young, too few
        deadline = time.monotonic() + 20
        while len(files(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(files(tmp_path)) == 2
    finally:
        log.close()


def test_files_rotate_by_utc_hour_and_leave_no_temporaries(tmp_path):
    hour = 1_700_000_000_000_000 // HOUR_US * HOUR_US  # 2023-11-14 22:00 UTC
    log = PartitionedLog(tmp_path, REQUESTS, flush_rows=100, flush_seconds=60)
    log.append(chunk("a", 1, hour + 5))
    log.append(chunk("b", 1, hour + HOUR_US + 5))
    log.close()
    names = [p.relative_to(tmp_path / REQUESTS).parent.as_posix() for p in files(tmp_path)]
    assert names == ["date=2023-11-14/hour=22", "date=2023-11-14/hour=23"]
    assert all(p.name.startswith("part-") and p.name.count("-") == 3 for p in files(tmp_path))
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("part-")]


def test_a_failed_write_keeps_the_rows_for_the_next_try(tmp_path):
    errors = []
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the folder should be")
    log = PartitionedLog(blocker, FEEDBACK, flush_rows=100, flush_seconds=60, on_error=lambda: errors.append(1))
    log.append(FeedbackChunk(time.time_ns() // 1000, [("a", 0, "yes"), ("a", 1, "no")]))
    assert not log.flush() and errors == [1] and log.pending_rows == 2
    blocker.unlink()
    log.close()
    feedback = read_log(blocker, FEEDBACK)
    assert feedback[["request_id", "row", "label"]].values.tolist() == [["a", 0, "yes"], ["a", 1, "no"]]
    assert str(feedback["ts"].dtype) == "datetime64[us, UTC]"


def test_appends_from_many_threads_are_all_written(tmp_path):
    import threading

    log = PartitionedLog(tmp_path, REQUESTS, flush_rows=7, flush_seconds=0.05).start()

    def client(name: str) -> None:
        for i in range(50):
            log.append(chunk(f"{name}-{i}", 2))

    threads = [threading.Thread(target=client, args=(str(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    frame = read_log(tmp_path)
    assert len(frame) == 400 and frame["request_id"].nunique() == 200


@pytest.mark.parametrize("kind", [REQUESTS, FEEDBACK])
def test_reading_an_empty_log_is_an_empty_frame(tmp_path, kind):
    assert read_log(tmp_path, kind).empty


def test_a_row_that_cannot_be_written_does_not_block_the_rows_after_it(tmp_path):
    # The reproduction of issue 12: a row index past int64 used to fail every later flush.
    errors = []
    log = PartitionedLog(tmp_path, FEEDBACK, flush_rows=100, flush_seconds=60, on_error=lambda: errors.append(1))
    now = time.time_ns() // 1000
    log.append(FeedbackChunk(now, [("bad", 2**63, "yes")]))
    assert not log.flush() and log.pending_rows == 1  # alone it could be the disk: kept for the next try
    log.append(FeedbackChunk(now, [("a", 0, "yes")]))
    log.append(FeedbackChunk(now, [("b", 1, "no")]))
    assert log.flush() and log.pending_rows == 0 and log.dropped_rows == 1 and errors == [1, 1]
    log.append(FeedbackChunk(now, [("c", 0, "no")]))
    log.close()
    feedback = read_log(tmp_path, FEEDBACK)
    assert sorted(feedback[["request_id", "row"]].values.tolist()) == [["a", 0], ["b", 1], ["c", 0]]


def test_a_full_disk_drops_nothing(tmp_path, monkeypatch):
    log = PartitionedLog(tmp_path, FEEDBACK, flush_rows=100, flush_seconds=60)
    now = time.time_ns() // 1000
    log.append(FeedbackChunk(now, [("a", 0, "yes")]))
    log.append(FeedbackChunk(now, [("b", 0, "no")]))

    def no_space(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(PartitionedLog, "_write", no_space)
        assert not log.flush()
    assert log.pending_rows == 2 and log.dropped_rows == 0
    log.close()
    assert len(read_log(tmp_path, FEEDBACK)) == 2


def test_offer_takes_rows_only_when_the_writer_will_write_them(tmp_path):
    log = PartitionedLog(tmp_path, FEEDBACK, flush_rows=1000, flush_seconds=60, max_pending_rows=3)
    now = time.time_ns() // 1000
    assert "not running" in log.offer(FeedbackChunk(now, [("a", 0, "yes")]))
    log.start()
    assert log.offer(FeedbackChunk(now, [("a", 0, "yes"), ("a", 1, "no")])) is None
    full = log.offer(FeedbackChunk(now, [("b", 0, "yes"), ("b", 1, "no")]))
    assert "limit is 3" in full and log.pending_rows == 2
    assert log.offer(FeedbackChunk(now, [("c", 0, "no")])) is None
    log.close()  # graceful shutdown writes every row that was taken
    assert "not running" in log.offer(FeedbackChunk(now, [("d", 0, "yes")]))
    assert sorted(read_log(tmp_path, FEEDBACK)["request_id"]) == ["a", "a", "c"]


def test_a_regression_models_rows_log_the_number_and_no_probabilities(tmp_path):
    """No class names in the schema: ``prediction`` is the float64 the model answered, no proba_ columns;
    a classifier's requests in the same flush go to a file of their own."""
    regression = ((("x", "float", False), ("y", "float", False)), ())
    log = PartitionedLog(tmp_path, REQUESTS, flush_rows=100, flush_seconds=60)
    numbers = np.array([151.25, -3.5, np.inf])
    log.append(RequestChunk("r1", time.time_ns() // 1000, "v1", regression, np.array([[0.0, 1.0], [2.0, 3.0],
                                                                                     [4.0, 5.0]]), numbers, None))
    log.append(RequestChunk("r2", time.time_ns() // 1000, "v2", NUMERIC, np.array([[0.0, 1.0]]), np.array([1]),
                            np.array([[0.4, 0.6]])))
    log.close()
    layouts = {tuple(pq.read_schema(p).names): pq.read_schema(p) for p in files(tmp_path)}
    assert set(layouts) == {("request_id", "row", "ts", "model_version", "x", "y", "prediction"),
                            ("request_id", "row", "ts", "model_version", "x", "y", "prediction", "proba_a",
                             "proba_b")}
    schema = layouts[("request_id", "row", "ts", "model_version", "x", "y", "prediction")]
    assert str(schema.field("prediction").type) == "double" and not schema.field("prediction").nullable
    frame = read_log(tmp_path)
    mine = frame[frame["request_id"] == "r1"]
    assert mine["prediction"].tolist() == [151.25, -3.5, np.inf] and mine["row"].tolist() == [0, 1, 2]


def test_a_regression_models_labels_are_logged_as_float64(tmp_path):
    log = PartitionedLog(tmp_path, FEEDBACK, flush_rows=100, flush_seconds=60)
    log.append(FeedbackChunk(time.time_ns() // 1000, [("a", 0, 12.5), ("a", 1, -3.0)], LABEL_NUMBER))
    log.append(FeedbackChunk(time.time_ns() // 1000, [("b", 0, "yes")]))  # a classifier's, before a swap
    log.close()
    types = sorted(str(pq.read_schema(p).field("label").type) for p in files(tmp_path, FEEDBACK))
    assert types == ["double", "string"]
    labels = read_log(tmp_path, FEEDBACK).set_index("request_id")["label"]
    assert labels["a"].tolist() == [12.5, -3.0] and labels["b"] == "yes"
