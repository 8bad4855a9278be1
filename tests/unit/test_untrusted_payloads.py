"""Loading runs no code: planted payloads in every slot of a bundle are refused untouched.

Each skops payload is first shown to be live (skops, told to trust its one function,
creates the marker), then gitml is shown to refuse it with a clear message while the
marker never appears. Bundles come from tests/tiny_bundles.py (real ``assemble``); an
attacker who can write the bundle can also rewrite its manifest, so each tampered bundle
gets a fresh, valid manifest: the check under test is the loader's, not the hashes'.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from gitml.config.schema import SklearnConfig, TrainerConfig
from gitml.errors import BundleError, GitmlError, ModelLoadError, UnsafeTargetError
from gitml.models import build_model, load_model
from gitml.models.sklearn import TRUSTED_TYPES
from gitml.package.bundle import load_bundle
from gitml.package.manifest import write_manifest
from gitml.utils.targets import (
    ALLOWED_TARGETS,
    SKLEARN_ESTIMATORS,
    TORCH_OPTIMIZERS,
    TORCH_SCHEDULERS,
)
from tests.tiny_bundles import rows, tiny_bundle

ROOT = Path(__file__).resolve().parents[2]
# Functions that run code when called with a string: reachable through skops'
# ConstructorFromReduceNode, which calls the named object with the stored arguments.
RUNSTRING = "numpy.testing._private.utils.runstring"
RUN_SCRIPT = "sklearn.utils._testing.assert_run_python_script_without_output"


class Payload:
    """Unpickling this runs a command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def touch_code(marker: Path) -> str:
    return f"import pathlib; pathlib.Path({str(marker)!r}).touch()"


def calling_skops(function: str, marker: Path) -> bytes:
    """A fitted LogisticRegression's skops file whose ``C`` is the result of calling ``function``.

    The call's arguments are ``(code, {})`` for runstring, ``(code,)`` for the script runner.
    """
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X = rows(60).to_numpy()
    data = sio.dumps(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)))
    args: tuple = (touch_code(marker), {}) if function == RUNSTRING else (touch_code(marker),)
    arg_schema = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(args))).read("schema.json"))
    for key in ("protocol", "_skops_version"):
        arg_schema.pop(key)
    module, _, name = function.rpartition(".")
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    schema = json.loads(source.read("schema.json"))
    schema["content"]["content"]["C"] = {"__class__": name, "__module__": module,
                                         "__loader__": "ConstructorFromReduceNode",
                                         "content": arg_schema, "__id__": 1}
    with zipfile.ZipFile(out, "w") as target:
        for item in source.namelist():
            target.writestr(item, json.dumps(schema) if item == "schema.json" else source.read(item))
    return out.getvalue()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("tiny")
    return {"sklearn": tiny_bundle(work / "sklearn"), "torch_mlp": tiny_bundle(work / "torch", family="torch_mlp")}


@pytest.fixture
def bundle_copy(bundles, tmp_path):
    def copy(family: str) -> Path:
        return Path(shutil.copytree(bundles[family], tmp_path / family))
    return copy


def replant(bundle: Path, name: str, data: bytes) -> Path:
    """Put ``data`` in slot ``name`` and rewrite the manifest, as an attacker with write access would."""
    (bundle / name).write_bytes(data)
    (bundle / "manifest.json").unlink()
    write_manifest(bundle)
    return bundle


@pytest.mark.parametrize("function", [RUNSTRING, RUN_SCRIPT])
def test_skops_payload_calling_a_function_is_live_but_refused_unrun(function, bundle_copy, tmp_path):
    import skops.io as sio

    probe = tmp_path / "probe"
    sio.loads(calling_skops(function, probe), trusted=[function])
    assert probe.exists(), "the planted payload must be live for this test to mean anything"

    marker = tmp_path / "pwned"
    bundle = replant(bundle_copy("sklearn"), "model/model.skops", calling_skops(function, marker))
    with pytest.raises(ModelLoadError, match=rf"outside gitml's trusted set \['{function}'\].*model.trusted_types"):
        load_bundle(bundle)
    with pytest.raises(ModelLoadError, match="outside gitml's trusted set"):
        load_model(bundle / "model")
    # The bundle's own claim in model.json does not widen what the loader trusts.
    info = json.loads((bundle / "model/model.json").read_text())
    replant(bundle, "model/model.json", json.dumps({**info, "skops_types": [function]}).encode())
    with pytest.raises(ModelLoadError, match="outside gitml's trusted set"):
        load_bundle(bundle)
    assert not marker.exists()


