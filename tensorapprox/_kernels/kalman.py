"""Kalman filter and Rauch-Tung-Striebel smoother over sorted sites.

The state at site ``i`` stacks ``R`` independent linear time-invariant
state-space processes of dimension ``d`` (component ``r`` occupies entries
``r*d .. r*d + d - 1`` and is observed through its first entry). The prior is
block-diagonal: every component uses the same ``d x d`` transition ``A_i`` and
process-noise covariance ``Q_i`` between sites ``i - 1`` and ``i``, and starts
from the stationary covariance ``P_inf`` with zero mean. Data enter as
Gaussian pseudo-observations in information form: at site ``i`` the
log-likelihood of the observed components ``f = H s`` is
``-f' Lambda_i f / 2 + eta_i' f`` with ``Lambda_i`` (``R x R``, symmetric
positive semi-definite, may couple the components or be singular) and
``eta_i`` (``R``).

The measurement update never inverts ``Lambda_i``: with ``S = H P H'`` and
``M = I + Lambda S``, the gain is ``K = P H' M^{-1} Lambda`` and the
covariance is updated in Joseph form
``(I - K H) P (I - K H)' + P H' M^{-1} Lambda M^{-T} H P`` (the second term
is ``K Lambda^{-1} K'`` written without the inverse), then symmetrized. The
smoother uses the Joseph form of the RTS step,
``P_s = (I - G A) P_f (I - G A)' + G Q G' + G P_s[i+1] G'``, which is a sum of
positive semi-definite terms.

Layout: a readable array-API reference (:func:`kalman_smoother_reference`,
also the code path for cupy and other array libraries), a Numba kernel
beside it, and :func:`kalman_smoother_batched` dispatching by array type.
"""

from __future__ import annotations

import numba
import numpy as np

from .._array import get_namespace, is_numpy
from . import numba_enabled

__all__ = ["kalman_smoother_reference", "kalman_smoother_batched"]


def _block_diag_apply_left(xp, A, X, R, d):
    """``(I_R kron A) @ X`` for ``X`` of shape (R*d, m)."""
    m = X.shape[1]
    Xb = xp.reshape(X, (R, d, m))
    return xp.reshape(xp.matmul(A, Xb), (R * d, m))


