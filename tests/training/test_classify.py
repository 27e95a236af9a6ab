"""`radfair train` / `predict` on the synthetic releases: embeddings and images, scored table, audit, errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.fairness import AuditConfig, run_audit
from radfair.training.checkpoint import load_checkpoint
from radfair.training.classify import predict_cohort, train

runner = CliRunner()
SMALL = dict(hidden=[32, 16], batch_size=32, optim={"lr": 3e-3})


def embeddings_run(out, split_all, synth_root, epochs=6, **extra):
    root, _ = synth_root
    settings = {**SMALL, **extra}
    loop = {"epochs": epochs, "patience": None, "checkpoint_minutes": 0, **settings.pop("loop", {})}
    return train(out, cohort=split_all, input="embeddings", model="mlp", root=str(root), missing_embeddings="drop",
                 cpus=1, progress=False, loop=loop, **settings)


def test_embedding_mlp_scores_val_and_test_rows_and_the_audit_accepts_them(tmp_path, split_all, synth_root):
    outcome = embeddings_run(tmp_path / "run", split_all, synth_root, epochs=12)
    assert outcome.status == "done"
    scored = pd.read_parquet(tmp_path / "run" / "scored.parquet")
    assert set(scored["split"]) == {"val", "test"}
    for column in ("image_id", "patient_id", "sex", "age_group", "race", "y_edema", "p_edema"):
        assert column in scored.columns
    assert scored.filter(like="p_").apply(lambda c: c.between(0, 1).all()).all()
    result = run_audit(scored, AuditConfig(attributes=["sex", "race"], bootstrap=20, seed=0))
    perf = result["performance"].set_index("label")
    # findings the generator makes visible in the embeddings are learned well above chance
    assert perf.loc["edema", "auc"] > 0.75 and perf.loc["lung_opacity", "auc"] > 0.7
    assert perf["auc"].median() > 0.6


def test_image_densenet_trains_from_the_decoded_cache_and_scores(tmp_path, split_all):
    cohort = pd.read_parquet(split_all)
    small = pd.concat([g.head(48 if name == "train" else 24) for name, g in cohort.groupby("split")])
    small.to_parquet(tmp_path / "small.parquet")
    outcome = train(tmp_path / "run", cohort=tmp_path / "small.parquet", input="images", model="densenet121",
                    image_size=32, labels=["edema", "cardiomegaly"], batch_size=16, cpus=1, progress=False,
                    loop={"epochs": 1, "patience": None})
    assert outcome.status == "done"
    cache = list((tmp_path / "image-cache").glob("32px-*/shard-*.npy"))
    assert len(cache) == 1 and np.load(cache[0], mmap_mode="r").shape == (len(small), 32, 32)
    assert not list((tmp_path / "run").rglob("*.npy"))  # no image cache inside the run folder
    scored = pd.read_parquet(tmp_path / "run" / "scored.parquet")
    assert len(scored) == 48 and {"p_edema", "p_cardiomegaly"} <= set(scored.columns)


def test_predict_reproduces_the_runs_own_scores(tmp_path, split_all, synth_root):
    embeddings_run(tmp_path / "run", split_all, synth_root, epochs=2)
    scored = pd.read_parquet(tmp_path / "run" / "scored.parquet")
    again = predict_cohort(tmp_path / "run", split_all, tmp_path / "pred.parquet", progress=False)
    merged = scored.merge(again, on="image_id", suffixes=("", "_again"))
    assert len(merged) == len(scored)
    np.testing.assert_allclose(merged["p_edema"], merged["p_edema_again"], rtol=0, atol=1e-6)
    assert len(again) > len(scored)  # every cohort row with an embedding, train included


KILL_SCRIPT = """
import sys
from radfair.training.classify import train
train(sys.argv[1], cohort=sys.argv[2], input="embeddings", model="mlp", root=sys.argv[3], missing_embeddings="drop",
      cpus=1, progress=False, hidden=[32, 16], batch_size=8, optim={"lr": 3e-3},
      loop={"epochs": 25, "patience": None, "checkpoint_minutes": 1e-7})
