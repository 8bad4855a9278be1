"""The git-tag registry at 10, 100 and 1,000 models x 5 versions: gitml vs GTO on the same tags.

Each model gets 5 registrations (``m0042@v1.0.0`` .. ``v1.4.0``, one commit each) and two
stage assignments (``m0042#staging#1`` on v1.4.0, ``m0042#prod#2`` on v1.3.0): 7 annotated
tags a model, 7,000 at 1,000 models, written in one ``git fast-import``. Then, for one
model, each command runs ``--repeats`` times as a fresh process (what a user and CI pay):

- ``gitml registry show`` and ``gto show m0000``: every version and its stages;
- ``gitml registry which prod`` and ``gto show m0000#prod``;
- in process, ``list_versions`` vs ``gto.api.show`` (the import and start-up excluded).

Then the same repository becomes what it stands for, a repository of N models
(``bench_changed.build_repo``: params.yaml declaring N models, dvc.lock with 7 stages each,
conf/models/, and one commit changing one model), and each command runs again, named for
model m0000 with ``--model``, beside ``gto show`` on the same tags and ``gitml models
changed --base HEAD^1`` ("which models did this change touch"). ``--quick`` skips that part.

Best and median seconds, and GTO over gitml.
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

import yaml
from bench_changed import build_repo as add_models

BIN = Path(sys.executable).parent
SRC = Path(__file__).resolve().parents[1] / "src"


def build_repo(root: Path, models: int, versions: int = 5) -> None:
    """A repository whose commits and tags come from one fast-import stream."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    when = 1_760_000_000
    lines = []
    # the repository's own params.yaml, naming model m0000
    params = yaml.safe_load((SRC.parent / "params.yaml").read_text())
    params["registry"]["model"] = "m0000"
    blob = yaml.safe_dump(params, sort_keys=False).encode()
    lines.append(f"blob\nmark :1\ndata {len(blob)}\n{blob.decode()}")  # ASCII: bytes = characters
    commits = []
    for i in range(versions):
        mark = 100 + i
        message = f"c{i}"
        lines.append(f"commit refs/heads/main\nmark :{mark}\ncommitter B <b@x> {when + i} +0000\n"
                     f"data {len(message)}\n{message}\nM 100644 :1 params.yaml\n")
        commits.append(mark)
    stamp = when + versions
    for m in range(models):
        name = f"m{m:04d}"
        for v, commit in enumerate(commits):
            msg = f"Registering artifact {name} version v1.{v}.0"
            lines.append(f"tag {name}@v1.{v}.0\nfrom :{commit}\ntagger B <b@x> {stamp} +0000\ndata {len(msg)}\n{msg}")
            stamp += 1
        for counter, (stage, v) in enumerate((("staging", versions - 1), ("prod", versions - 2)), start=1):
            msg = f"Assigning stage {stage} to artifact {name} version v1.{v}.0"
            lines.append(f"tag {name}#{stage}#{counter}\nfrom :{commits[v]}\ntagger B <b@x> {stamp} +0000\n"
                         f"data {len(msg)}\n{msg}")
            stamp += 1
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "-C", str(root), "fast-import", "--quiet"], input=stream.encode(), check=True)
    subprocess.run(["git", "-C", str(root), "checkout", "-q", "main"], check=True)


def timed(command: list[str], cwd: Path, repeats: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
        out.append(time.perf_counter() - started)
    return out


def in_process(root: Path, repeats: int) -> dict[str, list[float]]:
    sys.path.insert(0, str(SRC))
    import gto.api

    from gitml.registry.tags import list_versions

    times: dict[str, list[float]] = {"list_versions": [], "gto.api.show": []}
    for _ in range(repeats):
        started = time.perf_counter()
        mine = list_versions(root, "m0000")
        times["list_versions"].append(time.perf_counter() - started)
        started = time.perf_counter()
        theirs = gto.api.show(str(root), "m0000")
        times["gto.api.show"].append(time.perf_counter() - started)
    assert [v.version for v in mine] == sorted((r["version"] for r in theirs), reverse=True), (mine, theirs)
    return times


def rows(root: Path, repeats: int, model: list[str]) -> dict[str, list[float]]:
    """The CLI pairs (gitml, gto) on ``root``; ``model``: the --model option, for a repository of several."""
    gitml, gto = str(BIN / "gitml"), str(BIN / "gto")
    pairs = [
        ("gitml registry show", [gitml, "registry", "show", *model], "gto show m0000", [gto, "show", "m0000"]),
        ("gitml registry which prod", [gitml, "registry", "which", "prod", *model],
         "gto show m0000#prod", [gto, "show", "m0000#prod"]),
    ]
    results = {}
    for mine, mine_cmd, theirs, theirs_cmd in pairs:
        results[mine] = timed(mine_cmd, root, repeats)
        results[theirs] = timed(theirs_cmd, root, repeats)
    return results


RATIOS = {"gto show m0000": "gitml registry show", "gto show m0000#prod": "gitml registry which prod",
          "gto.api.show": "list_versions"}


def report(models: int, results: dict[str, list[float]], label: str) -> None:
    for name, times in results.items():
        ratio = f"{min(times) / min(results[RATIOS[name]]):.1f}x" if name in RATIOS else ""
        print(f"{models:>6} {models * 7:>6}  {label:<12} {name:<34} {min(times):>7.3f} "
              f"{statistics.median(times):>8.3f}  {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the tags alone: no repository of N models")
    args = parser.parse_args()
    print(f"{'models':>6} {'tags':>6}  {'params.yaml':<12} {'command':<34} {'best s':>7} {'median s':>8}  gto / gitml")
    for models in args.models:
        root = Path(tempfile.mkdtemp(prefix=f"registry{models}-"))
        try:
            build_repo(root, models)
            results = rows(root, args.repeats, [])
            results.update(in_process(root, args.repeats))
            report(models, results, "one model")
            if args.quick:
                continue
            changed = add_models(root, models)
            results = rows(root, args.repeats, ["--model", "m0000"])
            results["gitml models changed"] = timed([str(BIN / "gitml"), "models", "changed", "--base", "HEAD^1"],
                                                    root, args.repeats)
            report(models, results, f"{models} models")
            print(f"{'':>15}(the change touched {changed})")
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
