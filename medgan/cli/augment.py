"""`medgan augment`: write synthetic images or volumes from a checkpoint, with provenance."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from medgan.errors import MedganError


def plan_counts(class_arg: str | None, n: int | None, class_names: list[str], conditional: bool,
                balance: bool, data: str | None, balance_to: int | None,
                checkpoint_dataset_sha: str | None) -> tuple[dict[int, int], str | None]:
    """How many samples of each class to write; also the balancing dataset's sha256, if used.

    ``--class all --n N`` gives N per class; ``--class X --n N`` gives N of X; ``--balance --data D``
    gives, per class, what it lacks to reach the largest class of D's training split (or
    ``--balance-to``).
    """
    from medgan.data.dataset import class_counts, load_dataset, resolve_class

    if balance or balance_to is not None:
        if data is None:
            raise MedganError("--balance needs --data DATASET (the real training set to balance)")
        if not conditional:
            raise MedganError("--balance needs a class-conditional checkpoint; this one is unconditional")
        ds = load_dataset(data)
        if checkpoint_dataset_sha is not None and ds.info.sha256 != checkpoint_dataset_sha:
            raise MedganError("the checkpoint was trained on a different dataset than --data", data)
        if ds.info.class_names != class_names:
            raise MedganError(f"--data has classes {ds.info.class_names}, the checkpoint {class_names}", data)
        counts = class_counts(ds.labels["train"], len(class_names))
        target = balance_to if balance_to is not None else max(counts)
        if target <= 0:
            raise MedganError(f"--balance-to must be positive, got {target}")
        return {c: target - k for c, k in enumerate(counts) if target - k > 0}, ds.info.sha256
    if n is None:
        raise MedganError("give --n N (or --balance --data DATASET)")
    if n <= 0:
        raise MedganError(f"--n must be a positive number of samples, got {n}")
    if not conditional:
        if class_arg not in (None, "all"):
            raise MedganError("this checkpoint is unconditional: it cannot make one class; use --class all")
        return {0: n}, None
    if class_arg is None:
        raise MedganError(f"give --class NAME|INDEX|all (classes: {', '.join(class_names)})")
    if class_arg.strip().lower() == "all":
        return dict.fromkeys(range(len(class_names)), n), None
    return {resolve_class(class_arg, class_names): n}, None


def augment(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A run folder (its latest checkpoint) or a checkpoint file."),
    class_: str | None = typer.Option(None, "--class", help="Class name or index, or 'all'."),
    n: int | None = typer.Option(None, "--n", help="Samples to write (per class with --class all)."),
    out: Path = typer.Option(Path("synthetic"), "--out", help="Output folder (written atomically)."),
    fmt: str = typer.Option("png", "--format", help="png (2D), npz, nifti (3D) or dicom."),
    seed: int = typer.Option(0, "--seed", help="Fixes the output exactly."),
    batch_size: int = typer.Option(256, "--batch-size", help="Samples per forward pass."),
    truncation: float | None = typer.Option(None, "--truncation", help="Resample latents outside [-T, T]."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
    balance: bool = typer.Option(False, "--balance", help="Fill every class up to the largest class of --data."),
    data: str | None = typer.Option(None, "--data", help="The real dataset to balance (with --balance)."),
    balance_to: int | None = typer.Option(None, "--balance-to", help="Fill every class up to this count instead."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Write synthetic samples from a trained generator, with manifest.csv and provenance.json.

    Example: medgan augment --checkpoint runs/cgan_breastmnist --class malignant --n 5000 --out synth/
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medgan.export import FORMATS, SampleWriter, write_manifest, write_provenance
    from medgan.sampling import iter_samples, load_generator
    from medgan.utils import atomic_dir

    if fmt not in FORMATS:
        raise MedganError(f"unknown --format '{fmt}' (allowed: {', '.join(FORMATS)})")
    if n is not None and n <= 0:
        raise MedganError(f"--n must be a positive number of samples, got {n}")
    gen = load_generator(checkpoint, device)
    if fmt == "png" and gen.spatial_dims == 3:
        raise MedganError("PNG is 2D only and this checkpoint makes volumes; use --format nifti, dicom or npz")
    if fmt == "nifti" and gen.spatial_dims == 2 and gen.channels == 3:
        raise MedganError("NIfTI cannot hold RGB images; use --format png, npz or dicom")
    conditional = gen.num_classes > 0
    names = gen.class_names if conditional else ["sample"]
    counts, data_sha = plan_counts(class_, n, gen.class_names, conditional, balance, data, balance_to,
                                   gen.dataset.get("sha256"))
    total = sum(counts.values())
    if total == 0:
        raise MedganError("nothing to write: every class already has the target count")

    arguments: dict[str, Any] = {
        "checkpoint": str(checkpoint), "class": class_, "n": n, "out": str(out), "format": fmt, "seed": seed,
        "batch_size": batch_size, "truncation": truncation, "device": device, "balance": balance,
        "data": data, "balance_to": balance_to,
    }
    t0 = time.perf_counter()
    bar = Progress(TextColumn("[bold]augment[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   disable=not progress)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        try:
            with bar, SampleWriter(tmp, fmt=fmt, class_names=names, spatial_dims=gen.spatial_dims,  # type: ignore[arg-type]
                                   checkpoint_sha256=gen.checkpoint_sha256, dataset_name=str(gen.dataset.get("name")),
                                   spacing=gen.spacing) as writer:
                task = bar.add_task("", total=total)
                for c, k in counts.items():
                    start = 0
                    for batch in iter_samples(gen, c if conditional else None, k, seed=seed,
                                              batch_size=batch_size, truncation=truncation):
                        idx = list(range(start, start + len(batch)))
                        writer.write(batch, [c] * len(batch), seeds=seed, indices=idx)
                        start += len(batch)
                        bar.advance(task, len(batch))
            write_manifest(tmp, writer.manifest)
            write_provenance(
                tmp, checkpoint_sha256=gen.checkpoint_sha256, config=gen.config,
                dataset_sha256=gen.dataset.get("sha256"), arguments=arguments,
                extra={"counts": {names[c]: k for c, k in counts.items()}, "format": fmt,
                       "balance_dataset_sha256": data_sha, "family": gen.family},
            )
        except OSError as exc:
            raise MedganError(f"could not write the samples ({exc.strerror or exc}); nothing was kept", out) from None
    seconds = time.perf_counter() - t0
    per_class = ", ".join(f"{names[c]}: {k}" for c, k in counts.items())
    typer.echo(f"wrote {total} samples ({per_class}) as {fmt} to {out} in {seconds:.1f} s "
               f"({total / max(seconds, 1e-9):.0f} images/s)")


def register(app: typer.Typer) -> None:
    """Add the ``augment`` command to ``app``."""
    app.command("augment")(augment)
