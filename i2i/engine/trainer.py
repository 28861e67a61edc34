"""The one training loop, shared by every pipeline.

The trainer owns devices, data loading, optimizers, schedules, AMP, ``torch.compile``,
DDP, logging, sample grids and checkpoints; the pipeline owns only what one
iteration computes. Resume is exact: the data order and augmentation are functions of
``(seed, epoch, index)``, and every piece of state that influences the next step (nets,
optimizers, schedulers, scaler, RNGs, pipeline state, position in the epoch) is saved.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .. import report
from ..config import Config, ConfigError, config_to_dict, dump_config
from ..data.io import atomic_write_bytes, write_image
from ..nets.blocks import has_batch_norm, recalibrate_batch_norm
from ..registry import pipeline_class
from . import dist
from .checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint, state_of
from .trackers import Tracker, group_scalars, start_trackers


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint was left as it was."""


def lr_lambda(cfg: Config, steps_per_epoch: int, total_steps: int):
    """Multiplicative lr factor as a function of the step, per ``cfg.schedule``."""
    s = cfg.schedule
    unit = steps_per_epoch if cfg.train.epochs is not None else 1
    policy = s.policy
    if policy == "constant":
        return lambda t: 1.0
    if policy == "linear":
        start = min(s.decay_start * unit, total_steps)
        span = max(total_steps - start, 1)
        return lambda t: 1.0 - max(0, t - start) / span
    if policy == "step":
        size = max(s.step_size * unit, 1)
        return lambda t: s.gamma ** (t // size)
    return lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total_steps) / max(total_steps, 1)))


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


