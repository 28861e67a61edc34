"""One loader for every file argument: empty, truncated, folder, foreign and malicious files get a
one-paragraph error naming the file (exit 2) from every command, and nothing is written."""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path

import pytest

from i2i.cli import main
from i2i.config import dump_config


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _commands(f: Path, tmp: Path, data: Path, cfg_file: Path) -> dict[str, list[str]]:
    return {
        "info": ["info", str(f)],
        "convert": ["convert", str(f), str(data / "A"), str(tmp / "out"), "--quiet", "--workers", "0"],
        "eval": ["eval", str(f), "--data", str(data)],
        "export": ["export", str(f), "-o", str(tmp / "x.pt")],
        "sample": ["sample", str(f), str(tmp / "samples"), "--n", "1"],
        "train --resume": ["train", str(cfg_file), "--resume", str(f)],
        "import-weights": ["import-weights", str(f), "-o", str(tmp / "imported.pt")],
    }


def _refused_by_all(f: Path, tmp: Path, data: Path, cfg_file: Path, capsys) -> None:
    for name, argv in _commands(f, tmp, data, cfg_file).items():
        assert main(argv) == 2, f"{name} on {f.name}"
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err and err.count("\n") == 0, f"{name}: {err}"
        assert str(f) in err, f"{name} does not name the file: {err}"
    written = [p for p in tmp.iterdir() if p.name in ("out", "x.pt", "samples", "imported.pt", "runs")]
    assert not written, f"{f.name}: {written} written"


@pytest.fixture
def setup(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path / "cfgdir", gray2color)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(dump_config(cfg).replace(str(tmp_path / "cfgdir" / "runs"), str(tmp_path / "runs")))
    return cfg_file


def test_truncated_checkpoints_at_random_offsets(trained, tmp_path, gray2color, setup, capsys):
    data = Path(trained).read_bytes()
    rng = random.Random(0)
    offsets = sorted({0, 1, 10, 100, len(data) - 1, *(rng.randrange(len(data)) for _ in range(20))})
    for n in offsets:
        f = tmp_path / f"cut_{n}.pt"
        f.write_bytes(data[:n])
        _refused_by_all(f, tmp_path, gray2color / "test", setup, capsys)


def test_folders_foreign_and_malicious_files(tmp_path, gray2color, setup, capsys):
    marker = tmp_path / "pwned"
    files = {
        "random.pt": bytes(random.Random(1).randrange(256) for _ in range(5000)),
        "pickle.pt": pickle.dumps(_Payload(marker)),
        "dict.pt": pickle.dumps({"a": 1}),
        "config.yaml": b"name: x\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with zipfile.ZipFile(tmp_path / "archive.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Payload(marker)))
    (tmp_path / "folder").mkdir()
    paths = [tmp_path / n for n in files] + [tmp_path / "archive.pt", tmp_path / "folder"]
    for f in paths:
        _refused_by_all(f, tmp_path, gray2color / "test", setup, capsys)
    assert not marker.exists(), "a file ran code"


