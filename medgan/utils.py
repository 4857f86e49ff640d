"""What every writer shares: atomic files and folders, hashes, and the guards around an output.

The guards are the one owner of each rule of docs/reliability.md:

* :func:`check_not_input`: an output never replaces, holds (or lies inside a whole-folder) input;
* :func:`check_out_folder`: ``--out`` can be a folder here (not a file, not under a file, writable);
* :func:`check_free_space` / :func:`check_memory`: an estimate fits, with a margin, before any work;
* :func:`run_lock`: one run at a time per output (a ``.NAME.lock`` sibling holding pid and host);
* :func:`stop_on_signals` / :func:`check_stop`: SIGINT and SIGTERM unwind (temporary output is
  removed) and always stop the run, even when a library swallowed the exception;
* :func:`atomic_dir` / :func:`atomic_file`: all or nothing, a full disk included, and the leftovers
  of a killed run are recovered by the next run into the same folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from medgan.errors import Interrupted, MedganError

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

__all__ = [
    "atomic_dir",
    "atomic_file",
    "check_free_space",
    "check_memory",
    "check_not_input",
    "check_out_folder",
    "check_stop",
    "describe_holder",
    "file_md5",
    "file_sha256",
    "format_bytes",
    "lock_holder",
    "remove_leftover_files",
    "run_lock",
    "stop_on_signals",
    "stop_workers",
    "write_text_atomic",
]

# errno values that mean "the disk (or the quota) is full".
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_hash(path: str | Path, algo: str, chunk: int = 1 << 20) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    return _file_hash(path, "sha256")


def file_md5(path: str | Path) -> str:
    """Hex MD5 of a file (MedMNIST publishes MD5s)."""
    return _file_hash(path, "md5")


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Example:
        >>> with atomic_file("out.npz") as tmp:
        ...     np.savez(tmp, x=x)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise _disk_full(exc, path, existed=path.exists()) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _disk_full(exc: OSError, out: Path, existed: bool) -> MedganError:
    """The one wording of a full disk met while writing ``out``."""
    kept = "; the previous content is unchanged" if existed else ""
    return MedganError(
        f"could not write: {exc.strerror}; the partial output was removed{kept}; "
        "free some space or choose another --out",
        out,
    )


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def _check_replaceable(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise MedganError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MedganError("folder exists and is not empty (pass --overwrite to replace it)", out)


def _leftover_pattern(out: Path) -> re.Pattern[str]:
    # tempfile names: the prefix, 8 characters of [a-z0-9_], the suffix (see atomic_dir below).
    return re.compile(rf"^\.{re.escape(out.name)}\.[a-z0-9_]{{8}}\.(tmp|old)$")


def _recover_leftovers(out: Path) -> None:
    """Put back, or remove, what a killed (SIGKILL, power cut) :func:`atomic_dir` into ``out`` left.

    Called with the lock held, so no live run owns them. A ``.old`` sibling with no ``out`` is
    the previous content of a run killed in the middle of its swap: it is moved back. Every other
    ``.NAME.XXXXXXXX.tmp`` / ``.old`` sibling is a half-written or superseded folder: removed.
    Each action is reported on stderr in one line.
    """
    pattern = _leftover_pattern(out)
    found = sorted(
        (p for p in out.parent.iterdir() if pattern.match(p.name)), key=lambda p: p.stat().st_mtime
    )
    olds = [p for p in found if p.name.endswith(".old")]
    if olds and not out.exists():
        os.replace(olds[-1], out)
        found.remove(olds[-1])
        _note(
            f"{out}: restored the previous content from {olds[-1].name} (a run was killed while replacing it)"
        )
    for p in found:
        shutil.rmtree(p, ignore_errors=True)
        _note(f"{out}: removed {p.name}, left by a run that was killed")


_LEFTOVER_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)*$")  # atomic_file's temporary names


def remove_leftover_files(folder: str | Path) -> list[Path]:
    """Remove the temporary files that killed :func:`atomic_file` writes left anywhere under ``folder``.

    Only for a folder written in place that this run holds as a whole (:func:`run_lock`): a training
    run folder, a benchmark folder with no array job running. Each removal is a ``note:`` line.

    Returns:
        The files removed.
    """
    removed = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [
            d for d in dirs if not d.startswith(".")
        ]  # another output's temporary folder: its own run's
        for name in files:
            if _LEFTOVER_FILE.match(name):
                path = Path(root) / name
                path.unlink(missing_ok=True)
                removed.append(path)
                _note(f"{path.parent}: removed {name}, left by a run that was killed")
    return removed


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


@contextmanager
def atomic_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and move it onto ``out`` only when the block succeeds.

    An existing non-empty ``out`` is refused unless ``overwrite`` is set; then it is replaced
    only after the new content is complete, so a failure never loses what was there. While the
    block runs, :func:`run_lock` holds ``out`` (a second run into it is refused), and the leftovers
    of a killed run into ``out`` are recovered first (see :func:`_recover_leftovers`). A stop signal
    that arrived, even one that a library swallowed, prevents the swap (:func:`check_stop`).

    Raises:
        MedganError: when ``out`` exists and is not empty, and ``overwrite`` is false; when the
            parent folder cannot be written; when another run holds ``out``; when the disk fills.
    """
    out = Path(out)
    _check_replaceable(out, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MedganError(f"cannot write here ({exc.strerror})", out.parent) from None
    with run_lock(out):
        _recover_leftovers(out)
        _check_replaceable(out, overwrite)  # again: it may have changed before the lock was ours
        existed = out.exists()
        try:
            tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        except OSError as exc:
            raise MedganError(f"cannot write here ({exc.strerror})", out.parent) from None
        try:
            yield tmp
            check_stop()  # never commit an output after Ctrl-C or SIGTERM
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders; colleagues should read results
            if out.exists():
                # A unique empty sibling: renaming a folder onto an empty one is allowed.
                old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
                os.replace(out, old)
                try:
                    os.replace(tmp, out)
                except BaseException:
                    os.replace(old, out)  # put the previous content back
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise _disk_full(exc, out, existed) from None
            raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


# Section. Inputs and outputs: an output never replaces an input, and can be a folder here.


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def check_not_input(
    out: str | Path,
    inputs: Mapping[str, str | Path | None],
    folders: Mapping[str, str | Path | None] | None = None,
    option: str = "--out",
) -> None:
    """Refuse an output folder that would replace one of the command's own inputs.

    Writing ``out`` replaces (``--overwrite``) or fills everything under it, so ``out`` may neither
    be an input nor hold one; symbolic links are followed. ``folders`` are inputs taken as a whole:
    folders the command reads recursively (``preprocess SRC``: the next run would read its own
    output) or whose layout another command owns (a training run folder): ``out`` may not lie
    anywhere inside them either.

    Args:
        out: the output folder.
        inputs: ``{what: path}``, e.g. ``{"the checkpoint": ckpt, "the dataset": data}``; ``None``
            entries are skipped (an option that was not given).
        folders: ``{what: folder}``, inputs that ``out`` may not lie inside.
        option: the option's name, for the message.

    Raises:
        MedganError: naming the input and the option, e.g. ``runs/a: --out holds the checkpoint
            (runs/a/checkpoints/step_000100.pt); ...``.

    Example:
        >>> check_not_input("runs/a", {"the checkpoint": "runs/a/checkpoints/step_000100.pt"})
        Traceback (most recent call last):
        medgan.errors.MedganError: runs/a: --out holds the checkpoint ...
    """
    target = _real(out)
    for what, path in inputs.items():
        if path is None:
            continue
        p = _real(path)
        if p == target:
            raise MedganError(
                f"{option} is {what}; a command never replaces its own input: choose another {option}", out
            )
        if p.is_relative_to(target):
            raise MedganError(
                f"{option} holds {what} ({path}); writing there could delete an input: choose "
                f"another {option}",
                out,
            )
    for what, folder in (folders or {}).items():
        if folder is not None and Path(folder).is_dir() and target.is_relative_to(_real(folder)):
            raise MedganError(f"{option} must not be inside {what} ({folder}): choose another {option}", out)


def _existing_ancestor(path: Path) -> Path:
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_folder(out: str | Path, option: str = "--out") -> None:
    """Refuse an ``out`` that cannot become a folder here, before any work is done.

    Raises:
        MedganError: ``out`` is a file; one of its parents is a file; its nearest existing folder
            is read-only or not ours to write.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MedganError(f"exists and is not a folder (give {option} a folder)", out)
    anchor = _existing_ancestor(out)
    if not anchor.is_dir():
        raise MedganError(f"cannot make a folder here: {anchor} is a file", out)
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise MedganError(f"cannot write in {anchor} (read-only, or no permission)", out)


# Section. Space: an estimate must fit, with a margin, before any work starts.

SPACE_MARGIN = 0.10
"""Extra fraction of the estimate asked for, since estimates are rough."""
SPACE_RESERVE = 64 * 2**20
"""Bytes always left free on the output's file system (logs, other users)."""


def format_bytes(n: float) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units, as ``df -H`` prints them)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def check_free_space(out: str | Path, need: int, what: str = "the output") -> None:
    """Refuse when ``need`` bytes (an estimate) do not fit on ``out``'s file system.

    The file system is that of ``out``'s nearest existing folder; the estimate plus
    :data:`SPACE_MARGIN` and :data:`SPACE_RESERVE` must fit in its free space. Callers estimate
    their own output (e.g. :func:`medgan.synth.writers.estimate_bytes`); this is the one check.

    Raises:
        MedganError: with both figures, e.g. ``needs about 784.0 TB, 41.2 GB free``.
    """
    anchor = _existing_ancestor(Path(out))
    free = shutil.disk_usage(anchor).free
    if need * (1 + SPACE_MARGIN) + SPACE_RESERVE > free:
        raise MedganError(
            f"{what} needs about {format_bytes(need)}, {format_bytes(free)} free on the file system "
            f"of {anchor}; free some space, write less, or choose another --out",
            out,
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need: int, what: str, hint: str = "ask for less") -> None:
    """Refuse when ``need`` bytes (an estimate) exceed 80 % of the available memory.

    Raises:
        MedganError: with both figures, e.g. ``needs about 3.1 TB of memory, 12.0 GB available``.
    """
    avail = available_memory()
    if avail is not None and need > 0.8 * avail:
        raise MedganError(
            f"{what} needs about {format_bytes(need)} of memory, {format_bytes(avail)} available; {hint}"
        )


