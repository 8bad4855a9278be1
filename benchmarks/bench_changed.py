"""'Which models did this change touch' (``gitml models changed``) at 10, 100 and 1,000 models.

A synthetic repository of N models in the shapes gitml and DVC write: params.yaml is what
``gitml init --models m0000:breast_cancer:logreg`` composes, its ``models.m0000`` section
repeated per model under that model's name (about 150 lines each); dvc.yaml is the
several-model pipeline; dvc.lock holds the 7 stages of every model as DVC records them
(cmd, deps and outs with md5/size, the params each stage declares with their values:
about 12 kB a model, as a real `dvc repro` writes); one conf/models/<name>.yaml each.
Then one change that touches one model the way a pull request and CI's `dvc repro` do: its
conf file and its ``trainer.epochs``, and its train, evaluate, package and gate entries.

Timed, each ``--repeats`` times: ``gitml models changed --base HEAD^1 --head HEAD`` as a
fresh process (what CI pays), the same against the working tree, and in process: the
function, its git reads, and (once) what parsing both revisions' dvc.lock and params.yaml
whole would cost instead, with libyaml's C loader and PyYAML's pure-Python one.
``bench_registry.py`` prints these rows beside the registry's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent
SRC = Path(__file__).resolve().parents[1] / "src"
STAGES = ("ingest", "validate", "prepare", "train", "evaluate", "package", "gate")
TEMPLATE = "m0000"
CHANGED_STAGES = ("train", "evaluate", "package", "gate")  # what dvc repro reruns after an epochs change


def md5(*parts: object) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def template() -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """The shared top level, one model's section, dvc.yaml and its conf file, from `gitml init --models`."""
    with tempfile.TemporaryDirectory(prefix="template-") as work:
        project = Path(work) / "template"
        subprocess.run([str(BIN / "gitml"), "init", str(project), "--models", f"{TEMPLATE}:breast_cancer:logreg"],
                       check=True, capture_output=True)
        params = yaml.safe_load((project / "params.yaml").read_text())
        section = params.pop("models")[TEMPLATE]
        return (params, section, (project / "dvc.yaml").read_text(),
                (project / "conf/models" / f"{TEMPLATE}.yaml").read_text())


def retarget(data: Any, name: str) -> Any:
    """``data`` with every string naming the template model naming ``name`` instead."""
    if isinstance(data, dict):
        return {k: retarget(v, name) for k, v in data.items()}
    if isinstance(data, list):
        return [retarget(v, name) for v in data]
    return data.replace(TEMPLATE, name) if isinstance(data, str) else data


def dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def lock_entries(pipeline: dict[str, Any], name: str, section: dict[str, Any], salt: str = "") -> dict[str, Any]:
    """The dvc.lock entries DVC writes for model ``name``'s 7 stages (md5s made up, shapes real)."""
    paths = section["paths"]

    def fill(text: str) -> str:
        text = text.replace("${key}", name)
        for key, value in paths.items():
            text = text.replace("${item.paths." + key + "}", str(value))
        return text

    def out(path: str, stage: str) -> dict[str, Any]:
        salted = salt if stage in CHANGED_STAGES else ""
        return {"hash": "md5", "md5": md5(name, stage, path, salted) + ("" if "." in path.rsplit("/", 1)[-1] else ".dir"),
                "size": 1000 + len(path), **({} if "." in path.rsplit("/", 1)[-1] else {"nfiles": 5}), "path": path}

    entries = {}
    for stage in STAGES:
        body = pipeline["stages"][stage]["do"]
        outs = [fill(next(iter(o)) if isinstance(o, dict) else o)
                for kind in ("outs", "metrics", "plots") for o in body.get(kind) or []]
        declared = [fill(p).removeprefix(f"models.{name}.") for p in body.get("params") or []]
        entries[f"{stage}@{name}"] = {
            "cmd": fill(body["cmd"]),
            "deps": [out(fill(d), "dep") for d in body.get("deps") or []],
            "params": {"params.yaml": {f"models.{name}.{key}": dig(section, key) for key in declared}},
            "outs": [out(o, stage) for o in outs],
        }
    return entries


