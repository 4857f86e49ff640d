"""The one explicit training loop, shared by both model families.

Read :func:`train` top to bottom: set-up, data, networks, optimisers, resume, then the loop with
its D phase, G phase, EMA, augmentation control, and the logging / sampling / checkpoint
intervals. Helpers that are not part of the step live outside it.
"""

from __future__ import annotations

import copy
import functools
import os
import random
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.configio import config_to_dict, save_config
from medgan.data.dataset import PreparedDataset, class_counts, load_dataset
from medgan.data.scaling import to_model_input
from medgan.errors import MedganError, MedganWarning
from medgan.networks import build_networks, same_networks
from medgan.networks.layers import centre_of_mass
from medgan.networks.style import LatentGenerator
from medgan.training import distributed as dist_utils
from medgan.training.checkpoint import (
    RunFolder,
    check_trained_on,
    dataset_record,
    get_rng_state,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from medgan.training.config import TrainConfig, resume_conflicts
from medgan.training.loggers import JsonlLogger, Loggers, MetricsLogger
from medgan.training.schedule import Phase, phase_at, total_steps
from medgan.training.snapshots import (
    plot_loss_curves,
    read_jsonl,
    sample_grid,
    save_grid,
    standing_stats,
)
from medgan.utils import check_not_input, check_out_folder, remove_leftover_files, run_lock
from medgan.version import __version__

__all__ = ["TrainingInterrupted", "train"]


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C or SIGTERM once a checkpoint has been written; the CLI exits 128 + signal.

    ``checkpoint`` is the file rank 0 wrote (the run folder on other ranks); ``step`` the step it
    holds; ``signum`` the signal that stopped training (SIGINT unless a scheduler sent SIGTERM).
    """

    def __init__(self, checkpoint: Path, step: int = 0, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted; checkpoint written to {checkpoint}")
        self.checkpoint = checkpoint
        self.step = step
        self.signum = int(signum)


Evaluator = Callable[[nn.Module, dict[str, Any]], dict[str, float]]
"""``(G_ema, stage kwargs of G) -> metrics``: called on rank 0 every ``fid_every`` steps; the metrics
join that step's ``metrics.jsonl`` record. The caller injects it (``medgan train`` passes
:func:`medgan.metrics.training_fid.fid_evaluator`), so the loop never imports the metrics layer."""


@dataclass
class RunResult:
    """What :func:`train` returns: where the run lives and how far it got."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    seconds: float


MIN_IMAGES_PER_CLASS = 50
"""Below this many training images in a class, ``medgan train`` warns: D memorises a handful of
images within a few hundred steps, and G's samples of that class become near copies or noise
(see docs/training.md)."""


def data_warnings(class_names: list[str], train_counts: list[int], conditional: bool) -> list[str]:
    """What to tell the user about the training data before training starts (the one owner of the rule).

    Args:
        class_names: the dataset's classes.
        train_counts: training images per class.
        conditional: whether the model is class-conditional.

    Returns:
        One line per concern: classes with fewer than :data:`MIN_IMAGES_PER_CLASS` images (an empty
        class included), and a class-conditional model on a dataset with a single class. :func:`train`
        issues each as a :class:`~medgan.errors.MedganWarning` before the first step (the CLI prints
        ``warning: ...``).
    """
    out = []
    small = [f"'{n}' ({k})" for n, k in zip(class_names, train_counts, strict=True) if k < MIN_IMAGES_PER_CLASS]
    if small:
        out.append(f"fewer than {MIN_IMAGES_PER_CLASS} training images in class {', '.join(small)}; a GAN trained "
                   "on so few tends to copy them or collapse: check the memorisation metrics before using its samples")
    if conditional and len(class_names) == 1:
        out.append(f"the dataset has one class ('{class_names[0]}'); a class-conditional GAN learns nothing from "
                   "its label: set model.conditional: false (same samples, no label input)")
    return out


def mask_centre(images: np.ndarray) -> list[float]:
    """The mean centre of mass of uint8 binary masks ``(N, C, *spatial)`` (foreground: above 0 as model
    input, as for G), in voxel coordinates rounded to 3 decimals: where ``model.g_recentre`` puts every
    synthetic mask."""
    com = centre_of_mass((to_model_input(images) > 0).float())
    com = com[~com.isnan().any(1)]
    if len(com) == 0:
        raise MedganError("model.g_recentre: the training split has no foreground voxels to centre on")
    return [round(float(c), 3) for c in com.mean(0)]


def grey_floor(images: np.ndarray, share: float = 1e-3) -> float:
    """The darkest grey level holding at least ``share`` of the pixels of uint8 ``images``, as model
    input (``level / 127.5 - 1``, rounded to 6 decimals): where ``model.g_floor`` clamps G's output."""
    counts = np.bincount(np.asarray(images, dtype=np.uint8).ravel(), minlength=256)
    level = int(np.flatnonzero(counts >= share * counts.sum())[0])
    return round(level / 127.5 - 1.0, 6)


