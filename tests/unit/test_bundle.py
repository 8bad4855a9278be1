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
