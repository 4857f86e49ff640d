"""DDP on CPU (gloo, 2 processes): the same training as one process at the global batch, and exact resume.

Tolerance. The two runs do the same arithmetic in a different order: DDP averages two half-batch
gradients where one process reduces over the whole batch, and the cross-rank batch norm sums two
partial statistics. Those float32 rounding differences (about 1e-7 relative) pass through 20 Adam
steps, whose update ``m / sqrt(v)`` does not shrink them. The bar is therefore 1e-5 absolute on every
G weight, as the issue asks; the measured maximum is printed by the test when it fails.
"""

from __future__ import annotations

import copy
import json
import socket

import pytest
import torch
import torch.multiprocessing as mp

from medgan.training.loop import train
from tests.conftest import make_banded_toy
from tests.training.ddp_worker import run_rank
from tests.training.helpers import tiny_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")

STEPS = 20
# ADA moves p every D step and R1 runs every other step: the stochastic parts all take part.
COMMON = [f"steps={STEPS}", "log_every=5", "sample_every=10", "checkpoint_every=10", "threads=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path, data, out, overrides, tag, resume=False, interrupt_after=0):
    report = tmp_path / f"report_{tag}"
    report.mkdir()
    mp.start_processes(run_rank, args=(2, _free_port(), str(data), str(out), overrides, str(report), resume,
                                       interrupt_after), nprocs=2, start_method="spawn", join=True)
    weights = [torch.load(report / f"rank{r}.pt") for r in range(2)]
    info = [json.loads((report / f"rank{r}.json").read_text()) for r in range(2)]
    return weights, info


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_banded_toy(tmp_path_factory.mktemp("ddp_data"), size=16, n=64)


@pytest.fixture(scope="module")
def single(toy, tmp_path_factory):
    """One process at batch 8: the reference the 2-rank runs at batch 4 each must reproduce."""
    out = tmp_path_factory.mktemp("single") / "run"
    torch.set_num_threads(1)
    result = train(tiny_config(toy, out, *COMMON, "batch_size=8"), progress=False)
    ckpt = torch.load(result.checkpoint, weights_only=False)
    return ckpt, out


def test_two_ranks_at_batch_b_train_like_one_process_at_2b(toy, single, tmp_path):
    ref, _ = single
    out = tmp_path / "ddp"
    weights, info = _launch(tmp_path, toy, out, [*COMMON, "batch_size=4"], "ddp")
    assert [i["step"] for i in info] == [STEPS, STEPS]
    assert _max_diff(weights[0], weights[1]) == 0.0  # the ranks hold the same G, bit for bit
    diff = _max_diff(weights[0], ref["G"])
    assert diff < 1e-5, f"max |G_ddp - G_single| = {diff:.3g}"
    # Only rank 0 wrote: one metrics log, checkpoints at 10 and 20, the same images seen.
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
    assert ckpts == ["step_000010.pt", "step_000020.pt"]
    ddp_ckpt = torch.load(out / "checkpoints" / "step_000020.pt", weights_only=False)
    assert ddp_ckpt["images_seen"] == ref["images_seen"] == STEPS * 2 * 8
    assert _max_diff(ddp_ckpt["G_ema"], ref["G_ema"]) < 1e-5
    assert ddp_ckpt["augment"]["p"] == pytest.approx(ref["augment"]["p"], abs=1e-9)  # ADA agreed over ranks
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [5, 10, 15, 20]


def test_interrupting_one_rank_stops_both_and_resume_continues_exactly(toy, single, tmp_path):
    ref, _ = single
    out = tmp_path / "ddp"
    overrides = [*COMMON, "batch_size=4"]
    # SIGINT reaches rank 1 only, after its 7th step: both ranks stop at step 7 and rank 0 checkpoints.
    weights, info = _launch(tmp_path, toy, out, overrides, "stop", interrupt_after=7)
    assert info == [{"step": 7, "outcome": "interrupted"}] * 2
    assert _max_diff(weights[0], weights[1]) == 0.0
    assert (out / "checkpoints" / "step_000007.pt").is_file()
    # Resume on 2 ranks: both continue from step 7 and finish at step 20 on the same weights.
    weights, info = _launch(tmp_path, toy, out, overrides, "resume", resume=True)
    assert info == [{"step": STEPS, "outcome": "done"}] * 2
    assert _max_diff(weights[0], weights[1]) == 0.0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 7, 10, 15, 20]  # no step trained twice or skipped
    diff = _max_diff(weights[0], ref["G"])
    assert diff < 1e-5, f"max |G_resumed - G_single| = {diff:.3g}"


def test_convert_sync_batchnorm_keeps_parameters_keys_and_single_process_behaviour():
    from medgan.training.distributed import CrossRankBatchNorm, convert_sync_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    reference = copy.deepcopy(net)
    params_before = [id(p) for p in net.parameters()]
    keys_before = list(net.state_dict())
    converted = convert_sync_batchnorm(net, torch.device("cpu"))
    assert isinstance(converted[1], CrossRankBatchNorm)
    assert [id(p) for p in converted.parameters()] == params_before  # an optimiser built earlier still owns them
    assert list(converted.state_dict()) == keys_before  # checkpoints load either way
    x = torch.randn(6, 1, 8, 8)
    # In a world of one it is an ordinary batch norm, in training and in eval mode.
    assert torch.allclose(converted(x), reference(x))
    assert torch.equal(converted[1].running_mean, reference[1].running_mean)
    converted.eval()
    reference.eval()
    assert torch.allclose(converted(x), reference(x))


