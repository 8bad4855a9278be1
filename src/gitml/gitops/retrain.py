# Over 300 lines: the retraining pull request is one transaction (batch, branch, push, pull request) read top to bottom.
"""The retraining pull request: drift seen in production becomes a reviewed data change.

One branch per model, ``gitml/retrain/<model>``, and at most one open pull request for it.
Each run adds the labelled production rows as one new DVC-tracked Parquet batch under
``paths.production`` plus the drift report (at ``paths.drift``), then opens the pull request or updates the
open one. All git work happens in a temporary ``git worktree``: the caller's checkout, its
branch and its files are never touched, whatever fails.

Example:
    >>> forge = GitHubForge("acme/churn")
    >>> retrain_pr(Path("."), forge, model_name="model", batch=rows, drift_detected=True,
    ...            report_dir=Path("reports/drift")).describe()
    'opened pull request #7 from gitml/retrain/model with batch 20261129T101500Z-3f2a9c1b0d4e.parquet https://...'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gitml.config.paths import PathsConfig
from gitml.errors import GitError, RetrainError
from gitml.gitops.forge import Forge, PullRequest
from gitml.gitops.git import git, repo_root

if TYPE_CHECKING:
    import pandas as pd

    from gitml.package.signature import Signature

log = logging.getLogger(__name__)

BRANCH_PREFIX = "gitml/retrain/"
REPORT_FILES = ("drift.json", "drift.md", "*.png", "history.csv", "history_features.csv", "history_p_values.json")


@dataclass(frozen=True)
class RetrainResult:
    action: Literal["opened", "updated", "nothing"]
    branch: str | None = None
    pull: PullRequest | None = None
    batch_file: str | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.action == "nothing":
            where = f" (pull request #{self.pull.number})" if self.pull else ""
            return f"nothing to do: {self.reason}{where}"
        number = self.pull.number if self.pull else "?"
        url = f" {self.pull.url}" if self.pull and self.pull.url else ""
        return f"{self.action} pull request #{number} from {self.branch} with batch {self.batch_file}{url}"


def retrain_branch(model_name: str) -> str:
    return model_branch(BRANCH_PREFIX, model_name)


def model_branch(prefix: str, model_name: str) -> str:
    """``prefix + model_name`` when git accepts it as a branch name (retraining, canary), else RetrainError."""
    branch = f"{prefix}{model_name}"
    ok = subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True).returncode == 0
    if not ok or not model_name:
        raise RetrainError(f"Model name '{model_name}' cannot be part of a branch name ({branch}).")
    return branch


def batch_digest(batch: pd.DataFrame) -> str:
    """Content hash of a batch (values, column names, dtypes; not the row index)."""
    import pandas as pd

    digest = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in batch.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(batch, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:12]


def retrain_pr(
    repo: Path, forge: Forge, *, model_name: str, batch: pd.DataFrame | None, drift_detected: bool,
    report_dir: Path, base: str = "main", remote: str = "origin", label: str = "retrain",
    now: datetime | None = None, target: str | None = None, paths: PathsConfig | None = None,
    regression: bool = False,
) -> RetrainResult:
    """Add ``batch`` to the retraining branch of ``model_name`` and open or update its pull request.

    Idempotent: one branch and one open pull request per model; a batch identical to one
    already on the branch is not added again. ``target`` (the label column; default a column
    named ``target`` or ``label``) only summarises class counts (``regression``: the labels'
    range). ``paths`` (default the built-in layout) places the batch and the report.
    """
    paths = paths or PathsConfig()
    production_dir, report_path = paths.production, paths.drift
    if not drift_detected:
        return RetrainResult("nothing", reason="no drift detected")
    if batch is None or len(batch) == 0:
        return RetrainResult("nothing", reason="no labelled production rows to add")
    repo = repo_root(repo)
    branch = retrain_branch(model_name)
    pull = forge.find_open_pull(branch, base)  # a bad token fails here, before anything is pushed
    if _fetch(repo, remote, base) is None:
        raise RetrainError(f"Base branch '{base}' not found on remote '{remote}'.")
    remote_branch = _fetch(repo, remote, branch)
    update = pull is not None and remote_branch is not None
    start = f"refs/remotes/{remote}/{branch if update else base}"
    digest = batch_digest(batch)
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{digest}.parquet"
    with _worktree(repo, start) as tree:
        folder = tree / production_dir
        same = sorted(folder.glob(f"*-{digest}.parquet.dvc"))
        if same:
            return RetrainResult("nothing", branch, pull, same[0].name.removesuffix(".dvc"),
                                 reason=f"this batch is already in {production_dir} on {start.split('/', 2)[2]}")
        _add_batch(repo, tree, folder / name, batch)
        _copy_report(Path(report_dir), tree / report_path)
        reports = [report_path] if (tree / report_path).is_dir() else []
        git(tree, "add", "--", production_dir, *reports)
        _quiet_git(tree, *_identity(tree), "commit", "-q", "-m", f"data: add {model_name} batch {name} (drift detected)")
        lease = [] if update or remote_branch is None else [f"--force-with-lease=refs/heads/{branch}:{remote_branch}"]
        try:
            _quiet_git(tree, "push", "-q", *lease, remote, f"HEAD:refs/heads/{branch}")
        except GitError as exc:
            raise RetrainError(f"Could not push {branch} to '{remote}' (did someone else push to it?): {exc}") from exc
        added = git(tree, "diff", "--name-only", "--diff-filter=A", f"refs/remotes/{remote}/{base}", "HEAD",
                    "--", f"{production_dir}/*.parquet.dvc").splitlines()
        body = pr_body(_read(Path(report_dir) / "drift.md"), f"{production_dir}/{name}", batch, target,
                       [Path(a).name for a in added], regression=regression, model_name=model_name)
    rows = _summary_line(batch, target, regression)
    if pull is not None and update:
        pull = forge.update_pull(pull.number, body=body)
        forge.comment(pull.number, f"Added production batch `{name}`: {rows}. "
                                   "The description and the drift report now show the latest run.")
    else:
        pull = forge.open_pull(branch, base, f"Retrain {model_name}: drift detected in production", body, [label])
    action: Literal["opened", "updated"] = "updated" if update else "opened"
    log.info("%s pull request #%d (%s) with batch %s", action, pull.number, branch, name)
    return RetrainResult(action, branch, pull, name)


def pr_body(drift_md: str | None, path: str, batch: pd.DataFrame, target: str | None, batches: list[str],
            *, regression: bool = False, model_name: str = "model") -> str:
    """The pull request's description; ``path``: the batch file added by this run (``paths.production/NAME``)."""
    listed = "\n".join(f"- `{b.removesuffix('.dvc')}`" for b in batches) or f"- `{Path(path).name}`"
    return "\n".join([
        drift_md.strip() if drift_md else "_No drift.md was found next to drift.json._",
        "", "## Production batch added by this run", "",
        f"- model: `{model_name}`",
        f"- file: `{path}` (tracked by DVC, pushed to the default remote)",
        f"- {_summary_line(batch, target, regression)}",
        "", "## All production batches on this branch", "", listed,
        "", "Merging retrains on the enlarged snapshot (`dvc repro`); review the data and the "
        "drift report first. Opened by `gitml retrain-pr`.",
    ])


def _summary_line(batch: pd.DataFrame, target: str | None, regression: bool = False) -> str:
    column = target or next((c for c in ("target", "label") if c in batch.columns), None)
    if column is None or column not in batch.columns:
        return f"{len(batch)} rows"
    if regression:  # a count per distinct number would list every row
        values = batch[column].astype("float64")
        return (f"{len(batch)} rows; labels ({column}): mean {values.mean():.4g}, "
                f"min {values.min():.4g}, max {values.max():.4g}")
    counts = batch[column].astype(str).value_counts().sort_index()
    return f"{len(batch)} rows; classes ({column}): " + ", ".join(f"{k}: {v}" for k, v in counts.items())


# ------------------------------------------------------------------ git and dvc


def _fetch(repo: Path, remote: str, branch: str) -> str | None:
    """Update ``refs/remotes/<remote>/<branch>``; its commit, or None when the remote lacks it."""
    try:
        listed = git(repo, "ls-remote", "--heads", remote, f"refs/heads/{branch}")
    except GitError as exc:
        raise RetrainError(f"Cannot reach git remote '{remote}': {exc}") from exc
    if not listed:
        return None
    git(repo, "fetch", "-q", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    return listed.split()[0]


@contextlib.contextmanager
def _worktree(repo: Path, start: str) -> Iterator[Path]:
    holder = Path(tempfile.mkdtemp(prefix="gitml-retrain-"))
    tree = holder / "tree"
    try:
        _quiet_git(repo, "worktree", "add", "-q", "--detach", str(tree), start)
        yield tree
    finally:
        git(repo, "worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(holder, ignore_errors=True)
        git(repo, "worktree", "prune", check=False)


def _quiet_git(repo: Path, *args: str) -> str:
    """git without hooks: `dvc install` hooks (checkout, push) must not run in the scratch worktree."""
    return git(repo, "-c", f"core.hooksPath={os.devnull}", *args)


def _identity(tree: Path) -> list[str]:
    """``-c user.*`` for the commit when git has no identity configured (a bare CI runner)."""
    known = subprocess.run(["git", "-C", str(tree), "var", "GIT_COMMITTER_IDENT"], capture_output=True)
    return [] if known.returncode == 0 else ["-c", "user.name=gitml", "-c", "user.email=gitml@users.noreply.github.com"]


def _add_batch(repo: Path, tree: Path, path: Path, batch: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    batch.reset_index(drop=True).to_parquet(tmp, index=False)
    tmp.replace(path)
    local = repo / ".dvc" / "config.local"  # remotes' credentials and local overrides live here
    if local.is_file():
        shutil.copy2(local, tree / ".dvc" / "config.local")
    relative = str(path.relative_to(tree))
    _dvc(tree, "add", "-q", relative)
    _dvc(tree, "push", "-q", f"{relative}.dvc")


def _dvc(tree: Path, *args: str) -> None:
    executable = shutil.which("dvc")
    command = [executable, *args] if executable else [sys.executable, "-m", "dvc", *args]
    result = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        hint = " Configure one with `dvc remote add -d <name> <url>`." if args[0] == "push" else ""
        raise RetrainError(f"dvc {' '.join(args)} failed: {' '.join(detail[-3:])}{hint}")


def _copy_report(source: Path, dest: Path) -> None:
    files = sorted({p for pattern in REPORT_FILES for p in source.glob(pattern) if p.is_file()})
    if not files:
        log.warning("no drift report files (%s) in %s", ", ".join(REPORT_FILES), source)
        return
    from gitml.monitor.history import merge_history, read_both

    dest.mkdir(parents=True, exist_ok=True)
    earlier = read_both(dest)  # an open pull request's checks since it was opened: kept beside the new ones
    for old in {p for pattern in REPORT_FILES for p in dest.glob(pattern)}:
        old.unlink()
    for path in files:
        shutil.copy2(path, dest / path.name)
    merge_history(dest, earlier, _history_rows(dest / "drift.json"))


def _history_rows(report: Path) -> int:
    """``drift.history_rows`` as the report's check recorded it (its default for an older report)."""
    from gitml.config.schema import DriftConfig

    try:
        value = json.loads(report.read_text(encoding="utf-8"))["config"]["history_rows"]
    except (OSError, ValueError, KeyError, TypeError):
        return DriftConfig.history_rows
    return value if isinstance(value, int) and value >= 1 else DriftConfig.history_rows


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def drift_verdict(report: Path) -> bool:
    """The verdict of a drift.json: ``drift`` (bool), ``is_drift`` or ``verdict == "drift"``."""
    try:
        data: Any = json.loads(report.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RetrainError(f"No drift report at '{report}': run `gitml drift check` first.") from None
    except ValueError as exc:
        raise RetrainError(f"Drift report '{report}' is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        for key in ("drift", "is_drift"):
            if isinstance(data.get(key), bool):
                return bool(data[key])
        if isinstance(data.get("verdict"), str):
            return data["verdict"].strip().lower() == "drift"
    raise RetrainError(f"Drift report '{report}' has no verdict: expected a boolean 'drift' "
                       "(or 'is_drift', or 'verdict': 'drift').")


# ------------------------------------------------------------------ from the files CI has


def align_batch(rows: pd.DataFrame, signature: Signature, target: str) -> pd.DataFrame:
    """Labelled rows in the snapshot's shape: signature inputs then ``target``, classes as trained.

    Labels arrive as text in the feedback log; they are mapped back to the class values
    of the signature (``"1"`` -> ``1``), or for a regression signature read as float64
    numbers (a label that is not one is left out), so the batch concatenates cleanly with
    the raw snapshot.
    """
    inputs = signature.features
    missing = [c for c in [*inputs, target] if c not in rows.columns]
    if missing:
        raise RetrainError(f"Labelled production rows lack column(s) {', '.join(missing)}; "
                           f"expected the signature's inputs plus '{target}'.")
    batch = rows.loc[rows[target].notna(), [*inputs, target]].reset_index(drop=True)
    if signature.regression:
        from gitml.monitor.logs import typed_labels

        batch[target] = typed_labels(batch[target], regression=True)
        if (unusable := batch[target].isna()).any():
            log.warning("%d label(s) that are not numbers left out of the batch", int(unusable.sum()))
        return batch[~unusable].reset_index(drop=True)
    by_text = {str(c): c for c in signature.classes}
    if by_text:
        batch[target] = batch[target].map(lambda value: by_text.get(str(value), value))
    return batch


def retrain_from_files(
    *, params_file: Path, report_dir: str | Path | None, log_dir: str | Path | None, bundle_dir: str | Path | None,
    repo_slug: str | None, forge_url: str | None = None, base: str = "main", label: str = "retrain",
    remote: str = "origin", repo: Path = Path("."), model: str | None = None,
) -> RetrainResult:
    """What ``gitml retrain-pr`` does: read the verdict, the labelled log rows, then :func:`retrain_pr`.

    ``model``: in a repository of several models, the one whose settings, paths, logs and
    branch are used. A None ``report_dir``, ``log_dir`` or ``bundle_dir`` is ``paths.drift``,
    the model's log folder (``serve.log_dir``, or ``serve.log_dir/NAME`` with several models)
    or ``paths.bundle`` of ``params_file``.
    """
    from gitml.config.params import load_params
    from gitml.config.paths import or_default
    from gitml.gitops.forge import GitHubForge
    from gitml.monitor.settings import model_log_dir
    from gitml.package.bundle import load_bundle

    cfg = load_params(params_file, model)
    report_dir = or_default(report_dir, cfg.paths.drift)
    log_dir = log_dir if log_dir is not None else model_log_dir(params_file, model)  # a folder or an s3:// URL
    bundle_dir = or_default(bundle_dir, cfg.paths.bundle)
    if not drift_verdict(report_dir / "drift.json"):
        return RetrainResult("nothing", reason=f"no drift in {report_dir / 'drift.json'}")
    if not bundle_dir.is_dir():
        raise RetrainError(f"No bundle at '{bundle_dir}': run `dvc pull` or `gitml fetch`.")
    signature = load_bundle(bundle_dir, model=False).signature
    try:
        from gitml.monitor.logs import labelled
    except ImportError as exc:
        raise RetrainError(f"Cannot read the production logs: {exc}.") from exc
    target = cfg.data.target
    rows = labelled(log_dir, target, signature.features, cfg.drift.window_rows, cfg.drift.window_hours,
                    regression=signature.regression)
    batch = align_batch(rows, signature, target)
    if batch.empty:
        return RetrainResult("nothing", reason=f"no labelled production rows in {log_dir} "
                                               "<drift.window_rows, drift.window_hours>")
    if not repo_slug:
        raise RetrainError("No repository: pass --repo-slug owner/name or set GITHUB_REPOSITORY.")
    with GitHubForge(repo_slug, base_url=forge_url) as forge:
        return retrain_pr(repo, forge, model_name=cfg.registry.model, batch=batch, drift_detected=True,
                          report_dir=report_dir, base=base, remote=remote, label=label, target=target,
                          paths=cfg.paths, regression=signature.regression)
