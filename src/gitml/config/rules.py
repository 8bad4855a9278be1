"""Rules the schema's types cannot express: one function per section, every problem at once.

Each ``*_problems`` function returns ``(key, problem)`` pairs and never raises, so
:func:`config_problems` can run them all and one compose or load names every bad key
(ranges, known names, cross-field rules) instead of the first. :mod:`gitml.config.params`
turns the list into one :class:`~gitml.errors.ConfigError`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from gitml.config.checks import SPLIT_NAMES, Problems, at_least, positive, share
from gitml.config.rules_alerts import alerts_problems
from gitml.config.rules_canary import canary_problems
from gitml.config.rules_distributed import distributed_problems
from gitml.config.rules_fairness import sensitive_problems
from gitml.config.rules_gate import gate_problems
from gitml.config.rules_model import model_name_problems, model_problems
from gitml.config.rules_paths import paths_problems
from gitml.config.rules_preprocess import preprocess_problems
from gitml.config.rules_stream import stream_problems
from gitml.config.schema import (
    Config,
    DataConfig,
    DriftConfig,
    PackageConfig,
    RegistryConfig,
    SourceKind,
    TrainerConfig,
)
from gitml.utils.storage import is_url, url_problem

# GTO's artifact and stage names (gto.constants.name; importing gto costs 0.8 s): they
# become tags such as model@v1.2.0 and model#prod#3, so '#', '@' or spaces would break them.
GTO_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
__all__ = [
    "SPLIT_NAMES", "Problems", "config_problems", "data_problems", "drift_problems", "gate_problems",
    "model_name_problems", "model_problems", "package_problems", "paths_problems", "registry_problems",
    "serve_problems", "trainer_problems",
]


def config_problems(cfg: Config) -> Problems:
    """Every rule of every section, in the schema's order; an empty list means valid.

    Example:
        >>> [key for key, _ in config_problems(cfg)]  # doctest: +SKIP
        ['gate.significance.alpha', 'serve.port', 'drift.p_val']
    """
    return [
        *data_problems(cfg.data), *model_problems(cfg.model), *trainer_problems(cfg.trainer), *stream_problems(cfg),
        *gate_problems(cfg), *package_problems(cfg.package), *registry_problems(cfg.registry),
        *serve_problems(cfg), *drift_problems(cfg.drift), *_drift_window_problems(cfg.drift),
        *alerts_problems(cfg.alerts), *canary_problems(cfg.canary), *paths_problems(cfg.paths),
    ]


# -------------------------------------------------------------------------- data


def data_problems(data: DataConfig) -> Problems:
    """``data.*``: the source's required arguments, split shares, contract knobs, slices."""
    from gitml.data.sources import SKLEARN_SETS

    problems: Problems = []
    src = data.source
    if src.kind is SourceKind.sklearn and not src.name:
        problems.append(("data.source.name", "a scikit-learn data set name is required for kind=sklearn."))
    elif src.kind is SourceKind.sklearn and src.name not in SKLEARN_SETS:
        problems.append(("data.source.name", f"unknown scikit-learn data set {src.name!r}. "
                         f"Allowed: {', '.join(SKLEARN_SETS)}."))
    if src.kind in (SourceKind.csv, SourceKind.parquet) and not src.path:
        problems.append(("data.source.path", f"a file path is required for kind={src.kind.name}."))
    if src.kind is SourceKind.synthetic:
        problems += _synthetic_problems(data)
    for key in ("test_size", "val_size"):
        problems += share(f"data.split.{key}", getattr(data.split, key))
    problems += share("data.schema.max_null_fraction", data.schema.max_null_fraction, exclusive=False)
    problems += at_least("data.schema.range_margin", data.schema.range_margin, 0)
    problems += at_least("data.schema.max_categories", data.schema.max_categories, 1)
    problems += at_least("data.chunk_rows", data.chunk_rows, 1)
    return problems + _slice_problems(data) + sensitive_problems(data) + preprocess_problems(data.preprocess)


