"""i2i's hand-written ESRGAN importer against Spandrel on the same file: load time, forward time
and the largest output difference, for the decision of issue 43 (docs/benchmarks.md).

    python tools/bench_loaders.py --side 64 --repeats 5 --threads 2

A published-size RRDBNet x4 (23 blocks, 64 channels, BasicSR layout) and a Real-ESRGAN Compact
(realesr-general-x4v3 size) with random weights are written to a temporary folder; each is loaded
by both loaders (the i2i importer builds i2i's RRDBNet / SRVGGNet; Spandrel builds its ESRGAN /
Compact) and run on the same [0, 1] image. Prints a markdown table of medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from i2i.compat.spandrel import load_foreign, read_state_file, spandrel
from i2i.nets.registry import build_generator


def _time(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=64, help="input image side (pixels)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sp = spandrel()
    nets = {"RRDBNet x4 (23 blocks)": build_generator("rrdbnet", scale=4),
            "Compact x4 (32 convs)": build_generator("srvgg", scale=4, n_convs=32)}
    print(f"| model | loader | load s | forward s ({args.side} px) | max diff to the other loader |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in nets.items():
            path = Path(tmp) / "model.pth"
            torch.save(net.state_dict(), path)
            row(name, path, sp, torch.rand(1, 3, args.side, args.side), args.repeats)


def row(name: str, path: Path, sp, x: torch.Tensor, repeats: int) -> None:
    """Print the two loaders' lines for the model file ``path`` on the [0, 1] image ``x``."""
    load_i2i, ours = _time(lambda: load_foreign(path).net, repeats)
    load_sp, theirs = _time(lambda: sp.ModelLoader().load_from_state_dict(read_state_file(path)).eval(), repeats)
    with torch.inference_mode():
        fwd_i2i, a = _time(lambda: ((ours(x * 2 - 1) + 1) / 2).clamp(0, 1), repeats)
        fwd_sp, b = _time(lambda: theirs(x), repeats)
    diff = float((a - b).abs().max())
    print(f"| {name} | i2i importer | {load_i2i:.3f} | {fwd_i2i:.3f} | {diff:.1e} |")
    print(f"| {name} | Spandrel {sp.__version__} | {load_sp:.3f} | {fwd_sp:.3f} | {diff:.1e} |")

if __name__ == "__main__":
    main()
