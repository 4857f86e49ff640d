"""`medgan train`: train a class-conditional or progressive GAN from a YAML config."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    config: Path | None = typer.Argument(None, help="YAML config (configs/train/*.yaml); optional with --resume."),
    data: str | None = typer.Option(None, "--data", help="Dataset: registry name, npz or prepared folder."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: the config's 'out')."),
    steps: int | None = typer.Option(None, "--steps", help="Total steps to train to."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue a run folder (or checkpoint) exactly."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override a config key: --set lr_g=1e-4 (repeatable)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty run folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log to TensorBoard in RUN/tensorboard "
                                     "(config key logger: tensorboard; pip install \"medgan[tensorboard]\")."),
) -> None:
    """Train a GAN; write samples, metrics, curves and checkpoints into the run folder.

    Ctrl-C (or a scheduler's SIGTERM) finishes the step, writes a checkpoint and exits 130 (143);
    --resume continues exactly. Several processes or GPUs: launch the same command with torchrun
    (see docs/scaling.md).

    Example: medgan train configs/train/cgan_breastmnist.yaml --out runs/breast --set lr_g=1e-4

    Example: torchrun --nproc_per_node 2 -m medgan train configs/train/cgan_breastmnist.yaml
    """
    from medgan.api import train as api_train
    from medgan.configio import parse_overrides
    from medgan.training.distributed import is_main_process
    from medgan.training.loop import TrainingInterrupted

    overrides = parse_overrides(set_ or [])
    for key, value in (("data", data), ("steps", steps), ("device", device), ("threads", threads)):
        if value is not None:
            overrides[key] = value
    if out is not None:
        overrides["out"] = str(out)
    is_main = is_main_process()  # under torchrun, rank 0 reports for all
    try:
        result = api_train(config, overrides=overrides, resume=resume, overwrite=overwrite, progress=progress,
                           tensorboard=tensorboard)
    except TrainingInterrupted as exc:
        if is_main:
            typer.echo(f"interrupted at step {exc.step}: checkpoint written to {exc.checkpoint}", err=True)
        raise typer.Exit(128 + exc.signum) from None
    if is_main:
        typer.echo(f"done: {result.step} steps in {result.seconds:.0f} s; run folder {result.run_dir}; "
                   f"checkpoint {result.checkpoint}")
        if result.selected is not None:
            typer.echo(f"selected: {result.selected} (nearest the real masks of the kept checkpoints; the run folder "
                       "is sampled from it: selected.json)")


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train")(train)
