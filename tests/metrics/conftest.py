"""Metric-test fixtures: one torch thread, and the domain feature nets of the real datasets,
trained once per session into the session's ``MEDGAN_HOME/features`` (where the CLI finds them).

One torch thread: the test machines share two cores, and OpenMP threads contending for them make
small convolutions orders of magnitude slower.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medgan.data.dataset import PreparedDataset, load_dataset
from tests.conftest import one_torch_thread, real_npz

# Few epochs for the 3D net keep the session short; the 2D net uses the CLI's defaults, so that
# the CLI tests reuse the cached file.
EPOCHS_3D = 5


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def breast() -> PreparedDataset:
    return load_dataset(real_npz("breastmnist.npz"))


@pytest.fixture(scope="session")
def adrenal() -> PreparedDataset:
    return load_dataset(real_npz("adrenalmnist3d.npz"))


@pytest.fixture(scope="session")
def breast_fx(breast: PreparedDataset, session_home: Path):
    from medgan.metrics.features import get_feature_extractor

    with one_torch_thread():
        return get_feature_extractor(breast, "cnn", cache_dir=session_home / "features")


@pytest.fixture(scope="session")
def adrenal_fx(adrenal: PreparedDataset, session_home: Path):
    from medgan.metrics.features import get_feature_extractor

    with one_torch_thread():
        return get_feature_extractor(adrenal, "cnn", epochs=EPOCHS_3D, cache_dir=session_home / "features")
