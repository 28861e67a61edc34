"""Files written by an older i2i keep working: checkpoints and exports from c9b2b16 (config
version 1, checkpoint format 1) load, convert, sample and resume, giving what that i2i computed
(``tests/data/legacy_v1``, written by its ``make_fixtures.py``) on another machine.

Floats computed on another CPU may differ in the last bits (oneDNN and ATen pick kernels by
instruction set), so the comparisons have tolerances, measured: on an AVX-512 machine under
``ATEN_CPU_CAPABILITY`` default / avx2 / avx512 the resumed weights differed from the fixtures by
at most 7.5e-9 (4.1e-7 of the tensor's largest value), the samples by 2.6e-10, the converted
images by 0 levels. The tolerances below (1e-6 absolute for weights and samples, one 8-bit level
for images) are over 100 times that spread and still far below what one training step changes
(about 1e-4 here): a different computation fails them. Bit-exact resume is tested within one
machine, against runs the tests compute (tests/test_registry.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import i2i
from i2i.checkpoint import load_checkpoint
from i2i.cli import main
from i2i.config import CONFIG_VERSION, config_to_dict
from i2i.recipes import config_from_dict

LEGACY = Path(__file__).parent / "data" / "legacy_v1"
pytestmark = pytest.mark.numerics
ATOL = 1e-6  # weights and samples against another machine's (measured spread: 7.5e-9; see the module docstring)
LEVELS = 1  # 8-bit levels of converted images against another machine's (measured: 0)
TRANSLATORS = [("pix2pix_step2_of_4", "input_gray.png", None), ("pix2pix_export", "input_gray.png", None),
               ("cyclegan_export_b_to_a", "input_rgb.png", None), ("srresnet_x2_export", "input_rgb.png", (20, 24))]


def test_fixtures_are_version_one_files():
    raw = torch.load(LEGACY / "pix2pix_step2_of_4.pt", weights_only=True)
    assert raw["format_version"] == 1 and "version" not in raw["config"]
    assert "cycle_weight" in raw["config"]["loss"]  # the flat union of every method's fields


@pytest.mark.parametrize("name,image,crop", TRANSLATORS)
def test_old_translators_load_and_convert_exactly_as_before(name, image, crop, tmp_path):
    img = i2i.read_image(LEGACY / image)
    if crop:
        img = img[: crop[0], : crop[1]]
    tr = i2i.Translator.from_checkpoint(LEGACY / f"{name}.pt", device="cpu")
    expected = i2i.read_image(LEGACY / f"expected_{name}.png")
    got = tr(img)
    assert np.abs(got.astype(int) - expected.reshape(got.shape).astype(int)).max() <= LEVELS
    assert tr.cfg.version == CONFIG_VERSION
    # and through the command line, as a user would
    src = tmp_path / "in"
    src.mkdir()
    i2i.write_image(src / "x.png", img)
    assert main(["convert", str(LEGACY / f"{name}.pt"), str(src), str(tmp_path / "out"), "--quiet", "--workers",
                 "0"]) == 0
    written = i2i.read_image(tmp_path / "out" / "x.png").reshape(expected.shape)
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= LEVELS


def test_old_configs_migrate_to_what_they_meant():
    cfg = config_from_dict(load_checkpoint(LEGACY / "pix2pix_step2_of_4.pt")["config"])
    g, d = cfg.model.generator, cfg.model.discriminator
    assert g.options == {"in_channels": 1, "out_channels": 3, "base_channels": 4, "num_downs": 5}  # nulls were defaults
    assert "in_channels" not in d.options and d.arg("n_layers") == 2  # derived by the pipeline, as before
    assert not hasattr(cfg.loss, "cycle_weight") and cfg.loss.l1_weight == 100.0
    dc = config_from_dict(load_checkpoint(LEGACY / "dcgan_step2_of_4.pt")["config"])
    assert dc.data.image_size == 16 and dc.model.generator.arg("prior") == "gaussian"
    assert dc.data.fit == "resize"  # version 1 always resized small images; new configs pad them
    assert config_from_dict(config_to_dict(dc)) == dc


def test_old_generation_checkpoint_samples_exactly_as_before():
    gen = i2i.Generator.from_checkpoint(LEGACY / "dcgan_step2_of_4.pt", device="cpu")
    assert gen.weights == "ema"
    want = torch.load(LEGACY / "dcgan_step2_samples_seed3.pt", weights_only=True)["samples"]
    assert torch.allclose(gen.sample(4, seed=3), want, rtol=0, atol=ATOL)


@pytest.mark.parametrize("name,builder", [("pix2pix", "paired"), ("dcgan", "shapes")])
def test_old_training_checkpoints_resume_to_the_same_weights(name, builder, tmp_path, photos):
    import make_paired
    import make_shapes

    data = tmp_path / "data"
    if builder == "paired":
        make_paired.build(photos, data, task="gray2color", size=32, n_train=12, n_test=3, seed=0)
        root = data / "train"
    else:
        make_shapes.build(data, n=64, size=16, seed=0)
        root = data
    ckpt = LEGACY / f"{name}_step2_of_4.pt"
    cfg = config_from_dict(load_checkpoint(ckpt)["config"], [f"data.root={root}", f"output_dir={tmp_path / 'runs'}"])
    (cfg.run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt, cfg.run_dir / "checkpoints" / "last.pt")
    summary = i2i.train(cfg, resume="auto")
    assert summary["step"] == 4
    got = torch.load(summary["checkpoint"], weights_only=True)
    want = torch.load(LEGACY / f"{name}_step4_expected.pt", weights_only=True)
    # Training itself is unchanged: every weight equals the old straight run's (up to the last bits).
    # (Batch-norm running statistics are now re-estimated for the weights at each save and the
    # EMA decay warms up, so those two differ from what the old i2i saved, on purpose.)
    stats = ("running_mean", "running_var", "num_batches_tracked")
    for net, sd in want["nets"].items():
        for k, v in sd.items():
            if not k.endswith(stats):
                assert torch.allclose(got["nets"][net][k].double(), v.double(), rtol=0, atol=ATOL), f"nets.{net}.{k}"
    assert set(got["ema"]) == set(want["ema"]) and all(
        torch.isfinite(v.float()).all() for sd in got["ema"].values() for v in sd.values()
    )
    assert got["format_version"] == 2 and got["config"]["version"] == CONFIG_VERSION


def test_info_describes_old_files(capsys):
    assert main(["info", str(LEGACY / "cyclegan_export_b_to_a.pt")]) == 0
    out = capsys.readouterr().out
    assert (
        "format i2i-checkpoint v1" in out
        and "cyclegan (translation), direction b_to_a" in out
        and f"version: {CONFIG_VERSION}" in out
    )
