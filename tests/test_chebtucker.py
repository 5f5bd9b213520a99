"""Tests of the Chebyshev-Tucker format: the issue's figures B1, B2, B4, the
evaluation kernel against its reference, calculus, arithmetic, persistence and
bad input. (B3 and the particle routes live in test_particles.py.)
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.polynomial.chebyshev as npc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf

import tensorapprox.chebyshev as cheb
import tensorapprox.chebtucker as ct
from tensorapprox._kernels.chebyshev import tucker_cheb_eval_numba, tucker_cheb_eval_reference

BOX3 = [(-1.0, 1.0)] * 3


def runge3(x):
    return 1.0 / (1.0 + 25.0 * np.sum(x * x, axis=-1))


def erf3(x, r_c=0.2):
    r = np.sqrt(np.sum(x * x, axis=-1))
    out = np.full(r.shape, 2.0 / (r_c * np.sqrt(np.pi)))
    nz = r > 0
    out[nz] = erf(r[nz] / r_c) / r[nz]
    return out


@pytest.fixture(scope="module")
def points_b12():
    return np.random.default_rng(0).uniform(-1, 1, (20000, 3))


def _max_rel_error(F, f, pts):
    exact = f(pts)
    return float(np.max(np.abs(F(pts) - exact)) / np.max(np.abs(exact)))


def _check_figure(F, ref_rank, ref_err, err):
    assert all(abs(r - ref_rank) <= 1 for r in F.ranks), (F.ranks, ref_rank)
    assert err <= 1.5 * ref_err, (err, ref_err)


# --------------------------------------------------------------------------- figures
@pytest.fixture(scope="module")
def runge_values():
    return ct._sample(runge3, BOX3, (129,) * 3)


@pytest.mark.parametrize("rtol, ref_rank, ref_err", [
    (1e-3, 5, 7.9e-4),
    (1e-5, 8, 4.1e-6),
    pytest.param(1e-7, 11, 1.1e-8, marks=pytest.mark.slow),
])
def test_figure_b1_runge(runge_values, points_b12, rtol, ref_rank, ref_err):
    F = ct.ChebTucker.from_values(runge_values, BOX3, rtol=rtol)
    assert F.degrees == (128, 128, 128)
    _check_figure(F, ref_rank, ref_err, _max_rel_error(F, runge3, points_b12))


def test_figure_b1_function_route(points_b12):
    """from_function gives the same approximant as sampling + from_values."""
    F = ct.ChebTucker.from_function(runge3, BOX3, degree=128, rtol=1e-3)
    _check_figure(F, 5, 7.9e-4, _max_rel_error(F, runge3, points_b12))


@pytest.fixture(scope="module")
def erf_values():
    return ct._sample(erf3, BOX3, (65,) * 3)


@pytest.mark.parametrize("rtol, ref_rank, ref_err", [
    (1e-3, 4, 6.0e-4),
    (1e-5, 6, 2.6e-6),
    (1e-7, 8, 5.3e-9),
])
def test_figure_b2_erf(erf_values, points_b12, rtol, ref_rank, ref_err):
    F = ct.ChebTucker.from_values(erf_values, BOX3, rtol=rtol)
    _check_figure(F, ref_rank, ref_err, _max_rel_error(F, erf3, points_b12))


@pytest.mark.parametrize("rtol, ref_rank", [(1e-3, 4), (1e-5, 6), (1e-7, 8)])
def test_als_ranks_and_error_bound(erf_values, rtol, ref_rank):
    """ALS/HOOI may give ranks 0-2 lower; the coefficient error bound must hold."""
    F = ct.ChebTucker.from_values(erf_values, BOX3, rtol=rtol, method="als")
    assert all(ref_rank - 2 <= r <= ref_rank + 1 for r in F.ranks), F.ranks
    C = ct._coeffs(erf_values)
    assert np.linalg.norm(F.coefficients() - C) <= rtol * np.linalg.norm(C) * (1 + 1e-9)


def test_figure_b4_protein_from_cp(shared_data):
    """The paper's Algorithm 4 on the 500-atom protein: ranks (40, 40, 47), slice error ~1.4e-6."""
    path = shared_data / "chebtucker" / "protein_n500_rs_longrange_cp_n256.npz"
    if not path.exists():
        pytest.skip(f"{path.name} is absent")
    with np.load(path, allow_pickle=False) as fh:
        w = fh["weights"]
        fs = [fh["factor_x"], fh["factor_y"], fh["factor_z"]]
        n = int(fh["n"])
    grid = -1.0 + (np.arange(n) + 0.5) * 2.0 / n
    F = ct.ChebTucker.from_cp(w, fs, grid, BOX3, rtol=1e-7, degree=128)
    assert all(abs(r - ref) <= 1 for r, ref in zip(F.ranks, (40, 40, 47))), F.ranks
    iz = n // 2
    exact = np.einsum("r,ir,jr->ij", w * fs[2][iz], fs[0], fs[1])
    approx = F.on_grid(grid, grid, grid[iz:iz + 1]).full()[:, :, 0]
    err = np.max(np.abs(approx - exact)) / np.max(np.abs(exact))
    assert err <= 1.5 * 1.4e-6, err


# --------------------------------------------------------------------------- exactness
@settings(max_examples=25, deadline=None)
@given(d=st.integers(1, 3), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_exact_on_polynomials(d, seed, data):
    """A sum of two separable polynomials of degree < m is interpolated exactly."""
    ms = [data.draw(st.integers(2, 9)) for _ in range(d)]
    rng = np.random.default_rng(seed)
    dom = [(float(a), float(a) + float(w)) for a, w in zip(rng.uniform(-3, 3, d), rng.uniform(0.5, 4, d))]
    terms = [[rng.uniform(-1, 1, rng.integers(1, m + 1)) for m in ms] for _ in range(2)]

    def poly(x):
        out = np.zeros(x.shape[:-1])
        for term in terms:
            p = np.ones(x.shape[:-1])
            for k, c in enumerate(term):
                a, b = dom[k]
                p = p * npc.chebval((2 * x[..., k] - a - b) / (b - a), c)
            out = out + p
        return out

    F = ct.ChebTucker.from_function(poly, dom, degree=[m - 1 for m in ms], rtol=1e-14)
    lo, hi = np.array(dom).T
    pts = rng.uniform(lo, hi, (64, d))
    exact = poly(pts)
    scale = max(1.0, float(np.max(np.abs(exact))))
    assert np.max(np.abs(F(pts) - exact)) <= 1e-13 * scale


# --------------------------------------------------------------------------- kernel vs reference
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(1, 4), n=st.integers(0, 300), data=st.data())
def test_eval_kernel_matches_reference(seed, d, n, data):
    ms = [data.draw(st.integers(1, 20)) for _ in range(d)]
    rs = [data.draw(st.integers(1, 5)) for _ in range(d)]
    rng = np.random.default_rng(seed)
    factors = [rng.standard_normal((m, r)) for m, r in zip(ms, rs)]
    core = rng.standard_normal(rs)
    t = rng.uniform(-1, 1, (n, d))
    ref = tucker_cheb_eval_reference(t, factors, core)
    got = tucker_cheb_eval_numba(t, factors, core)
    scale = 1.0 + float(np.max(np.abs(ref), initial=0.0))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * scale * max(ms))
    dfs = [cheb.chebder(A) for A in factors]
    gref = tucker_cheb_eval_reference(t, factors, core, dfs)
    ggot = tucker_cheb_eval_numba(t, factors, core, dfs)
    gscale = 1.0 + float(np.max(np.abs(gref), initial=0.0))
    np.testing.assert_allclose(ggot, gref, rtol=0, atol=1e-12 * gscale * max(ms) ** 2)


