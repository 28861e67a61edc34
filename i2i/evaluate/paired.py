"""Paired evaluation: a translator against targets, beside untrained, identity and mean-colour
baselines, as numbers and as an HTML results page; and its validator for training.

The metrics are :data:`PAIRED.metrics <PAIRED>`: functions of ``(pred, target)`` image batches
in [-1, 1] returning one value per image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .. import metrics, report
from ..config import Config
from ..data.base import DataError
from ..data.io import write_image
from ..data.paired import PairedDataConfig, PairedDataset
from ..recipes import pipeline_class
from ..translator import Translator
from .base import (
    Evaluation,
    Metric,
    ValidationError,
    Validator,
    format_table,
    format_values,
    inference_copy,
    limited,
    mean_scores,
    validation_lpips,
)
from .classical import METHODS, best_classical
from .lpips import LPIPS, lpips_for

BASELINES = ("untrained", "identity", "mean colour")


def image_scores(pred: torch.Tensor, target: torch.Tensor, *, lpips: LPIPS | None = None,
                 input: torch.Tensor | None = None) -> dict[str, float]:
    """Every paired metric of one ``(1, C, H, W)`` prediction in [-1, 1] against its target
    whose inputs are given: the LPIPS ones with an ``lpips`` network, LPIPS to the input with
    the ``input`` too (as many channels as ``pred``)."""
    have = {"lpips": lpips, "input": input}
    return {m.name: float(m.fn(pred, target, **{n: have[n] for n in m.needs})[0]) for m in PAIRED.metrics
            if all(have[n] is not None for n in m.needs)}


def paired_dataset(cfg: Config, root: str | Path, direction: str, in_channels: int, out_channels: int) -> PairedDataset:
    """The pairs under ``root`` (``testA/`` + ``testB/``, ``A/`` + ``B/`` or side-by-side AB),
    at their own size (no resize or crop: what ``convert`` gets) and oriented as the generator of
    ``direction`` translates: a one-way model trained on paired data follows
    ``data.direction``; a two-way model's ``b_to_a`` generator reads B and should produce A."""
    root = Path(root)
    data_direction = getattr(cfg.data, "direction", "a_to_b")
    pairs = PairedDataConfig(
        direction="b_to_a" if (direction == "b_to_a") != (data_direction == "b_to_a") else "a_to_b",
        # each image at its own size, as convert sees it; the translator pads and crops back
        preprocess="none",
    )
    return PairedDataset(root, pairs, in_channels=in_channels, out_channels=out_channels, train=False,
                         folders=("testA", "testB") if (root / "testA").is_dir() else ("A", "B"))


