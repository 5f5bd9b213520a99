"""tensorapprox: numerics-first low-rank tensor and matrix approximation.

The public API is re-exported here; see ``__all__``.
"""

from . import chebyshev, nn
from .bayes import FunctionalTucker, kalman_smoother, matern_state_space
from .chebtucker import ChebTucker
from .completion import (
    CompletionResult,
    EntrySampling,
    GaussianSensing,
    LowRankMatrix,
    SubgradientResult,
    altmin_complete,
    corrupt,
    soft_impute,
    subgradient_recover,
)
from .particles import (
    direct_potential,
    lattice,
    long_range_kernel,
    long_range_potential,
    newton_exp_sum,
    newton_kernel,
    random_cluster,
)
from .tensor import fold, khatri_rao, kronecker, mode_product, multi_mode_product, unfold
from .tucker import TuckerALSResult, TuckerTensor, hosvd, st_hosvd, tucker_als

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # multilinear algebra
    "unfold",
    "fold",
    "mode_product",
    "multi_mode_product",
    "khatri_rao",
    "kronecker",
    # Tucker
    "TuckerTensor",
    "TuckerALSResult",
    "hosvd",
    "st_hosvd",
    "tucker_als",
    # Chebyshev-Tucker and particles
    "chebyshev",
    "nn",
    "ChebTucker",
    "newton_kernel",
    "long_range_kernel",
    "newton_exp_sum",
    "lattice",
    "random_cluster",
    "direct_potential",
    "long_range_potential",
    # matrix completion
    "LowRankMatrix",
    "altmin_complete",
    "CompletionResult",
    "soft_impute",
    # sub-gradient robust recovery
    "GaussianSensing",
    "EntrySampling",
    "corrupt",
    "subgradient_recover",
    "SubgradientResult",
    # functional Bayesian Tucker
    "FunctionalTucker",
    "matern_state_space",
    "kalman_smoother",
]