def _dense_series_eval(t, C):
    """``sum_j C[j] prod_k T_{j_k}(t_k)`` with numpy.polynomial's Vandermonde matrices."""
    d = C.ndim
    Vs = [npc.chebvander(t[:, k], C.shape[k] - 1) for k in range(d)]
    idx = "abcdef"[:d]
    return np.einsum(",".join("p" + c for c in idx) + "," + idx + "->p", *Vs, C, optimize=True)


@pytest.mark.parametrize("ms, rs, block", [
    ((65, 65, 65), (22, 22, 22), None),   # the particle benchmark's shape
    ((65, 65, 65), (22, 22, 22), 37),     # several blocks, a partial last one
    ((33, 17), (9, 4), None),
    ((33, 17), (9, 4), 5),
    ((9, 12, 7, 10), (3, 5, 2, 4), None),
    ((9, 12, 7, 10), (3, 5, 2, 4), 11),
    ((12,), (3,), 4),
    ((1, 5, 2), (1, 2, 1), 3),            # constant and linear modes
])
def test_eval_kernel_blocks_match_dense_series(ms, rs, block):
    """Kernel values and gradient (any block size) equal the reference and the dense series."""
    rng = np.random.default_rng(sum(ms) + sum(rs))
    d = len(ms)
    factors = [rng.standard_normal((m, r)) / (1 + np.arange(m))[:, None] for m, r in zip(ms, rs)]
    core = rng.standard_normal(rs)
    t = rng.uniform(-1, 1, (150, d))
    t[0] = 1.0
    t[1] = -1.0
    C = core
    for k in range(d):  # dense coefficient tensor core x_k factors[k]
        C = np.moveaxis(np.tensordot(factors[k], C, axes=(1, k)), 0, k)
    got = tucker_cheb_eval_numba(t, factors, core, block=block)
    ref = tucker_cheb_eval_reference(t, factors, core)
    dense = _dense_series_eval(t, C)
    scale = float(np.max(np.abs(dense)))
    np.testing.assert_allclose(got, dense, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * scale)

    dfs = [cheb.chebder(A) for A in factors]
    ggot = tucker_cheb_eval_numba(t, factors, core, dfs, block=block)
    gref = tucker_cheb_eval_reference(t, factors, core, dfs)
    gdense = np.column_stack([
        _dense_series_eval(t, npc.chebder(C, axis=k)) if ms[k] > 1 else np.zeros(len(t)) for k in range(d)
    ])
    gscale = max(1.0, float(np.max(np.abs(gdense))))
    assert ggot.shape == (len(t), d)
    np.testing.assert_allclose(ggot, gdense, rtol=0, atol=1e-12 * gscale)
    np.testing.assert_allclose(ggot, gref, rtol=0, atol=1e-12 * gscale)


def test_eval_kernel_empty_and_single_point():
    rng = np.random.default_rng(5)
    factors = [rng.standard_normal((6, 2)) for _ in range(3)]
    core = rng.standard_normal((2, 2, 2))
    assert tucker_cheb_eval_numba(np.zeros((0, 3)), factors, core).shape == (0,)
    dfs = [cheb.chebder(A) for A in factors]
    assert tucker_cheb_eval_numba(np.zeros((0, 3)), factors, core, dfs).shape == (0, 3)
    t = rng.uniform(-1, 1, (1, 3))
    np.testing.assert_allclose(tucker_cheb_eval_numba(t, factors, core),
                               tucker_cheb_eval_reference(t, factors, core), rtol=1e-13)


def test_eval_against_dense_coefficients():
    """Point values equal the dense Chebyshev series sum_{ijk} C_ijk T_i T_j T_k."""
    rng = np.random.default_rng(3)
    F = ct.ChebTucker(rng.standard_normal((2, 3, 2)),
                      [rng.standard_normal((m, r)) for m, r in [(5, 2), (7, 3), (4, 2)]],
                      [(0, 1), (-2, 2), (1, 3)])
    C = F.coefficients()
    pts = np.column_stack([rng.uniform(0, 1, 40), rng.uniform(-2, 2, 40), rng.uniform(1, 3, 40)])
    t = np.column_stack([2 * pts[:, 0] - 1, pts[:, 1] / 2, pts[:, 2] - 2])
    ref = npc.chebval3d(t[:, 0], t[:, 1], t[:, 2], C)
    np.testing.assert_allclose(F(pts), ref, atol=1e-12)


def test_array_api_strict_points():
    xps = pytest.importorskip("array_api_strict")
    F = ct.ChebTucker.from_function(runge3, BOX3, degree=20, rtol=1e-6)
    pts = np.random.default_rng(5).uniform(-1, 1, (50, 3))
    got = F(xps.asarray(pts))
    assert type(got).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(got), F(pts), atol=1e-13)


