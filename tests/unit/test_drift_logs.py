"""Reading the request and feedback logs (docs/logs.md) with windows, joins and label types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitml.errors import RequestLogError
from gitml.monitor.logs import labelled, read_feedback, read_requests
from tests.drift_helpers import START, write_feedback, write_requests


def features(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "colour": rng.choice(["red", "blue"], size=n)})


def test_no_log_gives_an_empty_frame_with_the_metadata_columns(tmp_path):
    frame = read_requests(tmp_path / "nowhere", window_rows=10)
    assert frame.empty and list(frame.columns) == ["request_id", "row", "ts", "model_version"]
    assert read_feedback(tmp_path).empty
    assert labelled(tmp_path, "target", ["x"]).columns.tolist() == ["x", "target"]


def test_rows_from_several_hours_and_files_come_back_sorted_by_time(tmp_path):
    # 3 hours of traffic, one row a minute, written in files of 7 rows in shuffled order.
    logged = write_requests(tmp_path, features(180), every_seconds=60, rows_per_file=7)
    frame = read_requests(tmp_path)
    assert len(frame) == 180
    assert frame["ts"].is_monotonic_increasing
    assert str(frame["ts"].dt.tz) == "UTC"
    assert frame["x"].tolist() == logged["x"].tolist()
    hours = {p.parent.name for p in (tmp_path / "requests").rglob("*.parquet")}
    assert hours == {"hour=08", "hour=09", "hour=10"}


@pytest.mark.parametrize("window_rows", [1, 59, 60, 61, 100, 179, 180, 500])
def test_window_rows_is_the_last_n_rows_whatever_the_hour_folders(tmp_path, window_rows):
    logged = write_requests(tmp_path, features(180), every_seconds=60, rows_per_file=11)
    frame = read_requests(tmp_path, window_rows=window_rows)
    assert frame["x"].tolist() == logged["x"].tolist()[-window_rows:]


def test_window_rows_reads_an_older_hour_when_a_late_flush_put_new_rows_there(tmp_path):
    # A row predicted at 08:00:30 but flushed after 09:00 lands in hour=09: the newest
    # rows are spread over two folders and the reader must not stop at the first.
    write_requests(tmp_path, features(10), start=START, every_seconds=1, prefix="early")
    late = pd.DataFrame({"request_id": ["late"], "row": [0], "ts": [START + pd.Timedelta(seconds=30)],
                         "model_version": ["v1"], "x": [99.0], "colour": ["red"]})
    folder = tmp_path / "requests/date=2026-11-29/hour=09"
    folder.mkdir(parents=True)
    late.to_parquet(folder / "part-1-1-0.parquet")
    frame = read_requests(tmp_path, window_rows=3)
    assert 99.0 in frame["x"].tolist() and len(frame) == 3


def test_window_hours_counts_back_from_now_and_both_limits_take_the_smaller(tmp_path):
    write_requests(tmp_path, features(180), every_seconds=60)  # 08:00 .. 10:59
    now = START + pd.Timedelta(hours=3)  # 11:00
    assert len(read_requests(tmp_path, window_hours=1, now=now)) == 60
    assert len(read_requests(tmp_path, window_hours=0.5, now=now)) == 30
    assert len(read_requests(tmp_path, window_hours=1, window_rows=10, now=now)) == 10
    assert len(read_requests(tmp_path, window_hours=0.25, window_rows=100, now=now)) == 15
    assert read_requests(tmp_path, window_hours=1, now=now + pd.Timedelta(hours=5)).empty
    # A naive `now` is taken as UTC.
    assert len(read_requests(tmp_path, window_hours=1, now=now.tz_localize(None).to_pydatetime())) == 60


def test_temporary_files_are_not_read_and_a_damaged_file_is_named(tmp_path):
    write_requests(tmp_path, features(20))
    folder = next((tmp_path / "requests").rglob("hour=*"))
    (folder / ".part-9-9-9.parquet.tmp.parquet").write_bytes(b"half written")
    assert len(read_requests(tmp_path)) == 20
    (folder / "part-9-9-9.parquet").write_bytes(b"not parquet")
    with pytest.raises(RequestLogError, match=r"part-9-9-9\.parquet"):
        read_requests(tmp_path)


def test_first_label_stands_as_on_the_server_and_labelled_is_the_inner_join(tmp_path):
    logged = write_requests(tmp_path, features(30))
    write_feedback(tmp_path, logged.iloc[:10], [0] * 10)
    write_feedback(tmp_path, logged.iloc[5:12], [1] * 7, delay_seconds=120)  # a repeat for 5..9 (two servers, or a file shipped twice)
    labels = read_feedback(tmp_path)
    assert len(labels) == 12 and not labels.duplicated(["request_id", "row"]).any()
    rows = labelled(tmp_path, "target", ["x", "colour"])
    assert rows.columns.tolist() == ["x", "colour", "target"]
    assert len(rows) == 12
    by_x = dict(zip(rows["x"], rows["target"], strict=True))
    assert [by_x[x] for x in logged["x"][:12]] == [0] * 10 + [1] * 2  # the server keeps the first too (409)
    assert rows["target"].dtype == "int64"  # integer text labels come back as integers


def test_labels_take_the_bundle_classes_type_or_stay_text(tmp_path):
    logged = write_requests(tmp_path, features(6))
    write_feedback(tmp_path, logged, ["yes", "no", "yes", "no", "yes", "maybe"])
    assert labelled(tmp_path, "y", ["x"])["y"].tolist() == ["yes", "no", "yes", "no", "yes", "maybe"]
    typed = labelled(tmp_path / "other", "y", ["x"])
    assert typed.empty
    mixed = tmp_path / "mixed"
    logged = write_requests(mixed, features(4))
    write_feedback(mixed, logged, ["1", "0", "1.0", "0"])
    assert labelled(mixed, "y", ["x"], classes=[0, 1])["y"].tolist() == [1, 0, 1, 0]


def test_labelled_honours_the_window(tmp_path):
    logged = write_requests(tmp_path, features(100))
    write_feedback(tmp_path, logged, [1] * 100)
    assert len(labelled(tmp_path, "target", ["x"], window_rows=25)) == 25


def test_a_feature_missing_from_the_log_is_named(tmp_path):
    logged = write_requests(tmp_path, features(5))
    write_feedback(tmp_path, logged, [1] * 5)
    with pytest.raises(RequestLogError, match="'age'"):
        labelled(tmp_path, "target", ["x", "age"])
