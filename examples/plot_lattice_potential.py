"""
Long-range potential of a lattice with vacancies
================================================

An alternating (rock-salt) 8 x 8 x 8 lattice of unit charges with 5 % of
the sites removed. Its long-range electrostatic potential
``sum_i q_i erf(|x - x_i| / r_c) / |x - x_i|`` is built in the
Chebyshev-Tucker format through the canonical route (each charge and each
term of the exponential sum is a separable Gaussian), never sampling the
``m^3`` grid (``method="moments"``: the charges enter through a moment
tensor, see :func:`tensorapprox.particles.long_range_potential`).

Left: the potential on the middle z-slice. Middle: the singular values of
the mode-1 unfolding of the coefficient tensor (Tucker rank decay). Right:
Tucker rank and error against the tolerance.

Run ``python plot_lattice_potential.py [output folder]`` (or set
``TENSORAPPROX_FIGURES``).
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tensorapprox.particles as tp  # noqa: E402

box = [(-1.0, 1.0)] * 3
r_c = 0.15
pos, q = tp.lattice((8, 8, 8), spacing=0.2, vacancies=0.05, random_state=0)
print(f"{pos.shape[0]} charges")

pts = np.random.default_rng(1).uniform(-1, 1, (2000, 3))
exact = tp.direct_potential(pts, pos, q, "long_range", r_c=r_c)
tols = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
ranks, errors = [], []
for tol in tols:
    F = tp.long_range_potential(pos, q, box, r_c=r_c, rtol=tol, degree=48, method="moments")
    ranks.append(max(F.ranks))
    errors.append(np.max(np.abs(F(pts) - exact)) / np.max(np.abs(exact)))
    print(f"rtol={tol:.0e}  ranks={F.ranks}  max rel error={errors[-1]:.2e}")

# F is the most accurate one (last tolerance)
g = np.linspace(-1, 1, 161)
slice_ = F.on_grid(g, g, np.array([0.0])).full()[:, :, 0]
Fexact = tp.long_range_potential(pos, q, box, r_c=r_c, rtol=1e-10, degree=48, method="moments")
C = Fexact.coefficients()
sv = np.linalg.svd(C.reshape(C.shape[0], -1), compute_uv=False)

fig, ax = plt.subplots(1, 3, figsize=(14, 4.2))
im = ax[0].imshow(slice_.T, origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu_r")
ax[0].set_title("long-range potential, z = 0")
fig.colorbar(im, ax=ax[0], shrink=0.8)
ax[1].semilogy(sv / sv[0], ".-")
ax[1].set_title("singular values of the coefficient unfolding")
ax[1].set_xlabel("index")
ax[1].grid(True, alpha=0.3)
ax[2].loglog(tols, errors, "o-", label="max relative error")
ax[2].loglog(tols, tols, "k:", label="rtol")
ax2 = ax[2].twinx()
ax2.semilogx(tols, ranks, "s--C1", label="Tucker rank")
ax2.set_ylabel("Tucker rank (max over modes)", color="C1")
ax[2].set_xlabel("rtol")
ax[2].invert_xaxis()
ax[2].legend(loc="upper left", fontsize=8)
ax[2].set_title("rank and error vs tolerance")
fig.tight_layout()

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", os.path.dirname(
    os.path.abspath(__file__)))
os.makedirs(out_dir, exist_ok=True)
path = os.path.join(out_dir, "plot_lattice_potential.png")
fig.savefig(path, dpi=110)
print(f"saved {path}")
