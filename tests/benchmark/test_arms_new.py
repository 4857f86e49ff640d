"""The #13 arms: the oversampling control, synthetic pretraining and curated synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.benchmark.arms import adds_synthetic, arm_data, oversample, pretrains
from medgan.benchmark.config import ALL_ARMS, ARMS, EXTRA_ARMS, load_benchmark_config
from medgan.errors import MedganError
from medgan.synth.plan import ClassPlan
from tests.conftest import REPO


def _real(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    images = np.stack(
        [np.full((1, 4, 4), i, np.uint8) for i in range(len(labels))]
    )  # image i holds the value i
    return images, labels


def _pool(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    return np.full((len(labels), 1, 4, 4), 200, np.uint8), labels


@pytest.mark.parametrize("policy", ["balance", "ratio"])
def test_oversample_adds_exactly_what_the_synthetic_arm_adds(policy: str) -> None:
    real = _real([7, 20, 3])
    add = ClassPlan(policy, ratio=2.5).per_class([7, 20, 3])
    synthetic = arm_data("real+synthetic", real, _pool([60, 60, 60]), add)
    control = arm_data("real+oversample", real, None, add, seed=4)
    assert control.extra is not None and synthetic.extra is not None
    assert np.bincount(control.extra[1], minlength=3).tolist() == synthetic.n_synthetic == add
    assert np.bincount(synthetic.extra[1], minlength=3).tolist() == add
    assert control.n_repeated == add and control.n_synthetic == [0, 0, 0] and not control.classical
    assert control.train is real
    # The repeats are real images of their own class, as evenly used as they can be.
    values = control.extra[0][:, 0, 0, 0]
    for c, n in enumerate(add):
        mine = values[control.extra[1] == c]
        members = np.flatnonzero(real[1] == c)
        assert set(mine.tolist()) <= set(members.tolist())
        uses = np.bincount(mine, minlength=len(real[1]))[members]
        assert uses.max() - uses.min() <= 1 and uses.sum() == n


def test_oversample_is_seeded() -> None:
    real = _real([5, 9])
    a, b, c = (oversample(real, [4, 0], seed) for seed in (0, 0, 1))
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="no real training image"):
        oversample(_real([0, 9]), [3, 0], 0)


def test_pretraining_arms_hold_their_synthetic_set_apart() -> None:
    real = _real([4, 6])
    arm = arm_data("synthetic-pretrain+classical", real, _pool([40, 60]), [2, 0], pretrain_counts=[40, 60])
    assert arm.pretrain is not None and np.bincount(arm.pretrain[1]).tolist() == [40, 60]
    assert arm.train is real and arm.extra is None and arm.classical and arm.n_synthetic == [40, 60]
    assert not arm_data(
        "synthetic-pretrain", real, _pool([40, 60]), [2, 0], pretrain_counts=[40, 60]
    ).classical
    with pytest.raises(ValueError, match="pretrain_counts"):
        arm_data("synthetic-pretrain", real, _pool([40, 60]), [2, 0])


def test_curated_arm_adds_at_most_what_passed() -> None:
    real = _real([4, 6])
    kept = _pool([1, 5])  # curation kept one lesion candidate, five normal ones
    arm = arm_data("real+curated-synthetic", real, kept, [2, 0])
    assert arm.n_synthetic == [1, 0] and arm.extra is not None and np.bincount(arm.extra[1]).tolist() == [1]


def test_arm_names_and_kinds() -> None:
    assert (
        ALL_ARMS[0] == "real"
        and ALL_ARMS[-1] == "synthetic-only"
        and set(ALL_ARMS) == set(ARMS) | set(EXTRA_ARMS)
    )
    assert [a for a in ALL_ARMS if adds_synthetic(a)] == [
        "real+synthetic",
        "real+classical+synthetic",
        "real+curated-synthetic",
        "synthetic-pretrain",
        "synthetic-pretrain+classical",
    ]
    assert [a for a in ALL_ARMS if pretrains(a)] == ["synthetic-pretrain", "synthetic-pretrain+classical"]


def test_new_config_keys_are_checked(tmp_path) -> None:
    (tmp_path / "gan.yaml").write_text("steps: 2\n")
    cases = [
        ("fractions: [0.1, 0.1]\n", "without repeats"),
        ("fractions: [0, 1]\n", r"shares in \(0, 1\]"),
        ("pretrain: {share: 1.0}\n", r"pretrain.share' must be in \(0, 1\)"),
        ("curation: {confidence: 1.5}\n", "curation.confidence"),
        ("primary: {arm: real}\n", "primary.arm"),
        ("primary: {baseline: real+mixup}\n", "primary.baseline"),
        ("synthetic: {ratios: [1, 0]}\n", "synthetic.ratios"),
        ("classifier: {min_steps: 0}\n", "classifier.min_steps"),
    ]
    for text, message in cases:
        path = tmp_path / "bench.yaml"
        path.write_text("gan: {train_config: gan.yaml}\n" + text)
        with pytest.raises(MedganError, match=message):
            load_benchmark_config(path)
    path.write_text(
        "gan: {train_config: gan.yaml}\nfractions: [1.0, 0.1]\narms: [real, synthetic-pretrain, real]\n"
    )
    with pytest.raises(MedganError, match="twice"):
        load_benchmark_config(path)
    path.write_text(
        "gan: {train_config: gan.yaml}\nfractions: [1.0, 0.1]\narms: [synthetic-pretrain, real]\n"
    )
    cfg = load_benchmark_config(path)
    assert cfg.fractions == [0.1, 1.0] and cfg.arms == ["real", "synthetic-pretrain"]


def test_the_sweep_configs_load() -> None:
    sweeps = sorted((REPO / "configs" / "benchmark" / "sweeps").glob("*.yaml"))
    assert [p.stem for p in sweeps] == ["adrenalmnist3d", "breastmnist", "pneumoniamnist"]
    for path in sweeps:
        full = load_benchmark_config(path)
        quick = load_benchmark_config(path, quick=True)
        assert full.fractions == [0.05, 0.1, 0.25, 0.5, 1.0]
        assert full.arms == list(ALL_ARMS)
        assert full.seeds_at(0.25) == 10 and full.seeds_at(0.5) == full.seeds
        assert quick.seeds_at(0.1) == 2 and quick.out != full.out


def test_the_ratio_sweep_does_not_rerun_an_arm_at_its_own_ratio() -> None:
    from medgan.benchmark.plan import JobPlan, parse_arm_label, sweep_fractions

    cfg = load_benchmark_config(REPO / "configs/benchmark/sweeps/pneumoniamnist.yaml")
    assert cfg.pretrain.ratio == 5 and cfg.synthetic.ratios == [0.5, 1, 2, 5]
    assert sweep_fractions(cfg) == [0.05, 0.1, 0.25]  # ratio_upto: 0.25

    def ratios(arm: str) -> set[float]:
        jobs = JobPlan().sweep(cfg, {f: arm for f in cfg.fractions})
        n = sum(cfg.seeds_at(f) for f in sweep_fractions(cfg))
        assert len(jobs) == n * len({parse_arm_label(a).ratio for a, _ in jobs})
        return {parse_arm_label(a).ratio for a, _ in jobs}

    # synthetic-pretrain-x5 would be synthetic-pretrain run for run (5 x the real count either way).
    assert ratios("synthetic-pretrain") == ratios("synthetic-pretrain+classical") == {0.5, 1, 2}
    assert ratios("real+curated-synthetic") == {0.5, 1, 2, 5}  # policy balance: every ratio differs from it
    cfg.synthetic.policy, cfg.synthetic.ratio = "ratio", 2.0
    assert ratios("real+synthetic") == {0.5, 1, 5}


def test_the_ratio_sweep_can_stop_at_a_fraction() -> None:
    from medgan.benchmark.plan import JobPlan, parse_arm_label, sweep_fractions

    cfg = load_benchmark_config(REPO / "configs/benchmark/sweeps/breastmnist.yaml")
    assert cfg.synthetic.ratio_upto is None and sweep_fractions(cfg) == cfg.fractions
    cfg.synthetic.ratio_upto = 0.25
    assert sweep_fractions(cfg) == [0.05, 0.1, 0.25]
    jobs = JobPlan().sweep(cfg, {f: "real+curated-synthetic" for f in cfg.fractions})
    assert {parse_arm_label(a).fraction for a, _ in jobs} == {0.05, 0.1, 0.25}
    assert len(jobs) == 3 * cfg.seeds_at(0.05) * len(cfg.synthetic.ratios)
    # The 3D sweep is sized for 2 CPU cores: 10 seeds at the scarce fractions, 5 above, the ratio sweep at 5 and 10 %.
    adrenal = load_benchmark_config(REPO / "configs/benchmark/sweeps/adrenalmnist3d.yaml")
    assert adrenal.fractions == [0.05, 0.1, 0.25, 0.5, 1.0] and adrenal.synthetic.ratios == [0.5, 1, 2, 5]
    assert [adrenal.seeds_at(f) for f in adrenal.fractions] == [10, 10, 10, 5, 5]
    jobs = JobPlan().sweep(adrenal, {f: "synthetic-pretrain+classical" for f in adrenal.fractions})
    assert {parse_arm_label(a).fraction for a, _ in jobs} == {0.05, 0.1} and len(jobs) == 2 * 10 * 3  # x5 is the arm
    with pytest.raises(MedganError, match="ratio_upto"):
        load_benchmark_config(REPO / "configs/benchmark/sweeps/breastmnist.yaml", overrides=["synthetic.ratio_upto=1.5"])
