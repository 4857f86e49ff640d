"""The public Python API (medgan/api.py, re-exported by ``medgan``): samples identical to ``medgan augment``,
a deterministic Dataset in DataLoaders with workers, and train / evaluate / benchmark returning result objects."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import medgan
from medgan.cli.main import app
from medgan.errors import MedganError
from medgan.synth.sampling import LATENT_BLOCK
from tests.benchmark.helpers import bench_config, gan_checkpoint, gan_config
from tests.conftest import REPO, make_breast_like_toy, make_disc_toy
from tests.training.helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

N = LATENT_BLOCK + 6  # crosses a latent-block boundary


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A two-step BreastMNIST-like run (16², malignant 12 : "normal, benign" 36) and an npz export of it."""
    from medgan.training.loop import train

    root = tmp_path_factory.mktemp("api_toy")
    data = make_breast_like_toy(root, "breasttoy", seed=0)
    run = train(tiny_config(data, root / "run", "steps=2"), progress=False).run_dir
    out = root / "augment_npz"
    result = CliRunner().invoke(app, ["augment", "--checkpoint", str(run), "--class", "all", "--n", str(N),
                                      "--format", "npz", "--seed", "3", "--device", "cpu", "--no-progress",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out / "dataset.npz") as npz:
        images, labels = npz["train_images"], npz["train_labels"].reshape(-1)
    exported = torch.from_numpy(images[:, None]).float()  # (N, 1, 16, 16), as channel-first floats
    return SimpleNamespace(root=root, data=data, run=run, exported=exported, labels=labels,
                           gen=medgan.load_generator(run, device="cpu"))


# The generator.


def test_load_generator_says_what_it_makes(toy: SimpleNamespace) -> None:
    gen = toy.gen
    assert gen.classes == ["malignant", "normal, benign"] and gen.conditional
    assert gen.spatial_dims == 2 and gen.image_shape == (1, 16, 16)
    assert Path(gen.checkpoint_path).is_file() and len(gen.checkpoint_sha256) == 64
    assert "malignant" in repr(gen) and gen.class_index("MALIGNANT") == 0 and gen.class_index(1) == 1


def test_sample_is_identical_to_augment_and_in_the_data_range(toy: SimpleNamespace) -> None:
    x = toy.gen.sample("malignant", N, seed=3)
    assert x.dtype == torch.float32 and x.shape == (N, 1, 16, 16)
    assert torch.equal(x, toy.exported[toy.labels == 0])  # the bytes augment wrote, as floats
    assert float(x.min()) >= 0 and float(x.max()) <= 255 and torch.equal(x, x.round())
    # Any n gives a prefix of the same samples; another seed gives others.
    assert torch.equal(toy.gen.sample(0, 5, seed=3, batch_size=2), x[:5])
    assert not torch.equal(toy.gen.sample(0, 5, seed=4), x[:5])


def test_sample_refuses_an_unknown_class_and_bad_counts(toy: SimpleNamespace) -> None:
    with pytest.raises(MedganError, match="normal"):
        toy.gen.sample("normal", 4)
    with pytest.raises(MedganError, match="name a class"):
        toy.gen.sample(None, 4)
    with pytest.raises(MedganError, match="--n must be a positive"):
        toy.gen.sample("malignant", 0)
    with pytest.raises(MedganError, match="checkpoint"):
        medgan.load_generator(toy.root / "nowhere")


# The dataset.


def test_dataset_gives_augments_tensors_in_any_order(toy: SimpleNamespace) -> None:
    ds = medgan.SyntheticDataset(toy.gen, counts=N, seed=3)
    assert len(ds) == 2 * N and ds.counts == {0: N, 1: N}
    assert np.array_equal(ds.labels, toy.labels)
    order = np.random.default_rng(0).permutation(len(ds))  # random access: blocks come and go from the cache
    for i in order:
        image, label = ds[int(i)]
        assert label == toy.labels[i] and torch.equal(image, toy.exported[i]), i
    assert torch.equal(ds[-1][0], toy.exported[-1])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_dataset_counts_by_class_and_dict_items_with_a_transform(toy: SimpleNamespace) -> None:
    ds = medgan.SyntheticDataset(toy.gen, counts={"Normal, Benign": 3, 0: 2}, seed=3, keys=("image", "label"),
                                 transform=lambda d: {**d, "image": d["image"] / 255.0})
    assert ds.counts == {0: 2, 1: 3} and len(ds) == 5  # in label order, whatever the order given
    item = ds[2]  # the first "normal, benign" sample
    assert set(item) == {"image", "label"} and item["label"] == 1
    assert torch.equal(item["image"], toy.exported[toy.labels == 1][0] / 255.0)


def test_dataset_ratio_and_balance_follow_the_class_plan(toy: SimpleNamespace) -> None:
    real = [12, 36]
    assert medgan.SyntheticDataset(toy.gen, ratio=0.5, real_counts=real).counts == {0: 6, 1: 18}
    assert medgan.SyntheticDataset(toy.gen, balance=True, real_counts=real).counts == {0: 24}
    assert medgan.SyntheticDataset(toy.gen, balance=40, real_counts=real).counts == {0: 28, 1: 4}
    # A class with no real image gets none under ratio (the GAN never saw it).
    assert medgan.SyntheticDataset(toy.gen, ratio=1.0, real_counts=[0, 5]).counts == {1: 5}


@pytest.mark.parametrize(("kwargs", "text"), [
    ({}, "exactly one of counts=, ratio= or balance= (got none)"),
    ({"counts": 3, "ratio": 1.0}, "got counts, ratio"),
    ({"ratio": 1.0}, "need real_counts="),
    ({"ratio": 1.0, "real_counts": [1, 2, 3]}, "3 entries; the generator has 2 classes"),
    ({"counts": {"normal": 3}}, "normal"),
    ({"counts": 0}, "positive n"),
    ({"balance": True, "real_counts": [5, 5]}, "nothing to draw"),
    ({"counts": 2, "keys": ("image",)}, "keys must be two names"),
])
def test_dataset_refuses_bad_options_in_one_line(toy: SimpleNamespace, kwargs: dict, text: str) -> None:
    with pytest.raises(MedganError) as info:
        medgan.SyntheticDataset(toy.gen, **kwargs)
    assert text in str(info.value) and "\n" not in str(info.value)


def test_two_workers_give_the_same_batches_as_none(toy: SimpleNamespace) -> None:
    from monai.data import DataLoader

    ds = medgan.SyntheticDataset(str(toy.run), counts=N, seed=3, keys=("image", "label"))  # loads on the CPU

    def batches(workers: int) -> list[dict[str, torch.Tensor]]:
        return list(DataLoader(ds, batch_size=16, shuffle=False, num_workers=workers))

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == -(-2 * N // 16)
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert torch.equal(torch.cat([b["image"] for b in serial]), toy.exported)


def test_concat_with_a_real_monai_dataset(toy: SimpleNamespace) -> None:
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, ScaleIntensityRanged

    from medgan.data.dataset import load_dataset

    real_ds = load_dataset(toy.data)
    real_x, real_y = real_ds.channel_first("train"), real_ds.labels["train"]
    scale = Compose([ScaleIntensityRanged("image", a_min=0, a_max=255, b_min=-1, b_max=1)])
    real = Dataset([{"image": x.astype(np.float32), "label": int(y)} for x, y in zip(real_x, real_y, strict=True)],
                   transform=scale)
    synthetic = medgan.SyntheticDataset(toy.gen, ratio=1.0, real_counts=np.bincount(real_y).tolist(),
                                        seed=3, keys=("image", "label"), transform=scale)
    both = torch.utils.data.ConcatDataset([real, synthetic])
    assert len(both) == 2 * len(real_y)
    batch = next(iter(DataLoader(both, batch_size=len(both))))
    assert batch["image"].shape == (2 * len(real_y), 1, 16, 16)
    assert float(batch["image"].min()) >= -1 and float(batch["image"].max()) <= 1
    assert np.bincount(batch["label"].numpy()).tolist() == [24, 72]
    # The synthetic half is augment's samples, scaled like the real half.
    assert torch.allclose(batch["image"][len(real_y):][:12], toy.exported[:12] / 127.5 - 1, atol=1e-6)


# The façade.


def test_import_medgan_is_light_and_lists_the_api() -> None:
    code = ("import sys, medgan; assert 'torch' not in sys.modules, 'torch at import'; "
            "names = set(dir(medgan)); "
            "assert {'load_generator', 'SyntheticDataset', 'train', 'evaluate', 'benchmark'} <= names, names; "
            "medgan.SyntheticDataset; assert 'torch' in sys.modules; print(sorted(medgan.__all__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    assert "load_generator" in done.stdout
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        medgan.nothing  # noqa: B018
    assert medgan.train is medgan.api.train
    # medgan.benchmark is the package (medgan.benchmark.config ...) and, called, the API function.
    importlib.import_module("medgan.benchmark.config")
    assert callable(medgan.benchmark) and medgan.benchmark.config.ARMS[0] == "real"


# train / evaluate / benchmark.


def test_train_returns_the_run_and_its_last_metrics(toy: SimpleNamespace, tmp_path: Path) -> None:
    cfg = tiny_config(toy.data, tmp_path / "run", "steps=4")
    result = medgan.train(cfg, overrides={"steps": 2})
    assert isinstance(result, medgan.TrainResult)
    assert result.run_dir == tmp_path / "run" and result.step == 2
    assert result.checkpoint is not None and result.checkpoint.is_file()
    assert result.metrics["step"] == 2 and {"d_loss", "g_loss", "aug_p"} <= set(result.metrics)
    # Resuming from the run folder alone: its config.yaml, its folder, more steps.
    more = medgan.train(resume=result.run_dir, overrides=["steps=4"])
    assert more.run_dir == result.run_dir and more.step == 4
    with pytest.raises(MedganError, match="give a CONFIG"):
        medgan.train()


def test_train_takes_a_mapping_config(toy: SimpleNamespace, tmp_path: Path) -> None:
    from medgan.configio import config_to_dict

    mapping = config_to_dict(tiny_config(toy.data, tmp_path / "run", "steps=2"))
    result = medgan.train(mapping, overrides={"model": {"z_dim": 8}})
    assert result.step == 2
    assert "z_dim: 8" in (result.run_dir / "config.yaml").read_text()
    with pytest.raises(MedganError, match="nonsense"):
        medgan.train({**mapping, "nonsense": 1})


def test_evaluate_returns_metrics_and_paths(toy: SimpleNamespace, tmp_path: Path) -> None:
    kw = {"n": 16, "feature_epochs": 1, "c2st_folds": 2, "c2st_steps": 2, "seed": 0}
    result = medgan.evaluate(toy.data, toy.gen, tmp_path / "eval", **kw)
    assert isinstance(result, medgan.EvaluateResult) and result.out == tmp_path / "eval"
    assert {"metrics.json", "summary.md", "grid_class_malignant.png"} <= set(result.paths)
    assert len([name for name in result.paths if name.startswith("grid_class_")]) == 2
    assert {"c2st_extremes_class_malignant.png", "c2st_extremes_class_normal_benign.png"} <= set(result.paths)
    assert all(p.is_file() for p in result.paths.values())
    assert np.isfinite(result.metrics["fid"]) and "c2st/auc" in result.metrics
    assert json.loads(result.paths["metrics.json"].read_text())["metrics"] == pytest.approx(result.metrics, nan_ok=True)
    # Without out, nothing is written and the numbers are the same (seeded).
    again = medgan.evaluate(toy.data, toy.run, **kw)
    assert again.out is None and again.paths == {}
    assert again.metrics["fid"] == pytest.approx(result.metrics["fid"])


def test_benchmark_returns_the_report_and_the_lifts(tmp_path: Path) -> None:
    root = tmp_path / "bench_env"
    root.mkdir()
    data = make_disc_toy(root)
    ckpt = gan_checkpoint(root, data)
    config = bench_config(tmp_path / "bench.yaml", data, gan_config(root, data),
                          arms=["real", "real+synthetic"], fidelity={"enabled": False})
    run = medgan.benchmark(config, checkpoint=ckpt, out=tmp_path / "out", overrides={"seeds": 2})
    assert isinstance(run, medgan.BenchmarkRun) and run.out == tmp_path / "out"
    assert run.report is not None and run.report.is_file() and run.results_path is not None
    assert sorted(run.ran) == [("real", 0), ("real", 1), ("real+synthetic", 0), ("real+synthetic", 1)]
    lift = run.lifts[("real+synthetic", "real")]["balanced_accuracy"]
    assert lift["ci_low"] <= lift["diff"] <= lift["ci_high"]
    assert run.lift() == lift["diff"]
    assert run.verdict == run.results["verdict"]["answer"]
    # Only some runs: no report, no lifts.
    part = medgan.benchmark(config, checkpoint=ckpt, out=tmp_path / "out", only=["real:0"])
    assert part.report is None and part.lifts == {} and part.skipped == [("real", 0)]
