"""Tests over the registry: every registered network and pipeline is tested without writing a test.

Networks: forward on their own ``example_inputs``, backward, and every parameter receives a
gradient. Pipelines, and the two templates (the pipeline template; the pipeline template on the
dataset template): the registry contract of ``tests/contract.py`` (one step with every parameter
moving, R1 and ``n_critic``, exact resume, validation with ``best.pt``, every command), then what
the engine promises every pipeline (no host reads in a step, the caches, augmentation).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import contract
import numpy as np
import pytest
import torch
from conftest import assert_every_parameter_gets_a_gradient, assert_exact_resume
from contract import TEMPLATES, example_config
from torch.utils._python_dispatch import TorchDispatchMode

import i2i
from i2i.data import cache as cache_module
from i2i.data.base import DataError
from i2i.engine import feed as feed_module
from i2i.nets.registry import DISCRIMINATORS, GENERATORS, resolve_net
from i2i.recipes import PIPELINES, pipeline_class

PACKAGE = str(Path(i2i.__file__).parent) + "/"
NETS = [("generator", n) for n in GENERATORS] + [("discriminator", n) for n in DISCRIMINATORS]


def _small(role: str, name: str) -> torch.nn.Module:
    """The architecture at its defaults, with 4 base channels where it has the option."""
    import inspect

    cls, _ = resolve_net(role, name)
    kw = {"base_channels": 4} if "base_channels" in inspect.signature(cls).parameters else {}
    build = i2i.build_generator if role == "generator" else i2i.build_discriminator
    return build(name, **kw)


@pytest.mark.parametrize("role,name", NETS, ids=[f"{r}-{n}" for r, n in NETS])
def test_every_registered_net_runs_forward_and_backward_and_trains_every_parameter(role, name):
    torch.manual_seed(0)
    net = _small(role, name).train()
    inputs = net.example_inputs(2)
    out = net(*inputs)
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    if role == "generator" and out.dim() == 4:
        # tanh outputs; the SR nets' are linear, as published
        assert out.abs().max() <= 1.0 + 1e-6 or getattr(net, "scale", 1) > 1
    # A random projection, so that a final norm layer's mean subtraction cannot zero the gradient.
    (out * torch.randn_like(out)).sum().backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generators_carry_what_inference_reads(name):
    net = _small("generator", name)
    assert isinstance(net.out_channels, int)
    if name == "dcgan":
        assert net.latent_dim > 0 and net.prior in ("gaussian", "uniform")
    else:
        assert isinstance(net.in_channels, int) and int(getattr(net, "size_multiple", 1)) >= 1


# ------------------------------------------------------------------------ pipelines: the contract
CONTRACT = [*PIPELINES, *TEMPLATES]


@pytest.fixture(autouse=True)
def templates_registered(monkeypatch):
    """The templates' one line each in PIPELINES: all a new method adds outside its own files."""
    for name, cls in TEMPLATES.items():
        monkeypatch.setitem(PIPELINES, name, cls)


@pytest.mark.parametrize("name", CONTRACT)
def test_every_pipeline_declares_itself(name):
    contract.check_declares_itself(name)


@pytest.mark.parametrize("name", CONTRACT)
def test_every_pipeline_trains_one_step_on_its_example_and_every_parameter_moves(name, tmp_path, data_roots):
    contract.check_trains_one_step_and_every_parameter_moves(name, tmp_path, data_roots)


@pytest.mark.parametrize("name", CONTRACT)
def test_every_pipeline_takes_the_r1_penalty_and_n_critic(name, tmp_path, data_roots):
    contract.check_r1_penalty_and_n_critic(name, tmp_path, data_roots)


@pytest.mark.parametrize("name", CONTRACT)
@pytest.mark.numerics
def test_every_pipeline_resumes_exactly(name, tmp_path, data_roots):
    contract.check_resumes_exactly(name, tmp_path, data_roots)


