"""
Long-range potential of a 500-atom protein-like system
======================================================

The long-range part of the electrostatic potential of a 500-atom system in
the range-separated canonical format (CP rank 743 on a 256^3 grid over a
50 Angstrom box; data of the hybrid Chebyshev-Tucker paper, arXiv:2503.01696)
is converted to the Chebyshev-Tucker format by the paper's Algorithm 4
(``ChebTucker.from_cp``) with 129 Chebyshev points per mode and tolerance
1e-7. Left: the potential on the middle z-slice of the grid; right: the
error against the CP tensor itself.

The data file comes from the shared data folder beside the repository
(``../shared/data/chebtucker/``, or the folder in
``TENSORAPPROX_SHARED_DATA``). Run
``python plot_protein_potential.py [output folder]``.
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tensorapprox.chebtucker as ct  # noqa: E402

data_dir = Path(os.environ.get("TENSORAPPROX_SHARED_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))
path = data_dir / "chebtucker" / "protein_n500_rs_longrange_cp_n256.npz"
if not path.exists():
    sys.exit(f"data file {path} not found; set TENSORAPPROX_SHARED_DATA to the shared data folder")
with np.load(path, allow_pickle=False) as fh:
    w = fh["weights"]
    fs = [fh["factor_x"], fh["factor_y"], fh["factor_z"]]
    n = int(fh["n"])
    h = float(fh["h"])
grid = -1.0 + (np.arange(n) + 0.5) * 2.0 / n

F = ct.ChebTucker.from_cp(w, fs, grid, [(-1, 1)] * 3, rtol=1e-7, degree=128)
iz = n // 2
exact = np.einsum("r,ir,jr->ij", w * fs[2][iz], fs[0], fs[1])
approx = F.on_grid(grid, grid, grid[iz:iz + 1]).full()[:, :, 0]
err = np.abs(approx - exact) / np.max(np.abs(exact))
print(f"Tucker ranks {F.ranks}, {F.nbytes / 1e6:.2f} MB (CP input {8 * (w.size + 3 * fs[0].size) / 1e6:.2f} MB), "
      f"max relative error on the slice {err.max():.2e}")

half = 0.5 * n * h
fig, ax = plt.subplots(1, 2, figsize=(11, 4.5))
im = ax[0].imshow(approx.T, origin="lower", extent=(-half, half, -half, half), cmap="RdBu_r")
ax[0].set_title(f"long-range potential, middle z-slice\nranks {F.ranks}")
ax[0].set_xlabel("x [Angstrom]")
fig.colorbar(im, ax=ax[0], shrink=0.8)
im = ax[1].imshow(np.log10(err.T + 1e-18), origin="lower", extent=(-half, half, -half, half), cmap="viridis")
ax[1].set_title(f"log10 relative error (max {err.max():.1e})")
ax[1].set_xlabel("x [Angstrom]")
fig.colorbar(im, ax=ax[1], shrink=0.8)
fig.tight_layout()

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", os.path.dirname(
    os.path.abspath(__file__)))
os.makedirs(out_dir, exist_ok=True)
out = os.path.join(out_dir, "plot_protein_potential.png")
fig.savefig(out, dpi=110)
print(f"saved {out}")
