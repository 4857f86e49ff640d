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
    "ALL_ARMS",
    "ARMS",
    "EXTRA_ARMS",
    "BenchmarkConfig",
    "BootstrapConfig",
    "ClassicalConfig",
    "ClassifierConfig",
    "CurationConfig",
    "FidelityConfig",
    "GanConfig",
    "PretrainConfig",
    "PrimaryConfig",
    "SyntheticConfig",
    "default_config_path",
    "identity_hash",
    "load_benchmark_config",
]

ARMS: tuple[str, ...] = ("real", "real+classical", "real+synthetic", "real+classical+synthetic", "synthetic-only")
"""The arms a benchmark runs by default, in report order. They differ only in their training data."""

EXTRA_ARMS: tuple[str, ...] = ("real+oversample", "real+curated-synthetic", "synthetic-pretrain",
                               "synthetic-pretrain+classical")
"""Arms a config may add (#13): the duplication control, curated samples, synthetic pretraining."""

ALL_ARMS: tuple[str, ...] = (*(a for a in ARMS if a != "synthetic-only"), *EXTRA_ARMS, "synthetic-only")
"""Every arm a config may name, in report order (``synthetic-only``, the odd one, last)."""

# Fields that change how fast a benchmark runs, not what it computes (or, for ``seeds``, only how
# many runs it has): an output folder made with other values is resumed, not refused. ``fidelity``
# is the report's measurement of the GAN, which no run reads; the report keeps it apart, under its
# own key (``OUT/fidelity*.json``), so new settings measure again without touching a run.
# ``arms`` is here because a run's result does not depend on which other arms the benchmark has: every arm of a
# seed takes the first images of each class from the same seeded synthetic pool (sample j of a class does not
# depend on how many are drawn), so adding an arm to a finished folder only adds its runs.
_VOLATILE = ("seeds", "jobs", "threads", "device", "out", "quick", "logger", "fractions", "seeds_small", "small_fraction",
             "fidelity", "arms")
# Nested keys that only add runs (the ratio sweep's variants) without changing any other run.
_VOLATILE_NESTED = (("synthetic", "ratios"), ("synthetic", "ratio_arm"), ("synthetic", "ratio_upto"))


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
        steps: optimisation steps of every arm at every fraction (``null``: ``max(min_steps,
            epochs × steps per epoch of the real arm on the whole train split)``); validation runs
            ``epochs`` times, every ``ceil(steps / epochs)`` steps, and picks the checkpoint.
        min_steps: the floor of the budget when ``steps`` is ``null``, so that a small training
            set still gets enough steps to converge.
        budget: what ``epochs`` counts passes over when ``steps`` is ``null``: ``whole``, the
            whole train split, so every fraction of a sweep gets the steps of the full data (more
            passes over a smaller subset); ``fraction``, the real subset of each fraction, so
            smaller fractions take fewer steps (never fewer than ``min_steps``). Either way every
            arm of a fraction takes the same steps; ``fraction`` makes the many seeds of the small
            fractions cheap, for datasets whose full split makes ``whole`` too slow.
    """

    arch: Literal["cnn", "resnet10", "resnet18", "densenet121"] = "cnn"
    kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = bounded(40, ge=1)
    batch_size: int = bounded(64, ge=1)
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(1e-4, ge=0)
    class_weighting: Literal["balanced", "none"] = "balanced"
    steps: int | None = None
    min_steps: int = 200
    budget: Literal["whole", "fraction"] = "whole"


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
        ratios: the ratio sweep: for each ``r``, one more arm, ``<ratio_arm>-x<r>``, that adds
            ``r`` × the real count of every class (or pretrains on ``r`` × for a pretraining arm).
        ratio_arm: the arm the sweep varies; ``best`` = the primary arm chosen on validation at
            each fraction (see :class:`PrimaryConfig`).
        ratio_upto: run the ratio sweep only at fractions up to this share (``null``: at every
            fraction). The question it answers is one of scarce data, and its runs at the largest
            fractions are the sweep's most expensive.

    ``synthetic-only`` trains on as many synthetic images per class as the real training split
    has. Samples are drawn per seed: seed ``k`` draws with sampling seed ``k``, the same images for
    every arm of that seed.
    """

    policy: Literal["balance", "ratio"] = "balance"
    ratio: float = bounded(1.0, gt=0)
    truncation: float | None = bounded(None, gt=0)
    ratios: list[float] = field(default_factory=list)
    ratio_arm: str = "best"
    ratio_upto: float | None = bounded(None, gt=0, le=1)


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
class PretrainConfig:
    """The ``synthetic-pretrain`` arms: pretrain on synthetic images, then fine-tune on the real ones.

    Args:
        ratio: synthetic images per class for pretraining, as a multiple of the real count.
        share: the share of the step budget spent pretraining; fine-tuning gets the rest, so the
            arm takes as many steps in all as every other arm. Validation picks the checkpoint of
            each phase; the fine-tuning phase starts from the pretraining phase's pick, with a fresh
            optimiser, and its own pick is the arm's model.
    """

    ratio: float = 10.0
    share: float = 0.5


