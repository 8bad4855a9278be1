"""Splits are deterministic, stratified and disjoint; preprocessing is fitted on train only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gitml.config.schema import Encoding, PreprocessConfig, Scaling, SplitConfig, SyntheticConfig
from gitml.data.contract import infer_contract
from gitml.data.preprocess import Preprocessor
from gitml.data.sources import generate_synthetic
from gitml.data.split import split_frame
from gitml.errors import GitmlError


@pytest.fixture
def frame() -> pd.DataFrame:
    data = generate_synthetic(SyntheticConfig(n_rows=2000, class_weights=[0.8, 0.2], seed=3), "target")
    return data.assign(row_id=np.arange(len(data)))


def test_split_is_deterministic_disjoint_and_stratified(frame):
    cfg = SplitConfig(test_size=0.2, val_size=0.25, stratify=True, seed=1)
    first, second = split_frame(frame, "target", cfg), split_frame(frame, "target", cfg)
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(first[name], second[name])
    ids = [set(first[n]["row_id"]) for n in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(map(len, ids)) == len(frame)
    overall = frame["target"].mean()
    for name in ("train", "val", "test"):
        assert abs(first[name]["target"].mean() - overall) < 0.01
    assert len(first["test"]) == 400


def test_other_seed_gives_other_split(frame):
    a = split_frame(frame, "target", SplitConfig(seed=1))["test"]["row_id"]
    b = split_frame(frame, "target", SplitConfig(seed=2))["test"]["row_id"]
    assert set(a) != set(b)


def test_stratify_refuses_a_class_too_small_to_split(frame):
    tiny = pd.concat([frame[frame.target == 0].head(50), frame[frame.target == 1].head(2)])
    with pytest.raises(GitmlError, match="stratify"):
        split_frame(tiny, "target", SplitConfig())


def test_a_regression_label_is_stratified_on_its_quintiles(frame):
    rng = np.random.default_rng(4)
    skewed = frame.assign(minutes=rng.lognormal(3, 0.8, len(frame)))  # a long right tail
    splits = split_frame(skewed, "minutes", SplitConfig(test_size=0.2, val_size=0.25, seed=1), regression=True)
    assert sum(map(len, splits.values())) == len(frame) and list(splits["test"].columns) == list(skewed.columns)
    edges = skewed["minutes"].quantile([0.2, 0.4, 0.6, 0.8]).to_numpy()
    for part in splits.values():  # every split holds each fifth of the range in its share, to the row
        counts = np.bincount(np.searchsorted(edges, part["minutes"]), minlength=5)
        assert counts.max() - counts.min() <= 1, counts
    with pytest.raises(GitmlError, match=r"quintiles of 'minutes'.*stratify=false"):
        split_frame(skewed.head(12), "minutes", SplitConfig(), regression=True)
    assert sum(map(len, split_frame(skewed.head(12), "minutes", SplitConfig(stratify=False), regression=True).values())) == 12


def test_preprocessing_uses_train_statistics_only(frame):
    splits = split_frame(frame.drop(columns="row_id"), "target", SplitConfig(seed=0))
    contract = infer_contract(frame.drop(columns="row_id"), "target")
    prep = Preprocessor.fit(splits["train"], contract, PreprocessConfig())
    train_x = prep.transform(splits["train"])
    assert np.allclose(train_x[:, : len(prep.numeric)].mean(axis=0), 0.0, atol=1e-5)
    assert prep.center["num_0"] == pytest.approx(splits["train"]["num_0"].mean())
    assert prep.center["num_0"] != pytest.approx(frame["num_0"].mean(), abs=1e-9)


def test_onehot_unknown_level_is_all_zero_and_ordinal_is_minus_one(frame):
    contract = infer_contract(frame.drop(columns="row_id"), "target")
    row = frame.drop(columns="row_id").head(1).assign(cat_0="zzz")
    onehot = Preprocessor.fit(frame, contract, PreprocessConfig())
    names = onehot.feature_names()
    cat0 = [i for i, n in enumerate(names) if n.startswith("cat_0=")]
    assert onehot.transform(row)[0, cat0].sum() == 0
    ordinal = Preprocessor.fit(frame, contract, PreprocessConfig(Scaling.none, Encoding.ordinal))
    assert ordinal.transform(row)[0, ordinal.feature_names().index("cat_0")] == -1


def test_preprocessor_round_trips_through_json(frame, tmp_path):
    contract = infer_contract(frame.drop(columns="row_id"), "target")
    prep = Preprocessor.fit(frame, contract, PreprocessConfig(scaling=Scaling.minmax))
    prep.save(tmp_path / "p.json")
    again = Preprocessor.load(tmp_path / "p.json")
    np.testing.assert_array_equal(prep.transform(frame), again.transform(frame))
    assert list(again.encode_labels(pd.Series([1, 0, "1"]))) == [1, 0, 1]
    with pytest.raises(GitmlError, match="known classes"):
        again.encode_labels(pd.Series([7]))


@pytest.mark.parametrize("encoding", [Encoding.onehot, Encoding.ordinal])
def test_transform_imputes_scales_and_encodes_like_the_formula(frame, encoding):
    """Missing numbers take the train median, then every number is scaled; any column order."""
    contract = infer_contract(frame.drop(columns="row_id"), "target")
    prep = Preprocessor.fit(frame, contract, PreprocessConfig(scaling=Scaling.standard, categorical=encoding))
    rows = frame.head(50).drop(columns=["row_id", "target"]).copy()
    rows.loc[::7, prep.numeric[0]] = np.nan
    got = prep.transform(rows.iloc[:, ::-1])  # columns in another order than the signature
    assert got.dtype == np.float32 and got.shape == (50, len(prep.feature_names()))
    for j, name in enumerate(prep.numeric):
        expected = (rows[name].fillna(prep.fill[name]) - prep.center[name]) / prep.scale[name]
        np.testing.assert_allclose(got[:, j], expected.to_numpy(), rtol=1e-6)
    names = prep.feature_names()
    for name in prep.categorical:
        levels = prep.levels[name]
        if encoding is Encoding.onehot:
            block = got[:, [names.index(f"{name}={level}") for level in levels]]
            assert (block.sum(axis=1) == 1).all()
            assert [levels[i] for i in block.argmax(axis=1)] == rows[name].tolist()
        else:
            assert [levels[int(i)] for i in got[:, names.index(name)]] == rows[name].tolist()
    only_numeric = Preprocessor(prep.numeric, [], "target", prep.classes, fill=prep.fill, center=prep.center,
                                scale=prep.scale)
    np.testing.assert_array_equal(only_numeric.transform(rows[prep.numeric]), got[:, :len(prep.numeric)])
