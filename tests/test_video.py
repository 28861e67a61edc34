"""Videos through ``i2i convert``: clips made here with PyAV (frames and a tone), converted by a
small fixed net, and checked frame by frame against the image translator on the decoded
input frames; timing, audio, failures, kills, frame folders and frames -> video."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch import nn

from i2i.cli import main
from i2i.convert import ConvertOptions, convert_path
from i2i.convert.video import VideoError, VideoOptions, convert_video, frame_count, frames_to_video, video_to_frames
from i2i.data.io import read_image, write_image
from i2i.recipes import config_from_dict
from i2i.translator import Translator

pytestmark = pytest.mark.numerics  # frames compared with the translator's (bit-exact within a run, PSNR thresholds)

RATE = 24
SAMPLE_RATE = 44100


class Tint(nn.Module):
    """A fixed colour-mixing net with a nonlinearity (not the identity, so equality means something)."""

    in_channels = out_channels = 3

    def __init__(self, scale: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.mix = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(3)[:, :, None, None] * 0.6 + 0.2 * torch.rand(3, 3, 1, 1, generator=g))
            self.mix.bias.copy_(torch.tensor([0.1, -0.2, 0.05]))
        self.scale = scale

    def forward(self, x):
        y = torch.tanh(self.mix(x))
        return nn.functional.interpolate(y, scale_factor=self.scale, mode="nearest") if self.scale > 1 else y


def translator(scale: int = 1) -> Translator:
    tr = Translator(Tint(scale), config_from_dict({}), direction="a_to_b", device="cpu")
    tr.scale = scale
    return tr


def _picture(i: int, h: int, w: int, deep: bool = False) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), 0.5 + 0.4 * np.sin(x / 5 + i / 2) * np.cos(y / 7)], -1)
    return (img * (65535 if deep else 255)).round().astype(np.uint16 if deep else np.uint8)


def mux_pictures(out, stream, frames: int, h: int = 48, w: int = 64) -> None:
    """Encode ``frames`` of :func:`_picture` at timestamps 0, 1, ... into ``stream`` and flush it."""
    for i in range(frames):
        f = av.VideoFrame.from_ndarray(_picture(i, h, w), format="rgb24")
        f.pts = i
        out.mux(stream.encode(f))
    out.mux(stream.encode(None))


def make_clip(path: Path, *, frames: int = 10, size: tuple[int, int] = (64, 48), audio: bool = True,
              codec: str = "libx264",
              pix_fmt: str = "yuv420p", pts: list[int] | None = None, time_base: Fraction | None = None,
              rotation: int = 0) -> Path:
    """A test clip: moving smooth pictures at 24 frames/s (or at ``pts`` in ``time_base``) and
    a 440 Hz tone as long as the pictures."""
    w, h = size
    deep = "10" in pix_fmt
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=RATE)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        if rotation:
            v.set_display_rotation(rotation)
        if time_base is not None:
            v.codec_context.time_base = time_base
        a = None
        if audio:
            a = out.add_stream("aac", rate=SAMPLE_RATE)
            a.layout = "mono"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(_picture(i, h, w, deep), format="rgb48le" if deep else "rgb24")
            f.pts = pts[i] if pts is not None else i
            f.time_base = time_base or Fraction(1, RATE)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        if a is not None:
            n = int(SAMPLE_RATE * frames / RATE)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / SAMPLE_RATE)).astype(np.float32)
            for k in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[None, k:k + 1024], format="fltp", layout="mono")
                af.sample_rate, af.pts = SAMPLE_RATE, k
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def decode(path: Path, fmt: str = "rgb24") -> tuple[list[np.ndarray], list[int], dict]:
    """Frames (RGB arrays), their timestamps, and facts of the video and audio streams."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"rate": v.average_rate, "time_base": v.time_base, "pix_fmt": v.codec_context.pix_fmt,
                "codec": v.codec_context.name,
                "size": (v.codec_context.width, v.codec_context.height)}
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio"] = a.codec_context.name
            info["audio_samples"] = sum(f.samples for f in c.decode(audio=0))
            c.seek(0)
        frames, stamps = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format=fmt))
            stamps.append(f.pts)
    return frames, stamps, info


