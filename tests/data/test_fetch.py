"""fetch(): cache -> MEDGAN_MIRROR -> download, MD5 always checked, nothing left behind on failure.

The "official server" is a ThreadingHTTPServer on 127.0.0.1 started by the test; it serves a small
npz in the MedMNIST layout registered as ``toymnist``, and counts the requests it gets.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medgan.cli.main import app
from medgan.data import registry
from medgan.data.dataset import load_dataset
from medgan.data.fetch import cache_dir, fetch, fetch_with_source, mirror_dirs
from medgan.data.registry import MedMNISTSpec
from medgan.errors import MedganError


def _toy_npz_bytes() -> bytes:
    """A tiny MedMNIST-layout npz: 28×28 grey, 2 classes, 6 / 2 / 2 images."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8).reshape(-1, 1)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


TOY = _toy_npz_bytes()
TOY_MD5 = hashlib.md5(TOY).hexdigest()


@dataclass
class Server:
    """The test's HTTP server: ``routes[path] = (mode, body)``; ``requests`` logs every GET."""

    url: str
    routes: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        state: Server = self.server.state  # type: ignore[attr-defined]
        state.requests.append(self.path)
        state.user_agents.append(self.headers.get("User-Agent", ""))
        mode, body = state.routes.get(self.path.split("?")[0], ("missing", b""))
        if mode == "missing":
            self.send_error(404, "Not Found")
            return
        if mode == "slow":
            # The client has given up by the time this answers; nothing to send.
            time.sleep(1.0)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncate":
            # Promise the whole body, send a third of it, and hang up.
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = Server(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    state.routes["/toymnist.npz"] = ("ok", TOY)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: Server) -> Server:
    """Register ``toymnist`` (MD5 of TOY at size 28), a fresh cache, no mirror, base URL = server."""
    spec = MedMNISTSpec("toymnist", "test images", ("a", "b"), 1, 2, {28: TOY_MD5},
                        {"train": 6, "val": 2, "test": 2}, "binary-class", source="this test")
    monkeypatch.setitem(registry.REGISTRY, "toymnist", spec)
    monkeypatch.setenv("MEDGAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDGAN_MIRROR", raising=False)
    monkeypatch.setenv("MEDGAN_BASE_URL", server.url)
    return server


def _cache_listing() -> list[str]:
    folder = cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# Download.


def test_download_lands_in_the_cache_with_the_right_md5(toy: Server, tmp_path: Path) -> None:
    res = fetch_with_source("toymnist", progress=False)
    assert res.source == "download"
    assert res.path == tmp_path / "home" / "medmnist" / "toymnist.npz"
    assert res.path.read_bytes() == TOY and res.md5 == TOY_MD5
    assert toy.requests == ["/toymnist.npz"]
    assert toy.user_agents[0].startswith("medgan/")
    assert _cache_listing() == ["toymnist.npz"]
    # A second call is a cache hit: no new request.
    assert fetch("toymnist", progress=False) == res.path
    assert len(toy.requests) == 1


def test_download_with_progress_bar(toy: Server, capsys: pytest.CaptureFixture[str]) -> None:
    path = fetch("toymnist", progress=True)
    assert path.read_bytes() == TOY
    assert capsys.readouterr().out == ""  # the bar goes to stderr only


def test_url_argument_overrides_the_source(toy: Server) -> None:
    toy.routes["/elsewhere/file.bin"] = ("ok", TOY)
    res = fetch_with_source("toymnist", progress=False, url=f"{toy.url}/elsewhere/file.bin")
    assert res.source == "download" and res.path.name == "toymnist.npz"
    assert toy.requests == ["/elsewhere/file.bin"]


def test_downloaded_file_loads_as_a_dataset(toy: Server) -> None:
    ds = load_dataset("toymnist")
    assert ds.info.class_names == ["a", "b"]
    assert ds.info.source == "medmnist:toymnist"
    assert ds.images["train"].shape == (6, 28, 28)
    assert ds.info.counts["train"] == [3, 3]


def test_bad_md5_download_is_deleted(toy: Server) -> None:
    toy.routes["/toymnist.npz"] = ("ok", TOY[:-1] + bytes([TOY[-1] ^ 0xFF]))
    wrong = hashlib.md5(TOY[:-1] + bytes([TOY[-1] ^ 0xFF])).hexdigest()
    with pytest.raises(MedganError) as err:
        fetch("toymnist", progress=False)
    msg = str(err.value)
    assert f"expected {TOY_MD5}, got {wrong}" in msg
    assert "MD5 mismatch" in msg and "deleted" in msg
    assert _cache_listing() == []


