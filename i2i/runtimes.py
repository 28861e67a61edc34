"""Runtimes: a generator run by eager PyTorch, ``torch.compile``, onnxruntime or OpenVINO.

:func:`build_runner` turns an ``nn.Module`` into a callable ``(N, C, H, W)`` float32 -> output
tensor (H and W multiples of the net's size multiple; the caller pads, tiles and crops, so tiles,
16-bit, alpha and batching work with every runtime). The ONNX graph that onnxruntime and OpenVINO
run is exported once per set of weights, with dynamic batch, height and width, and kept in the
runtime cache (``$I2I_CACHE_DIR`` or ``~/.cache/i2i``, folder ``runtimes``) under a hash of the
architecture and the weights; OpenVINO compiles it for each input shape it meets (static shapes are
what its CPU plugin runs fastest), keeping the last :data:`SHAPES_KEPT`. int8 is OpenVINO's
post-training quantization (NNCF) calibrated on images the caller gives. Knows nothing of configs,
checkpoints or images; the extras are imported only when their runtime is asked for.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import io
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .files import atomic_write_bytes, held_temp, publish

RUNTIMES = ("torch", "compile", "onnxruntime", "openvino")
"""Every runtime, in the order ``--runtime`` lists them."""

PRECISIONS = {"torch": ("fp32", "bf16", "fp16"), "compile": ("fp32", "bf16", "fp16"), "onnxruntime": ("fp32",),
              "openvino": ("fp32", "bf16", "int8")}
"""The precisions each runtime runs (fp16 with torch needs CUDA; OpenVINO's bf16 needs a CPU with bf16
instructions, elsewhere its CPU plugin runs fp32)."""

SHAPES_KEPT = 8
"""Compiled OpenVINO models kept, one per input shape (least recently used dropped first)."""

EXTRAS = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino")}

Runner = Callable[[torch.Tensor], torch.Tensor]


class RuntimeUnavailable(ImportError):
    """The package a runtime needs is not installed; the message names the extra to install."""


def cache_dir() -> Path:
    """The folder converted models are kept in: ``$I2I_CACHE_DIR/runtimes`` or ``~/.cache/i2i/runtimes``."""
    root = os.environ.get("I2I_CACHE_DIR") or Path.home() / ".cache" / "i2i"
    return Path(root).expanduser() / "runtimes"


def check_runtime(runtime: str, precision: str, device_type: str, mode: str) -> None:
    """Raise ``ValueError`` (naming the option) for a combination a runtime cannot run."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r} (--runtime) must be one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS[runtime]:
        where = [r for r in RUNTIMES if precision in PRECISIONS[r]]
        raise ValueError(f"precision {precision} (--precision) does not run with runtime {runtime}; it runs with "
                         f"{', '.join(where)} (runtime {runtime} runs {', '.join(PRECISIONS[runtime])})")
    if runtime in ("onnxruntime", "openvino") and device_type != "cpu":
        raise ValueError(f"runtime {runtime} runs on the CPU here; pass --device cpu (or runtime torch / compile "
                         f"on {device_type})")
    if runtime != "torch" and mode != "eval":
        raise ValueError(f"runtime {runtime} runs test.mode eval only (--mode eval): paper mode's batch statistics "
                         "and seeded dropout run with runtime torch")


def import_extra(runtime: str) -> Any:
    """The runtime's package, or :class:`RuntimeUnavailable` naming the extra that installs it."""
    package, extra = EXTRAS[runtime]
    try:
        return __import__(package)
    except ImportError:
        raise RuntimeUnavailable(f"runtime {runtime} needs the {extra} extra: pip install 'i2i[{extra}]'") from None


