"""Speed of training and conversion for any config on the current device.

    python tools/benchmark.py configs/pix2pix/facades.yaml --modes eager bf16 --steps 5
    python tools/benchmark.py configs/pix2pix/demo.yaml --size 256 --threads 2

Training: full iterations (D step + G step, optimizer updates) on synthetic batches of
the config's crop size (no data loading), after warm-up; reports the median of
``--repeats`` timed blocks. Conversion: ``Translator`` on synthetic images of
``--size`` (default: crop size), tensor in/out, plus writing PNGs when ``--write`` is
given. Modes: ``eager`` (float32), ``bf16`` / ``fp16`` (autocast; fp16 on CUDA only),
``compile`` (torch.compile). Prints a table and, with ``--json``, writes the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.config import load_config  # noqa: E402
from i2i.data.io import from_tensor, write_image  # noqa: E402
from i2i.engine.trainer import _Context, resolve_device  # noqa: E402
from i2i.registry import pipeline_class  # noqa: E402
from i2i.translator import Translator  # noqa: E402


class _BenchTrainer:
    """The parts of the Trainer that a train step touches, without data or files."""

    def __init__(self, cfg, device: torch.device, mode: str) -> None:
        torch.manual_seed(0)
        self.device = device
        self.pipeline = pipeline_class(cfg.pipeline)(cfg)
        for net in self.pipeline.nets.values():
            net.to(device).train()
        self.optimizers = {
            n: torch.optim.Adam(g["params"], lr=g["lr"], betas=(0.5, 0.999)) for n, g in self.pipeline.param_groups().items()
        }
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")
        wrap = torch.compile if mode == "compile" else (lambda m: m)
        self.train_modules = {n: wrap(m) for n, m in self.pipeline.nets.items()}
        self.frozen_modules = dict(self.train_modules)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(cfg, device, mode: str, steps: int, repeats: int, warmup: int) -> float:
    """Median training iterations per second."""
    t = _BenchTrainer(cfg, device, mode)
    ctx = _Context(t)
    g, bs, s = cfg.model.generator, cfg.data.batch_size, cfg.data.crop_size
    batch = {"input": torch.rand(bs, g.in_channels, s, s, device=device) * 2 - 1,
             "target": torch.rand(bs, g.out_channels, s, s, device=device) * 2 - 1}

    def step() -> None:
        t.pipeline.train_step(batch, ctx)
        t.scaler.update()

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        rates.append(steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_convert(cfg, device, mode: str, size: int, n: int, repeats: int, write: bool) -> float:
    """Median images per second of single-image translation (optionally writing PNGs)."""
    torch.manual_seed(0)
    net = pipeline_class(cfg.pipeline).build_net(cfg, "G")
    tr = Translator(net, cfg, direction="a_to_b", mode="eval", device=device)
    if mode == "compile":
        tr.net = torch.compile(tr.net)
    x = torch.rand(1, tr.in_channels, size, size) * 2 - 1
    ac = torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16) if mode in ("bf16", "fp16") else None
    out_dir = Path(tempfile.mkdtemp(prefix="i2i-bench-"))

    def one(i: int) -> None:
        if ac is not None:
            with ac:
                y = tr.translate_tensor(x)
        else:
            y = tr.translate_tensor(x)
        if write:
            write_image(out_dir / f"{i}.png", from_tensor(y[0]))
        else:
            _sync(device)

    one(0)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            one(i)
        _sync(device)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--modes", nargs="+", default=["eager"], choices=["eager", "bf16", "fp16", "compile"])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--steps", type=int, default=5, help="training iterations per timed block")
    p.add_argument("--images", type=int, default=10, help="images per timed conversion block")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--size", type=int, default=None, help="conversion image size (default: crop size)")
    p.add_argument("--write", action="store_true", help="include writing one PNG per image in conversion")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_config(a.config, a.set)
    device = resolve_device(a.device)
    size = a.size or cfg.data.crop_size
    rows = []
    for mode in a.modes:
        if mode == "fp16" and device.type != "cuda":
            print(f"skip {mode}: needs CUDA", file=sys.stderr)
            continue
        row = {"config": a.config, "device": str(device), "mode": mode, "batch": cfg.data.batch_size, "crop": cfg.data.crop_size,
               "threads": torch.get_num_threads()}
        if not a.skip_train:
            ips = bench_train(cfg, device, mode, a.steps, a.repeats, a.warmup)
            row.update(train_it_per_s=ips, train_s_per_it=1 / ips)
        row.update(convert_size=size, convert_img_per_s=bench_convert(cfg, device, mode, size, a.images, a.repeats, a.write))
        rows.append(row)
        print(json.dumps(row))
    print(f"\n{'mode':<8} {'train it/s':>11} {'s/it':>8} {'convert img/s':>14}  ({device}, batch {cfg.data.batch_size}, "
          f"crop {cfg.data.crop_size}, convert {size}px{' +PNG' if a.write else ''}, median of {a.repeats})")
    for r in rows:
        tr = f"{r['train_it_per_s']:>11.3f} {r['train_s_per_it']:>8.3f}" if "train_it_per_s" in r else f"{'-':>11} {'-':>8}"
        print(f"{r['mode']:<8} {tr} {r['convert_img_per_s']:>14.2f}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
