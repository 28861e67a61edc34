"""CUT / FastCUT: the anti-aliased layers and PatchNCE against independent statements of the authors'
formulas, the layer order ``nce_layers`` relies on, the authors' generator files, the config checks,
ONNX, and learning on the task CUT is made for (shape recolouring, ``datasets/make_recolour.py``).
Step parity with the authors' code itself is ``tools/cut_parity.py`` (it needs their checkout)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SEEDS

import i2i
from i2i.compat.reference import import_reference_file
from i2i.config import ConfigError
from i2i.losses import patch_nce
from i2i.nets.antialias import BlurDownsample, BlurUpsample
from i2i.nets.patch_sampler import PatchSampler
from i2i.nets.registry import build_discriminator, build_generator
from i2i.nets.resnet import ResnetBlock
from i2i.recipes import load_config

ROOT = Path(__file__).resolve().parent.parent


def test_blur_layers_are_the_authors_filters():
    """Restated from the paper's description: down = reflect-pad 1, [1 2 1]x[1 2 1]/16, stride 2;
    up = replicate-pad 1, transposed [1 3 3 1]x[1 3 3 1]/64 x 4 at stride 2 and padding 2, crop one
    row and column at the start and at the end."""
    x = torch.randn(2, 3, 9, 12, dtype=torch.float64)
    a = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    k = (a[:, None] * a[None, :] / 16).expand(3, 1, 3, 3)
    down = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, stride=2, groups=3)
    assert torch.allclose(BlurDownsample(3).double()(x), down, rtol=0, atol=1e-14)
    assert down.shape[-2:] == (5, 6)
    b = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    k = (b[:, None] * b[None, :] / 64 * 4).expand(3, 1, 4, 4)
    up = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, stride=2, padding=2, groups=3)
    up = up[:, :, 1:-1, 1:-1]
    assert torch.allclose(BlurUpsample(3).double()(x), up, rtol=0, atol=1e-14)
    assert up.shape[-2:] == (18, 24)
    assert torch.allclose(BlurUpsample(3)(torch.ones(1, 3, 4, 4)), torch.ones(1, 3, 8, 8))  # flat stays flat


def test_nce_layers_name_the_papers_layers_and_the_keys_are_the_authors():
    G = build_generator("resnet_6blocks", base_channels=8, norm="instance", antialias=True, antialias_up=True)
    m = G.model
    assert isinstance(m[0], torch.nn.ReflectionPad2d)
    assert isinstance(m[4], torch.nn.Conv2d) and m[4].stride == (1, 1) and m[4].out_channels == 16
    assert isinstance(m[7], BlurDownsample) and isinstance(m[11], BlurDownsample)
    assert isinstance(m[8], torch.nn.Conv2d) and m[8].out_channels == 32
    assert isinstance(m[12], ResnetBlock) and m[16] is list(m)[12:18][4]
    assert isinstance(m[18], BlurUpsample) and isinstance(m[22], BlurUpsample) and len(m) == 29
    keys = set(G.state_dict())
    assert {"model.7.filt", "model.11.filt", "model.18.filt", "model.22.filt", "model.27.weight"} <= keys
    feats = G(torch.zeros(1, 3, 32, 32), (0, 4, 8, 12, 16))
    assert [tuple(f.shape[1:]) for f in feats] == [(3, 38, 38), (16, 32, 32), (32, 16, 16), (32, 8, 8), (32, 8, 8)]
    D = build_discriminator("patch", in_channels=3, n_layers=3, base_channels=8, norm="instance", antialias=True)
    assert [type(x).__name__ for x in D.model][:7] == ["Conv2d", "LeakyReLU", "BlurDownsample", "Conv2d",
                                                      "InstanceNorm2d", "LeakyReLU", "BlurDownsample"]
    plain = build_discriminator("patch", in_channels=3, n_layers=3, base_channels=8)
    assert D(torch.zeros(1, 3, 32, 32)).shape == plain(torch.zeros(1, 3, 32, 32)).shape


def _nce_by_hand(q, k, n_images, temperature, batch_negatives):
    """PatchNCE written per query: -log softmax over [its own key, every other key of its image (or
    of the batch)], the query-with-itself similarity replaced by -10 in the negatives."""
    per_image = q.shape[0] // n_images
    losses = []
    for i in range(q.shape[0]):
        group = range(q.shape[0]) if batch_negatives else range(i // per_image * per_image,
                                                                (i // per_image + 1) * per_image)
        negatives = [torch.tensor(-10.0, dtype=q.dtype) if j == i else q[i] @ k[j].detach() for j in group]
        logits = torch.stack([q[i] @ k[i].detach(), *negatives]) / temperature
        losses.append(-torch.log_softmax(logits, 0)[0])
    return torch.stack(losses)


@pytest.mark.parametrize("batch_negatives", [False, True])
def test_patch_nce_equals_a_statement_per_query(batch_negatives):
    gen = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(2 * 5, 7, generator=gen, dtype=torch.float64), dim=1).requires_grad_(True)
    k = F.normalize(torch.randn(2 * 5, 7, generator=gen, dtype=torch.float64), dim=1).requires_grad_(True)
    ours = patch_nce(q, k, batch_size=2, temperature=0.07, batch_negatives=batch_negatives)
    q2 = q.detach().clone().requires_grad_(True)
    theirs = _nce_by_hand(q2, k, 2, 0.07, batch_negatives)
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    ours.mean().backward()
    theirs.mean().backward()
    assert torch.allclose(q.grad, q2.grad, rtol=1e-10, atol=1e-12)
    assert k.grad is None  # the keys are detached
    with pytest.raises(ValueError, match="query"):
        patch_nce(q, k[:4], batch_size=2)


def test_patch_sampler_takes_the_given_positions_and_survives_dead_heads():
    feat = torch.randn(2, 4, 3, 5)
    F_ = PatchSampler([4], use_mlp=False)
    ids = torch.tensor([0, 7, 14])
    (out,) = F_([feat], [ids])
    flat = feat.permute(0, 2, 3, 1).reshape(2, 15, 4)[:, ids].reshape(6, 4)
    assert torch.allclose(out, flat / flat.norm(dim=1, keepdim=True), atol=1e-6)
    dead = PatchSampler([4], mlp_channels=3)
    for p in dead.parameters():
        torch.nn.init.zeros_(p)  # every ReLU off: zero embeddings, where the authors' norm gives NaN
    (z,) = dead([feat.requires_grad_(True)], [ids])
    z.sum().backward()
    assert torch.isfinite(feat.grad).all() and z.abs().max() == 0
    drawn = PatchSampler.draw_ids([15, 4], 8, torch.Generator().manual_seed(0))
    assert [len(d) for d in drawn] == [8, 4] and len(set(drawn[0].tolist())) == 8


def test_the_authors_generator_file_imports(tmp_path):
    """A file in the authors' layout (``conv_block``, blur ``filt`` buffers) imports with its anti-aliasing
    read from the keys, and the export computes what the net does."""
    G = build_generator("resnet_6blocks", base_channels=8, norm="instance", antialias=True, antialias_up=True)
    state = {k.replace(".block.", ".conv_block."): v for k, v in G.state_dict().items()}
    torch.save(state, tmp_path / "latest_net_G.pth")
    info = import_reference_file(tmp_path / "latest_net_G.pth", tmp_path / "g.pt")
    assert info.kwargs["antialias"] and info.kwargs["antialias_up"] and info.kwargs["n_blocks"] == 6
    t = i2i.Translator.from_checkpoint(tmp_path / "g.pt")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(t(x), G.eval()(x), atol=1e-5)  # the same function (float rounding apart)
    del state["model.12.conv_block.1.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(i2i.CheckpointError, match="model.N.filt") as e:
        import_reference_file(tmp_path / "broken.pth", tmp_path / "b.pt")
    assert "broken.pth" in str(e.value)


@pytest.mark.parametrize(("override", "key"), [
    ("model.generator.name=unet_128", "model.generator"),
    ("loss.nce_layers=[0,4,99]", "loss.nce_layers"),
    ("loss.nce_layers=[8,4]", "loss.nce_layers"),
    ("model.generator.out_channels=1", "loss.nce_idt"),
])
def test_config_mistakes_are_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(ROOT / "configs/cut/recolour.yaml", [override])


def test_both_recipes_load_at_the_papers_settings():
    cut = load_config(ROOT / "configs/cut/horse2zebra.yaml")
    fast = load_config(ROOT / "configs/cut/horse2zebra_fast.yaml")
    assert cut.loss.nce_idt and cut.loss.nce_weight == 1 and not cut.loss.flip_equivariance
    assert not fast.loss.nce_idt and fast.loss.nce_weight == 10 and fast.loss.flip_equivariance
    assert (cut.train.epochs, cut.schedule.decay_start, fast.train.epochs, fast.schedule.decay_start) == (400, 200,
                                                                                                        200, 150)
    for c in (cut, fast):
        assert c.loss.nce_layers == (0, 4, 8, 12, 16) and c.loss.num_patches == 256 and c.loss.gan_mode == "lsgan"
        assert c.model.generator.init == c.model.discriminator.init == "xavier"
        assert c.model.generator.options["antialias"] and c.model.discriminator.options["antialias"]


def test_a_cut_generator_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from i2i.exporting import export_onnx

    recolour = tmp_path / "data"
    _build_recolour(recolour, n_train=4, n_test=2)
    cfg = load_config(ROOT / "configs/cut/recolour.yaml",
                      [f"data.root={recolour}", f"output_dir={tmp_path}", "train.steps=1", "train.progress=false",
                       "model.generator.base_channels=4", "train.checkpoint_every=1"])
    ckpt = i2i.train(cfg)["checkpoint"]
    assert export_onnx(ckpt, tmp_path / "g.onnx")["max_abs_diff"] < 1e-4


def _build_recolour(out, **kw):
    import make_recolour

    make_recolour.build(out, **kw)
    return out


@pytest.fixture(scope="module")
def recolour(tmp_path_factory):
    return _build_recolour(tmp_path_factory.mktemp("recolour"))


def _read(folder):
    return np.stack([i2i.read_image(p) for p in sorted(folder.glob("*.png"))]).astype(np.float64) / 255


def _train_and_score(recolour, tmp_path, seed, *overrides):
    """The recipe at ``seed``: (held-out PSNR in dB, structure = correlation of output and input luma,
    untrained PSNR)."""
    cfg = load_config(ROOT / "configs/cut/recolour.yaml",
                      [f"data.root={recolour}", f"output_dir={tmp_path}", f"seed={seed}", "train.progress=false",
                       *overrides])
    trainer = i2i.Trainer(cfg)
    a, b = _read(recolour / "testA"), _read(recolour / "testB")

    def score():
        G = trainer.pipeline.nets["G"].eval()
        with torch.no_grad():
            y = (G(torch.from_numpy(a).permute(0, 3, 1, 2).float() * 2 - 1).clamp(-1, 1) + 1) / 2
        G.train()
        y = np.round(y.permute(0, 2, 3, 1).double().numpy() * 255) / 255
        psnr = float(np.mean(10 * np.log10(1 / ((y - b) ** 2).reshape(len(b), -1).mean(1))))
        luma = np.array([0.299, 0.587, 0.114])
        return psnr, float(np.corrcoef((y @ luma).ravel(), (a @ luma).ravel())[0, 1])

    untrained, _ = score()
    trainer.fit()
    return (*score(), untrained)


def _baselines(recolour):
    a, b = _read(recolour / "testA"), _read(recolour / "testB")
    mean = _read(recolour / "trainB").mean(axis=(0, 1, 2))

    def psnr(y):
        return float(np.mean(10 * np.log10(1 / ((y - b) ** 2).reshape(len(b), -1).mean(1))))

    return psnr(a), psnr(np.broadcast_to(mean, b.shape))


FASTCUT = ("loss.nce_weight=10", "loss.nce_idt=false", "loss.flip_equivariance=true")


def _clears_the_bar(psnr, structure, untrained, identity, mean_colour):
    return psnr >= mean_colour + 2 and psnr >= identity + 4 and psnr >= untrained + 3 and structure >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_cut_learns_to_recolour_shapes(recolour, tmp_path, seed):
    """600 steps of the recipe (about 30 s on 2 cores). Measured (2-core AMD EPYC, AVX-512 kernels, torch 2.15),
    held-out PSNR / structure at seeds 0, 1, 2: 21.45 / 18.40 / 21.59 dB, 0.95-0.96 (all three clear
    the bar under ATEN_CPU_CAPABILITY=default too); identity 11.54, mean colour of trainB 13.32,
    untrained 11.8-11.9 dB. The authors' code on the same task: 17.61 / 16.60 / 16.15 dB."""
    identity, mean_colour = _baselines(recolour)
    psnr, structure, untrained = _train_and_score(recolour, tmp_path, seed)
    assert _clears_the_bar(psnr, structure, untrained, identity, mean_colour), (psnr, structure, mean_colour)


