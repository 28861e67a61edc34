"""Reading and writing images, and the array <-> tensor conversions at the edge.

Arrays are ``(H, W, C)`` (C = 1, 3 or 4; RGB order) of uint8 or uint16. Tensors in the
networks are float ``(C, H, W)`` / ``(N, C, H, W)`` in [-1, 1]. Writes are atomic: the
image is encoded in memory, written to a temporary file in the target folder and renamed,
so a killed process never leaves a half-written image under the final name.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from .._version import __version__
from ..files import atomic_write_bytes
from .dicom import DicomError, dicom_size, encode_dicom, is_dicom, read_dicom
from .metadata import Metadata, embed, encode_tiff

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".dcm")


class ImageReadError(OSError):
    """An image file is missing, unreadable or corrupt; the message names the file."""


def is_image_file(path: str | Path) -> bool:
    """True when the suffix is a supported image format (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted, hidden files skipped."""
    return scan_images(folder)[0]


def scan_images(folder: str | Path, accept: Callable[[Path], bool] = is_image_file,
                formats: str = ", ".join(IMAGE_EXTENSIONS)) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(images, skipped)`` under ``folder``, recursively and sorted: image files (files
    ``accept`` takes; ``formats`` names them in the reason for the others), and the
    other entries with why they are left out (not an image format, a broken link, a link
    back into a folder already walked). Symbolic links to folders are followed once; hidden
    files and folders (``.name``) are left out without a word."""
    folder = Path(folder)
    images: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            skipped.append((Path(dirpath), "a symbolic link back into a folder already read (a loop); not followed"))
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            if not p.exists():
                skipped.append((p, "a broken symbolic link"))
            elif not p.is_file():
                skipped.append((p, "not a regular file (a pipe, socket or device)"))
            elif not accept(p):
                skipped.append((p, f"not a format i2i reads ({formats})"))
            else:
                images.append(p)
        for d in list(dirnames):
            if not (Path(dirpath) / d).exists():
                skipped.append((Path(dirpath) / d, "a broken symbolic link"))
    return sorted(images), sorted(skipped)


MAX_IMAGE_PIXELS = 16384 * 16384
"""Images larger than this (268 million pixels, 0.8 GB as 8-bit RGB) are refused before
decoding: a small compressed file can decode to gigabytes."""


FORMATS = ("png", "jpeg", "bmp", "tiff", "webp", "dicom")
"""What i2i decodes, recognised by content: a file is decoded only when its first bytes are one of
these, whatever its name says (OpenCV would decode a Radiance HDR or a PFM named ``x.png`` as float32)."""

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # JPEG start-of-frame markers


def sniff_format(data: bytes) -> str | None:
    """The format of encoded image bytes by their signature (one of :data:`FORMATS`), else None.
    DICOM first: its 128-byte preamble may itself be a TIFF header (dual-personality files)."""
    if is_dicom(data):
        return "dicom"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame segment (any SOFn), walking the markers:
    fill bytes (any number of 0xFF before a marker) and markers without a length are skipped;
    None when the segments end, break off or reach the image data before a frame says its size,
    or the frame leaves its height to a later DNL segment (height 0)."""
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA) or i + 2 > n:  # end of image or start of scan before a frame
            return None
        length = int.from_bytes(data[i : i + 2], "big")
        if marker in _SOF:
            if length < 8 or i + 7 > n:
                return None
            height, width = int.from_bytes(data[i + 3 : i + 5], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
            return (width, height) if width and height else None
        if length < 2:
            return None
        i += length
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    header = int.from_bytes(data[14:18], "little")
    if header == 12 and len(data) >= 22:  # BITMAPCOREHEADER
        return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
    if header >= 40 and len(data) >= 26:
        w, h = int.from_bytes(data[18:22], "little", signed=True), int.from_bytes(data[22:26], "little", signed=True)
        return (w, abs(h)) if w > 0 and h != 0 else None  # a negative height is a top-down bitmap
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from an encoded image's header, without decoding: PNG, JPEG and BMP read
    here, TIFF and WebP through PIL's lazy open. ``(-1, -1)`` when PIL refuses to open the header
    for its size (over about 179 million pixels); None when the format is not one of
    :data:`FORMATS` or its header does not say the size."""
    fmt = sniff_format(data)
    if fmt == "png":
        if data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "jpeg":
        return _jpeg_size(data)
    if fmt == "bmp":
        return _bmp_size(data)
    if fmt is None:
        return None
    if fmt == "dicom":
        try:
            return dicom_size(data)
        except DicomError:  # no pydicom
            return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError:
        return -1, -1
    except Exception:  # a damaged header
        return None


def _what_it_is(data: bytes) -> str:
    """A few words on bytes that are none of :data:`FORMATS`, for the refusal."""
    known = {b"#?RADIANCE": "a Radiance HDR image", b"#?RGBE": "a Radiance HDR image",
             b"\x76\x2f\x31\x01": "an OpenEXR image",
             b"GIF8": "a GIF", b"PF\n": "a PFM image", b"Pf\n": "a PFM image",
             b"\x00\x00\x00\x0cjP": "a JPEG 2000 image",
             b"%PDF": "a PDF document"}
    for magic, name in known.items():
        if data.startswith(magic):
            return name
    if data[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"):
        return "a PNM image"
    return "corrupt or not an image"


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, C)`` uint8 or uint16 in RGB(A) order.

    Grayscale gives C=1, colour C=3, images with alpha C=4. EXIF orientation is applied as
    PIL's ``ImageOps.exif_transpose`` does (JPEG APP1, PNG eXIf, WebP EXIF, TIFF). The format is
    decided by the content (:data:`FORMATS`), and nothing is decoded before its header says its
    size. Raises :class:`ImageReadError` naming the file when it is missing, not a regular file,
    not one of :data:`FORMATS`, of a size its header does not say or larger than
    :data:`MAX_IMAGE_PIXELS`, or cannot be decoded.
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever
            raise ImageReadError(f"'{path}' is not a regular file (a pipe, socket or device); remove it from the input")
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        if isinstance(e, ImageReadError):
            raise
        raise ImageReadError(f"cannot read image '{path}': {e.strerror or e}") from None
    if buf.size == 0:
        raise ImageReadError(f"image '{path}' is an empty file; re-export or remove it")
    data = buf.tobytes()
    fmt = sniff_format(data)
    if fmt is None:  # decided by content: OpenCV would decode other formats too (HDR as float32, ...)
        raise ImageReadError(f"'{path}' is {_what_it_is(data)}; i2i reads PNG, JPEG, BMP, TIFF, WebP and "
                             "DICOM (by their content, whatever the name says): convert it or remove it from the input")
    if fmt == "dicom":
        return _read_dicom(data, path)
    _check_size(image_size(data), path)
    # IMREAD_UNCHANGED keeps bit depth and alpha but ignores EXIF orientation for every format
    # but TIFF (whose decoder applies it), so read the orientation separately (cheap: headers only)
    # and apply it ourselves.
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise ImageReadError(f"image '{path}' cannot be decoded ({str(e).strip().splitlines()[-1][:160]})") from None
    if img is None:
        raise ImageReadError(f"image '{path}' is corrupt or not a supported format ({', '.join(IMAGE_EXTENSIONS)}); "
                             "re-export or remove it")
    if img.dtype not in (np.uint8, np.uint16):
        img = _to_uint16(img, path)
    if img.ndim == 2:
        img = img[:, :, None]
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img if fmt == "tiff" else apply_orientation(img, exif_orientation(data))


def _check_size(size: tuple[int, int] | None, path: Path) -> None:
    if size is None:
        raise ImageReadError(f"image '{path}' is corrupt or of a layout i2i does not decode blindly: it does not say "
                             "its size in its header (a small file can decode to gigabytes); re-export it")
    if size == (-1, -1) or size[0] * size[1] > MAX_IMAGE_PIXELS:
        dims = "larger than PIL opens" if size == (-1, -1) else f"{size[0]}x{size[1]} pixels"
        raise ImageReadError(f"image '{path}' is {dims}, over the {MAX_IMAGE_PIXELS:,}-pixel limit i2i decodes "
                             "(a small file can decode to gigabytes); split or downscale it")


def _read_dicom(data: bytes, path: Path) -> np.ndarray:
    try:
        _check_size(dicom_size(data), path)
        return read_dicom(data)
    except DicomError as e:
        raise ImageReadError(f"DICOM '{path}': {e}") from None


def _to_uint16(img: np.ndarray, path: Path) -> np.ndarray:
    if img.dtype.kind == "f":
        return (np.clip(img, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    raise ImageReadError(f"image '{path}' has unsupported sample type {img.dtype}; convert it to 8 or 16 bit")


def _jpeg_exif(data: bytes) -> bytes:
    """The TIFF block of a JPEG's first ``Exif`` APP1 segment (b"" when there is none)."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker == 0xDA:  # start of scan: no metadata after it
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        segment = data[i + 4 : i + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return segment[6:]
        i += 2 + length
    return b""


def _png_exif(data: bytes) -> bytes:
    """The data of a PNG's ``eXIf`` chunk (before or after the image data; b"" when none)."""
    i = 8
    while i + 8 <= len(data):
        length, kind = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8]
        if kind == b"eXIf":
            return data[i + 8 : i + 8 + length]
        if kind == b"IEND":
            break
        i += 12 + length
    return b""


def _webp_exif(data: bytes) -> bytes:
    """The data of a WebP's ``EXIF`` chunk (b"" when none)."""
    i = 12
    while i + 8 <= len(data):
        kind, length = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        if kind == b"EXIF":
            return data[i + 8 : i + 8 + length]
        i += 8 + length + (length & 1)
    return b""


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1..8) of an encoded image, read where each container keeps EXIF
    (JPEG APP1, PNG eXIf, WebP EXIF, TIFF's own first IFD): 1 when absent. Bytes elsewhere
    (a text comment that happens to hold EXIF) do not count."""
    if data[:2] == b"\xff\xd8":
        tiff = _jpeg_exif(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        tiff = _png_exif(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        tiff = _webp_exif(data)
    else:
        tiff = data
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    if len(tiff) < 8 or tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    order = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) == 12 and int.from_bytes(entry[0:2], order) == 0x0112:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else 1
    return 1


# orientation -> (counter-clockwise quarter turns, after a horizontal flip?): PIL's exif_transpose
_ORIENTATIONS = {2: (0, True), 3: (2, False), 4: (2, True), 5: (1, True), 6: (3, False), 7: (3, True), 8: (1, False)}


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """``img`` as a viewer shows it for EXIF ``orientation`` (1: unchanged; 5 is a transpose,
    7 a transverse, 6 and 8 quarter turns)."""
    if orientation not in _ORIENTATIONS:
        return img
    k, flip = _ORIENTATIONS[orientation]
    if flip:
        img = img[:, ::-1]
    return np.ascontiguousarray(np.rot90(img, k))


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Convert an ``(H, W, C)`` array to 1 (luma), 3 (RGB) or 4 (RGBA) channels: alpha is
    dropped for 1 and 3 and added opaque for 4; gray is repeated to RGB."""
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if c == channels:
        return img
    if c == 4:
        img, c = img[:, :, :3], 3
    if channels == 4:
        rgb = to_channels(img, 3)
        return np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), max_value(img.dtype), img.dtype)], axis=2)
    if c == channels:
        return img
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
    if channels == 3:
        return np.repeat(img, 3, axis=2)
    raise ValueError(f"cannot convert a {c}-channel image to {channels} channels; use 1, 3 or 4")


