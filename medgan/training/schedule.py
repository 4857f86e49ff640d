"""The progressive-growing schedule: stage, fade-in ``alpha`` and batch size as pure functions of the step.

Training shows ``stable_images`` images at the first stage, then for each later stage
``fade_images`` images while its new layers fade in (``alpha`` rising linearly from 0 to 1) and
``stable_images`` images with the stage fully on (``alpha = 1``). Each stage has its own batch size,
so a phase lasts ``ceil(images / batch_size)`` steps. After the last phase the schedule stays at the
last stage with ``alpha = 1``, so a loop that trains past :func:`total_steps` keeps working.

Stage ``k`` works at resolution ``start_resolution * 2**k``, the same numbering as
:mod:`medgan.networks.progressive`, so ``G(z, y, phase.stage, phase.alpha)`` is the whole contract.
``target_resolution`` is the networks' *canvas* (a power of two): a 28-pixel dataset trains to 32,
and the generator crops its final output to 28. A size that is not a power of two is an error
whose message names the canvas to use, rather than being rounded silently.

Everything here is plain Python (no torch), so the schedule is cheap to evaluate every step.

Example:
    >>> s = ProgressiveSchedule(target_resolution=16, fade_images=1000, stable_images=1000,
    ...                         batch_size={16: 8}, default_batch_size=10)
    >>> phase_at(150, s)  # stage 1 (8²) is stable for steps 200..299, so 150 is mid-fade
    Phase(stage=1, resolution=8, alpha=0.5, fading=True, batch_size=10, lr=None, images_seen=1500, stage_start_step=100)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from medgan.errors import MedganError

__all__ = [
    "Phase",
    "ProgressiveSchedule",
    "StageBoundary",
    "check_stage_resolutions",
    "phase_at",
    "stage_boundaries",
    "stage_resolutions",
    "total_steps",
]


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _canvas(n: int) -> int:
    return 1 << (max(n, 1) - 1).bit_length()


def check_stage_resolutions(resolutions: list[int], start_resolution: int, target_resolution: int) -> None:
    """Check an explicit list of stage resolutions against the networks' growth rule.

    The list must be non-empty, made of powers of two, strictly increasing by a factor of two per
    stage (the networks double their resolution each stage), start at ``start_resolution`` and end
    at ``target_resolution``.

    Raises:
        MedganError: naming the first problem found.
    """
    key = "progressive schedule 'resolutions'"
    if not resolutions:
        raise MedganError(f"{key} is empty: list the stage resolutions, e.g. [4, 8, 16, 32]")
    bad = [r for r in resolutions if not _is_power_of_two(r)]
    if bad:
        raise MedganError(f"{key} {resolutions}: {bad[0]} is not a power of two")
    for prev, cur in itertools.pairwise(resolutions):
        if cur <= prev:
            raise MedganError(f"{key} {resolutions} is not strictly increasing ({prev} then {cur})")
    for prev, cur in itertools.pairwise(resolutions):
        if cur != 2 * prev:
            raise MedganError(
                f"{key} {resolutions}: {prev} then {cur}; each stage must double the previous resolution"
            )
    if resolutions[0] != start_resolution:
        raise MedganError(
            f"{key} {resolutions} starts at {resolutions[0]} but start_resolution is {start_resolution}"
        )
    if resolutions[-1] != target_resolution:
        raise MedganError(
            f"{key} {resolutions} ends at {resolutions[-1]} but target_resolution is {target_resolution}"
        )


@dataclass
class ProgressiveSchedule:
    """How long each stage of a progressive GAN trains, and with which batch size (YAML section).

    Args:
        target_resolution: the last stage's resolution: the networks' canvas, a power of two (32 for
            28-pixel MedMNIST images, 64 for 64-pixel ones).
        start_resolution: the first stage's resolution (a power of two).
        fade_images: images shown while each new stage fades in (every stage but the first).
        stable_images: images shown in each stage's stable phase (the first stage has only this).
        batch_size: batch size per resolution, e.g. ``{4: 64, 8: 64, 16: 32, 32: 16}``; a
            resolution not listed uses ``default_batch_size``.
        default_batch_size: batch size of the resolutions that ``batch_size`` does not list.
        lr: optional learning rate per resolution; a resolution not listed (or ``lr: null``) gives
            ``Phase.lr = None``, meaning the training config's own learning rate.
        resolutions: optionally, the stage list spelled out (``[4, 8, 16, 32]``); it must agree with
            ``start_resolution`` and ``target_resolution``.

    Example (YAML):
        progressive:
          target_resolution: 32
          fade_images: 30000
          stable_images: 30000
          batch_size: {4: 64, 8: 64, 16: 32, 32: 16}
    """

    target_resolution: int
    start_resolution: int = 4
    fade_images: int = 30_000
    stable_images: int = 30_000
    batch_size: dict[int, int] = field(default_factory=dict)
    default_batch_size: int = 16
    lr: dict[int, float] | None = None
    resolutions: list[int] | None = None

    def validate(self) -> None:
        """Check the schedule; called by the config loader after reading the YAML.

        Raises:
            MedganError: a resolution that is not a power of two, start above target, a
                non-positive image count, batch size or learning rate, a per-resolution entry
                for a resolution that is not a stage, or a bad ``resolutions`` list.
        """
        for name in ("start_resolution", "target_resolution"):
            value = getattr(self, name)
            if not _is_power_of_two(value):
                hint = f"; use {_canvas(value)}, the canvas that a {value}-pixel image is generated at" if value > 0 else ""
                raise MedganError(f"progressive schedule {name} {value} is not a power of two{hint}")
        if self.start_resolution > self.target_resolution:
            raise MedganError(
                f"progressive schedule start_resolution {self.start_resolution} is above "
                f"target_resolution {self.target_resolution}"
            )
        for name in ("fade_images", "stable_images", "default_batch_size"):
            if getattr(self, name) <= 0:
                raise MedganError(f"progressive schedule {name} must be positive, got {getattr(self, name)}")
        stages = stage_resolutions(self)
        for name, table in (("batch_size", self.batch_size), ("lr", self.lr or {})):
            for res, value in table.items():
                if res not in stages:
                    raise MedganError(
                        f"progressive schedule {name} has an entry for resolution {res}, which is not a stage "
                        f"(stages: {stages})"
                    )
                if value <= 0:
                    raise MedganError(f"progressive schedule {name} for resolution {res} must be positive, got {value}")
        if self.resolutions is not None:
            check_stage_resolutions(self.resolutions, self.start_resolution, self.target_resolution)


@dataclass(frozen=True)
class Phase:
    """Where training is at one step.

    Args:
        stage: network stage (resolution ``start_resolution * 2**stage``).
        resolution: the stage's resolution.
        alpha: fade-in weight of the stage, in ``[0, 1]`` (1 outside fades).
        fading: whether the step is in the stage's fade-in.
        batch_size: the stage's batch size.
        lr: the stage's learning rate, or ``None`` for the training config's own.
        images_seen: images shown before this step.
        stage_start_step: the first step of this stage (its fade-in, or 0 for stage 0).
    """

    stage: int
    resolution: int
    alpha: float
    fading: bool
    batch_size: int
    lr: float | None
    images_seen: int
    stage_start_step: int


class StageBoundary(NamedTuple):
    """Steps of one stage: fade-in is ``[fade_start, stable_start)``, stable is ``[stable_start, end)``."""

    stage: int
    fade_start: int
    stable_start: int
    end: int


def stage_resolutions(schedule: ProgressiveSchedule) -> list[int]:
    """The resolution of every stage, from ``start_resolution`` to ``target_resolution``."""
    out = [schedule.start_resolution]
    while out[-1] < schedule.target_resolution:
        out.append(out[-1] * 2)
    return out


def _batch_size(schedule: ProgressiveSchedule, resolution: int) -> int:
    return schedule.batch_size.get(resolution, schedule.default_batch_size)


def _lr(schedule: ProgressiveSchedule, resolution: int) -> float | None:
    return None if schedule.lr is None else schedule.lr.get(resolution)


def stage_boundaries(schedule: ProgressiveSchedule) -> list[StageBoundary]:
    """Step ranges of every stage, in order; stage 0 has an empty fade (``fade_start == stable_start``).

    Raises:
        MedganError: when the schedule is invalid (see :meth:`ProgressiveSchedule.validate`).
    """
    schedule.validate()
    out: list[StageBoundary] = []
    step = 0
    for stage, res in enumerate(stage_resolutions(schedule)):
        batch = _batch_size(schedule, res)
        fade_steps = 0 if stage == 0 else math.ceil(schedule.fade_images / batch)
        stable_steps = math.ceil(schedule.stable_images / batch)
        out.append(StageBoundary(stage, step, step + fade_steps, step + fade_steps + stable_steps))
        step += fade_steps + stable_steps
    return out


def total_steps(schedule: ProgressiveSchedule) -> int:
    """Steps needed to finish every phase, the last stage's stable phase included."""
    return stage_boundaries(schedule)[-1].end


