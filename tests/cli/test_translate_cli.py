"""`medgan translate`, and `medgan augment` with a translator, through Typer's CliRunner: shapes, sources, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from medgan.cli.main import app
from medgan.data.dataset import load_dataset
from medgan.training.loop import train
from tests.conftest import BREAST_LIKE_NAMES, make_banded_toy, make_breast_like_toy
from tests.training.helpers import tiny_config, tiny_cycle_config

pytestmark = pytest.mark.usefixtures("one_thread")

BENIGN = BREAST_LIKE_NAMES.index("normal, benign")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two-step cycle runs (normal, benign -> malignant in 2D; class0 -> class1 in 3D) and a residual run."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("translate_toy")
    data2d = make_breast_like_toy(root, "breasttoy", seed=0)
    data3d = make_banded_toy(root, size=8, spatial_dims=3)
    classes = ("cycle.source_class=normal, benign", "cycle.target_class=malignant", "steps=2")
    run2d = train(tiny_cycle_config(data2d, root / "cycle2d", *classes), progress=False).run_dir
    run3d = train(tiny_cycle_config(data3d, root / "cycle3d", "steps=2"), progress=False).run_dir
    gan = train(tiny_config(data2d, root / "gan", "steps=1"), progress=False).run_dir
    return {"data2d": data2d, "data3d": data3d, "run2d": run2d, "run3d": run3d, "gan": gan, "root": root}


def _run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*map(str, args), "--device", "cpu", "--no-progress"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_translate_a_dataset_split_keeps_the_shape_and_records_each_source(toy, tmp_path):
    out = tmp_path / "t"
    code, stdout, stderr = _run(
        "translate",
        "--checkpoint",
        toy["run2d"],
        "--to",
        "malignant",
        "--input",
        toy["data2d"],
        "--split",
        "test",
        "--out",
        out,
    )
    assert code == 0, stderr
    ds = load_dataset(toy["data2d"])
    benign = np.flatnonzero(ds.labels["test"] == BENIGN)
    assert stdout.startswith(f"translated {len(benign)} images (normal, benign -> malignant) as png to {out}")
    rows = _manifest(out)
    assert [r["source"] for r in rows] == [f"breasttoy:test:{i}" for i in benign]
    assert {r["class_name"] for r in rows} == {"malignant"}
    for r in rows:
        assert np.asarray(Image.open(out / r["file"])).shape == (16, 16)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["source_ids"] == [r["source"] for r in rows]
    assert prov["translation"] == [
        {
            "mode": "class",
            "from": "normal, benign",
            "to": "malignant",
            "images": len(benign),
            "inputs": {"kind": "dataset", "dataset": "breasttoy", "sha256": ds.info.sha256, "split": "test"},
        }
    ]
    assert prov["family"] == "cycle" and prov["synthetic"] is True


def test_translate_to_npz_keeps_shapes_and_does_not_depend_on_the_batch_size(toy, tmp_path):
    outs = []
    for bs in (1, 256):
        out = tmp_path / f"bs{bs}"
        code, _, stderr = _run(
            "translate",
            "--checkpoint",
            toy["run2d"],
            "--to",
            "normal_benign",
            "--input",
            toy["data2d"],
            "--format",
            "npz",
            "--batch-size",
            bs,
            "--out",
            out,
        )
        assert code == 0, stderr
        outs.append(load_dataset(out))
    ds = load_dataset(toy["data2d"])
    n_malignant = int((ds.labels["train"] != BENIGN).sum())
    a, b = (o.images["train"] for o in outs)
    assert a.shape == (n_malignant, 16, 16) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, ds.images["train"][ds.labels["train"] != BENIGN])  # translated, not copied


def test_translate_a_folder_of_images_records_paths_relative_to_it(toy, tmp_path):
    folder = tmp_path / "pngs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("sub/b.png", "a.png"):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "t"
    code, _, stderr = _run(
        "translate", "--checkpoint", toy["run2d"], "--to", "malignant", "--input", folder, "--out", out
    )
    assert code == 0, stderr
    rows = _manifest(out)
    assert [r["source"] for r in rows] == ["a.png", "sub/b.png"]
    prov = (out / "provenance.json").read_text()
    assert str(tmp_path) not in json.dumps(json.loads(prov)["source_ids"])
    assert json.loads(prov)["arguments"]["input"] == "pngs"


def test_translate_volumes_to_nifti_keeps_the_shape(toy, tmp_path):
    out = tmp_path / "t"
    code, _, stderr = _run(
        "translate",
        "--checkpoint",
        toy["run3d"],
        "--to",
        "class1",
        "--input",
        toy["data3d"],
        "--format",
        "nifti",
        "--out",
        out,
    )
    assert code == 0, stderr
    rows = _manifest(out)
    assert len(rows) == 24 and rows[0]["source"] == "toy:train:0"
    assert nib.load(out / rows[0]["file"]).shape == (8, 8, 8)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--to", "benign"),
            "unknown --to 'benign' (this translator's domains: A: normal, benign, B: malignant)",
        ),
        (
            ("--to", "malignant", "--input", "BANDED"),
            "--input has the classes class0, class1, but this translator was "
            "trained on malignant, normal, benign",
        ),
        (("--to", "malignant", "--input", "BIGPNG"), "this translator takes 2D, 1 channel, 16×16"),
        (("--to", "malignant", "--checkpoint", "GAN"), "this checkpoint is not a translator"),
        (("--to", "malignant", "--split", "dev"), "unknown --split 'dev' (allowed: train, val, test)"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2_and_writes_nothing(toy, tmp_path, args, message):
    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(big / "x.png")
    swap = {"BANDED": make_banded_toy(tmp_path), "BIGPNG": big, "GAN": toy["gan"]}
    given = dict(zip(args[::2], args[1::2], strict=True))
    opts = {
        "--checkpoint": toy["run2d"],
        "--input": toy["data2d"],
        **{k: swap.get(v, v) for k, v in given.items()},
    }
    out = tmp_path / "out"
    code, stdout, stderr = _run("translate", *[x for kv in opts.items() for x in kv], "--out", out)
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert not out.exists()


def test_augment_with_a_translator_draws_the_other_class_and_records_source_ids(toy, tmp_path):
    ds = load_dataset(toy["data2d"])
    code, stdout, stderr = _run(
        "augment",
        "--checkpoint",
        toy["run2d"],
        "--class",
        "malignant",
        "--n",
        5,
        "--seed",
        3,
        "--out",
        tmp_path / "a",
    )
    assert code == 0, stderr
    assert "malignant: 5 translated from normal, benign" in stdout
    rows = _manifest(tmp_path / "a")
    sources = [r["source"] for r in rows]
    index = [int(s.split(":")[-1]) for s in sources]
    assert all(s.startswith("breasttoy:train:") for s in sources) and len(set(index)) == 5
    assert (ds.labels["train"][index] == BENIGN).all()  # drawn from the other class's train split
    assert {r["class_name"] for r in rows} == {"malignant"} and {r["seed"] for r in rows} == {"3"}
    # Seeded: the same draw again, and a smaller --n is its prefix.
    _run(
        "augment",
        "--checkpoint",
        toy["run2d"],
        "--class",
        "malignant",
        "--n",
        3,
        "--seed",
        3,
        "--out",
        tmp_path / "b",
    )
    assert [r["source"] for r in _manifest(tmp_path / "b")] == sources[:3]
    png = [
        np.asarray(Image.open(tmp_path / d / r["file"]))
        for d, r in (("a", rows[0]), ("b", _manifest(tmp_path / "b")[0]))
    ]
    assert np.array_equal(*png)
    prov = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert prov["source_ids"] == sources and prov["translation"][0]["inputs"]["seed"] == 3


def test_augment_with_a_translator_refuses_more_images_than_the_source_class_has(toy, tmp_path):
    code, _, stderr = _run(
        "augment", "--checkpoint", toy["run2d"], "--class", "malignant", "--n", 37, "--out", tmp_path / "a"
    )
    assert code == 2
    assert "37 'malignant' images asked for, but there are only 36 'normal, benign' training images" in stderr
    assert not (tmp_path / "a").exists()
