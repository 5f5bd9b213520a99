"""Kernels for irregular, loop-shaped work.

Each kernel module keeps, in this order: a readable numpy reference
(``*_reference``), a Numba CPU kernel, and one dispatch function that picks
the implementation by array type (Numba for numpy arrays, array code for
cupy and other array-API arrays). Tests compare every kernel against its
reference.
"""

from __future__ import annotations

import os

__all__ = ["numba_enabled", "FINITE_FASTMATH"]

# Fast-math flags for kernels whose sums must stay honest about non-finite
# data: reassociation lets the reductions vectorize, but there are no
# 'nnan'/'ninf' flags, so NaN or Inf in the input reaches the result (and the
# caller's finiteness check) instead of being assumed away.
FINITE_FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})


def numba_enabled() -> bool:
    """False when ``TENSORAPPROX_DISABLE_NUMBA=1`` (the references run instead)."""
    return os.environ.get("TENSORAPPROX_DISABLE_NUMBA", "0") not in ("1", "true", "yes")
