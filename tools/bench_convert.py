"""Folder-conversion benchmark: generate N images, convert them, report images/s and peak memory.

    python tools/bench_convert.py configs/pix2pix/facades.yaml --n 64 --size 256 --threads 2
    python tools/bench_convert.py configs/pix2pix/facades.yaml --like-reference   # + 2 PNGs and an HTML row per image
    python tools/bench_convert.py configs/pix2pix/facades.yaml --like-reference --mode paper --reference REF
    python tools/bench_convert.py configs/cyclegan/horse2zebra.yaml --runtime torch,compile,onnxruntime,openvino

Uses the generator of CONFIG with its initial weights (speed does not depend on the
values) through the real conversion path (:func:`i2i.convert.run_jobs`: background
decoding, batching of equal sizes, background encoding). ``--like-reference`` also writes
what the reference pix2pix test script writes per image (real_A, fake_B and real_B PNGs
and an HTML row), for a like-for-like comparison. Peak memory: the process's maximum
resident set size (and CUDA's peak allocation on a GPU).

``--reference REF`` (a checkout of the reference code) also times its pix2pix ``test.py`` on
the same pictures in the same run, alternating with i2i's repeats, and prints the ratio of
the medians. The reference reads aligned AB JPEGs and i2i their A halves (the same pixels;
the reference decodes twice the pixels and resizes 256 -> 256, which its pipeline always does).
Compare like for like: ``--mode paper --like-reference --batch-size 1`` is what test.py does.

``--runtime`` takes settings ``RUNTIME[:PRECISION]`` separated by commas (``torch``, ``compile``,
``onnxruntime``, ``openvino``, ``openvino:bf16``, ``openvino:int8``, ``torch:bf16``). With more than one,
each repeat runs every setting in turn, each in its own process (so each has its own peak memory),
after a warm-up image that builds the model (export, compile, quantization: its seconds are reported
apart, not in images/s); the table names the fastest setting on this machine. int8 is calibrated on
the benchmark's own inputs (``--calibration`` names another folder).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reference import make_reference_test_images, reference_test_img_per_s  # noqa: E402

from i2i.convert import ConvertOptions, plan_jobs, run_jobs  # noqa: E402
from i2i.data.io import read_image, write_image  # noqa: E402
from i2i.recipes import (
    load_config,  # noqa: E402
    pipeline_class,  # noqa: E402
)
from i2i.translator import Translator  # noqa: E402


def make_images(folder: Path, n: int, size: int, channels: int) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    base = ((x + y) * 255 // (2 * size - 2)).astype(np.int32)
    for i in range(n):
        img = np.clip(base[:, :, None] + rng.integers(-20, 21, (size, size, channels)), 0, 255).astype(np.uint8)
        write_image(folder / f"{i:05d}.png", img)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--mode", default="eval", choices=["eval", "paper"])
    p.add_argument("--tile", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--like-reference", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--reference", default=None, metavar="REF",
                   help="checkout of the reference code: time its test.py too")
    p.add_argument("--runtime", default="torch", help="settings RUNTIME[:PRECISION], comma-separated")
    p.add_argument("--calibration", default=None, help="int8 calibration folder (default: the benchmark's inputs)")
    p.add_argument("--input", type=Path, default=None, help=argparse.SUPPRESS)  # a driver's inputs, for its children
    a = p.parse_args()
    settings = a.runtime.split(",")
    if len(settings) > 1:
        return compare_runtimes(a, settings)
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_config(a.config, a.set)
    pipe = pipeline_class(cfg.pipeline)
    direction = pipe.default_direction(cfg)
    torch.manual_seed(0)
    runtime, _, precision = a.runtime.partition(":")
    tmp = Path(tempfile.mkdtemp(prefix="i2i-bench-convert-"))
    tr = Translator(pipe.build_net(cfg, pipe.directions[direction]), cfg, direction=direction, mode=a.mode,
                    device=a.device, tile=a.tile, precision=precision or a.precision, runtime=runtime,
                    calibration=a.calibration or (a.input or tmp / "in") if precision == "int8" else None)
    if a.input:
        (tmp / "in").symlink_to(a.input.resolve())
    elif a.reference:
        make_reference_test_images(tmp / "ref", a.n, a.size)
        (tmp / "in").symlink_to(tmp / "ref" / "A")
    else:
        make_images(tmp / "in", a.n, a.size, tr.in_channels)
    ref_rates: list[float] = []
    t0 = time.perf_counter()
    first = read_image(next(iter(sorted((tmp / "in").iterdir()))))
    tr.translate_arrays([first] * min(a.batch_size, a.n))  # builds the runtime's model for a whole batch's shape
    build_s = time.perf_counter() - t0
    if tr.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(tr.device)
    rates = []
    for r in range(a.repeats):
        out = tmp / f"out{r}"
        jobs = plan_jobs(tmp / "in", out)
        t0 = time.perf_counter()
        summary = run_jobs(tr.translate_arrays, jobs, ConvertOptions(batch_size=a.batch_size, workers=a.workers))
        if a.like_reference:
            rows = []
            for j in jobs:
                img = read_image(j.src)
                write_image(out / "images" / f"{j.src.stem}_real_A.png", img)
                write_image(out / "images" / f"{j.src.stem}_real_B.png", img)
                rows.append(f"<tr><td><img src='images/{j.src.stem}_real_A.png'></td><td><img src='{j.dst.name}'></td>"
                            f"<td><img src='images/{j.src.stem}_real_B.png'></td></tr>")
            (out / "index.html").write_text("<table>" + "\n".join(rows) + "</table>")
        if tr.device.type == "cuda":
            torch.cuda.synchronize(tr.device)
        dt = time.perf_counter() - t0
        assert not summary.failed, summary.failed[:3]
        rates.append(len(summary.converted) / dt)
        if a.reference:
            ref_rates.append(reference_test_img_per_s(a.reference, tmp / "ref", a.n, a.threads))
    peak_rss_mb = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ) / 1024
    row = {"config": a.config, "setting": a.runtime, "build_s": round(build_s, 2), "device": str(tr.device),
           "size": a.size, "n": a.n, "batch_size": a.batch_size,
           "workers": a.workers,
           "precision": a.precision, "mode": a.mode, "like_reference": a.like_reference,
           "threads": torch.get_num_threads(),
           "img_per_s_median": statistics.median(rates), "img_per_s_all": rates, "peak_rss_mb": round(peak_rss_mb, 1)}
    if ref_rates:
        row["reference_img_per_s_all"] = ref_rates
        row["reference_img_per_s_median"] = statistics.median(ref_rates)
        row["ratio"] = row["img_per_s_median"] / row["reference_img_per_s_median"]
    if tr.device.type == "cuda":
        row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(tr.device) / 2**20, 1)
    print(json.dumps(row))
    print(f"{row['img_per_s_median']:.2f} images/s (median of {a.repeats}), {a.size}x{a.size}, batch {a.batch_size}, "
          f"{'3 PNGs + HTML row' if a.like_reference else '1 PNG'} per image, {a.mode} mode, peak RSS "
          f"{row['peak_rss_mb']} MB")
    if ref_rates:
        print(f"reference test.py {row['reference_img_per_s_median']:.2f} images/s (median of {a.repeats}, same run): "
              f"i2i / reference = {row['ratio']:.2f}x")
    if a.json:
        a.json.write_text(json.dumps(row, indent=2))


def compare_runtimes(a: argparse.Namespace, settings: list[str]) -> None:
    """Each repeat runs every setting in its own process (one repeat each), in turn; prints the table."""
    tmp = Path(tempfile.mkdtemp(prefix="i2i-bench-runtimes-"))
    cfg = load_config(a.config, a.set)
    make_images(tmp / "in", a.n, a.size, int(cfg.model.generator.arg("in_channels")))
    rows: dict[str, list[dict]] = {s: [] for s in settings}
    for r in range(a.repeats):
        for s in settings:
            out = tmp / f"{s.replace(':', '-')}-{r}.json"
            cmd = [sys.executable, __file__, a.config, "--n", str(a.n), "--size", str(a.size), "--batch-size",
                   str(a.batch_size), "--workers", str(a.workers), "--mode", a.mode, "--repeats", "1", "--device",
                   a.device, "--runtime", s, "--input", str(tmp / "in"), "--json", str(out)]
            cmd += [x for kv in a.set for x in ("--set", kv)]
            cmd += ["--threads", str(a.threads)] if a.threads else []
            cmd += ["--tile", str(a.tile)] if a.tile else []
            cmd += ["--calibration", a.calibration] if a.calibration else []
            cmd += ["--like-reference"] if a.like_reference else []
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            rows[s].append(json.loads(out.read_text()))
    table = []
    for s, rs in rows.items():
        rates = [x["img_per_s_median"] for x in rs]
        table.append({"setting": s, "img_per_s_median": statistics.median(rates), "img_per_s_all": rates,
                      "build_s_median": statistics.median(x["build_s"] for x in rs),
                      "peak_rss_mb_max": max(x["peak_rss_mb"] for x in rs)})
    base = table[0]["img_per_s_median"]
    print(f"{a.config}: {a.n} images {a.size}x{a.size}, batch {a.batch_size}, {a.mode} mode, "
          f"{torch.get_num_threads() if not a.threads else a.threads} threads, medians of {a.repeats}")
    print(f"| setting | images/s | vs {table[0]['setting']} | build s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for t in table:
        print(f"| {t['setting']} | {t['img_per_s_median']:.3f} | {t['img_per_s_median'] / base:.2f}x | "
              f"{t['build_s_median']:.1f} | {t['peak_rss_mb_max']:.0f} |")
    best = max(table, key=lambda t: t["img_per_s_median"])
    print(f"fastest on this machine: {best['setting']}")
    if a.json:
        a.json.write_text(json.dumps({"config": a.config, "rows": table, "fastest": best["setting"]}, indent=2))


if __name__ == "__main__":
    main()
