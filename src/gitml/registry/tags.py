"""Read and write the registry: GTO does the tag format, we add versions policy and races.

Every read goes through ``gto.api`` so ``gto show`` and ``gto history`` see exactly the
same state as ``gitml registry show``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.config.paths import PathsConfig
from gitml.errors import GitmlError, PromotionError
from gitml.gitops.git import git, show_file

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
    """Registered versions of ``name``, newest first, with their active stages."""
    import gto.api
    from gto.exceptions import ArtifactNotFound, GTOException

    _quiet_gto()
    try:
        rows = gto.api.show(str(repo), name)
    except ArtifactNotFound:
        return []
    except GTOException as exc:
        raise GitmlError(f"Cannot read the registry in {repo}: {exc}") from exc
    out = []
    for row in rows:
        if not row.get("registrations") and not row.get("stages"):
            continue  # a commit gto discovered, never registered
        stages = [s["stage"] for s in row.get("stages", []) if s.get("is_active")]
        out.append(ModelVersion(name, row["version"], row["commit_hexsha"], stages, str(row.get("created_at", ""))))
    return sorted(out, key=lambda v: _semver(v.version), reverse=True)


def stage_version(repo: str | Path, name: str, stage: str) -> ModelVersion | None:
    """The version currently assigned to ``stage``, or None."""
    import gto.api
    from gto.exceptions import ArtifactNotFound

    _quiet_gto()
    try:
        found = gto.api.find_versions_in_stage(str(repo), name, stage)
    except ArtifactNotFound:
        return None
    if not found:
        return None
    vstage = found[0] if isinstance(found, list) else found
    events = vstage.get_events()  # newest first; the stage is active, so the newest is an assignment
    tag = str(getattr(events[0], "tag", "") or "") if events else ""
    return ModelVersion(name, vstage.version, vstage.commit_hexsha, [stage], tag=tag)


def find_version(repo: str | Path, name: str, version: str) -> ModelVersion | None:
    wanted = version if version.startswith("v") else f"v{version}"
    return next((v for v in list_versions(repo, name) if v.version == wanted), None)


def history(repo: str | Path, name: str) -> list[dict[str, Any]]:
    import gto.api
    from gto.exceptions import ArtifactNotFound

    _quiet_gto()
    try:
        return [dict(event) for event in gto.api.history(str(repo), name)]
    except ArtifactNotFound:
        return []


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
    """Fetch the remote's tags, then delete the local stage tags of ``name`` the remote deleted.

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
    now = remote_stage_tags(repo, remote, name, timeout=timeout)
    record = _read_record(repo)
    seen = record.get(remote, {}).get(name)
    if seen is None:
        seen = [] if keep_unrecorded else _local_stage_tags(repo, name)
    gone = sorted(set(seen) - now)
    if gone:
        log.info("'%s' <registry.remote> no longer holds %s; deleting them here too", remote, ", ".join(gone))
        delete_tags(repo, gone)
    record.setdefault(remote, {})[name] = sorted(now)
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


def _local_stage_tags(repo: str | Path, name: str) -> list[str]:
    return git(repo, "tag", "--list", f"{name}#*").split()


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
