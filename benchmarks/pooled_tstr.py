"""Does pooling the draws of several training runs carry more class information than one run's?

Draws one set at the real train split's class counts, class ``c``'s ``n_c`` images shared as evenly as
possible over the ``k`` runs (run ``j`` gives ``n_c // k``, one more for the first ``n_c % k``), each run
drawing with seed 0 (``synth.sampling.sample_counts``). Then TSTR as ``gan_quality.py --tstr-only``: the
benchmark's ``cnn`` trained on the pooled set, selected on real val, balanced accuracy on real test over
classifier seeds, and the ratio to a given real-only figure; plus the mask figures of the pooled set.

Usage:
    python benchmarks/pooled_tstr.py --data adrenalmnist3d --real-only 0.6714 --label "pool 5-9" \\
        runs/q/adrenal_def_s5 runs/q/adrenal_def_s6 runs/q/adrenal_def_s7 --out runs/q/pool.jsonl
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from medgan.data.dataset import load_dataset
from medgan.metrics.evaluate import mask_distance, value_metrics
from medgan.synth.sampling import load_generator, sample_counts

try:  # run as a script from the repository root
    from gan_quality import classifier_balanced_accuracy, emit, run_facts
except ImportError:  # imported as benchmarks.pooled_tstr
    from benchmarks.gan_quality import classifier_balanced_accuracy, emit, run_facts


def shares(counts: list[int], k: int, j: int) -> list[int]:
    """Run ``j``'s share (of ``k``) of each class count: ``n // k``, one more for the first ``n % k`` runs."""
    return [int(n // k + (j < n % k)) for n in counts]


def pooled_draws(runs: list[Path], counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One set at ``counts`` from ``runs`` together (:func:`shares`), images and labels."""
    xs, ys = [], []
    for j, run in enumerate(runs):
        x, y = sample_counts(load_generator(run, device="cpu"), shares(counts, len(runs), j), seed=0)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders (or checkpoints) of GANs trained on --data")
    p.add_argument("--data", required=True, help="registry name or prepared dataset")
    p.add_argument("--real-only", type=float, required=True, help="the real-only balanced accuracy to divide by")
    p.add_argument("--seeds", type=int, default=5, help="classifier seeds")
    p.add_argument("--epochs", type=int, default=40, help="classifier epochs")
    p.add_argument("--label", default="", help="a name for this pool in the record")
    p.add_argument("--out", type=Path, default=None, help="append the JSON record to this JSON-lines file")
    args = p.parse_args(argv)
    t0 = time.time()
    ds = load_dataset(args.data)
    y = ds.labels["train"]
    counts = np.bincount(y, minlength=ds.info.num_classes).tolist()
    syn = pooled_draws(args.runs, counts)
    names = list(ds.info.class_names)
    metrics = value_metrics(ds.channel_first("train"), syn[0], real_labels=y, synthetic_labels=syn[1], class_names=names)
    metrics.update(mask_distance(metrics, names))
    tstr = classifier_balanced_accuracy(syn, ds, args.seeds, args.epochs)["all"]
    metrics["tstr/balanced_accuracy"] = float(np.mean(tstr))
    metrics["real_only/balanced_accuracy"] = args.real_only
    metrics["tstr/ratio_to_real_only"] = float(np.mean(tstr)) / args.real_only
    record = {"label": args.label, "runs": [str(r) for r in args.runs], "data": ds.info.name, "tstr_per_seed": tstr,
              "metrics": metrics, "eval_wall_time_s": round(time.time() - t0, 1), **run_facts(argv)}
    emit(record, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
