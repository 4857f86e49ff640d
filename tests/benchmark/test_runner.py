"""The benchmark runner on toy data: fair arms, a train-only GAN, resume, the output folder, the report."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from medgan.benchmark.arms import ClassicalAugment
from medgan.benchmark.config import ARMS, load_benchmark_config
from medgan.benchmark.plan import JobPlan, run_path
from medgan.benchmark.runner import check_checkpoint, run_benchmark
from medgan.data.dataset import load_dataset
from medgan.errors import MedganError
from medgan.training import classifier as clf
from medgan.training import loop
from tests.benchmark.helpers import bench_config, gan_checkpoint, gan_config
from tests.conftest import make_disc_toy

JOBS = [(arm, seed) for seed in range(2) for arm in ARMS]
TRAIN_CLASSIFIER = clf.train_classifier  # the real one, whatever a test has patched in


class Interrupted(Exception):
    """Stands in for KeyboardInterrupt, which pytest would take as its own."""


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.getbasetemp() / "bench_shared"
    root.mkdir(exist_ok=True)
    data = make_disc_toy(root)
    return SimpleNamespace(root=root, data=data, gan_yaml=gan_config(root, data), ckpt=gan_checkpoint(root, data))


@pytest.fixture(scope="module")
def finished(env: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A whole benchmark whose GAN the benchmark trains itself, watching what the GAN is given."""
    tmp = tmp_path_factory.mktemp("finished")
    seen: list[Any] = []
    real_train = loop.train

    def spy(cfg: Any, **kw: Any) -> Any:
        seen.append(cfg)
        return real_train(cfg, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "train", spy)
        cfg = load_benchmark_config(bench_config(tmp / "bench.yaml", env.data, env.gan_yaml))
        result = run_benchmark(cfg, progress=False)
    return SimpleNamespace(cfg=cfg, result=result, out=result.out, gan_configs=seen)


