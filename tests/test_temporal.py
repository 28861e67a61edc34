"""Video without flicker (issue 45): ``--temporal flow`` on panned, noisy, cut and occluded clips."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from contract import example_config
from PIL import Image
from torch import nn

import i2i
from i2i.cli import main
from i2i.convert import ConvertOptions
from i2i.convert.video import Stabilizer, VideoOptions
from i2i.losses import motion_consistency, random_motion
from i2i.nets.registry import build_generator
from i2i.recipes import config_from_dict
from i2i.translator import Translator

ROOT = Path(__file__).resolve().parent.parent
PHOTO = np.asarray(Image.open(ROOT / "datasets" / "sample" / "photos" / "coffee.jpg").convert("RGB"))
OTHER = np.asarray(Image.open(ROOT / "datasets" / "sample" / "photos" / "astronaut.jpg").convert("RGB"))
H, W = 72, 96


def panned(t: int, photo: np.ndarray = PHOTO) -> np.ndarray:
    """The photo seen through a window moving 2 pixels right and 1 down per frame."""
    return photo[40 + t: 40 + t + H, 60 + 2 * t: 60 + 2 * t + W].copy()


def noisy(clean: np.ndarray, rng: np.random.Generator, sigma: float = 8.0) -> np.ndarray:
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean()))


class Identity(nn.Module):
    in_channels = out_channels = 3

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.w


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    """Frames into a lossless RGB video (ffv1), 24 frames/s."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=24)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            out.mux(v.encode(vf))
        out.mux(v.encode(None))
    return path


def read_clip(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_a_noisy_pan_flickers_half_as_much_and_is_no_further_from_the_clean_frames(tmp_path):
    rng = np.random.default_rng(0)
    clean = [panned(t) for t in range(16)]
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "pan.mkv", [noisy(c, rng) for c in clean])
    tr = Translator(Identity(), config_from_dict({}), direction="a_to_b", device="cpu")
    lossless = VideoOptions(codec="ffv1")
    off = tr.convert_folder(src, tmp_path / "off", ConvertOptions(video=lossless, workers=0))
    on = tr.convert_folder(src, tmp_path / "on", ConvertOptions(video=lossless, temporal="flow", workers=0))
    frames_in, frames_off, frames_on = (read_clip(p) for p in (src / "pan.mkv", tmp_path / "off" / "pan.mkv",
                                                                tmp_path / "on" / "pan.mkv"))
    assert all(np.array_equal(a, b) for a, b in zip(frames_in, frames_off))  # off: every frame alone, as before
    assert off.videos[0][1].warping == {}
    w = on.videos[0][1].warping
    assert w["stabilised"] <= 0.5 * w["per-frame"] and w["per-frame"] == pytest.approx(w["input"]) and w["cuts"] == 0
    assert np.array_equal(frames_on[0], frames_off[0])  # the first frame has no history
    p_off = np.mean([psnr(f, c) for f, c in zip(frames_off, clean)])
    p_on = np.mean([psnr(f, c) for f, c in zip(frames_on, clean)])
    assert p_on >= p_off + 1.0, (p_off, p_on)


def _flicker(t: int) -> int:
    return 12 if t % 2 else -12


def _per_frame(frame: np.ndarray, t: int) -> np.ndarray:
    """A translation that flickers: the frame brightened or darkened by 12 levels, alternately."""
    return np.clip(frame.astype(np.int16) + _flicker(t), 0, 255).astype(np.uint8)


def test_after_a_hard_cut_the_frame_is_its_own_translation(tmp_path):
    st = Stabilizer()
    frames = [panned(t) for t in range(5)] + [panned(t, OTHER) for t in range(3)]
    outs = [st.step(f, _per_frame(f, t)) for t, f in enumerate(frames)]
    assert not np.array_equal(outs[4], _per_frame(frames[4], 4))  # before the cut: history blended in
    assert np.array_equal(outs[5], _per_frame(frames[5], 5))  # the cut: no ghost of the coffee
    assert st.report()["cuts"] == 1
    assert not np.array_equal(outs[6], _per_frame(frames[6], 6))  # and the new scene is stabilised again


def test_pixels_a_moving_square_uncovers_take_the_per_frame_value():
    rng = np.random.default_rng(1)
    background = np.asarray(Image.fromarray(PHOTO).resize((W, H), Image.BILINEAR))

    def scene(t: int) -> tuple[np.ndarray, np.ndarray]:
        img, mask = background.copy(), np.zeros((H, W), bool)
        mask[20:44, 10 + 4 * t: 34 + 4 * t] = True
        img[mask] = (30, 220, 40)
        return noisy(img, rng, 2.0), mask

    st = Stabilizer()
    frames, masks = zip(*(scene(t) for t in range(8)))
    outs = [st.step(f, _per_frame(f, t)) for t, f in enumerate(frames)]
    far = np.zeros((H, W), bool)
    far[55:, :] = True  # static background away from the square
    for t in range(2, 8):
        uncovered = masks[t - 1] & ~masks[t]
        diff = np.abs(outs[t].astype(int) - _per_frame(frames[t], t).astype(int))
        assert diff[uncovered].max() <= 1, t  # no smear of the square over what it uncovered
        step = np.abs(outs[t].astype(int) - outs[t - 1].astype(int))[far].mean()
        assert step <= 0.5 * 24, (t, step)  # the still background: its 24-level flicker at least halved
    assert st.report()["stabilised"] < 0.5 * st.report()["per-frame"]