def test_approximant_held_in_array_api_strict():
    # built from array_api_strict values: gradient raised IndexError, nbytes
    # and repr AttributeError, numpy points "Multiple namespaces", an integer
    # core was kept (its evaluation failed), float32 kept float32 where numpy
    # gives float64, and +, - and recompress returned numpy approximants
    xps = pytest.importorskip("array_api_strict")
    from tensorapprox import chebyshev as cheb

    x = cheb.chebpts(8, (0, 1))
    V = np.exp(x[:, None] * x[None, :])
    Fn = ct.ChebTucker.from_values(V, [(0, 1)] * 2)
    Fx = ct.ChebTucker.from_values(xps.asarray(V), [(0, 1)] * 2)
    P = np.array([[0.2, 0.3], [0.9, 0.1]])
    g = Fx.gradient(xps.asarray(P))
    assert type(g).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(g), Fn.gradient(P), atol=1e-12)
    assert Fx.nbytes == Fn.nbytes and repr(Fx) == repr(Fn)
    np.testing.assert_allclose(Fx(P), Fn(P), atol=1e-13)  # numpy points: numpy values
    np.testing.assert_allclose(Fx([[0.2, 0.3]]), Fn(P[:1]), atol=1e-13)
    np.testing.assert_allclose(Fx.on_grid(np.array([0.1, 0.5]), np.array([0.2])).full(),
                               Fn.on_grid(np.array([0.1, 0.5]), np.array([0.2])).full(), atol=1e-13)
    for G in (Fx + Fx, Fx - Fx, (Fx + Fx).recompress(1e-10)):
        assert type(G.core).__module__.startswith("array_api_strict")
        assert all(type(A).__module__.startswith("array_api_strict") for A in G.factors)
    np.testing.assert_allclose(np.asarray((Fx + Fx).recompress(1e-10)(xps.asarray(P))), 2 * Fn(P), atol=1e-12)
    Fi = ct.ChebTucker(xps.asarray(np.ones((2, 2), dtype=np.int64)),
                       [xps.asarray(np.arange(6).reshape(3, 2))] * 2, [(0, 1)] * 2)
    Fin = ct.ChebTucker(np.ones((2, 2), dtype=np.int64), [np.arange(6).reshape(3, 2)] * 2, [(0, 1)] * 2)
    assert Fi.core.dtype == xps.float64
    np.testing.assert_allclose(np.asarray(Fi(xps.asarray(P))), Fin(P), atol=1e-12)
    F32 = ct.ChebTucker.from_values(xps.asarray(V.astype(np.float32)), [(0, 1)] * 2)
    assert F32.core.dtype == xps.float64
    assert ct.ChebTucker.from_values(V.astype(np.float32), [(0, 1)] * 2).core.dtype == np.float64


# --------------------------------------------------------------------------- calculus and grids
@pytest.fixture(scope="module")
def smooth3():
    def f(x):
        return np.exp(0.5 * x[..., 0]) * np.sin(x[..., 1] + 2 * x[..., 2]) + x[..., 0] * x[..., 2] ** 2

    F = ct.ChebTucker.from_function(f, [(-1, 1), (0, 2), (-0.5, 1.5)], degree=(20, 24, 28), rtol=1e-13)
    return f, F


def test_on_grid_agrees_with_point_evaluation(smooth3):
    _, F = smooth3
    axes = [np.linspace(-1, 1, 7), np.linspace(0, 2, 5), np.linspace(-0.5, 1.5, 6)]
    T = F.on_grid(*axes)
    assert T.ranks == F.ranks and T.shape == (7, 5, 6)
    X = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    np.testing.assert_allclose(T.full().reshape(-1), F(X), rtol=0, atol=1e-12)


def test_gradient_matches_central_differences_and_closed_form(smooth3):
    f, F = smooth3
    rng = np.random.default_rng(7)
    pts = np.column_stack([rng.uniform(-0.9, 0.9, 30), rng.uniform(0.1, 1.9, 30), rng.uniform(-0.4, 1.4, 30)])
    G = F.gradient(pts)
    h = 1e-5
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        fd = (F(pts + e) - F(pts - e)) / (2 * h)
        np.testing.assert_allclose(G[:, k], fd, atol=1e-8)
    x, y, z = pts.T
    exact = np.column_stack([
        0.5 * np.exp(0.5 * x) * np.sin(y + 2 * z) + z**2,
        np.exp(0.5 * x) * np.cos(y + 2 * z),
        2 * np.exp(0.5 * x) * np.cos(y + 2 * z) + 2 * x * z,
    ])
    np.testing.assert_allclose(G, exact, atol=1e-10)


def test_integral_closed_form():
    F = ct.ChebTucker.from_function(lambda x: np.exp(x[..., 0] + 2 * x[..., 1]) + x[..., 2],
                                    [(0, 1), (0, 1), (-1, 2)], degree=(18, 22, 2), rtol=1e-14)
    exact = (np.e - 1) * (np.e**2 - 1) / 2 * 3 + 1.5
    assert F.integral() == pytest.approx(exact, rel=1e-13)


def test_adaptive_degree_resolves_and_chops():
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] ** 3 + x[..., 1], [(-1, 1)] * 2, rtol=1e-10)
    assert F.degrees[0] <= 4 and F.degrees[1] <= 2
    pts = np.random.default_rng(1).uniform(-1, 1, (500, 3))
    G = ct.ChebTucker.from_function(runge3, BOX3, rtol=1e-6)
    assert 32 <= max(G.degrees) <= 128
    assert _max_rel_error(G, runge3, pts) < 1e-5


def test_from_cp_agrees_with_from_function():
    """Algorithm 4 on sampled Gaussians equals the function route on the same function."""
    g = np.linspace(-1, 1, 201)
    alphas = np.array([0.5, 2.0, 5.0])
    centers = np.array([[0.1, -0.2, 0.3], [-0.3, 0.2, 0.0], [0.4, 0.4, -0.4]])
    w = np.array([1.0, -0.7, 0.4])
    fs = [np.exp(-alphas * (g[:, None] - centers[:, k]) ** 2) for k in range(3)]

    def f(x):
        return sum(w[i] * np.exp(-alphas[i] * np.sum((x - centers[i]) ** 2, axis=-1)) for i in range(3))

    Fcp = ct.ChebTucker.from_cp(w, fs, g, rtol=1e-10, degree=40)
    Ffn = ct.ChebTucker.from_function(f, BOX3, degree=40, rtol=1e-10)
    pts = np.random.default_rng(2).uniform(-1, 1, (2000, 3))
    # cubic splines on h = 0.01 err by ~h^4 * max f'''' ~ 1e-7
    np.testing.assert_allclose(Fcp(pts), Ffn(pts), atol=1e-6)
    np.testing.assert_allclose(Ffn(pts), f(pts), atol=1e-9)
    Frec = ct.ChebTucker.from_cp(w, fs, g, rtol=1e-10, degree=40, recompress=True)
    np.testing.assert_allclose(Frec(pts), Fcp(pts), atol=1e-8)


# --------------------------------------------------------------------------- arithmetic and persistence
def test_arithmetic_and_recompress(smooth3):
    _, F = smooth3
    G = ct.ChebTucker.from_function(lambda x: np.cos(x[..., 0] * x[..., 1]) + x[..., 2],
                                    F.domain, degree=(10, 12, 3), rtol=1e-12)
    pts = np.random.default_rng(4).uniform([-1, 0, -0.5], [1, 2, 1.5], (100, 3))
    S = F + 2.0 * G
    assert S.ranks == tuple(a + b for a, b in zip(F.ranks, G.ranks))
    np.testing.assert_allclose(S(pts), F(pts) + 2 * G(pts), atol=1e-12)
    np.testing.assert_allclose((F - F)(pts), 0.0, atol=1e-12)
    np.testing.assert_allclose((-G / 4)(pts), -G(pts) / 4, atol=1e-14)
    R = (F + F).recompress(1e-12)
    assert R.ranks == F.ranks
    np.testing.assert_allclose(R(pts), 2 * F(pts), atol=1e-11)
    with pytest.raises(ValueError, match=r"different boxes"):
        F + ct.ChebTucker.from_function(lambda x: x[..., 0], BOX3, degree=1)


