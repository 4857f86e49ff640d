"""`TrainConfig.validate` directly: the cross-field checks and the family's old name."""

from __future__ import annotations

import pytest

from medgan.errors import MedganError
from medgan.training.config import BINARY_MASK_KEYS, TrainConfig
from medgan.training.schedule import ProgressiveSchedule


def test_defaults_are_valid() -> None:
    cfg = TrainConfig()
    cfg.validate()
    assert cfg.model.family == "residual"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: setattr(c, "steps", 0), "'steps' must be positive"),
        (lambda c: setattr(c, "batch_size", 0), "'batch_size' must be positive"),
        (lambda c: setattr(c, "betas", [0.5]), "'betas' must be two numbers"),
        (lambda c: setattr(c, "ema_decay", 1.0), "'ema_decay' must be in"),
        (lambda c: setattr(c.augment, "p", 1.5), "'augment.p' must be in \\[0, 1\\]"),
        (lambda c: setattr(c.augment, "policy", ["flip"]), "unknown op 'flip' \\(allowed: color, cutout, translation\\)"),
        (lambda c: setattr(c.model, "family", "progressive"), "needs a 'progressive' schedule section"),
        (lambda c: setattr(c, "progressive", ProgressiveSchedule(target_resolution=32)), "only allowed with model.family 'progressive'"),
        (lambda c: setattr(c, "steps", None), "'steps' must be set for model.family 'residual'"),
        (lambda c: (setattr(c.model, "family", "progressive"), setattr(c, "progressive", ProgressiveSchedule(target_resolution=32)),
                    setattr(c.model, "d_mbstd", True)), "apply to model.family 'residual' only"),
        (lambda c: (setattr(c.model, "family", "progressive"), setattr(c, "progressive", ProgressiveSchedule(target_resolution=32)),
                    setattr(c.model, "d_highpass", True)), "d_highpass apply to model.family 'residual' only"),
        (lambda c: (setattr(c.model, "family", "style"), setattr(c.model, "g_noise", True)),
         "g_supersample, g_sle and g_floor apply to model.family 'residual' only"),
        (lambda c: (setattr(c.model, "family", "style"), setattr(c.model, "g_supersample", 2)),
         "g_supersample, g_sle and g_floor apply to model.family 'residual' only"),
        (lambda c: (setattr(c.model, "family", "progressive"), setattr(c, "progressive", ProgressiveSchedule(target_resolution=32)),
                    setattr(c.model, "g_supersample", 2)), "g_supersample, g_sle, g_floor, d_spectral_norm"),
        (lambda c: (setattr(c.model, "family", "progressive"), setattr(c, "progressive", ProgressiveSchedule(target_resolution=32)),
                    setattr(c.model, "g_sle", True)), "g_sle, g_floor, d_spectral_norm, d_mbstd and d_highpass apply"),
        (lambda c: (setattr(c.model, "family", "style"), setattr(c.model, "g_sle", True)),
         "g_supersample, g_sle and g_floor apply to model.family 'residual' only"),
        (lambda c: (setattr(c.model, "family", "style"), setattr(c.model, "g_floor", True)),
         "g_sle and g_floor apply to model.family 'residual' only"),
        (lambda c: (setattr(c.model, "family", "progressive"), setattr(c, "progressive", ProgressiveSchedule(target_resolution=32)),
                    setattr(c.model, "g_floor", True)), "g_floor, d_spectral_norm"),
        (lambda c: (setattr(c.model, "g_binary", True), setattr(c.model, "g_floor", True)),
         "model.g_floor and model.g_binary exclude each other"),
        (lambda c: setattr(c.model, "g_supersample", 0), "'model.g_supersample'"),
        (lambda c: setattr(c.model, "g_supersample_filter", "bilinear"), "'model.g_supersample_filter' needs model.g_supersample > 1"),
        (lambda c: setattr(c.model, "g_keep_largest", True), "'model.g_keep_largest' needs model.g_binary"),
        (lambda c: setattr(c.model, "g_recentre", True), "'model.g_recentre' needs model.family 'residual' and model.g_binary"),
        (lambda c: (setattr(c.model, "family", "style"), setattr(c.model, "g_binary", True), setattr(c.model, "g_recentre", True)),
         "'model.g_recentre' needs model.family 'residual'"),
        (lambda c: setattr(c.model, "g_smooth", 2), "'model.g_smooth' needs model.family 'residual' and model.g_binary"),
        (lambda c: setattr(c.model, "g_smooth", -1), "'model.g_smooth'"),
        (lambda c: setattr(c.model, "g_stochastic", 0.5), "'model.g_stochastic' needs model.family 'residual' and model.g_binary"),
        (lambda c: setattr(c, "eval_c2st", True), "'eval_c2st' runs at each evaluation: set fid_every > 0"),
        (lambda c: setattr(c, "eval_metrics", ["fid", "kid"]), r"'eval_metrics': unknown metric 'kid' \(allowed: fid, swd, values\)"),
        (lambda c: setattr(c.model, "g_noise_init", 0.1), "'model.g_noise_init' needs model.g_noise"),
        (lambda c: setattr(c.model, "g_noise_map", True), "'model.g_noise_map' needs model.g_noise"),
        (lambda c: (setattr(c.model, "conditional", False), setattr(c.model, "g_class_input", True)),
         "'model.g_class_input' needs model.family 'residual' and model.conditional"),
        (lambda c: (setattr(c.model, "g_noise", True), setattr(c.model, "g_noise_init", -0.1)), "'model.g_noise_init'"),
        (lambda c: setattr(c.model, "d_proj_weight", 0.0), "'model.d_proj_weight'"),
        (lambda c: (setattr(c.model, "conditional", False), setattr(c.model, "d_proj_weight", 2.0)),
         "'model.d_proj_weight' needs model.family 'residual' and model.conditional"),
    ],
)
def test_bad_values_name_the_key(change, match: str) -> None:
    cfg = TrainConfig()
    change(cfg)
    with pytest.raises(MedganError, match=match):
        cfg.validate()


