"""Kernels for matrix completion: sampled products and per-row least squares.

Every half-step of alternating minimization solves one small ridge problem
per row of a CSR view of the observations,

    x_i = argmin_x ||F[J_i] x - b[J_i]||^2 + lam_i ||x||^2,   lam_i = reg * |J_i|,

where ``J_i = indices[indptr[i]:indptr[i + 1]]`` are the observed columns of
row ``i`` and ``F`` is the fixed factor. ``reg`` is one weight for every
unknown, or one per unknown (shape ``(q,)``): a fit solved in units of the
values' scale ``s`` gives the factor unknowns ``lam / s`` and the bias unknown
``lam`` (the biases scale by ``s``, the factors by ``sqrt(s)``). Three solvers:

* ``exact``  -- normal equations and Cholesky, O(|J_i| q^2) per row;
* ``cg``     -- warm-started conjugate gradients on the normal equations,
  O(|J_i| q) per step, stopped by a per-row tolerance, optionally
  preconditioned by one Cholesky factor shared by all rows;
* ``sketch`` -- the same iteration preconditioned by the Cholesky factor of
  a CountSketch of ``F[J_i]`` (sketch-and-precondition).

Each has a readable numpy reference first and a Numba kernel beside it; the
dispatch functions at the end pick Numba for numpy arrays (unless disabled by
``TENSORAPPROX_DISABLE_NUMBA=1``). Every solver also returns the per-row
squared residual ``||F[J_i] x_i - b[J_i]||^2`` (without the ridge term) so the
caller can monitor the fit at no extra pass over the data.
"""

from __future__ import annotations

import numba
import numpy as np

from . import numba_enabled

__all__ = [
    "sampled_dot",
    "sampled_dot_reference",
    "solve_rows_exact",
    "solve_rows_exact_reference",
    "solve_rows_iterative",
    "solve_rows_iterative_reference",
    "sketch_bucket",
]

# Relative diagonal shift that keeps the normal equations of a row with fewer
# observations than unknowns solvable (minimum-norm-like answer) while moving
# a well-posed solution by O(1e-14) relative (see jitter).
_JITTER = 1e-14
_EPS64 = float(np.finfo(np.float64).eps)


def jitter_rel(eps):
    """The relative shift for a working precision of machine epsilon ``eps``.

    ``_JITTER`` (about 45 eps) in float64, the same multiple of float32's
    eps in float32: 1e-14 rounded away on float32 diagonals, and an
    underdetermined float32 row then got an answer far from least-norm (the
    kernel and the reference disagreed on it, both fitting the observed
    entries).
    """
    return _JITTER * (eps / _EPS64)


def jitter(d, mean, lam, rel=_JITTER):
    """The diagonal shift of one unknown whose column has squared norm ``d`` (``mean``: the row's average).

    Without a ridge: ``_JITTER * mean`` for every unknown, an isotropic
    shift (an underdetermined row gets the least-norm-like answer). With a
    ridge ``lam > 0``: ``lam + _JITTER (d + lam)``, relative to the column's
    own squares. Relative to the mean there, the ones column of the biases
    took an extra ridge of 1e-14 times the factor columns' squares, which for
    values near 1e12 (factor columns near 1e6) moved the fit 3% from the
    ALS-WR problem it states. (Relative to its own column without a ridge,
    an underdetermined row's answer would weigh its unknowns by their
    columns' squares: predictions off the observed entries grew 7-fold.)
    """
    return lam + rel * (d + lam) if lam > 0.0 else rel * mean


def diag_shift(diag, lam, dtype=np.float64):
    """:func:`jitter` of every unknown of a row whose normal matrix (of ``dtype``) has diagonal ``diag``.

    ``lam`` is the ridge weight of every unknown, or one per unknown.
    """
    rel = jitter_rel(float(np.finfo(dtype).eps))
    diag = np.asarray(diag, dtype=np.float64)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), diag.shape)
    mean = float(np.mean(diag)) if diag.size else 0.0
    return np.array([jitter(float(d), mean, float(lm), rel) for d, lm in zip(diag, lam)])


