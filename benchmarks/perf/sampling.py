"""Figure 4: how fast `medgan augment` writes 5000 BreastMNIST-sized samples, as PNG and as npz.

The generator has the model size of ``configs/train/cgan_breastmnist.yaml`` at 28×28 (grey, two
classes). Its weights do not change the speed, so unless ``--checkpoint`` is given the script
trains it for two steps only, on the real BreastMNIST file when it is present (MEDGAN_MIRROR or
../shared/data/medmnist) and on a random stand-in of the same shape otherwise. Each measurement runs
the real command through Typer's CliRunner (``medgan augment --class malignant --n 5000 --format F``),
so it times exactly what a user runs: checkpoint verification and loading, sampling, writing, the
manifest and the provenance file.

Timings are only meaningful on a quiet machine. Before every run the script waits (up to
``--wait`` seconds) until the 1-minute load average is below ``--max-load`` and, over 5 s, other
processes use less than ``--max-others`` cores; during every run it records the CPU time that
other processes took (from /proc/stat). A run is *undisturbed* when others used less than
``--max-others`` cores during it, and the figure reported is the best undisturbed run. If the
machine never gets quiet it measures anyway and says so.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/perf/sampling.py [--checkpoint RUN] [--n 5000] [--repeats 5]

Writes benchmarks/results/augment_speed.{json,md} and rows of benchmarks/results/perf.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit

REPO = perfkit.REPO
CONFIG = REPO / "configs/train/cgan_breastmnist.yaml"
RESULTS = REPO / "benchmarks/results"


def _stand_in(root: Path) -> Path:
    """A random prepared dataset shaped like BreastMNIST (546 / 78 / 156 images of 28×28, 2 classes)."""
    from medgan.data.dataset import DatasetInfo, save_prepared

    rng = np.random.default_rng(0)
    images, labels = {}, {}
    for split, count in (("train", 546), ("val", 78), ("test", 156)):
        images[split] = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels[split] = (np.arange(count) % 3 > 0).astype(np.int64)  # about 1 : 2, as in BreastMNIST
    info = DatasetInfo(name="breastmnist_standin", class_names=["malignant", "normal, benign"], channels=1,
                       spatial_dims=2, size=[28, 28], source="random stand-in", sha256="")
    save_prepared(root / "standin", images, labels, info)
    return root / "standin"


def train_generator(work: Path) -> tuple[Path, str]:
    """Two training steps of the BreastMNIST config's model; returns the run folder and the data used."""
    from medgan.configio import load_config
    from medgan.training.config import TrainConfig
    from medgan.training.loop import train

    real = perfkit.real_npz("breastmnist")
    data = real if real is not None else _stand_in(work)
    overrides = {"data": str(data), "out": str(work / "run"), "steps": 2, "device": "cpu", "threads": 1,
                 "log_every": 1, "sample_every": 2, "checkpoint_every": 2, "batch_size": 16}
    cfg = load_config(TrainConfig, CONFIG, overrides)
    train(cfg, progress=False)
    return work / "run", "breastmnist (real, 28×28)" if real is not None else "random stand-in of BreastMNIST's shape"


def run_cli(checkpoint: Path, out: Path, fmt: str, n: int, seed: int) -> dict[str, Any]:
    """One ``medgan augment`` through CliRunner; wall time of the whole command and its own report."""
    from typer.testing import CliRunner

    from medgan.cli.main import app

    args = ["augment", "--checkpoint", str(checkpoint), "--class", "malignant", "--n", str(n), "--format", fmt,
            "--seed", str(seed), "--out", str(out), "--device", "cpu", "--no-progress"]
    load_before = os.getloadavg()[0]
    meter = perfkit.CpuMeter()
    result = CliRunner().invoke(app, args)
    usage = meter.stop()
    if result.exit_code != 0:
        raise RuntimeError(f"medgan augment failed ({result.exit_code}): {result.output}")
    line = result.stdout.strip().splitlines()[-1]
    cli_seconds = float(line.split(" in ")[-1].split(" s ")[0])
    files = sum(1 for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out)
    return {**usage, "command_s": cli_seconds, "images_per_s": round(n / usage["wall_s"], 1), "files": files,
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2), "final_line": line}


