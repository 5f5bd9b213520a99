"""Kernels for entry sampling used as a measurement operator.

Matrix completion written as a sensing problem ``y = A(X)`` with
``A(X)_t = X[rows[t], cols[t]]`` needs two sampled products per iteration of
a factored method, both O(|Omega| k) and never forming an ``n1 x n2`` array:

* ``sampled_product(U, V, rows, cols)``: ``A(U V^T)``, i.e.
  ``out[t] = U[rows[t]] @ V[cols[t]]``;
* ``scatter_matmul(v, rows, cols, W, n_out)``: ``A*(v) @ W``, where ``A*(v)``
  is the sparse matrix holding ``v[t]`` at ``(rows[t], cols[t])`` (repeated
  pairs add up), i.e. ``out[rows[t]] += v[t] * W[cols[t]]``. Swapping
  ``rows`` and ``cols`` gives ``A*(v)^T @ W``.

Layout: numpy references first, the Numba kernels beside them, one dispatch
function per product at the end (Numba for numpy arrays unless
``TENSORAPPROX_DISABLE_NUMBA=1``; array code for cupy and other array-API
arrays).
"""

from __future__ import annotations

import numpy as np

from . import numba_enabled

__all__ = [
    "sampled_product",
    "sampled_product_reference",
    "scatter_matmul",
    "scatter_matmul_reference",
]


# --------------------------------------------------------------------------
# numpy references
# --------------------------------------------------------------------------
def sampled_product_reference(U, V, rows, cols):
    """``out[t] = U[rows[t]] @ V[cols[t]]`` (numpy reference)."""
    return np.einsum("ij,ij->i", U[rows], V[cols])


def scatter_matmul_reference(v, rows, cols, W, n_out):
    """``out[rows[t]] += v[t] * W[cols[t]]``, ``out`` of shape (n_out, k) (numpy reference)."""
    out = np.zeros((n_out, W.shape[1]), dtype=np.result_type(v.dtype, W.dtype))
    np.add.at(out, rows, v[:, None] * W[cols])
    return out


# --------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------
_numba_cache: dict = {}


def _build_numba():
    import numba

    jit = numba.njit(cache=True, nogil=True)

    @jit
    def sampled_product_nb(U, V, rows, cols, out):
        k = U.shape[1]
        for t in range(rows.shape[0]):
            i = rows[t]
            j = cols[t]
            acc = 0.0
            for a in range(k):
                acc += U[i, a] * V[j, a]
            out[t] = acc

    @jit
    def scatter_matmul_nb(v, rows, cols, W, out):
        # Sequential on purpose: rows repeat, and a parallel loop would race
        # on out[i]; at O(|Omega| k) this is memory bound anyway.
        k = W.shape[1]
        for t in range(rows.shape[0]):
            i = rows[t]
            j = cols[t]
            vt = v[t]
            for a in range(k):
                out[i, a] += vt * W[j, a]

    return {"sampled_product": sampled_product_nb, "scatter_matmul": scatter_matmul_nb}


def _numba_kernels() -> dict:
    if not _numba_cache:
        _numba_cache.update(_build_numba())
    return _numba_cache


def _use_numba(*arrays) -> bool:
    return numba_enabled() and all(isinstance(a, np.ndarray) for a in arrays)


# --------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------
def sampled_product(U, V, rows, cols):
    """``A(U V^T)`` for entry sampling: ``out[t] = U[rows[t]] @ V[cols[t]]``.

    Parameters
    ----------
    U : array, shape (n1, k)
    V : array, shape (n2, k)
    rows, cols : integer arrays, shape (m,)
        In range (not checked here: the caller validated them).

    Returns
    -------
    array, shape (m,)
        Same namespace as ``U``, dtype of ``U`` and ``V`` promoted.
    """
    if _use_numba(U, V, rows, cols):
        dtype = np.result_type(U.dtype, V.dtype)
        U = np.ascontiguousarray(U, dtype=dtype)
        V = np.ascontiguousarray(V, dtype=dtype)
        out = np.empty(rows.shape[0], dtype=dtype)
        _numba_kernels()["sampled_product"](U, V, rows, cols, out)
        return out
    if isinstance(U, np.ndarray):
        return sampled_product_reference(U, V, rows, cols)
    from .._array import get_namespace

    xp = get_namespace(U, V)
    return xp.sum(xp.take(U, rows, axis=0) * xp.take(V, cols, axis=0), axis=1)


def scatter_matmul(v, rows, cols, W, n_out: int):
    """``A*(v) @ W`` for entry sampling: ``out[rows[t]] += v[t] * W[cols[t]]``.

    Parameters
    ----------
    v : array, shape (m,)
    rows : integer array, shape (m,)
        Output rows, in ``[0, n_out)``.
    cols : integer array, shape (m,)
        Rows of ``W`` to gather, in range.
    W : array, shape (n_in, k)
    n_out : int
        Number of rows of the result.

    Returns
    -------
    array, shape (n_out, k)
    """
    if _use_numba(v, rows, cols, W):
        dtype = np.result_type(v.dtype, W.dtype)
        v = np.ascontiguousarray(v, dtype=dtype)
        W = np.ascontiguousarray(W, dtype=dtype)
        out = np.zeros((int(n_out), W.shape[1]), dtype=dtype)
        _numba_kernels()["scatter_matmul"](v, rows, cols, W, out)
        return out
    if isinstance(W, np.ndarray):
        return scatter_matmul_reference(v, rows, cols, W, int(n_out))
    from .._array import get_namespace, is_cupy

    xp = get_namespace(v, W)
    contrib = v[:, None] * xp.take(W, cols, axis=0)
    if is_cupy(xp):  # pragma: no cover - needs a GPU
        import cupyx

        out = xp.zeros((int(n_out), W.shape[1]), dtype=contrib.dtype)
        cupyx.scatter_add(out, rows, contrib)
        return out
    # The array API has no scatter-add: sum the contributions through a
    # one-hot product in blocks of rows (O(n_out * m) work, for small tests).
    out_rows = []
    ids = xp.arange(int(n_out))
    block = max(1, 2**22 // max(int(rows.shape[0]), 1))
    for start in range(0, int(n_out), block):
        stop = min(start + block, int(n_out))
        onehot = xp.astype(ids[start:stop, None] == rows[None, :], contrib.dtype)
        out_rows.append(onehot @ contrib)
    return xp.concat(out_rows, axis=0)
