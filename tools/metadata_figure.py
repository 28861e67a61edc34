"""The docs' "metadata kept" picture: a wide-gamut (Display P3) phone photo converted with its
colour profile kept, against the same output with the profile dropped (what converters that
write pixels only give), both as a colour-managed viewer shows them.

    python tools/metadata_figure.py runs/demo_seed0/checkpoints/last.pt docs/images/metadata.png

The bundled coffee photo (the most saturated) is re-encoded in Display P3 (its colours unchanged: sRGB -> P3 through
LittleCMS) and saved as a JPEG with the P3 profile, EXIF (camera, date, GPS) and orientation 1;
``i2i convert`` turns it into a PNG. Panels: the input as shown, i2i's output as shown (profile
kept), the output's pixels shown without a profile (read as sRGB: duller). Prints the mean
colour difference (CIE76 delta E) of each output against the input as shown, and the tags kept.
"""

from __future__ import annotations

import argparse
import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms

from i2i.cli import main as i2i_main
from i2i.data.metadata import read_metadata

ROOT = Path(__file__).resolve().parent.parent
# Display P3 colorants adapted to D50 (as in Apple's profile) and the D50 white
P3 = {b"rXYZ": (0.515121, 0.241196, -0.001053), b"gXYZ": (0.291977, 0.692245, 0.041885),
      b"bXYZ": (0.157104, 0.066574, 0.784073), b"wtpt": (0.964203, 1.0, 0.824905)}


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def display_p3_profile() -> bytes:
    """A minimal ICC v2 display profile for Display P3: the P3 colorants, the sRGB tone curve
    (a 1024-entry table), a description. LittleCMS reads it as any matrix/TRC profile."""
    x = np.linspace(0, 1, 1024)
    curve = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    trc = b"curv" + bytes(4) + struct.pack(">I", 1024) + (np.round(curve * 65535).astype(">u2")).tobytes()
    name = b"Display P3 (i2i figure)"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + b"\x00" + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"cprt", b"text" + bytes(4) + b"No copyright\x00")]
    tags += [(sig, b"XYZ " + bytes(4) + b"".join(_s15(v) for v in xyz)) for sig, xyz in P3.items()]
    tags += [(b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, b"mntr", b"RGB ", b"XYZ ") + bytes(12)
    header += b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4) + b"".join(_s15(v) for v in P3[b"wtpt"]) + bytes(4 + 16 + 28)
    return header + struct.pack(">I", len(tags)) + table + body


def shown(img: Image.Image, icc: bytes | None) -> np.ndarray:
    """What a colour-managed viewer shows on an sRGB screen: ``img`` converted from its profile
    (sRGB when it has none) to sRGB."""
    if icc is None:
        return np.asarray(img.convert("RGB"))
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return np.asarray(ImageCms.profileToProfile(img.convert("RGB"), src, ImageCms.createProfile("sRGB")))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIE76 colour difference between two sRGB uint8 images."""
    lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    la, lb = (np.asarray(ImageCms.applyTransform(Image.fromarray(x), lab)).astype(np.float64) for x in (a, b))
    la[..., 0] *= 100 / 255
    lb[..., 0] *= 100 / 255
    la[..., 1:] -= 128
    lb[..., 1:] -= 128
    return float(np.sqrt(((la - lb) ** 2).sum(-1)).mean())


def phone_photo(path: Path, side: int) -> bytes:
    """A bundled photo as a phone writes it in Display P3: the JPEG with profile and EXIF."""
    photo = Image.open(ROOT / "datasets" / "sample" / "photos" / "coffee.jpg").convert("RGB")  # the most saturated
    h = round(photo.height * side / photo.width) // 8 * 8
    photo = photo.resize((side, h), Image.BICUBIC)
    p3 = display_p3_profile()
    p3_pixels = ImageCms.profileToProfile(photo, ImageCms.createProfile("sRGB"),
                                          ImageCms.ImageCmsProfile(io.BytesIO(p3)))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "PhoneMaker", "Phone 1", 1
    exif.get_ifd(0x8769)[0x9003] = "2026:12:07 10:00:00"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 0.0)})
    p3_pixels.save(path, quality=95, icc_profile=p3, exif=exif)
    return p3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a translation model file")
    ap.add_argument("output", help="PNG to write")
    ap.add_argument("--side", type=int, default=192, help="the photo is resized to this width")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        p3 = phone_photo(src / "phone.jpg", args.side)
        assert i2i_main(["convert", args.model, str(src), str(out), "--ext", "png", "--quiet"]) == 0
        before = read_metadata((src / "phone.jpg").read_bytes())
        result = out / "phone.png"
        after = read_metadata(result.read_bytes())
        with Image.open(src / "phone.jpg") as im:
            ref = shown(im, p3)
        with Image.open(result) as im:
            kept, dropped = shown(im, after.icc), shown(im, None)
    if kept.shape != ref.shape:  # super-resolution: compare at the output's size
        ref = np.asarray(Image.fromarray(ref).resize(kept.shape[1::-1], Image.BICUBIC))
    print(f"input tags {before.kinds()}, output tags {after.kinds()}, profile byte-equal: {after.icc == p3}")
    print(f"delta E against the input as shown: profile kept {delta_e(kept, ref):.2f}, "
          f"profile dropped {delta_e(dropped, ref):.2f}")
    gap = np.full((ref.shape[0], 6, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([ref, gap, kept, gap, dropped], axis=1)).save(args.output)
    print(f"wrote {args.output}: input (P3 JPEG) | i2i output, profile kept | the same pixels, profile dropped")


if __name__ == "__main__":
    main()
