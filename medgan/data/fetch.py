"""Find or download an official MedMNIST file, always checking its MD5.

Search order for ``<flag>.npz`` / ``<flag>_<size>.npz``:

1. the cache, ``$MEDGAN_HOME/medmnist/`` (``MEDGAN_HOME`` defaults to ``~/.cache/medgan``);
2. each folder of ``MEDGAN_MIRROR`` (``os.pathsep``-separated), either directly in the folder or in
   its ``medmnist/`` subfolder (so another machine's ``MEDGAN_HOME`` works as a mirror). A mirror
   file is used in place, never copied: mirrors are typically shared, read-only folders and the
   64³ files are large;
3. the official URL from the registry (or ``$MEDGAN_BASE_URL/<file>``, or the ``url`` argument),
   downloaded into the cache through a temporary file that is renamed only once the MD5 matches,
   so an interrupted or corrupt download leaves nothing behind.

The MD5 published by MedMNIST is checked on every call, wherever the file was found. A cached file
that fails is deleted; a mirror file that fails is left alone (it is the user's) and refused.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medgan.data.registry import MedMNISTSpec, get_spec
from medgan.errors import MedganError
from medgan.utils import atomic_file, file_md5

__all__ = ["FetchResult", "cache_dir", "fetch", "fetch_with_source", "medgan_home", "mirror_dirs"]

Source = Literal["cache", "mirror", "download"]

TIMEOUT_S = 60.0
CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchResult:
    """Where a verified file is and how it was found.

    Args:
        path: the verified npz.
        source: ``"cache"``, ``"mirror"`` or ``"download"`` (now in the cache).
        md5: its MD5, equal to the registry's.
    """

    path: Path
    source: Source
    md5: str


def medgan_home() -> Path:
    """``$MEDGAN_HOME``, default ``~/.cache/medgan``."""
    return Path(os.environ.get("MEDGAN_HOME") or Path.home() / ".cache" / "medgan").expanduser()


def cache_dir() -> Path:
    """The folder that holds downloaded MedMNIST files: ``$MEDGAN_HOME/medmnist``."""
    return medgan_home() / "medmnist"


def mirror_dirs() -> list[Path]:
    """The folders listed in ``MEDGAN_MIRROR`` (``os.pathsep``-separated), in order."""
    raw = os.environ.get("MEDGAN_MIRROR", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def fetch(name: str, size: int = 28, *, progress: bool = True, url: str | None = None,
          timeout: float = TIMEOUT_S) -> Path:
    """Return the path of a verified official MedMNIST file, downloading it if needed.

    Args:
        name: the registry flag (``"breastmnist"``).
        size: 28 (the original files) or a MedMNIST+ size the dataset has (64, 128, 224).
        progress: show a progress bar on stderr while downloading.
        url: download from this exact URL instead of the official one (the MD5 is still the
            registry's). ``MEDGAN_BASE_URL`` does the same for a folder: ``$MEDGAN_BASE_URL/<file>``.
        timeout: seconds without an answer from the server before giving up.

    Raises:
        MedganError: for an unknown name or size, an MD5 mismatch, or a failed download.

    Example:
        >>> fetch("breastmnist", size=64)
        PosixPath('/home/me/.cache/medgan/medmnist/breastmnist_64.npz')
    """
    return fetch_with_source(name, size, progress=progress, url=url, timeout=timeout).path


def fetch_with_source(name: str, size: int = 28, *, progress: bool = True, url: str | None = None,
                      timeout: float = TIMEOUT_S) -> FetchResult:
    """Like :func:`fetch`, and also say whether the file came from the cache, a mirror or the web."""
    spec = get_spec(name)
    spec.check_size(size)
    filename = spec.filename(size)
    expected = spec.md5[size]

    # Cache: files here were verified when they arrived, so a mismatch means damage; remove it.
    cached = cache_dir() / filename
    if cached.is_file():
        got = file_md5(cached)
        if got != expected:
            cached.unlink(missing_ok=True)
            raise MedganError(
                f"MD5 mismatch in the cache: expected {expected}, got {got}; "
                "the damaged file was deleted, run the command again to fetch a fresh copy",
                cached,
            )
        return FetchResult(cached, "cache", got)

    # Mirrors: the user's folders; refuse a bad file but never touch it.
    for folder in mirror_dirs():
        for cand in (folder / filename, folder / "medmnist" / filename):
            if cand.is_file():
                got = file_md5(cand)
                if got != expected:
                    raise MedganError(
                        f"MD5 mismatch in MEDGAN_MIRROR: expected {expected}, got {got}; "
                        "refusing it (left in place): replace it with the official file or remove it",
                        cand,
                    )
                return FetchResult(cand, "mirror", got)

    # Download.
    source_url = url or _base_url_for(spec, size)
    got = _download(source_url, cached, expected, progress=progress, timeout=timeout)
    return FetchResult(cached, "download", got)


def _base_url_for(spec: MedMNISTSpec, size: int) -> str:
    base = os.environ.get("MEDGAN_BASE_URL", "").strip()
    if base:
        return f"{base.rstrip('/')}/{spec.filename(size)}"
    return spec.url(size)


def _network_error(url: str, why: str) -> MedganError:
    return MedganError(
        f"download failed: {why}; URL {url}. Without network access, put the official files in a "
        "folder and point MEDGAN_MIRROR at it"
    )


def _download(url: str, dest: Path, expected_md5: str, *, progress: bool, timeout: float) -> str:
    """Stream ``url`` into ``dest`` through a temporary file; keep it only if the MD5 matches."""
    md5 = hashlib.md5()
    try:
        with atomic_file(dest) as tmp, open(tmp, "wb") as out:
            resp = _open(url, timeout)
            total = _content_length(resp)
            received = 0
            with resp, _progress_bar(progress, dest.name, total) as advance:
                while block := _read(resp, url, timeout):
                    out.write(block)
                    md5.update(block)
                    received += len(block)
                    advance(len(block))
            if total is not None and received < total:
                raise _network_error(url, f"connection closed after {received} of {total} bytes")
            got = md5.hexdigest()
            if got != expected_md5:
                raise MedganError(
                    f"MD5 mismatch for {dest.name} downloaded from {url}: expected {expected_md5}, got {got}; "
                    "the downloaded file was deleted"
                )
    except OSError as exc:
        # Network errors are already MedganErrors here: this is the cache folder failing.
        raise MedganError(f"cannot write the cache ({exc.strerror or exc}); set MEDGAN_HOME", dest.parent) from None
    return got


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    from medgan.version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"medgan/{__version__} (Python urllib)"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        raise _network_error(url, f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise _network_error(url, f"no answer within {timeout:g} s") from None
        raise _network_error(url, str(getattr(reason, "strerror", None) or reason)) from None
    except TimeoutError:
        raise _network_error(url, f"no answer within {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise _network_error(url, f"{exc.__class__.__name__}: {exc}") from None


def _read(resp: http.client.HTTPResponse, url: str, timeout: float) -> bytes:
    try:
        return resp.read(CHUNK)
    except TimeoutError:
        raise _network_error(url, f"no data for {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise _network_error(url, f"connection broken ({exc.__class__.__name__})") from None


def _content_length(resp: http.client.HTTPResponse) -> int | None:
    value = resp.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@contextmanager
def _progress_bar(enabled: bool, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A Rich download bar on stderr (or nothing); yields ``advance(n_bytes)``."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"downloading {label}", total=total)
        yield lambda n: bar.advance(task, n)
