"""Small layer helpers keyed by ``spatial_dims``, so one network class serves 2D and 3D.

Convolutions and batch norms come from MONAI's layer factories. Resampling is written with
``reshape`` / ``expand`` rather than ``AvgPool3d`` / ``interpolate``: the CUDA backward of
``AvgPool3d`` has no deterministic implementation, and the training loop promises bitwise-exact
resume, so pooling and upsampling here are plain tensor ops with deterministic gradients on
every device.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv, Norm
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from medgan.device import rank_rows

__all__ = [
    "AvgPool2x",
    "ConditionalBatchNorm",
    "NoiseInjection",
    "SkipExcitation",
    "Upsample2x",
    "avg_pool",
    "batch_norm",
    "binarize",
    "binomial_blur",
    "center_crop",
    "centre_of_mass",
    "check_spatial_dims",
    "conv",
    "floor_clamp",
    "high_pass",
    "mask_depth",
    "next_pow2",
    "pad_to",
    "pixel_noise",
    "recentre",
    "spectral",
    "stochastic_binarize",
    "upsample",
]


def check_spatial_dims(spatial_dims: int) -> int:
    """Return ``spatial_dims`` if it is 2 or 3, else raise ``ValueError``."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def next_pow2(n: int) -> int:
    """The smallest power of two that is ``>= n`` (``n >= 1``).

    Example:
        >>> next_pow2(28), next_pow2(32), next_pow2(33)
        (32, 32, 64)
    """
    if n < 1:
        raise ValueError(f"next_pow2 needs n >= 1, got {n}")
    return 1 << (n - 1).bit_length()


def spectral(module: nn.Module) -> nn.Module:
    """Wrap ``module.weight`` in spectral normalisation (one power iteration per forward).

    Uses ``torch.nn.utils.parametrizations.spectral_norm``: the power-iteration vectors ``_u`` and
    ``_v`` are buffers, so they are part of ``state_dict`` and an exact resume restores them. In
    ``eval()`` mode no power iteration runs and the stored vectors are used as they are.
    """
    return spectral_norm(module)


def conv(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    *,
    bias: bool = True,
    sn: bool = False,
) -> nn.Module:
    """A stride-1 ``Conv{2,3}d`` with "same" padding (odd ``kernel_size``), optionally spectral-normed.

    Args:
        spatial_dims: 2 or 3.
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size; padding is ``kernel_size // 2`` so the spatial size is kept.
        bias: whether the convolution has a bias.
        sn: wrap the weight in spectral normalisation (see :func:`spectral`).
    """
    conv_type = Conv[Conv.CONV, check_spatial_dims(spatial_dims)]
    layer = conv_type(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
    return spectral(layer) if sn else layer


def batch_norm(spatial_dims: int, num_features: int, *, affine: bool = True) -> nn.Module:
    """``BatchNorm{2,3}d`` from MONAI's norm factory."""
    return Norm[Norm.BATCH, check_spatial_dims(spatial_dims)](num_features, affine=affine)


class Upsample2x(nn.Module):
    """Nearest-neighbour ×2 upsampling of every spatial dim: ``(B, C, *s) -> (B, C, *2s)``.

    Written as ``expand`` + ``reshape``, whose gradient is a plain sum (deterministic on CUDA).
    """

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)

    def forward(self, x: Tensor) -> Tensor:
        b, c, *spatial = x.shape
        # Insert a size-2 axis after every spatial axis, then merge each pair.
        view_shape = [b, c]
        expand_shape = [b, c]
        for s in spatial:
            view_shape += [s, 1]
            expand_shape += [s, 2]
        out = x.reshape(view_shape).expand(expand_shape)
        return out.reshape(b, c, *(2 * s for s in spatial))