def floor_rel(eps):
    """The relative round-off floor of the inner iterations for a working precision of machine epsilon ``eps``.

    ``_FLOOR`` in float64, the same multiple of ``eps`` otherwise, as
    :func:`jitter_rel`: a float64 floor applied to float32 rows let the
    iteration step on round-off noise, and the numpy reference diverged
    (residuals near 1e12, then Inf).
    """
    return _FLOOR * (eps / _EPS64)


# A sketched preconditioner M is replaced by the row's own normal matrix H
# when p^T H p exceeds this many times p^T M p for the first direction p
_SKETCH_DISTORTION = 16.0
# Inner iterations stop once the normal-equation residual is this small
# relative to ||F[J_i]||_F ||b[J_i]||: further steps only stir round-off.
_FLOOR = 1e-14
# The Numba kernels zero-pad each row's gathered block to a multiple of this
# many observations, so their vectorized loops have no scalar remainder.
_PAD = 32


def sketch_bucket(h, m):
    """Bucket and sign of a CountSketch entry from its random key ``h``.

    The bucket maps the low 32 bits of ``h`` to ``[0, m)`` by a multiply and
    a shift (``floor(low * m / 2^32)``), which the kernels run several
    times faster than a 64-bit division; the sign is bit 40. The same
    function, compiled, serves the kernels (one formula for both).
    """
    return ((h & 0xFFFFFFFF) * m) >> 32, 1.0 - 2.0 * ((h >> 40) & 1)


# --------------------------------------------------------------------------
# numpy references
# --------------------------------------------------------------------------
def sampled_dot_reference(A, B, rows, cols):
    """``out[t] = A[rows[t]] @ B[cols[t]]`` (numpy reference)."""
    return np.einsum("ij,ij->i", A[rows], B[cols])


def solve_rows_exact_reference(indptr, indices, targets, F, reg):
    """Per-row ridge solves by dense least squares (numpy reference).

    Returns ``(X, rss)``: solutions of shape (n, q) and squared residuals (n,).
    """
    n, q = indptr.shape[0] - 1, F.shape[1]
    X = np.zeros((n, q), dtype=F.dtype)
    rss = np.zeros(n, dtype=F.dtype)
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        if hi == lo:
            continue
        A, b = F[indices[lo:hi]], targets[lo:hi]
        G = A.T @ A
        lam = np.asarray(reg, dtype=np.float64) * (hi - lo)
        G += np.diag(diag_shift(np.diag(G), lam, F.dtype))
        if not np.trace(G) > 0:
            # F[J_i] = 0 and no ridge (a zero factor row, as QR makes of zero
            # blocks of the data): every x fits alike, the least-norm one is 0;
            # the solve divided by zero
            rss[i] = b @ b
            continue
        X[i] = np.linalg.solve(G, A.T @ b)
        rss[i] = np.sum((A @ X[i] - b) ** 2)
    return X, rss


