"""GAN objectives: values, signs and gradients of each kind, WGAN-GP, lazy R1, the stats contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan.networks import Discriminator
from medgan.training.diffaugment import DiffAugment
from medgan.training.loss import (
    LOSS_NAMES,
    GANLoss,
    centred_sign,
    class_depth_targets,
    class_mean_gap,
    class_mean_targets,
    class_statistic_gap,
    cutmix_masks,
    d2d_cross_entropy,
    d_hinge,
    d_loss,
    d_nonsaturating,
    g_loss,
    g_nonsaturating,
    gradient_penalty,
    mean_depth,
    radial_power,
    spectral_loss,
)


class LinearD(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w everywhere."""

    def __init__(self, shape: tuple[int, ...], norm: float) -> None:
        super().__init__()
        w = torch.randn(shape)
        self.w = nn.Parameter(w / w.norm() * norm)
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b


class QuadraticD(nn.Module):
    """D(x) = a * sum(x²): its input gradient is 2 a x."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.a * x.square().flatten(1).sum(1)


# Pure functions of logits.


def test_hinge_d_loss_is_zero_beyond_the_margins() -> None:
    assert d_hinge(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -2.0])) == 0.0
    assert d_hinge(torch.tensor([0.5, 3.0]), torch.tensor([-1.0, -2.0])) == pytest.approx(0.25)
    assert d_hinge(torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])) == pytest.approx(0.5)


@pytest.mark.parametrize("kind", LOSS_NAMES)
def test_d_loss_falls_as_real_logits_rise_and_fake_logits_fall(kind: str) -> None:
    real = torch.tensor([-0.5, 0.2, 0.7], requires_grad=True)
    fake = torch.tensor([-0.3, 0.1, 0.4], requires_grad=True)
    loss = d_loss(kind, real, fake)  # type: ignore[arg-type]
    assert d_loss(kind, real + 0.1, fake) < loss  # type: ignore[arg-type]
    assert d_loss(kind, real, fake - 0.1) < loss  # type: ignore[arg-type]
    loss.backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()


@pytest.mark.parametrize("kind", LOSS_NAMES)
def test_g_loss_gradient_pushes_fake_logits_up(kind: str) -> None:
    fake = torch.tensor([-2.0, 0.0, 2.0], requires_grad=True)
    g_loss(kind, fake).backward()  # type: ignore[arg-type]
    assert (fake.grad < 0).all()


def test_nonsaturating_matches_binary_cross_entropy() -> None:
    real, fake = torch.randn(5), torch.randn(5)
    bce = F.binary_cross_entropy_with_logits
    expected = bce(real, torch.ones(5)) + bce(fake, torch.zeros(5))
    torch.testing.assert_close(d_nonsaturating(real, fake), expected)
    torch.testing.assert_close(g_nonsaturating(fake), bce(fake, torch.ones(5)))
    torch.testing.assert_close(g_nonsaturating(fake), F.softplus(-fake).mean())


def test_wasserstein_and_hinge_g_losses_are_negative_mean_logit() -> None:
    real, fake = torch.randn(5), torch.randn(5)
    torch.testing.assert_close(d_loss("wgan-gp", real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(g_loss("wgan-gp", fake), -fake.mean())
    torch.testing.assert_close(g_loss("hinge", fake), -fake.mean())


def test_unknown_loss_name_lists_allowed_names() -> None:
    for call in (lambda: GANLoss("lsgan"), lambda: d_loss("lsgan", torch.zeros(1), torch.zeros(1))):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"'lsgan'.*allowed: hinge, nonsaturating, wgan-gp"):
            call()


def test_bad_regulariser_settings_raise() -> None:
    with pytest.raises(ValueError, match="r1_every"):
        GANLoss("hinge", r1_every=0)
    with pytest.raises(ValueError, match="r1_gamma"):
        GANLoss("hinge", r1_gamma=-1.0)


# WGAN-GP.


def test_gradient_penalty_vanishes_for_unit_norm_linear_d() -> None:
    real, fake = torch.randn(4, 1, 6, 6), torch.randn(4, 1, 6, 6)
    assert gradient_penalty(LinearD((1, 6, 6), 1.0), real, fake, None).item() == pytest.approx(0.0, abs=1e-6)
    assert gradient_penalty(LinearD((1, 6, 6), 3.0), real, fake, None).item() == pytest.approx(4.0, rel=1e-4)


def test_wgan_gp_discriminator_loss_adds_weighted_penalty_and_trains_d_only() -> None:
    D = LinearD((1, 6, 6), 3.0)
    real = torch.randn(4, 1, 6, 6)
    fake = torch.randn(4, 1, 6, 6, requires_grad=True)
    loss, stats = GANLoss("wgan-gp", gp_weight=10.0).discriminator_loss(
        D, real, fake, None, step=1, augment=None
    )
    assert stats["gp"].item() == pytest.approx(4.0, rel=1e-4)
    torch.testing.assert_close(loss, stats["d_adv"] + 10.0 * stats["gp"])
    loss.backward()
    assert D.w.grad is not None and D.w.grad.abs().sum() > 0
    assert fake.grad is None  # fake was detached by the loss


# Lazy R1.


def test_lazy_r1_runs_only_on_its_steps_and_matches_manual_value() -> None:
    loss_fn = GANLoss("nonsaturating", r1_gamma=2.0, r1_every=4)
    D = QuadraticD(0.5)
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    for step in range(9):
        loss, stats = loss_fn.discriminator_loss(D, real, fake, None, step=step, augment=None)
        if step % 4 == 0:
            # ∇_x D = 2 a x = x, so mean ||∇||² = mean ||x||².
            manual_r1 = real.square().flatten(1).sum(1).mean()
            torch.testing.assert_close(stats["r1"], manual_r1)
            torch.testing.assert_close(loss, stats["d_adv"] + 2.0 / 2 * manual_r1 * 4)
        else:
            assert "r1" not in stats
            torch.testing.assert_close(loss, stats["d_adv"])


def test_r1_gradient_reaches_discriminator_parameters() -> None:
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    grads = []
    for gamma in (0.0, 1.0):
        D = QuadraticD(0.5)
        loss, _ = GANLoss("hinge", r1_gamma=gamma, r1_every=1).discriminator_loss(
            D, real, fake, None, 0, None
        )
        loss.backward()
        grads.append(D.a.grad.clone())
    # d/da of gamma/2 * mean ||2 a x||² = gamma * 4 a * mean ||x||².
    expected_extra = 4 * 0.5 * real.square().flatten(1).sum(1).mean()
    torch.testing.assert_close(grads[1] - grads[0], expected_extra)


def test_r1_through_augmentation_and_spectral_norm_discriminator() -> None:
    D = Discriminator(num_classes=2, size=8, base_channels=4, max_channels=8)
    aug = DiffAugment("translation,cutout,color", p=0.5)
    real, fake = torch.rand(2, 1, 8, 8) * 2 - 1, torch.rand(2, 1, 8, 8) * 2 - 1
    y = torch.tensor([0, 1])
    loss, stats = GANLoss("hinge", r1_gamma=1.0, r1_every=1).discriminator_loss(D, real, fake, y, 0, aug)
    loss.backward()
    assert stats["r1"] > 0
    assert all(p.grad is not None for p in D.parameters())


# The stats contract and the augmentation hook.


@pytest.mark.parametrize("kind", LOSS_NAMES)
def test_discriminator_stats_are_detached_scalars(kind: str) -> None:
    D = LinearD((1, 4, 4), 1.0)
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    loss_fn = GANLoss(kind, r1_gamma=1.0, r1_every=1)  # type: ignore[arg-type]
    loss, stats = loss_fn.discriminator_loss(D, real, fake, None, step=0, augment=None)
    expected = {"d_loss", "d_adv", "d_real", "d_fake", "d_real_sign", "d_real_centred_sign", "r1"} | (
        {"gp"} if kind == "wgan-gp" else set()
    )
    assert set(stats) == expected
    for value in stats.values():
        assert value.ndim == 0 and not value.requires_grad
    torch.testing.assert_close(stats["d_loss"], loss.detach())
    real_logits = D(real)
    torch.testing.assert_close(stats["d_real"], real_logits.mean().detach())
    torch.testing.assert_close(stats["d_real_sign"], real_logits.sign().mean().detach())
    mid = 0.5 * (real_logits.mean() + D(fake).mean())
    torch.testing.assert_close(stats["d_real_centred_sign"], (real_logits - mid).sign().mean().detach())


def test_the_centred_ada_statistic_ignores_the_offset_a_hinge_d_leaves_free() -> None:
    # A D that scores every image alike, at a positive offset: ADA's sign reads "overfit" (1), centred reads 0.
    # (Offsets and spreads that are exact in binary, so that the midpoint has no rounding residue.)
    flat = torch.full((8,), 0.25)
    assert float(flat.sign().mean()) == 1.0 and float(centred_sign(flat, flat)) == 0.0
    real, fake = 0.25 + torch.tensor([-0.125, 0.125, -0.0625, 0.0625]), 0.25 + torch.tensor([0.0625, -0.0625, 0.125, -0.125])
    assert float(real.sign().mean()) == 1.0 and float(centred_sign(real, fake)) == 0.0
    # A D that separates every real from every fake reads 1 at any offset, and a reversed one -1.
    real, fake = torch.tensor([0.5, 0.6, 0.7, 0.8]), torch.tensor([0.1, 0.2, 0.3, 0.4])
    assert float(centred_sign(real, fake)) == 1.0 and float(centred_sign(real - 5, fake - 5)) == 1.0
    assert float(centred_sign(fake, real)) == -1.0
    # Half the reals above the midpoint: 0.
    assert float(centred_sign(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5]))) == 0.0


def test_augment_is_applied_to_real_and_fake_before_d() -> None:
    seen: list[Tensor] = []

    def record(x: Tensor, y: Tensor | None) -> Tensor:
        seen.append(x)
        return x.flatten(1).sum(1)

    real, fake = torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    loss_fn = GANLoss("hinge")
    loss_fn.discriminator_loss(record, real, fake, None, step=1, augment=lambda x: x + 1.0)
    loss_fn.generator_loss(record, fake, None, augment=lambda x: x + 1.0)
    assert len(seen) == 3 and all(torch.equal(x, torch.ones(2, 1, 4, 4)) for x in seen)


def test_generator_loss_sends_gradient_to_the_fakes() -> None:
    D = LinearD((1, 4, 4), 1.0)
    fake = torch.randn(4, 1, 4, 4, requires_grad=True)
    loss, stats = GANLoss("nonsaturating").generator_loss(D, fake, None, augment=None)
    assert set(stats) == {"g_loss", "g_fake"} and not stats["g_loss"].requires_grad
    loss.backward()
    # Descending the G loss moves the fakes along +w, i.e. raises their logits.
    step = -fake.grad
    assert (D(fake + 0.1 * step) > D(fake)).all()


def test_discriminator_loss_is_reproducible_under_a_seed() -> None:
    D = LinearD((1, 4, 4), 2.0)
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    loss_fn = GANLoss("wgan-gp")
    aug = DiffAugment(p=0.7)
    torch.manual_seed(5)
    first, _ = loss_fn.discriminator_loss(D, real, fake, None, 0, aug)
    torch.manual_seed(5)
    second, _ = loss_fn.discriminator_loss(D, real, fake, None, 0, aug)
    assert torch.equal(first, second)


def test_radial_power_is_flat_for_white_noise_and_peaks_at_a_sine_frequency():
    torch.manual_seed(0)
    flat = radial_power(torch.randn(64, 1, 32, 32) * 2.0)
    assert flat.shape == (16,)
    # ortho FFT of unit-variance noise: power 1 per coefficient, 4 for sigma 2 (ring 0 holds the removed mean)
    assert torch.allclose(flat[1:], torch.full((15,), 4.0), rtol=0.1)
    xs = torch.arange(32.0)
    sine = torch.sin(2 * torch.pi * 0.25 * xs).expand(2, 1, 32, 32)  # 0.25 cycles/pixel along x
    p = radial_power(sine)
    assert int(p.argmax()) == 8  # 0.25 / 0.5 * 16 rings
    assert p[8] > 100 * p[torch.arange(16) != 8].max()
    vol = radial_power(torch.randn(4, 2, 8, 8, 8), bins=3)
    assert vol.shape == (3,) and torch.all(vol > 0)
    with pytest.raises(ValueError, match="radial_power needs"):
        radial_power(torch.randn(4, 1, 16))


def test_spectral_loss_is_zero_on_matching_spectra_and_pushes_smooth_fakes_toward_real_texture():
    torch.manual_seed(0)
    real = torch.randn(16, 1, 16, 16)
    assert float(spectral_loss(real, real)) == 0.0
    half = spectral_loss(real * 0.5 ** 0.5, real)  # half the power in every ring but ring 0 (the removed mean)
    assert float(half) == pytest.approx(7 / 8 * torch.log(torch.tensor(0.5)).item() ** 2, rel=1e-3)
    fake = (real * 0.3).requires_grad_(True)
    spectral_loss(fake, real).backward()
    # too little power everywhere: descending the loss scales the fakes up (the gradient points against them)
    assert float((fake.grad * fake).sum()) < 0


def test_generator_loss_adds_the_weighted_spectral_term_and_needs_the_real_batch():
    torch.manual_seed(0)
    D = LinearD((1, 8, 8), norm=1.0)
    fake, real = torch.randn(4, 1, 8, 8) * 0.1, torch.randn(4, 1, 8, 8)
    plain, _ = GANLoss("hinge").generator_loss(D, fake, None)
    total, stats = GANLoss("hinge", spectral_weight=2.0).generator_loss(D, fake, None, real=real)
    assert float(stats["g_spectral"]) == pytest.approx(float(spectral_loss(fake, real)))
    assert float(total) == pytest.approx(float(plain) + 2.0 * float(stats["g_spectral"]), rel=1e-5)
    assert float(stats["g_loss"]) == pytest.approx(float(total))
    assert "g_spectral" not in GANLoss("hinge").generator_loss(D, fake, None, real=real)[1]
    with pytest.raises(ValueError, match="needs the real batch"):
        GANLoss("hinge", spectral_weight=1.0).generator_loss(D, fake, None)
    with pytest.raises(ValueError, match="spectral_weight must be >= 0"):
        GANLoss("hinge", spectral_weight=-1.0)


def _d_loss_with(D, real, fake, y, stat: str, **weights: float) -> tuple[float, float, float]:
    """D's hinge loss without and with the terms ``weights`` turn on, and the logged value of ``stat``."""
    plain, _ = GANLoss("hinge").discriminator_loss(D, real, fake, y, step=1)
    total, stats = GANLoss("hinge", **weights).discriminator_loss(D, real, fake, y, step=1)
    return float(plain), float(total), float(stats[stat])


