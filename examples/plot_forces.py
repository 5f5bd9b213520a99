"""
Forces from the gradient of the long-range potential
====================================================

The long-range electrostatic potential ``phi(x) = sum_j q_j erf(|x - x_j| /
r_c) / |x - x_j|`` of 500 random unit charges in a 20-bohr box is built in
the Chebyshev-Tucker format (:func:`tensorapprox.long_range_potential`); its
gradient is exact for the approximant (:meth:`ChebTucker.gradient`
differentiates the Chebyshev coefficient factors), so the long-range force on
charge ``i`` is ``F_i = -q_i grad phi(x_i)``. The kernel is smooth with zero
slope at ``r = 0``, so a charge's own term adds no force and no exclusion is
needed. The reference is the direct O(N^2) sum of the analytic kernel
derivative. Atomic units: lengths in bohr, charges in e, potential in
hartree/e, forces in hartree/bohr.

Top left: in-plane forces on the charges of the slab ``|z| < 2`` bohr over the
potential on ``z = 0``. Top right: predicted against reference force
components. Bottom left: per-particle force error against the force
magnitude for three tolerances. Bottom right: maximum relative error of
forces and potential, and the Tucker rank, against the tolerance.

Run ``python plot_forces.py [output folder]`` (or set ``TENSORAPPROX_FIGURES``).
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import erf  # noqa: E402

import tensorapprox.particles as tp  # noqa: E402

half, r_c = 10.0, 2.0  # box half-width and range-separation radius, bohr
box = [(-half, half)] * 3
pos, q = tp.random_cluster(500, [(-0.8 * half, 0.8 * half)] * 3, random_state=0)


def direct_forces(positions, charges, r_c):
    """Reference long-range forces ``-q_i sum_{j != i} q_j K'(r_ij) (x_i - x_j) / r_ij``."""
    d = positions[:, None, :] - positions[None, :, :]
    r = np.sqrt(np.sum(d * d, axis=-1))
    rs = np.where(r > 0, r, 1.0)
    dK = 2.0 / (np.sqrt(np.pi) * r_c) * np.exp(-(rs / r_c) ** 2) / rs - erf(rs / r_c) / rs**2
    g = np.where(r > 0, dK / rs, 0.0)
    return -charges[:, None] * np.einsum("ij,ijk,j->ik", g, d, charges)


ref = direct_forces(pos, q, r_c)
ref_pot = tp.direct_potential(pos, pos, q, "long_range", r_c=r_c)
f_max = np.abs(ref).max()

# %%
# Chebyshev-Tucker potentials at a sweep of tolerances; forces by the gradient.
tols = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]
force_err, pot_err, ranks, forces = [], [], [], {}
for tol in tols:
    F = tp.long_range_potential(pos, q, box, r_c=r_c, rtol=tol, degree=48, method="moments")
    pred = -q[:, None] * F.gradient(pos)
    forces[tol] = pred
    force_err.append(np.abs(pred - ref).max() / f_max)
    pot_err.append(np.abs(F(pos) - ref_pot).max() / np.abs(ref_pot).max())
    ranks.append(max(F.ranks))
    print(f"rtol={tol:.0e}  ranks={F.ranks}  max rel force error {force_err[-1]:.2e}  "
          f"potential error {pot_err[-1]:.2e}")
print(f"largest reference force {f_max:.3f} hartree/bohr")

fig, ax = plt.subplots(2, 2, figsize=(12, 9.5))

# In-plane forces on the charges near z = 0, over the potential slice.
tol_show = 1e-5
g = np.linspace(-half, half, 121)
slice_ = F.on_grid(g, g, np.array([0.0])).full()[:, :, 0]
a = ax[0, 0]
vmax = np.abs(slice_).max()
im = a.imshow(slice_.T, origin="lower", extent=(-half, half, -half, half), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
fig.colorbar(im, ax=a, shrink=0.85, label="long-range potential [hartree / e]")
slab = np.abs(pos[:, 2]) < 2.0
for sign, color, label in ((1, "k", "q = +1 e"), (-1, "w", "q = -1 e")):
    m = slab & (q == sign)
    a.scatter(pos[m, 0], pos[m, 1], c=color, edgecolors="k", s=18, label=label, zorder=3)
a.quiver(pos[slab, 0], pos[slab, 1], forces[tol_show][slab, 0], forces[tol_show][slab, 1], color="0.2",
         zorder=4, width=0.004)
a.set_xlabel("x [bohr]")
a.set_ylabel("y [bohr]")
a.set_title(f"forces (x, y) on the {slab.sum()} charges with |z| < 2 bohr, rtol = {tol_show:.0e}")
a.legend(loc="lower left", fontsize=8)

# Predicted against reference components.
a = ax[0, 1]
for k, c in enumerate("xyz"):
    a.plot(ref[:, k], forces[tol_show][:, k], ".", ms=3, label=f"F_{c}")
a.plot([-f_max, f_max], [-f_max, f_max], "k--", lw=1, label="y = x")
a.set_xlabel("reference force component [hartree / bohr]")
a.set_ylabel("Chebyshev-Tucker force component [hartree / bohr]")
i = tols.index(tol_show)
a.set_title(f"{3 * len(q)} components, rtol = {tol_show:.0e}: max error {force_err[i]:.1e} x max|F|")
a.legend()

# Per-particle error against the force magnitude.
a = ax[1, 0]
mag = np.linalg.norm(ref, axis=1)
for tol, marker in ((1e-3, "o"), (1e-5, "s"), (1e-7, "^")):
    err = np.linalg.norm(forces[tol] - ref, axis=1)
    a.loglog(mag, err, marker, ms=3, alpha=0.6, label=f"rtol = {tol:.0e}")
a.set_xlabel("|F_ref| [hartree / bohr]")
a.set_ylabel("|F_CT - F_ref| [hartree / bohr]")
a.set_title("force error per particle")
a.grid(True, which="major", alpha=0.3)
a.legend()

# Error and rank against the tolerance.
a = ax[1, 1]
a.loglog(tols, force_err, "o-", label="forces: max |error| / max |F|")
a.loglog(tols, pot_err, "s-", label="potential: max |error| / max |phi|")
a.loglog(tols, tols, "k:", label="rtol")
a.invert_xaxis()
a.set_xlabel("Tucker tolerance rtol")
a.set_ylabel("max relative error")
a.grid(True, which="major", alpha=0.3)
b = a.twinx()
b.semilogx(tols, ranks, "d--", color="C3", label="Tucker rank (max over modes)")
b.set_ylabel("Tucker rank (max over modes)", color="C3")
h1, l1 = a.get_legend_handles_labels()
h2, l2 = b.get_legend_handles_labels()
a.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower left")
a.set_title("accuracy and rank vs tolerance")
fig.tight_layout()

try:
    here = Path(__file__).resolve().parent
except NameError:  # run interactively
    here = Path.cwd()
out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
path = out_dir / "plot_forces.png"
fig.savefig(path, dpi=110)
print(f"saved {os.path.relpath(path)}")
