"""Class-conditional GAN: a residual generator ``G(z, y)`` and a projection discriminator ``D(x, y)``.

Both are pure ``nn.Module``s for 2D or 3D images (``spatial_dims``). Images of a size that is not
a power of two are generated at the next power of two and centre-cropped; the discriminator pads
them back to that power of two (with zeros) before its first layer, so G and D see the same grid.

Width follows the StyleGAN rule: the finest resolution has ``base_channels`` and every halving of
the resolution doubles it, capped at ``max_channels``. At 28² with ``base_channels=32,
max_channels=256`` that is 256 → 128 → 64 → 32 channels at 4, 8, 16, 32 pixels in G (mirrored in
D), about 1.2M parameters each: small enough for a CPU, and ``base_channels=64`` or ``128`` widens
both networks for a GPU.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan.networks.layers import (
    ConditionalBatchNorm,
    NoiseInjection,
    SkipExcitation,
    avg_pool,
    batch_norm,
    binarize,
    binomial_blur,
    center_crop,
    check_spatial_dims,
    conv,
    floor_clamp,
    high_pass,
    mask_depth,
    next_pow2,
    pad_to,
    pixel_noise,
    recentre,
    spectral,
    stochastic_binarize,
    upsample,
)

__all__ = ["Discriminator", "Generator", "UNetDecoder"]

UpsampleMode = Literal["nearest", "linear"]

_BOTTOM = 4  # edge length of the generator's first feature map and the discriminator's last


def _check_common(size: int, num_classes: int, base_channels: int, max_channels: int) -> None:
    if size < 2 * _BOTTOM:
        raise ValueError(f"size must be >= {2 * _BOTTOM}, got {size}")
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}")
    if base_channels < 1 or max_channels < 1:
        raise ValueError(f"base_channels and max_channels must be >= 1, got {base_channels}, {max_channels}")


def _width(res: int, full: int, base_channels: int, max_channels: int) -> int:
    """Channels at resolution ``res`` when the finest resolution ``full`` has ``base_channels``."""
    return min(max_channels, base_channels * (full // res))


class GBlock(nn.Module):
    """Residual up-block: CBN → ReLU → up ×2 → conv3 → CBN → ReLU → conv3, plus up(conv1(x)).

    With ``noise``, a per-pixel noise map with a learned per-channel strength is added after each
    3×3 conv (:class:`~medgan.networks.layers.NoiseInjection`); with ``noise_map`` (the block's output
    shape) also a learned gain per position.

    The convolutions have no bias: each feeds a batch norm (the next CBN, the next block's or the
    generator's output norm), which subtracts any per-channel constant. A bias there would get a
    zero gradient and only drift with Adam's normalised noise.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        num_classes: int,
        up: UpsampleMode = "nearest",
        noise: bool = False,
        noise_init: float = 0.0,
        noise_map: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.noise1 = NoiseInjection(out_channels, noise_init, noise_map) if noise else None
        self.noise2 = NoiseInjection(out_channels, noise_init, noise_map) if noise else None
        self.norm1 = ConditionalBatchNorm(spatial_dims, in_channels, num_classes)
        self.conv1 = conv(spatial_dims, in_channels, out_channels, 3, bias=False)
        self.norm2 = ConditionalBatchNorm(spatial_dims, out_channels, num_classes)
        self.conv2 = conv(spatial_dims, out_channels, out_channels, 3, bias=False)
        self.up = upsample(spatial_dims) if up == "nearest" else SmoothUpsample(spatial_dims)
        self.skip: nn.Module = (
            conv(spatial_dims, in_channels, out_channels, 1, bias=False) if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor, y: Tensor | None, noise: tuple[Tensor, Tensor] | None = None) -> Tensor:
        h = self.conv1(self.up(F.relu(self.norm1(x, y))))
        if self.noise1 is not None and noise is not None:
            h = self.noise1(h, noise[0])
        h = self.conv2(F.relu(self.norm2(h, y)))
        if self.noise2 is not None and noise is not None:
            h = self.noise2(h, noise[1])
        # A 1×1 conv commutes with (nearest or linear) upsampling; applying it first is cheaper.
        return h + self.up(self.skip(x))


class SmoothUpsample(nn.Module):
    """×2 (bi/tri)linear upsampling: no copied 2×2 blocks for the next conv to turn into a grid pattern."""

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.mode = "bilinear" if check_spatial_dims(spatial_dims) == 2 else "trilinear"

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode=self.mode, align_corners=False)


