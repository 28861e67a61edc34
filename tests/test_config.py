from pathlib import Path

import pytest
from conftest import leaf_paths

import i2i
from i2i.config import ConfigError, config_to_dict, dump_config
from i2i.recipes import config_from_dict, load_config

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
    cfg = load_config(ROOT / "configs/pix2pix/demo.yaml",
                      ["train.epochs=null", "train.steps=7", "optim.lr_g=1e-3", "name=x"])
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


@pytest.mark.parametrize("override,needles", [
    ("loss.cycle_weight=3", ["'loss.cycle_weight' does not apply to pipeline 'pix2pix'",
                             "option of pipeline 'cyclegan'"]),
    ("data.lr_root=x", ["'data.lr_root' does not apply to pipeline 'pix2pix'", "option of pipeline 'srgan'"]),
    ("model.generator.n_blocks=3", ["'model.generator.n_blocks' is not an option of generator 'unet_256'",
                                    "its options: in_channels"]),
    ("model.generator.num_downs=7", ["fixed to 8 by the preset 'unet_256'", "model.generator.name: unet"]),
    ("model.discriminator.in_channels=6", ["'model.discriminator.in_channels' is set by the pix2pix pipeline"]),
    ("model.discriminator.n_layers=x", ["'model.discriminator.n_layers' must be an integer"]),
    ("model.generator.norm=btch", ["'model.generator.norm' is 'btch' (did you mean 'batch'?)"]),
    ("model.generator.name=unet_265", ["'model.generator.name' is 'unet_265' (did you mean 'unet_256'?)"]),
    ("model.discriminator.init_from=x.pt", ["'model.discriminator.init_from' applies to generators only"]),
    ("model.encoder={}", ["unknown config key 'model.encoder'"]),
    ("version=4", ["'version' is 4"]),  # the version after CONFIG_VERSION
])
def test_options_that_do_not_apply_name_the_key_and_the_pipeline(override, needles):
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "configs/pix2pix/facades.yaml", [override])
    for needle in needles:
        assert needle in str(err.value)


def test_architecture_options_are_checked_against_the_constructor():
    cfg = load_config(ROOT / "configs/cyclegan/horse2zebra.yaml",
                      ["model.generator.name=resnet", "model.generator.n_blocks=6",
                                                                 "model.generator.padding=zero"])
    g = cfg.model.generator
    assert (g.arg("n_blocks"), g.arg("padding"), g.arg("norm")) == (6, "zero", "instance")
    assert i2i.build_generator(g.name, **g.options).model[0].padding == (3, 3)  # zero padding lives in the conv
    with pytest.raises(ConfigError, match="'model.generator.padding' is 'mirror'.*reflect, replicate, zero"):
        load_config(ROOT / "configs/cyclegan/horse2zebra.yaml", ["model.generator.padding=mirror"])


def test_each_pipeline_owns_its_data_and_loss_sections():
    from i2i.pipelines.cyclegan import CycleGANLoss
    from i2i.pipelines.pix2pix import Pix2PixLoss

    p = load_config(ROOT / "configs/pix2pix/facades.yaml")
    c = load_config(ROOT / "configs/cyclegan/horse2zebra.yaml")
    assert type(p.loss) is Pix2PixLoss and type(c.loss) is CycleGANLoss
    assert hasattr(p.data, "direction") and not hasattr(c.data, "direction") and c.data.serial_batches is False
    d = load_config(ROOT / "configs/dcgan/shapes_demo.yaml")
    assert d.data.image_size == 32 and not hasattr(d.data, "crop_size")


# --------------------------------------------------------------------- inputs that load but must not run
def _demo_dict() -> dict:
    return config_to_dict(load_config(ROOT / "configs/pix2pix/demo.yaml"))


def _with(data: dict, path: str, value) -> dict:
    import copy

    data = copy.deepcopy(data)
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return data


