"""Batch prediction: CSV or Parquet in, streamed in chunks, CSV, Parquet or JSON out, written atomically.

The command should feel instant on a few rows, so this module imports pandas and pyarrow
only inside the functions that read or write rows, and checks the paths (output
extension, input file's existence, size and first bytes) before anything is imported or
the bundle is read: a wrong file is refused in milliseconds with what to do instead.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.errors import GitmlError, InputValidationError, UsageError
from gitml.utils.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from gitml.package.bundle import Bundle

log = logging.getLogger(__name__)

INPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json", ".jsonl": "jsonl"}
SNIFF_BYTES = 64 * 1024  # enough to tell text from binary; a file's first line is rarely longer
PARQUET_MAGIC = b"PAR1"  # first and last four bytes of every Parquet file
INPUT_HINT = "give a UTF-8 .csv file with a header line, or a .parquet file, holding the signature's feature columns."


def output_format(out: str | Path) -> str:
    """The format ``out``'s extension names; refuses any other extension."""
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise UsageError(f"Cannot write predictions to '{out}': unknown extension '{suffix}'. "
                         f"Allowed: {', '.join(OUTPUT_FORMATS)}.",
                         hint="name the output file with one of those extensions, e.g. -o scored.csv.")
    return OUTPUT_FORMATS[suffix]


def input_format(source: str | Path) -> str:
    """Check that ``source`` is a non-empty CSV or Parquet file and return its format.

    Reads at most the first and last 64 kB: a binary file named .csv, a Parquet file
    named .csv, or a .parquet file that is not Parquet is refused here, before pandas or
    pyarrow is imported, with one line saying what the file is and what is expected.
    """
    path = Path(source)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise GitmlError(f"Input file '{source}' {what}.", hint=INPUT_HINT)
    suffix = path.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise GitmlError(f"Cannot read '{source}': unknown extension '{suffix}'. Allowed: {', '.join(INPUT_FORMATS)}.",
                         hint="convert the file to CSV or Parquet, or rename it if it already is one.")
    size = path.stat().st_size
    if size == 0:
        raise GitmlError(f"Input file '{source}' is empty (0 bytes).",
                         hint="a CSV needs at least its header line; " + INPUT_HINT)
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        file.seek(max(size - 4, 0))
        tail = file.read(4)
    fmt = INPUT_FORMATS[suffix]
    is_parquet = head[:4] == tail == PARQUET_MAGIC
    if fmt == "parquet" and not is_parquet:
        raise GitmlError(f"Input file '{source}' is not a Parquet file (it lacks Parquet's PAR1 markers).",
                         hint="name a CSV file .csv; rewrite a damaged Parquet file from its source.")
    if fmt == "csv":
        if is_parquet:
            raise GitmlError(f"Input file '{source}' is a Parquet file named .csv.", hint="rename it to .parquet.")
        problem = _not_text(head)
        if problem:
            raise GitmlError(f"Input file '{source}' is not a CSV text file: {problem}.", hint=INPUT_HINT)
    return fmt


def _not_text(head: bytes) -> str | None:
    """Why ``head`` cannot start a UTF-8 text file, or None."""
    nul = head.find(b"\x00")
    if nul >= 0:
        return f"byte {nul} is a NUL byte (binary data)"
    try:  # incremental: a character cut at the sniff's end is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        return f"byte {exc.start} is not UTF-8 ({exc.reason})"
    return None


