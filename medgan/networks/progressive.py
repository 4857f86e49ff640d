"""Progressive (growing) GAN networks, after Karras et al. 2018 ("Progressive Growing of GANs").

One generator and one discriminator class serve 2D images and 3D volumes (``spatial_dims``). Both
grow from ``start_resolution`` (4² or 4³) to the *canvas*, the next power of two at or above
``size``; stage ``k`` works at resolution ``start_resolution * 2**k``. The parameters of every
stage exist from construction, so the ``state_dict`` never changes shape while training grows the
networks (checkpoints and DDP stay simple; DDP needs ``find_unused_parameters=True``, because the
layers of inactive stages get no gradient).

Choices, stated once:

- **Output domain.** ``toRGB`` is an equalised 1×1 convolution followed by ``tanh`` (the default,
  ``output_activation="tanh"``), so ``G`` keeps the package contract of images in ``[-1, 1]``
  (training data is ``u8 / 127.5 - 1``). The fade-in lerps the two *images*, a convex
  combination that stays in ``[-1, 1]`` and has exactly the form :func:`prepare_real` gives the
  real images. ``output_activation="linear"`` gives ProGAN's linear ``toRGB``.
- **Sizes that are not a power of two** (28 → canvas 32): ``G`` generates the canvas and, at the
  final stage only, centre-crops it to ``size``; earlier stages output the whole stage resolution.
  ``D`` pads a ``size`` input back to the canvas with :data:`PAD_VALUE` = ``-1``, black in the
  ``[-1, 1]`` domain (``u8`` 0, the usual background of medical images), and :func:`prepare_real`
  pads real images with the same value before it downsamples them. The crop and pad put
  ``(canvas - size) // 2`` pixels before and the rest after, on every spatial axis.
- **Conditioning** (``num_classes > 0``): ``G`` concatenates an embedding of ``y`` (width
  ``z_dim``) to ``z`` and pixel-normalises the pair, as ProGAN did with one-hot labels; ``D`` adds
  the projection term ``<embed(y), features>`` (Miyato & Koyama 2018) to its logit.
- **Resampling**: nearest-neighbour ×2 up, 2× average pooling down (area), as in ProGAN.

Example:
    >>> G = ProgressiveGenerator(z_dim=64, num_classes=2, size=28)  # stages at 4, 8, 16, 32
    >>> D = ProgressiveDiscriminator(num_classes=2, size=28)
    >>> z, y = torch.randn(8, 64), torch.randint(0, 2, (8,))
    >>> fake = G(z, y, stage=2, alpha=0.3)  # (8, 1, 16, 16), fading from 8² to 16²
    >>> real = prepare_real(x, stage=2, alpha=0.3)  # x: (8, 1, 28, 28) -> (8, 1, 16, 16)
    >>> logits = D(fake, y, stage=2, alpha=0.3)  # (8,)
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Pool
from torch import nn

from medgan.networks.layers import center_crop, check_spatial_dims, next_pow2, pad_to

__all__ = [
    "PAD_VALUE",
    "EqualizedConv",
    "EqualizedLinear",
    "MinibatchStdDev",
    "PixelNorm",
    "ProgressiveDiscriminator",
    "ProgressiveGenerator",
    "canvas_size",
    "prepare_real",
    "stage_channels",
]

PAD_VALUE = -1.0
"""The value that pads a ``size`` image to the canvas (black in ``[-1, 1]``), in D and prepare_real."""

_LRELU_SLOPE = 0.2
_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


# Helpers shared by both networks and prepare_real.


def canvas_size(size: int) -> int:
    """The next power of two at or above ``size`` (the resolution the networks work at)."""
    return next_pow2(size)


def _num_stages(size: int, start_resolution: int) -> int:
    if start_resolution < 1 or next_pow2(start_resolution) != start_resolution:
        raise ValueError(f"start_resolution must be a power of two, got {start_resolution}")
    canvas = canvas_size(size)
    if start_resolution > canvas:
        raise ValueError(f"start_resolution {start_resolution} is above the canvas {canvas} of size {size}")
    return int(math.log2(canvas // start_resolution)) + 1


def stage_channels(
    resolutions: list[int], fmap_base: int, fmap_max: int, channels: int | dict[int, int] | None
) -> dict[int, int]:
    """Feature maps per resolution: ``channels`` when given, else ``min(fmap_base // r, fmap_max)``.

    Args:
        resolutions: the stage resolutions.
        fmap_base: numerator of the default width rule (ProGAN's ``fmap_base``).
        fmap_max: cap of the default width rule.
        channels: one width for every stage, or a width per resolution (covering every stage).

    Raises:
        ValueError: a non-positive width, or a dict that misses a stage resolution.
    """
    if channels is None:
        out = {r: max(1, min(fmap_base // r, fmap_max)) for r in resolutions}
    elif isinstance(channels, int):
        out = dict.fromkeys(resolutions, channels)
    else:
        missing = [r for r in resolutions if r not in channels]
        if missing:
            raise ValueError(f"channels has no width for resolution(s) {missing} (stages: {resolutions})")
        out = {r: channels[r] for r in resolutions}
    bad = {r: c for r, c in out.items() if c < 1}
    if bad:
        raise ValueError(f"channel widths must be positive, got {bad}")
    return out


def _check_stage(stage: int | None, alpha: float, num_stages: int) -> int:
    stage = num_stages - 1 if stage is None else stage
    if not 0 <= stage < num_stages:
        raise ValueError(f"stage must be in [0, {num_stages - 1}], got {stage}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return stage


# The resampling stays this family's own: layers.Upsample2x / AvgPool2x give the same forward values
# up to float rounding (a last-bit difference in AvgPool's sums and in the upsampling gradient), and
# switching would change trained progressive checkpoints' numerics. Crop, pad and the canvas size
# are layers.py's.


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def _downsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    if factor == 1:
        return x
    spatial_dims = x.dim() - 2
    return Pool[Pool.AVG, spatial_dims](kernel_size=factor)(x)


# Building blocks.


class EqualizedConv(nn.Module):
    """Convolution with an equalised learning rate: weights stored N(0, 1), scaled at run time.

    The stored weight is multiplied by He's constant ``gain / sqrt(fan_in)`` in every forward pass
    instead of once at initialisation, so Adam's per-parameter step has the same relative effect on
    every layer whatever its fan-in (Karras et al. 2018, section 4.1).

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input feature maps.
        out_channels: output feature maps.
        kernel_size: odd kernel size; padding keeps the spatial size ("same").
        gain: ``sqrt(2)`` before a (leaky) ReLU, 1 before a linear output.
        bias: whether to add a bias (initialised to 0).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        gain: float = math.sqrt(2.0),
        bias: bool = True,
    ) -> None:
        super().__init__()
        if spatial_dims not in _CONV_FN:
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.spatial_dims = spatial_dims
        self.padding = kernel_size // 2
        fan_in = in_channels * kernel_size**spatial_dims
        self.scale = gain / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *([kernel_size] * spatial_dims)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = _CONV_FN[self.spatial_dims]
        return conv(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, *k = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size={tuple(k)}, scale={self.scale:.4g}"


class EqualizedLinear(nn.Module):
    """Fully connected layer with an equalised learning rate (see :class:`EqualizedConv`).

    Args:
        in_features: input width (the fan-in).
        out_features: output width.
        gain: ``sqrt(2)`` before a (leaky) ReLU, 1 before a linear output.
        bias: whether to add a bias (initialised to 0).
    """

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2.0), bias: bool = True) -> None:
        super().__init__()
        self.scale = gain / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"{in_f}, {out_f}, scale={self.scale:.4g}"


