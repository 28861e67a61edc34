"""Evaluations a pipeline can declare (``Pipeline.evaluation``, looked up in
:data:`i2i.registry.EVALUATIONS`):

- ``paired``: a translator against targets, beside untrained and identity baselines, as
  numbers and as an HTML results page (input / output / target side by side, loss curves);
- ``super_resolution``: PSNR / SSIM of the model and of bicubic, RGB and Y conventions;
- ``generation``: FID / KID of samples against real images on chosen features.

Each :class:`Evaluation` says which options apply, so ``i2i eval`` refuses the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import metrics, report
from .data.datasets import PairedDataset
from .data.io import write_image
from .losses import imagenet_normalize, torchvision_cached_weights
from .translator import Translator


def evaluate_paired(
    checkpoint: str | Path,
    data_root: str | Path,
    out_dir: str | Path | None = None,
    *,
    mode: str | None = None,
    direction: str | None = None,
    device: str = "auto",
    limit: int | None = None,
) -> dict[str, Any]:
    """Mean L1 (on [0, 1]) and PSNR (dB, RGB) of the checkpoint's generator on the pairs in
    ``data_root`` (``A/`` + ``B/``, ``testA/`` + ``testB/`` or side-by-side AB; ``direction``
    picks the generator of a two-way model and orients the pairs), of the same architecture untrained (the seed's initial weights), and of
    the identity (the input itself as the prediction, gray repeated to RGB), and of the mean
    colour (the evaluated targets' mean colour everywhere: the best constant prediction).

    With ``out_dir``, writes the images and ``index.html`` with the run's loss curves.
    Returns ``{"models": [{"model", "L1", "PSNR"}...], "per_image": [...], "page": path|None}``.
    """
    trained = Translator.from_checkpoint(checkpoint, mode=mode, direction=direction, device=device)
    cfg = trained.cfg
    baseline = Translator.untrained(cfg, direction=trained.direction, mode=trained.mode, device=device)
    root, d = Path(data_root), cfg.data
    # Pairs are oriented as the generator translates: a one-way model trained on paired data
    # follows data.direction; a two-way model's b_to_a generator reads B and should produce A.
    data_direction = getattr(d, "direction", "a_to_b")
    dataset = PairedDataset(
        root,
        direction="b_to_a" if (trained.direction == "b_to_a") != (data_direction == "b_to_a") else "a_to_b",
        in_channels=trained.in_channels,
        out_channels=trained.out_channels,
        preprocess=d.preprocess,
        load_size=d.load_size,
        crop_size=d.crop_size,
        train=False,
        folders=("testA", "testB") if (root / "testA").is_dir() else ("A", "B"),
    )
    n = len(dataset) if limit is None else min(limit, len(dataset))
    per_image, rows = [], []
    out = Path(out_dir) if out_dir else None
    # "Mean colour" baseline: every pixel the mean colour of the evaluated targets (an oracle
    # constant, the best one for squared error), the generator-free answer to beat.
    items = [dataset[i] for i in range(n)]  # decoded once: the mean colour needs every target first
    mean_colour = torch.stack([item["target"].mean((1, 2)) for item in items]).mean(0)[None, :, None, None]
    for item in items:
        x, y = item["input"][None], item["target"][None]
        preds = {"trained": trained.translate_tensor(x).cpu(), "untrained": baseline.translate_tensor(x).cpu()}
        preds["mean colour"] = mean_colour.expand_as(y)
        # "Do nothing" baseline: the input itself (gray repeated to RGB, or RGB to luma).
        preds["identity"] = _as_channels(x, y.shape[1])
        rec = {"name": item["name"]}
        for k, p in preds.items():
            rec[f"L1_{k}"] = float(metrics.l1_error(p, y)[0])
            rec[f"PSNR_{k}"] = float(metrics.psnr(p, y)[0])
        per_image.append(rec)
        if out is not None:
            stem = Path(item["name"]).with_suffix("").as_posix().replace("/", "__")
            imgs = {"input": x, "output": preds["trained"], "target": y, "untrained": preds["untrained"]}
            paths = []
            for col, t in imgs.items():
                p = out / "images" / f"{stem}_{col}.png"
                write_image(p, report.to_rgb8(t[0]))
                paths.append(p)
            rows.append(
                {
                    "name": item["name"],
                    "images": paths,
                    "metrics": {"L1": rec["L1_trained"], "PSNR": rec["PSNR_trained"], "PSNR untrained": rec["PSNR_untrained"]},
                }
            )
    kinds = ["trained", "untrained", "identity", "mean colour"]
    models = [
        {"model": k, "L1": sum(r[f"L1_{k}"] for r in per_image) / n, "PSNR": sum(r[f"PSNR_{k}"] for r in per_image) / n} for k in kinds
    ]
    page = None
    if out is not None:
        run_dir = Path(checkpoint).resolve().parent.parent
        page = report.write_results_page(
            out,
            title=f"{cfg.name}: {cfg.pipeline} on {Path(data_root).name} ({n} images)",
            columns=["input", "output", "target", "untrained output"],
            rows=rows,
            summary=models,
            records=report.read_metrics(run_dir / "metrics.jsonl"),
            notes=f"checkpoint {checkpoint}; test mode '{trained.mode}'; L1 on [0,1], PSNR in dB over RGB (higher is better). "
            "'untrained' is the same architecture with the run's initial weights; "
            "'identity' uses the input itself as the prediction (gray repeated to RGB); "
            "'mean colour' predicts the mean colour of these targets everywhere.",
        )
    result = {"models": models, "per_image": per_image, "page": str(page) if page else None, "weights": trained.weights}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def _as_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``(N, C, H, W)`` in [-1, 1] as ``channels`` channels: gray repeated, or BT.601 luma."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.repeat(1, channels, 1, 1)
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def format_table(models: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`evaluate_paired` model rows."""
    lines = [f"{'model':<12} {'L1':>8} {'PSNR(dB)':>9}"]
    lines += [f"{m['model']:<12} {m['L1']:>8.4f} {m['PSNR']:>9.2f}" for m in models]
    return "\n".join(lines)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] values to the 8-bit levels an image file would hold."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def evaluate_sr(
    checkpoint: str | Path,
    hr_root: str | Path,
    out_dir: str | Path | None = None,
    *,
    device: str = "auto",
    tile: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Super-resolution evaluation against the bicubic baseline, in both conventions.

    For every HR image (cropped to a multiple of the scale): LR = MATLAB-style bicubic
    downscale rounded to 8 bits; the model's and bicubic's upscales are rounded to 8 bits;
    PSNR and SSIM are computed on RGB and on BT.601 Y, ``scale`` border pixels removed,
    per image, then averaged. With ``out_dir``, writes ``metrics.json`` and ``results.md``.
    Returns ``{"scale", "per_image": [...], "mean": {...}, "markdown": str}``.
    """
    from .data.datasets import SRDataset
    from .data.resize import imresize

    tr = Translator.from_checkpoint(checkpoint, device=device, tile=tile)
    s = tr.scale
    dataset = SRDataset(hr_root, scale=s, channels=tr.out_channels, train=False, full_images=True)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    columns = {f"{m}_{c}_{who}": f"{m.upper()}-{c.upper() if c == 'y' else 'RGB'} {who}"
               for c in ("y", "rgb") for who in ("model", "bicubic") for m in ("psnr", "ssim")}
    per_image = []
    for i in range(n):
        item = dataset[i]
        lr, hr = item["input"][None], item["target"][None]
        preds = {"model": _quantize(tr.translate_tensor(lr).cpu()), "bicubic": _quantize(imresize(lr, float(s)))}
        rec: dict[str, Any] = {"name": item["name"], "size": f"{hr.shape[-1]}x{hr.shape[-2]}"}
        for who, p in preds.items():
            for conv, y in (("y", True), ("rgb", False)):
                rec[f"psnr_{conv}_{who}"] = float(metrics.psnr(p, hr, y=y, border=s)[0])
                rec[f"ssim_{conv}_{who}"] = float(metrics.ssim(p, hr, y=y, border=s)[0])
        per_image.append(rec)
    mean = {k: sum(r[k] for r in per_image) / n for k in columns}
    order = list(columns)
    head = "| image | size | " + " | ".join(columns.values()) + " |"

    def cells(r: dict[str, Any]) -> str:
        return " | ".join(f"{r[k]:.2f}" if k.startswith("psnr") else f"{r[k]:.4f}" for k in order)

    lines = [
        f"x{s} super-resolution of {n} images in '{hr_root}' by '{checkpoint}'.",
        f"LR: MATLAB-style antialiased bicubic (a=-0.5), 8-bit. PSNR (dB) / SSIM on BT.601 Y and on RGB, {s}-pixel border "
        "removed, per image then averaged; bicubic = MATLAB-style bicubic upscale of the same LR.",
        "",
        head,
        "|" + "---|" * (2 + len(order)),
        *[f"| {r['name']} | {r['size']} | {cells(r)} |" for r in per_image],
        f"| **mean** | | {cells(mean)} |",
    ]
    markdown = "\n".join(lines) + "\n"
    result = {"checkpoint": str(checkpoint), "scale": s, "per_image": per_image, "mean": mean, "markdown": markdown,
              "weights": tr.weights}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2))
        (out / "results.md").write_text(markdown)
    return result


INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"  # torchvision's Inception_V3_Weights.IMAGENET1K_V1


class _PixelFeatures(torch.nn.Module):
    """8x8 average-pooled pixels as features: a domain-agnostic sanity baseline."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x.float(), 8).flatten(1)


class _Inception(torch.nn.Module):
    """torchvision Inception-v3 pool features (2048-d) of [-1, 1] images resized to 299."""

    def __init__(self, path: str) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.fc = torch.nn.Identity()
        self.net = net.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.float()
        x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(imagenet_normalize(x))


def feature_extractor(spec: str = "inception") -> torch.nn.Module:
    """Features for FID / KID.

    ``inception``: torchvision's ImageNet Inception-v3 from a local file (torchvision's
    cache, ``inception_v3_google-0cc3c7bd.pth``); never downloaded; FIDs with these weights
    are not comparable to the TF-Inception numbers in papers. ``pixels``: 8x8 pooled
    pixels (a sanity baseline). Anything else: a path to a feature model of your domain
    (where ImageNet features mean little: digits, medical scans, ...) mapping
    ``(N, C, H, W)`` images in [-1, 1] to ``(N, D)``: a ``torch.export`` program saved with
    ``torch.export.save`` as ``.pt2`` (export it with a dynamic batch dimension), or a
    TorchScript file.
    """
    import os

    if spec == "pixels":
        return _PixelFeatures()
    if spec == "inception":
        return _Inception(torchvision_cached_weights(
            INCEPTION_FILE, needed_for="FID/KID with Inception (torchvision's ImageNet Inception-v3)",
            otherwise="or choose --features pixels or --features PATH to a feature model of your domain (.pt2)"))
    if not os.path.isfile(spec):
        raise FileNotFoundError(f"--features {spec!r}: not 'inception', 'pixels' or an existing .pt2 / TorchScript feature model")
    if spec.endswith(".pt2"):
        return torch.export.load(spec).module()
    return torch.jit.load(spec, map_location="cpu").eval()


@torch.inference_mode()
def _features(extractor: torch.nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    return torch.cat([extractor(images[i : i + batch_size]).float().flatten(1) for i in range(0, images.shape[0], batch_size)])


def evaluate_generation(
    checkpoint: str | Path,
    real_root: str | Path,
    *,
    n: int = 1000,
    features: str = "inception",
    seed: int = 0,
    device: str = "auto",
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """FID and KID of ``n`` samples of a DCGAN checkpoint against up to ``n`` real images
    from ``real_root`` (an image folder, resized like the training data). Returns and, with
    ``out_dir``, saves ``{"fid", "kid", "n_fake", "n_real", "features"}``."""
    from .data.datasets import ImageDataset
    from .sampler import Generator

    extractor = feature_extractor(features)
    gen = Generator.from_checkpoint(checkpoint, device=device)
    cfg = gen.cfg
    real_ds = ImageDataset(real_root, size=cfg.data.image_size, channels=gen.net.out_channels, train=False, fit=cfg.data.fit)
    idx = torch.randperm(len(real_ds), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    real = torch.stack([real_ds[i]["image"] for i in idx])
    fake = gen.sample(n, seed=seed)
    fr, ff = _features(extractor, real), _features(extractor, fake)
    result = {"fid": metrics.frechet_distance(ff, fr), "kid": metrics.kernel_distance(ff, fr, seed=seed),
              "n_fake": n, "n_real": len(idx), "features": features, "checkpoint": str(checkpoint), "weights": gen.weights}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def _paired_report(r: dict[str, Any]) -> str:
    text = format_table(r["models"]) + f"\n(weights: {r['weights']})"
    return text + (f"\nresults page: {r['page']}" if r["page"] else "")


def _sr_report(r: dict[str, Any]) -> str:
    return r["markdown"] + f"(weights: {r['weights']})"


def _generation_report(r: dict[str, Any]) -> str:
    return (f"FID {r['fid']:.3f}  KID {r['kid']:.5f}  ({r['n_fake']} samples vs {r['n_real']} real images, {r['features']} features, "
            f"{r['weights']} weights)")


@dataclass(frozen=True)
class Evaluation:
    """What ``i2i eval`` runs for a pipeline: ``run(checkpoint, data, **options)`` returning a
    result dict, the ``options`` it takes (beyond ``out`` and ``device``, which all take),
    and ``report(result)``: the text printed."""

    name: str
    description: str
    options: tuple[str, ...]
    run: Callable[..., dict[str, Any]]
    report: Callable[[dict[str, Any]], str]

    def __call__(self, checkpoint: str | Path, data: str | Path, **options: Any) -> dict[str, Any]:
        unknown = sorted(set(options) - {*self.options, "out_dir", "device"})
        if unknown:
            raise ValueError(f"{', '.join(unknown)} do not apply to {self.description}; its options: {', '.join(self.options)}")
        return self.run(checkpoint, data, **options)


PAIRED = Evaluation("paired", "paired translation (L1 / PSNR against targets, with baselines)", ("mode", "direction", "limit"),
                    evaluate_paired, _paired_report)
SUPER_RESOLUTION = Evaluation("super_resolution", "super-resolution (PSNR / SSIM against HR images, with bicubic)",
                              ("tile", "limit"), evaluate_sr, _sr_report)
GENERATION = Evaluation("generation", "generation (FID / KID of samples against real images)", ("n", "features"),
                        evaluate_generation, _generation_report)
