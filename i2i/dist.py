"""torchrun (or Slurm) environment -> process group, and rank helpers.

Under ``torchrun`` the variables RANK / WORLD_SIZE / LOCAL_RANK are set; launched by Slurm's
``srun`` without torchrun, :func:`adopt_slurm` sets them from the allocation; otherwise
everything here degrades to a single process of rank 0.
"""

from __future__ import annotations

import atexit
import ctypes
import datetime
import multiprocessing
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import torch
import torch.distributed as dist


def resolve_device(spec: str | torch.device, local_rank: int | None = None) -> torch.device:
    """The one device resolver: ``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else
    ``cpu``; ``cuda`` without an index -> ``cuda:<local_rank>`` (each torchrun process its own
    GPU); anything else is parsed by torch, and asking for CUDA without it is a ValueError.
    ``local_rank`` None: torchrun's ``LOCAL_RANK`` (0 outside torchrun)."""
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if isinstance(spec, torch.device):
        dev = spec
    elif spec == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        try:
            dev = torch.device(spec)
        except RuntimeError:
            raise ValueError(f"device {spec!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(spec)!r} was asked for but CUDA is not available here; use 'auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device``: CUDA's free memory, or the CPU's ``MemAvailable`` (None when unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``node[03-05,9]`` -> ``node03``): ``scontrol show
    hostnames`` where Slurm is installed, else the list's first entry expanded here."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30,
                             check=True).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    m = re.match(r"([^,\[]+)(?:\[([^\],-]+))?", nodelist)
    if m is None:
        raise ValueError(f"cannot read the Slurm node list {nodelist!r}")
    return m.group(1) + (m.group(2) or "")


def adopt_slurm(env: dict[str, str] | None = None) -> bool:
    """When ``srun`` started this process as one task of a step of several, and torchrun did not,
    set torchrun's variables from Slurm's: RANK (SLURM_PROCID), WORLD_SIZE (SLURM_STEP_NUM_TASKS),
    LOCAL_RANK (SLURM_LOCALID), MASTER_ADDR (the step's first node), MASTER_PORT (kept if set, else
    20000 + the job id mod 20000). The batch script itself (no step) is left alone. Returns
    whether it did; ``env``: the environment to read and change (``os.environ``)."""
    env = os.environ if env is None else env
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1)
    if "RANK" in env or "SLURM_PROCID" not in env or env.get("SLURM_STEP_ID") in (None, "batch") or tasks < 2:
        return False
    env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], str(tasks)
    env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    env.setdefault("MASTER_ADDR", first_host(env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or
                                             "127.0.0.1"))
    env.setdefault("MASTER_PORT", str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))
    return True


def env_world_size() -> int:
    """Processes torchrun (or srun: :func:`adopt_slurm`) started (``WORLD_SIZE``; 1 outside them)."""
    adopt_slurm()
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """This process's rank as torchrun (or srun) set it (``RANK``; 0 outside them), with or without a process group."""
    adopt_slurm()
    return int(os.environ.get("RANK", "0"))


def init_from_env(device_type: str) -> tuple[int, int, int]:
    """Join the process group if launched by torchrun; return ``(rank, local_rank, world)``.

    NCCL on CUDA, gloo otherwise.
    """
    world = env_world_size()
    if world <= 1:
        return 0, 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        store = _restart_store(world, env_rank())
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=env_rank(), world_size=world)
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size()


def _restart_store(world: int, rank: int) -> dist.Store | None:
    """After torchrun restarted the group (``--max-restarts``), the store its agent keeps still
    holds the dead group's rendezvous keys, and the new group's gloo / NCCL set-up reads them and
    waits forever (pytorch/pytorch#135712). The restarted group gets its own key space instead:
    the same store under a prefix naming the restart. None on the first attempt (torch's own set-up)."""
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if restart == 0 or "MASTER_ADDR" not in os.environ:
        return None
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not agent and rank == 0, timeout=datetime.timedelta(minutes=10))
    return dist.PrefixStore(f"i2i_restart_{restart}", store)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the process group (0 without one)."""
    return dist.get_rank() if is_distributed() else 0


def all_gather_object(obj: object) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, obj)
    return parts


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (one small all-reduce; no-op alone)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def die_with_parent(worker_id: int = 0) -> None:
    """``worker_init_fn`` for data-loader workers (training and conversion): the worker ends
    within a second when its parent process is gone, even after ``kill -9`` of the parent
    (when nobody would tell it, and its queue's feeder thread could block its exit forever).
    On Linux the kernel sends SIGKILL at once (``PR_SET_PDEATHSIG``); everywhere a daemon
    thread also polls the parent pid.

    The worker ignores SIGINT and SIGTERM: Ctrl-C, systemd and Slurm signal the whole process
    group, and a worker that died first would make its parent fail with "DataLoader worker is
    killed" before it could finish the step and save. The parent decides; the workers end with it."""
    del worker_id
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="i2i-parent-watch", daemon=True).start()


_REAPER = {"registered": False}


def _kill_daemon_children() -> None:
    # torch's SIGCHLD handler would raise "DataLoader worker is killed" in the middle of this
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    children = [p for p in multiprocessing.active_children() if p.daemon]
    for p in children:
        p.kill()
    for p in children:
        p.join(timeout=5)


def kill_workers_at_exit() -> None:
    """Call in a process that starts data-loader workers with :func:`die_with_parent`: at exit,
    workers still alive are killed before Python's own exit handler asks them to terminate with
    SIGTERM, which they ignore, and waits for them forever. (Registered once; exit handlers run
    last-registered first, so this runs before multiprocessing's.)"""
    if not _REAPER["registered"]:
        atexit.register(_kill_daemon_children)
        _REAPER["registered"] = True
