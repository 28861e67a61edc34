"""The docs' "only a region" picture: a bundled photo converted whole and with a feathered mask.

    python tools/mask_figure.py runs/cyclegan_demo/checkpoints/last.pt docs/images/mask.png

The mask is a disc in the middle of the photo, feathered by ``--feather`` pixels. Prints how many
pixels outside the mask changed (must be 0) and writes the PNG: input, mask, whole translation,
masked translation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from i2i import Translator

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="a translation model file")
    ap.add_argument("output", help="PNG to write")
    ap.add_argument("--side", type=int, default=192, help="the photo is resized to this width")
    ap.add_argument("--feather", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photo = Image.open(sorted((ROOT / "datasets" / "sample" / "photos").iterdir())[0]).convert("RGB")
    h = round(photo.height * args.side / photo.width) // 8 * 8
    img = np.asarray(photo.resize((args.side, h), Image.BICUBIC))
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.circle(mask, (args.side // 2, h // 2), min(args.side, h) // 3, 255, -1)
    tr = Translator.from_file(args.checkpoint, device="cpu")
    whole, masked = tr(img), tr(img, mask=mask, feather=args.feather)
    changed = int((masked[mask == 0] != img[mask == 0]).any(axis=-1).sum())
    print(f"pixels outside the mask that changed: {changed} of {int((mask == 0).sum())}")
    gap = np.full((h, 6, 3), 255, np.uint8)
    panels = [img, np.repeat(mask[:, :, None], 3, 2), whole, masked]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([p for q in panels for p in (q, gap)][:-1], axis=1)).save(args.output)
    print(f"wrote {args.output}: input, mask, whole translation, masked translation (feather {args.feather} px)")


if __name__ == "__main__":
    main()
