"""Image metadata carried from an input file to its converted output: EXIF, the ICC colour
profile, XMP and IPTC, for JPEG, PNG and WebP (8 and 16 bits where the format has them).

Read from the input's bytes (headers only), updated where the pixels changed (EXIF Orientation
reset to 1 because the pixels are already upright, EXIF pixel dimensions set to the output's,
the thumbnail dropped, the Software tag set to i2i), and written into the bytes OpenCV encoded:
JPEG APP1 (EXIF, XMP), APP2 (ICC, in chunks), APP13 (IPTC); PNG eXIf, iCCP and an iTXt
``XML:com.adobe.xmp``; WebP EXIF, ICCP and XMP chunks under a VP8X header; TIFF (the ``tiff``
extra, tifffile) EXIF (baseline tags and the Exif and GPS sub-IFDs), ICC, XMP, IPTC and the GeoTIFF
tags, scaled for super-resolution; DICOM (the
``dicom`` extra) its whole header, as a derived image (:mod:`i2i.data.dicom`). What a format
cannot hold is dropped and counted. ``strip`` keeps the ICC profile alone (colours stay right).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image, TiffImagePlugin

from .._version import __version__
from .dicom import derive, header_of, is_dicom

ICC_MARK, XMP_MARK, EXIF_MARK, IPTC_MARK = b"ICC_PROFILE\x00", b"http://ns.adobe.com/xap/1.0/\x00", b"Exif\x00\x00", \
    b"Photoshop 3.0\x00"
WRITES = ("jpeg", "png", "webp")
"""Output formats metadata is written into."""


@dataclass(frozen=True)
class Metadata:
    """What an image file carries besides its pixels (each None when absent): ``exif`` (the TIFF
    block, from ``II*``/``MM*``), ``icc`` (the profile), ``xmp`` (the XML packet), ``iptc``
    (JPEG's Photoshop APP13 payload), ``geo`` (GeoTIFF tags), ``dicom`` (a DICOM header, without
    its pixel data)."""

    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    geo: tuple[tuple[int, int, int, Any], ...] = ()  # GeoTIFF tags: (code, TIFF data type, count, value)
    dicom: bytes | None = None

    def kinds(self) -> list[str]:
        """The names of what is present: ``EXIF``, ``ICC``, ``XMP``, ``IPTC``, ``GEO``, ``DICOM``."""
        return [k.upper() for k in ("exif", "icc", "xmp", "iptc", "geo", "dicom") if getattr(self, k)]

    def stripped(self) -> Metadata:
        """The ICC profile alone (``--metadata strip``: no camera, place or time; colours kept)."""
        return Metadata(icc=self.icc)

    def for_output(self, width: int, height: int, scale: float = 1.0, dst: str = "") -> Metadata:
        """Updated for an upright ``width`` x ``height`` output, ``scale`` times the input: EXIF
        Orientation 1, PixelX/YDimension, no thumbnail (IFD1 is not written), Software; GeoTIFF
        pixel scale and tie points (or transformation) for the new pixel grid (:func:`scale_geo`);
        a DICOM header derived for the file ``dst`` (:func:`i2i.data.dicom.derive`: new UIDs)."""
        out = replace(self, geo=scale_geo(self.geo, scale)) if self.geo and scale != 1 else self
        if self.dicom:
            out = replace(out, dicom=derive(self.dicom, width, height, scale, dst))
        return out._exif_for(width, height)

    def _exif_for(self, width: int, height: int) -> Metadata:
        if not self.exif:
            return self
        exif = Image.Exif()
        try:
            exif.load(self.exif)
            sub = exif.get_ifd(0x8769)
            exif.get_ifd(0x8825)  # GPS: loaded so that it is written back
        except Exception:  # a damaged EXIF block is dropped, not copied (noqa: BLE001)
            return replace(self, exif=None)
        if not len(exif):  # nothing could be read from it: damaged (Pillow reads leniently)
            return replace(self, exif=None)
        exif[0x0112] = 1
        exif[0x0131] = f"i2i {__version__}"
        if sub:
            sub[0xA002], sub[0xA003] = width, height
        block = exif.tobytes()
        return replace(self, exif=block[len(EXIF_MARK):] if block.startswith(EXIF_MARK) else block)


def read_metadata(data: bytes) -> Metadata:
    """The metadata of an encoded JPEG, PNG, WebP, TIFF or DICOM file (TIFF: EXIF, ICC, XMP, IPTC and the
    GeoTIFF tags, with the ``tiff`` extra; DICOM: the header, with the ``dicom`` extra; others: none)."""
    if is_dicom(data):  # first: a DICOM preamble may be a TIFF header
        return Metadata(dicom=header_of(data))
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    return Metadata()


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker == 0xDA:
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((marker, data[i + 4 : i + 2 + length]))
        i += 2 + length
    return out


def _jpeg(data: bytes) -> Metadata:
    exif = xmp = iptc = None
    icc: dict[int, bytes] = {}
    for marker, seg in _jpeg_segments(data):
        if marker == 0xE1 and seg.startswith(EXIF_MARK) and exif is None:
            exif = seg[len(EXIF_MARK):]
        elif marker == 0xE1 and seg.startswith(XMP_MARK) and xmp is None:
            xmp = seg[len(XMP_MARK):]
        elif marker == 0xE2 and seg.startswith(ICC_MARK) and len(seg) > 14:
            icc[seg[12]] = seg[14:]
        elif marker == 0xED and seg.startswith(IPTC_MARK) and iptc is None:
            iptc = seg[len(IPTC_MARK):]
    profile = b"".join(icc[k] for k in sorted(icc)) or None
    return Metadata(exif=exif or None, icc=profile, xmp=xmp or None, iptc=iptc or None)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 8
    while i + 8 <= len(data):
        length, kind = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8]
        out.append((kind, data[i + 8 : i + 8 + length]))
        if kind == b"IEND":
            break
        i += 12 + length
    return out


def _png(data: bytes) -> Metadata:
    exif = icc = xmp = None
    for kind, body in _png_chunks(data):
        if kind == b"eXIf":
            exif = body
        elif kind == b"iCCP":
            name_end = body.find(b"\x00")
            try:
                icc = zlib.decompress(body[name_end + 2 :])
            except zlib.error:
                icc = None
        elif kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\x00"):
            rest = body[len(b"XML:com.adobe.xmp\x00"):]
            compressed = rest[0] == 1
            text = rest[2:].split(b"\x00", 2)[-1]  # after the language tag and the translated keyword
            try:
                xmp = zlib.decompress(text) if compressed else text
            except zlib.error:
                xmp = None
    return Metadata(exif=exif or None, icc=icc or None, xmp=xmp or None)


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, i = [], 12
    while i + 8 <= len(data):
        kind, length = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        out.append((kind, data[i + 8 : i + 8 + length]))
        i += 8 + length + (length & 1)
    return out


def _webp(data: bytes) -> Metadata:
    found = dict(_riff_chunks(data))
    exif = found.get(b"EXIF")
    if exif and exif.startswith(EXIF_MARK):
        exif = exif[len(EXIF_MARK):]
    return Metadata(exif=exif or None, icc=found.get(b"ICCP") or None, xmp=found.get(b"XMP ") or None)


def embed(encoded: bytes, meta: Metadata) -> bytes:
    """``encoded`` (JPEG, PNG or WebP bytes as OpenCV wrote them) with ``meta`` written in; other
    formats are returned unchanged."""
    if not meta.kinds():
        return encoded
    if encoded[:2] == b"\xff\xd8":
        return _embed_jpeg(encoded, meta)
    if encoded[:8] == b"\x89PNG\r\n\x1a\n":
        return _embed_png(encoded, meta)
    if encoded[:4] == b"RIFF" and encoded[8:12] == b"WEBP":
        return _embed_webp(encoded, meta)
    return encoded


def _segment(marker: int, body: bytes) -> bytes:
    if len(body) + 2 > 0xFFFF:
        raise ValueError(f"a JPEG segment holds at most 65533 bytes, not {len(body)}")
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def _embed_jpeg(encoded: bytes, meta: Metadata) -> bytes:
    out = io.BytesIO()
    if meta.exif and len(meta.exif) + len(EXIF_MARK) <= 0xFFFD:
        out.write(_segment(0xE1, EXIF_MARK + meta.exif))
    if meta.xmp and len(meta.xmp) + len(XMP_MARK) <= 0xFFFD:
        out.write(_segment(0xE1, XMP_MARK + meta.xmp))
    if meta.icc:
        size = 0xFFFD - 14
        parts = [meta.icc[k : k + size] for k in range(0, len(meta.icc), size)]
        for n, part in enumerate(parts, 1):
            out.write(_segment(0xE2, ICC_MARK + bytes([n, len(parts)]) + part))
    if meta.iptc and len(meta.iptc) + len(IPTC_MARK) <= 0xFFFD:
        out.write(_segment(0xED, IPTC_MARK + meta.iptc))
    # after SOI and OpenCV's JFIF APP0, before everything else
    i = 2
    if encoded[2:4] == b"\xff\xe0":
        i = 4 + int.from_bytes(encoded[4:6], "big")
    return encoded[:i] + out.getvalue() + encoded[i:]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _embed_png(encoded: bytes, meta: Metadata) -> bytes:
    extra = b""
    if meta.icc:
        extra += _chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(meta.icc))
    if meta.exif:
        extra += _chunk(b"eXIf", meta.exif)
    if meta.xmp:
        extra += _chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + meta.xmp)
    end_of_ihdr = 8 + 12 + int.from_bytes(encoded[8:12], "big")
    return encoded[:end_of_ihdr] + extra + encoded[end_of_ihdr:]


def _riff(kind: bytes, body: bytes) -> bytes:
    return kind + len(body).to_bytes(4, "little") + body + (b"\x00" if len(body) & 1 else b"")


def _embed_webp(encoded: bytes, meta: Metadata) -> bytes:
    chunks = [(k, b) for k, b in _riff_chunks(encoded) if k not in (b"VP8X", b"ICCP", b"EXIF", b"XMP ")]
    width, height, alpha = _webp_canvas(chunks)
    flags = (0x20 if meta.icc else 0) | (0x10 if alpha else 0) | (0x08 if meta.exif else 0) | (0x04 if meta.xmp else 0)
    vp8x = struct.pack("<B3x", flags) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = _riff(b"VP8X", vp8x)
    if meta.icc:
        body += _riff(b"ICCP", meta.icc)
    body += b"".join(_riff(k, b) for k, b in chunks)
    if meta.exif:
        body += _riff(b"EXIF", meta.exif)
    if meta.xmp:
        body += _riff(b"XMP ", meta.xmp)
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WEBP" + body


def _webp_canvas(chunks: list[tuple[bytes, bytes]]) -> tuple[int, int, bool]:
    """Width, height and whether there is alpha, from the image chunk OpenCV wrote."""
    kinds = dict(chunks)
    if b"VP8L" in kinds:
        bits = int.from_bytes(kinds[b"VP8L"][1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    frame = kinds[b"VP8 "]
    w, h = int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF
    return w, h, b"ALPH" in kinds


HOMES = {".jpg": ("EXIF", "ICC", "XMP", "IPTC"), ".jpeg": ("EXIF", "ICC", "XMP", "IPTC"),
         ".png": ("EXIF", "ICC", "XMP"), ".webp": ("EXIF", "ICC", "XMP"),
         ".tif": ("EXIF", "ICC", "XMP", "IPTC", "GEO"), ".tiff": ("EXIF", "ICC", "XMP", "IPTC", "GEO"),
         ".dcm": ("DICOM",)}
"""What each output format can hold (TIFF: with the ``tiff`` extra; DICOM: its own header; BMP: nothing)."""


def tifffile_or_none() -> Any:
    """The ``tifffile`` package (the ``tiff`` extra), or None."""
    try:
        import tifffile  # an optional extra: TIFF metadata and GeoTIFF
    except ImportError:
        return None
    return tifffile


def for_format(meta: Metadata, suffix: str) -> tuple[Metadata, list[str], list[str]]:
    """``meta`` without what a ``suffix`` file cannot hold, with the kinds kept and dropped."""
    homes = HOMES.get(suffix.lower(), ())
    if suffix.lower() in (".tif", ".tiff") and tifffile_or_none() is None:
        homes = ()
    if suffix.lower() in (".jpg", ".jpeg"):  # one JPEG segment each (65,533 bytes); the ICC profile is chunked
        marks = {"EXIF": EXIF_MARK, "XMP": XMP_MARK, "IPTC": IPTC_MARK}
        homes = tuple(k for k in homes if k not in marks or len(getattr(meta, k.lower()) or b"") + len(marks[k])
                      <= 0xFFFD)
    kept = [k for k in meta.kinds() if k in homes]
    dropped = [k for k in meta.kinds() if k not in homes]
    return Metadata(**{k.lower(): getattr(meta, k.lower()) for k in kept}), kept, dropped


GEO_TAGS = {33550: "ModelPixelScaleTag", 33922: "ModelTiepointTag", 34264: "ModelTransformationTag",
            34735: "GeoKeyDirectoryTag", 34736: "GeoDoubleParamsTag", 34737: "GeoAsciiParamsTag",
            42112: "GDAL_METADATA", 42113: "GDAL_NODATA"}
TIFF_BLOBS = {34675: "icc", 700: "xmp", 33723: "iptc"}


def _tiff(data: bytes) -> Metadata:
    tifffile = tifffile_or_none()
    if tifffile is None:
        return Metadata()
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        tags = tif.pages[0].tags
        blobs = {name: bytes(tags[code].value) for code, name in TIFF_BLOBS.items()
                 if code in tags and isinstance(tags[code].value, (bytes, bytearray))}
        geo = tuple((t.code, int(t.dtype), t.count, t.value) for code in GEO_TAGS if (t := tags.get(code)) is not None)
    return Metadata(exif=_tiff_exif(data), icc=blobs.get("icc"), xmp=blobs.get("xmp"), iptc=blobs.get("iptc"),
                    geo=geo)


def _tiff_exif(data: bytes) -> bytes | None:
    """A TIFF's EXIF as an EXIF block: its first IFD's baseline tags of :data:`EXIF_IN_IFD0` and its Exif
    and GPS sub-IFDs (None when it has none, or they cannot be read)."""
    try:
        order, baseline, subs = _exif_ifds(data)
    except Exception:  # a damaged directory: no EXIF read (noqa: BLE001)
        return None
    if not subs:
        return None
    exif = Image.Exif()
    for code, _, _, value, _ in baseline:
        exif[code] = value
    for pointer, sub in subs.items():
        exif[pointer] = dict(sub)
    block = exif.tobytes()
    return block[len(EXIF_MARK):] if block.startswith(EXIF_MARK) else block


def _point_shift(geo: tuple[tuple[int, int, int, Any], ...], s: float) -> float:
    """Where pixel 0 of the old grid sits on the new one: 0 for PixelIsArea, (s - 1) / 2 for
    PixelIsPoint (GTRasterTypeGeoKey 1025 = 2: coordinates name pixel centres)."""
    keys = next((v for code, _, _, v in geo if code == 34735), ())
    for k in range(4, len(keys) - 3, 4):
        if keys[k] == 1025 and keys[k + 1] == 0 and keys[k + 3] == 2:
            return (s - 1) / 2
    return 0.0


def scale_geo(geo: tuple[tuple[int, int, int, Any], ...], s: float) -> tuple[tuple[int, int, int, Any], ...]:
    """GeoTIFF tags for an image ``s`` times larger: the pixel scale divided by ``s``; tie points'
    raster coordinates multiplied by ``s`` (plus the half-pixel shift for PixelIsPoint); a
    transformation matrix's raster columns divided by ``s`` (its offsets moved for PixelIsPoint).
    The world coordinates and the GeoKeys are unchanged."""
    shift = _point_shift(geo, s)
    out = []
    for code, dtype, count, value in geo:
        v = list(value) if isinstance(value, (tuple, list)) else value
        if code == 33550:
            v = [v[0] / s, v[1] / s, *v[2:]]
        elif code == 33922:
            for k in range(0, len(v) - 5, 6):
                v[k], v[k + 1] = v[k] * s + shift, v[k + 1] * s + shift
        elif code == 34264:
            for row in (0, 4):
                a, b = v[row], v[row + 1]
                v[row], v[row + 1] = a / s, b / s
                v[row + 3] -= (a + b) * shift / s
        out.append((code, dtype, count, tuple(v) if isinstance(v, list) else v))
    return tuple(out)


EXIF_IN_IFD0 = (270, 271, 272, 306, 315, 33432)
"""EXIF's IFD0 tags that are TIFF baseline tags (description, make, model, date, artist, copyright):
written into a TIFF output's own first IFD."""
EXIF_POINTERS = (0x8769, 0x8825)  # the Exif and GPS sub-IFDs
_STAND_IN = {0x8769: 65000, 0x8825: 65001}
"""Private tags the pointers are written under (tifffile refuses to write the pointer tags themselves),
renamed in place once the sub-IFDs are appended."""


