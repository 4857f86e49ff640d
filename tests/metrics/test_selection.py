"""Choosing among training runs by the mask distance: the rule's parts, and a generator that draws the class
sizes backwards, or its masks in fragments, ranked behind one that draws them as the real masks are."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medgan.data.dataset import load_dataset
from medgan.errors import MedganError
from medgan.metrics.evaluate import mask_distance
from medgan.metrics.selection import score_run
from medgan.synth.sampling import LoadedGenerator
from tests.conftest import SQUARE_EDGES, make_banded_toy, make_square_masks, square_mask

SIZE = 16
EDGES = SQUARE_EDGES  # class "small" is a 3x3 square, class "large" a 6x6 one


@pytest.fixture(scope="module")
def masks(tmp_path_factory) -> object:
    # imbalanced, as the real data are: the draws follow the train counts
    return make_square_masks(tmp_path_factory.mktemp("masks") / "squares", counts=(10, 30))


class _Squares(nn.Module):
    """Draws class y's square on the model's [-1, 1] scale; ``backwards`` draws the other class's, ``speckle``
    adds that many isolated voxels."""

    def __init__(self, backwards: bool = False, speckle: int = 0) -> None:
        super().__init__()
        self.backwards, self.speckle = backwards, speckle

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = []
        for zi, yi in zip(z, y, strict=True):
            k = 1 - int(yi) if self.backwards else int(yi)
            img = square_mask(EDGES[k], 1 + int(abs(zi[0]) * 10) % 8, SIZE, self.speckle)
            out.append(torch.from_numpy(img).float().div(127.5).sub(1.0)[None])
        return torch.stack(out)


def _loaded(G: nn.Module, ds, name: str) -> LoadedGenerator:
    return LoadedGenerator(G=G, class_names=list(ds.info.class_names), num_classes=2, z_dim=4, spatial_dims=2,
                           channels=1, size=[SIZE, SIZE], spacing=None, checkpoint_sha256="", checkpoint_path=name,
                           dataset={"sha256": ds.info.sha256}, config={}, family="residual",
                           device=torch.device("cpu"))


def _figures(auc_syn: float, fg_syn: tuple[float, float], pieces: float) -> dict[str, float]:
    return {
        "values/components_real": 1.0, "values/components_synthetic": pieces,
        "values/size_auc_real/class_small": 0.3, "values/size_auc_real/class_large": 0.7,
        "values/size_auc_synthetic/class_small": 1 - auc_syn, "values/size_auc_synthetic/class_large": auc_syn,
        "values/foreground_real/class_small": 0.02, "values/foreground_real/class_large": 0.04,
        "values/foreground_synthetic/class_small": fg_syn[0], "values/foreground_synthetic/class_large": fg_syn[1],
    }


def test_the_distance_is_zero_for_the_real_figures_and_adds_its_three_parts():
    assert mask_distance(_figures(0.7, (0.02, 0.04), 1.0), ["small", "large"])["mask_distance"] == pytest.approx(0.0, abs=1e-12)
    d = mask_distance(_figures(0.3, (0.03, 0.02), 10.0), ["small", "large"])
    assert d["mask_distance/class_gap"] == pytest.approx(2.0)  # sizes backwards: 0.4 off, in units of the 0.2 gap
    assert d["mask_distance/sizes"] == pytest.approx((0.5 + 0.5) / 2)
    assert d["mask_distance/pieces"] == pytest.approx(math.log(10.0))
    assert d["mask_distance"] == pytest.approx(2.0 + 0.5 + math.log(10.0))


def test_empty_masks_score_badly_and_missing_figures_give_nothing():
    empty = mask_distance(_figures(0.5, (0.0, 0.0), 0.0), ["small", "large"])
    assert empty["mask_distance/pieces"] == pytest.approx(-math.log(0.01))
    assert empty["mask_distance/sizes"] == 1.0 and empty["mask_distance"] > 6
    assert mask_distance({"values/components_real": 1.0, "values/components_synthetic": 3.0}, ["small", "large"]) == {}


def test_the_generator_that_draws_as_the_real_masks_is_ranked_first(masks):
    right = score_run(_loaded(_Squares(), masks, "right"), masks, "right")
    backwards = score_run(_loaded(_Squares(backwards=True), masks, "backwards"), masks, "backwards")
    speckled = score_run(_loaded(_Squares(speckle=3), masks, "speckled"), masks, "speckled")
    # Drawn at the train counts (10 small, 30 large), as real: only the positions differ.
    assert right.distance == pytest.approx(0.0, abs=1e-9)
    assert right.metrics["values/size_auc_synthetic/class_large"] == 1.0 and right.cautions == []
    assert backwards.metrics["mask_distance/class_gap"] == pytest.approx(2.0)
    assert backwards.metrics["mask_distance/sizes"] == pytest.approx((27 / 9 + 27 / 36) / 2)
    assert any("the GAN draws the class sizes wrong" in c for c in backwards.cautions)
    assert speckled.metrics["mask_distance/pieces"] == pytest.approx(math.log(4.0))
    assert any("connected pieces" in c for c in speckled.cautions)
    assert sorted([backwards, speckled, right], key=lambda s: s.distance)[0].run == "right"


def test_data_that_is_not_masks_is_refused(tmp_path):
    grey = load_dataset(make_banded_toy(tmp_path))
    with pytest.raises(MedganError, match="is not mask data"):
        score_run(_loaded(_Squares(), grey, "g"), grey, "g")