def audio_packets(path: Path) -> list[tuple[Fraction, bytes]]:
    with av.open(str(path)) as c:
        return [(pk.pts * pk.time_base, bytes(pk)) for pk in c.demux(c.streams.audio[0]) if pk.pts is not None]


def expected(tr: Translator, frames: list[np.ndarray], batch: int) -> list[np.ndarray]:
    """The image translator on the decoded frames, in the batches the conversion uses."""
    return [o for k in range(0, len(frames), batch) for o in tr.translate_arrays(frames[k:k + batch])]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def test_default_video_keeps_frames_rate_audio_and_quality(clip, tmp_path):
    tr = translator()
    summary = convert_path(tr.translate_arrays, clip, tmp_path / "out", ConvertOptions(batch_size=4))
    out = tmp_path / "out" / "clip.mp4"
    assert summary.converted == [out] and not summary.failed and summary.frames == 10
    src_frames, src_pts, src = decode(clip)
    got, got_pts, info = decode(out)
    assert len(got) == len(src_frames) == 10 == frame_count(out) and frame_count(tmp_path) is None
    assert info["rate"] == src["rate"] == RATE and info["time_base"] == src["time_base"] and got_pts == src_pts
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["size"] == (64, 48)
    assert info["audio"] == "aac" and info["audio_samples"] == src["audio_samples"] > 0  # copied, not re-encoded
    assert summary.videos[0][1].copied_streams == ["audio:aac"]
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]  # the source's order
    assert audio_packets(out) == audio_packets(clip)  # the same packets at the same times: copied, not re-encoded
    want = expected(tr, src_frames, 4)
    scores = [psnr(g, w) for g, w in zip(got, want)]
    assert np.median(scores) >= 30, scores  # CRF 18 on smooth pictures: ~40 dB measured
    assert min(psnr(g, s) for g, s in zip(got, src_frames)) < 25  # the net did change the frames


def test_lossless_codec_is_exact_and_sr_changes_the_size(clip, tmp_path):
    tr = translator(scale=2)
    stats = convert_video(tr.translate_arrays, clip, tmp_path / "x2.mkv", batch_size=3,
                          options=VideoOptions(codec="ffv1"))
    got, _, info = decode(tmp_path / "x2.mkv")
    src_frames, _, _ = decode(clip)
    assert stats.frames == 10 and info["size"] == (128, 96) and info["pix_fmt"] in ("gbrp", "bgr0")
    for g, w in zip(got, expected(tr, src_frames, 3)):
        np.testing.assert_array_equal(g, w)


def test_variable_frame_timing_is_kept(tmp_path):
    pts = [0, 1, 2, 5, 6, 11, 12, 20]  # in 1/48 s: frames of irregular length
    src = make_clip(tmp_path / "vfr.mp4", frames=len(pts), pts=pts, time_base=Fraction(1, 48), audio=False)
    convert_video(translator().translate_arrays, src, tmp_path / "out.mp4")
    _, src_pts, s = decode(src)
    _, got_pts, g = decode(tmp_path / "out.mp4")
    assert [p * g["time_base"] for p in got_pts] == [p * s["time_base"] for p in src_pts]


def test_phone_clips_are_translated_upright(tmp_path):
    """A portrait phone clip is stored landscape with a 'display rotated' tag: the net gets the
    frames as a player shows them, and the output is stored upright without a tag (as FFmpeg's
    autorotate does), so it displays the same."""
    src = make_clip(tmp_path / "phone.mp4", frames=3, rotation=90, audio=False)
    convert_video(translator().translate_arrays, src, tmp_path / "out.mkv", options=VideoOptions(codec="ffv1"))
    stored, _, info = decode(src)
    got, _, out_info = decode(tmp_path / "out.mkv")
    assert info["size"] == (64, 48) and out_info["size"] == (48, 64)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [f.rotation for f in c.decode(video=0)] == [0, 0, 0]
    upright = [np.ascontiguousarray(np.rot90(f, 1)) for f in stored]  # 90 degrees counterclockwise, as the tag says
    for g, w in zip(got, expected(translator(), upright, 8)):
        np.testing.assert_array_equal(g, w)