def solve_rows_iterative_reference(indptr, indices, targets, F, reg, X0, rtol, max_steps, sketch_size, keys,
                                   precond=None):
    """Warm-started (preconditioned) CG per row (numpy reference).

    ``rtol[i]`` is row ``i``'s relative tolerance: iterate until the normal
    equation residual ``g = F[J_i]^T (b - F[J_i] x) - lam_i x`` has dropped
    to ``rtol[i]`` times its warm-started value (or below the round-off
    floor ``floor_rel(eps) ||F[J_i]||_F ||b[J_i]||``, ``1e-14`` times the
    norms in float64 and the same multiple of ``eps`` in float32), or
    ``max_steps`` steps. ``g`` is updated by the recurrence the kernel uses. Because the warm start
    comes from the previous pass, its residual -- and hence the tolerance --
    is proportional to the current outer residual. With ``sketch_size > 0`` the preconditioner is
    ``R^T R = (S F[J_i])^T (S F[J_i]) + lam_i I`` for a CountSketch ``S`` with
    ``sketch_size`` rows whose bucket and sign come from ``keys`` (one
    random int64 per observation; ``S = I`` for a row of at most
    ``sketch_size`` observations), and the measure is the
    preconditioned residual ``z = (R^T R)^-1 g`` instead of ``g`` (the
    round-off floor still on ``g``): ``R^T R`` approximates the row's own
    normal matrix, so ``z`` approximates the error of ``x``. Where the first
    direction shows the sketch distorting that matrix by more than
    ``_SKETCH_DISTORTION``, or ``q`` or more steps leave the target unmet,
    the row's own normal matrix takes over (as preconditioner, or as the
    solve). Otherwise, with ``precond``
    a lower-triangular ``(q, q)`` factor ``L``, every row's preconditioner is
    ``L L^T`` (one matrix for all rows: under uniform sampling
    ``F[J_i]^T F[J_i] + lam_i I`` is about ``|J_i|`` times the same matrix).

    Returns ``(X, rss, steps)``: solutions, squared residuals, CG steps per row.
    """
    n, q = indptr.shape[0] - 1, F.shape[1]
    X = np.zeros((n, q), dtype=F.dtype)
    rss = np.zeros(n, dtype=F.dtype)
    steps = np.zeros(n, dtype=np.int64)
    rel = jitter_rel(float(np.finfo(F.dtype).eps))
    frel = floor_rel(float(np.finfo(F.dtype).eps))
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        if hi == lo:
            continue
        A, b = F[indices[lo:hi]], targets[lo:hi]
        lam = np.asarray(reg, dtype=np.float64) * (hi - lo)
        shift = diag_shift(np.sum(A * A, axis=0), lam, F.dtype)  # per unknown
        L = None
        if sketch_size > 0:
            if hi - lo <= sketch_size:
                SA = A  # no longer than the sketch: the row's own matrix (S = I)
            else:
                bucket, sign = sketch_bucket(keys[lo:hi], sketch_size)
                SA = np.zeros((sketch_size, q), dtype=F.dtype)
                np.add.at(SA, bucket, sign[:, None] * A)
            try:
                L = np.linalg.cholesky(SA.T @ SA + np.diag(shift) + rel * np.sum(SA * SA) / q * np.eye(q))
            except np.linalg.LinAlgError:  # as the kernel: plain CG for this row
                L = None
        if L is not None:
            def precondition(g, L=L):
                return np.linalg.solve(L.T, np.linalg.solve(L, g))
        elif sketch_size == 0 and precond is not None:
            def precondition(g, L=precond):
                return np.linalg.solve(L.T, np.linalg.solve(L, g))
        else:
            def precondition(g):
                return g

        x = X0[i].astype(F.dtype, copy=True)
        r = b - A @ x
        g = A.T @ r - shift * x
        floor = frel * np.linalg.norm(A) * np.linalg.norm(b)
        target = max(rtol[i] * np.linalg.norm(g), floor)
        z = precondition(g)
        # the sketched preconditioner approximates this row's own normal
        # matrix H, so z = M^-1 g approximates the error H^-1 g of x itself:
        # that is the measure, and weak directions count in full (the
        # residual g weighs them by their small eigenvalues)
        measure_z = L is not None
        target_z = rtol[i] * np.linalg.norm(z)
        p = z.copy()
        gz = g @ z
        k = 0
        trusted = False
        while k < max_steps and gz > 0 and (
                (np.linalg.norm(z) > target_z and np.linalg.norm(g) > floor) if measure_z
                else np.linalg.norm(g) > target):
            w = A @ p
            den = w @ w + p @ (shift * p)
            if not den > 0:
                break  # p vanished (or its curvature underflowed): nothing left to step along
            if measure_z and not trusted:
                trusted = True
                if den > _SKETCH_DISTORTION * gz:
                    # p^T H p / p^T M p = den / gz far above 1: M nearly
                    # annihilates a direction that then dominates z, and one step
                    # along it met the target with the rest of the error left (a
                    # sketch of a few buckets; the fits stalled at residuals of
                    # 1e-3 to 5e-2 where cg and exact reached 1e-11). The row's
                    # own normal matrix preconditions it instead.
                    try:
                        L = np.linalg.cholesky(A.T @ A + np.diag(shift) + rel * np.sum(A * A) / q * np.eye(q))
                    except np.linalg.LinAlgError:
                        pass  # as the kernel: the sketch stays
                    else:
                        z = precondition(g, L)
                        target_z = rtol[i] * np.linalg.norm(z)
                        p = z.copy()
                        gz = g @ z
                        continue
            alpha = gz / den
            x += alpha * p
            # the kernel's recurrence (g recomputed from a recursively updated
            # r drifted from it in float32 and diverged near round-off)
            g = g - alpha * (A.T @ w + shift * p)
            z = precondition(g, L) if measure_z else precondition(g)
            gz_new = g @ z
            p = z + (gz_new / gz) * p
            gz = gz_new
            k += 1
        if measure_z and k >= max_steps and k >= q and np.linalg.norm(z) > target_z and np.linalg.norm(g) > floor:
            # The steps ran out short of the target after q or more of them.
            # In exact arithmetic q steps solve the row, but a sketch of a few
            # buckets can leave the preconditioner so ill-conditioned that they
            # do not: the error of some rows of 8 observations (q = 3, sketch 6)
            # dropped only to 0.84 of the warm start's. The row's normal
            # equations then decide. (Fewer than q steps are an inexact solve
            # asked for, and kept.)
            try:
                x = np.linalg.solve(A.T @ A + np.diag(shift), A.T @ b)
            except np.linalg.LinAlgError:
                pass
        r = b - A @ x  # from x, as the kernel
        X[i] = x
        rss[i] = r @ r
        steps[i] = k
    return X, rss, steps


