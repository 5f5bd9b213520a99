"""State-space Matérn GPs: Lyapunov identity, transitions, Kalman/RTS == dense GP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorapprox._array import to_numpy
from tensorapprox._kernels.kalman import kalman_smoother_batched, kalman_smoother_reference
from tensorapprox.bayes import MATERN_KERNELS, kalman_smoother, matern_state_space

KERNELS = list(MATERN_KERNELS)


def matern_kernel(kernel, r, lengthscale, variance):
    """Closed-form Matérn covariance, written independently of the SDE form."""
    r = np.abs(r)
    if kernel == "matern12":
        return variance * np.exp(-r / lengthscale)
    if kernel == "matern32":
        a = math.sqrt(3.0) * r / lengthscale
        return variance * (1.0 + a) * np.exp(-a)
    a = math.sqrt(5.0) * r / lengthscale
    return variance * (1.0 + a + a * a / 3.0) * np.exp(-a)


def dense_posterior(kernel, ell, var, t, precision, information):
    """Posterior of R independent GPs at sites t given site-wise Gaussian factors.

    Prior: f_r ~ GP(0, k) independent; likelihood exp(-f_i' L_i f_i / 2 + eta_i' f_i).
    Returns the mean (n, R) and the full covariance (n*R, n*R) (site-major).
    """
    n, R = information.shape
    Kt = matern_kernel(kernel, t[:, None] - t[None, :], ell, var)
    K = np.kron(Kt, np.eye(R))
    Lam = scipy.linalg.block_diag(*precision)
    # Sigma = (K^{-1} + Lam)^{-1} = K - K (I + Lam K)^{-1} Lam K  (no K^{-1})
    Sigma = K - K @ np.linalg.solve(np.eye(n * R) + Lam @ K, Lam @ K)
    Sigma = 0.5 * (Sigma + Sigma.T)
    return (Sigma @ information.reshape(-1)).reshape(n, R), Sigma


def random_problem(rng, n, R, coupled=True):
    t = np.sort(rng.uniform(0.0, 3.0, n))
    t = t + np.arange(n) * 1e-2  # keep gaps away from 0 for a well-posed dense reference
    if coupled:
        B = rng.standard_normal((n, R, R))
        precision = 0.7 * B @ np.swapaxes(B, 1, 2)
    else:
        precision = np.zeros((n, R, R))
        idx = np.arange(R)
        precision[:, idx, idx] = rng.uniform(0.5, 5.0, (n, R))
    # some sites without data: zero precision and information
    precision[1] = 0.0
    information = rng.standard_normal((n, R))
    information[1] = 0.0
    return t, precision, information


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("ell,var", [(0.3, 1.0), (1.7, 0.4), (0.05, 3.0)])
def test_lyapunov_identity(kernel, ell, var):
    m = matern_state_space(kernel, ell, var)
    lyap = m.F @ m.P_inf + m.P_inf @ m.F.T + m.q * m.L @ m.L.T
    assert np.max(np.abs(lyap)) <= 1e-10 * max(1.0, np.max(np.abs(m.q * m.L @ m.L.T)))
    assert np.allclose(m.P_inf, m.P_inf.T)
    assert np.all(np.linalg.eigvalsh(m.P_inf) > 0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_covariance_and_transition_closed_form(kernel):
    ell, var = 0.8, 1.6
    m = matern_state_space(kernel, ell, var)
    tau = np.array([0.0, 0.01, 0.3, 1.0, 4.0])
    np.testing.assert_allclose(m.covariance(tau), matern_kernel(kernel, tau, ell, var), rtol=1e-12, atol=1e-14)
    A, Q = m.transition(tau)
    d = m.state_dim
    for i, dt in enumerate(tau):
        np.testing.assert_allclose(A[i], scipy.linalg.expm(m.F * dt), rtol=1e-10, atol=1e-12)
        # Q(dt) = int_0^dt expm(F s) L q L' expm(F s)' ds, by adaptive quadrature
        LqL = m.q * m.L @ m.L.T
        Qint, _ = scipy.integrate.quad_vec(
            lambda s: scipy.linalg.expm(m.F * s) @ LqL @ scipy.linalg.expm(m.F * s).T, 0.0, dt,
            epsabs=1e-13, epsrel=1e-12)
        np.testing.assert_allclose(Q[i], Qint, rtol=1e-8, atol=1e-9 * np.max(np.abs(m.P_inf)))
    np.testing.assert_array_equal(A[0], np.eye(d))
    np.testing.assert_array_equal(Q[0], np.zeros((d, d)))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("R,coupled", [(1, False), (3, False), (3, True)])
def test_smoother_equals_dense_gp(kernel, R, coupled):
    rng = np.random.default_rng(hash((kernel, R, coupled)) % 2**32)
    n = 25
    ell, var = 0.6, 1.3
    t, prec, info = random_problem(rng, n, R, coupled)
    res = kalman_smoother(matern_state_space(kernel, ell, var), t, prec, info)
    mean, cov = res.marginals()
    dmean, dSigma = dense_posterior(kernel, ell, var, t, prec, info)
    dcov = np.stack([dSigma[i * R:(i + 1) * R, i * R:(i + 1) * R] for i in range(n)])
    np.testing.assert_allclose(mean, dmean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(cov, dcov, rtol=0, atol=1e-8)


@pytest.mark.parametrize("kernel", KERNELS)
def test_prediction_equals_dense_conditional(kernel):
    rng = np.random.default_rng(7)
    n, R = 15, 2
    ell, var = 0.5, 0.9
    t, prec, info = random_problem(rng, n, R, coupled=True)
    res = kalman_smoother(matern_state_space(kernel, ell, var), t, prec, info)
    # inside, exactly on sites, left of the range (near and far), right of the range
    xq = np.concatenate([
        0.5 * (t[:-1] + t[1:])[::3], t[[0, 4, n - 1]], [t[0] - 0.05, t[0] - 0.7, t[0] - 30.0],
        [t[-1] + 0.02, t[-1] + 1.5, t[-1] + 40.0],
    ])
    mean, cov = res.predict(xq)
    # dense: joint prior over sites and queries, condition on the site factors
    allx = np.concatenate([t, xq])
    m_all = allx.shape[0]
    Kt = matern_kernel(kernel, allx[:, None] - allx[None, :], ell, var)
    K = np.kron(Kt, np.eye(R))
    Lam = np.zeros((m_all * R, m_all * R))
    Lam[: n * R, : n * R] = scipy.linalg.block_diag(*prec)
    eta = np.zeros(m_all * R)
    eta[: n * R] = info.reshape(-1)
    Sigma = K - K @ np.linalg.solve(np.eye(m_all * R) + Lam @ K, Lam @ K)
    dmean = (Sigma @ eta).reshape(m_all, R)[n:]
    dcov = np.stack([Sigma[i * R:(i + 1) * R, i * R:(i + 1) * R] for i in range(n, m_all)])
    np.testing.assert_allclose(mean, dmean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(cov, 0.5 * (dcov + np.swapaxes(dcov, 1, 2)), rtol=0, atol=1e-8)
    # far from the data the posterior returns to the prior, never a negative variance
    assert np.all(np.diagonal(cov, axis1=1, axis2=2) >= 0)
    np.testing.assert_allclose(np.diagonal(cov[-4]), var, rtol=1e-6)
    np.testing.assert_allclose(np.diagonal(cov[-1]), var, rtol=1e-6)


@pytest.mark.parametrize("kernel", KERNELS)
def test_numba_kernel_matches_reference(kernel):
    rng = np.random.default_rng(3)
    n, R = 20, 3
    t, prec, info = random_problem(rng, n, R, coupled=True)
    m = matern_state_space(kernel, 0.4, 1.1)
    A, Q = m.transition(np.concatenate([[0.0], np.diff(t)]))
    ref = kalman_smoother_reference(A, Q, m.P_inf, prec, info)
    fast = kalman_smoother_batched(A, Q, m.P_inf, prec, info)
    for a, b in zip(ref, fast):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)


def test_reference_is_array_api_generic():
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(4)
    t, prec, info = random_problem(rng, 8, 2, coupled=True)
    m = matern_state_space("matern32", 0.5, 1.0)
    A, Q = m.transition(np.concatenate([[0.0], np.diff(t)]))
    ref = kalman_smoother_reference(A, Q, m.P_inf, prec, info)
    strict = kalman_smoother_batched(*(xps.asarray(a) for a in (A, Q, m.P_inf, prec, info)))
    for a, b in zip(ref, strict):
        assert type(b).__module__.startswith("array_api_strict")
        np.testing.assert_allclose(to_numpy(b), a,
                                   rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    kernel=st.sampled_from(KERNELS),
    n=st.integers(2, 12),
    R=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
    ell=st.floats(0.2, 3.0),
)
def test_smoother_equals_dense_gp_property(kernel, n, R, seed, ell):
    rng = np.random.default_rng(seed)
    t, prec, info = random_problem(rng, n, R, coupled=True)
    res = kalman_smoother(matern_state_space(kernel, ell, 1.0), t, prec, info)
    mean, cov = res.marginals()
    dmean, dSigma = dense_posterior(kernel, ell, 1.0, t, prec, info)
    dcov = np.stack([dSigma[i * R:(i + 1) * R, i * R:(i + 1) * R] for i in range(n)])
    np.testing.assert_allclose(mean, dmean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(cov, dcov, rtol=0, atol=1e-8)


def test_single_site_and_zero_gap_transition():
    m = matern_state_space("matern52", 0.3, 2.0)
    res = kalman_smoother(m, [0.5], np.full((1, 1, 1), 4.0), np.array([[2.0]]))
    mean, cov = res.marginals()
    # scalar conjugate update: var = 1/(1/2 + 4), mean = var * 2
    np.testing.assert_allclose(cov[0, 0, 0], 1.0 / (0.5 + 4.0), rtol=1e-12)
    np.testing.assert_allclose(mean[0, 0], 2.0 / (0.5 + 4.0), rtol=1e-12)
    pm, pc = res.predict([0.5])
    np.testing.assert_allclose(pm, mean, rtol=1e-12)
    np.testing.assert_allclose(pc, cov, rtol=1e-12)


@pytest.mark.parametrize("kernel", MATERN_KERNELS)
def test_transition_across_huge_and_infinite_gaps(kernel):
    # delta^j overflowed for gaps of 1e200 and more, and inf * 0 gave NaN
    # transitions; far beyond the lengthscale the state forgets itself:
    # A = expm(F delta) -> 0 and Q -> P_inf
    m = matern_state_space(kernel, 0.7, 2.0)
    gaps = np.array([0.5, 30.0, 1e3, 1e100, 1e200, 1e300, np.inf])
    with np.errstate(over="raise", invalid="raise"):
        A, Q = m.transition(gaps)
    for g, Ag, Qg in zip(gaps, A, Q):
        ref = scipy.linalg.expm(m.F * g) if g < 1e4 else np.zeros_like(m.F)
        np.testing.assert_allclose(Ag, ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(Qg, m.P_inf - ref @ m.P_inf @ ref.T, rtol=1e-12, atol=1e-14)
    # a smoother over sites that far apart: each site is on its own
    res = kalman_smoother(m, [0.0, 1e250], np.full((2, 1, 1), 4.0), np.array([[2.0], [2.0]]))
    mean, cov = res.marginals()
    np.testing.assert_allclose(cov[:, 0, 0], 1.0 / (0.5 + 4.0), rtol=1e-12)
    np.testing.assert_allclose(mean[:, 0], 2.0 / (0.5 + 4.0), rtol=1e-12)


# ---------------------------------------------------------------- bad input
def test_unknown_kernel():
    with pytest.raises(ValueError, match="kernel must be one of 'matern12', 'matern32', 'matern52'"):
        matern_state_space("rbf")


@pytest.mark.parametrize("name", ["lengthscale", "variance"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_nonpositive_hyperparameters(name, value):
    with pytest.raises(ValueError, match=f"{name} must be > 0"):
        matern_state_space("matern32", **{name: value})


def test_nonfinite_hyperparameter():
    with pytest.raises(ValueError, match="lengthscale must be finite"):
        matern_state_space("matern32", lengthscale=float("nan"))


def test_smoother_rejects_unsorted_and_bad_shapes():
    m = matern_state_space("matern32")
    with pytest.raises(ValueError, match="sites must be strictly increasing"):
        kalman_smoother(m, [0.0, 0.0, 1.0], np.ones((3, 1, 1)), np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"precision must have shape \(n_sites, R, R\)"):
        kalman_smoother(m, [0.0, 1.0], np.ones((2, 1)), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"information must have shape \(2, 1\)"):
        kalman_smoother(m, [0.0, 1.0], np.ones((2, 1, 1)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="information contains NaN or Inf"):
        kalman_smoother(m, [0.0, 1.0], np.ones((2, 1, 1)), np.array([[1.0], [np.nan]]))


@pytest.mark.gpu
def test_cupy_array_code_matches_numpy():
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(9)
    t, prec, info = random_problem(rng, 12, 3, coupled=True)
    m = matern_state_space("matern52", 0.5, 1.0)
    A, Q = m.transition(np.concatenate([[0.0], np.diff(t)]))
    ref = kalman_smoother_batched(A, Q, m.P_inf, prec, info)
    dev = kalman_smoother_batched(*(cp.asarray(a) for a in (A, Q, m.P_inf, prec, info)))
    for a, b in zip(ref, dev):
        assert isinstance(b, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(b), a, rtol=1e-10, atol=1e-10)


def test_clear_errors_for_out_of_range_models_and_bad_precisions():
    # lengthscales whose inverse powers leave float64 raised OverflowError
    # (1e-80) or gave NaN covariances (1e160)
    for kernel, ell in (("matern52", 1e-80), ("matern32", 1e-160), ("matern52", 1e160)):
        with pytest.raises(ValueError, match="lengthscale .* is outside"):
            matern_state_space(kernel, ell)
    m = matern_state_space("matern52", 1e-30)  # still representable: fine
    assert np.all(np.isfinite(m.P_inf)) and m.q > 0
    # a negative precision reached the Numba solver: ZeroDivisionError
    m = matern_state_space("matern12")
    with pytest.raises(ValueError, match="positive semi-definite"):
        kalman_smoother(m, [0.0], -np.ones((1, 1, 1)), np.ones((1, 1)))
    with pytest.raises(ValueError, match="symmetric"):
        kalman_smoother(m, [0.0], np.array([[[1.0, 2.0], [0.0, 1.0]]]), np.ones((1, 2)))
    # the tolerances are per site: scaled by the largest precision of all
    # sites, a negative one beside a large one passed (a negative variance)
    m = matern_state_space("matern12", 0.1, 2e6)
    with pytest.raises(ValueError, match="site 1 has eigenvalue -9.9e-07"):
        kalman_smoother(m, [0.0, 100.0], np.array([1e6, -9.9e-7]).reshape(2, 1, 1), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="symmetric"):
        kalman_smoother(m, [0.0, 1.0], np.array([[[1e6, 0.0], [0.0, 1e6]], [[1.0, 1e-4], [0.0, 1.0]]]),
                        np.zeros((2, 2)))


def test_variance_out_of_range_names_variance():
    # variance 1e307 overflowed the stationary covariance and the error
    # blamed the lengthscale
    for kernel, ell, var in (("matern52", 0.5, 1e307), ("matern52", 0.01, 1e300), ("matern12", 10.0, 5e-324)):
        with pytest.raises(ValueError, match=r"variance = .* is outside") as err:
            matern_state_space(kernel, ell, var)
        assert "lengthscale =" in str(err.value) and "lengthscale = " + f"{ell:g} is outside" not in str(err.value)
    # a bad lengthscale is still named as such, whatever the variance
    with pytest.raises(ValueError, match=r"lengthscale = 1e-80 is outside"):
        matern_state_space("matern52", 1e-80, 1e300)
    m = matern_state_space("matern52", 1.0, 1e300)  # representable: fine
    assert np.all(np.isfinite(m.P_inf)) and 0 < m.q < np.inf


def test_result_keeps_its_own_copies():
    # SmootherResult.sites was a view of the caller's array: reusing the
    # buffer changed the frozen result's predictions
    m = matern_state_space("matern32", 0.5)
    t = np.linspace(0.0, 1.0, 5)
    prec = np.full((5, 1, 1), 100.0)
    info = 100.0 * np.sin(3 * t)[:, None]
    res = kalman_smoother(m, t, prec, info)
    before = res.predict([0.1, 0.5])
    sites0 = res.sites.copy()
    t *= 10.0
    prec *= 3.0
    info += 1.0
    np.testing.assert_array_equal(res.sites, sites0)
    for a, b in zip(res.predict([0.1, 0.5]), before):
        np.testing.assert_array_equal(a, b)
    for name in ("sites", "pred_mean", "pred_cov", "filt_mean", "filt_cov", "smooth_mean", "smooth_cov"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(res, name)[0] = 0.0
    # the stored model is immutable too
    for name in ("F", "L", "P_inf", "H"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(m, name)[0, 0] = 5.0


@pytest.mark.parametrize("shape", [(2, 2), (4, 1), ()])
def test_smoother_rejects_sites_that_are_not_1d(shape):
    # (2, 2) sites were flattened and taken as 4 sites
    m = matern_state_space("matern32")
    n = int(np.prod(shape))
    sites = np.arange(float(n)).reshape(shape)
    with pytest.raises(ValueError, match=r"sites must be 1-D"):
        kalman_smoother(m, sites, np.ones((n, 1, 1)), np.ones((n, 1)))


@pytest.mark.parametrize("name", ["sites", "precision", "information"])
def test_smoother_rejects_complex_input(name):
    # the imaginary part was dropped with only a ComplexWarning
    m = matern_state_space("matern32")
    args = dict(sites=np.linspace(0.0, 1.0, 3), precision=np.ones((3, 1, 1)), information=np.ones((3, 1)))
    args[name] = args[name] + 1j
    with pytest.raises(TypeError, match=f"{name} must hold real numbers, got dtype complex128"):
        kalman_smoother(m, **args)
    args[name] = args[name].real.astype(str)
    with pytest.raises(TypeError, match=f"{name} must hold real numbers"):
        kalman_smoother(m, **args)


def test_smoother_rejects_a_model_that_is_not_one():
    # an AttributeError from inside the filter before
    with pytest.raises(TypeError, match="model must be a StateSpaceModel"):
        kalman_smoother("matern32", np.linspace(0.0, 1.0, 3), np.ones((3, 1, 1)), np.ones((3, 1)))


def test_zero_dim_array_hyperparameters():
    # a 0-d array was a TypeError where the numpy scalar was accepted
    ref = matern_state_space("matern52", 0.7, 2.0)
    for ell, var in ((np.array(0.7), np.array(2.0)), (np.float64(0.7), np.array(2))):
        m = matern_state_space("matern52", ell, var)
        assert type(m.lengthscale) is float and type(m.variance) is float
        np.testing.assert_array_equal(m.P_inf, ref.P_inf)
        np.testing.assert_array_equal(m.F, ref.F)
    with pytest.raises(TypeError, match="lengthscale must be a real number"):
        matern_state_space("matern52", np.array(0.7 + 1j))
    with pytest.raises(ValueError, match="variance must be > 0"):
        matern_state_space("matern52", 0.7, np.array(-1.0))
