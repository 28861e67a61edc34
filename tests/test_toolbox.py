"""The GAN toolbox: minibatch standard deviation, self-attention, R1, the projection
discriminator, mode-collapse diagnostics and latent vector arithmetic."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SEEDS, dcgan_config

import i2i
from i2i.cli import main
from i2i.config import ConfigError
from i2i.data.generation import GenerationDataConfig, ImageDataset
from i2i.evaluate import (
    evaluate_generation,
    extract_features,
    feature_extractor,
    generation_diagnostics,
    load_classifier,
)
from i2i.generate import Generator, parse_arithmetic
from i2i.losses import GANLoss, r1_penalty
from i2i.metrics import class_coverage, class_diversity, diversity, mean_pairwise_distance
from i2i.nets.blocks import MinibatchStd, SelfAttention, init_weights
from i2i.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from i2i.nets.patchgan import PatchDiscriminator
from i2i.nets.resnet import ResnetGenerator
from i2i.nets.unet import UnetGenerator

#: The costliest claims here (minutes of training each, and latent arithmetic) run at two seeds in
#: the suite, to keep it inside its time budget; their docstrings quote the three seeds measured.
TWO_SEEDS = SEEDS[:2]


# ------------------------------------------------------------------ minibatch standard deviation
def test_minibatch_std_appends_the_group_spread_of_the_features():
    layer = MinibatchStd(group_size=4)
    x = torch.randn(8, 3, 5, 5)
    y = layer(x)
    assert y.shape == (8, 4, 5, 5) and torch.equal(y[:, :3], x)
    # Groups are samples {i, i + 2, i + 4, i + 6}: the std over each group, averaged over features.
    for i in range(8):
        group = x[[i % 2, i % 2 + 2, i % 2 + 4, i % 2 + 6]]
        expected = (group.var(0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(y[i, 3], expected.expand(5, 5), atol=1e-6)
    # A collapsed batch (identical samples) shows no spread at all: what the discriminator learns to punish.
    same = layer(x[:1].expand(8, -1, -1, -1))
    assert same[:, 3].max() < 1e-3 < y[:, 3].min()
    # Batches that do not divide by the group: the largest divisor (6 -> groups of 3); a batch of one: zeros.
    assert layer(torch.randn(6, 3, 2, 2)).shape == (6, 4, 2, 2)
    assert layer(torch.randn(1, 3, 2, 2))[:, 3].abs().max() < 1e-3
    with pytest.raises(ValueError, match="group size 1"):
        MinibatchStd(1)


def test_minibatch_std_option_in_the_discriminators():
    d = DCGANDiscriminator(in_channels=1, image_size=32, base_channels=8, minibatch_std=4)
    assert any(isinstance(m, MinibatchStd) for m in d.modules()) and d(torch.randn(4, 1, 32, 32)).shape == (4,)
    p = PatchDiscriminator(in_channels=3, base_channels=8, n_layers=2, minibatch_std=2)
    assert isinstance(p.model[-2], MinibatchStd) and p(torch.randn(2, 3, 32, 32)).shape[1] == 1
    # Off by default: the layouts (and checkpoint keys) of existing models are unchanged.
    keys = set(DCGANDiscriminator(in_channels=1, image_size=32, base_channels=8).state_dict())
    assert keys == {"model.0.weight", "model.0.bias", "model.2.weight", "model.3.weight", "model.3.bias",
                    "model.3.running_mean",
                    "model.3.running_var", "model.3.num_batches_tracked", "model.5.weight", "model.6.weight",
                    "model.6.bias",
                    "model.6.running_mean", "model.6.running_var", "model.6.num_batches_tracked", "model.8.weight",
                    "model.8.bias"}


@pytest.fixture(scope="module")
def crisp_shapes(tmp_path_factory):
    import make_shapes

    out = tmp_path_factory.mktemp("crisp")
    make_shapes.build(out, n=400, size=32, seed=0, crisp=True)
    return out


@pytest.mark.slow
def test_a_dcgan_with_minibatch_std_draws_varied_shapes_at_every_seed(tmp_path, crisp_shapes, make_config):
    """A DCGAN on binary shapes first collapses to one blurred pattern (~100 steps, sample
    diversity 0.05-0.25 of the data's at every seed, with or without the layer). With a
    minibatch standard-deviation layer in D (group 4) the run has recovered by step 400 at every
    seed (diversity 0.64 / 0.67 / 0.78 at seeds 0 / 1 / 2, pixel FID 6.5 / 6.3 / 5.2; the mean
    image's 24.5). Without it, 2026-12-05: 0.09 / 0.28 / 0.73, FID 44.9 / 34.2 / 5.9 (seeds 0
    and 1 still collapsed); an earlier version of the trainer: 0.15 / 0.65 / 0.66 (seed 0 only).
    Which seeds stay collapsed without the layer follows float rounding, and at lr 1e-4 the
    layer did not help (seed 1 collapsed with it, not without). So what is asserted at every
    seed is a healthy run with the layer; that it rescues runs that would stay collapsed is
    what the figures above show, not a claim this test can hold on every CPU."""
    ext = feature_extractor("pixels")
    ds = ImageDataset(crisp_shapes, GenerationDataConfig(image_size=32), channels=1, train=False)
    real = torch.stack([ds[i]["image"] for i in range(400)])
    fr = extract_features(ext, real)
    from i2i.metrics import frechet_distance

    mean_fid = frechet_distance(extract_features(ext, real.mean(0, keepdim=True).expand(400, -1, -1, -1)), fr)
    for seed in TWO_SEEDS:
        cfg = dcgan_config(make_config, tmp_path / str(seed), crisp_shapes, seed=seed,
                           generator={"base_channels": 32, "latent_dim": 64},
                           discriminator={"base_channels": 32, "minibatch_std": 4},
                           data={"batch_size": 64, "flip": True},
                           schedule={"policy": "constant"}, train={"steps": 400, "log_every": 100})
        gen = Generator.from_checkpoint(i2i.train(cfg)["checkpoint"], device="cpu", use_ema=False)
        ff = extract_features(ext, gen.sample(400, seed=1))
        div, fid = diversity(ff, fr), frechet_distance(ff, fr)
        print(f"crisp shapes, seed {seed}, 400 steps with minibatch std: diversity {div:.3f}, FID {fid:.2f} (mean "
              f"image {mean_fid:.2f})")
        assert div > 0.5 and fid < 0.6 * mean_fid, seed


# ------------------------------------------------------------------ self-attention
def test_self_attention_starts_as_the_identity_and_sees_the_whole_image():
    torch.manual_seed(0)
    att = init_weights(SelfAttention(16), "kaiming")
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(att(x), x)  # gamma = 0: the block adds nothing until it learns to
    with torch.no_grad():
        att.gamma.fill_(1.0)
    # Receptive field: with attention, a patch logit at the left edge depends on the right edge.
    for attention, depends in ((0, False), (2, True)):
        torch.manual_seed(0)
        d = init_weights(PatchDiscriminator(in_channels=1, base_channels=8, n_layers=1, norm="none",
                                            attention=attention), "kaiming")
        for m in d.modules():
            if isinstance(m, SelfAttention):
                m.gamma.data.fill_(1.0)
        x = torch.randn(1, 1, 32, 32, requires_grad=True)
        d(x)[0, 0, :, 0].sum().backward()  # the leftmost column of patch logits
        assert (x.grad[..., 28:].abs().sum() > 0) == depends


@pytest.mark.parametrize("net,strides", [
    (lambda a: DCGANGenerator(latent_dim=8, out_channels=1, image_size=32, base_channels=4, attention=a), [2, 4, 8]),
    (lambda a: DCGANDiscriminator(in_channels=1, image_size=32, base_channels=4, attention=a), [2, 4, 8]),
    (lambda a: PatchDiscriminator(in_channels=3, base_channels=4, n_layers=3, attention=a), [2, 4, 8]),
    (lambda a: UnetGenerator(in_channels=3, out_channels=3, num_downs=5, base_channels=4, attention=a), [2, 4, 8, 16]),
    (lambda a: ResnetGenerator(in_channels=3, out_channels=3, n_blocks=2, base_channels=4, attention=a), [2, 4]),
], ids=["dcgan-G", "dcgan-D", "patchgan", "unet", "resnet"])
def test_attention_goes_where_asked_in_every_net(net, strides):
    plain = net(0)
    for a in strides:
        m = net(a)
        blocks = [b for b in m.modules() if isinstance(b, SelfAttention)]
        assert len(blocks) == 1
        inputs = m.example_inputs(2) if hasattr(m, "example_inputs") else None
        seen = []
        blocks[0].register_forward_hook(lambda mod, inp, out, seen=seen: seen.append(inp[0].shape))
        out = m(*inputs)
        assert out.shape == plain(*inputs).shape
        image = inputs[0].shape[-1] if inputs[0].dim() == 4 else 32
        assert seen[0][-1] == image // a, f"attention={a} ran on {seen[0][-1]}x{seen[0][-1]} maps of a {image} px image"
    with pytest.raises(ValueError, match="attention=3.*choose one of them"):
        net(3)


def test_attention_is_checked_as_a_config_key(tmp_path, shapes, make_config):
    with pytest.raises(ConfigError, match=r"model.generator.*attention=3.*strides 2, 4, 8"):
        dcgan_config(make_config, tmp_path, shapes, generator={"attention": 3})
    with pytest.raises(ConfigError, match="model.discriminator.minibatch_std"):
        dcgan_config(make_config, tmp_path, shapes, discriminator={"minibatch_std": -1})


def _pairs(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """32x32 images with a 4x4 square at the left edge and one at the right edge, 24 pixels
    apart; label 1 when they have the same brightness."""
    x = torch.full((n, 1, 32, 32), -1.0)
    a = torch.where(torch.rand(n, generator=g) < 0.5, -0.3, 1.0)
    same = torch.rand(n, generator=g) < 0.5
    b = torch.where(same, a, 0.7 - a)
    rows = torch.randint(2, 26, (2, n), generator=g)
    for i in range(n):
        x[i, 0, rows[0, i] : rows[0, i] + 4, 1:5] = a[i]
        x[i, 0, rows[1, i] : rows[1, i] + 4, 27:31] = b[i]
    return x, same.float()


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_self_attention_lets_a_patch_discriminator_learn_a_long_range_relation(seed):
    """A PatchGAN with one stride-2 layer sees 16-pixel patches; whether two squares 24 pixels
    apart match is invisible to it (chance), and learnt with a self-attention block."""
    torch.set_num_threads(2)
    accuracy = {}
    for attention in (0, 2):
        torch.manual_seed(seed)
        d = init_weights(PatchDiscriminator(in_channels=1, base_channels=16, n_layers=1, norm="none",
                                            attention=attention), "kaiming")
        opt = torch.optim.Adam(d.parameters(), 2e-3, betas=(0.5, 0.999))
        g = torch.Generator().manual_seed(1)  # the same data; the seed varies the initial weights
        for _ in range(400):
            x, y = _pairs(32, g)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(d(x).mean((1, 2, 3)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        x, y = _pairs(512, torch.Generator().manual_seed(99))
        with torch.no_grad():
            accuracy[attention] = float(((d(x).mean((1, 2, 3)) > 0).float() == y).float().mean())
    print(f"held-out accuracy: without attention {accuracy[0]:.3f}, with {accuracy[2]:.3f}")
    assert accuracy[0] < 0.6 and accuracy[2] > 0.85  # chance: 0.5


# ------------------------------------------------------------------ R1
def test_r1_penalty_is_half_gamma_times_the_squared_gradient_norm():
    w = torch.randn(1, 3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).sum((1, 2, 3))  # a linear critic: its input gradient is w for every sample
    assert torch.allclose(r1_penalty(logits, x, 10.0), 5.0 * w.pow(2).sum(), rtol=1e-5)
    # In a D objective, and differentiable with respect to D's parameters.
    lin = torch.nn.Linear(48, 1)
    loss, parts = GANLoss("hinge", r1_weight=2.0).discriminator_loss(lambda t: lin(t.flatten(1)), x.detach(),
                                                                     torch.randn(5, 3, 4, 4))
    assert torch.allclose(parts["r1"], lin.weight.pow(2).sum().detach(), rtol=1e-5)
    loss.backward()
    assert lin.weight.grad is not None and "r1" not in GANLoss("hinge").discriminator_loss(lambda t: lin(t.flatten(1)),
                                                                                           x, x)[1]
    with pytest.raises(ValueError, match="r1_weight"):
        GANLoss(r1_weight=-1)


def _real_gradient_norm(ckpt: str, shapes) -> float:
    """E ||grad_x D(x)||^2 of the trained discriminator on 256 real images."""
    from i2i.recipes import config_from_dict, pipeline_class

    state = torch.load(ckpt, weights_only=True)
    cfg = config_from_dict(state["config"])
    d = pipeline_class("dcgan").build_net(cfg, "D")
    d.load_state_dict(state["nets"]["D"])
    d.eval()
    ds = ImageDataset(shapes, GenerationDataConfig(image_size=32), channels=1, train=False)
    x = torch.stack([ds[i]["image"] for i in range(256)]).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x)
    return float(grad.pow(2).flatten(1).sum(1).mean())


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_r1_keeps_the_discriminator_flat_on_real_data_and_the_generator_learns(tmp_path, shapes, make_config, seed):
    """R1's effect: the discriminator's gradient on real images (what pushes generated samples
    around them) stays small, while the generator still learns the data."""
    norms, fids = {}, {}
    ext = feature_extractor("pixels")
    ds = ImageDataset(shapes, GenerationDataConfig(image_size=32), channels=1, train=False)
    real = extract_features(ext, torch.stack([ds[i]["image"] for i in range(400)]))
    for gamma in (0.0, 10.0):
        cfg = dcgan_config(make_config, tmp_path / str(gamma), shapes, seed=seed, loss={"r1_weight": gamma},
                           discriminator={"norm": "none"}, train={"steps": 150, "log_every": 50})
        ckpt = i2i.train(cfg)["checkpoint"]
        norms[gamma] = _real_gradient_norm(ckpt, shapes)
        from i2i.metrics import frechet_distance

        fids[gamma] = frechet_distance(extract_features(ext,
                                                        Generator.from_checkpoint(ckpt, device="cpu").sample(400,
                                                                                                             seed=1)),
                                                                                                             real)
        if gamma == 0.0:
            torch.manual_seed(cfg.seed)
            from i2i.recipes import pipeline_class

            untrained = Generator(pipeline_class("dcgan")(cfg).nets["G"], cfg, device="cpu")
            fids["untrained"] = frechet_distance(extract_features(ext, untrained.sample(400, seed=1)), real)
    print(f"E||grad D(real)||^2: without R1 {norms[0.0]:.4g}, with R1 (gamma 10) {norms[10.0]:.4g}; FID {fids}")
    assert norms[10.0] < 0.5 * norms[0.0]  # measured: 0.029 against 0.089
    assert fids[10.0] < 0.5 * fids["untrained"] and fids[10.0] < 1.2 * fids[0.0]


@pytest.mark.slow
def test_n_critic_5_lets_wgan_gp_learn_where_alternating_updates_collapse(tmp_path, shapes2k, make_config):
    """WGAN-GP needs a critic trained near optimality: at the same 300 generator updates (16-pixel
    shapes, batch 64, lr 3e-4, Adam betas 0 / 0.9), alternating D and G (n_critic 1) leaves the
    generator near collapse (diversity, seeds 0 / 1 / 2: 0.22 / 0.06 / 0.17 of the data's; pixel
    FID 10.5 / 14.2 / 12.3, the mean image's 14.0), while 5 critic updates per G update learn
    (diversity 0.60 / 0.64 / 0.64, FID 7.5 / 8.1 / 7.3). (At 32 pixels, lr 1e-4, seeds 0 / 1:
    diversity 0.08 / 0.06 against 0.48 / 0.40. Per iteration instead, n_critic 1 at 1500
    iterations reaches FID 9.9 there: the option buys quality per generator update.)"""
    for seed in SEEDS[:1]:  # the costliest claim (1,800 steps per seed): seed 0 in the suite, all three measured
        r = {}
        for n in (1, 5):
            cfg = dcgan_config(make_config, tmp_path / f"{n}_{seed}", shapes2k, seed=seed,
                               discriminator={"norm": "none"},
                               loss={"gan_mode": "wgangp", "gp_weight": 10.0}, schedule={"policy": "constant"},
                               optim={"n_critic": n, "lr_g": 3e-4, "lr_d": 3e-4, "beta1": 0.0, "beta2": 0.9},
                               data={"batch_size": 64, "image_size": 16}, train={"steps": 300 * n, "log_every": 500})
            r[n] = evaluate_generation(i2i.train(cfg)["checkpoint"], shapes2k, n=400, features="pixels")
        print(seed, {n: {k: round(v, 3) for k, v in x["models"][0].items() if k != "model"} for n, x in r.items()})
        # [2]: the mean image
        assert r[5]["fid"] < 0.8 * r[1]["fid"] and r[5]["fid"] < 0.7 * r[5]["models"][2]["fid"], seed
        assert r[5]["diversity"] > 0.45 > 0.3 > r[1]["diversity"], seed


# ------------------------------------------------------------------ projection discriminator
def test_projection_discriminator_adds_the_class_embedding_inner_product():
    torch.manual_seed(0)
    d = DCGANDiscriminator(in_channels=1, image_size=16, base_channels=4, num_classes=3,
                           conditioning="projection").eval()
    assert d.label_map is None and d.projection is not None
    x = torch.randn(4, 1, 16, 16)
    labels = torch.tensor([0, 1, 2, 0])
    h = d.model[:-1](x)
    expected = d.model[-1](h).flatten() + (d.projection(labels) * h.sum((2, 3))).sum(1)
    assert torch.allclose(d(x, labels), expected, atol=1e-6)
    assert not torch.allclose(d(x, labels), d(x, (labels + 1) % 3))  # the label matters
    with pytest.raises(ValueError, match="conditioning='both'"):
        DCGANDiscriminator(num_classes=3, conditioning="both")


# ------------------------------------------------------------------ diagnostics
def _shape_classifier() -> torch.nn.Module:
    """Disc (0) or square (1) from the filled share of the bounding box: pi/4 against 1. The
    shape is what is brighter than halfway between the image's darkest and brightest pixel
    (the blur's rim would round a square's corners)."""

    class Squareness(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x[:, :1]
            lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
            mask = (x > 0.5 * (lo + hi)).float()
            area = mask.sum((1, 2, 3))
            # a shape's extent: rows / columns at least 1/4 as full as the fullest
            rows, cols = mask.sum(3), mask.sum(2)
            # (stray pixels of samples do not count)
            h = (rows >= 0.25 * rows.amax(2, keepdim=True)).float().sum((1, 2))
            w = (cols >= 0.25 * cols.amax(2, keepdim=True)).float().sum((1, 2))
            s = area / (h * w + 1.0)  # disc about 0.78, square about 0.97 (the +1: no division by 0)
            return torch.stack([0.88 - s, s - 0.88], 1) * 20

    return Squareness().eval()


@pytest.fixture(scope="module")
def classifier_onnx(tmp_path_factory) -> str:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = tmp_path_factory.mktemp("clf") / "shapes.onnx"
    batch, h, w = torch.export.Dim("batch"), torch.export.Dim("h", min=4), torch.export.Dim("w", min=4)
    torch.onnx.export(_shape_classifier(), (torch.zeros(2, 1, 32, 32),), str(path), dynamo=True,
                      dynamic_shapes=({0: batch, 2: h, 3: w},), external_data=False)
    return str(path)


def test_the_shape_classifier_is_right_on_real_images(shapes, classifier_onnx):
    ds = ImageDataset(shapes, GenerationDataConfig(image_size=32), channels=1, train=False, labels=True)
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    y = torch.tensor([ds[i]["label"] for i in range(len(ds))])
    pred = extract_features(load_classifier(classifier_onnx), x).argmax(1)
    assert float((pred == y).float().mean()) > 0.97  # measured: 1.0


def test_diversity_and_coverage_flag_a_collapsed_generator(shapes, classifier_onnx):
    ds = ImageDataset(shapes, GenerationDataConfig(image_size=32), channels=1, train=False)
    real = torch.stack([ds[i]["image"] for i in range(0, 400, 2)])  # both halves hold discs and squares
    other = torch.stack([ds[i]["image"] for i in range(1, 400, 2)])
    ext = feature_extractor("pixels")
    fr = extract_features(ext, real)
    clf = load_classifier(classifier_onnx)
    real_logits = extract_features(clf, real)
    healthy = generation_diagnostics(other, extract_features(ext, other), fr, classifier=clf, real_logits=real_logits)
    collapsed_images = other[:1].expand(200, -1, -1, -1)  # one shape, 200 times
    collapsed = generation_diagnostics(collapsed_images, extract_features(ext, collapsed_images), fr, classifier=clf,
                                       real_logits=real_logits, fake_labels=torch.zeros(200, dtype=torch.long))
    assert 0.85 < healthy["diversity"] < 1.15 and healthy["coverage"] == 1.0
    assert collapsed["diversity"] < 1e-6 and collapsed["coverage"] == 0.5
    # The one shape is a disc or a square: label accuracy is 1 or 0 for "class 0 asked every time".
    assert collapsed["label_accuracy"] in (0.0, 1.0)
    # One image per class: varied overall (the classes differ), collapsed within each class.
    far = int((other - other[:1]).flatten(1).norm(dim=1).argmax())  # the image least like the first
    per_class = torch.cat([other[:1].expand(100, -1, -1, -1), other[far : far + 1].expand(100, -1, -1, -1)])
    two = generation_diagnostics(per_class, extract_features(ext, per_class), fr,
                                 fake_labels=torch.arange(2).repeat_interleave(100))
    assert two["diversity"] > 0.5 and two["class_diversity"] < 1e-6
    assert "class_diversity" not in healthy  # unconditional: no classes to look within
    assert class_diversity(torch.tensor([[0.0], [2.0], [5.0], [5.0]]), torch.tensor([0, 0, 1, 1]),
                           torch.tensor([[0.0], [1.0]])) == 1.0
    assert mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert diversity(torch.zeros(4, 2), torch.eye(2).repeat(2, 1)) == 0.0
    assert class_coverage(torch.tensor([0, 0, 0, 2]), torch.tensor([0, 1, 2, 2]), 3) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="ONNX only"):
        load_classifier(__file__)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_classifier("nope.onnx")


@pytest.fixture(scope="module")
def shapes2k(tmp_path_factory):
    import make_shapes

    out = tmp_path_factory.mktemp("shapes2k")
    make_shapes.build(out, n=2000, size=32, seed=0)
    return out


@pytest.mark.slow
def test_projection_discriminator_teaches_the_classes_and_validation_and_page_show_it(tmp_path, shapes2k, make_config,
                                                                                    classifier_onnx):
    """Class-conditional DCGAN on 16-pixel discs and squares, the same budget (1500 steps, batch
    64, lr 1e-3) with the label entering D as an input channel (``concat``) and by projection:
    projection makes G draw the class asked for far more often at every seed (label accuracy by
    the shape classifier, seeds 0 / 1 / 2: 0.77 / 0.80 / 0.81 against 0.59 / 0.60 / 0.58; at 32
    pixels and 2000 steps: 0.83 / 0.86 / 0.84 against 0.64 / 0.58 / 0.61). The validation step
    logs diversity, class diversity, coverage and label accuracy by the user's classifier, and
    `i2i eval` puts them on the results page beside the baselines."""
    shapes = shapes2k

    def run(conditioning: str, seed: int, **train: object) -> tuple[str, object]:
        cfg = dcgan_config(make_config, tmp_path / f"{conditioning}{seed}", shapes, seed=seed,
                           generator={"num_classes": 2},
                           discriminator={"conditioning": conditioning}, schedule={"policy": "constant"},
                           optim={"lr_g": 1e-3, "lr_d": 1e-3},
                           data={"batch_size": 64, "image_size": 16, "val_root": str(shapes), "flip": True},
                           train={"steps": 1500, "log_every": 500, "ema_decay": 0.99, **train})
        return i2i.train(cfg)["checkpoint"], cfg

    accuracy, out = {}, tmp_path / "eval"
    for seed in TWO_SEEDS:
        for conditioning in ("concat", "projection"):
            if (conditioning, seed) == ("projection", 0):  # the run the user looks at: validation, then `i2i eval`
                ckpt, cfg = run(conditioning, seed, val_every=750, val_features="pixels", val_limit=200,
                                val_classifier=classifier_onnx)
                assert main(["eval", ckpt, "--data", str(shapes), "--features", "pixels", "--n", "400",
                             "--classifier", classifier_onnx, "--out", str(out)]) == 0
                r = json.loads((out / "metrics.json").read_text())
            else:
                r = evaluate_generation(run(conditioning, seed)[0], shapes, n=400, features="pixels",
                                        classifier=classifier_onnx)
            accuracy[conditioning, seed] = r["label_accuracy"]
            assert r["coverage"] == 1.0, (conditioning, seed)
    print("label accuracy:", {f"{c} {s}": round(a, 3) for (c, s), a in accuracy.items()})
    for seed in TWO_SEEDS:  # chance: 0.5
        assert accuracy["projection", seed] > 0.7 and accuracy["projection", seed] > accuracy["concat",
                                                                                              seed] + 0.1, seed

    # What the user sees of the seed-0 projection run: validation during training, the page of `i2i eval`.
    val = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines() if "val_FID" in x]
    assert [r["step"] for r in val] == [750, 1500]
    assert {"val_diversity", "val_class_diversity", "val_coverage", "val_label_accuracy", "val_KID"} <= set(val[-1])
    r = json.loads((out / "metrics.json").read_text())
    models = {m["model"]: m for m in r["models"]}
    print({k: {m: round(v, 3) for m, v in row.items() if m != "model"} for k, row in models.items()})
    # Not one image per class (what a learned N(0, 1) label embedding in G did: class diversity ~0).
    assert r["class_diversity"] > 0.8 and r["fid"] < 0.1 * models["untrained"]["fid"]
    assert models["mean image"]["diversity"] < 1e-6 and models["mean image"]["class_diversity"] < 1e-6
    assert models["mean image"]["coverage"] == 0.5 and models["mean image"]["label_accuracy"] < 0.6
    assert r["fid"] < models["mean image"]["fid"]
    page = (out / "index.html").read_text()
    for text in ("label_accuracy", "class_diversity", "coverage", "mean image", "val_label_accuracy",
                 "one class per column"):
        assert text in page
    assert (out / "images" / "samples.png").is_file() and (out / "images" / "real.png").is_file()


# ------------------------------------------------------------------ latent arithmetic
def test_latent_arithmetic_api_and_cli(tmp_path, shapes, make_config, capsys):
    cfg = dcgan_config(make_config, tmp_path, shapes, train={"steps": 2})
    ckpt = i2i.train(cfg)["checkpoint"]
    gen = Generator.from_checkpoint(ckpt, device="cpu")
    # Sample i of a grid is decode(latents(n, seed)[i]): exemplars can be picked from a grid.
    z = gen.latents(16, seed=3)
    assert torch.allclose(gen.decode(z), gen.sample(16, seed=3), atol=1e-6)
    r = gen.arithmetic("1,2,3 - 4,5 + 6", seed=3, n=16, variants=4)
    expected = z[[1, 2, 3]].mean(0) - z[[4, 5]].mean(0) + z[6]
    assert torch.allclose(r["result"][:1], gen.decode(expected), atol=1e-6)
    assert torch.allclose(r["terms"], gen.decode(torch.stack([z[[1, 2, 3]].mean(0), z[[4, 5]].mean(0), z[6]])),
                          atol=1e-6)
    # noisy variations
    assert r["result"].shape == (4, 1, 32, 32) and not torch.allclose(r["result"][1], r["result"][0])
    assert parse_arithmetic(" 3,17,40 - 5,9 + 22 ") == [(1.0, [3, 17, 40]), (-1.0, [5, 9]), (1.0, [22])]
    for bad in ("", "3 -", "a + b", "3,,4"):
        with pytest.raises(ValueError, match="write terms of sample indices"):
            parse_arithmetic(bad)
    with pytest.raises(ValueError, match="index 16 is out of range.*0..15"):
        gen.arithmetic("16", seed=3, n=16)
    out = tmp_path / "arith"
    assert main(["sample", ckpt, str(out), "--n", "16", "--seed", "3", "--arithmetic", "1,2,3 - 4,5 + 6", "--variants",
                 "3"]) == 0
    assert "arithmetic.png" in capsys.readouterr().out
    from i2i.data.io import read_image

    grid = read_image(out / "arithmetic.png")
    assert grid.shape[1] == 2 + 6 * (32 + 2)  # 3 terms + 3 results, 32 px cells with 2 px gaps
    assert main(["sample", ckpt, str(out), "--arithmetic", "1 +"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", TWO_SEEDS)
def test_latent_arithmetic_transfers_an_attribute(tmp_path, shapes, make_config, seed):
    """On a DCGAN trained on shapes, 'large - small + small' makes the third term's shape larger
    (Radford et al.'s arithmetic, with the shape's mass, size times brightness, as the attribute)."""
    cfg = dcgan_config(make_config, tmp_path, shapes, seed=seed, generator={"base_channels": 32, "latent_dim": 64},
                       discriminator={"base_channels": 32}, data={"batch_size": 64},
                       train={"steps": 300, "log_every": 50, "ema_decay": 0.999})
    gen = Generator.from_checkpoint(i2i.train(cfg)["checkpoint"], device="cpu")
    x = gen.sample(256, seed=5)
    mass = ((x + 1) / 2).mean((1, 2, 3))  # how much shape: size times brightness
    order = torch.argsort(mass)
    small, large = order[:30].tolist(), order[-30:].tolist()
    r = gen.arithmetic([(1.0, large[:15]), (-1.0, small[:15]), (1.0, small[15:])], seed=5, n=256)
    terms, result = ((r["terms"] + 1) / 2).mean((1, 2, 3)), float(((r["result"][0] + 1) / 2).mean())
    print(f"shape mass: mean(A) {terms[0]:.3f}, mean(B) {terms[1]:.3f}, mean(C) {terms[2]:.3f} -> A - B + C "
          f"{result:.3f}")
    assert terms[0] > terms[1] and terms[0] > terms[2]  # the averaged exemplars keep their attribute
    # C gained at least half of what separates A from B (measured, seeds 0 / 1 / 2: 2.2 / 0.83 /
    # 0.98 times the difference A - B; decoding C alone, the baseline, gains nothing).
    assert result - float(terms[2]) > 0.5 * float(terms[0] - terms[1])
