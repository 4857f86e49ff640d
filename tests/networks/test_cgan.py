"""Class-conditional G / D and the layer helpers: shapes, ranges, conditioning, spectral norm, resume."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from medgan.networks import (
    NETWORK_FAMILIES,
    Discriminator,
    Generator,
    build_discriminator,
    build_generator,
)
from medgan.networks.layers import (
    AvgPool2x,
    ConditionalBatchNorm,
    Upsample2x,
    center_crop,
    next_pow2,
    pad_to,
    pixel_noise,
)

TINY = {"base_channels": 4, "max_channels": 16}
TINY_3D = {"base_channels": 2, "max_channels": 8}  # keeps 64³ fast on a CPU


def _labels(num_classes: int, batch: int) -> torch.Tensor | None:
    return torch.arange(batch) % num_classes if num_classes > 0 else None


# Shapes and ranges.


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 2, 7])
def test_generator_and_discriminator_shapes(
    spatial_dims: int, size: int, channels: int, num_classes: int
) -> None:
    width = TINY if spatial_dims == 2 else TINY_3D
    G = Generator(
        z_dim=16,
        num_classes=num_classes,
        out_channels=channels,
        size=size,
        spatial_dims=spatial_dims,
        **width,
    )
    D = Discriminator(
        in_channels=channels, num_classes=num_classes, size=size, spatial_dims=spatial_dims, **width
    )
    y = _labels(num_classes, 2)
    x = G(torch.randn(2, 16), y)
    assert x.shape == (2, channels, *([size] * spatial_dims))
    assert x.min() >= -1.0 and x.max() <= 1.0
    logits = D(x, y)
    assert logits.shape == (2,)
    assert torch.isfinite(logits).all()


def test_generator_output_is_tanh_bounded_even_for_huge_latents() -> None:
    G = Generator(z_dim=8, size=28, **TINY)
    x = G(1e4 * torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))
    assert x.abs().max() <= 1.0


def test_default_networks_are_cpu_sized() -> None:
    def n_params(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert 0.5e6 < n_params(Generator()) < 3e6
    assert 0.5e6 < n_params(Discriminator()) < 3e6


def test_base_channels_scales_width() -> None:
    small = sum(p.numel() for p in Generator(base_channels=8, max_channels=1024).parameters())
    large = sum(p.numel() for p in Generator(base_channels=16, max_channels=1024).parameters())
    assert large > 2 * small  # conv weights grow with width squared, the input layer linearly


# Conditioning.


def test_generator_output_depends_on_class_for_fixed_z() -> None:
    G = Generator(z_dim=16, num_classes=3, size=28, **TINY).eval()
    z = torch.randn(1, 16).repeat(3, 1)
    x = G(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(x[0], x[1])
    assert not torch.allclose(x[1], x[2])
    # Same z and class → same image.
    again = G(z[:1], torch.tensor([1]))
    torch.testing.assert_close(again[0], x[1])


def test_class_gradients_reach_only_the_used_class_embeddings() -> None:
    G = Generator(z_dim=16, num_classes=4, size=28, **TINY)
    G(torch.randn(4, 16), torch.tensor([0, 2, 0, 2])).square().mean().backward()
    grad = G.blocks[0].norm1.embed.weight.grad
    assert grad[[0, 2]].abs().sum() > 0
    assert grad[[1, 3]].abs().sum() == 0


def test_discriminator_projection_depends_on_class() -> None:
    D = Discriminator(num_classes=3, size=28, **TINY).eval()
    x = torch.randn(1, 1, 28, 28).repeat(3, 1, 1, 1)
    logits = D(x, torch.tensor([0, 1, 2]))
    assert len(set(logits.tolist())) == 3


def test_unconditional_networks_accept_and_ignore_labels() -> None:
    G = Generator(z_dim=16, num_classes=0, size=32, **TINY).eval()
    D = Discriminator(num_classes=0, size=32, **TINY).eval()
    z = torch.randn(2, 16)
    x = G(z, None)
    torch.testing.assert_close(G(z, torch.tensor([5, 9])), x)
    torch.testing.assert_close(D(x, torch.tensor([5, 9])), D(x, None))
    assert D.embed is None


def test_conditional_networks_require_labels() -> None:
    G = Generator(z_dim=16, num_classes=2, size=28, **TINY)
    D = Discriminator(num_classes=2, size=28, **TINY)
    with pytest.raises(ValueError, match="labels y are required"):
        G(torch.randn(2, 16), None)
    with pytest.raises(ValueError, match="labels y are required"):
        D(torch.randn(2, 1, 28, 28), None)


def test_bad_shapes_and_options_raise() -> None:
    with pytest.raises(ValueError, match="z must have shape"):
        Generator(z_dim=16, size=28, **TINY)(torch.randn(2, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="x must have shape"):
        Discriminator(size=28, **TINY)(torch.randn(2, 1, 32, 32), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="spatial_dims"):
        Generator(spatial_dims=1)
    with pytest.raises(ValueError, match="size"):
        Discriminator(size=4)


# Spectral norm.


def test_every_discriminator_weight_is_spectrally_normalised() -> None:
    D = Discriminator(num_classes=2, size=28, **TINY)
    weighted = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert weighted and all(parametrize.is_parametrized(m, "weight") for m in weighted)


def test_spectral_norm_bounds_the_largest_singular_value() -> None:
    D = Discriminator(num_classes=2, size=28, **TINY)
    modules = (D.blocks[1].conv2, D.blocks[0].conv1, D.fc)
    with torch.no_grad():
        D.blocks[1].conv2.parametrizations.weight.original.mul_(50.0)  # a large raw weight
        D(torch.randn(2, 1, 28, 28), torch.tensor([0, 1]))  # a training-mode forward iterates once
        for _ in range(30):  # so does every training-mode access of a weight
            for module in modules:
                _ = module.weight
    D.eval()
    raw = D.blocks[1].conv2.parametrizations.weight.original.detach().flatten(1)
    assert torch.linalg.matrix_norm(raw, ord=2) > 5.0
    for module in modules:
        sigma = torch.linalg.matrix_norm(module.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_discriminator_state_dict_resumes_exactly() -> None:
    D = Discriminator(num_classes=2, size=28, **TINY)
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([0, 1])
    D(x, y)  # move the power-iteration vectors away from their initial values
    state = {k: v.clone() for k, v in D.state_dict().items()}
    assert any(k.endswith("_u") for k in state) and any(k.endswith("_v") for k in state)

    torch.manual_seed(123)  # a fresh model starts from different u, v
    resumed = Discriminator(num_classes=2, size=28, **TINY)
    resumed.load_state_dict(state)
    for _ in range(3):  # training-mode forwards keep updating u, v identically
        assert torch.equal(D(x, y), resumed(x, y))


def test_generator_batchnorm_stats_round_trip() -> None:
    G = Generator(z_dim=16, num_classes=2, size=28, **TINY)
    G(torch.randn(4, 16), torch.tensor([0, 1, 0, 1]))
    resumed = Generator(z_dim=16, num_classes=2, size=28, **TINY)
    resumed.load_state_dict(G.state_dict())
    z, y = torch.randn(3, 16), torch.tensor([1, 0, 1])
    assert torch.equal(G.eval()(z, y), resumed.eval()(z, y))


# Family builders.


def test_build_cgan_family() -> None:
    G = build_generator("residual", z_dim=16, size=28, **TINY)
    D = build_discriminator("residual", size=28, **TINY)
    assert isinstance(G, Generator) and isinstance(D, Discriminator)


def test_progressive_family_is_built_by_name() -> None:
    pytest.importorskip("medgan.networks.progressive")
    assert type(build_generator("progressive", size=28)).__name__ == "ProgressiveGenerator"
    assert type(build_discriminator("progressive", size=28)).__name__ == "ProgressiveDiscriminator"


def test_unknown_family_lists_allowed_names() -> None:
    assert NETWORK_FAMILIES[:3] == ("residual", "progressive", "style")
    # The old name of the residual family still builds it, with a warning that names the new one.
    with pytest.warns(FutureWarning, match="now called 'residual'"):
        assert isinstance(build_generator("cgan", z_dim=16, size=28, **TINY), Generator)
    with pytest.raises(ValueError, match="allowed: residual, progressive, style"):
        build_generator("stylegan", size=28)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allowed: residual, progressive, style"):
        build_discriminator("stylegan", size=28)  # type: ignore[arg-type]


# Layer helpers.


def test_next_pow2() -> None:
    assert [next_pow2(n) for n in (1, 2, 3, 8, 28, 32, 33, 64)] == [1, 2, 4, 8, 32, 32, 64, 64]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_pad_then_crop_is_identity(spatial_dims: int) -> None:
    x = torch.randn(2, 3, *([7] * spatial_dims))
    padded = pad_to(x, 12, value=-1.0)
    assert padded.shape == (2, 3, *([12] * spatial_dims))
    assert padded[(0, 0, *([0] * spatial_dims))] == -1.0
    assert torch.equal(center_crop(padded, 7), x)
    assert pad_to(x, 7) is x


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_resampling_matches_torch_reference(spatial_dims: int) -> None:
    x = torch.randn(2, 3, *([4] * spatial_dims))
    mode = "nearest"
    torch.testing.assert_close(Upsample2x(spatial_dims)(x), F.interpolate(x, scale_factor=2, mode=mode))
    pool = F.avg_pool2d if spatial_dims == 2 else F.avg_pool3d
    torch.testing.assert_close(AvgPool2x(spatial_dims)(x), pool(x, 2))


def test_conditional_batchnorm_uses_per_class_gain_and_bias() -> None:
    cbn = ConditionalBatchNorm(2, 4, num_classes=2)
    with torch.no_grad():
        cbn.embed.weight.copy_(torch.tensor([[1.0] * 4 + [0.0] * 4, [2.0] * 4 + [3.0] * 4]))
    x = torch.randn(6, 4, 5, 5)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    normalised = F.batch_norm(x, None, None, training=True)
    out = cbn(x, y)
    torch.testing.assert_close(out[0::2], normalised[0::2])
    torch.testing.assert_close(out[1::2], 2.0 * normalised[1::2] + 3.0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_linear_upsampling_and_a_plain_d_keep_shapes(spatial_dims: int) -> None:
    size = 12 if spatial_dims == 3 else 28
    G = Generator(z_dim=8, num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=8,
                  upsample="linear")
    D = Discriminator(num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=8,
                      spectral_norm=False, mbstd=True)
    y = torch.tensor([0, 1, 0, 1])
    x = G(torch.randn(4, 8), y)
    assert x.shape == (4, 1, *[size] * spatial_dims) and float(x.abs().max()) <= 1.0
    assert D(x, y).shape == (4,)
    assert not any(parametrize.is_parametrized(m) for m in D.modules())  # no spectral norm left
    with pytest.raises(ValueError, match="upsample"):
        Generator(upsample="cubic")  # type: ignore[arg-type]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_highpass_d_reads_the_image_and_its_fine_texture(spatial_dims: int) -> None:
    size = 12 if spatial_dims == 3 else 28
    torch.manual_seed(0)
    # Without spectral norm, so that zeroing some weights does not rescale the others.
    D = Discriminator(num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=8, highpass=True,
                      spectral_norm=False)
    assert D.blocks[0].conv1.in_channels == 2 and D.blocks[0].skip.in_channels == 2
    y = torch.tensor([0, 1])
    smooth = torch.linspace(-0.5, 0.5, size).expand(2, 1, *[size] * spatial_dims).contiguous()
    assert D(smooth, y).shape == (2,)
    # A constant image has no high-pass part: zeroing the residual channel's weights changes nothing for it,
    # and changes the score of a textured image.
    flat, textured = torch.full_like(smooth, 0.2), smooth + 0.3 * torch.randn_like(smooth)
    before_flat, before_textured = D(flat, y), D(textured, y)
    with torch.no_grad():
        for layer in (D.blocks[0].conv1, D.blocks[0].skip):
            layer.weight[:, 1:] = 0
    torch.testing.assert_close(D(flat, y), before_flat)
    assert not torch.allclose(D(textured, y), before_textured)


def test_depth_d_reads_the_mask_beside_its_depth_and_tells_a_thick_slab_from_two_thin_ones() -> None:
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=12, spatial_dims=3, base_channels=4, max_channels=8, depth=3,
                      spectral_norm=False)
    assert D.blocks[0].conv1.in_channels == 2 and D.blocks[0].skip.in_channels == 2
    y = torch.tensor([0, 0])
    thick, thin = -torch.ones(2, 1, 12, 12, 12), -torch.ones(2, 1, 12, 12, 12)
    thick[:, :, 5:8] = 1  # one slab three voxels thick
    thin[:, :, 2], thin[:, :, 5], thin[:, :, 9] = 1, 1, 1  # three slabs one voxel thick: the same volume
    assert (thick > 0).sum() == (thin > 0).sum()
    with torch.no_grad():  # D sees only the depth channel: the mask's own weights off
        for layer in (D.blocks[0].conv1, D.blocks[0].skip):
            layer.weight[:, :1] = 0
    assert not torch.allclose(D(thick, y), D(thin, y))
    with torch.no_grad():  # and the depth channel off too: only the biases are left, the same for both
        for layer in (D.blocks[0].conv1, D.blocks[0].skip):
            layer.weight[:, 1:] = 0
    torch.testing.assert_close(D(thick, y), D(thin, y))
    with pytest.raises(ValueError, match="depth must be >= 0"):
        Discriminator(depth=-1)


def test_proj_weight_scales_only_the_class_term_of_the_logit() -> None:
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=12, spatial_dims=3, base_channels=4, max_channels=8)
    D3 = Discriminator(num_classes=2, size=12, spatial_dims=3, base_channels=4, max_channels=8, proj_weight=3.0)
    D3.load_state_dict(D.state_dict())
    D.eval(), D3.eval()
    x, zero, one = torch.randn(4, 1, 12, 12, 12), torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        gap, gap3 = D(x, one) - D(x, zero), D3(x, one) - D3(x, zero)  # the class term's difference alone
        linear0, linear1 = (3 * D(x, zero) - D3(x, zero)) / 2, (3 * D(x, one) - D3(x, one)) / 2  # fc(h) both times
    assert gap.abs().min() > 1e-4
    torch.testing.assert_close(gap3, 3 * gap)
    torch.testing.assert_close(linear0, linear1)  # the linear head is the same, whatever the class
    with pytest.raises(ValueError, match="proj_weight must be a finite number > 0"):
        Discriminator(proj_weight=0.0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_supersampled_generator_area_resizes_a_larger_image(spatial_dims: int) -> None:
    size = 12 if spatial_dims == 3 else 28
    torch.manual_seed(0)
    G = Generator(z_dim=8, num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=16,
                  upsample="linear", supersample=2)
    plain = Generator(z_dim=8, num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=8, max_channels=16)
    # One block more, at twice the edge length; below it the widths of a plain G twice as wide at the finest size.
    assert G.full_size == 2 * plain.full_size and len(G.blocks) == len(plain.blocks) + 1
    assert [b.conv1.out_channels for b in G.blocks[:-1]] == [b.conv1.out_channels for b in plain.blocks]
    big = {}
    G.out_conv.register_forward_hook(lambda m, i, o: big.setdefault("x", o))
    y = torch.tensor([0, 1, 0, 1])
    x = G(torch.randn(4, 8), y)
    assert x.shape == (4, 1, *[size] * spatial_dims) and float(x.abs().max()) <= 1.0
    assert big["x"].shape[2:] == (G.full_size,) * spatial_dims
    # The output is the mean of each 2-wide cell of the centre 2·size crop of the tanh image.
    pool = F.avg_pool2d if spatial_dims == 2 else F.avg_pool3d
    torch.testing.assert_close(x, pool(center_crop(big["x"].tanh(), 2 * size), 2))
    binary = Generator(z_dim=8, num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=16,
                       supersample=2, binary=True)
    assert set(binary(torch.randn(4, 8), y).unique().tolist()) <= {-1.0, 1.0}
    with pytest.raises(ValueError, match="supersample must be >= 1"):
        Generator(supersample=0)


def test_supersampled_generator_with_the_bilinear_filter_resizes_down_as_pil_does() -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=8, num_classes=2, size=28, base_channels=4, max_channels=16, upsample="linear", supersample=2,
                  supersample_filter="bilinear")
    big = {}
    G.out_conv.register_forward_hook(lambda m, i, o: big.setdefault("x", o))
    x = G(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]))
    assert x.shape == (4, 1, 28, 28) and float(x.abs().max()) <= 1.0
    crop = center_crop(big["x"].tanh(), 56)
    expected = F.interpolate(crop, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(x, expected)
    # Not the area resize: the triangle filter reaches into the neighbouring cells.
    assert (x - F.avg_pool2d(crop, 2)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="'bilinear' for 2D images"):
        Generator(size=12, spatial_dims=3, supersample=2, supersample_filter="bilinear")
    with pytest.raises(ValueError, match="supersample_filter must be"):
        Generator(supersample=2, supersample_filter="lanczos")  # type: ignore[arg-type]


@pytest.mark.parametrize(("spatial_dims", "size"), [(2, 28), (2, 64), (3, 12)])
def test_skip_layer_excitation_gates_each_stage_from_sixteen_pixels_by_the_one_two_stages_back(
    spatial_dims: int, size: int
) -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=8, num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=16,
                  sle=True)
    assert Generator(z_dim=8, size=size, spatial_dims=spatial_dims).excite is None
    seen: dict[int, tuple[int, ...]] = {}
    for k, module in enumerate(G.excite):
        if not isinstance(module, torch.nn.Identity):
            module.register_forward_hook(lambda m, i, o, k=k: seen.update({k: (i[0].shape[2], o.shape[2])}))
    y = torch.tensor([0, 1, 0, 1])
    x = G(torch.randn(4, 8), y)
    assert x.shape == (4, 1, *[size] * spatial_dims)
    # (coarse edge, fine edge) per gated block: 4 -> 16, 8 -> 32, ... up to the generator's full size.
    expected = {k: (4 * 2 ** (k - 1), 4 * 2 ** (k + 1)) for k in range(1, len(G.blocks))}
    assert seen == expected and max(f for _, f in seen.values()) == G.full_size
    x.square().mean().backward()
    assert all(float(p.grad.abs().sum()) > 0 for p in G.excite.parameters())


@pytest.mark.parametrize(("spatial_dims", "size"), [(2, 28), (3, 12)])
def test_discriminator_decoder_rebuilds_an_image_of_the_input_shape_beside_the_other_outputs(
    spatial_dims: int, size: int
) -> None:
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=16,
                      recon=True, aux=True, mbstd=True).eval()
    x, y = torch.rand(4, 1, *[size] * spatial_dims) * 2 - 1, torch.tensor([0, 1, 0, 1])
    logits, class_logits, recon = D(x, y, return_aux=True, return_recon=True)
    assert logits.shape == (4,) and class_logits.shape == (4, 2) and recon.shape == x.shape
    assert float(recon.abs().max()) <= 1.0
    torch.testing.assert_close(D(x, y), logits)
    torch.testing.assert_close(D(x, y, return_recon=True)[1], recon)
    with pytest.raises(ValueError, match="return_recon=True needs a discriminator built with recon=True"):
        Discriminator(num_classes=2, size=size, spatial_dims=spatial_dims)(x, y, return_recon=True)
    with pytest.raises(ValueError, match="recon needs size >= 9"):
        Discriminator(size=8, recon=True)


@pytest.mark.parametrize(("spatial_dims", "size"), [(2, 28), (2, 16), (3, 12)])
def test_unet_discriminator_scores_every_pixel_and_leaves_the_image_logit_alone(spatial_dims: int, size: int) -> None:
    torch.manual_seed(0)
    D = Discriminator(num_classes=2, size=size, spatial_dims=spatial_dims, base_channels=4, max_channels=16,
                      unet=True, aux=True, mbstd=True, highpass=True).eval()
    x, y = torch.rand(4, 1, *[size] * spatial_dims) * 2 - 1, torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        logits, class_logits, pixels = D(x, y, return_aux=True, return_pixels=True)
        other = D(x, 1 - y, return_pixels=True)[1]
    assert logits.shape == (4,) and class_logits.shape == (4, 2) and pixels.shape == (4, 1, *[size] * spatial_dims)
    torch.testing.assert_close(D(x, y), logits)
    # The per-pixel logits depend on the class (their own projection) and are local: changing one
    # corner pixel moves the logits near it more than those at the opposite corner.
    assert float((other - pixels).abs().mean()) > 1e-4
    x2 = x.clone()
    x2[(slice(None), slice(None), *([0] * spatial_dims))] += 1.0
    moved = (D(x2, y, return_pixels=True)[1].detach() - pixels).abs()[:, 0]
    near, far = moved[(slice(None), *([slice(0, 2)] * spatial_dims))], moved[(slice(None), *([slice(-2, None)] * spatial_dims))]
    assert float(near.mean()) > 3 * float(far.mean())
    with pytest.raises(ValueError, match="return_pixels=True needs a discriminator built with unet=True"):
        Discriminator(num_classes=2, size=size, spatial_dims=spatial_dims)(x, y, return_pixels=True)


def test_minibatch_std_groups_do_not_depend_on_how_the_batch_is_split() -> None:
    from medgan.networks.cgan import MinibatchStd

    x = torch.randn(8, 3, 4, 4)
    whole = MinibatchStd()(x)
    halves = torch.cat([MinibatchStd()(x[:4]), MinibatchStd()(x[4:])])  # two DDP ranks of 4
    assert whole.shape == (8, 4, 4, 4)
    assert torch.allclose(whole, halves)
    # The extra channel is the group's mean standard deviation, constant over space.
    expected = x[:4].std(dim=0, unbiased=False).mean()
    assert torch.allclose(whole[0, 3], torch.full((4, 4), float(expected)), atol=1e-5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_binary_generator_emits_the_sign_of_its_tanh_and_still_learns(spatial_dims: int) -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=8, num_classes=2, size=12, spatial_dims=spatial_dims, base_channels=4, max_channels=8,
                  binary=True).eval()
    z, y = torch.randn(3, 8), torch.tensor([0, 1, 1])
    x = G(z, y)
    assert x.shape == (3, 1, *[12] * spatial_dims)
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    G.binary = False
    soft = G(z, y).detach()
    assert soft.unique().numel() > 2
    assert torch.equal(x.detach(), torch.where(soft >= 0, 1.0, -1.0))
    # The sign has no gradient of its own; the tanh's reaches every layer (straight-through).
    G.binary = True
    G(z, y).mean().backward()
    assert G.out_conv.weight.grad is not None and G.out_conv.weight.grad.abs().sum() > 0
    assert G.fc.weight.grad is not None and G.fc.weight.grad.abs().sum() > 0


def test_a_floored_generator_clamps_its_darkest_pixels_flat_and_still_learns_from_them() -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=8, num_classes=2, size=12, base_channels=4, max_channels=8).eval()
    z, y = torch.randn(6, 8), torch.tensor([0, 1] * 3)
    soft = G(z, y).detach()
    floor = float(soft.quantile(0.2))  # a fifth of the pixels lie below it
    G.floor = floor
    x = G(z, y)
    assert x.min().item() == pytest.approx(floor)
    assert torch.equal(x.detach(), soft.clamp(min=floor))
    assert (x.detach() == floor).float().mean().item() >= 0.19  # the clamped pixels sit exactly at the floor
    # Straight-through: the pixels below the floor pass D's gradient on to G.
    below = (soft < floor).float()
    (x * below).sum().backward()
    assert G.out_conv.weight.grad is not None and G.out_conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="floor needs binary=False"):
        Generator(binary=True, floor=-0.9)
    with pytest.raises(ValueError, match="floor needs binary=False and a value in \\[-1, 1\\)"):
        Generator(floor=1.0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_noise_inputs_vary_in_training_are_a_function_of_z_when_sampling_and_learn(spatial_dims: int) -> None:
    torch.manual_seed(0)
    G = Generator(z_dim=8, num_classes=2, size=12, spatial_dims=spatial_dims, base_channels=4, max_channels=8,
                  noise=True)
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 1, 0])
    strengths = [p for n, p in G.named_parameters() if "noise" in n]
    assert len(strengths) == 2 * len(G.blocks) and all(float(p.abs().sum()) == 0 for p in strengths)
    with torch.no_grad():  # strength 0 at the start: the noise changes nothing yet
        plain = Generator(z_dim=8, num_classes=2, size=12, spatial_dims=spatial_dims, base_channels=4,
                          max_channels=8)
        plain.load_state_dict({k: v for k, v in G.state_dict().items() if "noise" not in k})
        assert torch.allclose(G.eval()(z, y), plain.eval()(z, y), atol=1e-6)
        for p in strengths:
            p.fill_(0.5)
    # Training: fresh noise at every call, so the same (z, y) gives different images.
    G.train()
    a, b = G(z, y), G(z, y)
    assert not torch.allclose(a, b)
    # Sampling: a pure function of (z, y), whatever the batch it sits in ...
    G.eval()
    with torch.no_grad():
        whole, again = G(z, y), G(z, y)
        alone = G(z[2:3], y[2:3])
    assert torch.equal(whole, again)
    assert torch.allclose(whole[2:3], alone, atol=1e-6)
    # ... yet each sample has its own noise: two latents differing in one entry differ beyond it.
    maps = pixel_noise(torch.stack([z[0], z[0] + 1e-3]), [(12,) * spatial_dims], random=False)[0]
    assert maps.shape == (2, 1, *[12] * spatial_dims)
    assert float((maps[0] - maps[1]).abs().mean()) > 0.5
    assert abs(float(maps.std()) - 1.0) < 0.2
    # The strengths get a gradient: the network can learn how much texture to add.
    G.train()
    G(z, y).square().mean().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in strengths)
    # noise_init starts every strength there, so the noise shapes the images from the first step.
    torch.manual_seed(0)
    started = Generator(z_dim=8, num_classes=2, size=12, spatial_dims=spatial_dims, base_channels=4, max_channels=8,
                        noise=True, noise_init=0.25)
    assert all(torch.equal(p, torch.full_like(p, 0.25)) for n, p in started.named_parameters() if "noise" in n)
    started.train()
    assert not torch.allclose(started(z, y), started(z, y))


def test_noise_map_learns_a_gain_per_position_that_starts_as_plain_noise() -> None:
    torch.manual_seed(0)
    kw = dict(z_dim=8, num_classes=2, size=12, base_channels=4, max_channels=8, noise=True, noise_init=0.5)
    G = Generator(**kw, noise_map=True)
    gains = {n: p for n, p in G.named_parameters() if n.endswith(".gain")}
    # One map per noise input, at its block's resolution (12 is drawn on a 16 canvas: 8 then 16).
    assert sorted({tuple(p.shape) for p in gains.values()}) == [(1, 1, 8, 8), (1, 1, 16, 16)]
    assert len(gains) == 2 * len(G.blocks) and all(torch.equal(p, torch.ones_like(p)) for p in gains.values())
    plain = Generator(**kw)
    plain.load_state_dict({k: v for k, v in G.state_dict().items() if not k.endswith(".gain")})
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        assert torch.allclose(G.eval()(z, y), plain.eval()(z, y), atol=1e-6)  # gain 1: plain noise
        for p in gains.values():
            p[..., :4, :] = 0.0  # no noise in the top rows of every map
        quiet = G(z, y)
    assert not torch.allclose(quiet, plain(z, y), atol=1e-4)
    G.train()
    G(z, y).square().mean().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in gains.values())
    with pytest.raises(ValueError, match="noise_map needs noise=True"):
        Generator(z_dim=8, num_classes=2, size=12, base_channels=4, max_channels=8, noise_map=True)


def test_class_input_makes_the_first_layout_depend_on_the_class() -> None:
    torch.manual_seed(0)
    kw = dict(z_dim=8, num_classes=2, size=12, base_channels=4, max_channels=8)
    G = Generator(**kw, class_input=True).eval()
    z = torch.randn(3, 8)
    with torch.no_grad():
        bottom = {c: G.fc(torch.cat([z, G.class_embed(torch.full((3,), c))], 1)) for c in (0, 1)}
        assert not torch.allclose(bottom[0], bottom[1])  # the class reaches the 4x4 map, before any batch norm
        assert G(z, torch.tensor([0, 1, 1])).shape == (3, 1, 12, 12)
    assert G.fc.in_features == 16 and Generator(**kw).fc.in_features == 8
    G.train()
    G(z, torch.tensor([0, 1, 1])).square().mean().backward()
    assert float(G.class_embed.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="class_input needs num_classes > 0"):
        Generator(**{**kw, "num_classes": 0}, class_input=True)


def test_a_smoothed_generator_draws_masks_as_level_sets_without_isolated_voxels() -> None:
    def isolated(x: torch.Tensor) -> int:  # foreground voxels with no foreground among their 26 neighbours
        fg = (x > 0).float()
        neighbours = F.conv3d(fg, torch.ones(1, 1, 3, 3, 3), padding=1) - fg
        return int(((fg > 0) & (neighbours == 0)).sum())

    torch.manual_seed(0)
    kw = dict(z_dim=8, num_classes=2, size=16, spatial_dims=3, base_channels=4, max_channels=8, binary=True)
    plain = Generator(**kw).eval()
    smooth = Generator(**kw, smooth=2).eval()
    smooth.load_state_dict(plain.state_dict())  # the blur is a fixed filter: the same weights, no new ones
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        a, b = plain(z, y), smooth(z, y)
    assert set(b.unique().tolist()) == {-1.0, 1.0} and b.shape == (4, 1, 16, 16, 16)
    assert isolated(a) >= 5 and isolated(b) == 0
    smooth.train()
    smooth(z, y).mean().backward()  # the straight-through sign passes the gradient back through the blur
    assert float(smooth.out_conv.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="smooth needs binary=True"):
        Generator(**{**kw, "binary": False}, smooth=1)


def test_a_stochastic_binary_generator_flickers_near_threshold_voxels_in_training_only() -> None:
    from medgan.networks.layers import stochastic_binarize

    torch.manual_seed(0)
    t = torch.tensor([-0.9, 0.0, 0.5]).repeat(20000, 1)
    on = stochastic_binarize(t).eq(1).float().mean(0)
    assert torch.allclose(on, torch.tensor([0.05, 0.5, 0.75]), atol=0.01)  # 1 with probability (1 + t) / 2
    banded = stochastic_binarize(t, width=0.6).eq(1).float().mean(0)  # steady beyond 0.6, (1 + t / 0.6) / 2 within
    assert banded[0] == 0 and torch.allclose(banded[1:], torch.tensor([0.5, 11 / 12]), atol=0.01)
    with pytest.raises(ValueError, match=r"width must be in \(0, 1\]"):
        stochastic_binarize(t, width=0)
    kw = dict(z_dim=8, num_classes=2, size=12, spatial_dims=3, base_channels=4, max_channels=8, binary=True)
    G = Generator(**kw, stochastic=1.0)
    plain = Generator(**kw)
    plain.load_state_dict(G.state_dict())
    z, y = torch.randn(2, 8), torch.tensor([0, 1])
    G.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(G(z, y), plain(z, y))  # sampling: the plain sign, deterministic
    G.train()
    a, b = G(z, y), G(z, y)
    assert set(a.unique().tolist()) == {-1.0, 1.0} and not torch.equal(a, b)
    a.mean().backward()
    assert float(G.out_conv.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="stochastic needs binary=True"):
        Generator(**{**kw, "binary": False}, stochastic=0.5)


def test_a_spec_without_a_newer_argument_means_its_default() -> None:
    from medgan.networks import same_networks

    g = dict(z_dim=8, num_classes=2, size=12, noise=True)
    d = dict(in_channels=1, num_classes=2, size=12)
    new = {"family": "residual", "generator": {**g, "noise_init": 0.0}, "discriminator": d}
    assert same_networks({"family": "residual", "generator": g, "discriminator": d}, new)
    assert not same_networks({"family": "residual", "generator": {**g, "noise_init": 0.1}, "discriminator": d}, new)
    assert not same_networks({"family": "residual", "generator": {**g, "size": 16}, "discriminator": d}, new)
    assert not same_networks({"family": "style", "generator": g, "discriminator": d}, new)