@pytest.mark.slow
def test_fastcut_learns_to_recolour_shapes(recolour, tmp_path):
    """FastCUT, the recipe's 600 steps (about 20 s), seed 0, with CUT's bar; the multi-seed claim is CUT's
    (above), because FastCUT's seeds differ by CPU. At 600 steps, with AVX-512 kernels: 20.50 / 18.10 /
    20.85 dB, structure 0.92-0.94 at seeds 0-2; with ATEN_CPU_CAPABILITY=default seed 0 clears the bar,
    seed 1 stays at 11.9 dB and seed 2 reaches 14.1. At 1,200 steps: AVX-512 20.81 / 19.94 / 23.55 dB,
    default 24.40 / 11.74 / 22.65, seed 1 in the inverted optimum (structure -0.68: shapes and background
    swap roles, which PatchNCE alone does not rule out). The authors' FastCUT also varies by seed here
    (20.63 / 15.45 / 17.57). Three seeds at 1,200 steps cost two minutes the suite's budget does not
    have: `python tools/cut_study.py --runs fastcut` measures them."""
    identity, mean_colour = _baselines(recolour)
    psnr, structure, untrained = _train_and_score(recolour, tmp_path, 0, *FASTCUT)
    assert _clears_the_bar(psnr, structure, untrained, identity, mean_colour), (psnr, structure, mean_colour)


