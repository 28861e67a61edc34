"""GAN losses on discriminator logits, the WGAN-GP gradient penalty, CUT's contrastive PatchNCE loss
(:func:`patch_nce`) and the single-frame temporal regularisation (:func:`motion_consistency`).

All losses take raw logits and compute in float32, so they are safe under autocast.

=========  ======================================  ==============================
mode       discriminator loss                      generator loss
=========  ======================================  ==============================
vanilla    BCE(real, 1) + BCE(fake, 0)             BCE(fake, 1) (non-saturating)
lsgan      MSE(real, 1) + MSE(fake, 0)             MSE(fake, 1)
hinge      relu(1 - real) + relu(1 + fake)         -fake
wgangp     fake - real (+ gradient penalty)        -fake
ragan      (BCE(real - E fake, 1)                  (BCE(real - E fake, 0)
           + BCE(fake - E real, 0)) / 2            + BCE(fake - E real, 1)) / 2
=========  ======================================  ==============================

``ragan`` is ESRGAN's relativistic average GAN: D judges whether a real image looks more
real than the average generated one, and the generator's loss sees the real images too. Both
losses are halved as in BasicSR's ESRGAN model, so its loss weights (``gan`` 5e-3) carry over;
in D's loss the other side's mean is a constant (detached), as there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .augment import DiscriminatorAugment, parse_policy
from .hints import first_line
from .options import GANMode, choices
from .weights import imagenet_normalize, load_state_file, torchvision_cached_weights

GAN_MODES = choices(GANMode)


def full(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least single precision: half and bfloat16 (autocast's outputs) become float32, float64
    stays (so a double-precision check, e.g. ``tools/cut_parity.py``, is not rounded to float32)."""
    return x if x.dtype == torch.float64 else x.float()


