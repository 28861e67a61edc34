"""The README demo against OpenCV's non-local means: which of the demo's settings buy its win.

    python tools/demo_study.py --out runs/demo_study --variants demo resize pairs1000 old --seeds 0

Trains ``configs/pix2pix/demo.yaml`` with each variant's overrides, then scores the EMA generator on the
demo's held-out crops (``data/restore/test`` as ``tools/demo.sh`` builds it) beside the identity and the
non-local-means denoiser at its best strength (``i2i eval --classical nlm``), and prints one line per run
with the training time (meaningful on a quiet machine only: check /proc/loadavg). Variants:

- ``demo``: the recipe as shipped;
- ``resize``: upsampling by resize + convolution (``model.generator.upsample: resize``);
- ``pairs1000``: 1,000 training pairs instead of 200 (``make_paired.py --train-per-photo 200``; its
  training crops come from the same 70 % of each photo, so the demo's test crops stay unseen);
- ``old``: the earlier demo recipe (resize upsampling, dropout, Adam at 2e-4 with beta1 0.5 and a
  linear decay over the last half, crops resized to 144 before the 128 crop, 1,000 steps).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from i2i.evaluate import evaluate_paired  # noqa: E402

OLD = ["model.generator.upsample=resize", "model.generator.dropout=true", "optim.lr_g=0.0002", "optim.beta1=0.5",
       "schedule.policy=linear", "schedule.decay_start=500", "data.preprocess=resize_and_crop", "data.load_size=144",
       "data.rotate90=false", "train.steps=1000"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "demo": ("restore", []),
    "resize": ("restore", ["model.generator.upsample=resize"]),
    "pairs1000": ("restore1000", []),
    "old": ("restore", OLD),
}
"""Variant -> (the data folder under --out it trains on, its config overrides)."""


def build_data(out: Path) -> None:
    """The demo's data (``data/restore``, 200 pairs) and 1,000 pairs, whose test crops differ (one random
    stream draws both splits): every run is scored on ``data/restore/test``."""
    if not (ROOT / "data/restore/test").is_dir():
        subprocess.run([sys.executable, str(ROOT / "datasets/make_paired.py"), "--out", str(ROOT / "data/restore"),
                        "--task", "restore"], check=True)
    if not (out / "restore1000" / "train").is_dir():
        subprocess.run([sys.executable, str(ROOT / "datasets/make_paired.py"), "--out", str(out / "restore1000"),
                        "--task", "restore", "--train-per-photo", "200"], check=True)


def run(variant: str, seed: int, out: Path) -> dict[str, float]:
    """Train one variant at one seed; its held-out scores, the classical row's and the training seconds."""
    data, overrides = VARIANTS[variant]
    root = ROOT / "data/restore/train" if data == "restore" else out / data / "train"
    name = f"{variant}_seed{seed}"
    sets = [f"seed={seed}", f"name={name}", f"output_dir={out}", f"data.root={root}",
            f"data.val_root={ROOT / 'data/restore/test'}", *overrides]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "i2i", "train", str(ROOT / "configs/pix2pix/demo.yaml"),
                    *[a for s in sets for a in ("--set", s)]], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # the run's own train.log keeps its lines
    seconds = time.perf_counter() - start
    r = evaluate_paired(out / name / "checkpoints" / "last.pt", ROOT / "data/restore/test", classical="nlm")
    rows = {m["model"]: m for m in r["models"]}
    nlm = r["classical"]["row"]
    return {"PSNR": rows["trained"]["PSNR"], "SSIM": rows["trained"]["SSIM"],
            "identity": rows["identity"]["PSNR"], "nlm": rows[nlm]["PSNR"], "nlm_SSIM": rows[nlm]["SSIM"],
            "seconds": seconds, "nlm_name": nlm}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "demo_study")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    a = p.parse_args()
    build_data(a.out)
    for variant in a.variants:
        for seed in a.seeds:
            r = run(variant, seed, a.out)
            print(f"{variant:9s} seed {seed}: PSNR {r['PSNR']:.2f} dB SSIM {r['SSIM']:.3f} "
                  f"(identity {r['identity']:.2f}; {r['nlm_name']} {r['nlm']:.2f} / {r['nlm_SSIM']:.3f}); "
                  f"trained in {r['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
