"""Seamless textures (issue 44, part 3): ``--seamless wrap|mirror`` gives outputs that tile without
seams. Finite receptive fields: equal to the centre of the output of a 3x3 mosaic of the input.
Unbounded ones (U-Net): circular borders inside the net, checked by exact shift equivariance and
by the seam test of the issue."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.cli import main
from i2i.nets.registry import build_generator
from i2i.recipes import config_from_dict
from i2i.tiling import circular_copy, periodic_pad
from i2i.translator import Translator

pytestmark = pytest.mark.numerics

FAMILIES = {
    "srvgg": ("srvgg", {"scale": 2, "n_convs": 2, "base_channels": 8}),
    "rrdbnet": ("rrdbnet", {"scale": 2, "n_blocks": 1, "base_channels": 8, "growth": 8}),
    "srresnet": ("srresnet", {"scale": 2, "n_blocks": 1, "base_channels": 8}),
    "resnet": ("resnet", {"n_blocks": 1, "base_channels": 4}),
}


def _translator(arch: str, seamless: str | None = None, tile: int | None = None, **kwargs) -> Translator:
    torch.manual_seed(0)
    net = build_generator(arch, **kwargs)
    with torch.no_grad():  # random, not initial, weights: outputs that vary (zero-initialised heads would not)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return Translator(net, config_from_dict({}), direction="a_to_b", device="cpu", seamless=seamless, tile=tile)


def _mosaic(x: torch.Tensor, mode: str) -> torch.Tensor:
    """3x3 copies of ``x`` (``mirror``: every other copy flipped)."""
    if mode == "wrap":
        return x.repeat(1, 1, 3, 3)
    row = torch.cat([x.flip(-1), x, x.flip(-1)], -1)
    return torch.cat([row.flip(-2), row, row.flip(-2)], -2)


def _levels(t: torch.Tensor) -> torch.Tensor:
    return ((t.clamp(-1, 1) + 1) * 127.5).round()


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("mode", ["wrap", "mirror"])
def test_seamless_output_is_the_centre_of_a_3x3_mosaics_output(family, mode):
    torch.set_num_threads(2)
    arch, kwargs = FAMILIES[family]
    tr = _translator(arch, mode, **kwargs)
    plain = _translator(arch, None, **kwargs)
    assert tr.tile_context is not None
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    h, w, s = 36, 44, tr.scale
    got = tr.translate_tensor(x)
    centre = plain.translate_tensor(_mosaic(x, mode))[:, :, h * s : 2 * h * s, w * s : 2 * w * s]
    assert got.shape == centre.shape
    assert float((_levels(got) - _levels(centre)).abs().max()) <= 1
    assert float((got - plain.translate_tensor(x)).abs().max()) > 1e-3  # the borders did change
    tiled = _translator(arch, mode, tile=16, **kwargs).translate_tensor(x)  # tiles and seamless together
    assert float((_levels(tiled) - _levels(got)).abs().max()) <= 1


def test_periodic_pad_repeats_or_mirrors_for_any_pad():
    x = torch.arange(3.0).view(1, 1, 1, 3)
    assert periodic_pad(x, 4, "wrap")[0, 0, 0].tolist() == [2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert periodic_pad(x, 4, "mirror")[0, 0, 0].tolist() == [2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0]
    with pytest.raises(ValueError, match="wrap, mirror"):
        periodic_pad(x, 1, "tile")


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_a_unet_runs_with_circular_borders_and_its_output_tiles(upsample):
    torch.set_num_threads(2)
    tr = _translator("unet", "wrap", num_downs=5, base_channels=8, upsample=upsample)
    assert tr.tile_context is None  # every output pixel depends on the whole image
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(96.0), indexing="ij")
    x = torch.stack([torch.sin(2 * torch.pi * (yy / 64 * k + xx / 96 * (k + 1)) + k) for k in range(3)])[None] * 0.8
    y = tr.translate_tensor(x)
    rolled = tr.translate_tensor(torch.roll(x, (32, 64), (2, 3)))
    assert float((torch.roll(y, (32, 64), (2, 3)) - rolled).abs().max()) < 1e-5  # exactly periodic
    # the seam test: across the wrap-around seam the output changes no more than between neighbours
    inner_w = (y[..., 1:] - y[..., :-1]).abs().mean()
    inner_h = (y[..., 1:, :] - y[..., :-1, :]).abs().mean()
    assert float((y[..., 0] - y[..., -1]).abs().mean()) <= 1.1 * float(inner_w)
    assert float((y[..., 0, :] - y[..., -1, :]).abs().mean()) <= 1.1 * float(inner_h)
    plain = _translator("unet", None, num_downs=5, base_channels=8, upsample=upsample)
    shifted = plain.translate_tensor(torch.roll(x, (32, 64), (2, 3)))
    assert float((torch.roll(plain.translate_tensor(x), (32, 64), (2, 3)) - shifted).abs().max()) > 1e-2  # borders


def test_circular_copy_leaves_the_net_itself_unchanged():
    net = build_generator("resnet", n_blocks=1, base_channels=4).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    twin = circular_copy(net)
    assert all(m.padding_mode == "zeros" for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert any(isinstance(m, torch.nn.CircularPad2d) for m in twin.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_what_seamless_cannot_do_exactly_is_refused_with_the_reason():
    unet = _translator("unet", "wrap", num_downs=5, base_channels=8)
    with pytest.raises(ValueError, match="multiples of 32"):
        unet.translate_tensor(torch.zeros(1, 3, 40, 64))
    with pytest.raises(ValueError, match="finite receptive field"):
        _translator("unet", "mirror", num_downs=5, base_channels=8).translate_tensor(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="seamless"):
        _translator("srvgg", "tile", scale=2, n_convs=1, base_channels=4)


def test_convert_seamless_writes_a_texture_that_tiles(tmp_path, photos):
    torch.set_num_threads(2)
    ckpt = tmp_path / "sr.pt"
    torch.manual_seed(0)
    published = tmp_path / "compact.pth"
    torch.save(build_generator("srvgg", scale=2, n_convs=2, base_channels=8).state_dict(), published)
    assert main(["import-weights", str(published), "-o", str(ckpt)]) == 0
    src = tmp_path / "in"
    src.mkdir()
    photo = sorted(photos.iterdir())[0]
    Image.open(photo).convert("RGB").crop((0, 0, 40, 32)).save(src / "texture.png")
    for mode in ("wrap", "mirror"):
        assert main(["convert", str(ckpt), str(src), str(tmp_path / mode), "--seamless", mode, "--quiet"]) == 0
    out = np.asarray(Image.open(tmp_path / "wrap" / "texture.png")).astype(int)
    tr = Translator.from_file(ckpt, device="cpu")
    mosaic = np.tile(np.asarray(Image.open(src / "texture.png")), (3, 3, 1))
    centre = tr(mosaic)[64:128, 80:160].astype(int)
    assert out.shape == (64, 80, 3) and np.abs(out - centre).max() <= 1


def test_circular_transposed_convolution_maps_a_tiling_to_a_tiling():
    from i2i.tiling import CircularConvTranspose2d

    torch.manual_seed(0)
    conv = CircularConvTranspose2d(3, 4, 4, 2, 1)
    x = torch.randn(1, 3, 5, 7)
    assert float((conv(x.repeat(1, 1, 2, 2)) - conv(x).repeat(1, 1, 2, 2)).abs().max()) < 1e-6
    plain = torch.nn.ConvTranspose2d(3, 4, 4, 2, 1)
    plain.load_state_dict(conv.state_dict())  # the same parameters and keys
    assert float((plain(x.repeat(1, 1, 2, 2)) - plain(x).repeat(1, 1, 2, 2)).abs().max()) > 1e-3


@pytest.mark.parametrize("attention", [0, 8])
def test_a_tileable_dcgan_generator_draws_samples_that_tile(attention):
    """Every layer after the first maps a 2x2 tiling of its input to a 2x2 tiling of its output, so
    the sample (the image after them) is what an endless tiling of itself would be: no seam."""
    torch.manual_seed(0)
    g = build_generator("dcgan", image_size=32, base_channels=8, tileable=True, attention=attention).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        h = g.model[:3](torch.randn(2, 100, 1, 1))  # the first layer's 4x4 maps
        whole, tiled = g.model[3:](h), g.model[3:](h.repeat(1, 1, 2, 2))
    assert tiled.shape[-1] == 64
    assert float((tiled - whole.repeat(1, 1, 2, 2)).abs().max()) < 1e-5
    plain = build_generator("dcgan", image_size=32, base_channels=8, attention=attention).eval()
    plain.load_state_dict(g.state_dict())
    with torch.no_grad():
        assert float((plain.model[3:](h.repeat(1, 1, 2, 2)) - plain.model[3:](h).repeat(1, 1, 2, 2)).abs().max()) > 1e-3


def test_tileable_is_a_config_option_of_the_dcgan_generator():
    cfg = config_from_dict({"pipeline": "dcgan", "model": {"generator": {"name": "dcgan", "base_channels": 8,
                                                                          "tileable": True}}})
    assert cfg.model.generator.arg("tileable") is True
