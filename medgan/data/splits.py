"""Patient-grouped, label-stratified train / val / test splits of the sources of ``medgan preprocess``.

Every group (a patient, or a source on its own) lands in exactly one split, so no patient is in two
splits; a manifest may fix the splits itself (:func:`check_manifest_splits` checks it keeps that rule).

Splits made elsewhere may not keep it: :func:`near_duplicate_groups` and :func:`twins_in` find the
same scan saved twice, within a split or across two (BreastMNIST's test split has a near-duplicate
in its train split for 36 % of its images).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import connected_components
from sklearn.neighbors import NearestNeighbors

from medgan.errors import MedganError

__all__ = ["TWIN_RMS", "check_manifest_splits", "near_duplicate_groups", "split_sources", "twins_in"]

TWIN_RMS = 10.0
"""Two images whose root-mean-square difference is at most this many grey levels (of 255) are taken
for the same scan. On BreastMNIST such pairs lie 1-10 apart (the same frame, or a small shift in
gain) and two different scans 20-40 apart, with almost none in between."""


def near_duplicate_groups(images: np.ndarray, rms: float = TWIN_RMS) -> np.ndarray:
    """A group label per image: images linked by a chain of near-duplicates share one.

    Two images are near-duplicates when their root-mean-square difference is at most ``rms`` grey
    levels (uint8 scale): the same scan saved twice, or with a small shift in gain. A dataset with
    many of them breaks the independence that cross-validation assumes.

    Args:
        images: uint8 ``(N, C, *spatial)``.
        rms: the largest root-mean-square difference, in grey levels, that makes two images twins.

    Returns:
        ``(N,)`` int labels; an image without a twin has a group of its own.
    """
    flat = np.asarray(images).reshape(len(images), -1).astype(np.float32)
    graph = NearestNeighbors(radius=rms * math.sqrt(flat.shape[1]), algorithm="brute").fit(flat)
    return connected_components(graph.radius_neighbors_graph(flat), directed=False)[1]


def twins_in(images: np.ndarray, reference: np.ndarray, rms: float = TWIN_RMS) -> np.ndarray:
    """For each image, whether ``reference`` holds a near-duplicate of it (within ``rms`` grey levels RMS).

    Args:
        images: uint8 ``(N, C, *spatial)``, e.g. a test split.
        reference: uint8, the same image shape, e.g. the train split.
        rms: the largest root-mean-square difference, in grey levels, that makes two images twins.

    Returns:
        ``(N,)`` bool.
    """
    flat = lambda x: np.asarray(x).reshape(len(x), -1).astype(np.float32)  # noqa: E731
    ref = flat(reference)
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(ref)
    dist = nn.kneighbors(flat(images), return_distance=True)[0][:, 0]
    return dist <= rms * math.sqrt(ref.shape[1])


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
        MedganError: when a class has too few groups to give every split at least one; the message
            counts every group with an image of the class, and names the patients that also have
            images under another class (they are drawn with their majority class).
    """
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    by_class: dict[int, list[str]] = defaultdict(list)
    holders: dict[int, set[str]] = defaultdict(set)  # every group with an image of the class
    for g in sorted(members):
        for i in members[g]:
            holders[labels[i]].add(g)
        votes = Counter(labels[i] for i in members[g])
        top = max(votes.values())
        by_class[min(c for c, v in votes.items() if v == top)].append(g)

    rng = np.random.default_rng(seed)
    unit = "patients (images are grouped by patient ID)" if grouped_by_patient else "images"
    need = 1 + (val_frac > 0) + (test_frac > 0)
    group_split: dict[str, str] = {}
    for c in range(len(class_names)):
        gs = by_class.get(c, [])
        n_test, n_val = _needed(test_frac, len(gs)), _needed(val_frac, len(gs))
        if len(gs) - n_test - n_val < 1:
            raise MedganError(_too_few(c, class_names, gs, holders[c], members, labels, unit, need))
        for rank, j in enumerate(rng.permutation(len(gs))):
            group_split[gs[j]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return [group_split[g] for g in groups]


def _too_few(c: int, class_names: Sequence[str], drawn: list[str], holders: set[str],
             members: dict[str, list[int]], labels: Sequence[int], unit: str, need: int) -> str:
    """Why class ``c`` cannot give every split a group: its true count, and the shared patients."""
    name = class_names[c]
    text = f"class '{name}' has {len(holders)} {unit}; at least {need} are needed to give each split one"
    shared = sorted(holders - set(drawn))
    if not shared:
        return text + " (add data, or lower --val-frac / --test-frac)"
    described = []
    for g in shared[:3]:
        others = sorted({labels[i] for i in members[g]} - {c})
        classes = " and ".join(f"'{class_names[o]}'" for o in others)
        described.append(f"patient '{g.split(':', 1)[1]}' is under both '{name}' and {classes}")
    more = f" (and {len(shared) - 3} more)" if len(shared) > 3 else ""
    return (
        f"{text}, but {'; '.join(described)}{more}; a patient is drawn into one split with the class of most "
        f"of its images, which leaves '{name}' {len(drawn)} (check the patient IDs, give each patient's "
        "images one class, or add data)"
    )


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
