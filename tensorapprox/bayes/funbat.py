"""Functional Bayesian Tucker decomposition (FunBaT) for continuous-indexed tensors.

Observations ``y_n`` at continuous coordinates ``(x_n^1, ..., x_n^K)`` are
modelled as ``y_n = vec(W)' (u^1(x_n^1) kron ... kron u^K(x_n^K)) + eps_n``
with a Tucker core ``W`` (``R^K`` entries, or a CP core: a super-diagonal
``W`` with ``R`` weights), ``R`` latent functions per mode with independent
Matérn Gaussian-process priors, ``eps_n ~ N(0, 1/tau)`` and a Gamma prior
on ``tau``. Inference is message passing: the posterior of every mode's
functions is a Gauss-Markov process computed by a Kalman filter and RTS
smoother over the distinct coordinates of that mode, driven by Gaussian
pseudo-observations obtained by conditional moment matching.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numba
import numpy as np

from .._array import check_random_state, to_numpy
from .._validation import check_bool, check_choice, check_int, check_positive_float
from ..tensor import _scaled_frobenius
from .._kernels import numba_enabled
from .statespace import MATERN_KERNELS, StateSpaceModel, _real_array, _real_scalar, _smooth, matern_state_space

__all__ = ["FunctionalTucker", "LatentFactor", "NotFittedError"]

# Rows per chunk when per-observation Kronecker moments are formed; bounds
# the transient memory to about _CHUNK_BYTES whatever N and R.
_CHUNK_BYTES = 32 * 2**20


# Noise precision (of the standardized targets) used by the initial core fit
# and the first sweep over the modes, before the first Gamma update.
_INITIAL_PRECISION = 100.0


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before ``fit``.

    Subclasses both :class:`ValueError` and :class:`AttributeError`, so
    either can be caught (as with scikit-learn's ``NotFittedError``).

    Notes
    -----
    This is the exception type itself; constructing it raises nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.bayes import FunctionalTucker
    >>> from tensorapprox.bayes.funbat import NotFittedError
    >>> try:
    ...     FunctionalTucker(rank=2).predict(np.zeros((1, 2)))
    ... except NotFittedError as err:
    ...     print(err)
    This FunctionalTucker instance is not fitted yet; call fit(X, y) before using it
    """


@dataclass(frozen=True)
class LatentFactor:
    """Posterior of the ``R`` latent functions of one mode at its training coordinates.

    Instances are produced by :meth:`FunctionalTucker.fit` (one per mode, in
    ``factors_``); the constructor stores its arguments as given. Every
    parameter is available as a read-only attribute of the same name.

    Parameters
    ----------
    coordinates : ndarray, shape (I,)
        Sorted distinct training coordinates of the mode (input units).
    mean : ndarray, shape (I, R)
        Posterior means of the ``R`` functions.
    variance : ndarray, shape (I, R)
        Posterior variances.
    covariance : ndarray, shape (I, R, R)
        Posterior covariance between the ``R`` functions at each coordinate.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the posterior is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.bayes import FunctionalTucker
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, size=(100, 2))
    >>> y = np.sin(3 * X[:, 0]) + X[:, 1]
    >>> model = FunctionalTucker(rank=2, max_iter=10, random_state=0).fit(X, y)
    >>> f = model.factors_[0]
    >>> f.coordinates.shape, f.mean.shape, f.variance.shape, f.covariance.shape
    ((100,), (100, 2), (100, 2), (100, 2, 2))
    >>> bool(np.allclose(f.variance, np.diagonal(f.covariance, axis1=1, axis2=2)))
    True
    """

    coordinates: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    covariance: np.ndarray


def _scaled_mean_std(a: np.ndarray, axis=None):
    """``(mean, std)`` of ``a`` formed in units of its largest magnitude.

    Coordinates or values near 1e-170 gave squares that underflowed (a zero
    standard deviation, then no standardization at all) and near 1e160
    squares that overflowed (an infinite one).
    """
    m = np.max(np.abs(a), axis=axis, keepdims=True)
    m = np.where(m > 0, m, 1.0)
    b = a / m
    mean, std = np.mean(b, axis=axis, keepdims=True) * m, np.std(b, axis=axis, keepdims=True) * m
    if axis is None:
        return float(mean.reshape(())), float(std.reshape(()))
    return np.squeeze(mean, axis=axis), np.squeeze(std, axis=axis)


def _rms(d: np.ndarray) -> float:
    """Root mean square of ``d`` without underflow or overflow of the squares."""
    if not d.size:
        return float("nan")
    m = float(np.max(np.abs(d)))
    if not np.isfinite(m):
        return m  # Inf or NaN, as the plain formula gives
    return _scaled_frobenius(np, d, 1.0, 0) / math.sqrt(d.size)


def _rowkron(mats: Sequence[np.ndarray]) -> np.ndarray:
    """Row-wise Kronecker product of (n, a_j) matrices, first factor slowest."""
    out = mats[0]
    for M in mats[1:]:
        out = (out[:, :, None] * M[:, None, :]).reshape(out.shape[0], -1)
    return out


def _interleaved_to_blocks(T: np.ndarray, R: int, m: int) -> np.ndarray:
    """(..., (a1 b1 a2 b2 ... am bm)) -> (..., (a1..am), (b1..bm))."""
    lead = T.shape[:-1]
    T = T.reshape(lead + (R, R) * m)
    nl = len(lead)
    perm = list(range(nl)) + [nl + 2 * j for j in range(m)] + [nl + 2 * j + 1 for j in range(m)]
    return T.transpose(perm).reshape(lead + (R ** m, R ** m))


def _blocks_to_interleaved(T: np.ndarray, R: int, m: int) -> np.ndarray:
    """Inverse of :func:`_interleaved_to_blocks` for a (R^m, R^m) matrix, flattened."""
    T = T.reshape((R,) * (2 * m))
    perm = []
    for j in range(m):
        perm += [j, m + j]
    return T.transpose(perm).reshape(-1)


