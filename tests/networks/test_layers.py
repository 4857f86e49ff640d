"""medgan.networks.layers: one factory for 2D and 3D, crop / pad, resampling, conditional batch norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan.networks.layers import (
    ConditionalBatchNorm,
    SkipExcitation,
    avg_pool,
    batch_norm,
    center_crop,
    centre_of_mass,
    check_spatial_dims,
    conv,
    next_pow2,
    pad_to,
    recentre,
    upsample,
)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_conv_and_norm_keep_the_shape_in_2d_and_3d(spatial_dims: int) -> None:
    x = torch.randn(2, 3, *(6,) * spatial_dims)  # (B, C, *spatial)
    for layer in (conv(spatial_dims, 3, 5, 3), conv(spatial_dims, 3, 5, 1, bias=False, sn=True)):
        assert layer(x).shape == (2, 5, *(6,) * spatial_dims)
    assert isinstance(conv(spatial_dims, 3, 5), nn.Conv2d if spatial_dims == 2 else nn.Conv3d)
    assert isinstance(batch_norm(spatial_dims, 3), nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 1"):
        conv(1, 3, 5)
    assert check_spatial_dims(spatial_dims) == spatial_dims


def test_spectral_norm_state_is_in_the_state_dict() -> None:
    keys = conv(2, 3, 4, sn=True).state_dict().keys()
    assert any(k.endswith("_u") for k in keys) and any(k.endswith("_v") for k in keys)


def test_next_pow2() -> None:
    assert [next_pow2(n) for n in (1, 2, 3, 28, 32, 33, 64)] == [1, 2, 4, 32, 32, 64, 64]
    with pytest.raises(ValueError, match="n >= 1"):
        next_pow2(0)


def test_centre_of_mass_per_sample_and_nan_when_empty() -> None:
    m = torch.zeros(3, 1, 6, 6, 6)
    m[0, 0, 1, 2, 3] = 1
    m[1, 0, 4:6, 0, 0:2] = 1  # a 2 x 1 x 2 block: centre (4.5, 0, 0.5)
    com = centre_of_mass(m)
    assert com.shape == (3, 3)
    assert com[0].tolist() == [1.0, 2.0, 3.0] and com[1].tolist() == [4.5, 0.0, 0.5]
    assert torch.isnan(com[2]).all()


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_recentre_moves_each_mask_whole_to_the_target_and_keeps_its_shape(spatial_dims: int) -> None:
    x = -torch.ones(3, 1, *(9,) * spatial_dims)
    x[(0, 0, *(slice(0, 2),) * spatial_dims)] = 1.0  # a 2^d block in the corner, centre 0.5 on every axis
    x[(1, 0, *(slice(6, 9),) * spatial_dims)] = 1.0  # a 3^d block at the far corner, centre 7
    target = (4.0,) * spatial_dims
    out = recentre(x, target)
    com = centre_of_mass((out > 0).float())
    assert com[0].tolist() == [4.5] * spatial_dims  # shift round(3.5) = 4 (half to even), no closer on the grid
    assert com[1].tolist() == [4.0] * spatial_dims  # shift -3: exactly on the target
    assert torch.equal(out[2], x[2])  # no foreground: unchanged
    assert torch.equal((out > 0).sum((1, *range(2, 2 + spatial_dims))), (x > 0).sum((1, *range(2, 2 + spatial_dims))))
    assert set(out.unique().tolist()) == {-1.0, 1.0}  # the freed space is background
    with pytest.raises(ValueError, match="one coordinate per spatial axis"):
        recentre(x, (4.0,) * (spatial_dims + 1))


def test_recentre_passes_gradients_to_the_moved_values() -> None:
    x = torch.full((1, 1, 5, 5), -1.0)
    x[0, 0, 0, 0] = 1.0
    x.requires_grad_(True)
    out = recentre(x, (2.0, 2.0))
    (out * torch.arange(25.0).reshape(1, 1, 5, 5)).sum().backward()
    assert out[0, 0, 2, 2].item() == 1.0
    assert x.grad is not None and x.grad[0, 0, 0, 0].item() == 12.0  # the weight at the pixel it moved to
    assert x.grad[0, 0, 4, 4].item() == 0.0  # shifted off the grid


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("size", [5, 6, 7, 8])
def test_center_crop_undoes_pad_to(spatial_dims: int, size: int) -> None:
    x = torch.randn(2, 1, *(size,) * spatial_dims)
    padded = pad_to(x, 11, value=-1.0)
    assert padded.shape == (2, 1, *(11,) * spatial_dims)
    assert torch.equal(center_crop(padded, size), x)
    # The pad is filled with the value, and split (n - size) // 2 before, the rest after.
    left = (11 - size) // 2
    assert torch.all(padded[..., :left] == -1.0) and torch.all(padded[..., left + size :] == -1.0)
    assert int((padded != -1.0).sum()) == int((x != -1.0).sum())  # the input is all there, once
    assert pad_to(x, size) is x  # nothing to pad
    with pytest.raises(ValueError, match="cannot pad"):
        pad_to(x, size - 1)
    with pytest.raises(ValueError, match="cannot centre-crop"):
        center_crop(x, size + 1)


def test_center_crop_only_crops_the_trailing_spatial_axes() -> None:
    x = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4, 4)  # (B, C, H, W) with C = 4
    out = center_crop(x, 2)
    assert out.shape == (2, 4, 2, 2) and torch.equal(out, x[:, :, 1:3, 1:3])
    assert center_crop(x, 2, spatial_dims=1).shape == (2, 4, 4, 2)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_upsample_and_avg_pool(spatial_dims: int) -> None:
    x = torch.randn(2, 3, *(4,) * spatial_dims)
    up = upsample(spatial_dims)(x)
    assert up.shape == (2, 3, *(8,) * spatial_dims)
    # Nearest neighbour: every 2×…×2 block is one input value, and pooling it gives the value back.
    assert torch.allclose(avg_pool(spatial_dims)(up), x, atol=1e-6)
    ref = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    assert torch.equal(up, ref)
    pooled = avg_pool(spatial_dims)(x)
    ref_pool = (nn.functional.avg_pool2d if spatial_dims == 2 else nn.functional.avg_pool3d)(x, 2)
    assert pooled.shape == (2, 3, *(2,) * spatial_dims) and torch.allclose(pooled, ref_pool, atol=1e-6)


def test_conditional_batch_norm_uses_the_class_gain_and_bias() -> None:
    cbn = ConditionalBatchNorm(2, 4, num_classes=3)
    assert cbn.embed is not None
    with torch.no_grad():
        cbn.embed.weight.copy_(torch.tensor([[1.0] * 4 + [0.0] * 4, [2.0] * 4 + [0.5] * 4, [3.0] * 4 + [-1.0] * 4]))
    x = torch.randn(6, 4, 5, 5)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    normed = nn.functional.batch_norm(x, None, None, training=True, eps=1e-5)  # BatchNorm's default eps
    out = cbn(x, y)
    gain = torch.tensor([1.0, 2.0, 3.0])[y].reshape(6, 1, 1, 1)
    bias = torch.tensor([0.0, 0.5, -1.0])[y].reshape(6, 1, 1, 1)
    assert torch.allclose(out, normed * gain + bias, atol=1e-5)
    with pytest.raises(ValueError, match="class labels y are required"):
        cbn(x)
    # Unconditional: an ordinary affine batch norm; y is ignored.
    plain = ConditionalBatchNorm(3, 4, num_classes=0)
    v = torch.randn(2, 4, 3, 3, 3)
    assert plain.embed is None and torch.equal(plain(v), plain(v, torch.tensor([5, 7])))
    with pytest.raises(ValueError, match="num_classes"):
        ConditionalBatchNorm(2, 4, num_classes=-1)


def test_conditional_batch_norm_classes_start_apart() -> None:
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm(2, 8, num_classes=2)
    x = torch.randn(4, 8, 3, 3)
    a, b = cbn(x, torch.zeros(4, dtype=torch.long)), cbn(x, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(a, b)  # N(0, 0.02) init: the classes differ from the first step
    assert cbn.embed is not None
    gains = cbn.embed.weight[:, :8]
    assert torch.allclose(gains.mean(), torch.tensor(1.0), atol=0.05)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_high_pass_is_zero_on_flat_images_and_large_on_pixel_texture(spatial_dims: int) -> None:
    from medgan.networks.layers import binomial_blur, high_pass

    shape = (2, 1, *[8] * spatial_dims)
    flat = torch.full(shape, 0.3)
    torch.testing.assert_close(binomial_blur(flat), flat)
    torch.testing.assert_close(high_pass(flat), torch.zeros(shape))
    idx = torch.stack(torch.meshgrid(*[torch.arange(8)] * spatial_dims, indexing="ij")).sum(0)
    checker = ((idx % 2) * 2 - 1).float().expand(shape)  # +-1, the finest texture there is
    interior = (slice(None), slice(None), *[slice(2, 6)] * spatial_dims)
    # The binomial blur removes all of a checkerboard away from the borders: its residual is 4 x the image.
    torch.testing.assert_close(high_pass(checker)[interior], 4 * checker[interior])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_mask_depth_counts_how_many_voxels_deep_each_voxel_lies_and_passes_gradients(spatial_dims: int) -> None:
    from medgan.networks.layers import mask_depth

    x = -torch.ones(1, 1, *[9] * spatial_dims)
    x[(0, 0, *[slice(2, 7)] * spatial_dims)] = 1  # a cube 5 voxels wide: its centre is 3 voxels deep
    d = mask_depth(x, 3)
    assert d.shape == x.shape
    at = lambda *i: float(d[(0, 0, *i, *[4] * (spatial_dims - len(i)))])  # noqa: E731
    assert [at(j) for j in range(9)] == pytest.approx([-1, -1, -1 / 3, 1 / 3, 1, 1 / 3, -1 / 3, -1, -1])
    assert float(mask_depth(x, 5)[(0, 0, *[4] * spatial_dims)]) == pytest.approx(-1 + 2 * 3 / 5)  # 3 deep of 5
    slab = -torch.ones(1, 1, *[9] * spatial_dims)
    slab[0, 0, 4] = 1  # a slab one voxel thick is all surface
    torch.testing.assert_close(mask_depth(slab, 3)[0, 0, 4], torch.full_like(slab[0, 0, 4], -1 / 3))
    full = torch.ones(1, 1, *[9] * spatial_dims)  # a mask filling the image: outside counts as background
    assert float(mask_depth(full, 3)[(0, 0, *[0] * spatial_dims)]) == pytest.approx(-1 / 3)  # a corner is surface
    assert float(mask_depth(full, 3)[(0, 0, *[4] * spatial_dims)]) == 1
    x.requires_grad_(True)
    mask_depth(x, 2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="k >= 1"):
        mask_depth(x, 0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_skip_excitation_scales_each_fine_channel_by_a_gain_from_the_pooled_coarse_map(spatial_dims: int) -> None:
    torch.manual_seed(0)
    sle = SkipExcitation(spatial_dims, coarse_channels=3, fine_channels=5)
    coarse = torch.randn(2, 3, *[8] * spatial_dims)
    fine = torch.rand(2, 5, *[16] * spatial_dims) + 0.5
    out = sle(coarse, fine)
    assert out.shape == fine.shape
    gain = (out / fine).detach().flatten(2)  # one gain per (sample, channel), the same at every pixel
    torch.testing.assert_close(gain, gain[..., :1].expand_as(gain))
    assert float(gain.min()) > 0.0 and float(gain.max()) < 1.0
    # Only the 4^d cell means of the coarse map count: moving mass within a 2-wide cell changes nothing.
    pool = torch.nn.functional.adaptive_avg_pool2d if spatial_dims == 2 else torch.nn.functional.adaptive_avg_pool3d
    shuffled = coarse.flip(-1).reshape(*coarse.shape[:-1], 4, 2).flip(-2).reshape(coarse.shape)
    torch.testing.assert_close(pool(shuffled, 4), pool(coarse, 4))
    torch.testing.assert_close(sle(shuffled, fine), out)
    assert not torch.allclose(sle(coarse.roll(2, dims=-1), fine), out)
    with pytest.raises(ValueError, match="each a multiple of 4"):
        sle(torch.randn(2, 3, *[6] * spatial_dims), fine)
