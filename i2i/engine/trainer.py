"""The one training loop, shared by every pipeline.

The trainer owns devices, data loading, optimizers, the learning-rate schedule
(:mod:`.schedule`), AMP, ``torch.compile``, DDP, the weight average (:mod:`.ema`), logging
(:mod:`.runlog`, :mod:`.trackers`), sample grids, validation and checkpoints; the pipeline owns
only what one iteration computes, through the :class:`~.context.TrainingContext`. Resume is
exact: the data order and augmentation are functions of ``(seed, epoch, index)``, and every
piece of state that influences the next step (nets, optimizers, scaler, RNGs (:mod:`.rng`),
pipeline state, position in the epoch) is saved.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import dist, report
from ..checkpoint import CheckpointError, load_checkpoint, load_state_strict, non_finite_keys, save_checkpoint, state_of
from ..config import Config, ConfigError, config_to_dict, dump_config
from ..data.base import DataError
from ..data.io import ImageReadError, write_image
from ..files import atomic_write_bytes
from ..loading import init_generator
from ..recipes import pipeline_class
from . import graphs, rng
from .context import TrainingContext
from .ema import ModelEMA
from .feed import TrainingFeed, data_errors_in_one_line
from .graphs import CapturedStep
from .health import Health
from .memory import check_fits
from .meter import LossMeter
from .optim import Optimizers
from .recalibration import Recalibration
from .run_folder import RunFolder
from .runlog import RunLog, format_duration, training_banner
from .schedule import lr_factor
from .signals import StopSignals
from .trackers import Tracker, group_scalars, start_trackers
from .validation import Validation, check_val_metric


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint was left as it was."""


