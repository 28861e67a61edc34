"""Build an unpaired two-domain set (trainA/ trainB/ testA/ testB/) with a known mapping.

Domain A: crops of photos. Domain B: a fixed colour transform applied to crops of
*other pixels*, so no training image of A has its counterpart in B. With ``--split
regions`` (default) every photo feeds both domains: A crops come from one half of its
training region (the first 70 % of the longer side) and B crops from the other half, so
the two domains show similar content, which is what lets an unpaired method find the
true mapping. With ``--split photos``, A and B come from different photos
(``--a-photos``). ``testA`` holds held-out crops from the last 30 % of each A photo
(never used for training) and ``testB`` the transform of exactly those crops under the
same names: the true answer for A -> B, which ``i2i eval CKPT --data OUT`` scores against.

Transforms: ``negative`` (255 - x), ``bgr`` (swap red and blue), ``warm`` (a fixed tone
curve: red up, blue down).

``--squares``: only a region changes. Every crop gets a square outlined in white (a third to a half
of the side) and gray inside (R = G = B); in B the transform is applied to that gray only. ``trainA_mask/``,
``trainB_mask/`` and ``testA_mask/`` hold the squares' insides (white): what
``loss.mask_conservation`` and ``tools/mask_conservation_study.py`` read.

  python datasets/make_unpaired.py --out data/negative --transform negative
  python datasets/make_unpaired.py --out data/squares --transform negative --squares
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from make_paired import random_crop, split_regions  # noqa: E402

from i2i.data.io import list_images, read_image, to_channels, write_image  # noqa: E402

TRANSFORMS = {
    "negative": lambda x: 255 - x,
    "bgr": lambda x: x[:, :, ::-1].copy(),
    "warm": lambda x: np.clip(x.astype(np.float32) * np.array([1.15, 1.0, 0.8]) + np.array([20, 5, 0]), 0,
                              255).astype(np.uint8),
}


def halves(region: tuple[int, int, int, int]) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Split a (y0, y1, x0, x1) region in two along its longer side."""
    y0, y1, x0, x1 = region
    if x1 - x0 >= y1 - y0:
        mid = (x0 + x1) // 2
        return (y0, y1, x0, mid), (y0, y1, mid, x1)
    mid = (y0 + y1) // 2
    return (y0, mid, x0, x1), (mid, y1, x0, x1)


def _square(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square's inside as a boolean ``(size, size)`` mask (its 1-pixel outline excluded)."""
    side = int(rng.integers(size // 3, size // 2 + 1))
    y0, x0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
    inside = np.zeros((size, size), bool)
    inside[y0 + 1 : y0 + side - 1, x0 + 1 : x0 + side - 1] = True
    return inside


def _with_square(crop: np.ndarray, inside: np.ndarray, fn: Any | None) -> np.ndarray:
    """``crop`` with the square outlined in white and gray inside (R = G = B: a cue a net can see);
    with ``fn``, that gray transformed."""
    out = crop.copy()
    ys, xs = np.nonzero(inside)
    out[ys.min() - 1 : ys.max() + 2, xs.min() - 1 : xs.max() + 2] = 255
    gray = np.repeat(crop.mean(axis=2, keepdims=True).round().astype(crop.dtype), 3, axis=2)
    out[inside] = (fn(gray) if fn is not None else gray)[inside]
    return out


def build(photos: Path, out: Path, *, transform: str, size: int, n_train: int, n_test: int, seed: int,
          split: str = "regions", a_photos: list[str] | None = None, squares: bool = False) -> dict[str, int]:
    """Write the four folders (and, with ``squares``, the masks); returns the number of images in each."""
    base = TRANSFORMS[transform]
    if squares:
        return _build_squares(photos, out, base, size, n_train, n_test, seed)
    fn = base
    files = list_images(photos)
    a_photos = a_photos or ["astronaut", "chelsea", "coffee"]
    missing = set(a_photos) - {f.stem for f in files}
    if split == "photos" and missing:
        raise SystemExit(f"--a-photos names not found under '{photos}': {', '.join(sorted(missing))}")
    rng = np.random.default_rng(seed)
    counts = {"trainA": 0, "trainB": 0, "testA": 0, "testB": 0}
    for f in files:
        rgb = to_channels(read_image(f), 3)
        regions = split_regions(rgb.shape)
        a_region, b_region = halves(regions["train"]) if split == "regions" else (regions["train"], regions["train"])
        in_a = split == "regions" or f.stem in a_photos
        in_b = split == "regions" or f.stem not in a_photos
        if in_a:
            for i in range(n_train):
                write_image(out / "trainA" / f"{f.stem}_{i:03d}.png", random_crop(rgb, a_region, size, rng))
                counts["trainA"] += 1
            for i in range(n_test):
                crop = random_crop(rgb, regions["test"], size, rng)
                write_image(out / "testA" / f"{f.stem}_{i:03d}.png", crop)
                write_image(out / "testB" / f"{f.stem}_{i:03d}.png", fn(crop))
                counts["testA"] += 1
                counts["testB"] += 1
        if in_b:
            for i in range(n_train):
                write_image(out / "trainB" / f"{f.stem}_{i:03d}.png", fn(random_crop(rgb, b_region, size, rng)))
                counts["trainB"] += 1
    return counts


def _build_squares(photos: Path, out: Path, fn: Any, size: int, n_train: int, n_test: int,
                   seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts = {"trainA": 0, "trainB": 0, "testA": 0, "testB": 0}
    for f in list_images(photos):
        rgb = to_channels(read_image(f), 3)
        regions = split_regions(rgb.shape)
        a_region, b_region = halves(regions["train"])
        for kind, region, n in (("train", a_region, n_train), ("train", b_region, n_train), ("test", regions["test"],
                                                                                           n_test)):
            domain = "B" if region is b_region else "A"
            for i in range(n):
                crop, inside = random_crop(rgb, region, size, rng), _square(size, rng)
                name = f"{f.stem}_{i:03d}.png"
                mask = (inside[:, :, None] * 255).astype(np.uint8)
                write_image(out / f"{kind}{domain}" / name, _with_square(crop, inside, fn if domain == "B" else None))
                write_image(out / f"{kind}{domain}_mask" / name, mask)
                counts[f"{kind}{domain}"] += 1
                if kind == "test":
                    write_image(out / "testB" / name, _with_square(crop, inside, fn))
                    counts["testB"] += 1
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=HERE / "sample" / "photos")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--transform", choices=sorted(TRANSFORMS), default="negative")
    p.add_argument("--split", choices=["regions", "photos"], default="regions")
    p.add_argument("--a-photos", nargs="+", default=["astronaut", "chelsea", "coffee"],
                   help="with --split photos: stems for domain A")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--train-per-photo", type=int, default=40)
    p.add_argument("--test-per-photo", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--squares", action="store_true",
                   help="only a square region changes (outlined in both domains); writes the masks too")
    a = p.parse_args()
    c = build(a.photos, a.out, transform=a.transform, size=a.size, n_train=a.train_per_photo, n_test=a.test_per_photo,
              seed=a.seed, split=a.split, a_photos=a.a_photos, squares=a.squares)
    print(f"wrote {c['trainA']} trainA, {c['trainB']} trainB, {c['testA']} testA (+ true testB) images under {a.out}")


if __name__ == "__main__":
    main()
