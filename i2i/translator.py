"""Inference: :class:`Translator` runs a trained translation generator on arrays, PIL images,
tensors, files and folder trees. Everything it needs comes from the checkpoint's config.

Loading lives in :mod:`i2i.loading`, padding and tiles in :mod:`i2i.tiling`, folder
conversion in :mod:`i2i.convert` (which knows nothing of translators), exports in
:mod:`i2i.exporting`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .checkpoint import CheckpointError, write_export
from .compat.spandrel import ForeignModel, load_foreign
from .config import Config, config_to_dict
from .convert import ConvertOptions, ConvertSummary, convert
from .convert.masks import composite, weights
from .convert.video import VideoOptions, VideoStats, convert_video
from .data.io import from_tensor, list_images, read_image, to_channels, to_tensor
from .dist import resolve_device
from .loading import foreign_state, load_generator, untrained_generator
from .nets.blocks import set_test_mode, size_multiple
from .recipes import pipeline_class
from .runtimes import Runner, build_runner, check_runtime
from .tiling import (
    SEAMLESS,
    blended_tiles,
    circular_copy,
    exact_tiles,
    pad_to_size,
    periodic_pad,
    receptive_radius,
    shift_equivariant,
)

MIN_TILE = 8
"""The smallest tile (input pixels): blended tiles overlap by a quarter of their side."""

CALIBRATION_IMAGES = 16
"""int8 calibration reads at most this many images of the folder (sorted), centre crops of at most
:data:`CALIBRATION_SIDE` pixels."""
CALIBRATION_SIDE = 256


class Translator:
    """A generator ready for inference.

    ``mode``: ``eval`` (running statistics, no dropout) or ``paper`` (pix2pix's test-time
    batch statistics and dropout; dropout masks are reproducible from ``seed``). Images
    of any size are padded to the generator's multiple and cropped back.

    ``runtime`` (:data:`i2i.runtimes.RUNTIMES`): ``torch`` (eager), ``compile`` (``torch.compile``
    with frozen weights; compiled once per input shape), ``onnxruntime`` or ``openvino`` (the CPU
    runtimes, eval mode; the net is exported to ONNX once and cached). ``precision``: ``fp32``,
    ``bf16``, ``fp16`` (CUDA) or ``int8`` (OpenVINO, calibrated on the images in ``calibration``,
    a folder). The model is built at the first image, so a wrong combination fails at once and a
    slow export only when used.

    ``seamless`` (:data:`i2i.tiling.SEAMLESS`): ``wrap`` makes outputs that tile like the input
    repeated (textures), ``mirror`` like the input mirror-repeated; exact where the receptive field is
    finite (the output equals the centre of a 3x3 mosaic's), by circular borders inside the net
    otherwise (U-Net; sizes must be multiples of the net's).
    """

    def __init__(
        self,
        net: nn.Module,
        cfg: Config | None,
        *,
        direction: str,
        mode: str = "eval",
        device: str | torch.device = "auto",
        seed: int = 0,
        tile: int | None = None,
        precision: str = "fp32",
        runtime: str = "torch",
        calibration: str | Path | None = None,
        foreign: ForeignModel | None = None,
        seamless: str | None = None,
    ) -> None:
        if cfg is None and foreign is None:
            raise ValueError("a Translator needs the net's config, or the foreign model it runs (Translator.from_file)")
        self.cfg, self.foreign = cfg, foreign
        # which weights the net holds: "ema", "raw", "untrained" or "given" (built by the caller)
        self.weights = "given"
        self.direction = direction
        self.mode = mode
        self.seed = seed
        self.device = resolve_device(device)
        self.net = net.to(self.device)
        net.requires_grad_(False)
        set_test_mode(net, mode)
        spec = cfg.model.generator if cfg is not None else None
        self.in_channels = int(getattr(net, "in_channels", None) or spec.arg("in_channels"))  # type: ignore[union-attr]
        self.out_channels = int(getattr(net, "out_channels", None) or spec.arg("out_channels"))  # type: ignore[union-attr]
        self.size_multiple = size_multiple(net)
        # what a foreign net (Spandrel) needs of its input besides the multiple
        self.min_size, self.square = int(getattr(net, "min_size", 0)), bool(getattr(net, "square", False))
        self.scale = int(getattr(net, "scale", 1))
        if foreign is not None:
            self._check_foreign(foreign, mode, precision, runtime)
        if tile is not None and mode == "paper":
            raise ValueError("tiling needs test.mode 'eval': paper mode normalises with each tile's own batch "
                             "statistics")
        if tile is not None and tile < MIN_TILE:
            raise ValueError(f"tile={tile} (--tile) must be at least {MIN_TILE} input pixels (tiles overlap or carry "
                             "context around them)")
        self.tile = tile
        if seamless is not None and seamless not in SEAMLESS:
            raise ValueError(f"seamless={seamless!r} (--seamless) must be one of {', '.join(SEAMLESS)}")
        self.seamless = seamless
        self._circular: nn.Module | None = None
        self._context: int | None = None
        self._tile_note = ""
        dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}
        if precision not in dtypes:
            raise ValueError(f"precision {precision!r} must be one of {', '.join(dtypes)}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        check_runtime(runtime, precision, self.device.type, mode)
        if precision == "int8" and calibration is None:
            raise ValueError("precision int8 needs calibration images: pass calibration= (--calibration FOLDER), a "
                             "folder of a few images like those you will convert")
        self.runtime, self.precision, self.calibration = runtime, precision, calibration
        self._runner: Runner | None = None
        # autocast applies to the torch runtimes; OpenVINO takes its precision as a compile option
        self.amp_dtype = dtypes[precision] if runtime in ("torch", "compile") else None
        # channels_last lets oneDNN (CPU) and cuDNN (CUDA) run convolutions without relayouts
        # (docs/benchmarks.md has the measurement).
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
        use_ema: bool = True,
        runtime: str = "torch",
        calibration: str | Path | None = None,
        seamless: str | None = None,
    ) -> Translator:
        """Load a training checkpoint or an export of a translation model. ``direction``
        defaults to the trained (or exported) direction; ``mode`` to the config's
        ``test.mode``; ``tile`` (input pixels) processes large images in tiles (see
        :meth:`translate_tensor`); the EMA weights are used when present unless ``use_ema``
        is False (:attr:`weights` says which); ``runtime``, ``precision`` and ``calibration`` as in
        :class:`Translator`."""
        g = load_generator(path, direction=direction, use_ema=use_ema, kind="translation", purpose="translating images")
        tr = cls(g.net, g.cfg, direction=g.direction, mode=mode or g.cfg.test.mode, device=device, seed=seed, tile=tile,
                 precision=precision, runtime=runtime, calibration=calibration, seamless=seamless)
        tr.weights = g.weights
        return tr

    @classmethod
    def from_file(cls, path: str | Path, *, direction: str | None = None, mode: str | None = None,
                  use_ema: bool = True, **kwargs: Any) -> Translator:
        """Any model file: an i2i checkpoint, export or model folder (:meth:`from_checkpoint`), or a
        weights file of another project (``.pth``, ``.pt``, ``.ckpt``, ``.safetensors``): a published
        ESRGAN / Real-ESRGAN layout (i2i's own nets) or any single-image model Spandrel recognises
        (the ``spandrel`` extra; :mod:`i2i.compat.spandrel`). Its scale, channels and size needs come
        from the file. ``kwargs``: ``device``, ``seed``, ``tile``, ``precision``, ``runtime``,
        ``calibration`` as in :class:`Translator`."""
        path = Path(path)
        state = foreign_state(path)
        if state is None:
            return cls.from_checkpoint(path, direction=direction, mode=mode, use_ema=use_ema, **kwargs)
        if direction is not None:
            raise ValueError(f"--direction applies to i2i's two-way models; '{path}' is a one-way model file")
        model = load_foreign(path, state)
        tr = cls(model.net, None, direction="a_to_b", mode=mode or "eval", foreign=model, **kwargs)
        tr.weights = "given"
        return tr

    def _check_foreign(self, model: ForeignModel, mode: str, precision: str, runtime: str) -> None:
        if model.loader == "spandrel" and runtime in ("onnxruntime", "openvino"):
            # their ONNX graphs are not i2i's to vouch for: SPAN's export crashed onnxruntime, SwinIR's had fixed sizes
            raise ValueError(f"--runtime {runtime} runs i2i's own nets (exported to ONNX); {model.title} runs with "
                             "--runtime torch or compile")
        if mode != "eval":
            raise ValueError(f"--mode {mode} is pix2pix's test-time behaviour; '{model.path}' ({model.title}) runs in "
                             "eval mode")
        if (precision == "fp16" and not model.half) or (precision == "bf16" and not model.bf16):
            raise ValueError(f"{model.title} does not support {precision} (Spandrel says so); use fp32")

    @property
    def model_name(self) -> str:
        """What runs: the i2i pipeline (``pix2pix``) or the foreign model (``SwinIR ... x4 (Spandrel)``)."""
        return self.foreign.title if self.foreign is not None else self.cfg.pipeline  # type: ignore[union-attr]

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kwargs: Any) -> Translator:
        """Load a model folder (``config.json`` + ``model.safetensors``, written by
        :meth:`save_pretrained` or ``i2i export --safetensors``): no pickle is read, so a
        shared model runs no code. Takes the options of :meth:`from_checkpoint` (which also
        accepts folders)."""
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"'{folder}' is not a model folder; use Translator.from_checkpoint for .pt files")
        return cls.from_checkpoint(folder, **kwargs)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write this translator's generator and config as a model folder (see :meth:`from_pretrained`)."""
        if self.cfg is None:
            raise CheckpointError(f"{self.model_name} is another project's model: keep its own file "
                                  f"('{self.foreign.path}'), which i2i runs as it is")  # type: ignore[union-attr]
        name = pipeline_class(self.cfg.pipeline).generator_name(self.cfg, self.direction)
        return write_export(folder, self.net, config=config_to_dict(self.cfg), pipeline=self.cfg.pipeline, name=name,
                            direction=self.direction, weights=self.weights, folder=True)

    @classmethod
    def untrained(
        cls, cfg: Config, *, direction: str | None = None, mode: str | None = None, device: str | torch.device = "auto"
    ) -> Translator:
        """The freshly initialised generator of ``cfg`` (seeded by ``cfg.seed``): a baseline."""
        net, direction = untrained_generator(cfg, direction)
        tr = cls(net, cfg, direction=direction, mode=mode or cfg.test.mode, device=device)
        tr.weights = "untrained"
        return tr

    def __repr__(self) -> str:
        return (f"Translator({self.model_name} {self.direction}, {type(self.net).__name__} "
                f"{self.in_channels}->{self.out_channels} ch"
                f"{f' x{self.scale}' if self.scale > 1 else ''}, weights={self.weights}, mode={self.mode}, "
                f"device={self.device}"
                f"{f', runtime={self.runtime}' if self.runtime != 'torch' else ''}"
                f"{f', precision={self.precision}' if self.precision != 'fp32' else ''}"
                f"{f', tile={self.tile}' if self.tile else ''})")

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
        pixel depends on the whole image (U-Net), or the net is not shift-invariant on its size
        multiple (window attention): tiles are then overlapped and blended. :attr:`tile_policy`
        says which, in words."""
        if self._context is None:
            self._context, self._tile_note = self._measure_context()
        return None if self._context < 0 else self._context

    @property
    def tile_policy(self) -> str:
        """How ``tile`` is applied, in words (shown by ``i2i convert --tile``)."""
        self.tile_context  # noqa: B018 - measured now
        advice = self.foreign.tiling if self.foreign is not None else "supported"
        if advice == "supported":
            return self._tile_note
        does = "tiles internally" if advice == "internal" else "uses information from the whole image"
        return f"{self._tile_note}; Spandrel advises against tiling this model (it {does}): tile only if memory " \
               "needs it"

    def _measure_context(self) -> tuple[int, str]:
        m = self.size_multiple
        r = receptive_radius(self.net, self.in_channels, self.scale, multiple=max(m, 1))
        if r is None:
            return -1, "blended tiles (a quarter of the tile overlaps): every output pixel depends on the whole image"
        ctx = -(-r // m) * m
        twin = copy.deepcopy(self.net).to(torch.float64).eval()

        def run64(x: torch.Tensor) -> torch.Tensor:
            xp, (h, w) = pad_to_size(x.to(self.device), m, self.min_size, self.square)
            return twin(xp)[:, :, : h * self.scale, : w * self.scale].cpu()

        if not shift_equivariant(run64, self.in_channels, self.scale, m, ctx, self.min_size):
            return -1, (f"blended tiles (a quarter of the tile overlaps): the model is not shift-invariant on its "
                        f"{m}-pixel grid (window attention, global statistics), so tiles with context would not "
                        "equal the whole image")
        return ctx, f"exact tiles: {ctx} pixels of real context around each (receptive radius {r}), equal to whole " \
                    "images"

    @property
    def runner(self) -> Any:
        """What runs the net on padded batches: the net itself (runtime ``torch``) or the runtime's
        callable, built (exported, compiled, quantized) on first use."""
        if self.runtime == "torch":
            return self.net
        if self._runner is None:
            m = max(self.size_multiple, 8)
            inputs = None if self.calibration is None else self.calibration_inputs(self.calibration)
            self._runner = build_runner(self.net, self.runtime, example=(1, self.in_channels, 2 * m, 2 * m),
                                        precision=self.precision, calibration=inputs)
        return self._runner

    def calibration_inputs(self, folder: str | Path) -> list[torch.Tensor]:
        """``(1, in_channels, H, W)`` tensors in [-1, 1] for int8 calibration: centre crops (at most
        :data:`CALIBRATION_SIDE` pixels, padded to the size multiple) of the first
        :data:`CALIBRATION_IMAGES` images of ``folder``."""
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"calibration folder '{folder}' (--calibration) does not exist")
        files = list_images(folder)[:CALIBRATION_IMAGES]
        if not files:
            raise ValueError(f"calibration folder '{folder}' (--calibration) holds no images; put a few images like "
                             "those you will convert there")
        out = []
        for f in files:
            x = to_tensor(to_channels(read_image(f), self.in_channels))[None]
            h, w = x.shape[-2:]
            side = max(self.size_multiple, CALIBRATION_SIDE)
            top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
            out.append(pad_to_size(x[:, :, top : top + side, left : left + side], self.size_multiple, self.min_size,
                                   self.square)[0])
        return out

    @torch.inference_mode()
    def _run(self, x: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
        xp, (h, w) = pad_to_size(x.to(self.device, torch.float32), self.size_multiple, self.min_size, self.square)
        torch_runs = self.runtime in ("torch", "compile")  # the others take plain NCHW arrays
        xp = xp.contiguous(memory_format=torch.channels_last if torch_runs else torch.contiguous_format)
        with self._rng(), torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                         enabled=self.amp_dtype is not None):
            y = (net or self.runner)(xp)
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
        return self._seamless(x) if self.seamless else self._tiled(x)

    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        t = self.tile
        if t is None or (h <= t and w <= t):
            return self._run(x)
        ctx = self.tile_context
        if ctx is None:
            return blended_tiles(self._run, x, t, scale=self.scale, out_channels=self.out_channels)
        t = -(-t // self.size_multiple) * self.size_multiple  # tiles on the net's stride grid
        return exact_tiles(self._run, x, t, ctx, scale=self.scale, out_channels=self.out_channels)

    def _seamless(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the input repeated (``wrap``) or mirror-repeated (``mirror``) without end:
        padded periodically by the receptive radius where it is finite (then equal to the centre of
        the output of a 3x3 mosaic), else run through :func:`~i2i.tiling.circular_copy` of the net."""
        h, w = x.shape[-2:]
        ctx, s = self.tile_context, self.scale
        if ctx is not None:
            pad = max(ctx, 1)
            return self._tiled(periodic_pad(x, pad, self.seamless))[:, :, pad * s : (pad + h) * s,
                                                                    pad * s : (pad + w) * s]
        m = self.size_multiple
        why = (f"--seamless {self.seamless} with {self.model_name}, whose output pixels each depend on the whole "
               "image, needs")
        if self.seamless == "mirror" or self.foreign is not None:
            raise ValueError(f"{why} a finite receptive field; use --seamless wrap with one of i2i's nets")
        if h % m or w % m:
            raise ValueError(f"{why} sizes that are multiples of {m} (this image is {w}x{h}): resize it first")
        if self.tile is not None or self.runtime != "torch":
            raise ValueError(f"{why} whole images and --runtime torch: drop --tile / --runtime")
        if self._circular is None:
            self._circular = circular_copy(self.net)
        return self._run(x, net=self._circular)

    # ------------------------------------------------------------------ any image kind
    def __call__(self, image: Any, mask: np.ndarray | None = None, feather: int = 0) -> Any:
        """Translate one image and return the same kind.

        numpy ``(H, W[, C])`` uint8/uint16 (RGB order; alpha carried through) -> numpy of the
        same dtype; PIL image -> PIL image; tensor ``(C, H, W)`` or ``(N, C, H, W)`` float in
        [-1, 1] -> tensor of the same layout on the input's device.

        ``mask`` (numpy images only): ``(H, W[, C])`` uint8/uint16 of the image's size; 0 keeps the
        input's pixel, the maximum takes the translation, gray blends; ``feather`` ramps it over that
        many pixels inside its edge (:mod:`i2i.convert.masks`).
        """
        if mask is not None:
            if not isinstance(image, np.ndarray) or mask.shape[:2] != image.shape[:2]:
                raise ValueError("mask= takes a numpy mask of the numpy image's height and width")
            return composite(image, self._translate_array(image), weights(mask, feather))
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
        Results equal one-by-one translation up to float rounding (batched convolutions may sum in
        another order: at most one 8-bit level); paper mode is run per image."""
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
    def convert_folder(self, input_path: str | Path, output_dir: str | Path,
                       options: ConvertOptions | None = None) -> ConvertSummary:
        """Translate an image or video, a folder tree, or the files named in a ``.txt`` list into
        ``output_dir`` as ``options`` say (:class:`~i2i.convert.ConvertOptions`: names, formats, bit
        depth, batches, resume, videos); see :func:`i2i.convert.convert`. Launched by torchrun, each
        process converts its share of the files (on its own GPU with ``device="auto"``) and gets the
        merged summary; rank 0 writes ``failed.txt``. The runtime's model is built first: a missing
        extra or calibration folder fails before any file is written."""
        self.runner  # noqa: B018 - built now, not inside the first file's job
        return convert(self.translate_arrays, input_path, output_dir, options, device_type=self.device.type)

    def translate_video(self, src: str | Path, dst: str | Path, *, temporal: str = "off",
                        options: VideoOptions | None = None, batch_size: int = 8) -> VideoStats:
        """One video file into another (``dst``'s suffix names the container), sound and timing
        kept, frames in batches; ``temporal="flow"`` stabilises the frames over time
        (:mod:`i2i.convert.video.temporal`; the warping errors in the returned stats)."""
        self.runner  # noqa: B018 - built now, before the video is opened
        return convert_video(self.translate_arrays, src, dst, batch_size=batch_size, options=options,
                             temporal=temporal)
