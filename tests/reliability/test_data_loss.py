"""Inputs are never lost (#15): no command replaces, or writes over, its own inputs, with or without
``--overwrite``. Every case goes through the real CLI: exit 2, one ``error:`` line naming the input, no
traceback, the input byte for byte intact and nothing new beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medgan.errors import MedganError
from medgan.utils import check_not_input
from tests.reliability.runs import cli, hidden_siblings, one_line_error, tiny_run, tree_digest

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_run(tmp_path_factory.mktemp("data_loss"))


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


# Section. The rule itself.


def test_check_not_input_refuses_an_input_or_a_folder_holding_one(tmp_path: Path) -> None:
    data = tmp_path / "data" / "dataset.npz"
    data.parent.mkdir()
    data.write_bytes(b"x")
    for out in (tmp_path / "data", tmp_path, data):  # the input's folder, a folder above it, the input itself
        with pytest.raises(MedganError, match=r"--out (holds|is) the dataset"):
            check_not_input(out, {"the dataset": data})
    # Beside the input, or inside an input's folder that is not a whole-folder input: allowed.
    check_not_input(tmp_path / "elsewhere", {"the dataset": data})
    check_not_input(tmp_path / "data" / "synth", {"the dataset": data, "nothing": None})
    # A whole-folder input (a source folder, a run folder): not inside it either.
    with pytest.raises(MedganError, match="must not be inside the source folder"):
        check_not_input(tmp_path / "data" / "synth", {}, folders={"the source folder": tmp_path / "data"})


def test_check_not_input_follows_symbolic_links(tmp_path: Path) -> None:
    real = tmp_path / "run"
    real.mkdir()
    (real / "ckpt.pt").write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(MedganError, match="holds the checkpoint"):
        check_not_input(link, {"the checkpoint": real / "ckpt.pt"})


# Section. augment.


def test_augment_overwrite_into_the_checkpoints_own_run_folder(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    # The defect of #15: this deleted the run and its checkpoints, exit 0.
    run = _copy_run(toy[0], tmp_path / "run")
    before = tree_digest(run)
    for checkpoint in (run, next((run / "checkpoints").glob("*.pt"))):
        for out in (run, run / "checkpoints", run / "samples"):
            line = one_line_error(
                *cli(
                    "augment",
                    "--checkpoint",
                    checkpoint,
                    "--class",
                    "all",
                    "--n",
                    4,
                    "--no-progress",
                    "--device",
                    "cpu",
                    "--out",
                    out,
                    "--overwrite",
                )
            )
            assert f"error: {out}: --out" in line and ("checkpoint" in line), line
            assert tree_digest(run) == before and hidden_siblings(out) == []


def test_augment_overwrite_onto_the_balance_dataset(toy: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = toy
    data = Path(shutil.copytree(data, tmp_path / "data"))
    before = tree_digest(data)
    line = one_line_error(
        *cli(
            "augment",
            "--checkpoint",
            run,
            "--balance",
            "--data",
            data,
            "--no-progress",
            "--device",
            "cpu",
            "--out",
            data,
            "--overwrite",
        )
    )
    assert "--out holds the --data dataset" in line
    assert tree_digest(data) == before


def test_augment_overwrite_onto_a_folder_holding_the_checkpoint_file(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt = next((toy[0] / "checkpoints").glob("*.pt"))
    mine = tmp_path / "models"
    mine.mkdir()
    shutil.copy(ckpt, mine / "g.pt")
    before = tree_digest(mine)
    line = one_line_error(
        *cli(
            "augment",
            "--checkpoint",
            mine / "g.pt",
            "--class",
            "all",
            "--n",
            4,
            "--no-progress",
            "--device",
            "cpu",
            "--out",
            tmp_path,
            "--overwrite",
        )
    )
    assert "--out holds the checkpoint" in line and tree_digest(mine) == before


# Section. preprocess.


def _png_tree(root: Path) -> Path:
    from tests.data.helpers import make_png_tree

    make_png_tree(root, per_class=3)
    return root


def test_preprocess_out_inside_the_source_folder(tmp_path: Path) -> None:
    src = _png_tree(tmp_path / "scans")
    before = tree_digest(src)
    line = one_line_error(*cli("preprocess", src, "--out", src / "prepared", "--size", 8, "--no-progress"))
    assert "--out must not be inside the source folder" in line
    assert tree_digest(src) == before


def test_preprocess_overwrite_onto_the_folder_holding_the_csv_and_its_images(tmp_path: Path) -> None:
    src = _png_tree(tmp_path / "scans")
    rows = ["path,label"] + [f"{p.relative_to(src)},{p.parent.name}" for p in sorted(src.rglob("*.png"))]
    manifest = src / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    before = tree_digest(src)
    # --out is the folder that holds the manifest and every image it lists.
    line = one_line_error(
        *cli("preprocess", "--csv", manifest, "--out", src, "--overwrite", "--size", 8, "--no-progress")
    )
    assert "--out holds the CSV manifest" in line
    assert tree_digest(src) == before and hidden_siblings(src) == []
    # A manifest elsewhere whose images lie in --out: the images are inputs too.
    outside = tmp_path / "list.csv"
    outside.write_text(
        "\n".join(["path,label"] + [f"{src / r.split(',')[0]},{r.split(',')[1]}" for r in rows[1:]])
    )
    line = one_line_error(
        *cli("preprocess", "--csv", outside, "--out", src, "--overwrite", "--size", 8, "--no-progress")
    )
    assert "--out holds source 1 of" in line
    assert tree_digest(src) == before and hidden_siblings(src) == []


# Section. train, evaluate, benchmark.


def test_train_overwrite_onto_the_folder_holding_its_data_and_config(
    toy: tuple[Path, Path], tmp_path: Path
) -> None:
    from medgan.configio import save_config
    from tests.training.helpers import tiny_config

    work = tmp_path / "work"
    data = Path(shutil.copytree(toy[1], work / "data"))
    config = work / "tiny.yaml"
    save_config(tiny_config(data, work, "steps=1"), config)
    before = tree_digest(work)
    line = one_line_error(*cli("train", config, "--out", work, "--overwrite", "--no-progress"))
    assert f"error: {work}: --out holds the" in line and ("config" in line or "training data" in line)
    line = one_line_error(*cli("train", config, "--out", work / "data", "--overwrite", "--no-progress"))
    assert (
        f"error: {work / 'data'}: --out is the training data; a command never replaces its own input" in line
    )
    assert tree_digest(work) == before


def test_evaluate_overwrite_onto_its_synthetic_or_real_set(toy: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = toy
    data = Path(shutil.copytree(data, tmp_path / "real"))
    run = _copy_run(run, tmp_path / "run")
    before = {**tree_digest(data), **tree_digest(run)}
    for out, what in ((run, "the synthetic set"), (data, "the real dataset"), (tmp_path, "the real dataset")):
        line = one_line_error(
            *cli("evaluate", "--real", data, "--synthetic", run, "--n", 4, "--out", out, "--overwrite")
        )
        assert f"--out holds {what}" in line or f"--out is {what}" in line, line
    assert {**tree_digest(data), **tree_digest(run)} == before


def test_benchmark_overwrite_onto_the_folder_holding_its_data(tmp_path: Path) -> None:
    from tests.benchmark.helpers import bench_config, gan_config
    from tests.conftest import make_disc_toy

    work = tmp_path / "work"
    data = make_disc_toy(work)
    config = bench_config(tmp_path / "bench.yaml", data, gan_config(tmp_path, data))
    before = tree_digest(work)
    line = one_line_error(*cli("benchmark", config, "--out", work, "--overwrite", "--no-progress"))
    assert "--out holds the dataset" in line
    assert tree_digest(work) == before and hidden_siblings(work) == []
