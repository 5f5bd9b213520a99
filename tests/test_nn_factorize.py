"""Framework-free weight factorizations (no torch needed)."""

from __future__ import annotations

import math
import warnings

import array_api_strict as xps
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorapprox.nn import (
    LowRankFactors,
    allocate_ranks,
    breakeven_rank,
    cp_conv,
    interpolative_cost,
    interpolative_form,
    sparse_plus_lowrank,
    svd_factorize,
    tt_matrix,
    tucker2_conv,
    vbmf_rank,
    whitened_svd,
)
from tensorapprox.nn.calibration import docstring_first_lines, reference_sentences


def _tt_dense(cores, in_shape, out_shape):
    """Independent reference: contract the TT cores entry by entry."""
    M, N = math.prod(out_shape), math.prod(in_shape)
    W = np.zeros((M, N))
    for I in range(M):
        ii = np.unravel_index(I, out_shape)
        for J in range(N):
            jj = np.unravel_index(J, in_shape)
            v = np.ones((1, 1))
            for k, G in enumerate(cores):
                v = v @ G[:, ii[k], jj[k], :]
            W[I, J] = v[0, 0]
    return W


# ---------------------------------------------------------------------------
# svd_factorize
# ---------------------------------------------------------------------------

@settings(max_examples=25)
@given(m=st.integers(2, 12), n=st.integers(2, 12), seed=st.integers(0, 2**16), data=st.data())
def test_svd_factorize_is_eckart_young_optimal(m, n, seed, data):
    r = data.draw(st.integers(1, min(m, n)))
    W = np.random.default_rng(seed).standard_normal((m, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        f = svd_factorize(W, rank=r)
    s = np.linalg.svd(W, compute_uv=False)
    err = np.linalg.norm(W - f.full())
    assert f.left.shape == (m, r) and f.right.shape == (r, n)
    assert err == pytest.approx(np.sqrt(np.sum(s[r:] ** 2)), rel=1e-9, abs=1e-11)
    assert np.linalg.norm(W - f.full(), 2) == pytest.approx(s[r] if r < min(m, n) else 0.0, abs=1e-10 * s[0])


def test_svd_factorize_energy_and_param_ratio():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 30))
    s = np.linalg.svd(W, compute_uv=False)
    f = svd_factorize(W, energy=0.6)
    cum = np.cumsum(s ** 2) / np.sum(s ** 2)
    assert cum[f.rank - 1] >= 0.6 > cum[f.rank - 2]
    g = svd_factorize(W, param_ratio=0.5)
    assert g.rank == math.floor(0.5 * 40 * 30 / 70)
    assert g.n_params <= 0.5 * W.size


def test_svd_factorize_bad_input():
    W = np.ones((4, 3))
    with pytest.raises(ValueError, match="exactly one of rank, energy and param_ratio"):
        svd_factorize(W)
    with pytest.raises(ValueError, match="exactly one of rank, energy and param_ratio"):
        svd_factorize(W, rank=1, energy=0.5)
    with pytest.raises(ValueError, match="param_ratio must lie in"):
        svd_factorize(W, param_ratio=1.5)
    with pytest.raises(ValueError, match="param_ratio must lie in"):
        svd_factorize(W, param_ratio=0.0)
    with pytest.raises(ValueError, match="rank must be <= 3"):
        svd_factorize(W, rank=4)
    with pytest.raises(ValueError, match="W contains NaN or Inf"):
        svd_factorize(np.full((3, 3), np.nan), rank=1)
    with pytest.raises(ValueError, match="2-D weight matrix"):
        svd_factorize(np.ones((2, 2, 2)), rank=1)
    with pytest.warns(UserWarning, match="does not save parameters"):
        svd_factorize(np.ones((4, 4)), rank=2)


@pytest.mark.parametrize("scale", [1.0, 1e-170, 1e170])
def test_energy_rule_does_not_depend_on_the_scale(scale):
    # sigma^2 under- or overflowed at 1e-170 / 1e170 and the rank came out 1
    rng = np.random.default_rng(0)
    W = rng.standard_normal((30, 20)) * np.logspace(0, -3, 20)
    X = rng.standard_normal((200, 20))
    G = X.T @ X

    def energy_rank(s, frac=0.9):
        cum = np.cumsum(s ** 2) / np.sum(s ** 2)
        return int(np.searchsorted(cum, frac) + 1)

    ref_plain = energy_rank(np.linalg.svd(W, compute_uv=False))
    Gd = G + 1e-2 * np.trace(G) / 20 * np.eye(20)
    ref_white = energy_rank(np.linalg.svd(W @ np.linalg.cholesky(Gd), compute_uv=False))
    assert ref_plain > 1 and ref_white > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert svd_factorize(W * scale, energy=0.9).rank == ref_plain
        assert whitened_svd(W * scale, G, energy=0.9).rank == ref_white


def test_param_ratio_below_rank_one_warns():
    # rank 1 of a 10 x 10 matrix stores 20 numbers: param_ratio=0.05 (5
    # numbers) was overshot fourfold without a word
    rng = np.random.default_rng(0)
    W = rng.standard_normal((10, 10))
    X = rng.standard_normal((30, 10))
    for split in (lambda **kw: svd_factorize(W, **kw), lambda **kw: whitened_svd(W, X.T @ X, **kw)):
        with pytest.warns(UserWarning, match=r"param_ratio=0.05 allows 5 of the 100 numbers .*"
                                             r"rank 1 already stores 20"):
            f = split(param_ratio=0.05)
        assert f.rank == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            g = split(param_ratio=0.2)  # exactly rank 1's 20 numbers: within the budget
        assert g.rank == 1 and g.n_params <= 0.2 * W.size


def test_breakeven_rank():
    for m, n in [(384, 384), (1536, 384), (3, 5), (1, 1)]:
        r = breakeven_rank(m, n)
        assert r * (m + n) < m * n or r == 0
        assert (r + 1) * (m + n) >= m * n


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0, 5), ValueError, r"m must be >= 1, got 0"),
        ((5, -2), ValueError, r"n must be >= 1, got -2"),
        ((2.5, 5), TypeError, r"m must be an int, got float"),
        ((5, "7"), TypeError, r"n must be an int, got str"),
        ((True, 5), TypeError, r"m must be an int, got bool"),
    ],
)
def test_breakeven_rank_rejects_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        breakeven_rank(*args)


def test_breakeven_rank_accepts_numpy_ints():
    assert breakeven_rank(np.int64(384), np.int32(384)) == 191


# ---------------------------------------------------------------------------
# whitened_svd
# ---------------------------------------------------------------------------

