import math
import warnings

import numpy as np
import pytest
import torch
from conftest import SEEDS, assert_exact_resume

import i2i
from i2i import metrics
from i2i.cli import main
from i2i.config import ConfigError
from i2i.data.base import DataError
from i2i.data.io import ImageReadError, read_image, write_image
from i2i.data.resize import imresize
from i2i.data.sr import SRDataConfig, SRDataset
from i2i.losses import VGG19_FILE, VGGPerceptualLoss
from i2i.nets import count_parameters
from i2i.recipes import config_from_dict
from i2i.translator import Translator

# ---------------------------------------------------------------- independent references


def matlab_resize_1d(v: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB imresize(..., 'bicubic') along one axis, written out pixel by pixel."""

    def cubic(x):
        x = abs(x)
        if x <= 1:
            return 1.5 * x**3 - 2.5 * x**2 + 1
        if x <= 2:
            return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
        return 0.0

    n = len(v)
    out_n = math.ceil(n * scale)
    shrink = scale < 1
    width = 4 / scale if shrink else 4
    out = np.zeros(out_n)
    for i in range(out_n):
        u = (i + 1) / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        ws, vals = [], []
        for k in range(math.ceil(width) + 2):
            j = left + k
            w = scale * cubic(scale * (u - j)) if shrink else cubic(u - j)
            jj = j - 1
            while jj < 0 or jj >= n:  # symmetric extension
                jj = -jj - 1 if jj < 0 else 2 * n - jj - 1
            ws.append(w)
            vals.append(v[jj])
        ws = np.array(ws) / sum(ws)
        out[i] = float(np.dot(ws, vals))
    return out


def ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM for 2-D arrays in [0, 1]: 11x11 Gaussian (sigma 1.5), valid window."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    g /= g.sum()

    def filt(x):
        x = np.apply_along_axis(lambda r: np.convolve(r, g, mode="valid"), 1, x)
        return np.apply_along_axis(lambda c: np.convolve(c, g, mode="valid"), 0, x)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = filt(a), filt(b)
    saa, sbb, sab = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2, filt(a * b) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return float(m.mean())


@pytest.mark.parametrize("scale", [0.25, 0.5, 1 / 3, 2.0, 4.0])
@pytest.mark.numerics
def test_imresize_matches_matlab_formula(scale):
    rng = np.random.default_rng(0)
    img = rng.random((13, 17))
    ours = imresize(torch.from_numpy(img)[None, None], scale)[0, 0].numpy()
    rows = np.stack([matlab_resize_1d(r, scale) for r in img])
    ref = np.stack([matlab_resize_1d(c, scale) for c in rows.T]).T
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-10


def test_imresize_keeps_constants():
    assert torch.allclose(imresize(torch.full((1, 3, 16, 24), 0.3), 0.25), torch.tensor(0.3))


@pytest.mark.numerics
def test_psnr_and_ssim_against_numpy():
    rng = np.random.default_rng(1)
    a = rng.random((2, 3, 40, 36))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    ta, tb = torch.from_numpy(a * 2 - 1).float(), torch.from_numpy(b * 2 - 1).float()
    # Y channel per BT.601, border 4, per image.
    wy = np.array([65.481, 128.553, 24.966]).reshape(1, 3, 1, 1)
    ya, yb = (16 + (a * wy).sum(1)) / 255, (16 + (b * wy).sum(1)) / 255
    ya, yb = ya[:, 4:-4, 4:-4], yb[:, 4:-4, 4:-4]
    ref_psnr = [10 * np.log10(1 / np.mean((ya[i] - yb[i]) ** 2)) for i in range(2)]
    assert metrics.psnr(ta, tb, y=True, border=4).numpy() == pytest.approx(ref_psnr, abs=1e-3)
    ref_rgb = [10 * np.log10(1 / np.mean((a[i] - b[i]) ** 2)) for i in range(2)]
    assert metrics.psnr(ta, tb).numpy() == pytest.approx(ref_rgb, abs=1e-3)
    ref_ssim = [ssim_reference(ya[i], yb[i]) for i in range(2)]
    assert metrics.ssim(ta, tb, y=True, border=4).numpy() == pytest.approx(ref_ssim, abs=1e-4)
    assert metrics.ssim(ta, ta).numpy() == pytest.approx([1.0, 1.0], abs=1e-6)


# ---------------------------------------------------------------- nets


def test_srresnet_matches_the_paper():
    g = i2i.build_generator("srresnet")
    assert count_parameters(g) == 1_547_350  # "about 1.55 M" in the paper
    for scale in (2, 4, 8):
        net = i2i.build_generator("srresnet", scale=scale, n_blocks=1, base_channels=8).eval()
        assert net(torch.zeros(1, 3, 10, 7)).shape == (1, 3, 10 * scale, 7 * scale)
    plain = i2i.build_generator("srresnet", norm="none", n_blocks=2, base_channels=8)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    with pytest.raises(ValueError, match="scale=3"):
        i2i.build_generator("srresnet", scale=3)


def test_global_skip_adds_bilinear_upsampling():
    g = i2i.build_generator("srresnet", scale=2, n_blocks=1, base_channels=8, norm="none", global_skip=True).eval()
    torch.nn.init.zeros_(g.tail.weight)
    torch.nn.init.zeros_(g.tail.bias)
    x = torch.rand(1, 3, 6, 5)
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(g(x), ref, atol=1e-6)


def test_srgan_discriminator_is_sized_for_the_crop():
    d = i2i.build_discriminator("srgan", input_size=32, base_channels=8)
    assert d(torch.zeros(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="built for 32x32"):
        d(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="multiple of 16"):
        i2i.build_discriminator("srgan", input_size=40)


# ---------------------------------------------------------------- perceptual loss


@pytest.fixture
def random_vgg(tmp_path):
    """PLUMBING ONLY: a VGG19 state dict with random weights, to exercise the loading and
    loss code. It says nothing about perceptual quality (no real weights exist offline)."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    path = tmp_path / VGG19_FILE
    torch.save(vgg19(weights=None).state_dict(), path)
    return str(path)


def test_perceptual_loss_plumbing_with_random_weights(random_vgg):
    loss = VGGPerceptualLoss("relu2_2", weights=random_vgg)
    a = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    b = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(b, b).item() == 0.0
    value = loss(a, b)
    assert value.item() > 0
    value.backward()
    assert a.grad.abs().sum() > 0 and not any(p.requires_grad for p in loss.parameters())
    assert len(loss.features) == 9  # up to relu2_2
    scaled = VGGPerceptualLoss("relu2_2", weights=random_vgg, feature_scale=1.0)
    assert scaled(a, b).item() == pytest.approx(value.item() * 12.75**2, rel=1e-4)


def test_missing_vgg_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/hub/checkpoints/{VGG19_FILE}.*loss.vgg_weights"):
        VGGPerceptualLoss()
    with pytest.raises(FileNotFoundError, match="loss.vgg_weights file '/nope.pth' does not exist"):
        VGGPerceptualLoss(weights="/nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a torchvision vgg19 state dict"):
        VGGPerceptualLoss(weights=str(bad))


# ---------------------------------------------------------------- data


def _hr(root, sizes):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        write_image(root / f"img{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_sr_dataset_crops_and_lr_in_register(tmp_path):
    _hr(tmp_path, [(50, 60)])
    ds = SRDataset(tmp_path, SRDataConfig(crop_size=24, flip=True, rotate90=True), scale=4)
    for epoch in range(4):
        item = ds[(epoch, 0)]
        lr, hr = item["input"], item["target"]
        assert hr.shape == (3, 24, 24) and lr.shape == (3, 6, 6)
        expect = imresize((hr[None] + 1) * 127.5, 0.25).clamp(0, 255).round() / 127.5 - 1
        assert (lr - expect[0]).abs().max() < 1.5 / 127.5  # flips/rotations commute with the resize
    full = SRDataset(tmp_path, scale=4, train=False, full_images=True)[0]
    assert full["target"].shape == (3, 48, 60) and full["input"].shape == (3, 12, 15)


def test_sr_dataset_small_images_and_lr_folder(tmp_path):
    _hr(tmp_path / "hr", [(40, 40), (10, 12)])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = SRDataset(tmp_path / "hr", SRDataConfig(crop_size=32), scale=2)
    assert len(ds) == 1 and "img1.png" in str(w[0].message)
    _hr(tmp_path / "tiny", [(10, 12)])
    with pytest.raises(DataError, match="smaller than data.crop_size=32"), pytest.warns(UserWarning,
                                                                                        match="skipping 1"):
        SRDataset(tmp_path / "tiny", SRDataConfig(crop_size=32), scale=2)
    with pytest.raises(DataError, match="multiple of the scale"):
        SRDataset(tmp_path / "hr", SRDataConfig(crop_size=30), scale=4)
    write_image(tmp_path / "lr" / "img0.png", np.zeros((20, 20, 3), np.uint8))
    with pytest.warns(UserWarning, match="img1.png"):
        paired = SRDataset(tmp_path / "hr", SRDataConfig(crop_size=32, lr_root=tmp_path / "lr"), scale=2)
    assert paired[0]["input"].shape == (3, 16, 16) and paired[0]["input"].max() == -1  # the given LR, not a resize
    write_image(tmp_path / "lr" / "img0.png", np.zeros((19, 20, 3), np.uint8))
    with pytest.raises(ImageReadError, match="expected 20x20"), pytest.warns(UserWarning):
        SRDataset(tmp_path / "hr", SRDataConfig(crop_size=32, lr_root=tmp_path / "lr"), scale=2)[0]


# ---------------------------------------------------------------- pipeline


def sr_config(make_config, tmp_path, root, **sections):
    model = {"generator": {"name": "srresnet", "scale": 4, "n_blocks": 2, "base_channels": 16, "norm": "none",
                           "in_channels": 3, "out_channels": 3, **sections.pop("generator", {})},
             "discriminator": {"name": "srgan", "base_channels": 8}}
    loss = {"pixel_loss": "l1", "adversarial_weight": 0.0, **sections.pop("loss", {})}
    data = {"root": str(root / "train"), "val_root": str(root / "test"), "crop_size": 32, "rotate90": True,
            **sections.pop("data", {})}
    return make_config(tmp_path, root, pipeline="srgan", model=model, loss=loss, data=data, **sections)


def test_srresnet_phase_then_srgan_phase_from_it(tmp_path, sr_data, make_config):
    pre = sr_config(make_config, tmp_path / "pre", sr_data, train={"steps": 2})
    ckpt = i2i.train(pre)["checkpoint"]
    data = torch.load(ckpt, weights_only=True)
    assert list(data["nets"]) == ["G"]  # no discriminator without the adversarial term
    gan = sr_config(make_config, tmp_path / "gan", sr_data, generator={"init_from": ckpt},
                    loss={"adversarial_weight": 1e-3, "gan_mode": "vanilla"}, train={"steps": 2})
    t = i2i.Trainer(gan)
    for k, v in t.pipeline.nets["G"].state_dict().items():
        assert torch.equal(v, data["nets"]["G"][k]), k  # generator carried over
    t.fit()
    out = torch.load(gan.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert set(out["nets"]) == {"G", "D"}
    wrong = sr_config(make_config, tmp_path / "w", sr_data, generator={"init_from": ckpt, "base_channels": 8},
                      train={"steps": 1})
    with pytest.raises(i2i.CheckpointError, match="init_from"):
        i2i.Trainer(wrong)
    # Resuming the SRResNet phase's checkpoint with the SRGAN phase's config: no D to resume, and how to go on.
    resumed = sr_config(make_config, tmp_path / "pre", sr_data, loss={"adversarial_weight": 1e-3}, train={"steps": 4})
    with pytest.raises(i2i.CheckpointError, match=r"holds no D, D optimizer.*model.generator.init_from="):
        i2i.Trainer(resumed, resume="auto")


@pytest.mark.numerics
def test_srgan_resume_is_exact(tmp_path, sr_data, make_config):
    common = {"loss": {"adversarial_weight": 1e-2, "gan_mode": "wgangp"}, "train": {"steps": 4, "checkpoint_every": 2}}
    straight = sr_config(make_config, tmp_path / "a", sr_data, **common)
    split = sr_config(make_config, tmp_path / "b", sr_data, **common)
    a, _ = assert_exact_resume(straight, split, stop_at=2)
    assert set(a["nets"]) == {"G", "D"}


def test_perceptual_config_errors_name_the_setting(tmp_path, sr_data, make_config, monkeypatch, random_vgg):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cfg = sr_config(make_config, tmp_path, sr_data, loss={"perceptual_weight": 1.0})
    with pytest.raises(ConfigError, match="loss.perceptual_weight=1.0: .*vgg19-dcbb9e9d.pth"):
        i2i.train(cfg)
    ok = sr_config(make_config, tmp_path / "ok", sr_data, loss={"perceptual_weight": 1.0, "vgg_weights": random_vgg},
                   train={"steps": 1})
    assert i2i.train(ok)["losses"]["G_vgg"] > 0  # plumbing with random weights
    with pytest.raises(ConfigError, match="multiple of model.generator.scale"):
        i2i.train(sr_config(make_config, tmp_path, sr_data, data={"crop_size": 30}))


# ---------------------------------------------------------------- tiling, convert, eval


@pytest.mark.numerics
def test_tiled_upscaling_equals_whole_image():
    torch.manual_seed(0)
    net = i2i.build_generator("srresnet", scale=4, n_blocks=3, base_channels=16)  # batch norm, eval mode
    cfg = config_from_dict({})
    whole = Translator(net, cfg, direction="a_to_b", device="cpu")
    tiled = Translator(net, cfg, direction="a_to_b", device="cpu", tile=16)
    assert tiled.tile_context == 2 * 3 + 4 + 1 + 1 + 1 + 1  # 9x9 head, 3 blocks, body conv, 2 up convs, 9x9 tail
    x = torch.rand(1, 3, 45, 61) * 2 - 1
    a, b = whole(x), tiled(x)
    assert a.shape == (1, 3, 180, 244)
    assert (a - b).abs().max() < 1e-5
    with pytest.raises(ValueError, match="paper mode"):
        Translator(net, cfg, direction="a_to_b", device="cpu", mode="paper", tile=16)


def test_sr_convert_and_eval_cli(tmp_path, sr_data, make_config, capsys):
    cfg = sr_config(make_config, tmp_path, sr_data, train={"steps": 2})
    ckpt = i2i.train(cfg)["checkpoint"]
    lr_dir = tmp_path / "lr"
    write_image(lr_dir / "x.png", np.random.default_rng(0).integers(0, 256, (23, 37, 3), dtype=np.uint8))
    assert main(["convert", ckpt, str(lr_dir), str(tmp_path / "o1"), "--quiet"]) == 0
    assert main(["convert", ckpt, str(lr_dir), str(tmp_path / "o2"), "--quiet", "--tile", "8"]) == 0
    a, b = read_image(tmp_path / "o1" / "x.png"), read_image(tmp_path / "o2" / "x.png")
    assert a.shape == (92, 148, 3) and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    capsys.readouterr()
    assert main(["eval", ckpt, "--data", str(sr_data / "test"), "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "PSNR-Y model" in printed and "| **mean** |" in printed
    import json

    res = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert res["scale"] == 4 and len(res["per_image"]) == 5
    assert all(25 < r["psnr_y_bicubic"] < 45 for r in res["per_image"])
    assert (tmp_path / "ev" / "results.md").read_text().count("\n| ") == 7  # header + 5 images + mean


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS[:2])  # two seeds in the suite (its time budget); three were measured
def test_srresnet_beats_bicubic_on_held_out_photos(tmp_path, sr_data, make_config, seed):
    from i2i.evaluate import evaluate_sr

    cfg = sr_config(make_config, tmp_path, sr_data, seed=seed,
                    generator={"n_blocks": 4, "base_channels": 32, "global_skip": "bicubic"},
                    data={"batch_size": 8, "crop_size": 48}, optim={"lr_g": 5e-4, "beta1": 0.9},
                    schedule={"policy": "cosine"}, train={"steps": 300, "log_every": 50})
    ckpt = i2i.train(cfg)["checkpoint"]
    mean = evaluate_sr(ckpt, sr_data / "test")["mean"]
    print({k: round(v, 3) for k, v in mean.items()})
    assert mean["psnr_y_model"] > mean["psnr_y_bicubic"] + 0.2  # measured, seeds 0 / 1 / 2: +0.70 / +0.70 / +0.38 dB
    assert mean["ssim_y_model"] > mean["ssim_y_bicubic"]


def test_sr_builder_tiles_downscaled_copies_of_the_train_region(tmp_path, photos):
    import make_sr

    plain = make_sr.build(photos, tmp_path / "a", tile=64)
    multi = make_sr.build(photos, tmp_path / "b", tile=64, scales=(1.0, 0.5))
    names = sorted(p.name for p in (tmp_path / "b" / "train").iterdir())
    assert multi["test"] == plain["test"] and multi["train"] > plain["train"]
    assert sum("_s050_" in n for n in names) == multi["train"] - plain["train"]
    same = [n for n in names if "_s050_" not in n]
    assert same == sorted(p.name for p in (tmp_path / "a" / "train").iterdir())
    tile = read_image(tmp_path / "b" / "train" / next(n for n in names if "_s050_" in n))
    assert tile.shape == (64, 64, 3) and tile.dtype == np.uint8


def test_your_photos_in_one_step_and_the_gain_over_bicubic_in_every_validation_line(tmp_path, photos, capsys):
    """make_sr.py writes the my_photos recipe for the folder's size; training it reports the held-out gain
    over bicubic in its validation lines and its last line."""
    import make_sr

    from i2i.cli import main

    assert [make_sr.steps_for(n) for n in (10, 42, 131, 2000)] == [1650, 1650, 5150, 10000]
    c = make_sr.build(photos, tmp_path / "mine")
    config = make_sr.write_config(tmp_path / "mine", c["train"])
    cfg = i2i.load_config(config)
    assert cfg.train.steps == 1650 and cfg.data.root == str((tmp_path / "mine" / "train").resolve())
    argv = ["train", str(config), "--set", f"output_dir={tmp_path}", "--set", "train.steps=2", "--set",
            "train.val_every=1", "--set", "train.val_limit=1", "--set", "model.generator.n_convs=1",
            "--set", "data.num_workers=0"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    log = (tmp_path / "sr_my_photos" / "train.log").read_text()
    assert "validation at step 1: PSNR_Y" in log and "dB over bicubic)" in log, log
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("trained sr_my_photos to step 2") and "(PSNR_Y " in last and "over bicubic)" in last
