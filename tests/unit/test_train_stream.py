"""trainer.stream: training on prepared features read a row group at a time, against the same data in
memory; the bounded buffer, the batches and rank shares it forms, resume, the budget and the rules."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from gitml.config.compose import compose, to_plain
from gitml.config.params import validate_config
from gitml.config.rules_stream import STREAMING_FAMILIES, stream_problems
from gitml.config.schema import (
    MODEL_SCHEMAS,
    EarlyStoppingConfig,
    StreamConfig,
    StreamMode,
    TrainerConfig,
)
from gitml.errors import ConfigError, StreamingError
from gitml.models import build_model
from gitml.models.torch_mlp import build_network
from gitml.stages.train import streamed_features
from gitml.train.batches import StreamedRows, TensorRows
from gitml.train.loop import Trainer
from gitml.train.rows import ArrayRows, FeatureFile, streaming_plan
from gitml.train.steps import batch_spans

ROOT = Path(__file__).resolve().parents[2]
GROUP_ROWS, TRAIN_ROWS, VAL_ROWS = 37, 600, 150  # 17 row groups of training rows, 5 of validation
# Streamed with a buffer of 2 row groups (74 rows) the batches draw from fewer rows than the
# 600 in memory; 8 epochs of this data end within 0.03 of the in-memory validation loss and
# accuracy (measured over trainer seeds 0-4: 0.003-0.011 loss, 0-0.013 accuracy, i.e. 0-2 of 150 rows).
TOLERANCE = 0.03


def write_features(path: Path, X: np.ndarray, y: np.ndarray, group_rows: int = GROUP_ROWS) -> Path:
    """A prepared features file as prepare writes it: float32 columns then the label, small row groups."""
    columns = {f"f{j}": pa.array(X[:, j]) for j in range(X.shape[1])}
    table = pa.table({**columns, "label": pa.array(y)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=group_rows)
    return path


@pytest.fixture
def split(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(TRAIN_ROWS + VAL_ROWS, 5)).astype("float32")
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=len(X)) > 0).astype("int64")
    X[:, 4] = np.arange(len(X))  # a row id, to follow rows through the batches (scaled below)
    train = write_features(tmp_path / "features/train.parquet", X[:TRAIN_ROWS], y[:TRAIN_ROWS])
    val = write_features(tmp_path / "features/val.parquet", X[TRAIN_ROWS:], y[TRAIN_ROWS:], group_rows=31)
    return X, y, FeatureFile.open(train, "label"), FeatureFile.open(val, "label")


def fit(cfg: TrainerConfig, train, val, checkpoint_dir=None):
    torch.manual_seed(cfg.seed)
    net = build_network(5, 2, [16], "relu", 0.1, True)
    result = Trainer(cfg, checkpoint_dir, progress=False).fit_rows(
        net, train, val, optimizer_factory=partial(torch.optim.Adam, lr=0.01), identity="run")
    return net, result


def in_memory(X, y) -> tuple[ArrayRows, ArrayRows]:
    scaled = X.copy()
    scaled[:, 4] /= len(X)
    return ArrayRows(scaled[:TRAIN_ROWS], y[:TRAIN_ROWS]), ArrayRows(scaled[TRAIN_ROWS:], y[TRAIN_ROWS:])


def scaled_files(tmp_path: Path, X, y) -> tuple[FeatureFile, FeatureFile]:
    train, val = in_memory(X, y)
    return (FeatureFile.open(write_features(tmp_path / "s/train.parquet", train.X, train.y), "label"),
            FeatureFile.open(write_features(tmp_path / "s/val.parquet", val.X, val.y, 31), "label"))


def weights(net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def strip(result) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result.history]


def test_a_buffer_over_every_row_group_trains_the_in_memory_weights(split, tmp_path):
    X, y, _, _ = split
    cfg = TrainerConfig(epochs=4, batch_size=32, early_stopping=EarlyStoppingConfig(enabled=False),
                        stream=StreamConfig(shuffle_row_groups=17))
    net_memory, memory = fit(cfg, *in_memory(X, y))
    net_stream, streamed = fit(cfg, *scaled_files(tmp_path, X, y))
    for name, value in weights(net_memory).items():
        assert torch.equal(value, net_stream.state_dict()[name]), name
    assert strip(streamed) == strip(memory)
    assert memory.peak_rows == TRAIN_ROWS and streamed.peak_rows == TRAIN_ROWS


def test_a_small_buffer_learns_as_well_holding_a_few_row_groups(split, tmp_path):
    X, y, _, _ = split
    cfg = TrainerConfig(epochs=8, batch_size=32, early_stopping=EarlyStoppingConfig(enabled=False),
                        stream=StreamConfig(shuffle_row_groups=2))
    _, memory = fit(cfg, *in_memory(X, y))
    _, streamed = fit(cfg, *scaled_files(tmp_path, X, y))
    last_memory, last_stream = memory.history[-1], streamed.history[-1]
    for key in ("val_loss", "val_accuracy"):
        assert abs(last_stream[key] - last_memory[key]) <= TOLERANCE, key
    assert last_stream["val_loss"] < streamed.history[0]["val_loss"] and last_stream["val_accuracy"] > 0.8
    # validation held its 150 rows (one 65,536-row chunk) and a row group; training two row
    # groups and the rows of a batch that straddles two windows: never the training split
    assert streamed.peak_rows == VAL_ROWS + 26 < TRAIN_ROWS


def test_each_epoch_batches_every_row_once_in_a_new_order_and_ranks_share_each_batch(split):
    _, _, train, _ = split
    stream = StreamedRows(train, torch.device("cpu"), 3)
    spans = batch_spans(train.rows, 32)
    orders = []
    for epoch in (1, 2):
        batches = list(stream.batches(7, epoch, spans, 0, 1))
        assert [len(b[0]) for b in batches] == [stop - start for start, stop in spans]
        ids = torch.cat([b[0][:, 4] for b in batches]).long()
        assert sorted(ids.tolist()) == list(range(TRAIN_ROWS))
        orders.append(ids)
    assert not torch.equal(orders[0], orders[1])
    assert 3 * GROUP_ROWS <= stream.peak_rows < 3 * GROUP_ROWS + 32  # a window and a straddling batch's rows
    assert stream.windows(7, 1) != stream.windows(7, 2) and sorted(g for window in stream.windows(7, 1) for g in window) == list(range(17))
    # two ranks: each takes every other row of the same global batches; the labels are the global batch's
    ranks = [list(stream.batches(7, 1, batch_spans(train.rows, 32, 2), me, 2)) for me in (0, 1)]
    for (X0, _, y_global), (X1, _, _), whole in zip(*ranks, stream.batches(7, 1, spans, 0, 1), strict=True):
        assert torch.equal(X0, whole[0][0::2]) and torch.equal(X1, whole[0][1::2]) and torch.equal(y_global, whole[1])


def test_streamed_validation_chunks_are_each_ranks_rows_in_order(split):
    X, y, _, val = split
    memory = TensorRows(ArrayRows(X[TRAIN_ROWS:], y[TRAIN_ROWS:]), torch.device("cpu"), False)
    stream = StreamedRows(val, torch.device("cpu"), 1)
    for me, world, chunk in ((0, 1, 40), (1, 2, 16), (2, 3, 1000)):
        got = [torch.cat(parts) for parts in zip(*stream.chunks(me, world, chunk), strict=True)]
        want = [torch.cat(parts) for parts in zip(*memory.chunks(me, world, chunk), strict=True)]
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        assert [len(c[0]) for c in stream.chunks(me, world, chunk)] == [len(c[0]) for c in memory.chunks(me, world, chunk)]
    assert stream.peak_rows < VAL_ROWS


def test_an_interrupted_streamed_run_resumes_to_the_same_losses(split, tmp_path):
    X, y, _, _ = split
    files = scaled_files(tmp_path, X, y)
    cfg = TrainerConfig(epochs=5, batch_size=32, early_stopping=EarlyStoppingConfig(enabled=False),
                        stream=StreamConfig(shuffle_row_groups=3))
    _, full = fit(cfg, *files)
    fit(replace(cfg, epochs=2), *files, checkpoint_dir=tmp_path / "ckpt")  # as if killed after epoch 2
    meta = json.loads((tmp_path / "ckpt/state.json").read_text())
    meta["train"]["complete"] = False
    (tmp_path / "ckpt/state.json").write_text(json.dumps(meta))
    _, resumed = fit(cfg, *files, checkpoint_dir=tmp_path / "ckpt")
    assert resumed.resumed_from == 2 and [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([r["val_loss"] for r in resumed.history], [r["val_loss"] for r in full.history],
                               rtol=1e-6)
    # another buffer orders the rows otherwise: its checkpoint is not resumed
    meta["train"]["complete"] = False
    (tmp_path / "ckpt/state.json").write_text(json.dumps(meta))
    _, other = fit(replace(cfg, stream=StreamConfig(shuffle_row_groups=4)), *files, checkpoint_dir=tmp_path / "ckpt")
    assert other.resumed_from == 0


def test_streamed_regression_scales_the_label_as_in_memory(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5)).astype("float32")
    y = (3 * X[:, 0] + 10).astype("float32")
    file = FeatureFile.open(write_features(tmp_path / "r.parquet", X, y, 29), "label", regression=True)
    center, scale = file.label_scaling()
    assert (center, scale) == pytest.approx(ArrayRows(X, y).label_scaling(), rel=1e-12)
    read = np.concatenate([file.scaled((center, scale)).read(g)[1] for g in range(len(file.group_rows))])
    np.testing.assert_array_equal(read, ArrayRows(X, y).scaled((center, scale)).y)


def test_auto_streams_from_the_footer_when_the_features_exceed_the_budget(tmp_path):
    X = np.zeros((40_000, 6), dtype="float32")  # 40,000 rows x 7 columns x 4 bytes = 1.07 MiB
    file = FeatureFile.open(write_features(tmp_path / "f.parquet", X, np.zeros(40_000, "int64"), 10_000), "label")
    assert (file.rows, file.n_features, file.group_rows) == (40_000, 6, (10_000,) * 4)
    assert file.memory_bytes() == 40_000 * 7 * 4
    assert streaming_plan(StreamConfig(max_memory_mb=1), file)
    assert not streaming_plan(StreamConfig(max_memory_mb=2), file)
    assert streaming_plan(StreamConfig(mode=StreamMode.always, max_memory_mb=2), file)
    assert not streaming_plan(StreamConfig(mode=StreamMode.never, max_memory_mb=1), file)


def test_a_family_that_cannot_stream_data_over_the_budget_is_told_the_key_and_the_fix(tmp_path):
    X = np.zeros((40_000, 6), dtype="float32")
    for split in ("train", "val"):
        write_features(tmp_path / f"features/{split}.parquet", X, np.zeros(40_000, "int64"), 10_000)
    over = ["data.target=label", "trainer.stream.max_memory_mb=1"]
    cfg = validate_config(to_plain(compose(ROOT / "conf", [*over, "model=logreg"])), source="conf/config.yaml")
    with pytest.raises(StreamingError, match=r"exceed trainer.stream.max_memory_mb=1, and model.family 'sklearn'") as info:
        streamed_features(cfg, tmp_path, regression=False)
    assert "trainer.stream.max_memory_mb=N" in str(info.value.hint)
    cfg = validate_config(to_plain(compose(ROOT / "conf", over)), source="conf/config.yaml")
    train, val = streamed_features(cfg, tmp_path, regression=False)
    assert (train.rows, val.rows) == (40_000, 40_000)
    cfg = validate_config(to_plain(compose(ROOT / "conf", [*over[:1], "model=logreg"])), source="conf/config.yaml")
    assert streamed_features(cfg, tmp_path, regression=False) is None  # within the default 2048 MiB


def test_stream_rules_name_every_bad_key():
    with pytest.raises(ConfigError) as info:
        compose(ROOT / "conf", ["model=hgb", "trainer.stream.mode=always", "trainer.stream.max_memory_mb=0",
                                "trainer.stream.shuffle_row_groups=0"])
    message = str(info.value)
    assert "conf/config.yaml with overrides model=hgb" in message
    for key in ("max_memory_mb': must be at least 1", "shuffle_row_groups': must be at least 1",
                "'trainer.stream.mode': 'always' streams the training rows, but model.family 'sklearn'"):
        assert key in message
    for preset in ("default", "cpu", "gpu"):
        cfg = validate_config(to_plain(compose(ROOT / "conf", [f"trainer={preset}"])), source="conf/config.yaml")
        assert cfg.trainer.stream == StreamConfig() and stream_problems(cfg) == [], preset


def test_the_streaming_families_are_the_ones_whose_models_fit_streams():
    cfg = validate_config(to_plain(compose(ROOT / "conf", [])), source="conf/config.yaml")
    streams = []
    for family, schema in MODEL_SCHEMAS.items():
        model_cfg = schema(family=family) if family != "torch_module" else schema(
            family=family, module={"_target_": "gitml.models.examples.ResidualMLP"})
        if family == "sklearn":
            model_cfg.estimator = {"_target_": "sklearn.linear_model.LogisticRegression"}
        model = build_model(model_cfg, cfg.trainer, classes=[0, 1], feature_names=["a"])
        if hasattr(model, "fit_stream"):
            streams.append(family)
    assert sorted(streams) == sorted(STREAMING_FAMILIES)
