"""The default ``dvc repro``: where its seconds go, vs the same commands in one process.

A clone of the project runs ``dvc repro -f`` ``--repeats`` times. A ``gitml`` shim first on
PATH times every stage's process (wall and CPU seconds), so the report splits the total
into each stage and DVC's own share (the total less the stages). The floor is the plain
alternative to a stage per process: the same seven commands, resolved from dvc.yaml,
called one after another in one Python process, which pays each import once.

Usage: python benchmarks/repro_startup.py [--repeats 3] [--src OTHER_TREE]
(``--src`` times another checkout, e.g. a ``git worktree`` of an older commit: its project
files and its ``src/`` are used, with this venv's packages.)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIM = """#!{python}
import json, os, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call([{python!r}, "-m", "gitml", *sys.argv[1:]])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(os.environ["REPRO_BENCH_LOG"], "a") as log:
    log.write(json.dumps({{"stage": sys.argv[1], "wall": time.perf_counter() - started,
                          "cpu": usage.ru_utime + usage.ru_stime}}) + "\\n")
sys.exit(code)
"""
IN_ONE_PROCESS = """
import sys, time
from typer.main import get_command
from gitml.cli import app
command = get_command(app)
for argv in {commands!r}:
    command.main(argv, prog_name="gitml", standalone_mode=False)
"""


def stage_commands(project: Path) -> list[list[str]]:
    """Each stage's command (``gitml`` dropped), as DVC resolves it from dvc.yaml and params.yaml."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        stages = [s for s in repo.index.stages if getattr(s, "cmd", None)]
        order = {s.addressing: i for i, s in enumerate(_topological(repo))}
        stages.sort(key=lambda s: order.get(s.addressing, 0))
        return [shlex.split(s.cmd)[1:] for s in stages]


def _topological(repo):
    import networkx as nx

    return list(reversed(list(nx.topological_sort(repo.index.graph))))


def run_repro(project: Path, env: dict[str, str], log: Path) -> tuple[float, list[dict]]:
    log.write_text("")
    started = time.perf_counter()
    subprocess.run(["dvc", "repro", "-f", "-q"], cwd=project, env=env, check=True)
    total = time.perf_counter() - started
    return total, [json.loads(line) for line in log.read_text().splitlines()]


def run_in_one_process(project: Path, env: dict[str, str], commands: list[list[str]]) -> tuple[float, float]:
    started = time.perf_counter()
    before = os.times()
    subprocess.run([sys.executable, "-c", IN_ONE_PROCESS.format(commands=commands)], cwd=project, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = os.times()
    return time.perf_counter() - started, (after.children_user - before.children_user
                                           + after.children_system - before.children_system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--src", type=Path, default=ROOT, help="project checkout to reproduce (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="repro-bench-") as tmp:
        work = Path(tmp)
        project, bin_dir, log = work / "project", work / "bin", work / "stages.jsonl"
        subprocess.run(["git", "clone", "-q", str(args.src.resolve()), str(project)], check=True)
        bin_dir.mkdir()
        (bin_dir / "gitml").write_text(SHIM.format(python=sys.executable))
        (bin_dir / "gitml").chmod(0o755)
        env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
               "PYTHONPATH": str(args.src.resolve() / "src"), "REPRO_BENCH_LOG": str(log),
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        subprocess.run(["dvc", "repro", "-q"], cwd=project, env=env, check=True,  # warm-up: fills the cache
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        commands = stage_commands(project)
        totals, stages, floors = [], [], []
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            total, per_stage = run_repro(project, env, log)
            totals.append(total)
            stages.append(per_stage)
            floors.append(run_in_one_process(project, env, commands))
        report(args.src, totals, stages, floors)


def report(src: Path, totals: list[float], stages: list[list[dict]], floors: list[tuple[float, float]]) -> None:
    names = [s["stage"] for s in stages[0]]
    print(f"# dvc repro -f, {len(totals)} runs of {src} (load {os.getloadavg()[0]:.1f})")
    print("| stage | wall s (median) | CPU s (median) |\n| --- | ---: | ---: |")
    for i, name in enumerate(names):
        print(f"| {name} | {statistics.median(run[i]['wall'] for run in stages):.2f} "
              f"| {statistics.median(run[i]['cpu'] for run in stages):.2f} |")
    stage_sum = statistics.median(sum(s["wall"] for s in run) for run in stages)
    best, median = min(totals), statistics.median(totals)
    floor = min(wall for wall, _ in floors)
    print(f"| **stages, summed** | {stage_sum:.2f} | "
          f"{statistics.median(sum(s['cpu'] for s in run) for run in stages):.2f} |")
    print(f"\n`dvc repro -f`: best {best:.1f} s, median {median:.1f} s; DVC's own share "
          f"{median - stage_sum:.1f} s")
    print(f"same commands in one process: best {floor:.1f} s, "
          f"CPU {statistics.median(cpu for _, cpu in floors):.1f} s; ratio (best/best) {best / floor:.2f}x")


if __name__ == "__main__":
    main()
