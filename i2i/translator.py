"""Inference: :class:`Translator` runs a trained generator on arrays, PIL images,
tensors, files and folder trees. Everything it needs comes from the checkpoint's config.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import Config, config_from_dict, config_to_dict
from .data.io import (
    from_tensor,
    read_image,
    to_channels,
    to_tensor,
)
from .engine.checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint
from .nets.blocks import set_test_mode, size_multiple
from .registry import pipeline_class


def _device(spec: str | torch.device) -> torch.device:
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def _generator_weights(data: dict[str, Any], name: str) -> dict[str, torch.Tensor]:
    """The weights inference should use: the EMA copy when the checkpoint has one."""
    return data.get("ema", {}).get(name) or data["nets"][name]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(N, C, H, W)`` on the bottom/right to multiples of ``multiple``.

    Reflection padding where the image is large enough, edge replication otherwise
    (e.g. a 100-pixel image padded to 256). Returns the padded tensor and ``(H, W)``.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def receptive_radius(net: nn.Module, in_channels: int, scale: int = 1, probe: int = 129, multiple: int = 1) -> int | None:
    """How many input pixels on each side influence one output pixel of a convolutional
    ``net`` (measured with gradients on random inputs), or None when the influence reaches
    the edge of the test image (e.g. a U-Net: no exact tiling then). The test image is
    ``probe`` pixels rounded up to ``multiple``."""
    probe = -(-probe // multiple) * multiple
    c = probe // 2
    reach = 0
    was_training = net.training
    net.eval()
    try:
        for seed in (0, 1):
            g = torch.Generator().manual_seed(seed)
            p = next(net.parameters())
            with torch.inference_mode(False), torch.enable_grad():  # callable from inside inference code
                x = (torch.rand(1, in_channels, probe, probe, generator=g) * 2 - 1).to(p.device, p.dtype).requires_grad_(True)
                y = net(x)
                y[:, :, c * scale : (c + 1) * scale, c * scale : (c + 1) * scale].sum().backward()
            nz = (x.grad.abs().sum((0, 1)) > 0).nonzero()
            reach = max(reach, int((nz - c).abs().max()))
    finally:
        net.train(was_training)
    return None if reach >= c - 1 else reach


@dataclass
class ConvertSummary:
    """Outcome of :meth:`Translator.convert_folder`."""

    converted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


class Translator:
    """A generator ready for inference.

    ``mode``: ``eval`` (running statistics, no dropout) or ``paper`` (pix2pix's test-time
    batch statistics and dropout; dropout masks are reproducible from ``seed``). Images
    of any size are padded to the generator's multiple and cropped back.
    """

    def __init__(
        self,
        net: nn.Module,
        cfg: Config,
        *,
        direction: str,
        mode: str = "eval",
        device: str | torch.device = "auto",
        seed: int = 0,
        tile: int | None = None,
        precision: str = "fp32",
    ) -> None:
        self.cfg = cfg
        self.direction = direction
        self.mode = mode
        self.seed = seed
        self.device = _device(device)
        self.net = net.to(self.device)
        net.requires_grad_(False)
        set_test_mode(net, mode)
        self.in_channels = getattr(net, "in_channels", cfg.model.generator.in_channels)
        self.out_channels = getattr(net, "out_channels", cfg.model.generator.out_channels)
        self.size_multiple = size_multiple(net)
        self.scale = int(getattr(net, "scale", 1))
        if tile is not None and mode == "paper":
            raise ValueError("tiling needs test.mode 'eval': paper mode normalises with each tile's own batch statistics")
        if tile is not None and tile < 1:
            raise ValueError(f"tile={tile} must be a positive number of input pixels")
        self.tile = tile
        self._context: int | None = None
        dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if precision not in dtypes:
            raise ValueError(f"precision {precision!r} must be one of {', '.join(dtypes)}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        self.amp_dtype = dtypes[precision]
        if self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        direction: str | None = None,
        mode: str | None = None,
        device: str | torch.device = "auto",
        seed: int = 0,
        tile: int | None = None,
        precision: str = "fp32",
    ) -> Translator:
        """Load a training checkpoint or an export. ``direction`` defaults to the pipeline's
        trained direction; ``mode`` to the config's ``test.mode``; ``tile`` (input pixels)
        processes large images in tiles (see :meth:`translate_tensor`)."""
        data = load_checkpoint(path)
        cfg = config_from_dict(data["config"])
        pipe = pipeline_class(cfg.pipeline)
        direction = direction or data.get("direction") or pipe.default_direction(cfg)
        if direction not in pipe.directions:
            raise CheckpointError(f"'{path}' ({cfg.pipeline}) has no direction {direction!r}; it offers {', '.join(pipe.directions)}")
        name = pipe.directions[direction]
        if name not in data["nets"]:
            raise CheckpointError(f"'{path}' does not hold generator {name!r} for {direction}; it holds {', '.join(data['nets'])}")
        net = pipe.build_net(cfg, name)
        load_state_strict(net, _generator_weights(data, name), what=name, source=path)
        return cls(net, cfg, direction=direction, mode=mode or cfg.test.mode, device=device, seed=seed, tile=tile,
                   precision=precision)

    @classmethod
    def untrained(
        cls, cfg: Config, *, direction: str | None = None, mode: str | None = None, device: str | torch.device = "auto"
    ) -> Translator:
        """The freshly initialised generator of ``cfg`` (seeded by ``cfg.seed``): a baseline."""
        pipe = pipeline_class(cfg.pipeline)
        direction = direction or pipe.default_direction(cfg)
        torch.manual_seed(cfg.seed)
        nets = pipe(cfg).nets  # build all nets in training order so the seed gives the trained run's init
        return cls(nets[pipe.directions[direction]], cfg, direction=direction, mode=mode or cfg.test.mode, device=device)

    # ------------------------------------------------------------------ tensors
    @contextlib.contextmanager
    def _rng(self) -> Iterator[None]:
        """In paper mode, dropout masks come from ``seed`` without disturbing the global RNG."""
        if self.mode != "paper":
            yield
            return
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            yield

    @property
    def tile_context(self) -> int | None:
        """Input pixels of context around each tile: the net's receptive radius rounded up to
        its size multiple (tiles then equal whole-image inference), or None when every output
        pixel depends on the whole image (U-Net): tiles are then overlapped and blended."""
        if self._context is None:
            r = receptive_radius(self.net, self.in_channels, self.scale, multiple=self.size_multiple)
            m = self.size_multiple
            self._context = -1 if r is None else -(-r // m) * m
        return None if self._context < 0 else self._context

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        xp, (h, w) = pad_to_multiple(x.to(self.device, torch.float32), self.size_multiple)
        if self.device.type == "cuda":
            xp = xp.contiguous(memory_format=torch.channels_last)
        with self._rng(), torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            y = self.net(xp)
        return y[:, :, : h * self.scale, : w * self.scale].float()

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, scale*H, scale*W)`` (any H, W).

        With ``tile``, the image is processed in ``tile x tile`` pieces, each with
        :attr:`tile_context` pixels of its real neighbourhood, and assembled on the CPU:
        device memory is bounded by the tile, and for fully convolutional nets the result
        equals whole-image inference (up to float summation order).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a (N, {self.in_channels}, H, W) tensor, got shape {tuple(x.shape)}")
        if self.mode == "paper" and x.shape[0] > 1:
            # Batch statistics and dropout masks per image, so results never depend on batching.
            return torch.cat([self.translate_tensor(x[i : i + 1]) for i in range(x.shape[0])])
        h, w = x.shape[-2:]
        t = self.tile
        if t is None or (h <= t and w <= t):
            return self._run(x)
        s, ctx = self.scale, self.tile_context
        if ctx is None:
            return self._blend_tiles(x, t)
        t = -(-t // self.size_multiple) * self.size_multiple  # tiles on the net's stride grid
        out = torch.empty(x.shape[0], self.out_channels, h * s, w * s)
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                py0, px0, py1, px1 = max(0, y0 - ctx), max(0, x0 - ctx), min(h, y1 + ctx), min(w, x1 + ctx)
                piece = self._run(x[:, :, py0:py1, px0:px1])
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = piece[:, :, oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s].cpu()
        return out

    def _blend_tiles(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """Overlapping ``t``-pixel tiles (overlap t/4) blended with linear ramps, for nets whose
        output depends on the whole image: no seams, close to (not equal to) whole-image output."""
        h, w = x.shape[-2:]
        s, overlap = self.scale, max(t // 4, 1)
        step = t - overlap

        def starts(n: int) -> list[int]:
            return sorted({min(p, max(n - t, 0)) for p in range(0, max(n - overlap, 1), step)})

        out = torch.zeros(x.shape[0], self.out_channels, h * s, w * s)
        weight = torch.zeros(1, 1, h * s, w * s)
        for y0 in starts(h):
            for x0 in starts(w):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                piece = self._run(x[:, :, y0:y1, x0:x1]).cpu()

                def ramp(n: int, lo_edge: bool, hi_edge: bool) -> torch.Tensor:
                    r = torch.ones(n)
                    k = min(overlap * s, n)
                    ramp_up = torch.linspace(1.0 / k, 1.0, k)
                    if not lo_edge:
                        r[:k] = torch.minimum(r[:k], ramp_up)
                    if not hi_edge:
                        r[-k:] = torch.minimum(r[-k:], ramp_up.flip(0))
                    return r

                wy = ramp((y1 - y0) * s, y0 == 0, y1 == h)
                wx = ramp((x1 - x0) * s, x0 == 0, x1 == w)
                win = (wy[:, None] * wx[None, :])[None, None]
                out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] += piece * win
                weight[:, :, y0 * s : y1 * s, x0 * s : x1 * s] += win
        return out / weight

    # ------------------------------------------------------------------ any image kind
    def __call__(self, image: Any) -> Any:
        """Translate one image and return the same kind.

        numpy ``(H, W[, C])`` uint8/uint16 (RGB order; alpha carried through) -> numpy of the
        same dtype; PIL image -> PIL image; tensor ``(C, H, W)`` or ``(N, C, H, W)`` float in
        [-1, 1] -> tensor of the same layout on the input's device.
        """
        if isinstance(image, torch.Tensor):
            single = image.dim() == 3
            x = image[None] if single else image
            y = self.translate_tensor(x).to(image.device)
            return y[0] if single else y
        if isinstance(image, np.ndarray):
            return self._translate_array(image)
        if type(image).__module__.startswith("PIL."):
            return self._translate_pil(image)
        raise TypeError(f"cannot translate a {type(image).__name__}; pass a numpy array, a PIL image or a torch tensor")

    def _translate_array(self, img: np.ndarray) -> np.ndarray:
        return self.translate_arrays([img])[0]

    def translate_arrays(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Translate same-size ``(H, W[, C])`` uint8/uint16 arrays in one batch; each result
        keeps its input's dtype, and alpha is carried through (upscaled for SR).
        Results equal one-by-one translation (paper mode is run per image)."""
        xs, meta = [], []
        for img in images:
            if img.dtype not in (np.uint8, np.uint16):
                raise TypeError(f"numpy images must be uint8 or uint16, got {img.dtype}")
            img3 = img[:, :, None] if img.ndim == 2 else img
            alpha = img3[:, :, 3:4] if img3.shape[2] == 4 else None
            xs.append(to_tensor(to_channels(img3, self.in_channels)))
            meta.append((img.dtype, img.ndim == 2, alpha))
        ys = self.translate_tensor(torch.stack(xs))
        outs = []
        for y, (dtype, squeeze, alpha) in zip(ys, meta):
            out = from_tensor(y, dtype)
            if alpha is not None and self.out_channels == 3:
                if self.scale > 1:
                    alpha = np.repeat(np.repeat(alpha, self.scale, 0), self.scale, 1)
                out = np.concatenate([out, alpha], axis=2)
            outs.append(out[:, :, 0] if squeeze and out.shape[2] == 1 else out)
        return outs

    def _translate_pil(self, image: Any) -> Any:
        from PIL import Image

        arr = np.asarray(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = arr.astype(np.uint16)
        elif arr.dtype != np.uint8:
            arr = np.asarray(image.convert("RGB"))
        out = self._translate_array(arr)
        if out.ndim == 3 and out.shape[2] == 1:
            out = out[:, :, 0]
        if out.dtype == np.uint16:
            return Image.fromarray(out if out.ndim == 2 else (out >> 8).astype(np.uint8))
        return Image.fromarray(out)

    # ------------------------------------------------------------------ files
    def convert_file(self, src: str | Path, dst: str | Path, *, bit_depth: str = "same") -> Path:
        """Read ``src``, translate, write ``dst`` atomically (see :func:`i2i.convert.encode`)."""
        from .convert import write_output

        return write_output(dst, self._translate_array(read_image(src)), bit_depth=bit_depth)

    def convert_folder(self, input_path: str | Path, output_dir: str | Path, **options: Any) -> ConvertSummary:
        """Translate an image, a folder tree, or the files named in a ``.txt`` list into
        ``output_dir``; see :func:`i2i.convert.plan_jobs` and :func:`i2i.convert.run_jobs`
        for the options (``ext``, ``name``, ``skip_existing``, ``batch_size``, ``workers``,
        ``bit_depth``, ``allow_inside_input``, ``progress``)."""
        from .convert import convert_path

        return convert_path(self, input_path, output_dir, **options)


def export_generator(checkpoint: str | Path, output: str | Path, *, direction: str | None = None) -> Path:
    """Write a generator-only file (weights + config + direction) from a checkpoint."""
    tr = Translator.from_checkpoint(checkpoint, direction=direction, device="cpu")
    data = load_checkpoint(checkpoint)
    name = pipeline_class(tr.cfg.pipeline).directions[tr.direction]
    return save_checkpoint(
        output,
        {
            "kind": "export",
            "pipeline": tr.cfg.pipeline,
            "config": config_to_dict(tr.cfg),
            "direction": tr.direction,
            "nets": {name: {k: v.detach().cpu() for k, v in tr.net.state_dict().items()}},
            "step": data.get("step", 0),
        },
    )


def export_onnx(checkpoint: str | Path, output: str | Path, *, direction: str | None = None, opset: int = 18,
                check: bool = True) -> dict[str, Any]:
    """Write the generator as ONNX with dynamic batch, height and width (inputs must still be
    multiples of the net's size multiple), then, with ``check``, run it in onnxruntime on a
    random input of another size and compare with PyTorch. Needs the ``onnx`` extra.
    Returns ``{"path", "max_abs_diff"}``."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("ONNX export needs the onnx extra: pip install 'i2i[onnx]'") from None
    tr = Translator.from_checkpoint(checkpoint, direction=direction, device="cpu", mode="eval")
    m = max(tr.size_multiple, 8)
    dummy = torch.rand(1, tr.in_channels, 2 * m, 2 * m) * 2 - 1
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    batch, height, width = torch.export.Dim("batch", max=64), torch.export.Dim("height"), torch.export.Dim("width")
    torch.onnx.export(
        tr.net, (dummy,), str(tmp), input_names=["image"], output_names=["output"], opset_version=opset, dynamo=True,
        dynamic_shapes={"x": {0: batch, 2: height, 3: width}}, external_data=False,
    )
    tmp.replace(output)
    result: dict[str, Any] = {"path": str(output), "max_abs_diff": None}
    if check:
        import onnxruntime as ort

        x = torch.rand(2, tr.in_channels, 3 * m, m) * 2 - 1
        sess = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])
        with torch.no_grad():
            ref = tr.net(x)
        result["max_abs_diff"] = float((got - ref).abs().max())
    return result


def describe(path: str | Path) -> str:
    """Human-readable summary of an i2i checkpoint or export: kind, pipeline, nets with
    parameter counts, step, versions and the config."""
    from .config import dump_config

    data = load_checkpoint(path)
    cfg = config_from_dict(data["config"])
    lines = [
        f"file:        {path}",
        f"kind:        {data.get('kind')} (format {data.get('format')} v{data.get('format_version')}, "
        f"written by i2i {data.get('i2i_version')})",
        f"pipeline:    {cfg.pipeline}" + (f", direction {data['direction']}" if data.get("direction") else ""),
        f"step:        {data.get('step', 0)}" + (f" (epoch {data['epoch']})" if "epoch" in data else ""),
    ]
    if data.get("source"):
        lines.append(f"imported:    {data['source']}")
    for name, sd in data["nets"].items():
        n = sum(t.numel() for k, t in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        lines.append(f"net {name:<7} {n:>12,} parameters ({len(sd)} tensors)")
    if data.get("kind") == "training":
        extra = ", ".join(data.get("pipeline_state", {})) or "none"
        lines.append(f"optimizers:  {', '.join(data.get('optimizers', {}))}; pipeline state: {extra}")
    lines += ["config:", *("  " + ln for ln in dump_config(cfg).splitlines())]
    return "\n".join(lines)