@dataclass
class CurationConfig:
    """The ``real+curated-synthetic`` arm (the rule is :mod:`medgan.metrics.curation`).

    A synthetic image is kept when a classifier trained on the real training images (at that
    fraction) ranks its intended class first with a probability of at least ``confidence``, and it is
    not a likely copy of a real training image (the memorisation audit in that classifier's feature
    space, against the val split).

    Args:
        confidence: the least probability of the intended class (``q``).
        percentile: the memorisation audit's reference percentile (a likely copy is closer to a
            training image than this share of real val images are).
        candidates: synthetic candidates drawn per image the arm adds (the arm adds as many images
            per class as ``real+synthetic``, or all that pass when fewer do).
        seed: seeds the curation classifier (one per fraction and subset).
    """

    confidence: float = 0.8
    percentile: float = 1.0
    candidates: float = 3.0
    seed: int = 0


@dataclass
class PrimaryConfig:
    """The comparison the verdict speaks of, declared before the results are seen.

    Args:
        arm: ``best`` (the synthetic arm with the best mean validation balanced accuracy at each
            fraction, among those that train on real and synthetic images) or an arm's name.
        baseline: what it is compared with (``real`` when this arm did not run).
        metric: ``target_recall`` (the target class's recall) or ``balanced_accuracy``.
        power: the power of the detectable-lift line in the report.

    Every other comparison is secondary, with Holm-adjusted p-values.
    """

    arm: str = "best"
    baseline: str = "real+classical"
    metric: Literal["target_recall", "balanced_accuracy"] = "target_recall"
    power: float = 0.8


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
        c2st_folds: cross-validation folds of the classifier two-sample test.
        c2st_min_steps: its optimisation steps per fold, at least. Lower it only for smoke tests:
            an under-trained two-sample CNN scores a bad generator near 0.5.
    """

    enabled: bool = True
    n_per_class: int = bounded(500, ge=1)
    seed: int = bounded(12345, ge=0)
    arch: Literal["cnn", "resnet10", "resnet18", "densenet121"] = "cnn"
    feature_epochs: int = bounded(20, ge=1)
    c2st_folds: int = bounded(5, ge=2)
    c2st_min_steps: int = bounded(300, ge=0)


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
        fractions: the data-scarcity sweep: shares of the real train split (``[1.0]``: all of it).
            Each is a stratified subset, nested across fractions; val and test stay whole.
        subsets: distinct seeded subsets per fraction; seed ``k`` uses subset ``k % subsets``, and
            every subset gets its own GAN (``1``: one subset and one GAN per fraction).
        min_per_class: the fewest real images of a class that a subset keeps (fewer if the class
            has fewer).
        seeds_small: seeds at fractions up to ``small_fraction``, where runs are cheap (``null``: ``seeds``).
        small_fraction: see ``seeds_small``.
        pretrain: the ``synthetic-pretrain`` arms.
        curation: the ``real+curated-synthetic`` arm.
        primary: the pre-declared primary comparison.
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
    fractions: list[float] = field(default_factory=lambda: [1.0])
    subsets: int = 1
    min_per_class: int = 2
    seeds_small: int | None = None
    small_fraction: float = 0.25
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    curation: CurationConfig = field(default_factory=CurationConfig)
    primary: PrimaryConfig = field(default_factory=PrimaryConfig)

    def seeds_at(self, fraction: float) -> int:
        """Seeds at ``fraction``: ``seeds_small`` up to ``small_fraction``, else ``seeds``."""
        if self.seeds_small is not None and fraction <= self.small_fraction:
            return self.seeds_small
        return self.seeds

    def validate(self) -> None:
        """Every field in its range (declared beside the field, :func:`medgan.configio.check_fields`),
        then the cross-field checks; raises :class:`MedganError` naming the key at fault."""
        check_fields(self)
        bad = [a for a in self.arms if a not in ALL_ARMS]
        if bad:
            raise MedganError(f"config key 'arms': unknown arm '{bad[0]}' (allowed: {', '.join(ALL_ARMS)})")
        if "real" not in self.arms:
            raise MedganError("config key 'arms' must include 'real': every other arm is compared with it")
        if len(set(self.arms)) != len(self.arms):
            raise MedganError("config key 'arms' lists an arm twice")
        self.arms = [a for a in ALL_ARMS if a in self.arms]
        _check_sweep(self)
        c = self.classical
        if len(c.gamma) != 2 or not 0 < c.gamma[0] <= c.gamma[1]:
            raise MedganError(f"config key 'classical.gamma' must be [low, high] with 0 < low <= high, got {c.gamma}")
        if self.quick:
            # The quick section must itself give a valid config: check it now, not at --quick time.
            apply_quick(self)


def _check_sweep(cfg: BenchmarkConfig) -> None:
    """The #13 keys: fractions, subsets, the step budget, the new arms, the primary comparison."""

    def refuse(key: str, rule: str, value: Any) -> None:
        raise MedganError(f"config key '{key}' must be {rule}, got {value}")

    if not cfg.fractions or any(not 0 < f <= 1 for f in cfg.fractions):
        refuse("fractions", "a list of shares in (0, 1]", cfg.fractions)
    if len(set(cfg.fractions)) != len(cfg.fractions):
        refuse("fractions", "without repeats", cfg.fractions)
    cfg.fractions = sorted(float(f) for f in cfg.fractions)
    for key, value in (("subsets", cfg.subsets), ("min_per_class", cfg.min_per_class),
                       ("classifier.min_steps", cfg.classifier.min_steps)):
        if value < 1:
            refuse(key, "at least 1", value)
    for key, opt in (("seeds_small", cfg.seeds_small), ("classifier.steps", cfg.classifier.steps)):
        if opt is not None and opt < 1:
            refuse(key, "at least 1 or null", opt)
    if not 0 < cfg.small_fraction <= 1:
        refuse("small_fraction", "in (0, 1]", cfg.small_fraction)
    if not cfg.pretrain.ratio > 0:
        refuse("pretrain.ratio", "positive", cfg.pretrain.ratio)
    if not 0 < cfg.pretrain.share < 1:
        refuse("pretrain.share", "in (0, 1)", cfg.pretrain.share)
    if not 0 <= cfg.curation.confidence <= 1:
        refuse("curation.confidence", "in [0, 1]", cfg.curation.confidence)
    if not 0 < cfg.curation.percentile < 100:
        refuse("curation.percentile", "in (0, 100)", cfg.curation.percentile)
    if not cfg.curation.candidates >= 1:
        refuse("curation.candidates", "at least 1", cfg.curation.candidates)
    if any(not r > 0 for r in cfg.synthetic.ratios) or len(set(cfg.synthetic.ratios)) != len(cfg.synthetic.ratios):
        refuse("synthetic.ratios", "positive multiples without repeats", cfg.synthetic.ratios)
    mixing = [a for a in cfg.arms if "synthetic" in a and a != "synthetic-only"]
    for key, arm in (("primary.arm", cfg.primary.arm), ("synthetic.ratio_arm", cfg.synthetic.ratio_arm)):
        if arm != "best" and arm not in mixing:
            refuse(key, f"'best' or one of this benchmark's synthetic arms ({', '.join(mixing) or 'none'})", arm)
    if cfg.primary.baseline not in ALL_ARMS:
        refuse("primary.baseline", f"an arm ({', '.join(ALL_ARMS)})", cfg.primary.baseline)
    if not 0.5 <= cfg.primary.power < 1:
        refuse("primary.power", "in [0.5, 1)", cfg.primary.power)


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
    return without_volatile(config_to_dict(cfg))


def without_volatile(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config record (as :func:`medgan.configio.config_to_dict` gives, or as an output
    folder recorded it) without the fields that do not change what a benchmark computes."""
    data = copy.deepcopy(data)
    for key in _VOLATILE:
        data.pop(key, None)
    for section, key in _VOLATILE_NESTED:
        data.get(section, {}).pop(key, None)
    return data


def identity_hash(record: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able identity record."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
