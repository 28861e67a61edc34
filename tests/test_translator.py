import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import i2i
from i2i.cli import main
from i2i.data.io import read_image, write_image
from i2i.recipes import config_from_dict


def test_numpy_any_size_same_kind_out(trained):
    tr = i2i.Translator.from_checkpoint(trained, device="cpu")
    assert tr.size_multiple == 32 and tr.in_channels == 1 and tr.out_channels == 3
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = tr(rgb)
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    gray = tr(rgb[:, :, 0])  # HxW gray input
    assert gray.shape == (37, 53, 3)
    deep = tr(rgb.astype(np.uint16) * 257)
    assert deep.dtype == np.uint16 and deep.max() > 255
    rgba = np.dstack([rgb, np.full((37, 53), 77, np.uint8)])
    out4 = tr(rgba)
    assert out4.shape == (37, 53, 4) and (out4[:, :, 3] == 77).all()  # alpha carried through
    tiny = tr(rgb[:5, :7])  # smaller than the padding: edge replication
    assert tiny.shape == (5, 7, 3)


@pytest.mark.numerics
def test_padding_crops_back_to_what_the_net_computes_on_the_valid_area(trained):
    import torch.nn.functional as F

    tr = i2i.Translator.from_checkpoint(trained, device="cpu")
    assert tr.size_multiple == 32
    x = torch.rand(1, 1, 40, 52) * 2 - 1  # not a multiple of 32: padded to 64 x 64
    with torch.no_grad():
        expected = tr.net(F.pad(x, (0, 12, 0, 24), mode="reflect"))[:, :, :40, :52]
    got = tr(x)
    assert got.shape == (1, 3, 40, 52)
    assert torch.allclose(got, expected, atol=1e-6)
    tiny = torch.rand(1, 1, 5, 7) * 2 - 1  # smaller than the padding: edge replication
    with torch.no_grad():
        assert torch.allclose(tr(tiny), tr.net(F.pad(tiny, (0, 25, 0, 27), mode="replicate"))[:, :, :5, :7], atol=1e-6)


def test_pil_and_tensor_in_same_kind_out(trained):
    tr = i2i.Translator.from_checkpoint(trained, device="cpu")
    pil = Image.fromarray(np.zeros((20, 30, 3), np.uint8))
    out = tr(pil)
    assert isinstance(out, Image.Image) and out.size == (30, 20) and out.mode == "RGB"
    t3 = tr(torch.zeros(1, 20, 30))
    assert t3.shape == (3, 20, 30)
    t4 = tr(torch.zeros(2, 1, 20, 30))
    assert t4.shape == (2, 3, 20, 30) and t4.abs().max() <= 1
    with pytest.raises(TypeError, match="numpy array, a PIL image or a torch tensor"):
        tr([1, 2, 3])
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        tr.translate_tensor(torch.zeros(1, 3, 8, 8))


def test_paper_and_eval_modes():
    # 6 levels: one dropout block (the 5-level test net has none).
    cfg = config_from_dict({})
    torch.manual_seed(0)
    net = i2i.build_generator("unet", num_downs=6, base_channels=8, in_channels=1, dropout=True)
    ev = i2i.Translator(net, cfg, direction="a_to_b", mode="eval", device="cpu")
    paper = i2i.Translator(copy.deepcopy(net), cfg, direction="a_to_b", mode="paper", device="cpu", seed=1)
    other = i2i.Translator(copy.deepcopy(net), cfg, direction="a_to_b", mode="paper", device="cpu", seed=2)
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    assert torch.equal(ev(x), ev(x))
    assert torch.equal(paper(x), paper(x))  # dropout masks reproducible from the seed
    assert not torch.allclose(paper(x), other(x))
    assert not torch.allclose(paper(x), ev(x))
    before = {k: v.clone() for k, v in paper.net.state_dict().items()}
    paper(x * 3)
    assert all(torch.equal(v, before[k]) for k, v in paper.net.state_dict().items())


def test_export_carries_config_and_matches_checkpoint(trained, tmp_path):
    out = i2i.export_generator(trained, tmp_path / "g.pt")
    data = torch.load(out, weights_only=True)
    assert data["kind"] == "export" and list(data["nets"]) == ["G"] and data["config"]["pipeline"] == "pix2pix"
    a = i2i.Translator.from_checkpoint(trained, device="cpu")
    b = i2i.Translator.from_checkpoint(out, device="cpu")
    x = torch.rand(1, 1, 40, 40) * 2 - 1
    assert torch.equal(a(x), b(x))
    with pytest.raises(i2i.CheckpointError, match="not a training checkpoint"):
        cfg = config_from_dict(data["config"])
        i2i.train(cfg, resume=str(out))


def test_foreign_and_corrupt_checkpoints(tmp_path):
    torch.save({"model.0.weight": torch.zeros(1)}, tmp_path / "bare.pth")
    with pytest.raises(i2i.CheckpointError, match="bare.pth.*not an i2i checkpoint"):
        i2i.Translator.from_checkpoint(tmp_path / "bare.pth")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(i2i.CheckpointError, match="cut.pt.*cannot be read"):
        i2i.Translator.from_checkpoint(tmp_path / "cut.pt")


