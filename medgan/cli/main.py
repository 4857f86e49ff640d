"""The ``medgan`` Typer application: joins the per-command modules and maps errors to exit codes.

Every :class:`~medgan.errors.MedganError` raised under a command becomes one line on stderr,
``error: <message>``, and exit code 2, with no traceback. Command modules import torch and the
other heavy libraries inside the command body, so ``medgan --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from medgan.errors import MedganError, MedganWarning
from medgan.version import __version__

# OSErrors that say something about the user's machine (a full disk, a read-only folder, a file where
# a folder should be), not about medgan: one line and exit 2, like a MedganError.
_ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
)
_ENVIRONMENT_ERRNOS |= {errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EMFILE}


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Print each :class:`MedganWarning` as one line, ``warning: <message>``, on stderr (every time)."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, *args: Any,
             **kwargs: Any) -> None:
        if issubclass(category, MedganWarning):
            typer.echo(f"warning: {message}", err=True)
        else:
            default_show(message, category, filename, lineno, *args, **kwargs)

    with warnings.catch_warnings():
        default_show = warnings.showwarning
        warnings.simplefilter("always", MedganWarning)
        warnings.showwarning = show
        yield


class _MedganGroup(TyperGroup):
    """Click group that turns :class:`MedganError` (and an OSError of the machine: full disk, read-only
    folder) into a one-line message and exit code 2, and SIGINT / SIGTERM into one line and exit 130 / 143."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        from medgan.utils import stop_on_signals

        try:
            with stop_on_signals(), _warnings_as_lines():
                return super().invoke(ctx)
        except MedganError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            name = signal.Signals(signum).name
            typer.echo(f"interrupted ({name}): stopped; temporary output was removed", err=True)
            raise typer.Exit(128 + signum) from None
        except OSError as exc:
            if exc.errno not in _ENVIRONMENT_ERRNOS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_MedganGroup,
    name="medgan",
    help="Augment scarce medical imaging data with GANs, and measure honestly whether it helps.\n\n"
    "Example: medgan data fetch breastmnist && medgan benchmark --quick",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medgan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """medgan: GAN augmentation for medical imaging, with an honest benchmark."""


def _register() -> None:
    # Each module adds its own command(s) to ``app``; imports are light (no torch at import time).
    from medgan.cli import augment, benchmark, data, evaluate, preprocess, select, train, translate

    app.add_typer(data.app, name="data")
    for module in (preprocess, train, augment, translate, evaluate, select, benchmark):
        module.register(app)
    from medgan.cli import run

    run.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
