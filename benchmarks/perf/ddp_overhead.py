"""Figure 3: what DDP costs on CPU: 2 processes against 1 at the same global batch.

Three ways to spend the same cores on the same work (``configs/train/cgan_breastmnist.yaml``, global
batch 32, real BreastMNIST when present):

- ``1 proc × T threads``: one process, ``medgan train`` (the baseline);
- ``2 procs × T/2 threads``: ``torchrun --nproc_per_node 2 -m medgan train``, batch 16 per rank,
  gloo all-reduce of the gradients;
- ``1 proc × T/2 threads``: one process on half the cores, for reference.

The figure is images per second from the run's own log (the mean of the logging intervals after
the first, so start-up and warm-up are excluded), and the ratio of the DDP run to the baseline.
Rounds are interleaved so that slow drifts of the machine hit every variant alike.

On a 2-core machine this measures the price of splitting the cores between processes (smaller
per-process matrix work plus the all-reduce), not a speed-up: DDP pays off when each process has
its own GPU or node.

Usage:
    python benchmarks/perf/ddp_overhead.py [--threads 2] [--steps 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit

CONFIG = "configs/train/cgan_breastmnist.yaml"
GLOBAL_BATCH = 32


def run_variant(procs: int, threads: int, steps: int, log_every: int, data: str, out: Path) -> dict[str, Any]:
    """One training run; images per second from its metrics log, and the CPU others used meanwhile."""
    train_args = ["train", str(perfkit.REPO / CONFIG), "--out", str(out), "--steps", str(steps), "--no-progress",
                  "--threads", str(threads), "--device", "cpu", "--overwrite",
                  "--set", f"batch_size={GLOBAL_BATCH // procs}", "--set", f"log_every={log_every}",
                  "--set", "sample_every=1000000", "--set", "checkpoint_every=1000000", "--data", data]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs), "-m", "medgan"]
                if procs > 1 else [sys.executable, "-m", "medgan"])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    meter = perfkit.CpuMeter()
    proc = subprocess.run(launcher + train_args, capture_output=True, text=True, env=env, check=False)
    usage = meter.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{procs} process(es) failed:\n{proc.stderr[-2000:]}")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["img_per_s"] for r in lines[1:]] or [r["img_per_s"] for r in lines]
    return {"img_per_s": round(sum(rates) / len(rates), 2), "intervals": rates, "wall_s": usage["wall_s"],
            "others_cores": usage["others_cores"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="cores for the whole job (T)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--wait", type=float, default=900, help="seconds to wait for a quiet machine, at most")
    ap.add_argument("--no-record", action="store_true", help="print only; write nothing into benchmarks/results")
    args = ap.parse_args(argv)
    half = max(1, args.threads // 2)
    real = perfkit.real_npz("breastmnist")
    variants = {f"1 proc × {args.threads} threads": (1, args.threads),
                f"2 procs × {half} thread(s)": (2, half),
                f"1 proc × {half} thread(s)": (1, half)}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    quiet = True
    with tempfile.TemporaryDirectory(prefix="perf_ddp_") as tmp:
        data = str(real) if real is not None else str(perfkit.stand_in(Path(tmp), 28, 2, n=546))
        for r in range(args.rounds):
            for name, (procs, threads) in variants.items():
                ok, _load, _others = perfkit.wait_for_quiet(wait_s=args.wait)
                res = run_variant(procs, threads, args.steps, args.log_every, data, Path(tmp) / "run")
                quiet = quiet and ok and res["others_cores"] < 0.3
                runs[name].append(res)
                print(f"round {r}: {name}: {res['img_per_s']:.1f} img/s (others {res['others_cores']:.2f} cores)",
                      flush=True)
    mean = {k: round(sum(x["img_per_s"] for x in v) / len(v), 2) for k, v in runs.items()}
    base, ddp, single_half = (mean[k] for k in variants)
    out = {"figure": "DDP overhead on CPU: 2 processes vs 1 at the same global batch",
           "config": CONFIG, "data": "breastmnist" if real is not None else "random stand-in 28²",
           "global_batch": GLOBAL_BATCH, "steps": args.steps, "runs": runs, "mean_img_per_s": mean,
           "ratio_ddp_to_one_process": round(ddp / base, 3),
           "ratio_ddp_to_one_process_on_half_the_cores": round(ddp / single_half, 3)}
    print(json.dumps(out, indent=2))
    if not args.no_record:
        names = list(variants)
        rows = [(f"DDP overhead, global batch {GLOBAL_BATCH}: {names[1]} / {names[0]}",
                 f"{out['ratio_ddp_to_one_process']:.2f} ({ddp:.1f} vs {base:.1f} img/s)"),
                (f"DDP overhead: {names[1]} / {names[2]}",
                 f"{out['ratio_ddp_to_one_process_on_half_the_cores']:.2f} ({ddp:.1f} vs {single_half:.1f} img/s)")]
        perfkit.record("ddp_overhead", out, rows, threads=args.threads, quiet=quiet,
                       command=perfkit.command_line("ddp_overhead.py", argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
