"""The chain from a commit to its bundle: what promote, fetch and serve --stage check.

A bundle is what a stage built only if, at the commit it is promoted or fetched from:

(a) its ``model/`` folder hashes (DVC's own ``.dir`` md5) to the train stage's
    ``paths.model`` output in dvc.lock, and its recorded provenance (model, prepared
    data, params) agrees with dvc.lock;
(b) the gate verdict there (``paths.gate``) says pass and names this very bundle (its manifest's
    sha256, so any changed byte of any file breaks the link) and its model;
(c) with a remote: the commit is reachable from the remote's default branch, so nothing
    that no branch holds (an unreviewed, unpushed commit) reaches a stage.

``dvc commit -f package`` can make dvc.lock agree with any bundle, so (a) looks at the
train stage's output, which only training writes, and (b) at the gate that judged it.
Every path is read from that commit's own params.yaml (:func:`paths_at`): dvc.lock there
records its outputs under the layout it was built with.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.config.params import PARAMS_FILE
from gitml.config.paths import PathsConfig
from gitml.errors import ChainError, GitError, GitmlError
from gitml.gitops.git import git
from gitml.package.bundle import Bundle, load_bundle
from gitml.utils.dvc_hash import lock_out_md5, lock_params_sha256, stage_key

log = logging.getLogger(__name__)
LOCK = "dvc.lock"  # DVC's own file name, not layout


def verify_chain(repo: str | Path, commit: str, bundle: Bundle | str | Path, remote: str | None = None) -> list[str]:
    """Every broken link between ``bundle`` and ``commit`` in ``repo`` (empty when none).

    ``bundle``: a loaded bundle, or its folder (verified against its manifest first).

    Example:
        >>> verify_chain(".", "3f2a...", "models/bundle", remote="origin")  # doctest: +SKIP
        []
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle, model=False)
    short = commit[:10]
    problems: list[str] = []
    provenance = bundle.info.provenance
    if provenance is None:
        problems.append("the bundle records no provenance (metadata.json has no 'provenance'): "
                        "package it again with this gitml (`dvc repro -f package`)")
    model = bundle.model_md5
    layout = layout_at(repo, commit, bundle.info.name)
    paths, several = layout.paths, layout.model

    lock = _lock_at(repo, commit, problems)
    trained = lock_out_md5(lock, stage_key("train", several), paths.model) if lock is not None else None
    if lock is not None and trained is None:
        problems.append(f"{LOCK} at {short} records no train output {paths.model}")
    if trained is not None and model is not None and model != trained:
        problems.append(f"the bundle's model/ hashes to {model}, but the train stage produced {paths.model} "
                        f"{trained} ({LOCK} at {short}): this bundle was not built from the model trained there")
    if provenance is not None:
        claims = {"model_md5": model,
                  "prepared_md5": lock_out_md5(lock, stage_key("prepare", several), paths.prepared)
                  if lock is not None else None,
                  "params_sha256": lock_params_sha256(lock, model=several) if lock is not None else None}
        for key, expected in claims.items():
            if expected is not None and provenance.get(key) != expected:
                problems.append(f"the bundle's metadata records provenance.{key} {provenance.get(key)}, "
                                f"but at {short} it is {expected}")

    problems += _gate_problems(repo, commit, bundle, paths.gate)
    if remote:
        problem = unreachable(repo, commit, remote)
        if problem:
            problems.append(problem)
    return problems


def check_chain(repo: str | Path, commit: str, bundle: Bundle | str | Path, what: str,
                remote: str | None = None) -> None:
    """Raise ChainError listing every broken link (see :func:`verify_chain`)."""
    problems = verify_chain(repo, commit, bundle, remote)
    if problems:
        raise ChainError(what, problems)


