"""Open doors (issue 43): other projects' model files through i2i (Spandrel), i2i's SR nets out to
Spandrel and chaiNNer, and ``i2i models``. Models are built by Spandrel's own classes with random
weights at small sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2i import Translator
from i2i.checkpoint import CheckpointError
from i2i.cli import main
from i2i.compat import spandrel as compat_spandrel
from i2i.nets.registry import build_generator

sp = pytest.importorskip("spandrel")
arch = pytest.importorskip("spandrel.architectures.ESRGAN")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _models() -> dict:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.DAT import DAT
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.HAT import HAT
    from spandrel.architectures.NAFNet import NAFNet
    from spandrel.architectures.SCUNet import SCUNet
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    return {
        "esrgan_x2": lambda: ESRGAN(num_filters=8, num_blocks=1, scale=2),  # the first layout at x2: Spandrel's only
        "compact": lambda: Compact(num_feat=8, num_conv=2, upscale=2),
        "span": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2),
        "swinir": lambda: SwinIR(img_size=16, embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2,
                                 upsampler="pixelshuffledirect", mlp_ratio=2.0),
        "hat": lambda: HAT(img_size=16, embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2,
                           upsampler="pixelshuffle", mlp_ratio=2.0, num_feat=8, compress_ratio=3, squeeze_factor=4),
        "dat": lambda: DAT(img_size=16, embed_dim=16, depth=[1], num_heads=[2], split_size=[2, 4], upscale=2,
                           expansion_factor=2.0),
        "nafnet": lambda: NAFNet(width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1]),
        "scunet": lambda: SCUNet(config=[1] * 7, dim=64),
    }


EXPECTED = {"esrgan_x2": ("ESRGAN", 2, "spandrel"), "compact": ("RealESRGAN Compact", 2, "i2i"),
            "span": ("SPAN", 2, "spandrel"), "swinir": ("SwinIR", 2, "spandrel"), "hat": ("HAT", 2, "spandrel"),
            "dat": ("DAT", 2, "spandrel"), "nafnet": ("NAFNet", 1, "spandrel"), "scunet": ("SCUNet", 1, "spandrel")}


def _write(tmp_path, name: str, suffix: str = ".pth"):
    torch.manual_seed(0)
    state = _models()[name]().state_dict()
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def _descriptor_8bit(path, rgb: np.ndarray) -> np.ndarray:
    """The descriptor's own forward on an 8-bit RGB image, rounded to 8 bits."""
    d = sp.ModelLoader().load_from_state_dict(compat_spandrel.read_state_file(path)).eval()
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    return (d(x)[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_spandrel_model_runs_in_i2i_as_its_own_forward_whole_and_tiled_for_rgb_gray_and_rgba(tmp_path, name):
    torch.set_num_threads(2)
    path = _write(tmp_path, name, ".safetensors" if name == "span" else ".pth")
    tr = Translator.from_file(path, device="cpu")
    title, scale, loader = EXPECTED[name]
    assert (tr.foreign.architecture, tr.scale, tr.foreign.loader) == (title, scale, loader)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (27, 35, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (27, 35), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (27, 35, 1), dtype=np.uint8)], axis=2)
    for img, as_rgb in ((rgb, rgb), (gray, np.repeat(gray[:, :, None], 3, 2)), (rgba, rgb)):
        out = tr(img)
        assert out.shape[:2] == (27 * scale, 35 * scale)
        ref = _descriptor_8bit(path, as_rgb)
        assert np.abs(out[:, :, :3].astype(int) - ref).max() <= 1, name
        if img.shape[-1] == 4:  # alpha carried through, upscaled
            assert np.array_equal(out[:, :, 3], np.repeat(np.repeat(rgba[:, :, 3], scale, 0), scale, 1))
    tiled = Translator.from_file(path, device="cpu", tile=16)
    if tiled.tile_context is not None:  # a finite receptive field on a shift-invariant grid: tiles are exact
        assert "exact tiles" in tiled.tile_policy
        assert np.abs(tiled(rgb).astype(int) - tr(rgb).astype(int)).max() <= 1
    else:
        assert "blended tiles" in tiled.tile_policy
        assert tiled(rgb).shape == tr(rgb).shape
    assert Translator.from_file(path, device="cpu", tile=64)(rgb).tolist() == tr(rgb).tolist()  # one tile: whole


def test_convolutional_models_tile_exactly_and_window_attention_blends(tmp_path):
    span = Translator.from_file(_write(tmp_path, "span"), device="cpu", tile=16)
    swinir = Translator.from_file(_write(tmp_path, "swinir"), device="cpu", tile=16)
    hat = Translator.from_file(_write(tmp_path, "hat"), device="cpu", tile=16)
    assert span.tile_context is not None and span.tile_context >= 17
    assert swinir.tile_context is None and "shift-invariant" in swinir.tile_policy
    assert "advises against tiling" in swinir.tile_policy  # Spandrel's own advice, said
    assert hat.tile_context is None and "whole image" in hat.tile_policy


