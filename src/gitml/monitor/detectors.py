"""alibi-detect drift detectors behind our own small types.

:func:`fit_detector` builds the detector ``drift.detector`` names on the bundle's reference
sample; :meth:`Detector.test` runs it on a window of traffic and turns alibi-detect's
``predict()`` dictionary into a :class:`DriftResult`. Nothing outside this module reads
alibi-detect's keys. alibi-detect is imported inside the functions that need it, one
detector module at a time, ks and tabular without torch (:mod:`gitml.monitor.alibi_modules`):
its package imports take seconds.

| detector | alibi-detect | input |
| --- | --- | --- |
| ``ks`` | ``KSDrift`` | numeric values, categorical codes; one KS test per feature |
| ``tabular`` | ``TabularDrift`` | KS for numeric, chi-squared for categorical columns |
| ``mmd`` | ``MMDDrift(backend="pytorch")`` | z-scores + one-hot, both sides subsampled to ``max_rows`` |
| ``classifier`` | ``ClassifierDrift(backend="sklearn")`` | same as mmd; a gradient-boosted domain classifier |
| predictions | ``KSDrift`` | the model's predicted probabilities (the positive class when binary), or a regression's predicted number |
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitml.config.schema import DetectorKind, DriftConfig
from gitml.monitor.alibi_modules import alibi_cd
from gitml.monitor.encoding import FeatureEncoding
from gitml.package.logschema import PREDICTION

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from gitml.package.signature import Signature

UNIVARIATE = ("ks", "tabular", "predictions")
PREDICTIONS = "predictions"
MMD_PERMUTATIONS = 100
CLASSIFIER_FOLDS = 5


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's univariate test: its p-value against the corrected cutoff."""

    name: str
    test: str  # "ks" | "chi2"
    p_value: float
    distance: float  # KS statistic or chi-squared statistic
    threshold: float  # the cutoff this p-value was compared with (after correction)
    drifted: bool


