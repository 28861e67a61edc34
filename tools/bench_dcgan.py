"""DCGAN benchmark on a real dataset: training speed, and FID / KID before vs after.

    python tools/bench_dcgan.py configs/dcgan/fashion_mnist.yaml --steps 600 --threads 2

Trains CONFIG for ``--steps`` iterations (a fresh run under a temporary folder unless
``--out``), reports iterations/s (from the trainer's own log), and FID / KID of ``--n``
samples against ``--n`` real training images with ``--features`` (``pixels`` by default,
as no Inception weights exist offline; ``inception`` or a feature-model path otherwise),
for the untrained generator and the trained one (raw weights, and the EMA copy when the
config keeps one: early in training an EMA with decay 0.999 still carries much of the
initial weights). The final fixed-noise sample grid is copied to ``--grid``.

``--classifier PATH`` (from ``tools/fmnist_classifier.py``) uses that Fashion-MNIST
classifier's 128-d features for FID / KID (the domain's own feature space) and adds class
coverage: the share of samples in the most frequent predicted class, the number of classes
holding at least 2 % of the samples, and for class-conditional models the label accuracy
(samples of class k classified as k).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.engine.trainer import train  # noqa: E402
from i2i.evaluate import extract_features, feature_extractor  # noqa: E402
from i2i.generate import Generator  # noqa: E402
from i2i.metrics import frechet_distance, kernel_distance  # noqa: E402
from i2i.recipes import (
    load_config,  # noqa: E402
    pipeline_class,  # noqa: E402
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--features", default="pixels")
    p.add_argument("--classifier", type=Path, default=None,
                   help="Fashion-MNIST classifier weights (tools/fmnist_classifier.py)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--grid", type=Path, default=Path("dcgan_benchmark_grid.png"))
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    out = a.out or Path(tempfile.mkdtemp(prefix="i2i-bench-dcgan-"))
    cfg = load_config(a.config,
                      a.set + [f"output_dir={out}", "train.epochs=null", f"train.steps={a.steps}",
                               "train.progress=false",
                               f"train.sample_every={a.steps}", f"train.checkpoint_every={a.steps}"])
    pipe = pipeline_class("dcgan")
    ds = pipe.make_dataset(cfg, train=False)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[: a.n].tolist()
    real_images = torch.stack([ds[i]["image"] for i in idx])
    if a.classifier is not None:
        from fmnist_classifier import load_classifier, predict

        clf = load_classifier(a.classifier)
        real = predict(clf, real_images)[0]
        a.features = f"classifier {a.classifier.name}"
    else:
        ext = feature_extractor(a.features)
        real = extract_features(ext, real_images)

    def scores(gen: Generator) -> dict[str, float]:
        if a.classifier is None:
            fake = extract_features(ext, gen.sample(a.n, seed=1))
            return {"fid": frechet_distance(fake, real), "kid": kernel_distance(fake, real)}
        if gen.num_classes:
            per = a.n // gen.num_classes
            labels = torch.arange(gen.num_classes).repeat_interleave(per)
            imgs = torch.cat([gen.sample(per, seed=1 + k, label=k) for k in range(gen.num_classes)])
        else:
            labels, imgs = None, gen.sample(a.n, seed=1)
        fake, pred = predict(clf, imgs)
        share = torch.bincount(pred, minlength=10).float() / len(pred)
        out = {"fid": frechet_distance(fake, real), "kid": kernel_distance(fake, real),
               "top_class_share": float(share.max()),
               "classes_over_2pct": int((share >= 0.02).sum())}
        if labels is not None:
            out["label_accuracy"] = float((pred == labels).float().mean())
        return out

    torch.manual_seed(cfg.seed)
    before = scores(Generator(pipe(cfg).nets["G"], cfg, device="cpu"))
    summary = train(cfg)
    logs = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    it_s = sorted(r["it_per_s"] for r in logs[1:] or logs)[len(logs[1:] or logs) // 2]
    after = scores(Generator.from_checkpoint(summary["checkpoint"], device="cpu", use_ema=False))
    after_ema = scores(Generator.from_checkpoint(summary["checkpoint"],
                                                 device="cpu")) if cfg.train.ema_decay > 0 else None
    grid = sorted((cfg.run_dir / "samples").glob("*.png"))[-1]
    shutil.copy(grid, a.grid)
    row = {"config": a.config, "steps": a.steps, "batch": cfg.data.batch_size, "size": cfg.data.image_size,
           "it_per_s_median": it_s, "threads": torch.get_num_threads(), "features": a.features, "n": a.n,
           "before": before, "after": after, "after_ema": after_ema, "grid": str(a.grid)}
    print(json.dumps(row, indent=2))
    if a.json:
        a.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
