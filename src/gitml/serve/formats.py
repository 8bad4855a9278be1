"""Request bodies to validated frames: MLflow's scoring formats (JSON), CSV and Arrow.

Arrow IPC streams (``application/vnd.apache.arrow.stream``) carry typed columns in binary:
nothing is parsed from text, so large batches cost little more than the model itself.

Every parser raises :class:`RequestError` (a 4xx status, a message and field-level
problems) for anything it cannot accept; none of them echoes a whole input back. Columns
the data contract excludes from the features (the signature's ``excluded``: ids; dates in older contracts)
are taken and dropped unread, without a log line per request (it would flood the log)
and without a word in the answer, whose format is MLflow's; the OpenAPI document lists
them as optional inputs that are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from gitml.errors import InputValidationError, RequestError
from gitml.package.logschema import PREDICTION, PROBA_PREFIX
from gitml.package.signature import CompiledSignature
from gitml.package.validation import validate_columns, validate_rows
from gitml.package.values import clip

if TYPE_CHECKING:
    import pandas as pd

    from gitml.serve.model import ServedModel

JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV_TYPES = ("text/csv", "application/csv")
ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_NAMED = 5  # unknown column names a refusal names


def bad(message: str, field_name: str = "(body)") -> RequestError:
    return RequestError(400, message, [{"field": field_name, "message": message}])


@dataclass
class Parsed:
    """A request body turned into a clean frame, plus what the answer needs."""

    frame: pd.DataFrame
    n_rows: int
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the v2 request id and outputs


def loads(body: bytes) -> Any:
    """Parse JSON; strict and fast first, then Python's parser (NaN, Infinity, huge integers)."""
    try:
        import orjson

        return orjson.loads(body)
    except ImportError:
        pass
    except ValueError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise bad(f"malformed JSON: {clip(str(exc), 120)}") from None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# ------------------------------------------------------------------ /invocations


def parse_invocations(body: bytes, content_type: str | None, sig: CompiledSignature, max_rows: int,
                      max_bytes: int = 50_000_000) -> Parsed:
    """An MLflow scoring request (JSON in one of four formats, or CSV with a header row)."""
    kind = media_type(content_type)
    if kind == "application/json" or kind.endswith("+json"):
        # No true/false literal in the body: no value can be a bool (lets validation skip a scan).
        no_booleans = len(body) > 4096 and b"true" not in body and b"false" not in body
        return parse_json_formats(loads(body), sig, max_rows, no_booleans)
    if kind in CSV_TYPES or kind == ARROW_STREAM:
        from gitml.serve.tabular import parse_arrow, parse_csv

        return parse_csv(body, sig, max_rows) if kind in CSV_TYPES else parse_arrow(body, sig, max_rows, max_bytes)
    raise RequestError(415, f"Unsupported content type '{clip(kind or '(none)')}'. "
                       f"Send application/json ({', '.join(JSON_FORMATS)}), text/csv with a header row "
                       f"or {ARROW_STREAM}.")


def parse_json_formats(doc: Any, sig: CompiledSignature, max_rows: int, no_booleans: bool = False) -> Parsed:
    if not isinstance(doc, dict):
        raise bad(f"expected a JSON object with one of the keys {', '.join(JSON_FORMATS)}")
    found = [k for k in JSON_FORMATS if k in doc]
    unknown = [k for k in doc if k not in JSON_FORMATS and k != "params"]
    if len(found) != 1:
        raise bad(f"expected exactly one of the keys {', '.join(JSON_FORMATS)}; found "
                  f"{', '.join(found) if found else 'none'}")
    if unknown:
        raise bad(f"unknown key(s) {', '.join(clip(repr(k)) for k in unknown[:5])}; "
                  f"allowed: {', '.join(JSON_FORMATS)}, params")
    fmt, payload = found[0], doc[found[0]]
    if fmt == "dataframe_split":
        return _split(payload, sig, max_rows, no_booleans)
    if fmt == "dataframe_records":
        return _records(payload, sig, max_rows, fmt, no_booleans)
    if fmt == "instances":
        return _rows_or_records(payload, sig, max_rows, fmt, no_booleans)
    if isinstance(payload, dict):
        return _columnar(payload, sig, max_rows)
    return _rows_or_records(payload, sig, max_rows, fmt, no_booleans)