@settings(max_examples=25)
@given(m=st.integers(2, 10), n=st.integers(2, 10), N=st.integers(1, 30), seed=st.integers(0, 2**16), data=st.data())
def test_whitened_svd_output_error_never_worse_than_svd(m, n, N, seed, data):
    """On the calibration inputs (any rank of X, singular Gram included)."""
    r = data.draw(st.integers(1, min(m, n)))
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, n))
    X = rng.standard_normal((N, n)) * rng.uniform(0.01, 5.0, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fw = whitened_svd(W, X.T @ X, rank=r, damping=0.0)
        fs = svd_factorize(W, rank=r)
    e_w = np.linalg.norm(X @ (W - fw.full()).T)
    e_s = np.linalg.norm(X @ (W - fs.full()).T)
    assert e_w <= e_s * (1 + 1e-9) + 1e-9 * np.linalg.norm(X @ W.T)
    # and it is the optimum: the tail of the whitened spectrum. The Cholesky
    # factor of a singular Gram matrix is accurate to about sqrt(eps) of its
    # scale, so the spectrum's zero tail shows up at that level.
    scale = np.sqrt(np.finfo(float).eps) * np.linalg.norm(W) * np.linalg.norm(X)
    assert e_w == pytest.approx(np.sqrt(np.sum(fw.singular_values[r:] ** 2)), rel=1e-6, abs=scale)


def test_whitened_svd_singular_gram_and_zero_gram():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((20, 16))
    X = rng.standard_normal((5, 16))  # rank-5 Gram: a plain Cholesky fails
    X[:, 3] = 0.0                      # a dead input feature
    G = X.T @ X
    for damping in (0.0, 1e-8, 1e-2):
        f = whitened_svd(W, G, rank=4, damping=damping)
        assert np.all(np.isfinite(f.full()))
    # with the damped Gram the result is the exact minimizer of the damped objective
    f = whitened_svd(W, G, rank=4, damping=1e-2)
    Gd = G + 1e-2 * np.trace(G) / 16 * np.eye(16)
    s = np.linalg.svd(W @ np.linalg.cholesky(Gd), compute_uv=False)
    err = np.sqrt(np.trace((W - f.full()) @ Gd @ (W - f.full()).T))
    assert err == pytest.approx(np.sqrt(np.sum(s[4:] ** 2)), rel=1e-9)
    # no activation at all: falls back to the weight itself
    f0 = whitened_svd(W, np.zeros((16, 16)), rank=4)
    assert np.linalg.norm(W - f0.full()) == pytest.approx(np.linalg.norm(W - svd_factorize(W, rank=4).full()))


def test_whitened_svd_asvd_and_bad_input():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((12, 8))
    X = rng.standard_normal((50, 8)) * np.linspace(0.1, 4, 8)
    f = whitened_svd(W, X.T @ X, rank=3, scaling="asvd")
    assert f.left.shape == (12, 3)
    np.testing.assert_allclose(f.left.T @ f.left, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match=r"gram must have shape \(8, 8\)"):
        whitened_svd(W, np.eye(7), rank=2)
    with pytest.raises(ValueError, match="gram contains NaN or Inf"):
        whitened_svd(W, np.full((8, 8), np.inf), rank=2)
    with pytest.raises(ValueError, match="scaling must be one of"):
        whitened_svd(W, np.eye(8), rank=2, scaling="diag")
    with pytest.raises(ValueError, match="damping must be >= 0"):
        whitened_svd(W, np.eye(8), rank=2, damping=-1.0)



@pytest.mark.parametrize("c", [1e-50, 1e40])
def test_whitened_svd_float32_weight_with_a_gram_beyond_float32_range(c):
    # gram was cast to W's dtype first: 1e-50 underflowed to zero (plain SVD,
    # silently) and 1e40 overflowed to Inf (LinAlgError)
    rng = np.random.default_rng(2)
    W = rng.standard_normal((20, 16))
    X = rng.standard_normal((200, 16)) * np.linspace(0.05, 5, 16)
    G = X.T @ X
    Gd = G + 1e-2 * np.trace(G) / 16 * np.eye(16)
    U, s, _ = np.linalg.svd(W @ np.linalg.cholesky(Gd), full_matrices=False)
    ref = U[:, :3] @ U[:, :3].T @ W
    f = whitened_svd(W.astype(np.float32), G * c, rank=3)
    assert f.left.dtype == np.float32 and f.singular_values.dtype == np.float32
    np.testing.assert_allclose(f.full(), ref, atol=1e-5 * np.abs(W).max())
    assert np.abs(ref - svd_factorize(W, rank=3).full()).max() > 0.1  # far from the plain split
    # the spectrum is that of W S for the Gram matrix as given
    np.testing.assert_allclose(f.singular_values, s * np.sqrt(c), rtol=1e-4)


@pytest.mark.parametrize("sw, sg", [(1e250, 1e150), (1e-300, 1e-100)])
@pytest.mark.filterwarnings("ignore:rank 6 does not save parameters")
def test_whitened_svd_energy_rank_when_the_spectrum_leaves_float64(sw, sg):
    # the spectrum of W S (near 1e325 and 1e-350 here) was scaled back before
    # the energy rule: Inf or 0 everywhere, rank 1 at every energy
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8, 6))
    X = rng.standard_normal((50, 6)) * np.linspace(0.2, 2, 6)
    G = X.T @ X
    Gd = G + 1e-2 * np.trace(G) / 6 * np.eye(6)
    s = np.linalg.svd(W @ np.linalg.cholesky(Gd), compute_uv=False)
    cum = np.cumsum(s ** 2) / np.sum(s ** 2)
    for energy in (0.5, 0.8, 0.95, 0.999):
        ref = int(np.searchsorted(cum, energy) + 1)
        f = whitened_svd(W * sw, G * sg, energy=energy)
        assert f.rank == ref == whitened_svd(W, G, energy=energy).rank
        np.testing.assert_allclose(f.full() / sw, whitened_svd(W, G, energy=energy).full(), rtol=1e-10, atol=1e-12)
    assert [whitened_svd(W, G, energy=e).rank for e in (0.5, 0.999)] != [1, 1]


def test_whitened_svd_rejects_a_gram_that_is_not_psd():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 4))
    V = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    with pytest.raises(ValueError, match="gram must be positive semi-definite"):
        whitened_svd(W, -np.eye(4), rank=1)
    with pytest.raises(ValueError, match="gram must be positive semi-definite"):
        whitened_svd(W, (V * [1.0, 0.5, 0.2, -1e-3]) @ V.T, rank=1, scaling="asvd")
    with pytest.raises(ValueError, match="gram must be symmetric"):
        whitened_svd(W, np.eye(4) + np.triu(np.ones((4, 4)), 1), rank=1)
    with pytest.raises(ValueError, match="gram must be positive semi-definite"):
        sparse_plus_lowrank(W, rank=1, density=0.1, gram=-np.eye(4))
    # Gram matrices with rounding noise, or singular ones, pass: a rank-1 Gram
    # matrix with a zero eigenvalue turned -2e-9 of the largest, asymmetric at
    # rounding level, is whitened as its symmetric part (the damping makes it
    # positive definite)
    n = 50
    x = np.ones(n)
    w = np.zeros(n)
    w[0], w[1] = 1 / np.sqrt(2), -1 / np.sqrt(2)  # orthogonal to x
    noisy = np.outer(x, x) - 1e-7 * np.outer(w, w) + 1e-15 * np.triu(rng.standard_normal((n, n)))
    Wn = rng.standard_normal((8, n))
    sym = (noisy + noisy.T) / 2
    U = np.linalg.svd(Wn @ np.linalg.cholesky(sym + 1e-3 * np.trace(sym) / n * np.eye(n)))[0][:, :2]
    np.testing.assert_allclose(whitened_svd(Wn, noisy, rank=2, damping=1e-3).full(), U @ U.T @ Wn, atol=1e-9)


def test_stored_factors_own_their_data():
    # left was a view of the whole SVD U (64 x 48 for a rank-4 split), and
    # the TT cores views of their unfoldings' U: the results kept them alive
    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 48))
    X = rng.standard_normal((100, 48))
    f = whitened_svd(W, X.T @ X, rank=4, damping=0.0)
    for a in (f.left, f.right):
        assert a.base is None or a.base.size == a.size
    assert f.left.flags.c_contiguous
    U = np.linalg.svd(W @ np.linalg.cholesky(X.T @ X), full_matrices=False)[0][:, :4]
    np.testing.assert_allclose(f.full(), U @ U.T @ W, atol=1e-10 * np.abs(W).max())
    T = tt_matrix(rng.standard_normal((64, 64)), (8, 8), (8, 8), ranks=2)
    for G in T.cores:
        assert G.base is None or G.base.size == G.size
    np.testing.assert_allclose(T.full(), _tt_dense(T.cores, T.in_shape, T.out_shape), atol=1e-12)


