"""``gitml exp search``: a model-based sweep (Optuna's TPE) run through DVC's experiment queue.

Each round asks Optuna for ``workers`` points, queues each as a named DVC experiment
(``dvc exp run --queue -n gitml-search-<i> -S key=value``), runs the round with ``dvc queue
start -j workers``, and tells Optuna every point's metric, so the next round samples where
the good points were. Every point is an ordinary experiment of the current commit, gated
like any other: `gitml exp best` then picks among them (a point whose gate failed is told
to Optuna as a failed trial and is never chosen).

A parameter is ``key=float:low:high[:log]``, ``key=int:low:high`` or ``key=choice:a,b,c``.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.errors import GitmlError
from gitml.gitops.experiments import Experiment, dvc_json, read_experiments

PREFIX = "gitml-search"
KINDS = ("float", "int", "choice")


@dataclass(frozen=True)
class Param:
    """One searched key of params.yaml and its range."""

    key: str
    kind: str  # float | int | choice
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Param:
        """``model.dropout=float:0:0.5``, ``trainer.epochs=int:2:30``, ``model=choice:mlp,hgb``."""
        key, sep, spec = text.partition("=")
        kind, _, rest = spec.partition(":")
        parts = rest.split(":")
        bad = GitmlError(f"--param {text!r}: expected KEY=float:LOW:HIGH[:log], KEY=int:LOW:HIGH or "
                         "KEY=choice:A,B,...")
        if not sep or not key or kind not in KINDS or not rest:
            raise bad
        if kind == "choice":
            return cls(key, kind, choices=tuple(c for c in rest.split(",") if c))
        try:
            low, high = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise bad from None
        log = parts[2:] == ["log"]
        if low >= high or (log and low <= 0) or len(parts) > 2 + log:
            raise GitmlError(f"--param {text!r}: needs LOW < HIGH (and LOW > 0 on a log scale).")
        return cls(key, kind, low, high, log)

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)


@dataclass
class SearchResult:
    metric: str
    minimize: bool
    points: list[tuple[str, dict[str, Any], Experiment | None]] = field(default_factory=list)

    @property
    def best(self) -> tuple[str, dict[str, Any], Experiment] | None:
        done = [(name, values, e) for name, values, e in self.points
                if e is not None and e.verdict == "pass" and e.value is not None]
        if not done:
            return None
        sign = 1.0 if self.minimize else -1.0
        return min(done, key=lambda p: (sign * (p[2].value or 0.0), p[0]))


def search(repo: Path, metric: str, minimize: bool, params: list[Param], trials: int, workers: int,
           metrics_file: str, gate_file: str, seed: int = 0, sampler: str = "tpe",
           timeout_s: float = 3600, base: list[str] | None = None) -> SearchResult:
    """Run ``trials`` points in rounds of ``workers``; each point's metric is told to the sampler.

    ``base``: the overrides the commit's params.yaml was composed with (``gitml config
    compose model=hgb``): DVC recomposes every point from conf/ and its ``-S`` values alone,
    so they go with each point, less any key the search sets.
    """
    searched = {p.key for p in params}
    kept = [o for o in base or [] if o.split("=", 1)[0].lstrip("+~") not in searched]
    try:
        import optuna
    except ImportError as exc:
        raise GitmlError("gitml exp search needs Optuna: install gitml with its sweep extra "
                         "(pip install 'gitml[sweep]').") from exc

    from gitml.gitops.git import git

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = (optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(trials, max(workers, 2)))
              if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(direction="minimize" if minimize else "maximize", sampler=chosen)
    baseline = git(repo, "rev-parse", "HEAD").strip()
    taken = _taken_names(repo, baseline, metrics_file, gate_file, metric)
    result, number = SearchResult(metric, minimize), 0
    while len(result.points) < trials:
        batch = []
        for _ in range(min(workers, trials - len(result.points))):
            while f"{PREFIX}-{number}" in taken:
                number += 1
            name = f"{PREFIX}-{number}"
            taken.add(name)
            trial = study.ask()
            values = {p.key: p.suggest(trial) for p in params}
            settings = [*kept, *(f"{k}={v}" for k, v in values.items())]
            _dvc(repo, "exp", "run", "--queue", "-n", name, *(a for s in settings for a in ("-S", s)))
            batch.append((name, trial, values))
        _start_workers(repo, workers)
        found = _wait(repo, baseline, [name for name, _, _ in batch], metrics_file, gate_file, metric, timeout_s,
                      workers)
        for name, trial, values in batch:
            point = found.get(name)
            ok = point is not None and point.verdict == "pass" and point.value is not None and math.isfinite(point.value)
            study.tell(trial, point.value if ok and point else None,
                       state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL)
            result.points.append((name, values, point))
    return result


def _taken_names(repo: Path, baseline: str, metrics_file: str, gate_file: str, metric: str) -> set[str]:
    return {e.name for e in read_experiments(dvc_json(repo, "exp", "show"), baseline, metrics_file, gate_file, metric)}


# How the round's end is noticed. `dvc queue start` returns at once, but the workers it
# spawns inherit its stdout and stderr and run until 10 s of empty queue: reading its output
# through pipes waited for them to stop, then the next round spawned two new ones (11 s
# from one round's last point to the next round's first at load 1, 21 s at load 5; 4 s and
# 10 s now: the workers still up take the next points as they are queued). An experiment's
# git ref appears once its point has run, at the cost of a `git for-each-ref` (ms); `dvc
# queue status` (0.5 s of CPU and a 1 s worker broadcast) then says whether the queue is
# done (outputs reach the cache after the ref). A point that fails writes no ref: the status
# every SHOW_EVERY_S finds it. Not `dvc exp show` while points run: it reads their
# temporary folders and fails when one is removed under it.
REFS_POLL_S = 0.5
SHOW_EVERY_S = 10.0
NO_WORKER_AFTER_S = 30.0  # queued, no worker, this long after `queue start` (a worker takes seconds to boot)


def _start_workers(repo: Path, workers: int) -> None:
    """``dvc queue start -j workers``, its output in a file: the workers it spawns inherit the
    command's stdout and stderr, so pipes would stay open until they stop."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", str(workers)], cwd=repo,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True, env=dvc_env())
        if result.returncode != 0:
            out.seek(0)
            raise GitmlError(f"`dvc queue start -j {workers}` failed: {out.read().strip()[-400:]}")


