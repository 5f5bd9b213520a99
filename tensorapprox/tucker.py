"""The Tucker format and its algorithms: HOSVD, ST-HOSVD and Tucker-ALS (HOOI).

A Tucker tensor is ``X = G x_1 U_1 x_2 U_2 ... x_d U_d`` with a core ``G`` of
shape ``(r_1, ..., r_d)`` and factors ``U_k`` of shape ``(n_k, r_k)``. The
algorithms here return orthonormal factors. Everything dense is array-API
generic: numpy, cupy and ``array_api_strict`` inputs give results of the same
kind, on the same device.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

from ._array import (check_random_state, float_dtype_for, get_namespace, is_numpy, random_normal, readonly,
                     to_numpy)
from ._dask import is_dask_collection
from ._kernels.residual import projection_residual
from ._kernels.sketch import sign_sketch
from ._kernels.tucker import tucker_entries
from ._validation import (DEFAULT_MAX_DENSE_BYTES, check_bool, check_choice, check_dense_size, check_int,
                          check_positive_float, check_rank, check_rank_or_rtol, check_tensor, npz_version, read_npz)
from .tensor import (_ldexp, _max_abs, _mode_products, _pow2_exponent, _pow2_normalized, _pow2_r_factor,
                     _scaled_frobenius, _times_pow2, _ttm, multi_mode_product)

__all__ = ["TuckerTensor", "TuckerALSResult", "hosvd", "st_hosvd", "tucker_als"]

_FORMAT_TAG = "tensorapprox.TuckerTensor"
_FORMAT_VERSION = 1
_METHODS = ("auto", "eigh", "svd", "randomized")


def _itemsize(xp, dtype) -> int:
    return xp.finfo(dtype).bits // 8


def _sumsq(xp, X) -> float:
    """Squared Frobenius norm as one dot product (no temporary array)."""
    v = xp.reshape(X, (-1,))
    with np.errstate(over="ignore"):  # huge finite data: inf is the honest answer
        return float(xp.vecdot(v, v))


class TuckerTensor:
    """An immutable Tucker tensor, the core ``G`` multiplied by ``U_k`` in every mode ``k``.

    Parameters
    ----------
    core : array, shape (r_1, ..., r_d)
        The core tensor.
    factors : sequence of d arrays, shape (n_k, r_k)
        One factor matrix per mode, of the same array library as ``core``.
    copy : bool, default True
        Copy ``core`` and ``factors``, so that changing those arrays
        afterwards does not change the tensor. With ``copy=False`` they are
        used as they are: do not modify them while the tensor is in use (its
        norm caches whether the factors are orthonormal).

    Attributes
    ----------
    core, factors : arrays (read-only views for numpy)
    shape : tuple of int
        ``(n_1, ..., n_d)``.
    ranks : tuple of int
        ``(r_1, ..., r_d)``.

    Raises
    ------
    TypeError
        If core and factors are not arrays of one array library, the core is
        complex, or a factor's dtype differs from the core's.
    ValueError
        If the number of factors differs from ``core.ndim``, a factor is not a
        matrix, or its column count differs from the core's size in its mode.

    Notes
    -----
    The arrays are copied (unless ``copy=False``); numpy arrays are exposed
    read-only, so the object cannot be changed through its attributes either
    (other array libraries have no read-only arrays: do not write to them). Arithmetic returns
    new objects: ``A + B`` stacks cores block-diagonally (ranks add), ``c * A``
    scales the core. ``copy.copy``, ``copy.deepcopy`` and ``pickle`` rebuild
    the tensor through the constructor, so copies are read-only too.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> rng = np.random.default_rng(0)
    >>> G = rng.standard_normal((2, 3, 2))
    >>> Us = [np.linalg.qr(rng.standard_normal((n, r)))[0] for n, r in [(5, 2), (6, 3), (4, 2)]]
    >>> T = ta.TuckerTensor(G, Us)
    >>> T.shape, T.ranks
    ((5, 6, 4), (2, 3, 2))
    >>> bool(np.isclose(T.norm(), np.linalg.norm(T.full())))
    True
    """

    __slots__ = ("_core", "_factors", "_orthonormal")

    def __init__(self, core, factors: Sequence, *, copy: bool = True):
        factors = tuple(factors)
        try:
            xp = get_namespace(core, *factors)
        except TypeError as exc:
            raise TypeError(f"core and factors must be arrays of one array library: {exc}") from None
        if core.ndim < 1:
            raise ValueError("core must have at least one dimension")
        if len(factors) != core.ndim:
            raise ValueError(f"got {len(factors)} factors for a core with {core.ndim} modes")
        given_core, given_factors = core, factors
        dt = float_dtype_for(core, xp)  # rejects complex
        if any(int(r) == 0 for r in core.shape):
            raise ValueError(f"core has an empty dimension: shape {tuple(core.shape)}; every rank must be >= 1")
        # integer, boolean and other floating arrays (float16, longdouble) are
        # promoted to float64, as inputs are everywhere (an integer core was
        # kept and failed later in full() and norm(), float16 in norm())
        if core.dtype != dt:
            core = xp.astype(core, dt)
        factors = tuple(U if U.dtype in (xp.float32, xp.float64) else xp.astype(U, xp.float64) for U in factors)
        for k, U in enumerate(factors):
            if U.ndim != 2:
                raise ValueError(f"factors[{k}] must be a matrix, got shape {tuple(U.shape)}")
            if U.shape[1] != core.shape[k]:
                raise ValueError(
                    f"factors[{k}] has {U.shape[1]} columns but the core has size {core.shape[k]} in mode {k}"
                )
            if U.dtype != core.dtype:
                raise TypeError(f"factors[{k}] has dtype {U.dtype}, the core {core.dtype}; use one dtype")
        copy = check_bool(copy, name="copy")
        # a promoted array is already this object's own
        self._core = readonly(core, xp, bool(copy) and core is given_core)
        self._factors = tuple(readonly(U, xp, bool(copy) and U is V) for U, V in zip(factors, given_factors))
        self._orthonormal = None

    def __reduce__(self):
        # copy.copy, copy.deepcopy and pickle rebuild the tensor through the
        # constructor: its arrays are then copied and read-only again, and
        # whether the factors are orthonormal is found anew (copies restored
        # from the slots held writable arrays and the cached flag, so a write
        # into a copy's factors left norm() silently wrong)
        return (type(self), (self._core, self._factors))

    # -- basic properties -------------------------------------------------
    @property
    def core(self):
        """The core tensor, an array of shape ``ranks`` (read-only for numpy)."""
        return self._core

    @property
    def factors(self) -> tuple:
        """The factor matrices, a tuple with ``factors[k]`` of shape ``(shape[k], ranks[k])``."""
        return self._factors

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape ``(n_1, ..., n_d)`` of the full tensor, a tuple of int."""
        return tuple(int(U.shape[0]) for U in self._factors)

    @property
    def ranks(self) -> tuple[int, ...]:
        """The multilinear rank ``(r_1, ..., r_d)`` (the core's shape), a tuple of int."""
        return tuple(int(r) for r in self._core.shape)

    @property
    def ndim(self) -> int:
        """The number of modes ``d``, an int."""
        return len(self._factors)

    @property
    def dtype(self):
        """The floating dtype of the core and the factors."""
        return self._core.dtype

    @property
    def _xp(self):
        return get_namespace(self._core, *self._factors)

    @property
    def nbytes(self) -> int:
        """The bytes held by the core and the factors, an int."""
        xp = self._xp
        n = math.prod(self.ranks) + sum(math.prod(U.shape) for U in self._factors)
        return n * _itemsize(xp, self.dtype)

    @property
    def compression_ratio(self) -> float:
        """The entries of the full tensor divided by the entries stored, a float."""
        stored = math.prod(self.ranks) + sum(math.prod(U.shape) for U in self._factors)
        return math.prod(self.shape) / stored

    def __repr__(self) -> str:
        return (f"TuckerTensor(shape={self.shape}, ranks={self.ranks}, dtype={self.dtype}, "
                f"compression_ratio={self.compression_ratio:.3g})")

    # -- evaluation -------------------------------------------------------
    def full(self, *, max_bytes: int | None = DEFAULT_MAX_DENSE_BYTES):
        """The dense tensor.

        Parameters
        ----------
        max_bytes : int or None, default 2**30
            Refuse to allocate more than this many bytes (``None``: no
            limit); a Tucker tensor is often far smaller than its dense form.

        Returns
        -------
        array, shape ``shape``
            ``G x_1 U_1 ... x_d U_d``, in the factors' array library.

        Raises
        ------
        MemoryError
            If the dense tensor would exceed ``max_bytes``.

        Examples
        --------
        >>> import numpy as np, tensorapprox as ta
        >>> T = ta.TuckerTensor(np.ones((1, 1)), [np.ones((2, 1)), np.arange(3.0)[:, None]])
        >>> T.full()
        array([[0., 1., 2.],
               [0., 1., 2.]])
        """
        check_dense_size(self.shape, _itemsize(self._xp, self.dtype), max_bytes, what="tensor",
                         instead="use entries(indices) for values at chosen indices")
        return multi_mode_product(self._core, self._factors)

    def entries(self, indices):
        """Evaluate the entries at an ``(n, d)`` integer index array, without forming the full tensor.

        Parameters
        ----------
        indices : array of int, shape (n, d)
            One row per requested entry. Negative indices are not accepted.

        Returns
        -------
        array, shape (n,)
            ``T[indices[i]]`` for each row ``i``, in the factors' array library.

        Raises
        ------
        ValueError
            If ``indices`` is not (n, d) or holds an index out of bounds (the
            message names the mode).
        TypeError
            If ``indices`` is not of an integer dtype, or is an array of
            another array library than the tensor's.

        Examples
        --------
        >>> import numpy as np, tensorapprox as ta
        >>> X = np.arange(24.0).reshape(2, 3, 4)
        >>> T = ta.st_hosvd(X, rank=(2, 2, 2))
        >>> np.round(T.entries(np.array([[1, 2, 3], [0, 0, 1]])), 10)
        array([23.,  1.])
        """
        xp = self._xp
        if not hasattr(indices, "shape"):
            indices = xp.asarray(np.asarray(indices))
        try:
            get_namespace(self._core, indices)
        except TypeError:
            # a numpy index array for an array_api_strict tensor failed inside
            # xp.min with an unrelated dtype error
            raise TypeError(f"indices must be an array of the tensor's array library ({xp.__name__}) or a "
                            f"list, got {type(indices).__module__}.{type(indices).__name__}") from None
        if indices.ndim != 2 or indices.shape[1] != self.ndim:
            raise ValueError(f"indices must have shape (n, {self.ndim}), got {tuple(indices.shape)}")
        if not xp.isdtype(indices.dtype, "integral"):
            raise TypeError(f"indices must be integers, got dtype {indices.dtype}")
        if indices.shape[0] > 0:
            lo = to_numpy(xp.min(indices, axis=0))
            hi = to_numpy(xp.max(indices, axis=0))
            for k, n in enumerate(self.shape):
                if lo[k] < 0 or hi[k] >= n:
                    bad = lo[k] if lo[k] < 0 else hi[k]
                    raise ValueError(f"indices out of bounds in mode {k}: {int(bad)} not in [0, {n})")
        return tucker_entries(self._core, self._factors, indices)

    # -- norms and inner products ----------------------------------------
    def _has_orthonormal_factors(self) -> bool:
        if self._orthonormal is None:
            xp = self._xp
            tol = 100 * float(xp.finfo(self.dtype).eps) * max(self.shape)
            ok = True
            for U in self._factors:
                r = U.shape[1]
                with np.errstate(over="ignore", invalid="ignore"):  # huge factors: Inf/NaN, not orthonormal
                    E = xp.matrix_transpose(U) @ U - xp.eye(r, dtype=U.dtype)
                    dev = float(xp.max(xp.abs(E)))
                if not dev <= tol:
                    ok = False
                    break
            self._orthonormal = ok
        return self._orthonormal

    def norm(self) -> float:
        """Compute the Frobenius norm; from the core alone when the factors are orthonormal.

        Returns
        -------
        float
            ``||T||_F``, computed without forming the full tensor.

        Examples
        --------
        >>> import numpy as np, tensorapprox as ta
        >>> T = ta.TuckerTensor(np.full((1, 1), 2.0), [np.ones((4, 1)), np.ones((9, 1))])
        >>> T.norm()  # sqrt(36 entries of 2)
        12.0
        """
        xp = self._xp
        # over the core's largest magnitude: the squares of a core near 1e-160
        # underflowed to a zero norm, near 1e160 overflowed to NaN
        top = float(xp.max(xp.abs(self._core))) if math.prod(self.ranks) > 0 else 0.0
        if top == 0.0 or not math.isfinite(top):
            return top
        if self._has_orthonormal_factors():
            return top * math.sqrt(_sumsq(xp, self._core / top))
        # ||G x_k U_k|| = ||G x_k R_k|| for U_k = Q_k R_k: no cancellation (the
        # inner product <T, T> lost half the digits of a difference of two
        # close tensors, and its Gram matrices U_k^T U_k overflowed for
        # factors near 1e170), each factor scaled by a power of two first
        Rs, e = [], 0
        for U in self._factors:
            R, ek = _pow2_r_factor(xp, U)
            if R is None:
                return 0.0
            Rs.append(R)
            e += ek
        return _scaled_frobenius(xp, multi_mode_product(self._core / top, Rs), top, e)

    def inner(self, other) -> float:
        """Compute the Frobenius inner product with another TuckerTensor or a dense array.

        Never forms a full tensor: for two Tucker tensors it contracts the
        small Gram matrices ``U_k.T @ V_k`` into one core. Every array is
        scaled by a power of two and the small ones are accumulated in
        float64, so the result is accurate and finite wherever it is
        representable (also for float32 tensors).

        Parameters
        ----------
        other : TuckerTensor or array
            Of the same shape.

        Returns
        -------
        float
            ``sum(self.full() * other_full)``.

        Raises
        ------
        ValueError
            If the shapes differ.

        Examples
        --------
        >>> import numpy as np, tensorapprox as ta
        >>> rng = np.random.default_rng(1)
        >>> A = ta.TuckerTensor(rng.standard_normal((2, 2)), [rng.standard_normal((5, 2)) for _ in range(2)])
        >>> B = rng.standard_normal((5, 5))
        >>> bool(np.isclose(A.inner(B), np.sum(A.full() * B)))
        True
        """
        xp = self._xp
        # Every array is scaled by a power of two near its largest magnitude
        # (exact), and the small arrays are converted to float64, as in
        # norm(): the products of factors near 1e160 overflowed to NaN, those
        # of float32 tensors near 1e18 to Inf, and float32 entries near 1e-22
        # lost digits to subnormal products. The exponents are applied to the
        # float64 result at the end.
        if isinstance(other, TuckerTensor):
            if other.shape != self.shape:
                raise ValueError(f"shapes differ: {self.shape} and {other.shape}")
            e = 0
            grams = []
            for U, V in zip(self._factors, other._factors):
                (U, eu), (V, ev) = _pow2_scaled64(xp, U), _pow2_scaled64(xp, V)
                grams.append(xp.matrix_transpose(U) @ V)
                e += eu + ev
            (A, ea), (B, eb) = _pow2_scaled64(xp, self._core), _pow2_scaled64(xp, other._core)
            # G_self . (G_other x_k (U_k^T V_k))
            W = multi_mode_product(B, grams)
            return _ldexp(float(xp.sum(A * W)), e + ea + eb)
        if tuple(other.shape) != self.shape:
            raise ValueError(f"shapes differ: {self.shape} and {tuple(other.shape)}")
        # integers promote to float64 (array_api_strict refuses mixed products),
        # float32 to float64 for a float64 tensor
        dt = float_dtype_for(other, xp)
        if self.dtype == xp.float64:
            dt = xp.float64
        D = other if other.dtype == dt else xp.astype(other, dt)
        eo = _pow2_exponent(_max_abs(xp, D))  # 0 for zeros and NaN/Inf, which then propagate
        D = _times_pow2(xp, D, -eo) if eo else D
        e, factors = eo, []
        for U in self._factors:
            U, eu = _pow2_scaled64(xp, U)
            factors.append(U if D.dtype == xp.float64 else xp.astype(U, D.dtype))
            e += eu
        # the dense contraction in D's dtype (no float64 copy of a large
        # float32 tensor); its result, of the ranks' size, in float64
        P = xp.astype(multi_mode_product(D, factors, transpose=True), xp.float64)
        A, ea = _pow2_scaled64(xp, self._core)
        return _ldexp(float(xp.sum(A * P)), e + ea)

    # -- arithmetic --------------------------------------------------------
    def __mul__(self, scalar):
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Real):
            return NotImplemented
        # a Python float keeps the core's dtype (a numpy float64 scalar made a
        # float32 core float64, and the factors' dtype no longer matched)
        return TuckerTensor(self._core * float(scalar), self._factors, copy=False)

    __rmul__ = __mul__

    def __truediv__(self, scalar):
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Real):
            return NotImplemented
        if float(scalar) == 0.0:
            raise ZeroDivisionError("division of a TuckerTensor by zero")
        return TuckerTensor(self._core / float(scalar), self._factors, copy=False)

    def __neg__(self):
        return TuckerTensor(-self._core, self._factors, copy=False)

    def __add__(self, other):
        if not isinstance(other, TuckerTensor):
            return NotImplemented
        if other.shape != self.shape:
            raise ValueError(f"shapes differ: {self.shape} and {other.shape}")
        xp = self._xp
        ra, rb = self.ranks, other.ranks
        core = xp.zeros(tuple(a + b for a, b in zip(ra, rb)), dtype=self.dtype)
        # block-diagonal core: build by padding (array-API arrays may be immutable)
        core = _place_block(xp, core, self._core, (0,) * self.ndim)
        core = _place_block(xp, core, other._core, ra)
        factors = [xp.concat([U, V], axis=1) for U, V in zip(self._factors, other._factors)]
        return TuckerTensor(core, factors, copy=False)

    def __sub__(self, other):
        if not isinstance(other, TuckerTensor):
            return NotImplemented
        return self + (-other)

    # -- persistence -------------------------------------------------------
    def save(self, path) -> None:
        """Write to ``.npz`` (numpy arrays on the host; no pickle).

        Parameters
        ----------
        path : str or os.PathLike
            Destination file; numpy appends ``.npz`` when it is missing.

        Raises
        ------
        OSError
            If the file cannot be written.

        Examples
        --------
        >>> import numpy as np, tensorapprox as ta, tempfile, os
        >>> T = ta.st_hosvd(np.ones((4, 5, 6)), rank=1)
        >>> p = os.path.join(tempfile.mkdtemp(), "t.npz"); T.save(p)
        >>> ta.TuckerTensor.load(p).ranks
        (1, 1, 1)
        """
        arrays = {f"factor_{k}": to_numpy(U) for k, U in enumerate(self._factors)}
        np.savez(path, format=np.array(_FORMAT_TAG), version=np.array(_FORMAT_VERSION),
                 ndim=np.array(self.ndim), core=to_numpy(self._core), **arrays)

    @classmethod
    def load(cls, path) -> "TuckerTensor":
        """Read a file written by :meth:`save` (numpy arrays).

        Parameters
        ----------
        path : str or os.PathLike
            A ``.npz`` file written by :meth:`save`; read with
            ``allow_pickle=False``.

        Returns
        -------
        TuckerTensor

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not a readable ``.npz`` written by :meth:`save`.

        Examples
        --------
        >>> import numpy as np, tensorapprox as ta, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "t.npz")
        >>> ta.st_hosvd(np.ones((3, 4)), rank=1).save(p)
        >>> T = ta.TuckerTensor.load(p)
        >>> T.shape, bool(np.allclose(T.full(), 1.0))
        ((3, 4), True)
        """
        data = read_npz(path, "TuckerTensor")
        if "format" not in data or str(data["format"]) != _FORMAT_TAG:
            raise ValueError(f"{path!s} is not a TuckerTensor file (missing or foreign 'format' tag)")
        npz_version(data, f"{path!s}", "TuckerTensor", _FORMAT_VERSION)
        try:
            d = int(data["ndim"])
            core = data["core"]
            factors = [data[f"factor_{k}"] for k in range(d)]
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # int(inf): OverflowError
            raise ValueError(f"{path!s} is a corrupt TuckerTensor file: {exc}") from None
        try:
            return cls(core, factors, copy=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path!s} is a corrupt TuckerTensor file: {exc}") from None


