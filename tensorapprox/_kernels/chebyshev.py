"""Evaluation of a Chebyshev-Tucker approximant at scattered points.

The approximant is ``f(t) = sum_r G[r_1..r_d] prod_k B_k(t_k)[r_k]`` with
``B_k(s) = sum_j T_j(s) C_k[j, :]`` (``C_k`` the ``(m_k, r_k)`` coefficient
factor of mode ``k``) at points ``t`` already mapped to ``[-1, 1]^d``.

Layout: a readable array-code reference first (it also serves cupy and other
array-API arrays), the Numba kernel beside it, one dispatch function.
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

    Parameters
    ----------
    t : array, shape (n, d)
        Points mapped to ``[-1, 1]^d``.
    factors : sequence of d arrays, shapes (m_k, r_k)
        Coefficient factors.
    core : array, shape (r_1, ..., r_d)
    dfactors : sequence of d arrays, shapes (m'_k, r_k), optional
        Coefficient factors of the derivatives; when given the result is the
        gradient ``(n, d)`` (column ``k`` uses ``dfactors[k]`` in mode ``k``).

    Returns
    -------
    array, shape (n,) or (n, d)
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

# reassociation lets LLVM vectorize the short reductions; no NaN/Inf
# assumptions are made
_FM = {"reassoc", "contract"}


@numba.njit(cache=True, fastmath=_FM)
def _mode_rows(t, lo, hi, k, F, m, r, T, out):
    # out[p, :r] = sum_j T_j(t[lo + p, k]) F[j, :r] for the points of a
    # block. The recurrence runs across points (independent lanes), so
    # its latency chain does not serialize the work.
    nb = hi - lo
    for p in range(nb):
        T[0, p] = 1.0
        T[1, p] = t[lo + p, k]
    for j in range(2, m):
        for p in range(nb):
            T[j, p] = 2.0 * T[1, p] * T[j - 1, p] - T[j - 2, p]
    for p in range(nb):
        for q in range(r):
            out[p, q] = F[0, q]
        for j in range(1, m):
            tj = T[j, p]
            for q in range(r):
                out[p, q] += tj * F[j, q]


@numba.njit(cache=True, fastmath=_FM)
def _contract_point(core, ranks, B, bufa, bufb):
    # contract the first mode first, as axpy updates over the trailing
    # block (independent lanes that vectorize, no long reduction chain)
    d = ranks.shape[0]
    P = core.shape[0] // ranks[0]
    for i in range(P):
        bufa[i] = 0.0
    for q in range(ranks[0]):
        bq = B[0, q]
        base = q * P
        for i in range(P):
            bufa[i] += bq * core[base + i]
    flip = False
    for k in range(1, d - 1):
        rk = ranks[k]
        P = P // rk
        src = bufb if flip else bufa
        dst = bufa if flip else bufb
        for i in range(P):
            dst[i] = 0.0
        for q in range(rk):
            bq = B[k, q]
            base = q * P
            for i in range(P):
                dst[i] += bq * src[base + i]
        flip = not flip
    src = bufb if flip else bufa
    if d == 1:
        return src[0]
    acc = 0.0
    for q in range(ranks[d - 1]):
        acc += src[q] * B[d - 1, q]
    return acc


@numba.njit(cache=True, parallel=True, fastmath=_FM)
def _eval(t, F, ms, ranks, core, block):
    n, d = t.shape
    rmax = F.shape[2]
    out = np.empty(n)
    nblocks = (n + block - 1) // block
    bufsize = max(core.shape[0] // ranks[0], 1)
    mmax = max(F.shape[1], 2)
    for b in numba.prange(nblocks):
        T = np.empty((mmax, block))
        BB = np.empty((d, block, rmax))
        B = np.empty((d, rmax))
        bufa = np.empty(bufsize)
        bufb = np.empty(bufsize)
        lo = b * block
        hi = min(n, lo + block)
        for k in range(d):
            _mode_rows(t, lo, hi, k, F[k], ms[k], ranks[k], T, BB[k])
        for i in range(lo, hi):
            for k in range(d):
                for q in range(ranks[k]):
                    B[k, q] = BB[k, i - lo, q]
            out[i] = _contract_point(core, ranks, B, bufa, bufb)
    return out


@numba.njit(cache=True, parallel=True, fastmath=_FM)
def _grad(t, F, ms, DF, dms, ranks, core, block):
    n, d = t.shape
    rmax = F.shape[2]
    out = np.empty((n, d))
    nblocks = (n + block - 1) // block
    bufsize = max(core.shape[0] // ranks[0], 1)
    mmax = max(F.shape[1], DF.shape[1], 2)
    for b in numba.prange(nblocks):
        T = np.empty((mmax, block))
        BB = np.empty((d, block, rmax))
        DBB = np.empty((d, block, rmax))
        B = np.empty((d, rmax))
        DB = np.empty((d, rmax))
        W = np.empty((d, rmax))
        bufa = np.empty(bufsize)
        bufb = np.empty(bufsize)
        lo = b * block
        hi = min(n, lo + block)
        for k in range(d):
            _mode_rows(t, lo, hi, k, F[k], ms[k], ranks[k], T, BB[k])
            _mode_rows(t, lo, hi, k, DF[k], dms[k], ranks[k], T, DBB[k])
        for i in range(lo, hi):
            for k in range(d):
                for q in range(ranks[k]):
                    B[k, q] = BB[k, i - lo, q]
                    DB[k, q] = DBB[k, i - lo, q]
            for k in range(d):
                for kk in range(d):
                    for q in range(ranks[kk]):
                        W[kk, q] = DB[kk, q] if kk == k else B[kk, q]
                out[i, k] = _contract_point(core, ranks, W, bufa, bufb)
    return out


def _pad_factors(factors, dtype=np.float64):
    d = len(factors)
    mmax = max(F.shape[0] for F in factors)
    rmax = max(F.shape[1] for F in factors)
    P = np.zeros((d, mmax, rmax), dtype=dtype)
    for k, F in enumerate(factors):
        P[k, : F.shape[0], : F.shape[1]] = F
    ms = np.array([F.shape[0] for F in factors], dtype=np.int64)
    return P, ms


def tucker_cheb_eval_numba(t, factors, core, dfactors=None, *, block: int = 64):
    """Numba kernel of :func:`tucker_cheb_eval` (numpy arrays, float64).

    One pass per point: the three-term recurrence builds each
    ``B_k = sum_j T_j(t_k) C_k[j]`` in registers (no Vandermonde matrix), then
    the core is contracted mode by mode from the last. Blocks of points run
    in parallel threads.
    """
    t = np.ascontiguousarray(t, dtype=np.float64)
    F, ms = _pad_factors(factors)
    ranks = np.array(core.shape, dtype=np.int64)
    core_flat = np.ascontiguousarray(core, dtype=np.float64).reshape(-1)
    if dfactors is None:
        return _eval(t, F, ms, ranks, core_flat, block)
    DF, dms = _pad_factors(dfactors)
    return _grad(t, F, ms, DF, dms, ranks, core_flat, block)


# --------------------------------------------------------------------------- #
# dispatch
# --------------------------------------------------------------------------- #
def tucker_cheb_eval(t, factors, core, dfactors=None):
    """Values (or the gradient) of a Chebyshev-Tucker approximant at points.

    numpy float64 input runs the Numba kernel (unless disabled by
    ``TENSORAPPROX_DISABLE_NUMBA=1``); every other array kind runs the array
    code of :func:`tucker_cheb_eval_reference` in its own namespace.
    """
    xp = get_namespace(t, core)
    if is_numpy(xp) and numba_enabled() and t.dtype == np.float64:
        return tucker_cheb_eval_numba(t, factors, core, dfactors)
    return tucker_cheb_eval_reference(t, factors, core, dfactors)
