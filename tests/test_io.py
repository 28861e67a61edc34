import os
import struct

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
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
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