def test_recon_weight_adds_the_decoders_squared_error_on_real_images_to_d_only():
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=16, base_channels=8, max_channels=16, recon=True).eval()
    real, fake = torch.rand(4, 1, 16, 16) * 2 - 1, torch.randn(4, 1, 16, 16)
    y = torch.tensor([0, 1, 1, 0])
    logits, recon = D(real, y, return_recon=True)
    assert recon.shape == real.shape and float(recon.abs().max()) <= 1.0
    assert torch.equal(logits, D(real, y))  # the decoder does not change the adversarial logit
    mse = float(F.mse_loss(recon, real))

    plain_d, total_d, term = _d_loss_with(D, real, fake, y, "d_recon", recon_weight=2.0)
    assert term == pytest.approx(mse, rel=1e-5)
    assert total_d == pytest.approx(plain_d + 2.0 * mse, rel=1e-5)
    # The error reaches the decoder and the blocks below its tap, not the blocks above it.
    D.zero_grad()
    F.mse_loss(D(real, y, return_recon=True)[1], real).backward()
    grads = {name: p.grad for name, p in D.named_parameters()}
    assert float(grads["decoder.1.weight"].abs().sum()) > 0
    assert float(grads["blocks.0.conv1.parametrizations.weight.original"].abs().sum()) > 0
    assert grads["blocks.2.conv1.parametrizations.weight.original"] is None
    g_plain, _ = GANLoss("hinge").generator_loss(D, fake, y)
    g_recon, g_stats = GANLoss("hinge", recon_weight=2.0).generator_loss(D, fake, y)
    assert float(g_recon) == pytest.approx(float(g_plain)) and "d_recon" not in g_stats
    with pytest.raises(ValueError, match=r"needs a discriminator with a decoder \(recon=True\)"):
        GANLoss("hinge", recon_weight=1.0).discriminator_loss(lambda x, y, **kw: D(x, y), real, fake, y, step=1)
    with pytest.raises(ValueError, match="recon_weight must be >= 0"):
        GANLoss("hinge", recon_weight=-1.0)


