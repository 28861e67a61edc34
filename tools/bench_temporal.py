"""What ``--temporal flow`` costs: frames/s of one video converted with and without it, and the
stabiliser's own time per frame, at a given size.

    python tools/bench_temporal.py runs/demo/checkpoints/last.pt --size 1280x720 --frames 12 --repeats 3

The clip is a bundled photo panned 2 pixels a frame with fresh noise (H.264). Each repeat converts
it with ``--temporal off`` and ``flow`` (alternating which goes first); prints the medians, their
ratio and the warping errors. ``--model-free`` times the stabiliser alone (the net's output taken
as the frame itself), which is its cost on any device.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from i2i import Translator, load_config
from i2i.convert import ConvertOptions
from i2i.convert.video import Stabilizer

ROOT = Path(__file__).resolve().parent.parent


def clip_frames(width: int, height: int, frames: int) -> list[np.ndarray]:
    """The coffee photo, scaled to cover the frame plus the pan, panned 2 px right and 1 down a frame, noisy."""
    photo = Image.open(ROOT / "datasets" / "sample" / "photos" / "coffee.jpg").convert("RGB")
    f = max((width + 2 * frames) / photo.width, (height + frames) / photo.height)
    big = np.asarray(photo.resize((int(photo.width * f) + 1, int(photo.height * f) + 1), Image.BICUBIC))
    rng = np.random.default_rng(0)
    return [np.clip(big[t:t + height, 2 * t:2 * t + width] + rng.normal(0, 6, (height, width, 3)), 0, 255)
            .astype(np.uint8) for t in range(frames)]


def write_clip(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for i, fr in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
            vf.pts = i
            out.mux(v.encode(vf))
        out.mux(v.encode(None))


def stabiliser_ms(frames: list[np.ndarray], repeats: int) -> float:
    """Median milliseconds per frame of :meth:`Stabilizer.step` alone (the frame as its own output)."""
    runs = []
    for _ in range(repeats):
        st = Stabilizer()
        st.step(frames[0], frames[0])
        t = time.perf_counter()
        for fr in frames[1:]:
            st.step(fr, fr)
        runs.append((time.perf_counter() - t) / (len(frames) - 1) * 1000)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", help="a translation model file (or --config; leave out with --model-free)")
    ap.add_argument("--config", help="instead of a model file: the untrained generator of this config")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model-free", action="store_true", help="time the stabiliser alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = clip_frames(width, height, args.frames)
    print(f"{args.size}, {args.frames} frames, {args.threads} threads; stabiliser alone: "
          f"{stabiliser_ms(frames, args.repeats):.1f} ms/frame (median of {args.repeats})")
    if args.model_free or not (args.model or args.config):
        return
    tr = Translator.untrained(load_config(args.config), device=args.device) if args.config else \
        Translator.from_file(args.model, device=args.device)
    rates: dict[str, list[float]] = {"off": [], "flow": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        write_clip(src / "pan.mp4", frames)
        for r in range(args.repeats):
            for mode in (("off", "flow") if r % 2 == 0 else ("flow", "off")):
                summary = tr.convert_folder(src, Path(tmp) / f"{mode}{r}", ConvertOptions(temporal=mode, workers=0))
                st = summary.videos[0][1]
                rates[mode].append(st.frames / st.seconds)
                if st.warping:
                    warping = st.warping
    off, flow = statistics.median(rates["off"]), statistics.median(rates["flow"])
    print(f"frames/s (median of {args.repeats}): off {off:.3f}, flow {flow:.3f}; flow costs {off / flow - 1:+.1%}")
    print(f"warping error: input {warping['input']:.2f}, per-frame {warping['per-frame']:.2f}, "
          f"stabilised {warping['stabilised']:.2f}")


if __name__ == "__main__":
    main()