def test_recompress_drops_what_cancels_to_rounding(smooth3):
    # F - F re-expanded leaves core entries of about eps ||F||; a relative
    # tolerance kept them as an approximant of pure noise of ranks (4, 6, 6)
    _, F = smooth3
    pts = np.random.default_rng(5).uniform([-1, 0, -0.5], [1, 2, 1.5], (50, 3))
    Z = (F - F).recompress()
    assert Z.ranks == (1, 1, 1)
    assert Z.norm() == 0.0 and np.all(Z(pts) == 0.0)
    # a real difference far below F's size but above rounding is kept
    D = (F - (1 + 1e-9) * F).recompress(1e-6)
    assert D.ranks == F.ranks
    np.testing.assert_allclose(D(pts), -1e-9 * F(pts), rtol=1e-4, atol=1e-6 * 1e-9 * np.abs(F(pts)).max())
    # a fixed rank is honoured as given
    assert (F - F).recompress(rank=2).ranks == (2, 2, 2)


def test_properties(smooth3):
    _, F = smooth3
    assert F.ndim == 3 and F.degrees == (20, 24, 28)
    assert F.nbytes == 8 * (np.prod(F.ranks) + sum(m * r for m, r in zip((21, 25, 29), F.ranks)))
    assert F.tucker.shape == (21, 25, 29)
    assert "ChebTucker(" in repr(F)
    with pytest.raises(ValueError, match=r"read-only"):
        F.core[0, 0, 0] = 1.0


def test_save_load_roundtrip(tmp_path, smooth3):
    _, F = smooth3
    p = tmp_path / "f.npz"
    F.save(p)
    G = ct.ChebTucker.load(p)
    assert G.domain == F.domain and G.ranks == F.ranks
    pts = np.random.default_rng(0).uniform([-1, 0, -0.5], [1, 2, 1.5], (20, 3))
    np.testing.assert_array_equal(G(pts), F(pts))


def test_load_rejects_foreign_and_corrupt_files(tmp_path, smooth3):
    _, F = smooth3
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(3))
    with pytest.raises(ValueError, match=r"not a ChebTucker file"):
        ct.ChebTucker.load(foreign)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match=r"not a readable .npz file"):
        ct.ChebTucker.load(junk)
    single = tmp_path / "single.npy"  # raised TypeError (an array has no context manager)
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match=r"single .npy array, not a ChebTucker"):
        ct.ChebTucker.load(single)
    good = tmp_path / "good.npz"
    F.save(good)
    with np.load(good) as fh:
        data = dict(fh)
    data.pop("factor_1")
    broken = tmp_path / "broken.npz"
    np.savez(broken, **data)
    with pytest.raises(ValueError, match=r"corrupt ChebTucker file"):
        ct.ChebTucker.load(broken)
    data = dict(np.load(good))
    data["factor_2"] = data["factor_2"][:, :1]
    np.savez(broken, **data)
    with pytest.raises(ValueError, match=r"corrupt ChebTucker file"):
        ct.ChebTucker.load(broken)
    for field in ("version", "ndim"):  # int(inf) raised OverflowError
        data = dict(np.load(good))
        data[field] = np.inf
        np.savez(broken, **data)
        with pytest.raises(ValueError, match=r"corrupt ChebTucker file"):
            ct.ChebTucker.load(broken)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("domain, exc, msg", [
    ([(1.0, -1.0)] * 3, ValueError, r"domain\[0\] = \(1.0, -1.0\) needs a < b"),
    ([(0.0, 0.0), (0, 1)], ValueError, r"domain\[0\].*needs a < b"),
    ([(0, 1, 2)] * 2, ValueError, r"domain\[0\] must have exactly 2 entries"),
    ((-1.0, 1.0), ValueError, r"one \(a, b\) pair per dimension"),
    ([], ValueError, r"domain is empty"),
    (None, TypeError, r"domain must be a sequence of \(a, b\) pairs"),
])
def test_bad_domain(domain, exc, msg):
    with pytest.raises(exc, match=msg):
        ct.ChebTucker.from_function(runge3, domain, degree=4)


def test_bad_degree():
    with pytest.raises(ValueError, match=r"degree must be >= 1, got 0"):
        ct.ChebTucker.from_function(runge3, BOX3, degree=0)
    with pytest.raises(ValueError, match=r"degree\[1\] must be >= 1"):
        ct.ChebTucker.from_function(runge3, BOX3, degree=(4, -1, 4))
    with pytest.raises(ValueError, match=r"degree has 2 entries but the domain has 3"):
        ct.ChebTucker.from_function(runge3, BOX3, degree=(4, 4))
    with pytest.raises(ValueError, match=r"1,000,300,030,001 points, about 36.4 TiB of memory.*lower the degree"):
        ct.ChebTucker.from_function(runge3, BOX3, degree=10000)
    with pytest.raises(TypeError, match=r"degree must be an int"):
        ct.ChebTucker.from_function(runge3, BOX3, degree=4.5)


def test_bad_function_output():
    with pytest.raises(ValueError, match=r"f returned shape \(5, 5, 5, 3\).*must return shape \(5, 5, 5\)"):
        ct.ChebTucker.from_function(lambda x: x, BOX3, degree=4)
    with pytest.raises(ValueError, match=r"f returned NaN at the point \(0\.0, 0\.0, 0\.0\)"):
        with np.errstate(invalid="ignore"):
            ct.ChebTucker.from_function(lambda x: np.sum(x, axis=-1) / np.sum(x * x, axis=-1), BOX3, degree=4)
    msg = r"f returned Inf at the point \(0\.0, 0\.0, 0\.0\) \(grid index \(2, 2, 2\)\)"
    with pytest.raises(ValueError, match=msg):
        with np.errstate(divide="ignore"):
            ct.ChebTucker.from_function(lambda x: 1.0 / np.sum(x * x, axis=-1), BOX3, degree=4)
    with pytest.raises(TypeError, match=r"f must be callable"):
        ct.ChebTucker.from_function(3.0, BOX3, degree=4)


def test_points_outside_box(smooth3):
    _, F = smooth3
    pts = np.array([[0.0, 1.0, 0.0], [1.5, 1.0, 0.0]])
    with pytest.raises(ValueError, match=r"points\[1\] = \(1.5, 1.0, 0.0\) lies outside the box.*extrapolate=True"):
        F(pts)
    with pytest.raises(ValueError, match=r"outside the box"):
        F.gradient(pts)
    v = F(pts, extrapolate=True)
    assert np.all(np.isfinite(v))
    with pytest.raises(ValueError, match=r"points must have shape \(n, 3\)"):
        F(np.zeros((4, 2)))


