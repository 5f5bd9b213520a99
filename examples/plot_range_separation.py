"""
Range separation of the Newton kernel
=====================================

The sinc quadrature of ``1/r = 2/sqrt(pi) int exp(-r^2 e^{2s} + s) ds`` is an
exponential sum: a sum of Gaussians, each separable in x, y, z. Its widest
terms form the smooth long-range part, the rest the short-range part. The
closed-form long-range kernel is ``erf(r / r_c) / r``.

Left: 1-D profiles of the kernel, its long- and short-range parts.
Right: the error of a 3-D Chebyshev-Tucker approximation of the long-range
kernel ``erf(|x| / r_c) / |x|`` on ``[-1, 1]^3`` against the degree.
Atomic units: distances in bohr, the kernel (the potential of a unit charge)
in hartree per e.

Run ``python plot_range_separation.py [output folder]`` (or set
``TENSORAPPROX_FIGURES``); the PNG goes next to this script by default.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tensorapprox.chebtucker as ct  # noqa: E402
import tensorapprox.particles as tp  # noqa: E402

r_c = 0.2
K = tp.newton_exp_sum(rtol=1e-8, r_min=1e-3, r_max=2 * np.sqrt(3))
long, short = K.split(r_c)
print(f"{K.n_terms}-term sinc sum of 1/r: {long.n_terms} long-range terms, {short.n_terms} short-range terms")
r = np.geomspace(1e-3, 3.0, 600)

fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
ax[0].loglog(r, 1 / r, "k-", lw=2, label="1/r")
ax[0].loglog(r, long(r), "C0-", label=f"long range ({long.n_terms} terms)")
ax[0].loglog(r, np.abs(short(r)) + 1e-16, "C1-", label=f"short range ({short.n_terms} terms)")
ax[0].loglog(r, tp.long_range_kernel(r, r_c), "C2--", label=f"erf(r/{r_c})/r")
ax[0].set_ylim(1e-8, 2e3)
ax[0].set_xlabel("distance r [bohr]")
ax[0].set_ylabel("kernel value [hartree / e]")
ax[0].set_title(f"Newton kernel, {K.n_terms}-term sinc exponential sum, r_c = {r_c} bohr")
ax[0].grid(True, which="major", alpha=0.3)
ax[0].legend(fontsize=8)


def f(x):
    return tp.long_range_kernel(np.sqrt(np.sum(x * x, axis=-1)), r_c)


pts = np.random.default_rng(0).uniform(-1, 1, (2000, 3))
exact = f(pts)
degrees = [8, 16, 24, 32, 48]
errors = []
for g in degrees:
    F = ct.ChebTucker.from_function(f, [(-1, 1)] * 3, degree=g, rtol=1e-10, method="st_hosvd")
    errors.append(np.max(np.abs(F(pts) - exact)) / np.max(np.abs(exact)))
    print(f"degree {g}: Tucker ranks {F.ranks}, max relative error {errors[-1]:.1e}")
ax[1].semilogy(degrees, errors, "o-")
ax[1].set_xlabel("Chebyshev degree per mode (polynomial degree)")
ax[1].set_ylabel("max |error| / max |K| at 2000 random points")
ax[1].set_title(f"Chebyshev-Tucker of erf(|x|/{r_c})/|x| on [-1, 1]^3 bohr^3")
ax[1].grid(True, which="both", alpha=0.3)
fig.tight_layout()

try:
    _here = os.path.dirname(os.path.abspath(__file__))
except NameError:  # sphinx-gallery runs the script without __file__, in its folder
    _here = os.getcwd()
out_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", _here)
os.makedirs(out_dir, exist_ok=True)
path = os.path.join(out_dir, "plot_range_separation.png")
fig.savefig(path, dpi=110)
print(f"saved {os.path.relpath(path)}")
