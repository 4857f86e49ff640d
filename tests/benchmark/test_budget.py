"""A fair budget: every arm takes the same number of optimisation steps, whatever its training set's size."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from medgan.benchmark.budget import fraction_budgets, step_budget
from medgan.benchmark.config import BenchmarkConfig
from medgan.networks.classifier import build_classifier
from medgan.training.classifier import _batches, steps_per_epoch, train_classifier

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = np.clip(rng.normal((70 + 110 * labels)[:, None, None, None], 25, size=(n, 1, 8, 8)), 0, 255)
    return images.astype(np.uint8), labels


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_classifier("cnn", 2, 1, 2, channels=(8, 16))


@pytest.mark.parametrize("n", [1, 2, 10, 63, 64, 65, 129, 546])
def test_steps_per_epoch_counts_the_batches_of_one_pass(n: int) -> None:
    assert steps_per_epoch(n, 64) == len(_batches(torch.randperm(n), 64))


def test_the_budget_rule() -> None:
    cfg = BenchmarkConfig()  # 40 epochs, batch 64, min_steps 200
    # BreastMNIST: 546 training images are 9 steps per pass, so the real arm at full data trains as 40 epochs did.
    b = step_budget(cfg, 546)
    assert (b.steps, b.eval_every, b.pretrain_steps, b.finetune_steps) == (360, 9, 180, 180)
    # A tiny train split: the floor, validated 40 times.
    small = step_budget(cfg, 60)
    assert (small.steps, small.eval_every) == (200, 5)
    cfg.classifier.steps, cfg.pretrain.share = 90, 0.3
    fixed = step_budget(cfg, 546)
    assert (fixed.steps, fixed.eval_every, fixed.pretrain_steps) == (90, 3, 27)


def test_a_budget_per_fraction_counts_the_fractions_real_images() -> None:
    labels = np.repeat([0, 1], [1214, 3494])  # PneumoniaMNIST's train split
    cfg = BenchmarkConfig(fractions=[0.05, 0.1, 0.25, 0.5, 1.0])
    cfg.classifier.epochs = 30
    whole = fraction_budgets(cfg, labels, 2)
    assert {f: b.steps for f, b in whole.items()} == dict.fromkeys(cfg.fractions, 30 * 74)  # 4708 images: 74 per pass
    cfg.classifier.budget = "fraction"
    per = fraction_budgets(cfg, labels, 2)
    # 0.05: 61 + 175 = 236 images, 4 steps per pass, 120 < the 200-step floor; 0.1: 122 + 350 = 472, 8 per pass.
    assert {f: b.steps for f, b in per.items()} == {0.05: 200, 0.1: 240, 0.25: 570, 0.5: 1110, 1.0: 2220}
    assert per[1.0] == whole[1.0] and all(b.eval_every == -(-b.steps // 30) for b in per.values())


def _counter(sink: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A transform that records every batch's size: the transform runs once per optimisation step."""

    def count(x: torch.Tensor) -> torch.Tensor:
        sink.append(len(x))
        return x

    return count


def test_a_step_budget_takes_exactly_that_many_steps_whatever_the_data_size() -> None:
    val = _toy(8, 9)
    for n in (5, 40):
        steps: list[int] = []
        _, history = train_classifier(
            _net(),
            _toy(n, 0),
            val,
            epochs=3,
            batch_size=16,
            seed=0,
            steps=7,
            eval_every=3,
            transform=_counter(steps),
        )
        assert len(steps) == 7, n
        assert [row["step"] for row in history] == [3.0, 6.0, 7.0]  # every eval_every steps, and the last
        assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0]
        assert sum(row["selected"] for row in history) == 1.0
    # A pass of 40 images is 3 batches of 16 (the last of 8): 7 steps are two passes and a batch.
    assert steps == [16, 16, 8, 16, 16, 8, 16]


def test_epochs_mode_is_the_step_budget_of_whole_passes() -> None:
    train, val = _toy(37, 0), _toy(9, 1)
    m1, h1 = train_classifier(_net(), train, val, epochs=3, batch_size=8, seed=1)
    per_pass = steps_per_epoch(37, 8)
    m2, h2 = train_classifier(
        _net(), train, val, epochs=3, batch_size=8, seed=1, steps=3 * per_pass, eval_every=per_pass
    )
    assert h1 == h2 and [row["step"] for row in h1] == [per_pass, 2.0 * per_pass, 3.0 * per_pass]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("n", [65, 129, 193])
def test_a_trailing_batch_of_one_joins_the_last_and_every_image_is_seen_once(n: int) -> None:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    chunks = _batches(order, 64)
    assert [len(c) for c in chunks] == [64] * (n // 64 - 1) + [65]
    assert torch.equal(torch.sort(torch.cat(chunks)).values, torch.arange(n))  # none lost, none twice
