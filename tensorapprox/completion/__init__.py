"""Matrix completion and recovery: alternating minimization, soft-impute,
sub-gradient robust recovery, measurement operators, formats."""

from .altmin import CompletionResult, altmin_complete
from .datasets import load_movielens
from .lowrank import LowRankMatrix
from .observations import Observations, check_observations, kfold_splits, train_test_split
from .operators import EntrySampling, GaussianSensing, MeasurementOperator, corrupt
from .softimpute import soft_impute
from .subgradient import SubgradientResult, subgradient_recover

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
    "MeasurementOperator",
    "GaussianSensing",
    "EntrySampling",
    "corrupt",
    "subgradient_recover",
    "SubgradientResult",
]
