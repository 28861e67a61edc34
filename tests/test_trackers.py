"""Trackers: TensorBoard and Weights & Biases get grouped scalars, sample grids, the config and
hyper-parameters; a tracker that cannot start stops the run before any training."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from i2i.config import ConfigError
from i2i.data.io import read_image
from i2i.engine.trackers import group_scalars, hyperparameters
from i2i.engine.trainer import train


def _records(cfg) -> list[dict]:
    return [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]


def test_scalars_are_grouped_by_kind_not_all_called_losses():
    record = {"step": 4, "epoch": 1, "G_L1": 0.5, "D_real": 0.7, "it_per_s": 9.0, "lr_G": 1e-4, "val_PSNR": 21.0}
    assert group_scalars(record) == {"progress/epoch": 1.0, "loss/G_L1": 0.5, "loss/D_real": 0.7,
                                     "progress/it_per_s": 9.0,
                                     "lr/G": 1e-4, "val/PSNR": 21.0}


def test_hyperparameters_are_the_flat_config(tmp_path, gray2color, make_config):
    hp = hyperparameters(make_config(tmp_path, gray2color))
    assert hp["optim.lr_g"] == 2e-4 and hp["model.generator.name"] == "unet" and hp["model.generator.num_downs"] == 5
    assert hp["loss.gan_mode"] == "vanilla" and hp["data.batch_size"] == 4
    assert all(isinstance(v, (bool, int, float, str)) for v in hp.values())


def test_tensorboard_gets_grouped_scalars_sample_grids_config_and_hparams(tmp_path, gray2color, make_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_config(tmp_path, gray2color,
                      train={"steps": 4, "log_every": 2, "sample_every": 2, "val_every": 2, "val_limit": 3,
                             "tensorboard": True})
    train(cfg)
    acc = EventAccumulator(str(cfg.run_dir / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"loss/G_L1", "loss/D_real", "lr/G", "lr/D", "progress/epoch", "progress/it_per_s", "val/PSNR", "val/L1",
            "val/SSIM"} <= scalars
    assert not {"G_L1", "epoch", "it_per_s"} & scalars, "no ungrouped tags, and epoch / speed are not losses"
    logged = _records(cfg)
    losses = [r for r in logged if "G_L1" in r]
    assert [e.step for e in acc.Scalars("loss/G_L1")] == [r["step"] for r in losses] == [2, 4]
    assert [e.value for e in acc.Scalars("loss/G_L1")] == pytest.approx([r["G_L1"] for r in losses])
    assert [e.value for e in acc.Scalars("val/PSNR")] == pytest.approx(
        [r["val_PSNR"] for r in logged if "val_PSNR" in r]
    )
    # The sample grids, as written to RUN/samples/.
    images = acc.Images("samples")
    assert [e.step for e in images] == [2, 4]
    grid = read_image(cfg.run_dir / "samples" / "step_00000004.png")
    assert (images[-1].height, images[-1].width) == grid.shape[:2]
    # The config as text, and the hyper-parameters with the final numbers.
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "pipeline: pix2pix" in text and "num_downs: 5" in text
    hparams = acc.PluginTagToContent("hparams")
    assert b"optim.lr_g" in hparams["_hparams_/experiment"] and b"best/PSNR" in hparams["_hparams_/experiment"]
    assert acc.Scalars("best/PSNR")[0].value == pytest.approx(max(r["val_PSNR"] for r in logged if "val_PSNR" in r))


def test_a_missing_tracker_package_stops_the_run_before_training(tmp_path, gray2color, make_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "wandb", None)
    for key, extra in (("tensorboard", "i2i[tensorboard]"), ("wandb", "i2i[wandb]")):
        cfg = make_config(tmp_path / key, gray2color, train={"steps": 2, key: True})
        with pytest.raises(ConfigError,
                           match=rf"train.{key} .*pip install '{extra.replace('[', '.').replace(']', '.')}'"):
            train(cfg)
        assert not (cfg.run_dir / "checkpoints").exists()


class _FakeRun:
    def __init__(self, calls: list, **kwargs) -> None:
        self.calls, self.summary = calls, {}
        calls.append(("init", kwargs))

    def log(self, values: dict, step: int) -> None:
        self.calls.append(("log", values, step))

    def finish(self) -> None:
        self.calls.append(("finish", dict(self.summary)))


def _fake_wandb(calls: list, fail: Exception | None = None) -> types.ModuleType:
    mod = types.ModuleType("wandb")

    def init(**kwargs):
        if fail is not None:
            raise fail
        return _FakeRun(calls, **kwargs)

    mod.init = init
    mod.Image = lambda array: ("image", array.shape)
    return mod


def test_wandb_gets_what_tensorboard_gets_and_resumes_the_same_run(tmp_path, gray2color, make_config, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb(calls))
    cfg = make_config(tmp_path, gray2color,
                      train={"steps": 4, "log_every": 2, "sample_every": 2, "val_every": 2, "val_limit": 3,
                             "checkpoint_every": 2, "wandb": True, "wandb_project": "demo"})
    from i2i.engine.trainer import Trainer

    t = Trainer(cfg)
    t.total_steps = 2  # interrupted after step 2, then resumed
    t.fit()
    train(cfg, resume="auto")
    inits = [c[1] for c in calls if c[0] == "init"]
    assert len(inits) == 2 and inits[0]["id"] == inits[1]["id"] == (cfg.run_dir / "wandb_id").read_text().strip()
    assert inits[0]["project"] == "demo" and inits[0]["name"] == "tiny" and inits[0]["resume"] == "allow"
    assert inits[0]["config"]["optim.lr_g"] == 2e-4 and inits[0]["dir"] == str(cfg.run_dir)
    logs = [(c[1], c[2]) for c in calls if c[0] == "log"]
    scalars = {step: v for v, step in logs if "loss/G_L1" in v}
    assert sorted(scalars) == [2, 4]
    assert scalars[4]["loss/G_L1"] == pytest.approx(_records(cfg)[-2]["G_L1"])
    assert [step for v, step in logs if "val/PSNR" in v] == [2, 4]
    assert [(v["samples"][0], step) for v, step in logs if "samples" in v] == [("image", 2), ("image", 4)]
    finishes = [c[1] for c in calls if c[0] == "finish"]
    assert len(finishes) == 2 and "best/PSNR" in finishes[-1] and "final/G_L1" in finishes[-1]


def test_wandb_that_cannot_start_says_what_to_do_and_trains_nothing(tmp_path, gray2color, make_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb([], fail=RuntimeError("api_key not configured (no-tty)")))
    cfg = make_config(tmp_path, gray2color, train={"steps": 2, "wandb": True})
    with pytest.raises(ConfigError, match="wandb login.*WANDB_MODE=offline"):
        train(cfg)
    assert not (cfg.run_dir / "checkpoints").exists() and not (cfg.run_dir / "wandb_id").exists()


def test_wandb_offline_for_real(tmp_path, gray2color, make_config, monkeypatch):
    """The real package, offline (never required: skipped where the extra is not installed)."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_config(tmp_path, gray2color, train={"steps": 4, "log_every": 2, "sample_every": 2, "checkpoint_every": 2,
                                                   "wandb": True})
    from i2i.engine.trainer import Trainer

    t = Trainer(cfg)
    t.total_steps = 2
    t.fit()
    train(cfg, resume="auto")
    run_id = (cfg.run_dir / "wandb_id").read_text().strip()
    runs = sorted((cfg.run_dir / "wandb").glob(f"offline-run-*-{run_id}*"))
    assert runs and all((r / f"run-{run_id}.wandb").stat().st_size > 0 for r in runs)
    images = sorted(
        p.name.split("_")[1] for r in runs for p in (r / "files" / "media" / "images").glob("samples_*.png")
    )
    assert images == ["2", "4"]
    first = next((runs[0] / "files" / "media" / "images").glob("samples_2_*.png"))
    assert np.array_equal(read_image(first), read_image(cfg.run_dir / "samples" / "step_00000002.png"))
