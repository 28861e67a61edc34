"""RRDBNet as BasicSR publishes it: parameter counts of the released layouts, BasicSR's key
names, and the forward pass against a direct functional computation from the state dict."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from i2i.nets.rrdbnet import RRDBNet


@pytest.mark.parametrize(("kwargs", "count"), [
    ({}, 16_697_987),                 # ESRGAN / RealESRGAN_x4plus / RealESRNet_x4plus
    ({"scale": 2}, 16_703_171),       # RealESRGAN_x2plus (12 input channels after pixel-unshuffle)
    ({"n_blocks": 6}, 4_467_779),     # RealESRGAN_x4plus_anime_6B
])
def test_parameter_counts_of_the_published_layouts(kwargs, count):
    with torch.device("meta"):
        net = RRDBNet(**kwargs)
    assert sum(p.numel() for p in net.parameters()) == count


def test_state_dict_keys_are_basicsrs():
    keys = list(RRDBNet(n_blocks=2, base_channels=8, growth=4).state_dict())
    pattern = re.compile(
        r"^(conv_first|body\.\d+\.rdb[123]\.conv[1-5]|conv_body|conv_up1|conv_up2|conv_hr|conv_last)\.(weight|bias)$"
    )
    assert all(pattern.match(k) for k in keys), [k for k in keys if not pattern.match(k)]
    assert len([k for k in keys if k.startswith("body.")]) == 2 * 3 * 5 * 2
    assert keys[:2] == ["conv_first.weight", "conv_first.bias"] and keys[-2:] == ["conv_last.weight", "conv_last.bias"]


def _direct(sd: dict[str, torch.Tensor], x: torch.Tensor, n_blocks: int, unshuffle: int) -> torch.Tensor:
    """BasicSR's RRDBNet.forward written out with the state dict's tensors."""
    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.2)

    feat = conv("conv_first", F.pixel_unshuffle(x, unshuffle) if unshuffle > 1 else x)
    body = feat
    for b in range(n_blocks):
        rrdb_in = body
        for r in (1, 2, 3):
            p = f"body.{b}.rdb{r}"
            x1 = lrelu(conv(f"{p}.conv1", body))
            x2 = lrelu(conv(f"{p}.conv2", torch.cat((body, x1), 1)))
            x3 = lrelu(conv(f"{p}.conv3", torch.cat((body, x1, x2), 1)))
            x4 = lrelu(conv(f"{p}.conv4", torch.cat((body, x1, x2, x3), 1)))
            x5 = conv(f"{p}.conv5", torch.cat((body, x1, x2, x3, x4), 1))
            body = x5 * 0.2 + body
        body = body * 0.2 + rrdb_in
    feat = feat + conv("conv_body", body)
    feat = lrelu(conv("conv_up1", F.interpolate(feat, scale_factor=2, mode="nearest")))
    feat = lrelu(conv("conv_up2", F.interpolate(feat, scale_factor=2, mode="nearest")))
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_forward_is_basicsrs_on_unit_range_images_and_ours_on_minus_one_to_one(scale):
    torch.manual_seed(0)
    net = RRDBNet(scale=scale, n_blocks=2, base_channels=8, growth=4).eval()
    x01 = torch.rand(2, 3, 8, 12)
    with torch.no_grad():
        unit = net.forward_unit(x01)
        want = _direct(net.state_dict(), x01, 2, 4 // scale)
        ours = net(x01 * 2 - 1)
    assert unit.shape == (2, 3, 8 * scale, 12 * scale) and net.size_multiple == 4 // scale
    assert torch.allclose(unit, want, atol=1e-5)
    assert torch.allclose(ours, unit * 2 - 1, atol=1e-5)
    with pytest.raises(ValueError, match="scale must be 1, 2 or 4"):
        RRDBNet(scale=3)