@pytest.mark.parametrize("make", ["svd", "cholesky", "asvd"])
def test_truncate_equals_the_split_computed_at_that_rank(make):
    rng = np.random.default_rng(5)
    W = rng.standard_normal((14, 10))
    X = rng.standard_normal((60, 10)) * np.linspace(0.2, 3, 10)

    def split(r):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # full rank saves nothing
            if make == "svd":
                return svd_factorize(W, rank=r)
            return whitened_svd(W, X.T @ X, rank=r, scaling=make)

    full = split(10)
    for r in (1, 4, 9, 10):
        t, d = full.truncate(r), split(r)
        assert t.rank == r and t.shape == (14, 10)
        # the columns are determined up to sign; the product is not
        np.testing.assert_allclose(t.full(), d.full(), atol=1e-12)
        np.testing.assert_array_equal(t.singular_values, full.singular_values)
    with pytest.raises(ValueError, match="rank must be <= 10"):
        full.truncate(11)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        full.truncate(0)
    with pytest.raises(TypeError, match="rank must be an int"):
        full.truncate(2.0)

def test_whitened_svd_is_array_api_generic():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((10, 6))
    X = rng.standard_normal((40, 6))
    f = whitened_svd(xps.asarray(W), xps.asarray(X.T @ X), rank=2)
    assert type(f.left).__module__.startswith("array_api_strict")
    g = whitened_svd(W, X.T @ X, rank=2)
    np.testing.assert_allclose(np.asarray(f.full()), g.full(), atol=1e-12)
    h = svd_factorize(xps.asarray(W), rank=2)
    assert type(h.left).__module__.startswith("array_api_strict")


# ---------------------------------------------------------------------------
# sparse plus low rank
# ---------------------------------------------------------------------------

def test_sparse_plus_lowrank_beats_svd_and_is_consistent():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 25))
    spikes = rng.choice(W.size, 8, replace=False)
    W.flat[spikes] += rng.choice([-4.0, 4.0], 8)
    f = sparse_plus_lowrank(W, rank=3, density=0.02)
    assert f.nnz == round(0.02 * W.size)
    e_slr = np.linalg.norm(W - f.full())
    e_svd = np.linalg.norm(W - svd_factorize(W, rank=3).full())
    assert e_slr < 0.5 * e_svd
    # independent reconstruction from the coordinates
    D = f.left @ f.right
    D[np.asarray(f.rows), np.asarray(f.cols)] += np.asarray(f.values)
    np.testing.assert_allclose(D, f.full(), atol=1e-12)
    assert f.n_params == 3 * (30 + 25) + 2 * f.nnz + 31
    g = sparse_plus_lowrank(W, rank=3, density=0.02, gram=np.eye(25))
    assert np.linalg.norm(W - g.full()) < e_svd


def _godec(W, rank, nnz, sweeps):
    """Reference GoDec: alternate the best rank-``rank`` fit of ``W - S`` and the ``nnz`` largest residuals."""
    S = np.zeros_like(W)
    for _ in range(sweeps):
        U, s, Vt = np.linalg.svd(W - S, full_matrices=False)
        L = (U[:, :rank] * s[:rank]) @ Vt[:rank]
        R = W - L
        keep = np.argsort(-np.abs(R).ravel())[:nnz]
        S = np.zeros_like(W)
        S.flat[keep] = R.flat[keep]
    return L + S


def test_sparse_plus_lowrank_alternates_until_the_error_stalls():
    # prev_err started at inf and inf - err <= 1e-9 inf held: one pass only,
    # whatever max_iter (error 10.88 where GoDec reaches 1.5e-5)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 30))
    spikes = rng.choice(W.size, 30, replace=False)
    W.flat[spikes] += rng.choice([-5.0, 5.0], 30)
    nnz = round(0.03 * W.size)
    errs = []
    for k in (1, 2, 3, 5, 8):
        f = sparse_plus_lowrank(W, rank=4, density=0.03, max_iter=k)
        np.testing.assert_allclose(f.full(), _godec(W, 4, nnz, k), atol=1e-9 * np.abs(W).max())
        errs.append(np.linalg.norm(W - f.full()))
    # documented: no alternation raises the error (gram=None)
    assert all(b <= a * (1 + 1e-12) for a, b in zip(errs, errs[1:]))
    assert errs[-1] < 0.5 * errs[0]
    f = sparse_plus_lowrank(W, rank=4, density=0.03)
    ref = np.linalg.norm(W - _godec(W, 4, nnz, 50))
    assert ref < 1e-4 * np.linalg.norm(W)
    assert np.linalg.norm(W - f.full()) <= 1.01 * ref


@pytest.mark.parametrize("scale", [1e-170, 1e200])
@pytest.mark.parametrize("with_gram", [False, True])
def test_sparse_plus_lowrank_does_not_depend_on_the_scale(scale, with_gram, monkeypatch):
    # the stopping error underflowed to 0 near 1e-170 (one alternation only,
    # error 0.486 where unit scale reaches 0.378) and overflowed to Inf near
    # 1e200 (all max_iter alternations)
    import tensorapprox.nn.factorize as fz

    rng = np.random.default_rng(5)
    W = rng.standard_normal((10, 8))
    X = rng.standard_normal((40, 8)) * np.linspace(0.5, 2, 8)
    G = X.T @ X if with_gram else None
    passes = []
    real_svd, real_white = fz.svd_factorize, fz._whitened_spectrum

    def count_svd(*a, **k):
        passes[-1] += 1
        return real_svd(*a, **k)

    def count_white(*a, **k):
        passes[-1] += 1
        return real_white(*a, **k)

    monkeypatch.setattr(fz, "svd_factorize", count_svd)
    monkeypatch.setattr(fz, "_whitened_spectrum", count_white)
    results = []
    for c in (1.0, scale):
        passes.append(0)
        results.append(sparse_plus_lowrank(W * c, rank=2, density=0.1, gram=G))
    base, f = results
    assert passes[0] == passes[1] > 1
    np.testing.assert_allclose(f.full() / scale, base.full(), rtol=1e-12, atol=1e-12 * np.abs(W).max())
    np.testing.assert_allclose(np.asarray(f.values) / scale, base.values, rtol=1e-12)
    assert np.array_equal(f.rows, base.rows) and np.array_equal(f.cols, base.cols)


def test_sparse_plus_lowrank_bad_input():
    W = np.ones((5, 4))
    with pytest.raises(ValueError, match=r"density must lie in \(0, 1\)"):
        sparse_plus_lowrank(W, rank=1, density=1.0)
    with pytest.raises(ValueError, match="rank must be <= 4"):
        sparse_plus_lowrank(W, rank=5, density=0.1)


# ---------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------

def test_vbmf_rank_finds_planted_rank():
    rng = np.random.default_rng(5)
    for r in (1, 3, 7):
        A = rng.standard_normal((50, r)) @ rng.standard_normal((r, 70)) * 3
        assert vbmf_rank(A + 0.3 * rng.standard_normal((50, 70))) == r
        assert vbmf_rank((A + 0.3 * rng.standard_normal((50, 70))).T) == r


