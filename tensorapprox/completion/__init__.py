"""Matrix completion: robust alternating minimization, soft-impute, formats."""

from .altmin import CompletionResult, altmin_complete
from .datasets import load_movielens
from .lowrank import LowRankMatrix
from .observations import Observations, check_observations, kfold_splits, train_test_split
from .softimpute import soft_impute

__all__ = [
    "LowRankMatrix",
    "Observations",
    "check_observations",
    "train_test_split",
    "kfold_splits",
    "altmin_complete",
    "CompletionResult",
    "soft_impute",
    "load_movielens",
]
