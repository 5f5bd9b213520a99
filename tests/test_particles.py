"""Tests of the particle tools: kernels and their range separation, generators,
the direct-sum kernel against its reference, and figure B3 (long-range
potential of 200 charges) through the function route and the CP route.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf

import tensorapprox.chebtucker as ct
import tensorapprox.particles as tp
from tensorapprox._kernels.particles import direct_sum_numba, direct_sum_reference

BOX3 = [(-1.0, 1.0)] * 3
R_C = 0.2


def _naive(points, pos, q, kernel):
    out = np.zeros(points.shape[0])
    for i, x in enumerate(points):
        for p, c in zip(pos, q):
            out[i] += c * kernel(float(np.linalg.norm(x - p)))
    return out


# --------------------------------------------------------------------------- kernels
def test_long_range_kernel_closed_form_and_limit():
    r = np.array([0.0, 1e-12, 0.05, 0.3, 2.0])
    v = tp.long_range_kernel(r, R_C)
    assert v[0] == pytest.approx(2 / (R_C * math.sqrt(math.pi)), rel=1e-15)
    assert v[1] == pytest.approx(v[0], rel=1e-12)
    np.testing.assert_allclose(v[2:], erf(r[2:] / R_C) / r[2:], rtol=1e-15)
    s = tp.short_range_kernel(r[2:], R_C)
    np.testing.assert_allclose(s + v[2:], 1 / r[2:], rtol=1e-14)


@pytest.mark.parametrize("rtol", [1e-4, 1e-8, 1e-11])
def test_newton_exp_sum_accuracy(rtol):
    K = tp.newton_exp_sum(rtol=rtol, r_min=1e-3, r_max=3.0)
    r = np.geomspace(1e-3, 3.0, 4000)
    assert np.max(np.abs(K(r) * r - 1.0)) <= rtol
    assert np.all(np.diff(K.alphas) > 0)


def test_range_separation_split():
    K = tp.newton_exp_sum(rtol=1e-9, r_min=1e-3, r_max=3.0)
    long, short = K.split(R_C)
    assert long.n_terms + short.n_terms == K.n_terms
    assert np.all(long.alphas <= 1 / R_C**2) and np.all(short.alphas > 1 / R_C**2)
    r = np.linspace(1e-3, 3.0, 500)
    np.testing.assert_allclose(long(r) + short(r), K(r), rtol=1e-14)
    # the long part is smooth and bounded at 0, the short part decays fast
    assert np.isfinite(long(np.array([0.0]))[0])
    assert np.max(np.abs(short(np.array([1.0, 2.0, 3.0])))) < 1e-6
    l2, s2 = K.split(n_long=10)
    assert l2.n_terms == 10 and s2.n_terms == K.n_terms - 10
    with pytest.raises(ValueError, match=r"give exactly one of r_c and n_long"):
        K.split()


@pytest.mark.parametrize("rtol", [1e-6, 1e-12])
def test_long_range_exp_sum_matches_erf(rtol):
    K = tp.long_range_exp_sum(R_C, 3.5, rtol=rtol)
    r = np.linspace(0, 3.5, 7001)
    err = np.max(np.abs(K(r) - tp.long_range_kernel(r, R_C)))
    assert err <= rtol * 2 / (R_C * math.sqrt(math.pi))


# --------------------------------------------------------------------------- generators
def test_lattice_alternating_with_vacancies():
    pos, q = tp.lattice((4, 3, 2), 0.5, center=(1.0, 0.0, -1.0))
    assert pos.shape == (24, 3) and q.sum() == 0
    np.testing.assert_allclose(pos.mean(axis=0), [1.0, 0.0, -1.0], atol=1e-15)
    # nearest neighbours have opposite charges
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    i, j = np.nonzero(np.isclose(d, 0.5))
    assert np.all(q[i] == -q[j])
    p2, q2 = tp.lattice((4, 4, 4), vacancies=5, random_state=0)
    assert p2.shape == (59, 3)
    p3, _ = tp.lattice((4, 4, 4), vacancies=0.25, random_state=0)
    assert p3.shape == (48, 3)
    p4, q4 = tp.lattice((2, 2, 2), vacancies=np.array([0, 7]), alternating=False)
    assert p4.shape == (6, 3) and np.all(q4 == 1)
    with pytest.raises(ValueError, match=r"vacancies must be <= 7"):
        tp.lattice((2, 2, 2), vacancies=8)


def test_random_cluster_reproducible():
    a = tp.random_cluster(50, [(0, 1), (0, 2), (-1, 0)], random_state=3)
    b = tp.random_cluster(50, [(0, 1), (0, 2), (-1, 0)], random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert np.all((a[0] >= [0, 0, -1]) & (a[0] <= [1, 2, 0]))
    assert set(np.unique(a[1])) <= {-1.0, 1.0}
    _, q = tp.random_cluster(4, BOX3, charges="alternating")
    np.testing.assert_array_equal(q, [1, -1, 1, -1])


# --------------------------------------------------------------------------- direct sums
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), M=st.integers(1, 150), N=st.integers(1, 40), d=st.integers(1, 3))
def test_direct_sum_kernel_matches_reference(seed, M, N, d):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-1, 1, (M, d))
    pos = rng.uniform(-1, 1, (N, d))
    q = rng.standard_normal(N)
    K = tp.long_range_exp_sum(0.3, 4.0, rtol=1e-10)
    for kind, kw in [(0, {}), (1, {"r_c": 0.3}), (2, {"alphas": K.alphas, "weights": K.weights}), (3, {"r_c": 0.3})]:
        ref = direct_sum_reference(pts, pos, q, kind, **kw)
        got = direct_sum_numba(pts, pos, q, kind, **kw)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(q).sum())


def test_direct_potential_against_naive_loop():
    rng = np.random.default_rng(0)
    pos, q = tp.random_cluster(17, BOX3, random_state=1)
    pts = rng.uniform(-1, 1, (33, 3))
    np.testing.assert_allclose(tp.direct_potential(pts, pos, q), _naive(pts, pos, q, lambda r: 1 / r), rtol=1e-12)
    lr = tp.direct_potential(pts, pos, q, "long_range", r_c=R_C)
    np.testing.assert_allclose(lr, _naive(pts, pos, q, lambda r: math.erf(r / R_C) / r), rtol=1e-12)
    sr = tp.direct_potential(pts, pos, q, "short_range", r_c=R_C)
    np.testing.assert_allclose(sr + lr, tp.direct_potential(pts, pos, q), rtol=1e-12)
    K = tp.newton_exp_sum(1e-8, r_min=1e-3, r_max=4.0)
    np.testing.assert_allclose(tp.direct_potential(pts, pos, q, K), _naive(pts, pos, q, lambda r: K(r)),
                               rtol=1e-12, atol=1e-12)
    # at a particle the long-range kernel takes its finite limit
    v = tp.direct_potential(pos[:1], pos, q, "long_range", r_c=R_C)
    assert np.isfinite(v[0])


# --------------------------------------------------------------------------- figure B3
@pytest.fixture(scope="module")
def b3():
    rng = np.random.default_rng(1)
    pos = rng.uniform(-0.6, 0.6, (200, 3))
    q = rng.choice([-1.0, 1.0], 200)
    pts = np.random.default_rng(2).uniform(-1, 1, (20000, 3))
    exact = tp.direct_potential(pts, pos, q, "long_range", r_c=R_C)

    def f(x):
        return tp.direct_potential(x.reshape(-1, 3), pos, q, "long_range", r_c=R_C).reshape(x.shape[:-1])

    values = ct._sample(f, BOX3, (65,) * 3)
    return pos, q, pts, exact, values


@pytest.mark.parametrize("rtol, ref_rank, ref_err", [
    (1e-3, 12, 6.3e-4),
    (1e-5, 18, 6.0e-6),
    pytest.param(1e-7, 23, 3.4e-8, marks=pytest.mark.slow),
])
def test_figure_b3_function_and_cp_routes(b3, rtol, ref_rank, ref_err):
    pos, q, pts, exact, values = b3
    scale = np.max(np.abs(exact))
    F = ct.ChebTucker.from_values(values, BOX3, rtol=rtol)
    G = tp.long_range_potential(pos, q, BOX3, r_c=R_C, rtol=rtol, degree=64)
    for A in (F, G):
        assert all(abs(r - ref_rank) <= 1 for r in A.ranks), A.ranks
        err = np.max(np.abs(A(pts) - exact)) / scale
        assert err <= 1.5 * ref_err, err
    diff = np.max(np.abs(F(pts) - G(pts))) / scale
    assert diff <= max(rtol, 1e-12), diff


def test_figure_b3_untruncated_routes_agree(b3):
    """Without truncation the CP and moments routes agree with the function route to 1e-12."""
    pos, q, pts, exact, values = b3
    F = ct.ChebTucker.from_values(values, BOX3, rank=65)
    G = tp.long_range_potential(pos, q, BOX3, r_c=R_C, rtol=1e-14, degree=64, exp_sum_rtol=1e-14)
    diff = np.max(np.abs(F(pts[:4000]) - G(pts[:4000]))) / np.max(np.abs(exact))
    assert diff <= 1e-12, diff
    H = tp.long_range_potential(pos, q, BOX3, r_c=R_C, rtol=1e-14, degree=64, exp_sum_rtol=1e-14,
                                method="moments")
    diff = np.max(np.abs(F(pts[:4000]) - H(pts[:4000]))) / np.max(np.abs(exact))
    assert diff <= 1e-12, diff


def test_figure_b3_moments_route(b3):
    """The charge-moment route reproduces B3 at tol 1e-5."""
    pos, q, pts, exact, values = b3
    scale = np.max(np.abs(exact))
    G = tp.long_range_potential(pos, q, BOX3, r_c=R_C, rtol=1e-5, degree=64, method="moments")
    assert all(abs(r - 18) <= 1 for r in G.ranks), G.ranks
    assert np.max(np.abs(G(pts) - exact)) / scale <= 1.5 * 6.0e-6
    F = ct.ChebTucker.from_values(values, BOX3, rtol=1e-5)
    assert np.max(np.abs(F(pts) - G(pts))) / scale <= 1e-5


@pytest.mark.parametrize("ns", [(7,), (5, 6), (4, 1, 6), (3, 4, 2, 5)])
@pytest.mark.parametrize("block_elems", [1, 7, 1 << 19])
def test_moment_tensor_matches_einsum(monkeypatch, ns, block_elems):
    """The blocked moment tensor equals sum_i q_i lam_1[:, i] x ... x lam_d[:, i] (any block size)."""
    from tensorapprox import chebtucker
    monkeypatch.setattr(chebtucker, "_CP_BLOCK_ELEMS", block_elems)
    rng = np.random.default_rng(len(ns))
    N = 53
    q = rng.standard_normal(N)
    lam = [rng.standard_normal((n, N)) for n in ns]
    idx = "abcd"[:len(ns)]
    ref = np.einsum("i," + ",".join(c + "i" for c in idx) + "->" + idx, q, *lam)
    np.testing.assert_allclose(chebtucker._cp_core(q, lam), ref, rtol=1e-13, atol=1e-13 * np.max(np.abs(ref)))


def test_long_range_potential_sinc_terms_route():
    """n_terms route equals the direct sum over the same long-range exponential terms."""
    pos, q = tp.lattice((3, 3, 3), 0.3, vacancies=2, random_state=0)
    F = tp.long_range_potential(pos, q, BOX3, n_terms=12, rtol=1e-9, degree=48)
    lo = np.minimum(-1.0, pos.min(0))
    hi = np.maximum(1.0, pos.max(0))
    r_max = float(np.linalg.norm(hi - lo)) * 1.01
    full = tp.newton_exp_sum(max(1e-9 / 100, 1e-14), r_min=r_max * 1e-4, r_max=r_max)
    long, _ = full.split(n_long=12)
    pts = np.random.default_rng(0).uniform(-1, 1, (500, 3))
    ref = tp.direct_potential(pts, pos, q, long)
    assert np.max(np.abs(F(pts) - ref)) <= 1e-8 * np.max(np.abs(ref))


def test_long_range_gradient_is_minus_field(b3):
    pos, q, pts, exact, _ = b3
    G = tp.long_range_potential(pos, q, BOX3, r_c=R_C, rtol=1e-7, degree=64)
    x = pts[:20] * 0.9
    h = 1e-5
    fd = np.column_stack([
        (tp.direct_potential(x + h * e, pos, q, "long_range", r_c=R_C)
         - tp.direct_potential(x - h * e, pos, q, "long_range", r_c=R_C)) / (2 * h)
        for e in np.eye(3)])
    np.testing.assert_allclose(G.gradient(x), fd, atol=1e-5 * np.max(np.abs(fd)))


# --------------------------------------------------------------------------- bad input
def test_bad_particles():
    pos = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"positions has 3 particles but charges has shape \(2,\)"):
        tp.direct_potential(np.zeros((1, 3)), pos, np.ones(2))
    with pytest.raises(ValueError, match=r"positions has 3 particles but charges has shape \(2,\)"):
        tp.long_range_potential(pos, np.ones(2), BOX3, r_c=R_C)
    with pytest.raises(ValueError, match=r"N = 0"):
        tp.long_range_potential(np.zeros((0, 3)), np.zeros(0), BOX3, r_c=R_C)
    with pytest.raises(ValueError, match=r"N = 0"):
        tp.direct_potential(np.zeros((1, 3)), np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match=r"positions must have 3 columns"):
        tp.long_range_potential(np.zeros((2, 2)), np.ones(2), BOX3, r_c=R_C)
    with pytest.raises(ValueError, match=r"give exactly one of r_c .* and n_terms"):
        tp.long_range_potential(pos, np.ones(3), BOX3)
    with pytest.raises(ValueError, match=r"points must have shape \(M, 3\)"):
        tp.direct_potential(np.zeros((4, 2)), pos, np.ones(3))
    with pytest.raises(ValueError, match=r"points\[0\] = .* coincides with a particle"):
        tp.direct_potential(np.zeros((1, 3)), pos, np.ones(3))
    with pytest.raises(ValueError, match=r"kernel='long_range' needs r_c"):
        tp.direct_potential(np.ones((1, 3)), pos, np.ones(3), "long_range")
    with pytest.raises(ValueError, match=r"kernel must be 'newton'"):
        tp.direct_potential(np.ones((1, 3)), pos, np.ones(3), "coulomb")
    with pytest.raises(ValueError, match=r"positions and charges must be finite"):
        tp.direct_potential(np.ones((1, 3)), pos, np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"domain\[2\] = \(1.0, 1.0\) needs a < b"):
        tp.long_range_potential(pos, np.ones(3), [(-1, 1), (-1, 1), (1, 1)], r_c=R_C)
    with pytest.raises(ValueError, match=r"r_c must be > 0"):
        tp.long_range_kernel(np.ones(2), 0.0)
    with pytest.raises(ValueError, match=r"method must be one of 'cp', 'moments'"):
        tp.long_range_potential(pos, np.ones(3), BOX3, r_c=R_C, method="fmm")


def test_edge_inputs_found_in_review():
    # complex points were cut to their real part
    pos, q = np.array([[0.0, 0.0, 0.0]]), np.array([1.0])
    with pytest.raises(TypeError, match="points must be real"):
        tp.direct_potential(np.array([[1.0 + 5j, 0.0, 0.0]]), pos, q)
    # r_c**2 underflowed: ZeroDivisionError; every term is long-range there
    K = tp.newton_exp_sum(1e-6)
    for r_c in (1e-30, 1e-200):
        long, short = K.split(r_c=r_c)
        assert long.n_terms == K.n_terms and short is None
    # an empty list of vacancies is no vacancy (it was refused as float64)
    sites, charges = tp.lattice((2, 2), vacancies=[])
    ref_sites, ref_charges = tp.lattice((2, 2))
    np.testing.assert_array_equal(sites, ref_sites)
    np.testing.assert_array_equal(charges, ref_charges)


def test_moments_route_refuses_what_it_cannot_resolve():
    # the moment points were capped at 513 without a word: 1 to 5% off at the
    # interpolant's own nodes (r_c = 0.002 on a box of width 2), where the CP
    # route is accurate
    import tensorapprox.chebyshev as cheb

    rng = np.random.default_rng(5)
    pos = rng.uniform(-1, 1, (30, 2))
    q = rng.choice([-1.0, 1.0], 30)
    x = cheb.chebpts(201, (-1, 1))
    G = np.stack(np.meshgrid(x, x, indexing="ij"), -1).reshape(-1, 2)[::97]
    ref = tp.direct_potential(G, pos, q, "long_range", r_c=0.002)
    F = tp.long_range_potential(pos, q, [(-1, 1)] * 2, r_c=0.002, degree=200, rtol=1e-10, method="cp")
    assert np.max(np.abs(F(G) - ref)) <= 1e-8 * np.max(np.abs(ref))
    with pytest.raises(ValueError, match="method='moments' cannot interpolate"):
        tp.long_range_potential(pos, q, [(-1, 1)] * 2, r_c=0.002, degree=200, rtol=1e-10, method="moments")


def test_short_range_potential_far_from_the_charges():
    # 1/r - erf(r/r_c)/r cancelled to 0 (erfc(10) = 2.1e-45 at r = 1,
    # r_c = 0.1) and kept only 1e-5 to 1e-4 of its value a few r_c out
    from scipy.special import erfc

    pos = np.array([[0.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    q = np.array([1.0, -0.5])
    pts = np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.5, 0.5, 0.5]])
    for r_c in (0.1, 0.2, 0.5):
        ref = _naive(pts, pos, q, lambda r: erfc(r / r_c) / r)
        # erfc(z) has relative condition number 2 z^2 (430 at z = 14.7):
        # one rounding in r / r_c moves it by about 1e-13
        for f in (direct_sum_numba, direct_sum_reference):
            np.testing.assert_allclose(f(pts, pos, q, 3, r_c=r_c), ref, rtol=2e-12)
        np.testing.assert_allclose(tp.direct_potential(pts, pos, q, "short_range", r_c=r_c), ref, rtol=2e-12)


@pytest.mark.parametrize("s", [1e-170, 1e-158, 1e-140, 1e140, 1e154, 1e160, 1e300])
def test_direct_potential_at_any_length_scale(s):
    # r^2 overflowed to inf beyond about 1e154 (a potential of 0) and
    # underflowed below 1e-154 (subnormal error, then a false "coincides")
    pos = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]) * s
    q = np.array([1.0, -1.0])
    pts = np.array([[0.0, 2.0, 0.0], [0.3, -0.4, 1.2]]) * s
    cases = [(0, {}, lambda r: 1 / r, 1 / s), (1, {"r_c": 0.7 * s}, lambda r: math.erf(r / 0.7) / r, 1 / s),
             (3, {"r_c": 0.7 * s}, lambda r: math.erfc(r / 0.7) / r, 1 / s)]
    K = tp.ExpSum([0.5, 2.0], [1.0, 0.25])  # in units of s: exponents scale with 1/s^2
    with np.errstate(over="ignore", under="ignore"):
        alphas = K.alphas / np.float64(s) / np.float64(s)
    if np.all((alphas > 1e-300) & (alphas < 1e300)):  # representable to full precision
        cases.append((2, {"alphas": alphas, "weights": K.weights}, K, 1.0))
    for kind, kw, kern, unit in cases:
        ref = _naive(pts / s, pos / s, q, kern) * unit
        for f in (direct_sum_numba, direct_sum_reference):
            np.testing.assert_allclose(f(pts, pos, q, kind, **kw), ref, rtol=1e-13, err_msg=f"kind {kind}")


def test_direct_potential_errors_and_dtypes_found_in_review():
    pos, q = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), np.array([1.0, -1.0])
    pts = np.array([[0.5, 0.1, 0.0]])
    # an overflowing sum: the long-range kernel returned inf, the Newton one
    # blamed a point on a particle that was not there
    for kernel, r_c in (("newton", None), ("long_range", 0.3), ("short_range", 100.0)):
        with pytest.raises(ValueError, match=f"the {kernel} potential at points\\[0\\] .* overflows float64"):
            tp.direct_potential(pts, pos, np.array([1e308, 1e308]), kernel, r_c=r_c)
    with pytest.raises(ValueError, match="coincides with a particle"):
        tp.direct_potential(pos[1:], pos, q, "short_range", r_c=0.3)
    # points are checked as positions are: booleans and timedeltas were cast
    for bad in (np.array([[True, True, False]]), np.array([[1, 2, 3]], dtype="m8[s]")):
        with pytest.raises(TypeError, match="points must be a real"):
            tp.direct_potential(bad, pos, q)
    with pytest.raises(TypeError, match="positions must be a real"):
        tp.direct_potential(pts, pos.astype("m8[s]"), q)
    with pytest.raises(ValueError, match="kernel must be 'newton'"):
        tp.direct_potential(pts, pos, q, np.array([1.0, 2.0]))
    # float32 in, float32 out (summed in float64); any float64 input gives float64
    f32 = tp.direct_potential(pts.astype(np.float32), pos.astype(np.float32), q.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, _naive(pts, pos, q, lambda r: 1 / r), rtol=1e-6)
    assert tp.direct_potential(pts.astype(np.float32), pos, q).dtype == np.float64
    xps = pytest.importorskip("array_api_strict")
    with warnings.catch_warnings():  # comparing its dtypes with numpy's warned
        warnings.simplefilter("error")
        got = tp.direct_potential(*(xps.asarray(a, dtype=xps.float32) for a in (pts, pos, q)))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, f32, rtol=1e-6)


def test_exp_sums_and_lattices_found_in_review():
    # the generated dataclass comparison compared arrays ("truth value ...
    # ambiguous") and the class was unhashable
    K = tp.long_range_exp_sum(0.3, 3.0, rtol=1e-8)
    same = tp.ExpSum(K.alphas.copy(), K.weights.copy())
    assert K == same and hash(K) == hash(same) and len({K, same}) == 1
    assert K != tp.ExpSum(K.alphas, 2 * K.weights) and K != "ExpSum"
    a, b = tp.ExpSum([0.5, 1.0], [0.0, 2.0]), tp.ExpSum([0.5, 1.0], [-0.0, 2.0])  # equal, so equal hashes
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    # max_terms below 4 was not honoured (3 terms for max_terms=2)
    for cap in (2, 3):
        try:
            assert tp.long_range_exp_sum(1.0, 1.0, 0.9, max_terms=cap).n_terms <= cap
        except ValueError as exc:
            assert f"more than {cap} terms" in str(exc)
    assert tp.long_range_exp_sum(1.0, 1.0, 0.5, max_terms=3).n_terms <= 3
    with pytest.raises(ValueError, match="center must be finite"):
        tp.lattice((2, 2), center=[np.nan, 0.0])


@pytest.mark.parametrize("method", ["cp", "moments"])
def test_long_range_potential_at_any_scale_of_charges_and_lengths(method):
    # the CP route squared the charge-weighted terms: charges of 1e-170 gave
    # ranks 1 and a potential of 0, charges of 1e155 an error about NaN;
    # coordinates beyond 1e154 or below 1e-154 failed with errors about
    # r_max or alphas, arguments the caller never gave
    pos, q = tp.random_cluster(12, [(-0.5, 0.5)] * 3, random_state=0)
    x = np.random.default_rng(1).uniform(-1, 1, (50, 3))
    ref = tp.direct_potential(x, pos, q, "long_range", r_c=0.3)
    for cs, ls in ((1e-170, 1.0), (1e155, 1.0), (1.0, 1e154), (1.0, 1e-160), (1e-100, 1e200)):
        F = tp.long_range_potential(pos * ls, q * cs, [(-ls, ls)] * 3, r_c=0.3 * ls, degree=24, rtol=1e-6,
                                    method=method)
        got = F(x * ls) * (ls / cs)
        assert np.max(np.abs(got - ref)) <= 1e-5 * np.max(np.abs(ref))


def test_long_range_potential_names_its_own_arguments_when_the_exp_sum_fails():
    with pytest.raises(ValueError, match="In long_range_potential: r_c = 0.01 is .* loosen exp_sum_rtol"):
        tp.long_range_potential([[0, 0, 0], [1e4, 0, 0]], [1.0, -1.0], BOX3, r_c=0.01, degree=16)


# --------------------------------------------------------------------------- scale, signs, messages
def test_exp_sum_evaluates_beyond_the_square_root_of_the_float64_range():
    # r * r overflowed above r = 1.3e154 although alphas * r^2 is moderate
    # (direct_potential, with the same ExpSum, was right); powers of two keep
    # the scaled sum exact
    K1 = tp.ExpSum(alphas=[0.5, 1.0, 2.0, 4.0], weights=[1.0, -0.5, 0.25, 2.0])
    Ks = tp.ExpSum(alphas=np.ldexp(K1.alphas, -1040), weights=K1.weights)
    rho = np.array([0.0, 0.3, 1.0, 2.5])
    np.testing.assert_allclose(Ks(np.ldexp(rho, 520)), K1(rho), rtol=1e-13)
    assert float(Ks(math.ldexp(1.0, 520))) == pytest.approx(float(K1(1.0)), rel=1e-13)
    np.testing.assert_allclose(Ks(np.ldexp(rho, 520)),
                               tp.direct_potential(np.ldexp(rho, 520)[:, None], np.zeros((1, 1)), np.ones(1), Ks),
                               rtol=1e-13)


@pytest.mark.parametrize("k", [-450, 450])
def test_exp_sum_builders_are_scale_covariant(k):
    # lengths 2^k times the unit ones: exponents 2^-2k, weights 2^-k times
    # theirs, the same number of terms
    K1 = tp.long_range_exp_sum(0.3, 3.0, 1e-10)
    Ks = tp.long_range_exp_sum(math.ldexp(0.3, k), math.ldexp(3.0, k), 1e-10)
    assert Ks.n_terms == K1.n_terms
    np.testing.assert_array_equal(Ks.alphas, np.ldexp(K1.alphas, -2 * k))
    np.testing.assert_array_equal(Ks.weights, np.ldexp(K1.weights, -k))
    N1 = tp.newton_exp_sum(1e-8, 1e-3, 3.0)
    Ns = tp.newton_exp_sum(1e-8, math.ldexp(1e-3, k), math.ldexp(3.0, k))
    assert Ns.n_terms == N1.n_terms
    np.testing.assert_array_equal(Ns.alphas, np.ldexp(N1.alphas, -2 * k))
    np.testing.assert_array_equal(Ns.weights, np.ldexp(N1.weights, -k))


def test_newton_exp_sum_over_a_range_of_many_decades():
    # exponents from about (rtol / r_max)^2 to 1 / r_min^2, both in range
    K = tp.newton_exp_sum(1e-6, 1e-60, 1e100)
    r = np.geomspace(1e-60, 1e100, 300)
    assert np.max(np.abs(K(r) * r - 1.0)) < 1e-6


def test_exp_sum_builders_name_the_lengths_out_of_float64_range():
    # the errors claimed more than 400 terms were needed, or blamed alphas,
    # which the caller never passed
    with pytest.raises(ValueError, match=r"r_c = 1e\+160, r_max = 3e\+160: .*normal range.*rescale the lengths"):
        tp.long_range_exp_sum(1e160, 3e160, 1e-10)
    with pytest.raises(ValueError, match=r"r_c = 1e-160, r_max = 3e-160: .*overflow float64.*rescale the lengths"):
        tp.long_range_exp_sum(1e-160, 3e-160, 1e-10)
    with pytest.raises(ValueError, match=r"r_min = 1e-160, r_max = 1e-157: .*overflow float64"):
        tp.newton_exp_sum(1e-8, 1e-160, 1e-157)
    with pytest.raises(ValueError, match=r"r_min = 1e\+160, r_max = 1e\+163: .*normal range"):
        tp.newton_exp_sum(1e-8, 1e160, 1e163)


def test_kernels_refuse_negative_distances():
    # the long-range kernel returned its value at 0 (1.128, not erf(1) = 0.843)
    # while the Newton and short-range kernels returned negative values
    for fn in (tp.newton_kernel, lambda r: tp.long_range_kernel(r, 1.0), lambda r: tp.short_range_kernel(r, 1.0)):
        with pytest.raises(ValueError, match=r"r must hold distances >= 0, got -1.0"):
            fn(np.array([0.5, -1.0]))
    assert float(tp.long_range_kernel(np.array([0.0]), 1.0)[0]) == pytest.approx(2 / math.sqrt(math.pi))
    assert float(tp.long_range_kernel(1.0, 1.0)) == pytest.approx(erf(1.0), rel=1e-15)


def test_point_on_a_particle_message_prints_plain_floats():
    # the coordinates printed as (np.float64(0.25), np.float64(0.5))
    P = np.array([[0.25, 0.5]])
    with pytest.raises(ValueError, match=r"points\[0\] = \(0\.25, 0\.5\) coincides with a particle"):
        tp.direct_potential(P, P, np.array([1.0]))


def test_lattice_refuses_positions_beyond_float64():
    # infinite positions came back with a RuntimeWarning only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"spacing = 1e\+308 .*beyond float64's range"):
            tp.lattice((5,), spacing=1e308)
    pos, _ = tp.lattice((3,), spacing=1e307)
    np.testing.assert_array_equal(pos.ravel(), [-1e307, 0.0, 1e307])


def test_long_range_potential_recompress_must_be_a_bool():
    # recompress="no" is truthy: it recompressed
    with pytest.raises(TypeError, match=r"recompress must be True or False, got str"):
        tp.long_range_potential(np.array([[0.25, 0.5]]), np.array([1.0]), [(-1, 1)] * 2, r_c=0.5, degree=8,
                                recompress="no")


@pytest.mark.parametrize("s", [1e-170, 1e170])
def test_one_dimensional_moments_potential_at_any_charge_scale(s):
    # the 1-D compression normalised by sqrt(sum C^2): charges of 1e-170 gave 0
    P, q = np.array([[0.1], [-0.3]]), np.array([1.0, -2.0])
    x = np.array([[0.3], [-0.9], [0.55]])
    F1 = tp.long_range_potential(P, q, [(-1.0, 1.0)], r_c=0.5, degree=30, method="moments")
    Fs = tp.long_range_potential(P, s * q, [(-1.0, 1.0)], r_c=0.5, degree=30, method="moments")
    np.testing.assert_allclose(Fs(x), s * F1(x), rtol=1e-12)
