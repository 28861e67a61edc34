"""One training step of i2i and of the reference, profiled op by op on the same machine, side by side.

    python tools/profile_step.py configs/cyclegan/horse2zebra.yaml --reference REF --model cycle_gan --threads 2
    python tools/profile_step.py configs/pix2pix/facades.yaml --reference REF --model pix2pix --crop 128

Both sides train on the same random images at ``--crop`` pixels (batch 1, the paper settings of
each config and of the reference's defaults), ``--warmup`` steps first, then ``--steps`` steps under
``torch.profiler``. Prints each side's wall seconds per step, and the ops that take the most time
(self CPU time per step) on either side, with the difference: the profile behind the training
ratio in docs/benchmarks.md. ``REF`` is a checkout of pytorch-CycleGAN-and-pix2pix (its
``dominate`` and a ``wandb`` stub on ``PYTHONPATH``, see tools/bench_reference.py). Nothing here is
imported by i2i.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import make_data  # noqa: E402

from i2i.engine.trainer import Trainer  # noqa: E402
from i2i.recipes import load_config  # noqa: E402


def profiled(step: Callable[[], None], warmup: int, steps: int) -> tuple[float, dict[str, float]]:
    """Median wall seconds per step (timed without the profiler) and ``{op: self CPU ms per step}``."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    ops = {e.key: e.self_cpu_time_total / 1000 / steps for e in prof.key_averages()}
    return statistics.median(times), ops


def i2i_step(config: str, crop: int, extra: list[str]) -> Callable[[], None]:
    tmp = Path(tempfile.mkdtemp(prefix="i2i-profile-"))
    cfg = load_config(config, extra)
    sets = make_data(tmp / "data", cfg) + [f"output_dir={tmp / 'runs'}", "train.progress=false", "train.epochs=null",
                                           "train.steps=1000", f"data.crop_size={crop}", f"data.load_size={crop}"]
    trainer = Trainer(load_config(config, extra + sets))
    for net in trainer.pipeline.nets.values():
        net.train()
    batches = trainer.batches()
    return lambda: trainer.train_step(next(batches))


def reference_step(repo: str, model: str, crop: int) -> Callable[[], None]:
    sys.path.insert(0, str(Path(repo).resolve()))
    from models import create_model  # the reference's code
    from options.train_options import TrainOptions

    work = Path(tempfile.mkdtemp(prefix="i2i-profile-ref-"))
    argv = sys.argv
    sys.argv = ["train.py", "--dataroot", str(work), "--name", "p", "--model", model, "--checkpoints_dir",
                str(work / "ck"), "--crop_size", str(crop), "--load_size", str(crop)]
    if model == "pix2pix":
        sys.argv += ["--direction", "AtoB"]
    try:
        opt = TrainOptions().parse()
    finally:
        sys.argv = argv
    opt.device = torch.device("cpu")  # what its train.py's init_ddp() returns on a machine without CUDA
    net = create_model(opt)
    net.setup(opt)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(1, 3, crop, crop, generator=g) * 2 - 1 for _ in range(2))
    data = {"A": a, "B": b, "A_paths": ["a"], "B_paths": ["b"]}

    def step() -> None:
        net.set_input(data)
        net.optimize_parameters()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--reference", required=True, metavar="REF")
    p.add_argument("--model", required=True, choices=["pix2pix", "cycle_gan"])
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ref_s, ref_ops = profiled(reference_step(a.reference, a.model, a.crop), a.warmup, a.steps)
    i2i_s, i2i_ops = profiled(i2i_step(a.config, a.crop, a.set), a.warmup, a.steps)
    print(f"{a.model} at {a.crop} px, batch 1, {a.threads} threads: reference {ref_s:.3f} s/step, i2i {i2i_s:.3f} "
          f"s/step, ratio reference / i2i = {ref_s / i2i_s:.2f}x")
    keys = sorted(set(ref_ops) | set(i2i_ops), key=lambda k: -max(ref_ops.get(k, 0), i2i_ops.get(k, 0)))
    print("| op (self CPU ms per step) | reference | i2i | i2i - reference |")
    print("|---|---:|---:|---:|")
    for k in keys[: a.top]:
        r, i = ref_ops.get(k, 0.0), i2i_ops.get(k, 0.0)
        print(f"| `{k}` | {r:.1f} | {i:.1f} | {i - r:+.1f} |")
    print(f"| all ops | {sum(ref_ops.values()):.1f} | {sum(i2i_ops.values()):.1f} | "
          f"{sum(i2i_ops.values()) - sum(ref_ops.values()):+.1f} |")


if __name__ == "__main__":
    main()