# Section. One run at a time per output folder.


def _lock_path(out: Path) -> Path:
    out = Path(os.path.abspath(out))
    return out.parent / f".{out.name or 'root'}.lock"


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), which tells a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def _alive(record: dict[str, object]) -> bool | None:
    """Whether the run that wrote a lock record still runs: ``None`` when it cannot be told (another host)."""
    if record.get("host") != socket.gethostname():
        return None
    pid = int(record.get("pid", 0))  # type: ignore[call-overload]
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    started = record.get("start")
    return started is None or _start_time(pid) in (None, started)


def _holder(lock: Path) -> tuple[dict[str, object], bool | None] | None:
    """The record in ``lock`` and whether its run is alive (``None``: cannot tell); ``None`` if no lock."""
    try:
        held = json.loads(lock.read_text())
        return held, _alive(held)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError):
        # Unreadable: being written right now (young), or left half-written by a kill (old).
        try:
            return {}, time.time() - lock.stat().st_mtime < 10
        except FileNotFoundError:
            return None


def lock_holder(out: str | Path) -> dict[str, object] | None:
    """The record (pid, host, since, command) of the live run that holds ``out``, or ``None``.

    A lock from another host counts as live (it cannot be checked from here).
    """
    found = _holder(_lock_path(Path(out)))
    return found[0] if found is not None and found[1] is not False else None


