"""The style family on the shared engine: exact resume (with path length and the per-class mean w), and its options."""

from __future__ import annotations

import pytest
import torch

from medgan.errors import MedganError
from medgan.training.checkpoint import load_checkpoint
from medgan.training.loop import train
from tests.conftest import make_banded_toy
from tests.training.helpers import tiny_config
from tests.training.test_loop import _assert_states_equal

STYLE = [
    "model.family=style",
    "model.w_dim=16",
    "model.mapping_layers=2",
    "model.d_spectral_norm=false",
    "model.d_mbstd=true",
    "pl_weight=2",
    "pl_every=2",
]


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_style_resume_is_bitwise_exact(tmp_path, spatial_dims):
    data = make_banded_toy(tmp_path, size=8 if spatial_dims == 3 else 16, spatial_dims=spatial_dims)
    full = train(tiny_config(data, tmp_path / "full", *STYLE, "steps=8"), progress=False)
    train(tiny_config(data, tmp_path / "half", *STYLE, "steps=4"), progress=False)
    resumed = train(
        tiny_config(data, tmp_path / "half", *STYLE, "steps=8"), resume=tmp_path / "half", progress=False
    )
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["model"]["family"] == "style"
    assert a["augment"]["p"] > 0 and float(a["loss"]["pl_mean"]) > 0  # the stateful parts really moved
    assert a["G_ema"]["w_avg"].abs().sum() > 0  # the per-class mean w is tracked, and differs per class
    assert not torch.equal(a["G_ema"]["w_avg"][0], a["G_ema"]["w_avg"][1])
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "augment", "loss", "step", "images_seen"):
        _assert_states_equal(a[key], b[key], key)


def test_style_run_logs_path_length_on_its_lazy_steps(tmp_path):
    import json

    data = make_banded_toy(tmp_path)
    run = train(tiny_config(data, tmp_path / "run", *STYLE, "steps=4"), progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("pl_penalty" in r and r["pl_mean"] > 0 for r in lines)
    off = train(tiny_config(data, tmp_path / "off", *STYLE, "steps=2", "pl_weight=0"), progress=False).run_dir
    assert "pl_penalty" not in (off / "metrics.jsonl").read_text()


def test_path_length_needs_a_generator_that_exposes_w(tmp_path):
    data = make_banded_toy(tmp_path)
    with pytest.raises(MedganError, match="'pl_weight' needs a generator that exposes its w"):
        train(tiny_config(data, tmp_path / "run", "pl_weight=2"), progress=False)


def test_style_config_keys_are_checked():
    from medgan.configio import load_config
    from medgan.training.config import TrainConfig

    with pytest.raises(MedganError, match=r"model\.g_output"):
        load_config(TrainConfig, None, ["model.family=style", "model.g_output=sum"]).validate()
    with pytest.raises(MedganError, match="collapse_share"):
        load_config(TrainConfig, None, ["collapse_share=1.5"]).validate()


@pytest.mark.parametrize("family", ["style", "cycle"])
def test_binary_output_trains_and_samples_only_mask_values(tmp_path, family):
    import numpy as np

    from medgan.synth.sampling import iter_samples
    from medgan.synth.translate import load_model
    from tests.training.helpers import tiny_cycle_config

    data = make_banded_toy(tmp_path, size=8, spatial_dims=3)
    if family == "style":
        cfg = tiny_config(data, tmp_path / "run", *STYLE, "steps=2", "model.g_binary=true")
    else:
        cfg = tiny_cycle_config(data, tmp_path / "run", "steps=2", "model.g_binary=true")
    result = train(cfg, progress=False)
    assert load_checkpoint(result.checkpoint)["model"]["generator"]["binary"] is True
    gen = load_model(result.run_dir, "cpu")
    if family == "style":
        volumes = np.concatenate(list(iter_samples(gen, 1, 6, seed=0)))
        assert volumes.shape == (6, 1, 8, 8, 8)
    else:
        volumes = gen.G(torch.full((4, 1, 8, 8, 8), -1.0), 1).mul(127.5).add(127.5).round().numpy()
    assert set(np.unique(volumes).tolist()) <= {0, 255}