class MinibatchStd(nn.Module):
    """Append the mean over features of the per-group standard deviation as one more channel.

    Karras et al. 2018: D sees how varied a group of images is, so a generator that collapses to
    few modes is easy to reject. Groups of ``group_size`` keep the statistic independent of how a
    batch is split across processes (DDP), as long as the per-process batch is a multiple of it.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        g = self.group_size if b % self.group_size == 0 else 1 + (b % 2 == 0)  # 4, else 2 or 1
        # Contiguous groups: rows [g*k, g*k + g) form group k, whichever process holds them.
        y = x.reshape(b // g, g, *x.shape[1:])  # (B/G, G, C, *s)
        std = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=tuple(range(1, x.ndim)))  # (B/G,)
        std = std.repeat_interleave(g).reshape(b, 1, *([1] * (x.ndim - 2))).expand(b, 1, *x.shape[2:])
        return torch.cat([x, std], dim=1)


class Generator(nn.Module):
    """Class-conditional residual generator with conditional batch norm (SNGAN / BigGAN style).

    ``z`` is mapped by a linear layer to a ``4^d`` feature map, upsampled ×2 by residual blocks
    up to ``next_pow2(size)``, turned into ``out_channels`` by BN → ReLU → conv3 → tanh, and
    centre-cropped to ``size``. Every block's batch norms take a per-class gain and bias.

    Args:
        z_dim: latent size.
        num_classes: number of classes; 0 makes it unconditional (``y`` ignored, plain BN).
        out_channels: image channels (1 grey, 3 RGB).
        size: output edge length (>= 8); not a power of two → generated larger and cropped.
        spatial_dims: 2 for images, 3 for volumes.
        base_channels: channels at the finest resolution; doubles per halving of resolution.
        max_channels: cap on the channel count.
        upsample: ``nearest`` (copies each pixel 2×2) or ``linear`` (bi/trilinear, smoother).
        binary: emit exactly -1 or 1 (:func:`~medgan.networks.layers.binarize`: the sign of the
            tanh output, its gradient passed straight through), for data that is a binary mask.
        noise: add per-pixel noise maps with learned strengths after every 3×3 conv of the blocks
            (StyleGAN's noise inputs), a source of fine texture such as ultrasound speckle. Fresh
            noise in training mode; in eval mode each sample's noise is seeded from its ``z``, so a
            sample stays a pure function of ``(z, y)`` (:func:`~medgan.networks.layers.pixel_noise`).
        noise_init: the noise strengths' starting value (0: StyleGAN's).
        supersample: generate at ``supersample`` times the edge length and average-pool each
            ``supersample``-wide cell down to ``size``, as a scanner image is area-resized to a
            MedMNIST one: edges fall between pixels and the finest scale keeps its detail, where a
            generator at the target size smooths it (one more block per doubling; 1 = off).
        supersample_filter: how the supersampled image is resized down: ``area`` (the mean of each cell)
            or ``bilinear`` (2D only: antialiased bilinear, a triangle filter as wide as two cells,
            which is how MedMNIST's 2D images were resized from their sources; after a 2×-size image
            that is already smooth the area mean matches better: ``benchmarks/resize_filter_check.py``).
        recentre: with ``binary``, shift each mask by whole pixels / voxels so that its centre of
            mass lies nearest these coordinates (:func:`~medgan.networks.layers.recentre`; ``None``
            = off), for data cropped around one organ: D then judges a mask's shape, not its place.
        sle: FastGAN's skip-layer excitation (:class:`~medgan.networks.layers.SkipExcitation`): the
            feature map at each resolution ``r >= 16`` is gated channel-wise by the one at ``r / 4``
            (at 28²: 4 → 16 and 8 → 32), a shortcut from the coarse layout to the fine stages.
        floor: clamp the output from below at this value in ``[-1, 1)`` with a straight-through
            gradient (:func:`~medgan.networks.layers.floor_clamp`; ``None`` = off), for data whose
            darkest regions sit at one grey level: they come out flat at that level, as in the data.
        noise_map: with ``noise``, also learn a gain per position for every noise map
            (:class:`~medgan.networks.layers.NoiseInjection`), so that fine texture can be stronger
            where the anatomy puts it (PneumoniaMNIST's synthetic fine texture had the real spectrum
            but 0.55–0.7× the real strength below the heart).
        class_input: also feed a learnt class embedding (``z_dim`` wide) beside ``z`` into the first
            linear layer (the conditional GAN's input conditioning, with the per-class batch norms),
            so that the coarse layout, where an organ's size is set, depends on the class directly;
            conditional generators only.
        smooth: with ``binary``, blur the last convolution's output this many times with the 5-tap
            binomial kernel (:func:`~medgan.networks.layers.binomial_blur`, σ = 1 each) before the tanh
            and the sign, so that each mask is a level set of a smooth field: it must be drawn as a
            surface, and an isolated voxel or a one-voxel fringe costs a large field (0 = off).
        stochastic: with ``binary``, binarize in training mode against a threshold drawn from
            ``[-stochastic, stochastic)`` (:func:`~medgan.networks.layers.stochastic_binarize`), so that
            voxels the field leaves within that band of 0 flicker into speckle that D sees, and G must
            commit each voxel; eval mode keeps the plain sign (0 = off, at most 1).

    Example:
        >>> G = Generator(z_dim=64, num_classes=2, size=28)
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
        upsample: UpsampleMode = "nearest",
        binary: bool = False,
        noise: bool = False,
        noise_init: float = 0.0,
        supersample: int = 1,
        recentre: Sequence[float] | None = None,
        sle: bool = False,
        floor: float | None = None,
        supersample_filter: Literal["area", "bilinear"] = "area",
        noise_map: bool = False,
        class_input: bool = False,
        smooth: int = 0,
        stochastic: float = 0.0,
    ) -> None:
        super().__init__()
        _check_common(size, num_classes, base_channels, max_channels)
        if smooth < 0 or (smooth and not binary):
            raise ValueError(f"smooth needs binary=True and a count >= 0, got {smooth} with binary={binary}")
        if not 0 <= stochastic <= 1 or (stochastic and not binary):
            raise ValueError(f"stochastic needs binary=True and a band in [0, 1], got {stochastic} with binary={binary}")
        if class_input and num_classes == 0:
            raise ValueError("class_input needs num_classes > 0 (it embeds the class beside z)")
        if noise_map and not noise:
            raise ValueError("noise_map needs noise=True (it scales the noise maps per position)")
        if floor is not None and (binary or not -1.0 <= floor < 1.0):
            raise ValueError(f"floor needs binary=False and a value in [-1, 1), got {floor}")
        if recentre is not None and (not binary or len(recentre) != spatial_dims):
            raise ValueError(f"recentre needs binary=True and {spatial_dims} coordinates, got {recentre}")
        if supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {supersample}")
        if supersample_filter not in ("area", "bilinear") or (supersample_filter == "bilinear" and spatial_dims != 2):
            raise ValueError(f"supersample_filter must be 'area', or 'bilinear' for 2D images, got {supersample_filter!r} "
                             f"with spatial_dims={spatial_dims}")
        if upsample not in ("nearest", "linear"):
            raise ValueError(f"upsample must be 'nearest' or 'linear', got {upsample!r}")
        if z_dim < 1 or out_channels < 1:
            raise ValueError(f"z_dim and out_channels must be >= 1, got {z_dim}, {out_channels}")
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.out_channels = out_channels
        self.size = size
        self.binary = binary
        self.smooth = smooth
        self.stochastic = float(stochastic)
        self.floor = None if floor is None else float(floor)
        self.noise = noise
        self.supersample = supersample
        self.supersample_filter = supersample_filter
        self.recentre = None if recentre is None else tuple(float(c) for c in recentre)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.full_size = next_pow2(size * supersample)

        resolutions = [_BOTTOM]
        while resolutions[-1] < self.full_size:
            resolutions.append(resolutions[-1] * 2)
        widths = [_width(r, self.full_size, base_channels, max_channels) for r in resolutions]

        self.bottom_channels = widths[0]
        self.class_embed = nn.Embedding(num_classes, z_dim) if class_input else None
        self.fc = nn.Linear(2 * z_dim if class_input else z_dim, widths[0] * _BOTTOM**spatial_dims)
        self.blocks = nn.ModuleList(
            GBlock(spatial_dims, c_in, c_out, num_classes, upsample, noise, noise_init,
                   (r,) * spatial_dims if noise_map else None)
            for (c_in, c_out), r in zip(itertools.pairwise(widths), resolutions[1:], strict=True)
        )
        self._noise_shapes = [(r,) * spatial_dims for r in resolutions[1:] for _ in range(2)]
        # excite[j] gates the output of block j (resolution resolutions[j + 1]) by the map two stages back.
        self.excite: nn.ModuleList | None = nn.ModuleList(
            SkipExcitation(spatial_dims, widths[j - 1], widths[j + 1]) if j >= 1 else nn.Identity()
            for j in range(len(self.blocks))
        ) if sle else None
        self.out_norm = batch_norm(spatial_dims, widths[-1])
        self.out_conv = conv(spatial_dims, widths[-1], out_channels, 3)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Generate images.

        Args:
            z: ``(B, z_dim)`` latents.
            y: ``(B,)`` int64 class indices; required when ``num_classes > 0``, ignored otherwise.

        Returns:
            ``(B, out_channels, *[size] * spatial_dims)`` in ``[-1, 1]``; only -1 and 1 when ``binary``.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if self.num_classes == 0:
            y = None
        elif y is None:
            raise ValueError(f"class labels y are required when num_classes={self.num_classes}")
        first = z if self.class_embed is None else torch.cat([z, self.class_embed(y)], dim=1)
        h = self.fc(first).reshape(z.shape[0], self.bottom_channels, *([_BOTTOM] * self.spatial_dims))
        maps = pixel_noise(z, self._noise_shapes, random=self.training) if self.noise else None
        feats = [h] if self.excite is not None else []  # earlier maps, kept only for skip-layer excitation
        for k, block in enumerate(self.blocks):
            h = block(h, y, None if maps is None else (maps[2 * k], maps[2 * k + 1]))
            if self.excite is not None:
                if k >= 1:
                    h = self.excite[k](feats[k - 1], h)
                feats.append(h)
        h = self.out_conv(F.relu(self.out_norm(h)))  # (B, C, *[full_size])
        for _ in range(self.smooth):
            h = binomial_blur(h)
        h = h.tanh()
        h = center_crop(h, self.size * self.supersample, self.spatial_dims)
        if self.supersample > 1 and self.supersample_filter == "bilinear":  # convex weights: still in [-1, 1]
            h = F.interpolate(h, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        elif self.supersample > 1:  # area resize: the mean of each cell, so still in [-1, 1]
            pool = F.avg_pool2d if self.spatial_dims == 2 else F.avg_pool3d
            h = pool(h, self.supersample)
        if self.floor is not None:
            h = floor_clamp(h, self.floor)
        if self.binary:
            h = stochastic_binarize(h, self.stochastic) if self.stochastic and self.training else binarize(h)
        if self.recentre is not None:
            h = recentre(h, self.recentre)
        # contiguous(): a cropped view would surprise callers that .view() the images.
        return h.contiguous()


class DBlock(nn.Module):
    """Residual block with spectral norm: [ReLU] → conv3 → ReLU → conv3 → [pool], plus conv1([pool](x)).

    The first block has no leading ReLU, since its input is the image (Miyato's "optimized" block);
    the last block keeps the resolution (as in SNGAN's ImageNet discriminator).
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, first: bool, down: bool = True, sn: bool = True
    ) -> None:
        super().__init__()
        self.first = first
        self.conv1 = conv(spatial_dims, in_channels, out_channels, 3, sn=sn)
        self.conv2 = conv(spatial_dims, out_channels, out_channels, 3, sn=sn)
        self.skip = conv(spatial_dims, in_channels, out_channels, 1, sn=sn)
        self.pool: nn.Module = avg_pool(spatial_dims) if down else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.pool(self.conv2(F.relu(self.conv1(h))))
        # Average pooling commutes with a 1×1 conv; pooling first is cheaper.
        return h + self.skip(self.pool(x))


def _decoder(spatial_dims: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """Two (up ×2 → conv3 → BN → ReLU) stages halving the width (at least 8), then conv3 → tanh: a map at
    a quarter of the image's edge back to an image, for the self-supervised discriminator."""
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(2):
        c_next = max(c // 2, 8)
        layers += [upsample(spatial_dims), conv(spatial_dims, c, c_next, 3, bias=False),
                   batch_norm(spatial_dims, c_next), nn.ReLU()]
        c = c_next
    layers += [conv(spatial_dims, c, out_channels, 3), nn.Tanh()]
    return nn.Sequential(*layers)


class UNetDecoder(nn.Module):
    """The decoder of a U-Net discriminator (Schönfeld et al. 2020): a real/fake logit per pixel.

    It climbs back from the encoder's bottom feature map: at each resolution it upsamples (×2,
    nearest), joins the encoder's map at that resolution (the input of the down-block that left it)
    and applies a residual block (:class:`DBlock` without pooling) of the encoder's width there. A
    1×1 convolution and a per-pixel class projection (``<embed(y), h>`` at every pixel) give the
    logits. Each pixel's decision sees the whole image through the bottleneck and its own
    neighbourhood through the skips: where a local patch is wrong, D can say where.

    Args:
        spatial_dims: 2 or 3.
        skip_channels: channel counts of the encoder maps joined on the way up, finest first (the first
            is the image's, with its high-pass residual when D reads one).
        widths: the decoder block's width at each of those resolutions, finest first.
        bottom_channels: channels of the encoder's bottom map.
        num_classes: classes of the projection (0: none).
        sn: spectral norm on every weight.
    """

    def __init__(self, spatial_dims: int, skip_channels: Sequence[int], widths: Sequence[int], bottom_channels: int,
                 num_classes: int, sn: bool = True) -> None:
        super().__init__()
        if len(skip_channels) != len(widths) or not widths:
            raise ValueError(f"skip_channels and widths must be non-empty and of one length, got {skip_channels}, {widths}")
        self.up = upsample(spatial_dims)
        blocks: list[nn.Module] = []
        c = bottom_channels
        for c_skip, w in zip(reversed(skip_channels), reversed(widths), strict=True):  # coarsest first
            blocks.append(DBlock(spatial_dims, c + c_skip, w, first=False, down=False, sn=sn))
            c = w
        self.blocks = nn.ModuleList(blocks)
        wrap = spectral if sn else (lambda m: m)
        self.out = conv(spatial_dims, c, 1, 1, sn=sn)
        self.embed: nn.Module | None = wrap(nn.Embedding(num_classes, c)) if num_classes > 0 else None

    def forward(self, bottom: Tensor, skips: Sequence[Tensor], y: Tensor | None) -> Tensor:
        """``bottom`` ``(B, C, *s)`` and the encoder maps ``skips`` (finest first) -> ``(B, 1, *full)`` logits."""
        h = bottom
        for block, skip in zip(self.blocks, reversed(skips), strict=True):
            h = block(torch.cat([self.up(h), skip], dim=1))
        h = F.relu(h)
        out = self.out(h)
        if self.embed is not None and y is not None:
            e = self.embed(y).reshape(y.shape[0], -1, *([1] * (h.ndim - 2)))  # (B, C, 1, ...)
            out = out + (e * h).sum(dim=1, keepdim=True)
        return out


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018) with spectral norm on every weight.

    ``logit = linear(h) + <embed(y), h>`` where ``h`` is the ReLU'd, spatially summed feature of a
    stack of residual down-blocks (to ``4^d``) and one residual block at ``4^d``. Inputs whose size is not a power of two are zero-padded, centred,
    to the next power of two.

    Args:
        in_channels: image channels.
        num_classes: number of classes; 0 drops the projection term (``y`` ignored).
        size: input edge length (>= 8).
        spatial_dims: 2 for images, 3 for volumes.
        base_channels: channels of the first (full-resolution) block; doubles per halving of
            resolution, mirroring the generator.
        max_channels: cap on the channel count.
        spectral_norm: spectral norm on every weight (``False`` leaves the Lipschitz control
            to R1 alone, as StyleGAN2 does).
        mbstd: a minibatch-standard-deviation channel before the last block (:class:`MinibatchStd`).
        highpass: the first block reads the image beside its high-pass residual
            (:func:`~medgan.networks.layers.high_pass`), as the C2ST does, so that fine texture is a
            large input signal rather than a small one.
        depth: with ``k > 0``, the first block also reads each channel's depth inside the mask
            (:func:`~medgan.networks.layers.mask_depth`: ``1`` at ``k`` voxels deep or more), so that a mask's thickness, which
            tells the classes of some organs apart where its volume does not, is an input rather than a
            feature D must learn (binary masks; 0 = off).
        aux: an auxiliary classifier head on the pooled feature (AC-GAN, Odena et al. 2017): with
            ``return_aux=True`` the forward also returns ``(B, num_classes)`` class logits, which the
            loss trains on real images and G is asked to satisfy (``aux_weight`` in the config).
        aux_twin: a second, twin head beside ``aux`` (TAC-GAN, Gong et al. 2019), trained on the fakes'
            classes; the class logits then have ``2 * num_classes`` columns, the real head's first. G is
            asked to satisfy the first and fool the second, which cancels AC-GAN's pull towards fakes
            that are merely easy to classify.
        aux_embedding: with ``aux=True``, the head is ReACGAN's (Kang et al. 2021) instead: a linear
            embedding of the pooled feature and one learnt proxy per class, both on the unit sphere; the
            class output is then ``(B, 1 + C)`` (``C`` the feature width): the cosine to the proxy of
            ``y``, then the unit embedding, which
            :func:`~medgan.training.loss.d2d_cross_entropy` reads. Not with ``aux_twin``.
        recon: a small decoder that rebuilds the input image from D's feature map at a quarter of the
            (padded) resolution (FastGAN's self-supervised discriminator, Liu et al. 2021): with
            ``return_recon=True`` the forward also returns the reconstruction, which the loss asks to
            match the real images. D must then keep features that describe a whole image, not only the
            few cues that tell a small training set from G's current samples. Needs ``size >= 9``.
        unet: a :class:`UNetDecoder` beside the image-level logit (U-Net GAN, Schönfeld et al. 2020):
            with ``return_pixels=True`` the forward also returns ``(B, 1, *[size] * spatial_dims)`` per-pixel
            real/fake logits, which the loss trains and G is asked to raise (``unet_weight`` in the config).
        proj_weight: the projection term's factor, ``logit = linear(h) + proj_weight * <embed(y), h>``. With
            spectral norm on the embedding, the class-dependent part of the logit is bounded like the rest; a
            factor above 1 lets D lean harder on what tells the classes apart while keeping the projection's
            density-ratio form (it asks each class's samples to match that class's data, not to be easy to
            classify). ``> 0``; 1 is Miyato & Koyama's.

    Example:
        >>> D = Discriminator(num_classes=2, size=28)
        >>> D(torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])).shape
        torch.Size([4])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        size: int = 28,
        spatial_dims: int = 2,
        base_channels: int = 32,
        max_channels: int = 256,
        spectral_norm: bool = True,
        mbstd: bool = False,
        highpass: bool = False,
        aux: bool = False,
        aux_twin: bool = False,
        aux_embedding: bool = False,
        recon: bool = False,
        unet: bool = False,
        depth: int = 0,
        proj_weight: float = 1.0,
    ) -> None:
        super().__init__()
        _check_common(size, num_classes, base_channels, max_channels)
        if not 0 < proj_weight < float("inf"):
            raise ValueError(f"proj_weight must be a finite number > 0, got {proj_weight}")
        if recon and next_pow2(size) < 4 * _BOTTOM:
            raise ValueError(f"recon needs size >= {2 * _BOTTOM + 1} (a feature map at a quarter of the padded size), "
                             f"got {size}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if depth < 0:
            raise ValueError(f"depth must be >= 0 erosions, got {depth}")
        if aux and num_classes < 2:
            raise ValueError(f"an auxiliary classifier needs num_classes >= 2, got {num_classes}")
        if aux_twin and not aux:
            raise ValueError("aux_twin=True needs aux=True (the twin sits beside the auxiliary classifier)")
        if aux_embedding and (not aux or aux_twin):
            raise ValueError("aux_embedding=True needs aux=True and aux_twin=False")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.size = size
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.full_size = next_pow2(size)
        self.highpass = highpass
        self.depth = depth
        self.proj_weight = float(proj_weight)

        sn = spectral if spectral_norm else (lambda m: m)
        blocks: list[nn.Module] = []
        c_in, res = in_channels * (1 + int(highpass) + int(depth > 0)), self.full_size
        skip_channels: list[int] = []  # what enters each down-block: the U-Net decoder's skips
        while res > _BOTTOM:
            # The block that works at resolution `res` has the generator's width there.
            c_out = _width(res, self.full_size, base_channels, max_channels)
            blocks.append(DBlock(spatial_dims, c_in, c_out, first=not blocks, sn=spectral_norm))
            skip_channels.append(c_in)
            c_in, res = c_out, res // 2
        self.num_down = len(skip_channels)
        if mbstd:
            blocks.append(MinibatchStd())
        # One more block at the bottom resolution, at the generator's widest width.
        c_out = _width(_BOTTOM, self.full_size, base_channels, max_channels)
        blocks.append(DBlock(spatial_dims, c_in + int(mbstd), c_out, first=False, down=False, sn=spectral_norm))
        c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.feature_channels = c_in
        self.fc = sn(nn.Linear(c_in, 1))
        self.embed: nn.Module | None = sn(nn.Embedding(num_classes, c_in)) if num_classes > 0 else None
        self.aux: nn.Module | None = sn(nn.Linear(c_in, c_in if aux_embedding else num_classes)) if aux else None
        self.proxy: nn.Module | None = sn(nn.Embedding(num_classes, c_in)) if aux_embedding else None
        self.aux_twin: nn.Module | None = sn(nn.Linear(c_in, num_classes)) if aux_twin else None
        # The second down-block's output is the map at a quarter of the padded size.
        self.decoder = _decoder(spatial_dims, _width(self.full_size // 2, self.full_size, base_channels, max_channels),
                                in_channels) if recon else None
        widths = [_width(self.full_size >> k, self.full_size, base_channels, max_channels) for k in range(self.num_down)]
        self.unet = UNetDecoder(spatial_dims, skip_channels, widths, c_in, num_classes, sn=spectral_norm) if unet else None

    def forward(
        self, x: Tensor, y: Tensor | None = None, return_aux: bool = False, return_recon: bool = False,
        return_pixels: bool = False,
    ) -> Tensor | tuple[Tensor, ...]:
        """Score images.

        Args:
            x: ``(B, in_channels, *[size] * spatial_dims)``.
            y: ``(B,)`` int64 class indices; required when ``num_classes > 0``, ignored otherwise.
            return_aux: also return the auxiliary classifier's logits (needs ``aux=True``).
            return_recon: also return the decoder's reconstruction of ``x`` (needs ``recon=True``).
            return_pixels: also return the U-Net decoder's per-pixel logits (needs ``unet=True``).

        Returns:
            ``(B,)`` logits (higher = more real); with ``return_aux``, also ``(B, num_classes)`` class logits
            (``(B, 2 * num_classes)`` with ``aux_twin``: the real head's, then the twin's; ``(B, 1 + C)`` with
            ``aux_embedding``); with
            ``return_recon``, the reconstruction, shaped like ``x`` and in ``[-1, 1]``; with ``return_pixels``,
            last, ``(B, 1, *spatial)`` per-pixel logits.
        """
        if return_aux and self.aux is None:
            raise ValueError("return_aux=True needs a discriminator built with aux=True")
        if return_recon and self.decoder is None:
            raise ValueError("return_recon=True needs a discriminator built with recon=True")
        if return_pixels and self.unet is None:
            raise ValueError("return_pixels=True needs a discriminator built with unet=True")
        expected = (self.in_channels, *([self.size] * self.spatial_dims))
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        views = [x, *([high_pass(x)] if self.highpass else []), *([mask_depth(x, self.depth)] if self.depth else [])]
        inputs = torch.cat(views, dim=1) if len(views) > 1 else x  # (B, [2 or 3 *] in_channels, *spatial)
        h = pad_to(inputs, self.full_size, spatial_dims=self.spatial_dims)
        extras: list[Tensor] = []
        skips: list[Tensor] = []
        for k, block in enumerate(self.blocks):
            if return_pixels and k < self.num_down:
                skips.append(h)
            h = block(h)
            if k == 1 and return_recon:  # (B, C, *[full_size / 4])
                assert self.decoder is not None
                extras.append(center_crop(self.decoder(h), self.size, self.spatial_dims))
        if return_pixels:
            assert self.unet is not None
            pixels = center_crop(self.unet(h, skips, y if self.embed is not None else None), self.size, self.spatial_dims)
        h = F.relu(h).sum(dim=tuple(range(2, h.ndim)))  # (B, C)
        out = self.fc(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if y is None:
                raise ValueError(f"class labels y are required when num_classes={self.num_classes}")
            out = out + self.proj_weight * (self.embed(y) * h).sum(dim=1)
        if return_aux:
            assert self.aux is not None
            if self.proxy is not None:
                f = F.normalize(self.aux(h), dim=1)  # (B, C)
                cos = (f * F.normalize(self.proxy(y), dim=1)).sum(dim=1, keepdim=True)  # (B, 1)
                extras.insert(0, torch.cat([cos, f], dim=1))  # (B, 1 + C)
            else:
                heads = [self.aux(h)] if self.aux_twin is None else [self.aux(h), self.aux_twin(h)]
                extras.insert(0, torch.cat(heads, dim=1))  # (B, num_classes) or (B, 2 * num_classes)
        if return_pixels:
            extras.append(pixels)
        return (out, *extras) if extras else out
