"""DICOM in and out (the ``dicom`` extra, pydicom): single-frame grayscale or RGB images.

Pixels: the stored values of ``BitsStored`` bits are mapped linearly onto the full uint16 range
(uint8 for 8-bit files), signed ones shifted by ``2 ** (BitsStored - 1)`` first, so that a model
sees every stored value and an output written back with the same header round-trips exactly
(``round(v * k)`` and back with ``k = 65535 / (2 ** BitsStored - 1) >= 1``). RescaleSlope and
Intercept, windows and the photometric interpretation stay as they were: the values keep their
meaning. The header is carried as a derived image: new SOP and Series Instance UIDs (the Series
one the same for every slice of a series written into one folder, and on a rerun), ImageType
``DERIVED\\SECONDARY``, a SourceImageSequence naming the input, Rows/Columns and the pixel spacings
for the output's size; written uncompressed, Explicit VR Little Endian. Nothing in a DICOM file is
executed; compressed transfer syntaxes decode where pydicom has a decoder (JPEG baseline via Pillow).
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from .._version import __version__

SPACINGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")


class DicomError(ValueError):
    """A DICOM file i2i cannot read or write as asked; the message says why and what to do."""


def is_dicom(data: bytes) -> bool:
    """Whether encoded bytes are a DICOM Part 10 file (the ``DICM`` mark after the 128-byte preamble)."""
    return data[128:132] == b"DICM"


def pydicom() -> Any:
    """The ``pydicom`` package, or a :class:`DicomError` naming the extra to install."""
    try:
        import pydicom as pd  # an optional extra: DICOM in and out
    except ImportError:
        raise DicomError("reading or writing DICOM needs pydicom: pip install 'i2i[dicom]'") from None
    return pd


def _dataset(data: bytes, pixels: bool = False) -> Any:
    try:
        return pydicom().dcmread(io.BytesIO(data), stop_before_pixels=not pixels)
    except DicomError:
        raise
    except Exception as e:  # pydicom's errors on damaged files are of many types (noqa: BLE001)
        raise DicomError(f"damaged DICOM ({str(e)[:160]})") from None


def dicom_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a DICOM header (frames multiply the size), None when it does not say."""
    pydicom()  # a missing extra is said as such, not as a damaged file
    try:
        ds = _dataset(data)
    except DicomError:
        return None
    rows, cols, frames = ds.get("Rows"), ds.get("Columns"), int(ds.get("NumberOfFrames") or 1)
    return (int(cols), int(rows) * frames) if rows and cols else None


def _bits(ds: Any) -> tuple[int, int]:
    """(BitsStored, the offset that makes stored values non-negative)."""
    bits = int(ds.get("BitsStored") or ds.BitsAllocated)
    return bits, (1 << (bits - 1)) if int(ds.get("PixelRepresentation") or 0) else 0


def read_dicom(data: bytes) -> np.ndarray:
    """The pixels of a single-frame DICOM file as ``(H, W, C)`` uint16 (uint8 for 8-bit files),
    C = 1 (MONOCHROME1/2) or 3 (RGB, YBR decoded to RGB), mapped as the module says."""
    ds = _dataset(data, pixels=True)
    if int(ds.get("NumberOfFrames") or 1) > 1:
        raise DicomError(f"a multi-frame DICOM ({ds.NumberOfFrames} frames); i2i converts single frames: split it "
                         "(e.g. pydicom or dcmtk) into one file per frame")
    kind = str(ds.get("PhotometricInterpretation", ""))
    if kind not in ("MONOCHROME1", "MONOCHROME2", "RGB") and not kind.startswith("YBR"):
        raise DicomError(f"DICOM PhotometricInterpretation {kind or 'missing'} is not read (MONOCHROME1/2, RGB and "
                         "YBR are); convert it to RGB first")
    try:
        arr = ds.pixel_array
    except Exception as e:  # no decoder for the transfer syntax, or damaged pixel data (noqa: BLE001)
        raise DicomError(f"its pixel data cannot be decoded ({str(e).splitlines()[0][:200]}); a compressed DICOM may "
                         "need pylibjpeg or gdcm installed, or decompress it first (e.g. dcmtk's dcmdjpeg)") from None
    bits, offset = _bits(ds)
    arr = arr.astype(np.int64) + offset
    depth = np.uint8 if int(ds.BitsAllocated) <= 8 else np.uint16
    top = np.iinfo(depth).max
    out = np.clip(np.rint(arr * (top / ((1 << bits) - 1))), 0, top).astype(depth)
    return out[:, :, None] if out.ndim == 2 else out


