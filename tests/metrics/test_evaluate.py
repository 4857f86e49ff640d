"""`medgan.metrics.evaluate` on a tiny dataset: keys, input forms, errors and synthetic loading."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.data.dataset import PreparedDataset
from medgan.errors import MedganError
from medgan.metrics import evaluate, evaluate_detailed, get_feature_extractor, load_synthetic
from medgan.metrics.c2st import C2STConfig
from medgan.metrics.evaluate import check_compatible
from tests.conftest import make_dark_bright_toy

# A short two-sample test: what it detects is tested in test_c2st.py.
CHEAP = {"c2st": C2STConfig(folds=2, epochs=1, min_steps=0)}


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> PreparedDataset:
    return make_dark_bright_toy(tmp_path_factory.mktemp("toy") / "ds")


@pytest.fixture(scope="module")
def toy_fx(toy: PreparedDataset, tmp_path_factory: pytest.TempPathFactory):
    return get_feature_extractor(toy, "cnn", epochs=4, batch_size=8, cache_dir=tmp_path_factory.mktemp("features"))


def test_keys_and_types(toy: PreparedDataset, toy_fx) -> None:
    m = evaluate(toy, (toy.channel_first("test"), toy.labels["test"]), extractor=toy_fx, **CHEAP)
    assert all(type(v) is float for v in m.values())
    whole = {"n_real", "n_synthetic", "fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
    assert whole <= m.keys()
    for metric in ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"):
        assert {f"{metric}/class_dark", f"{metric}/class_bright"} <= m.keys()
    assert m["fid/class_mean"] == pytest.approx((m["fid/class_dark"] + m["fid/class_bright"]) / 2)
    assert {"memorisation/fraction", "memorisation/threshold", "domain_classifier/accuracy"} <= m.keys()
    assert m["n_real"] == 40.0 and m["n_synthetic"] == 12.0
    pixel = {"c2st/auc", "c2st/auc_std", "c2st/auc/class_dark", "c2st/real_vs_real_auc", "swd/mean",
             "swd/mean/class_bright", "swd/real_vs_real_mean"}
    assert pixel <= m.keys()
    assert 0.0 <= m["c2st/auc"] <= 1.0 and m["swd/mean"] >= 0.0


def test_unconditional_set_has_no_per_class_metrics(toy: PreparedDataset, toy_fx) -> None:
    m = evaluate(toy, (toy.channel_first("test"), None), extractor=toy_fx, **CHEAP)
    assert not any("/class_" in k for k in m)
    assert "fid" in m


def test_real_as_arrays_needs_an_extractor(toy: PreparedDataset, toy_fx) -> None:
    real = (toy.channel_first("train"), toy.labels["train"])
    syn = (toy.channel_first("test"), toy.labels["test"])
    with pytest.raises(ValueError, match="extractor"):
        evaluate(real, syn)
    no_ref = evaluate(real, syn, extractor=toy_fx, class_names=["dark", "bright"], **CHEAP)
    assert "fid/class_dark" in no_ref and "memorisation/fraction" not in no_ref
    with_ref = evaluate(real, syn, extractor=toy_fx, reference=(toy.channel_first("val"), toy.labels["val"]), **CHEAP)
    assert "memorisation/fraction" in with_ref and "fid/class_0" in with_ref


def test_detailed_result_carries_the_audit(toy: PreparedDataset, toy_fx) -> None:
    result = evaluate_detailed(toy, (toy.channel_first("test"), toy.labels["test"]), extractor=toy_fx, **CHEAP)
    assert result.audit is not None and len(result.audit.distances) == 12
    assert result.class_names == ["dark", "bright"]
    assert result.real_images.shape == (40, 1, 8, 8)


def test_inputs_are_checked_before_the_feature_net_is_trained(toy: PreparedDataset, session_home: Path) -> None:
    before = set((session_home / "features").glob("*")) if (session_home / "features").exists() else set()
    with pytest.raises(MedganError, match="differ"):
        evaluate(toy, (np.zeros((10, 1, 8, 8, 8), np.uint8), np.zeros(10, int)))
    after = set((session_home / "features").glob("*")) if (session_home / "features").exists() else set()
    assert before == after


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (np.zeros((10, 1, 8, 8, 8), np.uint8), np.zeros(10, int), r"real are 2D, 1 channel, 8×8, synthetic are 3D"),
        (np.zeros((10, 3, 8, 8), np.uint8), np.zeros(10, int), r"synthetic are 2D, 3 channels"),
        (np.zeros((10, 1, 16, 16), np.uint8), np.zeros(10, int), r"16×16"),
        (np.zeros((10, 1, 8, 8), np.float32), np.zeros(10, int), r"uint8"),
        (np.zeros((3, 1, 8, 8), np.uint8), np.zeros(3, int), r"too few synthetic samples.*k\+1 = 4"),
        (np.zeros((10, 1, 8, 8), np.uint8), np.zeros(10, int), r"missing from the synthetic set: bright"),
        (np.zeros((10, 1, 8, 8), np.uint8), np.array([0] * 7 + [1] * 3), r"class 'bright'.*3, need at least k\+1 = 4"),
        (np.zeros((10, 1, 8, 8), np.uint8), np.array([0] * 5 + [2] * 5), r"0\.\.1"),
    ],
)
def test_check_compatible_errors(toy: PreparedDataset, images: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(MedganError, match=match):
        check_compatible(toy.channel_first("train"), toy.labels["train"], images, labels, ["dark", "bright"], k=3)


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_load_synthetic_npz_and_prepared_folder(toy: PreparedDataset, tmp_path: Path) -> None:
    imgs, labs = toy.images["test"], toy.labels["test"].reshape(-1, 1).astype(np.uint8)
    syn = load_synthetic(_write(tmp_path / "s.npz", train_images=imgs, train_labels=labs), toy)
    assert syn.images.shape == (12, 1, 8, 8) and syn.labels.dtype == np.int64
    np.testing.assert_array_equal(syn.images[:, 0], imgs)

    sub = load_synthetic(tmp_path / "s.npz", toy, n_per_class=2, seed=1)
    assert np.bincount(sub.labels).tolist() == [2, 2]

    folder = load_synthetic(toy.path.parent, toy)
    assert len(folder.images) == 40  # a prepared dataset contributes its train split


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"images": np.zeros((4, 8, 8), np.uint8)}, "train_images and train_labels"),
        ({"train_images": np.zeros((4, 8, 8), np.float32), "train_labels": np.zeros(4)}, "uint8"),
        ({"train_images": np.zeros((4, 8, 8, 8), np.uint8), "train_labels": np.zeros(4)}, r"\(8, 8, 8\).*2D, 1 channel"),
        ({"train_images": np.zeros((4, 8, 8), np.uint8), "train_labels": np.zeros(3)}, "4 images but 3 labels"),
    ],
)
def test_load_synthetic_errors(toy: PreparedDataset, tmp_path: Path, arrays: dict, match: str) -> None:
    with pytest.raises(MedganError, match=match):
        load_synthetic(_write(tmp_path / "bad.npz", **arrays), toy)


def test_load_synthetic_missing_and_unreadable(toy: PreparedDataset, tmp_path: Path) -> None:
    with pytest.raises(MedganError, match="not found"):
        load_synthetic(tmp_path / "nope.npz", toy)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(MedganError, match="not a readable npz"):
        load_synthetic(tmp_path / "junk.npz", toy)


def _fake_generator(toy: PreparedDataset, class_names: list[str], num_classes: int, dataset_sha256: str):
    from medgan.synth.sampling import LoadedGenerator

    return LoadedGenerator(
        G=torch.nn.Identity(), class_names=class_names, num_classes=num_classes, z_dim=4, spatial_dims=2, channels=1,
        size=[8, 8], spacing=None, checkpoint_sha256="0" * 64, checkpoint_path="ckpt.pt",
        dataset={"name": "toy", "sha256": dataset_sha256}, config={}, family="resnet", device=torch.device("cpu"),
    )


def test_checkpoint_goes_through_sample_classes(toy: PreparedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate_mod = importlib.import_module("medgan.metrics.evaluate")  # the package re-exports evaluate()

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    calls: list[tuple] = []

    def load_generator(path, device):
        calls.append((Path(path), device))
        return _fake_generator(toy, ["dark", "bright"], 2, toy.info.sha256)

    def sample_classes(gen, n_per_class, seed):
        calls.append((n_per_class, seed))
        labels = np.repeat(np.arange(2), n_per_class)
        return np.full((len(labels), 1, 8, 8), 128, np.uint8), labels, gen.class_names

    monkeypatch.setattr(evaluate_mod, "load_generator", load_generator)
    monkeypatch.setattr(evaluate_mod, "sample_classes", sample_classes)
    syn = load_synthetic(run, toy, n_per_class=5, seed=3)
    assert calls == [(run, "cpu"), (5, 3)]
    assert syn.images.shape == (10, 1, 8, 8) and syn.source.startswith("checkpoint:")

    # The one "trained on this dataset" rule: other classes, or another dataset, are refused.
    monkeypatch.setattr(evaluate_mod, "load_generator",
                        lambda path, device: _fake_generator(toy, ["cat", "dog"], 2, toy.info.sha256))
    with pytest.raises(MedganError, match="classes"):
        load_synthetic(run, toy)
    monkeypatch.setattr(evaluate_mod, "load_generator",
                        lambda path, device: _fake_generator(toy, ["dark", "bright"], 2, "ab" * 32))
    with pytest.raises(MedganError, match="--real is not the dataset this checkpoint was trained on"):
        load_synthetic(run, toy)


def test_unconditional_checkpoint_is_refused(toy: PreparedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate_mod = importlib.import_module("medgan.metrics.evaluate")  # the package re-exports evaluate()

    ckpt = tmp_path / "step_1.pt"
    ckpt.write_bytes(b"")
    monkeypatch.setattr(evaluate_mod, "load_generator", lambda path, device: _fake_generator(toy, [], 0, toy.info.sha256))
    with pytest.raises(MedganError, match="unconditional"):
        load_synthetic(ckpt, toy)


def test_seen_restricts_the_audit_to_the_images_the_generator_learnt_from(toy: PreparedDataset, toy_fx) -> None:
    train, labels = toy.channel_first("train"), toy.labels["train"]
    seen = np.flatnonzero(np.arange(len(labels)) % 2 == 0)  # the generator saw the even images
    unseen = np.setdiff1d(np.arange(len(labels)), seen)
    some = np.linspace(0, len(seen) - 1, 10).astype(int)  # both classes
    copies_of_unseen = (train[unseen[some]], labels[unseen[some]])
    whole = evaluate_detailed(toy, copies_of_unseen, extractor=toy_fx, **CHEAP, metrics=["memorisation"])
    assert whole.metrics["memorisation/n_train"] == len(labels)
    assert whole.metrics["memorisation/min_distance"] < 1e-6  # against the whole split: "copies"
    part = evaluate_detailed(toy, copies_of_unseen, extractor=toy_fx, **CHEAP, metrics=["memorisation"], seen=seen)
    assert part.metrics["memorisation/n_train"] == len(seen)
    assert part.metrics["memorisation/min_distance"] > 1e-6  # it never saw them: no copy of anything it saw
    assert set(part.audit.nearest_train.tolist()) <= set(seen.tolist())  # indices into the whole split
    copies_of_seen = (train[seen[some]], labels[seen[some]])
    flagged = evaluate_detailed(toy, copies_of_seen, extractor=toy_fx, **CHEAP, metrics=["memorisation"], seen=seen)
    assert flagged.audit.nearest_train.tolist() == seen[some].tolist()
    assert flagged.metrics["memorisation/min_distance"] < 1e-6
    with pytest.raises(ValueError, match="indices into the 40 train images"):
        evaluate(toy, copies_of_seen, extractor=toy_fx, **CHEAP, metrics=["memorisation"], seen=np.array([3, 40]))


def test_metric_families_can_be_selected(toy: PreparedDataset, toy_fx) -> None:
    syn = (toy.channel_first("test"), toy.labels["test"])
    fid_only = evaluate(toy, syn, extractor=toy_fx, **CHEAP, metrics=("fid",))
    assert {k for k in fid_only if not k.startswith(("n_", "domain_classifier/"))} == {
        "fid", "fid/class_dark", "fid/class_bright", "fid/class_mean",
    }
    full = evaluate(toy, syn, extractor=toy_fx, **CHEAP)
    assert fid_only["fid"] == pytest.approx(full["fid"])
    audit_only = evaluate(toy, syn, extractor=toy_fx, **CHEAP, metrics=["memorisation"])
    assert "memorisation/fraction" in audit_only and "fid" not in audit_only
    with pytest.raises(ValueError, match="allowed: fid, kid, prdc, memorisation"):
        evaluate(toy, syn, extractor=toy_fx, **CHEAP, metrics=("is",))


def test_fid_alone_needs_two_samples_not_k_plus_one(toy: PreparedDataset, toy_fx) -> None:
    x, y = toy.channel_first("test")[[0, 1, 6, 7]], np.array([0, 0, 1, 1])
    assert np.isfinite(evaluate(toy, (x, y), extractor=toy_fx, **CHEAP, metrics=("fid",))["fid/class_dark"])
    with pytest.raises(MedganError, match=r"k\+1 = 4"):
        evaluate(toy, (x, y), extractor=toy_fx, **CHEAP)
    with pytest.raises(MedganError, match=r"need at least 2 \(FID and KID\) per class"):
        evaluate(toy, (x[[0, 2, 3]], y[[0, 2, 3]]), extractor=toy_fx, **CHEAP, metrics=("fid",))


def test_extractors_are_reused_within_a_process(toy: PreparedDataset, toy_fx) -> None:
    cache = Path(toy_fx.info["cache_path"]).parent
    again = get_feature_extractor(toy, "cnn", epochs=4, batch_size=8, cache_dir=cache)
    assert again is toy_fx


def test_value_metrics_count_the_pieces_of_a_mask() -> None:
    from medgan.metrics.evaluate import value_metrics

    real = np.zeros((4, 1, 12, 12), np.uint8)
    real[:, :, 2:6, 2:6] = 255  # one square each
    syn = real.copy()
    syn[:2, :, 9, 9] = 255  # a stray pixel in two of them
    syn[3, :, 6, 6] = 255  # a pixel touching the corner: the same piece (corners connect)
    m = value_metrics(real, syn)
    assert (m["values/components_real"], m["values/one_piece_real"]) == (1.0, 1.0)
    assert (m["values/components_synthetic"], m["values/one_piece_synthetic"]) == (1.5, 0.5)
    grey = np.random.default_rng(0).integers(0, 256, (4, 1, 12, 12), dtype=np.uint8)
    assert value_metrics(grey, syn) == {}  # not mask-like data: nothing to count


def _squares(sides: list[int]) -> np.ndarray:
    """uint8 (N, 1, 12, 12) masks, each one filled square of the given side."""
    x = np.zeros((len(sides), 1, 12, 12), np.uint8)
    for i, side in enumerate(sides):
        x[i, :, :side, :side] = 255
    return x


def test_value_metrics_read_each_class_size_and_see_sizes_drawn_backwards() -> None:
    from medgan.metrics.evaluate import value_metrics

    labels = np.array([0, 0, 0, 1, 1, 1])
    real = _squares([2, 3, 4, 4, 5, 6])  # class 1 ("large") is the larger, with one tie
    names = ["small", "large"]
    right = value_metrics(real, _squares([3, 3, 3, 5, 5, 5]), real_labels=labels, synthetic_labels=labels,
                          class_names=names)
    assert right["values/foreground_real/class_small"] == pytest.approx((4 + 9 + 16) / 3 / 144)
    assert right["values/foreground_synthetic/class_large"] == pytest.approx(25 / 144)
    # Real: 8 of 9 (small, large) pairs ordered, the tie counting a half.
    assert right["values/size_auc_real/class_large"] == pytest.approx(8.5 / 9)
    assert right["values/size_auc_real/class_small"] == pytest.approx(0.5 / 9)
    assert right["values/size_auc_synthetic/class_large"] == 1.0
    backwards = value_metrics(real, _squares([5, 5, 6, 2, 3, 3]), real_labels=labels, synthetic_labels=labels,
                              class_names=names)
    assert backwards["values/size_auc_synthetic/class_large"] == 0.0
    # Without labels, no per-class figures.
    assert not any("/class_" in k for k in value_metrics(real, real))


def _bars(widths: list[int]) -> np.ndarray:
    """uint8 (N, 1, 12, 12) masks, each one 8-pixel-long bar of the given width (same length, other thickness)."""
    x = np.zeros((len(widths), 1, 12, 12), np.uint8)
    for i, w in enumerate(widths):
        x[i, :, 2:10, 2:2 + w] = 255
    return x


def test_value_metrics_read_each_class_thickness_and_see_it_drawn_flat() -> None:
    from medgan.metrics.evaluate import value_metrics

    labels = np.array([0, 0, 0, 1, 1, 1])
    names = ["thin", "thick"]
    real = _bars([1, 1, 2, 3, 3, 4])
    m = value_metrics(real, _bars([1, 1, 1, 1, 1, 1]), real_labels=labels, synthetic_labels=labels,
                      class_names=names)
    # City-block depth: a 1-wide bar is all surface (1); a 3-wide bar has 18 surface pixels and 6 at depth 2
    # ((18 + 2 * 6) / 24), a 4-wide one 20 and 12 ((20 + 2 * 12) / 32).
    assert m["values/depth_real/class_thin"] == pytest.approx((1 + 1 + 1) / 3)
    assert m["values/depth_real/class_thick"] == pytest.approx((2 * 30 / 24 + 44 / 32) / 3)
    assert m["values/depth_auc_real/class_thick"] == 1.0
    # Bars all one pixel wide: the thickness tells no class, though the real classes differ by it.
    assert m["values/depth_synthetic/class_thick"] == 1.0
    assert m["values/depth_auc_synthetic/class_thick"] == 0.5
    # Drawn the right way round: the thick class's bars drawn thicker.
    right = value_metrics(real, _bars([1, 1, 1, 3, 3, 3]), real_labels=labels, synthetic_labels=labels,
                          class_names=names)
    assert right["values/depth_auc_synthetic/class_thick"] == 1.0
    assert right["values/depth_synthetic/class_thin"] == 1.0
