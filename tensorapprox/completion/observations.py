"""Observed entries of a partially known matrix, as validated COO triplets.

``check_observations`` validates ``(rows, cols, values, shape)`` once --
equal lengths, integer indices in range, finite values, duplicates detected
-- and returns an immutable :class:`Observations`. ``train_test_split`` and
``kfold_splits`` split it reproducibly.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp

from .._array import check_random_state, to_numpy
from .._validation import check_choice, check_int, check_size_pair

__all__ = ["Observations", "check_observations", "train_test_split", "kfold_splits"]


@dataclass(frozen=True, eq=False)
class Observations:
    """Observed entries ``X[rows[t], cols[t]] = values[t]`` of an ``n1 x n2`` matrix.

    Build it with :func:`check_observations`, which validates the triplets;
    the constructor trusts its inputs (it raises nothing).

    Parameters
    ----------
    rows, cols : ndarray of int64, shape (m,)
        Row and column indices.
    values : ndarray of float, shape (m,)
        Observed values.
    shape : tuple of int
        ``(n1, n2)``.

    Attributes
    ----------
    rows, cols : ndarray of int64, shape (m,)
        Row and column indices, unique pairs, in range.
    values : ndarray of float, shape (m,)
        Finite observed values (float64, or float32 when given float32).
    shape : tuple of int
        ``(n1, n2)``.

    Notes
    -----
    The arrays of an ``Observations`` from :func:`check_observations` or
    :meth:`subset` are read-only copies (writing an index out of range or a
    NaN into them would void the validation).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.observations import check_observations
    >>> obs = check_observations([0, 1, 2], [1, 0, 1], [1.0, 2.0, 3.0], (3, 2))
    >>> obs
    Observations(shape=(3, 2), nnz=3, dtype=float64)
    >>> obs.to_csr().toarray()
    array([[0., 1.],
           [2., 0.],
           [0., 3.]])
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        """Number of observed entries.

        Returns
        -------
        int
        """
        return int(self.rows.shape[0])

    @property
    def density(self) -> float:
        """Fraction of the matrix that is observed.

        Returns
        -------
        float
            ``nnz / (n1 * n2)``.
        """
        return self.nnz / (self.shape[0] * self.shape[1])

    def to_csr(self) -> sp.csr_matrix:
        """The observations as a scipy CSR matrix (unobserved entries are zeros).

        Returns
        -------
        scipy.sparse.csr_matrix
            Shape ``self.shape``, one stored entry per observation.

        Notes
        -----
        Raises nothing of its own (the triplets were validated by
        :func:`check_observations`).

        Examples
        --------
        >>> from tensorapprox.completion.observations import check_observations
        >>> obs = check_observations([0, 1], [1, 0], [5.0, 6.0], (2, 3))
        >>> A = obs.to_csr()
        >>> A.shape, A.nnz
        ((2, 3), 2)
        >>> A.toarray()
        array([[0., 5., 0.],
               [6., 0., 0.]])
        """
        return sp.csr_matrix((self.values, (self.rows, self.cols)), shape=self.shape)

    def subset(self, index) -> "Observations":
        """Select the observations at positions ``index`` (int array or boolean mask).

        Parameters
        ----------
        index : array of int or bool
            Positions in ``rows``/``cols``/``values`` to keep.

        Returns
        -------
        Observations
            The selected entries, same ``shape``.

        Raises
        ------
        IndexError
            If an integer position is out of range or a boolean mask has the
            wrong length (raised by numpy indexing).

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion.observations import check_observations
        >>> obs = check_observations([0, 1, 2], [1, 0, 1], [1.0, 2.0, 3.0], (3, 2))
        >>> part = obs.subset(np.array([0, 2]))
        >>> part.rows.tolist(), part.values.tolist(), part.shape
        ([0, 2], [1.0, 3.0], (3, 2))
        >>> len(obs.subset(obs.values > 1.5))
        2
        """
        return Observations(_readonly(self.rows[index]), _readonly(self.cols[index]), _readonly(self.values[index]),
                            self.shape)

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        return f"Observations(shape={self.shape}, nnz={self.nnz}, dtype={self.values.dtype})"


def _readonly(a: np.ndarray) -> np.ndarray:
    """``a`` marked read-only (a view when ``a`` is writable: the flag of the caller's array stays)."""
    if a.flags.writeable:
        a = a.view()
        a.setflags(write=False)
    return a


def _pair_order(major: np.ndarray, minor: np.ndarray, n_major: int, n_minor: int) -> np.ndarray:
    """Stable permutation sorting pairs by ``major`` then ``minor`` (indices in ``[0, n_major) x [0, n_minor)``).

    The int64 key ``major * n_minor + minor`` when it cannot overflow (one
    sort), else :func:`numpy.lexsort` on both arrays: for shapes with
    ``n1 * n2 >= 2**63`` the key wrapped around, and distinct pairs compared
    equal or out of order.
    """
    if n_major * n_minor <= np.iinfo(np.int64).max:
        return np.argsort(major * n_minor + minor, kind="stable")
    return np.lexsort((minor, major))