def phase_at(step: int, schedule: ProgressiveSchedule) -> Phase:
    """The stage, fade-in ``alpha``, batch size and images seen at ``step`` (0-based).

    During a fade of ``n`` steps starting at ``s``, ``alpha = (step - s) / n``: 0 at the first fade
    step, rising linearly, and 1 from the first stable step on. Steps at or past
    :func:`total_steps` stay at the last stage with ``alpha = 1``.

    Raises:
        ValueError: ``step`` is negative.
        MedganError: the schedule is invalid.
    """
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    resolutions = stage_resolutions(schedule)
    bounds = stage_boundaries(schedule)
    current = next((b for b in bounds if step < b.end), bounds[-1])  # past the end: the last stage
    before = sum((b.end - b.fade_start) * _batch_size(schedule, resolutions[b.stage]) for b in bounds[: current.stage])
    res = resolutions[current.stage]
    batch = _batch_size(schedule, res)
    fading = step < current.stable_start
    return Phase(
        stage=current.stage,
        resolution=res,
        alpha=(step - current.fade_start) / (current.stable_start - current.fade_start) if fading else 1.0,
        fading=fading,
        batch_size=batch,
        lr=_lr(schedule, res),
        images_seen=before + (step - current.fade_start) * batch,
        stage_start_step=current.fade_start,
    )
