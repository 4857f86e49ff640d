"""The cached domain feature extractor."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from medgan.errors import MedganError
from medgan.metrics.features import feature_cache_path, get_feature_extractor, inception_extractor
from tests.conftest import make_dark_bright_toy


def test_trains_once_then_loads_from_the_cache(tmp_path: Path) -> None:
    ds = make_dark_bright_toy(tmp_path / "toy")
    cache = tmp_path / "features"
    epochs_seen: list[float] = []
    fx = get_feature_extractor(
        ds, "cnn", epochs=3, batch_size=8, cache_dir=cache, progress=lambda r: epochs_seen.append(r["epoch"])
    )
    assert epochs_seen == [1.0, 2.0, 3.0]

    path = feature_cache_path(ds.info.sha256, "cnn", cache, epochs=3, batch_size=8)
    assert path.is_file() and path.name.startswith(f"{ds.info.sha256[:16]}-cnn-")
    assert path.with_name(path.name + ".sha256").read_text().split()[1] == path.name
    assert fx.info["epochs"] == 3 and fx.info["dataset_sha256"] == ds.info.sha256
    # Dark vs bright noise is trivially separable: the feature net must get it right.
    assert fx.scores == {"accuracy": 1.0, "balanced_accuracy": 1.0}
    assert fx.domain_metrics() == {"domain_classifier/accuracy": 1.0, "domain_classifier/balanced_accuracy": 1.0}

    feats = fx.extract(ds.channel_first("test"))
    assert feats.shape == (12, fx.num_features) and feats.dtype == np.float64

    again = get_feature_extractor(ds, "cnn", epochs=3, batch_size=8, cache_dir=cache,
                                  progress=lambda r: epochs_seen.append(-1))
    assert epochs_seen == [1.0, 2.0, 3.0]  # loaded, not retrained
    np.testing.assert_allclose(again.extract(ds.channel_first("test")), feats, rtol=1e-5, atol=1e-6)


def test_split_features_are_memoised(tmp_path: Path) -> None:
    ds = make_dark_bright_toy(tmp_path / "toy")
    fx = get_feature_extractor(ds, "cnn", epochs=1, cache_dir=tmp_path / "features")
    assert fx.split_features(ds, "train") is fx.split_features(ds, "train")
    assert fx.split_features(ds, "train").shape[0] == 40


def test_a_tampered_cache_is_retrained(tmp_path: Path) -> None:
    ds = make_dark_bright_toy(tmp_path / "toy")
    cache = tmp_path / "features"
    get_feature_extractor(ds, "cnn", epochs=1, cache_dir=cache)
    path = feature_cache_path(ds.info.sha256, "cnn", cache, epochs=1)
    path.write_bytes(path.read_bytes() + b"tampered")
    retrained: list[dict] = []
    with pytest.warns(UserWarning, match="sha256 sidecar"):
        get_feature_extractor(ds, "cnn", epochs=1, cache_dir=cache, progress=retrained.append)
    assert len(retrained) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten cache verifies again
        get_feature_extractor(ds, "cnn", epochs=1, cache_dir=cache)


def test_3d_feature_space(tmp_path: Path) -> None:
    ds = make_dark_bright_toy(tmp_path / "toy3d", size=(8, 8, 8), n=(16, 6, 6))
    fx = get_feature_extractor(ds, "cnn", epochs=2, cache_dir=tmp_path / "features")
    assert fx.extract(ds.channel_first("test")).shape == (6, 64)


def test_default_cache_lives_under_medgan_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDGAN_HOME", str(tmp_path / "home"))
    path = feature_cache_path("ab" * 32, "resnet18")
    assert path.parent == tmp_path / "home" / "features" and path.name.startswith(f"{'ab' * 8}-resnet18-")


def test_errors(tmp_path: Path) -> None:
    ds = make_dark_bright_toy(tmp_path / "toy")
    with pytest.raises(ValueError, match="allowed: cnn, resnet10, resnet18, densenet121"):
        get_feature_extractor(ds, "inception", cache_dir=tmp_path)
    with pytest.raises(MedganError, match="not found"):
        inception_extractor(tmp_path / "missing.pth")


def test_inception_needs_torch_fidelity(tmp_path: Path) -> None:
    pytest.importorskip("torchmetrics")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        weights = tmp_path / "weights.pth"
        weights.write_bytes(b"")
        with pytest.raises(MedganError, match="torch-fidelity"):
            inception_extractor(weights)
    else:
        pytest.skip("torch-fidelity is installed; the error path cannot be reached")