def _spy_classifier(monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def spy(model: torch.nn.Module, train: Any, val: Any, **kw: Any) -> Any:
        if fail_at is not None and len(calls) + 1 == fail_at:
            raise Interrupted  # as Ctrl-C would, mid-benchmark
        calls.append({"init": {k: v.clone() for k, v in model.state_dict().items()}, "train": train, "val": val, **kw})
        return TRAIN_CLASSIFIER(model, train, val, **kw)

    monkeypatch.setattr(clf, "train_classifier", spy)
    return calls


def test_arms_differ_only_in_training_data(env: SimpleNamespace, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy_classifier(monkeypatch)
    cfg = load_benchmark_config(bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml))
    result = run_benchmark(cfg, checkpoint=env.ckpt, plan=JobPlan.of_runs(JOBS), progress=False)
    assert result.ran == JOBS and result.results is None and len(calls) == len(JOBS)
    runs = dict(zip(JOBS, calls, strict=True))
    ds = load_dataset(env.data)
    real_x = ds.channel_first("train")
    data_keys = {"init", "train", "transform", "extra_train", "progress"}

    for seed in range(2):
        first = runs[("real", seed)]
        for arm in ARMS:
            call = runs[(arm, seed)]
            # The same initial weights, optimiser settings, budget and seeds for every arm of a seed.
            assert call.keys() == first.keys()
            for key in call["init"]:
                assert torch.equal(call["init"][key], first["init"][key]), (arm, key)
            for key in call.keys() - data_keys:
                assert np.array_equal(call[key][0], first[key][0]) if key == "val" else call[key] == first[key]
            assert call["seed"] == seed
            # Only the training data differ.
            assert isinstance(call["transform"], ClassicalAugment) == ("classical" in arm)
            assert (call["extra_train"] is not None) == (arm in ("real+synthetic", "real+classical+synthetic"))
            assert np.array_equal(call["train"][0], real_x) == (arm != "synthetic-only")
        tstr = runs[("synthetic-only", seed)]["train"]
        assert np.bincount(tstr[1]).tolist() == [12, 36]  # the real class mix, all synthetic
        added = runs[("real+synthetic", seed)]["extra_train"]
        assert np.bincount(added[1], minlength=2).tolist() == [24, 0]  # balance: lesions up to 36
        assert np.array_equal(added[0], runs[("real+classical+synthetic", seed)]["extra_train"][0])
        records = [json.loads(run_path(result.out, arm, seed).read_text()) for arm in ARMS]
        assert len({r["init_sha256"] for r in records}) == 1
    # Seeds do differ: initial weights and the synthetic draw.
    a, b = runs[("real", 0)]["init"], runs[("real", 1)]["init"]
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert not np.array_equal(runs[("real+synthetic", 0)]["extra_train"][0], runs[("real+synthetic", 1)]["extra_train"][0])


def test_gan_trains_on_the_train_split_only(finished: SimpleNamespace, env: SimpleNamespace) -> None:
    assert len(finished.gan_configs) == 1
    gan_ds = load_dataset(finished.gan_configs[0].data)
    real = load_dataset(env.data)
    assert np.array_equal(gan_ds.images["train"], real.images["train"])
    assert np.array_equal(gan_ds.labels["train"], real.labels["train"])
    assert len(gan_ds.images["val"]) == 0 and len(gan_ds.images["test"]) == 0
    held_out = {img.tobytes() for split in ("val", "test") for img in real.images[split]}
    assert not any(img.tobytes() in held_out for img in gan_ds.images["train"])
    # The checkpoint it made is recognised as trained on this dataset.
    ckpt = finished.out / json.loads((finished.out / "gan.json").read_text())["checkpoint"]
    assert check_checkpoint(ckpt, real).class_names == ["lesion", "normal"]


def test_report_renders(finished: SimpleNamespace) -> None:
    out = finished.out
    report = (out / "report.md").read_text()
    for arm in ARMS:
        assert f"| {arm} |" in report
    assert "**Answer.**" in report and "lesion recall" in report and "## The GAN" in report
    results = json.loads((out / "results.json").read_text())
    assert set(results["metrics"]) == set(ARMS) and results["seeds"] == [0, 1]
    assert results["target_class"] == {"index": 0, "name": "lesion"}
    assert results["dataset"]["test_twin_share"] == 0.0  # noisy toy discs: no test image is a train image's twin
    assert not any("near-duplicate" in line for line in results["verdict"]["caveats"])
    assert [(c["arm"], c["baseline"]) for c in results["comparisons"]][:2] == [
        ("real+synthetic", "real"), ("real+classical", "real")]
    assert results["verdict"]["answer"] and len(results["verdict"]["lines"]) == 6
    assert {"fid", "precision", "memorisation/fraction"} <= results["gan"]["fidelity"].keys()
    s = results["metrics"]["real"]["balanced_accuracy"]
    assert s["ci_low"] <= s["mean"] <= s["ci_high"] and len(s["per_seed"]) == 2
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"metrics.png", "confusion_matrices.png", "training_curves.png", "samples_lesion.png",
            "samples_normal.png"} <= set(pngs)
    for name in pngs:
        with Image.open(out / name) as im:
            im.verify()
        assert f"({name})" in report


def test_resume_skips_finished_runs(env: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_benchmark_config(bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml,
                                             fidelity={"enabled": False}))
    calls = _spy_classifier(monkeypatch, fail_at=4)
    with pytest.raises(Interrupted):
        run_benchmark(cfg, checkpoint=env.ckpt, progress=False)
    assert len(calls) == 3 and len(list((cfg_out := Path(cfg.out)).glob("runs/*.json"))) == 3

    calls = _spy_classifier(monkeypatch)
    result = run_benchmark(cfg, checkpoint=env.ckpt, progress=False)
    assert len(calls) == 7 and result.skipped == JOBS[:3] and result.ran == JOBS[3:]
    assert (cfg_out / "report.md").is_file()

    calls = _spy_classifier(monkeypatch)
    assert run_benchmark(cfg, checkpoint=env.ckpt, progress=False).ran == [] and calls == []

    # More seeds is the same benchmark, extended: only the new seed runs.
    cfg.seeds = 3
    result = run_benchmark(cfg, checkpoint=env.ckpt, progress=False)
    assert result.ran == [(arm, 2) for arm in ARMS] and len(calls) == 5
    assert result.results is not None and result.results["seeds"] == [0, 1, 2]


