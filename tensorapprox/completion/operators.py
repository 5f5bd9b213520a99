"""Linear measurement operators ``A: R^{n1 x n2} -> R^m`` and corruption models.

A measurement operator maps a matrix ``X`` to ``y = A(X)`` with
``y_i = <A_i, X>`` and has an adjoint ``A*(v) = sum_i v_i A_i``. Factored
solvers never need more than the two sampled products

* ``apply_factored(U, V) = A(U V^T)`` and
* ``adjoint_matmul(v, W) = A*(v) @ W`` (and ``A*(v)^T @ W``),

which each operator implements without forming more than it must: the dense
Gaussian operator forms the ``n1 x n2`` matrix (its cost is O(m n1 n2)
anyway), entry sampling works on the observed entries only (O(|Omega| k),
Numba kernels in ``tensorapprox._kernels.sensing``).

Two operators:

* :class:`GaussianSensing` -- ``m`` i.i.d. Gaussian measurement matrices,
  held as an ``m x n^2`` array (packed to ``m x n(n+1)/2`` in the symmetric
  case) or regenerated block by block when that array would be too large;
* :class:`EntrySampling` -- matrix completion as a sensing operator.

:func:`corrupt` adds outliers or dense Gaussian noise to a fraction of the
measurements, for experiments.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._array import check_random_state
from .._validation import check_bool, check_choice, check_int, check_positive_float
from .._kernels.sensing import sampled_product, scatter_matmul
from ..tensor import _scaled_frobenius

__all__ = ["MeasurementOperator", "GaussianSensing", "EntrySampling", "corrupt"]

# Rows of the Gaussian operator are drawn in chunks of this many, each chunk
# from its own seed, so the operator is the same whether it is stored or
# regenerated block by block.
_CHUNK = 512
_DEFAULT_MAX_BYTES = 2**30


def _check_float_array(x, name: str, ndim: int) -> np.ndarray:
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}; convert it with numpy.asarray")
    if x.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {x.dtype}; pass the real part")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {x.shape}")
    return x


class MeasurementOperator:
    """Base class of linear measurement operators ``y_i = <A_i, X>``.

    Subclasses set ``shape`` (the matrix shape ``(n1, n2)``), ``m`` (the
    number of measurements), ``symmetric`` (every ``A_i`` is symmetric) and
    ``dtype``, and implement the private products ``_apply``, ``_adjoint``,
    ``_apply_factored`` and ``_adjoint_matmul``. The public methods validate
    their arguments and call them; they raise ``TypeError`` for arguments
    that are not real numpy arrays and ``ValueError`` for shapes that do not
    match the operator.

    See Also
    --------
    GaussianSensing, EntrySampling : The two operators of the package.

    Notes
    -----
    The base class has no constructor of its own and raises nothing when
    created; the errors listed above are raised by the public methods.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.operators import EntrySampling, MeasurementOperator
    >>> op = EntrySampling(np.array([0, 1]), np.array([1, 0]), (2, 2))
    >>> isinstance(op, MeasurementOperator), op.shape, op.m
    (True, (2, 2), 2)
    """

    shape: tuple[int, int]
    m: int
    symmetric: bool
    dtype: np.dtype

    # ------------------------------------------------------------- public
    def apply(self, X) -> np.ndarray:
        """``A(X)``: the ``m`` measurements ``<A_i, X>`` of a matrix ``X``.

        Parameters
        ----------
        X : ndarray, shape ``self.shape``
            The matrix to measure; not modified.

        Returns
        -------
        ndarray, shape (m,)
            The measurements, in the operator's dtype.

        Raises
        ------
        TypeError
            If an argument is not a real numpy array.
        ValueError
            If a shape does not match the operator.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.operators import EntrySampling
        >>> op = EntrySampling(np.array([0, 1]), np.array([1, 1]), (2, 2))
        >>> op.apply(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
        [2.0, 4.0]
        """
        X = _check_float_array(X, "X", 2)
        if tuple(X.shape) != self.shape:
            raise ValueError(f"X has shape {X.shape} but the operator acts on {self.shape} matrices")
        return self._apply(np.asarray(X, dtype=self.dtype))

    def adjoint(self, v) -> np.ndarray:
        """``A*(v) = sum_i v_i A_i``, a dense matrix of shape ``self.shape``.

        Parameters
        ----------
        v : ndarray, shape (m,)
            One weight per measurement.

        Returns
        -------
        ndarray, shape ``self.shape``
            ``sum_i v_i A_i``, so that ``<A(X), v> == <X, A*(v)>``.

        Raises
        ------
        TypeError
            If an argument is not a real numpy array.
        ValueError
            If a shape does not match the operator.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.operators import EntrySampling
        >>> op = EntrySampling(np.array([0, 1]), np.array([1, 1]), (2, 2))
        >>> op.adjoint(np.array([5.0, 7.0]))
        array([[0., 5.],
               [0., 7.]])
        """
        v = self._check_v(v)
        return self._adjoint(v)

    def apply_factored(self, U, V) -> np.ndarray:
        """``A(U @ V.T)`` without forming more than the operator needs.

        Parameters
        ----------
        U : ndarray, shape (n1, k)
            Left factor.
        V : ndarray, shape (n2, k)
            Right factor.

        Returns
        -------
        ndarray, shape (m,)
            Equal to ``apply(U @ V.T)``.

        Raises
        ------
        TypeError
            If an argument is not a real numpy array.
        ValueError
            If a shape does not match the operator.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.operators import EntrySampling
        >>> op = EntrySampling(np.array([0, 1]), np.array([1, 0]), (2, 2))
        >>> U, V = np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]])
        >>> bool(np.allclose(op.apply_factored(U, V), op.apply(U @ V.T)))
        True
        """
        U = _check_float_array(U, "U", 2)
        V = _check_float_array(V, "V", 2)
        if U.shape[0] != self.shape[0] or V.shape[0] != self.shape[1] or U.shape[1] != V.shape[1]:
            raise ValueError(
                f"U and V must have shapes ({self.shape[0]}, k) and ({self.shape[1]}, k), "
                f"got {U.shape} and {V.shape}"
            )
        return self._apply_factored(np.asarray(U, dtype=self.dtype), np.asarray(V, dtype=self.dtype))

    def adjoint_matmul(self, v, W, *, transpose: bool = False) -> np.ndarray:
        """``A*(v) @ W`` (or ``A*(v).T @ W`` with ``transpose=True``).

        Parameters
        ----------
        v : ndarray, shape (m,)
            One weight per measurement.
        W : ndarray, shape (n2, k) (``(n1, k)`` with ``transpose=True``)
            The matrix multiplied from the right.
        transpose : bool, default False
            Use ``A*(v).T`` instead of ``A*(v)``.

        Returns
        -------
        ndarray, shape (n1, k) (``(n2, k)`` with ``transpose=True``)
            The product, without forming ``A*(v)`` where the operator allows.

        Raises
        ------
        TypeError
            If an argument is not a real numpy array, or ``transpose`` is
            not a bool.
        ValueError
            If a shape does not match the operator.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.operators import EntrySampling
        >>> op = EntrySampling(np.array([0, 1]), np.array([1, 0]), (2, 2))
        >>> v, W = np.array([1.0, 2.0]), np.eye(2)
        >>> bool(np.allclose(op.adjoint_matmul(v, W), op.adjoint(v) @ W))
        True
        """
        transpose = check_bool(transpose, name="transpose")  # transpose="no" gave the transposed product
        v = self._check_v(v)
        W = _check_float_array(W, "W", 2)
        need = self.shape[0] if transpose else self.shape[1]
        if W.shape[0] != need:
            raise ValueError(f"W must have {need} rows, got shape {W.shape}")
        return self._adjoint_matmul(v, np.asarray(W, dtype=self.dtype), transpose)

    def to_dense(self) -> np.ndarray:
        """The explicit ``m x (n1 * n2)`` matrix whose row ``i`` is ``A_i`` raveled (C order).

        Meant for tests and small problems: ``apply(X) == to_dense() @ X.ravel()``.

        Returns
        -------
        ndarray, shape (m, n1 * n2)
            The measurement matrices, one per row.

        Notes
        -----
        Raises nothing of its own; the memory is ``m n1 n2`` entries.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.operators import EntrySampling, MeasurementOperator
        >>> op = EntrySampling(np.array([0, 1]), np.array([1, 0]), (2, 2))
        >>> MeasurementOperator.to_dense(op)
        array([[0., 1., 0., 0.],
               [0., 0., 1., 0.]])
        """
        eye = np.eye(self.m, dtype=self.dtype)
        return np.stack([self._adjoint(eye[i]).ravel() for i in range(self.m)])

    # ---------------------------------------------------------- internals
    def _check_v(self, v) -> np.ndarray:
        v = _check_float_array(v, "v", 1)
        if v.shape[0] != self.m:
            raise ValueError(f"v has length {v.shape[0]} but the operator has m = {self.m} measurements")
        return np.asarray(v, dtype=self.dtype)

    def _apply(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint(self, v):  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_factored(self, U, V):
        return self._apply(U @ V.T)

    def _adjoint_matmul(self, v, W, transpose: bool):
        G = self._adjoint(v)
        return (G.T if transpose else G) @ W

    def _adjoint_sym_matmul(self, v, W):
        """``(A*(v) + A*(v)^T) @ W`` for square operators (the symmetric gradient)."""
        if self.symmetric:
            return 2.0 * self._adjoint_matmul(v, W, False)
        return self._adjoint_matmul(v, W, False) + self._adjoint_matmul(v, W, True)


class GaussianSensing(MeasurementOperator):
    """Dense Gaussian measurement operator ``y_i = <A_i, X>``.

    Parameters
    ----------
    n : int or tuple of int
        Matrix size: ``n`` for ``n x n`` matrices, or ``(n1, n2)`` (only with
        ``symmetric=False``).
    m : int
        Number of measurements.
    random_state : None, int or numpy.random.Generator
        Seeds the measurement matrices.
    symmetric : bool, default True
        ``True``: ``A_i = (G_i + G_i^T) / 2`` with ``G_i`` of i.i.d. standard
        normal entries. On a symmetric ``X`` this measures exactly what
        ``G_i`` does (``<A_i, X> = <G_i, X>``, variance ``||X||_F^2``) at half
        the storage and cost: only the packed upper triangle is held.
        ``False``: ``A_i = G_i`` of shape ``(n1, n2)``.
    dtype : numpy dtype, default float64
        Precision of the stored matrices and of the products.
    store : bool, optional
        Hold the ``m x n^2`` array (``True``) or regenerate it in blocks of
        rows at every product (``False``, bounded memory, slower). Default:
        store when it takes at most ``max_bytes``.
    max_bytes : int, default 2**30
        Memory bound that decides the default of ``store``.

    Attributes
    ----------
    shape : tuple of int
        ``(n1, n2)``.
    m : int
        Number of measurements.
    symmetric : bool
        Whether every ``A_i`` is symmetric.
    stored : bool
        Whether the matrices are held in memory.
    nbytes : int
        Bytes held by the stored matrices (0 when regenerated).

    Raises
    ------
    TypeError
        If ``n``, ``m`` or ``symmetric`` has the wrong type, or ``dtype`` is
        not float32 or float64.
    ValueError
        If a size is not positive or ``n`` is a non-square pair with
        ``symmetric=True``.

    Notes
    -----
    ``apply`` costs one ``(m x p) @ (p,)`` product and ``adjoint`` one
    ``(p,) @ (m x p)`` product with ``p = n(n+1)/2`` (symmetric) or
    ``p = n1 n2``. The rows are drawn in chunks of 512, each from its own seed
    derived from ``random_state``, so a stored and a regenerated operator
    with the same seed are the same operator.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.operators import GaussianSensing
    >>> op = GaussianSensing(4, 30, random_state=0)
    >>> X = np.arange(16.0).reshape(4, 4); X = X + X.T
    >>> v = np.random.default_rng(1).standard_normal(30)
    >>> bool(np.isclose(op.apply(X) @ v, np.sum(X * op.adjoint(v))))
    True
    >>> bool(np.allclose(op.to_dense() @ X.ravel(), op.apply(X)))
    True
    """

    def __init__(self, n, m: int, random_state=None, symmetric: bool = True, *, dtype=np.float64,
                 store: bool | None = None, max_bytes: int = _DEFAULT_MAX_BYTES):
        symmetric = check_bool(symmetric, name="symmetric")
        if isinstance(n, (tuple, list)):
            if len(n) != 2:
                raise ValueError(f"n must be an int or a pair (n1, n2), got {n!r}")
            n1 = check_int(n[0], name="n[0]", minimum=1)
            n2 = check_int(n[1], name="n[1]", minimum=1)
            if symmetric and n1 != n2:
                raise ValueError(f"a symmetric operator needs square matrices, got n = {(n1, n2)}; "
                                 "pass symmetric=False or a single int")
        else:
            n1 = n2 = check_int(n, name="n", minimum=1)
        self.m = check_int(m, name="m", minimum=1)
        self.shape = (n1, n2)
        self.symmetric = bool(symmetric)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        rng = check_random_state(random_state)
        self._seed = int(rng.integers(0, 2**63 - 1))
        if self.symmetric:
            iu = np.triu_indices(n1)
            self._iu = iu
            self._flat = iu[0] * n1 + iu[1]
            offdiag = iu[0] != iu[1]
            self._offdiag = offdiag
            # coefficient of X[k, l] (k < l) in <A_i, X> for symmetric X is
            # 2 A_i[k, l] ~ N(0, 2); the diagonal one is A_i[k, k] ~ N(0, 1).
            self._col_scale = np.where(offdiag, math.sqrt(2.0), 1.0)
            self._p = iu[0].shape[0]
        else:
            self._p = n1 * n2
        max_bytes = check_int(max_bytes, name="max_bytes", minimum=0)
        need = self.m * self._p * self.dtype.itemsize
        if store is None:
            store = need <= max_bytes
        elif not isinstance(store, (bool, np.bool_)):
            raise TypeError(f"store must be None, True or False, got {type(store).__name__}")
        self.stored = bool(store)
        self._coef = None
        if self.stored:
            self._coef = np.empty((self.m, self._p), dtype=self.dtype)
            for k, (lo, hi) in enumerate(self._chunks()):
                self._coef[lo:hi] = self._draw(k, hi - lo)

    # ----------------------------------------------------------- helpers
    def _chunks(self):
        for lo in range(0, self.m, _CHUNK):
            yield lo, min(lo + _CHUNK, self.m)

    def _draw(self, k: int, rows: int) -> np.ndarray:
        block = np.random.default_rng([self._seed, k]).standard_normal((rows, self._p))
        if self.symmetric:
            block *= self._col_scale
        return block.astype(self.dtype, copy=False)

    def _blocks(self):
        if self.stored:
            yield 0, self.m, self._coef
            return
        for k, (lo, hi) in enumerate(self._chunks()):
            yield lo, hi, self._draw(k, hi - lo)

    def _pack(self, X):
        if self.symmetric:
            # halves first: X + X.T overflowed for entries near the largest
            # float (1.5e308 on the diagonal gave -inf measurements)
            return (0.5 * X + 0.5 * X.T).ravel()[self._flat]
        return X.ravel()

    def _unpack(self, c):
        if not self.symmetric:
            return c.reshape(self.shape)
        n = self.shape[0]
        c = np.where(self._offdiag, 0.5 * c, c)
        G = np.zeros((n, n), dtype=c.dtype)
        G[self._iu] = c
        G.T[self._iu] = c
        return G

    # -------------------------------------------------------- products
    @property
    def nbytes(self) -> int:
        """Bytes held by the stored coefficients (0 when blocks are regenerated).

        Returns
        -------
        int
        """
        return 0 if self._coef is None else int(self._coef.nbytes)

    def _apply(self, X):
        w = self._pack(X).astype(self.dtype, copy=False)
        if self.stored:
            return self._coef @ w
        out = np.empty(self.m, dtype=self.dtype)
        for lo, hi, C in self._blocks():
            out[lo:hi] = C @ w
        return out

    def _adjoint(self, v):
        if self.stored:
            c = v @ self._coef
        else:
            # in the dtype the stored product gives (float64 for float64 v on
            # float32 coefficients): a float32 sum of float64 blocks made a
            # regenerated operator differ from the stored one with the same
            # seed (3e-6, and another solver run)
            c = np.zeros(self._p, dtype=np.result_type(v.dtype, self.dtype))
            for lo, hi, C in self._blocks():
                c += v[lo:hi] @ C
        return self._unpack(c)

    def to_dense(self) -> np.ndarray:
        """The explicit ``m x (n1 * n2)`` matrix, row ``i`` = ``A_i`` raveled (C order).

        Returns
        -------
        ndarray, shape (m, n1 * n2)
            The measurement matrices, one per row (regenerated blocks when
            the operator does not store them).

        Notes
        -----
        Raises nothing of its own; the memory is ``m n1 n2`` entries.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.operators import GaussianSensing
        >>> op = GaussianSensing(4, 30, random_state=0)
        >>> D = op.to_dense()
        >>> D.shape
        (30, 16)
        >>> X = np.arange(16.0).reshape(4, 4); X = X + X.T
        >>> bool(np.allclose(D @ X.ravel(), op.apply(X)))
        True
        """
        n1, n2 = self.shape
        out = np.empty((self.m, n1 * n2), dtype=self.dtype)
        for lo, hi, C in self._blocks():
            if self.symmetric:
                for i in range(lo, hi):
                    out[i] = self._unpack(C[i - lo]).ravel()
            else:
                out[lo:hi] = C
        return out

    def __repr__(self) -> str:
        return (f"GaussianSensing(shape={self.shape}, m={self.m}, symmetric={self.symmetric}, "
                f"stored={self.stored}, dtype={self.dtype})")


def _check_index(a, name: str, size: int, axis: str) -> np.ndarray:
    if isinstance(a, (list, tuple)):
        a = np.asarray(a)
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of ints, got {type(a).__name__}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.shape[0] == 0:
        # an empty list is float64 to numpy: no index, whatever the dtype (the
        # caller then says to sample at least one entry)
        return np.zeros(0, dtype=np.intp)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}; cast with .astype(int)")
    # a read-only copy, checked after copying: ascontiguousarray returned the
    # caller's own intp array, so editing it later changed the operator past
    # the range check and the Numba kernels read and wrote out of bounds
    out = np.array(a, dtype=np.intp, copy=True, order="C")
    if int(out.min()) < 0 or int(out.max()) >= size:
        raise ValueError(f"{name} holds indices outside [0, {size}) (the number of {axis}); "
                         "every index must be in range")
    out.setflags(write=False)
    return out


class EntrySampling(MeasurementOperator):
    """Matrix completion as a sensing operator: ``y_t = X[rows[t], cols[t]]``.

    Parameters
    ----------
    rows, cols : ndarray of int, shape (m,)
        0-based indices of the sampled entries (a repeated pair is measured
        twice).
    shape : tuple of int
        ``(n1, n2)``.

    Attributes
    ----------
    shape : tuple of int
    m : int
        Number of sampled entries.
    rows, cols : ndarray of intp
        The validated indices: read-only copies of the given ones, so that
        editing those later does not change the operator.
    symmetric : bool
        Always ``False`` (``A_t = e_i e_j^T``).

    Raises
    ------
    TypeError
        If ``shape`` is not a pair or the indices are not integers.
    ValueError
        If an index is out of range, ``rows`` and ``cols`` differ in length,
        or no entry is sampled.

    Notes
    -----
    ``apply_factored`` and ``adjoint_matmul`` cost O(|Omega| k) through the
    Numba kernels of ``tensorapprox._kernels.sensing`` and never form an
    ``n1 x n2`` array; ``apply`` and ``adjoint`` are the dense-matrix forms
    (O(n1 n2) memory), for tests and small problems.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.operators import EntrySampling
    >>> op = EntrySampling(np.array([0, 1, 2]), np.array([2, 0, 1]), (3, 3))
    >>> op.apply(np.arange(9.0).reshape(3, 3)).tolist()
    [2.0, 3.0, 7.0]
    >>> U, V = np.ones((3, 1)), np.arange(3.0)[:, None]
    >>> op.apply_factored(U, V).tolist()
    [2.0, 0.0, 1.0]
    """

    symmetric = False

    def __init__(self, rows, cols, shape):
        if not isinstance(shape, (tuple, list)) or len(shape) != 2:
            raise TypeError(f"shape must be a pair (n1, n2), got {shape!r}")
        n1 = check_int(shape[0], name="shape[0]", minimum=1)
        n2 = check_int(shape[1], name="shape[1]", minimum=1)
        self.shape = (n1, n2)
        self.rows = _check_index(rows, "rows", n1, "rows")
        self.cols = _check_index(cols, "cols", n2, "columns")
        if self.rows.shape[0] != self.cols.shape[0]:
            raise ValueError(f"rows and cols must have the same length, got {self.rows.shape[0]} "
                             f"and {self.cols.shape[0]}")
        if self.rows.shape[0] == 0:
            raise ValueError("rows and cols are empty; sample at least one entry")
        self.m = int(self.rows.shape[0])
        self.dtype = np.dtype(np.float64)

    def _apply(self, X):
        return X[self.rows, self.cols]

    def _adjoint(self, v):
        G = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(G, (self.rows, self.cols), v)
        return G

    def _apply_factored(self, U, V):
        return sampled_product(U, V, self.rows, self.cols)

    def _adjoint_matmul(self, v, W, transpose: bool):
        if transpose:
            return scatter_matmul(v, self.cols, self.rows, W, self.shape[1])
        return scatter_matmul(v, self.rows, self.cols, W, self.shape[0])

    def to_dense(self) -> np.ndarray:
        """The explicit ``m x (n1 * n2)`` 0/1 matrix (for tests and small problems).

        Returns
        -------
        ndarray, shape (m, n1 * n2)
            Row ``t`` has a single 1 at ``rows[t] * n2 + cols[t]``.

        Notes
        -----
        Raises nothing of its own; the memory is ``m n1 n2`` entries.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.operators import EntrySampling
        >>> op = EntrySampling(np.array([0, 1]), np.array([1, 0]), (2, 2))
        >>> op.to_dense()
        array([[0., 1., 0., 0.],
               [0., 0., 1., 0.]])
        """
        out = np.zeros((self.m, self.shape[0] * self.shape[1]), dtype=self.dtype)
        out[np.arange(self.m), self.rows * self.shape[1] + self.cols] = 1.0
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays ``rows`` and ``cols``.

        Returns
        -------
        int
        """
        return int(self.rows.nbytes + self.cols.nbytes)

    def __repr__(self) -> str:
        return f"EntrySampling(shape={self.shape}, m={self.m})"


