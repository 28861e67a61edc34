"""Time the reference implementation (junyanz pytorch-CycleGAN-and-pix2pix) on this machine, now,
so that i2i's figures can be quoted as ratios measured in the same run.

    python tools/bench_reference.py --reference REF --model pix2pix --iterations 16
    python tools/bench_reference.py --reference REF --test 40              # test.py images/s
    python tools/benchmark.py configs/pix2pix/facades.yaml --reference REF   # runs this, prints the ratio
    python tools/bench_convert.py configs/pix2pix/facades.yaml --reference REF --like-reference --mode paper

``REF`` is a checkout of the reference code (e.g. upstream 2a7afba). Its ``train.py`` runs on
synthetic 256x256 data (aligned AB pairs for pix2pix, two unpaired folders for CycleGAN) at
its defaults (the paper settings, batch 1), with data loading in the main process and
``--print_freq 1``; the seconds per iteration are the median gap between consecutive loss
lines after the first iteration. Its ``test.py`` (``--test N``) runs the pix2pix U-Net at its
defaults (train-mode batch norm and dropout, batch 1, 256 px) on N aligned JPEGs and writes
three PNGs and an HTML row per image; images/s is taken between its first and last progress
lines (steady state, start-up excluded). The reference needs ``dominate`` on ``PYTHONPATH``; its
``import wandb`` is stubbed when wandb is missing. Nothing here is imported by i2i.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_reference_data(root: Path, n: int = 8) -> dict[str, Path]:
    """Aligned 512x256 AB pairs (``x/train``) and unpaired 256x256 ``y/trainA``, ``y/trainB``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        for path, (w, h) in ((root / "x" / "train" / f"{i}.jpg", (512, 256)),
                             (root / "y" / "trainA" / f"{i}.jpg", (256, 256)),
                             (root / "y" / "trainB" / f"{i}.jpg", (256, 256))):
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=95)
    return {"pix2pix": root / "x", "cycle_gan": root / "y"}


def reference_s_per_it(repo: str | Path, model: str = "pix2pix", iterations: int = 16,
                       threads: int | None = None) -> float:
    """Median wall seconds per training iteration of the reference's ``train.py`` (``model``:
    ``pix2pix`` or ``cycle_gan``), excluding the first iteration."""
    work = Path(tempfile.mkdtemp(prefix="i2i-ref-"))
    data = make_reference_data(work / "datasets")
    env = _reference_env(work, threads)
    epochs = max(1, -(-iterations // 8))  # 8 images per epoch, batch 1
    args = [sys.executable, "train.py", "--dataroot", str(data[model]), "--name", f"bench_{model}", "--model", model,
            "--checkpoints_dir", str(work / "checkpoints"), "--print_freq", "1", "--n_epochs", str(epochs),
            "--n_epochs_decay", "0",
            "--save_latest_freq", "100000000", "--save_epoch_freq", "100000", "--num_threads", "0"]
    if model == "pix2pix":
        args += ["--direction", "AtoB"]
    proc = subprocess.Popen(args, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stamps = []
    for line in proc.stdout:
        if re.search(r"\(epoch: \d+, iters: \d+, time: [\d.]+, data: [\d.]+\)", line):
            stamps.append(time.perf_counter())
    if proc.wait() != 0 or len(stamps) < 3:
        raise RuntimeError(f"the reference train.py in '{repo}' failed or printed too few iterations ({len(stamps)}); "
                           "is dominate on PYTHONPATH?")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(gaps)


def _reference_env(work: Path, threads: int | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    try:
        import wandb  # noqa: F401
    except ImportError:
        (work / "stubs" / "wandb").mkdir(parents=True, exist_ok=True)
        (work / "stubs" / "wandb" / "__init__.py").write_text("run = None\n")
        env["PYTHONPATH"] = f"{work / 'stubs'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def make_reference_test_images(folder: Path, n: int, size: int = 256) -> list[Path]:
    """``n`` aligned ``(size, 2*size)`` AB JPEGs (quality 95, a gradient plus noise: photo-like
    compressibility) in ``folder/test``; also each A half alone in ``folder/A`` (what i2i converts)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0 : 2 * size]
    base = (x + 2 * y) * 255 // (4 * size)
    out = []
    for i in range(n):
        ab = np.clip(base[:, :, None] + rng.integers(-20, 21, (size, 2 * size, 3)), 0, 255).astype(np.uint8)
        for path, img in ((folder / "test" / f"{i:05d}.jpg", ab), (folder / "A" / f"{i:05d}.jpg", ab[:, :size])):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(img)).save(path, quality=95)
        out.append(folder / "A" / f"{i:05d}.jpg")
    return out


def reference_test_img_per_s(repo: str | Path, data: Path, n: int, threads: int | None = None) -> float:
    """Steady images/s of the reference's pix2pix ``test.py`` on ``data/test`` (see
    :func:`make_reference_test_images`) with a freshly initialised unet_256 (speed does not
    depend on the weights), at its defaults: train-mode norm and dropout, 3 PNGs + HTML per image."""
    work = Path(tempfile.mkdtemp(prefix="i2i-ref-test-"))
    env = _reference_env(work, threads)
    ckpt = work / "checkpoints" / "bench_pix2pix"
    ckpt.mkdir(parents=True)
    make_g = ("import sys, torch; from models import networks as N; "
              "torch.save(N.define_G(3, 3, 64, 'unet_256', 'batch', True).state_dict(), sys.argv[1])")
    subprocess.run([sys.executable, "-c", make_g, str(ckpt / "latest_net_G.pth")], cwd=repo, env=env, check=True)
    args = [sys.executable, "test.py", "--dataroot", str(data), "--name", "bench_pix2pix", "--model", "pix2pix",
            "--direction", "AtoB", "--checkpoints_dir", str(work / "checkpoints"), "--results_dir",
            str(work / "results"),
            "--num_test", str(n), "--num_threads", "0"]
    proc = subprocess.Popen(args, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks = []
    for line in proc.stdout:
        m = re.search(r"processing \((\d+)\)", line)
        if m:
            marks.append((time.perf_counter(), int(m[1])))
    if proc.wait() != 0 or len(marks) < 2:
        raise RuntimeError(f"the reference test.py in '{repo}' failed or printed too few progress lines ({len(marks)})")
    (t0, i0), (t1, i1) = marks[0], marks[-1]
    # test.py prints "processing (i)" every 5 images, before saving image i; the run ends after
    # saving the last one, so the steady rate is taken between the first and last marks.
    return (i1 - i0) / (t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True, help="checkout of pytorch-CycleGAN-and-pix2pix")
    p.add_argument("--model", choices=["pix2pix", "cycle_gan"], default="pix2pix")
    p.add_argument("--iterations", type=int, default=16)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--test", type=int, default=0, metavar="N", help="time test.py on N images instead of train.py")
    a = p.parse_args()
    if a.test:
        data = Path(tempfile.mkdtemp(prefix="i2i-ref-data-"))
        make_reference_test_images(data, a.test)
        r = reference_test_img_per_s(a.reference, data, a.test, a.threads)
        print(f"reference pix2pix test.py: {r:.2f} images/s (steady, batch 1, 256 px, 3 PNGs + HTML per image)")
        return
    s = reference_s_per_it(a.reference, a.model, a.iterations, a.threads)
    print(f"reference {a.model} train.py: {s:.3f} s/iteration (median, batch 1, 256 px)")


if __name__ == "__main__":
    main()
