"""Validation during training: the pipeline's own metric on held-out data, the kept best
checkpoint, and clear errors before training when the validation data cannot serve."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import i2i
from i2i.config import ConfigError
from i2i.data.base import DataError


def _val_records(cfg) -> list[dict]:
    lines = (cfg.run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "val_PSNR" in r]


def test_best_checkpoint_scores_what_validation_logged_and_eval_agrees(tmp_path, gray2color, make_config):
    from i2i.evaluate import evaluate_paired

    cfg = make_config(tmp_path, gray2color, train={"steps": 12, "val_every": 4, "ema_decay": 0.9, "log_every": 4})
    summary = i2i.train(cfg)
    val = _val_records(cfg)
    assert [r["step"] for r in val] == [4, 8, 12]
    best = max(val, key=lambda r: r["val_PSNR"])
    assert summary["validation"]["step"] == best["step"] and summary["validation"]["value"] == pytest.approx(
        best["val_PSNR"]
    )
    # The kept checkpoint, evaluated as a user would (EMA weights, eval mode), scores what was logged.
    ckpt = cfg.run_dir / "checkpoints" / "best.pt"
    result = evaluate_paired(ckpt, gray2color / "test")
    trained = next(m for m in result["models"] if m["model"] == "trained")
    assert result["weights"] == "ema"
    assert trained["PSNR"] == pytest.approx(best["val_PSNR"], abs=1e-4)
    assert trained["L1"] == pytest.approx(best["val_L1"], abs=1e-6)
    assert 0 < best["val_SSIM"] <= 1
    log = (cfg.run_dir / "train.log").read_text()
    assert "validation every 4 steps: 15 pairs" in log and "identity (input as output)" in log
    assert f"validation at step {best['step']}: L1" in log and "best PSNR" in log


def test_validation_follows_the_chosen_metric_and_its_direction(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, train={"steps": 6, "val_every": 2, "val_metric": "L1", "val_limit": 5})
    summary = i2i.train(cfg)
    val = _val_records(cfg)
    best = min(val, key=lambda r: r["val_L1"])  # lower is better for L1
    assert summary["validation"]["metric"] == "L1" and summary["validation"]["step"] == best["step"]


def test_validation_on_a_resumed_run_keeps_the_best_so_far(tmp_path, gray2color, make_config):
    common = {"steps": 8, "val_every": 2, "checkpoint_every": 2, "val_limit": 4}
    cfg = make_config(tmp_path, gray2color, train=common)
    t = i2i.Trainer(cfg)
    t.total_steps = 4
    t.fit()
    before = dict(t.best)
    resumed = i2i.Trainer(cfg, resume="auto")
    assert resumed.best == before and before["value"] is not None
    # A different metric starts its own record instead of comparing PSNR with L1.
    cfg.train.val_metric = "L1"
    assert i2i.Trainer(cfg, resume="auto").best == {"metric": "L1", "value": None, "step": None}


@pytest.mark.parametrize("problem",
                         ["missing", "empty", "no_val_root", "unknown_metric", "unpaired", "unpaired_cyclegan"])
def test_validation_data_that_cannot_serve_stops_before_training(problem, tmp_path, gray2color, make_config):
    train = {"steps": 2, "val_every": 1}
    data: dict = {}
    extra = {"pipeline": "cyclegan", "loss": {"identity_weight": 0}} if problem.endswith("cyclegan") else {}
    if problem == "missing":
        data = {"val_root": str(tmp_path / "nowhere")}
        needle = str(tmp_path / "nowhere")
    elif problem == "empty":
        (tmp_path / "empty" / "A").mkdir(parents=True)
        (tmp_path / "empty" / "B").mkdir()
        data = {"val_root": str(tmp_path / "empty")}
        needle = "holds no images"
    elif problem == "no_val_root":
        data = {"val_root": None}
        needle = "'train.val_every' needs 'data.val_root'"
    elif problem == "unknown_metric":
        train["val_metric"] = "PSNRR"
        needle = "did you mean 'PSNR'"
    else:  # unmatched names: there is no target to compare with
        shutil.copytree(gray2color / "test", tmp_path / "unpaired")
        next((tmp_path / "unpaired" / "B").glob("*.png")).rename(tmp_path / "unpaired" / "B" / "renamed.png")
        data = {"val_root": str(tmp_path / "unpaired")}
        # pix2pix's preview already needs pairs; CycleGAN previews unpaired folders, its validation cannot
        needle = "needs pairs" if extra else "unmatched images"
    with pytest.raises((ConfigError, DataError)) as e:
        cfg = make_config(tmp_path, gray2color, train=train, data=data, **extra)
        i2i.train(cfg)
    assert needle in str(e.value)
    assert "val_" in str(e.value), "the message names the key to fix"
    assert not (tmp_path / "runs" / "tiny" / "checkpoints").exists(), "nothing may be trained or written"


def test_generation_validation_needs_local_feature_weights_or_says_what_to_choose(tmp_path, monkeypatch):
    import make_shapes

    from i2i.recipes import config_from_dict

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached Inception weights
    make_shapes.build(tmp_path / "shapes", n=16, size=16, seed=0)
    cfg = config_from_dict({"pipeline": "dcgan", "output_dir": str(tmp_path / "runs"),
                            "model": {"generator": {"name": "dcgan", "base_channels": 4},
                                      "discriminator": {"name": "dcgan", "base_channels": 4}},
                            "data": {"root": str(tmp_path / "shapes"), "val_root": str(tmp_path / "shapes"),
                                     "image_size": 16,
                                     "num_workers": 0},
                            "train": {"epochs": None, "steps": 2, "val_every": 1, "progress": False}})
    with pytest.raises(ConfigError, match="choose train.val_features: pixels"):
        i2i.Trainer(cfg)
    cfg.train.val_features = "pixels"
    summary = i2i.train(cfg)
    assert summary["validation"]["metric"] == "FID" and summary["validation"]["value"] > 0
    assert torch.load(cfg.run_dir / "checkpoints" / "best.pt", weights_only=True)["kind"] == "training"


def test_the_train_command_names_the_best_checkpoint(tmp_path, gray2color, make_config, capsys):
    from i2i.cli import main
    from i2i.config import dump_config

    cfg = make_config(tmp_path, gray2color, train={"steps": 4, "val_every": 2, "val_limit": 3})
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg))
    assert main(["train", str(path)]) == 0
    out = capsys.readouterr()
    best = torch.load(cfg.run_dir / "checkpoints" / "best.pt", weights_only=True)["best"]
    assert f"best PSNR {best['value']:.4g} at step {best['step']}: {cfg.run_dir / 'checkpoints' / 'best.pt'}" in out.out
    assert out.err.count("validation at step") == 2 and "\r" not in out.err