def test_bad_cp_input():
    g = np.linspace(-1, 1, 11)
    a = np.ones((11, 2))
    with pytest.raises(ValueError, match=r"factors\[1\] has 3 columns but weights has 2 entries"):
        ct.ChebTucker.from_cp(np.ones(2), [a, np.ones((11, 3)), a], g)
    with pytest.raises(ValueError, match=r"factors\[2\] has 10 rows but the grid of mode 2 has 11 points"):
        ct.ChebTucker.from_cp(np.ones(2), [a, a, np.ones((10, 2))], g)
    with pytest.raises(ValueError, match=r"factors\[0\] must be a matrix"):
        ct.ChebTucker.from_cp(np.ones(2), [np.ones(11), a, a], g)
    with pytest.raises(ValueError, match=r"strictly increasing"):
        ct.ChebTucker.from_cp(np.ones(2), [a, a, a], g[::-1])
    with pytest.raises(ValueError, match=r"weights must be a non-empty 1-D array"):
        ct.ChebTucker.from_cp(np.ones((2, 2)), [a, a, a], g)
    with pytest.raises(ValueError, match=r"domain has 2 pairs but there are 3 factors"):
        ct.ChebTucker.from_cp(np.ones(2), [a, a, a], g, [(-1, 1)] * 2)


def test_bad_values_and_method():
    with pytest.raises(ValueError, match=r"values must have 3 dimensions"):
        ct.ChebTucker.from_values(np.ones((4, 4)), BOX3)
    bad = np.ones((4, 4, 4))
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"values contains NaN or Inf"):
        ct.ChebTucker.from_values(bad, BOX3)
    with pytest.raises(ValueError, match=r"method must be one of"):
        ct.ChebTucker.from_values(np.ones((4, 4, 4)), BOX3, method="svd")
    with pytest.raises(ValueError, match=r"rtol must lie in the open interval"):
        ct.ChebTucker.from_values(np.ones((4, 4, 4)), BOX3, rtol=2.0)


def test_low_precision_points_on_boxes_beyond_their_range():
    # the box bounds were cast to the points' dtype: 1e5 overflows float16 and
    # 1e39 float32, and the map to [-1, 1] gave NaN at points inside the box
    for hi, scale, dtype in ((1e5, 1e4, np.float16), (1e39, 1e38, np.float32)):
        F = ct.ChebTucker.from_function(lambda x, s=scale: x[..., 0] / s + 0 * x[..., 1], [(0, hi), (0, 1)],
                                        degree=2)
        p = np.array([[scale, 0.5]])
        ref = F(p)
        assert ref[0] == pytest.approx(1.0, rel=1e-12)
        got = F(p.astype(dtype))
        assert np.all(np.isfinite(got))
        assert float(got[0]) == pytest.approx(1.0, rel=10 * float(np.finfo(dtype).eps))
        if dtype == np.float32:
            g = F.gradient(p.astype(dtype))
            assert np.all(np.isfinite(g)) and float(g[0, 0]) == pytest.approx(1.0 / scale, rel=1e-5)


# --------------------------------------------------------------------------- review: boxes, dtypes, adaptivity
def test_function_on_box_near_float64_limit():
    # chebpts gave inf grid points there: from_function sampled f at inf and
    # built a wrong approximant (0 instead of 0.259) without a word
    def f(x):
        return np.exp(-x[..., 0] / 1e308)

    F = ct.ChebTucker.from_function(f, [(1e308, 1.7e308)], degree=12)
    p = 1e308 * np.array([[1.0], [1.2], [1.35], [1.7]])
    np.testing.assert_allclose(F(p), np.exp(-p[:, 0] / 1e308), rtol=1e-12)
    T = F.on_grid(p[:, 0])
    np.testing.assert_allclose(T.full(), np.exp(-p[:, 0] / 1e308), rtol=1e-12)