@pytest.mark.parametrize("name", CONTRACT)
@pytest.mark.numerics
def test_every_pipeline_validates_with_its_own_metrics_keeps_the_best_and_resumes_exactly(name, tmp_path, data_roots,
                                                                                          gray2color):
    contract.check_validates_keeps_the_best_and_resumes_exactly(name, tmp_path, data_roots, gray2color)


@pytest.mark.parametrize("name", CONTRACT)
def test_every_command_works_or_refuses_clearly_for_every_pipeline(name, tmp_path, data_roots, capsys):
    contract.check_every_command_works_or_refuses_clearly(name, tmp_path, data_roots, capsys)


# ------------------------------------------------------------------------ pipelines: what the engine promises
class HostReads(TorchDispatchMode):
    """Counts what would make a CUDA step wait for the device: reading a value (``item``,
    ``bool``, ``float``, ``int``: ``aten._local_scalar_dense`` / ``is_nonzero``) and copies to
    the host (``.cpu()``, ``.tolist()``, ``.numpy()``, patched: on a CPU they dispatch nothing).
    Exempt, because they stay on the host on any device: reads of the image pool's own random
    draws (its generator is a CPU one, checked) and of Adam's step counters (kept on the CPU
    unless ``capturable`` or ``fused``; ``exempt`` recognises them by storage)."""

    READS = ("aten::_local_scalar_dense", "aten::is_nonzero", "aten::equal", "aten::allclose")

    def __init__(self, exempt=lambda t: False) -> None:
        super().__init__()
        self.exempt = exempt
        self.calls: list[str] = []
        self.active = False

    def note(self, what: str) -> None:
        stack = traceback.extract_stack()[:-2]
        ours = [f for f in stack if f.filename.startswith(PACKAGE)]
        if ours and ours[-1].filename.endswith("pool.py"):
            return
        where = f"{ours[-1].filename}:{ours[-1].lineno}" if ours else "?"
        self.calls.append(f"{what} at {where} (innermost: {stack[-1].filename}:{stack[-1].lineno} {stack[-1].name})")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name in self.READS and not self.exempt(args[0]):
            self.note(func._schema.name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", list(PIPELINES))
@pytest.mark.parametrize("toolbox", ["plain", "r1-ncritic", "augment"])
def test_no_training_step_reads_from_the_device(name, toolbox, tmp_path, data_roots, monkeypatch):
    """Between two log points a step never waits for the device: losses are summed and checked
    for NaN on the device (read once per log point). Counted over whole training steps."""
    cfg = example_config(name, tmp_path, data_roots, steps=5, log_every=5, checkpoint_every=1000)
    if toolbox == "r1-ncritic":
        cfg.loss.r1_weight, cfg.optim.n_critic = 1.0, 2
    if toolbox == "augment":  # with ADA's adjustment of p on the 4th step
        for k, v in AUGMENT.items():
            setattr(cfg.loss, k, v)
    trainer = i2i.Trainer(cfg)
    for pool in getattr(trainer.pipeline, "pools", {}).values():
        assert pool.rng.device.type == "cpu"

    def adam_step_counter(t: torch.Tensor) -> bool:
        steps = {
            st["step"].data_ptr() for opt in trainer.optimizers.values() for st in opt.state.values() if "step" in st
        }
        return t.device.type == "cpu" and t.numel() == 1 and t.data_ptr() in steps

    counter, step = HostReads(adam_step_counter), trainer.train_step
    for method in ("cpu", "tolist", "numpy"):
        real = getattr(torch.Tensor, method)

        def counted(self, *a, _real=real, _name=method, **k):
            if counter.active:
                counter.note(f".{_name}()")
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, method, counted)

    def counted_step(batch):
        counter.active = True
        try:
            with counter:
                return step(batch)
        finally:
            counter.active = False

    trainer.train_step = counted_step
    summary = trainer.fit()
    assert summary["step"] == 5 and all(np.isfinite(v) for v in summary["losses"].values())
    assert counter.calls == [], "\n".join(counter.calls)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_memory_cache_gives_the_same_items_and_decodes_each_file_once(name, tmp_path, data_roots, monkeypatch):
    cfg = example_config(name, tmp_path, data_roots)
    pipe = pipeline_class(name)
    plain, cached = pipe.make_dataset(cfg, train=True), pipe.make_dataset(cfg, train=True)
    reads: list[str] = []
    real = cache_module.read_image
    monkeypatch.setattr(cache_module, "read_image", lambda p: reads.append(str(p)) or real(p))
    cache = cached.cache_in_memory()
    files = sorted({str(p) for p in cached.image_files()})
    assert files and sorted(reads) == files and len(cache) == len(files) and cache.nbytes > 0  # each file once
    reads.clear()
    for epoch in (0, 1):
        for i in range(len(plain)):
            a, b = plain[(epoch, i)], cached[(epoch, i)]
            assert a.keys() == b.keys()
            for k in a:
                assert torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k], (epoch, i, k)
    assert reads == []  # two epochs of augmentation, nothing decoded again
    with pytest.raises(ValueError, match="read-only"):
        next(iter(cache.images.values()))[0, 0] = 0  # shared by every epoch and worker: never written


