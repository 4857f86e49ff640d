"""`medgan augment`: write synthetic images or volumes from a checkpoint, with provenance."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from medgan.errors import MedganError

if TYPE_CHECKING:  # the plan module is light, but the CLI keeps every library import lazy (fast --help)
    from medgan.synth.plan import ClassPlan
    from medgan.synth.translate import LoadedTranslator


def parse_plan(*, class_arg: str | None, n: int | None, class_names: list[str], conditional: bool,
               balance: bool, balance_to: int | None, data: str | None) -> ClassPlan:
    """The per-class plan that the options ask for.

    ``--class all --n N`` gives N per class; ``--class X --n N`` gives N of X. ``--balance --data D``
    gives every class what it lacks to reach the largest class of D's training split (or
    ``--balance-to T``; ``--balance-to`` alone implies ``--balance``); with ``--class X`` only X
    is filled. D must be the data the checkpoint was trained on (checked by the caller).

    Raises:
        MedganError: for every combination of options that does not make sense, or an unknown class
            (the message lists the valid ones).
    """
    from medgan.data.dataset import resolve_class
    from medgan.synth.plan import ClassPlan

    def chosen() -> tuple[int, ...] | None:
        if class_arg is None or class_arg.strip().lower() == "all":
            return None
        return (resolve_class(class_arg, class_names),)

    if balance or balance_to is not None:
        if n is not None:
            raise MedganError("--n and --balance exclude each other: balancing computes the counts")
        if data is None:
            raise MedganError("--balance needs --data DATASET (the real training set to balance)")
        if not conditional:
            raise MedganError("--balance needs a class-conditional checkpoint; this one is unconditional")
        if balance_to is not None and balance_to <= 0:
            raise MedganError(f"--balance-to must be a positive count, got {balance_to}")
        return ClassPlan("balance", target=balance_to, classes=chosen())
    if data is not None:
        raise MedganError("--data is only used with --balance or --balance-to")
    if n is None:
        raise MedganError("give --n N (or --balance --data DATASET)")
    if n <= 0:
        raise MedganError(f"--n must be a positive number of samples, got {n}")
    if not conditional:
        if class_arg not in (None, "all"):
            raise MedganError("this checkpoint is unconditional: it cannot make one class; use --class all")
        return ClassPlan("count", n=n, classes=(0,))
    if class_arg is None:
        raise MedganError(f"give --class NAME|INDEX|all (classes: {', '.join(class_names)})")
    return ClassPlan("count", n=n, classes=chosen())


def augment(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A run folder (the checkpoint training selected, else its latest) or a checkpoint file."),
    class_: str | None = typer.Option(None, "--class", help="Class name or index, or 'all'."),
    n: int | None = typer.Option(None, "--n", help="Samples to write (per class with --class all)."),
    out: Path = typer.Option(Path("synthetic"), "--out", help="Output folder (written atomically)."),
    fmt: str = typer.Option("png", "--format", help="png (2D), npz, nifti or dicom."),
    seed: int = typer.Option(0, "--seed", help="Fixes the output exactly (non-negative)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Samples per batch (does not change the output)."),
    truncation: float | None = typer.Option(None, "--truncation", help="Fidelity over diversity: z from the normal truncated to [-T, T]; for a style-family "
                                                 "checkpoint, psi = T in (0, 1] towards the class's mean w."),
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

    from medgan.data.dataset import class_counts, load_dataset
    from medgan.synth.sampling import check_sampling_args, load_generator
    from medgan.synth.translate import is_translator, translator_from_checkpoint
    from medgan.synth.write import check_format, write_synthetic
    from medgan.training.checkpoint import RunFolder, load_checkpoint
    from medgan.utils import check_not_input, check_out_folder

    # Cheap checks first: a typo should not wait for the checkpoint to load.
    check_format(fmt)
    check_sampling_args(n=n, seed=seed, batch_size=batch_size, truncation=truncation)
    if threads < 0:
        raise MedganError(f"--threads must be 0 (torch's default) or positive, got {threads}")
    if out.exists() and not out.is_dir():
        raise MedganError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MedganError("folder exists and is not empty (pass --overwrite to replace it)", out)
    check_out_folder(out)
    run = RunFolder.containing(checkpoint).root
    check_not_input(out, {"the checkpoint": checkpoint},
                    folders={"the checkpoint's run folder": run if RunFolder.is_run(run) else None})

    if threads > 0:
        torch.set_num_threads(threads)
    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    if is_translator(ckpt):  # a CycleGAN: its samples are train images of the other class, translated
        if truncation is not None:
            raise MedganError("--truncation applies to generators; this checkpoint is a translator")
        given = {"checkpoint": str(checkpoint), "class": class_, "n": n, "out": str(out), "format": fmt, "seed": seed,
                 "batch_size": batch_size, "device": device, "threads": threads, "overwrite": overwrite,
                 "balance": balance, "data": data, "balance_to": balance_to}
        _augment_translated(translator_from_checkpoint(ckpt, device), given, progress)
        return
    gen = load_generator(ckpt, device)
    check_format(fmt, gen)
    conditional = gen.num_classes > 0
    plan = parse_plan(class_arg=class_, n=n, class_names=gen.class_names, conditional=conditional,
                      balance=balance, balance_to=balance_to, data=data)
    real_counts, data_sha = None, None
    if plan.needs_real_counts:
        assert data is not None
        ds = load_dataset(data)
        check_not_input(out, {"the --data dataset": ds.path})
        gen.check_trained_on(ds.info, "--data", data)
        real_counts, data_sha = class_counts(ds.labels["train"], len(gen.class_names)), ds.info.sha256
    counts = plan.counts(max(gen.num_classes, 1), real_counts)

    arguments: dict[str, Any] = {
        "checkpoint": str(checkpoint), "class": class_, "n": n, "out": str(out), "format": fmt, "seed": seed,
        "batch_size": batch_size, "truncation": truncation, "device": device, "threads": threads,
        "overwrite": overwrite, "balance": balance, "data": data, "balance_to": balance_to,
    }
    bar = Progress(TextColumn("[bold]augment[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), disable=not progress)
    t0 = time.perf_counter()
    with bar:
        task = bar.add_task("", total=sum(counts.values()))
        total = write_synthetic(gen, counts, out, fmt=fmt, seed=seed, batch_size=batch_size, truncation=truncation,
                                overwrite=overwrite, arguments=arguments, extra={"balance_dataset_sha256": data_sha},
                                on_batch=lambda k: bar.advance(task, k))
    seconds = time.perf_counter() - t0
    names = gen.class_names if conditional else ["sample"]
    per_class = ", ".join(f"{names[c]}: {k}" for c, k in counts.items())
    typer.echo(f"wrote {total} samples ({per_class}) as {fmt} to {out} in {seconds:.2f} s "
               f"({total / max(seconds, 1e-9):.0f} images/s)")


def _augment_translated(tr: LoadedTranslator, arguments: dict[str, Any], progress: bool) -> None:
    """``medgan augment`` with a translator: train images of the other class, translated, each with its source id.

    ``arguments`` are the command's (recorded in the provenance). ``--data`` names the training
    data when the checkpoint's own ``data`` cannot be found; it must be the data it was trained on.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medgan.synth.translate import augment_parts, training_dataset, write_translated
    from medgan.synth.write import check_format
    from medgan.utils import check_not_input

    a = arguments
    out, fmt, balancing = Path(a["out"]), a["format"], a["balance"] or a["balance_to"] is not None
    check_format(fmt, tr)
    plan = parse_plan(class_arg=a["class"], n=a["n"], class_names=tr.class_names, conditional=True,
                      balance=a["balance"], balance_to=a["balance_to"], data=a["data"] if balancing else None)
    ds = training_dataset(tr, a["data"])
    check_not_input(out, {"the --data dataset": ds.path})
    parts = augment_parts(tr, ds, plan, a["seed"])
    bar = Progress(TextColumn("[bold]augment[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), disable=not progress)
    t0 = time.perf_counter()
    with bar:
        task = bar.add_task("", total=sum(len(src.images) for src, _ in parts))
        total = write_translated(tr, parts, out, fmt=fmt, seed=a["seed"], batch_size=a["batch_size"],
                                 overwrite=a["overwrite"], arguments=arguments, on_batch=lambda k: bar.advance(task, k))
    seconds = time.perf_counter() - t0
    per_class = ", ".join(f"{tr.domains[to]}: {len(src.images)} translated from {tr.domains[1 - to]}"
                          for src, to in parts)
    typer.echo(f"wrote {total} samples ({per_class}) as {fmt} to {out} in {seconds:.2f} s "
               f"({total / max(seconds, 1e-9):.0f} images/s)")


def register(app: typer.Typer) -> None:
    """Add the ``augment`` command to ``app``."""
    app.command("augment")(augment)
