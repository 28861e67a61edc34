"""Test-time adaptation for super-resolution, measured (zero-shot-SR style; Shocher et al., CVPR 2018):
fine-tune a copy of the trained net for N steps on the input's own downscaled copy (LR / 4 -> LR), then
upscale the input. Does it gain on photos the net never saw, and at what cost per image?

    bash tools/heldout_photos.sh /tmp/heldout
    python tools/adapt_study.py --heldout /tmp/heldout --out runs/adapt --steps 25 100 --seeds 0 1

Per seed: trains ``configs/srgan/demo.yaml`` (data from ``datasets/make_sr.py``, built once under
``--out``), then for every held-out photo: LR = MATLAB bicubic / 4, 8-bit (as ``i2i eval``); the
net's x4 upscale scored by Y-PSNR with a 4-pixel border removed; then for each N of ``--steps`` a
fresh copy of the net trained N Adam steps (``--lr``, L1, batches of ``--batch`` random
``--crop``-pixel crops of LR with flips and quarter turns, their inputs LR's crops bicubic / 4,
8-bit) and scored the same way. Prints the mean gain of each N over the unadapted net per seed, and
the seconds per image it cost (``--threads`` torch threads; meaningful on a quiet machine only).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "datasets"))

from i2i.data.io import list_images, max_value, read_image, to_channels  # noqa: E402
from i2i.data.resize import imresize  # noqa: E402
from i2i.metrics import psnr  # noqa: E402

SCALE = 4


def eight_bit(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def upscale(G: torch.nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """``(1, 3, h, w)`` in [0, 1] -> the net's 8-bit ``(1, 3, 4h, 4w)`` in [0, 1]."""
    G.eval()
    with torch.no_grad():
        return eight_bit((G(lr * 2 - 1) + 1) / 2)


def adapt(G: torch.nn.Module, lr: torch.Tensor, steps: int, *, lr_rate: float, batch: int, crop: int,
          seed: int) -> torch.nn.Module:
    """A copy of ``G`` trained ``steps`` Adam steps to map crops of ``lr`` bicubic / 4 back to ``lr``."""
    net = copy.deepcopy(G).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr_rate, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(seed)
    h, w = lr.shape[-2:]
    c = min(crop, h, w) // SCALE * SCALE
    for _ in range(steps):
        targets = []
        for _ in range(batch):
            y = int(torch.randint(h - c + 1, (), generator=gen))
            x = int(torch.randint(w - c + 1, (), generator=gen))
            t = lr[:, :, y:y + c, x:x + c]
            if torch.rand((), generator=gen) < 0.5:
                t = t.flip(3)
            targets.append(torch.rot90(t, int(torch.randint(4, (), generator=gen)), (2, 3)))
        target = torch.cat(targets)
        son = eight_bit(imresize(target, 1 / SCALE))
        loss = F.l1_loss(net(son * 2 - 1), target * 2 - 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


def photos(folder: Path) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, HR, LR)`` per photo: HR cropped to a multiple of 4, LR its 8-bit bicubic / 4, ``(1, 3, ., .)``."""
    out = []
    for p in list_images(folder):
        img = to_channels(read_image(p), 3)
        h, w = img.shape[0] // SCALE * SCALE, img.shape[1] // SCALE * SCALE
        hr = torch.from_numpy(np.ascontiguousarray(img[:h, :w])).permute(2, 0, 1)[None].float() / max_value(img.dtype)
        out.append((p.name, hr, eight_bit(imresize(hr, 1 / SCALE))))
    return out


def train_demo(out: Path, seed: int) -> torch.nn.Module:
    import make_sr

    import i2i
    from i2i.recipes import load_config

    data = out / "sr"
    if not (data / "train").is_dir():
        make_sr.build(ROOT / "datasets" / "sample" / "photos", data)
    cfg = load_config(ROOT / "configs/srgan/demo.yaml",
                      [f"data.root={data / 'train'}", f"data.val_root={data / 'test'}", f"output_dir={out}",
                       f"name=sr_s{seed}", f"seed={seed}", "train.progress=false", "train.val_every=0",
                       "data.num_workers=0"])
    import shutil

    shutil.rmtree(out / cfg.name, ignore_errors=True)  # this study's own earlier run of the same name
    trainer = i2i.Trainer(cfg)
    trainer.fit()
    return trainer.pipeline.nets["G"].cpu()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heldout", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, nargs="+", default=[25, 100])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    images = photos(args.heldout)
    for seed in args.seeds:
        G = train_demo(args.out, seed)
        base = {name: float(psnr(upscale(G, lr), hr, y=True, border=SCALE)) for name, hr, lr in images}
        print(f"seed {seed}: unadapted Y-PSNR {statistics.mean(base.values()):.3f} dB over {len(images)} photos",
              flush=True)
        for n in args.steps:
            gains, seconds = [], []
            for i, (name, hr, lr) in enumerate(images):
                t0 = time.perf_counter()
                net = adapt(G, lr, n, lr_rate=args.lr, batch=args.batch, crop=args.crop, seed=seed * 1000 + i)
                pred = upscale(net, lr)
                seconds.append(time.perf_counter() - t0)
                gains.append(float(psnr(pred, hr, y=True, border=SCALE)) - base[name])
            print(f"  --adapt {n}: gain {statistics.mean(gains):+.3f} dB mean, {statistics.median(gains):+.3f} "
                  f"median, {min(gains):+.3f} to {max(gains):+.3f}; {statistics.median(seconds):.1f} s per image "
                  f"(median)", flush=True)


if __name__ == "__main__":
    main()
