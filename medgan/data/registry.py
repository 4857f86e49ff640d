"""The built-in registry of public MedMNIST v2 datasets (2D and 3D).

Facts (URLs, MD5s, label names, channels) are those published by the MedMNIST project
(https://medmnist.com, the ``medmnist`` package ``INFO``). The files live on Zenodo record
10519652; ``size`` 28 is the original file, 64/128/224 the MedMNIST+ larger versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medgan.errors import MedganError

__all__ = ["REGISTRY", "MedMNISTSpec", "get_spec"]

ZENODO = "https://zenodo.org/records/10519652/files"


@dataclass(frozen=True)
class MedMNISTSpec:
    """One MedMNIST dataset.

    Args:
        name: the flag, e.g. ``"breastmnist"``.
        modality: a short description of the images.
        label_names: class names by label index.
        channels: 1 (grey) or 3 (RGB).
        spatial_dims: 2 for images, 3 for volumes.
        md5: MD5 per available size (28 is the original file).
        n_samples: images per split at every size.
        task: the MedMNIST task type; medgan supports the single-label ones.
    """

    name: str
    modality: str
    label_names: tuple[str, ...]
    channels: int
    spatial_dims: int
    md5: dict[int, str]
    n_samples: dict[str, int] = field(default_factory=dict)
    task: str = "multi-class"

    def filename(self, size: int = 28) -> str:
        """The official file name at ``size`` (``breastmnist.npz``, ``breastmnist_64.npz``)."""
        return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"

    def url(self, size: int = 28) -> str:
        """The official download URL at ``size``."""
        return f"{ZENODO}/{self.filename(size)}?download=1"

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.md5))


def _spec(name: str, modality: str, labels: list[str], channels: int, dims: int,
          md5: dict[int, str], n: tuple[int, int, int], task: str = "multi-class") -> MedMNISTSpec:
    return MedMNISTSpec(name, modality, tuple(labels), channels, dims, md5,
                        {"train": n[0], "val": n[1], "test": n[2]}, task)


REGISTRY: dict[str, MedMNISTSpec] = {
    s.name: s
    for s in [
        _spec(
            "breastmnist", "breast ultrasound", ["malignant", "normal, benign"], 1, 2,
            {28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364"},
            (546, 78, 156), "binary-class",
        ),
        _spec(
            "pneumoniamnist", "paediatric chest X-ray", ["normal", "pneumonia"], 1, 2,
            {28: "28209eda62fecd6e6a2d98b1501bb15f"},
            (4708, 524, 624), "binary-class",
        ),
        _spec(
            "dermamnist", "dermatoscopy (HAM10000)",
            [
                "actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                "benign keratosis-like lesions", "dermatofibroma", "melanoma",
                "melanocytic nevi", "vascular lesions",
            ],
            3, 2, {28: "0744692d530f8e62ec473284d019b0c7"}, (7007, 1003, 2005),
        ),
        _spec(
            "adrenalmnist3d", "abdominal CT, adrenal gland shape", ["normal", "hyperplasia"], 1, 3,
            {28: "bbd3c5a5576322bc4cdfea780653b1ce", 64: "17721accfe9fb005146a47d33bc54b2f"},
            (1188, 98, 298), "binary-class",
        ),
    ]
}


def get_spec(name: str) -> MedMNISTSpec:
    """Look up a registry entry by name (case-insensitive).

    Raises:
        MedganError: for an unknown name; the message lists the known ones.
    """
    key = name.lower().strip()
    if key not in REGISTRY:
        raise MedganError(f"unknown dataset '{name}' (known: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[key]
