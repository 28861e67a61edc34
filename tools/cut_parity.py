"""Step parity of i2i's CUT / FastCUT with the authors' code (taesungp/contrastive-unpaired-translation).

    python tools/cut_parity.py --reference REF              # every case below; exit status 1 on a mismatch
    python tools/cut_parity.py --reference REF --mode fastcut --batch 2 --steps 3

``REF`` is a checkout of the authors' repository (b3ac297 was measured). Both sides start from the
same G, D and F (the authors' initial weights copied into i2i's nets: their anti-aliased layers are
i2i's layer for layer, with ``conv_block`` named ``block``), get the same batches, and the random
decisions the authors' code draws from numpy's global generator (FastCUT's flip coin, every layer's
patch permutation) are recorded there and fed to i2i through the pipeline's host draws. After each
step every loss, every parameter and every gradient of G, D and F must agree within relative
``--tol`` (max |a - b| / max |b| per tensor; see :func:`idle_biases` for the exception). Both sides
run in float64 by default (``--dtype``). Runs on the CPU at 32 px with widths 8 (6 residual blocks,
so ``nce_layers`` 0,4,8,12,16 are the paper's). Nothing here is imported by i2i.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH, SIZE = 8, 32


def reference_options(mode: str, batch: int, batch_negatives: bool) -> SimpleNamespace:
    """The authors' option namespace for a CPU run (their parser's defaults, the mode's overrides)."""
    fast = mode == "fastcut"
    return SimpleNamespace(
        CUT_mode="FastCUT" if fast else "CUT", batch_size=batch, beta1=0.5, beta2=0.999, checkpoints_dir="/tmp",
        continue_train=False, direction="AtoB", epoch="latest", epoch_count=1, flip_equivariance=fast,
        gan_mode="lsgan", gpu_ids=[], init_gain=0.02, init_type="xavier", input_nc=3, output_nc=3, isTrain=True,
        lambda_GAN=1.0, lambda_NCE=10.0 if fast else 1.0, lr=2e-4, lr_decay_iters=50, lr_policy="linear",
        n_epochs=200, n_epochs_decay=200, n_layers_D=3, name="parity", nce_T=0.07, nce_idt=not fast,
        nce_includes_all_negatives_from_minibatch=batch_negatives, nce_layers="0,4,8,12,16", ndf=WIDTH,
        netD="basic", netF="mlp_sample", netF_nc=256, netG="resnet_6blocks", ngf=WIDTH, no_antialias=False,
        no_antialias_up=False, no_dropout=True, normD="instance", normG="instance", num_patches=256, nz=8,
        preprocess="resize_and_crop", pretrained_name=None, verbose=False, load_size=36, crop_size=SIZE)


def i2i_config(mode: str, batch: int, batch_negatives: bool, root: Path) -> Any:
    from i2i.recipes import config_from_dict

    fast = mode == "fastcut"
    return config_from_dict({
        "name": "parity", "pipeline": "cut", "seed": 0, "output_dir": str(root / "runs"),
        "model": {"generator": {"name": "resnet", "n_blocks": 6, "base_channels": WIDTH, "norm": "instance",
                                "antialias": True, "antialias_up": True, "init": "xavier"},
                  "discriminator": {"name": "patch", "n_layers": 3, "base_channels": WIDTH, "norm": "instance",
                                    "antialias": True, "init": "xavier"}},
        "data": {"root": str(root / "data"), "load_size": 36, "crop_size": SIZE, "batch_size": batch,
                 "num_workers": 0},
        "loss": {"gan_mode": "lsgan", "nce_weight": 10.0 if fast else 1.0, "nce_idt": not fast,
                 "flip_equivariance": fast, "nce_batch_negatives": batch_negatives},
        "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999},
        "schedule": {"policy": "linear", "decay_start": 1000},
        "train": {"epochs": None, "steps": 100, "log_every": 1000, "sample_every": 10**6,
                  "checkpoint_every": 10**6, "progress": False},
    })


