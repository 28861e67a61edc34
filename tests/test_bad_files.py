"""One loader for every file argument: empty, truncated, folder, foreign and malicious files get a
one-paragraph error naming the file (exit 2) from every command, and nothing is written."""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path

import pytest

from i2i.cli import main
from i2i.config import dump_config


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _commands(f: Path, tmp: Path, data: Path, cfg_file: Path) -> dict[str, list[str]]:
    return {
        "info": ["info", str(f)],
        "convert": ["convert", str(f), str(data / "A"), str(tmp / "out"), "--quiet", "--workers", "0"],
        "eval": ["eval", str(f), "--data", str(data)],
        "export": ["export", str(f), "-o", str(tmp / "x.pt")],
        "sample": ["sample", str(f), str(tmp / "samples"), "--n", "1"],
        "train --resume": ["train", str(cfg_file), "--resume", str(f)],
        "import-weights": ["import-weights", str(f), "-o", str(tmp / "imported.pt")],
    }


def _refused_by_all(f: Path, tmp: Path, data: Path, cfg_file: Path, capsys) -> None:
    for name, argv in _commands(f, tmp, data, cfg_file).items():
        assert main(argv) == 2, f"{name} on {f.name}"
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err and err.count("\n") == 0, f"{name}: {err}"
        assert str(f) in err, f"{name} does not name the file: {err}"
    written = [p for p in tmp.iterdir() if p.name in ("out", "x.pt", "samples", "imported.pt", "runs")]
    assert not written, f"{f.name}: {written} written"


@pytest.fixture
def setup(tmp_path, gray2color, make_config):
    cfg = make_config(tmp_path / "cfgdir", gray2color)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(dump_config(cfg).replace(str(tmp_path / "cfgdir" / "runs"), str(tmp_path / "runs")))
    return cfg_file


def test_truncated_checkpoints_at_random_offsets(trained, tmp_path, gray2color, setup, capsys):
    data = Path(trained).read_bytes()
    rng = random.Random(0)
    offsets = sorted({0, 1, 10, 100, len(data) - 1, *(rng.randrange(len(data)) for _ in range(20))})
    for n in offsets:
        f = tmp_path / f"cut_{n}.pt"
        f.write_bytes(data[:n])
        _refused_by_all(f, tmp_path, gray2color / "test", setup, capsys)


def test_folders_foreign_and_malicious_files(tmp_path, gray2color, setup, capsys):
    marker = tmp_path / "pwned"
    files = {
        "random.pt": bytes(random.Random(1).randrange(256) for _ in range(5000)),
        "pickle.pt": pickle.dumps(_Payload(marker)),
        "dict.pt": pickle.dumps({"a": 1}),
        "config.yaml": b"name: x\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with zipfile.ZipFile(tmp_path / "archive.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Payload(marker)))
    (tmp_path / "folder").mkdir()
    paths = [tmp_path / n for n in files] + [tmp_path / "archive.pt", tmp_path / "folder"]
    for f in paths:
        _refused_by_all(f, tmp_path, gray2color / "test", setup, capsys)
    assert not marker.exists(), "a file ran code"
