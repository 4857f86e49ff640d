"""The prepared-dataset format that everything downstream of ``medgan preprocess`` consumes.

A prepared dataset is an npz in the MedMNIST layout plus a ``dataset.json`` sidecar:

- ``train_images``, ``val_images``, ``test_images``: uint8, ``(N, H, W)`` grey, ``(N, H, W, 3)`` RGB
  or ``(N, D, H, W)`` volumes; ``train_labels`` etc.: uint8 or integer ``(N, 1)``.
- the sidecar (:class:`DatasetInfo`) holds the class names, channels, ``spatial_dims``, the image
  size, the source, the preprocessing parameters, per-split class counts and the npz's sha256.

Where the sidecar lives: a folder holds ``dataset.npz`` and ``dataset.json``; a bare ``X.npz`` may
have ``X.json`` beside it. An official MedMNIST file needs none: its sidecar is derived from the
built-in registry (:mod:`medgan.data.registry`), recognised by its file name.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from medgan.configio import bounded
from medgan.data.io import check_finite
from medgan.errors import MedganError
from medgan.utils import file_sha256, write_text_atomic

__all__ = [
    "SPLITS",
    "DatasetInfo",
    "PreparedDataset",
    "class_counts",
    "class_slugs",
    "describe_images",
    "load_dataset",
    "resolve_dataset_path",
    "save_prepared",
]

SPLITS = ("train", "val", "test")
NPZ_NAME = "dataset.npz"
JSON_NAME = "dataset.json"


@dataclass
class DatasetInfo:
    """The ``dataset.json`` sidecar of a prepared dataset.

    Args:
        name: a short name (``breastmnist``).
        class_names: names by label index.
        channels: 1 or 3.
        spatial_dims: 2 (images) or 3 (volumes).
        size: the spatial shape, ``[H, W]`` or ``[D, H, W]``.
        source: where the data came from (a path, or ``medmnist:<name>``).
        preprocessing: the parameters that built it (empty for official files).
        counts: per split, the number of images of each class.
        sha256: hex sha256 of the npz.
        spacing: voxel or pixel spacing in mm, when known.
    """

    name: str
    class_names: list[str]
    channels: int
    spatial_dims: int
    size: list[int]
    source: str
    sha256: str
    counts: dict[str, list[int]] = field(default_factory=dict)
    # Read back as written: these records are not held to the config rule that floats be finite.
    preprocessing: dict[str, Any] = bounded(default_factory=dict, finite=False)
    spacing: list[float] | None = bounded(None, finite=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> DatasetInfo:
        """The sidecar from its JSON mapping: unknown keys are ignored; missing or mistyped ones are errors.

        Raises:
            MedganError: naming ``path`` and every missing key, or the first key of the wrong type.
        """
        from medgan.configio import to_dataclass

        if not isinstance(data, dict):
            raise MedganError("sidecar must be a JSON object", path)
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise MedganError(f"sidecar is missing key(s) {', '.join(missing)}", path)
        try:
            info = to_dataclass(cls, {k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except MedganError as exc:
            raise MedganError(f"sidecar {str(exc).replace('config key', 'key')}", path) from None
        dims_ok = info.spatial_dims in (2, 3) and len(info.size) == info.spatial_dims
        if info.channels not in (1, 3) or not dims_ok:
            raise MedganError(f"sidecar has channels {info.channels}, spatial_dims {info.spatial_dims} and size "
                              f"{info.size}; medgan reads 1 or 3 channels, 2D or 3D, one size per dimension",
                              path)
        return info


@dataclass
class PreparedDataset:
    """A prepared dataset in memory.

    ``images[split]`` keeps the npz layout (uint8, channels last for RGB); use
    :meth:`channel_first` for ``(N, C, *spatial)`` arrays. ``labels[split]`` is int64 ``(N,)``.
    """

    path: Path
    info: DatasetInfo
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    def channel_first(self, split: str) -> np.ndarray:
        """The split's images as uint8 ``(N, C, H, W)`` or ``(N, C, D, H, W)``."""
        return to_channel_first(self.images[split], self.info.channels)

    def class_index(self, name_or_index: str | int) -> int:
        """Resolve a class given by name (case-insensitive) or index.

        Raises:
            MedganError: for an unknown class; the message lists the valid names.
        """
        return resolve_class(name_or_index, self.info.class_names)