def test_memory_cache_trains_with_workers_and_refuses_what_does_not_fit(tmp_path, data_roots, monkeypatch):
    cfg = example_config("pix2pix", tmp_path, data_roots, steps=2)
    cfg.data.cache, cfg.data.num_workers = "memory", 2
    trainer = i2i.Trainer(cfg)
    assert any("cache: memory" in line and "decoded once" in line for line in trainer.banner())
    assert np.isfinite(list(trainer.fit()["losses"].values())).all()
    monkeypatch.setattr(feed_module, "available_bytes", lambda device: 100_000)  # 50 kB for the cache
    other = example_config("pix2pix", tmp_path / "small", data_roots, steps=2)
    other.data.cache = "memory"
    with pytest.raises(DataError, match=r"data.cache: memory cannot hold .* over the 48.8 KiB .*set data.cache: none"):
        i2i.Trainer(other)
    assert not (other.run_dir / "checkpoints").exists()


@pytest.mark.parametrize("name", list(PIPELINES))
def test_every_trained_parameter_gets_a_gradient(name, tmp_path, data_roots):
    trainer = i2i.Trainer(example_config(name, tmp_path, data_roots, steps=1))
    assert_every_parameter_gets_a_gradient(trainer)
    trainer.feed.close()


def _device_batches(dataset, keys: list, batch_size: int):
    from i2i.data.device import DeviceBatches, DeviceImages

    class Keys(list):
        pass

    store = DeviceImages(dataset.device_keys(), dataset.device_image, torch.device("cpu"))
    return DeviceBatches(dataset, Keys(keys), batch_size, store), store


