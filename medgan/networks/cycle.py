"""The cycle family (CycleGAN, Zhu et al. 2017): two translators and two patch discriminators, 2D or 3D.

Unpaired translation between two domains, A and B (two classes of one dataset, or two datasets).
The family keeps the one conditional interface with the image in place of the latent:

- ``G(x, y)`` translates every image ``x[i]`` into domain ``y[i]`` (0 = A, 1 = B):
  ``G.nets[1]`` maps A to B and ``G.nets[0]`` maps B to A. Images ``(B, C, *spatial)`` in
  ``[-1, 1]`` in, the same shape out.
- ``D(x, y)`` scores every image as a real image of domain ``y[i]``: ``D.nets[d]`` is MONAI's
  :class:`~monai.networks.nets.PatchDiscriminator`, and the scores are its patch logits ``(B, P)``
  (one per patch; the adversarial losses average them).

``y`` may be one int for the whole batch (what training does), or a ``(B,)`` tensor.

Translators come in two shapes (``arch``): ``resnet``, the CycleGAN paper's (a stem, ``n_down``
stride-2 convolutions, ``n_blocks`` residual units at the lowest resolution, ``n_down`` ×2
upsamplings and a tanh), built from MONAI's ``Convolution`` and ``ResidualUnit`` blocks; or
``unet``, MONAI's :class:`~monai.networks.nets.UNet` with residual units and a tanh. Sizes that
``2 ** n_down`` does not divide are padded (with -1, black) and cropped back.

Example:
    >>> G = CycleGenerator(channels=1, size=28, spatial_dims=2)
    >>> G(torch.zeros(4, 1, 28, 28), 1).shape       # A -> B
    torch.Size([4, 1, 28, 28])
    >>> D = CycleDiscriminator(channels=1, size=28, spatial_dims=2)
    >>> D(torch.zeros(4, 1, 28, 28), 0).shape       # patch logits of D_A
    torch.Size([4, 25])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from medgan.networks.layers import binarize, center_crop, check_spatial_dims, pad_to, upsample

__all__ = [
    "TRANSLATOR_ARCHS",
    "CycleDiscriminator",
    "CycleGenerator",
    "PatchNorm",
    "TranslatorArch",
    "build_translator",
]

TranslatorArch = Literal["resnet", "unet"]
TRANSLATOR_ARCHS: tuple[str, ...] = get_args(TranslatorArch)
PatchNorm = Literal["instance", "batch"]
_PATCH_NORMS: tuple[str, ...] = get_args(PatchNorm)
_NUM_DOMAINS = 2


def _check_domains(num_classes: int) -> None:
    if num_classes != _NUM_DOMAINS:
        raise ValueError(
            f"the cycle family translates between exactly 2 domains; num_classes must be 2, got {num_classes}"
        )


def _by_domain(x: Tensor, y: Tensor, fn: Callable[[Tensor, int], Tensor]) -> Tensor:
    """``fn(x[rows], d)`` for the rows of each domain ``d``, put back in the order of ``x``."""
    y = y.reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} images but {len(y)} domain labels")
    if len(y) and bool(((y < 0) | (y >= _NUM_DOMAINS)).any()):
        raise ValueError("domain labels must be 0 (A) or 1 (B)")
    parts, rows_of = [], []
    for d in range(_NUM_DOMAINS):
        rows = (y == d).nonzero(as_tuple=True)[0]
        if len(rows):
            parts.append(fn(x[rows], d))
            rows_of.append(rows)
    if not parts:
        return fn(x, 0)  # an empty batch: the right trailing shape, zero rows
    return torch.cat(parts)[torch.cat(rows_of).argsort()]


class ResnetTranslator(nn.Module):
    """One direction of translation in the CycleGAN paper's shape, from MONAI blocks.

    Args:
        spatial_dims: 2 or 3.
        channels: image channels (in and out).
        base_channels: channels after the stem; doubled at each downsampling, capped at ``max_channels``.
        max_channels: the cap.
        n_down: stride-2 downsamplings (and as many ×2 upsamplings).
        n_blocks: residual units at the lowest resolution.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        base_channels: int = 32,
        max_channels: int = 256,
        n_down: int = 2,
        n_blocks: int = 6,
    ) -> None:
        super().__init__()
        from monai.networks.blocks import Convolution, ResidualUnit

        d = check_spatial_dims(spatial_dims)
        norm, act = "INSTANCE", "RELU"
        widths = [min(base_channels * 2**i, max_channels) for i in range(n_down + 1)]
        layers: list[nn.Module] = [Convolution(d, channels, widths[0], kernel_size=7, act=act, norm=norm)]
        for i in range(n_down):
            layers.append(
                Convolution(d, widths[i], widths[i + 1], strides=2, kernel_size=3, act=act, norm=norm)
            )
        layers += [
            ResidualUnit(d, widths[-1], widths[-1], subunits=2, act=act, norm=norm) for _ in range(n_blocks)
        ]
        for i in reversed(range(n_down)):
            # Nearest ×2 then a convolution: no checkerboard, and a deterministic gradient on CUDA.
            layers += [
                upsample(d),
                Convolution(d, widths[i + 1], widths[i], kernel_size=3, act=act, norm=norm),
            ]
        layers += [Convolution(d, widths[0], channels, kernel_size=7, conv_only=True), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def build_translator(
    arch: TranslatorArch,
    spatial_dims: int,
    channels: int,
    base_channels: int = 32,
    max_channels: int = 256,
    n_down: int = 2,
    n_blocks: int = 6,
) -> nn.Module:
    """One direction of translation, ``(B, C, *s) -> (B, C, *s)`` in ``[-1, 1]``, for ``s`` divisible by ``2**n_down``.

    Raises:
        ValueError: an unknown ``arch`` (the message lists the allowed ones) or bad sizes.
    """
    if arch not in TRANSLATOR_ARCHS:
        raise ValueError(f"unknown translator arch {arch!r}; allowed: {', '.join(TRANSLATOR_ARCHS)}")
    if n_down < 1 or n_blocks < 0 or base_channels < 1:
        raise ValueError(
            f"n_down must be >= 1, n_blocks >= 0 and base_channels >= 1; got {n_down}, {n_blocks}, "
            f"{base_channels}"
        )
    if arch == "resnet":
        return ResnetTranslator(spatial_dims, channels, base_channels, max_channels, n_down, n_blocks)
    from monai.networks.nets import UNet

    widths = [min(base_channels * 2**i, max_channels) for i in range(n_down + 1)]
    unet = UNet(
        check_spatial_dims(spatial_dims),
        channels,
        channels,
        channels=widths,
        strides=[2] * n_down,
        num_res_units=2,
        norm="INSTANCE",
    )
    return nn.Sequential(unet, nn.Tanh())


class CycleGenerator(nn.Module):
    """The two translators of a CycleGAN: ``G(x, y)`` translates ``x`` into domain ``y``.

    Args:
        channels: image channels (1 grey, 3 RGB).
        size: edge length of the (square or cubic) images.
        spatial_dims: 2 or 3.
        arch: ``resnet`` or ``unet`` (see the module doc).
        base_channels: width after the stem.
        max_channels: cap on the width.
        n_down: downsamplings in each translator.
        n_blocks: residual units at the lowest resolution (``resnet`` only).
        num_classes: the number of domains; always 2 (named as in the other families, whose
            ``num_classes`` the training loop reads).
        binary: translate into exactly -1 or 1 (:func:`~medgan.networks.layers.binarize`), for
            binary masks; the cycle and identity losses then compare masks with masks.
    """

    def __init__(
        self,
        channels: int,
        size: int,
        spatial_dims: int = 2,
        arch: TranslatorArch = "resnet",
        base_channels: int = 32,
        max_channels: int = 256,
        n_down: int = 2,
        n_blocks: int = 6,
        num_classes: int = 2,
        binary: bool = False,
    ) -> None:
        super().__init__()
        _check_domains(num_classes)
        self.binary = binary
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.channels, self.size, self.num_classes = channels, size, num_classes
        step = 2**n_down
        self.canvas = -(-size // step) * step  # the next multiple of 2 ** n_down
        # nets[d] translates into domain d: nets[0] is B -> A, nets[1] is A -> B.
        self.nets = nn.ModuleList(
            build_translator(arch, spatial_dims, channels, base_channels, max_channels, n_down, n_blocks)
            for _ in range(_NUM_DOMAINS)
        )

    def translate(self, x: Tensor, to: int) -> Tensor:
        """``x`` ``(B, C, *s)`` translated into domain ``to`` (0 or 1)."""
        if self.canvas == self.size:
            out = self.nets[to](x)
        else:
            out = center_crop(self.nets[to](pad_to(x, self.canvas, value=-1.0)), self.size)
        return binarize(out) if self.binary else out

    def forward(self, x: Tensor, y: Tensor | int) -> Tensor:
        if isinstance(y, int):
            return self.translate(x, y)
        return _by_domain(x, y, self.translate)


class CycleDiscriminator(nn.Module):
    """The two patch discriminators of a CycleGAN: ``D(x, y)`` scores ``x`` as a real image of domain ``y``.

    Args:
        channels: image channels.
        size: edge length of the images (documents the spec; the patch grid follows from it).
        spatial_dims: 2 or 3.
        base_channels: filters of the first layer, doubled per layer.
        num_layers: MONAI ``num_layers_d``: 2 gives 5×5 patches at 28², 3 the paper's 70-pixel
            receptive field at 256².
        norm: ``instance`` (the CycleGAN paper's) or ``batch`` (MONAI's default).
        num_classes: the number of domains; always 2.

    Returns (``forward``): patch logits ``(B, P)``.
    """

    def __init__(
        self,
        channels: int,
        size: int,
        spatial_dims: int = 2,
        base_channels: int = 32,
        num_layers: int = 2,
        norm: PatchNorm = "instance",
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        from monai.networks.nets import PatchDiscriminator

        _check_domains(num_classes)
        if norm not in _PATCH_NORMS:
            raise ValueError(f"unknown patch-discriminator norm {norm!r}; allowed: {', '.join(_PATCH_NORMS)}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if size // 2**num_layers - 1 < 2:  # the deepest normalised layer needs more than one pixel per image
            deepest = max((k for k in range(1, 8) if size // 2**k - 1 >= 2), default=0)
            raise ValueError(
                f"a patch discriminator with {num_layers} layers is too deep for {size}-pixel images; "
                f"use at most {deepest} (cycle.d_layers)"
                if deepest
                else f"images of {size} pixels are too small for a patch discriminator (at least 6)"
            )
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.size, self.num_classes = size, num_classes
        self.nets = nn.ModuleList(
            PatchDiscriminator(
                spatial_dims,
                base_channels,
                channels,
                out_channels=1,
                num_layers_d=num_layers,
                norm=norm.upper(),
            )
            for _ in range(_NUM_DOMAINS)
        )

    def score(self, x: Tensor, domain: int) -> Tensor:
        """Patch logits ``(B, P)`` of ``x`` under the discriminator of ``domain``."""
        # MONAI returns every layer's output; the last is the score.
        return self.nets[domain](x)[-1].flatten(1)

    def forward(self, x: Tensor, y: Tensor | int) -> Tensor:
        if isinstance(y, int):
            return self.score(x, y)
        return _by_domain(x, y, self.score)
