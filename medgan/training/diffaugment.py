"""Differentiable augmentation for the discriminator, 2D and 3D, with a fixed or adaptive probability.

:class:`DiffAugment` augments real and fake images alike before D (Zhao et al. 2020, "Differentiable
Augmentation"; Karras et al. 2020, "ADA"): translation, cutout, and colour (brightness and
contrast). Each sample gets each op independently with probability ``p``. Everything is vectorised
over the batch, draws from the global torch RNG on the input's device (so restoring the RNG state
reproduces a batch exactly), and lets gradients flow to the input (G is trained through it, and R1
differentiates through it). Under DDP each rank cuts its rows out of one draw for the global
batch (:func:`medgan.training.distributed.rank_rows`), so the augmentations do not depend on the
number of processes.

:class:`AdaptiveAugment` is the ADA controller: it watches ``mean(sign(D(real)))`` and nudges ``p``
up when D grows overconfident on reals and down otherwise. Its ``state_dict`` (``p`` and the
accumulator) is part of the training checkpoint.

Values are in the networks' ``[-1, 1]`` space; outputs are not clamped (D may see values slightly
outside it after brightness / contrast, as in ADA).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan.networks.layers import check_spatial_dims
from medgan.training.distributed import all_reduce_mean, rank_rows

__all__ = ["AUGMENT_OPS", "AdaptiveAugment", "AugmentOp", "DiffAugment", "parse_policy"]

AugmentOp = Literal["translation", "cutout", "color"]
AUGMENT_OPS: tuple[str, ...] = get_args(AugmentOp)


def parse_policy(policy: str | Sequence[str]) -> tuple[AugmentOp, ...]:
    """Normalise a policy (``"translation,cutout"`` or a sequence of names) to a tuple of ops.

    An empty string or sequence means no augmentation. Unknown names raise ``ValueError`` naming
    the allowed ones.
    """
    names = [n.strip() for n in policy.split(",")] if isinstance(policy, str) else list(policy)
    names = [n for n in names if n]
    bad = [n for n in names if n not in AUGMENT_OPS]
    if bad:
        raise ValueError(
            f"unknown augmentation {', '.join(map(repr, bad))}; allowed: {', '.join(AUGMENT_OPS)}"
        )
    return tuple(dict.fromkeys(names))  # type: ignore[arg-type]


class DiffAugment(nn.Module):
    """Differentiable augmentation applied per sample per op with probability ``p``.

    Ops, applied in this order whatever the order of ``policy``:

    - ``"color"``: brightness ``x + b``, ``b ~ U(-brightness, brightness)``, then contrast
      ``(x - m) * c + m``, ``c ~ U(1 - contrast, 1 + contrast)``, ``m`` the per-sample mean over
      channels and space. Brightness and contrast are drawn as two ops, each with probability ``p``.
    - ``"translation"``: an integer shift of up to ``round(translation * size)`` pixels along every
      spatial axis (each axis drawn independently), filling with ``fill``.
    - ``"cutout"``: a box of ``round(cutout * size)`` pixels per axis, centred on a uniformly drawn
      pixel (clipped at the borders), set to ``fill``. The default, 0, is mid-grey in ``[-1, 1]`` space,
      as in DiffAugment and ADA, so it reads as "no information" rather than as black background. On
      binary masks mid-grey is a value no real voxel has, and a generator whose every voxel is -1 or 1
      can only mimic a grey strip with noise; ``fill=-1`` shifts in background instead.

    ``p == 0`` returns the input object itself (no RNG drawn). For ``p > 0`` the same random
    numbers are drawn whatever the outcome, so the RNG stream depends only on ``p > 0`` and shapes.

    Args:
        policy: ops to use, e.g. ``"translation,cutout,color"`` or ``("translation",)``.
        spatial_dims: 2 or 3.
        p: probability of each op per sample, in ``[0, 1]``; assign ``augment.p`` to change it
            (e.g. from :class:`AdaptiveAugment`).
        translation: maximal shift as a fraction of the size (1/8 by default).
        cutout: cutout box edge as a fraction of the size (1/2 by default).
        brightness: maximal brightness offset, in ``[-1, 1]`` units.
        contrast: maximal relative contrast change.
        fill: the value translation shifts in and cutout sets, in ``[-1, 1]``.

    Example:
        >>> aug = DiffAugment("translation,cutout,color", spatial_dims=2, p=0.5)
        >>> aug(torch.zeros(8, 1, 28, 28)).shape
        torch.Size([8, 1, 28, 28])
    """

    def __init__(
        self,
        policy: str | Sequence[str] = ("translation", "cutout", "color"),
        spatial_dims: int = 2,
        p: float = 1.0,
        translation: float = 0.125,
        cutout: float = 0.5,
        brightness: float = 0.25,
        contrast: float = 0.5,
        fill: float = 0.0,
    ) -> None:
        super().__init__()
        self.policy = parse_policy(policy)
        if not -1.0 <= fill <= 1.0:
            raise ValueError(f"fill must be in [-1, 1], got {fill}")
        self.fill = float(fill)
        self.spatial_dims = check_spatial_dims(spatial_dims)
        if not 0.0 <= translation <= 0.5 or not 0.0 <= cutout <= 1.0:
            raise ValueError(
                f"translation must be in [0, 0.5] and cutout in [0, 1], got {translation}, {cutout}"
            )
        if brightness < 0 or not 0.0 <= contrast < 1.0:
            raise ValueError(f"brightness must be >= 0 and contrast in [0, 1), got {brightness}, {contrast}")
        self.translation = float(translation)
        self.cutout = float(cutout)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self._p = 0.0
        self.p = p

    @property
    def p(self) -> float:
        """Probability of each op per sample (a Python float, so checking it needs no device sync)."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"augmentation probability p must be in [0, 1], got {value}")
        self._p = value

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}, spatial_dims={self.spatial_dims}, p={self.p:.4f}"

    def forward(self, x: Tensor) -> Tensor:
        """Augment a batch ``(B, C, *spatial)``; returns a tensor of the same shape."""
        if self.p <= 0.0 or not self.policy:
            return x
        if x.ndim != 2 + self.spatial_dims:
            raise ValueError(
                f"expected a (B, C, {self.spatial_dims} spatial axes) tensor, got {tuple(x.shape)}"
            )
        if "color" in self.policy:
            x = self._brightness(x)
            x = self._contrast(x)
        if "translation" in self.policy:
            x = self._translate(x)
        if "cutout" in self.policy:
            x = self._cutout(x)
        return x

    # Each op: draw who gets it, draw its parameters for everyone, and keep the others unchanged.

    def _chosen(self, x: Tensor) -> Tensor:
        """``(B, 1, 1, ...)`` bool: which samples get the op."""
        chosen = rank_rows(lambda n: torch.rand(n, device=x.device), x.shape[0]) < self.p
        return chosen.reshape((-1,) + (1,) * (x.ndim - 1))

    def _uniform(self, x: Tensor, low: float, high: float) -> Tensor:
        """``(B, 1, 1, ...)`` uniform draws in ``[low, high)`` in ``x``'s dtype."""
        u = rank_rows(lambda n: torch.rand((n,) + (1,) * (x.ndim - 1), device=x.device, dtype=x.dtype), x.shape[0])
        return low + (high - low) * u

    def _brightness(self, x: Tensor) -> Tensor:
        chosen = self._chosen(x)
        offset = self._uniform(x, -self.brightness, self.brightness)
        return torch.where(chosen, x + offset, x)

    def _contrast(self, x: Tensor) -> Tensor:
        chosen = self._chosen(x)
        factor = self._uniform(x, 1.0 - self.contrast, 1.0 + self.contrast)
        mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)  # (B, 1, 1, ...)
        return torch.where(chosen, (x - mean) * factor + mean, x)

    def _translate(self, x: Tensor) -> Tensor:
        chosen = self._chosen(x)
        b = x.shape[0]
        spatial = x.shape[2:]
        margins = [int(n * self.translation + 0.5) for n in spatial]
        shifts = [_randint(-m, m + 1, b, (), x.device) for m in margins]
        if not any(margins):
            return x
        # Pad every spatial axis by its margin with `fill`, then gather each axis at i - shift + margin:
        # out[i] = x[i - shift], and indices that fall outside x land in the padding.
        pads: list[int] = []
        for m in reversed(margins):
            pads += [m, m]
        out = F.pad(x, pads, value=self.fill)
        for k, (n, m, shift) in enumerate(zip(spatial, margins, shifts, strict=True)):
            axis = 2 + k
            index = torch.arange(n, device=x.device).reshape([1] * axis + [n] + [1] * (x.ndim - axis - 1))
            index = (index - shift.reshape([b] + [1] * (x.ndim - 1)) + m).expand(
                *out.shape[:axis], n, *out.shape[axis + 1 :]
            )
            out = out.gather(axis, index)
        return torch.where(chosen, out, x)

    def _cutout(self, x: Tensor) -> Tensor:
        chosen = self._chosen(x)
        b = x.shape[0]
        inside = torch.ones((b,) + (1,) * (x.ndim - 1), dtype=torch.bool, device=x.device)
        for k, n in enumerate(x.shape[2:]):
            length = int(n * self.cutout + 0.5)
            centre = _randint(0, n, b, (1,), x.device)
            start = centre - length // 2
            pos = torch.arange(n, device=x.device).unsqueeze(0)  # (1, n)
            hit = (pos >= start) & (pos < start + length)  # (B, n)
            shape = [b] + [1] * (x.ndim - 1)
            shape[2 + k] = n
            inside = inside & hit.reshape(shape)  # broadcasts to (B, 1, *spatial)
        return torch.where(chosen & inside, torch.full((), self.fill, dtype=x.dtype, device=x.device), x)