def test_adding_an_arm_runs_only_its_runs_and_changes_no_finished_one(env: SimpleNamespace, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Arms are not part of a folder's identity: a finished run's result must not depend on which
    other arms exist (synthetic-pretrain draws a larger pool than real+synthetic, from the same seed)."""
    kw = {"seeds": 1, "fidelity": {"enabled": False}}
    for name in ("grown", "fresh"):
        (tmp_path / name).mkdir()
    small = load_benchmark_config(bench_config(tmp_path / "grown" / "bench.yaml", env.data, env.gan_yaml,
                                               arms=["real", "real+synthetic"], **kw))
    run_benchmark(small, checkpoint=env.ckpt, progress=False)
    calls = _spy_classifier(monkeypatch)
    grown = load_benchmark_config(bench_config(tmp_path / "grown" / "bench.yaml", env.data, env.gan_yaml,
                                               arms=["real", "real+synthetic", "synthetic-pretrain"], **kw))
    result = run_benchmark(grown, checkpoint=env.ckpt, progress=False)
    assert result.ran == [("synthetic-pretrain", 0)] and sorted(result.skipped) == [("real", 0), ("real+synthetic", 0)]
    assert len(calls) == 2  # pretrain, then fine-tune
    assert result.results is not None and set(result.results["metrics"]) == {"real", "real+synthetic",
                                                                              "synthetic-pretrain"}

    fresh = load_benchmark_config(bench_config(tmp_path / "fresh" / "bench.yaml", env.data, env.gan_yaml,
                                               arms=["real", "real+synthetic", "synthetic-pretrain"], **kw))
    run_benchmark(fresh, checkpoint=env.ckpt, progress=False)
    for arm in ("real+synthetic", "synthetic-pretrain"):
        a, b = (json.loads(run_path(Path(c.out), arm, 0).read_text()) for c in (grown, fresh))
        assert a["n_train"] == b["n_train"] and a["metrics"] == b["metrics"] and a["test_proba"] == b["test_proba"]


def test_output_folder_rules(env: SimpleNamespace, tmp_path: Path) -> None:
    path = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml, arms=["real"], seeds=1,
                        fidelity={"enabled": False})
    cfg = load_benchmark_config(path)
    run_benchmark(cfg, progress=False)
    other = load_benchmark_config(path, overrides=["classifier.lr=0.01"])
    with pytest.raises(MedganError, match=r"different config \(config.classifier.lr differ"):
        run_benchmark(other, progress=False)
    result = run_benchmark(other, overwrite=True, progress=False)
    assert result.ran == [("real", 0)]

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(MedganError, match="not a benchmark folder"):
        run_benchmark(cfg, out=stranger, progress=False)
    assert (stranger / "notes.txt").read_text() == "mine"


def test_a_folder_from_before_a_new_config_field_resumes_with_its_runs(
    env: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A medgan that adds a config field at its default must not throw away a folder's finished runs."""
    from medgan.benchmark.config import identity_hash

    path = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml, arms=["real", "real+synthetic"], seeds=1,
                        fidelity={"enabled": False})
    cfg = load_benchmark_config(path, overrides=["classifier.lr=0.01"])
    run_benchmark(cfg, progress=False)
    out = Path(cfg.out)

    def as_if_written_without(*keys: tuple[str, ...]) -> None:
        record = json.loads((out / "benchmark.json").read_text())
        for key in keys:
            node = record["identity"]
            for part in key[:-1]:
                node = node[part]
            del node[key[-1]]
        record["identity_hash"] = identity_hash(record["identity"])
        (out / "benchmark.json").write_text(json.dumps(record))
        for run in out.glob("runs/*.json"):
            (run.write_text(json.dumps({**json.loads(run.read_text()), "identity": record["identity_hash"]})))

    # An older medgan did not have model.g_noise_init; this one sets it to its default (0).
    as_if_written_without(("gan", "train_config", "model", "g_noise_init"))
    calls = _spy_classifier(monkeypatch)
    result = run_benchmark(cfg, progress=False)
    assert result.ran == [] and calls == [] and len(result.skipped) == 2
    # An older medgan counted the report's fidelity settings in the identity; this one does not.
    record = json.loads((out / "benchmark.json").read_text())
    record["identity"]["config"]["fidelity"] = {"enabled": False, "n_per_class": 500, "c2st_folds": 5}
    record["identity_hash"] = identity_hash(record["identity"])
    (out / "benchmark.json").write_text(json.dumps(record))
    for run in out.glob("runs/*.json"):
        (run.write_text(json.dumps({**json.loads(run.read_text()), "identity": record["identity_hash"]})))
    result = run_benchmark(load_benchmark_config(path, overrides=["classifier.lr=0.01", "fidelity.c2st_folds=2"]),
                           progress=False)
    assert result.ran == [] and calls == [] and len(result.skipped) == 2
    # A missing key whose value here is not the default is a different benchmark.
    as_if_written_without(("config", "classifier", "lr"))
    with pytest.raises(MedganError, match=r"different config \(config.classifier.lr differ"):
        run_benchmark(cfg, progress=False)


