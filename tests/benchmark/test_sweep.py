"""The data-scarcity sweep: nested stratified subsets, a GAN per subset that sees only it, equal steps, the report."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medgan.benchmark.config import load_benchmark_config
from medgan.benchmark.plan import JobPlan, arm_label, parse_arm_label, run_path
from medgan.benchmark.runner import run_benchmark
from medgan.benchmark.subsets import subset_counts, subset_indices, write_train_copy
from medgan.cli.main import app
from medgan.data.dataset import load_dataset
from medgan.errors import MedganError
from medgan.training import classifier as clf
from medgan.training import loop
from medgan.training.checkpoint import load_checkpoint, trained_on
from tests.benchmark.helpers import bench_config, gan_checkpoint, gan_config
from tests.conftest import make_disc_toy

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

TRAIN_CLASSIFIER = clf.train_classifier
ARMS = ["real", "real+classical", "real+oversample", "real+synthetic", "synthetic-pretrain"]


def test_subsets_are_stratified_nested_and_seeded() -> None:
    labels = np.repeat([0, 1, 2], [40, 160, 3])
    rng_labels = np.random.default_rng(0).permutation(labels)  # classes interleaved, as in a real split
    previous: set[int] = set()
    for f in (0.05, 0.1, 0.25, 0.5, 1.0):
        idx = subset_indices(rng_labels, f, subset_seed=3)
        counts = np.bincount(rng_labels[idx], minlength=3).tolist()
        # Stratified: ceil(f * n) of every class, at least 2 (min_per_class), at most the class.
        want = [min(n, max(2, int(np.ceil(round(f * n, 9))))) for n in (40, 160, 3)]
        assert counts == want == subset_counts(rng_labels, 3, f), f
        assert np.all(np.diff(idx) > 0)  # sorted, no repeats
        # Nested: every image of a smaller fraction is in every larger one.
        assert previous <= set(idx.tolist())
        previous = set(idx.tolist())
    assert np.array_equal(subset_indices(rng_labels, 1.0, 3), np.arange(len(labels)))
    assert np.array_equal(subset_indices(rng_labels, 0.1, 3), subset_indices(rng_labels, 0.1, 3))
    assert not np.array_equal(subset_indices(rng_labels, 0.1, 3), subset_indices(rng_labels, 0.1, 4))
    assert np.bincount(rng_labels[subset_indices(rng_labels, 0.1, 0, min_per_class=1)]).tolist() == [4, 16, 1]
    with pytest.raises(ValueError, match="fraction"):
        subset_indices(labels, 0.0, 0)


def test_a_subset_copy_is_recognised_for_that_subset_only(tmp_path: Path) -> None:
    ds = load_dataset(make_disc_toy(tmp_path))
    idx = subset_indices(ds.labels["train"], 0.5, 1)
    copy = load_dataset(write_train_copy(ds, tmp_path / "gan_data", (0.5, 1), idx))
    assert np.array_equal(copy.images["train"], ds.images["train"][idx])
    assert len(copy.images["val"]) == len(copy.images["test"]) == 0
    names = ds.info.class_names
    record = {"sha256": copy.info.sha256, "source": copy.info.source}
    assert trained_on(record, names, ds.info, subset=(0.5, 1))
    assert not trained_on(record, names, ds.info)  # not the whole train split
    assert not trained_on(record, names, ds.info, subset=(0.5, 0))
    assert not trained_on(record, names, ds.info, subset=(0.25, 1))
    assert trained_on(record, names, copy.info)  # the copy itself, as resuming its GAN checks
    whole = load_dataset(write_train_copy(ds, tmp_path / "whole"))
    record = {"sha256": whole.info.sha256, "source": whole.info.source}
    assert trained_on(record, names, ds.info) and trained_on(record, names, ds.info, subset=(1.0, 0))
    assert not trained_on(record, names, ds.info, subset=(0.5, 1))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A two-fraction benchmark with two subsets, watching what every GAN and classifier is given."""
    root = tmp_path_factory.getbasetemp() / "bench_shared"
    root.mkdir(exist_ok=True)
    data = make_disc_toy(root)
    tmp = tmp_path_factory.mktemp("sweep")
    gans: list[Any] = []
    calls: list[dict[str, Any]] = []
    real_train = loop.train

    def spy_gan(cfg: Any, **kw: Any) -> Any:
        gans.append(cfg)
        return real_train(cfg, **kw)

    def spy_classifier(model: Any, train: Any, val: Any, **kw: Any) -> Any:
        calls.append({"train": train, **kw})
        return TRAIN_CLASSIFIER(model, train, val, **kw)

    path = bench_config(
        tmp / "bench.yaml",
        data,
        gan_config(root, data),
        arms=ARMS,
        fractions=[0.5, 1.0],
        subsets=2,
        classifier={"epochs": 2},
        pretrain={"ratio": 2},
        synthetic={"ratios": [3], "ratio_upto": 0.5},  # the ratio sweep at 50 % only
        fidelity={"enabled": False},
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "train", spy_gan)
        mp.setattr(clf, "train_classifier", spy_classifier)
        cfg = load_benchmark_config(path)
        result = run_benchmark(cfg, progress=False)
    return SimpleNamespace(
        cfg=cfg, path=path, result=result, out=result.out, gans=gans, calls=calls, ds=load_dataset(data)
    )


