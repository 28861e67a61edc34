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
from .config import Config
from .data.datasets import PairedDataset
from .data.io import write_image
from .hints import first_line
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
    """Mean L1 (on [0, 1]), PSNR (dB, RGB) and SSIM of the checkpoint's generator on the pairs
    in ``data_root`` (``A/`` + ``B/``, ``testA/`` + ``testB/`` or side-by-side AB; ``direction``
    picks the generator of a two-way model and orients the pairs), beside three baselines:
    the same architecture untrained (the seed's initial weights), the identity (the input
    itself as the prediction) and the mean colour (the evaluated targets' mean colour
    everywhere: the best constant prediction).

    Images are evaluated at their own size, as ``i2i convert`` translates them (padded to
    the generator's multiple and cropped back; no training resize or crop), so the page's
    outputs are the files ``convert`` writes. With ``out_dir``, writes the images and
    ``index.html`` with the run's training curves.
    Returns ``{"models": [{"model", "L1", "PSNR", "SSIM"}...], "per_image": [...], "page": path|None}``.
    """
    trained = Translator.from_checkpoint(checkpoint, mode=mode, direction=direction, device=device)
    cfg = trained.cfg
    baseline = Translator.untrained(cfg, direction=trained.direction, mode=trained.mode, device=device)
    dataset = paired_dataset(cfg, data_root, trained.direction, trained.in_channels, trained.out_channels)
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
        preds["identity"] = _as_channels(x, y.shape[1])  # "do nothing": the input itself
        rec: dict[str, Any] = {"name": item["name"], "size": f"{y.shape[-1]}x{y.shape[-2]}"}
        for k, pred in preds.items():
            for metric, value in PairedValidator.scores(pred, y).items():
                rec[f"{metric}_{k}"] = value
        per_image.append(rec)
        if out is not None:
            stem = Path(item["name"]).with_suffix("").as_posix().replace("/", "__")
            error = (preds["trained"] - y).abs().mean(1, keepdim=True) * 4 - 1  # |output - target| on [0, 1], x4, as an image
            imgs = {"input": x, "output": preds["trained"], "target": y, "error": error}
            paths = []
            for col, t in imgs.items():
                path = out / "images" / f"{stem}_{col}.png"
                write_image(path, report.to_rgb8(t[0]))
                paths.append(path)
            rows.append({"name": item["name"], "images": paths, "metrics": {
                "PSNR": rec["PSNR_trained"], "SSIM": rec["SSIM_trained"], "L1": rec["L1_trained"],
                "PSNR identity": rec["PSNR_identity"], "dB over identity": rec["PSNR_trained"] - rec["PSNR_identity"]}})
    kinds = ["trained", "untrained", "identity", "mean colour"]
    models = [{"model": k, **{m: sum(r[f"{m}_{k}"] for r in per_image) / n for m in ("L1", "PSNR", "SSIM")}} for k in kinds]
    page = None
    if out is not None:
        run_dir = Path(checkpoint).resolve().parent.parent
        identity = ("the input itself" if trained.in_channels == trained.out_channels else
                    "the gray input repeated to RGB" if trained.in_channels == 1 else "the input's BT.601 luma")
        page = report.write_results_page(
            out,
            title=f"{cfg.name}: {cfg.pipeline} {trained.direction} on {Path(data_root).name} ({n} images)",
            columns=["input", "output", "target", "|output - target| x4"],
            rows=rows,
            summary=models,
            better={"L1": "min", "PSNR": "max", "SSIM": "max"},
            records=report.read_metrics(run_dir / "metrics.jsonl"),
            notes=f"checkpoint {checkpoint} ({trained.weights} weights, test mode '{trained.mode}'); each image at its own size, "
            "as i2i convert translates it. L1 on [0, 1] (lower is better), PSNR in dB over RGB and SSIM (higher is better). "
            f"Baselines: 'untrained' is the same architecture with the run's initial weights; 'identity' predicts {identity}; "
            "'mean colour' predicts the mean colour of these targets everywhere (the best constant).",
        )
    result = {"models": models, "per_image": per_image, "page": str(page) if page else None, "weights": trained.weights}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def paired_dataset(cfg: Config, root: str | Path, direction: str, in_channels: int, out_channels: int) -> PairedDataset:
    """The pairs under ``root`` (``testA/`` + ``testB/``, ``A/`` + ``B/`` or side-by-side AB),
    at their own size (no resize or crop: what ``convert`` gets) and oriented as the generator of
    ``direction`` translates: a one-way model trained on paired data follows
    ``data.direction``; a two-way model's ``b_to_a`` generator reads B and should produce A."""
    root, d = Path(root), cfg.data
    data_direction = getattr(d, "direction", "a_to_b")
    return PairedDataset(
        root,
        direction="b_to_a" if (direction == "b_to_a") != (data_direction == "b_to_a") else "a_to_b",
        in_channels=in_channels,
        out_channels=out_channels,
        preprocess="none",  # each image at its own size, as convert sees it; the translator pads and crops back
        train=False,
        folders=("testA", "testB") if (root / "testA").is_dir() else ("A", "B"),
    )


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
    lines = [f"{'model':<12} {'L1':>8} {'PSNR(dB)':>9} {'SSIM':>7}"]
    lines += [f"{m['model']:<12} {m['L1']:>8.4f} {m['PSNR']:>9.2f} {m['SSIM']:>7.4f}" for m in models]
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
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's port of the TF FID Inception
FID_INCEPTION_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_INCEPTION_FILE}"


