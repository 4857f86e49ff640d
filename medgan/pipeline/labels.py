"""The inputs of ``medgan run``: class folders, or a labels CSV matched against the files of SOURCE.

Without ``--labels``, SOURCE is read as ``medgan preprocess`` reads it
(:func:`medgan.data.sources.find_sources`: one folder per class). With ``--labels labels.csv``, each
row names one input by an id column and may give its class, patient and split:

- the id column is the first of ``path``, ``id``, ``file``, ``filename``, ``image``, ``image_id``,
  ``series``; an id matches a file below SOURCE by its relative path, its name, or its name without
  the image suffix (``.png``, ``.dcm``, ``.nii.gz``, ...), or a folder of two or more DICOM files (one
  series) by its relative path or name; case is ignored;
- ``label`` (or ``class``) gives the class; without it, the class is the input's top-level folder;
- ``patient_id`` (or ``patient``) groups the splits by patient; ``split`` fixes them.

Every id must match exactly one input, so a typo is an error, not a silently smaller dataset; inputs
the CSV does not name are left out (and counted). Checked here, before any pixel is read: the source
exists, the ids match, and there are at least two classes.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medgan.data.dataset import SPLITS, resolve_class
from medgan.data.io import image_kind
from medgan.data.sources import Source, class_names_of, find_sources
from medgan.errors import MedganError
from medgan.utils import atomic_file

__all__ = ["ID_COLUMNS", "RunSources", "resolve_sources", "write_manifest"]

ID_COLUMNS = ("path", "id", "file", "filename", "image", "image_id", "series")
_LABEL_COLUMNS = ("label", "class")
_PATIENT_COLUMNS = ("patient_id", "patient", "patientid")
_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class RunSources:
    """The labelled inputs of a run.

    Attributes:
        sources: one per input file or DICOM series.
        class_names: the classes, in natural order (at least two).
        target: the index of the class the benchmark reports first.
        labels_from: ``"folders"``, ``"labels.csv"`` (labels in the CSV) or ``"folders + labels.csv"``
            (classes from folders, patients or splits from the CSV).
        unlabelled: inputs below SOURCE that the labels CSV does not name (left out).
        fingerprint: sha256 over every input's path, size and modification time, and its label,
            patient and split: what decides whether the prepared data is still current.
    """

    sources: list[Source]
    class_names: list[str]
    target: int
    labels_from: str
    unlabelled: int
    fingerprint: str


def _strip_suffix(name: str) -> str:
    low = name.lower()
    for suffix in _SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _candidates(root: Path) -> dict[str, list[Path]]:
    """Match keys (case-folded) -> the inputs they name: every image file, and every DICOM series folder."""
    index: dict[str, list[Path]] = {}

    def add(key: str, target: Path) -> None:
        hits = index.setdefault(key.casefold(), [])
        if target not in hits:
            hits.append(target)

    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        folder = Path(here)
        dicoms = 0
        for name in sorted(files):
            path = folder / name
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            kind = image_kind(path)
            if kind is None:
                continue
            dicoms += kind == "dicom"
            rel = path.relative_to(root).as_posix()
            for key in (rel, _strip_suffix(rel), name, _strip_suffix(name)):
                add(key, path)
        if folder != root and dicoms >= 2:
            rel = folder.relative_to(root).as_posix()
            for key in (rel, folder.name):
                add(key, folder)
    return index


def _column(header: list[str], names: Sequence[str]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def _read_labels(csv_path: Path, root: Path) -> tuple[list[Source], int, str]:
    """Sources named by a labels CSV; also the number of inputs it leaves out, and where labels came from."""
    if not csv_path.is_file():
        raise MedganError("labels CSV not found", csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MedganError(f"not a readable CSV ({exc})", csv_path) from None
    if len(rows) < 2:
        raise MedganError(
            "labels CSV has no rows (expected a header such as id,label,patient_id and one row per image)",
            csv_path,
        )
    header = [h.strip().lower() for h in rows[0]]
    id_col = _column(header, ID_COLUMNS)
    if id_col is None:
        raise MedganError(
            f"labels CSV has no id column (one of {', '.join(ID_COLUMNS)}); columns: {', '.join(header)}",
            csv_path,
        )
    label_col, patient_col = _column(header, _LABEL_COLUMNS), _column(header, _PATIENT_COLUMNS)
    split_col = _column(header, ("split",))

    index = _candidates(root)
    if not index:
        raise MedganError(
            "no images found (looked for DICOM files or series, .nii/.nii.gz, .png/.jpg/.jpeg/.bmp)", root
        )
    cell = lambda row, i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731
    sources: list[Source] = []
    seen: dict[Path, int] = {}
    missing: list[tuple[int, str]] = []
    for line, row in enumerate(rows[1:], start=2):
        key = cell(row, id_col)
        if not key:
            raise MedganError(f"line {line}: empty '{header[id_col]}'", csv_path)
        hits = index.get(key.casefold()) or index.get(Path(key).as_posix().strip("/").casefold())
        if not hits:
            missing.append((line, key))
            continue
        if len(hits) > 1:
            names = ", ".join(p.relative_to(root).as_posix() for p in hits[:3])
            raise MedganError(
                f"line {line}: '{key}' matches {len(hits)} inputs ({names}); give the relative path", csv_path
            )
        target = hits[0]
        if target in seen:
            raise MedganError(f"line {line}: '{key}' names the same input as line {seen[target]}", csv_path)
        seen[target] = line
        label = cell(row, label_col)
        if label_col is None:
            parts = target.relative_to(root).parts
            if len(parts) < 2:
                raise MedganError(
                    f"line {line}: the CSV has no 'label' column, and '{key}' is not in a class folder "
                    "(SOURCE/<class>/...)",
                    csv_path,
                )
            label = parts[0]
        elif not label:
            raise MedganError(f"line {line}: empty '{header[label_col]}'", csv_path)
        split = cell(row, split_col).lower() or None
        if split_col is not None and split not in SPLITS:
            raise MedganError(
                f"line {line}: split '{cell(row, split_col)}' is not one of {', '.join(SPLITS)}", csv_path
            )
        sources.append(Source(target, label, split, cell(row, patient_col) or None))
    if missing:
        example = next(iter(index))
        if not sources:
            raise MedganError(
                f"none of the {len(missing)} ids matches an image below {root} (first id '{missing[0][1]}'; "
                f"inputs are named like '{example}')",
                csv_path,
            )
        raise MedganError(
            f"{len(missing)} of {len(missing) + len(sources)} ids match no image below {root} "
            f"(first: '{missing[0][1]}' on line {missing[0][0]})",
            csv_path,
        )
    if split_col is not None and any(s.split is None for s in sources):
        raise MedganError("the 'split' column must be filled on every row, or left out", csv_path)
    named = set(seen)
    files_named = {p for t in named for p in ([*t.iterdir()] if t.is_dir() else [t])}
    inputs = {p for hits in index.values() for p in hits if p.is_file()}
    unlabelled = len(inputs - files_named)
    return sources, unlabelled, "labels.csv" if label_col is not None else "folders + labels.csv"


def _fingerprint(sources: Sequence[Source], root: Path) -> str:
    """sha256 over every input file's path, size and mtime, with its label, patient and split."""
    h = hashlib.sha256()
    for s in sorted(sources, key=lambda s: str(s.path)):
        files = sorted(p for p in s.path.iterdir() if p.is_file()) if s.path.is_dir() else [s.path]
        for f in files:
            st = f.stat()
            try:
                rel = f.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                rel = str(f.resolve())
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        h.update(f"{s.label}\0{s.patient_id or ''}\0{s.split or ''}\n".encode())
    return h.hexdigest()


