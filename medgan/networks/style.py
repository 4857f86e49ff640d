"""Style-based conditional generator (StyleGAN2-like) for 2D and 3D, in plain PyTorch.

``z`` and a learned class embedding go through a mapping network to an intermediate latent ``w``.
A synthesis network starts from a learned constant and, at every resolution, applies convolutions
whose weights are modulated by a per-sample style (an affine map of ``w``) and demodulated
(Karras et al. 2020), adds per-pixel noise with a learned strength, and makes the image either by
summing ``toRGB`` outputs across resolutions (``output="skip"``) or from the last one after
residual blocks (``output="residual"``).

Modulated convolution runs as one grouped convolution (``groups = batch``), through
``F.conv2d`` / ``F.conv3d`` chosen by ``spatial_dims``: no custom CUDA ops, so the same code trains
on the CPU and on a GPU. Upsampling is nearest ×2 followed by a ``[1, 2, 1] / 4`` blur with
edge replication, which equals (bi/tri)linear ×2 with ``align_corners=False`` and is written with
slices, so its gradient is deterministic on CUDA too (exact resume).

The generator keeps, per class, an exponential moving average of ``w`` (``w_avg``; updated by the
training loop through :meth:`StyleGenerator.update_w_avg`, so that under DDP it averages the
global batch). Sampling with ``truncation=ψ`` moves ``w`` towards its class's mean:
``w' = w_avg[y] + ψ (w - w_avg[y])``; ψ = 1 is no truncation, ψ = 0 gives the class's mean image.

Noise inputs: in training mode fresh noise is drawn from torch's global generator for the global
batch and cut to this rank's rows (:func:`medgan.device.rank_rows`), so DDP trains like one process;
in eval mode each sample's noise maps are seeded from its ``z`` (:func:`~medgan.networks.layers.pixel_noise`,
as in the residual family), so a sample is a pure function of ``(z, y)`` and every sample still has
its own noise. (StyleGAN2's one fixed noise map per layer would print the same fine pattern on every
sample: a fingerprint that a two-sample test, or a classifier trained on the samples, can read.)

The discriminator of this family is the residual projection discriminator of
:mod:`medgan.networks.cgan` (use it with ``spectral_norm=False, mbstd=True`` and R1, as StyleGAN2 does).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan.networks.cgan import Discriminator
from medgan.networks.layers import (
    Upsample2x,
    binarize,
    center_crop,
    check_spatial_dims,
    next_pow2,
    pixel_noise,
)

__all__ = [
    "Discriminator",
    "EqualLinear",
    "LatentGenerator",
    "MappingNetwork",
    "ModulatedConv",
    "SmoothUpsample2x",
    "StyleGenerator",
    "modulated_conv",
]

StyleOutput = Literal["skip", "residual"]
STYLE_OUTPUTS: tuple[str, ...] = ("skip", "residual")

_BOTTOM = 4  # edge length of the learned constant
_LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' magnitude through leaky ReLU (StyleGAN)


@runtime_checkable
class LatentGenerator(Protocol):
    """A generator that exposes its intermediate latent ``w`` (the style family does).

    What path-length regularisation (:meth:`medgan.training.loss.GANLoss.path_length_loss`) and the
    per-class mean latent for truncation need; any generator with these members qualifies.

    - ``w_dim``: size of ``w``.
    - ``w_avg``: ``(max(num_classes, 1), w_dim)`` buffer, the per-class mean ``w``.
    - ``mapping(z, y, truncation=None) -> (B, w_dim)``.
    - ``update_w_avg(w_sum (K, w_dim), count (K,))``: move ``w_avg`` towards this batch's class means.
    - ``forward(z, y, return_w=True) -> (images, ws)`` with ``ws`` ``(B, num_ws, w_dim)`` in the graph.
    """

    w_dim: int
    w_avg: Tensor

    def mapping(self, z: Tensor, y: Tensor | None = None, truncation: float | None = None) -> Tensor: ...

    def update_w_avg(self, w_sum: Tensor, count: Tensor) -> None: ...


def modulated_conv(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    demodulate: bool = True,
    padding: int = 0,
    fused: bool = True,
) -> Tensor:
    """Convolve each sample with the weight scaled by its own style (2D or 3D by ``x.ndim``).

    ``w'[b, o, i] = weight[o, i] * styles[b, i]``, then (``demodulate``) each output filter is
    scaled to unit norm, ``w'' = w' / sqrt(sum_{i,k} w'^2 + 1e-8)``.

    Two equal ways to compute it (StyleGAN2 uses both): ``fused`` runs the batch as one grouped
    convolution, the samples stacked along the channels with ``groups = B`` and a weight per
    sample; otherwise the input channels are scaled by the styles, one ordinary convolution with
    the shared weight runs, and the demodulation scales the output channels. The second is several
    times faster to train on a CPU at the low resolutions (few pixels, many channels).

    Args:
        x: ``(B, C_in, *spatial)``, 2 or 3 spatial dims.
        weight: ``(C_out, C_in, *kernel)``.
        styles: ``(B, C_in)`` per-sample input-channel scales.
        demodulate: normalise every sample's output filters.
        padding: zero padding of the convolution.
        fused: the grouped-convolution form (same result up to float rounding).

    Returns:
        ``(B, C_out, *spatial')``. With ``styles`` all ones and ``demodulate=False`` this equals
        ``F.conv{2,3}d(x, weight, padding=padding)``.
    """
    b, c_in = x.shape[:2]
    dims = check_spatial_dims(x.ndim - 2)
    c_out = weight.shape[0]
    if weight.ndim != x.ndim or weight.shape[1] != c_in:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit input {tuple(x.shape)}")
    if styles.shape != (b, c_in):
        raise ValueError(f"styles must have shape ({b}, {c_in}), got {tuple(styles.shape)}")
    ones = (1,) * dims
    conv = F.conv2d if dims == 2 else F.conv3d
    if not fused:
        out = conv(x * styles.reshape(b, c_in, *ones), weight, padding=padding)  # (B, C_out, *spatial')
        if demodulate:
            # sum_{i,k} (w[o,i,k] s[b,i])^2 = sum_i s[b,i]^2 sum_k w[o,i,k]^2
            energy = styles.square() @ weight.square().flatten(2).sum(2).T  # (B, C_out)
            out = out * (energy + 1e-8).rsqrt().reshape(b, c_out, *ones)
        return out
    w = weight.unsqueeze(0) * styles.reshape(b, 1, c_in, *ones)  # (B, C_out, C_in, *k)
    if demodulate:
        norm = (w.square().sum(dim=tuple(range(2, w.ndim))) + 1e-8).rsqrt()  # (B, C_out)
        w = w * norm.reshape(b, c_out, 1, *ones)
    out = conv(
        x.reshape(1, b * c_in, *x.shape[2:]),
        w.reshape(b * c_out, c_in, *weight.shape[2:]),
        padding=padding,
        groups=b,
    )  # (1, B * C_out, *spatial')
    return out.reshape(b, c_out, *out.shape[2:])


def _blur_axis(x: Tensor, axis: int) -> Tensor:
    """``[1, 2, 1] / 4`` along ``axis`` with the edge value repeated (plain slices: deterministic)."""
    n = x.shape[axis]
    if n < 2:
        return x
    before = torch.cat([x.narrow(axis, 0, 1), x.narrow(axis, 0, n - 1)], dim=axis)
    after = torch.cat([x.narrow(axis, 1, n - 1), x.narrow(axis, n - 1, 1)], dim=axis)
    return 0.25 * before + 0.5 * x + 0.25 * after


class SmoothUpsample2x(nn.Module):
    """×2 upsampling equal to (bi/tri)linear with ``align_corners=False``, from deterministic ops.

    Nearest ×2 (:class:`~medgan.networks.layers.Upsample2x`), then a ``[1, 2, 1] / 4`` blur along
    every spatial axis with the edge value repeated.
    """

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.up = Upsample2x(spatial_dims)

    def forward(self, x: Tensor) -> Tensor:
        x = self.up(x)
        for axis in range(2, x.ndim):
            x = _blur_axis(x, axis)
        return x


class EqualLinear(nn.Module):
    """Linear layer with an equalised learning rate: weights stored as ``N(0, 1) / lr_multiplier``
    and scaled by ``lr_multiplier / sqrt(in_features)`` at run time (Karras et al. 2018).

    Args:
        in_features, out_features: sizes.
        bias_init: the initial bias.
        lr_multiplier: learning-rate multiplier of this layer (0.01 in the mapping network).
        activation: leaky ReLU (slope 0.2, gain √2) after the affine map.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_multiplier))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.lr_multiplier = lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        out = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_multiplier)
        return F.leaky_relu(out, 0.2) * _LRELU_GAIN if self.activation else out


