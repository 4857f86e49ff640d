"""Checkpoint -> synthetic samples. Inference only: G_ema in eval mode, no autograd, in batches.

Reproducibility: sample ``i`` of class ``c`` under seed ``s`` is a pure function of
``(checkpoint, s, c, i)``, whatever ``n`` and the batch size are. Latents come in blocks of
:data:`LATENT_BLOCK`: block ``b`` (samples ``b·L … b·L + L - 1``) is drawn on the CPU from its own
generator, seeded by ``(s, c, b)``, and the generator network always runs on slices of a whole
block (the last block padded) of a size fixed by the model (:func:`forward_block`). So every
sample is computed by the same kernels, with the same shapes, at the same position in its slice:
the output bytes are identical for any ``--batch-size`` and any ``--n`` that includes the sample. (CPU and GPU kernels round differently, so the bytes are
only promised for the same device type, library versions and thread count.)

Example:
    >>> gen = load_generator("runs/cgan_breastmnist", device="cpu")
    >>> batches = iter_samples(gen, gen.class_names.index("malignant"), 100, seed=0, batch_size=32)
    >>> next(batches).shape   # uint8 (B, C, H, W)
    (32, 1, 28, 28)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.data.dataset import DatasetInfo
from medgan.data.scaling import to_uint8
from medgan.device import resolve_device
from medgan.errors import MedganError
from medgan.networks import build_networks, canonical_family
from medgan.networks.style import LatentGenerator
from medgan.training.checkpoint import check_trained_on, load_checkpoint, sampling_checkpoint, trained_on

__all__ = [
    "LATENT_BLOCK",
    "LoadedGenerator",
    "check_sampling_args",
    "forward_block",
    "iter_samples",
    "keep_largest_component",
    "load_generator",
    "sample_block",
    "sample_classes",
    "sample_latents",
    "truncation_for",
]

# Latents are drawn in blocks of this many samples, each block from its own seeded generator.
LATENT_BLOCK = 64
# Output voxels per forward pass of the generator, at most: bounds the memory for large volumes.
_FORWARD_VOXELS = 1 << 22


def forward_block(size: Sequence[int]) -> int:
    """Samples per forward pass of the generator for samples of spatial ``size``.

    A divisor of :data:`LATENT_BLOCK` that depends on the model only, never on the batch size:
    matrix and convolution kernels may round differently for another batch shape, and a 1e-7
    difference is enough to move a pixel across a uint8 rounding boundary. 64 for images up to
    256², 16 for 64³ volumes.
    """
    voxels = math.prod(int(s) for s in size)
    block = LATENT_BLOCK
    while block > 1 and block * voxels > _FORWARD_VOXELS:
        block //= 2
    return block


@dataclass
class LoadedGenerator:
    """G_ema rebuilt from a checkpoint, with what callers need to know about it.

    Args:
        G: the generator, in eval mode, without gradients, on ``device``.
        class_names: the training data's class names (by label index).
        num_classes: classes the generator is conditioned on; 0 for an unconditional model.
        z_dim: latent size.
        spatial_dims: 2 (images) or 3 (volumes).
        channels: 1 (grey) or 3 (RGB).
        size: spatial shape of a sample, ``[H, W]`` or ``[D, H, W]``.
        spacing: pixel / voxel spacing of the training data in mm, when it recorded one.
        checkpoint_sha256: hex sha256 of the checkpoint file (verified against its sidecar).
        checkpoint_path: the checkpoint file that was loaded.
        dataset: the checkpoint's record of its training data (name, sha256, ...).
        config: the training config stored in the checkpoint.
        family: ``residual`` or ``progressive``.
        device: where ``G`` runs.
        keep_largest_component: every sample keeps only its largest connected component
            (``model.g_keep_largest``, for binary masks of one organ; :func:`keep_largest_component`).
    """

    G: nn.Module
    class_names: list[str]
    num_classes: int
    z_dim: int
    spatial_dims: int
    channels: int
    size: list[int]
    spacing: list[float] | None
    checkpoint_sha256: str
    checkpoint_path: str
    dataset: dict[str, Any]
    config: dict[str, Any]
    family: str
    device: torch.device
    keep_largest_component: bool = False

    def trained_on(self, info: DatasetInfo) -> bool:
        """Whether this generator was trained on the dataset ``info`` describes.

        The one rule for "was this checkpoint trained on this data" (augment ``--balance``,
        ``evaluate`` on a checkpoint, the benchmark's ``--checkpoint``; training's resume applies
        the same :func:`medgan.training.checkpoint.trained_on` to the raw checkpoint).
        """
        return trained_on(self.dataset, self.class_names, info)

    def check_trained_on(self, info: DatasetInfo, what: str = "the data", path: str | Path | None = None) -> None:
        """Raise unless :meth:`trained_on`; ``what`` names the refused data in the message (``--data``)."""
        check_trained_on(self.dataset, self.class_names, info, what, path or self.checkpoint_path)


def load_generator(checkpoint: str | Path | dict[str, Any], device: str = "auto") -> LoadedGenerator:
    """Verify and load a checkpoint (file or run folder) and rebuild its G_ema.

    Args:
        checkpoint: a checkpoint file, a run folder (the checkpoint training selected, else its latest:
            :func:`medgan.training.checkpoint.sampling_checkpoint`), or a checkpoint that
            :func:`medgan.training.checkpoint.load_checkpoint` has loaded already.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        MedganError: a missing, corrupt or altered checkpoint; one that lacks the generator or
            whose weights do not fit its model; a progressive run that has not yet reached its
            target resolution; a translator (``model.family: cycle``: see :mod:`medgan.synth.translate`).
    """

    dev = resolve_device(device)
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(sampling_checkpoint(checkpoint),
                                                                            map_location="cpu")
    if (ckpt.get("model") or {}).get("family") == "cycle":
        raise MedganError("this checkpoint is a translator (model.family cycle): it turns images of one domain into "
                          "the other instead of sampling; use medgan translate, or medgan augment, which translates "
                          "training images", ckpt["path"])
    missing = [k for k in ("G_ema", "model", "dataset", "class_names", "config") if k not in ckpt]
    if missing:
        raise MedganError(f"checkpoint lacks {', '.join(missing)}; it cannot be sampled from", ckpt["path"])
    spec = ckpt["model"]
    try:
        G, _ = build_networks(spec)
        G.load_state_dict(ckpt["G_ema"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise MedganError(f"the checkpoint's generator cannot be rebuilt ({exc.__class__.__name__})",
                          ckpt["path"]) from None
    if spec["family"] == "progressive":
        # Imported here because networks/ loads the progressive family only when it is asked for.
        from medgan.networks.progressive import ProgressiveGenerator

        assert isinstance(G, ProgressiveGenerator)
        stages = G.num_stages
        stage, alpha = int(ckpt.get("stage", stages - 1)), float(ckpt.get("alpha", 1.0))
        if stage < stages - 1 or alpha < 1.0:
            raise MedganError(
                f"this progressive checkpoint is at stage {stage + 1} of {stages} (fade-in alpha {alpha:.2f}); "
                "it does not make full-size images yet: train it to its last stage before sampling", ckpt["path"])
    G.eval().requires_grad_(False).to(dev)
    g = spec["generator"]
    ds = ckpt["dataset"]
    return LoadedGenerator(
        G=G, class_names=[str(c) for c in ckpt["class_names"]], num_classes=int(g["num_classes"]),
        z_dim=int(g["z_dim"]), spatial_dims=int(ds["spatial_dims"]), channels=int(ds["channels"]),
        size=[int(s) for s in ds["size"]], spacing=ds.get("spacing"), checkpoint_sha256=ckpt["sha256"],
        checkpoint_path=ckpt["path"], dataset=dict(ds), config=ckpt["config"], family=canonical_family(spec["family"]),
        device=dev, keep_largest_component=bool((ckpt["config"].get("model") or {}).get("g_keep_largest", False)),
    )


def keep_largest_component(u8: np.ndarray) -> np.ndarray:
    """Binary uint8 masks ``(N, C, *spatial)`` (0 / 255) with only each mask's largest connected component.

    Connectivity is full (8 neighbours in 2D, 26 in 3D), scipy's ``ndimage.label``: the cleanup a
    segmentation pipeline applies to a single-organ mask (nnU-Net's post-processing), here to
    remove the stray voxels a generator scatters around the organ. An empty mask stays empty.
    """
    from scipy import ndimage

    out = np.zeros_like(u8)
    for idx in np.ndindex(*u8.shape[:2]):
        mask = u8[idx] > 127
        labels, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
        if n <= 1:
            out[idx] = np.where(mask, 255, 0)
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        out[idx] = np.where(labels == sizes.argmax(), 255, 0)
    return out


def check_sampling_args(*, n: int | None = None, seed: int = 0, batch_size: int = 1,
                        truncation: float | None = None) -> None:
    """The one check of sampling arguments (the CLI calls it before loading a checkpoint).

    Raises:
        MedganError: a non-positive ``n`` or ``batch_size``, a negative ``seed``, or a
            ``truncation`` that is not a positive number; the message names the CLI option.
    """
    if n is not None and n <= 0:
        raise MedganError(f"--n must be a positive number of samples, got {n}")
    if seed < 0:
        raise MedganError(f"--seed must be a non-negative integer, got {seed}")
    if batch_size <= 0:
        raise MedganError(f"--batch-size must be positive, got {batch_size}")
    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise MedganError(f"--truncation must be a positive number, got {truncation}")


def _latent_block(z_dim: int, seed: int, class_index: int, block: int, truncation: float | None) -> torch.Tensor:
    """Latents ``(LATENT_BLOCK, z_dim)`` of samples ``block·L …``: a pure function of the arguments."""
    # SeedSequence mixes the three integers into a well-spread 63-bit seed (no collisions between
    # nearby (seed, class, block) triples, unlike seed * K + class).
    key = int(np.random.SeedSequence([seed, class_index, block]).generate_state(1, np.uint64)[0] >> np.uint64(1))
    gen = torch.Generator().manual_seed(key)
    z = torch.empty(LATENT_BLOCK, z_dim)
    if truncation is None:
        return z.normal_(generator=gen)
    # The normal truncated to [-t, t] (inverse-CDF sampling): what resampling outside it would give.
    return torch.nn.init.trunc_normal_(z, 0.0, 1.0, -truncation, truncation, generator=gen)


def sample_latents(z_dim: int, n: int, *, seed: int = 0, class_index: int = 0,
                   truncation: float | None = None) -> torch.Tensor:
    """The latents ``(n, z_dim)`` of samples ``0 … n-1`` of one class, as :func:`iter_samples` draws them.

    Args:
        z_dim: latent size.
        n: how many.
        seed: the run's seed (non-negative).
        class_index: the class (0 for an unconditional model).
        truncation: draw from the standard normal truncated to ``[-t, t]``; ``None`` = off.
    """
    check_sampling_args(seed=seed, truncation=truncation)
    blocks = [_latent_block(z_dim, seed, class_index, b, truncation) for b in range(math.ceil(n / LATENT_BLOCK))]
    return torch.cat(blocks)[:n] if blocks else torch.empty(0, z_dim)


def _class_of(gen: LoadedGenerator, class_index: int | None) -> int:
    """The class index the latents are keyed by (0 for an unconditional model); refuse a class the model lacks."""
    if gen.num_classes > 0 and (class_index is None or not 0 <= class_index < gen.num_classes):
        raise MedganError(f"class index {class_index} is not one of this model's {gen.num_classes} classes")
    return 0 if class_index is None else int(class_index)


def truncation_for(G: torch.nn.Module, truncation: float | None) -> tuple[float | None, dict[str, float]]:
    """The one meaning of ``--truncation T`` for every family: ``(z threshold, generator kwargs)``.

    Fidelity over diversity, smaller = more typical. A generator that exposes its ``w``
    (:class:`~medgan.networks.style.LatentGenerator`, the style family) takes ``T`` as ψ and moves
    ``w`` towards its class's mean (``G(z, y, truncation=ψ)``, z untruncated); ψ must lie in (0, 1],
    1 = off. Every other generator draws ``z`` from the normal truncated to ``[-T, T]``.

    Raises:
        MedganError: ψ above 1 for a style-family generator.
    """
    if truncation is None:
        return None, {}
    if isinstance(G, LatentGenerator):
        if truncation > 1:
            raise MedganError(f"--truncation is ψ for a style-family generator: a number in (0, 1] (1 = off, smaller "
                              f"is nearer the class's mean image), got {truncation}")
        return None, {"truncation": float(truncation)}
    return truncation, {}


def _block_samples(gen: LoadedGenerator, c: int, block: int, seed: int, truncation: float | None,
                   keep: int) -> np.ndarray:
    """uint8 ``(keep, C, *spatial)``: the first ``keep`` samples of latent block ``block`` of class ``c``."""
    fb = forward_block(gen.size)
    y = torch.full((fb,), c, dtype=torch.long, device=gen.device) if gen.num_classes > 0 else None
    z_truncation, g_kw = truncation_for(gen.G, truncation)
    z = _latent_block(gen.z_dim, seed, c, block, z_truncation).to(gen.device)
    parts = []
    for start in range(0, keep, fb):  # every forward pass has the same shape (fb, z_dim)
        x = gen.G(z[start : start + fb], y, **g_kw).float()  # (fb, C, *spatial) in [-1, 1]
        parts.append(to_uint8(x).cpu().numpy())
    u8 = (parts[0] if len(parts) == 1 else np.concatenate(parts))[:keep]
    return keep_largest_component(u8) if gen.keep_largest_component else u8


@torch.inference_mode()
def sample_block(gen: LoadedGenerator, class_index: int | None, block: int, *, seed: int = 0,
                 truncation: float | None = None, keep: int = LATENT_BLOCK) -> np.ndarray:
    """Samples ``block·L … block·L + keep - 1`` of one class (``L`` = :data:`LATENT_BLOCK`), uint8 ``(keep, C, *spatial)``.

    The same bytes as :func:`iter_samples` gives at those positions, without computing the blocks
    before it: random access for :class:`medgan.api.SyntheticDataset`.

    Raises:
        MedganError: a negative seed, a bad truncation, a class the model lacks, or a ``block`` /
            ``keep`` out of range.
    """
    check_sampling_args(seed=seed, truncation=truncation)
    if block < 0 or not 0 < keep <= LATENT_BLOCK:
        raise MedganError(f"block {block} / keep {keep} out of range (block >= 0, 0 < keep <= {LATENT_BLOCK})")
    return _block_samples(gen, _class_of(gen, class_index), block, seed, truncation, keep)


@torch.inference_mode()
def iter_samples(gen: LoadedGenerator, class_index: int | None, n: int, *, seed: int = 0, batch_size: int = 256,
                 truncation: float | None = None) -> Iterator[np.ndarray]:
    """Yield uint8 batches ``(b, C, *spatial)`` of samples ``0 … n-1`` of one class.

    Args:
        gen: from :func:`load_generator`.
        class_index: the class to condition on; ``None`` only for unconditional models.
        n: how many samples.
        seed: fixes the latents, hence the output bytes (non-negative).
        batch_size: samples per yielded batch (does not change the output; see the module doc).
        truncation: fidelity over diversity (:func:`truncation_for`): latents from the normal
            truncated to ``[-t, t]``, or for the style family ψ towards the class's mean ``w``;
            ``None`` = off.

    Raises:
        MedganError: a non-positive ``n`` or ``batch_size``, a negative seed, a bad truncation, or
            a class that the model does not have.
    """
    check_sampling_args(n=n, seed=seed, batch_size=batch_size, truncation=truncation)
    c = _class_of(gen, class_index)
    pending: list[np.ndarray] = []  # computed samples not yet yielded, oldest first
    held = 0
    n_blocks = math.ceil(n / LATENT_BLOCK)
    for block in range(n_blocks):
        keep = min(LATENT_BLOCK, n - block * LATENT_BLOCK)  # the last block is padded
        pending.append(_block_samples(gen, c, block, seed, truncation, keep))
        held += keep
        while held >= batch_size or (held and block == n_blocks - 1):
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            out, rest = joined[:batch_size], joined[batch_size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
            yield out


def sample_counts(gen: LoadedGenerator, counts: Sequence[int], *, seed: int = 0,
                  truncation: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` samples of class ``c`` (classes with a count of 0 get none), class ``c`` under seed
    ``seed + 1000 c``: ``(images u8 (N, C, *spatial), labels (N,))``.

    How a synthetic set is drawn to match a real split's class counts (``medgan select``,
    ``benchmarks/gan_quality.py``), so that every measurement of a checkpoint sees the same draws.
    """
    images, labels = [], []
    for c, n in enumerate(counts):
        if n == 0:
            continue
        for batch in iter_samples(gen, c, int(n), seed=seed + 1000 * c, truncation=truncation):
            images.append(batch)
            labels.append(np.full(len(batch), c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def sample_classes(checkpoint: str | Path | LoadedGenerator, n_per_class: int, seed: int = 0, device: str = "auto",
                   batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n_per_class`` samples of every class: ``(images u8 (N, C, *spatial), labels (N,), class_names)``.

    ``checkpoint`` is a checkpoint file, a run folder, or a generator already loaded (then ``device``
    is not used).
    """
    gen = checkpoint if isinstance(checkpoint, LoadedGenerator) else load_generator(checkpoint, device)
    classes = range(gen.num_classes) if gen.num_classes > 0 else [None]
    images, labels = [], []
    for c in classes:
        for batch in iter_samples(gen, c, n_per_class, seed=seed, batch_size=batch_size):
            images.append(batch)
            labels.append(np.full(len(batch), 0 if c is None else c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels), gen.class_names
