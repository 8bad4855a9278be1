"""Peak memory of reading a drift window from request logs of growing size.

Two log shapes, each at several sizes, 10 float features and 2 classes (16 columns):

- ``server``: what ``gitml serve`` writes, one 20,000-row part file a flush (one row group
  each), 30 flushes an hour;
- ``compacted``: one file an hour (a compaction job's output), 500,000 rows in row groups
  of 50,000.

For each, a fresh process reads the default window (``window_rows=5000``) and a time
window (``window_hours=1``) with :func:`gitml.monitor.logs.read_window` and reports the
seconds and its peak RSS above the interpreter with pandas/pyarrow imported (ru_maxrss).
``--src DIR`` reads with another checkout's ``src`` (a before/after comparison).

Usage: python benchmarks/bench_log_window.py [--rows 200000 1000000 3000000] [--src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES = 10
SRC = Path(__file__).resolve().parents[1] / "src"

READ = r"""
import json, resource, sys, time
import pandas, pyarrow.parquet
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from gitml.monitor.logs import read_window
import pandas as pd
log, rows, hours, now = sys.argv[1], sys.argv[2], sys.argv[3], pd.Timestamp(sys.argv[4])
start = time.perf_counter()
window = read_window(log, None if rows == "-" else int(rows), None if hours == "-" else float(hours), now=now)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(window.rows), "seconds": seconds, "peak_mb": (peak - base) / 1024}))
"""


def write_log(root: Path, rows: int, shape: str) -> str:
    """``rows`` rows of the request log under ``root``; returns the newest row's time."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_file, per_hour = (20_000, 600_000) if shape == "server" else (500_000, 500_000)
    group = 50_000 if shape == "compacted" else per_file
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2026-11-01", tz="UTC")
    for first in range(0, rows, per_file):
        n = min(per_file, rows - first)
        index = np.arange(first, first + n)
        ts = start + pd.to_timedelta(index * (3600 / per_hour), unit="s")
        proba = rng.random(n)
        table = pa.table({
            "request_id": pa.array([f"req-{i // 100}" for i in index]).dictionary_encode(),
            "row": pa.array(index % 100, pa.int64()),
            "ts": pa.array(ts.as_unit("us"), pa.timestamp("us", tz="UTC")),
            "model_version": pa.array(["v1"] * n).dictionary_encode(),
            **{f"num_{j}": pa.array(rng.normal(size=n)) for j in range(FEATURES)},
            "prediction": pa.array(np.where(proba > 0.5, "yes", "no")).dictionary_encode(),
            "proba_no": pa.array(1 - proba), "proba_yes": pa.array(proba),
        })
        hour = ts[0].floor("h")
        folder = root / "requests" / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"part-{ts[-1].value}-0-{first}.parquet", row_group_size=group,
                       write_statistics=["request_id", "row", "ts", "model_version", "prediction"])
    return str(ts[-1])


def read(log: Path, window_rows: str, window_hours: str, now: str, src: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", READ, str(log), window_rows, window_hours, now],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000, 3_000_000])
    parser.add_argument("--src", type=Path, default=SRC, help="the src/ folder to read with")
    args = parser.parse_args()
    print("| shape | log rows | window | rows read | seconds | peak MiB |\n| --- | ---: | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="gitml-bench-log-") as work:
        for shape in ("server", "compacted"):
            for rows in args.rows:
                log = Path(work) / f"{shape}-{rows}"
                made = time.perf_counter()
                now = write_log(log, rows, shape)
                print(f"<!-- wrote {shape} {rows} in {time.perf_counter() - made:.1f} s -->", file=sys.stderr)
                for name, window_rows, window_hours in (("rows=5000", "5000", "-"), ("hours=1", "-", "1")):
                    result = read(log, window_rows, window_hours, now, args.src)
                    print(f"| {shape} | {rows:,} | {name} | {result['rows']:,} | {result['seconds']:.2f} "
                          f"| {result['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