def _normalize_2nd_moment(x: Tensor) -> Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    """``(z, y) -> w``: normalised ``z`` and a normalised learned class embedding, through an MLP.

    Args:
        z_dim: latent size.
        num_classes: classes; 0 makes it unconditional (``y`` ignored).
        w_dim: size of ``w`` (and of the class embedding).
        num_layers: fully connected layers with leaky ReLU.
        lr_multiplier: their learning-rate multiplier (0.01, as in StyleGAN).
    """

    def __init__(
        self, z_dim: int, num_classes: int, w_dim: int, num_layers: int = 4, lr_multiplier: float = 0.01
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.z_dim, self.num_classes, self.w_dim = z_dim, num_classes, w_dim
        self.embed: nn.Embedding | None = nn.Embedding(num_classes, w_dim) if num_classes > 0 else None
        widths = [z_dim + (w_dim if num_classes > 0 else 0)] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *(
                EqualLinear(a, b, lr_multiplier=lr_multiplier, activation=True)
                for a, b in itertools.pairwise(widths)
            )
        )

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        x = _normalize_2nd_moment(z)  # (B, z_dim)
        if self.embed is not None:
            if y is None:
                raise ValueError(f"class labels y are required when num_classes={self.num_classes}")
            x = torch.cat([x, _normalize_2nd_moment(self.embed(y))], dim=1)  # (B, z_dim + w_dim)
        return self.layers(x)  # (B, w_dim)


