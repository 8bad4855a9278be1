"""CBPE (monitor/cbpe.py): the expected confusion matrix worked by hand, the ROC AUC estimate
against NannyML's published algorithm, and the estimate tracking realised accuracy on a
covariate shift whose labels arrive late, through `drift_check` (which also appends the history)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitml.config.schema import DriftConfig
from gitml.monitor.cbpe import estimate, expected_roc_auc, fit_calibrator
from gitml.monitor.check import drift_check
from gitml.package.bundle import load_bundle
from tests.drift_helpers import make_bundle, synthetic_pool, write_feedback, write_requests

TOLERANCE = 0.05  # |estimated - realised| accuracy per unlabelled chunk of CHUNK rows
CHUNK = 500


def test_expected_confusion_matrix_worked_by_hand():
    p1 = np.array([0.9, 0.8, 0.3, 0.4])
    calibrated = np.column_stack([1 - p1, p1])
    got = estimate(calibrated, ["accuracy", "precision_macro", "recall_macro", "f1_macro"], proba=calibrated)
    # class 1: TP 0.9+0.8, FP 0.1+0.2, FN 0.3+0.4; class 0: TP 0.7+0.6, FP 0.3+0.4, FN 0.1+0.2
    tp, fp, fn = np.array([1.3, 1.7]), np.array([0.7, 0.3]), np.array([0.3, 0.7])
    assert got["accuracy"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.6) / 4)
    assert got["precision_macro"] == pytest.approx(np.mean(tp / (tp + fp)))
    assert got["recall_macro"] == pytest.approx(np.mean(tp / (tp + fn)))
    assert got["f1_macro"] == pytest.approx(np.mean(2 * tp / (2 * tp + fp + fn)))


def _nannyml_estimate_roc_auc(calibrated: np.ndarray, score: np.ndarray) -> float:
    """NannyML 0.13.1's ``estimate_roc_auc`` (nannyml/performance_estimation/confidence_based/metrics.py),
    transcribed: rows ranked by the model's score, expected TP and FP by cumulative sums."""
    from sklearn.metrics import auc

    order = np.argsort(score)[::-1]
    tps = np.cumsum(calibrated[order])
    fps = 1 + np.arange(len(tps)) - tps
    tps, fps = np.round(np.r_[0, tps], 5), np.round(np.r_[0, fps], 5)
    return float(auc(fps / fps[-1], tps / tps[-1]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_estimate_equals_the_published_algorithm(seed):
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 2, size=400)
    calibrated = np.clip(score + rng.normal(0, 0.1, 400), 0, 1)  # not monotone in the score: the ranking matters
    assert expected_roc_auc(calibrated, score) == pytest.approx(_nannyml_estimate_roc_auc(calibrated, score), abs=1e-5)  # NannyML rounds its counts to 5 decimals


def overconfident_binary(n: int = 3000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that claim more than they are worth (the log-odds doubled), then harder rows (a
    covariate shift) from row n/2 on; and the labels, drawn from the true probabilities."""
    rng = np.random.default_rng(seed)
    true_p = np.r_[rng.uniform(0.02, 0.98, n // 2), rng.beta(3, 3, n - n // 2)]
    truth = (rng.random(n) < true_p).astype(int)
    claimed = 1 / (1 + np.exp(-2.0 * np.log(true_p / (1 - true_p))))
    return np.column_stack([1 - claimed, claimed]), truth


def overconfident_multiclass(n: int = 3000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Three classes: a softmax of the true logits sharpened 1.8 times; the logits shrink (harder rows) from n/2 on."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 3)) * np.r_[np.full(n // 2, 2.0), np.full(n - n // 2, 0.8)][:, None]
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = (rng.random(n)[:, None] > true.cumsum(axis=1)).sum(axis=1)
    claimed = np.exp(1.8 * logits)
    return claimed / claimed.sum(axis=1, keepdims=True), truth


# NannyML 0.13.1's CBPE on the same data (benchmarks/cbpe_nannyml.py): reference the first 1000 rows,
# chunks of 500 over all 3000; binary "f1" is the positive class's, so only multiclass f1 (macro) is compared
NANNYML = {
    ("binary", "accuracy"): [0.731817, 0.742845, 0.734842, 0.648926, 0.656691, 0.656207],
    ("binary", "roc_auc"): [0.816427, 0.827483, 0.820885, 0.715938, 0.726728, 0.72695],
    ("multiclass", "accuracy"): [0.758407, 0.755367, 0.755499, 0.562663, 0.561554, 0.561134],
    ("multiclass", "roc_auc"): [0.906619, 0.907596, 0.905758, 0.749138, 0.749357, 0.748006],
    ("multiclass", "f1_macro"): [0.758175, 0.75525, 0.755277, 0.559288, 0.560771, 0.560182],
}


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_estimates_agree_with_nannyml(kind):
    proba, truth = overconfident_binary() if kind == "binary" else overconfident_multiclass()
    calibrator = fit_calibrator(proba[:1000], truth[:1000], "isotonic")
    assert all(m is not None for m in calibrator.maps[1 if kind == "binary" else 0:])  # it needed calibrating
    calibrated = calibrator.apply(proba)
    for (name, metric), theirs in NANNYML.items():
        if name == kind:
            ours = [estimate(calibrated[i:i + CHUNK], [metric], proba=proba[i:i + CHUNK])[metric]
                    for i in range(0, len(proba), CHUNK)]
            assert ours == pytest.approx(theirs, abs=1e-5), (metric, ours)


def test_isotonic_calibration_fixes_overconfident_probabilities():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.5, 1.0, size=4000)
    truth = (rng.random(4000) < true_p).astype(int)  # predicted class 1 is right with probability true_p
    overconfident = np.clip(true_p + 0.2, 0, 1)  # the model claims 0.2 more than it is worth
    proba = np.column_stack([1 - overconfident, overconfident])
    calibrator = fit_calibrator(proba[:2000], truth[:2000], "isotonic")
    raw = estimate(proba[2000:], ["accuracy"], proba=proba[2000:])["accuracy"]
    fixed = estimate(calibrator.apply(proba[2000:]), ["accuracy"], proba=proba[2000:])["accuracy"]
    realised = truth[2000:].mean()
    assert raw - realised > 0.1 and abs(fixed - realised) < 0.02


def _shifted(pool: pd.DataFrame, confidence: np.ndarray, strength: float, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn from ``pool`` with weights exp(-strength * confidence): a covariate shift towards the
    rows the model finds hard. The selection looks at the inputs only, so P(label | inputs) is unchanged."""
    rng = np.random.default_rng(seed)
    weights = np.exp(-strength * (confidence - confidence.min()))
    picked = rng.choice(len(pool), size=n, replace=False, p=weights / weights.sum())
    return pool.iloc[picked].reset_index(drop=True)


def test_estimate_tracks_realised_accuracy_on_a_covariate_shift_with_late_labels(tmp_path):
    pool = synthetic_pool(40_000, seed=3)
    bundle = load_bundle(make_bundle(tmp_path / "bundle", pool.iloc[:2000], held_out=pool.iloc[2000:3000]))
    features = bundle.signature.features
    rest = pool.iloc[3000:].reset_index(drop=True)
    confidence = bundle.predict(rest[features]).filter(like="proba_").max(axis=1).to_numpy()
    # six chunks, the shift growing: the first two are labelled (the labels of the rest have not arrived)
    traffic = pd.concat([_shifted(rest, confidence, s, CHUNK, seed=i) for i, s in enumerate((0, 2, 6, 10, 14, 18))],
                        ignore_index=True)
    logged = write_requests(tmp_path / "logs", traffic[features], bundle.predict(traffic[features]),
                            model_version=bundle.version)
    write_feedback(tmp_path / "logs", logged.iloc[:2 * CHUNK], traffic["target"].iloc[:2 * CHUNK])
    cfg = DriftConfig(window_rows=None, history_rows=2)
    cfg.cbpe.chunk_rows = CHUNK
    for _ in range(3):  # three checks of the same window: three history rows, the file keeps the last two
        report = drift_check(bundle.path, tmp_path / "logs", cfg, tmp_path / "out")

    perf = report.performance
    # calibrated as NannyML does, on the bundle's labelled reference rows, not on the window's labels
    assert perf is not None and perf.calibration.endswith("on 1000 labelled held-out rows of the bundle")
    predicted = bundle.predict(traffic[features]).filter(like="proba_").to_numpy().argmax(axis=1)
    correct = predicted == traffic["target"].to_numpy()
    realised = [correct[i:i + CHUNK].mean() for i in range(0, len(traffic), CHUNK)]
    estimated = [c["estimated"]["accuracy"] for c in perf.chunks]
    assert [c["n_labelled"] for c in perf.chunks] == [CHUNK, CHUNK, 0, 0, 0, 0]
    assert realised[0] - realised[-1] > 0.15, realised  # the shift costs accuracy the estimate must see
    assert all(abs(e - r) < TOLERANCE for e, r in zip(estimated, realised, strict=True)), (estimated, realised)
    # the bundle's gate holds accuracy >= 0.8: an estimate below it is a retraining reason
    assert perf.estimated["accuracy"] < 0.8 and report.is_drift
    assert any(r.startswith("estimated performance: accuracy") for r in report.reasons)
    assert perf.summary().startswith(f"performance: accuracy estimated {perf.estimated['accuracy']:.4f} (CBPE on 3000 rows)")
    assert "## Performance: estimated (CBPE) and realised" in (tmp_path / "out/drift.md").read_text()

    history = (tmp_path / "out/history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history] == ["run", "2", "3"]
    assert {line.split(",")[0] for line in (tmp_path / "out/history_features.csv").read_text().splitlines()[1:]} \
        == {"2", "3"}


def test_before_any_label_arrives_the_bundle_s_held_out_labels_calibrate_the_estimate(tmp_path):
    """A model trained on noisy labels is under-confident on clean ones: its raw probabilities would
    understate accuracy by far. Calibrated on the bundle's labelled held-out rows (NannyML's reference
    period), the estimate tracks the realised accuracy of a window no label has reached."""
    from gitml.config.schema import SyntheticConfig
    from gitml.data.sources import generate_synthetic

    pool = generate_synthetic(SyntheticConfig(n_rows=12_000, class_sep=0.5, seed=5), "target")  # not separable
    noisy = pool.iloc[:3000].copy()
    flip = np.random.default_rng(0).random(len(noisy)) < 0.25
    noisy.loc[flip, "target"] = 1 - noisy.loc[flip, "target"]
    bundle = load_bundle(make_bundle(tmp_path / "bundle", noisy, held_out=pool.iloc[3000:4000]))
    features = bundle.signature.features
    traffic = pool.iloc[4000:7000].reset_index(drop=True)
    write_requests(tmp_path / "logs", traffic[features], bundle.predict(traffic[features]),
                   model_version=bundle.version)  # and no feedback: not one label yet
    predicted = bundle.predict(traffic[features]).filter(like="proba_").to_numpy().argmax(axis=1)
    correct = predicted == traffic["target"].to_numpy()
    realised = [correct[i:i + CHUNK].mean() for i in range(0, len(traffic), CHUNK)]
    found, notes = {}, {}
    for calibration, least in (("isotonic", 100), ("none", 100), ("too-few", 5000)):
        cfg = DriftConfig(window_rows=None)
        cfg.cbpe.chunk_rows, cfg.cbpe.min_labelled = CHUNK, least
        cfg.cbpe.calibration = "isotonic" if calibration == "too-few" else calibration
        report = drift_check(bundle.path, tmp_path / "logs", cfg, tmp_path / calibration)
        found[calibration], notes[calibration] = report.performance, report.notes

    perf = found["isotonic"]
    assert perf is not None and perf.n_labelled == 0 and perf.realised is None
    assert perf.calibration == "isotonic on 1000 labelled held-out rows of the bundle"
    estimated = [c["estimated"]["accuracy"] for c in perf.chunks]
    assert all(abs(e - r) < TOLERANCE for e, r in zip(estimated, realised, strict=True)), (estimated, realised)
    assert "uncalibrated probabilities: the bundle holds 1000 held-out labels and the window 0; " \
        "drift.cbpe.min_labelled=5000 needed" in " ".join(notes["too-few"])
    raw = found["none"]
    assert raw is not None and min(r - c["estimated"]["accuracy"] for c, r in zip(raw.chunks, realised, strict=True)) > 0.1


def test_cbpe_settings_are_checked_naming_each_key():
    from gitml.config.rules import drift_problems
    from gitml.config.schema import CbpeConfig

    cfg = DriftConfig(history_rows=0, cbpe=CbpeConfig(metric="log_loss", calibration="platt", chunk_rows=0))
    keys = [key for key, _ in drift_problems(cfg)]
    assert keys == ["drift.history_rows", "drift.cbpe.metric", "drift.cbpe.calibration", "drift.cbpe.chunk_rows"]
