"""Images per second of the training input path, side by side in one run.

    python tools/bench_data.py                          # i2i's paired input path on this machine
    python tools/bench_data.py --reference REF          # + the reference's AlignedDataset, same files
    python tools/bench_data.py --workers 0 2 4 --n 64 --repeats 5

The data are ``--n`` aligned 512x256 AB JPEG pairs cut from the bundled photos (``datasets/sample/photos``),
each item as pix2pix trains on it: decode, resize to 286, one random 256 crop and flip shared by
A and B, tensors in [-1, 1]. Rows (pairs per second, median of ``--repeats`` passes over the
files, after one warm-up pass; the in-process rows' passes alternate):

- ``decode (cv2)`` / ``decode (PIL)``: reading and decoding the JPEG alone, the floor of any loader;
- ``i2i PairedDataset``: ``dataset[i]`` in this process;
- ``i2i DataLoader, N workers``: batch 1 through ``torch.utils.data.DataLoader`` as training runs it;
- the same two with ``data.cache: memory`` (every file decoded once beforehand);
- ``i2i cache: device, batch B``: ``data.cache: device`` (uint8 images on ``--device``, each batch of
  ``--batch`` resized, cropped and flipped there in a few batched operations; the CPU's share is
  the per-item draw, ~60 us);
- ``reference AlignedDataset`` (``--reference``, a checkout of pytorch-CycleGAN-and-pix2pix):
  ``dataset[i]`` with its defaults (PIL, torchvision transforms).

Torch runs ``--threads`` threads (default 1: per-image work must not use the training process's
thread pool; see docs/benchmarks.md). Nothing here is imported by i2i.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from i2i.data.paired import PairedDataConfig, PairedDataset  # noqa: E402


def make_pairs(root: Path, n: int) -> Path:
    """``n`` aligned 512x256 JPEG pairs (A: a photo crop, B: its negative) in ``root/train``."""
    photos = sorted((ROOT / "datasets" / "sample" / "photos").glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no photos in {ROOT / 'datasets' / 'sample' / 'photos'}")
    out = root / "train"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = cv2.imread(str(photos[i % len(photos)]), cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        s = int(min(h, w) * 0.7)  # a different crop of the photo for every file
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        a = cv2.resize(img[y:y + s, x:x + s], (256, 256), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / f"{i:04d}.jpg"), np.concatenate([a, 255 - a], 1), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def rates(fns: dict[str, Callable[[int], object]], n: int, repeats: int) -> dict[str, float]:
    """Median items per second of ``repeats`` passes of each ``fn(0..n-1)`` after one warm-up
    pass each; the passes of the functions alternate, so a slow moment of the machine falls on
    all of them alike."""
    for fn in fns.values():
        for i in range(n):
            fn(i)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for i in range(n):
                fn(i)
            times[name].append(n / (time.perf_counter() - t0))
    return {name: statistics.median(t) for name, t in times.items()}


def loader_rate(ds: PairedDataset, workers: int, repeats: int) -> float:
    """Median pairs per second through a DataLoader (batch 1, shuffled), after one warm-up epoch."""
    loader = torch.utils.data.DataLoader(ds, batch_size=1, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    rates = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        count = sum(1 for _ in loader)
        if r:
            rates.append(count / (time.perf_counter() - t0))
    return statistics.median(rates)


def device_rate(ds: PairedDataset, device: torch.device, batch: int, repeats: int) -> float:
    """Median pairs per second of ``data.cache: device`` batches (shuffled epochs, device-synchronised)."""
    from i2i.data.device import DeviceBatches, DeviceImages
    from i2i.data.sampling import EpochSampler

    store = DeviceImages(ds.device_keys(), ds.device_image, device)
    sampler = EpochSampler(len(ds), seed=0)
    batches = DeviceBatches(ds, sampler, batch, store)
    rates = []
    for r in range(repeats + 1):
        sampler.set_epoch(r)
        t0 = time.perf_counter()
        count = sum(b["input"].shape[0] for b in batches)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if r:
            rates.append(count / (time.perf_counter() - t0))
    return statistics.median(rates)


def reference_dataset(ref: Path, root: Path) -> Callable[[int], object]:
    """The reference's AlignedDataset over ``root/train`` at its pix2pix defaults."""
    sys.path.insert(0, str(ref))
    from data.aligned_dataset import AlignedDataset  # the reference checkout's module

    opt = types.SimpleNamespace(dataroot=str(root), phase="train", max_dataset_size=float("inf"), direction="AtoB",
                                input_nc=3, output_nc=3, preprocess="resize_and_crop", load_size=286, crop_size=256,
                                no_flip=False, serial_batches=False, isTrain=True)
    ds = AlignedDataset(opt)
    return ds.__getitem__


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=32, help="pairs (files) per pass")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="*", default=[0, 2])
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--batch", type=int, default=16, help="batch size of the cache: device row")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="device of the cache: device row")
    p.add_argument("--reference", type=Path, default=None, metavar="REF",
                   help="a reference checkout: time its AlignedDataset")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with tempfile.TemporaryDirectory() as tmp:
        train = make_pairs(Path(tmp), a.n)
        files = sorted(train.glob("*.jpg"))
        ds = PairedDataset(train, PairedDataConfig(layout="aligned", load_size=286, crop_size=256), seed=0)
        cached = PairedDataset(train, PairedDataConfig(layout="aligned", load_size=286, crop_size=256), seed=0)
        cached.cache_in_memory()
        fns: dict[str, Callable[[int], object]] = {
            "decode (cv2)": lambda i: cv2.imdecode(np.fromfile(files[i], np.uint8), cv2.IMREAD_COLOR),
            "decode (PIL)": lambda i: np.asarray(Image.open(files[i]).convert("RGB")),
            "i2i PairedDataset": lambda i: ds[i],
            "i2i PairedDataset, cache: memory": lambda i: cached[i],
        }
        if a.reference is not None:
            fns["reference AlignedDataset"] = reference_dataset(a.reference, Path(tmp))
        rows = list(rates(fns, a.n, a.repeats).items())
        rows += [(f"i2i DataLoader, {w} workers", loader_rate(ds, w, a.repeats)) for w in a.workers]
        rows += [(f"i2i DataLoader, {w} workers, cache: memory", loader_rate(cached, w, a.repeats)) for w in a.workers]
        rows.append((f"i2i cache: device ({a.device}), batch {a.batch}", device_rate(cached, torch.device(a.device),
                                                                                     a.batch, a.repeats)))
    print(f"input path, 512x256 AB JPEG -> resize 286 -> crop 256 -> flip -> tensors; {a.n} files, median of "
          f"{a.repeats}; "
          f"{cpu}, torch {torch.__version__} ({a.threads} thread(s))")
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:8.1f} pairs/s")


if __name__ == "__main__":
    main()
