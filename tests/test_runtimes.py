"""Runtimes (i2i.runtimes): every generator family gives eager torch's output within one 8-bit
level on onnxruntime and OpenVINO, through the Translator's tiles, batches, 16-bit and alpha, from
the command line; int8 is calibrated and close; a missing extra or a wrong combination is one clear
error before anything is written."""

import sys

import numpy as np
import pytest
import torch

import i2i
from i2i.cli import main
from i2i.data.io import read_image, write_image
from i2i.nets.blocks import size_multiple
from i2i.recipes import config_from_dict
from i2i.runtimes import RuntimeUnavailable, build_runner, cached_onnx

LEVEL = 2 / 255  # one 8-bit level in [-1, 1]

FAMILIES = {  # name: (builder arguments, an input shape that is a multiple of the net's size multiple)
    "unet": (dict(name="unet", num_downs=5, base_channels=8), (2, 3, 64, 96)),
    "resnet": (dict(name="resnet", n_blocks=2, base_channels=8, norm="instance"), (2, 3, 36, 44)),
    "srresnet": (dict(name="srresnet", n_blocks=2, base_channels=8, scale=4), (2, 3, 20, 12)),
    "rrdbnet": (dict(name="rrdbnet", n_blocks=1, base_channels=8, growth=4, scale=4), (2, 3, 16, 20)),
    "srvgg": (dict(name="srvgg", n_convs=2, base_channels=8, scale=4), (2, 3, 16, 20)),
    "dcgan": (dict(name="dcgan", image_size=16, base_channels=8, latent_dim=8), (3, 8)),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("I2I_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "runtime-cache"))
    torch.set_num_threads(2)


def _net(family: str) -> torch.nn.Module:
    kwargs, _ = FAMILIES[family]
    torch.manual_seed(0)
    net = i2i.build_generator(**kwargs).eval().requires_grad_(False)
    for m in net.modules():  # eval-mode batch norm with running statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)
    return net


@pytest.mark.numerics
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_equals_eager_torch_within_one_level(family, runtime):
    pytest.importorskip(runtime)
    net = _net(family)
    shape = FAMILIES[family][1]
    m = size_multiple(net) if len(shape) == 4 else 1
    example = (1, shape[1], 2 * max(m, 8), 2 * max(m, 8)) if len(shape) == 4 else (1, shape[1])
    run = build_runner(net, runtime, example=example)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        want = net(x)
    got = run(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    assert (got - want).abs().max() < LEVEL / 4, f"{family} on {runtime}"
    if len(shape) == 4:  # another size through the same (dynamic or re-compiled) model
        x2 = x[:1, :, : shape[2] // 2 * 2 if m == 1 else m * 2, : m * 2 if m > 1 else 8]
        with torch.inference_mode():
            assert (run(x2) - net(x2)).abs().max() < LEVEL / 4


@pytest.fixture(scope="module")
def sr_translator():
    torch.manual_seed(0)
    net = i2i.build_generator("rrdbnet", n_blocks=1, base_channels=8, growth=4, scale=2)
    return net


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_translator_tiles_batches_16_bit_and_alpha_equal_torch(trained, sr_translator, runtime):
    pytest.importorskip(runtime)
    rng = np.random.default_rng(0)
    rgba = np.dstack([rng.integers(0, 256, (45, 70, 3), dtype=np.uint8), np.full((45, 70), 77, np.uint8)])
    deep = rng.integers(0, 65536, (45, 70), dtype=np.uint16)
    cases = [(i2i.Translator.from_checkpoint(trained, device="cpu"), "u-net, blended tiles"),
             (i2i.Translator(sr_translator, config_from_dict({}), direction="a_to_b", device="cpu"), "SR, exact tiles")]
    for eager, what in cases:
        fast = i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", runtime=runtime)
        assert fast.runtime == runtime and runtime in repr(fast)
        for tile in (None, 24):
            eager.tile = fast.tile = tile
            for img in (rgba, deep):
                want, got = eager(img), fast(img)
                assert got.shape == want.shape and got.dtype == want.dtype, what
                level = 257 if img.dtype == np.uint16 else 1
                assert np.abs(got.astype(np.int64) - want).max() <= level, (what, tile, img.dtype)
            batch = [rgba[:, :, :3], rgba[::-1, :, :3].copy(), 255 - rgba[:, :, :3]]
            for w, g in zip(eager.translate_arrays(batch), fast.translate_arrays(batch)):
                assert np.abs(g.astype(int) - w).max() <= 1
        if what.startswith("SR"):
            assert (fast(rgba)[:, :, 3] == 77).all() and fast(rgba).shape == (90, 140, 4)


def test_compile_runtime_equals_eager():
    net = _net("resnet")
    x = torch.rand(1, 3, 24, 28) * 2 - 1
    tr = i2i.Translator(net, config_from_dict({}), direction="a_to_b", device="cpu", runtime="compile")
    with torch.inference_mode():
        want = net(x)
    assert (tr(x[0]) - want[0]).abs().max() < LEVEL / 4


def test_int8_is_calibrated_on_the_named_folder_and_stays_close(trained, gray2color, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    eager = i2i.Translator.from_checkpoint(trained, device="cpu")
    with pytest.raises(ValueError, match="int8 needs calibration images.*--calibration"):
        i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", runtime="openvino",
                       precision="int8")
    missing = i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", runtime="openvino",
                             precision="int8", calibration=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="calibration folder .*nope"):
        missing(np.zeros((8, 8), np.uint8))
    folder = gray2color / "train" / "A"
    q = i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", runtime="openvino",
                       precision="int8", calibration=folder)
    img = read_image(sorted(folder.iterdir())[-1])
    a, b = eager(img).astype(float), q(img).astype(float)
    psnr = 10 * np.log10(255**2 / np.mean((a - b) ** 2))
    print(f"int8 vs fp32: {psnr:.2f} dB")
    assert psnr > 30, psnr  # 50.2 dB on this model here (docs/benchmarks.md has the table)


def test_wrong_combinations_and_missing_extras_fail_before_any_write(trained, tmp_path, monkeypatch, capsys):
    eager = i2i.Translator.from_checkpoint(trained, device="cpu")
    with pytest.raises(ValueError, match=r"runs test.mode eval only \(--mode eval\)"):
        i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", mode="paper",
                       runtime="onnxruntime")
    with pytest.raises(ValueError, match="int8 .* does not run with runtime onnxruntime; it runs with openvino"):
        i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", runtime="onnxruntime",
                       precision="int8", calibration=tmp_path)
    with pytest.raises(ValueError, match="runtime 'tensorrt'.*torch, compile, onnxruntime, openvino"):
        i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", runtime="tensorrt")
    src = tmp_path / "in"
    write_image(src / "a.png", np.zeros((16, 16), np.uint8))
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the extra were not installed
    tr = i2i.Translator(eager.net, eager.cfg, direction=eager.direction, device="cpu", runtime="openvino")
    with pytest.raises(RuntimeUnavailable, match=r"pip install 'i2i\[openvino\]'"):
        tr(np.zeros((8, 8), np.uint8))
    assert main(["convert", trained, str(src), str(tmp_path / "out"), "--runtime", "openvino", "--device", "cpu",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "runtime openvino needs the openvino extra" in err
    assert not (tmp_path / "out").exists()


def test_convert_and_eval_from_the_command_line(trained, gray2color, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    src = gray2color / "test" / "A"
    assert main(["convert", trained, str(src), str(tmp_path / "torch"), "--device", "cpu", "--quiet"]) == 0
    assert main(["convert", trained, str(src), str(tmp_path / "ort"), "--device", "cpu", "--quiet",
                 "--runtime", "onnxruntime"]) == 0
    names = sorted(p.name for p in (tmp_path / "torch").iterdir())
    assert names and names == sorted(p.name for p in (tmp_path / "ort").iterdir())
    for n in names:
        diff = read_image(tmp_path / "torch" / n).astype(int) - read_image(tmp_path / "ort" / n)
        assert np.abs(diff).max() <= 1, n
    capsys.readouterr()
    assert main(["eval", trained, "--data", str(gray2color / "test"), "--runtime", "onnxruntime",
                 "--lpips", "none"]) == 0
    assert "PSNR" in capsys.readouterr().out


def test_a_damaged_cache_entry_is_exported_again():
    pytest.importorskip("onnxruntime")
    net, example = _net("srvgg"), (1, 3, 16, 16)
    path = cached_onnx(net, example)
    path.write_bytes(b"not an onnx graph")  # a disk error, another tool, a hand edit
    run = build_runner(net, "onnxruntime", example=example)
    x = torch.rand(1, 3, 12, 20) * 2 - 1
    with torch.inference_mode():
        assert (run(x) - net(x)).abs().max() < LEVEL / 4
    assert path.read_bytes() != b"not an onnx graph"


def test_a_video_through_openvino_equals_eager_frames(tmp_path):
    """Videos take the same translate path: lossless output frames equal eager torch's within one level."""
    pytest.importorskip("openvino")
    from test_video import decode, make_clip

    from i2i.convert.video import VideoOptions, convert_video

    clip = make_clip(tmp_path / "clip.mp4", frames=6, audio=False)
    eager = i2i.Translator(_net("resnet"), config_from_dict({}), direction="a_to_b", device="cpu")
    fast = i2i.Translator(eager.net, eager.cfg, direction="a_to_b", device="cpu", runtime="openvino")
    stats = convert_video(fast.translate_arrays, clip, tmp_path / "out.mkv", batch_size=3,
                          options=VideoOptions(codec="ffv1"))
    got, _, _ = decode(tmp_path / "out.mkv")
    frames, _, _ = decode(clip)
    assert stats.frames == len(got) == 6
    want = [o for k in range(0, 6, 3) for o in eager.translate_arrays(frames[k : k + 3])]
    assert max(int(np.abs(g.astype(int) - w).max()) for g, w in zip(got, want)) <= 1