# --------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------
# The kernels live at module level: a jitted function that calls others
# defined in an enclosing function holds them as closure variables, whose
# serialized form differs from process to process, so Numba's on-disk cache
# never matched and every process compiled them again (seconds per solver).
_jit = numba.njit(cache=True, fastmath=True, nogil=True)
_bucket_nb = numba.njit(inline="always")(sketch_bucket)
_jitter_nb = numba.njit(inline="always")(jitter)
_jitter_rel_nb = numba.njit(inline="always")(jitter_rel)
_floor_rel_nb = numba.njit(inline="always")(floor_rel)


@_jit
def sampled_dot_nb(A, B, rows, cols, out):
    q = A.shape[1]
    for t in range(rows.shape[0]):
        i, j = rows[t], cols[t]
        acc = 0.0
        for a in range(q):
            acc += A[i, a] * B[j, a]
        out[t] = acc


@_jit
def cholesky_inplace(G, q):
    # lower Cholesky factor in the lower triangle of G; returns False on breakdown
    for j in range(q):
        d = G[j, j]
        for c in range(j):
            d -= G[j, c] * G[j, c]
        if d <= 0.0:
            return False
        d = np.sqrt(d)
        G[j, j] = d
        for r in range(j + 1, q):
            v = G[r, j]
            for c in range(j):
                v -= G[r, c] * G[j, c]
            G[r, j] = v / d
    return True


@_jit
def cholesky_solve(L, q, y):
    # solve L L^T x = y in place
    for r in range(q):
        v = y[r]
        for c in range(r):
            v -= L[r, c] * y[c]
        y[r] = v / L[r, r]
    for r in range(q - 1, -1, -1):
        v = y[r]
        for c in range(r + 1, q):
            v -= L[c, r] * y[c]
        y[r] = v / L[r, r]


