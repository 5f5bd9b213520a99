"""Tests of the 1-D Chebyshev tools against numpy.polynomial.chebyshev and closed forms."""

from __future__ import annotations

import numpy as np
import numpy.polynomial.chebyshev as npc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorapprox.chebyshev as cheb


def _ref_points(m, a, b):
    j = np.arange(m)
    return 0.5 * (a + b) - 0.5 * (b - a) * np.cos(np.pi * j / (m - 1))


@pytest.mark.parametrize("m", [2, 3, 8, 65, 130])
def test_chebpts_formula_and_symmetry(m):
    x = cheb.chebpts(m, (-2.0, 3.0))
    np.testing.assert_allclose(x, _ref_points(m, -2.0, 3.0), rtol=0, atol=1e-14)
    assert x[0] == -2.0 and x[-1] == 3.0
    assert np.all(np.diff(x) > 0)
    y = cheb.chebpts(m)
    np.testing.assert_array_equal(y, -y[::-1])  # exactly symmetric


def test_chebpts_single_point_is_midpoint():
    np.testing.assert_array_equal(cheb.chebpts(1, (0.0, 4.0)), [2.0])


@pytest.mark.parametrize("m", [2, 5, 17, 64])
def test_vals2coeffs_matches_dense_interpolation(m):
    rng = np.random.default_rng(m)
    v = rng.standard_normal((m, 3))
    x = cheb.chebpts(m)
    c_ref = np.linalg.solve(npc.chebvander(x, m - 1), v)
    np.testing.assert_allclose(cheb.vals2coeffs(v, axis=0), c_ref, atol=1e-12 * np.abs(v).max())
    np.testing.assert_allclose(cheb.coeffs2vals(c_ref, axis=0), v, atol=1e-12)


def test_transforms_along_any_axis():
    rng = np.random.default_rng(1)
    V = rng.standard_normal((4, 9, 5))
    C = cheb.vals2coeffs(V, axis=1)
    ref = np.moveaxis(cheb.vals2coeffs(np.moveaxis(V, 1, 0), axis=0), 0, 1)
    np.testing.assert_allclose(C, ref, atol=1e-14)
    np.testing.assert_allclose(cheb.coeffs2vals(C, axis=-2), V, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 40), seed=st.integers(0, 2**31 - 1),
       a=st.floats(-5, 5), width=st.floats(0.1, 10))
def test_interpolation_exact_on_polynomials(m, k, seed, a, width):
    """Polynomials of degree < m are reproduced exactly (to 1e-13)."""
    k = min(k, m)
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, k)
    dom = (a, a + width)
    x = cheb.chebpts(m, dom)
    t = (2 * x - (dom[0] + dom[1])) / width
    vals = npc.chebval(t, c)
    got = cheb.vals2coeffs(vals)
    expect = np.zeros(m)
    expect[:k] = c
    np.testing.assert_allclose(got, expect, atol=1e-13 * max(1.0, np.abs(c).sum()))
    xs = rng.uniform(dom[0], dom[1], 50)
    ts = (2 * xs - (dom[0] + dom[1])) / width
    np.testing.assert_allclose(cheb.chebeval(got, xs, dom), npc.chebval(ts, c), atol=1e-13 * np.abs(c).sum())


def test_chebeval_matrix_coefficients_and_domain():
    rng = np.random.default_rng(2)
    C = rng.standard_normal((12, 4))
    x = rng.uniform(1, 3, (7, 2))
    got = cheb.chebeval(C, x, (1, 3))
    assert got.shape == (7, 2, 4)
    ref = npc.chebval(x - 2.0, C)  # shape (4, 7, 2)
    np.testing.assert_allclose(got, np.moveaxis(ref, 0, -1), atol=1e-13)


def test_chebeval_converges_for_smooth_function():
    x = cheb.chebpts(40, (0, 2))
    c = cheb.vals2coeffs(np.exp(np.sin(3 * x)))
    xs = np.linspace(0, 2, 333)
    np.testing.assert_allclose(cheb.chebeval(c, xs, (0, 2)), np.exp(np.sin(3 * xs)), atol=1e-12)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_chebder_matches_numpy(order):
    rng = np.random.default_rng(order)
    c = rng.standard_normal(15)
    got = cheb.chebder(c, (0.0, 4.0), order=order)
    ref = npc.chebder(c, order, scl=2.0 / 4.0) if order else c
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_chebder_of_constant_and_columns():
    np.testing.assert_array_equal(cheb.chebder(np.array([3.0])), [0.0])
    C = np.random.default_rng(0).standard_normal((6, 3))
    np.testing.assert_allclose(cheb.chebder(C, axis=0), npc.chebder(C, axis=0), atol=1e-13)


