"""Squared norm of a projection residual, formed explicitly.

With ``Y`` viewed as ``(a, n, b)`` around a mode of size ``n``, ``P`` as
``(a, r, b)`` (the tensor projected on the ``n x r`` basis ``U``), the value
is

``||Y - U P||_F^2 = sum_{i, j} ||Y[i, :, j] - U @ P[i, :, j]||^2``,

summed from the differences themselves, never as ``||Y||^2 - ||P||^2``, which
cancels to noise when the residual is small (Tucker's stable error).

Layout: the array-code reference first (it also serves cupy and other
array-API arrays), the Numba kernel beside it, one dispatch function.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import FINITE_FASTMATH, numba_enabled
from .._array import get_namespace, is_numpy

__all__ = ["projection_residual_reference", "projection_residual_numba", "projection_residual"]

# entries per chunk of the reference: its temporaries (2 MiB in float64)
# stay in cache; chunks of 2^22 entries ran half as fast
_CHUNK_ELEMS = 1 << 18


def projection_residual_reference(Y3, P3, U) -> float:
    """``||Y3 - U P3||_F^2`` in chunks that stay in cache (any array namespace).

    ``Y3`` has shape ``(a, n, b)``, ``P3`` shape ``(a, r, b)``, ``U`` shape
    ``(n, r)``, all of one array library.
    """
    xp = get_namespace(Y3, P3, U)
    a, n, b = (int(s) for s in Y3.shape)
    bstep = max(1, min(b, _CHUNK_ELEMS // n))  # columns per chunk
    astep = max(1, _CHUNK_ELEMS // (n * bstep))  # slabs per chunk
    total = 0.0
    with np.errstate(over="ignore"):  # huge finite data: inf is the honest answer
        for i in range(0, a, astep):
            i2 = min(a, i + astep)
            for j in range(0, b, bstep):
                j2 = min(b, j + bstep)
                D = xp.reshape(Y3[i:i2, :, j:j2] - xp.matmul(U, P3[i:i2, :, j:j2]), (-1,))
                total += float(xp.vecdot(D, D))
    return total


# a non-finite input gives a non-finite result, never a silent one
_FASTMATH = set(FINITE_FASTMATH)  # numba takes a set, not a frozenset
# rows per block and columns per chunk: a chunk of P (r x 1024) stays in the
# second-level cache while a block of rows streams past it
_ROWS = 32
_COLS = 1024


@numba.njit(inline="always")
def _term(Pf, U, zero_p, zero_u, row, c, r, po):  # pragma: no cover - compiled
    """``(U[row, c], P row c)`` for ``c < r``, zeros past the last basis vector."""
    if c < r:
        return U[row, c], Pf[po:po + zero_p.size]
    return zero_u, zero_p


@numba.njit(inline="always")
def _dot4(j, u0, u1, u2, u3, p0, p1, p2, p3):  # pragma: no cover - compiled
    return u0 * p0[j] + u1 * p1[j] + u2 * p2[j] + u3 * p3[j]


@numba.njit(inline="always")
def _dot8(j, u0, u1, u2, u3, u4, u5, u6, u7, p0, p1, p2, p3, p4, p5, p6, p7):  # pragma: no cover - compiled
    return (u0 * p0[j] + u1 * p1[j] + u2 * p2[j] + u3 * p3[j]
            + u4 * p4[j] + u5 * p5[j] + u6 * p6[j] + u7 * p7[j])


@numba.njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _residual_kernel(Yf, Pf, U, a, n, b):  # pragma: no cover - compiled
    # Yf, Pf: the C-contiguous (a, n, b) and (a, r, b) arrays, flattened.
    # For one row and one column chunk, y - U[row] P is formed in groups of
    # eight basis vectors (missing ones count as zeros); a last group of at
    # most four takes a loop of four terms. With r <= 8 the difference is
    # squared and summed as it is formed, in one loop over the row and the
    # rows of P; otherwise the partial differences go through ``buf``,
    # updated in place (a loop that reads ``buf`` under one name and writes
    # it under another fails the vectorizer's overlap check and runs
    # scalar). Every inner loop runs over contiguous 1-D slices (offset
    # indexing would carry numba's negative-index check and stop the
    # vectorizer). With r = 0 the one pass of the loop sums y^2.
    r = U.shape[1]
    width = min(b, _COLS)
    buf = np.empty(width, dtype=Yf.dtype)
    zeros = np.zeros(width, dtype=Yf.dtype)
    zero_u = np.zeros(1, dtype=U.dtype)[0]
    total = 0.0
    for i in range(a):
        for r0 in range(0, n, _ROWS):
            r1 = min(n, r0 + _ROWS)
            for j0 in range(0, b, _COLS):
                m = min(b, j0 + _COLS) - j0
                z = zeros[:m]
                for row in range(r0, r1):
                    yo = (i * n + row) * b + j0
                    y = Yf[yo:yo + m]
                    s = 0.0
                    c0 = 0
                    while c0 < r or c0 == 0:
                        po = (i * r + c0) * b + j0
                        u0, p0 = _term(Pf, U, z, zero_u, row, c0, r, po)
                        u1, p1 = _term(Pf, U, z, zero_u, row, c0 + 1, r, po + b)
                        u2, p2 = _term(Pf, U, z, zero_u, row, c0 + 2, r, po + 2 * b)
                        u3, p3 = _term(Pf, U, z, zero_u, row, c0 + 3, r, po + 3 * b)
                        first = c0 == 0
                        if r - c0 <= 4:
                            if first:
                                for j in range(m):
                                    d = y[j] - _dot4(j, u0, u1, u2, u3, p0, p1, p2, p3)
                                    s += d * d
                            else:
                                for j in range(m):
                                    d = buf[j] - _dot4(j, u0, u1, u2, u3, p0, p1, p2, p3)
                                    s += d * d
                            break
                        u4, p4 = _term(Pf, U, z, zero_u, row, c0 + 4, r, po + 4 * b)
                        u5, p5 = _term(Pf, U, z, zero_u, row, c0 + 5, r, po + 5 * b)
                        u6, p6 = _term(Pf, U, z, zero_u, row, c0 + 6, r, po + 6 * b)
                        u7, p7 = _term(Pf, U, z, zero_u, row, c0 + 7, r, po + 7 * b)
                        last = c0 + 8 >= r
                        if first and last:
                            for j in range(m):
                                d = y[j] - _dot8(j, u0, u1, u2, u3, u4, u5, u6, u7, p0, p1, p2, p3, p4, p5, p6, p7)
                                s += d * d
                        elif first:
                            for j in range(m):
                                buf[j] = y[j] - _dot8(j, u0, u1, u2, u3, u4, u5, u6, u7,
                                                      p0, p1, p2, p3, p4, p5, p6, p7)
                        elif last:
                            for j in range(m):
                                d = buf[j] - _dot8(j, u0, u1, u2, u3, u4, u5, u6, u7,
                                                   p0, p1, p2, p3, p4, p5, p6, p7)
                                s += d * d
                        else:
                            for j in range(m):
                                buf[j] -= _dot8(j, u0, u1, u2, u3, u4, u5, u6, u7, p0, p1, p2, p3, p4, p5, p6, p7)
                        c0 += 8
                    total += s
    return total


def projection_residual_numba(Y3: np.ndarray, P3: np.ndarray, U: np.ndarray) -> float:
    """The Numba kernel on numpy float32/float64 arrays (serial: a memory-bound pass)."""
    a, n, b = Y3.shape
    Yf = np.ascontiguousarray(Y3).reshape(-1)
    Pf = np.ascontiguousarray(P3, dtype=Y3.dtype).reshape(-1)
    Uc = np.ascontiguousarray(U, dtype=Y3.dtype)
    with np.errstate(over="ignore"):
        return float(_residual_kernel(Yf, Pf, Uc, a, n, b))


# below this many columns the kernel's inner loops are too short to pay
_MIN_COLS = 64


def projection_residual(Y3, P3, U) -> float:
    """``||Y3 - U P3||_F^2`` formed explicitly: ``Y3`` (a, n, b), ``P3`` (a, r, b), ``U`` (n, r).

    C-contiguous float32/float64 numpy input with at least ``_MIN_COLS``
    columns ``b`` runs the Numba kernel, anything else the reference. A
    trailing mode (``b == 1``, ``n >= _MIN_COLS``) runs the kernel on the
    transposed problem: ``||Y_2 - P_2 U^T||_F^2`` for the ``(a, n)`` and
    ``(a, r)`` matrices is the kernel's sum with ``(1, a, n)``, ``U^T`` as
    ``(1, r, n)`` and ``P_2`` as the basis, so its inner loops run along the
    ``n`` contiguous entries of each row instead of over single columns
    (and the reference's batched products of ``(n, r)`` by ``(r, 1)``).
    """
    xp = get_namespace(Y3, P3, U)
    if (is_numpy(xp) and numba_enabled() and Y3.dtype in (np.float32, np.float64)
            and Y3.flags.c_contiguous and math.prod(Y3.shape) > 0):
        a, n, b = (int(s) for s in Y3.shape)
        if b >= _MIN_COLS:
            return projection_residual_numba(Y3, P3, U)
        if b == 1 and n >= _MIN_COLS:
            r = int(U.shape[1])
            return projection_residual_numba(xp.reshape(Y3, (1, a, n)), xp.reshape(U.T, (1, r, n)),
                                             xp.reshape(P3, (a, r)))
    return projection_residual_reference(Y3, P3, U)
