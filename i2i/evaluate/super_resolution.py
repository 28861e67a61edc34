"""Super-resolution evaluation: PSNR / SSIM of the model's 8-bit upscales against HR images,
beside MATLAB-style bicubic, in both conventions papers use (BT.601 Y and RGB, ``scale``
border pixels removed); and its validator for training.

The metrics are :data:`SUPER_RESOLUTION.metrics <SUPER_RESOLUTION>`: functions of
``(pred, hr, scale)`` returning one value per image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .. import metrics
from ..config import Config
from ..data.base import DataError
from ..data.resize import imresize
from ..data.sr import SRDataset
from ..translator import Translator
from .base import (
    Evaluation,
    Metric,
    ValidationError,
    Validator,
    format_values,
    inference_copy,
    limited,
    mean_scores,
    quantize,
    validation_lpips,
)
from .lpips import LPIPS, lpips_for


def sr_scores(pred: torch.Tensor, hr: torch.Tensor, scale: int, lpips: LPIPS | None = None) -> dict[str, float]:
    """Every super-resolution metric of one ``(1, C, sH, sW)`` 8-bit upscale against its HR image
    (LPIPS with an ``lpips`` network), by metric name."""
    return {m.name: v for m, v in _scores(pred, hr, scale, lpips).items()}


def _scores(pred: torch.Tensor, hr: torch.Tensor, scale: int, lpips: LPIPS | None) -> dict[Metric, float]:
    return {m: float(m.fn(pred, hr, scale, *([lpips] if m.needs else []))[0]) for m in SUPER_RESOLUTION.metrics
            if lpips is not None or not m.needs}


def _upscales(tr: Translator, item: dict[str, Any], scale: int) -> dict[str, torch.Tensor]:
    lr = item["input"][None]
    return {"model": quantize(tr.translate_tensor(lr).cpu()), "bicubic": quantize(imresize(lr, float(scale)))}


def evaluate_sr(
    checkpoint: str | Path,
    hr_root: str | Path,
    out_dir: str | Path | None = None,
    *,
    device: str = "auto",
    tile: int | None = None,
    limit: int | None = None,
    lpips: str | None = "auto",
    runtime: str = "torch",
) -> dict[str, Any]:
    """Super-resolution evaluation against the bicubic baseline, in both conventions (and LPIPS
    on RGB with ``lpips``: ``alex``, ``vgg``, ``auto`` = alex when its weights are local, ``none``), the
    model run by ``runtime`` (:mod:`i2i.runtimes`).

    For every HR image (cropped to a multiple of the scale): LR = MATLAB-style bicubic
    downscale rounded to 8 bits; the model's and bicubic's upscales are rounded to 8 bits; each
    metric (PSNR and SSIM on BT.601 Y and on RGB, ``scale`` border pixels removed) per image,
    then averaged. Result keys are ``<metric key>_<model|bicubic>`` (e.g. ``psnr_y_model``).
    With ``out_dir``, writes ``metrics.json`` and ``results.md``.
    Returns ``{"scale", "per_image": [...], "mean": {...}, "markdown": str, ...}``.
    """
    perceptual, lpips_note = lpips_for(lpips)
    tr = Translator.from_file(checkpoint, device=device, tile=tile, runtime=runtime)
    s = tr.scale
    dataset = SRDataset(hr_root, scale=s, channels=tr.out_channels, train=False, full_images=True)
    n = limited(len(dataset), limit)
    measured = [m for m in SUPER_RESOLUTION.metrics if perceptual is not None or not m.needs]
    columns = {f"{m.result_key}_{who}": f"{m.heading} {who}" for m in measured for who in ("model", "bicubic")}
    per_image = []
    for i in range(n):
        item = dataset[i]
        hr = item["target"][None]
        rec: dict[str, Any] = {"name": item["name"], "size": f"{hr.shape[-1]}x{hr.shape[-2]}"}
        for who, pred in _upscales(tr, item, s).items():
            rec.update({f"{m.result_key}_{who}": v for m, v in _scores(pred, hr, s, perceptual).items()})
        per_image.append(rec)
    mean = {k: sum(r[k] for r in per_image) / n for k in columns}
    markdown = _markdown(checkpoint, hr_root, s, columns, per_image, mean, measured, lpips_note)
    result = {"checkpoint": str(checkpoint), "scale": s, "per_image": per_image, "mean": mean, "markdown": markdown,
              "weights": tr.weights, "lpips": lpips_note}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2))
        (out / "results.md").write_text(markdown)
    return result


def _markdown(checkpoint: str | Path, hr_root: str | Path, s: int, columns: dict[str, str],
              per_image: list[dict[str, Any]],
              mean: dict[str, float], measured: list[Metric], lpips_note: str) -> str:
    fmt = {f"{m.result_key}_{who}": m.fmt for m in measured for who in ("model", "bicubic")}

    def cells(r: dict[str, Any]) -> str:
        return " | ".join(format(r[k], fmt[k]) for k in columns)

    lines = [
        f"x{s} super-resolution of {len(per_image)} images in '{hr_root}' by '{checkpoint}'.",
        f"LR: MATLAB-style antialiased bicubic (a=-0.5), 8-bit. {'; '.join(m.explain() for m in measured)}; "
        f"{s}-pixel border removed, per image then averaged; bicubic = MATLAB-style bicubic upscale of the same LR "
        f"({lpips_note}).",
        "",
        "| image | size | " + " | ".join(columns.values()) + " |",
        "|" + "---|" * (2 + len(columns)),
        *[f"| {r['name']} | {r['size']} | {cells(r)} |" for r in per_image],
        f"| **mean** | | {cells(mean)} |",
    ]
    return "\n".join(lines) + "\n"


def _sr_report(r: dict[str, Any]) -> str:
    return r["markdown"] + f"(weights: {r['weights']})"


class SuperResolutionValidator(Validator):
    """The super-resolution metrics of the 8-bit upscales of ``val_root``'s whole HR images
    (bicubic LR, ``scale`` border removed, as ``i2i eval``); LPIPS with ``train.val_lpips``."""

    @classmethod
    def metrics(cls, cfg: Config) -> tuple[Metric, ...]:
        return tuple(m for m in cls.evaluation.metrics if cfg.train.val_lpips or not m.needs)

    def __init__(self, cfg: Config, root: str | Path, nets: dict[str | None, torch.nn.Module], *,
                 limit: int | None = None,
                 features: str = "") -> None:
        (self.direction, net), = nets.items()
        self.cfg, self.root, self.scale = cfg, Path(root), int(net.scale)
        try:
            ds = SRDataset(root, scale=self.scale, channels=net.out_channels, train=False, full_images=True)
        except DataError as e:
            raise ValidationError(f"data.val_root: {e}") from None
        self.items = [ds[i] for i in range(limited(len(ds), limit))]
        self.lpips = validation_lpips(cfg)
        self.bicubic = mean_scores([sr_scores(quantize(imresize(it["input"][None], float(self.scale))),
                                              it["target"][None], self.scale,
                                              self.lpips) for it in self.items])

    def describe(self) -> str:
        return f"{len(self.items)} HR images in {self.root} at x{self.scale}; bicubic {format_values(self.bicubic)}"

    def baseline(self) -> tuple[str, dict[str, float]] | None:
        return "bicubic", self.bicubic

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        tr = inference_copy(nets[self.direction], self.cfg, self.direction)
        return mean_scores([sr_scores(quantize(tr.translate_tensor(it["input"][None]).cpu()), it["target"][None],
                                      self.scale,
                                      self.lpips) for it in self.items])


def _psnr(y: bool) -> Any:
    return lambda pred, hr, scale: metrics.psnr(pred, hr, y=y, border=scale)


def _ssim(y: bool) -> Any:
    return lambda pred, hr, scale: metrics.ssim(pred, hr, y=y, border=scale)


def _lpips(pred: torch.Tensor, hr: torch.Tensor, scale: int, lpips: LPIPS) -> torch.Tensor:
    b = scale
    return lpips(pred[..., b:-b, b:-b], hr[..., b:-b, b:-b]) if b else lpips(pred, hr)


SUPER_RESOLUTION = Evaluation(
    "super_resolution", "super-resolution (PSNR / SSIM against HR images, with bicubic)",
    evaluate_sr, _sr_report, SuperResolutionValidator,
    metrics=(
        Metric("PSNR_Y", _psnr(True), "max", ".2f", key="psnr_y", label="PSNR-Y", description="dB on BT.601 luma"),
        Metric("SSIM_Y", _ssim(True), "max", ".4f", key="ssim_y", label="SSIM-Y", description="SSIM on BT.601 luma"),
        Metric("PSNR", _psnr(False), "max", ".2f", key="psnr_rgb", label="PSNR-RGB", description="dB over RGB"),
        Metric("SSIM", _ssim(False), "max", ".4f", key="ssim_rgb", label="SSIM-RGB", description="SSIM over RGB"),
        Metric("LPIPS", _lpips, "min", ".4f", key="lpips", needs=("lpips",),
               description="learned perceptual distance over RGB (Zhang et al. 2018)"),
    ),
    default_metric="PSNR_Y",
)