def test_on_grid_float32_axes_far_from_zero():
    # chebvander cast the bounds to float32: NaN on (1e38, 3e38)
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] / 1e38 + x[..., 1], [(1e38, 3e38), (0, 1)], degree=2)
    ax0 = np.array([1.5e38, 2e38], dtype=np.float32)
    ax1 = np.array([0.25, 0.5], dtype=np.float32)
    got = F.on_grid(ax0, ax1).full()
    ref = ax0.astype(np.float64)[:, None] / 1e38 + ax1.astype(np.float64)[None, :]  # closed form
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_float32_points_on_the_box_boundary():
    # float32(0.1) lies 1.5e-9 above 0.1, beyond the slack 1e-12 (b - a): a
    # float32 point on the boundary was rejected as outside the box
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] + x[..., 1], [(0, 0.1), (0, 1)], degree=2)
    p32 = np.array([[0.1, 0.5], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(F(p32), [0.6, 1.0], rtol=1e-6)
    np.testing.assert_allclose(F.gradient(p32), [[1.0, 1.0]] * 2, rtol=1e-5)
    ax = np.linspace(0, 0.1, 3, dtype=np.float32)
    np.testing.assert_allclose(F.on_grid(ax, np.array([0.5])).full().ravel(), ax.astype(np.float64) + 0.5,
                               rtol=1e-6)
    # points clearly outside are still refused, and float64 keeps its tight slack
    with pytest.raises(ValueError, match=r"outside the box"):
        F(np.array([[0.1001, 0.5]], dtype=np.float32))
    with pytest.raises(ValueError, match=r"axes\[0\] leaves the interval"):
        F.on_grid(np.array([0.1001], dtype=np.float32), np.array([0.5]))
    with pytest.raises(ValueError, match=r"outside the box"):
        F(np.array([[0.1 + 1e-9, 0.5]]))


def test_from_coefficients_compresses_float32_in_float64():
    # float32 coefficients were compressed in float32: 1.45e-7 error at rtol=1e-10
    g = [0.5 ** np.arange(12), (-0.3) ** np.arange(12)]
    C = sum(np.einsum("i,j,k->ijk", v, v, v) for v in g)
    C32 = C.astype(np.float32)
    ref = C32.astype(np.float64)  # the coefficients given
    F = ct.ChebTucker.from_coefficients(C32, BOX3, rtol=1e-10)
    assert F.core.dtype == np.float64
    err = np.linalg.norm(F.coefficients() - ref) / np.linalg.norm(ref)
    assert err <= 1e-10
    with pytest.raises(TypeError, match=r"coeffs must be real"):
        ct.ChebTucker.from_coefficients(C32.astype(np.complex64), BOX3)
    with pytest.raises(TypeError, match=r"coeffs must be a real array, got dtype <U1"):
        ct.ChebTucker.from_coefficients(np.array([["a", "b"], ["c", "d"]]), [(0, 1)] * 2)


def test_adaptive_degree_is_not_fooled_by_aliasing():
    # T_20 sampled at 17 Chebyshev points is T_12 there, with a decayed tail:
    # degree 13 and an O(1) error, without a warning
    def t20(x):
        return np.cos(20 * np.arccos(np.clip(x[..., 0], -1, 1)))

    xs = np.linspace(-1, 1, 2001)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F = ct.ChebTucker.from_function(t20, [(-1, 1)], rtol=1e-8)
    assert F.degrees[0] >= 20
    expect = np.zeros(F.degrees[0] + 1)
    expect[20] = 1.0  # T_20's coefficients (numpy.polynomial reference below)
    np.testing.assert_allclose(F.coefficients(), expect, atol=1e-12)
    np.testing.assert_allclose(F(xs), npc.chebval(xs[:, 0], expect), atol=1e-10)
    # aliased twice (T_40 looks like T_8 at 17 points, like T_24 at 33), on
    # a box that is not [-1, 1], in one of two modes
    def g(x):
        t = np.clip(x[..., 0] - 2.0, -1, 1)
        return np.cos(40 * np.arccos(t)) * np.exp(x[..., 1])

    G = ct.ChebTucker.from_function(g, [(1, 3), (0, 1)], rtol=1e-8)
    pts = np.random.default_rng(3).uniform([1, 0], [3, 1], (2000, 2))
    exact = npc.chebval(pts[:, 0] - 2.0, np.eye(41)[40]) * np.exp(pts[:, 1])
    np.testing.assert_allclose(G(pts), exact, atol=1e-7 * np.e)
    assert G.degrees[1] <= 16  # the smooth mode is chopped back
    # zero at every Chebyshev point of the first grid: (1 - x^2) U_15(x)
    def h(x):
        th = np.arccos(np.clip(x[..., 0], -1, 1))
        return np.sin(16 * th) * np.sin(th)

    H = ct.ChebTucker.from_function(h, [(-1, 1)], rtol=1e-10)
    np.testing.assert_allclose(H(xs), h(xs), atol=1e-12)


def test_rank_validated_for_one_dimensional_values():
    # the 1-D branch of _compress skipped check_rank: both were accepted
    with pytest.raises(ValueError, match=r"rank\[0\] must be positive, got -3"):
        ct.ChebTucker.from_values(np.ones(4), [(0, 1)], rank=-3)
    with pytest.raises(TypeError, match=r"rank must be an int or a sequence of ints, got str"):
        ct.ChebTucker.from_values(np.ones(4), [(0, 1)], rank="abc")
    with pytest.raises(ValueError, match=r"rank\[0\] = 3 exceeds 1"):
        ct.ChebTucker.from_values(np.ones(4), [(0, 1)], rank=3)
    F = ct.ChebTucker.from_values(cheb.chebpts(4, (0, 1)) ** 2, [(0, 1)], rank=1)
    np.testing.assert_allclose(F(np.array([0.3, 0.8])), [0.09, 0.64], atol=1e-14)


def test_from_function_rank_without_rtol():
    # rtol=None raised TypeError in from_function, while from_values and
    # from_coefficients take rank alone
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] + x[..., 1] ** 2, [(0, 1)] * 2, degree=4,
                                    rank=2, rtol=None)
    assert F.ranks == (2, 2)
    pts = np.random.default_rng(0).uniform(0, 1, (50, 2))
    np.testing.assert_allclose(F(pts), pts[:, 0] + pts[:, 1] ** 2, atol=1e-13)
    with pytest.raises(ValueError, match=r"rtol=None needs a fixed degree"):
        ct.ChebTucker.from_function(lambda x: x[..., 0], [(0, 1)], rank=1, rtol=None)
    with pytest.raises(ValueError, match=r"give rtol or rank"):
        ct.ChebTucker.from_function(lambda x: x[..., 0], [(0, 1)], degree=3, rtol=None)


def test_non_finite_scaling_and_arrays_are_refused(smooth3):
    # F * inf, F / 0 and a NaN core gave NaN approximants silently
    _, F = smooth3
    for op, msg in ((lambda: F * np.inf, r"cannot scale a ChebTucker by inf"),
                    (lambda: float("nan") * F, r"cannot scale a ChebTucker by nan"),
                    (lambda: F / 0, r"cannot divide a ChebTucker by zero"),
                    (lambda: F / -np.inf, r"cannot scale a ChebTucker by -inf"),
                    (lambda: F * 1e308 * 1e10, r"overflows float64")):
        with pytest.raises(ValueError, match=msg):
            op()
    with pytest.raises(ValueError, match=r"core contains NaN or Inf"):
        ct.ChebTucker(np.full((1, 1), np.nan), [np.ones((2, 1))] * 2, [(0, 1)] * 2)
    with pytest.raises(ValueError, match=r"factors\[1\] contains NaN or Inf"):
        ct.ChebTucker(np.ones((1, 1)), [np.ones((2, 1)), np.array([[1.0], [np.inf]])], [(0, 1)] * 2)
    pts = np.array([[0.0, 1.0, 0.5]])
    np.testing.assert_allclose((F * 1e300)(pts), 1e300 * F(pts), rtol=1e-15)


def test_inner_and_norm_against_gauss_legendre_quadrature():
    # formats are values: the L2 inner product and norm over the box, exact
    # for the polynomials, against a tensor Gauss-Legendre rule exact at
    # their degrees (no shared code with the closed form)
    dom = [(-0.5, 1.5), (0.0, 3.0), (2.0, 2.5)]
    F = ct.ChebTucker.from_function(lambda x: np.exp(-x[..., 0] * x[..., 1]) + x[..., 2], dom, degree=(9, 12, 5),
                                    rtol=1e-12)
    G = ct.ChebTucker.from_function(lambda x: np.cos(x[..., 0] + x[..., 1] ** 2) * x[..., 2], dom,
                                    degree=(7, 15, 4), rtol=1e-12)
    axes, weights = [], []
    for (a, b), m in zip(dom, (9, 16, 6)):
        t, w = np.polynomial.legendre.leggauss(m + 1)
        axes.append(0.5 * (a + b) + 0.5 * (b - a) * t)
        weights.append(0.5 * (b - a) * w)
    Wt = np.einsum("i,j,k->ijk", *weights)
    Fv, Gv = F.on_grid(*axes).full(), G.on_grid(*axes).full()
    ref = float(np.sum(Wt * Fv * Gv))
    assert F.inner(G) == pytest.approx(ref, rel=1e-12)
    assert G.inner(F) == pytest.approx(ref, rel=1e-12)
    assert F.norm() == pytest.approx(np.sqrt(np.sum(Wt * Fv**2)), rel=1e-12)
    assert F.norm() ** 2 == pytest.approx(F.inner(F), rel=1e-12)
    # 1-D, and scale: the norm of a tiny function neither underflows nor loses digits
    H = ct.ChebTucker.from_function(lambda x: x[..., 0] ** 3, [(0.0, 2.0)], degree=3)
    assert H.norm() == pytest.approx(np.sqrt(2.0**7 / 7), rel=1e-13)
    assert (H * 1e-300).norm() == pytest.approx(1e-300 * np.sqrt(2.0**7 / 7), rel=1e-13)
    with pytest.raises(ValueError, match="the boxes differ"):
        H.inner(ct.ChebTucker.from_function(lambda x: x[..., 0], [(0.0, 1.0)], degree=1))
    with pytest.raises(TypeError, match="other must be a ChebTucker"):
        H.inner(np.ones(3))


