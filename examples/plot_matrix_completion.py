"""
Matrix completion by alternating minimization
=============================================

Left: recovery curves of a synthetic rank-5 matrix (relative error on
held-out entries after each pass) for the three row solvers of
:func:`tensorapprox.completion.altmin_complete` -- exact normal equations,
warm-started CG and sketch-preconditioned CG. All three converge linearly;
the approximate ones do O(|Omega| k) work a step instead of O(|Omega| k^2).

Middle: nearly-linear scaling -- wall-clock time of a completion run
(initialization and 5 passes) against the number of observed entries
``|Omega| = 3 n k ln n`` for ``n`` from 500 to 4000, on log-log axes, with a
least-squares slope and a slope-1 reference line.

Right (when the MovieLens-100K ratings are found at
``../shared/data/movielens/u.data`` or ``$TENSORAPPROX_SHARED_DATA``; the data
is never copied into the project): test RMSE (in stars, on the 1-5 rating
scale) on a random 80/20 split against the rank, with ALS-WR regularization
and biases, next to soft-impute.

Run ``python plot_matrix_completion.py [output folder]`` (or set
``TENSORAPPROX_FIGURES``); the PNG goes next to this script by default.
"""

import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tensorapprox.completion import altmin_complete, load_movielens, soft_impute, train_test_split  # noqa: E402

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the example from its folder without __file__
    here = Path.cwd()

# %%
# Synthetic recovery: orthonormal factors, singular values from 1 to 0.5,
# |Omega| = 3 n k ln n entries observed uniformly at random.
rng = np.random.default_rng(0)
n, k = 1500, 5
U, _ = np.linalg.qr(rng.standard_normal((n, k)))
V, _ = np.linalg.qr(rng.standard_normal((n, k)))
s = np.linspace(1.0, 0.5, k)
m = int(3 * n * k * np.log(n))
idx = rng.choice(n * n, m + 5000, replace=False)
rows, cols = np.divmod(idx, n)
values = np.einsum("ij,ij->i", U[rows] * s, V[cols])
train = (rows[:m], cols[:m], values[:m])
held_out = (rows[m:], cols[m:], values[m:])

fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
for solver, marker in (("exact", "o"), ("cg", "s"), ("sketch", "^")):
    res = altmin_complete(*train, (n, n), k, solver=solver, max_iter=20, tol=1e-14, random_state=0,
                          validation=held_out)
    axes[0].semilogy(np.arange(1, res.n_iter + 1), res.test_history, marker=marker, label=solver)
    print(f"{solver:>6}: held-out relative error {res.test_history[-1]:.1e} after {res.n_iter} passes")
axes[0].set_xlabel("pass (count)")
axes[0].set_ylabel("relative error on held-out entries")
axes[0].set_title(f"n = {n}, k = {k}, |Omega| = 3 n k ln n = {m}")
axes[0].grid(True, which="major", alpha=0.3)
axes[0].legend(title="row solver")

# Scaling with the number of observed entries: one run of 5 passes per size
# (timings on a shared machine are noisy; the slope is what matters).
sizes = [500, 1000, 2000, 3000, 4000]
n_obs, times = [], {"sketch": [], "exact": []}
for n_s in sizes:
    r_s = np.random.default_rng(n_s)
    A, B = r_s.standard_normal((n_s, k)), r_s.standard_normal((n_s, k))
    m_s = int(3 * n_s * k * np.log(n_s))
    rows_s, cols_s = np.divmod(r_s.choice(n_s * n_s, m_s, replace=False), n_s)
    vals_s = np.einsum("ij,ij->i", A[rows_s], B[cols_s])
    n_obs.append(m_s)
    for solver in times:
        t0 = time.perf_counter()
        altmin_complete(rows_s, cols_s, vals_s, (n_s, n_s), k, solver=solver, max_iter=5, tol=1e-30,
                        random_state=0)
        times[solver].append(time.perf_counter() - t0)
for (solver, t), marker in zip(times.items(), ("^", "o")):
    slope = np.polyfit(np.log(n_obs), np.log(t), 1)[0]
    print(f"{solver:>6}: time {t[0]:.2f} s at |Omega| = {n_obs[0]} -> {t[-1]:.2f} s at {n_obs[-1]}, "
          f"log-log slope {slope:.2f}")
    axes[1].loglog(n_obs, t, marker + "-", label=f"{solver} (slope {slope:.2f})")
ref = np.array(n_obs, dtype=float)
axes[1].loglog(ref, times["sketch"][0] * ref / ref[0], "k:", label="slope 1 (linear)")
axes[1].set_xlabel("observed entries |Omega| (count)")
axes[1].set_ylabel("wall-clock time, 5 passes [s]")
axes[1].set_title(f"nearly-linear scaling, k = {k}, n = {sizes[0]} ... {sizes[-1]}")
axes[1].grid(True, which="both", alpha=0.3)
axes[1].legend()

# MovieLens-100K: RMSE against the rank (skipped when the data is absent).
base = Path(os.environ.get("TENSORAPPROX_SHARED_DATA", here.parent.parent / "shared" / "data"))
path = base / "movielens" / "u.data"
if path.is_file():
    obs = load_movielens(path)
    tr, te = train_test_split(obs, 0.2, random_state=0)
    ranks = [2, 5, 10, 20]
    rmse = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a few users/items only in the test split
        for r in ranks:
            res = altmin_complete(tr.rows, tr.cols, tr.values, tr.shape, r, solver="sketch", regularization=0.12,
                                  biases=True, random_state=0, max_iter=20)
            rmse.append(res.rmse(te.rows, te.cols, te.values))
        si = soft_impute(tr.rows, tr.cols, tr.values, tr.shape, 50, shrinkage=16.0, biases=True, random_state=0)
    si_rmse = si.rmse(te.rows, te.cols, te.values)
    print("MovieLens test RMSE: " + ", ".join(f"rank {r}: {e:.4f}" for r, e in zip(ranks, rmse))
          + f"; soft-impute {si_rmse:.4f}")
    axes[2].plot(ranks, rmse, "o-", label="altmin (sketch), ALS-WR + biases")
    axes[2].axhline(si_rmse, color="gray", ls="--", label="soft-impute")
    axes[2].set_xlabel("rank k")
    axes[2].set_ylabel("test RMSE [stars, 1-5 scale]")
    axes[2].set_title("MovieLens-100K, 80/20 split")
    axes[2].grid(True, alpha=0.3)
    axes[2].legend()
else:
    print(f"MovieLens ratings not found at {path}; skipping that panel")
    axes[2].text(0.5, 0.5, "MovieLens-100K not found", ha="center", va="center")
    axes[2].set_axis_off()

fig.tight_layout()
out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
out_png = out_dir / "plot_matrix_completion.png"
fig.savefig(out_png, dpi=110)
print(f"saved {os.path.relpath(out_png)}")
