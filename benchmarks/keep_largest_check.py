"""Does keeping each synthetic mask's largest connected component (``model.g_keep_largest``) fool the C2ST?

Draws from one 3D mask GAN with and without the sampling-time cleanup and measures both draws as the
benchmark report does: the classifier two-sample test against the real train split (both sides at the
real class mix, 2 folds, the first layer strided) and the connected pieces per mask.

Usage (after ``medgan benchmark configs/benchmark/sweeps/adrenalmnist3d.yaml``):
    python benchmarks/keep_largest_check.py runs/benchmark/adrenalmnist3d-sweep/gans/f0.25-s0/gan \
        --out benchmarks/results/gan_quality/keep_largest.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from medgan.data.dataset import load_dataset
from medgan.metrics.c2st import C2STConfig, c2st, matched_proportions
from medgan.metrics.evaluate import value_metrics
from medgan.synth.sampling import load_generator, sample_classes


def parse_mask_gan_args(doc: str | None) -> argparse.Namespace:
    """The command line of the 3D mask-GAN checks (this one and ``mask_position_check.py``); sets torch's threads."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a 3D binary-mask GAN (file or run folder)")
    p.add_argument("--data", default="adrenalmnist3d")
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    return args


def main() -> None:
    args = parse_mask_gan_args(__doc__)
    ds = load_dataset(args.data)
    real_x, real_y = ds.channel_first("train"), ds.labels["train"]
    record: dict[str, object] = {"checkpoint": args.checkpoint, "n_per_class": args.n_per_class,
                                 "threads": args.threads, "c2st": "C2STConfig(folds=2, seed=0), real class mix"}
    for keep in (False, True):
        gen = load_generator(args.checkpoint, "cpu")
        gen.keep_largest_component = keep
        x, y, _ = sample_classes(gen, args.n_per_class, seed=0, device="cpu")
        t0 = time.perf_counter()
        keep_real, keep_syn = matched_proportions(real_y, y, 1000, 0)
        res = c2st(real_x[keep_real], x[keep_syn], C2STConfig(folds=2, seed=0, device="cpu"))
        values = value_metrics(real_x, x)
        record[f"keep_largest_{str(keep).lower()}"] = {
            "c2st_auc": res["auc"], "auc_std": res["auc_std"], "n_per_side": res["n_per_side"],
            "components_synthetic": values["values/components_synthetic"],
            "components_real": values["values/components_real"],
            "one_piece_synthetic": values["values/one_piece_synthetic"],
            "seconds": round(time.perf_counter() - t0, 1)}
        print(keep, record[f"keep_largest_{str(keep).lower()}"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