class _Context:
    """The :class:`~i2i.pipelines.base.StepContext` the trainer hands to pipelines."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer
        self.step = 0
        self.backward_losses: dict[str, torch.Tensor] = {}

    def module(self, name: str) -> nn.Module:
        return self.t.train_modules[name]

    def autocast(self) -> contextlib.AbstractContextManager:
        t = self.t
        if t.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(t.device.type, dtype=t.amp_dtype)

    def updates(self, opt_name: str) -> bool:
        """Whether optimizer ``opt_name`` steps in this iteration: always, except the generator
        side (every optimizer but ``D``) with ``optim.n_critic`` > 1, which steps on every
        ``n_critic``-th iteration only (after ``n_critic`` discriminator updates)."""
        n = self.t.cfg.optim.n_critic
        return n == 1 or opt_name == "D" or "D" not in self.t.optimizers or (self.step + 1) % n == 0

    def backward_step(self, opt_name: str, loss: torch.Tensor) -> None:
        opt = self.t.optimizers[opt_name]
        # Kept so the trainer checks the totals it trained on, not only the logged parts.
        self.backward_losses[f"{opt_name}_total"] = loss.detach()
        if not self.updates(opt_name):
            return
        opt.zero_grad(set_to_none=True)
        self.t.scaler.scale(loss).backward()
        self.t.scaler.step(opt)

    @contextlib.contextmanager
    def frozen(self, *names: str) -> Iterator[tuple[nn.Module, ...]]:
        nets = [self.t.pipeline.nets[n] for n in names]
        saved = [[p.requires_grad for p in net.parameters()] for net in nets]
        for net in nets:
            net.requires_grad_(False)
        try:
            # The frozen modules are called without DDP: no gradients of theirs need syncing.
            yield tuple(self.t.frozen_modules[n] for n in names)
        finally:
            for net, flags in zip(nets, saved):
                for p, f in zip(net.parameters(), flags):
                    p.requires_grad_(f)


class Trainer:
    """Trains ``cfg.pipeline`` on ``cfg.data``, writing to ``cfg.run_dir``.

    ``resume``: None (fresh; refuses to overwrite an existing run), ``"auto"`` (continue
    from ``run_dir/checkpoints/last.pt`` when present) or a checkpoint path.
    """

    def __init__(self, cfg: Config, *, resume: str | None = None) -> None:
        self.cfg = cfg
        t = cfg.train
        self.rank, local_rank, self.world = dist.init_from_env("cuda" if torch.cuda.is_available() and t.device != "cpu" else "cpu")
        try:
            self.device = dist.resolve_device(t.device, local_rank)
        except ValueError as e:
            raise ConfigError(f"train.device: {e}") from None
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.is_main = self.rank == 0
        self.run_dir = cfg.run_dir
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resume_path = self._resume_path(resume)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

        # Same seed on every rank for identical initial weights; per-rank seeds afterwards.
        torch.manual_seed(cfg.seed)
        pipe_cls = pipeline_class(cfg.pipeline)
        self.pipeline = pipe_cls(cfg)
        self.dataset = pipe_cls.make_dataset(cfg, train=True)
        if cfg.data.val_root:
            from ..data.datasets import DataError

            try:
                preview = pipe_cls.make_dataset(cfg, train=False, root=cfg.data.val_root)
            except DataError as e:
                raise DataError(f"data.val_root: {e}") from None
        else:
            preview = pipe_cls.make_dataset(cfg, train=False)
        self.preview_batch = torch.utils.data.default_collate([preview[i] for i in range(min(4, len(preview)))])
        torch.manual_seed(cfg.seed + self.rank)
        random.seed(cfg.seed + self.rank)
        np.random.seed(cfg.seed + self.rank)

        from ..data.datasets import EpochSampler

        self.sampler = EpochSampler(len(self.dataset), shuffle=True, seed=cfg.seed, rank=self.rank, world_size=self.world)
        bs = cfg.data.batch_size
        self.steps_per_epoch = math.ceil(self.sampler.per_rank / bs)
        self.total_steps = t.steps if t.steps is not None else t.epochs * self.steps_per_epoch
        self.loader = DataLoader(
            self.dataset,
            batch_size=bs,
            sampler=self.sampler,
            num_workers=cfg.data.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=cfg.data.num_workers > 0,
            # A private generator: creating loader iterators must not consume the global
            # RNG, or a resumed run would draw different dropout masks.
            generator=torch.Generator().manual_seed(cfg.seed),
            worker_init_fn=dist.die_with_parent if cfg.data.num_workers > 0 else None,
        )

        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[t.amp]
        if t.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.amp='fp16' needs a CUDA device; use 'bf16' or 'none' on CPU")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=t.amp == "fp16")
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format

        for net in self.pipeline.nets.values():
            net.to(self.device, memory_format=self.memory_format)
        for module in self.pipeline.loss_modules.values():
            module.to(self.device)
        o = cfg.optim
        self.optimizers = {
            name: torch.optim.Adam(group["params"], lr=group["lr"], betas=(o.beta1, o.beta2), weight_decay=o.weight_decay,
                                   fused=o.fused)
            for name, group in self.pipeline.param_groups().items()
        }
        fn = lr_lambda(cfg, self.steps_per_epoch, self.total_steps)
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, fn) for name, opt in self.optimizers.items()}

        self.train_modules: dict[str, nn.Module] = {}
        self.frozen_modules: dict[str, nn.Module] = {}
        for name, net in self.pipeline.nets.items():
            wrapped = net
            if self.world > 1 and any(p.requires_grad for p in net.parameters()):
                ids = [self.device.index] if self.device.type == "cuda" else None
                wrapped = nn.parallel.DistributedDataParallel(net, device_ids=ids)
            self.train_modules[name] = torch.compile(wrapped) if t.compile else wrapped
            self.frozen_modules[name] = torch.compile(net) if t.compile else net

        if self.resume_path is None and cfg.model.generator.init_from:
            self._init_generator(Path(cfg.model.generator.init_from))
        # EMA of the generator's weights (Karras et al.'s smoothing): never trained, only
        # averaged after each step; inference and sampling prefer it when present.
        self.ema: dict[str, nn.Module] = {}
        if t.ema_decay > 0:
            name = pipe_cls.generator_name(cfg)
            self.ema[name] = copy.deepcopy(self.pipeline.nets[name]).eval().requires_grad_(False)

        self._recal_cache: list[dict[str, Any]] | None = None
        self._recalibrated_at: int | None = None
        self._setup_validation()
        self.ctx = _Context(self)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.val_history: list[dict[str, Any]] = []
        self.saved_step: int | None = None  # the step of the checkpoint on disk (None: none written yet)
        self.lr_changes: list[str] = []
        self.stop_signal: int | None = None
        if self.is_main:
            self._remove_stale_temp_files()
        if self.resume_path is not None:
            self._load(self.resume_path)
            self.saved_step = self.step

    # ------------------------------------------------------------------ setup helpers
    def _setup_validation(self) -> None:
        """The pipeline's :class:`~i2i.evaluate.Validator` on ``data.val_root`` (rank 0 builds
        it, decoding the data once; a missing or empty folder stops here, before training)."""
        from ..evaluate import ValidationError
        from ..registry import evaluation

        cfg, t = self.cfg, self.cfg.train
        self.validator = None
        self.val_metric = None
        self.best: dict[str, Any] = {"metric": None, "value": None, "step": None}
        if not t.val_every:
            return
        validator_cls = evaluation(type(self.pipeline).evaluation).validator
        self.val_metric = t.val_metric or validator_cls.default_metric
        self.val_better = validator_cls.metric_names(cfg)[self.val_metric]
        self.best["metric"] = self.val_metric
        if self.is_main:
            try:
                self.validator = validator_cls(cfg, cfg.data.val_root, self.inference_nets(), limit=t.val_limit,
                                               features=t.val_features)
            except (ValidationError, FileNotFoundError) as e:
                raise ConfigError(f"train.val_every={t.val_every}: {e}") from None

    def inference_nets(self) -> dict[str | None, nn.Module]:
        """Direction (None for generation) -> the generator inference would run: the EMA copy
        when kept, else the trained net (the modules themselves, not copies)."""
        pipe = type(self.pipeline)
        names = dict(pipe.directions) if pipe.kind == "translation" else {None: pipe.generator_name(self.cfg)}
        return {d: self.ema.get(n, self.pipeline.nets[n]) for d, n in names.items()}

    def _resume_path(self, resume: str | None) -> Path | None:
        last = self.ckpt_dir / "last.pt"
        if resume is None:
            if last.exists():
                raise ConfigError(
                    f"run folder '{self.run_dir}' already holds a checkpoint; continue it with resume='auto' (--resume auto), "
                    "or choose another 'name' / 'output_dir' (nothing was overwritten)"
                )
            return None
        if resume == "auto":
            return last if last.exists() else None
        path = Path(resume)
        if not path.is_file():
            raise CheckpointError(f"resume={resume!r} (--resume): no such checkpoint file; use 'auto' or a path to a .pt file")
        return path

    def _remove_stale_temp_files(self) -> None:
        """Atomic writes go through ``.NAME.*.tmp`` files; a process killed mid-write leaves one
        behind (a checkpoint's is as large as the checkpoint). Nothing else writes here now."""
        for folder in (self.run_dir, self.ckpt_dir, self.run_dir / "samples"):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, non_blocking=True)
                if v.dim() == 4:
                    v = v.contiguous(memory_format=self.memory_format)
            out[k] = v
        return out

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """Everything needed to continue training exactly (plain data and tensors only)."""
        return {
            "kind": "training",
            "pipeline": self.cfg.pipeline,
            "config": config_to_dict(self.cfg),
            "nets": {n: state_of(net) for n, net in self.pipeline.nets.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "pipeline_state": self.pipeline.state_dict(),
            "ema": {n: state_of(m) for n, m in self.ema.items()},
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": _rng_state(),
            "best": dict(self.best),
        }

    EMA_RAMPUP = 0.05  # the EMA's half-life as a fraction of the steps trained so far
    RECALIBRATION_EPOCH = 2**31 - 1  # an epoch number training never reaches: its own augmentation draws

    def _recalibration_batches(self) -> list[dict[str, Any]]:
        """A fixed set of ``train.bn_recalibration_batches`` training batches (the same at every
        save, so decoded once and kept on the CPU), built from ``(seed, epoch, index)`` keys: no
        loader, no global RNG, so exact resume holds."""
        if self._recal_cache is None:
            k, bs = self.cfg.train.bn_recalibration_batches, self.cfg.data.batch_size
            g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + 4243)
            order = torch.randperm(len(self.dataset), generator=g).tolist()
            keys = [(self.RECALIBRATION_EPOCH, order[i % len(order)]) for i in range(k * bs)]
            collate = torch.utils.data.default_collate
            self._recal_cache = [collate([self.dataset[key] for key in keys[i : i + bs]]) for i in range(0, len(keys), bs)]
        return [self._to_device(b) for b in self._recal_cache]

    def recalibrate_batch_norm(self) -> list[str]:
        """Re-estimate the batch-norm statistics of every inference generator (and its EMA copy)
        for its current weights, as inference will run it (dropout off, see
        :func:`~i2i.nets.blocks.recalibrate_batch_norm`). The running averages kept during
        training lag the weights (each is an average over the last ~1/momentum batches of
        *older* weights, and EMA weights never produced statistics of their own), which made
        eval-mode inference lose to the same weights with batch statistics. Running
        statistics never influence a training step, so this changes nothing but inference.
        Returns the names of the nets recalibrated."""
        if self.cfg.train.bn_recalibration_batches <= 0 or self._recalibrated_at == self.step:
            return []
        self._recalibrated_at = self.step  # the same batches and weights give the same statistics: once per step
        pipe = type(self.pipeline)
        names = sorted(set(pipe.directions.values()) or {pipe.sampled_net})
        # (generator name, what to call it, module): each inference generator and each EMA copy
        targets = [(n, n, self.pipeline.nets[n]) for n in names if n in self.pipeline.nets]
        targets += [(n, f"{n} (EMA)", m) for n, m in self.ema.items()]
        targets = [t for t in targets if has_batch_norm(t[2])]
        if not targets:
            return []
        batches = self._recalibration_batches()
        for name, _, net in targets:
            rng = torch.Generator().manual_seed(self.cfg.seed + 7919)  # the same latents for a net and its EMA
            recalibrate_batch_norm(net, (self.pipeline.generator_inputs(name, b, rng) for b in batches))
        return [label for _, label, _ in targets]

    def non_finite_state(self) -> list[str]:
        """Names of the weights and statistics (nets and EMA copies) that are NaN or infinite.
        Losses can stay finite while these are not (a huge learning rate overflows a running
        variance), so this is checked before anything is saved."""
        names, flags = [], []
        for prefix, modules in (("", self.pipeline.nets), ("EMA ", self.ema)):
            for name, net in modules.items():
                for key, t in net.state_dict().items():
                    if t.is_floating_point():
                        names.append(f"{prefix}{name}.{key}")
                        flags.append(torch.isfinite(t).all())
        finite = torch.stack(flags).cpu().tolist() if flags else []  # one host sync for all tensors
        return [n for n, ok in zip(names, finite) if not ok]

    def _refuse_non_finite(self) -> None:
        bad = self.non_finite_state()
        if bad:
            raise TrainingDiverged(
                f"{len(bad)} weight/statistic tensors became non-finite by step {self.step} (first: {', '.join(bad[:3])}), "
                f"although the losses were finite; nothing was saved at this step. {self._kept()} "
                "Lower optim.lr_g/lr_d or set train.amp to 'none'; then continue with --resume auto")

    def _kept(self) -> str:
        last = self.ckpt_dir / "last.pt"
        if self.saved_step is None or not last.exists():
            return "No checkpoint had been written yet."
        return f"The checkpoint '{last}' (step {self.saved_step}, all weights finite when written) was left intact."

    def save(self) -> Path | None:
        """Recalibrate the generators' batch norms, check every weight and statistic is finite,
        then write ``last.pt`` (and ``step_N.pt`` when keeping history) on rank 0 (every rank
        recalibrates, identically). Non-finite state is never written: :class:`TrainingDiverged`."""
        self.recalibrate_batch_norm()
        self._refuse_non_finite()
        path = None
        if self.is_main:
            state = self.state()
            path = save_checkpoint(self.ckpt_dir / "last.pt", state)
            keep = self.cfg.train.keep_checkpoints
            if keep > 0:
                save_checkpoint(self.ckpt_dir / f"step_{self.step:08d}.pt", state)
                for old in sorted(self.ckpt_dir.glob("step_*.pt"))[:-keep]:
                    old.unlink()
        self.saved_step = self.step
        dist.barrier()
        return path

    def validate(self) -> dict[str, float] | None:
        """Recalibrate the batch norms (as a save would), then measure the validator's metrics
        for the inference generators; on rank 0, when ``train.val_metric`` improved, write
        ``checkpoints/best.pt`` (the full training state at this step). Returns the metrics
        (None on other ranks). Neither the nets nor the random generators change, so a run
        validates identically whether or not it was resumed."""
        self.recalibrate_batch_norm()
        self._refuse_non_finite()
        values = None
        if self.is_main and self.validator is not None:
            values = self.validator(self.inference_nets())
            v, best = values[self.val_metric], self.best["value"]
            if best is None or (v > best if self.val_better == "max" else v < best):
                self.best.update(value=v, step=self.step)
                save_checkpoint(self.ckpt_dir / "best.pt", self.state())
        dist.barrier()
        return values

    def _init_generator(self, path: Path) -> None:
        """Start the generator from another run's raw weights (e.g. SRGAN from a pretrained SRResNet)."""
        from ..loading import load_generator

        pipe = type(self.pipeline)
        name = pipe.generator_name(self.cfg)
        try:
            src = load_generator(path, use_ema=False, kind=pipe.kind)
        except CheckpointError as e:
            raise CheckpointError(f"model.generator.init_from: {e}") from None
        load_state_strict(self.pipeline.nets[name], src.net.state_dict(), what=f"{name} (model.generator.init_from)", source=path)

    def _load(self, path: Path) -> None:
        data = load_checkpoint(path, map_location="cpu")
        if data.get("kind") != "training":
            raise CheckpointError(f"'{path}' is an exported generator, not a training checkpoint; it cannot resume training")
        if data.get("pipeline") != self.cfg.pipeline:
            raise CheckpointError(f"'{path}' was trained with pipeline {data.get('pipeline')!r}, not {self.cfg.pipeline!r}")
        for name, net in self.pipeline.nets.items():
            load_state_strict(net, data["nets"][name], what=name, source=path)
        for name, opt in self.optimizers.items():
            try:
                opt.load_state_dict(data["optimizers"][name])
            except ValueError as e:  # the weights fitted (perhaps after an upgrade), the optimizer's slots do not
                raise CheckpointError(
                    f"the {name} optimizer state in '{path}' does not fit this run's parameters ({e}): the checkpoint "
                    f"is of an earlier layout of these nets, so it cannot resume exactly; start a new run from its "
                    f"weights with --set model.generator.init_from={path}") from None
        for name, sched in self.schedulers.items():
            sched.load_state_dict(data["schedulers"][name])
        self._apply_configured_lr()
        self.scaler.load_state_dict(data["scaler"])
        for name, ema in self.ema.items():
            if name in data.get("ema", {}):
                load_state_strict(ema, data["ema"][name], what=f"{name} (EMA)", source=path)
            else:  # EMA switched on for a run that had none: start it from the current weights
                ema.load_state_dict(self.pipeline.nets[name].state_dict())
        self.pipeline.load_state_dict(data["pipeline_state"])
        self.step, self.epoch, self.batch_in_epoch = data["step"], data["epoch"], data["batch_in_epoch"]
        best = data.get("best") or {}
        if self.val_metric is not None and best.get("metric") == self.val_metric:
            self.best = dict(best)  # a different metric (or none before) starts its own record
        if self.world == 1:  # other ranks' RNG streams are not saved; single process resumes bit-exactly
            _set_rng_state(data["rng"])
        if self.is_main:
            self._trim_metrics(self.step)

    def _apply_configured_lr(self) -> None:
        """A resumed run uses the learning rates its config asks for now (``--set optim.lr_g=...``
        on resume), not the ones saved in the optimizer state: the schedule continues from the
        new base rate at the current step. Changes are listed in :attr:`lr_changes` (banner)."""
        for name, group in self.pipeline.param_groups().items():
            sched, opt, want = self.schedulers[name], self.optimizers[name], float(group["lr"])
            old = float(sched.base_lrs[0])
            if math.isclose(old, want, rel_tol=1e-12):
                continue
            sched.base_lrs = [want for _ in sched.base_lrs]
            for g, fn in zip(opt.param_groups, sched.lr_lambdas):
                g["initial_lr"] = want
                g["lr"] = want * fn(sched.last_epoch)
            sched._last_lr = [g["lr"] for g in opt.param_groups]
            self.lr_changes.append(f"{name} {old:g} -> {want:g}")

    def _trim_metrics(self, step: int) -> int:
        """Keep the ``metrics.jsonl`` records up to ``step`` (those written after the checkpoint
        a run continues from are written again), dropping lines that do not parse (cut off by
        a kill or a full disk). Returns how many lines were dropped as unreadable."""
        metrics = self.run_dir / "metrics.jsonl"
        if not metrics.exists():
            return 0
        kept, broken = [], 0
        for ln in metrics.read_text(errors="replace").splitlines():
            if not ln.strip():
                continue
            try:
                record = json.loads(ln)
            except json.JSONDecodeError:
                broken += 1
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(ln)
        atomic_write_bytes(metrics, ("\n".join(kept) + "\n" if kept else "").encode())
        return broken

    # ------------------------------------------------------------------ the loop
    def batches(self) -> Iterator[dict[str, Any]]:
        """Endless training batches from the current position (epochs advance by themselves)."""
        while True:
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch * self.cfg.data.batch_size)
            for batch in self.loader:
                # Counted when handed out: a checkpoint taken after this step must resume
                # with the next batch, not repeat this one.
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One iteration on a loader batch: pipeline step, scaler, divergence check,
        schedulers, step counter. Returns the logged losses as floats."""
        batch = self._to_device(batch)
        self.ctx.step = self.step
        self.ctx.backward_losses = {}
        logs = self.pipeline.train_step(batch, self.ctx)
        self.scaler.update()
        checked = {**logs, **self.ctx.backward_losses}
        values = torch.stack([v.float() for v in checked.values()]).cpu().tolist()  # one host sync per step
        if not all(math.isfinite(v) for v in values):
            bad = [k for k, v in zip(checked, values) if not math.isfinite(v)]
            raise TrainingDiverged(
                f"loss {', '.join(bad)} became non-finite at step {self.step + 1}; training stopped. {self._kept()} "
                "Lower optim.lr_g/lr_d, set train.amp to 'none', or check the data for broken images; "
                "then continue with --resume auto"
            )
        with warnings.catch_warnings():
            # With optim.n_critic > 1 the generator's optimizer has not stepped yet in the first
            # iterations; its schedule still counts iterations, which is what we want.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for sched in self.schedulers.values():
                sched.step()
        self._update_ema()
        self.step += 1
        return dict(zip(logs, values))

    def ema_decay_at(self, step: int) -> float:
        """The EMA decay used after ``step`` updates: the average's half-life is 5 % of the
        steps so far (Karras et al.'s EMA ramp-up), capped by ``train.ema_decay``. Without the
        ramp a constant 0.999 would still be 74 % random initialisation after 300 steps."""
        return min(self.cfg.train.ema_decay, 0.5 ** (1.0 / max(self.EMA_RAMPUP * step, 1e-8)))

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.ema_decay_at(self.step)
        for name, ema in self.ema.items():
            net = self.pipeline.nets[name]
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p.detach(), 1.0 - d)
            for be, b in zip(ema.buffers(), net.buffers()):
                be.copy_(b)  # the logged losses come first in `checked`

    def fit(self) -> dict[str, Any]:
        """Train until the configured length; returns a summary (final losses, step, paths)."""
        cfg, t = self.cfg, self.cfg.train
        trackers: list[Tracker] = []
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.resume_path is None:  # a run killed before its first checkpoint starts over: so do its records
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
            atomic_write_bytes(self.run_dir / "config.yaml", dump_config(cfg).encode())
            trackers = start_trackers(cfg, self.run_dir)  # one that cannot start stops the run here
        for net in self.pipeline.nets.values():
            net.train()

        from .runlog import RunLog, format_duration

        log = RunLog(self.run_dir / "train.log", total=self.total_steps, initial=self.step, name=cfg.name, live=t.progress,
                     enabled=self.is_main)
        log.lines(self.banner())
        t_fit = time.perf_counter()
        start_step = self.step
        sums: dict[str, float] = {}
        count, t0 = 0, time.perf_counter()
        last_logs: dict[str, float] = {}
        batches = self.batches()
        previous = self._catch_stop_signals(log)
        stopped: int | None = None
        try:
            while self.step < self.total_steps:
                logs = self.train_step(next(batches))
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                log.advance()
                if self.step % t.log_every == 0 or self.step == self.total_steps:
                    dt = time.perf_counter() - t0
                    last_logs = {k: v / count for k, v in sums.items()}
                    record = {
                        "step": self.step,
                        "epoch": self.epoch,
                        **last_logs,
                        "it_per_s": count / dt if dt > 0 else 0.0,
                        **{f"lr_{n}": s.get_last_lr()[0] for n, s in self.schedulers.items()},
                    }
                    self.history.append(record)
                    if self.is_main:
                        self._write_record(record, trackers)
                    log.record(record)
                    sums, count, t0 = {}, 0, time.perf_counter()
                t_aside = time.perf_counter()  # samples, validation and saves do not count against it/s
                if self.is_main and (self.step % t.sample_every == 0 or self.step == self.total_steps):
                    self.write_samples(trackers)
                if self.val_metric is not None and (self.step % t.val_every == 0 or self.step == self.total_steps):
                    values = self.validate()
                    if values is not None:
                        record = {"step": self.step, "epoch": self.epoch, **{f"val_{k}": v for k, v in values.items()}}
                        self.val_history.append(record)
                        self._write_record(record, trackers)
                        log.lines([self.validation_line(values)])
                if self.step % t.checkpoint_every == 0 or self.step == self.total_steps:
                    self.save()
                t0 += time.perf_counter() - t_aside
                # A stop signal (SIGTERM from a scheduler, Ctrl-C, SIGUSR1 before preemption) ends the
                # run here, after a whole step: saved, so --resume auto continues exactly.
                # (Not after the last step: the run ends anyway, and the save's barrier stays the last collective.)
                if self.step < self.total_steps and dist.any_rank(self.stop_signal is not None, self.device):
                    stopped = self.stop_signal or signal.SIGTERM
                    if self.saved_step != self.step:
                        self.save()
                    break
        except BaseException:
            log.close(f"stopped at step {self.step}/{self.total_steps} after {format_duration(time.perf_counter() - t_fit)}; "
                      f"the last checkpoint is {self.ckpt_dir / 'last.pt'}" + (f" (step {self.saved_step})" if self.saved_step else ""))
            for tracker in trackers:
                tracker.finish({})
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if stopped is not None:
            name = signal.Signals(stopped).name
            log.close(f"stopped by {name} at step {self.step}/{self.total_steps}: saved {self.ckpt_dir / 'last.pt'}; "
                      "continue with --resume auto")
            for tracker in trackers:
                tracker.finish({})
            return {"step": self.step, "losses": last_logs, "checkpoint": str(self.ckpt_dir / "last.pt"), "run_dir": str(self.run_dir),
                    "rank": self.rank, "stopped": int(stopped), "stopped_by": name}
        final = {f"final/{k}": v for k, v in last_logs.items()}
        if self.best["value"] is not None:
            final[f"best/{self.best['metric']}"] = self.best["value"]
        for tracker in trackers:
            tracker.finish(final)
        losses = ", ".join(f"{k} {v:.4g}" for k, v in last_logs.items())
        best = ""
        if self.best["value"] is not None:
            best = f"; best {self.best['metric']} {self.best['value']:.4g} at step {self.best['step']} in {self.ckpt_dir / 'best.pt'}"
        log.close(f"done: step {self.step}/{self.total_steps} ({self.step - start_step} steps in "
                  f"{format_duration(time.perf_counter() - t_fit)}); {losses}; checkpoint {self.ckpt_dir / 'last.pt'}{best}")
        summary = {"step": self.step, "losses": last_logs, "checkpoint": str(self.ckpt_dir / "last.pt"), "run_dir": str(self.run_dir),
                   "rank": self.rank}
        if self.val_metric is not None:
            summary["validation"] = {**self.best, "last": self.val_history[-1] if self.val_history else None,
                                     "checkpoint": str(self.ckpt_dir / "best.pt")}
        return summary

    STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGUSR1")

    def _catch_stop_signals(self, log: Any) -> dict[int, Any]:
        """Make SIGINT / SIGTERM / SIGUSR1 finish the step in flight, save and stop (see
        :meth:`fit`); a second signal aborts at once (KeyboardInterrupt). Only in the main
        thread (Python delivers signals there). Returns the handlers to restore."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum: int, frame: Any) -> None:
            del frame
            if self.stop_signal is not None:
                raise KeyboardInterrupt  # a second signal: stop now, without saving
            self.stop_signal = signum
            log.lines([f"{signal.Signals(signum).name} received: finishing the step in flight, saving, then stopping "
                       "(send it again to abort at once)"])

        previous = {}
        for name in self.STOP_SIGNALS:
            if hasattr(signal, name):
                signum = getattr(signal, name)
                previous[signum] = signal.signal(signum, on_signal)
        return previous

    def _write_record(self, record: dict[str, Any], trackers: list[Tracker]) -> None:
        """Append a record to ``metrics.jsonl`` and send it to the trackers (rank 0)."""
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for tracker in trackers:
            tracker.log_scalars(group_scalars(record), record["step"])

    def validation_line(self, values: dict[str, float]) -> str:
        """``validation at step 200: PSNR 26.1 L1 0.0412 SSIM 0.812 | best PSNR 26.1 (step 200)``."""
        shown = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        b = self.best
        if b["step"] == self.step:
            tail = " (new best: checkpoints/best.pt)"
        else:
            tail = f" | best {b['metric']} {b['value']:.4g} (step {b['step']})"
        return f"validation at step {self.step}: {shown}{tail}"

    def banner(self) -> list[str]:
        """The start-up lines: what runs where, on what data, with which nets, from where."""
        from .. import __version__
        from ..nets.blocks import count_parameters

        cfg, t = self.cfg, self.cfg.train
        threads = f" ({torch.get_num_threads()} threads)" if self.device.type == "cpu" else ""
        nets = ", ".join(f"{n} {count_parameters(m):,} ({type(m).__name__})" for n, m in self.pipeline.nets.items())
        length = f"{t.epochs} epochs = {self.total_steps} steps" if t.epochs is not None else f"{self.total_steps} steps"
        preview = cfg.data.val_root or cfg.data.root
        lines = [
            f"i2i {__version__}: {cfg.pipeline} run '{cfg.name}' in {self.run_dir}",
            f"device {self.device}{threads}, precision {t.amp if t.amp != 'none' else 'fp32'}, world size {self.world}, "
            f"compile {'on' if t.compile else 'off'}, channels_last {'on' if t.channels_last else 'off'}",
            f"data: {len(self.dataset)} training items in {cfg.data.root}; preview from {preview}; batch {cfg.data.batch_size} "
            f"x {self.world} process(es), {self.steps_per_epoch} steps/epoch; {length}",
            f"nets: {nets}",
        ]
        extras = []
        if self.ema:
            extras.append(f"EMA of {', '.join(self.ema)} (decay up to {t.ema_decay}, ramped)")
        if t.bn_recalibration_batches > 0:
            extras.append(f"batch-norm statistics re-estimated over {t.bn_recalibration_batches} batches at each save")
        if extras:
            lines.append("; ".join(extras))
        if self.validator is not None:
            better = "higher" if self.val_better == "max" else "lower"
            lines.append(f"validation every {t.val_every} steps: {self.validator.describe()}; best.pt by {self.val_metric} "
                         f"({better} is better)")
        lines.append(f"resumed from {self.resume_path} at step {self.step} (epoch {self.epoch})" if self.resume_path is not None
                     else "fresh start")
        if self.lr_changes:
            lines.append(f"learning rates from the config, not the checkpoint: {', '.join(self.lr_changes)}")
        return lines

    def write_samples(self, trackers: list[Tracker] = ()) -> Path:
        """Sample grid of the fixed preview batch at the current step (``RUN/samples/``), also
        sent to ``trackers``."""
        images = self.pipeline.sample(self._to_device(self.preview_batch))
        grid = report.grid_image(list(images.values()), titles=list(images))
        path = write_image(self.run_dir / "samples" / f"step_{self.step:08d}.png", grid)
        for tracker in trackers:
            tracker.log_image("samples", grid, self.step)
        return path


def train(cfg: Config, *, resume: str | None = None) -> dict[str, Any]:
    """Train ``cfg`` (see :class:`Trainer`); returns the summary of :meth:`Trainer.fit`."""
    try:
        trainer = Trainer(cfg, resume=resume)
        return trainer.fit()
    finally:
        dist.cleanup()
