"""`medgan data`: the MedMNIST registry, fetching and dataset summaries."""

from __future__ import annotations

import typer

app = typer.Typer(help="List, fetch and inspect datasets.", no_args_is_help=True)
