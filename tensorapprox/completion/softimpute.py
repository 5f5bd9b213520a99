"""Soft-impute (Mazumder, Hastie, Tibshirani 2010): the nuclear-norm baseline."""

from __future__ import annotations

import math
import sys
import warnings
from typing import Callable

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from .._array import check_random_state
from .._kernels.completion import sampled_dot
from .._validation import check_bool, check_int, check_positive_float
from .altmin import CompletionResult, _value_scale, randomized_svd_sparse
from .lowrank import LowRankMatrix
from .observations import Observations, _check_validation, check_observations

__all__ = ["soft_impute"]


def _fit_baseline(obs: Observations, reg: float, n_passes: int = 15):
    """Global mean and damped row/column offsets by alternating ridge means."""
    n1, n2 = obs.shape
    mu = float(np.mean(obs.values))
    bu = np.zeros(n1)
    bv = np.zeros(n2)
    # a row or column with no observation (and no damping) has offset 0, not
    # 0 / 0: its NaN reached every prediction of that row
    den_r = np.maximum(np.bincount(obs.rows, minlength=n1) + reg, np.finfo(float).tiny)
    den_c = np.maximum(np.bincount(obs.cols, minlength=n2) + reg, np.finfo(float).tiny)
    for _ in range(n_passes):
        bv = np.bincount(obs.cols, weights=obs.values - mu - bu[obs.rows], minlength=n2) / den_c
        bu = np.bincount(obs.rows, weights=obs.values - mu - bv[obs.cols], minlength=n1) / den_r
    return mu, bu, bv