class Trainer:
    """Trains ``cfg.pipeline`` on ``cfg.data``, writing to ``cfg.run_dir``.

    ``resume``: None (fresh; refuses to overwrite an existing run), ``"auto"`` (continue
    from ``run_dir/checkpoints/last.pt`` when present) or a checkpoint path.
    """

    def __init__(self, cfg: Config, *, resume: str | None = None) -> None:
        self.cfg = cfg
        pipe = pipeline_class(cfg.pipeline)
        check_val_metric(cfg, pipe)
        self._setup_process(resume)
        if cfg.train.cuda_graphs:
            problems = graphs.blockers(cfg, pipe, device=self.device, world=self.world)
            if problems:
                raise ConfigError("train.cuda_graphs cannot capture this run's step: " + "; ".join(problems))
        self.feed = TrainingFeed(cfg, pipe, rank=self.rank, world=self.world, device=self.device)
        self.total_steps = self.feed.total_steps
        check_fits(cfg, pipe, self.feed.dataset[0], self.device)  # before any net is allocated
        # Same seed on every rank for identical initial weights; per-rank seeds afterwards.
        torch.manual_seed(cfg.seed)
        self.pipeline = pipe(cfg)
        rng.seed_all(cfg.seed + self.rank)
        self._setup_optimization()
        if self.resume_path is None and cfg.model.generator.init_from:
            name = type(self.pipeline).generator_name(cfg)
            init_generator(self.pipeline.nets[name], cfg.model.generator.init_from, name=name,
                           kind=type(self.pipeline).kind)
        # The generator's weight average: never trained; inference and sampling prefer it.
        name = type(self.pipeline).generator_name(cfg)
        self.ema = ModelEMA({name: self.pipeline.nets[name]}, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
        self.recalibration = Recalibration(self.pipeline, self.feed.dataset, cfg, self._to_device)
        self.validation = Validation(cfg, type(self.pipeline), self.inference_nets(), build=self.is_main)
        self.health = Health.of_run(cfg, self.pipeline, self.validation)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.val_history: list[dict[str, Any]] = []
        self.saved_step: int | None = None  # the step of the checkpoint on disk (None: none written yet)
        self.lr_changes: list[str] = []
        self.meter = LossMeter()  # the losses since the last log point, on the device
        self.totals: set[str] = set()  # names of the optimised totals: checked, not logged
        if self.resume_path is not None:
            self._load(self.resume_path)
            self.saved_step = self.step
        self.optim.set_lr(self.step)

    # ------------------------------------------------------------------ setup
    def _setup_process(self, resume: str | None) -> None:
        """Rank, device, run folder, the checkpoint to resume from, determinism."""
        t = self.cfg.train
        self.rank, local_rank, self.world = dist.init_from_env(
            "cuda" if torch.cuda.is_available() and t.device != "cpu" else "cpu"
        )
        try:
            self.device = dist.resolve_device(t.device, local_rank)
        except ValueError as e:
            raise ConfigError(f"train.device: {e}") from None
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = not t.deterministic
            torch.backends.cudnn.allow_tf32 = t.tf32
            torch.backends.cuda.matmul.allow_tf32 = t.tf32
        self.is_main = self.rank == 0
        self.folder = RunFolder(self.cfg.run_dir)
        self.resume_path = self.folder.resume_path(resume)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

    def _setup_optimization(self) -> None:
        """Precision, placement, optimizers with their rates and update intervals, wrapped modules."""
        t = self.cfg.train
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[t.amp]
        if t.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.amp='fp16' needs a CUDA device; use 'bf16' or 'none' on CPU")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=t.amp == "fp16")
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        for net in self.pipeline.nets.values():
            net.to(self.device, memory_format=self.memory_format)
        for module in self.pipeline.loss_modules.values():
            module.to(self.device)
        lr = lr_factor(self.cfg, self.feed.steps_per_epoch, self.total_steps)
        self.optim = Optimizers(self.pipeline.param_groups(), self.cfg.optim, lr,
                                capturable=t.cuda_graphs)
        self.optimizers = self.optim.by_name
        self.train_modules: dict[str, nn.Module] = {}
        self.frozen_modules: dict[str, nn.Module] = {}
        for name, net in self.pipeline.nets.items():
            wrapped = net
            if self.world > 1 and any(p.requires_grad for p in net.parameters()):
                wrapped = nn.parallel.DistributedDataParallel(
                    net, device_ids=[self.device.index] if self.device.type == "cuda" else None
                )
            self.train_modules[name] = torch.compile(wrapped) if t.compile else wrapped
            self.frozen_modules[name] = torch.compile(net) if t.compile else net
        self.ctx = TrainingContext(nets=self.pipeline.nets, train_modules=self.train_modules,
                                   frozen_modules=self.frozen_modules,
                                   optimizers=self.optimizers, intervals=self.optim.intervals,
                                   scaler=self.scaler, device_type=self.device.type, amp_dtype=self.amp_dtype)
        self.total_names = {f"{n}_total" for n in self.optimizers}  # what backward_step records beside the logs
        self.graph = CapturedStep(self._step, self.device) if t.cuda_graphs else None

    @property
    def best(self) -> dict[str, Any]:
        """The best validation so far: ``{"metric", "value", "step"}`` (all None without validation)."""
        return self.validation.best

    def inference_nets(self) -> dict[str | None, nn.Module]:
        """Direction (None for generation) -> the generator inference would run: the EMA copy
        when kept, else the trained net (the modules themselves, not copies)."""
        pipe = type(self.pipeline)
        names = dict(pipe.directions) if pipe.kind == "translation" else {None: pipe.generator_name(self.cfg)}
        averaged = self.ema.copies if self.ema is not None else {}
        return {d: averaged.get(n, self.pipeline.nets[n]) for d, n in names.items()}

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                if self.device.type == "cuda" and v.device.type == "cpu" and not v.is_pinned():
                    v = v.pin_memory()  # a copy from pageable memory would wait for the device
                v = v.to(self.device, non_blocking=True)
                if v.dim() == 4:
                    v = v.contiguous(memory_format=self.memory_format)
            out[k] = v
        return out

    # ------------------------------------------------------------------ one step
    def batches(self) -> Iterator[dict[str, Any]]:
        """Endless training batches from the current position (epochs advance by themselves)."""
        while True:
            self.feed.sampler.set_epoch(self.epoch, self.batch_in_epoch * self.cfg.data.batch_size)
            for batch in data_errors_in_one_line(self.feed.loader):
                # Counted when handed out: a checkpoint taken after this step must resume
                # with the next batch, not repeat this one.
                self.batch_in_epoch += 1
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One iteration on a loader batch: pipeline step, scaler, weight average, step counter
        and the next step's learning rate. Nothing is read back to the host: the losses (and the
        totals each optimizer stepped on) go to :attr:`meter`, which is read and checked for
        non-finite values at log points and before anything is written (:meth:`check_losses`).
        Returns the logged losses as detached 0-dim tensors on the training device."""
        batch = self._to_device({**batch, **self.pipeline.host_draws(batch)})
        self.ctx.begin(self.step)
        out = self.graph(batch) if self.graph is not None else self._step(batch)
        self.scaler.update()
        self.totals.update(k for k in out if k in self.total_names)
        self.meter.add(out, self.step + 1)
        if self.ema is not None:
            self.ema.update(self.pipeline.nets, self.step)
        self.step += 1
        self.optim.set_lr(self.step)
        return {k: v for k, v in out.items() if k not in self.total_names}

    def _step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The pipeline's step on a device batch: its detached losses and the totals each
        optimizer stepped on (``<optimizer>_total``). What ``train.cuda_graphs`` captures."""
        logs = {**self.pipeline.train_step(batch, self.ctx), **self.pipeline.step_logs()}
        return {**{k: v.detach() for k, v in logs.items()}, **self.ctx.backward_losses}

    def check_losses(self, *, reset: bool = False) -> dict[str, float]:
        """Read the loss meter (one device-to-host copy) and stop with :class:`TrainingDiverged`
        naming the first step a loss went non-finite; returns the logged losses' means since
        the last reset (``reset``: start a new log interval)."""
        reading = self.meter.read(reset=reset)
        if reading.non_finite:
            first = min(reading.non_finite.values())
            bad = [k for k, s in reading.non_finite.items() if s == first]
            raise TrainingDiverged(
                f"loss {', '.join(bad)} became non-finite at step {first}; training stopped at step {self.step}. "
                f"{self._kept()} "
                "Lower optim.lr_g/lr_d, set train.amp to 'none', or check the data for broken images; "
                "then continue with --resume auto")
        return {k: v for k, v in reading.means.items() if k not in self.totals}

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, Any]:
        """Train until the configured length; returns a summary (final losses, step, paths).
        Rank 0 holds the run folder's lock meanwhile: nothing is written before it is held."""
        if self.is_main:
            self.folder.lock()
        try:
            return self._fit()
        finally:
            self.folder.unlock()
            self.feed.close()

    def _fit(self) -> dict[str, Any]:
        cfg, t = self.cfg, self.cfg.train
        trackers: list[Tracker] = []
        if self.is_main:
            self.folder.remove_stale_temp_files()
            if self.resume_path is None:
                self.folder.metrics.reset()
            else:
                self.folder.metrics.trim(self.step)
            atomic_write_bytes(self.folder.config, dump_config(cfg).encode())
            trackers = start_trackers(cfg, self.folder.root)  # one that cannot start stops the run here
        for net in self.pipeline.nets.values():
            net.train()
        log = RunLog(self.folder.log, total=self.total_steps, initial=self.step, name=cfg.name, live=t.progress,
                     enabled=self.is_main)
        log.lines(self.banner())
        t_fit, start_step = time.perf_counter(), self.step
        self.signals = StopSignals(lambda name: log.lines([f"{name} received: finishing the step in flight, saving, "
                                                           "then stopping "
                                                           "(send it again to abort at once)"]))
        try:
            with self.signals:
                last_logs, stopped = self._loop(log, trackers)
        except BaseException:
            log.close(f"stopped at step {self.step}/{self.total_steps} after "
                      f"{format_duration(time.perf_counter() - t_fit)}; "
                      "the last checkpoint is "
                      f"{self.folder.last}" + (f" (step {self.saved_step})" if self.saved_step else ""))
            for tracker in trackers:
                tracker.finish({})
            raise
        summary = {"step": self.step, "losses": last_logs, "checkpoint": str(self.folder.last),
                   "run_dir": str(self.folder.root),
                   "rank": self.rank}
        if stopped is not None:
            name = signal.Signals(stopped).name
            log.close(f"stopped by {name} at step {self.step}/{self.total_steps}: saved {self.folder.last}; "
                      "continue with --resume auto")
            for tracker in trackers:
                tracker.finish({})
            return {**summary, "stopped": int(stopped), "stopped_by": name}
        return self._finish(log, trackers, summary, time.perf_counter() - t_fit, self.step - start_step)

    def _loop(self, log: RunLog, trackers: list[Tracker]) -> tuple[dict[str, float], int | None]:
        """Steps until the end or a stop signal; returns the last logged losses and the signal."""
        t = self.cfg.train
        count, t0, last_logs = 0, time.perf_counter(), {}
        batches = self.batches()
        while self.step < self.total_steps:
            try:
                batch = next(batches)
            except (ImageReadError, DataError) as e:  # a bad file: keep the work done, say which file
                if self.saved_step != self.step:
                    self.save()
                raise type(e)(f"{e}; training stopped at step {self.step}, saved in {self.folder.last}: fix or remove "
                              "the file, "
                              "then continue with --resume auto") from None
            self.train_step(batch)
            count += 1
            log.advance()
            end = self.step == self.total_steps
            if self.step % t.log_every == 0 or end:
                last_logs = self.check_losses(reset=True)  # the one host synchronisation between log points
                dt = time.perf_counter() - t0
                record = {"step": self.step, "epoch": self.epoch, **last_logs,
                          "it_per_s": count / dt if dt > 0 else 0.0,
                          **{f"lr_{n}": lr for n, lr in self.optim.current_lrs().items()}}
                if self.is_main:
                    self._write_record(record, trackers)
                log.record(record)
                self.health.tell(self.health.on_log(record), log.lines, self.folder.metrics if self.is_main else None)
                count, t0 = 0, time.perf_counter()
            t_aside = time.perf_counter()  # samples, validation and saves do not count against it/s
            self._periodic(log, trackers, end)
            t0 += time.perf_counter() - t_aside
            # A stop signal (SIGTERM from a scheduler, Ctrl-C, SIGUSR1 before preemption) ends the
            # run here, after a whole step: saved, so --resume auto continues exactly. (Not after
            # the last step: the run ends anyway, and the save's barrier stays the last collective.)
            if not end and dist.any_rank(self.signals.received is not None, self.device):
                if self.saved_step != self.step:
                    self.save()
                return last_logs, self.signals.received or signal.SIGTERM
        return last_logs, None

    def _periodic(self, log: RunLog, trackers: list[Tracker], end: bool) -> None:
        """Samples, validation and the checkpoint, each at its interval and at the end."""
        t = self.cfg.train
        if self.is_main and (self.step % t.sample_every == 0 or end):
            self.write_samples(trackers)
        if self.validation.enabled and (self.step % t.val_every == 0 or end):
            values = self.validate()
            if values is not None:
                record = {"step": self.step, "epoch": self.epoch, **{f"val_{k}": v for k, v in values.items()}}
                self.val_history.append(record)
                self._write_record(record, trackers)
                log.lines([self.validation.line(values, self.step)])
                self.health.tell(self.health.on_validation(self.step, values), log.lines, self.folder.metrics)
        if self.step % t.checkpoint_every == 0 or end:
            self.save()

    def _finish(self, log: RunLog, trackers: list[Tracker], summary: dict[str, Any], seconds: float,
                steps: int) -> dict[str, Any]:
        last_logs, best = summary["losses"], self.validation.best
        final = {f"final/{k}": v for k, v in last_logs.items()}
        if best["value"] is not None:
            final[f"best/{best['metric']}"] = best["value"]
        for tracker in trackers:
            tracker.finish(final)
        losses = ", ".join(f"{k} {v:.4g}" for k, v in last_logs.items())
        tail = (f"; best {best['metric']} {best['value']:.4g}{self.validation.gain(best['value'])} at step "
                f"{best['step']} in {self.folder.best}" if best["value"] is not None else "")
        log.close(f"done: step {self.step}/{self.total_steps} ({steps} steps in {format_duration(seconds)}); {losses}; "
                  f"checkpoint {self.folder.last}{tail}")
        if self.validation.enabled:
            summary["validation"] = {**best, "last": self.val_history[-1] if self.val_history else None,
                                     "checkpoint": str(self.folder.best),
                                     "gain": self.validation.gain(best["value"]) if best["value"] is not None else ""}
        return summary

    def _write_record(self, record: dict[str, Any], trackers: list[Tracker]) -> None:
        """Append a record to ``metrics.jsonl`` and send it to the trackers (rank 0)."""
        self.folder.metrics.append(record)
        for tracker in trackers:
            tracker.log_scalars(group_scalars(record), record["step"])

    def banner(self) -> list[str]:
        """The start-up lines: what runs where, on what data, with which nets, from where."""
        return training_banner(self)

    def write_samples(self, trackers: list[Tracker] = ()) -> Path:
        """Sample grid of the fixed preview batch at the current step (``RUN/samples/``), also
        sent to ``trackers``."""
        images = self.pipeline.sample(self._to_device(self.feed.preview_batch))
        grid = report.grid_image(list(images.values()), titles=list(images))
        path = write_image(self.folder.samples / f"step_{self.step:08d}.png", grid)
        for tracker in trackers:
            tracker.log_image("samples", grid, self.step)
        return path

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """Everything needed to continue training exactly (plain data and tensors only)."""
        return {
            "kind": "training",
            "pipeline": self.cfg.pipeline,
            "config": config_to_dict(self.cfg),
            "nets": {n: state_of(net) for n, net in self.pipeline.nets.items()},
            "optimizers": self.optim.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pipeline_state": self.pipeline.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": rng.capture(),
            "best": dict(self.validation.best),
            "health": self.health.state_dict(),
        }

    def recalibrate_batch_norm(self) -> list[str]:
        """Re-estimate the inference generators' batch-norm statistics for the current weights
        (:class:`~.recalibration.Recalibration`); returns the names of the nets recalibrated."""
        return self.recalibration(self.step, self.ema.copies if self.ema is not None else {})

    def non_finite_state(self) -> list[str]:
        """Names of the weights and statistics (nets and EMA copies) that are NaN or infinite.
        Losses can stay finite while these are not (a huge learning rate overflows a running
        variance), so this is checked before anything is saved."""
        states = {n: net.state_dict() for n, net in self.pipeline.nets.items()}
        if self.ema is not None:
            states.update({f"EMA {n}": m.state_dict() for n, m in self.ema.copies.items()})
        return non_finite_keys(states)

    def _refuse_non_finite(self) -> None:
        bad = self.non_finite_state()
        if bad:
            raise TrainingDiverged(
                f"{len(bad)} weight/statistic tensors became non-finite by step {self.step} (first: "
                f"{', '.join(bad[:3])}), "
                f"although the losses were finite; nothing was saved at this step. {self._kept()} "
                "Lower optim.lr_g/lr_d or set train.amp to 'none'; then continue with --resume auto")

    def _kept(self) -> str:
        last = self.folder.last
        if self.saved_step is None or not last.exists():
            return "No checkpoint had been written yet."
        return f"The checkpoint '{last}' (step {self.saved_step}, all weights finite when written) was left intact."

    def save(self) -> Path | None:
        """Recalibrate the generators' batch norms, check every weight and statistic is finite,
        then write ``last.pt`` (and ``step_N.pt`` when keeping history) on rank 0 (every rank
        recalibrates, identically). Non-finite state is never written: :class:`TrainingDiverged`."""
        self.check_losses()
        self.recalibrate_batch_norm()
        self._refuse_non_finite()
        path = self.folder.save(self.state(), self.step, keep=self.cfg.train.keep_checkpoints) if self.is_main else None
        self.saved_step = self.step
        dist.barrier()
        return path

    def validate(self) -> dict[str, float] | None:
        """Recalibrate the batch norms (as a save would), then measure the validator's metrics
        for the inference generators; on rank 0, when ``train.val_metric`` improved, write
        ``checkpoints/best.pt`` (the full training state at this step). Returns the metrics
        (None on other ranks). Neither the nets nor the random generators change, so a run
        validates identically whether or not it was resumed."""
        self.check_losses()
        self.recalibrate_batch_norm()
        self._refuse_non_finite()
        values = None
        if self.is_main and self.validation.validator is not None:
            values, improved = self.validation.measure(self.inference_nets(), self.step)
            if improved:
                save_checkpoint(self.folder.best, self.state())
        dist.barrier()
        return values

    def _load(self, path: Path) -> None:
        """Continue from a training checkpoint (older files' ``schedulers`` entries are read and
        ignored: the rate is a function of the step). Learning rates come from the config: a
        rate changed on resume (``--set optim.lr_g=...``) applies from here on (:attr:`lr_changes`)."""
        data = load_checkpoint(path, map_location="cpu")
        if data.get("kind") != "training":
            raise CheckpointError(f"'{path}' is an exported generator, not a training checkpoint; it cannot resume "
                                  "training")
        if data.get("pipeline") != self.cfg.pipeline:
            raise CheckpointError(f"'{path}' was trained with pipeline {data.get('pipeline')!r}, not "
                                  f"{self.cfg.pipeline!r}")
        missing = [n for n in self.pipeline.nets if n not in data["nets"]]
        missing += [f"{n} optimizer" for n in self.optimizers if n not in data.get("optimizers", {})]
        if missing:
            raise CheckpointError(
                f"'{path}' holds no {', '.join(missing)}: it was trained with other settings (e.g. SRResNet before "
                "SRGAN), so this "
                "config cannot continue it; start a new run from its weights with --set "
                f"model.generator.init_from={path}")
        for name, net in self.pipeline.nets.items():
            load_state_strict(net, data["nets"][name], what=name, source=path)
        self.lr_changes = self.optim.load_state_dict(data["optimizers"], path)
        self.scaler.load_state_dict(data["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(data.get("ema", {}), self.pipeline.nets, path)
        self.pipeline.load_state_dict(data["pipeline_state"])
        self.step, self.epoch, self.batch_in_epoch = data["step"], data["epoch"], data["batch_in_epoch"]
        self.validation.restore(data.get("best"))
        self.health.load_state_dict(data.get("health", {}))
        if self.world == 1:  # other ranks' RNG streams are not saved; single process resumes bit-exactly
            rng.restore(data["rng"])


def train(cfg: Config, *, resume: str | None = None) -> dict[str, Any]:
    """Train ``cfg`` (see :class:`Trainer`); returns the summary of :meth:`Trainer.fit`."""
    try:
        trainer = Trainer(cfg, resume=resume)
        return trainer.fit()
    finally:
        dist.cleanup()
