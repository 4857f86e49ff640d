"""Figure 2: how the cost of one training step grows with resolution, for both model families.

For 2D (28², 64², 128²) and 3D (28³, 32³, 64³), and for the class-conditional GAN and the
progressive GAN, it trains with medgan's own loop on a random stand-in dataset of that size (speed
does not depend on the pixels) and records:

- the time per training step (median over the timed steps; the first steps are warm-up), and per
  real image shown to D;
- the peak resident memory of the process, and its part above the baseline after imports.

Each measurement runs in its own process, so a peak belongs to one setting. The model settings are
those of the committed configs (``cgan_breastmnist`` / ``progressive_breastmnist64`` for 2D,
``cgan_adrenalmnist3d`` / ``progressive_adrenalmnist3d`` for 3D); a progressive run grows through
its earlier stages in one step each and is timed at its final resolution with alpha = 1. The
growth of cost is summarised by the slope of log(time per step) against log(pixels).

Usage:
    python benchmarks/perf/scaling.py [--threads 2] [--only cgan-2d-28,...]

Writes benchmarks/results/perf/scaling.{json,png} and rows of benchmarks/results/perf.md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit

CONFIGS = {
    ("cgan", 2): "configs/train/cgan_breastmnist.yaml",
    ("progressive", 2): "configs/train/progressive_breastmnist64.yaml",
    ("cgan", 3): "configs/train/cgan_adrenalmnist3d.yaml",
    ("progressive", 3): "configs/train/progressive_adrenalmnist3d.yaml",
}
SIZES = {2: (28, 64, 128), 3: (28, 32, 64)}
BATCH = {2: 16, 3: 8}  # one batch for every size of a family, so the steps compare
WARM, TIMED = 2, 5


def _key(family: str, dims: int, size: int) -> str:
    return f"{family}-{dims}d-{size}"


def measure_one(family: str, dims: int, size: int, threads: int) -> dict[str, Any]:
    """Train a few steps at one setting in this process; return the timings and memory."""
    import torch

    from medgan.configio import load_config
    from medgan.training.config import TrainConfig
    from medgan.training.loop import train
    from medgan.training.snapshots import read_jsonl

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="perf_scaling_") as tmp:
        work = Path(tmp)
        data = perfkit.stand_in(work, size, dims, n=64)
        baseline = perfkit.peak_rss_mb()
        batch = BATCH[dims]
        overrides = [f"data={data}", f"out={work / 'run'}", "log_every=1", "sample_every=1000000",
                     "checkpoint_every=1000000", f"threads={threads}", "device=cpu"]
        grow = 0
        if family == "progressive":
            canvas = 1 << (size - 1).bit_length()
            stages = int(math.log2(canvas)) - 1  # 4, 8, ..., canvas
            grow = 2 * (stages - 1)  # a 1-step stable and a 1-step fade per earlier stage
            overrides += [f"progressive.target_resolution={canvas}", "progressive.batch_size={}",
                          f"progressive.default_batch_size={batch}", f"progressive.fade_images={batch}",
                          f"progressive.stable_images={batch}"]
        else:
            overrides.append(f"batch_size={batch}")
        overrides.append(f"steps={grow + 1 + WARM + TIMED}")
        cfg = load_config(TrainConfig, perfkit.REPO / CONFIGS[(family, dims)], overrides)
        train(cfg, progress=False)
        records = read_jsonl(work / "run" / "metrics.jsonl")
    final = [r for r in records if r["step"] > grow + 1][WARM:]
    per_step_images = batch * cfg.d_steps
    seconds = [per_step_images / r["img_per_s"] for r in final]
    return {"family": family, "spatial_dims": dims, "size": size, "pixels": size**dims, "batch": batch,
            "d_steps": cfg.d_steps, "timed_steps": len(seconds), "s_per_step": round(statistics.median(seconds), 4),
            "ms_per_image": round(1000 * statistics.median(seconds) / per_step_images, 3),
            "peak_rss_mb": round(perfkit.peak_rss_mb()), "baseline_rss_mb": round(baseline),
            "training_rss_mb": round(perfkit.peak_rss_mb() - baseline)}


def slope(points: list[dict[str, Any]], field: str) -> float:
    """Least-squares slope of log(field) against log(pixels): cost ∝ pixels^slope."""
    xs = [math.log(p["pixels"]) for p in points]
    ys = [math.log(p[field]) for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for family, marker in (("cgan", "o"), ("progressive", "s")):
        for dims, colour in ((2, "tab:blue"), (3, "tab:red")):
            pts = [r for r in results if r["family"] == family and r["spatial_dims"] == dims]
            if not pts:
                continue
            label = f"{family} {dims}D"
            axes[0].plot([p["pixels"] for p in pts], [p["s_per_step"] for p in pts], marker=marker, color=colour,
                         linestyle="-" if family == "cgan" else "--", label=label)
            axes[1].plot([p["pixels"] for p in pts], [p["peak_rss_mb"] for p in pts], marker=marker, color=colour,
                         linestyle="-" if family == "cgan" else "--", label=label)
    for ax, title in zip(axes, ("time per step (s)", "peak RSS (MB)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pixels per image (28² … 128², 28³ … 64³)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="comma-separated settings such as cgan-2d-28,progressive-3d-64")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one setting, print JSON
    ap.add_argument("--wait", type=float, default=900, help="seconds to wait for a quiet machine, at most")
    ap.add_argument("--no-record", action="store_true", help="print only; write nothing into benchmarks/results")
    args = ap.parse_args(argv)
    if args.one:
        family, dims, size = args.one.split(":")
        print(json.dumps(measure_one(family, int(dims), int(size), args.threads)))
        return 0

    todo = [(f, d, s) for (f, d) in CONFIGS for s in SIZES[d]]
    if args.only:
        wanted = {x.strip() for x in args.only.split(",")}
        todo = [t for t in todo if _key(*t) in wanted]
    results, quiet = [], True
    for family, dims, size in todo:
        ok, _load, _others = perfkit.wait_for_quiet(wait_s=args.wait)
        meter = perfkit.CpuMeter()
        proc = subprocess.run([sys.executable, __file__, "--one", f"{family}:{dims}:{size}", "--threads",
                               str(args.threads)], capture_output=True, text=True, check=False)
        usage = meter.stop()
        if proc.returncode != 0:
            raise SystemExit(f"{_key(family, dims, size)} failed:\n{proc.stderr[-2000:]}")
        res = {**json.loads(proc.stdout.strip().splitlines()[-1]), "others_cores": usage["others_cores"]}
        quiet = quiet and ok and usage["others_cores"] < 0.3
        results.append(res)
        print(f"{_key(family, dims, size)}: {res['s_per_step']:.3f} s/step, peak RSS {res['peak_rss_mb']} MB "
              f"(training {res['training_rss_mb']} MB), others {usage['others_cores']:.2f} cores", flush=True)

    growth = {}
    for family, dims in CONFIGS:
        pts = [r for r in results if r["family"] == family and r["spatial_dims"] == dims]
        if len(pts) >= 2:
            growth[f"{family}-{dims}d"] = {"time_exponent": round(slope(pts, "s_per_step"), 2),
                                           "training_rss_exponent": round(slope(
                                               [p for p in pts if p["training_rss_mb"] > 0], "training_rss_mb"), 2)
                                           if sum(p["training_rss_mb"] > 0 for p in pts) >= 2 else None}
    out = {"figure": "time per step and peak RSS against resolution", "batch": BATCH, "warm_steps": WARM,
           "timed_steps": TIMED, "results": results, "growth": growth,
           "reading": "time per step ∝ pixels^time_exponent (least squares over the sizes measured)"}
    print(json.dumps(out, indent=2))
    if not args.no_record:
        plot(results, perfkit.RESULTS / "perf" / "scaling.png")
        rows = [(f"step time {_key(r['family'], r['spatial_dims'], r['size'])} (batch {r['batch']})",
                 f"{r['s_per_step']:.3f} s; peak RSS {r['peak_rss_mb']} MB") for r in results]
        rows += [(f"step-time growth {k}", f"∝ pixels^{v['time_exponent']}") for k, v in growth.items()]
        perfkit.record("scaling", out, rows, threads=args.threads, quiet=quiet,
                       command=perfkit.command_line("scaling.py", argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
