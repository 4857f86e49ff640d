"""One Rich progress display for a whole ``medgan run``: "stage k of 5" and the current stage's own bar.

The stages' inner work reports through :meth:`RunDisplay.task` (preprocessing, the feature net's
epochs, the export's candidates). Training and the benchmark draw their own Rich bars; on the same
console, Rich nests them inside this display (Rich keeps a stack of live displays per console), so
the terminal shows one block. Where the installed Rich cannot nest, those inner bars are switched
off and the stage line still moves.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["RunDisplay"]


class RunDisplay:
    """The run's progress display.

    Args:
        stages: how many stages the run has.
        enabled: draw the bars (the stage lines are printed either way).
        console: the Rich console (default Rich's global console, the one library bars use).
    """

    def __init__(self, stages: int, *, enabled: bool = True, console: Any = None) -> None:
        from rich import get_console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console if console is not None else get_console()
        self.enabled = enabled
        self.stages = stages
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not enabled,
        )
        self._overall = self.progress.add_task("[bold]medgan run[/]", total=stages)
        self._inner: Any = None

    @property
    def nested_bars(self) -> bool:
        """Whether a library's own Rich bar may run inside this display (else pass ``progress=False``)."""
        # Rich >= 14.1 keeps a stack of live displays per console and draws nested ones inside the
        # outermost; older versions raise LiveError for a second live display.
        return self.enabled and getattr(self.console, "_live_stack", None) is not None

    def __enter__(self) -> RunDisplay:
        self.progress.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def start_stage(self, k: int, name: str) -> None:
        """Stage ``k`` (1-based) begins."""
        self.progress.update(
            self._overall,
            completed=k - 1,
            description=f"[bold]medgan run[/]: stage {k} of {self.stages}, {name}",
        )

    def task(self, description: str, total: float | None) -> Callable[[float], None]:
        """An inner bar for the current stage (replacing the previous one); returns ``advance(n)``."""
        if self._inner is not None:
            self.progress.remove_task(self._inner)
        self._inner = self.progress.add_task(f"  {description}", total=total)
        task = self._inner

        def advance(n: float = 1) -> None:
            self.progress.advance(task, n)

        return advance

    def describe(self, description: str) -> None:
        """Change the inner bar's text."""
        if self._inner is not None:
            self.progress.update(self._inner, description=f"  {description}")

    def end_stage(self, k: int, line: str) -> None:
        """Stage ``k`` is finished (or skipped): print its line and drop its inner bar."""
        if self._inner is not None:
            self.progress.remove_task(self._inner)
            self._inner = None
        self.progress.update(self._overall, completed=k)
        self.console.print(line, highlight=False)