def read_chunks(path: Path, fmt: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Frames of at most ``chunk_rows`` rows; a file without rows yields one empty frame (its header)."""
    try:
        if fmt == "csv":
            import pandas as pd

            yield from pd.read_csv(path, chunksize=chunk_rows)  # a header-only file: one empty chunk
            return
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path, pre_buffer=False)  # one row group at a time (gitml.data.chunks)
        if parquet.metadata.num_rows == 0:
            yield parquet.schema_arrow.empty_table().to_pandas()
        for batch in parquet.iter_batches(batch_size=chunk_rows, use_threads=False):
            yield batch.to_pandas()
    except (ValueError, OSError) as exc:  # pandas' ParserError, UnicodeDecodeError and ArrowInvalid are ValueErrors
        raise GitmlError(f"Cannot read '{path}' as {fmt.upper()}: {str(exc).strip()}.", hint=INPUT_HINT) from exc


class _Output:
    """Appends frames to one file in the format of its extension (pandas and pyarrow do the encoding)."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self.started = path, fmt, False
        self._parquet: Any = None
        self._text = None if fmt == "parquet" else path.open("w", encoding="utf-8", newline="")
        if fmt == "json":
            self._text.write("[")  # type: ignore[union-attr]

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            self._write_parquet(frame)
        elif self.fmt == "csv":
            frame.to_csv(self._text, index=False, header=not self.started)
        elif len(frame):
            lines = self.fmt == "jsonl"
            text = frame.to_json(orient="records", lines=lines, double_precision=15)
            text = text.rstrip("\n") + "\n" if lines else ("," if self.started else "") + text[1:-1]
            self._text.write(text)  # type: ignore[union-attr]
        self.started = True

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        elif table.schema != self._parquet.schema:
            try:  # pandas infers each CSV chunk's types anew: an int column may come back float
                table = table.cast(self._parquet.schema)
            except (ValueError, TypeError) as exc:
                raise GitmlError(f"Cannot write '{self.path}': a column changed type between chunks ({exc}).",
                                 hint="raise --chunk-rows, or write .csv, or give the input consistent types.") from exc
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._text is not None:
            if self.fmt == "json":
                self._text.write("]\n")
            self._text.close()


def predict_file(bundle: Bundle, source: str | Path, out: str | Path, chunk_rows: int = 50_000,
                 keep_columns: bool = False) -> int:
    """Predict every row of ``source`` into ``out`` (format from its extension); returns the number of rows.

    Rows are validated against the bundle's signature chunk by chunk; the first invalid
    chunk stops the run with the problems (row numbers counted from the file's start) and
    ``out`` is not written. The label column, when the input still has it, is dropped with
    a note; so are the columns the data contract excludes from the features (dates, ids),
    which ``keep_columns`` still copies to the output (an id names the row); any other
    column outside the signature is refused. An input with a header but
    no rows gives an output with the columns and no rows.

    Example:
        >>> predict_file(load_bundle("models/bundle", model=False), "rows.csv", "scored.csv")
    """
    fmt, source_fmt = output_format(out), input_format(source)
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be at least 1, not {chunk_rows}.")
    from gitml.data.chunks import use_streaming_allocator

    use_streaming_allocator()
    rows, header = 0, None
    with atomic_path(out) as tmp:
        output = _Output(tmp, fmt)
        try:
            for chunk in read_chunks(Path(source), source_fmt, chunk_rows):
                if header is None:
                    _note_ignored(chunk, bundle, source)
                chunk = _drop_label(chunk, bundle, source, note=header is None)
                header = chunk.iloc[:0]
                if len(chunk):
                    chunk.index = range(rows, rows + len(chunk))
                    output.write(_score(bundle, chunk, keep_columns))
                    rows += len(chunk)
            if rows == 0:
                output.write(_empty_result(bundle, header, keep_columns))
                log.warning("note: '%s' has a header but no rows: %s holds the output columns and no rows", source, out)
        finally:
            output.close()
    log.info("predicted %d rows with %s %s -> %s", rows, bundle.info.name, bundle.version, out)
    return rows


def _drop_label(chunk: pd.DataFrame, bundle: Bundle, source: str | Path, note: bool) -> pd.DataFrame:
    """``chunk`` without the label column (rows often come from a labelled file); a note says so once."""
    label = bundle.signature.label
    if label is None or label not in chunk.columns or label in bundle.signature.features:
        return chunk
    if note:
        log.warning("note: ignoring column '%s' of '%s': it is the model's label, neither scored nor copied "
                    "to the output", label, source)
    return chunk.drop(columns=[label])


def _note_ignored(chunk: pd.DataFrame, bundle: Bundle, source: str | Path) -> None:
    """One note naming the excluded columns (dates, ids) the input carries: validation drops them unread."""
    from gitml.package.validation import ignored_columns

    kinds = {c.name: c.kind for c in bundle.signature.excluded}
    ignored = ignored_columns(map(str, chunk.columns), bundle.signature)
    if ignored:
        named = ", ".join(f"'{name}' ({kinds[name]})" for name in ignored)
        log.warning("note: ignoring column(s) %s of '%s': the data contract excludes them from the model's "
                    "features, so they are not scored (--keep-columns copies them to the output)", named, source)


def _score(bundle: Bundle, chunk: pd.DataFrame, keep_columns: bool) -> pd.DataFrame:
    try:
        result = bundle.predict(chunk)
    except InputValidationError as exc:  # re-raised here so the traceback does not lead into validation
        raise InputValidationError(exc.problems) from None
    return chunk.join(result) if keep_columns else result


def _empty_result(bundle: Bundle, header: pd.DataFrame | None, keep_columns: bool) -> pd.DataFrame:
    """The output's columns with no rows, after checking the header as a row would be checked."""
    import numpy as np
    import pandas as pd

    from gitml.package.bundle import output_frame
    from gitml.package.logschema import PREDICTION

    columns = [] if header is None else [str(c) for c in header.columns]
    features = bundle.signature.features
    problems = [{"field": c, "message": "missing column"} for c in features if c not in columns]
    ignored = set(bundle.signature.excluded_names)
    problems += [{"field": c, "message": "unexpected column (not in the signature)"} for c in columns
                 if c not in features and c not in ignored]
    if problems:
        raise InputValidationError(problems)
    if bundle.regression:  # the predicted number
        result = output_frame(bundle.signature, np.zeros(0, dtype=np.float64))
    else:
        result = pd.DataFrame({PREDICTION: np.asarray(bundle.classes)[:0]})
        for name in bundle.signature.proba_columns:
            result[name] = np.zeros(0, dtype=np.float64)
    return header.join(result) if keep_columns and header is not None else result
