"""ESRGAN / Real-ESRGAN pieces: relativistic GAN, VGG features before the activation, the U-Net
discriminator, SRVGGNet, and the recipes (one training step each; exact resume with the
degradations on)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_exact_resume

from i2i.config import ConfigError
from i2i.losses import VGG19_FILE, GANLoss, VGGPerceptualLoss, parse_vgg_layers
from i2i.nets.blocks import count_parameters
from i2i.nets.registry import build_discriminator, build_generator
from i2i.recipes import load_config

ROOT = Path(__file__).resolve().parent.parent


def test_ragan_losses_equal_esrgans_formulas():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 6, 6), torch.randn(4, 1, 6, 6)
    gan = GANLoss("ragan")
    bce = F.binary_cross_entropy_with_logits
    d_want = 0.5 * bce(real - fake.mean(), torch.ones_like(real)) + 0.5 * bce(fake - real.mean(),
                                                                              torch.zeros_like(fake))
    g_want = 0.5 * bce(real - fake.mean(), torch.zeros_like(real)) + 0.5 * bce(fake - real.mean(),
                                                                               torch.ones_like(fake))
    assert torch.allclose(gan.d_loss(real, fake), d_want) and torch.allclose(gan.g_loss(fake, real), g_want)
    # In D's loss the other side's mean is a constant (BasicSR detaches it); the generator's sees both.
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    real_term, _ = gan.ragan_terms(r, f, for_generator=False)
    real_term.backward()
    assert f.grad is None and r.grad.abs().sum() > 0
    critic = torch.nn.Conv2d(3, 1, 3, padding=1)
    x_real, x_fake = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8).requires_grad_(True)
    loss = gan.generator_loss(critic, x_fake, real=x_real)
    assert torch.allclose(loss, gan.g_loss(critic(x_fake), critic(x_real)))
    with pytest.raises(ValueError, match="needs the real images"):
        gan.generator_loss(critic, x_fake)
    with pytest.raises(ValueError, match="use d_loss"):
        gan.real_loss(real)
    loss_d, parts = gan.discriminator_loss(critic, x_real, x_fake)
    assert torch.allclose(loss_d, parts["real"] + parts["fake"])


@pytest.fixture
def random_vgg(tmp_path):
    """PLUMBING ONLY: random VGG19 weights (no real ones exist offline)."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    path = tmp_path / VGG19_FILE
    torch.save(vgg19(weights=None).state_dict(), path)
    return str(path)


def test_vgg_features_before_activation_and_weighted_layers(random_vgg):
    from torchvision.models import vgg19

    ref = vgg19(weights=None)
    ref.load_state_dict(torch.load(random_vgg, weights_only=True))
    feats = ref.features.eval()
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1,
                                                                                                               1)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1

    def upto(x, index):  # torchvision's features up to `index` (conv1_2 = 2, conv2_2 = 7), fresh ReLUs
        x = ((x + 1) / 2 - mean) / std
        for layer in list(feats)[: index + 1]:
            x = F.relu(x) if isinstance(layer, torch.nn.ReLU) else layer(x)
        return x

    with torch.no_grad():
        want = 0.1 * F.l1_loss(upto(a, 2), upto(b, 2)) + 1.0 * F.l1_loss(upto(a, 7), upto(b, 7))
        loss = VGGPerceptualLoss("conv1_2:0.1,conv2_2:1", weights=random_vgg, feature_scale=1.0, criterion="l1")
        assert torch.allclose(loss(a, b), want, rtol=1e-5)
        # conv (before) differs from relu (after) where features go negative
        relu = VGGPerceptualLoss("relu1_2:0.1,relu2_2:1", weights=random_vgg, feature_scale=1.0, criterion="l1")
        assert not torch.allclose(relu(a, b), want)
    assert parse_vgg_layers("relu5_4") == {"relu5_4": 1.0}
    with pytest.raises(ValueError, match="'conv6_1' is not a VGG19 layer"):
        parse_vgg_layers("conv6_1:1")
    with pytest.raises(ValueError, match="must be a number"):
        parse_vgg_layers("conv1_2:lots")