def kalman_smoother_reference(A, Q, P_inf, precision, information):
    """Readable reference of the batched Kalman filter / RTS smoother.

    Parameters
    ----------
    A, Q : arrays, shape (n, d, d)
        Transition and process-noise covariance *into* site ``i`` from site
        ``i - 1`` (entry 0 is ignored: the first site starts from the
        stationary prior).
    P_inf : array, shape (d, d)
        Stationary covariance of one component.
    precision : array, shape (n, R, R)
        Pseudo-observation precisions ``Lambda_i``.
    information : array, shape (n, R)
        Pseudo-observation information vectors ``eta_i``.

    Returns
    -------
    pred_mean, pred_cov, filt_mean, filt_cov, smooth_mean, smooth_cov
        Means of shape (n, R*d) and covariances of shape (n, R*d, R*d).
    """
    xp = get_namespace(A, Q, P_inf, precision, information)
    n, d = A.shape[0], A.shape[1]
    R = precision.shape[1]
    D = R * d
    dtype = A.dtype
    obs = [r * d for r in range(R)]
    eye_R = xp.eye(R, dtype=dtype)
    eye_D = xp.eye(D, dtype=dtype)
    P0 = xp.zeros((D, D), dtype=dtype)
    for r in range(R):
        P0[r * d:(r + 1) * d, r * d:(r + 1) * d] = P_inf
    pm, pP, fm, fP = [], [], [], []
    m = xp.zeros((D,), dtype=dtype)
    P = P0
    for i in range(n):
        if i > 0:
            Ai = A[i, ...]
            m = xp.reshape(xp.matmul(Ai, xp.reshape(fm[-1], (R, d, 1))), (D,))
            AP = _block_diag_apply_left(xp, Ai, fP[-1], R, d)
            P = xp.matrix_transpose(_block_diag_apply_left(xp, Ai, xp.matrix_transpose(AP), R, d))
            for r in range(R):
                P[r * d:(r + 1) * d, r * d:(r + 1) * d] = P[r * d:(r + 1) * d, r * d:(r + 1) * d] + Q[i, ...]
            P = 0.5 * (P + xp.matrix_transpose(P))
        pm.append(m)
        pP.append(P)
        Lam = precision[i, ...]
        PHt = xp.take(P, xp.asarray(obs), axis=1)                    # (D, R)
        S = xp.take(PHt, xp.asarray(obs), axis=0)                    # (R, R)
        M = eye_R + Lam @ S
        Hm = xp.take(m, xp.asarray(obs), axis=0)
        v = xp.linalg.solve(M, xp.reshape(information[i, ...] - Lam @ Hm, (R, 1)))
        m = m + xp.reshape(PHt @ v, (D,))
        G = xp.linalg.solve(M, Lam)
        G = 0.5 * (G + xp.matrix_transpose(G))
        J = xp.linalg.solve(M, G)
        J = 0.5 * (J + xp.matrix_transpose(J))
        K = PHt @ G                                                  # (D, R)
        IKH = eye_D - K @ xp.take(eye_D, xp.asarray(obs), axis=0)
        P = IKH @ P @ xp.matrix_transpose(IKH) + PHt @ J @ xp.matrix_transpose(PHt)
        P = 0.5 * (P + xp.matrix_transpose(P))
        fm.append(m)
        fP.append(P)
    sm = [None] * n
    sP = [None] * n
    sm[-1], sP[-1] = fm[-1], fP[-1]
    for i in range(n - 2, -1, -1):
        Ai = A[i + 1, ...]
        AP = _block_diag_apply_left(xp, Ai, fP[i], R, d)                # A P_f
        # gain G = P_f A' P_pred^{-1} = (P_pred^{-1} A P_f)'
        Gt = xp.linalg.solve(pP[i + 1], AP)
        Gn = xp.matrix_transpose(Gt)
        sm_i = fm[i] + Gn @ (sm[i + 1] - pm[i + 1])
        GA = xp.matrix_transpose(_block_diag_apply_left(xp, xp.matrix_transpose(Ai), Gt, R, d))  # G A = (A' G')'
        IGA = eye_D - GA
        Qb = xp.zeros((D, D), dtype=dtype)
        for r in range(R):
            Qb[r * d:(r + 1) * d, r * d:(r + 1) * d] = Q[i + 1, ...]
        Pi = (IGA @ fP[i] @ xp.matrix_transpose(IGA) + Gn @ (Qb + sP[i + 1]) @ Gt)
        sm[i] = sm_i
        sP[i] = 0.5 * (Pi + xp.matrix_transpose(Pi))
    return (xp.stack(pm), xp.stack(pP), xp.stack(fm), xp.stack(fP), xp.stack(sm), xp.stack(sP))


# ---------------------------------------------------------------- Numba kernel


@numba.njit(cache=True)
def _bd_left(A, X, R, d):
    # (I_R kron A) @ X
    out = np.zeros_like(X)
    m = X.shape[1]
    for r in range(R):
        o = r * d
        for a in range(d):
            for b in range(d):
                Aab = A[a, b]
                if Aab != 0.0:
                    for c in range(m):
                        out[o + a, c] += Aab * X[o + b, c]
    return out

@numba.njit(cache=True)
def _sym(P):
    return 0.5 * (P + P.T.copy())


@numba.njit(cache=True)
def _mm(A, B):
    # small dense product with plain loops (compiles faster than BLAS bindings
    # and is as fast at these sizes)
    n, k = A.shape
    m = B.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for p in range(k):
            a = A[i, p]
            for j in range(m):
                out[i, j] += a * B[p, j]
    return out


@numba.njit(cache=True)
def _solve(A, B):
    # Gaussian elimination with partial pivoting: A X = B, A (n, n), B (n, m)
    n = A.shape[0]
    m = B.shape[1]
    M = A.copy()
    X = B.copy()
    for c in range(n):
        piv = c
        best = abs(M[c, c])
        for r in range(c + 1, n):
            if abs(M[r, c]) > best:
                best = abs(M[r, c])
                piv = r
        if piv != c:
            for j in range(n):
                M[c, j], M[piv, j] = M[piv, j], M[c, j]
            for j in range(m):
                X[c, j], X[piv, j] = X[piv, j], X[c, j]
        inv = 1.0 / M[c, c]
        for r in range(c + 1, n):
            f = M[r, c] * inv
            if f != 0.0:
                for j in range(c, n):
                    M[r, j] -= f * M[c, j]
                for j in range(m):
                    X[r, j] -= f * X[c, j]
    for c in range(n - 1, -1, -1):
        for j in range(m):
            acc = X[c, j]
            for k in range(c + 1, n):
                acc -= M[c, k] * X[k, j]
            X[c, j] = acc / M[c, c]
    return X


