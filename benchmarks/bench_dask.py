"""Dask paths against the in-memory code: cost, equality, memory.

Sections (run one with its name, or all without arguments):

``fits``
    A tensor that fits in memory: ``st_hosvd``, ``hosvd`` and ``tucker_als``
    in memory (numpy) and on the same data as a chunked Dask array; medians
    of several runs, the ratio dask / numpy, and the difference of the
    relative errors.
``cluster``
    The same computations on ``LocalCluster(n_workers=2)`` and on the local
    threaded scheduler: the largest difference of the results.
``completion``
    ``altmin_complete`` on an n x n rank-k matrix (default n = 10^5, k = 10,
    |Omega| = 2.3e7), observations generated in row blocks, with
    ``--mode memory`` (one process holds them whole), ``--mode dask``
    (partitioned, threaded scheduler) or ``--mode cluster``. Prints the
    convergence history, time per pass and the peak resident memory of the
    process (run one mode per process to compare memory).

The out-of-core Tucker figure is the gallery example
``examples/plot_out_of_core_tucker.py --n 1200 --no-plot --floor`` under
GNU ``time -v`` (or read the peak memory it prints).
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import numpy as np

import dask
import dask.array as da
import tensorapprox as ta
from tensorapprox.completion import altmin_complete


def _header():
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info()
                         if i.get("user_api") == "blas")
    except ImportError:
        blas = "unknown"
    print(f"# {platform.node()} {platform.machine()} python {platform.python_version()} numpy {np.__version__} "
          f"dask {dask.__version__}; BLAS: {blas}; {time.strftime('%Y-%m-%d %H:%M')}")


def _median_time(f, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _rel_error(X, T):
    return float(np.linalg.norm(X - T.full()) / np.linalg.norm(X))


def bench_fits(n: int, chunk, rank: int, repeat: int):
    rng = np.random.default_rng(0)
    core = rng.standard_normal((rank,) * 3)
    X = ta.TuckerTensor(core, [np.linalg.qr(rng.standard_normal((n, rank)))[0] for _ in range(3)]).full()
    X += 1e-3 * np.linalg.norm(X) / np.sqrt(X.size) * rng.standard_normal(X.shape)
    Xd = da.from_array(X, chunks=chunk)
    print(f"\n## fits: {n}^3 float64 ({X.nbytes / 2**20:.0f} MiB), chunks={chunk!r} -> {Xd.chunksize} "
          f"({Xd.npartitions} blocks), rank {rank}, median of {repeat}")
    print(f"{'function':<12} {'numpy s':>9} {'dask s':>9} {'ratio':>7} {'|err_dask - err_numpy|':>24}")
    cases = [
        ("st_hosvd", lambda A: ta.st_hosvd(A, rank=rank)),
        ("hosvd", lambda A: ta.hosvd(A, rank=rank)),
        ("tucker_als", lambda A: ta.tucker_als(A, rank, max_iter=3, tol=0.0).tucker),
    ]
    for name, f in cases:
        t_np, T_np = _median_time(lambda: f(X), repeat)
        t_da, T_da = _median_time(lambda: f(Xd), repeat)
        diff = abs(_rel_error(X, T_da) - _rel_error(X, T_np))
        print(f"{name:<12} {t_np:9.3f} {t_da:9.3f} {t_da / t_np:7.2f} {diff:24.1e}")


def bench_cluster(n: int, chunk: int, rank: int):
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(1)
    X = ta.TuckerTensor(rng.standard_normal((rank,) * 3), [rng.standard_normal((n, rank)) for _ in range(3)]).full()
    X += 1e-2 * rng.standard_normal(X.shape)
    Xd = da.from_array(X, chunks=chunk)
    n1 = 20000
    k = 5
    A, B = rng.standard_normal((n1, k)), rng.standard_normal((n1, k))
    r = rng.integers(0, n1, 2_000_000)
    c = rng.integers(0, n1, 2_000_000)
    key = np.unique(r * n1 + c)
    r, c = key // n1, key % n1
    v = np.einsum("ij,ij->i", A[r], B[c])
    parts = [da.from_array(a, chunks=a.size // 8 + 1) for a in (r, c, v)]

    def run():
        # a budget below the tensor's size: the block-wise code runs, not the in-memory gather
        with dask.config.set({"tensorapprox.in-memory-bytes": X.nbytes // 4}):
            T = ta.st_hosvd(Xd, rank=rank)
            H = ta.tucker_als(Xd, rank, max_iter=3)
        C = altmin_complete(*parts, (n1, n1), k, max_iter=8, random_state=0)
        return T, H, C

    print(f"\n## cluster: st_hosvd / tucker_als on {n}^3 (chunks {chunk}), altmin on {n1}^2 with "
          f"{r.size} entries in 8 partitions")
    with dask.config.set(scheduler="threads"):
        t0 = time.perf_counter()
        ref = run()
        t_threads = time.perf_counter() - t0
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster):
        t0 = time.perf_counter()
        got = run()
        t_cluster = time.perf_counter() - t0
    d1 = np.abs(got[0].full() - ref[0].full()).max() / np.abs(ref[0].full()).max()
    d2 = np.abs(got[1].tucker.full() - ref[1].tucker.full()).max() / np.abs(ref[1].tucker.full()).max()
    U1, U2 = got[2].matrix, ref[2].matrix
    idx = rng.integers(0, n1, (2, 100000))
    e1, e2 = U1.entries(*idx), U2.entries(*idx)
    d3 = np.abs(e1 - e2).max() / np.abs(e2).max()
    print(f"threads {t_threads:.1f} s, LocalCluster(n_workers=2) {t_cluster:.1f} s")
    print(f"largest relative difference: st_hosvd {d1:.1e}, tucker_als {d2:.1e}, altmin (1e5 entries) {d3:.1e}")


def _gen_block(b, n, k, m_b, seed):
    """Observations of row block ``b``: ``m_b`` distinct entries of rows ``b*n/B .. (b+1)*n/B``."""
    nb = n // 16
    lo = b * nb
    rng = np.random.default_rng([seed, b])
    flat = rng.choice(nb * n, size=m_b, replace=False)
    rows = lo + flat // n
    cols = flat % n
    U = np.random.default_rng([seed, 1000 + b]).standard_normal((nb, k))
    V = np.random.default_rng([seed, 999]).standard_normal((n, k))
    return rows.astype(np.int64), cols.astype(np.int64), np.einsum("ij,ij->i", U[rows - lo], V[cols])


def bench_completion(mode: str, n: int, k: int, m: int, max_iter: int, solver: str):
    B = 16
    m_b = m // B
    print(f"\n## completion ({mode}): n = {n}, k = {k}, |Omega| = {m_b * B} in {B} row blocks, solver {solver}")
    t0 = time.perf_counter()
    if mode == "memory":
        blocks = [_gen_block(b, n, k, m_b, 0) for b in range(B)]
        rows, cols, vals = (np.concatenate([blk[j] for blk in blocks]) for j in range(3))
        del blocks
    else:
        gen = dask.delayed(_gen_block, pure=True, nout=3)
        parts = [gen(b, n, k, m_b, 0) for b in range(B)]
        rows, cols, vals = (da.concatenate([da.from_delayed(p[j], shape=(m_b,), dtype=dt) for p in parts])
                            for j, dt in ((0, np.int64), (1, np.int64), (2, np.float64)))
    t_gen = time.perf_counter() - t0
    passes = []

    def cb(it, res):
        passes.append(time.perf_counter())

    t0 = time.perf_counter()
    res = altmin_complete(rows, cols, vals, (n, n), k, solver=solver, max_iter=max_iter, tol=1e-9,
                          random_state=0, callback=cb)
    t_fit = time.perf_counter() - t0
    per_pass = np.diff([t0] + passes)
    # relative error on fresh entries of the true matrix (block 3's rows)
    rng = np.random.default_rng(5)
    nb = n // B
    rr = 3 * nb + rng.integers(0, nb, 20000)
    cc = rng.integers(0, n, 20000)
    U = np.random.default_rng([0, 1003]).standard_normal((nb, k))
    V = np.random.default_rng([0, 999]).standard_normal((n, k))
    truth = np.einsum("ij,ij->i", U[rr - 3 * nb], V[cc])
    test = np.linalg.norm(res.predict(rr, cc) - truth) / np.linalg.norm(truth)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"generate {t_gen:.1f} s (lazy for dask), fit {t_fit:.1f} s, {res.n_iter} passes, "
          f"median pass {np.median(per_pass[1:]) if per_pass.size > 1 else per_pass[0]:.2f} s "
          f"(first incl. setup {per_pass[0]:.1f} s)")
    print("history:", " ".join(f"{h:.2e}" for h in res.history))
    print(f"test relative error {test:.2e}; peak RSS of this process {peak:.2f} GiB")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("section", nargs="?", choices=["fits", "cluster", "completion"], default=None)
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--chunk", type=int, default=None)
    p.add_argument("--rank", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--mode", choices=["memory", "dask", "cluster"], default="dask")
    p.add_argument("--m", type=int, default=23_000_000)
    p.add_argument("--max-iter", type=int, default=25)
    p.add_argument("--solver", default="sketch")
    a = p.parse_args()
    _header()
    if a.section in (None, "fits"):
        # 300^3 (206 MiB) fits the default in-memory budget and is gathered in one pass;
        # 500^3 (954 MiB) does not, and runs block-wise
        for n, chunk in ([(a.n, a.chunk or "auto")] if a.n else [(300, "auto"), (500, "auto"), (500, 125)]):
            bench_fits(n, chunk, a.rank, a.repeat)
    if a.section in (None, "cluster"):
        bench_cluster(a.n or 120, a.chunk or 40, a.rank)
    if a.section == "completion":
        if a.mode == "cluster":
            from distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40) as c, \
                    Client(c):
                bench_completion(a.mode, a.n or 100_000, 10, a.m, a.max_iter, a.solver)
        else:
            bench_completion(a.mode, a.n or 100_000, 10, a.m, a.max_iter, a.solver)


if __name__ == "__main__":
    main()
