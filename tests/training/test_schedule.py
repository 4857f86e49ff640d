"""The progressive schedule: stage / alpha / batch size per step, boundaries, totals and validation."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from medgan.configio import load_config
from medgan.errors import MedganError
from medgan.training.schedule import (
    Phase,
    ProgressiveSchedule,
    StageBoundary,
    check_stage_resolutions,
    phase_at,
    stage_boundaries,
    stage_resolutions,
    total_steps,
)


@pytest.fixture
def schedule() -> ProgressiveSchedule:
    # Stages 4, 8, 16; batch 10 except 8 at 16², so 16² phases last ceil(1000 / 8) = 125 steps.
    return ProgressiveSchedule(
        target_resolution=16,
        fade_images=1000,
        stable_images=1000,
        batch_size={16: 8},
        default_batch_size=10,
        lr={16: 5e-4},
    )


def test_stage_boundaries_count_steps_per_phase_with_per_stage_batch_sizes(schedule: ProgressiveSchedule) -> None:
    assert stage_resolutions(schedule) == [4, 8, 16]
    assert stage_boundaries(schedule) == [
        StageBoundary(stage=0, fade_start=0, stable_start=0, end=100),  # stage 0: stable only
        StageBoundary(stage=1, fade_start=100, stable_start=200, end=300),
        StageBoundary(stage=2, fade_start=300, stable_start=425, end=550),
    ]
    assert total_steps(schedule) == 550


@pytest.mark.parametrize(
    ("step", "stage", "alpha", "fading", "batch", "images"),
    [
        (0, 0, 1.0, False, 10, 0),  # start: first stage, stable
        (99, 0, 1.0, False, 10, 990),
        (100, 1, 0.0, True, 10, 1000),  # fade of 8² begins at alpha 0
        (150, 1, 0.5, True, 10, 1500),  # mid-fade
        (199, 1, 0.99, True, 10, 1990),  # last fade step
        (200, 1, 1.0, False, 10, 2000),  # end of fade: stable
        (300, 2, 0.0, True, 8, 3000),  # last stage fades in with its own batch size
        (362, 2, 0.496, True, 8, 3496),
        (425, 2, 1.0, False, 8, 4000),
        (549, 2, 1.0, False, 8, 4992),  # last step of the schedule
        (550, 2, 1.0, False, 8, 5000),  # beyond the end: stays at the last stage, alpha 1
        (10_000, 2, 1.0, False, 8, 5000 + 9450 * 8),
    ],
)
def test_phase_at_known_steps(
    schedule: ProgressiveSchedule, step: int, stage: int, alpha: float, fading: bool, batch: int, images: int
) -> None:
    phase = phase_at(step, schedule)
    assert isinstance(phase, Phase)
    assert (phase.stage, phase.resolution, phase.fading, phase.batch_size) == (stage, 4 * 2**stage, fading, batch)
    assert phase.alpha == pytest.approx(alpha)
    assert phase.images_seen == images
    assert phase.stage_start_step == [0, 100, 300][stage]
    assert phase.lr == (5e-4 if stage == 2 else None)


def test_phase_walk_is_monotone_and_consistent_with_total_steps(schedule: ProgressiveSchedule) -> None:
    total = total_steps(schedule)
    phases = [phase_at(s, schedule) for s in range(total + 20)]
    for prev, cur in itertools.pairwise(phases):
        assert cur.images_seen == prev.images_seen + prev.batch_size  # one batch per step
        assert cur.stage >= prev.stage
        if cur.stage == prev.stage:
            assert cur.alpha >= prev.alpha
    assert all(0.0 <= p.alpha <= 1.0 for p in phases)
    assert all(p.alpha == 1.0 for p in phases if not p.fading)
    # The schedule's images per phase are all shown by total_steps (rounded up to whole batches).
    assert phases[total].images_seen == sum(p.batch_size for p in phases[:total])
    assert phases[total].images_seen >= 1000 + 2 * 2 * 1000
    assert phases[total - 1].stage == 2 and not phases[total - 1].fading
    assert phases[total:] == [
        Phase(2, 16, 1.0, False, 8, 5e-4, 5000 + 8 * i, 300) for i in range(20)
    ]


def test_phase_steps_round_up_to_whole_batches() -> None:
    s = ProgressiveSchedule(target_resolution=8, fade_images=1001, stable_images=95, default_batch_size=10)
    assert stage_boundaries(s) == [StageBoundary(0, 0, 0, 10), StageBoundary(1, 10, 111, 121)]
    assert phase_at(10 + 101 // 2, s).alpha == pytest.approx(50 / 101)


def test_single_stage_schedule_has_only_a_stable_phase() -> None:
    s = ProgressiveSchedule(target_resolution=4, stable_images=64, batch_size={4: 32})
    assert total_steps(s) == 2
    assert [phase_at(i, s).stage for i in range(4)] == [0, 0, 0, 0]
    assert not any(phase_at(i, s).fading for i in range(4))


def test_loaded_from_yaml_with_integer_resolution_keys(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "target_resolution: 32\nfade_images: 600\nstable_images: 800\n"
        "batch_size: {4: 64, 8: 64, 16: 32, 32: 16}\nlr: {32: 1.0e-4}\nresolutions: [4, 8, 16, 32]\n"
    )
    s = load_config(ProgressiveSchedule, path)
    assert s.batch_size == {4: 64, 8: 64, 16: 32, 32: 16}
    assert phase_at(total_steps(s) - 1, s) == Phase(3, 32, 1.0, False, 16, 1e-4, 13 * 64 + 23 * 64 + 44 * 32 + 87 * 16, 80)
    path.write_text("target_resolution: 28\nfade_images: 600\nstable_images: 800\n")
    with pytest.raises(MedganError, match="target_resolution 28 is not a power of two; use 32"):
        load_config(ProgressiveSchedule, path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target_resolution": 28}, "target_resolution 28 is not a power of two; use 32"),
        ({"start_resolution": 6}, "start_resolution 6 is not a power of two"),
        ({"start_resolution": 64}, "start_resolution 64 is above target_resolution 32"),
        ({"fade_images": 0}, "fade_images must be positive, got 0"),
        ({"stable_images": -5}, "stable_images must be positive, got -5"),
        ({"default_batch_size": 0}, "default_batch_size must be positive"),
        ({"batch_size": {64: 8}}, r"batch_size has an entry for resolution 64, which is not a stage \(stages: \[4, 8, 16, 32\]\)"),
        ({"batch_size": {16: 0}}, "batch_size for resolution 16 must be positive, got 0"),
        ({"lr": {8: -1.0}}, "lr for resolution 8 must be positive"),
        ({"resolutions": []}, r"'resolutions' is empty"),
        ({"resolutions": [4, 16, 8, 32]}, r"\[4, 16, 8, 32\] is not strictly increasing \(16 then 8\)"),
        ({"resolutions": [4, 8, 8, 16, 32]}, r"is not strictly increasing \(8 then 8\)"),
        ({"resolutions": [4, 8, 12, 32]}, "12 is not a power of two"),
        ({"resolutions": [4, 16, 32]}, "4 then 16; each stage must double the previous resolution"),
        ({"resolutions": [8, 16, 32]}, "starts at 8 but start_resolution is 4"),
        ({"resolutions": [4, 8, 16]}, "ends at 16 but target_resolution is 32"),
    ],
)
def test_validate_rejects_bad_schedules(fields: dict, message: str) -> None:
    s = ProgressiveSchedule(**{"target_resolution": 32, **fields})
    with pytest.raises(MedganError, match=message):
        s.validate()
    with pytest.raises(MedganError, match=message):  # the pure functions refuse it too
        phase_at(0, s)


def test_valid_explicit_stage_list_passes() -> None:
    ProgressiveSchedule(target_resolution=32, resolutions=[4, 8, 16, 32]).validate()
    check_stage_resolutions([8], 8, 8)


def test_negative_step_is_an_error(schedule: ProgressiveSchedule) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        phase_at(-1, schedule)