def max_value(dtype: np.dtype) -> float:
    """Largest sample value of uint8 (255) or uint16 (65535) images."""
    return 65535.0 if np.dtype(dtype) == np.uint16 else 255.0


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` uint8/uint16 -> float32 ``(C, H, W)`` in [-1, 1]."""
    if img.ndim == 2:
        img = img[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(img).astype(np.float32)).permute(2, 0, 1)
    return t / (max_value(img.dtype) / 2) - 1.0


def from_tensor(t: torch.Tensor, dtype: np.dtype = np.uint8) -> np.ndarray:
    """float ``(C, H, W)`` in [-1, 1] -> ``(H, W, C)`` array of ``dtype`` (rounded, clipped)."""
    m = max_value(dtype)
    x = ((t.detach().float().clamp(-1, 1) + 1.0) * (m / 2)).round()
    return x.permute(1, 2, 0).to("cpu").numpy().astype(dtype)


def write_image(path: str | Path, img: np.ndarray, *, quality: int = 95, metadata: Metadata | None = None) -> Path:
    """Write an ``(H, W, C)`` uint8/uint16 RGB(A) array atomically; the suffix picks the format.
    ``metadata`` is written in as it is (JPEG, PNG, WebP; :mod:`i2i.data.metadata`)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"cannot write '{path}': unknown image format {ext!r}; use one of "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    if ext == ".dcm":
        if metadata is None or metadata.dicom is None:
            raise ValueError(f"cannot write '{path}': a DICOM output takes its input's DICOM header, and there is none "
                             "(the input is not DICOM, or --metadata strip/none removed it; i2i does not "
                             "de-identify DICOM): convert to --ext png or tif instead")
        atomic_write_bytes(path, encode_dicom(img, metadata.dicom))
        return path
    if ext in (".tif", ".tiff") and metadata is not None and metadata.kinds():
        atomic_write_bytes(path, encode_tiff(img, metadata, software=f"i2i {__version__}"))
        return path
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, enc = cv2.imencode(ext, img, params)
    if not ok:
        raise OSError(f"could not encode '{path}' as {ext} (dtype {img.dtype}, shape {img.shape})")
    atomic_write_bytes(path, embed(enc.tobytes(), metadata) if metadata is not None else enc.tobytes())
    return path
