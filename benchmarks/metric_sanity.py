"""Sanity figures of the pixel metrics: degraded real images must score clearly worse than clean ones.

For one real MedMNIST file, compares the train split with the held-out images (val + test), clean
and under each degradation of :mod:`medgan.metrics.degrade`, on C2ST (ROC AUC) and SWD (finest
level and mean). Writes JSON and prints a Markdown table for docs/metrics.md.

Usage:
    python benchmarks/metric_sanity.py --data pneumoniamnist --n 400 \
        --out benchmarks/results/metric_sanity_pneumoniamnist.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from medgan.data.dataset import load_dataset
from medgan.metrics.c2st import C2STConfig, c2st
from medgan.metrics.degrade import DEGRADATIONS
from medgan.metrics.swd import SWDConfig, swd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="pneumoniamnist")
    p.add_argument("--n", type=int, default=400, help="images per side")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    t0 = time.time()
    ds = load_dataset(args.data)
    train = ds.channel_first("train")
    heldout = np.concatenate([ds.channel_first("val"), ds.channel_first("test")])
    rows = {}
    for name, fn in {"clean": lambda x, seed=0: x, **DEGRADATIONS}.items():
        other = fn(heldout)
        rows[name] = {
            "c2st_auc": c2st(train, other, C2STConfig(max_per_side=args.n))["auc"],
            **swd(train, other, SWDConfig(max_images=args.n)),
        }
        print(name, {k: round(v, 3) for k, v in rows[name].items()}, flush=True)
    level = next(k for k in rows["clean"] if k.startswith("swd/level_"))
    print(f"\n| images | C2ST AUC | SWD {level.removeprefix('swd/')} | SWD mean |\n|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['c2st_auc']:.3f} | {r[level]:.1f} | {r['swd/mean']:.1f} |")
    record = {"data": ds.info.name, "n_per_side": args.n, "rows": rows, "wall_s": round(time.time() - t0, 1),
              "threads": torch.get_num_threads(), "machine": f"{platform.platform()}, torch {torch.__version__}"}
    if args.out is not None:
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
