"""Command line: ``i2i train | convert | export | sample | eval | info | models | import-weights |
download | serve`` (the model-file commands in :mod:`i2i.cli.files`, the web app in
:mod:`i2i.cli.serve`). Parses, calls the API, returns an exit code. Each command is a ``_<command>``
handler beside the ``_add_<command>`` that declares its arguments.

Exit codes: 0 success; 1 the job ran but something failed (e.g. some images could not be
converted, a download broke off); 2 bad input (config, data, checkpoint, arguments, an
unwritable path); 3 training diverged; 128 + N training stopped by signal N after saving
(130 SIGINT, 143 SIGTERM, 138 SIGUSR1) or interrupted at once by a second signal (130).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import types
import typing
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from .. import dist, ray_engine
from .._version import __version__
from ..checkpoint import CheckpointError, config_of, load_checkpoint
from ..config import ConfigError
from ..convert import ConvertOptions, image_format
from ..data.base import DataError
from ..data.io import ImageReadError
from ..engine.plan import describe as describe_plan
from ..engine.plan import plan as plan_run
from ..engine.trainer import TrainingDiverged, train
from ..evaluate import EvalOptions, evaluation
from ..evaluate.video import evaluate_videos, has_videos, video_report
from ..generate import Generator, parse_arithmetic
from ..loading import foreign_state
from ..options import Precision, Runtime, TestMode, check_finite, choices, flag, range_of, strip_annotated
from ..recipes import load_config, pipeline_class
from ..report import save_grid
from ..runtimes import RuntimeUnavailable
from ..tiling import SEAMLESS
from ..translator import MIN_TILE, Translator
from .args import int_at_least, positive_int
from .files import _add_download, _add_export, _add_import_weights, _add_info, _add_models
from .serve import _add_serve


def _train(args: argparse.Namespace) -> int:

    cfg = load_config(args.config, args.set)
    if args.plan:  # every process measures and reports its own share; nothing is written into the run folder
        try:
            print(describe_plan(plan_run(cfg)), flush=True)
        finally:
            dist.cleanup()
        return 0
    summary = train(cfg, resume=args.resume)
    if "stopped" in summary:  # a stop signal: saved, resumable; the exit code says which signal (128 + number)
        if summary["rank"] == 0:
            print(f"stopped by {summary['stopped_by']} at step {summary['step']}; checkpoint {summary['checkpoint']} "
                  "(continue with --resume auto)")
        return 128 + summary["stopped"]
    if summary["rank"] == 0:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items())
        v = summary.get("validation") or {}
        best = (
            f"; best {v['metric']} {v['value']:.4g}{v.get('gain', '')} at step {v['step']}: {v['checkpoint']}"
            if v.get("value") is not None
            else ""
        )
        print(f"trained {cfg.name} to step {summary['step']} ({losses}); checkpoint {summary['checkpoint']}{best}")
    return 0


def _add_train(sub: Any) -> None:
    t = sub.add_parser("train", help="train from a YAML config")
    t.add_argument("config", help="YAML config, e.g. configs/pix2pix/demo.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train.steps=100")
    t.add_argument("--resume", default=None, metavar="auto|PATH",
                   help="continue a run: 'auto' uses <run>/checkpoints/last.pt; None starts a fresh run")
    t.add_argument("--plan", action="store_true",
                   help="measure instead of training: steps/s, the run's estimated time, peak memory, the largest "
                        "batch that fits (a few real steps; nothing written into the run folder)")
    t.set_defaults(func=_train)


def _convert(args: argparse.Namespace) -> int:
    # Under torchrun every process converts its share of the files (no overlap, no gaps), each on
    # its own GPU when there are GPUs; every process gets the merged summary, rank 0 prints it.
    options = _options_from(ConvertOptions, args, progress=not args.quiet)
    try:
        tr = Translator.from_file(args.checkpoint, direction=args.direction, mode=args.mode, device=args.device,
                                  tile=args.tile, precision=args.precision, runtime=args.runtime,
                                  calibration=args.calibration, seamless=args.seamless)
        if args.tile and dist.env_rank() == 0:
            print(f"{tr.model_name}: {tr.tile_policy}")
        if args.engine == "ray":
            summary = ray_engine.convert(args.input, args.output, args.checkpoint, options, address=args.address,
                                         actors=args.actors, direction=args.direction, mode=args.mode, tile=args.tile,
                                         precision=args.precision, runtime=args.runtime, seamless=args.seamless)
        else:
            summary = tr.convert_folder(args.input, args.output, options)
    finally:
        dist.cleanup()
    if dist.env_rank() != 0:
        return 1 if summary.failed else 0
    rate = len(summary.converted) / summary.seconds if summary.seconds > 0 else 0.0
    ignored = (
        f", ignored {len(summary.ignored)} (not images or unreadable links; listed in failed.txt)"
        if summary.ignored
        else ""
    )
    print(f"converted {len(summary.converted)}, skipped {len(summary.skipped)} (already there){ignored}, failed "
          f"{len(summary.failed)} "
          f"into {args.output} in {summary.seconds:.1f} s ({rate:.2f} files/s)")
    if summary.metadata:
        print("  metadata: " + ", ".join(f"{k} {n}" for k, n in sorted(summary.metadata.items())))
    for dst, st in summary.videos:
        streams = f"; copied {', '.join(st.copied_streams)}" if st.copied_streams else ""
        print(f"  {dst}: {st.frames} frames in {st.seconds:.1f} s ({st.fps:.2f} frames/s; decode {st.decode:.1f} s, "
              f"translate {st.translate:.1f} s, encode {st.encode:.1f} s, overlapping{streams})")
        if st.warping:
            w = st.warping
            print(f"    warping error (8-bit levels, lower is steadier): input {w['input']:.2f}, per-frame output "
                  f"{w['per-frame']:.2f}, stabilised {w['stabilised']:.2f}; scene cuts {w['cuts']:.0f}")
    if summary.failed:
        for _, why in summary.failed[:10]:
            print(f"  failed: {why}", file=sys.stderr)
        print(f"the list of failed files with reasons is in {Path(args.output) / 'failed.txt'}", file=sys.stderr)
        return 1
    return 0


def _add_convert(sub: Any) -> None:
    c = sub.add_parser("convert", help="translate images and videos: a file, a folder tree or a .txt list")
    c.add_argument("checkpoint", help="model: an i2i checkpoint or export of a translation model, or another "
                                      "project's .pth / .safetensors (ESRGAN, SwinIR, ... via Spandrel)")
    c.add_argument("input", help="image or video file, folder (searched recursively) or .txt list of paths")
    c.add_argument("output", help="output folder (sub-folders and names mirrored)")
    c.add_argument("--direction", default=None, help="a_to_b or b_to_a (None: the trained direction)")
    c.add_argument("--mode", choices=list(choices(TestMode)), default=None,
                   help="test-time behaviour (None: the config's test.mode)")
    c.add_argument("--device", default="auto",
                   help="auto (CUDA when present; under torchrun each process its own GPU), cpu, cuda or "
                        "cuda:N")
    c.add_argument("--tile", type=int_at_least(MIN_TILE), default=None, metavar="PIXELS",
                   help="process large images in tiles of this many input pixels (bounded memory; exact for SR nets)")
    c.add_argument("--precision", choices=list(choices(Precision)), default="fp32",
                   help="autocast precision with torch / compile (fp16 needs CUDA); bf16 or int8 with openvino")
    c.add_argument("--runtime", choices=list(choices(Runtime)), default="torch",
                   help="what runs the generator: torch (eager), compile (torch.compile, per input size), onnxruntime "
                        "or openvino (CPU; exported once and cached); docs/benchmarks.md says which is fastest where")
    c.add_argument("--seamless", choices=list(SEAMLESS), default=None,
                   help="textures: outputs that tile without seams when the input does (wrap), or when mirrored "
                        "(mirror); exact for nets with a finite receptive field")
    c.add_argument("--calibration", default=None, metavar="FOLDER",
                   help="--precision int8: a few images like those you will convert, to calibrate the quantization")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: convert on a Ray cluster, one model per actor (extra i2i[ray]; paths shared by the "
                        "nodes)")
    c.add_argument("--address", default=None, help="--engine ray: the cluster, e.g. ray://head:10001 or auto (None: a "
                                                    "local instance)")
    c.add_argument("--actors", type=positive_int, default=None,
                   help="--engine ray: actors holding the model (None: one per GPU, or per 2 CPUs)")
    groups = {"videos": c.add_argument_group("videos",
                                             "videos are streamed frame by frame (no temporary frames); audio and "
                                             "subtitles copied")}
    _add_options(c, ConvertOptions, groups)
    c.set_defaults(func=_convert)


def _sample(args: argparse.Namespace) -> int:
    gen = Generator.from_checkpoint(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    out = Path(args.out_dir)
    if args.interpolate:
        strips = gen.interpolate(args.n, args.steps, seed=args.seed, label=args.label)
        for i, strip in enumerate(strips):
            save_grid(out / f"interpolation_{i:04d}.png", [strip[j : j + 1] for j in range(strip.shape[0])])
        print(f"wrote {len(strips)} interpolation strips of {args.steps} images to {out}")
        return 0
    if args.arithmetic:
        terms = parse_arithmetic(args.arithmetic)
        r = gen.arithmetic(terms, seed=args.seed, n=args.n, label=args.label, variants=args.variants)
        titles = [("- " if sign < 0 else "+ " if i else "") + ",".join(map(str, idx)) for i,
                  (sign, idx) in enumerate(terms)]
        columns = [r["terms"][i : i + 1] for i in range(len(terms))] + [
            r["result"][j : j + 1] for j in range(args.variants)
        ]
        path = save_grid(out / "arithmetic.png", columns, titles=titles + ["="] + [""] * (args.variants - 1))
        print(f"wrote {path}: the mean of each term, then the "
              f"result{' and its variations' if args.variants > 1 else ''} "
              f"(sample indices of 'i2i sample --n {args.n} --seed {args.seed}')")
        return 0
    paths = gen.save_samples(out, args.n, seed=args.seed, truncation=args.truncation, label=args.label,
                             ext="." + args.format)
    print(f"wrote {len(paths)} samples to {out} (seed {args.seed}, {gen.weights} weights)")
    return 0


def _add_sample(sub: Any) -> None:
    m = sub.add_parser("sample", help="draw images from a generation model (e.g. DCGAN)")
    m.add_argument("checkpoint", help="training checkpoint or export of a generation model")
    m.add_argument("out_dir", help="folder for the images")
    m.add_argument("--n", type=positive_int, default=64, help="images (or strips with --interpolate)")
    m.add_argument("--seed", type=int, default=0, help="the same seed draws the same images")
    m.add_argument("--truncation", type=float, default=None, help="redraw gaussian latents beyond this magnitude")
    m.add_argument("--label", type=int, default=None, help="class to draw (class-conditional models)")
    m.add_argument("--interpolate", action="store_true", help="write latent interpolation strips instead")
    m.add_argument("--steps", type=positive_int, default=8, help="images per interpolation strip")
    m.add_argument("--arithmetic", default=None, metavar="EXPR",
                   help="latent vector arithmetic on the samples this command draws with the same --n and --seed: "
                        "'3,17,40 - 5,9 + 22' is mean(z3,z17,z40) - mean(z5,z9) + z22; writes arithmetic.png")
    m.add_argument("--variants", type=positive_int, default=8,
                   help="--arithmetic: the result and this many - 1 noisy variations")
    m.add_argument("--format", type=image_format, default="png",
                   help="image format of the samples (png, jpg, tif, webp, bmp)")
    m.add_argument("--no-ema", action="store_true", help="use the raw generator weights even if an EMA copy exists")
    m.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    m.set_defaults(func=_sample)


def _eval_videos(args: argparse.Namespace) -> int:
    given = _options_from(EvalOptions, args).given()
    wrong = [k for k in given if k not in ("direction", "limit", "lpips")]
    if wrong:
        raise ValueError(f"{', '.join(flag(k) for k in wrong)} do not apply to videos; their options: --direction, "
                         "--limit (frames per video), --lpips")
    print(video_report(evaluate_videos(args.checkpoint, args.data, args.out, device=args.device, **given)))
    if args.out:
        print(f"written: {Path(args.out) / 'metrics.json'}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    if has_videos(args.data):
        return _eval_videos(args)
    if foreign_state(args.checkpoint) is not None:  # another project's model: SR models are scored against bicubic
        model = Translator.from_file(args.checkpoint, device="cpu")
        if model.scale == 1:
            raise ValueError(f"'{args.checkpoint}' is a scale-1 {model.model_name} model: i2i eval scores other "
                             "projects' upscalers (against bicubic); convert a folder and compare it yourself")
        kind, name = model.model_name, "super_resolution"
    else:
        pipe = pipeline_class(config_of(load_checkpoint(args.checkpoint), args.checkpoint).pipeline)
        kind, name = f"{pipe.name} model", pipe.evaluation
    ev = evaluation(name)
    given = _options_from(EvalOptions, args).given()
    wrong = [k for k in given if k not in ev.options]
    if wrong:
        flags = ", ".join(flag(k) for k in wrong)
        raise ValueError(f"{flags} do not apply: '{args.checkpoint}' is a {kind}, evaluated as "
                         f"{ev.description}; "
                         f"its options: {', '.join(flag(k) for k in ev.options)}")
    result = ev(args.checkpoint, args.data, out_dir=args.out, device=args.device, **given)
    print(ev.report(result))
    if args.out:
        print(f"written: {Path(args.out) / 'metrics.json'}")
    return 0


def _add_eval(sub: Any) -> None:
    v = sub.add_parser("eval",
                       help="the pipeline's own evaluation (paired: HTML page; SR: PSNR/SSIM vs bicubic; generation: "
                            "FID/KID)")
    v.add_argument("checkpoint", help="training checkpoint or export, or another project's upscaler file")
    v.add_argument("--data", required=True,
                   help="paired test folder (A/ + B/, testA/ + testB/, side-by-side AB; videos in A/ with target "
                        "videos in B/: per-frame metrics and warping error), or HR images for SR")
    v.add_argument("--out", default=None, help="folder for the results (page + images, or results.md) and metrics.json")
    v.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    _add_options(v, EvalOptions)
    v.set_defaults(func=_eval)


def _option_type(name: str, hint: Any, parse: Callable[[str], Any] | None) -> dict[str, Any]:
    """argparse keywords for an options field: ``store_true`` for a bool, ``choices`` for a ``Literal``,
    a checked number for an int or float (its :class:`~i2i.options.Range`), else ``parse`` or text."""
    bare = strip_annotated(hint)
    union = typing.get_origin(bare) in (typing.Union, types.UnionType)
    kind = next(a for a in typing.get_args(bare) if a is not type(None)) if union else bare
    if kind is bool:
        return {"action": "store_true"}
    if typing.get_origin(kind) is Literal:
        return {"choices": list(typing.get_args(kind))}
    if parse is not None:
        return {"type": parse}
    if kind in (int, float):
        allowed = range_of(hint)

        def number(text: str) -> int | float:
            try:
                value = kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not "
                                                 f"{'an integer' if kind is int else 'a number'}") from None
            if not check_finite(value) or (allowed is not None and value not in allowed):
                raise argparse.ArgumentTypeError(
                    f"{text} must be " + (allowed.describe() if allowed else "a finite number")
                )
            return value

        number.__name__ = name
        return {"type": number}
    return {}


def _add_options(parser: argparse.ArgumentParser, cls: type, groups: dict[str, Any] | None = None) -> None:
    """One flag per field of the options dataclass ``cls`` (fields that are themselves option
    dataclasses contribute theirs), with the field's help, type, range, choices and default
    (:func:`i2i.options.option`); a field's ``group`` picks the help section from ``groups``."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            _add_options(parser, hints[f.name], groups)
            continue
        where = (groups or {}).get(f.metadata.get("group"), parser)
        kw = _option_type(f.name, hints[f.name], f.metadata.get("parse"))
        if f.metadata.get("metavar"):
            kw["metavar"] = f.metadata["metavar"]
        where.add_argument(flag(f.name), dest=f.name, default=f.default, help=f.metadata["help"], **kw)