def _wait(repo: Path, baseline: str, names: list[str], metrics_file: str, gate_file: str, metric: str,
          timeout_s: float, workers: int) -> dict[str, Experiment]:
    """The round's experiments once the queue has run them (a failed one is absent)."""
    deadline = time.monotonic() + timeout_s
    started = polled_at = time.monotonic()
    restarted, took = False, 0.0
    while True:
        now = time.monotonic()
        ran = _refs(repo, baseline) >= set(names)
        # the gaps grow with what a status takes: on a busy machine back-to-back ones would
        # take CPU from the points they wait on
        if now - polled_at >= max(SHOW_EVERY_S, 3 * took) or (ran and now - polled_at >= max(2 * REFS_POLL_S, took)):
            status = _dvc(repo, "queue", "status")
            polled_at = time.monotonic()
            took = polled_at - now
            if not any(word in status for word in ("Queued", "Running")):
                break
            if now - started >= NO_WORKER_AFTER_S and "Worker status: 0 active, 0 idle" in status:
                if restarted:  # queued points and no worker to run them: `dvc queue start` could not spawn one
                    raise GitmlError(f"The experiment queue holds points but no worker runs them (`dvc queue "
                                     f"start` failed to spawn one; see `dvc queue logs`): {status.strip()[-300:]}")
                _start_workers(repo, workers)  # a worker of the last round may have stopped as this one was queued
                restarted, started = True, time.monotonic()
            if time.monotonic() > deadline:
                raise GitmlError(f"The experiment queue did not finish within {timeout_s:g} s: {status[-300:]}")
        time.sleep(REFS_POLL_S)
    shown = read_experiments(dvc_json(repo, "exp", "show"), baseline, metrics_file, gate_file, metric)
    return {e.name: e for e in shown if e.name in names}


def _refs(repo: Path, baseline: str) -> set[str]:
    """Names of the experiments of ``baseline`` that have run (DVC's refs/exps/<2>/<38>/<name>)."""
    from gitml.gitops.git import git

    listed = git(repo, "for-each-ref", "--format=%(refname)", f"refs/exps/{baseline[:2]}/{baseline[2:]}/")
    return {line.rsplit("/", 1)[-1] for line in listed.splitlines()}


def _dvc(repo: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True,
                            env=dvc_env())
    if result.returncode != 0:
        raise GitmlError(f"`dvc {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()[-400:]}")
    return result.stdout


def dvc_env() -> dict[str, str]:
    """The environment with this interpreter's scripts first on PATH: DVC's queue workers run
    ``dvc`` by name, which a console script started outside its virtualenv would not find."""
    import os

    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


def summary_lines(result: SearchResult) -> list[str]:
    """One line per point (name, values, metric, gate), the best marked."""
    best = result.best
    lines = []
    for name, values, point in result.points:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        value = "failed" if point is None else f"{result.metric} {_num(point.value)}, gate {point.verdict or 'none'}"
        lines.append(f"{'*' if best and best[0] == name else ' '} {name}: {shown} -> {value}")
    return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"

