"""Feature networks for FID / KID / IS and diversity: pooled pixels, torchvision's Inception,
the standard FID Inception (pytorch-fid's port of the TF graph), a user's ONNX feature model,
and a user's ONNX classifier for class coverage. Weights come from local files only."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..hints import first_line
from ..weights import CheckpointError, imagenet_normalize, load_state_file, torchvision_cached_weights

INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"  # torchvision's Inception_V3_Weights.IMAGENET1K_V1
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's port of the TF FID Inception
FID_INCEPTION_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_INCEPTION_FILE}"


class _PixelFeatures(torch.nn.Module):
    """8x8 average-pooled pixels as features: a domain-agnostic sanity baseline."""

    description = "8x8 pooled pixels (a sanity baseline; not comparable with published FIDs)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x.float(), 8).flatten(1)


def _load_into(net: torch.nn.Module, path: str, what: str) -> None:
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

    description = ("torchvision ImageNet Inception-v3 (inception_v3_google-0cc3c7bd.pth): FIDs NOT comparable with "
                   "papers, "
                   "which use the TF FID Inception ('fid-inception')")

    def __init__(self, path: str) -> None:
        super().__init__()
        from torchvision.models import inception_v3  # torchvision imports torch._dynamo (~1.5 s): only where used

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        _load_into(net, path, "torchvision's Inception-v3 weights")
        self.fc, net.fc = net.fc, torch.nn.Identity()
        self.net = net.eval()

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.net(imagenet_normalize(_to_inception_input(x)))
        return f, self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]


class FIDInception(torch.nn.Module):
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
        # imports torchvision
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
        from torchvision.models import inception_v3  # torchvision imports torch._dynamo (~1.5 s): only where used

        net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = FIDInceptionA(192, 32), FIDInceptionA(256, 64), FIDInceptionA(288,
                                                                                                                 64)
        net.Mixed_6b, net.Mixed_6c = FIDInceptionC(768, channels_7x7=128), FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d, net.Mixed_6e = FIDInceptionC(768, channels_7x7=160), FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b, net.Mixed_7c = FIDInceptionE_1(1280), FIDInceptionE_2(2048)
        return net

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, x = self.net, _to_inception_input(x)
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1, n.Conv2d_4a_3x3,
                      n.maxpool2,
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
            import onnxruntime as ort  # the onnx extra: imported when a user's model is given
        except ImportError:
            raise ImportError("ONNX feature models need onnxruntime: pip install 'i2i[onnx]'") from None
        try:
            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for damaged or foreign files
            raise ValueError(f"feature model '{path}' cannot be read as ONNX ({type(e).__name__}: "
                             f"{str(e)[:160]})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
            got = ", ".join(f"{i.type} of rank {len(i.shape)}" for i in inputs)
            raise ValueError(f"feature model '{path}' takes {got}; i2i feeds it one float32 (N, C, H, W) batch of "
                             "images in [-1, 1]: "
                             "export it with that input")
        self.input_name, self.path = inputs[0].name, path
        self.description = f"the feature model {path} (FIDs compare only with FIDs on the same model)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        if getattr(out, "ndim", 0) < 2 or out.shape[0] != x.shape[0]:
            raise ValueError(f"feature model '{self.path}' gave an output of shape {getattr(out, 'shape', ())} for "
                             f"{x.shape[0]} images; "
                             "it must give (N, D) features, one row per image")
        if not np.isfinite(out).all():
            raise ValueError(f"feature model '{self.path}' gave NaN or infinite features for some images; FID and KID "
                             "cannot be "
                             "computed from them: fix or re-export the model")
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
    def choose(value: str) -> str:
        value = value if len(value) <= 200 else value[:200] + "..."
        return f"{option}: {value}" if option else f"features={value!r} (--features {value})"

    otherwise = f"or choose {choose('pixels')} or a path to an ONNX feature model of your domain"
    if spec == "pixels":
        return _PixelFeatures()
    if spec == "fid-inception":
        return FIDInception(torchvision_cached_weights(
            FID_INCEPTION_FILE, url=FID_INCEPTION_URL, needed_for="FID/KID/IS with the standard FID Inception",
            otherwise=f"or run 'i2i download weights fid-inception', {otherwise}"))
    if spec == "inception":
        return _Inception(torchvision_cached_weights(
            INCEPTION_FILE, needed_for="FID/KID with Inception (torchvision's ImageNet Inception-v3)",
            otherwise=otherwise))
    if not os.path.isfile(spec):
        raise FileNotFoundError(f"{choose(spec)}: not one of {', '.join(FEATURES)} or an existing .onnx feature model")
    if not spec.lower().endswith(".onnx"):
        raise ValueError(
            f"{choose(spec)}: feature models are read as ONNX only. PyTorch program files (.pt2, TorchScript .pt) "
            "can hold "
            "pickled objects that run code when loaded, so i2i does not open them; export the model with "
            "torch.onnx.export(model, example, 'features.onnx', dynamo=True, dynamic_shapes=...) and pass the .onnx")
    return _OnnxFeatures(spec)


def load_classifier(path: str, option: str = "--classifier") -> torch.nn.Module:
    """A user's classifier for class coverage: an ONNX graph mapping ``(N, C, H, W)`` images in
    [-1, 1] to ``(N, K)`` class logits (run by onnxruntime: opening it runs no code). Its
    classes must be in the order of the class folders (sorted names), which is the order of
    a conditional model's labels."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{option} '{path}': no such file (an ONNX classifier of your domain)")
    if not path.lower().endswith(".onnx"):
        raise ValueError(f"{option} '{path}': classifiers are read as ONNX only (a PyTorch file can run code when "
                         "opened); "
                         "export it with torch.onnx.export(model, example, 'classifier.onnx', dynamo=True, "
                         "dynamic_shapes=...)")
    model = _OnnxFeatures(path)
    model.description = f"the classifier {path}"
    return model


@torch.inference_mode()
def extract_features(extractor: torch.nn.Module, images: torch.Tensor, device: torch.device | str = "cpu",
                     batch_size: int = 64) -> torch.Tensor:
    """``(N, D)`` features (on the CPU) of ``(N, C, H, W)`` images, computed in batches on ``device``."""
    return extract_features_and_logits(extractor, images, device, batch_size)[0]


@torch.inference_mode()
def extract_features_and_logits(extractor: torch.nn.Module, images: torch.Tensor, device: torch.device | str = "cpu",
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


