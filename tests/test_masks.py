"""Only a region translated (issue 44, part 2, conversion): ``convert --mask`` keeps the input byte
for byte where the mask is 0, takes the translation where it is full, blends monotonically in the
feather zone; per-image masks by name, one mask for all, SR, 16-bit, alpha, videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from i2i.cli import main
from i2i.convert import ConvertOptions
from i2i.convert.masks import MaskError, Masks, composite, weights
from i2i.data.io import read_image, write_image
from i2i.recipes import config_from_dict
from i2i.translator import Translator

pytestmark = pytest.mark.numerics


class Negative(nn.Module):
    """The photographic negative (x -> -x on [-1, 1]), upscaled by ``scale`` (nearest)."""

    in_channels = out_channels = 3

    def __init__(self, scale: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        y = -x * self.w
        return nn.functional.interpolate(y, scale_factor=self.scale, mode="nearest") if self.scale > 1 else y


def _translator(scale: int = 1) -> Translator:
    tr = Translator(Negative(scale), config_from_dict({}), direction="a_to_b", device="cpu")
    tr.scale = scale
    return tr


def _image(h=40, w=52, dtype=np.uint8, seed=0):
    top = 65535 if dtype == np.uint16 else 255
    return np.random.default_rng(seed).integers(0, top + 1, (h, w, 3)).astype(dtype)


def _square_mask(h=40, w=52):
    m = np.zeros((h, w), np.uint8)
    m[10:30, 12:40] = 255
    return m


def test_mask_zero_keeps_the_input_full_takes_the_translation_and_gray_blends():
    tr = _translator()
    img = _image()
    m = _square_mask()
    m[0:5, 0:5] = 128
    out = tr(img, mask=m)
    full = tr(img)
    outside = m == 0
    assert np.array_equal(out[outside], img[outside])  # byte for byte
    assert np.array_equal(out[m == 255], full[m == 255])
    half = (img[0:5, 0:5].astype(float) * (127 / 255) + full[0:5, 0:5].astype(float) * (128 / 255))
    assert np.abs(out[0:5, 0:5] - half).max() <= 0.5 + 1e-9


def test_feather_ramps_monotonically_inside_the_edge_and_never_outside():
    m = np.zeros((60, 80), np.uint8)
    m[10:50, 12:70] = 255
    w = weights(m, feather=6)
    assert (w[m == 0] == 0).all()
    assert np.allclose(w[17:43, 19:63], 1.0)  # deeper than 6 px inside: full
    row = w[30, 12:40]  # from the left edge of the square inward
    assert (np.diff(row[:8]) >= 0).all() and row[0] < 0.3 and row[7] == 1.0
    tr = _translator()
    img = _image(60, 80)
    out = tr(img, mask=m, feather=6)
    assert np.array_equal(out[m == 0], img[m == 0])


def test_super_resolution_scales_the_mask_and_keeps_a_bicubic_background():
    tr = _translator(scale=2)
    img = _image(20, 26)
    m = np.zeros((20, 26), np.uint8)
    m[:, 13:] = 255
    out = tr(img, mask=m)
    full = tr(img)
    assert out.shape == (40, 52, 3)
    assert np.array_equal(out[:, 30:], full[:, 30:])  # right half: the translation
    import cv2

    bicubic = cv2.resize(img, (52, 40), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[:, :22], bicubic[:, :22])  # left half: the input, upscaled


def test_sixteen_bits_and_alpha_are_kept():
    img = _image(dtype=np.uint16)
    m = _square_mask()
    out = composite(img, 65535 - img, weights(m))
    assert out.dtype == np.uint16 and np.array_equal(out[m == 0], img[m == 0])
    rgba = np.concatenate([_image(), np.full((40, 52, 1), 77, np.uint8)], axis=2)
    out = _translator()(rgba, mask=m)
    assert out.shape == (40, 52, 4) and (out[:, :, 3] == 77).all()
    assert np.array_equal(out[m == 0][:, :3], rgba[m == 0][:, :3])


def test_convert_takes_masks_by_name_or_one_for_all_and_fails_only_unmatched_files(tmp_path, capsys):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    for i in range(3):
        write_image(src / f"p{i}.png", _image(seed=i))
    write_image(masks / "p0.png", _square_mask()[:, :, None])
    write_image(masks / "p1.jpg", np.full((40, 52, 1), 255, np.uint8))  # any image format, matched by stem
    tr = _translator()
    summary = tr.convert_folder(src, tmp_path / "out", ConvertOptions(mask=str(masks), workers=0))
    assert len(summary.converted) == 2 and len(summary.failed) == 1
    assert "p2.png" in summary.failed[0][1] and "no mask named 'p2.*'" in summary.failed[0][1]
    out0, img0 = read_image(tmp_path / "out" / "p0.png"), _image(seed=0)
    m = _square_mask()
    assert np.array_equal(out0[m == 0], img0[m == 0])
    assert np.array_equal(read_image(tmp_path / "out" / "p1.png"), tr(_image(seed=1)))
    # one mask for all, resized to each image; and the CLI flags
    one = tmp_path / "one.png"
    Image.fromarray(np.kron(_square_mask(), np.ones((2, 2), np.uint8))).save(one)  # twice the images' size
    summary = tr.convert_folder(src, tmp_path / "out2", ConvertOptions(mask=str(one), feather=3, workers=0))
    assert len(summary.converted) == 3
    assert np.array_equal(read_image(tmp_path / "out2" / "p2.png")[m == 0], _image(seed=2)[m == 0])


def test_a_missing_mask_or_wrong_size_is_refused_naming_the_file(tmp_path):
    with pytest.raises(MaskError, match="nowhere.png"):
        Masks(tmp_path / "nowhere.png")
    folder = tmp_path / "m"
    folder.mkdir()
    write_image(folder / "a.png", np.zeros((10, 10, 1), np.uint8))
    with pytest.raises(MaskError, match="a.png' is 10x10, the image 52x40"):
        Masks(folder).weight_for(tmp_path / "a.jpg", (40, 52))
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", _image())
    assert main(["convert", "x.pt", str(src), str(tmp_path / "out"), "--mask", str(tmp_path / "none")]) == 2


def test_a_video_takes_one_mask_for_every_frame(tmp_path):
    from test_video import decode, make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    m = np.zeros((48, 64), np.uint8)
    m[:, 32:] = 255
    Image.fromarray(m).save(tmp_path / "mask.png")
    tr = _translator()
    opts = ConvertOptions(mask=str(tmp_path / "mask.png"), workers=0)
    from dataclasses import replace

    from i2i.convert.video import VideoOptions

    opts = replace(opts, video_ext="mkv", video=VideoOptions(codec="ffv1"))
    summary = tr.convert_folder(clip, tmp_path / "out", opts)
    assert len(summary.converted) == 1
    got, _, _ = decode(tmp_path / "out" / "clip.mkv")
    frames, _, _ = decode(clip)
    for g, f in zip(got, frames):
        assert np.array_equal(g[:, :32], f[:, :32]) and np.array_equal(g[:, 32:], tr(f)[:, 32:])


def test_a_video_takes_one_mask_per_frame_from_a_folder_named_like_it(tmp_path):
    from dataclasses import replace

    from test_video import decode, make_clip

    from i2i.convert.video import VideoOptions

    clip = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    per_frame = tmp_path / "masks" / "clip"
    per_frame.mkdir(parents=True)
    for k in range(3):  # the translated band moves right frame by frame
        m = np.zeros((48, 64), np.uint8)
        m[:, 16 * k : 16 * k + 16] = 255
        Image.fromarray(m).save(per_frame / f"{k:04d}.png")
    tr = _translator()
    opts = replace(ConvertOptions(mask=str(tmp_path / "masks"), workers=0), video_ext="mkv",
                   video=VideoOptions(codec="ffv1"))
    assert len(tr.convert_folder(clip, tmp_path / "out", opts).converted) == 1
    got, _, _ = decode(tmp_path / "out" / "clip.mkv")
    frames, _, _ = decode(clip)
    for k, (g, f) in enumerate(zip(got, frames)):
        band = slice(16 * k, 16 * k + 16)
        assert np.array_equal(g[:, band], tr(f)[:, band])
        assert np.array_equal(np.delete(g, np.s_[16 * k : 16 * k + 16], axis=1),
                              np.delete(f, np.s_[16 * k : 16 * k + 16], axis=1))
    (per_frame / "0002.png").unlink()  # a frame without its mask fails that video, named
    summary = tr.convert_folder(clip, tmp_path / "out2", opts)
    assert summary.failed and "frame 2 has no mask" in summary.failed[0][1]