@pytest.mark.parametrize(("family", "slot", "error", "match"), [
    ("sklearn", "model/model.skops", ModelLoadError, "not a skops file"),
    ("torch_mlp", "model/model.safetensors", ModelLoadError, "not a valid safetensors file"),
    ("sklearn", "model/model.json", ModelLoadError, "model.json': not valid JSON"),
    ("sklearn", "model/preprocessor.json", BundleError, "preprocessor.json' is not a gitml preprocessor"),
    ("sklearn", "signature.json", BundleError, "signature.json is not valid JSON"),
    ("sklearn", "metadata.json", BundleError, "metadata.json is not valid JSON"),
    ("sklearn", "reference.parquet", BundleError, "reference.parquet is not a Parquet file"),
])
def test_pickle_in_any_slot_is_refused_before_it_is_touched(family, slot, error, match, bundle_copy, tmp_path):
    marker = tmp_path / "pwned"
    bundle = replant(bundle_copy(family), slot, pickle.dumps(Payload(marker)))
    with pytest.raises(error, match=match):
        load_bundle(bundle)
    assert not marker.exists()


def test_bundle_load_reads_reference_from_the_verified_bytes(bundle_copy):
    bundle = bundle_copy("sklearn")
    loaded = load_bundle(bundle)
    expected = loaded.reference()
    (bundle / "reference.parquet").unlink()  # a later change on disk does not reach a loaded bundle
    assert loaded.reference().equals(expected)
    assert len(expected) == 300


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_trusted_types_are_the_types_the_supported_estimators_write():
    """Dump a fitted instance of every supported estimator (classifiers and regressors): skops
    reports exactly TRUSTED_TYPES."""
    import skops.io as sio

    X = rows(120).to_numpy()
    y = np.digitize(X[:, 0], [-0.5, 0.5])  # three classes
    options = {"MLP": [{"max_iter": 20}, {"max_iter": 20, "solver": "sgd"}],
               "KNeighbors": [{"algorithm": "kd_tree"}, {"algorithm": "ball_tree"}],
               "RandomForest": [{"n_estimators": 3}], "ExtraTrees": [{"n_estimators": 3}],
               "GradientBoosting": [{"n_estimators": 3}], "HistGradientBoosting": [{"max_iter": 3}]}
    options = {f"{name}{kind}": value for name, value in options.items() for kind in ("Classifier", "Regressor")}
    found = set()
    for target in SKLEARN_ESTIMATORS:
        module, _, name = target.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        for kwargs in options.get(name, [{}]):
            found |= set(sio.get_untrusted_types(data=sio.dumps(cls(**kwargs).fit(X, y))))
    assert found == TRUSTED_TYPES
    for name in TRUSTED_TYPES:  # classes only: never a function that a file could call
        module, _, attr = name.rpartition(".")
        assert inspect.isclass(getattr(importlib.import_module(module), attr)), name


def test_every_target_in_conf_is_in_the_registry_and_is_a_class():
    targets = set()
    for file in (ROOT / "conf/model").glob("*.yaml"):
        for section in yaml.safe_load(file.read_text()).values():
            if isinstance(section, dict) and "_target_" in section:
                targets.add(section["_target_"])
    assert targets and targets <= ALLOWED_TARGETS
    for target in ALLOWED_TARGETS:
        module, _, name = target.rpartition(".")
        assert inspect.isclass(getattr(importlib.import_module(module), name)), target
    assert "torch.optim.AdamW" in TORCH_OPTIMIZERS and "torch.optim.lr_scheduler.StepLR" in TORCH_SCHEDULERS


@pytest.mark.parametrize("target", [RUN_SCRIPT, "sklearn.utils._testing.assert_run_python_script",
                                    "torch.nn.init.uniform_", "gitml.api.train"])
def test_target_inside_a_trusted_package_is_refused_before_import(target, tmp_path):
    import sys

    marker = tmp_path / "pwned"
    cfg = SklearnConfig(estimator={"_target_": target, "_args_": [touch_code(marker)]})
    module = target.rpartition(".")[0]
    was_imported = module in sys.modules
    with pytest.raises(UnsafeTargetError, match=rf"'{target}' from 'model.estimator'.*'model.allowed_targets'"):
        build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(rows(20).to_numpy(), np.arange(20) % 2)
    assert not marker.exists()
    assert was_imported or module not in sys.modules  # the check is on the string: nothing imported