def _flip_inside_largest_tensor(path: Path) -> None:
    """Flip one byte in the middle of the largest tensor record of a torch.save zip (the zip
    format stores a CRC, but torch does not check it when loading)."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28],
                                                     "little") \
        + int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    data[start + info.file_size // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_bytes_inside_tensors_are_caught_by_the_checksum(trained, tmp_path, gray2color, setup, capsys):
    import i2i

    export = tmp_path / "e.pt"
    i2i.export_generator(trained, export)
    _flip_inside_largest_tensor(export)
    for name, argv in _commands(export, tmp_path, gray2color / "test", setup).items():
        if name in ("train --resume", "import-weights", "sample"):
            continue
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert str(export) in err and "checksum" in err, err
    folder = tmp_path / "folder"
    i2i.export_generator(trained, folder, folder=True)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) - 100] ^= 0x40  # inside the last tensor
    weights.write_bytes(bytes(data))
    assert main(["convert", str(folder), str(gray2color / "test" / "A"), str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "checksum" in err and not (tmp_path / "out").exists()


def _rewritten(src: str, dst: Path, change) -> Path:
    """``src`` (an i2i file) loaded, changed by ``change(data)`` and saved again with a fresh checksum."""
    import torch

    from i2i.checkpoint import save_checkpoint

    data = torch.load(src, weights_only=True)
    for k in ("format", "format_version", "i2i_version", "checksum"):
        data.pop(k, None)
    change(data)
    return save_checkpoint(dst, data)


@pytest.mark.parametrize("what", ["nan", "int32", "bool", "float8", "complex"])
def test_weights_of_the_wrong_kind_are_refused_by_name(trained, tmp_path, gray2color, what, capsys):
    import torch

    import i2i
    from i2i.checkpoint import save_model_folder

    key = ""

    def change(data):
        nonlocal key
        state = data["nets"]["G"]
        key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 4)
        w = state[key]
        state[key] = {"nan": lambda: w.clone().fill_(float("nan")), "int32": lambda: w.to(torch.int32),
                      "bool": lambda: w > 0, "float8": lambda: w.to(torch.float8_e4m3fn),
                      "complex": lambda: w.to(torch.complex64)}[what]()
        data.pop("ema", None)

    bad = _rewritten(trained, tmp_path / "bad.pt", change)
    out = tmp_path / "out"
    assert main(["convert", str(bad), str(gray2color / "test" / "A"), str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and key in err and ("NaN" in err if what == "nan" else "dtype" in err or "torch." in err), (
        err
    )
    assert not out.exists()
    data = torch.load(bad, weights_only=True)
    folder = save_model_folder(tmp_path / "folder",
                               {k: v for k, v in data.items() if k in ("config", "pipeline", "direction")}
                               | {"kind": "export", "nets": {"G": data["nets"]["G"]}})
    with pytest.raises(i2i.CheckpointError, match=key.replace(".", r"\.")):
        i2i.Translator.from_pretrained(folder)


@pytest.mark.parametrize("case",
                         ["version text", "ema list", "tensor as net", "sparse", "meta", "step text",
                          "pipeline number"])
def test_wrong_types_inside_a_checkpoint_are_refused_in_one_line(trained, tmp_path, gray2color, setup, case, capsys):
    import torch

    def change(data):
        G = data["nets"]["G"]
        key = next(iter(G))
        if case == "version text":
            data["config"]["version"] = "2"
        elif case == "ema list":
            data["ema"] = [1, 2]
        elif case == "tensor as net":
            data["nets"]["D"] = torch.zeros(3)
        elif case == "sparse":
            G[key] = G[key].reshape(G[key].shape[0], -1).to_sparse()
        elif case == "meta":
            G[key] = torch.empty_like(G[key], device="meta")
        elif case == "step text":
            data["step"] = "abc"
        else:
            data["pipeline"] = 3

    bad = _rewritten(trained, tmp_path / "bad.pt", change)
    _refused_by_all(bad, tmp_path, gray2color / "test", setup, capsys)


def test_eval_scores_images_of_one_pixel_and_thin_strips(trained, tmp_path, capsys):
    import numpy as np

    from i2i.data.io import write_image

    for name, (h, w) in {"dot.png": (1, 1), "strip.png": (1, 64), "tiny.png": (3, 3), "small.png": (10, 40)}.items():
        write_image(tmp_path / "pairs" / "A" / name, np.full((h, w, 1), 90, np.uint8))
        write_image(tmp_path / "pairs" / "B" / name, np.full((h, w, 3), 120, np.uint8))
    assert main(["eval", trained, "--data", str(tmp_path / "pairs"), "--out", str(tmp_path / "page")]) == 0
    import json

    per_image = json.loads((tmp_path / "page" / "metrics.json").read_text())["per_image"]
    assert len(per_image) == 4 and all(
        np.isfinite(r["SSIM_trained"]) and np.isfinite(r["PSNR_trained"]) for r in per_image
    )


def _onnx_model(path: Path, *, input_type: int, input_rank: int, nan: bool = False, scalar: bool = False) -> Path:
    """A tiny ONNX feature model written with onnx.helper: flatten (or a scalar mean), times NaN if asked."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    dims = ["N", 3, 4, 4][:input_rank] if input_rank <= 4 else ["N"] * input_rank
    x = helper.make_tensor_value_info("x", input_type, dims)
    nodes = [helper.make_node("ReduceMean", ["x"], ["f"], keepdims=0) if scalar else helper.make_node("Flatten", ["x"],
                                                                                                      ["f"])]
    out = "f"
    if nan:
        nodes += [helper.make_node("Constant", [], ["k"],
                                   value=helper.make_tensor("k", TensorProto.FLOAT, [], [float("nan")])),
                  helper.make_node("Mul", ["f", "k"], ["y"])]
        out = "y"
    y = helper.make_tensor_value_info(out, input_type, None)
    model = helper.make_model(helper.make_graph(nodes, "features", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what onnxruntime reads (onnx writes newer by default)
    onnx.save(model, str(path))
    return path


def test_broken_onnx_feature_models_are_refused_quickly_and_by_name(tmp_path):
    import time

    import torch

    from i2i.evaluate import extract_features, feature_extractor

    pytest.importorskip("onnxruntime")
    from onnx import TensorProto

    images = torch.rand(4, 3, 4, 4) * 2 - 1
    nan = _onnx_model(tmp_path / "nan.onnx", input_type=TensorProto.FLOAT, input_rank=4, nan=True)
    with pytest.raises(ValueError, match=r"nan.onnx' gave NaN or infinite features"):
        extract_features(feature_extractor(str(nan)), images)
    for name, kind, rank in (("int.onnx", TensorProto.INT64, 4), ("rank2.onnx", TensorProto.FLOAT, 2)):
        with pytest.raises(ValueError, match=name + r"' takes tensor\(.*\) of rank " + str(rank)):
            feature_extractor(str(_onnx_model(tmp_path / name, input_type=kind, input_rank=rank)))
    scalar = _onnx_model(tmp_path / "scalar.onnx", input_type=TensorProto.FLOAT, input_rank=4, scalar=True)
    with pytest.raises(ValueError, match=r"scalar.onnx' gave an output of shape \(\)"):
        extract_features(feature_extractor(str(scalar)), images)
    from i2i.metrics import frechet_distance

    start = time.perf_counter()
    with pytest.raises(ValueError, match="finite features"):
        frechet_distance(torch.full((8, 4), float("nan")), torch.rand(8, 4))
    assert time.perf_counter() - start < 5


def test_model_folders_get_ordinary_permissions(trained, tmp_path):
    import os

    import i2i

    umask = os.umask(0o022)
    os.umask(umask)
    folder = i2i.export_generator(trained, tmp_path / "folder", folder=True)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
    assert all(f.stat().st_mode & 0o777 == 0o666 & ~umask for f in folder.iterdir())


def test_a_full_disk_during_a_write_names_the_file(tmp_path, monkeypatch):
    import errno
    import os

    from i2i import files
    from i2i.engine.runlog import MetricsFile

    class Full:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fdopen", Full)
    with pytest.raises(OSError) as e:
        files.atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert e.value.filename == str(tmp_path / "x.bin") and e.value.errno == errno.ENOSPC
    assert not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr("builtins.open", Full)
    with pytest.raises(OSError) as e:
        MetricsFile(tmp_path / "metrics.jsonl").append({"step": 1})
    assert e.value.filename == str(tmp_path / "metrics.jsonl")


def test_diversity_against_identical_real_images_is_undefined_not_huge():
    import math

    import torch

    from i2i.metrics import diversity

    real = torch.ones(10, 64)
    assert math.isnan(diversity(torch.rand(10, 64), real))
    assert 0.5 < diversity(torch.rand(10, 64), torch.rand(10, 64)) < 2


@pytest.mark.parametrize("change", [{"step": "abc"}, {"config": {"version": "2"}}, {"net": 3}])
def test_wrong_types_inside_a_model_folder_config_are_refused(trained, tmp_path, change):
    import json

    import i2i

    folder = i2i.export_generator(trained, tmp_path / "folder", folder=True)
    info = json.loads((folder / "config.json").read_text())
    for k, v in change.items():
        info[k] = {**info[k], **v} if isinstance(v, dict) else v
    (folder / "config.json").write_text(json.dumps(info))
    with pytest.raises(i2i.CheckpointError, match="damaged|not an i2i model description"):
        i2i.Translator.from_pretrained(folder)
