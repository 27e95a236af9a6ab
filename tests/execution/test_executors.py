"""One grid, three executors (sequential, local processes, a local Ray cluster): the same files, bit for bit."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from radfair.execution import RunSpec, run_grid
from radfair.training.checkpoint import load_checkpoint
from radfair.training.classify import resolve_config


def grid(split_all, root, seeds=(0, 1)):
    specs = []
    for seed in seeds:
        config = resolve_config(cohort=str(split_all), input="embeddings", model="mlp", root=str(root), labels=["edema", "cardiomegaly"],
                                missing_embeddings="drop", hidden=[16, 8], batch_size=32, seed=seed,
                                loop={"epochs": 3, "patience": None, "checkpoint_minutes": 0})
        specs.append(RunSpec("train-classifier", config.model_dump(mode="json"), {"cohort": config.cohort}, cpus=1, label=f"seed{seed}"))
    return specs


def results(outcomes):
    out = []
    for outcome in outcomes:
        scored = pd.read_parquet(f"{outcome.run_dir}/scored.parquet")
        best = load_checkpoint(__import__("pathlib").Path(outcome.run_dir) / "checkpoints" / "best.pt")
        out.append((scored, best["modules"]["model"]))
    return out


def assert_identical(a, b):
    for (scored_a, weights_a), (scored_b, weights_b) in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(scored_a, scored_b, check_exact=True)
        assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


@pytest.fixture(scope="module")
def sequential(split_all, synth_root, tmp_path_factory):
    specs = grid(split_all, synth_root[0])
    outcomes = run_grid(specs, tmp_path_factory.mktemp("store_seq"), progress=False)
    assert [o.status for o in outcomes] == ["done", "done"]
    return specs, results(outcomes)


def test_rerunning_a_finished_grid_skips_every_run(sequential, tmp_path_factory, split_all, synth_root):
    specs, _ = sequential
    store = tmp_path_factory.mktemp("store_again")
    run_grid(specs, store, progress=False)
    assert [o.status for o in run_grid(grid(split_all, synth_root[0]), store, progress=False)] == ["skipped", "skipped"]


def test_local_processes_equal_sequential_bit_for_bit(sequential, split_all, synth_root, tmp_path):
    specs, expected = sequential
    outcomes = run_grid(grid(split_all, synth_root[0]), tmp_path, jobs=2, progress=False)
    assert [o.run_id for o in outcomes] == [s.run_id for s in specs]
    assert_identical(results(outcomes), expected)


@pytest.mark.slow
def test_a_local_ray_cluster_equals_the_local_executor_bit_for_bit(sequential, split_all, synth_root, tmp_path):
    ray = pytest.importorskip("ray")
    specs, expected = sequential
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        outcomes = run_grid(grid(split_all, synth_root[0]), tmp_path, executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert [o.status for o in outcomes] == ["done", "done"]
    assert_identical(results(outcomes), expected)
