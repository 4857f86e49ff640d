"""What a class translator (the cycle family) does to held-out images: figures a reader can check against the grid.

For each direction (A -> B and B -> A) the script translates the real test images of the source
class and reports:

- the domain classifier's verdict (the classifier behind the domain feature space, trained on the
  real train split): the share of sources and of translations it assigns to the target class;
- the mean absolute pixel change from source to translation, and the cycle error (translated
  there and back) on the 0..255 scale;
- the two-domain memorisation audit (:func:`medgan.metrics.memorisation.translation_audit`) with
  the real val split as the held-out reference;
- translation speed (images per second on this machine and thread count).

It writes ``cycle_translation.json`` and ``translations_test.png`` (rows: sources, translations,
for each direction) into ``--out``; the README beside them is written by whoever looked at the grid.

Example:
    python benchmarks/cycle_translation.py --checkpoint runs/cycle_breastmnist --data breastmnist \
        --out benchmarks/results/cycle_breastmnist --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def measure(checkpoint: str, data: str, out: Path, threads: int, columns: int = 8) -> dict[str, Any]:
    from medgan.data.dataset import load_dataset
    from medgan.metrics.domain_is import class_probabilities
    from medgan.metrics.features import get_feature_extractor
    from medgan.metrics.memorisation import translation_audit
    from medgan.synth.translate import iter_translated, load_translator
    from medgan.training.snapshots import make_grid, save_grid

    torch.set_num_threads(threads)
    tr = load_translator(checkpoint, device="cpu")
    ds = load_dataset(data)
    tr.check_trained_on(ds.info, "--data")
    extractor = get_feature_extractor(ds, "cnn", device="cpu", seed=0)
    train_f, val_f = extractor.split_features(ds, "train"), extractor.split_features(ds, "val")
    train_y, val_y, test_y = ds.labels["train"], ds.labels["val"], ds.labels["test"]
    test_x = ds.channel_first("test")
    record: dict[str, Any] = {
        "checkpoint_sha256": tr.checkpoint_sha256,
        "dataset": ds.info.name,
        "dataset_sha256": ds.info.sha256,
        "domain_classifier": extractor.domain_metrics(),
        "directions": [],
    }
    rows = []
    for to in (1, 0):
        src_c, tgt_c = tr.domain_class(1 - to), tr.domain_class(to)
        sources = test_x[test_y == src_c]
        t0 = time.perf_counter()
        translated = np.concatenate(list(iter_translated(tr, sources, to)))
        seconds = time.perf_counter() - t0
        back = np.concatenate(list(iter_translated(tr, translated, 1 - to)))
        p_src, p_out = class_probabilities(extractor, sources), class_probabilities(extractor, translated)
        assert p_src is not None and p_out is not None
        out_f, src_f = extractor.extract(translated), extractor.extract(sources)
        audit = translation_audit(
            out_f,
            src_f,
            np.full(len(sources), -1),
            train_f[train_y == src_c],
            train_f[train_y == tgt_c],
            val_f[val_y == src_c],
            val_f[val_y == tgt_c],
        )
        m = audit.metrics()
        record["directions"].append(
            {
                "from": tr.domains[1 - to],
                "to": tr.domains[to],
                "test_sources": len(sources),
                "classifier_says_target_sources": round(float((p_src.argmax(1) == tgt_c).mean()), 4),
                "classifier_says_target_translations": round(float((p_out.argmax(1) == tgt_c).mean()), 4),
                "mean_p_target_sources": round(float(p_src[:, tgt_c].mean()), 4),
                "mean_p_target_translations": round(float(p_out[:, tgt_c].mean()), 4),
                "mean_abs_pixel_change": round(float(np.abs(translated.astype(float) - sources).mean()), 2),
                "cycle_error": round(float(np.abs(back.astype(float) - sources).mean()), 2),
                "memorisation_fraction": round(m["memorisation/fraction"], 4),
                "memorisation_fraction_target": round(m["memorisation/fraction_target"], 4),
                "memorisation_fraction_other_source": round(m["memorisation/fraction_other_source"], 4),
                "median_distance_to_source": round(m["memorisation/median_distance_to_source"], 3),
                "median_distance_to_target_train": round(m["memorisation/median_distance"], 3),
                "median_val_to_target_train": round(m["memorisation/median_reference_distance"], 3),
                "images_per_s": round(len(sources) / max(seconds, 1e-9), 1),
            }
        )
        rows += [sources[:columns], translated[:columns]]
    record["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": threads,
    }
    out.mkdir(parents=True, exist_ok=True)
    save_grid(make_grid(rows), out / "translations_test.png", scale=2)
    (out / "cycle_translation.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(json.dumps(measure(args.checkpoint, args.data, args.out, args.threads), indent=2))


if __name__ == "__main__":
    main()