class Recorder:
    """Wraps numpy's global ``random`` and ``permutation`` to record what the authors' code draws."""

    def __init__(self) -> None:
        self.draws: list[tuple[str, Any]] = []
        self._random, self._perm = np.random.random, np.random.permutation

    def __enter__(self) -> Recorder:
        def random(*a: Any, **k: Any) -> Any:
            v = self._random(*a, **k)
            self.draws.append(("random", v))
            return v

        def permutation(*a: Any, **k: Any) -> Any:
            v = self._perm(*a, **k)
            self.draws.append(("perm", v))
            return v

        np.random.random, np.random.permutation = random, permutation
        return self

    def __exit__(self, *exc: object) -> None:
        np.random.random, np.random.permutation = self._random, self._perm


def host_draws_from(draws: list[tuple[str, Any]], mode: str, num_patches: int = 256) -> dict[str, torch.Tensor]:
    """i2i's host draws (``flip``, ``ids_<term>_<layer>``) from the authors' recorded draws of one step."""
    out: dict[str, torch.Tensor] = {}
    perms = [v for kind, v in draws if kind == "perm"]
    flips = [v for kind, v in draws if kind == "random"]
    if mode == "fastcut":
        out["flip"] = torch.tensor(bool(flips[0] < 0.5))
    terms = ["nce"] if mode == "fastcut" else ["nce", "nce_y"]
    assert len(perms) == 5 * len(terms), f"expected {5 * len(terms)} permutations, recorded {len(perms)}"
    for t, term in enumerate(terms):
        for layer in range(5):
            p = perms[t * 5 + layer]
            ids = np.ascontiguousarray(p[:min(num_patches, len(p))], dtype=np.int64)  # a view may run backwards
            out[f"ids_{term}_{layer}"] = torch.from_numpy(ids)
    return out


def relative(a: torch.Tensor, b: torch.Tensor, floor: float = 0.0) -> float:
    """max |a - b| / max(max |b|, ``floor``) (0 for two zero tensors)."""
    scale = max(float(b.abs().max()) if b.numel() else 0.0, floor)
    diff = float((a - b).abs().max()) if b.numel() else 0.0
    return diff / scale if scale > 0 else diff


