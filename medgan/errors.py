"""The exceptions the CLI maps to exit codes: :class:`MedganError` (one line, exit 2) and
:class:`Interrupted` (a signal: one line, exit 128 + the signal number)."""

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


class MedganWarning(UserWarning):
    """Something the user should know that does not stop the command (few images per class, one class).

    Library code issues it with :func:`warnings.warn`; the CLI prints ``warning: <message>`` on one
    line of stderr, every time.
    """


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the command (see :func:`medgan.utils.stop_on_signals`).

    A :class:`KeyboardInterrupt`, so ``except Exception`` in a library does not swallow it and every
    ``finally`` on the way out runs (temporary output is removed). The CLI prints one line and exits
    ``128 + signum``: 130 for Ctrl-C, 143 for SIGTERM (``timeout``, SLURM).

    Args:
        signum: the signal that stopped the command.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = int(signum)
        self.signame = signal.Signals(self.signum).name
        super().__init__(self.signame)