def test_ten_bit_source_gives_ten_bit_output(tmp_path):
    src = make_clip(tmp_path / "deep.mkv", frames=4, pix_fmt="yuv420p10le", audio=False)
    seen = []

    def translate(arrays):
        seen.extend(a.dtype for a in arrays)
        return translator().translate_arrays(arrays)

    convert_video(translate, src, tmp_path / "deep_out.mkv")
    got, _, info = decode(tmp_path / "deep_out.mkv", fmt="rgb48le")
    want = expected(translator(), decode(src, fmt="rgb48le")[0], 8)
    assert set(seen) == {np.dtype(np.uint16)} and info["pix_fmt"] == "yuv420p10le"
    assert np.median([psnr(g, w, 65535) for g, w in zip(got, want)]) >= 30


def test_odd_sizes_and_bad_options(tmp_path):
    src = make_clip(tmp_path / "odd.mkv", frames=3, size=(33, 21), pix_fmt="yuv444p", audio=False)
    convert_video(translator().translate_arrays, src, tmp_path / "odd_out.mkv")
    assert decode(tmp_path / "odd_out.mkv")[2]["pix_fmt"] == "yuv444p"  # 4:2:0 needs even sizes
    with pytest.raises(VideoError, match="even frame size.*33x21"):
        convert_video(translator().translate_arrays, src, tmp_path / "bad.mkv", options=VideoOptions(pix_fmt="yuv420p"))
    with pytest.raises(VideoError, match="'nosuchcodec'.*not an encoder"):
        convert_video(translator().translate_arrays, src, tmp_path / "bad.mkv",
                      options=VideoOptions(codec="nosuchcodec"))
    with pytest.raises(VideoError, match="--crf is not an option of codec 'ffv1'"):
        convert_video(translator().translate_arrays, src, tmp_path / "bad.mkv",
                      options=VideoOptions(codec="ffv1", crf=10))
    with pytest.raises(VideoError, match="--crf 60 is outside codec 'libx264'.s range 0-51"):
        convert_video(translator().translate_arrays, src, tmp_path / "bad.mkv", options=VideoOptions(crf=60))
    with pytest.raises(VideoError, match="libx264 encoder refused .*'preset': 'warp-speed'.*bad.mkv.*check --codec"):
        convert_video(translator().translate_arrays, src, tmp_path / "bad.mkv",
                      options=VideoOptions(preset="warp-speed"))
    assert not list(tmp_path.glob("bad*")) and not list(tmp_path.glob(".bad*"))  # nothing left behind


