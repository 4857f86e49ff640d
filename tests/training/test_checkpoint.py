"""Checkpoint files: atomic write, sha256 sidecar, weights-only load, RNG state round-trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from medgan.errors import MedganError
from medgan.training.checkpoint import (
    find_checkpoint,
    get_rng_state,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    set_rng_state,
)


def test_save_writes_file_and_matching_sidecar(tmp_path):
    path = save_checkpoint({"step": 3, "w": torch.arange(4.0)}, tmp_path / "checkpoints" / "step_000003.pt")
    assert path.is_file()
    sidecar = path.with_name("step_000003.pt.sha256").read_text().split()
    state = load_checkpoint(path)
    assert state["sha256"] == sidecar[0] and sidecar[1] == "step_000003.pt"
    assert state["step"] == 3 and torch.equal(state["w"], torch.arange(4.0))
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp.pt")]  # no temp files left


def test_altered_file_is_refused(tmp_path):
    path = save_checkpoint({"step": 1}, tmp_path / "a.pt")
    with open(path, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(MedganError, match="sha256 mismatch"):
        load_checkpoint(path)


def test_missing_sidecar_and_missing_file_are_refused(tmp_path):
    path = save_checkpoint({"step": 1}, tmp_path / "a.pt")
    path.with_name("a.pt.sha256").unlink()
    with pytest.raises(MedganError, match=r"no a\.pt\.sha256 sidecar"):
        load_checkpoint(path)
    with pytest.raises(MedganError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_a_foreign_torch_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    from medgan.utils import file_sha256

    path.with_name("foreign.pt.sha256").write_text(file_sha256(path))
    with pytest.raises(MedganError, match="not a medgan checkpoint"):
        load_checkpoint(path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip at all")
    garbage.with_name("garbage.pt.sha256").write_text(file_sha256(garbage))
    with pytest.raises(MedganError, match="not a readable checkpoint"):
        load_checkpoint(garbage)


def test_run_folder_resolves_to_latest_and_prune_keeps_newest(tmp_path):
    for s in (5, 10, 15):
        save_checkpoint({"step": s}, tmp_path / "checkpoints" / f"step_{s:06d}.pt")
    assert find_checkpoint(tmp_path).name == "step_000015.pt"
    prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000010.pt", "step_000015.pt"]
    assert not (tmp_path / "checkpoints" / "step_000005.pt.sha256").exists()
    with pytest.raises(MedganError, match="no checkpoints in this run folder"):
        find_checkpoint(tmp_path / "checkpoints")


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    save_checkpoint({"rng": get_rng_state()}, tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]