def model_spec(cfg: TrainConfig, ds: PreparedDataset) -> dict[str, Any]:
    """Constructor arguments of G and D, stored in the checkpoint so sampling can rebuild G."""
    info = ds.info
    num_classes = info.num_classes if cfg.model.conditional else 0
    size = int(info.size[0])
    if any(int(s) != size for s in info.size):
        raise MedganError(f"medgan's GANs need square images or cubic volumes; this dataset is {info.size}")
    m = cfg.model
    if m.family == "cycle":
        from medgan.training.cycle import cycle_spec

        return cycle_spec(cfg, info)
    if m.family == "residual":
        if m.g_supersample_filter == "bilinear" and info.spatial_dims != 2:
            raise MedganError("config key 'model.g_supersample_filter': 'bilinear' is for 2D images; use 'area' for volumes")
        g = dict(z_dim=m.z_dim, num_classes=num_classes, out_channels=info.channels, size=size,
                 spatial_dims=info.spatial_dims, base_channels=m.g_channels, max_channels=m.g_max_channels,
                 upsample=m.g_upsample, binary=m.g_binary, noise=m.g_noise,
                 noise_init=m.g_noise_init, supersample=m.g_supersample, sle=m.g_sle,
                 recentre=mask_centre(ds.channel_first("train")) if m.g_recentre else None,
                 floor=grey_floor(ds.images["train"]) if m.g_floor else None,
                 supersample_filter=m.g_supersample_filter, noise_map=m.g_noise_map, class_input=m.g_class_input,
                 smooth=m.g_smooth, stochastic=m.g_stochastic)
        d = dict(in_channels=info.channels, num_classes=num_classes, size=size,
                 spatial_dims=info.spatial_dims, base_channels=m.d_channels, max_channels=m.d_max_channels,
                 spectral_norm=m.d_spectral_norm, mbstd=m.d_mbstd, highpass=m.d_highpass,
                 aux=cfg.aux_weight > 0, aux_twin=cfg.aux_twin, aux_embedding=cfg.aux_loss == "d2dce",
                 recon=cfg.recon_weight > 0, unet=cfg.unet_weight > 0, depth=m.d_depth,
                 proj_weight=m.d_proj_weight)
    elif m.family == "style":
        g = dict(z_dim=m.z_dim, num_classes=num_classes, out_channels=info.channels, size=size,
                 spatial_dims=info.spatial_dims, base_channels=m.g_channels, max_channels=m.g_max_channels,
                 w_dim=m.w_dim, mapping_layers=m.mapping_layers, output=m.g_output, binary=m.g_binary)
        d = dict(in_channels=info.channels, num_classes=num_classes, size=size,
                 spatial_dims=info.spatial_dims, base_channels=m.d_channels, max_channels=m.d_max_channels,
                 spectral_norm=m.d_spectral_norm, mbstd=m.d_mbstd, highpass=m.d_highpass,
                 aux=cfg.aux_weight > 0, aux_twin=cfg.aux_twin)
    else:
        assert cfg.progressive is not None
        sched = cfg.progressive
        canvas = 1 << (size - 1).bit_length()
        if sched.target_resolution != canvas:
            raise MedganError(
                f"progressive.target_resolution is {sched.target_resolution}, but the data is {size} "
                f"(canvas {canvas}); set progressive.target_resolution: {canvas}"
            )
        g = dict(z_dim=m.z_dim, num_classes=num_classes, out_channels=info.channels, size=size,
                 spatial_dims=info.spatial_dims, start_resolution=sched.start_resolution,
                 fmap_base=m.g_channels * canvas, fmap_max=m.g_max_channels)
        d = dict(in_channels=info.channels, num_classes=num_classes, size=size,
                 spatial_dims=info.spatial_dims, start_resolution=sched.start_resolution,
                 fmap_base=m.d_channels * canvas, fmap_max=m.d_max_channels)
    return {"family": m.family, "generator": g, "discriminator": d}


class EpochSampler:
    """Maps global image positions to dataset indices: one seeded permutation per epoch.

    The batch of a step covers global positions ``[images_seen, images_seen + world * B)``; rank r
    takes its contiguous slice. The indices are a pure function of (seed, position), so resume and
    DDP see exactly the data order of a single process at the global batch size.
    """

    def __init__(self, n: int, seed: int, device: torch.device | str = "cpu") -> None:
        self.n, self.seed, self.device = n, seed, torch.device(device)
        self._cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        # Drawn on the CPU (the same order on every device), moved to the device once per epoch, so
        # picking a batch is a device-side slice: no host-to-device copy, and no sync, per step.
        if epoch not in self._cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._cache = {epoch: torch.randperm(self.n, generator=g).to(self.device)}
        return self._cache[epoch]

    def indices(self, start: int, count: int) -> torch.Tensor:
        out, pos = [], start
        while pos < start + count:
            epoch, offset = divmod(pos, self.n)
            take = min(self.n - offset, start + count - pos)
            out.append(self._perm(epoch)[offset : offset + take])
            pos += take
        return torch.cat(out)


