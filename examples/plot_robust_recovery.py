"""
Robust low-rank recovery by the sub-gradient method
===================================================

Phase transitions of the sub-gradient method (Ma & Fattahi, with the
library's default preconditioned steps) for recovering a
PSD low-rank matrix from Gaussian measurements with gross outliers: outlier
fraction ``p`` against the oversampling ``m / (d r)``, success meaning a
relative error below ``1e-2``. Panels vary the over-estimated rank
``r' in {r, 3r, d}`` (at ``alpha = 1e-3``) and the initial scale
``alpha in {1e-1, 1e-3, 1e-6}`` (at ``r' = 3r``); white cells are
recoveries, black ones failures, so the boundary between them is the phase
transition: more outliers need more measurements, and a larger ``r'`` needs
a few more. With the preconditioned steps a large initial scale costs
little: on the full grid ``alpha = 1e-1`` fails in only a few more cells
next to the boundary than ``alpha = 1e-3`` (the theory of the plain method,
``precondition=False``, asks for a small ``alpha``). The last panel shows the relative error against the
iteration (log scale) next to the l2 factored-gradient baseline, which the
outliers derail. All quantities are dimensionless.

The default grid (d = 20, r = 2, one seed, 600 iterations) runs in about
20 s on one core; with a single seed, single cells can flip. ``--full`` runs
the grid of the paper's figure (d = 50, r = 3, p in {0, 0.05, ..., 0.5},
m/(dr) in {5, 10, 20, 40, 80}, 10 seeds, 3000 iterations), which takes hours
on a laptop; ``--panels 0,1`` computes only some panels, ``--jobs N`` spreads
a panel's cells over N processes, and ``--grids DIR`` stores each computed
panel (and each finished cell, so a stopped run resumes), so panels can run
in separate processes and a last run draws them all from the stored grids.

Run ``python plot_robust_recovery.py [output folder] [--full]`` (or set
``TENSORAPPROX_FIGURES``); the PNG goes next to this script by default.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tensorapprox.completion.operators import GaussianSensing, corrupt  # noqa: E402
from tensorapprox.completion.subgradient import subgradient_recover  # noqa: E402


def psd_truth(d, r, seed):
    """A random PSD matrix of rank ``r`` with unit Frobenius norm."""
    U = np.random.default_rng(seed).standard_normal((d, r))
    X = U @ U.T
    return X / np.linalg.norm(X)


def success_rate(d, r, p, ratio, rank, alpha, seeds, max_iter):
    wins = 0
    for seed in range(seeds):
        X = psd_truth(d, r, 1000 + seed)
        op = GaussianSensing(d, int(ratio * d * r), random_state=seed)
        y = corrupt(op.apply(X), p, kind="outlier", scale=100.0, random_state=seed + 1)
        res = subgradient_recover(op, y, rank, alpha=alpha, max_iter=max_iter, random_state=seed + 2, X_true=X)
        wins += res.error_history[-1] < 1e-2
    return wins / seeds


def _cell(args):
    return success_rate(*args)


def load_or_compute_grid(folder, k, d, r, ps, ratios, rank, alpha, seeds, max_iter, jobs=1):
    """Success grid of panel ``k``, read from ``folder`` when stored there for the same grid.

    With a folder, every finished cell is also written to ``panel<k>.partial.npz``
    (unfinished cells NaN), so a stopped run resumes where it was. ``jobs > 1``
    computes cells in that many processes, the costly (large m) cells first.
    """
    key = dict(d=d, r=r, rank=rank, alpha=alpha, seeds=seeds, max_iter=max_iter)
    ratios = np.asarray(ratios)

    def stored(path):
        if path is None or not path.exists():
            return None
        with np.load(path, allow_pickle=False) as f:
            same = (all(float(f[name]) == float(value) for name, value in key.items())
                    and np.array_equal(f["ps"], ps) and np.array_equal(f["ratios"], ratios))
            return f["grid"].copy() if same else None

    path = None if folder is None else Path(folder) / f"panel{k}.npz"
    partial = None if folder is None else Path(folder) / f"panel{k}.partial.npz"
    grid = stored(path)
    if grid is not None:
        return grid
    grid = stored(partial)
    if grid is None:
        grid = np.full((len(ps), len(ratios)), np.nan)
    todo = sorted(((i, j) for i in range(len(ps)) for j in range(len(ratios)) if np.isnan(grid[i, j])),
                  key=lambda ij: -ratios[ij[1]])
    args = [(d, r, ps[i], ratios[j], rank, alpha, seeds, max_iter) for i, j in todo]

    def save(target):
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez(target, grid=grid, ps=ps, ratios=ratios, **key)

    if jobs > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            for (i, j), rate in zip(todo, pool.map(_cell, args)):
                grid[i, j] = rate
                save(partial)
    else:
        for (i, j), a in zip(todo, args):
            grid[i, j] = _cell(a)
            save(partial)
    save(path)
    if partial is not None and partial.exists():
        partial.unlink()
    return grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the grid of the figure (slow)")
    parser.add_argument("out_dir", nargs="?", default=None,
                        help="folder for the PNG (default: $TENSORAPPROX_FIGURES, else next to this script)")
    parser.add_argument("--out", default=None, help="PNG file to write (overrides out_dir)")
    parser.add_argument("--d", type=int, default=None)
    parser.add_argument("--r", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--panels", default=None,
                        help="comma-separated panel numbers to compute (0-4, default all); the others stay blank")
    parser.add_argument("--grids", default=None,
                        help="folder of per-panel success grids (.npz): a stored panel of the same grid is "
                             "read instead of recomputed, a computed one is stored; lets the panels run in "
                             "separate processes; finished cells are kept in panel<k>.partial.npz, so a "
                             "stopped run resumes")
    parser.add_argument("--jobs", type=int, default=1, help="processes computing the cells of a panel")
    args = parser.parse_args(argv)

    if args.full:
        d, r, seeds, max_iter = 50, 3, 10, 3000
        ps = np.round(np.arange(0.0, 0.501, 0.05), 2)
        ratios = [5, 10, 20, 40, 80]
    else:
        d, r, seeds, max_iter = 20, 2, 1, 600
        ps = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
        ratios = [2, 4, 6, 10, 16]
    d = args.d or d
    r = args.r or r
    seeds = args.seeds or seeds
    max_iter = args.max_iter or max_iter

    panels = [(f"r' = r = {r}", r, 1e-3), (f"r' = 3r = {3 * r}", 3 * r, 1e-3), (f"r' = d = {d}", d, 1e-3),
              (f"alpha = 1e-1, r' = {3 * r}", 3 * r, 1e-1), (f"alpha = 1e-6, r' = {3 * r}", 3 * r, 1e-6)]
    chosen = range(len(panels)) if args.panels is None else [int(k) for k in args.panels.split(",")]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    for k, (ax, (title, rank, alpha)) in enumerate(zip(axes.flat, panels)):
        if k not in chosen:
            ax.set_axis_off()
            continue
        grid = load_or_compute_grid(args.grids, k, d, r, ps, ratios, rank, alpha, seeds, max_iter, args.jobs)
        print(title)
        print("   p \\ m/(dr) " + " ".join(f"{q:>5}" for q in ratios))
        for p, row in zip(ps, grid):
            print(f"{p:>12.2f} " + " ".join(f"{v:>5.2f}" for v in row))
        ratios_arr = np.asarray(ratios)
        for p_max, ratio_min in ((0.3, 20), (0.5, 40)):
            cells = grid[np.ix_(ps <= p_max + 1e-9, ratios_arr >= ratio_min)]
            if cells.size:
                print(f"  lowest success rate over p <= {p_max}, m/(dr) >= {ratio_min}: {cells.min():.2f}")
        im = ax.imshow(grid, origin="lower", cmap="gray", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(ratios)), [str(q) for q in ratios])
        ax.set_yticks(range(len(ps)), [f"{p:.2f}" for p in ps])
        ax.set_xlabel("oversampling m / (d r)")
        ax.set_ylabel("outlier fraction p")
        fig.colorbar(im, ax=ax, shrink=0.85, label=f"success rate ({seeds} seed{'s' if seeds > 1 else ''})")
        ax.set_title(title)

    # error against iteration, l1 (several r') next to the l2 baseline
    ax = axes.flat[-1]
    X = psd_truth(d, r, 0)
    op = GaussianSensing(d, 20 * d * r, random_state=0)
    y = corrupt(op.apply(X), 0.2, scale=100.0, random_state=1)
    for rank in (r, 3 * r, d):
        res = subgradient_recover(op, y, rank, max_iter=max_iter, random_state=2, X_true=X)
        ax.semilogy(res.error_history, label=f"l1, r'={rank}")
    res = subgradient_recover(op, y, r, loss="l2", max_iter=max_iter, random_state=2, X_true=X)
    ax.semilogy(res.error_history, "k--", label="l2 baseline")
    ax.set_xlabel("iteration (count)")
    ax.set_ylabel("relative error ||UU^T - X*||_F / ||X*||_F")
    ax.set_title(f"p = 0.2, m = 20 d r (d = {d})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if args.out is not None:
        out = Path(args.out)
    else:
        try:
            here = Path(__file__).resolve().parent
        except NameError:  # sphinx-gallery runs the example from its folder without __file__
            here = Path.cwd()
        out = Path(args.out_dir or os.environ.get("TENSORAPPROX_FIGURES", here)) / "plot_robust_recovery.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"saved {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
