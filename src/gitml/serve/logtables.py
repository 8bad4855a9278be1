"""Arrow tables of the request and feedback logs, columns as the contract lists them (package/logschema.py).

Built once per flushed file from the buffered chunks: column by column with numpy, the
repeating text columns as dictionaries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml.package.logschema import (
    LABEL,
    LABEL_NUMBER,
    MODEL_VERSION,
    PREDICTION,
    PROBA_PREFIX,
    REQUEST_ID,
    ROW,
    TS,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from gitml.serve.requestlog import FeedbackChunk, RequestChunk


def request_table(chunks: list[RequestChunk]) -> pa.Table:
    """One row per predicted row, columns as docs/logs.md lists them.

    A column that cannot hold a missing value (the ids, times and outputs, and inputs the
    signature does not let be null) is written as a required Parquet column: without
    definition levels, the write costs half as much. The text columns that repeat (request
    id, version, prediction) are built as dictionaries over their few distinct values:
    Parquet writes those as they are instead of hashing every row. A regression model's
    ``prediction`` is its number (float64), with no probability columns.
    """
    import numpy as np
    import pyarrow as pa

    inputs, class_names = chunks[0].schema
    counts = np.array([c.n_rows for c in chunks])

    def per_row(per_chunk: Any, dtype: Any) -> np.ndarray:  # one value per request -> one per row
        return np.repeat(np.asarray(per_chunk, dtype=dtype), counts)

    def text(codes: np.ndarray, values: list[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)), pa.array(values, pa.string()))

    versions = list(dict.fromkeys(c.model_version for c in chunks))
    columns: dict[str, pa.Array] = {
        REQUEST_ID: text(per_row(range(len(chunks)), np.int32), [c.request_id for c in chunks]),
        ROW: pa.array(np.arange(int(counts.sum()), dtype=np.int64) - per_row(np.cumsum(counts) - counts, np.int64)),
        TS: pa.array(per_row([c.ts_us for c in chunks], np.int64)).cast(pa.timestamp("us", tz="UTC")),
        MODEL_VERSION: text(per_row([versions.index(c.model_version) for c in chunks], np.int32), versions),
    }
    nullable = {name: may_be_null for name, _, may_be_null in inputs}
    for (name, dtype, may_be_null), values in zip(inputs, _input_columns(chunks), strict=True):
        columns[name] = _feature_array(values, dtype, may_be_null)
    predicted = np.concatenate([c.predicted for c in chunks])
    if not class_names:  # regression: the predicted number, and no probabilities
        columns[PREDICTION] = pa.array(predicted.astype(np.float64, copy=False))
    else:
        columns[PREDICTION] = text(predicted, list(class_names))
        proba = np.concatenate([c.proba.T for c in chunks if c.proba is not None], axis=1).astype(np.float64, copy=False)
        for j, name in enumerate(class_names):
            columns[f"{PROBA_PREFIX}{name}"] = pa.array(proba[j])
    fields = [pa.field(name, array.type, nullable=nullable.get(name, False) or array.null_count > 0)
              for name, array in columns.items()]
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields))


def _input_columns(chunks: list[RequestChunk]) -> list[Any]:
    """The input columns of all chunks, concatenated, in signature order."""
    import numpy as np
    import pandas as pd

    names = [spec[0] for spec in chunks[0].schema[0]]
    if all(isinstance(c.inputs, np.ndarray) for c in chunks):
        # Row k of the transposed matrix is column k, contiguous; a parsed request's matrix is
        # already stored column by column, so this is one copy per request.
        return list(np.concatenate([c.inputs.T for c in chunks], axis=1))
    frames = [c.inputs if isinstance(c.inputs, pd.DataFrame) else pd.DataFrame(c.inputs, columns=names)
              for c in chunks]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, copy=False)
    return [frame[name].to_numpy() for name in names]


def _feature_array(values: Any, dtype: str, may_be_null: bool = True) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    if dtype == "category":
        return pa.array(values, type=pa.string(), from_pandas=True)
    numbers = np.asarray(values, dtype=np.float64)
    missing = np.isnan(numbers) if may_be_null else None  # validation let no NaN into the others
    array = pa.array(numbers, mask=missing) if missing is not None and missing.any() else pa.array(numbers)
    if dtype in ("int", "bool"):
        try:
            return array.cast(pa.int64() if dtype == "int" else pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return array  # an integer beyond int64 stays float64 rather than lose the row
    return array


def feedback_table(chunks: list[FeedbackChunk]) -> pa.Table:
    """One row per label; ``label`` is text, or a float64 for the labels of a regression model
    (the chunks' ``schema``: one file holds labels of one type)."""
    import pyarrow as pa

    items = [(i, c.ts_us) for c in chunks for i in c.items]
    label_type = pa.float64() if chunks[0].schema == LABEL_NUMBER else pa.string()
    return pa.table({
        REQUEST_ID: pa.array([i[0] for i, _ in items], type=pa.string()),
        ROW: pa.array([i[1] for i, _ in items], type=pa.int64()),
        LABEL: pa.array([i[2] for i, _ in items], type=label_type),
        TS: pa.array([ts for _, ts in items], type=pa.timestamp("us", tz="UTC")),
    })