@pytest.mark.parametrize("scale", [1e-170, 1e170, 2.0 ** -900, 2.0 ** 900])
def test_vbmf_rank_and_auto_tucker_ranks_do_not_depend_on_the_scale(scale):
    # the squared singular values under- or overflowed: rank 1 at 1e-170,
    # scipy's "bounds must be finite" at 1e170
    rng = np.random.default_rng(0)
    A = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 80)) + 0.1 * rng.standard_normal((60, 80))
    assert vbmf_rank(A) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert vbmf_rank(A * scale) == 5
        assert vbmf_rank((A * scale).T) == 5
    core = rng.standard_normal((3, 2, 3, 3))
    K = np.einsum("abyx,oa,ib->oiyx", core, rng.standard_normal((10, 3)), rng.standard_normal((6, 2)))
    K = K + 1e-3 * rng.standard_normal(K.shape)
    base = tucker2_conv(K)
    f = tucker2_conv(K * scale)
    assert base.ranks == f.ranks == (3, 2)
    np.testing.assert_allclose(f.full() / scale, base.full(), atol=1e-9 * np.abs(K).max())


def test_tucker2_conv_exact_and_truncated():
    rng = np.random.default_rng(6)
    core = rng.standard_normal((3, 2, 3, 3))
    Uo, Ui = rng.standard_normal((10, 3)), rng.standard_normal((6, 2))
    K = np.einsum("abyx,oa,ib->oiyx", core, Uo, Ui)
    f = tucker2_conv(K, ranks=(3, 2))
    np.testing.assert_allclose(f.full(), K, atol=1e-10 * np.abs(K).max())
    assert f.first.shape == (2, 6) and f.core.shape == (3, 2, 3, 3) and f.last.shape == (10, 3)
    assert f.n_params == 12 + 54 + 30
    # automatic ranks recover the planted ones under small noise
    g = tucker2_conv(K + 1e-3 * rng.standard_normal(K.shape), ranks="auto")
    assert g.ranks == (3, 2)
    # truncation: never worse than the truncated HOSVD it starts from
    K2 = rng.standard_normal((8, 6, 3, 3))
    h = tucker2_conv(K2, ranks=(4, 3))
    U0 = np.linalg.svd(K2.reshape(8, -1), full_matrices=False)[0][:, :4]
    U1 = np.linalg.svd(np.moveaxis(K2, 1, 0).reshape(6, -1), full_matrices=False)[0][:, :3]
    P = np.einsum("oa,pa,ib,jb,pjyx->oiyx", U0, U0, U1, U1, K2)
    assert np.linalg.norm(K2 - h.full()) <= np.linalg.norm(K2 - P) * (1 + 1e-12)


def test_tucker2_conv_max_iter_zero_returns_the_st_hosvd_start():
    # max_iter=0 ran one HOOI sweep all the same (max(max_iter, 1) was passed on)
    rng = np.random.default_rng(0)
    K = rng.standard_normal((8, 6, 3, 3))
    f0 = tucker2_conv(K, ranks=(4, 2), max_iter=0)
    f1 = tucker2_conv(K, ranks=(4, 2), max_iter=1)
    # ST-HOSVD truncates the largest reduction first: mode 1 (6 -> 2), then
    # mode 0 (8 -> 4) of the projected kernel; the spatial modes keep full rank
    U1 = np.linalg.svd(np.moveaxis(K, 1, 0).reshape(6, -1), full_matrices=False)[0][:, :2]
    K1 = np.einsum("oiyx,ib->obyx", K, U1)
    U0 = np.linalg.svd(K1.reshape(8, -1), full_matrices=False)[0][:, :4]
    ref = np.einsum("oa,pa,pbyx,ib->oiyx", U0, U0, K1, U1)
    np.testing.assert_allclose(f0.full(), ref, atol=1e-10 * np.abs(K).max())
    e0, e1 = np.linalg.norm(K - f0.full()), np.linalg.norm(K - f1.full())
    assert e1 < e0 * (1 - 1e-6)  # the sweep improves on the start, so they differ


def _tucker2_reference(K, r_out, r_in, sweeps=200):
    """Best Tucker-2 fit by alternating SVDs over the two channel modes only (spatial modes untouched)."""
    c_out, c_in = K.shape[:2]
    U_in = np.linalg.svd(np.moveaxis(K, 1, 0).reshape(c_in, -1), full_matrices=False)[0][:, :r_in]
    for _ in range(sweeps):
        A = np.einsum("oiyx,ib->obyx", K, U_in)
        U_out = np.linalg.svd(A.reshape(c_out, -1), full_matrices=False)[0][:, :r_out]
        B = np.einsum("oiyx,oa->iayx", K, U_out)
        U_in = np.linalg.svd(B.reshape(c_in, -1), full_matrices=False)[0][:, :r_in]
    return np.einsum("oa,pa,ib,jb,pjyx->oiyx", U_out, U_out, U_in, U_in, K)


@pytest.mark.parametrize("shape, ranks, capped", [
    ((64, 3, 3, 3), (40, 3), (27, 3)),  # an RGB input layer: r_out <= 3 * 3 * 3
    ((20, 16, 1, 3), (1, 1), (1, 1)),   # a 1 x 3 kernel at rank 1: spatial rank 3 > 1 * 1 * 1
    ((12, 2, 1, 2), (8, 2), (4, 2)),
    ((3, 30, 2, 2), (3, 25), (3, 12)),
])
def test_tucker2_conv_ranks_beyond_what_the_other_modes_carry(shape, ranks, capped):
    # HOOI refused these (rank exceeds the product of the other ranks), so
    # compress_model crashed on ordinary convolutions; the ranks are lowered
    # to what the other modes can carry, and the fit is the best Tucker-2 fit
    K = np.random.default_rng(11).standard_normal(shape)
    f = tucker2_conv(K, ranks=ranks, max_iter=200)  # HOOI to convergence, as the reference
    assert f.ranks == capped and f.core.shape == capped + shape[2:]
    ref = _tucker2_reference(K, *ranks)
    err, err_ref = np.linalg.norm(K - f.full()), np.linalg.norm(K - ref)
    assert err <= err_ref * (1 + 1e-6) + 1e-12 * np.linalg.norm(K)
    if capped[0] == min(shape[0], shape[1] * shape[2] * shape[3]) and capped[1] == shape[1]:
        np.testing.assert_allclose(f.full(), K, atol=1e-12 * np.abs(K).max())  # nothing was cut


