"""A fake hospital folder for ``medgan run``: the same labelled images as DICOM series and as PNG + labels CSV.

The images are either tiny generated ones (fast tests) or real BreastMNIST images (the slow test); see
``tests/pipeline/test_run.py``. Nothing is committed: the folders are built in the test's tmp path.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml
from PIL import Image as PILImage

TINY_RUN_CONFIG = {
    "train": {
        "batch_size": 8,
        "log_every": 1,
        "sample_every": 100,
        "checkpoint_every": 100,
        "deterministic": True,
        "device": "cpu",
        "model": {"z_dim": 16, "g_channels": 8, "d_channels": 8, "g_max_channels": 16, "d_max_channels": 16},
    },
    "evaluate": {"n_per_class": 12, "feature_epochs": 1, "c2st_folds": 2, "c2st_steps": 0},
    "export": {"n_per_class": 8},
    "benchmark": {
        "seeds": 1,
        "arms": ["real", "real+synthetic"],
        "classifier": {"epochs": 1, "batch_size": 16},
        "bootstrap": {"resamples": 100},
    },
}
"""Seconds-long settings for every stage (with ``--steps 2``)."""


def write_run_config(path: Path, **sections: dict[str, object]) -> Path:
    """:data:`TINY_RUN_CONFIG`, with ``sections`` merged over it, as a ``medgan run --config`` YAML."""
    cfg = {k: dict(v) for k, v in TINY_RUN_CONFIG.items()}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def tiny_images(per_class: int = 16, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two visibly different classes of grey noise images: ``lesion`` has a bright disc, ``normal`` none."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 4) ** 2
    images = rng.integers(10, 80, size=(2 * per_class, size, size)).astype(np.uint8)
    labels = np.repeat([0, 1], per_class)
    images[labels == 0] = np.where(disc, 220, images[labels == 0])
    images[:, 0, 0], images[:, -1, -1] = 0, 255  # full range: min-max scaling leaves the pixels as they are
    return images, labels


def _write_dicom(
    path: Path, pixels: np.ndarray, patient: str, study_uid: str, series_uid: str, number: int
) -> None:
    """One single-frame 8-bit grey ultrasound DICOM file of a series."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientName, ds.Modality = patient, f"Test^{patient}", "US"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study_uid, series_uid, number
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_hospital(
    root: Path, images: np.ndarray, labels: np.ndarray, class_names: list[str], per_patient: int = 2
) -> dict[str, Path]:
    """The same images twice, as a hospital would hand them over.

    - ``root/dicom/<class>/<patient>_<k>.dcm``: each patient's images are one DICOM series (shared
      Study and Series UIDs, PatientID set), in one folder per class;
    - ``root/png/scans/<id>.png`` with ``root/png/labels.csv`` (``id,label,patient_id``): a flat folder
      whose labels and patients come only from the CSV.

    Consecutive images of a class belong to one patient (``per_patient`` each).

    Returns:
        ``{"dicom": folder, "png": folder, "labels": csv}``.
    """
    from pydicom.uid import generate_uid

    dicom, png = root / "dicom", root / "png" / "scans"
    png.mkdir(parents=True, exist_ok=True)
    rows = []
    for c, name in enumerate(class_names):
        (dicom / name).mkdir(parents=True, exist_ok=True)
        idx = np.flatnonzero(labels == c)
        for j, i in enumerate(idx):
            patient = f"P{c}{j // per_patient:03d}"
            if j % per_patient == 0:
                study, series = generate_uid(), generate_uid()
            _write_dicom(
                dicom / name / f"{patient}_{j % per_patient}.dcm",
                images[i],
                patient,
                study,
                series,
                j % per_patient + 1,
            )
            image_id = f"img{i:04d}"
            PILImage.fromarray(images[i]).save(png / f"{image_id}.png")
            rows.append([image_id, name, patient])
    labels_csv = root / "png" / "labels.csv"
    with open(labels_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label", "patient_id"])
        w.writerows(rows)
    return {"dicom": dicom, "png": png, "labels": labels_csv}
