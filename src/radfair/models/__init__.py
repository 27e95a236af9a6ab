"""radfair.models: the networks the studies train (classifiers now; reconstructors and segmenters next)."""

from __future__ import annotations

from torch import nn

from ..errors import BAD_OPTION, RadfairInputError
from .classifiers import EMBEDDING_DIM, PAPER_HIDDEN, DenseNetClassifier, LinearProbe, MLPHead
from .ensemble import StackedHead
from .weights import load_weights

#: classifier name -> the input it reads ("embeddings" or "images")
CLASSIFIER_INPUTS = {"mlp": "embeddings", "linear": "embeddings", "densenet121": "images"}


def build_classifier(name: str, n_labels: int, *, in_features: int = EMBEDDING_DIM, in_channels: int = 1,
                     hidden=PAPER_HIDDEN, dropout: float = 0.3) -> nn.Module:
    """A freshly initialised classifier (seed the RNG before calling for reproducible weights)."""
    if name == "mlp":
        return MLPHead(in_features, n_labels, hidden, dropout)
    if name == "linear":
        return LinearProbe(in_features, n_labels)
    if name == "densenet121":
        return DenseNetClassifier(n_labels, in_channels, hidden, dropout)
    raise RadfairInputError(BAD_OPTION.format(option="--model", value=name, expected=list(CLASSIFIER_INPUTS)))


__all__ = ["CLASSIFIER_INPUTS", "EMBEDDING_DIM", "DenseNetClassifier", "LinearProbe", "MLPHead", "StackedHead", "build_classifier", "load_weights"]
