"""Sub-gradient robust recovery (Ma & Fattahi): speed and accuracy tables.

Usage::

    python benchmarks/bench_subgradient.py speed        # per-iteration cost vs one matvec
    python benchmarks/bench_subgradient.py b1           # figure B1 grid, l1 and l2
    python benchmarks/bench_subgradient.py completion   # n=500 completion with outliers vs altmin
    python benchmarks/bench_subgradient.py noise        # figure B3: dense Gaussian noise
    python benchmarks/bench_subgradient.py all

Timings are medians of several runs measured side by side in one process;
the ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tensorapprox.completion.lowrank import LowRankMatrix
from tensorapprox.completion.operators import EntrySampling, GaussianSensing, corrupt
from tensorapprox.completion.subgradient import subgradient_recover


def _psd(n, r, seed):
    U = np.random.default_rng(seed).standard_normal((n, r))
    X = U @ U.T
    return X / np.linalg.norm(X)


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _per_iteration(op, y, rank, n_steps, repeats):
    """Seconds per step: (median time of 2n steps - median time of n steps) / n, so the one-time
    step and decay estimates at the start of every run cancel."""
    def run(k):
        return lambda: subgradient_recover(op, y, rank, max_iter=k, tol=0.0, random_state=0)
    run(n_steps)()
    t1 = _median_time(run(n_steps), repeats)
    t2 = _median_time(run(2 * n_steps), repeats)
    return (t2 - t1) / n_steps


def speed(repeats: int = 5) -> None:
    d, r, m = 50, 3, 3000
    X = _psd(d, r, 0)
    op = GaussianSensing(d, m, random_state=1)
    y = corrupt(op.apply(X), 0.2, scale=100.0, random_state=2)
    dense = np.random.default_rng(3).standard_normal((m, d * d))
    x = np.random.default_rng(4).standard_normal(d * d)
    n_steps = 100
    print(f"Gaussian sensing d={d}, m={m}: per-iteration cost against one (m x n^2) @ (n^2) matvec")
    print("(iteration: time of 2N steps minus time of N steps, over N = 100, so the one-time setup cancels)")
    print(f"{'rank':>5} {'matvec ms':>10} {'iteration ms':>13} {'ratio':>7}")
    for rank in (3, 50):
        t_mv = _median_time(lambda: dense @ x, 20 * repeats)
        t_it = _per_iteration(op, y, rank, n_steps, repeats)
        t_mv = 0.5 * (t_mv + _median_time(lambda: dense @ x, 20 * repeats))
        print(f"{rank:>5} {1e3 * t_mv:>10.3f} {1e3 * t_it:>13.3f} {t_it / t_mv:>7.2f}")

    n, r = 500, 5
    rng = np.random.default_rng(5)
    rows, cols = np.nonzero(rng.random((n, n)) < 0.3)
    Xc = _psd(n, r, 6) * n
    opc = EntrySampling(rows, cols, (n, n))
    yc = opc.apply(Xc)
    W = rng.standard_normal((n, r))
    print(f"\nEntry sampling n={n}, |Omega|={opc.m}: per-iteration cost against one A(W W^T) + A*(v) W pair")
    print(f"{'rank':>5} {'pair ms':>10} {'iteration ms':>13} {'ratio':>7}")
    for rank in (5, 10):
        Wk = rng.standard_normal((n, rank))
        v = rng.standard_normal(opc.m)

        def pair():
            opc._apply_factored(Wk, Wk)
            opc._adjoint_sym_matmul(v, Wk)

        pair()
        t_pair = _median_time(pair, 20 * repeats)
        t_it = _per_iteration(opc, yc, rank, n_steps, repeats)
        t_pair = 0.5 * (t_pair + _median_time(pair, 20 * repeats))
        print(f"{rank:>5} {1e3 * t_pair:>10.3f} {1e3 * t_it:>13.3f} {t_it / t_pair:>7.2f}")
    del W


def b1() -> None:
    d, r, m = 50, 3, 3000
    X = _psd(d, r, 0)
    op = GaussianSensing(d, m, random_state=1)
    y0 = op.apply(X)
    print("Figure B1: d=50, r=3, m=3000, outliers N(0, 100^2), alpha=1e-3, max_iter=3000")
    print("l1: the default (preconditioned) method; plain: precondition=False, the paper's Algorithm 1")
    print(f"{'p':>4} {'r_':>3} {'l1 error':>10} {'iters':>6} {'it<1e-2':>8} {'it<1e-4':>8} {'plain l1':>10} "
          f"{'l2 error':>10} {'sec':>6}")
    for p in (0.0, 0.1, 0.2, 0.3):
        y = corrupt(y0, p, scale=100.0, random_state=2)
        for rank in (3, 10, 50):
            t = time.perf_counter()
            res = subgradient_recover(op, y, rank, max_iter=3000, random_state=3, X_true=X)
            e = res.error_history
            first2 = int(np.argmax(e < 1e-2)) if np.any(e < 1e-2) else -1
            first4 = int(np.argmax(e < 1e-4)) if np.any(e < 1e-4) else -1
            plain = subgradient_recover(op, y, rank, max_iter=3000, random_state=3, X_true=X, precondition=False)
            l2 = subgradient_recover(op, y, rank, loss="l2", max_iter=3000, random_state=3, X_true=X)
            print(f"{p:>4} {rank:>3} {e[-1]:>10.2e} {res.n_iter:>6} {first2:>8} {first4:>8} "
                  f"{plain.error_history[-1]:>10.2e} {l2.error_history[-1]:>10.2e} {time.perf_counter() - t:>6.1f}",
                  flush=True)


def completion() -> None:
    n, r = 500, 5
    rng = np.random.default_rng(0)
    X = _psd(n, r, 1) * n
    rows, cols = np.nonzero(rng.random((n, n)) < 0.3)
    op = EntrySampling(rows, cols, (n, n))
    y = corrupt(op.apply(X), 0.1, kind="outlier", random_state=2)
    w, Q = np.linalg.eigh(X)
    X_lr = LowRankMatrix(Q[:, -r:], w[-r:], Q[:, -r:])  # cheap error monitor
    t = time.perf_counter()
    res = subgradient_recover(op, y, r, random_state=3, X_true=X_lr)
    t_sg = time.perf_counter() - t
    print(f"Completion with outliers: n={n}, r={r}, {op.m} observed (30%), 10% of them outliers")
    print(f"{'method':>22} {'rel. error':>11} {'iters':>6} {'sec':>7}")
    print(f"{'subgradient l1 (r)':>22} {res.error_history[-1]:>11.2e} {res.n_iter:>6} {t_sg:>7.2f}", flush=True)
    t = time.perf_counter()
    res2 = subgradient_recover(op, y, 2 * r, random_state=3, X_true=X_lr)
    print(f"{'subgradient l1 (2r)':>22} {res2.error_history[-1]:>11.2e} {res2.n_iter:>6} "
          f"{time.perf_counter() - t:>7.2f}", flush=True)
    try:
        from tensorapprox.completion import altmin_complete
    except ImportError:  # pragma: no cover
        print("altmin_complete not available")
        return
    t = time.perf_counter()
    am = altmin_complete(rows, cols, y, (n, n), r, random_state=3)
    err = np.linalg.norm(am.matrix.full() - X) / np.linalg.norm(X)
    print(f"{'altmin_complete':>22} {err:>11.2e} {am.n_iter:>6} {time.perf_counter() - t:>7.2f}")


def noise() -> None:
    d, r, m = 50, 3, 3000
    X = _psd(d, r, 0)
    op = GaussianSensing(d, m, random_state=1)
    y0 = op.apply(X)
    print("Figure B3: dense Gaussian noise on a fraction of the measurements, r'=3, alpha=1e-3")
    print("(the l1 error after its stopping rule fired is carried forward to later checkpoints)")
    print(f"{'frac':>5} {'scale':>6} {'l1 @100':>9} {'l1 @300':>9} {'l1 @1000':>9} {'l1 final':>9} "
          f"{'iters':>6} {'l2 final':>9}")
    for frac in (0.5, 0.9):
        for scale in (1.0, 10.0):
            y = corrupt(y0, frac, kind="gaussian", scale=scale, random_state=2)
            res = subgradient_recover(op, y, r, max_iter=3000, random_state=3, X_true=X)
            e = np.concatenate([res.error_history, np.full(1001, res.error_history[-1])])
            l2 = subgradient_recover(op, y, r, loss="l2", max_iter=3000, random_state=3, X_true=X)
            print(f"{frac:>5} {scale:>6} {e[100]:>9.2e} {e[300]:>9.2e} {e[1000]:>9.2e} {res.error_history[-1]:>9.2e} "
                  f"{res.n_iter:>6} {l2.error_history[-1]:>9.2e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "b1", "completion", "noise", "all"], nargs="?", default="speed")
    args = parser.parse_args()
    for name, fn in (("speed", speed), ("b1", b1), ("completion", completion), ("noise", noise)):
        if args.what in (name, "all"):
            fn()
            print()


if __name__ == "__main__":
    main()
