"""Training health: plain-word verdicts on what training already logs.

:class:`Health` reads each log record (the losses between two log points) and each validation
record, and says each verdict once, with what to try: the trainer prints it as a line starting
with ``health:`` (terminal and ``train.log``), writes a ``{"step", "health", "message"}`` record
to ``metrics.jsonl`` and the results pages list them. Verdicts:

- ``d_won``: the discriminator's losses near zero (it tells real from fake with certainty) for
  ``patience`` consecutive logs: the generator gets almost no gradient from it;
- ``diverging``: a loss grew by more than ``growth`` times its smallest logged magnitude
  (non-finite values already stop training, naming the step);
- ``copies_input``: paired validation no better than the identity (the input as the answer)
  at ``patience_val`` consecutive validations; or, for unpaired training (logged ``change_*``:
  a generator's mean absolute change of its input on [0, 1]), every generator changing its
  input by less than ``min_change`` for ``patience`` consecutive logs;
- ``collapse``: generated samples nearly identical (validation ``diversity`` under
  ``min_diversity`` of the data's), or, for translation, outputs nearly the same whatever the
  input (their ``diversity`` across validation inputs under ``min_diversity`` of the targets'
  at ``patience_val`` consecutive validations: an untrained net's outputs vary little too);
- ``memorisation``: generated samples nearer to training images than held-out real images are
  (validation ``memorisation`` under ``max_memorisation``) while they still vary;
- ``stalled``: the validation metric not improved for ``patience_val`` validations in a row
  while the generator's training losses kept falling (overfitting the training set).

Nothing here reads the device: records are host values already.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

#: A discriminator "has won" when each of its logged losses is under this (per gan_mode).
D_WON_BELOW = {"vanilla": 0.05, "lsgan": 0.01, "hinge": 0.05}
_D_KEY = re.compile(r"^D(_real|_fake|_[a-z])?$")
_NOT_LOSSES = ("step", "epoch", "it_per_s", "aug_p")
_NOT_LOSS_PREFIXES = ("lr_", "change_")


@dataclass
class Verdict:
    """One health finding: ``key`` (``d_won``, ...), the ``step`` it was seen at, and the
    ``message``: what happened, in plain words, and what to try."""

    key: str
    step: int
    message: str

    def record(self) -> dict[str, Any]:
        return {"step": self.step, "health": self.key, "message": self.message}


class Health:
    """The verdicts of one run. ``gan_mode``: the adversarial loss (``None``: no
    discriminator); ``metric`` / ``better``: the validation metric and its direction;
    ``identity``: the validation scores of the input as the answer (paired data, else None)."""

    def __init__(self, gan_mode: str | None, *, metric: str | None = None, better: str = "max",
                 identity: dict[str, float] | None = None, patience: int = 3, patience_val: int = 3,
                 growth: float = 100.0, min_diversity: float = 0.1, min_change: float = 0.01,
                 max_memorisation: float = 0.5) -> None:
        self.gan_mode, self.metric, self.better, self.identity = gan_mode, metric, better, identity
        self.patience, self.patience_val, self.growth, self.min_diversity = (
            patience,
            patience_val,
            growth,
            min_diversity,
        )
        self.min_change, self.max_memorisation = min_change, max_memorisation
        self.unchanged_logs = 0
        self.alike_vals = 0
        self.said: set[str] = set()
        self.d_won_since: int | None = None
        self.d_won_logs = 0
        self.smallest: dict[str, float] = {}
        self.losses: list[tuple[int, float]] = []  # (step, generator loss sum) per log
        self.validations: list[tuple[int, float]] = []  # (step, metric)
        self.no_better_than_identity = 0

    # --- what the trainer calls ---
    def on_log(self, record: dict[str, Any]) -> list[Verdict]:
        """The verdicts a training log record newly shows."""
        step = int(record["step"])
        out = []
        losses = {k: float(v) for k, v in record.items()
                  if k not in _NOT_LOSSES and not k.startswith(_NOT_LOSS_PREFIXES) and isinstance(v, (int, float))}
        out += self._unchanged(step, {k: float(v) for k, v in record.items() if k.startswith("change_")})
        g = [v for k, v in losses.items() if not (k == "D" or k.startswith("D_"))]  # the generator side's terms
        if g:
            self.losses.append((step, sum(g)))
        limit = D_WON_BELOW.get(self.gan_mode or "")
        d = {k: v for k, v in losses.items() if _D_KEY.match(k)}
        if limit is not None and d and all(v < limit for v in d.values()):
            self.d_won_logs += 1
            self.d_won_since = self.d_won_since if self.d_won_since is not None else step
            if self.d_won_logs >= self.patience:
                shown = ", ".join(f"{k} {v:.3g}" for k, v in d.items())
                out += self._say("d_won", step,
                                 f"the discriminator has won since step {self.d_won_since} ({shown}, under "
                                 f"{limit} for {self.d_won_logs} logs in a row): it tells real from generated with "
                                 "certainty, "
                                 "so the generator learns little from it. Try a lower optim.lr_d or a higher "
                                 "optim.lr_g, "
                                 "loss.augment_policy: color,translation,cutout (small datasets: loss.ada_target: "
                                 "0.6), "
                                 "loss.r1_weight, or a smaller discriminator")
        else:
            self.d_won_logs, self.d_won_since = 0, None
        for k, v in losses.items():
            if not math.isfinite(v):
                continue
            small = self.smallest.get(k)
            if small is not None and small > 0 and abs(v) > self.growth * small and abs(v) > 1.0:
                out += self._say("diverging", step,
                                 f"loss {k} grew from {small:.3g} to {v:.3g} (over {self.growth:g}x): "
                                 "training is diverging. Try lower learning rates (optim.lr_g, optim.lr_d), train.amp: "
                                 "none, "
                                 "loss.r1_weight, or continue from an earlier checkpoint (checkpoints/step_*.pt)")
            if abs(v) > 0:
                self.smallest[k] = min(abs(v), small) if small is not None else abs(v)
        return out

    def _unchanged(self, step: int, change: dict[str, float]) -> list[Verdict]:
        if not change or not all(v < self.min_change for v in change.values()):
            self.unchanged_logs = 0
            return []
        self.unchanged_logs += 1
        if self.unchanged_logs < self.patience:
            return []
        shown = ", ".join(f"{k[len('change_'):]} {v:.2%}" for k, v in change.items())
        return self._say("copies_input", step,
                         f"the generators return their inputs almost unchanged (mean change {shown} of "
                         f"the range, under {self.min_change:.0%} for {self.unchanged_logs} logs in a row): the "
                         "cycle is "
                         "satisfied by doing nothing. Try a lower loss.identity_weight or loss.cycle_weight, a "
                         "stronger "
                         "discriminator, or check that the two domains really differ")

    def on_validation(self, step: int, values: dict[str, float]) -> list[Verdict]:
        """The verdicts a validation (its metrics, without the ``val_`` prefix) newly shows."""
        out = []
        low = "diversity" in values and values["diversity"] < self.min_diversity
        self.alike_vals = self.alike_vals + 1 if low else 0
        if low and self.identity is None:  # generation: samples against real images
            out += self._say("collapse", step,
                             f"the samples are nearly identical (diversity {values['diversity']:.3g} of the "
                             f"real images', under {self.min_diversity}): mode collapse. Try loss.augment_policy, "
                             "model.discriminator.minibatch_std: 4, loss.r1_weight, or a lower optim.lr_g")
        elif low and self.alike_vals >= self.patience_val:  # translation (an untrained net's outputs vary little too)
            out += self._say("collapse", step,
                             f"the generator gives nearly the same output whatever its input (the outputs "
                             f"vary {values['diversity']:.3g} times as much as the targets do across validation "
                             "images, under "
                             f"{self.min_diversity}, at {self.alike_vals} validations in a row): mode collapse. Check "
                             "that the "
                             "inputs differ image by image, try a lower optim.lr_g, loss.r1_weight, or (paired) a "
                             "higher "
                             "loss.l1_weight")
        if values.get("memorisation", 1.0) < self.max_memorisation and values.get("diversity",
                                                                                  1.0) >= self.min_diversity:
            out += self._say("memorisation", step, f"the samples lie nearer to training images than new real images do "
                             f"({values['memorisation']:.2f} times their distance, under {self.max_memorisation}): the "
                             "generator is copying its training set. Use an earlier checkpoint (checkpoints/best.pt), "
                             "more training images (data.max_items unset), loss.augment_policy with "
                             "loss.ada_target: 0.6, "
                             "or a smaller generator")
        if self.identity and "PSNR" in self.identity and "PSNR" in values:
            worse = values["PSNR"] <= self.identity["PSNR"] + 0.05  # within 0.05 dB: no better
            self.no_better_than_identity = self.no_better_than_identity + 1 if worse else 0
            if self.no_better_than_identity >= self.patience_val:
                out += self._say("copies_input", step, f"the generator is no better than returning its input (PSNR "
                                 f"{values['PSNR']:.2f} dB against the input's {self.identity['PSNR']:.2f} dB at "
                                 f"{self.no_better_than_identity} validations in a row). Train longer, raise "
                                 "loss.l1_weight, "
                                 "check that data.direction points from the input to the target, or use "
                                 "model.generator.predict: residual")
        if self.metric is not None and self.metric in values:
            self.validations.append((step, values[self.metric]))
            out += self._stalled(step)
        return out

    def _stalled(self, step: int) -> list[Verdict]:
        vals = self.validations
        if len(vals) <= self.patience_val:
            return []
        pick = max if self.better == "max" else min
        best_step, best = pick(vals, key=lambda sv: sv[1])
        since = [s for s, _ in vals if s > best_step]
        if len(since) < self.patience_val:
            return []
        g_then = [v for s, v in self.losses if s <= best_step]
        g_now = [v for s, v in self.losses if s > best_step]
        if not g_then or not g_now or not g_now[-1] < g_then[-1]:
            return []
        return self._say("stalled", step,
                         f"validation {self.metric} has not improved for {len(since)} validations (best "
                         f"{best:.4g} at step {best_step}) while the generator's training losses kept falling "
                         f"({g_then[-1]:.3g} -> {g_now[-1]:.3g}): it is fitting the training set, not the task. Use "
                         "checkpoints/best.pt (the best so far), stop here, or add data or augmentation "
                         "(loss.augment_policy, data.max_items unset)")

    def _say(self, key: str, step: int, message: str) -> list[Verdict]:
        if key in self.said:
            return []
        self.said.add(key)
        return [Verdict(key, step, message)]

    @classmethod
    def of_run(cls, cfg: Any, pipeline: Any, validation: Any) -> Health:
        """The health watch of a trainer's run: ``cfg.loss.gan_mode`` when ``pipeline`` trains a
        discriminator, the validation metric, and the identity's scores of a paired validator
        (the mean over directions)."""
        adversarial = any(n not in pipeline.generator_names() for n in pipeline.nets)
        baselines = getattr(validation.validator, "baselines", None) or {}
        psnr = [b["PSNR"] for b in baselines.values() if "PSNR" in b]
        return cls(cfg.loss.gan_mode if adversarial else None, metric=validation.metric,
                   better=getattr(validation, "better", "max"),
                   identity={"PSNR": sum(psnr) / len(psnr)} if psnr else None)

    def tell(self, verdicts: list[Verdict], lines: Any, records: Any | None) -> None:
        """Say ``verdicts``: ``lines(["health: ..."])`` (the run log) and, with ``records`` (rank
        0's ``metrics.jsonl``), one record each."""
        for v in verdicts:
            if records is not None:
                records.append(v.record())
            lines([f"health: {v.message}"])

    # --- resume ---
    def state_dict(self) -> dict[str, Any]:
        return {"said": sorted(self.said), "d_won_since": self.d_won_since, "d_won_logs": self.d_won_logs,
                "smallest": dict(self.smallest), "losses": [list(x) for x in self.losses],
                "validations": [list(x) for x in self.validations],
                "no_better_than_identity": self.no_better_than_identity,
                "unchanged_logs": self.unchanged_logs, "alike_vals": self.alike_vals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (an older checkpoint without one: start afresh)."""
        if not state:
            return
        self.said = set(state["said"])
        self.d_won_since, self.d_won_logs = state["d_won_since"], int(state["d_won_logs"])
        self.smallest = {k: float(v) for k, v in state["smallest"].items()}
        self.losses = [(int(s), float(v)) for s, v in state["losses"]]
        self.validations = [(int(s), float(v)) for s, v in state["validations"]]
        self.no_better_than_identity = int(state["no_better_than_identity"])
        self.unchanged_logs = int(state.get("unchanged_logs", 0))
        self.alike_vals = int(state.get("alike_vals", 0))