def test_unet_discriminator_judges_every_pixel_with_spectral_norm():
    d = build_discriminator("unet_sn", init="default")
    assert count_parameters(d) == 4_376_897
    x = torch.rand(2, 3, 48, 40) * 2 - 1
    assert d(x).shape == (2, 1, 48, 40)
    sn = [n for n, _ in d.named_parameters() if "parametrizations" in n]
    assert len(sn) == 8  # conv1 .. conv8; conv0 and conv9 plain, as Real-ESRGAN's
    with pytest.raises(ValueError, match="divisible by 8"):
        d(torch.rand(1, 3, 20, 20))
    no_skip = build_discriminator("unet_sn", base_channels=8, skip=False)
    assert no_skip(torch.rand(1, 3, 16, 16)).shape == (1, 1, 16, 16)


@pytest.mark.parametrize(("name", "count"), [("srvgg_general_x4", 1_213_296), ("srvgg_animevideo_x4", 621_424)])
def test_srvgg_presets_have_the_published_sizes(name, count):
    # realesr-general-x4v3 and realesr-animevideov3: 32 / 16 convolutions of 64 features, PReLU, x4
    net = build_generator(name, init="default")
    assert count_parameters(net) == count
    assert net(torch.rand(1, 3, 6, 7) * 2 - 1).shape == (1, 3, 24, 28)


def test_srvgg_with_a_bicubic_base_starts_as_bicubic():
    from i2i.data.resize import imresize

    net = build_generator("srvgg", n_convs=2, base_channels=8, base="bicubic", init="kaiming")
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(x), imresize(x, 4.0), atol=1e-5)


def _recipe(path: str, sr_data: Path, tmp_path: Path, **over: str):
    tiny = {"model.generator.n_blocks": "1", "model.generator.base_channels": "8", "model.generator.growth": "4",
            "data.crop_size": "32", "data.batch_size": "2", "data.num_workers": "0", "train.steps": "2",
            "train.log_every": "1", "train.sample_every": "1000", "train.checkpoint_every": "1000",
            "train.progress": "false",
            "data.root": str(sr_data / "train"), "output_dir": str(tmp_path), "data.val_root": "null", **over}
    return load_config(ROOT / path, [f"{k}={v}" for k, v in tiny.items() if v is not None])


def test_one_step_of_each_real_esrgan_recipe(sr_data, tmp_path):
    import i2i

    net = _recipe("configs/srgan/realesrnet_x4.yaml", sr_data, tmp_path)
    assert (
        net.data.degradation == "realesrgan" and net.model.generator.name == "rrdbnet" and net.train.ema_decay == 0.999
    )
    result = i2i.train(net)
    assert result["step"] == 2 and all(torch.isfinite(torch.as_tensor(v)) for v in result["losses"].values())
    gan = _recipe("configs/srgan/realesrgan_x4.yaml", sr_data, tmp_path, **{
        "model.generator.init_from": str(net.run_dir / "checkpoints" / "last.pt"),
        "model.discriminator.base_channels": "8",
        "loss.perceptual_weight": "0"})  # no VGG19 weights offline; the layers and criterion are checked above
    assert gan.model.discriminator.name == "unet_sn" and gan.loss.adversarial_weight == 0.1
    result = i2i.train(gan)
    assert result["step"] == 2 and {"D_real", "D_fake", "G_adv", "G_pixel"} <= set(result["losses"])


def test_resume_with_realesrgan_degradations_is_exact(sr_data, tmp_path):
    over = {"train.steps": "4", "train.checkpoint_every": "2", "loss.perceptual_weight": "0",
            "model.discriminator.base_channels": "8",
            "model.generator.init_from": "null"}
    straight = _recipe("configs/srgan/realesrgan_x4.yaml", sr_data, tmp_path / "a", **over)
    split = _recipe("configs/srgan/realesrgan_x4.yaml", sr_data, tmp_path / "b", **over)
    assert_exact_resume(straight, split, stop_at=2)


