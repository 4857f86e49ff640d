"""`medgan data`: the MedMNIST registry, fetching and dataset summaries."""

from __future__ import annotations

import json
import re

import typer

app = typer.Typer(
    help="List, fetch and inspect datasets.\n\nExample: medgan data info breastmnist",
    no_args_is_help=True,
)

_SIZED = re.compile(r"^(?P<name>.+?)_(?P<size>\d+)$")


def _name_and_size(name: str, size: int | None) -> tuple[str, int]:
    """``breastmnist_64`` -> (``breastmnist``, 64); an explicit ``--size`` wins."""
    m = _SIZED.match(name.strip().lower())
    if m:
        return m.group("name"), size or int(m.group("size"))
    return name.strip().lower(), size or 28


@app.command("list")
def list_datasets(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON instead of a table."),
) -> None:
    """List the built-in MedMNIST v2 datasets: dims, channels, classes, sizes and split counts.

    Example: medgan data list --json
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from medgan.data.registry import REGISTRY

    if as_json:
        rows = [
            {
                "name": s.name, "modality": s.modality, "task": s.task, "spatial_dims": s.spatial_dims,
                "channels": s.channels, "label_names": list(s.label_names), "sizes": list(s.sizes),
                "md5": {str(k): v for k, v in sorted(s.md5.items())},
                "urls": {str(k): s.url(k) for k in s.sizes}, "n_samples": s.n_samples,
                "license": s.license, "source": s.source,
            }
            for s in REGISTRY.values()
        ]
        typer.echo(json.dumps(rows, indent=2))
        return

    # A light frame, so that every column fits 80 characters (a pipe, or an 80-column terminal);
    # the counts never wrap or shrink: a squeezed Rich column would print blank.
    table = Table(title="MedMNIST v2 datasets (medgan data fetch NAME --size N)", box=box.SIMPLE_HEAD, padding=0,
                  pad_edge=False)
    table.add_column("name", no_wrap=True)
    for col in ("dims", "ch", "classes"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("sizes", no_wrap=True)
    for col in ("train", "val", "test"):
        width = max(len(col), *(len(str(s.n_samples.get(col, ""))) for s in REGISTRY.values()))
        table.add_column(col, justify="right", no_wrap=True, min_width=width)
    table.add_column("notes", no_wrap=True)
    for s in REGISTRY.values():
        notes = [n for n in ("multi-label" if s.multi_label else "",
                             s.license.replace(" 4.0", "") if s.license != "CC BY 4.0" else "") if n]
        table.add_row(
            s.name, f"{s.spatial_dims}D", str(s.channels), str(s.num_classes),
            ",".join(str(z) for z in s.sizes),
            *(str(s.n_samples.get(k, "")) for k in ("train", "val", "test")),
            "; ".join(notes),
        )
    Console().print(table)


@app.command("fetch")
def fetch_dataset(
    name: str = typer.Argument(..., help="A registry name, e.g. breastmnist (or breastmnist_64)."),
    size: int | None = typer.Option(None, "--size", "-s", help="28 (default), or 64 / 128 / 224 (2D), 64 (3D)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a download progress bar."),
) -> None:
    """Find a verified official MedMNIST file (cache, then MEDGAN_MIRROR, then download) and print its path.

    The path goes to stdout, where it came from to stderr, so `$(medgan data fetch NAME)` works.

    Example: medgan data fetch breastmnist --size 64
    """
    from medgan.data.fetch import fetch_with_source

    flag, want = _name_and_size(name, size)
    res = fetch_with_source(flag, want, progress=progress)
    how = {"cache": "found in the cache", "mirror": "found in MEDGAN_MIRROR (used in place)",
           "download": "downloaded into the cache"}[res.source]
    typer.echo(f"{res.path.name}: {how}; MD5 {res.md5} verified", err=True)
    typer.echo(str(res.path))


@app.command("info")
def info(
    dataset: str = typer.Argument(..., help="A prepared folder, an npz, or a registry name (breastmnist)."),
    size: int | None = typer.Option(None, "--size", "-s", help="For a registry name: 28, 64, 128 or 224."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a dataset: images per split and class, class imbalance, channels, dims, size, sha256.

    Example: medgan data info breastmnist --size 64
    """
    from rich.console import Console
    from rich.table import Table

    from medgan.data.dataset import SPLITS, load_dataset

    ds = load_dataset(dataset, size)
    meta = ds.info
    names = meta.class_names
    train = meta.counts["train"]
    ratio, major, minor = _imbalance(train)
    if as_json:
        out = {
            "name": meta.name, "path": str(ds.path), "source": meta.source, "class_names": names,
            "channels": meta.channels, "spatial_dims": meta.spatial_dims, "size": meta.size,
            "sha256": meta.sha256, "counts": meta.counts,
            "imbalance_train": ratio if ratio != float("inf") else None,
        }
        typer.echo(json.dumps(out, indent=2))
        return

    console = Console()
    table = Table(title=f"{meta.name}: images per split and class")
    table.add_column("label", justify="right")
    table.add_column("class")
    for s in (*SPLITS, "total"):
        table.add_column(s, justify="right")
    for i, cname in enumerate(names):
        per = [meta.counts[s][i] for s in SPLITS]
        table.add_row(str(i), cname, *map(str, per), str(sum(per)))
    totals = [sum(meta.counts[s]) for s in SPLITS]
    table.add_row("", "all", *map(str, totals), str(sum(totals)), end_section=True)
    console.print(table)

    if ratio == float("inf"):
        imbalance = f"no train images of '{names[minor]}'"
    elif len(names) == 1:
        imbalance = f"one class only ('{names[0]}' {train[0]}, train)"
    elif ratio == 1.0:
        imbalance = f"1.00 (balanced: {train[0]} per class, train)"
    else:
        imbalance = f"{ratio:.2f} ('{names[major]}' {train[major]} / '{names[minor]}' {train[minor]}, train)"
    shape = "×".join(str(v) for v in meta.size)
    lines = [
        ("path", str(ds.path)),
        ("source", meta.source),
        ("channels", str(meta.channels)),
        ("spatial dims", f"{meta.spatial_dims}D"),
        ("size", shape),
        ("imbalance", imbalance),
        ("sha256", meta.sha256),
    ]
    lines += _registry_notes(meta.source)
    for key, value in lines:
        console.print(f"[bold]{key:>12}[/bold]  {value}", highlight=False, soft_wrap=True)


def _imbalance(counts: list[int]) -> tuple[float, int, int]:
    """Majority / minority ratio of ``counts`` and the two class indices."""
    major = max(range(len(counts)), key=lambda i: counts[i])
    minor = min(range(len(counts)), key=lambda i: counts[i])
    if counts[minor] == 0:
        return float("inf"), major, minor
    return counts[major] / counts[minor], major, minor


def _registry_notes(source: str) -> list[tuple[str, str]]:
    """Licence and citation lines for an official MedMNIST file."""
    if not source.startswith("medmnist:"):
        return []
    from medgan.data.registry import MEDMNIST_CITATION, REGISTRY

    flag = _name_and_size(source.split(":", 1)[1], None)[0]
    spec = REGISTRY.get(flag)
    if spec is None:
        return []
    return [("license", spec.license), ("cite", f"{MEDMNIST_CITATION} Source data: {spec.source}.")]
