"""``gitml promote``: register the pipeline's commit as a version and assign it a stage.

Refuses, touching no tag, when the working tree is dirty, the gate did not pass, the
bundle in the workspace is not the one ``dvc.lock`` records, or the bundle is not bound to
what built it at the promoted commit (registry/chain.py: the train stage's model and the
gate verdict; with ``--push``, the commit must be on the remote's default branch). Stage
tags the remote deleted are deleted here first (a rollback by deletion), so a stage that
was rolled back is assigned again. With ``--push`` the new tags
are pushed atomically; when another promotion won the race for the same version or stage
number, the local tags are removed, the registry is re-read and the next number is taken
(up to ``attempts`` times), or the promotion fails with no tag left behind.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from gitml.config.paths import PathsConfig
from gitml.config.schema import RegistryConfig
from gitml.errors import GitmlError
from gitml.gitops.git import dirty_files, has_remote, head_commit
from gitml.registry.tags import (
    BUMPS,
    PromotionError,
    delete_tags,
    find_version,
    list_versions,
    next_version,
    push_tags,
    remember_remote_stage_tags,
    signature_changed,
    stage_version,
    sync_stage_tags,
)
from gitml.utils.dvc_hash import stage_key

log = logging.getLogger(__name__)


@dataclass
class Promotion:
    name: str
    version: str
    stage: str
    commit: str
    tags: list[str]
    registered: bool
    pushed: bool

    def describe(self) -> str:
        verb = "registered and assigned" if self.registered else "assigned"
        where = " and pushed" if self.pushed else ""
        return f"{self.name} {self.version} {verb} to '{self.stage}' at {self.commit[:10]}{where} ({', '.join(self.tags)})"


def preconditions(repo: Path, gate_report: Path, bundle: str = PathsConfig.bundle, check_bundle: bool = True,
                  package_stage: str = "package") -> list[str]:
    """Every reason to refuse a promotion from ``repo``'s HEAD (empty when it may go ahead).

    ``package_stage``: the dvc.yaml stage that writes ``bundle`` (``package@<model>`` in a
    repository of several models).
    """
    problems = []
    dirty = dirty_files(repo)
    if dirty:
        problems.append(f"the working tree has uncommitted changes ({', '.join(dirty[:5])}); commit or stash them")
    if not gate_report.is_file():
        problems.append(f"no gate report at {gate_report}: run `dvc repro`")
    else:
        verdict = json.loads(gate_report.read_text()).get("verdict")
        if verdict != "pass":
            failed = [r["rule"] for r in json.loads(gate_report.read_text()).get("rules", []) if r["verdict"] == "fail"]
            problems.append(f"the gate verdict is '{verdict}' (failed: {'; '.join(failed) or 'unknown'})")
    if check_bundle:
        problem = bundle_mismatch(repo, bundle, package_stage)
        if problem:
            problems.append(problem)
    return problems


def bundle_mismatch(repo: Path, bundle: str, package_stage: str = "package") -> str | None:
    """None when the workspace bundle is exactly what dvc.lock records, else why not."""
    from dvc.repo import Repo

    if not (repo / bundle).is_dir():
        return f"{bundle} does not exist: run `dvc repro` (or `dvc pull`)"
    with Repo(str(repo)) as dvc_repo:
        status = dvc_repo.status(targets=[package_stage])
    if status:
        return f"{bundle} does not match dvc.lock ({json.dumps(status)}): run `dvc repro` and commit dvc.lock"
    return None


def promote(
    repo: Path, cfg: RegistryConfig, stage: str, bump: str = "auto", version: str | None = None,
    push: bool = False, attempts: int = 3, gate_report: Path | None = None, check_bundle: bool = True,
    paths: PathsConfig | None = None, stages_of: str | None = None,
) -> Promotion:
    """Register (when needed) and assign ``stage``; see the module docstring for the rules.

    ``paths``: the project layout (``cfg.paths`` of params.yaml; default: the built-in one):
    where the workspace bundle, its gate verdict (unless ``gate_report``) and the contract are.
    ``stages_of``: in a repository of several models, the model whose stages (``package@<model>``)
    built that bundle.
    """
    refused = cfg.unknown_stage(stage)
    if refused:
        raise PromotionError(refused)
    if bump not in BUMPS:
        raise PromotionError(f"Unknown bump '{bump}'. Allowed: {', '.join(BUMPS)}.")
    if push and not has_remote(repo, cfg.remote):
        raise PromotionError(f"Cannot push: no git remote '{cfg.remote}' (registry.remote).")
    paths = paths or PathsConfig()
    _sync(repo, cfg, push)
    if version is None:
        problems = preconditions(repo, gate_report or repo / paths.gate, paths.bundle, check_bundle=check_bundle,
                                 package_stage=stage_key("package", stages_of))
        if problems:
            raise PromotionError("Refusing to promote: " + "; ".join(problems) + ".")
    check_promoted_chain(repo, cfg, version, push, paths.bundle)
    for attempt in range(1, attempts + 1):
        if push and attempt > 1:
            sync_stage_tags(repo, cfg.remote, cfg.model)
        promotion = _create_tags(repo, cfg, stage, bump, version, paths.contract)
        if not promotion.tags:
            return promotion  # already in that stage: nothing to do
        if not push:
            return promotion
        ok, message = push_tags(repo, cfg.remote, promotion.tags)
        if ok:
            promotion.pushed = True
            remember_remote_stage_tags(repo, cfg.remote, cfg.model, promotion.tags)
            return promotion
        delete_tags(repo, promotion.tags)
        log.warning("push of %s lost a race (attempt %d of %d): %s",
                    ", ".join(promotion.tags), attempt, attempts, message.splitlines()[-1] if message else "")
    raise PromotionError(
        f"Could not push the promotion to '{cfg.remote}' after {attempts} attempts: other promotions "
        "kept taking the same tags. No tag was left behind; retry."
    )


def _sync(repo: Path, cfg: RegistryConfig, push: bool) -> None:
    """Take the remote's deletions of stage tags before reading the registry (see sync_stage_tags)."""
    if not has_remote(repo, cfg.remote):
        return
    try:
        sync_stage_tags(repo, cfg.remote, cfg.model)
    except GitmlError as exc:
        if push:
            raise PromotionError(f"Cannot read the registry on '{cfg.remote}' <registry.remote>: {exc}") from exc
        log.warning("cannot sync stage tags from '%s' <registry.remote>: %s; promoting on the local tags",
                    cfg.remote, exc)


