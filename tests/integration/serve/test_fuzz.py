"""Fuzzing the app over a real bundle: no request body, however odd, gets a 5xx.

Hypothesis builds JSON structures (each scoring format with real and random columns,
wrong types, huge and non-finite numbers), OIP v2 tensors (JSON and binary), Arrow
streams of random columns and types, feedback, CSV with garbage cells and raw bytes under
every content type. Every answer must be below 500, and a
refusal must carry field-level problems without echoing the input back.
"""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitml.config.schema import ServeConfig
from gitml.serve.app import create_app
from gitml.serve.state import ServeSettings, ServeState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NAMES = [f"num_{i}" for i in range(8)] + ["cat_0", "cat_1"]
MAX_BODY = 50_000
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def client(trained, tmp_path_factory):
    cfg = ServeConfig(log_dir=str(tmp_path_factory.mktemp("fuzz-logs")), max_batch_rows=40, max_body_bytes=MAX_BODY,
                      log_flush_rows=500, log_flush_seconds=0.2)
    with TestClient(create_app(ServeState(ServeSettings(bundle=str(trained.synthetic), cfg=cfg))),
                    raise_server_exceptions=False) as test_client:
        yield test_client


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["a", "b", "zebra", "1.5", "nan", "inf", "", " 3 ", "1e999", "\ud800"]),
)
keys = st.one_of(st.text(max_size=6), st.sampled_from([*NAMES, "\udcff", "a\ud800b"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    keys, inner, max_size=4), max_leaves=12)
columns = st.lists(st.sampled_from([*NAMES, "other", "", "x" * 300, "\ud800"]), max_size=12)


@st.composite
def scoring_payloads(draw):
    names = draw(st.one_of(st.just(NAMES), columns))
    rows = draw(st.integers(0, 45))
    cell = st.one_of(scalars, json_values) if draw(st.booleans()) else scalars
    values = [[draw(cell) for _ in names] for _ in range(min(rows, 6))] * (rows // 6 + 1)
    values = values[:rows]
    fmt = draw(st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "inputs_list",
                                "two", "none"]))
    if fmt == "dataframe_split":
        return {"dataframe_split": {"columns": names, "data": values} if draw(st.booleans())
                else draw(json_values)}
    records = [dict(zip(names, r, strict=True)) for r in values]
    if fmt in ("dataframe_records", "instances"):
        return {fmt: draw(st.sampled_from([records, values, draw(json_values)]))}
    if fmt == "inputs":
        return {"inputs": {n: [r[i] for r in values] for i, n in enumerate(names)}}
    if fmt == "inputs_list":
        return {"inputs": records}
    if fmt == "two":
        return {"instances": records, "inputs": records}
    return draw(json_values)


def encode(payload) -> bytes:
    # Raw UTF-8 with lone surrogates passed through: what a sloppy client may send.
    return json.dumps(payload, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def check(response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        body = response.json()
        assert body["message"] and isinstance(body["problems"], list)
        assert all(set(p) == {"field", "message"} for p in body["problems"])
        assert len(response.content) < 25_000  # field-level messages, never the input echoed back


@FUZZ
@given(scoring_payloads())
def test_scoring_payloads_never_5xx(client, payload):
    check(client.post("/invocations", content=encode(payload), headers={"content-type": "application/json"}))


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["application/json", "text/csv", "application/csv",
                                                    "text/plain", "application/json; charset=latin-1", "",
                                                    "application/vnd.apache.arrow.stream",
                                                    "application/octet-stream"]))
