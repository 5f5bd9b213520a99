"""Framework-free factorizations of network weights.

Every function takes plain arrays (numpy, cupy or any array-API array) and
returns a small frozen result object holding the factors on the input's
device. Weights follow the convention of a linear layer ``y = W x``: a dense
weight ``W`` has shape ``(out_features, in_features)`` and a convolution kernel
``K`` has shape ``(out_channels, in_channels, kh, kw)``. The Gram matrix of a
layer's inputs is ``gram = X^T X`` for the inputs stacked as rows of ``X``
(shape ``(in_features, in_features)``).

A two-factor split of an ``m x n`` matrix at rank ``r`` stores ``r (m + n)``
numbers, so it saves parameters only below the break-even rank
``m n / (m + n)`` (:func:`breakeven_rank`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from .._array import check_random_state, get_namespace, random_normal, to_numpy
from .._validation import check_choice, check_int, check_positive_float, check_rtol, check_tensor
from ..tensor import _max_abs, _pow2_exponent, _pow2_normalized, _times_pow2, khatri_rao, multi_mode_product, unfold

__all__ = [
    "LowRankFactors",
    "InterpolativeFactors",
    "SparseLowRankFactors",
    "TuckerConvFactors",
    "CPConvFactors",
    "TTMatrix",
    "breakeven_rank",
    "interpolative_cost",
    "interpolative_form",
    "svd_factorize",
    "whitened_svd",
    "sparse_plus_lowrank",
    "vbmf_rank",
    "tucker2_conv",
    "cp_conv",
    "tt_matrix",
]


# ---------------------------------------------------------------------------
# result objects
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LowRankFactors:
    """A rank-``r`` split ``W ~= left @ right`` of an ``m x n`` weight.

    Returned by :func:`svd_factorize` or :func:`whitened_svd`; the
    constructor stores its arguments as given. Every parameter is available
    as a read-only attribute of the same name.

    Parameters
    ----------
    left : array, shape (m, r)
        Left factor.
    right : array, shape (r, n)
        Right factor.
    singular_values : array, shape (min(m, n),)
        The full spectrum the truncation was chosen from: of ``W`` for
        :func:`svd_factorize`, of the whitened ``W S`` for :func:`whitened_svd`
        (so its tail is the calibrated output error).

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the result is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import svd_factorize
    >>> W = np.random.default_rng(0).standard_normal((6, 4))
    >>> f = svd_factorize(W, rank=2)
    >>> f.left.shape, f.right.shape, f.singular_values.shape
    ((6, 2), (2, 4), (4,))
    >>> f.rank, f.shape, f.n_params
    (2, (6, 4), 20)
    """

    left: Any
    right: Any
    singular_values: Any

    @property
    def rank(self) -> int:
        """Rank ``r`` of the split.

        Returns
        -------
        int
        """
        return int(self.left.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(m, n)`` of the approximated weight.

        Returns
        -------
        tuple of int
        """
        return (int(self.left.shape[0]), int(self.right.shape[1]))

    @property
    def n_params(self) -> int:
        """Numbers stored: ``r (m + n)``.

        Returns
        -------
        int
        """
        m, n = self.shape
        return self.rank * (m + n)

    def full(self):
        """The dense ``m x n`` product ``left @ right``.

        Returns
        -------
        array, shape (m, n)
            Same array namespace and dtype as the factors.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import svd_factorize
        >>> W = np.random.default_rng(0).standard_normal((6, 4))
        >>> f = svd_factorize(W, rank=2)
        >>> bool(np.allclose(f.full(), f.left @ f.right)), f.full().shape
        (True, (6, 4))
        """
        return self.left @ self.right

    def truncate(self, rank: int) -> "LowRankFactors":
        """The split made of the first ``rank`` components.

        :func:`svd_factorize` and :func:`whitened_svd` order their components
        by decreasing singular value, so truncating their split to a smaller
        rank gives exactly their split at that rank, without a new SVD. Use it
        to sweep ranks from one factorization at the largest rank.

        Parameters
        ----------
        rank : int
            New rank, ``1 <= rank <= self.rank``.

        Returns
        -------
        LowRankFactors
            ``left[:, :rank]`` and ``right[:rank]`` (views where the array
            library makes them), with the same ``singular_values``.

        Raises
        ------
        ValueError
            If ``rank`` is outside ``[1, self.rank]``.
        TypeError
            If ``rank`` is not an integer.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import svd_factorize
        >>> W = np.random.default_rng(0).standard_normal((8, 6))
        >>> f = svd_factorize(W, rank=3).truncate(2)
        >>> g = svd_factorize(W, rank=2)
        >>> f.rank, bool(np.allclose(f.full(), g.full()))
        (2, True)
        """
        r = check_int(rank, name="rank", minimum=1, maximum=self.rank)
        # right[:r, :]: the array API indexes every axis (right[:r] was an IndexError for array_api_strict)
        return LowRankFactors(self.left[:, :r], self.right[:r, :], self.singular_values)


@dataclass(frozen=True)
class SparseLowRankFactors:
    """``W ~= left @ right + S`` with ``S`` sparse, given by coordinates.

    Returned by :func:`sparse_plus_lowrank`; the constructor stores its
    arguments as given. Every parameter is available as a read-only
    attribute of the same name.

    Parameters
    ----------
    left : array, shape (m, r)
        Left factor of the low-rank part.
    right : array, shape (r, n)
        Right factor of the low-rank part.
    rows : array of int, shape (nnz,)
        Row indices of the sparse residual, sorted row-major.
    cols : array of int, shape (nnz,)
        Column indices of the sparse residual.
    values : array, shape (nnz,)
        Values of the sparse residual.
    shape : tuple of int
        Shape ``(m, n)`` of the approximated weight.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the result is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import sparse_plus_lowrank
    >>> W = np.random.default_rng(0).standard_normal((6, 4))
    >>> f = sparse_plus_lowrank(W, rank=1, density=0.25)
    >>> f.rank, f.nnz, f.shape, f.n_params
    (1, 6, (6, 4), 29)
    """

    left: Any
    right: Any
    rows: Any
    cols: Any
    values: Any
    shape: tuple

    @property
    def rank(self) -> int:
        """Rank ``r`` of the low-rank part.

        Returns
        -------
        int
        """
        return int(self.left.shape[1])

    @property
    def nnz(self) -> int:
        """Number of stored entries of the sparse residual.

        Returns
        -------
        int
        """
        return int(self.values.shape[0])

    @property
    def n_params(self) -> int:
        """Stored numbers of the low-rank part and the compressed-row residual.

        ``r (m + n)`` plus two per nonzero (value and column index) plus
        ``m + 1`` row pointers.

        Returns
        -------
        int
        """
        m, n = self.shape
        return self.rank * (m + n) + 2 * self.nnz + m + 1

    def full(self):
        """The dense product plus the scattered residual.

        Returns
        -------
        array, shape (m, n)
            ``left @ right + S``, same array namespace and dtype as the factors.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import sparse_plus_lowrank
        >>> W = np.random.default_rng(0).standard_normal((6, 4))
        >>> f = sparse_plus_lowrank(W, rank=1, density=0.25)
        >>> D = f.full()
        >>> S = D - f.left @ f.right
        >>> D.shape, int(np.count_nonzero(S)) <= f.nnz
        ((6, 4), True)
        """
        xp = get_namespace(self.left)
        D = self.left @ self.right
        m, n = self.shape
        flat = xp.reshape(D, (-1,))
        idx = self.rows * n + self.cols
        flat_np = to_numpy(flat).copy()
        np.add.at(flat_np, to_numpy(idx), to_numpy(self.values))
        return xp.asarray(np.reshape(flat_np, (m, n)), dtype=D.dtype)


