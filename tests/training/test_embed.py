"""`radfair embed`: any frozen local encoder -> a CXR-Foundation-format store that `train` reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data.embeddings import load_cohort_embeddings, read_mimic_embedding
from radfair.errors import RadfairInputError
from radfair.models.encoders import monai_encoder
from radfair.training.classify import train
from radfair.training.embed import embed_cohort

runner = CliRunner()


class TinyEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 2).flatten(1)


@pytest.fixture(scope="module")
def small_cohort(split_all, tmp_path_factory):
    cohort = pd.read_parquet(split_all)
    small = pd.concat([g.head(60 if name == "train" else 20) for _, g in cohort.groupby("dataset") for name, g in g.groupby("split")])
    path = tmp_path_factory.mktemp("embed") / "small.parquet"
    small.to_parquet(path)
    return path


def test_torchscript_encoder_store_is_read_back_by_the_loaders_and_trains(tmp_path, small_cohort):
    torch.manual_seed(0)
    torch.jit.script(TinyEncoder()).save(str(tmp_path / "enc.ts"))
    result = runner.invoke(app, ["embed", "--encoder", str(tmp_path / "enc.ts"), "--cohort", str(small_cohort),
                                 "--out", str(tmp_path / "store"), "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "of width 32" in result.output
    cohort = pd.read_parquet(small_cohort)
    vectors, found = load_cohort_embeddings(cohort, tmp_path / "store")
    assert found.all() and vectors.shape == (len(cohort), 32)
    mimic = cohort[cohort["dataset"] == "mimic"].iloc[0]
    record = next((tmp_path / "store" / "files").rglob("*.tfrecord"))
    assert read_mimic_embedding(record)[1].shape == (32,)
    assert mimic["dataset"] == "mimic"
    outcome = train(tmp_path / "run", cohort=small_cohort, input="embeddings", model="mlp", root=str(tmp_path / "store"),
                    labels=["edema"], hidden=[8], cpus=1, progress=False, loop={"epochs": 1, "patience": None})
    assert outcome.status == "done"


def test_monai_state_dict_encoder_and_existing_folder(tmp_path, small_cohort):
    torch.save(monai_encoder("resnet18").state_dict(), tmp_path / "r18.pt")
    manifest = embed_cohort(tmp_path / "r18.pt", small_cohort, tmp_path / "store", arch="resnet18", image_size=32, progress=False)
    assert manifest["width"] == 512 and manifest["kind"] == "monai"
    with pytest.raises(RadfairInputError, match="not empty; pass --overwrite"):
        embed_cohort(tmp_path / "r18.pt", small_cohort, tmp_path / "store", arch="resnet18", image_size=32, progress=False)
    with pytest.raises(RadfairInputError, match="not a TorchScript file"):
        embed_cohort(tmp_path / "r18.pt", small_cohort, tmp_path / "other", image_size=32, progress=False)
    assert np.isfinite(load_cohort_embeddings(pd.read_parquet(small_cohort), tmp_path / "store")[0]).all()