@_jit
def gather_transposed(indices, targets, lo, nk, F, AT, b):
    # AT[:, :nk] = F[indices[lo:lo + nk]].T and b[:nk] = targets[lo:lo + nk],
    # zero-padded to a multiple of _PAD columns; returns the padded length.
    # The inner loops below run over the row's observations (long,
    # contiguous, vectorized) instead of over the q factor columns (too
    # short for the vectorizer), and the padding leaves no scalar remainder.
    q = F.shape[1]
    nkp = (nk + _PAD - 1) // _PAD * _PAD
    for t in range(nk):
        j = indices[lo + t]
        b[t] = targets[lo + t]
        for a in range(q):
            AT[a, t] = F[j, a]
    for t in range(nk, nkp):
        b[t] = 0.0
        for a in range(q):
            AT[a, t] = 0.0
    return nkp


@_jit
def max_row_length(indptr):
    maxlen = 0
    for i in range(indptr.shape[0] - 1):
        if indptr[i + 1] - indptr[i] > maxlen:
            maxlen = indptr[i + 1] - indptr[i]
    return (maxlen + _PAD - 1) // _PAD * _PAD


@_jit
def matvec_sumsq(AT, nk, x, beta, b, r):
    # r = AT[:, :nk]^T x + beta * b; returns ||r||^2
    q = AT.shape[0]
    for t in range(nk):
        r[t] = beta * b[t]
    for a in range(q):
        xa = x[a]
        for t in range(nk):
            r[t] += xa * AT[a, t]
    s = 0.0
    for t in range(nk):
        s += r[t] * r[t]
    return s


@_jit
def gram_lower(AT, nk, b, G, y):
    # lower triangle of G = AT AT^T and y = AT b (the first nk columns).
    # Rows a come four at a time, so that each load of AT[c] (or b)
    # serves four dot products: at k = 40 the block AT no longer fits the
    # first-level cache and one dot product per entry is bound by the
    # second level's bandwidth
    q = AT.shape[0]
    a = 0
    while a + 4 <= q:
        for c in range(a + 5):
            v = b if c == a + 4 else AT[c]
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for t in range(nk):
                vt = v[t]
                s0 += AT[a, t] * vt
                s1 += AT[a + 1, t] * vt
                s2 += AT[a + 2, t] * vt
                s3 += AT[a + 3, t] * vt
            if c == a + 4:
                y[a], y[a + 1], y[a + 2], y[a + 3] = s0, s1, s2, s3
            else:
                # entries above the diagonal (c > a + j) are never read
                G[a, c], G[a + 1, c], G[a + 2, c], G[a + 3, c] = s0, s1, s2, s3
        a += 4
    while a < q:
        s = 0.0
        for t in range(nk):
            s += AT[a, t] * b[t]
        y[a] = s
        for c in range(a + 1):
            s = 0.0
            for t in range(nk):
                s += AT[a, t] * AT[c, t]
            G[a, c] = s
        a += 1


@_jit
def row_buffers(indptr, F):
    # (rows, q, AT, b, r): per-row work arrays for the longest row, padded;
    # AT holds F[J_i]^T, gathered once per row, b the targets, r a residual
    q = F.shape[1]
    maxlen = max_row_length(indptr)
    return (indptr.shape[0] - 1, q, np.zeros((q, maxlen), dtype=F.dtype), np.zeros(maxlen, dtype=F.dtype),
            np.zeros(maxlen, dtype=F.dtype))