@pytest.mark.parametrize("path,value,needle", [
    ("train.device", "meta", "not a device i2i trains on"), ("train.device", "mps", "not a device i2i trains on"),
    ("seed", 2**32, "'seed' is 4294967296; allowed: [0, 4.29497e+09]"),
    ("data.root", "a\x00b", "'data.root' holds a NUL"),
    ("output_dir", "runs\x00", "'output_dir' holds a NUL"), ("data.root", "/proc/self", "kernel's files"),
    ("name", "n" * 300, "at most 255 bytes")])
def test_values_that_would_fail_later_are_refused_by_key(path, value, needle):
    with pytest.raises(ConfigError) as e:
        config_from_dict(_with(_demo_dict(), path, value))
    assert needle in str(e.value), str(e.value)


def test_a_megabyte_value_is_never_echoed_whole():
    """Every key set to a 1 MB string: refused in a message of bounded length, or accepted."""
    big = "x" * 1_000_000
    base = _demo_dict()
    for path in leaf_paths(base):
        try:
            config_from_dict(_with(base, path, big))
        except ConfigError as e:
            assert len(str(e)) < 1000, f"{path}: {len(str(e))} characters"


def test_yaml_that_cannot_be_read_names_the_file(tmp_path):
    cases = {"deep.yaml": "a: " + "[" * 5000 + "]" * 5000, "digits.yaml": "seed: " + "9" * 5000,
             "twice.yaml": "name: a\ntrain:\n  steps: 3\n  steps: 30\n"}
    needles = {"deep.yaml": "nested too deeply", "digits.yaml": "a value cannot be read",
               "twice.yaml": "key 'steps' is written twice in one section (lines 3 and 4)"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError) as e:
            load_config(tmp_path / name)
        assert name in str(e.value) and needles[name] in str(e.value) and len(str(e.value)) < 500, str(e.value)
    # a merge key may still be overridden: that is YAML's meaning, not a duplicate
    (tmp_path / "merge.yaml").write_text("name: a\nx: &t {steps: 3, epochs: null}\ntrain:\n  <<: *t\n  steps: 4\n")
    with pytest.raises(ConfigError, match="unknown config key 'x'"):
        load_config(tmp_path / "merge.yaml")


def test_home_and_symbolic_links_are_resolved_as_the_checks_read_them(tmp_path, monkeypatch, gray2color, make_config):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = config_from_dict(_with(_with(_demo_dict(), "output_dir", "~/runs"), "data.root", str(gray2color / "train")))
    assert cfg.run_dir == tmp_path / "home" / "runs" / "demo"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "demo").symlink_to(gray2color / "train")  # the run folder would be the training data
    with pytest.raises(ConfigError, match="inside data.root"):
        config_from_dict(_with(_with(_demo_dict(), "output_dir", str(tmp_path / "out")), "data.root",
                               str(gray2color / "train")))


def test_version_2_super_resolution_configs_migrate_rotate_to_rotate90(tmp_path):
    """Config version 3 calls SR's random quarter turns ``data.rotate90``, as the image-to-image
    datasets do: a version-2 config (inside an older checkpoint) keeps its setting, and a YAML file
    that still says ``data.rotate`` is told the new name."""
    from i2i.config import CONFIG_VERSION
    from i2i.recipes import migrate_config

    old = {"version": 2, "pipeline": "srgan", "data": {"root": "x", "crop_size": 32, "rotate": True}}
    new = migrate_config(old, 2)
    assert CONFIG_VERSION == 3 and new["version"] == 3
    assert new["data"]["rotate90"] is True and "rotate" not in new["data"] and old["data"]["rotate"] is True  # a copy
    assert config_from_dict(new).data.rotate90 is True
    with pytest.raises(ConfigError, match=r"'data.rotate' is called 'data.rotate90' in pipeline 'srgan'; rename it"):
        config_from_dict({"pipeline": "srgan", "data": {"root": "x", "rotate": True}})
    v1 = {"pipeline": "srgan", "model": {"generator": {"name": "srresnet"}},
          "data": {"root": "x", "crop_size": 32, "rotate": True}}
    assert migrate_config(v1, 1)["data"]["rotate90"] is True  # the first release's files too, through both migrations
