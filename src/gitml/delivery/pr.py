"""The canary's pull request: one per model on ``gitml/canary/<model>``, editing ``deploy/<model>.yaml``.

A promote sets ``{CANARY: 100}``, a rollback ``{STABLE: 100}``; the shadow and the key header of
the file stay. The branch is rebuilt from the base each run (one commit on top of it, pushed
with a lease on the branch as it was), so it never drifts from main; a run proposing what the
branch already holds pushes nothing and only refreshes the description. All git work happens
in a temporary worktree, like the retraining pull request (gitml.gitops.retrain).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gitml.delivery.check import CanaryReport, markdown
from gitml.errors import GitError, RetrainError
from gitml.gitops.forge import Forge, PullRequest
from gitml.gitops.git import git, repo_root
from gitml.gitops.retrain import _fetch, _identity, _quiet_git, _worktree

log = logging.getLogger(__name__)
BRANCH_PREFIX = "gitml/canary/"


@dataclass(frozen=True)
class CanaryPull:
    action: str  # opened | updated | unchanged (the branch held this already; description refreshed)
    branch: str
    pull: PullRequest


def canary_branch(model: str) -> str:
    from gitml.gitops.retrain import model_branch

    return model_branch(BRANCH_PREFIX, model)


def canary_pr(repo: Path, forge: Forge, report: CanaryReport, *, base: str = "main", remote: str = "origin",
              label: str = "canary") -> CanaryPull:
    """Open or update the pull request proposing ``report.proposed`` for ``report.model``."""
    from gitml.serve.delivery import traffic_file
    from gitml.serve.traffic import Split, read_traffic_file, write_traffic_file

    if not report.proposed:
        raise RetrainError(f"The canary check of {report.model} proposes no change (verdict {report.verdict}).")
    repo = repo_root(repo)
    branch = canary_branch(report.model)
    pull = forge.find_open_pull(branch, base)  # a bad token fails here, before anything is pushed
    if _fetch(repo, remote, base) is None:
        raise RetrainError(f"Base branch '{base}' not found on remote '{remote}'.")
    remote_branch = _fetch(repo, remote, branch)
    relative = traffic_file(Path("."), report.model)
    with _worktree(repo, f"refs/remotes/{remote}/{base}") as tree:
        file = tree / relative
        old = read_traffic_file(file)
        write_traffic_file(file, Split(tuple(report.proposed.items()), old.shadow, old.key), report.model)
        proposed = file.read_text(encoding="utf-8")
        held = None
        if remote_branch is not None:
            held = git(tree, "show", f"refs/remotes/{remote}/{branch}:{relative.as_posix()}", check=False)
        same = pull is not None and held is not None and held.strip() == proposed.strip()
        if not same:
            git(tree, "add", "--", relative.as_posix())
            _quiet_git(tree, *_identity(tree), "commit", "-q", "-m",
                       f"deploy: {report.verdict} canary of {report.model}: {_shares(report)}")
            lease = [f"--force-with-lease=refs/heads/{branch}:{remote_branch}"] if remote_branch else []
            try:
                _quiet_git(tree, "push", "-q", *lease, remote, f"HEAD:refs/heads/{branch}")
            except GitError as exc:
                raise RetrainError(f"Could not push {branch} to '{remote}' (did someone else push to it?): {exc}") from exc
    title = f"Canary {report.model}: {report.verdict} ({_shares(report)})"
    body = markdown(report)
    if pull is not None:
        pull = forge.update_pull(pull.number, title=title, body=body)
        action = "unchanged" if same else "updated"
        if not same:
            forge.comment(pull.number, f"`gitml canary check` now proposes {report.verdict}: {_shares(report)}.")
    else:
        pull, action = forge.open_pull(branch, base, title, body, [label]), "opened"
    log.info("%s pull request #%d (%s): %s", action, pull.number, branch, report.verdict)
    return CanaryPull(action, branch, pull)


def _shares(report: CanaryReport) -> str:
    return ", ".join(f"{version} {percent}%" for version, percent in (report.proposed or {}).items())