def test_convert_folder_mirrors_tree_and_reports_bad_files(trained, tmp_path):
    src = tmp_path / "in"
    rng = np.random.default_rng(0)
    write_image(src / "a.png", rng.integers(0, 256, (33, 47, 3), dtype=np.uint8))
    write_image(src / "sub" / "b.jpg", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    write_image(src / "deep.png", (rng.integers(0, 65536, (16, 16, 1))).astype(np.uint16))
    (src / "sub" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    code = main(["convert", str(trained), str(src), str(out), "--quiet"])
    assert code == 1  # something failed
    assert read_image(out / "a.png").shape == (33, 47, 3)
    assert read_image(out / "sub" / "b.jpg").shape == (20, 20, 3)
    assert read_image(out / "deep.png").dtype == np.uint16  # 16-bit in, 16-bit out
    failed = (out / "failed.txt").read_text()
    assert "broken.png" in failed and "corrupt" in failed
    assert not (out / "sub" / "broken.png").exists()
    # input untouched
    assert sorted(p.name for p in src.rglob("*")) == ["a.png", "b.jpg", "broken.png", "deep.png", "sub"]


def test_convert_refuses_to_overwrite_inputs_and_missing_input(trained, tmp_path, capsys):
    write_image(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
    before = (tmp_path / "x.png").read_bytes()
    assert main(["convert", str(trained), str(tmp_path), str(tmp_path), "--quiet"]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert main(["convert", str(trained), str(tmp_path), str(tmp_path), "--quiet", "--allow-inside-input"]) == 2
    assert "would overwrite an input" in capsys.readouterr().err
    assert (tmp_path / "x.png").read_bytes() == before
    assert main(["convert", str(trained), str(tmp_path / "nope"), str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_errors_name_the_problem(tmp_path, capsys, gray2color):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  generater: {}\n")
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "model.generater" in err and "did you mean 'generator'" in err
    cfg.write_text(f"data: {{root: {tmp_path / 'missing'}}}\ntrain: {{steps: 1, epochs: null}}\n")
    assert main(["train", str(cfg), "--set", f"output_dir={tmp_path / 'runs'}"]) == 2
    assert "missing' does not exist" in capsys.readouterr().err


def test_eval_writes_page_with_baselines(trained, tmp_path, gray2color, capsys):
    assert main(["eval", str(trained), "--data", str(gray2color / "test"), "--out", str(tmp_path / "res"), "--limit",
                 "3"]) == 0
    printed = capsys.readouterr().out
    assert "trained" in printed and "untrained" in printed and "identity" in printed and "SSIM" in printed
    page = (tmp_path / "res" / "index.html").read_text()
    assert page.count("<img") == 3 * 4 and "<polyline" in page  # 4 images per row, training curves
    assert "gray input repeated to RGB" in page and "dB over identity" in page and "<b>" in page
    assert (tmp_path / "res" / "metrics.json").is_file()


def test_eval_scores_images_at_their_own_size_and_shows_what_convert_writes(trained, tmp_path, gray2color):
    """Held-out images of another size than the training crops: no resize or crop before scoring,
    and the page's outputs are convert's files."""
    from i2i.evaluate import evaluate_paired

    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 24), (29, 50)]):  # not multiples of the U-Net's 32: padded and cropped back
        b = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        i2i.write_image(tmp_path / "pairs" / "B" / f"p{i}.png", b)
        i2i.write_image(tmp_path / "pairs" / "A" / f"p{i}.png", b.mean(2, keepdims=True).astype(np.uint8))
    result = evaluate_paired(trained, tmp_path / "pairs", tmp_path / "res")
    assert [r["size"] for r in result["per_image"]] == ["24x40", "50x29"]
    assert main(["convert", str(trained), str(tmp_path / "pairs" / "A"), str(tmp_path / "conv"), "--quiet",
                 "--batch-size", "1"]) == 0
    for i in range(2):
        page_img = i2i.read_image(tmp_path / "res" / "images" / f"p{i}_output.png")
        assert np.array_equal(page_img, i2i.read_image(tmp_path / "conv" / f"p{i}.png"))
    # The scores are of exactly those pixels (up to the 8-bit rounding of the written file).
    tr = i2i.Translator.from_checkpoint(trained)
    target = i2i.read_image(tmp_path / "pairs" / "B" / "p0.png")
    out = tr(i2i.read_image(tmp_path / "pairs" / "A" / "p0.png")).astype(np.float64)
    psnr = 10 * np.log10(1 / np.mean((out / 255 - target / 255) ** 2))
    assert result["per_image"][0]["PSNR_trained"] == pytest.approx(psnr, abs=0.05)


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "i2i", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("train", "convert", "export", "eval"):
        assert cmd in r.stdout


def test_untrained_baseline_follows_the_requested_mode(trained):
    cfg = i2i.Translator.from_checkpoint(trained, device="cpu").cfg
    base = i2i.Translator.untrained(cfg, mode="paper", device="cpu")
    bns = [m for m in base.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert base.mode == "paper" and bns and all(m.training and not m.track_running_stats for m in bns)
