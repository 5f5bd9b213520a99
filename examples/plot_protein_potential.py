"""
Long-range potential of a 500-atom protein-like system
======================================================

The long-range part of the electrostatic potential of a 500-atom system in
the range-separated canonical format (CP rank 743 on a 256^3 grid over a
50 Angstrom box; data of the hybrid Chebyshev-Tucker paper, arXiv:2503.01696)
is converted to the Chebyshev-Tucker format by the paper's Algorithm 4
(``ChebTucker.from_cp``) with 129 Chebyshev points per mode.

Left: the potential on the middle z-slice of the grid (tolerance 1e-7).
Middle: its error against the CP tensor itself on that slice (log scale).
Right: Tucker ranks and the maximum error on the slice against the
tolerance; below about 1e-6 the error levels off at the accuracy of the
spline transfer from the 256-point grid to the Chebyshev points, while the
ranks keep growing. The potential is shown in the units of the data file
(arbitrary units); lengths in Angstrom.

The data file comes from the shared data folder beside the repository
(``../shared/data/chebtucker/``, or the folder in
``TENSORAPPROX_SHARED_DATA``); without it the example prints a message and
draws an empty figure. Run ``python plot_protein_potential.py [output folder]``.
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tensorapprox.chebtucker as ct  # noqa: E402

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the example from its folder without __file__
    here = Path.cwd()
data_dir = Path(os.environ.get("TENSORAPPROX_SHARED_DATA", here.parents[1] / "shared" / "data"))
path = data_dir / "chebtucker" / "protein_n500_rs_longrange_cp_n256.npz"
have_data = path.is_file()
if not have_data:
    print(f"data file {path} not found; set TENSORAPPROX_SHARED_DATA to the shared data folder. "
          "Skipping the computation.")
else:
    with np.load(path, allow_pickle=False) as fh:
        w = fh["weights"]
        fs = [fh["factor_x"], fh["factor_y"], fh["factor_z"]]
        n = int(fh["n"])
        h = float(fh["h"])
    grid = -1.0 + (np.arange(n) + 0.5) * 2.0 / n
    iz = n // 2
    # the CP tensor on the middle z-slice, the reference
    exact = np.einsum("r,ir,jr->ij", w * fs[2][iz], fs[0], fs[1])
    print(f"CP rank {w.size}, {n}^3 grid, cell {h:.4f} Angstrom")

# %%
# Convert at a sweep of tolerances; keep the one at 1e-7 for the maps.
if have_data:
    tols = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]
    ranks, errors = [], []
    for tol in tols:
        T = ct.ChebTucker.from_cp(w, fs, grid, [(-1, 1)] * 3, rtol=tol, degree=128)
        approx_t = T.on_grid(grid, grid, grid[iz:iz + 1]).full()[:, :, 0]
        ranks.append(T.ranks)
        errors.append(np.max(np.abs(approx_t - exact)) / np.max(np.abs(exact)))
        print(f"rtol={tol:.0e}  ranks={T.ranks}  max relative error on the slice {errors[-1]:.2e}")
        if tol == 1e-7:
            F, approx = T, approx_t
    err = np.abs(approx - exact) / np.max(np.abs(exact))
    print(f"rtol=1e-7: Tucker ranks {F.ranks}, {F.nbytes / 1e6:.2f} MB "
          f"(CP input {8 * (w.size + 3 * fs[0].size) / 1e6:.2f} MB), max relative error on the slice {err.max():.2e}")

# %%
# Slice, error map, rank and error against the tolerance.
fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
if not have_data:
    for a_ in ax:
        a_.set_axis_off()
    ax[1].text(0.5, 0.5, "protein data file not found", ha="center", va="center")
else:
    half = 0.5 * n * h
    ext = (-half, half, -half, half)
    im = ax[0].imshow(approx.T, origin="lower", extent=ext, cmap="RdBu_r")
    ax[0].set_title(f"long-range potential, z = {grid[iz] * half:.2f} Angstrom (ranks {F.ranks})")
    fig.colorbar(im, ax=ax[0], shrink=0.85, label="potential [arbitrary units of the data]")
    im = ax[1].imshow(np.log10(err.T + 1e-18), origin="lower", extent=ext, cmap="viridis")
    ax[1].set_title(f"error vs the CP tensor, rtol = 1e-7 (max {err.max():.1e})")
    fig.colorbar(im, ax=ax[1], shrink=0.85, label="log10(|error| / max|phi|)")
    for a_ in ax[:2]:
        a_.set_xlabel("x [Angstrom]")
        a_.set_ylabel("y [Angstrom]")
    a_ = ax[2]
    a_.loglog(tols, errors, "o-", color="C0", label="max relative error (slice)")
    a_.loglog(tols, tols, "k:", label="rtol")
    a_.invert_xaxis()
    a_.set_xlabel("Tucker tolerance rtol")
    a_.set_ylabel("max |error| / max |phi|")
    a_.grid(True, which="major", alpha=0.3)
    b_ = a_.twinx()
    for k, marker in enumerate("s^v"):
        b_.semilogx(tols, [r[k] for r in ranks], marker + "--", color=f"C{k + 1}", ms=5, label=f"rank, mode {k + 1}")
    b_.set_ylabel("Tucker rank")
    h1, l1 = a_.get_legend_handles_labels()
    h2, l2 = b_.get_legend_handles_labels()
    a_.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper center")
    a_.set_title("rank and error vs tolerance")
fig.tight_layout()

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
out = out_dir / "plot_protein_potential.png"
fig.savefig(out, dpi=110)
print(f"saved {os.path.relpath(out)}")
