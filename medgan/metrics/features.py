"""The domain feature space: the penultimate layer of a classifier trained on the real training split.

Inception-v3 features were learnt on photographs; on grey ultrasound, X-ray or CT they rank
images by cues that do not matter clinically, and its weights cannot be downloaded on an offline
hospital machine. medgan therefore measures in a space learnt from the dataset itself: a MONAI
classifier (:func:`medgan.networks.classifier.build_classifier`) is trained on the real ``train``
split, selected on ``val`` by balanced accuracy, scored on ``test`` (the "domain classifier
accuracy" that every report quotes, because a feature space is only as meaningful as the classifier
behind it), and its pooled penultimate activations are the features.

The trained network is cached per dataset, architecture and training settings (epochs, batch size,
learning rate, seed, architecture options) under
``$MEDGAN_HOME/features/<sha256[:16]>-<arch>-<settings>.pt`` with a ``.pt.sha256`` sidecar, so other
settings train (and cache) their own net instead of silently reusing one; the file is loaded with
``torch.load(weights_only=True)`` only after its hash matches the sidecar.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.data.dataset import PreparedDataset
from medgan.data.scaling import to_model_input, to_uint8
from medgan.errors import MedganError
from medgan.networks.classifier import ARCHS, FeatureNet, build_classifier
from medgan.training.classifier import classifier_scores, predict_proba, train_classifier
from medgan.utils import atomic_file, file_sha256, write_text_atomic

__all__ = [
    "FEATURE_FORMAT",
    "FeatureExtractor",
    "feature_cache_path",
    "get_feature_extractor",
    "inception_extractor",
]

FEATURE_FORMAT = "medgan-features-v1"
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
DEFAULT_LR = 1e-3

# Extractors already built in this process, by (cache file, its sha256, device): a training loop
# that evaluates every N steps gets the same object back, with its memoised real features.
_LOADED: dict[tuple[str, str, str], FeatureExtractor] = {}


def _medgan_home() -> Path:
    """``$MEDGAN_HOME``, default ``~/.cache/medgan`` (the same rule as the data cache)."""
    return Path(os.environ.get("MEDGAN_HOME") or Path.home() / ".cache" / "medgan").expanduser()


def _settings(epochs: int, batch_size: int, lr: float, seed: int,
              arch_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The training settings that make a feature net (and key its cache file)."""
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(arch_kwargs.items())}
    return {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
            "arch_kwargs": kwargs}


def feature_cache_path(
    dataset_sha256: str,
    arch: str,
    cache_dir: str | Path | None = None,
    *,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    arch_kwargs: dict[str, Any] | None = None,
) -> Path:
    """``<cache_dir or $MEDGAN_HOME/features>/<sha256[:16]>-<arch>-<settings>.pt``.

    ``<settings>`` is a short hash of the training settings (the arguments of
    :func:`get_feature_extractor`), so a net trained with other settings is never taken for this one.
    """
    folder = Path(cache_dir) if cache_dir is not None else _medgan_home() / "features"
    settings = _settings(epochs, batch_size, lr, seed, arch_kwargs or {})
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return folder / f"{dataset_sha256[:16]}-{arch}-{key}.pt"


class FeatureExtractor:
    """Maps uint8 images ``(N, C, *spatial)`` to features ``(N, F)`` (float64).

    Build one with :func:`get_feature_extractor` (domain features, trained and cached) or
    :func:`inception_extractor` (local Inception-v3 weights). Features of a dataset's splits are
    memoised (:meth:`split_features`), so a training loop that evaluates every N steps only pays
    for the synthetic images.

    Args:
        net: maps a float batch in ``[-1, 1]`` (``(B, C, *spatial)``) to ``(B, F)``.
        name: the feature space, e.g. ``"cnn"`` or ``"inception"``.
        scores: the domain classifier's test scores (``accuracy``, ``balanced_accuracy``), if any.
        device: where ``net`` runs.
        batch_size: images per forward pass.
        info: provenance (dataset sha256, training settings, selected epoch, ...).
    """

    def __init__(
        self,
        net: torch.nn.Module,
        *,
        name: str,
        scores: dict[str, float] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.net = net.to(device).eval()
        self.name = name
        self.scores = dict(scores or {})
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.info = dict(info or {})
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    @torch.no_grad()
    def extract(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, C, *spatial)`` -> float64 ``(N, F)``."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, C, *spatial), got {images.dtype}")
        out = [
            self.net(to_model_input(images[i : i + self.batch_size]).to(self.device)).double().cpu()
            for i in range(0, len(images), self.batch_size)
        ]
        if not out:
            return np.zeros((0, self.num_features))
        return torch.cat(out).numpy()

    @property
    def num_features(self) -> int:
        return int(getattr(self.net, "num_features", 0))

    def split_features(self, dataset: PreparedDataset, split: str) -> np.ndarray:
        """Features of ``dataset``'s ``split`` (``train``, ``val``, ``test``), computed once."""
        key = (dataset.info.sha256, split)
        if key not in self._memo:
            self._memo[key] = self.extract(dataset.channel_first(split))
        return self._memo[key]

    def domain_metrics(self) -> dict[str, float]:
        """``domain_classifier/accuracy`` and ``/balanced_accuracy`` on the real test split."""
        return {f"domain_classifier/{k}": float(v) for k, v in self.scores.items()}


