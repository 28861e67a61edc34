"""Does ``loss.mask_conservation`` keep a translator from changing what lies outside the mask, without
costing quality inside it? Trains a recipe (``--config``; default the CPU CycleGAN demo) with and
without it, per seed, and scores the held-out A images against their true B.

    python datasets/make_unpaired.py --out data/squares --transform negative --squares
    python tools/mask_conservation_study.py --data data/squares --out runs/mask_study --seeds 0 1 2
    python datasets/make_recolour.py --out data/discs --only disc        # recolour the discs, keep the rest
    python tools/mask_conservation_study.py --data data/discs --out runs/mask_cut --config configs/cut/recolour.yaml \
        --steps 600

docs/benchmarks.md has the figures: the demo-sized CycleGAN halves the change outside the mask
with W = 10 but learns the inside in neither run at 1,500 steps.

Per run: ``outside`` = mean absolute change from the input outside the mask (8-bit levels; 0 is
perfect), ``inside`` = PSNR (dB) against the true B inside the mask. Prints a markdown table, the
ratio of outside change without / with, and the inside difference, per seed.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

from i2i import Translator, load_config, train
from i2i.data.io import list_images, read_image

ROOT = Path(__file__).resolve().parent.parent


def score(checkpoint: str, data: Path) -> tuple[float, float]:
    """(mean outside change in levels, inside PSNR in dB) over ``data/testA``."""
    tr = Translator.from_file(checkpoint, device="cpu")
    outside, sq_err, n_inside = [], 0.0, 0
    for f in list_images(data / "testA"):
        a = read_image(f)[:, :, :3].astype(np.float64)
        truth = read_image(data / "testB" / f.name)[:, :, :3].astype(np.float64)
        inside = read_image(data / "testA_mask" / f.name)[:, :, 0] > 127
        out = tr(read_image(f)[:, :, :3]).astype(np.float64)
        outside.append(np.abs(out - a)[~inside].mean())
        sq_err += ((out - truth)[inside] ** 2).sum()
        n_inside += int(inside.sum()) * 3
    psnr = 10 * np.log10(255.0**2 / (sq_err / n_inside))
    return float(np.mean(outside)), float(psnr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="made by make_unpaired.py --squares or make_recolour.py "
                    "--only disc")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "cyclegan" / "demo.yaml")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--weight", type=float, default=10.0, help="loss.mask_conservation of the 'with' runs")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="config overrides for every run, e.g. model.generator.predict=residual")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for seed in args.seeds:
        for weight in (0.0, args.weight):
            name = f"seed{seed}_w{weight:g}"
            cfg = load_config(args.config, [
                f"name={name}", f"output_dir={args.out}", f"data.root={args.data}", f"seed={seed}",
                f"loss.mask_conservation={weight}", f"train.steps={args.steps}", "train.progress=false",
                f"train.sample_every={args.steps}", f"train.checkpoint_every={args.steps}", *args.set])
            rows[(seed, weight)] = score(train(cfg)["checkpoint"], args.data)
            print(f"{name}: outside {rows[(seed, weight)][0]:.2f} levels, inside {rows[(seed, weight)][1]:.2f} dB",
                  flush=True)
    print("\n| seed | outside change without / with (levels) | ratio | inside PSNR without / with (dB) | difference |")
    print("|---|---|---|---|---|")
    ratios, diffs = [], []
    for seed in args.seeds:
        (o0, i0), (o1, i1) = rows[(seed, 0.0)], rows[(seed, args.weight)]
        ratios.append(o0 / max(o1, 1e-9))
        diffs.append(i1 - i0)
        print(f"| {seed} | {o0:.2f} / {o1:.2f} | {ratios[-1]:.1f}x | {i0:.2f} / {i1:.2f} | {diffs[-1]:+.2f} |")
    print(f"\nmedian ratio {statistics.median(ratios):.1f}x (min {min(ratios):.1f}x); inside difference "
          f"{min(diffs):+.2f} to {max(diffs):+.2f} dB")


if __name__ == "__main__":
    main()
