"""The typed bundle: one loader, verified bytes, the model built only when asked for."""

from __future__ import annotations

import json

import pytest

from gitml.errors import BundleError
from gitml.package.bundle import load_bundle
from gitml.package.manifest import write_manifest
from gitml.package.signature import Signature
from gitml.utils.dvc_hash import dir_md5
from tests.tiny_bundles import FEATURES, rows, tiny_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("bundle") / "bundle", version="v7")


def test_a_bundle_loads_typed_with_one_version_and_id(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.signature.features == FEATURES and bundle.classes == [0, 1]
    assert bundle.signature.proba_columns == ["proba_0", "proba_1"]
    assert (bundle.id, bundle.version) == ("tiny-v7", "v7")
    assert bundle.model_md5 == dir_md5(bundle_dir / "model")  # what dvc.lock records for models/model
    assert list(bundle.reference_predictions().columns) == bundle.signature.proba_columns
    assert bundle.predict(rows(5))["prediction"].isin([0, 1]).all()


def test_the_metadata_only_load_builds_the_model_on_first_use_from_the_verified_bytes(bundle_dir, tmp_path):
    import shutil

    bundle = load_bundle(bundle_dir, model=False)
    assert "model" not in bundle.__dict__
    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    light = load_bundle(copy, model=False)
    shutil.rmtree(copy)  # nothing is read from the folder again
    assert light.predict_proba(rows(3)).shape == (3, 2)


def test_a_signature_round_trips_and_a_malformed_one_names_the_file(bundle_dir, tmp_path):
    import shutil

    signature = load_bundle(bundle_dir, model=False).signature
    assert Signature.from_dict(signature.to_dict()) == signature
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    data = json.loads((broken / "signature.json").read_text())
    data["inputs"][0]["dtype"] = "complex"
    (broken / "signature.json").write_text(json.dumps(data))
    write_manifest(broken)
    with pytest.raises(BundleError, match=r"signature\.json.*dtype 'complex'"):
        load_bundle(broken)


@pytest.fixture(scope="module")
def package_inputs(tmp_path_factory):
    """The package stage's inputs, small: a tiny model folder, prepared rows, contract, metrics, lock."""
    from gitml.config.compose import compose, to_plain
    from gitml.config.params import validate_config
    from gitml.data.contract import ColumnSpec, Contract
    from gitml.package.build import PackageInputs
    from tests.projects import ROOT

    work = tmp_path_factory.mktemp("inputs")
    tiny_bundle(work / "seed")  # leaves its model folder (weights + preprocessor) at work/.seed-model
    prepared = work / "prepared"
    prepared.mkdir()
    for split, seed in (("train", 0), ("val", 1), ("test", 2)):
        rows(80, seed=seed).assign(y=[0, 1] * 40).to_parquet(prepared / f"{split}.parquet", index=False)
    contract = Contract(label="y", classes=[0, 1], columns={c: ColumnSpec("float", min=-10.0, max=10.0)
                                                             for c in FEATURES})
    (work / "contract.json").write_text(json.dumps(contract.to_dict()))
    (work / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.9, "roc_auc": 0.95}}))
    (work / "summary.json").write_text(json.dumps({"rows": {"total": 80, "train": 80}}))
    (work / "dvc.lock").write_text("schema: '2.0'\nstages:\n  prepare:\n    deps:\n    - path: data/raw\n"
                                   "      md5: 0123.dir\n")
    cfg = validate_config(to_plain(compose(ROOT / "conf", ["model=logreg", "package.reference_rows=50"])),
                          source="tests")
    return cfg, PackageInputs(work / ".seed-model", prepared, work / "contract.json", work / "metrics.json",
                              work / "summary.json", work / "dvc.lock")


def test_the_prediction_reference_is_the_model_on_held_out_rows(package_inputs, tmp_path):
    """Prediction drift compares served answers with answers on rows the model never trained on:
    on its own training rows a model is surer, and new rows from the same data look drifted."""
    import pandas as pd

    from gitml.package.build import package

    cfg, inputs = package_inputs
    bundle = package(cfg, inputs, tmp_path / "bundle")
    held_out = pd.concat([pd.read_parquet(inputs.prepared_dir / f"{s}.parquet") for s in ("val", "test")])
    scored = held_out.sample(n=50, random_state=0)
    expected = bundle.predict(scored[FEATURES]).drop(columns=["prediction"]).reset_index(drop=True)
    expected["label"] = scored[bundle.signature.label].to_numpy()  # their true labels: what CBPE calibrates on
    pd.testing.assert_frame_equal(bundle.reference_predictions(), expected)
    train = pd.read_parquet(inputs.prepared_dir / "train.parquet")
    assert set(map(tuple, bundle.reference().to_numpy())) <= set(map(tuple, train[FEATURES].to_numpy()))


def test_packaging_twice_from_the_same_inputs_gives_the_same_bytes(package_inputs, tmp_path, monkeypatch):
    # What keeps `make demo` from changing dvc.lock: the bundle's DVC hash moves only with its inputs.
    from gitml.package.build import package

    cfg, inputs = package_inputs
    first = package(cfg, inputs, tmp_path / "first/bundle")
    monkeypatch.chdir(tmp_path)  # another working directory (a checkout or not) changes nothing either
    second = package(cfg, inputs, tmp_path / "second/bundle")
    assert dir_md5(first.path) == dir_md5(second.path)
    assert first.manifest_sha256 == second.manifest_sha256
    # wall-clock time and the HEAD commit are not a function of the inputs: the registry's tags hold them
    assert not {"created_at", "git"} & set(first.metadata)
    assert first.info.created_at is None and first.info.commit is None

    inputs.metrics.write_text(json.dumps({"test": {"accuracy": 0.8, "roc_auc": 0.85}}))
    try:
        third = package(cfg, inputs, tmp_path / "third/bundle")
    finally:
        inputs.metrics.write_text(json.dumps({"test": {"accuracy": 0.9, "roc_auc": 0.95}}))
    assert dir_md5(third.path) != dir_md5(first.path)  # and an input that changed does move it


def test_the_package_stage_declares_every_params_section_the_bundle_records():
    """Else a change to an undeclared section leaves the bundle in place, and the next forced
    package run writes other bytes than the ones dvc.lock records."""
    import yaml

    from gitml.package.build import BUNDLED_PARAMS
    from tests.projects import ROOT

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["package"]
    assert sorted(stage["params"]) == sorted([*BUNDLED_PARAMS, "registry.model"])  # the name metadata records
    assert "gate" not in stage["params"]  # a gate change re-judges the same bundle


@pytest.mark.parametrize("regression", [False, True])
def test_an_input_near_float32_s_largest_is_answered_by_a_scikit_learn_bundle(tmp_path, regression):
    """The signature takes values up to float32's largest; standardising one must not turn it
    into inf, which scikit-learn refuses (schemathesis found the 500 on both protocols)."""
    import numpy as np
    import pandas as pd

    bundle = load_bundle(tiny_bundle(tmp_path / "b", regression=regression))
    answer = bundle.predict(pd.DataFrame([{"x0": 0.0, "x1": 0.0, "x2": -3.1e38, "x3": -3.4e38}]))
    assert np.isfinite(answer.drop(columns=[] if regression else ["prediction"]).to_numpy(float)).all()