@numba.njit(cache=True)
def _kalman_smoother_numba(A, Q, P_inf, precision, information):
    n, d = A.shape[0], A.shape[1]
    R = precision.shape[1]
    D = R * d
    pm = np.zeros((n, D))
    pP = np.zeros((n, D, D))
    fm = np.zeros((n, D))
    fP = np.zeros((n, D, D))
    sm = np.zeros((n, D))
    sP = np.zeros((n, D, D))
    eye_R = np.eye(R)
    eye_D = np.eye(D)
    m = np.zeros((D, 1))
    P = np.zeros((D, D))
    for r in range(R):
        P[r * d:(r + 1) * d, r * d:(r + 1) * d] = P_inf
    for i in range(n):
        if i > 0:
            Ai = np.ascontiguousarray(A[i])
            m = _bd_left(Ai, np.ascontiguousarray(fm[i - 1]).reshape(D, 1), R, d)
            AP = _bd_left(Ai, np.ascontiguousarray(fP[i - 1]), R, d)
            P = _bd_left(Ai, np.ascontiguousarray(AP.T), R, d).T.copy()
            for r in range(R):
                P[r * d:(r + 1) * d, r * d:(r + 1) * d] += Q[i]
            P = _sym(P)
        pm[i] = m[:, 0]
        pP[i] = P
        Lam = np.ascontiguousarray(precision[i])
        PHt = np.empty((D, R))
        for r in range(R):
            PHt[:, r] = P[:, r * d]
        S = np.empty((R, R))
        Hm = np.empty((R, 1))
        for r in range(R):
            S[r, :] = PHt[r * d, :]
            Hm[r, 0] = m[r * d, 0]
        M = eye_R + _mm(Lam, S)
        rhs = np.ascontiguousarray(information[i]).reshape(R, 1) - _mm(Lam, Hm)
        v = _solve(M, rhs)
        m = m + _mm(PHt, v)
        G = _sym(_solve(M, Lam))
        J = _sym(_solve(M, G))
        K = _mm(PHt, G)
        IKH = eye_D.copy()
        for r in range(R):
            IKH[:, r * d] -= K[:, r]
        P = _mm(_mm(IKH, P), IKH.T.copy()) + _mm(_mm(PHt, J), PHt.T.copy())
        P = _sym(P)
        fm[i] = m[:, 0]
        fP[i] = P
    sm[n - 1] = fm[n - 1]
    sP[n - 1] = fP[n - 1]
    for i in range(n - 2, -1, -1):
        Ai = np.ascontiguousarray(A[i + 1])
        Pf = np.ascontiguousarray(fP[i])
        AP = _bd_left(Ai, Pf, R, d)
        Gt = _solve(np.ascontiguousarray(pP[i + 1]), AP)
        Gn = Gt.T.copy()
        diff = (sm[i + 1] - pm[i + 1]).reshape(D, 1)
        sm[i] = fm[i] + _mm(Gn, diff)[:, 0]
        GA = _bd_left(np.ascontiguousarray(Ai.T), Gt, R, d).T.copy()
        IGA = eye_D - GA
        Qb = np.ascontiguousarray(sP[i + 1]).copy()
        for r in range(R):
            Qb[r * d:(r + 1) * d, r * d:(r + 1) * d] += Q[i + 1]
        Pi = _mm(_mm(IGA, Pf), IGA.T.copy()) + _mm(_mm(Gn, Qb), Gt)
        sP[i] = _sym(Pi)
    return pm, pP, fm, fP, sm, sP


def kalman_smoother_batched(A, Q, P_inf, precision, information):
    """Dispatch: the Numba kernel for numpy float64 input, else the reference.

    Same signature and return values as :func:`kalman_smoother_reference`.
    On cupy (and other array-API libraries) the reference runs as array
    code in that library, on the input's device.
    """
    xp = get_namespace(A, Q, P_inf, precision, information)
    if is_numpy(xp) and numba_enabled():
        args = [np.ascontiguousarray(a, dtype=np.float64) for a in (A, Q, P_inf, precision, information)]
        out = _kalman_smoother_numba(*args)
        if A.dtype != np.float64:
            out = tuple(o.astype(A.dtype) for o in out)
        return out
    return kalman_smoother_reference(A, Q, P_inf, precision, information)