def test_tucker2_and_cp_bad_input():
    with pytest.raises(ValueError, match="4-D convolution kernel"):
        tucker2_conv(np.ones((3, 3, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"ranks\[0\] must be <= 3"):
        tucker2_conv(np.ones((3, 2, 3, 3)), ranks=(4, 1))
    with pytest.raises(ValueError, match="ranks must be one of 'auto'"):
        tucker2_conv(np.ones((3, 2, 3, 3)), ranks="vbmf")
    with pytest.raises(ValueError, match="K must have at least 4 dimensions"):
        cp_conv(np.ones((3, 3)), rank=1)


def test_cp_conv_recovers_exact_cp_kernel():
    rng = np.random.default_rng(7)
    A = [rng.standard_normal((n, 3)) for n in (8, 5, 3, 3)]
    K = np.einsum("ar,br,cr,dr->abcd", *A)
    f = cp_conv(K, rank=3, random_state=0, max_iter=500, tol=0.0)
    ref = np.einsum("ar,br,cr,dr->abcd", f.out, f.inp, f.vert, f.horiz)
    np.testing.assert_allclose(ref, f.full(), atol=1e-12)
    assert np.linalg.norm(ref - K) <= 1e-6 * np.linalg.norm(K)
    # ALS never increases the error (up to rounding once it reaches machine precision)
    assert all(b <= a * (1 + 1e-9) + 1e-12 for a, b in zip(f.history, f.history[1:]))
    assert f.n_params == 3 * (8 + 5 + 3 + 3)


def test_cp_conv_does_not_depend_on_the_scale():
    # at K * 1e-170 the factors collapsed to zero while history[-1] said 0.0
    # (the true relative error was 1.0); at 1e170 the SVD in pinv failed
    rng = np.random.default_rng(0)
    K = np.einsum("ar,br,cr,dr->abcd", *[rng.standard_normal((n, 2)) for n in (6, 5, 3, 3)])
    base = cp_conv(K, rank=2, random_state=0)
    for scale in (2.0 ** -560, 2.0 ** 560):
        # a power of two changes no rounding: the same sweeps, the factors scaled
        f = cp_conv(K * scale, rank=2, random_state=0)
        assert f.history == base.history
        np.testing.assert_allclose(f.full() / scale, base.full(), rtol=1e-12, atol=1e-14 * np.abs(K).max())
    for scale in (1e-170, 1e170):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            f = cp_conv(K * scale, rank=2, random_state=0)
        true = np.linalg.norm(f.full() / scale - K) / np.linalg.norm(K)
        assert true < 1e-8
        assert f.history[-1] == pytest.approx(true, abs=1e-12)


# ---------------------------------------------------------------------------
# tensor train
# ---------------------------------------------------------------------------

@settings(max_examples=15)
@given(seed=st.integers(0, 2**16), d=st.integers(2, 3), r=st.integers(1, 3))
def test_tt_matrix_reproduces_tt_structured_matrix(seed, d, r):
    rng = np.random.default_rng(seed)
    in_shape = tuple(rng.integers(2, 4, d))
    out_shape = tuple(rng.integers(2, 4, d))
    bonds = (1,) + (r,) * (d - 1) + (1,)
    cores = [rng.standard_normal((bonds[k], out_shape[k], in_shape[k], bonds[k + 1])) for k in range(d)]
    W = _tt_dense(cores, in_shape, out_shape)
    T = tt_matrix(W, in_shape, out_shape)
    np.testing.assert_allclose(_tt_dense(T.cores, in_shape, out_shape), W, atol=1e-9 * np.abs(W).max())
    assert all(rk <= r for rk in T.ranks)
    x = rng.standard_normal((4, math.prod(in_shape)))
    np.testing.assert_allclose(T.matvec(x), x @ W.T, atol=1e-9 * np.abs(x @ W.T).max())


@settings(max_examples=15)
@given(seed=st.integers(0, 2**16), rtol=st.floats(0.05, 0.9))
def test_tt_matrix_respects_error_bound(seed, rtol):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((24, 18)) * np.logspace(0, -2, 18)
    T = tt_matrix(W, in_shape=(3, 3, 2), out_shape=(2, 3, 4), rtol=rtol)
    dense = _tt_dense(T.cores, T.in_shape, T.out_shape)
    assert np.linalg.norm(W - dense) <= rtol * np.linalg.norm(W) * (1 + 1e-12)
    np.testing.assert_allclose(T.full(), dense, atol=1e-12 * np.abs(W).max() + 1e-14)


def test_tt_matrix_finds_exact_ranks_in_float32():
    # the rank floor used float64's eps on float32 singular values: (16, 16) for (2, 2)
    rng = np.random.default_rng(0)
    ins = outs = (4, 4, 4)
    bonds = (1, 2, 2, 1)
    cores = [rng.standard_normal((bonds[k], outs[k], ins[k], bonds[k + 1])) for k in range(3)]
    W = _tt_dense(cores, ins, outs).astype(np.float32)
    T = tt_matrix(W, ins, outs)
    assert T.ranks == (2, 2) and T.n_params == 2 * 16 + 2 * 16 * 2 + 2 * 16
    assert all(G.dtype == np.float32 for G in T.cores)
    np.testing.assert_allclose(_tt_dense(T.cores, ins, outs), W, atol=1e-5 * np.abs(W).max())


def test_tt_matrix_rounding_rule_does_not_grow_with_the_unfolding():
    # the rank floor 100 eps max(C.shape) sigma_1 of each unfolding reached
    # 3.1 sigma_1 for a 4 x 262144 float32 unfolding: a random 1024 x 1024
    # weight split (2, 512) x (2, 512) kept rank 1 of its exact 4 (error
    # 0.865), and explicit ranks were cut the same way; 1.6 sigma_1 here
    rng = np.random.default_rng(0)
    W = rng.standard_normal((1024, 512)).astype(np.float32)
    W64 = W.astype(np.float64)
    for T in (tt_matrix(W, (2, 256), (2, 512)), tt_matrix(W, (2, 256), (2, 512), ranks=4)):
        assert T.ranks == (4,) and T.cores[0].dtype == np.float32
        err = np.linalg.norm(T.full().astype(np.float64) - W64) / np.linalg.norm(W64)
        assert err <= 1e-6
    # exact TT ranks behind wide unfoldings (4 x 65536, then 16384 x 4) in float32
    ins = outs = (2, 128, 2)
    bonds = (1, 3, 3, 1)
    cores = [rng.standard_normal((bonds[k], outs[k], ins[k], bonds[k + 1])) for k in range(3)]
    W = np.einsum("aijb,bklc,cmnd->ikmjln", *cores).reshape(512, 512)
    T = tt_matrix(W.astype(np.float32), ins, outs)
    assert T.ranks == (3, 3) and tt_matrix(W, ins, outs).ranks == (3, 3)
    err = np.linalg.norm(T.full().astype(np.float64) - W) / np.linalg.norm(W)
    assert err <= 1e-6


@pytest.mark.parametrize("scale", [1e170, 1e-170, 2.0 ** 600, 2.0 ** -600])
def test_tt_matrix_rtol_bound_holds_at_any_scale(scale):
    # ||W|| overflowed at 1e170 (ranks (1, 1), error 0.78 > rtol) and
    # underflowed at 1e-170 (nothing truncated)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((24, 18)) * np.logspace(0, -2, 18)
    base = tt_matrix(W, (3, 3, 2), (2, 3, 4), rtol=0.3)
    T = tt_matrix(W * scale, (3, 3, 2), (2, 3, 4), rtol=0.3)
    assert T.ranks == base.ranks
    dense = _tt_dense(T.cores, T.in_shape, T.out_shape) / scale
    assert np.linalg.norm(W - dense) <= 0.3 * np.linalg.norm(W)
    np.testing.assert_allclose(dense, base.full(), atol=1e-12 * np.abs(W).max())


def test_tt_matrix_bad_input():
    W = np.ones((6, 4))
    with pytest.raises(ValueError, match="out_shape x in_shape gives"):
        tt_matrix(W, (2, 2), (2, 2))
    with pytest.raises(ValueError, match="same length d >= 2"):
        tt_matrix(W, (4,), (6,))
    with pytest.raises(ValueError, match="ranks needs d - 1 = 1 entries"):
        tt_matrix(W, (2, 2), (2, 3), ranks=(1, 1))
    with pytest.raises(ValueError, match="rtol must lie in the open interval"):
        tt_matrix(W, (2, 2), (2, 3), rtol=1.0)
    T = tt_matrix(W, (2, 2), (2, 3))
    with pytest.raises(ValueError, match="x has 5 features but the TT matrix takes 4"):
        T.matvec(np.ones((2, 5)))


# ---------------------------------------------------------------------------
# row-interpolative form
# ---------------------------------------------------------------------------

@settings(max_examples=25)
@given(m=st.integers(1, 12), n=st.integers(1, 12), seed=st.integers(0, 2**16), data=st.data())
def test_interpolative_form_rewrites_the_product_exactly(m, n, seed, data):
    r = data.draw(st.integers(1, min(m, n)))
    rng = np.random.default_rng(seed)
    f = LowRankFactors(rng.standard_normal((m, r)), rng.standard_normal((r, n)), np.ones(min(m, n)))
    g = interpolative_form(f)
    P = f.left @ f.right
    # the rows split into skeleton and the rest
    assert sorted(np.concatenate([g.rows, g.others]).tolist()) == list(range(m))
    assert g.rows.shape == (r,) and g.coef.shape == (m - r, r) and g.skeleton.shape == (r, n)
    # the skeleton is made of rows of the product, the rest are combinations of them
    np.testing.assert_allclose(g.skeleton, P[g.rows], rtol=1e-10, atol=1e-10 * np.abs(P).max())
    np.testing.assert_allclose(g.coef @ g.skeleton, P[g.others], rtol=1e-9, atol=1e-9 * np.abs(P).max())
    np.testing.assert_allclose(g.full(), P, rtol=1e-9, atol=1e-9 * np.abs(P).max())
    assert g.n_params == r * (m + n - r) + m == interpolative_cost(m, n, r)
    assert g.rank == r and g.shape == (m, n)


def test_interpolative_form_keeps_dtype_and_error():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((40, 30)).astype(np.float32)
    f = svd_factorize(W, rank=12)
    g = interpolative_form(f)
    assert g.skeleton.dtype == np.float32 and g.coef.dtype == np.float32
    # the same matrix: the truncation error of the SVD is kept (float32 rounding aside)
    assert np.linalg.norm(W - g.full()) == pytest.approx(np.linalg.norm(W - f.full()), rel=1e-5)
    # fewer numbers than the two factors, and below the dense size past the break-even rank
    assert g.n_params < f.n_params
    assert interpolative_cost(40, 30, 25) < 40 * 30 <= 25 * (40 + 30)


def test_one_rule_decides_the_interpolative_form():
    # compress_model's choice of form and the allocation's cost table share
    # one rule; it agrees with the public cost function at every rank
    from tensorapprox.nn.allocation import _costs, _interpolative_pays

    for m, n in ((40, 30), (30, 40), (384, 1536), (7, 5)):
        r = np.arange(1, min(m, n) + 1)
        two = r * (m + n)
        inter = np.array([interpolative_cost(m, n, int(k)) for k in r])
        np.testing.assert_array_equal(_interpolative_pays(m, n, r), inter < two)
        np.testing.assert_array_equal(_costs(m, n, "interpolative"), np.minimum(inter, two))
        np.testing.assert_array_equal(_costs(m, n, "product"), two)


def test_interpolative_form_array_api():
    W = np.random.default_rng(5).standard_normal((9, 7))
    f = svd_factorize(xps.asarray(W), rank=3)
    g = interpolative_form(f)
    assert isinstance(g.coef, type(f.left)) and isinstance(g.full(), type(f.left))
    np.testing.assert_allclose(np.asarray(g.full()), svd_factorize(W, rank=3).full(), atol=1e-12)


def test_interpolative_form_promotes_integer_factors():
    # the coefficients were cast back to the factors' integer dtype: coef [[0 0]]
    for left, right in ((np.array([[1, 2], [3, 4], [5, 7]]), np.array([[1, 0, 1], [0, 1, 1]])),
                        (np.array([[True, False], [True, True], [False, True]]), np.eye(2, 3, dtype=bool))):
        f = LowRankFactors(left, right, np.ones(2))
        g = interpolative_form(f)
        assert g.coef.dtype == np.float64 and g.skeleton.dtype == np.float64
        P = left.astype(float) @ right.astype(float)
        np.testing.assert_allclose(g.skeleton, P[g.rows], atol=1e-12)
        np.testing.assert_allclose(g.coef @ g.skeleton, P[g.others], atol=1e-12)
        np.testing.assert_allclose(g.full(), P, atol=1e-12)
    # the integer example by hand: row 1 = -1/3 row 0 + 2/3 row 2 (rows 0 and 2 kept)
    g = interpolative_form(LowRankFactors(np.array([[1, 2], [3, 4], [5, 7]]), np.eye(2, dtype=int), np.ones(2)))
    if list(g.rows) == [0, 2]:
        np.testing.assert_allclose(g.coef, [[-1 / 3, 2 / 3]], atol=1e-12)


def test_interpolative_form_of_a_rank_deficient_split_is_exact():
    # a left factor with zero or dependent columns (the U sqrt(s) of an
    # all-zero layer, or of a low-rank one truncated above its rank) raised
    # "the left factor is rank deficient", although the product is exactly
    # representable at that rank; compress_model(factor_form='interpolative')
    # failed on zero-initialised layers
    rng = np.random.default_rng(7)
    low = rng.standard_normal((40, 6)) @ rng.standard_normal((6, 30))
    dependent = rng.standard_normal((6, 3))
    dependent[:, 2] = dependent[:, 0]
    cases = [svd_factorize(np.zeros((40, 30)), rank=12), svd_factorize(low, rank=16),
             LowRankFactors(dependent, rng.standard_normal((3, 5)), np.ones(5)),
             LowRankFactors(np.zeros((5, 2)), rng.standard_normal((2, 4)), np.ones(2))]
    for f in cases:
        P = np.asarray(f.left) @ np.asarray(f.right)  # the product, the independent reference
        g = interpolative_form(f)
        m, r = np.shape(f.left)
        assert g.rank == r and g.shape == P.shape
        assert sorted(np.concatenate([g.rows, g.others]).tolist()) == list(range(m))
        scale = max(np.abs(P).max(), 1.0)
        np.testing.assert_allclose(g.skeleton, P[g.rows], atol=1e-12 * scale)
        np.testing.assert_allclose(g.full(), P, atol=1e-12 * scale)
        assert np.isfinite(g.coef).all() and np.abs(g.coef).max() <= 10.0


def test_interpolative_form_bad_input():
    rng = np.random.default_rng(4)
    with pytest.raises(TypeError, match="factors must be a LowRankFactors"):
        interpolative_form(rng.standard_normal((4, 4)))
    with pytest.raises(ValueError, match=r"do not chain as \(m, r\) @ \(r, n\)"):
        interpolative_form(LowRankFactors(rng.standard_normal((6, 3)), rng.standard_normal((2, 5)), np.ones(5)))
    with pytest.raises(ValueError, match="rank 4 exceeds the 3 rows"):
        interpolative_form(LowRankFactors(rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), np.ones(3)))
    bad = rng.standard_normal((6, 3))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        interpolative_form(LowRankFactors(bad, rng.standard_normal((3, 5)), np.ones(5)))
    with pytest.raises(ValueError, match="rank must be"):
        interpolative_cost(4, 5, 5)
    with pytest.raises(TypeError, match="m must be an int"):
        interpolative_cost(4.0, 5, 2)


def test_interpolative_cost_saves_exactly_while_the_documented_condition_holds():
    # the docstring claimed a saving at every rank up to min(m, n) - 1 but on
    # the smallest matrices; 384 x 384 at rank 383 stores 147839 > 147456
    for m in range(1, 41):
        for n in range(1, 41):
            for r in range(1, min(m, n) + 1):
                cost = r * (n) + (m - r) * r + m  # skeleton, coefficients, row indices
                assert interpolative_cost(m, n, r) == cost
                assert (cost < m * n) == ((m - r) * (n - r) > m)
    assert interpolative_cost(384, 384, 383) > 384 * 384
    assert max(r for r in range(1, 385) if interpolative_cost(384, 384, r) < 384 * 384) == 364


# ---------------------------------------------------------------------------
# allocation
# ---------------------------------------------------------------------------

def test_allocate_uniform_and_global():
    shapes = [(64, 64), (64, 64), (128, 32)]
    rng = np.random.default_rng(8)
    spectra = [0.5 ** np.arange(64), np.ones(64), np.sort(rng.uniform(0, 1, 32))[::-1]]
    u = allocate_ranks(spectra, 0.5, "uniform", shapes=shapes)
    assert u == [16, 16, math.floor(0.5 * 128 * 32 / 160)]
    for p in (0.1, 0.3, 0.5, 0.8):
        g = allocate_ranks(spectra, p, "global", shapes=shapes)
        cost = sum(m * n if r * (m + n) >= m * n else r * (m + n) for r, (m, n) in zip(g, shapes))
        assert cost <= p * sum(m * n for m, n in shapes)
        assert all(r >= 1 for r in g)
        # the global allocation removes at least as much relative error as the uniform one
        def removed(ranks):
            return sum(np.sum(s[:r] ** 2) / np.sum(s ** 2) for s, r in zip(spectra, ranks))
        assert removed(g) >= removed(allocate_ranks(spectra, p, "uniform", shapes=shapes)) - 1e-12
    # the nearly low-rank layer gets a small rank
    assert allocate_ranks(spectra, 0.5, "global", shapes=shapes)[0] < 8
    # budget 1: square layers stay dense (rank 32 saves nothing), the 128 x 32 one
    # can still be split at its break-even rank 25 (25 * 160 < 4096)
    assert allocate_ranks(spectra, 1.0, "uniform", shapes=shapes) == [64, 64, 25]


def test_allocate_weighted_global():
    shapes = [(64, 64), (64, 64), (128, 32)]
    rng = np.random.default_rng(9)
    spectra = [0.9 ** np.arange(64), 0.9 ** np.arange(64), np.sort(rng.uniform(0, 1, 32))[::-1]]
    plain = allocate_ranks(spectra, 0.3, "global", shapes=shapes)
    assert allocate_ranks(spectra, 0.3, "global", shapes=shapes, weights=[1.0, 1.0, 1.0]) == plain
    # equal spectra: the heavier layer gets the larger rank, and more weight never lowers it
    heavy = [allocate_ranks(spectra, 0.3, "global", shapes=shapes, weights=[w, 1.0, 1.0])[0]
             for w in (0.1, 1.0, 3.0, 10.0)]
    assert heavy == sorted(heavy) and heavy[-1] > heavy[0]
    w = np.array([5.0, 1.0, 0.5])
    g = allocate_ranks(spectra, 0.3, "global", shapes=shapes, weights=w)
    cost = sum(m * n if r * (m + n) >= m * n else r * (m + n) for r, (m, n) in zip(g, shapes))
    assert cost <= 0.3 * sum(m * n for m, n in shapes)

    def weighted_left(ranks):
        return sum(wi * np.sum(s[r:] ** 2) / np.sum(s ** 2) for wi, s, r in zip(w, spectra, ranks))
    # it leaves less weighted error than the unweighted and the uniform allocations
    assert weighted_left(g) <= weighted_left(plain) + 1e-12
    assert weighted_left(g) <= weighted_left(allocate_ranks(spectra, 0.3, "uniform", shapes=shapes)) + 1e-12
    with pytest.raises(ValueError, match="got 2 weights for 3 layers"):
        allocate_ranks(spectra, 0.3, "global", shapes=shapes, weights=[1.0, 2.0])
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="weights must be finite and non-negative"):
            allocate_ranks(spectra, 0.3, "global", shapes=shapes, weights=[1.0, bad, 1.0])


