"""LPIPS, the learned perceptual image patch similarity (Zhang et al., CVPR 2018, version 0.1):
a distance between two images that follows human judgements of similarity better than PSNR or
SSIM. An ImageNet backbone (AlexNet or VGG16, torchvision's weights) gives five feature maps;
each is normalised to unit length per position, the squared differences are weighted by a
learned 1x1 convolution (the "linear heads"), averaged over the image and summed over the maps.

Weights come from local files only, never random and never fetched here: the backbone from
torchvision's cache, the heads (the authors' ``weights/v0.1/{alex,vgg}.pth``) from the same
folder under a hash-carrying name; ``i2i download weights lpips-alex`` (or ``lpips-vgg``) puts
both there. Values equal the ``lpips`` package's on the same weights (tested with random ones).
"""

from __future__ import annotations

import torch
from torch import nn

from ..weights import CheckpointError, load_state_file, torchvision_cached_weights

#: backbone -> (torchvision's weights file, channels of the five maps, the feature layers each map ends after)
BACKBONES = {
    "alex": ("alexnet-owt-7be5be79.pth", (64, 192, 384, 256, 256), (2, 5, 8, 10, 12)),
    "vgg": ("vgg16-397923af.pth", (64, 128, 256, 512, 512), (4, 9, 16, 23, 30)),
}
#: backbone -> (file name in torchvision's cache, published URL) of the v0.1 linear heads; the
#: name carries the first 8 hex digits of the file's sha256, which ``i2i download`` checks.
HEADS = {
    "alex": ("lpips_alex-df73285e.pth",
             "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth"),
    "vgg": ("lpips_vgg-a78928a0.pth",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth"),
}


class LPIPS(nn.Module):
    """LPIPS distance with an ``alex`` or ``vgg`` backbone. ``weights``: load the published
    backbone and heads from torchvision's cache (FileNotFoundError naming the files and the
    download command when absent); False: random weights (for tests against the reference
    implementation). Frozen and in eval mode; call with two ``(N, C, H, W)`` batches in [-1, 1]
    (gray repeated to RGB; a side under 32 pixels is first enlarged, bilinearly, to 32, which
    AlexNet's five maps need) -> ``(N,)`` distances (0: identical; lower is more similar)."""

    def __init__(self, backbone: str = "alex", *, weights: bool = True) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"LPIPS backbone {backbone!r} is not one of {', '.join(BACKBONES)}")
        from torchvision.models import alexnet, vgg16  # torchvision imports torch._dynamo (~1.5 s): only where used

        file, channels, ends = BACKBONES[backbone]
        trunk = (alexnet if backbone == "alex" else vgg16)(weights=None).features
        for m in trunk.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False  # the maps are read between layers
        self.backbone, self.ends = backbone, ends
        self.features = trunk[: ends[-1]]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        # v0.1's input scaling (the authors' ScalingLayer): from [-1, 1] to about ImageNet's statistics
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        if weights:
            self.load_published()
        self.requires_grad_(False)
        self.eval()

    @property
    def description(self) -> str:
        return f"LPIPS v0.1 ({'AlexNet' if self.backbone == 'alex' else 'VGG16'})"

    def load_published(self) -> None:
        """Load torchvision's backbone weights and the authors' heads from torchvision's cache."""
        head_file, url = HEADS[self.backbone]
        hint = f"or run 'i2i download weights lpips-{self.backbone}' (it fetches both files)"
        trunk = torchvision_cached_weights(BACKBONES[self.backbone][0], needed_for=f"LPIPS ({self.backbone})",
                                           otherwise=hint)
        heads = torchvision_cached_weights(head_file, url=url, needed_for=f"LPIPS ({self.backbone}) linear heads",
                                           otherwise=hint)
        self.load_backbone(load_state_file(trunk, f"torchvision's {self.backbone} weights"), trunk)
        self.load_heads(load_state_file(heads, "the LPIPS linear heads"), heads)

    def load_backbone(self, state: dict[str, torch.Tensor], source: str = "the state dict") -> None:
        """A torchvision classifier's state dict (``features.N.weight`` ...; its classifier is ignored)."""
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        wanted = set(self.features.state_dict())
        feats = {k: v for k, v in feats.items() if k in wanted}
        try:
            self.features.load_state_dict(feats)
        except RuntimeError as e:
            raise CheckpointError(f"'{source}' is not torchvision's {self.backbone} weights: "
                                  f"{str(e).splitlines()[0]}") from None

    def load_heads(self, state: dict[str, torch.Tensor], source: str = "the state dict") -> None:
        """The authors' heads (``lin0.model.1.weight`` ... ``lin4.model.1.weight``)."""
        try:
            heads = {f"{k}.weight": state[f"lin{k}.model.1.weight"] for k in range(len(self.lins))}
            self.lins.load_state_dict(heads)
        except (KeyError, RuntimeError) as e:
            raise CheckpointError(f"'{source}' does not hold LPIPS v0.1 {self.backbone} heads (lin0.model.1.weight "
                                  "...): "
                                  f"{str(e).splitlines()[0]}") from None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        both = torch.cat([x, y]).float()
        both = both.expand(-1, 3, -1, -1) if both.shape[1] == 1 else both
        if min(both.shape[-2:]) < 32:
            f = 32 / min(both.shape[-2:])
            size = (max(32, round(both.shape[-2] * f)), max(32, round(both.shape[-1] * f)))
            both = nn.functional.interpolate(both, size=size, mode="bilinear", align_corners=False)
        h = (both - self.shift) / self.scale
        total = torch.zeros(n, device=x.device)
        start, k = 0, 0
        for end in self.ends:
            h = self.features[start:end](h)
            start = end
            f = h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + self.lins[k]((f[:n] - f[n:]).pow(2)).mean((1, 2, 3))
            k += 1
        return total


def lpips_for(choice: str | None) -> tuple[LPIPS | None, str]:
    """The LPIPS network ``choice`` asks for (``alex``, ``vgg``; ``auto``: alex when its weights
    are in torchvision's cache; None or ``none``: no LPIPS) and a phrase saying which, or why none."""
    if choice in (None, "none"):
        return None, "LPIPS not asked for (--lpips alex or vgg)"
    if choice == "auto":
        try:
            net = LPIPS("alex")
        except FileNotFoundError:
            return None, "LPIPS not measured: no local weights ('i2i download weights lpips-alex' fetches them)"
        return net, net.description
    if choice not in BACKBONES:
        raise ValueError(f"--lpips {choice!r}: choose alex, vgg, auto or none")
    net = LPIPS(choice)
    return net, net.description