def _options_from(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """The options dataclass ``cls`` from the parsed flags (:func:`_add_options`), ``given`` winning."""
    hints = typing.get_type_hints(cls, include_extras=True)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in given:
            values[f.name] = given[f.name]
        elif dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = _options_from(hints[f.name], args)
        elif hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return cls(**values)


def _version() -> str:
    try:
        torch_version = version("torch")
    except PackageNotFoundError:  # pragma: no cover - torch is a dependency
        torch_version = "missing"
    return f"i2i {__version__} (torch {torch_version}, Python {sys.version.split()[0]})"


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default (``(default: ...)``), wrapped to the terminal."""


def build_parser() -> argparse.ArgumentParser:
    """The ``i2i`` argument parser: one sub-command per ``_add_<command>`` above."""
    p = argparse.ArgumentParser(prog="i2i", description="Image-to-image translation with GANs.", formatter_class=_Help)
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, parser_class=_subparser_class())
    for add in (_add_train, _add_convert, _add_export, _add_sample, _add_info, _add_models, _add_import_weights,
                _add_download, _add_eval, _add_serve):
        add(sub)
    return p


def _subparser_class() -> type[argparse.ArgumentParser]:
    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            kwargs.setdefault("formatter_class", _Help)
            super().__init__(*args, **kwargs)

    return Parser


class _Stopped(BaseException):
    """SIGTERM arrived (a scheduler, ``kill``) during a command other than ``train`` (which saves first). A
    BaseException, as KeyboardInterrupt, so that no ``except Exception`` on the way takes it for a failure."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``i2i`` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    dist.adopt_slurm()  # srun without torchrun: Slurm's task variables become torchrun's
    # train handles stop signals itself (finishes the step, saves); the other commands stop at once with a message,
    # their finished files intact (every write is atomic) and temporary ones removed.
    handler = signal.signal(signal.SIGTERM, _stop) if args.command != "train" else None
    try:
        return _run(args)
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


def _run(args: argparse.Namespace) -> int:
    """The command's handler, its errors turned into one line on stderr and an exit code."""
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a reader gone away is handled below, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (``i2i info CKPT | head``): what it read is all it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except (ConfigError, DataError, ImageReadError, CheckpointError, FileNotFoundError, ValueError,
            RuntimeUnavailable) as e:
        print(f"i2i {args.command}: error: {e}", file=sys.stderr)
        return 2
    except IsADirectoryError as e:
        print(f"i2i {args.command}: error: '{e.filename}' is a folder; name a file to write (nothing was written)",
              file=sys.stderr)
        return 2
    except OSError as e:  # disk full, read-only or unwritable folder, ...: say which path
        where = f" '{e.filename}'" if e.filename else ""
        print(f"i2i {args.command}: error: {e.strerror or e}{where}; files written before (checkpoints, converted "
              "images) "
              "are intact: free space or choose a writable folder, then run again", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"i2i {args.command}: interrupted; finished files and checkpoints are intact", file=sys.stderr)
        return 130
    except _Stopped:
        print(f"i2i {args.command}: stopped by SIGTERM; finished files are intact and no half-written one is left "
              "(run the same command with --skip-existing to continue a conversion)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except TrainingDiverged as e:
        print(f"i2i {args.command}: error: {e}", file=sys.stderr)
        return 3
