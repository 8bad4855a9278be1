"""gitml serve over HTTP vs a bare in-process predict on the same inputs.

The server is the real one (``gitml serve`` in a subprocess on 127.0.0.1, request log on);
the baseline is what a user would otherwise call in-process,
``model.predict_proba(preprocessor.transform(frame))`` on a ready DataFrame. Both run for
``--seconds`` per cell with 1, 8 and 32 concurrent clients (threads; each HTTP client keeps
one connection alive, using the standard library's http.client so the client adds as
little as possible). Reported: requests/s, rows/s, p50 and p99 latency, the p50 overhead
of the server over the bare call and the ratio of their rows/s.

Targets: single-row p50 overhead <= 2 ms; 1,000-row requests >= 0.5x the bare rows/s. For
one client, the harness also times the HTTP exchange alone (the same body sent to a route
that refuses it), which bounds the ratio a single client can reach.
Client and server share the machine's cores, as they would on one host. Both sides run the
model with one compute thread per process (the server's default; ``--bare-threads`` changes
the baseline's), so neither is measured with intra-op threads fighting the other process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(bundle: Path, port: int, logs: Path, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitml", "serve", "--bundle", str(bundle), "--port", str(port),
         "--log-dir", str(logs), "--workers", str(workers)],
        cwd=logs.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")


def run_clients(concurrency: int, seconds: float, call) -> list[float]:
    """Each thread calls ``call(state)`` in a loop for ``seconds``; returns all latencies."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(slot: int) -> None:
        state: dict = {}
        call(state)  # warm: open the connection
        start.wait()
        mine = latencies[slot]
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            call(state)
            mine.append(time.perf_counter() - began)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds + 0.05
    start.wait()
    stop_at[0] = time.perf_counter() + seconds
    for t in threads:
        t.join()
    return [x for part in latencies for x in part]


def http_call(port: int, request: tuple[str, bytes, dict[str, str]], expect: int = 200):
    path, body, headers = request

    def call(state: dict) -> None:
        conn = state.get("conn")
        if conn is None:
            conn = state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != expect:
            raise SystemExit(f"HTTP {response.status}: {payload[:300]!r}")
    return call


def arrow_body(frame) -> bytes:
    """The frame as an Arrow IPC stream (what ``pa.Table.from_pandas`` gives a pandas user)."""
    import pyarrow as pa

    from gitml.serve.formats import arrow_stream

    return arrow_stream(pa.Table.from_pandas(frame, preserve_index=False))


