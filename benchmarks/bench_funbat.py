"""FunBaT (FunctionalTucker) benchmarks: speed, memory, accuracy, discrete baseline.

Usage (from the repository root; data from ../shared/data/funbat or
$TENSORAPPROX_SHARED_DATA/funbat, or --data DIR)::

    python benchmarks/bench_funbat.py speed     [--ranks 2,5,7] [--epochs 5] [--repeats 3]
    python benchmarks/bench_funbat.py scaling   [--rank 5]
    python benchmarks/bench_funbat.py accuracy  --dataset beijing|us [--ranks 2,3,5,7] [--folds 0,1,2,3,4]
    python benchmarks/bench_funbat.py discrete  --dataset beijing|us [--rank 5]

``speed`` runs every rank in a fresh subprocess so that the peak resident
memory (``ru_maxrss``) belongs to that rank alone. BLAS is pinned to one
thread (set before numpy is imported): on shared machines multi-threaded
BLAS on small matrices is slower by orders of magnitude.

Anchors quoted from the issue (authors' reference implementation, same
class of machine): 1.9 s/epoch at R = 2 and 21 s/epoch at R = 5 with 10.4 GB
peak memory; Beijing PM2.5 fold 0, R = 2, 100 epochs: RMSE 0.349, MAE 0.224;
US-TEMP fold 0, R = 2, 200 epochs: RMSE 1.995 F, MAE 1.307 F.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import tensorapprox.bayes.funbat as funbat_mod  # noqa: E402
from tensorapprox.bayes import FunctionalTucker  # noqa: E402
from tensorapprox.bayes.datasets import load_funbat_split  # noqa: E402

DATASETS = {
    # name: (file, coordinate scale, hyper-parameters)
    "beijing": ("beijing_PM2.5_DISCT_428x501x1461_no_agg.npz", 10.0, dict(lengthscale=0.05)),
    "us": ("US_temp_DISCT_15x95x267.npz", 1.0, dict(lengthscale=0.1)),
}
DISCRETE = {
    "beijing": ["beijing_PM2.5_DISCT_50x50x150.npz", "beijing_PM2.5_DISCT_100x100x300.npz",
                "beijing_PM2.5_DISCT_300x300x1000.npz", "beijing_PM2.5_DISCT_428x501x1461.npz"],
    "us": ["US_temp_DISCT_15x95x267.npz"],
}


def data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    root = os.environ.get("TENSORAPPROX_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "funbat"


# ---------------------------------------------------------------------- speed
class _Timers:
    """Wraps the message and smoother steps of the estimator with timers."""

    def __init__(self):
        self.t = {"messages": 0.0, "smoother": 0.0}
        self._orig = (funbat_mod.FunctionalTucker._site_sums, funbat_mod.FunctionalTucker._mode_messages,
                      funbat_mod._smooth)

    def install(self):
        sums, msgs, smooth = self._orig
        t = self.t

        def timed(f, key):
            def g(*a, **k):
                s = time.perf_counter()
                r = f(*a, **k)
                t[key] += time.perf_counter() - s
                return r
            return g

        funbat_mod.FunctionalTucker._site_sums = timed(sums, "messages")
        funbat_mod.FunctionalTucker._mode_messages = timed(msgs, "messages")
        funbat_mod._smooth = timed(smooth, "smoother")


def speed_one(rank: int, epochs: int, repeats: int, folder: Path, n_rows: int | None = None) -> dict:
    fname, scale, hp = DATASETS["beijing"]
    sp = load_funbat_split(folder / fname, 0, scale=scale)
    X, y = sp.X_train, sp.y_train
    if n_rows is not None:
        X, y = X[:n_rows], y[:n_rows]
    # warm-up: Numba compilation / cache load
    FunctionalTucker(rank=rank, max_iter=1, random_state=0, **hp).fit(X[:200], y[:200])
    timers = _Timers()
    timers.install()
    per_epoch, split_msg, split_smooth = [], [], []
    for rep in range(repeats):
        stamps = []
        timers.t["messages"] = timers.t["smoother"] = 0.0
        start_msgs = {}

        def cb(model, epoch):
            stamps.append(time.perf_counter())
            if epoch == 1:
                start_msgs.update(timers.t)

        m = FunctionalTucker(rank=rank, max_iter=epochs + 1, tol=0.0, damping=0.0, random_state=rep, callback=cb,
                             **hp)
        m.fit(X, y)
        # epochs 2..E+1 (epoch 1 is preceded by the one-off initialization)
        per_epoch.append((stamps[-1] - stamps[0]) / epochs)
        split_msg.append((timers.t["messages"] - start_msgs["messages"]) / epochs)
        split_smooth.append((timers.t["smoother"] - start_msgs["smoother"]) / epochs)
    tracemalloc.start()
    FunctionalTucker(rank=rank, max_iter=2, tol=0.0, random_state=0, **hp).fit(X, y)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rank": rank, "N": int(X.shape[0]), "sites": [int(np.unique(X[:, k]).size) for k in range(X.shape[1])],
        "s_per_epoch_median": statistics.median(per_epoch), "s_per_epoch_all": per_epoch,
        "messages_s": statistics.median(split_msg), "smoother_s": statistics.median(split_smooth),
        "numpy_peak_MB": traced_peak / 2**20,
        "max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def run_subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cmd_speed(a):
    rows = [run_subprocess(["_speed_one", str(r), str(a.epochs), str(a.repeats), str(data_dir(a.data))])
            for r in a.ranks]
    ref = {2: 1.9, 5: 21.0}
    print(f"Beijing PM2.5 fold 0: N = {rows[0]['N']}, K = 3, distinct coordinates {rows[0]['sites']}; "
          f"median of {a.repeats} runs x {a.epochs} epochs")
    print(f"{'R':>3} {'s/epoch':>9} {'messages':>9} {'smoother':>9} {'other':>7} {'peak RSS MB':>12} "
          f"{'numpy peak MB':>14} {'ref s/epoch':>12} {'speed-up':>9}")
    for r in rows:
        other = r["s_per_epoch_median"] - r["messages_s"] - r["smoother_s"]
        rr = ref.get(r["rank"])
        su = f"{rr / r['s_per_epoch_median']:.0f}x" if rr else "-"
        print(f"{r['rank']:>3} {r['s_per_epoch_median']:>9.3f} {r['messages_s']:>9.3f} {r['smoother_s']:>9.3f} "
              f"{other:>7.3f} {r['max_rss_MB']:>12.0f} {r['numpy_peak_MB']:>14.1f} {rr if rr else '-':>12} {su:>9}")


def cmd_scaling(a):
    rows = [run_subprocess(["_speed_one", str(a.rank), str(a.epochs), str(a.repeats), str(data_dir(a.data)),
                            str(n)]) for n in (3393, 6786, 13572)]
    print(f"R = {a.rank}: time per epoch against N (first N training records of fold 0)")
    print(f"{'N':>6} {'distinct coords':>20} {'s/epoch':>9} {'us/record':>10}")
    for r in rows:
        print(f"{r['N']:>6} {str(r['sites']):>20} {r['s_per_epoch_median']:>9.3f} "
              f"{1e6 * r['s_per_epoch_median'] / r['N']:>10.2f}")


# ---------------------------------------------------------------------- accuracy
def fit_eval(dataset: str, rank: int, fold: int, folder: Path, max_iter: int, core: str, val_frac: float,
             lengthscale: float | None = None):
    fname, scale, hp = DATASETS[dataset]
    if lengthscale is not None:
        hp = dict(hp, lengthscale=lengthscale)
    sp = load_funbat_split(folder / fname, fold, scale=scale)
    X, y = sp.X_train, sp.y_train
    kw = {}
    if val_frac > 0:
        # validation records carved from the training split (never the test split)
        rng = np.random.default_rng(1000 + fold)
        perm = rng.permutation(X.shape[0])
        nv = int(val_frac * X.shape[0])
        kw = dict(X_val=X[perm[:nv]], y_val=y[perm[:nv]])
        X, y = X[perm[nv:]], y[perm[nv:]]
    t = time.perf_counter()
    m = FunctionalTucker(rank=rank, core=core, damping=0.0, max_iter=max_iter, tol=1e-6, n_iter_no_change=10,
                         random_state=fold, **hp)
    m.fit(X, y, **kw)
    el = time.perf_counter() - t
    p = m.predict(sp.X_test)
    rmse = float(np.sqrt(np.mean((p - sp.y_test) ** 2)))
    mae = float(np.mean(np.abs(p - sp.y_test)))
    const = float(np.sqrt(np.mean((sp.y_test - sp.y_train.mean()) ** 2)))
    h = np.asarray(m.history_)
    worst_increase = float(np.max(np.diff(h) / h[:-1])) if h.size > 1 else 0.0
    return dict(rank=rank, fold=fold, rmse=rmse, mae=mae, const_rmse=const, epochs=m.n_iter_, seconds=el,
                train_rmse=float(h[-1]), worst_rel_increase=worst_increase)


def cmd_accuracy(a):
    folder = data_dir(a.data)
    unit = "z-score" if a.dataset == "beijing" else "F"
    hp = DATASETS[a.dataset][2] if a.lengthscale is None else dict(lengthscale=a.lengthscale)
    print(f"{a.dataset}: FunctionalTucker({hp}, core={a.core}, damping=0), "
          f"max_iter={a.max_iter}, validation fraction {a.val_frac} of train; units: {unit}")
    print(f"{'R':>3} {'fold':>4} {'RMSE':>8} {'MAE':>8} {'const':>7} {'epochs':>6} {'s':>6} "
          f"{'train RMSE':>10} {'max rel. incr.':>14}")
    table = {}
    for r in a.ranks:
        for f in a.folds:
            res = fit_eval(a.dataset, r, f, folder, a.max_iter, a.core, a.val_frac, a.lengthscale)
            table.setdefault(r, []).append(res)
            print(f"{r:>3} {f:>4} {res['rmse']:>8.4f} {res['mae']:>8.4f} {res['const_rmse']:>7.3f} "
                  f"{res['epochs']:>6} {res['seconds']:>6.1f} {res['train_rmse']:>10.4f} "
                  f"{res['worst_rel_increase']:>14.2e}", flush=True)
    print(f"\n{'R':>3} {'folds':>5} {'RMSE mean ± sd':>18} {'MAE mean ± sd':>18}")
    for r, rows in table.items():
        rm = np.array([x["rmse"] for x in rows])
        ma = np.array([x["mae"] for x in rows])
        sd = (lambda v: v.std(ddof=1) if v.size > 1 else float("nan"))
        print(f"{r:>3} {len(rows):>5} {rm.mean():>9.4f} ± {sd(rm):<6.4f} {ma.mean():>9.4f} ± {sd(ma):<6.4f}")


# ---------------------------------------------------------------------- discrete baseline
def masked_cp_als(ind, y, shape, rank, reg, n_iter, rng):
    """Masked CP completion by ridge ALS over the observed entries (baseline)."""
    K = len(shape)
    A = [0.1 * rng.standard_normal((n, rank)) + 1.0 / rank for n in shape]
    mu = y.mean()
    r = y - mu
    for _ in range(n_iter):
        for k in range(K):
            Z = np.ones((y.size, rank))
            for j in range(K):
                if j != k:
                    Z *= A[j][ind[:, j]]
            G = np.zeros((shape[k], rank, rank))
            np.add.at(G, ind[:, k], Z[:, :, None] * Z[:, None, :])
            b = np.zeros((shape[k], rank))
            np.add.at(b, ind[:, k], Z * r[:, None])
            A[k] = np.linalg.solve(G + reg * np.eye(rank), b[..., None])[..., 0]
    return lambda idx: mu + np.prod(np.stack([A[k][idx[:, k]] for k in range(K)]), axis=0).sum(axis=1)


def cmd_discrete(a):
    folder = data_dir(a.data)
    print(f"masked CP-ALS of rank {a.rank} on the binned tensors, fold(s) {a.folds}; ridge chosen on the test "
          "split (optimistic for the baseline)")
    print(f"{'file':>42} {'reg':>6} {'RMSE':>8} {'MAE':>8}")
    for fname in DISCRETE[a.dataset]:
        for f in a.folds:
            with np.load(folder / fname) as d:
                shape = tuple(int(s) for s in d["ndims"])
                itr, ytr, ite, yte = d[f"tr_ind_{f}"], d[f"tr_y_{f}"], d[f"te_ind_{f}"], d[f"te_y_{f}"]
            best = None
            for reg in (0.1, 1.0, 10.0):
                pred = masked_cp_als(itr, ytr, shape, a.rank, reg, 50, np.random.default_rng(0))(ite)
                rm = float(np.sqrt(np.mean((pred - yte) ** 2)))
                if best is None or rm < best[1]:
                    best = (reg, rm, float(np.mean(np.abs(pred - yte))))
            print(f"{fname + ' f' + str(f):>42} {best[0]:>6} {best[1]:>8.4f} {best[2]:>8.4f}", flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_speed_one":
        r, e, rep, folder = int(argv[1]), int(argv[2]), int(argv[3]), Path(argv[4])
        n = int(argv[5]) if len(argv) > 5 else None
        print(json.dumps(speed_one(r, e, rep, folder, n)))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["speed", "scaling", "accuracy", "discrete"])
    p.add_argument("--data", default=None)
    p.add_argument("--ranks", type=lambda s: [int(x) for x in s.split(",")], default=[2, 5, 7])
    p.add_argument("--rank", type=int, default=5)
    p.add_argument("--folds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2, 3, 4])
    p.add_argument("--dataset", choices=list(DATASETS), default="beijing")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-iter", type=int, default=200)
    p.add_argument("--core", choices=["tucker", "cp"], default="tucker")
    p.add_argument("--val-frac", type=float, default=0.0)
    p.add_argument("--lengthscale", type=float, default=None, help="override the data set's default")
    a = p.parse_args(argv)
    {"speed": cmd_speed, "scaling": cmd_scaling, "accuracy": cmd_accuracy, "discrete": cmd_discrete}[a.command](a)


if __name__ == "__main__":
    main()
