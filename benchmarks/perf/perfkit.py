"""What the performance scripts share: the machine's description, quiet-machine gating, CPU
accounting, stand-in datasets, and the results they write.

Every script in ``benchmarks/perf/`` writes its full record to ``benchmarks/results/perf/<name>.json``
and appends one row per figure to ``benchmarks/results/perf.md`` (date, machine, torch version,
threads, figure, value, command), so the table keeps the history of every measurement.

Timings on a 2-core machine mean something only when nothing else runs: with 2 torch threads on 2
cores, one busy neighbour makes OpenMP threads wait on each other and can slow a run several-fold.
:func:`wait_for_quiet` waits for a quiet machine and :class:`CpuMeter` records how much CPU other
processes took during a measurement, so a disturbed figure is labelled as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
PERF_MD = RESULTS / "perf.md"

_HEADER = """# Performance figures

Appended by the scripts in `benchmarks/perf/` (one row per figure; full records in
`benchmarks/results/perf/*.json`). "quiet" says whether other processes stayed below 0.3 cores
while the figure was measured. Re-run a script to add rows; older rows are history, not errors.

| date (UTC) | machine | torch | threads | figure | value | quiet | command |
|---|---|---|---|---|---|---|---|
"""


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or whatever platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(threads: int) -> dict[str, Any]:
    """The facts a reader needs to compare a figure with their own machine."""
    import torch

    return {"platform": platform.platform(), "processor": cpu_name(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": threads,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def command_line(script: str, argv: list[str] | None) -> str:
    """How to reproduce the run: ``python benchmarks/perf/<script> <args>``."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(shlex.quote(a) for a in ["python", f"benchmarks/perf/{script}", *args])


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Section. CPU accounting and quiet-machine gating.


def _machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its finished children (torchrun workers, subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class CpuMeter:
    """Wall time, and CPU seconds used by this process (and its children) and by everything else."""

    def __init__(self) -> None:
        self.t0, self.busy0, self.ours0 = time.perf_counter(), _machine_busy_s(), _own_cpu_s()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        ours = _own_cpu_s() - self.ours0
        others = max(_machine_busy_s() - self.busy0 - ours, 0.0)
        return {"wall_s": round(wall, 3), "own_cpu_s": round(ours, 2), "others_cpu_s": round(others, 2),
                "others_cores": round(others / max(wall, 1e-9), 2)}


def wait_for_quiet(max_load: float = 1.5, max_others: float = 0.3, wait_s: float = 900) -> tuple[bool, float, float]:
    """Wait until the 1-minute load average is below ``max_load`` and, over 5 s, other processes
    use fewer than ``max_others`` cores; return (quiet, load, others' cores)."""
    deadline = time.monotonic() + wait_s
    while True:
        meter = CpuMeter()
        time.sleep(5.0)
        others = meter.stop()["others_cores"]
        load = os.getloadavg()[0]
        if load < max_load and others < max_others:
            return True, load, others
        if time.monotonic() >= deadline:
            return False, load, others
        print(f"load average {load:.2f} (limit {max_load}), other processes {others:.2f} cores "
              f"(limit {max_others}); waiting for a quieter machine ...", flush=True)
        time.sleep(min(25.0, max(deadline - time.monotonic(), 0.0)))


# Section. Command lines.


def settings_parser(doc: str | None, settings: dict[str, Any], *, default: str, rounds: int,
                    threads: int) -> argparse.ArgumentParser:
    """The options every settings-based script has: ``--settings``, ``--rounds``, ``--threads``, ``--wait``
    and ``--no-record``; the script adds its own."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--settings", default=default, help="comma-separated: " + ", ".join(settings))
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--threads", type=int, default=threads)
    ap.add_argument("--wait", type=float, default=900, help="seconds to wait for a quiet machine, at most")
    ap.add_argument("--no-record", action="store_true", help="print only; write nothing into benchmarks/results")
    return ap


def chosen_settings(ap: argparse.ArgumentParser, text: str, settings: dict[str, Any]) -> list[str]:
    """The names in ``--settings`` (exits with a usage error on an unknown one)."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(names) - set(settings))
    if unknown:
        ap.error(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(settings)}")
    return names


# Section. Data.


def real_npz(name: str) -> Path | None:
    """A MedMNIST file from MEDGAN_MIRROR or ../shared/data/medmnist, if present."""
    for folder in [*os.environ.get("MEDGAN_MIRROR", "").split(os.pathsep), str(REPO.parent / "shared/data/medmnist")]:
        if folder and Path(folder, f"{name}.npz").is_file():
            return Path(folder, f"{name}.npz")
    return None


def stand_in(root: Path, size: int, spatial_dims: int, n: int = 64, num_classes: int = 2) -> Path:
    """A random prepared dataset of ``n`` grey images (or volumes) of ``size``: speed does not
    depend on the pixels, and this covers sizes no real file has (128², 32³)."""
    from medgan.data.dataset import DatasetInfo, save_prepared

    rng = np.random.default_rng(0)
    images, labels = {}, {}
    for split, count in (("train", n), ("val", max(n // 4, num_classes)), ("test", max(n // 4, num_classes))):
        images[split] = rng.integers(0, 256, (count, *(size,) * spatial_dims), dtype=np.uint8)
        labels[split] = np.arange(count) % num_classes
    info = DatasetInfo(name=f"standin{spatial_dims}d_{size}", class_names=[f"class{k}" for k in range(num_classes)],
                       channels=1, spatial_dims=spatial_dims, size=[size] * spatial_dims, source="random stand-in",
                       sha256="")
    out = root / f"standin{spatial_dims}d_{size}"
    save_prepared(out, images, labels, info)
    return out


# Section. Results.


def record(name: str, result: dict[str, Any], rows: list[tuple[str, str]], *, threads: int, quiet: bool,
           command: str) -> Path:
    """Write ``results/perf/<name>.json`` and append ``rows`` (figure, value) to ``results/perf.md``."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    info = machine(threads)
    full = {**result, "date_utc": stamp, "machine": info, "quiet": quiet, "command": command}
    path = RESULTS / "perf" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(full, indent=2) + "\n")
    if not PERF_MD.is_file():
        PERF_MD.write_text(_HEADER)
    where = f"{info['cpu_count']} CPU ({info['processor']})" + (f", {info['cuda']}" if info["cuda"] else "")
    with PERF_MD.open("a") as f:
        for figure, value in rows:
            f.write(f"| {stamp} | {where} | {info['torch']} | {threads} | {figure} | {value} | "
                    f"{'yes' if quiet else 'no'} | `{command}` |\n")
    return path
