"""The cycle family's training: :class:`CycleLoss` (the objective of each phase) and :class:`CycleStep`.

The one loop (:func:`medgan.training.loop.train`) runs the cycle family like the others: set-up,
resume, EMA of G, DiffAugment / ADA, the logging, sample and checkpoint intervals and Ctrl-C are
the loop's. What differs is the data and the work of one step, which the loop hands to
:meth:`CycleStep.step`:

- the two domains: two classes of one prepared dataset (``cycle.source_class`` → A,
  ``cycle.target_class`` → B), or two prepared datasets (``data`` → A, ``cycle.target_data`` → B).
  Only the train split is read, as for every family;
- one step: a batch of each domain, the translators' G phase (adversarial + cycle-consistency +
  identity, Zhu et al. 2017) against frozen discriminators, then both patch discriminators' D phase
  on the same reals and the fakes just made (the order of the CycleGAN reference code).

Randomness follows the loop's contract: each domain's batches are a seeded permutation per epoch
addressed by position (``images_seen // 2`` images of each domain have been seen), augmentation
draws from torch's global generator, so a resumed run continues bitwise exactly.

The checkpoint's ``cycle`` record (:meth:`CycleStep.record`) names the domains and, for domain
translation, the second dataset; ``medgan translate`` and ``medgan augment`` read it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan.data.dataset import DatasetInfo, PreparedDataset, describe_images, load_dataset, resolve_class
from medgan.data.scaling import to_model_input, to_uint8_array
from medgan.errors import MedganError
from medgan.training.checkpoint import check_trained_on, dataset_record
from medgan.training.config import CycleAdversarial, TrainConfig
from medgan.training.distributed import average_gradients
from medgan.training.loss import centred_sign, d_hinge, g_hinge
from medgan.training.snapshots import make_grid

__all__ = [
    "CYCLE_ADVERSARIAL",
    "CycleDomains",
    "CycleLoss",
    "CycleStep",
    "cycle_spec",
    "d_least_squares",
    "g_least_squares",
]

CYCLE_ADVERSARIAL: tuple[str, ...] = get_args(CycleAdversarial)
Augment = Callable[[Tensor], Tensor]
Translator = Callable[[Tensor, int], Tensor]
"""``G(x, domain)``: images translated into ``domain`` (0 = A, 1 = B)."""
Critic = Callable[[Tensor, int], Tensor]
"""``D(x, domain)``: patch logits ``(B, P)`` of ``x`` as a real image of ``domain``."""


# Pure functions of patch logits: any shape in, scalar out.


def d_least_squares(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Least-squares D loss ``0.5 * (mean((r - 1)²) + mean(f²))`` (LSGAN, as CycleGAN uses it)."""
    return 0.5 * ((real_logits - 1.0).square().mean() + fake_logits.square().mean())


def g_least_squares(fake_logits: Tensor) -> Tensor:
    """Least-squares G loss ``mean((f - 1)²)``."""
    return (fake_logits - 1.0).square().mean()


_D_LOSSES = {"lsgan": d_least_squares, "hinge": d_hinge}
_G_LOSSES = {"lsgan": g_least_squares, "hinge": g_hinge}


def _identity(x: Tensor) -> Tensor:
    return x


