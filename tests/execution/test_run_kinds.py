"""Contract test over the run-kind registry: every kind is declared next to its code, with a settings model,
resources and the named outputs it writes (``execute`` checks the outputs of every run it executes)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

import radfair
from radfair.execution import KINDS

EXPECTED = {"train-classifier", "train-reconstructor", "train-mitigated-reconstructor", "reconstruct", "predict-classifier", "score-volumes",
            "train-slice-classifier", "train-segmenter", "train-classifier-ensemble"}


@pytest.fixture(scope="module")
def kinds():
    for module in pkgutil.walk_packages(radfair.__path__, "radfair."):
        importlib.import_module(module.name)
    return {name: kind for name, kind in KINDS.items() if kind.module.startswith("radfair.")}


def test_every_run_kind_of_radfair_is_declared(kinds):
    assert set(kinds) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_declaration_is_complete_and_lives_with_its_function(kinds, name):
    kind = kinds[name]
    assert issubclass(kind.settings, BaseModel)
    assert kind.function.__module__ == kind.module and not kind.module.startswith("radfair.execution")
    assert importlib.import_module(kind.module).__dict__[kind.function.__name__] is kind.function
    # outputs that depend on the settings (one per seed of an ensemble) are named <output>-seed<k>
    outputs = kind.outputs_for({"seeds": [0, 3]} if callable(kind.outputs) else None)
    assert outputs and all(re.fullmatch(r"[a-z_]+(-seed[0-9]+)?", n) for n in outputs)
    assert all(not Path(p).is_absolute() and ".." not in Path(p).parts for p in outputs.values())
    assert len(set(outputs.values())) == len(outputs)
    assert kind.optional <= set(outputs)
    assert kind.description  # the function's docstring, shown by the plan


def test_every_network_run_asks_for_a_gpu_on_cuda_and_none_on_cpu(kinds):
    for kind in kinds.values():
        config = {"input": "images"}
        assert kind.gpu_share(config, "cpu") == 0.0
        assert 0.0 < kind.gpu_share(config, "cuda") <= 1.0, kind.name
        assert kind.gpu_share(config, "cuda:1") == kind.gpu_share(config, "cuda")
    classifier = kinds["train-classifier"]
    assert classifier.gpu_share({"input": "images"}, "cuda") == 1.0  # DenseNet-121
    assert classifier.gpu_share({"input": "embeddings"}, "cuda") == 0.25  # the MLP: a share


def test_execution_names_no_module_of_training_mitigation_or_studies():
    folder = Path(radfair.__file__).parent / "execution"
    for path in folder.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"radfair\.(training|mitigation|studies)|from \.\.(training|mitigation|studies)", text), path
        assert "import_module(\"" not in text and "import_module('" not in text, path