def build_repo(root: Path, models: int) -> str:
    """The repository at its base commit, then one commit changing one model; returns that model.

    ``root`` may be a repository already (bench_registry.py's, holding the tags): the
    models are committed on top of its history.
    """
    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:  # as DVC and `gitml config compose` write: no anchors
            return True

    dumper = Dumper
    shared, section, pipeline_text, conf_text = template()
    pipeline = yaml.safe_load(pipeline_text)
    names = [f"m{i:04d}" for i in range(models)]
    sections = {name: retarget(section, name) for name in names}
    (root / "conf/models").mkdir(parents=True)
    (root / "dvc.yaml").write_text(pipeline_text)
    for name in names:
        (root / "conf/models" / f"{name}.yaml").write_text(conf_text)

    def write(salt_for: str | None) -> None:
        params = {**shared, "models": sections}
        lock: dict[str, Any] = {}
        for name in names:
            lock.update(lock_entries(pipeline, name, sections[name], "v2" if name == salt_for else ""))
        (root / "params.yaml").write_text(yaml.dump(params, Dumper=dumper, sort_keys=False))
        (root / "dvc.lock").write_text(yaml.dump({"schema": "2.0", "stages": lock}, Dumper=dumper, sort_keys=False))

    git = ["git", "-C", str(root)]
    if not (root / ".git").is_dir():
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    write(None)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "base"], check=True)
    changed = names[len(names) // 2]
    sections[changed] = {**sections[changed], "trainer": {**sections[changed]["trainer"], "epochs": 31}}
    (root / "conf/models" / f"{changed}.yaml").write_text(conf_text + "trainer:\n  epochs: 31\n")
    write(changed)
    subprocess.run([*git, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qam", "retrain one"], check=True)
    return changed


def timed(command: list[str], cwd: Path, repeats: int, expect: str) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True, text=True)
        out.append(time.perf_counter() - started)
        assert result.stdout.split() == [expect], result.stdout[:200]
    return out


def in_process(root: Path, repeats: int, expect: str) -> dict[str, list[float]]:
    """changed_models itself, its git reads, and what parsing the files whole would cost instead."""
    sys.path.insert(0, str(SRC))
    from gitml.ci.changed import LOCK, PARAMS, PIPELINE, _read_at, changed_models

    times: dict[str, list[float]] = {"changed_models (in process)": [], "  of which: git reads": []}
    for _ in range(repeats):
        started = time.perf_counter()
        assert changed_models(root, "HEAD^1", "HEAD").names == [expect]
        times["changed_models (in process)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        files = [_read_at(root, rev, (PIPELINE, LOCK, PARAMS)) for rev in ("HEAD^1", "HEAD")]
        times["  of which: git reads"].append(time.perf_counter() - started)
    loaders = [("instead: parse whole, C loader", yaml.CSafeLoader), ("instead: parse whole, pure Python", yaml.SafeLoader)]
    for key, loader in loaders if len(files[0][LOCK] or b"") < 5_000_000 else loaders[:1]:
        started = time.perf_counter()  # once: it is slow enough to see
        for found in files:
            for name in (LOCK, PARAMS):
                yaml.load(found[name] or b"", Loader=loader)  # safe loaders only
        times[key] = [time.perf_counter() - started]
    return times


def measure(models: int, repeats: int) -> dict[str, list[float]]:
    """Every row for ``models`` models: command name -> seconds per repeat."""
    work = Path(tempfile.mkdtemp(prefix=f"changed{models}-"))
    try:
        root = work / "repo"
        root.mkdir()
        changed = build_repo(root, models)
        gitml = str(BIN / "gitml")
        results = {
            "gitml models changed (2 commits)": timed([gitml, "models", "changed", "--base", "HEAD^1", "--head", "HEAD"],
                                                      root, repeats, changed),
            "gitml models changed (worktree)": timed([gitml, "models", "changed", "--base", "HEAD^1"], root, repeats,
                                                     changed),
        }
        results.update(in_process(root, repeats, changed))
        sizes = {name: (root / name).stat().st_size for name in ("params.yaml", "dvc.lock")}
        print(f"       ({models} models: params.yaml {sizes['params.yaml'] / 1e6:.1f} MB, "
              f"dvc.lock {sizes['dvc.lock'] / 1e6:.1f} MB)")
        return results
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'models':>6}  {'command':<34} {'best s':>7} {'median s':>8}")
    for models in args.models:
        for name, times in measure(models, args.repeats).items():
            print(f"{models:>6}  {name:<34} {min(times):>7.3f} {statistics.median(times):>8.3f}")


if __name__ == "__main__":
    main()
