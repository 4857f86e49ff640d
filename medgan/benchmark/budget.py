"""The classifier's budget: the same number of optimisation steps for every arm, at every fraction.

Counted in epochs, the budget follows the size of the training set: at 10 % of BreastMNIST the
real arm (54 images, batch 64) took one step per epoch, 40 in all, and stopped under-trained,
while an arm with twice the images (real plus synthetic) took twice the steps and looked better for
it. So the budget is counted in steps:

    steps = classifier.steps, or max(classifier.min_steps, classifier.epochs × S)

where ``S`` is the number of steps in one pass of the real arm over the *whole* train split
(``ceil(N / batch_size)``, a trailing batch of one joining the last). Every arm of every fraction
takes exactly ``steps`` steps; at full data the real arm trains exactly as ``epochs`` passes did.
A smaller training set therefore gets more passes, not fewer steps, and ``min_steps`` is a floor for
data so small that ``epochs × S`` would be too few steps for any arm to converge.

With ``classifier.budget: fraction``, ``S`` counts a pass over each fraction's real subset instead
(:func:`fraction_budgets`): every arm *of a fraction* still takes the same steps, and the small
fractions, whose many seeds would otherwise each cost a full-data run, become cheap.

Validation runs every ``eval_every = ceil(steps / epochs)`` steps and after the last, the same
``epochs`` times for every arm, and picks the checkpoint (best balanced accuracy, then lower
loss). A ``synthetic-pretrain`` arm spends ``pretrain_steps = round(pretrain.share × steps)``
steps on synthetic images and the rest fine-tuning on real ones, so it too takes ``steps`` in all.

Example:
    >>> step_budget(BenchmarkConfig(), 546)  # BreastMNIST: 9 steps per pass, 40 epochs
    Budget(steps=360, eval_every=9, pretrain_steps=180)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medgan.benchmark.config import BenchmarkConfig
from medgan.benchmark.subsets import subset_counts
from medgan.training.classifier import steps_per_epoch

__all__ = ["Budget", "fraction_budgets", "step_budget"]


@dataclass(frozen=True)
class Budget:
    """Optimisation steps of every arm.

    Attributes:
        steps: steps in all, for every arm.
        eval_every: steps between validations.
        pretrain_steps: of ``steps``, those a ``synthetic-pretrain`` arm spends on synthetic images.
    """

    steps: int
    eval_every: int
    pretrain_steps: int

    @property
    def finetune_steps(self) -> int:
        """The steps a ``synthetic-pretrain`` arm spends on the real images."""
        return self.steps - self.pretrain_steps


def step_budget(cfg: BenchmarkConfig, n_train: int) -> Budget:
    """The budget of every arm of a benchmark whose whole train split has ``n_train`` images.

    Args:
        cfg: the benchmark config (``classifier.steps``, ``min_steps``, ``epochs``, ``batch_size``;
            ``pretrain.share``).
        n_train: images in the whole real train split (not the fraction's subset).
    """
    c = cfg.classifier
    steps = (
        c.steps
        if c.steps is not None
        else max(c.min_steps, c.epochs * steps_per_epoch(n_train, c.batch_size))
    )
    pretrain = min(max(round(cfg.pretrain.share * steps), 1), steps - 1) if steps > 1 else 0
    return Budget(steps=steps, eval_every=math.ceil(steps / c.epochs), pretrain_steps=pretrain)


def fraction_budgets(cfg: BenchmarkConfig, labels: np.ndarray, num_classes: int) -> dict[float, Budget]:
    """The budget of every fraction of ``cfg``: the whole split's (``classifier.budget: whole``), or
    one counted on the fraction's real subset (``fraction``; its size is the same for every subset seed).

    Args:
        cfg: the benchmark config.
        labels: the whole train split's labels.
        num_classes: classes of the dataset.
    """
    whole = len(labels)
    if cfg.classifier.budget == "whole":
        return {f: step_budget(cfg, whole) for f in cfg.fractions}
    return {f: step_budget(cfg, sum(subset_counts(labels, num_classes, f, cfg.min_per_class))) for f in cfg.fractions}
