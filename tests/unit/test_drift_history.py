"""Drift history files (monitor/history.py): merging an open pull request's checks with a new run's, bounded."""

from __future__ import annotations

from pathlib import Path

from gitml.monitor.history import (
    COLUMNS,
    FEATURE_COLUMNS,
    FEATURES,
    HISTORY,
    _csv,
    merge_history,
    read_both,
)


def _write(folder: Path, checks: list[tuple[int, str, float]]) -> None:
    """``(run, hour, share drifted)`` per check, and one p-value row per check for feature x (= the share)."""
    folder.mkdir(parents=True)
    rows = [{"run": str(run), "time": f"2026-12-0{hour}T10:00:00+00:00", "verdict": "drift", "rows": "400",
             "share_drifted": str(share), "metric": "accuracy", "estimated": "0.8"} for run, hour, share in checks]
    (folder / HISTORY).write_text(_csv(COLUMNS, rows))
    (folder / FEATURES).write_text(_csv(FEATURE_COLUMNS, [{"run": str(run), "feature": "x", "p_value": str(share)}
                                                          for run, _, share in checks]))


def test_a_pull_request_update_keeps_the_checks_since_it_opened_in_time_order(tmp_path):
    # the branch: main's check on day 1, then checks on days 2 and 3 that only the branch holds
    _write(tmp_path / "branch", [(1, 1, 0.1), (2, 2, 0.2), (3, 3, 0.3)])
    # the new run started from main: day 1 (the same check), then today's, day 4
    _write(tmp_path / "run", [(1, 1, 0.1), (2, 4, 0.4)])
    assert merge_history(tmp_path / "run", read_both(tmp_path / "branch"), keep=10) == 4
    rows, features = read_both(tmp_path / "run")
    assert [(r["run"], r["share_drifted"]) for r in rows] == [("1", "0.1"), ("2", "0.2"), ("3", "0.3"), ("4", "0.4")]
    assert [(f["run"], f["p_value"]) for f in features] == [("1", "0.1"), ("2", "0.2"), ("3", "0.3"), ("4", "0.4")]

    assert merge_history(tmp_path / "run", read_both(tmp_path / "branch"), keep=2) == 2  # bounded: the newest two
    rows, features = read_both(tmp_path / "run")
    assert [r["share_drifted"] for r in rows] == ["0.3", "0.4"] and [f["run"] for f in features] == ["1", "2"]


def test_nothing_earlier_leaves_the_history_as_it_is(tmp_path):
    _write(tmp_path / "run", [(7, 1, 0.1)])
    before = (tmp_path / "run" / HISTORY).read_text()
    assert merge_history(tmp_path / "run", read_both(tmp_path / "missing"), keep=5) == 1
    assert (tmp_path / "run" / HISTORY).read_text() == before
