"""Published ESRGAN / Real-ESRGAN weights imported exactly: every listed key layout (BasicSR
``params_ema`` / ``params``, xinntao/ESRGAN's names, the first ESRGAN release, SRVGGNet), built
from the published architectures with random weights, gives the published network's output
through ``i2i import-weights`` + ``Translator`` / ``i2i convert`` (within one 8-bit level)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_rrdbnet import _direct

import i2i
from i2i.cli import main
from i2i.compat.esrgan import import_sr_generator, to_i2i_keys
from i2i.data.io import read_image, write_image
from i2i.nets.rrdbnet import RRDBNet

pytestmark = pytest.mark.numerics  # tolerances against direct computations and OpenCV

N_BLOCKS, FEAT, GROWTH = 2, 8, 4


def _random_basicsr(scale: int, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = RRDBNet(scale=scale, n_blocks=N_BLOCKS, base_channels=FEAT, growth=GROWTH)
    return {k: torch.randn_like(v) * 0.1 for k, v in net.state_dict().items()}


def _esrgan_repo_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """xinntao/ESRGAN's RRDBNet_arch.py names."""
    out = {}
    for k, v in sd.items():
        if m := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(\w+)", k):
            k = f"RRDB_trunk.{m[1]}.RDB{m[2]}.conv{m[3]}.{m[4]}"
        else:
            head, _, tail = k.partition(".")
            k = (
                {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}.get(
                    head, head
                )
                + "."
                + tail
            )
        out[k] = v
    return out


def _esrgan_first_release_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """RRDB_ESRGAN_x4.pth's names (as the repository's transer_RRDB_models.py reads them)."""
    table = {"conv_first": "model.0", "conv_body": f"model.1.sub.{N_BLOCKS}", "conv_up1": "model.3",
             "conv_up2": "model.6",
             "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for k, v in sd.items():
        if m := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(\w+)", k):
            k = f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"
        else:
            head, _, tail = k.partition(".")
            k = f"{table[head]}.{tail}"
        out[k] = v
    return out


def _srvgg_state(n_convs: int = 3, feat: int = 8, scale: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd, i = {}, 0
    chans = [3] + [feat] * (n_convs + 1)
    for c_in, c_out in zip(chans[:-1], chans[1:]):
        sd[f"body.{i}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.1
        sd[f"body.{i}.bias"] = torch.randn(c_out, generator=g) * 0.1
        sd[f"body.{i + 1}.weight"] = torch.rand(c_out, generator=g) * 0.3
        i += 2
    sd[f"body.{i}.weight"] = torch.randn(3 * scale * scale, feat, 3, 3, generator=g) * 0.1
    sd[f"body.{i}.bias"] = torch.randn(3 * scale * scale, generator=g) * 0.1
    return sd


def _srvgg_direct(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """Real-ESRGAN's SRVGGNetCompact.forward on [0, 1] written out with the state dict."""
    convs = sorted({int(k.split(".")[1]) for k in sd if sd[k].dim() == 4})
    y = x
    for i in convs:
        y = F.conv2d(y, sd[f"body.{i}.weight"], sd[f"body.{i}.bias"], padding=1)
        if i != convs[-1]:
            y = F.prelu(y, sd[f"body.{i + 1}.weight"])
    return F.pixel_shuffle(y, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


LAYOUTS = {
    "params_ema": lambda sd: {"params_ema": sd},
    "params": lambda sd: {"params": sd},
    "both": lambda sd: {"params": {k: v + 1 for k, v in sd.items()}, "params_ema": sd},  # EMA preferred, as Real-ESRGAN
    "bare_module": lambda sd: {"module." + k: v for k, v in sd.items()},
    "esrgan": _esrgan_repo_names,
    "esrgan_old": _esrgan_first_release_names,
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("scale", [4, 2])
def test_every_rrdbnet_layout_imports_exactly(layout, scale):
    sd = _random_basicsr(scale)
    net, info = import_sr_generator(LAYOUTS[layout](sd))
    assert info.arch == "rrdbnet" and info.kwargs == {"in_channels": 3, "out_channels": 3, "scale": scale,
                                                      "base_channels": FEAT,
                                                      "n_blocks": N_BLOCKS, "growth": GROWTH}
    assert info.layout == {"esrgan": "esrgan", "esrgan_old": "esrgan_old"}.get(layout, "basicsr")
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        want = _direct(sd, x, N_BLOCKS, 4 // scale)
        assert torch.allclose(net.forward_unit(x), want, atol=1e-5)
        assert torch.allclose((net(x * 2 - 1) + 1) / 2, want, atol=1e-5)


def test_srvgg_layout_imports_exactly():
    sd = _srvgg_state()
    net, info = import_sr_generator({"params": sd})
    assert info.arch == "srvgg" and info.kwargs == {"in_channels": 3, "out_channels": 3, "scale": 4, "base_channels": 8,
                                                    "n_convs": 3, "act": "prelu"}
    x = torch.rand(2, 3, 8, 10)
    with torch.no_grad():
        assert torch.allclose((net(x * 2 - 1) + 1) / 2, _srvgg_direct(sd, x, 4), atol=1e-5)


def test_import_weights_cli_then_convert_gives_the_published_output_within_one_level(tmp_path, capsys):
    sd = _random_basicsr(4, seed=1)
    torch.save({"params_ema": sd}, tmp_path / "RealESRGAN_x4plus.pth")
    out = tmp_path / "realesrgan.pt"
    assert main(["import-weights", str(tmp_path / "RealESRGAN_x4plus.pth"), "-o", str(out)]) == 0
    assert "rrdbnet" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    img = (rng.random((20, 28, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "in" / "a.png", img)
    assert main(["convert", str(out), str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    got = read_image(tmp_path / "out" / "a.png").astype(np.int32)
    with torch.no_grad():
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        want = (_direct(sd, x, N_BLOCKS, 1).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int32)
    assert got.shape == (80, 112, 3)
    assert np.abs(got - want).max() <= 1
    tr = i2i.Translator.from_checkpoint(out, device="cpu")
    assert tr.cfg.pipeline == "srgan" and tr.scale == 4


def test_sr_import_errors_name_the_file_and_the_problem(tmp_path, capsys):
    sd = _random_basicsr(4)
    del sd["conv_hr.weight"]
    torch.save({"params": sd}, tmp_path / "broken.pth")
    assert main(["import-weights", str(tmp_path / "broken.pth"), "-o", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "broken.pth" in err and "conv_hr.weight" in err and not (tmp_path / "x.pt").exists()
    torch.save({"params": {"conv_first.weight": torch.zeros(1), "body.0.conv1.weight": torch.zeros(1)}},
               tmp_path / "msr.pth")
    assert main(["import-weights", str(tmp_path / "msr.pth"), "-o", str(tmp_path / "x.pt")]) == 2
    assert "MSRResNet" in capsys.readouterr().err
    torch.save({"params": _random_basicsr(4)}, tmp_path / "ok.pth")
    assert main(["import-weights", str(tmp_path / "ok.pth"), "-o", str(tmp_path / "x.pt"), "--arch", "unet_256"]) == 2
    assert "architecture is read from its keys" in capsys.readouterr().err
    with pytest.raises(i2i.CheckpointError, match="fit no published super-resolution layout"):
        to_i2i_keys({"enc.weight": torch.zeros(1)})
