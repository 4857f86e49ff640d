"""The built-in registry of public MedMNIST v2 datasets (2D and 3D).

Facts (URLs, MD5s, label names, channels, split sizes, task, licence) are those published by the
MedMNIST project in ``INFO`` of the ``medmnist`` package, version 3.0.2 (``medmnist/info.py``).
Every official file lives on Zenodo record 10519652 as ``<flag>.npz`` (28) or ``<flag>_<size>.npz``
(MedMNIST+: 64, 128 and 224 for 2D, 64 for 3D), at ``.../files/<file>?download=1``.

Example:
    >>> spec = get_spec("breastmnist")
    >>> spec.filename(64), spec.md5[64]
    ('breastmnist_64.npz', '742edef2a1fd1524b2efff4bd7ba9364')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medgan.errors import MedganError

__all__ = ["MEDMNIST_CITATION", "REGISTRY", "ZENODO", "MedMNISTSpec", "get_spec"]

ZENODO = "https://zenodo.org/records/10519652/files"

MEDMNIST_CITATION = (
    "Yang J, Shi R, Wei D, Liu Z, Zhao L, Ke B, Pfister H, Ni B. MedMNIST v2 - A large-scale "
    "lightweight benchmark for 2D and 3D biomedical image classification. Scientific Data 10, 41 (2023)."
)


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
        task: the MedMNIST task type; medgan trains on the single-label ones
            (``multi-class``, ``binary-class``, ``ordinal-regression``).
        license: the data licence (DermaMNIST is non-commercial).
        source: the paper(s) to cite for the source data, besides MedMNIST v2.
        urls: per-size download URLs that do not follow the Zenodo pattern (none do today).
    """

    name: str
    modality: str
    label_names: tuple[str, ...]
    channels: int
    spatial_dims: int
    md5: dict[int, str]
    n_samples: dict[str, int] = field(default_factory=dict)
    task: str = "multi-class"
    license: str = "CC BY 4.0"
    source: str = ""
    urls: dict[int, str] = field(default_factory=dict)

    def filename(self, size: int = 28) -> str:
        """The official file name at ``size`` (``breastmnist.npz``, ``breastmnist_64.npz``)."""
        return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"

    def url(self, size: int = 28) -> str:
        """The official download URL at ``size``."""
        return self.urls.get(size) or f"{ZENODO}/{self.filename(size)}?download=1"

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.md5))

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def multi_label(self) -> bool:
        """True for ChestMNIST: a 0/1 vector of 14 findings per image, not one class."""
        return self.task.startswith("multi-label")

    def check_size(self, size: int) -> int:
        """Return ``size`` if this dataset is published at it.

        Raises:
            MedganError: naming the sizes that exist.
        """
        if size not in self.md5:
            avail = ", ".join(str(s) for s in self.sizes)
            raise MedganError(f"{self.name} has no size {size} (available: {avail})")
        return size


def _spec(name: str, modality: str, labels: list[str], channels: int, dims: int, md5: dict[int, str],
          n: tuple[int, int, int], task: str = "multi-class", *, source: str,
          license: str = "CC BY 4.0") -> MedMNISTSpec:
    return MedMNISTSpec(name, modality, tuple(labels), channels, dims, md5,
                        {"train": n[0], "val": n[1], "test": n[2]}, task, license, source)


_ORGANS_2D = [
    "bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right",
    "liver", "lung-left", "lung-right", "pancreas", "spleen",
]
# OrganMNIST3D numbers the same organs in another order (as MedMNIST publishes it).
_ORGANS_3D = [
    "liver", "kidney-right", "kidney-left", "femur-right", "femur-left", "bladder",
    "heart", "lung-right", "lung-left", "spleen", "pancreas",
]
_LITS = (
    "Bilic et al., The Liver Tumor Segmentation Benchmark (LiTS), Medical Image Analysis 2023; "
    "Xu et al., Efficient multiple organ localization in CT image using 3D region proposal network, "
    "IEEE TMI 2019"
)