def test_degradation_config_errors_name_the_key(sr_data, tmp_path):
    with pytest.raises(ConfigError, match="data.realesrgan.kernel_probs must sum to 1"):
        _recipe("configs/srgan/realesrnet_x4.yaml", sr_data, tmp_path,
                **{"data.realesrgan.kernel_probs": "[0.5,0.5,0,0,0,0.5]"})
    with pytest.raises(ConfigError, match=r"data.realesrgan.jpeg_range\[0\]' is 0.0; allowed: \[1, 100\]"):
        _recipe("configs/srgan/realesrnet_x4.yaml", sr_data, tmp_path, **{"data.realesrgan.jpeg_range": "[0,95]"})
    with pytest.raises(ConfigError, match="noise_range is \\[low, high\\]"):
        _recipe("configs/srgan/realesrnet_x4.yaml", sr_data, tmp_path, **{"data.realesrgan.noise_range": "[30,1]"})
    with pytest.raises(ConfigError, match="data.lr_root holds ready LR images"):
        _recipe("configs/srgan/realesrnet_x4.yaml", sr_data, tmp_path, **{"data.lr_root": str(sr_data / "train")})
    with pytest.raises(ConfigError, match="'data.realesrgan.blur_sigma' must be a list of 2 values"):
        _recipe("configs/srgan/realesrnet_x4.yaml", sr_data, tmp_path, **{"data.realesrgan.blur_sigma": "[1, 2, 3]"})


@pytest.mark.numerics
@pytest.mark.parametrize("scale", [4, 2])
def test_tiles_on_an_rrdbnet_equal_whole_image_inference(scale):
    from i2i.recipes import config_from_dict
    from i2i.translator import Translator

    torch.manual_seed(0)
    net = build_generator("rrdbnet", scale=scale, n_blocks=1, base_channels=8, growth=4, init="default")
    cfg = config_from_dict({"pipeline": "srgan",
                            "model": {"generator": {"name": "rrdbnet", "scale": scale, "n_blocks": 1,
                                                     "base_channels": 8, "growth": 4}}})
    whole = Translator(net, cfg, direction="a_to_b", device="cpu")
    tiled = Translator(net, cfg, direction="a_to_b", device="cpu", tile=24)
    # The convolutions reach 18 LR pixels; with BasicSR's small initialisation the influence beyond ~14 is below even
    # float64's resolution (the probe's), so it cannot change a float32 output.
    assert tiled.tile_context is not None and tiled.tile_context >= 12
    # not multiples of the tile, nor (x2) of the pixel-unshuffle: padded and cropped back
    x = torch.rand(1, 3, 46, 62) * 2 - 1
    a, b = whole(x), tiled(x)
    assert a.shape == (1, 3, 46 * scale, 62 * scale)
    assert (a - b).abs().max() < 1e-5
    if scale == 2:
        return
    # The published depth: the influence the gradient probe measures (beyond it, below float32's resolution for these
    # weights) is what the tiles carry, and they still equal the whole image.
    deep_net = build_generator("rrdbnet", n_blocks=23, base_channels=8, growth=4, init="default")
    deep_cfg = config_from_dict({"pipeline": "srgan",
                                 "model": {"generator": {"name": "rrdbnet", "n_blocks": 23, "base_channels": 8,
                                                          "growth": 4}}})
    deep = Translator(deep_net, deep_cfg, direction="a_to_b", device="cpu", tile=32)
    x = torch.rand(1, 3, 40, 72) * 2 - 1
    assert (deep(x) - Translator(deep_net, deep_cfg, direction="a_to_b", device="cpu")(x)).abs().max() < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_srvgg_with_a_bicubic_base_beats_bicubic_on_held_out_photos(tmp_path, sr_data, seed):
    """The CPU demo's net learns: held-out regions of the photos, Y-PSNR over MATLAB bicubic."""
    import i2i
    from i2i.evaluate import evaluate_sr
    from i2i.recipes import config_from_dict

    cfg = config_from_dict({
        "name": "srvgg", "pipeline": "srgan", "seed": seed, "output_dir": str(tmp_path),
        "model": {"generator": {"name": "srvgg", "scale": 4, "n_convs": 6, "base_channels": 32, "base": "bicubic",
                                "init": "kaiming"}},
        "data": {"root": str(sr_data / "train"), "crop_size": 48, "batch_size": 8, "num_workers": 0, "rotate90": True},
        "loss": {"pixel_loss": "l1", "adversarial_weight": 0.0}, "optim": {"lr_g": 5e-4, "beta1": 0.9},
        "schedule": {"policy": "cosine"}, "train": {"epochs": None, "steps": 300, "log_every": 100, "progress": False}})
    mean = evaluate_sr(i2i.train(cfg)["checkpoint"], sr_data / "test", lpips="none")["mean"]
    print({k: round(v, 3) for k, v in mean.items()})
    assert mean["psnr_y_model"] > mean["psnr_y_bicubic"] + 0.2 and mean["ssim_y_model"] > mean["ssim_y_bicubic"]