@_jit
def exact_nb(indptr, indices, targets, F, reg, X, rss, want_rss):
    n, q, AT, b, r = row_buffers(indptr, F)
    G = np.zeros((q, q), dtype=F.dtype)
    y = np.zeros(q, dtype=F.dtype)
    rel = _jitter_rel_nb(np.finfo(F.dtype).eps)
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        nk = hi - lo
        rss[i] = 0.0
        if nk == 0:
            for a in range(q):
                X[i, a] = 0.0
            continue
        nk = gather_transposed(indices, targets, lo, hi - lo, F, AT, b)  # padded length
        gram_lower(AT, nk, b, G, y)
        tr = 0.0
        for a in range(q):
            tr += G[a, a]
        for a in range(q):
            G[a, a] += _jitter_nb(G[a, a], tr / q, reg[a] * (hi - lo), rel)
        if not cholesky_inplace(G, q):
            # a zero matrix (F[J_i] = 0, no ridge) gets here, or one the shift
            # could not lift above rounding: x = 0, the least-norm answer of the
            # first (see the reference)
            for a in range(q):
                y[a] = 0.0
        else:
            cholesky_solve(G, q, y)
        if want_rss:
            rss[i] = matvec_sumsq(AT, nk, y, -1.0, b, r)
        for a in range(q):
            X[i, a] = y[a]


@_jit
def first_direction(L, q, g, z, p, use_pre):
    # z = (L L^T)^-1 g (z = g without a preconditioner), p = z; returns (g.z, ||z||^2)
    for a in range(q):
        z[a] = g[a]
    if use_pre:
        cholesky_solve(L, q, z)
    gz = 0.0
    nz = 0.0
    for a in range(q):
        p[a] = z[a]
        gz += g[a] * z[a]
        nz += z[a] * z[a]
    return gz, nz