class CycleLoss:
    """The CycleGAN objective of each phase, for both directions at once.

    Args:
        kind: the adversarial loss, ``"lsgan"`` (least squares, the paper's) or ``"hinge"``.
        cycle_weight: weight of the cycle-consistency L1 ``|G_A(G_B(a)) - a| + |G_B(G_A(b)) - b|``.
        identity_weight: weight of the identity L1 ``|G_A(a) - a| + |G_B(b) - b|`` (0 turns it
            off); it keeps a translator from changing an image that is already in its target domain.

    Example:
        >>> loss = CycleLoss("lsgan", cycle_weight=10.0, identity_weight=5.0)
        >>> g_total, g_stats, (fake_a, fake_b) = loss.generator_loss(G, D, real_a, real_b)
        >>> d_total, d_stats = loss.discriminator_loss(D, real_a, real_b, fake_a, fake_b)
    """

    def __init__(
        self, kind: CycleAdversarial = "lsgan", cycle_weight: float = 10.0, identity_weight: float = 5.0
    ) -> None:
        if kind not in CYCLE_ADVERSARIAL:
            raise ValueError(
                f"unknown cycle adversarial loss {kind!r}; allowed: {', '.join(CYCLE_ADVERSARIAL)}"
            )
        if not (cycle_weight >= 0 and identity_weight >= 0):
            raise ValueError(
                f"cycle_weight and identity_weight must be >= 0, got {cycle_weight}, {identity_weight}"
            )
        self.kind: CycleAdversarial = kind
        self.cycle_weight = float(cycle_weight)
        self.identity_weight = float(identity_weight)

    def __repr__(self) -> str:
        return f"CycleLoss(kind={self.kind!r}, cycle_weight={self.cycle_weight}, identity_weight={self.identity_weight})"

    @staticmethod
    def cycle_loss(
        G: Translator,
        real_a: Tensor,
        real_b: Tensor,
        fake_a: Tensor | None = None,
        fake_b: Tensor | None = None,
    ) -> Tensor:
        """Cycle consistency ``mean|G(G(a, B), A) - a| + mean|G(G(b, A), B) - b|``; 0 for an identity translator.

        ``fake_b = G(a, B)`` and ``fake_a = G(b, A)`` are computed here unless given.
        """
        fake_b = G(real_a, 1) if fake_b is None else fake_b
        fake_a = G(real_b, 0) if fake_a is None else fake_a
        return F.l1_loss(G(fake_b, 0), real_a) + F.l1_loss(G(fake_a, 1), real_b)

    @staticmethod
    def identity_loss(G: Translator, real_a: Tensor, real_b: Tensor) -> Tensor:
        """``mean|G(a, A) - a| + mean|G(b, B) - b|``: how much a translator changes its own domain."""
        return F.l1_loss(G(real_a, 0), real_a) + F.l1_loss(G(real_b, 1), real_b)

    def generator_loss(
        self, G: Translator, D: Critic, real_a: Tensor, real_b: Tensor, augment: Augment | None = None
    ) -> tuple[Tensor, dict[str, Tensor], tuple[Tensor, Tensor]]:
        """The translators' objective of one step.

        Args:
            G: both translators, ``G(x, domain)``.
            D: both discriminators, ``D(x, domain)``; freeze them first (their gradients are not used).
            real_a, real_b: ``(B, C, *spatial)`` real images of each domain in ``[-1, 1]``.
            augment: differentiable augmentation applied before D, or ``None``.

        Returns:
            ``(loss, stats, (fake_a, fake_b))``: the scalar to back-propagate; detached ``g_loss``
            (the total), ``g_adv``, ``g_cycle``, ``g_identity`` and ``g_fake`` (mean patch logit of
            the fakes); and the detached fakes for the D phase.
        """
        aug = augment if augment is not None else _identity
        fake_b, fake_a = G(real_a, 1), G(real_b, 0)
        logits_b, logits_a = D(aug(fake_b), 1), D(aug(fake_a), 0)
        adv = _G_LOSSES[self.kind](logits_b) + _G_LOSSES[self.kind](logits_a)
        cyc = self.cycle_loss(G, real_a, real_b, fake_a, fake_b)
        total = adv + self.cycle_weight * cyc
        idt = torch.zeros((), device=real_a.device)
        if self.identity_weight > 0:
            idt = self.identity_loss(G, real_a, real_b)
            total = total + self.identity_weight * idt
        stats = {
            "g_loss": total.detach(),
            "g_adv": adv.detach(),
            "g_cycle": cyc.detach(),
            "g_identity": idt.detach(),
            "g_fake": 0.5 * (logits_a.detach().mean() + logits_b.detach().mean()),
        }
        return total, stats, (fake_a.detach(), fake_b.detach())

    def discriminator_loss(
        self,
        D: Critic,
        real_a: Tensor,
        real_b: Tensor,
        fake_a: Tensor,
        fake_b: Tensor,
        augment: Augment | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Both discriminators' objective of one step (the sum of the two; their weights are disjoint).

        Returns:
            ``(loss, stats)`` with detached ``d_loss``, ``d_real`` / ``d_fake`` (mean patch logits
            over both domains), ``d_real_sign`` (mean ``sign(D(real))``) and ``d_real_centred_sign``
            (:func:`~medgan.training.loss.centred_sign`), the two ADA statistics.
        """
        aug = augment if augment is not None else _identity
        d_fn = _D_LOSSES[self.kind]
        total = torch.zeros((), device=real_a.device)
        reals, fakes = [], []
        for domain, real, fake in ((0, real_a, fake_a), (1, real_b, fake_b)):
            r, f = D(aug(real), domain), D(aug(fake.detach()), domain)
            total = total + d_fn(r, f)
            reals.append(r.detach())
            fakes.append(f.detach())
        real_all = torch.cat([r.reshape(-1) for r in reals])
        fake_all = torch.cat([f.reshape(-1) for f in fakes])
        stats = {
            "d_loss": total.detach(),
            "d_real": real_all.mean(),
            "d_real_sign": real_all.sign().mean(),
            "d_real_centred_sign": centred_sign(real_all, fake_all),
            "d_fake": fake_all.mean(),
        }
        return total, stats


def cycle_spec(cfg: TrainConfig, info: DatasetInfo) -> dict[str, Any]:
    """The model spec of the cycle family (what ``build_networks`` takes and a checkpoint stores)."""
    assert cfg.cycle is not None
    c, m = cfg.cycle, cfg.model
    common = {
        "channels": info.channels,
        "size": int(info.size[0]),
        "spatial_dims": info.spatial_dims,
        "num_classes": 2,
    }
    g = {
        **common,
        "arch": c.generator,
        "base_channels": m.g_channels,
        "max_channels": m.g_max_channels,
        "n_down": c.g_down,
        "n_blocks": c.g_blocks,
        "binary": m.g_binary,
    }
    d = {**common, "base_channels": m.d_channels, "num_layers": c.d_layers, "norm": c.d_norm}
    return {"family": "cycle", "generator": g, "discriminator": d}


@dataclass
class CycleDomains:
    """The two domains' training images and what identifies them.

    Attributes:
        mode: ``class`` (two classes of one dataset) or ``domain`` (two datasets).
        names: the domains' names, A then B (class names, or dataset names).
        a, b: uint8 ``(N, C, *spatial)`` training images of each domain (on the training device).
        source_class, target_class: the classes of A and B in class mode, else ``None``.
        target: domain B's dataset in domain mode, else ``None``.
    """

    mode: str
    names: list[str]
    a: Tensor
    b: Tensor
    source_class: int | None = None
    target_class: int | None = None
    target: PreparedDataset | None = None

    @classmethod
    def from_config(
        cls, cfg: TrainConfig, ds: PreparedDataset, data_u8: Tensor, labels: Tensor
    ) -> CycleDomains:
        """Split ``ds``'s train split (``data_u8``, ``labels``) into A and B, or load domain B's dataset.

        Raises:
            MedganError: an unknown class, a class without training images, or a second dataset
                whose images differ in shape.
        """
        assert cfg.cycle is not None
        c, info = cfg.cycle, ds.info
        if c.target_data is None:
            assert c.source_class is not None and c.target_class is not None
            picked = []
            for key, name in (("source_class", c.source_class), ("target_class", c.target_class)):
                try:
                    picked.append(resolve_class(name, list(info.class_names)))
                except MedganError as exc:
                    raise MedganError(f"config key 'cycle.{key}': {exc}", ds.path) from None
            src, tgt = picked
            if src == tgt:
                raise MedganError(
                    f"config keys 'cycle.source_class' and 'cycle.target_class' name the same class "
                    f"'{info.class_names[src]}'; a translator needs two classes"
                )
            a, b = data_u8[labels == src], data_u8[labels == tgt]
            for key, k, imgs in (("source_class", src, a), ("target_class", tgt, b)):
                if len(imgs) == 0:
                    raise MedganError(
                        f"config key 'cycle.{key}': class '{info.class_names[k]}' has no training image",
                        ds.path,
                    )
            return cls("class", [info.class_names[src], info.class_names[tgt]], a, b, src, tgt)
        target = load_dataset(c.target_data, size=cfg.data_size)
        mine, theirs = (describe_images(d.channel_first("train").shape[1:]) for d in (ds, target))
        if mine != theirs:
            raise MedganError(
                f"config key 'cycle.target_data': its images are {theirs}, but data's are {mine}; the "
                "two domains must match in dimensionality, channels and size",
                target.path,
            )
        if len(target.labels["train"]) == 0:
            raise MedganError("config key 'cycle.target_data': its train split is empty", target.path)
        names = [info.name, target.info.name]
        if names[0] == names[1]:
            names = [f"{names[0]}_a", f"{names[1]}_b"]
        b = torch.from_numpy(np.ascontiguousarray(target.channel_first("train"))).to(data_u8.device)
        return cls("domain", names, data_u8, b, target=target)

    def record(self) -> dict[str, Any]:
        """The checkpoint's ``cycle`` record: mode, domain names and classes, domain B's dataset."""
        target = None
        if self.target is not None:
            target = {**dataset_record(self.target.info), "class_names": list(self.target.info.class_names)}
        return {
            "mode": self.mode,
            "domains": list(self.names),
            "source_class": self.source_class,
            "target_class": self.target_class,
            "target_dataset": target,
            "train_images": [len(self.a), len(self.b)],
        }


class CycleStep:
    """The cycle family's data and per-step work, as :func:`medgan.training.loop.train` calls it.

    Args:
        cfg: the training config (``model.family: cycle`` with a ``cycle`` section).
        ds: the prepared dataset of ``data``.
        data_u8: its train split on the training device, uint8 ``(N, C, *spatial)``.
        labels: its train labels ``(N,)``.
        device: the training device.
        sampler: the loop's epoch sampler class, ``sampler(n, seed, device).indices(start, count)``.
        rank, world_size: this process's place under torchrun. Each rank takes its own rows of
            the global batch of each domain, and the step averages both phases' gradients over
            the ranks: N processes at batch B train like one process at batch N * B.

    Raises:
        MedganError: bad domains (see :meth:`CycleDomains.from_config`).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        ds: PreparedDataset,
        data_u8: Tensor,
        labels: Tensor,
        device: torch.device,
        sampler: Callable[[int, int, torch.device], Any],
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        assert cfg.cycle is not None
        self.rank, self.world_size = rank, world_size
        c = cfg.cycle
        self.loss = CycleLoss(c.adversarial, cycle_weight=c.cycle_weight, identity_weight=c.identity_weight)
        self.domains = CycleDomains.from_config(cfg, ds, data_u8, labels)
        self.samplers = (
            sampler(len(self.domains.a), cfg.seed, device),
            sampler(len(self.domains.b), cfg.seed + 1, device),
        )
        # Fixed grid sources: a seeded pick of each domain (its own generator: the training RNG is untouched).
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        self.grid_sources = tuple(
            to_model_input(imgs[torch.randperm(len(imgs), generator=gen)[: cfg.grid_columns].to(imgs.device)])
            for imgs in (self.domains.a, self.domains.b)
        )

    def record(self) -> dict[str, Any]:
        """The checkpoint's ``cycle`` record (:meth:`CycleDomains.record`)."""
        return self.domains.record()

    def check_resume(self, ckpt: dict[str, Any]) -> None:
        """Refuse a checkpoint whose domains are not this config's (the loop has checked ``data`` already).

        Raises:
            MedganError: other classes or another second dataset.
        """
        old = ckpt.get("cycle") or {}
        new = self.record()
        same = {k: old.get(k) for k in ("mode", "domains", "source_class", "target_class")} == {
            k: new[k] for k in ("mode", "domains", "source_class", "target_class")
        }
        if not same:
            raise MedganError(
                f"checkpoint translates {' -> '.join(old.get('domains') or ['?'])}, this config "
                f"{' -> '.join(new['domains'])}; resume with the config it was trained with",
                ckpt["path"],
            )
        if self.domains.target is not None:
            record = old.get("target_dataset") or {}
            check_trained_on(
                record,
                list(record.get("class_names") or []),
                self.domains.target.info,
                "cycle.target_data",
                ckpt["path"],
            )

    def batch(self, images_seen: int, batch: int) -> tuple[Tensor, Tensor]:
        """This rank's real batch of each domain at this point of training, floats in [-1, 1] ``(B, C, *spatial)``.

        ``images_seen`` counts both domains and every rank: a step takes ``world_size * batch``
        images of each domain, rank r the r-th ``batch`` of them.
        """
        pos = images_seen // 2 + self.rank * batch
        a = self.domains.a[self.samplers[0].indices(pos, batch)]
        b = self.domains.b[self.samplers[1].indices(pos, batch)]
        return to_model_input(a), to_model_input(b)

    def step(
        self,
        G: nn.Module,
        D: nn.Module,
        opt_G: torch.optim.Optimizer,
        opt_D: torch.optim.Optimizer,
        images_seen: int,
        batch: int,
        augment: Augment | None = None,
        autocast: AbstractContextManager[Any] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """One training step: the G phase of both translators, then the D phase of both discriminators.

        Returns:
            ``(g_loss, d_stats, g_stats)``: the detached G total and each phase's detached stats.
        """
        ctx = autocast if autocast is not None else nullcontext()
        real_a, real_b = self.batch(images_seen, batch)

        # G phase: D frozen, so only the translators get gradients.
        D.requires_grad_(False)
        with ctx:
            g_loss, g_stats, (fake_a, fake_b) = self.loss.generator_loss(G, D, real_a, real_b, augment)
        opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        average_gradients(G)
        opt_G.step()

        # D phase: this step's reals against the fakes just made.
        D.requires_grad_(True)
        with ctx:
            d_loss, d_stats = self.loss.discriminator_loss(D, real_a, real_b, fake_a, fake_b, augment)
        opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        average_gradients(D)
        opt_D.step()
        return g_loss.detach(), d_stats, g_stats

    @torch.no_grad()
    def grid(self, G: nn.Module) -> np.ndarray:
        """Four rows: A's grid sources, them translated to B, B's grid sources, them translated to A."""
        was_training = G.training
        G.eval()
        src_a, src_b = self.grid_sources
        rows = [src_a, G(src_a, 1).float(), src_b, G(src_b, 0).float()]
        G.train(was_training)
        return make_grid([to_uint8_array(r) for r in rows])
