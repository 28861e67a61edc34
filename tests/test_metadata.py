"""Metadata kept (issue 44, part 1): EXIF, ICC, XMP and IPTC carried from inputs into JPEG, PNG and
WebP outputs, with what must change changed; ``--metadata strip`` keeps the ICC profile alone."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from torch import nn

from i2i.cli import main
from i2i.convert import ConvertOptions
from i2i.data.io import read_image
from i2i.data.metadata import IPTC_MARK, Metadata, embed, read_metadata
from i2i.recipes import config_from_dict
from i2i.translator import Translator

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description rdf:about="" title="t"/></rdf:RDF></x:xmpmeta>'
IPTC = b"8BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02\x05\x00\x05Title\x00"


class Up(nn.Module):
    """x2 nearest upscaling with a slight tint: a stand-in SR net."""

    in_channels = out_channels = 3
    scale = 2

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return nn.functional.interpolate(x * 0.9 * self.w, scale_factor=2, mode="nearest")


def _translator() -> Translator:
    tr = Translator(Up(), config_from_dict({}), direction="a_to_b", device="cpu")
    tr.scale = 2
    return tr


def _with_thumbnail(tiff: bytes) -> bytes:
    """The EXIF block with an IFD1 (a thumbnail's directory) appended and linked from IFD0."""
    order = "little" if tiff[:2] == b"II" else "big"
    ifd0 = int.from_bytes(tiff[4:8], order)
    n = int.from_bytes(tiff[ifd0 : ifd0 + 2], order)
    link = ifd0 + 2 + 12 * n
    ifd1 = len(tiff)
    entry = (0x0103).to_bytes(2, order) + (3).to_bytes(2, order) + (1).to_bytes(4, order) + (6).to_bytes(4, order)
    tail = (1).to_bytes(2, order) + entry + (0).to_bytes(4, order)
    return tiff[:link] + ifd1.to_bytes(4, order) + tiff[link + 4 :] + tail


def _photo_jpeg(path, h=30, w=40) -> np.ndarray:
    """A JPEG as a phone writes it: EXIF with orientation 6, camera, date and GPS, a thumbnail
    directory, an ICC profile, XMP and IPTC. Returns the stored (not yet rotated) pixels."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110] = 6, "PhoneMaker", "Phone 1"
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0xA002], sub[0xA003] = "2026:12:07 10:00:00", w, h
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.5)
    block = exif.tobytes()[6:]
    stored = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, "JPEG", quality=95, exif=b"Exif\x00\x00" + _with_thumbnail(block),
                                 icc_profile=ICC, xmp=XMP)
    data = buf.getvalue()
    app13 = b"\xff\xed" + (len(IPTC_MARK + IPTC) + 2).to_bytes(2, "big") + IPTC_MARK + IPTC
    path.write_bytes(data[:2] + app13 + data[2:])
    return stored


def _exif(meta_exif: bytes) -> Image.Exif:
    e = Image.Exif()
    e.load(meta_exif)
    return e


def _ifd1_link(tiff: bytes) -> int:
    order = "little" if tiff[:2] == b"II" else "big"
    ifd0 = int.from_bytes(tiff[4:8], order)
    n = int.from_bytes(tiff[ifd0 : ifd0 + 2], order)
    return int.from_bytes(tiff[ifd0 + 2 + 12 * n : ifd0 + 6 + 12 * n], order)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_exif_icc_xmp_iptc_are_carried_and_updated(tmp_path, ext):
    src = tmp_path / "in"
    src.mkdir()
    _photo_jpeg(src / "phone.jpg")
    assert _ifd1_link(read_metadata((src / "phone.jpg").read_bytes()).exif) != 0  # the input has a thumbnail
    summary = _translator().convert_folder(src, tmp_path / "out", ConvertOptions(ext=ext[1:], workers=0))
    out = tmp_path / "out" / f"phone{ext}"
    pixels = read_image(out)
    assert pixels.shape[:2] == (80, 60)  # upright (orientation 6: a quarter turn), then x2
    meta = read_metadata(out.read_bytes())
    assert meta.icc == ICC and meta.xmp == XMP
    assert meta.iptc == (IPTC if ext == ".jpg" else None)
    e = _exif(meta.exif)
    assert e[0x0112] == 1 and e[0x010F] == "PhoneMaker" and e[0x0110] == "Phone 1" and e[0x0131].startswith("i2i")
    sub, gps = e.get_ifd(0x8769), e.get_ifd(0x8825)
    assert sub[0x9003] == "2026:12:07 10:00:00" and (sub[0xA002], sub[0xA003]) == (60, 80)
    assert gps[1] == "N" and tuple(float(v) for v in gps[2]) == (52.0, 31.0, 12.5)
    assert _ifd1_link(meta.exif) == 0  # the stale thumbnail is gone
    with Image.open(out) as im:  # another reader agrees: the profile, and no rotation left to apply
        assert im.info.get("icc_profile") == ICC and im.getexif().get(0x0112) == 1
    assert summary.metadata["ICC kept"] == 1 and summary.metadata["EXIF kept"] == 1
    if ext != ".jpg":
        assert summary.metadata[f"IPTC dropped ({ext} cannot hold it)"] == 1


def test_strip_keeps_the_colour_profile_only_and_none_keeps_nothing(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _photo_jpeg(src / "phone.jpg")
    ckpt_free = _translator()
    ckpt_free.convert_folder(src, tmp_path / "strip", ConvertOptions(metadata="strip", workers=0))
    assert read_metadata((tmp_path / "strip" / "phone.jpg").read_bytes()) == Metadata(icc=ICC)
    ckpt_free.convert_folder(src, tmp_path / "none", ConvertOptions(metadata="none", workers=0))
    assert read_metadata((tmp_path / "none" / "phone.jpg").read_bytes()) == Metadata()


def test_sixteen_bit_png_keeps_its_profile_and_depth(tmp_path):
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    deep = np.random.default_rng(1).integers(0, 65536, (16, 20, 3)).astype(np.uint16)
    ok, enc = cv2.imencode(".png", deep)
    (src / "deep.png").write_bytes(embed(enc.tobytes(), Metadata(icc=ICC, xmp=XMP)))
    _translator().convert_folder(src, tmp_path / "out", ConvertOptions(workers=0))
    out = tmp_path / "out" / "deep.png"
    assert read_image(out).dtype == np.uint16
    assert read_metadata(out.read_bytes()) == Metadata(icc=ICC, xmp=XMP)


def test_tiff_keeps_exif_profile_xmp_iptc_bmp_says_what_it_could_not_keep_a_damaged_exif_is_dropped(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _photo_jpeg(src / "phone.jpg")
    summary = _translator().convert_folder(src, tmp_path / "tif", ConvertOptions(ext="tif", workers=0))
    if pytest.importorskip("tifffile"):
        assert summary.metadata == {"EXIF kept": 1, "ICC kept": 1, "XMP kept": 1, "IPTC kept": 1}
        tags = _tags(tmp_path / "tif" / "phone.tif")
        assert bytes(tags[34675]) == ICC and bytes(tags[700]) == XMP and bytes(tags[33723]) == IPTC
        # EXIF: camera in the first IFD, date and size in the Exif sub-IFD, place in the GPS one; upright
        assert tags[271] == "PhoneMaker" and tags[272] == "Phone 1" and tags.get(274, 1) == 1
        assert tags[34665]["DateTimeOriginal"] == "2026:12:07 10:00:00"
        # the output's size: upright (30 x 40) and twice as large
        assert (tags[34665]["PixelXDimension"], tags[34665]["PixelYDimension"]) == (60, 80)
        assert tags[34853]["GPSLatitudeRef"] == "N" and tags[34853]["GPSLatitude"][:2] == (52, 1)
        with Image.open(tmp_path / "tif" / "phone.tif") as im:  # another reader agrees
            assert im.getexif().get_ifd(0x8825)[2][2] == 12.5
        # and back out of the TIFF into a JPEG
        back = _translator().convert_folder(tmp_path / "tif", tmp_path / "jpg", ConvertOptions(ext="jpg", workers=0))
        assert back.metadata["EXIF kept"] == 1
        with Image.open(tmp_path / "jpg" / "phone.jpg") as im:
            exif = im.getexif()
            assert exif[0x010F] == "PhoneMaker" and exif.get_ifd(0x8769)[0x9003] == "2026:12:07 10:00:00"
    summary = _translator().convert_folder(src, tmp_path / "bmp", ConvertOptions(ext="bmp", workers=0))
    assert summary.metadata == {f"{k} dropped (.bmp cannot hold it)": 1 for k in ("EXIF", "ICC", "XMP", "IPTC")}
    assert Metadata(exif=b"MM\x00*garbage", icc=ICC).for_output(4, 4) == Metadata(icc=ICC)


def test_the_cli_prints_what_was_kept(tmp_path, capsys):
    from i2i.nets.registry import build_generator

    torch.manual_seed(0)
    torch.save(build_generator("srvgg", scale=2, n_convs=1, base_channels=4).state_dict(), tmp_path / "c.pth")
    src = tmp_path / "in"
    src.mkdir()
    _photo_jpeg(src / "phone.jpg")
    assert main(["convert", str(tmp_path / "c.pth"), str(src), str(tmp_path / "out"), "--quiet", "--ext", "png"]) == 0
    out = capsys.readouterr().out
    assert "metadata: EXIF kept 1, ICC kept 1, IPTC dropped (.png cannot hold it) 1, XMP kept 1" in out


def _geotiff(path, raster_type: int, transform: bool = False) -> np.ndarray:
    tifffile = pytest.importorskip("tifffile")
    img = np.random.default_rng(2).integers(0, 65536, (12, 16, 3)).astype(np.uint16)
    keys = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, raster_type, 3072, 0, 1, 32633)
    where = [(34264, "d", 16, (10.0, 0, 0, 500000.0, 0, -10.0, 0, 4000000.0, 0, 0, 0, 0, 0, 0, 0, 1), True)] \
        if transform else [(33550, "d", 3, (10.0, 10.0, 0.0), True),
                           (33922, "d", 6, (0, 0, 0, 500000.0, 4000000.0, 0), True)]
    tifffile.imwrite(path, img, photometric="rgb", extratags=[*where, (34735, "H", 16, keys, True),
                                                              (34737, "s", 0, "WGS 84 / UTM zone 33N|", True),
                                                              (34675, "B", len(ICC), ICC, True)])
    return img


def _tags(path) -> dict:
    import tifffile

    with tifffile.TiffFile(path) as t:
        return {tag.code: tag.value for tag in t.pages[0].tags.values()}


@pytest.mark.parametrize("raster_type,shift", [(1, 0.0), (2, 0.5)])  # PixelIsArea, PixelIsPoint
def test_geotiff_georeference_is_scaled_for_super_resolution(tmp_path, raster_type, shift):
    src = tmp_path / "in"
    src.mkdir()
    _geotiff(src / "scene.tif", raster_type)
    summary = _translator().convert_folder(src, tmp_path / "out", ConvertOptions(workers=0))
    out = tmp_path / "out" / "scene.tif"
    assert read_image(out).dtype == np.uint16 and read_image(out).shape == (24, 32, 3)
    tags = _tags(out)
    assert tags[33550] == (5.0, 5.0, 0.0)  # metres per pixel halved
    assert tags[33922] == (shift, shift, 0.0, 500000.0, 4000000.0, 0.0)  # the same corner (or centre) of the world
    assert tags[34735] == _tags(src / "scene.tif")[34735] and tags[34737] == "WGS 84 / UTM zone 33N|"
    assert bytes(tags[34675]) == ICC and tags[305].startswith("i2i")
    assert summary.metadata == {"GEO kept": 1, "ICC kept": 1}


def test_a_geotiff_transformation_matrix_is_scaled_too(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _geotiff(src / "scene.tif", 2, transform=True)
    _translator().convert_folder(src, tmp_path / "out", ConvertOptions(workers=0))
    m = _tags(tmp_path / "out" / "scene.tif")[34264]
    # PixelIsPoint: new pixel (0.5, 0.5) is old pixel (0, 0), at world (500000, 4000000)
    assert m[0] == 5.0 and m[5] == -5.0
    assert m[0] * 0.5 + m[3] == 500000.0 and m[5] * 0.5 + m[7] == 4000000.0


def test_what_a_jpeg_segment_cannot_hold_is_counted_as_dropped_not_kept():
    from i2i.data.metadata import for_format

    big = Metadata(xmp=b"x" * 70000, icc=ICC)
    kept, names, dropped = for_format(big, ".jpg")
    assert names == ["ICC"] and dropped == ["XMP"] and kept == Metadata(icc=ICC)
    assert for_format(big, ".png")[1] == ["ICC", "XMP"]  # an iTXt chunk holds it