class _PixelFeatures(torch.nn.Module):
    """8x8 average-pooled pixels as features: a domain-agnostic sanity baseline."""

    description = "8x8 pooled pixels (a sanity baseline; not comparable with published FIDs)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x.float(), 8).flatten(1)


def _load_into(net: torch.nn.Module, path: str, what: str) -> None:
    from .engine.checkpoint import CheckpointError, load_state_file

    try:
        net.load_state_dict(load_state_file(path, what))
    except RuntimeError as e:
        raise CheckpointError(f"'{path}' does not hold {what}: {first_line(e)}") from None


def _to_inception_input(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (gray repeated to RGB) bilinearly resized to 299 x 299, still in [-1, 1]."""
    x = x.float().expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.float()
    return torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)


class _Inception(torch.nn.Module):
    """torchvision's ImageNet Inception-v3: pool features (2048-d) and 1000 class logits."""

    description = ("torchvision ImageNet Inception-v3 (inception_v3_google-0cc3c7bd.pth): FIDs NOT comparable with papers, "
                   "which use the TF FID Inception ('fid-inception')")

    def __init__(self, path: str) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        _load_into(net, path, "torchvision's Inception-v3 weights")
        self.fc, net.fc = net.fc, torch.nn.Identity()
        self.net = net.eval()

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.net(imagenet_normalize(_to_inception_input(x)))
        return f, self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]


class _FIDInception(torch.nn.Module):
    """The standard FID network: the TF Inception of 2015-12-05 as ported by pytorch-fid (the
    network pytorch-fid, clean-fid and the original TTUR code measure with), whose blocks the
    ``pytorch-fid`` package supplies. Pool features (2048-d) and the graph's 1008 class
    logits (for the Inception Score). Inputs as pytorch-fid feeds them: bilinear resize to
    299, values in [-1, 1]."""

    description = "FID Inception-v3 (TF 2015-12-05 weights, as pytorch-fid / clean-fid): comparable with published FIDs"

    def __init__(self, path: str) -> None:
        super().__init__()
        net = self.architecture()
        _load_into(net, path, "the FID Inception weights")
        self.net = net.eval()

    @staticmethod
    def architecture() -> torch.nn.Module:
        """The network without weights: torchvision's Inception-v3 with 1008 classes and the
        FID graph's blocks (they differ in pooling from torchvision's)."""
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = FIDInceptionA(192, 32), FIDInceptionA(256, 64), FIDInceptionA(288, 64)
        net.Mixed_6b, net.Mixed_6c = FIDInceptionC(768, channels_7x7=128), FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d, net.Mixed_6e = FIDInceptionC(768, channels_7x7=160), FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b, net.Mixed_7c = FIDInceptionE_1(1280), FIDInceptionE_2(2048)
        return net

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, x = self.net, _to_inception_input(x)
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1, n.Conv2d_4a_3x3, n.maxpool2,
                      n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e,
                      n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        f = torch.flatten(n.avgpool(x), 1)
        return f, n.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]


FEATURES = ("fid-inception", "inception", "pixels")