class ClassBalancedSampler(EpochSampler):
    """An :class:`EpochSampler` whose epochs move the class mix towards every class equally often.

    Class k gets ``q_k = round(m * (n_k / m) ** (1 - power))`` of an epoch's positions, ``m`` the
    largest class's count: ``power`` 1 shows every class ``m`` times, 0.5 in proportion to the square
    root of the counts. Since ``q_k >= n_k``, each class fills its quota with back-to-back seeded
    permutations of its own images (a rarer class repeats; the cut falls on different images each
    epoch), and the positions are shuffled together. Still a pure function of (seed, position), so
    resume and DDP see the same order.
    """

    def __init__(self, labels: torch.Tensor, seed: int, device: torch.device | str = "cpu",
                 power: float = 1.0) -> None:
        labels = labels.detach().cpu().long().reshape(-1)
        self._members = [torch.nonzero(labels == k).flatten() for k in torch.unique(labels).tolist()]
        m = max(len(members) for members in self._members)
        self._quota = [max(len(members), round(m * (len(members) / m) ** (1.0 - power))) for members in self._members]
        super().__init__(sum(self._quota), seed, device)

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            filled = []
            for members, q in zip(self._members, self._quota, strict=True):
                reps = -(-q // len(members))
                filled.append(torch.cat([members[torch.randperm(len(members), generator=g)] for _ in range(reps)])[:q])
            virtual = torch.cat(filled)
            self._cache = {epoch: virtual[torch.randperm(len(virtual), generator=g)].to(self.device)}
        return self._cache[epoch]


def _prepare_run_dir(cfg: TrainConfig, resume: bool, overwrite: bool, is_main: bool) -> Path:
    run_dir = Path(cfg.out)
    occupied = not resume and run_dir.is_dir() and any(run_dir.iterdir())
    if occupied and not overwrite:  # every rank sees this before rank 0 changes anything
        raise MedganError("run folder exists and is not empty (use --resume to continue it, or --overwrite)", run_dir)
    dist_utils.barrier()
    if is_main and occupied:
        import shutil

        shutil.rmtree(run_dir)
    if is_main:
        layout = RunFolder(run_dir)
        layout.samples.mkdir(parents=True, exist_ok=True)
        layout.checkpoints.mkdir(parents=True, exist_ok=True)
    return run_dir


def _set_determinism(cfg: TrainConfig, device: torch.device) -> None:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    ema_p: list[torch.Tensor] = list(ema.parameters())
    src_p: list[torch.Tensor] = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_p, src_p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


def _accumulate(acc: dict[str, torch.Tensor], counts: dict[str, int], stats: dict[str, torch.Tensor]) -> None:
    """Sum detached stats on the device (no host sync); ``counts`` says how many steps had each."""
    for key, v in stats.items():
        acc[key] = acc[key] + v.detach().float() if key in acc else v.detach().float()
        counts[key] = counts.get(key, 0) + 1


def _init_from(source: str | Path, spec: dict[str, Any], nets: tuple[nn.Module, nn.Module, nn.Module],
               device: torch.device) -> None:
    """Start ``(G, D, G_ema)`` from another run's weights (config key ``init_from``): transfer from a GAN
    trained on other data. Its networks must be the ones ``spec`` builds; nothing else comes along."""
    ckpt = load_checkpoint(source, map_location=device)
    if not same_networks(ckpt["model"], spec):
        raise MedganError("config key 'init_from': that checkpoint's model does not match this config "
                          "(family, sizes or classes differ)", ckpt["path"])
    _load_networks(ckpt, nets)


def _load_networks(ckpt: dict[str, Any], nets: tuple[nn.Module, nn.Module, nn.Module]) -> None:
    """``(G, D, G_ema)`` take a checkpoint's weights (resume and ``init_from``)."""
    for net, key in zip(nets, ("G", "D", "G_ema"), strict=True):
        net.load_state_dict(ckpt[key])


def _freeze_d_blocks(D: nn.Module, n: int) -> None:
    """FreezeD (config key ``d_freeze``): D's first ``n`` blocks take no gradient."""
    if n:
        blocks = _unwrap(D).blocks
        if n >= len(blocks):
            raise MedganError(f"config key 'd_freeze' is {n}, but D has {len(blocks)} blocks; freeze fewer "
                              "(its last block and head must learn)")
        blocks[:n].requires_grad_(False)


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


class _StopSignals:
    """Within ``with``: SIGINT and SIGTERM set ``flag`` (and ``signum``) instead of ending the
    process, so the loop can finish its step and checkpoint. The previous handlers come back on
    exit, whether training ended, stopped or raised."""

    caught = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.flag, self.signum = False, int(signal.SIGINT)
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.flag, self.signum = True, signum

    def __enter__(self) -> _StopSignals:
        for sig in self.caught:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@contextmanager
def _rng_untouched(device: torch.device) -> Iterator[None]:
    """Run a block (an evaluation) and put torch's, NumPy's and Python's global random streams back as
    they were: a run with ``fid_every`` then trains the same weights as one without."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield
    np.random.set_state(np_state)
    random.setstate(py_state)


def _latents(batch: int, z_dim: int, device: torch.device) -> torch.Tensor:
    """This rank's ``(batch, z_dim)`` latents: its rows of one draw for the global batch."""
    return dist_utils.rank_rows(lambda n: torch.randn(n, z_dim, device=device), batch)


@torch.no_grad()
def _track_w_avg(G: LatentGenerator, z: torch.Tensor, y: torch.Tensor | None) -> None:
    """Move a style generator's per-class mean ``w`` (for truncation) towards this step's batch.

    The class sums and counts are averaged over the ranks, so every rank (and a single process at
    the global batch) applies the same update. A one-hot product, not ``index_add_``: deterministic on CUDA.
    """
    w = G.mapping(z, y).float()  # (B, w_dim)
    k = G.w_avg.shape[0]
    idx = y if y is not None else torch.zeros(len(z), dtype=torch.long, device=z.device)
    onehot = torch.nn.functional.one_hot(idx, k).float()  # (B, K)
    stats = dist_utils.all_reduce_mean(torch.cat([onehot.T @ w, onehot.sum(0, keepdim=True).T], dim=1))  # (K, w_dim + 1)
    G.update_w_avg(stats[:, :-1], stats[:, -1])


def _phase(cfg: TrainConfig, step: int) -> Phase | None:
    return phase_at(step, cfg.progressive) if cfg.progressive is not None else None


def lr_scale(step: int, steps: int, decay_from: float) -> float:
    """The factor on both learning rates at ``step`` (0-based) of ``steps``: 1 before ``decay_from × steps``,
    then linear towards 0, reached one step after the last (``lr_decay_from`` in the config).

    Example:
        >>> [lr_scale(s, 4, 0.5) for s in range(4)]
        [1.0, 1.0, 1.0, 0.5]
    """
    start = decay_from * steps
    if step <= start or start >= steps:
        return 1.0
    return max(0.0, (steps - step) / (steps - start))


def _real_batch(data_u8: torch.Tensor, labels: torch.Tensor | None, sampler: EpochSampler, images_seen: int,
                dist: dist_utils.DistInfo, batch: int, device: torch.device, phase: Phase | None,
                cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """This rank's slice of the global batch at ``images_seen``, as floats in [-1, 1] on the device."""
    idx = sampler.indices(images_seen + dist.rank * batch, batch)
    real = to_model_input(data_u8[idx])  # (B, C, *spatial)
    if phase is not None:
        from medgan.networks.progressive import prepare_real

        sched = cfg.progressive
        assert sched is not None
        real = prepare_real(real, phase.stage, phase.alpha, canvas=sched.target_resolution,
                            start_resolution=sched.start_resolution)
    return real, (labels[idx] if labels is not None else None)


def train(cfg: TrainConfig, *, resume: str | Path | None = None, overwrite: bool = False,
          progress: bool = True, evaluator: Evaluator | None = None,
          logger: MetricsLogger | None = None,
          member_evaluator: Callable[[TrainConfig], Evaluator] | None = None) -> RunResult:
    """Train a GAN as ``cfg`` says; write the run folder; return where it ended.

    Args:
        cfg: the resolved training config.
        resume: a run folder or checkpoint to continue from (exactly: weights, optimisers, EMA,
            augmentation state, RNG states and step are restored).
        overwrite: replace a non-empty run folder instead of refusing.
        progress: show a Rich progress bar.
        evaluator: what ``fid_every`` runs (see :data:`Evaluator`); needed when ``fid_every > 0``.
        logger: where every log record and sample grid also goes, besides ``metrics.jsonl`` and
            ``samples/`` (rank 0 only), e.g. :func:`medgan.training.loggers.make_logger` for
            ``logger: tensorboard``.
        member_evaluator: with ``per_class``, builds each class GAN's evaluator from that member's config
            (its data is the class alone); needed when ``fid_every > 0``. ``evaluator`` and ``logger`` are not
            used by a per-class run, whose members each log to their own ``metrics.jsonl``.

    Raises:
        MedganError: bad data, config or checkpoint; a non-finite loss.
        TrainingInterrupted: after Ctrl-C, once a checkpoint has been written.

    The run folder is checked first (it can be a folder here; a new run never replaces its own
    training data) and held with :func:`medgan.utils.run_lock` while training, so a second run into
    the same folder is refused.

    With ``cfg.per_class`` it trains one unconditional GAN per class instead, one after another, and writes
    the checkpoint that samples each class from its own (:mod:`medgan.training.perclass`); ``resume``
    continues each member from its latest checkpoint.
    """
    run_dir = Path(cfg.out)
    check_out_folder(run_dir)
    if resume is None:  # a resumed run continues in place and deletes nothing
        target = getattr(getattr(cfg, "cycle", None), "target_data", None)
        datasets = {"the training data": cfg.data, "the target domain's data": target}
        paths = {what: Path(str(d)).expanduser() for what, d in datasets.items() if d is not None}
        check_not_input(run_dir, {what: p for what, p in paths.items() if p.exists()})
    # One run per folder; under torchrun, rank 0 holds the lock for every rank.
    is_main = dist_utils.is_main_process()
    with run_lock(run_dir) if is_main else nullcontext():
        if is_main and run_dir.is_dir():
            remove_leftover_files(run_dir)  # half-written checkpoints of a run that was killed
        if cfg.per_class:
            return _train_per_class(cfg, resume=resume is not None, overwrite=overwrite, progress=progress,
                                    member_evaluator=member_evaluator)
        return _train(cfg, resume=resume, overwrite=overwrite, progress=progress, evaluator=evaluator, logger=logger)


def _train_per_class(cfg: TrainConfig, *, resume: bool, overwrite: bool, progress: bool,
                     member_evaluator: Callable[[TrainConfig], Evaluator] | None) -> RunResult:
    """``per_class``: each class's GAN in its own run folder, then the composite (:mod:`medgan.training.perclass`)."""
    from medgan.data.dataset import class_slugs
    from medgan.training import perclass

    t_start = time.perf_counter()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise MedganError("per_class trains its class GANs one after another in one process; run it without torchrun")
    if cfg.fid_every and member_evaluator is None:
        raise ValueError("per_class with fid_every > 0 needs member_evaluator=medgan.metrics.training_fid.fid_evaluator "
                         "(medgan train passes it)")
    run_dir = Path(cfg.out)
    layout = RunFolder(run_dir)
    if not resume and run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise MedganError("run folder exists and is not empty (use --resume to continue it, or --overwrite)", run_dir)
        import shutil

        shutil.rmtree(run_dir)
    ds = load_dataset(cfg.data, size=cfg.data_size)
    layout.checkpoints.mkdir(parents=True, exist_ok=True)
    save_config(cfg, layout.config)
    layout.selection.unlink(missing_ok=True)  # a pick among the old checkpoints; training changes them
    results = []
    for c, slug in enumerate(class_slugs(list(ds.info.class_names))):
        member = perclass.member_config(cfg, perclass.write_class_data(ds, c, layout.class_data(slug)),
                                        layout.class_run(slug))
        again = resume and bool(list_checkpoints(layout.class_run(slug)))
        result = train(member, resume=layout.class_run(slug) if again else None, overwrite=True, progress=progress,
                       evaluator=member_evaluator(member) if member.fid_every and member_evaluator else None)
        assert result.checkpoint is not None
        results.append(result)
    path = perclass.write_composite(run_dir, [r.checkpoint for r in results if r.checkpoint is not None],
                                    perclass.base_record(cfg, ds.info))
    return RunResult(run_dir=run_dir, step=max(r.step for r in results), checkpoint=path,
                     seconds=time.perf_counter() - t_start)


def _train(cfg: TrainConfig, *, resume: str | Path | None, overwrite: bool, progress: bool,
           evaluator: Evaluator | None, logger: MetricsLogger | None = None) -> RunResult:
    """The body of :func:`train`, once the run folder is checked and locked."""
    t_start = time.perf_counter()
    if cfg.fid_every and evaluator is None:
        raise ValueError("fid_every > 0 needs an evaluator: pass evaluator=medgan.metrics.training_fid.fid_evaluator(cfg) "
                         "(medgan train does)")

    # Set-up: processes, device, determinism, seeds.
    dist, device = dist_utils.setup(cfg.device)
    _set_determinism(cfg, device)
    # One RNG stream for all ranks: each draws noise for the global batch and keeps its own rows
    # (dist_utils.rank_rows), so N processes at batch B train like one process at batch N * B.
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    import random

    random.seed(cfg.seed)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if device.type == "cuda" and cfg.amp == "bf16" else nullcontext())

    # Data: the whole training split lives on the device as uint8 (N, C, *spatial).
    ds = load_dataset(cfg.data, size=cfg.data_size)
    data_u8 = torch.from_numpy(np.ascontiguousarray(ds.channel_first("train"))).to(device)
    labels = torch.from_numpy(ds.labels["train"]).to(device)
    n_images = data_u8.shape[0]
    info = ds.info
    spec = model_spec(cfg, ds)
    conditional = spec["generator"]["num_classes"] > 0
    sampler = (ClassBalancedSampler(labels, cfg.seed, device, power=float(cfg.class_balance)) if cfg.class_balance
               else EpochSampler(n_images, cfg.seed, device))
    # The cycle family translates between two domains: its data and its step are medgan.training.cycle's.
    cycle = None
    if spec["family"] == "cycle":
        from medgan.training.cycle import CycleStep

        cycle = CycleStep(cfg, ds, data_u8, labels, device, EpochSampler, rank=dist.rank, world_size=dist.world_size)

    # Networks, EMA, optimisers, loss, augmentation.
    G, D = build_networks(spec)
    G, D = G.to(device), D.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    betas = (cfg.betas[0], cfg.betas[1])
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=betas)
    from medgan.training.diffaugment import AdaptiveAugment, DiffAugment
    from medgan.training.loss import GANLoss

    loss = GANLoss(cfg.loss, r1_gamma=cfg.r1_gamma, r1_every=cfg.r1_every, gp_weight=cfg.gp_weight,
                   pl_weight=cfg.pl_weight, pl_every=cfg.pl_every, spectral_weight=cfg.spectral_weight,
                   aux_weight=cfg.aux_weight, aux_twin=cfg.aux_twin, aux_loss=cfg.aux_loss, lecam_weight=cfg.lecam_weight,
                   recon_weight=cfg.recon_weight, unet_weight=cfg.unet_weight,
                   unet_cutmix=cfg.unet_cutmix, class_mean_weight=cfg.class_mean_weight,
                   class_depth_weight=cfg.class_depth_weight)
    if cfg.class_mean_weight > 0:
        from medgan.training.loss import class_mean_targets

        loss.set_class_means(class_mean_targets(data_u8, labels, info.num_classes))
    if cfg.class_depth_weight > 0:
        from medgan.training.loss import class_depth_targets

        loss.set_class_depths(class_depth_targets(data_u8, labels, info.num_classes))
    # The style family exposes its w: path-length regularisation and the per-class mean w for truncation.
    exposes_w = isinstance(G, LatentGenerator)
    if cfg.pl_weight > 0 and not exposes_w:
        raise MedganError(f"config key 'pl_weight' needs a generator that exposes its w (model.family: style); "
                          f"model.family '{spec['family']}' does not")
    augment = DiffAugment(policy=tuple(cfg.augment.policy), spatial_dims=info.spatial_dims, p=cfg.augment.p,
                          fill=cfg.augment.fill).to(device)
    ada = (AdaptiveAugment(p=cfg.augment.p, target=cfg.augment.target, interval=cfg.augment.interval,
                           speed_images=cfg.augment.speed_images, p_max=cfg.augment.p_max)
           if cfg.augment.adaptive and cfg.augment.policy else None)
    ada_stat = "d_real_sign" if cfg.augment.statistic == "sign" else "d_real_centred_sign"
    use_aug = bool(cfg.augment.policy) and (cfg.augment.adaptive or cfg.augment.p > 0)

    if cfg.init_from is not None and resume is None:
        _init_from(cfg.init_from, spec, (G, D, G_ema), device)
    _freeze_d_blocks(D, cfg.d_freeze)

    # Resume: everything that shapes the next step comes back from the checkpoint.
    step, images_seen = 0, 0
    resumed_from: Path | None = None  # the last checkpoint until this run writes a newer one
    if resume is not None:
        ckpt = load_checkpoint(resume, map_location=device)
        check_trained_on(ckpt["dataset"], ckpt["class_names"], info, "data", ckpt["path"])
        if cycle is not None:
            cycle.check_resume(ckpt)
        if not same_networks(ckpt["model"], spec):
            raise MedganError("checkpoint's model does not match this config (family, sizes or classes differ)", ckpt["path"])
        conflicts = resume_conflicts(ckpt.get("config") or {}, cfg)
        if conflicts:
            shown = ", ".join(conflicts[:4]) + (", …" if len(conflicts) > 4 else "")
            raise MedganError(f"this config differs from the run's own in {shown}: a resumed run continues exactly "
                              "only with the config it started with (give --resume alone; only steps, device, "
                              "threads and the reporting intervals may change), or start a new run", ckpt["path"])
        _load_networks(ckpt, (G, D, G_ema))
        opt_G.load_state_dict(ckpt["opt_G"])
        opt_D.load_state_dict(ckpt["opt_D"])
        if "loss" in ckpt:
            loss.load_state_dict(ckpt["loss"])
        if ada is not None and ckpt.get("augment"):
            ada.load_state_dict(ckpt["augment"])
            augment.p = ada.p
        step, images_seen = int(ckpt["step"]), int(ckpt["images_seen"])
        resumed_from = Path(ckpt["path"])
        set_rng_state(ckpt["rng"][dist.rank] if isinstance(ckpt["rng"], list) else ckpt["rng"])
        del ckpt
    last_step = cfg.steps if cfg.steps is not None else total_steps(cfg.progressive)  # type: ignore[arg-type]

    # Distributed: DDP averages gradients; G's batch norm uses the statistics of the global batch;
    # G_ema, ADA and the spectral-norm vectors stay identical on all ranks because their inputs are
    # (so no buffer broadcast is needed).
    if dist.enabled and cycle is not None:
        # Each translator runs several forwards per backward (translation, cycle, identity), which
        # DDP's reducer refuses: the cycle step averages the gradients itself (CycleStep.step).
        for net in (G, D, G_ema):
            dist_utils.broadcast_parameters(net)
    elif dist.enabled:
        find_unused = spec["family"] == "progressive"
        ddp_kw: dict[str, Any] = {"device_ids": [device.index]} if device.type == "cuda" else {}
        G = dist_utils.convert_sync_batchnorm(G, device)
        G = nn.parallel.DistributedDataParallel(G, find_unused_parameters=find_unused, forward_sync_buffers=False,
                                                **ddp_kw)
        D = nn.parallel.DistributedDataParallel(D, find_unused_parameters=find_unused, forward_sync_buffers=False,
                                                **ddp_kw)
    D_raw = _unwrap(D)

    # Run folder, config and fixed grid latents (their own generator: the training RNG is untouched).
    run_dir = _prepare_run_dir(cfg, resume is not None, overwrite, dist.is_main)
    layout = RunFolder(run_dir)
    if dist.is_main:
        save_config(cfg, layout.config)
        layout.selection.unlink(missing_ok=True)  # a pick among the old checkpoints; training changes them
    dist_utils.barrier()
    rows = info.num_classes if conditional else 1
    grid_gen = torch.Generator().manual_seed(cfg.seed + 12345)
    z_grid = torch.randn(rows * cfg.grid_columns, cfg.model.z_dim, generator=grid_gen).to(device)
    y_grid = torch.arange(rows).repeat_interleave(cfg.grid_columns).to(device) if conditional else None

    # Ctrl-C (SIGINT) or a scheduler's SIGTERM: finish the step, checkpoint, stop. Under torchrun
    # every rank gets the signal; the ranks agree on stopping after each step.
    stop = _StopSignals()

    def all_finite() -> bool:
        if not dist.enabled:
            return bool(finite)
        return bool(dist_utils.all_reduce_mean(finite.float()) == 1.0)

    def checkpoint(at_step: int) -> Path:
        next_phase = _phase(cfg, at_step)
        state = {
            "medgan_version": __version__,
            "step": at_step, "images_seen": images_seen,
            "G": _unwrap(G).state_dict(), "D": D_raw.state_dict(), "G_ema": G_ema.state_dict(),
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(), "loss": loss.state_dict(),
            "augment": ada.state_dict() if ada is not None else {"p": float(augment.p)},
            # The phase training continues in: what a resumed run (or a sampler) is at.
            "stage": next_phase.stage if next_phase is not None else 0,
            "alpha": next_phase.alpha if next_phase is not None else 1.0,
            "rng": rng_states,
            "config": config_to_dict(cfg), "class_names": list(info.class_names),
            "dataset": dataset_record(info),
            "model": spec,
            **({"cycle": cycle.record()} if cycle is not None else {}),
        }
        path = save_checkpoint(state, layout.checkpoint(at_step))
        prune_checkpoints(run_dir, cfg.keep_checkpoints)
        return path

    def gather_rng() -> Any:
        local = get_rng_state()
        if not dist.enabled:
            return local
        box: list[Any] = [None] * dist.world_size
        torch.distributed.all_gather_object(box, local)
        return box

    # Warnings about the data, once every check that can refuse the run has passed (an error stays one line).
    if dist.is_main:
        for text in data_warnings(info.class_names, class_counts(ds.labels["train"], info.num_classes),
                                  bool(cfg.model.conditional)):
            warnings.warn(text, MedganWarning, stacklevel=3)

    # The loop.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), disable=not (progress and dist.is_main), transient=False)
    task = bar.add_task("", total=last_step, completed=step)
    acc: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    finite = torch.ones((), dtype=torch.bool, device=device)
    last_ckpt: Path | None = resumed_from
    t_log, images_at_log = time.perf_counter(), images_seen
    phase = _phase(cfg, step)
    # Every record goes to metrics.jsonl, and to the caller's logger (TensorBoard) when given.
    sinks = Loggers([JsonlLogger(layout.metrics), logger] if dist.is_main else [])
    sinks.start(step)
    with bar, stop, closing(sinks):
        while step < last_step:
            phase = _phase(cfg, step)
            batch = phase.batch_size if phase is not None else cfg.batch_size
            g_kw = {"stage": phase.stage, "alpha": phase.alpha} if phase is not None else {}
            scale = lr_scale(step, last_step, cfg.lr_decay_from)
            if (phase is not None and phase.lr is not None) or scale != 1.0:
                # A progressive schedule's rate is G's; D keeps the config's ratio (two-time-scale updates).
                lr_g, lr_d = (phase.lr, phase.lr * cfg.lr_d / cfg.lr_g) if phase is not None and phase.lr is not None \
                    else (cfg.lr_g, cfg.lr_d)
                for opt, lr in ((opt_G, lr_g * scale), (opt_D, lr_d * scale)):
                    for group in opt.param_groups:
                        group["lr"] = lr

            aug_fn = augment if use_aug else None
            d_call = functools.partial(D, **g_kw) if g_kw else D

            if cycle is not None:
                # The cycle family: both translators' G phase, then both patch discriminators' D phase
                # (medgan.training.cycle.CycleStep); one batch of each domain per step.
                g_loss, d_stats, g_stats = cycle.step(G, D, opt_G, opt_D, images_seen, batch, aug_fn, autocast)
                if ada is not None:
                    ada.update(d_stats[ada_stat], 2 * batch * dist.world_size)
                    augment.p = ada.p
                images_seen += 2 * batch * dist.world_size
                finite &= torch.isfinite(d_stats["d_loss"])
                _accumulate(acc, counts, d_stats)
            else:
                # D phase: d_steps updates, each on a fresh slice of the data order.
                D_raw.requires_grad_(True)
                _freeze_d_blocks(D_raw, cfg.d_freeze)
                for k in range(cfg.d_steps):
                    real, y = _real_batch(data_u8, labels if conditional else None, sampler, images_seen, dist, batch,
                                          device, phase, cfg)
                    with autocast:
                        z = _latents(batch, cfg.model.z_dim, device)
                        with torch.no_grad():
                            fake = G(z, y, **g_kw)
                        d_loss, d_stats = loss.discriminator_loss(d_call, real, fake, y, step * cfg.d_steps + k, aug_fn)
                    opt_D.zero_grad(set_to_none=True)
                    d_loss.backward()
                    opt_D.step()
                    if ada is not None:
                        ada.update(d_stats[ada_stat], batch * dist.world_size)
                        augment.p = ada.p
                    images_seen += batch * dist.world_size
                    finite &= torch.isfinite(d_loss.detach())
                    _accumulate(acc, counts, d_stats)

                # G phase: D is frozen and called unwrapped, so DDP syncs only G's gradients.
                D_raw.requires_grad_(False)
                d_frozen = functools.partial(D_raw, **g_kw) if g_kw else D_raw
                with autocast:
                    z = _latents(batch, cfg.model.z_dim, device)
                    fake = G(z, y, **g_kw)
                    # The spectral term's target is the last D step's real batch (the same resolution).
                    g_loss, g_stats = loss.generator_loss(d_frozen, fake, y, aug_fn, real=real)
                opt_G.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_G.step()

                # Path-length regularisation (lazy, its own G update, as StyleGAN2) and the per-class
                # mean w, for a generator that exposes its w.
                if exposes_w and loss.pl_due(step):
                    with autocast:
                        pl_loss, pl_stats = loss.path_length_loss(G, _latents(batch, cfg.model.z_dim, device), y)
                    opt_G.zero_grad(set_to_none=True)
                    pl_loss.backward()
                    opt_G.step()
                    finite &= torch.isfinite(pl_loss.detach())
                    _accumulate(acc, counts, pl_stats)
                if exposes_w:
                    _track_w_avg(_unwrap(G), z, y)  # type: ignore[arg-type]

            # EMA.
            # A short warm-up: early on, G_ema follows G closely instead of averaging the random init.
            _ema_update(G_ema, _unwrap(G), min(cfg.ema_decay, (1 + step) / (10 + step)))
            step += 1
            finite &= torch.isfinite(g_loss.detach())
            _accumulate(acc, counts, g_stats)
            bar.advance(task)
            if dist.enabled:
                stop.flag = dist_utils.any_rank(stop.flag)

            # Intervals: logging, samples, checkpoints (the only places the host waits for the device).
            at_end = step == last_step
            if step % cfg.log_every == 0 or at_end or stop.flag:
                if not all_finite():
                    raise MedganError(
                        f"non-finite loss by step {step}; training stopped. The last good checkpoint is "
                        f"{last_ckpt or 'none (no checkpoint was written yet)'}; try a lower learning rate or r1_gamma > 0"
                    )
                now = time.perf_counter()
                record: dict[str, Any] = {"step": step, "images_seen": images_seen}
                if dist.enabled:  # the logged losses are means over all ranks' batches
                    keys = sorted(acc)
                    acc = dict(zip(keys, dist_utils.all_reduce_mean(torch.stack([acc[k] for k in keys])), strict=True))
                record.update({k: round(float(v) / counts[k], 6) for k, v in acc.items()})
                record["aug_p"] = round(float(ada.p if ada is not None else augment.p), 6)
                record["img_per_s"] = round((images_seen - images_at_log) / max(now - t_log, 1e-9), 2)
                if phase is not None:
                    record["stage"], record["alpha"], record["resolution"] = phase.stage, round(phase.alpha, 6), phase.resolution
                if evaluator is not None and cfg.fid_every and (step % cfg.fid_every == 0 or at_end) and dist.is_main:
                    # G_ema as its checkpoint will sample: its batch-norm statistics re-estimated for its
                    # weights (each step copies G's into it); then evaluated without touching the run.
                    standing_stats(G_ema, cfg.model.z_dim, spec["generator"]["num_classes"], batch * dist.world_size,
                                   device, cfg.seed + 4242, g_kwargs=g_kw)
                    with _rng_untouched(device):  # evaluating must not change what the run trains
                        record.update(evaluator(G_ema, g_kw))
                acc, counts, t_log, images_at_log = {}, {}, now, images_seen
                if dist.is_main:
                    sinks.log_metrics(step, record)
                    bar.update(task, description=f"D {record.get('d_loss', 0):.3f} G {record.get('g_loss', 0):.3f} "
                                                 f"p {record['aug_p']:.2f} {record['img_per_s']:.0f} img/s")
            wants_sample = dist.is_main and (step % cfg.sample_every == 0 or at_end or stop.flag)
            if wants_sample or step % cfg.checkpoint_every == 0 or at_end or stop.flag:
                # The global batch: every rank estimates the same statistics as one process would.
                standing_stats(G_ema, cfg.model.z_dim, spec["generator"]["num_classes"], batch * dist.world_size, device,
                               cfg.seed + 4242, g_kwargs=g_kw)
            if wants_sample:
                grid = (cycle.grid(G_ema) if cycle is not None
                        else sample_grid(G_ema, z_grid, y_grid, rows, phase, int(info.size[0])))
                save_grid(grid, layout.sample_grid(step), scale=2 if info.size[0] <= 32 else 1)
                sinks.log_image("samples", grid, step)
            if step % cfg.checkpoint_every == 0 or at_end or stop.flag:
                if not all_finite():
                    raise MedganError(f"non-finite loss by step {step}; training stopped; last good checkpoint: {last_ckpt}")
                rng_states = gather_rng()
                if dist.is_main:
                    last_ckpt = checkpoint(step)
                dist_utils.barrier()
            if stop.flag:
                break

    # Wrap-up: curves, process group.
    if dist.is_main:
        plot_loss_curves(read_jsonl(layout.metrics), layout.loss_curves)
    dist_utils.barrier()
    seconds = time.perf_counter() - t_start
    if stop.flag:
        dist_utils.teardown()
        raise TrainingInterrupted(last_ckpt or run_dir, step, stop.signum)
    dist_utils.teardown()
    return RunResult(run_dir=run_dir, step=step, checkpoint=last_ckpt, seconds=seconds)
