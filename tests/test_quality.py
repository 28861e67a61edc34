"""What the user gets from the default commands: eval-mode batch norm re-estimated for the
saved weights, an EMA that never loses to the raw generator, residual SR, chroma prediction."""

from __future__ import annotations

import copy

import torch

import i2i
from i2i import metrics
from i2i.nets.blocks import has_batch_norm, recalibrate_batch_norm


def _bn_inputs(net: torch.nn.Module, batches: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """What every batch norm of ``net`` sees for each batch with dropout off and batch norms
    normalising with batch statistics (computed on a copy; ``net`` is untouched)."""
    probe = copy.deepcopy(net).eval()
    seen: dict[str, list[torch.Tensor]] = {}
    for n, m in probe.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
            m.register_forward_pre_hook(lambda m, a, n=n: seen.setdefault(n, []).append(a[0].detach()))
    with torch.no_grad():
        for b in batches:
            probe(b)
    return seen


def test_recalibration_sets_the_exact_average_statistics_with_dropout_off():
    torch.manual_seed(0)
    net = i2i.build_generator("unet", num_downs=6, base_channels=4, in_channels=1, out_channels=1, dropout=True).train()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [torch.rand(3, 1, 64, 64) * 2 - 1 for _ in range(4)]
    expected = _bn_inputs(net, batches)
    assert recalibrate_batch_norm(net, ((b,) for b in batches)) == 4
    assert net.training and all(m.training for m in net.modules())  # state restored
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            xs = expected[name]
            mean = torch.stack([x.mean((0, 2, 3)) for x in xs]).mean(0)
            var = torch.stack([x.var((0, 2, 3), unbiased=True) for x in xs]).mean(0)
            assert torch.allclose(m.running_mean, mean, atol=1e-5), name
            assert torch.allclose(m.running_var, var, rtol=1e-4, atol=1e-6), name
            assert m.momentum == 0.1 and int(m.num_batches_tracked) == 4
    for k, v in net.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k  # weights untouched
    assert not has_batch_norm(i2i.build_generator("unet", num_downs=5, norm="instance"))


def _psnr(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_stats: bool = False) -> float:
    net = copy.deepcopy(net).eval()
    if batch_stats:
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train()
                m.track_running_stats = False
    with torch.no_grad():
        return float(metrics.psnr(net(x), y).mean())


def test_saved_eval_mode_is_as_good_as_batch_statistics(tmp_path, gray2color, make_config):
    # A short run, where the running averages lag the weights most: the saved generator in
    # eval mode must be within 0.3 dB of the same weights normalised with batch statistics
    # (and the lagging running averages, kept when recalibration is off, are measurably worse).
    from i2i.data.datasets import PairedDataset
    from i2i.loading import load_generator

    common = {"generator": {"base_channels": 16}, "train": {"steps": 60, "checkpoint_every": 60}, "data": {"val_root": None}}
    runs = {}
    for k in (0, 32):
        cfg = make_config(tmp_path / str(k), gray2color, model={"generator": common["generator"]},
                          train={**common["train"], "bn_recalibration_batches": k}, data=common["data"])
        runs[k] = load_generator(i2i.train(cfg)["checkpoint"], use_ema=False).net
    ds = PairedDataset(gray2color / "test", in_channels=1, out_channels=3, preprocess="none", train=False)
    x = torch.stack([ds[i]["input"] for i in range(len(ds))])
    y = torch.stack([ds[i]["target"] for i in range(len(ds))])
    batch = _psnr(runs[32], x, y, batch_stats=True)
    for name, param in runs[0].named_parameters():  # recalibration never changes training
        assert torch.equal(param, dict(runs[32].named_parameters())[name])
    recal, stale = _psnr(runs[32], x, y), _psnr(runs[0], x, y)
    print(f"eval recalibrated {recal:.2f} dB, batch statistics {batch:.2f} dB, eval with running averages {stale:.2f} dB")
    assert recal >= batch - 0.3, (recal, batch)
    assert recal > stale, (recal, stale)
