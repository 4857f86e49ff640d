"""Figure 1: medgan's training throughput against a bare PyTorch loop of the same networks, batch,
loss, augmentation and data, at 28² and 64² (2D) and 28³ and 64³ (3D).

Both loops run in this process, interleaved round by round, on the same data and the same machine
state. medgan's figure is the ``img_per_s`` its own loop logs (real images shown to D per second,
over the logging interval, so start-up, samples and checkpoints are excluded); the bare loop is
timed the same way. The ratio medgan / bare is the engine's overhead (target >= 0.95). The first
round of each setting is warm-up and is left out when there are more.

Settings use the committed cGAN configs (``cgan_breastmnist`` for 2D, ``cgan_adrenalmnist3d`` for
3D) on the real MedMNIST files when present (28 and 64 sizes), else on random stand-ins.

Usage:
    python benchmarks/perf/throughput.py [--settings 2d-28,2d-64,3d-28,3d-64] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perfkit

if TYPE_CHECKING:
    from medgan.training.config import TrainConfig


def bare_loop_images_per_s(cfg: TrainConfig, steps: int) -> float:
    """The same work as one medgan step, written as plainly as possible."""
    from medgan.data.dataset import load_dataset
    from medgan.networks import build_networks
    from medgan.training.diffaugment import AdaptiveAugment, DiffAugment
    from medgan.training.loop import model_spec
    from medgan.training.loss import GANLoss

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


# name: (config, real file, spatial dims, size, steps per round)
SETTINGS: dict[str, tuple[str, str, int, int, int]] = {
    "2d-28": ("configs/train/cgan_breastmnist.yaml", "breastmnist", 2, 28, 30),
    "2d-64": ("configs/train/cgan_breastmnist.yaml", "breastmnist_64", 2, 64, 10),
    "3d-28": ("configs/train/cgan_adrenalmnist3d.yaml", "adrenalmnist3d", 3, 28, 8),
    "3d-64": ("configs/train/cgan_adrenalmnist3d.yaml", "adrenalmnist3d_64", 3, 64, 3),
}


def measure(name: str, rounds: int, threads: int, steps: int | None, work: Path) -> dict[str, Any]:
    """Interleaved rounds of medgan and the bare loop for one setting."""
    from medgan.configio import load_config
    from medgan.training.config import TrainConfig
    from medgan.training.loop import train
    from medgan.training.snapshots import read_jsonl

    config, real, dims, size, default_steps = SETTINGS[name]
    steps = steps or default_steps
    data_path = perfkit.real_npz(real)
    data = str(data_path) if data_path is not None else str(perfkit.stand_in(work, size, dims, n=256))
    run = work / f"run_{name}"
    medgan_rates: list[float] = []
    bare_rates: list[float] = []
    others: list[float] = []
    for r in range(1, rounds + 1):
        cfg = load_config(TrainConfig, perfkit.REPO / config, [f"data={data}", f"out={run}", f"steps={r * steps}",
                                                       f"log_every={steps}", "sample_every=1000000",
                                                       "checkpoint_every=1000000", f"threads={threads}",
                                                       "device=cpu"])
        meter = perfkit.CpuMeter()
        train(cfg, resume=run if r > 1 else None, progress=False)
        medgan_rates.append(read_jsonl(run / "metrics.jsonl")[-1]["img_per_s"])
        bare_rates.append(bare_loop_images_per_s(cfg, steps))
        others.append(meter.stop()["others_cores"])
        print(f"{name} round {r}: medgan {medgan_rates[-1]:.2f} img/s, bare {bare_rates[-1]:.2f} img/s, "
              f"others {others[-1]:.2f} cores", flush=True)
    keep = slice(1, None) if rounds > 1 else slice(None)
    m = sum(medgan_rates[keep]) / len(medgan_rates[keep])
    b = sum(bare_rates[keep]) / len(bare_rates[keep])
    return {"config": config, "data": data if data_path is None else real, "size": [size] * dims,
            "steps_per_round": steps, "medgan_img_per_s": medgan_rates, "bare_img_per_s": bare_rates,
            "others_cores": others, "medgan_mean": round(m, 3), "bare_mean": round(b, 3), "ratio": round(m / b, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = perfkit.settings_parser(__doc__, SETTINGS, default=",".join(SETTINGS), rounds=3, threads=2)
    ap.add_argument("--steps", type=int, help="steps per round (default: per setting)")
    args = ap.parse_args(argv)
    names = perfkit.chosen_settings(ap, args.settings, SETTINGS)
    torch.set_num_threads(args.threads)
    quiet = True
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="perf_throughput_") as tmp:
        for name in names:
            ok, _load, _others = perfkit.wait_for_quiet(wait_s=args.wait)
            results[name] = measure(name, args.rounds, args.threads, args.steps, Path(tmp))
            quiet = quiet and ok and max(results[name]["others_cores"]) < 0.3
    out = {"figure": "training throughput, medgan loop / bare PyTorch loop (same networks, batch, loss, "
                     "augmentation, data), interleaved in one process", "target": 0.95, "rounds": args.rounds,
           "settings": results}
    print(json.dumps(out, indent=2))
    if not args.no_record:
        rows = [(f"train throughput {n} ({'×'.join(map(str, r['size']))}): medgan / bare",
                 f"{r['ratio']:.2f} ({r['medgan_mean']:.1f} vs {r['bare_mean']:.1f} img/s)") for n, r in results.items()]
        perfkit.record("throughput", out, rows, threads=args.threads, quiet=quiet,
                       command=perfkit.command_line("throughput.py", argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