class AvgPool2x(nn.Module):
    """2×…×2 average pooling with stride 2: ``(B, C, *s) -> (B, C, *s/2)`` (sizes must be even).

    ``avg_pool2d`` / ``avg_pool3d``, except for 3D on CUDA, where it is written as ``reshape`` +
    ``mean`` because ``avg_pool3d``'s CUDA backward is nondeterministic. The pooling kernels are 2-3×
    faster than ``reshape`` + ``mean`` on the CPU, forward and backward (the strided reduction copies),
    which is about a tenth of a 28² cGAN step (benchmarks/perf/pooling.py, benchmarks/results/perf.md).
    """

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)

    def forward(self, x: Tensor) -> Tensor:
        if self.spatial_dims == 2:
            return F.avg_pool2d(x, 2)
        if not x.is_cuda:
            return F.avg_pool3d(x, 2)
        b, c, *spatial = x.shape
        view_shape = [b, c]
        for s in spatial:
            view_shape += [s // 2, 2]
        # The pairs sit at axes 3, 5, (7).
        return x.reshape(view_shape).mean(dim=tuple(range(3, 3 + 2 * len(spatial), 2)))


def upsample(spatial_dims: int) -> nn.Module:
    """Nearest-neighbour ×2 upsampling module for 2D or 3D (see :class:`Upsample2x`)."""
    return Upsample2x(spatial_dims)


def avg_pool(spatial_dims: int) -> nn.Module:
    """×2 average-pooling module for 2D or 3D (see :class:`AvgPool2x`)."""
    return AvgPool2x(spatial_dims)


def center_crop(x: Tensor, size: int, spatial_dims: int | None = None) -> Tensor:
    """Crop the trailing ``spatial_dims`` axes of ``x`` to ``size`` around the centre.

    The offset is ``(n - size) // 2``, the same split as :func:`pad_to`, so
    ``center_crop(pad_to(x, n), s) == x`` exactly.

    Args:
        x: ``(B, C, *spatial)``.
        size: target edge length, ``<=`` every spatial size.
        spatial_dims: how many trailing axes to crop; default ``x.ndim - 2``.
    """
    dims = x.ndim - 2 if spatial_dims is None else spatial_dims
    out = x
    for axis in range(x.ndim - dims, x.ndim):
        n = x.shape[axis]
        if size > n:
            raise ValueError(f"cannot centre-crop axis {axis} of size {n} to {size}")
        out = out.narrow(axis, (n - size) // 2, size)
    return out


def pad_to(x: Tensor, size: int, value: float = 0.0, spatial_dims: int | None = None) -> Tensor:
    """Pad the trailing ``spatial_dims`` axes of ``x`` with ``value`` to ``size``, centred.

    The left pad is ``(size - n) // 2`` and the rest goes right (the inverse of :func:`center_crop`).

    Args:
        x: ``(B, C, *spatial)``.
        size: target edge length, ``>=`` every spatial size.
        value: constant fill value.
        spatial_dims: how many trailing axes to pad; default ``x.ndim - 2``.
    """
    dims = x.ndim - 2 if spatial_dims is None else spatial_dims
    pads: list[int] = []
    # F.pad takes (left, right) pairs starting from the last axis.
    for axis in reversed(range(x.ndim - dims, x.ndim)):
        n = x.shape[axis]
        if size < n:
            raise ValueError(f"cannot pad axis {axis} of size {n} to {size}")
        left = (size - n) // 2
        pads += [left, size - n - left]
    if not any(pads):
        return x
    return F.pad(x, pads, mode="constant", value=value)


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose gain and bias are looked up per class (categorical conditional BN).

    ``num_classes == 0`` gives an ordinary affine batch norm and ``y`` is ignored. The class gains
    start at ``1 + N(0, 0.02)`` and biases at ``N(0, 0.02)`` (the DCGAN batch-norm init), so the
    classes differ slightly from the first step.

    Args:
        spatial_dims: 2 or 3.
        num_features: channels ``C`` of the input.
        num_classes: number of classes; 0 for unconditional.

    Example:
        >>> cbn = ConditionalBatchNorm(2, 16, num_classes=3)
        >>> cbn(torch.randn(4, 16, 8, 8), torch.tensor([0, 1, 2, 0])).shape
        torch.Size([4, 16, 8, 8])
    """

    def __init__(self, spatial_dims: int, num_features: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.num_features = num_features
        self.num_classes = num_classes
        self.bn = batch_norm(spatial_dims, num_features, affine=num_classes == 0)
        self.embed: nn.Embedding | None = None
        if num_classes > 0:
            self.embed = nn.Embedding(num_classes, 2 * num_features)  # (K, [gain | bias])
            with torch.no_grad():
                nn.init.normal_(self.embed.weight, 0.0, 0.02)
                self.embed.weight[:, :num_features] += 1.0

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.bn(x)
        if self.embed is None:
            return h
        if y is None:
            raise ValueError(f"class labels y are required when num_classes={self.num_classes}")
        gain, bias = self.embed(y).chunk(2, dim=1)  # (B, C) each
        shape = (x.shape[0], self.num_features) + (1,) * self.spatial_dims
        return h * gain.reshape(shape) + bias.reshape(shape)


class NoiseInjection(nn.Module):
    """Add a one-channel per-pixel noise map with a learned per-channel strength (starts at ``init``).

    StyleGAN's noise inputs (Karras et al. 2019): the network gets a source of fine, unstructured
    detail (ultrasound speckle, film grain) it need not build from its latent. The noise map comes
    from the caller (:func:`pixel_noise`), so a whole generator can draw it in one place.

    Args:
        num_features: channels ``C`` of the input.
        init: the strengths' starting value. StyleGAN starts at 0, and over millions of images G
            learns to use the noise; on a small CPU budget the strengths barely leave 0
            (docs/training.md), so a positive start makes G use the noise from the first step.
        map_shape: also learn a gain per position, ``(1, 1, *map_shape)``, starting at 1 (the
            spatial shape of the input): G can then put more fine texture in one place than in
            another, as real images whose texture depends on the anatomy have it.
    """

    def __init__(self, num_features: int, init: float = 0.0, map_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.full((num_features,), float(init)))
        self.gain: nn.Parameter | None = nn.Parameter(torch.ones(1, 1, *map_shape)) if map_shape else None

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        """``x + noise · [gain ·] strength``; ``noise`` is ``(B, 1, *spatial)`` and broadcasts over channels."""
        if self.gain is not None:
            noise = noise * self.gain
        return x + noise * self.strength.reshape(1, -1, *([1] * (x.ndim - 2)))


class SkipExcitation(nn.Module):
    """FastGAN's skip-layer excitation (Liu et al. 2021): a coarse feature map gates a fine one's channels.

    The coarse map is average-pooled to ``4^d`` (by reshaping, so the gradient stays deterministic on
    every device), read by a layer over the whole ``4^d`` grid (FastGAN's 4×4 valid conv), a LeakyReLU
    and a 1×1 layer, and squashed by a sigmoid into one gain in (0, 1) per channel of the fine map. The
    global layout a coarse stage has settled thus reaches the fine stages directly, a shortcut through
    the generator that FastGAN found to train well from a few hundred images.

    Args:
        spatial_dims: 2 or 3.
        coarse_channels: channels of the coarse (gating) map.
        fine_channels: channels of the fine (gated) map.

    Example:
        >>> sle = SkipExcitation(2, coarse_channels=64, fine_channels=16)
        >>> sle(torch.randn(2, 64, 8, 8), torch.randn(2, 16, 32, 32)).shape
        torch.Size([2, 16, 32, 32])
    """

    GRID = 4

    def __init__(self, spatial_dims: int, coarse_channels: int, fine_channels: int) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.gate = nn.Sequential(
            nn.Linear(coarse_channels * self.GRID**self.spatial_dims, fine_channels, bias=False),
            nn.LeakyReLU(0.1),
            nn.Linear(fine_channels, fine_channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, coarse: Tensor, fine: Tensor) -> Tensor:
        """``fine`` times a per-channel gain computed from ``coarse`` (any edge that is a multiple of 4)."""
        b, c, *spatial = coarse.shape
        if len(spatial) != self.spatial_dims or any(s % self.GRID for s in spatial):
            raise ValueError(f"coarse map must have {self.spatial_dims} spatial dims, each a multiple of "
                             f"{self.GRID}, got {tuple(coarse.shape)}")
        cell = [s // self.GRID for s in spatial]
        split = [d for s in cell for d in (self.GRID, s)]  # (4, s0/4, 4, s1/4, ...)
        pooled = coarse.reshape(b, c, *split).mean(dim=tuple(range(3, 2 + 2 * self.spatial_dims, 2)))
        gain = self.gate(pooled.flatten(1))  # (B, fine_channels)
        return fine * gain.reshape(b, -1, *([1] * self.spatial_dims))


def binarize(x: Tensor) -> Tensor:
    """Straight-through sign of ``x`` in ``[-1, 1]``: exactly -1 or 1 forward (0 maps to 1), the identity's
    gradient backward (the deterministic binary neurons of Dong & Yang 2018).

    The generators' ``binary`` option applies it after their ``tanh``, for data that is a binary mask:
    D can then not tell real from synthetic by grey values alone.

    Example:
        >>> binarize(torch.tensor([-0.2, 0.0, 0.7])).tolist()
        [-1.0, 1.0, 1.0]
    """
    return x + (torch.where(x >= 0, 1.0, -1.0).to(x.dtype) - x).detach()


def stochastic_binarize(x: Tensor, width: float = 1.0) -> Tensor:
    """Straight-through *stochastic* sign of ``x`` in ``[-1, 1]``, the identity's gradient backward (after
    the stochastic binary neurons of Dong & Yang 2018).

    Forward it is the sign against a threshold drawn uniformly from ``[-width, width)`` for every
    element: an element within ``width`` of 0 is 1 with probability ``(1 + x / width) / 2`` and flips at
    random from draw to draw, and one farther out is steady. A generator that binarizes this way in
    training must commit each voxel to inside or outside to draw a clean mask: a field left near the
    threshold shows up as speckle that the discriminator sees. ``width`` 1 is Dong & Yang's neuron, under
    which even a voxel at -0.9 is foreground one draw in twenty. In eval mode the generators use
    :func:`binarize`, so sampling stays deterministic.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> stochastic_binarize(torch.tensor([-0.9, 0.9, 0.0]), width=0.5).tolist()[:2]
        [-1.0, 1.0]
    """
    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1], got {width}")
    threshold = (torch.rand_like(x) * 2 - 1) * width
    # sign + (x - x): exactly ±1 forward even where the sign is against x (x + (sign - x) would round).
    return torch.where(x >= threshold, 1.0, -1.0).to(x.dtype) + (x - x.detach())


def floor_clamp(x: Tensor, floor: float) -> Tensor:
    """``x`` clamped from below at ``floor`` forward, the identity's gradient backward (straight-through).

    The residual generator's ``floor`` option applies it to its output, for data whose darkest regions
    sit at one grey level (BreastMNIST's ultrasound background is level 1 of 255): those regions then
    come out flat at that level, where a ``tanh`` spreads them over the darkest few levels with a
    texture that neither the data nor a reader's eye has. The straight-through gradient keeps D's
    signal flowing to pixels below the floor, so none is stuck there.

    Example:
        >>> floor_clamp(torch.tensor([-1.0, -0.5, 0.3]), -0.9).tolist()
        [-0.8999999761581421, -0.5, 0.30000001192092896]
    """
    return torch.where(x < floor, floor + (x - x.detach()), x)  # exactly ``floor`` below it, not floor ± 1 ulp


def centre_of_mass(weights: Tensor) -> Tensor:
    """Centre of mass of each sample's non-negative ``weights`` ``(B, C, *spatial)``, summed over channels.

    Returns:
        ``(B, spatial_dims)`` pixel / voxel coordinates; NaN for a sample whose weights sum to 0.

    Example:
        >>> m = torch.zeros(1, 1, 5, 5); m[0, 0, 1, 3] = 1
        >>> centre_of_mass(m).tolist()
        [[1.0, 3.0]]
    """
    w = weights.sum(1)  # (B, *spatial)
    total = w.flatten(1).sum(1)
    coms = []
    for axis in range(1, w.ndim):
        profile = w.sum(dim=[a for a in range(1, w.ndim) if a != axis])  # (B, n): the mass along this axis
        coord = torch.arange(w.shape[axis], dtype=w.dtype, device=w.device)
        coms.append((profile * coord).sum(1) / total)
    return torch.stack(coms, 1)


def recentre(x: Tensor, centre: Sequence[float]) -> Tensor:
    """Shift each binary mask in ``[-1, 1]`` by whole pixels / voxels so that its foreground's (``x > 0``)
    centre of mass lies nearest ``centre``.

    For data cropped around one organ, where every real mask sits at the same place: a generator
    that ends with this layer cannot be told from the data by where it puts a mask, only by its
    shape. Values move unchanged (gradients follow them); what leaves the grid is dropped, and the
    space it frees is filled with -1 (background). A sample with no foreground is left as it is.

    Args:
        x: ``(B, C, *spatial)`` masks, foreground where ``x > 0``.
        centre: target coordinates, one per spatial axis (the real masks' mean centre of mass).

    Example:
        >>> m = -torch.ones(1, 1, 5, 5); m[0, 0, 0, 0] = 1
        >>> recentre(m, (2.0, 2.0))[0, 0, 2, 2].item()
        1.0
    """
    dims = x.ndim - 2
    if len(centre) != dims:
        raise ValueError(f"centre needs one coordinate per spatial axis ({dims}), got {list(centre)}")
    com = centre_of_mass((x > 0).to(x.dtype))
    target = torch.tensor([float(c) for c in centre], dtype=x.dtype, device=x.device)
    shifts = torch.nan_to_num(torch.round(target - com), nan=0.0).long().tolist()  # (B, dims); one host sync
    pad = max((abs(v) for row in shifts for v in row), default=0)
    if pad == 0:
        return x
    padded = F.pad(x, [pad] * (2 * dims), value=-1.0)
    out = [padded[(b, slice(None), *(slice(pad - s, pad - s + n) for s, n in zip(row, x.shape[2:], strict=True)))]
           for b, row in enumerate(shifts)]
    return torch.stack(out)


def pixel_noise(z: Tensor, shapes: list[tuple[int, ...]], *, random: bool) -> list[Tensor]:
    """Standard-normal noise maps ``(B, 1, *shape)``, one per entry of ``shapes``.

    ``random=True`` (training) draws from torch's global generator, cut to this rank's rows under
    DDP (:func:`medgan.device.rank_rows`), so a DDP run draws what one process would. ``random=False``
    (sampling) seeds each sample's maps from the CRC-32 of its latent's bytes, so an image is a pure
    function of ``(z, y)`` (sampling stays reproducible and batch-independent) while every sample
    still has its own noise, as speckle differs between real images.
    """
    b = z.shape[0]
    if random:
        return [rank_rows(lambda n, s=s: torch.randn((n, 1, *s), device=z.device, dtype=z.dtype), b) for s in shapes]
    rows: list[list[Tensor]] = []
    for zi in z.detach().float().cpu():
        gen = torch.Generator().manual_seed(zlib.crc32(zi.numpy().tobytes()))
        rows.append([torch.randn((1, 1, *s), generator=gen) for s in shapes])
    return [torch.cat([r[k] for r in rows]).to(device=z.device, dtype=z.dtype) for k in range(len(shapes))]


_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def binomial_blur(x: Tensor) -> Tensor:
    """Separable 5-tap binomial blur of ``(B, C, *spatial)`` with reflected borders."""
    spatial_dims = x.ndim - 2
    c = x.shape[1]
    conv_nd = F.conv2d if spatial_dims == 2 else F.conv3d
    for axis in range(spatial_dims):
        shape = [1] * spatial_dims
        shape[axis] = 5
        k = _BINOMIAL.to(x).reshape(1, 1, *shape).repeat(c, 1, *([1] * spatial_dims))
        pad = [0, 0] * spatial_dims
        pad[2 * (spatial_dims - 1 - axis)] = pad[2 * (spatial_dims - 1 - axis) + 1] = 2
        x = conv_nd(F.pad(x, pad, mode="replicate"), k, groups=c)
    return x


def mask_depth(x: Tensor, k: int) -> Tensor:
    """How deep inside a mask each voxel of ``(B, C, *spatial)`` lies, in ``[-1, 1]``: ``-1`` outside, ``-1 + 2 j / k``
    for a voxel ``j`` voxels deep (``j = 1`` on the surface), ``1`` at ``k`` or more.

    The foreground share ``m = (x + 1) / 2`` and its first ``k - 1`` erosions by a 3-wide minimum filter (faces,
    edges and corners; outside the image counts as background, so a mask touching the border is thin there, as
    no real organ mask is) are averaged. It is differentiable almost everywhere (through
    the minimum), and a thick gland and a thin one of the same volume differ in it at once, where a convolution
    must learn erosion to see it. The residual discriminator with ``depth=k`` reads it beside the image.
    """
    if k < 1:
        raise ValueError(f"mask_depth needs k >= 1, got {k}")
    pool = (F.max_pool2d, F.max_pool3d)[x.ndim - 4]
    eroded = (x.clamp(-1, 1) + 1) / 2
    total = eroded
    for _ in range(k - 1):
        eroded = -pool(-F.pad(eroded, [1, 1] * (x.ndim - 2)), kernel_size=3, stride=1)  # zero pad: background
        total = total + eroded
    return total * (2 / k) - 1


def high_pass(x: Tensor) -> Tensor:
    """``4 * (x - binomial_blur(x))``: the fine texture of ``(B, C, *spatial)`` (noise, stripes, edges) as a large signal.

    The two-sample CNN of :mod:`medgan.metrics.c2st` reads it beside the image, and so does the
    residual discriminator with ``highpass=True``.
    """
    return 4 * (x - binomial_blur(x))