def resolve_class(name_or_index: str | int, class_names: list[str]) -> int:
    """Resolve a class name (case-insensitive) or index against ``class_names``."""
    text = str(name_or_index).strip()
    lowered = [c.lower() for c in class_names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    valid = ", ".join(f"{i}: {c}" for i, c in enumerate(class_names))
    raise MedganError(f"unknown class '{name_or_index}' (valid: {valid})")


def class_slugs(class_names: Sequence[str]) -> list[str]:
    """File- and key-safe class names, unique: the one slug rule (folders, file names, metric keys).

    Example:
        >>> class_slugs(["Normal, benign", "malignant", "?", "malignant"])
        ['normal_benign', 'malignant', 'class2', 'malignant_3']
    """
    slugs: list[str] = []
    for i, name in enumerate(class_names):
        slug = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or f"class{i}"
        slugs.append(slug if slug not in slugs else f"{slug}_{i}")
    return slugs


def describe_images(shape: Sequence[int]) -> str:
    """One image's ``(C, *spatial)`` shape in words: ``(1, 28, 28)`` -> ``"2D, 1 channel, 28×28"``."""
    channels, spatial = int(shape[0]), [int(s) for s in shape[1:]]
    return f"{len(spatial)}D, {channels} channel{'s' if channels != 1 else ''}, {'×'.join(map(str, spatial))}"


def to_channel_first(images: np.ndarray, channels: int) -> np.ndarray:
    """``(N, *spatial)`` or ``(N, *spatial, 3)`` to ``(N, C, *spatial)``."""
    if channels == 1:
        return images[:, None]
    return np.moveaxis(images, -1, 1)


def to_channels_last(images: np.ndarray) -> np.ndarray:
    """``(N, C, *spatial)`` to the npz layout: grey drops C, RGB moves it last."""
    if images.shape[1] == 1:
        return images[:, 0]
    return np.moveaxis(images, 1, -1)


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    """Images per class, as a list of ints."""
    return np.bincount(labels.astype(np.int64), minlength=num_classes)[:num_classes].tolist()


_SIZED = re.compile(r"^(?P<name>[a-z0-9]+?)(?:_(?P<size>\d+))?$")


def _registry_info(npz: Path, sha256: str, counts: dict[str, list[int]], shape: tuple[int, ...]) -> DatasetInfo | None:
    """Derive the sidecar of an official MedMNIST file from its name."""
    from medgan.data.registry import REGISTRY

    m = _SIZED.match(npz.stem.lower())
    if m is None or m.group("name") not in REGISTRY:
        return None
    spec = REGISTRY[m.group("name")]
    spatial = list(shape[1:1 + spec.spatial_dims])
    return DatasetInfo(
        name=npz.stem.lower(),
        class_names=list(spec.label_names),
        channels=spec.channels,
        spatial_dims=spec.spatial_dims,
        size=spatial,
        source=f"medmnist:{npz.stem.lower()}",
        sha256=sha256,
        counts=counts,
        preprocessing={},
        spacing=None,
    )


def _sidecar_for(npz: Path) -> Path | None:
    for cand in (npz.with_suffix(".json"), npz.parent / JSON_NAME if npz.name == NPZ_NAME else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def read_npz_splits(npz: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read the MedMNIST layout from ``npz`` without pickle.

    Raises:
        MedganError: when the file is not a readable npz, or a key is missing or malformed.
    """
    try:
        with np.load(npz, allow_pickle=False) as data:
            keys = set(data.files)
            missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in keys]
            if missing:
                raise MedganError(f"npz is missing key(s) {', '.join(missing)}", npz)
            images = {s: data[f"{s}_images"] for s in SPLITS}
            labels = {s: data[f"{s}_labels"] for s in SPLITS}
    except MedganError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MedganError(f"not a readable npz ({exc.__class__.__name__})", npz) from None
    for s in SPLITS:
        labels[s] = check_split_arrays(images[s], labels[s], s, npz)
    return images, labels


def check_split_arrays(images: np.ndarray, labels: np.ndarray, split: str, path: Path) -> np.ndarray:
    """Check one split of the MedMNIST layout; return its labels as int64 ``(N,)``.

    Raises:
        MedganError: images that are not uint8, more than one label per image, or counts that differ.
    """
    for key, array in ((f"{split}_images", images), (f"{split}_labels", labels)):
        check_finite(array, path, what=f"{key} ", fix="medgan needs uint8 images and integer labels")
    if images.dtype != np.uint8:
        raise MedganError(f"{split}_images must be uint8, found {images.dtype}", path)
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise MedganError(f"{split}_labels has shape {labels.shape}; medgan needs one label per image", path)
    flat = _class_indices(labels.reshape(-1), f"{split}_labels", path)
    if len(flat) != len(images):
        raise MedganError(f"{split}: {len(images)} images but {len(flat)} labels", path)
    return flat


def _class_indices(labels: np.ndarray, key: str, path: Path) -> np.ndarray:
    """``labels`` as int64 class indices; a float that is not whole, or a negative label, is an error."""
    hint = "labels are class indices 0, 1, 2, ..."
    if labels.dtype.kind == "f":
        bad = labels[~(labels == np.round(labels))]  # NaN compares unequal too
        if bad.size:
            raise MedganError(f"{key} holds {bad.size} label(s) that are not whole numbers (e.g. {bad[0]}); "
                              f"{hint}", path)
    elif labels.dtype.kind not in "iub":
        raise MedganError(f"{key} must hold integer class indices, found {labels.dtype}", path)
    flat = labels.astype(np.int64)
    negative = flat[flat < 0]
    if negative.size:
        raise MedganError(f"{key} holds {negative.size} negative label(s) (e.g. {negative[0]}); {hint}", path)
    return flat


def resolve_dataset_path(name_or_path: str | Path, size: int | None = None) -> Path:
    """Turn a dataset argument into an npz path.

    A path to a folder (holding ``dataset.npz``) or to an npz is used as is. Otherwise the argument
    is a registry name (``breastmnist``, ``breastmnist_64``), fetched from the cache or a mirror
    (or downloaded) by :func:`medgan.data.fetch.fetch`.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        npz = p / NPZ_NAME
        if not npz.is_file():
            raise MedganError(f"folder has no {NPZ_NAME}; is it a prepared dataset?", p)
        return npz
    if p.suffix == ".npz" or p.exists() or "/" in str(name_or_path):
        if not p.is_file():
            raise MedganError("dataset file not found", p)
        return p
    from medgan.data.fetch import fetch
    from medgan.data.registry import get_spec

    m = _SIZED.match(str(name_or_path).lower())
    name = m.group("name") if m else str(name_or_path)
    spec = get_spec(name)
    want = size or (int(m.group("size")) if m and m.group("size") else 28)
    return fetch(spec.name, size=want)


def load_dataset(name_or_path: str | Path, size: int | None = None) -> PreparedDataset:
    """Load a prepared dataset (a folder, an npz, or a registry name).

    Args:
        name_or_path: ``breastmnist``, ``breastmnist_64``, ``path/to/x.npz`` or a prepared folder.
        size: for a registry name, the MedMNIST size (28, 64, ...).

    Raises:
        MedganError: when it cannot be found or read, or the sidecar disagrees with the arrays.

    Example:
        >>> ds = load_dataset("breastmnist")
        >>> ds.channel_first("train").shape
        (546, 1, 28, 28)
    """
    npz = resolve_dataset_path(name_or_path, size)
    images, labels = read_npz_splits(npz)
    sha = file_sha256(npz)
    sidecar = _sidecar_for(npz)
    if sidecar is not None:
        try:
            raw = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MedganError(f"not a readable dataset.json ({exc})", sidecar) from None
        info = DatasetInfo.from_dict(raw, sidecar)
        if info.sha256 and info.sha256 != sha:
            raise MedganError(f"sha256 of {npz.name} does not match its sidecar (was the npz changed?)", sidecar)
        info.sha256 = sha
    else:
        n_cls = int(max(int(lab.max()) if lab.size else -1 for lab in labels.values())) + 1
        n_images = sum(len(lab) for lab in labels.values())
        if n_cls > max(n_images, 2):  # a stray huge label would otherwise make that many empty classes
            sidecar_name = npz.with_suffix(".json").name
            raise MedganError(f"labels run up to {n_cls - 1}, but there are only {n_images} images; without a "
                              f"sidecar the classes are 0..max label (add {sidecar_name} with class_names)", npz)
        counts = {s: class_counts(labels[s], max(n_cls, 1)) for s in SPLITS}
        derived = _registry_info(npz, sha, counts, images["train"].shape)
        if derived is None:
            channels = 3 if images["train"].ndim == 4 and images["train"].shape[-1] == 3 else 1
            dims = images["train"].ndim - 1 - (1 if channels == 3 else 0)
            derived = DatasetInfo(
                name=npz.stem, class_names=[str(i) for i in range(n_cls)], channels=channels,
                spatial_dims=dims, size=list(images["train"].shape[1:1 + dims]), source=str(npz),
                sha256=sha, counts=counts,
            )
        info = derived
    _check_consistent(info, images, labels, npz)
    info.counts = {s: class_counts(labels[s], info.num_classes) for s in SPLITS}
    return PreparedDataset(path=npz, info=info, images=images, labels=labels)


def _check_consistent(info: DatasetInfo, images: dict[str, np.ndarray], labels: dict[str, np.ndarray], npz: Path) -> None:
    expected_ndim = 1 + info.spatial_dims + (1 if info.channels == 3 else 0)
    for s in SPLITS:
        img = images[s]
        if img.ndim != expected_ndim or list(img.shape[1:1 + info.spatial_dims]) != list(info.size):
            raise MedganError(
                f"{s}_images has shape {img.shape}, expected (N, {', '.join(map(str, info.size))}"
                f"{', 3' if info.channels == 3 else ''})",
                npz,
            )
        outside = labels[s][(labels[s] < 0) | (labels[s] >= info.num_classes)]
        if outside.size:
            k = info.num_classes
            raise MedganError(f"{s}_labels holds {outside.size} label(s) outside 0..{k - 1} (e.g. {outside[0]}); "
                              f"the dataset has {k} classes", npz)


def save_prepared(
    out_dir: Path,
    images: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    info: DatasetInfo,
) -> DatasetInfo:
    """Write ``dataset.npz`` and ``dataset.json`` into ``out_dir`` (which should be a temporary
    folder from :func:`medgan.utils.atomic_dir`). Fills ``info.sha256`` and ``info.counts``.

    Args:
        out_dir: the folder to write into.
        images: per split, uint8 arrays in the npz layout.
        labels: per split, integer arrays ``(N,)`` or ``(N, 1)``.
        info: the sidecar; its sha256 and counts are recomputed here.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for s in SPLITS:
        arrays[f"{s}_images"] = np.ascontiguousarray(images[s], dtype=np.uint8)
        arrays[f"{s}_labels"] = np.asarray(labels[s]).reshape(-1, 1).astype(np.uint8 if info.num_classes <= 255 else np.int64)
    npz = out_dir / NPZ_NAME
    savez_deterministic(npz, arrays)
    info.sha256 = file_sha256(npz)
    info.counts = {s: class_counts(np.asarray(labels[s]).reshape(-1), info.num_classes) for s in SPLITS}
    write_text_atomic(out_dir / JSON_NAME, info.to_json())
    return info


def savez_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed``, but with fixed zip timestamps: equal arrays give equal bytes.

    ``np.savez`` stamps each member with the current time, so two writes of the same data would
    hash differently; a prepared dataset's sha256 should depend on its content only.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(member, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)


def write_sidecar(info: DatasetInfo, path: Path) -> None:
    """Write a sidecar JSON atomically."""
    write_text_atomic(path, info.to_json())


def load_info(path: str | Path) -> dict[str, Any]:
    """Read a sidecar as a dict (for tools that only need the metadata)."""
    return json.loads(Path(path).read_text())