def _as_1d(x, name: str) -> np.ndarray:
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a one-dimensional array, got {type(x).__name__}")
    try:
        a = to_numpy(x) if hasattr(x, "shape") else np.asarray(x)
    except Exception:
        raise TypeError(f"{name} must be a one-dimensional array, got {type(x).__name__}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}; flatten it with .ravel()")
    return a


def _check_shape(shape) -> tuple[int, int]:
    return check_size_pair(shape, name="shape")


def _check_index(a: np.ndarray, name: str, size: int | None, axis: str) -> np.ndarray:
    """``a`` as int64 indices in ``[0, size)`` (the range unchecked for ``size=None``), or a clear error."""
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        if np.issubdtype(a.dtype, np.floating) and a.size and np.all(a == np.round(a)):
            raise TypeError(f"{name} must hold integers, got dtype {a.dtype}; cast with .astype(int)")
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.size and np.issubdtype(a.dtype, np.unsignedinteger):
        # checked before the cast: uint64 indices from 2^63 on wrapped to
        # negative int64 and were reported as a negative index
        hi = int(a.max())
        if hi > np.iinfo(np.int64).max:
            bound = f"shape[{0 if axis == 'row' else 1}] = {size}" if size is not None else "2**63 - 1"
            raise ValueError(f"{name} holds index {hi} >= {bound}; {axis} indices must be in "
                             f"[0, {size if size is not None else 'n'})")
    a = a.astype(np.int64, copy=False)
    if a.size and size is not None:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0:
            raise ValueError(f"{name} holds a negative index ({lo}); {axis} indices must be in [0, {size})")
        if hi >= size:
            raise ValueError(
                f"{name} holds index {hi} >= shape[{0 if axis == 'row' else 1}] = {size}; "
                f"{axis} indices must be in [0, {size}) (0-based; subtract 1 from 1-based ids)"
            )
    return a


def check_observations(rows, cols, values, shape, *, duplicates: str = "error") -> Observations:
    """Validate COO triplets of observed entries.

    Parameters
    ----------
    rows, cols : array_like of int, shape (m,)
        0-based row and column indices of the observed entries.
    values : array_like of float, shape (m,)
        Observed values; must be finite.
    shape : tuple of int
        ``(n1, n2)``, the size of the full matrix.
    duplicates : {'error', 'mean'}, default 'error'
        What to do with repeated ``(row, col)`` pairs: raise, or keep one
        entry holding their mean.

    Returns
    -------
    Observations
        Read-only copies of the inputs (the caller's arrays are never
        modified), sorted by row then column.

    Raises
    ------
    TypeError
        If the indices are not integers or ``values`` is not real.
    ValueError
        If the lengths differ, the input is empty, an index is out of range,
        a value is NaN or Inf, or a pair repeats with ``duplicates='error'``.

    Examples
    --------
    >>> from tensorapprox.completion.observations import check_observations
    >>> obs = check_observations([0, 1, 1], [2, 0, 2], [1.0, 2.0, 3.0], (2, 3))
    >>> obs.nnz, obs.shape
    (3, (2, 3))
    >>> check_observations([0, 0], [1, 1], [1.0, 3.0], (1, 2), duplicates="mean").values.tolist()
    [2.0]
    """
    check_choice(duplicates, name="duplicates", choices=("error", "mean"))
    return _validate(rows, cols, values, shape, duplicates, "")


def _check_validation(rows, cols, values, shape) -> Observations:
    """:func:`check_observations` of a ``validation=`` triple (duplicates averaged); its errors name it."""
    return _validate(rows, cols, values, shape, "mean", "validation ")


