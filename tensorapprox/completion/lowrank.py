"""``LowRankMatrix``: a matrix kept as ``U @ diag(s) @ V.T``.

The format a completion algorithm returns and a user keeps: entries at index
arrays without forming the dense matrix, ``full()`` behind a memory guard,
``norm()``, ``nbytes``, ``compression_ratio`` and ``save``/``load`` through
``.npz`` (never pickle).
"""

from __future__ import annotations

import math
import numbers
import os
import numpy as np

from .._array import float_dtype_for, get_namespace, is_numpy, readonly, to_numpy
from .._validation import DEFAULT_MAX_DENSE_BYTES, check_bool, check_dense_size, npz_version, read_npz
from ..tensor import _ldexp, _pow2_normalized, _pow2_r_factor, _scaled_frobenius

__all__ = ["LowRankMatrix"]

_FORMAT_TAG = "tensorapprox.LowRankMatrix"
_FORMAT_VERSION = 1
_DEFAULT_MAX_BYTES = DEFAULT_MAX_DENSE_BYTES


def _as_index(x, name: str, size: int, xp):
    if not hasattr(x, "shape"):
        x = xp.asarray(np.asarray(x))
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        # an empty list is float64 to numpy: no index, whatever the dtype
        return xp.zeros((0,), dtype=xp.int64)
    if not xp.isdtype(x.dtype, "integral"):
        raise TypeError(f"{name} must hold integers, got dtype {x.dtype}; cast with .astype(int)")
    if x.shape[0] and (bool(xp.any(x < 0)) or bool(xp.any(x >= size))):
        raise ValueError(f"{name} holds indices outside [0, {size}); every index must be in range")
    return x