def test_the_cli_converts_with_a_spandrel_model_and_says_how_it_tiles(tmp_path, capsys):
    path = _write(tmp_path, "span")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(src / "a.png")
    assert main(["convert", str(path), str(src), str(tmp_path / "out"), "--tile", "16", "--quiet"]) == 0
    assert "SPAN" in capsys.readouterr().out
    assert Image.open(tmp_path / "out" / "a.png").size == (80, 60)


def test_unknown_architecture_names_what_was_found_lists_families_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "mystery.pth"
    torch.save({"encoder.weird.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="recognised no architecture.*encoder.weird.weight.*SwinIR"):
        Translator.from_file(path, device="cpu")
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (8, 8)).save(src / "a.png")
    assert main(["convert", str(path), str(src), str(tmp_path / "out")]) == 2
    assert "mystery.pth" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_files_that_would_run_code_are_refused_not_executed(tmp_path):
    scripted = torch.jit.script(torch.nn.Conv2d(3, 3, 3))
    ts = tmp_path / "model.pt"
    torch.jit.save(scripted, str(ts))  # TorchScript: Spandrel's own file loader would run it
    with pytest.raises(CheckpointError, match="model.pt"):
        Translator.from_file(ts, device="cpu")
    pickled = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Conv2d(3, 3, 3), pickled)  # a pickled module, not a state dict
    with pytest.raises(CheckpointError, match="whole_model.pth"):
        Translator.from_file(pickled, device="cpu")


def test_published_layouts_load_without_spandrel_and_others_name_the_extra(tmp_path, monkeypatch):
    compact, span = _write(tmp_path, "compact"), _write(tmp_path, "span")

    def missing():
        raise ImportError("models of other projects are loaded by Spandrel: pip install 'i2i[spandrel]'")

    monkeypatch.setattr(compat_spandrel, "spandrel", missing)
    assert Translator.from_file(compact, device="cpu").foreign.loader == "i2i"
    with pytest.raises(ImportError, match=r"i2i\[spandrel\]"):
        Translator.from_file(span, device="cpu")


def test_spandrel_models_refuse_what_does_not_apply(tmp_path):
    path = _write(tmp_path, "span")
    with pytest.raises(ValueError, match="runtime torch or compile"):
        Translator.from_file(path, device="cpu", runtime="onnxruntime")
    with pytest.raises(ValueError, match="eval mode"):
        Translator.from_file(path, device="cpu", mode="paper")
    with pytest.raises(ValueError, match="two-way"):
        Translator.from_file(path, device="cpu", direction="b_to_a")
    with pytest.raises(CheckpointError, match="keep its own file"):
        Translator.from_file(path, device="cpu").save_pretrained(tmp_path / "folder")
    assert not (tmp_path / "folder").exists()


def _i2i_sr_file(tmp_path, arch: str, **kwargs) -> str:
    torch.manual_seed(0)
    net = build_generator(arch, **kwargs)
    src = tmp_path / f"{arch}_published.pth"
    torch.save(net.state_dict(), src)
    out = tmp_path / f"{arch}.pt"
    assert main(["import-weights", str(src), "-o", str(out)]) == 0
    return str(out)


@pytest.mark.parametrize("arch,kwargs,suffix,name", [
    ("rrdbnet", {"scale": 2, "base_channels": 8, "n_blocks": 1}, ".pth", "ESRGAN"),
    ("srvgg", {"scale": 4, "base_channels": 8, "n_convs": 2}, ".safetensors", "RealESRGAN Compact"),
])
def test_i2i_sr_nets_export_to_files_spandrel_loads_as_the_same_function(tmp_path, arch, kwargs, suffix, name):
    ckpt = _i2i_sr_file(tmp_path, arch, **kwargs)
    out = tmp_path / f"export{suffix}"
    assert main(["export", ckpt, "--format", "spandrel", "-o", str(out)]) == 0
    state = compat_spandrel.read_state_file(out)
    d = sp.ModelLoader().load_from_state_dict(state).eval()
    assert (d.architecture.name, d.scale) == (name, kwargs["scale"])
    ours = Translator.from_file(ckpt, device="cpu")
    x = torch.rand(1, 3, 20, 28)
    ref = ((ours.translate_tensor(x * 2 - 1) + 1) / 2).clamp(0, 1)
    assert float((d(x) - ref).abs().max()) < 1e-5


def test_nets_spandrel_would_run_differently_are_refused_with_the_reason(tmp_path, trained, capsys):
    bicubic = _i2i_sr_file(tmp_path, "rrdbnet", scale=4, base_channels=8, n_blocks=1, growth=4)
    assert main(["export", bicubic, "--format", "spandrel", "-o", str(tmp_path / "g.pth")]) == 2
    assert "grow by 4 channels" in capsys.readouterr().err
    assert main(["export", trained, "--format", "spandrel", "-o", str(tmp_path / "unet.pth")]) == 2
    assert "UnetGenerator has no architecture in Spandrel" in capsys.readouterr().err
    assert not (tmp_path / "g.pth").exists() and not (tmp_path / "unet.pth").exists()
    with pytest.raises(ValueError, match="bicubic"):
        compat_spandrel.spandrel_state(build_generator("srvgg", base="bicubic", n_convs=1, base_channels=4))