def test_target_listed_in_config_by_exact_name_is_allowed():
    X, y = rows(60).to_numpy(), np.arange(60) % 2
    name = "sklearn.linear_model.SGDClassifier"
    estimator = {"_target_": name, "loss": "log_loss", "max_iter": 5, "tol": None}
    with pytest.raises(UnsafeTargetError, match=name):
        build_model(SklearnConfig(estimator=estimator), TrainerConfig(), classes=[0, 1]).fit(X, y)
    model = build_model(SklearnConfig(estimator=estimator, allowed_targets=[name]), TrainerConfig(), classes=[0, 1])
    assert model.fit(X, y).predict_proba(X).shape == (60, 2)


def test_estimator_writing_an_untrusted_type_needs_it_listed_by_exact_name(tmp_path):
    """Outside the fixed set: refused at save (train) unless listed, and loads only with the same name."""
    X, y = rows(60).to_numpy(), np.arange(60) % 2
    extra = "sklearn.metrics._dist_metrics.ManhattanDistance64"
    estimator = {"_target_": "sklearn.neighbors.KNeighborsClassifier", "metric": "manhattan"}
    with pytest.raises(ModelLoadError, match=rf"outside gitml's trusted set \['{extra}'\].*'model.trusted_types'"):
        build_model(SklearnConfig(estimator=estimator), TrainerConfig(), classes=[0, 1]).fit(X, y).save(tmp_path / "a")
    assert not (tmp_path / "a/model.skops").exists()

    cfg = SklearnConfig(estimator=estimator, trusted_types=[extra])
    build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(X, y).save(tmp_path / "b")
    assert extra in json.loads((tmp_path / "b/model.json").read_text())["skops_types"]
    with pytest.raises(ModelLoadError, match=extra):
        load_model(tmp_path / "b")  # the file's own record is not a reason to trust it
    assert load_model(tmp_path / "b", trusted_types=[extra]).predict_proba(X).shape == (60, 2)


def test_a_function_listed_as_trusted_type_is_refused_at_save(tmp_path):
    X, y = rows(60).to_numpy(), np.arange(60) % 2
    estimator = {"_target_": "sklearn.neighbors.KNeighborsClassifier", "algorithm": "brute",
                 "weights": np.asarray}  # a callable stored in the file: skops reports numpy.asarray
    cfg = SklearnConfig(estimator=estimator, trusted_types=["numpy.asarray"])
    with pytest.raises(GitmlError, match=r"'model.trusted_types' lists 'numpy.asarray', which is not a class"):
        build_model(cfg, TrainerConfig(), classes=[0, 1]).fit(X, y).save(tmp_path / "f")
    assert not (tmp_path / "f/model.skops").exists()


@pytest.mark.parametrize(("override", "match"), [
    ("model.trusted_types=[sklearn.*]", r"'model.trusted_types': each entry must be an exact dotted name.*'sklearn.\*'"),
    ("model.allowed_targets=[sklearn.]", r"'model.allowed_targets': each entry must be an exact dotted name"),
    ("model.allowed_targets=[sklearn.svm.SVC,sklearn.svm.SVC]", r"'model.allowed_targets': lists a name twice"),
])
def test_config_lists_of_exact_names_are_validated(override, match):
    from gitml.config.compose import compose
    from gitml.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        compose(ROOT / "conf", ["model=logreg", override])


def test_manifest_entries_cannot_reach_outside_the_bundle_or_make_it_read_a_planted_giant(bundle_copy, tmp_path):
    import hashlib

    bundle = bundle_copy("sklearn")
    secret = tmp_path / "outside.txt"
    secret.write_text("not part of any bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["../outside.txt"] = {"sha256": hashlib.sha256(secret.read_bytes()).hexdigest(),
                                           "bytes": secret.stat().st_size}
    manifest["self_sha256"] = hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with open(bundle / "MODEL_CARD.md", "ab") as card:  # grown past its recorded size: refused by size
        card.truncate(1 << 30)
    with pytest.raises(BundleError) as refused:
        load_bundle(bundle)
    assert "../outside.txt is missing" in str(refused.value)
    assert "MODEL_CARD.md does not match its size" in str(refused.value)
