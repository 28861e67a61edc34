"""Will a training run fit? A config within every range can still ask for far more memory than
the machine has (a 4096-pixel DCGAN, SR crops of 4096, a batch of 65536): estimated from the
nets' sizes on the meta device and refused, naming the keys, before anything is allocated."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config, ConfigError

GiB = 2**30


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device``: CUDA's free memory, or the CPU's ``MemAvailable`` (None when unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits(cfg: Config, pipe: type, item: dict, device: torch.device) -> None:
    """Refuse a run whose training step or batch-norm recalibration cache would not fit.

    ``item``: one training item (its tensors' shapes are what the nets get). The step is
    estimated as parameters x 4 (weights, gradients, two Adam moments) plus every layer's
    output x 3 per sample (kept for the backward pass, its gradient, the discriminator's extra
    calls): a rough upper bound, so only runs beyond it are refused."""
    tensors = [v for v in item.values() if isinstance(v, torch.Tensor)]
    h, w = next((t.shape[-2:] for t in tensors if t.dim() == 3), (1, 1))
    params, activations = pipe.probe(cfg, int(h), int(w))
    free = available_bytes(device)
    if free is None:
        return
    bs = cfg.data.batch_size
    step = 4 * params + 3 * activations * bs
    if step > free:
        size = "data.image_size" if hasattr(cfg.data, "image_size") else "data.crop_size"
        raise ConfigError(f"one training step needs about {step / GiB:.1f} GiB on {device} ({4 * params / GiB:.1f} GiB for the nets' "
                          f"weights and optimizer state, {3 * activations * bs / GiB:.1f} GiB for a batch of {bs} at {h}x{w}), more "
                          f"than the {free / GiB:.1f} GiB free: lower data.batch_size or {size}, or use smaller nets")
    cache = cfg.train.bn_recalibration_batches * bs * sum(t.numel() * t.element_size() for t in tensors)
    if cache > free / 2:
        raise ConfigError(f"train.bn_recalibration_batches={cfg.train.bn_recalibration_batches} batches of data.batch_size={bs} "
                          f"would keep {cache / GiB:.1f} GiB of decoded images for the batch-norm recalibration, more than half the "
                          f"{free / GiB:.1f} GiB free: lower train.bn_recalibration_batches (0 turns it off)")