def test_allocate_bad_input():
    with pytest.raises(ValueError, match=r"budget must lie in \(0, 1\]"):
        allocate_ranks([np.ones(3)], 1.5, shapes=[(3, 3)])
    with pytest.raises(ValueError, match=r"budget must lie in \(0, 1\]"):
        allocate_ranks([np.ones(3)], 0.0, shapes=[(3, 3)])
    with pytest.raises(ValueError, match="strategy must be one of"):
        allocate_ranks([np.ones(3)], 0.5, "greedy", shapes=[(3, 3)])
    with pytest.raises(ValueError, match="got 2 spectra but 1 shapes"):
        allocate_ranks([np.ones(3)] * 2, 0.5, shapes=[(3, 3)])


def test_allocate_global_does_not_depend_on_the_scale_of_each_spectrum():
    # sigma^2 under- or overflowed: [1, 1] at 1e-170 (nothing to gain),
    # [16, 16] with NaN keys at 1e170, against [3, 29] at scale 1
    steep, flat = 0.5 ** np.arange(64), np.ones(64)
    shapes = [(64, 64)] * 2
    assert allocate_ranks([steep, flat], 0.5, "global", shapes=shapes) == [3, 29]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for a, b in ((1e-170, 1e-170), (1e170, 1e170), (1e-170, 1e170), (1e170, 2.0 ** -1000)):
            assert allocate_ranks([steep * a, flat * b], 0.5, "global", shapes=shapes) == [3, 29]


