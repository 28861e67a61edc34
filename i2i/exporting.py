"""Exports: a trained generator as a generator-only i2i file or model folder (written by
:func:`i2i.checkpoint.write_export`), or as ONNX."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ._version import __version__
from .checkpoint import CheckpointError, write_export
from .compat.spandrel import spandrel, spandrel_state
from .config import config_to_dict
from .files import atomic_write_bytes
from .loading import load_generator
from .runtimes import onnx_graph
from .translator import Translator

__all__ = ["PROFILES", "export_generator", "export_ncnn", "export_onnx", "export_spandrel", "onnx_metadata",
           "write_export"]

PROFILES = ("i2i", "chainner")
"""ONNX profiles: ``i2i`` (input ``image``, values in [-1, 1], i2i's metadata) and ``chainner`` (input
``input``, values in [0, 1] in and out, what chaiNNer and the ncnn/Vulkan upscalers expect)."""


def export_generator(checkpoint: str | Path, output: str | Path, *, direction: str | None = None, use_ema: bool = True,
                     folder: bool = False) -> Path:
    """Write the generator of ``checkpoint`` (a translation direction, or a generation model's
    sampler; EMA weights when present unless ``use_ema`` is False) as an export: a ``.pt``
    file, or with ``folder`` a model folder (``config.json`` + ``model.safetensors``) that
    ``Translator.from_pretrained`` / ``Generator.from_pretrained`` load."""
    g = load_generator(checkpoint, direction=direction, use_ema=use_ema)
    return write_export(output, g.net, config=config_to_dict(g.cfg), pipeline=g.cfg.pipeline, name=g.name,
                        direction=g.direction, step=g.step, weights=g.weights, folder=folder)


class UnitRange(nn.Module):
    """An i2i net on [0, 1] values: ``(N, C, H, W)`` in [0, 1] -> its output mapped to [0, 1], clamped."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((self.net(x * 2 - 1) + 1) / 2).clamp(0, 1)


def export_onnx(checkpoint: str | Path, output: str | Path, *, direction: str | None = None, opset: int = 18,
                check: bool = True, profile: str = "i2i") -> dict[str, Any]:
    """Write a translation generator as ONNX with dynamic batch, height and width (inputs must
    still be multiples of the net's size multiple), then, with ``check``, run it in
    onnxruntime on a random input of another size and compare with PyTorch. ``profile``: one of
    :data:`PROFILES`. Needs the ``onnx`` extra. Returns ``{"path", "max_abs_diff"}``."""
    if profile not in PROFILES:
        raise ValueError(f"ONNX profile {profile!r} (--profile) must be one of {', '.join(PROFILES)}")
    try:
        import onnx  # noqa: F401  (an optional extra: imported when used)
    except ImportError:
        raise ImportError("ONNX export needs the onnx extra: pip install 'i2i[onnx]'") from None
    g = load_generator(checkpoint, direction=direction)
    if g.pipeline.kind != "translation":
        raise CheckpointError(f"'{checkpoint}' is a {g.cfg.pipeline} {g.pipeline.kind} model; ONNX export covers "
                              "image-to-image "
                              "generators (export it as an i2i file instead: i2i export CKPT -o model.pt)")
    tr = Translator(g.net, g.cfg, direction=g.direction, device="cpu", mode="eval")
    m = max(tr.size_multiple, 8)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    unit = profile == "chainner"
    net = UnitRange(tr.net) if unit else tr.net
    onnx_graph(net, (1, tr.in_channels, 2 * m, 2 * m), tmp, opset=opset, input_name="input" if unit else "image")
    _add_onnx_metadata(tmp, onnx_metadata(tr, g.weights, profile=profile))
    tmp.replace(output)
    result: dict[str, Any] = {"path": str(output), "max_abs_diff": None, "in_channels": tr.in_channels,
                              "size_multiple": m, "scale": tr.scale}
    if check:
        import onnxruntime as ort  # the onnx extra

        x = torch.rand(2, tr.in_channels, 3 * m, m) * (1 if unit else 2) - (0 if unit else 1)
        sess = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])
        with torch.no_grad():
            ref = net(x)
        result["max_abs_diff"] = float((got - ref).abs().max())
    return result


