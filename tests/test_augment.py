"""Discriminator augmentation (DiffAugment's transforms, StyleGAN2-ADA's adaptive probability):
what each transform does to pixels, the pair draw of a conditional D, the ADA update, the
config keys (training with it in every pipeline: tests/test_registry.py)."""

from __future__ import annotations

import pytest
import torch

from i2i.augment import DiscriminatorAugment
from i2i.config import ConfigError
from i2i.losses import GANLoss
from i2i.options import AUGMENTATIONS as POLICIES
from i2i.options import parse_policy


def _coded(n: int = 6, c: int = 2, h: int = 16, w: int = 16) -> torch.Tensor:
    """Images whose every pixel value says where it came from: 1 + sample, channel, row, column
    (positive, so a zero is a pixel shifted or cut in)."""
    return torch.arange(1, n * c * h * w + 1, dtype=torch.float64).reshape(n, c, h, w)


def test_translation_shifts_each_image_by_at_most_an_eighth_and_fills_zeros():
    torch.manual_seed(0)
    x = _coded()
    y = DiscriminatorAugment(["translation"])(x)
    n, c, h, w = x.shape
    shifts = set()
    for i in range(n):
        found = None
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                padded = torch.nn.functional.pad(x[i], [2, 2, 2, 2])
                expect = padded[:, 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]  # output(y, x) = input(y + dy, x + dx)
                if torch.equal(y[i], expect):
                    found = (dy, dx)
        assert found is not None, f"image {i} is not an integer shift of at most 2 (16 / 8) pixels"
        shifts.add(found)
    assert len(shifts) > 1  # a draw per image


def test_cutout_zeroes_one_square_of_half_the_side_and_keeps_the_rest():
    torch.manual_seed(1)
    x = _coded(n=8)
    y = DiscriminatorAugment(["cutout"])(x)
    for i in range(8):
        cut = (y[i] == 0).all(0)
        assert torch.equal(y[i][:, ~cut], x[i][:, ~cut])
        rows, cols = cut.any(1).nonzero().flatten(), cut.any(0).nonzero().flatten()
        # a square, clipped at edges
        assert int(cut.sum()) == len(rows) * len(cols) and 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()


def test_flip_and_rot90_give_one_of_the_allowed_images():
    torch.manual_seed(2)
    x = _coded(n=12)
    flipped = DiscriminatorAugment(["flip"])(x)
    assert all(torch.equal(flipped[i], x[i].flip(2)) for i in range(12))  # p = 1: every image
    turned = DiscriminatorAugment(["rot90"])(x)
    ks = [next(k for k in range(4) if torch.equal(turned[i], torch.rot90(x[i], k, (1, 2)))) for i in range(12)]
    assert len(set(ks)) > 2
    wide = _coded(n=12, h=8, w=16)
    out = DiscriminatorAugment(["rot90"])(wide)  # not square: 0 or 180 degrees
    assert out.shape == wide.shape
    assert all(torch.equal(out[i], wide[i]) or torch.equal(out[i], torch.rot90(wide[i], 2, (1, 2))) for i in range(12))


def test_color_changes_brightness_saturation_and_contrast_per_image_and_one_draw_covers_a_pair():
    torch.manual_seed(3)
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    y = DiscriminatorAugment(["color"])(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    assert len({round(float(d), 4) for d in (y - x).mean((1, 2, 3))}) == 8  # each image its own draw
    # A conditional D's pair (input, output): one draw for both. The same image twice comes out
    # the same twice under every transform, each group's colour statistics computed on its own.
    pair = torch.cat([x, x], 1)
    out = DiscriminatorAugment(POLICIES)(pair, groups=(3, 3))
    assert torch.allclose(out[:, :3], out[:, 3:], atol=1e-6)
    # ... and a gray 1-channel input beside a colour output: saturation is per group, so the
    # gray channel's own mean is itself: only brightness and contrast change it.
    gray = torch.rand(8, 1, 8, 8)
    out = DiscriminatorAugment(["color"])(torch.cat([gray, x], 1), groups=(1, 3))
    assert out.shape == (8, 4, 8, 8)


def test_probability_gates_each_image_and_gradients_flow():
    torch.manual_seed(4)
    x = torch.rand(400, 1, 8, 8, requires_grad=True)
    none = DiscriminatorAugment(["flip"], p=0.0)(x)
    assert torch.equal(none, x)
    half = DiscriminatorAugment(["flip"], p=0.5)(x)
    changed = (half != x).flatten(1).any(1).float().mean()
    assert 0.4 < float(changed) < 0.6
    DiscriminatorAugment(POLICIES)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown augmentation 'colour'.*color, translation, cutout, flip, rot90"):
        parse_policy("colour,translation")
    assert parse_policy(" color , cutout ,") == ("color", "cutout") and parse_policy("") == ()


def test_ada_moves_p_toward_the_target_every_interval_and_stays_within_0_and_1():
    ada = DiscriminatorAugment(["flip"], p=0.0, ada_target=0.6, ada_kimg=0.08)  # 80 images: 0 -> 1
    confident = torch.full((8, 1, 4, 4), 3.0)  # D sure every real image is real: r_t = 1 > 0.6
    for i in range(4):
        assert float(ada.p) == 0.0, i  # moves on the 4th observation only
        ada.observe(confident)
    assert float(ada.p) == pytest.approx(32 / 80)  # 4 steps x 8 images
    for _ in range(8):
        ada.observe(confident)
    assert float(ada.p) == 1.0  # clipped
    unsure = torch.cat([torch.full((5, 1, 4, 4), 1.0), torch.full((3, 1, 4, 4), -1.0)])  # r_t = 0.25 < 0.6
    for _ in range(4):
        ada.observe(unsure)
    assert float(ada.p) == pytest.approx(1 - 32 / 80)
    state = ada.state_dict()
    again = DiscriminatorAugment(["flip"], p=0.0, ada_target=0.6, ada_kimg=0.08)
    again.load_state_dict(state)
    assert float(again.p) == float(ada.p)
    fixed = DiscriminatorAugment(["flip"], p=0.3)
    fixed.observe(confident)
    assert float(fixed.p) == pytest.approx(0.3)
    lsgan = GANLoss.from_config(type("L", (),
                                     {"gan_mode": "lsgan", "r1_weight": 0.0, "gp_weight": 10.0,
                                      "augment_policy": "flip",
                                      "augment_p": 1.0, "ada_target": 0.6, "ada_kimg": 1.0})())
    # ADA starts at 0
    assert lsgan.augment is not None and lsgan.augment.threshold == 0.5 and float(lsgan.augment.p) == 0.0


def test_augmentation_keys_are_checked(tmp_path, gray2color, make_config):
    with pytest.raises(ConfigError, match="loss.augment_policy: unknown augmentation 'zoom'"):
        make_config(tmp_path, gray2color, loss={"augment_policy": "zoom"})
    with pytest.raises(ConfigError, match="loss.ada_target .* loss.augment_policy, which is empty"):
        make_config(tmp_path, gray2color, loss={"ada_target": 0.6})
    with pytest.raises(ConfigError, match="loss.ada_target .*wgangp"):
        make_config(tmp_path, gray2color, loss={"gan_mode": "wgangp", "augment_policy": "color", "ada_target": 0.6})
    with pytest.raises(ConfigError, match="augment_p"):
        make_config(tmp_path, gray2color, loss={"augment_policy": "color", "augment_p": 1.5})
    with pytest.raises(ConfigError, match="ada_target"):
        make_config(tmp_path, gray2color, loss={"augment_policy": "color", "ada_target": 1.0})
