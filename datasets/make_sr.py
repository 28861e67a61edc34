"""Build a super-resolution set (HR images only) from a folder of photos.

``train/``: non-overlapping ``--tile``-pixel tiles from the first 70 % of each photo's
longer side. ``test/``: the remaining 30 % of each photo as one image (held out: the
model never sees these pixels). LR images are made by i2i at training / evaluation time.

``out/sr.yaml``: ``configs/srgan/my_photos.yaml`` pointed at these folders, with ``train.steps`` for
their size (:func:`steps_for`), so training on your own photos is one more line:

  python datasets/make_sr.py --out data/sr                          # the bundled photos
  python datasets/make_sr.py --photos MY_PHOTOS --out data/mine     # yours
  i2i train data/mine/sr.yaml
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


def steps_for(tiles: int) -> int:
    """The training steps for ``tiles`` 128-px training tiles: 1,650 per 42 tiles (the measured peak for
    the bundled photos), rounded to 50, between 1,650 and 10,000 (15 photos, 131 tiles: the gain rose
    from +1.14 dB at 1,650 steps to +1.27 at 5,000 and +1.29 at 10,000; docs/benchmarks.md)."""
    return int(min(10_000, max(1650, round(1650 * tiles / 42 / 50) * 50)))


def write_config(out: Path, tiles: int) -> Path:
    """``out/sr.yaml``: the my_photos recipe with ``out``'s folders and :func:`steps_for` steps."""
    import yaml

    cfg = yaml.safe_load((HERE.parent / "configs" / "srgan" / "my_photos.yaml").read_text())
    cfg["data"].update(root=str((out / "train").resolve()), val_root=str((out / "test").resolve()))
    cfg["train"]["steps"] = steps_for(tiles)
    path = out / "sr.yaml"
    path.write_text(f"# configs/srgan/my_photos.yaml for the {tiles} tiles under {out} (datasets/make_sr.py)\n"
                    + yaml.safe_dump(cfg, sort_keys=False))
    return path


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
    if not c["train"]:
        sys.exit(f"no {a.tile}-pixel training tile fits in '{a.photos}': use photos at least {a.tile * 10 // 7 + 1} "
                 "pixels on their longer side")
    config = write_config(a.out, c["train"])
    print(f"train with: i2i train {config}   ({steps_for(c['train'])} steps for {c['train']} tiles)")


if __name__ == "__main__":
    main()
