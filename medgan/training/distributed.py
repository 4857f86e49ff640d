"""``torch.distributed`` set-up for runs launched with ``torchrun``.

medgan uses PyTorch's own engine: ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous; :func:`setup` joins the process group (gloo on CPU, NCCL on CUDA). A plain
``medgan train`` is a world of one and never touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from medgan.device import rank_rows, resolve_device

__all__ = [
    "DistInfo",
    "all_reduce_mean",
    "any_rank",
    "average_gradients",
    "barrier",
    "broadcast_parameters",
    "convert_sync_batchnorm",
    "is_main_process",
    "rank_rows",
    "setup",
    "teardown",
]

_FLAG_GROUP: object | None = None  # a gloo group for host-side flags (Ctrl-C) when the main backend is NCCL


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def is_main_process() -> bool:
    """Whether this process is rank 0 of its launch (``RANK`` unset counts as 0); needs no process group, so it
    holds before :func:`setup` and after :func:`teardown`."""
    return os.environ.get("RANK", "0") == "0"


def setup(device_arg: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; return this process's place and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_arg, local)
    info = DistInfo(rank, world, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return info, device


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def teardown() -> None:
    """Leave the process group if this process joined one."""
    global _FLAG_GROUP
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _FLAG_GROUP = None


def barrier() -> None:
    """Wait for every rank (a no-op in a world of one)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(t: Tensor) -> Tensor:
    """The mean of ``t`` over ranks (a new tensor; identity in a world of one)."""
    if not _active():
        return t
    out = t.detach().clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def average_gradients(module: nn.Module) -> None:
    """Replace each parameter's gradient by its mean over ranks, in place (a no-op in a world of one).

    What DDP's reducer does during ``backward``, for a model that runs several forward passes per
    backward (a CycleGAN translator: translation, cycle and identity), which the reducer refuses.
    One flat all-reduce per call.
    """
    if not _active():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (as DDP does when it wraps a model)."""
    if not _active():
        return
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=0)


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (identity in a world of one).

    Host-side and cheap: it runs on a gloo group even when training uses NCCL, so asking every step
    never waits for the GPU.
    """
    global _FLAG_GROUP
    if not _active():
        return flag
    if _FLAG_GROUP is None:
        _FLAG_GROUP = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_FLAG_GROUP)  # type: ignore[arg-type]
    return bool(t.item())


class CrossRankBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the global batch of all ranks, on any device.

    ``torch.nn.SyncBatchNorm`` does this on GPUs only; this is its counterpart for gloo on CPU.
    Each rank's count, mean and sum of squared deviations are gathered in one differentiable
    collective and combined exactly, so forward and backward match one process at the global
    batch. Outside training, or in
    a world of one, it is an ordinary batch norm. State-dict keys are those of ``BatchNorm{2,3}d``.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 3:
            raise ValueError(f"expected a (B, C, *spatial) input, got {input.dim()}D")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and _active()):
            return super().forward(input)
        from torch.distributed import _functional_collectives as collectives

        world = dist.group.WORLD
        assert world is not None

        axes = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        # One collective per call: every rank's (count, mean, sum of squared deviations), gathered
        # and combined exactly (Chan et al.'s parallel variance), differentiably (the backward is
        # a reduce-scatter, so each rank's input gets the gradient of every rank's loss).
        count = torch.full((1,), float(input.numel() // input.shape[1]), device=input.device, dtype=input.dtype)
        local_mean = input.mean(axes)
        local_m2 = (input - local_mean.reshape(shape)).square().sum(axes)
        stats = collectives.wait_tensor(
            collectives.all_gather_single_autograd(torch.cat([count, local_mean, local_m2]).unsqueeze(0), 0, world))
        counts, means, m2s = stats[:, :1], stats[:, 1 : 1 + input.shape[1]], stats[:, 1 + input.shape[1] :]
        n = counts.sum()
        mean = (counts * means).sum(0) / n
        var = (m2s.sum(0) + (counts * (means - mean).square()).sum(0)) / n
        centred = input - mean.reshape(shape)
        out = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1), factor)
        return out


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Make every batch norm in ``module`` use the global batch's statistics under DDP.

    CUDA gets ``torch.nn.SyncBatchNorm``; CPU gets :class:`CrossRankBatchNorm`. Weights and running
    statistics are the same objects (an optimiser built earlier keeps working), and the state-dict
    keys stay the same, so checkpoints load either way.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CrossRankBatchNorm):
        new = CrossRankBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats)
        # The same Parameter and buffer objects: an optimiser built before the swap still owns them.
        for name, value in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            setattr(new, name, value)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module
