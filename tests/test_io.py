import os
import struct
import zlib

import numpy as np
import pytest
import torch

from i2i.data.io import ImageReadError, from_tensor, list_images, read_image, to_channels, to_tensor, write_image


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_lossless_round_trip(tmp_path, dtype, channels, ext):
    rng = np.random.default_rng(0)
    img = rng.integers(0, np.iinfo(dtype).max, size=(7, 11, channels), endpoint=True).astype(dtype)
    p = write_image(tmp_path / f"x{ext}", img)
    back = read_image(p)
    assert back.dtype == dtype and back.shape == img.shape
    assert np.array_equal(back, img)


def test_rgb_order_is_preserved(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 200  # red
    back = read_image(write_image(tmp_path / "r.jpg", img))
    assert back[..., 0].mean() > 150 and back[..., 2].mean() < 50


def _jpeg_with_orientation(img: np.ndarray, orientation: int) -> bytes:
    import cv2

    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation,
                                                                                  0) + b"\0\0\0\0"
    app1 = b"Exif\x00\x00" + tiff
    data = enc.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


@pytest.mark.parametrize("orientation,expect", [(1, "same"), (3, "rot180"), (6, "cw"), (8, "ccw")])
def test_exif_orientation_is_applied(tmp_path, orientation, expect):
    img = np.zeros((16, 32, 3), np.uint8)
    img[:8, :16] = 255  # white top-left quadrant
    p = tmp_path / "o.jpg"
    p.write_bytes(_jpeg_with_orientation(img, orientation))
    back = read_image(p)
    ref = {"same": img, "rot180": np.rot90(img, 2), "cw": np.rot90(img, -1), "ccw": np.rot90(img, 1)}[expect]
    assert back.shape == ref.shape
    assert np.abs(back.astype(int) - ref.astype(int)).mean() < 8


def test_bad_files_raise_errors_naming_them(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="corrupt.png.*corrupt"):
        read_image(tmp_path / "corrupt.png")
    with pytest.raises(ImageReadError, match="empty.jpg.*empty"):
        read_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageReadError, match="missing.png"):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tensor_round_trip_is_exact(dtype):
    img = np.arange(0, 3 * 5 * 6, dtype=np.int64).reshape(5, 6, 3) * (np.iinfo(dtype).max // 89)
    img = img.astype(dtype)
    t = to_tensor(img)
    assert t.shape == (3, 5, 6) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(from_tensor(t, dtype), img)
    assert from_tensor(torch.full((1, 2, 2), 7.0)).max() == 255  # clipped


def test_channel_conversion():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 1] = 100
    assert to_channels(rgba, 3).shape == (2, 2, 3)
    gray = to_channels(rgba, 1)
    assert gray.shape == (2, 2, 1) and abs(int(gray[0, 0, 0]) - round(0.587 * 100)) <= 1
    assert to_channels(gray, 3).shape == (2, 2, 3)


def test_atomic_write_leaves_no_temp_files_and_normal_permissions(tmp_path):
    write_image(tmp_path / "sub" / "a.png", np.zeros((3, 3, 3), np.uint8))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "sub" / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_list_images_recurses_and_skips_hidden(tmp_path):
    for rel in ["a.png", "d/b.JPG", ".hidden/c.png", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.png", "d/b.JPG"]


def _pattern() -> np.ndarray:
    """An asymmetric 24x40 RGB pattern: every flip and turn of it is different."""
    rng = np.random.default_rng(0)
    img = (rng.random((6, 10, 3)) * 255).astype(np.uint8)
    return np.repeat(np.repeat(img, 4, 0), 4, 1)


def _exif(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_reads_as_pil_shows_it(tmp_path, fmt, orientation):
    from PIL import Image, ImageOps

    p = tmp_path / f"o.{fmt}"
    options = {"quality": 100} if fmt == "jpeg" else {"lossless": True} if fmt == "webp" else {}
    Image.fromarray(_pattern()).save(p, exif=_exif(orientation), **options)
    with Image.open(p) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    got = read_image(p)
    assert got.shape == want.shape
    tolerance = 3 if fmt == "jpeg" else 0  # two JPEG decoders may round differently
    assert np.abs(got.astype(int) - want.astype(int)).mean() <= tolerance


def test_exif_bytes_outside_the_exif_chunk_do_not_rotate(tmp_path):
    """A PNG text comment that happens to hold EXIF-like bytes is not EXIF; an eXIf chunk
    after the image data still is (PIL reads both places the same way)."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "Exif\x00\x00" + _exif(6).decode("latin-1"))
    p = tmp_path / "comment.png"
    Image.fromarray(_pattern()).save(p, pnginfo=info)
    assert np.array_equal(read_image(p), _pattern())

    data = bytearray((tmp_path / "comment.png").read_bytes())
    tiff = _exif(6)[6:] if _exif(6).startswith(b"Exif") else _exif(6)
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    iend = bytes(data).rindex(b"IEND") - 4
    late = tmp_path / "late.png"
    late.write_bytes(bytes(data[:iend]) + chunk + bytes(data[iend:]))
    assert np.array_equal(read_image(late), np.rot90(_pattern(), -1))


def test_images_over_the_pixel_budget_are_refused_before_decoding(tmp_path):
    """A 20000 x 20000 PNG of one colour is a few hundred KB on disk and 1.2 GB decoded; the
    header is enough to refuse it (this one's image data is cut short: it is never read)."""
    from i2i.data.io import MAX_IMAGE_PIXELS

    width = 20000
    ihdr = struct.pack(">IIBBBBB", width, width, 8, 2, 0, 0, 0)
    raw = zlib.compressobj(9).compress(b"\x00" * (width * 3 + 1) * 8)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    p = tmp_path / "bomb.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    assert p.stat().st_size < 2_000_000 and width * width > MAX_IMAGE_PIXELS
    with pytest.raises(ImageReadError, match=r"bomb.png.*20000x20000 pixels, over the"):
        read_image(p)


def test_a_fifo_named_like_an_image_is_refused_not_waited_on(tmp_path):
    import os

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="x.png.*not a regular file"):
        read_image(fifo)


def test_images_become_four_channels_with_opaque_alpha():
    rgb = np.full((2, 3, 3), 7, np.uint8)
    rgba = to_channels(rgb, 4)
    assert rgba.shape == (2, 3, 4) and (rgba[..., 3] == 255).all() and (rgba[..., :3] == 7).all()
    assert to_channels(np.full((2, 3, 1), 9, np.uint16), 4)[..., 3].max() == 65535
    assert to_channels(rgba, 4) is rgba
