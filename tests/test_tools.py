import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_runs_the_real_trainer_and_reports_figures(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark.py"), str(ROOT / "configs/pix2pix/demo.yaml"), "--threads", "1",
         "--set", "model.generator.base_channels=8", "--set", "model.discriminator.base_channels=8", "--set", "data.batch_size=1",
         "--steps", "1", "--repeats", "1", "--warmup", "1", "--images", "1", "--size", "40", "--write", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["mode"] == "eager" and row["train_it_per_s"] > 0 and row["convert_img_per_s"] > 0 and row["convert_size"] == 40


def test_gpu_benchmark_counts_flops_and_reports_mfu(tmp_path):
    """The issue-15 table's tool runs end to end (on the CPU here: the figures matter on a GPU)."""
    out = tmp_path / "gpu.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_gpu.py"), str(ROOT / "configs/pix2pix/demo.yaml"), "--threads", "1",
         "--set", "model.generator.base_channels=8", "--set", "model.discriminator.base_channels=8", "--modes", "eager",
         "--steps", "1", "--repeats", "1", "--warmup", "1", "--max-batch", "2", "--peak-tflops", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [row["batch"] for row in rows] == [1, 2]
    assert rows[1]["gflop_per_it"] == pytest.approx(2 * rows[0]["gflop_per_it"], rel=0.05)  # FLOPs scale with the batch
    assert all(row["it_per_s"] > 0 and 0 < row["mfu"] < 1 for row in rows)
