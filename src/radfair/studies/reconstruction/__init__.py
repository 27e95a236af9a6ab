"""Study 2: reconstruction -> downstream fairness (X-ray part; MRI and the paper's tables/figures next)."""

from .config import ReconstructionConfig, load_config
from .run import run_study

__all__ = ["ReconstructionConfig", "load_config", "run_study"]
