"""HOSVD, ST-HOSVD and Tucker-ALS on chunked Dask arrays (larger than memory).

The public functions in :mod:`tensorapprox.tucker` hand a ``dask.array`` here.
The tensor is never held whole; it is read block by block, and each step
costs one pass over it:

- the Gram matrix ``X_(k) X_(k)^T`` of an unfolding is a sum over the *fibres*
  of blocks along mode ``k`` (blocks spanning mode ``k`` whole, each at most
  ``tensorapprox.max-block-bytes``), so one pass per mode (two where the
  refined Gram route is needed); an ``rtol`` rank near the eigenvalues'
  rounding is checked against the explicitly measured residual (a
  projection pass per rank tried, the first of them the projection
  ST-HOSVD needs anyway);
- products with factors in several modes (``X x_j U_j^T``) are sums of
  block-wise products, grouped by the chunks of the modes left alone, one pass;
- the randomized variant forms the Khatri-Rao sketches of *all* modes in a
  single pass, then the core in a second one.

Intermediate results that fit ``tensorapprox.in-memory-bytes`` (a tensor
projected in its largest mode, the core) are computed into memory and the
algorithm goes on with the in-memory code of :mod:`tensorapprox.tucker`, so
small results and the returned :class:`TuckerTensor` are numpy arrays.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from ._array import check_random_state
from ._dask import check_known_chunks, compute, format_size, import_dask, in_memory_bytes, max_block_bytes, tree_sum
from .tensor import _ttm, multi_mode_product

__all__ = ["check_dask_tensor", "gather_if_small"]


# ---------------------------------------------------------------------------
# the door
# ---------------------------------------------------------------------------
def check_dask_tensor(X, name: str = "X"):
    """Shape, chunk and dtype checks of a Dask tensor (values are checked on the first pass)."""
    import_dask()
    check_known_chunks(X, name)
    if X.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions, got shape {tuple(X.shape)}")
    if any(int(n) == 0 for n in X.shape):
        raise ValueError(f"{name} has an empty dimension: shape {tuple(X.shape)}")
    dt = np.dtype(X.dtype)
    if np.issubdtype(dt, np.complexfloating):
        raise TypeError(f"{name} is complex ({dt}); only real tensors are supported")
    if dt == np.float32 or dt == np.float64:
        return X
    if dt == np.bool_ or np.issubdtype(dt, np.number):
        return X.astype(np.float64)
    raise TypeError(f"{name} must hold real numbers, got dtype {dt}")


def gather_if_small(X, progress=False):
    """``X`` computed into a numpy array when it fits ``tensorapprox.in-memory-bytes``, else None.

    A chunked array that fits the in-memory budget costs one pass to gather;
    the in-memory algorithms then beat any block-wise schedule.
    """
    if X.nbytes <= in_memory_bytes():
        (Xm,) = compute(X, progress=progress)
        return np.asarray(Xm)
    return None


def _fibres(X, mode: int, name: str = "X"):
    """``X`` rechunked so that every block spans ``mode`` whole, within the block cap.

    A chunking whose fibres exceed the cap is refused with the rechunk that
    fits it, or, where even fibres one element wide in every other mode
    exceed it, with the smallest cap that would do.
    """
    cap = max_block_bytes()
    item = np.dtype(X.dtype).itemsize
    other = {j: max(c) for j, c in enumerate(X.chunks) if j != mode}
    size = X.shape[mode] * math.prod(other.values()) * item
    if size > cap:
        head = (f"mode {mode} needs blocks that span it whole: {X.shape[mode]} x "
                f"{' x '.join(str(other[j]) for j in sorted(other))} {np.dtype(X.dtype).name} = {format_size(size)} "
                f"({size} bytes), above the block cap of {format_size(cap)} ({cap} bytes; dask config "
                f"'tensorapprox.max-block-bytes')")
        least = X.shape[mode] * item  # a fibre one element wide in every other mode
        if least > cap:
            raise ValueError(f"{head}; no chunking fits: even a single fibre along mode {mode} takes "
                             f"{format_size(least)} ({least} bytes). Raise the cap to at least {least} bytes, "
                             f"e.g. dask.config.set({{'tensorapprox.max-block-bytes': {least}}})")
        # shrink the largest other chunks until a fibre fits (it does at 1 at the latest)
        sugg = dict(other)
        while X.shape[mode] * math.prod(sugg.values()) * item > cap:
            j = max(sugg, key=sugg.get)
            sugg[j] = max(1, sugg[j] // 2)
        spec = ", ".join([f"{mode}: -1"] + [f"{j}: {c}" for j, c in sorted(sugg.items())])
        fits = X.shape[mode] * math.prod(sugg.values()) * item
        raise ValueError(
            f"{head}; rechunk first, e.g. {name} = {name}.rechunk({{{spec}}}) (blocks of {format_size(fits)}), "
            "or raise the cap"
        )
    if len(X.chunks[mode]) > 1:
        X = X.rechunk({mode: -1})
    return X


def _blocks(X):
    """``(delayed block, block index)`` pairs of a Dask array."""
    D = X.to_delayed()
    return [(D[idx], idx) for idx in itertools.product(*(range(n) for n in D.shape))]


def _offsets(chunks):
    return [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in chunks]


# ---------------------------------------------------------------------------
# block kernels (run inside Dask tasks, on numpy blocks)
# ---------------------------------------------------------------------------
def _fibre_gram(F, mode):
    """Gram matrix of the mode-``mode`` unfolding of a fibre, in float64."""
    from .tucker import _gram

    F = np.asarray(F)
    if F.dtype != np.float64:
        # float32 fibres: formed in float64 as the in-memory route does where
        # it matters (the float32 Gram matrix, cast after, resolved only to
        # float32's eps: errors 900 times the in-memory ones, rtol ranks full)
        F = F.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected from the norm
        return _gram(np, F, mode)


def _fibre_rotated_gram(F, mode, Vt):
    """Gram matrix of the rotated rows ``Vt^T F_(mode)`` of a fibre, in float64 (the refined route)."""
    from .tucker import _gram

    F = np.asarray(F)
    if F.dtype != np.float64:
        F = F.astype(np.float64)
    return _gram(np, _ttm(np, F, np.ascontiguousarray(Vt.T), mode), mode)


def _fibre_power(F, mode, Q):
    """``F_(mode) F_(mode)^T Q`` of a fibre (one step of a power iteration), in float64."""
    F = np.asarray(F)
    Z = _ttm(np, F, np.ascontiguousarray(Q.T.astype(F.dtype)), mode)  # Z_(mode) = Q^T F_(mode)
    shape = F.shape
    a, b = math.prod(shape[:mode]), math.prod(shape[mode + 1:])
    F3 = F.reshape(a, shape[mode], b)
    Z3 = Z.reshape(a, Q.shape[1], b)
    return np.asarray(np.tensordot(F3, Z3, axes=([0, 2], [0, 2])), dtype=np.float64)  # (n, w)


def _fibre_project(F, mode, U, want_residual):
    """``(F x_mode U^T, ||F - U U^T F||^2)`` of a fibre."""
    from .tucker import _residual_energy

    F = np.asarray(F)
    P = _ttm(np, F, np.ascontiguousarray(U.T), mode)
    res = _residual_energy(np, F, P, U, mode) if want_residual else 0.0
    return P, res


def _block_sumsq(B):
    """``(sum of squares in float64, number of non-finite entries)`` of a block."""
    v = np.asarray(B).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        s = float(np.vecdot(v, v, dtype=np.float64))
    bad = 0 if math.isfinite(s) else int(np.count_nonzero(~np.isfinite(v)))
    return s, bad


def _block_maxabs(B):
    return float(np.max(np.abs(np.asarray(B))))


def _block_ttm(B, mats, modes):
    """``B x_j mats[j]^T`` over ``modes`` (``mats`` are the factor rows of this block)."""
    return multi_mode_product(np.asarray(B), list(mats), modes=list(modes), transpose=True)


def _block_residual(B, core, mats):
    """``||B - core x_j mats[j]||^2`` of one block (``mats`` are its factor rows)."""
    R = np.asarray(B, dtype=np.float64) - multi_mode_product(core, list(mats))
    v = R.reshape(-1)
    return float(v @ v)


def _block_sketches(B, mode_omegas):
    """Khatri-Rao sketches of every mode of one block: ``[B_(k) KR(omegas of the other modes)]``."""
    from .tucker import _kr_sketch

    B = np.asarray(B)
    return tuple(_kr_sketch(np, B, k, om) for k, om in enumerate(mode_omegas))


# ---------------------------------------------------------------------------
# passes (each reads the data once)
# ---------------------------------------------------------------------------
def _norm_pass(X, progress):
    """``||X||^2`` (float64) in one pass, raising for NaN/Inf and rescaling on overflow."""
    dask, _ = import_dask()
    parts = [dask.delayed(_block_sumsq, pure=True)(b) for b, _ in _blocks(X)]
    (total,) = compute(tree_sum(dask, parts), progress=progress)
    return _finish_norm(X, total, progress)


def _finish_norm(X, stats, progress):
    """Turn pass statistics into ``(X, ||X||^2, scale)``; raise for NaN/Inf."""
    sumsq, bad = stats
    if bad:
        raise ValueError(f"X contains {int(bad)} NaN or Inf values; remove or impute them first")
    from .tucker import _norm2_in_range

    if _norm2_in_range(sumsq, np, X.dtype):
        return X, sumsq, 1.0
    # finite data whose squared norm overflows or underflows: run on X / max|X|
    dask, _ = import_dask()
    (s,) = compute(tree_sum(dask, [dask.delayed(_block_maxabs, pure=True)(b) for b, _ in _blocks(X)],
                            combine=max), progress=progress)
    if s == 0.0:
        return X, 0.0, 1.0
    Xs = X / s
    parts = [dask.delayed(_block_sumsq, pure=True)(b) for b, _ in _blocks(Xs)]
    (stats2,) = compute(tree_sum(dask, parts), progress=progress)
    return Xs, stats2[0], s


def _gram_pass(X, mode, progress):
    """Gram matrix of the mode-``mode`` unfolding (float64), in one pass over the fibres of ``mode``."""
    dask, _ = import_dask()
    grams = [dask.delayed(_fibre_gram, pure=True)(b, mode) for b, _ in _blocks(_fibres(X, mode))]
    (G,) = compute(tree_sum(dask, grams), progress=progress)
    return G


def _lazy_multi_ttm(X, factors, modes):
    """``X x_j factors[j]^T`` for ``j`` in ``modes``, as a lazy Dask array (sums of block products)."""
    dask, da = import_dask()
    modes = list(modes)
    offs = _offsets(X.chunks)
    keep = [j for j in range(X.ndim) if j not in modes]
    groups: dict = {}
    for b, idx in _blocks(X):
        mats = [np.ascontiguousarray(factors[i][offs[j][idx[j]]:offs[j][idx[j] + 1], :])
                for i, j in enumerate(modes)]
        part = dask.delayed(_block_ttm, pure=True)(b, mats, modes)
        groups.setdefault(tuple(idx[j] for j in keep), []).append(part)
    ranks = {j: factors[i].shape[1] for i, j in enumerate(modes)}
    out_shape_of = lambda key: tuple(  # noqa: E731
        ranks[j] if j in ranks else X.chunks[j][key[keep.index(j)]] for j in range(X.ndim)
    )
    arrays = {}
    for key, parts in groups.items():
        arrays[key] = da.from_delayed(tree_sum(dask, parts), shape=out_shape_of(key), dtype=X.dtype)
    if not keep:
        return arrays[()]
    # da.block wants nesting over all axes of the output; contracted axes have one block
    def nest(level_key, axis):
        if axis == X.ndim:
            return arrays[tuple(level_key)]
        if axis in ranks:
            return [nest(level_key, axis + 1)]
        return [nest(level_key + [i], axis + 1) for i in range(len(X.chunks[axis]))]

    return da.block(nest([], 0))


def _maybe_materialize(Y, progress):
    """Compute ``Y`` into memory when it fits the in-memory cap; else keep it lazy."""
    if Y.nbytes <= in_memory_bytes():
        (Y,) = compute(Y, progress=progress)
        return np.asarray(Y)
    return Y


def _residual_pass(X, core, factors, progress) -> float:
    """``||X - core x U||^2`` formed explicitly, block by block, in one pass."""
    dask, _ = import_dask()
    offs = _offsets(X.chunks)
    parts = []
    for b, idx in _blocks(X):
        mats = [np.ascontiguousarray(factors[j][offs[j][idx[j]]:offs[j][idx[j] + 1], :]) for j in range(X.ndim)]
        parts.append(dask.delayed(_block_residual, pure=True)(b, core, mats))
    (total,) = compute(tree_sum(dask, parts), progress=progress)
    return float(total)


def _project_pass(X, mode, U, want_residual, progress):
    """``X x_mode U^T`` (lazy, or in memory when it fits) and, if asked, the residual energy."""
    dask, da = import_dask()
    if not want_residual:  # no fibres needed: sums of block products
        return _maybe_materialize(_lazy_multi_ttm(X, [np.ascontiguousarray(U.astype(X.dtype))], [mode]),
                                  progress), None
    Xf = _fibres(X, mode)
    r = U.shape[1]
    Ud = dask.delayed(np.ascontiguousarray(U.astype(X.dtype)), pure=True)  # one copy in the graph
    pieces = {}
    residuals = []
    for b, idx in _blocks(Xf):
        t = dask.delayed(_fibre_project, pure=True, nout=2)(b, mode, Ud, want_residual)
        shape = tuple(r if j == mode else Xf.chunks[j][idx[j]] for j in range(X.ndim))
        pieces[idx] = da.from_delayed(t[0], shape=shape, dtype=X.dtype)
        residuals.append(t[1])

    def nest(key, axis):
        if axis == X.ndim:
            return pieces[tuple(key)]
        return [nest(key + [i], axis + 1) for i in range(len(Xf.chunks[axis]))]

    Y = da.block(nest([], 0))
    fits = Y.nbytes <= in_memory_bytes()
    if want_residual or fits:
        todo = ([Y] if fits else []) + ([tree_sum(dask, residuals)] if want_residual else [])
        out = compute(*todo, progress=progress)
        if fits:
            Y = np.asarray(out[0])
        res = float(out[-1]) if want_residual else None
        return Y, res
    return Y, None


# ---------------------------------------------------------------------------
# algorithms
# ---------------------------------------------------------------------------
def _refined_basis(X, mode, sigma2, V, rank, budget, progress, lead=None):
    """The refined Gram route block-wise: ``(energies, basis, r, resolved, rounding)``, or None where it does not apply.

    As in memory (:func:`tensorapprox.tucker._refined_gram_mode`): the
    leading eigenvectors of ``G = A A^T`` (``lead`` of them, default those
    above ``1e4 n eps lam_max``, :func:`tensorapprox.tucker._refined_lead`)
    are kept, the others rotate the data, ``C_t = V_t^T A``, and the Gram
    matrix of ``C_t`` (one more pass, summed over the fibres of ``mode``)
    resolves the small singular values to ``eps ||C_t||^2`` instead of
    ``eps ||A||^2``. ``basis = [V_lead, V_t W]`` is orthonormal and nested,
    ``energies`` are the energies of its directions, and ``r`` is ``rank``
    or the rank the energies give for ``budget``. ``resolved`` is False
    where the energies do not resolve that rank (see
    :func:`tensorapprox.tucker._refined_rank`): in memory the SVD then
    decides; block-wise the basis is still kept (it resolves the small
    directions far better than the Gram matrix's own eigenvectors, which
    lose about ``eps ||A||^2`` at any rank), ``r`` is a provisional rank,
    and an ``rtol`` rank is settled by the explicit residual (see
    :func:`_fit_rank`). ``rounding``, about ``n eps sqrt(lam_max mu_max)``,
    is the absolute rounding of the energies ``mu``. None is returned only
    where every eigenvector is kept as it is (nothing to refine). The
    projection is left to the caller.
    """
    from .tucker import _rank_for_budget, _refined_lead, _refined_rank

    n = sigma2.size
    eps = float(np.finfo(np.float64).eps)  # the fibres' Gram matrices are float64
    r0 = _refined_lead(sigma2, n, eps) if lead is None else int(lead)
    if r0 >= n:
        return None
    dask, _ = import_dask()
    Vt = np.ascontiguousarray(V[:, r0:])
    Vd = dask.delayed(Vt, pure=True)  # one copy in the graph
    parts = [dask.delayed(_fibre_rotated_gram, pure=True)(b, mode, Vd) for b, _ in _blocks(_fibres(X, mode))]
    (H,) = compute(tree_sum(dask, parts), progress=progress)
    mu, W = _eig_desc(H)
    r, energies = _refined_rank(sigma2, mu, r0, n, eps, rank, budget)
    basis = np.concatenate([V[:, :r0], Vt @ W], axis=1)
    rounding = n * eps * math.sqrt(float(sigma2[0]) * float(mu[0]))  # of the energies mu
    if r is None:
        r = min(int(rank), n) if rank is not None else _rank_for_budget(energies, budget)
        return energies, basis, r, False, rounding
    return energies, basis, r, True, rounding


def _gram_spectrum(X, mode, G, rank, budget, progress):
    """``(energies, V, r, state, rounding)`` for truncating ``mode`` of ``X`` from its Gram matrix ``G``.

    ``state`` is ``'gram'``: the eigenpairs of ``G`` resolve the rank
    (fixed, or the one ``budget`` asks for); ``'refined'``: they do not, and
    those of the refined route (:func:`_refined_basis`) do; ``'unresolved'``:
    even those do not (the refined basis is returned all the same, with a
    provisional rank). The lines are those of the in-memory 'eigh' and
    'refined_eigh' routes (:func:`tensorapprox.tucker._truncate_mode`): at
    a fixed rank the refined route also takes over where the leading
    eigenvectors leak (data of about that multilinear rank, at a fixed
    rank or at the one the budget asks for, see
    :func:`tensorapprox.tucker._gram_leaks`), from the split
    :func:`tensorapprox.tucker._split_lead` gives. ``rounding`` is that of
    the refined energies (see :func:`_refined_basis`), None for ``'gram'``.
    """
    from .tucker import _gram_leaks, _rank_for_budget, _resolved, _split_lead

    sigma2, V = _eig_desc(G)
    n = sigma2.size
    eps = float(np.finfo(G.dtype).eps)
    lead = None
    if rank is not None:
        r = min(int(rank), n)
        need = not _resolved(sigma2[r - 1], sigma2[0], n, eps)
    else:
        r = _rank_for_budget(sigma2, budget)
        need = budget < 2 * n * eps * float(np.sum(sigma2)) or not _resolved(sigma2[r - 1], sigma2[0], n, eps)
    # at the budget's rank too: with no SVD to fall back on, leaking leading
    # eigenvectors left the measured residual of the right rank above the
    # budget, and the search climbed ((10, 10, 9) for data of multilinear
    # rank 8 at rtol 1e-13, where memory gives (8, 8, 8))
    data_eps = float(np.finfo(X.dtype).eps)
    if r < n and _gram_leaks(sigma2[:r], float(np.sum(sigma2[r:])), n, eps, data_eps):
        need, lead = True, _split_lead(sigma2[:r], data_eps)
    if need and sigma2[0] > 0.0:
        out = _refined_basis(X, mode, sigma2, V, rank, budget, progress, lead=lead)
        if out is not None:
            energies, basis, r, resolved, rounding = out
            return energies, basis, r, "refined" if resolved else "unresolved", rounding
    return sigma2, V, r, "gram", None


def _fit_rank(X, mode, V, energies, r, budget, progress, step_down):
    """``(U, X x_mode U^T, discarded)``: the smallest ``U = V[:, :r']`` whose explicit residual fits ``budget``.

    Searched from the estimate ``r`` by
    :func:`tensorapprox.tucker._smallest_fitting_rank` (each try a
    projection pass that measures the residual). With ``step_down`` the
    ranks below a fitting estimate are tried while the estimated tail of
    ``energies`` lies within their rounding (``_TAIL_ROUNDING n eps`` of the
    total, as in memory) above the budget, so that an estimate from
    eigenvalues that do not resolve the budget cannot overshoot the minimal
    rank.
    """
    from .tucker import _TAIL_ROUNDING, _smallest_fitting_rank

    n = V.shape[0]

    def probe(r):
        U = np.ascontiguousarray(V[:, :r]).astype(X.dtype)
        Y, res = _project_pass(X, mode, U, True, progress)
        return U, Y, res

    tails = np.concatenate([np.cumsum(energies[::-1])[::-1], [0.0]])  # tails[r] = sum_{i >= r}
    slack = _TAIL_ROUNDING * n * float(np.finfo(X.dtype).eps) * float(tails[0])

    def may_fit(r):
        return float(tails[r]) <= budget + slack

    return _smallest_fitting_rank(probe, r, n, budget, may_fit if step_down else None)


def _truncate_rtol(X, mode, G, budget, progress, *, measure=True):
    """``(U, X x_mode U^T or None, discarded)`` of mode ``mode`` of ``X`` for an rtol ``budget``.

    The rank is that of the in-memory route: from the Gram eigenvalues or
    the refined energies where they resolve it (:func:`_gram_spectrum`),
    checked against the explicitly measured residual (one projection pass,
    more where it does not fit or a smaller rank may); where the refined
    energies do not resolve it (where in memory the SVD decides), the
    refined basis's rank is settled by the explicit residual alone. A
    search that climbs from resolved Gram eigenvectors into unresolved ones
    goes over to the refined route, as in memory. With ``measure`` False
    (HOSVD, whose projection is not needed) a rank the eigenvalues resolve
    well above their rounding is taken without a pass.
    """
    from .tucker import _resolved

    energies, V, r, state, _ = _gram_spectrum(X, mode, G, None, budget, progress)
    n = energies.size
    if not measure and state != "unresolved" and \
            budget >= 100 * n * float(np.finfo(X.dtype).eps) * float(np.sum(energies)):
        return np.ascontiguousarray(V[:, :r]).astype(X.dtype), None, float(np.sum(energies[r:]))
    out = _fit_rank(X, mode, V, energies, r, budget, progress, step_down=state != "refined")
    eps64 = float(np.finfo(np.float64).eps)
    if state == "gram" and not _resolved(energies[out[0].shape[1] - 1], energies[0], n, eps64):
        # climbed into directions the Gram matrix does not resolve (their
        # eigenvectors are mixed, and the rank came out above the SVD's)
        ref = _refined_basis(X, mode, energies, V, None, budget, progress)
        if ref is not None:
            energies, V, r, resolved, _ = ref
            out = _fit_rank(X, mode, V, energies, r, budget, progress, step_down=not resolved)
    return out


def _warn_unresolved(residual: float, tail: float, total: float, r: int, mode: int, *, stacklevel: int) -> None:
    """Warn where a fixed rank's projection may discard more than the SVD's would (see :func:`_truncate_rank`).

    Called where even the refined route does not resolve the rank. In memory
    such a rank takes the SVD (see :func:`tensorapprox.tucker._resolved`);
    block-wise there is no SVD: the refined basis is taken, and its trailing
    directions may be mixed with their neighbours. ``residual`` is the
    explicitly measured energy the projection discards, ``tail`` the
    refined energies' estimate of the optimal one, ``total`` ``||X||^2``.
    Not called for an ``rtol``, whose rank is settled by the measured residual.
    """
    got = math.sqrt(residual / total)
    best = math.sqrt(tail / total)
    warnings.warn(f"mode {mode}: rank {r} reaches singular values below what the block-wise Gram matrices "
                  "resolve: its trailing directions may be less accurate than those of the SVD that the tensor "
                  f"in memory would take (the projection discards {got:.1e} of the norm, the spectrum's tail "
                  f"suggests {best:.1e}). A lower rank for this mode avoids it.",
                  RuntimeWarning, stacklevel=stacklevel)


def _eig_desc(G):
    w, V = np.linalg.eigh(G)
    return np.clip(w[::-1], 0.0, None), V[:, ::-1]


def _first_norm(X, mode, progress):
    """Gram of ``mode`` and ``||X||^2`` (its trace) in one pass; NaN/Inf refused, overflow rescaled."""
    from .tucker import _norm2_in_range

    G = _gram_pass(X, mode, progress)
    normX2 = float(np.trace(G))
    if _norm2_in_range(normX2, np, X.dtype) and np.all(np.isfinite(G)):
        return X, G, normX2, 1.0
    # NaN/Inf in the data, finite data whose squared norm overflows or
    # underflows, or zeros: tell them apart
    dask, _ = import_dask()
    (stats,) = compute(tree_sum(dask, [dask.delayed(_block_sumsq, pure=True)(b) for b, _ in _blocks(X)]),
                       progress=progress)
    X2, normX2, scale = _finish_norm(X, (float("inf"), stats[1]), progress)
    return X2, _gram_pass(X2, mode, progress), normX2, scale


def dask_hosvd(X, ranks, rtol, method, progress):
    """HOSVD of a Dask tensor: one Gram pass per mode, one pass for the core."""
    from .tucker import TuckerTensor, _zero_result

    d = X.ndim
    factors = []
    normX2 = None
    scale = 1.0
    for k in range(d):
        if k == 0:
            X, G, normX2, scale = _first_norm(X, 0, progress)
            if normX2 == 0.0:
                return _zero_result(np, X, ranks or (1,) * d)
        else:
            G = _gram_pass(X, k, progress)
        if ranks is not None:
            U, _ = _truncate_rank(X, k, G, ranks[k], progress, stacklevel=5)
        else:
            # measured where the eigenvalues' rounding (about n eps ||X||^2) nears
            # the budget, or the refined energies do not resolve it
            U, _, _ = _truncate_rtol(X, k, G, rtol * rtol * normX2 / d, progress, measure=False)
        factors.append(np.ascontiguousarray(U).astype(X.dtype))
    core = _maybe_materialize(_lazy_multi_ttm(X, factors, range(d)), progress)
    core = np.asarray(core)
    return TuckerTensor(core * scale if scale != 1.0 else core, factors, copy=False)


def _truncate_rank(X, mode, G, rank, progress, *, stacklevel):
    """``(U, X x_mode U^T)`` of mode ``mode`` of ``X`` at a fixed ``rank``: Gram eigenvectors, or the refined basis.

    See :func:`_gram_spectrum`. Where even the refined route does not
    resolve the rank, the projection pass also measures the discarded energy
    explicitly, and a warning (``stacklevel`` as seen from
    :func:`_warn_unresolved`) is issued where it exceeds four times the
    refined energies' tail (twice the error) and a floor of ``100 eps^2
    ||X||^2``, or where the rank's last energy lies below even ``eps
    sqrt(lam_max mu_max)`` (``1/n`` of the energies' nominal rounding; below
    it the tail itself is rounding, and the 24^3 samples of
    ``1/sqrt(x^2+y^2+z^2+0.1)`` came out at rank 12 with 1e-13 where the SVD
    has 6e-16). The nominal rounding is too coarse a line: at rank 10 the
    same samples lost nothing measurable with their last energy below it.
    """
    energies, V, r, state, rounding = _gram_spectrum(X, mode, G, rank, None, progress)
    U = np.ascontiguousarray(V[:, :r]).astype(X.dtype)
    if state != "unresolved":
        return U, _project_pass(X, mode, U, False, progress)[0]
    Y, residual = _project_pass(X, mode, U, True, progress)
    total = float(np.sum(energies))
    tail = float(np.sum(energies[r:]))
    n = energies.size
    if residual > 4.0 * max(tail, 100.0 * float(np.finfo(X.dtype).eps) ** 2 * total) or \
            float(energies[r - 1]) < rounding / n:
        _warn_unresolved(residual, tail, total, r, mode, stacklevel=stacklevel)
    return U, Y


def dask_st_hosvd(X, ranks, rtol, order, method, n_power_iter, oversampling, random_state, progress):
    """ST-HOSVD of a Dask tensor (see :func:`_st_hosvd_scaled`); the core scaled back."""
    from .tucker import TuckerTensor

    if method == "randomized":
        return dask_randomized_hosvd(X, ranks, rtol, n_power_iter, oversampling, random_state, progress)
    T, _, scale, _ = _st_hosvd_scaled(X, ranks, rtol, order, method, progress)
    return TuckerTensor(T.core * scale, T.factors, copy=False) if scale != 1.0 else T


def _st_hosvd_scaled(X, ranks, rtol, order, method, progress):
    """ST-HOSVD of a Dask tensor: ``(T, ||X / s||^2, s, X / s)``, ``T`` the decomposition of ``X / s``.

    While the projected tensor is larger than ``tensorapprox.in-memory-bytes``
    each mode costs a Gram pass and a projection pass (which also measures
    the discarded energy explicitly), and a pass of the refined route where
    the Gram matrix does not resolve the rank (see :func:`_gram_spectrum`);
    once it fits, it is computed into memory and the remaining modes run
    in-memory.
    """
    from .tucker import TuckerTensor, _st_hosvd_modes, _zero_result

    d = X.ndim
    factors = [None] * d
    Y = X
    used = 0.0
    scale = 1.0
    budget_total = None
    for i, k in enumerate(order):
        if not hasattr(Y, "__dask_graph__"):
            break
        if i == 0:
            Y, G, normX2, scale = _first_norm(Y, k, progress)
            Xs = Y
            if normX2 == 0.0:
                return _zero_result(np, X, ranks or (1,) * d), 0.0, 1.0, X
            budget_total = None if rtol is None else rtol * rtol * normX2
        else:
            G = _gram_pass(Y, k, progress)
        share = None if rtol is None else max(budget_total - used, 0.0) / (d - i)
        if ranks is not None:
            U, Y = _truncate_rank(Y, k, G, ranks[k], progress, stacklevel=6)
            discarded = 0.0  # not used without an rtol
        else:
            U, Y, discarded = _truncate_rtol(Y, k, G, share, progress)
        used += discarded
        factors[k] = U
    else:
        i = d
    if hasattr(Y, "__dask_graph__"):  # every mode done, core still lazy (too large for memory)
        (Y,) = compute(Y, progress=progress)
        Y = np.asarray(Y)
    if i < d:
        Y, used = _st_hosvd_modes(np, Y, order, i, ranks, rtol, budget_total, used, method, factors,
                                  n_power_iter=0, oversampling=0, rng=None)
    return TuckerTensor(Y, factors, copy=False), normX2, scale, Xs


def _sketch_pass(X, omegas, progress):
    """Khatri-Rao sketches of every mode and ``(||X||^2, bad)``, in one pass.

    ``omegas[k][j]`` is the Gaussian matrix of mode ``j`` in the sketch of mode ``k``.
    """
    dask, _ = import_dask()
    d = X.ndim
    offs = _offsets(X.chunks)
    per_mode_chunk = [dict() for _ in range(d)]
    norms = []
    for b, idx in _blocks(X):
        sl = [slice(offs[j][idx[j]], offs[j][idx[j] + 1]) for j in range(d)]
        mode_omegas = [{j: np.ascontiguousarray(omegas[k][j][sl[j]]) for j in range(d) if j != k} for k in range(d)]
        t = dask.delayed(_block_sketches, pure=True, nout=d)(b, mode_omegas)
        for k in range(d):
            per_mode_chunk[k].setdefault(idx[k], []).append(t[k])
        norms.append(dask.delayed(_block_sumsq, pure=True)(b))
    todo = []
    for k in range(d):
        todo.append([tree_sum(dask, per_mode_chunk[k][c]) for c in range(len(X.chunks[k]))])
    out = compute(todo, tree_sum(dask, norms), progress=progress)
    sketches = [np.concatenate([np.asarray(p) for p in parts], axis=0) for parts in out[0]]
    return sketches, out[1]


def _power_pass(X, mode, Q, progress):
    """``X_(mode) X_(mode)^T Q`` in one pass over the fibres of ``mode``."""
    dask, _ = import_dask()
    Xf = _fibres(X, mode)
    Qd = dask.delayed(np.ascontiguousarray(Q), pure=True)
    parts = [dask.delayed(_fibre_power, pure=True)(b, mode, Qd) for b, _ in _blocks(Xf)]
    (Z,) = compute(tree_sum(dask, parts), progress=progress)
    return Z


def dask_randomized_hosvd(X, ranks, rtol, n_power_iter, oversampling, random_state, progress):
    """Randomized Tucker of a Dask tensor from sketches of all modes taken in one pass.

    Pass 1 forms every mode's Khatri-Rao sketch ``X_(k) Omega_k`` (and
    ``||X||^2``); each power iteration costs one pass per mode; the last pass
    forms ``W = X x_k Q_k^T``. The small ``W`` is truncated in memory by
    ST-HOSVD, and ``U_k = Q_k V_k``. With ``rtol`` the sketch width doubles
    until the energy outside the ``Q_k``, ``||X||^2 - ||W||^2`` (formed
    explicitly where the budget is below that difference's rounding error),
    leaves room in the budget; ST-HOSVD of ``W`` spends the rest.
    """
    from .tucker import TuckerTensor, _budget_is_tight, _zero_result, st_hosvd

    rng = check_random_state(random_state)
    d = X.ndim
    shape = tuple(int(n) for n in X.shape)
    total = math.prod(shape)
    width = [min(r + oversampling, n, total // n) for r, n in zip(ranks, shape)] if ranks is not None else \
        [min(max(2 * oversampling, 16), n, total // n) for n in shape]
    scale = 1.0
    while True:
        omegas = [{j: rng.standard_normal((shape[j], width[k])).astype(X.dtype) for j in range(d) if j != k}
                  for k in range(d)]
        sketches, stats = _sketch_pass(X, omegas, progress)
        if scale == 1.0:
            X2, normX2, scale = _finish_norm(X, stats, progress)
            if scale != 1.0:  # sketch again on the rescaled data
                X = X2
                continue
            if normX2 == 0.0:
                return _zero_result(np, X, ranks or (1,) * d)
        Qs = [np.linalg.qr(S.astype(np.float64))[0] for S in sketches]
        for _ in range(n_power_iter):
            Qs = [np.linalg.qr(_power_pass(X, k, Q.astype(X.dtype), progress))[0] for k, Q in enumerate(Qs)]
        Qs = [np.ascontiguousarray(Q).astype(X.dtype) for Q in Qs]
        W = _maybe_materialize(_lazy_multi_ttm(X, Qs, range(d)), progress)
        if hasattr(W, "__dask_graph__"):
            (W,) = compute(W, progress=progress)
        W = np.asarray(W)
        if ranks is not None:
            T = st_hosvd(W, rank=ranks)
            break
        normW2 = float(np.vecdot(W.reshape(-1), W.reshape(-1), dtype=np.float64))
        outside = max(normX2 - normW2, 0.0)  # the energy outside the Q_k, by a cancelling difference
        if _budget_is_tight(rtol * rtol * normX2, normX2, total, float(np.finfo(X.dtype).eps)):
            # below that difference's rounding error: formed explicitly (one more pass),
            # or every width would look too narrow and the ranks end up full
            outside = _residual_pass(X, W, Qs, progress)
        left = rtol * rtol * normX2 - outside
        full = all(w >= min(n, total // n) for w, n in zip(width, shape))
        if left > 0 and normW2 > 0:
            T = st_hosvd(W, rtol=min(math.sqrt(left / normW2), 0.999999))
            break
        if full:
            T = st_hosvd(W, rank=tuple(W.shape))
            break
        width = [min(2 * w, n, total // n) for w, n in zip(width, shape)]
    factors = [np.ascontiguousarray(Q @ V) for Q, V in zip(Qs, T.factors)]
    core = T.core * scale if scale != 1.0 else T.core
    return TuckerTensor(core, factors, copy=False)


def _relative_error(X, normX2, core, factors, progress):
    """As :func:`tensorapprox.tucker._relative_error`: the shortcut, or an explicit residual pass below 1e-5 (float64)."""
    from .tucker import _explicit_residual_below

    if normX2 == 0.0:
        return 0.0
    c = np.asarray(core).reshape(-1)
    short2 = max(normX2 - float(np.vecdot(c, c, dtype=np.float64)), 0.0)
    rel = math.sqrt(short2 / normX2)
    if rel >= _explicit_residual_below(float(np.finfo(X.dtype).eps)):
        return rel
    return math.sqrt(_residual_pass(X, core, factors, progress) / normX2)


def dask_tucker_als(X, ranks, init, tol, max_iter, callback, verbose, random_state, progress):
    """HOOI on a Dask tensor: per sweep, one pass per half of the modes (as in memory)."""
    from .tucker import (TuckerALSResult, TuckerTensor, _als_group, _hooi_sweeps, _orthonormalize,
                         _resolve_mode_order, _zero_result)

    d = X.ndim
    first_mode = None
    if isinstance(init, TuckerTensor) or init == "random":
        if isinstance(init, TuckerTensor):
            factors = [_orthonormalize(np, np.asarray(U, dtype=X.dtype)) for U in init.factors]
        else:
            rng = check_random_state(random_state)
            factors = [_orthonormalize(np, rng.standard_normal((n, r)).astype(X.dtype))
                       for n, r in zip(X.shape, ranks)]
        dask, _ = import_dask()
        norms = tree_sum(dask, [dask.delayed(_block_sumsq, pure=True)(b) for b, _ in _blocks(X)])
        core, stats = compute(_lazy_multi_ttm(X, factors, range(d)), norms, progress=progress)
        X, normX2, scale = _finish_norm(X, stats, progress)
        if scale != 1.0:
            (core,) = compute(_lazy_multi_ttm(X, factors, range(d)), progress=progress)
        init_t = TuckerTensor(np.asarray(core), factors, copy=False)
    else:  # 'st_hosvd'
        order = _resolve_mode_order(None, X.shape, ranks, "auto")
        init_t, normX2, scale, X = _st_hosvd_scaled(X, ranks, None, order, "auto", progress)
        factors = list(init_t.factors)
        # the first sweep in the in-memory order (ST-HOSVD's first mode last):
        # the default halves gave other iterates from sweep 1 on (5e-4 apart
        # in the relative error of a noisy tensor, and another n_iter)
        first_mode = order[0]
    if normX2 == 0.0:
        return TuckerALSResult(_zero_result(np, X, ranks), 0, True, (0.0,), init_t)
    def half_sweep(group, other, want_core):
        P = _maybe_materialize(_lazy_multi_ttm(X, [factors[j] for j in other], other), progress)
        if not hasattr(P, "__dask_graph__"):
            return _als_group(np, P, group, factors, ranks, want_core=want_core)
        core = None  # too large to hold: one small product per mode of the group
        for k in group:
            rest = [j for j in group if j != k]
            Pk = _lazy_multi_ttm(P, [factors[j] for j in rest], rest) if rest else P
            (Pk,) = compute(Pk, progress=progress)
            # Pk is projected in every mode but k: its projection in k is the core
            core = _als_group(np, np.asarray(Pk), [k], factors, ranks, want_core=want_core and k == group[-1])
        return core

    return _hooi_sweeps(half_sweep, lambda core, fs: _relative_error(X, normX2, core, fs, progress), init_t,
                        factors, d, tol, max_iter, callback, verbose, scale, first_mode=first_mode)
