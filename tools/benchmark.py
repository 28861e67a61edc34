"""Speed of training and conversion for any config on the current device.

    python tools/benchmark.py configs/pix2pix/facades.yaml --threads 2 --modes eager bf16
    python tools/benchmark.py configs/pix2pix/demo.yaml --write
    python tools/benchmark.py configs/cyclegan/horse2zebra.yaml --reference REF   # + the ratio to the reference

With ``--reference`` (a checkout of pytorch-CycleGAN-and-pix2pix), the reference's own
``train.py`` is timed first in the same run (``tools/bench_reference.py``), and every mode's
row gets the ratio ``reference s/it / i2i s/it`` (above 1: i2i is faster).

Training drives the real :class:`~i2i.engine.trainer.Trainer` (data loading from image
files, D and G steps, optimizer and scheduler updates) on a generated folder of random
images at the config's load size, so ``data.root`` need not exist. After ``--warmup``
iterations it times ``--repeats`` blocks of ``--steps`` iterations and reports the
median. Conversion times :class:`~i2i.translator.Translator` on one image of ``--size``
pixels (default: crop size), tensor in and out, plus encoding and writing one PNG per
image with ``--write``. Modes: ``eager`` (float32, the defaults), ``fused`` (fused Adam),
``bf16`` / ``fp16`` (autocast; fp16 on CUDA only), ``bf16+fused``, ``compile`` (torch.compile; its
compile time falls in the warm-up, so give ``--warmup`` 2 or more), ``channels_last``,
``unbatched`` (no horizontal batching), ``nocache`` / ``memory`` / ``device`` (``data.cache``; the
default is ``auto``), ``graphs`` / ``bf16+graphs`` (``train.cuda_graphs``, CUDA only: give
``--warmup`` 4 or more so the capture falls before the timed steps).
The last line says which measured setting trained fastest on this machine (and names the CPU):
whether bf16 or fused Adam pays depends on the CPU, so nothing is recommended elsewhere.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from i2i.data.io import from_tensor, write_image  # noqa: E402
from i2i.dist import resolve_device  # noqa: E402
from i2i.engine.trainer import Trainer  # noqa: E402
from i2i.recipes import (
    load_config,  # noqa: E402
    pipeline_class,  # noqa: E402
)
from i2i.translator import Translator  # noqa: E402

MODE_SETTINGS = {"eager": [], "fused": ["optim.fused=true"], "bf16": ["train.amp=bf16"],
                 "bf16+fused": ["train.amp=bf16", "optim.fused=true"], "fp16": ["train.amp=fp16"],
                 "compile": ["train.compile=true"], "channels_last": ["train.channels_last=true"],
                 "unbatched": ["train.horizontal_batching=false"], "nocache": ["data.cache=none"],
                 "memory": ["data.cache=memory"],
                 "device": ["data.cache=device"], "graphs": ["train.cuda_graphs=true"],
                 "bf16+graphs": ["train.amp=bf16", "train.cuda_graphs=true"]}


def machine() -> str:
    """The CPU model and the instruction set torch dispatches to (the same setting can be faster
    on one CPU and slower on another), or the GPU's name."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    name = "unknown CPU"
    try:
        name = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{name}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}"


def fastest_line(rows: list[dict]) -> str:
    """Which measured setting trained fastest here, against the fp32 default."""
    best = max(rows, key=lambda r: r["train_it_per_s"])
    base = next((r for r in rows if r["mode"] == "eager"), None)
    than = (
        f", {best['train_it_per_s'] / base['train_it_per_s']:.2f}x the fp32 default"
        if base and best is not base
        else ""
    )
    settings = " ".join(f"--set {s}" for s in MODE_SETTINGS[best["mode"]]) or "the defaults"
    return (f"fastest training here: {best['mode']} ({settings}{than}) on {machine()}; measured on this machine only: "
            "bf16 results differ from fp32 within rounding, fused Adam within Adam's step")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_data(root: Path, cfg, n: int = 16) -> list[str]:
    """``n`` random pairs at the config's load size in the A/ + B/ layout; returns the data
    settings that point the config at them (paired / unpaired data read ``root``, HR or
    generation data read ``root/B``)."""
    rng = np.random.default_rng(0)
    g, d = cfg.model.generator, cfg.data
    s = max(getattr(d, "load_size", 0), getattr(d, "crop_size", 0), getattr(d, "image_size", 0))
    a_ch = 3 if pipeline_class(cfg.pipeline).kind == "generation" else g.arg("in_channels")
    for i in range(n):
        write_image(root / "A" / f"{i}.png", rng.integers(0, 256, (s, s, a_ch), dtype=np.uint8))
        write_image(root / "B" / f"{i}.png", rng.integers(0, 256, (s, s, g.arg("out_channels")), dtype=np.uint8))
    settings = [f"data.root={root if hasattr(d, 'load_size') else root / 'B'}", "data.val_root=null",
                "train.val_every=0"]
    return settings + (["data.layout=folders"] if hasattr(d, "layout") else [])


def bench_train(config: str, overrides: list[str], mode: str, steps: int, repeats: int, warmup: int) -> tuple[float,
                                                                                                              object]:
    """Median training iterations per second with the real trainer."""
    tmp = Path(tempfile.mkdtemp(prefix="i2i-bench-"))
    cfg = load_config(config, overrides)
    settings = make_data(tmp / "data", cfg) + [f"output_dir={tmp / 'runs'}", "train.progress=false",
                                               "train.epochs=null",
                                               f"train.steps={warmup + steps * repeats}"]
    cfg = load_config(config, overrides + settings + MODE_SETTINGS[mode])
    trainer = Trainer(cfg)
    return time_steps(trainer, steps, repeats, warmup), trainer