@pytest.mark.slow
def test_without_patchnce_or_with_mismatched_patches_it_fails(recolour, tmp_path, monkeypatch):
    """The controls: the GAN alone (lambda_NCE 0), and PatchNCE whose queries sit one position off their
    keys, both miss the bar the real method clears (measured at seeds 0-2: 9.4-9.9 dB and 6.5-13.4 dB,
    structure 0.32 at best and 0.66 at best)."""
    identity, mean_colour = _baselines(recolour)
    psnr, structure, _ = _train_and_score(recolour, tmp_path / "gan", 0, "loss.nce_weight=0")
    assert psnr < mean_colour + 2 and structure < 0.8, (psnr, structure)
    forward = PatchSampler.forward

    def shifted(self, feats, ids):
        return forward(self, feats, [torch.roll(i, 1) for i in ids] if torch.is_grad_enabled() else ids)

    monkeypatch.setattr(PatchSampler, "forward", shifted)
    psnr, structure, _ = _train_and_score(recolour, tmp_path / "off", 0)
    assert psnr < mean_colour + 2 and structure < 0.8, (psnr, structure)


def test_mask_conservation_needs_masks_and_is_logged(tmp_path):
    from i2i.data.base import DataError

    data = _build_recolour(tmp_path / "data", n_train=4, n_test=2)
    overrides = [f"data.root={data}", f"output_dir={tmp_path}", "train.steps=2", "train.progress=false",
                 "model.generator.base_channels=4", "loss.mask_conservation=5", "train.checkpoint_every=2"]
    with pytest.raises(DataError, match=r"loss\.mask_conservation=5\.0 needs masks.*trainA_mask"):
        i2i.Trainer(load_config(ROOT / "configs/cut/recolour.yaml", overrides))
    for p in sorted((data / "trainA").glob("*.png")):  # nothing may change anywhere
        i2i.write_image(data / "trainA_mask" / p.name, np.zeros((32, 32, 1), np.uint8))
    trainer = i2i.Trainer(load_config(ROOT / "configs/cut/recolour.yaml", overrides))
    logs = trainer.train_step(next(trainer.batches()))
    assert 0 < float(logs["conserve"]) == pytest.approx(float(logs["change_ab"]) * 2, rel=1e-5)


