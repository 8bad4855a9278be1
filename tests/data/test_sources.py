"""Data sources: built-in sets, files and the synthetic generator with its knobs."""

from __future__ import annotations

import pandas as pd
import pytest

from gitml.config.schema import SourceConfig, SourceKind, SyntheticConfig
from gitml.data.sources import generate_synthetic, load_source
from gitml.errors import DataSourceError


@pytest.mark.parametrize(("name", "rows", "classes"), [("breast_cancer", 569, 2), ("wine", 178, 3), ("iris", 150, 3)])
def test_sklearn_sets_load_with_snake_case_columns(name, rows, classes):
    frame = load_source(SourceConfig(kind=SourceKind.sklearn, name=name), "target")
    assert len(frame) == rows and frame["target"].nunique() == classes
    assert all(c == c.lower() and " " not in c for c in frame.columns)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "iris", "digits", "diabetes"])
def test_sklearn_sets_read_without_scikit_learn_equal_its_own_loader(name):
    """ingest reads the files scikit-learn ships (no import of it): same names, values, labels."""
    import numpy as np
    from sklearn import datasets

    from gitml.data.toysets import read_toy_set

    bunch = getattr(datasets, f"load_{name}")(**({"scaled": False} if name == "diabetes" else {}))
    found = read_toy_set(name)
    assert found is not None, "scikit-learn's data file was not found: ingest would import scikit-learn"
    names, data, target = found
    assert names == list(bunch.feature_names)
    assert np.array_equal(data, bunch.data) and np.array_equal(target, bunch.target)


def test_sklearn_set_whose_file_is_missing_loads_through_scikit_learn(monkeypatch):
    import gitml.data.toysets

    monkeypatch.setitem(gitml.data.toysets.FILES, "wine", ("no_such_file.csv", 1))
    frame = load_source(SourceConfig(kind=SourceKind.sklearn, name="wine"), "target")
    assert frame.shape == (178, 14) and "od280_od315_of_diluted_wines" in frame.columns


def test_unknown_sklearn_set_names_key_and_allowed():
    with pytest.raises(DataSourceError, match=r"data.source.name.*Allowed: breast_cancer"):
        load_source(SourceConfig(kind=SourceKind.sklearn, name="mnist"), "target")


def test_csv_and_parquet_sources_rename_the_label(tmp_path):
    frame = pd.DataFrame({"Monthly Fee": [1.0, 2.0], "Churned": ["yes", "no"]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    for kind, name in ((SourceKind.csv, "a.csv"), (SourceKind.parquet, "a.parquet")):
        out = load_source(SourceConfig(kind=kind, path=name, label="Churned"), "target", root=tmp_path)
        assert list(out.columns) == ["monthly_fee", "target"]
    with pytest.raises(DataSourceError, match="not found"):
        load_source(SourceConfig(kind=SourceKind.csv, path="a.csv", label="nope"), "target", root=tmp_path)
    with pytest.raises(DataSourceError, match="does not exist"):
        load_source(SourceConfig(kind=SourceKind.csv, path="b.csv"), "target", root=tmp_path)


def test_synthetic_knobs_rows_features_balance_and_seed():
    cfg = SyntheticConfig(n_rows=4000, n_numeric=5, n_categorical=3, class_weights=[0.9, 0.1], seed=1)
    frame = generate_synthetic(cfg, "y")
    assert frame.shape == (4000, 5 + 3 + 1)
    assert frame["y"].mean() == pytest.approx(0.1, abs=0.02)
    pd.testing.assert_frame_equal(frame, generate_synthetic(cfg, "y"))


def test_synthetic_shift_moves_only_the_shifted_features():
    base = generate_synthetic(SyntheticConfig(n_rows=5000, seed=2), "y")
    shifted = generate_synthetic(SyntheticConfig(n_rows=5000, seed=2, shift=1.0, shift_features=2), "y")
    for j in range(2):
        assert shifted[f"num_{j}"].mean() - base[f"num_{j}"].mean() == pytest.approx(base[f"num_{j}"].std(), rel=0.05)
    pd.testing.assert_series_equal(shifted["num_5"], base["num_5"])
    pd.testing.assert_series_equal(shifted["y"], base["y"])