@pytest.mark.parametrize("spectra, shapes, strategy, error, match", [
    ([np.ones(3), np.ones(64)], [(64, 64)] * 2, "global", ValueError,
     r"spectra\[0\] has 3 singular values, but its 64 x 64 layer has min\(m, n\) = 64"),
    ([np.ones(3)], [(64, 64)], "uniform", ValueError, r"spectra\[0\] has 3 singular values"),
    ([np.zeros(0)], [(8, 8)], "global", ValueError, r"spectra\[0\] has 0 singular values"),
    ([np.full(8, np.nan), np.ones(8)], [(8, 8)] * 2, "global", ValueError,
     r"spectra\[0\] must hold finite, non-negative singular values"),
    ([np.ones(8), -np.ones(8)], [(8, 8)] * 2, "uniform", ValueError, r"spectra\[1\] must hold finite"),
    ([np.ones(3)], [(0, 3)], "uniform", ValueError, r"shapes\[0\]\[0\] must be >= 1, got 0"),
    ([np.ones(3)], [(3, -3)], "uniform", ValueError, r"shapes\[0\]\[1\] must be >= 1, got -3"),
    ([np.ones(3)], [(3.9, 3.9)], "uniform", TypeError, r"shapes\[0\]\[0\] must be an int, got float"),
    ([np.ones(3)], [(3,)], "uniform", ValueError, r"shapes\[0\] must be a pair \(m, n\), got 1 entries"),
    ([np.ones(3)], [5], "uniform", TypeError, r"shapes\[0\] must be a pair of ints \(m, n\), got int"),
])
def test_allocate_rejects_bad_spectra_and_shapes(spectra, shapes, strategy, error, match):
    # short spectra were zero-padded, shapes (0, 3) and (-3, 3) gave ranks 0
    # and -3, (3.9, 3.9) was cut to 3, NaN spectra went through
    with pytest.raises(error, match=match):
        allocate_ranks(spectra, 0.5, strategy, shapes=shapes)


def test_allocate_uniform_needs_no_spectra():
    # the uniform split does not read the spectra: empty ones stand for none
    assert allocate_ranks([np.zeros(0)] * 2, 0.5, shapes=[(64, 64), (np.int64(128), 32)]) == [16, 12]


# ---------------------------------------------------------------------------
# calibration text
# ---------------------------------------------------------------------------

def test_calibration_and_evaluation_text_differ():
    cal = docstring_first_lines(n=128)
    ev = reference_sentences(n=200)
    assert len(cal) == 128 and len(ev) == 200
    assert len(set(cal)) == 128 and len(set(ev)) == 200
    assert not set(cal) & set(ev)
    assert cal == docstring_first_lines(n=128)  # deterministic


def _interp_cost(m, n, r):
    """Cheaper of the interpolative and the two-factor form (dense at full rank)."""
    return m * n if r >= min(m, n) else min(r * (m + n - r) + m, r * (m + n))


