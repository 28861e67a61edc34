import json
import subprocess
import sys
from pathlib import Path

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