def _randint(low: int, high: int, batch: int, tail: tuple[int, ...], device: torch.device) -> Tensor:
    """``(batch, *tail)`` integers in ``[low, high)``: this rank's rows of a global-batch draw."""
    return rank_rows(lambda n: torch.randint(low, high, (n, *tail), device=device), batch)


class AdaptiveAugment:
    """ADA controller of the augmentation probability ``p``, or a fixed ``p`` when ``adaptive=False``.

    Call :meth:`update` once per D step with the loss's ``d_real_sign`` stat, then hand ``p`` to the
    augmentation (``augment.p = ada.p``). The statistic stays on the device as a running tensor
    sum; every ``interval`` steps it is read once (one host sync), ``rt = mean(sign(D(real)))`` over
    those steps, and ``p`` moves by ``sign(rt - target) * images_seen / speed_images`` (so it can
    go from 0 to 1 in ``speed_images`` images), clamped to ``[0, p_max]``. With ``adaptive=False``
    ``rt`` is still measured (for logging) but ``p`` never changes.

    Args:
        p: the starting probability, in ``[0, 1]`` (clamped to ``p_max`` when adaptive).
        adaptive: adjust ``p`` (ADA) or keep it fixed.
        target: the ``rt`` that ADA holds (0.6 in ADA).
        interval: D steps between adjustments (4 in ADA).
        speed_images: images it takes ``p`` to move by 1 (500k in ADA; smaller suits small data).
        p_max: upper clamp for ``p``; below 1 by default so some samples always pass un-augmented.

    Example:
        >>> augment = DiffAugment(p=0.0)
        >>> ada = AdaptiveAugment(p=0.0, target=0.6, interval=4, speed_images=100_000)
        >>> ada.update(stats["d_real_sign"], batch_size=64)  # once per D step
        >>> augment.p = ada.p
        >>> checkpoint["augment"] = ada.state_dict()
    """

    def __init__(
        self,
        p: float = 0.0,
        *,
        adaptive: bool = True,
        target: float = 0.6,
        interval: int = 4,
        speed_images: int = 100_000,
        p_max: float = 0.99,
    ) -> None:
        if not 0.0 < target <= 1.0:
            raise ValueError(f"target must be in (0, 1], got {target}")
        if interval < 1 or speed_images < 1:
            raise ValueError(f"interval and speed_images must be >= 1, got {interval}, {speed_images}")
        if not 0.0 < p_max <= 1.0:
            raise ValueError(f"p_max must be in (0, 1], got {p_max}")
        self.p_max = float(p_max)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = min(float(p), self.p_max) if adaptive else float(p)
        self.adaptive = adaptive
        self.target = float(target)
        self.interval = int(interval)
        self.speed_images = int(speed_images)
        self.rt: float | None = None  # the last resolved mean sign, for logging
        self._steps = 0
        self._images = 0
        self._sign_sum = torch.zeros(())  # sum over steps of mean_sign * batch_size

    def __repr__(self) -> str:
        return (
            f"AdaptiveAugment(p={self.p:.4f}, adaptive={self.adaptive}, target={self.target}, "
            f"interval={self.interval}, speed_images={self.speed_images}, p_max={self.p_max})"
        )

    def update(self, d_real_sign: Tensor, batch_size: int) -> float:
        """Accumulate one D step's ``mean(sign(D(real)))``; adjust ``p`` every ``interval`` steps.

        Args:
            d_real_sign: scalar tensor (``GANLoss`` stat ``d_real_sign``), on any device.
            batch_size: number of real images behind the statistic (all ranks together under DDP,
                with the statistic averaged across ranks).

        Returns:
            The (possibly new) ``p``.
        """
        sign = d_real_sign.detach().float().reshape(())
        self._sign_sum = self._sign_sum.to(sign.device) + sign * batch_size
        self._images += batch_size
        self._steps += 1
        if self._steps % self.interval != 0:
            return self.p
        # Under DDP each rank saw its own real images: average the statistic over ranks first.
        self.rt = float(all_reduce_mean(self._sign_sum).item()) / self._images
        if self.adaptive:
            direction = (self.rt > self.target) - (self.rt < self.target)  # sign(rt - target)
            p = self.p + direction * self._images / self.speed_images
            self.p = min(max(p, 0.0), self.p_max)
        self._images = 0
        self._sign_sum = torch.zeros((), device=sign.device)
        return self.p

    def state_dict(self) -> dict[str, Any]:
        """``p``, the step counter and the pending accumulator (loadable with ``weights_only=True``)."""
        return {
            "p": self.p,
            "steps": self._steps,
            "images": self._images,
            "sign_sum": self._sign_sum.detach().clone(),
            "rt": self.rt,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.p = float(state["p"])
        self._steps = int(state["steps"])
        self._images = int(state["images"])
        self._sign_sum = torch.as_tensor(state["sign_sum"], dtype=torch.float32).detach().clone().reshape(())
        self.rt = None if state["rt"] is None else float(state["rt"])
