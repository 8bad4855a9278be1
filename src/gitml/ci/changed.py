"""``gitml models changed``: the models a change touched, so CI runs, reports and promotes only those.

A model counts as changed between ``base`` and ``head`` (default: the working tree) when
one of these differs, compared per model:

- its dvc.lock entries: every ``<stage>@<name>`` (a one-model repository: every entry,
  all of them its one model's). After ``dvc repro`` these record what DVC reran: the
  hashes of each stage's dependencies, params and outputs, data included;
- the params its stages declare in dvc.yaml, read in its ``models.<name>`` section of
  params.yaml (a one-model repository: the top level): what DVC would rerun on before the
  lock is reproduced. Keys no stage reads (``serve``, ``drift``) do not count, so a
  change of serving settings promotes no new version; with no ``params`` in dvc.yaml the
  whole section counts;
- its own file, ``conf/models/<name>.yaml``, by what it says (its parsed content: a
  comment or a reformatting alone is no change, as for dvc.yaml);
- and a model that is new at ``head`` has changed.

What touches every model: dvc.yaml itself (its parsed content, so comments do not count),
since every model's chain is the same ``foreach`` template. What touches none: the shared
top level of a several-model params.yaml (every stage reads ``models.<name>``, which
carries what it inherits, and ``gitml config check`` keeps the two in sync), stages of no
model (their effect on a model shows in its own entries' dependency hashes), and models
``head`` no longer declares.

Cost: each revision's dvc.yaml, dvc.lock and params.yaml come from one ``git cat-file
--batch`` call (the working tree: from disk) and the conf/models/ names from one ``git
diff``, whatever the number of models. dvc.lock's and params.yaml's entries are compared
as blocks of text, and only those that differ are parsed (libyaml's C loader; see
gitml.utils.yaml_blocks): 0.21 s in process at 1,000 models x 7 stages, where parsing both
revisions' files whole took 22 s (benchmarks/README.md).
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.errors import GitmlError, UsageError
from gitml.gitops.git import git
from gitml.utils.yaml_blocks import Block, children, load, same

PIPELINE, LOCK, PARAMS = "dvc.yaml", "dvc.lock", "params.yaml"
MODEL_FILES = "conf/models"  # conf/ is the Hydra tree gitml composes (config/compose.py)
KEY = "${key}"  # dvc.yaml's foreach name: `models.${key}.trainer` is a model's trainer section
WORKING_TREE = "working tree"


@dataclass(frozen=True)
class Changes:
    """The models ``head`` declares that changed since ``base``, each with the reasons why.

    ``everything``: the reason every model counts (dvc.yaml changed), else None.
    """

    base: str
    head: str
    models: dict[str, list[str]] = field(default_factory=dict)
    everything: str | None = None

    @property
    def names(self) -> list[str]:
        return sorted(self.models)

    def to_json(self) -> str:
        return json.dumps({"base": self.base, "head": self.head, "everything": self.everything,
                           "models": {name: self.models[name] for name in self.names}}, indent=2)


def changed_models(repo: str | Path, base: str, head: str | None = None, merge_base: bool = False) -> Changes:
    """What changed between ``base`` and ``head`` (a revision, or None for the working tree).

    ``merge_base``: compare with the merge base of ``base`` and ``head`` (HEAD for the
    working tree), which is what a pull request changed, not what its base branch did since.

    Example:
        >>> changed_models(".", "origin/main", merge_base=True).names  # doctest: +SKIP
        ['churn']
    """
    repo = Path(repo)
    head_commit = _commit(repo, head) if head is not None else None
    base_commit = _commit(repo, base)
    if merge_base:
        base_commit = git(repo, "merge-base", base_commit, head_commit or _commit(repo, "HEAD"))
    files = (PIPELINE, LOCK, PARAMS)
    old = _read_at(repo, base_commit, files)
    new = _read_at(repo, head_commit, files) if head_commit else _read_worktree(repo, files)
    head_label, base_label = head_commit or WORKING_TREE, base_commit[:10]
    at_head, at_base = f"{PARAMS} at {head_label}", f"{PARAMS} at {base_label}"
    models, old_models = children(new[PARAMS], "models", at_head), children(old[PARAMS], "models", at_base)
    several = bool(models)
    params = {} if several else load(new[PARAMS], at_head)  # one model: a small file, parsed whole
    names = sorted(models) if several else _one_model(params)
    if not names:
        return Changes(base_commit, head_label)
    pipeline = load(new[PIPELINE], f"{PIPELINE} at {head_label}")
    if pipeline != load(old[PIPELINE], f"{PIPELINE} at {base_label}"):
        reason = f"{PIPELINE} changed: every model's stages are its template"
        return Changes(base_commit, head_label, {name: [reason] for name in names}, everything=reason)
    reasons: dict[str, list[str]] = defaultdict(list)
    lock = children(new[LOCK], "stages", f"{LOCK} at {head_label}")
    old_lock = children(old[LOCK], "stages", f"{LOCK} at {base_label}")
    for name, stages in _lock_changes(lock, old_lock, names, several).items():
        reasons[name].append(f"{LOCK}: {', '.join(stages)}")
    keys = declared_params(pipeline, several)
    if several:
        for name in names:
            if name not in old_models:
                reasons[name].insert(0, f"new model (not in {PARAMS} at {base_label})")
            elif not same(models[name], old_models[name]):
                differing = _differing(models[name].value() or {}, old_models[name].value() or {}, keys)
                if differing:
                    reasons[name].append(f"{PARAMS} models.{name}: {', '.join(differing)}")
        for name in _model_files_changed(repo, base_commit, head_commit, names):
            reasons[name].append(f"{MODEL_FILES}/{name}.yaml")
    else:
        differing = _differing(params, load(old[PARAMS], at_base), keys)
        if differing:
            reasons[names[0]].append(f"{PARAMS} top level: {', '.join(differing)}")
    return Changes(base_commit, head_label, {name: reasons[name] for name in names if reasons.get(name)})


def declared_params(pipeline: dict[str, Any], several: bool) -> list[str] | None:
    """The params.yaml keys (dotted, within a model's section) that dvc.yaml's stages declare.

    ``models.${key}.trainer`` is ``trainer`` in a several-model pipeline; a one-model
    pipeline's keys are as written. None when no stage declares any (everything counts).
    """
    keys: set[str] = set()
    for stage in (pipeline.get("stages") or {}).values():
        body = stage.get("do", stage) if isinstance(stage, dict) else {}
        for item in (body.get("params") or []) if isinstance(body, dict) else []:
            for key in _param_keys(item):
                prefix = f"models.{KEY}."
                if several and key.startswith(prefix):
                    keys.add(key[len(prefix):])
                elif not several and "$" not in key:
                    keys.add(key)
    return sorted(keys) or None


def _param_keys(item: Any) -> list[str]:
    """A dvc.yaml params entry's keys in params.yaml: a plain key, or ``{params.yaml: [keys]}``."""
    if isinstance(item, str):
        return [item]
    if isinstance(item, dict):
        return [str(k) for k in (item.get(PARAMS) or []) if isinstance(k, str)]
    return []


def _lock_changes(new: dict[str, Block], old: dict[str, Block], names: list[str],
                  several: bool) -> dict[str, list[str]]:
    """Per model, the dvc.lock stage keys whose entries differ (added or removed count)."""
    wanted = set(names)
    found: dict[str, list[str]] = defaultdict(list)
    for key in sorted(set(new) | set(old)):
        owner = key.rpartition("@")[2] if several else names[0]
        if several and ("@" not in key or owner not in wanted):
            continue  # a stage of no model: its effect shows in the models' own dependencies
        if not same(new.get(key), old.get(key)):
            found[owner].append(key)
    return found


def _differing(section: dict[str, Any], old: dict[str, Any], keys: list[str] | None) -> list[str]:
    """The ``keys`` (dotted) whose values differ between the two sections; all top-level keys when None."""
    if keys is None:
        keys = sorted((set(section) | set(old)) - {"models"})
    return [key for key in keys if _dig(section, key) != _dig(old, key)]


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _one_model(params: dict[str, Any]) -> list[str]:
    registry = params.get("registry")
    name = registry.get("model") if isinstance(registry, dict) else None
    return [str(name)] if name else []


def _model_files_changed(repo: Path, base: str, head: str | None, names: list[str]) -> list[str]:
    """The declared models whose conf/models/<name>.yaml says something else: one ``git diff`` finds the
    files that differ, and only those are parsed, so a comment or a reformatting alone is no change
    (it would register a new version of the same bundle on merge). A file YAML cannot read counts."""
    out = git(repo, "diff", "--name-only", "--no-renames", "-z", base, *([head] if head else []), "--",
              MODEL_FILES, strip=False)
    wanted = set(names)
    paths = sorted(path for path in out.split("\0") if path.endswith(".yaml")
                   and Path(path).parent.as_posix() == MODEL_FILES and Path(path).stem in wanted)
    if not paths:
        return []
    old = _read_at(repo, base, tuple(paths))
    new = _read_at(repo, head, tuple(paths)) if head else _read_worktree(repo, tuple(paths))
    return [Path(path).stem for path in paths if _says_else(new[path], old[path], path)]


def _says_else(new: bytes | None, old: bytes | None, where: str) -> bool:
    if new is None or old is None:
        return True
    try:
        return load(new, where) != load(old, where)
    except GitmlError:
        return True


def _commit(repo: Path, rev: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "--end-of-options",
                             f"{rev}^{{commit}}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"'{rev}' is not a commit in {repo.resolve()}.",
                         hint="name a branch, tag or commit, e.g. --base origin/main (fetch it first: "
                         "actions/checkout needs fetch-depth: 0).")
    return result.stdout.strip()


def _read_at(repo: Path, commit: str, paths: tuple[str, ...]) -> dict[str, bytes | None]:
    """The bytes of each of ``paths`` at ``commit`` (None where absent), in one ``git cat-file --batch``."""
    request = "".join(f"{commit}:{path}\n" for path in paths).encode()
    result = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], input=request, capture_output=True)
    if result.returncode != 0:
        raise GitmlError(f"git cat-file --batch failed in {repo}: {result.stderr.decode(errors='replace').strip()}")
    out, at = result.stdout, 0
    found: dict[str, bytes | None] = {}
    for path in paths:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            found[path] = out[at:at + size]
            at += size + 1  # the content, then a newline
        else:  # "<object> missing", or a tree where a file was expected
            found[path] = None
            if len(header) == 3:
                at += int(header[2]) + 1
    return found


def _read_worktree(repo: Path, paths: tuple[str, ...]) -> dict[str, bytes | None]:
    return {path: (repo / path).read_bytes() if (repo / path).is_file() else None for path in paths}