def generate_only(checkpoint: Path, n: int) -> dict[str, float]:
    """Sample ``n`` images into memory (no files): the generator's share of the time."""
    from medgan.synth.sampling import iter_samples, load_generator

    gen = load_generator(checkpoint, "cpu")
    meter = perfkit.CpuMeter()
    for _ in iter_samples(gen, 0, n, seed=0, batch_size=256):
        pass
    return meter.stop()


def summarise(runs: list[dict[str, Any]], n: int, max_others: float) -> dict[str, Any]:
    """Best and median wall time, over all runs and over the undisturbed ones."""
    calm = [r for r in runs if r["others_cores"] < max_others]
    best = min(calm or runs, key=lambda r: r["wall_s"])
    return {
        "figure_s": best["wall_s"], "figure_images_per_s": round(n / best["wall_s"], 1),
        "figure_from_undisturbed_run": bool(calm), "undisturbed_runs": len(calm),
        "best_wall_s": min(r["wall_s"] for r in runs),
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "median_undisturbed_wall_s": round(statistics.median(r["wall_s"] for r in calm), 3) if calm else None,
        "runs": runs,
    }


def write_markdown(record: dict[str, Any], path: Path) -> None:
    m, lo = record["machine"], record["load"]
    lines = [
        f"# `medgan augment` speed: {record['n']} BreastMNIST-sized samples",
        "",
        f"Generator: `{record['model']['config']}` model size (g_channels {record['model']['g_channels']}, "
        f"{record['model']['generator_parameters']:,} parameters), 28×28 grey, class `malignant`, trained on "
        f"{record['model']['trained_on']}; {m['threads']} torch threads on {m['cpu_count']} CPUs "
        f"({m['processor']}), torch {m['torch']}.",
        "",
        "| what | figure: best run (undisturbed, if any) | median of undisturbed runs | median of all runs | images/s | target |",
        "|---|---|---|---|---|---|",
    ]
    for fmt, res in record["formats"].items():
        target = ""
        if fmt == "png":
            target = f"≤ {record['target_png_s']:.0f} s: {'met' if res['figure_s'] <= record['target_png_s'] else 'missed'}"
        med_calm = f"{res['median_undisturbed_wall_s']:.2f} s" if res["median_undisturbed_wall_s"] is not None else "–"
        lines.append(f"| {record['n']} × {fmt}, whole command | {res['figure_s']:.2f} s | {med_calm} "
                     f"| {res['median_wall_s']:.2f} s | {res['figure_images_per_s']:.0f} | {target} |")
    g = record["generate_only"]
    lines.append(f"| {record['n']} sampled in memory, no files | {g['figure_s']:.2f} s | – | {g['median_wall_s']:.2f} s "
                 f"| {g['figure_images_per_s']:.0f} | |")
    lines += [
        "",
        f"{record['repeats']} runs of each. \"Whole command\" is the wall time of `medgan augment` through CliRunner "
        "(checkpoint verification and loading, sampling, writing, manifest.csv, provenance.json). A run is "
        f"undisturbed when other processes used less than {lo['max_others']} cores during it (from /proc/stat).",
        "",
        f"Load average (1 min) before measuring: {lo['at_measurement']:.2f} (limit {lo['max_load']}); during the "
        f"runs {lo['min_during']:.2f}–{lo['max_during']:.2f}; other processes used up to "
        f"{lo['max_others_cores']:.2f} cores during a run. "
        + ("The machine was quiet." if lo["quiet"] and all(r["figure_from_undisturbed_run"] for r in record["formats"].values())
           else "The machine was NOT quiet: these figures were taken under contention from other work and are "
                "upper bounds, not clean measurements."),
        "",
        f"Command: `{record['command']}` ({record['date_utc']}).",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a BreastMNIST run or checkpoint (default: train 2 steps)")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the measurement")
    parser.add_argument("--max-load", type=float, default=1.5, help="measure only below this 1-min load average")
    parser.add_argument("--max-others", type=float, default=0.3,
                        help="measure only while other processes use fewer cores than this")
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for a quiet machine, at most")
    parser.add_argument("--no-record", action="store_true", help="do not append to benchmarks/results/perf.md")
    parser.add_argument("--json", type=Path, default=RESULTS / "augment_speed.json")
    parser.add_argument("--md", type=Path, default=RESULTS / "augment_speed.md")
    args = parser.parse_args(argv)

    import yaml

    from medgan.synth.sampling import load_generator

    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="augment_speed_") as tmp:
        work = Path(tmp)
        torch.set_num_threads(1)  # training is not what is measured; stay light on a shared machine
        if args.checkpoint is not None:
            checkpoint, data = args.checkpoint, "the given checkpoint's data"
        else:
            checkpoint, data = train_generator(work)
        gen = load_generator(checkpoint, "cpu")
        model_cfg = yaml.safe_load(CONFIG.read_text())["model"]

        quiet, load_now, _ = perfkit.wait_for_quiet(args.max_load, args.max_others, args.wait)
        torch.set_num_threads(args.threads)
        run_cli(checkpoint, work / "warmup", "png", 256, 99)  # imports and first-call costs out of the way
        runs: dict[str, list[dict[str, Any]]] = {"png": [], "npz": [], "generate_only": []}
        context = {"args": args, "gen": gen, "data": data, "model_cfg": model_cfg, "load_at_start": load_at_start,
                   "load_now": load_now}
        for r in range(args.repeats):
            for what in runs:
                ok, load, others = perfkit.wait_for_quiet(args.max_load, args.max_others, args.wait / 3)
                quiet = quiet and ok
                res = (generate_only(checkpoint, args.n) if what == "generate_only"
                       else run_cli(checkpoint, work / f"{what}_{r}", what, args.n, seed=r))
                res.update(gate_load=round(load, 2), gate_others_cores=others)
                runs[what].append(res)
                print(f"{what} run {r}: wall {res['wall_s']:.2f} s, others {res['others_cores']:.2f} cores, "
                      f"load {load:.2f}", flush=True)
            # Written after every round, so an interrupted (or endlessly waiting) run still leaves results.
            record = build_record(runs, quiet, **context)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(record, indent=2) + "\n")
            write_markdown(record, args.md)
    print(args.md.read_text())
    if not args.no_record:
        fm = record["formats"]
        rows = [(f"augment {args.n} × {fmt} 28² (whole command)",
                 f"{fm[fmt]['figure_s']:.2f} s ({fm[fmt]['figure_images_per_s']:.0f} img/s)") for fmt in fm]
        g = record["generate_only"]
        rows.append((f"sample {args.n} 28² in memory (no files)", f"{g['figure_s']:.2f} s ({g['figure_images_per_s']:.0f} img/s)"))
        perfkit.record("sampling", record, rows, threads=args.threads, quiet=record["load"]["quiet"],
                       command=perfkit.command_line("sampling.py", argv))
    return record


