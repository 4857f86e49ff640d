"""`medgan augment`: write synthetic images or volumes from a checkpoint, with provenance."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import typer

from medgan.errors import MedganError


def plan_counts(class_arg: str | None, n: int | None, class_names: list[str], conditional: bool,
                balance: bool, data: str | None, balance_to: int | None,
                checkpoint_dataset: dict[str, Any]) -> tuple[dict[int, int], str | None]:
    """How many samples of each class to write; also the balancing dataset's sha256, if used.

    ``--class all --n N`` gives N per class; ``--class X --n N`` gives N of X. ``--balance --data D``
    gives every class what it lacks to reach the largest class of D's training split (or
    ``--balance-to T``; ``--balance-to`` alone implies ``--balance``); with ``--class X`` only X
    is filled. D must be the dataset the checkpoint was trained on (same sha256).

    Args:
        class_arg: ``--class``: a name (case-insensitive), an index, ``all`` or ``None``.
        n: ``--n``.
        class_names: the checkpoint's class names.
        conditional: whether the generator takes class labels.
        balance: ``--balance``.
        data: ``--data``.
        balance_to: ``--balance-to``.
        checkpoint_dataset: the checkpoint's record of its training data (``name``, ``sha256``).

    Returns:
        ``{class index: count}`` (classes with nothing to write are left out), and the sha256 of
        ``--data`` when balancing, else ``None``.

    Raises:
        MedganError: for every combination of options that does not make sense, an unknown class
            (the message lists the valid ones), or a ``--data`` that is not the training data.
    """
    from medgan.data.dataset import class_counts, load_dataset, resolve_class

    def chosen() -> list[int]:
        if class_arg is None or class_arg.strip().lower() == "all":
            return list(range(len(class_names)))
        return [resolve_class(class_arg, class_names)]

    if balance or balance_to is not None:
        if n is not None:
            raise MedganError("--n and --balance exclude each other: balancing computes the counts")
        if data is None:
            raise MedganError("--balance needs --data DATASET (the real training set to balance)")
        if not conditional:
            raise MedganError("--balance needs a class-conditional checkpoint; this one is unconditional")
        if balance_to is not None and balance_to <= 0:
            raise MedganError(f"--balance-to must be a positive count, got {balance_to}")
        classes = chosen()
        ds = load_dataset(data)
        want = str(checkpoint_dataset.get("sha256") or "")
        if not want:
            raise MedganError("the checkpoint does not record its training data's sha256, so --data cannot "
                              "be checked against it; balancing is refused")
        if ds.info.sha256 != want:
            raise MedganError(
                f"--data is not the dataset this checkpoint was trained on (checkpoint: "
                f"{checkpoint_dataset.get('name')} sha256 {want[:12]}…; --data: {ds.info.name} sha256 "
                f"{ds.info.sha256[:12]}…); balance against the training data", data)
        if ds.info.class_names != class_names:
            raise MedganError(f"--data has classes {ds.info.class_names}, the checkpoint {class_names}", data)
        counts = class_counts(ds.labels["train"], len(class_names))
        target = balance_to if balance_to is not None else max(counts)
        return {c: target - counts[c] for c in classes if target > counts[c]}, ds.info.sha256
    if data is not None:
        raise MedganError("--data is only used with --balance or --balance-to")
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
    return dict.fromkeys(chosen(), n), None


def augment(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A run folder (its latest checkpoint) or a checkpoint file."),
    class_: str | None = typer.Option(None, "--class", help="Class name or index, or 'all'."),
    n: int | None = typer.Option(None, "--n", help="Samples to write (per class with --class all)."),
    out: Path = typer.Option(Path("synthetic"), "--out", help="Output folder (written atomically)."),
    fmt: str = typer.Option("png", "--format", help="png (2D), npz, nifti or dicom."),
    seed: int = typer.Option(0, "--seed", help="Fixes the output exactly (non-negative)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Samples per batch (does not change the output)."),
    truncation: float | None = typer.Option(None, "--truncation", help="Draw latents from the normal truncated to [-T, T]."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 leaves torch's default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
    balance: bool = typer.Option(False, "--balance", help="Fill every class up to the largest class of --data."),
    data: str | None = typer.Option(None, "--data", help="The real training set to balance (with --balance)."),
    balance_to: int | None = typer.Option(None, "--balance-to", help="Fill every class up to this count instead."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar (on stderr)."),
) -> None:
    """Write synthetic samples from a trained generator, with manifest.csv and provenance.json.

    Example: medgan augment --checkpoint runs/cgan_breastmnist --class malignant --n 5000 --out synth/
    """
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medgan.export import FORMATS, SampleWriter, write_manifest, write_provenance
    from medgan.sampling import LATENT_BLOCK, forward_block, iter_samples, load_generator
    from medgan.utils import atomic_dir

    # Cheap checks first: a typo should not wait for the checkpoint to load.
    if fmt not in FORMATS:
        raise MedganError(f"unknown --format '{fmt}' (allowed: {', '.join(FORMATS)})")
    if n is not None and n <= 0:
        raise MedganError(f"--n must be a positive number of samples, got {n}")
    if seed < 0:
        raise MedganError(f"--seed must be a non-negative integer, got {seed}")
    if batch_size <= 0:
        raise MedganError(f"--batch-size must be positive, got {batch_size}")
    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise MedganError(f"--truncation must be a positive number, got {truncation}")
    if threads < 0:
        raise MedganError(f"--threads must be 0 (torch's default) or positive, got {threads}")
    if out.exists() and not out.is_dir():
        raise MedganError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MedganError("folder exists and is not empty (pass --overwrite to replace it)", out)

    if threads > 0:
        torch.set_num_threads(threads)
    gen = load_generator(checkpoint, device)
    if fmt == "png" and gen.spatial_dims == 3:
        raise MedganError("PNG is 2D only and this checkpoint makes volumes; use --format nifti, dicom or npz")
    if fmt == "nifti" and gen.spatial_dims == 2 and gen.channels == 3:
        raise MedganError("NIfTI holds grey images only and this checkpoint makes RGB; use --format png, npz or dicom")
    conditional = gen.num_classes > 0
    names = gen.class_names if conditional else ["sample"]
    counts, data_sha = plan_counts(class_, n, gen.class_names, conditional, balance, data, balance_to, gen.dataset)
    total = sum(counts.values())
    if total == 0:
        raise MedganError("nothing to write: every class already has the target count")

    arguments: dict[str, Any] = {
        "checkpoint": str(checkpoint), "class": class_, "n": n, "out": str(out), "format": fmt, "seed": seed,
        "batch_size": batch_size, "truncation": truncation, "device": device, "threads": threads,
        "overwrite": overwrite, "balance": balance, "data": data, "balance_to": balance_to,
    }
    extra: dict[str, Any] = {
        "counts": {names[c]: k for c, k in counts.items()}, "total": total, "format": fmt,
        "checkpoint_path": gen.checkpoint_path, "family": gen.family, "device": str(gen.device),
        "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "latent_block": LATENT_BLOCK, "forward_block": forward_block(gen.size), "balance_dataset_sha256": data_sha,
    }
    bar = Progress(TextColumn("[bold]augment[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), disable=not progress)
    t0 = time.perf_counter()
    try:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            with bar, SampleWriter(tmp, fmt=fmt, class_names=names, spatial_dims=gen.spatial_dims,  # type: ignore[arg-type]
                                   checkpoint_sha256=gen.checkpoint_sha256, dataset_name=str(gen.dataset.get("name")),
                                   spacing=gen.spacing) as writer:
                task = bar.add_task("", total=total)
                for c, k in counts.items():
                    start = 0
                    for batch in iter_samples(gen, c if conditional else None, k, seed=seed,
                                              batch_size=batch_size, truncation=truncation):
                        writer.write(batch, [c] * len(batch), seeds=seed, indices=range(start, start + len(batch)))
                        start += len(batch)
                        bar.advance(task, len(batch))
            write_manifest(tmp, writer.manifest)
            write_provenance(tmp, checkpoint_sha256=gen.checkpoint_sha256, config=gen.config,
                             dataset_sha256=gen.dataset.get("sha256"), arguments=arguments, extra=extra)
    except OSError as exc:
        # atomic_dir has removed the temporary folder; a replaced --out still holds its old content.
        raise MedganError(f"could not write the samples: {exc.strerror or exc}; the partial output was removed",
                          out) from None
    seconds = time.perf_counter() - t0
    per_class = ", ".join(f"{names[c]}: {k}" for c, k in counts.items())
    typer.echo(f"wrote {total} samples ({per_class}) as {fmt} to {out} in {seconds:.2f} s "
               f"({total / max(seconds, 1e-9):.0f} images/s)")


def register(app: typer.Typer) -> None:
    """Add the ``augment`` command to ``app``."""
    app.command("augment")(augment)
