"""Will a training run fit? A config within every range can still ask for far more memory than
the machine has (a 4096-pixel DCGAN, SR crops of 4096, a batch of 65536): estimated from the
nets' sizes on the meta device and refused, naming the keys, before anything is allocated."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import Config, ConfigError
from ..dist import available_bytes
from ..hints import first_line
from ..nets.blocks import size_multiple

GiB = 2**30


def probe(cfg: Config, pipe: type, height: int, width: int) -> tuple[int, int]:
    """Build every net ``pipe`` trains for ``cfg`` on the meta device (shapes only, no memory) and run
    it once: generators on a ``height`` x ``width`` input (what the data gives them),
    discriminators on what the generators make (generation nets on their own sized inputs).
    Returns ``(bytes of parameters, bytes of activations per sample)``; a net that cannot
    take the size (too deep for it, or off its size multiple) is a :class:`ConfigError`
    naming the net and the size."""
    height, width = pipe.generator_input_size(cfg, height, width)
    names = list(pipe.nets_for(cfg))
    order = [n for n in names if n in pipe.generator_names()] + [n for n in names if n not in pipe.generator_names()]
    params = activations = 0
    out_hw = (height, width)
    for name in order:
        generator = name in pipe.generator_names()
        with torch.device("meta"):
            net = pipe.build_net(cfg, name).eval()  # eval: batch norms need no batch statistics here
        params += sum(p.numel() * p.element_size() for p in net.parameters())
        if not hasattr(net, "in_channels"):  # a loss's helper net (CUT's patch sampler): parameters only, its
            continue  # activations (the sampled patches' embeddings) are small beside the images'
        if pipe.kind == "generation":
            inputs = tuple(x.to("meta") if isinstance(x, torch.Tensor) else x for x in net.example_inputs(1))
        else:
            h, w = (height, width) if generator else out_hw
            inputs = (torch.empty(1, net.in_channels, h, w, device="meta"),)
        sizes: list[int] = []
        def count(module: nn.Module, args: Any, out: Any, sizes: list[int] = sizes) -> None:
            if isinstance(out, torch.Tensor):
                sizes.append(out.numel() * out.element_size())

        hooks = [m.register_forward_hook(count) for m in net.modules() if not any(True for _ in m.children())]
        try:
            with torch.no_grad():
                out = net(*inputs)
        except (RuntimeError, ValueError, IndexError) as e:
            role = "generator" if generator else "discriminator"
            size = "x".join(map(str, inputs[0].shape[-2:]))
            raise ConfigError(f"model.{role} (net {name}, {type(net).__name__}) cannot take {size} inputs, the size "
                              "the data gives "
                              f"it ({first_line(e)[:120]}): use larger images or crops (data.crop_size), or a "
                              "shallower net"
                              + (" (it needs multiples of "
                                 f"{size_multiple(net)})" if size_multiple(net) > 1 else "")) from None
        finally:
            for hook in hooks:
                hook.remove()
        if generator and out.dim() == 4:
            out_hw = tuple(out.shape[-2:])
        activations += sum(sizes)
    return params, activations


def check_fits(cfg: Config, pipe: type, item: dict, device: torch.device) -> None:
    """Refuse a run whose training step or batch-norm recalibration cache would not fit.

    ``item``: one training item (its tensors' shapes are what the nets get). The step is
    estimated as parameters x 4 (weights, gradients, two Adam moments) plus every layer's
    output x 3 per sample (kept for the backward pass, its gradient, the discriminator's extra
    calls): a rough upper bound, so only runs beyond it are refused."""
    tensors = [v for v in item.values() if isinstance(v, torch.Tensor)]
    h, w = next((t.shape[-2:] for t in tensors if t.dim() == 3), (1, 1))
    params, activations = probe(cfg, pipe, int(h), int(w))
    free = available_bytes(device)
    if free is None:
        return
    bs = cfg.data.batch_size
    working, why = pipe.working_bytes(cfg, int(h), int(w))
    step = 4 * params + 3 * activations * bs + working * bs
    if step > free:
        size = "data.image_size" if hasattr(cfg.data, "image_size") else "data.crop_size"
        extra = f", {working * bs / GiB:.1f} GiB for {why}" if working * bs > GiB / 8 else ""
        raise ConfigError(f"one training step needs about {step / GiB:.1f} GiB on {device} ({4 * params / GiB:.1f} "
                          f"GiB for the nets' weights and optimizer state, {3 * activations * bs / GiB:.1f} GiB for a "
                          f"batch of {bs} at {h}x{w}{extra}), more than the {free / GiB:.1f} GiB free: lower "
                          f"data.batch_size or {size}, or use smaller nets")
    cache = cfg.train.bn_recalibration_batches * bs * sum(t.numel() * t.element_size() for t in tensors)
    if cache > free / 2:
        raise ConfigError(f"train.bn_recalibration_batches={cfg.train.bn_recalibration_batches} batches of "
                          f"data.batch_size={bs} "
                          f"would keep {cache / GiB:.1f} GiB of decoded images for the batch-norm recalibration, more "
                          "than half the "
                          f"{free / GiB:.1f} GiB free: lower train.bn_recalibration_batches (0 turns it off)")