class _OnnxFeatures(torch.nn.Module):
    """A user's feature model as an ONNX graph run by onnxruntime: a file of operators and
    weights, so opening it runs no code. Input ``(N, C, H, W)`` float32 in [-1, 1]; output
    ``(N, D)`` (flattened)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("ONNX feature models need onnxruntime: pip install 'i2i[onnx]'") from None
        try:
            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for damaged or foreign files
            raise ValueError(f"feature model '{path}' cannot be read as ONNX ({type(e).__name__}: {str(e)[:160]})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.description = f"the feature model {path} (FIDs compare only with FIDs on the same model)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out).flatten(1).to(x.device)


def feature_extractor(spec: str = "fid-inception", option: str | None = None) -> torch.nn.Module:
    """Features for FID / KID (and, for the Inception networks, logits for the Inception Score).
    Every extractor has a ``description`` saying what it is and whether FIDs are comparable.

    ``fid-inception`` (the default): the standard FID network (pytorch-fid's
    ``pt_inception-2015-12-05-6726825d.pth`` in torchvision's cache; ``i2i download weights
    fid-inception`` fetches it), so FIDs compare with papers'. ``inception``: torchvision's
    ImageNet Inception-v3 (``inception_v3_google-0cc3c7bd.pth``); not comparable. ``pixels``:
    8x8 pooled pixels (a sanity baseline). Anything else: a path to an ONNX feature model of
    your domain (where ImageNet features mean little: digits, medical scans, ...) mapping
    ``(N, C, H, W)`` images in [-1, 1] to ``(N, D)`` (export it with a dynamic batch
    dimension). ``.pt2`` and TorchScript files are refused: they can carry pickles that run
    code when opened. Weights are never downloaded here. ``option`` is how errors name the
    setting (e.g. ``train.val_features``); by default the argument and the ``i2i eval`` flag.
    """
    import os

    def choose(value: str) -> str:
        return f"{option}: {value}" if option else f"features={value!r} (--features {value})"

    otherwise = f"or choose {choose('pixels')} or a path to an ONNX feature model of your domain"
    if spec == "pixels":
        return _PixelFeatures()
    if spec == "fid-inception":
        return _FIDInception(torchvision_cached_weights(
            FID_INCEPTION_FILE, url=FID_INCEPTION_URL, needed_for="FID/KID/IS with the standard FID Inception",
            otherwise=f"or run 'i2i download weights fid-inception', {otherwise}"))
    if spec == "inception":
        return _Inception(torchvision_cached_weights(
            INCEPTION_FILE, needed_for="FID/KID with Inception (torchvision's ImageNet Inception-v3)", otherwise=otherwise))
    if not os.path.isfile(spec):
        raise FileNotFoundError(f"{choose(spec)}: not one of {', '.join(FEATURES)} or an existing .onnx feature model")
    if not spec.lower().endswith(".onnx"):
        raise ValueError(
            f"{choose(spec)}: feature models are read as ONNX only. PyTorch program files (.pt2, TorchScript .pt) can hold "
            "pickled objects that run code when loaded, so i2i does not open them; export the model with "
            "torch.onnx.export(model, example, 'features.onnx', dynamo=True, dynamic_shapes=...) and pass the .onnx")
    return _OnnxFeatures(spec)


def load_classifier(path: str, option: str = "--classifier") -> torch.nn.Module:
    """A user's classifier for class coverage: an ONNX graph mapping ``(N, C, H, W)`` images in
    [-1, 1] to ``(N, K)`` class logits (run by onnxruntime: opening it runs no code). Its
    classes must be in the order of the class folders (sorted names), which is the order of
    a conditional model's labels."""
    import os

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{option} '{path}': no such file (an ONNX classifier of your domain)")
    if not path.lower().endswith(".onnx"):
        raise ValueError(f"{option} '{path}': classifiers are read as ONNX only (a PyTorch file can run code when opened); "
                         "export it with torch.onnx.export(model, example, 'classifier.onnx', dynamo=True, dynamic_shapes=...)")
    model = _OnnxFeatures(path)
    model.description = f"the classifier {path}"
    return model


