"""The docs' seamless-texture picture: a tileable texture made from a bundled photo, converted
plainly and with ``--seamless wrap``, each output shown as a 2x2 tiling, with the seam measured.

    python tools/seamless_figure.py runs/sr_demo/checkpoints/last.pt docs/images/seamless.png

The texture is a 2x2 mirror mosaic of a crop of datasets/sample/photos (so it tiles exactly). The
figure of merit: near the border, how far each output is from what the model gives in the middle of
an endless tiling of the texture (the centre of a 3x3 mosaic's output), in 8-bit levels. Prints a
markdown table; writes the PNG (input, plain, seamless; each tiled 2x2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from i2i import Translator

ROOT = Path(__file__).resolve().parent.parent


def border_error(out: np.ndarray, ideal: np.ndarray, band: int) -> tuple[float, float]:
    """Mean and max absolute difference (8-bit levels) from ``ideal`` within ``band`` pixels of the
    border: where a tiling shows its seams."""
    d = np.abs(out.astype(np.int64) - ideal.astype(np.int64))
    mask = np.zeros(d.shape[:2], bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return float(d[mask].mean()), float(d[mask].max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a translation model file (i2i or another project's)")
    ap.add_argument("output", help="PNG to write")
    ap.add_argument("--crop", type=int, default=40, help="side of the photo crop (the texture is twice that)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photo = sorted((ROOT / "datasets" / "sample" / "photos").iterdir())[0]
    crop = np.asarray(Image.open(photo).convert("RGB"))[:args.crop, :args.crop]
    top = np.concatenate([crop, crop[:, ::-1]], axis=1)
    texture = np.ascontiguousarray(np.concatenate([top, top[::-1]], axis=0))
    outs = {"input": texture}
    plain = Translator.from_file(args.checkpoint, device="cpu")
    outs["plain"] = plain(texture)
    outs["seamless wrap"] = Translator.from_file(args.checkpoint, device="cpu", seamless="wrap")(texture)
    h, w = outs["plain"].shape[:2]
    ideal = plain(np.tile(texture, (3, 3, 1)))[h : 2 * h, w : 2 * w]  # the middle of an endless tiling
    band = 4 * plain.scale
    print(f"| output | within {band} px of the border: mean / max difference from the endless tiling's (levels) |")
    print("|---|---|")
    for name in ("plain", "seamless wrap"):
        mean, most = border_error(outs[name], ideal, band)
        print(f"| {name} | {mean:.2f} / {most:.0f} |")
    for name in ("plain", "seamless wrap"):  # the difference from the endless tiling, x16
        diff = np.abs(outs[name].astype(np.int64) - ideal.astype(np.int64)) * 16
        outs[f"{name} error x16"] = (255 - np.clip(diff, 0, 255)).astype(np.uint8)
    side = max(o.shape[0] for o in outs.values())
    tiles = [np.asarray(Image.fromarray(np.tile(o, (2, 2, 1))).resize((2 * side, 2 * side), Image.NEAREST))
             for o in outs.values()]
    gap = np.full((2 * side, 8, 3), 255, np.uint8)
    row = [part for t in tiles for part in (t, gap)][:-1]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(row, axis=1)).save(args.output)
    print(f"wrote {args.output}: {', '.join(outs)}; each tiled 2x2 (errors: white is none)")


if __name__ == "__main__":
    main()