# --------------------------------------------------------------------------- scale, ranks, input types
@pytest.mark.parametrize("s", [1e-170, 1e170])
def test_one_dimensional_approximant_at_any_scale(s):
    # the 1-D compression normalised by sqrt(sum C^2): 0 below 1e-154 (the
    # zero approximant), inf above 1e154 ("core contains NaN or Inf")
    x = np.array([[0.0], [0.3], [0.77], [1.0]])
    F1 = ct.ChebTucker.from_function(lambda X: np.exp(X[..., 0]), [(0.0, 1.0)], degree=12)
    Fs = ct.ChebTucker.from_function(lambda X: s * np.exp(X[..., 0]), [(0.0, 1.0)], degree=12)
    np.testing.assert_allclose(Fs(x), s * F1(x), rtol=1e-12)
    v = np.cos(3 * cheb.chebpts(9, (-1.0, 2.0)))
    G1 = ct.ChebTucker.from_values(v, [(-1.0, 2.0)])
    Gs = ct.ChebTucker.from_values(s * v, [(-1.0, 2.0)])
    y = np.linspace(-1, 2, 7)
    np.testing.assert_allclose(Gs(y), s * G1(y), rtol=1e-12)


@pytest.mark.parametrize("s", [1e-200, 1e200])
def test_recompress_at_any_scale(smooth3, s):
    # the rounding floor's norms overflowed (underflowed): the whole
    # approximant was taken for rounding and recompress returned 0
    _, F = smooth3
    pts = np.random.default_rng(3).uniform([-1, 0, -0.5], [1, 2, 1.5], (20, 3))
    Fs = ct.ChebTucker(F.core * s, F.factors, F.domain)
    for G, Gs in ((F, Fs), (F + F, Fs + Fs)):
        R, Rs = G.recompress(1e-10), Gs.recompress(1e-10)
        assert Rs.ranks == R.ranks
        np.testing.assert_allclose(Rs(pts), s * R(pts), rtol=1e-12)
    # the scale in the factors instead of the core
    Ff = ct.ChebTucker(F.core * s, [A / s**(1 / 3) for A in F.factors], F.domain)
    np.testing.assert_allclose(Ff.recompress(1e-10)(pts), F.recompress(1e-10)(pts), rtol=1e-12)


@pytest.mark.parametrize("s", [1e100, 1e150, 1e-100])
def test_from_cp_with_large_factors_and_small_weights(s):
    # only the weights were rescaled: factor columns near 1e100 beside weights
    # near 1e-200 overflowed the squared term sizes (a wrong rank-1 result)
    g = np.linspace(-1, 1, 201)
    a = np.stack([np.exp(-g**2), np.cos(3 * g)], 1)
    w = np.array([1.0, -0.5])
    F1 = ct.ChebTucker.from_cp(w, [a, a], g, degree=30, rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Fs = ct.ChebTucker.from_cp((w / s) / s, [a * s, a * s], g, degree=30, rtol=1e-10)
    X = np.array([[0.3, -0.2], [-1.0, 1.0], [0.9, 0.1]])
    assert Fs.ranks == F1.ranks
    np.testing.assert_allclose(Fs(X), F1(X), rtol=1e-12)


def test_from_cp_with_factor_columns_beyond_the_square_root_of_the_float64_range():
    # column norms that overflow (1e170) or underflow to 0 (1e-170) in one
    # mode, compensated in the other: a wrong rank-1 result
    g = np.linspace(-1, 1, 201)
    a = np.stack([np.exp(-g**2), np.cos(3 * g)], 1)
    w = np.array([1.0, -0.5])
    F1 = ct.ChebTucker.from_cp(w, [a, a], g, degree=30, rtol=1e-10)
    X = np.array([[0.3, -0.2], [-1.0, 1.0], [0.9, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Fs = ct.ChebTucker.from_cp(w, [a * 1e-170, a * 1e170], g, degree=30, rtol=1e-10)
    assert Fs.ranks == F1.ranks
    np.testing.assert_allclose(Fs(X), F1(X), rtol=1e-12)


def test_on_grid_rejects_non_finite_axes():
    # min and max compare False with NaN: the range check let it through and
    # the grid held NaN values
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] + x[..., 1], [(-1, 1)] * 2, degree=2)
    for bad in (np.array([np.nan, 0.5]), [0.5, np.inf]):
        with pytest.raises(ValueError, match=r"axes\[1\] contains NaN or Inf"):
            F.on_grid(np.array([0.0]), bad)


def test_on_grid_rejects_non_numeric_axes():
    # strings reached a raw UFuncTypeError, booleans were read as 0 and 1
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] + x[..., 1], [(-1, 1)] * 2, degree=2)
    for bad in (np.array(["0.5"]), np.array([True, False]), np.array([0.5 + 1j])):
        with pytest.raises(TypeError, match=r"axes\[0\] must be a 1-D array of real numbers"):
            F.on_grid(bad, np.array([0.0]))
    np.testing.assert_allclose(F.on_grid([0, 1], np.array([0.5])).full(), [[0.5], [1.5]])


