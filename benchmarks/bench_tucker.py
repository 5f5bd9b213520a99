"""Tucker benchmark: tensorapprox against TensorLy and a one-pass floor, side by side.

Cases
-----
(a) 200x200x200, multilinear rank (10,10,10) plus 1e-3 relative Gaussian noise
(b) 100x100x100x20, rank (5,5,5,5) plus 1e-3 relative noise
(c) 1/sqrt(x^2+y^2+z^2+0.1) on a 256^3 grid of [-1,1]^3, truncated at rtol 1e-6

For each case: the median time of ``--repeats`` runs and the relative error of
``st_hosvd``, ``st_hosvd(method='randomized')``, ``tucker_als`` (to
convergence), TensorLy's ``tucker`` with ``init='svd'`` (its default) and
``init='random'``, and the floor: one pass over the data
``W.T @ X.reshape(n1, -1)`` with ``W`` of shape ``n1 x r``. A "bound" row
times the two products over the whole tensor that exact (Gram-route)
ST-HOSVD makes, ``A @ A.T`` and ``W.T @ A`` for ``A = X.reshape(n1, -1)``,
as bare BLAS calls: the Gram route cannot come closer to the floor than this
row. Times are printed as ratios to the floor, measured in this one process
with the same BLAS threads. The methods are timed round-robin (each round runs every method
once and the floor before and after), so a shared machine's drift reaches
all of them alike. The peak memory of ``st_hosvd`` beyond the input is measured with
tracemalloc (numpy reports its allocations to it).

Run: ``python benchmarks/bench_tucker.py`` (needs the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc

import numpy as np

import tensorapprox as ta


def noisy_low_rank(shape, ranks, seed=0):
    """A random tensor of multilinear rank ``ranks`` plus 1e-3 relative Gaussian noise."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal(ranks)
    Us = [np.linalg.qr(rng.standard_normal((n, r)))[0] for n, r in zip(shape, ranks)]
    X = ta.multi_mode_product(G, Us)
    E = rng.standard_normal(shape)
    X += 1e-3 * np.linalg.norm(X) / np.linalg.norm(E) * E
    return X


def make_case(name: str):
    if name in ("a", "b"):
        shape, ranks = ((200, 200, 200), (10, 10, 10)) if name == "a" else ((100, 100, 100, 20), (5, 5, 5, 5))
        return noisy_low_rank(shape, ranks), ranks, None
    x = np.linspace(-1.0, 1.0, 256)
    X = 1.0 / np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2 + 0.1)
    return X, None, 1e-6


def plain_hooi(X, ranks, tol=1e-8, max_iter=50):
    """HOOI without sharing work across modes: every mode contracts X afresh.

    The same sweeps, stopping rule and initial guess as ``tucker_als``; it
    measures what the shared partial products of ``tucker_als`` save.
    """
    T = ta.st_hosvd(X, ranks)
    factors = list(T.factors)
    normX = np.linalg.norm(X)
    err_prev = np.sqrt(max(normX**2 - np.linalg.norm(T.core) ** 2, 0.0)) / normX
    for it in range(max_iter):
        for k in range(X.ndim):
            Y = ta.multi_mode_product(X, factors, skip=k, transpose=True)
            U, _, _ = np.linalg.svd(ta.unfold(Y, k), full_matrices=False)
            factors[k] = U[:, : ranks[k]]
        core = ta.mode_product(Y, factors[-1], X.ndim - 1, transpose=True)
        err = np.sqrt(max(normX**2 - np.linalg.norm(core) ** 2, 0.0)) / normX
        if err_prev - err <= tol:
            break
        err_prev = err
    return ta.TuckerTensor(core, factors)


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def rel_error(X, full):
    return float(np.linalg.norm(full - X) / np.linalg.norm(X))