class GANLoss:
    """Adversarial loss for one ``mode``; see the module table.

    ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)`` return scalar
    float32 tensors; logits are any shape (PatchGAN maps are averaged). ``r1_weight``
    (gamma) adds the R1 penalty on real data to :meth:`discriminator_loss` in any mode;
    ``gp_weight`` weights the WGAN-GP gradient penalty (``wgangp`` mode only). ``augment``:
    what D's inputs pass through, real and fake alike, in :meth:`discriminator_loss` and
    :meth:`generator_loss` (:class:`~i2i.augment.DiscriminatorAugment`; None: nothing).
    """

    def __init__(self, mode: str = "vanilla", *, r1_weight: float = 0.0, gp_weight: float = 10.0,
                 augment: DiscriminatorAugment | None = None) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode={mode!r} is not supported; choose one of {', '.join(GAN_MODES)}")
        if r1_weight < 0 or gp_weight < 0:
            raise ValueError(f"r1_weight={r1_weight} and gp_weight={gp_weight} must be >= 0")
        self.mode = mode
        self.r1_weight = r1_weight
        self.gp_weight = gp_weight
        self.augment = augment

    @classmethod
    def from_config(cls, loss: Any) -> GANLoss:
        """The adversarial loss a ``loss`` config section asks for (its ``gan_mode``,
        ``r1_weight``, ``gp_weight`` and the ``augment_*`` / ``ada_*`` keys: every pipeline's
        :class:`~i2i.config.LossConfig` has them)."""
        policy = parse_policy(loss.augment_policy)
        augment = None
        if policy:
            adaptive = loss.ada_target is not None
            augment = DiscriminatorAugment(policy, p=0.0 if adaptive else loss.augment_p, ada_target=loss.ada_target,
                                           ada_kimg=loss.ada_kimg, threshold=0.5 if loss.gan_mode == "lsgan" else 0.0)
        return cls(loss.gan_mode, r1_weight=loss.r1_weight, gp_weight=loss.gp_weight, augment=augment)

    def judge(self, critic: Callable[[torch.Tensor], torch.Tensor],
              condition: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """``critic`` as the losses call it: on ``[condition, x]`` (channels concatenated, for a
        conditional D; the condition repeated when ``x`` holds several batches), through
        :attr:`augment` (one draw for the whole pair)."""
        if condition is None and self.augment is None:
            return critic
        augment = self.augment

        def judged(x: torch.Tensor) -> torch.Tensor:
            groups = None
            if condition is not None:
                c = (
                    condition
                    if condition.shape[0] == x.shape[0]
                    else condition.repeat(x.shape[0] // condition.shape[0], 1, 1, 1)
                )
                x, groups = torch.cat([c, x], 1), (c.shape[1], x.shape[1])
            return critic(augment(x, groups) if augment is not None else x)

        return judged

    def _target(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        x = full(logits)
        t = torch.ones_like(x) if real else torch.zeros_like(x)
        if self.mode in ("vanilla", "ragan"):
            return F.binary_cross_entropy_with_logits(x, t)
        return F.mse_loss(x, t)

    def ragan_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor, *,
                    for_generator: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The two halved relativistic terms ``(real, fake)``: for D, real judged against the mean
        fake (label 1) and fake against the mean real (label 0), each mean detached; for the
        generator, the labels swapped and nothing detached."""
        r, f = full(real_logits), full(fake_logits)
        if not for_generator:
            return 0.5 * self._target(r - f.mean().detach(), True), 0.5 * self._target(f - r.mean().detach(), False)
        return 0.5 * self._target(r - f.mean(), False), 0.5 * self._target(f - r.mean(), True)

    def real_loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Discriminator's loss term for logits of real images (not for ``ragan``: see :meth:`d_loss`)."""
        if self.mode == "ragan":
            raise ValueError("gan_mode='ragan' judges real against fake images: use d_loss(real_logits, fake_logits)")
        if self.mode in ("vanilla", "lsgan"):
            return self._target(logits, True)
        if self.mode == "hinge":
            return F.relu(1.0 - full(logits)).mean()
        return -full(logits).mean()

    def fake_loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Discriminator's loss term for logits of generated images (not for ``ragan``)."""
        if self.mode == "ragan":
            raise ValueError("gan_mode='ragan' judges fake against real images: use d_loss(real_logits, fake_logits)")
        if self.mode in ("vanilla", "lsgan"):
            return self._target(logits, False)
        if self.mode == "hinge":
            return F.relu(1.0 + full(logits)).mean()
        return full(logits).mean()

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Discriminator loss: real term + fake term (no gradient penalty; see below)."""
        if self.mode == "ragan":
            return sum(self.ragan_terms(real_logits, fake_logits, for_generator=False))  # type: ignore[return-value]
        return self.real_loss(real_logits) + self.fake_loss(fake_logits)

    def discriminator_loss(
        self,
        critic: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        *,
        scale: float = 1.0,
        batched: bool = False,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The whole D objective of one step: ``scale * (real term + fake term)``, plus the
        gradient penalty (weighted ``gp_weight``) in ``wgangp`` mode. ``critic`` maps ``(N, C, H, W)`` images to logits
        (a conditional one is a closure holding its condition); ``fake`` is detached here, so
        this loss never reaches the generator. ``critic`` is called on ``real`` first.
        With ``r1_weight`` the R1 penalty of the same real logits is added (:func:`r1_penalty`).
        ``batched``: judge real and fake images in one call of ``critic`` on both, concatenated
        (equal within float rounding for a critic that treats samples independently, see
        :func:`i2i.nets.blocks.samples_independent`; images of different shapes keep two calls).
        ``condition``: a conditional D's input image, concatenated before each image it judges;
        with :attr:`augment`, every image D sees is augmented first (see :meth:`judge`) and the
        real logits feed its adaptive probability.
        Returns the loss and its detached parts ``{"real", "fake"[, "gp"][, "r1"]}``."""
        critic = self.judge(critic, condition)
        if self.r1_weight:
            real = real.detach().requires_grad_(True)
        if batched and real.shape[1:] == fake.shape[1:]:
            real_logits, fake_logits = critic(torch.cat([real, fake.detach()])).split([real.shape[0], fake.shape[0]])
        else:
            real_logits = critic(real)
            fake_logits = critic(fake.detach())
        if self.augment is not None:
            self.augment.observe(real_logits)
        if self.mode == "ragan":
            real_term, fake_term = self.ragan_terms(real_logits, fake_logits, for_generator=False)
        else:
            real_term, fake_term = self.real_loss(real_logits), self.fake_loss(fake_logits)
        loss = scale * (real_term + fake_term)
        parts = {"real": real_term.detach(), "fake": fake_term.detach()}
        if self.r1_weight:
            r1 = r1_penalty(real_logits, real, self.r1_weight)
            loss = loss + r1
            parts["r1"] = r1.detach()
        if self.mode == "wgangp":
            gp = gradient_penalty(critic, real, fake, self.gp_weight)
            loss = loss + gp
            parts["gp"] = gp.detach()
        return loss, parts

    def generator_loss(self, critic: Callable[[torch.Tensor], torch.Tensor], fake: torch.Tensor, *,
                       condition: torch.Tensor | None = None, real: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's adversarial loss for its images ``fake`` as ``critic`` judges them
        (after ``condition`` and :attr:`augment`, as in :meth:`discriminator_loss`). ``real``:
        real images of the same kind, which only ``ragan`` judges (every pipeline passes them;
        with other modes they cost nothing)."""
        judged = self.judge(critic, condition)
        if self.mode != "ragan":
            return self.g_loss(judged(fake))
        if real is None:
            raise ValueError("gan_mode='ragan' needs the real images in the generator's loss (generator_loss(..., "
                             "real=...))")
        with torch.no_grad():
            real_logits = judged(real.detach())
        return self.g_loss(judged(fake), real_logits)

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        """Generator loss for logits of its own images (non-saturating for vanilla; ``ragan``
        needs ``real_logits`` too)."""
        if self.mode == "ragan":
            if real_logits is None:
                raise ValueError("gan_mode='ragan' needs real_logits in g_loss")
            return sum(self.ragan_terms(real_logits, fake_logits, for_generator=True))  # type: ignore[return-value]
        if self.mode in ("vanilla", "lsgan"):
            return self._target(fake_logits, True)
        return -full(fake_logits).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * E[(||grad critic(x_hat)||_2 - 1)^2]`` (Gulrajani et al. 2017).

    ``x_hat`` mixes ``real`` and ``fake`` (both ``(N, C, H, W)``) with one uniform weight
    per sample. ``critic`` maps images to logits; a conditional critic is passed as a
    closure that concatenates its condition. The penalty is differentiable with respect
    to the critic's parameters (``create_graph=True``), so adding it to the D loss trains it.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).float().norm(2, dim=1)
    return weight * ((norms - 1.0) ** 2).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """R1 penalty ``weight / 2 * E[||grad_x D(x)||^2]`` on real images (Mescheder et al. 2018,
    "Which Training Methods for GANs do actually Converge?"): it pulls the discriminator's
    gradient on the data to zero, so it cannot push real samples around, which damps the
    oscillations of unregularised GANs. ``real`` must have ``requires_grad`` and
    ``real_logits`` (any shape; patch logits are summed per image) must come from it. The
    penalty is differentiable with respect to the discriminator (``create_graph=True``)."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return 0.5 * weight * grad.float().pow(2).flatten(1).sum(1).mean()


# torchvision's VGG19 feature indices of the ReLU after each conv ("relu{block}_{conv}").
VGG19_RELU = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15, "relu3_4": 17,
    "relu4_1": 20, "relu4_2": 22, "relu4_3": 24, "relu4_4": 26, "relu5_1": 29, "relu5_2": 31, "relu5_3": 33,
    "relu5_4": 35,
}
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's name for VGG19_Weights.IMAGENET1K_V1
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE


def outside_change(output: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mask conservation (as joliGEN): the mean absolute change from ``source`` to ``output`` (both
    ``(N, C, H, W)``) where ``mask`` (``(N, 1, H, W)`` in [0, 1], 1 where the image may change) is 0."""
    return ((full(output) - full(source)).abs() * (1 - full(mask))).mean()


def patch_nce(query: torch.Tensor, key: torch.Tensor, *, batch_size: int, temperature: float = 0.07,
              batch_negatives: bool = False) -> torch.Tensor:
    """CUT's PatchNCE loss (Park et al., ECCV 2020) of one layer: each query patch must pick out the key
    patch at its own position among the others, as a ``temperature``-scaled softmax over cosine
    similarities.

    ``query``, ``key``: ``(batch_size * P, D)`` l2-normalised embeddings of the same ``P`` positions of
    each of ``batch_size`` images, image-major (:class:`~i2i.nets.patch_sampler.PatchSampler`); the
    keys are detached here (no gradient reaches them). Negatives are the other positions of the same
    image, or with ``batch_negatives`` of every image of the batch (the authors' option for
    single-image translation); the query-with-itself entries are set to -10 before scaling, as the
    authors do. Returns the per-query cross-entropy, ``(batch_size * P,)``, unreduced."""
    if query.shape != key.shape or query.dim() != 2:
        raise ValueError(f"query {tuple(query.shape)} and key {tuple(key.shape)} must both be (N * P, D)")
    key = key.detach()
    n, dim = query.shape
    positive = torch.bmm(query.view(n, 1, dim), key.view(n, dim, 1)).view(n, 1)
    groups = 1 if batch_negatives else batch_size
    q, k = query.view(groups, -1, dim), key.view(groups, -1, dim)
    negative = torch.bmm(q, k.transpose(2, 1))
    same = torch.eye(q.shape[1], device=query.device, dtype=torch.bool)[None]
    negative = negative.masked_fill(same, -10.0).view(-1, q.shape[1])
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=query.device), reduction="none")


def vgg19_weights_path(path: str | None = None) -> str:
    """The VGG19 weights file to use: ``path`` if given, else torchvision's cache entry.

    Raises ``FileNotFoundError`` saying exactly which file to put where; never falls
    back to random weights (a random VGG gives a meaningless perceptual loss).
    """
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"loss.vgg_weights file '{path}' does not exist; download {VGG19_URL} and point "
                                    "loss.vgg_weights at it")
        return path
    return torchvision_cached_weights(VGG19_FILE, needed_for="the perceptual loss (ImageNet VGG19)",
                                      otherwise=f"or set loss.vgg_weights: /path/to/{VGG19_FILE}")


def parse_vgg_layers(spec: str) -> dict[str, float]:
    """``"relu5_4"`` -> ``{"relu5_4": 1.0}``; ``"conv1_2:0.1,conv5_4:1"`` -> one weight per layer.
    Names: ``relu{block}_{conv}`` (after the activation, SRGAN) or ``conv{block}_{conv}`` (before
    it, ESRGAN). Raises ``ValueError`` naming the bad entry."""
    layers: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        name = name.strip()
        if name.replace("conv", "relu", 1) not in VGG19_RELU or not name.startswith(("conv", "relu")):
            raise ValueError(f"perceptual layer {name!r} is not a VGG19 layer: use relu1_1 ... relu5_4 (after the "
                             "activation) "
                             "or conv1_1 ... conv5_4 (before it), optionally with ':weight', comma-separated")
        try:
            layers[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"perceptual layer {part!r}: the weight after ':' must be a number") from None
    if not layers:
        raise ValueError("no perceptual layer given (e.g. 'relu5_4' or 'conv1_2:0.1,conv5_4:1')")
    return layers


def vgg19_index(name: str) -> int:
    """torchvision's ``vgg19().features`` index of a layer name (``conv`` is the ReLU's index - 1)."""
    return VGG19_RELU[name.replace("conv", "relu", 1)] - (1 if name.startswith("conv") else 0)


class VGGPerceptualLoss(torch.nn.Module):
    """Distance between VGG19 features of two images: Ledig et al.'s VGG loss (MSE after
    ``relu5_4``, features divided by 12.75) and ESRGAN's (features before the activation, L1,
    several layers weighted, as BasicSR's ``PerceptualLoss``).

    Inputs ``(N, 3, H, W)`` in [-1, 1] are mapped to ImageNet-normalised [0, 1]. ``layers``:
    one name or ``"name:weight,..."`` (:func:`parse_vgg_layers`); the loss is the weighted sum
    over layers of ``criterion`` (``mse`` or ``l1``, means) between the features divided by
    ``feature_scale``. The network is frozen and kept in eval mode. ``weights``: path of
    torchvision's ``vgg19`` state dict (see :func:`vgg19_weights_path`).
    """

    def __init__(self, layers: str = "relu5_4", *, weights: str | None = None, feature_scale: float = 12.75,
                 criterion: str = "mse") -> None:
        super().__init__()
        self.layers = parse_vgg_layers(layers)
        if criterion not in ("mse", "l1"):
            raise ValueError(f"perceptual criterion {criterion!r} must be 'mse' or 'l1'")
        from torchvision.models import vgg19  # torchvision imports torch._dynamo (~1.5 s): only where used

        net = vgg19(weights=None)
        state = load_state_file(vgg19_weights_path(weights), "the VGG19 weights (loss.vgg_weights)")
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"'{weights or VGG19_FILE}' is not a torchvision vgg19 state dict: "
                             f"{first_line(e)}") from None
        self.index = {name: vgg19_index(name) for name in self.layers}
        features = net.features[: max(self.index.values()) + 1]
        for m in features:
            if isinstance(m, torch.nn.ReLU):
                m.inplace = False  # a captured convolution output must survive the ReLU after it
        self.features = features.eval().requires_grad_(False)
        self.feature_scale = feature_scale
        self.criterion = F.mse_loss if criterion == "mse" else F.l1_loss

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        super().train(mode)
        self.features.eval()  # never batch/dropout behaviour: VGG19 has none, but stay explicit
        return self

    def _feats(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        wanted, out = set(self.index.values()), {}
        x = imagenet_normalize(x)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[i] = x / self.feature_scale
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar float32 loss; gradients flow to ``pred`` only."""
        with torch.no_grad():
            t = self._feats(target)
        p = self._feats(pred)
        total = torch.zeros((), device=pred.device)
        for name, weight in self.layers.items():
            i = self.index[name]
            total = total + weight * self.criterion(p[i].float(), t[i].float())
        return total


def random_motion(n: int, device: torch.device | str, *, shift: float = 0.04, degrees: float = 2.0,
                  zoom: float = 0.04) -> torch.Tensor:
    """``n`` random small camera motions as ``(n, 2, 3)`` affine matrices in normalised
    coordinates (:func:`torch.nn.functional.affine_grid`): a shift of up to ``shift`` of the
    half-width each way, a rotation of up to ``degrees``, a zoom within ``1 +- zoom``; drawn from
    torch's global generator (saved with checkpoints, so a resumed run draws the same)."""
    u = torch.rand(n, 4, device=device) * 2 - 1
    a = u[:, 0] * (degrees * torch.pi / 180)
    s = 1 + u[:, 1] * zoom
    cos, sin = torch.cos(a) * s, torch.sin(a) * s
    return torch.stack([torch.stack([cos, -sin, u[:, 2] * shift], 1), torch.stack([sin, cos, u[:, 3] * shift], 1)], 1)


def move(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` images moved by ``theta`` (:func:`random_motion`; the same motion at any
    resolution), bilinear, the border repeated."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def motion_consistency(generate: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                       theta: torch.Tensor | None = None) -> torch.Tensor:
    """How far a generator is from following a motion of its input: the mean
    ``|generate(T x) - T y|`` with ``y = generate(x)`` (any output size: super-resolution too), over
    the pixels ``T`` takes from inside the frame. With ``theta`` (:func:`random_motion`: shift,
    rotation, zoom, bilinear) it measures; without, it is the training term of
    ``loss.temporal_reg``, :func:`shift_consistency`. Float32."""
    if theta is None:
        return shift_consistency(generate, x, y)
    moved = generate(move(x, theta)).float()
    target = move(y.float(), theta)
    ones = torch.ones_like(target[:, :1])
    grid = F.affine_grid(theta.float(), list(ones.shape), align_corners=False)
    valid = (F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.999).float()
    return ((moved - target).abs() * valid).sum() / (valid.sum() * target.shape[1]).clamp_min(1)


def shift_consistency(generate: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                      max_shift: int = 4) -> torch.Tensor:
    """The single-frame temporal regularisation (after Eilertsen et al., CVPR 2019) of
    ``loss.temporal_reg``: ``|generate(S x) - S y|`` for a random whole-pixel shift ``S`` of the
    batch (up to ``max_shift`` pixels each way, never zero), ``y = generate(x)``. Whole pixels: no
    resampling, so the moved input keeps its noise and detail exactly, and the shifts that are not
    multiples of a strided net's step are where it aliases. ``S y`` is a fixed target (no gradient):
    the generator learns to move its output with its input without being pulled away from what it
    answers for ``x`` (measured: 27 % less motion inconsistency at -0.02 dB, against 50 % at
    -0.33 dB with gradients through both). The output shift is the input's times the scale; the
    wrapped-around border is left out."""
    s = y.shape[-1] // x.shape[-1]
    max_shift = max(1, min(max_shift, min(x.shape[-2:]) // 4))  # a small input keeps half of itself
    while True:
        dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,)))
        if dy or dx:
            break
    moved = generate(torch.roll(x, (dy, dx), (-2, -1))).float()
    target = torch.roll(y.float(), (dy * s, dx * s), (-2, -1)).detach()
    m = max_shift * s
    return (moved - target)[..., m:-m, m:-m].abs().mean()
