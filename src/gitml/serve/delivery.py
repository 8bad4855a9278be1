"""Canary releases as commits: the committed traffic file ``deploy/<model>.yaml`` and what applies it.

``gitml deploy --canary P --version V`` writes the file (P% to V, the rest to the stable
version); a pull request that edits it promotes (``{V: 100}``) or rolls back (``{STABLE: 100}``);
on main, ``gitml deploy --traffic FILE`` publishes every version it names that the target
lacks (fetched from the registry, verified, gate-admitted) and then the split itself
(:func:`gitml.serve.deployment.publish_split`). See docs/delivery.md.
"""

from __future__ import annotations

from pathlib import Path

from gitml.errors import DeploymentError, GitmlError
from gitml.serve.traffic import BUCKETS, KEY_HEADER, Split, read_traffic_file

TRAFFIC_DIR = "deploy"


def traffic_file(repo: str | Path, model: str) -> Path:
    """Where a model's committed traffic file lives: ``deploy/<model>.yaml`` at the repository root."""
    return Path(repo) / TRAFFIC_DIR / f"{model}.yaml"


def stable_version(file: Path, target: str | Path) -> tuple[str, str]:
    """The version a canary starts from, and where it was read: the committed file's stable version,
    else the target's split, else its current.json."""
    from gitml.serve.deployment import read_pointer, read_split

    if file.is_file():
        return read_traffic_file(file).stable, str(file)
    found = read_split(target)
    if found is not None:
        return found[0].stable, f"{target}/traffic.json"
    try:
        return read_pointer(target).version, f"{target}/current.json"
    except DeploymentError as exc:
        raise DeploymentError(f"A canary starts from the version deployed now, and there is none: {exc}") from None


def canary_split(stable: str, version: str, percent: int, shadow: str | None = None,
                 key: str = KEY_HEADER) -> Split:
    """``percent`` of requests to ``version``, the rest to ``stable`` (100: ``version`` alone)."""
    if not 1 <= percent <= BUCKETS:
        raise GitmlError(f"--canary {percent}: give the canary's percent of requests, from 1 to 100.")
    if version == stable:
        raise GitmlError(f"--version {version} is the stable version already; a canary is another version.")
    weights = ((stable, BUCKETS - percent), (version, percent)) if percent < BUCKETS else ((version, BUCKETS),)
    if shadow is not None and shadow in (stable, version):
        raise GitmlError(f"--shadow {shadow} answers requests already; a shadow is a third version.")
    return Split(weights, shadow, key)


def missing_versions(target: str | Path, split: Split) -> list[str]:
    """The versions ``split`` names that ``target`` has not published."""
    from gitml.serve.deployment import VERSIONS
    from gitml.utils.storage import location

    where = location(target, "deployment target")
    if isinstance(where, str):
        from gitml.serve.objectstore import published_versions

        published = set(published_versions(where))
    else:
        published = {p.name for p in (where / VERSIONS).glob("*") if p.is_dir()}
    return [version for version in split.loaded if version not in published]


def unknown_versions(target: str | Path, split: Split, repo: Path, model: str) -> list[str]:
    """The versions ``split`` names that are neither published in ``target`` nor registered for ``model``
    in ``repo`` (``--traffic`` could not apply them: refuse them when the file is written)."""
    from gitml.registry.tags import find_version

    return [version for version in missing_versions(target, split) if find_version(repo, model, version) is None]
