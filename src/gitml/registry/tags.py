"""Read and write the registry: GTO does the tag format, we add versions policy and races.

Writes go through ``gto.api``; reads replay the same tags to the same state from one
``git for-each-ref`` (registry/index.py), so ``gto show`` and ``gitml registry show``
agree, at a fraction of the time.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.config.paths import PathsConfig
from gitml.errors import PromotionError
from gitml.gitops.git import git, show_file

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitml.registry.index import ArtifactState

log = logging.getLogger(__name__)
BUMPS = ("auto", "major", "minor", "patch")


@dataclass
class ModelVersion:
    name: str
    version: str
    commit: str
    stages: list[str] = field(default_factory=list)
    created_at: str = ""
    tag: str = ""  # from stage_version: the assignment tag that put it in the stage


def _quiet_gto() -> None:
    # GTO logs through its own loggers; keep them from printing tracebacks to users.
    logging.getLogger("gto").setLevel(logging.WARNING)


def list_versions(repo: str | Path, name: str) -> list[ModelVersion]:
    """Registered versions of ``name``, newest first, with their active stages (as ``gto show``)."""
    from gitml.registry.index import read_registry

    state = read_registry(repo, name).get(name)
    return _versions(state) if state else []


def all_versions(repo: str | Path) -> dict[str, list[ModelVersion]]:
    """Every artifact's registered versions (as :func:`list_versions`), by name, from one git call."""
    from gitml.registry.index import read_registry

    return {name: versions for name, state in sorted(read_registry(repo).items()) if (versions := _versions(state))}


def _versions(state: ArtifactState) -> list[ModelVersion]:
    if not state.active:
        return []
    holders = state.stage_holders(by="time")
    out = []
    for v in state.active_versions():
        stages = [stage for stage, holder in holders.items() if holder.version == v.version]
        if not v.registered and not stages:
            continue  # a commit a stage event named, never registered, holding nothing now
        out.append(ModelVersion(state.name, v.version, v.commit, stages, str(v.created_at.created_at)))
    return sorted(out, key=lambda v: _semver(v.version), reverse=True)


def stage_version(repo: str | Path, name: str, stage: str) -> ModelVersion | None:
    """The version currently assigned to ``stage`` (as ``gto which``), or None."""
    from gitml.registry.index import read_registry

    state = read_registry(repo, name).get(name)
    holder = state.stage_holders(by="semver").get(stage) if state else None
    if holder is None:
        return None
    return ModelVersion(name, holder.version, holder.commit, [stage], tag=holder.last.tag)


def find_version(repo: str | Path, name: str, version: str) -> ModelVersion | None:
    wanted = version if version.startswith("v") else f"v{version}"
    return next((v for v in list_versions(repo, name) if v.version == wanted), None)


def history(repo: str | Path, name: str) -> list[dict[str, Any]]:
    """The registry's events for ``name``, newest first (as ``gto history``)."""
    from gitml.registry.index import PRIORITY, read_registry

    state = read_registry(repo, name).get(name)
    events = sorted(state.events() if state else [], key=lambda e: (e.time, PRIORITY[e.kind]), reverse=True)
    return [{"timestamp": e.created_at, "artifact": e.artifact, "event": e.kind, "priority": PRIORITY[e.kind],
             "version": e.version, "stage": e.stage, "commit": e.commit, "author": e.author,
             "author_email": e.author_email, "message": e.message, "ref": e.tag} for e in events]


def next_version(latest: str | None, bump: str) -> str:
    """``v1.0.0`` for the first version; else ``latest`` bumped by ``major|minor|patch``."""
    if latest is None:
        return "v1.0.0"
    major, minor, patch = _semver(latest)
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    if bump == "patch":
        return f"v{major}.{minor}.{patch + 1}"
    raise PromotionError(f"Unknown bump '{bump}'. Allowed: major, minor, patch.")


def signature_changed(repo: str | Path, old_commit: str, contract_path: str = PathsConfig.contract,
                      old_contract_path: str | None = None) -> bool:
    """Did the model's interface change since ``old_commit``? (columns, dtypes, categories, task, classes)

    ``contract_path``: the contract in the working tree (``paths.contract``);
    ``old_contract_path``: where ``old_commit`` kept it, when its layout differs.
    """
    old = show_file(repo, old_commit, old_contract_path or contract_path)
    new_file = Path(repo) / contract_path
    if old is None or not new_file.is_file():
        return True
    return _interface(json.loads(old)) != _interface(json.loads(new_file.read_text()))


def _interface(contract: dict[str, Any]) -> Any:
    from gitml.data.task import task_of_classes

    columns = {n: (c.get("dtype"), tuple(c.get("categories") or ())) for n, c in contract.get("columns", {}).items()}
    label = contract.get("label", {})
    classes = tuple(str(c) for c in label.get("classes", []))
    # a contract written before tasks has none: its task follows from its classes
    return columns, label.get("task") or task_of_classes(list(classes)), classes


