"""A window's rows, chosen on the keys and times alone before any other column becomes pandas.

:func:`gitml.monitor.logs.read_window` reads the row groups that can hold the window as
Arrow tables. Which rows make the window (newest first, a repeated ``(request_id, row)``
once, at its earliest copy, then the time and row limits) depends on three columns only,
so that choice is made on them, request ids as integer codes: only the window's rows of
the full tables are then turned into a frame. The peak is the Arrow tables plus one frame
of the window, where sorting and filtering a frame of everything read held two or three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitml.monitor.logfiles import stamps_ns, to_frame

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa


@dataclass
class Selection:
    """Positions (into the tables, in order) of the window's rows, oldest first, and its repeats."""

    positions: np.ndarray
    duplicates: int = 0  # rows in the window's time span dropped as repeats of a (request_id, row)
    conflicting: int = 0  # of those, repeats whose values differ from the row kept


def select(tables: list[pa.Table], window_rows: int | None, cutoff: Any) -> Selection:
    """The window's rows among ``tables`` (oldest file first), as :func:`read_window` defines them."""
    import numpy as np
    import pandas as pd

    stamps = np.concatenate([stamps_ns(t) for t in tables])
    order = np.argsort(stamps, kind="stable")  # among rows stamped alike, the order they were written in
    stamps = stamps[order]
    keys = pd.DataFrame({"id": _id_codes(tables)[order], "row": _rows(tables)[order]})
    repeat = keys.duplicated(keep="first").to_numpy()  # the earliest copy of a row stays
    keep = ~repeat
    if cutoff is not None:
        keep &= stamps >= pd.Timestamp(cutoff).value
    kept = np.flatnonzero(keep)  # into the sorted rows
    if window_rows is not None:
        kept = kept[max(len(kept) - max(int(window_rows), 0), 0):]
    selection = Selection(order[kept])
    if len(kept) and repeat.any():
        in_span = repeat & (stamps >= stamps[kept[0]])
        selection.duplicates = int(in_span.sum())
        # A repeat that is not an exact copy of an earlier row: the same id logged with other values.
        involved = keys.set_index(["id", "row"]).index.isin(keys[in_span].set_index(["id", "row"]).index)
        copies = rows_at(tables, order[involved]).duplicated(keep="first").to_numpy()
        selection.conflicting = selection.duplicates - int((copies & in_span[involved]).sum())
    return selection


def rows_at(tables: list[pa.Table], positions: np.ndarray) -> pd.DataFrame:
    """The rows at ``positions`` (into the tables, in order) as one frame, in that order."""
    import numpy as np

    starts = np.cumsum([0] + [t.num_rows for t in tables])
    ascending = np.sort(positions)
    owner = np.searchsorted(starts, ascending, side="right") - 1
    pieces = []
    for index in np.unique(owner):
        local = ascending[owner == index] - starts[index]
        table = tables[index]
        pieces.append(table if len(local) == table.num_rows else table.take(local))
    if not pieces:  # no row: the columns of every table, none of their rows
        pieces = [t.slice(0, 0) for t in tables]
    frame = to_frame(pieces)  # rows in ascending position order
    if len(positions) and not np.array_equal(ascending, positions):
        frame = frame.iloc[np.searchsorted(ascending, positions)].reset_index(drop=True)
    return frame


def _id_codes(tables: list[pa.Table]) -> np.ndarray:
    """``request_id`` as integer codes, one per distinct id across all tables (nulls: -1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.chunked_array([t.column("request_id").cast(pa.string()) for t in tables], pa.string())
    codes = pc.dictionary_encode(ids.combine_chunks()).indices
    return pc.fill_null(codes, -1).to_numpy(zero_copy_only=False).astype("int64", copy=False)


def _rows(tables: list[pa.Table]) -> np.ndarray:
    import numpy as np

    return np.concatenate([t.column("row").to_numpy() for t in tables])
