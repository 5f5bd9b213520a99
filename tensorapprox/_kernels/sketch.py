"""Sparse sign sketch of one mode of a dense tensor.

With ``X`` viewed as ``(a, n, b)`` around the sketched axis, the sketch is

``Y[p, c, q] = sum_{i : h[i] = c} s[i] * X[p, i, q]``,

that is ``X x_axis S`` for the ``(width, n)`` matrix ``S`` whose column ``i``
holds the single entry ``s[i] = +-1`` in row ``h[i]`` (a CountSketch, or
sparse sign embedding, of that mode: Clarkson and Woodruff 2013). It costs
one multiply-add per entry of ``X``, a memory-bound pass (the kernel adds
``||X||_F^2`` to it at little cost), where the product
with a dense ``(width, n)`` Gaussian matrix costs ``width`` of them and runs
well below BLAS's peak for such a thin matrix. Randomized ST-HOSVD uses it
to shrink the largest other mode of the unfolding it sketches (see
``tucker._randomized_mode``).

Layout: the array-code reference first (it also serves cupy and other
array-API arrays), the Numba kernel beside it, one dispatch function.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from array_api_compat import device

from . import FINITE_FASTMATH, numba_enabled
from .._array import get_namespace, is_numpy

__all__ = ["sign_sketch_reference", "sign_sketch_numba", "sign_sketch"]


def _dense_sign_matrix(xp, buckets: np.ndarray, signs: np.ndarray, width: int, dtype, like):
    S = np.zeros((width, buckets.shape[0]))
    S[buckets, np.arange(buckets.shape[0])] = signs
    return xp.asarray(S, dtype=dtype, device=device(like))


def sign_sketch_reference(X, axis: int, buckets: np.ndarray, signs: np.ndarray, width: int):
    """``(X x_axis S, ||X||_F^2)`` with ``S`` formed densely (any array namespace)."""
    xp = get_namespace(X)
    shape = tuple(X.shape)
    axis = axis % len(shape)  # a negative axis split the shape wrongly
    a = math.prod(shape[:axis])
    n = shape[axis]
    b = math.prod(shape[axis + 1:])
    S = _dense_sign_matrix(xp, buckets, signs, width, X.dtype, X)
    if b == 1:
        Y = xp.reshape(X, (a, n)) @ xp.matrix_transpose(S)
    else:
        Y = xp.matmul(S, xp.reshape(X, (a, n, b)))  # S broadcast over the leading axis: (a, width, b)
    flat = xp.reshape(X, (-1,))
    sumsq = float(xp.vecdot(flat, flat))
    return xp.reshape(Y, shape[:axis] + (width,) + shape[axis + 1:]), sumsq


# the sum of squares must carry NaN and Inf through to the caller's finiteness check
_FASTMATH = set(FINITE_FASTMATH)  # numba takes a set, not a frozenset


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _sign_sketch_rows(X2, buckets, signs, out):  # pragma: no cover - compiled
    # the sketched axis is the last: each row scatters into ``width`` sums
    a, n = X2.shape
    width = out.shape[1]
    # the squares are summed per row, the rows' sums per block of rows, then
    # the blocks': rounding error ~ eps sqrt(n + rows + blocks), not eps sqrt(a n)
    sumsq = 0.0
    block = 0.0
    for p in range(a):
        for c in range(width):
            out[p, c] = 0.0
        part = 0.0
        for i in range(n):
            x = X2[p, i]
            out[p, buckets[i]] += signs[i] * x
            part += x * x
        block += part
        if p % 128 == 127:
            sumsq += block
            block = 0.0
    return sumsq + block


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _sign_sketch_slabs(X3, buckets, signs, out):  # pragma: no cover - compiled
    # rows of length b are added whole: a streaming, vectorized pass
    a, n, b = X3.shape
    width = out.shape[1]
    sumsq = 0.0
    for p in range(a):
        for c in range(width):
            for q in range(b):
                out[p, c, q] = 0.0
        part = 0.0  # one partial sum per slab (see _sign_sketch_rows)
        for i in range(n):
            c = buckets[i]
            s = signs[i]
            for q in range(b):
                x = X3[p, i, q]
                out[p, c, q] += s * x
                part += x * x
        sumsq += part
    return sumsq


def sign_sketch_numba(X: np.ndarray, axis: int, buckets: np.ndarray, signs: np.ndarray, width: int):
    """The Numba kernels on a C-contiguous float32/float64 numpy ``X`` (serial: a memory-bound pass)."""
    shape = X.shape
    axis = axis % len(shape)  # a negative axis split the shape wrongly
    a = math.prod(shape[:axis])
    n = shape[axis]
    b = math.prod(shape[axis + 1:])
    h = np.ascontiguousarray(buckets, dtype=np.int64)
    sg = np.ascontiguousarray(signs, dtype=X.dtype)
    if b == 1:
        out = np.empty((a, width), dtype=X.dtype)
        sumsq = _sign_sketch_rows(X.reshape(a, n), h, sg, out)
    else:
        out = np.empty((a, width, b), dtype=X.dtype)
        sumsq = _sign_sketch_slabs(X.reshape(a, n, b), h, sg, out)
    return out.reshape(shape[:axis] + (width,) + shape[axis + 1:]), float(sumsq)


def sign_sketch(X, axis: int, buckets: np.ndarray, signs: np.ndarray, width: int):
    """Sparse sign sketch of mode ``axis`` of ``X`` to ``width`` rows, and ``||X||_F^2``.

    Returns ``(Y, sumsq)``; see the module docstring for ``Y``. The kernel
    sums the squares in the same pass (its data are in cache): NaN or Inf
    in ``X`` make ``sumsq`` non-finite, so the caller's finiteness check
    needs no pass of its own. ``buckets`` (ints in ``[0, width)``) and
    ``signs`` (``+-1``) are host numpy arrays of length ``X.shape[axis]``.
    C-contiguous float32/float64 numpy input runs the Numba kernel,
    anything else the reference.
    """
    xp = get_namespace(X)
    if (is_numpy(xp) and numba_enabled() and X.dtype in (np.float32, np.float64)
            and X.flags.c_contiguous):
        return sign_sketch_numba(X, axis, buckets, signs, width)
    return sign_sketch_reference(X, axis, buckets, signs, width)