def test_rank_zero_core_is_refused():
    with pytest.raises(ValueError, match=r"factors\[0\] has 0 columns and core has size 0 .* rank must be >= 1"):
        ct.ChebTucker(np.zeros((0, 1)), [np.zeros((3, 0)), np.zeros((3, 1))], [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match=r"factors\[1\] has 0 columns"):
        ct.ChebTucker(np.zeros((1, 0)), [np.zeros((3, 1)), np.zeros((3, 0))], [(0, 1), (0, 1)])


def _corrupt_members(F):
    return {  # the float64 cast dropped an imaginary part, parsed strings, read bools as 0 and 1
        "complex core": (dict(core=F.core + 5j), r"'core' has dtype complex128"),
        "string core": (dict(core=F.core.astype(str)), r"'core' has dtype <U"),
        "bool factor": (dict(factor_0=F.factors[0].astype(bool)), r"'factor_0' has dtype bool"),
        "string domain": (dict(domain=np.array(F.domain).astype(str)), r"'domain' has dtype <U"),
        "flat domain": (dict(domain=np.array(F.domain).ravel()), r"'domain' has shape \(4,\)"),
        "1-D factor": (dict(factor_1=F.factors[1].ravel()), r"'factor_1' has shape"),
        "float ndim": (dict(ndim=np.array(2.0)), r"ndim"),
        "bool ndim": (dict(ndim=np.array(True)), r"dtype bool"),
        "negative version": (dict(version=np.array(-7)), r"format version -7"),
        "float version": (dict(version=np.array(1.9)), r"version array\(1.9\)"),
    }


@pytest.mark.parametrize("case", list(_corrupt_members(
    ct.ChebTucker(np.ones((1, 1)), [np.ones((2, 1))] * 2, [(0, 1)] * 2))))
def test_load_rejects_non_real_members_and_bad_versions(tmp_path, case):
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] * x[..., 1], [(0, 1), (0, 1)], degree=2)
    good = tmp_path / "f.npz"
    F.save(good)
    repl, msg = _corrupt_members(F)[case]
    data = dict(np.load(good))
    data.update(repl)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        with pytest.raises(ValueError, match=r"corrupt ChebTucker file: .*" + msg):
            ct.ChebTucker.load(bad)


def test_load_reads_integer_members_and_refuses_newer_versions(tmp_path):
    F = ct.ChebTucker.from_function(lambda x: x[..., 0] * x[..., 1], [(0, 1), (0, 1)], degree=2)
    good = tmp_path / "f.npz"
    F.save(good)
    data = dict(np.load(good))
    data["version"] = np.array(2)
    np.savez(tmp_path / "newer.npz", **data)
    with pytest.raises(ValueError, match=r"format version 2; this tensorapprox reads <= 1"):
        ct.ChebTucker.load(tmp_path / "newer.npz")
    # integer arrays hold real numbers: read
    data = dict(np.load(good))
    data["core"] = np.ones((1, 1), dtype=np.int64)
    np.savez(tmp_path / "int.npz", **data)
    assert ct.ChebTucker.load(tmp_path / "int.npz").core.dtype == np.float64


def test_save_load_without_npz_suffix(tmp_path, smooth3):
    # numpy appends .npz on save: load("model") did not find "model.npz"
    _, F = smooth3
    p = str(tmp_path / "model")
    F.save(p)
    G = ct.ChebTucker.load(p)
    assert G.domain == F.domain
    np.testing.assert_array_equal(G.core, F.core)
    for A, B in zip(G.factors, F.factors):
        np.testing.assert_array_equal(A, B)


def _lin2():
    return ct.ChebTucker.from_function(lambda x: x[..., 0] + 10 * x[..., 1], [(-1, 1)] * 2, degree=2)


_ONES = [np.ones((3, 1))] * 2
_NON_NUMERIC_CASES = {  # strings were parsed as floats, booleans read as 0 and 1, "no" was truthy
    "string points": (lambda F: F(np.array([["0.5", "0.25"]])), r"points must be an \(n, 2\) array of real"),
    "string list points": (lambda F: F([["0.5", "0.25"]]), r"points must be an \(n, 2\) array of real"),
    "bool points": (lambda F: F(np.array([[True, False]])), r"points must be an \(n, 2\) array of real"),
    "bool gradient points": (lambda F: F.gradient(np.array([[True, False]])), r"points must be an \(n, 2\)"),
    "extrapolate 'no'": (lambda F: F(np.array([[3.0, 0.0]]), extrapolate="no"),
                         r"extrapolate must be True or False, got str"),
    "gradient extrapolate 'no'": (lambda F: F.gradient(np.array([[3.0, 0.0]]), extrapolate="no"),
                                  r"extrapolate must be True or False, got str"),
    "string values": (lambda F: ct.ChebTucker.from_values(np.array(["1", "2"]), [(0, 1)]),
                      r"values must be an array of real numbers"),
    "string list coeffs": (lambda F: ct.ChebTucker.from_coefficients([["1", "0"], ["0", "1"]], [(0, 1)] * 2),
                           r"coeffs must be a real array, got dtype <U1"),
    "bool coeffs": (lambda F: ct.ChebTucker.from_coefficients(np.eye(2, dtype=bool), [(0, 1)] * 2),
                    r"coeffs must be a real array, got dtype bool"),
    "f returns strings": (lambda F: ct.ChebTucker.from_function(lambda x: np.full(x.shape[:-1], "2.5"),
                                                                [(0, 1)], degree=3),
                          r"f must return real numbers, got dtype <U"),
    "f returns bools": (lambda F: ct.ChebTucker.from_function(lambda x: x[..., 0] > 0.5, [(0, 1)], degree=3),
                        r"f must return real numbers, got dtype bool .*astype\(float\)"),
    "string weights": (lambda F: ct.ChebTucker.from_cp(np.array(["2"]), _ONES, np.arange(3.0), degree=3),
                       r"weights must be a 1-D array of real numbers"),
    "string grid": (lambda F: ct.ChebTucker.from_cp(np.array([2.0]), _ONES, np.array(["0", "1", "2"]), degree=3),
                    r"grid must be an array of real numbers"),
    "recompress 'no'": (lambda F: ct.ChebTucker.from_cp(np.array([2.0]), _ONES, np.arange(3.0), degree=3,
                                                        recompress="no"),
                        r"recompress must be True or False, got str"),
}


@pytest.mark.parametrize("case", list(_NON_NUMERIC_CASES))
def test_non_numeric_input_and_flags_are_refused(case):
    call, msg = _NON_NUMERIC_CASES[case]
    with pytest.raises(TypeError, match=msg):
        call(_lin2())


def test_numeric_input_of_other_dtypes_is_accepted():
    F = _lin2()
    np.testing.assert_allclose(F(np.array([[3.0, 0.0]]), extrapolate=np.True_), [3.0])
    np.testing.assert_allclose(F([[0, 1]]), [10.0])  # integer points are numbers
    H = ct.ChebTucker.from_cp(np.array([2]), _ONES, np.arange(3), degree=3)
    np.testing.assert_allclose(H(np.array([[0.5, 1.5]])), [2.0])


def test_from_cp_one_point_grid_without_domain_names_the_grid():
    # the default box is the grid's extent: a single point blamed domain[0],
    # which the caller did not pass
    ones = [np.ones((1, 1))] * 2
    with pytest.raises(ValueError, match=r"grid of mode 0 has a single point.*pass domain"):
        ct.ChebTucker.from_cp(np.ones(1), ones, np.array([0.0]), degree=3)
    F = ct.ChebTucker.from_cp(np.ones(1), ones, np.array([0.0]), domain=[(-1, 1)] * 2, degree=3)
    np.testing.assert_allclose(F(np.array([[0.3, -0.7]])), [1.0])
