"""Finding the raw inputs of ``medgan preprocess`` and their labels: class folders or a CSV manifest.

A :class:`Source` is one input, a file or a DICOM series folder, with its class name, and the split
and patient that a manifest may fix. :func:`find_sources` reads either layout:

- ``SRC/<class>/...``: files directly in a class folder are single images; below it, a folder
  with two or more DICOM files is one series, and any other image file a single image;
- a CSV manifest ``path,label[,split][,patient_id]`` (:func:`read_manifest`).

Nothing is read but names and the manifest here; reading pixels is :mod:`medgan.data.io`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medgan.data.dataset import SPLITS
from medgan.data.io import image_kind
from medgan.errors import MedganError

__all__ = ["Source", "class_names_of", "find_sources", "read_manifest"]


@dataclass(frozen=True)
class Source:
    """One input: a file, or a DICOM series folder.

    Args:
        path: the file or folder.
        label: the class name.
        split: the split fixed by a CSV manifest, or ``None`` to draw it.
        patient_id: the patient, for grouping; ``None`` lets the DICOM PatientID (if any) decide.
    """

    path: Path
    label: str
    split: str | None = None
    patient_id: str | None = None


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_folder_sources(folder: Path, label: str) -> list[Source]:
    """Images in one class folder: files directly in it are single images; below it, a folder
    with two or more DICOM files is one series, and any other image file a single image."""
    out: list[Source] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        kinds = {f: image_kind(here / f) for f in sorted(files) if not f.startswith(".") and f.upper() != "DICOMDIR"}
        dicoms = [f for f, k in kinds.items() if k == "dicom"]
        series = here != folder and len(dicoms) >= 2
        if series:
            out.append(Source(here, label))
        for f, k in kinds.items():
            if k is not None and not (series and k == "dicom"):
                out.append(Source(here / f, label))
    return out


def _natural_key(name: str) -> tuple[int, float | str]:
    try:
        return (0, float(name))
    except ValueError:
        return (1, name)


def class_names_of(sources: Sequence[Source]) -> list[str]:
    """The sources' labels, each once, in natural order: numbers by value (``2`` before ``10``), then names."""
    return sorted({s.label for s in sources}, key=_natural_key)


def read_manifest(csv_path: str | Path, root: str | Path | None = None) -> list[Source]:
    """Read a CSV manifest with columns ``path,label[,split][,patient_id]``.

    Args:
        csv_path: the CSV file.
        root: folder the relative paths start from; by default the CSV's own folder.

    Raises:
        MedganError: for a missing ``path`` or ``label`` column, an empty cell, an unknown split,
            or a path that does not exist (the message gives the line number).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise MedganError("CSV manifest not found", csv_path)
    base = Path(root) if root is not None else csv_path.parent
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MedganError(f"not a readable CSV ({exc})", csv_path) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise MedganError("CSV manifest is empty", csv_path)
    header = [h.strip().lower() for h in rows[0]]
    for needed in ("path", "label"):
        if needed not in header:
            raise MedganError(
                f"CSV manifest has no '{needed}' column (columns: {', '.join(header)}; "
                "expected path,label[,split][,patient_id])",
                csv_path,
            )
    col: dict[str, int] = {n: header.index(n) for n in ("path", "label", "split", "patient_id") if n in header}
    sources: list[Source] = []
    for line, row in enumerate(rows[1:], start=2):
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in col.items()}
        for needed in ("path", "label"):
            if not cells[needed]:
                raise MedganError(f"line {line}: empty '{needed}'", csv_path)
        split = cells.get("split") or None
        if "split" in col:
            split = (split or "").lower()
            if split not in SPLITS:
                raise MedganError(
                    f"line {line}: split '{cells.get('split', '')}' is not one of {', '.join(SPLITS)}", csv_path
                )
        path = Path(cells["path"]).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.exists():
            raise MedganError(f"line {line}: {cells['path']} does not exist (looked for {path})", csv_path)
        sources.append(Source(path, cells["label"], split, cells.get("patient_id") or None))
    if not sources:
        raise MedganError("CSV manifest has a header but no rows", csv_path)
    return sources


def find_sources(src: str | Path | None, csv_path: str | Path | None = None) -> list[Source]:
    """The inputs and their labels: from a CSV manifest, or from one folder per class.

    Args:
        src: a folder with one sub-folder per class (``SRC/<class>/...``, class names sorted),
            or a ``.csv`` manifest. With ``csv_path`` given, ``src`` (if any) is the folder the
            manifest's relative paths start from.
        csv_path: a CSV manifest (``path,label[,split][,patient_id]``).

    Raises:
        MedganError: for a missing or empty folder, a folder without class sub-folders, a class
            folder without images, or a bad manifest.
    """
    if csv_path is not None:
        return read_manifest(csv_path, root=src)
    if src is None:
        raise MedganError("give a source folder or a CSV manifest (--csv)")
    src = Path(src)
    if src.is_file() and src.suffix.lower() == ".csv":
        return read_manifest(src)
    if not src.exists():
        raise MedganError("no such file or folder", src)
    if not src.is_dir():
        raise MedganError("expected a folder of class folders, or a .csv manifest", src)
    entries = [p for p in src.iterdir() if _visible(p)]
    if not entries:
        raise MedganError("folder is empty", src)
    classes = sorted((p for p in entries if p.is_dir()), key=lambda p: p.name)
    if not classes:
        raise MedganError(
            "no class folders: put images in one folder per class (SRC/<class>/...), "
            "or pass a CSV manifest with --csv",
            src,
        )
    sources: list[Source] = []
    for folder in classes:
        found = _class_folder_sources(folder, folder.name)
        if not found:
            raise MedganError(
                "class folder has no images (looked for DICOM files or series, .nii/.nii.gz, .png/.jpg/.jpeg/.bmp)",
                folder,
            )
        sources.extend(found)
    return sources
