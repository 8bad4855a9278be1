# Over 300 lines: one dataclass per config section, read side by side with conf/.
"""Typed schema of the composed configuration (YAML holds values, dataclasses hold types).

The YAML tree in ``conf/`` pulls these schemas in through its defaults lists
(``base_config`` at the top, ``model/base_torch_mlp`` or ``model/base_sklearn`` in each
model option), so Hydra rejects an unknown key, a wrong type or a missing required value
at composition time, before any stage does work. :mod:`gitml.config.params` applies the
same schema when a stage loads ``params.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from gitml.config.paths import PathsConfig

# omegaconf's MISSING marker is this string; spelt here so that reading a bundle's config,
# which imports this schema, does not import omegaconf (~0.1 s of every predict).
MISSING: Any = "???"

# ---------------------------------------------------------------------------- data


class SourceKind(Enum):
    """Where the raw snapshot comes from (``data.source.kind``)."""

    sklearn = "sklearn"
    csv = "csv"
    parquet = "parquet"
    synthetic = "synthetic"


@dataclass
class SyntheticConfig:
    """Knobs of the synthetic generator (``data.source.synthetic``)."""

    n_rows: int = 5000
    n_numeric: int = 8
    n_categorical: int = 2
    n_levels: int = 4
    n_classes: int = 2
    # Relative class frequencies; null means balanced.
    class_weights: Optional[list[float]] = None
    class_sep: float = 1.0
    # Covariate shift: added to the first `shift_features` numeric columns, in units of
    # their standard deviation. The drift tests and benchmarks turn this knob.
    shift: float = 0.0
    shift_features: Optional[int] = None
    seed: int = 0


@dataclass
class SourceConfig:
    """``data.source``: which kind of source and its arguments."""

    kind: SourceKind = MISSING
    name: Optional[str] = None  # scikit-learn data set name (kind=sklearn)
    path: Optional[str] = None  # file path (kind=csv|parquet)
    label: Optional[str] = None  # label column in the file; default data.target
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class SchemaConfig:
    """``data.schema``: the data contract every snapshot is checked against."""

    path: Optional[str] = None  # declared schema file; null: infer from data/raw
    max_null_fraction: float = 0.0
    range_margin: float = 0.25
    max_categories: int = 50


@dataclass
class SplitConfig:
    test_size: float = 0.2
    val_size: float = 0.2
    stratify: bool = True
    seed: int = 42


class Scaling(Enum):
    standard = "standard"
    minmax = "minmax"
    none = "none"


class Encoding(Enum):
    onehot = "onehot"
    ordinal = "ordinal"


class NumericImpute(Enum):
    """What a missing number (or date part) becomes (``data.preprocess.numeric_impute``)."""

    median = "median"
    mean = "mean"
    constant = "constant"  # data.preprocess.fill_value


class CategoricalImpute(Enum):
    """What a missing category becomes (``data.preprocess.categorical_impute``)."""

    none = "none"  # no level: all zeros one-hot, -1 ordinal
    most_frequent = "most_frequent"
    missing_level = "missing_level"  # a level of its own, "(missing)"


def _date_parts() -> list[str]:
    return ["year", "month", "day", "dayofweek", "days"]


@dataclass
class PreprocessConfig:
    scaling: Scaling = Scaling.standard
    categorical: Encoding = Encoding.onehot
    # Numeric parts each datetime feature expands into: year, month, day, dayofweek,
    # dayofyear, hour, minute, days (days since the training split's earliest date).
    datetime_parts: list[str] = field(default_factory=_date_parts)
    numeric_impute: NumericImpute = NumericImpute.median
    fill_value: float = 0.0  # numeric_impute=constant
    categorical_impute: CategoricalImpute = CategoricalImpute.none
    missing_indicator: bool = False  # a 0/1 feature per nullable numeric, bool or datetime column
    # Keep each category's most frequent training levels; the rest and unseen ones read as
    # "(other)". null: the contract's levels (an open column still gets "(other)").
    max_levels: Optional[int] = None


@dataclass
class SliceConfig:
    """A column whose groups get their own metrics; numeric columns are cut at ``bins``."""

    column: str = MISSING
    bins: Optional[list[float]] = None


class Task(Enum):
    """``data.task``: what the label is (null: inferred from its values, see gitml.data.task)."""

    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


@dataclass
class DataConfig:
    name: str = MISSING
    target: str = "target"
    task: Optional[Task] = None
    source: SourceConfig = field(default_factory=SourceConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    slices: list[SliceConfig] = field(default_factory=list)
    # Columns naming groups the model must treat alike (docs/gate.md "Fairness"): evaluate
    # writes test.fairness.<column> (fairlearn) and gate thresholds can bound it. A category
    # or bool column, or a numeric one with bins in data.slices; a feature or not (the contract says).
    sensitive: list[str] = field(default_factory=list)
    # Rows a stage holds at a time when it streams a snapshot (ingest, validate, prepare):
    # results do not depend on it, memory does (docs/scale.md). Not a listed DVC param.
    chunk_rows: int = 100_000


# --------------------------------------------------------------------------- model


class Activation(Enum):
    relu = "relu"
    gelu = "gelu"
    silu = "silu"
    tanh = "tanh"


class ClassWeight(Enum):
    """``model.class_weight``: how the loss weighs each class (null: every row alike)."""

    balanced = "balanced"  # n_rows / (n_classes * rows of the class), scikit-learn's rule


def _adamw() -> dict[str, Any]:
    return {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "weight_decay": 1e-4}


@dataclass
class TorchMLPConfig:
    """``model`` for family ``torch_mlp``: a PyTorch MLP for tabular data."""

    family: str = "torch_mlp"
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 32])
    activation: Activation = Activation.relu
    dropout: float = 0.1
    batch_norm: bool = True
    optimizer: Any = field(default_factory=_adamw)
    scheduler: Any = None
    class_weight: Optional[ClassWeight] = None  # balanced: weighted cross-entropy
    # Exact class names a `_target_` here may name beyond gitml's registry (utils/targets.py).
    allowed_targets: list[str] = field(default_factory=list)


@dataclass
class TorchModuleConfig:
    """``model`` for family ``torch_module``: any ``torch.nn.Module`` given by ``module._target_``.

    Built as ``module._target_(n_features=..., n_classes=..., **other keys)`` and trained by
    gitml's trainer; the keys are saved in model.json, so they must be plain values.
    """

    family: str = "torch_module"
    module: Any = MISSING
    optimizer: Any = field(default_factory=_adamw)
    scheduler: Any = None
    class_weight: Optional[ClassWeight] = None  # balanced: weighted cross-entropy
    # Exact class names a `_target_` here may name beyond gitml's registry (utils/targets.py);
    # a loader (evaluate, package, gate) needs the module's name here too to rebuild it.
    allowed_targets: list[str] = field(default_factory=list)


@dataclass
class SklearnConfig:
    """``model`` for family ``sklearn``: any scikit-learn classifier or Pipeline given by ``_target_``."""

    family: str = "sklearn"
    estimator: Any = MISSING
    # balanced: the estimator's (a Pipeline's last step's) own class_weight='balanced'
    class_weight: Optional[ClassWeight] = None
    # Exact class names `estimator._target_` may name beyond gitml's registry (utils/targets.py).
    allowed_targets: list[str] = field(default_factory=list)
    # Exact type names a model.skops may hold beyond gitml's fixed set (models/sklearn.py
    # TRUSTED_TYPES): classes only, never functions; checked when the model is saved and loaded.
    trusted_types: list[str] = field(default_factory=list)


MODEL_SCHEMAS: dict[str, type] = {"torch_mlp": TorchMLPConfig, "sklearn": SklearnConfig,
                                   "torch_module": TorchModuleConfig}

# ------------------------------------------------------------------------- trainer


class Precision(Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Monitor(Enum):
    val_loss = "val_loss"
    val_accuracy = "val_accuracy"


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: Monitor = Monitor.val_loss
    patience: int = 5
    min_delta: float = 0.0


class DistBackend(Enum):
    """``trainer.distributed.backend``: the collective library the ranks talk through."""

    auto = "auto"  # nccl when the ranks train on CUDA, gloo on the CPU
    gloo = "gloo"
    nccl = "nccl"


@dataclass
class DistributedConfig:
    """``trainer.distributed``: data-parallel training under PyTorch's elastic launcher (docs/distributed.md).

    One process per node and rank is the default; more than one rank in all makes the train
    stage launch itself through ``torch.distributed.launcher`` (torchrun's runtime), and a
    stage already started by torchrun joins the group torchrun made instead.
    """

    # Ranks on this node: a whole number, or "auto" (one per visible GPU; 1 on a CPU machine).
    nproc_per_node: Any = 1
    nnodes: int = 1  # machines in the job; each runs the same command
    rdzv_backend: str = "c10d"  # c10d (torchrun's default) | static
    rdzv_endpoint: str = ""  # host:port every node reaches; "" on one node: a free local port
    rdzv_id: str = "gitml-train"  # the job's name at the rendezvous: the same on every node
    node_rank: int = 0  # this machine's place, read by the static rendezvous only
    backend: DistBackend = DistBackend.auto
    max_restarts: int = 0  # the launcher restarts the whole group this often after a rank fails


class StreamMode(Enum):
    """``trainer.stream.mode``: whether the trainer reads the training rows a row group at a time."""

    auto = "auto"  # stream when the training features exceed trainer.stream.max_memory_mb
    always = "always"
    never = "never"


@dataclass
class StreamConfig:
    """``trainer.stream``: training on data larger than memory (docs/training.md, "Streaming").

    Streamed, each epoch reads ``features/train.parquet`` row group by row group, in an
    order shuffled per epoch, ``shuffle_row_groups`` groups at a time whose rows are shuffled
    together; validation reads ``features/val.parquet`` the same way. Memory holds that
    buffer, not the split. The torch families stream; scikit-learn estimators cannot.
    """

    mode: StreamMode = StreamMode.auto
    # auto streams when rows x columns x 4 bytes of features/train.parquet (its footer) exceed this.
    max_memory_mb: int = 2048
    shuffle_row_groups: int = 4  # row groups whose rows are shuffled together (data.chunk_rows rows each)


@dataclass
class TrainerConfig:
    device: str = "auto"
    precision: Precision = Precision.fp32
    epochs: int = 30
    batch_size: int = 256
    seed: int = 42
    deterministic: bool = True
    num_threads: Optional[int] = None
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: bool = True
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)


# ---------------------------------------------------------------------------- gate


@dataclass
class ThresholdRule:
    """An absolute bound on one metric of ``reports/metrics.json``.

    ``metric`` is a name under ``split`` (``roc_auc``, ``per_class.1.recall``). With
    ``slice`` (a ``data.slices`` column, or ``"*"`` for all of them) the bound must hold
    in every group of that column.
    """

    metric: str = MISSING
    min: Optional[float] = None
    max: Optional[float] = None
    slice: Optional[str] = None
    split: str = "test"


class ChampionMode(Enum):
    not_worse = "not_worse"  # may be worse by at most the tolerance
    better = "better"  # must beat the champion by more than the tolerance


@dataclass
class ChampionRule:
    """Compare with the version assigned to ``gate.champion_stage``, re-scored on today's test split."""

    enabled: bool = True
    # auto: roc_auc for classification, r2 for regression (scale-free: the tolerance means
    # the same on any label); or any metric of gitml.gate.stats.METRICS.
    metric: str = "auto"
    higher_is_better: Optional[bool] = None  # null: the metric's own direction
    mode: ChampionMode = ChampionMode.not_worse
    abs_tolerance: float = 0.01
    rel_tolerance: float = 0.0


class SignificanceTest(Enum):
    bootstrap = "bootstrap"  # paired bootstrap of the champion metric difference
    mcnemar = "mcnemar"  # exact/continuity-corrected McNemar on per-row correctness


@dataclass
class SignificanceRule:
    enabled: bool = True
    test: SignificanceTest = SignificanceTest.bootstrap
    alpha: float = 0.05
    n_resamples: int = 1000
    seed: int = 0


@dataclass
class BaselineRule:
    """Beat a dummy model (the training split's class prior, or mean label for regression) on
    the test split by a margin.

    ``min_skill`` is the share of the way from the dummy's score to a perfect score the
    candidate must cover: 0.1 on ROC AUC (dummy 0.5) asks for at least 0.55; on RMSE, at
    most 0.9 of the dummy's.
    """

    enabled: bool = True
    metric: str = "auto"  # auto: roc_auc for classification, rmse for regression; or any metric evaluate writes
    min_skill: float = 0.1


@dataclass
class BudgetRule:
    # An absolute single-row p95 depends on the machine and on what else runs on it: opt in.
    max_latency_p95_ms: Optional[float] = None  # single-row predict, preprocessing included
    # The challenger's p95 over the champion's, both measured in this run, requests interleaved:
    # opt in too, a change of model family (a NumPy MLP to scikit-learn) alone can double it.
    max_latency_ratio: Optional[float] = None
    max_bundle_mb: Optional[float] = 200.0
    latency_samples: int = 200


@dataclass
class GateConfig:
    champion_stage: str = "prod"
    baseline: BaselineRule = field(default_factory=BaselineRule)
    thresholds: list[ThresholdRule] = field(default_factory=list)
    champion: ChampionRule = field(default_factory=ChampionRule)
    significance: SignificanceRule = field(default_factory=SignificanceRule)
    budgets: BudgetRule = field(default_factory=BudgetRule)


# ------------------------------------------------------------ package and registry


@dataclass
class PackageConfig:
    reference_rows: int = 1000  # rows of the drift reference sample shipped in the bundle
    reference_split: str = "train"
    # Rows whose predictions are the prediction-drift reference: held out, so they look like
    # production's. A model's answers on its own training rows are surer than on new rows (an
    # HGB flagged 600 rows from the same distribution as drifted against them).
    prediction_reference_splits: list[str] = field(default_factory=lambda: ["val", "test"])
    intended_use: str = "Tabular classification or regression as trained by this repository's pipeline."
    limitations: str = "Valid only for inputs that satisfy the bundle's signature."


@dataclass
class RegistryConfig:
    model: str = "model"  # artifact name (artifacts.yaml, GTO tags model@v1.2.0, model#prod#3)
    stages: list[str] = field(default_factory=lambda: ["staging", "prod"])
    remote: str = "origin"
    # Stages whose assignment tags are signed (git's SSH signing): promote signs them with
    # `git tag -s` (the promoter sets gpg.format=ssh and user.signingkey); fetch --stage and
    # serve --stage refuse one that no key in allowed_signers signed. Empty: no signing.
    signed_stages: list[str] = field(default_factory=list)
    # git's gpg.ssh.allowedSignersFile ("principal key-type key" lines), a path inside the
    # repository, reviewed like code.
    allowed_signers: str = ".github/allowed_signers"

    def unknown_stage(self, stage: str) -> str | None:
        """Why ``stage`` is refused (it is not one of ``stages``), or None when it is one."""
        if stage in self.stages:
            return None
        return f"'{stage}' is not a stage of this registry; stages: {', '.join(self.stages)} <registry.stages>."


# ------------------------------------------------------------------ serve and drift


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8080
    workers: int = 1
    max_batch_rows: int = 10_000  # larger batches get 413
    max_body_bytes: int = 10_000_000
    log_dir: str = "logs"  # request log (requests/) and feedback log (feedback/) root
    log_flush_rows: int = 20_000  # buffered rows before a Parquet flush
    log_flush_seconds: float = 5.0  # ... or this long, whichever comes first
    follow_interval_seconds: float = 2.0  # how often --follow polls its deployment source
    # Bounds on the work one request or connection can cost (docs/serve.md "Limits").
    max_decompressed_bytes: int = 50_000_000  # a compressed Arrow stream may expand to this; more gets 413
    header_timeout_seconds: float = 10.0  # request line + headers must arrive within this, or the connection closes
    body_timeout_seconds: float = 30.0  # the body must arrive within this after the headers, or 408 and close
    keep_alive_seconds: int = 5  # an idle keep-alive connection is closed after this (uvicorn timeout_keep_alive)
    max_connections: int = 1000  # per worker; requests beyond it get 503 (uvicorn limit_concurrency)
    # POST /feedback (docs/serve.md "Feedback"): labels only for recent requests of this process.
    feedback_window_requests: int = 100_000  # request ids (and row counts) each process remembers for labels
    feedback_max_pending_rows: int = 200_000  # unwritten labels buffered at most; past it /feedback answers 503
    feedback_token_env: str = "GITML_FEEDBACK_TOKEN"  # env var holding the bearer token; unset or "" -> open
    # Several models in one server (docs/serve.md "Several models"; gitml serve --bundle NAME=DIR ...).
    default_model: str = ""  # the model /invocations and /feedback answer without X-Gitml-Model; "" -> the first
    lazy_load: bool = False  # load a model on its first request instead of at start
    max_loaded_models: int = 0  # unload the least recently used beyond this many; 0 -> no bound


class DetectorKind(Enum):
    ks = "ks"  # per-feature Kolmogorov-Smirnov with multiple-testing correction
    tabular = "tabular"  # KS for numeric + chi-squared for categorical columns
    mmd = "mmd"  # maximum mean discrepancy, PyTorch backend, subsampled
    classifier = "classifier"  # learned domain classifier


class Correction(Enum):
    bonferroni = "bonferroni"
    fdr = "fdr"


@dataclass
class CbpeConfig:
    """``drift.cbpe``: performance estimated from the logged probabilities before labels arrive (monitor/cbpe.py)."""

    enabled: bool = True  # classification only; regression is not estimated
    metric: str = "accuracy"  # shown per chunk; every gated metric CBPE can estimate is judged too
    calibration: str = "isotonic"  # isotonic (fitted on the bundle's labelled held-out rows) | none
    chunk_rows: int = 500  # the window is shown in chunks of this many rows, oldest first
    min_labelled: int = 100  # fewer labelled rows to fit on: probabilities used uncalibrated


@dataclass
class DriftConfig:
    detector: DetectorKind = DetectorKind.tabular
    p_val: float = 0.05
    correction: Correction = Correction.bonferroni
    window_rows: Optional[int] = 5000  # last N logged rows ...
    window_hours: Optional[float] = None  # ... or the last H hours (both: the smaller window)
    min_rows: int = 200  # fewer rows than this is an error (exit 2), not a verdict
    max_rows: int = 2000  # subsample cap for MMD and the classifier detector (cost ~ n^2)
    predictions: bool = True  # also test drift of the predicted probabilities
    top_features: int = 6  # distributions plotted for the most drifted features
    # a feature with more missing (where the signature forbids it) or infinite values than this
    # share of the window stops the check (exit 2) instead of reaching a verdict
    max_invalid_share: float = 0.05
    seed: int = 0
    cbpe: CbpeConfig = field(default_factory=CbpeConfig)
    history_rows: int = 500  # drift runs kept in the report folder's history.csv (oldest dropped)


# ------------------------------------------------------------------------ alerts

# What can notify a webhook (gitml/alerts.py documents each event's details).
ALERT_EVENTS = ("drift", "canary", "gate_failed", "promotion")


@dataclass
class WebhookConfig:
    """``alerts.webhooks.<i>``: one receiver; secrets come from the environment, never from here."""

    url: str = ""  # https://..., or http:// to a loopback host (tests); no credentials, query or fragment
    url_env: str = ""  # ... or the env var holding the URL (Slack's incoming-webhook URLs carry their secret)
    format: str = "json"  # json | slack
    token_env: str = "GITML_ALERT_TOKEN"  # env var of the bearer token (unset or "": no Authorization header)
    events: list[str] = field(default_factory=lambda: list(ALERT_EVENTS))
    timeout_seconds: float = 5.0  # per attempt
    retries: int = 2  # more attempts on a 5xx, 429, timeout or refused connection


@dataclass
class AlertsConfig:
    webhooks: list[WebhookConfig] = field(default_factory=list)


# ------------------------------------------------------------------------ canary


@dataclass
class CanaryConfig:
    """``canary``: how ``gitml canary check`` judges a canary against the stable version (gitml/delivery/)."""

    window_hours: float = 24.0  # logged rows of the last H hours are compared
    window_rows: int = 100_000  # ... at most the last N of them
    min_rows: int = 200  # fewer logged rows for either version: wait
    min_labels: int = 50  # fewer labelled rows for either version: labelled metrics are not compared
    metric: str = "auto"  # labelled metric compared: auto (accuracy; rmse for regression) or a gate metric
    alpha: float = 0.05  # significance of the two-sample bootstrap and the drift test
    resamples: int = 1000  # bootstrap resamples
    seed: int = 0
    max_metric_drop: float = 0.0  # a significantly worse canary by more than this: rollback (metric units)
    max_prediction_psi: float = 0.2  # a significant prediction drift with a larger PSI: rollback
    max_latency_ratio: float = 1.5  # canary mean predict time over stable's (with --metrics-url): rollback
    hard_metric_drop: float = 0.1  # hard limits: past one, apply_rollback applies the rollback directly
    hard_prediction_psi: float = 1.0
    hard_latency_ratio: float = 3.0
    max_error_rate_increase: float = 0.01  # canary's failed-prediction share minus stable's (with --metrics-url)
    hard_error_rate_increase: float = 0.05
    apply_rollback: bool = False  # true: past a hard limit, also write the target's traffic.json


# -------------------------------------------------------------------------- root


@dataclass
class Config:
    data: DataConfig = MISSING
    model: Any = MISSING
    trainer: TrainerConfig = MISSING
    gate: GateConfig = field(default_factory=GateConfig)
    package: PackageConfig = field(default_factory=PackageConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)  # webhooks notified of events (gitml/alerts.py)
    paths: PathsConfig = field(default_factory=PathsConfig)  # gitml.config.paths: the project layout
    canary: CanaryConfig = field(default_factory=CanaryConfig)  # gitml canary check (gitml/delivery/)


_registered: list[bool] = []  # once per process: storing converts every schema again (~40 ms)


def register_configs() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    if _registered:
        return
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    for family, schema in MODEL_SCHEMAS.items():
        store.store(group="model", name=f"base_{family}", node=schema)
    _registered.append(True)