def describe_holder(held: dict[str, object]) -> str:
    """``'pid 1234 on node7, since 2026-12-01 10:20:00'``: a lock record in words."""
    return f"pid {held.get('pid', '?')} on {held.get('host', '?')}, since {held.get('since', '?')}"


@contextmanager
def run_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``out`` for this run: a second run into the same folder is refused while this one lives.

    The lock is the sibling file ``.NAME.lock`` (the folder itself may be swapped by
    :func:`atomic_dir` or removed by ``--overwrite``), created with ``O_CREAT | O_EXCL`` and holding
    the pid, host, start time and command. A lock whose process is gone (same host: the pid no
    longer runs, or runs a newer process) is stale and taken over with a note on stderr. A lock from
    another host cannot be checked, and is refused with its path so the user can remove it.
    Missing parent folders are made, and removed again on exit if they are still empty.

    Yields:
        The lock file's path; it is removed on exit, however the block ends.

    Raises:
        MedganError: another live run holds ``out`` (the message names its pid and host); the
            parent folder cannot be written.
    """
    out = Path(out)
    lock = _lock_path(out)
    made = []
    parent = lock.parent
    while not parent.exists() and parent != parent.parent:
        made.append(parent)
        parent = parent.parent
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start": _start_time(os.getpid()),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv)[:500],
    }
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                found = _holder(lock)
                if found is None:
                    continue  # released in between: try again
                held, alive = found
                if alive is False:
                    lock.unlink(missing_ok=True)
                    _note(f"{out}: took over a stale lock of pid {held.get('pid', '?')} (no longer running)")
                    continue
                gone = f"; if that run is gone, delete {lock}" if alive is None else ""
                raise MedganError(
                    f"another medgan run is writing here ({describe_holder(held)}); wait for it to finish "
                    f"or choose another --out{gone}",
                    out,
                ) from None
            try:
                os.write(fd, (json.dumps(record) + "\n").encode())
            finally:
                os.close(fd)
            break
        else:
            raise MedganError(f"could not take the lock {lock}; another run keeps taking it", out)
    except OSError as exc:
        _remove_empty(made)
        raise MedganError(f"cannot write here ({exc.strerror})", lock.parent) from None
    except BaseException:
        _remove_empty(made)
        raise
    try:
        yield lock
    finally:
        try:
            if json.loads(lock.read_text()).get("pid") == os.getpid():
                lock.unlink()
        except (OSError, ValueError, AttributeError):
            pass
        _remove_empty(made)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this run made (deepest first), as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


# Section. Signals: SIGINT and SIGTERM unwind the stack and always stop the run.

_stopped: int | None = None


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    global _stopped
    _stopped = signum
    raise Interrupted(signum)


def check_stop() -> None:
    """Raise :class:`~medgan.errors.Interrupted` if a stop signal arrived under :func:`stop_on_signals`.

    The handler raises at once; this catches the case where the exception was raised inside a
    destructor or callback that swallowed it. Long loops call it after each item.
    """
    if _stopped is not None:
        raise Interrupted(_stopped)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`~medgan.errors.Interrupted` (and are remembered).

    ``finally`` blocks run on the way out, so :func:`atomic_dir` removes its temporary folder for
    SIGTERM as for Ctrl-C, and :func:`check_stop` re-raises a signal that some library code
    swallowed (its "Exception ignored" report is silenced: the run stops anyway). The previous
    handlers come back on exit. Outside the main thread (where Python cannot set handlers) it does
    nothing. The CLI runs every command inside it.
    """
    global _stopped
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stopped = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if _stopped is not None and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # check_stop() raises it again where it can stop the run
        previous_hook(unraisable)

    for sig in previous:
        signal.signal(sig, _raise_stop)
    sys.unraisablehook = hook
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_hook
        _stopped = None


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Send SIGTERM to the worker processes of a ``concurrent.futures.ProcessPoolExecutor``.

    A signal that reached only this process (``kill PID``, a scheduler's SIGTERM) never reaches the
    workers, and the pool's shutdown would wait for their work: a sweep GAN can take an hour. Call it
    where the pool's block stops on an exception; a GAN worker then checkpoints and stops, as a
    training run does on SIGTERM. (The pool keeps its processes in ``_processes``; Python 3.14's
    ``terminate_workers`` does the same.)
    """
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with suppress(OSError, ValueError, AttributeError):  # already gone or closed
            proc.terminate()

