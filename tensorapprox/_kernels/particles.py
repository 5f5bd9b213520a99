"""Direct summation of pair potentials ``phi(x) = sum_i q_i K(|x - x_i|)``.

Kernels (``kind``): 0 = Newton ``1/r``; 1 = long-range ``erf(r / r_c) / r``
(``2 / (r_c sqrt(pi))`` at ``r = 0``); 2 = exponential sum
``sum_l w_l exp(-a_l r^2)``; 3 = short-range ``erfc(r / r_c) / r`` (formed
with ``erfc``: ``1/r - erf(r/r_c)/r`` cancels to nothing a few ``r_c`` out).
The reference is chunked numpy, the Numba kernel runs blocks of target
points in parallel threads; one dispatcher.

Distances are formed without overflow or underflow: coordinates whose
differences lie beyond about ``1e154`` or below ``1e-154`` are scaled by
their largest difference before squaring (``r^2`` overflowed to ``inf``, or
underflowed to 0, there).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import numba_enabled

__all__ = ["direct_sum_reference", "direct_sum_numba", "direct_sum"]

KIND_NEWTON = 0
KIND_ERF = 1
KIND_EXPSUM = 2
KIND_ERFC = 3

# target points per chunk of the reference (chunk x N distance matrix)
_REF_CHUNK_ELEMS = 1 << 21


def _kernel_values(r, kind, r_c, alphas, weights):
    if kind == KIND_NEWTON:
        with np.errstate(divide="ignore"):
            return 1.0 / r
    if kind == KIND_ERF:
        from scipy.special import erf

        small = r < 1e-8 * r_c
        rs = np.where(small, 1.0, r)
        v = erf(rs / r_c) / rs
        # series erf(z)/z ~ 2/sqrt(pi) (1 - z^2/3) below 1e-8 r_c
        return np.where(small, 2.0 / (r_c * math.sqrt(math.pi)), v)
    if kind == KIND_ERFC:
        from scipy.special import erfc

        with np.errstate(divide="ignore"):
            return erfc(r / r_c) / r
    with np.errstate(over="ignore", invalid="ignore"):
        # a zero exponent is the constant term, also at an infinite distance
        e = (r * r)[..., None] * alphas
        wild = ~((r > 1e-145) & (r < 1e145))
        if np.any(wild):  # (sqrt(a) r)^2: r^2 alone overflowed (or underflowed) beside a tiny (huge) exponent
            t = r[wild][..., None] * np.sqrt(alphas)
            e[wild] = t * t
        if not np.all(alphas > 0.0):  # 0 * inf at an infinite distance
            e = np.where(alphas > 0.0, e, 0.0)
    return np.exp(-e) @ weights


def _distances(diff):
    """``|diff|`` over the last axis, without overflow or underflow.

    ``sqrt(sum(diff^2))`` where the squares are in range; the pairs outside
    ``(_R2_MIN, _R2_MAX)`` are redone scaled by their largest component (as
    the Numba kernel does).
    """
    r2 = np.sum(diff * diff, axis=-1)
    r = np.sqrt(r2)
    out = ~((r2 > _R2_MIN) & (r2 < _R2_MAX))
    if np.any(out):
        d = diff[out]
        m = np.max(np.abs(d), axis=-1)
        safe = np.where((m > 0.0) & np.isfinite(m), m, 1.0)
        t = d / safe[..., None]
        r[out] = np.where((m > 0.0) & np.isfinite(m), m * np.sqrt(np.sum(t * t, axis=-1)), m)
    return r


def direct_sum_reference(points, positions, charges, kind: int, r_c: float = 1.0,
                         alphas=None, weights=None):
    """Readable reference: ``(chunk, N)`` distance matrices, chunked over the points."""
    M = points.shape[0]
    N = positions.shape[0]
    out = np.empty(M)
    chunk = max(1, _REF_CHUNK_ELEMS // max(N, 1))
    if kind == KIND_EXPSUM:
        chunk = max(1, chunk // max(alphas.shape[0], 1))
    for lo in range(0, M, chunk):
        P = points[lo:lo + chunk]
        with np.errstate(over="ignore", invalid="ignore"):  # coordinates 1e308 apart: an infinite distance
            diff = P[:, None, :] - positions[None, :, :]
            r = _distances(diff)
        out[lo:lo + chunk] = _kernel_values(r, kind, r_c, alphas, weights) @ charges
    return out



# squared distances formed directly inside this range; outside it, scaled
_R2_MIN = 1e-290
_R2_MAX = 1e290


@numba.njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _direct(points, positions, charges, kind, r_c, alphas, weights, block):
    M, d = points.shape
    N = positions.shape[0]
    out = np.zeros(M)
    nblocks = (M + block - 1) // block
    inv_rc = 1.0 / r_c
    at0 = 2.0 / (r_c * math.sqrt(math.pi))
    L = alphas.shape[0]
    for b in numba.prange(nblocks):
        lo = b * block
        hi = min(M, lo + block)
        for i in range(lo, hi):
            acc = 0.0
            for j in range(N):
                r2 = 0.0
                for k in range(d):
                    t = points[i, k] - positions[j, k]
                    r2 += t * t
                scaled = not (_R2_MIN < r2 < _R2_MAX)
                if scaled:
                    # squares that overflow or underflow (or no distance at
                    # all): scaled by the largest difference
                    m = 0.0
                    for k in range(d):
                        m = max(m, abs(points[i, k] - positions[j, k]))
                    if m > 0.0 and m < math.inf:
                        r2 = 0.0
                        for k in range(d):
                            t = (points[i, k] - positions[j, k]) / m
                            r2 += t * t
                        r = m * math.sqrt(r2)
                    else:
                        r = m  # 0, or an infinite difference
                else:
                    r = math.sqrt(r2)
                if kind == 0:
                    acc += charges[j] / r
                elif kind == 1:
                    if r < 1e-8 * r_c:
                        acc += charges[j] * at0
                    else:
                        acc += charges[j] * math.erf(r * inv_rc) / r
                elif kind == 3:
                    acc += charges[j] * math.erfc(r * inv_rc) / r
                else:
                    s = 0.0
                    for ll in range(L):
                        a = alphas[ll]
                        if a > 0.0:
                            if scaled:  # (sqrt(a) r)^2: r^2 alone overflows or underflows
                                t = math.sqrt(a) * r
                                s += weights[ll] * math.exp(-(t * t))
                            else:
                                s += weights[ll] * math.exp(-a * r2)
                        else:  # the constant term, also at an infinite distance
                            s += weights[ll]
                    acc += charges[j] * s
            out[i] = acc
    return out


def direct_sum_numba(points, positions, charges, kind: int, r_c: float = 1.0,
                     alphas=None, weights=None, *, block: int = 64):
    """Numba kernel of :func:`direct_sum` (float64 numpy arrays)."""
    f = _direct
    if alphas is None:
        alphas = np.zeros(0)
        weights = np.zeros(0)
    return f(np.ascontiguousarray(points, dtype=np.float64), np.ascontiguousarray(positions, dtype=np.float64),
             np.ascontiguousarray(charges, dtype=np.float64), int(kind), float(r_c),
             np.ascontiguousarray(alphas, dtype=np.float64), np.ascontiguousarray(weights, dtype=np.float64),
             int(block))


def direct_sum(points, positions, charges, kind: int, r_c: float = 1.0, alphas=None, weights=None):
    """``sum_j charges[j] K(|points[i] - positions[j]|)`` for every point ``i``.

    Numba when enabled, else the chunked numpy reference.
    """
    if numba_enabled():
        return direct_sum_numba(points, positions, charges, kind, r_c, alphas, weights)
    return direct_sum_reference(points, positions, charges, kind, r_c, alphas, weights)
