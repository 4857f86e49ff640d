"""``--truncation`` for the style family: ψ towards the class's mean w, through the one sampling interface."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.errors import MedganError
from medgan.metrics.collapse import mean_pairwise_distance
from medgan.networks.cgan import Generator
from medgan.synth.sampling import iter_samples, load_generator, truncation_for
from medgan.training.loop import train
from tests.conftest import make_banded_toy
from tests.training.helpers import tiny_config


@pytest.fixture(scope="module")
def style_gen(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("style_sampling")
    data = make_banded_toy(tmp)
    overrides = ["model.family=style", "model.w_dim=16", "model.mapping_layers=2", "steps=4"]
    run = train(tiny_config(data, tmp / "run", *overrides), progress=False).run_dir
    gen = load_generator(run, device="cpu")
    gen.G.w_avg.normal_()  # a clearly non-zero class mean, so truncation has somewhere to go
    return gen


def _samples(gen, truncation, n=16):
    return np.concatenate(list(iter_samples(gen, 0, n, seed=3, truncation=truncation)))


def test_style_truncation_pulls_samples_towards_the_class_mean(style_gen):
    free, half, tight = (_samples(style_gen, t) for t in (None, 0.5, 0.05))
    assert np.array_equal(_samples(style_gen, 1.0), free)  # psi = 1 is no truncation
    assert np.array_equal(_samples(style_gen, 0.5), half)  # still a pure function of the seed
    d_free, d_half, d_tight = (mean_pairwise_distance(x) for x in (free, half, tight))
    assert d_free > d_half > d_tight


def test_style_truncation_above_one_is_refused_and_other_families_keep_the_z_threshold(style_gen):
    with pytest.raises(MedganError, match=r"--truncation is ψ for a style-family generator"):
        _samples(style_gen, 2.0)
    assert truncation_for(style_gen.G, 0.7) == (None, {"truncation": 0.7})
    residual = Generator(z_dim=8, size=16, base_channels=4, max_channels=8)
    assert truncation_for(residual, 2.0) == (2.0, {})
    assert truncation_for(residual, None) == (None, {})
