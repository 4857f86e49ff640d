"""medgan.data.splits: patient-grouped, label-stratified, deterministic splits."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from medgan.data.splits import check_manifest_splits, near_duplicate_groups, split_sources, twins_in
from medgan.errors import MedganError
from tests.conftest import real_npz


def test_split_is_grouped_stratified_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    groups = [f"p{int(g)}" for g in rng.integers(0, 30, 200)]
    labels = [int(g[1:]) % 3 for g in groups]  # a patient's images share a label
    splits = split_sources(labels, groups, ["a", "b", "c"], 0.1, 0.2, seed=5)
    assert splits == split_sources(labels, groups, ["a", "b", "c"], 0.1, 0.2, seed=5)
    # Reordering the inputs does not change any patient's split.
    order = rng.permutation(200)
    shuffled = split_sources([labels[i] for i in order], [groups[i] for i in order], ["a", "b", "c"], 0.1, 0.2, 5)
    assert {groups[i]: s for i, s in zip(order, shuffled, strict=True)} == dict(zip(groups, splits, strict=True))
    of_patient = defaultdict(set)
    for g, s in zip(groups, splits, strict=True):
        of_patient[g].add(s)
    assert all(len(s) == 1 for s in of_patient.values())
    for c in range(3):  # 10 patients per class: 2 test, 1 val, 7 train
        per = _class_split_counts(groups, labels, splits, c)
        assert per == {"train": 7, "val": 1, "test": 2}
    assert splits != split_sources(labels, groups, ["a", "b", "c"], 0.1, 0.2, seed=6)


def _class_split_counts(groups: list[str], labels: list[int], splits: list[str], c: int) -> dict[str, int]:
    seen = {g: s for g, lab, s in zip(groups, labels, splits, strict=True) if lab == c}
    out = {"train": 0, "val": 0, "test": 0}
    for s in seen.values():
        out[s] += 1
    return out


def test_split_too_few() -> None:
    with pytest.raises(MedganError, match="class 'rare' has 2 images; at least 3 are needed"):
        split_sources([0, 0, 0, 1, 1], ["a", "b", "c", "d", "e"], ["common", "rare"])
    assert split_sources([0, 0, 1, 1], ["a", "b", "c", "d"], ["x", "y"], 0.0, 0.5, 0).count("train") == 2


def test_manifest_splits_keep_a_patient_in_one_split() -> None:
    check_manifest_splits(["train", "train", "test"], ["patient:A", "patient:A", "source:2"], None)
    with pytest.raises(MedganError, match="patient 'A' is in both train and val"):
        check_manifest_splits(["train", "val"], ["patient:A", "patient:A"], None)


def test_near_duplicates_within_and_across_splits() -> None:
    """Twins: within 10 grey levels RMS, chained; ``twins_in`` asks the same of one set against another."""
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, size=(4, 1, 8, 8)).astype(float)
    shifted = base + 6  # 6 grey levels from base: a twin
    images = np.concatenate([base, shifted]).astype(np.uint8)
    groups = near_duplicate_groups(images)
    assert all(groups[i] == groups[i + 4] for i in range(4)) and len(set(groups)) == 4
    assert len(set(near_duplicate_groups(images, rms=5.0))) == 8
    far = (base[:2] + 30).astype(np.uint8)
    assert twins_in(np.concatenate([shifted, far]).astype(np.uint8), base.astype(np.uint8)).tolist() == \
        [True] * 4 + [False] * 2


def test_breastmnist_test_split_holds_twins_of_its_train_split() -> None:
    """The measured leak the benchmark report warns about: about a third of BreastMNIST's test images."""
    with np.load(real_npz("breastmnist.npz")) as d:
        share = twins_in(d["test_images"][:, None], d["train_images"][:, None]).mean()
    assert 0.3 <= share <= 0.42, share
