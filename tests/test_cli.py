"""The command line as a user meets it: help, version, argument checks, pipes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from i2i.cli import build_parser, main


def test_version_names_i2i_torch_and_python(capsys):
    import i2i

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"i2i {i2i.__version__} (torch ") and "Python 3." in out


@pytest.mark.parametrize("command,default",
                         [("convert", "(default: 8)"), ("sample", "(default: 64)"), ("eval", "(default: auto)"),
                          ("train", "fresh run (default: None)")])
def test_help_shows_the_defaults(command, default):
    text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    assert default in text


@pytest.mark.parametrize("argv,flag", [(["sample", "x.pt", "out", "--n", "0"], "--n"),
                                       (["convert", "x.pt", "in", "out", "--batch-size", "0"], "--batch-size"),
                                       (["convert", "x.pt", "in", "out", "--workers", "-1"], "--workers"),
                                       (["sample", "x.pt", "out", "--format", "gif"], "--format"),
                                       (["eval", "x.pt", "--data", "d", "--limit", "zero"], "--limit")])
def test_bad_numbers_and_formats_are_refused_by_the_parser_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_sample_format_may_be_written_with_a_dot(tmp_path, capsys):
    from conftest import tiny_dcgan_checkpoint

    ckpt, _ = tiny_dcgan_checkpoint(tmp_path, n_images=8)
    assert main(["sample", ckpt, str(tmp_path / "s"), "--n", "2", "--format", ".PNG"]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["sample_00000.png", "sample_00001.png"]


def test_a_reader_that_stops_early_gets_no_traceback(trained):
    """``i2i info CKPT | head -1``: the reader closes the pipe before i2i has written."""
    proc = subprocess.Popen([sys.executable, "-m", "i2i", "info", trained], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # gone before the (slow) start-up finishes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_crop_the_generator_cannot_take_is_a_config_error_naming_sizes_that_work(tmp_path, gray2color, make_config,
                                                                                   capsys):
    from i2i.config import ConfigError, dump_config

    with pytest.raises(ConfigError,
                       match=r"data.crop_size=40 does not fit generator G \(unet\).*multiples of 32; use 32 or 64"):
        make_config(tmp_path, gray2color, data={"crop_size": 40, "load_size": 44})
    cfg = make_config(tmp_path, gray2color)
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_config(cfg).replace("crop_size: 32", "crop_size: 40").replace("load_size: 36",
                                                                                       "load_size: 44"))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "data.crop_size=40" in err and err.count("\n") == 1


def test_the_wheel_ships_py_typed_and_every_module(tmp_path):
    """``pip install .`` gets the type marker (PEP 561) and the whole package."""
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(root),
                        "-w", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("i2i-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "i2i/py.typed" in names and "i2i/download.py" in names and "i2i/engine/trackers.py" in names


def test_translator_and_generator_say_what_they_are(trained):
    import i2i

    text = repr(i2i.Translator.from_checkpoint(trained, device="cpu"))
    assert text.startswith("Translator(pix2pix a_to_b, UnetGenerator "
                           "1->3 ch") and "weights=raw" in text and "device=cpu" in text
