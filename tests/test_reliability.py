"""Losing no work: stop signals save and resume exactly, workers die with their parent, no
non-finite state is saved, logs and temporary files survive crashes, disk errors name paths."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import i2i
from i2i.cli import main
from i2i.config import dump_config
from i2i.engine.trainer import Trainer, TrainingDiverged, train

ROOT = Path(__file__).resolve().parent.parent


def _cfg(tmp_path, gray2color, make_config, **train_kw):
    return make_config(tmp_path, gray2color, schedule={"policy": "constant"},
                       train={"steps": 12, "checkpoint_every": 1000, "log_every": 1, **train_kw})


def _weights(path) -> dict:
    return torch.load(path, weights_only=True)["nets"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_stop_signal_finishes_the_step_saves_and_resumes_exactly(tmp_path, gray2color, make_config, signum):
    straight = _cfg(tmp_path / "a", gray2color, make_config)
    train(straight)
    cfg = _cfg(tmp_path / "b", gray2color, make_config)
    t = Trainer(cfg)
    real_step = t.train_step
    before = signal.getsignal(signum)

    def step_then_signal(batch):
        out = real_step(batch)
        if t.step == 5:
            os.kill(os.getpid(), signum)  # arrives mid-run, as from a scheduler
        return out

    t.train_step = step_then_signal
    summary = t.fit()
    assert summary["stopped"] == signum and summary["step"] == 5
    assert torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 5
    assert f"stopped by {signal.Signals(signum).name} at step 5/12" in (cfg.run_dir / "train.log").read_text()
    assert signal.getsignal(signum) == before  # the caller's handler is back
    train(cfg, resume="auto")
    a, b = _weights(straight.run_dir / "checkpoints" / "last.pt"), _weights(cfg.run_dir / "checkpoints" / "last.pt")
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_a_second_signal_aborts_at_once(tmp_path, gray2color, make_config):
    cfg = _cfg(tmp_path, gray2color, make_config)
    t = Trainer(cfg)
    real_step = t.train_step

    def step_then_two_signals(batch):
        out = real_step(batch)
        if t.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    t.train_step = step_then_two_signals
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert not (cfg.run_dir / "checkpoints" / "last.pt").exists()


def test_the_train_command_exits_128_plus_the_signal_after_saving(tmp_path, gray2color, make_config):
    cfg = _cfg(tmp_path, gray2color, make_config, steps=100_000, progress=False)
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "i2i", "train", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = cfg.run_dir / "train.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "step 3/" in log.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    step = torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert step >= 3 and f"stopped by SIGTERM at step {step}" in out


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_conversion_workers_die_with_their_parent(tmp_path):
    for i in range(40):
        i2i.write_image(tmp_path / "in" / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    script = textwrap.dedent(f"""
        import time, sys
        from i2i.convert import ConvertOptions, convert_path
        def slow(arrays):
            time.sleep(600)
        print("ready", flush=True)
        convert_path(slow, {str(tmp_path / 'in')!r}, {str(tmp_path / 'out')!r}, ConvertOptions(workers=2, batch_size=1))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.time() + 60
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.2)
        workers = _children(proc.pid)
    assert len(workers) >= 2, "the decode workers did not start"
    proc.kill()  # kill -9: nobody tells the workers
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(
        Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2] for w in workers
    ):
        time.sleep(0.2)
    alive = [
        w for w in workers if Path(f"/proc/{w}").exists() and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"
    ]
    assert not alive, f"workers {alive} outlived their parent"


