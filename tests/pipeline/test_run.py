"""`medgan run` end to end on a fake hospital folder: DICOM series, and PNG with a labels CSV.

The fast tests use tiny generated images and seconds-long settings (tests/pipeline/helpers.py); the
slow one builds the folder from real BreastMNIST images and runs the packaged settings' shapes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from medgan.cli.main import app
from tests.pipeline.helpers import make_hospital, tiny_images, write_run_config

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

STAGES = ["preprocess", "train", "evaluate", "export", "benchmark"]


def _run(source: Path, out: Path, config: Path, *extra: str | Path) -> tuple[int, str]:
    args = [
        "run",
        source,
        "--out",
        out,
        "--size",
        "16",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--config",
        config,
        "--no-progress",
        *extra,
    ]
    result = runner.invoke(app, [str(a) for a in args], terminal_width=200)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    return result.exit_code, result.output + (f"\n{result.exception!r}" if crashed else "")


def _snapshot(out: Path) -> dict[str, tuple[int, str]]:
    """Every file below ``out``: (mtime in ns, sha256)."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _one_line_error(code: int, output: str, fragment: str) -> None:
    assert code == 2, output
    text = output.strip()
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in text, text
    assert fragment in text, text


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("hospital")
    images, labels = tiny_images(per_class=16, size=16)
    paths = make_hospital(root, images, labels, ["lesion", "normal"])
    return SimpleNamespace(root=root, config=write_run_config(root / "run.yaml"), **paths)


@pytest.fixture(scope="module")
def dicom_run(hospital: SimpleNamespace) -> SimpleNamespace:
    out = hospital.root / "out_dicom"
    code, output = _run(hospital.dicom, out, hospital.config)
    return SimpleNamespace(out=out, code=code, output=output)


