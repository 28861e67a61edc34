import pytest
import torch

import i2i
from i2i.nets import count_parameters, set_test_mode
from i2i.nets.blocks import init_weights

# (builder, name, kwargs, reference parameter count from the pix2pix/CycleGAN reference code)
REFERENCE_COUNTS = [
    ("G", "unet_256", {"norm": "batch"}, 54_413_955),
    ("G", "unet_128", {"norm": "batch"}, 41_828_995),
    ("G", "unet_256", {"norm": "instance"}, 54_409_603),
    ("G", "resnet_9blocks", {"norm": "instance"}, 11_378_179),
    ("G", "resnet_6blocks", {"norm": "instance"}, 7_837_699),
    ("G", "resnet_9blocks", {"norm": "batch"}, 11_383_427),
    ("D", "patch", {"in_channels": 6, "n_layers": 3, "norm": "batch"}, 2_768_705),
    ("D", "patch", {"in_channels": 3, "n_layers": 3, "norm": "instance"}, 2_764_737),
    ("D", "patch", {"in_channels": 6, "n_layers": 5, "norm": "batch"}, 11_159_361),
    ("D", "pixel", {"in_channels": 6, "norm": "batch"}, 9_024),
]


@pytest.mark.parametrize("kind,name,kwargs,expected", REFERENCE_COUNTS)
def test_parameter_counts_equal_reference(kind, name, kwargs, expected):
    build = i2i.build_generator if kind == "G" else i2i.build_discriminator
    assert count_parameters(build(name, **kwargs)) == expected


def test_patchgan_70x70_gives_30x30_logits_on_256():
    d = i2i.build_discriminator("basic", in_channels=6)
    out = d(torch.randn(1, 6, 256, 256))
    assert out.shape == (1, 1, 30, 30)
    assert out.min() < 0  # logits, not probabilities


@pytest.mark.parametrize("name,size", [("unet", 64), ("resnet", 28)])
def test_generators_keep_size_and_range(name, size):
    kw = {"num_downs": 6} if name == "unet" else {"n_blocks": 2}
    g = i2i.build_generator(name, in_channels=1, out_channels=3, base_channels=8, **kw).eval()
    y = g(torch.randn(2, 1, size, size) * 3)
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0


def test_pixel_discriminator_judges_every_pixel():
    d = i2i.build_discriminator("pixel", in_channels=4, base_channels=8)
    assert d(torch.randn(2, 4, 9, 7)).shape == (2, 1, 9, 7)


@pytest.mark.parametrize("gain", [0.02, 0.05])
def test_normal_init_statistics(gain):
    # PyTorch's own init gives convs a std that depends on the fan-in and batch-norm scales of
    # exactly 1: with a no-op init_weights neither the gain nor the scale spread would show.
    torch.manual_seed(0)
    g = i2i.build_generator("unet_128", base_channels=16, init_gain=gain)
    convs = [m for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    bns = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    w = torch.cat([c.weight.flatten() for c in convs])
    assert abs(w.std().item() - gain) < 0.1 * gain and abs(w.mean().item()) < 0.05 * gain
    scales = torch.cat([b.weight for b in bns])
    assert abs(scales.mean().item() - 1.0) < 0.01 and abs(scales.std().item() - gain) < 0.2 * gain
    assert all(b.bias.abs().max() == 0 for b in bns) and all(c.bias is None or c.bias.abs().max() == 0 for c in convs)


@pytest.mark.parametrize("init", ["xavier", "kaiming", "orthogonal"])
def test_other_inits_change_weights(init):
    torch.manual_seed(0)
    a = i2i.build_generator("resnet", n_blocks=1, base_channels=8)
    b = init_weights(i2i.build_generator("resnet", n_blocks=1, base_channels=8), init, 0.02)
    assert not torch.equal(a.model[1].weight, b.model[1].weight)


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    d = i2i.build_discriminator("patch", in_channels=3, n_layers=2, base_channels=8, spectral_norm=True)
    for _ in range(20):  # power iterations run in training-mode forwards
        d(torch.randn(1, 3, 32, 32))
    conv = d.model[0]
    assert hasattr(conv, "parametrizations")
    sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.05)


def test_unknown_names_and_keywords_are_explained():
    with pytest.raises(ValueError, match="did you mean 'unet_256'"):
        i2i.build_generator("unet256")
    with pytest.raises(ValueError, match="accepted keywords"):
        i2i.build_generator("resnet_9blocks", num_downs=3)
    with pytest.raises(ValueError, match="fixes"):
        i2i.build_generator("unet_256", num_downs=7)
    with pytest.raises(ValueError, match="norm='group'"):
        i2i.build_generator("unet_128", norm="group")


def test_dropout_does_not_change_unet_keys_but_paper_mode_uses_it():
    a = i2i.build_generator("unet_128", base_channels=8, dropout=True)
    b = i2i.build_generator("unet_128", base_channels=8, dropout=False)
    assert list(a.state_dict()) == list(b.state_dict())
    x = torch.randn(1, 3, 128, 128)
    set_test_mode(a, "paper")
    torch.manual_seed(1)
    y1 = a(x)
    torch.manual_seed(2)
    y2 = a(x)
    assert not torch.allclose(y1, y2)  # dropout active at test time, as in the paper
    set_test_mode(a, "eval")
    assert torch.equal(a(x), a(x))


def test_paper_mode_leaves_running_statistics_and_restores_state():
    g = i2i.build_generator("unet_128", base_channels=8)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    g.train()
    restore = set_test_mode(g, "paper")
    with torch.no_grad():
        g(torch.randn(2, 3, 128, 128) * 5 + 3)
    for k, v in g.state_dict().items():
        assert torch.equal(v, before[k]), k
    restore()
    assert g.training and all(m.track_running_stats for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d))