@dataclass(frozen=True)
class InterpolativeFactors:
    """A rank-``r`` weight in row-interpolative form: ``r`` rows kept, the rest combined from them.

    ``W_hat[rows] = skeleton`` and ``W_hat[others] = coef @ skeleton``, i.e.
    ``W_hat = P^T [I; coef] skeleton`` for the row permutation ``P`` that
    lists ``rows`` first. The identity block is not stored, so a rank-``r``
    matrix costs ``r (m + n - r)`` numbers plus the ``m`` row indices
    instead of the ``r (m + n)`` of a two-factor split: the saving
    ``r^2 - m`` grows with the rank, and a square ``n x n`` matrix still
    saves up to rank ``n - sqrt(n)`` (364 for ``n = 384``, against the
    two-factor break-even rank 191).

    Returned by :func:`interpolative_form`; the constructor stores its
    arguments as given. Every parameter is available as a read-only
    attribute of the same name.

    Parameters
    ----------
    rows : array of int, shape (r,)
        Indices of the skeleton rows.
    others : array of int, shape (m - r,)
        Indices of the remaining rows, in the order of ``coef``'s rows.
    coef : array, shape (m - r, r)
        Interpolation coefficients of the remaining rows.
    skeleton : array, shape (r, n)
        The kept rows of the approximation.
    singular_values : array, shape (min(m, n),)
        The spectrum carried over from the two-factor split.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the result is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import interpolative_form, svd_factorize
    >>> W = np.random.default_rng(0).standard_normal((6, 4))
    >>> g = interpolative_form(svd_factorize(W, rank=2))
    >>> g.skeleton.shape, g.coef.shape, g.rank, g.shape, g.n_params
    ((2, 4), (4, 2), 2, (6, 4), 22)
    """

    rows: Any
    others: Any
    coef: Any
    skeleton: Any
    singular_values: Any

    @property
    def rank(self) -> int:
        """Rank ``r`` (number of skeleton rows).

        Returns
        -------
        int
        """
        return int(self.skeleton.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(m, n)`` of the approximated weight.

        Returns
        -------
        tuple of int
        """
        return (int(self.rows.shape[0] + self.others.shape[0]), int(self.skeleton.shape[1]))

    @property
    def n_params(self) -> int:
        """Numbers stored: ``r (m + n - r)`` values plus ``m`` row indices.

        Returns
        -------
        int
        """
        m, n = self.shape
        return interpolative_cost(m, n, self.rank)

    @property
    def order(self) -> np.ndarray:
        """Where each row of ``[skeleton; coef @ skeleton]`` goes: ``W_hat = stacked[order]``.

        Returns
        -------
        numpy.ndarray of int, shape (m,)
        """
        return np.argsort(np.concatenate([to_numpy(self.rows), to_numpy(self.others)]))

    def full(self):
        """The dense ``m x n`` matrix ``P^T [I; coef] skeleton``.

        Returns
        -------
        array, shape (m, n)
            Same array namespace and dtype as the factors.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import interpolative_form, svd_factorize
        >>> W = np.random.default_rng(0).standard_normal((6, 4))
        >>> f = svd_factorize(W, rank=2)
        >>> bool(np.allclose(interpolative_form(f).full(), f.full()))
        True
        """
        xp = get_namespace(self.skeleton)
        stacked = xp.concat([self.skeleton, self.coef @ self.skeleton], axis=0)
        return xp.take(stacked, xp.asarray(self.order), axis=0)


@dataclass(frozen=True)
class TuckerConvFactors:
    """Tucker-2 split of a kernel ``K[o, i, y, x]`` over its channel modes.

    ``K ~= core x_0 last x_1 first.T``, i.e. a 1x1 convolution ``first``
    (``r_in x c_in``), a ``kh x kw`` convolution ``core``
    (``r_out x r_in x kh x kw``) and a 1x1 convolution ``last``
    (``c_out x r_out``).

    Returned by :func:`tucker2_conv`; the constructor stores its arguments as given.
    Every parameter is available as a read-only attribute of the same name.

    Parameters
    ----------
    first : array, shape (r_in, c_in)
        Input-channel factor (the first 1x1 convolution).
    core : array, shape (r_out, r_in, kh, kw)
        Core kernel (the spatial convolution).
    last : array, shape (c_out, r_out)
        Output-channel factor (the last 1x1 convolution).

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the result is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import tucker2_conv
    >>> K = np.random.default_rng(0).standard_normal((8, 6, 3, 3))
    >>> f = tucker2_conv(K, ranks=(4, 3))
    >>> f.first.shape, f.core.shape, f.last.shape
    ((3, 6), (4, 3, 3, 3), (8, 4))
    >>> f.ranks, f.n_params
    ((4, 3), 158)
    """

    first: Any
    core: Any
    last: Any

    @property
    def ranks(self) -> tuple[int, int]:
        """Channel ranks ``(r_out, r_in)``.

        Returns
        -------
        tuple of int
        """
        return (int(self.core.shape[0]), int(self.core.shape[1]))

    @property
    def n_params(self) -> int:
        """Numbers stored in the three factors.

        Returns
        -------
        int
        """
        return int(math.prod(self.first.shape) + math.prod(self.core.shape) + math.prod(self.last.shape))

    def full(self):
        """The dense kernel, shape ``(c_out, c_in, kh, kw)``.

        Returns
        -------
        array, shape (c_out, c_in, kh, kw)
            ``core x_0 last x_1 first.T``.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import tucker2_conv
        >>> K = np.random.default_rng(0).standard_normal((8, 6, 3, 3))
        >>> tucker2_conv(K, ranks=(8, 6)).full().shape
        (8, 6, 3, 3)
        >>> bool(np.allclose(tucker2_conv(K, ranks=(8, 6)).full(), K))
        True
        """
        return multi_mode_product(self.core, [self.last, self.first.T], modes=[0, 1])


@dataclass(frozen=True)
class CPConvFactors:
    """Rank-``R`` CP split of a kernel into separable one-way filters.

    ``K[o, i, y, x] ~= sum_r out[o, r] inp[i, r] vert[y, r] horiz[x, r]``:
    a 1x1 convolution to ``R`` channels, a ``kh x 1`` and a ``1 x kw``
    depth-wise convolution, and a 1x1 convolution back.

    Returned by :func:`cp_conv`; the constructor stores its arguments as given.
    Every parameter is available as a read-only attribute of the same name.

    Parameters
    ----------
    out : array, shape (c_out, R)
        Output-channel factor.
    inp : array, shape (c_in, R)
        Input-channel factor.
    vert : array, shape (kh, R)
        Vertical filters.
    horiz : array, shape (kw, R)
        Horizontal filters.
    history : tuple of float
        Relative error of the fit after every CP-ALS sweep.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the result is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import cp_conv
    >>> K = np.random.default_rng(0).standard_normal((8, 6, 3, 3))
    >>> f = cp_conv(K, rank=5, random_state=0)
    >>> f.out.shape, f.inp.shape, f.vert.shape, f.horiz.shape
    ((8, 5), (6, 5), (3, 5), (3, 5))
    >>> f.rank, f.n_params
    (5, 100)
    """

    out: Any
    inp: Any
    vert: Any
    horiz: Any
    history: tuple

    @property
    def rank(self) -> int:
        """CP rank ``R``.

        Returns
        -------
        int
        """
        return int(self.out.shape[1])

    @property
    def n_params(self) -> int:
        """Numbers stored: ``R (c_out + c_in + kh + kw)``.

        Returns
        -------
        int
        """
        return self.rank * sum(int(A.shape[0]) for A in (self.out, self.inp, self.vert, self.horiz))

    def full(self):
        """The dense kernel, shape ``(c_out, c_in, kh, kw)``.

        Returns
        -------
        array, shape (c_out, c_in, kh, kw)
            ``sum_r out[:, r] o inp[:, r] o vert[:, r] o horiz[:, r]``.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import cp_conv
        >>> K = np.random.default_rng(0).standard_normal((8, 6, 3, 3))
        >>> f = cp_conv(K, rank=5, random_state=0)
        >>> D = f.full()
        >>> D.shape
        (8, 6, 3, 3)
        >>> ref = np.einsum("or,ir,yr,xr->oiyx", f.out, f.inp, f.vert, f.horiz)
        >>> bool(np.allclose(D, ref))
        True
        """
        xp = get_namespace(self.out)
        shape = tuple(int(A.shape[0]) for A in (self.out, self.inp, self.vert, self.horiz))
        M = self.out @ khatri_rao([self.inp, self.vert, self.horiz]).T
        return xp.reshape(M, shape)


@dataclass(frozen=True)
class TTMatrix:
    """A matrix in tensor-train (MPO) format.

    ``W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] ... G_d[:, i_d, j_d, :]``
    with the row index ``(i_1, ..., i_d)`` over ``out_shape`` and the column
    index over ``in_shape`` (C order, the first index slowest).

    Returned by :func:`tt_matrix`; the constructor stores its arguments as given.
    Every parameter is available as a read-only attribute of the same name.

    Parameters
    ----------
    cores : tuple of arrays
        Cores ``G_k`` of shapes ``(r_{k-1}, m_k, n_k, r_k)``, ``r_0 = r_d = 1``.
    in_shape : tuple of int
        Factorization ``(n_1, ..., n_d)`` of the number of columns.
    out_shape : tuple of int
        Factorization ``(m_1, ..., m_d)`` of the number of rows.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the result is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import tt_matrix
    >>> W = np.random.default_rng(0).standard_normal((12, 6))
    >>> T = tt_matrix(W, in_shape=(2, 3), out_shape=(3, 4))
    >>> [G.shape for G in T.cores]
    [(1, 3, 2, 6), (6, 4, 3, 1)]
    >>> T.shape, T.ranks, T.n_params
    ((12, 6), (6,), 108)
    """

    cores: tuple
    in_shape: tuple
    out_shape: tuple

    @property
    def ranks(self) -> tuple[int, ...]:
        """Inner bond ranks ``(r_1, ..., r_{d-1})``.

        Returns
        -------
        tuple of int
        """
        return tuple(int(G.shape[3]) for G in self.cores[:-1])

    @property
    def shape(self) -> tuple[int, int]:
        """Shape ``(prod out_shape, prod in_shape)`` of the matrix.

        Returns
        -------
        tuple of int
        """
        return (math.prod(self.out_shape), math.prod(self.in_shape))

    @property
    def n_params(self) -> int:
        """Numbers stored in the cores.

        Returns
        -------
        int
        """
        return int(sum(math.prod(G.shape) for G in self.cores))

    def full(self):
        """The dense ``(prod out_shape, prod in_shape)`` matrix.

        Returns
        -------
        array, shape (prod(out_shape), prod(in_shape))
            Same array namespace and dtype as the cores.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import tt_matrix
        >>> W = np.random.default_rng(0).standard_normal((12, 6))
        >>> T = tt_matrix(W, in_shape=(2, 3), out_shape=(3, 4))
        >>> bool(np.allclose(T.full(), W))
        True
        """
        xp = get_namespace(self.cores[0])
        N = self.shape[1]
        return self.matvec(xp.eye(N, dtype=self.cores[0].dtype)).T

    def matvec(self, x):
        """``x @ W.T`` for ``x`` of shape ``(..., prod in_shape)`` without forming ``W``.

        Parameters
        ----------
        x : array, shape (..., prod(in_shape))
            Vectors to multiply, in the last axis.

        Returns
        -------
        array, shape (..., prod(out_shape))
            ``x @ W.T``.

        Raises
        ------
        ValueError
            If the last axis of ``x`` is not ``prod(in_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.nn import tt_matrix
        >>> W = np.random.default_rng(0).standard_normal((12, 6))
        >>> T = tt_matrix(W, in_shape=(2, 3), out_shape=(3, 4))
        >>> x = np.ones((5, 6))
        >>> bool(np.allclose(T.matvec(x), x @ W.T))
        True
        """
        xp = get_namespace(x, self.cores[0])
        lead = tuple(x.shape[:-1])
        B = math.prod(lead)
        N = self.shape[1]
        if int(x.shape[-1]) != N:
            raise ValueError(f"x has {int(x.shape[-1])} features but the TT matrix takes {N}")
        t = xp.reshape(x, (B, 1, self.in_shape[0], N // self.in_shape[0]))
        P = B
        for k, G in enumerate(self.cores):
            r0, m, n, r1 = (int(s) for s in G.shape)
            rest = int(t.shape[3])
            t = xp.permute_dims(xp.reshape(t, (P, r0 * n, rest)), (0, 2, 1))       # (P, rest, r0 n)
            Gm = xp.reshape(xp.permute_dims(G, (0, 2, 1, 3)), (r0 * n, m * r1))   # (r0 n, m r1)
            t = xp.reshape(t @ Gm, (P, rest, m, r1))
            t = xp.permute_dims(t, (0, 2, 3, 1))                                  # (P, m, r1, rest)
            P = P * m
            nxt = self.in_shape[k + 1] if k + 1 < len(self.cores) else 1
            t = xp.reshape(t, (P, r1, nxt, rest // nxt))
        return xp.reshape(t, lead + (self.shape[0],))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def breakeven_rank(m: int, n: int) -> int:
    """Largest rank whose two-factor split of an ``m x n`` matrix stores fewer numbers.

    ``r (m + n) < m n``; returns 0 when no rank saves anything.

    Parameters
    ----------
    m : int
        Number of rows of the matrix (positive).
    n : int
        Number of columns of the matrix (positive).

    Returns
    -------
    int
        The largest ``r`` with ``r (m + n) < m n``, or 0.

    Raises
    ------
    TypeError
        If ``m`` or ``n`` is not an int (``bool`` is rejected); the message
        names the argument.
    ValueError
        If ``m`` or ``n`` is smaller than 1; the message names the argument.

    Examples
    --------
    >>> from tensorapprox.nn import breakeven_rank
    >>> breakeven_rank(384, 384)
    191
    >>> breakeven_rank(1, 1)
    0
    """
    m = check_int(m, name="m", minimum=1)
    n = check_int(n, name="n", minimum=1)
    r = (m * n - 1) // (m + n)
    return max(int(r), 0)


def interpolative_cost(m: int, n: int, rank: int) -> int:
    """Count the numbers stored by the row-interpolative form of a rank-``rank`` ``m x n`` matrix.

    ``rank (m + n - rank)`` values (the ``rank x n`` skeleton and the
    ``(m - rank) x rank`` coefficients) plus ``m`` row indices. The dense
    matrix stores ``(m - rank) (n - rank) - m`` numbers more, so the form
    saves exactly while ``(m - rank) (n - rank) > m``: on a square matrix up
    to about rank ``m - sqrt(m)`` (364 of 384), not at every rank below
    ``min(m, n)`` (at rank ``m - 1 <= n - 1`` it saves only when ``n >= 2 m``).

    Parameters
    ----------
    m, n : int
        Shape of the matrix (positive).
    rank : int
        Rank, ``1 <= rank <= min(m, n)``.

    Returns
    -------
    int
        ``rank * (m + n - rank) + m``.

    Raises
    ------
    TypeError
        If an argument is not an int (the message names it).
    ValueError
        If ``m`` or ``n`` is below 1, or ``rank`` outside ``[1, min(m, n)]``.

    See Also
    --------
    InterpolativeFactors : The form this counts.
    breakeven_rank : The largest rank at which two factors store less than the dense matrix.

    Examples
    --------
    >>> from tensorapprox.nn import interpolative_cost
    >>> interpolative_cost(384, 384, 260), 172 * (384 + 384)  # about the cost of rank 172 as two factors
    (132464, 132096)
    >>> max(r for r in range(1, 385) if interpolative_cost(384, 384, r) < 384 * 384)
    364
    >>> all((interpolative_cost(m, n, r) < m * n) == ((m - r) * (n - r) > m)
    ...     for m in range(1, 30) for n in range(1, 30) for r in range(1, min(m, n) + 1))
    True
    """
    m = check_int(m, name="m", minimum=1)
    n = check_int(n, name="n", minimum=1)
    rank = check_int(rank, name="rank", minimum=1, maximum=min(m, n))
    return rank * (m + n - rank) + m


def interpolative_form(factors: LowRankFactors) -> InterpolativeFactors:
    """Rewrite a two-factor split ``left @ right`` in row-interpolative form, exactly.

    The left factor is first orthonormalized (``left = Q T``, so
    ``left @ right = Q (T right)``); column-pivoted QR of ``Q.T`` picks ``r``
    rows of ``Q`` that form a well-conditioned ``r x r`` block ``Q_1``; then
    ``left @ right = P^T [I; Q_2 Q_1^{-1}] (Q_1 T right)``. The matrix is the
    same (up to rounding), so the approximation error is unchanged, but it
    is stored in ``r (m + n - r) + m`` numbers instead of ``r (m + n)``:
    at a fixed parameter budget the rank can be higher, and ranks far
    above the two-factor break-even rank still save parameters. This is
    the interpolative decomposition (Cheng, Gimbutas, Martinsson and
    Rokhlin 2005) applied to an already truncated matrix; the pivoting
    (Businger-Golub) keeps ``|coef|`` moderate on all but contrived
    matrices.

    Parameters
    ----------
    factors : LowRankFactors
        A split from :func:`svd_factorize` or :func:`whitened_svd` (or any
        object with ``left`` ``(m, r)``, ``right`` ``(r, n)`` and
        ``singular_values``), with ``r <= m``.

    Returns
    -------
    InterpolativeFactors
        On the factors' array namespace and dtype (computed in float64 on
        the host); integer or boolean factors give float64.

    Raises
    ------
    TypeError
        If ``factors`` lacks ``left`` or ``right``.
    ValueError
        If the factors' shapes do not chain or hold non-finite values (or,
        short of a floating-point breakdown that the orthonormalization
        rules out, the pivoted block of ``Q`` is singular).

    Notes
    -----
    A rank-deficient split is rewritten exactly as well, at its rank ``r``:
    zero or dependent columns of ``left`` (the ``U sqrt(s)`` of an all-zero
    or low-rank weight truncated above its rank) leave ``Q`` orthonormal, so
    the form holds the same matrix as the product, with the same number of
    stored values.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import interpolative_form, svd_factorize
    >>> W = np.random.default_rng(0).standard_normal((8, 5))
    >>> f = svd_factorize(W, rank=3)
    >>> g = interpolative_form(f)
    >>> bool(np.allclose(g.full(), f.full())), bool(np.allclose(g.full()[g.rows], g.skeleton))
    (True, True)
    >>> f.n_params, g.n_params
    (39, 38)
    """
    import scipy.linalg

    if not (hasattr(factors, "left") and hasattr(factors, "right")):
        raise TypeError(f"factors must be a LowRankFactors (with left and right), got {type(factors).__name__}")
    xp = get_namespace(factors.left)
    dtype = factors.left.dtype
    if not all(xp.isdtype(a.dtype, "real floating") for a in (factors.left, factors.right)):
        # integer or boolean factors (LowRankFactors stores what it is given):
        # the coefficients are fractions, so the result is float64, as for any
        # integer input of the package; casting back would truncate them
        dtype = xp.float64
    L = np.asarray(to_numpy(factors.left), dtype=np.float64)
    R = np.asarray(to_numpy(factors.right), dtype=np.float64)
    if L.ndim != 2 or R.ndim != 2 or L.shape[1] != R.shape[0]:
        raise ValueError(f"left {L.shape} and right {R.shape} do not chain as (m, r) @ (r, n)")
    m, r = L.shape
    if r > m:
        raise ValueError(f"rank {r} exceeds the {m} rows; the interpolative form needs rank <= m")
    if not (np.isfinite(L).all() and np.isfinite(R).all()):
        raise ValueError("the factors hold non-finite values (NaN/Inf)")
    # left @ right = Q (T right) with Q orthonormal (Householder QR gives
    # orthonormal columns even where left has zero or dependent ones): the
    # rows are picked on Q, whose pivoted r x r block is never singular, so a
    # rank-deficient split (an all-zero layer's U sqrt(s) is all zero) is
    # rewritten exactly too. coef = Q_2 Q_1^{-1} = L_2 L_1^{-1} whenever L_1
    # is invertible: the same form, from a better conditioned basis.
    Q, T = np.linalg.qr(L)
    R = T @ R
    _, P, piv = scipy.linalg.qr(Q.T, mode="economic", pivoting=True)
    d = np.abs(np.diag(P))
    if r and not d[-1] > d[0] * np.finfo(np.float64).eps * max(m, r):  # pragma: no cover - Q has full rank
        raise ValueError("the pivoted block of the orthonormalized left factor is numerically singular")
    rows, others = np.sort(piv[:r]), np.sort(piv[r:])
    Q1 = Q[rows]
    coef = np.linalg.solve(Q1.T, Q[others].T).T
    skeleton = Q1 @ R

    def back(a, dt=dtype):
        return xp.asarray(a, dtype=dt) if xp is not np else a.astype(dt, copy=False)

    return InterpolativeFactors(back(rows, xp.int64), back(others, xp.int64), back(coef), back(skeleton),
                                factors.singular_values)


def _check_matrix(W, name="W"):
    W = check_tensor(W, name=name, min_ndim=2)
    if W.ndim != 2:
        raise ValueError(f"{name} must be a 2-D weight matrix (out_features, in_features), got shape {tuple(W.shape)}")
    return W


def _check_fraction(value, name, *, upper_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in (0, 1], got {type(value).__name__}")
    value = float(value)
    ok = 0.0 < value < 1.0 if upper_open else 0.0 < value <= 1.0
    if not ok:
        interval = "(0, 1)" if upper_open else "(0, 1]"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def _budget_count(ratio: float, count: int) -> int:
    """``floor(ratio * count)``: the numbers a budget fraction ``ratio`` of ``count`` allows, exactly.

    ``ratio`` is read as the shortest decimal that prints as it (``0.58`` is
    58/100), and the product is formed in rationals: in floating point
    ``0.58 * 100`` is 57.99999999999999, so a rank (or a layer's unit) that
    stores exactly the budget was refused on the boundary. The rank rule of
    ``param_ratio`` and :func:`tensorapprox.nn.allocate_ranks` both count
    their budget here, so they agree on every boundary.
    """
    return math.floor(Fraction(repr(float(ratio))) * count)


def _rank_from(sigma, m, n, rank, energy, param_ratio) -> int:
    """Resolve exactly one of rank / energy / param_ratio to an int rank."""
    given = [x is not None for x in (rank, energy, param_ratio)]
    if sum(given) != 1:
        raise ValueError("give exactly one of rank, energy and param_ratio "
                         f"(got {sum(given)}: {[k for k, g in zip(('rank', 'energy', 'param_ratio'), given) if g]})")
    kmax = min(m, n)
    if rank is not None:
        return check_int(rank, name="rank", minimum=1, maximum=kmax)
    if energy is not None:
        energy = _check_fraction(energy, "energy")
        s = to_numpy(sigma).astype(np.float64)
        top = float(s.max()) if s.size else 0.0
        if top == 0.0:
            return 1
        # energy fractions do not depend on the scale: squaring sigma / sigma_1
        # instead of sigma keeps them from under- or overflowing (1e-170, 1e170)
        s2 = (s / top) ** 2
        cum = np.cumsum(s2) / float(s2.sum())
        return int(min(kmax, max(1, np.searchsorted(cum, energy - 1e-15) + 1)))
    param_ratio = _check_fraction(param_ratio, "param_ratio")
    # exact: floor(budget / (m + n)) with the budget counted in integers
    r = _budget_count(param_ratio, m * n) // (m + n)
    if r < 1:
        # a split needs rank 1 at least, which may store more than the budget
        warnings.warn(
            f"param_ratio={param_ratio} allows {param_ratio * m * n:.4g} of the {m * n} numbers of a "
            f"{m} x {n} matrix, but rank 1 already stores {m + n}; rank 1 is used, above the budget",
            UserWarning, stacklevel=3)
    return int(min(kmax, max(1, r)))


def _warn_no_saving(r, m, n):
    if r * (m + n) >= m * n:
        warnings.warn(
            f"rank {r} does not save parameters for a {m} x {n} matrix ({r * (m + n)} >= {m * n}); "
            f"use a rank of at most {breakeven_rank(m, n)} or keep the layer dense",
            UserWarning, stacklevel=3)


def _split(xp, U, s, Vt, r):
    """Balanced factors ``U sqrt(s)``, ``sqrt(s) Vt`` at rank ``r``."""
    root = xp.sqrt(s[:r])
    return U[:, :r] * root[None, :], root[:, None] * Vt[:r, :]


def _owned(xp, a):
    """``a``, or a copy when it is a view into a larger array.

    A slice of a full SVD factor keeps the whole factor alive; the stored
    factors of a result own just their data. A numpy or cupy array that owns
    its data, or views a buffer of its own size, is returned as it is.
    """
    if isinstance(a, np.ndarray) or type(a).__module__.startswith("cupy"):
        base = a.base
        if base is None or int(getattr(base, "size", -1)) == int(a.size):
            return a
        return a.copy()
    return xp.asarray(a, copy=True)


# ---------------------------------------------------------------------------
# plain and whitened SVD
# ---------------------------------------------------------------------------

def svd_factorize(W, rank=None, energy=None, param_ratio=None) -> LowRankFactors:
    """Truncated SVD of a weight matrix (the data-free baseline).

    Parameters
    ----------
    W : array, shape (m, n)
        Dense weight (``out_features x in_features``); not modified.
    rank : int, optional
        Target rank, ``1 <= rank <= min(m, n)``.
    energy : float in (0, 1], optional
        Keep the smallest rank holding this fraction of ``||W||_F^2``.
    param_ratio : float in (0, 1], optional
        Keep at most this fraction of the ``m n`` numbers:
        ``rank = floor(param_ratio m n / (m + n))``, but at least 1 (with a
        warning when rank 1 already exceeds the budget).
        Give exactly one of ``rank``, ``energy`` and ``param_ratio``.

    Returns
    -------
    LowRankFactors
        ``left = U_r sqrt(S_r)``, ``right = sqrt(S_r) V_r^T``: the best rank-r
        approximation in every unitarily invariant norm (Eckart-Young).

    Raises
    ------
    ValueError
        If ``W`` is not 2-D or holds NaN/Inf, or the rank specification is
        missing, ambiguous or out of range.

    Warns
    -----
    UserWarning
        When the rank stores at least ``m n`` numbers (no saving), or when
        ``param_ratio m n < m + n``: even rank 1 stores more than the budget,
        and rank 1 is used.

    Notes
    -----
    One-shot low-rank compression of linear layers as in LoRD (Kaushal et al.
    2023) and the low-rank transformer literature; Eckart & Young (1936).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import svd_factorize
    >>> W = np.random.default_rng(0).standard_normal((64, 32))
    >>> f = svd_factorize(W, rank=8)
    >>> f.left.shape, f.right.shape, f.n_params
    ((64, 8), (8, 32), 768)
    """
    W = _check_matrix(W)
    xp = get_namespace(W)
    m, n = (int(s) for s in W.shape)
    U, s, Vt = xp.linalg.svd(W, full_matrices=False)
    r = _rank_from(s, m, n, rank, energy, param_ratio)
    _warn_no_saving(r, m, n)
    left, right = _split(xp, U, s, Vt, r)
    return LowRankFactors(left, right, s)


def _whitening(xp, gram, damping):
    """A square root ``S`` with ``S S^T = gram + damping * mean(diag) * I``.

    A damped Cholesky factor; if it fails (singular or indefinite Gram after
    rounding), the damping grows tenfold a few times, and as the last resort
    the symmetric square root from an eigen-decomposition with the negative
    eigenvalues clipped is used. The callers never invert ``S``.
    """
    n = int(gram.shape[0])
    eye = xp.eye(n, dtype=gram.dtype)
    scale = float(xp.sum(xp.linalg.diagonal(gram))) / n
    if scale <= 0.0:
        return None  # no activation energy at all: nothing to whiten with
    lam = damping
    for _ in range(4):
        try:
            L = xp.linalg.cholesky(gram + (lam * scale) * eye)
            if bool(xp.all(xp.isfinite(L))):
                return L
        except Exception:  # numpy's LinAlgError and its array-API cousins
            pass
        if damping == 0:
            break
        lam *= 10.0
    evals, V = xp.linalg.eigh(gram)
    evals = xp.clip(evals, 0.0, None) + damping * scale
    return V * xp.sqrt(evals)[None, :]


def _check_psd(xp, G):
    """``(G + G^T) / 2``; ``ValueError`` unless ``G`` (square, finite) is symmetric positive semi-definite up to rounding.

    ``G`` is scaled to a largest entry near 1. Rounding noise (a Gram matrix
    summed in another order, a singular one whose zero eigenvalues come out
    slightly negative) stays far below ``sqrt(eps)`` of the largest entry or
    eigenvalue, so that is the tolerance: only a matrix that is clearly not
    a Gram matrix is refused.
    """
    n = int(G.shape[0])
    tol = math.sqrt(float(xp.finfo(G.dtype).eps))
    big = float(xp.max(xp.abs(G)))
    if big == 0.0:
        return G  # no activation at all
    asym = float(xp.max(xp.abs(G - G.T)))
    if asym > tol * big:
        raise ValueError(f"gram must be symmetric (a Gram matrix X^T X); gram - gram.T reaches "
                         f"{asym / big:.3g} of gram's largest entry")
    G = 0.5 * (G + G.T)
    diag = xp.linalg.diagonal(G)
    dmax = float(xp.max(diag))
    if dmax > 0.0 and float(xp.min(diag)) >= 0.0:
        # the cheap test first: a Cholesky factor of G + tol max(diag) I exists
        # when no eigenvalue is below -tol max(diag) >= -tol max|eigenvalue|
        try:
            L = xp.linalg.cholesky(G + (tol * dmax) * xp.eye(n, dtype=G.dtype))
            if bool(xp.all(xp.isfinite(L))):
                return G
        except Exception:  # numpy's LinAlgError and its array-API cousins
            pass
    ev = xp.linalg.eigvalsh(G)
    top = float(xp.max(xp.abs(ev)))
    low = float(xp.min(ev))
    if low < -tol * top:
        raise ValueError(f"gram must be positive semi-definite (a Gram matrix X^T X); its smallest "
                         f"eigenvalue is {low / top:.3g} times its largest in magnitude")
    return G


def _prepare_gram(xp, gram, n, dtype):
    """``(G, q)``: the checked, symmetrized ``gram * 2^(-2q)`` in ``dtype``.

    The scaling is done in ``gram``'s own precision, before the cast to the
    weight's dtype: a float64 Gram matrix beyond float32's range would
    underflow to zero (silently, plain SVD) or overflow to Inf in a float32
    weight's dtype. The whitened split does not depend on the scale of
    ``gram``; the spectrum of ``W S`` scales with ``2^q`` (see
    :func:`_whitened_spectrum`).
    """
    gram = check_tensor(gram, name="gram", min_ndim=2)
    if tuple(gram.shape) != (n, n):
        raise ValueError(f"gram must have shape ({n}, {n}) to match W's {n} input features, got {tuple(gram.shape)}")
    q = _pow2_exponent(_max_abs(xp, gram)) // 2
    G = _check_psd(xp, _times_pow2(xp, gram, -2 * q))
    return xp.astype(G, dtype), q


def _whitened_spectrum(xp, W, G, q, damping, scaling, alpha):
    """``(U, s, shift)``: the SVD ``W S = U diag(s 2^shift) V^T`` for the Gram matrix ``G 2^(2q)``.

    ``G`` comes from :func:`_prepare_gram`, and ``W`` is divided by a power of
    two near its largest entry (exactly), so ``s`` is the spectrum in units
    where neither is far from 1. The spectrum of the data as given is
    ``s 2^shift`` (:func:`_scaled_back`; ``S`` scales with ``2^q``, the ASVD
    scaling with ``2^(q alpha)``), which overflows or underflows float64
    where ``s`` does not: rules that read only ratios of singular values
    (the energy rank) take ``s``.
    """
    n = int(G.shape[0])
    W, e = _pow2_normalized(xp, W)
    if scaling == "asvd":
        d = xp.clip(xp.linalg.diagonal(G), 0.0, None)
        scale = float(xp.sum(d)) / n
        if scale > 0:
            WS = W * ((d + max(damping, 1e-12) * scale) ** (alpha / 2))[None, :]
            shift = q * alpha
        else:
            WS, shift = W, 0.0  # no activation energy: nothing to scale with
    else:
        S = _whitening(xp, G, damping)
        WS, shift = (W, 0.0) if S is None else (W @ S, float(q))
    U, s, _ = xp.linalg.svd(WS, full_matrices=False)
    return U, s, shift + e


def _scaled_back(xp, s, shift):
    """``s 2^shift``: the power of two exactly, a fractional rest by one multiplication."""
    whole = math.floor(shift)
    if shift != whole:
        s = s * 2.0 ** (shift - whole)
    return _times_pow2(xp, s, whole)


def whitened_svd(W, gram, rank=None, *, energy=None, param_ratio=None, damping: float = 1e-2,
                 scaling: str = "cholesky", alpha: float = 0.5) -> LowRankFactors:
    """Activation-aware (calibrated) low-rank split of a weight.

    Minimizes the output error on the calibration inputs,
    ``||(W - W_r) S||_F`` with ``S S^T = gram``, over rank-``r`` matrices
    ``W_r`` instead of the weight error.

    Parameters
    ----------
    W : array, shape (m, n)
        Dense weight; not modified.
    gram : array, shape (n, n)
        ``X^T X`` of the layer's inputs (rows of ``X`` are input vectors);
        symmetric positive semi-definite, singular allowed.
    rank : int, optional
        As in :func:`svd_factorize`.
    energy : float in (0, 1], optional
        As in :func:`svd_factorize`, but counting the spectrum of ``W S`` (the
        calibrated output energy).
    param_ratio : float in (0, 1], optional
        As in :func:`svd_factorize`.
    damping : float, default 1e-2
        Ridge added to the Gram matrix relative to its mean diagonal,
        ``gram + damping * mean(diag(gram)) * I``; it blends toward plain SVD
        and keeps rarely excited input directions. 0 gives the exact
        minimizer on the calibration data.
    scaling : {'cholesky', 'asvd'}
        'cholesky': full whitening by a damped Cholesky factor of the Gram
        matrix (SVD-LLM); 'asvd': diagonal scaling by the root-mean-square
        activation of each input feature raised to ``alpha`` (ASVD).
    alpha : float, default 0.5
        Exponent of the ASVD scaling.

    Returns
    -------
    LowRankFactors
        ``left`` has orthonormal columns (the leading left singular vectors
        ``U_r`` of ``W S``) and ``right = U_r^T W``; ``singular_values`` is the
        spectrum of ``W S``. Where that spectrum lies beyond float64's range
        (``W`` and ``gram`` both near its ends) the stored values are Inf or
        0, but ``energy`` still chooses the rank from its exact ratios.

    Raises
    ------
    ValueError
        If ``W`` or ``gram`` holds NaN/Inf, their shapes disagree, or
        ``gram`` is clearly not symmetric positive semi-definite (an
        asymmetry, or a negative eigenvalue, beyond ``sqrt(eps)`` of its
        largest entry or eigenvalue, far above rounding).

    Warns
    -----
    UserWarning
        As :func:`svd_factorize`: when the rank saves no parameters, or
        ``param_ratio`` is below what rank 1 stores.

    Notes
    -----
    With ``W S = U Sigma V^T`` the minimizer is
    ``trunc_r(W S) S^{-1} = U_r U_r^T W`` (the projection of ``W`` on the
    leading output directions), so ``S`` is never inverted and a singular
    Gram matrix is harmless: this is the truncation-aware whitening of
    SVD-LLM (Wang et al. 2024, Theorem 3.2) in the output-feature form of
    MoDeGPT (Lin et al. 2024) and the CTR view of calibrated low-rank
    compression. ``scaling='asvd'`` follows ASVD (Yuan et al. 2023, Sec. 3.2).
    The split does not depend on the scale of ``gram``: it is normalized by a
    power of two in its own precision before it meets ``W``'s dtype, so a
    float64 Gram matrix beyond float32's range still whitens a float32
    weight. The optimality holds for the damped Gram matrix; with ``damping=0`` the
    output error on the calibration data is never above plain SVD's at the
    same rank.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import svd_factorize, whitened_svd
    >>> rng = np.random.default_rng(0)
    >>> W = rng.standard_normal((48, 32))
    >>> X = rng.standard_normal((500, 32)) * np.linspace(0.1, 3, 32)
    >>> f = whitened_svd(W, X.T @ X, rank=8, damping=0.0)
    >>> g = svd_factorize(W, rank=8)
    >>> e_w = np.linalg.norm(X @ (W - f.full()).T)
    >>> e_s = np.linalg.norm(X @ (W - g.full()).T)
    >>> bool(e_w <= e_s)
    True
    """
    W = _check_matrix(W)
    xp = get_namespace(W)
    m, n = (int(s) for s in W.shape)
    G, q = _prepare_gram(xp, gram, n, W.dtype)
    damping = check_positive_float(damping, name="damping", allow_zero=True)
    check_choice(scaling, name="scaling", choices=("cholesky", "asvd"))
    alpha = check_positive_float(alpha, name="alpha", allow_zero=True)
    U, s, shift = _whitened_spectrum(xp, W, G, q, damping, scaling, alpha)
    # the energy rule reads ratios only, so it takes the spectrum before the
    # scale goes back: W 1e250 with gram 1e150 (spectrum near 1e325) gave
    # an Inf spectrum, and W 1e-300 with gram 1e-100 a zero one, and so
    # rank 1 at every energy
    r = _rank_from(s, m, n, rank, energy, param_ratio)
    _warn_no_saving(r, m, n)
    left = _owned(xp, U[:, :r])
    return LowRankFactors(left, left.T @ W, _scaled_back(xp, s, shift))


# ---------------------------------------------------------------------------
# sparse plus low rank
# ---------------------------------------------------------------------------

def sparse_plus_lowrank(W, rank: int, density: float, *, gram=None, damping: float = 1e-2,
                        max_iter: int = 50) -> SparseLowRankFactors:
    """Low-rank plus sparse split ``W ~= L R + S`` by alternating projections.

    Parameters
    ----------
    W : array, shape (m, n)
        Dense weight; not modified.
    rank : int
        Rank of the low-rank part.
    density : float in (0, 1)
        Fraction of the ``m n`` entries kept in the sparse residual.
    gram : array, shape (n, n), optional
        Input Gram matrix; when given the low-rank part is the whitened split
        (:func:`whitened_svd`) and residual entries are chosen by
        ``|R_ij| * sqrt(gram_jj)`` (their contribution to the output).
    damping : float, default 1e-2
        Damping of the whitening (see :func:`whitened_svd`).
    max_iter : int, default 50
        Most alternations; each keeps the error of the previous one or lowers
        it (with ``gram=None``); they stop earlier once an alternation lowers
        the error ``||W - L R - S||_F`` by less than ``1e-9`` of itself.

    Returns
    -------
    SparseLowRankFactors
        The low-rank factors ``left`` and ``right`` and the sparse
        residual by coordinates (``rows``, ``cols``, ``values``).

    Raises
    ------
    TypeError
        If ``W`` (or ``gram``) is not a real array or an argument has the
        wrong type.
    ValueError
        If ``W`` is not a finite 2-D matrix, ``rank`` is outside
        ``[1, min(W.shape)]``, ``density`` is outside its range,
        ``max_iter < 1``, or ``gram`` does not match ``W``'s input features
        or is not positive semi-definite (see :func:`whitened_svd`).

    Notes
    -----
    The sparse-plus-low-rank weight model of LOST (Li et al. 2025) and
    SLTrain (Han et al. 2024), fitted here post hoc by alternating a
    truncated SVD of ``W - S`` with hard thresholding of ``W - L R``
    (GoDec, Zhou & Tao 2011). Like GoDec it converges to a fixed point, not
    necessarily the global optimum: a large isolated outlier can be partly
    absorbed by the low-rank part.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import sparse_plus_lowrank, svd_factorize
    >>> rng = np.random.default_rng(0)
    >>> W = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 30))
    >>> W[3, 7] += 5.0
    >>> f = sparse_plus_lowrank(W, rank=4, density=0.05)
    >>> e_sparse = np.linalg.norm(f.full() - W)
    >>> e_svd = np.linalg.norm(svd_factorize(W, rank=4).full() - W)
    >>> bool(e_sparse < 0.5 * e_svd)
    True
    """
    W = _check_matrix(W)
    xp = get_namespace(W)
    m, n = (int(s) for s in W.shape)
    rank = check_int(rank, name="rank", minimum=1, maximum=min(m, n))
    density = _check_fraction(density, "density", upper_open=True)
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    nnz = max(1, int(round(density * m * n)))
    # the alternations run on W / 4^k, largest entry in [1/4, 1) (exact), and
    # the parts take 4^k back at the end: the stopping error ||W - L R - S||
    # underflowed to 0 near 1e-170 (one alternation only) and overflowed to
    # Inf near 1e200 (all max_iter run). An even power keeps the balanced
    # factors of the plain split balanced: each takes 2^k
    k = -(-_pow2_exponent(_max_abs(xp, W)) // 2)
    W = _times_pow2(xp, W, -2 * k)
    weight = None
    if gram is not None:
        # checked and scaled once, not at every alternation; the scores only
        # rank the entries, so the scaled diagonal serves as well
        G, q = _prepare_gram(xp, gram, n, W.dtype)
        damping = check_positive_float(damping, name="damping", allow_zero=True)
        weight = xp.sqrt(xp.clip(xp.linalg.diagonal(G), 0.0, None))[None, :]
    S = xp.zeros_like(W)
    idx = None
    prev_err = math.inf
    for _ in range(max_iter):
        if gram is None:
            f = svd_factorize(W - S, rank=rank) if rank * (m + n) < m * n else _nowarn_svd(W - S, rank)
        else:
            U, _, _ = _whitened_spectrum(xp, W - S, G, q, damping, "cholesky", 0.5)
            left = _owned(xp, U[:, :rank])
            f = LowRankFactors(left, left.T @ (W - S), None)
        Rz = W - f.full()
        score = xp.abs(Rz) if weight is None else xp.abs(Rz) * weight
        order = xp.argsort(xp.reshape(score, (-1,)), descending=True)
        new_idx = xp.sort(order[:nnz])
        mask = xp.zeros((m * n,), dtype=xp.bool)
        mask = _scatter_true(xp, mask, new_idx)
        S = xp.where(xp.reshape(mask, (m, n)), Rz, xp.zeros_like(Rz))
        idx = new_idx
        err = float(xp.linalg.vector_norm(Rz - S))
        # stop once the error stalls: it gains less than 1e-9 of itself (the
        # first pass has no previous error to compare with: inf - err is not a stall)
        if err == 0.0 or (math.isfinite(prev_err) and prev_err - err <= 1e-9 * prev_err):
            break
        prev_err = err
    rows = idx // n
    cols = idx % n
    values = _times_pow2(xp, xp.take(xp.reshape(S, (-1,)), idx), 2 * k)
    if gram is None:
        left, right = _times_pow2(xp, f.left, k), _times_pow2(xp, f.right, k)
    else:
        left, right = f.left, _times_pow2(xp, f.right, 2 * k)  # left is orthonormal
    return SparseLowRankFactors(left, right, rows, cols, values, (m, n))


def _nowarn_svd(W, rank):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return svd_factorize(W, rank=rank)


def _scatter_true(xp, mask, idx):
    host = to_numpy(mask).copy()
    host[to_numpy(idx)] = True
    return xp.asarray(host)


# ---------------------------------------------------------------------------
# convolution kernels
# ---------------------------------------------------------------------------

def _tau_bar(alpha: float) -> float:
    """Zero of ``Phi(t) + Phi(t / alpha)``, ``Phi(z) = log(z + 1) / z - 1/2``."""
    from scipy.optimize import brentq

    def phi(z):
        return math.log1p(z) / z - 0.5

    return brentq(lambda t: phi(t) + phi(t / alpha), 1e-6, 1e3)


def vbmf_rank(M) -> int:
    """Rank picked by empirical variational Bayesian matrix factorization.

    The analytic global solution of fully observed EVBMF with the noise
    variance estimated by minimizing the free energy (Nakajima, Sugiyama,
    Babacan, Tomioka 2013, Theorem 13 and Eq. 41): components whose
    ``gamma_h^2 / (M sigma^2)`` exceeds ``(1 + tau)(1 + alpha / tau)`` are kept.

    Parameters
    ----------
    M : array, shape (a, b)
        Matrix (e.g. an unfolding of a kernel).

    Returns
    -------
    int
        The estimated rank, at least 1; the same for ``M`` and ``c M`` at
        any scale ``c > 0``.

    Raises
    ------
    TypeError
        If ``M`` is not a real array.
    ValueError
        If ``M`` is not 2-D or holds NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import vbmf_rank
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 80))
    >>> vbmf_rank(A + 0.1 * rng.standard_normal((60, 80)))
    5
    """
    M = to_numpy(check_tensor(M, name="M", min_ndim=2)).astype(np.float64)
    if M.ndim != 2:
        raise ValueError(f"M must be 2-D, got shape {M.shape}")
    if M.shape[0] > M.shape[1]:
        M = M.T
    L, Mdim = M.shape
    # the rank of c M is the rank of M; scaled by a power of two to a largest
    # entry in [1/2, 1) (exactly), the squared singular values neither
    # underflow (M near 1e-170) nor overflow (near 1e170)
    M = _pow2_normalized(np, M)[0]
    gamma = np.linalg.svd(M, compute_uv=False)
    g2 = gamma ** 2
    if g2[0] == 0.0:
        return 1
    alpha = L / Mdim
    tau = _tau_bar(alpha)
    xbar = (1 + tau) * (1 + alpha / tau)

    def free_energy(log_s2):
        s2 = math.exp(log_s2)
        x = g2 / (Mdim * s2)
        # psi_0(x) = x - log x, written so that zero singular values stay finite
        obj = float(np.sum(x) + L * math.log(Mdim * s2))
        big = x > xbar
        if np.any(big):
            z = x[big]
            t = 0.5 * (z - (1 + alpha) + np.sqrt((z - (1 + alpha)) ** 2 - 4 * alpha))
            obj += float(np.sum(np.log1p(t) + alpha * np.log1p(t / alpha) - t))
        return obj

    from scipy.optimize import minimize_scalar

    upper = float(g2.sum()) / (L * Mdim)
    h_max = max(0, min(int(math.ceil(L / (1 + alpha))) - 1, L - 1))
    tail = g2[h_max:]
    lower = max(float(g2[h_max]) / (Mdim * xbar), float(tail.mean()) / Mdim, upper * 1e-12)
    if lower >= upper:
        lower = upper * 1e-6
    grid = np.linspace(math.log(lower), math.log(upper), 64)
    vals = [free_energy(v) for v in grid]
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(free_energy, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    s2 = math.exp(res.x if res.fun <= vals[i] else grid[i])
    rank = int(np.sum(g2 / (Mdim * s2) > xbar))
    return max(1, rank)


def _check_kernel(K):
    K = check_tensor(K, name="K", min_ndim=4)
    if K.ndim != 4:
        raise ValueError(f"K must be a 4-D convolution kernel (out, in, kh, kw), got shape {tuple(K.shape)}")
    return K


def tucker2_conv(K, ranks="auto", *, max_iter: int = 10) -> TuckerConvFactors:
    """Tucker-2 split of a convolution kernel over its two channel modes.

    Parameters
    ----------
    K : array, shape (c_out, c_in, kh, kw)
        Kernel; not modified.
    ranks : 'auto' or (r_out, r_in)
        Channel ranks; 'auto' picks each by :func:`vbmf_rank` of the mode-0
        and mode-1 unfoldings. A rank above what the other modes can carry
        (``r_out > r_in kh kw`` or ``r_in > r_out kh kw``) is lowered to that
        bound: the extra directions would hold nothing.
    max_iter : int, default 10
        HOOI sweeps after the ST-HOSVD start (:func:`tensorapprox.tucker_als`);
        0 returns that start itself.

    Returns
    -------
    TuckerConvFactors
        ``first`` (r_in x c_in), ``core`` (r_out x r_in x kh x kw),
        ``last`` (c_out x r_out).

    Raises
    ------
    TypeError
        If ``K`` is not a real array or ``ranks`` is neither 'auto' nor a
        pair of ints.
    ValueError
        If ``K`` is not a finite 4-D kernel, a rank is outside
        ``[1, channels]`` or ``max_iter < 0``.

    Notes
    -----
    The a-priori Tucker-2 compression of Kim et al. (2016), "Compression of
    deep convolutional neural networks for fast and low power mobile
    applications", with ranks from EVBMF (Nakajima et al. 2013).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import tucker2_conv
    >>> K = np.random.default_rng(0).standard_normal((16, 8, 3, 3))
    >>> f = tucker2_conv(K, ranks=(4, 3))
    >>> f.first.shape, f.core.shape, f.last.shape
    ((3, 8), (4, 3, 3, 3), (16, 4))
    """
    from ..tucker import tucker_als

    K = _check_kernel(K)
    xp = get_namespace(K)
    c_out, c_in, kh, kw = (int(s) for s in K.shape)
    if isinstance(ranks, str):
        check_choice(ranks, name="ranks", choices=("auto",))
        r_out = min(vbmf_rank(unfold(K, 0)), c_out)
        r_in = min(vbmf_rank(unfold(K, 1)), c_in)
    else:
        try:
            r_out, r_in = ranks
        except (TypeError, ValueError):
            raise TypeError(f"ranks must be 'auto' or a pair (r_out, r_in), got {ranks!r}") from None
        r_out = check_int(r_out, name="ranks[0]", minimum=1, maximum=c_out)
        r_in = check_int(r_in, name="ranks[1]", minimum=1, maximum=c_in)
    max_iter = check_int(max_iter, name="max_iter", minimum=0)
    # a mode's rank cannot exceed the product of the others': once the
    # channels are projected, K x_0 U_out^T x_1 U_in^T has at most
    # r_in kh kw independent rows in mode 0 (and so on), so a larger rank
    # adds zero directions. Such ranks (an RGB input layer's r_out above
    # 3 kh kw, a 1 x 3 kernel's kw above r_out r_in) were passed to HOOI,
    # which refuses them; they are lowered, the fit is the same
    r_out = min(r_out, r_in * kh * kw)
    r_in = min(r_in, r_out * kh * kw)
    s_y = min(kh, r_out * r_in * kw)
    s_x = min(kw, r_out * r_in * s_y)
    res = tucker_als(K, rank=(r_out, r_in, s_y, s_x), max_iter=max_iter)
    T = res.tucker
    U_out, U_in, U_y, U_x = T.factors
    # the spatial modes are not compressed: their factors (square, or
    # kh x s_y with nothing outside their span) are folded into the core
    core = multi_mode_product(T.core, [U_y, U_x], modes=[2, 3])
    return TuckerConvFactors(first=xp.asarray(U_in.T), core=core, last=U_out)


def cp_conv(K, rank: int, *, max_iter: int = 200, tol: float = 1e-7, random_state=None) -> CPConvFactors:
    """Rank-``R`` CP split of a kernel into separable one-way filters (CP-ALS).

    Parameters
    ----------
    K : array, shape (c_out, c_in, kh, kw)
        Convolution kernel; not modified.
    rank : int
        Number ``R`` of CP terms (separable filters).
    max_iter : int, default 200
        Maximum number of ALS sweeps.
    tol : float, default 1e-7
        Stop when the relative error decreases by less than ``tol``.
    random_state : None, int or numpy.random.Generator
        Seed of the random start.

    Returns
    -------
    CPConvFactors
        Factors ``out``, ``inp``, ``vert``, ``horiz`` and the ``history`` of
        the relative error per sweep. Scaling ``K`` by a power of two scales
        the factors and leaves the history as it is; the fit is the same at
        any magnitude of ``K``.

    Raises
    ------
    TypeError
        If ``K`` is not a real array or an argument has the wrong type.
    ValueError
        If ``K`` is not a finite 4-D kernel, ``rank < 1``, ``max_iter < 1``
        or ``tol < 0``.

    Notes
    -----
    Lebedev et al. (2015), "Speeding-up convolutional neural networks using
    fine-tuned CP-decomposition": a 1x1, a kh x 1 and a 1 x kw depth-wise,
    and a 1x1 convolution.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import cp_conv
    >>> rng = np.random.default_rng(0)
    >>> A = [rng.standard_normal((n, 2)) for n in (6, 5, 3, 3)]
    >>> K = np.einsum('ar,br,cr,dr->abcd', *A)
    >>> f = cp_conv(K, rank=2, random_state=0)
    >>> bool(f.history[-1] < 1e-5)
    True
    """
    K = _check_kernel(K)
    xp = get_namespace(K)
    rank = check_int(rank, name="rank", minimum=1)
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    tol = check_positive_float(tol, name="tol", allow_zero=True)
    rng = check_random_state(random_state)
    shape = tuple(int(s) for s in K.shape)
    # the fit runs on K / 2^e with its largest entry in [1/2, 1) (exact), so
    # neither K's norm nor the Gram products of the factors under- or
    # overflow at any magnitude; the factors take 2^e back at the end
    K, e = _pow2_normalized(xp, K)
    normK = float(xp.linalg.vector_norm(K))
    A = [random_normal(xp, (n, rank), K.dtype, rng, like=K) for n in shape]
    unf = [unfold(K, k) for k in range(4)]
    history = []
    prev = math.inf
    for _ in range(max_iter):
        for k in range(4):
            V = xp.ones((rank, rank), dtype=K.dtype)
            for j in range(4):
                if j != k:
                    V = V * (A[j].T @ A[j])
            M = unf[k] @ khatri_rao(A, skip=k)
            # V is symmetric PSD; a pseudo-inverse copes with collinear columns
            A[k] = M @ xp.linalg.pinv(V, rtol=1e-12)
        err = float(xp.linalg.vector_norm(unf[0] - A[0] @ khatri_rao(A, skip=0).T)) / max(normK, 1e-300)
        history.append(err)
        if prev - err < tol * max(prev if math.isfinite(prev) else 1.0, 1e-300) and math.isfinite(prev):
            break
        prev = err
        # keep the columns balanced so no factor under- or overflows
        norms = [xp.linalg.vector_norm(Ak, axis=0) for Ak in A]
        g = (norms[0] * norms[1] * norms[2] * norms[3]) ** 0.25
        A = [Ak * (g / xp.where(nk > 0, nk, xp.ones_like(nk)))[None, :] for Ak, nk in zip(A, norms)]
    # 2^e shared out evenly, so the factors stay balanced
    quarter = e // 4
    A = [_times_pow2(xp, Ak, quarter + (e - 4 * quarter if k == 0 else 0)) for k, Ak in enumerate(A)]
    return CPConvFactors(out=A[0], inp=A[1], vert=A[2], horiz=A[3], history=tuple(history))


# ---------------------------------------------------------------------------
# tensor train
# ---------------------------------------------------------------------------

def _check_shape(shape, name):
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints, got {type(shape).__name__}") from None
    return tuple(check_int(s, name=f"{name}[{i}]", minimum=1) for i, s in enumerate(shape))


def tt_matrix(W, in_shape: Sequence[int], out_shape: Sequence[int], ranks=None, rtol=None) -> TTMatrix:
    """Tensor-train (MPO) factorization of a weight matrix by TT-SVD.

    Parameters
    ----------
    W : array, shape (prod(out_shape), prod(in_shape))
        Dense weight; not modified.
    in_shape, out_shape : sequence of int, same length d >= 2
        Factorizations of the column and row counts.
    ranks : int or sequence of d-1 ints, optional
        Maximal bond ranks (capped by the exact ranks, up to rounding, as
        found without ``ranks``).
    rtol : float in (0, 1), optional
        Relative error bound ``||W - T||_F <= rtol ||W||_F``; each of the d-1
        truncations discards at most ``rtol ||W|| / sqrt(d - 1)``.
        Without ``ranks`` and ``rtol`` the factorization is exact up to
        rounding: the same rule with ``rtol = 100 eps`` (``eps`` of ``W``'s
        dtype, whatever the shapes), so the result is within ``100 eps ||W||_F``
        and exact TT ranks are found in float32 too; a smaller ``rtol``
        counts as that rounding level. Both rules are relative: the ranks
        and the bound do not depend on the magnitude of ``W``.

    Returns
    -------
    TTMatrix
        The tensor-train cores with the factorizations ``in_shape`` and
        ``out_shape`` of the column and row counts.

    Raises
    ------
    TypeError
        If ``W`` is not a real array or a shape is not a sequence of ints.
    ValueError
        If ``W`` is not a finite 2-D matrix, ``in_shape`` and ``out_shape``
        differ in length or do not multiply to ``W.shape``, ``ranks`` does
        not have ``d - 1`` entries, or ``rtol`` is outside (0, 1).

    Notes
    -----
    TT-SVD (Oseledets 2011, Algorithm 1 and Theorem 2.2) of the matrix
    reshaped into a d-way tensor with merged row/column indices (Novikov et
    al. 2015, "Tensorizing neural networks"); the MPO layers of
    CompactifAI (Tomut et al. 2024).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import tt_matrix
    >>> W = np.random.default_rng(0).standard_normal((16, 12))
    >>> T = tt_matrix(W, in_shape=(3, 4), out_shape=(4, 4), rtol=0.5)
    >>> bool(np.linalg.norm(T.full() - W) <= 0.5 * np.linalg.norm(W))
    True
    """
    W = _check_matrix(W)
    xp = get_namespace(W)
    in_shape = _check_shape(in_shape, "in_shape")
    out_shape = _check_shape(out_shape, "out_shape")
    d = len(in_shape)
    if len(out_shape) != d or d < 2:
        raise ValueError(f"in_shape and out_shape need the same length d >= 2, got {in_shape} and {out_shape}")
    if (math.prod(out_shape), math.prod(in_shape)) != tuple(int(s) for s in W.shape):
        raise ValueError(f"W has shape {tuple(W.shape)} but out_shape x in_shape gives "
                         f"({math.prod(out_shape)}, {math.prod(in_shape)})")
    if ranks is not None:
        if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
            ranks = (int(ranks),) * (d - 1)
        ranks = _check_shape(ranks, "ranks")
        if len(ranks) != d - 1:
            raise ValueError(f"ranks needs d - 1 = {d - 1} entries, got {len(ranks)}")
    # the sweep runs on W / 2^e with its largest entry in [1/2, 1) (exact), so
    # ||W|| and the squared singular values neither overflow (W near 1e170)
    # nor underflow (near 1e-170); the last core takes 2^e back
    W, e = _pow2_normalized(xp, W)
    # the rounding level of W's own precision (float32's is 2^29 times float64's).
    # Each truncation drops the tail of its spectrum while the tail's norm
    # stays within tol ||W|| / sqrt(d - 1), so the whole result is within
    # tol ||W|| (Oseledets, Theorem 2.2). Without rtol, tol = 100 eps: W's
    # entries carry the rounding of whatever computed them (a sum of products
    # in W's dtype puts a few eps on each) and each SVD adds a few eps ||C||;
    # at the exact TT ranks the tails reach 24 eps ||W|| / sqrt(d - 1) on
    # float64 TT matrices formed from their cores (0.6 on float32 casts), so
    # 100 leaves a fourfold margin, and the result stays within 100 eps ||W||
    # (1e-5 in float32, 2e-14 in float64) whatever the shapes. The floor it
    # replaces, 100 eps max(C.shape) sigma_1 per value, grew with the width
    # of the unfolding: a float32 1024 x 1024 weight split (2, 512) x
    # (2, 512) kept rank 1 of 4 (error 0.87), and explicit ranks were cut
    # the same way
    eps = float(xp.finfo(W.dtype).eps)
    tol = 100.0 * eps
    if rtol is not None:
        # an rtol below the rounding level would keep only rounding noise
        tol = max(check_rtol(rtol), tol)
    delta = tol * float(xp.linalg.vector_norm(W)) / math.sqrt(d - 1)
    T = xp.reshape(W, out_shape + in_shape)
    perm = []
    for k in range(d):
        perm += [k, d + k]
    T = xp.permute_dims(T, tuple(perm))
    sizes = [out_shape[k] * in_shape[k] for k in range(d)]
    C = xp.reshape(T, (sizes[0], -1))
    cores = []
    r_prev = 1
    for k in range(d - 1):
        C = xp.reshape(C, (r_prev * sizes[k], -1))
        U, s, Vt = xp.linalg.svd(C, full_matrices=False)
        s_np = to_numpy(s).astype(np.float64)
        # tails[j]: the norm of what rank j discards; the smallest rank whose
        # tail is within delta (the exact rank, up to rounding, without rtol)
        tails = np.concatenate([np.sqrt(np.cumsum((s_np ** 2)[::-1])[::-1]), [0.0]])
        r = max(1, int(np.nonzero(tails <= delta)[0][0]))
        # explicit ranks cap it; above the rounding-level rank they would
        # only keep rounding noise
        if ranks is not None:
            r = min(r, ranks[k])
        # a copy of the r kept columns: a view would keep the whole U alive
        cores.append(_owned(xp, xp.reshape(U[:, :r], (r_prev, out_shape[k], in_shape[k], r))))
        C = s[:r, None] * Vt[:r, :]
        r_prev = r
    C = _times_pow2(xp, C, e)
    cores.append(xp.reshape(C, (r_prev, out_shape[-1], in_shape[-1], 1)))
    return TTMatrix(tuple(cores), in_shape, out_shape)
