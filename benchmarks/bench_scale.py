"""Data larger than memory: time and peak memory of ingest, validate, prepare and batch predict.

For each ``--rows`` N, writes an N x 50 feature Parquet source (44 float columns, 2 with
1% nulls, an integer, 5 categoricals of 8 levels, a binary label; generated and written
100k rows a row group, whatever N, so the generator stays small and every N is read in like row groups), then runs the real commands as
separate processes in a scratch project:

    gitml ingest / gitml validate (contract inferred) / gitml prepare   (params.yaml: data=parquet)
    gitml validate with that contract declared (data.schema.path): the checks alone
    gitml predict --bundle B source.parquet -o predictions.parquet

Each command's wall seconds and peak resident memory (``os.wait4``'s ``ru_maxrss`` of that
one process) are reported per N, with the growth from the first N to the others. The
bundle for ``predict`` is assembled once, from the first N's prepared data (a logistic
regression fitted on 20k training rows: the trainer is not what is measured here).

    .venv/bin/python benchmarks/bench_scale.py                       # 100k, 1M, 5M rows
    .venv/bin/python benchmarks/bench_scale.py --rows 100000 1000000 --work /tmp/scale
    .venv/bin/python benchmarks/bench_scale.py --rows 1000000 --src /tmp/old/src --work /tmp/old-scale
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

N_FLOAT, N_CAT, LEVELS, BLOCK = 44, 5, 8, 100_000
GITML = [str(Path(sys.executable).with_name("gitml"))]
ENV = dict(os.environ)
STAGES = ("ingest", "validate", "validate, declared contract", "prepare", "predict")


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """N rows x 50 features + ``label``, written block by block (values clipped to +-4 sd)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=N_FLOAT)
    writer = None
    for start in range(0, rows, BLOCK):
        n = min(BLOCK, rows - start)
        numbers = np.clip(rng.normal(size=(n, N_FLOAT)), -4, 4)
        columns: dict[str, object] = {f"x{j:02d}": numbers[:, j] for j in range(N_FLOAT)}
        for j in (0, 1):  # nullable columns
            columns[f"x{j:02d}"] = np.where(rng.random(n) < 0.01, np.nan, numbers[:, j])
        columns["age"] = rng.integers(18, 91, n)
        levels = np.array([f"level_{i}" for i in range(LEVELS)])
        codes = rng.integers(0, LEVELS, size=(n, N_CAT))
        for j in range(N_CAT):
            columns[f"cat{j}"] = levels[codes[:, j]]
        score = numbers @ weights / np.sqrt(N_FLOAT) + (codes[:, 0] < 3) - 0.5
        columns["label"] = (score + rng.normal(size=n) > 0).astype("int64")
        table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def measured(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one command, a process of its own."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
    return seconds, usage.ru_maxrss / 1024  # Linux: kilobytes


def build_bundle(project: Path, out: Path) -> None:
    """A logistic regression on 20k prepared training rows, with the run's contract and preprocessor."""
    from gitml.config.schema import SklearnConfig, TrainerConfig
    from gitml.data.contract import load_contract
    from gitml.data.preprocess import Preprocessor
    from gitml.models import build_model
    from gitml.package.bundle import PREPROCESSOR, assemble
    from gitml.package.signature import Signature

    prepared = project / "data" / "prepared"
    contract = load_contract(project / "data" / "contract.json")
    prep = Preprocessor.load(prepared / "preprocessor.json")
    records = next(pq.ParquetFile(prepared / "train.parquet").iter_batches(batch_size=20_000)).to_pandas()
    model = build_model(SklearnConfig(estimator={"_target_": "sklearn.linear_model.LogisticRegression"}),
                        TrainerConfig(device="cpu"), classes=contract.classes,
                        feature_names=prep.feature_names(), task=contract.task)
    model_dir = out.parent / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    model.fit(prep.transform(records), prep.encode_labels(records["label"])).save(model_dir)
    prep.save(model_dir / PREPROCESSOR)
    assemble(out, model_dir=model_dir, signature=Signature.from_contract(contract),
             metadata={"version": "v1", "bundle_id": "bench-scale"}, reference=records.head(2000), card="# bench\n")


def run(rows: int, work: Path, bundle: Path | None, chunk_rows: int | None, src: Path | None,
        ) -> dict[str, tuple[float, float]]:
    project = work / f"rows{rows}"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    start = time.perf_counter()
    generate(project / "source.parquet", rows)
    print(f"{rows:>9,} rows: source written in {time.perf_counter() - start:.0f} s "
          f"({(project / 'source.parquet').stat().st_size / 2**20:.0f} MiB)", flush=True)
    conf = ROOT / "conf" if src is None else src.parent / "conf"
    chunks = [] if chunk_rows is None else [f"data.chunk_rows={chunk_rows}"]
    for params, schema in (("params.yaml", "null"), ("declared.yaml", "declared.json")):
        subprocess.run([*GITML, "config", "compose", "--conf-dir", str(conf), "--params", params,
                        "data=parquet", "data.name=scale", "data.target=label", "data.source.label=label",
                        "data.source.path=source.parquet", f"data.schema.path={schema}", "data.slices=[]",
                        *chunks], cwd=project, check=True, capture_output=True, env=ENV)
    commands = {  # the declared contract: what the inferred run wrote, so the checks are the same
        "ingest": ["ingest", "--params", "params.yaml"], "validate": ["validate", "--params", "params.yaml"],
        "validate, declared contract": ["validate", "--params", "declared.yaml", "--contract", "declared-out.json",
                                        "--report", "declared-report.json"],
        "prepare": ["prepare", "--params", "params.yaml"],
    }
    results = {}
    for stage, command in commands.items():
        if stage == "validate, declared contract":
            shutil.copy(project / "data" / "contract.json", project / "declared.json")
        results[stage] = measured([*GITML, *command], project)
        print(f"  {stage:<28} {results[stage][0]:7.1f} s {results[stage][1]:8.0f} MiB", flush=True)
    if bundle is None:
        bundle = work / "bundle"
        shutil.rmtree(bundle, ignore_errors=True)
        build_bundle(project, bundle)
    results["predict"] = measured([*GITML, "predict", "--bundle", str(bundle), "source.parquet",
                                   "-o", "predictions.parquet"], project)
    print(f"  {'predict':<28} {results['predict'][0]:7.1f} s {results['predict'][1]:8.0f} MiB", flush=True)
    for folder in ("source.parquet", "data", "predictions.parquet"):  # GBs at 5M rows
        target = project / folder
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    return results


def table(all_results: dict[int, dict[str, tuple[float, float]]]) -> str:
    sizes = sorted(all_results)
    head = "| stage | " + " | ".join(f"{n:,} rows" for n in sizes) + " | growth, " + f"{sizes[0]:,} -> {sizes[-1]:,} rows |"
    lines = [head, "| --- |" + " ---: |" * (len(sizes) + 1)]
    for stage in STAGES:
        cells = [f"{all_results[n][stage][0]:.1f} s, {all_results[n][stage][1]:.0f} MiB" for n in sizes]
        first, last = all_results[sizes[0]][stage], all_results[sizes[-1]][stage]
        growth = f"time x{last[0] / first[0]:.1f}, memory x{last[1] / first[1]:.2f}"
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {growth} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gitml-bench-scale"))
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="data.chunk_rows for the stages")
    parser.add_argument("--src", type=Path, help="run the commands from another checkout's src/ (a git worktree), "
                                                 "composing with its conf/ (no data.chunk_rows before it existed)")
    args = parser.parse_args()
    if args.src is not None:  # python -m gitml with that tree first on the path
        GITML[:] = [sys.executable, "-m", "gitml"]
        ENV["PYTHONPATH"] = str(args.src.resolve())
        args.chunk_rows = None
    args.work.mkdir(parents=True, exist_ok=True)
    results_file = args.work / "results.json"
    found = {int(k): v for k, v in json.loads(results_file.read_text()).items()} if results_file.exists() else {}
    bundle = args.work / "bundle" if (args.work / "bundle").is_dir() else None
    for rows in args.rows:
        found[rows] = run(rows, args.work, bundle, args.chunk_rows, args.src)
        bundle = args.work / "bundle"
        results_file.write_text(json.dumps(found, indent=1))  # runs add up: 5M can run on its own later
    print(f"\nload average {os.getloadavg()[0]:.1f}, data.chunk_rows={args.chunk_rows}, src={args.src}\n")
    print(table(found))


if __name__ == "__main__":
    main()
