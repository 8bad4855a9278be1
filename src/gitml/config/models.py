"""Several models in one repository: one file per model under ``conf/models/``.

Each ``conf/models/<name>.yaml`` is a Hydra config in the ``_global_`` package, Hydra's own
"experiment" pattern: its defaults list picks the options that differ from
``conf/config.yaml`` (``- override /data: wine``, ``- override /model: hgb``,
``- override /paths: model``) and its body sets values, so every model shares the root's
defaults and states only what is its own. ``gitml config compose`` composes the root once
and each model once more (``+models=<name> registry.model=<name>``) and writes them to
``params.yaml`` as the top-level sections (the shared defaults) and ``models.<name>``.

dvc.yaml turns ``models`` into one stage chain per model (``foreach: ${models}``), each
stage listing only ``models.${key}.<section>`` as params, so a change to one model's file
reruns only that model's chain. Every stage command takes ``--model NAME`` and reads that
model's section; a repository without ``conf/models/`` is the single-model layout it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitml.errors import ConfigError, GitmlError, UsageError

MODELS_DIR = "models"  # the config group under conf/
PER_WORKER = 20  # models per process before composing in several (a process costs ~1 s to start and import)
# A model name is a path segment (data/<name>/raw), a GTO artifact name and a URL segment
# (/v2/models/<name>): lower-case letters, digits, '-' and '_', starting with a letter.
NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
# Locations a model writes or owns: two models must not share one. `external` (the source
# files) and `reports` (the folder summary reads) may be shared.
SHARED_PATHS = ("external", "reports")


def check_name(name: str, where: str, key: str = "models") -> str:
    """``name`` when it is a valid model name, else a :class:`ConfigError` naming ``where``."""
    if not NAME.fullmatch(name):
        raise ConfigError(where, key, f"model name {name!r} is not valid: use lower-case letters, digits, "
                          "'-' and '_', starting with a letter (at most 64 characters).")
    return name


def model_names(conf_dir: str | Path) -> list[str]:
    """The models ``conf_dir/models/*.yaml`` declares, sorted; empty for a single-model tree."""
    folder = Path(conf_dir) / MODELS_DIR
    if not folder.is_dir():
        return []
    return [check_name(path.stem, str(path)) for path in sorted(folder.glob("*.yaml"))]


def compose_models(conf_dir: str | Path, overrides: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Each declared model's composed config as plain data, keyed by name (``{}`` without models).

    ``overrides`` apply to every model, after its own file. Raises :class:`ConfigError`
    naming the model's file when one does not compose, and when two models would write
    the same location (see :func:`check_layout`).
    """
    import multiprocessing
    import threading

    names = model_names(conf_dir)
    workers = min(len(names) // PER_WORKER, os.cpu_count() or 1)
    # fork only a process with one thread (the CLI's): a lock another thread held would stay held in the child
    if workers < 2 or threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        composed = _compose_some(str(conf_dir), names, tuple(overrides))
    else:  # Hydra composes ~5-10 models a second: share them out between processes
        from concurrent.futures import ProcessPoolExecutor

        merged: dict[str, dict[str, Any]] = {}
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for part in pool.map(_compose_some, [str(conf_dir)] * workers, [names[i::workers] for i in range(workers)],
                                 [tuple(overrides)] * workers):
                merged.update(part)
        composed = {name: merged[name] for name in names}  # in name order, as one process gives them
    check_layout(composed, conf_dir)
    return composed


def _compose_some(conf_dir: str, names: list[str], overrides: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``names`` composed in one Hydra start; a model that does not compose raises the error naming its file
    (rebuilt from plain values, so that it crosses from a worker process intact)."""
    from gitml.config.compose import composer, to_plain

    composed = {}
    with composer(conf_dir) as one:
        for name in names:
            own = [f"+{MODELS_DIR}={name}", f"registry.model={name}"]
            try:
                composed[name] = to_plain(one([*own, *overrides]))
            except ConfigError as exc:
                model_file = str(Path(conf_dir) / MODELS_DIR / f"{name}.yaml")
                root = str(Path(conf_dir) / "config.yaml")
                where = (model_file if exc.file.startswith(root) or exc.file.startswith(model_file)
                         else f"{exc.file} (model {name}, {model_file})")
                raise ModelComposeError(where, exc.key, exc.problem, exc.hint, exc.problems) from None
    return composed


class ModelComposeError(ConfigError):
    """A model's :class:`ConfigError`, picklable (its arguments are kept), as a worker process raises it."""

    def __init__(self, file: str, key: str | None, problem: str, hint: str | None = None,
                 problems: list[tuple[str | None, str]] | None = None):
        super().__init__(file, key, problem, hint, problems=problems)
        self.args = (file, key, problem, hint, problems)


def check_layout(models: dict[str, dict[str, Any]], conf_dir: str | Path) -> None:
    """Refuse two models whose ``paths`` name the same location, or one inside another's."""
    owner: dict[str, tuple[str, str]] = {}
    for name, cfg in models.items():
        for key, value in (cfg.get("paths") or {}).items():
            if key in SHARED_PATHS:
                continue
            place = str(value).rstrip("/")
            for other, (other_name, other_key) in owner.items():
                if other_name != name and (place == other or place.startswith(other + "/")
                                           or other.startswith(place + "/")):
                    raise ConfigError(
                        str(Path(conf_dir) / MODELS_DIR / f"{name}.yaml"), f"paths.{key}",
                        f"{place!r} is also model {other_name!r}'s paths.{other_key} ({other!r}): "
                        "two models would overwrite each other's outputs.",
                        hint="Give each model its own layout: add `- override /paths: model` to its defaults "
                        "(data/<name>/..., models/<name>/..., reports/<name>/...).",
                    )
            owner[place] = (name, key)


def select_model(raw: dict[str, Any], model: str | None, source: str, shared: bool = False) -> dict[str, Any]:
    """The plain config a command reads from a params file's data: ``models.<model>``, or the top level.

    Without ``model``: the top level of a single-model file. A multi-model file then needs a
    model named (a :class:`UsageError` lists them), unless ``shared``: its top level, the
    defaults every model shares (the server reads its ``serve`` settings there). Naming a
    model that a multi-model file lacks is a :class:`ConfigError` listing the ones it has;
    in a single-model file, ``model`` may name its one model (``registry.model``).
    """
    models = raw.get("models")
    rest = {key: value for key, value in raw.items() if key != "models"}
    if model is None:
        if isinstance(models, dict) and models and not shared:
            names = sorted(models)
            raise UsageError(f"{source} declares {len(names)} models ({', '.join(names)}): name one with --model NAME.",
                             hint=f"for example --model {names[0]}.")
        return rest
    if isinstance(models, dict) and models:
        if model not in models:
            raise ConfigError(source, f"models.{model}", f"no model named {model!r}. "
                              f"Declared: {', '.join(sorted(models))}.",
                              hint="Add conf/models/<name>.yaml and run `gitml config compose`.")
        chosen = models[model]
        if not isinstance(chosen, dict):
            raise ConfigError(source, f"models.{model}", "expected a mapping.")
        return chosen
    registry = rest.get("registry") if isinstance(rest.get("registry"), dict) else {}
    own = registry.get("model", "model") if isinstance(registry, dict) else "model"
    if model != own:
        raise ConfigError(source, "models", f"this params file has one model, {own!r}, not {model!r}.",
                          hint="Declare several models under conf/models/ (docs/several-models.md).")
    return rest


def declared(raw: Any) -> list[str]:
    """The model names a params file's data declares under ``models`` (empty for one model)."""
    models = raw.get("models") if isinstance(raw, dict) else None
    return sorted(models) if isinstance(models, dict) else []


def declared_in(path: str | Path) -> list[str]:
    """The model names the params file at ``path`` declares (empty for one model, or no readable file).

    Reads the names from the file's layout without parsing 1,000 models' sections
    (gitml.utils.yaml_blocks); a file in another layout is parsed whole.
    """
    from gitml.utils.yaml_blocks import children

    try:
        text = Path(path).read_bytes()
        return sorted(children(text, "models", str(path)))
    except (OSError, GitmlError):
        return []
