"""Load ``params.yaml`` once, validate it against the schema, return typed objects.

Stages and the CLI call :func:`load_params`; library code receives the typed sections and
never reads files of configuration itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitml.config.errors import config_error_from
from gitml.config.schema import MODEL_SCHEMAS, Config, DriftConfig, RegistryConfig
from gitml.errors import ConfigError

PARAMS_FILE = "params.yaml"


def load_params(params_file: str | Path = PARAMS_FILE) -> Config:
    """Read and validate ``params_file``; errors name the key and the file.

    Example:
        >>> params = load_params("params.yaml")
        >>> params.trainer.epochs
        30
    """
    from omegaconf import OmegaConf

    path = Path(params_file)
    if not path.is_file():
        raise ConfigError(str(path), None, "file not found.", hint="Run `gitml config compose`.")
    try:
        raw = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(str(path), None, f"not valid YAML: {exc}") from exc
    return validate_config(raw, source=str(path))


def validate_config(raw: Any, source: str) -> Config:
    """Merge plain config data onto the schema and return the typed :class:`Config`."""
    from omegaconf import OmegaConf

    if not isinstance(raw, dict):
        raw = OmegaConf.to_container(raw, resolve=False)
    if not isinstance(raw, dict):
        raise ConfigError(source, None, "expected a mapping at the top level.")
    model = raw.get("model") or {}
    family = model.get("family") if isinstance(model, dict) else None
    if family not in MODEL_SCHEMAS:
        raise ConfigError(
            source, "model.family",
            f"unknown model family {family!r}. Allowed: {', '.join(MODEL_SCHEMAS)}.",
        )
    try:
        schema = OmegaConf.structured(Config)
        schema.model = OmegaConf.structured(MODEL_SCHEMAS[family])
        merged = OmegaConf.merge(schema, raw)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(source, missing[0], "required value is missing.")
        typed = OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as exc:
        raise config_error_from(exc, conf_dir=None, overrides=(), source=source) from exc
    assert isinstance(typed, Config)
    check_semantics(typed, source)
    return typed


def feedback_problems(cfg: Config) -> list[tuple[str, str]]:
    """``serve.feedback_*``: a window and a buffer that can hold one full request, an env var name."""
    import re

    serve = cfg.serve
    problems = []
    if serve.feedback_window_requests < 1:
        problems.append(("serve.feedback_window_requests",
                         f"must be at least 1, got {serve.feedback_window_requests}."))
    if serve.feedback_max_pending_rows < serve.max_batch_rows:
        problems.append(("serve.feedback_max_pending_rows", f"must be at least serve.max_batch_rows "
                         f"({serve.max_batch_rows}) so one full labels body fits, got {serve.feedback_max_pending_rows}."))
    if serve.feedback_token_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", serve.feedback_token_env):
        problems.append(("serve.feedback_token_env", f"must be an environment variable name (letters, digits, _) "
                         f"or empty, got {serve.feedback_token_env!r}."))
    return problems


def check_semantics(cfg: Config, source: str) -> None:
    """Rules the type system cannot express; each failure names its key."""
    import re

    from gitml.config.schema import SourceKind

    problems: list[tuple[str, str]] = []
    src = cfg.data.source
    if src.kind is SourceKind.sklearn and not src.name:
        problems.append(("data.source.name", "a scikit-learn data set name is required for kind=sklearn."))
    if src.kind in (SourceKind.csv, SourceKind.parquet) and not src.path:
        problems.append(("data.source.path", f"a file path is required for kind={src.kind.name}."))
    split = cfg.data.split
    for key in ("test_size", "val_size"):
        value = getattr(split, key)
        if not 0.0 < value < 1.0:
            problems.append((f"data.split.{key}", f"must be between 0 and 1 (exclusive), got {value}."))
    if not 0.0 <= cfg.data.schema.max_null_fraction <= 1.0:
        problems.append(("data.schema.max_null_fraction", "must be between 0 and 1."))
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", cfg.trainer.device):
        problems.append(("trainer.device", f"unknown device {cfg.trainer.device!r}. Allowed: auto, cpu, cuda, cuda:N, mps."))
    for key in ("epochs", "batch_size"):
        if getattr(cfg.trainer, key) < 1:
            problems.append((f"trainer.{key}", f"must be at least 1, got {getattr(cfg.trainer, key)}."))
    problems += drift_problems(cfg.drift)
    problems += serve_problems(cfg)
    problems += feedback_problems(cfg)
    problems += registry_problems(cfg.registry)
    problems += model_name_problems(cfg.model)
    if problems:
        key, problem = problems[0]
        more = "; ".join(f"'{k}': {p}" for k, p in problems[1:])
        raise ConfigError(source, key, problem + (f" Also: {more}" if more else ""))


def registry_problems(registry: RegistryConfig) -> list[tuple[str, str]]:
    """``registry.*``: signed stages are stages of the registry; the allowed-signers file stays in the repo."""
    from pathlib import PurePosixPath

    problems = []
    unknown = [s for s in registry.signed_stages if s not in registry.stages]
    if unknown:
        problems.append(("registry.signed_stages", f"{', '.join(map(repr, unknown))} not a stage of this registry. "
                         f"Allowed: {', '.join(registry.stages)} <registry.stages>."))
    path = PurePosixPath(registry.allowed_signers)
    if registry.signed_stages and (not registry.allowed_signers or path.is_absolute() or ".." in path.parts):
        problems.append(("registry.allowed_signers", "must be a relative path inside the repository (no '..'), "
                         f"got {registry.allowed_signers!r}."))
    return problems


def drift_problems(drift: DriftConfig) -> list[tuple[str, str]]:
    """``drift.*`` rules the types cannot express, as ``(key, problem)`` pairs."""
    problems = []
    if not 0.0 < drift.p_val < 1.0:
        problems.append(("drift.p_val", f"must be between 0 and 1 (exclusive), got {drift.p_val}."))
    if drift.window_rows is not None and drift.window_rows < 1:
        problems.append(("drift.window_rows", f"must be at least 1 (or null), got {drift.window_rows}."))
    if drift.window_hours is not None and drift.window_hours <= 0:
        problems.append(("drift.window_hours", f"must be positive (or null), got {drift.window_hours}."))
    for key in ("min_rows", "max_rows"):
        if getattr(drift, key) < 2:
            problems.append((f"drift.{key}", f"must be at least 2, got {getattr(drift, key)}."))
    if not 0.0 <= drift.max_invalid_share <= 1.0:
        problems.append(("drift.max_invalid_share", f"must be between 0 and 1, got {drift.max_invalid_share}."))
    return problems


def model_name_problems(model: Any) -> list[tuple[str, str]]:
    """``model.allowed_targets`` and ``model.trusted_types``: exact dotted names, each once."""
    import re

    problems = []
    for key in ("allowed_targets", "trusted_types"):
        names = list(getattr(model, key, None) or [])
        bad = [n for n in names if not isinstance(n, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", n)]
        if bad:
            problems.append((f"model.{key}", f"each entry must be an exact dotted name such as "
                             f"'package.module.ClassName' (no wildcard, no prefix), got {bad}."))
        if len(set(names)) != len(names):
            problems.append((f"model.{key}", f"lists a name twice: {sorted({n for n in names if names.count(n) > 1})}."))
    return problems


def serve_problems(cfg: Config) -> list[tuple[str, str]]:
    """``serve.*`` limits and timeouts: each a positive number (a zero or negative one would disable the bound)."""
    serve = cfg.serve
    problems = []
    for key in ("port", "workers", "max_batch_rows", "max_body_bytes", "max_decompressed_bytes",
                "log_flush_rows", "keep_alive_seconds", "max_connections"):
        if getattr(serve, key) < 1:
            problems.append((f"serve.{key}", f"must be a positive whole number, got {getattr(serve, key)}."))
    for key in ("log_flush_seconds", "follow_interval_seconds", "header_timeout_seconds", "body_timeout_seconds"):
        if not getattr(serve, key) > 0:
            problems.append((f"serve.{key}", f"must be a positive number of seconds, got {getattr(serve, key)}."))
    if serve.port > 65535:
        problems.append(("serve.port", f"must be at most 65535, got {serve.port}."))
    return problems
