"""gitml's drift detectors vs a plain per-column ``scipy.stats.ks_2samp`` loop (the floor).

Same arrays for every variant: ``--rows`` x ``--cols`` reference and current, numeric, the
current window shifted on a few columns. gitml runs what ``gitml drift check`` runs for
``drift.detector=ks`` / ``tabular``: encode the DataFrames by the signature, build the
alibi-detect detector on the reference, test the window, wrap the result in a
``DriftResult``. A second gitml row times only the test, as when the fitted detector comes
from the cache. gitml lays the encoded columns out column-major, which makes each column's
sort cheaper than slicing a row-major array; the "column-major copies" row runs the floor's
loop on such copies (copy time excluded) to show that effect apart. Variants run ``--repeats`` times, interleaved; the best (least disturbed)
and the median time are reported with their ratio to the floor.

MMD's cost grows with the square of the rows, so ``gitml drift check`` subsamples both sides
to ``drift.max_rows``; the last rows time fit + test at such caps (``--mmd-rows``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gitml.config.schema import DetectorKind, DriftConfig
from gitml.monitor.detectors import fit_detector


def make_data(rows: int, cols: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    names = [f"x_{j}" for j in range(cols)]
    reference = pd.DataFrame(rng.normal(size=(rows, cols)), columns=names)
    current = pd.DataFrame(rng.normal(size=(rows, cols)), columns=names)
    current.iloc[:, :3] += 0.05  # a small shift on 3 columns: every variant must find it
    signature = {"inputs": [{"name": n, "dtype": "float"} for n in names],
                 "outputs": {"label": "target", "classes": [0, 1]}}
    return reference, current, signature


def scipy_loop(reference: np.ndarray, current: np.ndarray, p_val: float) -> list[str]:
    from scipy.stats import ks_2samp

    p_values = [ks_2samp(reference[:, j], current[:, j]).pvalue for j in range(reference.shape[1])]
    return [f"x_{j}" for j, p in enumerate(p_values) if p < p_val / len(p_values)]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mmd-rows", type=int, nargs="*", default=[1000, 2000])
    args = parser.parse_args()

    import alibi_detect.cd  # noqa: F401 - import once, outside every timing

    reference, current, signature = make_data(args.rows, args.cols)
    ref_array, cur_array = reference.to_numpy(), current.to_numpy()
    ref_columns, cur_columns = np.asfortranarray(ref_array), np.asfortranarray(cur_array)
    cfg = {kind: DriftConfig(detector=DetectorKind(kind)) for kind in ("ks", "tabular")}
    fitted = {kind: fit_detector(kind, reference, signature, cfg[kind]) for kind in cfg}
    variants: dict[str, Callable[[], object]] = {
        "scipy ks_2samp loop (floor)": lambda: scipy_loop(ref_array, cur_array, 0.05),
        "scipy loop on column-major copies (reference)": lambda: scipy_loop(ref_columns, cur_columns, 0.05),
        "gitml ks: fit + test": lambda: fit_detector("ks", reference, signature, cfg["ks"]).test(current),
        "gitml tabular: fit + test": lambda: fit_detector("tabular", reference, signature, cfg["tabular"]).test(current),
        "gitml ks: test (cached fit)": lambda: fitted["ks"].test(current),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    found: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            seconds, out = timed(fn)
            times[name].append(seconds)
            found[name] = out if isinstance(out, list) else sorted(out.drifted_features)
    floor = min(times["scipy ks_2samp loop (floor)"])
    floor_median = statistics.median(times["scipy ks_2samp loop (floor)"])
    print(f"{args.rows:,} x {args.cols} reference vs {args.rows:,} x {args.cols} current, "
          f"{args.repeats} repeats, {torch_threads()} torch threads\n")
    print("| variant | best s | median s | best vs floor | median vs floor | drifted columns |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(f"| {name} | {best:.3f} | {median:.3f} | {best / floor:.2f}x | {median / floor_median:.2f}x "
              f"| {', '.join(found[name])} |")
    if args.mmd_rows:
        print("\n| MMD (pytorch, 100 permutations) | fit s | test s | p-value |")
        print("| --- | ---: | ---: | ---: |")
    for cap in args.mmd_rows:
        mmd_cfg = DriftConfig(detector=DetectorKind.mmd, max_rows=cap)
        fit_s, detector = timed(lambda cfg=mmd_cfg: fit_detector("mmd", reference, signature, cfg))
        test_s, result = timed(lambda d=detector: d.test(current))
        print(f"| max_rows={cap} ({cap} vs {cap} rows of {args.cols}) | {fit_s:.2f} | {test_s:.2f} "
              f"| {result.p_value:.3f} |")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
