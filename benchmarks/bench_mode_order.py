"""ST-HOSVD's default mode order: the cost model's choice against the reduction heuristic.

On tensors whose modes differ in size, the order in which ST-HOSVD truncates
the modes sets its cost (see ``tensorapprox.tucker._gram_route_cost``). For
each shape below (a random multilinear-rank tensor plus 1e-3 relative
Gaussian noise) this times, round-robin in one process with the same BLAS
threads:

- ``st_hosvd(X, rank)`` and ``st_hosvd(X, rtol=2e-3)`` in the default order
  (the cost model's, where it pays);
- the same with ``mode_order`` set to the reduction heuristic (largest
  ``n_k / r_k`` first, by ``n_k`` with ``rtol``), the default before the
  cost model;
- TensorLy's ``tucker`` with ``init='random'`` at the same ranks, the
  outside anchor (``--no-tensorly`` leaves it out);
- the floor ``W.T @ X.reshape(n1, -1)``, one pass over the data;
- with ``--dask``, the four ``st_hosvd`` calls again on ``X`` as a Dask array
  in four chunks along its largest mode, with an in-memory budget of an
  eighth of ``X``, so that the first mode runs block-wise (a Gram pass and a
  projection pass over the blocks) before the rest fits in memory.

Times are medians over ``--repeats`` rounds, printed as ratios to the floor,
with each result's relative error and ranks.

Run: ``python benchmarks/bench_mode_order.py [--dask]`` (TensorLy from the
``bench`` extra, Dask from the ``dask`` extra).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import tensorapprox as ta
from bench_tucker import noisy_low_rank, rel_error, timed
from tensorapprox.tucker import _resolve_mode_order

CASES = [
    ((4000, 50, 50), (10, 10, 10)),
    ((50, 400, 400), (8, 8, 8)),
    ((30, 1000, 300), (6, 10, 10)),
    ((20, 200, 20, 200), (5, 5, 5, 5)),
]
RTOL = 2e-3


def dask_methods(X, ranks, model_rank, heur_rank, model_rtol, heur_rtol):
    """The four ``st_hosvd`` calls on a block-wise Dask array of ``X`` (see the module docstring)."""
    import dask
    import dask.array as da

    big = int(np.argmax(X.shape))
    chunks = tuple(max(1, n // 4) if k == big else n for k, n in enumerate(X.shape))
    Xd = da.from_array(X, chunks=chunks)
    budget = {"tensorapprox.in-memory-bytes": X.nbytes // 8}

    def call(**kw):
        with dask.config.set(budget):
            return ta.st_hosvd(Xd, **kw)

    return [
        (f"dask st_hosvd(rank), default {tuple(model_rank)}", lambda: call(rank=ranks)),
        (f"dask st_hosvd(rank), heuristic {tuple(heur_rank)}", lambda: call(rank=ranks, mode_order=heur_rank)),
        (f"dask st_hosvd(rtol), default {tuple(model_rtol)}", lambda: call(rtol=RTOL)),
        (f"dask st_hosvd(rtol), heuristic {tuple(heur_rtol)}", lambda: call(rtol=RTOL, mode_order=heur_rtol)),
    ]


def run_case(shape, ranks, repeats: int, skip_tensorly: bool, with_dask: bool = False):
    X = noisy_low_rank(shape, ranks)
    heur_rank = _resolve_mode_order(None, shape, ranks)
    heur_rtol = _resolve_mode_order(None, shape, None)
    model_rank = _resolve_mode_order(None, shape, ranks, "auto")
    model_rtol = _resolve_mode_order(None, shape, None, "auto")
    W = np.linalg.qr(np.random.default_rng(1).standard_normal((shape[0], ranks[0])))[0]
    A = X.reshape(shape[0], -1)
    methods = [
        (f"st_hosvd(rank), default {tuple(model_rank)}", lambda: ta.st_hosvd(X, ranks)),
        (f"st_hosvd(rank), heuristic {tuple(heur_rank)}", lambda: ta.st_hosvd(X, ranks, mode_order=heur_rank)),
        (f"st_hosvd(rtol), default {tuple(model_rtol)}", lambda: ta.st_hosvd(X, rtol=RTOL)),
        (f"st_hosvd(rtol), heuristic {tuple(heur_rtol)}", lambda: ta.st_hosvd(X, rtol=RTOL, mode_order=heur_rtol)),
    ]
    if not skip_tensorly:
        import tensorly as tl
        from tensorly.decomposition import tucker as tl_tucker

        tl.set_backend("numpy")
        methods.append(("tensorly tucker init='random'",
                        lambda: tl_tucker(X, rank=list(ranks), init="random", random_state=0)))
    if with_dask:
        methods += dask_methods(X, ranks, model_rank, heur_rank, model_rtol, heur_rtol)
    for _, fn in methods:  # one untimed round
        fn()
    floor, times, outs = [], {label: [] for label, _ in methods}, {}
    for _ in range(repeats):
        floor.append(timed(lambda: W.T @ A, 1)[0])
        for label, fn in methods:
            t, outs[label] = timed(fn, 1)
            times[label].append(t)
        floor.append(timed(lambda: W.T @ A, 1)[0])
    t_floor = statistics.median(floor)
    rows = []
    for label, _ in methods:
        out = outs[label]
        if isinstance(out, ta.TuckerTensor):
            T = out
        else:
            core, factors = out
            T = ta.TuckerTensor(np.asarray(core), [np.asarray(U) for U in factors])
        rows.append((label, statistics.median(times[label]), rel_error(X, T.full()), T.ranks))
    return X, t_floor, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-tensorly", action="store_true")
    p.add_argument("--dask", action="store_true", help="also time the calls on a block-wise Dask array")
    args = p.parse_args()
    for shape, ranks in CASES:
        X, t_floor, rows = run_case(shape, ranks, args.repeats, args.no_tensorly, args.dask)
        print(f"\nshape {shape}, ranks {ranks}, {X.nbytes / 2**20:.0f} MiB; floor W.T @ X_(1) {t_floor:.4f} s; "
              f"rtol = {RTOL:g}")
        print(f"{'method (mode order)':51s} {'ranks':>14s} {'median s':>10s} {'x floor':>9s} {'rel. error':>11s}")
        for label, t, err, rk in rows:
            print(f"{label:51s} {'x'.join(map(str, rk)):>14s} {t:10.4f} {t / t_floor:9.2f} {err:11.4e}")
        for prefix in ("", "dask ") if args.dask else ("",):
            for kind in ("rank", "rtol"):
                model = next(t for label, t, _, _ in rows if label.startswith(f"{prefix}st_hosvd({kind}), default"))
                heur = next(t for label, t, _, _ in rows if label.startswith(f"{prefix}st_hosvd({kind}), heuristic"))
                print(f"{prefix}st_hosvd({kind}): default {heur / model:.1f}x faster than the heuristic order")


if __name__ == "__main__":
    main()
