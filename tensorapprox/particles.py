"""Multi-particle potentials: the Newton kernel, its range separation, and
long-range potentials in the Chebyshev-Tucker format.

The Newton kernel ``1/r`` has the integral representation

    1/r = 2/sqrt(pi) * int_{-inf}^{inf} exp(-r^2 e^{2s} + s) ds,

whose sinc quadrature is an exponential sum ``sum_l w_l exp(-a_l r^2)``: a
sum of separable Gaussians, i.e. a canonical (CP) tensor on any grid. The
range-separated format splits the sum into the long-range terms (small
``a_l``: wide, smooth Gaussians) and the short-range rest. The closed-form
long-range kernel is ``erf(r / r_c) / r = 2/sqrt(pi) int_0^{1/r_c}
exp(-r^2 t^2) dt``; a Gauss-Legendre rule on it gives the exponential sum
used by :func:`long_range_potential`.

References: P. Benner, V. Khoromskaia, B. Khoromskij, "Range-separated
tensor format for many-particle modeling", SIAM J. Sci. Comput. 40 (2018);
B. Khoromskij, B. Sun, arXiv:2503.01696 (Chebyshev-Tucker format).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._array import check_random_state, to_numpy
from ._kernels.particles import KIND_ERF, KIND_ERFC, KIND_EXPSUM, KIND_NEWTON, _kernel_values, direct_sum
from ._validation import check_bool, check_int, check_positive_float, check_rtol
from .tensor import _pow2_exponent, _times_pow2

__all__ = [
    "ExpSum",
    "newton_kernel",
    "long_range_kernel",
    "short_range_kernel",
    "newton_exp_sum",
    "long_range_exp_sum",
    "lattice",
    "random_cluster",
    "direct_potential",
    "long_range_potential",
]

_SQRT_PI = math.sqrt(math.pi)


# --------------------------------------------------------------------------- #
# kernels
# --------------------------------------------------------------------------- #
def _check_distances(r):
    """``r`` as float64, every entry ``>= 0`` (NaN passes through).

    These are kernels of a distance: at ``r < 0`` the long-range kernel
    returned its value at 0 (1.128 at r = -1 and r_c = 1, not erf(1) = 0.843)
    while the Newton and short-range kernels returned negative values.
    """
    r = np.asarray(r, dtype=np.float64)
    if np.any(r < 0.0):
        raise ValueError(f"r must hold distances >= 0, got {float(np.min(r))}")
    return r


def newton_kernel(r):
    """The Newton kernel ``1 / r`` (``inf`` at ``r = 0``).

    Parameters
    ----------
    r : array_like
        Distances (any shape), ``>= 0``.

    Returns
    -------
    ndarray
        ``1 / r`` as float64, same shape as ``r``.

    Raises
    ------
    TypeError, ValueError
        If ``r`` cannot be converted to a float array (numpy's errors).
    ValueError
        If ``r`` has a negative entry.

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> tp.newton_kernel(np.array([0.5, 2.0]))
    array([2. , 0.5])
    """
    r = _check_distances(r)
    with np.errstate(divide="ignore"):
        return 1.0 / r


def long_range_kernel(r, r_c: float):
    """The long-range kernel ``erf(r / r_c) / r``, equal to ``2 / (r_c sqrt(pi))`` at 0.

    Parameters
    ----------
    r : array_like
        Distances (any shape), ``>= 0``.
    r_c : float
        Range-separation radius, ``> 0``.

    Returns
    -------
    ndarray
        The kernel, float64, same shape as ``r``; smooth (no singularity).

    Raises
    ------
    TypeError, ValueError
        If ``r_c`` is not a positive finite number, or ``r`` has a negative
        entry.

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> np.round(tp.long_range_kernel(np.array([0.0, 10.0]), 0.5), 6)
    array([2.256758, 0.1     ])
    """
    from scipy.special import erf

    r_c = check_positive_float(r_c, name="r_c")
    r = _check_distances(r)
    small = r < 1e-8 * r_c
    rs = np.where(small, 1.0, r)
    return np.where(small, 2.0 / (r_c * _SQRT_PI), erf(rs / r_c) / rs)


def short_range_kernel(r, r_c: float):
    """The short-range kernel ``erfc(r / r_c) / r = 1/r - erf(r / r_c)/r``.

    Parameters
    ----------
    r : array_like
        Distances (any shape), ``>= 0``.
    r_c : float
        Range-separation radius, ``> 0``.

    Returns
    -------
    ndarray
        The kernel, float64, same shape as ``r`` (``inf`` at ``r = 0``);
        it decays like ``exp(-r^2 / r_c^2)``.

    Raises
    ------
    TypeError, ValueError
        If ``r_c`` is not a positive finite number, or ``r`` has a negative
        entry.

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> bool(tp.short_range_kernel(np.array([5.0]), 0.1)[0] < 1e-300)
    True
    """
    from scipy.special import erfc

    r_c = check_positive_float(r_c, name="r_c")
    r = _check_distances(r)
    with np.errstate(divide="ignore"):
        return erfc(r / r_c) / r


@dataclass(frozen=True, eq=False)
class ExpSum:
    """An exponential sum ``K(r) = sum_l weights[l] * exp(-alphas[l] * r**2)``.

    Each term is a separable Gaussian, so ``K(|x - p|)`` is a rank-one
    tensor in ``x`` per term.

    Parameters
    ----------
    alphas : array_like, shape (L,)
        Exponents, ``>= 0`` (sorted on construction).
    weights : array_like, shape (L,)
        Weights of the terms.

    Attributes
    ----------
    alphas : ndarray, shape (L,)
        Exponents, ascending (the widest Gaussian first); read-only.
    weights : ndarray, shape (L,)
        Weights, in the order of ``alphas``; read-only.

    Raises
    ------
    ValueError
        If the arrays are not 1-D of one non-zero length, or hold NaN/Inf or
        negative exponents.

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> K = tp.ExpSum(alphas=[4.0, 1.0], weights=[0.5, 2.0])
    >>> K.alphas, K.n_terms
    (array([1., 4.]), 2)
    >>> float(K(0.0))
    2.5
    """

    alphas: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        a = np.array(self.alphas, dtype=np.float64)
        w = np.array(self.weights, dtype=np.float64)
        if a.ndim != 1 or a.shape != w.shape or a.size == 0:
            raise ValueError(f"alphas and weights must be 1-D of one length, got {a.shape} and {w.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(w)) and np.all(a >= 0)):
            raise ValueError("alphas must be finite and >= 0, weights finite")
        order = np.argsort(a, kind="stable")
        a, w = a[order], w[order]
        a.flags.writeable = False
        w.flags.writeable = False
        object.__setattr__(self, "alphas", a)
        object.__setattr__(self, "weights", w)

    def __eq__(self, other):
        # the generated comparison compared arrays as tuples: "truth value
        # of an array is ambiguous"
        if not isinstance(other, ExpSum):
            return NotImplemented
        return bool(np.array_equal(self.alphas, other.alphas) and np.array_equal(self.weights, other.weights))

    def __hash__(self):
        # + 0.0 turns -0.0 into 0.0, which __eq__ treats as equal
        return hash(((self.alphas + 0.0).tobytes(), (self.weights + 0.0).tobytes()))

    @property
    def n_terms(self) -> int:
        """Number of terms ``L``.

        Returns
        -------
        int
        """
        return int(self.alphas.shape[0])

    def __call__(self, r):
        """Evaluate the sum at distances ``r``.

        Parameters
        ----------
        r : array_like
            Distances, any shape.

        Returns
        -------
        ndarray
            ``K(r)``, float64, of ``r``'s shape.

        Examples
        --------
        >>> import numpy as np, tensorapprox.particles as tp
        >>> K = tp.ExpSum(alphas=[4.0, 1.0], weights=[0.5, 2.0])
        >>> bool(np.isclose(K(1.0), 0.5 * np.exp(-4.0) + 2.0 * np.exp(-1.0)))
        True
        """
        r = np.asarray(r, dtype=np.float64)
        # as direct_potential: r * r overflowed above r = 1.3e154 (and
        # underflowed below 1e-154) although alphas * r^2 is moderate
        return _kernel_values(r, KIND_EXPSUM, 1.0, self.alphas, self.weights)

    def split(self, r_c: float | None = None, *, n_long: int | None = None) -> tuple["ExpSum", "ExpSum | None"]:
        """Range separation: ``(long-range terms, short-range terms)``.

        Parameters
        ----------
        r_c : float, optional
            Terms with ``alphas <= 1 / r_c**2`` (Gaussians at least as wide as
            ``r_c``) are long-range.
        n_long : int, optional
            Take the ``n_long`` widest terms instead.

        Returns
        -------
        long : ExpSum
            The widest terms (small ``alphas``).
        short : ExpSum or None
            The remaining terms; ``None`` when every term is long-range.

        Raises
        ------
        ValueError
            If both or neither of ``r_c`` and ``n_long`` are given, ``r_c``
            is not a finite positive number or no term is long-range for
            it, or ``n_long`` is outside ``[1, n_terms]``.
        TypeError
            If ``r_c`` is not a real number or ``n_long`` is not an int.

        Examples
        --------
        >>> import tensorapprox.particles as tp
        >>> K = tp.newton_exp_sum(rtol=1e-6)
        >>> long, short = K.split(n_long=10)
        >>> long.n_terms + short.n_terms == K.n_terms
        True
        """
        if (r_c is None) == (n_long is None):
            raise ValueError("give exactly one of r_c and n_long")
        if r_c is not None:
            r_c = check_positive_float(r_c, name="r_c")
            # (1 / r_c)^2, not 1 / r_c^2: r_c^2 underflowed to 0 below 1e-154
            # (a product, which goes to inf where ** raised OverflowError)
            inv = 1.0 / r_c
            n = int(np.searchsorted(self.alphas, inv * inv, side="right"))
        else:
            n = check_int(n_long, name="n_long", minimum=1, maximum=self.n_terms)
        if n == 0:
            raise ValueError(f"no term is long-range for r_c = {r_c}; increase r_c")
        long = ExpSum(self.alphas[:n], self.weights[:n])
        short = ExpSum(self.alphas[n:], self.weights[n:]) if n < self.n_terms else None
        return long, short


# beyond 2^511 the spacing of the subnormal exponents (2^-1074) times r^2
# exceeds float64's rounding: exponents below the normal range spoil the sum
_R_MAX_SUBNORMAL_EXPONENTS = 511


def _to_length_unit(alphas, weights, e: int, r_max: float, what: str) -> ExpSum:
    """The exponential sum computed in the length unit ``2^e``, in the caller's unit (exact).

    With ``r = 2^e rho``, ``w exp(-a rho^2) / 2^e`` is ``(w 2^-e) exp(-(a 2^-2e) r^2)``
    for a kernel ``~ 1/length``; ``ValueError`` naming ``what`` where the
    exponents or weights do not fit float64 in the caller's unit.
    """
    with np.errstate(over="ignore", under="ignore"):
        a = np.ldexp(alphas, -2 * e)
        w = np.ldexp(weights, -e)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(w))):
        raise ValueError(f"{what}: the exponents of the Gaussians (about 1/length^2) or their weights "
                         "overflow float64; rescale the lengths (e.g. to units of r_max)")
    lost = (alphas > 0.0) & (a < np.finfo(np.float64).tiny)
    if np.any(lost) and _pow2_exponent(r_max) > _R_MAX_SUBNORMAL_EXPONENTS:
        raise ValueError(f"{what}: the exponents of the Gaussians (about 1/length^2) fall below float64's "
                         "normal range, where their rounding spoils exp(-a r^2) up to r_max; rescale the lengths "
                         "(e.g. to units of r_max)")
    return ExpSum(a, w)


def newton_exp_sum(rtol: float = 1e-8, r_min: float = 1e-3, r_max: float = 2 * math.sqrt(3)) -> ExpSum:
    """Sinc-quadrature exponential sum of ``1/r`` on ``[r_min, r_max]``.

    Parameters
    ----------
    rtol : float, default 1e-8
        Target relative accuracy on ``[r_min, r_max]``.
    r_min, r_max : float
        The range of distances, ``0 < r_min < r_max``.

    Returns
    -------
    ExpSum
        Terms whose sum approximates ``1/r`` to ``rtol`` (relative) on
        ``[r_min, r_max]``.

    Raises
    ------
    ValueError
        If ``rtol`` is outside (0, 1), ``r_min`` or ``r_max`` is not
        positive, ``r_min >= r_max``, or the exponents (about ``1/r_min^2``
        down to ``rtol^2/r_max^2``) do not fit float64 (lengths beyond about
        ``1e+-150``: the message names ``r_min`` and ``r_max``).

    Notes
    -----
    Substituting ``t = e^s`` in ``1/r = 2/sqrt(pi) int_0^inf exp(-r^2 t^2) dt``
    gives an integrand analytic in the strip ``|Im s| < pi/4``, so the
    trapezoidal (sinc) rule with step ``h`` errs by about
    ``exp(-pi^2 / (2h))``; the range of ``s`` is cut where the tails fall
    below the tolerance (Braess, Hackbusch; Khoromskij).

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> K = tp.newton_exp_sum(rtol=1e-8, r_min=1e-2, r_max=2.0)
    >>> r = np.geomspace(1e-2, 2.0, 500)
    >>> bool(np.max(np.abs(K(r) * r - 1)) < 1e-8)
    True
    """
    rtol = check_rtol(rtol)
    r_min = check_positive_float(r_min, name="r_min")
    r_max = check_positive_float(r_max, name="r_max")
    if not r_min < r_max:
        raise ValueError(f"need r_min < r_max, got r_min={r_min}, r_max={r_max}")
    what = f"r_min = {r_min:g}, r_max = {r_max:g}"
    # in the length unit 2^e at the geometric mean of r_min and r_max, then
    # rescaled exactly: exponents near 1/r_min^2 overflowed for r_min below
    # 1e-154 and the error blamed alphas, which the caller never passed
    e = (_pow2_exponent(r_min) + _pow2_exponent(r_max)) // 2
    r_min_u, r_max_u = math.ldexp(r_min, -e), math.ldexp(r_max, -e)
    if r_min_u == 0.0 or not math.isfinite(r_max_u):
        raise ValueError(f"{what}: r_max / r_min exceeds float64's range")
    tol = rtol / 4.0
    h = math.pi**2 / (2.0 * math.log(4.0 / tol))
    s_lo = math.log(tol * _SQRT_PI / (2.0 * r_max_u))
    s_hi = math.log((math.sqrt(math.log(2.0 / tol)) + 2.0) / r_min_u)
    s = s_lo + h * np.arange(int(math.ceil((s_hi - s_lo) / h)) + 1)
    with np.errstate(over="ignore"):
        alphas, weights = np.exp(2.0 * s), (2.0 / _SQRT_PI) * h * np.exp(s)
    if not np.all(np.isfinite(alphas)):
        raise ValueError(f"{what}: the exponents of the Gaussians span about (r_max / r_min)^2 and overflow "
                         "float64; narrow the range of distances")
    return _to_length_unit(alphas, weights, e, r_max, what)


def long_range_exp_sum(r_c: float, r_max: float, rtol: float = 1e-12, *, max_terms: int = 400) -> ExpSum:
    """Gauss-Legendre exponential sum of ``erf(r / r_c) / r`` on ``[0, r_max]``.

    The number of nodes doubles until the maximum error on ``[0, r_max]`` is
    at most ``rtol * 2 / (r_c sqrt(pi))`` (the kernel's maximum).

    Parameters
    ----------
    r_c : float
        Range-separation radius, ``> 0``.
    r_max : float
        Largest distance of interest, ``> 0``.
    rtol : float in (0, 1), default 1e-12
        Accuracy relative to the kernel's maximum.
    max_terms : int, default 400
        Cap on the number of terms.

    Returns
    -------
    ExpSum
        The Gaussian terms; their sum matches ``erf(r / r_c) / r`` on
        ``[0, r_max]`` to the tolerance.

    Raises
    ------
    ValueError
        If an argument is out of range, ``max_terms`` terms do not reach
        ``rtol`` (the message says what to change), or the exponents (about
        ``1/r_c^2``) do not fit float64 (lengths beyond about ``1e+-150``:
        the message names ``r_c`` and ``r_max``).

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> K = tp.long_range_exp_sum(0.2, 3.0, rtol=1e-12)
    >>> r = np.linspace(0, 3, 1001)
    >>> bool(np.max(np.abs(K(r) - tp.long_range_kernel(r, 0.2))) < 1e-11)
    True
    """
    r_c = check_positive_float(r_c, name="r_c")
    r_max = check_positive_float(r_max, name="r_max")
    rtol = check_rtol(rtol)
    max_terms = check_int(max_terms, name="max_terms", minimum=2)
    what = f"r_c = {r_c:g}, r_max = {r_max:g}"
    # in the length unit 2^e near r_c, then rescaled exactly: r^2 overflowed
    # beyond 1.3e154 (and the exponents 1/r_c^2 below 1e-154), and the errors
    # claimed more than max_terms terms were needed or blamed alphas, which
    # the caller never passed
    e = _pow2_exponent(r_c)
    r_max_u = math.ldexp(r_max, -e)
    if r_max_u == 0.0 or not math.isfinite(r_max_u):
        raise ValueError(f"{what}: r_max / r_c is beyond float64's range")
    r = np.linspace(0.0, r_max_u, 4001)
    r_c_u = math.ldexp(r_c, -e)
    ref = long_range_kernel(r, r_c_u)
    scale = 2.0 / (r_c_u * _SQRT_PI)
    T = 1.0 / r_c_u
    L = min(4, max_terms)
    while True:
        x, w = np.polynomial.legendre.leggauss(L)
        t = 0.5 * T * (x + 1.0)
        K = ExpSum(t * t, (2.0 / _SQRT_PI) * 0.5 * T * w)
        err = float(np.max(np.abs(K(r) - ref)))
        if err <= rtol * scale:
            # shrink back to the smallest L between L/2 and L that meets it
            lo = L // 2 + 1
            best = K
            for L2 in range(lo, L):
                x, w = np.polynomial.legendre.leggauss(L2)
                t = 0.5 * T * (x + 1.0)
                K2 = ExpSum(t * t, (2.0 / _SQRT_PI) * 0.5 * T * w)
                if float(np.max(np.abs(K2(r) - ref))) <= rtol * scale:
                    best = K2
                    break
            return _to_length_unit(best.alphas, best.weights, e, r_max, what)
        if L >= max_terms:
            raise ValueError(f"erf(r/r_c)/r needs more than {max_terms} terms for rtol={rtol:g} on "
                             f"[0, {r_max:g}] with r_c={r_c:g}; loosen rtol or raise max_terms")
        L = min(2 * L, max_terms)


# --------------------------------------------------------------------------- #
# particle systems
# --------------------------------------------------------------------------- #
def lattice(shape: Sequence[int] = (4, 4, 4), spacing: float = 1.0, *, center=None, alternating: bool = True,
            vacancies=0, random_state=None) -> tuple[np.ndarray, np.ndarray]:
    """Place charges on a rectangular lattice, optionally alternating and with vacancies.

    Parameters
    ----------
    shape : sequence of int
        Sites per axis (the dimension is ``len(shape)``).
    spacing : float, default 1.0
        Distance between neighbouring sites, ``> 0``.
    center : sequence of float, optional
        Center of the lattice (the origin by default).
    alternating : bool, default True
        Charges ``(-1)^(i+j+k)`` (rock-salt pattern); else all ``+1``.
    vacancies : int, float or array of int, default 0
        Sites to remove: a count, a fraction in ``[0, 1)`` (drawn with
        ``random_state``), or explicit flat site indices.
    random_state : None, int or numpy.random.Generator
        Seed of the random vacancies.

    Returns
    -------
    positions : ndarray, shape (N, d)
        Coordinates of the remaining sites.
    charges : ndarray, shape (N,)
        Their charges, ``+1`` or ``-1``.

    Raises
    ------
    TypeError
        If ``shape`` is not a sequence of ints or ``vacancies`` has an
        unsupported type.
    ValueError
        If ``shape`` is empty or not positive, ``spacing`` is not positive
        or puts sites beyond float64's range, ``center`` has the wrong
        length or is not finite, or ``vacancies`` is out of range or removes
        every site.

    Examples
    --------
    >>> import tensorapprox.particles as tp
    >>> pos, q = tp.lattice((3, 3, 3), 0.5, vacancies=2, random_state=0)
    >>> pos.shape, float(abs(q).sum())
    ((25, 3), 25.0)
    """
    try:
        shape = tuple(check_int(s, name="shape", minimum=1) for s in shape)
    except TypeError as exc:
        raise TypeError(f"shape must be a sequence of ints: {exc}") from None
    if not shape:
        raise ValueError("shape must have at least one entry")
    spacing = check_positive_float(spacing, name="spacing")
    d = len(shape)
    center = np.zeros(d) if center is None else np.asarray(center, dtype=np.float64)
    if center.shape != (d,):
        raise ValueError(f"center must have {d} entries, got shape {center.shape}")
    if not np.all(np.isfinite(center)):
        raise ValueError(f"center must be finite, got {center.tolist()}")
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).reshape(-1, d)
    with np.errstate(over="ignore", invalid="ignore"):
        pos = (idx - (np.asarray(shape) - 1) / 2.0) * spacing + center
    if not np.all(np.isfinite(pos)):
        # infinite positions were returned with a RuntimeWarning only
        raise ValueError(f"spacing = {spacing:g} (with center {center.tolist()}) places sites beyond float64's "
                         "range; use a smaller spacing or rescale the coordinates")
    q = np.where(idx.sum(axis=1) % 2 == 0, 1.0, -1.0) if alternating else np.ones(idx.shape[0])
    n = idx.shape[0]
    if isinstance(vacancies, (numbers.Integral, np.integer)) and not isinstance(vacancies, bool):
        count = check_int(vacancies, name="vacancies", minimum=0, maximum=n - 1)
        drop = check_random_state(random_state).choice(n, size=count, replace=False) if count else []
    elif isinstance(vacancies, (numbers.Real, np.floating)) and not isinstance(vacancies, bool):
        frac = float(vacancies)
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"a fractional vacancies must lie in [0, 1), got {frac}")
        count = int(round(frac * n))
        drop = check_random_state(random_state).choice(n, size=count, replace=False) if count else []
    else:
        drop = np.asarray(vacancies)
        if drop.ndim == 1 and drop.size == 0:  # [] is float64 to numpy, and no site
            drop = drop.astype(np.int64)
        if drop.ndim != 1 or not np.issubdtype(drop.dtype, np.integer):
            raise TypeError("vacancies must be an int, a fraction or a 1-D array of site indices")
        if drop.size and (drop.min() < 0 or drop.max() >= n):
            raise ValueError(f"vacancy indices must lie in [0, {n})")
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(drop, dtype=np.int64)] = False
    if not keep.any():
        raise ValueError("vacancies removes every site")
    return pos[keep], q[keep]


def random_cluster(n: int, domain, *, charges: str = "random", random_state=None) -> tuple[np.ndarray, np.ndarray]:
    """Uniformly random charges in a box.

    Parameters
    ----------
    n : int
        Number of particles (``>= 1``).
    domain : sequence of d pairs (a_k, b_k)
        The box the positions are drawn from.
    charges : {'random', 'alternating', 'positive'}
        Random signs ``+-1``; alternating ``+1, -1, ...``; all ``+1``.
    random_state : None, int or numpy.random.Generator
        Seed of the positions (and random signs).

    Returns
    -------
    positions : ndarray, shape (n, d)
        Uniform random points in the box.
    charges : ndarray, shape (n,)
        Their charges, ``+1`` or ``-1``.

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not a positive int, ``domain`` is not a box or
        ``charges`` is not one of the choices.

    Examples
    --------
    >>> import tensorapprox.particles as tp
    >>> pos, q = tp.random_cluster(5, [(-1, 1)] * 3, random_state=0)
    >>> pos.shape, q.shape
    ((5, 3), (5,))
    """
    from .chebtucker import check_domain
    from ._validation import check_choice

    n = check_int(n, name="n", minimum=1)
    dom = np.array(check_domain(domain))
    charges = check_choice(charges, name="charges", choices=("random", "alternating", "positive"))
    rng = check_random_state(random_state)
    pos = rng.uniform(dom[:, 0], dom[:, 1], (n, dom.shape[0]))
    if charges == "random":
        q = rng.choice([-1.0, 1.0], n)
    elif charges == "alternating":
        q = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    else:
        q = np.ones(n)
    return pos, q


def _is_real(dtype) -> bool:
    """Integer or real floating (``np.issubdtype(timedelta64, integer)`` is True: kinds are checked)."""
    return dtype.kind in "iuf"


def _check_particles(positions, charges, d: int | None = None):
    P = np.asarray(to_numpy(positions)) if hasattr(positions, "shape") else np.asarray(positions)
    if not _is_real(P.dtype):
        raise TypeError(f"positions must be a real (N, d) array, got dtype {P.dtype}")
    P = P.astype(np.float64, copy=False)
    if P.ndim != 2:
        raise ValueError(f"positions must have shape (N, d), got {P.shape}")
    if P.shape[0] == 0:
        raise ValueError("positions is empty (N = 0); give at least one particle")
    if d is not None and P.shape[1] != d:
        raise ValueError(f"positions must have {d} columns (the dimension of the box), got {P.shape[1]}")
    q = np.asarray(to_numpy(charges)) if hasattr(charges, "shape") else np.asarray(charges)
    if not _is_real(q.dtype):
        raise TypeError(f"charges must be a real 1-D array, got dtype {q.dtype}")
    q = q.astype(np.float64, copy=False)
    if q.ndim != 1 or q.shape[0] != P.shape[0]:
        raise ValueError(f"positions has {P.shape[0]} particles but charges has shape {q.shape}; "
                         "give one charge per particle")
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(q))):
        raise ValueError("positions and charges must be finite (found NaN or Inf)")
    return P, q


def direct_potential(points, positions, charges, kernel="newton", *, r_c: float | None = None):
    """Exact potential ``sum_i q_i K(|x - x_i|)`` by direct summation, ``O(N M)``.

    Parameters
    ----------
    points : array, shape (M, d)
        Where the potential is evaluated.
    positions : array, shape (N, d)
        Particle positions.
    charges : array, shape (N,)
        Particle charges.
    kernel : {'newton', 'long_range', 'short_range'} or ExpSum
        ``1/r``; ``erf(r/r_c)/r`` (needs ``r_c``); ``erfc(r/r_c)/r``; or any
        exponential sum.
    r_c : float, optional
        Range-separation radius for the long/short-range kernels.

    Returns
    -------
    ndarray, shape (M,)
        The potential at each point: float32 when ``points``,
        ``positions`` and ``charges`` all are (summed in float64), float64
        otherwise.

    Raises
    ------
    TypeError
        If an array is not real (booleans and other non-numeric types
        included).
    ValueError
        Shapes that disagree, ``N = 0``, NaN/Inf, a missing ``r_c``, (for
        the Newton and short-range kernels) a point on a particle, or a
        potential that overflows float64.

    Notes
    -----
    A Numba kernel sums over blocks of target points in parallel threads;
    the numpy reference (``TENSORAPPROX_DISABLE_NUMBA=1``) is chunked.
    Distances are formed without overflow or underflow at any scale of the
    coordinates, and the short-range kernel with ``erfc`` (not as the
    difference of the Newton and long-range sums, which cancels to nothing
    a few ``r_c`` away from the charges).

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> pos = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]); q = np.array([1.0, -1.0])
    >>> np.round(tp.direct_potential(np.array([[0.0, 2.0, 0.0]]), pos, q), 8)  # 1/2 - 1/sqrt(5)
    array([0.0527864])
    """
    # host numpy arrays once; their dtypes decide float32 output (array-API
    # dtypes compared unequal to numpy's, with a warning)
    X, positions, charges = (np.asarray(to_numpy(a)) if hasattr(a, "shape") else np.asarray(a)
                             for a in (points, positions, charges))
    single = all(a.dtype == np.float32 for a in (X, positions, charges))
    P, q = _check_particles(positions, charges)
    d = P.shape[1]
    if np.iscomplexobj(X):  # the cast below kept only the real part
        raise TypeError("points must be real, got complex values")
    if not _is_real(X.dtype):
        # as positions: booleans, timedeltas, objects and strings were cast
        raise TypeError(f"points must be a real (M, d) array, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"points must have shape (M, {d}), got {X.shape}")
    X = X.astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        raise ValueError("points contains NaN or Inf")
    if isinstance(kernel, ExpSum):
        out = direct_sum(X, P, q, KIND_EXPSUM, 1.0, kernel.alphas, kernel.weights)
        name = "exponential-sum"
    else:
        if not (isinstance(kernel, str) and kernel in ("newton", "long_range", "short_range")):
            raise ValueError("kernel must be 'newton', 'long_range', 'short_range' or an ExpSum; "
                             f"got {kernel!r}")
        if kernel != "newton":
            if r_c is None:
                raise ValueError(f"kernel={kernel!r} needs r_c, the range-separation radius")
            r_c = check_positive_float(r_c, name="r_c")
        kind = {"newton": KIND_NEWTON, "long_range": KIND_ERF, "short_range": KIND_ERFC}[kernel]
        out = direct_sum(X, P, q, kind, 1.0 if r_c is None else r_c)
        name = kernel
    if not np.all(np.isfinite(out)):
        i = int(np.nonzero(~np.isfinite(out))[0][0])
        if name in ("newton", "short_range") and np.any(np.all(P == X[i], axis=1)):
            # plain floats: the tuple printed (np.float64(0.25), ...)
            raise ValueError(f"points[{i}] = {tuple(float(v) for v in X[i])} coincides with a particle, where "
                             f"the {name} kernel is singular; move the point or use kernel='long_range'")
        raise ValueError(f"the {name} potential at points[{i}] = {tuple(float(v) for v in X[i])} overflows float64 "
                         "(charges or 1/r_c too large); rescale the charges")
    if single:  # float32 preserved when given (computed in float64)
        return out.astype(np.float32)
    return out


def _gaussian_factors(x, centers, alphas):
    """``exp(-alphas[l] (x_j - centers[i])^2)`` as an (m, N * L) matrix, column (i, l)."""
    diff2 = (x[:, None] - centers[None, :]) ** 2  # (m, N)
    return np.exp(-diff2[:, :, None] * alphas[None, None, :]).reshape(x.shape[0], -1)


def _moment_points(lo, hi, alpha_max, tol):
    """Chebyshev points in the charge box that interpolate the narrowest Gaussian to ``tol``."""
    from . import chebyshev as cheb

    width = hi - lo
    if width <= 0.0:
        return 1
    # a Gaussian centred in the box is the hardest case (largest curvature inside)
    p = cheb.chebpts(_MOMENT_POINTS_MAX, (lo, hi))
    c = np.abs(cheb.vals2coeffs(np.exp(-alpha_max * (p - 0.5 * (lo + hi)) ** 2)))
    big = np.nonzero(c > 0.1 * tol * c.max())[0]
    if not big.size:
        return 2
    if big[-1] + 3 > _MOMENT_POINTS_MAX:
        # not resolved by the most points the route takes: capping the count
        # silently cost 1 to 5% (r_c = 0.002 on a box of width 2)
        raise ValueError(f"method='moments' cannot interpolate the kernel's narrowest Gaussian (exponent "
                         f"{alpha_max:.3g}) over the particles' extent {hi - lo:.3g} with at most "
                         f"{_MOMENT_POINTS_MAX} points per mode; use method='cp' or a larger r_c")
    return int(big[-1] + 3)


# the moments route interpolates in the particle positions at most this many points per mode
_MOMENT_POINTS_MAX = 513


def _moments_coefficients(P, q, K, dom, degs, tol):
    """Dense Chebyshev coefficient tensor of ``sum_i q_i K(|x - p_i|)`` via charge moments.

    Each Gaussian ``exp(-a (x - p)^2)`` is interpolated in ``p`` at ``n_k``
    Chebyshev points ``y_s`` of the charges' box, so the charges enter only
    through the moment tensor ``Q = sum_i q_i l(p_i1) x l(p_i2) x l(p_i3)``
    (``l`` the Lagrange basis), and
    ``C = sum_l w_l Q x_1 D G_l1 x_2 D G_l2 x_3 D G_l3`` with
    ``G_lk[j, s] = exp(-a_l (x_j - y_s)^2)`` and ``D`` the DCT. Cost
    ``O(N n^d + L m n (n^{d-1} + ...))``: independent of ``N L``.
    """
    from . import chebyshev as cheb
    from .chebtucker import _cp_core
    from .tensor import multi_mode_product

    d = P.shape[1]
    lam, G = [], []
    for k in range(d):
        lo, hi = float(P[:, k].min()), float(P[:, k].max())
        n = _moment_points(lo, hi, float(K.alphas[-1]), tol)
        if n == 1:
            y = np.array([lo])
            lam.append(np.ones((1, P.shape[0])))
        else:
            y = cheb.chebpts(n, (lo, hi))
            # Lagrange basis at the charges: T(p) @ (values -> coefficients of e_s)
            L = cheb.chebvander(P[:, k], n, (lo, hi)) @ cheb.vals2coeffs(np.eye(n), axis=0)
            lam.append(np.ascontiguousarray(L.T))
        x = cheb.chebpts(degs[k] + 1, dom[k])
        diff2 = (x[:, None] - y[None, :]) ** 2
        G.append([cheb.vals2coeffs(np.exp(-a * diff2), axis=0) for a in K.alphas])
    Q = _cp_core(q, lam)
    C = np.zeros(tuple(g + 1 for g in degs))
    for ll, w in enumerate(K.weights):
        C += w * multi_mode_product(Q, [G[k][ll] for k in range(d)])
    return C


def long_range_potential(positions, charges, domain, *, r_c: float | None = None, n_terms: int | None = None,
                         rtol: float = 1e-7, degree=64, exp_sum_rtol: float | None = None,
                         recompress: bool = True, method: str = "cp"):
    """Long-range potential of many charges as a Chebyshev-Tucker approximant.

    ``phi(x) = sum_i q_i K_long(|x - x_i|)`` with ``K_long = erf(r/r_c)/r``
    (give ``r_c``) or the ``n_terms`` widest terms of the sinc exponential sum
    of ``1/r`` (give ``n_terms``).

    Parameters
    ----------
    positions : array, shape (N, d)
        Particle positions.
    charges : array, shape (N,)
        Particle charges.
    domain : sequence of d pairs
        The box where the potential is wanted (charges may lie anywhere).
    r_c : float, optional
        Range-separation radius (closed-form kernel).
    n_terms : int, optional
        Number of long-range terms of :func:`newton_exp_sum` instead.
    rtol : float in (0, 1), default 1e-7
        Tucker truncation tolerance (see :meth:`ChebTucker.from_cp`).
    degree : int or sequence of int, default 64
        Chebyshev degree per mode (``m = degree + 1`` points).
    exp_sum_rtol : float, optional
        Accuracy of the exponential sum (default ``rtol / 100``, at least 1e-14).
    recompress : bool, default True
        Compress the core by truncated HOSVD at ``rtol`` after the side
        truncation (ranks as HOSVD of the full coefficient tensor).
    method : {'cp', 'moments'}, default 'cp'
        'cp': Algorithm 4 on the ``N L`` separable (particle, term) Gaussians.
        'moments': interpolate every Gaussian in the particle position at
        Chebyshev points of the particles' box (to ``exp_sum_rtol``), so the
        particles enter only through a moment tensor; the ``m^d``
        coefficient tensor is then formed at a cost independent of ``N L``
        and compressed by truncated HOSVD at ``rtol``. Much faster for many
        particles.

    Returns
    -------
    ChebTucker
        The long-range potential on ``domain``; call it at points, take
        its :meth:`~tensorapprox.chebtucker.ChebTucker.gradient`, etc.

    Raises
    ------
    TypeError
        If ``positions`` or ``charges`` is not real, or ``recompress`` is not
        ``True`` or ``False``.
    ValueError
        If the shapes disagree, there are no particles, values are NaN/Inf,
        not exactly one of ``r_c`` and ``n_terms`` is given, or ``domain``,
        ``degree``, ``rtol`` or ``method`` is invalid; with
        ``method='moments'`` also when the narrowest Gaussian of the kernel
        needs more than 513 interpolation points per mode over the
        particles' extent (``method='cp'`` has no such limit).

    Notes
    -----
    The CP route (Algorithm 4 of arXiv:2503.01696): every (particle, term)
    pair is a separable Gaussian whose factors are evaluated exactly at the
    Chebyshev points, turned into coefficients by DCT, truncated per mode by
    SVD and contracted into the core with the weights ``q_i w_l``. The cost
    grows like ``N L m (m + r)  + N L r^d``, never ``m^d N``.

    Examples
    --------
    >>> import numpy as np, tensorapprox.particles as tp
    >>> pos, q = tp.random_cluster(20, [(-0.5, 0.5)] * 3, random_state=0)
    >>> F = tp.long_range_potential(pos, q, [(-1, 1)] * 3, r_c=0.3, rtol=1e-8, degree=48)
    >>> x = np.random.default_rng(1).uniform(-1, 1, (200, 3))
    >>> ref = tp.direct_potential(x, pos, q, "long_range", r_c=0.3)
    >>> bool(np.max(np.abs(F(x) - ref)) < 1e-6 * np.max(np.abs(ref)))
    True
    """
    from .chebtucker import ChebTucker, _check_degrees, check_domain
    from . import chebyshev as cheb

    dom = check_domain(domain)
    d = len(dom)
    P, q = _check_particles(positions, charges, d)
    rtol = check_rtol(rtol)
    degs = _check_degrees(degree, d)
    from ._validation import check_choice

    method = check_choice(method, name="method", choices=("cp", "moments"))
    recompress = check_bool(recompress, name="recompress")  # "no" was truthy: it recompressed
    if (r_c is None) == (n_terms is None):
        raise ValueError("give exactly one of r_c (closed-form erf kernel) and n_terms (sinc terms of 1/r)")
    es_rtol = max(rtol / 100, 1e-14) if exp_sum_rtol is None else check_rtol(exp_sum_rtol, name="exp_sum_rtol")
    if r_c is not None:
        r_c = check_positive_float(r_c, name="r_c")
    # lengths in units of a power of two near the extent of box and charges
    # (exact): the squared distances of the Gaussians' exponents overflowed
    # beyond about 1e154 and underflowed below 1e-154, failing with errors
    # about arguments the caller never gave. The potential of the scaled
    # problem is 2^e times the caller's, on the same coefficients
    lo = np.minimum(np.array([a for a, _ in dom]), P.min(axis=0))
    hi = np.maximum(np.array([b for _, b in dom]), P.max(axis=0))
    with np.errstate(over="ignore"):
        span = hi - lo
    if not np.all(np.isfinite(span)):
        raise ValueError("the box and the charges together span more than the float64 range; "
                         "shift or rescale the coordinates")
    e = _pow2_exponent(float(np.max(span)))
    P = _times_pow2(np, P, -e)
    box = dom
    dom = tuple((math.ldexp(a, -e), math.ldexp(b, -e)) for a, b in dom)
    span = _times_pow2(np, span, -e)
    r_max = float(np.linalg.norm(span)) * 1.01
    if r_c is not None:
        r_c = math.ldexp(r_c, -e)
        if not (r_c > 0.0 and math.isfinite(r_c)):
            raise ValueError(f"r_c is out of float64's range relative to the box ({r_c:g} box widths)")
        try:
            K = long_range_exp_sum(r_c, r_max, es_rtol)
        except ValueError as exc:
            raise ValueError(f"{exc}. In long_range_potential: r_c = {math.ldexp(r_c, e):g} is "
                             f"{r_c / r_max:.3g} of the extent of the box and the charges together; "
                             "loosen exp_sum_rtol, raise r_c, or leave out the charges far from the box") from None
    else:
        n_terms = check_int(n_terms, name="n_terms", minimum=1)
        full = newton_exp_sum(max(es_rtol, 1e-14), r_min=r_max * 1e-4, r_max=r_max)
        if n_terms > full.n_terms:
            raise ValueError(f"n_terms = {n_terms} exceeds the {full.n_terms} terms of the exponential sum")
        K, _ = full.split(n_long=n_terms)
    if method == "moments":
        from .chebtucker import _check_memory, DEFAULT_MAX_MEMORY

        _check_memory(tuple(g + 1 for g in degs), d, DEFAULT_MAX_MEMORY)
        C = _moments_coefficients(P, q, K, dom, degs, es_rtol)
        F = ChebTucker.from_coefficients(C, dom, rtol=rtol)
    else:
        weights = (q[:, None] * K.weights[None, :]).reshape(-1)
        A = []
        for k in range(d):
            x = cheb.chebpts(degs[k] + 1, dom[k])
            A.append(cheb.vals2coeffs(_gaussian_factors(x, P[:, k], K.alphas), axis=0))
        F = ChebTucker._from_cp_coefficients(weights, A, dom, rtol, recompress=recompress)
    # the same coefficients on the caller's box: a point maps to the same
    # reference coordinates; the kernel ~ 1/length scales by 2^-e
    return ChebTucker(_times_pow2(np, F.core, -e), F.factors, box)