def test_unet_weight_adds_the_per_pixel_hinge_to_both_players_and_to_r1():
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=16, base_channels=8, max_channels=16, unet=True).eval()
    real, fake = torch.rand(4, 1, 16, 16) * 2 - 1, torch.randn(4, 1, 16, 16)
    y = torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        real_px, fake_px = D(real, y, return_pixels=True)[1], D(fake, y, return_pixels=True)[1]
    expected = float(F.relu(1 - real_px).mean() + F.relu(1 + fake_px).mean())
    plain_d, total_d, term = _d_loss_with(D, real, fake, y, "d_pixel", unet_weight=2.0)
    assert term == pytest.approx(expected, rel=1e-5)
    assert total_d == pytest.approx(plain_d + 2.0 * expected, rel=1e-5)
    g_plain, _ = GANLoss("hinge").generator_loss(D, fake, y)
    g_total, g_stats = GANLoss("hinge", unet_weight=2.0).generator_loss(D, fake, y)
    assert float(g_stats["g_pixel"]) == pytest.approx(float(-fake_px.mean()), rel=1e-5)
    assert float(g_total) == pytest.approx(float(g_plain) - 2.0 * float(fake_px.mean()), rel=1e-5)
    # R1 on an R1 step adds the per-pixel head's mean: larger than the image logit's R1 alone.
    r1_plain = float(GANLoss("hinge", r1_gamma=1.0, r1_every=1).discriminator_loss(D, real, fake, y, step=0)[1]["r1"])
    r1_unet = float(GANLoss("hinge", r1_gamma=1.0, r1_every=1, unet_weight=1.0).discriminator_loss(
        D, real, fake, y, step=0)[1]["r1"])
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, y, return_pixels=True)[1].flatten(1).mean(1).sum(), x)
    assert r1_unet == pytest.approx(r1_plain + float(grad.square().sum((1, 2, 3)).mean()), rel=1e-4)
    with pytest.raises(ValueError, match=r"needs a discriminator with a U-Net decoder \(unet=True\)"):
        GANLoss("hinge", unet_weight=1.0).discriminator_loss(lambda x, y, **kw: D(x, y), real, fake, y, step=1)
    with pytest.raises(ValueError, match="unet_weight must be >= 0"):
        GANLoss("hinge", unet_weight=-1.0)


