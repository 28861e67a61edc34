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
import numpy as np  # noqa: E402
import torch  # noqa: E402
from make_paired import split_regions  # noqa: E402

from i2i.data.io import list_images, read_image, to_channels, write_image  # noqa: E402
from i2i.data.resize import imresize  # noqa: E402


def _downscaled(rgb: np.ndarray, factor: float) -> np.ndarray:
    """MATLAB-style antialiased bicubic downscale of an 8-bit image, rounded to 8 bits."""
    t = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)
    return imresize(t, factor).clamp(0, 255).round().permute(1, 2, 0).numpy().astype(np.uint8)


def build(photos: Path, out: Path, *, tile: int = 128, scales: tuple[float, ...] = (1.0,)) -> dict[str, int]:
    """Write ``out/train/*.png`` tiles and ``out/test/*.png`` held-out strips. ``scales``: the
    train region is also tiled downscaled by each factor (MATLAB bicubic): the same scenes with
    their detail at other frequencies, for a tiny photo set."""
    counts = {"train": 0, "test": 0}
    for f in list_images(photos):
        rgb = to_channels(read_image(f), 3)
        regions = split_regions(rgb.shape)
        y0, y1, x0, x1 = regions["train"]
        for factor in scales:
            region = rgb[y0:y1, x0:x1] if factor == 1 else _downscaled(rgb[y0:y1, x0:x1], factor)
            tag = "" if factor == 1 else f"_s{round(factor * 100):03d}"
            for y in range(0, region.shape[0] - tile + 1, tile):
                for x in range(0, region.shape[1] - tile + 1, tile):
                    write_image(out / "train" / f"{f.stem}{tag}_{y0 + y:04d}_{x0 + x:04d}.png",
                                region[y : y + tile, x : x + tile])
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
    p.add_argument("--scales", type=float, nargs="+", default=[1.0],
                   help="also tile the train region downscaled by these")
    a = p.parse_args()
    c = build(a.photos, a.out, tile=a.tile, scales=tuple(a.scales))
    print(f"wrote {c['train']} train tiles and {c['test']} held-out test images under {a.out}")


if __name__ == "__main__":
    main()