def time_steps(trainer: Trainer, steps: int, repeats: int, warmup: int, *, reuse_batch: bool = False) -> float:
    """Median iterations per second of ``repeats`` blocks of ``steps`` training iterations
    (after ``warmup`` iterations), device-synchronised. ``reuse_batch``: every iteration
    trains on the first batch, so the data loader is out of the time (the model's own rate;
    the gap to the loader's rate is what loading costs)."""
    for net in trainer.pipeline.nets.values():
        net.train()
    batches = trainer.batches()
    if reuse_batch:
        first = next(batches)
        batches = itertools.repeat(first)
    for _ in range(warmup):
        trainer.train_step(next(batches))
    rates = []
    for _ in range(repeats):
        _sync(trainer.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(next(batches))
        _sync(trainer.device)
        rates.append(steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_convert(trainer: Trainer, mode: str, size: int, n: int, repeats: int, write: bool) -> float:
    """Median images per second of single-image translation (optionally writing PNGs); for a
    generation model (DCGAN), of sampling ``n`` images per block."""
    cfg = trainer.cfg
    pipe = type(trainer.pipeline)
    if pipe.kind == "generation":
        from i2i.generate import Generator

        gen = Generator(trainer.pipeline.nets[pipe.generator_name(cfg)], cfg, device=trainer.device)
        gen.sample(n)
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            imgs = gen.sample(n)
            if write:
                for i, t in enumerate(imgs):
                    write_image(Path(tempfile.mkdtemp()) / f"{i}.png", from_tensor(t))
            rates.append(n / (time.perf_counter() - t0))
        return statistics.median(rates)
    direction = pipe.default_direction(cfg)
    tr = Translator(trainer.pipeline.nets[pipe.generator_name(cfg)], cfg, direction=direction, mode="eval",
                    device=trainer.device)
    if mode == "compile":
        tr.net = torch.compile(tr.net)
    x = torch.rand(1, tr.in_channels, size, size) * 2 - 1
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
    out_dir = Path(tempfile.mkdtemp(prefix="i2i-bench-out-"))

    def one(i: int) -> None:
        with torch.autocast(trainer.device.type, dtype=dtype, enabled=dtype is not None):
            y = tr.translate_tensor(x)
        if write:
            write_image(out_dir / f"{i}.png", from_tensor(y[0]))

    one(0)
    rates = []
    for _ in range(repeats):
        _sync(trainer.device)
        t0 = time.perf_counter()
        for i in range(n):
            one(i)
        _sync(trainer.device)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--modes", nargs="+", default=["eager"], choices=list(MODE_SETTINGS),
                   help="settings to time; e.g. --modes eager fused bf16 bf16+fused to find the fastest on this "
                        "machine")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--steps", type=int, default=5, help="training iterations per timed block")
    p.add_argument("--images", type=int, default=10, help="images per timed conversion block")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--size", type=int, default=None, help="conversion image size (default: crop size)")
    p.add_argument("--write", action="store_true", help="include writing one PNG per image in conversion")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--reference", default=None, metavar="REF",
                   help="a reference checkout: time its train.py first, print ratios")
    p.add_argument("--reference-iterations", type=int, default=16)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_config(a.config, a.set)
    device = resolve_device(cfg.train.device)
    size = a.size or getattr(cfg.data, "crop_size", getattr(cfg.data, "image_size", 256))
    reference = None
    if a.reference:
        from bench_reference import reference_s_per_it

        model = {"pix2pix": "pix2pix", "cyclegan": "cycle_gan"}.get(cfg.pipeline)
        if model is None:
            raise SystemExit(f"--reference compares pix2pix and CycleGAN training; {cfg.pipeline} has no "
                             "reference here")
        reference = reference_s_per_it(a.reference, model, a.reference_iterations, a.threads)
        print(f"reference {model} train.py: {reference:.3f} s/it", flush=True)
    rows = []
    for mode in a.modes:
        if mode == "fp16" and device.type != "cuda":
            print(f"skip {mode}: needs CUDA", file=sys.stderr)
            continue
        ips, trainer = bench_train(a.config, a.set, mode, a.steps, a.repeats, a.warmup)
        row = {"config": a.config, "device": str(trainer.device), "mode": mode, "batch": cfg.data.batch_size,
               "crop": getattr(cfg.data, "crop_size", None), "threads": torch.get_num_threads(),
               "train_it_per_s": ips, "train_s_per_it": 1 / ips,
               "convert_size": size,
               "convert_img_per_s": bench_convert(trainer, mode, size, a.images, a.repeats, a.write)}
        if reference is not None:
            row["reference_s_per_it"] = reference
            row["x_reference"] = reference / row["train_s_per_it"]
        rows.append(row)
        print(json.dumps(row))
    print(f"\n{'mode':<10} {'train it/s':>11} {'s/it':>8} {'convert img/s':>14}  ({device}, batch "
          f"{cfg.data.batch_size}, "
          f"crop {getattr(cfg.data, 'crop_size', '-')}, convert {size}px{' +PNG' if a.write else ''}, median of "
          f"{a.repeats})")
    for r in rows:
        ratio = (
            f"  x{r['x_reference']:.2f} the reference ({r['reference_s_per_it']:.3f} s/it)"
            if "x_reference" in r
            else ""
        )
        print(f"{r['mode']:<10} {r['train_it_per_s']:>11.3f} {r['train_s_per_it']:>8.3f} "
              f"{r['convert_img_per_s']:>14.2f}{ratio}")
    if rows:
        print(fastest_line(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
