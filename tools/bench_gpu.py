"""The GPU benchmark table (issue 15): the paper configs in fp32 / bf16 / compile, at batch 1 and
at the largest batch that fits, with iterations/s, images/s, peak memory and model FLOP
utilisation (MFU), each also with the data loader out of the time (``model it/s``: one batch
reused; the gap is what loading costs). Runs anywhere (CPU too, for a smoke test); the figures mean something on a GPU.

    python tools/bench_gpu.py                                  # the four paper configs, all modes
    python tools/bench_gpu.py configs/cyclegan/horse2zebra.yaml --modes bf16 --max-batch 64
    python tools/bench_gpu.py CONFIG --reference-s-per-it 0.123   # also print the ratio to the reference

FLOPs per training iteration are counted once per config and batch with
``torch.utils.flop_counter.FlopCounterMode`` on a real step (forward and backward of every
net, as the pipeline runs them); MFU = FLOPs x it/s / the device's peak (``--peak-tflops``,
else a table of known GPUs: dense bf16/fp16 tensor-core peak for bf16, TF32 peak for fp32).
The largest batch is found by doubling until CUDA runs out of memory (``--max-batch`` caps it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark import MODE_SETTINGS, make_data, time_steps  # noqa: E402

from i2i.engine.trainer import Trainer  # noqa: E402
from i2i.recipes import load_config  # noqa: E402

PAPER_CONFIGS = ["configs/pix2pix/facades.yaml", "configs/cyclegan/horse2zebra.yaml", "configs/srgan/srresnet_x4.yaml",
                 "configs/dcgan/celeba64.yaml"]
# Dense peak TFLOP/s (bf16/fp16 tensor cores, TF32) by device-name substring.
PEAKS = {"H200": (989.0, 494.0), "H100": (989.0, 494.0), "A100": (312.0, 156.0), "L4": (121.0, 60.0),
         "A10": (125.0, 62.5)}


def peak_tflops(device: torch.device, mode: str, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (half, tf32) in PEAKS.items():
        if key in name:
            return half if mode in ("bf16", "fp16") else tf32
    return None


def build(config: str, overrides: list[str], mode: str, batch: int, steps: int, tmp: Path) -> Trainer:
    cfg = load_config(config, overrides)
    settings = make_data(tmp / "data", cfg, n=max(16, batch)) + [
        f"output_dir={tmp / 'runs'}", "train.progress=false", "train.epochs=null", f"train.steps={steps}",
        f"data.batch_size={batch}",
        "data.val_root=null", "train.val_every=0"]
    return Trainer(load_config(config, overrides + settings + MODE_SETTINGS[mode]))


def flops_per_step(trainer: Trainer) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    batches = trainer.batches()
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(next(batches))
    return float(counter.get_total_flops())


def largest_batch(config: str, overrides: list[str], mode: str, cap: int, tmp: Path) -> int:
    """Double the batch until a training step runs out of CUDA memory (or ``cap``)."""
    best, batch = 1, 2
    while batch <= cap:
        try:
            t = build(config, overrides, mode, batch, 2, tmp / f"b{batch}")
            time_steps(t, 1, 1, 1)
            best = batch
            del t
        except torch.OutOfMemoryError:
            break
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        batch *= 2
    return best


def run(config: str, overrides: list[str], mode: str, batch: int, a: argparse.Namespace, tmp: Path) -> dict:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = build(config, overrides, mode, batch, a.warmup + 2 * a.steps * a.repeats + 2, tmp / f"{mode}-{batch}")
    flops = flops_per_step(trainer) if mode != "compile" else None  # the counter does not see inside compiled graphs
    ips = time_steps(trainer, a.steps, a.repeats, a.warmup)
    model_ips = time_steps(trainer, a.steps, a.repeats, 1, reuse_batch=True)  # same trainer, the loader out of the time
    peak = peak_tflops(trainer.device, mode, a.peak_tflops)
    row = {"config": config, "device": str(trainer.device), "mode": mode, "batch": batch, "it_per_s": ips,
           "img_per_s": ips * batch,
           "gflop_per_it": flops / 1e9 if flops else None,
           "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
           "mfu": flops * ips / (peak * 1e12) if flops and peak else None,
           "model_it_per_s": model_ips, "model_mfu": flops * model_ips / (peak * 1e12) if flops and peak else None}
    if a.reference_s_per_it and batch == 1:
        row["x_reference"] = ips * a.reference_s_per_it
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="*", default=PAPER_CONFIGS)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--modes", nargs="+", default=["eager", "bf16", "compile"], choices=list(MODE_SETTINGS))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-batch", type=int, default=256, help="cap of the largest-batch search (1: batch 1 only)")
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    p.add_argument("--reference-s-per-it", type=float, default=None,
                   help="the reference's s/it at batch 1 (same machine, same run)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="i2i-bench-gpu-"))
    rows = []
    for config in a.configs:
        for mode in a.modes:
            if mode == "fp16" and not torch.cuda.is_available():
                continue
            batches = [1]
            if a.max_batch > 1:
                big = largest_batch(config, a.set, mode, a.max_batch,
                                    tmp / Path(config).stem) if torch.cuda.is_available() else 2
                batches.append(min(big, a.max_batch))
            for batch in dict.fromkeys(batches):
                row = run(config, a.set, mode, batch, a, tmp / Path(config).stem)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\n{'config':<34} {'mode':<8} {'batch':>5} {'it/s':>8} {'img/s':>8} {'GFLOP/it':>9} {'peak GiB':>8} "
          f"{'MFU':>6}"
          f" {'model it/s':>10} {'model MFU':>9}")
    for r in rows:
        def f(v, spec):
            return format(v, spec) if v is not None else "-"
        print(f"{Path(r['config']).stem:<34} {r['mode']:<8} {r['batch']:>5} {r['it_per_s']:>8.2f} "
              f"{r['img_per_s']:>8.1f} "
              f"{f(r['gflop_per_it'], '9.1f')} {f(r['peak_mem_gib'], '8.2f')} {f(r['mfu'], '6.1%')} "
              f"{r['model_it_per_s']:>10.2f} "
              f"{f(r['model_mfu'], '9.1%')}"
              + (f"  x{r['x_reference']:.2f} reference" if r.get("x_reference") else ""))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