def _synthetic_problems(data: DataConfig) -> Problems:
    """What sources.generate_synthetic needs, named before ingest runs it."""
    syn, key = data.source.synthetic, "data.source.synthetic"
    problems = at_least(f"{key}.n_classes", syn.n_classes, 2)
    problems += at_least(f"{key}.n_rows", syn.n_rows, max(syn.n_classes, 1))
    for name in ("n_numeric", "n_categorical", "class_sep"):
        problems += at_least(f"{key}.{name}", getattr(syn, name), 0)
    if syn.n_numeric + syn.n_categorical < 1:
        problems.append((f"{key}.n_numeric", "the data needs at least one feature: n_numeric + n_categorical >= 1."))
    if syn.n_categorical > 0 and not 1 <= syn.n_levels <= 26:  # levels are the letters 'a'..'z'
        problems.append((f"{key}.n_levels", f"must be between 1 and 26, got {syn.n_levels}."))
    problems += at_least(f"{key}.shift_features", syn.shift_features, 0, null_ok=True)
    weights = syn.class_weights
    if weights is not None and (len(weights) != syn.n_classes or any(w <= 0 for w in weights)):
        problems.append((f"{key}.class_weights", f"needs {syn.n_classes} positive numbers (one per class, "
                         f"n_classes) or null, got {list(weights)}."))
    return problems


def _slice_problems(data: DataConfig) -> Problems:
    problems: Problems = []
    seen: set[str] = set()
    for i, spec in enumerate(data.slices):
        if not spec.column:
            problems.append((f"data.slices.{i}.column", "must name a column of the data."))
        elif spec.column in seen:
            problems.append((f"data.slices.{i}.column", f"'{spec.column}' is sliced twice; keep one entry."))
        seen.add(spec.column)
        bins = list(spec.bins or [])
        if spec.bins is not None and (len(bins) < 2 or any(b >= c for b, c in itertools.pairwise(bins))):
            problems.append((f"data.slices.{i}.bins", f"needs at least two edges in increasing order "
                             f"(or null for a categorical column), got {bins}."))
    return problems


# ------------------------------------------------------------ model and trainer


def trainer_problems(trainer: TrainerConfig) -> Problems:
    """``trainer.*``: a known device, positive counts, an early stop that can wait an epoch."""
    problems: Problems = []
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", trainer.device):
        problems.append(("trainer.device", f"unknown device {trainer.device!r}. Allowed: auto, cpu, cuda, cuda:N, mps."))
    for key in ("epochs", "batch_size"):
        problems += at_least(f"trainer.{key}", getattr(trainer, key), 1)
    problems += at_least("trainer.num_threads", trainer.num_threads, 1, null_ok=True)
    # train/loop.py stops once bad epochs >= patience: 0 would stop after the first epoch.
    problems += at_least("trainer.early_stopping.patience", trainer.early_stopping.patience, 1)
    problems += at_least("trainer.early_stopping.min_delta", trainer.early_stopping.min_delta, 0)
    return problems + distributed_problems(trainer)


# ------------------------------------------------------------ package, registry


def package_problems(package: PackageConfig) -> Problems:
    """``package.*``: a reference sample of at least one row, drawn from a split that exists."""
    problems = at_least("package.reference_rows", package.reference_rows, 1)
    if package.reference_split not in SPLIT_NAMES:
        problems.append(("package.reference_split", f"unknown split {package.reference_split!r}. "
                         f"Allowed: {', '.join(SPLIT_NAMES)}."))
    splits = list(package.prediction_reference_splits)
    if not splits or any(name not in SPLIT_NAMES for name in splits):
        problems.append(("package.prediction_reference_splits", f"must list splits among "
                         f"{', '.join(SPLIT_NAMES)}, got {splits}."))
    return problems