NOISY_LR = {  # the degradation model reduced to its noise: Gaussian, sigma 10-20 levels, on the LR image
    "kernel_probs": "[1,0,0,0,0,0]", "sinc_prob": "0", "blur_sigma": "[0.2,0.5]", "resize_probs": "[0,0,1]",
    "gaussian_noise_prob": "1", "noise_range": "[0,1]", "jpeg_range": "[95,100]", "second_blur_prob": "0",
    "resize_probs2": "[0,0,1]", "gaussian_noise_prob2": "1", "noise_range2": "[10,20]", "jpeg_range2": "[95,100]",
    "final_sinc_prob": "0", "target_usm": "false"}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_real_esrgan_degradations_teach_the_net_to_undo_them(tmp_path, sr_data, seed):
    """Trained on degradations of the photos' train regions alone (here the model's noise
    stage), a small net upscales noisy LR versions of the held-out regions, degraded by the same
    model with draws it never saw, closer to the HR images than bicubic upscaling does.
    Measured (mean per-image PSNR, seeds 0 / 1): +2.1 / +1.2 dB. The full default model learns
    far slower (+0.04 to +0.2 dB after 1,500 steps, docs/benchmarks.md): Real-ESRGAN trains 10^6."""
    import i2i
    from i2i.data.degradations import degrade, draw
    from i2i.data.resize import imresize
    from i2i.data.sr import SRDataConfig, SRDataset
    from i2i.translator import Translator

    cfg = _recipe("configs/srgan/realesrnet_demo.yaml", sr_data, tmp_path, **{
        "seed": str(seed), "train.steps": "300", "data.crop_size": "64", "data.batch_size": "8",
        "train.ema_decay": "0.0",
        "train.val_every": "0", "model.generator.n_blocks": None, "model.generator.growth": None,
        "model.generator.base_channels": None, **{f"data.realesrgan.{k}": v for k, v in NOISY_LR.items()}})
    tr = Translator.from_checkpoint(i2i.train(cfg)["checkpoint"], device="cpu")
    test = SRDataset(sr_data / "test", SRDataConfig(crop_size=64), scale=4, train=False)
    hr = torch.stack([test[i]["target"] for i in range(len(test))])
    lr = degrade((hr + 1) / 2, draw(cfg.data.realesrgan, len(test), torch.Generator().manual_seed(100 + seed)),
                 4) * 2 - 1
    with torch.no_grad():
        net, bicubic = tr.translate_tensor(lr).clamp(-1, 1), imresize(lr, 4.0).clamp(-1, 1)

    def psnr(x: torch.Tensor) -> float:  # mean over images, on [-1, 1] (peak-to-peak 2)
        return float(sum(10 * torch.log10(4 / F.mse_loss(x[i], hr[i])) for i in range(len(hr))) / len(hr))

    print(psnr(net), psnr(bicubic))
    assert psnr(net) > psnr(bicubic) + 0.5
