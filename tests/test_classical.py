"""The classical baseline of paired evaluation (``i2i eval --classical nlm``)."""

import json

import cv2
import numpy as np
import pytest
import torch

from i2i.cli import main
from i2i.evaluate.classical import NLM_STRENGTHS, best_classical, nonlocal_means
from i2i.metrics import psnr


def _tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8).permute(2, 0, 1)[None].float() / 127.5 - 1


def _noisy_pairs(n: int = 3, sigma: float = 20.0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Smooth colour images with edges, and copies with Gaussian noise of ``sigma`` levels."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    yy, xx = np.mgrid[0:48, 0:40]
    for i in range(n):
        clean = np.stack([(xx * 5 + 40 * i) % 256, (yy * 4) % 256, np.where(xx > 20, 200, 60)], 2).astype(np.float64)
        noisy = np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
        xs.append(_tensor(noisy))
        ys.append(_tensor(clean.astype(np.uint8)))
    return xs, ys


def test_nonlocal_means_is_opencvs_denoiser_on_the_8_bit_image():
    xs, _ = _noisy_pairs(1)
    u8 = ((xs[0][0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    out = nonlocal_means(xs[0], 12)
    assert out.shape == xs[0].shape and out.min() >= -1 and out.max() <= 1
    want = cv2.fastNlMeansDenoisingColored(u8, None, 12, 12, 7, 21)
    assert torch.equal(out, _tensor(want))
    gray = nonlocal_means(xs[0][:, :1], 12)  # one channel: the gray denoiser
    assert torch.equal(gray, _tensor(cv2.fastNlMeansDenoising(np.ascontiguousarray(u8[:, :, 0]), None, 12, 7,
                                                              21)[:, :, None]))


def test_the_strength_chosen_is_the_one_with_the_best_mean_psnr_and_it_denoises():
    xs, ys = _noisy_pairs()
    h, outs = best_classical("nlm", xs, ys)
    means = {s: float(torch.cat([psnr(nonlocal_means(x, s), y) for x, y in zip(xs, ys)]).mean())
             for s in NLM_STRENGTHS}
    assert h == max(means, key=means.get) and h > NLM_STRENGTHS[0]
    got = float(torch.cat([psnr(o, y) for o, y in zip(outs, ys)]).mean())
    identity = float(torch.cat([psnr(x, y) for x, y in zip(xs, ys)]).mean())
    assert got == pytest.approx(means[h]) and got > identity + 3  # noise of 20 levels: a clear gain


def test_a_classical_method_that_does_not_apply_says_so():
    xs, ys = _noisy_pairs(1)
    with pytest.raises(ValueError, match=r"--classical nlm .* same channels, 1 or 3 \(here 1 -> 3\)"):
        best_classical("nlm", [xs[0][:, :1]], ys)
    with pytest.raises(ValueError, match="'bm3d' is not a classical method i2i knows; choose from nlm"):
        best_classical("bm3d", xs, ys)


def test_eval_puts_the_classical_row_on_the_table_and_the_page(tmp_path, restore, make_config, trained, gray2color,
                                                                capsys):
    import i2i

    cfg = make_config(tmp_path, restore, model={"generator": {"in_channels": 3, "predict": "residual"}},
                      train={"steps": 2})
    ckpt = i2i.train(cfg)["checkpoint"]
    out = tmp_path / "res"
    assert main(["eval", str(ckpt), "--data", str(restore / "test"), "--out", str(out), "--classical", "nlm"]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("non-local means h="))
    assert len(row.split()) == 3 + 3  # the name (three words) and L1, PSNR, SSIM
    saved = json.loads((out / "metrics.json").read_text())["classical"]
    assert saved["method"] == "nlm" and saved["strength"] in NLM_STRENGTHS
    assert row.startswith(saved["row"] + " ") and saved["row"] == f"non-local means h={saved['strength']:g}"
    page = (out / "index.html").read_text()
    assert "non-local means h=" in page and "fastNlMeansDenoisingColored" in page
    # A colouriser's input is gray: the classical row does not apply, and the error says what to do.
    assert main(["eval", str(trained), "--data", str(gray2color / "test"), "--classical", "nlm"]) == 2
    assert "leave --classical out for this model" in capsys.readouterr().err
