"""
Out-of-core Tucker compression with Dask
========================================

A tensor that is never held whole: each block of a smooth low-rank field
plus noise is generated on demand (``map_blocks``), and ``st_hosvd`` reads
it block by block. The Gram matrix of the first unfolding is a sum over
fibres of blocks (one pass), the projection onto its leading eigenvectors is
a second pass, and the projected tensor is small enough to finish in memory.
The example caps the memory it allows itself (Dask configuration
``tensorapprox.max-block-bytes`` and ``tensorapprox.in-memory-bytes``) below
the size of the tensor.

Left: the leading singular values of each unfolding (those of the core's
unfoldings; the noise floor shows where the field ends). Right: the
relative error of the out-of-core result against the rank, compared with the
same computation in memory on the same data (at this size it still fits).

Run ``python plot_out_of_core_tucker.py [output folder] [--n N]``; with
``--n 1200`` the tensor is 1200^3 float32 (6.9 GB), far beyond the caps,
and the in-memory comparison is skipped.
"""

import argparse
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")
import dask  # noqa: E402
import dask.array as da  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tensorapprox as ta  # noqa: E402

try:
    _here = os.path.dirname(os.path.abspath(__file__))
except NameError:  # sphinx-gallery runs the script without __file__ (and with an empty __doc__), in its folder
    _here = os.getcwd()
parser = argparse.ArgumentParser(description="Out-of-core Tucker compression with Dask")
parser.add_argument("out", nargs="?", default=os.environ.get("TENSORAPPROX_FIGURES", _here))
parser.add_argument("--n", type=int, default=192, help="side of the cubic tensor (default 192)")
parser.add_argument("--chunk", type=int, default=None, help="chunk side (default n // 6)")
parser.add_argument("--rank", type=int, default=10)
parser.add_argument("--noise", type=float, default=1e-3, help="standard deviation of the noise")
parser.add_argument("--no-plot", action="store_true", help="skip the rank sweep and the figure")
parser.add_argument("--floor", action="store_true",
                    help="also time one plain blockwise reduction over the tensor (the floor of reading it once)")
args = parser.parse_args([a for a in sys.argv[1:] if not a.endswith(".py")] if "sphinx_gallery" not in sys.modules else [])

n, rank = args.n, args.rank
chunk = args.chunk or max(1, n // 6)
FIELD_RANK = 6  # the smooth field has multilinear rank 6; noise fills the rest


def field_factor(x, q):
    """Smooth 1-D basis functions: a decaying family of cosines on [0, 1]."""
    return np.cos(np.pi * (q + 0.5) * x) * 0.6**q


core = np.random.default_rng(7).standard_normal((FIELD_RANK,) * 3)


def block(block_info=None):
    """One block of the field plus noise, generated from its location alone."""
    info = block_info[None]
    (i0, i1), (j0, j1), (k0, k1) = info["array-location"]
    grids = [np.arange(a, b) / (n - 1) for a, b in ((i0, i1), (j0, j1), (k0, k1))]
    fac = [field_factor(g[:, None], np.arange(FIELD_RANK)[None, :]) for g in grids]
    F = ta.TuckerTensor(core, fac).full()
    seed = [7, *info["chunk-location"]]
    noise = np.random.default_rng(seed).standard_normal(F.shape, dtype=np.float32)
    return (F + args.noise * noise).astype(np.float32)


def relative_error(X, T):
    """``||X - T||_F / ||X||_F`` in float64, block by block (``T`` is never formed whole)."""

    def sq(b, block_info=None):
        loc = block_info[0]["array-location"]
        fac = [U[a:e] for U, (a, e) in zip(T.factors, loc)]
        Tb = ta.TuckerTensor(T.core.astype(np.float64), [f.astype(np.float64) for f in fac]).full()
        b = b.astype(np.float64)
        return np.array([[[np.sum((b - Tb) ** 2), np.sum(b * b)]]])

    parts = da.map_blocks(sq, X, chunks=((1,) * X.numblocks[0], (1,) * X.numblocks[1], (2,) * X.numblocks[2]),
                          dtype=np.float64)
    parts = parts.sum(axis=(0, 1)).compute().reshape(-1, 2).sum(axis=0)
    return float(np.sqrt(parts[0] / parts[1]))


X = da.map_blocks(block, chunks=((chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ()),) * 3,
                  dtype=np.float32)
allowed = min(max(X.nbytes // 8, 8 << 20), 256 << 20)  # at most an eighth of the tensor, 256 MiB
print(f"tensor {X.shape} float32, {X.nbytes / 2**30:.2f} GiB in {X.npartitions} blocks; "
      f"memory caps {allowed / 2**20:.0f} MiB per block and for in-memory intermediates")

with dask.config.set({"tensorapprox.max-block-bytes": allowed, "tensorapprox.in-memory-bytes": allowed}):
    t0 = time.perf_counter()
    T = ta.st_hosvd(X, rank=rank)
    t_ooc = time.perf_counter() - t0
err = relative_error(X, T)
print(f"out-of-core st_hosvd rank {T.ranks}: {t_ooc:.1f} s, relative error {err:.3e}, "
      f"compression ratio {T.compression_ratio:.0f}")
try:  # peak resident memory of this process so far (Unix)
    import resource

    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
except ImportError:
    pass
if args.floor:
    t0 = time.perf_counter()
    X.sum(dtype=np.float64).compute()
    t_floor = time.perf_counter() - t0
    print(f"floor (one blockwise reduction over X): {t_floor:.1f} s; st_hosvd / floor = {t_ooc / t_floor:.2f}")

if not args.no_plot:
    # singular values of each unfolding, from the core (orthonormal factors)
    C = T.core.astype(np.float64)
    spectra = [np.linalg.svd(ta.unfold(C, k), compute_uv=False) for k in range(3)]
    ranks = sorted({max(1, rank * j // 5) for j in (1, 3, 5)})
    errs_ooc, errs_mem = [], []
    Xmem = X.compute() if X.nbytes < 2**30 else None
    with dask.config.set({"tensorapprox.max-block-bytes": allowed, "tensorapprox.in-memory-bytes": allowed}):
        for r in ranks:
            errs_ooc.append(relative_error(X, ta.st_hosvd(X, rank=r)))
            if Xmem is not None:
                errs_mem.append(relative_error(X, ta.st_hosvd(Xmem, rank=r)))
    if errs_mem:
        print("largest |error(out-of-core) - error(in memory)| over the ranks:",
              f"{max(abs(a - b) for a, b in zip(errs_ooc, errs_mem)):.1e}")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for k, s in enumerate(spectra):
        axes[0].semilogy(np.arange(1, s.size + 1), s / s[0], "o-", label=f"mode {k + 1}")
    axes[0].set_xlabel("index i of the singular value")
    axes[0].set_ylabel(r"$\sigma_i / \sigma_1$ (dimensionless)")
    axes[0].set_title(f"unfolding spectra, {n}$^3$ tensor out of core")
    axes[0].legend()
    axes[1].semilogy(ranks, errs_ooc, "o-", label="out of core (Dask)")
    if errs_mem:
        axes[1].semilogy(ranks, errs_mem, "x--", label="in memory (numpy)")
    axes[1].set_xlabel("multilinear rank (r, r, r)")
    axes[1].set_ylabel(r"relative error $\|X - T\|_F / \|X\|_F$")
    axes[1].set_title("error against rank")
    axes[1].legend()
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "out_of_core_tucker.png")
    fig.savefig(path, dpi=110)
    print("figure:", os.path.relpath(path))
