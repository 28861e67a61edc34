"""Uploaded files made safe to convert: names reduced to a plain file name (no request can name a
path), contents sniffed (an image by its signature and within the pixel budget, a video by its
container's, a zip unpacked by the same rules, with a bound on its members and their total size);
anything else refused with a message that names the file."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path, PurePath
from typing import BinaryIO

from ..data.io import FORMATS, MAX_IMAGE_PIXELS, image_size, sniff_format

SUFFIX = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tif", "webp": ".webp", "dicom": ".dcm"}
VIDEO_MAGIC = ((4, b"ftyp", ".mp4"), (0, b"\x1a\x45\xdf\xa3", ".mkv"), (0, b"GIF8", ".gif"))


class UploadError(ValueError):
    """An upload that cannot be converted: ``status`` 413 (too large) or 422 (not an image, video
    or zip of them); the message names the file."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str | None, used: set[str], fallback: str = "upload") -> str:
    """``name`` as a plain file name: the last path component, characters other than letters,
    digits, ``.-_`` replaced, no leading dot, at most 100 characters, unique within ``used``."""
    base = PurePath((name or "").replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:100] or fallback
    stem, dot, ext = base.rpartition(".")
    candidate, k = base, 1
    while candidate.lower() in used:
        k += 1
        candidate = f"{stem}_{k}.{ext}" if dot else f"{base}_{k}"
    used.add(candidate.lower())
    return candidate


def kind_of(head: bytes) -> tuple[str, str] | None:
    """``("image", suffix)``, ``("video", suffix)`` or ``("zip", ".zip")`` from a file's first bytes."""
    fmt = sniff_format(head)
    if fmt in FORMATS:
        return "image", SUFFIX[fmt]
    if head[:4] == b"PK\x03\x04":
        return "zip", ".zip"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", ".avi"
    for at, magic, suffix in VIDEO_MAGIC:
        if head[at:at + len(magic)] == magic:
            return "video", (".mov" if head[8:10] == b"qt" else suffix)
    return None


def check_image(path: Path, shown: str) -> None:
    """Refuse an image whose header says more pixels than i2i decodes (413) or no size (422)."""
    size = image_size(path.read_bytes())
    if size is None:
        raise UploadError(422, f"'{shown}' is a damaged image (its header does not say its size)")
    if size == (-1, -1) or size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise UploadError(413, f"'{shown}' has more than the {MAX_IMAGE_PIXELS:,} pixels i2i decodes; downscale "
                               "or split it")


def place(path: Path, shown: str, folder: Path, used: set[str]) -> list[Path]:
    """Sniff a stored upload and move it into ``folder`` under a safe name with the suffix its
    content has (a zip is unpacked there instead); returns the files placed."""
    with path.open("rb") as f:
        head = f.read(64)
    kind = kind_of(head)
    if kind is None:
        raise UploadError(422, f"'{shown}' is not an image (PNG, JPEG, BMP, TIFF, WebP, DICOM), a video "
                               "(MP4, MOV, MKV, WebM, AVI, GIF) or a zip of them")
    if kind[0] == "zip":
        return unzip(path, folder, used)
    if kind[0] == "image":
        check_image(path, shown)
    stem = PurePath(safe_name(shown, set())).stem
    dst = folder / safe_name(stem + kind[1], used)
    shutil.move(path, dst)
    return [dst]


def unzip(path: Path, folder: Path, used: set[str], max_files: int = 1000, max_bytes: int = 4 << 30) -> list[Path]:
    """The images and videos of a zip, each placed as an upload (sub-folders flattened; names made
    safe); refuses more than ``max_files`` members or ``max_bytes`` unpacked (a zip bomb)."""
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UploadError(422, f"'{path.name}' is a damaged zip") from None
    with z:
        members = [i for i in z.infolist() if not i.is_dir() and not PurePath(i.filename).name.startswith(".")
                   and "__MACOSX" not in i.filename]
        if len(members) > max_files or sum(i.file_size for i in members) > max_bytes:
            raise UploadError(413, f"the zip holds {len(members)} files, {sum(i.file_size for i in members):,} "
                                   f"bytes unpacked; the limit is {max_files} files and {max_bytes:,} bytes")
        placed = []
        for i, info in enumerate(members):
            tmp = folder / f".unzip{i}"
            with z.open(info) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            placed += place(tmp, PurePath(info.filename).name, folder, used)
    path.unlink(missing_ok=True)
    return placed


def save(stream: BinaryIO, shown: str | None, folder: Path, used: set[str], limit: int) -> list[Path]:
    """Copy an uploaded stream into ``folder`` (at most ``limit`` bytes: 413 beyond) and :func:`place` it."""
    tmp = folder / f".upload{len(used)}"
    total = 0
    with tmp.open("wb") as dst:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
            if total > limit:
                dst.close()
                tmp.unlink()
                raise UploadError(413, f"'{shown}' is over the upload limit of {limit:,} bytes (--max-upload-mb)")
            dst.write(chunk)
    return place(tmp, shown or "upload", folder, used)
