"""Differentiable augmentation (2D / 3D) and the ADA controller."""

from __future__ import annotations

import io
import itertools

import pytest
import torch

from medgan.training.diffaugment import AUGMENT_OPS, AdaptiveAugment, DiffAugment, parse_policy

POLICIES = ["translation", "cutout", "color", "translation,cutout,color"]


def _batch(spatial_dims: int, channels: int = 1, size: int = 16, batch: int = 4) -> torch.Tensor:
    return torch.rand(batch, channels, *([size] * spatial_dims)) * 2 - 1


# DiffAugment.


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_shape_is_kept_and_gradient_flows(spatial_dims: int, policy: str) -> None:
    x = _batch(spatial_dims, channels=3).requires_grad_(True)
    out = DiffAugment(policy, spatial_dims=spatial_dims, p=1.0)(x)
    assert out.shape == x.shape
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_p_zero_is_exactly_the_identity(spatial_dims: int) -> None:
    x = _batch(spatial_dims)
    state = torch.get_rng_state()
    assert DiffAugment(spatial_dims=spatial_dims, p=0.0)(x) is x
    assert torch.equal(torch.get_rng_state(), state)  # no random numbers drawn


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_p_one_changes_every_sample(spatial_dims: int, policy: str) -> None:
    x = _batch(spatial_dims, batch=8)
    out = DiffAugment(policy, spatial_dims=spatial_dims, p=1.0)(x)
    changed = (out != x).flatten(1).any(1)
    # A translation can draw a zero shift; otherwise every sample is touched.
    assert changed.float().mean() >= (0.5 if policy == "translation" else 1.0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_same_seed_gives_same_output(spatial_dims: int) -> None:
    aug = DiffAugment(spatial_dims=spatial_dims, p=0.5)
    x = _batch(spatial_dims)
    torch.manual_seed(7)
    first = aug(x)
    torch.manual_seed(7)
    assert torch.equal(aug(x), first)
    torch.manual_seed(8)
    assert not torch.equal(aug(x), first)


def test_each_sample_gets_the_op_with_probability_p() -> None:
    x = torch.ones(4000, 1, 8, 8)
    out = DiffAugment("cutout", p=0.3)(x)  # a cutout always covers its centre pixel
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.3, abs=0.03)


