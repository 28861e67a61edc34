"""History of generated images shown to a discriminator (Shrivastava et al. 2017).

Once the pool holds ``size`` images, each incoming image is, with probability 1/2,
swapped for a random stored one (which is returned instead), so D keeps seeing older
generator outputs and oscillation is damped. The pool's images and its private RNG are
part of the training state, so a resumed run draws exactly what it would have.
"""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    """Pool of up to ``size`` images ``(C, H, W)``; ``size == 0`` passes images through."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` new (detached) images -> ``(N, C, H, W)`` images for D."""
        if self.size == 0:
            return images
        if self.images and self.images[0].device != images.device:  # restored from a checkpoint (CPU)
            self.images = [t.to(images.device) for t in self.images]
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
                continue
            if torch.rand((), generator=self.rng).item() < 0.5:
                j = int(torch.randint(len(self.images), (), generator=self.rng))
                out.append(self.images[j].to(images.device, copy=True))
                self.images[j] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        images = torch.stack([t.cpu() for t in self.images]) if self.images else torch.empty(0)
        return {"images": images, "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.images = [t.to(device) for t in state["images"]] if state["images"].numel() else []
        self.rng.set_state(state["rng"])
