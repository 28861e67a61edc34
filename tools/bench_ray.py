"""The Ray engine's overhead on one machine: images/s of ``i2i convert`` locally and with
``--engine ray`` on a local Ray instance, on the same folder and model.

    python tools/bench_ray.py --n 64 --size 256 --repeats 3 --cpus 2

The model is the README demo's generator untrained (the same cost as trained). Each repeat
converts into a fresh folder with each engine (alternating which goes first); the Ray instance
is started once, outside the timing, as a cluster would be. Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import ray
import torch

import i2i
from i2i import Translator, load_config
from i2i.convert import ConvertOptions

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance (and torch threads locally)")
    args = ap.parse_args()
    torch.set_num_threads(args.cpus)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        (tmp / "in").mkdir()
        for k in range(args.n):
            cv2.imwrite(str(tmp / "in" / f"{k:04d}.png"), rng.integers(0, 256, (args.size, args.size, 3), np.uint8))
        tr = Translator.untrained(load_config(ROOT / "configs" / "pix2pix" / "demo.yaml"), device="cpu")
        model = tr.save_pretrained(tmp / "demo_model")
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        rates: dict[str, list[float]] = {"local": [], "ray": []}
        for r in range(args.repeats):
            for engine in (("local", "ray") if r % 2 == 0 else ("ray", "local")):
                out = tmp / f"{engine}{r}"
                t = time.perf_counter()
                if engine == "local":
                    Translator.from_file(model, device="cpu").convert_folder(tmp / "in", out, ConvertOptions())
                else:
                    i2i.ray.convert(tmp / "in", out, model, actors=1, device="cpu")
                rates[engine].append(args.n / (time.perf_counter() - t))
        ray.shutdown()
    local, on_ray = statistics.median(rates["local"]), statistics.median(rates["ray"])
    print(f"{args.n} images of {args.size}x{args.size}, {args.cpus} CPUs: local {local:.2f} images/s, Ray "
          f"{on_ray:.2f} images/s (median of {args.repeats}; Ray / local = {on_ray / local:.2f}, model loading "
          "included on both sides)")


if __name__ == "__main__":
    main()
