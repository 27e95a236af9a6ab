"""Study 1: foundation-model embeddings vs images (Tables 3-4, Figure 1, compute cost)."""

from .config import EmbVsImgConfig, load_config
from .run import evaluate_study, plan_runs, run_study

__all__ = ["EmbVsImgConfig", "evaluate_study", "load_config", "plan_runs", "run_study"]
