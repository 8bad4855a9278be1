"""Bounded work per request: small bodies that used to cost gigabytes or seconds, slow and
idle connections, and clients that go away.

Each planted body was reproduced on main before the fix: 0.7 MB of records with distinct
keys blocked the event loop 17.5 s (+490 MB); a 25 kB zstd Arrow stream decompressed to
800 MB before its rows were counted; 3,000 slow connections were held 40 s and longer; a
client leaving mid-body was a 500 with two tracebacks.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import tracemalloc
import warnings

import httpx
import pyarrow as pa
import pytest

from gitml.config.schema import ServeConfig
from gitml.package.bundle import load_bundle
from gitml.serve.app import create_app
from gitml.serve.formats import arrow_stream
from gitml.serve.state import ServeSettings, ServeState

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ARROW = "application/vnd.apache.arrow.stream"
MAX_ROWS, MAX_UNPACKED = 10_000, 5_000_000  # the default row limit: the records bomb fits under it


@pytest.fixture(scope="module")
def client(trained, tmp_path_factory):
    cfg = ServeConfig(log_dir=str(tmp_path_factory.mktemp("bounds-logs")), max_batch_rows=MAX_ROWS,
                      max_body_bytes=5_000_000, max_decompressed_bytes=MAX_UNPACKED, log_flush_seconds=60)
    with TestClient(create_app(ServeState(ServeSettings(bundle=str(trained.synthetic), cfg=cfg))),
                    raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def rows(trained):
    return load_bundle(trained.synthetic).reference().head(8).reset_index(drop=True)


def timed_post(client, path: str, **kwargs) -> tuple[httpx.Response, float, int]:
    """The answer, its seconds and the peak of Python allocations while it was made."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = client.post(path, **kwargs)
        return response, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------ records


def test_records_with_many_distinct_keys_are_refused_before_any_column_is_built(client, rows):
    records = [{f"k{i}": 1} for i in range(MAX_ROWS)]  # 0.15 MB; was 10,000 x 10,000 cells (seconds, GBs)
    response, seconds, peak = timed_post(client, "/invocations", json={"dataframe_records": records})
    assert response.status_code == 400, response.text
    problems = response.json()["problems"]
    assert [p["field"] for p in problems[:5]] == ["k0", "k1", "k2", "k3", "k4"]
    assert "more unexpected columns" in problems[5]["message"] and "num_0" in problems[5]["message"]
    assert len(problems) == 6 and seconds < 2 and peak < 100_000_000, (seconds, peak)

    records.append({"num_0": 1})  # one row over the limit: 413 before any row is looked at
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 413 and "serve.max_batch_rows" in response.json()["message"]


def test_records_missing_a_key_still_name_it_and_mixed_known_keys_are_answered(client, rows):
    records = rows.to_dict(orient="records")
    records[1] = {**records[1], "nope": 1}  # one unknown key among known ones
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 400 and [p["field"] for p in response.json()["problems"]] == ["nope"]
    records = rows.to_dict(orient="records")
    records[2] = dict(reversed(records[2].items()))  # same keys, another order: the general path
    del records[3]["num_0"]
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 400 and {p["field"] for p in response.json()["problems"]} == {"num_0"}
    del records[3]
    assert client.post("/invocations", json={"dataframe_records": records}).status_code == 200
    for record in records:  # a key no row names is a missing column (not a column of nulls)
        record.pop("cat_1")
    del records[0]["num_1"]  # and rows with different keys: the general path
    response = client.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 400 and {"field": "cat_1", "message": "missing column"} in \
        response.json()["problems"]


def test_deep_json_nesting_is_a_quick_400(client):
    for body in (b"[" * 200_000, b'{"inputs": ' + b"[" * 5_000 + b"1" + b"]" * 5_000 + b"}"):
        response, seconds, _ = timed_post(client, "/invocations", content=body,
                                          headers={"content-type": "application/json"})
        assert response.status_code == 400 and seconds < 2, (response.text, seconds)


# ------------------------------------------------------------------ Arrow


