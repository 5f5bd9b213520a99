"""Chebyshev-Tucker benchmarks: evaluation, particle potentials, construction.

Every number is a median of several runs; ratios are measured side by side
in this one process (machines are shared and noisy).

1. Evaluation of a rank-(20, 20, 20), m = 129 approximant at 10^6 random
   points against (a) the same contraction with ``numpy.polynomial.chebyshev``
   values and ``einsum``, (b) one (10^6 x 129) @ (129 x 20) matmul per mode.
   Targets: >= 5x faster than (a), within 3x of (b).
2. Long-range potential of N = 10^4 random charges (rel. error <= 1e-6):
   construction + evaluation at M = 10^5 points against ``direct_potential``
   at the same points. Target: >= 50x faster.
3. Construction against a grid-based route (sample on a uniform n^3 grid,
   ``st_hosvd``): time and ranks.

Usage: ``python benchmarks/bench_chebtucker.py [--quick] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.polynomial.chebyshev as npc

import tensorapprox.chebtucker as ct
import tensorapprox.particles as tp
from tensorapprox.tucker import st_hosvd


def median_time(fn, repeat):
    ts, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), out


def row(name, t, extra=""):
    print(f"  {name:<52s} {t:10.4f} s  {extra}")


def bench_evaluation(n_points, repeat, repeat_anchor):
    print(f"\n[1] evaluation: ranks (20, 20, 20), m = 129, {n_points:,} points (median of {repeat}; "
          f"numpy anchor: median of {repeat_anchor})")
    rng = np.random.default_rng(0)
    m, r = 129, 20
    factors = [np.linalg.qr(rng.standard_normal((m, r)))[0] / (1 + np.arange(m))[:, None] for _ in range(3)]
    core = rng.standard_normal((r, r, r))
    F = ct.ChebTucker(core, factors, [(-1, 1)] * 3)
    pts = rng.uniform(-1, 1, (n_points, 3))
    F(pts[:100])  # compile / load the kernel

    t_ours, v_ours = median_time(lambda: F(pts), repeat)

    def numpy_anchor(chunk=100_000):
        out = np.empty(n_points)
        for lo in range(0, n_points, chunk):
            p = pts[lo:lo + chunk]
            Bs = [npc.chebvander(p[:, k], m - 1) @ factors[k] for k in range(3)]
            out[lo:lo + chunk] = np.einsum("ia,ib,ic,abc->i", *Bs, core, optimize=True)
        return out

    t_np, v_np = median_time(numpy_anchor, repeat_anchor)
    V = rng.uniform(-1, 1, (n_points, m))
    t_mm, _ = median_time(lambda: [V @ A for A in factors], repeat)
    err = np.max(np.abs(v_ours - v_np)) / np.max(np.abs(v_np))
    row("ChebTucker.__call__ (Numba kernel)", t_ours, f"{n_points / t_ours:,.0f} points/s")
    row("numpy.polynomial.chebyshev + einsum", t_np, f"{n_points / t_np:,.0f} points/s  (max rel diff {err:.1e})")
    row("3 matmuls (n x 129) @ (129 x 20)", t_mm, "")
    print(f"  ratio numpy-anchor / ours      = {t_np / t_ours:6.2f}   (target >= 5)")
    print(f"  ratio ours / matmul-per-mode   = {t_ours / t_mm:6.2f}   (target <= 3)")


def bench_particles(n_charges, n_points, repeat, rtol, degree):
    print(f"\n[2] long-range potential: N = {n_charges:,} charges, M = {n_points:,} points, r_c = 0.2, "
          f"rtol = {rtol:g}, degree = {degree} (median of {repeat}; direct sum: 1 run)")
    rng = np.random.default_rng(1)
    pos = rng.uniform(-0.6, 0.6, (n_charges, 3))
    q = rng.choice([-1.0, 1.0], n_charges)
    pts = np.random.default_rng(2).uniform(-1, 1, (n_points, 3))
    box = [(-1.0, 1.0)] * 3
    # warm up the kernels
    tp.direct_potential(pts[:10], pos[:10], q[:10], "long_range", r_c=0.2)
    tp.long_range_potential(pos[:10], q[:10], box, r_c=0.2, rtol=rtol, degree=8)(pts[:10])
    tp.long_range_potential(pos[:10], q[:10], box, r_c=0.2, rtol=rtol, degree=8, method="moments")

    t_direct, ref = median_time(lambda: tp.direct_potential(pts, pos, q, "long_range", r_c=0.2), 1)
    row("direct_potential (Numba direct sum)", t_direct, "")
    for method in ("cp", "moments"):
        t_build, F = median_time(lambda: tp.long_range_potential(pos, q, box, r_c=0.2, rtol=rtol, degree=degree,
                                                                 method=method), repeat)
        t_eval, v = median_time(lambda: F(pts), repeat)
        err = np.max(np.abs(v - ref)) / np.max(np.abs(ref))
        row(f"long_range_potential(method={method!r}) construction", t_build, f"ranks {F.ranks}")
        row("  + ChebTucker evaluation at M points", t_eval, f"max rel error {err:.2e}")
        print(f"  ratio direct / (construction + evaluation), {method}: {t_direct / (t_build + t_eval):6.2f}"
              "   (target >= 50)")


def bench_construction(repeat, rtol, n_grid):
    print(f"\n[3] construction of the B3 potential (N = 200 charges, r_c = 0.2), rtol = {rtol:g} "
          f"(median of {repeat})")
    rng = np.random.default_rng(1)
    pos = rng.uniform(-0.6, 0.6, (200, 3))
    q = rng.choice([-1.0, 1.0], 200)
    box = [(-1.0, 1.0)] * 3
    pts = np.random.default_rng(2).uniform(-1, 1, (20000, 3))
    exact = tp.direct_potential(pts, pos, q, "long_range", r_c=0.2)

    def f(x):
        return tp.direct_potential(x.reshape(-1, 3), pos, q, "long_range", r_c=0.2).reshape(x.shape[:-1])

    def grid_route():
        g = np.linspace(-1, 1, n_grid)
        X = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1)
        return st_hosvd(f(X), rtol=rtol)

    t_fn, F = median_time(lambda: ct.ChebTucker.from_function(f, box, degree=64, rtol=rtol), repeat)
    t_cp, G = median_time(lambda: tp.long_range_potential(pos, q, box, r_c=0.2, rtol=rtol, degree=64), repeat)
    t_mo, H = median_time(lambda: tp.long_range_potential(pos, q, box, r_c=0.2, rtol=rtol, degree=64,
                                                          method="moments"), repeat)
    t_grid, T = median_time(grid_route, repeat)
    scale = np.max(np.abs(exact))
    e_fn = np.max(np.abs(F(pts) - exact)) / scale
    e_cp = np.max(np.abs(G(pts) - exact)) / scale
    row("ChebTucker.from_function (65^3 Chebyshev samples)", t_fn, f"ranks {F.ranks}, err {e_fn:.1e}")
    row("long_range_potential (CP route, m = 65)", t_cp, f"ranks {G.ranks}, err {e_cp:.1e}")
    e_mo = np.max(np.abs(H(pts) - exact)) / scale
    row("long_range_potential (moments route, m = 65)", t_mo, f"ranks {H.ranks}, err {e_mo:.1e}")
    row(f"uniform {n_grid}^3 samples + st_hosvd (grid only)", t_grid, f"ranks {T.ranks}, no off-grid values")
    print(f"  ratio grid / CP route = {t_grid / t_cp:6.2f};  grid / moments route = {t_grid / t_mo:6.2f};  "
          f"grid / function route = {t_grid / t_fn:6.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sections", default="123", help="which sections to run, e.g. 23")
    args = ap.parse_args()
    quick = args.quick
    if "1" in args.sections:
        if quick:
            bench_evaluation(100_000, args.repeat, args.repeat)
        else:
            bench_evaluation(1_000_000, args.repeat, max(1, args.repeat // 3))
    if "2" in args.sections:
        if quick:
            bench_particles(1_000, 10_000, args.repeat, 5e-7, 64)
        else:
            bench_particles(10_000, 100_000, args.repeat, 5e-7, 64)
    if "3" in args.sections:
        bench_construction(args.repeat, 1e-5, 65)


if __name__ == "__main__":
    main()