@pytest.mark.parametrize("shape", [(64, 1, 16, 16), (32, 1, 8, 8, 8)])
def test_cutmix_masks_are_one_box_each_of_uniform_area_with_either_image_as_background(shape):
    torch.manual_seed(0)
    m = cutmix_masks(torch.zeros(shape))
    assert m.shape == (shape[0], 1, *shape[2:]) and set(m.unique().tolist()) <= {0.0, 1.0}
    def solid_box(row: torch.Tensor, value: float) -> bool:
        idx = (row == value).nonzero()
        if not len(idx):
            return True  # an empty box
        lo, hi = idx.min(0).values, idx.max(0).values
        return bool((row[tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi, strict=True))] == value).all())

    # One box each: the zeros (or, flipped, the ones) fill an axis-aligned block.
    assert all(solid_box(row, 0.0) or solid_box(row, 1.0) for row in m[:, 0])
    stripes = (torch.arange(shape[-1]) % 2).float().expand(*shape[2:])
    assert not solid_box(stripes, 0.0) and not solid_box(stripes, 1.0)  # the check can fail
    share = m.flatten(1).mean(1)
    assert 0.2 < float(share.mean()) < 0.8 and float(share.std()) > 0.15  # areas spread, both roles drawn
    torch.manual_seed(0)
    assert torch.equal(cutmix_masks(torch.zeros(shape)), m)  # seeded


def test_unet_cutmix_adds_the_mixed_batch_terms_to_d_on_the_steps_it_draws():
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=16, base_channels=8, max_channels=16, unet=True).eval()
    real, fake = torch.rand(4, 1, 16, 16) * 2 - 1, torch.randn(4, 1, 16, 16)
    y = torch.tensor([0, 1, 1, 0])
    torch.manual_seed(1)
    total, stats = GANLoss("hinge", unet_weight=1.0, unet_cutmix=1.0).discriminator_loss(D, real, fake, y, step=1)
    torch.manual_seed(1)
    torch.rand(())  # the step's draw of whether CutMix runs
    m = cutmix_masks(real)
    mixed = m * real + (1 - m) * fake
    logits, px = D(mixed, y, return_pixels=True)
    real_px, fake_px = D(real, y, return_pixels=True)[1], D(fake, y, return_pixels=True)[1]
    whole_and_pixel = float(F.relu(1 + logits).mean() + F.relu(1 - (2 * m - 1) * px).mean())
    consistency = float((px - (m * real_px + (1 - m) * fake_px)).square().mean())
    assert float(stats["d_cutmix"]) == pytest.approx(whole_and_pixel, rel=1e-5)
    assert float(stats["d_cutmix_consistency"]) == pytest.approx(consistency, rel=1e-5)
    plain, _ = GANLoss("hinge", unet_weight=1.0).discriminator_loss(D, real, fake, y, step=1)
    assert float(total) == pytest.approx(float(plain) + whole_and_pixel + consistency, rel=1e-5)
    assert "d_cutmix" not in GANLoss("hinge", unet_weight=1.0, unet_cutmix=0.0).discriminator_loss(
        D, real, fake, y, step=1)[1]
    for bad in ({"unet_cutmix": 0.5}, {"unet_weight": 1.0, "unet_cutmix": 1.5}):
        with pytest.raises(ValueError, match="unet_cutmix must be in"):
            GANLoss("hinge", **bad)
    with pytest.raises(ValueError, match="unet_cutmix must be in"):
        GANLoss("wgan-gp", unet_weight=1.0, unet_cutmix=0.5)


