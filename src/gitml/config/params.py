"""Load ``params.yaml`` once, validate it against the schema, return typed objects.

Stages and the CLI call :func:`load_params`; library code receives the typed sections and
never reads files of configuration itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitml.config.errors import config_error_from, source_with_overrides
from gitml.config.models import select_model
from gitml.config.rules import config_problems
from gitml.config.schema import MODEL_SCHEMAS, Config
from gitml.errors import ConfigError

log = logging.getLogger(__name__)

# monitor/check.py validates its CLI options with the drift rules it imports from here.
__all__ = ["PARAMS_FILE", "check_semantics", "has_data", "load_params", "load_params_or_defaults", "load_sections",
           "validate_config"]

PARAMS_FILE = "params.yaml"


def load_params(params_file: str | Path = PARAMS_FILE, model: str | None = None) -> Config:
    """Read and validate ``params_file``; errors name the key and the file.

    ``model``: read ``models.<model>`` of a multi-model file (gitml.config.models); without
    it, the top level (a multi-model file's shared defaults).

    Example:
        >>> params = load_params("params.yaml")
        >>> params.trainer.epochs
        30
    """
    path = Path(params_file)
    if not path.is_file():
        raise ConfigError(str(path), None, "file not found.", hint="Run `gitml config compose`.")
    raw = _read(path, model)
    source = str(path) if model is None else f"{path} (models.{model})"
    return validate_config(select_model(raw, model, str(path)), source=source)


def _read(path: Path, model: str | None = None, shared: bool = False) -> dict[str, Any]:
    """A params file's data (interpolations kept as text); errors name the file.

    With several models, only what the caller reads is parsed: ``model``'s section, or the
    shared top level (``shared``; the names alone otherwise), cut out of the file's text
    (gitml.utils.yaml_blocks): one model of 1,000 is 6 kB of a 5 MB file. A file in another
    layout is parsed whole; :func:`select_model` sees the same data either way.
    """
    from gitml.utils.yaml_blocks import children, entry_text, without_section

    try:
        text = path.read_bytes()
        if model is not None and (block := entry_text(text, "models", model)) is not None:
            return {"models": _load(block, path)}
        rest = without_section(text, "models") if model is None else None
        if rest is not None and rest != text:
            data = _load(rest, path)
            return data if shared else {**data, "models": {key: {} for key in children(text, "models", str(path))}}
        return _load(text, path)
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read it: {exc}") from exc


def _load(text: bytes, path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw = yaml.load(text, Loader=loader)  # a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), None, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(str(path), None, "expected a mapping at the top level.")
    return raw


def load_params_or_defaults(params_file: str | Path | None = None, model: str | None = None) -> Config:
    """``params_file``; without one, ./params.yaml when present, else the schema's defaults.

    For the commands that also run outside a project (serve, drift check, simulate,
    deploy): the defaults fill the sections that have them (gate, package, registry, serve,
    drift) and leave ``data``, ``model`` and ``trainer`` unset (:func:`has_data` tells). A
    ``params_file`` that is named but missing is an error, as for :func:`load_params`.
    """
    if params_file is None and Path(PARAMS_FILE).is_file():
        params_file = PARAMS_FILE
    if params_file is not None:
        return load_params(params_file, model)
    log.info("no %s here: using the default settings", PARAMS_FILE)
    return Config()


def load_sections(params_file: str | Path | None, sections: Sequence[str], model: str | None = None) -> Config:
    """:func:`load_params_or_defaults`, validating only ``sections`` (``serve``, ``registry``).

    For the server, which reads nothing else: a broken ``model`` section is the pipeline's
    to report, and validating every section costs each server start ~0.1 s more. The other
    sections hold their defaults. Errors name the key (``serve.port``) and the file. In a
    file of several models, without ``model``: the top level, the defaults they share.
    """
    from omegaconf import OmegaConf

    from gitml.config.rules import SECTION_RULES

    if params_file is None and Path(PARAMS_FILE).is_file():
        params_file = PARAMS_FILE
    if params_file is None:
        return Config()
    path = Path(params_file)
    if not path.is_file():
        raise ConfigError(str(path), None, "file not found.", hint="Run `gitml config compose`.")
    raw = select_model(_read(path, model, shared=True), model, str(path), shared=True)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), {k: raw[k] for k in sections if k in raw})
        typed = Config(**{k: OmegaConf.to_object(getattr(merged, k)) for k in sections})  # type: ignore[arg-type]
    except Exception as exc:
        raise config_error_from(exc, conf_dir=None, overrides=(), source=str(path)) from exc
    problems = [problem for section in sections for problem in SECTION_RULES[section](typed)]
    if problems:
        raise ConfigError.of(str(path), problems)
    return typed


def has_data(cfg: Config) -> bool:
    """Does ``cfg`` hold a data section (a composed params file, not the bare defaults)?"""
    from gitml.config.schema import DataConfig

    return isinstance(cfg.data, DataConfig)


def validate_config(raw: Any, source: str, overrides: Sequence[str] = ()) -> Config:
    """Merge plain config data onto the schema and return the typed :class:`Config`.

    ``overrides``: the command-line overrides ``raw`` was composed with, named in errors
    next to ``source``. Every rule of :mod:`gitml.config.rules` runs; one
    :class:`ConfigError` lists all that fail.

    Example:
        >>> validate_config(data, "conf/config.yaml", ["drift.p_val=1.5"])  # doctest: +SKIP
        ConfigError: Invalid config in conf/config.yaml with overrides drift.p_val=1.5: ...
    """
    from omegaconf import OmegaConf

    where = source_with_overrides(source, overrides)
    if not isinstance(raw, dict):
        raw = OmegaConf.to_container(raw, resolve=False)
    if not isinstance(raw, dict):
        raise ConfigError(where, None, "expected a mapping at the top level.")
    model = raw.get("model") or {}
    family = model.get("family") if isinstance(model, dict) else None
    if family not in MODEL_SCHEMAS:
        raise ConfigError(
            where, "model.family",
            f"unknown model family {family!r}. Allowed: {', '.join(MODEL_SCHEMAS)}.",
        )
    try:
        schema = OmegaConf.structured(Config)
        schema.model = OmegaConf.structured(MODEL_SCHEMAS[family])
        merged = OmegaConf.merge(schema, raw)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError.of(where, [(key, "required value is missing.") for key in missing])
        typed = OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as exc:
        raise config_error_from(exc, conf_dir=None, overrides=overrides, source=where) from exc
    assert isinstance(typed, Config)
    check_semantics(typed, where)
    return typed


def check_semantics(cfg: Config, source: str) -> None:
    """Raise one :class:`ConfigError` naming every rule ``cfg`` breaks (:func:`config_problems`)."""
    problems = config_problems(cfg)
    if problems:
        raise ConfigError.of(source, problems)