def weights_key(net: nn.Module, example: Sequence[int], opset: int) -> str:
    """A hash of everything the exported graph depends on: class, structure, weights, buffers,
    the example shape, the opset and the torch version."""
    h = hashlib.sha256(f"{type(net).__qualname__}|{net!r}|{tuple(example)}|{opset}|{torch.__version__}".encode())
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def onnx_graph(net: nn.Module, example: Sequence[int], path: Path, *, opset: int = 18,
               input_name: str = "image") -> Path:
    """Write ``net`` (in eval mode, on the CPU) as ONNX at ``path`` with dynamic batch, height and width
    (batch only for another input, such as DCGAN's ``(N, latent_dim)`` latents), traced on a zero
    tensor of shape ``example`` (N, C, H, W; H and W at least two size multiples, so no layer's size is
    fixed at 1)."""
    for package in ("onnx", "onnxscript"):  # what torch's ONNX exporter needs
        try:
            __import__(package)
        except ImportError:
            raise RuntimeUnavailable(f"writing ONNX needs {package}, part of the onnx and openvino extras: pip "
                                     "install 'i2i[onnx]'") from None
    cpu = copy.deepcopy(net).cpu().eval().to(memory_format=torch.contiguous_format).requires_grad_(False)
    dims = {0: torch.export.Dim("batch", max=64)}
    if len(example) == 4:
        dims.update({2: torch.export.Dim("height"), 3: torch.export.Dim("width")})
    argument = next(iter(inspect.signature(cpu.forward).parameters))
    with held_temp(path) as tmp, contextlib.redirect_stdout(io.StringIO()):
        try:
            torch.onnx.export(cpu, (torch.zeros(*example),), str(tmp), input_names=[input_name],
                              output_names=["output"], opset_version=opset, dynamo=True, external_data=False,
                              dynamic_shapes={argument: dims})
            publish(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def cached_onnx(net: nn.Module, example: Sequence[int], opset: int = 18) -> Path:
    """The runtime cache's ONNX graph of ``net`` (exported on first use; see :func:`onnx_graph`)."""
    path = cache_dir() / f"{type(net).__name__.lower()}-{weights_key(net, example, opset)}.onnx"
    if not path.is_file():
        onnx_graph(net, example, path, opset=opset)
    return path


def build_runner(net: nn.Module, runtime: str, *, example: Sequence[int], precision: str = "fp32",
                 calibration: Sequence[torch.Tensor] | None = None) -> Runner:
    """A callable running ``net`` with ``runtime`` (``compile``, ``onnxruntime`` or ``openvino``;
    ``torch`` is the caller's own eager path) on ``(N, C, H, W)`` float32 CPU tensors in the net's
    value range, returning float32 CPU tensors. ``example``: a valid input shape for the export;
    ``calibration``: input tensors ``(1, C, H, W)`` for OpenVINO int8 (required with ``precision="int8"``)."""
    if runtime == "compile":
        return _compiled(net)
    if runtime not in EXTRAS:
        raise ValueError(f"runtime {runtime!r} has no runner; one of {', '.join(RUNTIMES[1:])}")
    import_extra(runtime)  # a missing extra fails before the export's seconds
    load = _onnxruntime if runtime == "onnxruntime" else lambda p: _OpenVINO(p, precision, calibration)
    path = cached_onnx(net, example)
    try:
        return load(path)
    except (RuntimeUnavailable, ValueError):
        raise
    except Exception:  # a damaged cache entry (another tool, a disk error): exported again, once
        path.unlink(missing_ok=True)
        return load(cached_onnx(net, example))


def _compiled(net: nn.Module) -> Runner:
    import torch._inductor.config as inductor  # part of torch

    compiled = torch.compile(net, dynamic=False)

    def run(x: torch.Tensor) -> torch.Tensor:
        # freezing folds the (constant) weights into the graph: conv + norm fused, weights pre-packed
        with inductor.patch(freezing=True):
            return compiled(x)

    return run


def _onnxruntime(path: Path) -> Runner:
    ort = import_extra("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        out = session.run(None, {name: np.ascontiguousarray(x.detach().cpu().float().numpy())})[0]
        return torch.from_numpy(out)

    return run


class _OpenVINO:
    """OpenVINO's CPU plugin, one compiled model per input shape (the last :data:`SHAPES_KEPT`)."""

    def __init__(self, path: Path, precision: str, calibration: Sequence[torch.Tensor] | None) -> None:
        ov = import_extra("openvino")
        self.core = ov.Core()
        self.model = self.core.read_model(str(path))
        self.config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                       "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        if precision == "int8":
            self.model = quantized(self.model, path, calibration)
        self.compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def _for(self, shape: tuple[int, ...]) -> Any:
        if shape in self.compiled:
            self.compiled.move_to_end(shape)
            return self.compiled[shape]
        model = self.model.clone()
        model.reshape({model.inputs[0]: list(shape)})
        request = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        self.compiled[shape] = request
        if len(self.compiled) > SHAPES_KEPT:
            self.compiled.popitem(last=False)
        return request

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        request = self._for(tuple(x.shape))
        request.infer({0: np.ascontiguousarray(x.detach().cpu().float().numpy())})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())


def quantized(model: Any, path: Path, calibration: Sequence[torch.Tensor] | None) -> Any:
    """``model`` quantized to int8 by NNCF on the ``calibration`` inputs (the mixed preset: symmetric
    weights, asymmetric activations, which keeps the negative half of [-1, 1] images), cached beside
    the fp32 graph under a hash of the calibration inputs."""
    if not calibration:
        raise ValueError("precision int8 needs calibration images (--calibration FOLDER): a few of the "
                         "images you will convert")
    ov = import_extra("openvino")
    h = hashlib.sha256()
    for t in calibration:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    xml = path.with_name(f"{path.stem}-int8-{h.hexdigest()[:16]}.xml")
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return ov.Core().read_model(str(xml))
    try:
        import nncf  # the openvino extra
    except ImportError:
        raise RuntimeUnavailable("precision int8 needs NNCF, part of the openvino extra: pip install "
                                 "'i2i[openvino]'") from None
    data = [np.ascontiguousarray(t.detach().cpu().float().numpy()) for t in calibration]
    with contextlib.redirect_stdout(io.StringIO()):
        q = nncf.quantize(model, nncf.Dataset(data), preset=nncf.QuantizationPreset.MIXED, subset_size=len(data))
    with held_temp(xml, folder=True) as tmp:
        try:
            ov.save_model(q, str(tmp / "model.xml"), compress_to_fp16=False)
            atomic_write_bytes(xml.with_suffix(".bin"), (tmp / "model.bin").read_bytes())
            atomic_write_bytes(xml, (tmp / "model.xml").read_bytes())  # last: its presence says both are whole
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return q
