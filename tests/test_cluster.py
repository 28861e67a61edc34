"""Beyond one machine (issue 47): two torchrun "nodes" on localhost equal one node with two
processes bit for bit; an elastic group that loses a worker to SIGKILL restarts from the last
checkpoint and ends bit-identical to an uninterrupted run; srun without torchrun is read from
Slurm's variables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from i2i.config import dump_config
from i2i.dist import adopt_slurm, first_host


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(make_config, tmp_path: Path, gray2color: Path, name: str, steps: int = 4, **train) -> tuple[Path, Path]:
    """A tiny pix2pix without batch statistics or dropout, batch 1 per process; (yaml, run folder)."""
    model = {"generator": {"norm": "none", "dropout": False}, "discriminator": {"norm": "none"}}
    cfg = make_config(tmp_path / name, gray2color, model=model,
                      data={"batch_size": 1, "root": str(gray2color / "train"), "val_root": None},
                      train={"steps": steps, "log_every": 1, **train})
    path = tmp_path / f"{name}.yaml"
    path.write_text(dump_config(cfg))
    return path, cfg.run_dir


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["nets"]


def _assert_equal(a: dict, b: dict) -> None:
    for net in a:
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), f"{net}.{k}"


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _one_node_of_two(cfg_file: Path) -> None:
    """The reference run: torchrun, one node, two processes."""
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
                        f"--master-port={_free_port()}", "-m", "i2i", "train", str(cfg_file)],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.slow
def test_two_localhost_nodes_equal_one_node_of_two_processes_bit_for_bit(tmp_path, gray2color, make_config):
    one, run_one = _config(make_config, tmp_path, gray2color, "one")
    two, run_two = _config(make_config, tmp_path, gray2color, "two")
    _one_node_of_two(one)
    port = _free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                               f"--node-rank={k}", "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "i2i",
                               "train", str(two)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for k in range(2)]
    for p in nodes:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    _assert_equal(_weights(run_one), _weights(run_two))


@pytest.mark.slow
def test_an_elastic_group_that_loses_a_worker_resumes_and_ends_bit_identical(tmp_path, gray2color, make_config):
    straight, run_straight = _config(make_config, tmp_path, gray2color, "straight", steps=8, checkpoint_every=1)
    elastic, run_elastic = _config(make_config, tmp_path, gray2color, "elastic", steps=8, checkpoint_every=1)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--max-restarts=1",
              f"--master-port={_free_port()}", "-m", "i2i", "train"]
    r = subprocess.run([*launch, str(straight), "--resume", "auto"], capture_output=True, text=True, env=ENV,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    launch[5] = f"--master-port={_free_port()}"
    group = subprocess.Popen([*launch, str(elastic), "--resume", "auto"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV)
    killed = None
    for _ in range(3000):  # SIGKILL rank 1 once step 3's checkpoint exists
        metrics = run_elastic / "metrics.jsonl"
        if metrics.exists() and metrics.read_text().count("\n") >= 3:
            for child in psutil.Process(group.pid).children(recursive=True):
                if child.environ().get("RANK") == "1" and "i2i" in " ".join(child.cmdline()):
                    child.send_signal(signal.SIGKILL)
                    killed = child.pid
                    break
            if killed:
                break
        time.sleep(0.02)
    _, err = group.communicate(timeout=300)
    assert killed and group.returncode == 0, err[-3000:]
    assert "resumed from" in (run_elastic / "train.log").read_text()  # the restarted group took up the checkpoint
    _assert_equal(_weights(run_straight), _weights(run_elastic))


def test_slurm_variables_become_torchruns_and_the_batch_script_is_left_alone(tmp_path, monkeypatch):
    step = {"SLURM_PROCID": "3", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4", "SLURM_LOCALID": "1",
            "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "4242"}
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "scontrol").write_text("#!/bin/sh\n[ \"$1 $2\" = 'show hostnames' ] && echo gpu07 && echo gpu08\n")
    (stub / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub}:{os.environ['PATH']}")
    env = dict(step)
    assert adopt_slurm(env)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], env["MASTER_ADDR"], env["MASTER_PORT"]) == \
        ("3", "4", "1", "gpu07", "24242")
    assert not adopt_slurm({**step, "SLURM_STEP_ID": "batch"})  # the sbatch script: one process, no group
    assert not adopt_slurm({**step, "RANK": "0"})  # torchrun under srun: torchrun's variables win
    assert not adopt_slurm({**step, "SLURM_STEP_NUM_TASKS": "1"})
    monkeypatch.setenv("PATH", "/nonexistent")
    assert first_host("node[03-05,9]") == "node03" and first_host("a1,b2") == "a1"


@pytest.mark.slow
def test_two_srun_tasks_without_torchrun_train_as_one_group(tmp_path, gray2color, make_config):
    one, run_one = _config(make_config, tmp_path, gray2color, "torchrun")
    two, run_two = _config(make_config, tmp_path, gray2color, "srun")
    _one_node_of_two(one)
    port = str(_free_port())
    tasks = [subprocess.Popen([sys.executable, "-m", "i2i", "train", str(two)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**ENV, "SLURM_PROCID": str(k), "SLURM_LOCALID": str(k), "SLURM_STEP_ID": "0",
                                   "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "127.0.0.1",
                                   "SLURM_JOB_ID": "7", "MASTER_PORT": port})
             for k in range(2)]
    outs = [p.communicate(timeout=300) for p in tasks]
    assert all(p.returncode == 0 for p in tasks), outs[0][1][-2000:] + outs[1][1][-2000:]
    assert sum("trained" in out for out, _ in outs) == 1  # rank 0 alone reports
    _assert_equal(_weights(run_one), _weights(run_two))


def test_the_batch_search_recovers_from_out_of_memory_and_plan_writes_nothing(tmp_path, gray2color, make_config):
    from i2i.engine.plan import largest_batch, plan

    probes = []

    def fits(n: int) -> bool:
        probes.append(n)
        if n > 24:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return True

    def caught(n: int) -> bool:
        try:
            return fits(n)
        except torch.OutOfMemoryError:
            return False

    assert largest_batch(caught, 1, 1024) == 24 and probes[:6] == [1, 2, 4, 8, 16, 32]
    cfg = make_config(tmp_path / "runs", gray2color, train={"steps": 50})
    p = plan(cfg, warmup=1, measure=3, fits=caught)
    assert p["largest_batch"] == 24 and p["steps_per_s"] > 0 and p["total_steps"] == 50 and p["peak_bytes"] > 0
    assert not cfg.run_dir.exists()  # nothing written into the run folder


@pytest.mark.slow
def test_the_plan_estimates_a_real_run_within_a_quarter(tmp_path, gray2color, make_config):
    import i2i
    from i2i.engine.plan import plan

    torch.set_num_threads(2)
    cfg = make_config(tmp_path / "runs", gray2color, train={"steps": 200, "log_every": 50, "sample_every": 100,
                                                            "checkpoint_every": 100, "val_every": 100},
                      data={"val_root": str(gray2color / "test")})
    estimate = plan(cfg)["estimate_s"]
    t = time.perf_counter()
    i2i.train(cfg)
    real = time.perf_counter() - t
    assert abs(estimate - real) <= 0.25 * real, (estimate, real)


@pytest.mark.slow
def test_under_ddp_each_rank_reports_its_plan(tmp_path, gray2color, make_config):
    cfg_file, _ = _config(make_config, tmp_path, gray2color, "plan", steps=20)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
                        f"--master-port={_free_port()}", "-m", "i2i", "train", str(cfg_file), "--plan"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "plan (rank 0 of 2, cpu)" in r.stdout and "plan (rank 1 of 2, cpu)" in r.stdout
    assert "not searched under several processes" in r.stdout


@pytest.mark.slow
def test_scancel_sigterm_to_srun_tasks_saves_and_resumes(tmp_path, gray2color, make_config):
    cfg_file, run = _config(make_config, tmp_path, gray2color, "scancel", steps=2000, checkpoint_every=1000)
    port = str(_free_port())
    env = {**ENV, "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "127.0.0.1",
           "SLURM_JOB_ID": "9", "MASTER_PORT": port}
    tasks = [subprocess.Popen([sys.executable, "-m", "i2i", "train", str(cfg_file)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**env, "SLURM_PROCID": str(k), "SLURM_LOCALID": str(k)}) for k in range(2)]
    metrics = run / "metrics.jsonl"
    for _ in range(3000):
        if metrics.exists() and metrics.read_text().count("\n") >= 3:
            break
        time.sleep(0.02)
    for p in tasks:  # scancel signals every task of the step
        p.send_signal(signal.SIGTERM)
    outs = [p.communicate(timeout=300) for p in tasks]
    assert [p.returncode for p in tasks] == [128 + signal.SIGTERM] * 2, outs[0][1][-2000:] + outs[1][1][-2000:]
    step = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert 3 <= step < 2000 and f"stopped by SIGTERM at step {step}" in outs[0][0]
