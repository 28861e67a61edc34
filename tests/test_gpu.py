"""GPU paths on a real CUDA device (marked ``gpu``; skipped where there is none): every pipeline
trains a step in fp32 / bf16 / fp16, never synchronises inside a step, resumes exactly, compiles,
runs channels_last, converts like the CPU, and trains under torchrun with NCCL."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import assert_exact_resume, dcgan_config
from contract import example_config

import i2i
from i2i.config import dump_config
from i2i.convert import ConvertOptions
from i2i.recipes import PIPELINES

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _one_step(name: str, tmp_path, data_roots, amp: str) -> dict[str, float]:
    cfg = example_config(name, tmp_path / amp, data_roots, steps=1, device="cuda", amp=amp)
    trainer = i2i.Trainer(cfg)
    assert trainer.device.type == "cuda"
    return {k: float(v) for k, v in trainer.train_step(next(trainer.batches())).items()}


@pytest.mark.parametrize("name", list(PIPELINES))
def test_every_pipeline_trains_a_step_in_fp32_bf16_and_fp16(name, tmp_path, data_roots):
    fp32 = _one_step(name, tmp_path, data_roots, "none")
    for amp in ("bf16", "fp16"):
        low = _one_step(name, tmp_path, data_roots, amp)
        assert set(low) == set(fp32)
        for k, v in low.items():
            assert math.isfinite(v), f"{name} {amp}: {k} = {v}"
            assert v == pytest.approx(fp32[k], rel=0.1, abs=0.05), f"{name} {amp}: {k} {v} vs fp32 {fp32[k]}"


@pytest.mark.parametrize("name", list(PIPELINES))
def test_training_steps_never_wait_for_the_device(name, tmp_path, data_roots):
    """Between log points a step queues work and returns: under ``set_sync_debug_mode("error")``
    any synchronising call (``.item()``, ``.cpu()``, ``bool(tensor)``, ``nonzero``) raises. The first
    step (optimizer state, cuDNN autotuning) runs before; batches are fetched (pinned) outside."""
    cfg = example_config(name, tmp_path, data_roots, steps=8, log_every=8, checkpoint_every=1000, device="cuda")
    cfg.loss.r1_weight, cfg.optim.n_critic = 1.0, 2
    trainer = i2i.Trainer(cfg)
    batches = trainer.batches()
    trainer.train_step(next(batches))
    torch.cuda.synchronize()
    queued = [next(batches) for _ in range(3)]
    torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in queued:
            trainer.train_step(batch)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(math.isfinite(v) for v in trainer.check_losses().values())


@pytest.mark.parametrize("name", list(PIPELINES))
def test_every_pipeline_resumes_exactly_on_cuda(name, tmp_path, data_roots):
    common = {"device": "cuda", "deterministic": True, "ema_decay": 0.5}
    straight = example_config(name, tmp_path / "a", data_roots, **common)
    split = example_config(name, tmp_path / "b", data_roots, **common)
    assert_exact_resume(straight, split, stop_at=2, parts=("nets", "ema"))


def test_compile_and_channels_last_train_and_agree_with_eager(tmp_path, gray2color, make_config):
    losses = {}
    for label, extra in (("eager", {}), ("compile", {"compile": True}), ("channels_last", {"channels_last": True})):
        cfg = make_config(tmp_path / label, gray2color, train={"steps": 3, "device": "cuda", **extra})
        losses[label] = i2i.train(cfg)["losses"]
    for label in ("compile", "channels_last"):
        for k, v in losses[label].items():
            assert v == pytest.approx(losses["eager"][k], rel=0.05, abs=0.02), f"{label}: {k}"


def test_translator_and_convert_on_cuda_equal_the_cpu(trained, tmp_path):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(64, 64), (48, 80), (33, 47)]):
        i2i.write_image(tmp_path / "in" / f"{i}.png", rng.integers(0, 256, (h, w), dtype=np.uint8))
    cpu = i2i.Translator.from_checkpoint(trained, device="cpu")
    gpu = i2i.Translator.from_checkpoint(trained, device="cuda")
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    # cuDNN convolutions run in TF32 by default on Ampere and later (measured on an H100: 1.4e-3
    # off the CPU); within half an 8-bit level (1/255 on [-1, 1]) is what a converted file needs.
    assert (cpu(x) - gpu(x).cpu()).abs().max() < 1 / 255
    for label, tr in (("cpu", cpu), ("cuda", gpu)):
        tr.convert_folder(tmp_path / "in", tmp_path / label, ConvertOptions(workers=0))
    for i in range(3):
        a, b = i2i.read_image(tmp_path / "cpu" / f"{i}.png"), i2i.read_image(tmp_path / "cuda" / f"{i}.png")
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_torchrun_with_nccl_at_world_size_one(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, train={"steps": 2, "device": "cuda"})
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=1", "-m", "i2i", "train",
                        str(path)],
                       capture_output=True, text=True, timeout=600, env={**os.environ})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "world size 1" in r.stderr and "device cuda" in r.stderr
    assert torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 2


def test_the_gan_toolbox_trains_in_fp32_bf16_and_fp16(tmp_path, shapes, make_config):
    """Self-attention in G and D, minibatch std, projection conditioning, R1 (a gradient of a
    gradient, under the fp16 gradient scaler) and n_critic together: the first step's losses
    (same weights in every precision) agree with fp32, the second step's (G's first update
    with n_critic 2) are finite."""
    logs, second = {}, {}
    for amp in ("none", "bf16", "fp16"):
        cfg = dcgan_config(make_config, tmp_path / amp, shapes, generator={"num_classes": 2, "attention": 2},
                           discriminator={"attention": 4, "minibatch_std": 4, "conditioning": "projection"},
                           loss={"r1_weight": 10.0}, optim={"n_critic": 2},
                           train={"steps": 2, "device": "cuda", "amp": amp})
        torch.manual_seed(0)
        trainer = i2i.Trainer(cfg)
        batches = trainer.batches()
        logs[amp], second[amp] = (trainer.train_step(next(batches)) for _ in range(2))
        print(amp, "second step", second[amp], "scale", trainer.scaler.get_scale() if amp == "fp16" else None)
    assert "D_r1" in logs["none"]
    for amp in ("bf16", "fp16"):
        assert all(math.isfinite(v) for v in second[amp].values()), f"{amp}: {second[amp]}"
        for k, v in logs[amp].items():
            assert v == pytest.approx(logs["none"][k], rel=0.1, abs=0.05), f"{amp}: {k} {v} vs fp32 {logs['none'][k]}"


@pytest.mark.parametrize("name", list(PIPELINES))
def test_cuda_graphs_train_like_eager_and_resume_exactly(name, tmp_path, data_roots):
    """``train.cuda_graphs``: 3 eager steps, then the captured step replayed; over 20 steps the
    weights stay within float tolerance of eager training (the same kernels, replayed), every
    parameter keeps receiving gradients, and a resumed captured run equals an uninterrupted one."""
    common = {"device": "cuda", "deterministic": True, "steps": 20, "checkpoint_every": 10}
    weights = {}
    for graphs in (False, True):
        cfg = example_config(name, tmp_path / f"graphs{graphs}", data_roots, cuda_graphs=graphs, **common)
        trainer = i2i.Trainer(cfg)
        trainer.fit()
        if graphs:
            assert trainer.graph is not None and trainer.graph.captured
            assert all(
                p.grad is not None for opt in trainer.optimizers.values() for g in opt.param_groups for p in g["params"]
            )
        weights[graphs] = {n: {k: v.float().cpu() for k, v in net.state_dict().items()} for n,
                           net in trainer.pipeline.nets.items()}
    for net, state in weights[False].items():
        for k, v in state.items():
            assert torch.allclose(weights[True][net][k], v, rtol=1e-3, atol=1e-4), f"{name}: {net}.{k}"
    straight = example_config(name, tmp_path / "a", data_roots, cuda_graphs=True, device="cuda", deterministic=True,
                              steps=8,
                              checkpoint_every=4)
    split = example_config(name, tmp_path / "b", data_roots, cuda_graphs=True, device="cuda", deterministic=True,
                           steps=8,
                           checkpoint_every=4)
    assert_exact_resume(straight, split, stop_at=4, parts=("nets",))


def test_device_cache_on_cuda_makes_the_loader_batches(tmp_path, data_roots):
    from i2i.data.device import DeviceBatches, DeviceImages
    from i2i.recipes import pipeline_class

    for name in PIPELINES:
        cfg = example_config(name, tmp_path / name, data_roots)
        ds = pipeline_class(name).make_dataset(cfg, train=True)
        ds.cache_in_memory()
        keys = [(0, i) for i in range(len(ds))]
        batch = next(iter(DeviceBatches(ds, keys, len(keys),
                                        DeviceImages(ds.device_keys(), ds.device_image, torch.device("cuda")))))
        want = torch.utils.data.default_collate([ds[k] for k in keys])
        for k, v in want.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                assert batch[k].is_cuda and ((batch[k].cpu() - v).abs() * 127.5).max() <= 1.0 + 1e-3, (name, k)