def _pow2_scaled64(xp, A):
    """``(A * 2^-e in float64, e)`` with ``2^e`` the power of two just above ``max|A|``.

    A zero ``A``, or one holding NaN/Inf, is left unscaled (``e = 0``), so
    that NaN and Inf propagate to the result.
    """
    return _pow2_normalized(xp, xp.astype(A, xp.float64))


def _place_block(xp, big, block, offset):
    """``big`` with ``block`` written at ``offset`` (functional, works on immutable arrays)."""
    pad_before = offset
    pad = [(o, s - o - b) for o, s, b in zip(pad_before, big.shape, block.shape)]
    # build the padded block with concatenations of zeros, one mode at a time
    out = block
    for k, (lo, hi) in enumerate(pad):
        parts = []
        if lo:
            shp = list(out.shape); shp[k] = lo
            parts.append(xp.zeros(tuple(shp), dtype=out.dtype))
        parts.append(out)
        if hi:
            shp = list(out.shape); shp[k] = hi
            parts.append(xp.zeros(tuple(shp), dtype=out.dtype))
        out = xp.concat(parts, axis=k) if len(parts) > 1 else out
    return big + out


@dataclass(frozen=True)
class TuckerALSResult:
    """Result of :func:`tucker_als`.

    Attributes
    ----------
    tucker : TuckerTensor
        The approximation, orthonormal factors.
    n_iter : int
        Sweeps performed.
    converged : bool
        True when the decrease of the relative error fell below ``tol``.
    history : tuple of float
        Relative error ``||X - X_hat||_F / ||X||_F`` after the initial guess
        (entry 0) and after each sweep.
    init : TuckerTensor
        The initial guess the sweeps started from.

    Notes
    -----
    A frozen dataclass: built by :func:`tucker_als`, never changed.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> rng = np.random.default_rng(0)
    >>> res = ta.tucker_als(rng.standard_normal((6, 7, 8)), rank=2, max_iter=5)
    >>> len(res.history) == res.n_iter + 1, res.rel_error == res.history[-1]
    (True, True)
    """

    tucker: TuckerTensor
    n_iter: int
    converged: bool
    history: tuple
    init: TuckerTensor

    @property
    def rel_error(self) -> float:
        """The final relative error (``history[-1]``), a float."""
        return self.history[-1]


# ---------------------------------------------------------------------------
# spectra of unfoldings
# ---------------------------------------------------------------------------

def _rank_for_budget(sigma2: np.ndarray, budget: float) -> int:
    """Smallest r >= 1 whose discarded tail sum_{i >= r} sigma2[i] is <= budget."""
    tails = np.concatenate([np.cumsum(sigma2[::-1])[::-1], [0.0]])  # tails[r] = sum_{i>=r}
    ok = np.nonzero(tails <= budget)[0]
    return max(1, int(ok[0])) if ok.size else sigma2.size


def _gram(xp, Y, mode: int):
    """``Y_(mode) @ Y_(mode).T`` without forming the unfolding for the outer modes."""
    shape = tuple(Y.shape)
    n = shape[mode]
    a = math.prod(shape[:mode])
    b = math.prod(shape[mode + 1:])
    if a == 1:
        A = xp.reshape(Y, (n, b))
        return A @ xp.matrix_transpose(A)
    if b == 1:
        A = xp.reshape(Y, (a, n))
        return xp.matrix_transpose(A) @ A
    Y3 = xp.reshape(Y, (a, n, b))
    if _gram_sums_slabs(a, n, b):
        # sum of the slabs' Gram matrices: no permuted copy of Y, but a
        # general product per slab (twice a symmetric update's flops), worth
        # it only where the copy is the larger cost, long rows b >> n
        return xp.sum(xp.matmul(Y3, xp.matrix_transpose(Y3)), axis=0)
    # one permuted copy, then A @ A.T, which BLAS runs as a symmetric rank-k
    # update (half the flops of a general product). tensordot, used before,
    # made two copies and a general product: 2 to 2.8x slower on middle
    # modes of 200^3, 50 x 400 x 400 and 100 x 100 x 100 x 20 tensors
    A = _unfolding(xp, Y, mode)
    return A @ xp.matrix_transpose(A)


# the (a, n, n) stack of slab Gram matrices is summed when it is this small
# and the slabs' rows are at least _BATCHED_GRAM_MIN_RATIO times longer than
# n. Measured against the permuted copy and A @ A.T (numpy, OpenBLAS, 2
# threads): slabs (a, n, b) with b = n took 1.3 to 1.5x longer summed
# (10 x 200 x 200: 3.4 against 2.4 ms), b = 20 < n 1.6 to 4.7x, b = 4 n
# about as long, b = 10 n 0.7 to 0.9x
_BATCHED_GRAM_ELEMS = 1 << 21
_BATCHED_GRAM_MIN_RATIO = 4


def _gram_sums_slabs(a: int, n: int, b: int) -> bool:
    """Whether :func:`_gram` sums slab products for a middle mode of an ``(a, n, b)`` tensor (no permuted copy)."""
    return a * n * n <= _BATCHED_GRAM_ELEMS and b >= _BATCHED_GRAM_MIN_RATIO * n


