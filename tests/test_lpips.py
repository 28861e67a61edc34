"""LPIPS: equal to the authors' ``lpips`` package on the same (random) weights, read from local
files only (torchvision's backbone file, the authors' heads), with clear errors otherwise; in
``i2i eval`` (to the target and to the input), on the results page and in validation."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch
from test_sr import sr_config

import i2i
from i2i.checkpoint import CheckpointError
from i2i.cli import main
from i2i.config import ConfigError
from i2i.evaluate.lpips import BACKBONES, HEADS, LPIPS


def _reference(backbone: str):
    lpips = pytest.importorskip("lpips")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation of `pretrained`, used by the package
        return lpips.LPIPS(net=backbone, pretrained=False, pnet_rand=True, verbose=False).eval()


def _weights_of(ref) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The package net's backbone as torchvision names it, and random heads as the authors' file names them."""
    trunk = {f"features.{k.split('.')[1]}.{k.split('.')[2]}": v for k, v in ref.net.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    heads = {k: torch.rand(v.shape, generator=g) for k, v in ref.state_dict().items() if re.match(r"lin\d", k)}
    ref.load_state_dict(heads, strict=False)
    return trunk, heads


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_lpips_equals_the_authors_package_on_the_same_weights(backbone):
    torch.manual_seed(0)
    ref = _reference(backbone)
    trunk, heads = _weights_of(ref)
    ours = LPIPS(backbone, weights=False)
    ours.load_backbone(trunk)
    ours.load_heads(heads)
    x, y = torch.rand(3, 3, 64, 48) * 2 - 1, torch.rand(3, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        want = ref(x, y).flatten()
    got = ours(x, y)
    assert got.shape == (3,) and torch.allclose(got, want, rtol=1e-5, atol=1e-6), (got, want)
    assert torch.allclose(ours(x, x), torch.zeros(3))
    small = ours(x[:, :1, :20, :24], y[:, :1, :20, :24])  # gray and under 32 px: repeated, enlarged
    assert small.shape == (3,) and torch.isfinite(small).all()


def _install(hub: Path, backbone: str, trunk: dict, heads: dict) -> None:
    folder = hub / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({**trunk, "classifier.1.weight": torch.zeros(2, 2)}, folder / BACKBONES[backbone][0])
    torch.save(heads, folder / HEADS[backbone][0])


def test_lpips_reads_local_files_only_and_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="i2i download weights lpips-alex"):
        LPIPS("alex")
    ref = _reference("alex")
    trunk, heads = _weights_of(ref)
    _install(tmp_path / "hub", "alex", trunk, heads)
    x, y = torch.rand(2, 3, 40, 40) * 2 - 1, torch.rand(2, 3, 40, 40) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(LPIPS("alex")(x, y), ref(x, y).flatten(), rtol=1e-5, atol=1e-6)
    torch.save({"lin0.weight": torch.zeros(1)}, tmp_path / "hub" / "checkpoints" / HEADS["alex"][0])
    with pytest.raises(CheckpointError, match=r"does not hold LPIPS v0.1 alex heads"):
        LPIPS("alex")
    (tmp_path / "hub" / "checkpoints" / HEADS["alex"][0]).write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="lpips_alex-df73285e.pth"):
        LPIPS("alex")


def test_the_published_heads_file_is_the_one_named_and_loads(tmp_path):
    """The heads inside the authors' package hash to the prefix our file name carries."""
    import hashlib

    lpips = pytest.importorskip("lpips")
    for backbone, (name, _) in HEADS.items():
        path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{backbone}.pth"
        assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(name.split("-")[-1].split(".")[0])
        LPIPS(backbone, weights=False).load_heads(torch.load(path, map_location="cpu", weights_only=True), str(path))