def compressed_stream(table: pa.Table, codec: str, copies: int) -> bytes:
    """A stream of ``copies`` record batches, each ``table`` compressed once (the bytes of one
    batch message repeated: no need to compress gigabytes to build the bomb)."""
    def write(n: int) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=codec)) as writer:
            for _ in range(n):
                writer.write_table(table)
        return sink.getvalue().to_pybytes()

    one, two = write(1), write(2)
    batch = two[len(one) - 8:len(two) - 8]  # the second batch message (before the 8-byte end marker)
    return one[:-8] + batch * (copies - 1) + one[-8:]


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_arrow_bombs_are_refused_before_decompressing(client, rows, codec):
    pool = pa.default_memory_pool()
    names = list(rows.columns)
    big = pa.table({**{n: pa.array(rows[n].tolist()[:4]) for n in names if n != "cat_0"},
                    "cat_0": pa.array(["a" * 1_000_000] * 4)})  # 4 MB per batch, a few kB compressed
    body = compressed_stream(big, codec, 250)  # 1 GB once decompressed, in 1,000 rows
    assert len(body) < 5_000_000  # zstd: 0.2 MB, lz4: 4.4 MB, both under serve.max_body_bytes
    before = pool.max_memory()
    response, seconds, _ = timed_post(client, "/invocations", content=body, headers={"content-type": ARROW})
    assert response.status_code == 413, response.text
    assert "serve.max_decompressed_bytes" in response.json()["message"]
    assert seconds < 2 and pool.max_memory() - before < 100_000_000 and pool.max_memory() < 900_000_000

    small = pa.Table.from_pandas(rows, preserve_index=False)
    body = compressed_stream(small, codec, 10)  # 80 rows: answered like any other stream
    response = client.post("/invocations", content=body, headers={"content-type": ARROW})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 80, response.text
    body = compressed_stream(small, codec, MAX_ROWS // len(rows) + 1)
    response = client.post("/invocations", content=body, headers={"content-type": ARROW})
    assert response.status_code == 413 and "serve.max_batch_rows" in response.json()["message"]


def test_a_dictionary_entry_named_by_every_row_is_decoded_once(client, rows):
    entry = pa.array(["x" * 1_000_000])  # 10 GB if copied once per row
    table = pa.table({**{n: pa.array(rows[n].tolist()[:1] * MAX_ROWS) for n in rows.columns if n != "cat_0"},
                      "cat_0": pa.DictionaryArray.from_arrays(pa.array([0] * MAX_ROWS, pa.int32()), entry)})
    response, seconds, peak = timed_post(client, "/invocations", content=arrow_stream(table),
                                         headers={"content-type": ARROW})
    assert response.status_code == 400 and [p["field"] for p in response.json()["problems"]] == ["cat_0"]
    assert seconds < 2 and peak < 50_000_000, (seconds, peak)
    categories = pa.array(rows["cat_0"].tolist()).dictionary_encode()  # as pandas categoricals arrive
    table = pa.Table.from_pandas(rows.drop(columns="cat_0"), preserve_index=False).append_column("cat_0", categories)
    assert client.post("/invocations", content=arrow_stream(table), headers={"content-type": ARROW}).status_code == 200


def test_arrow_types_that_repeat_values_are_refused_by_name(client, rows):
    base = pa.Table.from_pandas(rows.drop(columns="cat_0"), preserve_index=False)
    for column in (pa.array(rows["cat_0"].tolist(), pa.string_view()),
                   pa.RunEndEncodedArray.from_arrays([len(rows)], [rows["cat_0"][0]])):
        table = base.append_column("cat_0", column)
        response = client.post("/invocations", content=arrow_stream(table), headers={"content-type": ARROW})
        assert response.status_code == 400, response.text
        problem = response.json()["problems"][0]
        assert problem["field"] == "cat_0" and "dictionary-encoded strings" in problem["message"]


# ------------------------------------------------------------------ OIP v2


def test_v2_shape_over_the_row_limit_is_refused_before_its_data(client):
    for tensor in ({"name": "num_0", "shape": [10**15], "datatype": "FP64", "data": [1.0]},
                   {"name": "num_0", "shape": [10**15, 1], "datatype": "FP64",
                    "parameters": {"binary_data_size": 8}}):
        response = client.post("/v2/models/model/infer", json={"inputs": [tensor]})
        assert response.status_code == 413 and "serve.max_batch_rows" in response.json()["message"], response.text


# ------------------------------------------------------------------ the real server: slow, idle, gone

HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE = 1.0, 1.5, 1


@pytest.fixture(scope="module")
def bounded_params(tmp_path_factory):
    from gitml.config.compose import compose, write_params
    from tests.integration.serve.bundles import ROOT, TINY
    from tests.integration.serve.conftest import SERVE_PARAMS

    overrides = (f"serve.header_timeout_seconds={HEADER_TIMEOUT}", f"serve.body_timeout_seconds={BODY_TIMEOUT}",
                 f"serve.keep_alive_seconds={KEEP_ALIVE}")
    return write_params(compose(ROOT / "conf", [*TINY, *SERVE_PARAMS, *overrides]),
                        tmp_path_factory.mktemp("bounded") / "params.yaml")


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection within ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed with our unread bytes still queued: a reset instead of a clean end
    except TimeoutError:
        return received, False
    return received, True


@pytest.mark.slow
def test_slow_idle_and_vanishing_clients_cost_no_server_error(trained, rows, tmp_path, start_server, bounded_params):
    server = start_server(tmp_path, "--bundle", trained.synthetic, "--log-dir", tmp_path / "logs",
                          "--params", bounded_params)
    payload = json.dumps({"dataframe_records": rows.to_dict(orient="records")}).encode()
    head = (b"POST /invocations HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n")

    # Clients that leave mid-body: no answer to give, and not a server error.
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(head % 100_000 + payload[:50])
        time.sleep(0.05)

    # A body that stops coming: 408 (JSON, naming the key) after serve.body_timeout_seconds, then closed.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head % (len(payload) + 10) + payload)
        started = time.monotonic()
        answer, closed = read_until_closed(sock, BODY_TIMEOUT + 3)
        assert closed and answer.startswith(b"HTTP/1.1 408") and b"serve.body_timeout_seconds" in answer, answer
        assert BODY_TIMEOUT - 0.2 < time.monotonic() - started < BODY_TIMEOUT + 1.5

    # 150 slow clients: idle, headers a byte at a time, a body a byte at a time.
    kinds = ("idle", "slow headers", "slow body")
    clients = []
    for i in range(150):
        sock = socket.create_connection(("127.0.0.1", server.port))
        if kinds[i % 3] == "slow headers":
            sock.sendall(b"POST /invocations HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        elif kinds[i % 3] == "slow body":
            sock.sendall(head % (len(payload) + 10_000) + payload[:20])
        clients.append((kinds[i % 3], sock))
    opened = time.monotonic()
    served = []
    while time.monotonic() - opened < HEADER_TIMEOUT + BODY_TIMEOUT + 1.0:
        for kind, sock in clients:
            if kind != "idle":
                with contextlib.suppress(OSError):  # closed by the server: the send fails
                    sock.send(b"x")
        started = time.monotonic()
        response = httpx.post(f"{server.url}/invocations", content=payload,
                              headers={"content-type": "application/json"}, timeout=10)
        assert response.status_code == 200, response.text
        served.append(time.monotonic() - started)
        time.sleep(0.2)
    assert max(served) < 1.0, served  # a normal request gets through meanwhile
    still_open = [kind for kind, sock in clients if not read_until_closed(sock, 0.5)[1]]
    for _, sock in clients:
        sock.close()
    assert not still_open, f"{len(still_open)} slow connection(s) still open: {sorted(set(still_open))}"

    # An idle keep-alive connection closes after serve.keep_alive_seconds.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        answer, closed = read_until_closed(sock, KEEP_ALIVE + 3)
        assert closed and answer.startswith(b"HTTP/1.1 200") and time.monotonic() - started < KEEP_ALIVE + 1.5

    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'status="500"' not in metrics
    assert 'gitml_requests_total{endpoint="/invocations",status="499"} 5.0' in metrics
    assert 'gitml_requests_total{endpoint="/invocations",status="408"}' in metrics
    assert server.stop() == 0
    log = server.log()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


@pytest.mark.parametrize("key", ["body_timeout_seconds", "header_timeout_seconds", "max_decompressed_bytes",
                                 "max_connections", "keep_alive_seconds"])
def test_a_limit_that_would_switch_its_bound_off_is_a_config_error(key):
    from gitml.config.compose import compose, to_plain
    from gitml.config.params import validate_config
    from gitml.errors import ConfigError
    from tests.integration.serve.bundles import ROOT, TINY

    with pytest.raises(ConfigError, match=f"serve.{key}.*positive"):  # compose and load both check
        validate_config(to_plain(compose(ROOT / "conf", [*TINY, f"serve.{key}=0"])), source="params.yaml")