def test_chebint_matches_numpy_and_vanishes_at_a():
    rng = np.random.default_rng(4)
    c = rng.standard_normal(11)
    got = cheb.chebint(c, (-1.0, 2.0))
    ref = npc.chebint(c, lbnd=-1.0, scl=1.5)
    np.testing.assert_allclose(got, ref, atol=1e-13)
    assert abs(cheb.chebeval(got, -1.0, (-1.0, 2.0))) < 1e-13
    np.testing.assert_allclose(cheb.chebder(got, (-1.0, 2.0))[:11], c, atol=1e-12)


def test_clenshaw_curtis_weights():
    np.testing.assert_allclose(cheb.clenshaw_curtis_weights(3), [1 / 3, 4 / 3, 1 / 3], atol=1e-15)
    for m in (2, 5, 16, 33):
        w = cheb.clenshaw_curtis_weights(m, (1.0, 4.0))
        x = cheb.chebpts(m, (1.0, 4.0))
        assert w.sum() == pytest.approx(3.0, abs=1e-13)
        for k in range(m):  # exact for degree < m
            exact = (4.0 ** (k + 1) - 1.0) / (k + 1)
            assert w @ x**k == pytest.approx(exact, rel=1e-12)
    w = cheb.clenshaw_curtis_weights(30, (0, 2))
    assert w @ np.exp(cheb.chebpts(30, (0, 2))) == pytest.approx(np.exp(2) - 1, rel=1e-14)


def test_chebvander_matches_numpy():
    x = np.linspace(0, 1, 9)
    np.testing.assert_allclose(cheb.chebvander(x, 7, (0, 1)), npc.chebvander(2 * x - 1, 6), atol=1e-14)


def test_array_api_strict_inputs():
    xps = pytest.importorskip("array_api_strict")
    x = cheb.chebpts(17, (0, 1))
    v = np.cos(5 * x)
    c = cheb.vals2coeffs(v)
    cs = cheb.vals2coeffs(xps.asarray(v))
    assert type(cs).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(cs), c, atol=1e-14)
    np.testing.assert_allclose(np.asarray(cheb.coeffs2vals(xps.asarray(c))), v, atol=1e-14)
    xs = np.linspace(0, 1, 11)
    got = cheb.chebeval(xps.asarray(c), xps.asarray(xs), (0, 1))
    np.testing.assert_allclose(np.asarray(got), np.cos(5 * xs), atol=1e-12)
    np.testing.assert_allclose(np.asarray(cheb.chebder(xps.asarray(c))), cheb.chebder(c), atol=1e-12)
    # several series at once, (m, k) coefficients: c[k] on a 2-D array was an
    # IndexError in the array API (it indexes every axis)
    C = np.stack([c, 2 * c, -c], axis=1)
    got = cheb.chebeval(xps.asarray(C), xps.asarray(xs), (0, 1))
    np.testing.assert_allclose(np.asarray(got), cheb.chebeval(C, xs, (0, 1)), atol=1e-12)
    for axis in (0, 1):
        Ca = C if axis == 0 else C.T
        np.testing.assert_allclose(np.asarray(cheb.chebder(xps.asarray(Ca), axis=axis)),
                                   cheb.chebder(Ca, axis=axis), atol=1e-10)
        np.testing.assert_allclose(np.asarray(cheb.chebint(xps.asarray(Ca), axis=axis)),
                                   cheb.chebint(Ca, axis=axis), atol=1e-12)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("domain, exc, msg", [
    ((1.0, 1.0), ValueError, r"a < b"),
    ((2.0, 1.0), ValueError, r"a < b"),
    ((0.0, 1.0, 2.0), ValueError, r"exactly 2 entries"),
    ((0.0, np.inf), ValueError, r"finite"),
    (("a", 1.0), TypeError, r"real numbers"),
])
def test_bad_domain(domain, exc, msg):
    with pytest.raises(exc, match=msg):
        cheb.chebpts(5, domain)