def test_auxiliary_classifier_adds_weighted_cross_entropy_to_both_phases():
    torch.manual_seed(0)
    # eval(): spectral norm's power iteration then stays put, so repeated calls give the same logits.
    D = Discriminator(num_classes=2, size=8, base_channels=8, max_channels=16, aux=True).eval()
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    y = torch.tensor([0, 1, 1, 0])
    logits, class_logits = D(real, y, return_aux=True)
    assert logits.shape == (4,) and class_logits.shape == (4, 2)
    assert torch.equal(logits, D(real, y))  # the head does not change the adversarial logit
    ce_real = float(F.cross_entropy(class_logits, y))

    plain_d, total_d, term = _d_loss_with(D, real, fake, y, "d_aux", aux_weight=0.5)
    assert term == pytest.approx(ce_real, rel=1e-5)
    assert total_d == pytest.approx(plain_d + 0.5 * ce_real, rel=1e-5)
    _, d_stats = GANLoss("hinge", aux_weight=0.5).discriminator_loss(D, real, fake, y, step=1)
    assert 0.0 <= float(d_stats["d_aux_acc"]) <= 1.0

    fake.requires_grad_(True)
    plain_g, _ = GANLoss("hinge").generator_loss(D, fake, y)
    total_g, g_stats = GANLoss("hinge", aux_weight=0.5).generator_loss(D, fake, y)
    ce_fake = float(F.cross_entropy(D(fake, y, return_aux=True)[1], y))
    assert float(g_stats["g_aux"]) == pytest.approx(ce_fake, rel=1e-5)
    assert float(total_g) == pytest.approx(float(plain_g) + 0.5 * ce_fake, rel=1e-5)
    # Descending G's loss raises the head's score of each fake's own class.
    total_g.backward()
    own = D(fake, y, return_aux=True)[1].log_softmax(1).gather(1, y[:, None]).sum()
    (grad_own,) = torch.autograd.grad(own, fake)
    ce_only = GANLoss("hinge", aux_weight=1.0).generator_loss(D, fake, y)[0] - GANLoss("hinge").generator_loss(D, fake, y)[0]
    (grad_ce,) = torch.autograd.grad(ce_only, fake)
    assert torch.allclose(grad_ce, -grad_own / 4, atol=1e-6)


def test_auxiliary_classifier_needs_the_head_and_labels():
    plain = Discriminator(num_classes=2, size=8, base_channels=8, max_channels=16)
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="needs a discriminator built with aux=True"):
        GANLoss("hinge", aux_weight=1.0).generator_loss(plain, x, y)
    with pytest.raises(ValueError, match="needs class labels"):
        GANLoss("hinge", aux_weight=1.0).generator_loss(plain, x, None)
    with pytest.raises(ValueError, match="num_classes >= 2"):
        Discriminator(num_classes=0, size=8, aux=True)
    with pytest.raises(ValueError, match="aux_weight must be >= 0"):
        GANLoss("hinge", aux_weight=-1.0)


def test_twin_head_trains_on_fakes_in_d_and_is_fooled_by_g():
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=8, base_channels=8, max_channels=16, aux=True, aux_twin=True).eval()
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    y, y_fake = torch.tensor([0, 1, 1, 0]), torch.tensor([1, 1, 0, 0])
    _, real_cls = D(real, y, return_aux=True)
    _, fake_cls = D(fake, y_fake, return_aux=True)
    assert real_cls.shape == (4, 4)
    ce_real, twin_fake = F.cross_entropy(real_cls[:, :2], y), F.cross_entropy(fake_cls[:, 2:], y_fake)

    plain_d, _ = GANLoss("hinge").discriminator_loss(D, real, fake, y, step=1, y_fake=y_fake)
    total_d, d_stats = GANLoss("hinge", aux_weight=0.5, aux_twin=True).discriminator_loss(
        D, real, fake, y, step=1, y_fake=y_fake)
    assert float(d_stats["d_aux"]) == pytest.approx(float(ce_real), rel=1e-5)
    assert float(d_stats["d_aux_twin"]) == pytest.approx(float(twin_fake), rel=1e-5)
    assert float(total_d) == pytest.approx(float(plain_d) + 0.5 * float(ce_real + twin_fake), rel=1e-5)

    plain_g, _ = GANLoss("hinge").generator_loss(D, fake, y_fake)
    total_g, g_stats = GANLoss("hinge", aux_weight=0.5, aux_twin=True).generator_loss(D, fake, y_fake)
    ce_fake = F.cross_entropy(fake_cls[:, :2], y_fake)
    assert float(g_stats["g_aux_twin"]) == pytest.approx(float(twin_fake), rel=1e-5)
    assert float(total_g) == pytest.approx(float(plain_g) + 0.5 * float(ce_fake - twin_fake), rel=1e-5)
    with pytest.raises(ValueError, match="aux_twin needs aux_weight > 0"):
        GANLoss("hinge", aux_twin=True)
    with pytest.raises(ValueError, match="aux_twin=True needs aux=True"):
        Discriminator(num_classes=2, size=8, aux_twin=True)


def _d2d_by_hand(pos: list[float], f: torch.Tensor, y: list[int], tau=0.5, m_p=0.98, m_n=0.0) -> float:
    """The D2D-CE formula of Kang et al. 2021, one image at a time."""
    losses = []
    for i in range(len(y)):
        p = min(pos[i] - m_p, 0.0) / tau
        negs = [max(float(f[i] @ f[j]) - m_n, 0.0) / tau for j in range(len(y)) if y[j] != y[i]]
        losses.append(-(p - math.log(math.exp(p) + sum(math.exp(n) for n in negs))))
    return sum(losses) / len(losses)


def test_d2d_cross_entropy_is_the_papers_formula():
    torch.manual_seed(0)
    f = F.normalize(torch.randn(5, 3), dim=1)
    pos = [0.99, 0.2, -0.5, 0.9, 0.1]  # the first already within the positive margin
    y = [0, 0, 1, 1, 0]
    out = torch.cat([torch.tensor(pos)[:, None], f], dim=1)
    got = float(d2d_cross_entropy(out, torch.tensor(y)))
    assert got == pytest.approx(_d2d_by_hand(pos, f, y), rel=1e-5)
    # Images of one class have no negatives: nothing to push.
    assert float(d2d_cross_entropy(out, torch.zeros(5, dtype=torch.long))) == pytest.approx(0.0, abs=1e-6)
    # A positive inside the margin with negatives beyond theirs gives no gradient.
    far = torch.tensor([[0.99, 1.0, 0.0], [0.99, -1.0, 0.0]], requires_grad=True)
    d2d_cross_entropy(far, torch.tensor([0, 1])).backward()
    assert far.grad is not None and torch.count_nonzero(far.grad) == 0
    with pytest.raises(ValueError, match="needs out"):
        d2d_cross_entropy(torch.zeros(4), torch.zeros(4, dtype=torch.long))