class ModulatedConv(nn.Module):
    """One style layer: [up ×2] → modulated conv → [+ noise · strength] → + bias → [leaky ReLU].

    Args:
        spatial_dims: 2 or 3.
        in_channels, out_channels: channel counts.
        w_dim: size of ``w``; an affine map (bias 1) turns ``w`` into the per-sample style.
        resolution: the output edge length.
        kernel_size: odd kernel size ("same" padding).
        up: upsample ×2 first (:class:`SmoothUpsample2x`).
        demodulate: normalise the output filters per sample (off for toRGB).
        noise: add per-pixel noise with a learned strength (starts at 0).
        activation: leaky ReLU with gain √2 (off for toRGB).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        kernel_size: int = 3,
        up: bool = False,
        demodulate: bool = True,
        noise: bool = True,
        activation: bool = True,
    ) -> None:
        super().__init__()
        dims = check_spatial_dims(spatial_dims)
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *([kernel_size] * dims)))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**dims)
        self.padding = kernel_size // 2
        self.up: nn.Module | None = SmoothUpsample2x(dims) if up else None
        self.demodulate, self.activation, self.use_noise = demodulate, activation, noise
        self.noise_shape = (resolution,) * dims
        if noise:
            self.noise_strength = nn.Parameter(torch.zeros(()))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # Checkpoints from before per-sample sampling noise carry a fixed map that is no longer used.
        state_dict.pop(prefix + "noise_const", None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None = None) -> Tensor:
        """``noise``: this layer's ``(B, 1, *spatial)`` map (:meth:`StyleGenerator.synthesis` draws them all);
        required when the layer has noise."""
        if self.up is not None:
            x = self.up(x)
        styles = self.affine(w)  # (B, C_in)
        # Training uses the faster unfused form; inference the grouped one (as StyleGAN2 does).
        x = modulated_conv(
            x,
            self.weight * self.weight_gain,
            styles,
            demodulate=self.demodulate,
            padding=self.padding,
            fused=not self.training,
        )  # (B, C_out, *s)
        if self.use_noise:
            if noise is None:
                raise ValueError("a noise layer needs its noise map (StyleGenerator.synthesis draws them)")
            x = x + noise * self.noise_strength
        x = x + self.bias.reshape(1, -1, *([1] * (x.ndim - 2)))
        return F.leaky_relu(x, 0.2) * _LRELU_GAIN if self.activation else x


class _EqualConv1x1(nn.Module):
    """A bias-free 1×1(×1) convolution with an equalised learning rate (the residual skip path)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *([1] * spatial_dims)))
        self.gain = 1.0 / math.sqrt(in_channels)
        self.conv = F.conv2d if spatial_dims == 2 else F.conv3d

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x, self.weight * self.gain)