@_jit
def iterative_nb(indptr, indices, targets, F, reg, X0, rtol, max_steps, sketch_size, keys, Lg, X, rss, steps,
                 want_rss):
    n, q, AT, b, r = row_buffers(indptr, F)
    w = np.zeros(b.shape[0], dtype=F.dtype)
    x = np.zeros(q, dtype=F.dtype)
    g = np.zeros(q, dtype=F.dtype)
    z = np.zeros(q, dtype=F.dtype)
    p = np.zeros(q, dtype=F.dtype)
    Gp = np.zeros(q, dtype=F.dtype)
    m_max = max(sketch_size, 1)
    SAT = np.zeros((q, m_max), dtype=F.dtype)
    L = np.zeros((q, q), dtype=F.dtype)
    G2 = np.zeros((q, q), dtype=F.dtype)
    y2 = np.zeros(q, dtype=F.dtype)
    D = np.zeros(q, dtype=F.dtype)  # the diagonal shift of the row's normal matrix
    rel = _jitter_rel_nb(np.finfo(F.dtype).eps)
    frel = _floor_rel_nb(np.finfo(F.dtype).eps)
    use_global = sketch_size == 0 and Lg.shape[0] == q
    if use_global:
        for a in range(q):
            for c in range(q):
                L[a, c] = Lg[a, c]
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        nk = hi - lo
        rss[i] = 0.0
        steps[i] = 0
        if nk == 0:
            for a in range(q):
                X[i, a] = 0.0
            continue
        nk = gather_transposed(indices, targets, lo, hi - lo, F, AT, b)  # padded length
        # residual of the warm start r = b - A x, gradient A^T r, ||A||_F^2
        for a in range(q):
            x[a] = X0[i, a]
        matvec_sumsq(AT, nk, x, -1.0, b, r)  # r = A x - b
        nb = 0.0
        for t in range(nk):
            nb += b[t] * b[t]
        fro = 0.0
        for a in range(q):
            s = 0.0
            f = 0.0
            for t in range(nk):
                s -= AT[a, t] * r[t]
                f += AT[a, t] * AT[a, t]
            g[a] = s
            D[a] = f
            fro += f
        for a in range(q):  # the shift of each unknown
            D[a] = _jitter_nb(D[a], fro / q, reg[a] * (hi - lo), rel)
        ng = 0.0
        for a in range(q):
            g[a] -= D[a] * x[a]
            ng += g[a] * g[a]
        # round-off floor, relative to ||A||_F ||b|| >= ||A^T b||
        target = max(rtol[i] * np.sqrt(ng), frel * np.sqrt(fro * nb))
        use_pre = use_global
        if sketch_size > 0:
            use_pre = True
            # CountSketch S A (m x q, stored transposed), then R^T R = (SA)^T SA + diag(D)
            # a row no longer than the sketch is its own "sketch" (S = I): hashing
            # its few observations into as many buckets merged some of them,
            # and the preconditioner, often singular in some direction,
            # stopped the iteration with most of the error left
            identity = hi - lo <= sketch_size
            m = hi - lo if identity else sketch_size
            for a in range(q):
                for b_ in range(m):
                    SAT[a, b_] = 0.0
            for t in range(hi - lo):
                if identity:
                    bkt, sgn = t, 1.0
                else:
                    bkt, sgn = _bucket_nb(keys[lo + t], m)
                for a in range(q):
                    SAT[a, bkt] += sgn * AT[a, t]
            sfro = 0.0
            for a in range(q):
                for c in range(a + 1):
                    s = 0.0
                    for b_ in range(m):
                        s += SAT[a, b_] * SAT[c, b_]
                    L[a, c] = s
                sfro += L[a, a]
            for a in range(q):
                L[a, a] += D[a] + rel * sfro / q
            if not cholesky_inplace(L, q):
                use_pre = False
        gz, nz = first_direction(L, q, g, z, p, use_pre)
        # the sketched solver measures its preconditioned residual (see the reference)
        floor = frel * np.sqrt(fro * nb)
        measure_z = sketch_size > 0 and use_pre
        target_z = rtol[i] * np.sqrt(nz)
        k = 0
        trusted = False
        while k < max_steps and gz > 0.0 and (
                (np.sqrt(nz) > target_z and np.sqrt(ng) > floor) if measure_z else np.sqrt(ng) > target):
            # w = A p, Gp = A^T w
            ww = matvec_sumsq(AT, nk, p, 0.0, b, w)
            pp = 0.0
            for a in range(q):
                s = 0.0
                for t in range(nk):
                    s += AT[a, t] * w[t]
                Gp[a] = s
                pp += D[a] * p[a] * p[a]
            den = ww + pp
            if not den > 0.0:
                break  # p vanished (or its curvature underflowed): nothing left to step along
            if measure_z and not trusted:
                trusted = True
                if den > _SKETCH_DISTORTION * gz:
                    # the sketch nearly annihilates a direction that dominates z:
                    # the row's own normal matrix instead (see the reference)
                    gram_lower(AT, nk, b, G2, y2)
                    for a in range(q):
                        G2[a, a] += D[a] + rel * fro / q
                    if cholesky_inplace(G2, q):
                        for a in range(q):
                            for c in range(q):
                                L[a, c] = G2[a, c]
                        gz, nz = first_direction(L, q, g, z, p, True)
                        target_z = rtol[i] * np.sqrt(nz)
                        continue
            alpha = gz / den
            ng = 0.0
            for a in range(q):
                x[a] += alpha * p[a]
                g[a] -= alpha * (Gp[a] + D[a] * p[a])
                z[a] = g[a]
                ng += g[a] * g[a]
            if use_pre:
                cholesky_solve(L, q, z)
            gz_new = 0.0
            nz = 0.0
            for a in range(q):
                gz_new += g[a] * z[a]
                nz += z[a] * z[a]
            beta = gz_new / gz
            for a in range(q):
                p[a] = z[a] + beta * p[a]
            gz = gz_new
            k += 1
        if measure_z and k >= max_steps and k >= q and np.sqrt(nz) > target_z and np.sqrt(ng) > floor:
            # q steps and more left the target unmet: the row's normal equations (see the reference)
            gram_lower(AT, nk, b, G2, y2)
            for a in range(q):
                G2[a, a] += D[a]
            if cholesky_inplace(G2, q):
                cholesky_solve(G2, q, y2)
                for a in range(q):
                    x[a] = y2[a]
        if want_rss:
            rss[i] = matvec_sumsq(AT, nk, x, -1.0, b, r)
        steps[i] = k
        for a in range(q):
            X[i, a] = x[a]


