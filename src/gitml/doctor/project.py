"""Repository checks: git, DVC, params.yaml against the schema and conf/, the registry, the forge."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gitml.doctor.base import Check, Context, ok, problem, without_credentials

WORKFLOWS = ("ci.yml", "promote.yml", "deploy.yml", "drift.yml")


# ------------------------------------------------------------------------------- git


def check_repository(ctx: Context) -> list[Check]:
    from gitml.gitops.git import git

    if ctx.root is None:  # diagnose() looked for the repository already
        return [problem("fail", "git", "repository", f"'{ctx.cwd}' is not inside a git repository.",
                        "run gitml doctor inside your project's clone (or `git init` to start one)")]
    branch = git(ctx.root, "branch", "--show-current", check=False) or "detached HEAD"
    return [ok("git", "repository", f"{ctx.root} (branch {branch})")]


def check_git_remote(ctx: Context) -> list[Check]:
    from gitml.gitops.git import git, has_remote

    assert ctx.root is not None
    remote = ctx.cfg.registry.remote if ctx.cfg else "origin"
    if not has_remote(ctx.root, remote):
        return [problem("warn", "git", "remote", f"no remote '{remote}' <registry.remote>: "
                        "gitml promote --push and CI need it", f"git remote add {remote} <url>")]
    url = git(ctx.root, "remote", "get-url", remote)
    return [ok("git", "remote", f"{remote} -> {without_credentials(url)}")]


def check_worktree(ctx: Context) -> list[Check]:
    from gitml.gitops.git import dirty_files

    assert ctx.root is not None
    dirty = dirty_files(ctx.root)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        return [problem("warn", "git", "working tree", f"{len(dirty)} uncommitted change(s): {shown}",
                        "commit or stash them (gitml promote refuses a dirty tree)")]
    return [ok("git", "working tree", "clean (untracked files not counted)")]


# ------------------------------------------------------------------------------- DVC


def check_dvc_init(ctx: Context) -> list[Check]:
    if not (ctx.project / ".dvc").is_dir():
        ctx.skip.update({"dvc remote", "dvc hydra"})
        return [problem("fail", "dvc", "initialised", f"no .dvc/ in {ctx.project}", "dvc init && git commit -m 'dvc init'")]
    return [ok("dvc", "initialised", f"{ctx.project / '.dvc'}")]


def _dvc_config(ctx: Context) -> Any:
    from dvc.config import Config

    return Config(dvc_dir=str(ctx.project / ".dvc"))  # repo, local, global and system levels merged


def check_dvc_remote(ctx: Context) -> list[Check]:
    config = _dvc_config(ctx)
    name = config["core"].get("remote")
    fix = "dvc remote add -d storage <url> && git commit .dvc/config -m 'dvc remote'"
    if not name:
        return [problem("warn", "dvc", "remote", "no default remote: dvc push and gitml fetch need one", fix)]
    url = config["remote"].get(name, {}).get("url")
    if not url:
        return [problem("fail", "dvc", "remote", f"default remote '{name}' (core.remote) is not defined", fix)]
    if config.read("repo").get("core", {}).get("remote") != name:
        return [problem("warn", "dvc", "remote", f"default remote '{name}' is set outside .dvc/config "
                        "(config.local, global or system): CI clones will not have it", fix)]
    return [ok("dvc", "remote", f"{name} -> {without_credentials(url)} (default)")]


def check_dvc_hydra(ctx: Context) -> list[Check]:
    hydra = _dvc_config(ctx)["hydra"]
    conf_dir = ctx.project / hydra.get("config_dir", "conf")
    config_file = conf_dir / f"{hydra.get('config_name', 'config')}.yaml"
    if not config_file.is_file():
        return [ok("dvc", "hydra", f"not used (no {config_file.relative_to(ctx.project)})")]
    several = (ctx.conf_dir / "models").is_dir()
    if several:  # DVC would compose conf/config.yaml alone: params.yaml without its models
        if hydra.get("enabled"):
            return [problem("fail", "dvc", "hydra", "Hydra is on in .dvc/config, but conf/models/ declares several "
                            "models: dvc exp run would write params.yaml without them", "dvc config hydra.enabled false")]
        return [ok("dvc", "hydra", "off: several models (conf/models/) are composed by gitml config compose")]
    if not hydra.get("enabled"):
        return [problem("warn", "dvc", "hydra", "Hydra is off in .dvc/config: dvc exp run -S model=... "
                        "will not compose conf/", "dvc config hydra.enabled true")]
    return [ok("dvc", "hydra", f"enabled: dvc exp run -S composes {config_file.relative_to(ctx.project)}")]


# ---------------------------------------------------------------------------- config


def check_params_valid(ctx: Context) -> list[Check]:
    from gitml.errors import ConfigError

    exc = ctx.cfg_error
    if exc is None and ctx.models:
        families = ", ".join(f"{name}: {cfg.model.family}" for name, cfg in list(ctx.models.items())[:5])
        more = f", and {len(ctx.models) - 5} more" if len(ctx.models) > 5 else ""
        return [ok("config", "params", f"{ctx.params_file.name} valid against the schema: {len(ctx.models)} models "
                   f"({families}{more})")]
    if exc is None:
        return [ok("config", "params", f"{ctx.params_file.name} valid against the schema "
                   f"(model.family={ctx.cfg.model.family})")]
    if not ctx.params_file.is_file():
        ctx.skip.add("config sync")
        return [problem("fail", "config", "params", f"{ctx.params_file} not found", "gitml config compose")]
    if isinstance(exc, ConfigError) and exc.problem.startswith("not valid YAML"):
        ctx.skip.add("config sync")
    key = f"{_keys(exc)} " if isinstance(exc, ConfigError) else ""
    return [problem("fail", "config", "params", str(exc),
                    f"correct {key}in conf/ and run `gitml config compose` (do not edit {ctx.params_file.name})")]


def _keys(exc: Any) -> str:
    """The keys a ConfigError names, quoted: every problem's, not only the first."""
    return ", ".join(dict.fromkeys(f"'{key}'" for key, _ in exc.problems if key))


