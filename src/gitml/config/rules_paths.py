"""``paths.*`` rules: every location inside the repository, no two of them overlapping.

DVC refuses overlapping outputs only when a stage runs (and an output inside an input
makes a cycle); a checkpoint or drift folder inside a DVC output would be deleted by the
next run or change that output's hash. These rules name the key at compose time instead.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath, PureWindowsPath

from gitml.config.checks import Problems
from gitml.config.paths import CONTAINERS, PathsConfig

# Locations that belong to git, DVC or gitml's own configuration, never to a stage.
RESERVED = (".git", ".dvc", "conf", "params.yaml", "dvc.yaml", "dvc.lock")


def paths_problems(paths: PathsConfig) -> Problems:
    """``paths.*``: relative, inside the repository, not reserved, and no location inside another.

    Example:
        >>> paths_problems(PathsConfig(bundle="models/model/bundle"))  # doctest: +ELLIPSIS
        [('paths.bundle', "must not be inside paths.model ('models/model'): ...")]
    """
    problems: Problems = []
    placed: list[tuple[str, PurePosixPath]] = []
    for field in dataclasses.fields(PathsConfig):
        key, value = f"paths.{field.name}", getattr(paths, field.name)
        problem = _location_problem(value)
        if problem:
            problems.append((key, problem))
            continue
        path = PurePosixPath(value)
        if field.name not in CONTAINERS:
            problems += _overlaps(field.name, path, placed)
            placed.append((field.name, path))
    return problems


def _location_problem(value: str) -> str | None:
    """Why ``value`` is not a location inside the repository, or None."""
    if not value or not value.strip():
        return "must name a file or folder inside the repository, got an empty path."
    path = PurePosixPath(value)
    if path.is_absolute() or PureWindowsPath(value).is_absolute() or value.startswith("~"):
        return f"must be relative to the repository root, got the absolute path {value!r}."
    if ".." in path.parts or "\\" in value:
        return f"must stay inside the repository (no '..'; '/' separates folders), got {value!r}."
    if not path.parts:
        return f"must name a file or folder inside the repository, not its root, got {value!r}."
    if path.parts[0] in RESERVED:
        return f"must not be inside {path.parts[0]} (git's, DVC's or gitml's own files), got {value!r}."
    return None


def _overlaps(name: str, path: PurePosixPath, placed: list[tuple[str, PurePosixPath]]) -> Problems:
    """``path`` against every location placed before it: the same, inside it, or holding it."""
    problems: Problems = []
    for other, other_path in placed:
        if path == other_path:
            why = f"is the same location as paths.{other} ({str(other_path)!r})"
        elif other_path in path.parents:
            why = f"must not be inside paths.{other} ({str(other_path)!r})"
        elif path in other_path.parents:
            why = f"must not hold paths.{other} ({str(other_path)!r})"
        else:
            continue
        problems.append((f"paths.{name}", f"{why}: every location is its own, or one stage's output "
                         "would delete or change another's; move one of them."))
    return problems