def _use_numba(*arrays) -> bool:
    return numba_enabled() and all(isinstance(a, np.ndarray) for a in arrays)


def _reg_vector(reg, q):
    """The ridge weight of each of ``q`` unknowns, float64 (one weight for all, or one each)."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(reg, dtype=np.float64), (q,)))


# --------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------
def sampled_dot(A, B, rows, cols):
    """``out[t] = A[rows[t]] @ B[cols[t]]`` for every observation ``t``.

    Numba for numpy arrays, the reference otherwise (array code).
    """
    if _use_numba(A, B, rows, cols):
        # one floating dtype for both (float32 only when both are): B was
        # cast to A's dtype, truncating floats to an integer A's
        dtype = np.float32 if A.dtype == B.dtype == np.float32 else np.float64
        A = np.ascontiguousarray(A, dtype=dtype)
        B = np.ascontiguousarray(B, dtype=dtype)
        out = np.empty(rows.shape[0], dtype=dtype)
        sampled_dot_nb(A, B, rows, cols, out)
        return out
    if isinstance(A, np.ndarray):
        return sampled_dot_reference(A, B, rows, cols)
    from .._array import get_namespace

    xp = get_namespace(A, B)
    return xp.sum(xp.take(A, rows, axis=0) * xp.take(B, cols, axis=0), axis=1)


def solve_rows_exact(indptr, indices, targets, F, reg, want_rss=True):
    """Exact per-row ridge solves by normal equations; returns ``(X, rss)``.

    With ``want_rss=False`` the residual sweep is skipped and ``rss`` is zero.
    ``reg`` is a ridge weight for every unknown or one per unknown.
    """
    if _use_numba(indptr, indices, targets, F):
        n, q = indptr.shape[0] - 1, F.shape[1]
        X = np.empty((n, q), dtype=F.dtype)
        rss = np.empty(n, dtype=F.dtype)
        exact_nb(indptr, indices, targets, np.ascontiguousarray(F), _reg_vector(reg, q), X, rss,
                 bool(want_rss))
        return X, rss
    return solve_rows_exact_reference(indptr, indices, targets, F, reg)


def solve_rows_iterative(indptr, indices, targets, F, reg, X0, rtol, max_steps, sketch_size=0, keys=None,
                         want_rss=True, precond=None):
    """Warm-started per-row CG, sketch-preconditioned (``sketch_size > 0``) or with one preconditioner ``precond``.

    Returns ``(X, rss, steps)``; see :func:`solve_rows_iterative_reference`.
    """
    rtol = np.broadcast_to(np.asarray(rtol, dtype=F.dtype), (indptr.shape[0] - 1,))
    if keys is None:
        keys = np.zeros(indices.shape[0], dtype=np.int64)
    if _use_numba(indptr, indices, targets, F, X0):
        n, q = indptr.shape[0] - 1, F.shape[1]
        X = np.empty((n, q), dtype=F.dtype)
        rss = np.empty(n, dtype=F.dtype)
        steps = np.empty(n, dtype=np.int64)
        Lg = np.zeros((0, 0), dtype=F.dtype) if precond is None else np.ascontiguousarray(precond, dtype=F.dtype)
        iterative_nb(
            indptr, indices, targets, np.ascontiguousarray(F), _reg_vector(reg, q),
            np.ascontiguousarray(X0, dtype=F.dtype), np.ascontiguousarray(rtol), int(max_steps),
            int(sketch_size), keys, Lg, X, rss, steps, bool(want_rss),
        )
        return X, rss, steps
    return solve_rows_iterative_reference(indptr, indices, targets, F, reg, X0, rtol, max_steps, sketch_size, keys,
                                          precond)