def test_non_finite_weights_are_never_saved_and_the_message_tells_the_truth(tmp_path, gray2color, make_config):
    cfg = _cfg(tmp_path, gray2color, make_config, checkpoint_every=4, steps=8)
    t = Trainer(cfg)
    real_step = t.train_step

    def step_then_overflow(batch):
        out = real_step(batch)
        if t.step == 6:  # finite losses, but a running variance overflows (as with lr 1e8)
            bn = next(m for m in t.pipeline.nets["G"].modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(float("inf"))
            t.cfg.train.bn_recalibration_batches = 0  # so the recalibration cannot repair it
        return out

    t.train_step = step_then_overflow
    with pytest.raises(TrainingDiverged) as e:
        t.fit()
    msg = str(e.value)
    assert (
        "became non-finite by step 8" in msg
        and "nothing was saved at this step" in msg
        and "(step 4, all weights finite" in msg
    )
    kept = torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert kept["step"] == 4 and all(
        torch.isfinite(v).all() for sd in kept["nets"].values() for v in sd.values() if v.is_floating_point()
    )


def test_records_survive_a_kill_before_the_first_checkpoint_and_a_cut_off_line(tmp_path, gray2color, make_config):
    cfg = _cfg(tmp_path, gray2color, make_config, steps=6, checkpoint_every=3)
    cfg.run_dir.mkdir(parents=True)
    # a run killed before step 3
    (cfg.run_dir / "metrics.jsonl").write_text('{"step": 1, "G_L1": 9}\n{"step": 2, "G_L1": 9}\n')
    (cfg.run_dir / "checkpoints").mkdir()
    (cfg.run_dir / "checkpoints" / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    t = Trainer(cfg, resume="auto")
    assert list((cfg.run_dir / "checkpoints").glob("*.tmp")), "nothing is touched before the run's lock is held"
    t.total_steps = 3
    t.fit()
    assert not list((cfg.run_dir / "checkpoints").glob("*.tmp")), "stale temporary files are removed once it is held"
    with open(cfg.run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "G_L')  # cut off by a kill or a full disk
    train(cfg, resume="auto")
    records = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6] and all(r["G_L1"] != 9 for r in records)


def test_a_full_disk_names_the_path_and_keeps_finished_files(tmp_path, gray2color, make_config, monkeypatch, capsys):
    cfg = _cfg(tmp_path, gray2color, make_config, steps=4, checkpoint_every=2)
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    import i2i.checkpoint as ck

    real = ck.atomic_write_bytes
    calls = {"n": 0}

    def full_after_first(target, data):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target, data)

    monkeypatch.setattr(ck, "atomic_write_bytes", full_after_first)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "last.pt" in err and "Traceback" not in err
    assert torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 2


def test_a_clean_rerun_removes_the_old_failure_list(trained, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    i2i.write_image(tmp_path / "in" / "good.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".good.png.abc123.tmp").write_bytes(b"half an image")  # a write a kill interrupted
    (tmp_path / "out" / ".other.tmp").write_bytes(b"not ours")
    assert main(["convert", trained, str(tmp_path / "in"), str(tmp_path / "out"), "--quiet", "--workers", "0"]) == 1
    assert (tmp_path / "out" / "failed.txt").exists()
    assert not (tmp_path / "out" / ".good.png.abc123.tmp").exists() and (tmp_path / "out" / ".other.tmp").exists()
    (tmp_path / "in" / "bad.png").unlink()
    assert main(["convert", trained, str(tmp_path / "in"), str(tmp_path / "out"), "--quiet", "--workers", "0"]) == 0
    assert not (tmp_path / "out" / "failed.txt").exists()


def test_left_out_inputs_are_reported_with_reasons(trained, tmp_path, capsys):
    src = tmp_path / "in"
    i2i.write_image(src / "a.png", np.zeros((8, 8), np.uint8))
    (src / "notes.txt").write_text("hello")
    (src / "scan.pdf").write_bytes(b"%PDF-1.4")
    (src / ".hidden.png").write_bytes(b"x")
    (src / "broken.png").symlink_to(tmp_path / "nowhere.png")
    (src / "sub").mkdir()
    (src / "sub" / "loop").symlink_to(src, target_is_directory=True)
    assert main(["convert", trained, str(src), str(tmp_path / "out"), "--quiet", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "converted 1," in out and "ignored 4 (not images or unreadable links; listed in failed.txt)" in out
    listed = (tmp_path / "out" / "failed.txt").read_text()
    assert (
        "notes.txt\tskipped: not a format i2i reads" in listed and "scan.pdf\tskipped: not a format i2i reads" in listed
    )
    assert "broken.png\tskipped: a broken symbolic link" in listed and "loop\tskipped: a symbolic link back" in listed
    assert ".hidden" not in listed


def _start_training(cfg, tmp_path, *extra: str) -> subprocess.Popen:
    """``i2i train`` of ``cfg`` in a session of its own (as systemd and Slurm run jobs)."""
    path = tmp_path / f"{cfg.name}.yaml"
    path.write_text(dump_config(cfg))
    return subprocess.Popen([sys.executable, "-m", "i2i", "train", str(path), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_step(cfg, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    log = cfg.run_dir / "train.log"
    deadline = time.time() + timeout
    while time.time() < deadline and not (log.exists() and f"step {step}/" in log.read_text()):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)


def test_sigterm_to_the_process_group_lets_the_main_process_save(tmp_path, gray2color, make_config):
    """systemd and Slurm signal the whole group: the loader workers ignore it, the main process
    finishes the step, saves and exits 143; the run continues from there."""
    cfg = make_config(tmp_path, gray2color, data={"num_workers": 1},
                      train={"steps": 100_000, "checkpoint_every": 1000, "log_every": 1, "progress": False})
    proc = _start_training(cfg, tmp_path)
    _wait_for_step(cfg, 3, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "DataLoader worker" not in err
    step = torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert step >= 3 and f"stopped by SIGTERM at step {step}" in out
    assert main(["train", str(tmp_path / "tiny.yaml"), "--resume", "auto", "--set", f"train.steps={step + 2}"]) == 0
    assert torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == step + 2


def test_a_second_process_on_a_live_run_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path, gray2color, make_config,
                                                                                      capsys):
    cfg = make_config(tmp_path, gray2color,
                      train={"steps": 100_000, "checkpoint_every": 2, "log_every": 1, "progress": False})
    proc = _start_training(cfg, tmp_path)
    _wait_for_step(cfg, 3, proc)
    records = (cfg.run_dir / "metrics.jsonl").read_text()
    for argv, needle in ((["--resume", "auto"], f"another process (PID {proc.pid} on"),
                         ([], "already holds a checkpoint")):
        assert main(["train", str(tmp_path / "tiny.yaml"), *argv]) == 2
        err = capsys.readouterr().err
        assert needle in err and "\n" not in err.strip(), err
    assert (cfg.run_dir / "metrics.jsonl").read_text().startswith(records)  # the live run's records untouched
    proc.kill()  # kill -9: the kernel releases the lock
    proc.communicate()
    assert main(["train", str(tmp_path / "tiny.yaml"), "--resume", "auto", "--set", "train.steps=6"]) == 0


# ------------------------------------------------------------ configs that load but cannot run
def test_nets_too_deep_for_the_data_are_refused_by_name_before_training(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, model={"discriminator": {"n_layers": 10}})
    with pytest.raises(i2i.ConfigError,
                       match=r"model.discriminator \(net D, PatchDiscriminator\) cannot take 32x32 inputs"):
        Trainer(cfg)
    cfg = make_config(tmp_path, gray2color, model={"generator": {"num_downs": 8}}, data={"preprocess": "none"})
    with pytest.raises(i2i.ConfigError,
                       match=r"model.generator \(net G, UnetGenerator\) cannot take 32x32 .*multiples of 256"):
        Trainer(cfg)
    assert not cfg.run_dir.exists()


@pytest.mark.parametrize("case", ["dcgan image_size 4096", "sr crop 4096", "batch 65536"])
def test_runs_that_cannot_fit_in_memory_are_refused_before_allocating(tmp_path, gray2color, shapes, make_config,
                                                                      monkeypatch, case):
    """Estimated on the meta device against the memory free (fixed here at 16 GiB, so the test
    means the same on every machine)."""
    from conftest import dcgan_config

    import i2i.engine.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 16 * 2**30)
    if case == "dcgan image_size 4096":
        cfg = dcgan_config(make_config, tmp_path, shapes, generator={"base_channels": 64},
                           data={"image_size": 4096, "batch_size": 4})
        needle = "data.image_size"
    elif case == "sr crop 4096":
        i2i.write_image(tmp_path / "hr" / "big.png", np.zeros((4096, 4096, 3), np.uint8))
        cfg = make_config(tmp_path, gray2color, pipeline="srgan",
                          model={"generator": {"name": "srresnet", "scale": 4, "in_channels": 3, "out_channels": 3},
                                 "discriminator": {"name": "srgan"}},
                          data={"root": str(tmp_path / "hr"), "val_root": None, "crop_size": 4096, "batch_size": 16},
                          loss={"adversarial_weight": 0.0})
        needle = "data.crop_size"
    else:
        cfg = make_config(tmp_path, gray2color, data={"batch_size": 65536})
        needle = "data.batch_size"
    with pytest.raises(i2i.ConfigError, match="needs about .* GiB") as e:
        Trainer(cfg)
    assert needle in str(e.value) and "16.0 GiB free" in str(e.value)
    cfg = make_config(tmp_path, gray2color, data={"batch_size": 64}, train={"bn_recalibration_batches": 100_000})
    with pytest.raises(i2i.ConfigError, match="train.bn_recalibration_batches=100000"):
        Trainer(cfg)
    Trainer(make_config(tmp_path, gray2color))  # the small run fits


def test_more_class_folders_than_num_classes_is_refused(tmp_path, shapes, make_config):
    from conftest import dcgan_config

    cfg = dcgan_config(make_config, tmp_path, shapes, generator={"num_classes": 1})
    with pytest.raises(i2i.ConfigError,
                       match=r"num_classes=1, but .* holds 2 classes \(disc, square\); set num_classes: 2"):
        Trainer(cfg)


def test_a_bad_image_met_mid_run_stops_in_one_line_after_saving(tmp_path, gray2color, make_config, capsys):
    import shutil
    import struct
    import zlib

    data = tmp_path / "data"
    shutil.copytree(gray2color / "train", data)
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    for side in ("A", "B"):  # named to sort last: the first items load
        (data / side / "zz_header.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    # The default cache (auto: memory here) decodes every file before the first step: refused
    # there, naming the file, with nothing written.
    early = make_config(tmp_path / "early", gray2color, data={"root": str(data)}, train={"steps": 40})
    path = tmp_path / "early.yaml"
    path.write_text(dump_config(early))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "zz_header.png" in err and "60000x60000" in err and "before any step; nothing was written" in err, err
    assert "data.cache: memory (auto)" in err and not (early.run_dir / "checkpoints").exists()
    # Without a cache, the loader meets it mid-run: the run saves and stops in one line.
    cfg = make_config(tmp_path, gray2color, data={"root": str(data), "num_workers": 1, "cache": "none"},
                      train={"steps": 40, "checkpoint_every": 1000, "log_every": 1})
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # the lines before it are the run's log
    assert err.startswith("i2i train: error: image") and "Traceback" not in err, err
    assert "zz_header.png" in err and "60000x60000" in err and "continue with --resume auto" in err
    saved = torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert f"training stopped at step {saved}" in err and saved > 0