REGISTRY: dict[str, MedMNISTSpec] = {
    s.name: s
    for s in [
        # 2D.
        _spec(
            "pathmnist", "colon pathology (H&E patches)",
            [
                "adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                "normal colon mucosa", "cancer-associated stroma", "colorectal adenocarcinoma epithelium",
            ],
            3, 2,
            {28: "a8b06965200029087d5bd730944a56c1", 64: "55aa9c1e0525abe5a6b9d8343a507616",
             128: "ac42d08fb904d92c244187169d1fd1d9", 224: "2c51a510bcdc9cf8ddb2af93af1eadec"},
            (89996, 10004, 7180),
            source="Kather et al., Predicting survival from colorectal cancer histology slides using "
            "deep learning, PLOS Medicine 2019",
        ),
        _spec(
            "chestmnist", "chest X-ray (NIH ChestX-ray14)",
            [
                "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
                "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia",
            ],
            1, 2,
            {28: "02c8a6516a18b556561a56cbdd36c4a8", 64: "9de6cd0b934ebb5b7426cfba5efbae16",
             128: "db107e5590b27930b62dbaf558aebee3", 224: "45bd33e6f06c3e8cdb481c74a89152aa"},
            (78468, 11219, 22433), "multi-label, binary-class",
            source="Wang et al., ChestX-ray8: Hospital-scale chest X-ray database and benchmarks, CVPR 2017",
        ),
        _spec(
            "dermamnist", "dermatoscopy (HAM10000)",
            [
                "actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                "benign keratosis-like lesions", "dermatofibroma", "melanoma",
                "melanocytic nevi", "vascular lesions",
            ],
            3, 2,
            {28: "0744692d530f8e62ec473284d019b0c7", 64: "b70a2f5635c6199aeaa28c31d7202e1f",
             128: "2defd784463fa5243564e855ed717de1", 224: "8974907d8e169bef5f5b96bc506ae45d"},
            (7007, 1003, 2005),
            license="CC BY-NC 4.0",
            source="Tschandl et al., The HAM10000 dataset, Scientific Data 2018; Codella et al., Skin "
            "lesion analysis toward melanoma detection 2018 (ISIC), arXiv:1902.03368, 2019",
        ),
        _spec(
            "octmnist", "retinal OCT",
            ["choroidal neovascularization", "diabetic macular edema", "drusen", "normal"],
            1, 2,
            {28: "c68d92d5b585d8d81f7112f81e2d0842", 64: "e229e9440236b774d9f0dfef9d07bdaf",
             128: "0a97e76651ace45c5d943ee3f65b63ae", 224: "abc493b6d529d5de7569faaef2773ba3"},
            (97477, 10832, 1000),
            source="Kermany et al., Identifying medical diagnoses and treatable diseases by image-based "
            "deep learning, Cell 2018",
        ),
        _spec(
            "pneumoniamnist", "paediatric chest X-ray", ["normal", "pneumonia"], 1, 2,
            {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
             128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"},
            (4708, 524, 624), "binary-class",
            source="Kermany et al., Identifying medical diagnoses and treatable diseases by image-based "
            "deep learning, Cell 2018",
        ),
        _spec(
            "retinamnist", "fundus camera (DeepDRiD), diabetic retinopathy grade",
            ["0", "1", "2", "3", "4"], 3, 2,
            {28: "bd4c0672f1bba3e3a89f0e4e876791e4", 64: "afda852cc34dcda56f86ad2b2457dbcc",
             128: "e48e916a24454daf90583d4e6efb1a18", 224: "eae7e3b6f3fcbda4ae613ebdcbe35348"},
            (1080, 120, 400), "ordinal-regression",
            source="Liu et al., DeepDRiD: Diabetic retinopathy - grading and image quality estimation "
            "challenge, Patterns 2022",
        ),
        _spec(
            "breastmnist", "breast ultrasound", ["malignant", "normal, benign"], 1, 2,
            {28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364",
             128: "363e4b3f8d712e9b5de15470a2aaadf1", 224: "b56378a6eefa9fed602bb16d192d4c8b"},
            (546, 78, 156), "binary-class",
            source="Al-Dhabyani et al., Dataset of breast ultrasound images, Data in Brief 2020",
        ),
        _spec(
            "bloodmnist", "blood cell microscopy",
            [
                "basophil", "eosinophil", "erythroblast",
                "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
                "lymphocyte", "monocyte", "neutrophil", "platelet",
            ],
            3, 2,
            {28: "7053d0359d879ad8a5505303e11de1dc", 64: "2b94928a2ae4916078ca51e05b6b800b",
             128: "adace1e0ed228fccda1f39692059dd4c", 224: "b718ff6835fcbdb22ba9eacccd7b2601"},
            (11959, 1712, 3421),
            source="Acevedo et al., A dataset of microscopic peripheral blood cell images for development "
            "of automatic recognition systems, Data in Brief 2020",
        ),
        _spec(
            "tissuemnist", "kidney cortex microscopy (BBBC051)",
            [
                "Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule",
                "Glomerular endothelial cells", "Interstitial endothelial cells", "Leukocytes",
                "Podocytes", "Proximal Tubule Segments", "Thick Ascending Limb",
            ],
            1, 2,
            {28: "ebe78ee8b05294063de985d821c1c34b", 64: "123ece2eba09d0aa5d698fda57103344",
             128: "61b955355d7425a89687b06cca3ce0c2", 224: "b077128c4a949f0a4eb01517f9037b9c"},
            (165466, 23640, 47280),
            source="Ljosa et al., Annotated high-throughput microscopy image sets for validation, "
            "Nature Methods 2012 (BBBC051)",
        ),
        _spec(
            "organamnist", "abdominal CT, axial slices", _ORGANS_2D, 1, 2,
            {28: "68e3f8846a6bd62f0c9bf841c0d9eacc", 64: "2dcccc29b88e6da5a01161ef20cda288",
             128: "eeae80d0a227a8d099027e1b3cfd3b60", 224: "50747347e05c87dd3aaf92c49f9f3170"},
            (34561, 6491, 17778), source=_LITS,
        ),
        _spec(
            "organcmnist", "abdominal CT, coronal slices", _ORGANS_2D, 1, 2,
            {28: "b9ceb9546e10131b32923c5bbeaea2b1", 64: "3ce34a8724ea6f548e6db4744d03b6a9",
             128: "773c1f009daa3fe5d9a2a201b2a7ed94", 224: "050f5e875dc056f6768abf94ec9995d1"},
            (12975, 2392, 8216), source=_LITS,
        ),
        _spec(
            "organsmnist", "abdominal CT, sagittal slices", _ORGANS_2D, 1, 2,
            {28: "9ab87b696fb54e2a387ebe992d6ed5f1", 64: "53a6d115339d874c25e309a994ff46d3",
             128: "ded0c5fa01a95dc4978b956f613e9b8e", 224: "b354719e553fbbb2513d5533f52a4cb1"},
            (13932, 2452, 8827), source=_LITS,
        ),
        # 3D.
        _spec(
            "organmnist3d", "abdominal CT, organ volumes", _ORGANS_3D, 1, 3,
            {28: "a0c5a1ff56af4f155c46d46fbb45a2fe", 64: "58a2205adf14a9d0a189cb06dc78bf10"},
            (971, 161, 610), source=_LITS,
        ),
        _spec(
            "nodulemnist3d", "chest CT, lung nodules", ["benign", "malignant"], 1, 3,
            {28: "8755a7e9e05a4d9ce80a24c3e7a256f3", 64: "c47c5b7d457bf6332200d2ea6d64ecd8"},
            (1158, 165, 310), "binary-class",
            source="Armato et al., The Lung Image Database Consortium (LIDC) and Image Database Resource "
            "Initiative (IDRI), Medical Physics 2011",
        ),
        _spec(
            "adrenalmnist3d", "abdominal CT, adrenal gland shape", ["normal", "hyperplasia"], 1, 3,
            {28: "bbd3c5a5576322bc4cdfea780653b1ce", 64: "17721accfe9fb005146a47d33bc54b2f"},
            (1188, 98, 298), "binary-class",
            source="new in MedMNIST v2 (Zhongshan Hospital, Fudan University)",
        ),
        _spec(
            "fracturemnist3d", "chest CT, rib fractures",
            ["buckle rib fracture", "nondisplaced rib fracture", "displaced rib fracture"], 1, 3,
            {28: "6aa7b0143a6b42da40027a9dda61302f", 64: "f01d7e6316aedf4210da0da5b7437b42"},
            (1027, 103, 240),
            source="Jin et al., Deep-learning-assisted detection and segmentation of rib fractures from "
            "CT scans (FracNet, RibFrac), EBioMedicine 2020",
        ),
        _spec(
            "vesselmnist3d", "brain MRA, vessel shapes", ["vessel", "aneurysm"], 1, 3,
            {28: "b41fd4f7e7e2feedddb201585ecafa1b", 64: "6bb274a8846e1097066dcd64e2c4520f"},
            (1335, 191, 382), "binary-class",
            source="Yang et al., IntrA: 3D intracranial aneurysm dataset for deep learning, CVPR 2020",
        ),
        _spec(
            "synapsemnist3d", "electron microscopy, synapses",
            ["inhibitory synapse", "excitatory synapse"], 1, 3,
            {28: "1235b78a3cd6280881dd7850a78eadb6", 64: "43bd14ebf3af9d3dd072446fedc14d5e"},
            (1230, 177, 352), "binary-class",
            source="new in MedMNIST v2 (adult rat, multi-beam scanning electron microscopy)",
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
