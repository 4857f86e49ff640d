"""Synthetic DICOM against the reference tools (#15): dicom3tools' ``dciodvfy`` finds no error in any
exported file (2D grey, 2D RGB, 3D), and DCMTK's ``dcmdump`` and ``dcm2pnm`` read every one.

Each test skips cleanly where the tool is not installed (``apt-get install dicom3tools dcmtk``;
``.ci/run`` installs them when it runs as root).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.synth.helpers import _images, _write

CASES = {
    "2d-grey": ((2, 1, 6, 5), [0.5, 0.25]),
    "2d-rgb": ((1, 3, 6, 5), None),
    "3d": ((2, 1, 4, 6, 5), [2.5, 0.5, 0.75]),
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install dicom3tools dcmtk)")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("dicom")
    out = {}
    for case, (shape, spacing) in CASES.items():
        files = _write(root / case, _images(shape), [0, 1][: shape[0]], "dicom", spacing=spacing)
        out[case] = [root / case / f for f in files]
    return out


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", CASES)
def test_dciodvfy_finds_no_error(exported: dict[str, list[Path]], case: str) -> None:
    dciodvfy = _tool("dciodvfy")
    for path in exported[case]:
        result = _run(dciodvfy, path)
        report = result.stdout + result.stderr
        errors = [ln for ln in report.splitlines() if ln.startswith("Error")]
        assert errors == [], f"{path.name}:\n{report}"
        # It recognised the IOD medgan means, and nothing is outside it (no "Standard Extended" class).
        iod = "MultiframeGrayscaleByteSCImage" if case == "3d" else "SCImage"
        assert iod in report.split(), report
        assert "not present in standard DICOM IOD" not in report, report


@pytest.mark.parametrize("case", CASES)
def test_dcmtk_reads_every_file(exported: dict[str, list[Path]], case: str, tmp_path: Path) -> None:
    dcmdump, dcm2pnm = _tool("dcmdump"), _tool("dcm2pnm")
    for path in exported[case]:
        dump = _run(dcmdump, path)
        assert dump.returncode == 0 and "E: " not in dump.stderr, dump.stderr
        frames = 4 if case == "3d" else 1
        assert ("NumberOfFrames" in dump.stdout) == (case == "3d")
        prefix = tmp_path / path.stem
        conv = _run(dcm2pnm, "--all-frames", path, prefix)
        assert conv.returncode == 0, conv.stderr
        written = sorted(tmp_path.glob(f"{path.stem}*"))
        assert len(written) == frames, written
        # dcm2pnm wrote the frames at the image's size (PGM for grey, PPM for colour).
        header = written[0].read_bytes()[:20].split()
        assert header[0] == (b"P6" if case == "2d-rgb" else b"P5")
        assert (int(header[1]), int(header[2])) == (5, 6)
        for f in written:
            f.unlink()