def test_mixed_folder_gif_corrupt_video_and_skip_existing(clip, tmp_path):
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    (inp / "sub" / "clip.mov").write_bytes(clip.read_bytes())  # another container, same content
    write_image(inp / "still.png", _picture(0, 40, 50))
    frames = [_picture(i, 30, 40) for i in range(5)]
    from PIL import Image

    Image.fromarray(frames[0]).save(inp / "anim.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]],
                                    duration=100)
    # index (moov) at the end: cut off
    (inp / "broken.mp4").write_bytes(clip.read_bytes()[: len(clip.read_bytes()) // 3])
    (inp / "noise.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    tr = translator()
    summary = convert_path(tr.translate_arrays, inp, tmp_path / "out", ConvertOptions(batch_size=4))
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in summary.converted) == ["anim.mp4", "still.png", "sub/clip.mov"]
    assert sorted(p.name for p, _ in summary.failed) == ["broken.mp4", "noise.mkv"]
    failed = (out / "failed.txt").read_text()
    assert "broken.mp4" in failed and "noise.mkv" in failed and "could not be opened as a video" in failed
    assert len(decode(out / "anim.mp4")[0]) == 5 and decode(out / "sub" / "clip.mov")[2]["audio"] == "aac"
    assert not [p for p in out.rglob(".*")]  # no temporary files left
    umask = os.umask(0)
    os.umask(umask)
    # as a plain open() makes them
    assert {oct(p.stat().st_mode & 0o777) for p in summary.converted} == {oct(0o666 & ~umask)}
    again = convert_path(tr.translate_arrays, inp, out, ConvertOptions(skip_existing=True))
    assert len(again.skipped) == 3 and not again.converted


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")])
def test_a_video_out_of_memory_is_listed_and_the_next_converts(clip, tmp_path, error):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a_big.mp4").write_bytes(clip.read_bytes())
    (inp / "b_small.mp4").write_bytes(clip.read_bytes())
    tr = translator()
    calls = []

    def translate(arrays):
        calls.append(len(arrays))
        if len(calls) == 1:  # the first video's first batch: as if its frames needed more memory than there is
            raise error
        return tr.translate_arrays(arrays)

    summary = convert_path(translate, inp, tmp_path / "out", ConvertOptions(batch_size=4))
    assert [p.name for p in summary.converted] == ["b_small.mp4"] and summary.frames == 10
    (src, why), = summary.failed
    assert src.name == "a_big.mp4" and "a_big.mp4" in why and "not enough memory" in why and "--tile 512" in why
    assert not (tmp_path / "out" / "a_big.mp4").exists() and not [p for p in (tmp_path / "out").rglob(".*")]


def test_frames_out_and_back_to_video(clip, tmp_path):
    tr = translator()
    stats = video_to_frames(tr.translate_arrays, clip, tmp_path / "frames" / "clip", batch_size=4)
    pngs = sorted((tmp_path / "frames" / "clip").glob("*.png"))
    assert stats.frames == 10 and [p.name for p in pngs[:2]] == ["000001.png", "000002.png"] and len(pngs) == 10
    for p, w in zip(pngs, expected(tr, decode(clip)[0], 4)):
        np.testing.assert_array_equal(read_image(p), w)  # PNG is lossless
    # frames named without zero padding come back in numeric order
    loose = tmp_path / "loose"
    loose.mkdir()
    for i, p in enumerate(pngs):
        (loose / f"f{i + 1}.png").write_bytes(p.read_bytes())
    ident = Translator(nn.Identity(), config_from_dict({}), direction="a_to_b", device="cpu")
    ident.net.in_channels = ident.net.out_channels = 3
    st = frames_to_video(ident.translate_arrays, list(loose.glob("*.png")), tmp_path / "back.mkv", fps=12.5,
                         options=VideoOptions(codec="ffv1"))
    got, _, info = decode(tmp_path / "back.mkv")
    assert st.frames == 10 and info["rate"] == Fraction(25, 2)
    for g, p in zip(got, pngs):
        np.testing.assert_array_equal(g, read_image(p))
    write_image(loose / "f11.png", _picture(0, 10, 10))
    with pytest.raises(VideoError, match="f11.png' is 10x10"):
        frames_to_video(ident.translate_arrays, list(loose.glob("*.png")), tmp_path / "bad.mp4", fps=25)
    assert not (tmp_path / "bad.mp4").exists()


def test_shards_split_videos(clip, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for k in range(3):
        (inp / f"v{k}.mp4").write_bytes(clip.read_bytes())
    tr = translator()
    parts = [convert_path(tr.translate_arrays, inp, tmp_path / "out", shard=(r, 2)) for r in range(2)]
    names = [sorted(p.name for p in part.converted) for part in parts]
    assert names == [["v0.mp4", "v2.mp4"], ["v1.mp4"]]


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    from test_video import translator
    from i2i.convert import ConvertOptions, convert_path
    tr = translator()
    def slow(arrays):
        time.sleep(0.3)
        return tr.translate_arrays(arrays)
    print("start", flush=True)
    convert_path(slow, {src!r}, {out!r}, ConvertOptions(batch_size=1))
""")


def test_a_kill_during_encoding_leaves_no_final_file(tmp_path):
    src = make_clip(tmp_path / "long.mp4", frames=40)
    out = tmp_path / "out"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), src=str(src), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.stat().st_size > 0 for p in out.glob(".long.mp4.*.tmp")):
        time.sleep(0.1)
    assert any(out.glob(".long.mp4.*.tmp")), "the conversion never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "long.mp4").exists()
    summary = convert_path(translator().translate_arrays, src, out, ConvertOptions(skip_existing=True))
    assert summary.converted == [out / "long.mp4"] and not list(out.glob(".*"))  # the leftover is removed
    assert len(decode(out / "long.mp4")[0]) == 40


def test_cli_converts_a_video(clip, tmp_path, capsys, trained):
    rc = main(["convert", trained, str(clip), str(tmp_path / "out"), "--quiet", "--crf", "23", "--preset", "veryfast"])
    printed = capsys.readouterr().out
    assert rc == 0 and "10 frames" in printed and "frames/s" in printed and "copied audio:aac" in printed
    assert len(decode(tmp_path / "out" / "clip.mp4")[0]) == 10
    rc = main(["convert", trained, str(clip), str(tmp_path / "frames"), "--quiet", "--frames-out"])
    assert rc == 0 and len(list((tmp_path / "frames" / "clip").glob("*.png"))) == 10
    rc = main(["convert", trained, str(tmp_path / "frames" / "clip"), str(tmp_path / "again"), "--quiet", "--to-video",
               "back.mp4"])
    assert rc == 2 and "--fps" in capsys.readouterr().err
    rc = main(["convert", trained, str(tmp_path / "frames" / "clip"), str(tmp_path / "again"), "--quiet", "--to-video",
               "back.mp4",
               "--fps", "24"])
    assert rc == 0 and len(decode(tmp_path / "again" / "back.mp4")[0]) == 10


def test_webm_keeps_its_container_codec_family_and_opus_sound(tmp_path):
    src = tmp_path / "clip.webm"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libvpx-vp9", rate=RATE)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("libopus", rate=48000)
        a.layout = "mono"
        mux_pictures(out, v, 6)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(12000) / 48000)).astype(np.float32)
        for k in range(0, 12000, 960):
            af = av.AudioFrame.from_ndarray(tone[None, k:k + 960], format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, k
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    summary = convert_path(translator().translate_arrays, src, tmp_path / "out")
    got, _, info = decode(tmp_path / "out" / "clip.webm")
    assert summary.converted == [tmp_path / "out" / "clip.webm"] and len(got) == 6
    assert (
        info["codec"] == "vp9" and info["audio"] == "opus" and info["audio_samples"] == decode(src)[2]["audio_samples"]
    )


def test_a_failing_sink_raises_instead_of_hanging():
    """The writer thread's error reaches the caller at every point: while frames come, and when
    the last item has already been handed over (a failing finish once deadlocked the two threads)."""
    import threading

    from i2i.convert.video.options import VideoStats
    from i2i.convert.video.stream import _translate_stream

    class Sink:
        def __init__(self, fail_in):
            self.fail_in = fail_in

        def frames(self, arrays, stamps):
            if self.fail_in == "frames":
                raise OSError("disk full")

        def packet(self, packet):
            pass

        def finish(self):
            if self.fail_in == "finish":
                raise OSError("disk full at the end")

        def abandon(self):
            pass

    items = [("frame", np.zeros((4, 4, 3), np.uint8), i, Fraction(1, 24)) for i in range(20)]
    for where in ("frames", "finish"):
        caught = []

        def run(where=where, caught=caught):
            try:
                _translate_stream(lambda a: a, iter(items), Sink(where), batch_size=2, stats=VideoStats(),
                                  progress=None)
            except OSError as e:
                caught.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(timeout=30)
        assert not t.is_alive(), f"hung on a failing {where}"
        assert caught and "disk full" in str(caught[0])


def test_a_translate_that_returns_its_input_list(tmp_path):
    """``translate`` may hand back the very list it was given (an identity): the batch it names is still written."""
    frames = []
    for i in range(3):
        write_image(tmp_path / f"{i}.png", _picture(i, 16, 16))
        frames.append(tmp_path / f"{i}.png")
    st = frames_to_video(lambda arrays: arrays, frames, tmp_path / "same.mkv", fps=10,
                         options=VideoOptions(codec="ffv1"))
    got = decode(tmp_path / "same.mkv")[0]
    assert st.frames == 3 and all(np.array_equal(g, _picture(i, 16, 16)) for i, g in enumerate(got))


def test_python_api_converts_videos_with_options(clip, tmp_path):
    import i2i

    tr = translator()
    summary = tr.convert_folder(clip, tmp_path / "out",
                                ConvertOptions(video=i2i.video.VideoOptions(codec="ffv1"), video_ext="mkv"))
    assert summary.converted == [tmp_path / "out" / "clip.mkv"] and decode(summary.converted[0])[2]["codec"] == "ffv1"
    with pytest.raises(ValueError, match="video_ext='flv' \\(--video-ext\\) is not a video container"):
        tr.convert_folder(clip, tmp_path / "out2", ConvertOptions(video_ext="flv"))


def test_subtitles_are_copied(tmp_path):
    """A Matroska clip with an SRT subtitle stream (taken from an .srt file, which FFmpeg reads as
    a container): the output holds the same subtitle packets at the same times."""
    (tmp_path / "s.srt").write_text("1\n00:00:00,000 --> 00:00:00,100\nline one\n\n2\n00:00:00,125 --> "
                                    "00:00:00,200\nline two\n")
    src = tmp_path / "sub.mkv"
    with av.open(str(tmp_path / "s.srt")) as srt, av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = out.add_stream_from_template(srt.streams.subtitles[0])
        mux_pictures(out, v, 6)
        for pk in srt.demux(srt.streams.subtitles[0]):
            if pk.dts is not None:
                pk.stream = s
                out.mux(pk)

    def subtitles(path):
        with av.open(str(path)) as c:
            return [(pk.pts * pk.time_base, bytes(pk)) for pk in c.demux(c.streams.subtitles[0]) if pk.pts is not None]

    stats = convert_video(translator().translate_arrays, src, tmp_path / "out.mkv")
    assert stats.copied_streams == ["subtitle:srt"] and stats.frames == 6
    assert subtitles(tmp_path / "out.mkv") == subtitles(src) == [(0, b"line one"), (Fraction(1, 8), b"line two")]


@pytest.mark.parametrize("ext,vcodec,vfmt,acodec,afmt,want_fmt", [
    (".avi", "mpeg4", "yuv420p", "pcm_s16le", "s16", "yuv420p"),            # an old camera's AVI with PCM sound
    (".mov", "prores_ks", "yuv422p10le", "pcm_s24le", "s32", "yuv420p10le"),  # an editor's 10-bit ProRes master
    (".mp4", "libx265", "yuv420p10le", "aac", "fltp", "yuv420p10le"),         # a phone's 10-bit HEVC
])
def test_other_sources_keep_their_container_sound_and_depth(tmp_path, ext, vcodec, vfmt, acodec, afmt, want_fmt):
    src = tmp_path / f"clip{ext}"
    rate = 48000
    with av.open(str(src), "w") as out:
        v = out.add_stream(vcodec, rate=25, options={"x265-params": "log-level=error"} if vcodec == "libx265" else {})
        v.width, v.height, v.pix_fmt = 64, 48, vfmt
        a = out.add_stream(acodec, rate=rate)
        a.layout = "stereo"
        mux_pictures(out, v, 5)
        tone = 0.2 * np.sin(np.arange(rate // 5) / 10)
        planar = afmt.endswith("p")
        if planar:
            samples = np.stack([tone, tone]).astype(np.float32)
        else:
            scale, dtype = (32767, np.int16) if afmt == "s16" else (2**30, np.int32)
            samples = (np.stack([tone, tone], 1).reshape(1, -1) * scale).astype(dtype)
        af = av.AudioFrame.from_ndarray(samples, format=afmt, layout="stereo")
        af.sample_rate, af.pts = rate, 0
        out.mux(a.encode(af))
        out.mux(a.encode(None))
    summary = convert_path(translator().translate_arrays, src, tmp_path / "out")
    _, _, s = decode(src)
    got, _, info = decode(tmp_path / "out" / src.name)
    assert not summary.failed and len(got) == 5 and info["codec"] == "h264" and info["pix_fmt"] == want_fmt
    assert info["audio"] == acodec and info["audio_samples"] == s["audio_samples"]
