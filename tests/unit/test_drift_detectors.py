"""The alibi-detect wrappers: DriftResult contents, thresholds, encoding and the detector cache."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gitml.config.schema import Correction, DetectorKind, DriftConfig
from gitml.monitor import cache
from gitml.monitor.detectors import (
    DriftResult,
    feature_thresholds,
    fit_detector,
    fit_prediction_detector,
    prediction_outputs,
)
from gitml.monitor.encoding import FeatureEncoding
from gitml.package.signature import Signature
from tests.drift_helpers import synthetic_pool

SIGNATURE = Signature.from_dict({
    "inputs": [*({"name": f"num_{i}", "dtype": "float"} for i in range(8)),
               *({"name": f"cat_{i}", "dtype": "category", "categories": ["a", "b", "c", "d"]} for i in range(2))],
    "outputs": {"label": "target", "classes": [0, 1]},
})


@pytest.fixture(scope="module")
def frames():
    """Reference 1000 rows; current 600 rows unshifted and the same rows shifted by 1 std on 2 columns."""
    pool = synthetic_pool(1600)
    moved = synthetic_pool(1600, shift=1.0, shift_features=2)
    return pool.iloc[:1000], pool.iloc[1000:], moved.iloc[1000:]


@pytest.mark.parametrize("kind", ["ks", "tabular"])
def test_univariate_result_names_the_shifted_features_sorted_by_p_value(frames, kind):
    reference, same, moved = frames
    detector = fit_detector(kind, reference, SIGNATURE, DriftConfig())
    result = detector.test(moved)
    assert isinstance(result, DriftResult)
    assert result.detector == kind and result.is_drift
    assert sorted(result.drifted_features) == ["num_0", "num_1"]
    p_values = [f.p_value for f in result.features]
    assert p_values == sorted(p_values) and len(p_values) == 10
    assert result.threshold == pytest.approx(0.05 / 10)
    assert (result.n_reference, result.n_current) == (1000, 600)
    tests = {f.name: f.test for f in result.features}
    assert tests["cat_0"] == ("chi2" if kind == "tabular" else "ks") and tests["num_3"] == "ks"
    assert not detector.test(same).is_drift
    json.dumps(result.to_dict())  # plain JSON, no numpy scalars


def test_fdr_thresholds_agree_with_alibis_decision():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.uniform(0, 0.05, size=6) ** rng.uniform(0.5, 3)
        from alibi_detect.utils.statstest import fdr

        is_drift, alibi_threshold = fdr(p, q_val=0.05)
        cutoffs, reported = feature_thresholds(p, 0.05, "fdr", alibi_threshold)
        drifted = p < cutoffs
        assert bool(drifted.any()) == bool(is_drift)
        if is_drift:  # Benjamini-Hochberg: exactly the k smallest p-values
            assert drifted.sum() == (p <= p[drifted].max()).sum()
        else:
            assert reported == pytest.approx(0.05 / 6)


def test_fdr_detector_reports_per_feature_cutoffs(frames):
    reference, _, moved = frames
    cfg = DriftConfig(correction=Correction.fdr)
    result = fit_detector("ks", reference, SIGNATURE, cfg).test(moved)
    assert sorted(result.drifted_features) == ["num_0", "num_1"]
    assert {f.threshold for f in result.features} == {result.threshold}


def test_encoding_codes_unknown_levels_apart_and_standardises_with_reference_stats(frames):
    reference = frames[0]
    encoding = FeatureEncoding.fit(reference, SIGNATURE)
    current = reference.iloc[:3].copy()
    current["cat_0"] = ["a", "zebra", None]
    codes = encoding.codes(current)
    assert codes[:, encoding.columns.index("cat_0")].tolist() == [0, 4, 4]
    assert encoding.decode("cat_0", np.array([0, 4])) == ["a", "(other)"]
    z = encoding.standardised(reference)
    assert z.shape == (1000, 8 + 2 * 4) and z.dtype == np.float32
    assert np.allclose(z[:, :8].mean(axis=0), 0, atol=1e-5) and np.allclose(z[:, :8].std(axis=0), 1, atol=1e-3)
    assert FeatureEncoding.from_dict(json.loads(json.dumps(encoding.to_dict()))) == encoding


def test_prediction_detector_tests_the_positive_class_of_a_binary_model():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"proba_1": rng.beta(2, 2, 800)})
    reference["proba_0"] = 1 - reference["proba_1"]
    detector = fit_prediction_detector(reference, prediction_outputs(SIGNATURE), DriftConfig())
    assert detector.columns == ["proba_1"]
    shifted = pd.DataFrame({"proba_1": rng.beta(5, 2, 400)})
    result = detector.test(shifted)
    assert result.detector == "predictions" and result.drifted_features == ["proba_1"]


@pytest.mark.parametrize("kind", [k.value for k in DetectorKind])
def test_saved_detector_loads_and_gives_the_same_result(frames, tmp_path, kind):
    reference, _, moved = frames
    cfg = DriftConfig(detector=DetectorKind(kind), max_rows=400)
    fits = []

    def fit():
        fits.append(kind)
        return fit_detector(kind, reference, SIGNATURE, cfg)

    key = cache.cache_key("bundle", kind, cfg, {"reference": "sha"})
    first, status = cache.load_or_fit(tmp_path, key, fit)
    assert status == "saved"
    second, status = cache.load_or_fit(tmp_path, key, fit)
    assert status == "loaded" and fits == [kind]  # fitted once
    files = {p.relative_to(tmp_path / key).as_posix() for p in (tmp_path / key).rglob("*") if p.is_file()}
    assert not any(f.endswith((".dill", ".pkl", ".joblib", ".pt")) for f in files)
    a, b = first.test(moved), second.test(moved)
    assert a.to_dict() == b.to_dict()
    assert a.is_drift


def test_cache_refuses_a_planted_file_and_refits(frames, tmp_path):
    reference = frames[0]
    cfg = DriftConfig()
    key = cache.cache_key("bundle", "tabular", cfg, {})
    cache.load_or_fit(tmp_path, key, lambda: fit_detector("tabular", reference, SIGNATURE, cfg))
    (tmp_path / key / "preprocess_fn.dill").write_bytes(b"\x80\x04planted")
    _, status = cache.load_or_fit(tmp_path, key, lambda: fit_detector("tabular", reference, SIGNATURE, cfg))
    assert status == "saved"  # refitted and written over
    assert not (tmp_path / key / "preprocess_fn.dill").exists()


def test_cache_key_changes_with_settings_and_reference():
    cfg = DriftConfig()
    key = cache.cache_key("b1", "tabular", cfg, {"ref": "1"})
    assert key.startswith("b1-tabular-")
    assert key == cache.cache_key("b1", "tabular", DriftConfig(), {"ref": "1"})
    assert key != cache.cache_key("b1", "tabular", DriftConfig(p_val=0.01), {"ref": "1"})
    assert key != cache.cache_key("b1", "tabular", cfg, {"ref": "2"})
    # max_rows only matters to the subsampling detectors
    assert key == cache.cache_key("b1", "tabular", DriftConfig(max_rows=10), {"ref": "1"})
    assert cache.cache_key("b1", "mmd", cfg, {}) != cache.cache_key("b1", "mmd", DriftConfig(max_rows=10), {})


def test_prediction_detector_tests_every_class_or_a_regressions_predicted_number():
    outputs = {"label": "y", "classes": ["a", "b", "c"]}
    three = Signature.from_dict({"inputs": [{"name": "x", "dtype": "float"}], "outputs": outputs})
    regression = Signature.from_dict({"inputs": [{"name": "x", "dtype": "float"}],
                                      "outputs": {"label": "y", "task": "regression"}})
    assert prediction_outputs(three) == ["proba_a", "proba_b", "proba_c"] and prediction_outputs(regression) == ["prediction"]
    rng = np.random.default_rng(1)
    detector = fit_prediction_detector(pd.DataFrame({"prediction": rng.normal(100, 10, 800)}),
                                       prediction_outputs(regression), DriftConfig())
    same, moved = (pd.DataFrame({"prediction": rng.normal(100 + shift, 10, 400)}) for shift in (0, 5))
    assert not detector.test(same).is_drift
    result = detector.test(moved)
    assert result.drifted_features == ["prediction"] and result.features[0].test == "ks"
    assert result.summary["prediction"]["current"]["mean"] == pytest.approx(105, abs=1.5)