@pytest.mark.parametrize("only", ["disc", "shapes"])
def test_region_recolouring_data_changes_only_inside_its_masks(tmp_path, only):
    data = _build_recolour(tmp_path, n_train=3, n_test=4, only=only)
    for name in ("0000.png", "0001.png", "0002.png", "0003.png"):
        a, b = (i2i.read_image(data / d / name).astype(int) for d in ("testA", "testB"))
        mask = i2i.read_image(data / "testA_mask" / name)[:, :, 0] > 127
        assert (a != b).any(axis=2)[~mask].sum() == 0  # outside: byte-identical
        assert mask.any() or only == "disc"
    assert len(list((data / "trainA_mask").glob("*.png"))) == len(list((data / "trainA").glob("*.png"))) == 3
    with pytest.raises(ValueError, match="only="):
        _build_recolour(tmp_path / "x", only="triangle")


@pytest.mark.slow
def test_mask_conservation_keeps_the_background_and_not_at_the_insides_cost(tmp_path):
    """Recolour the shapes, keep the background (``make_recolour.py --only shapes``), the recipe's 600 steps
    at seed 0 with and without ``loss.mask_conservation: 10`` (about 30 s each). Measured: outside change
    26.04 -> 3.88 levels (6.7x), inside 13.11 -> 16.77 dB; at 1,200 steps and seeds 0-2: 8.5-13.4x,
    inside +1.9 to +4.4 dB (docs/benchmarks.md)."""
    data = _build_recolour(tmp_path / "data", only="shapes")
    a = _read(data / "testA") * 255
    truth = _read(data / "testB") * 255
    inside = np.stack([i2i.read_image(p)[:, :, 0] > 127 for p in sorted((data / "testA_mask").glob("*.png"))])
    scores = {}
    for weight in (0, 10):
        cfg = load_config(ROOT / "configs/cut/recolour.yaml",
                          [f"data.root={data}", f"output_dir={tmp_path}", f"name=w{weight}", "train.progress=false",
                           f"loss.mask_conservation={weight}"])
        trainer = i2i.Trainer(cfg)
        trainer.fit()
        G = trainer.pipeline.nets["G"].eval()
        with torch.no_grad():
            y = (G(torch.from_numpy(a / 127.5 - 1).permute(0, 3, 1, 2).float()).clamp(-1, 1) + 1) * 127.5
        y = np.round(y.permute(0, 2, 3, 1).double().numpy())
        outside = np.abs(y - a)[~inside].mean()
        psnr_inside = 10 * np.log10(255**2 / ((y - truth)[inside] ** 2).mean())
        scores[weight] = (outside, psnr_inside)
    (out0, in0), (out1, in1) = scores[0], scores[10]
    assert out0 >= 3 * out1 and in1 >= in0 - 0.3, scores
