"""``BenchmarkConfig``: the keys of ``configs/benchmark/*.yaml``, checked on load.

A benchmark config names the data and the class the user cares about (``target_class``), the arms
to compare, the classifier and its budget (the same for every arm), the classical augmentation, the
synthetic-data policy, the GAN (a training config trained once on the train split, or a checkpoint)
and the statistics. A ``quick:`` section holds overrides that ``--quick`` applies on top: fewer
seeds, fewer epochs, a shorter GAN schedule.

Example:
    >>> cfg = load_benchmark_config("configs/benchmark/default.yaml", quick=True)
    >>> cfg.seeds, cfg.classifier.epochs
    (2, 20)
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medgan.configio import (
    bounded,
    check_fields,
    config_to_dict,
    load_config,
    packaged_configs,
    parse_overrides,
    to_dataclass,
)
from medgan.errors import MedganError
from medgan.training.loggers import LoggerName

__all__ = [
    "ARMS",
    "BenchmarkConfig",
    "BootstrapConfig",
    "ClassicalConfig",
    "ClassifierConfig",
    "FidelityConfig",
    "GanConfig",
    "SyntheticConfig",
    "default_config_path",
    "identity_hash",
    "load_benchmark_config",
]

ARMS: tuple[str, ...] = ("real", "real+classical", "real+synthetic", "real+classical+synthetic", "synthetic-only")
"""Every arm, in report order. They differ only in their training data."""

# Fields that change how fast a benchmark runs, not what it computes (or, for ``seeds``, only how
# many runs it has): an output folder made with other values is resumed, not refused.
_VOLATILE = ("seeds", "jobs", "threads", "device", "out", "quick", "logger")


@dataclass
class ClassifierConfig:
    """The classifier every arm trains, with the same budget.

    Args:
        arch: ``cnn`` (small CNN for 28² / 28³), ``resnet10``, ``resnet18`` or ``densenet121``
            (needs at least 32 px: use the 64-pixel files); 2D or 3D follows the data.
        kwargs: passed to :func:`medgan.networks.classifier.build_classifier`.
        epochs: passes over each arm's training set; the epoch with the best validation balanced
            accuracy is kept.
        batch_size: images per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        class_weighting: ``balanced`` weights the loss by inverse class frequency of each arm's
            own training labels (the strong real-only baseline); ``none`` for a plain loss.
    """

    arch: Literal["cnn", "resnet10", "resnet18", "densenet121"] = "cnn"
    kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = bounded(40, ge=1)
    batch_size: int = bounded(64, ge=1)
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(1e-4, ge=0)
    class_weighting: Literal["balanced", "none"] = "balanced"


@dataclass
class ClassicalConfig:
    """Classical augmentation of the ``+classical`` arms, batched on the training device.

    The operations follow MONAI's ``RandFlip``, ``RandRotate90``, ``RandAffine``,
    ``RandGaussianNoise`` and ``RandAdjustContrast``, applied per image with these probabilities.

    Args:
        flip_prob: probability of a flip along each axis in ``flip_axes``.
        flip_axes: spatial axes to flip (0 = rows; for 2D, 1 = left-right).
        rotate90_prob: probability of a random multiple of 90° in the plane of the last two axes
            (off by default: ultrasound and X-ray have a canonical orientation).
        affine_prob: probability of a random affine transform.
        rotate_degrees: affine rotation range, ``±`` degrees (about every axis in 3D).
        scale: affine zoom range, ``1 ± scale``.
        translate: affine shift range, ``±`` fraction of the image size.
        noise_prob: probability of additive Gaussian noise.
        noise_std: the noise standard deviation is drawn from ``[0, noise_std]`` (in ``[-1, 1]`` units).
        contrast_prob: probability of a gamma contrast change.
        gamma: the gamma range ``[low, high]``.
    """

    flip_prob: float = bounded(0.5, ge=0, le=1)
    flip_axes: list[int] = bounded(default_factory=lambda: [1], ge=0)
    rotate90_prob: float = bounded(0.0, ge=0, le=1)
    affine_prob: float = bounded(0.5, ge=0, le=1)
    rotate_degrees: float = bounded(10.0, ge=0, le=180)
    scale: float = bounded(0.1, ge=0, lt=1)
    translate: float = bounded(0.05, ge=0, le=1)
    noise_prob: float = bounded(0.2, ge=0, le=1)
    noise_std: float = bounded(0.05, ge=0)
    contrast_prob: float = bounded(0.2, ge=0, le=1)
    gamma: list[float] = bounded(default_factory=lambda: [0.8, 1.25], gt=0)


@dataclass
class SyntheticConfig:
    """How many GAN samples the ``+synthetic`` arms add, and how they are drawn.

    Args:
        policy: ``balance`` fills every class up to the majority class; ``ratio`` adds
            ``ratio`` × the real count of every class.
        ratio: the multiplier for ``policy: ratio``.
        truncation: latent truncation when sampling (``null`` = off).

    ``synthetic-only`` trains on as many synthetic images per class as the real training split
    has. Samples are drawn per seed: seed ``k`` draws with sampling seed ``k``, the same images for
    every arm of that seed.
    """

    policy: Literal["balance", "ratio"] = "balance"
    ratio: float = bounded(1.0, gt=0)
    truncation: float | None = bounded(None, gt=0)


@dataclass
class GanConfig:
    """The GAN that makes the synthetic data, trained once per benchmark on the train split only.

    Args:
        train_config: a ``configs/train/*.yaml`` file; a relative path is looked up beside the
            benchmark config first, then in the working directory, then in medgan's own
            ``configs/`` (:func:`medgan.configio.packaged_configs`), so the default works from
            any directory.
        steps: override the training config's steps (``null`` keeps them).
        overrides: more ``key=value`` overrides of the training config (as ``medgan train --set``).
        checkpoint: use this checkpoint instead of training (``--checkpoint`` on the command line).
    """

    train_config: str = "train/cgan_breastmnist.yaml"
    steps: int | None = bounded(None, gt=0)
    overrides: list[str] = field(default_factory=list)
    checkpoint: str | None = None


@dataclass
class BootstrapConfig:
    """The bootstrap behind every confidence interval and the paired comparisons.

    Args:
        resamples: bootstrap resamples.
        confidence: the interval's coverage.
        seed: seeds the resampling.
        resample_seeds: also resample the training seeds in every replicate (two-level
            bootstrap), so the interval includes seed-to-seed variation, not only test-set sampling.
    """

    resamples: int = bounded(2000, ge=1)
    confidence: float = bounded(0.95, gt=0.5, lt=1)
    seed: int = bounded(0, ge=0)
    resample_seeds: bool = True


@dataclass
class FidelityConfig:
    """The GAN's fidelity and memorisation numbers in the report (``medgan.metrics.evaluate``).

    Args:
        enabled: compute them (needs a GAN; skipped when no arm uses synthetic data).
        n_per_class: synthetic samples per class that are measured.
        seed: the sampling seed of that set.
        arch: the domain feature net's architecture.
        feature_epochs: its training epochs when it is not cached yet.
    """

    enabled: bool = True
    n_per_class: int = bounded(500, ge=1)
    seed: int = bounded(12345, ge=0)
    arch: Literal["cnn", "resnet10", "resnet18", "densenet121"] = "cnn"
    feature_epochs: int = bounded(20, ge=1)


@dataclass
class BenchmarkConfig:
    """Everything ``medgan benchmark`` needs. YAML keys are exactly these fields.

    Args:
        data: a registry name (``breastmnist``), an npz or a prepared folder; its official
            train / val / test splits are used as they are.
        data_size: MedMNIST size for a registry name (28, 64, ...).
        target_class: the class whose recall, precision and F1 are reported first (name or index).
        arms: which arms to run (``real`` is required: every other arm is compared with it).
        seeds: training seeds per arm (seeds ``0 .. seeds-1``; the same for every arm).
        out: default output folder.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        jobs: (arm, seed) runs in parallel processes.
        threads: torch CPU threads in a single process (0 = torch's default); with ``jobs > 1``
            each process gets ``cores // jobs``.
        logger: ``tensorboard`` also writes TensorBoard event files: the GAN's training in
            ``OUT/gan/tensorboard`` and every classifier's curves in ``OUT/tensorboard`` (needs
            ``pip install "medgan[tensorboard]"``); ``jsonl``: none.
        classifier: the classifier and its budget.
        classical: the classical augmentation.
        synthetic: the synthetic-data policy.
        gan: the GAN.
        bootstrap: the statistics.
        fidelity: the GAN's fidelity numbers.
        quick: overrides applied by ``--quick`` (nested mappings or dotted keys).
    """

    data: str = "breastmnist"
    data_size: int | None = bounded(None, gt=0)
    target_class: str = "malignant"
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    seeds: int = bounded(5, ge=1)
    out: str = "runs/benchmark/breastmnist"
    device: str = "auto"
    jobs: int = bounded(1, ge=1)
    threads: int = bounded(0, ge=0)
    logger: LoggerName = "jsonl"
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    classical: ClassicalConfig = field(default_factory=ClassicalConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    quick: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Every field in its range (declared beside the field, :func:`medgan.configio.check_fields`),
        then the cross-field checks; raises :class:`MedganError` naming the key at fault."""
        check_fields(self)
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise MedganError(f"config key 'arms': unknown arm '{bad[0]}' (allowed: {', '.join(ARMS)})")
        if "real" not in self.arms:
            raise MedganError("config key 'arms' must include 'real': every other arm is compared with it")
        if len(set(self.arms)) != len(self.arms):
            raise MedganError("config key 'arms' lists an arm twice")
        self.arms = [a for a in ARMS if a in self.arms]
        c = self.classical
        if len(c.gamma) != 2 or not 0 < c.gamma[0] <= c.gamma[1]:
            raise MedganError(f"config key 'classical.gamma' must be [low, high] with 0 < low <= high, got {c.gamma}")
        if self.quick:
            # The quick section must itself give a valid config: check it now, not at --quick time.
            apply_quick(self)


def _merge(base: dict[str, Any], overrides: dict[str, Any], where: str = "quick") -> dict[str, Any]:
    """Deep-merge ``overrides`` (nested mappings or dotted keys) into a copy of ``base``."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        node, parts = out, str(key).split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise MedganError(f"config key '{where}.{key}': '{part}' is not a section")
            node = node[part]
        last = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict) and node[last]:
            node[last] = _merge(node[last], value, f"{where}.{key}")
        else:
            node[last] = copy.deepcopy(value)
    return out


def apply_quick(cfg: BenchmarkConfig) -> BenchmarkConfig:
    """The config with its ``quick:`` overrides applied (and an empty ``quick`` section)."""
    base = config_to_dict(cfg)
    quick = base.pop("quick") or {}
    if "quick" in quick:
        raise MedganError("config key 'quick' cannot contain another 'quick' section")
    return to_dataclass(BenchmarkConfig, _merge(base, quick), prefix="")


def default_config_path() -> Path:
    """medgan's own ``configs/benchmark/default.yaml``, whatever the working directory."""
    return packaged_configs() / "benchmark" / "default.yaml"


def load_benchmark_config(
    path: str | Path | None = None, *, quick: bool = False, overrides: Sequence[str] | dict[str, Any] = ()
) -> BenchmarkConfig:
    """Load a benchmark config, resolve ``gan.train_config`` and apply ``--quick`` and overrides.

    Args:
        path: a YAML file (default :func:`default_config_path`).
        quick: apply the file's ``quick:`` section.
        overrides: ``key=value`` strings (``--set``) or a mapping, applied last.

    Raises:
        MedganError: unknown keys, wrong types, an invalid ``quick`` section, a missing training config.
    """
    path = Path(path) if path is not None else default_config_path()
    cfg = load_config(BenchmarkConfig, path)
    if quick:
        cfg = apply_quick(cfg)
    parsed = parse_overrides(overrides) if not isinstance(overrides, dict) else dict(overrides)
    if parsed:
        cfg = to_dataclass(BenchmarkConfig, _merge(config_to_dict(cfg), parsed, "--set"))
    if cfg.gan.checkpoint is None:
        cfg.gan.train_config = str(_find_train_config(cfg.gan.train_config, path.parent))
    return cfg


def _find_train_config(name: str, beside: Path) -> Path:
    p = Path(name).expanduser()
    packaged = packaged_configs()
    for cand in ([p] if p.is_absolute() else [beside / p, p, packaged / p]):
        if cand.is_file():
            return cand.resolve()
    where = "" if p.is_absolute() else f" (looked beside {beside}, in the working directory, in {packaged})"
    raise MedganError(f"config key 'gan.train_config': training config '{name}' not found{where}")


def identity(cfg: BenchmarkConfig) -> dict[str, Any]:
    """The fields that decide what a benchmark computes (not how fast, nor how many seeds)."""
    data = config_to_dict(cfg)
    for key in _VOLATILE:
        data.pop(key, None)
    return data


def identity_hash(record: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able identity record."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