def oip_binary_request(frame, inputs) -> tuple[str, bytes, dict[str, str]]:
    """An OIP v2 infer request with binary tensor data in and out (as tritonclient sends one)."""
    import numpy as np

    header: dict = {"inputs": [], "parameters": {"binary_data_output": True}}
    blobs = []
    for spec in inputs:
        column = frame[spec.name]
        if spec.dtype == "category":
            blob = b"".join(len(v).to_bytes(4, "little") + v for v in (str(x).encode() for x in column))
            datatype = "BYTES"
        else:
            blob, datatype = column.to_numpy(np.float64).astype("<f8").tobytes(), "FP64"
        header["inputs"].append({"name": spec.name, "shape": [len(frame)], "datatype": datatype,
                                 "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    head = json.dumps(header).encode()
    return ("/v2/models/model/infer", head + b"".join(blobs),
            {"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))})


def bare_call(bundle, frame):
    def call(state: dict) -> None:
        bundle.model.predict_proba(bundle.preprocessor.transform(frame))
    return call


def stats(latencies: list[float], seconds: float, rows: int) -> dict:
    ordered = sorted(latencies)
    return {"rps": len(ordered) / seconds, "rows_s": len(ordered) * rows / seconds,
            "p50": statistics.median(ordered) * 1e3, "p99": ordered[int(0.99 * (len(ordered) - 1))] * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle to serve (default: train the reference one, tiny)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--bare-threads", type=int, default=1, help="torch threads of the bare baseline")
    parser.add_argument("--only", nargs="+", help="run only the cases whose label contains one of these words")
    parser.add_argument("--train", nargs="*", default=[], metavar="OVERRIDE",
                        help="config overrides for the reference bundle, e.g. model=mlp_wide (without --bundle)")
    args = parser.parse_args()

    import pandas as pd

    from gitml.package.bundle import load_bundle

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    bundle_dir = args.bundle
    if bundle_dir is None:
        from tests.integration.serve.bundles import train_bundle

        print(f"training the reference bundle (breast_cancer, 3 epochs, {' '.join(args.train) or 'mlp'}) ...",
              flush=True)
        bundle_dir = train_bundle(work / "train", tuple(args.train))
    bundle = load_bundle(bundle_dir)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(args.bare_threads)
    reference = bundle.reference()
    names = bundle.signature.features
    many = pd.concat([reference] * (1000 // len(reference) + 1), ignore_index=True).head(1000)[names]
    one = many.head(1)

    def split_body(frame: pd.DataFrame) -> bytes:
        data = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
        return json.dumps({"dataframe_split": {"columns": names, "data": data}}).encode()

    json_type, arrow_type = {"content-type": "application/json"}, "application/vnd.apache.arrow.stream"
    cases = [("1 row, JSON", one, ("/invocations", split_body(one), json_type)),
             ("1000 rows, JSON", many, ("/invocations", split_body(many), json_type)),
             ("1000 rows, CSV", many, ("/invocations", many.to_csv(index=False).encode(), {"content-type": "text/csv"})),
             ("1000 rows, Arrow", many, ("/invocations", arrow_body(many),
                                         {"content-type": arrow_type, "accept": arrow_type})),
             ("1000 rows, OIP binary", many, oip_binary_request(many, bundle.signature.inputs))]
    cases = [case for case in cases if args.only is None or any(word in case[0] for word in args.only)]
    port = free_port()
    (work / "run").mkdir()
    server = start_server(Path(bundle_dir), port, work / "run" / "logs", args.workers)
    results, floors = [], []
    try:
        for label, frame, request in cases:
            for concurrency in args.concurrency:
                served = stats(run_clients(concurrency, args.seconds, http_call(port, request)),
                               args.seconds, len(frame))
                bare = stats(run_clients(concurrency, args.seconds, bare_call(bundle, frame)), args.seconds, len(frame))
                results.append((label, concurrency, served, bare))
                if concurrency == 1 and len(frame) > 1:
                    # The same body to a route that refuses it (405 from /ping): what the HTTP
                    # exchange alone costs one client, the floor under the served latency.
                    transport = stats(run_clients(1, args.seconds, http_call(port, ("/ping", *request[1:]), 405)),
                                      args.seconds, len(frame))
                    floors.append((label, transport["p50"], bare["p50"]))
                print(f"  {label:<16} c={concurrency:<3} served p50 {served['p50']:.2f} ms, bare p50 {bare['p50']:.2f} ms",
                      flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print_table(results, os.cpu_count(), args.workers)
    for label, transport, bare_p50 in floors:
        print(f"\n{label}, 1 client: the HTTP exchange alone (same body, refused by /ping) takes "
              f"{transport:.2f} ms at p50; with the bare call's {bare_p50:.2f} ms the rows/s ratio can reach at "
              f"most {bare_p50 / (bare_p50 + transport):.2f} even if parsing, logging and answering were free.")


def print_table(results, cpus, workers) -> None:
    print(f"\ngitml serve ({workers} worker(s)) vs bare in-process predict "
          f"({cpus} CPU cores shared by client and server)\n")
    header = ("| request | clients | served req/s | served p50 ms | served p99 ms | bare p50 ms | bare p99 ms "
              "| p50 overhead ms | served rows/s | bare rows/s | rows/s ratio |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for label, concurrency, served, bare in results:
        print(f"| {label} | {concurrency} | {served['rps']:.0f} | {served['p50']:.2f} | {served['p99']:.2f} | "
              f"{bare['p50']:.2f} | {bare['p99']:.2f} | {served['p50'] - bare['p50']:.2f} | "
              f"{served['rows_s']:.0f} | {bare['rows_s']:.0f} | {served['rows_s'] / bare['rows_s']:.2f} |")


if __name__ == "__main__":
    main()
