"""The commands about model files: ``export``, ``info``, ``models``, ``import-weights``, ``download``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import download
from ..compat.reference import import_reference_file
from ..exporting import PROFILES, export_generator, export_ncnn, export_onnx, export_spandrel
from ..info import check_model, describe, find_models, is_model_folder, model_entry
from .args import positive_int


def _export(args: argparse.Namespace) -> int:
    if sum([args.onnx, args.safetensors, args.format != "i2i"]) > 1:
        raise ValueError(f"--onnx, --safetensors and --format {args.format} write different things; choose one")
    if args.profile != "i2i" and not args.onnx:
        raise ValueError(f"--profile {args.profile} applies to --onnx")
    if args.onnx:
        result = export_onnx(args.checkpoint, args.output, direction=args.direction, opset=args.opset,
                             profile=args.profile)
        print(f"exported ONNX model to {result['path']} (profile {args.profile}, dynamic batch/height/width); "
              f"onnxruntime vs PyTorch max |diff| = {result['max_abs_diff']:.2e}")
        return 0
    if args.format == "ncnn":
        result = export_ncnn(args.checkpoint, args.output, direction=args.direction)
        print(f"exported ncnn model to {result['param']} + {result['bin']} (blobs 'data' -> 'output', values in "
              f"[0, 1]; realesrgan-ncnn-vulkan, Upscayl); ncnn vs PyTorch max |diff| = {result['max_abs_diff']:.2e}")
        return 0
    if args.format == "spandrel":
        result = export_spandrel(args.checkpoint, args.output, direction=args.direction, use_ema=not args.no_ema)
        checked = ("not checked: pip install 'i2i[spandrel]' to load it back" if result["max_abs_diff"] is None else
                   f"Spandrel loads it as {result['spandrel_architecture']}, max |diff| = {result['max_abs_diff']:.2e}")
        print(f"exported {result['architecture']} x{result['scale']} for Spandrel (chaiNNer, ComfyUI) to "
              f"{result['path']}; {checked}")
        return 0
    path = export_generator(args.checkpoint, args.output, direction=args.direction, use_ema=not args.no_ema,
                            folder=args.safetensors)
    what = "a model folder (config.json + model.safetensors)" if args.safetensors else path
    print(f"exported generator to {what}" + (f": {path}" if args.safetensors else ""))
    return 0


def _add_export(sub: Any) -> None:
    e = sub.add_parser("export", help="write a generator-only file with its config")
    e.add_argument("checkpoint", help="training checkpoint or export")
    e.add_argument("-o", "--output", required=True,
                   help="file to write (.pt; .onnx with --onnx; a folder with --safetensors)")
    e.add_argument("--direction", default=None,
                   help="a_to_b or b_to_a for two-way models (None: the trained direction)")
    e.add_argument("--onnx", action="store_true",
                   help="write ONNX (dynamic batch/height/width), checked with onnxruntime")
    e.add_argument("--safetensors", action="store_true",
                   help="write a model folder: config.json + model.safetensors (no pickle; Translator.from_pretrained)")
    e.add_argument("--format", choices=["i2i", "spandrel", "ncnn"], default="i2i",
                   help="spandrel: an RRDBNet / SRVGG generator as the .pth or .safetensors chaiNNer, ComfyUI and "
                        "other Spandrel users load (ESRGAN / RealESRGAN Compact); ncnn: OUTPUT.param + OUTPUT.bin "
                        "for realesrgan-ncnn-vulkan and Upscayl")
    e.add_argument("--profile", choices=list(PROFILES), default="i2i",
                   help="--onnx: i2i (input 'image', values in [-1, 1]) or chainner (input 'input', values in [0, 1])")
    e.add_argument("--opset", type=positive_int, default=18, help="ONNX opset version")
    e.add_argument("--no-ema", action="store_true", help="export the raw generator weights even if an EMA copy exists")
    e.set_defaults(func=_export)


def _info(args: argparse.Namespace) -> int:
    print(describe(args.file))
    return 0


def _add_info(sub: Any) -> None:
    n = sub.add_parser("info", help="what a checkpoint or export holds")
    n.add_argument("file", help="checkpoint or export")
    n.set_defaults(func=_info)


def _import_weights(args: argparse.Namespace) -> int:
    info = import_reference_file(args.file, args.output, arch=args.arch, norm=args.norm, dropout=args.dropout)
    print(f"imported {info.arch} ({', '.join(f'{k}={v}' for k, v in info.kwargs.items())}) from {args.file} into "
          f"{args.output}")
    return 0


def _add_import_weights(sub: Any) -> None:
    w = sub.add_parser("import-weights",
                       help="turn a reference pix2pix/CycleGAN generator or an ESRGAN / Real-ESRGAN .pth into an "
                            "i2i file")
    w.add_argument("file",
                   help="e.g. latest_net_G.pth from the reference implementation, RealESRGAN_x4plus.pth, "
                        "RRDB_ESRGAN_x4.pth")
    w.add_argument("-o", "--output", required=True, help="i2i file to write (use with convert / Translator / export)")
    w.add_argument("--arch", choices=["unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks"], default=None,
                   help="None: inferred from the keys and shapes (pix2pix / CycleGAN files only)")
    w.add_argument("--norm", choices=["batch", "instance"], default=None, help="None: inferred")
    w.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=None, help="None: inferred")
    w.set_defaults(func=_import_weights)


def _download(args: argparse.Namespace) -> int:
    if args.what == "list":
        for kind, sources in download.catalogue().items():
            print(f"{kind}s: " + ", ".join(s.key for s in sources))
        return 0
    if not args.name:
        raise ValueError(f"i2i download {args.what} needs a NAME; 'i2i download list' shows them")
    try:
        if args.what == "dataset":
            path = download.download_dataset(args.name, args.out or "datasets", mirror=args.mirror)
        elif args.what == "model":
            path = download.download_model(args.name, args.out or "models", mirror=args.mirror)
        else:
            if args.out:
                raise ValueError("weights go to torchvision's cache, where i2i looks for them; --out does not apply")
            path = download.download_weights(args.name, mirror=args.mirror)
    except download.DownloadError as e:
        print(f"i2i download: error: {e}", file=sys.stderr)
        return 1
    print(f"downloaded {args.what} {args.name} to {path}")
    return 0


def _add_download(sub: Any) -> None:
    d = sub.add_parser("download",
                       help="fetch a reference dataset, a reference pretrained generator, or weights (explicit only)")
    d.add_argument("what", choices=["dataset", "model", "weights", "list"],
                   help="what to fetch; 'list' shows every name")
    d.add_argument("name", nargs="?", default=None,
                   help="e.g. facades, horse2zebra, fid-inception (cyclegan/facades where two share a name)")
    d.add_argument("--out", default=None, help="folder (None: datasets/ for datasets, models/ for models)")
    d.add_argument("--mirror", default=None, metavar="URL",
                   help="replace the scheme://host of the URLs (a local copy; or I2I_DOWNLOAD_MIRROR)")
    d.set_defaults(func=_download)


def _models(args: argparse.Namespace) -> int:
    if args.what == "describe":
        for path in args.paths:
            print(describe(path))
        return 0
    paths = [p for given in (args.paths or ["models"])
             for p in (find_models(given) if Path(given).is_dir() and not is_model_folder(given) else [Path(given)])]
    entries = [(check_model if args.what == "check" else model_entry)(p) for p in paths]
    print(f"{'file':<40} {'kind':<17} {'model':<28} {'scale':>5} {'parameters':>12} {'values':<8} sha256")
    for e in entries:
        scale = f"x{e.scale}" if e.scale else "?"
        params = f"{e.parameters:,}" if e.parameters is not None else "?"
        print(f"{str(e.path):<40} {e.kind:<17} {e.model[:28]:<28} {scale:>5} {params:>12} {e.values:<8} "
              f"{e.sha256[:12]}")
        if e.problem:
            print(f"  problem: {e.problem}")
    bad = [e for e in entries if e.problem]
    if args.what == "check":
        print(f"checked {len(entries)} models: {len(entries) - len(bad)} ran, {len(bad)} with problems")
    return 1 if bad else 0


def _add_models(sub: Any) -> None:
    m = sub.add_parser("models", help="list, describe and check model files: i2i checkpoints and exports, "
                                      "other projects' .pth / .safetensors (Spandrel), ONNX")
    m.add_argument("what", choices=["list", "describe", "check"],
                   help="list: a line per model file; describe: everything about each; check: load and run each on "
                        "a small image")
    m.add_argument("paths", nargs="*", help="files or folders (searched recursively; default: models/)")
    m.set_defaults(func=_models)
