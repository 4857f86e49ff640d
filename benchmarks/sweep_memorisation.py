"""Audit a finished sweep's GANs for memorisation twice: against the whole train split, and against
the subset each GAN learnt from (what the benchmark report now does).

For each fraction of the sweep, the subset-0 GAN draws ``fidelity.n_per_class`` samples per class
(the report's seed), and :func:`medgan.metrics.evaluate_detailed` runs the memorisation family alone
(no C2ST), once with ``seen=None`` and once with ``seen`` = that GAN's subset. Writes one JSON record
per fraction to ``--out`` and prints it.

Usage:
    python benchmarks/sweep_memorisation.py configs/benchmark/sweeps/pneumoniamnist.yaml \
        runs/benchmark/pneumoniamnist-sweep --out benchmarks/results/pneumoniamnist-sweep/memorisation.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from medgan.benchmark.config import load_benchmark_config
from medgan.benchmark.subsets import fraction_label, subset_indices
from medgan.data.dataset import load_dataset
from medgan.metrics.evaluate import evaluate_detailed
from medgan.synth.sampling import sample_classes
from medgan.synth.translate import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="the sweep's benchmark config")
    parser.add_argument("folder", help="the sweep's output folder (its GANs are read)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    import torch

    cfg = load_benchmark_config(args.config)
    folder = Path(args.folder)
    ds = load_dataset(cfg.data)
    rows, start = [], time.time()
    for f in cfg.fractions:
        root = folder if f >= 1 else folder / "gans" / f"f{fraction_label(f)}-s0"
        marker = json.loads((root / "gan.json").read_text())
        gen = load_model(root / marker["checkpoint"], "cpu")
        images, labels, _ = sample_classes(gen, cfg.fidelity.n_per_class, seed=cfg.fidelity.seed, device="cpu")
        subsets = {"whole": None} if f >= 1 else {
            "whole": None, "seen": subset_indices(ds.labels["train"], f, 0, cfg.min_per_class)}
        row: dict = {"fraction": f, "n_real": len(ds.labels["train"]) if f >= 1 else len(subsets["seen"])}
        for name, seen in subsets.items():
            m = evaluate_detailed(ds, (images, labels), arch=cfg.fidelity.arch, seed=0,
                                  feature_epochs=cfg.fidelity.feature_epochs, metrics=["memorisation"],
                                  seen=seen).metrics
            row[name] = {k.removeprefix("memorisation/"): v for k, v in m.items() if k.startswith("memorisation/")}
        print(json.dumps(row), flush=True)
        rows.append(row)
    record = {"config": args.config, "folder": str(folder), "rows": rows, "seconds": round(time.time() - start, 1),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch_threads": torch.get_num_threads()}
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