def test_allocate_interpolative_form():
    shapes = [(64, 64), (64, 64), (128, 32)]
    rng = np.random.default_rng(10)
    spectra = [0.5 ** np.arange(64), np.ones(64), np.sort(rng.uniform(0, 1, 32))[::-1]]
    for p in (0.1, 0.3, 0.5, 0.8, 0.95):
        u = allocate_ranks(spectra, p, "uniform", shapes=shapes, form="interpolative")
        prod = allocate_ranks(spectra, p, "uniform", shapes=shapes)
        for r, rp, (m, n) in zip(u, prod, shapes):
            # the largest rank within the layer's share (or dense when that costs m n anyway)
            assert _interp_cost(m, n, r) <= max(p * m * n, _interp_cost(m, n, 1))
            if r < min(m, n):
                assert _interp_cost(m, n, r + 1) > p * m * n
            # never a lower rank than the two-factor form at the same budget
            assert r >= rp or rp == min(m, n)
        g = allocate_ranks(spectra, p, "global", shapes=shapes, form="interpolative")
        assert sum(_interp_cost(m, n, r) for r, (m, n) in zip(g, shapes)) <= p * sum(m * n for m, n in shapes)

        def removed(ranks):
            return sum(np.sum(s[:r] ** 2) / np.sum(s ** 2) for s, r in zip(spectra, ranks))
        assert removed(g) >= removed(u) - 1e-12
    # full budget: rank 56 of a 64 x 64 layer already costs 56 * 72 + 64 = 4096 numbers, so it stays
    # dense; the 128 x 32 one keeps rank 30 (30 * 130 + 128 = 4028 < 4096, the two factors would need 4800)
    assert allocate_ranks(spectra, 1.0, "uniform", shapes=shapes, form="interpolative") == [64, 64, 30]
    with pytest.raises(ValueError, match="form"):
        allocate_ranks(spectra, 0.5, shapes=shapes, form="tt")


def test_docstring_lines_do_not_depend_on_what_was_imported(tmp_path, monkeypatch):
    # a package's submodules are its attributes only once imported: their
    # docstrings entered the lines after an unrelated import
    pkg = tmp_path / "calpkg_for_lines"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        'def alpha():\n    """Alpha returns the first of several values."""\n')
    (pkg / "extra.py").write_text('"""An extra submodule with its own docstring line."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    first = docstring_first_lines(modules=("calpkg_for_lines",), n=10)
    import importlib

    importlib.import_module("calpkg_for_lines.extra")
    assert docstring_first_lines(modules=("calpkg_for_lines",), n=10) == first == [
        "Alpha returns the first of several values."]


def test_truncate_array_api_strict_factors():
    # right[:r] on a 2-D array was an IndexError in the array API
    xps = pytest.importorskip("array_api_strict")
    W = np.random.default_rng(3).standard_normal((8, 6))
    f = svd_factorize(xps.asarray(W), rank=3).truncate(2)
    assert type(f.right).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(f.full()), svd_factorize(W, rank=2).full(), atol=1e-12)


def _product_or_interpolative_costs(m, n, form):
    """Independent cost table: numbers stored at ranks 1 .. min(m, n)."""
    out = []
    for r in range(1, min(m, n) + 1):
        two = r * (m + n)
        out.append(min(two, r * (m + n - r) + m) if form == "interpolative" else two)
    return out


def test_budget_boundaries_are_counted_exactly():
    # budget * m * n in floats fell below an exact boundary: 4 x 25 at
    # param_ratio=0.58 allows 58 numbers, rank 2 stores exactly 58, rank 1 came
    # out (50 such cases for m, n <= 59, 6 x 15 at 0.7 among them), in
    # svd_factorize and allocate_ranks alike
    from tensorapprox.nn.factorize import _rank_from

    shapes = [(m, n) for m in range(1, 13) for n in range(1, 13)] + [(4, 25), (6, 15), (6, 30), (8, 50), (10, 50)]
    empty = [np.zeros(0)] * len(shapes)
    tables = {form: [np.array(_product_or_interpolative_costs(m, n, form)) for m, n in shapes]
              for form in ("product", "interpolative")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for k in range(1, 101):
            p = k / 100
            for form, table in tables.items():
                got = allocate_ranks(empty, p, "uniform", shapes=shapes, form=form)
                for (m, n), r, c in zip(shapes, got, table):
                    # integers only: a cost x fits when 100 x <= k m n
                    best = max(1, int(np.count_nonzero(100 * c <= k * m * n)))
                    assert r == (min(m, n) if best >= c.size or c[best - 1] >= m * n else best)
                    if form == "product":
                        assert _rank_from(None, m, n, None, None, p) == min(m, n, best)
    W = np.random.default_rng(0).standard_normal((4, 25))
    assert svd_factorize(W, param_ratio=0.58).rank == 2
    # the global budget counts the same way: rank 1 (29) + one more unit (29) = 58
    assert allocate_ranks([np.ones(4)], 0.58, "global", shapes=[(4, 25)]) == [2]


def _prefix_greedy_energy(spectra, shapes, budget_numbers, weights):
    """Independent prefix greedy: buy the best next unit until one does not fit."""
    ranks = [1] * len(shapes)
    dense = [False] * len(shapes)
    left = budget_numbers - sum(m + n for m, n in shapes)
    rel = [np.asarray(s, float) ** 2 / np.sum(np.asarray(s, float) ** 2) for s in spectra]
    while True:
        best = None
        for i, (m, n) in enumerate(shapes):
            if dense[i]:
                continue
            k = ranks[i]
            cap = max([r for r in range(1, min(m, n)) if r * (m + n) < m * n], default=1)
            gain, cost = (rel[i][k], m + n) if k < cap else (rel[i][k:].sum(), m * n - k * (m + n))
            if cost > 0 and (best is None or weights[i] * gain / cost > best[0]):
                best = (weights[i] * gain / cost, i, cost)
        if best is None or best[2] > left:
            break
        _, i, cost = best
        left -= cost
        if ranks[i] < max([r for r in range(1, min(shapes[i])) if r * sum(shapes[i]) < math.prod(shapes[i])],
                          default=1):
            ranks[i] += 1
        else:
            dense[i] = True
    return sum(w * (1.0 if d else r_[:k].sum()) for w, d, r_, k in zip(weights, dense, rel, ranks))


def test_allocate_global_keeps_at_least_the_prefix_greedys_energy_within_the_budget():
    # documented: the fill-up after the first unit that does not fit only adds
    # to the prefix greedy, and the budget is never exceeded
    rng = np.random.default_rng(0)
    for trial in range(60):
        L = int(rng.integers(1, 5))
        shapes = [tuple(int(x) for x in rng.integers(2, 20, 2)) for _ in range(L)]
        spectra = [np.sort(np.abs(rng.standard_normal(min(s))) * np.exp(-rng.uniform(0, 1) * np.arange(min(s))))[::-1]
                   + 1e-3 for s in shapes]
        weights = rng.uniform(0.5, 2.0, L) if trial % 2 else np.ones(L)
        total = sum(m * n for m, n in shapes)
        for k in range(5, 101, 5):
            got = allocate_ranks(spectra, k / 100, "global", shapes=shapes, weights=weights)
            dense = [r >= min(m, n) for r, (m, n) in zip(got, shapes)]
            used = sum(m * n if d else r * (m + n) for d, r, (m, n) in zip(dense, got, shapes))
            assert 100 * used <= k * total or got == [1] * L
            kept = sum(w * (1.0 if d else np.sum(s[:r] ** 2) / np.sum(s ** 2))
                       for w, d, s, r in zip(weights, dense, spectra, got))
            budget_numbers = k * total // 100
            assert kept >= _prefix_greedy_energy(spectra, shapes, budget_numbers, weights) - 1e-12
