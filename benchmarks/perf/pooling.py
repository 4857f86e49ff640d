"""The cGAN's ×2 average pooling: ``avg_pool2d`` / ``avg_pool3d`` (now) against ``reshape`` + ``mean``
(before), measured as medgan's own training throughput on the committed cGAN configs.

Both variants run in this process, interleaved round by round (A B A B ...), each resuming its own
run folder, so a drift of the machine's speed hits both. The figure is the ``img_per_s`` the loop
logs over each round (start-up, samples and checkpoints excluded); the first round of each variant
is warm-up and is left out when there are more. The "before" variant patches
``medgan.networks.layers.AvgPool2x.forward`` back to the reshape + mean it was; nothing else differs.

Usage:
    python benchmarks/perf/pooling.py [--settings 2d-28,3d-28] [--rounds 4] [--threads 1]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit
from throughput import SETTINGS


def reshape_mean(self: Any, x: torch.Tensor) -> torch.Tensor:
    """The pooling as it was: every 2×…×2 block as a reshape, then a mean over the pair axes."""
    b, c, *spatial = x.shape
    view_shape = [b, c]
    for s in spatial:
        view_shape += [s // 2, 2]
    return x.reshape(view_shape).mean(dim=tuple(range(3, 3 + 2 * len(spatial), 2)))


def measure(name: str, rounds: int, threads: int, work: Path) -> dict[str, Any]:
    """Interleaved rounds of the two pooling variants for one setting."""
    from medgan.configio import load_config
    from medgan.networks import layers
    from medgan.training.config import TrainConfig
    from medgan.training.loop import train
    from medgan.training.snapshots import read_jsonl

    config, real, dims, size, steps = SETTINGS[name]
    data_path = perfkit.real_npz(real)
    data = str(data_path) if data_path is not None else str(perfkit.stand_in(work, size, dims, n=256))
    now_forward = layers.AvgPool2x.forward
    rates: dict[str, list[float]] = {"avg_pool": [], "reshape_mean": []}
    for r in range(1, rounds + 1):
        for variant in rates:
            run = work / f"run_{name}_{variant}"
            cfg = load_config(TrainConfig, perfkit.REPO / config, [
                f"data={data}", f"out={run}", f"steps={r * steps}", f"log_every={steps}", "sample_every=1000000",
                "checkpoint_every=1000000", f"threads={threads}", "device=cpu"])
            layers.AvgPool2x.forward = now_forward if variant == "avg_pool" else reshape_mean  # type: ignore[method-assign]
            try:
                train(cfg, resume=run if r > 1 else None, progress=False)
            finally:
                layers.AvgPool2x.forward = now_forward  # type: ignore[method-assign]
            rates[variant].append(read_jsonl(run / "metrics.jsonl")[-1]["img_per_s"])
        print(f"{name} round {r}: avg_pool {rates['avg_pool'][-1]:.1f} img/s, "
              f"reshape+mean {rates['reshape_mean'][-1]:.1f} img/s", flush=True)
    keep = slice(1, None) if rounds > 1 else slice(None)
    mean = {k: sum(v[keep]) / len(v[keep]) for k, v in rates.items()}
    return {"config": config, "data": data if data_path is None else real, "size": [size] * dims,
            "steps_per_round": steps, "img_per_s": rates, "mean_img_per_s": {k: round(v, 2) for k, v in mean.items()},
            "speedup": round(mean["avg_pool"] / mean["reshape_mean"], 3)}


def main(argv: list[str] | None = None) -> int:
    ap = perfkit.settings_parser(__doc__, SETTINGS, default="2d-28,3d-28", rounds=4, threads=1)
    args = ap.parse_args(argv)
    names = perfkit.chosen_settings(ap, args.settings, SETTINGS)
    torch.set_num_threads(args.threads)
    quiet = True
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="perf_pooling_") as tmp:
        for name in names:
            ok, _load, _others = perfkit.wait_for_quiet(wait_s=args.wait)
            meter = perfkit.CpuMeter()
            results[name] = measure(name, args.rounds, args.threads, Path(tmp))
            results[name]["others_cores"] = meter.stop()["others_cores"]
            quiet = quiet and ok and results[name]["others_cores"] < 0.3
    out = {"figure": "cGAN training throughput with avg_pool kernels / with reshape + mean pooling, interleaved "
                     "in one process", "rounds": args.rounds, "settings": results}
    print(json.dumps(out, indent=2))
    if not args.no_record:
        rows = [(f"cGAN train throughput {n} ({'×'.join(map(str, r['size']))}): avg_pool / reshape+mean",
                 f"{r['speedup']:.2f} ({r['mean_img_per_s']['avg_pool']:.1f} vs "
                 f"{r['mean_img_per_s']['reshape_mean']:.1f} img/s)") for n, r in results.items()]
        perfkit.record("pooling", out, rows, threads=args.threads, quiet=quiet,
                       command=perfkit.command_line("pooling.py", argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
