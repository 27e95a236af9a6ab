"""radfair.training: one training loop for every model, its step objects, inputs and the classifier run."""

from .loop import Batches, FitResult, LoopConfig, Step, evaluate, fit
from .steps import ClassifierStep, OptimConfig, make_optimizer, masked_bce

__all__ = ["Batches", "ClassifierStep", "FitResult", "LoopConfig", "OptimConfig", "Step", "evaluate", "fit",
           "make_optimizer", "masked_bce"]
