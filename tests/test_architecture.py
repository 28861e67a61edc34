"""The shape ARCHITECTURE.md promises, as tests that fail when it breaks: imports go down the
layer table (strings naming modules counted), no import cycles, no function-level imports of i2i
modules, no module over 500 lines or function over 80; ``import i2i`` loads only what it uses;
every numeric option declares its range; a new metric or net option is one line where it belongs."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Annotated

import pytest
import torch
from torch import nn

import i2i
from i2i import metrics
from i2i.config import Config, ConfigError, NetConfig, OptimConfig, ScheduleConfig, TestConfig, TrainConfig
from i2i.evaluate import PAIRED, Metric, evaluate_paired
from i2i.nets.registry import DISCRIMINATORS, GENERATORS
from i2i.options import ImageChannels, Range, is_numeric, range_of
from i2i.pipelines.template import Template
from i2i.recipes import PIPELINES, pipeline_class

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import code_shape  # noqa: E402


def test_imports_go_down_the_layer_table_and_architecture_md_shows_it():
    shape = code_shape.scan(sorted((ROOT / "i2i").rglob("*.py")))
    assert code_shape.upward_imports(shape["edges"]) == []
    assert code_shape.layer_table() in (ROOT / "ARCHITECTURE.md").read_text(), (
        "run tools/code_shape.py --layers into ARCHITECTURE.md"
    )


def test_a_module_name_in_a_string_counts_as_an_import(tmp_path):
    """A lookup by name (``importlib`` on ``"i2i.x:Y"``) is an edge like an import: it cannot hide a cycle."""
    pkg = tmp_path / "i2i"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("TABLE = {'x': 'i2i.high:Thing'}\n")
    (pkg / "high.py").write_text("from .low import TABLE\n")
    shape = code_shape.scan(sorted(pkg.rglob("*.py")), root=tmp_path)
    assert shape["edges"]["i2i.low"] == {"i2i.high"}
    assert code_shape.strongly_connected(shape["edges"]) == [["i2i.high", "i2i.low"]]


def test_no_import_cycles_function_level_imports_or_oversized_code():
    shape = code_shape.scan(sorted((ROOT / "i2i").rglob("*.py")))
    assert code_shape.strongly_connected(shape["edges"]) == []
    assert shape["local_imports"] == [], "import i2i modules at module level (function level: optional extras only)"
    assert {m: n for m, n in shape["sizes"].items() if n > code_shape.MAX_MODULE_LINES} == {}
    assert shape["long_functions"] == []


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_import_i2i_loads_only_what_it_uses():
    """The package root resolves its public names on first use: ``import i2i`` is the version alone,
    and the nets with their tables load no data, training or video code (nor PyAV, albumentations)."""
    assert {m for m in _modules_after("import i2i") if m.startswith("i2i")} == {"i2i", "i2i._version"}
    loaded = _modules_after("from i2i.nets import UnetGenerator\nimport i2i.nets.registry")
    heavy = {"av", "albumentations", "cv2", "i2i.engine", "i2i.engine.trainer", "i2i.data", "i2i.pipelines",
             "i2i.config"}
    assert loaded & heavy == set()
    assert "i2i.engine.trainer" in _modules_after("import i2i\ni2i.train")  # resolved when used
    assert sorted(i2i.__all__) == sorted([*i2i._PUBLIC, *i2i._MODULES, "__version__"])
    assert all(getattr(i2i, name) is not None for name in i2i.__all__)


def _numeric_fields_without_range(cls: type, where: str) -> list[str]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return [
        f"{where}.{f.name}"
        for f in dataclasses.fields(cls)
        if is_numeric(hints[f.name]) and range_of(hints[f.name]) is None
    ]


def test_every_numeric_option_declares_its_range():
    sections = {"optim": OptimConfig, "schedule": ScheduleConfig, "train": TrainConfig, "test": TestConfig,
                "model.<net>": NetConfig, "<top level>": Config}
    for name, pipe in [*((n, pipeline_class(n)) for n in PIPELINES), ("template", Template)]:
        sections[f"{name} data"], sections[f"{name} loss"] = pipe.DataConfig, pipe.LossConfig
    missing = [m for where, cls in sections.items() for m in _numeric_fields_without_range(cls, where)]
    for table in (GENERATORS, DISCRIMINATORS):
        for name, cls in table.items():
            hints = typing.get_type_hints(cls.__init__, include_extras=True)
            params = inspect.signature(cls).parameters.values()
            missing += [
                f"{name}.{p.name}"
                for p in params
                if p.kind is p.KEYWORD_ONLY and is_numeric(hints.get(p.name)) and range_of(hints[p.name]) is None
            ]
    assert missing == [], "declare a Range in the annotation (i2i.options) of every numeric option"


class _TinyGenerator(nn.Module):
    """A new net in a test: its option ``depth`` carries its range in its annotation."""

    size_multiple = 1

    def __init__(self, *, in_channels: ImageChannels = 3, out_channels: ImageChannels = 3,
                 depth: Annotated[int, Range(1, 3)] = 1) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.body = nn.Sequential(*[nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3,
                                              padding=1) for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x))

    def example_inputs(self, batch: int) -> tuple[torch.Tensor]:
        return (torch.randn(batch, self.in_channels, 8, 8),)


def test_a_new_net_option_is_checked_by_its_annotation_alone(monkeypatch, tmp_path, gray2color, make_config):
    """Adding a net with a ranged option touched the net's own code and one registry line: the
    config loader needed no edit to type-check and range-check it."""
    monkeypatch.setitem(GENERATORS, "tiny", _TinyGenerator)
    g = {"name": "tiny", "in_channels": 1, "out_channels": 3}
    with pytest.raises(ConfigError, match=r"'model.generator.depth' is 5; allowed: \[1, 3\]"):
        make_config(tmp_path, gray2color, model={"generator": {**g, "depth": 5}})
    with pytest.raises(ConfigError, match="model.generator.depth' must be an integer"):
        make_config(tmp_path, gray2color, model={"generator": {**g, "depth": 1.5}})
    cfg = make_config(tmp_path, gray2color, model={"generator": {**g, "depth": 2}})
    assert len(pipeline_class("pix2pix").build_net(cfg, "G").body) == 2


def test_a_new_paired_metric_is_one_line_and_reaches_table_page_validation_and_best(monkeypatch, tmp_path, gray2color,
                                                                                    make_config, capsys):
    """One Metric line (plus its function) in the evaluation's list: validation records it,
    train.val_metric accepts it and best.pt follows it, i2i eval prints it, the page shows it."""
    mae8 = Metric("MAE8", lambda p, t: metrics.l1_error(p, t) * 255, "min", ".2f",
                  description="mean absolute error in 8-bit levels")
    monkeypatch.setattr(PAIRED, "metrics", (*PAIRED.metrics, mae8))
    cfg = make_config(tmp_path, gray2color, train={"steps": 4, "val_every": 2, "val_metric": "MAE8", "val_limit": 3,
                                                   "checkpoint_every": 2})
    summary = i2i.train(cfg)
    records = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if "val_MAE8" in r]
    assert [r["step"] for r in val] == [2, 4]
    for r in val:  # the new metric is the old one in other units: the same function list computed both
        assert r["val_MAE8"] == pytest.approx(255 * r["val_L1"], rel=1e-6)
    best = min(val, key=lambda r: r["val_MAE8"])
    assert summary["validation"]["metric"] == "MAE8" and summary["validation"]["step"] == best["step"]
    assert torch.load(cfg.run_dir / "checkpoints" / "best.pt", weights_only=True)["step"] == best["step"]

    out = tmp_path / "eval"
    result = evaluate_paired(summary["checkpoint"], gray2color / "test", out, limit=3)
    assert all(m["MAE8"] == pytest.approx(255 * m["L1"], rel=1e-6) for m in result["models"])
    assert "MAE8" in PAIRED.report(result).splitlines()[0]
    page = (out / "index.html").read_text()
    assert "MAE8" in page and "8-bit levels" in page
    assert "MAE8" in json.loads((out / "metrics.json").read_text())["models"][0]
    from i2i.cli import main

    assert main(["eval", summary["checkpoint"], "--data", str(gray2color / "test"), "--limit", "2"]) == 0
    assert "MAE8" in capsys.readouterr().out


def test_a_new_conversion_option_is_one_field_that_the_cli_and_the_run_read(monkeypatch, tmp_path, trained, gray2color,
                                                                            capsys):
    """A field added to ConvertOptions (here, in the test alone: no file of i2i touched) is a flag of
    ``i2i convert`` with its help, type and range, and reaches the conversion, which reads
    ``options.<field>`` where it uses it; a value out of its range is refused by flag."""
    from i2i import cli
    from i2i.convert import ConvertOptions
    from i2i.convert import run as convert_run
    from i2i.options import option

    @dataclasses.dataclass(frozen=True)
    class Options(ConvertOptions):
        jpeg_quality: Annotated[int, Range(1, 100)] = option(95, help="JPEG quality of the outputs")

    monkeypatch.setattr(cli, "ConvertOptions", Options)
    seen: list = []
    real = convert_run.run_jobs
    monkeypatch.setattr(convert_run, "run_jobs", lambda translate, jobs, options=None, **kw: seen.append(options)
                        or real(translate, jobs, options, **kw))
    argv = ["convert", trained, str(gray2color / "test" / "A"), str(tmp_path / "out"), "--quiet", "--workers", "0"]
    assert cli.main([*argv, "--jpeg-quality", "80"]) == 0
    assert isinstance(seen[0], Options) and seen[0].jpeg_quality == 80 and seen[0].workers == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["convert", "--help"])
    assert "JPEG quality of the outputs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main([*argv, "--jpeg-quality", "0"])
    assert "--jpeg-quality: 0 must be [1, 100]" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"jpeg_quality=101 \(--jpeg-quality\) must be a finite number in \[1, 100\]"):
        Options(jpeg_quality=101)  # the Python API checks the same range


def test_eval_options_are_declared_once_and_each_evaluation_takes_its_run_functions():
    from i2i.evaluate import EVALUATIONS, EvalOptions

    assert EVALUATIONS["paired"].options == ("mode", "direction", "limit", "lpips", "classical", "runtime")
    assert EVALUATIONS["super_resolution"].options == ("limit", "tile", "lpips", "runtime")
    assert EVALUATIONS["generation"].options == ("n", "features", "classifier")
    every = {f.name for f in dataclasses.fields(EvalOptions)}
    assert set().union(*(ev.options for ev in EVALUATIONS.values())) == every, "an option no evaluation takes"
    with pytest.raises(ValueError, match=r"--limit"):
        EvalOptions(limit=0)