def header_of(data: bytes) -> bytes:
    """The DICOM file's header (every element but the pixel data), re-encoded Explicit VR Little
    Endian: what :class:`~i2i.data.metadata.Metadata` carries to the output."""
    ds = _dataset(data)
    pd = pydicom()
    ds.file_meta.TransferSyntaxUID = pd.uid.ExplicitVRLittleEndian
    buf = io.BytesIO()
    pd.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def derive(header: bytes, width: int, height: int, scale: float, dst: str = "") -> bytes:
    """``header`` for a derived ``width`` x ``height`` image ``scale`` times the input's size,
    written to ``dst``: new UIDs (deterministic, so a rerun gives the same ones: the SOP Instance
    UID from the old one and ``dst``, the Series Instance UID from the old one and ``dst``'s
    folder, so the slices of a series stay one series), ImageType DERIVED, a SourceImageSequence,
    Rows/Columns, the pixel spacings divided by ``scale``."""
    pd = pydicom()
    ds = _dataset(header)
    old_sop, old_series = str(ds.get("SOPInstanceUID", "")), str(ds.get("SeriesInstanceUID", ""))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pd.uid.generate_uid(
        entropy_srcs=["i2i", dst, old_sop])
    ds.SeriesInstanceUID = pd.uid.generate_uid(entropy_srcs=["i2i series", os.path.dirname(dst), old_series])
    image_type = list(ds.get("ImageType") or ["ORIGINAL", "PRIMARY"])
    ds.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
    ds.DerivationDescription = f"translated by i2i {__version__}"
    if old_sop and "SOPClassUID" in ds:
        ref = pd.Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ds.SOPClassUID, old_sop
        ds.SourceImageSequence = [ref]
    ds.Rows, ds.Columns = height, width
    for name in SPACINGS:
        if name in ds and scale != 1:
            ds[name].value = [_ds(float(v) / scale) for v in ds[name].value]
    for name in ("SmallestImagePixelValue", "LargestImagePixelValue"):  # stale for new pixels
        if name in ds:
            del ds[name]
    buf = io.BytesIO()
    pd.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _ds(v: float) -> str:
    """A decimal string (VR DS, at most 16 characters)."""
    return f"{v:.10g}"[:16]


def encode_dicom(img: np.ndarray, header: bytes) -> bytes:
    """An ``(H, W, C)`` uint8/uint16 array as a DICOM file with ``header`` (from :func:`derive`):
    the inverse of :func:`read_dicom`'s mapping; RGB output for a gray header is reduced to luma
    (ITU-R BT.601), gray output for an RGB header repeated."""
    pd = pydicom()
    ds = _dataset(header)
    bits, offset = _bits(ds)
    rgb = int(ds.get("SamplesPerPixel") or 1) == 3
    x = img.astype(np.float64) / np.iinfo(img.dtype).max
    if x.ndim == 3 and x.shape[2] == 4:  # alpha has no home in DICOM
        x = x[:, :, :3]
    if not rgb and x.ndim == 3 and x.shape[2] == 3:
        x = x @ np.array([0.299, 0.587, 0.114])
    elif rgb and (x.ndim == 2 or x.shape[2] == 1):
        x = np.repeat(x.reshape(x.shape[0], x.shape[1], 1), 3, axis=2)
    x = x[:, :, 0] if x.ndim == 3 and x.shape[2] == 1 else x
    values = np.rint(x * ((1 << bits) - 1)).astype(np.int64) - offset
    allocated = int(ds.BitsAllocated)
    kind = f"{'i' if offset else 'u'}{max(allocated, 8) // 8}"
    ds.add_new(0x7FE00010, "OW" if allocated > 8 else "OB", values.astype(np.dtype(kind).newbyteorder("<")).tobytes())
    ds.Rows, ds.Columns = int(x.shape[0]), int(x.shape[1])
    if rgb:
        ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
    ds.file_meta.TransferSyntaxUID = pd.uid.ExplicitVRLittleEndian
    buf = io.BytesIO()
    pd.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
