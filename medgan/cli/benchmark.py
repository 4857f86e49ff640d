"""`medgan benchmark`: does adding GAN samples help the classifier, and by how much?"""

from __future__ import annotations

from pathlib import Path

import typer

_HELP = (
    "Train the same classifier on real data, real + classical augmentation, real + GAN samples, both, "
    "and GAN samples only; test every arm on the real test split over several seeds; report the "
    "differences with bootstrap confidence intervals and a plain-language verdict.\n\n"
    "Without CONFIG, configs/benchmark/default.yaml (BreastMNIST 28², target class malignant). The GAN is "
    "trained once on the train split (or given with --checkpoint). Writes report.md, results.json and "
    "PNGs into --out; finished (arm, seed) runs are kept in OUT/runs, so running the same command again "
    "resumes.\n\n"
    "Example: medgan benchmark --quick"
)


def register(app: typer.Typer) -> None:
    """Add the `benchmark` command to `app`."""
    app.command("benchmark", help=_HELP)(benchmark_command)


def benchmark_command(
    config: Path | None = typer.Argument(None, help="Benchmark config (default: configs/benchmark/default.yaml)."),
    quick: bool = typer.Option(False, "--quick", help="Apply the config's quick: section (2 seeds, fewer epochs, "
                               "a shorter GAN schedule): a smoke test in minutes."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: the config's 'out')."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint",
                                           help="Use this GAN checkpoint (.pt or run folder) instead of training one."),
    seeds: int | None = typer.Option(None, "--seeds", min=1, help="Seeds per arm (the same seeds for every arm)."),
    fractions: str | None = typer.Option(
        None, "--fractions", help="The data-scarcity sweep: shares of the real train split, comma-separated, e.g. "
        "0.1,1.0 (config key fractions). Each is a stratified subset, nested across fractions, with its own GAN."),
    jobs: int | None = typer.Option(None, "--jobs", min=1, help="(arm, seed) runs in parallel processes."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again in an existing output folder."),
    only: list[str] | None = typer.Option(
        None, "--only", help="Do only this part: 'gan' (train the GAN), or ARM:SEED such as real+synthetic:3 "
        "(repeatable; no report). For one job per (arm, seed) on a cluster."),
    report_only: bool = typer.Option(False, "--report-only", help="Aggregate the finished runs into the report."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override a config key: --set classifier.epochs=10."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also write TensorBoard event files: the GAN in "
                                     "OUT/gan/tensorboard, the classifiers in OUT/tensorboard (config key logger: "
                                     "tensorboard; pip install \"medgan[tensorboard]\")."),
) -> None:
    from rich.console import Console

    from medgan.api import benchmark
    from medgan.benchmark.report import print_summary
    from medgan.training.loop import TrainingInterrupted

    overrides = list(set_ or [])
    for key, value in (("seeds", seeds), ("jobs", jobs), ("device", device)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if fractions is not None:
        overrides.append(f"fractions=[{fractions}]")
    console = Console(stderr=True)
    try:
        result = benchmark(config, quick=quick, out=out, checkpoint=checkpoint, overrides=overrides, only=only,
                           report_only=report_only, overwrite=overwrite, progress=progress, console=console,
                           tensorboard=tensorboard)
    except (KeyboardInterrupt, TrainingInterrupted) as exc:
        folder = getattr(exc, "benchmark_out", out)
        typer.echo(f"interrupted: finished runs are kept in {folder}; run the same command again to resume", err=True)
        raise typer.Exit(128 + getattr(exc, "signum", 2)) from None  # 130 for Ctrl-C, 143 for SIGTERM
    folder = result.out
    if result.results is None:
        done = (f"{len(result.ran)} run(s) done, {len(result.skipped)} already finished"
                if list(only or []) != ["gan"] else "GAN ready")
        typer.echo(f"{done}; folder {folder}")
        return
    print_summary(result.results, Console())
    typer.echo(f"wrote {folder}/report.md, results.json and figures "
               f"({len(result.ran)} run(s) trained, {len(result.skipped)} reused)")