def export_spandrel(checkpoint: str | Path, output: str | Path, *, direction: str | None = None,
                    use_ema: bool = True, check: bool = True) -> dict[str, Any]:
    """Write an RRDBNet or SRVGG (nearest base) generator as the state dict Spandrel loads as ESRGAN
    or RealESRGAN Compact (chaiNNer, ComfyUI, ...): ``.pth`` (plain tensors) or ``.safetensors`` by
    ``output``'s suffix. Other nets are refused with the reason, before anything is written. With
    ``check`` and Spandrel installed, the written file is loaded by Spandrel and its forward compared
    with i2i's on a random [0, 1] image. Returns ``{"path", "architecture", "scale", "max_abs_diff"}``."""
    output = Path(output)
    if output.suffix.lower() not in (".pth", ".safetensors"):
        raise ValueError(f"'{output}': a Spandrel file ends in .pth or .safetensors")
    g = load_generator(checkpoint, direction=direction, use_ema=use_ema, kind="translation", purpose="export")
    try:
        arch, state = spandrel_state(g.net)
    except ValueError as e:
        raise CheckpointError(f"'{checkpoint}' ({g.cfg.pipeline}, {type(g.net).__name__}) cannot be exported for "
                              f"Spandrel: {e}") from None
    if output.suffix.lower() == ".safetensors":
        data = safetensors_bytes(state)
    else:
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(output, data)
    result: dict[str, Any] = {"path": str(output), "architecture": arch, "scale": int(g.net.scale),
                              "max_abs_diff": None}
    try:
        sp = spandrel() if check else None
    except ImportError:  # the file is still what Spandrel reads; checking it needs Spandrel
        sp = None
    if sp is not None:
        loaded = torch.load(output, weights_only=True) if output.suffix.lower() == ".pth" else state
        try:
            descriptor = sp.ModelLoader().load_from_state_dict(loaded).eval()
        except Exception as e:  # noqa: BLE001 - whatever Spandrel raises, the file is no good to its users
            output.unlink()
            raise CheckpointError(f"Spandrel cannot load the exported {arch} ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:200]}); nothing was written") from None
        x = torch.rand(1, g.net.in_channels, 24, 24)
        with torch.no_grad():
            ref = ((g.net.eval()(x * 2 - 1) + 1) / 2).clamp(0, 1)
        result["max_abs_diff"] = float((descriptor(x) - ref).abs().max())
        result["spandrel_architecture"] = descriptor.architecture.name
    return result


def onnx_metadata(tr: Any, weights: str, profile: str = "i2i") -> dict[str, str]:
    """What an ONNX consumer needs to feed and read the model, stored as the file's
    ``metadata_props`` (and shown by ``i2i info``)."""
    if profile == "chainner":
        return {**onnx_metadata(tr, weights), "profile": "chainner",
                "input": f"input: float32 (N, {tr.in_channels}, H, W), NCHW",
                "output": f"output: float32 (N, {tr.out_channels}, {tr.scale}H, {tr.scale}W)",
                "value_range": "[0, 1] in and out: x = pixel / 255 for 8-bit images; output clamped to [0, 1]"}
    return {
        "i2i_version": __version__,
        "pipeline": tr.cfg.pipeline,
        "direction": str(tr.direction),
        "weights": weights,
        "input": f"image: float32 (N, {tr.in_channels}, H, W), {'RGB' if tr.in_channels == 3 else 'gray'}, NCHW",
        "output": f"output: float32 (N, {tr.out_channels}, {tr.scale}H, {tr.scale}W)" if tr.scale > 1
        else f"output: float32 (N, {tr.out_channels}, H, W)",
        "value_range": "[-1, 1] in and out: x = pixel / 127.5 - 1 for 8-bit images; pixel = (y + 1) * 127.5, clipped",
        "size_multiple": str(tr.size_multiple),
        "size_note": f"H and W must be multiples of {tr.size_multiple}: pad (reflect) and crop the output back",
        "scale": str(tr.scale),
        "i2i_config": json.dumps(config_to_dict(tr.cfg)),
    }


