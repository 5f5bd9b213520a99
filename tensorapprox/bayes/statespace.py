"""State-space form of Matérn Gaussian processes: Kalman filtering, RTS smoothing.

A stationary Gaussian process with a Matérn kernel of smoothness
``nu = p + 1/2`` (``p = 0, 1, 2``) is the first coordinate of the solution of
a linear time-invariant stochastic differential equation

    ds(t) = F s(t) dt + L dbeta(t),     f(t) = H s(t),

with white noise of spectral density ``q``. Over sorted coordinates the
process is a linear Gaussian state-space model with transition
``A(delta) = expm(F delta)`` and process noise
``Q(delta) = P_inf - A P_inf A'``, where the stationary covariance ``P_inf``
solves ``F P_inf + P_inf F' + L q L' = 0``. Posterior inference given
Gaussian data at the coordinates is then a Kalman filter and an RTS smoother,
linear in the number of distinct coordinates.

This module batches ``R`` independent processes (the ``R`` latent functions
of one tensor mode) into one state whose pseudo-observations may couple the
components at a site.

Notes
-----
J. Hartikainen and S. Särkkä, "Kalman filtering and smoothing solutions to
temporal Gaussian process regression models", IEEE MLSP 2010; S. Särkkä and
A. Solin, *Applied Stochastic Differential Equations*, Cambridge University
Press 2019, Sec. 12.3 (Matérn SDEs) and Ch. 10 of S. Särkkä, *Bayesian
Filtering and Smoothing* (RTS smoother).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_positive_float
from .._kernels.kalman import kalman_smoother_batched

__all__ = [
    "MATERN_KERNELS",
    "StateSpaceModel",
    "matern_state_space",
    "SmootherResult",
    "kalman_smoother",
]

MATERN_KERNELS = ("matern12", "matern32", "matern52")


@dataclass(frozen=True)
class StateSpaceModel:
    """LTI SDE ``ds = F s dt + L dbeta`` with output ``f = H s`` (one component).

    Instances are normally built by :func:`matern_state_space`, which checks
    the hyper-parameters and computes the matrices; the constructor stores
    its arguments as given. Every parameter is available as a read-only
    attribute of the same name.

    Parameters
    ----------
    kernel : str
        ``'matern12'``, ``'matern32'`` or ``'matern52'``.
    lengthscale, variance : float
        Kernel hyper-parameters.
    F : ndarray, shape (d, d)
        Feedback matrix (companion form).
    L : ndarray, shape (d, 1)
        Noise effect matrix.
    q : float
        Spectral density of the white noise.
    P_inf : ndarray, shape (d, d)
        Stationary covariance, ``F P_inf + P_inf F' + L q L' = 0``.
    H : ndarray, shape (1, d)
        Measurement matrix (the process value is the first state).

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the model is immutable). The
        constructor itself validates nothing; use :func:`matern_state_space`.

    See Also
    --------
    matern_state_space : Build the model of a Matérn kernel.

    Examples
    --------
    >>> from tensorapprox.bayes import matern_state_space
    >>> m = matern_state_space("matern32", lengthscale=0.5)
    >>> m.kernel, m.state_dim, m.F.shape, m.H.shape
    ('matern32', 2, (2, 2), (1, 2))
    """

    kernel: str
    lengthscale: float
    variance: float
    F: np.ndarray
    L: np.ndarray
    q: float
    P_inf: np.ndarray
    H: np.ndarray

    @property
    def state_dim(self) -> int:
        """Dimension ``d`` of the state of one component.

        Returns
        -------
        int
        """
        return self.F.shape[0]

    def transition(self, delta):
        """Closed-form ``A(delta) = expm(F delta)`` and ``Q(delta)``.

        Parameters
        ----------
        delta : array_like, shape (n,)
            Non-negative coordinate gaps (0 gives ``A = I``, ``Q = 0``; a
            gap far beyond the lengthscale, ``inf`` included, gives
            ``A = 0``, ``Q = P_inf``).

        Returns
        -------
        A : ndarray, shape (n, d, d)
            Transition matrices ``expm(F delta)``.
        Q : ndarray, shape (n, d, d)
            Process-noise covariances ``P_inf - A P_inf A'`` (symmetrized).

        Notes
        -----
        ``delta`` may have any shape; the outputs then have shape
        ``delta.shape + (d, d)``. This is an inner-loop helper: it raises
        nothing of its own (no validation; negative gaps are not rejected,
        but only non-negative gaps give a covariance ``Q``).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.bayes import matern_state_space
        >>> m = matern_state_space("matern32", lengthscale=0.5)
        >>> A, Q = m.transition([0.0, 0.1])
        >>> A.shape, Q.shape
        ((2, 2, 2), (2, 2, 2))
        >>> bool(np.allclose(A[0], np.eye(2)) and np.allclose(Q[0], 0.0))
        True
        """
        delta = np.asarray(delta, dtype=np.float64)
        d = self.state_dim
        lam = _rate(self.kernel, self.lengthscale)
        # F + lam*I is nilpotent (the characteristic polynomial is (s + lam)^d),
        # so expm(F delta) = exp(-lam delta) * sum_{j<d} (N delta)^j / j!.
        N = self.F + lam * np.eye(d)
        A = np.zeros(delta.shape + (d, d))
        Nj = np.eye(d)
        decay = np.exp(-lam * delta)
        # where exp(-lam delta) underflows (lam delta > 745) every entry,
        # at most (lam delta)^(d-1) exp(-lam delta), is below the smallest
        # float64: A = 0 there. Gaps of 1e200 and more overflowed delta^j
        # and gave NaN (inf * 0), an infinite gap too
        far = decay == 0.0
        near = np.where(far, 0.0, delta)
        for j in range(d):
            A += (near[..., None, None] ** j / math.factorial(j)) * Nj
            Nj = Nj @ N
        A *= decay[..., None, None]
        Q = self.P_inf - A @ self.P_inf @ np.swapaxes(A, -1, -2)
        Q = 0.5 * (Q + np.swapaxes(Q, -1, -2))
        return A, Q

    def covariance(self, tau):
        """Kernel value ``k(tau)`` (for checks): ``H A(|tau|) P_inf H'``.

        Parameters
        ----------
        tau : array_like
            Coordinate differences, any shape; the sign is ignored.

        Returns
        -------
        ndarray
            ``k(tau)``, same shape as ``tau``.

        Notes
        -----
        No validation is done; the method raises nothing of its own.

        Examples
        --------
        Matérn-3/2 with ``lam = sqrt(3) / l`` is
        ``sigma^2 (1 + lam |tau|) exp(-lam |tau|)``:

        >>> import numpy as np
        >>> from tensorapprox.bayes import matern_state_space
        >>> m = matern_state_space("matern32", lengthscale=0.5, variance=2.0)
        >>> tau = np.array([-0.3, 0.0, 0.3])
        >>> lam = np.sqrt(3.0) / 0.5
        >>> ref = 2.0 * (1 + lam * np.abs(tau)) * np.exp(-lam * np.abs(tau))
        >>> bool(np.allclose(m.covariance(tau), ref))
        True
        """
        A, _ = self.transition(np.abs(np.asarray(tau, dtype=np.float64)))
        return (A @ self.P_inf)[..., 0, 0]


def _real_scalar(value):
    """A 0-d numpy array as its numpy scalar, anything else as it is.

    A 0-d real array was rejected with ``TypeError`` where the numpy scalar
    was accepted; the scalar then goes through the usual checks (a 0-d
    complex or object array is still rejected there).
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def _rate(kernel: str, lengthscale: float) -> float:
    nu = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}[kernel]
    return math.sqrt(2.0 * nu) / lengthscale