def _exif_ifds(exif: bytes) -> tuple[str, list[tuple[int, int, int, Any, bool]], dict[int, Any]]:
    """From an EXIF block (a TIFF structure): its byte order (``<`` or ``>``), tifffile extratags for its
    baseline IFD0 tags, and its Exif and GPS sub-IFDs as Pillow directories that keep each tag's type."""
    head = TiffImagePlugin.ImageFileDirectory_v2(ifh=exif[:8])
    fp = io.BytesIO(exif)
    fp.seek(head.next)
    head.load(fp)
    tags = [(code, 2, 0, str(head[code]), True) for code in EXIF_IN_IFD0 if code in head and head[code]]
    subs = {}
    for pointer in EXIF_POINTERS:
        if pointer in head:
            sub = TiffImagePlugin.ImageFileDirectory_v2(ifh=exif[:8])
            fp.seek(int(head[pointer]))
            sub.load(fp)
            for tag in list(sub):  # decode every tag: Pillow writes only the tags it has decoded
                sub[tag]
            if len(sub):
                subs[pointer] = sub
    return ("<" if exif[:2] == b"II" else ">"), tags, subs


def _attach_ifds(data: bytes, subs: dict[int, Any], order: str) -> bytes:
    """``data`` (a classic TIFF whose first IFD holds a stand-in tag for each pointer of ``subs``) with
    each sub-IFD appended (word-aligned), its pointer set to where it went and given its own code, and the
    first IFD's entries sorted again (12-byte records: values in place or referenced by offset)."""
    first = struct.unpack_from(order + "I", data, 4)[0]
    n = struct.unpack_from(order + "H", data, first)[0]
    records = [bytearray(data[first + 2 + 12 * i: first + 14 + 12 * i]) for i in range(n)]
    out = bytearray(data)
    for pointer, sub in subs.items():
        out += b"\0" * (len(out) % 2)
        record = next(r for r in records if struct.unpack_from(order + "H", r)[0] == _STAND_IN[pointer])
        struct.pack_into(order + "HHII", record, 0, pointer, 4, 1, len(out))
        out += sub.tobytes(len(out))
    records.sort(key=lambda r: struct.unpack_from(order + "H", r)[0])
    out[first + 2: first + 2 + 12 * n] = b"".join(records)
    return bytes(out)


