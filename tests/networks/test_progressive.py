"""Progressive G and D: shapes per stage, exact fade-in, equalised LR, minibatch stddev, prepare_real."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medgan.networks.progressive import (
    PAD_VALUE,
    EqualizedConv,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    canvas_size,
    prepare_real,
    stage_channels,
)

Z = 8


def _pair(size: int, spatial_dims: int = 2, num_classes: int = 0, channels: int = 4, **kw):
    G = ProgressiveGenerator(
        z_dim=Z, num_classes=num_classes, size=size, spatial_dims=spatial_dims, channels=channels, **kw
    )
    D = ProgressiveDiscriminator(
        num_classes=num_classes, size=size, spatial_dims=spatial_dims, channels=channels, mbstd_group_size=2
    )
    return G.eval(), D.eval()


def _inputs(batch: int, num_classes: int):
    z = torch.randn(batch, Z)
    y = torch.randint(0, num_classes, (batch,)) if num_classes else None
    return z, y


# Shapes.


@pytest.mark.parametrize(
    ("spatial_dims", "size", "num_classes", "resolutions"),
    [
        (2, 28, 0, [4, 8, 16, 32]),
        (2, 28, 3, [4, 8, 16, 32]),
        (2, 32, 0, [4, 8, 16, 32]),
        (2, 64, 2, [4, 8, 16, 32, 64]),
        (3, 28, 2, [4, 8, 16, 32]),
        (3, 32, 0, [4, 8, 16, 32]),
    ],
)
def test_shapes_at_every_stage(spatial_dims: int, size: int, num_classes: int, resolutions: list[int]) -> None:
    G, D = _pair(size, spatial_dims, num_classes, channels=2 if spatial_dims == 3 else 4)
    assert G.num_stages == D.num_stages == len(resolutions)
    assert [G.resolution(k) for k in range(G.num_stages)] == resolutions
    assert G.canvas == D.canvas == canvas_size(size) == resolutions[-1]
    z, y = _inputs(2, num_classes)
    x_real = torch.rand(2, 1, *[size] * spatial_dims) * 2 - 1
    with torch.no_grad():
        for stage, res in enumerate(resolutions):
            last = stage == len(resolutions) - 1
            side = size if last else res  # only the last stage is cropped to `size`
            for alpha in (0.5, 1.0):
                fake = G(z, y, stage=stage, alpha=alpha)
                assert fake.shape == (2, 1, *[side] * spatial_dims)
                assert fake.abs().max() <= 1.0
                real = prepare_real(x_real, stage, alpha, canvas=G.canvas)
                assert real.shape == fake.shape
                assert real.abs().max() <= 1.0
                assert D(fake, y, stage=stage, alpha=alpha).shape == (2,)
                assert D(real, y, stage=stage, alpha=alpha).shape == (2,)
        # Defaults are the last stage at alpha 1; D accepts the uncropped canvas there too.
        assert G(z, y).shape == (2, 1, *[size] * spatial_dims)
        assert D(torch.zeros(2, 1, *[G.canvas] * spatial_dims), y).shape == (2,)


def test_default_widths_follow_fmap_base_and_max() -> None:
    G = ProgressiveGenerator(size=64)
    assert G.channels == {4: 128, 8: 64, 16: 32, 32: 16, 64: 8}
    assert stage_channels([4, 8, 16, 32, 64], 1024, 128, None) == {4: 128, 8: 128, 16: 64, 32: 32, 64: 16}
    assert ProgressiveDiscriminator(size=16, channels={4: 5, 8: 6, 16: 7}).channels == {4: 5, 8: 6, 16: 7}


def test_every_stage_has_parameters_from_the_start_and_inactive_ones_get_no_grad() -> None:
    G, _ = _pair(32)
    keys = set(G.state_dict())
    assert {f"to_rgb.{k}.weight" for k in range(4)} <= keys
    assert {f"blocks.{k}.conv2.weight" for k in range(3)} <= keys
    G(torch.randn(2, Z), stage=1).sum().backward()
    assert G.blocks[0].conv1.weight.grad is not None and G.to_rgb[1].weight.grad is not None
    assert G.to_rgb[0].weight.grad is None  # alpha = 1: the previous toRGB is not used
    assert all(p.grad is None for p in G.blocks[1:].parameters())


# Fade-in.


@pytest.mark.parametrize(("size", "stage"), [(32, 1), (32, 3), (28, 3), (28, 2)])
def test_generator_fade_in_is_exact(size: int, stage: int) -> None:
    G, _ = _pair(size, num_classes=2)
    z, y = _inputs(3, 2)
    with torch.no_grad():
        prev = F.interpolate(G(z, y, stage=stage - 1), scale_factor=2.0, mode="nearest")
        if stage == G.num_stages - 1 and size != G.canvas:
            off = (G.canvas - size) // 2
            prev = prev[..., off : off + size, off : off + size]
        at0, at1, mid = G(z, y, stage, alpha=0.0), G(z, y, stage, alpha=1.0), G(z, y, stage, alpha=0.25)
    torch.testing.assert_close(at0, prev, rtol=0, atol=1e-6)
    torch.testing.assert_close(mid, torch.lerp(at0, at1, 0.25), rtol=0, atol=1e-6)
    assert not torch.allclose(at0, at1)
    # alpha = 1 is the new block alone: the previous stage's toRGB has no effect.
    with torch.no_grad():
        G.to_rgb[stage - 1].weight.mul_(-3.0)
        torch.testing.assert_close(G(z, y, stage, alpha=1.0), at1, rtol=0, atol=0)


@pytest.mark.parametrize(("size", "stage"), [(32, 2), (28, 3)])
def test_discriminator_fade_in_is_exact(size: int, stage: int) -> None:
    _, D = _pair(size, num_classes=2)
    y = torch.randint(0, 2, (4,))
    side = D.input_size(stage)
    x = torch.rand(4, 1, side, side) * 2 - 1
    # What D does internally: pad a `size` input to the canvas with PAD_VALUE, then 2x area-downsample.
    extra = D.resolution(stage) - side
    x_canvas = F.pad(x, [extra // 2, extra - extra // 2] * 2, value=PAD_VALUE)
    with torch.no_grad():
        low = D(F.avg_pool2d(x_canvas, 2), y, stage=stage - 1)
        at0, at1 = D(x, y, stage, alpha=0.0), D(x, y, stage, alpha=1.0)
        torch.testing.assert_close(at0, low, rtol=0, atol=1e-6)
        assert not torch.allclose(at0, at1)
        D.from_rgb[stage - 1].weight.mul_(-3.0)  # alpha = 1 never uses the previous fromRGB
        torch.testing.assert_close(D(x, y, stage, alpha=1.0), at1, rtol=0, atol=0)


def test_linear_output_activation_is_tanh_free() -> None:
    torch.manual_seed(1)
    G_lin = ProgressiveGenerator(z_dim=Z, size=16, channels=4, output_activation="linear")
    G_tanh = ProgressiveGenerator(z_dim=Z, size=16, channels=4)
    G_tanh.load_state_dict(G_lin.state_dict())
    z = torch.randn(2, Z)
    with torch.no_grad():
        torch.testing.assert_close(G_tanh(z, stage=2), torch.tanh(G_lin(z, stage=2)))


def test_conditioning_uses_labels_only_when_conditional() -> None:
    G, D = _pair(16, num_classes=3)
    z = torch.randn(2, Z).repeat(2, 1)
    y = torch.tensor([0, 0, 1, 2])
    with torch.no_grad():
        fake = G(z, y)
        assert not torch.allclose(fake[0], fake[2]) and not torch.allclose(fake[1], fake[3])
        x = fake[:1].repeat(4, 1, 1, 1)
        logits = D(x, y)
    assert not torch.isclose(logits[0], logits[2]) and torch.isclose(logits[0], logits[1])
    G0, D0 = _pair(16)
    with torch.no_grad():
        torch.testing.assert_close(G0(z, y), G0(z))
        torch.testing.assert_close(D0(x, y), D0(x))


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="spatial_dims"):
        ProgressiveGenerator(spatial_dims=1)
    with pytest.raises(ValueError, match="'tanh' or 'linear'"):
        ProgressiveGenerator(output_activation="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"no width for resolution\(s\) \[16\]"):
        ProgressiveDiscriminator(size=16, channels={4: 8, 8: 8})
    with pytest.raises(ValueError, match="power of two"):
        ProgressiveDiscriminator(size=16, start_resolution=6)
    G, D = _pair(16, num_classes=2)
    z, y = _inputs(2, 2)
    with pytest.raises(ValueError, match=r"stage must be in \[0, 2\]"):
        G(z, y, stage=3)
    with pytest.raises(ValueError, match="alpha"):
        G(z, y, stage=1, alpha=1.5)
    with pytest.raises(ValueError, match="pass y"):
        G(z)
    with pytest.raises(ValueError, match="x must be"):
        D(torch.zeros(2, 1, 16, 16), y, stage=1)
    with pytest.raises(ValueError, match="equal spatial sizes"):
        prepare_real(torch.zeros(2, 1, 16, 12), 0)
    with pytest.raises(ValueError, match="size 28 are generated on a canvas of 32, not 64"):
        prepare_real(torch.zeros(2, 1, 28, 28), 0, canvas=64)


# Equalised learning rate.


def test_equalized_layers_scale_unit_normal_weights_at_runtime() -> None:
    conv = EqualizedConv(2, 16, 32, 3)
    assert conv.scale == pytest.approx(math.sqrt(2.0) / math.sqrt(16 * 9))
    assert EqualizedConv(3, 4, 8, 3, gain=1.0).scale == pytest.approx(1.0 / math.sqrt(4 * 27))
    lin = EqualizedLinear(512, 256, gain=1.0)
    assert lin.scale == pytest.approx(1.0 / math.sqrt(512))
    # Stored weights are N(0, 1), whatever the fan-in; the forward pass uses weight * scale.
    assert abs(lin.weight.mean().item()) < 0.02 and abs(lin.weight.std().item() - 1.0) < 0.02
    x = torch.randn(2, 16, 6, 6)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))


@pytest.mark.parametrize("fan_in", [16, 1024])
def test_equalized_layers_keep_unit_variance_whatever_the_fan_in(fan_in: int) -> None:
    with torch.no_grad():
        y = EqualizedLinear(fan_in, 512, gain=1.0)(torch.randn(256, fan_in))
        assert y.var().item() == pytest.approx(1.0, abs=0.15)
        # He gain sqrt(2) before a ReLU: the mean square after the ReLU stays ~1.
        conv = EqualizedConv(2, fan_in // 16, 256, 3)
        h = F.relu(conv(torch.randn(8, fan_in // 16, 12, 12)))[..., 1:-1, 1:-1]  # interior: no zero padding
        assert h.pow(2).mean().item() == pytest.approx(1.0, abs=0.15)


def test_pixel_norm_gives_unit_mean_square_per_position() -> None:
    out = PixelNorm()(torch.randn(3, 7, 4, 4, 4) * 5)
    torch.testing.assert_close(out.pow(2).mean(dim=1), torch.ones(3, 4, 4, 4))


# Minibatch standard deviation.


def _manual_mbstd(x: torch.Tensor, group: int) -> torch.Tensor:
    m = x.shape[0] // group
    stats = [x[j::m].std(dim=0, unbiased=False).mean() for j in range(m)]  # members j, j+m, ...
    return torch.stack([stats[i % m] for i in range(x.shape[0])])


@pytest.mark.parametrize(("batch", "group", "effective"), [(8, 4, 4), (6, 4, 3), (3, 4, 3), (5, 4, 1)])
def test_minibatch_stddev_matches_manual_group_std(batch: int, group: int, effective: int) -> None:
    layer = MinibatchStdDev(group)
    assert layer.effective_group_size(batch) == effective
    for shape in ((3, 5, 5), (2, 3, 3, 3)):
        x = torch.randn(batch, *shape)
        out = layer(x)
        assert out.shape == (batch, shape[0] + 1, *shape[1:])
        torch.testing.assert_close(out[:, :-1], x)
        expected = _manual_mbstd(x, effective).view(batch, *[1] * len(shape)).expand(batch, 1, *shape[1:])
        torch.testing.assert_close(out[:, -1:], expected, rtol=0, atol=1e-4)


def test_minibatch_stddev_of_identical_samples_is_zero() -> None:
    x = torch.randn(1, 3, 4, 4).repeat(8, 1, 1, 1)
    stat = MinibatchStdDev(4)(x)[:, -1]
    assert stat.abs().max().item() < 1e-3  # sqrt(eps) = 1e-4 keeps the gradient finite


# prepare_real.


def test_prepare_real_pads_downsamples_and_fades_like_the_generator() -> None:
    assert PAD_VALUE == -1.0  # black in [-1, 1], shared by D's padding and prepare_real
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    assert prepare_real(x, 3, 1.0) is x  # final stage: D pads it itself
    canvas = F.pad(x, [2, 2, 2, 2], value=PAD_VALUE)
    torch.testing.assert_close(prepare_real(x, 2, 1.0), F.avg_pool2d(canvas, 2))
    torch.testing.assert_close(prepare_real(x, 1, 1.0), F.avg_pool2d(canvas, 4))
    # alpha = 0 is the previous stage upsampled (nearest), exactly as in G; in between, a lerp.
    for stage in (1, 2, 3):
        up = F.interpolate(prepare_real(x, stage - 1, 1.0), scale_factor=2.0, mode="nearest")
        if stage == 3:
            up = up[..., 2:30, 2:30]
        at0 = prepare_real(x, stage, 0.0)
        torch.testing.assert_close(at0, up, rtol=0, atol=1e-6)
        mid = prepare_real(x, stage, 0.3)
        at1 = x if stage == 3 else prepare_real(x, stage, 1.0)
        torch.testing.assert_close(mid, torch.lerp(at0, at1, 0.3), rtol=0, atol=1e-6)


def test_prepare_real_works_in_3d() -> None:
    x = torch.rand(2, 1, 12, 12, 12) * 2 - 1  # canvas 16: stages 4, 8, 16
    out = prepare_real(x, 1, 0.5)
    assert out.shape == (2, 1, 8, 8, 8) and out.abs().max() <= 1.0
    assert prepare_real(x, 2, 0.5).shape == x.shape
