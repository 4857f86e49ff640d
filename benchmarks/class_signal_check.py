"""Can a check on val alone flag a generator whose draws carry no class information?

For each checkpoint: GAN-test (the benchmark's ``cnn`` trained on the real train split, scored on the
draws against their intended class; Shmelkov et al. 2018) and TSTR read on val (the classifier trained on
the draws, its selected epoch's val balanced accuracy) beside TSTR on test. The draws follow the train
split's class counts (``gan_quality.sample_like``). One classifier seed.

Usage:
    python benchmarks/class_signal_check.py --data adrenalmnist3d runs/q/adrenal_def_s2 runs/q/adrenal_def_s3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from medgan.data.dataset import load_dataset
from medgan.synth.translate import load_model
from medgan.training.classifier import classifier_scores, predict_proba

try:  # run as a script from the repository root
    from gan_quality import _fit_classifier, emit, sample_like
except ImportError:  # imported as benchmarks.class_signal_check
    from benchmarks.gan_quality import _fit_classifier, emit, sample_like


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="GAN run folders trained on --data")
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="append one JSON line per run here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    real = (ds.channel_first("train"), ds.labels["train"])
    counts = np.bincount(real[1]).tolist()
    real_net, _ = _fit_classifier(real, ds, 0, args.epochs)
    for run in args.runs:
        t0 = time.time()
        gen = load_model(run, "cpu")
        gen.check_trained_on(ds.info, "--data", run)
        syn_x, syn_y = sample_like(gen, counts, 0)
        syn_net, history = _fit_classifier((syn_x, syn_y), ds, 0, args.epochs)
        row = {
            "run": str(run),
            "gan_test": classifier_scores(predict_proba(real_net, syn_x), syn_y)["balanced_accuracy"],
            "tstr_val": max(r["val_balanced_accuracy"] for r in history if r["selected"]),
            "tstr_test": classifier_scores(predict_proba(syn_net, ds.channel_first("test")),
                                           ds.labels["test"])["balanced_accuracy"],
            "wall_s": round(time.time() - t0, 1),
        }
        emit(row, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
