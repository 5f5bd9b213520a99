"""Evaluation of a Chebyshev-Tucker approximant at scattered points.

The approximant is ``f(t) = sum_r G[r_1..r_d] prod_k B_k(t_k)[r_k]`` with
``B_k(s) = sum_j T_j(s) C_k[j, :]`` (``C_k`` the ``(m_k, r_k)`` coefficient
factor of mode ``k``) at points ``t`` already mapped to ``[-1, 1]^d``.

Layout: a readable array-code reference first (it also serves cupy and other
array-API arrays), the Numba kernel beside it, one dispatch function.

The Numba kernel works on blocks of points. Numba builds the block's
Chebyshev-Vandermonde matrices by the three-term recurrence; BLAS GEMMs form
the mode rows ``B_k`` and the first, largest contraction
``W = B_1 @ G.reshape(r_1, -1)`` (``r_1 ... r_d`` multiply-adds per point);
a serial Numba loop contracts the remaining modes point by point
(``r_2 ... r_d`` multiply-adds per point). Threads come from the BLAS
library only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import numba_enabled
from .._array import get_namespace, is_numpy

__all__ = [
    "tucker_cheb_eval_reference",
    "tucker_cheb_eval_numba",
    "tucker_cheb_eval",
]

# points per block of the reference: keeps the (block, prod r_2..r_d)
# intermediate near 32 MiB
_REF_BLOCK_ELEMS = 1 << 22


# --------------------------------------------------------------------------- #
# reference (array code, any namespace)
# --------------------------------------------------------------------------- #
def _vander(xp, s, m: int):
    cols = [xp.ones_like(s)]
    if m > 1:
        cols.append(s)
    for _ in range(2, m):
        cols.append(2.0 * s * cols[-1] - cols[-2])
    return xp.stack(cols, axis=1)


def _contract(xp, core, Bs):
    """``sum_r core[r] prod_k Bs[k][:, r_k]`` for a block of points."""
    n = Bs[0].shape[0]
    ranks = core.shape
    W = Bs[0] @ xp.reshape(core, (ranks[0], -1))  # (n, r_2 * ... * r_d)
    for k in range(1, len(ranks)):
        rest = math.prod(ranks[k + 1:])
        W = xp.sum(xp.reshape(W, (n, ranks[k], rest)) * Bs[k][:, :, None], axis=1)
    return xp.reshape(W, (n,))


def tucker_cheb_eval_reference(t, factors, core, dfactors=None):
    """Readable reference of :func:`tucker_cheb_eval` (array code, any namespace).

    Arguments and result as :func:`tucker_cheb_eval`: per block of points,
    the mode rows from Vandermonde matrices, then the core contracted mode
    by mode.
    """
    xp = get_namespace(t, core)
    n, d = t.shape
    P = math.prod(core.shape[1:]) if d > 1 else 1
    block = max(1, min(n, _REF_BLOCK_ELEMS // max(P, 1)))
    outs = []
    for start in range(0, n, block):
        tb = t[start:start + block, :]
        Vs = [_vander(xp, tb[:, k], factors[k].shape[0]) for k in range(d)]
        Bs = [Vs[k] @ factors[k] for k in range(d)]
        if dfactors is None:
            outs.append(_contract(xp, core, Bs))
        else:
            cols = []
            for k in range(d):
                Vd = Vs[k][:, : dfactors[k].shape[0]] if dfactors[k].shape[0] <= Vs[k].shape[1] else \
                    _vander(xp, tb[:, k], dfactors[k].shape[0])
                Bk = list(Bs)
                Bk[k] = Vd @ dfactors[k]
                cols.append(_contract(xp, core, Bk))
            outs.append(xp.stack(cols, axis=1))
    if not outs:
        return xp.zeros((0,) if dfactors is None else (0, d), dtype=core.dtype)
    return xp.concat(outs, axis=0)


# --------------------------------------------------------------------------- #
# Numba kernel
# --------------------------------------------------------------------------- #
# Kernels are compiled on first use and cached on disk (module-level
# functions, so Numba's cache can find them again in a new process).
#
# The Numba loops are serial on purpose: they alternate with numpy's
# multithreaded GEMMs block by block, and a Numba thread pool started right
# after a BLAS call competes with BLAS threads that still spin waiting for
# work, which costs far more than parallelism gains on this small share.

# reassociation lets LLVM vectorize the short reductions; no NaN/Inf
# assumptions are made
_FM = {"reassoc", "contract"}

# per-block temporaries (W, the Vandermonde and mode-row blocks) are kept
# near this size: large enough for efficient GEMMs, small enough to stay
# in the last-level cache between the GEMM that writes W and the Numba
# loop that reads it
_BLOCK_BYTES = 6 << 20
_MAX_BLOCK = 4096


@numba.njit(cache=True, fastmath=_FM)
def _vander_block(t, lo, hi, ms, V):
    # V[k, j, p] = T_j(t[lo + p, k]) for j < ms[k]. The three-term
    # recurrence runs along contiguous points (independent lanes that
    # vectorize), never along one point's latency chain.
    nb = hi - lo
    for k in range(t.shape[1]):
        for p in range(nb):
            V[k, 0, p] = 1.0
        if ms[k] > 1:
            for p in range(nb):
                V[k, 1, p] = t[lo + p, k]
        for j in range(2, ms[k]):
            for p in range(nb):
                V[k, j, p] = 2.0 * V[k, 1, p] * V[k, j - 1, p] - V[k, j - 2, p]


@numba.njit(cache=True, fastmath=_FM)
def _finish(W, BT, DBT, swap, ranks, out, lo, col, bufa, bufb):
    # out[lo + p, col] = sum_c W[p, c] prod_{k=1}^{d-1} B_k[p, c_k] (modes
    # counted from 0) over the C-order multi-index c = (c_1, ..., c_{d-1})
    # of W's columns, with B_k[p, q] = BT[k, q, p] (DBT[k, q, p] for
    # k == swap). Modes 1 .. d-2 are contracted by axpy updates over the
    # trailing block (independent lanes that vectorize), the last by a dot
    # product.
    nb = W.shape[0]
    d = ranks.shape[0]
    for p in range(nb):
        if d == 1:
            out[lo + p, col] = W[p, 0]
            continue
        src = W[p]
        L = W.shape[1]
        for k in range(1, d - 1):
            B = DBT if k == swap else BT
            rk = ranks[k]
            L = L // rk
            dst = bufa if k % 2 == 1 else bufb
            for i in range(L):
                dst[i] = 0.0
            for q in range(rk):
                b = B[k, q, p]
                base = q * L
                for i in range(L):
                    dst[i] += b * src[base + i]
            src = dst
        B = DBT if d - 1 == swap else BT
        acc = 0.0
        for q in range(ranks[d - 1]):
            acc += src[q] * B[d - 1, q, p]
        out[lo + p, col] = acc


def _block_size(n, d, P, mmax, rmax, grad):
    """Points per block: the block's temporaries stay near ``_BLOCK_BYTES``."""
    nw = 2 if grad else 1
    per_point = 8 * (nw * P + d * mmax + nw * d * rmax)
    return max(1, min(n, _MAX_BLOCK, _BLOCK_BYTES // per_point))


def tucker_cheb_eval_numba(t, factors, core, dfactors=None, *, block: int | None = None):
    """Numba/BLAS kernel of :func:`tucker_cheb_eval` (numpy arrays, float64).

    Arguments and result as :func:`tucker_cheb_eval`; ``block`` is the
    number of points per block (default: the block's temporaries near
    6 MiB).

    Notes
    -----
    Per block of points: a Numba loop builds the Chebyshev-Vandermonde
    blocks ``V_k[j, p] = T_j(t_pk)`` by the three-term recurrence, BLAS
    forms the mode rows ``B_k^T = C_k^T V_k`` and the first, largest
    contraction ``W = B_1 @ core.reshape(r_1, -1)`` (``r_1 ... r_d``
    multiply-adds per point), and a serial Numba loop finishes every point,
    ``sum_c W[p, c] prod_{k >= 2} B_k[p, c_k]`` (``r_2 ... r_d``
    multiply-adds per point). The gradient shares ``V_k`` between ``C_k``
    and its derivative factor and needs a second ``W`` only for its first
    column. Threads come from the BLAS library only; the Numba loops are
    serial.
    """
    t = np.ascontiguousarray(t, dtype=np.float64)
    n, d = t.shape
    core = np.ascontiguousarray(core, dtype=np.float64)
    ranks = np.array(core.shape, dtype=np.int64)
    G = core.reshape(core.shape[0], -1)  # (r_1, r_2 ... r_d)
    P = G.shape[1]
    grad = dfactors is not None
    FT = [np.ascontiguousarray(np.asarray(F, dtype=np.float64).T) for F in factors]  # (r_k, m_k)
    DFT = [np.ascontiguousarray(np.asarray(F, dtype=np.float64).T) for F in dfactors] if grad else FT
    ms = np.array([max(A.shape[1], D.shape[1]) for A, D in zip(FT, DFT)], dtype=np.int64)
    mmax = max(int(ms.max()), 2)
    rmax = int(ranks.max())
    out = np.empty((n, d if grad else 1))
    if n > 0:
        nb_max = _block_size(n, d, P, mmax, rmax, grad) if block is None else max(1, min(n, int(block)))
        V = np.empty((d, mmax, nb_max))
        BT = np.empty((d, rmax, nb_max))
        DBT = np.empty((d, rmax, nb_max)) if grad else BT
        W = np.empty((2 if grad else 1, nb_max, P))
        bufa = np.empty(max(P, 1))
        bufb = np.empty(max(P, 1))
        r1 = core.shape[0]
        for lo in range(0, n, nb_max):
            hi = min(n, lo + nb_max)
            nb = hi - lo
            _vander_block(t, lo, hi, ms, V)
            for k in range(d):
                rk, mk = FT[k].shape
                np.matmul(FT[k], V[k, :mk, :nb], out=BT[k, :rk, :nb])
                if grad:
                    np.matmul(DFT[k], V[k, :DFT[k].shape[1], :nb], out=DBT[k, :rk, :nb])
            np.matmul(BT[0, :r1, :nb].T, G, out=W[0, :nb])
            if grad:
                # column 0 differentiates the first mode (its own W); the
                # other columns share W and swap in one derivative row
                np.matmul(DBT[0, :r1, :nb].T, G, out=W[1, :nb])
                _finish(W[1, :nb], BT, DBT, -1, ranks, out, lo, 0, bufa, bufb)
                for k in range(1, d):
                    _finish(W[0, :nb], BT, DBT, k, ranks, out, lo, k, bufa, bufb)
            else:
                _finish(W[0, :nb], BT, BT, -1, ranks, out, lo, 0, bufa, bufb)
    return out if grad else out.reshape(n)


# --------------------------------------------------------------------------- #
# dispatch
# --------------------------------------------------------------------------- #
def tucker_cheb_eval(t, factors, core, dfactors=None):
    """Values (or the gradient) of a Chebyshev-Tucker approximant at points.

    numpy float64 input runs :func:`tucker_cheb_eval_numba` (Numba loops
    around BLAS GEMMs; unless disabled by ``TENSORAPPROX_DISABLE_NUMBA=1``);
    every other array kind runs the array code of
    :func:`tucker_cheb_eval_reference` in its own namespace.

    Parameters
    ----------
    t : array, shape (n, d)
        Points mapped to ``[-1, 1]^d``.
    factors : sequence of d arrays, shapes (m_k, r_k)
        Coefficient factors.
    core : array, shape (r_1, ..., r_d)
        Core tensor.
    dfactors : sequence of d arrays, shapes (m'_k, r_k), optional
        Coefficient factors of the derivatives; when given the result is the
        gradient (see :func:`tucker_cheb_eval_reference`).

    Returns
    -------
    array, shape (n,) or (n, d)
        Values at the points, or the gradient (column ``k`` from
        ``dfactors[k]``).
    """
    xp = get_namespace(t, core)
    if is_numpy(xp) and numba_enabled() and t.dtype == np.float64:
        return tucker_cheb_eval_numba(t, factors, core, dfactors)
    return tucker_cheb_eval_reference(t, factors, core, dfactors)