def registry_problems(registry: RegistryConfig) -> Problems:
    """``registry.*``: names GTO accepts, signed stages are stages, the allowed-signers file stays in the repo."""
    from pathlib import PurePosixPath

    problems = []
    if not re.fullmatch(GTO_NAME, registry.model):
        problems.append(("registry.model", f"{registry.model!r} is not a registry name: letters, digits, "
                         "'-', '_' and '/', starting and ending with a letter or digit."))
    bad = [s for s in registry.stages if not re.fullmatch(GTO_NAME, s)]
    if not registry.stages or bad:
        problems.append(("registry.stages", "needs at least one stage, each letters, digits, '-', '_' or '/' "
                         f"starting and ending with a letter or digit, got {list(registry.stages)}."))
    if len(set(registry.stages)) != len(registry.stages):
        problems.append(("registry.stages", f"lists a stage twice: {list(registry.stages)}."))
    if not registry.remote:
        problems.append(("registry.remote", "must name a git remote, e.g. origin."))
    unknown = [s for s in registry.signed_stages if s not in registry.stages]
    if unknown:
        problems.append(("registry.signed_stages", f"{', '.join(map(repr, unknown))} not a stage of this registry. "
                         f"Allowed: {', '.join(registry.stages)} <registry.stages>."))
    path = PurePosixPath(registry.allowed_signers)
    if registry.signed_stages and (not registry.allowed_signers or path.is_absolute() or ".." in path.parts):
        problems.append(("registry.allowed_signers", "must be a relative path inside the repository (no '..'), "
                         f"got {registry.allowed_signers!r}."))
    return problems


# ------------------------------------------------------------------ serve, drift


def serve_problems(cfg: Config) -> Problems:
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
    if serve.max_loaded_models < 0:
        problems.append(("serve.max_loaded_models", f"must be 0 (no bound) or more, got {serve.max_loaded_models}."))
    if serve.default_model and not re.fullmatch(GTO_NAME, serve.default_model):
        problems.append(("serve.default_model", f"must be a model name or empty, got {serve.default_model!r}."))
    for key in ("host", "log_dir"):
        if not getattr(serve, key):
            problems.append((f"serve.{key}", "must not be empty."))
    if is_url(serve.log_dir) and (problem := url_problem(serve.log_dir)):  # a folder, or object storage
        problems.append(("serve.log_dir", problem))
    return problems + feedback_problems(cfg)


def feedback_problems(cfg: Config) -> Problems:
    """``serve.feedback_*``: a window and a buffer that can hold one full request, an env var name."""
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


def drift_problems(drift: DriftConfig) -> Problems:
    """``drift.*`` rules the types cannot express; monitor/check.py applies them to CLI options too."""
    problems = share("drift.p_val", drift.p_val)
    problems += at_least("drift.window_rows", drift.window_rows, 1, null_ok=True)
    problems += positive("drift.window_hours", drift.window_hours, null_ok=True)
    for key in ("min_rows", "max_rows"):
        problems += at_least(f"drift.{key}", getattr(drift, key), 2)
    problems += share("drift.max_invalid_share", drift.max_invalid_share, exclusive=False)
    problems += at_least("drift.top_features", drift.top_features, 0)
    problems += at_least("drift.history_rows", drift.history_rows, 1)
    return problems + _cbpe_problems(drift)


def _cbpe_problems(drift: DriftConfig) -> Problems:
    from gitml.monitor.cbpe import CALIBRATIONS, ESTIMATED

    cbpe, problems = drift.cbpe, []
    if cbpe.metric not in ESTIMATED:
        problems.append(("drift.cbpe.metric", f"unknown metric {cbpe.metric!r}. Allowed: {', '.join(ESTIMATED)}."))
    if cbpe.calibration not in CALIBRATIONS:
        problems.append(("drift.cbpe.calibration",
                         f"unknown calibration {cbpe.calibration!r}. Allowed: {', '.join(CALIBRATIONS)}."))
    problems += at_least("drift.cbpe.chunk_rows", cbpe.chunk_rows, 1)
    problems += at_least("drift.cbpe.min_labelled", cbpe.min_labelled, 2)
    return problems


def _drift_window_problems(drift: DriftConfig) -> Problems:
    """A configured window smaller than min_rows could never reach a verdict.

    Kept out of :func:`drift_problems`: ``gitml drift check --window-rows N`` narrows the
    window for one run, and too few rows there is the check's own exit 2, not a config error.
    """
    if drift.window_rows is not None and 1 <= drift.window_rows < drift.min_rows:
        return [("drift.window_rows", f"must be at least drift.min_rows ({drift.min_rows}), or every check "
                 f"stops with too few rows; got {drift.window_rows}.")]
    return []



# The sections a command may validate alone (config.params.load_sections), with their rules.
SECTION_RULES: dict[str, Callable[[Config], Problems]] = {
    "serve": serve_problems,
    "registry": lambda cfg: registry_problems(cfg.registry),
    "alerts": lambda cfg: alerts_problems(cfg.alerts),
}
