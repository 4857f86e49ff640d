"""The cycle family's training: its losses, the run folder, exact resume, and the config it accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from medgan.data.dataset import DatasetInfo, load_dataset, save_prepared
from medgan.errors import MedganError
from medgan.training.checkpoint import load_checkpoint
from medgan.training.cycle import CycleLoss, d_least_squares, g_least_squares
from medgan.training.loop import train
from tests.conftest import make_banded_toy
from tests.training.helpers import tiny_cycle_config
from tests.training.test_loop import _assert_states_equal

pytestmark = pytest.mark.usefixtures("one_thread")


class _Scale(torch.nn.Module):
    """A stand-in translator: ``G(x, y) = k * x`` whatever the domain (k = 1 is the identity)."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, x, y):
        return self.k * x


def test_the_cycle_and_identity_losses_of_an_identity_translator_are_zero():
    a, b = torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 8, 8) * 2 - 1
    assert CycleLoss.cycle_loss(_Scale(1.0), a, b).item() == 0.0
    assert CycleLoss.identity_loss(_Scale(1.0), a, b).item() == 0.0
    # Halving is not undone by halving again: |x/4 - x| = 3/4 |x| per domain.
    expected = 0.75 * (a.abs().mean() + b.abs().mean())
    torch.testing.assert_close(CycleLoss.cycle_loss(_Scale(0.5), a, b), expected)


def test_least_squares_losses_are_zero_at_their_targets_and_bad_kinds_name_the_allowed_ones():
    ones, zeros = torch.ones(3, 5), torch.zeros(3, 5)
    assert d_least_squares(ones, zeros).item() == 0.0 and g_least_squares(ones).item() == 0.0
    assert d_least_squares(zeros, ones).item() == pytest.approx(1.0)  # 0.5 * (1 + 1)
    with pytest.raises(ValueError, match="allowed: lsgan, hinge"):
        CycleLoss("wgan-gp")  # type: ignore[arg-type]


def test_the_generator_loss_adds_the_weighted_cycle_and_identity_terms():
    from medgan.networks.cycle import CycleDiscriminator

    D = CycleDiscriminator(channels=1, size=8, base_channels=4, num_layers=1)
    a, b = torch.rand(2, 1, 8, 8) * 2 - 1, torch.rand(2, 1, 8, 8) * 2 - 1
    total, stats, (_, fake_b) = CycleLoss("hinge", 10.0, 5.0).generator_loss(_Scale(0.5), D, a, b)
    torch.testing.assert_close(total, stats["g_adv"] + 10.0 * stats["g_cycle"] + 5.0 * stats["g_identity"])
    torch.testing.assert_close(fake_b, 0.5 * a)
    _, no_idt, _ = CycleLoss("hinge", 10.0, 0.0).generator_loss(_Scale(0.5), D, a, b)
    assert no_idt["g_identity"].item() == 0.0


def test_a_cycle_run_writes_its_domains_losses_and_a_translation_grid(tmp_path):
    data = make_banded_toy(tmp_path)
    result = train(tiny_cycle_config(data, tmp_path / "run"), progress=False)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["model"]["family"] == "cycle"
    assert ckpt["cycle"] == {
        "mode": "class",
        "domains": ["class0", "class1"],
        "source_class": 0,
        "target_class": 1,
        "target_dataset": None,
        "train_images": [24, 24],
    }
    last = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == 4 and last["images_seen"] == 32  # a batch of 4 from each domain per step
    for key in ("d_loss", "g_loss", "g_adv", "g_cycle", "g_identity", "d_real", "d_fake", "aug_p"):
        assert np.isfinite(last[key])
    grid = np.asarray(Image.open(result.run_dir / "samples" / "step_000004.png"))
    # Four rows (A, A->B, B, B->A) of 8 tiles of 16 px with 2 px padding, shown at 2x.
    assert grid.shape == (2 * (4 * 18 + 2), 2 * (8 * 18 + 2))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_cycle_resume_is_bitwise_exact(tmp_path, spatial_dims):
    data = make_banded_toy(tmp_path, size=8 if spatial_dims == 3 else 16, spatial_dims=spatial_dims, n=24)
    full = train(tiny_cycle_config(data, tmp_path / "full", "steps=6"), progress=False)
    train(tiny_cycle_config(data, tmp_path / "half", "steps=3"), progress=False)
    resumed = train(
        tiny_cycle_config(data, tmp_path / "half", "steps=6"), resume=tmp_path / "half", progress=False
    )
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["augment"]["p"] > 0  # ADA moved p, so its state is part of what must come back
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "augment", "step", "images_seen", "cycle"):
        _assert_states_equal(a[key], b[key], key)