class LowRankMatrix:
    """An immutable matrix stored as ``U @ diag(s) @ V.T``.

    Parameters
    ----------
    U : array, shape (n1, k)
        Left factor (numpy, cupy or any array-API array).
    s : array, shape (k,)
        Weights (singular values when ``U`` and ``V`` are orthonormal).
    V : array, shape (n2, k)
        Right factor, same namespace and dtype as ``U``.
    copy : bool, default True
        Keep copies of the given arrays, so that writing to them later does
        not change this matrix (as :class:`~tensorapprox.TuckerTensor`
        does). ``copy=False`` keeps them as they are (read-only views for
        numpy); the caller then must not modify them. Arrays converted to
        another dtype are copies either way.

    Attributes
    ----------
    U, s, V : array
        The factors and weights (read-only numpy arrays for numpy input).
    shape : tuple of int
        ``(n1, n2)``.
    rank : int
        ``k``, the number of columns of the factors.
    nbytes : int
        Memory held by the three arrays.
    compression_ratio : float
        Bytes of the dense matrix divided by ``nbytes``.

    Raises
    ------
    TypeError
        If an argument is not an array or holds complex numbers, or ``copy``
        is not a bool.
    ValueError
        If the shapes do not fit together or an entry is NaN or Inf.

    See Also
    --------
    LowRankMatrix.from_factors : Build the SVD form from any ``A @ B.T``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.lowrank import LowRankMatrix
    >>> rng = np.random.default_rng(0)
    >>> U, _ = np.linalg.qr(rng.standard_normal((6, 2)))
    >>> V, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    >>> M = LowRankMatrix(U, np.array([2.0, 1.0]), V)
    >>> M.shape, M.rank
    ((6, 5), 2)
    >>> bool(np.allclose(M.entries([0, 5], [1, 4]), M.full()[[0, 5], [1, 4]]))
    True
    >>> round(M.norm(), 12) == round(float(np.sqrt(5.0)), 12)
    True
    """

    __slots__ = ("_U", "_s", "_V", "_xp")

    def __init__(self, U, s, V, *, copy: bool = True):
        for name, a in (("U", U), ("s", s), ("V", V)):
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise TypeError(
                    f"{name} must be an array (numpy, cupy or array-API), got {type(a).__name__}; "
                    "convert lists with numpy.asarray first"
                )
        try:
            xp = get_namespace(U, s, V)
        except TypeError:
            raise TypeError("U, s and V must come from the same array library") from None
        if U.ndim != 2:
            raise ValueError(f"U must be two-dimensional (n1, k), got shape {tuple(U.shape)}")
        if V.ndim != 2:
            raise ValueError(f"V must be two-dimensional (n2, k), got shape {tuple(V.shape)}")
        if s.ndim != 1:
            raise ValueError(f"s must be one-dimensional (k,), got shape {tuple(s.shape)}")
        k = int(s.shape[0])
        if int(U.shape[1]) != k or int(V.shape[1]) != k:
            raise ValueError(
                f"U has {int(U.shape[1])} columns, s has {k} entries and V has {int(V.shape[1])} columns; "
                "all three must equal the rank k"
            )
        if int(U.shape[0]) == 0 or int(V.shape[0]) == 0:
            raise ValueError(f"the matrix must not be empty, got shape ({int(U.shape[0])}, {int(V.shape[0])})")
        copy = check_bool(copy, name="copy")
        dtypes = [float_dtype_for(a, xp) for a in (U, s, V)]
        dtype = xp.float32 if all(d == xp.float32 for d in dtypes) else xp.float64
        given = (U, s, V)
        U, s, V = (a if a.dtype == dtype else xp.astype(a, dtype) for a in (U, s, V))
        for name, a in (("U", U), ("s", s), ("V", V)):
            if not bool(xp.all(xp.isfinite(a))):
                raise ValueError(f"{name} contains NaN or Inf values; the factors must be finite")
        # a converted array is already this object's own
        self._U, self._s, self._V = (readonly(a, xp, bool(copy) and a is g) for a, g in zip((U, s, V), given))
        self._xp = xp

    # ------------------------------------------------------------------ build
    @classmethod
    def from_factors(cls, A, B) -> "LowRankMatrix":
        """SVD form of ``A @ B.T`` without forming it.

        Parameters
        ----------
        A : array, shape (n1, k)
            Left factor; not modified.
        B : array, shape (n2, k)
            Right factor, of the same array library and ``k``.

        Returns
        -------
        LowRankMatrix
            Orthonormal ``U`` and ``V``, non-increasing ``s >= 0``.

        Raises
        ------
        ValueError
            If ``A`` and ``B`` are not 2-D with the same number of columns,
            or the resulting factors are not finite.
        TypeError
            If ``A`` and ``B`` come from different array libraries.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> rng = np.random.default_rng(1)
        >>> A, B = rng.standard_normal((7, 3)), rng.standard_normal((4, 3))
        >>> bool(np.allclose(LowRankMatrix.from_factors(A, B).full(), A @ B.T))
        True
        """
        xp = get_namespace(A, B)
        if A.ndim != 2 or B.ndim != 2 or int(A.shape[1]) != int(B.shape[1]):
            raise ValueError(
                f"A and B must be (n1, k) and (n2, k) with the same k, got {tuple(A.shape)} and {tuple(B.shape)}"
            )
        Qa, Ra = xp.linalg.qr(A)
        Qb, Rb = xp.linalg.qr(B)
        W, s, Zt = xp.linalg.svd(Ra @ Rb.T, full_matrices=False)
        return cls(Qa @ W, s, Qb @ Zt.T, copy=False)

    # ------------------------------------------------------------ properties
    @property
    def U(self):
        """Left factor, shape ``(n1, k)`` (read-only for numpy)."""
        return self._U

    @property
    def s(self):
        """Weights, shape ``(k,)`` (read-only for numpy)."""
        return self._s

    @property
    def V(self):
        """Right factor, shape ``(n2, k)`` (read-only for numpy)."""
        return self._V

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(n1, n2)`` of the represented matrix.

        Returns
        -------
        tuple of int
        """
        return (int(self.U.shape[0]), int(self.V.shape[0]))

    @property
    def rank(self) -> int:
        """Number ``k`` of stored singular triplets.

        Returns
        -------
        int
        """
        return int(self.s.shape[0])

    @property
    def dtype(self):
        """Data type of the factors (that of ``U``).

        Returns
        -------
        dtype
            In the array library of the factors.
        """
        return self.U.dtype

    @property
    def nbytes(self) -> int:
        """Bytes held by ``U``, ``s`` and ``V``.

        Returns
        -------
        int
        """
        # the factors are float32 or float64; finfo knows the width in every
        # array library (np.dtype(str(dtype)) failed for array_api_strict's)
        itemsize = self._xp.finfo(self.dtype).bits // 8
        return int(sum(int(a.size) for a in (self.U, self.s, self.V)) * itemsize)

    @property
    def compression_ratio(self) -> float:
        """Entries of the dense matrix per stored entry, ``n1 n2 / (k (n1 + n2 + 1))``.

        Returns
        -------
        float
        """
        n1, n2 = self.shape
        itemsize = self.nbytes / max(int(self.U.size + self.s.size + self.V.size), 1)
        return float(n1 * n2 * itemsize / self.nbytes)

    def __repr__(self) -> str:
        return f"LowRankMatrix(shape={self.shape}, rank={self.rank}, dtype={self.dtype})"

    # ---------------------------------------------------------------- access
    def entries(self, rows, cols):
        """Evaluate the entries ``X[rows[t], cols[t]]`` without forming ``X``.

        Parameters
        ----------
        rows, cols : array of int, shape (m,)
            Row and column indices, in range.

        Returns
        -------
        array, shape (m,)
            In the namespace of the factors (empty, of the factors' float
            dtype, for empty ``rows`` and ``cols``).

        Raises
        ------
        TypeError
            If ``rows`` or ``cols`` does not hold integers.
        ValueError
            If ``rows`` or ``cols`` is not 1-D, holds an index out of range,
            or their lengths differ.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> M = LowRankMatrix(np.ones((3, 1)), np.array([2.0]), np.ones((4, 1)))
        >>> M.entries(np.array([0, 2]), np.array([3, 1])).tolist()
        [2.0, 2.0]
        """
        xp = self._xp
        rows = _as_index(rows, "rows", self.shape[0], xp)
        cols = _as_index(cols, "cols", self.shape[1], xp)
        if rows.shape[0] != cols.shape[0]:
            raise ValueError(
                f"rows and cols must have the same length, got {int(rows.shape[0])} and {int(cols.shape[0])}"
            )
        if is_numpy(xp):
            from .._kernels.completion import sampled_dot

            return sampled_dot(np.asarray(self.U) * np.asarray(self.s), np.asarray(self.V),
                               np.asarray(rows), np.asarray(cols))
        Us = xp.take(self.U, rows, axis=0) * self.s
        return xp.sum(Us * xp.take(self.V, cols, axis=0), axis=1)

    def full(self, *, max_bytes: int | None = _DEFAULT_MAX_BYTES):
        """The dense matrix ``U @ diag(s) @ V.T``.

        Parameters
        ----------
        max_bytes : int or None, default 2**30
            Refuse to allocate more than this many bytes (``None``: no limit).

        Returns
        -------
        array, shape (n1, n2)
            The dense matrix, of the factors' array library.

        Raises
        ------
        MemoryError
            If the dense matrix would exceed ``max_bytes``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> LowRankMatrix(np.ones((2, 1)), np.array([3.0]), np.ones((2, 1))).full().tolist()
        [[3.0, 3.0], [3.0, 3.0]]
        """
        check_dense_size(self.shape, self.nbytes // max(int(self.U.size + self.s.size + self.V.size), 1),
                         max_bytes, what="matrix", instead="use entries(rows, cols)")
        return (self.U * self.s) @ self.V.T

    def norm(self) -> float:
        """Compute the Frobenius norm in O((n1 + n2) k^2), without forming the matrix.

        Correct whether or not the factors are orthonormal.

        Returns
        -------
        float
            ``||U diag(s) V^T||_F``.

        Notes
        -----
        Raises nothing of its own (the factors were checked on construction).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> M = LowRankMatrix(np.ones((2, 1)), np.array([3.0]), np.ones((3, 1)))
        >>> bool(np.isclose(M.norm(), np.linalg.norm(M.full())))
        True
        """
        # over the largest |s|: the squares of s near 1e-160 underflowed (a
        # norm of 0 at 1e-300) and near 1e160 overflowed (Inf)
        xp = self._xp
        top = float(xp.max(xp.abs(self.s))) if self.s.shape[0] else 0.0
        if top == 0.0 or not math.isfinite(top):
            return top
        # ||U diag(s) V^T|| = ||R_U diag(s) R_V^T|| for U = Q_U R_U, V = Q_V R_V:
        # the Gram matrices U^T U, V^T V overflowed for factors near 1e100
        # and underflowed near 1e-170 (each factor is scaled by a power of
        # two first), and nothing cancels
        Ru, eu = _pow2_r_factor(xp, self.U)
        Rv, ev = _pow2_r_factor(xp, self.V)
        if Ru is None or Rv is None:
            return 0.0
        B = (Ru * (self.s / top)[None, :]) @ xp.matrix_transpose(Rv)
        return _scaled_frobenius(xp, B, top, eu + ev)

    # ---------------------------------------------------------------- arith
    def __mul__(self, alpha) -> "LowRankMatrix":
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            return NotImplemented
        return LowRankMatrix(self.U, self.s * float(alpha), self.V, copy=False)

    __rmul__ = __mul__

    def __neg__(self) -> "LowRankMatrix":
        return self * -1.0

    def __add__(self, other) -> "LowRankMatrix":
        """The sum with another ``LowRankMatrix`` of the same shape, of rank ``k + k'``.

        The factors are placed side by side (``[U, U']``, ``[s, s']``,
        ``[V, V']``): no arithmetic on the entries, so nothing is rounded;
        the result's factors are no longer orthonormal. Use
        :meth:`from_factors` on ``(U diag(s), V)`` of the sum for its SVD form.

        Parameters
        ----------
        other : LowRankMatrix
            A matrix of the same shape and array library (any rank).

        Returns
        -------
        LowRankMatrix
            ``self.full() + other.full()``, float32 only when both are.

        Raises
        ------
        ValueError
            If the shapes differ.
        TypeError
            If the factors come from different array libraries.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> A = LowRankMatrix.from_factors(np.ones((3, 1)), np.arange(2.0)[:, None])
        >>> B = LowRankMatrix.from_factors(np.arange(3.0)[:, None], np.ones((2, 1)))
        >>> S = A + B
        >>> S.rank, bool(np.allclose(S.full(), A.full() + B.full()))
        (2, True)
        """
        if not isinstance(other, LowRankMatrix):
            return NotImplemented
        if other.shape != self.shape:
            raise ValueError(f"shapes differ: {self.shape} and {other.shape}")
        try:
            xp = get_namespace(self.U, other.U)
        except TypeError:
            raise TypeError("the two matrices' factors come from different array libraries") from None
        dtype = xp.float32 if self.dtype == other.dtype == xp.float32 else xp.float64
        parts = [[xp.astype(a, dtype) if a.dtype != dtype else a for a in (A.U, A.s, A.V)] for A in (self, other)]
        U, s, V = (xp.concat([p[j] for p in parts], axis=-1) for j in range(3))
        return LowRankMatrix(U, s, V, copy=False)

    def __sub__(self, other) -> "LowRankMatrix":
        if not isinstance(other, LowRankMatrix):
            return NotImplemented
        return self + (-other)

    def inner(self, other: "LowRankMatrix") -> float:
        """Compute the Frobenius inner product with another ``LowRankMatrix`` of the same shape.

        Parameters
        ----------
        other : LowRankMatrix
            A matrix of the same shape (any rank).

        Returns
        -------
        float
            ``trace(self.full().T @ other.full())``, in O((n1 + n2) k k')
            without forming either matrix.

        Raises
        ------
        ValueError
            If ``other`` is not a ``LowRankMatrix`` of the same shape.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> A = LowRankMatrix.from_factors(np.ones((3, 1)), np.arange(2.0)[:, None])
        >>> bool(np.isclose(A.inner(A), A.norm() ** 2))
        True
        """
        if not isinstance(other, LowRankMatrix) or other.shape != self.shape:
            raise ValueError("other must be a LowRankMatrix of the same shape")
        # each array in units of a power of two (exact), as norm() does: the
        # unscaled Gram products of factors near 1e200 and 1e-200 gave
        # inf * 0 = NaN for a matrix of ones, those near 1e-170 underflowed
        # to 0.0
        xp = self._xp
        scaled = [_pow2_normalized(xp, a) for a in (self.U, self.V, other.U, other.V, self.s, other.s)]
        (U, V, U2, V2, s, s2), e = zip(*scaled)
        G = (xp.matrix_transpose(U) @ U2) * (xp.matrix_transpose(V) @ V2)
        return _ldexp(float(s @ (G @ s2)), sum(e))  # +-Inf beyond float64's range

    # --------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike) -> None:
        """Write the factors to a ``.npz`` file (no pickle).

        Parameters
        ----------
        path : str or path-like
            Destination; numpy appends ``.npz`` when the name lacks it.

        Raises
        ------
        OSError
            If the file cannot be written.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> M = LowRankMatrix(np.ones((3, 1)), np.array([2.0]), np.ones((2, 1)))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     M.save(os.path.join(d, "m.npz"))
        ...     N = LowRankMatrix.load(os.path.join(d, "m.npz"))
        >>> bool(np.array_equal(N.full(), M.full()))
        True
        """
        np.savez(
            path,
            format=np.array(_FORMAT_TAG),
            version=np.array(_FORMAT_VERSION),
            U=to_numpy(self.U),
            s=to_numpy(self.s),
            V=to_numpy(self.V),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LowRankMatrix":
        """Read a file written by :meth:`save` (numpy arrays on the host).

        Parameters
        ----------
        path : str or path-like
            A ``.npz`` file written by :meth:`save`. Like :meth:`save`, a
            name without ``.npz`` that does not exist is read with ``.npz``
            appended (where ``save`` wrote it).

        Returns
        -------
        LowRankMatrix
            The stored matrix, numpy factors.

        Raises
        ------
        FileNotFoundError
            If neither ``path`` nor (for a name without ``.npz``)
            ``path + '.npz'`` exists.
        ValueError
            If the file is not a ``LowRankMatrix`` file, is corrupt (its
            version must be a 0-d integer array), or has a newer format
            version.

        Examples
        --------
        See :meth:`save`.
        """
        f = read_npz(path, "LowRankMatrix")
        if "format" not in f or str(f["format"]) != _FORMAT_TAG:
            raise ValueError(
                f"{os.fspath(path)!r} is not a LowRankMatrix file (no '{_FORMAT_TAG}' format tag); "
                "write it with LowRankMatrix.save"
            )
        npz_version(f, repr(os.fspath(path)), "LowRankMatrix", _FORMAT_VERSION)
        missing = {"U", "s", "V"} - set(f)
        if missing:
            raise ValueError(f"{os.fspath(path)!r} is corrupt: missing arrays {sorted(missing)}")
        U, s, V = f["U"], f["s"], f["V"]
        try:
            return cls(U, s, V, copy=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{os.fspath(path)!r} is corrupt: {exc}") from None

    def to_numpy(self) -> "LowRankMatrix":
        """Copy of the matrix with numpy factors on the host.

        Returns
        -------
        LowRankMatrix
            Same values, numpy arrays (copied from the device for cupy).

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.lowrank import LowRankMatrix
        >>> M = LowRankMatrix(np.ones((2, 1)), np.array([1.0]), np.ones((2, 1)))
        >>> type(M.to_numpy().U).__name__
        'ndarray'
        """
        return LowRankMatrix(to_numpy(self.U), to_numpy(self.s), to_numpy(self.V), copy=False)

