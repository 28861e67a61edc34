"""Load on the web app over loopback: many concurrent ``POST /translate`` requests against a tiny
model, each answer checked against ``i2i convert``'s bytes for its own image.

    python tools/bench_serve.py --requests 200 --concurrency 50 --size 64

Prints requests/s, p50/p95 latency, the answers that did not match their request (must be 0),
files left in the server's temporary root (must be 0) and the server process's memory growth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import psutil
import torch
import uvicorn

from i2i.cli import main as i2i_main
from i2i.nets.registry import build_generator
from i2i.serve import create_app


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)


def images(n: int, size: int) -> dict[str, bytes]:
    """``n`` distinct random PNGs by name."""
    rng = np.random.default_rng(0)
    return {f"img{i:04d}.png": cv2.imencode(".png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))[1].tobytes()
            for i in range(n)}


def expected(model: str, files: dict[str, bytes], work: Path) -> dict[str, bytes]:
    """What ``i2i convert`` writes for each file."""
    (work / "in").mkdir(parents=True)
    for name, data in files.items():
        (work / "in" / name).write_bytes(data)
    assert i2i_main(["convert", model, str(work / "in"), str(work / "out"), "--quiet"]) == 0
    return {name: (work / "out" / name).read_bytes() for name in files}


async def _load(base: str, files: dict[str, bytes], concurrency: int) -> tuple[list[float], dict[str, bytes]]:
    limit = asyncio.Semaphore(concurrency)
    answers: dict[str, bytes] = {}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=httpx.Limits(max_connections=concurrency)) as c:
        async def one(name: str, data: bytes) -> None:
            async with limit:
                t = time.perf_counter()
                r = await c.post("/translate", files={"file": (name, data, "image/png")})
                latencies.append(time.perf_counter() - t)
                answers[name] = r.content if r.status_code == 200 else b"HTTP %d" % r.status_code
        await asyncio.gather(*(one(n, d) for n, d in files.items()))
    return latencies, answers


def load(base: str, files: dict[str, bytes], concurrency: int) -> dict[str, Any]:
    """Send every file at once (at most ``concurrency`` in flight); the answers and the timings."""
    t = time.perf_counter()
    latencies, answers = asyncio.run(_load(base, files, concurrency))
    seconds = time.perf_counter() - t
    q = statistics.quantiles(latencies, n=20)
    return {"answers": answers, "seconds": seconds, "rps": len(files) / seconds, "p50": statistics.median(latencies),
            "p95": q[18]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = str(Path(tmp) / "tiny_x2.pth")
        torch.manual_seed(0)
        torch.save(build_generator("srvgg", scale=2, n_convs=1, base_channels=4, act="prelu").state_dict(), model)
        files = images(args.requests, args.size)
        want = expected(model, files, Path(tmp) / "cli")
        app = create_app([model], device="cpu", max_queued=args.requests, workdir=tmp)
        proc = psutil.Process()
        with running(app) as base:
            rss0 = proc.memory_info().rss
            r = load(base, files, args.concurrency)
            growth = (proc.memory_info().rss - rss0) / 2**20
            left = sum(1 for _ in app.state.jobs.root.rglob("*"))
    wrong = sum(r["answers"][n] != want[n] for n in files)
    print(f"{args.requests} requests of {args.size}x{args.size} PNGs, {args.concurrency} at once, {args.threads} "
          f"threads: {r['rps']:.1f} requests/s, latency p50 {r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms; "
          f"wrong answers {wrong}; files left {left}; memory growth {growth:.0f} MiB")


if __name__ == "__main__":
    main()
