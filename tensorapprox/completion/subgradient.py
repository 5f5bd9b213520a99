"""Robust low-rank recovery by the sub-gradient method with small initialization.

Implements the sub-gradient method (SubGM) of Ma & Fattahi for

    min_U  f(U) = (1/m) ||y - A(U U^T)||_1,        U in R^{n x r'},

started from a small random point ``U_0 = alpha B`` and run with the
geometrically decaying step ``eta_t = eta_0 rho^t``, together with the
factored gradient method on the squared loss as the baseline that outliers
break, and an experimental asymmetric variant ``X = U V^T``. For Gaussian
sensing the step is by default right-preconditioned by
``(U^T U + lambda_t I)^{-1}`` with a damping that decays with the step, which
lets the over-parameterized components die out instead of freezing at the
scale they reached; for entry sampling the default is the plain method of the
paper (``precondition=False``), where the preconditioned steps let the sign
noise inflate those components instead (see ``precondition``).

References: J. Ma and S. Fattahi, "Global convergence of sub-gradient method
for robust matrix recovery: small initialization, noisy measurements, and
over-parameterization", JMLR 24 (2023); arXiv:2202.08788. The preconditioner
is that of scaled sub-gradient methods: T. Tong, C. Ma and Y. Chi, "Low-rank
matrix recovery with scaled subgradient methods" (2021), and, for
over-parameterized ranks, P. Giampouras, H. Cai and R. Vidal, "Guarantees of
a preconditioned subgradient algorithm for overparameterized asymmetric
low-rank matrix recovery" (2024).
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .._array import check_random_state
from .._validation import check_bool, check_choice, check_int, check_positive_float
from ..tensor import _max_abs, _pow2_exponent, _scaled_frobenius
from .altmin import _value_scale
from .lowrank import LowRankMatrix
from .operators import EntrySampling, MeasurementOperator

__all__ = ["SubgradientResult", "subgradient_recover"]

_LOSSES = ("l1", "l2")
# Growth rate of the first step along the top eigen-direction of the initial
# (sub)gradient: 2 * step0 * lambda_hat = _STEP_FRACTION (see Notes).
_STEP_FRACTION = {"l1": 0.5, "l2": 0.5}
# The default decay gives the l1 schedule a total "growth budget"
# sum_t 2 eta_t lambda_hat = _STEP_FRACTION / (1 - rho) of _BUDGET_FACTOR
# times the log-distance from the initial scale alpha to the data scale.
_BUDGET_FACTOR = 2.5
# Preconditioner damping lambda_t = _DAMPING * t_hat * eta_t / eta_0 (t_hat: the
# robust data scale), floored at _DAMPING_FLOOR_EPS * eps(dtype) * t_hat.
_DAMPING = 1.0
_DAMPING_FLOOR_EPS = 1e4


@dataclass(frozen=True, eq=False)
class SubgradientResult:
    """Result of :func:`subgradient_recover`.

    The constructor stores its arguments as given; every parameter is
    available as a read-only attribute of the same name.

    Parameters
    ----------
    factor : ndarray, shape (n1, r')
        The factor ``U``; the estimate is ``U @ U.T`` (symmetric) or
        ``U @ factor_right.T``. Of the operator's dtype, as are
        ``factor_right`` and ``matrix``.
    factor_right : ndarray, shape (n2, r')
        ``V``; the same array as ``factor`` in the symmetric case.
    matrix : LowRankMatrix
        The estimate in SVD form (orthonormal factors, ``s`` non-increasing).
    n_iter : int
        Steps taken.
    converged : bool
        Whether the stopping rule (relative change of the estimate below
        ``tol``, or ``callback`` asking to stop) was met before ``max_iter``;
        ``False`` after a divergence, and for a stop by ``tol`` when
        ``alpha`` was not small against the data (the ``UserWarning`` of
        :func:`subgradient_recover`).
    history : ndarray, shape (n_iter + 1,)
        Loss of every iterate, ``history[0]`` at the initial point:
        ``(1/m) ||A(X_t) - y||_1`` for ``'l1'``, ``(1/2m) ||A(X_t) - y||_2^2``
        for ``'l2'``, in the units of ``y`` (its square for ``'l2'``).
    error_history : ndarray, shape (n_iter + 1,)
        ``||X_t - X_true||_F / ||X_true||_F`` of every iterate when ``X_true``
        was given, empty otherwise.
    step_history : ndarray, shape (n_iter,)
        Step size ``eta_t`` of every step.
    step0 : float
        Initial step used (given or derived from the data).
    decay : float
        Decay factor ``rho`` used.
    precondition : bool
        Whether the steps were preconditioned.
    loss : str
        ``'l1'`` or ``'l2'``.
    symmetric : bool
        Whether the symmetric (PSD) model ``U U^T`` was fitted.

    Notes
    -----
    A frozen dataclass made by :func:`subgradient_recover`; its fields are
    the parameters above, and it raises nothing itself (assigning to a
    field raises :class:`dataclasses.FrozenInstanceError`).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion import GaussianSensing, subgradient_recover
    >>> U = np.random.default_rng(0).standard_normal((10, 2)); X = U @ U.T
    >>> op = GaussianSensing(10, 200, random_state=1)
    >>> res = subgradient_recover(op, op.apply(X), 2, random_state=2, X_true=X)
    >>> res.loss, res.symmetric, res.matrix.shape
    ('l1', True, (10, 10))
    >>> len(res.history) == res.n_iter + 1, bool(res.error_history[-1] < 1e-3)
    (True, True)
    """

    factor: np.ndarray
    factor_right: np.ndarray
    matrix: LowRankMatrix
    n_iter: int
    converged: bool
    history: np.ndarray
    error_history: np.ndarray
    step_history: np.ndarray
    step0: float
    decay: float
    precondition: bool
    loss: str
    symmetric: bool


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _check_y(y, m: int) -> np.ndarray:
    if isinstance(y, (list, tuple)):
        y = np.asarray(y)
    if not isinstance(y, np.ndarray):
        raise TypeError(f"y must be a numpy array, got {type(y).__name__}; convert it with numpy.asarray")
    if y.dtype.kind == "c":
        raise TypeError("y must be real, got a complex array; pass the real part")
    if y.dtype.kind not in "fiub":
        raise TypeError(f"y must hold real numbers, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if y.shape[0] != m:
        raise ValueError(f"y has length {y.shape[0]} but the operator has m = {m} measurements; "
                         "pass one value per measurement")
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or Inf values; drop those measurements (and the matching "
                         "rows of the operator) first")
    return y


def _check_X_true(X_true, shape):
    if X_true is None:
        return None
    if isinstance(X_true, LowRankMatrix):
        if X_true.shape != shape:
            raise ValueError(f"X_true has shape {X_true.shape} but the operator acts on {shape} matrices; "
                             "pass the ground truth of this operator's size")
        if not X_true.norm() > 0.0:  # the dense check below, for the factored form
            raise ValueError("X_true is zero; the relative error is undefined")
        return X_true.to_numpy()
    if not isinstance(X_true, np.ndarray):
        raise TypeError(f"X_true must be a numpy array or a LowRankMatrix, got {type(X_true).__name__}")
    if X_true.ndim != 2 or tuple(X_true.shape) != shape:
        raise ValueError(f"X_true has shape {X_true.shape} but the operator acts on {shape} matrices; "
                         "pass the ground truth of this operator's size")
    X_true = np.asarray(X_true, dtype=np.float64)
    if not np.all(np.isfinite(X_true)):
        raise ValueError("X_true contains NaN or Inf values")
    if not np.any(X_true):
        raise ValueError("X_true is zero; the relative error is undefined")
    return X_true


class _ErrorMonitor:
    """Relative error ``||U V^T - X_true||_F / ||X_true||_F`` of an iterate."""

    # A dense ground truth is compared in row blocks of about this many
    # entries: O(n1 n2 k) per iterate with a bounded temporary. The difference
    # is formed entry by entry, so the error is accurate to rounding (the Gram
    # identity ||UV^T||^2 - 2<UV^T, X> + ||X||^2 that replaced it above 40000
    # entries cancelled to about 1e-8 relative and read 0.0 at 7e-14). Blocks
    # of 2 MiB: smaller ones cost Python overhead (65536 entries made the
    # monitor 3x slower than one product at n = 1000).
    _BLOCK_ENTRIES = 1 << 18

    # Everything is measured in units of a power of two near ||X_true||
    # (exact): the squares of a ground truth near 1e-170 underflowed (a
    # division by zero) and near 1e170 overflowed (a NaN history), where the
    # recovery itself is scale-free. ``unit_exp = h``: the iterates come in
    # units of ``2^h`` per factor (those of the solver, whose values are in
    # units of ``4^h``), the ground truth in the caller's.
    def __init__(self, X_true, unit_exp: int = 0):
        self.dense = isinstance(X_true, np.ndarray)
        if self.dense:
            e = _pow2_exponent(_max_abs(np, X_true))
            self.X = np.ldexp(X_true, -e)
            self.norm = float(np.linalg.norm(self.X))
            self.rows = max(1, self._BLOCK_ENTRIES // max(1, X_true.shape[1]))
        else:  # LowRankMatrix: O((n1 + n2) k^2)
            e = _pow2_exponent(X_true.norm())
            self.L = np.ldexp(X_true.U * X_true.s, -e)
            self.R = X_true.V
            self.norm = math.ldexp(X_true.norm(), -e)
        # the iterate U V^T in the same units: U and V share the shift
        self.eu = -e // 2
        self.ev = -e - self.eu
        self.eu += unit_exp
        self.ev += unit_exp

    def __call__(self, U, V) -> float:
        U, V = np.ldexp(U, self.eu), np.ldexp(V, self.ev)
        if self.dense:
            # sum over row blocks B of ||U[B] V^T - X[B]||_F^2, the blocks
            # combined by hypot. In units of ||X_true|| the squares of the
            # difference leave float64's range only for relative errors beyond
            # about 1e154 or entries below 1e-154: the plain norm, redone
            # scaled for such a block
            parts = [_block_norm(U[i:i + self.rows] @ V.T - self.X[i:i + self.rows])
                     for i in range(0, self.X.shape[0], self.rows)]
            return math.hypot(*parts) / self.norm
        # U V^T - L R^T = [U, L] [V, -R]^T = Qa (Ra Rb^T) Qb^T: the norm of a
        # small (2k x 2k) matrix, formed without squaring the difference away
        _, Ra = np.linalg.qr(np.concatenate([U, self.L], axis=1))
        _, Rb = np.linalg.qr(np.concatenate([V, -self.R], axis=1))
        return _scaled_frobenius(np, Ra @ Rb.T, 1.0, 0) / self.norm


def _block_norm(D) -> float:
    """``||D||_F``: the plain norm, redone scaled where its squares left float64's range."""
    with np.errstate(over="ignore", under="ignore"):
        v = float(np.linalg.norm(D))
    if 0.0 < v < math.inf:
        return v
    return _scaled_frobenius(np, D, 1.0, 0)  # overflowed (an error beyond 1e154) or zero (maybe underflowed)


def _product_norm2(L, R) -> float:
    """``||L R^T||_F^2`` from the Gram matrices."""
    return float(np.sum((L.T @ L) * (R.T @ R)))


def _relative_change(U_new, V_new, U, V, dU, dV) -> float:
    """``||U' V'^T - U V^T||_F / ||U' V'^T||_F`` with ``U = U' + dU``, ``V = V' + dV``."""
    # the ratio does not change when the left factors are scaled by one power
    # of two and the right ones by another (exact): in units near 1 the
    # squares neither underflow (iterates near 1e-170 never stopped) nor
    # overflow (near 1e170 the rule read NaN)
    a = -_pow2_exponent(_max_abs(np, U_new))
    b = -_pow2_exponent(_max_abs(np, V_new))
    U_new, U, dU = (np.ldexp(M, a) for M in (U_new, U, dU))
    V_new, V, dV = (np.ldexp(M, b) for M in (V_new, V, dV))
    n1, n2, k = U.shape[0], V.shape[0], U.shape[1]
    if 4 * k * (n1 + n2) >= n1 * n2:  # wide factors: the dense difference is cheaper
        X_new = U_new @ V_new.T
        den = float(np.linalg.norm(X_new))
        if den <= 0.0:
            return math.inf
        return float(np.linalg.norm(X_new - U @ V.T)) / den
    # U'V'^T - UV^T = -U' dV^T - dU V^T = [U', dU] @ [-dV, -V]^T
    L = np.concatenate([U_new, dU], axis=1)
    R = np.concatenate([dV, V], axis=1)
    num = _product_norm2(L, R)
    den = _product_norm2(U_new, V_new)
    if den <= 0.0:
        return math.inf
    return math.sqrt(max(num, 0.0) / den)


def _balance(U, V):
    """``(U, V)`` rescaled so that ``U^T U = V^T V``, with ``U V^T`` unchanged."""
    Qu, Ru = np.linalg.qr(U)
    Qv, Rv = np.linalg.qr(V)
    W, s, Zt = np.linalg.svd(Ru @ Rv.T)
    root = np.sqrt(s)
    return (Qu @ W) * root, (Qv @ Zt.T) * root


def _top_singular(op: MeasurementOperator, z, symmetric: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """Largest singular value of ``S = -A*(z)`` (its symmetric part if ``symmetric``) and its vectors ``u, v``."""
    from scipy.sparse.linalg import eigsh, svds

    n1, n2 = op.shape
    if isinstance(op, EntrySampling):
        import scipy.sparse as sp

        S = sp.coo_matrix((-z, (op.rows, op.cols)), shape=op.shape).tocsr()
    else:
        S = -op._adjoint(z)
    if symmetric:
        S = 0.5 * (S + S.T)
    if min(n1, n2) == 1 and not symmetric:
        # a single row or column is its own singular vector (ARPACK's svds
        # refuses min(shape) == 1 above the dense threshold): sigma = ||S||
        w = np.asarray(S.toarray() if hasattr(S, "toarray") else S, dtype=np.float64).ravel()
        sigma = float(np.linalg.norm(w))
        one = np.ones(1)
        if not sigma > 0.0:
            return 0.0, np.eye(n1)[:, 0], np.eye(n2)[:, 0]
        return (sigma, one, w / sigma) if n1 == 1 else (sigma, w / sigma, one)
    # dense up to 90000 entries (720 kB): the bound is on n1 n2, so the
    # reduced SVD below costs at most O(n1 n2 min(n1, n2)) with no n x n
    # factor (full_matrices=True built a 20000 x 20000 V^T, 3 GB and 22 s,
    # for a 4 x 20000 problem, and 60 GB for 1 x 90000)
    small = n1 * n2 <= 90_000
    if small:
        S = S.toarray() if hasattr(S, "toarray") else S
        if symmetric:
            w, Q = np.linalg.eigh(S)
            k = int(np.argmax(np.abs(w)))
            return float(abs(w[k])), Q[:, k], Q[:, k]
        u, s, vt = np.linalg.svd(S, full_matrices=False)
        return float(s[0]), u[:, 0], vt[0]
    v0 = np.ones(min(n1, n2)) if symmetric else None
    if symmetric:
        w, Q = eigsh(S, k=1, which="LM", v0=v0)
        return float(abs(w[0])), Q[:, 0], Q[:, 0]
    u, s, vt = svds(S, k=1, random_state=0)
    return float(s[0]), u[:, 0], vt[0]


def _weighted_median(values, weights) -> float:
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


def _data_scale(op, y, u, v) -> float:
    """Robust scale ``t`` of the ground truth along ``u v^T``: argmin_t sum_i |y_i - t A(u v^T)_i|."""
    a = op._apply_factored(u[:, None], v[:, None])
    keep = np.abs(a) > 1e-12 * max(float(np.max(np.abs(a))), 1e-300)
    if not np.any(keep):
        return 0.0
    return abs(_weighted_median(y[keep] / a[keep], np.abs(a[keep])))


def _default_decay(alpha: float, scale: float, c: float) -> float:
    """Decay whose total growth budget covers the climb from ``alpha`` to ``sqrt(scale)``."""
    climb = math.log(max(math.sqrt(max(scale, 0.0)) / alpha, math.e))
    budget = _BUDGET_FACTOR * climb
    return float(min(max(1.0 - c / budget, 0.5), 0.9999))


# --------------------------------------------------------------------------
# the solver
# --------------------------------------------------------------------------
def subgradient_recover(
    op: MeasurementOperator,
    y,
    rank: int,
    alpha: float = 1e-3,
    step0: float | None = None,
    decay: float | None = None,
    max_iter: int = 5000,
    loss: str = "l1",
    symmetric: bool = True,
    tol: float = 1e-6,
    callback: Callable[[int, float], bool | None] | None = None,
    random_state=None,
    *,
    precondition: bool | None = None,
    X_true=None,
    verbose: bool = False,
) -> SubgradientResult:
    """Recover a low-rank matrix from corrupted linear measurements by SubGM.

    Minimizes ``(1/m) ||y - A(U U^T)||_1`` (``loss='l1'``) or
    ``(1/2m) ||y - A(U U^T)||_2^2`` (``loss='l2'``, the factored gradient
    baseline) over ``U`` of shape ``(n, rank)`` from the small random point
    ``U_0 = alpha B`` (``||B||_2 = 1``) with steps
    ``U_{t+1} = U_t - eta_t D_t``, ``eta_t = step0 * decay**t``, where
    ``D_t`` is a (sub)gradient. ``rank`` may over-estimate the true rank.

    Parameters
    ----------
    op : MeasurementOperator
        The measurement operator, e.g. :class:`GaussianSensing` or
        :class:`EntrySampling`; square for ``symmetric=True``.
    y : ndarray, shape (m,)
        Measurements ``A(X*) + s``; may hold gross outliers, not NaN/Inf.
    rank : int
        Number of columns ``r'`` of the factor, ``1 <= rank <= n``; any
        ``r' >= rank(X*)`` works (over-parameterization).
    alpha : float, default 1e-3
        Initial scale: ``||U_0||_2 = alpha``. Absolute, in units of the
        square root of the values of ``y`` (``U_0 U_0^T`` has the units of
        ``X*``): the default suits ``X*`` of norm about 1; for data of size
        ``s`` pass about ``1e-3 * sqrt(s)``. It must be small against the
        square root of the data scale ``t`` (Notes): ``alpha**2 >= t``
        warns, and a run stopped by the stopping rule is then not reported
        as converged (Warns). Smaller is more accurate when ``rank``
        over-estimates the true rank, and costs ``O(log(1/alpha))`` more
        iterations.
    step0 : float, optional
        Initial step ``eta_0 > 0``. Default derived from the data (Notes).
    decay : float in (0, 1], optional
        Geometric decay ``rho`` of the step. Default derived from ``alpha``
        and the data scale for ``'l1'`` (Notes), ``1`` (constant step) for
        ``'l2'``.
    max_iter : int, default 5000
        Maximum number of steps.
    loss : {'l1', 'l2'}, default 'l1'
        ``'l1'``: the robust sub-gradient method. ``'l2'``: the factored
        gradient method on the squared loss (fails with outliers; baseline).
    symmetric : bool, default True
        Fit ``X = U U^T`` (PSD, the setting of the theory). ``False`` fits
        ``X = U V^T`` with both factors started at scale ``alpha`` and
        re-balanced (``U^T U = V^T V``) after every step. **Experimental**:
        the convergence theory covers the symmetric case only.
    tol : float, default 1e-6
        Stop when ``||X_{t+1} - X_t||_F <= tol ||X_{t+1}||_F``; ``0`` runs
        ``max_iter`` steps (also once the steps no longer change the iterate).
    callback : callable, optional
        ``callback(n_iter, loss)`` after every step; return ``True`` to stop
        (counted as converged).
    random_state : None, int or numpy.random.Generator
        Seeds ``B``.
    precondition : bool, optional
        Right-precondition every step,
        ``U_{t+1} = U_t - eta_t s D_t (U_t^T U_t + lambda_t I)^{-1}`` with
        ``s`` the robust data scale (and ``U``'s step by
        ``(V^T V + lambda_t I)^{-1}``, ``V``'s by ``(U^T U + lambda_t I)^{-1}``
        in the asymmetric case), with ``lambda_t`` decaying like ``eta_t``
        (Notes).
        ``False`` runs the plain method of Ma & Fattahi. The default
        (``None``) is ``False`` for :class:`EntrySampling` and ``True`` for
        every other operator (Notes: preconditioning needs the sharpness of
        the l1 loss that Gaussian sensing has and entry sampling lacks).
    X_true : ndarray or LowRankMatrix, optional
        Ground truth of shape ``op.shape``; its relative error is recorded in
        ``error_history`` at every iterate.
    verbose : bool, default False
        Print progress lines to stderr.

    Returns
    -------
    SubgradientResult
        ``factor``, ``matrix`` (a :class:`LowRankMatrix`), ``n_iter``,
        ``converged``, ``history`` and ``error_history``, the ``step0`` and
        ``decay`` used and whether the steps were preconditioned (the resolved
        value of ``precondition``).

    Raises
    ------
    TypeError
        If ``op`` is not a measurement operator or an argument has the wrong
        type.
    ValueError
        If ``y`` does not have ``op.m`` entries or holds NaN/Inf, ``rank`` is
        outside ``[1, n]``, ``alpha <= 0``, ``step0 <= 0``, ``decay`` is
        outside ``(0, 1]``, ``X_true`` does not match ``op.shape``, or the
        operator is not square with ``symmetric=True``.

    Warns
    -----
    RuntimeWarning
        When the iteration diverges (the loss becomes non-finite): it stops,
        returns the last finite iterate with ``converged=False`` and names
        the step size to reduce. Also when it ends, unconverged, with a
        larger loss than at ``U_0`` (a step too large for the preconditioned
        method, which stays finite).
    UserWarning
        When ``alpha**2 >= t``, the data scale estimated for the default
        step, decay or preconditioner (not estimated, and so not checked,
        when ``step0`` is given, ``precondition=False`` and, for ``'l1'``,
        ``decay`` is given): the start ``U_0 U_0^T`` is then at least as
        large as the signal, not small.
        The warning names ``alpha``, ``t`` and the ``alpha`` to pass. A
        stop by the stopping rule (``tol``) then counts as
        ``converged=False``: from such a start the relative change of the
        estimate falls below ``tol`` while the estimate is still far from
        the data (after one step, preconditioned), so it tells nothing
        about the fit. A stop asked by ``callback`` still counts.

    Notes
    -----
    Algorithm 1 of Ma & Fattahi (arXiv:2202.08788): the objective is their
    eq. (2), ``f(U) = (1/m) sum_i |<A_i, U U^T> - y_i|``, whose
    sub-differential contains

        D = (1/m) sum_i sign(<A_i, U U^T> - y_i) (A_i + A_i^T) U,

    the update is ``U_{t+1} = U_t - eta_t D_t`` with ``U_0 = alpha B`` and
    ``eta_t = eta_0 rho^t``. Under Sign-RIP (their Definition 3) the
    sub-gradient behaves like ``phi (E / ||E||_F) U`` with
    ``E = U U^T - X*`` (their eq. (9)): a *normalized* direction, which is why
    the step must decay geometrically for the error to keep decreasing and
    why the error tracks ``eta_t``. Small initialization keeps the
    components of ``U`` outside the column space of ``X*`` at the scale of
    ``alpha`` while the signal grows (their Theorems 1-3), so the result is
    insensitive to ``rank >= rank(X*)``; the residual error from the
    over-parameterized part shrinks with ``alpha``.

    Default step (both losses): at ``U_0`` the update is
    ``U <- U + 2 eta S U`` with ``S = -sym(A*(z_0))``, ``z_0 = sign(r_0)/m``
    (``'l1'``) or ``r_0/m`` (``'l2'``), ``r_0 = A(U_0 U_0^T) - y``. For
    Gaussian sensing ``S`` is a spectral estimate of ``phi X*/||X*||_F``
    (``'l1'``, bounded signs: insensitive to the size of outliers) or of
    ``X*`` (``'l2'``), so with ``lambda = ||S||_2`` the choice
    ``step0 = 0.5 / (2 lambda)`` grows the leading direction by a factor 1.5
    per step and keeps the factored iteration stable near the solution
    (``2 step0 sigma_1 = 0.5``); it is invariant to rescaling ``y`` and the
    operator.

    Default decay (``'l1'``): the climb from ``alpha`` to the data scale
    needs ``sum_t 2 eta_t lambda_r ~ log(sqrt(sigma_r) / alpha)``, and the
    schedule offers ``sum_t 2 eta_t lambda = 0.5 / (1 - rho)``. Too little
    budget freezes the iterate before the signal is fitted; much more than
    needed keeps the step large after the fit, and the sign noise then
    inflates the over-parameterized components (a higher error floor). The
    default offers 2.5 times the climb:
    ``rho = 1 - 0.5 / (2.5 log(sqrt(t) / alpha))`` where ``t`` is a robust
    estimate of the leading eigenvalue (singular value) of ``X*``: the
    weighted median that minimizes ``sum_i |y_i - t A(u v^T)_i|`` along the
    top singular pair ``u, v`` of ``S`` (``v = u`` in the symmetric case).
    For ``alpha = 1e-3`` and ``||X*||_F = 1`` this gives ``rho ~ 0.97``; the error then falls by about a decade every
    ``log(10) / (1 - rho)`` steps.

    The squared loss uses the gradient ``(1/m) A*(r) (A_i + A_i^T) U``: one
    gross outlier moves its minimizer arbitrarily far, which is the point of
    the baseline.

    Preconditioning (default except for entry sampling): with
    ``r' > rank(X*)`` the plain method leaves the columns of ``U`` outside
    the column space of ``X*`` at the scale the sign noise gave them while
    the signal grew; once the step has decayed they stop moving, which puts
    a floor under the error (of order ``1e-4`` to ``1e-3`` at
    ``alpha = 1e-3`` with 10-30% outliers, Gaussian sensing). The
    preconditioned step scales the plain step ``eta_t D_t`` along a
    direction of ``U`` with singular value ``sigma`` by
    ``t / (sigma^2 + lambda_t)``, with ``t`` the robust data scale above:
    directions of the signal (``sigma^2 ~ t``) keep the plain method's
    relative step, while the small over-parameterized directions take the
    step ``eta_t t / lambda_t = eta_0 / c`` that does not decay, so they keep
    shrinking (``X*`` is a sharp minimizer of the l1 loss) and the error
    falls linearly down to rounding. The damping is
    ``lambda_t = c t eta_t / eta_0`` with ``c = 1``, floored at
    ``1e4 eps t``; while ``U`` is small (``U^T U << lambda_0``) the first
    steps grow it as fast as the plain method's. The preconditioner adds an
    ``r' x r'`` Gram matrix and solve per step, ``O(n r'^2 + r'^3)``. The
    same relative step also lets the small true components of an
    ill-conditioned ``X*`` climb within the step budget, where the plain
    method stalls (``1e-2`` error at condition number 100).

    The non-decaying small-direction step is safe only where the sign
    sub-gradient along those directions is dominated by the sharpness of the
    loss (Sign-RIP, Gaussian sensing). Entry sampling has no such property:
    near the fit the signs of the clean residuals are close to random, and
    the step ``eta_0 / c`` multiplies the over-parameterized columns by a
    random matrix every iteration, so they grow (entry sampling of a 60 x 60
    rank-2 PSD matrix, 50% of the entries, 10% outliers, ``rank=4``: relative
    error ``7e-3`` to ``3e-2`` preconditioned against ``5e-6`` to ``1.4e-5``
    plain; ``0.2`` against ``3e-4`` for the asymmetric variant). Dampings
    that make that step decay (``lambda_t ~ t (eta_t / eta_0)^p``,
    ``p < 1``) or that tie ``lambda_t`` to the residual level (the median of
    ``|r_t|``) lost the gains on Gaussian sensing without matching the plain
    method on entry sampling, so the default for :class:`EntrySampling` is
    the plain method; pass ``precondition=True`` there for an ill-conditioned
    ``X*`` (the plain method stalls near ``1e-1`` at condition number 100).

    Scale: measurements whose largest magnitude lies outside
    ``[2^-30, 2^30]`` are solved for in units of a power of four near it
    (as :func:`~tensorapprox.completion.altmin_complete` does), with
    ``alpha`` (and, for ``'l2'``, ``step0``) converted to those units and the
    factors converted back by the square root of the unit, exactly: the run
    equals that of the problem scaled to unit size, where the sums of
    ``|r_i|`` overflowed for data near ``1e306``. ``history`` and
    ``step_history`` are reported in the units of ``y``.

    One step costs one ``A(U U^T)`` and one ``A*(z) U`` product: O(m n^2) for
    dense Gaussian sensing (O(m n(n+1)/2) with the packed symmetric
    storage), O(|Omega| r') for entry sampling.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.operators import GaussianSensing, corrupt
    >>> from tensorapprox.completion.subgradient import subgradient_recover
    >>> rng = np.random.default_rng(0)
    >>> U = rng.standard_normal((20, 2)); X = U @ U.T; X /= np.linalg.norm(X)
    >>> op = GaussianSensing(20, 800, random_state=1)
    >>> y = corrupt(op.apply(X), 0.2, scale=100.0, random_state=2)
    >>> res = subgradient_recover(op, y, rank=4, random_state=3, X_true=X)
    >>> bool(res.error_history[-1] < 1e-2)
    True
    """
    if not isinstance(op, MeasurementOperator):
        raise TypeError(f"op must be a measurement operator (GaussianSensing, EntrySampling, ...), "
                        f"got {type(op).__name__}")
    y = _check_y(y, op.m)
    symmetric = check_bool(symmetric, name="symmetric")
    verbose = check_bool(verbose, name="verbose")  # verbose="no" printed every step
    n1, n2 = op.shape
    if symmetric and n1 != n2:
        raise ValueError(f"symmetric=True needs a square operator, got shape {op.shape}; "
                         "pass symmetric=False for rectangular matrices")
    n = min(n1, n2)
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise TypeError(f"rank must be an int, got {type(rank).__name__}")
    rank = int(rank)
    if not 1 <= rank <= n:
        raise ValueError(f"rank must lie in [1, n] with n = {n}, got {rank}")
    alpha = check_positive_float(alpha, name="alpha")
    if step0 is not None:
        step0 = check_positive_float(step0, name="step0")
    if decay is not None:
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
            raise TypeError(f"decay must be a real number in (0, 1], got {type(decay).__name__}")
        decay = float(decay)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must lie in (0, 1], got {decay}")
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    loss = check_choice(loss, name="loss", choices=_LOSSES)
    if precondition is None:
        # the preconditioned step needs the sharpness (Sign-RIP) that entry
        # sampling lacks: there it inflates over-parameterized components
        precondition = not isinstance(op, EntrySampling)
    elif not isinstance(precondition, (bool, np.bool_)):
        raise TypeError(f"precondition must be True, False or None, got {type(precondition).__name__}")
    precondition = bool(precondition)
    tol = check_positive_float(tol, name="tol", allow_zero=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    X_true = _check_X_true(X_true, op.shape)

    # Values far from unit size are solved for in units of a power of four
    # near them (exact, as altmin_complete does): the l1 loss sum|r_i|
    # overflowed for finite data near 1e306 ("the loss at the initial point
    # is not finite"), and the absolute floors (1e-300 in the data-scale
    # estimate) are negligible only near unit size. ``root`` (a power of two)
    # is the unit of the factors; alpha, absolute in the caller's units, is
    # converted, so a problem and its rescaled copy (alpha scaled with the
    # square root) take the same steps, and at unit scale nothing changes.
    vscale = _value_scale(_max_abs(np, y))
    root = math.sqrt(vscale)  # exact: vscale is an even power of two
    unit_exp = math.frexp(root)[1] - 1
    y = y / vscale
    alpha_u = alpha / root  # inf where the caller's alpha is beyond the data by 2^1000: caught below
    # the loss is (1/m)|r|_1 (units of the values) or (1/2m)|r|^2 (their
    # square); an l2 step multiplies a gradient of the values' units
    loss_unit = vscale if loss == "l1" else vscale * vscale
    step_unit = 1.0 if loss == "l1" else 1.0 / vscale
    if step0 is not None:
        step0 = step0 / step_unit

    monitor = _ErrorMonitor(X_true, unit_exp) if X_true is not None else None
    rng = check_random_state(random_state)

    m = op.m
    dtype = op.dtype

    def random_start(rows):
        B = rng.standard_normal((rows, rank))
        return (alpha_u / np.linalg.norm(B, 2) * B).astype(dtype, copy=False)

    U = random_start(n1)
    V = U if symmetric else random_start(n2)
    if not symmetric:
        U, V = _balance(U, V)

    def residual(U, V):
        return op._apply_factored(U, V) - y

    def loss_and_weights(r):
        if loss == "l1":
            z = np.sign(r)
            f = float(z @ r) / m  # sum |r_i| = sum sign(r_i) r_i, without another temporary
            z *= 1.0 / m
            return f, z
        return 0.5 * float(r @ r) / m, r / m

    def in_y_units(f):
        with np.errstate(over="ignore"):
            return float(np.float64(f) * loss_unit)  # an l2 loss beyond float64 reads inf

    with np.errstate(over="ignore", invalid="ignore"):
        r = residual(U, V) if math.isfinite(alpha_u) else None
        f, z = loss_and_weights(r) if r is not None else (math.nan, None)
    if not math.isfinite(f):
        raise ValueError(f"the loss at the initial point (alpha = {alpha:.3g}) is not finite; check y and the "
                         "operator, and that alpha is small against the square root of the data's size")

    c = _STEP_FRACTION[loss]
    need_decay = decay is None and loss == "l1"
    scale = 0.0
    estimated = False
    if step0 is None or need_decay or precondition:
        lam, u, v = _top_singular(op, z, symmetric)
        if lam <= 0.0 or not math.isfinite(lam):
            if step0 is None or need_decay:
                # name what is missing: with step0 given the default decay
                # still needs the estimate, and "pass step0" sent the user
                # after an argument already passed
                missing = " and ".join(a for a, need in (("step0", step0 is None), ("decay", need_decay)) if need)
                raise ValueError("y carries no signal the operator can see (the initial gradient is zero); "
                                 f"pass {missing} explicitly")
        else:
            if step0 is None:
                step0 = c / (2.0 * lam) if symmetric else c / lam
            scale = _data_scale(op, y, u, v)
        estimated = True
        if not scale > 0.0:  # no usable estimate: use ||y||-based scale
            scale = float(np.sqrt(np.mean(y * y)))
        if not scale > 0.0:
            scale = alpha_u * alpha_u
        if need_decay:
            decay = _default_decay(alpha_u, scale, c)
    if decay is None:
        decay = 1.0
    damping_floor = _DAMPING_FLOOR_EPS * float(np.finfo(dtype).eps) * scale

    # ||U_0 U_0^T||_2 = alpha^2 against t, the estimated leading eigenvalue
    # (singular value) of X*: small initialization needs alpha^2 << t (the
    # signal climbs from alpha to sqrt(t) while the surplus components stay
    # near alpha). From alpha^2 >= t on there is no climb: the start is at
    # least the signal's size, the default decay budgets for no growth, and
    # the preconditioned steps (scaled by t / (alpha^2 + lambda)) barely move
    # the iterate, so the relative-change rule fired after one step with an
    # error of 2e13 (X* scaled by 1e-20 with the default alpha), or once the
    # steps had decayed (plain), and read as convergence.
    too_large = estimated and alpha_u * alpha_u >= scale
    if too_large:
        t_user = scale * vscale  # t has the units of the values, whatever the loss
        warnings.warn(
            f"alpha = {alpha:.3g} is not small against the data: alpha**2 >= t = {t_user:.3g}, the estimated "
            "leading eigenvalue (singular value) of X*, so U_0 U_0^T is no smaller than the signal. alpha is "
            "absolute, in units of the square root of y's values: pass alpha well below sqrt(t), e.g. "
            f"alpha = {1e-3 * math.sqrt(t_user):.3g}. A stop by the stopping rule is not reported as converged.",
            UserWarning,
            stacklevel=2,
        )

    def step(D, W):
        """``eta D``, or ``eta t D (W^T W + lambda I)^{-1}`` when preconditioned."""
        if not precondition:
            return eta * D
        damping = max(_DAMPING * scale * eta / step0, damping_floor)
        G = W.T @ W
        G[np.diag_indices_from(G)] += damping
        return (eta * scale) * np.linalg.solve(G, D.T).T

    losses = [f]
    errors = [monitor(U, V)] if monitor is not None else []
    steps: list[float] = []
    converged = False
    stopped_by_tol = False
    diverged = False
    every = max(1, max_iter // 20)
    eta = step0
    n_iter = 0
    # Overflow on the way to a divergence is detected and reported below
    # (one warning naming the step size), not as numpy floating-point noise.
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(max_iter):
            if symmetric:
                dU = step(op._adjoint_sym_matmul(z, U), U)
                U_new = U - dU
                V_new, dV = U_new, dU
            else:
                dU = step(op._adjoint_matmul(z, V, False), V)
                dV = step(op._adjoint_matmul(z, U, True), U)
                U_new, V_new = U - dU, V - dV
            r_new = residual(U_new, V_new) if np.all(np.isfinite(U_new)) and np.all(np.isfinite(V_new)) else None
            f_new = math.nan if r_new is None else loss_and_weights(r_new)[0]
            if not math.isfinite(f_new):
                diverged = True
                warnings.warn(
                    f"subgradient_recover diverged at step {t + 1}: the loss became non-finite with step "
                    f"size eta = {eta * step_unit:.3g} (step0 = {step0 * step_unit:.3g}, decay = {decay:.6g}); "
                    "reduce step0 (or leave it at its default). The last finite iterate is returned.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                break
            change = _relative_change(U_new, V_new, U, V, dU, dV)
            if not symmetric:
                U_new, V_new = _balance(U_new, V_new)
            U, V = U_new, (U_new if symmetric else V_new)
            r = r_new
            f, z = loss_and_weights(r)
            n_iter = t + 1
            steps.append(eta)
            losses.append(f)
            if monitor is not None:
                errors.append(monitor(U, V))
            if verbose and (n_iter % every == 0 or n_iter == 1):
                extra = f"  rel. error {errors[-1]:.3e}" if monitor is not None else ""
                print(f"subgradient_recover: step {n_iter:6d}  loss {in_y_units(f):.6e}  "
                      f"eta {eta * step_unit:.3e}  change {change:.3e}{extra}", file=sys.stderr)
            if callback is not None and callback(n_iter, in_y_units(f)):
                converged = True
                break
            # tol = 0 runs max_iter steps, even once a step underflows to no
            # change at all (change == 0.0)
            if tol > 0.0 and change <= tol:
                converged = stopped_by_tol = True
                break
            eta *= decay

    if not diverged and not converged and losses[-1] > losses[0]:
        warnings.warn(
            f"subgradient_recover ended with a larger loss than it started from ({in_y_units(losses[-1]):.3g} > "
            f"{in_y_units(losses[0]):.3g}) with step size eta_0 = {step0 * step_unit:.3g} (decay = {decay:.6g}); "
            "reduce step0 (or leave it at its default).",
            RuntimeWarning,
            stacklevel=2,
        )
    if too_large and stopped_by_tol:
        converged = False  # see the warning above: the rule stopped a stall, not a fit
    # back to the caller's units: the factors by the square root of the unit
    # (a power of two, exact), the losses and steps by theirs
    with np.errstate(over="ignore"):
        U = U * root
        V = U if symmetric else V * root
        history = np.asarray(losses) * loss_unit
    # the iterates run in float64 once the (float64) measurements enter the
    # residual; a float32 operator gets float32 factors back, as float32
    # data does everywhere (they came back float64)
    U = U.astype(dtype, copy=False)
    V = U if symmetric else V.astype(dtype, copy=False)
    matrix = LowRankMatrix.from_factors(U, V)
    return SubgradientResult(
        factor=U,
        factor_right=V,
        matrix=matrix,
        n_iter=n_iter,
        converged=converged and not diverged,
        history=history,
        error_history=np.asarray(errors),
        step_history=np.asarray(steps) * step_unit,
        step0=float(step0 * step_unit),
        decay=float(decay),
        precondition=precondition,
        loss=loss,
        symmetric=symmetric,
    )