def test_cluster_style_parts(env: SimpleNamespace, tmp_path: Path) -> None:
    cfg = load_benchmark_config(bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml,
                                             arms=["real", "real+synthetic"], fidelity={"enabled": False}))
    with pytest.raises(MedganError, match="--only gan"):
        run_benchmark(cfg, plan=JobPlan.of_runs([("real+synthetic", 0)]), progress=False)
    assert run_benchmark(cfg, plan=JobPlan.of_runs([("real", 1)]), progress=False).ran == [("real", 1)]  # no GAN needed
    with pytest.raises(MedganError, match=r"3 run\(s\) not finished yet \(real:0, real\+synthetic:0, real\+syn"):
        run_benchmark(cfg, report_only=True, progress=False)
    run_benchmark(cfg, plan=JobPlan.gan(), progress=False)
    assert (Path(cfg.out) / "gan.json").is_file()
    for job in [("real", 0), ("real+synthetic", 0)]:
        run_benchmark(cfg, plan=JobPlan.of_runs([job]), progress=False)
    with pytest.raises(MedganError, match=r"1 run\(s\) not finished yet \(real\+synthetic:1\)"):
        run_benchmark(cfg, report_only=True, progress=False)
    run_benchmark(cfg, plan=JobPlan.of_runs([("real+synthetic", 1)]), progress=False)
    result = run_benchmark(cfg, report_only=True, progress=False)
    assert result.ran == [] and result.results is not None


@pytest.mark.slow  # spawning two workers that import torch and MONAI takes 10-20 s
def test_parallel_jobs_match_serial(env: SimpleNamespace, tmp_path: Path) -> None:
    path = bench_config(tmp_path / "bench.yaml", env.data, env.gan_yaml, arms=["real", "real+classical"],
                        fidelity={"enabled": False})
    serial = run_benchmark(load_benchmark_config(path), out=tmp_path / "serial", checkpoint=env.ckpt,
                           progress=False)
    parallel = run_benchmark(load_benchmark_config(path, overrides=["jobs=2"]), out=tmp_path / "parallel",
                             checkpoint=env.ckpt, progress=False)
    assert sorted(parallel.ran) == sorted(serial.ran)
    for arm, seed in serial.ran:
        a = json.loads(run_path(tmp_path / "serial", arm, seed).read_text())
        b = json.loads(run_path(tmp_path / "parallel", arm, seed).read_text())
        assert a["init_sha256"] == b["init_sha256"]
        np.testing.assert_allclose(a["test_proba"], b["test_proba"], atol=1e-5)


