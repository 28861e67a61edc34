"""Reliability, round four: the cases an attacker's pass broke (issue 41), each reproduced. Small
files that would exhaust memory, a second run deleting a first one's work, crafted metadata,
silent wrong output, writes through symbolic links, and the smaller refusals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import i2i
from i2i import files
from i2i.checkpoint import CheckpointError, save_checkpoint
from i2i.cli import main
from i2i.config import ConfigError
from i2i.convert import ConvertOptions, convert_path
from i2i.convert.summary import ConvertSummary, write_failures
from i2i.data.io import ImageReadError, read_image, write_image
from i2i.recipes import config_from_dict

ROOT = Path(__file__).resolve().parent.parent


def _identity(arrays):
    return [a.copy() for a in arrays]


# ----------------------------------------------------------------------------- 1. small files, big memory
def _jpeg(width: int = 16, height: int = 16) -> bytes:
    ok, enc = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))
    return enc.tobytes()


def _patched_sof(data: bytes, height: int, width: int, marker: int | None = None) -> bytes:
    i = data.index(b"\xff\xc0")
    out = bytearray(data)
    out[i + 5 : i + 7], out[i + 7 : i + 9] = height.to_bytes(2, "big"), width.to_bytes(2, "big")
    if marker is not None:
        out[i + 1] = marker
    return bytes(out)


@pytest.mark.parametrize("marker", [0xC0, 0xC2, 0xC9])  # baseline, progressive, arithmetic: every SOFn counts
def test_a_jpeg_whose_frame_declares_30000_squared_is_refused_from_its_header_fill_bytes_or_not(tmp_path, marker):
    small = _patched_sof(_jpeg(), 30000, 30000, marker)
    for name, data in (("plain.jpg", small), ("fill.jpg", small[:2] + b"\xff" + small[2:])):  # one legal fill byte
        path = tmp_path / name
        path.write_bytes(data)
        assert path.stat().st_size < 1000
        t = time.perf_counter()
        with pytest.raises(ImageReadError, match=rf"'{path}' is 30000x30000 pixels, over the .*-pixel limit"):
            read_image(path)
        assert time.perf_counter() - t < 1.0  # refused from the header, not decoded


def test_an_image_whose_header_does_not_say_its_size_is_not_decoded(tmp_path):
    no_height = _patched_sof(_jpeg(), 0, 16)  # height 0: left to a DNL segment
    broken = _jpeg()[:4]  # the segments break off before any frame
    for name, data in (("dnl.jpg", no_height), ("cut.jpg", broken)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError, match=rf"'{tmp_path / name}' is corrupt .* not say its size in its header"):
            read_image(tmp_path / name)


def test_formats_are_decided_by_content_not_by_the_name(tmp_path):
    """A Radiance HDR named x.png would be decoded by OpenCV as float32 (20000² is 4.8 GB): it is
    refused for what it is; a JPEG named .png is read as the JPEG it is."""
    ok, hdr = cv2.imencode(".hdr", np.ones((8, 8, 3), np.float32))
    assert ok
    (tmp_path / "x.png").write_bytes(hdr.tobytes())
    with pytest.raises(ImageReadError,
                       match=r"'.*x.png' is a Radiance HDR image; i2i reads PNG, JPEG, BMP, TIFF, WebP and DICOM"):
        read_image(tmp_path / "x.png")
    (tmp_path / "y.png").write_bytes(_jpeg(12, 10))
    assert read_image(tmp_path / "y.png").shape == (10, 12, 3)
    (tmp_path / "z.bmp").write_bytes(b"BM" + bytes(60))  # a BMP header that says no size
    with pytest.raises(ImageReadError, match="does not say its size"):
        read_image(tmp_path / "z.bmp")


def test_a_png_header_bomb_in_the_training_data_is_refused_by_name_under_the_default_cache(tmp_path, gray2color,
                                                                                           make_config):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(gray2color / "train", data / "train")
    shutil.copytree(gray2color / "test", data / "test")
    bomb = bytearray(Path(next((data / "train" / "A").glob("*.png"))).read_bytes())
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR: 100000 x 100000
    (data / "train" / "A" / "bomb.png").write_bytes(bytes(bomb))
    (data / "train" / "B" / "bomb.png").write_bytes(bytes(bomb))
    cfg = make_config(tmp_path, data, train={"steps": 1})
    assert cfg.data.cache == "auto"
    with pytest.raises((ImageReadError, i2i.DataError), match=r"bomb.png' is 100000x100000 pixels"):
        i2i.train(cfg)


def _zero_storage_state(n_blocks: int, width: int) -> dict[str, torch.Tensor]:
    """A BasicSR RRDBNet state dict whose tensors have the shapes of a large net but views over a
    one-element storage (stride 0): a file of a few kilobytes that declares gigabytes."""
    from i2i.nets.rrdbnet import RRDBNet

    with torch.device("meta"):
        shapes = {k: v.shape for k,
                  v in RRDBNet(n_blocks=n_blocks, base_channels=width, growth=width).state_dict().items()}
    return {k: torch.zeros(1).expand(s) for k, s in shapes.items()}


def test_a_small_weights_file_declaring_a_huge_net_is_refused_before_it_is_built(tmp_path, monkeypatch, capsys):
    path = tmp_path / "huge.pth"
    torch.save(_zero_storage_state(4, 64), path)
    assert path.stat().st_size < 100_000
    assert main(["import-weights", str(path), "-o", str(tmp_path / "out.pt")]) == 2
    assert "without its values (a view over a smaller storage)" in capsys.readouterr().err
    # real values, but more than half the memory available: refused from the meta-device size, nothing allocated
    from i2i.nets.rrdbnet import RRDBNet

    torch.save({k: torch.randn_like(v) * 0.01 for k,
                v in RRDBNet(n_blocks=2, base_channels=8, growth=4).state_dict().items()},
               path)
    import i2i.checkpoint as ck
    import i2i.compat.esrgan as esrgan
    from i2i.nets.registry import build_generator

    monkeypatch.setattr(ck, "available_bytes", lambda device: 1000)
    built = []
    monkeypatch.setattr(esrgan, "build_generator", lambda *a, **k: built.append(torch.get_default_device())
                        or build_generator(*a, **k))
    assert main(["import-weights", str(path), "-o", str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert "GiB of weights, more than half of the" in err and "nothing was built" in err, err
    assert built and all(d.type == "meta" for d in built) and not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("value", [[0.15, 1000], [0.0, 1.5]])
def test_degradation_ranges_have_real_bounds(tmp_path, value):
    with pytest.raises(ConfigError, match=r"data.realesrgan.resize_range\[[01]\]' is .*; allowed: \[0.05, 4\]"):
        config_from_dict({"pipeline": "srgan", "data": {"root": str(tmp_path), "degradation": "realesrgan",
                                                        "realesrgan": {"resize_range": value}},
                          "model": {"generator": {"name": "rrdbnet"}}})


def test_the_memory_estimate_counts_the_degradations_images(tmp_path, make_config, sr_data, monkeypatch):
    import i2i.engine.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 16 * 2**30)
    cfg = make_config(tmp_path, sr_data, pipeline="srgan",
                      model={"generator": {"name": "srvgg", "scale": 4, "n_convs": 1, "base_channels": 4}},
                      data={"crop_size": 64, "batch_size": 16384, "degradation": "realesrgan",
                            "realesrgan": {"resize_range": [0.15, 4.0]}})
    with pytest.raises(ConfigError, match=r"for the degradation's images \(up to data.realesrgan resize factor 4\)"):
        i2i.Trainer(cfg)


# ----------------------------------------------------------------------------- 2. two runs, one folder
def test_a_second_conversion_leaves_a_live_runs_temporary_files_and_removes_leftovers(tmp_path):
    src = tmp_path / "in"
    write_image(src / "x.png", np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / "out"
    with files.held_temp(out / "x.png") as live:  # another process's video or image in progress
        dead = files.temp_file(out / "x.png")  # a killed run's leftover: nobody holds it
        convert_path(_identity, src, out, ConvertOptions(workers=0))
        assert live.exists() and not dead.exists()
        assert (out / "x.png").is_file()
    assert files.remove_leftover(live) and not live.exists()


def test_failed_txt_keeps_the_lines_of_inputs_another_run_took_on(tmp_path):
    out = tmp_path / "out"
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    write_failures(ConvertSummary(failed=[(a, "broken")], planned=[a]), out / "failed.txt")
    write_failures(ConvertSummary(planned=[b]), out / "failed.txt")  # another run over other inputs: nothing failed
    assert (out / "failed.txt").read_text() == f"{a}\tbroken\n"
    write_failures(ConvertSummary(failed=[(b, "also\tbroken")], planned=[b]), out / "failed.txt")
    assert (out / "failed.txt").read_text().splitlines() == [f"{a}\tbroken", f"{b}\talso\\tbroken"]
    write_failures(ConvertSummary(planned=[a, b]), out / "failed.txt")  # both converted now
    assert not (out / "failed.txt").exists()


# ----------------------------------------------------------------------------- 3. crafted metadata
@pytest.mark.parametrize("case", ["format_version str", "format_version list", "format_version none", "version 0",
                                  "version -1", "nested 600"])
def test_crafted_fields_with_a_valid_checksum_are_refused_by_name(trained, tmp_path, case, capsys):
    data = torch.load(trained, weights_only=True)
    payload = {k: v for k, v in data.items() if k not in ("format", "format_version", "i2i_version", "checksum")}
    path = tmp_path / "crafted.pt"
    if case.startswith("format_version"):
        save_checkpoint(path, payload)
        raw = torch.load(path, weights_only=True)
        raw["format_version"] = {"str": "2", "list": [1], "none": None}[case.split()[1]]
        raw.pop("checksum")
        from i2i.checkpoint import checksum

        raw["checksum"] = checksum(raw)
        torch.save(raw, path)
        needle = "'format_version' is"
    elif case.startswith("version"):
        payload["config"] = {**payload["config"], "version": int(case.split()[1])}
        save_checkpoint(path, payload)
        needle = "the config's version is"
    else:
        deep: dict = {}
        node = deep
        for _ in range(600):
            node["x"] = {}
            node = node["x"]
        payload["config"] = {**payload["config"], "deep": deep}
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(10_000)  # pickling 600 levels needs it; loading must not
        try:
            torch.save({"format": "i2i-checkpoint", "format_version": 2, **payload}, path)
        finally:
            sys.setrecursionlimit(limit)
        needle = "nested more than 32 deep"
    for argv in (["info", str(path)], ["export", str(path), "-o", str(tmp_path / "e.pt")],
                 ["convert", str(path), str(tmp_path / "in"), str(tmp_path / "o")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and str(path) in err and "Traceback" not in err, err


@pytest.mark.parametrize("case", ["rng missing", "epoch missing", "rng 3 bytes", "rng a string", "optimizers a list"])
def test_a_training_checkpoint_missing_or_mangling_what_resume_reads_is_refused_by_key(trained, tmp_path, case, capsys,
                                                                                      gray2color, make_config):
    data = torch.load(trained, weights_only=True)
    payload = {k: v for k, v in data.items() if k not in ("format", "format_version", "i2i_version", "checksum")}
    key = case.split()[0]
    if case.endswith("missing"):
        payload.pop(key)
    elif case == "rng 3 bytes":
        payload["rng"] = {**payload["rng"], "torch": torch.zeros(3, dtype=torch.uint8)}
    elif case == "rng a string":
        payload["rng"] = "not a state"
    else:
        payload["optimizers"] = [1, 2]
    path = tmp_path / "crafted.pt"
    save_checkpoint(path, payload)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"'{key}" in err and str(path) in err and "Traceback" not in err, err
    cfg = make_config(tmp_path / "run", gray2color)
    with pytest.raises(CheckpointError, match=rf"'{key}"):
        i2i.train(cfg, resume=str(path))


def test_a_model_folder_description_nested_100000_deep_is_refused(trained, tmp_path, capsys):
    assert main(["export", trained, "-o", str(tmp_path / "m"), "--safetensors"]) == 0
    (tmp_path / "m" / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "nested too deeply" in err and "Traceback" not in err


def test_onnx_files_that_are_empty_or_carry_a_damaged_config_are_refused(trained, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert main(["info", str(tmp_path / "empty.onnx")]) == 2
    assert "holds no ONNX graph" in capsys.readouterr().err
    assert main(["export", trained, "-o", str(tmp_path / "g.onnx"), "--onnx"]) == 0
    capsys.readouterr()
    for bad, needle in (("{not json", "is not valid JSON"), ("[" * 100_000 + "]" * 100_000, "nested too deeply")):
        model = onnx.load(str(tmp_path / "g.onnx"))
        for p in model.metadata_props:
            if p.key == "i2i_config":
                p.value = bad
        onnx.save(model, str(tmp_path / "bad.onnx"))
        assert main(["info", str(tmp_path / "bad.onnx")]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / "bad.onnx") in err and "'i2i_config'" in err and needle in err, err


# ----------------------------------------------------------------------------- 4. silent wrong output
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_once(tmp_path, orientation):
    a = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[274] = orientation
    Image.fromarray(a).save(tmp_path / "o.tif", exif=exif)
    want = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.tif")))
    assert np.array_equal(read_image(tmp_path / "o.tif"), want)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float8_e4m3fn, torch.complex64, "nan"])
def test_import_weights_refuses_what_convert_refuses(tmp_path, dtype, capsys):
    from i2i.nets.rrdbnet import RRDBNet

    sd = {k: v.clone() for k, v in RRDBNet(n_blocks=1, base_channels=8, growth=4).state_dict().items()}
    if dtype == "nan":
        sd["conv_first.weight"][0, 0, 0, 0] = float("nan")
        needle = "NaN or infinite values"
    else:
        sd["conv_first.weight"] = sd["conv_first.weight"].to(dtype)
        needle = f"'conv_first.weight' as {dtype}"
    torch.save(sd, tmp_path / "w.pth")
    assert main(["import-weights", str(tmp_path / "w.pth"), "-o", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(tmp_path / "w.pth") in err and not (tmp_path / "w.pt").exists(), err


def test_a_video_whose_frame_size_changes_mid_stream_is_refused_by_name(tmp_path):
    from fractions import Fraction

    from i2i.convert.video.options import Timing, VideoOptions, VideoStats
    from i2i.convert.video.sinks import VideoSink

    sink = VideoSink(tmp_path / "t.mkv", tmp_path / "out.mkv", tmp_path / "src.mkv",
                     Timing(Fraction(25), Fraction(1, 25)), [],
                     VideoOptions(codec="ffv1"), VideoStats())
    sink.frames([np.zeros((16, 24, 3), np.uint8)], [(0, Fraction(1, 25))])
    with pytest.raises(ValueError,
                       match=r"src.mkv' changes its frame size mid-stream \(from 24x16 to 32x16 at frame 2\)"):
        sink.frames([np.zeros((16, 32, 3), np.uint8)], [(1, Fraction(1, 25))])
    sink.abandon()


# ----------------------------------------------------------------------------- 5. links
def test_a_symlinked_run_lock_is_never_written_through(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, train={"steps": 1})
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / ".lock").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"\.lock' \(the run's lock\) cannot be opened .*symbolic link"):
        i2i.train(cfg)
    assert outside.read_text() == "keep me"
    (cfg.run_dir / ".lock").unlink()
    os.mkfifo(cfg.run_dir / ".lock")
    with pytest.raises(ConfigError, match=r"\.lock' \(the run's lock\) is not a regular file"):
        i2i.train(cfg)


def test_a_symlinked_partial_download_is_never_written_through(tmp_path):
    from i2i import download

    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.pth.part").symlink_to(outside)
    with pytest.raises(download.DownloadError, match=r"model.pth.part' .* is a symbolic link"):
        download.fetch("http://127.0.0.1:9/model.pth", tmp_path / "out" / "model.pth")
    assert outside.read_bytes() == b"keep me"


# ----------------------------------------------------------------------------- 6. smaller
@pytest.mark.parametrize("argv, needle", [
    (["--to-video", "v.mp4", "--fps", "inf"], "--fps: inf must be [0.01, 1000]"),
    (["--to-video", "v.mp4", "--fps", "1e-300"], "--fps: 1e-300 must be [0.01, 1000]"),
    (["--to-video", "v.mp4", "--fps", "1e300"], "--fps: 1e300 must be [0.01, 1000]"),
    (["--tile", "1"], "--tile: 1 must be 8 or more"),
])
def test_bad_numbers_are_refused_by_option(trained, tmp_path, argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert", trained, str(tmp_path), str(tmp_path / "o"), *argv])
    assert e.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--crf", "52"], "--crf 52 is outside codec 'libx264''s range 0-51"),
    (["--codec", "bogus"], "codec 'bogus' (--codec) is not an encoder"),
    (["--preset", "bogus"], "the libx264 encoder refuses these options"),
    (["--pix-fmt", "rgb24"], "cannot encode pixel format 'rgb24' (--pix-fmt)"),
    (["--preset", ""], "preset='' (--preset) is empty"),
])
def test_wrong_encoder_options_are_refused_once_up_front_even_without_a_video(trained, gray2color, tmp_path, argv,
                                                                              needle,
                                                                             capsys):
    out = tmp_path / "o"
    assert main(["convert", trained, str(gray2color / "test" / "A"), str(out), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert not out.exists() or not any(out.iterdir())  # nothing converted


def test_config_values_name_their_key(tmp_path, gray2color, make_config):
    with pytest.raises(ConfigError,
                       match=r"'model.generator.in_channels' is 2; images have 1 \(gray\), 3 \(RGB\) or 4"):
        make_config(tmp_path, gray2color, model={"generator": {"name": "unet", "num_downs": 5, "in_channels": 2}})
    with pytest.raises(ConfigError, match=r"config key 'seed' is a \d+-digit integer; allowed"):
        config_from_dict({"seed": int("f" * 5000, 16)})


def test_an_empty_dataset_archive_is_not_downloaded_as_an_empty_folder(tmp_path):
    from i2i import download

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("facades")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    (tmp_path / "facades.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(download.DownloadError, match="holds no files"):
        download.unpack(tmp_path / "facades.tar.gz", tmp_path / "facades")
    assert not (tmp_path / "facades").exists()


def test_frames_out_into_an_existing_frame_folder_replaces_it_whole(tmp_path):
    import av

    from i2i.convert.video import video_to_frames

    clip = tmp_path / "c.mkv"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("ffv1", rate=5)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 40 * i, np.uint8), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    (tmp_path / "frames" / "c").mkdir(parents=True)
    (tmp_path / "frames" / "c" / "old.png").write_bytes(b"stale")
    video_to_frames(_identity, clip, tmp_path / "frames" / "c")
    assert sorted(p.name for p in (tmp_path / "frames" / "c").iterdir()) == ["000001.png", "000002.png", "000003.png"]
    assert not list((tmp_path / "frames").glob(".*"))  # the old folder and the temporary one are gone


def test_import_weights_into_an_existing_folder_says_so(tmp_path, capsys):
    from i2i.nets.rrdbnet import RRDBNet

    torch.save(RRDBNet(n_blocks=1, base_channels=8, growth=4).state_dict(), tmp_path / "w.pth")
    (tmp_path / "out").mkdir()
    assert main(["import-weights", str(tmp_path / "w.pth"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"'{tmp_path / 'out'}' is a folder; name a file to write" in err and ".tmp" not in err, err


@pytest.mark.slow
def test_sigterm_to_convert_says_what_happened_and_leaves_no_half_file(trained, tmp_path):
    src = tmp_path / "in"
    for i in range(30):
        write_image(src / f"{i:02d}.png", np.zeros((16, 16, 3), np.uint8))
    script = textwrap.dedent(f"""
        import sys, time
        import i2i.convert.images as images
        real = images.write_output
        def slow(*a, **k):
            time.sleep(0.2)
            return real(*a, **k)
        images.write_output = slow
        from i2i.cli import main
        print("ready", flush=True)
        sys.exit(main(["convert", {trained!r}, {str(src)!r}, {str(tmp_path / 'out')!r}, "--quiet", "--workers", "0",
                       "--batch-size", "1"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "out").glob("*.png")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "--skip-existing" in err, err
    assert not list((tmp_path / "out").glob(".*.tmp"))
    assert all(read_image(p).shape == (16, 16, 3) for p in (tmp_path / "out").glob("*.png"))