_KINDS = ("outlier", "gaussian")
_DEFAULT_SCALE = {"outlier": 100.0, "gaussian": 1.0}


def corrupt(y, fraction: float, kind: str = "outlier", scale: float | None = None, random_state=None) -> np.ndarray:
    """Add noise to a random fraction of the measurements (for experiments).

    Parameters
    ----------
    y : ndarray, shape (m,)
        Clean measurements; not modified.
    fraction : float in [0, 1]
        Fraction of the measurements that receive noise:
        ``round(fraction * m)`` of them, drawn without replacement.
    kind : {'outlier', 'gaussian'}, default 'outlier'
        ``'outlier'``: gross errors ``s_i ~ N(0, scale^2)`` with a large
        default scale (100 times the root-mean-square of ``y``), the outlier
        model of Ma & Fattahi. A corrupted value beyond the largest finite
        number of ``y``'s dtype is clipped to it (with its sign), so the
        output is always finite (float32 data near ``1e37`` has outliers
        near ``1e39`` otherwise). ``'gaussian'``: dense noise ``N(0, scale^2)``
        with default scale the root-mean-square of ``y``, their Gaussian noise
        model (typically on a large fraction such as 0.5 or 0.9).
    scale : float, optional
        Standard deviation of the added noise (absolute units of ``y``).
    random_state : None, int or numpy.random.Generator
        Seeds the choice of the corrupted measurements and the noise.

    Returns
    -------
    ndarray, shape (m,)
        A corrupted copy of ``y`` (float32 for float32 ``y``, float64
        otherwise), finite; ``np.flatnonzero(out != y)`` lists the
        corrupted measurements, except any whose noise falls below the
        precision of ``y`` there (adding it leaves the value unchanged).

    Raises
    ------
    ValueError
        If ``y`` holds NaN or Inf, ``fraction`` is outside [0, 1], ``kind`` is
        unknown or ``scale`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.operators import corrupt
    >>> y = np.ones(10)
    >>> yc = corrupt(y, 0.3, scale=100.0, random_state=0)
    >>> int(np.count_nonzero(yc != y))
    3
    """
    y = _check_float_array(y, "y", 1)
    if y.shape[0] == 0:
        raise ValueError("y is empty")
    y = np.asarray(y, dtype=np.float64 if y.dtype != np.float32 else np.float32)
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or Inf values; corrupt only finite measurements")
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"fraction must be a real number in [0, 1], got {type(fraction).__name__}")
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    kind = check_choice(kind, name="kind", choices=_KINDS)
    if scale is None:
        # in units of the largest magnitude: the squares underflowed for y near
        # 1e-200 (rms 0, so a scale of 1, 10^199 times too large) and
        # overflowed near 1e160 (an inf scale, inf in the output)
        rms = _scaled_frobenius(np, y, 1.0, 0) / math.sqrt(y.size) if y.size else 0.0
        scale = _DEFAULT_SCALE[kind] * (rms if rms > 0 else 1.0)
    else:
        scale = check_positive_float(scale, name="scale")
    rng = check_random_state(random_state)
    m = y.shape[0]
    k = int(round(fraction * m))
    out = y.copy()
    if k:
        idx = rng.choice(m, size=k, replace=False)
        g = rng.standard_normal(k)
        with np.errstate(over="ignore", invalid="ignore"):
            # g == 0 keeps an infinite scale (100 rms of data near 1e307)
            # from making NaN
            noise = np.where(g == 0.0, 0.0, scale * g)
            noisy = out[idx] + noise.astype(out.dtype)
            bad = ~np.isfinite(noisy)
            if np.any(bad):
                # beyond the dtype's range (float32 data near 1e37 with the
                # default scale gave inf): the float64 sum, clipped to the
                # largest finite value of the dtype
                big = float(np.finfo(out.dtype).max)
                exact = np.clip(out[idx][bad].astype(np.float64) + noise[bad], -big, big)
                noisy[bad] = exact.astype(out.dtype)
        out[idx] = noisy
    return out