def test_chainner_onnx_profile_takes_input_in_0_1_and_equals_the_translator(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    ckpt = _i2i_sr_file(tmp_path, "srvgg", scale=2, base_channels=8, n_convs=2)
    out = tmp_path / "model.onnx"
    assert main(["export", ckpt, "--onnx", "--profile", "chainner", "-o", str(out)]) == 0
    model = onnx.load(str(out))
    (inp,) = model.graph.input
    assert inp.name == "input"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim][1] == 3
    assert all(d.dim_param for i, d in enumerate(inp.type.tensor_type.shape.dim) if i != 1)  # batch, H, W dynamic
    assert {p.key: p.value for p in model.metadata_props}["profile"] == "chainner"
    x = np.random.default_rng(0).random((2, 3, 19, 26), dtype=np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    tr = Translator.from_file(ckpt, device="cpu")
    ref = ((tr.translate_tensor(torch.from_numpy(x) * 2 - 1) + 1) / 2).clamp(0, 1).numpy()
    assert got.shape == (2, 3, 38, 52) and np.abs(got - ref).max() < 1e-5
    assert main(["export", ckpt, "--profile", "chainner", "-o", str(tmp_path / "x.pt")]) == 2


def test_models_lists_describes_and_checks_every_kind(tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("span", "compact"):
        _write(folder, name)
    ckpt = _i2i_sr_file(tmp_path, "srvgg", scale=2, base_channels=8, n_convs=2)
    (folder / "mine.pt").write_bytes(open(ckpt, "rb").read())
    assert main(["models", "list", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Spandrel" in out and "SPAN" in out and "published ESRGAN" in out and "i2i export" in out
    assert main(["models", "check", str(folder)]) == 0
    assert "checked 3 models: 3 ran, 0 with problems" in capsys.readouterr().out
    (folder / "broken.safetensors").write_bytes(b"not a model")
    assert main(["models", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "broken.safetensors" in out and "problem:" in out and "1 with problems" in out
    assert main(["models", "describe", str(folder / "span.pth")]) == 0
    out = capsys.readouterr().out
    assert "read by Spandrel" in out and "SR, x2" in out and "sha256:" in out
    assert main(["info", str(folder / "span.pth")]) == 0


def test_eval_scores_a_spandrel_upscaler_against_bicubic(tmp_path, sr_data, capsys):
    path = _write(tmp_path, "span")
    assert main(["eval", str(path), "--data", str(sr_data / "test"), "--limit", "2", "--out",
                 str(tmp_path / "ev")]) == 0
    assert "bicubic" in capsys.readouterr().out
    assert (tmp_path / "ev" / "metrics.json").is_file()
    nafnet = _write(tmp_path, "nafnet")
    assert main(["eval", str(nafnet), "--data", str(sr_data / "test")]) == 2
    assert "scale-1" in capsys.readouterr().err


def test_a_video_converts_through_a_spandrel_model_with_its_audio(tmp_path):
    from test_video import decode, make_clip

    path = _write(tmp_path, "span")
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    assert main(["convert", str(path), str(clip), str(tmp_path / "out"), "--quiet", "--codec", "ffv1",
                 "--video-ext", "mkv"]) == 0
    got, _, info = decode(tmp_path / "out" / "clip.mkv")
    frames, _, src = decode(clip)
    assert info["size"] == (128, 96) and len(got) == 4 and info["audio"] == src["audio"]
    tr = Translator.from_file(path, device="cpu")
    for g, f in zip(got, frames):
        assert np.abs(g.astype(int) - tr(f).astype(int)).max() <= 1


@pytest.mark.parametrize("which", ["srvgg", "unet"])
def test_ncnn_export_runs_in_ncnn_as_the_translator_with_the_upscalers_blob_names(tmp_path, trained, which):
    ncnn = pytest.importorskip("ncnn")
    pytest.importorskip("pnnx")
    ckpt = _i2i_sr_file(tmp_path, "srvgg", scale=2, base_channels=8, n_convs=2) if which == "srvgg" else trained
    assert main(["export", ckpt, "--format", "ncnn", "-o", str(tmp_path / "m" / "model")]) == 0
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["model.bin", "model.param"]  # nothing else left behind
    tr = Translator.from_file(ckpt, device="cpu")
    x = torch.rand(1, tr.in_channels, 5 * tr.size_multiple if which == "unet" else 21, 2 * max(tr.size_multiple, 13))
    ref = ((tr.translate_tensor(x * 2 - 1) + 1) / 2).clamp(0, 1)[0]
    with ncnn.Net() as net:
        net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False
        net.load_param(str(tmp_path / "m" / "model.param"))
        net.load_model(str(tmp_path / "m" / "model.bin"))
        with net.create_extractor() as ex:
            ex.input("data", ncnn.Mat(x.numpy(), batch_index=0).clone())
            _, out = ex.extract("output")
            got = torch.from_numpy(out.numpy(batch_index=0).copy())
    assert got.numel() == ref.numel() and float((got.reshape(ref.shape) - ref).abs().max()) < 1e-4
