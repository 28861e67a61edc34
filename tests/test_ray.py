"""Conversion on Ray Data (issue 47), on a local Ray instance: the same bytes as a local ``i2i
convert``, ``--skip-existing`` resumes, and an actor killed mid-run loses no file."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

import i2i
from i2i.cli import main
from i2i.convert import ConvertOptions

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model(tiny_x2: Path) -> Path:
    return tiny_x2


def inputs(folder: Path, n: int) -> Path:
    """``n`` images in two sub-folders: 8-bit PNGs, a 16-bit PNG, an RGBA PNG and a JPEG."""
    rng = np.random.default_rng(0)
    for k in range(n):
        sub = folder / ("a" if k % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 256, (20 + k, 24, 3), dtype=np.uint8)
        if k == 1:
            cv2.imwrite(str(sub / f"deep{k}.png"), img.astype(np.uint16) * 257)
        elif k == 2:
            cv2.imwrite(str(sub / f"alpha{k}.png"), np.dstack([img, img[:, :, :1]]))
        elif k == 3:
            cv2.imwrite(str(sub / f"photo{k}.jpg"), img)
        else:
            cv2.imwrite(str(sub / f"img{k}.png"), img)
    return folder


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "failed.txt"}


def test_ray_gives_the_bytes_of_a_local_conversion_and_skip_existing_resumes(local_ray, model, tmp_path):
    src = inputs(tmp_path / "in", 6)
    assert main(["convert", str(model), str(src), str(tmp_path / "local"), "--quiet"]) == 0
    summary = i2i.ray.convert(src, tmp_path / "ray", model, batch_size=2)
    assert len(summary.converted) == 6 and not summary.failed
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    again = i2i.ray.convert(src, tmp_path / "ray", model, ConvertOptions(skip_existing=True))
    assert again.converted == [] and len(again.skipped) == 6
    (tmp_path / "ray" / "a" / "deep1.png").unlink()  # the command line, resuming the one file missing
    assert main(["convert", str(model), str(src), str(tmp_path / "ray"), "--engine", "ray", "--skip-existing",
                 "--quiet"]) == 0
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")


def test_an_actor_killed_mid_run_loses_no_file(local_ray, model, tmp_path):
    src = inputs(tmp_path / "in", 16)
    assert main(["convert", str(model), str(src), str(tmp_path / "local"), "--quiet"]) == 0
    killed: list[int] = []

    def chaos() -> None:  # SIGKILL the first actor process seen once the first output exists
        for _ in range(2000):
            if any((tmp_path / "ray").rglob("*.png")):
                for p in psutil.process_iter(["cmdline"]):
                    if any("MapWorker" in part for part in (p.info["cmdline"] or [])):
                        p.send_signal(signal.SIGKILL)
                        killed.append(p.pid)
                        return
            time.sleep(0.01)

    t = threading.Thread(target=chaos, daemon=True)
    t.start()
    summary = i2i.ray.convert(src, tmp_path / "ray", model, batch_size=2)
    t.join(5)
    assert killed, "no actor process was found to kill"
    assert len(summary.converted) == 16 and not summary.failed
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    assert not list((tmp_path / "ray").rglob(".*.tmp"))