class _SynthesisBlock(nn.Module):
    """One resolution: (up + conv) → conv, then toRGB (skip output) or the residual sum."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        out_image: int,
        w_dim: int,
        resolution: int,
        first: bool,
        output: StyleOutput,
        to_rgb: bool,
    ) -> None:
        super().__init__()
        self.first, self.output = first, output
        self.conv0: ModulatedConv | None = (
            None
            if first
            else ModulatedConv(spatial_dims, in_channels, out_channels, w_dim, resolution, up=True)
        )
        self.conv1 = ModulatedConv(spatial_dims, out_channels, out_channels, w_dim, resolution)
        self.to_rgb: ModulatedConv | None = (
            ModulatedConv(
                spatial_dims,
                out_channels,
                out_image,
                w_dim,
                resolution,
                kernel_size=1,
                demodulate=False,
                noise=False,
                activation=False,
            )
            if to_rgb
            else None
        )
        self.skip: nn.Module | None = None
        if output == "residual" and not first:
            self.skip = nn.Sequential(
                SmoothUpsample2x(spatial_dims), _EqualConv1x1(spatial_dims, in_channels, out_channels)
            )
        self.img_up: nn.Module | None = (
            SmoothUpsample2x(spatial_dims) if output == "skip" and not first else None
        )
        self.num_ws = int(self.conv0 is not None) + 1 + int(self.to_rgb is not None)
        self.noise_shapes = [c.noise_shape for c in (self.conv0, self.conv1) if c is not None]

    def forward(self, x: Tensor, img: Tensor | None, ws: Tensor, noise: list[Tensor]) -> tuple[Tensor, Tensor | None]:
        """``noise``: one map per entry of ``noise_shapes``."""
        i = 0
        h = x
        maps = iter(noise)
        if self.conv0 is not None:
            h = self.conv0(h, ws[:, i], next(maps))
            i += 1
        h = self.conv1(h, ws[:, i], next(maps))
        i += 1
        if self.skip is not None:
            h = (h + self.skip(x)) * math.sqrt(0.5)  # the residual sum keeps unit variance
        if self.to_rgb is not None:
            rgb = self.to_rgb(h, ws[:, i])
            img = rgb if img is None else (self.img_up(img) if self.img_up is not None else img) + rgb
        return h, img


class StyleGenerator(nn.Module):
    """Style-based class-conditional generator ``G(z, y)`` (StyleGAN2-like), 2D or 3D.

    Widths follow the rule of :mod:`medgan.networks.cgan`: ``base_channels`` at the finest
    resolution, doubling per halving, capped at ``max_channels``. Sizes that are not a power of two
    are generated at the next power of two and centre-cropped. The output passes through ``tanh``
    (the networks' contract is images in ``[-1, 1]``).

    Args:
        z_dim: latent size.
        num_classes: classes; 0 makes it unconditional.
        out_channels: image channels.
        size: output edge length (>= 8).
        spatial_dims: 2 or 3.
        base_channels: channels at the finest resolution.
        max_channels: cap on channels.
        w_dim: size of the intermediate latent ``w``.
        mapping_layers: layers of the mapping network.
        output: ``skip`` (toRGB at every resolution, summed) or ``residual`` (residual blocks, one toRGB).
        w_avg_beta: EMA decay of the per-class mean ``w`` per update.
        binary: emit exactly -1 or 1 (:func:`~medgan.networks.layers.binarize`), for binary masks.

    Example:
        >>> G = StyleGenerator(z_dim=64, num_classes=2, size=28)
        >>> G(torch.randn(4, 64), torch.tensor([0, 1, 0, 1])).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(
        self,
        z_dim: int = 128,
        num_classes: int = 2,
        out_channels: int = 1,
        size: int = 28,
        spatial_dims: int = 2,
        base_channels: int = 32,
        max_channels: int = 256,
        w_dim: int = 128,
        mapping_layers: int = 4,
        output: StyleOutput = "skip",
        w_avg_beta: float = 0.995,
        binary: bool = False,
    ) -> None:
        super().__init__()
        if size < 2 * _BOTTOM:
            raise ValueError(f"size must be >= {2 * _BOTTOM}, got {size}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}")
        if min(z_dim, out_channels, base_channels, max_channels, w_dim) < 1:
            raise ValueError("z_dim, out_channels, base_channels, max_channels and w_dim must be >= 1")
        if output not in STYLE_OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(STYLE_OUTPUTS)}, got {output!r}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(f"w_avg_beta must be in [0, 1), got {w_avg_beta}")
        self.z_dim, self.num_classes, self.out_channels, self.size = z_dim, num_classes, out_channels, size
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.full_size = next_pow2(size)
        self.w_dim, self.w_avg_beta, self.output, self.binary = w_dim, w_avg_beta, output, binary

        resolutions = [_BOTTOM]
        while resolutions[-1] < self.full_size:
            resolutions.append(resolutions[-1] * 2)
        widths = [min(max_channels, base_channels * (self.full_size // r)) for r in resolutions]

        self.mapping_net = MappingNetwork(z_dim, num_classes, w_dim, mapping_layers)
        self.const = nn.Parameter(torch.randn(widths[0], *([_BOTTOM] * spatial_dims)))
        last = len(resolutions) - 1
        self.blocks = nn.ModuleList(
            _SynthesisBlock(
                spatial_dims,
                widths[max(i - 1, 0)],
                widths[i],
                out_channels,
                w_dim,
                res,
                first=i == 0,
                output=output,
                to_rgb=output == "skip" or i == last,
            )
            for i, res in enumerate(resolutions)
        )
        self.num_ws = sum(block.num_ws for block in self.blocks)
        self._noise_shapes = [shape for block in self.blocks for shape in block.noise_shapes]
        self.register_buffer("w_avg", torch.zeros(max(num_classes, 1), w_dim))

    def _class_index(self, y: Tensor | None, batch: int, device: torch.device) -> Tensor:
        if self.num_classes == 0:
            return torch.zeros(batch, dtype=torch.long, device=device)
        if y is None:
            raise ValueError(f"class labels y are required when num_classes={self.num_classes}")
        return y

    def mapping(self, z: Tensor, y: Tensor | None = None, truncation: float | None = None) -> Tensor:
        """``(B, z_dim)`` latents and ``(B,)`` labels → ``(B, w_dim)``; ``truncation`` ψ pulls ``w``
        towards its class's mean (``w_avg[y] + ψ (w - w_avg[y])``)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if truncation is not None and not (math.isfinite(truncation) and truncation >= 0):
            raise ValueError(f"truncation must be a number >= 0, got {truncation}")
        idx = self._class_index(y, z.shape[0], z.device)
        w = self.mapping_net(z, idx if self.num_classes > 0 else None)
        if truncation is not None and truncation != 1.0:
            w = self.w_avg[idx].to(w.dtype).lerp(w, truncation)
        return w

    @torch.no_grad()
    def update_w_avg(self, w_sum: Tensor, count: Tensor) -> None:
        """Move each class's mean ``w`` towards this batch's: ``w_avg[k] ← lerp(w_sum[k] / count[k], w_avg[k], β)``
        for the classes with ``count[k] > 0`` (``w_sum`` ``(K, w_dim)``, ``count`` ``(K,)``)."""
        seen = count > 0
        mean = w_sum / count.clamp(min=1).unsqueeze(1)
        updated = mean.to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta)
        self.w_avg.copy_(torch.where(seen.unsqueeze(1), updated, self.w_avg))

    def synthesis(self, ws: Tensor, seed_from: Tensor | None = None) -> Tensor:
        """``(B, num_ws, w_dim)`` → images ``(B, C, *[size] * spatial_dims)`` in ``[-1, 1]``.

        The noise maps: fresh in training mode; in eval mode seeded per sample from the bytes of
        ``seed_from`` (``(B, ...)``; :meth:`forward` passes ``z``), or of ``ws[:, 0]`` when it is ``None``.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = self.const.unsqueeze(0).expand(ws.shape[0], *self.const.shape).to(ws.dtype)  # (B, C, *[4])
        maps = pixel_noise(ws[:, 0] if seed_from is None else seed_from.flatten(1), self._noise_shapes,
                           random=self.training)
        img: Tensor | None = None
        i = k = 0
        for block in self.blocks:
            n = len(block.noise_shapes)
            x, img = block(x, img, ws[:, i : i + block.num_ws], [m.to(ws.dtype) for m in maps[k : k + n]])
            i += block.num_ws
            k += n
        assert img is not None
        img = binarize(img.tanh()) if self.binary else img.tanh()
        # contiguous(): a cropped view would surprise callers that .view() the images.
        return center_crop(img, self.size, self.spatial_dims).contiguous()

    def forward(
        self, z: Tensor, y: Tensor | None = None, truncation: float | None = None, return_w: bool = False
    ) -> Any:
        """Generate images.

        Args:
            z: ``(B, z_dim)`` latents.
            y: ``(B,)`` int64 class indices; required when ``num_classes > 0``, ignored otherwise.
            truncation: ψ towards the class's mean ``w`` (``None`` or 1 = off, 0 = the mean).
            return_w: also return the per-layer latents ``ws`` ``(B, num_ws, w_dim)`` the images
                were made from (for path-length regularisation).

        Returns:
            ``(B, out_channels, *[size] * spatial_dims)`` in ``[-1, 1]`` (only -1 and 1 when
            ``binary``), or ``(images, ws)``.
        """
        w = self.mapping(z, y, truncation)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)  # the same w for every layer (no style mixing)
        img = self.synthesis(ws, seed_from=z)
        return (img, ws) if return_w else img