def as_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``(N, C, H, W)`` in [-1, 1] as ``channels`` channels: gray repeated, or BT.601 luma."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.repeat(1, channels, 1, 1)
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def evaluate_paired(
    checkpoint: str | Path,
    data_root: str | Path,
    out_dir: str | Path | None = None,
    *,
    mode: str | None = None,
    direction: str | None = None,
    device: str = "auto",
    limit: int | None = None,
    lpips: str | None = "auto",
    runtime: str = "torch",
    classical: str | None = None,
) -> dict[str, Any]:
    """The paired metrics (:data:`PAIRED`'s list: L1 on [0, 1], PSNR in dB on RGB, SSIM, and with
    ``lpips`` (``alex``, ``vgg``; ``auto``: alex when its weights are local; ``none``) LPIPS to
    the target and to the input) of the
    checkpoint's generator on the pairs in ``data_root`` (``A/`` + ``B/``, ``testA/`` +
    ``testB/`` or side-by-side AB; ``direction`` picks the generator of a two-way model and
    orients the pairs; ``runtime`` runs it, :mod:`i2i.runtimes`), beside three baselines: the same
    architecture untrained (the seed's initial weights), the identity (the input itself as the prediction) and the
    mean colour (the evaluated targets' mean colour everywhere: the best constant prediction);
    with ``classical`` (``nlm``; ``none``/None: off), a classical method too, at the strength with
    the best mean PSNR on these pairs (:mod:`.classical`), as the row named by its label.

    Images are evaluated at their own size, as ``i2i convert`` translates them (padded to
    the generator's multiple and cropped back; no training resize or crop), so the page's
    outputs are the files ``convert`` writes. With ``out_dir``, writes the images,
    ``index.html`` with the run's training curves, and ``metrics.json``.
    Returns ``{"models": [{"model", <metric>...}...], "per_image": [...], "page": path|None, "weights", "lpips"}``.
    """
    perceptual, lpips_note = lpips_for(lpips)
    trained = Translator.from_checkpoint(checkpoint, mode=mode, direction=direction, device=device, runtime=runtime)
    baseline = Translator.untrained(trained.cfg, direction=trained.direction, mode=trained.mode, device=device)
    dataset = paired_dataset(trained.cfg, data_root, trained.direction, trained.in_channels, trained.out_channels)
    # decoded once: the mean colour needs every target
    items = [dataset[i] for i in range(limited(len(dataset), limit))]
    mean_colour = torch.stack([item["target"].mean((1, 2)) for item in items]).mean(0)[None, :, None, None]
    others, note = _classical(classical, items)
    out = Path(out_dir) if out_dir else None
    per_image, rows = [], []
    for i, item in enumerate(items):
        x, y = item["input"][None], item["target"][None]
        preds = {"trained": trained.translate_tensor(x).cpu(), "untrained": baseline.translate_tensor(x).cpu(),
                 "identity": as_channels(x, y.shape[1]),  # "do nothing": the input itself
                 "mean colour": mean_colour.expand_as(y), **{who: o[i] for who, o in others.items()}}
        rec: dict[str, Any] = {"name": item["name"], "size": f"{y.shape[-1]}x{y.shape[-2]}"}
        for who, pred in preds.items():
            scores = image_scores(pred, y, lpips=perceptual, input=preds["identity"])
            rec.update({f"{k}_{who}": v for k, v in scores.items()})
        per_image.append(rec)
        if out is not None:
            rows.append(_page_row(out, item["name"], x, preds["trained"], y, rec))
    measured = [m for m in PAIRED.metrics if f"{m.name}_trained" in per_image[0]]
    models = [{"model": who,
               **{m.name: sum(r[f"{m.name}_{who}"] for r in per_image) / len(per_image) for m in measured}}
              for who in ("trained", *BASELINES, *others)]
    result = {"models": models, "per_image": per_image, "page": None, "weights": trained.weights, "lpips": lpips_note,
              "classical": note}
    if out is not None:
        result["page"] = str(_paired_page(out, trained, checkpoint, data_root, rows, models, measured, lpips_note,
                                          note["about"] if note else ""))
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def _classical(method: str | None, items: list[dict[str, Any]]
               ) -> tuple[dict[str, list[torch.Tensor]], dict[str, Any] | None]:
    """The outputs of the classical ``method`` on every item, under its row's name, and what the result records of
    it (``method``, ``strength``, ``row``, ``about``: a sentence saying what it is); nothing for None or ``none``."""
    if method in (None, "none"):
        return {}, None
    strength, outs = best_classical(method, [it["input"][None] for it in items], [it["target"][None] for it in items])
    m = METHODS[method]
    row = m.label % strength
    about = f"'{row}': " + m.description % ", ".join(f"{s:g}" for s in m.strengths)
    return {row: outs}, {"method": method, "strength": strength, "row": row, "about": about}


