"""medgan's training step against a bare PyTorch loop of the same networks, batch and loss.

Both run in this process, interleaved round by round, on the same data and the same machine
state. medgan's figure is the ``img_per_s`` its own loop logs (real images shown to D per second,
measured over the logging interval, so start-up, samples and checkpoints are excluded); the bare
loop is timed the same way. The ratio medgan / bare is the overhead of the engine (target >= 0.95).

Usage:
    python benchmarks/train_speed.py --config configs/train/cgan_breastmnist.yaml --steps 60 --rounds 3 \
        --out benchmarks/results/train_speed_cgan_breastmnist.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from medgan.training.config import TrainConfig


def bare_loop_images_per_s(cfg: TrainConfig, steps: int) -> float:
    """The same work as one medgan step, written as plainly as possible."""
    from medgan.augment import AdaptiveAugment, DiffAugment
    from medgan.data.dataset import load_dataset
    from medgan.losses import GANLoss
    from medgan.training.loop import build_networks, model_spec

    ds = load_dataset(cfg.data, size=cfg.data_size)
    data = torch.from_numpy(ds.channel_first("train").copy())
    labels = torch.from_numpy(ds.labels["train"])
    spec = model_spec(cfg, ds)
    G, D = build_networks(spec)
    G_ema = build_networks(spec)[0].eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=tuple(cfg.betas))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=tuple(cfg.betas))
    loss = GANLoss(cfg.loss, r1_gamma=cfg.r1_gamma, r1_every=cfg.r1_every, gp_weight=cfg.gp_weight)
    aug = DiffAugment(policy=tuple(cfg.augment.policy), spatial_dims=ds.info.spatial_dims, p=cfg.augment.p)
    ada = AdaptiveAugment(p=cfg.augment.p, target=cfg.augment.target, interval=cfg.augment.interval,
                          speed_images=cfg.augment.speed_images)
    B, zd = cfg.batch_size, cfg.model.z_dim
    n = 0
    t0 = time.perf_counter()
    for step in range(steps):
        for k in range(cfg.d_steps):
            idx = torch.randint(0, len(data), (B,))
            real, y = data[idx].float() / 127.5 - 1.0, labels[idx]
            with torch.no_grad():
                fake = G(torch.randn(B, zd), y)
            d_loss, stats = loss.discriminator_loss(D, real, fake, y, step * cfg.d_steps + k, aug)
            opt_D.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_D.step()
            aug.p = ada.update(stats["d_real_sign"], B)
            n += B
        D.requires_grad_(False)
        g_loss, _ = loss.generator_loss(D, G(torch.randn(B, zd), y), y, aug)
        opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_G.step()
        D.requires_grad_(True)
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                pe.lerp_(p, 1 - cfg.ema_decay)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/train/cgan_breastmnist.yaml")
    ap.add_argument("--steps", type=int, default=60, help="steps per round and per side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from medgan.config import load_config
    from medgan.training.config import TrainConfig
    from medgan.training.loop import train
    from medgan.training.snapshots import read_jsonl

    run = Path(tempfile.mkdtemp()) / "run"
    medgan_rates, bare_rates = [], []
    for r in range(1, args.rounds + 1):
        cfg = load_config(TrainConfig, args.config, [*args.overrides, f"out={run}", f"steps={r * args.steps}",
                                                   f"log_every={args.steps}", "sample_every=1000000",
                                                   "checkpoint_every=1000000", f"threads={args.threads}",
                                                   "device=cpu"])
        train(cfg, resume=run if r > 1 else None, progress=False)
        medgan_rates.append(read_jsonl(run / "metrics.jsonl")[-1]["img_per_s"])
        bare_rates.append(bare_loop_images_per_s(cfg, args.steps))
        print(f"round {r}: medgan {medgan_rates[-1]:.1f} img/s, bare {bare_rates[-1]:.1f} img/s", flush=True)
    # The first round includes one-off warm-up on both sides; report the rest when there is a rest.
    keep = slice(1, None) if args.rounds > 1 else slice(None)
    m = sum(medgan_rates[keep]) / len(medgan_rates[keep])
    b = sum(bare_rates[keep]) / len(bare_rates[keep])
    result = {
        "figure": "training throughput, medgan loop / bare PyTorch loop (same networks, batch, loss, augmentation)",
        "config": args.config, "overrides": args.overrides, "steps_per_round": args.steps, "rounds": args.rounds,
        "medgan_img_per_s": medgan_rates, "bare_img_per_s": bare_rates,
        "medgan_mean": m, "bare_mean": b, "ratio": m / b, "target": 0.95,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "threads": args.threads,
                    "torch": torch.__version__, "load_average": os.getloadavg()},
        "command": " ".join(["python", "benchmarks/train_speed.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
