"""`medgan preprocess`: raw DICOM / NIfTI / PNG / JPEG files -> a prepared dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from medgan.errors import MedganError


def _floats(text: str | None, option: str, counts: tuple[int, ...]) -> tuple[float, ...] | None:
    """Parse ``"1,1,2"`` for an option; a wrong count or a non-number is a one-line error (exit 2)."""
    if text is None:
        return None
    want = " or ".join(str(c) for c in counts)
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise MedganError(f"{option}: expected {want} comma-separated numbers, got {text!r}") from None
    if len(values) not in counts:
        raise MedganError(f"{option}: expected {want} comma-separated numbers, got {text!r}")
    return values


def preprocess_command(
    src: Path | None = typer.Argument(
        None, help="A folder with one sub-folder per class (SRC/<class>/...), or a CSV manifest.",
        show_default=False,
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (dataset.npz, dataset.json, sources.csv)."),
    csv: Path | None = typer.Option(
        None, "--csv", help="CSV manifest with columns path,label[,split][,patient_id]; relative paths start "
        "at SRC when given, else at the CSV's folder.", show_default=False,
    ),
    size: int = typer.Option(64, "--size", "-s", help="Output side in pixels (a square, or a cube for volumes)."),
    fit: Literal["resize", "crop"] = typer.Option(
        "resize", "--fit", help="resize: scale to SIZE; crop: centre crop or pad to SIZE."
    ),
    spacing: str | None = typer.Option(
        None, "--spacing", help="Volumes: resample to this spacing in mm, one value or x,y,z.", show_default=False
    ),
    window: str | None = typer.Option(
        None, "--window", help="CT window LOW,HIGH in HU, e.g. --window=-1000,400 (default: per-image min-max).",
        show_default=False,
    ),
    slices: Literal["axial", "coronal", "sagittal"] | None = typer.Option(
        None, "--slices", help="Take 2D slices from volumes along this axis.", show_default=False
    ),
    n_slices: int = typer.Option(1, "--n-slices", help="Central slices per volume (with --slices)."),
    channels: int | None = typer.Option(
        None, "--channels", help="1 (grey) or 3 (RGB). Default: 3 if any input is RGB, else 1.", show_default=False
    ),
    val_frac: float = typer.Option(0.1, "--val-frac", help="Fraction of each class's patients for validation."),
    test_frac: float = typer.Option(0.2, "--test-frac", help="Fraction of each class's patients for test."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    nan_to: float | None = typer.Option(
        None, "--nan-to", help="Replace NaN / infinite pixel values by this value (default: refuse such files).",
        show_default=False,
    ),
    name: str | None = typer.Option(None, "--name", help="Dataset name (default: the output folder's name).",
                                    show_default=False),
    pseudonymise: bool = typer.Option(
        False, "--pseudonymise", help="Write keyed pseudonyms (P-..., S-...) instead of patient IDs and source paths "
        "in sources.csv, and no source path in dataset.json (docs/data.md, Identifiers).",
    ),
    pseudonym_key: Path | None = typer.Option(
        None, "--pseudonym-key", help="With --pseudonymise: a secret key file, created if missing, that keeps "
        "pseudonyms the same across runs. Keep it apart from the data (default: a random key, forgotten).",
        show_default=False,
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while reading."),
) -> None:
    """Prepare raw DICOM / NIfTI / PNG / JPEG images as a dataset for training and benchmarks.

    Labels come from one folder per class (a sub-folder of DICOM files is one series) or from a CSV manifest.

    Splits are stratified by label and grouped by patient (CSV patient_id, else DICOM PatientID), so no patient is in two splits; a CSV split column is used as given.

    Example: medgan preprocess ./scans --out prepared/ --size 64
    """
    from rich.console import Console
    from rich.table import Table

    from medgan.data.preprocess import PreprocessOptions, preprocess

    if src is None and csv is None:
        raise MedganError("give a source folder (SRC) or a CSV manifest (--csv)")
    window_values = _floats(window, "--window", (2,))
    options = PreprocessOptions(
        size=size, fit=fit, spacing=_floats(spacing, "--spacing", (1, 3)),
        window=(window_values[0], window_values[1]) if window_values is not None else None,
        slices=slices, n_slices=n_slices, channels=channels,
        val_frac=val_frac, test_frac=test_frac, seed=seed, nan_to=nan_to, pseudonymise=pseudonymise,
    )
    info = preprocess(src, out, options, csv_path=csv, overwrite=overwrite, name=name, progress=progress,
                      pseudonym_key=pseudonym_key)

    kind = f"{'x'.join(map(str, info.size))} {'RGB' if info.channels == 3 else 'grey'}"
    typer.echo(f"wrote {out}: {kind} {'volumes' if info.spatial_dims == 3 else 'images'}")
    table = Table()
    table.add_column("class")
    for split in ("train", "val", "test"):
        table.add_column(split, justify="right")
    for c, cls in enumerate(info.class_names):
        table.add_row(cls, *(str(info.counts[s][c]) for s in ("train", "val", "test")))
    table.add_row("all", *(str(sum(info.counts[s])) for s in ("train", "val", "test")), style="bold")
    Console().print(table)
    typer.echo(f"split: {info.preprocessing['split_by']}; sha256 {info.sha256[:12]}")


def register(app: typer.Typer) -> None:
    """Add the `preprocess` command to `app`."""
    app.command("preprocess")(preprocess_command)
