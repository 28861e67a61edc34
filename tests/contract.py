"""The registry contract every pipeline meets, as check functions: ``tests/test_registry.py`` runs
each over every registered pipeline and the two templates (the pipeline template, and the pipeline
template reading the dataset template), so a new method or data kind is tested without writing a
test. Helpers for the tests that build on it: :func:`build_data_roots`, :func:`example_config`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_exact_resume, tiny_config

import i2i
from i2i.config import Config
from i2i.data.generation import GenerationDataConfig
from i2i.data.paired import PairedDataConfig
from i2i.data.sr import SRDataConfig
from i2i.data.template import TemplateDataConfig, TemplateDataset
from i2i.data.unpaired import UnpairedDataConfig
from i2i.evaluate import EVALUATIONS, evaluation
from i2i.pipelines.template import Template
from i2i.recipes import pipeline_class


class DataTemplate(Template):
    """The pipeline template reading the dataset template (:mod:`i2i.data.template`): all a new
    data kind adds to a pipeline is its section and ``make_dataset``."""

    name = "data_template"
    DataConfig = TemplateDataConfig
    example = {**Template.example, "data": {**Template.example["data"], "noise": 0.1}}

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> TemplateDataset:
        g = cfg.model.generator
        return TemplateDataset(root or cfg.data.root, cfg.data, in_channels=g.arg("in_channels"),
                               out_channels=g.arg("out_channels"),
                               train=train, seed=cfg.seed)


TEMPLATES = {"template": Template, "data_template": DataTemplate}
"""Registered (one line each in PIPELINES) by the tests that run the contract on them."""


def build_data_roots(tmp_path_factory, gray2color: Path, photos: Path) -> dict[type, Path]:
    """A data root for each kind of data section (a new pipeline reusing one is covered)."""
    import shutil

    import make_shapes
    import make_unpaired

    unpaired = tmp_path_factory.mktemp("unpaired")
    make_unpaired.build(photos, unpaired, transform="negative", size=32, n_train=3, n_test=1, seed=0)
    shapes = tmp_path_factory.mktemp("shapes")
    make_shapes.build(shapes, n=32, size=16, seed=0)
    hr = tmp_path_factory.mktemp("hr")
    for p in sorted((gray2color / "train" / "B").glob("*.png"))[:8]:
        shutil.copy(p, hr / p.name)
    return {PairedDataConfig: gray2color / "train", UnpairedDataConfig: unpaired, SRDataConfig: hr,
            GenerationDataConfig: shapes,
            TemplateDataConfig: photos}


def example_config(name: str, tmp_path: Path, data_roots: dict[type, Path], val_root: Path | None = None, **train):
    pipe = pipeline_class(name)
    root = next((r for cls, r in data_roots.items() if issubclass(pipe.DataConfig, cls)), None)
    assert root is not None, f"add a data builder for {pipe.DataConfig.__name__} to data_roots"
    ex = pipe.example
    model = ex.get("model", {})
    data = {"root": str(root), "val_root": str(val_root) if val_root else None, "num_workers": 0, **ex.get("data", {})}
    train = {"steps": 4, "checkpoint_every": 2, "log_every": 1, **train}
    return tiny_config(tmp_path, root, pipeline=name, model=model, data=data, loss=ex.get("loss", {}), train=train)


def check_declares_itself(name: str) -> None:
    pipe = pipeline_class(name)
    assert pipe.name == name and pipe.kind in ("translation", "generation")
    assert dataclasses.is_dataclass(pipe.DataConfig) and dataclasses.is_dataclass(pipe.LossConfig)
    if pipe.kind == "translation":
        assert pipe.directions and set(pipe.directions.values()) <= set(pipe.net_names)
    else:
        assert not pipe.directions and pipe.sampled_net in pipe.net_names
    assert pipe.evaluation in EVALUATIONS
    assert pipe.example, "declare a tiny example config: the registry tests train it"


def check_trains_one_step_and_every_parameter_moves(name: str, tmp_path: Path, data_roots: dict) -> None:
    cfg = example_config(name, tmp_path, data_roots, steps=1)
    trainer = i2i.Trainer(cfg)
    before = {n: [p.detach().clone() for p in net.parameters()] for n, net in trainer.pipeline.nets.items()}
    logs = trainer.train_step(next(trainer.batches()))
    assert logs and all(torch.isfinite(v) for v in logs.values())
    optimised = {id(p) for g in trainer.pipeline.param_groups().values() for p in g["params"]}
    for n, net in trainer.pipeline.nets.items():
        for p, p0 in zip(net.parameters(), before[n]):
            if id(p) in optimised:
                assert not torch.equal(p, p0), f"{name}: a parameter of {n} did not move"


def check_r1_penalty_and_n_critic(name: str, tmp_path: Path, data_roots: dict) -> None:
    """loss.r1_weight adds a logged R1 term to every pipeline's D step; optim.n_critic = 3 moves
    the generator side only on every third iteration, the discriminator on each."""
    cfg = example_config(name, tmp_path, data_roots, steps=6)
    cfg.loss.r1_weight, cfg.optim.n_critic = 1.0, 3
    trainer = i2i.Trainer(cfg)
    if "D" not in trainer.optimizers:
        pytest.skip(f"{name}'s example trains no discriminator")
    groups = trainer.pipeline.param_groups()
    moved: dict[str, list[bool]] = {"G": [], "D": []}
    batches = trainer.batches()
    for _ in range(6):
        before = {k: [p.detach().clone() for p in groups[k]["params"]] for k in moved}
        logs = trainer.train_step(next(batches))
        r1 = [float(v) for k, v in logs.items() if k.endswith("_r1")]
        assert r1 and all(v > 0 and np.isfinite(v) for v in r1), logs
        for k in moved:
            moved[k].append(any(not torch.equal(p, p0) for p, p0 in zip(groups[k]["params"], before[k])))
    assert moved == {"G": [False, False, True, False, False, True], "D": [True] * 6}


def check_resumes_exactly(name: str, tmp_path: Path, data_roots: dict) -> None:
    common = {"ema_decay": 0.5}
    straight = example_config(name, tmp_path / "a", data_roots, **common)
    split = example_config(name, tmp_path / "b", data_roots, **common)
    a, _ = assert_exact_resume(straight, split, stop_at=2, parts=("nets", "ema"))
    assert a["step"] == 4 and a["config"]["version"] == 3


def check_validates_keeps_the_best_and_resumes_exactly(name: str, tmp_path: Path, data_roots: dict,
                                                       gray2color: Path) -> None:
    pipe = pipeline_class(name)
    # Held-out data with known answers: pairs for translation (CycleGAN too), HR images, real images.
    val_root = data_roots[SRDataConfig] if pipe.evaluation == "super_resolution" else (
        data_roots[GenerationDataConfig] if pipe.kind == "generation" else gray2color / "test")
    common = {"ema_decay": 0.5, "val_every": 1, "val_limit": 3, "val_features": "pixels"}

    straight, split = (example_config(name, tmp_path / sub, data_roots, val_root=val_root, **common) for sub in "ab")
    a, b = assert_exact_resume(straight, split, stop_at=2, parts=("nets", "ema"))
    names = evaluation(pipe.evaluation).metric_names(straight)
    metric = evaluation(pipe.evaluation).default_metric
    records = [[json.loads(x) for x in (c.run_dir / "metrics.jsonl").read_text().splitlines()] for c in (straight,
                                                                                                         split)]
    val = [[r for r in rs if any(k.startswith("val_") for k in r)] for rs in records]
    assert [r["step"] for r in val[0]] == [1, 2, 3, 4]
    assert val[0] == val[1], "a resumed run must validate exactly as an uninterrupted one"
    logged = {k[4:] for k in val[0][0] if k.startswith("val_")}
    assert set(names) <= logged <= set(names) | set(evaluation(pipe.evaluation).validator.diagnostics)
    assert all(np.isfinite(r[f"val_{metric}"]) for r in val[0])
    # best.pt is the best step by the default metric, and both runs agree on it.
    values = [r[f"val_{metric}"] for r in val[0]]
    pick = max if names[metric] == "max" else min
    best_step = val[0][values.index(pick(values))]["step"]
    assert a["best"] == b["best"] == {"metric": metric, "value": pick(values), "step": best_step}
    kept = torch.load(straight.run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert kept["step"] == best_step and kept["best"]["step"] == best_step


def check_every_command_works_or_refuses_clearly(name: str, tmp_path: Path, data_roots: dict, capsys) -> None:
    from i2i.cli import main

    pipe = pipeline_class(name)
    cfg = example_config(name, tmp_path, data_roots, steps=1)
    ckpt = i2i.train(cfg)["checkpoint"]
    export = str(tmp_path / "export.pt")
    images = tmp_path / "images"
    i2i.write_image(images / "x.png", np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8))
    assert main(["info", ckpt]) == 0 and f"{name} ({pipe.kind})" in capsys.readouterr().out
    assert main(["export", ckpt, "-o", export]) == 0
    assert main(["export", ckpt, "-o", str(tmp_path / "folder"), "--safetensors"]) == 0
    capsys.readouterr()
    # The safetensors model folder gives what the .pt export gives.
    if pipe.kind == "translation":
        pt, folder = i2i.Translator.from_checkpoint(export), i2i.Translator.from_pretrained(tmp_path / "folder")
        x = torch.rand(1, pt.in_channels, 16, 16) * 2 - 1
        assert torch.equal(pt(x), folder(x))
    else:
        pt, folder = i2i.Generator.from_checkpoint(export), i2i.Generator.from_pretrained(tmp_path / "folder")
        assert torch.equal(pt.sample(2, seed=1), folder.sample(2, seed=1))

    def refused(argv: list[str], *needles: str) -> None:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "Traceback" not in err, err  # one paragraph
        for needle in needles:
            assert needle in err, err

    convert = ["convert", export, str(images), str(tmp_path / "out"), "--quiet", "--workers", "0"]
    sample = ["sample", export, str(tmp_path / "samples"), "--n", "2"]
    if pipe.kind == "translation":
        assert main(convert) == 0 and (tmp_path / "out" / "x.png").is_file()
        refused(sample, "i2i convert", export)
        with pytest.raises(i2i.CheckpointError, match="i2i.Translator"):
            i2i.Generator.from_checkpoint(export)
    else:
        assert main(sample) == 0 and len(list((tmp_path / "samples").glob("*.png"))) == 2
        refused(convert, "i2i sample", export)
        with pytest.raises(i2i.CheckpointError, match="i2i.Generator"):
            i2i.Translator.from_checkpoint(export)
    wrong = "--tile" if pipe.evaluation == "generation" else "--n"
    refused(["eval", ckpt, "--data", str(cfg.data.root), wrong, "16"], wrong, "do not apply", name)