def _page_row(out: Path, name: str, x: torch.Tensor, pred: torch.Tensor, y: torch.Tensor,
              rec: dict[str, Any]) -> dict[str, Any]:
    """Write one pair's images (input, output, target, the error x4) and return its page row."""
    stem = Path(name).with_suffix("").as_posix().replace("/", "__")
    error = (pred - y).abs().mean(1, keepdim=True) * 4 - 1  # |output - target| on [0, 1], x4, as an image
    paths = []
    for col, t in {"input": x, "output": pred, "target": y, "error": error}.items():
        path = out / "images" / f"{stem}_{col}.png"
        write_image(path, report.to_rgb8(t[0]))
        paths.append(path)
    row_metrics = {m.name: rec[f"{m.name}_trained"] for m in PAIRED.metrics if f"{m.name}_trained" in rec}
    if "PSNR_identity" in rec:
        row_metrics.update({"PSNR identity": rec["PSNR_identity"],
                            "dB over identity": rec["PSNR_trained"] - rec["PSNR_identity"]})
    return {"name": name, "images": paths, "metrics": row_metrics}


def _paired_page(out: Path, trained: Translator, checkpoint: str | Path, data_root: str | Path,
                 rows: list[dict[str, Any]],
                 models: list[dict[str, Any]], measured: list[Metric], lpips_note: str, classical: str = "") -> Path:
    identity = ("the input itself" if trained.in_channels == trained.out_channels else
                "the gray input repeated to RGB" if trained.in_channels == 1 else "the input's BT.601 luma")
    return report.write_results_page(
        out,
        title=f"{trained.cfg.name}: {trained.cfg.pipeline} {trained.direction} on {Path(data_root).name} ({len(rows)} "
              "images)",
        columns=["input", "output", "target", "|output - target| x4"],
        rows=rows,
        summary=models,
        better=PAIRED.better(), formats={**PAIRED.formats(), "PSNR identity": ".2f"},
        records=report.read_metrics(Path(checkpoint).resolve().parent.parent / "metrics.jsonl"),
        notes=f"checkpoint {checkpoint} ({trained.weights} weights, test mode '{trained.mode}'); each image at its own "
              "size, "
        "as i2i convert translates it. " + "; ".join(m.explain() for m in measured) + f" ({lpips_note}). "
        "Baselines: 'untrained' is the same architecture with the run's initial weights; 'identity' predicts "
        f"{identity}; "
        "'mean colour' predicts the mean colour of these targets everywhere (the best constant)"
        + (f"; {classical}." if classical else "."),
    )


def _paired_report(r: dict[str, Any]) -> str:
    text = format_table(r["models"], PAIRED.metrics) + f"\n(weights: {r['weights']}; {r.get('lpips', '')})"
    if r.get("classical"):
        text += f"\n{r['classical']['about']}"
    return text + (f"\nresults page: {r['page']}" if r["page"] else "")