def _add_onnx_metadata(path: Path, props: dict[str, str]) -> None:
    import onnx  # the onnx extra

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))


NCNN_BLOBS = {"in0": "data", "out0": "output"}
"""pnnx's blob names -> those realesrgan-ncnn-vulkan and Upscayl feed and read."""


def export_ncnn(checkpoint: str | Path, output: str | Path, *, direction: str | None = None,
                check: bool = True) -> dict[str, Any]:
    """Write a translation generator as an ncnn model, ``OUTPUT.param`` + ``OUTPUT.bin`` (fp32
    weights), as realesrgan-ncnn-vulkan and Upscayl load it: input blob ``data`` and output blob
    ``output``, RGB in [0, 1], any height and width (multiples of the net's size multiple). Made by
    pnnx from the ``chainner`` ONNX profile; with ``check``, ncnn runs it on a random image of
    another size and it is compared with PyTorch. Needs the ``ncnn`` extra. Returns ``{"param",
    "bin", "max_abs_diff"}``."""
    try:
        import pnnx  # the ncnn extra: pnnx converts, ncnn checks
    except ImportError:
        raise ImportError("ncnn export needs the ncnn extra: pip install 'i2i[ncnn]'") from None
    base = Path(output)
    base = base.with_suffix("") if base.suffix in (".param", ".bin") else base
    param, weights = base.with_name(base.name + ".param"), base.with_name(base.name + ".bin")
    base.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base.parent, prefix=".ncnn-") as tmp:
        work = Path(tmp)
        onnx = export_onnx(checkpoint, work / "model.onnx", direction=direction, profile="chainner", check=False)
        c, m = onnx["in_channels"], onnx["size_multiple"]
        args = [pnnx.EXEC_PATH, str(work / "model.onnx"), f"inputshape=[1,{c},{2 * m},{2 * m}]",
                f"inputshape2=[1,{c},{3 * m},{2 * m}]", "fp16=0", f"ncnnparam={work / 'model.param'}",
                f"ncnnbin={work / 'model.bin'}", *(f"{k}={work / ('x.' + k)}" for k in
                                                   ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx", "ncnnpy"))]
        r = subprocess.run(args, capture_output=True, text=True, cwd=work)
        if r.returncode != 0 or not (work / "model.param").is_file():
            raise CheckpointError(f"pnnx could not convert '{checkpoint}' to ncnn (exit {r.returncode}): "
                                  f"{(r.stderr or r.stdout).strip()[-300:]}")
        text = (work / "model.param").read_text()
        (work / "model.param").write_text(re.sub(r"(?<=\s)(in0|out0)(?=\s|$)", lambda t: NCNN_BLOBS[t[1]], text))
        diff = _check_ncnn(work, checkpoint, direction, c, m) if check else None
        os.replace(work / "model.bin", weights)
        os.replace(work / "model.param", param)
    return {"param": str(param), "bin": str(weights), "max_abs_diff": diff, "scale": onnx["scale"]}


def _check_ncnn(work: Path, checkpoint: str | Path, direction: str | None, c: int, m: int) -> float:
    import ncnn  # the ncnn extra

    g = load_generator(checkpoint, direction=direction)
    x = torch.rand(1, c, 3 * m, 2 * m)
    with torch.no_grad():
        ref = UnitRange(g.net.eval())(x)[0]
    with ncnn.Net() as net:
        net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False
        net.load_param(str(work / "model.param"))
        net.load_model(str(work / "model.bin"))
        with net.create_extractor() as ex:
            ex.input("data", ncnn.Mat(x.numpy(), batch_index=0).clone())
            _, out = ex.extract("output")
            got = torch.from_numpy(out.numpy(batch_index=0).copy())
    if got.numel() != ref.numel():
        raise CheckpointError(f"ncnn gave {tuple(got.shape)} for {tuple(ref.shape)}; the converted model is wrong")
    return float((got.reshape(ref.shape) - ref).abs().max())
