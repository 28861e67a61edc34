import re
from pathlib import Path

import pytest
import torch
from torch import nn

import i2i
from i2i.cli import main
from i2i.compat.reference import import_reference_generator, inspect_reference_state

DATA = Path(__file__).parent / "data" / "reference_generator_keys.txt"


def reference_listing() -> dict[str, dict[str, tuple[int, ...]]]:
    """arch -> {key: shape} from the reference layout listing."""
    out: dict[str, dict[str, tuple[int, ...]]] = {}
    arch = None
    for line in DATA.read_text().splitlines():
        if line.startswith("### "):
            arch = re.search(r"(unet_\d+|resnet_\d+blocks)", line).group(1)
            out[arch] = {}
        elif line and not line.startswith("#") and arch:
            key, shape, _ = line.split("\t")
            out[arch][key] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    return out


# ------------------------------------------------------------------------------------------
# Independent modules in the reference layout, written here from the architecture facts
# (nested Sequentials named `model`; ResNet blocks named `conv_block`). They are the
# "straightforward independent evaluation" the imported i2i nets are compared with.


class RefUnetLevel(nn.Module):
    def __init__(self, outer, inner, in_ch=None, sub=None, outermost=False, innermost=False, norm="batch",
                 dropout=False):
        super().__init__()
        in_ch = in_ch or outer
        bias = norm != "batch"

        def nl(c):
            return nn.BatchNorm2d(c) if norm == "batch" else nn.InstanceNorm2d(c)

        down = nn.Conv2d(in_ch, inner, 4, 2, 1, bias=bias)
        self.outermost = outermost
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), nl(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, nl(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias),
                      nl(outer)] + ([nn.Dropout(0.5)] if dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, num_downs, ngf=64, norm="batch", dropout=True):
        super().__init__()
        b = RefUnetLevel(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            b = RefUnetLevel(ngf * 8, ngf * 8, sub=b, norm=norm, dropout=dropout)
        b = RefUnetLevel(ngf * 4, ngf * 8, sub=b, norm=norm)
        b = RefUnetLevel(ngf * 2, ngf * 4, sub=b, norm=norm)
        b = RefUnetLevel(ngf, ngf * 2, sub=b, norm=norm)
        self.model = RefUnetLevel(3, ngf, in_ch=3, sub=b, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


class RefResBlock(nn.Module):
    def __init__(self, c, dropout):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=True), nn.InstanceNorm2d(c), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=True), nn.InstanceNorm2d(c)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnet(nn.Module):
    def __init__(self, n_blocks, ngf=64, dropout=False):
        super().__init__()
        m = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2**i
            m += [nn.Conv2d(c, c * 2, 3, 2, 1), nn.InstanceNorm2d(c * 2), nn.ReLU(True)]
        m += [RefResBlock(ngf * 4, dropout) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            m += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
        m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*m)

    def forward(self, x):
        return self.model(x)


REF = {"unet_256": lambda: RefUnet(8), "unet_128": lambda: RefUnet(7),
       "resnet_9blocks": lambda: RefResnet(9), "resnet_6blocks": lambda: RefResnet(6)}
LISTING = reference_listing()


