"""One-dimensional Chebyshev technology on an interval ``[a, b]``.

Chebyshev points of the second kind, values <-> coefficients by the type-I
discrete cosine transform, Clenshaw evaluation, derivative and antiderivative
of a coefficient vector, Clenshaw-Curtis quadrature weights and the
Chebyshev-Vandermonde matrix.

Conventions
-----------
* ``m`` points give a polynomial of degree ``m - 1``.
* Points are returned in **ascending** order,
  ``x_j = (a + b)/2 - (b - a)/2 * cos(pi j / (m - 1))``, ``j = 0..m-1``
  (the order Chebfun uses); values on the grid follow the same order.
* A coefficient vector ``c`` of length ``m`` represents
  ``p(x) = sum_k c[k] T_k(t)`` with ``t = (2x - a - b) / (b - a)``, formed as
  ``(x - (a/2 + b/2)) / (b/2 - a/2)`` in float64 (no overflow near the float64
  limit, no rounding of the bounds to float32).
* Every function accepts an ``axis`` (or works along axis 0 of a matrix), so
  many columns are transformed in one call.

All transforms are array-API generic: numpy input goes through
``scipy.fft.dct`` (type I), other arrays through an FFT of the even extension
in their own namespace.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

from ._array import get_namespace, is_numpy
from ._validation import check_int

__all__ = [
    "check_interval",
    "chebpts",
    "vals2coeffs",
    "coeffs2vals",
    "chebeval",
    "chebder",
    "chebint",
    "clenshaw_curtis_weights",
    "chebvander",
]


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def check_interval(domain, *, name: str = "domain") -> tuple[float, float]:
    """Validate an interval ``(a, b)`` with finite ``a < b``; return it as floats.

    Parameters
    ----------
    domain : pair of real numbers
        The interval ``(a, b)`` (a tuple, list or array of two entries).
    name : str, default "domain"
        Name of the argument in error messages.

    Returns
    -------
    tuple of float
        ``(a, b)`` as Python floats.

    Raises
    ------
    TypeError
        If ``domain`` is not a pair of real numbers.
    ValueError
        If it has the wrong length, is not finite, ``a >= b``, or ``b - a``
        overflows.

    Examples
    --------
    >>> from tensorapprox.chebyshev import check_interval
    >>> check_interval([0, 2])
    (0.0, 2.0)
    >>> check_interval((1.0, 1.0))
    Traceback (most recent call last):
        ...
    ValueError: domain = (1.0, 1.0) needs a < b; swap or widen the interval
    """
    try:
        vals = [v for v in np.asarray(domain, dtype=object).ravel()] if not isinstance(domain, (str, bytes)) else None
    except Exception:  # pragma: no cover - exotic input
        vals = None
    if vals is None or np.ndim(domain) == 0:  # None or 5 read as "1 entry"
        raise TypeError(f"{name} must be a pair (a, b) of real numbers, got {type(domain).__name__}")
    if len(vals) != 2:
        raise ValueError(f"{name} must have exactly 2 entries (a, b), got {len(vals)}")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"{name} must hold real numbers, got {type(v).__name__}")
        out.append(float(v))
    a, b = out
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{name} = ({a}, {b}) must be finite")
    if not a < b:
        raise ValueError(f"{name} = ({a}, {b}) needs a < b; swap or widen the interval")
    if not math.isfinite(b - a):
        # the maps to [-1, 1] use b - a and a + b: (-1e308, 1e308) was accepted
        # and gave NaN points and wrong values
        raise ValueError(f"{name} = ({a}, {b}) is too wide: b - a overflows; rescale the coordinates")
    return a, b


def _check_m(m, name: str = "m") -> int:
    return check_int(m, name=name, minimum=1)


def _check_float_dtype(dtype, xp) -> None:
    """``dtype`` (when given) must be a real floating dtype of ``xp`` (numpy by default)."""
    if dtype is None:
        return
    try:
        if xp is None or is_numpy(xp):
            ok = np.issubdtype(np.dtype(dtype), np.floating)
        else:
            ok = bool(xp.isdtype(dtype, "real floating"))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        # an integer dtype truncated the points (chebpts(5, dtype=int64) gave
        # [-1, 0, 0, 0, 1])
        raise TypeError(f"dtype must be a real floating dtype (float32 or float64), got {dtype!r}")


def _mid_half(a: float, b: float) -> tuple[float, float]:
    """Midpoint and half-width of ``[a, b]``, formed without overflow.

    ``(a + b) / 2`` overflowed to ``inf`` on intervals such as
    ``(1e308, 1.7e308)``; halving first is exact (barring subnormals).
    """
    return 0.5 * a + 0.5 * b, 0.5 * b - 0.5 * a


# --------------------------------------------------------------------------- #
# points
# --------------------------------------------------------------------------- #
def chebpts(m: int, domain: Sequence[float] = (-1.0, 1.0), *, xp=None, dtype=None):
    """Chebyshev points of the second kind on ``[a, b]``, ascending.

    Parameters
    ----------
    m : int
        Number of points (``>= 1``); the interpolant has degree ``m - 1``.
        ``m = 1`` gives the midpoint.
    domain : pair of float, default (-1, 1)
        The interval ``(a, b)``, ``a < b``.
    xp : namespace, optional
        Array namespace of the result (numpy by default).
    dtype : dtype, optional
        Floating dtype (float64 by default).

    Returns
    -------
    array, shape (m,)
        ``x_j = (a+b)/2 - (b-a)/2 cos(pi j/(m-1))``; computed with a sine so
        the points are exactly symmetric about the midpoint and include
        ``a`` and ``b``, and with the midpoint ``a/2 + b/2`` and half-width
        ``b/2 - a/2`` (no overflow on intervals near the float64 limit).

    Raises
    ------
    TypeError
        If ``m`` is not an int, ``domain`` is not a pair of real numbers or
        ``dtype`` is not a real floating dtype.
    ValueError
        If ``m < 1`` or ``domain`` is not a finite interval with ``a < b``.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> cheb.chebpts(5)
    array([-1.        , -0.70710678,  0.        ,  0.70710678,  1.        ])
    """
    m = _check_m(m)
    a, b = check_interval(domain)
    _check_float_dtype(dtype, xp)
    if m == 1:
        t = np.zeros(1)
    else:
        n = m - 1
        t = np.sin(np.pi * np.arange(-n, n + 1, 2, dtype=np.float64) / (2 * n))
    mid, half = _mid_half(a, b)
    x = mid + half * t
    if m > 1:
        x[0], x[-1] = a, b
    if xp is None:
        return x if dtype is None else x.astype(dtype)
    return xp.asarray(x, dtype=dtype if dtype is not None else xp.float64)


# --------------------------------------------------------------------------- #
# DCT-I
# --------------------------------------------------------------------------- #
def _dct1(xp, v, axis: int):
    """Unnormalized DCT-I along ``axis``:
    ``y_k = v_0 + (-1)^k v_n + 2 sum_{j=1}^{n-1} v_j cos(pi j k / n)``.
    """
    if is_numpy(xp):
        import scipy.fft

        return scipy.fft.dct(np.asarray(v), type=1, axis=axis)
    # array code: FFT of the even extension (length 2n)
    v = xp.moveaxis(v, axis, -1)
    n = v.shape[-1] - 1
    ext = xp.concat([v, xp.flip(v[..., 1:n], axis=-1)], axis=-1)
    y = xp.real(xp.fft.rfft(ext, axis=-1))
    return xp.moveaxis(y, -1, axis)


def _bcast(vec, axis: int, ndim: int, xp):
    shape = [1] * ndim
    shape[axis] = vec.shape[0]
    return xp.reshape(vec, tuple(shape))


def _normalize_axis(axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis = {axis} is out of range for an array with {ndim} dimensions")
    return int(axis) % ndim


def _library(a) -> str:
    """Name of the array library of ``a`` (for error messages)."""
    return type(a).__module__.split(".")[0]


def _is_real_dtype(xp, dtype) -> bool:
    """Integer or real floating, not bool (which numpy's namespace counts as integral)."""
    if isinstance(dtype, np.dtype):  # the kinds directly (timedelta64 counts as integer to issubdtype)
        return dtype.kind in "iuf"
    return bool(xp.isdtype(dtype, ("real floating", "integral")) and not xp.isdtype(dtype, "bool"))


def _as_float_array(x, name: str):
    xp = get_namespace(x) if hasattr(x, "shape") else np
    if not hasattr(x, "shape"):
        x = np.asarray(x)
        xp = np
    if xp.isdtype(x.dtype, "complex floating"):
        raise TypeError(f"{name} must be real, got a complex array")
    if not _is_real_dtype(xp, x.dtype):
        # the cast below parsed strings ("0.5") and read booleans as 0 and 1
        raise TypeError(f"{name} must be an array of real numbers, got dtype {x.dtype}")
    if not xp.isdtype(x.dtype, "real floating"):
        x = xp.astype(x, xp.float64)
    return xp, x


def vals2coeffs(values, axis: int = 0):
    """Chebyshev coefficients of the interpolant through values at :func:`chebpts`.

    Parameters
    ----------
    values : array, shape (..., m, ...)
        Values at the ``m`` ascending Chebyshev points along ``axis``; not modified.
    axis : int, default 0
        The axis holding the points.

    Returns
    -------
    array
        Coefficients ``c`` (same shape) with ``p = sum_k c[k] T_k`` on the
        interval the points came from (the transform does not depend on it).

    Raises
    ------
    TypeError
        If ``values`` is complex or not an array of real numbers (strings,
        booleans), or ``axis`` is not an int.
    ValueError
        If ``values`` is 0-d or empty along ``axis``, or ``axis`` is out of
        range.

    Notes
    -----
    With points ``cos(pi j/n)`` (descending) the coefficients are
    ``c_k = y_k / n`` for ``0 < k < n`` and ``y_k / (2n)`` at ``k = 0, n``,
    where ``y`` is the DCT-I of the values. Ascending order flips the sign of
    the odd coefficients.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> x = cheb.chebpts(4)
    >>> np.round(cheb.vals2coeffs(x**3), 12) + 0.0  # x^3 = (3 T_1 + T_3) / 4
    array([0.  , 0.75, 0.  , 0.25])
    """
    xp, v = _as_float_array(values, "values")
    if v.ndim == 0:
        raise ValueError("values must have at least one dimension")
    axis = _normalize_axis(axis, v.ndim)
    m = v.shape[axis]
    if m == 0:
        raise ValueError("values is empty along axis")
    if m == 1:
        return xp.asarray(v, copy=True)
    n = m - 1
    y = _dct1(xp, v, axis)
    scale = np.full(m, 1.0 / n)
    scale[0] = scale[-1] = 0.5 / n
    scale[1::2] *= -1.0
    scale = xp.asarray(scale, dtype=v.dtype) if not is_numpy(xp) else scale.astype(v.dtype)
    return y * _bcast(scale, axis, v.ndim, xp)


def coeffs2vals(coeffs, axis: int = 0):
    """Evaluate a Chebyshev series at the ascending Chebyshev points.

    Inverse of :func:`vals2coeffs`.

    Parameters
    ----------
    coeffs : array, shape (..., m, ...)
        Chebyshev coefficients (degrees ``0..m-1``) along ``axis``; not
        modified.
    axis : int, default 0
        The axis holding the coefficients.

    Returns
    -------
    array
        Values at the ``m`` ascending Chebyshev points along ``axis``, same
        shape as ``coeffs``.

    Raises
    ------
    TypeError
        If ``coeffs`` is complex or not an array of real numbers (strings,
        booleans), or ``axis`` is not an int.
    ValueError
        If ``coeffs`` is 0-d or empty along ``axis``, or ``axis`` is out of
        range.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> v = np.array([1.0, -2.0, 0.5, 3.0])
    >>> bool(np.allclose(cheb.coeffs2vals(cheb.vals2coeffs(v)), v))
    True
    """
    xp, c = _as_float_array(coeffs, "coeffs")
    if c.ndim == 0:
        raise ValueError("coeffs must have at least one dimension")
    axis = _normalize_axis(axis, c.ndim)
    m = c.shape[axis]
    if m == 0:
        raise ValueError("coeffs is empty along axis")
    if m == 1:
        return xp.asarray(c, copy=True)
    scale = np.full(m, 0.5)
    scale[0] = scale[-1] = 1.0
    scale[1::2] *= -1.0  # ascending order
    scale = xp.asarray(scale, dtype=c.dtype) if not is_numpy(xp) else scale.astype(c.dtype)
    return _dct1(xp, c * _bcast(scale, axis, c.ndim, xp), axis)


# --------------------------------------------------------------------------- #
# evaluation
# --------------------------------------------------------------------------- #
def _to_reference(xp, x, domain, dtype):
    """Reference coordinate ``t = (x - mid) / half`` of ``x``, in the floating ``dtype``.

    ``t`` is formed in float64 and then cast: in float32 (or the dtype of
    float32 coefficients) the box bounds were rounded, which gave 6% errors
    on ``(1e6, 1e6 + 1)`` and NaN on ``(1e38, 3e38)``; the overflow-safe
    midpoint and half-width keep boxes near the float64 limit finite.
    """
    mid, half = _mid_half(*domain)
    x64 = x if x.dtype == xp.float64 else xp.astype(x, xp.float64)
    t = (x64 - mid) / half
    return t if dtype == xp.float64 else xp.astype(t, dtype)


def chebeval(coeffs, x, domain: Sequence[float] = (-1.0, 1.0)):
    """Evaluate a Chebyshev series by Clenshaw's recurrence.

    Parameters
    ----------
    coeffs : array, shape (m,) or (m, k)
        One coefficient vector, or ``k`` of them as columns.
    x : array_like
        Evaluation points (any shape), inside ``[a, b]`` for a stable result
        (outside, the polynomial is extrapolated).
    domain : pair of float, default (-1, 1)
        The interval ``(a, b)`` of the series, ``a < b``.

    Returns
    -------
    array, shape ``x.shape`` (or ``x.shape + (k,)``)
        The value of the series (of each of the ``k`` series) at ``x``.

    Raises
    ------
    TypeError
        If ``coeffs`` or ``x`` is complex or not real numbers (strings,
        booleans), ``coeffs`` and ``x`` are arrays of
        different libraries, or ``domain`` is not a pair of numbers.
    ValueError
        If ``coeffs`` is not of shape ``(m,)`` or ``(m, k)`` with ``m >= 1``,
        or ``domain`` is not an interval with ``a < b``.

    Notes
    -----
    Clenshaw: ``b_k = c_k + 2t b_{k+1} - b_{k+2}``, ``p = c_0 + t b_1 - b_2``;
    backward stable for ``|t| <= 1``. The reference coordinate
    ``t = (x - (a/2 + b/2)) / (b/2 - a/2)`` is formed in float64 whatever the
    dtypes, then cast to the dtype of ``coeffs`` (the dtype of the result).

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> float(cheb.chebeval(np.array([0.0, 0.0, 1.0]), 0.5))  # T_2(0.5)
    -0.5
    """
    domain = check_interval(domain)
    xp, c = _as_float_array(coeffs, "coeffs")
    if c.ndim not in (1, 2) or c.shape[0] == 0:
        raise ValueError(f"coeffs must have shape (m,) or (m, k) with m >= 1, got {tuple(c.shape)}")
    if not hasattr(x, "shape") or isinstance(x, numbers.Number):  # lists, Python and numpy scalars
        x0 = np.asarray(x)
        if np.iscomplexobj(x0):  # cast to float64, only the real part was kept
            raise TypeError("x must be real, got complex values")
        if not _is_real_dtype(np, x0.dtype):  # strings were parsed, True read as 1
            raise TypeError(f"x must hold real numbers, got dtype {x0.dtype}")
        x = xp.asarray(np.asarray(x0, dtype=np.float64)) if not is_numpy(xp) else np.asarray(x0, dtype=np.float64)
    else:
        try:
            get_namespace(c, x)
        except TypeError:
            # as everywhere in the package, arrays of two libraries are not
            # mixed (an obscure TypeError or AttributeError came from the cast)
            raise TypeError(f"coeffs ({_library(coeffs)}) and x ({_library(x)}) are arrays of different "
                            "libraries; convert one of them to the other's library") from None
        if xp.isdtype(x.dtype, "complex floating"):  # the cast below kept only the real part
            raise TypeError("x must be real, got a complex array")
        if not _is_real_dtype(xp, x.dtype):  # the cast below parsed strings, read True as 1
            raise TypeError(f"x must be an array of real numbers, got dtype {x.dtype}")
    # t in float64, then in the coefficients' dtype (see _to_reference)
    t = _to_reference(xp, x, domain, c.dtype)
    if c.ndim == 2:
        t = t[..., None]
    m = c.shape[0]
    # c[k, ...]: the array API indexes every axis (c[k] on a 2-D array was
    # an IndexError for array_api_strict)
    b1 = xp.zeros_like(t * c[0, ...]) if m > 0 else None
    b2 = xp.zeros_like(b1)
    for k in range(m - 1, 0, -1):
        b1, b2 = c[k, ...] + 2.0 * t * b1 - b2, b1
    return c[0, ...] + t * b1 - b2


def chebvander(x, m: int, domain: Sequence[float] = (-1.0, 1.0)):
    """Chebyshev-Vandermonde matrix ``V[i, k] = T_k(t_i)`` on ``[a, b]``.

    Parameters
    ----------
    x : array, shape (n,)
        Points, inside ``[a, b]`` for well-scaled columns.
    m : int
        Number of polynomials (degree ``m - 1``).
    domain : pair of float, default (-1, 1)
        The interval ``(a, b)`` mapped to ``[-1, 1]``.

    Returns
    -------
    array, shape (n, m)
        ``V @ c`` evaluates the series ``c`` at ``x``; in the floating dtype
        of ``x`` (float64 for integers), with the reference coordinates
        formed in float64 (as :func:`chebeval`).

    Raises
    ------
    TypeError
        If ``m`` is not an int or ``x`` is complex or not real numbers
        (strings, booleans).
    ValueError
        If ``m < 1``, ``x`` is not 1-D or ``domain`` is not an interval with
        ``a < b``.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> cheb.chebvander(np.array([0.5]), 3)
    array([[ 1. ,  0.5, -0.5]])
    """
    m = _check_m(m)
    domain = check_interval(domain)
    xp, x = _as_float_array(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(x.shape)}")
    t = _to_reference(xp, x, domain, x.dtype)
    cols = [xp.ones_like(t)]
    if m > 1:
        cols.append(t)
    for _ in range(2, m):
        cols.append(2.0 * t * cols[-1] - cols[-2])
    return xp.stack(cols, axis=1)


# --------------------------------------------------------------------------- #
# calculus
# --------------------------------------------------------------------------- #
def chebder(coeffs, domain: Sequence[float] = (-1.0, 1.0), order: int = 1, axis: int = 0):
    """Differentiate a Chebyshev series: the coefficients of its derivative.

    Parameters
    ----------
    coeffs : array, shape (..., m, ...)
        Chebyshev coefficients along ``axis``; not modified.
    domain : pair of float, default (-1, 1)
        Interval of the series; each derivative is scaled by ``2 / (b - a)``.
    order : int, default 1
        Number of derivatives (``>= 0``).
    axis : int, default 0
        The axis holding the coefficients.

    Returns
    -------
    array
        Length ``max(m - order, 1)`` along ``axis``.

    Raises
    ------
    TypeError
        If ``coeffs`` is complex or not real numbers, or ``order`` or
        ``axis`` is not an int.
    ValueError
        If ``order < 0``, ``coeffs`` is 0-d or empty along ``axis``, ``axis``
        is out of range or ``domain`` is not an interval with ``a < b``.

    Notes
    -----
    Recurrence ``d_{k-1} = d_{k+1} + 2 k c_k`` from the top, then ``d_0 /= 2``.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> cheb.chebder(np.array([0.0, 0.0, 1.0]))  # T_2' = 4 T_1
    array([0., 4.])
    """
    order = check_int(order, name="order", minimum=0)
    a, b = check_interval(domain)
    xp, c = _as_float_array(coeffs, "coeffs")
    if c.ndim == 0:
        raise ValueError("coeffs must have at least one dimension")
    axis = _normalize_axis(axis, c.ndim)
    if c.shape[axis] == 0:
        # an empty result, where the documented length is max(m - order, 1)
        # (chebint, vals2coeffs and coeffs2vals raise here)
        raise ValueError("coeffs is empty along axis")
    c = xp.moveaxis(c, axis, 0)
    scale = 2.0 / (b - a)
    for _ in range(order):
        m = c.shape[0]
        if m <= 1:
            c = xp.zeros_like(c[:1, ...])
            continue
        rows = [None] * (m - 1)
        nxt = xp.zeros_like(c[0, ...])  # d_{k+1}
        nxt2 = xp.zeros_like(c[0, ...])  # d_{k+2}
        for k in range(m - 1, 0, -1):
            dk = nxt2 + (2.0 * k) * c[k, ...]
            rows[k - 1] = dk
            nxt2, nxt = nxt, dk
        rows[0] = rows[0] / 2.0
        c = xp.stack(rows, axis=0) * scale
    out = xp.moveaxis(c, 0, axis)
    # order 0 differentiates nothing: a copy, not a view of coeffs (writing to
    # the result changed the caller's array)
    return out if order else xp.asarray(out, copy=True)


def chebint(coeffs, domain: Sequence[float] = (-1.0, 1.0), axis: int = 0):
    """Integrate a Chebyshev series: the coefficients of the antiderivative that vanishes at ``a``.

    Parameters
    ----------
    coeffs : array, shape (..., m, ...)
        Chebyshev coefficients along ``axis``; not modified.
    domain : pair of float, default (-1, 1)
        The interval ``(a, b)`` of the series, ``a < b``.
    axis : int, default 0
        The axis holding the coefficients.

    Returns
    -------
    array
        Length ``m + 1`` along ``axis``.

    Raises
    ------
    TypeError
        If ``coeffs`` is complex or not real numbers, or ``axis`` is not an
        int.
    ValueError
        If ``coeffs`` is 0-d or empty along ``axis``, ``axis`` is out of
        range or ``domain`` is not an interval with ``a < b``.

    Notes
    -----
    ``b_k = (c'_{k-1} - c_{k+1}) / (2k)`` for ``k >= 1`` with ``c'_0 = 2 c_0``,
    scaled by ``(b - a) / 2``; ``b_0`` makes the value at ``a`` zero.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> c = cheb.chebint(np.array([1.0]))   # integral of 1 from -1: x + 1
    >>> np.round(c, 12)
    array([1., 1.])
    """
    a, b = check_interval(domain)
    xp, c = _as_float_array(coeffs, "coeffs")
    if c.ndim == 0:
        raise ValueError("coeffs must have at least one dimension")
    axis = _normalize_axis(axis, c.ndim)
    c = xp.moveaxis(c, axis, 0)
    m = c.shape[0]
    if m == 0:  # an IndexError before
        raise ValueError("coeffs is empty along axis")
    zero = xp.zeros_like(c[0, ...])
    ext = [c[k, ...] for k in range(m)] + [zero, zero]
    ext[0] = 2.0 * ext[0]
    rows = [zero]
    for k in range(1, m + 1):
        rows.append((ext[k - 1] - ext[k + 1]) / (2.0 * k))
    # value at t = -1 is sum_k b_k (-1)^k; choose b_0 to cancel it
    val = zero
    for k in range(1, m + 1):
        val = val + (rows[k] if k % 2 == 0 else -rows[k])
    rows[0] = -val
    out = xp.stack(rows, axis=0) * (0.5 * (b - a))
    return xp.moveaxis(out, 0, axis)


def _moments(k):
    """``int_{-1}^1 T_k(t) dt`` for an integer array ``k >= 0``: ``2 / (1 - k^2)`` for even ``k``, 0 for odd."""
    k = np.asarray(k)
    out = np.zeros(k.shape)
    even = k % 2 == 0
    out[even] = 2.0 / (1.0 - k[even].astype(np.float64) ** 2)
    return out


def clenshaw_curtis_weights(m: int, domain: Sequence[float] = (-1.0, 1.0), *, xp=None):
    """Compute the Clenshaw-Curtis quadrature weights at the ``m`` Chebyshev points.

    Parameters
    ----------
    m : int
        Number of points (``>= 1``).
    domain : pair of float, default (-1, 1)
        The interval of integration, ``a < b``.
    xp : namespace, optional
        Array namespace of the result (numpy by default).

    Returns
    -------
    array, shape (m,)
        ``w`` with ``sum(w * f(chebpts(m, domain)))`` equal to the integral of
        the interpolant (exact for polynomials of degree ``< m``).

    Raises
    ------
    TypeError
        If ``m`` is not an int or ``domain`` is not a pair of numbers.
    ValueError
        If ``m < 1`` or ``domain`` is not an interval with ``a < b``.

    Notes
    -----
    ``w = A^T I`` where ``A`` is the values-to-coefficients map and
    ``I_k = 2 / (1 - k^2)`` (even ``k``), 0 (odd ``k``) the integrals of
    ``T_k``; ``A^T`` is applied with one more DCT-I.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebyshev as cheb
    >>> np.round(cheb.clenshaw_curtis_weights(3), 12)
    array([0.33333333, 1.33333333, 0.33333333])
    """
    m = _check_m(m)
    a, b = check_interval(domain)
    half = 0.5 * (b - a)
    if m == 1:
        w = np.array([2.0 * half])
    else:
        n = m - 1
        integ = _moments(np.arange(m))
        # A = diag(s) C diag(e) in descending order (C_kj = cos(pi jk/n))
        s = np.full(m, 1.0 / n)
        s[0] = s[-1] = 0.5 / n
        e = np.full(m, 2.0)
        e[0] = e[-1] = 1.0
        v = integ * s
        # sum_k v_k cos(pi jk/n) = (DCT-I(v)_j + v_0 + (-1)^j v_n) / 2
        import scipy.fft

        y = scipy.fft.dct(v, type=1)
        sgn = np.where(np.arange(m) % 2 == 0, 1.0, -1.0)
        w = e * 0.5 * (y + v[0] + sgn * v[-1])
        w = w[::-1].copy() * half  # symmetric anyway; ascending order
    if xp is None:
        return w
    return xp.asarray(w, dtype=xp.float64)
