"""`medgan translate`: images of one domain made into the other by a cycle-family checkpoint, each with its source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from medgan.errors import MedganError


def translate(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="A cycle-family run folder or checkpoint file."
    ),
    to: str = typer.Option(
        ..., "--to", help="The domain to translate into: a class name (class translation) or a dataset name."
    ),
    input_: str = typer.Option(
        ..., "--input", help="A prepared dataset (registry name, npz or folder) or a folder of images."
    ),
    out: Path = typer.Option(Path("translated"), "--out", help="Output folder (written atomically)."),
    split: str = typer.Option(
        "train", "--split", help="With a dataset: the split to translate (train, val, test)."
    ),
    fmt: str = typer.Option("png", "--format", help="png (2D), npz, nifti or dicom."),
    batch_size: int = typer.Option(
        256, "--batch-size", help="Images per batch (does not change the output)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 leaves torch's default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show the progress bar (on stderr)."
    ),
) -> None:
    """Translate images into another domain with a CycleGAN checkpoint; manifest.csv records each output's source.

    From a dataset, the images of --split that belong to the other domain are translated; from a
    folder, every image file under it (of the translator's size, 8-bit).

    Example: medgan translate --checkpoint runs/cycle_breastmnist --to malignant --input breastmnist --split test
    """
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medgan.synth.sampling import check_sampling_args
    from medgan.synth.translate import input_sources, load_translator, write_translated
    from medgan.synth.write import check_format
    from medgan.training.checkpoint import RunFolder
    from medgan.utils import check_not_input, check_out_folder

    # Cheap checks first: a typo should not wait for the checkpoint to load.
    check_format(fmt)
    check_sampling_args(batch_size=batch_size)
    if threads < 0:
        raise MedganError(f"--threads must be 0 (torch's default) or positive, got {threads}")
    if split not in ("train", "val", "test"):
        raise MedganError(f"unknown --split '{split}' (allowed: train, val, test)")
    check_out_folder(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MedganError("folder exists and is not empty (pass --overwrite to replace it)", out)
    run = RunFolder.containing(checkpoint).root
    given = Path(input_).expanduser()
    check_not_input(
        out,
        {"the checkpoint": checkpoint, "the input": given if given.exists() else None},
        folders={
            "the checkpoint's run folder": run if RunFolder.is_run(run) else None,
            "the input folder": given if given.is_dir() else None,
        },
    )

    if threads > 0:
        torch.set_num_threads(threads)
    tr = load_translator(checkpoint, device)
    check_format(fmt, tr)
    domain = tr.domain_index(to)
    sources = input_sources(tr, input_, domain, split)
    arguments: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "to": to,
        "input": given.name if given.exists() else input_,
        "split": split,
        "out": str(out),
        "format": fmt,
        "batch_size": batch_size,
        "device": device,
        "threads": threads,
        "overwrite": overwrite,
    }
    bar = Progress(
        TextColumn("[bold]translate[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
    )
    t0 = time.perf_counter()
    with bar:
        task = bar.add_task("", total=len(sources.images))
        total = write_translated(
            tr,
            [(sources, domain)],
            out,
            fmt=fmt,
            batch_size=batch_size,
            overwrite=overwrite,
            arguments=arguments,
            on_batch=lambda k: bar.advance(task, k),
        )
    seconds = time.perf_counter() - t0
    typer.echo(
        f"translated {total} images ({tr.domains[1 - domain]} -> {tr.domains[domain]}) as {fmt} to {out} "
        f"in {seconds:.2f} s"
    )


def register(app: typer.Typer) -> None:
    """Add the ``translate`` command to ``app``."""
    app.command("translate")(translate)
