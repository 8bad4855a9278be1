"""Training on data larger than memory: peak RSS and time of ``gitml train`` in memory vs streamed.

Writes a prepared folder as ``gitml prepare`` leaves it for N training rows x 50 features
(``features/train.parquet`` and ``features/val.parquet``: float32 features + an int64 label,
in ``--group-rows`` row groups, generated block by block; ``preprocessor.json`` fitted on a
2,000-row sample with the same columns), then runs ``gitml train`` on it, a process of its
own per mode (peak resident memory from ``os.wait4``, so imports included; wall and CPU seconds):

    never          trainer.stream.mode=never: the whole split read into memory (today's default path)
    always         trainer.stream.mode=always, shuffle_row_groups 4 (the default)
    always, 1 group  shuffle_row_groups 1: the smallest buffer

The model is the default MLP on the CPU (``trainer=cpu``), ``--epochs`` epochs of
``--batch-size`` rows, no checkpoints, so the numbers are the data path's.

    .venv/bin/python benchmarks/bench_train_stream.py                        # 1M rows
    .venv/bin/python benchmarks/bench_train_stream.py --rows 200000 1000000 --work /tmp/train-stream
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FEATURES, BLOCK = 50, 100_000
GITML = str(Path(sys.executable).with_name("gitml"))
MODES = {"never": ["trainer.stream.mode=never"], "always": ["trainer.stream.mode=always"],
         "always, 1 group": ["trainer.stream.mode=always", "trainer.stream.shuffle_row_groups=1"]}


def write_split(path: Path, names: list[str], rows: int, group_rows: int, seed: int) -> None:
    """``rows`` x 50 float32 features and a binary label, one row group per ``group_rows`` rows."""
    rng = np.random.default_rng(seed)
    weights = np.random.default_rng(0).normal(size=FEATURES)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for start in range(0, rows, group_rows):
        n = min(group_rows, rows - start)
        X = rng.normal(size=(n, FEATURES)).astype("float32")
        label = (X @ weights / np.sqrt(FEATURES) + rng.normal(size=n) > 0).astype("int64")
        table = pa.table({**{name: X[:, j] for j, name in enumerate(names)}, "label": label})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=group_rows)
    assert writer is not None
    writer.close()


def prepared(folder: Path, rows: int, group_rows: int) -> None:
    """The prepared folder: a preprocessor fitted on a sample with these columns, and the two splits."""
    from gitml.config.schema import PreprocessConfig
    from gitml.data.contract import infer_contract
    from gitml.data.preprocess import Preprocessor

    rng = np.random.default_rng(1)
    sample = pd.DataFrame(rng.normal(size=(2_000, FEATURES)), columns=[f"x{j:02d}" for j in range(FEATURES)])
    sample["label"] = rng.integers(0, 2, len(sample))
    prep = Preprocessor.fit(sample, infer_contract(sample, "label"), PreprocessConfig())
    folder.mkdir(parents=True, exist_ok=True)
    prep.save(folder / "preprocessor.json")
    names = prep.feature_names()
    assert len(names) == FEATURES, names
    write_split(folder / "features" / "train.parquet", names, rows, group_rows, seed=2)
    write_split(folder / "features" / "val.parquet", names, max(rows // 5, 1), group_rows, seed=3)


def measured(command: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MiB, stderr) of one command, a process of its own.

    CPU seconds (user + system) vary less than wall seconds on a shared machine."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    err = process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, err  # Linux: kilobytes


def run(rows: int, work: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    project = work / f"rows{rows}"
    shutil.rmtree(project, ignore_errors=True)
    start = time.perf_counter()
    prepared(project / "prepared", rows, args.group_rows)
    size = (project / "prepared/features/train.parquet").stat().st_size / 2**20
    print(f"{rows:>9,} training rows: prepared in {time.perf_counter() - start:.0f} s ({size:.0f} MiB on disk, "
          f"{rows * (FEATURES + 1) * 4 / 2**20:.0f} MiB as float32)", flush=True)
    results = {}
    for mode in args.modes:
        overrides = MODES[mode]
        params = f"{mode.replace(', ', '-').replace(' ', '-')}.yaml"
        subprocess.run([GITML, "config", "compose", "--conf-dir", str(ROOT / "conf"), "--params", params,
                        "trainer=cpu", f"trainer.epochs={args.epochs}", f"trainer.batch_size={args.batch_size}",
                        "trainer.checkpoint=false", "data.target=label", *overrides],
                       cwd=project, check=True, capture_output=True)
        out = project / mode.replace(", ", "-").replace(" ", "-")
        seconds, cpu, mib, err = measured([GITML, "train", "--params", params, "--data", "prepared", "--out", f"{out}/model",
                                      "--curves", f"{out}/curves.csv", "--summary", f"{out}/train.json"], project)
        curves = pd.read_csv(out / "curves.csv")
        summary = json.loads((out / "train.json").read_text())["train"]
        assert summary["streamed"] == (mode != "never"), (mode, summary, err[-2000:])
        results[mode] = {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": mib, "val_loss": float(curves["val_loss"].iloc[-1]),
                         "val_accuracy": float(curves["val_accuracy"].iloc[-1])}
        print(f"  {mode:<16} {seconds:7.1f} s ({cpu:.1f} s CPU) {mib:8.0f} MiB  val_loss {results[mode]['val_loss']:.4f} "
              f"val_accuracy {results[mode]['val_accuracy']:.4f}", flush=True)
    shutil.rmtree(project / "prepared", ignore_errors=True)
    return results


def table(found: dict[int, dict[str, dict[str, float]]]) -> str:
    sizes = sorted(found)
    lines = ["| mode | " + " | ".join(f"{n:,} rows" for n in sizes) + " |", "| --- |" + " ---: |" * len(sizes)]
    for mode in MODES:
        cells = [f"{found[n][mode]['peak_mib']:.0f} MiB, {found[n][mode]['seconds']:.1f} s "
                 f"({found[n][mode].get('cpu_seconds', float('nan')):.1f} s CPU), "
                 f"val acc {found[n][mode]['val_accuracy']:.3f}" if mode in found[n] else "-" for n in sizes]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--group-rows", type=int, default=BLOCK, help="rows per row group (data.chunk_rows)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/gitml-bench-train-stream"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results_file = args.work / "results.json"
    found = {int(k): v for k, v in json.loads(results_file.read_text()).items()} if results_file.exists() else {}
    for rows in args.rows:
        found[rows] = {**found.get(rows, {}), **run(rows, args.work, args)}
        results_file.write_text(json.dumps(found, indent=1))
    print(f"\nload average {os.getloadavg()[0]:.1f}, {args.epochs} epochs of {args.batch_size} rows, "
          f"{args.group_rows:,}-row groups\n")
    print(table(found))


if __name__ == "__main__":
    main()
