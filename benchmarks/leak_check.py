"""How much of a classifier's test score rests on test images whose twin it trained on?

BreastMNIST's test split has a near-duplicate in its train split for 36 % of its images (the same scan, within 10
grey levels RMS; ``medgan.data.splits.twins_in``). A classifier trained on the real train split can recognise those;
one trained on synthetic images (TSTR) cannot. This script trains the benchmark classifier of ``gan_quality.py``
(``cnn``, 40 epochs, balanced loss, epoch chosen on real val) on the real train split and on each GAN's samples, and
scores it on three parts of the test split: all of it, the images with a twin in train, and those without. The
TSTR ratio on the twin-free part is the one a leak cannot flatter.

Usage:
    python benchmarks/leak_check.py --data breastmnist runs/q/repro_ss runs/q/breast_ss2_area_s2 \\
        --real-seeds 3 --out benchmarks/results/test_leak.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from medgan.data.dataset import load_dataset
from medgan.data.splits import TWIN_RMS, twins_in
from medgan.synth.translate import load_model

try:  # run as a script from the repository root
    from gan_quality import parts_accuracy, sample_like
except ImportError:  # imported as benchmarks.leak_check
    from benchmarks.gan_quality import parts_accuracy, sample_like


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="GAN run folders trained on --data (one TSTR classifier seed each)")
    p.add_argument("--data", required=True)
    p.add_argument("--real-seeds", type=int, default=3, help="classifier seeds on the real train split")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--twin-rms", type=float, default=TWIN_RMS)
    p.add_argument("--out", type=Path, default=None, help="write the record here (JSON)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.time()
    ds = load_dataset(args.data)
    real = (ds.channel_first("train"), ds.labels["train"])
    twin = twins_in(ds.channel_first("test"), real[0], args.twin_rms)
    y = ds.labels["test"]
    print(f"{ds.info.name}: {twin.mean():.3f} of the test images have a train twin "
          f"(by class {[round(float(twin[y == c].mean()), 3) for c in np.unique(y)]})", flush=True)
    real_only = [parts_accuracy(real, ds, s, args.epochs, twin) for s in range(args.real_seeds)]
    mean = lambda rows, k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    print("real-only: " + ", ".join(f"{k} {mean(real_only, k):.3f}" for k in ("all", "twin", "clean")), flush=True)
    counts = np.bincount(real[1], minlength=ds.info.num_classes).tolist()
    tstr = []
    for run in args.runs:
        gen = load_model(Path(run), "cpu")
        gen.check_trained_on(ds.info, "--data", Path(run))
        row = {"run": run, **parts_accuracy(sample_like(gen, counts, seed=0), ds, 0, args.epochs, twin)}
        tstr.append(row)
        print(f"{run}: " + ", ".join(f"{k} {row[k]:.3f} ({row[k] / mean(real_only, k):.3f}x)"
                                     for k in ("all", "twin", "clean")), flush=True)
    if tstr:
        print("TSTR mean: " + ", ".join(f"{k} {mean(tstr, k):.3f} ({mean(tstr, k) / mean(real_only, k):.3f}x)"
                                        for k in ("all", "twin", "clean")))
    if args.out is not None:
        record = {
            "data": ds.info.name, "twin_rms": args.twin_rms, "test_twin_share": float(twin.mean()),
            "test_twin_share_by_class": [float(twin[y == c].mean()) for c in np.unique(y)],
            "n_test": {"all": len(y), "twin": int(twin.sum()), "clean": int((~twin).sum())},
            "real_only": real_only, "tstr": tstr, "epochs": args.epochs, "threads": args.threads,
            "wall_s": round(time.time() - t0, 1),
        }
        old = json.loads(args.out.read_text()) if args.out.is_file() else {}
        old[ds.info.name] = record
        args.out.write_text(json.dumps(old, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