def build_record(runs: dict[str, list[dict[str, Any]]], quiet: bool, *, args: argparse.Namespace, gen: Any,
                 data: str, model_cfg: dict[str, Any], load_at_start: tuple[float, float, float],
                 load_now: float) -> dict[str, Any]:
    """The JSON record of the runs so far."""
    every = [r for rs in runs.values() for r in rs]
    loads = [x for r in every for x in (r.get("load_before", r["gate_load"]), r.get("load_after", r["gate_load"]))]
    summary = {what: summarise(rs, args.n, args.max_others) for what, rs in runs.items()}
    return {
        "benchmark": f"medgan augment: {args.n} samples of class 'malignant' from a BreastMNIST-28² generator",
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n": args.n,
        "repeats": len(runs["png"]),
        "target_png_s": 10.0,
        "formats": {"png": summary["png"], "npz": summary["npz"]},
        "generate_only": summary["generate_only"],
        "model": {"config": str(CONFIG.relative_to(REPO)), **model_cfg,
                  "generator_parameters": sum(p.numel() for p in gen.G.parameters()),
                  "size": gen.size, "checkpoint_sha256": gen.checkpoint_sha256, "trained_on": data},
        "load": {"max_load": args.max_load, "max_others": args.max_others, "quiet": quiet,
                 "at_start": [round(x, 2) for x in load_at_start], "at_measurement": round(load_now, 2),
                 "min_during": min(loads), "max_during": max(loads),
                 "max_others_cores": max(r["others_cores"] for r in every)},
        "machine": {"platform": platform.platform(), "processor": perfkit.cpu_name(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": args.threads},
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
    }


if __name__ == "__main__":
    main()
