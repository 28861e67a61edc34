"""A run you can watch: plain log lines off a terminal (never carriage returns), a live bar on
one, a start-up banner, RUN/train.log, and steps / epochs that replace each other."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from i2i.config import ConfigError, dump_config
from i2i.engine.runlog import RunLog, format_duration
from i2i.recipes import load_config


def test_a_shipped_epoch_recipe_takes_train_steps_and_the_other_way_round():
    cfg = load_config("configs/pix2pix/facades.yaml", ["train.steps=30"])
    assert (cfg.train.steps, cfg.train.epochs) == (30, None)
    cfg = load_config("configs/dcgan/fashion_mnist_cpu.yaml", ["train.epochs=3"])
    assert (cfg.train.steps, cfg.train.epochs) == (None, 3)
    with pytest.raises(ConfigError, match="exactly one of 'train.epochs' and 'train.steps'"):
        load_config("configs/pix2pix/facades.yaml", ["train.steps=30", "train.epochs=2"])  # both given: say so


def test_training_output_off_a_terminal_is_plain_lines_and_train_log_keeps_them(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, train={"steps": 6, "log_every": 2, "progress": True, "checkpoint_every": 3})
    script = "import sys, i2i; i2i.train(i2i.load_config(sys.argv[1]), resume='auto')"
    (tmp_path / "cfg.yaml").write_text(dump_config(cfg))
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cfg.yaml")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr and "\r" not in run.stdout  # a pipe is not a terminal: no bar frames
    lines = run.stderr.strip().splitlines()
    assert lines[0].startswith("i2i ") and "pix2pix run 'tiny'" in lines[0]
    assert any(line.startswith("device cpu") and "world size 1" in line for line in lines)
    assert any(line.startswith("data: ") and "training items" in line for line in lines)
    assert any(line.startswith("nets: G ") and "UnetGenerator" in line for line in lines)
    steps = [line for line in lines if line.startswith("step ")]
    assert [int(re.match(r"step (\d+)/6", s).group(1)) for s in steps] == [2, 4, 6] and all(
        "G_L1" in s and "it/s" in s for s in steps
    )
    assert lines[-1].startswith("done: step 6/6")
    log = (cfg.run_dir / "train.log").read_text()
    assert log.strip().splitlines() == lines  # the file holds what was shown
    # A resumed run appends, and its banner says where it came from.
    cfg2 = make_config(tmp_path, gray2color,
                       train={"steps": 8, "log_every": 2, "progress": True, "checkpoint_every": 3})
    (tmp_path / "cfg.yaml").write_text(dump_config(cfg2))
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cfg.yaml")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "resumed from" in run.stderr and "at step 6" in run.stderr
    log = (cfg.run_dir / "train.log").read_text()
    assert log.count("fresh start") == 1 and log.count("resumed from") == 1 and "done: step 8/8" in log


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_live_bar_and_the_file_still_gets_lines(tmp_path):
    term = _Terminal()
    log = RunLog(tmp_path / "train.log", total=4, initial=0, name="run", live=True, stream=term)
    log.lines(["banner"])
    for step in range(1, 5):
        log.advance()
        if step % 2 == 0:
            log.record({"step": step, "epoch": 0, "G_L1": 0.5, "it_per_s": 3.0, "lr_G": 2e-4})
    log.close("done")
    assert "\r" in term.getvalue() and "G_L1" in term.getvalue()  # tqdm's live frames
    logged = (tmp_path / "train.log").read_text().splitlines()
    assert logged[0] == "banner" and logged[-1] == "done" and len(logged) == 4
    assert logged[1].startswith("step 2/4 (epoch 0) G_L1 0.5 | 3.00 it/s, lr_G "
                                "0.0002, ETA ") and logged[2].startswith("step 4/4")
    quiet = RunLog(tmp_path / "other.log", total=4, initial=0, name="run", live=True, enabled=False, stream=term)
    quiet.lines(["x"])
    quiet.close("y")
    assert not (tmp_path / "other.log").exists()  # ranks other than 0 write nothing


def test_durations_read_like_a_person_would_write_them():
    assert [format_duration(s) for s in (5, 75, 3725)] == ["5s", "1m15s", "1h02m"]


def test_sample_grids_label_their_columns(tmp_path):
    import torch

    from i2i.data.io import read_image
    from i2i.report import save_grid

    cols = [torch.full((2, 3, 32, 32), 1.0), torch.full((2, 1, 32, 32), 1.0)]  # white cells
    plain = read_image(save_grid(tmp_path / "plain.png", cols))
    titled = read_image(save_grid(tmp_path / "titled.png", cols, titles=["real_a", "fake_b"]))
    assert titled.shape[0] == plain.shape[0] + 14 and titled.shape[1] == plain.shape[1]
    band = titled[:14]
    for j in range(2):  # dark text pixels above each column, none in the plain grid's cells
        x0 = 2 + j * 34
        assert (band[:, x0 : x0 + 32] < 128).any()
    assert (plain > 250).sum() > 0.8 * plain.size
