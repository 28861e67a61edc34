"""Shared fixtures: small paired data cut from the shipped photos, and tiny configs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(2)  # the CI machine has 2 shared cores


sys.path.insert(0, str(ROOT / "datasets"))  # the dataset builder scripts (make_paired, make_unpaired)
import make_paired  # noqa: E402


@pytest.fixture(scope="session")
def tiny_x2(tmp_path_factory) -> Path:
    """A tiny x2 upscaler (Real-ESRGAN's compact net, 712 parameters) as another project's weights file."""
    from i2i.nets.registry import build_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_x2") / "tiny_x2.pth"
    torch.save(build_generator("srvgg", scale=2, n_convs=1, base_channels=4, act="prelu").state_dict(), path)
    return path


@pytest.fixture(scope="session")
def photos() -> Path:
    return ROOT / "datasets" / "sample" / "photos"


@pytest.fixture(scope="session")
def gray2color(tmp_path_factory, photos) -> Path:
    """32-pixel grayscale -> colour pairs: train/ (60) and test/ (15), A/ + B/ folders."""
    out = tmp_path_factory.mktemp("gray2color")
    make_paired.build(photos, out, task="gray2color", size=32, n_train=12, n_test=3, seed=0)
    return out


@pytest.fixture(scope="session")
def sr_data(tmp_path_factory, photos) -> Path:
    """Super-resolution photos: train/ and test/ HR tiles of 64 pixels."""
    import make_sr

    out = tmp_path_factory.mktemp("sr")
    make_sr.build(photos, out, tile=64)
    return out


@pytest.fixture(scope="session")
def data_roots(tmp_path_factory, gray2color, photos) -> dict[type, Path]:
    """A data root for each kind of data section (tests/contract.py builds them)."""
    from contract import build_data_roots

    return build_data_roots(tmp_path_factory, gray2color, photos)


@pytest.fixture(scope="session")
def restore(tmp_path_factory, photos) -> Path:
    """32-pixel restoration pairs (degraded -> clean colour crops): train/ (60) and test/ (15)."""
    out = tmp_path_factory.mktemp("restore")
    make_paired.build(photos, out, task="restore", size=32, n_train=12, n_test=3, seed=0)
    return out


SEEDS = (0, 1, 2)
"""Learning claims hold for each of these seeds (each learning test runs all of them)."""


def tiny_config(tmp_path: Path, data_root: Path, **sections: Any):
    """A pix2pix config small enough for CPU tests; ``sections`` override per section.

    A ``pipeline`` other than pix2pix keeps only the data keys its data section has; a net
    override with another ``name`` replaces the net section instead of merging into it."""
    import dataclasses

    from i2i.recipes import config_from_dict, pipeline_class

    data: dict[str, Any] = {
        "name": "tiny",
        "output_dir": str(tmp_path / "runs"),
        "seed": 0,
        "model": {
            "generator": {"name": "unet", "num_downs": 5, "base_channels": 8, "in_channels": 1, "out_channels": 3},
            "discriminator": {"name": "patch", "n_layers": 2, "base_channels": 8},
        },
        "data": {"root": str(data_root / "train"), "val_root": str(data_root / "test"), "load_size": 36,
                 "crop_size": 32, "batch_size": 4, "num_workers": 0},
        "schedule": {"policy": "linear", "decay_start": 0},
        "train": {"epochs": None, "steps": 6, "log_every": 2, "sample_every": 1000, "checkpoint_every": 1000,
                  "progress": False},
    }
    pipe = pipeline_class(sections.get("pipeline", "pix2pix"))
    own = {f.name for f in dataclasses.fields(pipe.DataConfig)}
    data["data"] = {k: v for k, v in data["data"].items() if k in own}
    model = sections.get("model", {})
    for role in ("generator", "discriminator"):
        if (
            isinstance(model.get(role), dict)
            and model[role].get("name", data["model"][role]["name"]) != data["model"][role]["name"]
        ):
            data["model"][role] = {}
    for key, value in sections.items():
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, dict) and isinstance(data.get(key, {}).get(k), dict):
                    data[key][k] = {**data[key][k], **v}
                else:
                    data.setdefault(key, {})[k] = v
        else:
            data[key] = value
    return config_from_dict(data)


def leaf_paths(d: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf of a nested config dict (an empty dict counts as a leaf)."""
    out = []
    for k, v in d.items():
        p = f"{prefix}.{k}" if prefix else k
        out += leaf_paths(v, p) if isinstance(v, dict) and v else [p]
    return out


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """400 soft 32-pixel discs and squares (disc/ and square/ folders)."""
    import make_shapes

    out = tmp_path_factory.mktemp("shapes")
    make_shapes.build(out, n=400, size=32, seed=0)
    return out


def dcgan_config(make_config, tmp_path, root, **sections):
    """A small DCGAN config on 32-pixel gray images in ``root``; ``sections`` override."""
    model = {"generator": {"name": "dcgan", "out_channels": 1, "base_channels": 16, "latent_dim": 32,
                           "num_classes": 0, **sections.pop("generator", {})},
             "discriminator": {"name": "dcgan", "base_channels": 16, **sections.pop("discriminator", {})}}
    data = {"root": str(root), "val_root": None, "image_size": 32, "batch_size": 16, **sections.pop("data", {})}
    return make_config(tmp_path, root, pipeline="dcgan", model=model, data=data, **sections)


@pytest.fixture
def make_config():
    """The :func:`tiny_config` factory."""
    return tiny_config


@pytest.fixture(scope="session")
def trained(tmp_path_factory, gray2color) -> str:
    """Checkpoint of a tiny gray -> colour pix2pix trained for 3 steps."""
    import i2i

    cfg = tiny_config(tmp_path_factory.mktemp("trained"), gray2color, train={"steps": 3})
    return i2i.train(cfg)["checkpoint"]


def assert_exact_resume(straight, split, *, stop_at: int, parts: tuple[str, ...] = ("nets",)) -> tuple[dict, dict]:
    """Train ``straight`` in one go and ``split`` to ``stop_at`` then resume to the end;
    assert every tensor in ``parts`` of the two final checkpoints is bit-identical.
    Returns both checkpoints."""
    import i2i

    i2i.train(straight)
    t = i2i.Trainer(split)
    t.total_steps = stop_at  # an interruption right after the checkpoint at `stop_at`
    t.fit()
    i2i.train(split, resume="auto")
    a = torch.load(straight.run_dir / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(split.run_dir / "checkpoints" / "last.pt", weights_only=True)
    for part in parts:
        for net, sd in a[part].items():
            for k, v in sd.items():
                assert torch.equal(v, b[part][net][k]), f"{part}.{net}.{k}"
    return a, b


def tiny_dcgan_checkpoint(tmp_path: Path, n_images: int = 16) -> tuple[str, Path]:
    """A DCGAN (4 base channels, 16 px) trained one step on ``n_images`` generated shapes:
    ``(checkpoint, shapes folder)``."""
    import make_shapes

    import i2i
    from i2i.recipes import config_from_dict

    make_shapes.build(tmp_path / "shapes", n=n_images, size=16, seed=0)
    cfg = config_from_dict({"pipeline": "dcgan", "output_dir": str(tmp_path / "runs"),
                            "model": {"generator": {"name": "dcgan", "base_channels": 4},
                                      "discriminator": {"name": "dcgan", "base_channels": 4}},
                            "data": {"root": str(tmp_path / "shapes"), "image_size": 16, "num_workers": 0,
                                     "batch_size": 4},
                            "train": {"epochs": None, "steps": 1, "progress": False}})
    return i2i.train(cfg)["checkpoint"], tmp_path / "shapes"


def assert_every_parameter_gets_a_gradient(trainer) -> None:
    """One training step of ``trainer``; then every parameter of every optimizer holds a finite
    gradient, and every net's gradients are not all zero (a frozen net's parameters keep their
    ``requires_grad``, so a compiled module cannot drop gradients on a toggle: pytorch#139476)."""
    import math as _math

    trainer.train_step(next(trainer.batches()))
    for opt_name, opt in trainer.optimizers.items():
        params = [p for g in opt.param_groups for p in g["params"]]
        missing = [i for i, p in enumerate(params) if p.grad is None]
        assert not missing, f"optimizer {opt_name}: parameters {missing} got no gradient"
        assert all(bool(p.grad.isfinite().all()) for p in params), opt_name
    for name, net in trainer.pipeline.nets.items():
        norm = sum(float(p.grad.double().pow(2).sum()) for p in net.parameters() if p.grad is not None)
        assert norm > 0 and _math.isfinite(norm), f"net {name}: all gradients zero"