def _site_kron_sums_reference(inv, order, seg, Ss, ms, y, n_sites, R):
    """Readable reference of :func:`site_kron_sums` (chunked row-wise Kronecker + reduceat)."""
    J = len(Ss)
    width = (R * R) ** J
    Sz = np.zeros((n_sites, width))
    hz = np.zeros((n_sites, R ** J))
    N = order.shape[0]
    step = max(1, int(_CHUNK_BYTES // (8 * width)))
    for s in range(0, N, step):
        idx = order[s:s + step]
        site = inv[idx]
        starts = np.flatnonzero(np.r_[True, site[1:] != site[:-1]])
        if J:
            U = _rowkron([S[idx] for S in Ss])
            Ez = _rowkron([m[idx] for m in ms])
        else:
            U = np.ones((len(idx), 1))
            Ez = np.ones((len(idx), 1))
        Sz[site[starts]] += np.add.reduceat(U, starts, axis=0)
        hz[site[starts]] += np.add.reduceat(Ez * y[idx, None], starts, axis=0)
    return Sz, hz


@numba.njit(cache=True)
def _site_kron_sums_numba(inv, S, M, y, n_sites):
    J, N, Q = S.shape
    R = M.shape[2]
    W = Q ** J
    V = R ** J
    Sz = np.zeros((n_sites, W))
    hz = np.zeros((n_sites, V))
    Wp = Q ** (J - 1)
    Vp = R ** (J - 1)
    buf = np.empty(Wp)
    tmp = np.empty(Wp)
    bm = np.empty(Vp)
    tm = np.empty(Vp)
    for n in range(N):
        # Kronecker product of the first J - 1 factors ...
        buf[0] = 1.0
        bm[0] = y[n]
        w = 1
        v = 1
        for j in range(J - 1):
            for a in range(w):
                ba = buf[a]
                for b in range(Q):
                    tmp[a * Q + b] = ba * S[j, n, b]
            for a in range(v):
                ba = bm[a]
                for b in range(R):
                    tm[a * R + b] = ba * M[j, n, b]
            w *= Q
            v *= R
            buf[:w] = tmp[:w]
            bm[:v] = tm[:v]
        # ... times the last one, accumulated in place
        i = inv[n]
        last = J - 1
        for a in range(Wp):
            ba = buf[a]
            o = a * Q
            for b in range(Q):
                Sz[i, o + b] += ba * S[last, n, b]
        for a in range(Vp):
            ba = bm[a]
            o = a * R
            for b in range(R):
                hz[i, o + b] += ba * M[last, n, b]
    return Sz, hz


def site_kron_sums(inv, order, seg, Ss, ms, y, n_sites, R):
    """Per-site sums of row-wise Kronecker products (dispatch: Numba or reference).

    ``Sz[i] = sum_{n: inv[n] = i} kron_j Ss[j][n]`` and
    ``hz[i] = sum_{n: inv[n] = i} y[n] kron_j ms[j][n]``; never forms the
    per-observation products for all ``n`` at once.
    """
    if numba_enabled() and len(Ss) > 0:
        S = np.ascontiguousarray(np.stack(Ss))
        M = np.ascontiguousarray(np.stack(ms))
        return _site_kron_sums_numba(np.ascontiguousarray(inv, dtype=np.int64), S, M,
                                     np.ascontiguousarray(y), int(n_sites))
    return _site_kron_sums_reference(inv, order, seg, Ss, ms, y, n_sites, R)


def _sample_prior(model: StateSpaceModel, sites: np.ndarray, R: int, rng: np.random.Generator) -> np.ndarray:
    """R independent draws of the GP prior at sorted ``sites`` by the state-space recursion, (I, R)."""
    A, Q = model.transition(np.concatenate([[0.0], np.diff(sites)]))
    Q[0] = model.P_inf

    def sqrtm(P):
        w, V = np.linalg.eigh(P)
        return V * np.sqrt(np.clip(w, 0.0, None))[..., None, :]

    Qh = sqrtm(Q)
    d = model.state_dim
    eps = rng.standard_normal((sites.shape[0], d, R))
    s = np.zeros((d, R))
    out = np.empty((sites.shape[0], R))
    for i in range(sites.shape[0]):
        s = A[i] @ s + Qh[i] @ eps[i]
        out[i] = s[0]
    return out


class FunctionalTucker:
    """Functional Bayesian Tucker decomposition (FunBaT) of continuous-indexed data.

    Parameters
    ----------
    rank : int
        Number ``R`` of latent functions per mode (the core is ``R x ... x R``).
    kernel : {'matern12', 'matern32', 'matern52'}, default 'matern32'
        Matérn prior of every latent function.
    lengthscale : float or sequence of float, default 0.3
        Length-scale of the prior, in units of the internally standardized
        coordinates (each mode is shifted to mean 0 and scaled to unit
        standard deviation); one value or one per mode.
    variance : float or sequence of float, default 1.0
        Prior variance of the latent functions; one value or one per mode.
    core : {'tucker', 'cp'}, default 'tucker'
        Full Tucker core (``R^K`` entries) or CP core (``R`` weights).
    core_prior_var : float, default 1.0
        Prior variance ``v`` of the core entries, ``N(0, v I)``.
    noise_prior : (float, float), default (1.0, 1.0)
        Shape and rate of the Gamma prior on the noise precision (of the
        standardized targets).
    damping : float in [0, 1), default 0.5
        Weight of the previous message when a mode's messages are updated:
        ``new = (1 - damping) * computed + damping * old``.
    max_iter : int, default 100
        Maximum number of epochs.
    tol : float, default 1e-4
        Stop when the relative change of the training RMSE between epochs
        falls below ``tol``.
    n_iter_no_change : int, default 10
        With validation data given to :meth:`fit`, stop after this many
        epochs without improvement of the validation RMSE and restore the
        best epoch's posterior.
    random_state : None, int or numpy.random.Generator
        Seed of the initial latent functions (draws from their prior).
    progress : bool, default False
        Print one line per epoch.
    callback : callable, optional
        Called as ``callback(model, epoch)`` after every epoch (for
        monitoring). Inside it the model is that epoch's fit: ``predict``,
        ``score`` and ``latent_functions`` work (on the first fit too),
        ``core_mean_``, ``core_cov_``, ``noise_precision_`` and ``factors_``
        are this epoch's, ``history_`` (and ``validation_history_``) hold
        the epochs so far, ``n_iter_`` is ``epoch`` and ``converged_`` says
        whether this epoch met ``tol`` (fitting stops after the call). With
        validation data the best epoch's posterior replaces the last one
        after the final call. The public attributes are refreshed before
        every call, a copy of the posterior costing
        ``O(sum_k I_k R^2 + R^(2K))`` (measured at 0.1-1% of an epoch);
        without a callback (and validation data) they are formed once, at
        the end. An exception raised by the callback aborts ``fit`` as any
        other error does (see :meth:`fit`).

    Attributes
    ----------
    core_mean_ : ndarray
        Posterior mean of the core, shape ``(R,) * K`` (Tucker) or ``(R,)``
        (CP), in standardized units of ``y``: the predictive mean is
        ``y_mean_ + y_scale_ * sum(core * prod_k U^k(x_k))`` with the
        latent functions ``U^k`` of :meth:`latent_functions`.
    core_cov_ : ndarray
        Posterior covariance of ``vec(core)`` (C order), shape
        ``(R^K, R^K)`` or ``(R, R)``, in the same standardized units.
    x_mean_, x_scale_ : ndarray, shape (K,)
        Per-mode centre and scale of the coordinates; the latent functions'
        GPs run on ``(x - x_mean_) / x_scale_``.
    y_mean_, y_scale_ : float
        Centre and scale of ``y`` (see ``core_mean_``).
    noise_precision_ : float
        Posterior mean of the noise precision, in the units of ``y``.
    factors_ : list of LatentFactor
        Per mode: sorted training coordinates, posterior means, variances
        and covariances of the ``R`` functions.
    history_ : list of float
        Training RMSE (units of ``y``) after every epoch.
    validation_history_ : list of float
        Validation RMSE after every epoch (empty without validation data).
    n_iter_ : int
        Number of epochs run.
    converged_ : bool
        Whether the ``tol`` criterion was met.
    n_modes_ : int
        Number ``K`` of modes seen in ``fit``.

    Raises
    ------
    TypeError, ValueError
        The hyper-parameters are checked when :meth:`fit` is called (as in
        scikit-learn), with messages that name the parameter; see
        :meth:`fit`.

    Notes
    -----
    Follows S. Fang, X. Yu, Z. Wang, S. Li, M. Kirby and S. Zhe,
    "Functional Bayesian Tucker Decomposition for Continuous-indexed Tensor
    Data", ICLR 2024 (arXiv:2311.04829), with these choices:

    * The posterior factorizes as ``q(W) q(tau) prod_k q(U^k)``; ``q(U^k)``
      is a joint Gauss-Markov posterior of the ``R`` functions of mode ``k``
      (their priors are independent, the data couple them). The message of
      observation ``n`` to mode ``k`` is obtained by conditional moment
      matching: given the other modes, the core and the noise, the
      likelihood is Gaussian in ``u^k(x_n^k)`` with precision
      ``tau a_n a_n'`` and information ``tau y_n a_n``,
      ``a_n = W_(k) z_{-k,n}``, ``z_{-k,n} = kron_{j != k} u^j(x_n^j)``;
      its natural parameters are averaged over the current posteriors of
      the other factors. Messages are summed per distinct coordinate
      (only per-coordinate ``R x R`` precisions are stored) and smoothed by
      the Kalman filter / RTS smoother of the Matérn SDE (Hartikainen &
      Särkkä, IEEE MLSP 2010); see :mod:`tensorapprox.bayes.statespace`.
    * The core posterior is Gaussian given ``sum_n E[z_n z_n']``, obtained
      by one matrix product from the per-coordinate sums of the last mode
      (never per observation), and the noise precision is Gamma.
    * ``y`` is standardized internally, and so are the coordinates; the
      Kalman prior starts from a zero mean. The initial posterior means of
      the latent functions are draws from their prior (seeded by
      ``random_state``) and the first sweep over the modes uses a noise
      precision of 100 (standardized units) before the first Gamma update:
      with weak initial messages and the prior-mean precision the
      mean-field updates shrink every factor to the trivial zero solution.
    * The ``R`` functions of a mode are not forced to be independent a
      posteriori (as a fully factorized approximation would): the conditional
      message of an observation couples them, and the joint Kalman
      smoother (state dimension ``R * d``) keeps that coupling, so one mode
      update with the other factors fixed is the exact Gaussian conditional.
    * Cost per epoch: ``O(N R^(2K-2))`` for the per-coordinate message sums
      (a Numba kernel), ``O(sum_k I_k (R d)^3)`` for the smoothers and
      ``O(R^(3K))`` for the core; memory ``O(N R^K + sum_k I_k R^(2K-2))``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.bayes import FunctionalTucker
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, size=(400, 2))
    >>> y = np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1])
    >>> model = FunctionalTucker(rank=2, max_iter=30, random_state=0).fit(X, y)
    >>> bool(model.score(X, y) < 0.05)
    True
    >>> mean, std = model.predict(X[:3], return_std=True)
    >>> mean.shape, std.shape
    ((3,), (3,))
    """

    def __init__(
        self,
        rank: int,
        kernel: str = "matern32",
        lengthscale: float | Sequence[float] = 0.3,
        variance: float | Sequence[float] = 1.0,
        core: str = "tucker",
        core_prior_var: float = 1.0,
        noise_prior: tuple[float, float] = (1.0, 1.0),
        damping: float = 0.5,
        max_iter: int = 100,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        random_state=None,
        progress: bool = False,
        callback=None,
    ):
        self.rank = rank
        self.kernel = kernel
        self.lengthscale = lengthscale
        self.variance = variance
        self.core = core
        self.core_prior_var = core_prior_var
        self.noise_prior = noise_prior
        self.damping = damping
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.progress = progress
        self.callback = callback

    # ------------------------------------------------------------------ validation
    def _validate_params(self, K: int):
        R = check_int(self.rank, name="rank", minimum=1)
        check_choice(self.kernel, name="kernel", choices=MATERN_KERNELS)
        check_choice(self.core, name="core", choices=("tucker", "cp"))
        ls = self._per_mode(self.lengthscale, "lengthscale", K)
        var = self._per_mode(self.variance, "variance", K)
        v = check_positive_float(self.core_prior_var, name="core_prior_var")
        try:
            a0, b0 = self.noise_prior
        except (TypeError, ValueError):
            raise TypeError("noise_prior must be a pair (shape, rate) of positive floats") from None
        a0 = check_positive_float(a0, name="noise_prior[0] (shape)")
        b0 = check_positive_float(b0, name="noise_prior[1] (rate)")
        rho = check_positive_float(self.damping, name="damping", allow_zero=True)
        if rho >= 1.0:
            raise ValueError(f"damping must lie in [0, 1), got {rho}")
        check_int(self.max_iter, name="max_iter", minimum=1)
        check_positive_float(self.tol, name="tol", allow_zero=True)
        check_int(self.n_iter_no_change, name="n_iter_no_change", minimum=1)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable or None, got {type(self.callback).__name__}")
        check_bool(self.progress, name="progress")
        return R, ls, var, v, a0, b0, rho

    @staticmethod
    def _per_mode(value, name: str, K: int) -> list[float]:
        value = _real_scalar(value)  # a 0-d array is its scalar, as a numpy scalar is
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return [check_positive_float(value, name=name)] * K
        try:
            vals = list(value)
        except TypeError:
            raise TypeError(f"{name} must be a positive float or a sequence of {K} positive floats, "
                            f"got {type(value).__name__}") from None
        if len(vals) != K:
            raise ValueError(f"{name} has {len(vals)} entries but X has {K} modes; give one value or {K}")
        return [check_positive_float(_real_scalar(x), name=f"{name}[{k}]") for k, x in enumerate(vals)]

    @staticmethod
    def _check_X(X, name: str = "X") -> np.ndarray:
        if not hasattr(X, "shape") and not isinstance(X, (list, tuple)):
            raise TypeError(f"{name} must be an array of shape (n_samples, n_modes), got {type(X).__name__}")
        X = to_numpy(X) if hasattr(X, "shape") else np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D with shape (n_samples, n_modes), got shape {X.shape}; "
                             "reshape a single sample with X.reshape(1, -1)")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"{name} is empty: shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or Inf values; remove or impute those rows first")
        return X

    @staticmethod
    def _check_y(y, n: int, name: str = "y", x_name: str = "X") -> np.ndarray:
        if not hasattr(y, "shape") and not isinstance(y, (list, tuple)):
            raise TypeError(f"{name} must be an array of shape (n_samples,), got {type(y).__name__}")
        y = to_numpy(y) if hasattr(y, "shape") else np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {y.dtype}")
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D with shape (n_samples,), got shape {y.shape}")
        if y.shape[0] != n:
            raise ValueError(f"{name} has {y.shape[0]} entries but {x_name} has {n} rows; they must match")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or Inf values; remove those samples first")
        return y

    def _check_fitted(self):
        if not hasattr(self, "core_mean_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; "
                                 "call fit(X, y) before using it")

    def _check_predict_X(self, X) -> np.ndarray:
        self._check_fitted()
        X = self._check_X(X)
        if X.shape[1] != self.n_modes_:
            raise ValueError(f"X has {X.shape[1]} modes (columns) but the model was fitted with "
                             f"{self.n_modes_}; pass coordinates for exactly {self.n_modes_} modes")
        return X

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, *, X_val=None, y_val=None) -> "FunctionalTucker":
        """Fit the posterior by message passing.

        Parameters
        ----------
        X : array, shape (n_samples, n_modes)
            Continuous coordinates of the observations (any real units).
        y : array, shape (n_samples,)
            Observed values.
        X_val, y_val : arrays, optional
            Validation data: its RMSE is recorded per epoch in
            ``validation_history_``, training stops after
            ``n_iter_no_change`` epochs without improvement and the best
            epoch's posterior is kept.

        Returns
        -------
        FunctionalTucker
            ``self``, fitted.

        Raises
        ------
        TypeError
            ``X`` or ``y`` is not an array of real numbers, or a
            hyper-parameter has the wrong type.
        ValueError
            Bad shapes, NaN/Inf, fewer than 2 distinct coordinates in a mode,
            bad hyper-parameters (a ``variance`` or ``lengthscale`` whose
            state-space form leaves float64's range included), or only one
            of ``X_val`` / ``y_val`` given.
        FloatingPointError
            A non-finite value arises during fitting (names epoch and mode).

        Notes
        -----
        A call that raises, whatever the exception (those above, one raised
        by ``callback``, ``KeyboardInterrupt``), leaves the estimator as it
        was before the call: a fitted model keeps its previous fit (its
        scalings, posterior and histories together) and an unfitted one stays
        unfitted (``predict`` raises :class:`NotFittedError`). The inputs and
        hyper-parameters are all checked before the learned state is
        touched. Only a ``numpy.random.Generator`` given as ``random_state``
        is not rewound: its draws are consumed.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.bayes import FunctionalTucker
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(0, 1, size=(100, 2))
        >>> y = np.sin(3 * X[:, 0]) + X[:, 1]
        >>> model = FunctionalTucker(rank=2, max_iter=10, random_state=0).fit(X, y)
        >>> model.n_modes_, model.n_iter_, len(model.history_)
        (2, 10, 10)
        """
        X = self._check_X(X)
        N, K = X.shape
        y = self._check_y(y, N)
        R, ls, var, v, a0, b0, rho = self._validate_params(K)
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_val = self._check_X(X_val, "X_val")
            if X_val.shape[1] != K:
                raise ValueError(f"X_val has {X_val.shape[1]} modes but X has {K}; they must match")
            y_val = self._check_y(y_val, X_val.shape[0], "y_val", "X_val")
        rng = check_random_state(self.random_state)

        # Standardization, distinct coordinates and priors, all into locals:
        # a mode with one distinct value raised after the new scalings had
        # been stored beside the previous posterior (predictions then mixed
        # the two, silently wrong).
        x_mean, xs = _scaled_mean_std(X, axis=0)
        x_scale = np.where(xs > 0, xs, 1.0)
        Xs = (X - x_mean) / x_scale
        y_mean, ysd = _scaled_mean_std(y)
        y_scale = ysd if ysd > 0 else 1.0
        ys = (y - y_mean) / y_scale
        models, sites, inv, order, seg, coords = [], [], [], [], [], []
        for k in range(K):
            s, iv = np.unique(Xs[:, k], return_inverse=True)
            if s.shape[0] < 2:
                raise ValueError(f"mode {k} of X has {s.shape[0]} distinct coordinate(s); every mode needs "
                                 "at least 2 distinct values to fit its latent functions")
            sites.append(s)
            inv.append(iv.reshape(-1))
            o = np.argsort(iv, kind="stable")
            order.append(o)
            seg.append(np.searchsorted(iv[o], np.arange(s.shape[0])))
            # each site's coordinate as given (its first sample's): mapping
            # the standardized site back was up to an ulp off, and lookups
            # of training coordinates in factors_[k].coordinates missed
            coords.append(X[o[seg[-1]], k].copy())
            models.append(matern_state_space(self.kernel, ls[k], var[k]))

        # Fitting replaces the learned state (attributes starting or ending
        # with "_"); if it raises, the state from before the call comes back.
        # Complete because a fit only rebinds attributes to new objects and
        # never changes the previous fit's objects in place.
        previous = self._learned_state()
        self._clear_learned_state()
        try:
            self.x_mean_, self.x_scale_ = x_mean, x_scale
            self.y_mean_, self.y_scale_ = y_mean, y_scale
            self.n_modes_ = K
            self._R, self._tucker = R, self.core == "tucker"
            self._models, self._sites, self._coords = models, sites, coords
            self._inv, self._order, self._seg = inv, order, seg
            self._ys = ys
            self._a0, self._b0, self._v = a0, b0, v
            self._run(rng, var, rho, X_val, y_val)
        except BaseException:
            self._clear_learned_state()
            self.__dict__.update(previous)
            raise
        return self

    @staticmethod
    def _is_learned(name: str) -> bool:
        return name.startswith("_") or name.endswith("_")

    def _learned_state(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if self._is_learned(k)}

    def _clear_learned_state(self):
        for k in [k for k in self.__dict__ if self._is_learned(k)]:
            del self.__dict__[k]

    def _run(self, rng, var, rho, X_val, y_val):
        """Message passing from the standardized data stored by :meth:`fit`."""
        K, R, sites, ys = self.n_modes_, self._R, self._sites, self._ys
        # initial posteriors: means are prior draws (zero-mean Kalman prior,
        # random only to break the symmetry of the factorization), small spread
        self._means = [_sample_prior(self._models[k], sites[k], R, rng) for k in range(K)]
        self._covs = [np.broadcast_to(1e-2 * var[k] * np.eye(R), (sites[k].shape[0], R, R)).copy()
                      for k in range(K)]
        self._msg_prec = [np.zeros((s.shape[0], R, R)) for s in sites]
        self._msg_info = [np.zeros((s.shape[0], R)) for s in sites]
        self._smoothers = [None] * K
        self._a, self._b = self._a0, self._b0

        # Start with a confident noise precision: with tau at its prior mean the
        # weak initial messages let every factor shrink to the trivial zero
        # solution. tau is learned from the end of the first epoch on.
        self._b = self._a / _INITIAL_PRECISION
        G, h = self._core_stats()
        self._update_core(G, h)

        self.history_: list[float] = []
        self.validation_history_: list[float] = []
        self.converged_ = False
        best = (np.inf, None)
        since_best = 0
        epoch = 0
        for epoch in range(1, int(self.max_iter) + 1):
            for k in range(K):
                sums = self._update_mode(k, rho, epoch)
            G, h = self._core_stats_from_sums(sums)
            self._update_core(G, h)
            self._update_noise(G, h)
            self._check_finite(epoch, "core/noise")
            pred = self._train_mean()
            rmse = float(np.sqrt(np.mean((pred - ys) ** 2))) * self.y_scale_
            self.history_.append(rmse)
            self.n_iter_ = epoch
            if len(self.history_) > 1:
                prev = self.history_[-2]
                if abs(prev - rmse) <= self.tol * max(prev, np.finfo(float).tiny):
                    self.converged_ = True
            msg = f"epoch {epoch:4d}  train RMSE {rmse:.6g}"
            if X_val is not None or self.callback is not None:
                # the public attributes of this epoch: predict works inside
                # the callback (and on the validation data)
                self._finalize()
            if X_val is not None:
                vr = _rms(self.predict(X_val) - y_val)
                self.validation_history_.append(vr)
                msg += f"  validation RMSE {vr:.6g}"
                if vr < best[0]:
                    best = (vr, self._snapshot())
                    since_best = 0
                else:
                    since_best += 1
            if self.progress:
                print(msg)
            if self.callback is not None:
                self.callback(self, epoch)
            if self.converged_:
                break
            if X_val is not None and since_best >= self.n_iter_no_change:
                break
        self.n_iter_ = epoch
        if X_val is not None and best[1] is not None:
            self._restore(best[1])
        self._finalize()

    # state snapshots for early stopping
    def _snapshot(self):
        return (
            [m.copy() for m in self._means], [c.copy() for c in self._covs],
            list(self._smoothers), self._wm.copy(), self._wS.copy(), self._a, self._b,
        )

    def _restore(self, snap):
        means, covs, smoothers, wm, wS, a, b = snap
        self._means, self._covs, self._smoothers = means, covs, smoothers
        self._wm, self._wS, self._a, self._b = wm, wS, a, b

    def _check_finite(self, epoch, where):
        ok = np.all(np.isfinite(self._wm)) and np.all(np.isfinite(self._wS)) and np.isfinite(self._b)
        if not ok:
            raise FloatingPointError(f"non-finite value in the {where} update at epoch {epoch}; "
                                     "try a larger noise_prior rate, a smaller core_prior_var or more damping")

    # moments of one observation's factors
    def _obs_moments(self, j, idx):
        site = self._inv[j][idx]
        m = self._means[j][site]
        S = self._covs[j][site] + m[:, :, None] * m[:, None, :]
        return m, S

    def _chunk_rows(self, width: int) -> int:
        return max(1, int(_CHUNK_BYTES // (8 * max(width, 1))))

    def _core_stats(self):
        """G = sum_n E[z_n z_n'] (interleaved/flat for Tucker; R x R for CP), h = sum_n y_n E[z_n]."""
        K, R, N = self.n_modes_, self._R, self._ys.shape[0]
        if self._tucker:
            width = R ** (2 * K - 2)
            step = self._chunk_rows(width)
            G = np.zeros((width, R * R))
            h = np.zeros(R ** K)
            for s in range(0, N, step):
                idx = np.arange(s, min(N, s + step))
                ms, Ss = zip(*(self._obs_moments(j, idx) for j in range(K)))
                h += _rowkron(list(ms)).T @ self._ys[idx]
                U = _rowkron([S.reshape(len(idx), -1) for S in Ss[:-1]]) if K > 1 else np.ones((len(idx), 1))
                G += U.T @ Ss[-1].reshape(len(idx), -1)
            return G.reshape(-1), h
        G = np.zeros((R, R))
        h = np.zeros(R)
        step = self._chunk_rows(R * R * K)
        for s in range(0, N, step):
            idx = np.arange(s, min(N, s + step))
            P = None
            Pm = None
            for j in range(K):
                m, S = self._obs_moments(j, idx)
                P = S if P is None else P * S
                Pm = m if Pm is None else Pm * m
            G += P.sum(axis=0)
            h += Pm.T @ self._ys[idx]
        return G.reshape(-1), h

    def _core_gram(self, G):
        K, R = self.n_modes_, self._R
        if self._tucker:
            return _interleaved_to_blocks(G, R, K)
        return G.reshape(R, R)

    def _update_core(self, G, h):
        tau = self._a / self._b
        Gm = self._core_gram(G)
        D = Gm.shape[0]
        prec = tau * Gm + np.eye(D) / self._v
        prec = 0.5 * (prec + prec.T)
        Lc = np.linalg.cholesky(prec)
        eye = np.eye(D)
        Linv = np.linalg.solve(Lc, eye)            # triangular system, well conditioned (prec >= I/v)
        cov = Linv.T @ Linv
        self._wS = 0.5 * (cov + cov.T)
        self._wm = self._wS @ (tau * h)

    def _update_noise(self, G, h):
        N = self._ys.shape[0]
        Gm = self._core_gram(G)
        Eww = self._wS + np.outer(self._wm, self._wm)
        sse = float(self._ys @ self._ys - 2.0 * self._wm @ h + np.sum(Eww * Gm))
        sse = max(sse, 0.0)
        self._a = self._a0 + 0.5 * N
        self._b = self._b0 + 0.5 * sse

    def _second_moment_core(self):
        return self._wS + np.outer(self._wm, self._wm)

    def _site_sums(self, k):
        """Per-site sums over the observations of mode ``k`` of the other modes' moments.

        Tucker: ``Sz[i] = sum_n kron_{j != k} vec(E[u^j u^j'])`` (interleaved
        order, ``R^(2K-2)``) and ``hz[i] = sum_n y_n kron_{j != k} E[u^j]``;
        CP: the Hadamard products instead (``R x R`` and ``R``).
        """
        K, R = self.n_modes_, self._R
        inv, order, seg = self._inv[k], self._order[k], self._seg[k]
        I = self._sites[k].shape[0]
        others = [j for j in range(K) if j != k]
        if self._tucker:
            ms, Ss = [], []
            for j in others:
                inv_j = self._inv[j]
                m = self._means[j][inv_j]
                C = self._covs[j][inv_j]
                ms.append(m)
                Ss.append((C + m[:, :, None] * m[:, None, :]).reshape(-1, R * R))
            return site_kron_sums(inv, order, seg, Ss, ms, self._ys, I, R)
        N = order.shape[0]
        P = np.ones((N, R, R))
        Pm = np.ones((N, R))
        for j in others:
            m, S = self._obs_moments(j, order)
            P *= S
            Pm *= m
        Sz = np.add.reduceat(P, seg, axis=0)
        hz = np.add.reduceat(Pm * self._ys[order, None], seg, axis=0)
        return Sz, hz

    def _mode_messages(self, k, sums=None):
        """Per-site summed precision (I, R, R) and information (I, R) to mode k."""
        K, R = self.n_modes_, self._R
        tau = self._a / self._b
        I = self._sites[k].shape[0]
        others = [j for j in range(K) if j != k]
        Sz, hz = self._site_sums(k) if sums is None else sums
        Eww = self._second_moment_core()
        if self._tucker:
            # E[W_(k) S W_(k)'] = T @ vec(S) with T from E[vec(W) vec(W)'] arranged
            # as (a_k, b_k, a_j1, b_j1, ...), matching the interleaved Sz
            E = Eww.reshape((R,) * (2 * K))
            perm = [k, K + k]
            for j in others:
                perm += [j, K + j]
            T = E.transpose(perm).reshape(R * R, -1)
            prec = tau * (Sz @ T.T).reshape(I, R, R)
            Wk = np.moveaxis(self._wm.reshape((R,) * K), k, 0).reshape(R, -1)
            info = tau * (hz @ Wk.T)
        else:
            prec = tau * Eww.reshape(R, R)[None] * Sz
            info = tau * self._wm[None, :] * hz
        prec = 0.5 * (prec + np.swapaxes(prec, -1, -2))
        return prec, info

    def _core_stats_from_sums(self, sums):
        """``G``, ``h`` of :meth:`_core_stats` from the last mode's site sums (cheap).

        Valid right after the last mode's update: its site sums depend only
        on the other modes, which have not changed since.
        """
        K, R = self.n_modes_, self._R
        Sz, hz = sums
        m, C = self._means[K - 1], self._covs[K - 1]
        S = C + m[:, :, None] * m[:, None, :]
        if self._tucker:
            G = Sz.T @ S.reshape(-1, R * R)
            h = _rowkron([hz, m]).sum(axis=0) if K > 1 else (hz * m).sum(axis=0)
            return G.reshape(-1), h
        G = np.sum(Sz * S, axis=0)
        h = np.sum(hz * m, axis=0)
        return G.reshape(-1), h

    def _update_mode(self, k, rho, epoch):
        sums = self._site_sums(k)
        prec, info = self._mode_messages(k, sums)
        if not (np.all(np.isfinite(prec)) and np.all(np.isfinite(info))):
            raise FloatingPointError(f"non-finite message at epoch {epoch}, mode {k}; "
                                     "try more damping or a larger noise_prior rate")
        self._msg_prec[k] = (1.0 - rho) * prec + rho * self._msg_prec[k]
        self._msg_info[k] = (1.0 - rho) * info + rho * self._msg_info[k]
        res = _smooth(self._models[k], self._sites[k], self._msg_prec[k], self._msg_info[k])
        m, C = res.marginals()
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(C))):
            raise FloatingPointError(f"non-finite posterior from the Kalman smoother at epoch {epoch}, mode {k}; "
                                     "try a larger lengthscale or more damping")
        self._smoothers[k] = res
        self._means[k] = m
        self._covs[k] = C
        return sums

    def _train_mean(self):
        K, N = self.n_modes_, self._ys.shape[0]
        out = np.empty(N)
        width = self._R ** K if self._tucker else self._R
        step = self._chunk_rows(width)
        for s in range(0, N, step):
            idx = np.arange(s, min(N, s + step))
            ms = [self._means[j][self._inv[j][idx]] for j in range(K)]
            out[idx] = self._feature_mean(ms) @ self._wm
        return out

    def _feature_mean(self, ms):
        if self._tucker:
            return _rowkron(ms)
        P = ms[0].copy()
        for m in ms[1:]:
            P = P * m
        return P

    def _finalize(self):
        """Public fitted attributes from the internal state."""
        K, R = self.n_modes_, self._R
        # a copy for both cores: the Tucker core was a view of the posterior,
        # and editing it changed later predictions
        self.core_mean_ = (self._wm.reshape((R,) * K) if self._tucker else self._wm).copy()
        self.core_cov_ = self._wS.copy()
        # precision of the standardized noise -> units of y
        # divided twice: y_scale_^2 underflowed to 0 for values near 1e-170 (a
        # ZeroDivisionError); a precision beyond float64's range comes out inf
        self.noise_precision_ = float(self._a / self._b) / self.y_scale_ / self.y_scale_
        self.factors_ = []
        for k in range(K):
            C = self._covs[k]
            self.factors_.append(LatentFactor(
                coordinates=self._coords[k].copy(),
                mean=self._means[k].copy(),
                variance=np.diagonal(C, axis1=1, axis2=2).copy(),
                covariance=C.copy(),
            ))

    # ------------------------------------------------------------------ prediction
    def _factor_posterior(self, k, x_std):
        res = self._smoothers[k]
        return res.predict(x_std)

    def latent_functions(self, mode: int, x):
        """Posterior mean and standard deviation of the ``R`` latent functions of a mode.

        Parameters
        ----------
        mode : int
            Mode index in ``[0, n_modes)``.
        x : array_like, shape (m,)
            Coordinates (input units), anywhere: inside, left or right of
            the training range.

        Returns
        -------
        mean : ndarray, shape (m, R)
            Posterior means of the ``R`` functions at ``x``.
        std : ndarray, shape (m, R)
            Posterior standard deviations of the ``R`` functions at ``x``.

        Raises
        ------
        NotFittedError
            If :meth:`fit` has not been called.
        TypeError
            If ``mode`` is not an int.
        ValueError
            If ``mode`` is out of range or ``x`` contains NaN or Inf.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.bayes import FunctionalTucker
        >>> rng = np.random.default_rng(1)
        >>> X = rng.uniform(0, 1, size=(200, 2))
        >>> y = np.sin(3 * X[:, 0]) + X[:, 1]
        >>> model = FunctionalTucker(rank=2, max_iter=10, random_state=0).fit(X, y)
        >>> mean, std = model.latent_functions(0, np.linspace(-0.2, 1.2, 5))
        >>> mean.shape, bool(np.all(std > 0))
        ((5, 2), True)
        """
        self._check_fitted()
        if isinstance(mode, bool) or not isinstance(mode, numbers.Integral):
            raise TypeError(f"mode must be an int, got {type(mode).__name__}")
        if not 0 <= int(mode) < self.n_modes_:
            raise ValueError(f"mode must lie in [0, {self.n_modes_}), got {mode}")
        x = _real_array(x, "x").reshape(-1)
        if not np.all(np.isfinite(x)):
            raise ValueError("x contains NaN or Inf values")
        mode = int(mode)
        m, C = self._factor_posterior(mode, (x - self.x_mean_[mode]) / self.x_scale_[mode])
        return m, np.sqrt(np.maximum(np.diagonal(C, axis1=1, axis2=2), 0.0))

    def predict(self, X, return_std: bool = False):
        """Predictive mean (and standard deviation) at new coordinates.

        Parameters
        ----------
        X : array, shape (n_samples, n_modes)
            Continuous coordinates, one column per mode, in the units of
            the training data.
        return_std : bool, default False
            Also return the predictive standard deviation, which includes
            the posterior spread of the latent functions and the core and
            the noise.

        Returns
        -------
        mean : ndarray, shape (n_samples,)
            Predictive mean, in the units of ``y``.
        std : ndarray, shape (n_samples,)
            Predictive standard deviation (only with ``return_std=True``).

        Raises
        ------
        NotFittedError
            If :meth:`fit` has not been called.
        TypeError, ValueError
            If ``X`` is not a finite real 2-D array with the number of modes
            the model was fitted with.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.bayes import FunctionalTucker
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(0, 1, size=(100, 2))
        >>> y = np.sin(3 * X[:, 0]) + X[:, 1]
        >>> model = FunctionalTucker(rank=2, max_iter=10, random_state=0).fit(X, y)
        >>> model.predict(X[:3]).shape
        (3,)
        >>> mean, std = model.predict(X[:3], return_std=True)
        >>> std.shape, bool(np.all(std > 0))
        ((3,), True)
        """
        X = self._check_predict_X(X)
        K, R = self.n_modes_, self._R
        Xs = (X - self.x_mean_) / self.x_scale_
        ms, Ss = [], []
        for k in range(K):
            u, inv_u = np.unique(Xs[:, k], return_inverse=True)
            m, C = self._factor_posterior(k, u)
            inv_u = inv_u.reshape(-1)
            ms.append(m[inv_u])
            if return_std:
                Ss.append((C + m[:, :, None] * m[:, None, :])[inv_u])
        mean = self._feature_mean(ms) @ self._wm
        out_mean = mean * self.y_scale_ + self.y_mean_
        if not return_std:
            return out_mean
        Eww = self._second_moment_core()
        n = X.shape[0]
        second = np.empty(n)
        if self._tucker:
            w = _blocks_to_interleaved(Eww, R, K)
            step = self._chunk_rows(R ** (2 * K))
            for s in range(0, n, step):
                sl = slice(s, min(n, s + step))
                second[sl] = _rowkron([S[sl].reshape(-1, R * R) for S in Ss]) @ w
        else:
            P = Ss[0].copy()
            for S in Ss[1:]:
                P *= S
            second = np.einsum("nab,ab->n", P, Eww)
        var_f = np.maximum(second - mean ** 2, 0.0)
        noise_var = self._b / (self._a - 1.0)
        std = np.sqrt(var_f + noise_var) * self.y_scale_
        return out_mean, std

    def score(self, X, y) -> float:
        """Root-mean-square error of :meth:`predict` on ``(X, y)`` (units of ``y``; lower is better).

        Parameters
        ----------
        X : array, shape (n_samples, n_modes)
            Coordinates, as for :meth:`predict`.
        y : array, shape (n_samples,)
            Observed values.

        Returns
        -------
        float
            ``sqrt(mean((predict(X) - y)^2))``. Unlike scikit-learn's
            regressors (R^2, higher is better), lower is better here.

        Raises
        ------
        NotFittedError
            If :meth:`fit` has not been called.
        TypeError, ValueError
            If ``X`` or ``y`` is malformed or their lengths differ.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.bayes import FunctionalTucker
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(0, 1, size=(100, 2))
        >>> y = np.sin(3 * X[:, 0]) + X[:, 1]
        >>> model = FunctionalTucker(rank=2, max_iter=10, random_state=0).fit(X, y)
        >>> bool(model.score(X, y) < 0.1)
        True
        """
        X = self._check_predict_X(X)
        y = self._check_y(y, X.shape[0])
        return _rms(self.predict(X) - y)

    def get_params(self, deep: bool = True) -> dict:
        """Return the hyper-parameters as a dict (scikit-learn convention).

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn compatibility; there are no nested
            estimators.

        Returns
        -------
        dict
            Constructor argument names and their current values.

        Notes
        -----
        Reads attributes only; raises nothing of its own.

        Examples
        --------
        >>> from tensorapprox.bayes import FunctionalTucker
        >>> params = FunctionalTucker(rank=2).get_params()
        >>> params["rank"], params["kernel"], params["core"]
        (2, 'matern32', 'tucker')
        """
        names = ["rank", "kernel", "lengthscale", "variance", "core", "core_prior_var", "noise_prior",
                 "damping", "max_iter", "tol", "n_iter_no_change", "random_state", "progress", "callback"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params) -> "FunctionalTucker":
        """Set hyper-parameters (scikit-learn convention); returns ``self``.

        Parameters
        ----------
        **params
            Constructor arguments and their new values.

        Returns
        -------
        FunctionalTucker
            ``self``.

        Raises
        ------
        ValueError
            If a name is not a constructor argument.

        Examples
        --------
        >>> from tensorapprox.bayes import FunctionalTucker
        >>> model = FunctionalTucker(rank=2).set_params(rank=3, kernel="matern52")
        >>> model.rank, model.kernel
        (3, 'matern52')
        """
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; "
                                 f"valid parameters are {sorted(valid)}")
            setattr(self, key, value)
        return self
