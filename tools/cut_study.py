"""CUT and FastCUT on unpaired shape recolouring, with the controls that show PatchNCE is what works.

    python tools/cut_study.py --out runs/cut_study --seeds 0 1 2
    python tools/cut_study.py --out runs/cut_study --seeds 0 --runs no_nce mismatched

Trains ``configs/cut/recolour.yaml`` (data from ``datasets/make_recolour.py``, built once under
``--out``) for each run and seed and scores the 40 held-out A images against their true B answers:
PSNR (dB) and structure kept (the correlation of output luma with input luma, over the test set).
Runs: ``cut``, ``fastcut`` (lambda 10, no identity term, flip equivariance), ``no_nce`` (CUT with
lambda_NCE 0: the GAN alone), ``mismatched`` (CUT whose queries are sampled at other positions than
their keys: every query id moved by one place). Prints one row per run and seed, and the trivial
answers: identity, the mean colour of trainB, the untrained generator. Threads: ``--threads``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "datasets"))

RUNS = {
    "cut": [],
    "fastcut": ["loss.nce_weight=10", "loss.nce_idt=false", "loss.flip_equivariance=true"],
    "no_nce": ["loss.nce_weight=0"],
    "mismatched": [],
}


def read_folder(folder: Path) -> np.ndarray:
    """``(N, H, W, 3)`` float64 in [0, 1] of a folder's PNGs, by name."""
    from i2i.data.io import list_images, read_image

    return np.stack([read_image(p) for p in list_images(folder)]).astype(np.float64) / 255


def luma(x: np.ndarray) -> np.ndarray:
    return x @ np.array([0.299, 0.587, 0.114])


def score(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """PSNR of ``out`` against the truth ``b`` (mean over images, dB) and the correlation of the
    output's luma with the input ``a``'s (over all test pixels)."""
    mse = ((out - b) ** 2).reshape(len(b), -1).mean(1)
    psnr = float(np.mean(10 * np.log10(1 / np.maximum(mse, 1e-12))))
    structure = float(np.corrcoef(luma(out).ravel(), luma(a).ravel())[0, 1]) if out.std() > 0 else 0.0
    return {"psnr": psnr, "structure": structure}


def mismatched_ids() -> None:
    """Make PatchNCE's queries (sampled with gradients on) use the positions one place further along
    than their keys' (sampled without): a control in which the contrastive task carries no information."""
    from i2i.nets.patch_sampler import PatchSampler

    forward = PatchSampler.forward

    def shifted(self, feats, ids):  # type: ignore[no-untyped-def]
        if torch.is_grad_enabled():
            ids = [torch.roll(i, 1) for i in ids]
        return forward(self, feats, ids)

    PatchSampler.forward = shifted  # type: ignore[method-assign]


def train_and_score(data: Path, out: Path, run: str, seed: int, overrides: tuple[str, ...] = ()) -> dict[str, float]:
    """Train ``run`` at ``seed`` from the recipe (plus ``overrides``) and score it on ``data``'s test pairs."""
    import i2i
    from i2i.nets.patch_sampler import PatchSampler
    from i2i.recipes import load_config

    cfg = load_config(ROOT / "configs/cut/recolour.yaml",
                      [f"data.root={data}", f"output_dir={out}", f"name={run}_s{seed}", f"seed={seed}",
                       "train.progress=false", *RUNS[run], *overrides])
    shutil.rmtree(out / cfg.name, ignore_errors=True)  # this study's own earlier run of the same name
    original = PatchSampler.forward
    if run == "mismatched":
        mismatched_ids()
    a, b = read_folder(data / "testA"), read_folder(data / "testB")
    try:
        t0 = time.perf_counter()
        trainer = i2i.Trainer(cfg)
        untrained = score(translate(trainer.pipeline.nets["G"], a), a, b)
        trainer.fit()
        seconds = time.perf_counter() - t0
    finally:
        PatchSampler.forward = original  # type: ignore[method-assign]
    return {**score(translate(trainer.pipeline.nets["G"], a), a, b), "seconds": seconds,
            "untrained": untrained["psnr"]}


def translate(G: torch.nn.Module, a: np.ndarray) -> np.ndarray:
    """``G`` (in eval mode, then back to training) on ``(N, H, W, 3)`` images in [0, 1], rounded to 8 bits
    as a saved PNG holds them."""
    G.eval()
    with torch.no_grad():
        x = torch.from_numpy(a).permute(0, 3, 1, 2).float() * 2 - 1
        y = ((G(x).clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).double().numpy()
    G.train()
    return np.round(y * 255) / 255


def baselines(data: Path) -> dict[str, dict[str, float]]:
    """Identity and the mean colour of trainB, scored like a run."""
    a, b = read_folder(data / "testA"), read_folder(data / "testB")
    mean = read_folder(data / "trainB").mean(axis=(0, 1, 2))
    return {"identity": score(a, a, b), "mean colour": score(np.broadcast_to(mean, b.shape).copy(), a, b)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", nargs="+", choices=list(RUNS), default=["cut", "fastcut", "no_nce", "mismatched"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import make_recolour

    data = args.out / "data"
    if not (data / "testB").is_dir():
        make_recolour.build(data)
    for name, s in baselines(data).items():
        print(f"{name:12s}          PSNR {s['psnr']:6.2f} dB  structure {s['structure']:.2f}")
    for run in args.runs:
        for seed in args.seeds:
            s = train_and_score(data, args.out, run, seed, tuple(args.set))
            print(f"{run:12s} seed {seed}  PSNR {s['psnr']:6.2f} dB  structure {s['structure']:.2f}  "
                  f"(untrained {s['untrained']:.2f} dB; {s['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