def _per_job(sweep: SimpleNamespace) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The classifier calls of every job (a pretraining arm makes two), in run order."""
    calls = iter(sweep.calls)
    return {
        job: [next(calls) for _ in range(2 if parse_arm_label(job[0]).arm == "synthetic-pretrain" else 1)]
        for job in sweep.result.ran
    }


def test_each_fraction_has_its_own_gan_that_sees_only_its_subset(sweep: SimpleNamespace) -> None:
    ds = sweep.ds
    seen = {(Path(g.data).parent.name): load_dataset(g.data) for g in sweep.gans}
    assert sorted(seen) == ["f0.5-s0", "f0.5-s1", sweep.out.name]  # one GAN per (fraction, subset seed)
    full = seen[sweep.out.name]
    assert np.array_equal(full.images["train"], ds.images["train"])
    for k in (0, 1):
        part = seen[f"f0.5-s{k}"]
        idx = subset_indices(ds.labels["train"], 0.5, k)
        assert np.array_equal(part.images["train"], ds.images["train"][idx])
        assert np.array_equal(part.labels["train"], ds.labels["train"][idx])
        assert len(part.images["val"]) == len(part.images["test"]) == 0
        inside = {img.tobytes() for img in ds.images["train"][idx]}
        outside = {img.tobytes() for i, img in enumerate(ds.images["train"]) if i not in set(idx.tolist())}
        assert all(img.tobytes() in inside and img.tobytes() not in outside for img in part.images["train"])
        # Its checkpoint counts as trained on this subset of the benchmark data, and on nothing else.
        marker = sweep.out / "gans" / f"f0.5-s{k}" / "gan.json"
        ckpt = load_checkpoint(marker.parent / json.loads(marker.read_text())["checkpoint"])
        names = ckpt["class_names"]
        assert trained_on(ckpt["dataset"], names, ds.info, subset=(0.5, k))
        assert not trained_on(ckpt["dataset"], names, ds.info)
        assert not trained_on(ckpt["dataset"], names, ds.info, subset=(0.5, 1 - k))


def test_a_subset_gan_is_audited_for_memorisation_against_its_own_subset(
        sweep: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the whole split, look-alikes of images a fraction's GAN never saw were counted as copies."""
    import shutil

    from medgan.benchmark import report

    out = tmp_path / "again"
    shutil.copytree(sweep.out, out)
    audited: dict[str, Any] = {}

    def spy(out_: Path, cfg: Any, ds: Any, checkpoint: str, device: str, suffix: str = "", seen: Any = None) -> Any:
        audited[next((p for p in Path(checkpoint).parts if p.startswith("f0.")), "whole")] = seen
        return {"memorisation/n_train": float(len(ds.labels["train"]) if seen is None else len(seen))}, None, []

    monkeypatch.setattr(report, "_fidelity", spy)
    cfg = load_benchmark_config(sweep.path, overrides=["fidelity.enabled=true"])  # the fixture's sweep skipped it
    cfg.out = str(out)
    results = run_benchmark(cfg, report_only=True, progress=False).results
    assert sorted(audited) == ["f0.5-s0", "whole"] and audited["whole"] is None
    np.testing.assert_array_equal(audited["f0.5-s0"], subset_indices(sweep.ds.labels["train"], 0.5, 0))
    assert results["by_fraction"]["0.5"]["gan"]["fidelity"]["memorisation/n_train"] == 24
    assert "memorisation audit against the 24 images this GAN learnt from" in (out / "report.md").read_text()


