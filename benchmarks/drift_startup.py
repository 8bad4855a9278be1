"""``gitml drift check`` end to end vs a plain ``scipy.stats.ks_2samp`` script, each in a fresh process.

What a scheduled drift job pays: a new interpreter, the imports, reading the bundle and
the last ``drift.window_rows`` rows of a request log of many small files, fitting and
running the detectors, writing the report. The floor is a script a user would otherwise
run: ``python -c "import numpy, scipy.stats; ks_2samp(...)"`` per column on the same arrays
(the bundle's reference sample and the window, saved as ``.npy`` once, outside the timing).

Set-up, once: a real bundle (scikit-learn, the synthetic data's 10 features) and a request
log written as ``gitml serve`` writes it: ``--rows`` rows over ``--hours`` hours in files
of ``--rows-per-file`` rows (a flush every few seconds), every 10th row labelled in the
feedback log. Variants run ``--repeats`` times, interleaved, each in a new process with
the default settings (``drift.detector=tabular``, ``window_rows=5000``, prediction drift
and label metrics on): the check with no detector cache (as on a fresh CI runner), with
the cache a previous run left, and with ``--plots`` (the scheduled workflow's call).
Reported per variant: best and median wall seconds, the ratio of the best to the floor's
best, CPU seconds and peak memory of the process (``wait4``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASELINE = (
    "import sys, numpy as np; from scipy.stats import ks_2samp; "
    "r, c = np.load(sys.argv[1]), np.load(sys.argv[2]); "
    "p = [ks_2samp(r[:, j], c[:, j]).pvalue for j in range(r.shape[1])]; "
    "print(sum(v < 0.05 / len(p) for v in p), 'of', len(p), 'drifted')"
)


def set_up(work: Path, rows: int, hours: float, rows_per_file: int) -> None:
    """Bundle, request and feedback logs, and the floor's two arrays under ``work``."""
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    import numpy as np
    import pandas as pd
    from tests.drift_helpers import make_bundle, synthetic_pool, write_feedback, write_requests

    from gitml.monitor.logs import read_requests
    from gitml.package.bundle import load_bundle

    pool = synthetic_pool(2000 + rows)
    bundle = load_bundle(make_bundle(work / "bundle", pool.iloc[:2000]))
    features = [c["name"] for c in bundle.signature["inputs"]] if isinstance(bundle.signature, dict) \
        else list(bundle.signature.features)
    current = pool.iloc[2000:]
    logged = write_requests(work / "logs", current[features], bundle.predict(current[features]),
                            model_version=bundle.version, every_seconds=hours * 3600 / rows,
                            rows_per_file=rows_per_file)
    write_feedback(work / "logs", logged.iloc[::10], current["target"].iloc[::10], rows_per_file=rows_per_file)
    window = read_requests(work / "logs", window_rows=5000)
    reference = bundle.reference() if callable(getattr(bundle, "reference", None)) else bundle.reference
    for name, frame in (("reference", reference), ("current", window)):
        # Categorical columns as integer codes over the union of levels: ks_2samp needs numbers.
        coded = [pd.Categorical(frame[c], categories=sorted(set(pool[c]))).codes if pool[c].dtype == object
                 else frame[c].to_numpy(dtype="float64") for c in features]
        np.save(work / f"{name}.npy", np.column_stack(coded).astype("float64"))


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """Wall s, CPU s (user + system), peak RSS MiB, exit code and the first output line of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    first = next((line for line in output.splitlines() if line.startswith(("drift check", "0", "1", "2", "3"))),
                 output.strip()[-200:])
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="request-log rows")
    parser.add_argument("--hours", type=float, default=24.0, help="hours they span")
    parser.add_argument("--rows-per-file", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keep the set-up here (reused when present)")
    parser.add_argument("--set-up-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="drift-startup-"))
    if args.set_up_only:
        return set_up(work, args.rows, args.hours, args.rows_per_file)
    if not (work / "current.npy").exists():
        # In a child: this process stays small, so a forked child's peak memory is its own.
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--set-up-only", "--work", str(work), "--rows", str(args.rows),
                        "--hours", str(args.hours), "--rows-per-file", str(args.rows_per_file)], check=True)
        print(f"set-up: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    files = sum(1 for _ in (work / "logs").rglob("*.parquet"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # the gitml of this tree, not another install
    check = [sys.executable, "-m", "gitml", "drift", "check", "--bundle", "bundle", "--log-dir", "logs"]
    has_plots = "--plots" in subprocess.run([*check[:5], "--help"], capture_output=True, text=True,
                                            env={**env, "COLUMNS": "200"}).stdout
    variants = {
        "scipy ks_2samp script (floor)": lambda i: [sys.executable, "-c", BASELINE, "reference.npy", "current.npy"],
        "gitml drift check, no detector cache": lambda i: [*check, "--out", f"out/cold{i}", "--cache", f"cache/cold{i}"],
        "gitml drift check, cached detectors": lambda i: [*check, "--out", f"out/warm{i}", "--cache", "cache/warm"],
    }
    if has_plots:
        variants["gitml drift check --plots, no cache"] = lambda i: [*check, "--out", f"out/plots{i}", "--cache",
                                                                    f"cache/plots{i}", "--plots"]
    shutil.rmtree(work / "out", ignore_errors=True)
    shutil.rmtree(work / "cache", ignore_errors=True)
    subprocess.run(variants["gitml drift check, cached detectors"](-1), cwd=work, env=env, capture_output=True)
    results: dict[str, list[tuple[float, float, float, int, str]]] = {name: [] for name in variants}
    for i in range(args.repeats):
        for name, command in variants.items():
            results[name].append(timed(command(i), work, env))
    floor = min(r[0] for r in results["scipy ks_2samp script (floor)"])
    print(f"{args.rows:,} logged rows over {args.hours:g} h in {files:,} files (requests + feedback), "
          f"window 5,000 rows; {args.repeats} repeats, {os.cpu_count()} CPUs, gitml from {ROOT / 'src'}\n")
    print("| variant | best s | median s | best vs floor | CPU s (median) | peak MiB | exit | output |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, runs in results.items():
        walls = [r[0] for r in runs]
        print(f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | {min(walls) / floor:.1f}x "
              f"| {statistics.median(r[1] for r in runs):.2f} | {max(r[2] for r in runs):.0f} | {runs[-1][3]} "
              f"| {runs[-1][4]} |")


if __name__ == "__main__":
    main()