def test_d2dce_head_embeds_on_the_sphere_and_both_phases_use_it():
    torch.manual_seed(1)
    D = Discriminator(num_classes=2, size=8, base_channels=8, max_channels=16, aux=True, aux_embedding=True).eval()
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    _, out = D(real, y, return_aux=True)
    assert out.shape == (6, 1 + D.feature_channels)
    assert torch.allclose(out[:, 1:].norm(dim=1), torch.ones(6), atol=1e-5)
    proxies = F.normalize(D.proxy(y), dim=1)
    assert torch.allclose(out[:, 0], (out[:, 1:] * proxies).sum(1), atol=1e-5)
    term = float(d2d_cross_entropy(out.detach(), y))
    plain_d, total_d, got = _d_loss_with(D, real, fake, y, "d_aux", aux_weight=0.5, aux_loss="d2dce")
    assert got == pytest.approx(term, rel=1e-5)
    assert total_d == pytest.approx(plain_d + 0.5 * term, rel=1e-5)
    plain_g, _ = GANLoss("hinge").generator_loss(D, fake, y)
    total_g, g_stats = GANLoss("hinge", aux_weight=0.5, aux_loss="d2dce").generator_loss(D, fake, y)
    fake_term = float(d2d_cross_entropy(D(fake, y, return_aux=True)[1].detach(), y))
    assert float(g_stats["g_aux"]) == pytest.approx(fake_term, rel=1e-5)
    assert float(total_g) == pytest.approx(float(plain_g) + 0.5 * fake_term, rel=1e-5)
    with pytest.raises(ValueError, match="aux_twin works with aux_loss='ce' only"):
        GANLoss("hinge", aux_weight=1.0, aux_twin=True, aux_loss="d2dce")
    with pytest.raises(ValueError, match="aux_loss must be"):
        GANLoss("hinge", aux_weight=1.0, aux_loss="focal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aux_embedding=True needs aux=True"):
        Discriminator(num_classes=2, size=8, aux_embedding=True)


class TableD(nn.Module):
    """D(x) = the first pixel of x: the logits are whatever the test writes there."""

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return x.flatten(1)[:, 0]


