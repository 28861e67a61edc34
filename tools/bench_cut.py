"""Seconds per iteration of CUT and FastCUT against CycleGAN with the same generator, discriminator and data,
timed in one run, in turns.

    python tools/bench_cut.py --threads 2                  # 128 px crops of random images, ResNet 9 blocks, width 64
    python tools/bench_cut.py --threads 2 --size 64 --repeats 5

The three configs are the paper recipes (``configs/cyclegan/horse2zebra.yaml``, ``configs/cut/horse2zebra.yaml``,
``configs/cut/horse2zebra_fast.yaml``) with CUT's nets for all three (anti-aliased ResNet 9 blocks and
PatchGAN, instance norm, width 64) and crops of ``--size`` (load size 286/256 of it) from the same random
images (``tools/benchmark.py``'s data), batch 1. After ``--warmup`` iterations each, the three trainers
take turns timing blocks of ``--steps`` iterations, ``--repeats`` times; the medians and the ratios to
CycleGAN are printed. Look at /proc/loadavg first: nothing else may run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import machine, make_data, time_steps  # noqa: E402

from i2i.engine.trainer import Trainer  # noqa: E402
from i2i.recipes import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"CycleGAN": "configs/cyclegan/horse2zebra.yaml", "CUT": "configs/cut/horse2zebra.yaml",
           "FastCUT": "configs/cut/horse2zebra_fast.yaml"}
SAME_NETS = ["model.generator.antialias=true", "model.generator.antialias_up=true",
             "model.discriminator.antialias=true", "model.generator.init=xavier", "model.discriminator.init=xavier"]


def trainer_for(name: str, size: int, total: int, tmp: Path) -> Trainer:
    config = ROOT / CONFIGS[name]
    common = [f"data.crop_size={size}", f"data.load_size={size * 286 // 256}", "data.num_workers=0", *SAME_NETS]
    cfg = load_config(config, common)
    settings = make_data(tmp / "data", cfg) + [f"output_dir={tmp / name}", "train.progress=false",
                                               "train.epochs=null", f"train.steps={total}", f"name={name}"]
    return Trainer(load_config(config, common + settings))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine()}; {args.threads} threads; load {Path('/proc/loadavg').read_text().split()[:3]}")
    tmp = Path(tempfile.mkdtemp(prefix="i2i-bench-cut-"))
    total = args.warmup + args.steps * args.repeats + 1
    trainers = {name: trainer_for(name, args.size, total, tmp) for name in CONFIGS}
    for trainer in trainers.values():
        time_steps(trainer, args.warmup, 1, 0)
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.repeats):
        for name, trainer in trainers.items():
            rates[name].append(time_steps(trainer, args.steps, 1, 0))
    s_per_it = {name: 1 / statistics.median(r) for name, r in rates.items()}
    print(f"{args.size} px crops, batch 1, ResNet 9 blocks width 64 (CUT's nets for all), medians of {args.repeats} "
          f"blocks of {args.steps} iterations:")
    for name, s in s_per_it.items():
        print(f"  {name:8s} {s:6.3f} s/it  ({s / s_per_it['CycleGAN']:.2f}x CycleGAN)")


if __name__ == "__main__":
    main()
