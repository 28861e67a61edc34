import struct

import numpy as np
import pytest
import torch
from torch import nn

import i2i
from i2i.cli import main
from i2i.convert import ConvertOptions, plan_jobs, write_output
from i2i.data.io import read_image, write_image
from i2i.recipes import config_from_dict
from i2i.translator import Translator


class Identity(nn.Module):
    """A 'generator' that returns its input: conversions must then round-trip exactly."""

    in_channels = out_channels = 3

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))  # Translator moves parameters to the device

    def forward(self, x):
        return x + 0 * self.w


@pytest.fixture
def identity():
    return Translator(Identity(), config_from_dict({}), direction="a_to_b", device="cpu")


def _smooth(h, w):
    """A photo-like gradient (lossy codecs keep it within a few levels; noise they would not)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(h + w - 2, 1)],
                    -1).astype(np.uint8)


def _files(root, seed=0):
    rng = np.random.default_rng(seed)
    imgs = {
        "rgb8.png": rng.integers(0, 256, (17, 23, 3), dtype=np.uint8),
        "rgba8.png": rng.integers(0, 256, (9, 12, 4), dtype=np.uint8),
        "gray8.png": rng.integers(0, 256, (10, 11, 1), dtype=np.uint8),
        "rgb16.png": rng.integers(0, 65536, (8, 9, 3), dtype=np.uint16),
        "gray16.tif": rng.integers(0, 65536, (7, 5, 1), dtype=np.uint16),
        "sub/photo.jpg": _smooth(31, 29),
        "sub/deeper/pic.webp": _smooth(12, 16),
        "pic.bmp": rng.integers(0, 256, (6, 6, 3), dtype=np.uint8),
    }
    for rel, img in imgs.items():
        write_image(root / rel, img)
    return imgs


def test_formats_bit_depths_and_channels_round_trip(identity, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    imgs = _files(src)
    summary = identity.convert_folder(src, out, ConvertOptions(batch_size=4, workers=1))
    assert not summary.failed and len(summary.converted) == len(imgs)
    for rel, img in imgs.items():
        got = read_image(out / rel)
        if rel.endswith((".jpg", ".webp")):  # lossy formats: close, same size
            assert got.shape == img.shape and np.abs(got.astype(int) - read_image(src / rel).astype(int)).mean() < 3
        elif img.shape[2] == 1:  # gray in -> the 3-channel model's output
            assert got.shape == (*img.shape[:2], 3) and got.dtype == img.dtype
            assert all(np.array_equal(got[:, :, c], img[:, :, 0]) for c in range(3))
        else:
            assert got.dtype == img.dtype and np.array_equal(got, img), rel  # incl. 16-bit and alpha


def test_bit_depth_and_format_options(identity, tmp_path):
    src = tmp_path / "in"
    img16 = np.random.default_rng(1).integers(0, 65536, (8, 8, 3), dtype=np.uint16)
    write_image(src / "a.png", img16)
    identity.convert_folder(src, tmp_path / "o8", ConvertOptions(bit_depth="8", workers=0))
    assert read_image(tmp_path / "o8" / "a.png").dtype == np.uint8
    identity.convert_folder(src, tmp_path / "jpg", ConvertOptions(ext="jpg", workers=0))
    assert read_image(tmp_path / "jpg" / "a.jpg").dtype == np.uint8  # JPEG holds 8 bits
    with pytest.raises(ValueError, match="holds 8 bits"):
        write_output(tmp_path / "x.jpg", img16, bit_depth="16")
    write_image(src / "b.png", (img16 >> 8).astype(np.uint8))
    identity.convert_folder(src, tmp_path / "o16", ConvertOptions(bit_depth="16", workers=0, name="{stem}_16{ext}"))
    got = read_image(tmp_path / "o16" / "b_16.png")
    assert got.dtype == np.uint16 and np.array_equal(got, (img16 >> 8).astype(np.uint16) * 257)


def test_exif_orientation_is_applied_before_translation(identity, tmp_path):
    import cv2

    img = np.zeros((16, 32, 3), np.uint8)
    img[:8, :16] = 255
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6,
                                                                                  0) + b"\0\0\0\0"
    app1 = b"Exif\x00\x00" + tiff
    data = enc.tobytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "r.jpg").write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    identity.convert_folder(tmp_path / "in", tmp_path / "out", ConvertOptions(ext="png", workers=0))
    assert read_image(tmp_path / "out" / "r.png").shape == (32, 16, 3)  # rotated upright


def test_batched_equals_one_by_one_including_paper_mode(trained, tmp_path):
    src = tmp_path / "in"
    rng = np.random.default_rng(2)
    for i in range(5):
        write_image(src / f"{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    write_image(src / "odd.png", rng.integers(0, 256, (33, 21, 3), dtype=np.uint8))  # another size: its own batch
    tr = i2i.Translator.from_checkpoint(trained, device="cpu")
    tr.convert_folder(src, tmp_path / "b1", ConvertOptions(batch_size=1, workers=0))
    tr.convert_folder(src, tmp_path / "b4", ConvertOptions(batch_size=4, workers=2))
    for f in sorted((tmp_path / "b1").glob("*.png")):
        assert np.array_equal(read_image(f), read_image(tmp_path / "b4" / f.name)), f.name
    # Paper mode (batch statistics + dropout): per-image statistics, so batching changes nothing.
    cfg = config_from_dict({})
    torch.manual_seed(0)
    net = i2i.build_generator("unet", num_downs=6, base_channels=8, dropout=True)
    paper = Translator(net, cfg, direction="a_to_b", mode="paper", device="cpu", seed=3)
    arrays = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    together = paper.translate_arrays(arrays)
    alone = [paper.translate_arrays([a])[0] for a in arrays]
    assert all(np.array_equal(a, b) for a, b in zip(together, alone))


def test_skip_existing_resumes(identity, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _files(src)
    first = identity.convert_folder(src, out, ConvertOptions(workers=0))
    (out / "pic.bmp").unlink()
    marker = (out / "rgb8.png").stat().st_mtime_ns
    again = identity.convert_folder(src, out, ConvertOptions(workers=0, skip_existing=True))
    assert len(again.converted) == 1 and again.converted[0].name == "pic.bmp"
    assert len(again.skipped) == len(first.converted) - 1
    assert (out / "rgb8.png").stat().st_mtime_ns == marker  # untouched


def test_corrupt_files_are_listed_and_the_rest_converted(identity, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _files(src)
    good = bytearray((src / "rgb8.png").read_bytes())
    (src / "truncated.png").write_bytes(bytes(good[: len(good) // 2]))
    (src / "empty.jpg").write_bytes(b"")
    (src / "sub" / "text.jpg").write_text("not a jpeg")
    summary = identity.convert_folder(src, out, ConvertOptions(workers=2, batch_size=3))
    failed = {p.name for p, _ in summary.failed}
    assert {"empty.jpg", "text.jpg"} <= failed
    assert len(summary.converted) + len(summary.failed) == 11
    text = (out / "failed.txt").read_text()
    assert "empty.jpg" in text and "text.jpg" in text and "corrupt" in text


def test_no_writes_outside_output_and_no_temp_files(identity, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _files(src)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    identity.convert_folder(src, out, ConvertOptions(workers=1))
    after = set(tmp_path.rglob("*"))
    new = {p for p in after if p not in before}
    assert all(p == out or out in p.parents for p in new)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no leftover temp files


def test_plan_jobs_inputs_and_refusals(tmp_path):
    _files(tmp_path / "in")
    (tmp_path / "list.txt").write_text("# two files\nin/rgb8.png\n\nin/sub/photo.jpg\n")
    jobs = plan_jobs(tmp_path / "list.txt", tmp_path / "out", name="{stem}_x{ext}")
    assert [j.dst.relative_to(tmp_path / "out").as_posix() for j in jobs] == ["in/rgb8_x.png", "in/sub/photo_x.jpg"]
    assert [j.dst.name for j in plan_jobs(tmp_path / "in" / "pic.bmp", tmp_path / "o", ext="png")] == ["pic.png"]
    with pytest.raises(ValueError, match="inside the input folder"):
        plan_jobs(tmp_path / "in", tmp_path / "in" / "out")
    write_image(tmp_path / "in" / "rgb8.jpg", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="would both be written to"):
        plan_jobs(tmp_path / "in", tmp_path / "out", ext="png")
    with pytest.raises(ValueError, match="no image suffix"):
        plan_jobs(tmp_path / "in", tmp_path / "out", name="{stem}")
    (tmp_path / "bad.txt").write_text("notes.doc\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        plan_jobs(tmp_path / "bad.txt", tmp_path / "out")


def test_missing_files_in_a_list_are_reported(identity, tmp_path):
    _files(tmp_path / "in")
    (tmp_path / "list.txt").write_text("in/rgb8.png\nin/gone.png\n")
    summary = identity.convert_folder(tmp_path / "list.txt", tmp_path / "out", ConvertOptions(workers=0))
    assert len(summary.converted) == 1 and summary.failed[0][0].name == "gone.png"


def test_tiles_exact_for_finite_receptive_fields_and_blended_for_unet(trained):
    cfg = config_from_dict({})
    torch.manual_seed(0)
    res = i2i.build_generator("resnet", n_blocks=2, base_channels=8, norm="batch")  # eval BN: per-pixel, finite field
    whole = Translator(res, cfg, direction="a_to_b", device="cpu")
    tiled = Translator(res, cfg, direction="a_to_b", device="cpu", tile=24)
    assert tiled.tile_context is not None and tiled.tile_context % 4 == 0
    x = torch.rand(1, 3, 70, 90) * 2 - 1
    assert (whole(x) - tiled(x)).abs().max() < 1e-5
    unet_tiled = i2i.Translator.from_checkpoint(trained, device="cpu", tile=64)
    assert unet_tiled.tile_context is None  # every output pixel sees the whole image: blend
    assert unet_tiled(torch.rand(1, 1, 150, 160) * 2 - 1).shape == (1, 3, 150, 160)

    class GlobalMean(torch.nn.Module):
        """Every output pixel depends on the whole image, smoothly: x + mean(x)."""

        in_channels = out_channels = 1

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.w * x.mean((2, 3), keepdim=True)

    g = torch.linspace(-1, 1, 160)
    img = (g[None, :] * g[:, None])[None, None][:, :, :150, :]
    net_whole = Translator(GlobalMean(), cfg, direction="a_to_b", device="cpu")
    net_tiled = Translator(GlobalMean(), cfg, direction="a_to_b", device="cpu", tile=64)
    assert net_tiled.tile_context is None
    from i2i.tiling import exact_tiles

    whole, blended = net_whole(img), net_tiled(img)
    hard = exact_tiles(net_whole._run, img, 64, 0, scale=1, out_channels=1)  # tiles without overlap
    # The tile means differ from the image's, so any tiling errs; blending spreads the error
    # over the overlap (linear ramps) instead of a seam.
    err_blend, err_hard = blended - whole, hard - whole
    seam_blend = max((err_blend[..., 1:] - err_blend[..., :-1]).abs().max(),
                     (err_blend[..., 1:, :] - err_blend[..., :-1, :]).abs().max())
    seam_hard = max((err_hard[..., 1:] - err_hard[..., :-1]).abs().max(),
                    (err_hard[..., 1:, :] - err_hard[..., :-1, :]).abs().max())
    assert seam_hard > 0.05 and seam_blend < seam_hard / 8
    assert err_blend.abs().mean() <= err_hard.abs().mean()


def test_cli_convert_options(trained, tmp_path, capsys):
    _files(tmp_path / "in")
    code = main(["convert", trained, str(tmp_path / "in"), str(tmp_path / "out"), "--quiet", "--batch-size", "2",
                 "--workers", "1", "--name", "{stem}_fake{ext}", "--ext", "png"])
    assert code == 0
    assert (tmp_path / "out" / "sub" / "deeper" / "pic_fake.png").is_file()
    assert "converted 8, skipped 0" in capsys.readouterr().out
    assert main(["convert", trained, str(tmp_path / "in"), str(tmp_path / "out"), "--quiet", "--name",
                 "{stem}_fake{ext}",
                 "--ext", "png", "--skip-existing"]) == 0
    assert "converted 0, skipped 8" in capsys.readouterr().out
    assert main(["convert", trained, str(tmp_path / "in"), str(tmp_path / "o2"), "--precision", "fp16"]) == 2
    assert "fp16 needs a CUDA device" in capsys.readouterr().err




@pytest.mark.slow
def test_torchrun_splits_a_conversion_across_processes_byte_for_byte(trained, tmp_path):
    """2 gloo processes convert disjoint shares that together equal a one-process run exactly,
    with one merged failed.txt and --skip-existing still right."""
    import os
    import socket
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    for i in range(9):
        write_image(src / f"d{i % 3}" / f"{i}.png", rng.integers(0, 256, (24 + 8 * (i % 2), 32), dtype=np.uint8))
    for i in range(2):
        (src / f"bad{i}.png").write_bytes(b"not an image")
    (src / "notes.txt").write_text("x")
    # Batch 1 on both sides: batched convolutions may round a grey level differently (see translate_arrays).
    assert main(["convert", trained, str(src), str(tmp_path / "one"), "--quiet", "--workers", "0", "--batch-size",
                 "1"]) == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def torchrun(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
                               f"--master-port={port}",
                               "-m", "i2i", "convert", trained, str(src), str(tmp_path / "two"), "--quiet", "--workers",
                               "1",
                               "--batch-size", "1", *extra],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})

    r = torchrun()
    assert r.returncode != 0 and r.stdout.count("converted 9, skipped 0 (already there), "
                                                "ignored 1") == 1, r.stdout + r.stderr[-2000:]
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*.png")}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*.png")}
    assert len(one) == 9 and one == two
    assert sorted((tmp_path / "two" / "failed.txt").read_text().splitlines()) == sorted(
        (tmp_path / "one" / "failed.txt").read_text().splitlines())
    r = torchrun("--skip-existing")
    assert "converted 0, skipped 9 (already there)" in r.stdout, r.stdout
    # The same from Python: a script launched by torchrun calls Translator.convert_folder, and every
    # process gets the merged summary of the whole conversion.
    script = tmp_path / "convert_script.py"
    script.write_text("import os, i2i\nfrom i2i.convert import ConvertOptions\n"
                      f"tr = i2i.Translator.from_checkpoint({trained!r}, device='auto')\n"
                      f"s = tr.convert_folder({str(src)!r}, {str(tmp_path / 'three')!r}, ConvertOptions(workers=0, "
                      "batch_size=1))\n"
                      f"open(os.path.join({str(tmp_path)!r}, 'rank' + os.environ['RANK']), 'w')"
                      ".write(f'converted {len(s.converted)} failed {len(s.failed)}')\n")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", f"--master-port={port}",
                        str(script)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["converted 9 failed 2"] * 2
    three = {p.relative_to(tmp_path / "three"): p.read_bytes() for p in (tmp_path / "three").rglob("*.png")}
    assert (
        three == one
        and (tmp_path / "three" / "failed.txt").read_text() == (tmp_path / "two" / "failed.txt").read_text()
    )


def test_no_single_input_stops_or_hangs_a_conversion(identity, tmp_path):
    """A decompression bomb, a FIFO named like an image, odd but legal names (a backslash, 244
    characters, a newline), and an image the model has no memory for: each is converted or
    listed in failed.txt on one line with its reason, and the rest converts."""
    import os
    import zlib

    from i2i.convert import convert_path

    src = tmp_path / "in"
    good = {"plain.png": (16, 16), "back\\slash.png": (16, 16), ("x" * 240) + ".png": (16, 16),
            "new\nline.png": (16, 16),
            "huge.png": (24, 24)}
    for name, (h, w) in good.items():
        write_image(src / name, _smooth(h, w))
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    (src / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT",
                                                                                       zlib.compress(b"\0" * 1000))
                                   + chunk(b"IEND", b""))
    os.mkfifo(src / "fifo.png")
    (src / "broken\nname.png").write_bytes(b"not a png")

    def translate(arrays):
        if arrays[0].shape[0] == 24:  # as if this size needed more memory than there is
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you "
                               "tried to "
                               "allocate 68719476736 bytes")
        return identity.translate_arrays(arrays)

    out = tmp_path / "out"
    summary = convert_path(translate, src, out, ConvertOptions(workers=0, batch_size=2))
    converted = sorted(p.name for p in summary.converted)
    assert converted == sorted(n for n in good if n != "huge.png")
    for name in converted:
        assert np.array_equal(read_image(out / name), _smooth(16, 16))
    lines = (out / "failed.txt").read_text().splitlines()
    assert len(lines) == 4, lines  # bomb, broken, huge (memory), fifo (skipped): one line each
    text = "\n".join(lines)
    assert "bomb.png\t" in text and "20000x20000" in text
    assert "huge.png\t" in text and "--tile" in text
    assert "fifo.png\tskipped: not a regular file" in text
    assert "broken\\nname.png\t" in text  # the newline escaped
    assert not list(out.glob(".*.tmp"))
