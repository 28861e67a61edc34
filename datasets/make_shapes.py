"""Synthetic shapes for generation tests and demos: soft discs and squares on black.

Each shape has a random size, position and brightness and is blurred (sigma 1 pixel):
crisp binary shapes let a DCGAN discriminator win before the generator learns anything
(seen: collapse within 100 steps), soft ones train like Fashion-MNIST.

``out/disc/*.png`` and ``out/square/*.png`` (one sub-folder per class, so the same set
serves unconditional and class-conditional models). Random sizes and positions.

  python datasets/make_shapes.py --out data/shapes --n 2000 --size 32
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from i2i.data.io import write_image  # noqa: E402


def shape_image(kind: str, size: int, rng: np.random.Generator, *, crisp: bool = False) -> np.ndarray:
    """One ``(size, size, 1)`` uint8 image of a filled ``disc`` or ``square``; ``crisp``: binary
    (0 or 255, no anti-aliasing, no blur), the case where a DCGAN collapses."""
    img = np.zeros((size, size), np.uint8)
    r = int(rng.integers(size // 8, size // 3))
    cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
    value = int(rng.integers(128, 256))
    value = 255 if crisp else value
    if kind == "disc":
        cv2.circle(img, (cx, cy), r, value, -1, lineType=cv2.LINE_8 if crisp else cv2.LINE_AA)
    else:
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), value, -1)
    return img[:, :, None] if crisp else cv2.GaussianBlur(img, (0, 0), 1.0)[:, :, None]


def build(out: Path, *, n: int = 1000, size: int = 32, seed: int = 0, crisp: bool = False) -> int:
    rng = np.random.default_rng(seed)
    for i in range(n):
        kind = ("disc", "square")[i % 2]
        write_image(out / kind / f"{i:05d}.png", shape_image(kind, size, rng, crisp=crisp))
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crisp", action="store_true", help="binary shapes, no blur (DCGAN collapses on these)")
    a = p.parse_args()
    print(f"wrote {build(a.out, n=a.n, size=a.size, seed=a.seed, crisp=a.crisp)} images under {a.out}")


if __name__ == "__main__":
    main()