def fixture_state(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under exactly the reference keys and shapes (batch-norm variances positive)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in LISTING[arch].items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.05
    return sd


@pytest.mark.parametrize("arch", list(REF))
def test_reference_fixture_imports_and_computes_the_same_function(arch):
    assert set(LISTING) == set(REF)
    state = fixture_state(arch)
    ref = REF[arch]()
    ref.load_state_dict(state, strict=True)  # the independent module has exactly the listed layout
    net, info = import_reference_generator(state)
    assert info.arch == arch and info.kwargs["norm"] == ("batch" if arch.startswith("unet") else "instance")
    size = 256 if arch == "unet_256" else 128
    x = torch.rand(1, 3, size, size) * 2 - 1
    ref.eval(), net.eval()
    with torch.no_grad():
        assert (ref(x) - net(x)).abs().max() < 1e-5


def test_old_format_quirks():
    # DataParallel prefix, _metadata, pre-0.4 instance-norm statistics, missing num_batches_tracked.
    state = {f"module.{k}": v for k, v in fixture_state("resnet_6blocks").items()}
    state["_metadata"] = {}
    for idx in (2, 5, 8):
        state[f"module.model.{idx}.running_mean"] = torch.zeros(1)
        state[f"module.model.{idx}.running_var"] = torch.ones(1)
        state[f"module.model.{idx}.num_batches_tracked"] = torch.tensor(0)
    net, info = import_reference_generator(state)
    assert info.arch == "resnet_6blocks" and info.kwargs["norm"] == "instance"
    unet = {k: v for k, v in fixture_state("unet_128").items() if not k.endswith("num_batches_tracked")}
    net, info = import_reference_generator(unet)
    assert info.arch == "unet_128"


def test_resnet_dropout_shift_is_detected():
    ref = RefResnet(6, dropout=True)
    state = ref.state_dict()
    assert any(".conv_block.6.weight" in k for k in state)  # dropout shifts the second conv
    net, info = import_reference_generator(state)
    assert info.kwargs["dropout"] is True
    x = torch.rand(1, 3, 64, 64)
    ref.eval(), net.eval()
    with torch.no_grad():
        assert (ref(x) - net(x)).abs().max() < 1e-5
    with pytest.raises(i2i.CheckpointError, match="conv_block.6"):
        import_reference_generator(state, dropout=False)


def test_unknown_layouts_are_explained():
    with pytest.raises(i2i.CheckpointError, match="matches no known generator layout.*first keys are: enc.0.weight"):
        inspect_reference_state({"enc.0.weight": torch.zeros(1), "enc.0.bias": torch.zeros(1)})
    with pytest.raises(i2i.CheckpointError, match="does not fit"):
        import_reference_generator(fixture_state("unet_128"), arch="unet_256")
    broken = fixture_state("resnet_9blocks")
    broken["model.10.conv_block.1.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(i2i.CheckpointError, match=r"shape mismatches \(first: model.10.conv_block.1.weight"):
        import_reference_generator(broken)


def test_import_weights_cli_then_convert_info_and_export(tmp_path, capsys):
    ref = RefResnet(6)
    torch.save(ref.state_dict(), tmp_path / "latest_net_G.pth")
    out = tmp_path / "horse2zebra.pt"
    assert main(["import-weights", str(tmp_path / "latest_net_G.pth"), "-o", str(out)]) == 0
    assert "resnet_6blocks" in capsys.readouterr().out
    tr = i2i.Translator.from_checkpoint(out, device="cpu")
    x = torch.rand(1, 3, 36, 52) * 2 - 1
    ref.eval()
    with torch.no_grad():
        assert (tr(x) - ref(x)).abs().max() < 1e-5  # any size: padded and cropped back (36, 52 are multiples of 4)
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "kind:        export" in info and "7,837,699 parameters" in info and "latest_net_G.pth" in info
    assert main(["import-weights", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "x.pt")]) == 2
    torch.save({"weird.weight": torch.zeros(2)}, tmp_path / "weird.pth")
    assert main(["import-weights", str(tmp_path / "weird.pth"), "-o", str(tmp_path / "x.pt")]) == 2
    assert "weird.pth" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()


def test_info_on_a_training_checkpoint(trained, capsys):
    assert main(["info", trained]) == 0
    text = capsys.readouterr().out
    assert "kind:        training" in text and "pipeline:    pix2pix" in text and "net G" in text and "net D" in text
    assert "step:        3" in text and "optimizers:  G, D" in text and "name: tiny" in text


def test_onnx_export_matches_pytorch_with_dynamic_sizes(trained, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from i2i.exporting import export_onnx

    result = export_onnx(trained, tmp_path / "g.onnx")
    assert result["max_abs_diff"] < 1e-4  # checked on a (2, 1, 96, 32) input, not the export's (1, 1, 64, 64)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"image": torch.zeros(3, 1, 32, 160).numpy()})[0]
    assert y.shape == (3, 3, 32, 160)
    assert main(["export", trained, "-o", str(tmp_path / "c.onnx"), "--onnx"]) == 0
    assert "max |diff|" in capsys.readouterr().out
    # The file says how to feed it, and `i2i info` reads that back.
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tmp_path / "g.onnx")).metadata_props}
    assert props["pipeline"] == "pix2pix" and props["direction"] == "a_to_b" and props["size_multiple"] == "32"
    assert props["value_range"].startswith("[-1, 1]") and '"name": "tiny"' in props["i2i_config"]
    assert main(["info", str(tmp_path / "g.onnx")]) == 0
    text = capsys.readouterr().out
    assert "kind:        ONNX model" in text and "image (batch, 1, height, width)" in text
    assert "H and W must be multiples of 32" in text and "value_range: [-1, 1]" in text and "name: tiny" in text


def test_model_folder_export_loads_without_pickle_and_translates_identically(trained, tmp_path, capsys, monkeypatch):
    import json

    from safetensors.torch import load_file

    assert main(["export", trained, "-o", str(tmp_path / "model"), "--safetensors"]) == 0
    assert "model folder" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    info = json.loads((tmp_path / "model" / "config.json").read_text())
    assert (
        info["format"] == "i2i-model"
        and info["pipeline"] == "pix2pix"
        and info["net"] == "G"
        and info["config"]["name"] == "tiny"
    )
    assert set(load_file(str(tmp_path / "model" / "model.safetensors"))) == set(torch.load(trained,
                                                                                           weights_only=True)["nets"]["G"])
    x = torch.rand(2, 1, 40, 24) * 2 - 1
    a = i2i.Translator.from_checkpoint(trained)(x)
    folder = i2i.Translator.from_pretrained(tmp_path / "model")
    assert torch.equal(folder(x), a) and folder.weights == "raw"
    # Every command takes the folder; the loader never unpickles it.
    assert (
        main(["info", str(tmp_path / "model")]) == 0
        and "model folder: config.json + model.safetensors" in capsys.readouterr().out
    )

    def no_pickles(*args, **kwargs):
        raise AssertionError("a model folder must load without torch.load / pickle")

    monkeypatch.setattr(torch, "load", no_pickles)
    assert torch.equal(i2i.Translator.from_pretrained(tmp_path / "model")(x), a)
    monkeypatch.undo()
    # save_pretrained round-trips, and replaces an earlier model folder atomically.
    folder.save_pretrained(tmp_path / "model")
    assert torch.equal(i2i.Translator.from_pretrained(tmp_path / "model")(x), a)
    assert not list(tmp_path.glob(".model*"))


def test_model_folder_errors_name_the_file_and_never_replace_other_folders(trained, tmp_path):
    from i2i.exporting import export_generator

    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.jpg").write_bytes(b"x")
    with pytest.raises(i2i.CheckpointError, match="not an i2i model folder; choose another output"):
        export_generator(trained, other, folder=True)
    assert (other / "keep.jpg").read_bytes() == b"x"
    with pytest.raises(i2i.CheckpointError, match="needs config.json and model.safetensors"):
        i2i.Translator.from_pretrained(other)
    export_generator(trained, tmp_path / "m", folder=True)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(i2i.CheckpointError, match="model.safetensors' cannot be read"):
        i2i.Translator.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(i2i.CheckpointError, match="config.json' is not valid JSON"):
        i2i.Translator.from_pretrained(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="from_checkpoint"):
        i2i.Translator.from_pretrained(trained)
