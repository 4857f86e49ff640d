"""`medgan.synth.plan.ClassPlan`: the one per-class count rule of augment and the benchmark."""

from __future__ import annotations

import pytest

from medgan.synth.plan import ClassPlan


def test_balance_and_ratio() -> None:
    assert ClassPlan("balance").per_class([147, 399]) == [252, 0]
    assert ClassPlan("ratio", ratio=0.5).per_class([147, 399]) == [74, 200]  # round(73.5) is 74 (to even)
    assert ClassPlan("balance", target=40).counts(2, [12, 36]) == {0: 28, 1: 4}
    assert ClassPlan("balance", target=40, classes=(1,)).counts(2, [12, 36]) == {1: 4}
    assert ClassPlan("balance", target=10).counts(2, [12, 36]) == {}  # nothing lacks: nothing to draw


def test_an_empty_class_gets_nothing_under_balance_and_ratio() -> None:
    # The GAN has never seen a class with no real training image; its "samples" of it are noise.
    assert ClassPlan("balance").per_class([10, 0, 30]) == [20, 0, 0]
    assert ClassPlan("balance", target=50).counts(3, [10, 0, 30]) == {0: 40, 2: 20}
    assert ClassPlan("ratio", ratio=2.0).per_class([10, 0, 30]) == [20, 0, 60]
    # Asked for by name with a count, it is drawn.
    assert ClassPlan("count", n=5, classes=(1,)).counts(3) == {1: 5}


def test_count() -> None:
    assert ClassPlan("count", n=7).counts(2) == {0: 7, 1: 7}
    assert ClassPlan("count", n=7, classes=(0,)).counts(1) == {0: 7}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policy": "double"}, "allowed: count, balance, ratio"),
        ({"policy": "count"}, "positive n"),
        ({"policy": "count", "n": 0}, "positive n"),
        ({"policy": "balance", "target": 0}, "positive count"),
        ({"policy": "ratio", "ratio": 0.0}, "ratio must be positive"),
    ],
)
def test_bad_plans_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ClassPlan(**kwargs)


def test_balance_needs_the_real_counts() -> None:
    with pytest.raises(ValueError, match="real training counts"):
        ClassPlan("balance").counts(2)
