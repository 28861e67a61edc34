"""Super-resolution quality at a fixed CPU budget: held-out Y-PSNR gain over bicubic per variant.

    bash tools/heldout_photos.sh /tmp/heldout        # 17 photos i2i never trains on
    python datasets/make_sr.py --out data/sr
    python tools/bench_sr_quality.py configs/srgan/demo.yaml --heldout /tmp/heldout --threads 1 \\
        --set train.steps=1650 --variant shipped= --variant wider=model.generator.base_channels=64 \\
        --seeds 0 1 --json sr.jsonl

Trains CONFIG once per ``--variant`` (``NAME=KEY=VALUE;KEY=VALUE``; empty after the first ``=``
for the config as it is) and seed in a fresh run under a temporary folder, with ``--threads``
torch threads, then scores the final checkpoint (eval mode, EMA when the config keeps one) on
every photo of ``--heldout`` with ``i2i eval``'s SR metrics (LR = MATLAB bicubic, 8-bit; Y-PSNR
with the scale's border removed, per image then averaged) and prints the gain over bicubic per
seed and its median, with the training's wall time (meaningful only on a quiet machine). Each
result is appended to ``--json`` as it comes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_small_data import parse_variant  # noqa: E402

from i2i.engine.trainer import train  # noqa: E402
from i2i.evaluate.super_resolution import evaluate_sr  # noqa: E402
from i2i.recipes import load_config  # noqa: E402


def run(config: str, sets: list[str], seed: int, heldout: str) -> dict:
    """Train one variant at one seed and score it; returns the record."""
    out = Path(tempfile.mkdtemp(prefix="i2i-bench-sr-"))
    cfg = load_config(config, [*sets, f"seed={seed}", f"output_dir={out}", "train.progress=false"])
    start = time.perf_counter()
    train(cfg)
    seconds = time.perf_counter() - start
    r = evaluate_sr(cfg.run_dir / "checkpoints" / "last.pt", heldout, device="cpu", lpips="none")
    m = r["mean"]
    return {"seed": seed, "train_s": round(seconds, 1), "psnr_y": m["psnr_y_model"], "bicubic": m["psnr_y_bicubic"],
            "gain": m["psnr_y_model"] - m["psnr_y_bicubic"], "ssim_y": m["ssim_y_model"], "weights": r["weights"],
            "images": len(r["per_image"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--heldout", required=True, help="folder of HR photos never trained on")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="for every variant")
    p.add_argument("--variant", action="append", required=True, metavar="NAME=KEY=VALUE;...")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for variant in a.variant:
        name, sets = parse_variant(variant)
        recs = []
        for seed in a.seeds:
            rec = {"variant": name, "sets": [*a.set, *sets], **run(a.config, [*a.set, *sets], seed, a.heldout)}
            recs.append(rec)
            print(json.dumps(rec), flush=True)
            if a.json is not None:
                with open(a.json, "a") as f:
                    f.write(json.dumps(rec) + "\n")
        gains = [r["gain"] for r in recs]
        rows.append((name, gains, statistics.median(r["train_s"] for r in recs)))
    print("\n| variant | Y-PSNR gain over bicubic per seed (dB) | median | train s (median) |\n|---|---|---|---|")
    for name, gains, secs in rows:
        print(f"| {name} | {' / '.join(f'{g:+.2f}' for g in gains)} | {statistics.median(gains):+.2f} | {secs:.0f} |")


if __name__ == "__main__":
    main()