def encode_tiff(img: Any, meta: Metadata, software: str) -> bytes:
    """An ``(H, W, C)`` RGB(A) or gray array as a zlib-compressed TIFF holding ``meta``'s ICC, XMP,
    IPTC and GeoTIFF tags and its EXIF (the baseline tags in the first IFD, the Exif and GPS
    sub-IFDs with their tags' types; the file in the EXIF block's byte order) (the ``tiff`` extra)."""
    tifffile = tifffile_or_none()
    extratags = [(code, "B", len(getattr(meta, name)), getattr(meta, name), True)
                 for code, name in TIFF_BLOBS.items() if getattr(meta, name)]
    extratags += [(code, dtype, count, value, True) for code, dtype, count, value in meta.geo]
    order, subs = "<", {}
    if meta.exif:
        try:
            order, baseline, subs = _exif_ifds(meta.exif)
        except Exception:  # a damaged EXIF block is dropped, not copied (noqa: BLE001)
            baseline = []
        extratags += baseline + [(_STAND_IN[pointer], 4, 1, 0, True) for pointer in subs]
    channels = img.shape[2] if img.ndim == 3 else 1
    photometric = "minisblack" if channels == 1 else "rgb"
    buf = io.BytesIO()
    tifffile.imwrite(buf, img[:, :, 0] if channels == 1 else img, photometric=photometric, byteorder=order,
                     extrasamples=["unassalpha"] if channels == 4 else None, extratags=extratags,
                     software=software, compression="zlib", metadata=None)
    return _attach_ifds(buf.getvalue(), subs, order) if subs else buf.getvalue()
