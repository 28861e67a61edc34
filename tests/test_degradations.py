"""Real-ESRGAN's degradation model: kernels (sums, shapes, supports, the sinc's pass band),
the draws' ranges and frequencies, noise levels, JPEG quality, determinism, unsharp masking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from i2i.data.degradations import RealESRGANDegradation, add_noise, degrade, draw, filter2d, jpeg, usm_sharp
from i2i.data.kernels import anisotropic_kernels, pulse, sinc_kernels

pytestmark = pytest.mark.numerics  # tolerances against direct computations and OpenCV

CFG = RealESRGANDegradation()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_kernels_sum_to_one_are_centred_and_stay_in_their_support():
    n = 6
    kind = torch.tensor([0, 0, 1, 1, 2, 2])
    sx, sy = torch.full((n,), 2.0), torch.tensor([2.0, 0.7, 2.0, 0.7, 2.0, 0.7])
    theta = torch.tensor([0.0, 0.5, 0.0, 1.0, 0.0, -1.0])
    support = torch.tensor([7, 21, 9, 21, 11, 21])
    k = anisotropic_kernels(21, kind, sx, sy, theta, torch.full((n,), 1.5), support)
    assert k.shape == (n, 21, 21) and torch.allclose(k.sum((1, 2)), torch.ones(n), atol=1e-6)
    assert (k >= 0).all() and k[0, 10, 10] == k[0].max()
    for i, s in enumerate(support.tolist()):
        r = (21 - s) // 2
        assert k[i, :r].abs().sum() == 0 and k[i, :, :r].abs().sum() == 0 if r else True
    assert torch.allclose(k[0], k[0].flip(0)) and torch.allclose(k[0], k[0].T)  # isotropic: symmetric
    assert not torch.allclose(k[1], k[1].T, atol=1e-4)  # rotated anisotropic: not
    # generalised Gaussian with beta 1 is the Gaussian
    g1 = anisotropic_kernels(21, torch.tensor([1]), sx[:1], sx[:1], theta[:1], torch.ones(1))
    g0 = anisotropic_kernels(21, torch.tensor([0]), sx[:1], sx[:1], theta[:1], torch.ones(1))
    assert torch.allclose(g0, g1, atol=1e-7)
    # a wider sigma spreads: a smaller centre
    wide = anisotropic_kernels(21, torch.tensor([0]), torch.tensor([3.0]), torch.tensor([3.0]), torch.zeros(1),
                               torch.ones(1))
    assert wide[0, 10, 10] < g0[0, 10, 10]


def test_sinc_kernels_pass_below_their_cutoff_and_stop_above():
    omega = torch.tensor([math.pi / 2])
    k = sinc_kernels(21, omega)[0]
    assert abs(float(k.sum()) - 1) < 1e-6 and torch.allclose(k, k.T) and torch.allclose(k, k.flip(0))
    spectrum = torch.fft.fftshift(torch.fft.fft2(k.double())).abs()
    freqs = torch.fft.fftshift(torch.fft.fftfreq(21)) * 2 * math.pi
    fy, fx = torch.meshgrid(freqs, freqs, indexing="ij")
    radius = (fx**2 + fy**2).sqrt()
    assert spectrum[radius < 0.6 * omega].min() > 0.8  # pass band
    assert spectrum[radius > 1.4 * omega].max() < 0.2  # stop band (a truncated sinc ripples a little)
    assert (k < 0).any()  # it rings: the artefact it is there to teach


def test_draws_are_deterministic_and_in_range():
    a, b, c = draw(CFG, 64, _gen(0)), draw(CFG, 64, _gen(0)), draw(CFG, 64, _gen(1))
    assert torch.equal(a["kernel1"], b["kernel1"]) and a["resize1"] == b["resize1"] and a["seed"] == b["seed"]
    assert not torch.equal(a["kernel1"], c["kernel1"])
    for key in ("kernel1", "kernel2", "sinc"):
        assert a[key].shape == (64, 21, 21) and torch.allclose(a[key].sum((1, 2)), torch.ones(64), atol=1e-5)
    assert ((a["jpeg1"] >= 30) & (a["jpeg1"] <= 95)).all() and ((a["jpeg2"] >= 30) & (a["jpeg2"] <= 95)).all()
    assert ((a["noise1"]["sigma"] >= 1 / 255 - 1e-7) & (a["noise1"]["sigma"] <= 30 / 255 + 1e-7)).all()
    assert ((a["noise2"]["poisson"] >= 0.05) & (a["noise2"]["poisson"] <= 2.5)).all()
    f1, m1 = a["resize1"]
    assert 0.15 <= f1 <= 1.5 and m1 in ("area", "bilinear", "bicubic")


def test_draw_frequencies_follow_the_probabilities():
    g = _gen(0)
    n, trials = 64, 40
    pulses2 = sincs = gray = 0
    ups = downs = keeps = 0
    for _ in range(trials):
        d = draw(CFG, n, g)
        centre = d["sinc"][:, 10, 10]
        sincs += int((centre < 1).sum())  # a pulse has 1 at the centre
        pulses2 += int(bool((d["kernel2"][:, 10, 10] == 1).all()))
        gray += int(d["noise1"]["gray"].sum())
        f = d["resize1"][0]
        ups, downs, keeps = ups + (f > 1), downs + (f < 1), keeps + (f == 1)
    total = n * trials
    assert abs(sincs / total - 0.8) < 0.03  # final_sinc_prob
    assert abs(gray / total - 0.4) < 0.03  # gray_noise_prob
    assert 2 <= pulses2 <= 17  # second blur skipped with probability 0.2 per batch (8 expected of 40)
    assert downs > ups > 0 and keeps >= 0 and ups + downs + keeps == trials


def test_gaussian_noise_levels_and_gray_noise():
    x = torch.full((4, 3, 64, 64), 0.5)
    d = {"gaussian": True, "sigma": torch.tensor([5.0, 10.0, 20.0, 20.0]) / 255, "poisson": torch.zeros(4),
         "gray": torch.tensor([False, False, False, True])}
    out = add_noise(x, d, torch.Generator().manual_seed(0))
    std = (out - x).std((1, 2, 3)) * 255
    assert torch.allclose(std, torch.tensor([5.0, 10.0, 20.0, 20.0]), rtol=0.05)
    assert torch.equal(out[3, 0], out[3, 1]) and not torch.equal(out[2, 0], out[2, 1])


def test_poisson_noise_scales_with_the_level_count():
    levels = torch.linspace(0, 1, 256).repeat(256, 1)  # every 8-bit level: 256 values -> photon count 256
    x = levels.expand(2, 3, -1, -1).clone()
    d = {"gaussian": False, "sigma": torch.zeros(2), "poisson": torch.tensor([1.0, 2.0]),
         "gray": torch.tensor([False, False])}
    out = add_noise(x, d, torch.Generator().manual_seed(0))
    mid = (x - 0.5).abs() < 0.05  # away from the clipping at 0 and 1
    var1 = (out[0] - x[0])[mid[0]].var()
    var2 = (out[1] - x[1])[mid[1]].var()
    assert abs(float(var1) - 0.5 / 256) / (0.5 / 256) < 0.1  # Poisson: variance = mean / count
    assert abs(float(var2 / var1) - 4) < 0.5  # scale 2: four times the variance


def test_jpeg_loses_less_at_higher_quality_and_matches_opencv():
    import cv2

    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur((rng.random((64, 64, 3)) * 255).astype(np.uint8), (0, 0), 3)
    x = torch.from_numpy(smooth).permute(2, 0, 1)[None].float().repeat(3, 1, 1, 1) / 255
    out = jpeg(x, torch.tensor([30.0, 60.0, 95.0]))
    err = (out - x).abs().mean((1, 2, 3))
    assert err[0] > err[1] > err[2]
    for i, q in enumerate((30, 60, 95)):
        _, buf = cv2.imencode(".jpg", smooth[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        ref = torch.from_numpy(cv2.imdecode(buf, 1)[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
        # measured: kornia's codec is within 0.003-0.006 of OpenCV's (mean |diff|), while the loss itself is 0.003-0.02
        assert float((out[i] - ref).abs().mean()) < 0.01


def test_degrade_shape_levels_and_determinism(photos):
    from i2i.data.io import list_images, read_image

    img = read_image(list_images(photos)[0])[:128, :128]
    hr = torch.from_numpy(img).permute(2, 0, 1)[None].float().repeat(4, 1, 1, 1) / 255
    d = draw(CFG, 4, _gen(3))
    lr = degrade(hr, d, 4)
    assert lr.shape == (4, 3, 32, 32) and lr.min() >= 0 and lr.max() <= 1
    assert torch.equal(lr * 255, (lr * 255).round())  # 8-bit levels, as a saved image
    assert torch.equal(lr, degrade(hr, d, 4))  # the draws decide everything, noise included
    assert not torch.equal(lr, degrade(hr, draw(CFG, 4, _gen(4)), 4))
    assert degrade(hr[:, :, :64, :64], draw(CFG, 4, _gen(5)), 2).shape == (4, 3, 32, 32)


def test_filter2d_with_a_pulse_is_the_identity_and_each_image_has_its_kernel():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(filter2d(x, pulse(2, 21)), x, atol=1e-6)
    box = torch.zeros(2, 3, 3)
    box[1] = 1 / 9
    box[0, 1, 1] = 1
    y = filter2d(x, box)
    assert torch.allclose(y[0], x[0], atol=1e-6) and not torch.allclose(y[1], x[1])


def test_unsharp_masking_sharpens_edges_and_leaves_flat_areas():
    flat = torch.full((1, 3, 64, 64), 0.4)
    assert torch.allclose(usm_sharp(flat), flat, atol=1e-6)
    edge = flat.clone()
    edge[..., 32:] = 0.6
    sharp = usm_sharp(edge)
    assert sharp[..., 31].mean() < 0.4 and sharp[..., 32].mean() > 0.6  # overshoot on both sides of the edge
    assert sharp.min() >= 0 and sharp.max() <= 1


@pytest.mark.parametrize("size", [7, 21])
def test_kernel_support_equals_a_padded_smaller_kernel(size):
    small = anisotropic_kernels(size, torch.tensor([0]), torch.tensor([1.5]), torch.tensor([0.8]), torch.tensor([0.3]),
                                torch.ones(1))
    big = anisotropic_kernels(21, torch.tensor([0]), torch.tensor([1.5]), torch.tensor([0.8]), torch.tensor([0.3]),
                              torch.ones(1),
                              torch.tensor([size]))
    p = (21 - size) // 2
    assert torch.allclose(big[0, p : p + size, p : p + size], small[0], atol=1e-7)
