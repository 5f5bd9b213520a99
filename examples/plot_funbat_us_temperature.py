"""
Functional Bayesian Tucker decomposition of US temperatures
===========================================================

Yearly mean temperatures (°F) of 248 US cities are indexed by three
continuous coordinates: latitude, longitude and year, each min-max scaled to
[0, 1] (the files store bin ids; coordinates are the bin centres).
:class:`~tensorapprox.FunctionalTucker` models the temperature as a Tucker
core contracted with ``R = 3`` latent functions per coordinate, each with a
Matérn-3/2 Gaussian-process prior, and infers their posterior by Kalman
filtering / RTS smoothing driven by message passing.

Top row: the posterior mean of the latent functions of latitude, longitude
and year with ±2σ bands (the bands widen between and beyond the observed
coordinates, marked by ticks at the bottom). Bottom left: predicted against
observed temperature on the held-out 20 % of the records, with ±2σ
predictive error bars. Bottom middle: the records of the busiest
(latitude, longitude) bin against the year (several cities share a bin, and
many of their yearly values coincide),
with the predictive mean and its ±2σ band (from a little before
its first record). Bottom right: calibration -- the
fraction of held-out records inside ±kσ against the Gaussian expectation.

The data folder defaults to ``../shared/data/funbat`` beside the repository
(override with ``TENSORAPPROX_SHARED_DATA``); without it the example prints a
message and draws an empty figure. Run
``python plot_funbat_us_temperature.py [output folder]``.
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import erf  # noqa: E402

from tensorapprox.bayes import FunctionalTucker  # noqa: E402
from tensorapprox.bayes.datasets import load_funbat_split  # noqa: E402

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the example from its folder without __file__
    here = Path.cwd()
root = os.environ.get("TENSORAPPROX_SHARED_DATA")
data = (Path(root) if root else here.parents[1] / "shared" / "data") / "funbat" / "US_temp_DISCT_15x95x267.npz"
split = load_funbat_split(data, fold=0, scale=1.0) if data.is_file() else None
if split is None:
    print(f"US temperature data not found at {data}; set TENSORAPPROX_SHARED_DATA to the shared data "
          "folder. Skipping the fit.")
else:
    print(f"{split.X_train.shape[0]} training and {split.X_test.shape[0]} test records, "
          f"mean {split.y_train.mean():.1f} °F, sd {split.y_train.std():.1f} °F")

# %%
# Fit: rank 3, Matérn-3/2 priors with length-scales 0.5, 0.2 and 0.1 for
# latitude, longitude and year (in standardized coordinate units: latitude
# has only 10 distinct values, so its functions are kept smoother), no damping.
if split is not None:
    model = FunctionalTucker(rank=3, lengthscale=(0.5, 0.2, 0.1), damping=0.0, max_iter=40, tol=1e-5, random_state=0)
    model.fit(split.X_train, split.y_train)
    pred, std = model.predict(split.X_test, return_std=True)
    rmse = float(np.sqrt(np.mean((pred - split.y_test) ** 2)))
    inside = float(np.mean(np.abs(pred - split.y_test) <= 2 * std))
    print(f"{model.n_iter_} epochs, test RMSE {rmse:.2f} °F (train {model.history_[-1]:.2f} °F), "
          f"{100 * inside:.1f} % of test records inside ±2σ")

# %%
# Latent functions with ±2σ bands, one city's predictive band, calibration.
fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
if split is None:
    for ax in axes.flat:
        ax.set_axis_off()
    axes[0, 1].text(0.5, 0.5, "US temperature data not found", ha="center", va="center")
else:
    for ax, mode, name in zip(axes[0], range(3), ("latitude", "longitude", "year")):
        seen = np.unique(split.X_train[:, mode])
        pad = 0.05 * (seen.max() - seen.min())
        x = np.linspace(seen.min() - pad, seen.max() + pad, 600)
        mean, sd = model.latent_functions(mode, x)
        for r in range(mean.shape[1]):
            ax.plot(x, mean[:, r], lw=1.2, label=f"u{r + 1} mean")
            ax.fill_between(x, mean[:, r] - 2 * sd[:, r], mean[:, r] + 2 * sd[:, r], alpha=0.25)
        lo = ax.get_ylim()[0]
        ax.plot(seen, np.full(seen.shape, lo), "|", color="k", ms=8, label=f"{seen.size} observed coordinates")
        ax.set_xlabel(f"{name} (min-max scaled to [0, 1], dimensionless)")
        ax.set_ylabel("latent function value (dimensionless)")
        ax.set_title(f"latent functions of {name}, mean ± 2σ")
        ax.legend(fontsize=7, loc="best")

    ax = axes[1, 0]
    ax.errorbar(split.y_test, pred, yerr=2 * std, fmt=".", ms=2, alpha=0.2, elinewidth=0.5)
    lim = [min(split.y_test.min(), pred.min()), max(split.y_test.max(), pred.max())]
    ax.plot(lim, lim, "k--", lw=1, label="y = x")
    ax.set_xlabel("observed yearly mean temperature [°F]")
    ax.set_ylabel("predicted [°F] (±2σ)")
    ax.set_title(f"{split.y_test.size} held-out records, RMSE {rmse:.2f} °F")
    ax.legend()

    # the (latitude, longitude) pair with the most records
    keys, counts = np.unique(split.ind_train[:, :2], axis=0, return_counts=True)
    city = keys[np.argmax(counts)]
    on_tr = np.all(split.ind_train[:, :2] == city, axis=1)
    on_te = np.all(split.ind_test[:, :2] == city, axis=1)
    lat, lon = split.X_train[on_tr][0, :2]
    first = min(split.X_train[on_tr, 2].min(), split.X_test[on_te, 2].min())
    years = np.linspace(max(first - 0.05, 0.0), split.X_train[:, 2].max(), 400)
    Xc = np.column_stack([np.full_like(years, lat), np.full_like(years, lon), years])
    m_city, s_city = model.predict(Xc, return_std=True)
    ax = axes[1, 1]
    ax.fill_between(years, m_city - 2 * s_city, m_city + 2 * s_city, color="C0", alpha=0.25,
                    label="predictive ±2σ")
    ax.plot(years, m_city, "C0-", lw=1, label="predictive mean")
    ax.plot(split.X_train[on_tr, 2], split.y_train[on_tr], "o", color="0.2", ms=4, label="training records")
    ax.plot(split.X_test[on_te, 2], split.y_test[on_te], "C3x", ms=4, mew=0.8, label="held-out records")
    # several cities fall into one (latitude, longitude) bin, many with equal records
    pairs = np.unique(np.column_stack([np.concatenate([split.X_train[on_tr, 2], split.X_test[on_te, 2]]),
                                       np.concatenate([split.y_train[on_tr], split.y_test[on_te]])]), axis=0)
    print(f"busiest location bin: {on_tr.sum() + on_te.sum()} records, {pairs.shape[0]} distinct "
          "(year, temperature) pairs")
    ax.set_xlabel("year (min-max scaled to [0, 1], dimensionless)")
    ax.set_ylabel("yearly mean temperature [°F]")
    ax.set_title(f"busiest location bin (lat {lat:.2f}, lon {lon:.2f}): {pairs.shape[0]} distinct (year, °F) pairs",
                 fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 2]
    k = np.linspace(0, 3, 61)
    z = np.abs(pred - split.y_test) / std
    ax.plot(k, [np.mean(z <= kk) for kk in k], "C0-", label="held-out records")
    ax.plot(k, erf(k / np.sqrt(2)), "k--", label="Gaussian expectation")
    ax.set_xlabel("k (interval half-width in predictive σ)")
    ax.set_ylabel("fraction of records within ±kσ")
    ax.set_title(f"calibration ({100 * inside:.1f} % inside ±2σ)")
    ax.grid(True, alpha=0.3)
    ax.legend()
fig.tight_layout()

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
path = out_dir / "plot_funbat_us_temperature.png"
fig.savefig(path, dpi=110)
print(f"saved {os.path.relpath(path)}")