def idle_biases(net: torch.nn.Module) -> set[str]:
    """The biases of convolutions followed by a non-affine instance norm: they change no output, so their
    true gradient is 0, what is computed is rounding noise (1e-14 in float64), and their weights are
    Adam's reaction to it (lr x g / (|g| + eps), about 1e-9). They are compared relative to the net's
    largest weight or gradient, not their own."""
    out = set()
    for prefix, m in net.named_modules():
        if isinstance(m, torch.nn.Sequential):
            kids = list(m.named_children())
            for (name, a), (_, b) in zip(kids, kids[1:]):
                conv = isinstance(a, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
                if conv and isinstance(b, torch.nn.InstanceNorm2d) and not b.affine:
                    out.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return out


def write_data(root: Path) -> None:
    from i2i.data.io import write_image

    rng = np.random.default_rng(0)
    for folder in ("trainA", "trainB", "testA", "testB"):
        for i in range(2):
            write_image(root / folder / f"{i}.png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def run_case(reference: Path, mode: str, batch: int, batch_negatives: bool, steps: int, tol: float,
             dtype: torch.dtype = torch.float64) -> list[str]:
    """One configuration; returns the failures (empty when every step agrees), printing the worst
    relative difference per step."""
    import i2i

    if str(reference) not in sys.path:
        sys.path.insert(0, str(reference))
    from models.cut_model import CUTModel  # the authors' code

    torch.manual_seed(0)
    np.random.seed(0)
    gen = torch.Generator().manual_seed(1)
    batches = [{"A": (torch.rand(batch, 3, SIZE, SIZE, generator=gen) * 2 - 1).to(dtype),
                "B": (torch.rand(batch, 3, SIZE, SIZE, generator=gen) * 2 - 1).to(dtype),
                "A_paths": ["a"] * batch, "B_paths": ["b"] * batch} for _ in range(steps)]
    ref = CUTModel(reference_options(mode, batch, batch_negatives))
    # builds F's heads in float32 (its draws are not part of a step), then everything goes to dtype
    ref.data_dependent_initialize({**batches[0], "A": batches[0]["A"].float(), "B": batches[0]["B"].float()})
    for module in (ref.netG, ref.netD, ref.netF, ref.criterionGAN):
        module.to(dtype)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root / "data")
        trainer = i2i.Trainer(i2i_config(mode, batch, batch_negatives, root))
        nets = trainer.pipeline.nets
        nets["G"].load_state_dict({k.replace(".conv_block.", ".block."): v for k, v in ref.netG.state_dict().items()})
        nets["D"].load_state_dict(ref.netD.state_dict())
        nets["F"].load_state_dict(ref.netF.state_dict())
        for net in nets.values():
            net.to(dtype)  # in place: the optimizers keep their parameters
        pairs = {"G": (ref.netG, nets["G"]), "D": (ref.netD, nets["D"]), "F": (ref.netF, nets["F"])}
        failures = []
        for step, data in enumerate(batches, 1):
            ref.set_input(data)
            with Recorder() as rec:
                ref.optimize_parameters()
            draws = host_draws_from(rec.draws, mode)
            trainer.pipeline.host_draws = lambda batch, d=draws: d  # type: ignore[method-assign]
            logs = trainer.train_step({"a": data["A"], "b": data["B"]})
            worst: dict[str, float] = {}
            losses = {"D_real": ref.loss_D_real, "D_fake": ref.loss_D_fake, "G_GAN": ref.loss_G_GAN,
                      "NCE": ref.loss_NCE, **({"NCE_Y": ref.loss_NCE_Y} if mode == "cut" else {})}
            for k, v in losses.items():
                worst[f"loss {k}"] = relative(logs[k].reshape(()), torch.as_tensor(v).detach().reshape(()))
            for net, (theirs, ours) in pairs.items():
                ours_p = dict(ours.named_parameters())
                idle = idle_biases(theirs)
                w_max = max(float(p.detach().abs().max()) for p in theirs.parameters())
                g_max = max(float(p.grad.abs().max()) for p in theirs.parameters())
                for k, p in theirs.named_parameters():
                    q = ours_p[k.replace(".conv_block.", ".block.")]
                    tag = " (idle)" if k in idle else ""
                    worst[f"{net} weight {k}{tag}"] = relative(q.detach(), p.detach(), w_max if k in idle else 0.0)
                    worst[f"{net} grad {k}{tag}"] = relative(q.grad, p.grad, g_max if k in idle else 0.0)
            name, value = max(((k, v) for k, v in worst.items() if "(idle)" not in k), key=lambda kv: kv[1])
            idle_worst = max([v for k, v in worst.items() if "(idle)" in k], default=0.0)
            print(f"  step {step}: worst relative difference {value:.2e} ({name}) over {len(worst)} values; "
                  f"idle biases {idle_worst:.2e}")
            failures += [f"{mode} batch {batch} negatives {'batch' if batch_negatives else 'image'} step {step}: "
                         f"{k} differs by {v:.2e}" for k, v in worst.items() if not v <= tol]
        return failures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", type=Path, required=True,
                   help="checkout of taesungp/contrastive-unpaired-translation")
    p.add_argument("--mode", choices=["cut", "fastcut"], action="append", help="default: both")
    p.add_argument("--batch", type=int, action="append", help="default: 1 and 2")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="float64 (default) keeps float rounding out of the comparison: in float32, gradient "
                        "elements near Adam's eps (1e-8) turn rounding noise into lr-sized updates")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    failures = []
    for mode in args.mode or ["cut", "fastcut"]:
        for batch in args.batch or [1, 2]:
            for negatives in ([False, True] if batch > 1 else [False]):
                print(f"{mode}, batch {batch}, negatives from the {'batch' if negatives else 'image'}:")
                failures += run_case(args.reference.resolve(), mode, batch, negatives, args.steps, args.tol,
                                     getattr(torch, args.dtype))
    print("\n".join(failures) if failures else f"parity: every loss, weight and gradient within {args.tol:g}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
