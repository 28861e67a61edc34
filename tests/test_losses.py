import math

import pytest
import torch

from i2i.losses import GANLoss, gradient_penalty


def test_vanilla_values_on_logits():
    g = GANLoss("vanilla")
    zeros = torch.zeros(2, 1, 3, 3)
    assert g.d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert g.g_loss(torch.full((4,), 2.0)).item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-5)


def test_vanilla_generator_loss_is_non_saturating():
    # When D confidently rejects fakes (logit -10), log(1 - D) would give a vanishing
    # gradient; the non-saturating -log D keeps it near 1.
    x = torch.tensor([-10.0], requires_grad=True)
    GANLoss("vanilla").g_loss(x).backward()
    assert x.grad.abs().item() > 0.99


def test_lsgan_hinge_wgan_values():
    real, fake = torch.tensor([0.5, 1.5]), torch.tensor([-0.5, 0.25])
    ls = GANLoss("lsgan")
    assert ls.d_loss(real, fake).item() == pytest.approx((0.25 + 0.25) / 2 + (0.25 + 0.0625) / 2)
    assert ls.g_loss(fake).item() == pytest.approx((2.25 + 0.5625) / 2)
    h = GANLoss("hinge")
    assert h.d_loss(real, fake).item() == pytest.approx((0.5 + 0) / 2 + (0.5 + 1.25) / 2)
    assert h.g_loss(fake).item() == pytest.approx(-(-0.5 + 0.25) / 2)
    w = GANLoss("wgangp")
    assert w.d_loss(real, fake).item() == pytest.approx(fake.mean().item() - real.mean().item())


def test_half_precision_logits_give_float32_losses():
    assert GANLoss("vanilla").g_loss(torch.zeros(3, dtype=torch.bfloat16)).dtype == torch.float32


def test_unknown_mode():
    with pytest.raises(ValueError, match="wgangp"):
        GANLoss("wgan")


def test_gradient_penalty_value_and_gradient_to_critic():
    # Linear critic f(x) = <w, x>: its input gradient is w everywhere, so the penalty is
    # exactly weight * (|w| - 1)^2, and it must train w.
    w = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)  # |w| = sqrt(12 * 0.25)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    gp = gradient_penalty(critic, real, fake, weight=10.0)
    assert gp.item() == pytest.approx(10.0 * (math.sqrt(3.0) - 1) ** 2, rel=1e-5)
    gp.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
