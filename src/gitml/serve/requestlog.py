"""The request and feedback logs (docs/logs.md): buffered, hour-partitioned, atomic Parquet.

Appending is the only thing a request does: it hands over references to arrays it already
has, under a lock, in microseconds. A background thread turns the buffer into Parquet
files when it holds ``flush_rows`` rows or its oldest row is ``flush_seconds`` old; each
file is written under a temporary name, fsynced and renamed into
``<root>/<kind>/date=YYYY-MM-DD/hour=HH/part-<unix_ns>-<pid>-<seq>.parquet``. A failed
write keeps its rows for the next try, and :meth:`PartitionedLog.close` (graceful
shutdown) writes whatever is left, so no answered request is lost. A chunk that cannot be
written while the others of its flush can (bad data, not a full disk) is dropped with an
error, never left to block the rows after it. :meth:`PartitionedLog.offer` is append for
callers that must know the rows were taken: it refuses when the writer is not running or
its buffer is full (the feedback route answers 503 then, never 200 for a lost label).

On object storage (``serve.log_dir: s3://bucket/prefix``, docs/storage.md) objects cannot
be appended to or renamed: each part file is built in memory and written as one PUT of
its bytes under its final key, which readers see whole or not at all.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.package.logschema import INDEXED, LABEL_TEXT, PART_GLOB, REQUESTS
from gitml.serve.logtables import feedback_table, request_table
from gitml.serve.traffic import SHADOW
from gitml.utils.storage import Location, join, list_files, location, read_bytes, write_bytes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)
HOUR_US = 3_600_000_000


@dataclass
class RequestChunk:
    """One answered request: its clean input frame and what the model said."""

    request_id: str
    ts_us: int
    model_version: str
    # (input (name, dtype, nullable) triples, class names): one file holds one schema. No class
    # names: a regression model's answer, a number per row.
    schema: tuple[Any, ...]
    inputs: Any  # the clean input frame, or its float64 matrix when every input is numeric
    predicted: np.ndarray  # index of the predicted class of each row (into the schema's class names), or the number
    proba: np.ndarray | None  # class probabilities (n, k); None for regression

    @property
    def n_rows(self) -> int:
        return len(self.predicted)


@dataclass
class FeedbackChunk:
    ts_us: int
    items: list[tuple[str, int, Any]]  # (request_id, row, label): a class as text, or a number (regression)
    schema: str = LABEL_TEXT  # the label column's type (LABEL_TEXT or LABEL_NUMBER): one file holds one

    @property
    def n_rows(self) -> int:
        return len(self.items)


class PartitionedLog:
    """A thread-safe buffer of chunks, written as Parquet parts by size and by age."""

    def __init__(self, root: str | Path, kind: str, flush_rows: int, flush_seconds: float,
                 on_flush: Callable[[int], None] | None = None, on_error: Callable[[], None] | None = None,
                 max_pending_rows: int | None = None):
        self.folder = join(location(root, "serve.log_dir"), kind)  # a local Path, or a URL
        self.kind, self.flush_rows, self.flush_seconds = kind, max(1, flush_rows), max(0.01, flush_seconds)
        self.on_flush, self.on_error = on_flush, on_error
        self.max_pending_rows = max_pending_rows  # offer() refuses past this many buffered rows
        self.dropped_rows = 0  # rows of chunks that could not be written on their own
        self._chunks: list[Any] = []
        self._rows = 0
        self._oldest: float | None = None
        self._lock = threading.Lock()  # guards the buffer
        self._write_lock = threading.Lock()  # one writer at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- buffer
    def append(self, chunk: Any) -> None:
        with self._lock:
            full = self._buffer(chunk)
        if full:
            self._wake.set()

    def _buffer(self, chunk: Any) -> bool:
        """Add ``chunk`` (the caller holds the lock); True when the buffer is due for a flush."""
        self._chunks.append(chunk)
        self._rows += chunk.n_rows
        if self._oldest is None:
            self._oldest = time.monotonic()
        return self._rows >= self.flush_rows

    def offer(self, chunk: Any) -> str | None:
        """Append ``chunk`` if the writer will write it; otherwise say why not (nothing appended)."""
        with self._lock:
            if not self.running:
                return f"the {self.kind} log writer is not running"
            if self.max_pending_rows is not None and self._rows + chunk.n_rows > self.max_pending_rows:
                return (f"the {self.kind} log holds {self._rows} unwritten row(s), its limit is "
                        f"{self.max_pending_rows}")
            full = self._buffer(chunk)
        if full:
            self._wake.set()
        return None

    @property
    def pending_rows(self) -> int:
        return self._rows

    @property
    def running(self) -> bool:  # its writer thread runs: started, not closed
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> PartitionedLog:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"gitml-{self.kind}-log", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the flusher and write every buffered row (graceful shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        for _ in range(3):
            if self.flush() or not self._rows:
                break
        if self._rows:
            log.error("%d %s log row(s) could not be written under %s and are lost at shutdown",
                      self._rows, self.kind, self.folder)

    def _run(self) -> None:
        tick = min(self.flush_seconds / 4, 0.5)
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            oldest = self._oldest
            if self._rows >= self.flush_rows or (
                    oldest is not None and time.monotonic() - oldest >= self.flush_seconds):
                self.flush()

    # ---------------------------------------------------------------- write
    def flush(self) -> bool:
        """Write the buffer now; False (rows kept for the next try) when writing failed."""
        with self._write_lock:
            with self._lock:
                chunks, self._chunks, rows, self._rows, self._oldest = self._chunks, [], self._rows, 0, None
            if not chunks:
                return True
            groups = self._groups(chunks)
            for done, (hour, group) in enumerate(groups):
                try:
                    self._write(hour, self._build(group))
                except Exception:
                    log.exception("could not write %d %s log row(s) under %s; writing chunk by chunk",
                                  rows, self.kind, self.folder)
                    if self.on_error:
                        self.on_error()
                    if done and self.on_flush:
                        self.on_flush(sum(c.n_rows for _, g in groups[:done] for c in g))
                    return self._write_apart([c for _, g in groups[done:] for c in g])
        if self.on_flush:
            self.on_flush(rows)
        return True

    def _write_apart(self, chunks: list[Any]) -> bool:
        """Write each chunk alone, so one chunk that cannot be written does not hold the others back.

        A chunk that fails on its data (not an OSError) while another chunk was written is
        bad data: it is dropped with an error naming its request ids. The others that fail
        (a full disk, a missing folder, or nothing written at all) are kept for the next try.
        Caller holds the write lock.
        """
        failed: list[tuple[Any, Exception]] = []
        written = 0
        for chunk in chunks:
            try:
                self._write(chunk.ts_us // HOUR_US, self._build([chunk]))
            except Exception as exc:
                failed.append((chunk, exc))
            else:
                written += chunk.n_rows
        if written and self.on_flush:
            self.on_flush(written)
        keep = []
        for bad, error in failed:
            if len(failed) < len(chunks) and not isinstance(error, OSError):
                self.dropped_rows += bad.n_rows
                log.error("dropped %d %s log row(s) of request(s) %s that cannot be written: %s",
                          bad.n_rows, self.kind, _chunk_ids(bad), error)
            else:
                keep.append(bad)
        if not keep:
            return True
        with self._lock:
            self._chunks[:0] = keep
            self._rows += sum(chunk.n_rows for chunk in keep)
            self._oldest = self._oldest or time.monotonic()
        log.error("kept %d %s log chunk(s) for the next try", len(keep), self.kind)
        return False

    def _groups(self, chunks: list[Any]) -> list[tuple[int, list[Any]]]:
        """Chunks by (hour, schema): one file each."""
        groups: dict[Any, list[Any]] = defaultdict(list)
        for chunk in chunks:
            groups[(chunk.ts_us // HOUR_US, getattr(chunk, "schema", None))].append(chunk)
        return [(hour, group) for (hour, _), group in sorted(groups.items(), key=lambda g: g[0][0])]

    def _build(self, chunks: list[Any]) -> pa.Table:
        return request_table(chunks) if self.kind in (REQUESTS, SHADOW) else feedback_table(chunks)

    def _write(self, hour: int, table: pa.Table) -> Path | str:
        import pyarrow as pa
        import pyarrow.parquet as pq

        stamp = time.gmtime(hour * 3600)
        hour_folder = (f"date={time.strftime('%Y-%m-%d', stamp)}", f"hour={stamp.tm_hour:02d}")
        name = f"part-{time.time_ns()}-{os.getpid()}-{next(self._seq)}.parquet"
        # Dictionary-encode the text columns only: on floats it costs 3x the write. Statistics
        # only where readers filter (time, ids, version, class): on every feature column they
        # cost a fifth of the write and no reader prunes on them. No Arrow schema in the file:
        # readers see plain strings, not the dictionaries the table was built with. The write
        # goes through pyarrow's own file, which does not hold the GIL while it writes.
        text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)]
        options = {"use_dictionary": text, "write_statistics": list(INDEXED), "store_schema": False}
        if isinstance(self.folder, str):
            return self._put(join(self.folder, *hour_folder, name), table, options)
        folder = self.folder.joinpath(*hour_folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        try:
            pq.write_table(table, str(tmp), **options)
            descriptor = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(tmp, folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        return folder / name

    @staticmethod
    def _put(url: Location, table: pa.Table, options: dict[str, Any]) -> Location:
        """One object built in memory, sent in one PUT; failing to send is an OSError (rows kept)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **options)  # bad data fails here, before anything is sent
        try:
            write_bytes(str(url), sink.getvalue().to_pybytes())
        except Exception as exc:
            raise OSError(f"cannot write {url}: {type(exc).__name__}: {exc}") from exc
        return url


def _chunk_ids(chunk: Any) -> str:
    if isinstance(chunk, FeedbackChunk):
        return ", ".join(sorted({str(item[0])[:60] for item in chunk.items})[:5])
    return str(getattr(chunk, "request_id", "?"))[:60]


def read_log(root: str | Path, kind: str = REQUESTS) -> pd.DataFrame:
    """Every part file of one log as a frame (tests and quick looks; readers may use any tool)."""
    import io

    import pandas as pd

    folder = join(location(root), kind)
    if isinstance(folder, Path):
        files: list[Any] = sorted(folder.glob(PART_GLOB))
    else:
        files = [io.BytesIO(read_bytes(str(join(folder, name)))) for name in sorted(list_files(folder))
                 if name.endswith(".parquet") and not name.rpartition("/")[2].startswith(".")]
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