def test_bad_m_and_axis():
    with pytest.raises(ValueError, match=r"m must be >= 1"):
        cheb.chebpts(0)
    with pytest.raises(TypeError, match=r"m must be an int"):
        cheb.chebpts(2.5)
    with pytest.raises(ValueError, match=r"axis = 3 is out of range"):
        cheb.vals2coeffs(np.ones((3, 3)), axis=3)
    with pytest.raises(ValueError, match=r"order must be >= 0"):
        cheb.chebder(np.ones(3), order=-1)
    with pytest.raises(ValueError, match=r"coeffs must have shape"):
        cheb.chebeval(np.ones((2, 2, 2)), 0.0)


def test_edge_inputs_found_in_review():
    # chebder(order=0) returned a view of coeffs: writing to it changed the input
    c = np.array([1.0, 2.0, 3.0])
    d = cheb.chebder(c, order=0)
    d *= 10
    np.testing.assert_array_equal(c, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(d, [10.0, 20.0, 30.0])
    # chebint of an empty series raised IndexError
    with pytest.raises(ValueError, match="coeffs is empty along axis"):
        cheb.chebint(np.zeros(0))
    # complex points were cut to their real part (a ComplexWarning only)
    for x in (np.array([0.5 + 1j]), [0.5 + 1j]):
        with pytest.raises(TypeError, match="x must be real"):
            cheb.chebeval(np.array([1.0, 1.0]), x)
    # None and scalars read as "1 entry" (ValueError); intervals whose width
    # overflows gave NaN points and wrong values
    for bad in (None, 5):
        with pytest.raises(TypeError, match="domain must be a pair"):
            cheb.check_interval(bad)
    with pytest.raises(ValueError, match="too wide: b - a overflows"):
        cheb.chebpts(3, (-1e308, 1e308))
    assert cheb.check_interval((-1e307, 1e307)) == (-1e307, 1e307)


# --------------------------------------------------------------------------- review: boxes and dtypes
def test_box_near_float64_limit_does_not_overflow():
    # (a + b) / 2 and 2x - (a + b) overflowed: chebpts gave inf, chebeval and
    # chebvander NaN. Reference: the same points on (1, 1.7), scaled by 1e308
    a, b = 1e308, 1.7e308
    for m in (3, 9):
        x = cheb.chebpts(m, (a, b))
        assert np.all(np.isfinite(x)) and x[0] == a and x[-1] == b
        np.testing.assert_allclose(x, 1e308 * _ref_points(m, 1.0, 1.7), rtol=4e-16, atol=0)
    xs = 1e308 * np.array([1.0, 1.1, 1.35, 1.6, 1.7])
    t_ref = (2 * (xs / 1e308) - 2.7) / 0.7  # exact up to rounding on the scaled box
    c = np.array([0.5, -1.0, 0.25, 2.0])
    np.testing.assert_allclose(cheb.chebeval(c, xs, (a, b)), npc.chebval(t_ref, c), rtol=0, atol=1e-14)
    np.testing.assert_allclose(cheb.chebvander(xs, 4, (a, b)), npc.chebvander(t_ref, 3), rtol=0, atol=1e-14)


def test_float32_coefficients_and_points_keep_reference_coordinates():
    # x was cast to the coefficients' dtype before the map to [-1, 1]: with
    # float32 coefficients the box (1e6, 1e6 + 1) was rounded (6% error), and
    # float32 points on (1e38, 3e38) overflowed in 2x - (a + b) (NaN)
    c32 = np.array([0.25, 1.0, -0.5], dtype=np.float32)
    c64 = c32.astype(np.float64)
    x = np.array([1e6 + 0.3, 1e6 + 0.9])
    t = (x - (1e6 + 0.5)) / 0.5
    got = cheb.chebeval(c32, x, (1e6, 1e6 + 1))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, npc.chebval(t, c64), rtol=0, atol=1e-6)
    x32 = np.array([1.2e38, 2e38, 2.9e38], dtype=np.float32)
    t32 = (x32.astype(np.float64) - 2e38) / 1e38  # the float32 points, mapped in float64
    got = cheb.chebeval(c32, x32, (1e38, 3e38))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, npc.chebval(t32, c64), rtol=0, atol=1e-6)
    V = cheb.chebvander(x32, 3, (1e38, 3e38))
    assert V.dtype == np.float32
    np.testing.assert_allclose(V, npc.chebvander(t32, 2), rtol=0, atol=1e-6)
    np.testing.assert_allclose(cheb.chebeval(c32, 0.5e39, (0, 1e39)), npc.chebval(0.0, c64), atol=1e-6)
    # the same in the array API (array_api_strict)
    xps = pytest.importorskip("array_api_strict")
    got = cheb.chebeval(xps.asarray(c32), xps.asarray(x32), (1e38, 3e38))
    assert got.dtype == xps.float32
    np.testing.assert_allclose(np.asarray(got), npc.chebval(t32, c64), rtol=0, atol=1e-6)
    V = cheb.chebvander(xps.asarray(x32), 3, (1e38, 3e38))
    np.testing.assert_allclose(np.asarray(V), npc.chebvander(t32, 2), rtol=0, atol=1e-6)


