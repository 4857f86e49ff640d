"""`medgan evaluate`: fidelity, diversity and memorisation of a synthetic set, in a domain feature space."""

from __future__ import annotations

from pathlib import Path

import typer

_HELP = (
    "Measure a synthetic set against a real dataset: a classifier two-sample test (C2ST: can a small CNN tell "
    "synthetic from real? ROC AUC, 0.5 is ideal, with the real-vs-real floor), the multi-scale sliced Wasserstein "
    "distance (SWD) on the pixels, FID / KID, precision / recall, density / coverage "
    "(whole set and per class), and a memorisation audit against the real test split.\n\n"
    "Features come from a classifier trained on the real training split (cached per dataset under "
    "$MEDGAN_HOME/features), not from Inception-v3. Writes metrics.json, summary.md, one "
    "grid_class_<name>.png per class and memorisation_pairs.png into --out.\n\n"
    "Example: medgan evaluate --real breastmnist --synthetic synth/ --out eval_breast  (synth/ as written by "
    "medgan augment --class all --n 500 --out synth/)"
)


def register(app: typer.Typer) -> None:
    """Add the `evaluate` command to `app`."""
    app.command("evaluate", help=_HELP)(evaluate_command)


def evaluate_command(
    real: str = typer.Option(..., "--real", help="Real dataset: a registry name, an npz or a prepared folder."),
    synthetic: Path = typer.Option(
        ..., "--synthetic",
        help="Synthetic set: the folder that medgan augment wrote (PNG with manifest.csv, or npz), an npz with "
        "train_images/train_labels, a prepared dataset, or a checkpoint (.pt or a run folder) to sample from.",
    ),
    n: int | None = typer.Option(
        None, "--n", min=1,
        help="Synthetic images per class: sampled from a checkpoint (default 500), or a random subset of a file.",
    ),
    out: Path = typer.Option(Path("evaluate_out"), "--out", "-o", help="Output folder (must be new or empty)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
    seed: int = typer.Option(0, "--seed", help="Seeds the feature net, sampling and KID subsets."),
    arch: str = typer.Option("cnn", "--arch", help="Feature-net architecture: cnn, resnet10, resnet18, densenet121."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    k: int = typer.Option(3, "--k", min=1, help="Neighbour count for precision / recall / density / coverage."),
    feature_epochs: int = typer.Option(20, "--feature-epochs", min=1, help="Epochs when the feature net is trained."),
    retrain_features: bool = typer.Option(False, "--retrain-features", help="Ignore a cached feature net."),
    c2st_folds: int = typer.Option(5, "--c2st-folds", min=2, help="Cross-validation folds of the two-sample CNN."),
    c2st_steps: int = typer.Option(
        300, "--c2st-steps", min=0, help="At least this many optimisation steps per C2ST fold (small sets train longer).",
    ),
    c2st_volume_stride: int = typer.Option(
        2, "--c2st-volume-stride", min=1,
        help="Stride of the two-sample CNN's first layer on 3D volumes (1: full resolution, about 3x the time; for a GPU).",
    ),
) -> None:
    from rich.console import Console

    from medgan.api import evaluate
    from medgan.metrics.report import rich_tables

    console = Console()
    result = evaluate(
        real, synthetic, out, n=n, overwrite=overwrite, seed=seed, arch=arch, device=device, k=k,
        feature_epochs=feature_epochs, retrain_features=retrain_features, c2st_folds=c2st_folds,
        c2st_steps=c2st_steps, c2st_volume_stride=c2st_volume_stride, progress=True, console=console,
    )
    for table in rich_tables(result.metrics, result.class_names):
        console.print(table)
    console.print(f"wrote {out}/ (metrics.json, summary.md, grids, C2ST extremes, memorisation_pairs.png)")