def test_raw_bytes_never_5xx(client, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    check(client.post("/invocations", content=body, headers=headers))
    check(client.post("/feedback", content=body, headers=headers))
    check(client.post("/v2/models/model/infer", content=body, headers=headers))


cells = st.one_of(st.text(alphabet=',"\n\r abc0123456789.-eE\t;', max_size=8), st.sampled_from(["", "nan", "a", "1e400"]))


@FUZZ
@given(st.lists(st.sampled_from([*NAMES, "x", ""]), min_size=0, max_size=12), st.lists(
    st.lists(cells, min_size=0, max_size=12), max_size=30), st.integers(0, 600))
def test_csv_garbage_never_5xx(client, header, rows, padding):
    text = ",".join(header) + "\n" + "\n".join(",".join(r) for r in rows) + "\n" * padding
    check(client.post("/invocations", content=text.encode(), headers={"content-type": "text/csv"}))
    if padding > 500:  # large bodies take the pyarrow parser
        wide = text + ("\n" + ",".join("1.0" for _ in header)) * 600
        check(client.post("/invocations", content=wide.encode(), headers={"content-type": "text/csv"}))


tensor = st.fixed_dictionaries({
    "name": st.sampled_from([*NAMES, "nope", "\ud800"]),
    "shape": st.one_of(st.lists(st.integers(-2, 5), max_size=3), json_values),
    "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "STRING", None]),
    "data": st.one_of(st.lists(scalars, max_size=5), st.lists(st.lists(scalars, max_size=2), max_size=5), json_values),
})


@FUZZ
@given(st.one_of(st.fixed_dictionaries({"inputs": st.lists(tensor, max_size=12)},
                                       optional={"id": json_values, "outputs": json_values}), json_values))
def test_v2_payloads_never_5xx(client, payload):
    check(client.post("/v2/models/model/infer", content=encode(payload),
                      headers={"content-type": "application/json"}))


@FUZZ
@given(st.lists(st.fixed_dictionaries({
    "name": st.sampled_from([*NAMES, "nope", ""]),
    "datatype": st.sampled_from(["FP64", "FP32", "FP16", "INT64", "UINT8", "BOOL", "BYTES", "STRING", None]),
    "shape": st.one_of(st.lists(st.integers(-1, 6), max_size=3), json_values),
    "size": st.one_of(st.integers(-3, 64), st.floats(), st.text(max_size=3)),
    "data": st.one_of(st.none(), st.lists(scalars, max_size=3)),
}), max_size=12), st.binary(max_size=400), st.one_of(st.none(), json_values),
    st.one_of(st.none(), st.integers(-5, 5)))
def test_v2_binary_payloads_never_5xx(client, tensors, blob, outputs, length_shift):
    inputs = [{"name": t["name"], "datatype": t["datatype"], "shape": t["shape"],
               "parameters": {"binary_data_size": t["size"]}, **({"data": t["data"]} if t["data"] else {})}
              for t in tensors]
    head = encode({"inputs": inputs, "outputs": outputs, "parameters": {"binary_data_output": True}})
    length = str(len(head) + (length_shift or 0)) if length_shift is not None else "x"
    check(client.post("/v2/models/model/infer", content=head + blob,
                      headers={"content-type": "application/octet-stream", "inference-header-content-length": length}))


arrow_columns = st.lists(st.tuples(
    st.sampled_from([*NAMES, "other", ""]),
    st.sampled_from(["float64", "float32", "int64", "int8", "bool", "string", "dictionary", "null", "date",
                     "list", "decimal", "large_string", "binary"]),
    st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=0, max_size=6)), max_size=12)


def arrow_array(kind: str, values: list[int | None]):
    """A column of ``kind`` from small integers (None is null): numbers, text, and types no signature takes."""
    import datetime
    import decimal

    import pyarrow as pa

    text = [None if v is None else ["a", "b", "zebra", "1.5"][v % 4] for v in values]
    if kind in ("float64", "float32", "int64", "int8"):
        return pa.array(values, getattr(pa, kind)())
    if kind == "bool":
        return pa.array([None if v is None else v > 0 for v in values], pa.bool_())
    if kind in ("string", "large_string"):
        return pa.array(text, getattr(pa, kind)())
    if kind == "dictionary":
        return pa.array(text, pa.string()).dictionary_encode()
    if kind == "binary":
        return pa.array([None if t is None else t.encode() for t in text], pa.binary())
    if kind == "date":
        return pa.array([None if v is None else datetime.date(2020, 1, 1 + v % 3) for v in values], pa.date32())
    if kind == "list":
        return pa.array([None if v is None else [v] for v in values], pa.list_(pa.int64()))
    if kind == "decimal":
        return pa.array([None if v is None else decimal.Decimal(v) for v in values], pa.decimal128(5, 1))
    return pa.nulls(len(values))


@FUZZ
@given(arrow_columns, st.integers(0, 30), st.sampled_from([None, "zstd", "lz4"]),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_arrow_streams_never_5xx(client, columns, cut, codec, flips):
    import pyarrow as pa

    n = min((len(values) for _, _, values in columns), default=0)
    table = pa.Table.from_arrays([arrow_array(kind, values[:n]) for _, kind, values in columns],
                                 names=[name for name, _, _ in columns]) if columns else pa.table({})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as writer:
        writer.write_table(table)
    body = sink.getvalue().to_pybytes()
    flipped = bytearray(body)  # bytes overwritten: headers, lengths and buffers that lie
    for position, value in flips:
        flipped[position % len(flipped)] = value
    for content in (body, body[:len(body) - cut] if cut else body[::-1], bytes(flipped)):
        check(client.post("/invocations", content=content, headers={
            "content-type": "application/vnd.apache.arrow.stream", "accept": "application/vnd.apache.arrow.stream"}))


feedback_item = st.fixed_dictionaries({}, optional={
    "request_id": st.one_of(st.text(max_size=10), json_values), "row": json_values,
    "label": json_values, "labels": st.lists(scalars, max_size=5), "other": scalars})


@FUZZ
@given(st.one_of(feedback_item, st.fixed_dictionaries({"feedback": st.lists(feedback_item, max_size=5)}),
                 json_values))
def test_feedback_payloads_never_5xx(client, payload):
    check(client.post("/feedback", content=encode(payload),
                      headers={"content-type": "application/json"}))


def test_valid_rows_still_predict_after_the_fuzzing(client, trained):
    from gitml.package.bundle import load_bundle

    rows = load_bundle(trained.synthetic).reference().head(3)
    response = client.post("/invocations", json={"dataframe_records": rows.to_dict(orient="records")})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 3
    assert 'status="500"' not in client.get("/metrics").text
