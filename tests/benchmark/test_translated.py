"""A CycleGAN class translator as the benchmark's synthetic source: accepted when trained on the train split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medgan.benchmark.config import load_benchmark_config
from medgan.benchmark.runner import check_checkpoint, run_benchmark
from medgan.data.dataset import load_dataset
from medgan.errors import MedganError
from medgan.synth.translate import LoadedTranslator, translated_pool
from medgan.training.loop import train
from tests.benchmark.helpers import bench_config, gan_config
from tests.conftest import make_disc_toy
from tests.training.helpers import tiny_cycle_config

pytestmark = pytest.mark.usefixtures("one_thread")

NORMAL_TO_LESION = ("cycle.source_class=normal", "cycle.target_class=lesion", "steps=2")


def test_check_checkpoint_takes_a_class_translator_and_refuses_other_data_and_domain_translators(tmp_path):
    data, other = make_disc_toy(tmp_path), make_disc_toy(tmp_path, seed=1)
    ds = load_dataset(data)
    run = train(tiny_cycle_config(data, tmp_path / "cycle", *NORMAL_TO_LESION), progress=False).run_dir
    tr = check_checkpoint(run, ds)
    assert isinstance(tr, LoadedTranslator) and tr.domains == ["normal", "lesion"]
    with pytest.raises(
        MedganError, match="the benchmark data is not the dataset this checkpoint was trained on"
    ):
        check_checkpoint(run, load_dataset(other))
    domain = train(
        tiny_cycle_config(
            data,
            tmp_path / "domain",
            "cycle.source_class=null",
            "cycle.target_class=null",
            f"cycle.target_data={other}",
            "steps=1",
        ),
        progress=False,
    ).run_dir
    with pytest.raises(MedganError, match=r"a domain translator .* cannot add images of given classes"):
        check_checkpoint(domain, ds)


def test_the_translated_pool_is_the_other_class_translated_and_grows_as_a_prefix(tmp_path):
    data = make_disc_toy(tmp_path)
    ds = load_dataset(data)
    tr = check_checkpoint(
        train(tiny_cycle_config(data, tmp_path / "c", *NORMAL_TO_LESION), progress=False).run_dir, ds
    )
    small, large = translated_pool(tr, ds, [5, 0], seed=1), translated_pool(tr, ds, [9, 2], seed=1)
    assert small[0].shape == (5, 1, 16, 16) and small[1].tolist() == [0] * 5
    assert np.array_equal(large[0][:5], small[0]) and large[1].tolist() == [0] * 9 + [1] * 2
    with pytest.raises(
        MedganError, match="37 'normal' images asked for, but there are only 12 'lesion' training"
    ):
        translated_pool(tr, ds, [0, 37])


@pytest.mark.slow
def test_a_benchmark_with_a_translator_adds_translated_images_and_audits_them_against_both_domains(tmp_path):
    data = make_disc_toy(tmp_path)
    run = train(tiny_cycle_config(data, tmp_path / "cycle", *NORMAL_TO_LESION), progress=False).run_dir
    path = bench_config(
        tmp_path / "bench.yaml", data, gan_config(tmp_path, data), arms=["real", "real+synthetic"], seeds=1
    )
    out = tmp_path / "out"
    run_benchmark(load_benchmark_config(path), out=out, checkpoint=run, progress=False)
    record = json.loads(next((out / "runs").glob("real+synthetic*")).read_text())
    assert record["n_train"]["synthetic"] == [24, 0]  # balance: 12 lesions + 24 translated normals = 36
    results = (out / "results.json").read_text()
    assert "memorisation/median_distance_to_source" in results


def test_a_translator_cannot_fill_the_synthetic_only_arm_and_the_error_says_what_to_drop(tmp_path):
    data = make_disc_toy(tmp_path)  # 12 lesions, 36 normals: 36 translated normals would need 36 lesions
    run = train(tiny_cycle_config(data, tmp_path / "cycle", *NORMAL_TO_LESION), progress=False).run_dir
    path = bench_config(
        tmp_path / "bench.yaml", data, gan_config(tmp_path, data), arms=["real", "synthetic-only"], seeds=1
    )
    with pytest.raises(MedganError, match=r"only 12 'lesion' training images .* leave them out of 'arms'"):
        run_benchmark(load_benchmark_config(path), out=tmp_path / "out", checkpoint=run, progress=False)
