"""Matrix completion by alternating minimization with exact or inexact row solves.

``altmin_complete`` fits ``X ~ mu + b_row + b_col + U diag(s) V^T`` to observed
entries. Each pass solves one small least-squares problem per column, then
one per row, either exactly (the Jain--Netrapalli--Sanghavi baseline) or
approximately (warm-started CG, or the sketch-and-precondition solver of Gu,
Song, Yin and Zhang), which brings a pass from O(|Omega| k^2) to about
O(|Omega| k) while keeping linear convergence.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .._array import check_random_state
from .._kernels.completion import diag_shift, sampled_dot, solve_rows_exact, solve_rows_iterative
from .._validation import check_bool, check_choice, check_int, check_positive_float
from .lowrank import LowRankMatrix
from ._partitioned import is_partitioned
from .observations import Observations, _as_1d, _check_shape, _check_validation, _pair_order, check_observations

__all__ = ["altmin_complete", "CompletionResult", "randomized_svd_sparse"]

_SOLVERS = ("sketch", "cg", "exact")
_INITS = ("svd", "random")


# --------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CompletionResult:
    """Result of :func:`altmin_complete` (and :func:`soft_impute`).

    Attributes
    ----------
    matrix : LowRankMatrix
        The low-rank part ``U diag(s) V^T`` (orthonormal factors).
    n_iter : int
        Passes run (one pass updates both factors).
    converged : bool
        Whether the stopping rule was met before ``max_iter`` (never for a
        non-finite residual).
    history : ndarray, shape (n_iter,)
        Relative residual on the observed entries after each pass,
        ``||P_Omega(prediction - values)|| / ||values||``.
    test_history : ndarray, shape (n_iter,)
        Relative error on the validation entries after each pass (empty
        without a validation set).
    inner_steps : ndarray, shape (n_iter,)
        Mean inner iterations per row and half-step (zeros for ``exact``;
        a ``'sketch'`` row finished by its normal equations, see
        ``inner_max_iter``, counts the steps it took before).
    global_mean : float
        ``mu``, 0 without biases.
    row_bias, col_bias : ndarray or None
        Per-row and per-column offsets (``None`` without biases).
    solver : str
        The row solver used.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion import altmin_complete
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2)) @ rng.standard_normal((2, 30))
    >>> r, c = np.nonzero(rng.random(X.shape) < 0.5)
    >>> res = altmin_complete(r, c, X[r, c], X.shape, 2, solver="exact", random_state=0)
    >>> res.matrix.shape, res.n_iter == len(res.history)
    ((40, 30), True)
    """

    matrix: LowRankMatrix
    n_iter: int
    converged: bool
    history: np.ndarray
    test_history: np.ndarray
    inner_steps: np.ndarray
    global_mean: float = 0.0
    row_bias: np.ndarray | None = None
    col_bias: np.ndarray | None = None
    solver: str = ""

    def predict(self, rows, cols) -> np.ndarray:
        """Completed entries at ``(rows, cols)``, biases and global mean included.

        Parameters
        ----------
        rows, cols : array_like of int, shape (m,)
            Indices of the entries to predict.

        Returns
        -------
        ndarray, shape (m,)
            The predictions (an empty float array for empty ``rows`` and ``cols``).

        Raises
        ------
        ValueError
            If an index is out of range, or ``rows`` and ``cols`` differ in length.
        TypeError
            If the indices are not integers.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion import altmin_complete
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 20))
        >>> r, c = np.nonzero(rng.random(X.shape) < 0.6)
        >>> res = altmin_complete(r, c, X[r, c], X.shape, 2, solver="exact", random_state=0)
        >>> bool(np.allclose(res.predict([0, 29], [0, 19]), X[[0, 29], [0, 19]]))
        True
        """
        # validates the indices (an empty list of any dtype gives no entries)
        out = np.asarray(self.matrix.entries(rows, cols)) + self.global_mean
        if out.shape[0] == 0:
            return out
        rows = np.asarray(rows)
        cols = np.asarray(cols)
        if self.row_bias is not None:
            out = out + self.row_bias[rows]
        if self.col_bias is not None:
            out = out + self.col_bias[cols]
        return out

    def rmse(self, rows, cols, values) -> float:
        """Root-mean-square error of :meth:`predict` against ``values``.

        Parameters
        ----------
        rows, cols : array_like of int, shape (m,)
            Indices of held-out entries.
        values : array_like of float, shape (m,)
            Their true values.

        Returns
        -------
        float
            ``sqrt(mean((predict(rows, cols) - values)**2))``.

        Raises
        ------
        ValueError
            If an index is out of range, ``rows``, ``cols`` and ``values``
            differ in length or are empty, ``values`` is not 1-D, or a value
            is NaN or Inf.
        TypeError
            If the indices are not integers or ``values`` is not real numbers.

        Examples
        --------
        >>> import numpy as np
        >>> from tensorapprox.completion import altmin_complete
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 20))
        >>> r, c = np.nonzero(rng.random(X.shape) < 0.6)
        >>> res = altmin_complete(r, c, X[r, c], X.shape, 2, solver="exact", random_state=0)
        >>> bool(res.rmse([1, 2], [3, 4], X[[1, 2], [3, 4]]) < 1e-8)
        True
        """
        pred = self.predict(rows, cols)
        values = _as_1d(values, "values")
        if values.dtype == bool or np.iscomplexobj(values) or not np.issubdtype(values.dtype, np.number):
            raise TypeError(f"values must hold real numbers, got dtype {values.dtype}")
        if values.shape[0] != pred.shape[0]:
            # a scalar or a short array broadcast against the predictions
            raise ValueError(f"values must have the length of rows and cols, got {values.shape[0]} and "
                             f"{pred.shape[0]}")
        if pred.shape[0] == 0:
            raise ValueError("no entries to score: rows, cols and values are empty; the RMSE of none is undefined")
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"values contains {int(bad.sum())} NaN or Inf entries (first at position "
                             f"{int(np.argmax(bad))})")
        err = pred - values.astype(np.float64)
        return float(np.sqrt(np.mean(err * err)))


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def randomized_svd_sparse(A, k: int, rng: np.random.Generator, *, n_oversample: int = 10, n_power: int = 4,
                          start=None):
    """Top-``k`` SVD of a sparse matrix or linear operator, never forming it dense.

    Randomized range finder with ``n_power`` QR-stabilized power iterations
    (Halko, Martinsson, Tropp 2011, Alg. 4.4).

    Parameters
    ----------
    A : scipy sparse matrix or LinearOperator, shape (n1, n2)
        Needs ``@`` and ``.T`` (scipy sparse) or ``matmat``/``rmatmat``.
    k : int
        Number of singular triplets.
    rng : numpy.random.Generator
        Source of the random test matrix.
    n_oversample : int, default 10
        Extra columns of the sketch.
    n_power : int, default 4
        Power iterations.
    start : ndarray, shape (n2, j), optional
        Seeds the subspace (warm start); random columns fill it up to
        ``k + n_oversample``.

    Returns
    -------
    U : ndarray, shape (n1, k)
        Orthonormal left singular vectors.
    s : ndarray, shape (k,)
        Descending singular values.
    V : ndarray, shape (n2, k)
        Orthonormal right singular vectors.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a QR or SVD of the small matrices fails (non-finite input).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from tensorapprox.completion.altmin import randomized_svd_sparse
    >>> A = sp.random(60, 50, density=0.2, random_state=0, format="csr")
    >>> U, s, V = randomized_svd_sparse(A, 3, np.random.default_rng(0), n_power=8)
    >>> bool(np.allclose(s, np.linalg.svd(A.toarray(), compute_uv=False)[:3]))
    True
    """
    n1, n2 = A.shape
    L = min(k + n_oversample, min(n1, n2))
    matmat = A.matmat if hasattr(A, "matmat") else (lambda X: A @ X)
    rmatmat = A.rmatmat if hasattr(A, "rmatmat") else (lambda X: A.T @ X)
    Om = rng.standard_normal((n2, L))
    if start is not None:
        j = min(start.shape[1], L)
        Om[:, :j] = start[:, :j]
    Q, _ = np.linalg.qr(np.asarray(matmat(Om)))
    for _ in range(n_power):
        Z, _ = np.linalg.qr(np.asarray(rmatmat(Q)))
        Q, _ = np.linalg.qr(np.asarray(matmat(Z)))
    B = np.asarray(rmatmat(Q)).T  # (L, n2) = Q^T A
    W, s, Vt = np.linalg.svd(B, full_matrices=False)
    return Q @ W[:, :k], s[:k], Vt[:k].T


def sketch_keys(seed: int, rows: np.ndarray, cols: np.ndarray, n2: int) -> np.ndarray:
    """CountSketch keys of observed entries: a hash (splitmix64) of ``(seed, row, col)``.

    The key of an entry depends on the entry only, not on where it is stored,
    so a solver that holds the observations in partitions draws the same
    sketches as one that holds them whole.
    """
    z = (rows.astype(np.uint64) * np.uint64(n2) + cols.astype(np.uint64)) + np.uint64(seed)
    z = z * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(2)).astype(np.int64)  # 62 random bits, non-negative


def _layout(rows, cols, vals, n, by_row: bool, seed: int, shape, lo: int = 0):
    """Compressed layout (CSR when ``by_row``, else CSC) of entries of rows/cols ``lo .. lo + n``.

    Entries must already be sorted by (row, col) for CSR; for CSC they are
    sorted here by (col, row). Returns ``(indptr, indices, vals, other, keys)``
    where ``indices`` are the global indices of the other side and ``other``
    the global index of the compressed side of each entry.
    """
    if by_row:
        major, minor = rows, cols
    else:
        perm = _pair_order(cols, rows, shape[1], shape[0])  # no int64 key overflow for huge shapes
        rows, cols, vals = rows[perm], cols[perm], vals[perm]
        major, minor = cols, rows
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(major - lo, minlength=n), out=indptr[1:])
    keys = sketch_keys(seed, rows, cols, shape[1])
    return indptr, minor, vals, major, keys


class _Solver:
    """Per-row solves of one half-step over a compressed layout (shared by every backend)."""

    def __init__(self, solver, regularization, inner_rtol, inner_max_iter, sketch_size, precond=None, scale=1.0):
        self.solver = solver
        self.reg = regularization
        self.inner_rtol = inner_rtol
        self.inner_max_iter = inner_max_iter
        self.sketch_size = sketch_size
        self.precond = precond
        self.scale = scale  # the observed values are solved for in units of ``scale``

    def adapted(self, factor: float = 1.0, precond=None) -> "_Solver":
        """The same solver with its inner tolerance times ``factor`` and the given preconditioner."""
        return _Solver(self.solver, self.reg, self.inner_rtol * factor, self.inner_max_iter, self.sketch_size,
                       precond, self.scale)

    def __call__(self, layout, F, X0, mu, b_other, want_rss):
        """``(X, rss sum, inner steps sum)`` for the rows of ``layout`` (in units of ``scale``)."""
        indptr, indices, vals, _, keys = layout
        if self.scale != 1.0:
            vals = vals / self.scale
        targets = vals if b_other is None and mu == 0.0 else vals - mu - b_other[indices]
        if self.solver == "exact":
            X, rss = solve_rows_exact(indptr, indices, targets, F, self.reg, want_rss)
            steps = 0.0
        else:
            X, rss, st = solve_rows_iterative(
                indptr, indices, targets, F, self.reg, X0, self.inner_rtol, self.inner_max_iter,
                self.sketch_size if self.solver == "sketch" else 0, keys, want_rss, self.precond,
            )
            steps = float(np.sum(st))
        return X, float(np.sum(rss)), steps


class _InMemory:
    """CSR and CSC views of the observations, built once per fit."""

    def __init__(self, obs: Observations, seeds):
        n1, n2 = obs.shape
        self.obs = obs
        self.shape = obs.shape
        self.nnz = obs.nnz
        self.dtype = obs.values.dtype
        # observations are sorted by (row, col): that is the CSR order
        self.csr = _layout(obs.rows, obs.cols, obs.values, n1, True, seeds[0], obs.shape)
        self.csc = _layout(obs.rows, obs.cols, obs.values, n2, False, seeds[1], obs.shape)
        self.row_counts = np.diff(self.csr[0])
        self.col_counts = np.diff(self.csc[0])
        self.max_abs = float(np.max(np.abs(obs.values)))
        # the norm and the mean from the values over their largest: no
        # overflow or underflow (a plain sum overflowed for values near 1e305)
        top = self.max_abs if self.max_abs > 0 else 1.0
        w = obs.values / top
        self.norm_values = top * float(np.linalg.norm(w))
        self.mean_values = top * float(np.mean(w))

    def operator(self, mu: float, p: float):
        obs = self.obs
        M = sp.csr_matrix(((obs.values - mu) / p, (obs.rows, obs.cols)), shape=obs.shape)
        return M

    def solve(self, side, F, X0, mu, b_other, step: _Solver, want_rss):
        X, rss, steps = step(self.csc if side == "col" else self.csr, F, X0, mu, b_other, want_rss)
        return X, rss, steps / max(1, X.shape[0])


# --------------------------------------------------------------------------
# the solver
# --------------------------------------------------------------------------
def altmin_complete(
    rows,
    cols,
    values,
    shape,
    rank: int,
    solver: str = "sketch",
    tol: float = 1e-10,
    max_iter: int = 50,
    init: str | LowRankMatrix = "svd",
    regularization: float = 0.0,
    biases: bool = False,
    random_state=None,
    callback: Callable[[int, float], bool | None] | None = None,
    progress: bool = False,
    *,
    validation=None,
    duplicates: str = "error",
    inner_rtol: float = 0.1,
    inner_max_iter: int | None = None,
    sketch_size: int | None = None,
    orthonormalize: bool | None = None,
) -> CompletionResult:
    """Low-rank matrix completion by alternating minimization.

    Parameters
    ----------
    rows, cols : array_like of int, shape (m,)
        0-based indices of the observed entries. Partitioned observations
        (extra ``dask``) are given as 1-D Dask arrays with the same chunks
        (one partition a chunk) or as lists of 1-D blocks (COO partitions);
        see Notes.
    values : array_like of float, shape (m,)
        Observed values (partitioned like ``rows``).
    shape : tuple of int
        ``(n1, n2)``.
    rank : int
        Target rank ``k``, ``1 <= k <= min(shape)``; the observations must
        number at least ``(n1 + n2) * k``, the unknowns of the two factors
        (so ``k <= n1 n2 / (n1 + n2)`` even when every entry is observed).
    solver : {'sketch', 'cg', 'exact'}, default 'sketch'
        Per-row least-squares solver: ``'exact'`` normal equations (the JNS
        baseline, O(|Omega| k^2) a pass); ``'cg'`` warm-started conjugate
        gradients; ``'sketch'`` CG preconditioned by a CountSketch of each
        row's design matrix (Gu et al.). The last two cost O(|Omega| k) a step.
        With orthonormalized factors (the default without regularization or
        biases) every row is well conditioned: ``'cg'`` needs about two
        steps and is the fastest, and the sketched preconditioner costs more
        than it saves (``python benchmarks/bench_completion.py a1``). Without
        orthonormalization ``'cg'`` is preconditioned by one Cholesky factor
        of ``F^T F / n_F + regularization I`` shared by all rows.
    tol : float, default 1e-10
        Stop when the relative residual on the observed entries drops below
        ``tol``, or when it changes by less than ``tol`` (relative) in a pass.
    max_iter : int, default 50
        Maximum number of passes.
    init : {'svd', 'random'} or LowRankMatrix, default 'svd'
        ``'svd'``: top-k SVD of the rescaled sparse observed matrix (randomized,
        never dense), rows of large norm clipped for incoherence, then QR.
        A ``LowRankMatrix`` of shape ``shape`` and rank ``rank`` warm-starts
        from it.
    regularization : float, default 0.0
        Ridge weight ``lam``; row ``i``'s problem gets ``lam * |Omega_i|``
        (ALS-WR scaling). With ``lam > 0`` or biases the factors are not
        re-orthonormalized between half-steps (plain regularized ALS).
    biases : bool, default False
        Fit a global mean and per-row/per-column offsets alongside the factors.
    random_state : None, int or numpy.random.Generator
        Seeds the initialization and the sketches.
    callback : callable, optional
        ``callback(n_iter, residual)`` after each pass; return ``True`` to stop.
    progress : bool, default False
        Print one line per pass to stderr (and, for partitioned observations,
        show Dask's progress bar for every half-step).
    validation : tuple (rows, cols, values), optional
        Held-out entries (repeated pairs averaged); their relative error is
        recorded each pass. Errors about them name them (``validation rows``).
    duplicates : {'error', 'mean'}, default 'error'
        Handling of repeated ``(row, col)`` pairs.
    inner_rtol : float, default 0.1
        Inner tolerance of ``'cg'``/``'sketch'``: each row's iteration stops
        when its normal-equation residual (for ``'sketch'``: the residual
        preconditioned by the row's sketched normal matrix, an estimate of
        the row's error) has dropped by this factor from its warm-started
        value (which is proportional to the current outer residual). The
        factor is multiplied by the spread ``s_min / s_max`` of the singular
        values of the warm start (always for ``'cg'``, for ``'sketch'`` with
        orthonormalized factors), so that the weakest direction of the
        solution is resolved to the same relative accuracy as the strongest.
        In ``[0, 1)``: ``0`` iterates until the cap ``inner_max_iter`` or
        until the row is solved to round-off, whichever comes first.
    inner_max_iter : int, optional
        Cap on inner steps per row and half-step (default: the number of
        unknowns per row, where CG is exact in exact arithmetic). With a cap
        of at least that number, a ``'sketch'`` row the steps leave short of
        its target is solved by its normal equations instead (a badly
        distorted sketch can keep the steps from converging); a smaller cap
        is an inexact solve asked for, and kept.
    sketch_size : int, optional
        Rows of the CountSketch for ``'sketch'`` (default ``2 * unknowns``).
    orthonormalize : bool, optional
        Re-orthonormalize the fixed factor by QR before each half-step (JNS).
        Default: ``True`` when ``regularization == 0`` and ``biases=False``.

    Returns
    -------
    CompletionResult
        The fitted matrix, ``n_iter``, ``converged``, ``history``; call
        ``result.predict(rows, cols)`` for completed entries.

    Raises
    ------
    TypeError
        If an index array is not integer or an argument has the wrong type.
    ValueError
        If the arrays differ in length, an index is out of range, a value is
        NaN or Inf, a pair repeats, the input is empty, ``rank`` is out of
        ``[1, min(shape)]``, or there are fewer than ``(n1 + n2) * rank``
        observations; for partitioned input also Dask arrays with different
        or unknown (NaN) chunks, or a partition above the block cap.
    ImportError
        Partitioned input without the ``dask`` extra installed.
    FloatingPointError
        If the residual on the observed entries becomes NaN or Inf (the
        iteration diverged); a non-finite residual is never convergence.

    Warns
    -----
    UserWarning
        If a row or column has no observation; its factor row (and bias) is
        then zero and its predictions fall back to the mean and the other bias.

    Notes
    -----
    Alternating minimization for completion follows Jain, Netrapalli and
    Sanghavi, "Low-rank matrix completion using alternating minimization",
    STOC 2013 (Alg. 2 without sample splitting): SVD of the rescaled
    observed matrix, trimming, then alternate exact least-squares updates
    with QR of the fixed factor. Gu, Song, Yin and Zhang, "Low rank matrix
    completion via robust alternating minimization in nearly linear time",
    arXiv:2302.11068 (ICLR 2024), show the outer iteration tolerates
    approximate row solves and use a sketch-and-precondition regression
    solver: sketch ``S A`` with a sparse embedding, factor it (their QR; here
    Cholesky of ``(SA)^T SA``, the same ``R``), and iterate on the
    preconditioned problem from a warm start to a relative accuracy tied to
    the current error (their Alg. 1 and Sec. 4). We iterate with
    preconditioned CG instead of their gradient descent; both cost
    O(|Omega_i| k) per step. Regularization and biases follow ALS-WR (Zhou et
    al., 2008).

    **Scale of the values.** Values whose largest magnitude lies outside
    ``[2^-30, 2^30]`` are solved for in units of a power of two near it
    (exact), so that the solvers' squares neither underflow nor overflow:
    without ``regularization`` the fit of ``s * M`` is ``s`` times the fit
    of ``M``; a ridge weight ``lam`` enters as ``lam / s``, the same problem.
    With ``biases=True`` the values are always solved for in units of the
    power of four that brings their largest magnitude into ``[1, 4)``: the
    ones column of the biases does not scale with the values, and the small
    diagonal shift that keeps each row's normal equations solvable is set
    for unit-scale columns. The biases scale by ``s`` and keep the ridge
    weight ``lam``, the factors (``sqrt(s)`` times theirs) take ``lam / s``:
    the same ALS-WR problem, whatever the scale. The results, the history
    and the biases are given back in the units of the values (exactly: the
    unit is a power of two).

    **Partitioned observations (Dask).** Observations given as Dask arrays
    or lists of COO blocks are shuffled once into row blocks and column
    blocks (as many as input partitions), validated block by block and
    persisted where Dask keeps data: this process with the local schedulers,
    the workers with a ``dask.distributed.Client``. Each half-step solves its
    rows block by block with the other side's factor broadcast once. The
    per-row problems and the sketch keys (a hash of ``(row, col)``) are those
    of the in-memory solver, so the result is the same to rounding (about
    1e-13 in practice). A block larger than the Dask config value
    ``tensorapprox.max-block-bytes`` is refused with the repartitioning to do.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.completion import altmin_complete
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 150))
    >>> r, c = np.nonzero(rng.random(X.shape) < 0.3)
    >>> res = altmin_complete(r, c, X[r, c], X.shape, 3, solver="cg", random_state=0)
    >>> res.converged, bool(res.history[-1] < 1e-10)
    (True, True)
    >>> bool(np.linalg.norm(res.matrix.full() - X) / np.linalg.norm(X) < 1e-8)
    True

    The same observations in three partitions give the same result:

    >>> parts = np.array_split(np.arange(r.size), 3)
    >>> res3 = altmin_complete([r[p] for p in parts], [c[p] for p in parts], [X[r, c][p] for p in parts],
    ...                        X.shape, 3, solver="cg", random_state=0)
    >>> bool(np.abs(res3.matrix.full() - res.matrix.full()).max() < 1e-10)
    True
    """
    partitioned = is_partitioned(rows, cols, values)
    if partitioned:
        check_choice(duplicates, name="duplicates", choices=("error", "mean"))
        n1, n2 = _check_shape(shape)
        obs = None
    else:
        obs = check_observations(rows, cols, values, shape, duplicates=duplicates)
        n1, n2 = obs.shape
    check_choice(solver, name="solver", choices=_SOLVERS)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise TypeError(f"rank must be an int, got {type(rank).__name__}")
    if not 1 <= int(rank) <= min(n1, n2):
        raise ValueError(f"rank must be in [1, min(shape)] = [1, {min(n1, n2)}], got {rank}")
    k = int(rank)
    if obs is not None:
        _check_enough(obs.nnz, n1, n2, k)
    tol = check_positive_float(tol, name="tol")
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    regularization = check_positive_float(regularization, name="regularization", allow_zero=True)
    inner_rtol = check_positive_float(inner_rtol, name="inner_rtol", allow_zero=True)
    if inner_rtol >= 1.0:
        # a factor of 1 or more asks no progress: every row kept its warm
        # start, two equal passes then read as convergence
        raise ValueError(f"inner_rtol must be in [0, 1), got {inner_rtol}")
    biases = check_bool(biases, name="biases")
    progress = check_bool(progress, name="progress")  # progress="no" printed every pass
    if orthonormalize is not None and not isinstance(orthonormalize, (bool, np.bool_)):
        raise TypeError(f"orthonormalize must be None, True or False, got {type(orthonormalize).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if isinstance(init, LowRankMatrix):
        if init.shape != (n1, n2):
            raise ValueError(f"init has shape {init.shape} but shape is {(n1, n2)}; pass a matching LowRankMatrix")
        if init.rank != k:
            # a warm start of another rank silently changed the rank of the result
            raise ValueError(f"init has rank {init.rank} but rank is {k}; pass a LowRankMatrix of rank {k}")
    else:
        check_choice(init, name="init", choices=_INITS)
    q = k + (1 if biases else 0)
    if inner_max_iter is None:
        inner_max_iter = q
    inner_max_iter = check_int(inner_max_iter, name="inner_max_iter", minimum=1)
    if sketch_size is None:
        sketch_size = 2 * q
    sketch_size = check_int(sketch_size, name="sketch_size", minimum=q)
    if orthonormalize is None:
        orthonormalize = regularization == 0.0 and not biases
    if orthonormalize and (biases or regularization > 0):
        raise ValueError("orthonormalize=True needs regularization=0 and biases=False (plain JNS iteration)")
    val = None
    if validation is not None:
        try:
            vr, vc, vv = validation
        except (TypeError, ValueError):
            raise TypeError("validation must be a tuple (rows, cols, values)") from None
        val = _check_validation(vr, vc, vv, (n1, n2))
    rng = check_random_state(random_state)
    seeds = [int(x) for x in rng.integers(0, 2**62, size=2)]
    if partitioned:
        from ._partitioned import PartitionedObservations

        backend = PartitionedObservations(rows, cols, values, (n1, n2), duplicates=duplicates, seeds=seeds,
                                          progress=progress)
        _check_enough(backend.nnz, n1, n2, k)
    else:
        backend = _InMemory(obs, seeds)
    return _fit(backend, k=k, solver=solver, tol=tol, max_iter=max_iter, init=init, regularization=regularization,
                biases=bool(biases), rng=rng, callback=callback, progress=progress, val=val,
                inner_rtol=inner_rtol, inner_max_iter=inner_max_iter, sketch_size=sketch_size,
                orthonormalize=orthonormalize)


def _check_enough(nnz, n1, n2, k):
    need = (n1 + n2) * k
    if nnz < need:
        raise ValueError(
            f"{nnz} observations are fewer than the (n1 + n2) * rank = ({n1} + {n2}) * {k} = {need} "
            f"unknowns of the two factors; observe at least {need} entries or lower the rank"
        )


def _fit(backend, *, k, solver, tol, max_iter, init, regularization, biases, rng, callback, progress, val,
         inner_rtol, inner_max_iter, sketch_size, orthonormalize) -> CompletionResult:
    """The alternating iteration, on any backend holding the observations (in memory or partitioned)."""
    n1, n2 = backend.shape
    n_empty_rows = int(np.sum(backend.row_counts == 0))
    n_empty_cols = int(np.sum(backend.col_counts == 0))
    if n_empty_rows or n_empty_cols:
        warnings.warn(
            f"{n_empty_rows} rows and {n_empty_cols} columns have no observation; their factor rows "
            "(and biases) are set to zero, so their predictions are the global mean plus the other bias",
            UserWarning,
            stacklevel=3,
        )

    dtype = backend.dtype
    # Values far from 1 in size are solved for in units of a power of two
    # (exact): squares of values near 1e-150 underflowed and near 1e150
    # overflowed in the iterative solvers' inner products (a division by
    # zero). The fit is the same problem in those units: with M = s M' and
    # both factors sqrt(s) times theirs, the ridge weight becomes lam / s.
    # With biases (s times theirs) the bias unknown keeps lam, and the values
    # are always brought near 1: the ones column of the biases does not
    # scale with the values, and the kernels' diagonal shift without a ridge
    # (relative to the mean of all columns' squares) otherwise acted as a
    # large ridge on the factors (small values) or on the biases (large
    # values), a fit 50% off in float32 at 1e-6.
    vscale = _value_scale(backend.max_abs, 0 if biases else None)
    if biases:
        # factors sqrt(vscale) times theirs take lam / vscale, the biases
        # (vscale times theirs) keep lam: the same ALS-WR problem
        regularization = np.array([regularization / vscale] * k + [regularization])
    else:
        regularization = regularization / vscale
    mu = backend.mean_values / vscale if biases else 0.0
    step = _Solver(solver, regularization, inner_rtol, inner_max_iter, sketch_size, scale=vscale)

    # ---------------- initialization (never dense)
    if isinstance(init, LowRankMatrix):
        # U diag(s) V^T = (U sqrt|s|) (V sign(s) sqrt|s|)^T: negative weights
        # (a valid LowRankMatrix) gave NaN factors through sqrt(s)
        s0 = np.asarray(init.s, dtype=dtype) / vscale
        A0 = np.asarray(init.U, dtype=dtype) * np.sqrt(np.abs(s0))
        B0 = np.asarray(init.V, dtype=dtype) * (np.sign(s0) * np.sqrt(np.abs(s0)))
    else:
        p_obs = backend.nnz / (n1 * n2)
        M = backend.operator(mu * vscale, p_obs * vscale)  # (values - mean) / p, in units of vscale
        if init == "svd":
            Ui, si, Vi = randomized_svd_sparse(M, k, rng)
            # trimming for incoherence: clip rows whose norm exceeds 3x the RMS
            # row norm sqrt(k/n1) of an orthonormal n1 x k matrix
            thr = 3.0 * math.sqrt(k / n1)
            rn = np.linalg.norm(Ui, axis=1)
            big = rn > thr
            Ui[big] *= (thr / rn[big])[:, None]
            Qu, _ = np.linalg.qr(Ui)
        else:
            Qu, _ = np.linalg.qr(rng.standard_normal((n1, k)))
            si = None
        MtQ = np.asarray(M.rmatmat(Qu) if hasattr(M, "rmatmat") else M.T @ Qu)
        if orthonormalize:
            A0, B0 = Qu, MtQ
        else:
            if si is None:
                si = np.linalg.svd(MtQ, compute_uv=False)
            scale = np.sqrt(np.maximum(si, 0.0))
            A0 = Qu * scale
            B0 = MtQ / np.where(scale > 0, scale, 1.0)
    A0 = np.ascontiguousarray(A0, dtype=dtype)
    B0 = np.ascontiguousarray(B0, dtype=dtype)

    bu = np.zeros(n1, dtype=dtype)
    bv = np.zeros(n2, dtype=dtype)

    def solve(side, F, X0, b_other=None):
        # the fit is monitored after the row half-step only
        st = step
        if (orthonormalize and solver != "exact") or solver == "cg":
            # An inner error relative to the warm start's distance must shrink
            # by the spread s_min / s_max of the solution (here: of its warm
            # start), or its weak directions never settle: with orthonormalized
            # factors the next QR divides them, and their error, by s_min;
            # without, the solution is the next half-step's design matrix. At
            # the unscaled default tolerance CG stalled on targets whose
            # singular values span 10^2.5 to 10^3. (The sketched solver
            # without the QR keeps its unscaled tolerance: it measures the
            # preconditioned residual, an estimate of each row's error in
            # which the weak directions count in full.)
            sv = np.linalg.svd(X0, compute_uv=False)
            spread = float(sv[-1] / sv[0]) if sv[0] > 0 else 0.0
            precond = None
            if solver == "cg" and not orthonormalize:
                # Without the QR the fixed factor F may be badly conditioned,
                # and so is every row's F[J_i]: precondition all rows by one
                # Cholesky factor of F^T F / n_F + reg I (under uniform
                # sampling each row's normal matrix is about |J_i| times it).
                # Unpreconditioned CG diverged on exactly low-rank targets.
                G = F.T @ F / max(F.shape[0], 1)
                G[np.diag_indices_from(G)] += diag_shift(np.diag(G), regularization, G.dtype)
                try:
                    precond = np.linalg.cholesky(G)
                except np.linalg.LinAlgError:
                    precond = None  # a zero or non-finite factor: plain CG
            st = step.adapted(spread, precond)
        return backend.solve(side, np.ascontiguousarray(F), X0, mu, b_other, st, side == "row")

    history, test_history, inner_steps = [], [], []
    converged = False
    U = A0  # orthonormal in JNS mode
    V = B0  # warm start for the first column solve
    ones_r = np.ones((n1, 1), dtype=dtype)
    ones_c = np.ones((n2, 1), dtype=dtype)
    norm_values = backend.norm_values / vscale
    it = 0
    for it in range(1, max_iter + 1):
        if orthonormalize:
            V, _, s1 = solve("col", U, V)
            Qv, Rv = np.linalg.qr(V)
            U, rss, s2 = solve("row", Qv, U @ Rv.T)
            Qu, Ru = np.linalg.qr(U)
            U, V = Qu, Qv @ Ru.T
        else:
            if biases:
                F = np.hstack([U, ones_r])
                X0 = np.hstack([V, bv[:, None]])
                W, _, s1 = solve("col", F, X0, bu)
                V, bv = np.ascontiguousarray(W[:, :k]), W[:, k].copy()
                F = np.hstack([V, ones_c])
                X0 = np.hstack([U, bu[:, None]])
                W, rss, s2 = solve("row", F, X0, bv)
                U, bu = np.ascontiguousarray(W[:, :k]), W[:, k].copy()
            else:
                V, _, s1 = solve("col", U, V)
                U, rss, s2 = solve("row", V, U)
        res = math.sqrt(rss) / norm_values if norm_values > 0 else math.sqrt(rss)
        if not math.isfinite(res):
            # inf <= tol * inf read as "converged" below: a diverged fit was
            # returned as converged (and its factors cannot form a result)
            raise FloatingPointError(
                f"altmin_complete: the residual on the observed entries is {res} after pass {it} "
                f"(solver={solver!r}); the iteration diverged. Try solver='exact', a positive "
                "inner_rtol, or float64 values"
            )
        history.append(res)
        inner_steps.append(0.5 * (s1 + s2))
        if val is not None:
            pred = sampled_dot(U, V, val.rows, val.cols) + mu
            if biases:
                pred += bu[val.rows] + bv[val.cols]
            vs = val.values / vscale if vscale != 1.0 else val.values
            nv = np.linalg.norm(vs)
            test_history.append(float(np.linalg.norm(pred - vs) / (nv if nv > 0 else 1.0)))
        if progress:
            extra = f"  test {test_history[-1]:.3e}" if test_history else ""
            print(f"altmin[{solver}] pass {it:3d}  residual {res:.3e}{extra}", file=sys.stderr)
        stop = False
        if callback is not None:
            stop = bool(callback(it, res))
        if res <= tol or (len(history) > 1 and abs(history[-2] - res) <= tol * max(res, 1e-300)):
            converged = True
            break
        if stop:
            break

    if vscale != 1.0:
        U, mu, bu, bv = U * vscale, mu * vscale, bu * vscale, bv * vscale
    matrix = LowRankMatrix.from_factors(U, V)
    return CompletionResult(
        matrix=matrix,
        n_iter=it,
        converged=converged,
        history=np.asarray(history),
        test_history=np.asarray(test_history),
        inner_steps=np.asarray(inner_steps),
        global_mean=mu,
        row_bias=bu if biases else None,
        col_bias=bv if biases else None,
        solver=solver,
    )


# observed values whose largest magnitude lies in [2^-_SCALE_EXP, 2^_SCALE_EXP]
# are solved for as they are; others in units of a power of two near it
_SCALE_EXP = 30


def _value_scale(max_abs: float, window: int | None = None) -> float:
    """1, or the power of four that brings ``max_abs`` into ``[1, 4)`` when it lies outside ``2^(+-window)``.

    ``window`` defaults to ``_SCALE_EXP``; ``0`` rescales whatever the
    values' size (a ``max_abs`` in ``[1/2, 4)`` keeps the unit 1).

    For ``max_abs`` in ``[2^(e-1), 2^e)`` the unit is ``2^(e-1)`` rounded
    down to an even exponent: ``2^e`` itself is not a float64 for values
    from ``2^1023`` on (OverflowError), and with an even exponent the square
    root of the unit, which the factors carry, is a power of two too, so
    the rescaled fit equals the fit as given to the last bit.
    """
    if not max_abs > 0.0 or not math.isfinite(max_abs):
        return 1.0
    e = math.frexp(max_abs)[1]
    window = _SCALE_EXP if window is None else window
    return 1.0 if abs(e) <= window else math.ldexp(1.0, 2 * ((e - 1) // 2))
