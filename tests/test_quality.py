"""What the user gets from the default commands: eval-mode batch norm re-estimated for the
saved weights, an EMA that never loses to the raw generator, residual SR, chroma prediction."""

from __future__ import annotations

import copy

import pytest
import torch

import i2i
from i2i import metrics
from i2i.nets.blocks import has_batch_norm, recalibrate_batch_norm


def _bn_inputs(net: torch.nn.Module, batches: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """What every batch norm of ``net`` sees for each batch with dropout off and batch norms
    normalising with batch statistics (computed on a copy; ``net`` is untouched)."""
    probe = copy.deepcopy(net).eval()
    seen: dict[str, list[torch.Tensor]] = {}
    for n, m in probe.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
            m.register_forward_pre_hook(lambda m, a, n=n: seen.setdefault(n, []).append(a[0].detach()))
    with torch.no_grad():
        for b in batches:
            probe(b)
    return seen


@pytest.mark.numerics
def test_recalibration_sets_the_exact_average_statistics_with_dropout_off():
    torch.manual_seed(0)
    net = i2i.build_generator("unet", num_downs=6, base_channels=4, in_channels=1, out_channels=1, dropout=True).train()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [torch.rand(3, 1, 64, 64) * 2 - 1 for _ in range(4)]
    expected = _bn_inputs(net, batches)
    assert recalibrate_batch_norm(net, ((b,) for b in batches)) == 4
    assert net.training and all(m.training for m in net.modules())  # state restored
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            xs = expected[name]
            mean = torch.stack([x.mean((0, 2, 3)) for x in xs]).mean(0)
            var = torch.stack([x.var((0, 2, 3), unbiased=True) for x in xs]).mean(0)
            assert torch.allclose(m.running_mean, mean, atol=1e-5), name
            assert torch.allclose(m.running_var, var, rtol=1e-4, atol=1e-6), name
            assert m.momentum == 0.1 and int(m.num_batches_tracked) == 4
    for k, v in net.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k  # weights untouched
    assert not has_batch_norm(i2i.build_generator("unet", num_downs=5, norm="instance"))


def _psnr(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_stats: bool = False) -> float:
    net = copy.deepcopy(net).eval()
    if batch_stats:
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train()
                m.track_running_stats = False
    with torch.no_grad():
        return float(metrics.psnr(net(x), y).mean())


def test_saved_eval_mode_is_as_good_as_batch_statistics(tmp_path, gray2color, make_config):
    # A short run, where the running averages lag the weights most: the saved generator in
    # eval mode must be within 0.3 dB of the same weights normalised with batch statistics
    # (and the lagging running averages, kept when recalibration is off, are measurably worse).
    from i2i.data.paired import PairedDataConfig, PairedDataset
    from i2i.loading import load_generator

    common = {"generator": {"base_channels": 16}, "train": {"steps": 60, "checkpoint_every": 60},
              "data": {"val_root": None}}
    runs = {}
    for k in (0, 32):
        cfg = make_config(tmp_path / str(k), gray2color, model={"generator": common["generator"]},
                          train={**common["train"], "bn_recalibration_batches": k}, data=common["data"])
        runs[k] = load_generator(i2i.train(cfg)["checkpoint"], use_ema=False).net
    ds = PairedDataset(gray2color / "test", PairedDataConfig(preprocess="none"), in_channels=1, out_channels=3,
                       train=False)
    x = torch.stack([ds[i]["input"] for i in range(len(ds))])
    y = torch.stack([ds[i]["target"] for i in range(len(ds))])
    batch = _psnr(runs[32], x, y, batch_stats=True)
    for name, param in runs[0].named_parameters():  # recalibration never changes training
        assert torch.equal(param, dict(runs[32].named_parameters())[name])
    recal, stale = _psnr(runs[32], x, y), _psnr(runs[0], x, y)
    print(f"eval recalibrated {recal:.2f} dB, batch statistics {batch:.2f} dB, eval with running averages "
          f"{stale:.2f} dB")
    assert recal >= batch - 0.3, (recal, batch)
    assert recal > stale, (recal, stale)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.numerics
def test_bicubic_upsampling_layer_is_matlab_imresize(scale):
    from i2i.data.resize import imresize
    from i2i.nets.blocks import BicubicUpsample

    x = torch.rand(2, 3, 13, 17, dtype=torch.float64)
    assert torch.allclose(BicubicUpsample(scale).double()(x), imresize(x, float(scale)), atol=1e-6)


@pytest.mark.numerics
def test_untrained_residual_srresnet_is_exactly_bicubic_and_training_only_adds():
    from i2i.data.resize import imresize

    torch.manual_seed(0)
    g = i2i.build_generator("srresnet", scale=4, n_blocks=2, base_channels=8, norm="none", global_skip="bicubic")
    x = torch.rand(2, 3, 20, 24) * 2 - 1
    assert torch.allclose(g(x), imresize(x, 4.0), atol=1e-5)
    assert set(g.state_dict()) == set(i2i.build_generator("srresnet", scale=4, n_blocks=2, base_channels=8,
                                                          norm="none").state_dict())
    # old configs
    assert i2i.build_generator("srresnet", scale=2, n_blocks=1, global_skip=True).global_skip == "bilinear"


def test_chroma_prediction_passes_the_luma_through():
    torch.manual_seed(0)
    for name, kw in (("unet", {"num_downs": 5}), ("resnet", {"n_blocks": 1})):
        g = i2i.build_generator(name, in_channels=1, out_channels=3, base_channels=4, predict="chroma", **kw).eval()
        x = torch.rand(2, 1, 32, 32) * 1.2 - 0.6  # mid-gray range: any chroma fits in the RGB cube
        y = g(x)
        luma = (y * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        assert y.shape == (2, 3, 32, 32) and torch.allclose(luma, x, atol=1e-5), name
        assert y.std(1).mean() > 0  # and it adds colour
    with pytest.raises(ValueError, match="in_channels=1 and out_channels=3"):
        i2i.build_generator("unet", num_downs=5, in_channels=3, out_channels=3, predict="chroma")


def test_resize_upsampling_removes_the_checkerboard_of_transposed_convolutions():
    # Odena et al.: a stride-2 transposed 4x4 convolution of a constant input gives a periodic
    # pattern with period 2; nearest-neighbour resize + 3x3 convolution gives a flat interior.
    from i2i.nets.blocks import upsample_conv

    torch.manual_seed(0)
    x = torch.ones(1, 8, 8, 8)
    for mode, periodic in (("transpose", True), ("resize", False)):
        layer = upsample_conv(mode, 8, 4)
        torch.nn.init.uniform_(layer.weight if mode == "transpose" else layer[1].weight, 0.0, 1.0)
        y = layer(x)[0, :, 2:-2, 2:-2]  # interior
        even, odd = y[:, ::2, ::2], y[:, 1::2, 1::2]
        assert ((even - odd).abs().max() > 1e-3) == periodic, mode
    g = i2i.build_generator("unet", num_downs=5, base_channels=4, upsample="resize")
    assert g(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_small_images_are_padded_not_stretched(tmp_path):
    import numpy as np

    from i2i.data.generation import GenerationDataConfig, ImageDataset

    img = np.full((28, 28, 1), 200, np.uint8)
    i2i.write_image(tmp_path / "a.png", img)
    pad = ImageDataset(tmp_path, GenerationDataConfig(image_size=32), channels=1, train=False)[0]["image"]
    resized = ImageDataset(tmp_path, GenerationDataConfig(image_size=32, fit="resize"), channels=1,
                           train=False)[0]["image"]
    assert pad.shape == resized.shape == (1, 32, 32)
    assert (pad[:, :2] == -1).all() and (pad[:, 2:30, 2:30] == 200 / 127.5 - 1).all()  # black border, pixels as drawn
    assert (resized > 0).all()


def test_ema_decay_ramps_up_with_the_steps_trained(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, train={"steps": 2, "ema_decay": 0.999})
    t = i2i.Trainer(cfg)
    assert t.ema.decay_at(0) == 0.0  # the first update copies the weights: no random init is kept
    assert t.ema.decay_at(300) == pytest.approx(0.5 ** (1 / 15))  # half-life: 5 % of the steps so far
    assert t.ema.decay_at(10**6) == 0.999  # capped by train.ema_decay
    # After 300 steps the initial weights' share in the average is below 1e-3 (with a
    # constant 0.999 it would be 0.999 ** 300 = 74 %).
    share = 1.0
    for step in range(300):
        share *= t.ema.decay_at(step)
    assert share < 1e-3


def test_saved_generator_and_ema_carry_statistics_of_their_own_weights(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, train={"steps": 4, "ema_decay": 0.999, "checkpoint_every": 4})
    t = i2i.Trainer(cfg)
    t.fit()
    saved = torch.load(cfg.run_dir / "checkpoints" / "last.pt", weights_only=True)
    bn_keys = [k for k in saved["nets"]["G"] if k.endswith("running_mean")]
    assert bn_keys
    # Recalibrated over the same 32 batches, for different weights: the statistics differ, and
    # each equals a fresh recalibration of its own weights.
    assert any(not torch.equal(saved["nets"]["G"][k], saved["ema"]["G"][k]) for k in bn_keys)
    for part in ("nets", "ema"):
        net = copy.deepcopy(t.pipeline.nets["G"])
        net.load_state_dict(saved[part]["G"])
        rng = torch.Generator().manual_seed(cfg.seed + 7919)
        recalibrate_batch_norm(net, (t.pipeline.generator_inputs("G", b, rng) for b in t.recalibration.batches()))
        for k in bn_keys:
            assert torch.allclose(net.state_dict()[k], saved[part]["G"][k], atol=1e-6), (part, k)