def check_params_sync(ctx: Context) -> list[Check]:
    from gitml.config.compose import check_params
    from gitml.errors import ConfigError, ParamsOutOfSync

    try:
        found = check_params(ctx.conf_dir, ctx.params_file)
    except ConfigError as exc:  # conf/ itself does not compose
        key = f"{_keys(exc)} in " if exc.key else ""
        return [problem("fail", "config", "sync", f"conf/ does not compose: {exc}", f"correct {key}{exc.file}")]
    except ParamsOutOfSync as exc:
        shown = "; ".join(exc.diff[:3]) + (f"; and {len(exc.diff) - 3} more" if len(exc.diff) > 3 else "")
        return [problem("fail", "config", "sync", f"{exc.params_file} differs from conf/: {shown}",
                        f"move the change into conf/ (or undo it) and run `{exc.fix}`")]
    if not found.recorded:  # what `dvc exp run -S` writes: DVC keeps no record of the overrides
        return [ok("config", "sync", f"{ctx.params_file.name} is what {ctx.conf_dir.name}/ composes to with "
                   f"{' '.join(found.overrides)} (no header: `dvc exp run -S`; `{found.command}` records them)")]
    return [ok("config", "sync", f"{ctx.params_file.name} is what {ctx.conf_dir.name}/ composes to")]


# -------------------------------------------------------------------------- registry


def _registry(ctx: Context) -> Any:
    from gitml.config.schema import RegistryConfig

    return ctx.cfg.registry if ctx.cfg else RegistryConfig()


def check_artifact(ctx: Context) -> list[Check]:
    from gto.exceptions import GTOException
    from gto.index import FileIndexManager

    names = list(ctx.models) or [_registry(ctx).model]
    manager = FileIndexManager.from_path(str(ctx.project))
    index_file = Path(manager.index_path()).name
    if not Path(manager.index_path()).is_file():
        return [problem("warn", "registry", "artifact", f"no {index_file}: gto show lists {', '.join(names)} without "
                        "type or path", f"declare each (type: model, path: its bundle) in {index_file}")]
    try:
        declared = manager.get_index().state
    except GTOException as exc:
        return [problem("fail", "registry", "artifact", f"{index_file}: {exc}",
                        f"fix {index_file} (GTO format: name -> type, path, description)")]
    missing = [name for name in names if name not in declared]
    if missing:
        fix = ("gitml models add writes it; or declare each (type: model, path: its bundle) in " + index_file
               if ctx.models else f"add '{missing[0]}' to {index_file} or set registry.model in conf/registry/")
        return [problem("warn", "registry", "artifact",
                        f"{index_file} declares {', '.join(declared) or 'nothing'}, not {', '.join(map(repr, missing))} "
                        "<registry.model>", fix)]
    if ctx.models:
        return [ok("registry", "artifact", f"all {len(names)} models declared in {index_file}")]
    name = names[0]
    return [ok("registry", "artifact", f"'{name}' declared in {index_file} (path {declared[name].path})")]


def check_stages(ctx: Context) -> list[Check]:
    from gitml.registry.tags import stage_version

    assert ctx.root is not None
    cfg = _registry(ctx)
    if ctx.models:
        return _stages_of_models(ctx.root, cfg.stages, list(ctx.models))
    checks = []
    for stage in cfg.stages:
        found = stage_version(ctx.root, cfg.model, stage)
        held = (f"{cfg.model} {found.version} (commit {found.commit[:10]})" if found
                else f"no version yet (gitml promote --stage {stage})")
        checks.append(ok("registry", f"stage {stage}", held))
    return checks


def _stages_of_models(root: Path, stages: list[str], names: list[str]) -> list[Check]:
    """One line per stage: which of the models hold a version there (one read of the tags)."""
    from gitml.registry.tags import all_versions

    held = all_versions(root)
    checks = []
    for stage in stages:
        holders = [f"{name} {v.version}" for name in names for v in held.get(name, []) if stage in v.stages]
        shown = ", ".join(holders[:5]) + (f", and {len(holders) - 5} more" if len(holders) > 5 else "")
        checks.append(ok("registry", f"stage {stage}", f"{len(holders)} of {len(names)} models hold a version"
                         + (f": {shown}" if holders else f" (gitml promote --model NAME --stage {stage})")))
    return checks


# ----------------------------------------------------------------------------- forge


def check_token(ctx: Context) -> list[Check]:
    from gitml.gitops.forge import TOKEN_VARS

    present = [name for name in TOKEN_VARS if os.environ.get(name)]  # the value is never read out
    if not present:
        return [problem("warn", "forge", "token", f"none of {', '.join(TOKEN_VARS)} is set: gitml retrain-pr "
                        "and gitml comment need one (CI passes it from a secret)",
                        f"export {TOKEN_VARS[0]}=<token with contents + pull requests: write>")]
    also = f" (also {', '.join(present[1:])})" if present[1:] else ""
    return [ok("forge", "token", f"{present[0]} is set and used{also}")]


def check_workflows(ctx: Context) -> list[Check]:
    folder = ctx.project / ".github" / "workflows"
    missing = [name for name in WORKFLOWS if not (folder / name).is_file()]
    if missing:
        return [problem("warn", "forge", "workflows", f"missing in .github/workflows/: {', '.join(missing)}",
                        "copy them from the gitml reference instance's .github/workflows/")]
    return [ok("forge", "workflows", ", ".join(WORKFLOWS))]
