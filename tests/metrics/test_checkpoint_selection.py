"""``select_checkpoint: true``: training ranks its kept checkpoints by the mask distance, records the nearest in
``RUN/selected.json``, and a run folder is sampled from it; training again clears the record."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medgan.api import train
from medgan.data.dataset import load_dataset
from medgan.errors import MedganError
from medgan.metrics.selection import score_run
from medgan.synth.sampling import load_generator
from medgan.training import loop
from medgan.training.checkpoint import RunFolder, list_checkpoints, sampling_checkpoint
from tests.conftest import make_banded_toy, make_square_masks
from tests.training.helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("selection")
    data = make_square_masks(root / "squares", counts=(16, 16)).path
    cfg = tiny_config(data, root / "run", "steps=6", "checkpoint_every=2", "keep_checkpoints=3", "model.g_binary=true",
                      "select_checkpoint=true")
    return data, root / "run", train(cfg, progress=False)


def test_training_records_the_kept_checkpoint_nearest_the_real_masks(selected_run):
    data, run, result = selected_run
    kept = list_checkpoints(run)
    assert [p.name for p in kept] == ["step_000002.pt", "step_000004.pt", "step_000006.pt"]
    ds = load_dataset(data)
    scores = {p.name: score_run(load_generator(p, "cpu"), ds, str(p)).distance for p in kept}
    nearest = min(scores, key=lambda k: (scores[k], k))
    record = json.loads(RunFolder(run).selection.read_text())
    assert record["checkpoint"] == f"checkpoints/{nearest}"
    assert [r["checkpoint"] for r in record["ranking"]] == [f"checkpoints/{k}" for k in sorted(scores, key=scores.get)]
    assert [r["distance"] for r in record["ranking"]] == pytest.approx(sorted(scores.values()), abs=1e-4)
    assert result.selected == run / "checkpoints" / nearest and result.checkpoint == kept[-1]


def test_a_run_folder_is_sampled_from_the_selected_checkpoint(selected_run):
    _, run, result = selected_run
    assert sampling_checkpoint(run) == result.selected
    assert Path(load_generator(run, "cpu").checkpoint_path) == result.selected
    latest = list_checkpoints(run)[-1]
    assert sampling_checkpoint(latest) == latest  # a checkpoint file is taken as given


def test_training_the_run_again_clears_the_stale_pick(selected_run, tmp_path):
    import shutil

    _, run, _ = selected_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert RunFolder(copy).selection.is_file()
    cfg = tiny_config(load_generator(copy, "cpu").config["data"], copy, "steps=8", "checkpoint_every=2",
                      "keep_checkpoints=3", "model.g_binary=true")
    loop.train(cfg, resume=copy, progress=False)
    assert not RunFolder(copy).selection.exists()
    assert sampling_checkpoint(copy).name == "step_000008.pt"  # the latest again


@pytest.mark.parametrize("case", ["missing", "unreadable"])
def test_a_broken_record_is_refused_not_passed_over(selected_run, tmp_path, case):
    import shutil

    _, run, result = selected_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    if case == "missing":
        (copy / "checkpoints" / result.selected.name).unlink()
        message = f"the selected checkpoint {result.selected.name} is missing"
    else:
        RunFolder(copy).selection.write_text("{not json")
        message = "unreadable selection record"
    with pytest.raises(MedganError, match=re.escape(message)):
        sampling_checkpoint(copy)


def test_select_checkpoint_needs_a_conditional_mask_generator(tmp_path):
    data = make_banded_toy(tmp_path, size=8)
    with pytest.raises(MedganError, match=re.escape("'select_checkpoint' needs model.g_binary: true")):
        tiny_config(data, tmp_path / "run", "select_checkpoint=true").validate()