def test_eval_and_validation_report_lpips_beside_psnr(tmp_path, monkeypatch, trained, gray2color, make_config, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    out = tmp_path / "plain"
    assert main(["eval", trained, "--data", str(gray2color / "test"), "--out", str(out)]) == 0  # auto: no weights here
    r = json.loads((out / "metrics.json").read_text())
    assert "LPIPS" not in r["models"][0] and "LPIPS not measured" in r["lpips"]
    assert main(["eval", trained, "--data", str(gray2color / "test"), "--lpips", "vgg"]) != 0
    assert "i2i download weights lpips-vgg" in capsys.readouterr().err
    _install(tmp_path / "hub", "alex", *_weights_of(_reference("alex")))
    out = tmp_path / "with"
    assert main(["eval", trained, "--data", str(gray2color / "test"), "--out", str(out)]) == 0
    r = json.loads((out / "metrics.json").read_text())
    models = {m["model"]: m for m in r["models"]}
    assert r["lpips"] == "LPIPS v0.1 (AlexNet)"
    assert models["identity"]["LPIPS_input"] == pytest.approx(0.0, abs=1e-6)
    assert all(m["LPIPS"] > 0 and m["LPIPS_input"] >= 0 for m in r["models"])
    page = (out / "index.html").read_text()
    assert "LPIPS" in page and "learned perceptual distance" in page and "faithfulness" in page

    cfg = make_config(tmp_path, gray2color, train={"steps": 2, "val_every": 2, "val_limit": 3, "val_lpips": "alex"})
    i2i.train(cfg)
    val = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines() if "val_PSNR" in x]
    assert val[-1]["val_LPIPS"] > 0 and "val_LPIPS_input" not in val[-1]
    cfg = make_config(tmp_path / "b", gray2color, train={"steps": 2, "val_every": 2, "val_lpips": "vgg"})
    with pytest.raises(ConfigError, match="train.val_lpips: vgg.*lpips-vgg"):
        i2i.Trainer(cfg)


def test_download_fetches_the_heads_under_their_hash_name_after_the_backbone(tmp_path, monkeypatch):
    """`i2i download weights lpips-alex` asks for the backbone first (here already cached) and
    saves the heads under the name whose sha256 prefix it checks; other bytes are refused."""
    from test_download import FixtureServer

    from i2i import download as dl

    lpips = pytest.importorskip("lpips")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / BACKBONES["alex"][0]).write_bytes(b"cached")
    server = FixtureServer()
    try:
        path = "/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth"
        server.files[path] = b"something else"
        with pytest.raises(dl.DownloadError, match="does not match the df73285e"):
            dl.download_weights("lpips-alex", mirror=server.url, progress=False)
        server.files[path] = (Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth").read_bytes()
        got = dl.download_weights("lpips-alex", mirror=server.url, progress=False)
        assert got.name == HEADS["alex"][0] and got.read_bytes() == server.files[path]
        assert [p for p, _ in server.requests if "alexnet" in p] == []  # the cached backbone is not fetched again
    finally:
        server.close()


def test_super_resolution_eval_and_validation_add_lpips(tmp_path, monkeypatch, sr_data, make_config):
    from i2i.evaluate.super_resolution import evaluate_sr

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    _install(tmp_path / "hub", "alex", *_weights_of(_reference("alex")))
    cfg = sr_config(make_config, tmp_path, sr_data,
                    train={"steps": 2, "val_every": 2, "val_limit": 2, "val_lpips": "alex"})
    ckpt = i2i.train(cfg)["checkpoint"]
    val = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines() if "val_PSNR_Y" in x]
    assert val[-1]["val_LPIPS"] > 0
    r = evaluate_sr(ckpt, sr_data / "test", tmp_path / "ev", limit=2)
    assert r["lpips"] == "LPIPS v0.1 (AlexNet)" and r["mean"]["lpips_model"] > 0 and r["mean"]["lpips_bicubic"] > 0
    assert "LPIPS model" in r["markdown"]
    plain = evaluate_sr(ckpt, sr_data / "test", limit=2, lpips="none")
    assert "lpips_model" not in plain["mean"] and plain["mean"]["psnr_y_model"] == r["mean"]["psnr_y_model"]
