"""Reading and writing images, and the array <-> tensor conversions at the edge.

Arrays are ``(H, W, C)`` (C = 1, 3 or 4; RGB order) of uint8 or uint16. Tensors in the
networks are float ``(C, H, W)`` / ``(N, C, H, W)`` in [-1, 1]. Writes are atomic: the
image is encoded in memory, written to a temporary file in the target folder and renamed,
so a killed process never leaves a half-written image under the final name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(OSError):
    """An image file is missing, unreadable or corrupt; the message names the file."""


def is_image_file(path: str | Path) -> bool:
    """True when the suffix is a supported image format (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted, hidden files skipped."""
    return scan_images(folder)[0]


def scan_images(folder: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(images, skipped)`` under ``folder``, recursively and sorted: image files, and the
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
            elif not is_image_file(p):
                skipped.append((p, f"not an image format i2i reads ({', '.join(IMAGE_EXTENSIONS)})"))
            else:
                images.append(p)
        for d in list(dirnames):
            if not (Path(dirpath) / d).exists():
                skipped.append((Path(dirpath) / d, "a broken symbolic link"))
    return sorted(images), sorted(skipped)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, C)`` uint8 or uint16 in RGB(A) order.

    Grayscale gives C=1, colour C=3, images with alpha C=4. EXIF orientation is applied.
    Raises :class:`ImageReadError` naming the file when it is missing or cannot be decoded.
    """
    path = Path(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"cannot read image '{path}': {e.strerror or e}") from None
    if buf.size == 0:
        raise ImageReadError(f"image '{path}' is an empty file; re-export or remove it")
    # IMREAD_UNCHANGED keeps bit depth and alpha but ignores EXIF orientation, so read
    # the orientation separately (cheap: headers only) and apply it ourselves.
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"image '{path}' is corrupt or not a supported format ({', '.join(IMAGE_EXTENSIONS)}); re-export or remove it")
    if img.dtype not in (np.uint8, np.uint16):
        img = _to_uint16(img, path)
    if img.ndim == 2:
        img = img[:, :, None]
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return _apply_exif_orientation(img, buf)


def _to_uint16(img: np.ndarray, path: Path) -> np.ndarray:
    if img.dtype.kind == "f":
        return (np.clip(img, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    raise ImageReadError(f"image '{path}' has unsupported sample type {img.dtype}; convert it to 8 or 16 bit")


def _exif_orientation(buf: np.ndarray) -> int:
    """EXIF orientation tag (1..8) of a JPEG/TIFF/WebP byte buffer, 1 when absent."""
    data = buf.tobytes()
    start = data.find(b"Exif\x00\x00")
    tiff = data[start + 6 :] if start >= 0 else (data if data[:4] in (b"II*\x00", b"MM\x00*") else b"")
    if len(tiff) < 8:
        return 1
    order = "little" if tiff[:2] == b"II" else "big"
    try:
        ifd = int.from_bytes(tiff[4:8], order)
        count = int.from_bytes(tiff[ifd : ifd + 2], order)
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            if int.from_bytes(entry[0:2], order) == 0x0112:
                value = int.from_bytes(entry[8:10], order)
                return value if 1 <= value <= 8 else 1
    except (ValueError, IndexError):
        return 1
    return 1


def _apply_exif_orientation(img: np.ndarray, buf: np.ndarray) -> np.ndarray:
    o = _exif_orientation(buf)
    if o == 1:
        return img
    ops = {2: (0, True), 3: (2, False), 4: (2, True), 5: (3, True), 6: (3, False), 7: (1, True), 8: (1, False)}
    k, flip = ops[o]  # k: counter-clockwise quarter turns after an optional horizontal flip
    if flip:
        img = img[:, ::-1]
    img = np.rot90(img, k)
    return np.ascontiguousarray(img)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Convert an ``(H, W, C)`` array to 1 (luma) or 3 (RGB) channels; alpha is dropped."""
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if c == 4:
        img, c = img[:, :, :3], 3
    if c == channels:
        return img
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
    if channels == 3:
        return np.repeat(img, 3, axis=2)
    raise ValueError(f"cannot convert a {c}-channel image to {channels} channels; use 1 or 3")


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


def write_image(path: str | Path, img: np.ndarray, *, quality: int = 95) -> Path:
    """Write an ``(H, W, C)`` uint8/uint16 RGB(A) array atomically; the suffix picks the format."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"cannot write '{path}': unknown image format {ext!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, enc = cv2.imencode(ext, img, params)
    if not ok:
        raise OSError(f"could not encode '{path}' as {ext} (dtype {img.dtype}, shape {img.shape})")
    atomic_write_bytes(path, enc.tobytes())
    return path


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
