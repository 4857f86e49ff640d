"""`medgan evaluate`: fidelity, diversity and memorisation of a synthetic set, in a domain feature space."""

from __future__ import annotations

import json
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
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from medgan.data.dataset import class_slugs, load_dataset
    from medgan.errors import MedganError
    from medgan.metrics.c2st import C2STConfig
    from medgan.metrics.evaluate import check_compatible, evaluate_detailed, load_synthetic
    from medgan.metrics.features import feature_cache_path, get_feature_extractor
    from medgan.metrics.report import rich_tables, save_class_grid, save_memorisation_pairs, summary_markdown
    from medgan.networks.classifier import ARCHS
    from medgan.utils import atomic_dir, write_text_atomic

    if arch not in ARCHS:
        raise MedganError(f"unknown --arch {arch!r}; allowed: {', '.join(ARCHS)}")
    console = Console()

    # Section. Inputs, checked before any training so that mistakes fail fast.
    dataset = load_dataset(real)
    syn = load_synthetic(synthetic, dataset, n_per_class=n, seed=seed, device=device)
    names = list(dataset.info.class_names)
    check_compatible(dataset.channel_first("train"), dataset.labels["train"], syn.images, syn.labels, names, k=k)

    with atomic_dir(out, overwrite=overwrite) as tmp:
        # Section. Feature net (trained once per dataset and cached), with a progress bar.
        cache = feature_cache_path(dataset.info.sha256, arch, epochs=feature_epochs, seed=seed)
        cached = cache.is_file() and not retrain_features
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=cached,
        ) as bar:
            task = bar.add_task(f"training the {arch} feature net on {dataset.info.name}", total=feature_epochs)
            extractor = get_feature_extractor(
                dataset, arch, device=device, seed=seed, epochs=feature_epochs, retrain=retrain_features,
                progress=lambda row: bar.update(
                    task, advance=1, description=f"feature net: val balanced acc {row['val_balanced_accuracy']:.2f}"
                ),
            )

        # Section. Metrics.
        with console.status("computing features and metrics"):
            result = evaluate_detailed(
                dataset, (syn.images, syn.labels), extractor=extractor, k=k, seed=seed, device=device,
                c2st=C2STConfig(folds=c2st_folds, min_steps=c2st_steps, seed=seed, device=device),
            )
        metrics = result.metrics

        # Section. Files: metrics, summary, per-class grids, memorisation pairs.
        record = {
            "metrics": metrics,
            "real": str(dataset.path),
            "real_sha256": dataset.info.sha256,
            "synthetic": syn.source,
            "class_names": names,
            "k": k,
            "seed": seed,
            "feature_net": {
                key: extractor.info.get(key)
                for key in ("arch", "arch_kwargs", "epochs", "selected_epoch", "seed", "val_balanced_accuracy",
                            "test_accuracy", "test_balanced_accuracy", "cache_path")
            },
        }
        write_text_atomic(tmp / "metrics.json", json.dumps(record, indent=2) + "\n")
        notes = [
            f"real: `{dataset.path.name}` ({dataset.info.name}, sha256 {dataset.info.sha256[:12]}…), "
            f"train split as reference, test split for the memorisation audit",
            f"synthetic: `{syn.source}` ({len(syn.images)} images)",
            f"feature space: `{arch}` classifier trained on the real train split "
            f"(test accuracy {extractor.scores.get('accuracy', float('nan')):.3f}, "
            f"balanced {extractor.scores.get('balanced_accuracy', float('nan')):.3f}); k = {k}",
        ]
        write_text_atomic(
            tmp / "summary.md",
            summary_markdown(metrics, names, title=f"medgan evaluate: {dataset.info.name}", notes=notes),
        )
        for c, (name, slug) in enumerate(zip(names, class_slugs(names), strict=True)):
            save_class_grid(
                tmp / f"grid_class_{slug}.png",
                result.real_images[result.real_labels == c],
                syn.images[syn.labels == c],
                title=f"{dataset.info.name}: class {name} (left real train, right synthetic)",
                seed=seed,
            )
        if result.audit is not None:
            save_memorisation_pairs(tmp / "memorisation_pairs.png", result.audit, syn.images, result.real_images)

    for table in rich_tables(metrics, names):
        console.print(table)
    console.print(f"wrote {out}/ (metrics.json, summary.md, grids, memorisation_pairs.png)")
