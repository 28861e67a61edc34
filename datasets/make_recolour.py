"""Unpaired shape recolouring: the task CUT is made for, with a known answer.

Each image holds 1-3 soft-edged discs or rectangles (radius or half-side 12-25 % of the side; the
shapes cover 15-35 % of the image). Domain A paints them red (0.90, 0.20, 0.15) on dark blue
(0.12, 0.12, 0.25); domain B yellow (0.95, 0.85, 0.25) on teal (0.10, 0.45, 0.45). Training images
of A and B are drawn from different masks, so no B image is the answer to an A image; ``testB/``
holds ``testA/``'s masks in B's colours under the same names: the true answer for A -> B, which
``i2i eval CKPT --data OUT`` scores against. The only mapping the two distributions allow is the
recolouring, and it keeps every edge where it is: what PatchNCE rewards.

``--only disc``: only a region changes. Both domains have red discs and rectangles on dark blue; in B
the discs are yellow (``--only rect``: the rectangles; ``--only shapes``: every shape, the background
stays dark blue). ``trainA_mask/``, ``trainB_mask/`` and ``testA_mask/`` hold where A and B
differ (white; one pixel wider for the soft edges): what ``loss.mask_conservation`` and
``tools/mask_conservation_study.py`` read.

  python datasets/make_recolour.py --out data/recolour            # 60 + 60 training images, 40 test pairs, 32 px
  python datasets/make_recolour.py --out data/discs --only disc   # recolour the discs, keep the rest
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


def shape_masks(size: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """1-3 shapes as ``(kind, (size, size) float32 mask in [0, 1])``, kind ``disc`` or ``rect``, each
    drawn at 4x and reduced (anti-aliased), then blurred (sigma 0.5 px) so the edges are soft;
    redrawn until together they cover 15-35 % of the image."""
    big = size * 4
    while True:
        shapes = []
        for _ in range(int(rng.integers(1, 4))):
            m = np.zeros((big, big), np.uint8)
            r = int(rng.uniform(0.12, 0.25) * big)
            cy, cx = (int(v) for v in rng.integers(r, big - r, 2))
            if rng.random() < 0.5:
                cv2.circle(m, (cx, cy), r, 255, -1)
                kind = "disc"
            else:
                ry = int(rng.uniform(0.12, 0.25) * big)
                cv2.rectangle(m, (cx - r, cy - ry), (cx + r, cy + ry), 255, -1)
                kind = "rect"
            small = cv2.resize(m.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_AREA)
            shapes.append((kind, cv2.GaussianBlur(small, (0, 0), 0.5)))
        if 0.15 <= float(shape_mask_of(shapes).mean()) <= 0.35:
            return shapes


def shape_mask_of(shapes: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """The union of the shapes' masks."""
    return np.maximum.reduce([m for _, m in shapes])


def shape_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size)`` float32 mask in [0, 1]: 1-3 discs or rectangles drawn together at 4x and
    reduced (anti-aliased), then blurred (sigma 0.5 px) so the edges are soft; redrawn until the
    shapes cover 15-35 % of the image (the whole-image task; :func:`shape_masks` keeps them apart)."""
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


def paint_only(shapes: list[tuple[str, np.ndarray]], domain: str, only: str) -> np.ndarray:
    """A's colours everywhere except the shapes of kind ``only``, which take ``domain``'s shape colour;
    painted in order, later shapes over earlier ones: ``(H, W, 3)`` uint8."""
    a_fg, bg = COLOURS["A"]
    img = np.broadcast_to(np.array(bg, np.float32), (*shapes[0][1].shape, 3)).copy()
    for kind, m in shapes:
        fg = np.array(COLOURS[domain][0] if only in (kind, "shapes") else a_fg, np.float32)
        img = img * (1 - m[..., None]) + fg * m[..., None]
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def changed(shapes: list[tuple[str, np.ndarray]], only: str) -> np.ndarray:
    """Where ``paint_only`` in A and in B differ, one pixel wider: ``(H, W, 1)`` uint8, 255 there."""
    diff = np.abs(paint_only(shapes, "A", only).astype(int) - paint_only(shapes, "B", only).astype(int)).max(2) > 0
    return (cv2.dilate(diff.astype(np.uint8), np.ones((3, 3), np.uint8)) * 255)[..., None]


def build(out: Path, *, n_train: int = 60, n_test: int = 40, size: int = 32, seed: int = 0,
          only: str | None = None) -> int:
    """Write ``trainA/ trainB/`` (``n_train`` each, from different masks) and ``testA/ testB/``
    (``n_test`` pairs sharing masks) under ``out``; with ``only`` ("disc", "rect" or "shapes") just those shapes
    change, and the ``*_mask/`` folders say where. Returns the number of images written."""
    rng = np.random.default_rng(seed)
    if only is not None:
        return _build_only(out, n_train, n_test, size, rng, only)
    for i in range(n_train):
        write_image(out / "trainA" / f"{i:04d}.png", paint(shape_mask(size, rng), "A"))
        write_image(out / "trainB" / f"{i:04d}.png", paint(shape_mask(size, rng), "B"))
    for i in range(n_test):
        m = shape_mask(size, rng)
        write_image(out / "testA" / f"{i:04d}.png", paint(m, "A"))
        write_image(out / "testB" / f"{i:04d}.png", paint(m, "B"))
    return 2 * (n_train + n_test)


def _build_only(out: Path, n_train: int, n_test: int, size: int, rng: np.random.Generator, only: str) -> int:
    if only not in ("disc", "rect", "shapes"):
        raise ValueError(f"only={only!r} must be 'disc', 'rect' or 'shapes'")
    for i in range(n_train):
        for domain in ("A", "B"):
            shapes = shape_masks(size, rng)
            write_image(out / f"train{domain}" / f"{i:04d}.png", paint_only(shapes, domain, only))
            write_image(out / f"train{domain}_mask" / f"{i:04d}.png", changed(shapes, only))
    for i in range(n_test):
        shapes = shape_masks(size, rng)
        write_image(out / "testA" / f"{i:04d}.png", paint_only(shapes, "A", only))
        write_image(out / "testB" / f"{i:04d}.png", paint_only(shapes, "B", only))
        write_image(out / "testA_mask" / f"{i:04d}.png", changed(shapes, only))
    return 2 * (n_train + n_test)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train", type=int, default=60, help="training images per domain")
    p.add_argument("--test", type=int, default=40, help="test pairs")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["disc", "rect", "shapes"], default=None,
                   help="recolour only these shapes (shapes: all of them), keep the background")
    args = p.parse_args()
    n = build(args.out, n_train=args.train, n_test=args.test, size=args.size, seed=args.seed, only=args.only)
    print(f"wrote {n} images to {args.out}")


if __name__ == "__main__":
    main()
