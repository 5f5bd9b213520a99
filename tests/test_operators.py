"""Measurement operators, corruption models and the entry-sampling kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorapprox._kernels import sensing
from tensorapprox.completion.operators import EntrySampling, GaussianSensing, corrupt


def _sym(rng, n):
    X = rng.standard_normal((n, n))
    return X + X.T


# ------------------------------------------------------------ Gaussian sensing
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), m=st.integers(1, 40), seed=st.integers(0, 2**16), symmetric=st.booleans(),
       store=st.booleans())
def test_gaussian_adjoint_identity(n, m, seed, symmetric, store):
    rng = np.random.default_rng(seed)
    op = GaussianSensing(n, m, random_state=seed, symmetric=symmetric, store=store)
    X = _sym(rng, n) if symmetric else rng.standard_normal((n, n))
    v = rng.standard_normal(m)
    lhs = op.apply(X) @ v
    rhs = np.sum(X * op.adjoint(v))
    assert np.isclose(lhs, rhs, rtol=1e-12, atol=1e-12 * (1 + abs(lhs)))


@pytest.mark.parametrize("symmetric", [True, False])
def test_gaussian_matches_explicit_matrix(symmetric):
    rng = np.random.default_rng(0)
    n, m = 5, 23
    op = GaussianSensing(n, m, random_state=1, symmetric=symmetric)
    M = op.to_dense()
    assert M.shape == (m, n * n)
    X = rng.standard_normal((n, n))
    if symmetric:
        X = X + X.T
        # every A_i is symmetric
        A = M.reshape(m, n, n)
        np.testing.assert_array_equal(A, np.transpose(A, (0, 2, 1)))
    v = rng.standard_normal(m)
    np.testing.assert_allclose(op.apply(X), M @ X.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(v).ravel(), M.T @ v, rtol=1e-12, atol=1e-12)
    U, V = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    if symmetric:
        V = U
    np.testing.assert_allclose(op.apply_factored(U, V), M @ (U @ V.T).ravel(), rtol=1e-12, atol=1e-12)
    W = rng.standard_normal((n, 3))
    G = (M.T @ v).reshape(n, n)
    np.testing.assert_allclose(op.adjoint_matmul(v, W), G @ W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.adjoint_matmul(v, W, transpose=True), G.T @ W, rtol=1e-12, atol=1e-12)


def test_gaussian_rectangular_and_measurement_variance():
    op = GaussianSensing((3, 4), 7, random_state=0, symmetric=False)
    assert op.shape == (3, 4) and op.to_dense().shape == (7, 12)
    # <A_i, X> ~ N(0, ||X||_F^2) for symmetric X in the symmetric model
    X = np.diag([1.0, 2.0, 0.0]) + 0.5
    y = GaussianSensing(3, 40000, random_state=3).apply(X)
    assert abs(np.var(y) / np.sum(X * X) - 1) < 0.03


def test_gaussian_stored_equals_blocked():
    X = _sym(np.random.default_rng(0), 6)
    a = GaussianSensing(6, 1300, random_state=5, store=True)
    b = GaussianSensing(6, 1300, random_state=5, store=False)
    assert a.stored and not b.stored and b.nbytes == 0
    np.testing.assert_allclose(a.apply(X), b.apply(X), rtol=1e-13, atol=1e-12)
    v = np.random.default_rng(1).standard_normal(1300)
    np.testing.assert_allclose(a.adjoint(v), b.adjoint(v), rtol=1e-12, atol=1e-11)
    # default: store when it fits max_bytes
    assert not GaussianSensing(6, 1300, random_state=5, max_bytes=10).stored


def test_gaussian_float32_preserved():
    op = GaussianSensing(4, 10, random_state=0, dtype=np.float32)
    assert op.apply(np.eye(4)).dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n=0, m=3), ValueError, "n must be >= 1"),
        (dict(n=3, m=0), ValueError, "m must be >= 1"),
        (dict(n=2.5, m=3), TypeError, "n must be an int"),
        (dict(n=(2, 3), m=3), ValueError, "symmetric operator needs square"),
        (dict(n=(2, 3, 4), m=3, symmetric=False), ValueError, "pair"),
        (dict(n=3, m=3, symmetric="yes"), TypeError, "symmetric must be True or False"),
        (dict(n=3, m=3, dtype=np.int64), TypeError, "dtype must be float32 or float64"),
        (dict(n=3, m=3, random_state="a"), TypeError, "random_state"),
    ],
)
def test_gaussian_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        GaussianSensing(**kwargs)


def test_apply_adjoint_bad_input():
    op = GaussianSensing(3, 5, random_state=0)
    with pytest.raises(ValueError, match=r"X has shape \(4, 4\) but the operator acts on \(3, 3\)"):
        op.apply(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="v has length 4 but the operator has m = 5"):
        op.adjoint(np.zeros(4))
    with pytest.raises(TypeError, match="X must be a numpy array"):
        op.apply("x")
    with pytest.raises(TypeError, match="X must be real"):
        op.apply(np.zeros((3, 3), dtype=complex))
    with pytest.raises(ValueError, match="U and V must have shapes"):
        op.apply_factored(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="W must have 3 rows"):
        op.adjoint_matmul(np.zeros(5), np.zeros((2, 1)))


# -------------------------------------------------------------- entry sampling
def _sampling(seed, n1=7, n2=5, m=30):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n1, m), rng.integers(0, n2, m)  # repeats on purpose
    return rng, EntrySampling(rows, cols, (n1, n2))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 60))
def test_entry_sampling_adjoint_identity(seed, m):
    rng, op = _sampling(seed, m=m)
    X = rng.standard_normal(op.shape)
    v = rng.standard_normal(op.m)
    assert np.isclose(op.apply(X) @ v, np.sum(X * op.adjoint(v)), rtol=1e-12, atol=1e-12)


def test_entry_sampling_matches_explicit_matrix():
    rng, op = _sampling(1)
    M = op.to_dense()
    X = rng.standard_normal(op.shape)
    v = rng.standard_normal(op.m)
    np.testing.assert_allclose(op.apply(X), M @ X.ravel())
    np.testing.assert_allclose(op.adjoint(v).ravel(), M.T @ v, atol=1e-13)
    U, V, W = rng.standard_normal((7, 3)), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    np.testing.assert_allclose(op.apply_factored(U, V), M @ (U @ V.T).ravel(), atol=1e-13)
    G = (M.T @ v).reshape(op.shape)
    np.testing.assert_allclose(op.adjoint_matmul(v, W), G @ W, atol=1e-13)
    W2 = rng.standard_normal((7, 2))
    np.testing.assert_allclose(op.adjoint_matmul(v, W2, transpose=True), G.T @ W2, atol=1e-13)


def test_entry_sampling_bad_input():
    with pytest.raises(ValueError, match=r"rows holds indices outside \[0, 3\)"):
        EntrySampling(np.array([3]), np.array([0]), (3, 3))
    with pytest.raises(ValueError, match="cols holds indices outside"):
        EntrySampling(np.array([0]), np.array([-1]), (3, 3))
    with pytest.raises(ValueError, match="same length"):
        EntrySampling(np.array([0, 1]), np.array([0]), (3, 3))
    with pytest.raises(ValueError, match="empty"):
        EntrySampling(np.array([], dtype=int), np.array([], dtype=int), (3, 3))
    with pytest.raises(TypeError, match="rows must hold integers"):
        EntrySampling(np.array([0.5]), np.array([0]), (3, 3))
    with pytest.raises(TypeError, match="shape must be a pair"):
        EntrySampling(np.array([0]), np.array([0]), 3)


# --------------------------------------------------------------------- kernels
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 6), m=st.integers(0, 80))
def test_kernels_equal_references(seed, k, m):
    rng = np.random.default_rng(seed)
    n1, n2 = 9, 6
    rows = rng.integers(0, n1, m).astype(np.intp)
    cols = rng.integers(0, n2, m).astype(np.intp)
    U, V, v = rng.standard_normal((n1, k)), rng.standard_normal((n2, k)), rng.standard_normal(m)
    np.testing.assert_allclose(sensing.sampled_product(U, V, rows, cols),
                               sensing.sampled_product_reference(U, V, rows, cols), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sensing.scatter_matmul(v, rows, cols, V, n1),
                               sensing.scatter_matmul_reference(v, rows, cols, V, n1), rtol=1e-12, atol=1e-12)


def test_kernels_without_numba(monkeypatch):
    monkeypatch.setenv("TENSORAPPROX_DISABLE_NUMBA", "1")
    rng, op = _sampling(3)
    U, V = rng.standard_normal((7, 2)), rng.standard_normal((5, 2))
    np.testing.assert_allclose(op.apply_factored(U, V), op.apply(U @ V.T))
    v = rng.standard_normal(op.m)
    np.testing.assert_allclose(op.adjoint_matmul(v, V), op.adjoint(v) @ V, atol=1e-13)


def test_kernels_array_api_path():
    xp = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 4, 12)
    cols = rng.integers(0, 3, 12)
    U, V, v = rng.standard_normal((4, 2)), rng.standard_normal((3, 2)), rng.standard_normal(12)
    got = sensing.sampled_product(xp.asarray(U), xp.asarray(V), xp.asarray(rows), xp.asarray(cols))
    np.testing.assert_allclose(np.asarray(got), sensing.sampled_product_reference(U, V, rows, cols))
    got = sensing.scatter_matmul(xp.asarray(v), xp.asarray(rows), xp.asarray(cols), xp.asarray(V), 4)
    np.testing.assert_allclose(np.asarray(got), sensing.scatter_matmul_reference(v, rows, cols, V, 4),
                               atol=1e-13)


# --------------------------------------------------------------------- corrupt
def test_corrupt_counts_and_does_not_mutate():
    y = np.linspace(-1, 1, 200)
    y0 = y.copy()
    out = corrupt(y, 0.25, kind="outlier", scale=100.0, random_state=0)
    np.testing.assert_array_equal(y, y0)
    assert np.count_nonzero(out != y) == 50
    assert np.max(np.abs(out - y)) > 10
    g = corrupt(y, 0.9, kind="gaussian", random_state=0)
    assert np.count_nonzero(g != y) == 180
    np.testing.assert_array_equal(corrupt(y, 0.0, random_state=0), y)
    np.testing.assert_array_equal(corrupt(y, 0.3, random_state=4), corrupt(y, 0.3, random_state=4))


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((np.ones(3), 1.5), {}, ValueError, r"fraction must lie in \[0, 1\]"),
        ((np.ones(3), -0.1), {}, ValueError, r"fraction must lie in \[0, 1\]"),
        ((np.ones(3), 0.1), dict(kind="cauchy"), ValueError, "kind must be one of"),
        ((np.ones(3), 0.1), dict(scale=0.0), ValueError, "scale must be > 0"),
        ((np.array([1.0, np.nan]), 0.1), {}, ValueError, "y contains NaN or Inf"),
        ((np.ones((2, 2)), 0.1), {}, ValueError, "y must be 1-dimensional"),
        ((np.ones(3), "a"), {}, TypeError, "fraction must be a real number"),
    ],
)
def test_corrupt_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        corrupt(*args, **kwargs)


def test_corrupt_default_scale_is_scale_free():
    # the squares of the default scale's RMS underflowed near 1e-200 (a scale
    # of 1: noise 10^199 times the data) and overflowed near 1e160 (inf)
    base = np.linspace(1.0, 2.0, 1000)
    ref = corrupt(base, 0.5, kind="gaussian", random_state=0) - base
    for s in (1e-200, 1e160):
        out = corrupt(s * base, 0.5, kind="gaussian", random_state=0)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose((out - s * base) / s, ref, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------- regression: overflow
def test_gaussian_symmetric_apply_near_largest_float():
    # the packed symmetric apply formed X + X.T, which overflowed for entries
    # near 1.5e308: every measurement read -inf
    op = GaussianSensing(3, 5, random_state=0)
    X = np.diag([1.5e308, 0.0, 0.0])
    with np.errstate(over="ignore"):  # one measurement overflows in any form
        got = op.apply(X)
    # independent reference: the coefficient of X[0, 0] in every measurement
    # (the first column of the explicit matrix) times the entry
    with np.errstate(over="ignore"):
        ref = op.to_dense()[:, 0] * 1.5e308
    fin = np.isfinite(ref)
    assert fin.sum() >= 3
    assert np.all(np.isfinite(got[fin]))
    np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-14)
    # off-diagonal: X[0, 1] = X[1, 0] near the limit
    Y = np.zeros((3, 3))
    Y[0, 1] = Y[1, 0] = 1.0e308
    np.testing.assert_allclose(op.apply(Y) / 1e308, op.apply(Y / 1e308), rtol=1e-14)


@pytest.mark.parametrize("dtype, level", [(np.float32, 1e37), (np.float64, 1e306), (np.float64, 1e307)])
def test_corrupt_default_outliers_stay_finite(dtype, level):
    # the default outlier scale, 100 rms, overflowed float32 data near 1e37
    # (inf entries and a RuntimeWarning)
    import warnings

    y = np.full(100, level, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = corrupt(y, 0.2, random_state=0)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    changed = out != y
    assert np.count_nonzero(changed) == 20
    big = np.finfo(dtype).max
    # reference: the same draw (the documented clipping) in float64 before clipping
    rng = np.random.default_rng(0)
    idx = rng.choice(100, size=20, replace=False)
    with np.errstate(over="ignore"):
        ref = np.clip(float(level) + 100.0 * float(level) * rng.standard_normal(20), -big, big)
    np.testing.assert_allclose(out[idx].astype(np.float64), ref, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert np.any(np.abs(out[idx]) == big) == np.any(np.abs(ref) == big)


# ------------------------------------------------------- regression: review fixes
def test_entry_sampling_keeps_its_own_read_only_indices():
    # the operator kept the caller's intp arrays: editing them afterwards
    # changed the operator past the range check (index 5 of 3 rows), and the
    # Numba kernels read out of bounds
    rows, cols = np.array([0, 1, 2]), np.array([1, 0, 2])
    op = EntrySampling(rows, cols, (3, 3))
    U, V = np.arange(1.0, 7.0).reshape(3, 2), np.ones((3, 2))
    X = U @ V.T
    expected = X[[0, 1, 2], [1, 0, 2]]  # the entries sampled at construction
    rows[2] = 5
    cols[0] = -7
    np.testing.assert_array_equal(op.apply_factored(U, V), expected)
    np.testing.assert_array_equal(op.apply(X), expected)
    np.testing.assert_array_equal(op.adjoint_matmul(np.ones(3), V), op.adjoint(np.ones(3)) @ V)
    np.testing.assert_array_equal(op.rows, [0, 1, 2])
    assert not op.rows.flags.writeable and not op.cols.flags.writeable
    assert not np.shares_memory(op.rows, rows) and not np.shares_memory(op.cols, cols)
    with pytest.raises(ValueError):
        op.rows[0] = 2


def test_flags_must_be_bool_and_empty_indices():
    # transpose="no" was truthy: it gave the transposed product
    op = EntrySampling(np.array([0, 1]), np.array([2, 0]), (3, 3))
    v, W = np.array([1.0, 2.0]), np.arange(6.0).reshape(3, 2)
    for bad in ("no", 1, None):
        with pytest.raises(TypeError, match="transpose must be True or False"):
            op.adjoint_matmul(v, W, transpose=bad)
    np.testing.assert_allclose(op.adjoint_matmul(v, W, transpose=np.bool_(True)), op.adjoint(v).T @ W)
    np.testing.assert_allclose(op.adjoint_matmul(v, W, transpose=np.bool_(False)), op.adjoint(v) @ W)
    # an empty list is float64 to numpy: the dtype error hid the real problem
    for empty in ([], (), np.array([], dtype=float)):
        with pytest.raises(ValueError, match="sample at least one entry"):
            EntrySampling(empty, empty, (2, 2))
    with pytest.raises(ValueError, match="rows and cols must have the same length"):
        EntrySampling([], [1], (2, 2))


def test_gaussian_float32_regenerated_adjoint_matches_stored():
    # the regenerated path summed float64 blocks into a float32 buffer (3e-6
    # off the stored operator with the same seed, another solver run)
    rng = np.random.default_rng(0)
    for symmetric in (True, False):
        stored = GaussianSensing(8, 1300, random_state=1, symmetric=symmetric, dtype=np.float32)
        regen = GaussianSensing(8, 1300, random_state=1, symmetric=symmetric, dtype=np.float32, store=False)
        v = rng.standard_normal(1300)
        # reference: the float32 coefficients, exactly widened, times v in float64
        ref = (v @ stored.to_dense().astype(np.float64)).reshape(stored.shape)
        for op in (stored, regen):
            got = op._adjoint(v)
            assert got.dtype == np.float64
            assert np.linalg.norm(got - ref) <= 1e-12 * np.linalg.norm(ref)
