"""
Functional Bayesian Tucker decomposition of Beijing air quality
===============================================================

Daily PM2.5 records of 12 Beijing stations are indexed by three continuous
coordinates: temperature, pressure and time. :class:`FunctionalTucker`
models them as a Tucker core contracted with ``R`` latent functions per
coordinate, each with a Matérn-3/2 Gaussian-process prior, and fits the
posterior by Kalman filtering / RTS smoothing driven by message passing.

The figure shows the learned latent functions of temperature, pressure and
time (posterior mean with ±2σ bands; ticks at the bottom mark the observed
coordinates -- the bands widen where there are none), and predicted against
observed PM2.5 on held-out records with ±2σ predictive error bars.

The data folder defaults to ``../shared/data/funbat`` beside the repository
(override with ``TENSORAPPROX_SHARED_DATA``); without it the example prints a
message and draws an empty figure. Coordinates are the bin centres on the
[0, 10] scale of the original preprocessing (min-max scaled, dimensionless),
and PM2.5 is z-scored (dimensionless). Run
``python plot_funbat_air_quality.py [output folder]``.
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tensorapprox.bayes import FunctionalTucker  # noqa: E402
from tensorapprox.bayes.datasets import load_funbat_split  # noqa: E402

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the example from its folder without __file__
    here = Path.cwd()
root = os.environ.get("TENSORAPPROX_SHARED_DATA")
data = (Path(root) if root else here.parents[1] / "shared" / "data") / "funbat" / \
    "beijing_PM2.5_DISCT_428x501x1461_no_agg.npz"
split = load_funbat_split(data, fold=0, scale=10.0) if data.is_file() else None
if split is None:
    print(f"Beijing air-quality data not found at {data}; set TENSORAPPROX_SHARED_DATA to the shared data "
          "folder. Skipping the fit.")

# %%
# Fit: rank 2, Matérn-3/2 priors with length-scale 0.05 (in standardized
# coordinate units), no damping; 60 epochs keep the example fast.
if split is not None:
    model = FunctionalTucker(rank=2, lengthscale=0.05, damping=0.0, max_iter=60, tol=1e-6, random_state=0)
    model.fit(split.X_train, split.y_train)
    pred, std = model.predict(split.X_test, return_std=True)
    rmse = float(np.sqrt(np.mean((pred - split.y_test) ** 2)))
    inside = float(np.mean(np.abs(pred - split.y_test) <= 2 * std))
    print(f"{model.n_iter_} epochs, test RMSE {rmse:.3f} (z-score units), train RMSE {model.history_[-1]:.3f}, "
          f"{100 * inside:.1f} % of test records inside ±2σ")

# %%
# Latent functions of the three coordinates (±2σ) and held-out predictions.
fig, axes = plt.subplots(2, 2, figsize=(13, 9))
if split is None:
    for ax in axes.flat:
        ax.set_axis_off()
    axes[0, 0].text(0.5, 0.5, "Beijing air-quality data not found", ha="center", va="center")
else:
    for ax, mode, name in zip(axes.flat, range(3), ("temperature", "pressure", "time")):
        seen = np.unique(split.X_train[:, mode])
        x = np.linspace(seen.min() - 0.2, seen.max() + 0.2, 800)
        mean, sd = model.latent_functions(mode, x)
        for r in range(mean.shape[1]):
            ax.plot(x, mean[:, r], lw=1, label=f"u{r + 1} mean")
            ax.fill_between(x, mean[:, r] - 2 * sd[:, r], mean[:, r] + 2 * sd[:, r], alpha=0.25,
                            label=f"u{r + 1} ±2σ")
        lo = ax.get_ylim()[0]
        ax.plot(seen, np.full(seen.shape, lo), "|", color="k", ms=6, alpha=0.5,
                label=f"{seen.size} observed coordinates")
        ax.set_xlabel(f"{name} (min-max scaled to [0, 10], dimensionless)")
        ax.set_ylabel("latent function value (dimensionless)")
        ax.set_title(f"latent functions of {name}")
        ax.legend(fontsize=7, ncol=2)
    ax = axes[1, 1]
    ax.errorbar(split.y_test, pred, yerr=2 * std, fmt=".", ms=2, alpha=0.3, elinewidth=0.5)
    lim = [min(split.y_test.min(), pred.min()), max(split.y_test.max(), pred.max())]
    ax.plot(lim, lim, "k--", lw=1, label="y = x")
    ax.set_xlabel("observed PM2.5 (z-score, dimensionless)")
    ax.set_ylabel("predicted PM2.5 (z-score), ±2σ")
    ax.set_title(f"{split.y_test.size} held-out records, RMSE {rmse:.3f}, {100 * inside:.1f} % inside ±2σ")
    ax.legend()
fig.tight_layout()

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
path = out_dir / "plot_funbat_air_quality.png"
fig.savefig(path, dpi=110)
print(f"saved {os.path.relpath(path)}")
