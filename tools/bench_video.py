"""Video-conversion benchmark: frames/s of ``i2i convert`` on a clip, where the time goes
(decode, translate, encode), peak memory, and the same job done the common way (every frame
extracted to PNG, the folder converted, the PNGs encoded again; the sound lost), back to back,
and each stage timed alone (decode all frames, translate them, encode them: no overlap).

    python tools/bench_video.py CKPT [CKPT ...] --size 1920x1080 --frames 24 --threads 2 --repeats 3

The clip is made here: a slow pan across a bundled photo (datasets/sample/photos), H.264 CRF 18
at 24 frames/s with an AAC tone. Every measured run is a fresh process (its peak RSS is the
figure), the two ways alternate, and medians are reported. ``--paths stream`` times the
streaming path alone (e.g. for an SR model, whose 4x output makes the PNG path slow).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from i2i.convert import ConvertOptions  # noqa: E402
from i2i.convert.video import VideoOptions, frames_to_video  # noqa: E402
from i2i.data.io import read_image  # noqa: E402
from i2i.translator import Translator  # noqa: E402


def make_clip(path: Path, width: int, height: int, frames: int, rate: int = 24) -> Path:
    """A pan across a bundled photo, scaled to cover ``width x height`` with room to move, plus a tone."""
    photo = sorted((ROOT / "datasets" / "sample" / "photos").glob("*"))[0]
    img = read_image(photo)[:, :, :3]
    scale = max(width * 1.25 / img.shape[1], height / img.shape[0])
    big = cv2.resize(img, (int(img.shape[1] * scale) + 1, int(img.shape[0] * scale) + 1), interpolation=cv2.INTER_CUBIC)
    room = big.shape[1] - width
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=rate, options={"crf": "18"})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(frames):
            x = room * i // max(frames - 1, 1)
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(big[:height, x:x + width]), format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        n = 48000 * frames // rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
        for k in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.stack([tone[k:k + 1024]] * 2), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, k
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def _encode_arrays(frames: list[np.ndarray], dst: Path) -> int:
    """Encode RGB arrays as i2i's default video (libx264 CRF 18, yuv420p) at 24 frames/s; the frame count."""
    with av.open(str(dst), "w") as out:
        v = out.add_stream("libx264", rate=24, options={"crf": "18"})
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for i, arr in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr[:, :, :3]), format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    return len(frames)


def _worker(a: argparse.Namespace) -> None:
    """One measured run in this process; prints a JSON line."""
    torch.set_num_threads(a.threads)
    tr = Translator.from_checkpoint(a.worker_checkpoint, device=a.device)
    work = Path(a.work)
    t0 = time.perf_counter()
    row: dict = {"path": a.worker}
    if a.worker == "stream":
        summary = tr.convert_folder(a.clip, work / "out", ConvertOptions(batch_size=a.batch_size))
        st = summary.videos[0][1]
        row.update(frames=st.frames, decode=st.decode, translate=st.translate, encode=st.encode)
    elif a.worker == "stages":  # each stage alone, one after another: where the time goes without overlap or contention
        t = time.perf_counter()
        with av.open(a.clip) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        row["decode"] = time.perf_counter() - t
        t = time.perf_counter()
        outs = [o for k in range(0, len(frames), a.batch_size) for o in tr.translate_arrays(frames[k:k + a.batch_size])]
        row["translate"] = time.perf_counter() - t
        t = time.perf_counter()
        st = _encode_arrays(outs, work / "out.mp4")
        row.update(encode=time.perf_counter() - t, frames=st)
    else:  # the common way: frames to PNG, convert the folder, encode the PNGs again
        frames = work / "frames"
        frames.mkdir()
        t = time.perf_counter()
        with av.open(a.clip) as c:
            for i, f in enumerate(c.decode(video=0)):
                cv2.imwrite(str(frames / f"{i + 1:06d}.png"), f.to_ndarray(format="bgr24"))
        row["extract"] = time.perf_counter() - t
        t = time.perf_counter()
        summary = tr.convert_folder(frames, work / "converted", ConvertOptions(batch_size=a.batch_size))
        row["convert_folder"] = time.perf_counter() - t
        t = time.perf_counter()
        st = frames_to_video(lambda arrays: arrays, sorted((work / "converted").glob("*.png")), work / "out.mp4",
                             fps=24,
                             options=VideoOptions())
        row.update(encode_again=time.perf_counter() - t, frames=st.frames,
                   temp_bytes=sum(p.stat().st_size for d in (frames, work / "converted") for p in d.glob("*.png")))
    row["seconds"] = time.perf_counter() - t0
    row["fps"] = row["frames"] / row["seconds"]
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(row))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--paths", default="stream,frames,stages",
                   help="stream (i2i convert), frames (the PNG-folder way), stages (each stage alone); comma-separated")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-checkpoint", default=None, help=argparse.SUPPRESS)
    p.add_argument("--clip", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        _worker(a)
        return
    w, h = (int(v) for v in a.size.lower().split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="i2i_bench_video_"))
    clip = make_clip(tmp / "clip.mp4", w, h, a.frames)
    paths = a.paths.split(",")
    print(f"clip {w}x{h}, {a.frames} frames, {clip.stat().st_size / 1e6:.1f} MB; {a.threads} threads, batch "
          f"{a.batch_size}, "
          f"device {a.device}; torch {torch.__version__}, PyAV {av.__version__}", flush=True)
    for ckpt in a.checkpoints:
        rows: dict[str, list[dict]] = {k: [] for k in paths}
        for r in range(a.repeats):
            for path in (paths if r % 2 == 0 else paths[::-1]):
                work = tmp / f"run_{path}_{r}"
                work.mkdir()
                cmd = [sys.executable, __file__, "--worker", path, "--worker-checkpoint", ckpt, "--clip", str(clip),
                       "--work", str(work),
                       "--threads", str(a.threads), "--batch-size", str(a.batch_size), "--device", a.device]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                rows[path].append(json.loads(out))
                shutil.rmtree(work)
        print(f"\n{ckpt}")
        for path, rs in rows.items():
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0] if isinstance(rs[0][k], (int, float))}
            skip = ("seconds", "fps", "frames", "peak_rss_gb", "temp_bytes")
            detail = ", ".join(f"{k} {v:.1f} s" for k, v in med.items() if k not in skip)
            extra = f", {med['temp_bytes'] / 1e6:.0f} MB of temporary PNGs" if "temp_bytes" in med else ""
            each = ", ".join(f"{r['fps']:.3f}" for r in rs)
            print(f"  {path:6s}: {med['fps']:.3f} frames/s (median of {len(rs)}: {each}), "
                  f"{med['seconds']:.1f} s, peak RSS {med['peak_rss_gb']:.2f} GB; {detail}{extra}")
        if "stream" in rows and "frames" in rows:
            s, f = (statistics.median(r["seconds"] for r in rows[k]) for k in ("stream", "frames"))
            print(f"  streaming is {f / s:.2f}x the speed of the frames-folder path (ratio of median seconds)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
