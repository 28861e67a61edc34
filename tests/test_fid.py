"""FID comparable with papers: the standard FID Inception (pytorch-fid's network) from a local
file, the Inception Score, and every FID output saying which network measured it."""

from __future__ import annotations

import pytest
import torch

from i2i import metrics
from i2i.evaluate import FID_INCEPTION_FILE, FIDInception, extract_features_and_logits, feature_extractor


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory) -> str:
    """A torch hub folder holding an FID-Inception weights file (random weights: the real file is
    a 92 MB download; the architecture and the plumbing are what is tested)."""
    home = tmp_path_factory.mktemp("torch-home")
    (home / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(FIDInception.architecture().state_dict(), home / "checkpoints" / FID_INCEPTION_FILE)
    return str(home)


@pytest.mark.numerics
def test_features_equal_pytorch_fid_on_the_same_weights(fid_weights, monkeypatch):
    import pytorch_fid.inception as pf

    monkeypatch.setattr(torch.hub, "get_dir", lambda: fid_weights)
    ours = feature_extractor("fid-inception")
    state = torch.load(f"{fid_weights}/checkpoints/{FID_INCEPTION_FILE}", weights_only=True)
    monkeypatch.setattr(pf, "load_state_dict_from_url", lambda *a, **k: state)  # pytorch-fid would download
    theirs = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        expected = theirs((x + 1) / 2)[0].flatten(1)  # pytorch-fid takes [0, 1]
    feats, logits = extract_features_and_logits(ours, x)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.allclose(feats, expected, atol=1e-4, rtol=1e-4)
    assert "comparable with published FIDs" in ours.description


def test_missing_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        feature_extractor("fid-inception")
    msg = str(e.value)
    assert (
        FID_INCEPTION_FILE in msg
        and "github.com/mseitzer/pytorch-fid" in msg
        and "i2i download weights fid-inception" in msg
    )


def test_inception_score_is_one_for_uninformative_and_k_for_k_confident_balanced_classes():
    assert metrics.inception_score(torch.zeros(100, 1008))[0] == pytest.approx(1.0)
    confident = torch.full((100, 10), -50.0)
    confident[torch.arange(100), torch.arange(100) % 10] = 50.0
    mean, std = metrics.inception_score(confident, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_every_fid_output_names_its_network(tmp_path, capsys, fid_weights, monkeypatch):
    from conftest import tiny_dcgan_checkpoint

    import i2i
    from i2i.cli import main

    ckpt, _ = tiny_dcgan_checkpoint(tmp_path)
    capsys.readouterr()
    assert (
        repr(i2i.Generator.from_checkpoint(ckpt, device="cpu"))
        == "Generator(dcgan, z 100-d gaussian, weights=raw, device=cpu)"
    )
    assert main(["eval", ckpt, "--data", str(tmp_path / "shapes"), "--features", "pixels", "--n", "8",
                 "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert (
        "FID " in out and "features: 8x8 pooled pixels (a sanity baseline; not comparable with published FIDs)" in out
    )
    import json

    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["feature_network"].startswith("8x8 pooled pixels") and "is" not in saved
    # The default: the standard network, with the Inception Score of samples and of real images.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: fid_weights)
    assert main(["eval", ckpt, "--data", str(tmp_path / "shapes"), "--n", "8", "--out", str(tmp_path / "ev2")]) == 0
    out = capsys.readouterr().out
    assert "IS " in out and "(real images: " in out and "comparable with published FIDs" in out
    saved = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    assert saved["features"] == "fid-inception" and 1.0 <= saved["is"] <= 1008 and saved["is_real"] >= 1.0
