"""Plotting helpers: what is drawn equals what was given, axes are labelled and scaled."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tensorapprox as ta  # noqa: E402
from tensorapprox.plotting import (  # noqa: E402
    mode_spectra,
    plot_convergence,
    plot_error_vs_compression,
    plot_mode_spectra,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _smooth_tensor(n=(12, 10, 8)):
    x, y, z = (np.linspace(0, 1, k) for k in n)
    return 1.0 / (1.0 + x[:, None, None] + 2 * y[None, :, None] + 3 * z[None, None, :])


def test_mode_spectra_of_dense_tensor_are_the_unfolding_singular_values():
    X = _smooth_tensor()
    spectra = mode_spectra(X)
    for k, s in enumerate(spectra):
        expected = np.linalg.svd(ta.unfold(X, k), compute_uv=False)
        np.testing.assert_allclose(s, expected, rtol=1e-12)


def test_mode_spectra_of_tucker_tensor_match_its_full_tensor():
    rng = np.random.default_rng(0)
    # non-orthonormal factors: the helper must orthonormalize them
    T = ta.TuckerTensor(rng.standard_normal((3, 4, 2)),
                        [rng.standard_normal((n, r)) for n, r in [(9, 3), (7, 4), (6, 2)]])
    full = mode_spectra(T.full())
    for k, s in enumerate(mode_spectra(T)):
        assert s.shape == (T.ranks[k],)
        np.testing.assert_allclose(s, full[k][: T.ranks[k]], rtol=1e-10, atol=1e-12 * full[k][0])


def test_mode_spectra_of_tucker_tensor_with_unbalanced_scales():
    # entries near 1 from a core near 1e300 and factors near 1e-200 (and the
    # reverse): the R-factors absorbed one at a time overflowed (SVD failed)
    # or underflowed (zero spectra)
    rng = np.random.default_rng(3)
    core = rng.standard_normal((2, 2, 2))
    factors = [rng.standard_normal((n, 2)) for n in (5, 4, 3)]
    ref = mode_spectra(ta.TuckerTensor(core, factors))
    for c, fs in ((1e300, (1e100, 1e-200, 1e-200)), (1e-300, (1e-100, 1e200, 1e200)),
                  (2.0 ** 900, (2.0 ** -300, 2.0 ** -300, 2.0 ** -300))):
        got = mode_spectra(ta.TuckerTensor(core * c, [U * f for U, f in zip(factors, fs)]))
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    # and a zero factor: a zero tensor, zero spectra
    zero = mode_spectra(ta.TuckerTensor(core, [factors[0], 0.0 * factors[1], factors[2]]))
    assert all(np.all(s == 0.0) for s in zero)


def test_mode_spectra_of_tucker_tensor_count_as_documented():
    # min(m_k, prod of the other m_j), m_j = min(n_j, r_j): not r_k
    rng = np.random.default_rng(4)
    T = ta.TuckerTensor(rng.standard_normal((4, 2, 1)), [rng.standard_normal((n, r)) for n, r in [(6, 4), (5, 2), (3, 1)]])
    assert [s.size for s in mode_spectra(T)] == [2, 2, 1]
    T = ta.TuckerTensor(rng.standard_normal((3, 2)), [rng.standard_normal((2, 3)), rng.standard_normal((4, 2))])
    assert [s.size for s in mode_spectra(T)] == [2, 2]
    full = mode_spectra(T.full())
    for s, f in zip(mode_spectra(T), full):
        np.testing.assert_allclose(s, f[: s.size], rtol=1e-10)


def test_plot_mode_spectra_plots_the_given_values():
    spectra = [np.array([4.0, 2.0, 1.0, 0.5]), np.array([3.0, 0.3, 0.03])]
    ax = plot_mode_spectra(spectra, normalize=False)
    lines = ax.get_lines()
    assert len(lines) == 2
    for line, s in zip(lines, spectra):
        np.testing.assert_array_equal(line.get_ydata(), s)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, s.size + 1))
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() and "singular value" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mode 1 (n = 4)", "mode 2 (n = 3)"]


def test_plot_mode_spectra_normalizes_and_uses_given_axes_and_labels():
    X = _smooth_tensor()
    fig, ax = plt.subplots()
    out = plot_mode_spectra(X, ax=ax, labels=["x", "y", "z"])
    assert out is ax
    for line, s in zip(ax.get_lines(), mode_spectra(X)):
        y = np.asarray(line.get_ydata())
        keep = np.isfinite(y)
        np.testing.assert_allclose(y[keep], (s / s[0])[keep], rtol=1e-12)
        assert y[0] == 1.0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x", "y", "z"]
    assert "sigma_1" in ax.get_ylabel()


def test_plot_mode_spectra_drops_zeros_on_the_log_axis():
    ax = plot_mode_spectra([np.array([2.0, 1.0, 0.0])], normalize=False)
    y = ax.get_lines()[0].get_ydata()
    assert y[0] == 2.0 and y[1] == 1.0 and np.isnan(y[2])


def test_plot_convergence_draws_history_of_a_result_object():
    x = np.linspace(0, 1, 15)
    X = np.exp(-np.add.outer(np.add.outer(x, x), x) ** 2)
    res = ta.tucker_als(X, rank=2, max_iter=5)
    ax = plot_convergence(res, label="HOOI")
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), np.asarray(res.history))
    np.testing.assert_array_equal(line.get_xdata(), np.arange(len(res.history)))
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "relative error"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["HOOI"]


def test_plot_convergence_with_abscissae_and_several_lines():
    fig, ax = plt.subplots()
    plot_convergence([1e-1, 1e-3], ax=ax, x=[8, 16], xlabel="degree", label="a")
    plot_convergence([1e-2, 1e-5], ax=ax, x=[8, 16], xlabel="degree", label="b")
    assert len(ax.get_lines()) == 2
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), [8.0, 16.0])
    assert ax.get_xlabel() == "degree"
    assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 2


def test_plot_convergence_without_label_has_no_legend():
    ax = plot_convergence(np.array([1.0, 0.1]))
    assert ax.get_legend() is None


def test_plot_error_vs_compression_draws_points_on_log_log_axes():
    ratios, errors = [5.0, 50.0, 500.0], [1e-9, 1e-6, 1e-3]
    ax = plot_error_vs_compression(ratios, errors, label="st_hosvd", annotations=["a", "b", "c"])
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), ratios)
    np.testing.assert_array_equal(line.get_ydata(), errors)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "compression ratio" in ax.get_xlabel() and ax.get_ylabel() == "relative error"
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["st_hosvd"]


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: plot_error_vs_compression([1, 2], [0.1]), ValueError, "ratios has 2 values but errors has 1"),
        (lambda: plot_error_vs_compression([0, 2], [0.1, 0.2]), ValueError, "ratios must be positive"),
        (lambda: plot_error_vs_compression([1, 2], [-0.1, 0.2]), ValueError, "errors must be >= 0"),
        (lambda: plot_error_vs_compression([1, 2], [0.1, 0.2], annotations=["a"]), ValueError,
         "one string per point"),
        (lambda: plot_convergence([]), ValueError, "history is empty"),
        (lambda: plot_convergence([1.0, np.nan]), ValueError, "NaN or Inf"),
        (lambda: plot_convergence([1.0, 0.5], x=[1]), ValueError, "x has 1 values but history has 2"),
        (lambda: plot_convergence("abc"), TypeError, "sequence of numbers"),
        (lambda: plot_convergence([1.0], ax="axes"), TypeError, "ax must be a matplotlib Axes"),
        (lambda: plot_mode_spectra(np.ones(5)), ValueError, "at least two modes"),
        (lambda: plot_mode_spectra([np.array([1.0, -1.0])]), ValueError, "negative"),
        (lambda: plot_mode_spectra(42), TypeError, "TuckerTensor or a sequence"),
        (lambda: plot_mode_spectra(np.ones((3, 3)), labels=["one"]), ValueError, "one string per mode"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_edge_inputs_found_in_review(tmp_path):
    # nothing positive on a log axis: the call returned and savefig raised
    # deep inside matplotlib; now a clear error before any figure is made
    before = len(plt.get_fignums())
    for call in (lambda: plot_error_vs_compression([10, 100], [0.0, 0.0]), lambda: plot_convergence([0.0, 0.0]),
                 lambda: plot_mode_spectra([np.zeros(3), np.zeros(2)])):
        with pytest.raises(ValueError, match="holds no positive value; a log axis cannot show it"):
            call()
    # negative values were silently dropped (an empty plot)
    with pytest.raises(ValueError, match="history holds negative values"):
        plot_convergence([-1.0, -0.5, -0.2])
    # a failure after the figure was made left it open in pyplot
    with pytest.raises(ValueError):
        plot_convergence([1.0, 0.1], marker="zz")
    with pytest.raises(ValueError):
        plot_error_vs_compression([10, 100], [1e-3, 1e-2], marker="zz")
    assert len(plt.get_fignums()) == before
    # an increasing "spectrum" plotted ratios above 1 under a sigma_i / sigma_1 label
    with pytest.raises(ValueError, match=r"X\[0\] is not in decreasing order"):
        plot_mode_spectra([np.array([0.5, 1.0, 0.25])])
    # NaN in a Tucker tensor gave LinAlgError, not the documented ValueError
    with pytest.raises(ValueError, match="NaN or Inf in its core or factors"):
        mode_spectra(ta.TuckerTensor(np.full((2, 2), np.nan), [np.eye(3, 2)] * 2))
    # zeros beside positive values are still left out, and the figure draws
    ax = plot_convergence([1.0, 0.0, 1e-3])
    ax.figure.savefig(tmp_path / "c.png")
    assert np.isnan(ax.get_lines()[0].get_ydata()[1])


def test_plot_convergence_picks_the_history_a_result_holds():
    from tensorapprox.bayes import FunctionalTucker
    from tensorapprox.completion import GaussianSensing, subgradient_recover

    rng = np.random.default_rng(0)
    L = rng.standard_normal((8, 1))
    X = L @ L.T
    op = GaussianSensing(8, 80, random_state=0)
    # the l1 loss was labelled "relative error"; the error history itself was never used
    res = subgradient_recover(op, op.apply(X), 2, max_iter=30, random_state=0)
    ax = plot_convergence(res)
    assert ax.get_ylabel() == "loss"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), res.history)
    res = subgradient_recover(op, op.apply(X), 2, max_iter=30, random_state=0, X_true=X)
    ax = plot_convergence(res)
    assert ax.get_ylabel() == "relative error"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), res.error_history)
    # a fitted FunctionalTucker keeps history_ (TypeError about dtype object before)
    Xc = rng.uniform(0, 1, (60, 2))
    m = FunctionalTucker(rank=1, max_iter=3, random_state=0).fit(Xc, np.sin(Xc[:, 0]) + Xc[:, 1])
    ax = plot_convergence(m)
    assert ax.get_ylabel() == "training RMSE"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), m.history_)
    assert plot_convergence([1.0, 0.5], ylabel="my label").get_ylabel() == "my label"
