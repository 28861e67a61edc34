"""Small-data augmentation study for the translation pipelines: held-out quality with and without.

    python tools/bench_small_data.py configs/pix2pix/edges2shoes_fmnist.yaml --data data/edges2shoes/test \\
        --set data.max_items=100 --variant none= --variant diffaugment=loss.augment_policy=color,translation,cutout \\
        --seeds 0 1 2 --threads 2 --json small.jsonl

Trains CONFIG once per ``--variant`` and seed (``NAME=KEY=VALUE;KEY=VALUE``, empty after the
first ``=`` for the config as it is) in a fresh run under a temporary folder, then scores the
final checkpoint (eval mode, EMA when the config keeps one) on the held-out pairs of ``--data``
with ``i2i eval``'s paired metrics, and prints PSNR / SSIM / L1 per seed and their median beside
the identity and mean-colour baselines. Each result is appended to ``--json`` as it comes, so
an interrupted study keeps what it finished. Quality only: no timings are taken (the machine may
be busy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.engine.trainer import train  # noqa: E402
from i2i.evaluate.paired import evaluate_paired  # noqa: E402
from i2i.recipes import load_config  # noqa: E402


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME=K=V;K=V`` -> (NAME, [K=V, K=V]); ``NAME=`` -> (NAME, [])."""
    name, _, sets = text.partition("=")
    return name, [s for s in sets.split(";") if s]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--data", required=True, help="held-out pairs (A/ + B/ or testA/ + testB/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="for every variant")
    p.add_argument("--variant", action="append", required=True, metavar="NAME=KEY=VALUE;...")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="score at most this many held-out pairs")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    table: dict[str, list[dict]] = {}
    baselines: dict[str, dict] = {}
    for variant in a.variant:
        name, sets = parse_variant(variant)
        for seed in a.seeds:
            out = Path(tempfile.mkdtemp(prefix="i2i-bench-small-"))
            cfg = load_config(a.config, [*a.set, *sets, f"seed={seed}", f"output_dir={out}", "train.progress=false"])
            train(cfg)
            r = evaluate_paired(cfg.run_dir / "checkpoints" / "last.pt", a.data, limit=a.limit, device="cpu")
            models = {m["model"]: m for m in r["models"]}
            rec = {"variant": name, "sets": sets, "seed": seed,
                   **{k.lower(): models["trained"][k] for k in ("PSNR", "SSIM", "L1")}}
            baselines = {who: {k.lower(): models[who][k] for k in ("PSNR", "SSIM", "L1")} for who in ("identity",
                                                                                                      "mean colour")}
            table.setdefault(name, []).append(rec)
            print(json.dumps(rec), flush=True)
            if a.json:
                with a.json.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
    print(f"\n| variant | PSNR (dB) per seed {a.seeds} | median | SSIM | L1 |\n|---|---|---|---|---|")
    def col(recs: list[dict], k: str, fmt: str) -> str:
        return " / ".join(format(r[k], fmt) for r in recs)

    for name, recs in table.items():
        print(f"| {name} | {col(recs, 'psnr', '.2f')} | {statistics.median(r['psnr'] for r in recs):.2f} | "
              f"{col(recs, 'ssim', '.3f')} | "
              f"{col(recs, 'l1', '.4f')} |")
    for who, m in baselines.items():
        print(f"| {who} | {m['psnr']:.2f} | | {m['ssim']:.3f} | {m['l1']:.4f} |")


if __name__ == "__main__":
    main()
