"""``per_class: true``: one unconditional GAN per class, trained apart, sampled through one checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.api import train
from medgan.data.dataset import DatasetInfo, load_dataset, save_prepared
from medgan.errors import MedganError
from medgan.metrics.selection import score_run
from medgan.networks.perclass import PerClassGenerator
from medgan.synth.sampling import iter_samples, load_generator, sample_latents
from medgan.training import loop
from medgan.training.checkpoint import RunFolder, list_checkpoints, load_checkpoint, sampling_checkpoint
from medgan.training.perclass import composite_checkpoint, read_base
from tests.conftest import make_square_masks
from tests.training.helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

MASKS = ("model.g_binary=true", "checkpoint_every=2", "keep_checkpoints=2")


@pytest.fixture(scope="module")
def squares(tmp_path_factory) -> Path:
    return make_square_masks(tmp_path_factory.mktemp("pc_data") / "squares", counts=(12, 16)).path


@pytest.fixture(scope="module")
def per_class_run(squares, tmp_path_factory):
    root = tmp_path_factory.mktemp("per_class")
    cfg = tiny_config(squares, root / "run", "steps=4", "per_class=true", "select_checkpoint=true", *MASKS)
    return root / "run", train(cfg, progress=False)


def test_each_class_trains_its_own_gan_on_its_own_images(per_class_run):
    run, result = per_class_run
    layout = RunFolder(run)
    for slug, n in (("small", 12), ("large", 16)):
        assert [p.name for p in list_checkpoints(layout.class_run(slug))] == ["step_000002.pt", "step_000004.pt"]
        data = load_dataset(layout.class_data(slug))
        assert data.info.class_names == [slug] and len(data.labels["train"]) == n
        assert set(np.unique(data.labels["train"]).tolist()) == {0}
        assert len(data.labels["val"]) == len(data.labels["test"]) == 0
        member = load_checkpoint(layout.class_run(slug))
        assert member["config"]["model"]["conditional"] is False and member["config"]["per_class"] is False
        assert member["model"]["generator"]["num_classes"] == 0
    assert len(list_checkpoints(run)) == 1  # the one composite, named by its latest member's step
    assert result.step == 4 and result.selected == result.checkpoint
    assert result.checkpoint.is_file() and list_checkpoints(run) == [result.checkpoint]


def test_a_member_is_the_unconditional_run_on_its_class_alone(per_class_run, squares, tmp_path):
    """The recipe measured in gan_quality.md (one-class data, model.conditional false, the same seed) gives the
    member's weights bit for bit."""
    run, _ = per_class_run
    ds = load_dataset(squares)
    keep = np.asarray(ds.labels["train"]).reshape(-1) == 1
    images = {s: ds.images["train"][keep] if s == "train" else ds.images[s][:0] for s in ("train", "val", "test")}
    labels = {s: np.zeros(len(images[s]), np.int64) for s in images}
    info = DatasetInfo(name="large-only", class_names=["large"], channels=1, spatial_dims=2, size=[16, 16],
                       source="test", sha256="")
    save_prepared(tmp_path / "large", images, labels, info)
    cfg = tiny_config(tmp_path / "large", tmp_path / "alone", "steps=4", "model.conditional=false", *MASKS)
    loop.train(cfg, progress=False)
    alone = load_checkpoint(tmp_path / "alone" / "checkpoints" / "step_000004.pt")["G_ema"]
    member = load_checkpoint(RunFolder(run).class_run("large") / "checkpoints" / "step_000004.pt")["G_ema"]
    assert alone.keys() == member.keys()
    assert all(torch.equal(alone[k], member[k]) for k in alone)