def test_translation_is_an_integer_shift_with_zero_fill() -> None:
    x = _batch(2, size=16, batch=6)
    out = DiffAugment("translation", p=1.0)(x)
    margin = 2  # round(16 / 8)
    for b in range(x.shape[0]):
        matches = []
        for dy, dx in itertools.product(range(-margin, margin + 1), repeat=2):
            shifted = torch.zeros_like(x[b])
            src = x[b][:, max(0, -dy) : 16 - max(0, dy), max(0, -dx) : 16 - max(0, dx)]
            shifted[:, max(0, dy) : 16 - max(0, -dy), max(0, dx) : 16 - max(0, -dx)] = src
            matches.append(torch.equal(out[b], shifted))
        assert sum(matches) == 1


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_cutout_zeroes_one_box_of_at_most_half_the_size(spatial_dims: int) -> None:
    x = torch.ones(16, 1, *([8] * spatial_dims))
    out = DiffAugment("cutout", spatial_dims=spatial_dims, p=1.0)(x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    zeros = (out == 0).flatten(1).sum(1)
    assert (zeros >= 1).all() and (zeros <= 4**spatial_dims).all()
    assert (zeros == 4**spatial_dims).any()  # boxes away from the border are whole


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_fill_minus_one_keeps_a_binary_mask_binary(spatial_dims: int) -> None:
    """With fill=-1 translation shifts in background and cutout erases to it: a mask stays a mask,
    where the default mid-grey fill makes values no real mask voxel has."""
    torch.manual_seed(0)
    masks = torch.where(torch.rand(16, 1, *([8] * spatial_dims)) > 0.5, 1.0, -1.0)
    for policy in ("translation", "cutout"):
        out = DiffAugment(policy, spatial_dims=spatial_dims, p=1.0, fill=-1.0)(masks)
        assert set(out.unique().tolist()) == {-1.0, 1.0}
        assert (out == 1).sum() < (masks == 1).sum()  # something was shifted out or erased
        grey = DiffAugment(policy, spatial_dims=spatial_dims, p=1.0)(masks)
        assert (grey == 0).any()
    with pytest.raises(ValueError, match="fill must be in"):
        DiffAugment("cutout", fill=2.0)


def test_brightness_shifts_and_contrast_scales_about_the_mean() -> None:
    x = _batch(2, channels=3, batch=8)
    bright = DiffAugment("color", p=1.0, brightness=0.25, contrast=0.0)(x)
    offset = (bright - x).flatten(1)
    torch.testing.assert_close(offset, offset[:, :1].expand_as(offset))
    assert (offset.abs() <= 0.25).all()

    contrasted = DiffAugment("color", p=1.0, brightness=0.0, contrast=0.5)(x)
    centred = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
    far = centred.abs().argmax(1, keepdim=True)  # the pixel farthest from the mean fixes the factor
    mean = x.flatten(1).mean(1, keepdim=True)
    factor = (contrasted.flatten(1).gather(1, far) - mean) / centred.gather(1, far)
    assert ((factor >= 0.5) & (factor <= 1.5)).all()
    torch.testing.assert_close(contrasted.flatten(1), centred * factor + mean)


def test_bad_policy_and_probability_raise() -> None:
    with pytest.raises(ValueError, match=r"'rotate'.*allowed: translation, cutout, color"):
        DiffAugment("translation,rotate")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        DiffAugment(p=1.5)
    assert parse_policy("color, translation,") == ("color", "translation")
    assert parse_policy("") == ()
    assert set(AUGMENT_OPS) == {"translation", "cutout", "color"}


# AdaptiveAugment.


def _controller(p: float = 0.0, **kwargs: object) -> AdaptiveAugment:
    options = {"target": 0.6, "interval": 4, "speed_images": 1000, **kwargs}
    return AdaptiveAugment(p, **options)  # type: ignore[arg-type]


def test_p_rises_when_d_is_overconfident_and_only_on_adjustment_steps() -> None:
    ada = _controller()
    for step in range(1, 9):
        returned = ada.update(torch.tensor(0.9), batch_size=10)
        expected = 0.04 * (step // 4)  # 4 steps x 10 images / 1000 images per unit
        assert ada.p == pytest.approx(expected)
        assert returned == ada.p
    assert ada.rt == pytest.approx(0.9)


def test_p_falls_when_d_is_not_overconfident_and_is_clamped() -> None:
    ada = _controller(p=0.05)
    for _ in range(4):
        ada.update(torch.tensor(0.2), batch_size=10)
    assert ada.p == pytest.approx(0.01)
    for _ in range(4):
        ada.update(torch.tensor(-1.0), batch_size=10)
    assert ada.p == 0.0

    high = _controller(p=0.97, p_max=0.99)
    for _ in range(8):
        high.update(torch.tensor(1.0), batch_size=10)
    assert high.p == 0.99


def test_adjustment_uses_the_mean_sign_over_the_interval() -> None:
    ada = _controller(target=0.5)
    for sign in (1.0, 1.0, 0.0, 0.0):  # mean 0.5 = target: no change
        ada.update(torch.tensor(sign), batch_size=8)
    assert ada.p == 0.0 and ada.rt == 0.5
    for sign in (1.0, 1.0, 1.0, 0.0):  # mean 0.75 > target
        ada.update(torch.tensor(sign), batch_size=8)
    assert ada.p == pytest.approx(32 / 1000)


def test_fixed_mode_never_changes_p_but_measures_rt() -> None:
    ada = _controller(p=0.3, adaptive=False)
    for _ in range(8):
        ada.update(torch.tensor(1.0), batch_size=10)
    assert ada.p == 0.3 and ada.rt == pytest.approx(1.0)


def test_state_dict_round_trip_resumes_mid_interval() -> None:
    ada = _controller()
    for sign in (0.9, 0.9, 0.9, 0.9, 0.1, 0.8):  # one adjustment, two pending steps
        ada.update(torch.tensor(sign), batch_size=10)
    buffer = io.BytesIO()
    torch.save(ada.state_dict(), buffer)
    buffer.seek(0)
    resumed = _controller(p=0.5)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.p == ada.p == pytest.approx(0.04)
    for sign in (0.9, 0.95, 0.9, 0.9):
        ada.update(torch.tensor(sign), batch_size=10)
        resumed.update(torch.tensor(sign), batch_size=10)
        assert resumed.p == ada.p and resumed.rt == ada.rt
    assert ada.p == pytest.approx(0.08)


def test_bad_controller_settings_raise() -> None:
    with pytest.raises(ValueError, match="target"):
        _controller(target=0.0)
    with pytest.raises(ValueError, match="interval"):
        _controller(interval=0)
    with pytest.raises(ValueError, match="p must be in"):
        _controller(p=1.5)
    assert _controller(p=1.0).p == 0.99  # the start is clamped to p_max
    assert _controller(p=1.0, adaptive=False).p == 1.0