def peak_memory(fn) -> int:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def run_case(name: str, repeats: int, slow_repeats: int, skip_tensorly: bool):
    """Time every method of one case, interleaved: round ``k`` runs each method once.

    Round-robin timing exposes every method (and the floor, timed at the
    start and the end of each round) to the same drift of a shared machine,
    so the ratios of the medians do not depend on when a method happened to
    run. TensorLy's default initialization takes ``slow_repeats`` rounds only
    (the issue asks for a median of 5, the default); every method runs once
    untimed before the first round. The table says how many timed runs
    each median has.
    """
    X, ranks, rtol = make_case(name)
    if ranks is None:
        ranks = ta.st_hosvd(X, rtol=rtol).ranks
    W = np.linalg.qr(np.random.default_rng(1).standard_normal((X.shape[0], ranks[0])))[0]
    A = X.reshape(X.shape[0], -1)
    # the two products over the whole tensor that Gram-route ST-HOSVD makes
    # in its first mode (mode 0 in the default order of all three cases), as
    # bare BLAS calls: the Gram matrix of the unfolding and the projection on
    # r_1 columns. The work after the first mode is not counted, so the
    # route cannot run faster than this row.
    assert ta.tucker._resolve_mode_order(None, X.shape, ranks, "auto")[0] == 0
    methods = [("bound: A @ A.T, then W.T @ A", lambda: (A @ A.T, W.T @ A), repeats, "bound")]
    if rtol is not None:
        methods.append((f"st_hosvd(rtol={rtol:g})", lambda: ta.st_hosvd(X, rtol=rtol), repeats, None))
    methods += [
        ("st_hosvd", lambda: ta.st_hosvd(X, ranks), repeats, None),
        ("st_hosvd randomized (q=1)", lambda: ta.st_hosvd(X, ranks, method="randomized", random_state=0),
         repeats, None),
        ("st_hosvd randomized (q=0)",
         lambda: ta.st_hosvd(X, ranks, method="randomized", n_power_iter=0, random_state=0), repeats, None),
        ("tucker_als", lambda: ta.tucker_als(X, ranks), repeats, "als"),
        ("HOOI without shared products", lambda: plain_hooi(X, ranks), repeats, None),
    ]
    if not skip_tensorly:
        import tensorly as tl
        from tensorly.decomposition import tucker as tl_tucker

        tl.set_backend("numpy")
        for init, reps in (("random", repeats), ("svd", slow_repeats)):
            label = f"tensorly tucker init='{init}'" + (" (default)" if init == "svd" else "")
            methods.append((label, lambda init=init: tl_tucker(X, rank=list(ranks), init=init, random_state=0),
                            reps, "tensorly"))

    # one untimed round first (compiled kernels loaded, memory paged in), for
    # every configuration: the slow one went without and its single sample
    # was a cold run beside warmed medians
    for _, fn, _, _ in methods:
        fn()
    floor_times = []
    times = {m[0]: [] for m in methods}
    outs = {}
    for k in range(max([repeats] + [m[2] for m in methods])):
        floor_times.append(timed(lambda: W.T @ A, 1)[0])
        for label, fn, reps, _ in methods:
            if k < reps:
                t, outs[label] = timed(fn, 1)
                times[label].append(t)
        floor_times.append(timed(lambda: W.T @ A, 1)[0])
    t_floor = statistics.median(floor_times)
    rows = [("floor: W.T @ X_(1)", t_floor, float("nan"), "", len(floor_times))]
    for label, _, _, kind in methods:
        out, t = outs[label], statistics.median(times[label])
        n = len(times[label])
        if kind == "bound":
            rows.append((label, t, float("nan"), "", n))
            continue
        if kind == "als":
            state = "converged" if out.converged else "NOT converged"
            T, label = out.tucker, f"tucker_als ({out.n_iter} sweeps, {state})"
        elif kind == "tensorly":
            core, factors = out
            T = ta.TuckerTensor(np.asarray(core), [np.asarray(U) for U in factors])
        else:
            T = out
        rows.append((label, t, rel_error(X, T.full()), T.ranks, n))

    mem = None
    if name == "a":
        peak = peak_memory(lambda: ta.st_hosvd(X, ranks))
        mem = peak / X.nbytes
    return X, rows, t_floor, mem


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="abc")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--slow-repeats", type=int, default=5, help="repeats of TensorLy's default configuration")
    p.add_argument("--no-tensorly", action="store_true")
    args = p.parse_args()
    try:
        from threadpoolctl import threadpool_info

        blas = "; ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info())
    except ImportError:
        blas = "threadpoolctl not installed"
    print(f"numpy {np.__version__}; BLAS: {blas}")
    for name in args.cases:
        X, rows, t_floor, mem = run_case(name, args.repeats, args.slow_repeats, args.no_tensorly)
        print(f"\ncase ({name}): shape {X.shape}, {X.nbytes / 2**20:.0f} MiB")
        print(f"{'method':44s} {'ranks':>12s} {'runs':>4s} {'median s':>10s} {'x floor':>9s} {'rel. error':>11s}")
        for label, t, err, ranks, n in rows:
            rk = "x".join(map(str, ranks)) if ranks else ""
            e = "" if err != err else f"{err:.3e}"
            print(f"{label:44s} {rk:>12s} {n:4d} {t:10.4f} {t / t_floor:9.2f} {e:>11s}")
        als, als_err = next((t, e) for label, t, e, _, _ in rows if label.startswith("tucker_als"))
        tl_rows = [(label, t, e) for label, t, e, _, _ in rows if label.startswith("tensorly")]
        if tl_rows:
            fastest, fastest_err = min((t, e) for _, t, e in tl_rows)
            default, default_err = next((t, e) for label, t, e in tl_rows if "default" in label)
            # the issue counts a speed-up at equal or lower error only. Equal
            # means equal to 6 digits: an error near 2e-7 of the norm is
            # itself computed to about eps / 2e-7 = 1e-9 relative, so a
            # tighter test read the rounding of two equal fits as a loss
            def verdict(err):
                if als_err <= err * (1 + 1e-6):
                    return f"at equal or lower error: {als_err:.6e} vs {err:.6e}"
                return f"but at HIGHER error: {als_err:.6e} vs {err:.6e}"
            print(f"tucker_als speed-up: {fastest / als:.1f}x over TensorLy's fastest ({verdict(fastest_err)}), "
                  f"{default / als:.1f}x over its default ({verdict(default_err)})")
        if mem is not None:
            print(f"st_hosvd peak memory beyond the input: {mem:.2f}x the input's size")


if __name__ == "__main__":
    main()
