"""Build a paired training set (A/ + B/ folders) from a folder of photos.

Each photo is split along its longer side: crops for ``train/`` come from the first
70 %, crops for ``test/`` from the last 30 %, so test pairs are pixels the model never
saw. Crops have a random size between ``size`` and ``2*size`` (resized to ``size``).

Tasks (A -> B):
  restore      A = the colour crop blurred, with sensor-like noise and JPEG artefacts, B = the
               clean crop (photo restoration; the degradation is drawn per crop from --seed)
  gray2color   A = luma (1 channel), B = the colour crop      (colourisation)
  edges2photo  A = Canny edges, black on white (1 channel), B = the colour crop

  python datasets/make_paired.py --out data/restore --task restore
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from i2i.data.io import list_images, read_image, to_channels, write_image  # noqa: E402

HERE = Path(__file__).resolve().parent


RESTORE_BLUR = (0.3, 0.8)  # Gaussian blur sigma range, pixels
RESTORE_NOISE = (15.0, 30.0)  # Gaussian noise sigma range, 8-bit levels (per channel)
RESTORE_JPEG = (40, 80)  # JPEG quality range


def degrade(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A restoration task's input: ``rgb`` blurred, with Gaussian noise and JPEG compression,
    each of a strength drawn from ``rng`` (:data:`RESTORE_BLUR`, :data:`RESTORE_NOISE`,
    :data:`RESTORE_JPEG`); ``(H, W, 3)`` uint8."""
    sigma = float(rng.uniform(*RESTORE_BLUR))
    x = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), sigma)
    x = x + rng.normal(0.0, float(rng.uniform(*RESTORE_NOISE)), x.shape).astype(np.float32)
    x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    quality = int(rng.integers(RESTORE_JPEG[0], RESTORE_JPEG[1] + 1))
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(x, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def make_a(task: str, rgb: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """The A image of a colour crop for ``task``: ``(H, W, 1)`` uint8, or ``(H, W, 3)`` for
    ``restore`` (which draws its degradation from ``rng``)."""
    if task == "restore":
        return degrade(rgb, rng if rng is not None else np.random.default_rng(0))
    gray = to_channels(rgb, 1)
    if task == "gray2color":
        return gray
    edges = cv2.Canny(cv2.GaussianBlur(gray[:, :, 0], (3, 3), 0), 80, 160)
    return (255 - edges)[:, :, None]


def random_crop(img: np.ndarray, region: tuple[int, int, int, int], size: int, rng: np.random.Generator) -> np.ndarray:
    """A square crop of random side in [size, 2*size] inside ``region`` (y0, y1, x0, x1), resized to ``size``."""
    y0, y1, x0, x1 = region
    side = int(rng.integers(size, min(2 * size, y1 - y0, x1 - x0) + 1))
    y = int(rng.integers(y0, y1 - side + 1))
    x = int(rng.integers(x0, x1 - side + 1))
    crop = img[y : y + side, x : x + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) if side != size else crop


def split_regions(shape: tuple[int, ...]) -> dict[str, tuple[int, int, int, int]]:
    """Train region (first 70 % of the longer side) and test region (the rest) as (y0, y1, x0, x1)."""
    h, w = shape[:2]
    if w >= h:
        cut = int(0.7 * w)
        return {"train": (0, h, 0, cut), "test": (0, h, cut, w)}
    cut = int(0.7 * h)
    return {"train": (0, cut, 0, w), "test": (cut, h, 0, w)}


def build(photos: Path, out: Path, *, task: str, size: int, n_train: int, n_test: int, seed: int) -> dict[str, int]:
    """Write ``out/{train,test}/{A,B}/*.png``; returns the number of pairs per split."""
    files = list_images(photos)
    if not files:
        raise SystemExit(f"no photos found under '{photos}'")
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "test": 0}
    for f in files:
        rgb = to_channels(read_image(f), 3)
        regions = split_regions(rgb.shape)
        for split, n in (("train", n_train), ("test", n_test)):
            y0, y1, x0, x1 = regions[split]
            if min(y1 - y0, x1 - x0) < size:
                raise SystemExit(f"photo '{f}' is too small for {size}-pixel crops in its {split} region; use a "
                                 "smaller --size")
            for i in range(n):
                b = random_crop(rgb, regions[split], size, rng)
                name = f"{f.stem}_{i:03d}.png"
                write_image(out / split / "A" / name, make_a(task, b, rng))
                write_image(out / split / "B" / name, b)
                counts[split] += 1
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=HERE / "sample" / "photos")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--task", choices=["restore", "gray2color", "edges2photo"], default="restore")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--train-per-photo", type=int, default=40)
    p.add_argument("--test-per-photo", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    counts = build(a.photos, a.out, task=a.task, size=a.size, n_train=a.train_per_photo, n_test=a.test_per_photo,
                   seed=a.seed)
    print(f"wrote {counts['train']} train and {counts['test']} test pairs ({a.task}, {a.size}px) under {a.out}")


if __name__ == "__main__":
    main()
