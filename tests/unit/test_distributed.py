"""trainer.distributed: config rules, who launches and who joins, device and backend choice, the
launcher's settings and failure message, and the per-rank loss that keeps gradients equal to
one process's. Runs with several real processes are tests/integration/test_distributed_train.py."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from gitml.config.compose import compose, to_plain
from gitml.config.params import validate_config
from gitml.config.rules_distributed import distributed_problems
from gitml.config.schema import DistBackend, DistributedConfig, TrainerConfig
from gitml.errors import ConfigError, DeviceError, DistributedError
from gitml.models import FitReport
from gitml.stages import train as train_stage
from gitml.train import distributed
from gitml.train.checkpoint import TrainState
from gitml.train.distributed import Rank, backend_for, launch_settings, local_ranks, rank_device
from gitml.train.steps import Run, batch_spans

ROOT = Path(__file__).resolve().parents[2]


def trainer(**dist) -> TrainerConfig:
    return TrainerConfig(distributed=DistributedConfig(**dist))


def keys(cfg: TrainerConfig) -> list[str]:
    return [key for key, _ in distributed_problems(cfg)]


# ------------------------------------------------------------------------------ config


def test_the_defaults_and_every_trainer_preset_are_valid():
    assert distributed_problems(TrainerConfig()) == []
    for preset in ("default", "cpu", "gpu"):
        cfg = validate_config(to_plain(compose(ROOT / "conf", [f"trainer={preset}"])), source="conf/config.yaml")
        assert distributed_problems(cfg.trainer) == [], preset
    gpu = validate_config(to_plain(compose(ROOT / "conf", ["trainer=gpu"])), source="conf/config.yaml")
    assert gpu.trainer.distributed.nproc_per_node == "auto" and gpu.trainer.distributed.backend is DistBackend.auto


def test_every_bad_key_is_named_at_once():
    bad = replace(trainer(nproc_per_node=0, nnodes=3, rdzv_backend="etcd", rdzv_id="my job", node_rank=5,
                          max_restarts=-1), device="cpu")
    bad.distributed.backend = DistBackend.nccl
    assert keys(bad) == ["trainer.distributed.nproc_per_node", "trainer.distributed.max_restarts",
                         "trainer.distributed.rdzv_backend", "trainer.distributed.rdzv_endpoint",
                         "trainer.distributed.node_rank", "trainer.distributed.rdzv_id",
                         "trainer.distributed.backend"]
    assert keys(trainer(nproc_per_node="four")) == ["trainer.distributed.nproc_per_node"]
    assert keys(trainer(nproc_per_node=True)) == ["trainer.distributed.nproc_per_node"]


def test_rendezvous_cuda_index_and_batch_rules():
    assert keys(trainer(nnodes=2, rdzv_endpoint="node0.example:29400")) == []
    assert keys(trainer(rdzv_endpoint="node 0:29400")) == ["trainer.distributed.rdzv_endpoint"]
    assert keys(trainer(rdzv_backend="static", rdzv_endpoint="node0")) == ["trainer.distributed.rdzv_endpoint"]
    assert keys(trainer(rdzv_backend="static", rdzv_endpoint="10.0.0.1:29400", nnodes=2, node_rank=1)) == []
    assert keys(replace(trainer(nproc_per_node=2), device="cuda:1")) == ["trainer.device"]
    assert keys(replace(trainer(nproc_per_node=1), device="cuda:1")) == []
    four_by_two = trainer(nproc_per_node=4, nnodes=2, rdzv_endpoint="node0:29400")
    assert keys(replace(four_by_two, batch_size=8)) == ["trainer.batch_size"]
    assert keys(replace(four_by_two, batch_size=16)) == []


def test_a_composed_mistake_names_the_key_and_the_file():
    with pytest.raises(ConfigError) as info:
        compose(ROOT / "conf", ["trainer.distributed.nnodes=2", "trainer.distributed.max_restarts=-2"])
    message = str(info.value)
    assert "conf/config.yaml with overrides trainer.distributed.nnodes=2" in message
    assert "'trainer.distributed.rdzv_endpoint': 2 nodes need an endpoint" in message
    assert "'trainer.distributed.max_restarts': must be at least 0" in message


# ---------------------------------------------------------- ranks, devices, backends


def test_auto_is_one_rank_per_gpu_and_one_process_on_cpu():
    auto = DistributedConfig(nproc_per_node="auto")
    assert local_ranks(auto, "auto", cuda_devices=0) == 1
    assert local_ranks(auto, "auto", cuda_devices=8) == 8
    assert local_ranks(auto, "cuda", cuda_devices=4) == 4
    assert local_ranks(auto, "cpu", cuda_devices=4) == 1  # the trainer was told the CPU
    assert local_ranks(DistributedConfig(nproc_per_node=3), "cpu", cuda_devices=0) == 3


def test_backend_auto_is_nccl_on_cuda_and_gloo_elsewhere():
    assert backend_for(DistBackend.auto, "cuda") == "nccl"
    assert backend_for(DistBackend.auto, "cpu") == "gloo"
    assert backend_for(DistBackend.gloo, "cuda") == "gloo"
    with pytest.raises(DeviceError, match="nccl runs on CUDA only"):
        backend_for(DistBackend.nccl, "cpu")


def test_each_rank_takes_the_gpu_of_its_local_rank():
    assert rank_device("auto", 3, cuda_devices=4) == "cuda:3"
    assert rank_device("auto", 3, cuda_devices=0) == "cpu"
    assert rank_device("cuda", 1, cuda_devices=2) == "cuda:1"
    assert rank_device("cpu", 1, cuda_devices=2) == "cpu"
    with pytest.raises(DeviceError, match="local rank 2, but this machine has 2 CUDA"):
        rank_device("cuda", 2, cuda_devices=2)


def test_torchrun_ranks_are_recognised_by_their_environment():
    assert distributed.launched_by_torchrun({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert not distributed.launched_by_torchrun({"RANK": "1", "WORLD_SIZE": "2"})
    assert not distributed.launched_by_torchrun({})


def test_join_refuses_a_batch_smaller_than_two_rows_per_rank():
    env = {"RANK": "0", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}
    with pytest.raises(DistributedError, match=r"'trainer\.batch_size' is 6, under 2 rows for each of 4 ranks"):
        distributed.join(replace(TrainerConfig(), batch_size=6), env)


# ------------------------------------------------------------------------ launching


def test_one_machine_gets_a_private_loopback_rendezvous():
    settings = launch_settings(DistributedConfig(nproc_per_node=2), 2)
    assert settings["rdzv_backend"] == "c10d" and settings["rdzv_endpoint"] == "127.0.0.1:0"
    assert settings["local_addr"] == "127.0.0.1" and settings["run_id"].startswith("gitml-train-")
    assert settings["run_id"] != launch_settings(DistributedConfig(nproc_per_node=2), 2)["run_id"]
    assert (settings["min_nodes"], settings["max_nodes"], settings["nproc_per_node"]) == (1, 1, 2)
    assert settings["max_restarts"] == 0 and settings["start_method"] == "spawn"


def test_several_machines_meet_at_the_named_endpoint_under_the_shared_id():
    dist = DistributedConfig(nproc_per_node=8, nnodes=4, rdzv_endpoint="node0:29400", rdzv_id="churn-42")
    settings = launch_settings(dist, 8)
    assert (settings["rdzv_endpoint"], settings["run_id"], settings["min_nodes"]) == ("node0:29400", "churn-42", 4)
    assert "local_addr" not in settings and "rdzv_configs" not in settings
    static = launch_settings(replace(dist, rdzv_backend="static", node_rank=2), 8)
    assert static["rdzv_configs"] == {"rank": 2}


def test_the_launch_settings_are_what_torchs_launch_config_takes():
    from torch.distributed.launcher.api import LaunchConfig

    config = LaunchConfig(**launch_settings(DistributedConfig(nproc_per_node=2), 2))
    assert config.nproc_per_node == 2 and config.rdzv_configs["timeout"] == 900


def test_a_failed_rank_is_told_with_its_signal_and_what_it_means(tmp_path):
    killed = ProcessFailure(local_rank=1, pid=4242, exitcode=-9, error_file=str(tmp_path / "none.json"))
    message = distributed.failure_message({1: killed}, restarts=0)
    assert message.startswith("Distributed training failed: rank 1 (pid 4242) was killed by signal SIGKILL.")
    assert "The launcher stopped every rank" in message
    retried = distributed.failure_message({1: killed}, restarts=3)
    assert "after 3 restart(s) <trainer.distributed.max_restarts=3>" in retried


def test_scikit_learn_fits_in_one_process_and_says_the_keys_are_ignored(caplog, monkeypatch):
    for name in distributed.RANK_ENV:
        monkeypatch.delenv(name, raising=False)
    raw = to_plain(compose(ROOT / "conf", ["model=logreg", "trainer.distributed.nproc_per_node=4"]))
    cfg = validate_config(raw, source="conf/config.yaml")
    with caplog.at_level(logging.INFO):
        assert train_stage._ranks_to_launch(cfg) == 0
    assert "sklearn fits in one process: trainer.distributed is ignored" in caplog.text
    torch_cfg = validate_config(to_plain(compose(ROOT / "conf", ["trainer.distributed.nproc_per_node=4"])),
                                source="conf/config.yaml")
    assert train_stage._ranks_to_launch(torch_cfg) == 4
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert train_stage._ranks_to_launch(torch_cfg) == 0  # torchrun started us: join, never relaunch


# ------------------------------------------------------------- the per-rank step


def test_batches_leave_every_rank_two_rows():
    assert batch_spans(10, 4) == [(0, 4), (4, 8), (8, 10)]  # one process: only a lone last row joins
    assert batch_spans(9, 4) == [(0, 4), (4, 9)]
    assert batch_spans(9, 4, world=1) == [(0, 4), (4, 9)]
    assert batch_spans(11, 4, world=2) == [(0, 4), (4, 11)]  # 3 rows would leave a rank one
    assert batch_spans(12, 4, world=2) == [(0, 4), (4, 8), (8, 12)]


@pytest.mark.parametrize(("regression", "weighted"), [(False, False), (False, True), (True, False)])
def test_ranks_average_to_the_one_process_gradient(regression, weighted):
    """What each rank's loss (its rows, the global batch's denominator, times world) gives
    DDP to average is the gradient of the global batch's mean loss, for uneven shares too."""
    torch.manual_seed(0)
    X = torch.randn(7, 3)
    y = torch.randn(7) if regression else torch.randint(0, 3, (7,))
    net = torch.nn.Linear(3, 1 if regression else 3)
    run = Run(net=net, model=net, device=torch.device("cpu"), amp_dtype=None, train=(X, y), val=None,
              optimizer=None, scheduler=None, scaler=None, state=TrainState("x"), result=FitReport(),
              monitor="val_loss", regression=regression,
              weight=torch.tensor([0.5, 2.0, 1.0]) if weighted else None)

    def gradient(loss):
        net.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    whole = gradient(run.loss(net(X), y))
    world = 3
    shares = [gradient(run.loss(net(X[r::world]), y[r::world], run.denominator(y)) * world) for r in range(world)]
    assert torch.allclose(torch.stack(shares).mean(0), whole, atol=1e-6)


def test_a_rank_that_is_not_zero_writes_nothing():
    assert Rank(rank=0, world=2, local_rank=0, backend="gloo").writes
    assert not Rank(rank=1, world=2, local_rank=1, backend="gloo").writes
