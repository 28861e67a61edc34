"""Does ``loss.temporal_reg`` make the generator follow small motions of its input (what keeps a
video from flickering) without costing quality? Trains the README's pix2pix demo (restoration of
degraded crops) with and without it, per seed, and scores the held-out crops.

    python datasets/make_paired.py --out data/restore --task restore
    python tools/temporal_reg_study.py --data data/restore --out runs/temporal_study --seeds 0 1 2

Per run: ``motion`` = mean |G(T x) - T G(x)| over the held-out crops for fixed random small motions
T (8-bit levels; 0: the output moves exactly with the input), ``psnr`` = PSNR (dB) of G(x)
against the clean crop. Prints a markdown table, the fall of ``motion`` with the term against
without, and the PSNR difference, per seed.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

from i2i import Translator, load_config, train
from i2i.data.io import list_images, read_image, to_tensor
from i2i.losses import motion_consistency, random_motion

ROOT = Path(__file__).resolve().parent.parent


def score(checkpoint: str, data: Path) -> tuple[float, float]:
    """(mean motion inconsistency in 8-bit levels, mean PSNR in dB) over ``data/test``."""
    tr = Translator.from_file(checkpoint, device="cpu")
    G = tr.net.eval()
    torch.manual_seed(1234)  # the same motions for every run
    motion, psnrs = [], []
    with torch.no_grad():
        for f in list_images(data / "test" / "A"):
            x = to_tensor(read_image(f)[:, :, :3])[None]
            theta = random_motion(1, "cpu")
            y = G(x)
            motion.append(float(motion_consistency(G, x, y, theta)) * 127.5)
            truth = read_image(data / "test" / "B" / f.name)[:, :, :3].astype(np.float64)
            out = tr(read_image(f)[:, :, :3]).astype(np.float64)
            psnrs.append(10 * np.log10(255.0**2 / ((out - truth) ** 2).mean()))
    return float(np.mean(motion)), float(np.mean(psnrs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="made by make_paired.py --task restore")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--weights", type=float, nargs="+", default=[100.0],
                    help="loss.temporal_reg of the runs with the term (each against 0)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="score a run already finished under --out instead of "
                                                          "training it again")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for seed in args.seeds:
        for weight in (0.0, *args.weights):
            name = f"seed{seed}_w{weight:g}"
            cfg = load_config(ROOT / "configs" / "pix2pix" / "demo.yaml", [
                f"name={name}", f"output_dir={args.out}", f"data.root={args.data / 'train'}",
                f"data.val_root={args.data / 'test'}", f"seed={seed}", f"loss.temporal_reg={weight}",
                "train.progress=false", *args.set])
            done = args.out / name / "checkpoints" / "last.pt"
            rows[(seed, weight)] = score(str(done) if args.reuse and done.exists() else train(cfg)["checkpoint"],
                                         args.data)
            print(f"{name}: motion {rows[(seed, weight)][0]:.3f} levels, PSNR {rows[(seed, weight)][1]:.2f} dB",
                  flush=True)
    print("\n| seed | W | motion without / with (levels) | fall | PSNR without / with (dB) | difference |")
    print("|---|---|---|---|---|---|")
    for weight in args.weights:
        falls, diffs = [], []
        for seed in args.seeds:
            (m0, p0), (m1, p1) = rows[(seed, 0.0)], rows[(seed, weight)]
            falls.append(1 - m1 / max(m0, 1e-9))
            diffs.append(p1 - p0)
            print(f"| {seed} | {weight:g} | {m0:.3f} / {m1:.3f} | {falls[-1]:.0%} | {p0:.2f} / {p1:.2f} | "
                  f"{diffs[-1]:+.2f} |")
        print(f"\nW = {weight:g}: median fall {statistics.median(falls):.0%} (min {min(falls):.0%}); PSNR difference "
              f"{min(diffs):+.2f} to {max(diffs):+.2f} dB")


if __name__ == "__main__":
    main()
