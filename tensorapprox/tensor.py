"""Dense multilinear algebra: unfoldings, mode products, Khatri-Rao, Kronecker.

Unfolding convention
--------------------
The mode-``k`` unfolding of a tensor ``X`` of shape ``(n_1, ..., n_d)`` is the
matrix ``X_(k)`` of shape ``(n_k, prod_{j != k} n_j)`` obtained by moving axis
``k`` to the front and reshaping in C (row-major) order: the remaining modes
keep their original order and the *last* one varies fastest. With this
convention a Tucker tensor ``X = G x_1 U_1 ... x_d U_d`` satisfies::

    X_(k) = U_k @ G_(k) @ kronecker([U_j for j != k]).T

with the Kronecker factors in natural order (``U_1`` first). Every module of
the package uses this one convention.

All functions are array-API generic: they accept numpy, cupy or any array-API
array and return arrays of the same kind.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

from ._array import get_namespace, is_numpy, same_float
from ._validation import check_bool, check_int

__all__ = [
    "unfold",
    "fold",
    "mode_product",
    "multi_mode_product",
    "khatri_rao",
    "kronecker",
]


def _max_abs(xp, A) -> float:
    """The largest magnitude in ``A`` (0.0 for an empty array)."""
    return float(xp.max(xp.abs(A))) if math.prod(A.shape) else 0.0


def _pow2_exponent(m: float) -> int:
    """``e`` with ``m`` in ``[2^(e-1), 2^e)``; 0 for 0, Inf or NaN.

    Dividing by ``2^e`` (see :func:`_times_pow2`) is exact and brings ``m``
    into ``[1/2, 1)``: sums of squares of data scaled so neither overflow nor
    underflow, whatever its magnitude.
    """
    return math.frexp(m)[1] if m > 0.0 and math.isfinite(m) else 0


def _times_pow2(xp, A, e: int):
    """``A * 2^e`` in ``A``'s dtype, exact wherever the result is a normal number.

    Applied in steps whose factors are representable in that dtype (``2^e``
    alone may not be, e.g. ``2^200`` in float32, or ``2^1074`` in any
    dtype); the steps all go one way, so an intermediate overflows or
    underflows only where the result does.
    """
    big = math.frexp(float(xp.finfo(A.dtype).max))[1] - 1  # 1023 for float64, 127 for float32
    with np.errstate(over="ignore", under="ignore"):
        while e != 0:
            step = max(-big, min(big, e))
            A = A * 2.0 ** step
            e -= step
    return A


def _pow2_normalized(xp, A):
    """``(A * 2^-e, e)`` with ``2^e`` the power of two just above ``max|A|`` (exact).

    The largest entry of the result lies in ``[1/2, 1)``, so its squares and
    products neither overflow nor underflow, whatever ``A``'s magnitude. A
    zero ``A``, or one holding NaN/Inf, is returned as it is (``e = 0``).
    """
    e = _pow2_exponent(_max_abs(xp, A))
    return _times_pow2(xp, A, -e), e


def _ldexp(x: float, e: int) -> float:
    """``x * 2^e`` as a float: +-Inf where it overflows, 0 or a subnormal where it underflows."""
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return math.copysign(math.inf, x)


def _pow2_r_factor(xp, U):
    """``(R, e)`` with ``U = Q R 2^e`` for orthonormal ``Q`` and ``R`` of entries near 1 (reduced QR).

    ``2^e`` is the power of two nearest above ``max|U|``, applied exactly, so
    factors near 1e200 or 1e-200 give an ``R`` whose products neither
    overflow nor underflow; ``R`` is ``None`` for a zero ``U``.
    """
    if _max_abs(xp, U) == 0.0:
        return None, 0
    U, e = _pow2_normalized(xp, U)
    _, R = xp.linalg.qr(U)
    return R, e


def _scaled_frobenius(xp, B, scale: float, e: int) -> float:
    """``scale * 2^e * ||B||_F``, formed without overflow or underflow on the way."""
    m = float(xp.max(xp.abs(B))) if math.prod(B.shape) else 0.0
    if m == 0.0 or scale == 0.0:
        return 0.0
    v = xp.reshape(B / m, (-1,))
    # m's exponent apart: m sqrt(sum) overflowed for entries near 1e308 and
    # was rounded to a subnormal for subnormal m
    fm, em = math.frexp(m)
    fb, eb = math.frexp(fm * math.sqrt(float(xp.vecdot(v, v))))
    eb += em
    fs, es = math.frexp(scale)
    try:
        return math.ldexp(fb * fs, eb + es + e)
    except OverflowError:
        return math.inf


def _check_mode(mode, ndim: int, name: str = "mode") -> int:
    if isinstance(mode, bool) or not isinstance(mode, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(mode).__name__}")
    mode = int(mode)
    if not -ndim <= mode < ndim:
        raise ValueError(f"{name} = {mode} is out of range for a tensor with {ndim} dimensions")
    return mode % ndim


def unfold(X, mode: int):
    """Mode-``mode`` unfolding (matricization) of a tensor.

    Parameters
    ----------
    X : array, shape (n_1, ..., n_d)
        Tensor of any array-API library; not modified.
    mode : int
        The mode that becomes the rows (negative values count from the end).

    Returns
    -------
    array, shape (n_mode, prod of the other sizes)
        The unfolding, in the package's convention (see module docstring).

    Raises
    ------
    TypeError
        If ``X`` is not an array or ``mode`` is not an int.
    ValueError
        If ``mode`` is out of range for ``X.ndim``.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> X = np.arange(24.0).reshape(2, 3, 4)
    >>> ta.unfold(X, 1).shape
    (3, 8)
    >>> bool(np.array_equal(ta.fold(ta.unfold(X, 1), 1, X.shape), X))
    True
    """
    xp = get_namespace(X)
    mode = _check_mode(mode, X.ndim)
    if mode != 0:
        X = xp.moveaxis(X, mode, 0)
    # the column count spelled out: -1 cannot be inferred for a mode of size 0
    return xp.reshape(X, (X.shape[0], math.prod(X.shape[1:])))


def fold(M, mode: int, shape: Sequence[int]):
    """Inverse of :func:`unfold`: rebuild the tensor of ``shape`` from ``M``.

    Parameters
    ----------
    M : array, shape (shape[mode], prod of the other sizes)
        A mode-``mode`` unfolding, as :func:`unfold` returns it.
    mode : int
        The mode whose index runs along the rows of ``M`` (negative values
        count from the end).
    shape : sequence of int
        Shape of the tensor to rebuild.

    Returns
    -------
    array, shape ``shape``
        The tensor ``X`` with ``unfold(X, mode) == M``, of the array
        library of ``M``.

    Raises
    ------
    TypeError
        If ``mode`` or an entry of ``shape`` is not an int.
    ValueError
        If ``mode`` is out of range, an entry of ``shape`` is negative, or
        ``M`` does not have the shape of a mode-``mode`` unfolding of
        ``shape``.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> ta.fold(np.zeros((3, 8)), 1, (2, 3, 4)).shape
    (2, 3, 4)
    """
    xp = get_namespace(M)
    shape = tuple(check_int(s, name=f"shape[{k}]", minimum=0) for k, s in enumerate(shape))  # 2.5 became 2
    mode = _check_mode(mode, len(shape))
    rest = shape[:mode] + shape[mode + 1:]
    # the column count itself: a product with a zero row count matched any
    if M.ndim != 2 or M.shape[0] != shape[mode] or M.shape[1] != math.prod(rest):
        raise ValueError(f"M of shape {tuple(M.shape)} is not a mode-{mode} unfolding of shape {shape}")
    T = xp.reshape(M, (shape[mode],) + rest)
    return xp.moveaxis(T, 0, mode) if mode != 0 else T


def _ttm(xp, X, M, mode: int):
    """``X x_mode M`` for a (J, n_mode) matrix ``M``; inputs trusted.

    Copies nothing of a contiguous ``X`` (a non-contiguous one is copied once
    by the reshape): the leading and trailing modes are plain GEMMs on a
    reshape, a middle mode is a batched GEMM over the leading modes. (A
    permuted copy and one GEMM was measured 1.5x to 10x slower, even for
    trailing blocks of two elements.)
    """
    shape = tuple(X.shape)
    n = shape[mode]
    J = M.shape[0]
    a = math.prod(shape[:mode])
    b = math.prod(shape[mode + 1:])
    out_shape = shape[:mode] + (J,) + shape[mode + 1:]
    if a == 1:
        Y = M @ xp.reshape(X, (n, b))
    elif b == 1:
        if is_numpy(xp):
            # BLAS runs this tall product 1.3x faster with M.T in column-major order
            M = np.ascontiguousarray(M)
        Y = xp.reshape(X, (a, n)) @ xp.matrix_transpose(M)
    else:
        Y = xp.matmul(M, xp.reshape(X, (a, n, b)))
    return xp.reshape(Y, out_shape)


def mode_product(X, U, mode: int, *, transpose: bool = False):
    """Mode-``mode`` product (TTM) ``X x_mode U``.

    Parameters
    ----------
    X : array, shape (n_1, ..., n_d)
        Tensor; not modified.
    U : array, shape (J, n_mode), or (n_mode, J) with ``transpose=True``
        Matrix applied along ``mode``.
    mode : int
        The mode to multiply along.
    transpose : bool, default False
        Multiply by ``U.T`` instead of ``U`` (without forming the transpose).

    Returns
    -------
    array, shape (n_1, ..., J, ..., n_d)
        ``Y`` with ``unfold(Y, mode) == U @ unfold(X, mode)``.

    Raises
    ------
    TypeError
        If ``mode`` is not an int, or ``X`` and ``U`` come from different
        array libraries.
    ValueError
        If ``U`` is not a matrix, ``mode`` is out of range, or the sizes of
        ``U`` and ``X`` along ``mode`` differ.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> X = np.ones((2, 3, 4)); U = np.ones((5, 3))
    >>> ta.mode_product(X, U, 1).shape
    (2, 5, 4)
    """
    transpose = check_bool(transpose, name="transpose")
    xp = get_namespace(X, U)
    X, U = same_float(xp, X, U)
    mode = _check_mode(mode, X.ndim)
    if U.ndim != 2:
        raise ValueError(f"U must be a matrix, got shape {tuple(U.shape)}")
    M = xp.matrix_transpose(U) if transpose else U
    if M.shape[1] != X.shape[mode]:
        need = "U.shape[0]" if transpose else "U.shape[1]"
        raise ValueError(
            f"{need} = {M.shape[1]} does not match X.shape[{mode}] = {X.shape[mode]}"
        )
    return _ttm(xp, X, M, mode)


def multi_mode_product(X, factors: Sequence, modes: Sequence[int] | None = None, *,
                       skip: int | Sequence[int] | None = None, transpose: bool = False):
    """Multiply ``X`` by one matrix per mode, in the cheapest order.

    Parameters
    ----------
    X : array, shape (n_1, ..., n_d)
        Tensor; not modified.
    factors : sequence of arrays
        ``factors[i]`` is applied along ``modes[i]``. ``None`` entries are skipped.
    modes : sequence of int, optional
        Modes of the factors; by default ``0, 1, ..., len(factors) - 1`` (then
        ``len(factors)`` must equal ``X.ndim``).
    skip : int or sequence of int, optional
        Modes to leave out (as in the leave-one-out products of HOOI).
    transpose : bool, default False
        Apply every factor transposed, ``X x_k U_k.T`` (projection onto factor
        spaces, as when computing a Tucker core).

    Returns
    -------
    array
        Equal to the chain of :func:`mode_product` calls in any order; the
        products that shrink the tensor most are applied first.

    Raises
    ------
    TypeError
        If a mode is not an int.
    ValueError
        If the numbers of factors and modes differ (or, without ``modes``,
        the number of factors is not ``X.ndim``), modes repeat or are out of
        range, or a factor is not a matrix of the matching size.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> X = np.ones((4, 5, 6)); Us = [np.ones((4, 2)), np.ones((5, 3)), np.ones((6, 2))]
    >>> ta.multi_mode_product(X, Us, transpose=True).shape
    (2, 3, 2)
    """
    transpose = check_bool(transpose, name="transpose")
    factors = list(factors)  # a generator was used up by the namespace lookup
    ndim = getattr(X, "ndim", None)
    if not isinstance(ndim, int):
        raise TypeError(f"X must be an array, got {type(X).__name__}")
    if modes is None:
        if len(factors) != ndim:
            raise ValueError(f"got {len(factors)} factors for a tensor with {ndim} modes; pass modes=")
        modes = range(ndim)
    modes = [_check_mode(m, ndim, "modes") for m in modes]
    if len(modes) != len(factors):
        raise ValueError(f"got {len(factors)} factors but {len(modes)} modes")
    if len(set(modes)) != len(modes):
        raise ValueError(f"modes must be distinct, got {modes}")
    if skip is None:
        skipped = set()
    elif isinstance(skip, numbers.Integral):
        skipped = {_check_mode(skip, ndim, "skip")}
    elif isinstance(skip, (str, bytes)) or not hasattr(skip, "__iter__"):
        raise TypeError(f"skip must be an int or a sequence of ints, got {type(skip).__name__}")
    else:
        skipped = {_check_mode(s, ndim, "skip") for s in skip}
    # only the factors applied take part in the dtype: a float64 factor of a
    # skipped mode made the product of float32 data float64
    factors = [None if m in skipped else U for U, m in zip(factors, modes)]
    xp = get_namespace(X, *[U for U in factors if U is not None])
    X, *given = same_float(xp, X, *(U for U in factors if U is not None))
    given = iter(given)
    factors = [None if U is None else next(given) for U in factors]
    work = []
    for U, m in zip(factors, modes):
        if U is None or m in skipped:
            continue
        if U.ndim != 2:
            raise ValueError(f"the factor for mode {m} must be a matrix, got shape {tuple(U.shape)}")
        M = xp.matrix_transpose(U) if transpose else U
        if M.shape[1] != X.shape[m]:
            raise ValueError(
                f"the factor for mode {m} has {M.shape[1]} {'rows' if transpose else 'columns'}, "
                f"X.shape[{m}] = {X.shape[m]}"
            )
        work.append((m, M))
    return _mode_products(xp, X, work)[0]


def _mode_products(xp, X, work):
    """``X x_m M`` for every ``(m, M)`` in ``work`` (inputs trusted), in the cheapest order.

    Returns ``(Y, first)``: the product, and ``(m, X x_m M)`` for the mode
    ``m`` taken first (None when ``work`` is empty), which callers may reuse.
    """
    order = []
    for m, M in work:
        # a leading or trailing mode is one GEMM on a reshape, a middle one a
        # batched GEMM (16.7 ms against 14.1 ms as the first of two products
        # on 200^3 at rank 10)
        layout = 0 if m == 0 else (1 if m == X.ndim - 1 else 2)
        order.append((M.shape[0] / max(M.shape[1], 1), layout, m, M))  # a mode of size 0 shrinks nothing
    # shrink first: the smallest output/input ratio first, ties to the plain GEMMs
    order.sort(key=lambda t: t[:2])
    first = None
    for i, (_, _, m, M) in enumerate(order):
        if m == X.ndim - 1 and i < len(work) - 1 and is_numpy(xp) and X.flags.c_contiguous:
            # a trailing mode before further products: M @ X_(a,n)^T writes
            # the (J, a) transpose of the result, which BLAS produces faster
            # than the (a, J) product itself (8.4 ms against 9.7 ms on 200^3
            # at rank 10); the next product's reshape copies the smaller view
            shape = tuple(X.shape)
            # explicit row count: -1 cannot be inferred for a size-0 trailing mode
            Yt = M @ xp.matrix_transpose(xp.reshape(X, (math.prod(shape[:-1]), shape[-1])))
            X = xp.moveaxis(xp.reshape(Yt, (M.shape[0],) + shape[:-1]), 0, -1)
        else:
            X = _ttm(xp, X, M, m)
        if i == 0:
            first = (m, X)
    return X, first


def khatri_rao(matrices: Sequence, *, skip: int | None = None):
    """Column-wise Kronecker (Khatri-Rao) product.

    Parameters
    ----------
    matrices : sequence of arrays, each of shape (n_k, R)
        Matrices with the same number of columns ``R``.
    skip : int, optional
        Index of a matrix to leave out (negative counts from the end).

    Returns
    -------
    array, shape (prod n_k, R)
        Row ``(i_1, ..., i_K)`` in C order (the first matrix's index varies
        slowest), so that ``unfold(cp_full, k) == A_k @ khatri_rao(A, skip=k).T``.

    Raises
    ------
    ValueError
        If no matrix is left, ``skip`` is out of range, or the matrices are
        not 2-D with the same number of columns.
    TypeError
        If ``skip`` is not an int.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> A, B = np.ones((2, 3)), np.ones((4, 3))
    >>> ta.khatri_rao([A, B]).shape
    (8, 3)
    """
    matrices = list(matrices)
    if skip is not None:
        # as multi_mode_product: negative indices count from the end, others
        # are refused (skip=-1 once kept every matrix, skip=7 was ignored)
        if isinstance(skip, bool) or not isinstance(skip, numbers.Integral):
            raise TypeError(f"skip must be an int, got {type(skip).__name__}")
        if not -len(matrices) <= skip < len(matrices):
            raise ValueError(f"skip = {skip} is out of range for {len(matrices)} matrices")
        skip = int(skip) % len(matrices)
    for i, A in enumerate(matrices):
        if getattr(A, "ndim", None) != 2:
            raise ValueError(f"matrix {i} must be 2-D, got shape {tuple(getattr(A, 'shape', ()))}")
    kept = [i for i in range(len(matrices)) if i != skip]  # the caller's indices, for the messages
    mats = [matrices[i] for i in kept]
    if not mats:
        raise ValueError("khatri_rao needs at least one matrix")
    xp = get_namespace(*mats)
    mats = same_float(xp, *mats)
    R = mats[0].shape[1]
    for i, A in zip(kept, mats):
        if A.shape[1] != R:
            raise ValueError(f"all matrices need {R} columns; matrix {i} has shape {tuple(A.shape)}")
    K = mats[0]
    for A in mats[1:]:
        K = xp.reshape(K[:, None, :] * A[None, :, :], (K.shape[0] * A.shape[0], R))  # -1 fails for R = 0
    return K


def kronecker(matrices: Sequence):
    """Kronecker product ``A_1 (x) A_2 (x) ... (x) A_K`` of matrices (numpy's ``kron`` order).

    Parameters
    ----------
    matrices : sequence of 2-D arrays
        The factors ``A_1, ..., A_K``, of shapes ``(m_k, n_k)``, from one
        array library.

    Returns
    -------
    array, shape (prod m_k, prod n_k)
        Equal to ``numpy.kron(A_1, numpy.kron(A_2, ...))`` for numpy input.

    Raises
    ------
    ValueError
        If ``matrices`` is empty or a matrix is not 2-D.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> A, B = np.eye(2), np.ones((2, 3))
    >>> bool(np.array_equal(ta.kronecker([A, B]), np.kron(A, B)))
    True
    """
    matrices = list(matrices)  # a generator has no len()
    if len(matrices) == 0:
        raise ValueError("kronecker needs at least one matrix")
    xp = get_namespace(*matrices)
    for i, A in enumerate(matrices):
        if A.ndim != 2:
            raise ValueError(f"matrix {i} must be 2-D, got shape {tuple(A.shape)}")
    matrices = same_float(xp, *matrices)
    K = matrices[0]
    for A in matrices[1:]:
        m, n = K.shape
        p, q = A.shape
        K = xp.reshape(K[:, None, :, None] * A[None, :, None, :], (m * p, n * q))
    return K
