"""How many synthetic samples of each class to draw: the one plan for ``medgan augment`` and the benchmark.

Three policies:

- ``count``: ``n`` samples of every chosen class (``medgan augment --n``);
- ``balance``: fill every chosen class up to ``target`` (default: the largest real class);
  ``medgan augment --balance`` / ``--balance-to`` and the benchmark's ``synthetic.policy: balance``;
- ``ratio``: ``ratio`` × the real count of every chosen class (the benchmark's ``policy: ratio``).

A class with no real training image gets nothing under ``balance`` and ``ratio``: the GAN has
never seen it, so its samples of that class are noise with a label. Ask for it by name with
``count`` if you want them anyway.

Example:
    >>> ClassPlan("balance").per_class([147, 399])
    [252, 0]
    >>> ClassPlan("count", n=10, classes=(1,)).counts(2)
    {1: 10}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["PLAN_POLICIES", "ClassPlan", "PlanPolicy"]

PlanPolicy = Literal["count", "balance", "ratio"]
PLAN_POLICIES: tuple[str, ...] = get_args(PlanPolicy)


@dataclass(frozen=True)
class ClassPlan:
    """The per-class sample counts to draw.

    Args:
        policy: ``count``, ``balance`` or ``ratio`` (see the module doc).
        n: samples per chosen class, for ``count``.
        target: for ``balance``, the count to fill up to; ``None`` = the largest real class.
        ratio: the multiplier for ``ratio``.
        classes: the class indices to draw; ``None`` = all.

    Raises:
        ValueError: an unknown policy, or a missing or non-positive ``n``, ``target`` or ``ratio``.
    """

    policy: PlanPolicy
    n: int | None = None
    target: int | None = None
    ratio: float = 1.0
    classes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.policy not in PLAN_POLICIES:
            raise ValueError(f"unknown plan policy {self.policy!r}; allowed: {', '.join(PLAN_POLICIES)}")
        if self.policy == "count" and (self.n is None or self.n <= 0):
            raise ValueError(f"the count policy needs a positive n, got {self.n}")
        if self.target is not None and self.target <= 0:
            raise ValueError(f"the balance target must be a positive count, got {self.target}")
        if self.policy == "ratio" and not self.ratio > 0:
            raise ValueError(f"the ratio must be positive, got {self.ratio}")

    @property
    def needs_real_counts(self) -> bool:
        """Whether :meth:`counts` needs the real training counts (``balance`` and ``ratio``)."""
        return self.policy != "count"

    def counts(self, num_classes: int, real_counts: Sequence[int] | None = None) -> dict[int, int]:
        """``{class index: samples}`` for the chosen classes; classes with nothing to draw are left out.

        Args:
            num_classes: how many classes there are (1 for an unconditional generator).
            real_counts: real training images per class; needed by ``balance`` and ``ratio``.
        """
        chosen = list(self.classes) if self.classes is not None else list(range(num_classes))
        if self.policy == "count":
            assert self.n is not None
            return dict.fromkeys(chosen, self.n)
        if real_counts is None:
            raise ValueError(f"the {self.policy} policy needs the real training counts per class")
        real = [int(k) for k in real_counts]
        if self.policy == "balance":
            top = self.target if self.target is not None else max(real, default=0)
            want = {c: top - real[c] for c in chosen if real[c] > 0}
        else:
            want = {c: round(self.ratio * real[c]) for c in chosen}
        return {c: k for c, k in want.items() if k > 0}

    def per_class(self, real_counts: Sequence[int]) -> list[int]:
        """:meth:`counts` as a list by class index, zeros included (the benchmark's form)."""
        got = self.counts(len(real_counts), real_counts)
        return [got.get(c, 0) for c in range(len(real_counts))]