class PixelNorm(nn.Module):
    """Normalise each position's feature vector to unit mean square (over dim 1, the channels).

    Works on ``(B, C)`` latents and on ``(B, C, *spatial)`` feature maps.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Append one feature map: the standard deviation across a group of samples, averaged.

    The batch is split into groups of ``group_size`` samples taken with a stride (sample ``i`` is
    in group ``i % (B // group_size)``, as in ProGAN); for each group, the per-feature, per-position
    standard deviation over the group members is averaged into one number, broadcast as an extra
    channel of every member. A batch that ``group_size`` does not divide uses the largest smaller
    group size that does (down to 1, where the statistic is 0). The standard deviation is
    ``sqrt(var + eps)`` so the gradient stays finite; identical samples therefore give
    ``sqrt(eps)`` = 1e-4, not exactly 0.

    Args:
        group_size: samples per group (ProGAN: 4).
        eps: added to the variance before the square root.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        self.group_size = group_size
        self.eps = eps

    def effective_group_size(self, batch: int) -> int:
        """The group size used for a batch of ``batch`` samples."""
        g = min(self.group_size, batch)
        while batch % g:
            g -= 1
        return g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        g = self.effective_group_size(b)
        m = b // g
        y = x.reshape(g, m, c, *spatial).float()  # (G, M, C, *S); sample i -> (i // M, i % M)
        y = y - y.mean(dim=0, keepdim=True)
        std = torch.sqrt(y.pow(2).mean(dim=0) + self.eps)  # (M, C, *S)
        stat = std.reshape(m, -1).mean(dim=1).to(x.dtype)  # (M,)
        stat = stat.repeat(g).reshape(b, 1, *([1] * len(spatial))).expand(b, 1, *spatial)
        return torch.cat([x, stat], dim=1)  # (B, C + 1, *S)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, _LRELU_SLOPE)


class _GBlock(nn.Module):
    """Upsample ×2, then two 3×3 equalised convs, each followed by leaky ReLU and pixel norm."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv(spatial_dims, in_channels, out_channels, 3)
        self.conv2 = EqualizedConv(spatial_dims, out_channels, out_channels, 3)
        self.norm = PixelNorm()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = _upsample(h)
        h = self.norm(_lrelu(self.conv1(h)))
        return self.norm(_lrelu(self.conv2(h)))


