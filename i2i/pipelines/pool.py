"""History of generated images shown to a discriminator (Shrivastava et al. 2017).

Once the pool holds ``size`` images, each incoming image is, with probability 1/2,
swapped for a random stored one (which is returned instead), so D keeps seeing older
generator outputs and oscillation is damped. The pool's images and its private RNG are
part of the training state, so a resumed run draws exactly what it would have.

The decisions are made on the host before the step (:meth:`ImagePool.draw`: the private
CPU generator, the fill count) and applied on the device without a branch on them
(:meth:`ImagePool.apply`: a fixed sequence of index and select operations over a
preallocated tensor), so a training step with a pool never waits for the device and can be
captured in a CUDA graph.
"""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    """Pool of up to ``size`` images ``(C, H, W)``; ``size == 0`` passes images through."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.count = 0  # images stored so far (host-side: the fill phase is decided here)
        self.images: torch.Tensor | None = None  # (size, C, H, W), allocated on the first apply
        self.rng = torch.Generator().manual_seed(seed)
        self._restored: torch.Tensor | None = None  # a checkpoint's images, placed on the first apply

    def draw(self, n: int) -> torch.Tensor:
        """The decisions for the next ``n`` images, as ``(n, 3)`` int64 on the CPU: ``slot``
        (where the image goes or is swapped), ``swap`` (1: return the stored image and store
        this one), ``store`` (1: store this one). Draws the private generator exactly as the
        original per-image pool did (a swap coin, then a slot when it swaps)."""
        out = torch.zeros(n, 3, dtype=torch.int64)
        if self.size == 0:
            return out
        for i in range(n):
            if self.count < self.size:
                out[i] = torch.tensor([self.count, 0, 1])
                self.count += 1
            elif torch.rand((), generator=self.rng).item() < 0.5:
                out[i] = torch.tensor([int(torch.randint(self.size, (), generator=self.rng)), 1, 1])
        return out

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` new images -> images for D: :meth:`draw` and :meth:`apply` in one call."""
        return self.apply(images, self.draw(images.shape[0]).to(images.device))

    def apply(self, images: torch.Tensor, decisions: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` new (detached) images and their :meth:`draw` ``decisions`` (on the
        images' device) -> ``(N, C, H, W)`` images for D; the pool is updated in place."""
        if self.size == 0:
            return images
        images = images.detach()
        if self.images is None or self.images.shape[1:] != images.shape[1:] or self.images.device != images.device:
            pool = images.new_zeros((self.size, *images.shape[1:]))
            restored = self._restored if self._restored is not None else self.images
            if restored is not None and restored.numel():
                pool[: len(restored)] = restored.to(pool)
            self.images, self._restored = pool, None
        out = []
        for i in range(images.shape[0]):
            slot, swap, store = decisions[i, 0:1], decisions[i, 1].bool(), decisions[i, 2].bool()
            new = images[i : i + 1]
            stored = self.images.index_select(0, slot)
            out.append(torch.where(swap, stored, new))
            self.images.index_copy_(0, slot, torch.where(store, new, stored))
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        if self.images is not None:
            images = self.images[: self.count].detach().to("cpu", copy=True)  # a copy: the pool changes in place
        else:
            images = self._restored.cpu() if self._restored is not None else torch.empty(0)
        return {"images": images, "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        images = state["images"]
        self.count = len(images) if images.numel() else 0
        self.images, self._restored = None, images.to(device) if images.numel() else None
        self.rng.set_state(state["rng"])