def _gram_float64(xp, Y, mode: int):
    """``Y_(mode) @ Y_(mode).T`` in float64 for float32 ``Y``, a block of columns at a time.

    Each block of about ``_GRAM64_BLOCK_ELEMS`` entries is converted and its
    product accumulated, so the float64 copy never exceeds a block.
    """
    A = _unfolding(xp, Y, mode)  # a view for mode 0, one permuted copy otherwise
    n, m = (int(s) for s in A.shape)
    step = max(1, _GRAM64_BLOCK_ELEMS // n)
    G = None
    for j in range(0, m, step):
        Ab = xp.astype(A[:, j:min(j + step, m)], xp.float64)
        part = Ab @ xp.matrix_transpose(Ab)
        G = part if G is None else G + part
    return G


# columns of the float32 unfolding converted to float64 at a time (x n entries)
_GRAM64_BLOCK_ELEMS = 1 << 20


def _leading_eigh(xp, G, r: int):
    """The ``r`` largest eigenpairs of the symmetric PSD ``G``, descending, and the sum of the others.

    Returns ``(lam, V, rest)``: ``lam`` a numpy array of the ``r`` eigenvalues
    (clipped at 0), ``V`` the ``(n, r)`` eigenvectors in ``G``'s namespace,
    ``rest`` the sum of the other eigenvalues. A certified block subspace
    iteration (:func:`_subspace_eigh`) runs first where it can pay; the full
    ``eigh`` otherwise, or when it does not certify its pairs. (scipy's
    subset drivers compute only the wanted pairs too, but they run on
    scipy's own BLAS threads, which then spin beside numpy's and slowed the
    whole decomposition down.)
    """
    n = G.shape[0]
    block = r + _SUBSPACE_EXTRA
    if n >= _SUBSPACE_MIN_N and 2 * block <= n:
        out = _subspace_eigh(xp, G, r, block)
        if out is not None:
            return out
    w, V = xp.linalg.eigh(G)
    lam = np.clip(to_numpy(xp.flip(w)), 0.0, None)
    return lam[:r], xp.flip(V, axis=1)[:, :r], float(np.sum(lam[r:]))


# the subspace iteration: its block has r + _SUBSPACE_EXTRA columns; it is
# tried for matrices of order _SUBSPACE_MIN_N and more, for at most
# _SUBSPACE_MAX_ITER iterations
_SUBSPACE_EXTRA = 10
_SUBSPACE_MIN_N = 64
_SUBSPACE_MAX_ITER = 8


def _subspace_eigh(xp, G, r: int, block: int):
    """The ``r`` leading eigenpairs of a PSD ``G`` by block subspace iteration, or None.

    Rayleigh-Ritz on ``span(G^k Omega)`` (a fixed-seed Gaussian start of
    ``block`` columns; Saad, *Numerical Methods for Large Eigenvalue
    Problems*, ch. 5). A result is returned only when it is certified to be
    as good as the dense ``eigh``'s:

    - every wanted Ritz pair has a residual ``||G x - theta x||`` below
      ``n eps theta_1``, the backward error of a dense symmetric
      eigensolver, so each is an eigenpair to that accuracy;
    - the eigenvalues outside the block sum to ``trace(G) - sum(theta)``
      (``G`` is PSD), and that sum, with its rounding ``n eps trace(G)``
      added, lies below ``theta_r``: no eigenvalue the start missed can
      exceed the ``r``-th.

    Otherwise (a slowly decaying spectrum, a cluster around ``theta_r``) it
    returns None after at most ``_SUBSPACE_MAX_ITER`` products ``G V``, each
    ``n^2 block`` multiply-adds, against the ``~9 n^3`` of ``eigh``.
    """
    n = G.shape[0]
    eps = float(xp.finfo(G.dtype).eps)
    trace = float(xp.sum(xp.linalg.diagonal(G)))
    if not trace > 0.0:
        return None
    rng = np.random.default_rng(0x5EED)
    V, _ = xp.linalg.qr(G @ random_normal(xp, (n, block), G.dtype, rng, like=G))
    for _ in range(_SUBSPACE_MAX_ITER):
        W = G @ V
        H = xp.matrix_transpose(V) @ W
        theta, S = xp.linalg.eigh(0.5 * (H + xp.matrix_transpose(H)))
        theta = xp.flip(theta)
        S = xp.flip(S, axis=1)
        X = V @ S[:, :r]
        GX = W @ S[:, :r]
        th = np.clip(to_numpy(theta), 0.0, None)
        res = to_numpy(xp.linalg.vector_norm(GX - X * theta[None, :r], axis=0))
        outside = trace - float(np.sum(th)) + n * eps * trace
        if np.all(res <= n * eps * th[0]) and outside < th[r - 1]:
            return th[:r], X, max(trace - float(np.sum(th[:r])), 0.0)
        V, _ = xp.linalg.qr(W @ S)
    return None


def _resolved(value, scale, n: int, eps: float) -> bool:
    """Whether an eigenvalue ``value`` of an order-``n`` Gram matrix resolves its eigenvector.

    ``scale`` is the size of the matrix's rounding per unit of ``n eps``:
    its largest eigenvalue for a Gram matrix formed from the data (a
    symmetric eigensolver's eigenvalues carry absolute errors of about
    ``n eps lam_max``); near that level the eigenvector comes out mixed with
    its neighbours. Measured on ST-HOSVD at a fixed rank ``r`` (the samples
    of ``1/sqrt(x^2+y^2+z^2+0.1)`` on 128^3, superdiagonal cores of geometric
    spectra ``q^i``, q = 0.1 to 0.5, n = 100 and 200), the error's excess over
    the SVD route against ``t = lam_r / (n eps scale)``: below 2e-6 for
    t >= 40, 3e-6 to 1.2e-5 for t = 6 to 13, 7e-4 at t = 1.1, 2e-2 at t = 0.1,
    and 100% to 10^6 times for t <= 0.01; the refined route's ``C_t C_t^T``
    (``scale = sqrt(lam_max mu_max)``, 64^3 and 128^3 samples, q = 0.1, 0.3)
    1.3e-5 to 4.5e-5 for t = 4.5 to 22, 7e-4 at t = 1.1, 8e-3 at t = 0.1.
    ``_RESOLVED_T`` draws the line.
    """
    return float(value) >= _RESOLVED_T * n * eps * float(scale)


# eigenvalues at least this many times n eps of the largest are resolved
_RESOLVED_T = 4.0
# the refined route's energies decide an rtol rank for budgets of at least
# this many times n eps sqrt(lam_max mu_max). With t = budget / (n eps
# sqrt(lam_max mu_max)), its first-mode ranks differed from the SVD route's
# (always by +1): on 1,400 random unfoldings (n = 8 to 120, graded and
# gapped spectra, rtol 1e-13 to 1e-8, the budgets the refined route takes)
# in 7 cases, all at t <= 0.016; on 600 matrices with singular values
# graded over 8 to 15 decades (n = 8 to 80, rtol 1e-12 to 1e-10) in 49,
# all at t <= 0.15. Below the line the SVD decides (it is right there too)
_BUDGET_RESOLVED_T = 1.0


def _unfolding(xp, Y, mode: int):
    if mode == 0:
        return xp.reshape(Y, (Y.shape[0], -1))
    return xp.reshape(xp.moveaxis(Y, mode, 0), (Y.shape[mode], -1))


def _auto_method(n: int, m: int, rtol, d: int, eps: float) -> str:
    """Gram + eigh when the unfolding is wide and the tolerance allows it.

    The Gram matrix squares the singular values: its eigenvectors are
    resolved only for singular values above about ``sqrt(n * eps)`` of the
    largest. The eigh route verifies the discarded energy explicitly, so its
    error bound always holds, but below that level its ranks could exceed
    the optimal ones; a per-mode budget under ``2 * n * eps * ||X||^2``
    therefore uses :func:`_refined_gram_mode`, which resolves the small
    singular values at a fraction of the cost of the unfolding's SVD, and a
    budget under ``1e6 * n * eps**2`` (rtol of order 1e-11), beyond that
    route too, uses the SVD.
    """
    if m < n:
        # a tall unfolding: at a given rank the small Gram matrix of its columns
        # finds the subspace (see _short_gram_mode); a tolerance needs the
        # whole spectrum accurately, which the SVD gives
        return "svd" if rtol is not None else "short_gram"
    if rtol is not None and rtol * rtol / d < 1e6 * n * eps * eps:
        return "svd"  # below what even the refined Gram route resolves
    if rtol is not None and rtol * rtol / d < 2 * n * eps:
        return "refined_eigh"
    return "eigh"


def _refined_gram_mode(xp, Y, mode, budget, *, rank=None, G=None, lead=None):
    """Accurate truncation of a wide unfolding at a tight budget (or a high ``rank``), without its SVD.

    1. ``A A^T = V diag(lam) V^T``: the leading eigenvectors (eigenvalues
       above ``1e4 * n * eps * lam_max``) are accurate; the others span the
       small part of the spectrum but are mixed by rounding.
    2. Rotate: ``C = V^T A``. The trailing rows ``C_t`` hold only the small
       singular values, so the Gram matrix ``C_t C_t^T`` and its
       eigen-decomposition ``W diag(mu) W^T`` are accurate to
       ``eps * ||C_t||^2``, not ``eps * ||A||^2``.
    3. The basis ``[V_lead, V_tail W]`` is orthonormal; ``mu`` are the exact
       energies of its trailing directions, which decide the rank, and the
       projection ``[C_lead; W^T C_t]`` costs nothing more.

    About four Gram products of work, against a full SVD of the unfolding
    that costs tens of them; accurate for budgets down to about
    ``1e4 * n * eps**2`` of ``||A||^2``.

    With ``rank`` (and no budget) the leading ``rank`` directions are taken.
    ``None`` is returned when ``C_t C_t^T`` does not resolve the last of
    them (see :func:`_resolved`), or energies as small as the budget (see
    ``_BUDGET_RESOLVED_T``); the caller then takes the SVD. ``G``, when
    given, is ``A A^T``; ``lead``, when given, is the number of leading
    eigenvectors kept as they are (default: :func:`_refined_lead`).
    """
    shape = tuple(Y.shape)
    n = shape[mode]
    eps = float(xp.finfo(Y.dtype).eps)
    A = _unfolding(xp, Y, mode)
    w, V = xp.linalg.eigh(A @ xp.matrix_transpose(A) if G is None else G)
    w = xp.flip(w)
    V = xp.flip(V, axis=1)
    lam = np.clip(to_numpy(w), 0.0, None)
    r0 = _refined_lead(lam, n, eps) if lead is None else int(lead)
    C = xp.matrix_transpose(V) @ A
    Ct = C[r0:, :]
    mu, W = xp.linalg.eigh(Ct @ xp.matrix_transpose(Ct))
    mu = np.clip(to_numpy(xp.flip(mu)), 0.0, None)
    W = xp.flip(W, axis=1)
    r, energies = _refined_rank(lam, mu, r0, n, eps, rank, budget)
    if r is None:
        return None
    if r <= r0:
        U = V[:, :r]
        B = C[:r, :]
    else:
        t = r - r0
        U = xp.concat([V[:, :r0], V[:, r0:] @ W[:, :t]], axis=1)
        B = xp.concat([C[:r0, :], xp.matrix_transpose(W[:, :t]) @ Ct], axis=0)
    discarded = float(np.sum(energies[r:]))
    rest = shape[:mode] + shape[mode + 1:]
    Ynew = xp.reshape(B, (r,) + rest)
    if mode != 0:
        Ynew = xp.moveaxis(Ynew, 0, mode)
    return U, Ynew, discarded


def _refined_lead(lam: np.ndarray, n: int, eps: float) -> int:
    """How many eigenvectors of an order-``n`` Gram matrix the refined route keeps as they are.

    Those with eigenvalues above ``1e4 * n * eps * lam_max`` (descending ``lam``).
    """
    return int(np.count_nonzero(lam > 1e4 * n * eps * lam[0]))


def _gram_leaks(lam: np.ndarray, rest: float, n: int, eps: float, data_eps: float | None = None) -> bool:
    """Whether the leading ``r = lam.size`` Gram eigenvectors lose more than the SVD would, at a fixed rank.

    ``lam`` are the ``r`` largest eigenvalues of an order-``n`` Gram matrix
    (descending), ``rest`` the sum of the others. The ``i``-th eigenvector is
    accurate to about ``eps lam_1 / lam_i``, so the projection leaves about
    ``(eps lam_1)^2 / lam_r`` of the data out, against the SVD's
    ``eps^2 lam_1`` or so. That matters only where the discarded energy
    itself is no larger: where ``rest`` is at the Gram matrix's rounding
    level (``_LEAK_REST_T n eps lam_1``, data of about that multilinear
    rank), and ``lam_1 / lam_r`` exceeds ``_LEAK_RATIO``. A tensor of exact
    multilinear rank (10, 10, 10) with singular values ``0.3^i`` came out
    with 5e-12 relative error where the SVD has 1.7e-15. ``eps`` is the Gram
    matrix's precision, ``data_eps`` (default ``eps``) the data's: a float64
    Gram matrix of float32 data leaks only where ``eps^2 lam_1 / lam_r``
    reaches ``data_eps^2``.
    """
    data_eps = eps if data_eps is None else data_eps
    ratio = _LEAK_RATIO * (data_eps / eps) ** 2
    return (float(rest) <= _LEAK_REST_T * n * eps * float(lam[0])
            and not float(lam[-1]) * ratio >= float(lam[0]))


def _leak_energy(lam: np.ndarray, eps: float, trace: float) -> float:
    """A bound on what the leading Gram eigenvectors lose of the data: ``(eps trace)^2 sum_i 1 / lam_i``.

    ``lam`` are the kept eigenvalues, ``trace`` that of the Gram matrix
    (its rounding is about ``eps trace``). Eigenvector ``i`` leans by about
    ``eps trace / lam_i`` into the discarded directions, which loses
    ``lam_i`` times its square. (``(eps lam_1)^2 / lam_r`` alone, used
    first, fell 100 to 335 times short where several eigenvalues lie near
    ``lam_1``: 20 singular values of 1 and 20 of 1e-5 kept leaking
    eigenvectors at 9e-11, where the SVD gives 1.5e-15.)
    """
    lam = np.asarray(lam, dtype=np.float64)
    if not np.all(lam > 0.0):
        return math.inf
    return (eps * float(trace)) ** 2 * float(np.sum(1.0 / lam))


# the eigenvectors are kept where the measured discarded energy is more than
# this many times what they can leak (the leak then changes the error by
# less than a percent)
_LEAK_MARGIN = 100.0

# see _gram_leaks: a Gram tail below this many times n eps lam_1 is at its
# rounding level; eigenvalue ratios lam_1 / lam_r above _LEAK_RATIO leave
# an excess of about eps sqrt(lam_1 / lam_r) over the SVD's few eps (on
# exact-rank tensors of 70 x 12 x 15 to 100^3 and 30^4: none at the ratio
# 6.7, 2 to 6x at 6e2, 50x at 2.6e5, 10^4 x beyond)
_LEAK_REST_T = 10.0
_LEAK_RATIO = 100.0


def _split_lead(lam: np.ndarray, eps: float | None = None) -> int:
    """How many of the ``r = lam.size`` leading eigenvectors the refined route keeps where they leak.

    Those with eigenvalues of at least ``lam_1 (lam_r / lam_1)^(1/3)``: the
    kept ones are then accurate to about ``eps (lam_1 / lam_r)^(1/3)``, and
    the rotated rows' Gram matrix resolves the others. Measured on
    exact-rank tensors with singular values ``q^i`` (``q`` = 0.1 to 0.5,
    rank 10): within 1.5x of the best split's error, 1e-15 to 5e-15 where
    the SVD has 6e-16 to 1.6e-15.

    ``lam_r`` counts as at least ``eps^2 lam_1``, the smallest eigenvalue
    data of precision ``eps`` can hold (default float64's): a rank above
    the data's numerical rank has eigenvalues of rounding, often exactly 0,
    and a cut at 0 kept every direction but the last as it was (rank 16 of
    the 24^3 samples of ``1/sqrt(x^2+y^2+z^2+0.1)`` came out at 6.6e-10
    where the SVD gives 6e-16).
    """
    lam = np.asarray(lam, dtype=np.float64)
    eps = float(np.finfo(np.float64).eps) if eps is None else float(eps)
    last = max(float(lam[-1]), eps * eps * float(lam[0]))
    cut = float(lam[0]) * (last / float(lam[0])) ** (1.0 / 3.0)
    return min(max(int(np.count_nonzero(lam >= cut)), 1), lam.size - 1)


def _refined_rank(lam: np.ndarray, mu: np.ndarray, r0: int, n: int, eps: float, rank, budget):
    """``(r, energies)``: the refined route's rank, or ``r = None`` where its energies do not resolve it.

    ``lam`` are the Gram matrix's eigenvalues (descending), ``r0`` of them
    kept (:func:`_refined_lead`), ``mu`` the eigenvalues of the rotated
    rows' Gram matrix ``C_t C_t^T``; ``energies`` are those of the refined
    basis. ``r`` is ``rank``, or the smallest rank that fits ``budget``.
    Shared by the in-memory (:func:`_refined_gram_mode`) and the block-wise
    Dask routes.
    """
    # float64 throughout: float32 eigenvalues near 1e30 overflowed in the
    # products below (warnings, and the refined route silently given up)
    lam, mu = np.asarray(lam, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    energies = np.concatenate([lam[:r0], mu])
    # the rotated rows C_t carry the rounding of a product with A, about
    # eps ||A|| each: C_t C_t^T resolves to about n eps ||A|| ||C_t||
    scale = math.sqrt(lam[0] * mu[0]) if mu.size else 0.0
    if rank is None:
        # The energies mu carry the rounding of the rotation, about n eps
        # sqrt(lam_max mu_max), and what leaks in from the smallest leading
        # eigenvector, accurate to about n eps lam_max / lam[r0 - 1]: an
        # energy of about (n eps lam_max)^2 / lam[r0 - 1] (a tensor of exact
        # multilinear rank 8 showed a 9th energy of 4e-23 where the SVD has
        # 5e-31, over a budget of 1.3e-23)
        leak = (n * eps * lam[0]) ** 2 / lam[r0 - 1] if r0 > 0 else 0.0
        if budget < _BUDGET_RESOLVED_T * max(n * eps * scale, leak):
            return None, energies  # the trailing energies near the budget are not resolved
        return _rank_for_budget(energies, budget), energies
    r = min(int(rank), energies.size)
    if r > r0 and not _resolved(mu[r - r0 - 1], scale, n, eps):
        return None, energies
    return r, energies


def _short_gram_mode(xp, Y, mode, rank, want_core):
    """Rank-``rank`` truncation of a tall unfolding ``A`` (``n x m``, ``m < n``) without its SVD.

    ``A^T A = V diag(lam) V^T`` is small (``m x m``); ``B = A V_r`` spans the
    leading left singular subspace, and the SVD of the thin ``B``
    (``n x r``) gives its orthonormal, ordered basis ``U``. Rounding in
    ``V_r`` only turns the basis within directions of ``A``'s own range, so
    the projection loses about ``eps * ||A||`` as the SVD of ``A`` would, at
    a fraction of its cost. When the ``rank``-th eigenvalue sits within
    ``1e4 * m * eps`` of the largest, those directions are not resolved
    and ``None`` is returned (the caller then takes the SVD).
    """
    shape = tuple(Y.shape)
    A = _unfolding(xp, Y, mode)
    m = A.shape[1]
    eps = float(xp.finfo(Y.dtype).eps)
    lam, V, discarded = _leading_eigh(xp, xp.matrix_transpose(A) @ A, rank)
    if lam[rank - 1] <= 1e4 * m * eps * lam[0]:
        return None
    U, _, _ = xp.linalg.svd(A @ V, full_matrices=False)
    Ynew = None
    if want_core:
        rest = shape[:mode] + shape[mode + 1:]
        Ynew = xp.reshape(xp.matrix_transpose(U) @ A, (rank,) + rest)
        if mode != 0:
            Ynew = xp.moveaxis(Ynew, 0, mode)
    return U, Ynew, discarded


def _smallest_fitting_rank(probe, r0: int, n: int, budget: float, may_fit=None):
    """``probe(r)`` for the smallest ``r`` whose discarded energy ``probe(r)[2]`` fits ``budget``.

    ``probe(r)`` returns ``(U, projected tensor, discarded energy)`` for the
    leading ``r`` columns of a nested basis, whose discarded energy does not
    grow with ``r``; each call is a pass over the data. ``r0`` is an
    estimate. If it does not fit, the ranks above it are searched by
    doubling steps, then bisection: a few passes where adding one direction
    at a time took one pass per direction (up to ``n`` of them, when the
    budget lies below what the basis resolves). ``r = n`` is returned when
    nothing smaller fits. If it fits at once, the ranks below it are tried
    one at a time, for as long as ``may_fit(r)`` says that ``r`` could fit
    (an estimate from eigenvalues whose rounding is as large as a tight
    budget can overshoot by a direction or two); without ``may_fit``, none.
    """
    r = min(max(int(r0), 1), n)
    out = probe(r)
    if out[2] <= budget:
        while may_fit is not None and r > 1 and may_fit(r - 1):
            cand = probe(r - 1)
            if not cand[2] <= budget:
                break
            r, out = r - 1, cand
        return out
    if r == n:
        return out
    lo, step = r, 1  # lo: the largest rank known not to fit
    while True:
        hi = min(lo + step, n)
        out = probe(hi)
        if out[2] <= budget:
            break
        if hi == n:
            return out  # not even the whole basis fits (a budget below rounding): take it
        lo, step = hi, 2 * step
    while hi - lo > 1:  # out: the result at hi, which fits
        mid = (lo + hi) // 2
        cand = probe(mid)
        if cand[2] <= budget:
            hi, out = mid, cand
        else:
            lo = mid
    return out


# a rank below the Gram route's rtol estimate is measured when its estimated
# tail exceeds the budget by at most this many times n eps ||Y||^2 (the
# eigenvalues' absolute rounding is about n eps ||Y||^2)
_TAIL_ROUNDING = 10.0


def _residual_energy(xp, Y, Ynew, U, mode: int) -> float:
    """``||Y - Ynew x_mode U||_F^2`` formed explicitly (see :mod:`tensorapprox._kernels.residual`)."""
    shape = tuple(Y.shape)
    n, r = U.shape
    a = math.prod(shape[:mode])
    b = math.prod(shape[mode + 1:])
    return projection_residual(xp.reshape(Y, (a, n, b)), xp.reshape(Ynew, (a, r, b)), U)


def _sampled_residual_energy(xp, Y, Ynew, U, mode: int) -> float:
    """An estimate of ``||Y - Ynew x_mode U||_F^2`` from a share of the fibres, for a decision.

    The fibres of ``_SAMPLE_WINDOWS`` evenly spread windows of consecutive
    columns (after the mode), ``1 / _SAMPLE_SHARE`` of them in all, scaled
    up: a read of that share of the data, in contiguous runs. Unfoldings
    with fewer than ``_SAMPLE_MIN_COLS`` such columns are measured whole.
    Where the discarded energy sits in a few fibres the estimate can be off
    by the share either way; its one caller (the exact-rank check of
    :func:`_truncate_mode`) is built to stay safe under that.
    """
    shape = tuple(Y.shape)
    n, r = U.shape
    a = math.prod(shape[:mode])
    b = math.prod(shape[mode + 1:])
    if b < _SAMPLE_MIN_COLS:
        return _residual_energy(xp, Y, Ynew, U, mode)
    Y3, P3 = xp.reshape(Y, (a, n, b)), xp.reshape(Ynew, (a, r, b))
    width = b // (_SAMPLE_WINDOWS * _SAMPLE_SHARE)
    total = 0.0
    for k in range(_SAMPLE_WINDOWS):
        start = (k * b) // _SAMPLE_WINDOWS
        total += projection_residual(Y3[:, :, start:start + width], P3[:, :, start:start + width], U)
    return total * b / (_SAMPLE_WINDOWS * width)


# the sampled residual: windows, the share of the columns they hold (1 / share),
# and the fewest columns that are sampled rather than measured whole
_SAMPLE_WINDOWS = 8
_SAMPLE_SHARE = 8
_SAMPLE_MIN_COLS = 1 << 14


def _truncate_mode(xp, Y, mode, rank, budget, method, *, n_power_iter, oversampling, rng, want_core=True,
                   total=None, first=None):
    """Leading left singular subspace of ``Y_(mode)`` and the projected tensor.

    Returns ``(U, Y x_mode U.T, discarded)`` where ``discarded`` is the energy
    (squared Frobenius norm) removed by the projection. ``total``, when
    known, is ``||Y||_F^2`` (it spares the randomized method a pass);
    ``first``, when known, is a :class:`_FirstPass` of ``Y`` in ``mode``:
    the Gram matrix the 'eigh' route starts from, or the sign sketch the
    randomized route starts from.
    """
    shape = tuple(Y.shape)
    n = shape[mode]
    m = math.prod(shape) // n
    if method == "randomized" and _randomized_applies(n, m, rank, oversampling):
        return _randomized_mode(xp, Y, mode, rank, budget, n_power_iter, oversampling, rng, total,
                                first_sketch=None if first is None else first.sketch)
    if method == "randomized":  # the sketch would be as large as the matrix
        method = "svd" if m < n else "eigh"
    if method == "refined_eigh":
        out = _refined_gram_mode(xp, Y, mode, budget)
        if out is not None:
            return out
        method = "svd"  # a budget below what even the refined route resolves
    if method == "short_gram":
        out = _short_gram_mode(xp, Y, mode, rank, want_core)
        if out is not None:
            return out
        method = "svd"  # weak directions the Gram matrix cannot resolve
    if method == "eigh":
        G = _gram(xp, Y, mode) if first is None or first.gram is None else first.gram
        if rank is not None:
            eps = float(xp.finfo(Y.dtype).eps)
            lam, U, discarded = _leading_eigh(xp, G, rank)
            resolved = _resolved(lam[rank - 1], lam[0], n, eps)
            leaks = _gram_leaks(lam, discarded, n, eps)
            if (leaks or not resolved) and Y.dtype == xp.float32:
                # float32 data, float64 Gram matrix: it resolves the rank as
                # float64 data's would, for a second pass over the data (the SVD
                # of a 256 x 65536 float32 unfolding took 10x longer)
                eps64 = float(np.finfo(np.float64).eps)
                lam, U, discarded = _leading_eigh(xp, _gram_float64(xp, Y, mode), rank)
                resolved = _resolved(lam[rank - 1], lam[0], n, eps64)
                leaks = _gram_leaks(lam, discarded, n, eps64, eps)
                U = xp.astype(U, Y.dtype)
            if resolved and leaks and Y.dtype == xp.float64:
                # the Gram matrix cannot tell a tail below its rounding (smooth
                # data truncated near 1e-7) from none (data of this multilinear
                # rank): the discarded energy is measured on the data, and the
                # eigenvectors are kept where it outweighs what they can leak.
                # On the 256^3 samples of the benchmark's case (c) at rank 7 the
                # refined route cost 3.3x the time of st_hosvd for the same
                # error; the explicit residual of the whole unfolding 3.1
                # floors; a sample of an eighth of its columns 0.4. A sample
                # reading up to 8 times the true share keeps eigenvectors only
                # where the true discarded energy exceeds _LEAK_MARGIN / 8 times
                # the leak bound: then the leak adds under a tenth of it; one
                # reading less takes the refined route where it was not needed
                Ynew = _ttm(xp, Y, xp.matrix_transpose(U), mode)
                measured = _sampled_residual_energy(xp, Y, Ynew, U, mode)
                trace = float(xp.sum(xp.linalg.diagonal(G)))
                if measured > _LEAK_MARGIN * _leak_energy(lam, eps, trace):
                    return U, Ynew if want_core else None, discarded
            elif resolved and not leaks:
                Ynew = _ttm(xp, Y, xp.matrix_transpose(U), mode) if want_core else None
                return U, Ynew, discarded
            # the rank reaches below what the Gram matrix resolves: its trailing
            # eigenvectors are mixed, and the error came out up to 10^4 times the
            # SVD's; the refined Gram route resolves them, the SVD beyond it.
            # Where they leak (data of about this multilinear rank, see
            # _gram_leaks), the refined route re-solves the weaker of them,
            # from a split that keeps its own leak small (float32 data gets
            # there only where even the float64 Gram matrix leaks at float32's
            # precision)
            out = _refined_gram_mode(xp, Y, mode, None, rank=rank, G=G, lead=_split_lead(lam, eps) if leaks else None)
            if out is not None:
                return out
        else:
            w, V = xp.linalg.eigh(G)
            w = xp.flip(w)
            V = xp.flip(V, axis=1)
            sigma2 = np.clip(to_numpy(w), 0.0, None)
            r_est = _rank_for_budget(sigma2, budget)
            eps = float(xp.finfo(Y.dtype).eps)

            def refined_or_svd():
                # the budget reaches directions the Gram matrix does not resolve
                # (a flat noise tail spreads a budget near n eps ||Y||^2 over
                # eigenvalues far below it): their eigenvectors come out mixed,
                # the projection discards more than the optimal one, and the
                # rank came out one above the SVD route's (13 of 216 sweeps of
                # noisy tensors at budgets of 1 to 8 n eps ||Y||^2). The refined
                # route resolves them, the SVD beyond it, as at a fixed rank
                out = _refined_gram_mode(xp, Y, mode, budget, G=G)
                if out is not None:
                    return out
                return _truncate_mode(xp, Y, mode, rank, budget, "svd", n_power_iter=n_power_iter,
                                      oversampling=oversampling, rng=rng, want_core=want_core, total=total)

            if not _resolved(sigma2[r_est - 1], sigma2[0], n, eps):
                return refined_or_svd()
            # The eigenvalues of the Gram matrix carry absolute errors of about
            # eps * ||Y||^2, as large as a tight budget: take the rank they
            # suggest, then measure the energy the projection really discards
            # (the explicit residual, no cancellation) and add directions until
            # it fits. The guarantee then holds for any rtol.
            def probe(r):
                U = V[:, :r]
                Ynew = _ttm(xp, Y, xp.matrix_transpose(U), mode)
                return U, Ynew, _residual_energy(xp, Y, Ynew, U, mode)

            # the estimate can overshoot by a direction or two (the budget a
            # thousandth above the tail of rank 6, the estimate was 7): a
            # smaller rank is measured only where its estimated tail lies
            # within the eigenvalues' rounding above the budget, so that a
            # clear miss costs no pass
            tails = np.cumsum(sigma2[::-1])[::-1]  # tails[r] = sum_{i >= r}
            slack = _TAIL_ROUNDING * n * eps * float(tails[0])

            def may_fit(r):
                return float(tails[r]) <= budget + slack

            out = _smallest_fitting_rank(probe, r_est, n, budget, may_fit)
            # the search may climb from a resolved estimate into unresolved
            # directions (an estimate of 5 on signal, the fit found at 15 among
            # mixed noise directions where the SVD route stops at 14)
            if not _resolved(sigma2[int(out[0].shape[1]) - 1], sigma2[0], n, eps):
                return refined_or_svd()
            return out
    # the SVD of the unfolding (with Vh, the projection is S_r Vh_r, no extra pass)
    A = _unfolding(xp, Y, mode)
    U_all, s, Vh = _left_svd(xp, A)
    with np.errstate(over="ignore"):
        sigma2 = to_numpy(s) ** 2
    r = rank if rank is not None else _rank_for_budget(sigma2, budget)
    r = min(r, s.shape[0])
    U = U_all[:, :r]
    discarded = float(np.sum(sigma2[r:]))
    Ynew = None
    if want_core:
        B = xp.matrix_transpose(U) @ A if Vh is None else s[:r, None] * Vh[:r, :]
        rest = shape[:mode] + shape[mode + 1:]
        Ynew = xp.reshape(B, (r,) + rest)
        if mode != 0:
            Ynew = xp.moveaxis(Ynew, 0, mode)
    return U, Ynew, discarded


def _left_svd(xp, A):
    """``(U, s, Vh)``: the left singular vectors and values of ``A`` (``n x m``), and ``Vh`` or None.

    A wide ``A`` (``m >= 2 n``) is not decomposed itself: ``A^T = Q R``
    gives ``R^T = A Q``, with ``A``'s left singular vectors and values, as
    backward stable as the SVD of ``A``, and numpy forms no ``Q``. The SVD of
    the small ``R^T`` cost 5 to 11x less than numpy's SVD of ``A`` (128 x
    16384: 63 against 714 ms; 200 x 40000: 235 against 1274 ms; 1.1 to 2.4x
    from ``m = 1.5 n`` to ``4 n``); ``Vh`` is then None and the projection
    ``U^T A`` a product of its own. Otherwise the thin SVD of ``A``.
    """
    n, m = (int(k) for k in A.shape)
    if m < 2 * n:
        return xp.linalg.svd(A, full_matrices=False)
    At = xp.matrix_transpose(A)
    R = np.linalg.qr(At, mode="r") if is_numpy(xp) else xp.linalg.qr(At)[1]
    U, s, _ = xp.linalg.svd(xp.matrix_transpose(R))
    return U, s, None


def _khatri_rao_sketch(xp, Y, mode, width, rng):
    """``Y_(mode) @ Omega`` for a Khatri-Rao product of Gaussian matrices.

    ``Omega = khatri_rao([Omega_j for j != mode])`` with each ``Omega_j`` of
    shape ``(n_j, width)`` (a tensor random projection, Sun et al. 2021): it
    needs ``sum_j n_j`` random numbers instead of ``prod_j n_j``, and is
    applied mode by mode without forming it. The first contraction is one
    GEMM over the full tensor; the others act on a tensor ``width / n_j``
    times smaller.
    """
    others = [j for j in range(Y.ndim) if j != mode]
    omegas = {j: random_normal(xp, (Y.shape[j], width), Y.dtype, rng, like=Y) for j in others}
    return _kr_sketch(xp, Y, mode, omegas)


def _kr_sketch(xp, Y, mode, omegas):
    """``Y_(mode) @ khatri_rao(omegas)`` for given ``omegas[j]`` of shape ``(n_j, width)``, ``j != mode``."""
    d = Y.ndim
    others = [j for j in range(d) if j != mode]
    if is_numpy(xp) and math.prod(Y.shape) >= _KR_EINSUM_MIN_ELEMS and d <= 25:
        # numpy's einsum contracts the modes without the broadcast
        # temporaries below: 3.4x faster for the last mode of a 20 x 200 x
        # 200 sketch, 1.6x for the first mode of a 100 x 15 x 100 x 20 one
        # (about 0.1 ms slower on tensors of a few thousand entries)
        letters = "abcdefghijklmnopqrstuvwxy"
        spec = (letters[:d] + "," + ",".join(letters[j] + "z" for j in others) + "->" + letters[mode] + "z")
        return np.einsum(spec, Y, *[omegas[j] for j in others], optimize=True)
    width = omegas[others[0]].shape[1]
    first = others[-1] if others[-1] == d - 1 else others[0]
    # T carries the sketch column index c as its last axis
    T = xp.reshape(Y, (-1, Y.shape[first])) if first == d - 1 else None
    if first == d - 1:
        T = xp.reshape(T @ omegas[first], tuple(Y.shape[:-1]) + (width,))
    else:  # first == 0 (mode == d - 1): contract the leading mode
        T = xp.matrix_transpose(omegas[0]) @ xp.reshape(Y, (Y.shape[0], -1))  # (width, rest)
        T = xp.moveaxis(xp.reshape(T, (width,) + tuple(Y.shape[1:])), 0, -1)
    # remaining modes (axes of T before the last), contracted column-wise
    axes = [j for j in range(d) if j != first]  # axes of T except the last
    for j in [j for j in others if j != first]:
        ax = axes.index(j)
        shp = [1] * (len(axes) + 1)
        shp[ax] = Y.shape[j]
        shp[-1] = width
        T = xp.sum(T * xp.reshape(omegas[j], tuple(shp)), axis=ax)
        axes.pop(ax)
    return T  # (n_mode, width)


# numpy tensors of at least this many entries take the einsum route of _kr_sketch
_KR_EINSUM_MIN_ELEMS = 1 << 16


def _first_stage_axis(shape, mode: int, width: int):
    """The mode a sparse sign sketch shrinks before the range finder of ``mode``, or None.

    The largest other mode (ties: not the last axis, whose kernel scatters
    instead of streaming rows), when it is at least twice ``width`` and the
    sketched unfolding keeps at least four times ``width`` columns, so that
    the range finder still has a wide matrix to iterate on.
    """
    if math.prod(shape) < _FIRST_STAGE_MIN_ELEMS:
        return None
    m = math.prod(shape) // shape[mode]
    d = len(shape)
    cands = [j for j in range(d) if j != mode and shape[j] >= 2 * width and m // shape[j] >= 4]
    if not cands:
        return None
    return max(cands, key=lambda j: (shape[j], j != d - 1))


def _further_stage_axes(shape, mode: int, axis: int, width: int, rank: int) -> list[int]:
    """Other modes the first-stage sketch ``shape`` (mode ``axis`` already at ``width``) may shrink too.

    Largest first, each at least twice ``width``, while the sketched
    unfolding keeps ``_SKETCH_COLS_PER_RANK * rank`` columns or more. The
    sketch distorts the leading directions by about ``sqrt(rank / columns)``,
    which costs about ``rank / columns`` of extra error: at 200^3, rank 10,
    the one-mode sketch (400 columns per rank) cost 0.26% over ``st_hosvd``,
    a second mode at 160, 80 and 40 columns per rank 0.65, 1.0 and 1.9%
    (seeds 0 to 4). On 100 x 100 x 100 x 20 at rank 5 the second mode
    keeps 900 per rank: 0.14% at most (0.02% with one), in 3.06 instead of
    3.79 times the time of one pass. With the default oversampling
    (``width >= rank + 10``, so ``width^2 >= 40 rank``) a second sketched
    mode of a 3-mode tensor leaves ``width^2`` columns, always too few; on 4
    or more modes the columns left, ``width^2`` times the modes not
    sketched, reach 400 per rank once those hold 10 entries or more.
    """
    cols = math.prod(shape) // shape[mode]
    out = []
    for j in sorted((j for j in range(len(shape)) if j not in (mode, axis)), key=lambda j: -shape[j]):
        left = cols // shape[j] * width
        if shape[j] >= 2 * width and left >= _SKETCH_COLS_PER_RANK * rank:
            out.append(j)
            cols = left
    return out


# the sketched unfolding keeps at least this many columns per rank when
# further modes are sketched (see _further_stage_axes)
_SKETCH_COLS_PER_RANK = 400


def _randomized_applies(n: int, m: int, rank, oversampling: int) -> bool:
    """False when a rank-``rank`` sketch would be as large as the ``n x m`` unfolding."""
    return rank is None or rank + oversampling < min(n, m)


def _initial_width(n: int, m: int, rank, oversampling: int) -> int:
    width = (rank + oversampling) if rank is not None else max(2 * oversampling, 16)
    return min(width, n, m)


def _draw_sign_sketch(Y, axis: int, width: int, rng):
    """Sign sketch of mode ``axis`` of ``Y`` with fresh buckets and signs: ``(Z, ||Y||_F^2)``."""
    nj = Y.shape[axis]
    buckets = rng.integers(0, width, size=nj)
    signs = rng.integers(0, 2, size=nj) * 2.0 - 1.0
    return sign_sketch(Y, axis, buckets, signs, width)


# below this many entries the range finder reads the data directly: the sketch
# would save less than its own pass costs
_FIRST_STAGE_MIN_ELEMS = 1 << 18


def _randomized_mode(xp, Y, mode, rank, budget, n_power_iter, oversampling, rng, total=None, first_sketch=None):
    """Randomized range finder with power iterations (Halko, Martinsson, Tropp 2011, Alg. 4.3).

    Two stages when the unfolding ``A`` is large: a sparse sign sketch
    (CountSketch, one multiply-add per entry) first shrinks the largest
    other mode to the sketch width, ``Z = Y x_j S`` (see
    :func:`tensorapprox._kernels.sketch.sign_sketch`); the range finder,
    with its Gaussian Khatri-Rao test matrix and its ``n_power_iter`` power
    iterations, then runs on the unfolding ``Z_(mode) = A (I x S^T)``, a
    fraction ``width / n_j`` of the data (at a fixed rank, further modes may
    be sketched in turn, see :func:`_further_stage_axes`). The data itself is read twice: for
    the sketch and for the projection ``B = Q^T A`` (mode-wise, without
    forming ``A``); the small SVD of ``B`` comes from the eigen-decomposition
    of ``B @ B^T`` (from the SVD of ``B_(mode)`` itself where an ``rtol``
    budget lies below what ``B @ B^T`` resolves). On a large tensor at a fixed rank, the leading
    directions within ``range(Q)`` are chosen on the sketch instead, and the
    data is projected on those ``r`` alone, unless the spectrum decays so
    smoothly that the sketch's own distortion would mix them with the next
    (see :func:`_sketch_ritz_is_safe`). (Without a first stage, the
    sketch and each power iteration read ``A`` too.) With
    ``rtol`` the sketch width doubles until the projection error fits the
    budget, so the guarantee holds as for the deterministic methods: the
    error is the energy outside ``range(Q)`` plus the trailing eigenvalues
    of ``B B^T``, and where the budget is too tight for the difference
    ``||A||^2 - ||B||^2`` to resolve, the energy outside ``range(Q)`` and the
    final error are formed explicitly instead.
    """
    shape = tuple(Y.shape)
    n = shape[mode]
    m = math.prod(shape) // n
    eps = float(xp.finfo(Y.dtype).eps)
    A = None  # the unfolding, formed only where the data is read as a matrix
    width = _initial_width(n, m, rank, oversampling)
    while True:
        width = min(width, n, m)
        axis = _first_stage_axis(shape, mode, width)
        if axis is None:
            if A is None:
                A = _unfolding(xp, Y, mode)  # a view for mode 0, one permuted copy otherwise
            Z, Az = Y, A
            if total is None:
                total = _sumsq(xp, A)
        else:
            if first_sketch is not None and first_sketch[:2] == (axis, width):
                Z = first_sketch[2]
            else:
                Z, sumsq = _draw_sign_sketch(Y, axis, width, rng)
                total = sumsq if total is None else total  # the sketch's pass summed the squares
            first_sketch = None
            if rank is not None:
                for j in _further_stage_axes(tuple(Z.shape), mode, axis, width, rank):
                    Z, _ = _draw_sign_sketch(Z, j, width, rng)
            Az = _unfolding(xp, Z, mode)
        Q, _ = xp.linalg.qr(_khatri_rao_sketch(xp, Z, mode, width, rng))
        for _ in range(n_power_iter):
            # A^T Q is not re-orthonormalized: one power step squares the
            # spectrum only, far from float64's range for these sketches
            Zt = xp.matrix_transpose(Q) @ Az
            Q, _ = xp.linalg.qr(Az @ xp.matrix_transpose(Zt))
        if rank is not None and axis is not None and n * m >= _RITZ_ON_SKETCH_MIN:
            # the leading directions within range(Q) are chosen on the sketch,
            # and the data is projected on those alone: one pass, r rows
            Bz = xp.matrix_transpose(Q) @ Az
            wz, V = xp.linalg.eigh(Bz @ xp.matrix_transpose(Bz))
            # ||Z||^2 from Z itself: Az is a strided view of it for mode > 0
            if _sketch_ritz_is_safe(np.clip(to_numpy(xp.flip(wz)), 0.0, None), rank, _sumsq(xp, Z)):
                U = Q @ xp.flip(V, axis=1)[:, :rank]
                # the projection pass, mode-wise: no permuted copy of the data
                Ynew = _ttm(xp, Y, xp.matrix_transpose(U), mode)
                return U, Ynew, max(total - _sumsq(xp, Ynew), 0.0)
        # the projection pass on all of range(Q), mode-wise; the leading
        # directions within it are then chosen on the data (Rayleigh-Ritz)
        B = _ttm(xp, Y, xp.matrix_transpose(Q), mode)
        # B B^T resolves its eigenvalues to about width eps ||B||^2 only: below
        # that the trailing directions come out mixed. With rtol the explicit
        # check below then rejected every rank short of the whole sketch (the
        # ranks exceeded even the multilinear rank); at a fixed rank the error
        # stalled (float64 rank 16 of the 64^3 samples of
        # 1/sqrt(x^2+y^2+z^2+0.1): 3.4e-12 against the SVD route's 2.5e-15).
        # The SVD of the thin B_(mode) resolves them to eps ||B|| (as the
        # 'auto' route's refined Gram matrix does), at a few Gram products' cost
        thin_svd = rank is None and budget < 2 * width * eps * total
        if not thin_svd:
            w, V = xp.linalg.eigh(_gram(xp, B, mode))
            w = xp.flip(w)
            V = xp.flip(V, axis=1)
            sigma2 = np.clip(to_numpy(w), 0.0, None)
            thin_svd = (rank is not None and rank <= sigma2.size
                        and not _resolved(sigma2[rank - 1], sigma2[0], width, eps))
        if thin_svd:
            V, s, _ = _left_svd(xp, _unfolding(xp, B, mode))
            sigma2 = to_numpy(s) ** 2
        # the energy discarded at rank r: the part outside range(Q), plus the
        # trailing eigenvalues of B_(mode) B_(mode)^T (tail[r], summed from the smallest)
        tail = np.append(np.cumsum(sigma2[::-1])[::-1], 0.0)
        tight = rank is None and _budget_is_tight(budget, total, n * m, eps)
        if tight:
            # the difference total - ||B||^2 carries the rounding error of a sum
            # over the whole tensor, about sqrt(n m) eps of it: near a budget
            # that small every rank would look too coarse (or too fine), so the
            # part outside range(Q) is formed explicitly (one more pass)
            outside = _residual_energy(xp, Y, B, Q, mode)
        else:
            outside = max(total - float(tail[0]), 0.0)
        if rank is not None:
            r = rank
        else:
            ok = np.nonzero(outside + tail[1:] <= budget)[0]
            r = int(ok[0]) + 1 if ok.size else None
            if r is None and width >= min(n, m):
                # Q spans everything: width = n gives an n x n orthogonal Q (the first
                # stage needs m >= 4 n_j >= 8 width, so width = m < n has no first stage)
                r = int(sigma2.size)
        while r is not None:
            Vr = V[:, :r]
            U = Q @ Vr
            Ynew = _ttm(xp, B, xp.matrix_transpose(Vr), mode)
            if not tight:
                return U, Ynew, outside + float(tail[r])
            # the eigenvalues carry absolute errors of about width eps ||B||^2:
            # verify the rank on the data, as the 'eigh' route does
            discarded = _residual_energy(xp, Y, Ynew, U, mode)
            if discarded <= budget or r == sigma2.size:
                return U, Ynew, discarded
            r += 1
        width *= 2


# a budget under this times sqrt(N) eps ||Y||^2 (N entries) is tight for the
# randomized route's cancelling energy differences
_TIGHT_BUDGET = 64.0


def _budget_is_tight(budget: float, total: float, size: int, eps: float) -> bool:
    """Whether ``budget`` is below the rounding error of ``total`` minus a kept energy (``size`` entries summed)."""
    return budget < _TIGHT_BUDGET * math.sqrt(size) * eps * total
# from this many entries on, a fixed rank's leading directions within range(Q)
# are chosen on the first-stage sketch: the data is then projected on r
# directions instead of all of range(Q)
_RITZ_ON_SKETCH_MIN = 1 << 22
# ... unless the next direction holds more than this share of the energy left
# out (measured on geometric spectra, see _sketch_ritz_is_safe)
_RITZ_ON_SKETCH_MAX_SHARE = 0.03


def _sketch_ritz_is_safe(wz: np.ndarray, rank: int, sketch_energy: float) -> bool:
    """Whether the leading ``rank`` directions may be chosen on the sketch (see :func:`_randomized_mode`).

    ``wz`` are the eigenvalues of ``B_z B_z^T``, descending, with
    ``B_z = Q^T Z_(mode)`` the sketch projected on range(Q), and
    ``sketch_energy`` is ``||Z||_F^2``. The sketch weighs the directions
    within range(Q) with a distortion ``delta`` of its own, so the
    directions it ranks first are rotated towards the next ones; to first
    order the error energy grows by about ``delta^2`` times the share of the
    energy left out that the next direction holds, ``wz[r] / (sum_{i >= r}
    wz[i] + ||Z||^2 - ||B_z||^2)``. Noise spread over many directions gives
    a small share (about 0.007 on a rank-10 tensor with 1e-3 Gaussian noise)
    and the sketch's choice costs nothing measurable; a smooth, decaying
    spectrum puts most of it in the next direction (about 0.98 on the
    samples of ``1/sqrt(x^2+y^2+z^2+0.1)`` at rank 7), where the sketch's
    choice cost 0.6 to 1.75% of error and the data's choice (Rayleigh-Ritz
    on ``Q^T A``, one more pass's worth of work on range(Q)) none.

    The threshold comes from 170^3 tensors with singular values ``q^i`` in
    every mode (a superdiagonal core, 1e-6 noise) at rank 7, the largest
    error excess over ``st_hosvd`` across seeds 0 to 4, sketch's choice
    against the data's: share 0.092 (q = 0.95) 10.9% against 5.3%; 0.052
    (q = 0.97) 5.0% against 4.1%; 0.049 (q = 0.975) 5.7% against 5.5%;
    0.031 (q = 0.98) 7.1% against 5.9%; 0.025 (q = 0.985) 4.7% against 4.4%;
    0.019 and below, and rank-7 tensors with Gaussian noise of 1e-3 to 0.3
    (share 0.008), within 0.5 points of each other. (Noise alone gives a
    share of about ``1/n``: 0.026 at ``n = 60``.) The first-order estimate
    understates the mixing on such slowly decaying spectra, where the range
    finder itself already misses several percent.
    """
    if wz.size <= rank:
        return True  # range(Q) has no direction beyond the rank: nothing to mix
    outside = max(sketch_energy - float(np.sum(wz)), 0.0)
    left = float(np.sum(wz[rank:])) + outside
    return left <= 0.0 or float(wz[rank]) <= _RITZ_ON_SKETCH_MAX_SHARE * left


def _check_rank_product(ranks):
    """A multilinear rank has ``r_k <= prod_{j != k} r_j`` (the unfolding's rank bound)."""
    if ranks is None:
        return
    total = math.prod(ranks)
    for k, r in enumerate(ranks):
        others = total // r
        if r > others:
            raise ValueError(
                f"rank[{k}] = {r} exceeds the product {others} of the other ranks; "
                f"no tensor has this multilinear rank (lower rank[{k}] to at most {others})"
            )


def _check_truncation_inputs(X, rank, rtol):
    """Shared door of hosvd/st_hosvd: the tensor, its squared norm, rank or rtol."""
    X, normX2 = check_tensor(X, name="X", return_sumsq=True)
    ranks, rtol = check_rank_or_rtol(rank, rtol, X.shape)
    _check_rank_product(ranks)
    _warn_rtol_below_precision(rtol, X.dtype)
    return get_namespace(X), X, normX2, ranks, rtol


# an rtol below this many eps of the dtype warns (see _warn_rtol_below_precision)
_RTOL_FLOOR_EPS = 8


def _warn_rtol_below_precision(rtol, dtype) -> None:
    """Warn when ``rtol`` lies below what a result stored in ``dtype`` can promise.

    The core and factors are rounded to ``dtype``, and their product with
    them: on float32 samples of ``1/sqrt(x^2+y^2+z^2+0.1)`` (64^3) the error
    never went below 2.4e-7, about 2 eps, whatever the ranks, and
    ``rtol = 2e-7`` and ``3e-7`` were missed by up to 65%; from ``5e-7`` on
    (4 eps) every method met it.
    """
    if rtol is None:
        return
    # by name: the dtypes of numpy, cupy, Dask and array_api_strict alike
    single = str(dtype).endswith("float32")
    eps = float(np.finfo(np.float32 if single else np.float64).eps)
    if rtol < _RTOL_FLOOR_EPS * eps:
        advice = "pass float64 data for a tighter tolerance" if single else "float64 promises no tighter one"
        warnings.warn(
            f"rtol={rtol:g} is below {_RTOL_FLOOR_EPS} eps of {dtype} ({_RTOL_FLOOR_EPS * eps:.2g}): the "
            f"rounding of the result itself can exceed it, so the bound may not hold; {advice}",
            UserWarning, stacklevel=3)


def _norm2_in_range(normX2: float, xp, dtype) -> bool:
    """Whether a squared norm leaves products of ``dtype`` data clear of overflow and underflow (zero is not)."""
    single = _itemsize(xp, dtype) <= 4
    tiny, huge = (_TINY_NORM2_F32, float(np.finfo(np.float32).max)) if single else (_TINY_NORM2, math.inf)
    return math.isfinite(normX2) and tiny <= normX2 < huge


# a squared norm under this (2^-800, about 1.5e-241) may come from entries
# whose squares are subnormal (below 2.2e-308) or flush to zero: the data is
# rescaled first (entries of 1e-200 gave a zero decomposition, entries of
# 1e-160 an error over rtol)
_TINY_NORM2 = 2.0 ** -800
# the same for float32 data, whose squares turn subnormal below 1.2e-38
# (entries near 1e-19): 2^-60, about 8.7e-19 (float32 samples of a smooth
# function scaled by 1e-22 gave errors of 6.8e-3 at rtol 1e-3, and a
# tucker_als history of zeros)
_TINY_NORM2_F32 = 2.0 ** -60


def _unit_scale(xp, X, normX2):
    """``(X / s, ||X / s||^2, s)`` with ``s = max|X|`` when ``||X||^2`` overflows or is tiny.

    Finite data whose squared norm overflows (entries near 1e154 and above)
    would turn Gram matrices and norms into Inf, and data whose squares
    underflow (entries near 1e-154 and below) into zeros and subnormal
    numbers; the algorithms run on the scaled tensor and the caller
    multiplies the core back by ``s``. A zero squared norm is rescaled too
    unless the data is zero.
    """
    if _norm2_in_range(normX2, xp, X.dtype):
        return X, normX2, 1.0
    s = float(xp.max(xp.abs(X)))
    if s == 0.0:
        return X, 0.0, 1.0
    X = X / s
    return X, _sumsq(xp, X), s


def _check_method(method):
    return check_choice(method, name="method", choices=_METHODS)


def _zero_result(xp, X, ranks):
    dtype = X.dtype
    core = xp.zeros(ranks, dtype=dtype)
    factors = [xp.eye(n, r, dtype=dtype) for n, r in zip(X.shape, ranks)]
    return TuckerTensor(core, factors, copy=False)


def _method_for(method, n, m, rtol, d, eps):
    if method == "auto":
        return _auto_method(n, m, rtol, d, eps)
    return method


def hosvd(X, rank=None, rtol=None, *, method: str = "auto", progress: bool = False):
    """Truncated higher-order SVD (De Lathauwer, De Moor, Vandewalle 2000).

    Each factor holds the leading left singular vectors of the unfolding of
    ``X`` itself; the core is ``X x_1 U_1^T ... x_d U_d^T``.

    Parameters
    ----------
    X : array, shape (n_1, ..., n_d)
        Dense tensor, d >= 2 (numpy, cupy or any array-API array); not modified.
    rank : int or sequence of int, optional
        Multilinear rank. Give exactly one of ``rank`` and ``rtol``.
    rtol : float in (0, 1), optional
        Each mode drops a tail of norm at most ``rtol * ||X||_F / sqrt(d)``,
        which guarantees ``||X - result.full()||_F <= rtol * ||X||_F``; the
        ranks are the smallest that meet this per-mode criterion.
    method : {'auto', 'eigh', 'svd'}
        How the spectrum of an unfolding is computed (see :func:`st_hosvd`).
    progress : bool, default False
        For a Dask array: show Dask's progress bar for every pass.

    Returns
    -------
    TuckerTensor
        Orthonormal factors and core, of the array library of ``X``.

    Raises
    ------
    ValueError
        NaN/Inf in ``X``, fewer than 2 dimensions, a bad ``rank`` (the message
        names the mode) or ``rtol``, or both/neither of them given; for a Dask
        array also unknown (NaN) chunk sizes, or chunks too large for the block
        cap (the message names the rechunk to do).
    TypeError
        Complex or non-array input.
    ImportError
        A Dask array given without the ``dask`` extra installed.

    Warns
    -----
    UserWarning
        If ``rtol`` lies below 8 eps of ``X``'s dtype, as :func:`st_hosvd`.

    Notes
    -----
    ``X`` may be a chunked ``dask.array`` larger than memory (extra ``dask``):
    each mode's Gram matrix is then a sum over fibres of blocks (one pass per
    mode) and the core is a sum of block-wise products (one more pass); the
    result holds numpy arrays. See :func:`st_hosvd` for the configuration.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> x = np.linspace(0, 1, 20)
    >>> X = np.exp(-(x[:, None, None] + x[None, :, None] * x[None, None, :]))
    >>> T = ta.hosvd(X, rtol=1e-6)
    >>> float(np.linalg.norm(T.full() - X) / np.linalg.norm(X)) <= 1e-6
    True
    """
    if is_dask_collection(X):
        from ._dask_tucker import check_dask_tensor, dask_hosvd, gather_if_small

        X = check_dask_tensor(X)
        ranks, rtol = check_rank_or_rtol(rank, rtol, X.shape)
        _check_rank_product(ranks)
        _warn_rtol_below_precision(rtol, X.dtype)
        check_choice(method, name="method", choices=("auto", "eigh", "svd"))
        Xm = gather_if_small(X, bool(progress))
        if Xm is None:
            return dask_hosvd(X, ranks, rtol, method, bool(progress))
        X = Xm
    xp, X, normX2, ranks, rtol = _check_truncation_inputs(X, rank, rtol)
    X, normX2, scale = _unit_scale(xp, X, normX2)
    method = check_choice(method, name="method", choices=("auto", "eigh", "svd"))
    d = X.ndim
    if normX2 == 0.0:
        return _zero_result(xp, X, ranks or (1,) * d)
    eps = float(xp.finfo(X.dtype).eps)
    budget = None if rtol is None else rtol * rtol * normX2 / d
    factors = []
    for k in range(d):
        n = X.shape[k]
        meth = _method_for(method, n, math.prod(X.shape) // n, rtol, d, eps)
        U, _, _ = _truncate_mode(xp, X, k, None if ranks is None else ranks[k], budget, meth,
                                 n_power_iter=0, oversampling=0, rng=None, want_core=False)
        factors.append(U)
    core = multi_mode_product(X, factors, transpose=True)
    return TuckerTensor(core * scale if scale != 1.0 else core, factors, copy=False)


def st_hosvd(X, rank=None, rtol=None, *, mode_order: Sequence[int] | None = None, method: str = "auto",
             n_power_iter: int = 1, oversampling: int = 10, random_state=None, progress: bool = False):
    """Sequentially truncated higher-order SVD (Vannieuwenhoven, Vandebril, Meerbergen 2012).

    Modes are processed one after the other, each on the tensor already
    projected in the earlier modes, which is cheaper than HOSVD and never
    less accurate in practice.

    Parameters
    ----------
    X : array, shape (n_1, ..., n_d)
        Dense tensor, d >= 2 (numpy, cupy or any array-API array); not modified.
    rank : int or sequence of int, optional
        Multilinear rank. Give exactly one of ``rank`` and ``rtol``.
    rtol : float in (0, 1), optional
        Relative error bound: ``norm(X - result.full()) <= rtol * norm(X)``.
        The ST-HOSVD error is exactly the sum of the energies discarded per
        mode, so each mode may discard what the earlier modes left of the
        budget ``rtol^2 ||X||^2``, split evenly over the remaining modes;
        each rank is the smallest that fits its share.
    mode_order : sequence of int, optional
        Order in which modes are truncated. Default: the mode with the largest
        reduction ``n_k / r_k`` first (by ``n_k`` when ``rtol`` is given),
        unless, for the Gram and SVD routes on a tensor of at least 2^18
        entries and at most 5 modes, a model of the Gram products' cost finds
        an order at least a fifth cheaper (small modes first shrink the
        tensor before a large mode's Gram matrix is formed; see the guide);
        the model also orders modes of equal reduction (on a cube: 0, 2, 1).
        Dask arrays take the same default.
    method : {'auto', 'eigh', 'svd', 'randomized'}
        'eigh': eigen-decomposition of the Gram matrix of each unfolding
        (fastest for wide unfoldings; resolves singular values down to about
        ``sqrt(n eps)`` of the largest, so at tight ``rtol`` its ranks may
        exceed the optimal ones; with ``rank``, a certified subspace
        iteration finds the leading eigenpairs when it can, and a rank
        below that resolution takes the refined route or the SVD, see the
        guide; so does a rank at which the discarded energy lies at the
        Gram matrix's rounding level, data of about that multilinear rank,
        where the eigenvectors' own error would dominate);
        'svd': SVD of the unfolding; 'randomized': randomized range finder
        with ``n_power_iter`` power iterations and ``oversampling`` extra
        columns (with ``rtol`` the sketch grows until the exactly computed
        error fits); 'auto' picks by shape and
        tolerance (as scikit-learn's ``svd_solver='auto'`` does): for tall
        unfoldings 'svd' with ``rtol``, and with ``rank`` the small Gram
        matrix of the columns, whose leading eigenvectors ``V_r`` give the
        subspace as the SVD of the thin ``A V_r`` (the SVD of the unfolding
        where the ``r``-th singular value is too small for it); 'eigh' for
        wide unfoldings, and for a tight ``rtol``
        (per-mode budget below ``2 n eps ||X||^2``) a refined Gram route
        that rotates by the Gram eigenvectors and re-solves the small part
        of the spectrum at a fraction of the SVD's cost, and the SVD where
        even those energies do not resolve the budget (rtol around 1e-10 and
        below on smooth data). With ``rtol``, 'eigh' measures the energy it
        discards explicitly, so the bound holds for every method.
    n_power_iter : int, default 1
        Power iterations of the randomized method. On a large tensor they
        run on the sign-sketched unfolding and cost no pass over the data
        (see Notes).
    oversampling : int, default 10
        Extra sketch columns of the randomized method.
    random_state : None, int or numpy.random.Generator
        Seed for the randomized method.
    progress : bool, default False
        For a Dask array: show Dask's progress bar for every pass over the
        data (``distributed.progress`` when a ``dask.distributed.Client`` is
        active).

    Returns
    -------
    TuckerTensor
        Orthonormal factors and core, on the device of ``X`` (numpy arrays
        for a Dask array).

    Raises
    ------
    ValueError
        If ``X`` holds NaN or Inf, has fewer than 2 dimensions, ``rank`` does
        not fit ``X.shape`` (the message names the mode), ``rtol`` is outside
        (0, 1), or both or neither of ``rank`` and ``rtol`` are given.
        For a Dask array also: unknown (NaN) chunk sizes (call
        ``X.compute_chunk_sizes()``), or a chunking whose fibres along a mode
        exceed the block cap (the message names the rechunk that fits).
    TypeError
        If ``X`` is complex or not an array.
    ImportError
        If ``X`` is a Dask array and the ``dask`` extra is not installed.

    Warns
    -----
    UserWarning
        If ``rtol`` lies below 8 eps of ``X``'s dtype (about 1e-6 for
        float32, 1.8e-15 for float64): the rounding of the result itself can
        then exceed the bound. For a Dask array also where the block-wise
        route does not resolve the rank (see below).

    Notes
    -----
    **Randomized method on a large tensor.** For an in-memory tensor of at
    least 2^18 entries whose largest other mode ``j`` holds at least twice
    the sketch width ``w = rank + oversampling``, the mode being truncated is
    found in two stages. A sparse sign sketch (CountSketch; Clarkson and
    Woodruff 2013) first shrinks mode ``j`` to ``w``:
    ``Z = X x_j S``, one multiply-add per entry,
    a pass that also yields ``||X||^2`` and the finiteness check. The range
    finder of Halko, Martinsson and Tropp (2011, Alg. 4.3), with its
    Gaussian Khatri-Rao test matrix and its ``n_power_iter`` power
    iterations, then runs on ``Z``'s unfolding, ``w / n_j`` of the data.
    With ``rank``, the same sketch (applied to ``Z``, a fraction of a pass)
    shrinks further modes of at least ``2 w`` too, largest first, while
    ``Z``'s unfolding keeps 400 columns per rank or more (so, with the
    default oversampling, only on tensors of 4 or more modes): the sketch's
    distortion costs about ``rank / columns`` of extra error. With
    ``rank``, on an unfolding of at least 2^22 entries, the leading ``r``
    directions of its range are chosen on ``Z`` and the data is projected
    on them: the whole mode reads the data twice, against
    ``2 + 2 n_power_iter`` passes without the first stage. Where the
    spectrum decays so smoothly that the next direction holds most of the
    energy left out, the sketch's own distortion would mix it into the
    chosen ones; the data is then projected on all ``w`` directions and the
    leading ``r`` are chosen on it, as on smaller unfoldings. With ``rtol``
    the projection keeps all ``w`` directions, whose energies are then
    exact, and the rank and the error bound come from them. The power
    iterations sharpen the subspace of ``Z``, not the sign sketch itself;
    on the benchmark tensors the error is within 0.3% of the deterministic
    ST-HOSVD's at ``n_power_iter=1``.

    **Dask arrays (out of core).** A chunked ``dask.array`` that fits
    ``tensorapprox.in-memory-bytes`` (Dask config, default 256 MiB) is
    gathered in one pass and decomposed in memory. A larger one is read
    block by block and never held whole; it runs on Dask's current scheduler
    (the local threads by default, a ``dask.distributed`` cluster when a
    ``Client`` is active). While the tensor projected so far is larger than
    that budget, each mode costs two passes: the Gram matrix of the
    unfolding as a sum over fibres of blocks (blocks spanning the mode
    whole, at most ``tensorapprox.max-block-bytes``, default 512 MiB), then
    the projection, which with ``rtol`` also measures the discarded energy
    explicitly, so the bound holds (the rank grows by doubling steps and
    bisection, a pass per try). Where the Gram matrix does not resolve the
    rank or a tight ``rtol`` (see the guide), the refined Gram route adds
    one pass (the rotated rows' Gram matrix, summed over the fibres); where
    that does not resolve it either (in memory the SVD would decide), a
    warning says that the trailing directions are inaccurate. Once the
    projected tensor fits, it is computed into memory
    and the remaining modes run in memory with ``method``. With
    ``method='randomized'`` the sketches of *all* modes are formed in a
    single pass, each power iteration costs one pass per mode, and a last
    pass forms the small core ``X x_k Q_k^T``, truncated in memory (a
    randomized HOSVD rather than the sequential variant used in memory).
    Set the limits with ``dask.config.set({"tensorapprox.max-block-bytes":
    "1 GiB"})``.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> x = np.linspace(0, 1, 32)
    >>> X = 1 / (1 + x[:, None, None] + x[None, :, None] + x[None, None, :])
    >>> T = ta.st_hosvd(X, rtol=1e-6)
    >>> float(np.linalg.norm(T.full() - X) / np.linalg.norm(X)) <= 1e-6
    True

    The same on a chunked Dask array, read block by block:

    >>> import dask.array as da
    >>> Td = ta.st_hosvd(da.from_array(X, chunks=8), rtol=1e-6)
    >>> Td.ranks == T.ranks
    True
    """
    lazy = is_dask_collection(X)
    if lazy:
        from ._dask_tucker import check_dask_tensor, dask_st_hosvd, gather_if_small

        X = check_dask_tensor(X)
    else:
        X = check_tensor(X, name="X", finite=False)  # finiteness below, with the first Gram matrix
    ranks, rtol = check_rank_or_rtol(rank, rtol, X.shape)
    _check_rank_product(ranks)
    _warn_rtol_below_precision(rtol, X.dtype)
    method = _check_method(method)
    n_power_iter = check_int(n_power_iter, name="n_power_iter", minimum=0)
    oversampling = check_int(oversampling, name="oversampling", minimum=0)
    order = _resolve_mode_order(mode_order, X.shape, ranks, method)
    if lazy:
        Xm = gather_if_small(X, bool(progress))
        if Xm is None:
            return dask_st_hosvd(X, ranks, rtol, order, method, n_power_iter, oversampling, random_state,
                                 bool(progress))
        X = check_tensor(Xm, name="X", finite=False)
    rng = check_random_state(random_state) if method == "randomized" else None
    xp = get_namespace(X)
    X, normX2, scale, first = _finite_norm_and_first_pass(xp, X, order, ranks, rtol, method,
                                                          oversampling=oversampling, rng=rng)
    T = _st_hosvd_checked(xp, X, normX2, ranks, rtol, order, method, n_power_iter, oversampling, rng,
                          first=first)
    return TuckerTensor(T.core * scale, T.factors, copy=False) if scale != 1.0 else T


@dataclass(frozen=True)
class _FirstPass:
    """What the finiteness check of ST-HOSVD's first mode computed on the way.

    ``gram``: the Gram matrix of the first unfolding (the 'eigh' route);
    ``sketch``: ``(axis, width, Z)`` for the randomized route, ``Z`` the
    sign sketch of mode ``axis`` at ``width`` (see :func:`_randomized_mode`),
    the generator's first draws.
    """

    gram: object = None
    sketch: tuple | None = None


def _finite_norm_and_first_pass(xp, X, order, ranks, rtol, method, *, oversampling=10, rng=None):
    """Finish checking ``X`` for ST-HOSVD: ``(X, ||X||_F^2, scale, first)``.

    ``X`` has passed every check but finiteness; ``method`` is ST-HOSVD's
    (None: no ST-HOSVD follows). The first mode in ``order`` starts with a
    pass over the data that yields ``||X||_F^2`` too, NaN or Inf for data
    holding NaN/Inf, so a finite value spares the check its own pass:
    the Gram matrix of the 'eigh' route (its trace) or the sign sketch of
    the randomized route (its kernel sums the squares). That product is
    returned in ``first`` (a :class:`_FirstPass`). Otherwise (another route,
    or a non-finite or tiny sum) the full check runs: it raises for NaN/Inf,
    and finite data whose squared norm overflows or underflows is rescaled
    (see :func:`_unit_scale`); ``first`` is then None.
    """
    k = order[0]
    n = int(X.shape[k])
    m = math.prod(X.shape) // n
    eps = float(xp.finfo(X.dtype).eps)
    meth = None if method is None else _method_for(method, n, m, rtol, X.ndim, eps)
    rank = None if ranks is None else ranks[k]
    if meth == "eigh":
        # NaN/Inf or overflowing data is told apart below: no warnings here
        with np.errstate(over="ignore", invalid="ignore"):
            G = _gram(xp, X, k)
            normX2 = float(xp.sum(xp.linalg.diagonal(G)))
        if _norm2_in_range(normX2, xp, X.dtype):
            return X, normX2, 1.0, _FirstPass(gram=G)
    elif meth == "randomized" and _randomized_applies(n, m, rank, oversampling):
        width = _initial_width(n, m, rank, oversampling)
        axis = _first_stage_axis(tuple(X.shape), k, width)
        if axis is not None:
            state = rng.bit_generator.state
            with np.errstate(over="ignore", invalid="ignore"):
                Z, normX2 = _draw_sign_sketch(X, axis, width, rng)
            if _norm2_in_range(normX2, xp, X.dtype):
                return X, normX2, 1.0, _FirstPass(sketch=(axis, width, Z))
            rng.bit_generator.state = state  # the scaled data is sketched with the same draws
    X, normX2 = check_tensor(X, name="X", return_sumsq=True)
    X, normX2, scale = _unit_scale(xp, X, normX2)
    return X, normX2, scale, None


def _st_hosvd_checked(xp, X, normX2, ranks, rtol, order, method, n_power_iter=1, oversampling=10, rng=None,
                      first=None, keep=None):
    """ST-HOSVD of an already validated (and, if needed, unit-scaled) ``X``.

    ``first``, when given, is the :class:`_FirstPass` of ``X`` in mode
    ``order[0]`` (see :func:`_finite_norm_and_first_pass`). ``keep``, a
    dict, receives ``keep['first'] = X x_k U_k^T`` for ``k = order[0]``.
    """
    d = X.ndim
    if normX2 == 0.0:
        return _zero_result(xp, X, ranks or (1,) * d)
    budget_total = None if rtol is None else rtol * rtol * normX2
    factors = [None] * d
    Y, _ = _st_hosvd_modes(xp, X, order, 0, ranks, rtol, budget_total, 0.0, method, factors,
                           n_power_iter=n_power_iter, oversampling=oversampling, rng=rng, normY2=normX2,
                           first=first, keep=keep)
    return TuckerTensor(Y, factors, copy=False)


def _st_hosvd_modes(xp, Y, order, start, ranks, rtol, budget_total, used, method, factors, *,
                    n_power_iter, oversampling, rng, normY2=None, first=None, keep=None):
    """Truncate modes ``order[start:]`` of ``Y`` in turn; fills ``factors``, returns ``(core, used)``.

    ``used`` is the energy the modes before ``start`` discarded; each mode may
    discard an even share of what is left of ``budget_total``. ``normY2``,
    when known, is ``||Y||_F^2`` on entry; ``first``, when known, the
    :class:`_FirstPass` of ``Y`` in mode ``order[start]``; ``keep`` (a dict),
    when given, receives the tensor after that first mode as ``keep['first']``.
    """
    d = len(order)
    eps = float(xp.finfo(Y.dtype).eps)
    for i in range(start, d):
        k = order[i]
        n = Y.shape[k]
        m = math.prod(Y.shape) // n
        share = None if rtol is None else max(budget_total - used, 0.0) / (d - i)
        meth = _method_for(method, n, m, rtol, d, eps)
        U, Y, discarded = _truncate_mode(
            xp, Y, k, None if ranks is None else ranks[k], share, meth,
            n_power_iter=n_power_iter, oversampling=oversampling, rng=rng, total=normY2 if i == start else None,
            first=first if i == start else None,
        )
        used += discarded
        factors[k] = U
        if keep is not None and i == start:
            keep["first"] = Y
    return Y, used


def _resolve_mode_order(mode_order, shape, ranks, method=None):
    """The order ST-HOSVD truncates the modes in: ``mode_order`` checked, or the default.

    The default takes the largest reduction ``n_k / r_k`` first (by ``n_k``
    when the ranks are not known); the randomized route (``method``
    'randomized', or None) keeps it. For the Gram and SVD routes
    (``method`` 'auto', 'eigh' or 'svd') of a tensor of at most
    ``_ORDER_SEARCH_MAX_D`` modes and ``_ORDER_SEARCH_MIN_ELEMS`` entries
    or more (below, the order hardly changes the time), every order is priced by
    :func:`_gram_route_cost` and the cheapest is taken instead when it costs
    at most ``_ORDER_SWITCH`` times the default's. Modes the heuristic ranks
    equal keep no order of their own: among the orders it ranks alike, the
    default is the one the cost model prices lowest.
    """
    d = len(shape)
    if mode_order is None:
        if ranks is None:
            order = sorted(range(d), key=lambda k: -shape[k])
        else:
            order = sorted(range(d), key=lambda k: -shape[k] / ranks[k])
        if (method in ("auto", "eigh", "svd") and d <= _ORDER_SEARCH_MAX_D
                and math.prod(shape) >= _ORDER_SEARCH_MIN_ELEMS):
            # modes the heuristic ranks equal (a cube) are ordered by the cost
            # model: its cheapest such order leaves a middle mode to the end,
            # after the last one, whose Gram matrix needs no permuted copy
            # (0.43 passes less on 200^3 at rank 10, in st_hosvd's time of 6.6)
            key = [Fraction(shape[k], 1 if ranks is None else ranks[k]) for k in range(d)]
            want = [key[k] for k in order]
            base = _gram_route_cost(order, shape, ranks)
            best, best_cost = order, base
            for cand in itertools.permutations(order):
                cost = _gram_route_cost(cand, shape, ranks)
                if cost < base and [key[k] for k in cand] == want:
                    order, base = list(cand), cost
                if cost < best_cost:
                    best, best_cost = list(cand), cost
            if best_cost <= _ORDER_SWITCH * base:
                order = best
        return order
    if isinstance(mode_order, (str, bytes)):
        raise TypeError(f"mode_order must be a sequence of ints, got {mode_order!r}")
    try:
        # operator.index: 0.5 or 1.9 were truncated to modes 0 and 1 before
        order = [operator.index(k) for k in mode_order]
    except TypeError:
        raise TypeError(f"mode_order must be a sequence of ints, got {mode_order!r}") from None
    if any(isinstance(k, (bool, np.bool_)) for k in mode_order):
        raise TypeError(f"mode_order must be a sequence of ints, got {mode_order!r}")
    if sorted(order) != list(range(d)):
        raise ValueError(f"mode_order must be a permutation of 0..{d - 1}, got {list(mode_order)}")
    return order


# orders are searched for tensors of at most this many modes (5! = 120 orders)
# and at least this many entries
_ORDER_SEARCH_MAX_D = 5
_ORDER_SEARCH_MIN_ELEMS = 1 << 18
# ... and the cheapest replaces the default when it costs at most this share of it
_ORDER_SWITCH = 0.8
# flops per entry at which a Gram product stops being bound by reading the
# data and becomes bound by arithmetic (2 BLAS threads on the machine the
# constants below were measured on: a 200 x 40000 Gram matrix took 4.3
# passes over its data)
_GRAM_FLOPS_PER_PASS = 46.0
# extra passes for a mode inside the tensor (its permuted copy and batched
# projection) and for the last mode (BLAS is slower on the tall unfolding)
_MIDDLE_MODE_PASSES = 3.0
_LAST_MODE_PASSES = 1.5


def _gram_route_cost(order, shape, ranks) -> float:
    """Predicted time of Gram-route ST-HOSVD in ``order``, in passes over the input.

    Per mode ``k`` of the current tensor (``N`` entries, relative to the
    input): the Gram matrix of the smaller side of the unfolding,
    ``N (1 + min(n_k, N / n_k) / _GRAM_FLOPS_PER_PASS)``, one pass for the
    projection, and the extra passes of a middle or last mode; then the
    tensor shrinks by ``r_k / n_k`` (``1/2`` when the rank is not known).
    The main term is the Gram matrix's ``min(n_k, N / n_k)`` multiply-adds
    per entry: a large mode taken first costs that on the whole tensor, and
    a small mode taken first shrinks the tensor before it.
    ``benchmarks/bench_mode_order.py`` times the chosen order against the
    reduction heuristic: 6.4x faster at ranks 10 and 54x at rtol 2e-3 on a
    4000 x 50 x 50 tensor, 1.0 to 5.2x on three other shapes, with the same
    errors and ranks; on a Dask array decomposed block-wise 75x and 29x,
    and 1.4 to 6.2x.
    """
    d = len(shape)
    cur = [int(n) for n in shape]
    entries = math.prod(cur)
    cost = 0.0
    for k in order:
        n = cur[k]
        total = math.prod(cur)
        size = total / entries
        a = math.prod(cur[:k])
        cost += size * (2.0 + min(n, total / n) / _GRAM_FLOPS_PER_PASS)
        if k == d - 1:
            cost += size * _LAST_MODE_PASSES
        elif k > 0 and not _gram_sums_slabs(a, n, total // (a * n)):
            cost += size * _MIDDLE_MODE_PASSES
        cur[k] = max(1, n // 2) if ranks is None else int(ranks[k])
    return cost


def _orthonormalize(xp, U):
    Q, _ = xp.linalg.qr(U)
    return Q


# Below this relative error the shortcut sqrt(||X||^2 - ||G||^2) loses more
# than ~1e-6 of its relative accuracy to cancellation (its absolute error is
# about eps * ||X||^2 / err^2 relative); the residual is then formed explicitly.
_EXPLICIT_RESIDUAL_BELOW = 1e-5


def _explicit_residual_below(eps: float) -> float:
    """The error under which the shortcut is replaced, for data of precision ``eps``.

    1e-5 for float64; the same relative accuracy in float32 needs 0.23
    (at 1.5e-4 the float32 shortcut read 3.5e-4, and a tucker_als history
    was off by that).
    """
    return _EXPLICIT_RESIDUAL_BELOW * math.sqrt(eps / float(np.finfo(np.float64).eps))


def _relative_error(xp, X, normX2, core, factors, first=None):
    """``||X - G x U||_F / ||X||_F`` for orthonormal factors and ``G = X x U^T``, computed stably.

    ``first``, when known, is ``(k, X x_k U_k^T)`` (see :func:`_projection_residual`).
    """
    if normX2 == 0.0:
        return 0.0
    short2 = max(normX2 - _sumsq(xp, core), 0.0)
    rel = math.sqrt(short2 / normX2)
    if rel >= _explicit_residual_below(float(xp.finfo(X.dtype).eps)):
        return rel
    return math.sqrt(_projection_residual(xp, X, factors, first=first) / normX2)


def _projection_residual(xp, X, factors, first=None) -> float:
    """``||X - X x_k U_k U_k^T (all k)||_F^2``, from explicitly formed differences.

    The residual splits into orthogonal parts, one per mode, taken in any
    order ``k_1, ..., k_d``:
    ``X - X_hat = sum_i X x_{j < i} P_{k_j} x_{k_i} (I - P_{k_i})`` with
    ``P_k = U_k U_k^T``, and the ``i``-th part has the norm of
    ``C_{i-1} - C_i x_{k_i} U_{k_i}`` with ``C_i = X x_{j <= i} U_{k_j}^T``.
    Each part is formed and summed explicitly, so nothing cancels; only the
    first is as large as ``X``, the others act on tensors already compressed
    in the earlier modes (one reconstruction in one mode instead of the full
    reconstruction in all of them). ``first = (k, X x_k U_k^T)``, when the
    caller has that product (ST-HOSVD forms it), puts mode ``k`` first and
    spares its pass over ``X``.
    """
    d = len(factors)
    order = list(range(d)) if first is None else [first[0]] + [j for j in range(d) if j != first[0]]
    C = X
    total = 0.0
    for i, k in enumerate(order):
        U = factors[k]
        Cn = first[1] if i == 0 and first is not None else _ttm(xp, C, xp.matrix_transpose(U), k)
        total += _residual_energy(xp, C, Cn, U, k)
        C = Cn
    return total


def _hooi_sweeps(half_sweep, rel_error, init_t, factors, d, tol, max_iter, callback, verbose, scale,
                 first_mode=None):
    """The HOOI sweeps shared by the in-memory and the Dask paths; returns the :class:`TuckerALSResult`.

    ``half_sweep(group, other, want_core)`` updates ``factors[k]`` for ``k`` in
    ``group`` (the data multiplied by the factors of ``other`` is its input)
    and returns the core when asked; ``rel_error(core, factors)`` measures a
    sweep. The modes are split in two halves, so a sweep passes over the data
    twice whatever ``d``. With ``first_mode = k`` the first sweep splits them
    as ``{k}`` and the rest instead, the rest first: ``half_sweep`` then
    finds ``X x_k U_k^T`` in its cache (ST-HOSVD formed it), and that sweep
    passes over the data once.
    """
    half = (d + 1) // 2
    left, right = list(range(half)), list(range(half, d))
    core = init_t.core
    history = [rel_error(core, factors)]
    converged = False
    n_iter = 0
    t0 = time.perf_counter()
    for it in range(1, max_iter + 1):
        if it == 1 and first_mode is not None:
            rest = [j for j in range(d) if j != first_mode]
            halves = ((rest, [first_mode]), ([first_mode], rest))
        else:
            halves = ((left, right), (right, left))
        for group, other in halves:
            Yproj = half_sweep(group, other, group is halves[1][0])
            if Yproj is not None:
                core = Yproj
        n_iter = it
        err = rel_error(core, factors)
        history.append(err)
        if verbose:
            print(f"tucker_als sweep {it:3d}  rel. error {err:.6e}  ({time.perf_counter() - t0:.2f} s)")
        # the callback sees the approximation of X itself: the sweeps run on X
        # divided by ``scale`` where its squared norm left float64
        stop = (bool(callback(it, err, TuckerTensor(core * scale if scale != 1.0 else core, factors, copy=False)))
                if callback is not None else False)
        if history[-2] - err <= tol:
            converged = True
            break
        if stop:
            break
    if scale != 1.0:
        core = core * scale
        init_t = TuckerTensor(init_t.core * scale, init_t.factors, copy=False)
    return TuckerALSResult(TuckerTensor(core, factors, copy=False), n_iter, converged, tuple(history), init_t)


def _check_init(init, X, ranks, *, lazy=False):
    """Validate ``tucker_als``'s ``init`` against the data ``X`` (a Dask array when ``lazy``)."""
    if isinstance(init, TuckerTensor):
        shape = tuple(int(n) for n in X.shape)
        if init.shape != shape or init.ranks != ranks:
            raise ValueError(
                f"init has shape {init.shape} and ranks {init.ranks}; expected {shape} and {ranks}"
            )
        # the sweeps of a Dask array run on numpy factors; otherwise init must
        # hold arrays of X's library (a foreign one failed inside xp.astype,
        # with an AttributeError or an unrelated dtype error)
        like = np.empty(0) if lazy else X
        try:
            get_namespace(like, init.core)
        except TypeError:
            want = "numpy" if lazy else get_namespace(X).__name__
            raise TypeError(f"init holds arrays of another array library ({get_namespace(init.core).__name__}) "
                            f"than the data ({want}); convert init first") from None
        xp = get_namespace(init.core)
        # NaN/Inf factors were accepted, and the initial error came out NaN
        for name, A in [("core", init.core)] + [(f"factors[{k}]", U) for k, U in enumerate(init.factors)]:
            if not bool(xp.all(xp.isfinite(A))):
                raise ValueError(f"init {name} contains NaN or Inf values")
    elif not (isinstance(init, str) and init in ("st_hosvd", "random")):
        raise ValueError(f"init must be 'st_hosvd', 'random' or a TuckerTensor; got {init!r}")


def _als_group(xp, P, group, factors, ranks, *, want_core):
    """One HOOI half-sweep: update ``factors[k]`` for ``k`` in ``group`` from ``P``.

    ``P`` is the data already multiplied by the (transposed) factors of the
    other modes; with ``want_core`` the core of the last update is returned.
    """
    d = P.ndim
    core = None
    for k in group:
        rest = [j for j in group if j != k]
        Yk = multi_mode_product(P, [factors[j] for j in rest], modes=rest, transpose=True) if rest else P
        n = Yk.shape[k]
        U, Yproj, _ = _truncate_mode(
            xp, Yk, k, ranks[k], None, _method_for("auto", n, math.prod(Yk.shape) // n, None, d, 0.0),
            n_power_iter=0, oversampling=0, rng=None, want_core=want_core and k == group[-1],
        )
        factors[k] = U
        if Yproj is not None:
            core = Yproj
    return core


def tucker_als(X, rank, *, init="st_hosvd", tol: float = 1e-8, max_iter: int = 50,
               callback: Callable | None = None, verbose: bool = False, random_state=None,
               progress: bool = False) -> TuckerALSResult:
    """Tucker decomposition by alternating least squares (HOOI).

    Higher-order orthogonal iteration (De Lathauwer, De Moor, Vandewalle
    2000, Alg. 4.2): each sweep replaces ``U_k`` by the leading left singular
    vectors of ``(X x_{j != k} U_j^T)_(k)``.

    Parameters
    ----------
    X : array, shape (n_1, ..., n_d)
        Dense tensor, d >= 2; not modified.
    rank : int or sequence of int
        Multilinear rank (see :func:`st_hosvd` with ``rtol`` to pick it).
    init : {'st_hosvd', 'random'} or TuckerTensor
        Initial guess: ST-HOSVD (default), random orthonormal factors, or the
        factors of a given TuckerTensor of this shape and rank, with finite
        entries, of the array library of ``X`` (numpy for a Dask array);
        they are converted to the dtype ``X`` computes in and orthonormalized.
    tol : float, default 1e-8
        Stop when the relative error decreases by less than ``tol`` in a sweep.
    max_iter : int, default 50
        Maximum number of sweeps.
    callback : callable, optional
        ``callback(n_iter, rel_error, tucker)`` after every sweep; returning
        ``True`` stops the iteration.
    verbose : bool, default False
        Print the relative error after every sweep.
    random_state : None, int or numpy.random.Generator
        Seed for ``init='random'``.
    progress : bool, default False
        For a Dask array: show Dask's progress bar for every pass.

    Returns
    -------
    TuckerALSResult
        ``tucker``, ``n_iter``, ``converged``, ``history`` (relative error of
        the initial guess then per sweep) and ``init``.

    Raises
    ------
    ValueError
        NaN/Inf in ``X``, fewer than 2 dimensions, a ``rank`` that does not fit
        ``X.shape``, a negative ``tol`` or ``max_iter``, an unknown ``init`` or
        one of another shape or rank or with NaN/Inf entries; for a Dask array
        also unknown chunk sizes or chunks too large for the block cap (see
        :func:`st_hosvd`).
    TypeError
        Complex or non-array ``X``, a ``callback`` that is not callable, or an
        ``init`` of another array library than ``X``.
    ImportError
        A Dask array given without the ``dask`` extra installed.

    Notes
    -----
    Work is shared across the modes of a sweep: with the modes split in two
    halves ``L`` and ``R``, ``X x_{j in R} U_j^T`` serves every mode of ``L``
    and ``X x_{j in L} U_j^T`` every mode of ``R``, so a sweep passes over the
    full tensor twice, whatever ``d``. The first sweep after the ST-HOSVD
    initial guess passes once: it updates the modes other than ST-HOSVD's
    first mode ``k`` from ``X x_k U_k^T``, which ST-HOSVD formed, and then
    ``k``. A chunked ``dask.array`` (extra
    ``dask``) is handled the same way, each of the two products being one
    pass of block-wise products, computed into memory when it fits
    ``tensorapprox.in-memory-bytes`` (see :func:`st_hosvd`). The relative error is
    ``sqrt(||X||^2 - ||G||^2) / ||X||`` while that is above 1e-5 and the
    explicitly formed residual below it, where the shortcut cancels. The
    residual starts from a product the sweep formed, ``X x_j U_j^T`` for a
    mode ``j`` whose factor the sweep's last half left as it was, so it
    costs one more read of ``X`` and no product with it.

    Examples
    --------
    >>> import numpy as np, tensorapprox as ta
    >>> rng = np.random.default_rng(0)
    >>> X = ta.TuckerTensor(rng.standard_normal((3, 3, 3)),
    ...                     [rng.standard_normal((n, 3)) for n in (10, 11, 12)]).full()
    >>> res = ta.tucker_als(X, rank=3)
    >>> res.converged, res.rel_error < 1e-12
    (True, True)
    """
    lazy = is_dask_collection(X)
    if lazy:
        from ._dask_tucker import check_dask_tensor, dask_tucker_als, gather_if_small

        X = check_dask_tensor(X)
    else:
        X = check_tensor(X, name="X", finite=False)  # finiteness below, with the first Gram matrix
    ranks = check_rank(rank, X.shape)
    _check_rank_product(ranks)
    tol = check_positive_float(tol, name="tol", allow_zero=True)
    max_iter = check_int(max_iter, name="max_iter", minimum=0)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    _check_init(init, X, ranks, lazy=lazy)
    if lazy:
        Xm = gather_if_small(X, bool(progress))
        if Xm is None:
            return dask_tucker_als(X, ranks, init, tol, max_iter, callback, verbose, random_state,
                                   bool(progress))
        X = check_tensor(Xm, name="X", finite=False)
    xp = get_namespace(X)
    order = _resolve_mode_order(None, X.shape, ranks, "auto")
    by_st_hosvd = isinstance(init, str) and init == "st_hosvd"
    cache: dict = {}  # ST-HOSVD's tensor after its first mode, for the first sweep
    X, normX2, scale, first = _finite_norm_and_first_pass(xp, X, order, ranks, None,
                                                          "auto" if by_st_hosvd else None)
    d = X.ndim

    if isinstance(init, TuckerTensor):
        factors = [_orthonormalize(xp, xp.astype(U, X.dtype)) for U in init.factors]
        init_t = TuckerTensor(multi_mode_product(X, factors, transpose=True), factors, copy=False)
    elif by_st_hosvd:
        init_t = _st_hosvd_checked(xp, X, normX2, ranks, None, order, "auto", first=first, keep=cache)
        factors = list(init_t.factors)
    else:  # 'random'
        rng = check_random_state(random_state)
        factors = [_orthonormalize(xp, random_normal(xp, (n, r), X.dtype, rng, like=X))
                   for n, r in zip(X.shape, ranks)]
        init_t = TuckerTensor(multi_mode_product(X, factors, transpose=True), factors, copy=False)

    if normX2 == 0.0:
        zero = _zero_result(xp, X, ranks)
        return TuckerALSResult(zero, 0, True, (0.0,), init_t)

    def half_sweep(group, other, want_core):
        cache.pop("single", None)
        if other == [order[0]] and "first" in cache:
            P = cache.pop("first")  # X x_k U_k^T with the ST-HOSVD factor, which is still factors[k]
        else:
            P, single = _mode_products(xp, X, [(j, xp.matrix_transpose(factors[j])) for j in other])
            # X x_j U_j^T for the mode j contracted first: U_j is final for this
            # sweep (the group updates the other modes), so an explicit error
            # of the sweep starts from it instead of contracting X again
            cache["single"] = single
        return _als_group(xp, P, group, factors, ranks, want_core=want_core)

    def rel_error(core, fs):
        # until the first sweep takes it, the cache holds X x_k U_k^T for ST-HOSVD's
        # first mode k, whose factor is still fs[k]: the initial error needs no new product
        if "single" in cache:
            first = cache["single"]
        else:
            first = (order[0], cache["first"]) if "first" in cache else None
        return _relative_error(xp, X, normX2, core, fs, first=first)

    return _hooi_sweeps(half_sweep, rel_error, init_t, factors, d, tol, max_iter, callback, verbose, scale,
                        first_mode=order[0] if "first" in cache else None)