def test_chebeval_arrays_of_different_libraries():
    # an obscure TypeError ('dtype' must be a dtype) or AttributeError before
    xps = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"coeffs \(array_api_strict\) and x \(numpy\) are arrays of different"):
        cheb.chebeval(xps.asarray([1.0, 2.0]), np.array([0.5]))
    with pytest.raises(TypeError, match=r"coeffs \(numpy\) and x \(array_api_strict\) are arrays of different"):
        cheb.chebeval(np.array([1.0, 2.0]), xps.asarray([0.5]))
    # Python and numpy scalars and lists still follow the coefficients
    for x in (0.5, np.float64(0.5), [0.5]):
        got = cheb.chebeval(xps.asarray([1.0, 2.0]), x)
        np.testing.assert_allclose(np.asarray(got), npc.chebval(0.5, [1.0, 2.0]))


def test_chebpts_dtype_must_be_real_floating():
    with pytest.raises(TypeError, match=r"dtype must be a real floating dtype"):
        cheb.chebpts(5, dtype=np.int64)  # gave [-1, 0, 0, 0, 1]
    with pytest.raises(TypeError, match=r"dtype must be a real floating dtype"):
        cheb.chebpts(5, dtype=np.complex128)
    x = cheb.chebpts(5, (0, 2), dtype=np.float32)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, _ref_points(5, 0.0, 2.0), rtol=1e-7)


def test_chebder_refuses_an_empty_series():
    # returned [] where the documented length is max(m - order, 1); chebint,
    # vals2coeffs and coeffs2vals raise
    for order in (0, 1, 3):
        with pytest.raises(ValueError, match=r"coeffs is empty along axis"):
            cheb.chebder(np.zeros(0), order=order)
    with pytest.raises(ValueError, match=r"coeffs is empty along axis"):
        cheb.chebder(np.zeros((3, 0)), axis=1)
    np.testing.assert_array_equal(cheb.chebder(np.array([5.0]), order=2), [0.0])


def test_non_numeric_arrays_are_refused():
    # strings were parsed as floats ("0.5" -> 0.5) and booleans read as 0 and 1
    strings, bools = np.array(["1", "2", "3"]), np.array([True, False, True])
    for fn in (cheb.vals2coeffs, cheb.coeffs2vals, cheb.chebder, cheb.chebint):
        for bad in (strings, bools, ["1", "2"]):
            with pytest.raises(TypeError, match=r"must be an array of real numbers"):
                fn(bad)
    for bad in (np.array(["0.5"]), np.array([True])):
        with pytest.raises(TypeError, match=r"x must be an array of real numbers"):
            cheb.chebeval(np.array([1.0, 2.0]), bad)
        with pytest.raises(TypeError, match=r"x must be an array of real numbers"):
            cheb.chebvander(bad, 3)
    for bad in (["0.5"], True):
        with pytest.raises(TypeError, match=r"x must hold real numbers"):
            cheb.chebeval(np.array([1.0, 2.0]), bad)
    # integers are numbers
    np.testing.assert_allclose(cheb.chebeval(np.array([1, 2]), np.array([0, 1])), [1.0, 3.0])
    np.testing.assert_allclose(cheb.vals2coeffs([1, 1, 1]), [1.0, 0.0, 0.0], atol=1e-15)