def test_sixteen_bit_super_resolution_and_one_frame_work():
    rng = np.random.default_rng(2)
    st = Stabilizer()
    for t in range(6):
        f = (noisy(panned(t), rng).astype(np.uint16) * 257)
        up = f.repeat(2, axis=0).repeat(2, axis=1)
        out = st.step(f, up)
        assert out.dtype == np.uint16 and out.shape == (2 * H, 2 * W, 3)
    r = st.report()
    assert r["stabilised"] < 0.5 * r["per-frame"]
    one = Stabilizer()
    f = panned(0)
    assert np.array_equal(one.step(f, _per_frame(f, 0)), _per_frame(f, 0)) and one.report() == {}


def test_the_cli_prints_the_warping_errors_and_refuses_a_wrong_mode(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_generator("srvgg", scale=1, n_convs=1, base_channels=4).state_dict(), tmp_path / "c.pth")
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    write_clip(src / "pan.mkv", [noisy(panned(t), rng) for t in range(6)])
    assert main(["convert", str(tmp_path / "c.pth"), str(src), str(tmp_path / "out"), "--quiet",
                 "--temporal", "flow"]) == 0
    out = capsys.readouterr().out
    assert "warping error (8-bit levels, lower is steadier): input" in out and "scene cuts 0" in out
    with pytest.raises(SystemExit):
        main(["convert", str(tmp_path / "c.pth"), str(src), str(tmp_path / "x"), "--temporal", "median"])
    assert "--temporal" in capsys.readouterr().err


class Strided(nn.Module):
    """Down by 2 and up again: not equivariant to shifts of one pixel."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.down, self.up = nn.Conv2d(3, 8, 4, stride=2, padding=1), nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)

    def forward(self, x):
        return self.up(torch.relu(self.down(x)))


def test_motion_consistency_is_zero_for_a_pointwise_net_and_learnable_for_a_strided_one():
    torch.manual_seed(0)
    x = torch.from_numpy(panned(0)).permute(2, 0, 1)[None].float() / 127.5 - 1
    x = x.repeat(4, 1, 1, 1)
    theta = random_motion(4, "cpu")
    pointwise = nn.Conv2d(3, 3, 1)
    assert motion_consistency(pointwise, x, pointwise(x), theta).item() < 1e-5
    net = Strided()
    before = motion_consistency(net, x, net(x), theta).item()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(30):
        opt.zero_grad()
        motion_consistency(net, x, net(x)).backward()
        opt.step()
    assert before > 0.01 and motion_consistency(net, x, net(x), theta).item() < 0.5 * before


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan", "srgan"])
def test_loss_temporal_reg_trains_and_is_logged_in_every_translation_pipeline(name, tmp_path, data_roots):
    logs = []
    for run in range(2):
        cfg = example_config(name, tmp_path / str(run), data_roots, steps=2)
        cfg.loss.temporal_reg = 1.0
        trainer = i2i.Trainer(cfg)
        batches = trainer.batches()
        logs.append([trainer.train_step(next(batches)) for _ in range(2)])
    assert all(torch.isfinite(step["motion"]) and step["motion"] >= 0 for step in logs[0])  # 0: equivariant
    assert [float(s["motion"]) for s in logs[0]] == [float(s["motion"]) for s in logs[1]]  # seeded: reproducible


def test_eval_on_videos_reports_frame_metrics_and_warping_errors_against_targets(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_generator("srvgg", scale=1, n_convs=1, base_channels=4).state_dict(), tmp_path / "c.pth")
    rng = np.random.default_rng(4)
    clean = [panned(t) for t in range(10)]
    for folder, frames in (("A", [noisy(c, rng) for c in clean]), ("B", clean)):
        (tmp_path / "data" / folder).mkdir(parents=True)
        write_clip(tmp_path / "data" / folder / "pan.mkv", frames)
    assert main(["eval", str(tmp_path / "c.pth"), "--data", str(tmp_path / "data"), "--lpips", "none",
                 "--out", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    assert "1 video(s), 10 frames" in out and "warping error (8-bit levels, lower is steadier): identity" in out
    r = json.loads((tmp_path / "res" / "metrics.json").read_text())
    rows = {m["model"]: m for m in r["models"]}
    assert rows["stabilised"]["PSNR"] > rows["per-frame"]["PSNR"] + 1
    assert rows["stabilised"]["warping"] < 0.5 * rows["per-frame"]["warping"]
    assert r["target_warping"] < rows["stabilised"]["warping"]  # the clean pan is steadier still
    assert main(["eval", str(tmp_path / "c.pth"), "--data", str(tmp_path / "data"), "--tile", "64"]) == 2
    assert "--tile do not apply to videos" in capsys.readouterr().err


def test_translator_translate_video_takes_the_temporal_mode(tmp_path):
    rng = np.random.default_rng(5)
    write_clip(tmp_path / "pan.mkv", [noisy(panned(t), rng) for t in range(6)])
    tr = Translator(Identity(), config_from_dict({}), direction="a_to_b", device="cpu")
    stats = tr.translate_video(tmp_path / "pan.mkv", tmp_path / "out.mkv", temporal="flow",
                               options=VideoOptions(codec="ffv1"))
    assert stats.frames == 6 and stats.warping["stabilised"] < stats.warping["per-frame"]
    assert len(read_clip(tmp_path / "out.mkv")) == 6
