"""CSV and Arrow IPC request bodies to validated frames, for /invocations (see :mod:`gitml.serve.formats`).

Arrow streams carry typed columns in binary: nothing is parsed from text, so large batches
cost little more than the model itself; CSV bodies past ``ARROW_CSV_BYTES`` are read by
pyarrow's C reader with the signature's types, and the exact parser names a bad value.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from gitml.errors import RequestError
from gitml.package.signature import CompiledSignature
from gitml.package.validation import validate_columns
from gitml.package.values import clip
from gitml.serve.formats import Parsed, bad, check_rows, parse_rows, validated

ARROW_CSV_BYTES = 16_384  # larger CSV bodies are parsed by pyarrow (C, typed columns)


def parse_csv(body: bytes, sig: CompiledSignature, max_rows: int) -> Parsed:
    """CSV with a header row. Every field is text; an empty field is a missing value."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad("CSV body is not valid UTF-8") from None
    if "\x00" in text:
        raise bad("CSV body contains NUL bytes")
    if len(body) > ARROW_CSV_BYTES:
        parsed = _arrow_csv(body, sig, max_rows)
        if parsed is not None:
            return parsed
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except csv.Error as exc:
        raise bad(f"malformed CSV: {clip(str(exc), 120)}") from None
    if not records:
        raise bad("CSV body needs a header row naming the columns")
    names = [n.strip() for n in records[0]]
    # An empty field is missing in every column, as pyarrow reads larger bodies: a blank
    # category was the level '' here, refused as "outside the allowed categories".
    rows = [[field or None for field in row] for row in records[1:]]
    return parse_rows(names, rows, sig, max_rows, "(csv)")


def _arrow_csv(body: bytes, sig: CompiledSignature, max_rows: int) -> Parsed | None:
    """Columns typed by the signature straight from pyarrow; None when a value does not convert
    (the exact parser then names it) or the header is odd."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    kinds = {"category": pa.string(), "bool": pa.bool_(), "int": pa.float64(), "float": pa.float64(),
             "datetime": pa.string()}  # dates as text: validation reads them (data.dates.request_dates)
    types = {spec.name: kinds[spec.dtype] for spec in sig.inputs}  # no type inference: faster
    try:
        table = pcsv.read_csv(
            io.BytesIO(body), read_options=pcsv.ReadOptions(use_threads=False),
            convert_options=pcsv.ConvertOptions(column_types=types, null_values=[""],
                                                strings_can_be_null=True, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    names = [n.strip() for n in table.column_names]
    if len(set(names)) != len(names):
        return None
    check_rows(table.num_rows, max_rows)
    try:
        columns = table_columns(names, table.columns)
    except RequestError:
        return None
    return Parsed(validated(lambda: validate_columns(columns, sig, n_rows=table.num_rows)), table.num_rows)


# ------------------------------------------------------------------ Arrow


def parse_arrow(body: bytes, sig: CompiledSignature, max_rows: int, max_bytes: int = 50_000_000) -> Parsed:
    """An Arrow IPC stream: one record batch or several, columns named as in the signature.

    Rows and the decompressed size are read from the message headers first
    (:mod:`gitml.serve.ipc`): a stream over either limit is refused before anything is
    decompressed.
    """
    import pyarrow as pa

    from gitml.serve.ipc import stream_bounds

    try:
        rows, dictionary, size = stream_bounds(body, max_rows, max_bytes)
        check_rows(max(rows, dictionary), max_rows)
        if size > max_bytes:
            message = (f"The Arrow stream expands to more than {max_bytes} bytes <serve.max_decompressed_bytes>; "
                       "send smaller batches or no compression.")
            raise RequestError(413, message, [{"field": "(arrow)", "message": message}])
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        table.validate(full=True)  # offsets and lengths in bounds before any value is read
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise bad(f"malformed Arrow IPC stream: {clip(str(exc), 120)}") from None
    names = table.column_names
    if len(set(names)) != len(names):
        raise bad("duplicate column names", "(arrow)")
    check_rows(table.num_rows, max_rows)
    columns = table_columns(names, table.columns)
    return Parsed(validated(lambda: validate_columns(columns, sig, n_rows=table.num_rows)), table.num_rows)


def table_columns(names: list[str], arrays: list[Any]) -> dict[str, Any]:
    """Arrow columns as validation takes them: numpy arrays for complete numbers, lists otherwise."""
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for name, column in zip(names, arrays, strict=True):
        kind = column.type
        if pa.types.is_floating(kind) or (column.null_count == 0 and (
                pa.types.is_integer(kind) or pa.types.is_boolean(kind))):
            columns[name] = column.to_numpy(zero_copy_only=False)  # a missing float is NaN
        elif pa.types.is_string(kind) or pa.types.is_null(kind) or pa.types.is_integer(kind) \
                or pa.types.is_boolean(kind):
            columns[name] = column.to_pylist()
        elif pa.types.is_timestamp(kind):  # datetime64 (UTC for a zoned one); NaT where missing
            columns[name] = column.to_numpy(zero_copy_only=False)
        elif pa.types.is_dictionary(kind) and _plain(kind.value_type):  # pandas categoricals
            columns[name] = _decoded(column)
        elif pa.types.is_large_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind) \
                or pa.types.is_decimal(kind) or pa.types.is_temporal(kind):
            try:  # as text: each value's text is as long as its bytes in the body, or about
                columns[name] = column.cast(pa.string()).to_pylist()
            except pa.ArrowException:
                raise bad(f"an Arrow column of type {clip(str(kind), 60)} cannot hold signature values",
                          clip(name)) from None
        else:  # lists, structs, views and run-end encodings: one value could be repeated into gigabytes
            raise bad(f"an Arrow column of type {clip(str(kind), 60)} cannot hold signature values; send numbers, "
                      "booleans, strings or dictionary-encoded strings", clip(name))
    return columns


def _plain(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
                or pa.types.is_floating(kind) or pa.types.is_boolean(kind))


def _decoded(column: Any) -> list[Any]:
    """A dictionary column's values as text, each dictionary entry decoded once and then shared:
    casting the column would copy an entry once per row that names it (a 1 MB entry named by
    10,000 rows is 10 GB)."""
    import pyarrow as pa

    values: list[Any] = []
    for chunk in column.chunks:
        dictionary = chunk.dictionary.cast(pa.string()).to_pylist()
        values += [None if i is None else dictionary[i] for i in chunk.indices.to_pylist()]
    return values