@torch.inference_mode()
def generation_diagnostics(fake: torch.Tensor, fake_features: torch.Tensor, real_features: torch.Tensor, *,
                           classifier: torch.nn.Module | None = None, real_logits: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None, device: torch.device | str = "cpu") -> dict[str, float]:
    """Signs of mode collapse in ``(N, C, S, S)`` samples ``fake`` against real images:
    ``diversity`` (mean pairwise feature distance of the samples over the real images'; about
    1 is healthy, toward 0 is collapse, see :func:`i2i.metrics.diversity`); for a conditional
    model (``fake_labels``, the ``(N,)`` classes the samples were drawn for) ``class_diversity``,
    the same within each class (:func:`i2i.metrics.class_diversity`: one image per class scores
    about 0 there, however varied the classes); with a
    ``classifier`` (:func:`load_classifier`) and its ``(M, K)`` logits of the real images
    (``real_logits``, computed once by the caller), ``coverage`` (share of the classes found in
    the real images that the samples cover, :func:`i2i.metrics.class_coverage`) and, for a
    conditional model (``fake_labels``), ``label_accuracy``: the share of samples the classifier
    puts in the class they were drawn for."""
    out = {"diversity": metrics.diversity(fake_features, real_features)}
    if fake_labels is not None:
        out["class_diversity"] = metrics.class_diversity(fake_features, fake_labels.cpu(), real_features)
    if classifier is not None:
        if real_logits is None:
            raise ValueError("class coverage needs the classifier's logits of the real images (real_logits)")
        pf = _features(classifier, fake, device).argmax(1)
        out["coverage"] = metrics.class_coverage(pf, real_logits.argmax(1), real_logits.shape[1])
        if fake_labels is not None:
            out["label_accuracy"] = float((pf == fake_labels.cpu()).double().mean())
    return out


def _generation_scores(images: torch.Tensor, labels: torch.Tensor | None, extractor: torch.nn.Module, real_features: torch.Tensor,
                       *, classifier: torch.nn.Module | None, real_logits: torch.Tensor | None, device: torch.device | str,
                       seed: int) -> tuple[dict[str, float], torch.Tensor | None]:
    """``fid``, ``kid`` and :func:`generation_diagnostics` of 8-bit ``images`` against the real
    images' features, and the extractor's class logits of the images (Inception networks; for
    the Inception Score), or None: what ``i2i eval`` and the validation step both measure."""
    import warnings

    ff, lf = _features_and_logits(extractor, images, device)
    with warnings.catch_warnings():  # identical samples (the mean image, a collapse): a singular covariance
        warnings.simplefilter("ignore")
        out = {"fid": metrics.frechet_distance(ff, real_features), "kid": metrics.kernel_distance(ff, real_features, seed=seed)}
    out.update(generation_diagnostics(images, ff, real_features, classifier=classifier, real_logits=real_logits,
                                      fake_labels=labels, device=device))
    return out, lf


@torch.inference_mode()
def _features(extractor: torch.nn.Module, images: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 64) -> torch.Tensor:
    """``(N, D)`` features (on the CPU) of ``(N, C, H, W)`` images, computed in batches on ``device``."""
    return _features_and_logits(extractor, images, device, batch_size)[0]