def _second_domain(tmp_path, seed: int, name: str = "other"):
    """A prepared dataset with the banded toy's shape but other pixels (domain B of a domain translation)."""
    src = load_dataset(make_banded_toy(tmp_path / f"src_{name}", seed=seed))
    info = DatasetInfo(
        name=name, class_names=["x", "y"], channels=1, spatial_dims=2, size=[16, 16], source="test", sha256=""
    )
    images = {s: (255 - src.images[s]).astype(np.uint8) for s in src.images}
    save_prepared(tmp_path / name, images, src.labels, info)
    return tmp_path / name


def test_domain_translation_records_the_second_dataset_and_resume_checks_it(tmp_path):
    data = make_banded_toy(tmp_path)
    other, third = _second_domain(tmp_path, 1), _second_domain(tmp_path, 2, "third")
    overrides = ("cycle.source_class=null", "cycle.target_class=null", "steps=2")
    run = train(
        tiny_cycle_config(data, tmp_path / "run", *overrides, f"cycle.target_data={other}"), progress=False
    )
    record = load_checkpoint(run.checkpoint)["cycle"]
    assert record["mode"] == "domain" and record["domains"] == ["toy", "other"]
    assert record["target_dataset"]["sha256"] == load_dataset(other).info.sha256
    with pytest.raises(MedganError, match="checkpoint translates toy -> other, this config toy -> third"):
        train(
            tiny_cycle_config(data, tmp_path / "run", *overrides, f"cycle.target_data={third}", "steps=4"),
            resume=tmp_path / "run",
            progress=False,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model.family=residual",), "a 'cycle' section is only allowed with model.family 'cycle'"),
        (("cycle=null",), "model.family 'cycle' needs a 'cycle' section"),
        (("cycle.target_data=x.npz",), "either source_class and target_class .* or target_data"),
        (("cycle.target_class=null",), "class translation needs both"),
        (("d_steps=2",), "set d_steps: 1, r1_gamma: 0 and fid_every: 0"),
        (("spectral_weight=1.0",), "spectral_weight applies to the adversarial families"),
        (("aux_weight=0.5",), "aux_weight applies to the adversarial families"),
        (("lecam_weight=0.3",), "lecam_weight applies to the adversarial families"),
        (("recon_weight=1.0",), "recon_weight applies to the adversarial families"),
        (("cycle.adversarial=wgan-gp",), "cycle.adversarial"),
        (("model.g_sle=true",), "g_noise, g_sle, g_floor, d_spectral_norm and d_mbstd apply to model.family 'residual' only"),
        (("model.g_floor=true",), "g_noise, g_sle, g_floor, d_spectral_norm and d_mbstd apply to model.family 'residual' only"),
    ],
)
def test_the_config_refuses_a_cycle_section_that_does_not_fit(tmp_path, overrides, message):
    with pytest.raises(MedganError, match=message):
        tiny_cycle_config(tmp_path / "d", tmp_path / "r", *overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("cycle.target_class=benign",),
            r"cycle.target_class': unknown class 'benign' \(valid: 0: class0, 1: class1\)",
        ),
        (("cycle.target_class=0",), "name the same class 'class0'"),
    ],
)
def test_bad_domains_are_refused_before_training(tmp_path, overrides, message):
    data = make_banded_toy(tmp_path)
    with pytest.raises(MedganError, match=message):
        train(tiny_cycle_config(data, tmp_path / "run", *overrides), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("name", "shape"), [("cycle_breastmnist", (1, 28, 28)), ("cycle_adrenalmnist3d", (1, 28, 28, 28))]
)
def test_the_packaged_cycle_configs_validate_and_build_translators_of_their_data_shape(name, shape):
    from medgan.configio import load_config
    from medgan.networks import build_networks
    from medgan.training.config import TrainConfig
    from medgan.training.cycle import cycle_spec
    from tests.conftest import REPO

    cfg = load_config(TrainConfig, REPO / "configs" / "train" / f"{name}.yaml")
    info = DatasetInfo(
        name=name,
        class_names=["a", "b"],
        channels=1,
        spatial_dims=len(shape) - 1,
        size=list(shape[1:]),
        source="test",
        sha256="",
    )
    G, D = build_networks(cycle_spec(cfg, info))
    x = torch.zeros(1, *shape)
    assert G(x, 1).shape == x.shape and D(x, 0).ndim == 2
