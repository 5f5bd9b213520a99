"""Multilinear algebra: unfold/fold, mode products, Khatri-Rao, Kronecker."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorapprox as ta

shapes = st.lists(st.integers(1, 5), min_size=2, max_size=5).map(tuple)


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _ttm_dense(X, U, mode):
    """Independent reference: einsum over the mode."""
    letters = "abcdefgh"[: X.ndim]
    out = letters.replace(letters[mode], "z")
    return np.einsum(f"{letters},z{letters[mode]}->{out}", X, U)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, data=st.data())
def test_fold_unfold_roundtrip(shape, data):
    X = _rand(shape)
    mode = data.draw(st.integers(0, len(shape) - 1))
    M = ta.unfold(X, mode)
    assert M.shape == (shape[mode], X.size // shape[mode])
    np.testing.assert_array_equal(ta.fold(M, mode, shape), X)


def test_unfold_convention_matches_docs():
    X = np.arange(24.0).reshape(2, 3, 4)
    M = ta.unfold(X, 1)
    # column index: (i_0, i_2) in C order, i_2 fastest
    assert M[2, 1 * 4 + 3] == X[1, 2, 3]


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple), data=st.data())
def test_mode_product_matches_einsum(shape, data):
    X = _rand(shape, 1)
    mode = data.draw(st.integers(0, len(shape) - 1))
    J = data.draw(st.integers(1, 4))
    U = _rand((J, shape[mode]), 2)
    np.testing.assert_allclose(ta.mode_product(X, U, mode), _ttm_dense(X, U, mode), atol=1e-12)
    np.testing.assert_allclose(ta.mode_product(X, U.T, mode, transpose=True), _ttm_dense(X, U, mode), atol=1e-12)


@pytest.mark.parametrize("shape, mode", [((7, 3, 4), 0), ((3, 4, 7), 2), ((3, 7, 2), 1), ((3, 7, 40), 1)])
def test_mode_product_every_branch(shape, mode):
    # the leading mode (one GEMM), the trailing mode (a tall GEMM) and a
    # middle mode (a batched GEMM) with short and long trailing blocks
    X = _rand(shape)
    U = _rand((5, 7), 3)
    np.testing.assert_allclose(ta.mode_product(X, U, mode), _ttm_dense(X, U, mode), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(2, 5), min_size=3, max_size=4).map(tuple), data=st.data())
def test_mode_products_commute_and_multi_equals_chain(shape, data):
    X = _rand(shape, 4)
    Us = [_rand((data.draw(st.integers(1, 4)), n), 10 + k) for k, n in enumerate(shape)]
    a = ta.mode_product(ta.mode_product(X, Us[0], 0), Us[1], 1)
    b = ta.mode_product(ta.mode_product(X, Us[1], 1), Us[0], 0)
    np.testing.assert_allclose(a, b, atol=1e-10)
    chain = X
    for k, U in enumerate(Us):
        chain = ta.mode_product(chain, U, k)
    np.testing.assert_allclose(ta.multi_mode_product(X, Us), chain, atol=1e-10)
    # skip and transpose
    chain_skip = X
    for k, U in enumerate(Us):
        if k != 1:
            chain_skip = ta.mode_product(chain_skip, U, k)
    np.testing.assert_allclose(ta.multi_mode_product(X, Us, skip=1), chain_skip, atol=1e-10)
    np.testing.assert_allclose(ta.multi_mode_product(X, [U.T for U in Us], transpose=True), chain, atol=1e-10)


def test_multi_mode_product_trailing_mode_first_against_einsum():
    # equal shrink ratios: the trailing mode goes first, as a transposed GEMM
    # whose result the following middle-mode product reads as a view
    X = _rand((4, 6, 6), 21)
    U1, U2 = _rand((6, 2), 22), _rand((6, 2), 23)
    ref = np.einsum("ijk,ja,kb->iab", X, U1, U2)
    out = ta.multi_mode_product(X, [U1, U2], modes=[1, 2], transpose=True)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    # a trailing then a leading mode, four dimensions
    Y = _rand((5, 3, 2, 5), 24)
    V0, V3 = _rand((2, 5), 25), _rand((1, 5), 26)  # mode 3 shrinks more: it goes first
    ref = np.einsum("ijkl,ai,bl->ajkb", Y, V0, V3)
    np.testing.assert_allclose(ta.multi_mode_product(Y, [V0, V3], modes=[0, 3]), ref, atol=1e-12)


def test_size_zero_trailing_mode_and_zero_columns():
    # reshape(-1, 0) cannot infer -1: a size-0 trailing mode taken first in
    # multi_mode_product and khatri_rao of 0-column matrices raised
    X = np.zeros((3, 4, 0))
    U0, U2 = _rand((9, 3), 1), np.zeros((2, 0))
    out = ta.multi_mode_product(X, [U0, U2], modes=[0, 2])
    ref = ta.mode_product(ta.mode_product(X, U0, 0), U2, 2)
    assert out.shape == ref.shape == (9, 4, 2)
    np.testing.assert_array_equal(out, ref)
    K = ta.khatri_rao([np.zeros((2, 0)), np.zeros((3, 0))])
    assert K.shape == (6, 0)


def test_transpose_must_be_a_bool():
    # transpose="no" (truthy) applied U.T to a square U: wrong numbers, no error
    X, U = _rand((3, 3, 3), 2), _rand((3, 3), 3)
    for bad in ("no", "False", 1e-4, [0], 1):
        with pytest.raises(TypeError, match="transpose must be True or False"):
            ta.mode_product(X, U, 1, transpose=bad)
        with pytest.raises(TypeError, match="transpose must be True or False"):
            ta.multi_mode_product(X, [U], modes=[1], transpose=bad)
    np.testing.assert_allclose(ta.mode_product(X, U, 1, transpose=np.bool_(True)), ta.mode_product(X, U.T, 1))


def test_skipped_factor_does_not_decide_the_dtype():
    # a float64 factor of a skipped mode made the product of float32 data float64
    X = _rand((3, 4, 5), 4).astype(np.float32)
    Us = [_rand((2, 3), 5).astype(np.float32), _rand((2, 4), 6), _rand((2, 5), 7).astype(np.float32)]
    out = ta.multi_mode_product(X, Us, skip=1)
    ref = ta.mode_product(ta.mode_product(X, Us[0], 0), Us[2], 2)
    assert out.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6 * float(np.abs(ref).max()))  # float32 sums


def test_tucker_unfolding_identity_with_kronecker():
    rng = np.random.default_rng(5)
    G = rng.standard_normal((2, 3, 2))
    Us = [rng.standard_normal((n, r)) for n, r in [(4, 2), (5, 3), (3, 2)]]
    X = ta.multi_mode_product(G, Us)
    for k in range(3):
        others = [Us[j] for j in range(3) if j != k]
        rhs = Us[k] @ ta.unfold(G, k) @ ta.kronecker(others).T
        np.testing.assert_allclose(ta.unfold(X, k), rhs, atol=1e-12)


def test_khatri_rao_and_kronecker_against_numpy():
    rng = np.random.default_rng(6)
    A, B, C = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal((5, 4))
    K = ta.khatri_rao([A, B, C])
    ref = np.stack([np.kron(np.kron(A[:, r], B[:, r]), C[:, r]) for r in range(4)], axis=1)
    np.testing.assert_allclose(K, ref, atol=1e-12)
    np.testing.assert_allclose(ta.khatri_rao([A, B, C], skip=1), ta.khatri_rao([A, C]))
    # skip counts from the end like multi_mode_product's (skip=-1 kept every matrix before)
    np.testing.assert_allclose(ta.khatri_rao([A, B, C], skip=-1), ta.khatri_rao([A, B]))
    with pytest.raises(ValueError, match="skip = 3 is out of range for 3 matrices"):
        ta.khatri_rao([A, B, C], skip=3)
    with pytest.raises(TypeError, match="skip must be an int"):
        ta.khatri_rao([A, B, C], skip=True)
    with pytest.raises(ValueError, match="matrix 0 must be 2-D"):
        ta.khatri_rao([A[:, 0], B])
    np.testing.assert_allclose(ta.kronecker([A, B, C]), np.kron(np.kron(A, B), C), atol=1e-12)
    # CP unfolding identity: unfold(cp, k) = A_k @ khatri_rao(others).T
    cp = np.einsum("ir,jr,kr->ijk", A, B, C)
    np.testing.assert_allclose(ta.unfold(cp, 1), B @ ta.khatri_rao([A, B, C], skip=1).T, atol=1e-12)


def test_mode_product_does_not_modify_input():
    X = _rand((3, 4, 5))
    X0 = X.copy()
    ta.mode_product(X, _rand((2, 4)), 1)
    ta.multi_mode_product(X, [_rand((2, n)) for n in X.shape])
    np.testing.assert_array_equal(X, X0)


def test_bad_inputs():
    X = _rand((3, 4, 5))
    with pytest.raises(ValueError, match=r"U.shape\[1\] = 3 does not match X.shape\[1\] = 4"):
        ta.mode_product(X, _rand((2, 3)), 1)
    with pytest.raises(ValueError, match="mode = 3 is out of range"):
        ta.unfold(X, 3)
    with pytest.raises(ValueError, match="not a mode-0 unfolding"):
        ta.fold(np.zeros((3, 7)), 0, (3, 4, 5))
    with pytest.raises(ValueError, match="need 2 columns"):
        ta.khatri_rao([np.ones((2, 2)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="modes must be distinct"):
        ta.multi_mode_product(X, [np.ones((2, 3)), np.ones((2, 3))], modes=[0, 0])


def test_array_api_strict_inputs():
    xps = pytest.importorskip("array_api_strict")
    Xn = _rand((3, 4, 40))
    X = xps.asarray(Xn)
    U = xps.asarray(_rand((2, 4), 1))
    Y = ta.mode_product(X, U, 1)
    assert type(Y) is type(X)
    np.testing.assert_allclose(np.asarray(Y), _ttm_dense(Xn, np.asarray(U), 1), atol=1e-12)
    M = ta.unfold(X, 2)
    assert type(M) is type(X)
    np.testing.assert_array_equal(np.asarray(ta.fold(M, 2, (3, 4, 40))), Xn)


def test_array_api_strict_mixed_integer_and_float_inputs():
    # numpy promotes int with float; the array API refuses to mix them, and
    # these raised TypeError for array_api_strict (the package promotes
    # integers to float64)
    xps = pytest.importorskip("array_api_strict")
    Xi = np.arange(24).reshape(2, 3, 4)
    Uf = _rand((5, 3), 2)
    got = ta.mode_product(xps.asarray(Xi), xps.asarray(Uf), 1)
    assert got.dtype == xps.float64
    np.testing.assert_allclose(np.asarray(got), ta.mode_product(Xi, Uf, 1), atol=1e-12)
    Us = [_rand((2, 2), 3), None, _rand((3, 4), 4).astype(np.float32)]
    got = ta.multi_mode_product(xps.asarray(Xi), [None if U is None else xps.asarray(U) for U in Us],
                                modes=[0, 1, 2])
    np.testing.assert_allclose(np.asarray(got), ta.multi_mode_product(Xi, Us, modes=[0, 1, 2]), rtol=1e-6)
    A, B = np.arange(6).reshape(3, 2), _rand((4, 2), 5)
    for fn in (ta.khatri_rao, ta.kronecker):
        got = fn([xps.asarray(A), xps.asarray(B)])
        assert got.dtype == xps.float64
        np.testing.assert_allclose(np.asarray(got), fn([A, B]), atol=1e-12)
    # float32 throughout stays float32
    got = ta.kronecker([xps.asarray(B.astype(np.float32)), xps.asarray(B.astype(np.float32))])
    assert got.dtype == xps.float32
    for core in (np.ones((2, 2)), np.ones((2, 2), np.float32)):
        T = ta.TuckerTensor(xps.asarray(core), [xps.asarray(np.ones((3, 2), core.dtype))] * 2)
        D = np.arange(9).reshape(3, 3)
        assert T.inner(xps.asarray(D)) == pytest.approx(float(np.sum(4.0 * D)), rel=1e-6)


def test_khatri_rao_error_names_the_callers_index():
    # with skip, the message named the position in the list left after the skip
    with pytest.raises(ValueError, match=r"all matrices need 2 columns; matrix 2 has shape \(5, 3\)"):
        ta.khatri_rao([np.ones((3, 3)), np.ones((4, 2)), np.ones((5, 3))], skip=0)


def test_edge_inputs_found_in_review():
    from tensorapprox.tensor import _scaled_frobenius

    # modes of size 0: unfold could not infer -1; the product order divided by 0
    for shape, mode in (((0, 3, 4), 0), ((3, 0, 4), 1), ((3, 4, 0), 0)):
        X = np.zeros(shape)
        M = ta.unfold(X, mode)
        assert M.shape == (shape[mode], int(np.prod([s for k, s in enumerate(shape) if k != mode])))
        assert ta.fold(M, mode, shape).shape == shape
    Y = ta.multi_mode_product(np.zeros((0, 3, 4)), [np.ones((2, 0)), np.ones((2, 3)), np.ones((2, 4))])
    np.testing.assert_array_equal(Y, np.zeros((2, 2, 2)))
    # integers and booleans are promoted also when both share a dtype: int8
    # products wrapped around (48 for 30000), booleans gave a logical product
    X8, M8 = np.full((2, 3, 4), 100, np.int8), np.full((2, 3), 100, np.int8)
    P = ta.mode_product(X8, M8, 1)
    assert P.dtype == np.float64 and P[0, 0, 0] == 30000.0
    Pb = ta.mode_product(np.ones((2, 3), bool), np.ones((2, 3), bool), 1)
    assert Pb.dtype == np.float64 and np.all(Pb == 3.0)
    assert ta.kronecker([np.full((1, 1), 100, np.int8)] * 2)[0, 0] == 10000.0
    assert ta.khatri_rao([np.full((1, 1), 100, np.int8)] * 2)[0, 0] == 10000.0
    # the norm helper: m sqrt(sum) overflowed, or rounded to a subnormal
    assert _scaled_frobenius(np, np.full(4, 1e308), 1.0, -10) == pytest.approx(1e308 / 512, rel=1e-15)
    assert _scaled_frobenius(np, np.full(3, 5e-324), 1.0, 1000) == pytest.approx(
        np.sqrt(3) * 5e-324 * 2.0**1000, rel=1e-15)
    # arguments: generators, a float skip, non-integer or non-unfolding shapes
    X = np.ones((2, 3))
    gen = ta.multi_mode_product(X, (U for U in (np.ones((1, 2)), np.ones((1, 3)))))
    assert gen.shape == (1, 1) and gen[0, 0] == 6.0
    assert ta.kronecker(A for A in (np.eye(2), np.ones((1, 2)))).shape == (2, 4)
    with pytest.raises(TypeError, match="skip must be an int or a sequence of ints"):
        ta.multi_mode_product(X, [np.ones((1, 2)), np.ones((1, 3))], skip=1.0)
    with pytest.raises(TypeError, match=r"shape\[0\] must be an int"):
        ta.fold(np.ones((2, 4)), 0, (2.5, 4))
    with pytest.raises(ValueError, match="is not a mode-0 unfolding"):
        ta.fold(np.ones((0, 5)), 0, (0, 3, 4))


def test_overflowing_integer_tolerances_are_value_errors():
    from fractions import Fraction

    from tensorapprox._validation import check_positive_float, check_rtol

    with pytest.raises(ValueError, match="x must be finite, got an integer of 1329 bits"):
        check_positive_float(10**400, name="x")
    with pytest.raises(ValueError, match="x must be finite, got a value beyond float64's range"):
        check_positive_float(Fraction(10**400, 3), name="x")
    with pytest.raises(ValueError, match=r"open interval \(0, 1\), got inf"):
        check_rtol(10**400)
    with pytest.raises(ValueError, match=r"open interval \(0, 1\), got -inf"):
        check_rtol(-10**400)


def test_complex_inputs_keep_their_imaginary_part():
    # the integer promotion cast complex arrays to float64 (a ComplexWarning only)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4))
    U = rng.standard_normal((5, 3)) + 1j * rng.standard_normal((5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = ta.mode_product(X, U, 1)
        assert P.dtype == np.complex128
        np.testing.assert_allclose(P, np.einsum("ajc,bj->abc", X, U), rtol=1e-13)
        # complex with real: complex, in single precision only when both are
        Q = ta.mode_product(X.astype(np.complex64), U.real.astype(np.float32), 1)
        assert Q.dtype == np.complex64
        np.testing.assert_allclose(Q, np.einsum("ajc,bj->abc", X, U.real), rtol=1e-5)
        assert ta.mode_product(X, U.real.astype(np.float32), 1).dtype == np.complex128
        A = U[:2, :2]
        np.testing.assert_allclose(ta.kronecker([A, A]), np.kron(A, A), rtol=1e-14)