@pytest.mark.parametrize("name", list(PIPELINES))
def test_device_cache_makes_the_loader_batches(name, tmp_path, data_roots):
    """``data.cache: device``: the same items, crops, flips and turns as the loader path (one
    draw per item from ``(seed, epoch, index)``), pixels within one 8-bit level where a resize
    interpolates (cv2's fixed-point cubic there, float bicubic here; measured here: at most one
    level), bit-equal where nothing is resized."""
    cfg = example_config(name, tmp_path, data_roots)
    pipe = pipeline_class(name)
    dataset = pipe.make_dataset(cfg, train=True)
    dataset.cache_in_memory()
    keys = [(epoch, i) for epoch in (0, 1) for i in range(len(dataset))]
    batches, store = _device_batches(dataset, keys, 3)
    assert store.nbytes > 0 and len(store) >= 1
    made = list(batches)
    assert len(made) == len(batches) == -(-len(keys) // 3)
    resized = getattr(cfg.data, "preprocess", None) == "resize_and_crop" and cfg.data.load_size != cfg.data.crop_size
    for start, got in zip(range(0, len(keys), 3), made):
        want = torch.utils.data.default_collate([dataset[k] for k in keys[start : start + 3]])
        assert got.keys() == want.keys()
        for k, v in want.items():
            if not isinstance(v, torch.Tensor) or not v.is_floating_point():
                assert (torch.equal(got[k], v) if isinstance(v, torch.Tensor) else got[k] == v), k
                continue
            assert got[k].shape == v.shape and got[k].dtype == v.dtype, k
            levels = ((got[k] - v).abs() * 127.5).max().item()
            if resized or k == "input" and name == "srgan":  # SR's LR is made after the turns here, before them there
                assert levels <= 1.0 + 1e-3, (k, levels)
                assert ((got[k] - v).abs() * 127.5 > 0.5).float().mean() < 0.05, k  # rounding ties, not other crops
            else:
                assert levels < 1e-4, (k, levels)


@pytest.mark.parametrize("rotate90", [False, True])
def test_device_cache_crops_equal_the_loaders_exactly_without_a_resize(tmp_path, data_roots, rotate90):
    cfg = example_config("pix2pix", tmp_path, data_roots)
    cfg.data.preprocess, cfg.data.crop_size, cfg.data.rotate90 = "crop", 32, rotate90
    dataset = pipeline_class("pix2pix").make_dataset(cfg, train=True)
    keys = [(epoch, i) for epoch in range(3) for i in range(len(dataset))]
    batches, _ = _device_batches(dataset, keys, len(keys))
    got = next(iter(batches))
    want = torch.utils.data.default_collate([dataset[k] for k in keys])
    assert torch.equal(got["input"], want["input"]) and torch.equal(got["target"], want["target"])
    flipped = [dataset.device_item(k).images["input"][1].flip for k in keys]
    assert any(flipped) and not all(flipped)  # both kinds drawn, and they matched
    turns = {dataset.device_item(k).images["input"][1].quarter_turns for k in keys}
    assert turns == ({0, 1, 2, 3} if rotate90 else {0})


@pytest.mark.numerics
def test_device_cache_trains_resumes_exactly_and_says_so(tmp_path, data_roots, monkeypatch):
    common = {"ema_decay": 0.5}
    straight = example_config("cyclegan", tmp_path / "a", data_roots, **common)
    split = example_config("cyclegan", tmp_path / "b", data_roots, **common)
    straight.data.cache = split.data.cache = "device"
    assert_exact_resume(straight, split, stop_at=2, parts=("nets", "ema"))
    cfg = example_config("cyclegan", tmp_path / "c", data_roots, steps=1)
    cfg.data.cache = "device"
    trainer = i2i.Trainer(cfg)
    assert isinstance(trainer.feed.loader, __import__("i2i.data.device", fromlist=["DeviceBatches"]).DeviceBatches)
    assert any("cache: device" in line and "augmented there in batches" in line for line in trainer.banner())
    trainer.feed.close()
    # A cache that does not fit is refused, naming the sizes and what to set instead.
    small = example_config("cyclegan", tmp_path / "d", data_roots, steps=1)
    small.data.cache = "device"
    monkeypatch.setattr(feed_module.TrainingFeed, "_budget", lambda self, device,
                        cache: 1_000 if cache == "device" else None)
    with pytest.raises(DataError,
                       match=r"data.cache: device cannot hold the training images: about .* for all \d+, over the "
                             r"1000 bytes it may use on cpu; set data.cache: memory"):
        i2i.Trainer(small)


def test_cache_auto_chooses_by_size_and_says_why(tmp_path, data_roots, monkeypatch):
    cfg = example_config("pix2pix", tmp_path / "a", data_roots, steps=1)
    assert cfg.data.cache == "auto"
    trainer = i2i.Trainer(cfg)  # CPU: the small images are kept in memory
    assert trainer.feed.cache == "memory" and trainer.feed.dataset.cache is not None
    assert any(
        "cache: memory" in line and "(auto: about" in line and "within a quarter" in line for line in trainer.banner()
    )
    trainer.feed.close()
    monkeypatch.setattr(feed_module, "available_bytes", lambda device: 1_000)
    other = example_config("pix2pix", tmp_path / "b", data_roots, steps=1)
    trainer = i2i.Trainer(other)  # too large for a quarter of the RAM: the loader reads the files
    assert trainer.feed.cache == "none" and trainer.feed.dataset.cache is None
    assert any("cache: none" in line and "more than a quarter" in line for line in trainer.banner())
    assert np.isfinite(list(trainer.fit()["losses"].values())).all()


def test_cache_device_is_refused_by_name_where_a_dataset_cannot(tmp_path, data_roots):
    cfg = example_config("srgan", tmp_path, data_roots, steps=1)
    cfg.data.cache = "device"
    dataset = pipeline_class("srgan").make_dataset(cfg, train=False, root=None)
    dataset.full = True  # whole images of any size cannot be batched
    assert not dataset.on_device
    from i2i.engine.feed import TrainingFeed

    feed = TrainingFeed.__new__(TrainingFeed)
    feed.dataset = dataset
    with pytest.raises(DataError,
                       match=r"data.cache: device is not supported by SRDataset with whole images .*use data.cache: "
                             r"memory"):
        feed._choose_cache("device", torch.device("cpu"))


AUGMENT = {"augment_policy": "color,translation,cutout,flip,rot90", "ada_target": 0.6, "ada_kimg": 0.05}


def _augmented(name, tmp_path, data_roots, **train):
    cfg = example_config(name, tmp_path, data_roots, **train)
    for k, v in AUGMENT.items():
        setattr(cfg.loss, k, v)
    return cfg


@pytest.mark.parametrize("name", list(PIPELINES))
@pytest.mark.numerics
def test_every_pipeline_trains_with_adaptive_augmentation_and_resumes_exactly(name, tmp_path, data_roots):
    """The augmented D step and G step train every parameter; ``aug_p`` is logged, and a run
    interrupted between two adjustments of p resumes to the same weights and p."""
    if "D" not in i2i.Trainer(_augmented(name, tmp_path / "probe", data_roots)).optimizers:
        pytest.skip(f"{name}'s example trains no discriminator")
    assert_every_parameter_gets_a_gradient(i2i.Trainer(_augmented(name, tmp_path / "grad", data_roots)))
    straight = _augmented(name, tmp_path / "a", data_roots, steps=6)
    split = _augmented(name, tmp_path / "b", data_roots, steps=6)
    a, b = assert_exact_resume(straight, split, stop_at=2, parts=("nets",))
    for k, v in a["pipeline_state"]["augment"].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b["pipeline_state"]["augment"][k]), k
    records = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [r["aug_p"] for r in records if "aug_p" in r]
    assert logged and all(0.0 <= p <= 1.0 for p in logged)


