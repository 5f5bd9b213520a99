"""Compress neural-network weights with low-rank and tensor formats.

The framework-free part (:mod:`tensorapprox.nn.factorize`,
:mod:`tensorapprox.nn.allocation`) works on plain arrays. The torch adapter
(:mod:`tensorapprox.nn.torch`: factorized modules, :func:`compress_model`,
:func:`save_compressed`, :func:`load_compressed`) needs the ``torch`` extra
and is imported on first use, so ``import tensorapprox.nn`` works without
torch.
"""

from __future__ import annotations

from .allocation import allocate_ranks
from .factorize import (
    CPConvFactors,
    InterpolativeFactors,
    LowRankFactors,
    SparseLowRankFactors,
    TTMatrix,
    TuckerConvFactors,
    breakeven_rank,
    cp_conv,
    interpolative_cost,
    interpolative_form,
    sparse_plus_lowrank,
    svd_factorize,
    tt_matrix,
    tucker2_conv,
    vbmf_rank,
    whitened_svd,
)

_TORCH_NAMES = (
    "LowRankLinear",
    "InterpolativeLinear",
    "SparseLowRankLinear",
    "TuckerConv2d",
    "TTLinear",
    "CompressionReport",
    "LayerReport",
    "compress_model",
    "save_compressed",
    "load_compressed",
)

__all__ = [
    "LowRankFactors",
    "InterpolativeFactors",
    "SparseLowRankFactors",
    "TuckerConvFactors",
    "CPConvFactors",
    "TTMatrix",
    "breakeven_rank",
    "interpolative_cost",
    "interpolative_form",
    "svd_factorize",
    "whitened_svd",
    "sparse_plus_lowrank",
    "vbmf_rank",
    "tucker2_conv",
    "cp_conv",
    "tt_matrix",
    "allocate_ranks",
    *_TORCH_NAMES,
]


def __getattr__(name):
    if name in _TORCH_NAMES:
        from . import torch as _torch_bridge

        return getattr(_torch_bridge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
