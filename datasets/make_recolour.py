"""Unpaired shape recolouring: the task CUT is made for, with a known answer.

Each image holds 1-3 soft-edged discs or rectangles (radius or half-side 12-25 % of the side; the
shapes cover 15-35 % of the image). Domain A paints them red (0.90, 0.20, 0.15) on dark blue
(0.12, 0.12, 0.25); domain B yellow (0.95, 0.85, 0.25) on teal (0.10, 0.45, 0.45). Training images
of A and B are drawn from different masks, so no B image is the answer to an A image; ``testB/``
holds ``testA/``'s masks in B's colours under the same names: the true answer for A -> B, which
``i2i eval CKPT --data OUT`` scores against. The only mapping the two distributions allow is the
recolouring, and it keeps every edge where it is: what PatchNCE rewards.

  python datasets/make_recolour.py --out data/recolour            # 60 + 60 training images, 40 test pairs, 32 px
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from i2i.data.io import write_image  # noqa: E402

COLOURS = {"A": ((0.90, 0.20, 0.15), (0.12, 0.12, 0.25)), "B": ((0.95, 0.85, 0.25), (0.10, 0.45, 0.45))}
"""Domain -> (shape colour, background colour), RGB in [0, 1]."""


def shape_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size)`` float32 mask in [0, 1]: 1-3 discs or rectangles, drawn at 4x and reduced
    (anti-aliased), then blurred (sigma 0.5 px) so the edges are soft; redrawn until the shapes
    cover 15-35 % of the image."""
    big = size * 4
    while True:
        m = np.zeros((big, big), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.uniform(0.12, 0.25) * big)
            cy, cx = (int(v) for v in rng.integers(r, big - r, 2))
            if rng.random() < 0.5:
                cv2.circle(m, (cx, cy), r, 255, -1)
            else:
                ry = int(rng.uniform(0.12, 0.25) * big)
                cv2.rectangle(m, (cx - r, cy - ry), (cx + r, cy + ry), 255, -1)
        small = cv2.resize(m.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), 0.5)
        if 0.15 <= float(small.mean()) <= 0.35:
            return small


def paint(mask: np.ndarray, domain: str) -> np.ndarray:
    """``mask`` painted in ``domain``'s colours: ``(H, W, 3)`` uint8."""
    fg, bg = (np.array(c, np.float32) for c in COLOURS[domain])
    img = bg * (1 - mask[..., None]) + fg * mask[..., None]
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def build(out: Path, *, n_train: int = 60, n_test: int = 40, size: int = 32, seed: int = 0) -> int:
    """Write ``trainA/ trainB/`` (``n_train`` each, from different masks) and ``testA/ testB/``
    (``n_test`` pairs sharing masks) under ``out``; returns the number of files written."""
    rng = np.random.default_rng(seed)
    for i in range(n_train):
        write_image(out / "trainA" / f"{i:04d}.png", paint(shape_mask(size, rng), "A"))
        write_image(out / "trainB" / f"{i:04d}.png", paint(shape_mask(size, rng), "B"))
    for i in range(n_test):
        m = shape_mask(size, rng)
        write_image(out / "testA" / f"{i:04d}.png", paint(m, "A"))
        write_image(out / "testB" / f"{i:04d}.png", paint(m, "B"))
    return 2 * (n_train + n_test)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train", type=int, default=60, help="training images per domain")
    p.add_argument("--test", type=int, default=40, help="test pairs")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    n = build(args.out, n_train=args.train, n_test=args.test, size=args.size, seed=args.seed)
    print(f"wrote {n} images to {args.out}")


if __name__ == "__main__":
    main()
