"""A small Fashion-MNIST classifier: features and class coverage for judging generators.

    python tools/fmnist_classifier.py --root datasets/fashion_mnist --out fmnist_classifier.pt --threads 2

Trains a 3-conv CNN on Fashion-MNIST (padded 28 -> 32, in [-1, 1], as i2i's DCGAN recipes
see it) for ``--epochs``, prints the test accuracy and saves the weights (a plain state
dict, loaded with ``weights_only=True``). :class:`FashionClassifier` gives 128-d features
(``features``) for FID / KID in the domain's own feature space, and class predictions for
class coverage (how many classes the samples span) and label accuracy (class-conditional
samples classified as the asked class). Used by ``tools/bench_dcgan.py --classifier``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.data.generation import GenerationDataConfig, ImageDataset  # noqa: E402


class FashionClassifier(nn.Module):
    """``(N, 1, 32, 32)`` in [-1, 1] -> 10 logits; :meth:`features` -> ``(N, 128)``."""

    def __init__(self) -> None:
        super().__init__()

        def block(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(True), nn.MaxPool2d(2)]

        self.body = nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 128), nn.Flatten(),
                                  nn.Linear(128 * 16, 128), nn.ReLU(True))
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load_split(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    data = GenerationDataConfig(image_size=32, dataset="fashion_mnist", flip=False, fit="pad")
    ds = ImageDataset(root, data, channels=1, labels=True, train=train)
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    y = torch.tensor([ds.tv.targets[i] for i in range(len(ds))])
    return x, y


def load_classifier(path: str | Path) -> FashionClassifier:
    net = FashionClassifier()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


@torch.no_grad()
def predict(net: FashionClassifier, x: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (N, 128), predicted classes (N,))``."""
    feats = torch.cat([net.features(x[i : i + batch]) for i in range(0, len(x), batch)])
    return feats, net.head(feats).argmax(1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=Path("datasets/fashion_mnist"))
    p.add_argument("--out", type=Path, default=Path("fmnist_classifier.pt"))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x, y = load_split(a.root, True)
    xt, yt = load_split(a.root, False)
    net = FashionClassifier()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        net.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            j = perm[i : i + 128]
            loss = nn.functional.cross_entropy(net(x[j]), y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        acc = float((predict(net, xt)[1] == yt).float().mean())
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)")
    torch.save(net.state_dict(), a.out)
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