def test_a_sweep_report_measures_each_fraction_for_real(sweep: SimpleNamespace, tmp_path: Path) -> None:
    """End to end, no spy: fidelity at both fractions, the subset audit, the floor trained once."""
    import shutil

    from medgan.metrics import c2st as c2st_mod

    out = tmp_path / "measured"
    shutil.copytree(sweep.out, out)
    cfg = load_benchmark_config(sweep.path, overrides=[
        "fidelity.enabled=true", "fidelity.n_per_class=12", "fidelity.c2st_folds=2", "fidelity.c2st_min_steps=0",
        "fidelity.feature_epochs=2"])
    cfg.out = str(out)
    c2st_mod._MEMO.clear()
    results = run_benchmark(cfg, report_only=True, progress=False).results
    half, whole = (results["by_fraction"][k]["gan"]["fidelity"] for k in ("0.5", "1"))
    assert half["memorisation/n_train"] == 24 and whole["memorisation/n_train"] == 48
    assert half["c2st/real_vs_real_auc"] == whole["c2st/real_vs_real_auc"]  # the same floor, remembered
    assert (out / "memorisation_pairs_f0.5.png").is_file() and (out / "fidelity_f0.5.json").is_file()


def test_gans_trained_in_parallel_processes_are_the_serial_ones(sweep: SimpleNamespace, tmp_path: Path) -> None:
    """jobs: 2 trains the sweep's three GANs in spawned processes: the left-over one first on every core, then
    two at a time on half each; each is what the serial sweep made."""
    import dataclasses

    import torch
    import yaml

    from medgan.benchmark import runner
    from medgan.device import cpu_cores

    def not_here(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a GAN was trained in the main process")

    cfg = dataclasses.replace(sweep.cfg, jobs=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "_train_gan", not_here)  # spawned workers import the real one
        run_benchmark(cfg, out=tmp_path / "par", plan=JobPlan.gan(), progress=False)
    for part in ("", "gans/f0.5-s0/", "gans/f0.5-s1/"):
        serial, parallel = (root / part for root in (sweep.out, tmp_path / "par"))
        assert json.loads((parallel / "gan_data/dataset.json").read_text())["sha256"] == json.loads(
            (serial / "gan_data/dataset.json").read_text())["sha256"]
        a, b = (load_checkpoint(root / json.loads((root / "gan.json").read_text())["checkpoint"])
                for root in (serial, parallel))
        assert a["step"] == b["step"] == 2, part
        for key, value in a["G_ema"].items():
            torch.testing.assert_close(b["G_ema"][key], value, rtol=1e-5, atol=1e-6, msg=f"{part}{key}")
    assert not (tmp_path / "par" / "runs").exists()  # --only gan: no classifier run
    threads = [yaml.safe_load((tmp_path / "par" / part / "gan/config.yaml").read_text())["threads"]
               for part in ("", "gans/f0.5-s0/", "gans/f0.5-s1/")]
    assert threads == [cpu_cores(), max(1, cpu_cores() // 2), max(1, cpu_cores() // 2)]


def test_every_arm_of_a_seed_trains_on_the_same_subset(sweep: SimpleNamespace) -> None:
    ds = sweep.ds
    per_job = _per_job(sweep)
    for f in (0.5, 1.0):
        for seed in (0, 1):
            idx = subset_indices(ds.labels["train"], f, seed % 2)  # subset seed = seed mod subsets
            want = ds.channel_first("train")[idx]
            for arm in ARMS:
                last = per_job[(arm_label(arm, f), seed)][-1]  # the real images (after pretraining)
                assert np.array_equal(last["train"][0], want), (arm, f, seed)
                record = json.loads(run_path(sweep.out, arm_label(arm, f), seed).read_text())
                assert (record["fraction"], record["subset_seed"]) == (f, 0 if f == 1 else seed % 2)
    a, b = (per_job[("real@0.5", seed)][0]["train"][0] for seed in (0, 1))
    assert len(a) == len(b) == 24 and not np.array_equal(a, b)  # two subsets of 6 + 18 images


def test_every_arm_of_a_fraction_gets_the_same_number_of_steps(sweep: SimpleNamespace) -> None:
    budget = sweep.result.results["budget"]
    assert budget == {"steps": 6, "eval_every": 3, "pretrain_steps": 3}
    for job, calls in _per_job(sweep).items():
        assert sum(c["steps"] for c in calls) == budget["steps"], job
        assert all(c["eval_every"] == 3 for c in calls)
        record = json.loads(run_path(sweep.out, *job).read_text())
        assert record["steps"] == budget["steps"] and record["history"][-1]["step"] == budget["steps"]
        assert record["selected_last"] == (record["selected_step"] == budget["steps"])
    pretrain = _per_job(sweep)[("synthetic-pretrain@0.5", 0)]
    assert [c["steps"] for c in pretrain] == [3, 3] and set(np.unique(pretrain[0]["train"][1])) == {0, 1}
    assert len(pretrain[0]["train"][1]) == 2 * 24  # pretrain.ratio x the real images of the subset


def test_a_budget_per_fraction_gives_every_arm_of_a_fraction_its_steps(sweep: SimpleNamespace, tmp_path: Path) -> None:
    """classifier.budget: fraction: 24 images at 0.5 are 2 batches of 16 per pass, 48 at 1.0 are 3."""
    path = bench_config(tmp_path / "bench.yaml", sweep.cfg.data, Path(sweep.cfg.gan.train_config),
                        arms=["real", "real+synthetic", "synthetic-pretrain"], fractions=[0.5, 1.0], seeds=1,
                        classifier={"epochs": 2, "budget": "fraction"}, pretrain={"ratio": 2},
                        fidelity={"enabled": False})
    result = run_benchmark(load_benchmark_config(path), progress=False)
    for (label, _), steps in {("real@0.5", 0): 4, ("real+synthetic@0.5", 0): 4, ("synthetic-pretrain@0.5", 0): 4,
                              ("real", 0): 6, ("real+synthetic", 0): 6, ("synthetic-pretrain", 0): 6}.items():
        record = json.loads(run_path(result.out, label, 0).read_text())
        assert record["steps"] == record["history"][-1]["step"] == steps, label
    results = result.results
    assert results["budget"]["steps"] == 6
    assert {k: b["steps"] for k, b in results["budget_per_fraction"].items()} == {"0.5": 4, "1": 6}
    assert "counted on the fraction's real images (0.5: 4, 1: 6;" in (result.out / "report.md").read_text()


def test_oversampling_matches_the_synthetic_arm_at_every_fraction(sweep: SimpleNamespace) -> None:
    for f in (0.5, 1.0):
        for seed in (0, 1):
            control = json.loads(run_path(sweep.out, arm_label("real+oversample", f), seed).read_text())
            synthetic = json.loads(run_path(sweep.out, arm_label("real+synthetic", f), seed).read_text())
            assert control["n_train"]["repeated"] == synthetic["n_train"]["synthetic"]
            assert control["n_train"]["real"] == synthetic["n_train"]["real"]
    assert json.loads(run_path(sweep.out, "real+oversample@0.5", 0).read_text())["n_train"]["repeated"] == [
        12,
        0,
    ]


def test_the_sweep_report(sweep: SimpleNamespace) -> None:
    results = sweep.result.results
    assert results["fractions"] == [0.5, 1.0] and sorted(results["by_fraction"]) == ["0.5", "1"]
    half = results["by_fraction"]["0.5"]
    assert half["n_real"] == 24 and half["seeds"] == [0, 1] and half["steps"]["real"] == [6, 6]
    assert half["primary"]["baseline"] == "real+classical" and half["primary"]["metric"] == "recall/lesion"
    assert half["primary"]["arm"] in ("real+synthetic", "synthetic-pretrain") and half["power"]["lift"] > 0
    assert results["metrics"] == results["by_fraction"]["1"]["metrics"]  # the top level is the whole split
    report = (sweep.out / "report.md").read_text()
    assert "## Fraction 0.5: 24 real training images (2 seeds)" in report and "**Power.**" in report
    assert "Holm p" in report and "| real+oversample |" in report and "At 50% of the train split" in report
    for name in ("lift_curve.png", "metrics.png", "metrics_f0.5.png", "training_curves_f0.5.png"):
        with Image.open(sweep.out / name) as im:
            im.verify()
        assert f"({name})" in report
    # The ratio sweep ran its one variant at 50 % only, for both seeds, on the same steps as the arms.
    variants = {(label, seed) for label, seed in sweep.result.ran if parse_arm_label(label).ratio is not None}
    assert len({label for label, _ in variants}) == 1 and {seed for _, seed in variants} == {0, 1}
    (label,) = {label for label, _ in variants}
    run = parse_arm_label(label)
    assert (run.ratio, run.fraction) == (3.0, 0.5) and f"{run.arm}-x3" in half["metrics"]
    assert not any(parse_arm_label(a).ratio for a in results["by_fraction"]["1"]["metrics"])
    # Resuming does nothing more.
    again = run_benchmark(load_benchmark_config(sweep.path), progress=False)
    assert again.ran == [] and len(again.skipped) == 2 * 2 * len(ARMS) + 2


def test_a_given_checkpoint_serves_the_whole_split_only(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    data = make_disc_toy(root)
    cfg = load_benchmark_config(
        bench_config(tmp_path / "b.yaml", data, gan_config(root, data), fractions=[0.5, 1])
    )
    with pytest.raises(MedganError, match="serves the whole train split only"):
        run_benchmark(cfg, checkpoint=gan_checkpoint(root, data), progress=False)
    assert not Path(cfg.out).exists()


def test_the_curated_arm_records_its_kept_share(tmp_path: Path) -> None:
    root = tmp_path.parent / "bench_shared"
    root.mkdir(exist_ok=True)
    data = make_disc_toy(root)
    cfg = load_benchmark_config(
        bench_config(
            tmp_path / "b.yaml",
            data,
            gan_config(root, data),
            seeds=1,
            arms=["real", "real+synthetic", "real+curated-synthetic"],
            curation={"confidence": 0.5},
            fidelity={"enabled": False},
        )
    )
    result = run_benchmark(cfg, checkpoint=gan_checkpoint(root, data), progress=False)
    record = json.loads(run_path(result.out, "real+curated-synthetic", 0).read_text())
    cur = record["curation"]
    assert cur["candidates"] == [72, 0] and cur["confidence"] == 0.5  # 3 candidates per added lesion
    assert record["n_train"]["synthetic"] == [min(24, cur["kept"][0]), 0]
    assert cur["kept_share"][0] == pytest.approx(cur["kept"][0] / 72)
    assert "Curation (real+curated-synthetic, confidence ≥ 0.5" in (result.out / "report.md").read_text()


def test_fractions_on_the_command_line(tmp_path: Path) -> None:
    root = tmp_path.parent / "bench_shared"
    root.mkdir(exist_ok=True)
    data = make_disc_toy(root)
    config = bench_config(tmp_path / "b.yaml", data, gan_config(root, data), arms=["real"])
    runner = CliRunner()
    ok = runner.invoke(
        app, ["benchmark", str(config), "--fractions", "0.5,1", "--only", "real@0.5:1", "--no-progress"]
    )
    assert ok.exit_code == 0, ok.output
    assert "1 run(s) done" in ok.output and run_path(tmp_path / "out", "real@0.5", 1).is_file()
    bad = runner.invoke(app, ["benchmark", str(config), "--fractions", "0,1"])
    assert bad.exit_code == 2 and bad.output.strip().startswith("error: ") and "fractions" in bad.output
    other = runner.invoke(app, ["benchmark", str(config), "--fractions", "0.5,1", "--only", "real@0.25:0"])
    assert other.exit_code == 2 and "fraction 0.25 is not in this benchmark" in other.output
    assert JobPlan.parse(
        ["real@0.5:1"], load_benchmark_config(config, overrides=["fractions=[0.5,1]"])
    ).runs == (("real@0.5", 1),)


def test_a_larger_fraction_joining_keeps_the_former_largest_fractions_measurement(
        sweep: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The largest fraction's files are unsuffixed; once a larger one joins, the former largest's kept
    measurement moves to its ``_f<F>`` name (figures copied) instead of being measured again."""
    import shutil

    from medgan.benchmark import report

    out = tmp_path / "grown"
    shutil.copytree(sweep.out, out)
    measured: list[str] = []

    def spy(out_: Path, cfg: Any, ds: Any, checkpoint: str, device: str, suffix: str = "", seen: Any = None) -> Any:
        measured.append(next((p for p in Path(checkpoint).parts if p.startswith("f0.")), "whole"))
        (out_ / f"samples_lesion{suffix}.png").write_bytes(measured[-1].encode())
        return {"c2st/auc": 0.5 + len(measured) / 10}, None, [f"samples_lesion{suffix}.png"]

    monkeypatch.setattr(report, "_fidelity", spy)
    cfg = load_benchmark_config(sweep.path, overrides=["fidelity.enabled=true", "fractions=[0.5]"])
    cfg.out = str(out)
    first = run_benchmark(cfg, report_only=True, progress=False).results
    assert measured == ["f0.5-s0"] and first["gan"]["fidelity"] == {"c2st/auc": 0.6}
    assert (out / "fidelity.json").is_file() and not (out / "fidelity_f0.5.json").exists()

    cfg = load_benchmark_config(sweep.path, overrides=["fidelity.enabled=true"])
    cfg.out = str(out)
    results = run_benchmark(cfg, report_only=True, progress=False).results
    assert measured == ["f0.5-s0", "whole"]
    assert results["by_fraction"]["0.5"]["gan"]["fidelity"] == {"c2st/auc": 0.6}
    assert results["by_fraction"]["1"]["gan"]["fidelity"] == {"c2st/auc": 0.7}
    assert json.loads((out / "fidelity_f0.5.json").read_text())["figures"] == ["samples_lesion_f0.5.png"]
    assert (out / "samples_lesion_f0.5.png").read_bytes() == b"f0.5-s0"
    assert (out / "samples_lesion.png").read_bytes() == b"whole"
