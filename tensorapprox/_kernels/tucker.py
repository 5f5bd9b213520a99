"""Entries of a Tucker tensor at scattered indices.

``value(i_1, ..., i_d) = sum_{r} G[r_1, ..., r_d] prod_k U_k[i_k, r_k]``,
evaluated without forming the full tensor.
"""

from __future__ import annotations

import math

import numpy as np

from .._array import get_namespace, is_numpy
from . import numba_enabled

__all__ = ["tucker_entries_reference", "tucker_entries_numba", "tucker_entries"]

_CHUNK_ELEMENTS = 1 << 22  # temporaries of the reference stay below ~32 MB


def tucker_entries_reference(core, factors, indices):
    """Readable array-API reference: gather factor rows, contract mode by mode.

    Works on any array-API namespace (numpy, cupy, array_api_strict); chunks
    over points so its temporaries stay bounded.
    """
    xp = get_namespace(core, *factors)
    n = indices.shape[0]
    d = core.ndim
    ranks = core.shape
    rest = math.prod(ranks[1:])
    chunk = max(1, _CHUNK_ELEMENTS // max(rest, 1))
    G0 = xp.reshape(core, (ranks[0], rest))
    pieces = []
    for start in range(0, n, chunk):
        idx = indices[start:min(start + chunk, n), :]
        m = idx.shape[0]
        V = xp.take(factors[0], idx[:, 0], axis=0) @ G0  # (m, r_2 ... r_d)
        for k in range(1, d):
            V = xp.reshape(V, (m, ranks[k], -1))
            Uk = xp.take(factors[k], idx[:, k], axis=0)  # (m, r_k)
            V = xp.sum(V * Uk[:, :, None], axis=1)
        pieces.append(xp.reshape(V, (m,)))
    if not pieces:
        return xp.zeros((0,), dtype=core.dtype)
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces)


_numba_impl = None


def _build_numba():
    import numba

    @numba.njit(parallel=True, cache=True, fastmath=False)
    def entries(core_flat, ranks, factors_flat, offsets, idx, out):
        n = idx.shape[0]
        d = ranks.shape[0]
        P = core_flat.shape[0]
        block = 256
        nblocks = (n + block - 1) // block
        for blk in numba.prange(nblocks):
            buf_a = np.empty(P, dtype=core_flat.dtype)
            buf_b = np.empty(P, dtype=core_flat.dtype)
            stop = min(n, (blk + 1) * block)
            for p in range(blk * block, stop):
                # contract the last mode first: the core is C-ordered, so the
                # last index is contiguous
                size = P
                k = d - 1
                rk = ranks[k]
                m = size // rk
                base = offsets[k] + idx[p, k] * rk
                for j in range(m):
                    s = 0.0
                    for t in range(rk):
                        s += core_flat[j * rk + t] * factors_flat[base + t]
                    buf_a[j] = s
                size = m
                use_a = True
                for k in range(d - 2, -1, -1):
                    rk = ranks[k]
                    m = size // rk
                    base = offsets[k] + idx[p, k] * rk
                    src = buf_a if use_a else buf_b
                    dst = buf_b if use_a else buf_a
                    for j in range(m):
                        s = 0.0
                        for t in range(rk):
                            s += src[j * rk + t] * factors_flat[base + t]
                        dst[j] = s
                    size = m
                    use_a = not use_a
                out[p] = buf_a[0] if use_a else buf_b[0]

    return entries


def tucker_entries_numba(core, factors, indices):
    """Numba CPU kernel (numpy arrays only), parallel over blocks of points."""
    global _numba_impl
    if _numba_impl is None:
        _numba_impl = _build_numba()
    # float32 only when every array is (an integer core truncated float factors)
    dtype = np.float32 if all(a.dtype == np.float32 for a in (core, *factors)) else np.float64
    core_flat = np.ascontiguousarray(core, dtype=dtype).ravel()
    ranks = np.asarray(core.shape, dtype=np.int64)
    flat = [np.ascontiguousarray(U, dtype=dtype).ravel() for U in factors]
    offsets = np.zeros(len(flat), dtype=np.int64)
    offsets[1:] = np.cumsum([f.size for f in flat])[:-1]
    factors_flat = np.concatenate(flat)
    idx = np.ascontiguousarray(indices, dtype=np.int64)
    out = np.empty(idx.shape[0], dtype=dtype)
    _numba_impl(core_flat, ranks, factors_flat, offsets, idx, out)
    return out


def tucker_entries(core, factors, indices):
    """Dispatch: Numba for numpy arrays, the array-API reference otherwise."""
    xp = get_namespace(core, *factors)
    if is_numpy(xp) and numba_enabled() and isinstance(core, np.ndarray):
        return tucker_entries_numba(core, factors, indices)
    return tucker_entries_reference(core, factors, indices)