def unreachable(repo: str | Path, commit: str, remote: str, timeout: float = 60) -> str | None:
    """Why ``commit`` is not on ``remote``'s default branch (after fetching it), or None when it is."""
    branch = default_branch(repo, remote, timeout)
    if branch is None:
        return f"cannot tell the default branch of '{remote}' <registry.remote> (no HEAD there)"
    tracking = f"refs/remotes/{remote}/{branch}"
    try:
        git(repo, "fetch", "--quiet", remote, f"+refs/heads/{branch}:{tracking}", timeout=timeout)
    except GitError as exc:
        # An unreachable remote: judge by the branch as last fetched, if this clone has it.
        if not git(repo, "rev-parse", "--verify", "--quiet", tracking, check=False):
            return f"cannot fetch branch '{branch}' from '{remote}' <registry.remote>: {exc}"
        log.warning("cannot fetch '%s' from '%s' <registry.remote> (%s); checking commit %s against it as "
                    "last fetched", branch, remote, exc, commit[:10])
    else:  # what `git remote set-head` records: the default branch, known here when the remote is not
        git(repo, "symbolic-ref", f"refs/remotes/{remote}/HEAD", tracking, check=False)
    result = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", commit, tracking],
                            capture_output=True, text=True)
    if result.returncode == 0:
        return None
    if result.returncode == 1:
        shallow = git(repo, "rev-parse", "--is-shallow-repository", check=False) == "true"
        return (f"commit {commit[:10]} is not on '{remote}/{branch}' (the remote's default branch): "
                + ("this clone is shallow, so its history cannot show it: `git fetch --unshallow`" if shallow
                   else "push it through a reviewed pull request first"))
    return f"cannot compare commit {commit[:10]} with '{remote}/{branch}': {result.stderr.strip()}"


def default_branch(repo: str | Path, remote: str, timeout: float = 60) -> str | None:
    """The branch ``remote``'s HEAD names (asked of the remote; else its local refs/remotes/<remote>/HEAD)."""
    try:
        out = git(repo, "ls-remote", "--symref", remote, "HEAD", timeout=timeout)
    except GitError:
        out = ""
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/"):-len("\tHEAD")]
    local = git(repo, "symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD", check=False)
    prefix = f"refs/remotes/{remote}/"
    return local[len(prefix):] if local.startswith(prefix) else None


def _lock_at(repo: str | Path, commit: str, problems: list[str]) -> dict[str, Any] | None:
    import yaml

    raw = file_at(repo, commit, LOCK)
    if raw is None:
        problems.append(f"commit {commit[:10]} has no {LOCK}")
        return None
    try:
        lock = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problems.append(f"{LOCK} at {commit[:10]} is not YAML ({exc})")
        return None
    return lock if isinstance(lock, dict) else {}


def _gate_problems(repo: str | Path, commit: str, bundle: Bundle, report: str) -> list[str]:
    from gitml.gate.report import verdict_problems

    where = f"{report} at {commit[:10]}"
    raw = file_at(repo, commit, report)
    if raw is None:
        return [f"commit {commit[:10]} has no gate verdict {report}"]
    try:
        verdict = json.loads(raw)
    except ValueError as exc:
        return [f"{where} is not JSON ({exc})"]
    return verdict_problems(verdict, bundle, where)


def paths_at(repo: str | Path, commit: str, model: str | None = None) -> PathsConfig:
    """The ``paths`` of params.yaml at ``commit``: the layout its dvc.lock and reports were written with.

    A commit without params.yaml, or older than the ``paths`` group, has the default layout.
    ``model``: in a repository of several models, that model's layout.
    """
    return layout_at(repo, commit, model).paths


@dataclass(frozen=True)
class Layout:
    """Where a model's outputs are at a commit: its ``paths``, and ``model`` when the commit declares
    several models (its stages are ``<stage>@<model>`` in dvc.lock), else None."""

    paths: PathsConfig
    model: str | None


def layout_at(repo: str | Path, commit: str, model: str | None) -> Layout:
    """The :class:`Layout` of ``model`` (a registry name) in params.yaml at ``commit``."""
    from gitml.config.paths import paths_from
    from gitml.utils.yaml_blocks import entry_text, load

    text = file_at(repo, commit, PARAMS_FILE)
    if text is None:
        return Layout(paths_from(None), None)
    # One model's block of a params.yaml of many (gitml.utils.yaml_blocks), else the whole file.
    block = entry_text(text, "models", model) if model is not None else None
    try:
        raw = {"models": load(block, PARAMS_FILE)} if block is not None else load(text, PARAMS_FILE)
    except GitmlError:  # unreadable: the default layout, as paths_in_yaml reads it
        raw = {}
    models = raw.get("models")
    several = model if model is not None and isinstance(models, dict) and model in models else None
    return Layout(paths_from(raw, several), several)


def file_at(repo: str | Path, commit: str, path: str) -> bytes | None:
    """The bytes of ``path`` at ``commit`` (exactly as committed), or None when there is none."""
    result = subprocess.run(["git", "-C", str(repo), "cat-file", "blob", f"{commit}:{path}"], capture_output=True)
    return result.stdout if result.returncode == 0 else None