def test_class_c_is_drawn_from_class_c_generator(per_class_run):
    run, _ = per_class_run
    gen = load_generator(run, "cpu")
    assert gen.family == "per_class" and gen.num_classes == 2 and gen.class_names == ["small", "large"]
    picked = json.loads(RunFolder(run).selection.read_text())["members"]
    for c, slug in enumerate(("small", "large")):
        member = load_generator(run / picked[slug], "cpu")
        z = sample_latents(gen.z_dim, 8, seed=3, class_index=c)
        with torch.inference_mode():
            expected = ((member.G(z, None).float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        drawn = np.concatenate(list(iter_samples(gen, c, 8, seed=3)))
        assert np.array_equal(drawn, expected)


def test_a_mixed_batch_routes_each_row_to_its_class():
    torch.manual_seed(0)
    members = [dict(z_dim=8, num_classes=0, size=16, base_channels=4, max_channels=8)] * 2
    G = PerClassGenerator(num_classes=2, z_dim=8, member_family="residual", members=members).eval()
    z, y = torch.randn(5, 8), torch.tensor([1, 0, 1, 1, 0])
    with torch.no_grad():
        out = G(z, y)
        for i in range(5):
            assert torch.allclose(out[i], G.members[int(y[i])](z[i : i + 1], None)[0], atol=1e-6)
    with pytest.raises(ValueError, match="class of every row"):
        G(z, None)


def test_the_pick_is_the_nearest_combination_of_kept_checkpoints(per_class_run, squares):
    run, _ = per_class_run
    record = json.loads(RunFolder(run).selection.read_text())
    assert len(record["ranking"]) == 4  # 2 kept checkpoints per class
    distances = [r["distance"] for r in record["ranking"]]
    assert distances == sorted(distances)
    assert record["ranking"][0]["members"] == [record["members"]["small"], record["members"]["large"]]
    # The composite written is that combination, and scores as the record says.
    ckpt = load_checkpoint(run)
    assert [m["checkpoint"] for m in ckpt["members"]] == record["ranking"][0]["members"]
    score = score_run(load_generator(run, "cpu"), load_dataset(squares), str(run))
    assert score.distance == pytest.approx(distances[0], abs=1e-4)
    # Any other combination, composed in memory, is no nearer.
    base = read_base(run)
    other = [load_checkpoint(run / p) for p in record["ranking"][-1]["members"]]
    far = score_run(load_generator(composite_checkpoint(other, base), "cpu"), load_dataset(squares), "other")
    assert far.distance >= score.distance - 1e-6


def test_resuming_continues_every_member_and_rewrites_the_composite(per_class_run, squares, tmp_path):
    run, _ = per_class_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = tiny_config(squares, copy, "steps=6", "per_class=true", *MASKS)
    result = loop.train(cfg, resume=copy, progress=False)
    for slug in ("small", "large"):
        assert list_checkpoints(RunFolder(copy).class_run(slug))[-1].name == "step_000006.pt"
    assert [p.name for p in list_checkpoints(copy)] == ["step_000006.pt"] and result.step == 6
    assert not RunFolder(copy).selection.exists()  # the old pick named checkpoints training has replaced
    assert sampling_checkpoint(copy).name == "step_000006.pt"


def test_each_class_gan_is_evaluated_against_its_own_class(squares, tmp_path):
    cfg = tiny_config(squares, tmp_path / "run", "steps=2", "per_class=true", "fid_every=2", "eval_metrics=[values]",
                      "fid_samples=8", *MASKS)
    train(cfg, progress=False)
    for slug in ("small", "large"):
        records = [json.loads(line) for line in (RunFolder(tmp_path / "run").class_run(slug) / "metrics.jsonl")
                   .read_text().splitlines()]
        assert records[-1]["step"] == 2 and "values/components_synthetic" in records[-1]


def test_a_non_empty_folder_is_refused_without_overwrite(per_class_run, squares):
    run, _ = per_class_run
    cfg = tiny_config(squares, run, "steps=4", "per_class=true", *MASKS)
    with pytest.raises(MedganError, match="not empty"):
        loop.train(cfg, progress=False)


@pytest.mark.parametrize(("override", "message"), [
    ("model.conditional=false", "model.conditional: true"),
    ("class_balance=true", "'class_balance'"),
    ("aux_weight=0.1", "'aux_weight'"),
    ("logger=tensorboard", "TensorBoard"),
])
def test_keys_that_act_on_a_shared_model_are_refused(squares, tmp_path, override, message):
    with pytest.raises(MedganError, match=message):
        tiny_config(squares, tmp_path / "r", "per_class=true", override)


def test_a_class_without_training_images_is_refused(tmp_path):
    ds = load_dataset(make_square_masks(tmp_path / "sq", counts=(4, 4)).path)
    labels = dict(ds.labels)
    labels["train"] = np.ones_like(labels["train"])
    save_prepared(tmp_path / "one", ds.images, labels, ds.info)
    cfg = tiny_config(tmp_path / "one", tmp_path / "run", "steps=2", "per_class=true", *MASKS)
    with pytest.raises(MedganError, match="class 'small' has no training images"):
        loop.train(cfg, progress=False)