@torch.inference_mode()
def _features_and_logits(extractor: torch.nn.Module, images: torch.Tensor, device: torch.device | str = "cpu",
                         batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features and, for extractors with class logits (the Inception networks), logits; on the CPU."""
    feats, logits = [], []
    both = hasattr(extractor, "features_and_logits")
    for i in range(0, images.shape[0], batch_size):
        x = images[i : i + batch_size].to(device)
        f, lg = extractor.features_and_logits(x) if both else (extractor(x), None)
        feats.append(f.float().flatten(1).cpu())
        if lg is not None:
            logits.append(lg.float().cpu())
    return torch.cat(feats), (torch.cat(logits) if logits else None)


def evaluate_generation(
    checkpoint: str | Path,
    real_root: str | Path,
    *,
    n: int = 1000,
    features: str = "fid-inception",
    classifier: str | None = None,
    seed: int = 0,
    device: str = "auto",
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """FID and KID of ``n`` samples of a DCGAN checkpoint against up to ``n`` real images
    from ``real_root`` (an image folder, resized like the training data), with an
    Inception network the Inception Score of the samples (and of the real images, the
    reference point), and the mode-collapse diagnostics of :func:`generation_diagnostics`
    (``diversity``; with an ONNX ``classifier``, ``coverage`` and for conditional models
    ``label_accuracy``). Samples are rounded to 8 bits first, as saved files would be.
    The same numbers for two baselines go in ``models``: the architecture ``untrained`` (the
    run's initial weights) and the ``mean image`` (every sample the mean real image: the
    strongest constant, and a fully collapsed generator).
    Returns and, with ``out_dir``, saves ``{"fid", "kid", "diversity", "is", "is_std",
    "is_real", "coverage", "label_accuracy", "models", "n_fake", "n_real", "features",
    "feature_network", "page"}``; ``out_dir`` also gets ``index.html``: the table, the run's
    training and validation curves, and sample grids beside real images."""
    from .data.datasets import ImageDataset
    from .loading import untrained_generator
    from .sampler import Generator

    gen = Generator.from_checkpoint(checkpoint, device=device)
    extractor = feature_extractor(features).to(gen.device)
    clf = load_classifier(classifier) if classifier else None
    cfg = gen.cfg
    real_ds = ImageDataset(real_root, size=cfg.data.image_size, channels=gen.net.out_channels, train=False, fit=cfg.data.fit)
    idx = torch.randperm(len(real_ds), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    real = torch.stack([real_ds[i]["image"] for i in idx])
    fr, lr = _features_and_logits(extractor, real, gen.device)
    real_logits = _features(clf, real, gen.device) if clf is not None else None
    untrained = Generator(untrained_generator(cfg)[0], cfg, device=gen.device, weights="untrained")

    def scores(fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[dict[str, float], torch.Tensor | None]:
        return _generation_scores(fake, labels, extractor, fr, classifier=clf, real_logits=real_logits, device=gen.device,
                                  seed=seed)

    fake, labels = gen.sample_labelled(n, seed=seed)
    fake = _quantize(fake)
    trained, lf = scores(fake, labels)
    result: dict[str, Any] = dict(trained)
    if lf is not None:
        result["is"], result["is_std"] = metrics.inception_score(lf)
        result["is_real"], _ = metrics.inception_score(lr)
    base_fake, base_labels = untrained.sample_labelled(n, seed=seed)
    mean_image = _quantize(real.mean(0, keepdim=True).expand(n, -1, -1, -1).contiguous())
    models = [{"model": "trained", **trained},
              {"model": "untrained", **scores(_quantize(base_fake), base_labels)[0]},
              {"model": "mean image", **scores(mean_image, labels)[0]}]
    result.update({"models": models, "n_fake": n, "n_real": len(idx), "features": features,
                   "feature_network": extractor.description, "checkpoint": str(checkpoint), "weights": gen.weights, "page": None})
    if out_dir is not None:
        result["page"] = str(_generation_page(Path(out_dir), result, cfg, fake, labels, real, _quantize(base_fake), checkpoint))
        (Path(out_dir) / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def _generation_page(out: Path, r: dict[str, Any], cfg: Config, fake: torch.Tensor, labels: torch.Tensor | None,
                     real: torch.Tensor, untrained: torch.Tensor, checkpoint: str | Path) -> Path:
    """The results page of a generation model: the metric table with its baselines, the run's
    curves (losses, and validation FID / diversity / coverage), and 8x8 grids of samples,
    untrained samples and real images (a conditional model: one class per column)."""
    def grid(name: str, x: torch.Tensor, lab: torch.Tensor | None = None) -> Path:
        if lab is None:
            x = x[:64]
            columns = [x[c::8] for c in range(min(8, x.shape[0]))]
            columns = [c[: columns[-1].shape[0]] for c in columns]
        else:  # one class per column
            per_class = [x[lab == c] for c in range(int(lab.max()) + 1)][:8]
            rows = min(8, *(len(c) for c in per_class))
            columns = [c[:rows] for c in per_class if rows]
        return report.save_grid(out / "images" / f"{name}.png", columns)

    rows = [{"name": "samples (trained)" + (", one class per column" if labels is not None else ""),
             "images": [grid("samples", fake, labels)], "metrics": {}},
            {"name": "samples (untrained)", "images": [grid("untrained", untrained)], "metrics": {}},
            {"name": "real images", "images": [grid("real", real)], "metrics": {}}]
    better = {"fid": "min", "kid": "min", "diversity": "max", "class_diversity": "max", "coverage": "max", "label_accuracy": "max"}
    is_text = f" Inception Score of the samples {r['is']:.3f} (real images {r['is_real']:.3f})." if "is" in r else ""
    return report.write_results_page(
        out, title=f"{cfg.name}: {cfg.pipeline} samples vs {r['n_real']} real images", columns=["8 x 8 grid"], rows=rows,
        summary=r["models"], better=better,
        records=report.read_metrics(Path(checkpoint).resolve().parent.parent / "metrics.jsonl"),
        notes=f"checkpoint {checkpoint} ({r['weights']} weights); {r['n_fake']} samples on {r['feature_network']}. "
              "FID / KID: distance to the real images' features (lower is better). diversity: mean pairwise feature distance of "
              "the samples over the real images' (1: as varied as the data; toward 0: mode collapse); class_diversity: the same "
              "within each class of a conditional model (toward 0: one image per class). coverage: share of the "
              "classes (by the given classifier) the samples cover; label_accuracy: share drawn in the class asked for. "
              "Baselines: 'untrained' is the run's initial generator; 'mean image' draws the mean real image every time (the "
              f"best constant: a fully collapsed generator).{is_text}")


def _paired_report(r: dict[str, Any]) -> str:
    text = format_table(r["models"]) + f"\n(weights: {r['weights']})"
    return text + (f"\nresults page: {r['page']}" if r["page"] else "")


def _sr_report(r: dict[str, Any]) -> str:
    return r["markdown"] + f"(weights: {r['weights']})"


def _generation_report(r: dict[str, Any]) -> str:
    score = f"  IS {r['is']:.3f} ± {r['is_std']:.3f} (real images: {r['is_real']:.3f})" if "is" in r else ""
    classes = "".join(f"  {k} {r[k]:.3f}" for k in ("class_diversity", "coverage", "label_accuracy") if k in r)
    return (f"FID {r['fid']:.3f}  KID {r['kid']:.5f}{score}  ({r['n_fake']} samples vs {r['n_real']} real images, {r['weights']} weights)"
            f"\ndiversity {r['diversity']:.3f} (1: as varied as the real images; toward 0: mode collapse){classes}"
            f"\nfeatures: {r['feature_network']}")


# ----------------------------------------------------------------------------- validation
class ValidationError(ValueError):
    """The validation data cannot be used (missing, empty, unpaired); the message names it."""


class Validator:
    """What the trainer measures every ``train.val_every`` steps on ``data.val_root``: the
    evaluation's own metrics for the generators inference would use, on held-out data that is
    decoded once (and kept on the CPU) when training starts.

    Built with ``(cfg, root, nets, limit=, features=)`` where ``nets`` maps each direction
    (``None`` for generation) to its inference generator, only read for its shapes; called
    with the same mapping, it returns ``{metric: value}``. It never changes the nets it is
    given (it measures copies) nor the global random generators, so exact resume holds.
    ``metric_names(cfg)``: every metric it reports -> ``"max"`` or ``"min"`` (which way is
    better); ``default_metric``: what ``best.pt`` follows unless ``train.val_metric`` says.
    """

    default_metric: str = ""

    @classmethod
    def metric_names(cls, cfg: Config) -> dict[str, str]:
        raise NotImplementedError

    def describe(self) -> str:
        """One banner line: the data and the baselines to beat."""
        raise NotImplementedError

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        raise NotImplementedError


def _device_of(net: torch.nn.Module) -> torch.device:
    return next(iter(net.parameters())).device


def _inference_copy(net: torch.nn.Module, cfg: Config, direction: str) -> Translator:
    import copy

    return Translator(copy.deepcopy(net), cfg, direction=direction, mode=cfg.test.mode, device=_device_of(net))


def _mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())


class PairedValidator(Validator):
    """L1 (on [0, 1]), PSNR (dB, RGB) and SSIM against the targets of ``val_root``'s pairs, for
    every direction the pipeline translates (CycleGAN: both, named ``PSNR_a_to_b`` ...,
    with ``PSNR`` their mean)."""

    default_metric = "PSNR"
    BETTER = {"L1": "min", "PSNR": "max", "SSIM": "max"}

    @classmethod
    def metric_names(cls, cfg: Config) -> dict[str, str]:
        from .registry import pipeline_class

        directions = list(pipeline_class(cfg.pipeline).directions)
        names = dict(cls.BETTER)
        if len(directions) > 1:
            names.update({f"{m}_{d}": b for d in directions for m, b in cls.BETTER.items()})
        return names

    def __init__(self, cfg: Config, root: str | Path, nets: dict[str | None, torch.nn.Module], *, limit: int | None = None,
                 features: str = "") -> None:
        from .data.datasets import DataError

        self.cfg, self.root = cfg, Path(root)
        self.items: dict[str, list[dict[str, Any]]] = {}
        for direction, net in nets.items():
            try:
                ds = paired_dataset(cfg, root, direction, net.in_channels, net.out_channels)
            except DataError as e:
                raise ValidationError(
                    f"data.val_root: {e}. Validation of {cfg.pipeline} compares translations with targets, so it needs pairs "
                    "(A/ + B/ or testA/ + testB/ with matching names, or side-by-side AB images)") from None
            n = len(ds) if limit is None else min(limit, len(ds))
            self.items[direction] = [ds[i] for i in range(n)]
        self.baselines = {d: _mean_scores([self.scores(_as_channels(it["input"][None], it["target"].shape[0]), it["target"][None])
                                           for it in items]) for d, items in self.items.items()}

    @staticmethod
    def scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """L1, PSNR and SSIM of one ``(1, C, H, W)`` prediction in [-1, 1]."""
        return {"L1": float(metrics.l1_error(pred, target)[0]), "PSNR": float(metrics.psnr(pred, target)[0]),
                "SSIM": float(metrics.ssim(pred, target)[0])}

    def describe(self) -> str:
        n = len(next(iter(self.items.values())))
        base = "; ".join(f"{d}: {_fmt(b)}" for d, b in self.baselines.items()) if len(self.items) > 1 else _fmt(
            next(iter(self.baselines.values())))
        return f"{n} pairs in {self.root}, L1 / PSNR / SSIM against targets; identity (input as output) {base}"

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        per_direction = {}
        for direction, items in self.items.items():
            tr = _inference_copy(nets[direction], self.cfg, direction)
            per_direction[direction] = _mean_scores(
                [self.scores(tr.translate_tensor(it["input"][None]).cpu(), it["target"][None]) for it in items])
        if len(per_direction) == 1:
            return next(iter(per_direction.values()))
        out = {m: sum(s[m] for s in per_direction.values()) / len(per_direction) for m in self.BETTER}
        out.update({f"{m}_{d}": s[m] for d, s in per_direction.items() for m in self.BETTER})
        return out


class SuperResolutionValidator(Validator):
    """PSNR / SSIM on BT.601 Y (``PSNR_Y``, ``SSIM_Y``) and PSNR on RGB of the 8-bit upscales of
    ``val_root``'s whole HR images (bicubic LR, ``scale`` border removed, as ``i2i eval``)."""

    default_metric = "PSNR_Y"
    BETTER = {"PSNR_Y": "max", "SSIM_Y": "max", "PSNR": "max"}

    @classmethod
    def metric_names(cls, cfg: Config) -> dict[str, str]:
        return dict(cls.BETTER)

    def __init__(self, cfg: Config, root: str | Path, nets: dict[str | None, torch.nn.Module], *, limit: int | None = None,
                 features: str = "") -> None:
        from .data.datasets import DataError, SRDataset
        from .data.resize import imresize

        (self.direction, net), = nets.items()
        self.cfg, self.root, self.scale = cfg, Path(root), int(net.scale)
        try:
            ds = SRDataset(root, scale=self.scale, channels=net.out_channels, train=False, full_images=True)
        except DataError as e:
            raise ValidationError(f"data.val_root: {e}") from None
        n = len(ds) if limit is None else min(limit, len(ds))
        self.items = [ds[i] for i in range(n)]
        self.bicubic = _mean_scores([self.scores(_quantize(imresize(it["input"][None], float(self.scale))), it["target"][None])
                                     for it in self.items])

    def scores(self, pred: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        s = self.scale
        return {"PSNR_Y": float(metrics.psnr(pred, hr, y=True, border=s)[0]), "SSIM_Y": float(metrics.ssim(pred, hr, y=True, border=s)[0]),
                "PSNR": float(metrics.psnr(pred, hr, border=s)[0])}

    def describe(self) -> str:
        return f"{len(self.items)} HR images in {self.root} at x{self.scale}; bicubic {_fmt(self.bicubic)}"

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        tr = _inference_copy(nets[self.direction], self.cfg, self.direction)
        return _mean_scores([self.scores(_quantize(tr.translate_tensor(it["input"][None]).cpu()), it["target"][None])
                             for it in self.items])


class GenerationValidator(Validator):
    """FID and KID of as many samples as real images (up to ``limit``) from ``val_root``, on
    ``train.val_features`` (``fid-inception``, ``inception``, ``pixels`` or a feature model file; see
    :func:`feature_extractor`), the Inception Score with an Inception network, and the
    mode-collapse diagnostics (:func:`generation_diagnostics`: ``diversity``; with
    ``train.val_classifier``, ``coverage`` and ``label_accuracy``). The latents are the same
    at every validation (from ``cfg.seed``); the real features are computed once."""

    default_metric = "FID"
    BETTER = {"FID": "min", "KID": "min"}

    @classmethod
    def metric_names(cls, cfg: Config) -> dict[str, str]:
        names = {**cls.BETTER, "diversity": "max"}
        if cfg.model.generator.arg("num_classes"):
            names["class_diversity"] = "max"
        if cfg.train.val_features in ("fid-inception", "inception"):
            names["IS"] = "max"
        if cfg.train.val_classifier:
            names["coverage"] = "max"
            if cfg.model.generator.arg("num_classes"):
                names["label_accuracy"] = "max"
        return names

    def __init__(self, cfg: Config, root: str | Path, nets: dict[str | None, torch.nn.Module], *, limit: int | None = None,
                 features: str = "fid-inception") -> None:
        from .data.datasets import DataError, ImageDataset

        net = nets[None]
        self.cfg, self.root, self.features = cfg, Path(root), features
        self.device = _device_of(net)
        self.extractor = feature_extractor(features, option="train.val_features").to(self.device)
        try:
            ds = ImageDataset(root, size=cfg.data.image_size, channels=net.out_channels, train=False, fit=cfg.data.fit)
        except DataError as e:
            raise ValidationError(f"data.val_root: {e}") from None
        n = len(ds) if limit is None else min(limit, len(ds))
        if n < 2:
            raise ValidationError(f"data.val_root '{root}': FID needs at least 2 real images, found {n}")
        self.classifier = None
        if cfg.train.val_classifier:
            try:
                self.classifier = load_classifier(cfg.train.val_classifier, option="train.val_classifier")
            except (ValueError, ImportError) as e:
                raise ValidationError(str(e)) from None
        real = torch.stack([ds[i]["image"] for i in range(n)])
        self.real = _features(self.extractor, real, self.device)
        self.real_logits = _features(self.classifier, real, self.device) if self.classifier is not None else None
        self.n = n

    def describe(self) -> str:
        extra = f"; classes by {self.classifier.description}" if self.classifier is not None else ""
        return f"{self.n} real images in {self.root} vs {self.n} samples, FID / KID / diversity on {self.extractor.description}{extra}"

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        import copy

        from .sampler import Generator

        gen = Generator(copy.deepcopy(nets[None]), self.cfg, device=self.device)
        images, labels = gen.sample_labelled(self.n, seed=self.cfg.seed)
        scores, logits = _generation_scores(_quantize(images), labels, self.extractor, self.real, classifier=self.classifier,
                                            real_logits=self.real_logits, device=self.device, seed=self.cfg.seed)
        out = {"FID": scores.pop("fid"), "KID": scores.pop("kid")}
        if logits is not None:
            out["IS"] = metrics.inception_score(logits)[0]
        return {**out, **scores}


@dataclass(frozen=True)
class Evaluation:
    """What ``i2i eval`` runs for a pipeline: ``run(checkpoint, data, **options)`` returning a
    result dict, the ``options`` it takes (beyond ``out`` and ``device``, which all take),
    ``report(result)``: the text printed, and ``validator``: what training measures every
    ``train.val_every`` steps (see :class:`Validator`)."""

    name: str
    description: str
    options: tuple[str, ...]
    run: Callable[..., dict[str, Any]]
    report: Callable[[dict[str, Any]], str]
    validator: type[Validator]

    def __call__(self, checkpoint: str | Path, data: str | Path, **options: Any) -> dict[str, Any]:
        unknown = sorted(set(options) - {*self.options, "out_dir", "device"})
        if unknown:
            raise ValueError(f"{', '.join(unknown)} do not apply to {self.description}; its options: {', '.join(self.options)}")
        return self.run(checkpoint, data, **options)


PAIRED = Evaluation("paired", "paired translation (L1 / PSNR against targets, with baselines)", ("mode", "direction", "limit"),
                    evaluate_paired, _paired_report, PairedValidator)
SUPER_RESOLUTION = Evaluation("super_resolution", "super-resolution (PSNR / SSIM against HR images, with bicubic)",
                              ("tile", "limit"), evaluate_sr, _sr_report, SuperResolutionValidator)
GENERATION = Evaluation("generation", "generation (FID / KID / diversity of samples against real images)", ("n", "features", "classifier"),
                        evaluate_generation, _generation_report, GenerationValidator)
