"""Write request and feedback logs exactly as docs/logs.md describes, for the drift tests."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from gitml.config.schema import SyntheticConfig
from gitml.data.sources import generate_synthetic

START = pd.Timestamp("2026-11-29 08:00", tz="UTC")


def _partition(log_dir: Path, kind: str, frame: pd.DataFrame, rows_per_file: int) -> None:
    seq = 0
    for start in range(0, len(frame), rows_per_file):
        chunk = frame.iloc[start:start + rows_per_file]
        for hour, part in chunk.groupby(chunk["ts"].dt.floor("h"), sort=True):
            folder = log_dir / kind / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
            folder.mkdir(parents=True, exist_ok=True)
            stamp = int(part["ts"].max().value)  # ns since the epoch, like the server's flush time
            part.reset_index(drop=True).to_parquet(folder / f"part-{stamp}-{os.getpid()}-{seq}.parquet",
                                                   index=False)
            seq += 1


def write_requests(
    log_dir: Path, features: pd.DataFrame, predictions: pd.DataFrame | None = None, *,
    start: pd.Timestamp = START, every_seconds: float = 1.0, model_version: str = "v1",
    request_rows: int = 5, rows_per_file: int = 250, prefix: str = "req",
) -> pd.DataFrame:
    """Log ``features`` (and the model's ``predictions``) one row every ``every_seconds``."""
    n = len(features)
    frame = pd.DataFrame({
        "request_id": [f"{prefix}-{i // request_rows}" for i in range(n)],
        "row": np.arange(n, dtype="int64") % request_rows,
        "ts": (start + pd.to_timedelta(np.arange(n) * every_seconds, unit="s")).astype("datetime64[us, UTC]"),
        "model_version": model_version,
    })
    frame = pd.concat([frame, features.reset_index(drop=True)], axis=1)
    if predictions is not None:
        predictions = predictions.reset_index(drop=True)
        frame["prediction"] = predictions["prediction"].astype(str)
        for column in predictions.columns:
            if column.startswith("proba_"):
                frame[column] = predictions[column].astype("float64")
    _partition(Path(log_dir), "requests", frame, rows_per_file)
    return frame


def serve_log(
    log_dir: Path, bundle, features: pd.DataFrame, *, start: pd.Timestamp = START,
    every_seconds: float = 1.0, request_rows: int = 20, rename: dict[str, str] | None = None,
    answered: pd.DataFrame | None = None,
) -> None:
    """Log ``features`` through the server's own writer (serve/requestlog.py), as `gitml serve` does.

    One request per ``request_rows`` rows, ``every_seconds`` apart; ids like the server's (each
    call is a new server process).
    The probabilities are the bundle's on ``answered`` (default: ``features``): rows a fault
    made invalid would not pass the bundle's validation. ``rename`` logs columns under other
    names, as a server whose signature renamed them would.
    """
    from gitml.package.logschema import REQUESTS
    from gitml.serve.requestlog import PartitionedLog, RequestChunk

    if bundle.regression:
        return _serve_regression_log(log_dir, bundle, features, start=start, every_seconds=every_seconds,
                                     request_rows=request_rows)
    rename = rename or {}
    inputs = tuple((rename.get(c.name, c.name), c.dtype, c.nullable) for c in bundle.signature.inputs)
    schema = (inputs, tuple(str(c) for c in bundle.classes))
    names = bundle.signature.features
    proba = bundle.predict_proba((features if answered is None else answered)[names])
    frame = features[names].rename(columns=rename).reset_index(drop=True)
    log = PartitionedLog(log_dir, REQUESTS, flush_rows=10**9, flush_seconds=3600)
    prefix = secrets.token_hex(8)  # one per server process, as serve/state.py draws it
    for n, first in enumerate(range(0, len(frame), request_rows)):
        rows = slice(first, first + request_rows)
        ts_us = int((start + pd.Timedelta(seconds=n * every_seconds)).value // 1000)
        log.append(RequestChunk(f"{prefix}{n:016x}", ts_us, bundle.version, schema,
                                frame.iloc[rows].reset_index(drop=True), proba[rows].argmax(axis=1), proba[rows]))
    assert log.flush(), "the server's writer failed"


def _served(bundle):
    from gitml.serve.model import ServedModel

    return ServedModel(bundle, bundle.version, str(bundle.path), bundle.signature.compiled)


def _serve_regression_log(log_dir: Path, bundle, features: pd.DataFrame, *, start: pd.Timestamp,
                          every_seconds: float, request_rows: int) -> None:
    """:func:`serve_log` for a regression bundle: the served model's own predict and log record."""
    from gitml.package.logschema import REQUESTS
    from gitml.serve.requestlog import PartitionedLog

    served = _served(bundle)
    frame = features[bundle.signature.features].reset_index(drop=True)
    log = PartitionedLog(log_dir, REQUESTS, flush_rows=10**9, flush_seconds=3600)
    prefix = secrets.token_hex(8)
    for n, first in enumerate(range(0, len(frame), request_rows)):
        rows = frame.iloc[first:first + request_rows].reset_index(drop=True)
        output = served.predict(rows)
        ts_us = int((start + pd.Timedelta(seconds=n * every_seconds)).value // 1000)
        log.append(served.log_chunk(f"{prefix}{n:016x}", ts_us, rows, output, served.predicted(output)))
    assert log.flush(), "the server's writer failed"


def serve_feedback(log_dir: Path, bundle, requests: pd.DataFrame, labels, *, delay_seconds: float = 60.0) -> None:
    """Label the logged ``requests`` rows through the server's feedback writer, typed as the served
    model's labels (text classes, or float64 numbers for regression)."""
    from gitml.package.logschema import FEEDBACK
    from gitml.serve.requestlog import FeedbackChunk, PartitionedLog

    served = _served(bundle)
    log = PartitionedLog(log_dir, FEEDBACK, flush_rows=10**9, flush_seconds=3600)
    for (request_id, row, ts), label in zip(requests[["request_id", "row", "ts"]].itertuples(index=False), labels,
                                            strict=True):
        value = float(label) if bundle.regression else str(label)
        stamp = int((pd.Timestamp(ts) + pd.Timedelta(seconds=delay_seconds)).value // 1000)
        log.append(FeedbackChunk(stamp, [(str(request_id), int(row), value)], served.label_type))
    assert log.flush(), "the server's feedback writer failed"


def regression_pool(n_rows: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Rows for a regression bundle: five numeric features and a three-level category; the
    label ``y = 50 + 10 * x0 - 5 * x1 + 5 * (region == "north") + noise(sd 1)``. ``shift`` moves
    ``x0`` (and so the predictions) by that many standard deviations after drawing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n_rows, 5)), columns=[f"x{i}" for i in range(5)])
    frame["region"] = rng.choice(["north", "south", "west"], size=n_rows)
    frame["y"] = 50 + 10 * frame["x0"] - 5 * frame["x1"] + 5 * (frame["region"] == "north") + rng.normal(0, 1, n_rows)
    frame["x0"] += shift
    return frame


def make_regression_bundle(dest: Path, train: pd.DataFrame, test: pd.DataFrame, *, target: str = "y",
                           reference_rows: int = 800, gate: dict | None = None) -> Path:
    """A real, verified regression bundle (scikit-learn Ridge) built in a second, no DVC; its
    metadata carries metrics.json as evaluate writes it (``task``, ``test`` from ``test``'s rows)
    and ``gate`` as its params."""
    from gitml.config.schema import PreprocessConfig, SklearnConfig, TrainerConfig
    from gitml.data.contract import infer_contract
    from gitml.data.preprocess import Preprocessor
    from gitml.evaluate.metrics import regression_metrics
    from gitml.models import build_model
    from gitml.package.bundle import assemble
    from gitml.package.signature import Signature

    contract = infer_contract(train, target, range_margin=2.0)
    assert contract.task == "regression"
    prep = Preprocessor.fit(train, contract, PreprocessConfig())
    model = build_model(SklearnConfig(estimator={"_target_": "sklearn.linear_model.Ridge"}), TrainerConfig(),
                        classes=[], feature_names=prep.feature_names(), task="regression")
    model.fit(prep.transform(train), train[target].to_numpy(dtype="float64"))
    model_dir = dest.parent / f"{dest.name}-model"
    model.save(model_dir)
    prep.save(model_dir / "preprocessor.json")
    predicted = model.predict(prep.transform(test))
    metadata = {
        "name": "model", "bundle_id": f"reg{len(train)}", "version": "v1",
        "metrics": {"task": "regression", "test": regression_metrics(test[target].to_numpy(), predicted)},
        "params": {"gate": gate or {}},
    }
    reference = train.sample(n=min(reference_rows, len(train)), random_state=0)
    assemble(dest, model_dir=model_dir, signature=Signature.from_contract(contract), metadata=metadata,
             reference=reference, card="# regression test bundle\n")
    return dest


def write_feedback(log_dir: Path, requests: pd.DataFrame, labels, *, delay_seconds: float = 60.0,
                   rows_per_file: int = 250) -> pd.DataFrame:
    """Label the logged ``requests`` rows with ``labels`` (any type: logged as text)."""
    frame = pd.DataFrame({
        "request_id": requests["request_id"].to_numpy(),
        "row": requests["row"].to_numpy(dtype="int64"),
        "label": [str(v) for v in labels],
        "ts": (requests["ts"] + pd.Timedelta(seconds=delay_seconds)).astype("datetime64[us, UTC]").to_numpy(),
    })
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    _partition(Path(log_dir), "feedback", frame, rows_per_file)
    return frame


def synthetic_pool(n_rows: int, *, shift: float = 0.0, shift_features: int | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """One draw of the synthetic generator: slice disjoint rows from it for reference and current.

    The class centres come from ``seed``; the shift is applied after drawing, so the pools
    with and without shift hold the same rows, moved or not.
    """
    cfg = SyntheticConfig(n_rows=n_rows, shift=shift, shift_features=shift_features, seed=seed)
    return generate_synthetic(cfg, "target")


def make_bundle(dest: Path, train: pd.DataFrame, *, target: str = "target",
                reference_rows: int = 1000, metrics: dict | None = None, nullable: tuple[str, ...] = (),
                held_out: pd.DataFrame | None = None) -> Path:
    """A real, verified bundle (scikit-learn logistic regression) built in a second, no DVC.

    ``nullable``: columns the data contract (and so the signature) lets be missing. ``held_out``:
    rows not trained on, scored (with their labels) as package scores the test split; default: the
    reference sample of ``train``.
    """
    from gitml.config.schema import PreprocessConfig, SklearnConfig, TrainerConfig
    from gitml.data.contract import infer_contract
    from gitml.data.preprocess import Preprocessor
    from gitml.evaluate.metrics import classification_metrics
    from gitml.models import build_model
    from gitml.package.bundle import assemble
    from gitml.package.signature import Signature

    contract = infer_contract(train, target, range_margin=0.5)
    for name in nullable:
        contract.columns[name].max_null_fraction = 0.2
    prep = Preprocessor.fit(train, contract, PreprocessConfig())
    X, y = prep.transform(train), prep.encode_labels(train[target])
    model = build_model(SklearnConfig(estimator={"_target_": "sklearn.linear_model.LogisticRegression"}),
                        TrainerConfig(), classes=list(contract.classes))
    model.fit(X, y)
    model_dir = dest.parent / f"{dest.name}-model"
    model.save(model_dir)
    prep.save(model_dir / "preprocessor.json")
    test_metrics = metrics or classification_metrics(y, model.predict_proba(X), list(contract.classes))
    metadata = {
        "name": "model", "bundle_id": f"test{len(train)}", "classes": list(contract.classes),
        "metrics": {"test": test_metrics},
        "params": {"gate": {"thresholds": [{"metric": "accuracy", "min": 0.8, "max": None,
                                            "slice": None, "split": "test"}]}},
    }
    reference = train.sample(n=min(reference_rows, len(train)), random_state=0)
    assemble(dest, model_dir=model_dir, signature=Signature.from_contract(contract), metadata=metadata,
             reference=reference, card="# test bundle\n", scored=held_out)
    return dest
