"""Benchmarks for alternating-minimization matrix completion (figures A1, A2, A3, A5).

Run from the repository root::

    python benchmarks/bench_completion.py            # all sections, a few minutes
    python benchmarks/bench_completion.py a1 a5      # selected sections (a1 a2 a3 a5 kernels)
    python benchmarks/bench_completion.py a2 --full  # adds n = 10^5 and k = 40 to the scaling grid

Timings are medians over passes measured in the same process, solvers side by
side on the same data; ratios are what to read, absolute seconds depend on
the (shared) machine. MovieLens is read in place from
``../shared/data/movielens/u.data`` (or ``$TENSORAPPROX_SHARED_DATA``).
"""

from __future__ import annotations

import os

# one BLAS thread: the row kernels are single-threaded and BLAS threads only
# oversubscribe a shared machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tensorapprox._kernels.completion import solve_rows_exact  # noqa: E402
from tensorapprox.completion import (  # noqa: E402
    altmin_complete,
    kfold_splits,
    load_movielens,
    soft_impute,
    train_test_split,
)

SOLVERS = ("exact", "cg", "sketch")


def problem(n, k, c=2.0, seed=0, n_test=20_000):
    """A1 data: orthonormal factors, singular values 1 .. 0.5, |Omega| = c n k ln n."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    s = np.linspace(1.0, 0.5, k)
    m = int(c * n * k * np.log(n))
    idx = rng.choice(n * n, m + n_test, replace=False)
    r, cc = np.divmod(idx, n)
    vals = np.einsum("ij,ij->i", U[r] * s, V[cc])
    return (r[:m], cc[:m], vals[:m]), (r[m:], cc[m:], vals[m:])


def timed_fit(train, n, k, solver, max_iter, validation=None, **kw):
    stamps = []
    t0 = time.perf_counter()
    res = altmin_complete(*train, (n, n), k, solver=solver, max_iter=max_iter, tol=1e-14, random_state=0,
                          validation=validation, callback=lambda it, r: stamps.append(time.perf_counter()), **kw)
    # passes 2.. are timed alone; the first stamp also holds validation, initialization and pass 1
    per_pass = np.diff(stamps) if len(stamps) > 1 else np.array([stamps[0] - t0])
    return res, float(np.median(per_pass)), stamps[0] - t0


def table(header, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))
    print()


# ---------------------------------------------------------------------- A1
def bench_a1(args):
    print("== A1: n1 = n2 = 10^4, k = 10, |Omega| = 2 n k ln n, relative error on 2e4 held-out entries ==")
    n, k = 10_000, 10
    train, test = problem(n, k)
    rows = []
    times = {}
    for solver in SOLVERS:
        res, t_pass, t_setup = timed_fit(train, n, k, solver, 15, validation=test)
        times[solver] = t_pass
        h = res.test_history
        rows.append([solver, f"{h[9]:.1e}", "yes" if h[9] <= 1e-6 else "NO", f"{h[14]:.1e}",
                     "yes" if h[14] <= 1e-9 else "NO", f"{np.mean(res.inner_steps):.2f}", f"{t_setup:.2f}",
                     f"{t_pass:.3f}", f"{times['exact'] / t_pass:.2f}"])
    table(["solver", "err@10", "<=1e-6", "err@15", "<=1e-9", "inner steps", "init+pass1 s", "s/pass",
           "exact/this"], rows)

    print("== A1 speed: seconds per pass, n = 10^4, |Omega| = 2 n k ln n; solvers interleaved, "
          "median over rounds of the median pass (passes 2..) ==")
    rows = []
    for kk in (10, 20, 40):
        tr, _ = problem(n, kk, n_test=0)
        rounds = 3 if kk < 40 else 2
        per = {s: [] for s in SOLVERS}
        steps = {}
        for _ in range(rounds):
            for solver in SOLVERS:
                res, t, _ = timed_fit(tr, n, kk, solver, 3)
                per[solver].append(t)
                steps[solver] = float(np.mean(res.inner_steps))
        per = {s: float(np.median(v)) for s, v in per.items()}
        rows.append([kk, len(tr[0]), f"{per['exact']:.3f}", f"{per['cg']:.3f} ({steps['cg']:.1f})",
                     f"{per['sketch']:.3f} ({steps['sketch']:.1f})",
                     f"{per['exact'] / per['cg']:.2f}", f"{per['exact'] / per['sketch']:.2f}"])
        del tr
    table(["k", "|Omega|", "exact s", "cg s (steps)", "sketch s (steps)", "exact/cg", "exact/sketch"], rows)
    bench_kernels(n)


def bench_kernels(n, ks=(10, 20, 40)):
    """Half-step row-solve kernels alone, interleaved, warm start and inner tolerance of a late pass.

    The "read" column is no solver: it forms ``F[j] @ x_i`` once for every
    observation ``(i, j)`` in the row order of a half-step (the package's
    sampled-product kernel), the least a solver that looks at the data can
    do, since even one residual ``b - F[J_i] x_i`` needs it. ``exact/read``
    is therefore an upper bound on what any such solver can gain per
    half-step over ``exact`` on this machine.
    """
    from tensorapprox._kernels.completion import sampled_dot_nb, solve_rows_iterative

    print("== row-solve kernels alone (one half-step, n = 10^4 rows, |Omega| = 2 n k ln n): "
          "median of 5 interleaved repeats ==")
    rows = []
    for kk in ks:
        rng = np.random.default_rng(0)
        m = int(2 * n * kk * np.log(n))
        idx = np.sort(rng.choice(n * n, m, replace=False))
        r, c = np.divmod(idx, n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
        F, b, X0, tol = _late_half_step(rng, n, kk, r, c)
        keys = rng.integers(0, 2**62, m)
        fs = {
            "exact": partial(solve_rows_exact, indptr, c, b, F, 0.0, False),
            "cg": partial(solve_rows_iterative, indptr, c, b, F, 0.0, X0, tol, kk, 0, keys, False),
            "sketch": partial(solve_rows_iterative, indptr, c, b, F, 0.0, X0, tol, kk, 2 * kk, keys, False),
            "cg 1 step": partial(solve_rows_iterative, indptr, c, b, F, 0.0, X0, 0.0, 1, 0, keys, False),
            "read": partial(sampled_dot_nb, X0, F, r, c, np.empty(m)),  # output allocated once
        }
        sampled_dot_nb(X0, F, r[:10], c[:10], np.empty(10))  # compiled (or loaded) before the timed rounds
        T = {key: [] for key in fs}
        for _ in range(5):
            for key, f in fs.items():
                t = time.perf_counter()
                f()
                T[key].append(time.perf_counter() - t)
        med = {key: float(np.median(v)) for key, v in T.items()}
        rows.append([kk, m] + [f"{med[key]:.3f}" for key in fs] +
                    [f"{med['exact'] / med[key]:.2f}" for key in ("cg", "sketch", "cg 1 step", "read")])
        del idx, r, c, b, fs
    table(["k", "|Omega|", "exact s", "cg s", "sketch s", "cg-1 s", "read s", "exact/cg", "exact/sketch",
           "exact/cg-1", "exact/read"], rows)


def _late_half_step(rng, n, k, r, c):
    """``(F, b, X0, inner_rtol)`` of a row half-step late in an A1-like run, for the kernels alone.

    ``F`` orthonormal (the QR'd fixed factor), the solution with A1's
    singular values (linearly from 1 to 0.5), the warm start ``1e-3`` from
    it, and the inner tolerance ``altmin_complete`` gives the kernels: the
    default 0.1 times the spread ``s_min / s_max`` of the warm start (0.05
    here). A fixed 0.1 (used before) let the iterative solvers stop earlier
    than in a real fit.
    """
    F = np.ascontiguousarray(np.linalg.qr(rng.standard_normal((n, k)))[0])
    Q = np.linalg.qr(rng.standard_normal((n, k)))[0]
    R = np.linalg.qr(rng.standard_normal((k, k)))[0]
    Xt = math.sqrt(n) * (Q * np.linspace(1.0, 0.5, k)) @ R.T  # rows of size about 1
    b = np.empty(r.shape[0])
    for lo in range(0, r.shape[0], 1 << 22):  # in blocks: the gathered rows of all of Omega need |Omega| k floats
        hi = min(r.shape[0], lo + (1 << 22))
        b[lo:hi] = np.einsum("ij,ij->i", Xt[r[lo:hi]], F[c[lo:hi]])
    X0 = Xt + 1e-3 * rng.standard_normal((n, k))
    sv = np.linalg.svd(X0, compute_uv=False)
    return F, b, X0, 0.1 * float(sv[-1] / sv[0])


# ---------------------------------------------------------------------- A2
def _half_step_times(n, k, repeats, seed=0):
    """Seconds of one half-step of each row solver (interleaved medians), mid-run warm start."""
    from tensorapprox._kernels.completion import solve_rows_iterative

    rng = np.random.default_rng(seed)
    m = int(2 * n * k * np.log(n))
    idx = np.sort(rng.choice(n * n, m, replace=False))
    r, c = np.divmod(idx, n)
    del idx
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    F, b, X0, tol = _late_half_step(rng, n, k, r, c)
    del r
    keys = rng.integers(0, 2**62, m)
    fs = {
        "exact": partial(solve_rows_exact, indptr, c, b, F, 0.0, False),
        "cg": partial(solve_rows_iterative, indptr, c, b, F, 0.0, X0, tol, k, 0, keys, False),
        "sketch": partial(solve_rows_iterative, indptr, c, b, F, 0.0, X0, tol, k, 2 * k, keys, False),
    }
    T = {key: [] for key in fs}
    for _ in range(repeats):
        for key, f in fs.items():
            t = time.perf_counter()
            f()
            T[key].append(time.perf_counter() - t)
    return m, {key: float(np.median(v)) for key, v in T.items()}


def bench_a2(args):
    ns = [5_000, 10_000, 20_000] + ([30_000, 100_000] if args.full else [])
    ks = [5, 10, 20] + ([40] if args.full else [])
    print(f"== A2 scaling: seconds of one row half-step (2 per pass) over n in {ns}, k in {ks}, "
          "|Omega| = 2 n k ln n; median of 3 interleaved repeats ==", flush=True)
    data = {s: [] for s in SOLVERS}
    print("      n    k     |Omega|   exact s      cg s  sketch s", flush=True)
    for n in ns:
        for k in ks:
            m, per = _half_step_times(n, k, 3)
            for solver in SOLVERS:
                data[solver].append((m, k, per[solver]))
            print(f"{n:7d} {k:4d} {m:11d} {per['exact']:9.4f} {per['cg']:9.4f} {per['sketch']:9.4f}", flush=True)
    print()
    rows = []
    for solver in SOLVERS:
        m, k, t = (np.array(x, dtype=float) for x in zip(*data[solver]))
        for label, feat in (("a*|Omega|*k", m * k), ("a*|Omega|*k^2", m * k * k)):
            a = float(feat @ t / (feat @ feat))
            r2 = 1.0 - float(np.sum((t - a * feat) ** 2) / np.sum((t - t.mean()) ** 2))
            rows.append([solver, label, f"{a:.3e}", f"{r2:.3f}"])
    table(["solver", "model", "a", "R^2"], rows)

    print("== A2 phase transition: success (held-out error <= 1e-6 in 40 passes) over 5 seeds, "
          "n = 1000, k = 3, solver = sketch ==", flush=True)
    cs = [0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
    rates = []
    for c in cs:
        ok = 0
        for seed in range(5):
            tr, te = problem(1000, 3, c=c, seed=seed, n_test=2000)
            if len(tr[0]) < (1000 + 1000) * 3:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                res = altmin_complete(*tr, (1000, 1000), 3, solver="sketch", max_iter=40, tol=1e-14,
                                      random_state=seed, validation=te)
            ok += bool(np.min(res.test_history) <= 1e-6)
        rates.append(ok / 5)
    table(["c", "success rate"], [[c, f"{r:.1f}"] for c, r in zip(cs, rates)])
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.plot(cs, rates, "o-")
        ax.set_xlabel(r"c in $|\Omega| = c\,n\,k\ln n$")
        ax.set_ylabel("success rate (5 seeds)")
        ax.set_title("AltMin phase transition, n = 1000, k = 3")
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"phase-transition plot written to {args.plot}\n")


# ---------------------------------------------------------------------- A3
def bench_a3(args):
    n, k = 3000, 5
    print(f"== A3: inexact inner solves, n = {n}, k = {k}, |Omega| = 3 n k ln n; relative residual on Omega ==")
    train, test = problem(n, k, c=3.0)
    rows = []

    def rate(h):
        h = np.asarray(h)
        h = h[h > 1e-13]
        return float(np.exp(np.mean(np.diff(np.log(h))))) if len(h) > 2 else float("nan")

    for steps in (1, 2, 3, 5):
        res = altmin_complete(*train, (n, n), k, solver="cg", inner_rtol=0.0, inner_max_iter=steps, max_iter=40,
                              tol=1e-12, random_state=0, validation=test)
        rows.append([f"cg, {steps} fixed step(s)", res.n_iter, f"{res.history[-1]:.1e}",
                     f"{res.test_history[-1]:.1e}", f"{rate(res.history):.3f}"])
    for solver in ("cg", "sketch"):
        res = altmin_complete(*train, (n, n), k, solver=solver, max_iter=40, tol=1e-12, random_state=0,
                              validation=test)
        rows.append([f"{solver}, adaptive (inner_rtol=0.1)", res.n_iter, f"{res.history[-1]:.1e}",
                     f"{res.test_history[-1]:.1e}", f"{rate(res.history):.3f}"])
    for delta in (1e-1, 1e-2, 1e-4):
        h = _altmin_injected(train, n, k, delta, 40)
        rows.append([f"exact + injected rel. error {delta:g}", len(h), f"{h[-1]:.1e}", "-", f"{rate(h):.3f}"])
    table(["inner solver", "passes", "residual", "test error", "mean rate/pass"], rows)


def _altmin_injected(train, n, k, delta, n_pass):
    """JNS AltMin whose every row solve is perturbed by a relative error ``delta``.

    The perturbation of row i has norm ``delta * ||x_exact_i - x_warm_i||`` (error
    relative to the step the solve takes, as in the robust analysis), random direction.
    """
    from tensorapprox.completion.altmin import _InMemory, randomized_svd_sparse
    from tensorapprox.completion.observations import check_observations
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    obs = check_observations(*train, (n, n))
    P = _InMemory(obs, (0, 1))  # CSR and CSC views: (indptr, indices, values, ...)
    r_indptr, r_cols, r_vals = P.csr[:3]
    c_indptr, c_rows, c_vals = P.csc[:3]
    M = sp.csr_matrix((obs.values / obs.density, (obs.rows, obs.cols)), shape=obs.shape)
    U0, _, _ = randomized_svd_sparse(M, k, rng)
    U, _ = np.linalg.qr(U0)
    V = np.asarray(M.T @ U)

    def perturb(X, X0):
        d = rng.standard_normal(X.shape)
        d *= (delta * np.linalg.norm(X - X0, axis=1) / np.linalg.norm(d, axis=1))[:, None]
        return X + d

    hist = []
    for _ in range(n_pass):
        Vn, _ = solve_rows_exact(c_indptr, c_rows, c_vals, U, 0.0, False)
        V = perturb(Vn, V)
        Qv, Rv = np.linalg.qr(V)
        Uw = U @ Rv.T
        Un, rss = solve_rows_exact(r_indptr, r_cols, r_vals, Qv, 0.0, True)
        U = perturb(Un, Uw)
        Qu, Ru = np.linalg.qr(U)
        U, V = Qu, Qv @ Ru.T
        fit = np.einsum("ij,ij->i", U[obs.rows], V[obs.cols])
        hist.append(float(np.linalg.norm(fit - obs.values) / np.linalg.norm(obs.values)))
        if hist[-1] < 1e-12:
            break
    return hist


# ---------------------------------------------------------------------- A5
def bench_a5(args):
    base = Path(os.environ.get("TENSORAPPROX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = base / "movielens" / "u.data"
    if not path.is_file():
        print(f"== A5 skipped: {path} not found ==\n")
        return
    obs = load_movielens(path)
    train, test = train_test_split(obs, 0.2, random_state=0)
    print("== A5 MovieLens-100K, random 80/20 split (seed 0): test RMSE and fit time ==")
    rows = []
    warnings.simplefilter("ignore", UserWarning)
    for k in (10, 20):
        for solver in SOLVERS:
            t = time.perf_counter()
            res = altmin_complete(train.rows, train.cols, train.values, train.shape, k, solver=solver,
                                  regularization=0.12, biases=True, random_state=0, max_iter=30)
            dt = time.perf_counter() - t
            rows.append([f"altmin {solver}", k, "lam=0.12, biases", f"{res.rmse(test.rows, test.cols, test.values):.4f}",
                         f"{dt:.2f}"])
    t = time.perf_counter()
    res = soft_impute(train.rows, train.cols, train.values, train.shape, 50, shrinkage=16.0, biases=True,
                      random_state=0)
    dt = time.perf_counter() - t
    rows.append(["soft_impute", "<=50", "lam=16, biases", f"{res.rmse(test.rows, test.cols, test.values):.4f}",
                 f"{dt:.2f} ({res.n_iter} it)"])
    table(["method", "k", "settings", "test RMSE", "fit s"], rows)

    print("== A5 MovieLens-100K, 5-fold CV (seed 0): mean +- std test RMSE ==")
    rows = []
    for label, fit in (
        ("altmin sketch k=10", lambda tr: altmin_complete(tr.rows, tr.cols, tr.values, tr.shape, 10, solver="sketch",
                                                          regularization=0.12, biases=True, random_state=0,
                                                          max_iter=30)),
        ("altmin sketch k=20", lambda tr: altmin_complete(tr.rows, tr.cols, tr.values, tr.shape, 20, solver="sketch",
                                                          regularization=0.12, biases=True, random_state=0,
                                                          max_iter=30)),
        ("soft_impute k<=50", lambda tr: soft_impute(tr.rows, tr.cols, tr.values, tr.shape, 50, shrinkage=16.0,
                                                     biases=True, random_state=0)),
    ):
        scores = []
        for tr, te in kfold_splits(obs, 5, random_state=0):
            scores.append(fit(tr).rmse(te.rows, te.cols, te.values))
        rows.append([label, f"{np.mean(scores):.4f} +- {np.std(scores):.4f}", " ".join(f"{s:.4f}" for s in scores)])
    table(["method", "RMSE", "folds"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", default=["a1", "a2", "a3", "a5"])
    parser.add_argument("--full", action="store_true", help="A2 with n = 10^5 and k = 40 (memory: several GB)")
    parser.add_argument("--plot", default="", help="write the phase-transition plot to this PNG")
    args = parser.parse_args()
    # compile the kernels once outside the timings
    tr, _ = problem(300, 2, n_test=0)
    for solver in SOLVERS:
        altmin_complete(*tr, (300, 300), 2, solver=solver, max_iter=2, random_state=0)
    for name in args.sections:
        t = time.perf_counter()
        {"a1": bench_a1, "a2": bench_a2, "a3": bench_a3, "a5": bench_a5,
         "kernels": lambda a: bench_kernels(10_000)}[name](args)
        print(f"[{name} took {time.perf_counter() - t:.0f} s]\n")


if __name__ == "__main__":
    main()
