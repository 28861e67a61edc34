"""``i2i download``: the reference's published datasets and generators, and the weights files
evaluation and losses use, fetched only when a user asks.

Every download goes to ``NAME.part`` beside its destination (a rerun resumes it with an HTTP
range request), is checked (the byte count against ``Content-Length``; weights files named
``name-<first 8 hex of sha256>.pth``, torchvision's convention, against their hash; archives
by reading every member), and only then is put in place by a rename: an interrupted or
failed download never leaves a file under the final name. Archives are unpacked into a
temporary folder beside the target and renamed in; a member that would land outside it (an
absolute path, ``..``, a link) stops the unpacking. Models are imported with the existing
importer into i2i exports, so the pickled ``.pth`` is read with ``weights_only=True`` and
then deleted.

``mirror`` (``--mirror``, or ``I2I_DOWNLOAD_MIRROR``) replaces the ``scheme://host`` of every
URL: for a local copy of the files, and for the tests (a server on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .compat.reference import import_reference_file
from .hints import did_you_mean

REFERENCE_HOST = "http://efrosgans.eecs.berkeley.edu"

PIX2PIX_DATASETS = ("facades", "maps", "edges2shoes", "edges2handbags", "night2day")
CYCLEGAN_DATASETS = ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "cezanne2photo",
                     "ukiyoe2photo",
                     "vangogh2photo", "maps", "facades", "iphone2dslr_flower", "ae_photos", "mini", "mini_pix2pix",
                     "mini_colorization")
CYCLEGAN_MODELS = ("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
                   "zebra2horse",
                   "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map", "map2sat",
                   "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo",
                   "iphone2dslr_flower")
PIX2PIX_MODELS = ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night")
WEIGHTS = {
    "fid-inception": "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "inception": "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "lpips-alex": "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
    "lpips-vgg": "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
}
#: Weights saved under another name than their URL's: the LPIPS heads, named with the sha256
#: prefix (checked after the download) as torchvision names its files.
WEIGHTS_FILES = {"lpips-alex": "lpips_alex-df73285e.pth", "lpips-vgg": "lpips_vgg-a78928a0.pth"}
#: Weights that need others: LPIPS's heads sit on torchvision's backbone.
WEIGHTS_NEEDS = {"lpips-alex": ("alexnet",), "lpips-vgg": ("vgg16",)}
REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"
#: Real-ESRGAN's released generators: name -> (URL, sha256). The release publishes no hashes;
#: these are the digests other projects pin for the same URLs (each found in two or more
#: independent places). RealESRNet_x4plus has none recorded: its download prints the digest
#: it got instead.
SR_MODELS = {
    "RealESRGAN_x4plus": (f"{REAL_ESRGAN}/v0.1.0/RealESRGAN_x4plus.pth",
                          "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1"),
    "RealESRNet_x4plus": (f"{REAL_ESRGAN}/v0.1.1/RealESRNet_x4plus.pth", None),
    "RealESRGAN_x2plus": (f"{REAL_ESRGAN}/v0.2.1/RealESRGAN_x2plus.pth",
                          "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb"),
    "RealESRGAN_x4plus_anime_6B": (f"{REAL_ESRGAN}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
                                   "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da"),
    "realesr-general-x4v3": (f"{REAL_ESRGAN}/v0.2.5.0/realesr-general-x4v3.pth",
                             "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292"),
    "realesr-animevideov3": (f"{REAL_ESRGAN}/v0.2.5.0/realesr-animevideov3.pth",
                             "3a5ca263a93b5c827d6e4a482b8857df6cc8a5c78a9a6065b5e72d4f60b0c7d6"),
}


class DownloadError(RuntimeError):
    """A download could not be completed or checked; the message names the URL and the file."""


@dataclass(frozen=True)
class Source:
    """One downloadable thing: ``key`` (``pix2pix/facades``), its URL and its kind."""

    key: str
    url: str
    kind: str  # "dataset" | "model" | "weights"
    sha256: str | None = None  # the whole file's, where known


def catalogue() -> dict[str, list[Source]]:
    """Kind -> every known source (the reference scripts' lists, and the weights files)."""
    return {
        "dataset": [Source(f"pix2pix/{n}", f"{REFERENCE_HOST}/pix2pix/datasets/{n}.tar.gz",
                           "dataset") for n in PIX2PIX_DATASETS]
        + [Source(f"cyclegan/{n}", f"{REFERENCE_HOST}/cyclegan/datasets/{n}.zip",
                  "dataset") for n in CYCLEGAN_DATASETS],
        "model": [Source(f"cyclegan/{n}", f"{REFERENCE_HOST}/cyclegan/pretrained_models/{n}.pth",
                         "model") for n in CYCLEGAN_MODELS]
        + [Source(f"pix2pix/{n}", f"{REFERENCE_HOST}/pix2pix/models-pytorch/{n}.pth", "model") for n in PIX2PIX_MODELS]
        + [Source(f"realesrgan/{n}", url, "model", sha) for n, (url, sha) in SR_MODELS.items()],
        "weights": [Source(n, url, "weights") for n, url in WEIGHTS.items()],
    }


def find_source(kind: str, name: str) -> Source:
    """The source called ``name`` (``facades``, or ``cyclegan/facades`` where two share a name)."""
    sources = catalogue()[kind]
    exact = [s for s in sources if s.key == name]
    matches = exact or [s for s in sources if s.key.split("/")[-1] == name]
    if len(matches) == 1:
        return matches[0]
    keys = [s.key for s in sources]
    if matches:
        raise ValueError(f"{kind} {name!r} is ambiguous: say {' or '.join(m.key for m in matches)}")
    short = sorted({k.split("/")[-1] for k in keys})
    raise ValueError(f"unknown {kind} {name!r}{did_you_mean(name, short)}; known: {', '.join(keys)}")


def with_mirror(url: str, mirror: str | None) -> str:
    """``url`` with its ``scheme://host[:port]`` replaced by ``mirror`` (when given)."""
    mirror = mirror or os.environ.get("I2I_DOWNLOAD_MIRROR")
    if not mirror:
        return url
    return mirror.rstrip("/") + re.sub(r"^[a-z]+://[^/]+", "", url)


def expected_hash_prefix(url: str) -> str | None:
    """The sha256 prefix a torchvision-style file name carries (``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``)."""
    m = re.search(r"-([0-9a-f]{8,64})\.[a-z0-9]+$", url.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in pieces (weights files are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, *, progress: bool | None = None, timeout: float = 30.0,
          sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part`` (resumed when present), check its size,
    its ``sha256`` when given and (for hash-named files) the sha256 prefix of the name, then
    rename it into place. Returns ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.is_symlink() or (part.exists() and not part.is_file()):
        raise DownloadError(f"'{part}' (a partial download's name) is a symbolic link or not a regular file; i2i "
                            "writes nothing through it: remove it and run the command again")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url,
                                     headers={"User-Agent": "i2i", **({"Range": f"bytes={have}-"} if have else {})})
    try:
        response = urllib.request.urlopen(request,
                                          timeout=timeout)  # noqa: S310 - the URL is a known source or the user's mirror
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already complete
            response = None
        else:
            raise DownloadError(f"{url}: the server answered {e.code} {e.reason}; nothing was written to "
                                f"'{dest}'") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        kept = f"the partial download '{part}' is kept for a resume" if have else "nothing was written"
        raise DownloadError(f"cannot reach {url} ({reason}): check the network connection, or download it by hand and "
                            "put it "
                            f"at '{dest}'; {kept}") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            show = progress if progress is not None else sys.stderr.isatty()
            bar = None
            if show:
                bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, file=sys.stderr)
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if resumed else os.O_TRUNC)
                with os.fdopen(os.open(part, flags, 0o666), "wb") as f:  # never through a link put in its place
                    while chunk := response.read(1 << 16):
                        f.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                raise DownloadError(f"the download of {url} broke off ({e}); run the same command again to resume "
                                    f"from the {part.stat().st_size:,} bytes kept in '{part}'") from None
            finally:
                if bar is not None:
                    bar.close()
        size = part.stat().st_size
        if total is not None and size != total:
            raise DownloadError(f"{url}: got {size:,} of {total:,} bytes; run the same command again to resume from "
                                f"'{part}'")
    prefix = sha256 or expected_hash_prefix(dest.name) or expected_hash_prefix(url)
    if prefix is not None:
        digest = file_sha256(part)
        if not digest.startswith(prefix):
            part.unlink()
            what = f"the recorded {prefix[:12]}..." if sha256 else f"the {prefix} its name promises"
            raise DownloadError(f"{url}: the sha256 of the download ({digest[:12]}...) does not match {what}; "
                                "the damaged file was removed: try again or use another mirror")
    os.replace(part, dest)
    return dest


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        p = Path(name)
        if p.is_absolute() or ".." in p.parts or name.startswith(("/", "\\")):
            raise DownloadError(f"'{archive}' holds '{name}', which would be written outside the target folder; it was "
                                "not unpacked")


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a ``.tar.gz`` or ``.zip`` whose members sit under one top folder into ``dest``
    (that folder's contents), via a temporary folder beside ``dest`` and a rename. Refuses
    members that would land outside it; never replaces an existing ``dest``."""
    if dest.exists():
        raise DownloadError(f"'{dest}' already exists; remove it or choose another --out (nothing was changed)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        if archive.name.endswith((".tar.gz", ".tgz", ".tar")):
            try:
                with tarfile.open(archive) as tar:
                    members = tar.getmembers()
                    _safe_members([m.name for m in members], archive)
                    bad = [m.name for m in members if not (m.isfile() or m.isdir())]
                    if bad:
                        raise DownloadError(f"'{archive}' holds links or devices ({', '.join(bad[:3])}); it was not "
                                            "unpacked")
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, EOFError, OSError) as e:
                raise DownloadError(f"'{archive}' is not a readable tar archive ({e}); delete it and "
                                    "download again") from None
        else:
            try:
                with zipfile.ZipFile(archive) as z:
                    _safe_members(z.namelist(), archive)
                    if z.testzip() is not None:
                        raise DownloadError(f"'{archive}' fails its CRC check; delete it and download again")
                    z.extractall(tmp)
            except (zipfile.BadZipFile, OSError) as e:
                raise DownloadError(f"'{archive}' is not a readable zip archive ({e}); delete it and "
                                    "download again") from None
        entries = [p for p in tmp.iterdir() if not p.name.startswith("__MACOSX")]
        if not any(p.is_file() for p in tmp.rglob("*") if "__MACOSX" not in p.parts):
            raise DownloadError(f"'{archive}' holds no files (an empty archive); nothing was unpacked: try another "
                                "mirror, or delete it and download again")
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        if root is tmp:
            tmp.rename(dest)
        else:
            root.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def download_dataset(name: str, out_dir: str | Path = "datasets", *, mirror: str | None = None,
                     progress: bool | None = None) -> Path:
    """Fetch and unpack a reference dataset into ``out_dir/<name>`` (e.g. ``datasets/facades``
    with ``train/ val/ test/`` side-by-side pairs; CycleGAN sets with ``trainA/ trainB/ ...``)."""
    src = find_source("dataset", name)
    short = src.key.split("/")[-1]
    out = Path(out_dir)
    dest = out / short
    if dest.exists():
        raise DownloadError(f"'{dest}' already exists; remove it or choose another --out (nothing was downloaded)")
    archive = out / Path(src.url).name
    fetch(with_mirror(src.url, mirror), archive, progress=progress)
    unpack(archive, dest)
    archive.unlink()
    return dest


def download_model(name: str, out_dir: str | Path = "models", *, mirror: str | None = None,
                   progress: bool | None = None) -> Path:
    """Fetch a published generator (the reference's pix2pix / CycleGAN models, Real-ESRGAN's)
    and import it as ``out_dir/<name>.pt`` (an i2i export that ``convert`` and ``Translator``
    use; the downloaded ``.pth`` is deleted). A file with a recorded sha256 is checked against it."""
    src = find_source("model", name)
    short = src.key.split("/")[-1]
    out = Path(out_dir)
    dest = out / f"{short}.pt"
    raw = out / f"{short}.pth"
    fetch(with_mirror(src.url, mirror), raw, progress=progress, sha256=src.sha256)
    if src.sha256 is None and src.key.startswith("realesrgan/"):
        print(f"note: no sha256 is recorded for {src.key}; the downloaded file's is {file_sha256(raw)}",
              file=sys.stderr)
    try:
        import_reference_file(raw, dest)
    finally:
        raw.unlink(missing_ok=True)
    return dest


def download_weights(name: str, *, mirror: str | None = None, progress: bool | None = None) -> Path:
    """Fetch a weights file into torchvision's cache (``<torch hub>/checkpoints``), where i2i
    looks for it (FID Inception, torchvision Inception, VGG19, LPIPS: its heads and, first,
    the backbone they need)."""
    src = find_source("weights", name)
    for needed in WEIGHTS_NEEDS.get(src.key, ()):
        download_weights(needed, mirror=mirror, progress=progress)
    dest = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILES.get(src.key, Path(src.url).name)
    if dest.is_file():
        return dest
    return fetch(with_mirror(src.url, mirror), dest, progress=progress)
