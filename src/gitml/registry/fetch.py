"""Resolve a registry stage or version to its commit and materialise that commit's bundle.

The bundle is not in git: it is a DVC output of the ``package`` stage, so it is fetched
through DVC from the repository's configured remote (what ``dvc get`` does), into a
temporary folder, verified against its manifest and against the chain that built it at
its commit (registry/chain.py: the train stage's model, the gate verdict, and with
``remote`` the remote's default branch), and only then moved into place.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gitml.config.schema import RegistryConfig
from gitml.errors import GitmlError
from gitml.package.bundle import Bundle, load_bundle
from gitml.registry.chain import check_chain, paths_at
from gitml.registry.signing import check_stage_signed
from gitml.registry.tags import ModelVersion, find_version, stage_version
from gitml.utils.atomic import atomic_path

log = logging.getLogger(__name__)


def synced_remote(repo: str | Path, registry: RegistryConfig) -> str | None:
    """``registry.remote`` after taking its stage-tag deletions, or None (with a warning) when the repo lacks it."""
    from gitml.gitops.git import has_remote
    from gitml.registry.tags import sync_stage_tags

    if not has_remote(repo, registry.remote):
        log.warning("no git remote '%s' <registry.remote>: the registry is read from local tags, and whether "
                    "the commit is on the remote's default branch is not checked", registry.remote)
        return None
    sync_stage_tags(repo, registry.remote, registry.model)
    return registry.remote


def signers_for(repo: str | Path, registry: RegistryConfig, stage: str | None) -> Path | None:
    """The allowed-signers file ``stage``'s tags must verify against, or None when the stage is not signed."""
    return Path(repo) / registry.allowed_signers if stage in registry.signed_stages else None


def resolve(repo: str | Path, name: str, stage: str | None = None, version: str | None = None) -> ModelVersion:
    if (stage is None) == (version is None):
        raise GitmlError("Give exactly one of --stage or --version.")
    found = stage_version(repo, name, stage) if stage else find_version(repo, name, version or "")
    if found is None:
        what = f"stage '{stage}'" if stage else f"version '{version}'"
        raise GitmlError(f"No version of '{name}' is in {what}. See `gitml registry show`.")
    return found


def fetch_bundle(
    repo: str | Path, name: str, out: str | Path, stage: str | None = None, version: str | None = None,
    bundle_path: str | None = None, remote: str | None = None, allowed_signers: Path | None = None,
) -> tuple[ModelVersion, Bundle]:
    """Materialise the bundle of ``stage`` (or ``version``) into ``out`` and verify it and its chain.

    ``bundle_path``: the package stage's output at the version's commit; by default the
    ``paths.bundle`` of that commit's params.yaml (:func:`~gitml.registry.chain.paths_at`).
    With ``remote``, the version's commit must also be on that remote's default branch;
    with ``allowed_signers`` (a stage in ``registry.signed_stages``), the stage's assignment
    tag must be signed by a key that file lists.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    found = resolve(repo, name, stage, version)
    if stage and allowed_signers is not None:
        check_stage_signed(repo, name, stage, found.tag, allowed_signers)
    bundle_path = bundle_path or paths_at(repo, found.commit, name).bundle
    with atomic_path(out) as tmp:
        try:
            Repo.get(url=str(Path(repo).resolve()), path=bundle_path, out=str(tmp), rev=found.commit)
        except (DvcException, FileNotFoundError) as exc:  # no such output at that commit: FileNotFoundError
            raise GitmlError(
                f"Cannot fetch the bundle of {name} {found.version} ({bundle_path} at commit {found.commit[:10]}) "
                f"through DVC: {exc}. Was it pushed with `dvc push`, and does dvc.lock there record it?"
            ) from exc
        bundle = load_bundle(tmp)  # verify before it becomes visible
        check_chain(repo, found.commit, bundle, f"{name} {found.version} (commit {found.commit[:10]})", remote)
    bundle.path = Path(out)  # the same verified files, moved into place
    log.debug("fetched %s %s (commit %s) into %s", name, found.version, found.commit[:10], out)
    return found, bundle
