"""The trainer's parts, each alone: the weight average, the optimizers and their schedule, the
step context's update intervals, RNG capture, stop signals and the run folder."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from i2i.checkpoint import CheckpointError
from i2i.config import ConfigError, OptimConfig
from i2i.engine import rng
from i2i.engine.context import TrainingContext
from i2i.engine.ema import ModelEMA
from i2i.engine.optim import Optimizers
from i2i.engine.run_folder import RunFolder
from i2i.engine.signals import StopSignals


def test_the_weight_average_ramps_moves_toward_the_weights_and_round_trips():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = ModelEMA({"G": net}, 0.999)
    assert ema.decay_at(0) == 0.0 and ema.decay_at(10**6) == 0.999
    assert ema.decay_at(300) == pytest.approx(0.5 ** (1 / 15))  # half-life: 5 % of the steps so far
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(3.0)
    before = ema.copies["G"][0].weight.clone()
    ema.update({"G": net}, step=300)
    d = ema.decay_at(300)
    assert torch.allclose(ema.copies["G"][0].weight, d * before + (1 - d) * net[0].weight)
    assert torch.equal(ema.copies["G"][1].running_mean, net[1].running_mean)  # buffers copied, not averaged
    assert not any(p.requires_grad for p in ema.copies["G"].parameters())
    other = ModelEMA({"G": nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))}, 0.999)
    other.load_state_dict(ema.state_dict(), {"G": net}, "a checkpoint")
    assert all(torch.equal(a, b) for a,
               b in zip(other.copies["G"].state_dict().values(), ema.copies["G"].state_dict().values()))
    other.load_state_dict({}, {"G": net}, "a checkpoint without EMA")  # EMA switched on later: starts from the net
    assert torch.equal(other.copies["G"][0].weight, net[0].weight)


def test_the_learning_rate_is_a_function_of_the_step_and_a_changed_base_is_reported():
    net = nn.Linear(2, 2)
    groups = {"G": {"params": list(net.parameters()), "lr": 0.1, "interval": 3}}
    opt = Optimizers(groups, OptimConfig(), lambda t: 1.0 / (t + 1))
    assert opt.intervals == {"G": 3}
    for step in (0, 4, 9):
        opt.set_lr(step)
        assert opt.current_lrs() == {"G": 0.1 * (1.0 / (step + 1))}  # base * factor, as LambdaLR computed it
    saved = opt.state_dict()
    changed = Optimizers({"G": {"params": list(net.parameters()), "lr": 0.05}}, OptimConfig(), lambda t: 1.0)
    assert changed.load_state_dict(saved, "ckpt") == ["G 0.1 -> 0.05"]
    changed.set_lr(3)
    assert changed.current_lrs() == {"G": 0.05} and changed.intervals == {"G": 1}
    other = Optimizers({"G": {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1}}, OptimConfig(), lambda t: 1.0)
    with pytest.raises(CheckpointError, match="does not fit this run's parameters"):
        other.load_state_dict(saved, "ckpt")


def test_the_context_steps_each_optimizer_on_its_declared_interval_and_freezes_nets():
    g, d = nn.Linear(2, 1), nn.Linear(2, 1)
    opts = {"G": torch.optim.SGD(g.parameters(), lr=0.1), "D": torch.optim.SGD(d.parameters(), lr=0.1)}
    ctx = TrainingContext(nets={"G": g, "D": d}, train_modules={"G": g, "D": d}, frozen_modules={"G": g, "D": d},
                          optimizers=opts,
                          intervals={"G": 3, "D": 1}, scaler=torch.amp.GradScaler("cpu", enabled=False),
                          device_type="cpu",
                          amp_dtype=None)
    moved = []
    for step in range(6):
        ctx.begin(step)
        w = g.weight.detach().clone()
        ctx.backward_step("G", g(torch.ones(1, 2)).sum())
        moved.append(not torch.equal(w, g.weight))
        assert "G_total" in ctx.backward_losses and ctx.updates("D")
    assert moved == [False, False, True, False, False, True]
    # The D step, then a G step through the frozen D: D's gradients stay those of its own loss,
    # G's come from the G loss through D, and no requires_grad flag is toggled (pytorch#139476).
    ctx.begin(0)
    ctx.backward_step("D", d(torch.ones(1, 2)).pow(2).sum())
    d_grads = [p.grad.clone() for p in d.parameters()]
    with ctx.frozen("D") as (frozen,):
        assert frozen is d and all(p.requires_grad for p in d.parameters())
        loss = frozen(torch.cat([g(torch.ones(1, 2)), torch.ones(1, 1)], 1)).sum()
    ctx.intervals["G"] = 1
    ctx.backward_step("G", loss)
    assert all(torch.equal(p.grad, was) for p, was in zip(d.parameters(), d_grads))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_rng_capture_restores_every_generator():
    state = rng.capture()
    draws = (torch.rand(3), np.random.rand(3), random.random())
    rng.restore(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1]) and draws[2] == again[2]


def test_stop_signals_are_caught_once_then_abort_and_handlers_come_back():
    heard = []
    previous = signal.getsignal(signal.SIGUSR1)
    with StopSignals(heard.append) as signals:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert signals.received == signal.SIGUSR1 and heard == ["SIGUSR1"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR1) == previous


def test_the_run_folder_resolves_resume_keeps_history_and_cleans_its_temp_files(tmp_path):
    folder = RunFolder(tmp_path / "run")
    assert folder.resume_path(None) is None and folder.resume_path("auto") is None
    for step in (1, 2, 3):
        folder.save({"step": step}, step, keep=2)
    assert sorted(p.name for p in folder.checkpoints.glob("step_*.pt")) == ["step_00000002.pt", "step_00000003.pt"]
    assert folder.resume_path("auto") == folder.last
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        folder.resume_path(None)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        folder.resume_path(str(tmp_path / "nope.pt"))
    (folder.checkpoints / ".last.pt.123.tmp").write_bytes(b"partial")
    folder.remove_stale_temp_files()
    assert not list(folder.checkpoints.glob(".*.tmp")) and folder.last.is_file()


def test_cuda_graphs_are_refused_by_name_where_a_graph_cannot_hold_the_step(tmp_path):
    from i2i.engine import graphs
    from i2i.recipes import load_config, pipeline_class

    recipe = Path(__file__).resolve().parent.parent / "configs/cyclegan/horse2zebra.yaml"
    cfg = load_config(recipe, ["train.cuda_graphs=true", "train.amp=fp16", "optim.n_critic=2"])
    cuda = torch.device("cuda", 0)  # the rules read the device's type only: checked without one
    problems = graphs.blockers(cfg, pipeline_class("cyclegan"), device=cuda, world=2)
    assert [p.split(" ")[0] for p in problems] == ["train.amp:", "optim.n_critic:", "torchrun"]
    cfg.train.amp, cfg.optim.n_critic = "bf16", 1
    assert graphs.blockers(cfg, pipeline_class("cyclegan"), device=cuda, world=1) == []
    cpu = graphs.blockers(cfg, pipeline_class("cyclegan"), device=torch.device("cpu"), world=1)
    assert cpu == ["train.cuda_graphs needs a CUDA device (training runs on cpu); set train.cuda_graphs: false"]


def test_training_with_cuda_graphs_on_a_cpu_stops_before_anything_is_written(tmp_path, gray2color, make_config):
    from i2i.engine.trainer import Trainer

    cfg = make_config(tmp_path, gray2color, train={"steps": 1, "cuda_graphs": True, "device": "cpu"})
    with pytest.raises(ConfigError,
                       match=r"train.cuda_graphs cannot capture this run's step: train.cuda_graphs needs a CUDA "
                             r"device \(training runs on cpu\)"):
        Trainer(cfg)
    assert not (cfg.run_dir / "checkpoints").exists()


def test_capturable_optimizers_keep_the_rate_in_a_tensor_and_save_floats():
    net = nn.Linear(2, 1)
    # capturable Adam wants a device it can capture on; the rate handling is the same: checked
    # on the CPU by pretending (set_lr and state_dict never step).
    opts = Optimizers({"G": {"params": list(net.parameters()), "lr": 0.1}}, OptimConfig(), lambda t: 0.5 ** t)
    opts.capturable = True
    opts.set_lr(0)
    rate = opts.by_name["G"].param_groups[0]["lr"]
    assert isinstance(rate, torch.Tensor) and float(rate) == pytest.approx(0.1)
    opts.set_lr(2)
    assert opts.by_name["G"].param_groups[0]["lr"] is rate and float(rate) == pytest.approx(0.025)  # filled in place
    assert opts.current_lrs() == {"G": pytest.approx(0.025)}
    saved = opts.state_dict()
    assert isinstance(saved["G"]["param_groups"][0]["lr"], float)  # one checkpoint format for both
    eager = Optimizers({"G": {"params": list(net.parameters()), "lr": 0.1}}, OptimConfig(), lambda t: 1.0)
    eager.load_state_dict(saved, "ckpt")
    eager.set_lr(0)
    assert eager.by_name["G"].param_groups[0]["lr"] == pytest.approx(0.1)