def test_help_has_an_example() -> None:
    result = runner.invoke(app, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: medgan run ./scans --out runs/scans --labels labels.csv" in result.output
    for option in ("--out", "--labels", "--target-class", "--size", "--device", "--config", "--steps"):
        assert option in result.output


def test_dicom_series_run_writes_index_synthetic_set_manifest_and_report(dicom_run: SimpleNamespace) -> None:
    assert dicom_run.code == 0, dicom_run.output
    assert f"ran 5 stage(s): {', '.join(STAGES)}" in dicom_run.output
    out = dicom_run.out
    for stage in STAGES:
        marker = json.loads((out / stage / "stage.json").read_text())
        assert marker["stage"] == stage and len(marker["inputs_hash"]) == 64

    # Stage 1: the DICOM PatientIDs group the split, so no patient is in two splits.
    with open(out / "preprocess" / "sources.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        splits_of.setdefault(row["patient_id"], set()).add(row["split"])
    assert len(splits_of) == 16 and all(len(s) == 1 for s in splits_of.values())
    info = json.loads((out / "preprocess" / "dataset.json").read_text())
    assert info["preprocessing"]["split_by"] == "stratified by label, grouped by patient"

    # Stage 2: the config came from the closest packaged one, with the data's shape and --steps.
    derived = json.loads((out / "train" / "derived.json").read_text())
    assert derived["base"].endswith("cgan_breastmnist.yaml") and derived["overrides"]["steps"] == 2
    train = json.loads((out / "train" / "stage.json").read_text())["summary"]
    checkpoint = out / "train" / train["checkpoint"]
    assert checkpoint.is_file() and train["steps"] == 2

    # Stage 4: the manifest lists exactly the kept samples; each regenerates from its seed and index.
    gate = json.loads((out / "export" / "gate.json").read_text())
    kept = {name: c["kept"] for name, c in gate["classes"].items()}
    assert all(
        c["candidates"] == 8 and c["kept"] + c["likely_copies"] + c["wrong_class"] == 8
        for c in gate["classes"].values()
    )
    with open(out / "export" / "synthetic" / "manifest.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    assert {n: sum(r["class_name"] == n for r in manifest) for n in kept} == kept
    provenance = json.loads((out / "export" / "synthetic" / "provenance.json").read_text())
    assert provenance["quality_gate"]["classes"] == gate["classes"] and provenance["total"] == sum(
        kept.values()
    )
    with open(out / "export" / "gate.csv", newline="") as fh:
        decisions = list(csv.DictReader(fh))
    assert len(decisions) == 16 and sum(int(d["kept"]) for d in decisions) == len(manifest)
    if manifest:
        from medgan.synth.sampling import iter_samples, load_generator

        row = manifest[-1]
        gen = load_generator(checkpoint, "cpu")
        i = int(row["sample_index"])
        again = next(
            iter_samples(gen, int(row["class_index"]), i + 1, seed=int(row["seed"]), batch_size=i + 1)
        )[i]
        written = np.asarray(PILImage.open(out / "export" / "synthetic" / row["file"]))
        assert np.array_equal(written, again[0])

    # Stage 5: the benchmark used the run's GAN and wrote its report.
    results = json.loads((out / "benchmark" / "results.json").read_text())
    assert Path(results["gan"]["checkpoint"]).resolve() == checkpoint.resolve()
    assert (out / "benchmark" / "report.md").is_file()

    # index.md: the figures first, and every link resolves.
    index = (out / "index.md").read_text()
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())["metrics"]
    assert (
        f"**{metrics['c2st/auc']:.2f}**" in index
        and f"floor of {metrics['c2st/real_vs_real_auc']:.2f}" in index
    )
    for name, c in gate["classes"].items():
        assert f"{name}: **{100 * c['kept_share']:.0f} %** ({c['kept']} of 8)" in index
    assert re.search(r"lesion recall \*\*[+-]\d+\.\d points\*\* \(95% CI [+-]\d", index)
    assert results["verdict"]["answer"] in index
    weak_gate = gate["classifier"]["test_balanced_accuracy"] < 0.6  # chance + 0.1 for two classes
    assert ("its class check is little better than a coin" in index) == weak_gate
    assert (
        index.index("First, the figures") < index.index("## Stages") < index.index("## 1. Prepared dataset")
    )
    links = re.findall(r"\]\(([^)]+)\)", index)
    assert len(links) > 20 and all((out / link).exists() for link in links), [
        link for link in links if not (out / link).exists()
    ]


def test_second_run_skips_every_stage_and_changes_no_file(
    dicom_run: SimpleNamespace, hospital: SimpleNamespace
) -> None:
    assert dicom_run.code == 0, dicom_run.output
    before = _snapshot(dicom_run.out)
    code, output = _run(hospital.dicom, dicom_run.out, hospital.config)
    assert code == 0, output
    assert f"skipped 5 finished stage(s): {', '.join(STAGES)}" in output and "ran " not in output
    assert _snapshot(dicom_run.out) == before


def test_deleting_a_stage_reruns_it_and_the_stages_after_it(
    dicom_run: SimpleNamespace, hospital: SimpleNamespace, tmp_path: Path
) -> None:
    assert dicom_run.code == 0, dicom_run.output
    out = tmp_path / "out"
    shutil.copytree(dicom_run.out, out)  # keeps mtimes; nothing in the stage inputs names the folder
    before = _snapshot(out)
    shutil.rmtree(out / "export")
    code, output = _run(hospital.dicom, out, hospital.config)
    assert code == 0, output
    assert "skipped 3 finished stage(s): preprocess, train, evaluate" in output
    assert "ran 2 stage(s): export, benchmark" in output
    after = _snapshot(out)
    for path, stamp in before.items():
        if path.split("/")[0] in ("preprocess", "train", "evaluate"):
            assert after[path] == stamp, path
    assert after["benchmark/stage.json"] != before["benchmark/stage.json"]
    gate = json.loads((out / "export" / "gate.json").read_text())
    assert gate == json.loads((dicom_run.out / "export" / "gate.json").read_text())  # the same seeded draw


def test_an_interrupted_stage_leaves_no_half_output(
    dicom_run: SimpleNamespace, hospital: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert dicom_run.code == 0, dicom_run.output
    out = tmp_path / "out"
    shutil.copytree(dicom_run.out, out)
    shutil.rmtree(out / "evaluate")

    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("medgan.api.evaluate", ctrl_c)
    code, output = _run(hospital.dicom, out, hospital.config)
    assert code == 130, output
    assert "finished stages are kept" in output and "run the same command again to continue" in output
    assert not (out / "evaluate").exists() and not [
        p for p in out.iterdir() if p.name.startswith(".evaluate")
    ]
    assert (out / "train" / "stage.json").is_file() and (out / "export" / "stage.json").is_file()


def test_png_with_labels_csv(hospital: SimpleNamespace) -> None:
    out = hospital.root / "out_png"
    code, output = _run(
        hospital.png, out, hospital.config, "--labels", hospital.labels, "--target-class", "normal"
    )
    assert code == 0, output
    info = json.loads((out / "preprocess" / "dataset.json").read_text())
    assert info["class_names"] == ["lesion", "normal"] and info["preprocessing"]["labels_from"] == "csv"
    assert info["preprocessing"]["split_by"] == "stratified by label, grouped by patient"
    assert info["counts"]["train"] == [10, 10]
    matched = (out / "labels_matched.csv").read_text().splitlines()
    assert matched[0] == "path,label,patient_id" and len(matched) == 33
    results = json.loads((out / "benchmark" / "results.json").read_text())
    assert results["target_class"]["name"] == "normal"
    assert "normal recall" in (out / "index.md").read_text()
    assert (out / "export" / "synthetic" / "manifest.csv").is_file()


# Section. Bad input: one line, exit 2, and nothing trained.


def test_bad_input_is_refused_before_training(hospital: SimpleNamespace, tmp_path: Path) -> None:
    cfg = hospital.config
    code, output = _run(tmp_path / "missing", tmp_path / "o1", cfg)
    _one_line_error(code, output, "no such file or folder")
    assert not (tmp_path / "o1").exists()

    one = tmp_path / "one_class" / "lesion"
    one.mkdir(parents=True)
    for p in sorted(hospital.png.glob("*.png"))[:4]:
        shutil.copy(p, one)
    code, output = _run(one.parent, tmp_path / "o2", cfg)
    _one_line_error(code, output, "found one class only ('lesion' in class folders)")
    assert not (tmp_path / "o2").exists()

    labels = tmp_path / "labels.csv"
    labels.write_text("id,label,patient_id\nscan_001,lesion,A\nscan_002,normal,B\n")
    code, output = _run(hospital.png, tmp_path / "o3", cfg, "--labels", labels)
    _one_line_error(code, output, "none of the 2 ids matches an image below")

    broken = tmp_path / "broken"
    shutil.copytree(hospital.dicom, broken)
    (broken / "normal" / "P1000_0.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x01" * 40)  # truncated header
    code, output = _run(broken, tmp_path / "o4", cfg)
    _one_line_error(code, output, "P1000_0.dcm")
    assert not (tmp_path / "o4" / "train").exists() and not (tmp_path / "o4" / "preprocess").exists()

    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("steps: 3\n")
    code, output = _run(hospital.dicom, tmp_path / "o5", bad_cfg)
    _one_line_error(code, output, "training keys go under 'train:'")

    code, output = _run(
        hospital.dicom, hospital.dicom / "runs", cfg
    )  # the next run would read its own output
    _one_line_error(code, output, "--out must not be inside the source folder")
    assert not (hospital.dicom / "runs").exists()

    other = tmp_path / "not_a_run"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, output = _run(hospital.dicom, other, cfg)
    _one_line_error(code, output, "holds no medgan run")


@pytest.mark.slow
def test_ct_volumes_from_dicom_series(tmp_path: Path) -> None:
    """One CT series per patient and class: 3D all the way, from the 3D packaged config to NIfTI samples."""
    from tests.data.helpers import write_series

    for c, name in enumerate(("healthy", "tumour")):
        for p in range(6):
            write_series(tmp_path / "src" / name / f"{name[0]}{p}", 6, patient=f"{name[0]}{p}", step=2.5 + c)
    config = write_run_config(tmp_path / "run.yaml", train={"batch_size": 4})
    args = [
        "run",
        tmp_path / "src",
        "--out",
        tmp_path / "out",
        "--size",
        "8",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--config",
        config,
        "--no-progress",
    ]
    result = runner.invoke(app, [str(a) for a in args], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert json.loads((out / "preprocess" / "dataset.json").read_text())["size"] == [8, 8, 8]
    assert json.loads((out / "train" / "derived.json").read_text())["base"].endswith(
        "cgan_adrenalmnist3d.yaml"
    )
    with open(out / "export" / "synthetic" / "manifest.csv", newline="") as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    assert all(f.endswith(".nii.gz") and (out / "export" / "synthetic" / f).is_file() for f in files)
    assert (out / "benchmark" / "report.md").is_file()


# Section. Real data (slow).


@pytest.mark.slow
def test_breastmnist_hospital_folder_end_to_end(tmp_path: Path) -> None:
    """Real BreastMNIST images as a hospital folder (DICOM series, and PNG + CSV), 28 px, a few hundred steps."""
    from medgan.data.dataset import load_dataset
    from tests.conftest import real_npz

    ds = load_dataset(real_npz("breastmnist.npz"))
    rng = np.random.default_rng(0)
    pick = np.concatenate(
        [rng.choice(np.flatnonzero(ds.labels["train"] == c), 60, replace=False) for c in (0, 1)]
    )
    paths = make_hospital(
        tmp_path, ds.images["train"][pick], ds.labels["train"][pick], ["malignant", "benign"], per_patient=3
    )
    config = write_run_config(
        tmp_path / "run.yaml",
        evaluate={"n_per_class": 60, "feature_epochs": 10, "c2st_folds": 3, "c2st_steps": 100},
        export={"n_per_class": 60},
        benchmark={"seeds": 2, "classifier": {"epochs": 5}},
    )
    for source, extra in ((paths["dicom"], ()), (paths["png"], ("--labels", paths["labels"]))):
        out = tmp_path / f"out_{source.name}"
        args = [
            "run",
            source,
            "--out",
            out,
            "--size",
            "28",
            "--steps",
            "300",
            "--device",
            "cpu",
            "--config",
            config,
            "--no-progress",
            "--target-class",
            "malignant",
            *extra,
        ]
        result = runner.invoke(app, [str(a) for a in args], terminal_width=200)
        assert result.exit_code == 0, result.output
        gate = json.loads((out / "export" / "gate.json").read_text())
        assert set(gate["classes"]) == {"malignant", "benign"}
        assert json.loads((out / "evaluate" / "metrics.json").read_text())["metrics"]["c2st/auc"] > 0
        results = json.loads((out / "benchmark" / "results.json").read_text())
        assert results["target_class"]["name"] == "malignant" and results["verdict"]["answer"]
        again = runner.invoke(app, [str(a) for a in args], terminal_width=200)
        assert again.exit_code == 0 and "skipped 5 finished stage(s)" in again.output