def matern_state_space(kernel: str = "matern32", lengthscale: float = 1.0, variance: float = 1.0) -> StateSpaceModel:
    """State-space (SDE) form of a Matérn kernel with ``nu`` in {1/2, 3/2, 5/2}.

    Parameters
    ----------
    kernel : {'matern12', 'matern32', 'matern52'}, default 'matern32'
    lengthscale : float, default 1.0
        Positive length-scale ``l``.
    variance : float, default 1.0
        Positive marginal variance ``sigma^2``.

    Returns
    -------
    StateSpaceModel
        The kernel's stochastic differential equation: ``F``, ``L``,
        ``q``, ``H`` and its stationary covariance ``P_inf`` (read-only
        arrays).

    Raises
    ------
    TypeError
        ``lengthscale`` or ``variance`` is not a real number (a Python or
        numpy real scalar, or a 0-d real array).
    ValueError
        Unknown ``kernel``, non-positive or non-finite ``lengthscale`` /
        ``variance``, a ``lengthscale`` so far from 1 that powers of its
        inverse up to ``2 nu + 1`` leave float64's range, or a ``variance``
        so far from 1 that its products with those powers (the spectral
        density ``q`` and the stationary covariance) leave float64's range;
        the message names the argument at fault.

    Notes
    -----
    With ``lam = sqrt(2 nu) / l`` the spectral density of the Matérn kernel is
    ``q / |i w + lam|^(2p + 2)``, ``q = sigma^2 (p!)^2 (2 lam)^(2p+1) / (2p)!``
    (Hartikainen & Särkkä 2010, Sec. 3); ``F`` is the companion matrix of
    ``(s + lam)^(p+1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.bayes import matern_state_space
    >>> m = matern_state_space("matern52", lengthscale=0.7, variance=2.0)
    >>> lyap = m.F @ m.P_inf + m.P_inf @ m.F.T + m.q * m.L @ m.L.T
    >>> bool(np.allclose(lyap, 0.0, atol=1e-12))
    True
    """
    check_choice(kernel, name="kernel", choices=MATERN_KERNELS)
    ell = check_positive_float(_real_scalar(lengthscale), name="lengthscale")
    s2 = check_positive_float(_real_scalar(variance), name="variance")
    lam = _rate(kernel, ell)
    p = {"matern12": 0, "matern32": 1, "matern52": 2}[kernel]
    d = p + 1
    try:
        coeffs = [math.comb(d, j) * lam ** (d - j) for j in range(d)]  # (s+lam)^d = s^d + ... + lam^d
        lam_q = (2.0 * lam) ** (2 * p + 1)
        lam_top = lam ** (2 * p)
    except OverflowError:
        lam_q = lam_top = math.inf
    # powers of 1 / lengthscale up to 2p + 1 must be normal float64 numbers:
    # a lengthscale of 1e-80 (matern52) raised OverflowError, 1e160 gave a
    # singular stationary covariance and NaN
    if not (0.0 < lam_q < math.inf and 0.0 < lam_top < math.inf and np.isfinite(coeffs).all()):
        raise ValueError(f"lengthscale = {ell:g} is outside what the {kernel} state-space form represents in "
                         f"float64 (powers of 1/lengthscale up to {2 * p + 1} must stay finite and nonzero); "
                         "rescale the inputs")
    q = s2 * math.factorial(p) ** 2 * lam_q / math.factorial(2 * p)
    top = s2 * lam_top  # the last state's stationary variance, up to a constant
    # the lengthscale's powers are representable, so it is the variance that
    # takes these products out of range: variance 1e307 with lengthscale 0.5
    # (matern52) overflowed and was reported as a bad lengthscale
    if not (0.0 < q < math.inf and 0.0 < top < math.inf):
        raise ValueError(f"variance = {s2:g} is outside what the {kernel} state-space form with lengthscale = "
                         f"{ell:g} represents in float64 (variance times powers of 1/lengthscale up to "
                         f"{2 * p + 1} must stay finite and nonzero); rescale the values so that the "
                         "variance is nearer 1")
    F = np.zeros((d, d))
    F[: d - 1, 1:] = np.eye(d - 1)
    F[d - 1, :] = [-coeffs[j] for j in range(d)]
    L = np.zeros((d, 1))
    L[d - 1, 0] = 1.0
    if p == 0:
        P_inf = np.array([[s2]])
    elif p == 1:
        P_inf = np.diag([s2, lam ** 2 * s2])
    else:
        k2 = s2 * lam ** 2 / 3.0
        P_inf = np.array([[s2, 0.0, -k2], [0.0, k2, 0.0], [-k2, 0.0, s2 * lam ** 4]])
    H = np.zeros((1, d))
    H[0, 0] = 1.0
    for a in (F, L, P_inf, H):  # an immutable value: a SmootherResult keeps the model it was built with
        a.flags.writeable = False
    return StateSpaceModel(kernel, ell, s2, F, L, q, P_inf, H)