class _DBlock(nn.Module):
    """Two 3×3 equalised convs with leaky ReLU, then 2× average pooling (mirror of _GBlock)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv(spatial_dims, in_channels, in_channels, 3)
        self.conv2 = EqualizedConv(spatial_dims, in_channels, out_channels, 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = _lrelu(self.conv1(h))
        h = _lrelu(self.conv2(h))
        return _downsample(h)


# The networks.


class ProgressiveGenerator(nn.Module):
    """Progressive generator ``G(z, y, stage, alpha) -> (B, out_channels, *res)`` in ``[-1, 1]``.

    Stage 0 maps the pixel-normalised latent (and label embedding) through an equalised dense
    layer to ``start_resolution`` and one 3×3 conv; each later stage upsamples ×2 and applies two
    3×3 convs. Every conv is followed by leaky ReLU (0.2) and pixel norm. Each stage has its own
    ``toRGB`` (1×1 conv, then ``tanh`` by default).

    Args:
        z_dim: latent width.
        num_classes: 0 for unconditional; else ``y`` (int64 ``(B,)``) is required.
        out_channels: image channels (1 grey, 3 RGB).
        size: the final image size (same on every axis); the canvas is the next power of two.
        spatial_dims: 2 for images, 3 for volumes.
        start_resolution: resolution of stage 0 (a power of two).
        fmap_base: default width rule ``min(fmap_base // resolution, fmap_max)``.
        fmap_max: cap of the default width rule.
        channels: overrides the rule: one width for all stages, or ``{resolution: width}``.
        output_activation: ``"tanh"`` (outputs in ``[-1, 1]``) or ``"linear"`` (ProGAN).

    Example:
        >>> G = ProgressiveGenerator(z_dim=128, size=64)  # stages 4, 8, 16, 32, 64
        >>> G(torch.randn(2, 128), stage=1, alpha=0.5).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        z_dim: int = 128,
        num_classes: int = 0,
        out_channels: int = 1,
        size: int = 64,
        spatial_dims: int = 2,
        start_resolution: int = 4,
        fmap_base: int = 512,
        fmap_max: int = 128,
        channels: int | dict[int, int] | None = None,
        output_activation: Literal["tanh", "linear"] = "tanh",
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        if output_activation not in ("tanh", "linear"):
            raise ValueError(f"output_activation must be 'tanh' or 'linear', got {output_activation!r}")
        if z_dim < 1 or num_classes < 0 or out_channels < 1:
            raise ValueError(f"bad widths: z_dim={z_dim}, num_classes={num_classes}, out_channels={out_channels}")
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.out_channels = out_channels
        self.size = size
        self.spatial_dims = spatial_dims
        self.start_resolution = start_resolution
        self.output_activation = output_activation
        self._num_stages = _num_stages(size, start_resolution)
        self.canvas = canvas_size(size)
        res = [self.resolution(k) for k in range(self._num_stages)]
        self.channels = stage_channels(res, fmap_base, fmap_max, channels)
        ch = [self.channels[r] for r in res]

        self.embed = nn.Embedding(num_classes, z_dim) if num_classes > 0 else None  # N(0, 1), like z
        in_features = z_dim * (2 if num_classes > 0 else 1)
        self.norm = PixelNorm()
        # Stage 0: dense to (C0, r0, ..., r0), then one 3x3 conv.
        self.dense = EqualizedLinear(in_features, ch[0] * start_resolution**spatial_dims)
        self.conv0 = EqualizedConv(spatial_dims, ch[0], ch[0], 3)
        self.blocks = nn.ModuleList(_GBlock(spatial_dims, ch[k - 1], ch[k]) for k in range(1, len(ch)))
        self.to_rgb = nn.ModuleList(EqualizedConv(spatial_dims, c, out_channels, 1, gain=1.0) for c in ch)

    @property
    def num_stages(self) -> int:
        """Number of stages, from ``start_resolution`` to the canvas."""
        return self._num_stages

    def resolution(self, stage: int) -> int:
        """Working resolution of ``stage`` (``start_resolution * 2**stage``)."""
        return self.start_resolution * 2**stage

    def output_size(self, stage: int | None = None) -> int:
        """Spatial size of the output at ``stage``: ``size`` at the final stage, else the resolution."""
        stage = self._num_stages - 1 if stage is None else stage
        return self.size if stage == self._num_stages - 1 else self.resolution(stage)

    def _rgb(self, stage: int, h: torch.Tensor) -> torch.Tensor:
        img = self.to_rgb[stage](h)
        return torch.tanh(img) if self.output_activation == "tanh" else img

    def forward(
        self, z: torch.Tensor, y: torch.Tensor | None = None, stage: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """Generate images at ``stage`` (default: the last), fading in from the previous one.

        Args:
            z: latents ``(B, z_dim)``.
            y: int64 labels ``(B,)``; required when ``num_classes > 0``, else ignored.
            stage: the stage to generate at; ``None`` is the last (the full-size image).
            alpha: weight of the new stage's output during its fade-in, in ``[0, 1]``; ignored at
                stage 0. ``alpha = 0`` is exactly the previous stage's output, upsampled.

        Returns:
            ``(B, out_channels, *output_size(stage))``.
        """
        stage = _check_stage(stage, alpha, self._num_stages)
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (B, {self.z_dim}), got {tuple(z.shape)}")
        if self.embed is not None:
            if y is None:
                raise ValueError(f"this generator is conditional ({self.num_classes} classes): pass y")
            z = torch.cat([z, self.embed(y)], dim=1)  # (B, 2 * z_dim)
        h = self.norm(z)
        r0 = self.start_resolution
        h = self.dense(h).view(z.shape[0], -1, *([r0] * self.spatial_dims))  # (B, C0, *r0)
        h = self.norm(_lrelu(h))
        h = self.norm(_lrelu(self.conv0(h)))
        h_prev = h
        for k in range(1, stage + 1):
            h_prev = h
            h = self.blocks[k - 1](h)  # (B, C_k, *res_k)
        out = self._rgb(stage, h)
        if stage > 0 and alpha < 1.0:
            low = _upsample(self._rgb(stage - 1, h_prev))
            out = torch.lerp(low, out, alpha)
        if stage == self._num_stages - 1:
            out = center_crop(out, self.size)
        return out


class ProgressiveDiscriminator(nn.Module):
    """Progressive discriminator ``D(x, y, stage, alpha) -> (B,)`` logits; mirror of the generator.

    Each stage has a ``fromRGB`` (1×1 conv, leaky ReLU) and, above stage 0, a block of two 3×3
    convs and 2× average pooling. The stage-0 head appends the minibatch standard deviation, then
    applies a 3×3 conv, a dense layer and the linear output; with classes, the projection
    ``<embed(y), features>`` is added to the output.

    Args:
        in_channels: image channels.
        num_classes: 0 for unconditional; else ``y`` (int64 ``(B,)``) is required.
        size: the final image size; inputs of ``size`` at the final stage are padded to the canvas
            with :data:`PAD_VALUE`.
        spatial_dims: 2 or 3.
        start_resolution: resolution of stage 0 (a power of two).
        fmap_base: default width rule ``min(fmap_base // resolution, fmap_max)``.
        fmap_max: cap of the default width rule.
        channels: overrides the rule, as for the generator.
        mbstd_group_size: group size of :class:`MinibatchStdDev`.

    Example:
        >>> D = ProgressiveDiscriminator(size=28)
        >>> D(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 0,
        size: int = 64,
        spatial_dims: int = 2,
        start_resolution: int = 4,
        fmap_base: int = 512,
        fmap_max: int = 128,
        channels: int | dict[int, int] | None = None,
        mbstd_group_size: int = 4,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        if in_channels < 1 or num_classes < 0:
            raise ValueError(f"bad widths: in_channels={in_channels}, num_classes={num_classes}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.size = size
        self.spatial_dims = spatial_dims
        self.start_resolution = start_resolution
        self._num_stages = _num_stages(size, start_resolution)
        self.canvas = canvas_size(size)
        res = [self.resolution(k) for k in range(self._num_stages)]
        self.channels = stage_channels(res, fmap_base, fmap_max, channels)
        ch = [self.channels[r] for r in res]

        self.from_rgb = nn.ModuleList(EqualizedConv(spatial_dims, in_channels, c, 1) for c in ch)
        self.blocks = nn.ModuleList(_DBlock(spatial_dims, ch[k], ch[k - 1]) for k in range(1, len(ch)))
        # Stage-0 head: (B, C0 + 1, *r0) -> conv -> dense -> (B, C0) features -> (B, 1).
        self.mbstd = MinibatchStdDev(mbstd_group_size)
        self.conv0 = EqualizedConv(spatial_dims, ch[0] + 1, ch[0], 3)
        self.dense = EqualizedLinear(ch[0] * start_resolution**spatial_dims, ch[0])
        self.out = EqualizedLinear(ch[0], 1, gain=1.0)
        # Projection embedding, stored N(0, 1) and scaled like the output layer's weights.
        self.embed = nn.Embedding(num_classes, ch[0]) if num_classes > 0 else None
        self.embed_scale = 1.0 / math.sqrt(ch[0])

    @property
    def num_stages(self) -> int:
        """Number of stages, from ``start_resolution`` to the canvas."""
        return self._num_stages

    def resolution(self, stage: int) -> int:
        """Working resolution of ``stage`` (``start_resolution * 2**stage``)."""
        return self.start_resolution * 2**stage

    def input_size(self, stage: int | None = None) -> int:
        """Spatial size D expects at ``stage``: ``size`` (or the canvas) at the last, else the resolution."""
        stage = self._num_stages - 1 if stage is None else stage
        return self.size if stage == self._num_stages - 1 else self.resolution(stage)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, stage: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """Score images at ``stage`` (default: the last), fading in the new ``fromRGB`` input.

        Args:
            x: images ``(B, in_channels, *input_size(stage))``, in ``[-1, 1]``; at the last stage
                the canvas size is accepted too.
            y: int64 labels ``(B,)``; required when ``num_classes > 0``, else ignored.
            stage: the stage; ``None`` is the last.
            alpha: weight of the new stage's input path, in ``[0, 1]``; ignored at stage 0.
                ``alpha = 0`` is exactly ``D(downsample(x), stage - 1)``.

        Returns:
            logits ``(B,)``.
        """
        stage = _check_stage(stage, alpha, self._num_stages)
        res = self.resolution(stage)
        allowed = {self.input_size(stage), res}
        spatial = set(x.shape[2:])
        ok_shape = x.dim() == self.spatial_dims + 2 and x.shape[1] == self.in_channels
        if not ok_shape or len(spatial) != 1 or not spatial <= allowed:
            want = " or ".join(str(s) for s in sorted(allowed))
            raise ValueError(
                f"x must be (B, {self.in_channels}, {want} on each of {self.spatial_dims} axes) at stage {stage}, "
                f"got {tuple(x.shape)}"
            )
        if self.embed is not None and y is None:
            raise ValueError(f"this discriminator is conditional ({self.num_classes} classes): pass y")
        x = pad_to(x, res, PAD_VALUE)  # only the last stage's `size` input is ever smaller
        h = _lrelu(self.from_rgb[stage](x))  # (B, C_k, *res_k)
        if stage > 0:
            h = self.blocks[stage - 1](h)  # (B, C_{k-1}, *res_{k-1})
            if alpha < 1.0:
                low = _lrelu(self.from_rgb[stage - 1](_downsample(x)))
                h = torch.lerp(low, h, alpha)
        for k in range(stage - 1, 0, -1):
            h = self.blocks[k - 1](h)
        h = self.mbstd(h)  # (B, C0 + 1, *r0)
        h = _lrelu(self.conv0(h))
        feat = _lrelu(self.dense(h.flatten(1)))  # (B, C0)
        logits = self.out(feat).squeeze(1)  # (B,)
        if self.embed is not None and y is not None:
            logits = logits + (self.embed(y) * feat).sum(dim=1) * self.embed_scale
        return logits


def prepare_real(
    x: torch.Tensor, stage: int, alpha: float = 1.0, *, canvas: int | None = None, start_resolution: int = 4
) -> torch.Tensor:
    """What the discriminator should see of real images at ``stage`` (ProGAN's real-image fade).

    The image size is read from ``x`` (the dataset size, equal on every axis), and the canvas is the
    next power of two. At the final stage with ``alpha = 1`` this is ``x`` itself (D pads it).
    Otherwise ``x`` is padded to the canvas with :data:`PAD_VALUE` (as D pads), area-downsampled to
    the stage resolution, and, during a fade (``alpha < 1``), lerped with its 2× downsampled-then-
    nearest-upsampled version; at the final stage the result is centre-cropped back to the image
    size. The output has the shape and the ``[-1, 1]`` domain of ``G(z, y, stage, alpha)``.

    Args:
        x: real images ``(B, C, *[size] * spatial_dims)`` in ``[-1, 1]``.
        stage: the networks' stage.
        alpha: fade-in weight of the stage resolution, in ``[0, 1]``.
        canvas: optional check: the networks' canvas (the schedule's ``target_resolution``).
        start_resolution: the networks' stage-0 resolution.

    Returns:
        ``(B, C, *output_size(stage))``.

    Example:
        >>> prepare_real(torch.zeros(8, 1, 28, 28), stage=1, alpha=0.5).shape
        torch.Size([8, 1, 8, 8])
    """
    spatial = set(x.shape[2:])
    if x.dim() < 3 or len(spatial) != 1:
        raise ValueError(f"x must be (B, C, *spatial) with equal spatial sizes, got {tuple(x.shape)}")
    size = spatial.pop()
    if canvas is not None and canvas != canvas_size(size):
        raise ValueError(f"images of size {size} are generated on a canvas of {canvas_size(size)}, not {canvas}")
    num_stages = _num_stages(size, start_resolution)
    stage = _check_stage(stage, alpha, num_stages)
    last = stage == num_stages - 1
    if last and alpha >= 1.0:
        return x
    full = canvas_size(size)
    res = start_resolution * 2**stage
    out = _downsample(pad_to(x, full, PAD_VALUE), full // res)  # (B, C, *res)
    if stage > 0 and alpha < 1.0:
        out = torch.lerp(_upsample(_downsample(out)), out, alpha)
    if last:
        out = center_crop(out, size)
    return out