def _with_logits(values: list[float]) -> Tensor:
    x = torch.zeros(len(values), 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(values)
    return x


def test_lecam_penalises_real_logits_above_the_fake_average_and_fake_logits_below_the_real_average():
    loss = GANLoss("hinge", lecam_weight=0.3, lecam_decay=0.5)
    real, fake = _with_logits([2.0, -1.0]), _with_logits([0.0, -2.0])
    plain, _ = GANLoss("hinge").discriminator_loss(TableD(), real, fake, None, step=1)
    # The first D step sets the averages: mean real 0.5, mean fake -1.
    total, stats = loss.discriminator_loss(TableD(), real, fake, None, step=1)
    # relu(r - (-1))² = [9, 0]; relu(0.5 - f)² = [0.25, 6.25]
    expected = (9 + 0) / 2 + (0.25 + 6.25) / 2
    assert float(stats["lecam"]) == pytest.approx(expected)
    assert float(total) == pytest.approx(float(plain) + 0.3 * expected)
    assert torch.allclose(loss.lecam_means, torch.tensor([0.5, -1.0]))
    # The next step moves the averages halfway (decay 0.5) towards its batch's means (3, 1).
    loss.discriminator_loss(TableD(), _with_logits([3.0, 3.0]), _with_logits([1.0, 1.0]), None, step=2)
    assert torch.allclose(loss.lecam_means, torch.tensor([1.75, 0.0]))
    # The averages are training state: they survive a checkpoint; an old checkpoint without them starts fresh.
    again = GANLoss("hinge", lecam_weight=0.3)
    again.load_state_dict(loss.state_dict())
    assert torch.equal(again.lecam_means, loss.lecam_means)
    again.load_state_dict({"pl_mean": torch.zeros(())})
    assert again.lecam_means.isnan().all()
    # Off by default: no term, no stat.
    assert "lecam" not in GANLoss("hinge").discriminator_loss(TableD(), real, fake, None, step=1)[1]
    with pytest.raises(ValueError, match="lecam_weight"):
        GANLoss("hinge", lecam_weight=-1)


def test_lecam_gradient_pulls_an_overconfident_real_logit_down():
    loss = GANLoss("hinge", lecam_weight=1.0)
    real = _with_logits([5.0, 5.0]).requires_grad_(True)
    fake = _with_logits([-5.0, -5.0])
    loss.discriminator_loss(TableD(), real.detach(), fake, None, step=1)  # averages: real 5, fake -5
    penalty = loss.lecam_penalty(TableD()(real), TableD()(fake))
    (grad,) = torch.autograd.grad(penalty, real)
    assert float(penalty.detach()) == pytest.approx(200.0)  # relu(5 + 5)² + relu(5 + 5)²
    assert (grad[:, 0, 0, 0] > 0).all()  # descending the penalty lowers the real logits


def test_class_mean_targets_are_each_class_mean_intensity_and_its_spread():
    # Class 0: masks filling 1/4 and 3/4 of four pixels; class 1: all filled, twice.
    images = torch.tensor([[[[255, 0], [0, 0]]], [[[255, 255], [255, 0]]], [[[255, 255], [255, 255]]],
                           [[[255, 255], [255, 255]]]], dtype=torch.uint8)
    targets = class_mean_targets(images, torch.tensor([0, 0, 1, 1]), 2)
    assert targets[0, 0] == pytest.approx(0.5) and targets[0, 1] == pytest.approx(0.5 ** 0.5 / 2)
    assert targets[1, 0] == pytest.approx(1.0) and targets[1, 1] == pytest.approx(1e-3)  # no spread: floored
    with pytest.raises(ValueError, match="class 2 has no training image"):
        class_mean_targets(images, torch.tensor([0, 0, 1, 1]), 3)


def test_class_mean_gap_is_the_mean_over_pairs_of_scaled_deviations():
    targets = torch.tensor([[0.5, 0.25], [0.2, 0.1]])
    # Mean intensities in [0, 1] of fakes in [-1, 1]: class 0 at 0.25, 0.5, 1.0; class 1 at 0.4, 0.6.
    means = torch.tensor([0.25, 0.5, 1.0, 0.4, 0.6])
    fake = (2 * means - 1).reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    y = torch.tensor([0, 0, 0, 1, 1])
    def soft(d):  # deviations in real spreads, softly capped at 3
        return 3 * torch.tanh(torch.tensor(d) / 3)

    d0, d1 = soft([-1.0, 0.0, 2.0]), soft([2.0, 4.0])
    assert float(d1[1]) == pytest.approx(2.6102, abs=1e-4) and float(d0[0]) == pytest.approx(-0.9645, abs=1e-4)
    pairs0 = sum(float(d0[i] * d0[j]) for i in range(3) for j in range(3) if i != j) / 6
    pairs1 = float(d1[0] * d1[1])
    assert float(class_mean_gap(fake, y, targets)) == pytest.approx((pairs0 + pairs1) / 2)
    # A class with one fake in the batch is left out; with none left the gap is a zero on the graph.
    assert float(class_mean_gap(fake[:4], y[:4], targets)) == pytest.approx(pairs0)
    lone = fake[:1].clone().requires_grad_(True)
    gap = class_mean_gap(lone, y[:1], targets)
    assert float(gap.detach()) == 0.0 and gap.requires_grad


def test_class_mean_gap_is_unbiased_for_the_squared_gap_of_the_mean_and_does_not_shrink_the_spread():
    torch.manual_seed(0)
    targets = torch.tensor([[0.5, 0.1]])
    # Fakes whose means scatter around the real mean exactly (gap 0) with the real spread.
    means = 0.5 + 0.1 * torch.randn(20000)
    fake = (2 * means - 1).reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    y = torch.zeros(4, dtype=torch.long)
    gaps = torch.stack([class_mean_gap(fake[4 * k : 4 * k + 4], y, targets) for k in range(5000)])
    assert abs(float(gaps.mean())) < 0.05  # the plain squared batch mean would read Var(d) / n = 0.25
    # Shifted by one real spread: the expected gap is E[3 tanh(d / 3)]^2 for d ~ N(1, 1), somewhat under 1.
    shifted = torch.stack([class_mean_gap(fake[4 * k : 4 * k + 4] + 0.2, y, targets) for k in range(5000)])
    expected = float((3 * torch.tanh((1 + torch.randn(1_000_000)) / 3)).mean()) ** 2
    assert 0.7 < expected < 0.9 and float(shifted.mean()) == pytest.approx(expected, abs=0.06)
    # Far off (a G's first steps), the gap stays under the cap squared.
    far = class_mean_gap(torch.ones(4, 1, 2, 2), y, targets)  # every fake full: 5 spreads above
    assert float(far) == pytest.approx((3 * math.tanh(5 / 3)) ** 2) and float(far) < 9


def test_class_mean_weight_adds_the_gap_to_g_loss_and_pulls_a_too_empty_class_up():
    loss = GANLoss("hinge", class_mean_weight=2.0)
    fake = torch.full((4, 1, 2, 2), -1.0, requires_grad=True)  # every fake empty: mean intensity 0
    y = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="set_class_means"):
        loss.generator_loss(TableD(), fake, y)
    loss.set_class_means(torch.tensor([[0.5, 0.25], [0.0, 0.1]]))  # class 1 is right, class 0 is 2 spreads too low
    total, stats = loss.generator_loss(TableD(), fake, y)
    plain, _ = GANLoss("hinge").generator_loss(TableD(), fake, y)
    pair = (3 * math.tanh(-2 / 3)) ** 2  # the one pair of class 0, each 2 spreads low (softly capped)
    assert float(stats["g_class_mean"]) == pytest.approx((pair + 0.0) / 2)
    assert float(total.detach()) == pytest.approx(float(plain.detach()) + 2.0 * pair / 2)
    (grad,) = torch.autograd.grad(total, fake)
    assert (grad[:2].flatten(1)[:, 1:] < 0).all()  # descending raises class 0's intensity (pixel 0 is D's logit)
    assert (grad[2:].flatten(1)[:, 1:] == 0).all()  # class 1 sits on its target
    assert "g_class_mean" not in GANLoss("hinge").generator_loss(TableD(), fake, y)[1]
    with pytest.raises(ValueError, match="class_mean_weight"):
        GANLoss("hinge", class_mean_weight=-1)


def _box(shape: tuple[int, ...], box: tuple[slice, ...]) -> Tensor:
    """A mask in [-1, 1] of ``shape`` (spatial only), foreground (+1) in ``box``."""
    m = -torch.ones(shape)
    m[box] = 1.0
    return m


def test_mean_depth_is_the_city_block_depth_of_scipy_on_binary_masks_in_2d_and_3d():
    from scipy import ndimage

    torch.manual_seed(0)
    # A 3 x 3 x 3 cube: 26 voxels on the surface (depth 1), the centre at depth 2; a 5 x 5 square: 16 + 8 + 1.
    cube = _box((1, 1, 7, 7, 7), (..., slice(2, 5), slice(2, 5), slice(2, 5)))
    square = _box((1, 1, 9, 9), (..., slice(2, 7), slice(2, 7)))
    assert float(mean_depth(cube)) == pytest.approx((26 + 2) / 27)
    assert float(mean_depth(square)) == pytest.approx((16 + 2 * 8 + 3) / 25)
    # Random blobs: the same figure as scipy's taxicab distance transform (the edge is not background there).
    blobs = (ndimage.gaussian_filter(torch.rand(6, 12, 12, 12).numpy(), (0, 1.5, 1.5, 1.5)) > 0.5)
    ref = [ndimage.distance_transform_cdt(b, metric="taxicab")[b].mean() if b.any() else 0.0 for b in blobs]
    x = torch.from_numpy(blobs).float().unsqueeze(1) * 2 - 1
    assert mean_depth(x, levels=12).tolist() == pytest.approx(ref, abs=1e-5)
    assert float(mean_depth(-torch.ones(1, 1, 4, 4, 4))) == 0.0  # empty: 0, not NaN
    # Deeper than levels + 1 counts levels + 1: a 9 x 9 square's centre is 5 deep.
    big = _box((1, 1, 11, 11), (..., slice(1, 10), slice(1, 10)))
    assert float(mean_depth(big, levels=1)) == pytest.approx((32 + 2 * 49) / 81)


