"""``gitml exp best``: the best experiment of a sweep that passed its gate, as a branch to review.

A sweep is DVC's own: ``dvc exp run --queue -S 'trainer.epochs=10,30' -S 'model.dropout=0,0.2'``
then ``dvc queue start -j 2``; each point runs the whole pipeline, gate included. This reads
the experiments of the current commit from ``dvc exp show --json``, keeps those whose gate
verdict (``paths.gate``) is a pass, ranks them on one metric of ``paths.metrics``, and turns
the best into a git branch with ``dvc exp branch`` (its params.yaml, dvc.lock and reports as
the experiment left them, so ``dvc repro`` there is a no-op). With a forge, the branch is
pushed and a pull request opened with the ranking.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.errors import GitmlError


@dataclass(frozen=True)
class Experiment:
    """One experiment of the sweep: its name, commit, gate verdict and the ranked metric."""

    name: str
    rev: str
    verdict: str | None  # the gate's, or None when the experiment wrote no gate report
    value: float | None  # the metric, or None when missing or not a finite number
    params: dict[str, Any] = field(default_factory=dict, compare=False)  # the params.yaml it ran with


@dataclass(frozen=True)
class BestExperiment:
    best: Experiment
    ranked: list[Experiment]  # every experiment of the commit, best first, then those left out
    metric: str
    minimize: bool
    branch: str | None = None
    pull_url: str | None = None


def dvc_json(repo: Path, *args: str) -> Any:
    """``dvc <args> --json`` in ``repo`` (this interpreter's dvc), parsed; a GitmlError with DVC's message."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args, "--json"], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise GitmlError(f"`dvc {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()[-400:]}")
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise GitmlError(f"`dvc {' '.join(args)} --json` printed no JSON ({exc}).") from exc


def read_experiments(shown: list[dict[str, Any]], baseline: str, metrics_file: str, gate_file: str,
                     metric: str) -> list[Experiment]:
    """The experiments ``dvc exp show --json`` lists under commit ``baseline``, with their gate
    verdict and the value of ``metric`` (a dotted path in ``metrics_file``, e.g. ``test.roc_auc``)."""
    found: list[Experiment] = []
    for entry in shown:
        if entry.get("rev") != baseline:
            continue
        for group in entry.get("experiments") or []:
            for rev in group.get("revs") or []:
                data = rev.get("data") or {}
                metrics = data.get("metrics") or {}
                verdict = ((metrics.get(gate_file) or {}).get("data") or {}).get("verdict")
                value = _lookup((metrics.get(metrics_file) or {}).get("data") or {}, metric)
                params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
                found.append(Experiment(str(rev.get("name") or group.get("name")), str(rev.get("rev")),
                                        None if rev.get("error") else verdict, value, params))
    return found


def rank(experiments: list[Experiment], metric: str, minimize: bool) -> list[Experiment]:
    """The experiments whose gate passed and that have the metric, best first (ties: by name)."""
    eligible = [e for e in experiments if e.verdict == "pass" and e.value is not None]
    sign = 1.0 if minimize else -1.0
    return sorted(eligible, key=lambda e: (sign * (e.value or 0.0), e.name))


def pick_best(experiments: list[Experiment], metric: str, minimize: bool, baseline: str) -> Experiment:
    ranked = rank(experiments, metric, minimize)
    if ranked:
        return ranked[0]
    if not experiments:
        raise GitmlError(f"No experiment of commit {baseline[:7]}: queue a sweep first (`dvc exp run --queue -S "
                         "'trainer.epochs=10,30'` then `dvc queue start -j 2`).")
    listed = "; ".join(f"{e.name}: gate {e.verdict or 'missing'}, {metric} {e.value}" for e in experiments)
    raise GitmlError(f"No experiment of commit {baseline[:7]} passed its gate with a value of {metric} ({listed}).")


def direction(metric: str, minimize: bool | None) -> bool:
    """``minimize`` as given, else from the metric's name: rmse, mae, log_loss, brier are lower-is-better."""
    if minimize is not None:
        return minimize
    from gitml.gate.stats import LOWER_IS_BETTER

    return metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER


def best_experiment(repo: Path, metric: str, minimize: bool | None, metrics_file: str, gate_file: str,
                    branch: str | None = None) -> BestExperiment:
    """Rank the current commit's experiments on ``metric`` and make the best a branch (default ``exp/<name>``)."""
    from gitml.gitops.git import git

    baseline = git(repo, "rev-parse", "HEAD").strip()
    lower = direction(metric, minimize)
    experiments = read_experiments(dvc_json(repo, "exp", "show"), baseline, metrics_file, gate_file, metric)
    best = pick_best(experiments, metric, lower, baseline)
    name = branch or f"exp/{best.name}"
    result = subprocess.run([sys.executable, "-m", "dvc", "exp", "branch", best.name, name], cwd=repo,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise GitmlError(f"`dvc exp branch {best.name} {name}` failed: {(result.stderr or result.stdout).strip()[-400:]}")
    ranked = rank(experiments, metric, lower)
    ranked += [e for e in experiments if e not in ranked]
    return BestExperiment(best, ranked, metric, lower, name)


def ranking_markdown(result: BestExperiment) -> str:
    """The pull request's body: the chosen experiment and the whole ranking."""
    order = "lowest" if result.minimize else "highest"
    lines = [f"Best of {len(result.ranked)} experiment(s) on `{result.metric}` ({order} wins, gate passed): "
             f"**{result.best.name}** ({_num(result.best.value)}).", "",
             f"| experiment | {result.metric} | gate |", "| --- | ---: | --- |"]
    lines += [f"| {'**' + e.name + '**' if e == result.best else e.name} | {_num(e.value)} | {e.verdict or 'none'} |"
              for e in result.ranked]
    lines += ["", f"Branch `{result.branch}` holds the experiment's params.yaml, dvc.lock and reports: "
              "`dvc repro` there is a no-op. Opened by `gitml exp best`."]
    return "\n".join(lines) + "\n"


def _lookup(data: dict[str, Any], dotted: str) -> float | None:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
        return None
    return float(node)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
