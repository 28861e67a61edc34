"""Build a small edges -> shoes paired set from Fashion-MNIST (offline).

Classes 5 (sandal), 7 (sneaker) and 9 (ankle boot); A = Canny edges of the shoe, B = the
shoe, both 1-channel, padded from 28 to 32 pixels (black border, as the images' background).
Train pairs come from Fashion-MNIST's training split, test pairs from its test split.

  python datasets/make_edges2shoes.py --out data/edges2shoes
  (Fashion-MNIST's original gz files: Debian package dataset-fashion-mnist, which installs
  them under /usr/share/datasets/fashion-mnist/, or --fmnist DIR)
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import cv2
import numpy as np

SHOES = (5, 7, 9)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped) as a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def edges(img: np.ndarray) -> np.ndarray:
    """Canny edges (0 / 255) of a uint8 gray image."""
    return cv2.Canny(cv2.GaussianBlur(img, (3, 3), 0), 50, 150)


def build(fmnist: Path, out: Path, *, n_train: int, n_test: int, seed: int = 0) -> dict[str, int]:
    counts = {}
    rng = np.random.default_rng(seed)
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = read_idx(fmnist / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(fmnist / f"{prefix}-labels-idx1-ubyte.gz")
        idx = np.flatnonzero(np.isin(labels, SHOES))
        idx = np.sort(rng.choice(idx, size=min(n, idx.size), replace=False))
        for sub in ("A", "B"):
            (out / split / sub).mkdir(parents=True, exist_ok=True)
        for i in idx:
            shoe = np.pad(images[i], 2)
            cv2.imwrite(str(out / split / "A" / f"{i:05d}.png"), edges(shoe))
            cv2.imwrite(str(out / split / "B" / f"{i:05d}.png"), shoe)
        counts[split] = int(idx.size)
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fmnist", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if not (a.fmnist / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"no Fashion-MNIST files in '{a.fmnist}': apt install dataset-fashion-mnist, or pass "
                         "--fmnist DIR")
    counts = build(a.fmnist, a.out, n_train=a.n_train, n_test=a.n_test, seed=a.seed)
    print(f"wrote {counts['train']} train and {counts['test']} test pairs (edges -> shoes, 32px) under {a.out}")


if __name__ == "__main__":
    main()
