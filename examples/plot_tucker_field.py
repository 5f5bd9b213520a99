"""
Tucker compression of a sampled physical field
==============================================

A screened (Yukawa) electrostatic potential of 12 point charges,
``phi(x) = sum_i q_i exp(-kappa r_i) / sqrt(r_i^2 + delta^2)`` with
``r_i = |x - x_i|``, is sampled on a 96^3 grid over a 10-bohr box (atomic
units: lengths in bohr, charges in e, potential in hartree per e). The
softening length ``delta`` keeps the samples finite at the charges.

Left: the field on the middle z-slice, charges near the slice marked.
Middle: relative Frobenius error against the compression ratio (entries of
the grid over entries stored) for :func:`tensorapprox.st_hosvd` and
:func:`tensorapprox.hosvd` at tolerances from 1e-1 to 1e-9, and for
:func:`tensorapprox.tucker_als` (HOOI) at equal ranks per mode. Right: the
singular values of the three unfoldings, whose decay sets the Tucker ranks
needed for a given accuracy.

Run ``python plot_tucker_field.py [output folder]`` (or set
``TENSORAPPROX_FIGURES``); the PNG goes next to this script by default.
"""

import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tensorapprox as ta  # noqa: E402

# %%
# Sample the field on a cell-centred grid of ``n^3`` points.
n, half = 96, 5.0  # points per axis, half-width of the box in bohr
kappa, delta = 0.5, 0.25  # screening (1/bohr) and softening length (bohr)
rng = np.random.default_rng(0)
charges_pos = rng.uniform(-0.8 * half, 0.8 * half, (12, 3))
charges = rng.choice([-1.0, 1.0], 12) * rng.uniform(0.5, 1.5, 12)
x = -half + (np.arange(n) + 0.5) * (2 * half / n)
X = np.zeros((n, n, n))
for p, q in zip(charges_pos, charges):
    r = np.sqrt((x[:, None, None] - p[0]) ** 2 + (x[None, :, None] - p[1]) ** 2 + (x[None, None, :] - p[2]) ** 2)
    X += q * np.exp(-kappa * r) / np.sqrt(r * r + delta * delta)
norm_X = np.linalg.norm(X)
print(f"field on a {n}^3 grid: {X.nbytes / 1e6:.1f} MB")

# %%
# Truncated HOSVD and ST-HOSVD at a sweep of tolerances; HOOI (Tucker-ALS)
# at equal ranks per mode, started from ST-HOSVD.
tols = np.geomspace(1e-1, 1e-9, 13)
curves = {"st_hosvd": ([], []), "hosvd": ([], [])}
t0 = time.perf_counter()
for tol in tols:
    for name, fn in (("st_hosvd", ta.st_hosvd), ("hosvd", ta.hosvd)):
        T = fn(X, rtol=tol)
        curves[name][0].append(T.compression_ratio)
        curves[name][1].append(np.linalg.norm(T.full() - X) / norm_X)
    if tol in (tols[3], tols[6], tols[9]):
        print(f"rtol={tol:.0e}: st_hosvd ranks {T.ranks}, compression {curves['st_hosvd'][0][-1]:.1f}x, "
              f"error {curves['st_hosvd'][1][-1]:.2e}")
als_ranks = [4, 8, 16, 24, 32, 48, 64]
als_ratio, als_err, st_err = [], [], []
for r in als_ranks:
    res = ta.tucker_als(X, rank=(r, r, r), max_iter=10, tol=1e-10)
    als_ratio.append(res.tucker.compression_ratio)
    als_err.append(res.rel_error)
    st_err.append(res.history[0])
print(f"{2 * len(tols) + len(als_ranks)} decompositions in {time.perf_counter() - t0:.1f} s")
print("HOOI vs ST-HOSVD at equal ranks: "
      + ", ".join(f"r={r}: {a:.2e}/{s:.2e}" for r, a, s in zip(als_ranks, als_err, st_err)))

# %%
# Singular values of the mode-k unfoldings.
spectra = [np.linalg.svd(ta.unfold(X, k), compute_uv=False) for k in range(3)]

fig, ax = plt.subplots(1, 3, figsize=(15, 4.4))
iz = n // 2
im = ax[0].imshow(X[:, :, iz].T, origin="lower", extent=(-half, half, -half, half), cmap="RdBu_r",
                  vmin=-np.abs(X[:, :, iz]).max(), vmax=np.abs(X[:, :, iz]).max())
near = np.abs(charges_pos[:, 2] - x[iz]) < 1.0
ax[0].scatter(charges_pos[near, 0], charges_pos[near, 1], c=np.where(charges[near] > 0, "k", "w"), s=25,
              edgecolors="k", label="charges within 1 bohr of the slice")
ax[0].set_xlabel("x [bohr]")
ax[0].set_ylabel("y [bohr]")
ax[0].set_title(f"screened potential, z = {x[iz]:.2f} bohr")
ax[0].legend(loc="lower left", fontsize=7)
fig.colorbar(im, ax=ax[0], shrink=0.85, label="potential [hartree / e]")

for (name, (ratio, err)), style in zip(curves.items(), ("o-", "s--")):
    ax[1].loglog(ratio, err, style, ms=4, label=f"{name} (rtol sweep)")
ax[1].loglog(als_ratio, als_err, "k^", ms=7, mfc="none", label="tucker_als, ranks (r, r, r)")
for r, cr, e in zip(als_ranks, als_ratio, als_err):
    ax[1].annotate(f"r={r}", (cr, e), textcoords="offset points", xytext=(5, 3), fontsize=7)
ax[1].set_xlabel("compression ratio (grid entries / stored entries)")
ax[1].set_ylabel("relative error  ||X - T||_F / ||X||_F")
ax[1].set_title("error vs compression")
ax[1].set_xlim(right=3 * max(als_ratio))
ax[1].grid(True, which="major", alpha=0.3)
ax[1].legend(fontsize=8)

for k, s in enumerate(spectra):
    ax[2].semilogy(np.arange(1, s.size + 1), s / s[0], label=f"mode {k + 1} ({'xyz'[k]})")
ax[2].set_xlabel("index i")
ax[2].set_ylabel("sigma_i / sigma_1 (dimensionless)")
ax[2].set_title("singular values of the unfoldings")
ax[2].grid(True, which="both", alpha=0.3)
ax[2].legend()
fig.tight_layout()

try:
    here = Path(__file__).resolve().parent
except NameError:  # run interactively
    here = Path.cwd()
out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
path = out_dir / "plot_tucker_field.png"
fig.savefig(path, dpi=110)
print(f"saved {os.path.relpath(path)}")
