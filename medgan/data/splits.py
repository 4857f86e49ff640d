"""Patient-grouped, label-stratified train / val / test splits of the sources of ``medgan preprocess``.

Every group (a patient, or a source on its own) lands in exactly one split, so no patient is in two
splits; a manifest may fix the splits itself (:func:`check_manifest_splits` checks it keeps that rule).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medgan.errors import MedganError

__all__ = ["check_manifest_splits", "split_sources"]


def _needed(frac: float, n: int) -> int:
    return 0 if frac <= 0 else max(1, math.floor(frac * n + 0.5))


def split_sources(
    labels: Sequence[int],
    groups: Sequence[str],
    class_names: Sequence[str],
    val_frac: float = 0.1,
    test_frac: float = 0.2,
    seed: int = 0,
    grouped_by_patient: bool = False,
) -> list[str]:
    """Assign each source to ``train``, ``val`` or ``test``, stratified by label and grouped.

    Every group (a patient, or a source on its own) goes to exactly one split, so no patient is in
    two splits. Groups are stratified by their majority label: per class, ``round(frac * n)``
    groups (at least one when ``frac > 0``) go to test and to val, the rest to train. The draw
    depends only on ``seed`` and the group names, not on the order of the inputs.

    Args:
        labels: label index per source.
        groups: group key per source (sources of one patient share a key).
        class_names: names by label index, for messages.
        val_frac: fraction of each class's groups for validation.
        test_frac: fraction of each class's groups for test.
        seed: seed of the draw.
        grouped_by_patient: only changes the wording of errors ("patients" rather than "images").

    Raises:
        MedganError: when a class has too few groups to give every split at least one.
    """
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_class: dict[int, list[str]] = defaultdict(list)
    for g in sorted(members):
        votes = Counter(labels[i] for i in members[g])
        top = max(votes.values())
        by_class[min(c for c, v in votes.items() if v == top)].append(g)

    rng = np.random.default_rng(seed)
    unit = "patients (images are grouped by patient ID)" if grouped_by_patient else "images"
    need = 1 + (val_frac > 0) + (test_frac > 0)
    group_split: dict[str, str] = {}
    for c, name in enumerate(class_names):
        gs = by_class.get(c, [])
        n_test, n_val = _needed(test_frac, len(gs)), _needed(val_frac, len(gs))
        if len(gs) - n_test - n_val < 1:
            raise MedganError(
                f"class '{name}' has {len(gs)} {unit}; at least {need} are needed to give each split one "
                "(add data, or lower --val-frac / --test-frac)"
            )
        for rank, j in enumerate(rng.permutation(len(gs))):
            group_split[gs[j]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return [group_split[g] for g in groups]


def check_manifest_splits(splits: Sequence[str], groups: Sequence[str], csv_hint: Path | None) -> None:
    """Refuse splits fixed by a manifest that put one patient in two splits.

    Args:
        splits: the split of each source.
        groups: group key per source, ``patient:<id>`` or ``source:<i>``.
        csv_hint: the manifest, named in the error.

    Raises:
        MedganError: naming the patient and the two splits.
    """
    seen: dict[str, str] = {}
    for split, g in zip(splits, groups, strict=True):
        other = seen.setdefault(g, split)
        if other != split:
            who = g.split(":", 1)[1]
            raise MedganError(
                f"patient '{who}' is in both {other} and {split}; a patient's images must stay in one split",
                csv_hint,
            )
