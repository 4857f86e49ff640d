"""Raw-input builders for the preprocess tests (tests/data and tests/cli): PNG trees, DICOM series, NIfTI + CSV."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image as PILImage
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

CT = Path(get_testdata_file("CT_small.dcm", download=False))


def make_png_tree(root: Path, per_class: int = 10, classes: tuple[str, ...] = ("benign", "malignant"),
                  size: tuple[int, int] = (16, 16), rgb_in: str | None = None) -> dict[str, np.ndarray]:
    """``root/<class>/<i>.png`` grey images spanning 0..255 (min-max scaling leaves them unchanged).

    Returns the written arrays by path relative to ``root``. With ``rgb_in``, that class also gets
    one RGB image.
    """
    rng = np.random.default_rng(0)
    written = {}
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(1, 255, size, dtype=np.uint8)
            a[0, 0], a[-1, -1] = 0, 255
            PILImage.fromarray(a).save(root / c / f"img{i:02d}.png")
            written[f"{c}/img{i:02d}.png"] = a
    if rgb_in is not None:
        a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        PILImage.fromarray(a).save(root / rgb_in / "colour.png")
        written[f"{rgb_in}/colour.png"] = a
    return written


def write_series(folder: Path, n: int, patient: str, step: float = 2.5) -> None:
    """``n`` CT_small slices as one series (slice k: z + k * step, intercept -1024 + 10 k)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(CT)
    x0, y0, z0 = (float(v) for v in base.ImagePositionPatient)
    uid = generate_uid()
    for k in range(n):
        ds = copy.deepcopy(base)
        ds.ImagePositionPatient = [x0, y0, z0 + k * step]
        ds.RescaleIntercept = -1024 + 10 * k
        ds.PatientID = patient
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(folder / f"{(k * 7) % n:02d}.dcm")  # names not in slice order


def make_nifti_csv(root: Path, patients_per_class: int = 4, volumes_per_patient: int = 2,
                   split_col: bool = False) -> Path:
    """NIfTI volumes ``(10, 12, 8)`` at 1.5 x 1.5 x 3 mm and a manifest ``path,label,patient_id[,split]``."""
    rng = np.random.default_rng(1)
    (root / "vols").mkdir(parents=True, exist_ok=True)
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    rows = []
    for label in ("healthy", "tumour"):
        for p in range(patients_per_class):
            pid = f"{label[0].upper()}{p:02d}"
            for v in range(volumes_per_patient):
                name = f"vols/{pid}_{v}.nii.gz"
                nib.save(nib.Nifti1Image(rng.normal(size=(10, 12, 8)).astype(np.float32), affine), root / name)
                row = [name, label, pid]
                if split_col:
                    row.append(("train", "train", "val", "test")[p % 4])
                rows.append(row)
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "patient_id", *(["split"] if split_col else [])])
        w.writerows(rows)
    return manifest


def read_sources(out: Path) -> list[dict[str, str]]:
    with open(out / "sources.csv", newline="") as fh:
        return list(csv.DictReader(fh))