def resolve_sources(
    source: str | Path, labels: str | Path | None = None, target_class: str | None = None
) -> RunSources:
    """Find the inputs of a run and their labels; refuse what cannot make a dataset.

    Args:
        source: a folder of class folders, or (with ``labels``) any folder of DICOM / NIfTI / PNG / JPEG.
        labels: a labels CSV (see the module docstring).
        target_class: the class the benchmark reports first (name or index); default the smallest class.

    Raises:
        MedganError: a missing or empty source, a labels CSV whose ids match no input, one class only,
            or an unknown target class.
    """
    root = Path(source).expanduser()
    if labels is None:
        sources, unlabelled, labels_from = find_sources(root), 0, "folders"
    else:
        if not root.is_dir():
            raise MedganError("no such folder" if not root.exists() else "expected a folder of images", root)
        sources, unlabelled, labels_from = _read_labels(Path(labels).expanduser(), root)
    names = class_names_of(sources)
    if len(names) < 2:
        where = "the labels CSV" if labels_from == "labels.csv" else "class folders"
        raise MedganError(
            f"found one class only ('{names[0]}' in {where}); medgan run needs at least two classes "
            "to train a class-conditional GAN and to benchmark a classifier",
            root,
        )
    if target_class is not None:
        try:
            target = resolve_class(target_class, names)
        except MedganError as exc:
            raise MedganError(f"--target-class: {exc}") from None
    else:
        counts = [sum(s.label == n for s in sources) for n in names]
        target = counts.index(min(counts))  # the rarest class: the one augmentation is for
    return RunSources(
        sources=sources,
        class_names=names,
        target=target,
        labels_from=labels_from,
        unlabelled=unlabelled,
        fingerprint=_fingerprint(sources, root),
    )


def write_manifest(sources: Sequence[Source], path: Path) -> None:
    """Write the matched inputs as a ``medgan preprocess --csv`` manifest (absolute paths), atomically."""
    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        has_split = any(s.split is not None for s in sources)
        out.writerow(["path", "label", "patient_id", *(["split"] if has_split else [])])
        for s in sources:
            out.writerow(
                [str(s.path.resolve()), s.label, s.patient_id or "", *([s.split] if has_split else [])]
            )
