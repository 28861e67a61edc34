"""Attacks that must fail: no file runs code, no write escapes the folder the user chose."""

from __future__ import annotations

import os

import numpy as np
import pytest

import i2i
from i2i.cli import main
from i2i.config import ConfigError
from i2i.recipes import config_from_dict, load_config


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "in"
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.png"):
        i2i.write_image(root / name, rng.integers(0, 256, (20, 20), dtype=np.uint8))
    return root


def _files(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("pattern",
                         ["../../{stem}{ext}", "x/../../{stem}{ext}", "/tmp/i2i_escape_{stem}{ext}", "..",
                          "sub/{stem}{ext}"])
def test_an_output_name_cannot_leave_the_output_folder(trained, images, tmp_path, pattern, capsys):
    before = _files(tmp_path)
    assert main(["convert", trained, str(images), str(tmp_path / "out" / "deep"), "--quiet", "--name", pattern]) == 2
    assert "plain file name" in capsys.readouterr().err or pattern == ".."
    assert _files(tmp_path) == before and not os.path.exists("/tmp/i2i_escape_a.png")


def test_a_symbolic_link_in_the_output_folder_is_not_written_through(trained, images, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(elsewhere, target_is_directory=True)
    assert main(["convert", trained, str(images), str(tmp_path / "out"), "--quiet", "--workers", "0"]) == 2
    assert "outside the output folder" in capsys.readouterr().err
    assert not list(elsewhere.iterdir()) and not (tmp_path / "out" / "a.png").exists()


def test_a_file_or_a_list_is_not_converted_among_its_inputs(trained, images, capsys):
    assert main(["convert", trained, str(images / "a.png"), str(images), "--quiet"]) == 2
    (images / "list.txt").write_text("a.png\nsub/b.png\n")
    assert main(["convert", trained, str(images / "list.txt"), str(images / "sub"), "--quiet"]) == 2
    assert capsys.readouterr().err.count("is the folder of the input files") == 2
    assert _files(images) == {"a.png", "sub/b.png", "list.txt"}
    # A list entry that climbs out of the list's folder still lands inside the output folder.
    (images / "up.txt").write_text("../in/a.png\n")
    assert main(["convert", trained, str(images / "up.txt"), str(images.parent / "out2"), "--quiet", "--workers",
                 "0"]) == 0
    assert _files(images.parent / "out2") == {"a.png"}


@pytest.mark.parametrize("change,needle",
                         [({"name": "../escaped"}, "plain folder name"), ({"name": "/abs/run"}, "plain folder name"),
                          ({"output_dir": "/"}, "filesystem root"), ({"name": ".."}, "plain folder name")])
def test_a_run_folder_cannot_escape_or_be_the_root(tmp_path, gray2color, make_config, change, needle):
    with pytest.raises(ConfigError, match=needle):
        make_config(tmp_path, gray2color, **change)


def test_a_run_folder_inside_the_training_data_is_refused(tmp_path, gray2color, make_config):
    with pytest.raises(ConfigError, match="inside data.root"):
        make_config(tmp_path, gray2color, output_dir=str(gray2color / "train" / "runs"))
    assert not (gray2color / "train" / "runs").exists()


def test_a_yaml_bomb_is_refused_before_it_expands_and_is_not_echoed(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\ntrain: {steps: *a9}\n")
    with pytest.raises(ConfigError) as e:
        load_config(bomb)
    assert "anchors and aliases" in str(e.value) and len(str(e.value)) < 400
    with pytest.raises(ConfigError, match="anchors and aliases"):
        config_from_dict({"pipeline": "pix2pix"}, ["train.steps=" + "\n".join(lines[:8]).replace("\n", "\n")])
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &a [*a]\n")
    with pytest.raises(ConfigError):
        load_config(loop)


def test_a_long_bad_value_is_shortened_in_the_message(tmp_path, gray2color, make_config):
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, gray2color, train={"steps": "x" * 10_000})
    assert "train.steps" in str(e.value) and len(str(e.value)) < 300


def test_python_tags_in_a_config_are_not_run(tmp_path):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg)
    assert not marker.exists()