def _validate(rows, cols, values, shape, duplicates, what):
    """:func:`check_observations`, the messages naming the arrays ``what + 'rows'`` and so on."""
    n1, n2 = _check_shape(shape)
    rn, cn, vn = (what + name for name in ("rows", "cols", "values"))
    rows = _as_1d(rows, rn)
    cols = _as_1d(cols, cn)
    values = _as_1d(values, vn)
    if not (rows.shape[0] == cols.shape[0] == values.shape[0]):
        raise ValueError(
            f"{rn}, {cn} and {vn} must have the same length, got "
            f"{rows.shape[0]}, {cols.shape[0]} and {values.shape[0]}"
        )
    if rows.shape[0] == 0:
        raise ValueError(f"no {what}observations: {rn}, {cn} and {vn} are empty; give at least one observed entry")
    rows = _check_index(rows, rn, n1, "row")
    cols = _check_index(cols, cn, n2, "column")
    if np.iscomplexobj(values):
        raise TypeError(f"{vn} must be real; complex values are not supported")
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"{vn} must hold real numbers, got dtype {values.dtype}")
    dtype = np.float32 if values.dtype == np.float32 else np.float64
    values = values.astype(dtype, copy=True)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{vn} contains {int(bad.sum())} NaN or Inf entries (first at position {int(np.argmax(bad))}); "
            "drop those observations instead of encoding them as missing"
        )
    order = _pair_order(rows, cols, n1, n2)
    # fancy indexing copies: the caller's index arrays are never stored
    rows, cols, values = rows[order], cols[order], values[order]
    dup = (rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])
    if dup.any():
        if duplicates == "error":
            t = int(np.argmax(dup))
            raise ValueError(
                f"{int(dup.sum())} duplicate (row, col) pairs in {rn} and {cn}, e.g. "
                f"({int(rows[t])}, {int(cols[t])}); remove them or pass duplicates='mean' to average them"
                if what else
                f"{int(dup.sum())} duplicate (row, col) pairs, e.g. ({int(rows[t])}, {int(cols[t])}); "
                "remove them or pass duplicates='mean' to average them"
            )
        first = np.concatenate(([True], ~dup))
        starts = np.flatnonzero(first)
        group = np.cumsum(first) - 1
        # Each group summed in units of the power of two at or below its own
        # largest magnitude (exact scalings, every term under 2 in size): no
        # overflow for values near 1e308, and a group is never divided by
        # another group's size (over the largest value of all the data,
        # 1e-200 next to 1e200 underflowed to 0)
        w = values.astype(np.float64)
        unit = np.ldexp(1.0, np.frexp(np.maximum.reduceat(np.abs(w), starts))[1] - 1)
        sums = np.bincount(group, weights=w / unit[group])
        counts = np.bincount(group)
        rows, cols = rows[first], cols[first]
        values = (sums / counts * unit).astype(dtype)
    return Observations(_readonly(rows), _readonly(cols), _readonly(values), (n1, n2))


def _check_obs_arg(obs) -> Observations:
    if not isinstance(obs, Observations):
        raise TypeError(
            f"obs must be an Observations (build it with check_observations), got {type(obs).__name__}"
        )
    return obs


def train_test_split(obs: Observations, test_size: float = 0.2, *, random_state=None) -> tuple[Observations, Observations]:
    """Split observations at random into a training and a test set.

    Parameters
    ----------
    obs : Observations
        From :func:`check_observations`.
    test_size : float, default 0.2
        Fraction of the entries in the test set, in (0, 1).
    random_state : None, int or numpy.random.Generator
        Seed; the same seed gives the same split.

    Returns
    -------
    train : Observations
        The remaining entries, in their original order.
    test : Observations
        ``round(test_size * nnz)`` entries drawn at random.

    Raises
    ------
    TypeError
        If ``obs`` is not an :class:`Observations`.
    ValueError
        If ``test_size`` is not in (0, 1) or leaves one of the sets empty.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.observations import check_observations, train_test_split
    >>> obs = check_observations(np.arange(10) % 5, np.arange(10) // 5, np.ones(10), (5, 2))
    >>> train, test = train_test_split(obs, 0.2, random_state=0)
    >>> train.nnz, test.nnz
    (8, 2)
    """
    obs = _check_obs_arg(obs)
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not (0.0 < float(test_size) < 1.0):
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    rng = check_random_state(random_state)
    n_test = int(round(float(test_size) * obs.nnz))
    if n_test == 0 or n_test == obs.nnz:
        raise ValueError(f"test_size={test_size} leaves an empty train or test set for {obs.nnz} observations")
    perm = rng.permutation(obs.nnz)
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return obs.subset(train_idx), obs.subset(test_idx)


def kfold_splits(obs: Observations, n_splits: int = 5, *, random_state=None) -> Iterator[tuple[Observations, Observations]]:
    """Yield ``(train, test)`` for a random ``n_splits``-fold partition of the entries.

    Every entry is in exactly one test fold.

    Parameters
    ----------
    obs : Observations
        From :func:`check_observations`.
    n_splits : int, default 5
        Number of folds, ``2 <= n_splits <= obs.nnz``.
    random_state : None, int or numpy.random.Generator
        Seed of the partition.

    Yields
    ------
    train, test : Observations
        The entries outside and inside fold ``f``, for ``f = 0, ..., n_splits - 1``.

    Raises
    ------
    TypeError
        If ``obs`` is not an :class:`Observations`.
    ValueError
        If ``n_splits`` is out of range (raised on the first ``next``).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion.observations import check_observations, kfold_splits
    >>> obs = check_observations(np.arange(10), np.zeros(10, int), np.ones(10), (10, 1))
    >>> [test.nnz for _, test in kfold_splits(obs, 5, random_state=0)]
    [2, 2, 2, 2, 2]
    """
    obs = _check_obs_arg(obs)
    n_splits = check_int(n_splits, name="n_splits", minimum=2, maximum=obs.nnz)
    rng = check_random_state(random_state)
    fold = np.empty(obs.nnz, dtype=np.int64)
    fold[rng.permutation(obs.nnz)] = np.arange(obs.nnz) % n_splits
    for f in range(n_splits):
        yield obs.subset(fold != f), obs.subset(fold == f)