"""


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_resumes_and_predicts_like_an_uninterrupted_run(tmp_path, split_all, synth_root):
    root, _ = synth_root
    args = [sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "killed"), str(split_all), str(root)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "run.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and "epoch 3/25" in log.read_text()):
        time.sleep(0.05)
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")
    assert state is not None and not state["done"]
    record = pd.read_json(tmp_path / "killed" / "run.json", typ="series")
    assert record["status"] == "running"  # the killed process could not record anything else

    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the rerun resumes
    assert f"resumed from epoch {state['epoch'] + 1}, batch {state['batch']}" in log.read_text()
    subprocess.run([*args[:3], str(tmp_path / "straight"), *args[4:]], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    a = pd.read_parquet(tmp_path / "killed" / "scored.parquet")
    b = pd.read_parquet(tmp_path / "straight" / "scored.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def _cli_error(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_missing_embeddings_are_an_error_by_default(tmp_path, split_all, synth_root):
    import shutil

    root, _ = synth_root  # a store without validation.npz: the valid.csv rows have no embedding
    (tmp_path / "store").mkdir()
    shutil.copytree(root / "chexpert-embeddings", tmp_path / "store" / "chexpert-embeddings", ignore=shutil.ignore_patterns("validation.npz"))
    shutil.copytree(root / "mimic-cxr-embeddings", tmp_path / "store" / "mimic-cxr-embeddings")
    line = _cli_error(["train", "--cohort", str(split_all), "--root", str(tmp_path / "store"), "--out", str(tmp_path / "r")])
    assert "no embedding for" in line and "--missing-embeddings drop" in line


def test_cohort_without_split_column(tmp_path, split_all, synth_root):
    pd.read_parquet(split_all).drop(columns="split").to_parquet(tmp_path / "c.parquet")
    line = _cli_error(["train", "--cohort", str(tmp_path / "c.parquet"), "--root", str(synth_root[0]), "--out", str(tmp_path / "r")])
    assert "'split'" in line and "radfair split" in line


def test_unknown_model_and_mismatched_input(tmp_path, split_all, synth_root):
    line = _cli_error(["train", "--cohort", str(split_all), "--model", "resnet9000", "--root", str(synth_root[0]), "--out", str(tmp_path / "r")])
    assert "--model" in line and "resnet9000" in line
    line = _cli_error(["train", "--cohort", str(split_all), "--model", "densenet121", "--input", "embeddings", "--out", str(tmp_path / "r")])
    assert "--input" in line


def test_unreadable_image_names_the_file(tmp_path, split_all):
    cohort = pd.read_parquet(split_all).head(40).copy()
    cohort["split"] = ["train"] * 30 + ["val"] * 10
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    cohort.loc[cohort.index[5], "path"] = str(bad)
    cohort.to_parquet(tmp_path / "c.parquet")
    line = _cli_error(["train", "--cohort", str(tmp_path / "c.parquet"), "--input", "images", "--model", "densenet121",
                       "--image-size", "32", "--out", str(tmp_path / "r")])
    assert "broken.jpg" in line and "cannot be read; expected a PNG or JPEG image" in line


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, split_all, synth_root):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    line = _cli_error(["train", "--cohort", str(split_all), "--root", str(synth_root[0]), "--device", "cuda", "--out", str(tmp_path / "r")])
    assert "--device" in line and "no CUDA device" in line
    line = _cli_error(["train", "--cohort", str(split_all), "--root", str(synth_root[0]), "--device", "tpu", "--out", str(tmp_path / "r")])
    assert "expected cpu, cuda or cuda:N" in line


def test_scoring_is_float32_on_every_device_path(monkeypatch):
    """predict_scores never enters a reduced-precision autocast (bf16 would quantise the scores the studies compare):
    on the CUDA path it gives exactly the scores of a plain float32 forward pass, computed here independently."""
    import torch

    from radfair.training.classify import predict_scores

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = torch.randn(37, 8)

    class Batches:
        def epoch(self, _):
            for i in range(0, len(x), 10):
                yield {"x": x[i:i + 10]}

    real_autocast = torch.autocast
    entered = []

    def spy(device_type, dtype=None, enabled=True, **kw):
        entered.append((device_type, dtype, enabled))
        return real_autocast("cpu", enabled=False)

    monkeypatch.setattr(torch, "autocast", spy)
    scores = predict_scores(model, Batches(), "cuda")  # the CUDA code path, run on CPU tensors
    assert all(enabled is False for _, _, enabled in entered)
    with torch.no_grad():
        expected = torch.sigmoid(model.eval()(x)).double().numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=0)  # float32 rounding (batching), not bf16's ~4e-3
    assert scores.dtype == np.float64 and len(np.unique(scores)) == scores.size  # no bf16 ties


def test_predict_with_one_seed_of_an_ensemble_run(tmp_path, split_all, synth_root):
    """`radfair predict --seed K` on a train-classifier-ensemble run scores with seed K's best checkpoint: its own
    scores again; without --seed, or with a seed it did not train, a one-line error naming the seeds."""
    from radfair.errors import RadfairInputError
    from radfair.execution import execute
    from radfair.training.classify import TRAIN_CLASSIFIER_ENSEMBLE, EnsembleRunConfig, resolve_config

    root, _ = synth_root
    config = resolve_config(EnsembleRunConfig, seeds=[0, 2], cohort=str(split_all), input="embeddings", model="mlp", labels=["edema"],
                            root=str(root), missing_embeddings="drop", loop={"epochs": 2, "patience": None}, **SMALL)
    execute(TRAIN_CLASSIFIER_ENSEMBLE.spec(config, {"cohort": config.cohort}), tmp_path / "run", progress=False)
    scored = pd.read_parquet(tmp_path / "run" / "seed2" / "scored.parquet")
    again = predict_cohort(tmp_path / "run", split_all, tmp_path / "pred.parquet", progress=False, seed=2)
    merged = scored.merge(again, on="image_id", suffixes=("", "_again"))
    assert len(merged) == len(scored)
    np.testing.assert_allclose(merged["p_edema"], merged["p_edema_again"], rtol=0, atol=1e-6)
    for seed, message in ((None, r"seeds \[0, 2\]; expected --seed one of them$"), (5, "expected --seed one of them, not 5")):
        with pytest.raises(RadfairInputError, match=message):
            predict_cohort(tmp_path / "run", split_all, tmp_path / "pred.parquet", progress=False, seed=seed)
    r = runner.invoke(app, ["predict", "--run", str(tmp_path / "run"), "--cohort", str(split_all), "--out", str(tmp_path / "p2.parquet"),
                            "--seed", "0"])
    assert r.exit_code == 0, r.output