def test_mean_depth_gradient_is_the_change_one_flip_would_make():
    # A 2 x 3 rectangle (rows 1-2, columns 1-3) in a 6 x 6 image: every pixel on the surface, depth 1.
    # Filling (3, 2) or (0, 2) makes the middle pixel next to it interior: area 7, depth sum 8, a change of
    # +1/7 from one flip; the gradient (in f = (x + 1) / 2: 2/6 - 6/36 = 1/6, so 1/12 in x) reads its first order.
    # A flip that makes nothing interior (a far pixel, one beside a corner, removing an edge pixel) leaves the
    # mean depth at 1, and its gradient is 0.
    x = _box((1, 1, 6, 6), (..., slice(1, 3), slice(1, 4))).requires_grad_(True)
    (grad,) = torch.autograd.grad(mean_depth(x).sum(), x)
    assert float(mean_depth(x.detach())) == 1.0
    g = grad[0, 0]
    assert float(g[3, 2]) == pytest.approx(1 / 12) and float(g[0, 2]) == pytest.approx(1 / 12)
    for pixel in ((0, 5), (3, 1), (1, 2), (5, 0)):
        assert float(g[pixel]) == pytest.approx(0.0, abs=1e-7)
    # A 3 x 3 square (depth 10 / 9): with the area in the gradient, a far pixel is pushed by (1 - 10/9) / 9 in f
    # (a fragment there thins the mean); with the area held fixed it is not pushed, and the value is the same.
    sq = _box((1, 1, 7, 7), (..., slice(1, 4), slice(1, 4))).requires_grad_(True)
    (free,) = torch.autograd.grad(mean_depth(sq).sum(), sq)
    (held,) = torch.autograd.grad(mean_depth(sq, detach_area=True).sum(), sq)
    assert float(mean_depth(sq.detach(), detach_area=True)) == pytest.approx(10 / 9)
    assert float(free[0, 0, 6, 6]) == pytest.approx((1 - 10 / 9) / 9 / 2) and float(held[0, 0, 6, 6]) == 0.0
    assert float(held[0, 0, 4, 2]) == pytest.approx(1 / 9 / 2)  # filling it would make (3, 2) interior: +1 / 9


def test_class_depth_targets_and_the_gap_on_thickness():
    thin = _box((7, 7, 7), (slice(2, 5), slice(3, 4), slice(2, 5)))  # a 3 x 1 x 3 plate: depth 1
    thick = _box((7, 7, 7), (slice(2, 5), slice(2, 5), slice(2, 5)))  # a 3 x 3 x 3 cube: 28 / 27
    u8 = ((torch.stack([thin, thin, thick, thin]).unsqueeze(1) + 1) * 127.5).round().to(torch.uint8)
    targets = class_depth_targets(u8, torch.tensor([0, 0, 1, 1]), 2)
    assert targets[0].tolist() == pytest.approx([1.0, 1e-3])  # no spread: floored
    assert float(targets[1, 0]) == pytest.approx((1 + 28 / 27) / 2)
    with pytest.raises(ValueError, match="class 2 has no training image: no mean depth"):
        class_depth_targets(u8, torch.tensor([0, 0, 1, 1]), 3)
    # The statistic gap is class_mean_gap's estimate on any per-image value.
    values, y = torch.tensor([0.25, 0.5, 1.0, 0.4, 0.6]), torch.tensor([0, 0, 0, 1, 1])
    t = torch.tensor([[0.5, 0.25], [0.2, 0.1]])
    fake = (2 * values - 1).reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    assert float(class_statistic_gap(values, y, t)) == pytest.approx(float(class_mean_gap(fake, y, t)))


def test_class_depth_weight_pushes_a_too_thin_class_thicker():
    loss = GANLoss("hinge", class_depth_weight=1.0)
    slab = _box((1, 6, 6, 6), (..., slice(1, 5), slice(2, 4), slice(1, 5)))  # 4 x 2 x 4: every voxel depth 1
    fake = slab.unsqueeze(0).repeat(4, 1, 1, 1, 1).requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="set_class_depths"):
        loss.generator_loss(TableD(), fake, y)
    loss.set_class_depths(torch.tensor([[1.2, 0.1], [1.0, 0.1]]))  # class 0 two spreads too thin, class 1 right
    total, stats = loss.generator_loss(TableD(), fake, y)
    assert float(stats["g_class_depth"]) == pytest.approx((3 * math.tanh(-2 / 3)) ** 2 / 2)
    (grad,) = torch.autograd.grad(total, fake)
    # Descending fills the voxels beside the slab's middle that would each make one voxel interior, for class 0
    # only; a voxel no single flip makes interior (beside the slab's rim) gets no push from the term.
    assert (grad[:2, 0, 2:4, 1, 2:4] < 0).all() and (grad[:2, 0, 2:4, 4, 2:4] < 0).all()
    assert (grad[2:, 0, 2:4, 4, 2:4] == 0).all()
    assert (grad[:2, 0, 1, 4, 1] == 0).all()  # beside a corner of the slab (pixel 0 of each is D's logit)
    with pytest.raises(ValueError, match="class_depth_weight"):
        GANLoss("hinge", class_depth_weight=-1)
