"""MONAI classifier factory: the benchmark's classifier arms and the metrics' domain feature space.

One factory serves 2D and 3D (``spatial_dims``). :class:`FeatureNet` turns any classifier from the
factory into a feature extractor: its output is the input of the classifier's last linear layer
(the penultimate representation), ``(B, F)``.

Inputs are float tensors ``(B, C, H, W)`` or ``(B, C, D, H, W)`` scaled as everywhere in medgan,
``u8 / 127.5 - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets import DenseNet121, resnet10, resnet18
from torch import nn

__all__ = ["ARCHS", "Arch", "FeatureNet", "SmallCNN", "build_classifier"]

Arch = Literal["cnn", "resnet10", "resnet18", "densenet121"]
ARCHS: tuple[str, ...] = get_args(Arch)


class SmallCNN(nn.Module):
    """A compact conv net for small images and volumes (28² / 28³ up to 64³), fast on a CPU.

    Each stage is a stride-2 convolution followed by a stride-1 one (conv, batch norm, ReLU, from
    MONAI's ``Convolution`` block), except the first, which only downsamples (a stride-1 conv at
    full resolution would dominate the cost of a 3D net); global average pooling gives a ``channels[-1]``-long feature
    vector that does not depend on the input size; a linear head maps it to class logits.

    Args:
        spatial_dims: 2 or 3.
        in_channels: 1 (grey) or 3 (RGB).
        num_classes: number of output logits.
        channels: feature maps per stage; the last is the feature dimension.
        dropout: dropout before the head.

    Example:
        >>> net = SmallCNN(2, 1, 2)
        >>> net(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 2])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int] = (16, 32, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for i, ch in enumerate(channels):
            # The first stage has no stride-1 conv: at full resolution it would dominate the cost in 3D.
            for stride in (2,) if i == 0 else (2, 1):
                layers.append(
                    Convolution(spatial_dims, prev, ch, strides=stride, kernel_size=3, act="RELU", norm="BATCH")
                )
                prev = ch
        pool = nn.AdaptiveAvgPool2d(1) if spatial_dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.body = nn.Sequential(*layers, pool, nn.Flatten(1))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(prev, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` -> ``(B, channels[-1])``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))  # (B, num_classes)


def build_classifier(arch: str, spatial_dims: int, in_channels: int, num_classes: int, **kw: Any) -> nn.Module:
    """Build a classifier from MONAI networks.

    Args:
        arch: ``"cnn"`` (:class:`SmallCNN`, the default feature space for 28² / 28³ data),
            ``"resnet10"``, ``"resnet18"`` (``monai.networks.nets.resnet10/18``) or
            ``"densenet121"`` (``monai.networks.nets.DenseNet121``; it downsamples five times, so
            every spatial size must be at least 32: use it on the 64-pixel files).
        spatial_dims: 2 for images, 3 for volumes.
        in_channels: image channels.
        num_classes: number of output logits.
        **kw: passed to the underlying constructor (e.g. ``channels=(32, 64, 128)`` for ``cnn``,
            ``no_max_pool=True`` for a ResNet, ``dropout_prob=0.2`` for the DenseNet).

    Raises:
        ValueError: for an unknown ``arch`` (the message lists the allowed ones) or ``spatial_dims``
            other than 2 or 3.

    Example:
        >>> net = build_classifier("resnet18", spatial_dims=3, in_channels=1, num_classes=2)
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if arch == "cnn":
        return SmallCNN(spatial_dims, in_channels, num_classes, **kw)
    if arch in ("resnet10", "resnet18"):
        factory = resnet10 if arch == "resnet10" else resnet18
        return factory(spatial_dims=spatial_dims, n_input_channels=in_channels, num_classes=num_classes, **kw)
    if arch == "densenet121":
        return DenseNet121(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes, **kw)
    raise ValueError(f"unknown classifier arch {arch!r}; allowed: {', '.join(ARCHS)}")


def _last_linear(model: nn.Module) -> str:
    """Qualified name of the last ``nn.Linear`` in ``model`` (registration order)."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to take features before")
    return last


class FeatureNet(nn.Module):
    """The penultimate representation of a classifier: ``(B, C, *spatial)`` -> ``(B, F)``.

    The features are the input of the classifier's last ``nn.Linear`` (the pooled vector of every
    network in :func:`build_classifier`), captured with a forward pre-hook, so the wrapped model is
    left unchanged and any architecture with a linear head works.

    Args:
        classifier: a classifier, usually from :func:`build_classifier`.

    Example:
        >>> fnet = FeatureNet(build_classifier("cnn", 2, 1, 2))
        >>> fnet(torch.zeros(3, 1, 28, 28)).shape
        torch.Size([3, 64])
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier
        # Keep the head's name, not the module, so it is not registered twice in the state dict.
        self.head_name = _last_linear(classifier)
        self.num_features = int(self._head().in_features)

    def _head(self) -> nn.Linear:
        head = self.classifier.get_submodule(self.head_name)
        assert isinstance(head, nn.Linear)
        return head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` -> ``(B, F)``."""
        captured: list[torch.Tensor] = []

        def grab(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            captured.append(args[0])

        handle = self._head().register_forward_pre_hook(grab)
        try:
            self.classifier(x)
        finally:
            handle.remove()
        return captured[-1].flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
