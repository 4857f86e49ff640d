"""The one exception type that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

from pathlib import Path


class MedganError(Exception):
    """A problem with the user's input: a bad file, option or config.

    The CLI prints ``error: <message>`` on one line and exits with code 2, without a traceback.
    Raise it with a message that names the file (if any) and the problem.

    Args:
        message: what went wrong, in one line.
        path: the file or folder concerned; prepended to the message when given.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        text = f"{path}: {message}" if path is not None else message
        super().__init__(text)
