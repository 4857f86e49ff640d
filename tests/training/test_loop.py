"""The training loop: run folder contents, exact resume, and failure handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medgan.data.dataset import load_dataset, save_prepared
from medgan.errors import MedganError
from medgan.training.checkpoint import load_checkpoint
from medgan.training.loop import lr_scale, train
from tests.conftest import make_banded_toy
from tests.training.helpers import tiny_config


def _assert_states_equal(a, b, where=""):
    if isinstance(a, torch.Tensor):
        # Bitwise, with NaN equal to NaN (an unused regulariser's averages stay NaN).
        assert a.shape == b.shape and torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan()), \
            f"tensor differs at {where}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_states_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_states_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_run_folder_holds_config_metrics_samples_curves_checkpoint(tmp_path):
    data = make_banded_toy(tmp_path)
    result = train(tiny_config(data, tmp_path / "run"), progress=False)
    run = result.run_dir
    assert (run / "config.yaml").is_file() and (run / "loss_curves.png").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6]
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "aug_p", "img_per_s"):
        assert key in lines[-1]
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 6 and ckpt["class_names"] == ["class0", "class1"]
    assert ckpt["dataset"]["sha256"] and ckpt["config"]["steps"] == 6
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "rng", "augment", "medgan_version"):
        assert key in ckpt


@pytest.mark.parametrize(("spatial_dims", "extra"),
                         [(2, ()), (3, ()), (2, ("model.g_noise=true",)), (2, ("lecam_weight=0.3",))],
                         ids=["2d", "3d", "2d-noise-inputs", "2d-lecam"])
def test_resume_is_bitwise_exact_with_adaptive_augmentation(tmp_path, spatial_dims, extra):
    data = make_banded_toy(tmp_path, size=8 if spatial_dims == 3 else 16, spatial_dims=spatial_dims)
    full = train(tiny_config(data, tmp_path / "full", "steps=8", *extra), progress=False)
    train(tiny_config(data, tmp_path / "half", "steps=4", *extra), progress=False)
    resumed = train(tiny_config(data, tmp_path / "half", "steps=8", *extra), resume=tmp_path / "half", progress=False)
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["augment"]["p"] > 0  # adaptive augmentation really moved p, so its state matters
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "augment", "loss", "step", "images_seen"):
        _assert_states_equal(a[key], b[key], key)


def test_lr_scale_is_flat_then_linear_towards_zero():
    assert [lr_scale(s, 8, 0.5) for s in range(8)] == [1.0] * 5 + [0.75, 0.5, 0.25]
    assert [lr_scale(s, 4, 1.0) for s in range(4)] == [1.0] * 4  # 1 = off
    assert [lr_scale(s, 4, 0.0) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]


def test_lr_decay_from_sets_both_rates_by_the_step_and_resumes_exactly(tmp_path):
    data = make_banded_toy(tmp_path)
    args = ("steps=8", "lr_decay_from=0.5", "checkpoint_every=4", "lr_g=0.002", "lr_d=0.004")
    full = train(tiny_config(data, tmp_path / "full", *args), progress=False)
    ckpt = load_checkpoint(full.checkpoint)
    assert [g["lr"] for g in ckpt["opt_G"]["param_groups"]] == [pytest.approx(0.002 * 0.25)]
    assert [g["lr"] for g in ckpt["opt_D"]["param_groups"]] == [pytest.approx(0.004 * 0.25)]
    # Stopped at step 4 and resumed: the same schedule, the same weights bit for bit.
    resumed = train(tiny_config(data, tmp_path / "again", *args),
                    resume=full.run_dir / "checkpoints" / "step_000004.pt", progress=False)
    b = load_checkpoint(resumed.checkpoint)
    for key in ("G", "D", "G_ema", "opt_G", "opt_D"):
        _assert_states_equal(ckpt[key], b[key], key)
    # Constant rates without it.
    plain = load_checkpoint(train(tiny_config(data, tmp_path / "plain", "steps=2", "lr_g=0.002"), progress=False).run_dir)
    assert [g["lr"] for g in plain["opt_G"]["param_groups"]] == [0.002]


def test_spectral_weight_adds_a_logged_term_to_g(tmp_path):
    data = make_banded_toy(tmp_path)
    run = train(tiny_config(data, tmp_path / "run", "spectral_weight=1.0"), progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["g_spectral"] > 0 for r in lines)
    assert load_checkpoint(run)["config"]["spectral_weight"] == 1.0


def test_lecam_weight_logs_its_term_and_checkpoints_its_averages(tmp_path):
    data = make_banded_toy(tmp_path)
    run = train(tiny_config(data, tmp_path / "run", "lecam_weight=0.3", "log_every=1"), progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(r["lecam"] >= 0 for r in lines) and any(r["lecam"] > 0 for r in lines)
    ckpt = load_checkpoint(run)
    assert ckpt["config"]["lecam_weight"] == 0.3
    assert torch.isfinite(ckpt["loss"]["lecam_means"]).all()


def test_unet_weight_builds_a_per_pixel_head_in_d_and_logs_both_players_terms(tmp_path):
    data = make_banded_toy(tmp_path)
    run = train(tiny_config(data, tmp_path / "run", "unet_weight=1.0", "log_every=1"), progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(r["d_pixel"] > 0 and "g_pixel" in r for r in lines)
    ckpt = load_checkpoint(run)
    assert ckpt["config"]["unet_weight"] == 1.0 and any(k.startswith("unet.") for k in ckpt["D"])
    with pytest.raises(MedganError, match=r"'unet_weight' needs model\.family 'residual'"):
        tiny_config(data, tmp_path / "style", "unet_weight=1.0", "model.family=style")
    with pytest.raises(MedganError, match=r"'unet_cutmix' needs unet_weight > 0"):
        tiny_config(data, tmp_path / "cut", "unet_cutmix=0.5")
    run = train(tiny_config(data, tmp_path / "cutmix", "unet_weight=1.0", "unet_cutmix=1.0", "log_every=1", "steps=2"),
                progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(r["d_cutmix"] > 0 and r["d_cutmix_consistency"] >= 0 for r in lines)


def test_recon_weight_builds_a_decoder_in_d_and_logs_its_error(tmp_path):
    data = make_banded_toy(tmp_path)
    run = train(tiny_config(data, tmp_path / "run", "recon_weight=1.0", "log_every=1"), progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(0 < r["d_recon"] < 4 for r in lines)  # images in [-1, 1]: the squared error is below 4
    ckpt = load_checkpoint(run)
    assert ckpt["config"]["recon_weight"] == 1.0 and any(k.startswith("decoder.") for k in ckpt["D"])
    assert not any(k.startswith("decoder.") for k in load_checkpoint(train(
        tiny_config(data, tmp_path / "plain", "steps=2"), progress=False).run_dir)["D"])
    with pytest.raises(MedganError, match=r"'recon_weight' needs model\.family 'residual'"):
        tiny_config(data, tmp_path / "style", "recon_weight=1.0", "model.family=style")


def test_aux_weight_builds_a_classifier_head_and_logs_its_terms(tmp_path):
    data = make_banded_toy(tmp_path)
    run = train(tiny_config(data, tmp_path / "run", "aux_weight=0.5"), progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["d_aux"] > 0 and r["g_aux"] > 0 and 0 <= r["d_aux_acc"] <= 1 for r in lines)
    ckpt = load_checkpoint(run)
    assert ckpt["config"]["aux_weight"] == 0.5
    assert any(k.startswith("aux.") for k in ckpt["D"])
    twin = train(tiny_config(data, tmp_path / "twin", "aux_weight=0.5", "aux_twin=true"), progress=False).run_dir
    lines = [json.loads(x) for x in (twin / "metrics.jsonl").read_text().splitlines()]
    assert all(r["d_aux_twin"] > 0 and r["g_aux_twin"] > 0 for r in lines)
    assert any(k.startswith("aux_twin.") for k in load_checkpoint(twin)["D"])
    with pytest.raises(MedganError, match="'aux_twin' needs aux_weight > 0"):
        tiny_config(data, tmp_path / "run3", "aux_twin=true")
    d2d = train(tiny_config(data, tmp_path / "d2d", "aux_weight=0.5", "aux_loss=d2dce"), progress=False).run_dir
    lines = [json.loads(x) for x in (d2d / "metrics.jsonl").read_text().splitlines()]
    assert all(r["d_aux"] >= 0 and r["g_aux"] >= 0 and "d_aux_acc" not in r for r in lines)
    assert any(k.startswith("proxy.") for k in load_checkpoint(d2d)["D"])
    for bad in (["aux_loss=d2dce"], ["aux_weight=0.5", "aux_twin=true", "aux_loss=d2dce"]):
        with pytest.raises(MedganError, match="'aux_loss: d2dce' needs aux_weight > 0"):
            tiny_config(data, tmp_path / "run4", *bad)
    with pytest.raises(MedganError, match="'aux_weight' needs a conditional model"):
        train(tiny_config(data, tmp_path / "run2", "aux_weight=0.5", "model.conditional=false"), progress=False)


def test_resume_refuses_a_run_on_another_dataset(tmp_path):
    data = make_banded_toy(tmp_path)
    other = make_banded_toy(tmp_path / "o", seed=1)
    train(tiny_config(data, tmp_path / "run", "steps=2"), progress=False)
    with pytest.raises(MedganError, match="data is not the dataset this checkpoint was trained on"):
        train(tiny_config(other, tmp_path / "run", "steps=4"), resume=tmp_path / "run", progress=False)


def test_resume_refuses_a_config_that_differs_in_what_the_run_computes(tmp_path):
    """Resuming with another seed (or learning rate) would not continue the run exactly, and would rewrite
    its config.yaml; steps, threads and the reporting intervals may change."""
    data = make_banded_toy(tmp_path)
    run = tmp_path / "run"
    train(tiny_config(data, run, "steps=2", "seed=1"), progress=False)
    saved = (run / "config.yaml").read_text()
    with pytest.raises(MedganError, match=r"differs from the run's own in lr_g, seed: a resumed run"):
        train(tiny_config(data, run, "steps=4", "seed=0", "lr_g=0.01"), resume=run, progress=False)
    assert (run / "config.yaml").read_text() == saved
    result = train(tiny_config(data, run, "steps=4", "seed=1", "threads=1", "log_every=1"), resume=run,
                   progress=False)
    assert result.step == 4


def test_non_empty_run_folder_is_refused_without_resume(tmp_path):
    data = make_banded_toy(tmp_path)
    train(tiny_config(data, tmp_path / "run", "steps=2"), progress=False)
    with pytest.raises(MedganError, match="run folder exists and is not empty"):
        train(tiny_config(data, tmp_path / "run", "steps=2"), progress=False)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import medgan.training.loss

    original = medgan.training.loss.GANLoss.discriminator_loss

    def poisoned(self, D, real, fake, y, step, *args, **kwargs):
        loss, stats = original(self, D, real, fake, y, step, *args, **kwargs)
        return (loss * float("nan") if step >= 10 else loss), stats  # D step 10 = G step 5 (d_steps=2)

    monkeypatch.setattr(medgan.training.loss.GANLoss, "discriminator_loss", poisoned)
    data = make_banded_toy(tmp_path)
    cfg = tiny_config(data, tmp_path / "run", "steps=8", "checkpoint_every=2", "log_every=2")
    with pytest.raises(MedganError, match=r"non-finite loss by step 6.*last good checkpoint is .*step_000004\.pt"):
        train(cfg, progress=False)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["G"].values() if v.is_floating_point())


def test_epoch_sampler_is_a_pure_function_of_position_and_covers_each_epoch_once():
    from medgan.training.loop import EpochSampler

    sampler = EpochSampler(10, seed=3)
    first_two_epochs = sampler.indices(0, 20)
    for epoch in range(2):
        assert sorted(first_two_epochs[epoch * 10 : (epoch + 1) * 10].tolist()) == list(range(10))
    # Any slicing of the positions gives the same indices: resume and DDP ranks see one order.
    again = EpochSampler(10, seed=3)
    assert torch.equal(torch.cat([again.indices(p, 3) for p in range(0, 18, 3)] + [again.indices(18, 2)]),
                       first_two_epochs)
    assert not torch.equal(EpochSampler(10, seed=4).indices(0, 10), first_two_epochs[:10])


def test_class_balanced_sampler_shows_each_class_equally_and_every_image_each_epoch():
    from medgan.training.loop import ClassBalancedSampler

    labels = torch.tensor([0] * 7 + [1] * 3 + [2] * 2)  # 7 / 3 / 2: two rarer classes
    sampler = ClassBalancedSampler(labels, seed=5)
    assert sampler.n == 21  # 3 classes x the largest class's 7
    two_epochs = sampler.indices(0, 42)
    for epoch in range(2):
        idx = two_epochs[epoch * 21 : (epoch + 1) * 21]
        assert torch.bincount(labels[idx], minlength=3).tolist() == [7, 7, 7]
        assert set(idx.tolist()) == set(range(12))  # every image, the rare ones repeated
        # A rare class repeats whole permutations before the cut: no image twice more than another.
        counts = torch.bincount(idx, minlength=12)
        assert counts[:7].tolist() == [1] * 7
        assert sorted(counts[7:10].tolist()) == [2, 2, 3] and sorted(counts[10:].tolist()) == [3, 4]
    again = ClassBalancedSampler(labels, seed=5)
    assert torch.equal(torch.cat([again.indices(p, 5) for p in range(0, 40, 5)] + [again.indices(40, 2)]), two_epochs)
    assert not torch.equal(ClassBalancedSampler(labels, seed=6).indices(0, 21), two_epochs[:21])


def test_class_balance_power_moves_the_mix_part_way_and_still_shows_every_image():
    from medgan.training.loop import ClassBalancedSampler

    labels = torch.tensor([0] * 16 + [1] * 4 + [2] * 1)
    # power 0.5: quotas 16 * sqrt(n_k / 16) = 16 / 8 / 4, between the split's 16 / 4 / 1 and even 16 / 16 / 16
    sampler = ClassBalancedSampler(labels, seed=2, power=0.5)
    assert sampler.n == 28
    for epoch in range(3):
        idx = sampler.indices(epoch * 28, 28)
        assert torch.bincount(labels[idx], minlength=3).tolist() == [16, 8, 4]
        assert set(idx.tolist()) == set(range(21))
        assert torch.bincount(idx, minlength=21)[16:20].tolist() == [2, 2, 2, 2]
    assert ClassBalancedSampler(labels, seed=2, power=0.0).n == 21  # the split's own mix
    assert ClassBalancedSampler(labels, seed=2, power=1.0).n == 48


def test_class_balance_trains_on_balanced_batches_and_is_checked(tmp_path, monkeypatch):
    import medgan.training.loop as loop_mod

    toy = load_dataset(str(make_banded_toy(tmp_path)))
    labels = dict(toy.labels)
    labels["train"] = (np.arange(len(labels["train"])) >= 36).astype(labels["train"].dtype)  # 36 / 12
    data = tmp_path / "imbalanced"
    save_prepared(data, toy.images, labels, toy.info)
    seen: list[torch.Tensor] = []
    real_batch = loop_mod._real_batch

    def spy(*args, **kwargs):
        real, y = real_batch(*args, **kwargs)
        seen.append(y)
        return real, y

    monkeypatch.setattr(loop_mod, "_real_batch", spy)
    run = train(tiny_config(data, tmp_path / "run", "class_balance=true"), progress=False).run_dir
    assert load_checkpoint(run)["config"]["class_balance"] is True
    balanced = torch.cat(seen)
    seen.clear()
    train(tiny_config(data, tmp_path / "plain"), progress=False)
    plain = torch.cat(seen)
    assert len(balanced) == len(plain) == 6 * 2 * 8  # steps x d_steps x batch
    # One epoch each: 2 x 36 positions balanced, the 48 images at the split's 36 / 12 without.
    assert torch.bincount(balanced[:72], minlength=2).tolist() == [36, 36]
    assert torch.bincount(plain[:48], minlength=2).tolist() == [36, 12]
    with pytest.raises(MedganError, match="'class_balance' needs a conditional model"):
        tiny_config(data, tmp_path / "run2", "class_balance=true", "model.conditional=false")
    with pytest.raises(MedganError, match=r"'class_balance' is 1.5; use a power in \[0, 1\]"):
        tiny_config(data, tmp_path / "run3", "class_balance=1.5")


def test_init_from_starts_from_another_runs_weights_and_d_freeze_keeps_the_first_blocks(tmp_path):
    data = make_banded_toy(tmp_path)
    source = train(tiny_config(data, tmp_path / "source", "seed=1"), progress=False).run_dir  # another init
    src = load_checkpoint(source)
    tuned = load_checkpoint(train(tiny_config(data, tmp_path / "tuned", f"init_from={source}", "d_freeze=1"),
                                  progress=False).run_dir)
    fresh = load_checkpoint(train(tiny_config(data, tmp_path / "fresh", "d_freeze=1"), progress=False).run_dir)
    weights = [k for k in src["D"] if not k.endswith("_u") and not k.endswith("_v")]
    frozen = [k for k in weights if k.startswith("blocks.0.")]
    assert frozen and all(torch.equal(tuned["D"][k], src["D"][k]) for k in frozen)  # the source's, untouched
    assert not any(torch.equal(fresh["D"][k], src["D"][k]) for k in frozen if k.endswith("original"))
    trained = [k for k in weights if k.startswith("fc.")]
    assert trained and not all(torch.equal(tuned["D"][k], src["D"][k]) for k in trained)  # the head still learns
    # Starting from the source's G, six more steps stay nearer to it than a fresh init does.
    dist = {name: sum((ck["G_ema"][k].float() - src["G_ema"][k].float()).norm().item()
                      for k in src["G_ema"] if src["G_ema"][k].is_floating_point())
            for name, ck in (("tuned", tuned), ("fresh", fresh))}
    assert dist["tuned"] < 0.5 * dist["fresh"]
    assert tuned["step"] == 6 and tuned["config"]["init_from"] == str(source)


def test_init_from_and_d_freeze_refuse_what_cannot_work(tmp_path):
    data = make_banded_toy(tmp_path)
    source = train(tiny_config(data, tmp_path / "source"), progress=False).run_dir
    with pytest.raises(MedganError, match="'init_from': that checkpoint's model does not match"):
        train(tiny_config(data, tmp_path / "wider", f"init_from={source}", "model.g_channels=4"), progress=False)
    with pytest.raises(MedganError, match="'d_freeze' is 9, but D has 3 blocks"):
        train(tiny_config(data, tmp_path / "all", "d_freeze=9"), progress=False)
    with pytest.raises(MedganError, match=r"'d_freeze' needs model\.family 'residual'"):
        tiny_config(data, tmp_path / "style", "d_freeze=1", "model.family=style")


@pytest.mark.parametrize(("statistic", "key"), [("sign", "d_real_sign"), ("centred", "d_real_centred_sign")])
def test_ada_reads_the_statistic_the_config_names(tmp_path, monkeypatch, statistic: str, key: str) -> None:
    from medgan.training import diffaugment

    seen: list[float] = []
    update = diffaugment.AdaptiveAugment.update

    def record(self, value, batch_size):
        seen.append(float(value))
        return update(self, value, batch_size)

    monkeypatch.setattr(diffaugment.AdaptiveAugment, "update", record)
    data = make_banded_toy(tmp_path)
    cfg = tiny_config(data, tmp_path / "run", "steps=4", "log_every=1", "d_steps=1", f"augment.statistic={statistic}")
    train(cfg, progress=False)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(seen) == 4 and seen == pytest.approx([r[key] for r in logged])
    # The two statistics differ on this run, so the test tells them apart.
    other = "d_real_centred_sign" if key == "d_real_sign" else "d_real_sign"
    assert seen != pytest.approx([r[other] for r in logged])


def test_ada_never_raises_p_above_the_configured_ceiling(tmp_path) -> None:
    data = make_banded_toy(tmp_path)
    # A target no D reaches below and a speed of one image per unit of p: ADA pushes p up at every adjustment.
    sets = ["steps=8", "log_every=1", "d_steps=1", "augment.target=0.01", "augment.interval=1",
            "augment.speed_images=1", "augment.statistic=centred"]
    train(tiny_config(data, tmp_path / "capped", *sets, "augment.p_max=0.3"), progress=False)
    capped = [json.loads(line)["aug_p"] for line in (tmp_path / "capped" / "metrics.jsonl").read_text().splitlines()]
    assert max(capped) == pytest.approx(0.3) and all(p <= 0.3 for p in capped)
    train(tiny_config(data, tmp_path / "free", *sets), progress=False)
    free = [json.loads(line)["aug_p"] for line in (tmp_path / "free" / "metrics.jsonl").read_text().splitlines()]
    assert max(free) == pytest.approx(0.99)  # the default ceiling
    with pytest.raises(MedganError, match="p_max"):
        tiny_config(data, tmp_path / "bad", "augment.p_max=0")


def test_an_unknown_ada_statistic_names_the_key(tmp_path) -> None:
    with pytest.raises(MedganError, match=r"'augment\.statistic': 'median' is not one of 'sign', 'centred'"):
        tiny_config(tmp_path / "x", tmp_path / "run", "augment.statistic=median")


def test_the_grey_floor_is_the_darkest_level_holding_a_thousandth_of_the_pixels_and_reaches_g(tmp_path):
    import numpy as np

    from medgan.training.loop import grey_floor

    images = np.full((10, 1, 10, 10), 120, np.uint8)
    images[0, 0, 0, 0] = 0  # 1 pixel in 1000: level 0 holds exactly the share
    images[1, 0, :2] = 3  # 20 pixels
    assert grey_floor(images) == pytest.approx(0 / 127.5 - 1)
    assert grey_floor(images, share=2e-3) == pytest.approx(3 / 127.5 - 1)
    assert grey_floor(np.full((2, 4, 4), 255, np.uint8)) == 1.0
    from medgan.data.dataset import load_dataset, save_prepared
    from medgan.synth.sampling import load_generator, sample_classes

    toy = load_dataset(make_banded_toy(tmp_path, size=8))  # background 0..59, bands 220
    lifted = {k: (v // 2 + 40).astype(np.uint8) for k, v in toy.images.items()}  # darkest level now 40
    data = tmp_path / "lifted"
    save_prepared(data, lifted, toy.labels, toy.info)
    run = train(tiny_config(data, tmp_path / "run", "steps=2", "model.g_floor=true"), progress=False).run_dir
    assert load_checkpoint(run)["model"]["generator"]["floor"] == pytest.approx(40 / 127.5 - 1)
    x, _, _ = sample_classes(load_generator(run, "cpu"), 8, seed=0, device="cpu")
    assert int(np.asarray(x).min()) == 40  # an untrained G's darkest pixels fall below the floor and sit on it


def test_the_bilinear_supersample_filter_is_refused_for_volumes_in_one_line(tmp_path):
    data = make_banded_toy(tmp_path, size=8, spatial_dims=3)
    with pytest.raises(MedganError, match="'bilinear' is for 2D images; use 'area' for volumes"):
        train(tiny_config(data, tmp_path / "run", "steps=1", "model.g_supersample=2", "model.g_supersample_filter=bilinear"),
              progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.pt"))


def test_a_generator_with_class_input_trains_saves_and_samples_every_class(tmp_path):
    from medgan.synth.sampling import load_generator, sample_classes

    data = make_banded_toy(tmp_path, size=8, spatial_dims=3)
    run = train(tiny_config(data, tmp_path / "run", "steps=2", "model.g_binary=true", "model.g_class_input=true"),
                progress=False).run_dir
    assert load_checkpoint(run)["model"]["generator"]["class_input"] is True
    gen = load_generator(run, "cpu")
    assert gen.G.class_embed is not None
    x, y, _ = sample_classes(gen, 3, seed=0, device="cpu")
    assert x.shape == (6, 1, 8, 8, 8) and sorted(set(y.tolist())) == [0, 1]


def test_a_smoothed_stochastic_generator_trains_saves_and_samples_binary_masks(tmp_path):
    from medgan.synth.sampling import load_generator, sample_classes

    data = make_banded_toy(tmp_path, size=8, spatial_dims=3)
    run = train(tiny_config(data, tmp_path / "run", "steps=2", "model.g_binary=true", "model.g_smooth=2",
                            "model.g_stochastic=0.5"), progress=False).run_dir
    spec = load_checkpoint(run)["model"]["generator"]
    assert spec["smooth"] == 2 and spec["stochastic"] == 0.5
    gen = load_generator(run, "cpu")
    assert gen.G.smooth == 2 and gen.G.stochastic and not gen.G.training
    x, _, _ = sample_classes(gen, 3, seed=0, device="cpu")
    assert x.shape == (6, 1, 8, 8, 8) and set(np.unique(np.asarray(x)).tolist()) <= {0, 255}


def test_recentred_masks_sit_at_the_training_masks_mean_centre_in_training_and_sampling(tmp_path):
    import numpy as np

    from medgan.data.dataset import load_dataset
    from medgan.networks.layers import centre_of_mass
    from medgan.synth.sampling import load_generator, sample_classes
    from medgan.training.loop import mask_centre

    data = make_banded_toy(tmp_path, size=8, spatial_dims=3)
    train_images = load_dataset(data).channel_first("train")
    centre = mask_centre(train_images)
    # The toy's bright bands: class 0 in x < 4, class 1 in x >= 4, so the mean centre is mid-volume in x.
    assert centre[2] == pytest.approx(3.5, abs=0.01) and len(centre) == 3
    run = train(tiny_config(data, tmp_path / "run", "steps=2", "model.g_binary=true", "model.g_recentre=true"),
                progress=False).run_dir
    assert load_checkpoint(run)["model"]["generator"]["recentre"] == centre
    x, _, _ = sample_classes(load_generator(run, "cpu"), 6, seed=0, device="cpu")
    com = centre_of_mass(torch.from_numpy(np.asarray(x) > 127).float())
    com = com[~com.isnan().any(1)]
    assert len(com) > 0 and (com - torch.tensor(centre)).abs().max() <= 0.5 + 1e-6  # whole voxels: within half of one
    with pytest.raises(MedganError, match="no foreground voxels"):
        mask_centre(np.zeros((2, 1, 4, 4, 4), np.uint8))


def test_an_evaluator_that_draws_random_numbers_leaves_the_trained_weights_unchanged(tmp_path):
    import random

    data = make_banded_toy(tmp_path)
    calls = []

    def greedy_evaluator(G_ema, g_kw):  # draws from every global stream, as a CNN-training metric would
        calls.append(1)
        torch.manual_seed(123)
        return {"noise": float(torch.randn(1)) + float(np.random.rand()) + random.random()}

    plain = train(tiny_config(data, tmp_path / "plain"), progress=False)
    evaluated = train(tiny_config(data, tmp_path / "eval", "fid_every=2"), progress=False, evaluator=greedy_evaluator)
    assert len(calls) == 3  # steps 2, 4 and 6
    lines = [json.loads(x) for x in (evaluated.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all("noise" in r for r in lines)
    a, b = load_checkpoint(plain.checkpoint), load_checkpoint(evaluated.checkpoint)
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "augment"):
        _assert_states_equal(a[key], b[key], key)


def test_the_evaluator_sees_g_ema_as_its_checkpoint_samples_it(tmp_path):
    """Each step copies G's batch-norm statistics into G_ema; the evaluation must see the standing statistics
    that the checkpoint (and so every later sample) carries, not those."""
    data = make_banded_toy(tmp_path)
    seen = {}

    def snapshot(G_ema, g_kw):
        seen.update({k: v.detach().clone() for k, v in G_ema.state_dict().items()})
        return {}

    run = train(tiny_config(data, tmp_path / "run", "fid_every=6"), progress=False, evaluator=snapshot)
    saved = load_checkpoint(run.checkpoint)["G_ema"]
    assert any("running_mean" in k for k in saved)  # the G has batch norms, so the check means something
    _assert_states_equal(seen, dict(saved), "G_ema")


@pytest.mark.parametrize(("key", "stat"), [("class_mean_weight", "g_class_mean"), ("class_depth_weight", "g_class_depth")])
def test_class_statistic_weights_log_their_gap_and_need_a_conditional_model(tmp_path, key, stat):
    data = make_banded_toy(tmp_path)
    run = train(tiny_config(data, tmp_path / "run", f"{key}=1.0", "log_every=1"), progress=False).run_dir
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(np.isfinite(r[stat]) for r in lines)
    assert load_checkpoint(run)["config"][key] == 1.0
    with pytest.raises(MedganError, match=f"{key}' needs a conditional model"):
        train(tiny_config(data, tmp_path / "u", f"{key}=1.0", "model.conditional=false"), progress=False)
