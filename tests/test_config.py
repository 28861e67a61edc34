from pathlib import Path

import pytest

from i2i.config import ConfigError, config_from_dict, config_to_dict, dump_config, load_config

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "configs").rglob("*.yaml"))


def test_configs_are_shipped():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in SHIPPED}
    assert {"pix2pix/facades.yaml", "pix2pix/demo.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_every_shipped_config_loads_and_round_trips(path):
    cfg = load_config(path)
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_facades_recipe_has_reference_defaults():
    cfg = load_config(ROOT / "configs/pix2pix/facades.yaml")
    g, d = cfg.model.generator, cfg.model.discriminator
    got = (g.name, g.arg("norm"), g.arg("dropout"), d.name, d.arg("n_layers"), d.arg("norm"))
    assert got == ("unet_256", "batch", True, "patch", 3, "batch")
    assert (cfg.loss.gan_mode, cfg.loss.l1_weight, cfg.optim.lr_g, cfg.optim.beta1) == ("vanilla", 100.0, 2e-4, 0.5)
    assert (cfg.data.batch_size, cfg.data.load_size, cfg.data.crop_size, cfg.data.flip) == (1, 286, 256, True)
    assert (cfg.train.epochs, cfg.schedule.policy, cfg.schedule.decay_start) == (200, "linear", 100)


def test_unknown_key_names_path_and_suggests(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  generator:\n    nrom: batch\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "model.generator.nrom" in msg and "did you mean 'norm'" in msg and str(p) in msg


def test_wrong_types_and_choices_are_named():
    with pytest.raises(ConfigError, match="'train.steps' must be int or null, got 'ten'"):
        config_from_dict({"train": {"epochs": None, "steps": "ten"}})
    with pytest.raises(ConfigError, match=r"'loss.gan_mode' is 'lsgn' \(did you mean 'lsgan'\?\)"):
        config_from_dict({"loss": {"gan_mode": "lsgn"}})
    with pytest.raises(ConfigError, match="'data.flip' must be true or false"):
        config_from_dict({"data": {"flip": "yes"}})
    with pytest.raises(ConfigError, match="'model' must be a mapping"):
        config_from_dict({"model": 3})
    with pytest.raises(ConfigError, match="exactly one of 'train.epochs' and 'train.steps'"):
        config_from_dict({"train": {"steps": 10}})
    with pytest.raises(ConfigError, match="unknown config key 'pipline'.*did you mean 'pipeline'"):
        config_from_dict({"pipline": "pix2pix"})


def test_int_is_accepted_for_float():
    assert config_from_dict({"loss": {"l1_weight": 10}}).loss.l1_weight == 10.0


def test_overrides_parse_yaml_values(tmp_path):
    cfg = load_config(ROOT / "configs/pix2pix/demo.yaml", ["train.epochs=null", "train.steps=7", "optim.lr_g=1e-3", "name=x"])
    assert (cfg.train.steps, cfg.train.epochs, cfg.optim.lr_g, cfg.name) == (7, None, 1e-3, "x")
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(ROOT / "configs/pix2pix/demo.yaml", ["train.steps"])
    with pytest.raises(ConfigError, match="'train.stpes'"):
        load_config(ROOT / "configs/pix2pix/demo.yaml", ["train.stpes=3"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_dump_is_loadable_yaml(tmp_path):
    cfg = load_config(ROOT / "configs/pix2pix/demo.yaml")
    p = tmp_path / "resolved.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg
