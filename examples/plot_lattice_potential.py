"""
Long-range potential of a lattice with vacancies
================================================

An alternating (rock-salt) 8 x 8 x 8 lattice of unit charges with the
nearest-neighbour distance of NaCl (``a = 5.3`` bohr) and 5 % of the sites
removed (vacancy defects). Its long-range electrostatic potential
``sum_i q_i erf(|x - x_i| / r_c) / |x - x_i|`` (``r_c = 0.75 a``) is built in
the Chebyshev-Tucker format through the canonical route (each charge and each
term of the exponential sum is a separable Gaussian), never sampling the
``m^3`` grid (``method="moments"``: the charges enter through a moment
tensor, see :func:`tensorapprox.particles.long_range_potential`). Atomic
units: lengths in bohr, charges in e, potential in hartree per e.

Top left: the potential on the lattice plane ``z = a/2``, vacancies of that
plane marked. Top right: the error against direct summation on that plane
(log scale). Bottom left: Tucker rank and maximum error against the
tolerance. Bottom right: Tucker rank against the number of particles ``N`` in
the same box (log axis), for lattices with 5 % vacancies and for random
charges: the rank grows slowly -- like ``log N`` at most, levelling off --
while ``N`` grows by three orders of magnitude.

Run ``python plot_lattice_potential.py [output folder]`` (or set
``TENSORAPPROX_FIGURES``).
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tensorapprox.particles as tp  # noqa: E402

a = 5.3  # lattice spacing, bohr
half = 5 * a  # half-width of the box, bohr
box = [(-half, half)] * 3
r_c = 0.75 * a
L = 8
pos_all, _ = tp.lattice((L, L, L), spacing=a)
pos, q = tp.lattice((L, L, L), spacing=a, vacancies=0.05, random_state=0)
print(f"{pos.shape[0]} charges ({L ** 3 - pos.shape[0]} vacancies), box [-{half:.1f}, {half:.1f}]^3 bohr")

# %%
# Rank and error against the tolerance (error at 2000 random points).
pts = np.random.default_rng(1).uniform(-half, half, (2000, 3))
exact = tp.direct_potential(pts, pos, q, "long_range", r_c=r_c)
tols = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
ranks, errors = [], []
for tol in tols:
    F = tp.long_range_potential(pos, q, box, r_c=r_c, rtol=tol, degree=48, method="moments")
    ranks.append(max(F.ranks))
    errors.append(np.max(np.abs(F(pts) - exact)) / np.max(np.abs(exact)))
    print(f"rtol={tol:.0e}  ranks={F.ranks}  max rel error={errors[-1]:.2e}")

# %%
# Slice through a lattice plane and its error map (F: the tightest tolerance).
z0 = a / 2
g = np.linspace(-half, half, 161)
slice_ = F.on_grid(g, g, np.array([z0])).full()[:, :, 0]
grid_pts = np.stack(np.meshgrid(g, g, [z0], indexing="ij"), axis=-1).reshape(-1, 3)
ref = tp.direct_potential(grid_pts, pos, q, "long_range", r_c=r_c).reshape(g.size, g.size)
err_map = np.abs(slice_ - ref) / np.abs(ref).max()
print(f"slice z = {z0:.2f} bohr: max relative error {err_map.max():.2e}")
in_plane = np.abs(pos_all[:, 2] - z0) < 1e-9
present = {tuple(np.round(p, 6)) for p in pos}
vac = np.array([p for p in pos_all[in_plane] if tuple(np.round(p, 6)) not in present]).reshape(-1, 3)

# %%
# Rank against the number of particles in the same box: lattices of L^3
# sites (5 % vacancies) filling the box, and uniformly random charges.
rank_tol = 1e-6
n_lat, r_lat = [], []
for n_side in (2, 3, 4, 6, 8, 11, 16, 22):
    p_, q_ = tp.lattice((n_side,) * 3, spacing=1.6 * half / n_side, vacancies=0.05, random_state=0)
    n_lat.append(q_.size)
    r_lat.append(max(tp.long_range_potential(p_, q_, box, r_c=r_c, rtol=rank_tol, degree=48,
                                             method="moments").ranks))
n_rand = [2 ** k for k in range(3, 15)]
r_rand = []
for n in n_rand:
    p_, q_ = tp.random_cluster(n, [(-0.8 * half, 0.8 * half)] * 3, random_state=n)
    r_rand.append(max(tp.long_range_potential(p_, q_, box, r_c=r_c, rtol=rank_tol, degree=48,
                                              method="moments").ranks))
slope, icpt = np.polyfit(np.log(n_lat), r_lat, 1)
print(f"rtol={rank_tol:.0e}: lattice ranks {dict(zip(n_lat, r_lat))}")
print(f"                random ranks  {dict(zip(n_rand, r_rand))}")
print(f"least-squares fit over the lattices: rank = {icpt:.1f} + {slope:.2f} ln N")

fig, ax = plt.subplots(2, 2, figsize=(12, 9.5))
ext = (-half, half, -half, half)
vmax = np.abs(slice_).max()
im = ax[0, 0].imshow(slice_.T, origin="lower", extent=ext, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
ax[0, 0].plot(vac[:, 0], vac[:, 1], "kx", ms=9, mew=2, label=f"vacancies in this plane ({len(vac)})")
ax[0, 0].set_title(f"long-range potential, plane z = {z0:.2f} bohr")
ax[0, 0].legend(loc="upper right", fontsize=8)
fig.colorbar(im, ax=ax[0, 0], shrink=0.85, label="potential [hartree / e]")
im = ax[0, 1].imshow(np.log10(err_map.T + 1e-18), origin="lower", extent=ext, cmap="viridis")
ax[0, 1].set_title(f"error vs direct sum, rtol = {tols[-1]:.0e} (max {err_map.max():.1e})")
fig.colorbar(im, ax=ax[0, 1], shrink=0.85, label="log10(|error| / max|phi|)")
for a_ in ax[0]:
    a_.set_xlabel("x [bohr]")
    a_.set_ylabel("y [bohr]")

a_ = ax[1, 0]
a_.loglog(tols, errors, "o-", label="max relative error")
a_.loglog(tols, tols, "k:", label="rtol")
a_.set_xlabel("Tucker tolerance rtol")
a_.set_ylabel("max |error| / max |phi|")
a_.invert_xaxis()
a_.grid(True, which="major", alpha=0.3)
b_ = a_.twinx()
b_.semilogx(tols, ranks, "s--", color="C1", label="Tucker rank")
b_.set_ylabel("Tucker rank (max over modes)", color="C1")
h1, l1 = a_.get_legend_handles_labels()
h2, l2 = b_.get_legend_handles_labels()
a_.legend(h1 + h2, l1 + l2, loc="center left", fontsize=8)
a_.set_title(f"rank and error vs tolerance ({pos.shape[0]} charges)")

a_ = ax[1, 1]
a_.semilogx(n_lat, r_lat, "o-", label="lattices L^3, 5 % vacancies")
a_.semilogx(n_rand, r_rand, "s-", label="random charges")
nn_ = np.geomspace(min(n_lat), max(n_rand), 100)
a_.semilogx(nn_, icpt + slope * np.log(nn_), "k:", label=f"{icpt:.1f} + {slope:.2f} ln N (fit, lattices)")
a_.set_xlabel("number of particles N (log scale)")
a_.set_ylabel("Tucker rank (max over modes)")
a_.set_title(f"rank vs N in a fixed box, rtol = {rank_tol:.0e}")
a_.grid(True, which="major", alpha=0.3)
a_.legend(fontsize=8)
fig.tight_layout()

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the example from its folder without __file__
    here = Path.cwd()
out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
path = out_dir / "plot_lattice_potential.png"
fig.savefig(path, dpi=110)
print(f"saved {os.path.relpath(path)}")
