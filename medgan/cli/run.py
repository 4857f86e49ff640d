"""`medgan run`: one command from a folder of scans to an audited synthetic set and a benchmark report."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

_HELP = (
    "From a folder of scans to a report, in five resumable stages: preprocess (DICOM series, NIfTI, PNG / JPEG), "
    "train a class-conditional GAN with a config derived from the data, evaluate it (C2ST, fidelity, "
    "memorisation), export a quality-gated synthetic set (likely copies and samples a real-data classifier does "
    "not assign to their class are dropped), and benchmark a classifier with and without the synthetic images.\n\n"
    "Labels come from one sub-folder per class, or from --labels labels.csv (an id column matched against the "
    "files, label, and patient_id for patient-grouped splits). Running the same command again skips the finished "
    "stages; deleting a stage's folder reruns it and the stages after it. Start reading at OUT/index.md.\n\n"
    "Example: medgan run ./scans --out runs/scans --labels labels.csv --target-class malignant --size 64"
)


def register(app: typer.Typer) -> None:
    """Add the `run` command to `app`."""
    app.command("run", help=_HELP)(run_command)


def run_command(
    source: Path = typer.Argument(
        ..., help="A folder of class folders, or (with --labels) any folder of scans.", show_default=False
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The run folder (created, or resumed)."),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="Labels CSV: an id column (path, id, file, ...), label, and optionally patient_id and split.",
        show_default=False,
    ),
    target_class: str | None = typer.Option(
        None,
        "--target-class",
        help="The class the benchmark reports first (default: the smallest).",
        show_default=False,
    ),
    size: int = typer.Option(
        64, "--size", "-s", help="Side of the prepared images in pixels (a cube for volumes)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="YAML of overrides: sections preprocess, train, evaluate, export, benchmark (docs/run.md).",
        show_default=False,
    ),
    steps: int | None = typer.Option(
        None, "--steps", help="GAN training steps (default: the derived config's).", show_default=False
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress display."),
) -> None:
    from rich import get_console

    from medgan.pipeline.config import load_run_config
    from medgan.pipeline.stages import RunOptions, run_pipeline
    from medgan.training.loop import TrainingInterrupted

    opts = RunOptions(
        source=source,
        out=out,
        labels=labels,
        target_class=target_class,
        size=size,
        device=device,
        steps=steps,
        config=load_run_config(config),
        config_path=config,
        progress=progress,
    )
    try:
        result = run_pipeline(opts, console=get_console())
    except TrainingInterrupted as exc:
        typer.echo(
            f"interrupted at step {exc.step}: checkpoint written; run the same command again to continue",
            err=True,
        )
        raise typer.Exit(128 + exc.signum) from None
    except KeyboardInterrupt as exc:  # SIGINT / SIGTERM in another stage
        signum = int(getattr(exc, "signum", signal.SIGINT))
        typer.echo(
            f"interrupted ({signal.Signals(signum).name}): finished stages are kept, and the benchmark keeps its "
            "finished runs; run the same command again to continue",
            err=True,
        )
        raise typer.Exit(128 + signum) from None
    if result.skipped:
        typer.echo(f"skipped {len(result.skipped)} finished stage(s): {', '.join(result.skipped)}")
    if result.ran:
        typer.echo(f"ran {len(result.ran)} stage(s): {', '.join(result.ran)}")
    typer.echo(f"wrote {result.index}")
