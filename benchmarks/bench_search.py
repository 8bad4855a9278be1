"""``gitml exp search`` (Optuna TPE) vs a grid, on the same budget of gated experiments.

Builds a project on the built-in regression set (data=diabetes, the torch MLP), runs the
baseline once, then a grid of ``--grid-points`` points with DVC's queue and a search of as
many points with ``gitml exp search``, both with ``--workers`` workers, and reports the best
test RMSE each found and its wall time. The points are real pipeline runs: minutes.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.projects import make_project

BIN = Path(sys.executable).parent
GRID = {"model.dropout": ["0.0", "0.25", "0.5"], "model.optimizer.lr": ["0.0003", "0.003", "0.03"]}


def sh(*args: str, cwd: Path) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def rmse_of(project: Path, searched: bool) -> dict[str, float]:
    """Test RMSE of each gated experiment of the commit: the search's (gitml-search-*) or the grid's."""
    head = sh("git", "rev-parse", "HEAD", cwd=project).strip()
    shown = json.loads(sh("dvc", "exp", "show", "--json", cwd=project))
    found = {}
    for entry in shown:
        if entry["rev"] != head:
            continue
        for group in entry.get("experiments") or []:
            for rev in group["revs"]:
                if rev["name"].startswith("gitml-search") == searched:
                    metrics = rev["data"]["metrics"]
                    if metrics.get("reports/gate.json", {}).get("data", {}).get("verdict") == "pass":
                        found[rev["name"]] = metrics["reports/metrics.json"]["data"]["test"]["rmse"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"  # dvc and gitml of this interpreter
    points = len(GRID["model.dropout"]) * len(GRID["model.optimizer.lr"])
    with tempfile.TemporaryDirectory(prefix="gitml-bench-search-") as tmp:
        project = make_project(Path(tmp) / "project")
        # In conf/ itself: `dvc exp run -S` recomposes every grid point from conf/ and its -S alone.
        config = project / "conf/config.yaml"
        config.write_text(config.read_text().replace("- data: breast_cancer", "- data: diabetes"))
        sh("gitml", "config", "compose", "trainer=cpu", f"trainer.epochs={args.epochs}", cwd=project)
        sh("dvc", "repro", cwd=project)
        sh("git", "add", "-A", cwd=project)
        sh("git", "commit", "-qm", "baseline", cwd=project)
        base = json.loads((project / "reports/metrics.json").read_text())["test"]["rmse"]

        started = time.perf_counter()
        fixed = ("-S", "trainer=cpu", "-S", f"trainer.epochs={args.epochs}")
        sh("dvc", "exp", "run", "--queue", *fixed,
           *(a for k, v in GRID.items() for a in ("-S", f"{k}={','.join(v)}")), cwd=project)
        sh("dvc", "queue", "start", "-j", str(args.workers), cwd=project)
        while any(w in sh("dvc", "queue", "status", cwd=project) for w in ("Queued", "Running")):
            time.sleep(2)
        grid_seconds = time.perf_counter() - started
        grid = rmse_of(project, searched=False)

        started = time.perf_counter()
        sh("gitml", "exp", "search", "--metric", "test.rmse", "--trials", str(points), "-j", str(args.workers),
           "--param", "model.dropout=float:0:0.5", "--param", "model.optimizer.lr=float:0.0003:0.03:log", cwd=project)
        search_seconds = time.perf_counter() - started
        tpe = rmse_of(project, searched=True)
    print(f"data=diabetes, torch MLP, {args.epochs} epochs; baseline (default params) test rmse {base:.3f}")
    print(f"  grid   {len(grid)} points: best rmse {min(grid.values()):.3f}, {grid_seconds:6.1f} s")
    print(f"  search {len(tpe)} points: best rmse {min(tpe.values()):.3f}, {search_seconds:6.1f} s "
          f"(TPE, {args.workers} at a time)")


if __name__ == "__main__":
    main()