def _split(payload: Any, sig: CompiledSignature, max_rows: int, no_booleans: bool = False) -> Parsed:
    if not isinstance(payload, dict) or "data" not in payload:
        raise bad('dataframe_split needs an object {"columns": [...], "data": [[...], ...]}', "dataframe_split")
    names = payload.get("columns", list(sig.names))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise bad("dataframe_split.columns must be a list of column names (strings)", "dataframe_split.columns")
    rows = payload["data"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad("dataframe_split.data must be a list of rows (lists of values)", "dataframe_split.data")
    return parse_rows(names, rows, sig, max_rows, "dataframe_split.data", no_booleans)


def parse_rows(names: list[str], rows: list[Any], sig: CompiledSignature, max_rows: int, where: str,
          no_booleans: bool = False) -> Parsed:
    check_rows(len(rows), max_rows)
    if len(set(names)) != len(names):
        raise bad("duplicate column names", where)
    width = len(names)
    wrong = [i for i, r in enumerate(rows) if len(r) != width]
    if wrong:
        shown = ", ".join(map(str, wrong[:5]))
        raise bad(f"row(s) {shown} do not have {width} value(s), one per column", where)
    return Parsed(validated(lambda: validate_rows(rows, names, sig, no_booleans=no_booleans)), len(rows))


def _records(payload: Any, sig: CompiledSignature, max_rows: int, where: str, no_booleans: bool = False) -> Parsed:
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise bad(f"{where} must be a list of objects (one per row, column name -> value)", where)
    check_rows(len(payload), max_rows)
    if not payload:
        return Parsed(validated(lambda: validate_columns({}, sig, n_rows=0)), 0)
    names = list(payload[0])
    if names and all(len(r) == len(names) for r in payload) and all(r.keys() == payload[0].keys() for r in payload):
        if len(names) == 1:
            rows: list[Any] = [[r[names[0]]] for r in payload]
        else:
            rows = list(map(itemgetter(*names), payload))
        return Parsed(validated(lambda: validate_rows(rows, names, sig, no_booleans=no_booleans)), len(payload))
    # Rows with different keys: a key a row lacks is a missing (null) value there. Every key
    # must be an input, checked before any column is built: columns of every key any row
    # named cost rows x keys cells (a 0.7 MB body of distinct keys took 17 s and 490 MB).
    check_names(_record_keys(payload, sig), sig, where)
    present = set().union(*payload)  # only inputs now; one no row names is a missing column, not nulls
    columns = {k: [r.get(k) for r in payload] for k in sig.names if k in present}
    return Parsed(validated(lambda: validate_columns(columns, sig, n_rows=len(payload))), len(payload))


def _record_keys(records: list[dict[str, Any]], sig: CompiledSignature) -> list[str]:
    """The keys the records use that are neither inputs nor excluded columns: stops at the first few
    (all a message names)."""
    unknown: dict[str, None] = {}
    for record in records:
        if record.keys() <= sig.name_set:
            continue
        unknown.update(dict.fromkeys(k for k in record if k not in sig.name_set and k not in sig.ignored))
        if len(unknown) > MAX_NAMED:
            break
    return list(unknown)


def check_names(names: Any, sig: CompiledSignature, where: str) -> None:
    """Refuse column names that are not inputs (400, naming the first few) before values are taken.

    The signature's excluded columns (dates, ids) pass: validation drops them unread.
    """
    unknown = [n for n in names if n not in sig.name_set and n not in sig.ignored][:MAX_NAMED + 1]
    if unknown:
        problems = [{"field": clip(str(n)), "message": "unexpected column (not in the signature)"}
                    for n in unknown[:MAX_NAMED]]
        if len(unknown) > MAX_NAMED:
            problems.append({"field": where, "message": "more unexpected columns (not counted); the inputs are "
                             f"{clip(', '.join(sig.names), 200)}"})
        raise RequestError.invalid(problems)


def _rows_or_records(payload: Any, sig: CompiledSignature, max_rows: int, where: str,
                     no_booleans: bool = False) -> Parsed:
    if isinstance(payload, list) and payload and all(isinstance(r, list) for r in payload):
        return parse_rows(list(sig.names), payload, sig, max_rows, where, no_booleans)
    if isinstance(payload, list) and all(isinstance(r, dict) for r in payload):
        return _records(payload, sig, max_rows, where, no_booleans)
    raise bad(f"{where} must be a list of objects (column -> value) or a list of rows "
              f"(lists of values in signature order: {clip(', '.join(sig.names), 200)})", where)


def _columnar(payload: dict[str, Any], sig: CompiledSignature, max_rows: int) -> Parsed:
    lengths = {len(v) if isinstance(v, list) else None for v in payload.values()}
    if lengths == {None}:  # one row given as column -> scalar
        columns, n_rows = {k: [v] for k, v in payload.items()}, 1
    else:
        sizes = [n for n in lengths if n is not None]
        if len(sizes) != len(lengths) or len(sizes) != 1:
            raise bad("inputs must map every column to a list of values of one common length", "inputs")
        columns, n_rows = payload, sizes[0]
    check_rows(n_rows, max_rows)
    return Parsed(validated(lambda: validate_columns(columns, sig, n_rows=n_rows)), n_rows)


def check_rows(n_rows: int, max_rows: int) -> None:
    if n_rows > max_rows:
        raise RequestError(413, f"{n_rows} rows exceed the maximum of {max_rows} per request "
                           "<serve.max_batch_rows>; split the batch.",
                           [{"field": "(batch)", "message": f"{n_rows} rows exceed the maximum of {max_rows}"}])


def validated(run: Any) -> pd.DataFrame:
    try:
        return run()
    except InputValidationError as exc:
        raise RequestError.invalid(exc.problems) from None


# ------------------------------------------------------------------ answers


def arrow_answer(model: ServedModel, output: Any, predicted: Any, metadata: dict[str, str]) -> bytes:
    """Predictions as an Arrow IPC stream, columns as ``gitml predict`` writes them: ``prediction``
    and ``proba_<class>``, or for a regression model ``prediction`` alone, a float64."""
    import pyarrow as pa

    if model.regression:
        columns = {PREDICTION: pa.array(output, type=pa.float64())}
    else:
        columns = {PREDICTION: pa.array(model.classes).take(pa.array(predicted))}
        for j, name in enumerate(model.class_names):
            columns[f"{PROBA_PREFIX}{name}"] = pa.array(output[:, j])
    return arrow_stream(pa.table(columns).replace_schema_metadata(metadata))


def arrow_stream(table: Any, max_chunksize: int | None = None) -> bytes:
    """``table`` as Arrow IPC stream bytes (record batches of at most ``max_chunksize`` rows)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max_chunksize)
    return sink.getvalue().to_pybytes()