# Half the steps of the residual tests: path length runs every other step, so 10 steps cover it.
STYLE = ["model.family=style", "model.w_dim=16", "model.mapping_layers=2", "model.d_spectral_norm=false",
         "model.d_mbstd=true", "pl_weight=2", "pl_every=2", "steps=10"]


def test_style_family_two_ranks_train_like_one_process(toy, tmp_path):
    """Noise inputs, path length (its running mean) and the per-class mean w all follow the global batch."""
    torch.set_num_threads(1)
    ref = torch.load(train(tiny_config(toy, tmp_path / "single", *COMMON, *STYLE, "batch_size=8"),
                           progress=False).checkpoint, weights_only=False)
    out = tmp_path / "ddp"
    weights, info = _launch(tmp_path, toy, out, [*COMMON, *STYLE, "batch_size=4"], "style")
    assert [i["step"] for i in info] == [10, 10]
    assert _max_diff(weights[0], weights[1]) == 0.0  # same G on both ranks, w_avg and noise buffers included
    diff = _max_diff(weights[0], ref["G"])
    assert diff < 1e-5, f"max |G_ddp - G_single| = {diff:.3g}"
    ddp_ckpt = torch.load(out / "checkpoints" / "step_000010.pt", weights_only=False)
    assert float(ddp_ckpt["loss"]["pl_mean"]) == pytest.approx(float(ref["loss"]["pl_mean"]), rel=1e-5)
    assert ref["G"]["w_avg"].abs().sum() > 0


# The cycle family: two translators and two patch discriminators, ADA on, LSGAN, cycle and identity losses.
CYCLE = ["model.family=cycle", "d_steps=1", "r1_gamma=0", "model.g_channels=4", "model.d_channels=4",
         "model.g_max_channels=8", "cycle.source_class=0", "cycle.target_class=1", "cycle.g_blocks=1",
         "cycle.d_layers=1", "steps=10"]


def test_cycle_family_two_ranks_train_like_one_process(toy, tmp_path):
    """Each rank takes its rows of both domains' global batch; the step averages the gradients itself."""
    torch.set_num_threads(1)
    ref = torch.load(train(tiny_config(toy, tmp_path / "single", *COMMON, *CYCLE, "batch_size=8"),
                           progress=False).checkpoint, weights_only=False)
    out = tmp_path / "ddp"
    weights, info = _launch(tmp_path, toy, out, [*COMMON, *CYCLE, "batch_size=4"], "cycle")
    assert [i["step"] for i in info] == [10, 10]
    assert _max_diff(weights[0], weights[1]) == 0.0  # the same translators on both ranks
    # The weights match except the biases of convolutions followed by an instance norm: the norm
    # cancels them, so their true gradient is 0 and Adam turns float noise (which differs between
    # one process and two) into steps of about lr. They change no output, so compare the translations.
    from medgan.networks import build_networks

    nets = []
    for state in (weights[0], ref["G"]):
        G, _ = build_networks(ref["model"])
        G.load_state_dict(state)
        nets.append(G.eval())
    x = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        diff = max(float((nets[0](x, d) - nets[1](x, d)).abs().max()) for d in (0, 1))
    assert diff < 1e-5, f"max |G_ddp(x) - G_single(x)| = {diff:.3g}"
    weight_keys = [k for k in ref["G"] if not k.endswith("bias")]
    diff = _max_diff({k: weights[0][k] for k in weight_keys}, {k: ref["G"][k] for k in weight_keys})
    assert diff < 1e-5, f"max |G_ddp - G_single| over the weights = {diff:.3g}"
    ddp_ckpt = torch.load(out / "checkpoints" / "step_000010.pt", weights_only=False)
    assert ddp_ckpt["images_seen"] == ref["images_seen"] == 10 * 2 * 8  # both domains, both ranks
    d_weights = [k for k in ref["D"] if not k.endswith("bias")]
    assert _max_diff({k: ddp_ckpt["D"][k] for k in d_weights}, {k: ref["D"][k] for k in d_weights}) < 1e-5
    assert ddp_ckpt["augment"]["p"] == pytest.approx(ref["augment"]["p"], abs=1e-9) and ref["augment"]["p"] > 0


def test_skip_excitation_and_a_reconstructing_discriminator_train_under_ddp(toy, tmp_path):
    """D's decoder takes part in every D step and in no G step; DDP must reduce its gradients all the same.

    Not compared with one process: the decoder's batch norm (D is not synchronised) sees each rank's half batch.
    """
    out = tmp_path / "ddp"
    weights, info = _launch(tmp_path, toy, out, [*COMMON, "batch_size=4", "steps=6", "recon_weight=1.0",
                                                 "model.g_sle=true"], "recon")
    assert [i["step"] for i in info] == [6, 6]
    assert _max_diff(weights[0], weights[1]) == 0.0
    ckpt = torch.load(out / "checkpoints" / "step_000006.pt", weights_only=False)
    assert any(k.startswith("decoder.") for k in ckpt["D"]) and any(k.startswith("excite.") for k in ckpt["G"])
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(r["d_recon"] > 0 for r in lines)
