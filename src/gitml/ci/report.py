"""``gitml report``: the pull-request report — gate table, metrics and params diff, plots.

Diffs come from DVC itself (``dvc metrics diff``, ``dvc params diff``, ``dvc plots diff``)
against the base branch, so the comment shows exactly what a reviewer would see locally.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from gitml.config.paths import PathsConfig

MARKER = "ci-report"


def dvc(*args: str, cwd: Path) -> tuple[int, str]:
    # The dvc of this interpreter, whether or not its venv is on PATH.
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    return result.returncode, (result.stdout if result.returncode == 0 else result.stderr).strip()


def confusion_table(path: Path) -> str | None:
    """Markdown confusion matrix from DVC's confusion plot data (one row per test sample)."""
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        pairs = Counter((row["actual"], row["predicted"]) for row in csv.DictReader(handle))
    if not pairs:  # a regression model's file holds the header alone
        return None
    classes = sorted({a for a, _ in pairs} | {p for _, p in pairs})
    lines = ["| actual \\ predicted | " + " | ".join(classes) + " |", "| --- |" + " ---: |" * len(classes)]
    lines += [f"| **{a}** | " + " | ".join(str(pairs.get((a, p), 0)) for p in classes) + " |" for a in classes]
    return "\n".join(lines)


def fairness_section(path: Path) -> str | None:
    """The "Fairness" table of ``metrics.json``'s test split (``data.sensitive``), or None when it has none."""
    import json

    from gitml.evaluate.fairness_table import to_markdown

    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return to_markdown(metrics.get("test") if isinstance(metrics, dict) else None, "test")


def drift_trend(drift_dir: Path, last: int = 5) -> str | None:
    """The last ``last`` drift checks of the report folder's ``history.csv`` (a retraining pull request
    commits it), or None without one."""
    from gitml.monitor.history import HISTORY, read_history, trend_table

    lines = trend_table(read_history(drift_dir / HISTORY), last)
    return "\n".join(lines) if lines else None


def run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def pr_report(base: str, repo: Path = Path("."), paths: PathsConfig | None = None,
              plots_out: Path | None = None, model: str | None = None) -> str:
    """Build the markdown; with ``plots_out`` also render ``dvc plots diff`` HTML there.

    ``paths``: where the stages wrote their reports (params.yaml's ``paths``; default layout).
    ``model``: in a repository of several models, the model the report is about: its
    metrics and plot files only, and its params (``models.<model>.*``) only.
    """
    paths = paths or PathsConfig()
    sections = [f"## gitml model report{f': {model}' if model else ''}", ""]
    gate_md = repo / paths.gate_md
    sections += [gate_md.read_text().strip() if gate_md.is_file() else "_No gate report: did `dvc repro` run?_", ""]

    metric_files = [paths.validation, paths.data_summary, paths.train_summary, paths.metrics, paths.gate]
    for kind in ("metrics", "params"):
        targets = ["--targets", *metric_files] if model and kind == "metrics" else []
        code, text = dvc(kind, "diff", base, "--md", *targets, cwd=repo)
        if code == 0 and model and kind == "params":
            text = _rows_of(text, f"models.{model}.")
        sections += [f"### {kind.capitalize()} vs `{base}`", ""]
        if code != 0:
            sections.append(f"_`dvc {kind} diff` failed: {_last_line(text)}_")
        else:
            changed = len(text.splitlines()) > 2  # a header and its rule: no row
            sections.append(text if changed else f"_No {'parameter' if kind == 'params' else 'metric'} changed._")
        sections.append("")

    confusion = confusion_table(repo / paths.eval_plots / "confusion.csv")
    if confusion:
        sections += ["### Confusion matrix (test)", "", confusion, ""]
    fairness = fairness_section(repo / paths.metrics)
    if fairness:
        sections += [fairness.rstrip(), ""]
    trend = drift_trend(repo / paths.drift)
    if trend:
        sections += ["### Drift trend (last checks)", "", trend, ""]
    sections += ["### Plots", ""]
    if plots_out is not None:
        target = plots_out if plots_out.is_absolute() else repo / plots_out
        own = ["--targets", paths.curves, paths.eval_plots] if model else []
        code, out = dvc("plots", "diff", base, *own, "-o", str(target), cwd=repo)
        if code == 0 and (target / "index.html").is_file():
            where = f"[the workflow run's artifacts]({run_url()})" if run_url() else f"`{plots_out}/index.html`"
            sections.append(f"Training curves and the evaluation plots (ROC, precision-recall, calibration and "
                            f"confusion; for regression predicted vs actual and residuals) vs `{base}`: {where}.")
        else:
            sections.append(f"_`dvc plots diff` failed: {_last_line(out)}_")
    else:
        sections.append("Run `dvc plots diff` locally for the curves.")
    sections.append("")
    return "\n".join(sections)


def _rows_of(table: str, prefix: str) -> str:
    """A ``dvc params diff --md`` table with only the rows of params under ``prefix``."""
    lines = table.strip().splitlines()
    head, rows = lines[:2], lines[2:]
    return "\n".join([*head, *(row for row in rows if f"| {prefix}" in row or f"|{prefix}" in row)])


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else "no output"