def test_bad_md5_via_cli_exits_2(toy: Server) -> None:
    toy.routes["/toymnist.npz"] = ("ok", b"not the file")
    result = CliRunner().invoke(app, ["data", "fetch", "toymnist", "--no-progress"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: MD5 mismatch for toymnist.npz")
    assert f"expected {TOY_MD5}" in result.stderr and "deleted" in result.stderr
    assert "Traceback" not in result.output
    assert _cache_listing() == []


def test_interrupted_download_leaves_nothing_behind(toy: Server) -> None:
    toy.routes["/toymnist.npz"] = ("truncate", TOY)
    with pytest.raises(MedganError) as err:
        fetch("toymnist", progress=False)
    msg = str(err.value)
    assert "download failed" in msg
    assert f"connection closed after {len(TOY) // 3} of {len(TOY)} bytes" in msg
    assert f"{toy.url}/toymnist.npz" in msg and "MEDGAN_MIRROR" in msg
    assert _cache_listing() == []


def test_http_error_names_url_and_mirror(toy: Server) -> None:
    with pytest.raises(MedganError, match=r"HTTP 404 .*nothing-here/toymnist.npz.*MEDGAN_MIRROR"):
        fetch("toymnist", progress=False, url=f"{toy.url}/nothing-here/toymnist.npz")
    assert _cache_listing() == []


def test_unreachable_server(toy: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MEDGAN_BASE_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(MedganError) as err:
        fetch("toymnist", progress=False)
    msg = str(err.value)
    assert msg.startswith("download failed:")
    assert f"URL http://127.0.0.1:{port}/toymnist.npz" in msg
    assert "point MEDGAN_MIRROR at it" in msg
    assert _cache_listing() == []


def test_timeout(toy: Server) -> None:
    toy.routes["/toymnist.npz"] = ("slow", TOY)
    with pytest.raises(MedganError, match=r"no answer within 0.2 s"):
        fetch("toymnist", progress=False, timeout=0.2)
    assert _cache_listing() == []


# Cache and mirror.


def test_cache_hit_makes_no_request(toy: Server) -> None:
    cache_dir().mkdir(parents=True)
    (cache_dir() / "toymnist.npz").write_bytes(TOY)
    res = fetch_with_source("toymnist", progress=False)
    assert res.source == "cache" and res.path == cache_dir() / "toymnist.npz"
    assert toy.requests == []


def test_corrupt_cache_file_is_deleted(toy: Server) -> None:
    cache_dir().mkdir(parents=True)
    (cache_dir() / "toymnist.npz").write_bytes(b"garbage")
    with pytest.raises(MedganError, match=rf"MD5 mismatch in the cache: expected {TOY_MD5}, got .*deleted"):
        fetch("toymnist", progress=False)
    assert _cache_listing() == []
    assert toy.requests == []
    # The next call downloads a fresh copy.
    assert fetch_with_source("toymnist", progress=False).source == "download"


def test_mirror_hit_is_used_in_place_without_a_request(toy: Server, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    empty, mirror = tmp_path / "empty", tmp_path / "mirror"
    empty.mkdir()
    mirror.mkdir()
    (mirror / "toymnist.npz").write_bytes(TOY)
    monkeypatch.setenv("MEDGAN_MIRROR", f"{empty}{os.pathsep}{mirror}")
    assert mirror_dirs() == [empty, mirror]
    res = fetch_with_source("toymnist", progress=False)
    assert res.source == "mirror" and res.path == mirror / "toymnist.npz"
    assert toy.requests == []
    assert _cache_listing() == []  # used in place, not copied


def test_mirror_may_be_another_medgan_home(toy: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other_home"
    (other / "medmnist").mkdir(parents=True)
    (other / "medmnist" / "toymnist.npz").write_bytes(TOY)
    monkeypatch.setenv("MEDGAN_MIRROR", str(other))
    assert fetch("toymnist", progress=False) == other / "medmnist" / "toymnist.npz"
    assert toy.requests == []


def test_bad_mirror_file_is_refused_and_kept(toy: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    bad = mirror / "toymnist.npz"
    bad.write_bytes(b"stale copy")
    monkeypatch.setenv("MEDGAN_MIRROR", str(mirror))
    with pytest.raises(MedganError) as err:
        fetch("toymnist", progress=False)
    msg = str(err.value)
    assert msg.startswith(f"{bad}: MD5 mismatch in MEDGAN_MIRROR: expected {TOY_MD5}, got ")
    assert "left in place" in msg
    assert bad.read_bytes() == b"stale copy"
    assert toy.requests == []


def test_cache_is_searched_before_the_mirror(toy: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "toymnist.npz").write_bytes(TOY)
    cache_dir().mkdir(parents=True)
    (cache_dir() / "toymnist.npz").write_bytes(TOY)
    monkeypatch.setenv("MEDGAN_MIRROR", str(mirror))
    assert fetch_with_source("toymnist", progress=False).source == "cache"


def test_real_mirror_file_verifies(medmnist_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDGAN_MIRROR", str(medmnist_dir))
    res = fetch_with_source("breastmnist", 64, progress=False)
    assert res.source == "mirror" and res.path == medmnist_dir / "breastmnist_64.npz"
    assert res.md5 == "742edef2a1fd1524b2efff4bd7ba9364"


# Arguments and locations.


def test_default_home_is_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEDGAN_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "medgan" / "medmnist"


def test_unknown_size_lists_available_sizes(toy: Server) -> None:
    with pytest.raises(MedganError, match=r"toymnist has no size 64 \(available: 28\)"):
        fetch("toymnist", 64)
    with pytest.raises(MedganError, match=r"breastmnist has no size 32 \(available: 28, 64, 128, 224\)"):
        fetch("breastmnist", 32)
    assert toy.requests == []


def test_unknown_name_lists_known_ones(toy: Server) -> None:
    with pytest.raises(MedganError, match=r"unknown dataset 'kneemnist' \(known: .*breastmnist.*toymnist"):
        fetch("kneemnist")


def test_unwritable_cache_is_a_clear_error(toy: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("MEDGAN_HOME", str(blocker))
    with pytest.raises(MedganError, match=r"cannot write the cache .*set MEDGAN_HOME"):
        fetch("toymnist", progress=False)