def soft_impute(
    rows,
    cols,
    values,
    shape,
    rank: int,
    shrinkage: float | None = None,
    tol: float = 1e-4,
    max_iter: int = 100,
    biases: bool = False,
    random_state=None,
    callback: Callable[[int, float], bool | None] | None = None,
    progress: bool = False,
    *,
    validation=None,
    duplicates: str = "error",
    bias_regularization: float = 5.0,
) -> CompletionResult:
    """Nuclear-norm regularized completion by iterative soft-thresholded SVD.

    Minimizes ``0.5 ||P_Omega(Z - M)||_F^2 + shrinkage * ||Z||_*`` over
    matrices of rank at most ``rank``.

    Parameters
    ----------
    rows, cols : array_like of int, shape (m,)
        0-based indices of the observed entries.
    values : array_like of float, shape (m,)
        Observed values.
    shape : tuple of int
        ``(n1, n2)``.
    rank : int
        Largest rank kept (the truncated SVD size), ``1 <= rank <= min(shape)``.
    shrinkage : float, optional
        Soft threshold ``lambda`` on the singular values. Default:
        ``0.05 * sigma_max`` of the observed (centred) matrix.
    tol : float, default 1e-4
        Stop when ``||Z_new - Z||_F^2 / ||Z||_F^2 < tol`` (MHT's criterion).
    max_iter : int, default 100
        Maximum number of iterations.
    biases : bool, default False
        Fit a global mean and damped row/column offsets first and complete
        the residual.
    random_state : None, int or numpy.random.Generator
        Seeds the randomized SVD.
    callback : callable, optional
        ``callback(n_iter, residual)`` after each iteration; return ``True`` to stop.
    progress : bool, default False
        Print one line per iteration to stderr.
    validation : tuple (rows, cols, values), optional
        Held-out entries; their relative error is recorded per iteration.
    duplicates : {'error', 'mean'}, default 'error'
    bias_regularization : float, default 5.0
        Damping count added to each row/column when fitting the offsets.

    Returns
    -------
    CompletionResult
        ``history`` holds the relative residual on the observed entries. The
        factors and offsets have the values' dtype (float32 stays float32;
        the iterations run in float64).

    Raises
    ------
    TypeError, ValueError
        For invalid observations or arguments, as :func:`altmin_complete`.

    Warns
    -----
    UserWarning
        If a row or column has no observation: its offset is zero and its
        completed entries come from the others, as in :func:`altmin_complete`.

    Notes
    -----
    Algorithm 1 of Mazumder, Hastie and Tibshirani, "Spectral regularization
    algorithms for learning large incomplete matrices", JMLR 11 (2010):
    ``Z <- S_lambda(P_Omega(M) + P_Omega^perp(Z))``. The matrix inside is
    "sparse plus low rank", so its truncated SVD is computed by a randomized
    range finder warm-started with the previous right factor, at
    O(|Omega| k + (n1 + n2) k^2) per iteration; it is never formed.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion import soft_impute
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 2)) @ rng.standard_normal((2, 80))
    >>> r, c = np.nonzero(rng.random(X.shape) < 0.5)
    >>> res = soft_impute(r, c, X[r, c], X.shape, 2, shrinkage=0.1, random_state=0)
    >>> bool(np.linalg.norm(res.matrix.full() - X) / np.linalg.norm(X) < 0.05)
    True
    """
    obs = check_observations(rows, cols, values, shape, duplicates=duplicates)
    n1, n2 = obs.shape
    n_empty_rows = int(np.count_nonzero(np.bincount(obs.rows, minlength=n1) == 0))
    n_empty_cols = int(np.count_nonzero(np.bincount(obs.cols, minlength=n2) == 0))
    if n_empty_rows or n_empty_cols:
        warnings.warn(f"{n_empty_rows} rows and {n_empty_cols} columns have no observation; their offsets are "
                      "zero and their completed entries come from the other rows and columns", UserWarning,
                      stacklevel=2)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise TypeError(f"rank must be an int, got {type(rank).__name__}")
    if not 1 <= int(rank) <= min(n1, n2):
        raise ValueError(f"rank must be in [1, min(shape)] = [1, {min(n1, n2)}], got {rank}")
    k = int(rank)
    tol = check_positive_float(tol, name="tol")
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    bias_regularization = check_positive_float(bias_regularization, name="bias_regularization", allow_zero=True)
    if shrinkage is not None:
        shrinkage = check_positive_float(shrinkage, name="shrinkage", allow_zero=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    biases = check_bool(biases, name="biases")  # biases="no" fitted biases
    progress = check_bool(progress, name="progress")
    val = None
    if validation is not None:
        try:
            vr, vc, vv = validation
        except (TypeError, ValueError):
            raise TypeError("validation must be a tuple (rows, cols, values)") from None
        val = _check_validation(vr, vc, vv, obs.shape)
    rng = check_random_state(random_state)
    # Values far from 1 are fitted in units of a power of two (exact), as in
    # altmin_complete: near 1e-200 the squares in the stopping rule underflowed
    # (a "converged" fit after 2 iterations, 32% off), near 1e200 they
    # overflowed (a NaN history). The problem is equivariant: Z and the
    # shrinkage scale with the values.
    vscale = _value_scale(float(np.max(np.abs(obs.values))))
    if vscale != 1.0:
        obs = Observations(obs.rows, obs.cols, obs.values / vscale, obs.shape)
        if val is not None:
            val = Observations(val.rows, val.cols, val.values / vscale, val.shape)
        if shrinkage is not None:
            shrinkage = shrinkage / vscale

    if biases:
        mu, bu, bv = _fit_baseline(obs, bias_regularization)
        target = obs.values - mu - bu[obs.rows] - bv[obs.cols]
    else:
        mu, bu, bv = 0.0, None, None
        target = obs.values.astype(np.float64)
    indptr = np.zeros(n1 + 1, dtype=np.int64)
    np.cumsum(np.bincount(obs.rows, minlength=n1), out=indptr[1:])
    indices = obs.cols

    def sparse(data):
        return sp.csr_matrix((data, indices, indptr), shape=(n1, n2))

    if shrinkage is None:
        _, s0, _ = randomized_svd_sparse(sparse(target), 1, rng, n_power=6)
        shrinkage = 0.05 * float(s0[0])

    U = np.zeros((n1, k))
    s = np.zeros(k)
    V = np.zeros((n2, k))
    norm_values = float(np.linalg.norm(obs.values)) or 1.0
    history, test_history = [], []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        fitted = sampled_dot(U * s, V, obs.rows, obs.cols)
        S = sparse(target - fitted)
        Us = U * s

        def matmat(X, S=S, Us=Us):
            return S @ X + Us @ (V.T @ X)

        def rmatmat(X, S=S, Us=Us):
            return S.T @ X + V @ (Us.T @ X)

        op = LinearOperator((n1, n2), matvec=lambda x: matmat(x[:, None])[:, 0],
                            rmatvec=lambda x: rmatmat(x[:, None])[:, 0],
                            matmat=matmat, rmatmat=rmatmat, dtype=np.float64)
        Un, sn, Vn = randomized_svd_sparse(op, k, rng, n_oversample=5, n_power=1,
                                           start=V if it > 1 else None)
        sn = np.maximum(sn - shrinkage, 0.0)
        # ||Z_new - Z||^2 from k x k Gram products, never dense
        old2 = float(np.sum(s * s))
        new2 = float(np.sum(sn * sn))
        cross = float(sn @ (((Un.T @ U) * (Vn.T @ V)) @ s))
        change = max(old2 + new2 - 2.0 * cross, 0.0) / max(old2, 1e-300)
        U, s, V = Un, sn, Vn
        fitted = sampled_dot(U * s, V, obs.rows, obs.cols)
        res = math.sqrt(float(np.sum((target - fitted) ** 2))) / norm_values
        history.append(res)
        if val is not None:
            pred = sampled_dot(U * s, V, val.rows, val.cols) + mu
            if biases:
                pred = pred + bu[val.rows] + bv[val.cols]
            nv = float(np.linalg.norm(val.values)) or 1.0
            test_history.append(float(np.linalg.norm(pred - val.values) / nv))
        if progress:
            extra = f"  test {test_history[-1]:.3e}" if test_history else ""
            print(f"soft_impute iter {it:3d}  residual {res:.3e}  change {change:.2e}{extra}", file=sys.stderr)
        stop = bool(callback(it, res)) if callback is not None else False
        if it > 1 and change < tol:
            converged = True
            break
        if stop:
            break

    if not np.any(s > 0):
        s = s.copy()
    if vscale != 1.0:
        s, mu = s * vscale, mu * vscale
        bu = None if bu is None else bu * vscale
        bv = None if bv is None else bv * vscale
    # computed in float64; returned in the values' float width, as
    # altmin_complete returns it (float32 values gave a float64 result)
    out = obs.values.dtype
    U, s, V = (a.astype(out, copy=False) for a in (U, s, V))
    bu = None if bu is None else bu.astype(out, copy=False)
    bv = None if bv is None else bv.astype(out, copy=False)
    return CompletionResult(
        matrix=LowRankMatrix(U, s, V, copy=False),
        n_iter=it,
        converged=converged,
        history=np.asarray(history),
        test_history=np.asarray(test_history),
        inner_steps=np.zeros(len(history)),
        global_mean=mu,
        row_bias=bu,
        col_bias=bv,
        solver="soft_impute",
    )
