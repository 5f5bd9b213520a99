"""Matplotlib helpers for the figures of the gallery and of ``tensorapprox demo``.

Three plots that recur when working with low-rank approximations:

* :func:`plot_mode_spectra` -- the singular-value decay of every mode
  unfolding of a tensor (how compressible each mode is);
* :func:`plot_convergence` -- the monitored error of an iterative solver
  against the iteration (every solver of the package keeps a ``history``);
* :func:`plot_error_vs_compression` -- the accuracy/size trade-off of a set
  of approximations.

Each function draws on the given Axes (or on a new figure when ``ax`` is
``None``), labels its axes, uses log scales where the values span decades,
and returns the Axes so that the caller can adjust titles and limits.
matplotlib is imported when a function is called, not when the module is
imported; choose the backend (e.g. ``matplotlib.use("Agg")`` for files only)
before calling.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import numpy as np

__all__ = ["mode_spectra", "plot_mode_spectra", "plot_convergence", "plot_error_vs_compression"]


def _new_axes(ax):
    if ax is not None:
        if not hasattr(ax, "plot") or not hasattr(ax, "set_yscale"):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax


@contextmanager
def _axes(ax):
    """``_new_axes(ax)``; a figure made here is closed again if drawing fails (pyplot kept it)."""
    made = ax is None
    ax = _new_axes(ax)
    try:
        yield ax
    except BaseException:
        if made:
            import matplotlib.pyplot as plt

            plt.close(ax.figure)
        raise


def _require_positive(values, what: str) -> None:
    """A log axis with nothing positive on it cannot be drawn (matplotlib raised at savefig)."""
    if not np.any(values > 0):
        raise ValueError(f"{what} holds no positive value; a log axis cannot show it (all zero: an exact fit)")


def _to_numpy(a):
    from ._array import to_numpy

    return np.asarray(to_numpy(a))


def _real_vector(values, name: str, *, allow_empty: bool = False) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
    try:
        v = _to_numpy(values) if hasattr(values, "shape") else np.asarray(values)
    except Exception as exc:  # ragged nested sequences and the like
        raise TypeError(f"{name} must be a sequence of numbers: {exc}") from None
    if v.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {v.dtype}")
    if v.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {v.shape}")
    if v.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty; give at least one value")
    v = v.astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} holds NaN or Inf; drop those entries first")
    return v


def mode_spectra(X) -> list[np.ndarray]:
    """Singular values of every mode unfolding of a tensor.

    Parameters
    ----------
    X : array, TuckerTensor or sequence of 1-D arrays
        A dense tensor with at least two modes (numpy or any array-API
        array); a :class:`~tensorapprox.tucker.TuckerTensor`, whose spectra
        are computed from its small core and factors without forming the
        full tensor; or the spectra themselves, one 1-D array per mode
        (returned as float64 numpy arrays after checking).

    Returns
    -------
    list of numpy.ndarray
        Entry ``k`` holds the singular values of the mode-``k`` unfolding in
        decreasing order: ``min(n_k, prod of the other sizes)`` of them for
        a dense tensor; for a Tucker tensor ``min(m_k, prod of the other
        m_j)`` with ``m_j = min(n_j, r_j)`` (its spectra beyond those are
        zero).

    Raises
    ------
    TypeError
        If ``X`` is none of the accepted kinds.
    ValueError
        If a dense ``X`` has fewer than two modes or holds NaN or Inf, or a
        given spectrum is empty, not one-dimensional, negative, not finite
        or not in decreasing order; or a Tucker tensor holds NaN or Inf.

    Notes
    -----
    For a Tucker tensor ``G x_1 U_1 ... x_d U_d`` each factor is first
    orthonormalized, ``U_k = Q_k R_k``, and ``R_k`` is absorbed into the core;
    the mode-``k`` singular values of the tensor are then those of the mode-``k``
    unfolding of the new core (De Lathauwer, De Moor & Vandewalle, SIAM J.
    Matrix Anal. Appl. 21 (2000), Property 10).

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.plotting import mode_spectra
    >>> x = np.linspace(0, 1, 20)
    >>> X = np.exp(-x[:, None, None] - 2 * x[None, :, None] * x[None, None, :])
    >>> [s.shape for s in mode_spectra(X)]
    [(20,), (20,), (20,)]
    >>> bool(np.allclose([np.sum(s**2) for s in mode_spectra(X)], np.sum(X**2)))
    True
    """
    from .tensor import _pow2_normalized, _pow2_r_factor, unfold
    from .tucker import TuckerTensor

    if isinstance(X, TuckerTensor):
        core = _to_numpy(X.core).astype(np.float64)
        factors = [_to_numpy(U).astype(np.float64) for U in X.factors]
        if not (np.all(np.isfinite(core)) and all(np.all(np.isfinite(U)) for U in factors)):
            raise ValueError("X holds NaN or Inf in its core or factors; the spectra of such a tensor are undefined")
        # core and factors in units of powers of two, added back to the
        # singular values at the end: with a core near 1e300 and factors near
        # 1e-200 (entries near 1) the R-factors absorbed one at a time
        # overflowed (the SVD failed) or underflowed (zero spectra)
        core, e = _pow2_normalized(np, core)
        for k, U in enumerate(factors):
            R, ek = _pow2_r_factor(np, U)
            if R is None:  # a zero factor, a zero tensor
                R = np.zeros((min(U.shape), U.shape[1]))
            e += ek
            core = np.moveaxis(np.tensordot(R, core, axes=(1, k)), 0, k)
        return [np.ldexp(np.linalg.svd(unfold(core, k), compute_uv=False), e) for k in range(core.ndim)]
    if hasattr(X, "shape") and hasattr(X, "ndim"):
        A = _to_numpy(X)
        if A.dtype.kind not in "fiub":
            raise TypeError(f"X must hold real numbers, got dtype {A.dtype}")
        if A.ndim < 2:
            raise ValueError(f"X must have at least two modes, got shape {A.shape}")
        A = A.astype(np.float64)
        if not np.all(np.isfinite(A)):
            raise ValueError("X holds NaN or Inf; the spectra of such a tensor are undefined")
        return [np.linalg.svd(unfold(A, k), compute_uv=False) for k in range(A.ndim)]
    if isinstance(X, (str, bytes)) or not isinstance(X, Sequence):
        raise TypeError("X must be a tensor (array), a TuckerTensor or a sequence of 1-D arrays of singular "
                        f"values, got {type(X).__name__}")
    if len(X) == 0:
        raise ValueError("X is an empty sequence; give one array of singular values per mode")
    spectra = [_real_vector(s, f"X[{k}]") for k, s in enumerate(X)]
    for k, s in enumerate(spectra):
        if np.any(s < 0):
            raise ValueError(f"X[{k}] holds negative values; singular values are >= 0")
        if np.any(np.diff(s) > 0):
            raise ValueError(f"X[{k}] is not in decreasing order; give singular values largest first")
    return spectra


def plot_mode_spectra(X, ax=None, *, normalize: bool = True, labels: Sequence[str] | None = None):
    """Plot the singular-value decay of every mode unfolding on a log scale.

    Parameters
    ----------
    X : array, TuckerTensor or sequence of 1-D arrays
        The tensor or its spectra, as accepted by :func:`mode_spectra`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted.
    normalize : bool, default True
        Plot ``sigma_i / sigma_1`` per mode (dimensionless, starts at 1);
        with False the singular values are plotted as they are (units of the
        tensor's entries).
    labels : sequence of str, optional
        Legend entry per mode; default ``"mode k (n = size)"`` (``k`` counted
        from 1 as in the literature).

    Returns
    -------
    matplotlib.axes.Axes
        The Axes with one line per mode (x: index ``i`` of the singular
        value, from 1; y: log scale) and a legend.

    Raises
    ------
    TypeError
        If ``X`` is not accepted by :func:`mode_spectra` or ``ax`` is not an
        Axes.
    ValueError
        As :func:`mode_spectra`; also when ``labels`` does not have one entry
        per mode, or no singular value is positive (a zero tensor: nothing
        to show on a log axis).

    Notes
    -----
    Exactly zero singular values cannot be shown on a log axis and are left
    out of the lines (so are all values of a mode whose largest singular
    value is zero when ``normalize`` is True).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from tensorapprox.plotting import plot_mode_spectra
    >>> x = np.linspace(-1, 1, 24)
    >>> X = 1 / (1.5 + x[:, None, None] + x[None, :, None] * x[None, None, :])
    >>> ax = plot_mode_spectra(X)
    >>> ax.get_yscale(), len(ax.get_lines())
    ('log', 3)
    >>> ax.get_lines()[0].get_ydata()[0]
    np.float64(1.0)
    """
    spectra = mode_spectra(X)
    shapes = tuple(X.shape) if hasattr(X, "shape") else tuple(len(s) for s in spectra)
    if labels is None:
        labels = [f"mode {k + 1} (n = {shapes[k]})" for k in range(len(spectra))]
    elif isinstance(labels, (str, bytes)) or len(labels) != len(spectra):
        raise ValueError(f"labels must hold one string per mode ({len(spectra)}), got {labels!r}")
    _require_positive(np.concatenate(spectra), "every spectrum of X")
    markers = "os^vD<>ph"
    with _axes(ax) as ax:
        for k, (s, label) in enumerate(zip(spectra, labels)):
            y = s / s[0] if normalize and s.size and s[0] > 0 else s.copy()
            if normalize and s.size and s[0] == 0:
                y[:] = np.nan
            y[y <= 0] = np.nan  # log axis: zeros are not drawn
            # a different marker per mode: equal spectra (symmetric tensors) stay visible
            ax.plot(np.arange(1, y.size + 1), y, marker=markers[k % len(markers)], markersize=3, label=str(label))
        ax.set_yscale("log")
        ax.set_xlabel("index i of the singular value")
        ax.set_ylabel(r"$\sigma_i / \sigma_1$ of the mode unfolding" if normalize
                      else r"singular value $\sigma_i$ of the mode unfolding")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    return ax


def plot_convergence(history, ax=None, *, label: str | None = None, x=None, xlabel: str = "iteration",
                     ylabel: str | None = None, marker: str = "o"):
    """Plot a monitored error against the iteration on a log scale.

    Parameters
    ----------
    history : sequence of float or result object
        The errors (or losses), one per iteration, ``>= 0``; or a result
        with a history: its ``error_history`` when it has a non-empty one
        (:class:`~tensorapprox.completion.SubgradientResult` given
        ``X_true``), else its ``history``
        (:class:`~tensorapprox.tucker.TuckerALSResult`,
        :class:`~tensorapprox.completion.CompletionResult`, the loss of a
        ``SubgradientResult``) or ``history_`` (a fitted
        :class:`~tensorapprox.bayes.FunctionalTucker`: training RMSE).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted. Call again with
        the same ``ax`` to compare several runs.
    label : str, optional
        Legend entry of this line; a legend is drawn when given.
    x : sequence of float, optional
        The abscissae (e.g. the polynomial degree or the elapsed seconds);
        default ``0, 1, ..., len(history) - 1``. Change ``xlabel`` with it.
    xlabel, ylabel : str
        Axis labels. ``ylabel`` defaults to what the history holds:
        "relative error", "loss" (a ``SubgradientResult`` without
        ``X_true``) or "training RMSE" (a ``FunctionalTucker``).
    marker : str, default "o"
        Matplotlib marker of the points.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes with the new line added (y: log scale).

    Raises
    ------
    TypeError
        If ``history`` is not a sequence of real numbers (nor has such a
        ``history``), or ``ax`` is not an Axes.
    ValueError
        If ``history`` is empty, holds NaN, Inf or negative values, holds
        no positive value (nothing to show on a log axis), or ``x`` does not
        have one value per entry.

    Notes
    -----
    Values that are exactly zero (an exact fit) cannot be shown on a log
    axis and are left out of the line.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from tensorapprox.plotting import plot_convergence
    >>> ax = plot_convergence([1.0, 1e-2, 1e-4, 1e-6], label="solver A")
    >>> ax.get_yscale(), ax.get_xlabel(), ax.get_ylabel()
    ('log', 'iteration', 'relative error')
    >>> ax.get_lines()[0].get_ydata().tolist()
    [1.0, 0.01, 0.0001, 1e-06]
    """
    default_label = "relative error"
    if not isinstance(history, (Sequence, np.ndarray)):
        if len(getattr(history, "error_history", ())):
            history = history.error_history
        elif hasattr(history, "error_history") and hasattr(history, "history"):
            history, default_label = history.history, "loss"  # a recovery run without X_true
        elif hasattr(history, "history"):
            history = history.history
        elif hasattr(history, "history_"):
            history, default_label = history.history_, "training RMSE"
    ylabel = default_label if ylabel is None else ylabel
    y = _real_vector(history, "history")
    if np.any(y < 0):
        raise ValueError("history holds negative values; errors and losses are >= 0")
    _require_positive(y, "history")
    if x is None:
        xs = np.arange(y.size, dtype=np.float64)
    else:
        xs = _real_vector(x, "x")
        if xs.size != y.size:
            raise ValueError(f"x has {xs.size} values but history has {y.size}; give one x per entry")
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string, got {type(label).__name__}")
    y = np.where(y > 0, y, np.nan)
    with _axes(ax) as ax:
        ax.plot(xs, y, marker=marker, markersize=3, label=label)
        if x is None:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        if label is not None:
            ax.legend()
    return ax


def plot_error_vs_compression(ratios, errors, ax=None, *, label: str | None = None,
                              annotations: Sequence[str] | None = None, marker: str = "o"):
    """Plot the relative error of approximations against their compression ratio.

    Parameters
    ----------
    ratios : sequence of float
        Compression ratios, ``size of the full data / size stored`` (> 0;
        e.g. :attr:`TuckerTensor.compression_ratio
        <tensorapprox.tucker.TuckerTensor.compression_ratio>`).
    errors : sequence of float
        Relative errors, one per ratio (>= 0).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted.
    label : str, optional
        Legend entry of this set of points; a legend is drawn when given.
    annotations : sequence of str, optional
        Text written next to each point (e.g. the ranks).
    marker : str, default "o"
        Matplotlib marker of the points.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes with the points joined in the given order, both axes on a
        log scale.

    Raises
    ------
    TypeError
        If ``ratios`` or ``errors`` are not sequences of real numbers, or
        ``ax`` is not an Axes.
    ValueError
        If the lengths differ, a ratio is not positive, an error is
        negative, no error is positive (nothing to show on a log axis; zero
        errors are left out of the line), a value is NaN or Inf, or
        ``annotations`` does not have one entry per point.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from tensorapprox.plotting import plot_error_vs_compression
    >>> ax = plot_error_vs_compression([10, 100, 1000], [1e-8, 1e-5, 1e-2], annotations=["r=12", "r=6", "r=2"])
    >>> ax.get_xscale(), ax.get_yscale()
    ('log', 'log')
    >>> ax.get_lines()[0].get_xdata().tolist()
    [10.0, 100.0, 1000.0]
    """
    r = _real_vector(ratios, "ratios")
    e = _real_vector(errors, "errors")
    if r.size != e.size:
        raise ValueError(f"ratios has {r.size} values but errors has {e.size}; give one error per ratio")
    if np.any(r <= 0):
        raise ValueError("ratios must be positive (full size / stored size)")
    if np.any(e < 0):
        raise ValueError("errors must be >= 0 (relative errors)")
    if annotations is not None and (isinstance(annotations, (str, bytes)) or len(annotations) != r.size):
        raise ValueError(f"annotations must hold one string per point ({r.size}), got {annotations!r}")
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string, got {type(label).__name__}")
    _require_positive(e, "errors")
    with _axes(ax) as ax:
        ax.plot(r, np.where(e > 0, e, np.nan), marker=marker, label=label)
        if annotations is not None:
            ax.margins(0.1)  # room for the text next to the outer points
            for xi, yi, text in zip(r, e, annotations):
                if yi > 0:
                    ax.annotate(str(text), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize="small")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compression ratio (full size / stored size)")
        ax.set_ylabel("relative error")
        ax.grid(True, which="major", alpha=0.3)
        if label is not None:
            ax.legend()
    return ax
