"""Process entry points for the DDP tests: one spawned process per rank, gloo on CPU.

Each rank sets the variables ``torchrun`` would set, runs :func:`medgan.training.loop.train`, and
saves what the test compares: the final G weights seen by that rank, and the step it ended on.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import torch

from medgan.training import loop
from tests.training.helpers import tiny_config


def run_rank(rank: int, world: int, port: int, data: str, out: str, overrides: list[str], report: str,
             resume: bool = False, interrupt_after: int = 0) -> None:
    """Train one rank; write ``{report}/rank{rank}.pt`` (G weights) and ``rank{rank}.json`` (step, outcome).

    ``interrupt_after > 0`` sends SIGINT to rank 1 alone after that many G updates in this process,
    as a scheduler or Ctrl-C reaching one worker first would.
    """
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    built: list[torch.nn.Module] = []
    build = loop.build_networks

    def keep_networks(spec):  # the unwrapped G is updated in place: read its weights after training
        G, D = build(spec)
        built.append(G)
        return G, D

    loop.build_networks = keep_networks  # type: ignore[assignment]
    if interrupt_after and rank == 1:
        ema_update = loop._ema_update
        calls = {"n": 0}

        def ema_then_interrupt(*args, **kwargs):
            ema_update(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == interrupt_after:
                os.kill(os.getpid(), signal.SIGINT)

        loop._ema_update = ema_then_interrupt  # type: ignore[assignment]
    cfg = tiny_config(Path(data), Path(out), *overrides)
    outcome = "done"
    try:
        result = loop.train(cfg, resume=out if resume else None, progress=False)
        step = result.step
    except loop.TrainingInterrupted as exc:
        outcome = "interrupted"
        step = exc.step
    torch.save({k: v.detach().clone() for k, v in built[0].state_dict().items()}, Path(report) / f"rank{rank}.pt")
    (Path(report) / f"rank{rank}.json").write_text(json.dumps({"step": step, "outcome": outcome}))