def test_a_report_again_reuses_the_fidelity_of_an_unchanged_gan(finished: SimpleNamespace, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from medgan.benchmark import report

    out = tmp_path / "again"
    shutil.copytree(finished.out, out)
    first = json.loads((out / "results.json").read_text())["gan"]["fidelity"]
    assert json.loads((out / "fidelity.json").read_text())["metrics"] == first
    measured: list[str] = []
    real_fidelity = report._fidelity

    def spy(*args: Any, **kw: Any) -> Any:
        measured.append(args[3])
        return real_fidelity(*args, **kw)

    monkeypatch.setattr(report, "_fidelity", spy)
    cfg = copy.deepcopy(finished.cfg)
    cfg.out = str(out)
    run_benchmark(cfg, report_only=True, progress=False)
    assert measured == [] and json.loads((out / "results.json").read_text())["gan"]["fidelity"] == first
    # Another GAN (its checkpoint's hash in the key) is measured again; so is one whose figure is missing.
    kept = json.loads((out / "fidelity.json").read_text())
    kept["key"]["checkpoint_sha256"] = "0" * 64
    (out / "fidelity.json").write_text(json.dumps(kept))
    run_benchmark(cfg, report_only=True, progress=False)
    assert len(measured) == 1
    (out / "samples_lesion.png").unlink()
    run_benchmark(cfg, report_only=True, progress=False)
    assert len(measured) == 2 and (out / "samples_lesion.png").is_file()


def test_a_per_class_gan_killed_between_classes_keeps_the_finished_class(tmp_path: Path) -> None:
    """The benchmark resumes a per-class GAN whose first class finished before the run was killed (there is no
    composite checkpoint yet), rather than deleting that class's training."""
    from medgan.benchmark import runner
    from medgan.configio import save_config
    from medgan.training.checkpoint import RunFolder, list_checkpoints
    from medgan.utils import file_sha256
    from tests.training.helpers import tiny_config

    data = make_disc_toy(tmp_path / "data")
    gan_yaml = tmp_path / "gan.yaml"
    save_config(tiny_config(data, tmp_path / "unused", "steps=2", "per_class=true"), gan_yaml)
    cfg = load_benchmark_config(bench_config(tmp_path / "bench.yaml", data, gan_yaml))
    ds, out = load_dataset(data), tmp_path / "out"
    out.mkdir()
    runner._train_gan(cfg, ds, out, "cpu", False)
    layout = RunFolder(out / "gan")
    first = list_checkpoints(layout.class_run("lesion"))[-1]
    digest = file_sha256(first)
    # As if killed while the second class trained: its run, the composite and the benchmark's marker are not there.
    shutil.rmtree(layout.class_run("normal"))
    for path in layout.checkpoints.iterdir():
        path.unlink()
    (out / "gan.json").unlink()
    ckpt = runner._train_gan(cfg, ds, out, "cpu", False)
    assert first.is_file() and file_sha256(first) == digest  # the finished class was not trained again
    assert list_checkpoints(layout.class_run("normal"))[-1].name == "step_000002.pt"
    assert list_checkpoints(layout.root) == [ckpt]
    assert _members(ckpt) == ["classes/lesion/checkpoints/step_000002.pt",
                                             "classes/normal/checkpoints/step_000002.pt"]


def _members(path: Path) -> list[str]:
    from medgan.training.checkpoint import load_checkpoint

    return [m["checkpoint"] for m in load_checkpoint(path)["members"]]
