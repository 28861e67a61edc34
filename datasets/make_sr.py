"""Build a super-resolution set (HR images only) from a folder of photos.

``train/``: non-overlapping ``--tile``-pixel tiles from the first 70 % of each photo's
longer side. ``test/``: the remaining 30 % of each photo as one image (held out: the
model never sees these pixels). LR images are made by i2i at training / evaluation time.

  python datasets/make_sr.py --out data/sr
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from make_paired import split_regions  # noqa: E402

from i2i.data.io import list_images, read_image, to_channels, write_image  # noqa: E402


def build(photos: Path, out: Path, *, tile: int = 128) -> dict[str, int]:
    """Write ``out/train/*.png`` tiles and ``out/test/*.png`` held-out strips."""
    counts = {"train": 0, "test": 0}
    for f in list_images(photos):
        rgb = to_channels(read_image(f), 3)
        regions = split_regions(rgb.shape)
        y0, y1, x0, x1 = regions["train"]
        for y in range(y0, y1 - tile + 1, tile):
            for x in range(x0, x1 - tile + 1, tile):
                write_image(out / "train" / f"{f.stem}_{y:04d}_{x:04d}.png", rgb[y : y + tile, x : x + tile])
                counts["train"] += 1
        y0, y1, x0, x1 = regions["test"]
        write_image(out / "test" / f"{f.stem}.png", rgb[y0:y1, x0:x1])
        counts["test"] += 1
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=Path, default=HERE / "sample" / "photos")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tile", type=int, default=128)
    a = p.parse_args()
    c = build(a.photos, a.out, tile=a.tile)
    print(f"wrote {c['train']} train tiles and {c['test']} held-out test images under {a.out}")


if __name__ == "__main__":
    main()