@dataclass(frozen=True)
class SmootherResult:
    """Filtered and smoothed states of ``R`` batched processes at sorted sites.

    Returned by :func:`kalman_smoother`; the constructor stores its
    arguments as given. Every parameter is available as a read-only
    attribute of the same name.

    Parameters
    ----------
    model : StateSpaceModel
        Prior of every component.
    sites : ndarray, shape (n,)
        Strictly increasing coordinates.
    n_components : int
        Number ``R`` of batched processes.
    pred_mean : ndarray, shape (n, R*d)
        One-step predicted state means.
    pred_cov : ndarray, shape (n, R*d, R*d)
        One-step predicted state covariances.
    filt_mean : ndarray, shape (n, R*d)
        Filtered state means.
    filt_cov : ndarray, shape (n, R*d, R*d)
        Filtered state covariances.
    smooth_mean : ndarray, shape (n, R*d)
        Smoothed (posterior) state means.
    smooth_cov : ndarray, shape (n, R*d, R*d)
        Smoothed (posterior) state covariances.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the result is immutable). The
        constructor itself validates nothing.

    See Also
    --------
    kalman_smoother : Compute the result.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.bayes import matern_state_space, kalman_smoother
    >>> t = np.linspace(0.0, 1.0, 5)
    >>> res = kalman_smoother(matern_state_space("matern32", 0.5), t,
    ...                       np.full((5, 1, 1), 100.0), 100.0 * np.sin(3 * t)[:, None])
    >>> res.n_components, res.smooth_mean.shape, res.smooth_cov.shape
    (1, (5, 2), (5, 2, 2))
    """

    model: StateSpaceModel
    sites: np.ndarray
    n_components: int
    pred_mean: np.ndarray
    pred_cov: np.ndarray
    filt_mean: np.ndarray
    filt_cov: np.ndarray
    smooth_mean: np.ndarray
    smooth_cov: np.ndarray

    def marginals(self):
        """Posterior means and covariances of the R processes at the sites.

        Returns
        -------
        mean : ndarray, shape (n, R)
            Posterior means of the process values.
        cov : ndarray, shape (n, R, R)
            Posterior covariances of the process values at each site.

        Notes
        -----
        Reads the stored smoothed states; raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.bayes import matern_state_space, kalman_smoother
        >>> t = np.linspace(0.0, 1.0, 5)
        >>> y = np.sin(3 * t)
        >>> res = kalman_smoother(matern_state_space("matern32", 0.5), t,
        ...                       np.full((5, 1, 1), 100.0), 100.0 * y[:, None])
        >>> mean, cov = res.marginals()
        >>> mean.shape, cov.shape
        ((5, 1), (5, 1, 1))
        >>> bool(np.max(np.abs(mean[:, 0] - y)) < 0.05)
        True
        """
        return _observe(self.smooth_mean, self.smooth_cov, self.n_components, self.model.state_dim)

    def predict(self, x):
        """Posterior of the R processes at arbitrary coordinates.

        Inside the range the exact Markov conditional is used: the filtered
        state of the left neighbour is propagated to ``x`` and one RTS step
        against the smoothed right neighbour is taken. Right of the last site
        the smoothed last state is propagated; left of the first site the
        stationary backward conditional ``s(x) | s(t_0)`` is applied, whose
        covariance ``P_inf - B A P_inf`` (``B = P_inf A' P_inf^{-1}``) is
        positive semi-definite.

        Parameters
        ----------
        x : array_like, shape (m,)
            Coordinates (any order; flattened), inside or outside the range
            of the sites.

        Returns
        -------
        mean : ndarray, shape (m, R)
            Posterior means of the process values at ``x``.
        cov : ndarray, shape (m, R, R)
            Posterior covariances of the process values at ``x``.

        Notes
        -----
        ``x`` is not validated; the method raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.bayes import matern_state_space, kalman_smoother
        >>> t = np.linspace(0.0, 1.0, 5)
        >>> y = np.sin(3 * t)
        >>> res = kalman_smoother(matern_state_space("matern32", 0.5), t,
        ...                       np.full((5, 1, 1), 100.0), 100.0 * y[:, None])
        >>> mean, cov = res.predict([0.1, 0.5])
        >>> mean.shape, cov.shape
        ((2, 1), (2, 1, 1))
        >>> bool(np.max(np.abs(mean[:, 0] - np.sin(3 * np.array([0.1, 0.5])))) < 0.05)
        True
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        m, P = _predict_states(self, x)
        return _observe(m, P, self.n_components, self.model.state_dim)


def _observe(mean, cov, R, d):
    idx = np.arange(R) * d
    return mean[:, idx], cov[:, idx[:, None], idx[None, :]]


def _bd(A, R):
    """Block-diagonal ``I_R kron A`` for a stack ``A`` of shape (m, d, d)."""
    m, d = A.shape[0], A.shape[1]
    out = np.zeros((m, R * d, R * d))
    for r in range(R):
        out[:, r * d:(r + 1) * d, r * d:(r + 1) * d] = A
    return out


def _sym(P):
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def _predict_states(res: SmootherResult, x):
    model, t, R = res.model, res.sites, res.n_components
    d = model.state_dim
    D = R * d
    n = t.shape[0]
    mean = np.empty((x.shape[0], D))
    cov = np.empty((x.shape[0], D, D))
    Pinf = _bd(model.P_inf[None], R)[0]
    pos = np.searchsorted(t, x, side="right") - 1  # left neighbour index, -1 if before t[0]
    # before the first site: stationary backward conditional
    left = pos < 0
    if np.any(left):
        A, _ = model.transition(t[0] - x[left])
        A = _bd(A, R)
        # B = P_inf A' P_inf^{-1}  (P_inf symmetric) -> B' = solve(P_inf, A P_inf)
        B = np.swapaxes(np.linalg.solve(Pinf[None], A @ Pinf[None]), -1, -2)
        mean[left] = (B @ res.smooth_mean[0][None, :, None])[..., 0]
        cond = Pinf[None] - B @ A @ Pinf[None]
        cov[left] = _sym(B @ res.smooth_cov[0][None] @ np.swapaxes(B, -1, -2) + _sym(cond))
    # after the last site (or exactly on it): propagate the smoothed last state
    right = pos >= n - 1
    if np.any(right):
        A, Q = model.transition(x[right] - t[-1])
        A, Q = _bd(A, R), _bd(Q, R)
        mean[right] = (A @ res.smooth_mean[-1][None, :, None])[..., 0]
        cov[right] = _sym(A @ res.smooth_cov[-1][None] @ np.swapaxes(A, -1, -2) + Q)
    inside = ~left & ~right
    if np.any(inside):
        i = pos[inside]
        xi = x[inside]
        A1, Q1 = model.transition(xi - t[i])
        A2, Q2 = model.transition(t[i + 1] - xi)
        A1, Q1, A2, Q2 = _bd(A1, R), _bd(Q1, R), _bd(A2, R), _bd(Q2, R)
        mf = (A1 @ res.filt_mean[i][..., None])[..., 0]
        Pf = _sym(A1 @ res.filt_cov[i] @ np.swapaxes(A1, -1, -2) + Q1)
        mp = (A2 @ mf[..., None])[..., 0]
        Pp = _sym(A2 @ Pf @ np.swapaxes(A2, -1, -2) + Q2)
        A2Pf = A2 @ Pf
        Gt = np.linalg.solve(Pp, A2Pf)           # G' = Pp^{-1} A2 Pf
        G = np.swapaxes(Gt, -1, -2)
        mean[inside] = mf + (G @ (res.smooth_mean[i + 1] - mp)[..., None])[..., 0]
        IGA = np.eye(D)[None] - G @ A2
        cov[inside] = _sym(IGA @ Pf @ np.swapaxes(IGA, -1, -2) + G @ (Q2 + res.smooth_cov[i + 1]) @ Gt)
    return mean, cov


def kalman_smoother(model: StateSpaceModel, sites, precision, information) -> SmootherResult:
    """Kalman filter and RTS smoother of ``R`` batched GP components.

    Parameters
    ----------
    model : StateSpaceModel
        Prior of every component (see :func:`matern_state_space`).
    sites : array_like, shape (n,)
        Strictly increasing coordinates (merge duplicates beforehand by
        summing their precisions and information vectors).
    precision : array_like, shape (n, R, R)
        Symmetric positive semi-definite pseudo-observation precisions of
        the component values at each site (zero where a site has no data).
    information : array_like, shape (n, R)
        Pseudo-observation information vectors (precision times mean).

    Returns
    -------
    SmootherResult
        Predicted, filtered and smoothed state means and covariances at
        every site. Its arrays, ``sites`` included (a copy of the input), are
        its own and read-only: later changes to the caller's arrays do not
        affect it. ``model`` is stored as given (the arrays of a model from
        :func:`matern_state_space` are read-only).

    Raises
    ------
    TypeError
        ``model`` is not a :class:`StateSpaceModel`, or ``sites``,
        ``precision`` or ``information`` does not hold real numbers
        (complex, string or object data; the message names the argument).
    ValueError
        ``sites`` is not 1-D or is empty, shapes disagree, sites are not
        strictly increasing, inputs are not finite, or a precision is not
        symmetric positive semi-definite.

    Notes
    -----
    Hartikainen & Särkkä (2010); Joseph-form measurement update in
    information form (no inverse of the precision), Joseph-form RTS step,
    symmetrization after every step, linear solves instead of inverses.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.bayes import matern_state_space, kalman_smoother
    >>> t = np.linspace(0.0, 1.0, 5)
    >>> y = np.sin(3 * t)
    >>> res = kalman_smoother(matern_state_space("matern32", 0.5), t,
    ...                       np.full((5, 1, 1), 100.0), 100.0 * y[:, None])
    >>> mean, cov = res.marginals()
    >>> bool(np.max(np.abs(mean[:, 0] - y)) < 0.05)
    True
    """
    if not isinstance(model, StateSpaceModel):  # an AttributeError deep in the filter before
        raise TypeError(f"model must be a StateSpaceModel (see matern_state_space), got {type(model).__name__}")
    sites = _real_array(sites, "sites")
    precision = _real_array(precision, "precision")
    information = _real_array(information, "information")
    if sites.ndim != 1:
        raise ValueError(f"sites must be 1-D with shape (n_sites,), got shape {sites.shape}; "
                         "pass one coordinate per site (flatten it yourself if that is what you mean)")
    n = sites.shape[0]
    if n < 1:
        raise ValueError("sites is empty; give at least one coordinate")
    if precision.ndim != 3 or precision.shape[0] != n or precision.shape[1] != precision.shape[2]:
        raise ValueError(f"precision must have shape (n_sites, R, R) = ({n}, R, R), got {precision.shape}")
    R = precision.shape[1]
    if information.shape != (n, R):
        raise ValueError(f"information must have shape ({n}, {R}), got {information.shape}")
    for name, a in (("sites", sites), ("precision", precision), ("information", information)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or Inf values")
    if n > 1 and not np.all(np.diff(sites) > 0):
        raise ValueError("sites must be strictly increasing; sort them and merge duplicates first")
    # a negative or non-symmetric precision reached the Numba solver, which
    # divided by zero; the public entry checks (the model fits call _smooth
    # directly with precisions they build as sums of outer products)
    # tolerances per site: scaled by the largest precision of all sites, a
    # clearly negative site passed beside a large one (a negative variance)
    asym = np.abs(precision - np.swapaxes(precision, 1, 2)).max(axis=(1, 2), initial=0.0)
    size = np.abs(precision).max(axis=(1, 2), initial=0.0)
    if np.any(asym > 1e-12 * size):
        raise ValueError("precision must be symmetric in its last two axes")
    low = np.linalg.eigvalsh(0.5 * (precision + np.swapaxes(precision, 1, 2))).min(axis=1, initial=0.0)
    bad = low < -1e-12 * size * R
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"precision must be positive semi-definite; site {i} has eigenvalue {low[i]:.3g}")
    # the result keeps its own read-only copy of the sites: it held a view of
    # the caller's array and its predictions changed when the caller reused it
    sites = np.array(sites, dtype=np.float64, copy=True)
    res = _smooth(model, sites, precision, information)
    for a in (res.sites, res.pred_mean, res.pred_cov, res.filt_mean, res.filt_cov, res.smooth_mean,
              res.smooth_cov):
        a.flags.writeable = False
    return res


def _real_array(a, name: str) -> np.ndarray:
    """``a`` as a float64 numpy array; ``TypeError`` naming ``name`` unless it holds real numbers.

    Complex input lost its imaginary part with only a ``ComplexWarning``.
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def _smooth(model, sites, precision, information) -> SmootherResult:
    """Inner smoother (inputs trusted)."""
    delta = np.concatenate([[0.0], np.diff(sites)])
    A, Q = model.transition(delta)
    out = kalman_smoother_batched(A, Q, model.P_inf, precision, information)
    return SmootherResult(model, sites, precision.shape[1], *out)
