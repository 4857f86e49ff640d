"""`medgan select`: rank training runs of one config by how near their masks are to the real ones."""

from __future__ import annotations

import json
from pathlib import Path

import typer

_HELP = (
    "Rank GAN training runs (seeds of one config) by how near their samples' masks lie to the real training "
    "masks, and name the one to keep. For binary-mask data such as AdrenalMNIST3D, where training is "
    "fragile across seeds. Each run's latest checkpoint (or the one training selected) is sampled at the real train split's class counts; the "
    "distance sums the error in how well size tells the class, the error in each class's size, and the "
    "fragments per mask (docs/metrics.md). It reads the real training split only, no test image. It drops "
    "the runs that failed outright; it does not reliably find the best of the rest, so measure the kept "
    "run's class signal (TSTR) before relying on it.\n\n"
    "Example: for s in 0 1 2; do medgan train configs/train/cgan_adrenalmnist3d.yaml --set seed=$s "
    "--out runs/adrenal_s$s; done; medgan select runs/adrenal_s0 runs/adrenal_s1 runs/adrenal_s2 "
    "--out selection.json"
)


def select_command(
    runs: list[Path] = typer.Argument(..., help="Run folders (their latest checkpoint, or the one training selected) or checkpoint files."),
    data: str | None = typer.Option(None, "--data", help="Real dataset (default: the one the runs were trained on)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the ranking and every figure to this JSON file."),
    seed: int = typer.Option(0, "--seed", min=0, help="Sampling seed (0 gives benchmarks/gan_quality.py's figures)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar (on stderr)."),
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from medgan.errors import MedganError
    from medgan.metrics.selection import rank_runs
    from medgan.utils import check_not_input, write_text_atomic

    if out is not None:
        if out.suffix != ".json":
            raise MedganError("--out is a JSON file (name it *.json)", out)
        check_not_input(out, {f"the run {r}": r for r in runs}, folders={f"run {i}": r for i, r in enumerate(runs, 1)})
    bar = Progress(TextColumn("[bold]select[/]"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True),
                   disable=not progress)
    with bar:
        task = bar.add_task("runs", total=len(runs))
        ranked = rank_runs(runs, data, seed=seed, device=device, on_run=lambda _: bar.advance(task))
    table = Table(title="Mask distance to the real training masks (lower is nearer)")
    for column in ("rank", "run", "distance", "class gap", "sizes", "pieces per mask"):
        # a run's name is folded onto more lines, never cut: it is what the user copies
        table.add_column(column, justify="left" if column == "run" else "right", overflow="fold",
                         min_width=len(column))
    real_pieces = ranked[0].metrics["values/components_real"]
    for i, score in enumerate(ranked, 1):
        m = score.metrics
        table.add_row(str(i), score.run, f"{score.distance:.2f}", f"{m['mask_distance/class_gap']:.2f}",
                      f"{m['mask_distance/sizes']:.2f}",
                      f"{m['values/components_synthetic']:.1f} (real {real_pieces:.1f})")
    console = Console()
    console.print(table)
    for score in ranked:
        for caution in score.cautions:
            console.print(f"caution ({score.run}): {caution}")
    if out is not None:
        record = {"keep": ranked[0].run, "seed": seed,
                  "ranking": [{"run": s.run, "checkpoint": s.checkpoint, "distance": s.distance,
                               "metrics": s.metrics, "cautions": s.cautions} for s in ranked]}
        write_text_atomic(out, json.dumps(record, indent=2) + "\n")
    console.print(f"keep: {ranked[0].run}" + (f" (wrote {out})" if out is not None else ""))


def register(app: typer.Typer) -> None:
    """Add the ``select`` command to ``app``."""
    app.command("select", help=_HELP)(select_command)
