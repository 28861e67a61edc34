"""Every config value is range-checked before anything is built or written: hundreds of mutated
configs either train-ready or fail with a ConfigError naming the key, never a traceback."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch
from conftest import leaf_paths

import i2i
from i2i.config import ConfigError, config_to_dict
from i2i.data.base import DataError
from i2i.recipes import config_from_dict

BAD_VALUES = [-1, 0, 1, 3, 100_000, 2**40, -1e-3, 0.5, 5.0, 1e12, math.nan, math.inf, -math.inf, "banana", "", "../x",
              None, [],
              {}, True, [1, 2]]


def _set(d: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for part in parents:
        d = d[part]
    d[last] = value


@pytest.mark.slow
def test_mutated_configs_load_or_name_the_key_and_never_leave_a_folder(tmp_path, gray2color, make_config):
    base = config_to_dict(make_config(tmp_path, gray2color))
    paths = [p for p in leaf_paths(base) if p not in ("version", "pipeline")]
    rng = random.Random(0)
    outcomes = {"ok": 0, "refused": 0}
    for trial in range(300):
        data = copy.deepcopy(base)
        data["output_dir"] = str(tmp_path / f"runs{trial}")
        path, value = rng.choice(paths), rng.choice(BAD_VALUES)
        if path == "output_dir":
            continue
        _set(data, path, value)
        try:
            cfg = config_from_dict(data)
        except ConfigError as e:
            leaf = path.rsplit(".", 1)[-1]
            assert leaf in str(e) or path.split(".")[0] in str(e), f"{path}={value!r}: {e}"
            outcomes["refused"] += 1
            continue
        # Accepted: the trainer must build (data, nets, optimizers) or refuse naming a key or folder.
        try:
            i2i.Trainer(cfg)
            outcomes["ok"] += 1
        except (ConfigError, DataError, i2i.CheckpointError) as e:
            assert "data" in str(e) or path.rsplit(".", 1)[-1] in str(e), f"{path}={value!r}: {e}"
            outcomes["refused"] += 1
        assert not (tmp_path / f"runs{trial}").exists(), f"{path}={value!r} left a run folder"
    print("mutated configs:", outcomes)
    assert outcomes["ok"] > 20 and outcomes["refused"] > 100, outcomes


@pytest.mark.parametrize("key,value,needle", [
    ("optim.lr_g", -1e-4, "allowed: (0, 1]"), ("optim.lr_g", math.nan, "finite"),
    ("optim.beta1", 5.0, "allowed: [0, 1)"),
    ("train.ema_decay", 5.0, "allowed: [0, 1)"), ("train.keep_checkpoints", -1, "allowed: [0, 1e+06]"),
    ("data.crop_size", 0, "allowed: [1, 16384]"), ("data.crop_size", -5, "data.crop_size"),
    ("model.generator.base_channels", 100000, "allowed: [1, 1024]"),
    ("model.generator.base_channels", 0, "base_channels"),
    ("model.generator.num_downs", 100, "allowed: [1, 12]"), ("train.device", "banana", "is not a device"),
    ("data.load_size", 10**6, "data.load_size"),
])
def test_bad_values_name_the_key_and_the_range(tmp_path, gray2color, make_config, key, value, needle):
    data = config_to_dict(make_config(tmp_path, gray2color))
    _set(data, key, value)
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    assert key.rsplit(".", 1)[-1] in str(e.value) and needle in str(e.value)


def test_a_net_the_config_cannot_build_is_a_config_error(tmp_path):
    import make_shapes

    make_shapes.build(tmp_path / "s", n=4, size=16, seed=0)
    with pytest.raises(ConfigError, match=r"model.generator \(net G\) cannot be built.*power of two"):
        config_from_dict({"pipeline": "dcgan", "data": {"root": str(tmp_path / "s"), "image_size": 24}})


def test_aligned_layout_on_a_folder_of_a_and_b_is_refused(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, data={"layout": "aligned"})
    with pytest.raises(DataError, match="set data.layout: folders"):
        i2i.Trainer(cfg)


def test_a_learning_rate_set_on_resume_is_used(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path, gray2color, schedule={"policy": "constant"}, train={"steps": 4, "checkpoint_every": 2})
    t = i2i.Trainer(cfg)
    t.total_steps = 2
    t.fit()
    cfg.optim.lr_g = 1e-5
    resumed = i2i.Trainer(cfg, resume="auto")
    assert [g["lr"] for g in resumed.optimizers["G"].param_groups] == [1e-5]
    assert [g["lr"] for g in resumed.optimizers["D"].param_groups] == [2e-4]
    assert any("G 0.0002 -> 1e-05" in line for line in resumed.banner())
    resumed.fit()
    assert torch.load(cfg.run_dir / "checkpoints" / "last.pt",
                      weights_only=True)["optimizers"]["G"]["param_groups"][0]["lr"] == 1e-5