class PairedValidator(Validator):
    """The paired metrics against the targets of ``val_root``'s pairs, for every direction the
    pipeline translates (CycleGAN: both, named ``PSNR_a_to_b`` ..., with ``PSNR`` their mean),
    and ``diversity`` (two pairs or more): how much the outputs differ from one input to another
    over how much the targets do (:func:`output_diversity`; the lowest direction's), which training
    health reads to tell a generator that gives one answer to every input."""

    diagnostics = ("diversity",)

    @classmethod
    def metrics(cls, cfg: Config) -> tuple[Metric, ...]:
        """L1 / PSNR / SSIM, and LPIPS with ``train.val_lpips`` (LPIPS to the input is for ``i2i eval``)."""
        have = {"lpips"} if cfg.train.val_lpips else set()
        return tuple(m for m in cls.evaluation.metrics if set(m.needs) <= have)

    @classmethod
    def metric_names(cls, cfg: Config) -> dict[str, str]:
        names = super().metric_names(cfg)
        directions = list(pipeline_class(cfg.pipeline).directions)
        if len(directions) > 1:
            names.update({f"{m}_{d}": b for d in directions for m, b in list(names.items())})
        return names

    def __init__(self, cfg: Config, root: str | Path, nets: dict[str | None, torch.nn.Module], *,
                 limit: int | None = None,
                 features: str = "") -> None:
        self.cfg, self.root = cfg, Path(root)
        self.lpips = validation_lpips(cfg)
        self.items: dict[str, list[dict[str, Any]]] = {}
        for direction, net in nets.items():
            try:
                ds = paired_dataset(cfg, root, direction, net.in_channels, net.out_channels)
            except DataError as e:
                raise ValidationError(
                    f"data.val_root: {e}. Validation of {cfg.pipeline} compares translations with targets, so it needs "
                    "pairs "
                    "(A/ + B/ or testA/ + testB/ with matching names, or side-by-side AB images)") from None
            self.items[direction] = [ds[i] for i in range(limited(len(ds), limit))]
        self.baselines = {d: mean_scores([image_scores(as_channels(it["input"][None], it["target"].shape[0]),
                                                       it["target"][None])
                                          for it in items]) for d, items in self.items.items()}

    def describe(self) -> str:
        n = len(next(iter(self.items.values())))
        base = ("; ".join(f"{d}: {format_values(b)}" for d, b in self.baselines.items()) if len(self.items) > 1
                else format_values(next(iter(self.baselines.values()))))
        names = " / ".join(m.name for m in PAIRED.metrics)
        return f"{n} pairs in {self.root}, {names} against targets; identity (input as output) {base}"

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        per_direction, spread = {}, []
        for direction, items in self.items.items():
            tr = inference_copy(nets[direction], self.cfg, direction)
            preds = [tr.translate_tensor(it["input"][None]).cpu() for it in items]
            per_direction[direction] = mean_scores([image_scores(p, it["target"][None], lpips=self.lpips)
                                                    for p, it in zip(preds, items)])
            if len(items) > 1:
                spread.append(output_diversity(preds, [it["target"][None] for it in items]))
        out = dict(next(iter(per_direction.values())))
        if len(per_direction) > 1:
            names = list(out)
            out = {k: sum(s[k] for s in per_direction.values()) / len(per_direction) for k in names}
            out.update({f"{k}_{d}": s[k] for d, s in per_direction.items() for k in names})
        if spread:
            out["diversity"] = min(spread)
        return out


def output_diversity(preds: list[torch.Tensor], targets: list[torch.Tensor], side: int = 16) -> float:
    """How much translations vary from one input to the next, relative to their targets:
    :func:`i2i.metrics.diversity` of ``side`` x ``side`` thumbnails (area means) of ``preds``
    against those of ``targets`` (lists of ``(1, C, H, W)`` images in [-1, 1], any sizes). About 1
    when the outputs vary as the targets do; toward 0 when the generator returns one image
    whatever its input (a translation's mode collapse)."""
    def thumbs(xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([torch.nn.functional.adaptive_avg_pool2d(x.float(), side).flatten(1) for x in xs])

    return metrics.diversity(thumbs(preds), thumbs(targets))


PAIRED = Evaluation(
    "paired", "paired translation (L1 / PSNR against targets, with baselines)",
    evaluate_paired, _paired_report, PairedValidator,
    metrics=(
        Metric("L1", metrics.l1_error, "min", ".4f", description="mean absolute error on [0, 1]"),
        Metric("PSNR", metrics.psnr, "max", ".2f", label="PSNR(dB)", description="dB over RGB"),
        Metric("SSIM", metrics.ssim, "max", ".4f", description="structural similarity"),
        Metric("LPIPS", lambda pred, target, lpips: lpips(pred, target), "min", ".4f", needs=("lpips",),
               description="learned perceptual distance to the target (Zhang et al. 2018)"),
        Metric("LPIPS_input", lambda pred, target, lpips, input: lpips(pred, input), "min", ".4f", label="LPIPS in",
               needs=("lpips", "input"),
               description="LPIPS between output and input, how far the translation moved from "
               "its input (for unpaired translation: faithfulness to it; the identity scores 0)"),
    ),
    default_metric="PSNR",
)