@pytest.mark.parametrize(("name", "jitter"), [("pix2pix", "color"), ("cyclegan", "color"), ("pix2pix", "scale")])
def test_device_cache_makes_the_loaders_jittered_batches(name, jitter, tmp_path, data_roots):
    """Scale and colour jitter on the device: the loader's draws, pixels within one level (a
    scaled resize interpolates; the colour maths runs on a batch there, on one image here, so a
    rounding tie may fall the other way)."""
    cfg = example_config(name, tmp_path, data_roots)
    if jitter == "color":
        cfg.data.preprocess, cfg.data.crop_size, cfg.data.color_jitter = "crop", 32, 0.4
    else:
        cfg.data.scale_jitter = 0.25
    dataset = pipeline_class(name).make_dataset(cfg, train=True)
    keys = [(epoch, i) for epoch in range(3) for i in range(len(dataset))]
    got = next(iter(_device_batches(dataset, keys, len(keys))[0]))
    want = torch.utils.data.default_collate([dataset[k] for k in keys])
    for k in ("input", "target") if name == "pix2pix" else ("a", "b"):
        diff = (got[k] - want[k]).abs() * 127.5
        assert diff.max() <= 1.0 + 1e-3 and (diff > 0.5).float().mean() < 0.05, k
    plans = [dataset.device_item(k).images["input" if name == "pix2pix" else "a"][1] for k in keys]
    if jitter == "color":
        assert len({g.color for g in plans}) == len(keys)
    else:
        assert len({g.resize for g in plans}) > 2