def _semver(version: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", version)
    if not match:
        return (0, 0, 0)
    major, minor, patch = (int(x) for x in match.groups())
    return major, minor, patch


def delete_tags(repo: str | Path, tags: list[str]) -> None:
    for tag in tags:
        git(repo, "tag", "-d", tag, check=False)


def push_tags(repo: str | Path, remote: str, tags: list[str]) -> tuple[bool, str]:
    """Push all ``tags`` or none (``--atomic``); return (ok, git's message)."""
    import subprocess

    refs = [f"refs/tags/{t}" for t in tags]
    result = subprocess.run(["git", "-C", str(repo), "push", "--atomic", "--porcelain", remote, *refs],
                            capture_output=True, text=True)
    return result.returncode == 0, (result.stderr or result.stdout).strip()


def fetch_tags(repo: str | Path, remote: str, timeout: float = 60) -> None:
    """Fetch the remote's tags (moved ones too); a remote that hangs fails after ``timeout`` seconds."""
    git(repo, "fetch", "--quiet", "--tags", "--force", remote, timeout=timeout)


def remote_stage_tags(repo: str | Path, remote: str, name: str, timeout: float = 60) -> set[str]:
    """The stage tags of ``name`` (``name#stage#n``, GTO's assignments) that ``remote`` holds now."""
    out = git(repo, "ls-remote", "--tags", "--refs", remote, f"refs/tags/{name}#*", timeout=timeout)
    return {line.split("refs/tags/", 1)[1] for line in out.splitlines() if "refs/tags/" in line}


def sync_stage_tags(repo: str | Path, remote: str, name: str, timeout: float = 60,
                    keep_unrecorded: bool = False) -> list[str]:
    """Fetch the remote's tags, then delete the local stage tags of ``name`` the remote deleted
    (see :func:`sync_stage_tags_of`)."""
    return sync_stage_tags_of(repo, remote, [name], timeout, keep_unrecorded)


def sync_stage_tags_of(repo: str | Path, remote: str, names: Sequence[str], timeout: float = 60,
                       keep_unrecorded: bool = False) -> list[str]:
    """Fetch the remote's tags, then delete the local stage tags of ``names`` the remote deleted:
    one fetch and one listing of the remote for any number of models.

    Fetching never deletes a tag, so a rollback made by deleting an assignment tag on the
    remote (``gto deprecate NAME VERSION STAGE --delete --push``) would stay visible here.
    A stage tag counts as deleted when the remote held it at the last sync (recorded in the
    git folder, see :func:`remember_remote_stage_tags`) and holds it no more; a stage tag
    promoted here and never pushed is left alone. With no record yet (the first sync of a
    clone), every local stage tag is taken to have come from the remote, unless
    ``keep_unrecorded`` (then only deletions after this first sync are seen). Returns the
    deleted tags.
    """
    fetch_tags(repo, remote, timeout=timeout)
    held = remote_stage_tags(repo, remote, names[0] if len(names) == 1 else "*", timeout=timeout)
    record = _read_record(repo)
    local = None if keep_unrecorded else set(git(repo, "tag", "--list", "*#*").split())
    gone: list[str] = []
    for name in names:
        now = {tag for tag in held if tag.startswith(f"{name}#")}  # '#' ends a name: churn is not churn-eu
        seen = record.get(remote, {}).get(name)
        if seen is None:
            seen = [] if local is None else [tag for tag in local if tag.startswith(f"{name}#")]
        gone += sorted(set(seen) - now)
        record.setdefault(remote, {})[name] = sorted(now)
    if gone:
        log.info("'%s' <registry.remote> no longer holds %s; deleting them here too", remote, ", ".join(gone))
        delete_tags(repo, gone)
    _write_record(repo, record)
    return gone


def remember_remote_stage_tags(repo: str | Path, remote: str, name: str, tags: list[str]) -> None:
    """Record that ``remote`` now holds ``tags`` (just pushed), so their later deletion there is seen."""
    stage_tags = [t for t in tags if t.startswith(f"{name}#")]
    if not stage_tags:
        return
    record = _read_record(repo)
    known = set(record.setdefault(remote, {}).get(name) or [])
    record[remote][name] = sorted(known | set(stage_tags))
    _write_record(repo, record)


def _record_path(repo: str | Path) -> Path:
    # Inside the git folder: per clone, never committed, gone with the clone.
    return Path(git(repo, "rev-parse", "--absolute-git-dir")) / "gitml" / "remote-stage-tags.json"


def _read_record(repo: str | Path) -> dict[str, dict[str, list[str]]]:
    path = _record_path(repo)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(repo: str | Path, record: dict[str, dict[str, list[str]]]) -> None:
    from gitml.utils.atomic import write_json

    path = _record_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