@pytest.mark.parametrize("key", BINARY_MASK_KEYS)
def test_every_mask_only_key_is_refused_without_g_binary_and_accepted_with_it(key: str) -> None:
    """``BINARY_MASK_KEYS`` is what the pipeline switches off for grey data: it must match the validation."""
    on = {"g_keep_largest": True, "g_smooth": 2, "g_stochastic": 0.5, "g_recentre": True, "d_depth": 3}[key]
    cfg = TrainConfig()
    setattr(cfg.model, key, on)
    with pytest.raises(MedganError, match=f"'model.{key}' needs"):
        cfg.validate()
    cfg.model.g_binary = True
    cfg.validate()


def test_a_fixed_augmentation_probability_of_one_is_valid() -> None:
    """DiffAugment's own setting: every op on every image, not adapted."""
    cfg = TrainConfig()
    cfg.augment.p, cfg.augment.adaptive = 1.0, False
    cfg.validate()


@pytest.mark.parametrize("family", ["style", "cycle"])
def test_binary_output_is_allowed_for_the_style_and_cycle_families_not_progressive(family: str) -> None:
    from medgan.configio import load_config
    from tests.conftest import REPO

    cfg = load_config(TrainConfig, REPO / f"configs/train/{family}_adrenalmnist3d.yaml", ["model.g_binary=true"])
    cfg.validate()
    assert cfg.model.g_binary
    prog = TrainConfig()
    prog.model.family, prog.progressive, prog.model.g_binary = "progressive", ProgressiveSchedule(target_resolution=32), True
    with pytest.raises(MedganError, match="g_binary"):
        prog.validate()


def test_the_old_family_name_warns_and_is_renamed() -> None:
    cfg = TrainConfig()
    cfg.model.family = "cgan"  # type: ignore[assignment]
    with pytest.warns(FutureWarning, match="now called 'residual'"):
        cfg.validate()
    assert cfg.model.family == "residual"


def test_an_unknown_supersample_filter_is_refused_by_the_loader_in_one_line() -> None:
    """The loader owns the allowed values of a Literal key (medgan.configio), so validate() does not repeat them."""
    from medgan.configio import load_config
    from tests.conftest import REPO

    with pytest.raises(MedganError, match=r"'model\.g_supersample_filter': 'box' is not one of 'area', 'bilinear'"):
        load_config(TrainConfig, REPO / "configs/train/cgan_breastmnist.yaml",
                    ["model.g_supersample=2", "model.g_supersample_filter=box"])