def check_promoted_chain(repo: Path, cfg: RegistryConfig, version: str | None, push: bool,
                         bundle: str = PathsConfig.bundle) -> None:
    """Refuse (ChainError) unless the bundle to promote is bound to what built it at its commit.

    HEAD's workspace ``bundle`` when ``version`` is None (preconditions made sure it is the one
    dvc.lock records), else ``version``'s bundle fetched through DVC into a temporary folder.
    With ``push`` the commit must be on the remote's default branch.
    """
    import tempfile

    from gitml.registry.chain import check_chain
    from gitml.registry.fetch import fetch_bundle

    remote = cfg.remote if push else None
    if version is None:
        commit = head_commit(repo)
        check_chain(repo, commit, repo / bundle, f"to promote commit {commit[:10]}", remote)
        return
    if find_version(repo, cfg.model, version) is None:
        raise PromotionError(f"Version '{version}' of '{cfg.model}' is not registered. See `gitml registry show`.")
    with tempfile.TemporaryDirectory(prefix="gitml-promote-") as tmp:
        fetch_bundle(repo, cfg.model, Path(tmp) / "bundle", version=version, remote=remote)


def _create_tags(repo: Path, cfg: RegistryConfig, stage: str, bump: str, version: str | None,
                 contract: str = PathsConfig.contract) -> Promotion:
    import gto.api

    name = cfg.model
    commit = head_commit(repo)
    tags: list[str] = []
    registered = False
    if version is not None:
        found = find_version(repo, name, version)
        if found is None:
            raise PromotionError(f"Version '{version}' of '{name}' is not registered. See `gitml registry show`.")
    else:
        found = next((v for v in list_versions(repo, name) if v.commit == commit), None)
    if found is not None and stage in found.stages:
        log.info("%s %s is already in '%s': nothing to do", name, found.version, stage)
        return Promotion(name, found.version, stage, found.commit, [], False, False)
    try:
        if found is None:
            versions = list_versions(repo, name)
            latest = versions[0] if versions else None
            chosen = bump
            if bump == "auto":
                chosen = "major" if latest and _interface_changed(repo, latest.commit, contract, name) else "minor"
            new_version = next_version(latest.version if latest else None, chosen)
            gto.api.register(str(repo), name, commit, version=new_version,
                             message=f"Registering {name} {new_version} (bump {chosen})")
            tags.append(f"{name}@{new_version}")
            registered = True
            found_version, found_commit = new_version, commit
        else:
            found_version, found_commit = found.version, found.commit
        _unassign_newer_holders(repo, name, stage, found_version, tags)
        # force: a version that held the stage before another took it (a rollback by assigning it again)
        # is, to GTO, still in it; the registry's own view (the newest assignment wins) said it is not.
        assignment = gto.api.assign(str(repo), name, stage, version=found_version, force=True,
                                    message=f"Assigning stage {stage} to {name} {found_version}")
        tags.append(_tag_of(assignment, name, stage))
        if stage in cfg.signed_stages:
            from gitml.registry.signing import sign_tag

            sign_tag(repo, tags[-1], repo / cfg.allowed_signers)
    except PromotionError:
        delete_tags(repo, tags)
        raise
    except Exception as exc:
        delete_tags(repo, tags)
        raise PromotionError(f"Promotion failed and was rolled back: {exc}") from exc
    return Promotion(name, found_version, stage, found_commit, tags, registered, False)


def _unassign_newer_holders(repo: Path, name: str, stage: str, version: str, tags: list[str]) -> None:
    """Unassign ``stage`` from every higher version holding it, so that ``version`` takes it: ``which``
    (GTO's ``find_versions_in_stage``) picks the highest semver version holding a stage, so assigning
    prod back to v1.0.0 while v1.1.0 holds it would change nothing there (a rollback). Each tag created
    is appended to ``tags`` at once (the caller deletes them all if anything fails)."""
    import gto.api

    from gitml.registry.index import semver_key

    for _ in range(100):
        holder = stage_version(repo, name, stage)
        if holder is None or holder.version == version or semver_key(holder.version) < semver_key(version):
            return
        unassigned = gto.api.unassign(str(repo), name, stage=stage, version=holder.version, force=True,
                                      message=f"Unassigning stage {stage} from {name} {holder.version}: "
                                              f"{version} takes it")
        tags.append(_tag_of(unassigned, name, stage))
    raise PromotionError(f"Unassigning '{stage}' from the versions above {version} did not end.")


def _interface_changed(repo: Path, old_commit: str, contract: str, name: str) -> bool:
    """signature_changed, with the contract where ``old_commit``'s own layout kept it."""
    from gitml.registry.chain import paths_at

    return signature_changed(repo, old_commit, contract, paths_at(repo, old_commit, name).contract)


def _tag_of(assignment: object, name: str, stage: str) -> str:
    tag = getattr(assignment, "tag", None)
    if tag:
        return str(tag)
    raise PromotionError(f"GTO did not report the tag it created for {name}#{stage}.")
