"""Exports: a trained generator as a generator-only i2i file or model folder (written by
:func:`i2i.checkpoint.write_export`), or as ONNX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .checkpoint import CheckpointError, write_export
from .config import config_to_dict
from .loading import load_generator
from .runtimes import onnx_graph
from .translator import Translator

__all__ = ["export_generator", "export_onnx", "onnx_metadata", "write_export"]


def export_generator(checkpoint: str | Path, output: str | Path, *, direction: str | None = None, use_ema: bool = True,
                     folder: bool = False) -> Path:
    """Write the generator of ``checkpoint`` (a translation direction, or a generation model's
    sampler; EMA weights when present unless ``use_ema`` is False) as an export: a ``.pt``
    file, or with ``folder`` a model folder (``config.json`` + ``model.safetensors``) that
    ``Translator.from_pretrained`` / ``Generator.from_pretrained`` load."""
    g = load_generator(checkpoint, direction=direction, use_ema=use_ema)
    return write_export(output, g.net, config=config_to_dict(g.cfg), pipeline=g.cfg.pipeline, name=g.name,
                        direction=g.direction, step=g.step, weights=g.weights, folder=folder)


def export_onnx(checkpoint: str | Path, output: str | Path, *, direction: str | None = None, opset: int = 18,
                check: bool = True) -> dict[str, Any]:
    """Write a translation generator as ONNX with dynamic batch, height and width (inputs must
    still be multiples of the net's size multiple), then, with ``check``, run it in
    onnxruntime on a random input of another size and compare with PyTorch. Needs the
    ``onnx`` extra. Returns ``{"path", "max_abs_diff"}``."""
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
    onnx_graph(tr.net, (1, tr.in_channels, 2 * m, 2 * m), tmp, opset=opset)
    _add_onnx_metadata(tmp, onnx_metadata(tr, g.weights))
    tmp.replace(output)
    result: dict[str, Any] = {"path": str(output), "max_abs_diff": None}
    if check:
        import onnxruntime as ort  # the onnx extra

        x = torch.rand(2, tr.in_channels, 3 * m, m) * 2 - 1
        sess = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])
        with torch.no_grad():
            ref = tr.net(x)
        result["max_abs_diff"] = float((got - ref).abs().max())
    return result


def onnx_metadata(tr: Any, weights: str) -> dict[str, str]:
    """What an ONNX consumer needs to feed and read the model, stored as the file's
    ``metadata_props`` (and shown by ``i2i info``)."""
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