@dataclass
class DriftResult:
    """What a detector concluded on one window; built from alibi-detect's ``predict()``."""

    detector: str
    is_drift: bool
    threshold: float  # univariate: corrected per-feature cutoff; multivariate: p_val
    n_reference: int
    n_current: int
    features: list[FeatureDrift] = field(default_factory=list)  # most drifted first
    p_value: float | None = None  # multivariate detectors: the one test's p-value
    distance: float | None = None  # multivariate: MMD^2 or the classifier's KS statistic
    distance_threshold: float | None = None  # mmd: MMD^2 above which it drifts
    diagnostic: bool = False  # True when `features` only explain a multivariate verdict
    # predictions: each tested output's distribution on both sides (see `summarise`)
    summary: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @property
    def p_value_text(self) -> str:
        """The multivariate p-value for people: a permutation test's 0 reads "< 1/permutations"."""
        if self.p_value is None:
            return "n/a"
        if self.p_value == 0 and self.detector == "mmd":
            return f"< {1 / MMD_PERMUTATIONS:g}"
        return f"{self.p_value:.3g}"

    @property
    def p_values(self) -> dict[str, float]:
        return {f.name: f.p_value for f in self.features}

    @property
    def distances(self) -> dict[str, float]:
        return {f.name: f.distance for f in self.features}

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features, smallest p-value first."""
        return [f.name for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector, "is_drift": self.is_drift, "threshold": self.threshold,
            "p_value": self.p_value, "distance": self.distance,
            "distance_threshold": self.distance_threshold,
            "n_reference": self.n_reference, "n_current": self.n_current,
            "drifted_features": self.drifted_features, "features_diagnostic": self.diagnostic,
            "features": [vars(f) for f in self.features], "summary": self.summary,
        }


@dataclass
class Detector:
    """A fitted alibi-detect detector and how to encode a window for it."""

    kind: str  # a DetectorKind value or "predictions"
    columns: list[str]  # names of what is tested, in the detector's order
    tests: list[str]  # the univariate test per column ("ks" | "chi2"); empty if multivariate
    alibi: Any
    encoding: FeatureEncoding | None = None  # None for predictions (plain float columns)
    p_val: float = 0.05
    correction: str = "bonferroni"
    max_rows: int | None = None  # subsample cap of the current window (mmd, classifier)
    seed: int = 0
    n_reference: int = 0
    x_ref: np.ndarray | None = None  # the encoded reference, as the detector holds it

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        if self.encoding is None:
            return frame[self.columns].to_numpy(dtype="float64")
        if self.kind in UNIVARIATE:
            return self.encoding.codes(frame)
        return self.encoding.standardised(frame)

    def test(self, current: pd.DataFrame) -> DriftResult:
        """Run the detector on ``current`` (a frame with the tested columns)."""
        x = self.encode(current)
        if self.kind in UNIVARIATE:
            result = self._univariate(self.alibi.predict(x, drift_type="batch"), len(x))
            if self.kind == PREDICTIONS and self.x_ref is not None:
                result.summary = {name: {"reference": summarise(self.x_ref[:, j]), "current": summarise(x[:, j])}
                                  for j, name in enumerate(self.columns)}
            return result
        x = subsample(x, self.max_rows, self.seed + 1)
        with _seeded_torch(self.seed):
            data = self.alibi.predict(x, return_p_val=True, return_distance=True)["data"]
        dist_thr = data.get("distance_threshold")
        return DriftResult(
            detector=self.kind, is_drift=bool(data["is_drift"]), threshold=float(data["threshold"]),
            n_reference=self.n_reference, n_current=len(x), p_value=float(data["p_val"]),
            distance=float(data["distance"]),
            distance_threshold=None if dist_thr is None else float(dist_thr),
        )

    def _univariate(self, prediction: dict[str, Any], n_current: int) -> DriftResult:
        import numpy as np

        data = prediction["data"]
        p_values = np.asarray(data["p_val"], dtype="float64")
        distances = np.asarray(data["distance"], dtype="float64")
        cutoffs, threshold = feature_thresholds(p_values, self.p_val, self.correction, data["threshold"])
        order = np.argsort(p_values, kind="stable")
        features = [
            FeatureDrift(self.columns[i], self.tests[i], float(p_values[i]), float(distances[i]),
                         float(cutoffs[i]), bool(p_values[i] < cutoffs[i]))
            for i in order
        ]
        return DriftResult(detector=self.kind, is_drift=bool(data["is_drift"]), threshold=threshold,
                           n_reference=self.n_reference, n_current=n_current, features=features)


def feature_thresholds(p_values: np.ndarray, p_val: float, correction: str,
                       alibi_threshold: Any) -> tuple[np.ndarray, float]:
    """Per-feature cutoffs and the one reported cutoff, matching alibi-detect's decision.

    Bonferroni: ``p_val / n`` for every feature. FDR (Benjamini-Hochberg): the features up
    to the largest rank ``k`` with ``p_(k) < p_val * k / n`` drift, so every feature's
    cutoff is that ``p_val * k / n``; with no such rank, each feature keeps its own
    critical value ``p_val * rank / n`` and the reported cutoff is the smallest, ``p_val / n``.
    """
    import numpy as np

    n = max(len(p_values), 1)
    if correction == "bonferroni" or n == 1:
        cutoff = p_val / n
        return np.full(len(p_values), cutoff), cutoff
    if np.ndim(alibi_threshold) == 0:  # some feature passed: one step-up cutoff for all
        cutoff = float(alibi_threshold)
        return np.full(len(p_values), cutoff), cutoff
    ranks = np.empty(len(p_values), dtype="int64")
    ranks[np.argsort(p_values, kind="stable")] = np.arange(1, len(p_values) + 1)
    return p_val * ranks / n, p_val / n


# ------------------------------------------------------------------------ fitting


def fit_detector(kind: DetectorKind | str, reference: pd.DataFrame, signature: Signature,
                 cfg: DriftConfig) -> Detector:
    """Fit the ``kind`` detector on ``reference`` (raw feature columns, as in the bundle).

    Example:
        >>> detector = fit_detector("tabular", bundle.reference(), bundle.signature, DriftConfig())
        >>> detector.test(window).drifted_features
        ['num_0', 'num_1']
    """
    kind = DetectorKind(kind).value if not isinstance(kind, DetectorKind) else kind.value
    encoding = FeatureEncoding.fit(reference, signature)
    detector = Detector(kind=kind, columns=encoding.columns, tests=[], alibi=None, encoding=encoding,
                        p_val=cfg.p_val, correction=cfg.correction.value, seed=cfg.seed)
    if kind in UNIVARIATE:
        detector.tests = encoding.tests if kind == "tabular" else ["ks"] * len(encoding.columns)
        x_ref = encoding.codes(reference)
    else:
        detector.max_rows = cfg.max_rows
        x_ref = subsample(encoding.standardised(reference), cfg.max_rows, cfg.seed)
    detector.n_reference, detector.x_ref = len(x_ref), x_ref
    detector.alibi = build_alibi(detector, x_ref)
    return detector


def prediction_outputs(signature: Signature) -> list[str]:
    """The model outputs prediction drift tests: a regression model's predicted number
    (``prediction``), each class's probability, or a binary model's positive class only (the
    other column is its complement and would test the same thing twice)."""
    if signature.regression:
        return [PREDICTION]
    names = signature.proba_columns
    return names[1:] if len(names) == 2 else names


def fit_prediction_detector(reference_predictions: pd.DataFrame, columns: list[str],
                            cfg: DriftConfig) -> Detector:
    """One KS test per output column (:func:`prediction_outputs`) of ``reference_predictions``:
    a continuous output, whether a probability or a regression's predicted number.

    Example:
        >>> detector = fit_prediction_detector(bundle.reference_predictions(),
        ...                                    prediction_outputs(bundle.signature), DriftConfig())
        >>> detector.test(window).drifted_features
        ['prediction']
    """
    detector = Detector(kind=PREDICTIONS, columns=columns, tests=["ks"] * len(columns), alibi=None,
                        p_val=cfg.p_val, correction=cfg.correction.value, seed=cfg.seed)
    x_ref = detector.encode(reference_predictions)
    detector.n_reference, detector.x_ref = len(x_ref), x_ref
    detector.alibi = build_alibi(detector, x_ref)
    return detector


def build_alibi(detector: Detector, x_ref: np.ndarray) -> Any:
    """The alibi-detect object for ``detector`` on the encoded reference ``x_ref``."""
    import warnings

    common = {"p_val": detector.p_val}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alibi warns about its own defaults on every build
        if detector.kind in ("ks", PREDICTIONS):
            return alibi_cd("ks").KSDrift(x_ref, correction=detector.correction, **common)
        if detector.kind == "tabular":
            categorical = {i: None for i, t in enumerate(detector.tests) if t == "chi2"}
            return alibi_cd("tabular").TabularDrift(x_ref, correction=detector.correction,
                                                    categories_per_feature=categorical, **common)
        if detector.kind == "mmd":
            # CPU on purpose: the scheduled check runs on CPU CI runners, and one fixed device
            # keeps results and cached detectors alike everywhere (device=None would let
            # alibi-detect pick CUDA when present; not exercised here).
            return alibi_cd("mmd").MMDDrift(x_ref, backend="pytorch", n_permutations=MMD_PERMUTATIONS,
                                            device="cpu", **common)
        from sklearn.ensemble import HistGradientBoostingClassifier

        # Small and quick; alibi-detect refits it on every test (out-of-fold predictions).
        model = HistGradientBoostingClassifier(max_iter=50, max_depth=3, random_state=detector.seed)
        return alibi_cd("classifier").ClassifierDrift(x_ref, model, backend="sklearn", n_folds=CLASSIFIER_FOLDS,
                                                      train_size=None, seed=detector.seed, **common)


def summarise(values: np.ndarray) -> dict[str, float]:
    """Rows, mean, standard deviation and the 5/50/95% quantiles of one tested output: what
    the report shows next to the KS statistic, so a moved prediction reads in its own units."""
    import numpy as np

    values = np.asarray(values, dtype="float64")[np.isfinite(values)]
    if not len(values):
        return {"n": 0}
    q05, q50, q95 = np.quantile(values, [0.05, 0.5, 0.95])
    return {"n": len(values), "mean": float(values.mean()), "std": float(values.std()),
            "p05": float(q05), "median": float(q50), "p95": float(q95)}


def subsample(x: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """At most ``max_rows`` rows of ``x``, drawn without replacement with ``seed``."""
    import numpy as np

    if max_rows is None or len(x) <= max_rows:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), size=max_rows, replace=False))]


@contextlib.contextmanager
def _seeded_torch(seed: int) -> Iterator[None]:
    # MMD's permutations draw from torch's global generator: seed it, then restore it.
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
