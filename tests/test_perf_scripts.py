"""The helpers behind benchmarks/perf/: result rows are appended, growth exponents are right."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

PERF = Path(__file__).resolve().parents[1] / "benchmarks" / "perf"


@pytest.fixture()
def perf_modules(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(PERF))
    import perfkit
    import scaling

    monkeypatch.setattr(perfkit, "RESULTS", tmp_path)
    monkeypatch.setattr(perfkit, "PERF_MD", tmp_path / "perf.md")
    yield perfkit, scaling
    sys.modules.pop("scaling", None)


def test_record_appends_one_row_per_figure_under_one_header(perf_modules, tmp_path):
    perfkit, _ = perf_modules
    perfkit.record("demo", {"ratio": 0.97}, [("figure a", "0.97"), ("figure b", "12 s")], threads=2, quiet=True,
                   command="python benchmarks/perf/demo.py")
    perfkit.record("demo", {"ratio": 0.91}, [("figure a", "0.91")], threads=1, quiet=False, command="again")
    lines = (tmp_path / "perf.md").read_text().splitlines()
    assert sum(line.startswith("| date (UTC)") for line in lines) == 1
    rows = [line for line in lines if line.startswith("| 20")]
    assert len(rows) == 3
    assert "| figure b | 12 s | yes | `python benchmarks/perf/demo.py` |" in rows[1]
    assert "| 1 | figure a | 0.91 | no | `again` |" in rows[2]
    saved = json.loads((tmp_path / "perf" / "demo.json").read_text())
    assert saved["ratio"] == 0.91 and saved["machine"]["threads"] == 1 and saved["command"] == "again"


def test_growth_exponent_of_a_power_law_is_recovered(perf_modules):
    _, scaling = perf_modules
    points = [{"pixels": p, "s_per_step": 0.01 * p**1.5} for p in (28**3, 32**3, 64**3)]
    assert scaling.slope(points, "s_per_step") == pytest.approx(1.5)


def test_gan_quality_power_ratio_is_one_on_real_images_and_a_quarter_at_half_contrast(monkeypatch):
    import numpy as np

    monkeypatch.syspath_prepend(str(PERF.parent))
    from gan_quality import power_ratio

    rng = np.random.default_rng(0)
    real = rng.normal(128, 30, size=(32, 1, 28, 28)).astype(np.float32)
    assert power_ratio(real, real) == [1.0] * 14
    ratios = power_ratio(real, (real - 128) * 0.5 + 128)
    assert ratios[0] == 1.0  # ring 0 holds only the removed mean
    assert all(r == pytest.approx(0.25, abs=1e-3) for r in ratios[1:])


def test_gan_quality_mask_views_drop_stray_voxels_then_centre_then_blur(monkeypatch):
    monkeypatch.syspath_prepend(str(PERF.parent))
    from gan_quality import MASK_VIEWS, mask_view

    u8 = np.zeros((1, 1, 9, 9, 9), dtype=np.uint8)
    u8[0, 0, 1:4, 1:4, 1:4] = 255  # a 27-voxel cube off centre
    u8[0, 0, 8, 8, 8] = 255  # and a stray voxel in the far corner
    assert mask_view(u8, "raw") is u8
    largest = mask_view(u8, "largest")
    assert (largest > 0).sum() == 27 and largest[0, 0, 8, 8, 8] == 0
    centred = mask_view(u8, "centred")
    assert (centred > 0).sum() == 27 and (centred[0, 0, 3:6, 3:6, 3:6] == 255).all()  # centre of mass at (4, 4, 4)
    blurred = mask_view(u8, "centred_blur2")
    assert blurred.dtype == np.uint8 and 0 < blurred.max() < 255  # sigma 2 spreads the cube's edges
    assert blurred.sum() == pytest.approx(centred.sum(), rel=0.1)  # and keeps its mass, near enough
    assert blurred[0, 0, 4, 4, 4] == blurred.max()
    assert set(MASK_VIEWS) >= {"raw", "largest", "largest_blur1", "largest_blur2", "centred", "centred_blur2"}


def test_pooled_tstr_shares_each_class_count_over_the_runs_and_keeps_the_total(monkeypatch):
    monkeypatch.syspath_prepend(str(PERF.parent))
    import pooled_tstr

    assert [pooled_tstr.shares([929, 259], 5, j) for j in range(5)] == [[186, 52], [186, 52], [186, 52], [186, 52],
                                                                         [185, 51]]
    drawn = []

    def fake_counts(gen, counts, seed):
        drawn.append((gen, counts, seed))
        y = np.repeat(np.arange(len(counts)), counts)
        return np.full((len(y), 1, 2, 2), len(drawn), dtype=np.uint8), y

    monkeypatch.setattr(pooled_tstr, "load_generator", lambda run, device: str(run))
    monkeypatch.setattr(pooled_tstr, "sample_counts", fake_counts)
    x, y = pooled_tstr.pooled_draws([Path("a"), Path("b")], [5, 2])
    assert drawn == [("a", [3, 1], 0), ("b", [2, 1], 0)]
    assert np.bincount(y).tolist() == [5, 2] and sorted(set(x[:, 0, 0, 0].tolist())) == [1, 2]


def test_benchmark_records_carry_how_they_were_taken_and_append_one_json_line_each(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(PERF.parent))
    from gan_quality import emit, run_facts

    facts = run_facts(["--data", "adrenalmnist3d"])
    assert facts["command"].endswith("--data adrenalmnist3d") and facts["threads"] >= 1 and "torch" in facts["machine"]
    out = tmp_path / "records.jsonl"
    emit({"label": "a", **facts}, out)
    emit({"label": "b"}, out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["label"] for r in lines] == ["a", "b"] and lines[0]["command"] == facts["command"]
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"label": "b"}
    emit({"label": "c"}, None)  # printed only
    assert len(out.read_text().splitlines()) == 2


def test_gan_quality_selects_the_checkpoint_with_the_best_val_tstr_and_the_later_on_a_tie(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(PERF.parent))
    import gan_quality

    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    for step in (500, 1000, 1500, 2000):
        (ckpts / f"step_{step:06d}.pt").write_bytes(b"")
    val = {500: [0.625, 0.75], 1000: [0.875, 0.625], 1500: [0.75, 0.75], 2000: [0.5, 0.75]}
    loaded = []
    monkeypatch.setattr(gan_quality, "load_model", lambda path, device: loaded.append(path) or path)
    monkeypatch.setattr(gan_quality, "sample_like", lambda gen, counts, seed: (gen, counts))
    monkeypatch.setattr(gan_quality, "val_balanced_accuracy",
                        lambda syn, ds, seeds, epochs: val[int(syn[0].stem.split("_")[1])])
    chosen, rows = gan_quality.select_checkpoint(tmp_path / "run", None, [3, 4], 2, 1, 0.0)
    assert chosen.name == "step_001500.pt"  # 0.75 ties 1000's mean; the later wins
    assert [r["step"] for r in rows] == [500, 1000, 1500, 2000]
    assert rows[0]["val_balanced_accuracy_mean"] == pytest.approx(0.6875)
    assert len(loaded) == 4
    val[2000] = [0.9, 0.9]
    assert gan_quality.select_checkpoint(tmp_path / "run", None, [3, 4], 2, 1, 0.0)[0].name == "step_002000.pt"
    with pytest.raises(SystemExit, match="no step_"):
        gan_quality.select_checkpoint(tmp_path / "empty", None, [3, 4], 2, 1, 0.0)


def test_gan_quality_d_rejection_keeps_each_class_draws_that_d_scores_most_real(monkeypatch):
    import numpy as np
    import torch

    monkeypatch.syspath_prepend(str(PERF.parent))
    import gan_quality

    class Brightness(torch.nn.Module):  # a "D" that calls brighter images more real, class 1 inverted
        def forward(self, x, y):
            score = x.flatten(1).mean(1)
            return torch.where(y == 1, -score, score)

    draws = {}

    def fake_samples(gen, c, n, seed):
        values = np.random.default_rng(seed).permutation(n).astype(np.uint8)
        draws[c] = values
        yield np.broadcast_to(values[:, None, None, None], (n, 1, 4, 4)).copy()

    monkeypatch.setattr(gan_quality, "load_checkpoint",
                        lambda path: {"model": {"family": "residual", "discriminator": {}}, "D": {}})
    monkeypatch.setattr(gan_quality, "build_discriminator", lambda family, **kw: Brightness())
    monkeypatch.setattr(Brightness, "load_state_dict", lambda self, state: None)
    monkeypatch.setattr(gan_quality, "iter_samples", fake_samples)
    x, y = gan_quality.d_rejected_like(None, "ckpt", [3, 2], seed=0, factor=4)
    assert y.tolist() == [0, 0, 0, 1, 1]
    assert len(draws[0]) == 12 and len(draws[1]) == 8
    kept0, kept1 = x[:3, 0, 0, 0].tolist(), x[3:, 0, 0, 0].tolist()
    assert sorted(kept0) == [9, 10, 11]  # the brightest three of twelve
    assert sorted(kept1) == [0, 1]  # class 1's D prefers the darkest
    order = {v: i for i, v in enumerate(draws[0].tolist())}
    assert [order[v] for v in kept0] == sorted(order[v] for v in kept0)  # kept in draw order
    with pytest.raises(SystemExit, match="K >= 1"):
        gan_quality.main(["--checkpoint", "x", "--data", "breastmnist", "--d-rejection", "0.5"])


def test_gan_quality_size_match_keeps_the_draws_nearest_each_real_size_once_each(monkeypatch):
    import numpy as np

    monkeypatch.syspath_prepend(str(PERF.parent))
    import gan_quality

    assert gan_quality.match_sizes(np.array([5, 1, 9, 3, 7, 2]), np.array([8, 2, 3])).tolist() == [3, 4, 5]  # 8: 7 of 7, 9
    assert gan_quality.match_sizes(np.array([4, 4, 4]), np.array([1, 1])).tolist() == [0, 1]  # no candidate twice
    with pytest.raises(ValueError, match="cannot match 3 sizes from 2"):
        gan_quality.match_sizes(np.array([1, 2]), np.array([1, 2, 3]))

    def masks(sizes):  # 1 x 4 x 4 x 4 masks whose first `size` voxels are foreground
        out = np.zeros((len(sizes), 1, 64), np.uint8)
        for i, k in enumerate(sizes):
            out[i, 0, :k] = 255
        return out.reshape(len(sizes), 1, 4, 4, 4)

    def fake_samples(gen, c, n, seed):
        yield masks(np.random.default_rng(seed).integers(0, 40, n))

    monkeypatch.setattr(gan_quality, "iter_samples", fake_samples)
    real_x, real_y = masks([10, 12, 30, 31, 33]), np.array([0, 0, 1, 1, 1])
    x, y = gan_quality.size_matched_like(None, real_x, real_y, [2, 3], seed=0, factor=8)
    sizes = (x > 127).reshape(5, -1).sum(1)
    assert y.tolist() == [0, 0, 1, 1, 1]
    assert np.abs(np.sort(sizes[:2]) - [10, 12]).max() <= 1 and np.abs(np.sort(sizes[2:]) - [30, 31, 33]).max() <= 1
    with pytest.raises(SystemExit, match="choose one"):
        gan_quality.main(["--checkpoint", "x", "--data", "breastmnist", "--size-match", "2", "--d-rejection", "2"])
    with pytest.raises(SystemExit, match="K >= 1"):
        gan_quality.main(["--checkpoint", "x", "--data", "breastmnist", "--size-match", "0.5"])


def test_gan_quality_truncation_reaches_every_class_draw_and_bad_values_stop_with_one_line(monkeypatch):
    import numpy as np

    monkeypatch.syspath_prepend(str(PERF.parent))
    import gan_quality

    seen = []

    def fake_samples(gen, c, n, seed, truncation=None):
        seen.append((c, n, seed, truncation))
        yield np.full((n, 1, 4, 4), c, dtype=np.uint8)

    import medgan.synth.sampling as sampling

    monkeypatch.setattr(sampling, "iter_samples", fake_samples)  # what sample_like draws through (sample_counts)
    x, y = gan_quality.sample_like(None, [2, 3], seed=0, truncation=1.5)
    assert seen == [(0, 2, 0, 1.5), (1, 3, 1000, 1.5)]
    assert y.tolist() == [0, 0, 1, 1, 1] and x[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(SystemExit, match=r"positive number, got 0\.0"):
        gan_quality.main(["--checkpoint", "x", "--data", "breastmnist", "--truncation", "0"])
    with pytest.raises(SystemExit, match="choose one"):
        gan_quality.main(["--checkpoint", "x", "--data", "breastmnist", "--truncation", "1", "--d-rejection", "2"])


def test_resize_filter_check_arms_are_uint8_28s_and_torch_antialiased_bilinear_matches_pils(monkeypatch):
    import numpy as np
    from scipy import ndimage

    monkeypatch.syspath_prepend(str(PERF.parent))
    from resize_filter_check import resize_arms

    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.normal(128, 60, size=(4, 64, 64)), sigma=(0, 2, 2))
    large = np.clip(smooth, 0, 255).astype(np.uint8)
    arms = resize_arms(large, 28)
    assert set(arms) == {"PIL bilinear (antialiased)", "PIL bicubic (antialiased)", "PIL box (area)", "PIL nearest",
                         "torch bilinear (antialiased)", "torch area (windows of whole pixels)",
                         "2x size, then 2 x 2 mean (g_supersample area)",
                         "2x size, then antialiased bilinear (g_supersample bilinear)"}
    assert all(a.shape == (4, 1, 28, 28) and a.dtype == np.uint8 for a in arms.values())
    diff = lambda a, b: np.abs(arms[a].astype(float) - arms[b].astype(float)).mean()  # noqa: E731
    # torch's antialiased bilinear resize is PIL's to within rounding; nearest picks single pixels and differs.
    assert diff("torch bilinear (antialiased)", "PIL bilinear (antialiased)") < 0.6
    assert diff("PIL nearest", "PIL bilinear (antialiased)") > 2 * diff("torch bilinear (antialiased)", "PIL bilinear (antialiased)")


def test_gan_quality_reads_tstr_on_the_whole_test_split_and_on_its_twin_free_part(monkeypatch):
    import types

    import numpy as np

    monkeypatch.syspath_prepend(str(PERF.parent))
    import gan_quality

    labels = np.array([0, 1] * 10)
    twin = np.zeros(20, dtype=bool)
    twin[:8] = True
    ds = types.SimpleNamespace(labels={"test": labels}, channel_first=lambda split: np.zeros((20, 1, 4, 4)))
    # A classifier right on every twin image and on half of the others (alternately wrong for each class).
    right = twin | (np.arange(20) % 4 < 2)
    proba = np.eye(2)[np.where(right, labels, 1 - labels)]
    monkeypatch.setattr(gan_quality, "_fit_classifier", lambda train, ds, seed, epochs: (None, []))
    monkeypatch.setattr(gan_quality, "predict_proba", lambda net, x: proba)
    got = gan_quality.classifier_balanced_accuracy(None, ds, 2, 1, twin)
    clean = ~twin
    want_clean = np.mean([right[clean & (labels == c)].mean() for c in (0, 1)])
    assert got["clean"] == [want_clean] * 2 and want_clean < 1.0
    assert got["all"] == [np.mean([right[labels == c].mean() for c in (0, 1)])] * 2
    # Without a twin mask both parts are the whole split.
    plain = gan_quality.classifier_balanced_accuracy(None, ds, 1, 1)
    assert plain["all"] == plain["clean"] == got["all"][:1]


def _striped(rng, n: int, stripes: bool):
    """uint8 (n, 1, 16, 16) smooth noise; with ``stripes``, every fourth column bright (a generator's tell)."""
    x = rng.normal(110, 20, size=(n, 1, 16, 16))
    if stripes:
        x[..., ::4] += 60
    return np.clip(x, 0, 255).astype(np.uint8)


def test_gan_quality_realism_critic_keeps_the_draws_without_the_tell(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(PERF.parent))
    from gan_quality import keep_most_real, realism_scores

    from medgan.metrics.c2st import C2STConfig

    rng = np.random.default_rng(0)
    real = _striped(rng, 120, stripes=False)
    # The generator's draws: a third carry stripes no real image has.
    fit = np.concatenate([_striped(rng, 160, False), _striped(rng, 80, True)])
    tell = np.arange(90) % 3 == 0
    candidates = np.where(tell[:, None, None, None], _striped(rng, 90, True), _striped(rng, 90, False))
    cfg = C2STConfig(min_steps=150, epochs=3)
    scores = realism_scores(real, fit, candidates, cfg, seed=0)
    assert scores.shape == (90,) and scores.dtype == np.float64
    kept = keep_most_real(scores, 60)
    assert kept.tolist() == sorted(kept.tolist()) and len(set(kept.tolist())) == 60
    assert not tell[kept].any()  # every striped draw is dropped
    # Seeded: the same critic, the same scores.
    assert np.array_equal(scores, realism_scores(real, fit, candidates, cfg, seed=0))
    with pytest.raises(ValueError, match="image shapes differ"):
        realism_scores(real, fit, candidates[:, :, :8], cfg)
    with pytest.raises(ValueError, match="needs real images"):
        realism_scores(real[:0], fit, candidates, cfg)


def test_gan_quality_keep_most_real_takes_the_highest_scores_first_of_equals_in_draw_order(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(PERF.parent))
    from gan_quality import keep_most_real

    assert keep_most_real(np.array([0.1, 2.0, -1.0, 2.0, 0.5]), 3).tolist() == [1, 3, 4]
    assert keep_most_real(np.array([1.0, 1.0, 1.0]), 2).tolist() == [0, 1]
    assert keep_most_real(np.array([1.0]), 0).tolist() == []
    with pytest.raises(ValueError, match="cannot keep 4 of 3"):
        keep_most_real(np.zeros(3), 4)


def test_gan_quality_tstr_only_skips_the_two_sample_tests_and_records_every_classifier_seed(monkeypatch, tmp_path):
    import types

    monkeypatch.syspath_prepend(str(PERF.parent))
    import gan_quality

    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 6)
    images = rng.integers(0, 256, size=(12, 1, 8, 8), dtype=np.uint8)
    ds = types.SimpleNamespace(
        info=types.SimpleNamespace(name="toy", num_classes=2, class_names=("a", "b")),
        labels={"train": labels, "val": labels, "test": labels},
        channel_first=lambda split: images)
    gen = types.SimpleNamespace(check_trained_on=lambda *a: None)

    def never(*a, **k):
        raise AssertionError("--tstr-only ran a two-sample test")

    monkeypatch.setattr(gan_quality, "load_dataset", lambda name, size=None: ds)
    monkeypatch.setattr(gan_quality, "load_model", lambda path, device: gen)
    monkeypatch.setattr(gan_quality, "sample_like", lambda g, counts, seed, truncation=None: (images, labels))
    monkeypatch.setattr(gan_quality, "c2st_metrics", never)
    monkeypatch.setattr(gan_quality, "swd_metrics", never)
    per_seed = iter([0.6, 0.7, 0.8, 0.9, 0.5])
    monkeypatch.setattr(gan_quality, "parts_accuracy",
                        lambda train, ds, seed, epochs, twin: dict.fromkeys(("all", "twin", "clean"), next(per_seed)))
    out = tmp_path / "q.jsonl"
    assert gan_quality.main(["--checkpoint", "ckpt", "--data", "toy", "--tstr-only", "--seeds", "3",
                             "--real-only", "0.75", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["tstr_per_seed"] == [0.6, 0.7, 0.8]
    assert record["metrics"]["tstr/balanced_accuracy"] == pytest.approx(0.7)
    assert record["metrics"]["tstr/ratio_to_real_only"] == pytest.approx(0.7 / 0.75)
    assert not any(k.startswith(("c2st", "swd")) for k in record["metrics"])
    with pytest.raises(SystemExit, match="--views"):
        gan_quality.main(["--checkpoint", "ckpt", "--data", "toy", "--tstr-only", "--views"])


def test_d_class_margin_is_d_at_class_one_minus_d_at_class_zero(monkeypatch) -> None:
    import torch

    monkeypatch.syspath_prepend(str(PERF.parent))
    from d_class_margin import class_margin

    class Brightness(torch.nn.Module):  # a D whose class-1 term is the image's mean brightness
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return 0.5 + y.float() * x.mean(dim=(1, 2, 3))

    images = np.stack([np.full((1, 4, 4), v, np.uint8) for v in (0, 255, 255, 0, 255)])
    margin = class_margin(Brightness(), images, batch=2)  # batches of 2: the last one short
    np.testing.assert_allclose(margin, [-1.0, 1.0, 1.0, -1.0, 1.0], atol=1e-6)


def test_class_cues_check_reads_size_from_the_masks_and_scores_a_cue_on_the_test_side(monkeypatch):
    monkeypatch.syspath_prepend(str(PERF.parent))
    from class_cues_check import CUES, cue_accuracy, cue_features, feature_class_auc

    masks = np.zeros((2, 1, 6, 6, 6), dtype=np.uint8)
    masks[0, 0, :2, :2, :2] = 255  # 8 voxels
    masks[1, 0, :4, :4, :2] = 200  # 32 voxels, still foreground (above 127)
    feats = cue_features(masks)
    assert set(feats) == set(CUES)
    assert feats["size"].shape == (2, 1) and np.exp(feats["size"][:, 0]) - 1e-4 == pytest.approx([8 / 216, 32 / 216])
    assert feats["shape"].shape == (2, 9) and feats["shape"][:, 0].tolist() == [8, 32]  # the volume comes first
    aucs = feature_class_auc(feats["shape"], np.array([0, 1]))
    assert aucs["volume"] == 1.0 and aucs["pieces"] == 0.5  # the larger mask is class 1; both in one piece
    assert feature_class_auc(feats["shape"], np.array([1, 1])) == {}
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300, int), np.ones(100, int)]  # unbalanced, as AdrenalMNIST3D is
    x = (y + rng.normal(0, 0.5, len(y)))[:, None]  # class 1 larger by two spreads
    y_test = np.r_[np.zeros(200, int), np.ones(50, int)]
    x_test = (y_test + rng.normal(0, 0.5, len(y_test)))[:, None]
    assert 0.8 < cue_accuracy(x, y, x_test, y_test) < 0.9  # Phi(1) = 0.84 with the threshold midway
    assert cue_accuracy(x, y, 1 - x_test, y_test) < 0.2  # the classes' sizes swapped: below chance
    assert np.isnan(cue_accuracy(x[:300], y[:300], x_test, y_test))  # one class drawn: nothing to fit
