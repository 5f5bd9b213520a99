"""Bayesian models for continuous-indexed tensors.

State-space Gaussian processes (Matérn SDEs, Kalman filter, RTS smoother)
and the functional Bayesian Tucker decomposition (FunBaT).
"""

from .funbat import FunctionalTucker, LatentFactor, NotFittedError
from .statespace import (
    MATERN_KERNELS,
    SmootherResult,
    StateSpaceModel,
    kalman_smoother,
    matern_state_space,
)

__all__ = [
    "FunctionalTucker",
    "LatentFactor",
    "NotFittedError",
    "MATERN_KERNELS",
    "StateSpaceModel",
    "SmootherResult",
    "matern_state_space",
    "kalman_smoother",
]