def _load_cached(path: Path, dataset: PreparedDataset, arch: str,
                 settings: dict[str, Any]) -> dict[str, Any] | None:
    """The cached state if its sidecar matches and it is for ``dataset``, ``arch`` and ``settings``; else None."""
    sidecar = path.with_name(path.name + ".sha256")
    if not path.is_file():
        return None
    if not sidecar.is_file() or sidecar.read_text().split()[:1] != [file_sha256(path)]:
        warnings.warn(f"{path}: feature-net cache does not match its sha256 sidecar; retraining it", stacklevel=3)
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for an unreadable file
        warnings.warn(f"{path}: unreadable feature-net cache ({exc.__class__.__name__}); retraining it", stacklevel=3)
        return None
    if (
        not isinstance(state, dict)
        or state.get("format") != FEATURE_FORMAT
        or state.get("dataset_sha256") != dataset.info.sha256
        or state.get("arch") != arch
        or _settings(state.get("epochs", -1), state.get("batch_size", -1), state.get("lr", -1.0),
                     state.get("seed", -1), state.get("arch_kwargs") or {}) != settings
    ):
        warnings.warn(f"{path}: feature-net cache is for another dataset, format or settings; retraining it",
                      stacklevel=3)
        return None
    return state


def _save_cached(path: Path, state: dict[str, Any]) -> None:
    with atomic_file(path) as tmp:
        torch.save(state, tmp)
        digest = file_sha256(tmp)
    write_text_atomic(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n")


def get_feature_extractor(
    dataset: PreparedDataset,
    arch: str = "cnn",
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    progress: Callable[[dict[str, float]], None] | None = None,
    cache_dir: str | Path | None = None,
    retrain: bool = False,
    **arch_kw: Any,
) -> FeatureExtractor:
    """The domain feature extractor of ``dataset``: loaded from the cache, or trained and cached.

    The cache is keyed on the dataset, ``arch`` and the training settings (``epochs``,
    ``batch_size``, ``lr``, ``seed``, ``arch_kw``): other settings train their own net, and the
    file records them (``extractor.info``). Within one process, repeated calls for the same cache
    file and device return the same extractor object.

    Args:
        dataset: the real dataset; its ``train`` split trains the classifier, ``val`` selects the
            epoch (balanced accuracy) and ``test`` scores it.
        arch: a :data:`medgan.networks.classifier.ARCHS` name.
        device: where to train and extract.
        seed: seeds initialisation and shuffling.
        epochs: training epochs.
        batch_size: training batch size.
        lr: AdamW learning rate.
        progress: called after every training epoch with the history row (for a progress bar).
        cache_dir: where the cache lives (default ``$MEDGAN_HOME/features``).
        retrain: ignore and replace an existing cache file.
        **arch_kw: passed to :func:`~medgan.networks.classifier.build_classifier`.

    Raises:
        ValueError: for an unknown ``arch``.
        MedganError: when the dataset has fewer than two classes or an empty split.

    Example:
        >>> fx = get_feature_extractor(load_dataset("breastmnist"))
        >>> fx.extract(ds.channel_first("test")).shape
        (156, 64)
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown classifier arch {arch!r}; allowed: {', '.join(ARCHS)}")
    info = dataset.info
    if info.num_classes < 2:
        raise MedganError("a domain feature space needs a dataset with at least two classes", dataset.path)
    for split in ("train", "val", "test"):
        if len(dataset.labels[split]) == 0:
            raise MedganError(f"the {split} split is empty; the feature net needs train, val and test", dataset.path)
    settings = _settings(epochs, batch_size, lr, seed, arch_kw)
    path = feature_cache_path(info.sha256, arch, cache_dir, epochs=epochs, batch_size=batch_size, lr=lr,
                              seed=seed, arch_kwargs=arch_kw)
    if not retrain and path.is_file():
        key = (str(path.resolve()), file_sha256(path), str(torch.device(device)))
        if key in _LOADED:
            return _LOADED[key]
    state = None if retrain else _load_cached(path, dataset, arch, settings)

    if state is None:
        # Section. Train on real train, select on val, score on test.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_classifier(arch, info.spatial_dims, info.channels, info.num_classes, **arch_kw)
        model, history = train_classifier(
            model,
            (dataset.channel_first("train"), dataset.labels["train"]),
            (dataset.channel_first("val"), dataset.labels["val"]),
            epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress,
        )
        scores = classifier_scores(
            predict_proba(model, dataset.channel_first("test"), device=device), dataset.labels["test"]
        )
        selected = next(row for row in history if row["selected"])
        state = {
            "format": FEATURE_FORMAT,
            "arch": arch,
            "arch_kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in arch_kw.items()},
            "spatial_dims": info.spatial_dims,
            "in_channels": info.channels,
            "num_classes": info.num_classes,
            "class_names": list(info.class_names),
            "dataset_sha256": info.sha256,
            "dataset_name": info.name,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "test_accuracy": scores["accuracy"],
            "test_balanced_accuracy": scores["balanced_accuracy"],
            "val_balanced_accuracy": selected["val_balanced_accuracy"],
            "selected_epoch": int(selected["epoch"]),
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
        }
        _save_cached(path, state)

    # Section. Rebuild the network from the (cached or fresh) state.
    model = build_classifier(
        state["arch"], state["spatial_dims"], state["in_channels"], state["num_classes"], **state["arch_kwargs"]
    )
    model.load_state_dict(state["state_dict"])
    provenance = {k: v for k, v in state.items() if k != "state_dict"}
    provenance["cache_path"] = str(path)
    extractor = FeatureExtractor(
        FeatureNet(model),
        name=arch,
        scores={"accuracy": state["test_accuracy"], "balanced_accuracy": state["test_balanced_accuracy"]},
        device=device,
        info=provenance,
    )
    _LOADED[(str(path.resolve()), file_sha256(path), str(torch.device(device)))] = extractor
    return extractor


class _InceptionFeatures(torch.nn.Module):
    """``[-1, 1]`` float batch -> Inception-v3 pool features (2048), via torchmetrics' wrapper."""

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.inception = NoTrainInceptionV3(
            name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights_path)
        )
        self.num_features = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"Inception features are 2D only; got a batch of shape {tuple(x.shape)}")
        u8 = to_uint8(x)  # the wrapper wants uint8
        if u8.shape[1] == 1:
            u8 = u8.expand(-1, 3, *u8.shape[2:])  # grey -> RGB
        return self.inception(u8).reshape(len(x), -1)


def inception_extractor(weights_path: str | Path, device: str | torch.device = "cpu") -> FeatureExtractor:
    """An Inception-v3 feature extractor from local weights (2D only; needs ``torch-fidelity``).

    For comparison with published FIDs only: on medical images the domain feature space of
    :func:`get_feature_extractor` is the one medgan reports by default.

    Args:
        weights_path: a local ``pt_inception-2015-12-05`` weights file (torch-fidelity's format).
        device: where it runs.

    Raises:
        MedganError: when the file is missing or torch-fidelity is not installed.
    """
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise MedganError("Inception weights file not found", weights_path)
    try:
        net = _InceptionFeatures(weights_path)
    except ModuleNotFoundError as exc:
        raise MedganError(f"Inception features need torch-fidelity ({exc})", weights_path) from None
    return FeatureExtractor(net, name="inception", device=device, info={"weights": str(weights_path)})
