"""Kernels for irregular, loop-shaped work.

Each kernel module keeps, in this order: a readable numpy reference
(``*_reference``), a Numba CPU kernel, and one dispatch function that picks
the implementation by array type (Numba for numpy arrays, array code for
cupy and other array-API arrays). Tests compare every kernel against its
reference.
"""

from __future__ import annotations

import os

__all__ = ["numba_enabled"]


def numba_enabled() -> bool:
    """False when ``TENSORAPPROX_DISABLE_NUMBA=1`` (the references run instead)."""
    return os.environ.get("TENSORAPPROX_DISABLE_NUMBA", "0") not in ("1", "true", "yes")
