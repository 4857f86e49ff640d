"""The style family: modulated convolution, upsampling, mapping, truncation, shapes and conditioning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medgan.networks import NETWORK_FAMILIES, build_discriminator, build_generator, build_networks
from medgan.networks.cgan import Discriminator, Generator
from medgan.networks.style import LatentGenerator, SmoothUpsample2x, StyleGenerator, modulated_conv

TINY = {"base_channels": 4, "max_channels": 8, "w_dim": 8, "mapping_layers": 2}


def _g(**kw) -> StyleGenerator:
    torch.manual_seed(0)
    return StyleGenerator(**{"z_dim": 8, "num_classes": 2, "size": 16, **TINY, **kw})


# Modulated convolution: a real correctness check against plain convolutions.


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_modulated_conv_with_unit_styles_and_no_demodulation_is_a_plain_conv(spatial_dims, fused):
    torch.manual_seed(0)
    x = torch.randn(3, 4, *([6] * spatial_dims))
    weight = torch.randn(5, 4, *([3] * spatial_dims))
    out = modulated_conv(x, weight, torch.ones(3, 4), demodulate=False, padding=1, fused=fused)
    plain = (F.conv2d if spatial_dims == 2 else F.conv3d)(x, weight, padding=1)
    assert out.shape == plain.shape == (3, 5, *([6] * spatial_dims))
    assert torch.allclose(out, plain, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_modulated_conv_equals_a_per_sample_conv_with_scaled_and_normalised_filters(spatial_dims, fused):
    torch.manual_seed(1)
    conv = F.conv2d if spatial_dims == 2 else F.conv3d
    x = torch.randn(3, 4, *([5] * spatial_dims))
    weight = torch.randn(6, 4, *([3] * spatial_dims))
    styles = torch.rand(3, 4) + 0.5
    out = modulated_conv(x, weight, styles, demodulate=True, padding=1, fused=fused)
    for b in range(3):
        w = weight * styles[b].reshape(1, 4, *([1] * spatial_dims))
        w = w / w.flatten(1).norm(dim=1).reshape(6, 1, *([1] * spatial_dims))
        assert torch.allclose(out[b : b + 1], conv(x[b : b + 1], w, padding=1), atol=1e-5)
    # Demodulation makes the output independent of a style's overall scale.
    assert torch.allclose(modulated_conv(x, weight, 7.0 * styles, padding=1, fused=fused), out, atol=1e-4)


def test_modulated_conv_rejects_mismatched_styles():
    with pytest.raises(ValueError, match="styles must have shape"):
        modulated_conv(torch.randn(2, 3, 4, 4), torch.randn(5, 3, 3, 3), torch.ones(2, 4))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_smooth_upsample_equals_linear_interpolation(spatial_dims):
    x = torch.randn(2, 3, *([5] * spatial_dims))
    mode = "bilinear" if spatial_dims == 2 else "trilinear"
    expected = F.interpolate(x, scale_factor=2, mode=mode, align_corners=False)
    assert torch.allclose(SmoothUpsample2x(spatial_dims)(x), expected, atol=1e-6)


# Shapes, range, conditioning.


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("output", ["skip", "residual"])
@pytest.mark.parametrize(("num_classes", "channels", "size"), [(0, 1, 16), (2, 1, 28), (3, 3, 8)])
def test_shapes_and_range_in_2d_and_3d(spatial_dims, output, num_classes, channels, size):
    G = _g(
        num_classes=num_classes, out_channels=channels, size=size, spatial_dims=spatial_dims, output=output
    )
    D = build_discriminator(
        "style",
        in_channels=channels,
        num_classes=num_classes,
        size=size,
        spatial_dims=spatial_dims,
        base_channels=4,
        max_channels=8,
        spectral_norm=False,
        mbstd=True,
    )
    y = torch.arange(4) % num_classes if num_classes else None
    x = G(torch.randn(4, 8), y)
    assert x.shape == (4, channels, *([size] * spatial_dims))
    assert x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (4,)
    img, ws = G(torch.randn(4, 8), y, return_w=True)
    assert img.shape == x.shape and ws.shape == (4, G.num_ws, 8)


def test_class_conditioning_changes_the_output():
    G = _g().eval()
    z = torch.randn(4, 8)
    a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long))
    assert (a - b).abs().mean() > 1e-3
    # The same (z, y) gives the same image in eval mode (noise seeded from z).
    assert torch.equal(a, G(z, torch.zeros(4, dtype=torch.long)))


def test_noise_is_fresh_in_training_and_a_function_of_each_samples_z_in_eval():
    G = _g()
    for m in G.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.5)
    z, y = torch.randn(2, 8), torch.tensor([0, 1])
    assert not torch.equal(G.train()(z, y), G(z, y))
    G.eval()
    assert torch.equal(G(z, y), G(z, y))
    # Batch-independent: a sample is the same alone or beside others.
    torch.testing.assert_close(G(z[1:], y[1:]), G(z, y)[1:])
    # Every sample has its own noise: the same w with two seeds gives two images, with one seed one.
    ws = G.mapping(z[:1], y[:1]).unsqueeze(1).expand(2, G.num_ws, -1)
    two = G.synthesis(ws, seed_from=z)
    assert (two[0] - two[1]).abs().max() > 1e-3
    one = G.synthesis(ws, seed_from=z[:1].expand(2, -1))
    assert torch.equal(one[0], one[1])
    # With the noise strengths at 0 the seed is irrelevant.
    for m in G.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.zero_()
    quiet = G.synthesis(ws, seed_from=z)
    assert torch.equal(quiet[0], quiet[1])


def test_checkpoints_with_the_old_fixed_noise_maps_still_load():
    G = _g()
    state = G.state_dict()
    old = dict(state, **{"blocks.1.conv0.noise_const": torch.randn(1, 1, 8, 8)})
    fresh = _g(w_avg_beta=0.5)
    fresh.load_state_dict(old)  # strict: the extra key is dropped, nothing else is missing
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), state.values(), strict=True))
    assert not any("noise_const" in k for k in fresh.state_dict())


def test_style_family_is_selectable_by_name():
    assert "style" in NETWORK_FAMILIES
    spec = {
        "family": "style",
        "generator": {"z_dim": 8, "num_classes": 2, "size": 16, **TINY},
        "discriminator": {"num_classes": 2, "size": 16, "base_channels": 4, "max_channels": 8},
    }
    G, D = build_networks(spec)
    assert isinstance(G, StyleGenerator) and isinstance(D, Discriminator)
    assert isinstance(build_generator("style", z_dim=8, size=16, **TINY), LatentGenerator)
    assert not isinstance(Generator(z_dim=8, size=16, base_channels=4, max_channels=8), LatentGenerator)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="output must be one of skip, residual"):
        _g(output="sum")
    with pytest.raises(ValueError, match="class labels y are required"):
        _g()(torch.randn(2, 8))
    with pytest.raises(ValueError, match="truncation must be a number >= 0"):
        _g()(torch.randn(2, 8), torch.tensor([0, 1]), truncation=-0.5)


# Truncation towards the per-class mean w.


def test_update_w_avg_moves_only_the_classes_in_the_batch():
    G = _g(w_avg_beta=0.9)
    w_sum = torch.stack([torch.full((8,), 2.0), torch.zeros(8)])  # class 0: 2 samples with w = 1
    G.update_w_avg(w_sum, torch.tensor([2.0, 0.0]))
    assert torch.allclose(G.w_avg[0], torch.full((8,), 0.1))  # lerp(1, 0, 0.9)
    assert torch.equal(G.w_avg[1], torch.zeros(8))


def test_truncation_zero_gives_the_per_class_mean_output_and_one_is_off():
    G = _g().eval()
    torch.manual_seed(3)
    G.w_avg.copy_(torch.randn(2, 8))
    y = torch.tensor([0, 0, 1, 1])
    out = G(torch.randn(4, 8), y, truncation=0.0)
    mean_images = G.synthesis(G.w_avg[y].unsqueeze(1).expand(-1, G.num_ws, -1))
    assert torch.allclose(out, mean_images, atol=1e-6)
    assert torch.allclose(out[0], out[1], atol=1e-6) and not torch.allclose(out[0], out[2], atol=1e-3)
    z = torch.randn(4, 8)
    assert torch.equal(G(z, y, truncation=1.0), G(z, y))
    # In between, w lies on the segment from the class mean to the untruncated w.
    w, w_half = G.mapping(z, y), G.mapping(z, y, truncation=0.5)
    assert torch.allclose(w_half, 0.5 * (w + G.w_avg[y]), atol=1e-6)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_binary_output_is_the_sign_of_the_soft_output_and_gradients_pass_through(spatial_dims):
    torch.manual_seed(0)
    G = StyleGenerator(z_dim=8, num_classes=2, size=8, spatial_dims=spatial_dims, base_channels=4, max_channels=8,
                       w_dim=8, mapping_layers=2, binary=True).eval()
    z, y = torch.randn(3, 8), torch.tensor([0, 1, 1])
    hard = G(z, y)
    assert hard.shape == (3, 1, *[8] * spatial_dims) and set(hard.unique().tolist()) == {-1.0, 1.0}
    G.binary = False
    soft = G(z, y).detach()
    assert soft.unique().numel() > 2 and torch.equal(hard.detach(), torch.where(soft >= 0, 1.0, -1.0))
    G.binary = True
    G(z, y).mean().backward()
    assert G.mapping_net.layers[0].weight.grad.abs().sum() > 0
