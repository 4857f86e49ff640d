"""Pure ``nn.Module`` networks: class-conditional G / D, progressive G / D, and their layers.

:func:`build_generator` / :func:`build_discriminator` pick a family by name, so configs and
checkpoints can name the architecture. The progressive family is imported only when asked for.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from typing import Any, Literal, get_args

from torch import nn

from medgan.networks.cgan import Discriminator, Generator

__all__ = [
    "NETWORK_FAMILIES",
    "Discriminator",
    "FamilyName",
    "Generator",
    "NetworkFamily",
    "build_discriminator",
    "build_generator",
    "build_networks",
    "canonical_family",
    "same_networks",
]

NetworkFamily = Literal["residual", "progressive", "style", "cycle"]
"""``residual``: a residual G and a projection D at full resolution from the first step;
``progressive``: G and D grow from a small resolution to the full one; ``style``: a style-based G
(mapping network, modulated convolutions) with the residual projection D (all are class-conditional);
``cycle``: two translators ``G(x, y)`` (image ``x`` into domain ``y``) and two patch discriminators (CycleGAN)."""
NETWORK_FAMILIES: tuple[str, ...] = get_args(NetworkFamily)
FamilyName = Literal[NetworkFamily, "cgan"]
"""What a config or checkpoint may name: a family, or ``cgan``, the old name of ``residual``."""
_OLD_NAMES = {"cgan": "residual"}


def canonical_family(family: str) -> str:
    """The family's current name; ``cgan`` becomes ``residual`` with a :class:`FutureWarning`."""
    if family in _OLD_NAMES:
        new = _OLD_NAMES[family]
        warnings.warn(f"model family '{family}' is now called '{new}'; '{family}' will stop working in a later "
                      f"release (set model.family: {new})", FutureWarning, stacklevel=2)
        return new
    return family

# family -> (module, generator class, discriminator class)
_FAMILIES: dict[str, tuple[str, str, str]] = {
    "residual": ("medgan.networks.cgan", "Generator", "Discriminator"),
    "progressive": ("medgan.networks.progressive", "ProgressiveGenerator", "ProgressiveDiscriminator"),
    "style": ("medgan.networks.style", "StyleGenerator", "Discriminator"),
    "cycle": ("medgan.networks.cycle", "CycleGenerator", "CycleDiscriminator"),
    # Not a family a config names: a per-class run's sampling checkpoint (``per_class: true``), one unconditional
    # network of its members' family per class (medgan.networks.perclass).
    "per_class": ("medgan.networks.perclass", "PerClassGenerator", "PerClassDiscriminator"),
}


def _network_class(family: str, which: int) -> type[nn.Module]:
    family = canonical_family(family)
    if family not in _FAMILIES:
        raise ValueError(f"unknown network family {family!r}; allowed: {', '.join(NETWORK_FAMILIES)}")
    entry = _FAMILIES[family]
    return getattr(importlib.import_module(entry[0]), entry[which])


def build_generator(family: FamilyName, **kwargs: Any) -> nn.Module:
    """Construct the generator of ``family`` (``"residual"`` or ``"progressive"``) with ``kwargs``.

    Example:
        >>> G = build_generator("residual", z_dim=64, num_classes=2, size=28)
    """
    return _network_class(family, 1)(**kwargs)


def build_discriminator(family: FamilyName, **kwargs: Any) -> nn.Module:
    """Construct the discriminator of ``family`` (``"residual"`` or ``"progressive"``) with ``kwargs``.

    Example:
        >>> D = build_discriminator("residual", in_channels=1, num_classes=2, size=28)
    """
    return _network_class(family, 2)(**kwargs)


def build_networks(spec: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    """G and D from a model spec ``{"family", "generator": kwargs, "discriminator": kwargs}``.

    The spec is what :func:`medgan.training.loop.model_spec` computes and a checkpoint stores
    (``ckpt["model"]``), so training and sampling rebuild the same networks.
    """
    family = spec["family"]
    return build_generator(family, **spec["generator"]), build_discriminator(family, **spec["discriminator"])


def _with_defaults(cls: type[nn.Module], kwargs: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters.values()
    return {**{p.name: p.default for p in params if p.default is not inspect.Parameter.empty}, **kwargs}


def same_networks(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two model specs (:func:`build_networks`) build the same G and D.

    A constructor argument that one spec leaves out means its default: a checkpoint written before
    an argument existed (``noise_init``, say) still matches a config that leaves it at the default.
    """
    family = canonical_family(a["family"])
    if family != canonical_family(b["family"]):
        return False
    return all(
        _with_defaults(_network_class(family, which), a[key]) == _with_defaults(_network_class(family, which), b[key])
        for which, key in ((1, "generator"), (2, "discriminator"))
    )
