"""The training evaluator on mask data: ``eval_metrics: [values]`` logs the mask figures without a feature
net, and a class drawn at the wrong size raises a warning while the GAN trains."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan.configio import load_config
from medgan.metrics.training_fid import fid_evaluator
from medgan.training.config import TrainConfig
from tests.conftest import SQUARE_EDGES, make_square_masks, square_mask

EDGES = SQUARE_EDGES  # class "small" draws a 3x3 square, class "large" a 6x6 one


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    """Binary 16² masks: 20 small and 20 large squares per split, at varying positions."""
    return make_square_masks(tmp_path_factory.mktemp("masks") / "squares")


class _SquareGenerator(nn.Module):
    """Draws class y's square, or the other class's with ``backwards``, on the model's [-1, 1] scale."""

    def __init__(self, backwards: bool) -> None:
        super().__init__()
        self.backwards = backwards
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z, y):
        out = []
        for i, (zi, yi) in enumerate(zip(z, y, strict=True)):
            k = 1 - int(yi) if self.backwards else int(yi)
            img = square_mask(EDGES[k], 1 + (i + int(abs(zi[0]) * 10)) % 8)
            out.append(torch.from_numpy(img).float().div(127.5).sub(1.0)[None])
        return torch.stack(out)


def _evaluate(masks, generator, *overrides):
    seen: list[str] = []
    cfg = load_config(TrainConfig, None, [f"data={masks.path}", "model.z_dim=4", "fid_every=10", "fid_samples=40",
                                          *overrides])
    return fid_evaluator(cfg, dataset=masks, warn=seen.append)(generator, {}), seen


def test_values_alone_logs_the_mask_figures_and_no_feature_metric(masks):
    metrics, seen = _evaluate(masks, _SquareGenerator(backwards=False), "eval_metrics=[values]")
    assert not any(k.startswith(("fid", "swd", "collapse")) for k in metrics)
    assert metrics["values/near_modes_synthetic"] == 1.0 and metrics["values/components_synthetic"] == 1.0
    # 9 and 36 of 256 pixels: the exact shares, and size tells the class perfectly on both sides.
    assert metrics["values/foreground_synthetic/class_small"] == pytest.approx(9 / 256, abs=1e-4)
    assert metrics["values/foreground_synthetic/class_large"] == pytest.approx(36 / 256, abs=1e-4)
    assert metrics["values/size_auc_real/class_large"] == 1.0 == metrics["values/size_auc_synthetic/class_large"]
    assert seen == []


def test_a_generator_that_draws_the_sizes_backwards_is_warned_about(masks):
    metrics, seen = _evaluate(masks, _SquareGenerator(backwards=True), "eval_metrics=[values]")
    assert metrics["values/size_auc_synthetic/class_large"] == 0.0
    assert len(seen) == 1 and seen[0].startswith("In the real data the large masks are the larger ones")
    assert "the GAN draws the class sizes wrong" in seen[0]


def test_an_empty_eval_metrics_list_logs_nothing_but_what_else_is_asked(masks):
    metrics, seen = _evaluate(masks, _SquareGenerator(backwards=True), "eval_metrics=[]", "collapse_share=0")
    assert metrics == {} and seen == []
