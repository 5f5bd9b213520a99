"""The ``tensorapprox`` command line.

``tensorapprox demo [--figures DIR | --no-figures]``
    Runs the library on built-in data, prints a short report and draws a
    few figures with :mod:`tensorapprox.plotting` into ``DIR`` (default
    ``./tensorapprox-demo-figures``).
``tensorapprox tucker IN.npy (--rank r1,r2,.. | --rtol 1e-6) -o OUT.npz``
    Compresses a dense ``.npy`` tensor to Tucker form.
``tensorapprox info FILE.npz``
    Describes a saved Tucker tensor.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np

__all__ = ["main"]


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GB"


def _parse_rank(text: str) -> tuple[int, ...] | int:
    try:
        parts = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rank must be comma-separated integers like 10,10,10; got {text!r}")
    if not parts:
        raise argparse.ArgumentTypeError("--rank is empty")
    return parts[0] if len(parts) == 1 else tuple(parts)


def _row(cells, widths):
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))


def demo_sections():
    """The demo's sections: (title, function printing the section's lines)."""
    return [
        ("Tucker compression of a Newton-type potential", _demo_tucker),
        ("Chebyshev-Tucker: long-range potential of 200 charges, evaluated off the grid", _demo_chebtucker),
    ]


def _demo_tensor(n: int = 96) -> np.ndarray:
    x = np.linspace(-1.0, 1.0, n)
    return 1.0 / np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2 + 0.1)


def _demo_charges():
    rng = np.random.default_rng(1)
    pos = rng.uniform(-0.6, 0.6, (200, 3))
    q = rng.choice([-1.0, 1.0], 200)
    return pos, q


def _demo_tucker(out) -> None:
    from .tucker import st_hosvd, tucker_als

    X = _demo_tensor()
    n = X.shape[0]
    normX = np.linalg.norm(X)
    out(f"data: 1/sqrt(x^2+y^2+z^2+0.1) sampled on a {n}^3 grid of [-1,1]^3 ({_fmt_bytes(X.nbytes)})")
    widths = (34, 12, 11, 12, 9)
    out(_row(("method", "ranks", "rel. error", "compression", "time"), widths))
    for label, fn in [
        ("st_hosvd(rtol=1e-6)", lambda: st_hosvd(X, rtol=1e-6)),
        ("st_hosvd(rtol=1e-10)", lambda: st_hosvd(X, rtol=1e-10)),
        ("st_hosvd(rank=8,randomized)", lambda: st_hosvd(X, rank=8, method="randomized", random_state=0)),
        ("tucker_als(rank=8)", lambda: tucker_als(X, 8).tucker),
    ]:
        t0 = time.perf_counter()
        T = fn()
        dt = time.perf_counter() - t0
        err = np.linalg.norm(T.full() - X) / normX
        out(_row((label, "x".join(map(str, T.ranks)), f"{err:.2e}", f"{T.compression_ratio:.0f}x", f"{dt * 1e3:.0f} ms"),
                 widths))


def _demo_chebtucker(out) -> None:
    from .particles import direct_potential, long_range_potential

    pos, q = _demo_charges()
    pts = np.random.default_rng(2).uniform(-1.0, 1.0, (20000, 3))
    t0 = time.perf_counter()
    ref = direct_potential(pts, pos, q, kernel="long_range", r_c=0.2)
    t_direct = time.perf_counter() - t0
    out("charges: 200 at random in [-0.6,0.6]^3; kernel erf(r/0.2)/r; 20000 random test points in [-1,1]^3")
    widths = (34, 12, 11, 12, 9)
    out(_row(("method", "ranks", "max rel.err", "compression", "time"), widths))
    out(_row(("direct sum (reference)", "", "", "", f"{t_direct * 1e3:.0f} ms"), widths))
    for rtol in (1e-5, 1e-7):
        t0 = time.perf_counter()
        F = long_range_potential(pos, q, [(-1.0, 1.0)] * 3, r_c=0.2, rtol=rtol, degree=64)
        vals = F(pts)
        dt = time.perf_counter() - t0
        err = float(np.max(np.abs(vals - ref)) / np.max(np.abs(ref)))
        out(_row((f"long_range_potential(rtol={rtol:g})", "x".join(map(str, F.ranks)), f"{err:.2e}",
                  f"{F.compression_ratio:.0f}x", f"{dt * 1e3:.0f} ms"), widths))


def demo_figures():
    """The demo's figures: (file name, function drawing it on a matplotlib Figure)."""
    return [
        ("tucker_mode_spectra.png", _figure_tucker_spectra),
        ("tucker_error_vs_compression.png", _figure_tucker_tradeoff),
        ("convergence.png", _figure_convergence),
    ]


def _figure_tucker_spectra(fig) -> str:
    from .plotting import mode_spectra, plot_mode_spectra

    spectra = mode_spectra(_demo_tensor())
    ax = fig.add_subplot()
    # the first 40 of 96: the rest is rounding noise below 1e-16
    plot_mode_spectra([s[:40] for s in spectra], ax=ax, labels=["mode 1 (x)", "mode 2 (y)", "mode 3 (z)"])
    ax.set_title(r"Mode spectra of $1/\sqrt{x^2+y^2+z^2+0.1}$ on a $96^3$ grid" "\n"
                 "(equal for the three modes: the function is symmetric)", fontsize="medium")
    return "singular values of the three unfoldings of the demo tensor"


def _figure_tucker_tradeoff(fig) -> str:
    from .plotting import plot_error_vs_compression
    from .tucker import st_hosvd

    X = _demo_tensor()
    normX = np.linalg.norm(X)
    ax = fig.add_subplot()
    for method in ("svd", "randomized"):
        ratios, errors, notes = [], [], []
        for rank in (2, 4, 6, 8, 12, 16):
            T = st_hosvd(X, rank=rank, method=method, random_state=0)
            ratios.append(T.compression_ratio)
            errors.append(float(np.linalg.norm(T.full() - X) / normX))
            notes.append(f"r={rank}" if method == "svd" else "")
        plot_error_vs_compression(ratios, errors, ax=ax, label=f"st_hosvd(method={method!r})",
                                  annotations=notes, marker="o" if method == "svd" else "x")
    ax.set_title("Tucker: relative error against compression (ranks r, r, r)")
    return "st_hosvd at ranks 2..16, exact and randomized"


def _figure_convergence(fig) -> str:
    from .chebtucker import ChebTucker
    from .particles import direct_potential
    from .plotting import plot_convergence
    from .tucker import tucker_als

    pos, q = _demo_charges()
    pts = np.random.default_rng(2).uniform(-1.0, 1.0, (2000, 3))
    ref = direct_potential(pts, pos, q, kernel="long_range", r_c=0.2)

    def f(x):
        return direct_potential(x.reshape(-1, 3), pos, q, kernel="long_range", r_c=0.2).reshape(x.shape[:-1])

    degrees = (4, 8, 12, 16, 24, 32, 48)
    errs = []
    for deg in degrees:
        F = ChebTucker.from_function(f, [(-1.0, 1.0)] * 3, degree=deg, rtol=1e-12)
        errs.append(float(np.max(np.abs(F(pts) - ref)) / np.max(np.abs(ref))))
    ax1, ax2 = fig.subplots(1, 2)
    plot_convergence(errs, ax=ax1, x=degrees, xlabel="Chebyshev degree per mode",
                     ylabel="max relative error at 2000 points", label="ChebTucker.from_function")
    ax1.set_title("Chebyshev-Tucker: potential of 200 charges")
    res = tucker_als(_demo_tensor(), rank=4, init="random", random_state=0, tol=1e-10)
    plot_convergence(res, ax=ax2, label="tucker_als, random start")
    plot_convergence(tucker_als(_demo_tensor(), rank=4, tol=1e-10), ax=ax2, label="tucker_als, st_hosvd start",
                     marker="x")
    ax2.set_ylabel(r"relative error $\|X - \hat X\|_F / \|X\|_F$")
    ax2.set_title("Tucker-ALS (HOOI) sweeps, rank (4, 4, 4)")
    return "Chebyshev degree convergence and Tucker-ALS sweeps"


def _write_figures(folder, out) -> list:
    from pathlib import Path

    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in demo_figures():
        t0 = time.perf_counter()
        fig = Figure(figsize=(11, 4.5) if name == "convergence.png" else (6.4, 4.8), layout="constrained")
        what = draw(fig)
        path = folder / name
        fig.savefig(path, dpi=100)
        written.append(path)
        out(f"  {path}  ({what}; {time.perf_counter() - t0:.1f} s)")
    return written


def _cmd_demo(args) -> int:
    from . import __version__

    print(f"tensorapprox {__version__} demo")
    t_all = time.perf_counter()
    for title, fn in demo_sections():
        print(f"\n== {title}")
        fn(print)
    if not args.no_figures:
        print(f"\n== Figures (tensorapprox.plotting), written to {args.figures}")
        try:
            _write_figures(args.figures, print)
        except OSError as exc:
            print(f"error: could not write the figures to {args.figures}: {exc}", file=sys.stderr)
            return 2
    print(f"\ndone in {time.perf_counter() - t_all:.1f} s")
    return 0


def _cmd_tucker(args) -> int:
    from .tucker import st_hosvd, tucker_als

    try:
        X = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        print(f"error: could not read {args.input} as a .npy array: {exc}", file=sys.stderr)
        return 2
    if not isinstance(X, np.ndarray):
        print(f"error: {args.input} holds several arrays; give a single-array .npy file", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        if args.als:
            rank = args.rank if args.rank is not None else st_hosvd(X, rtol=args.rtol).ranks
            T = tucker_als(X, rank, max_iter=args.max_iter).tucker
        else:
            T = st_hosvd(X, args.rank, rtol=args.rtol, method=args.method, random_state=args.seed)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    Xf = X.astype(T.dtype, copy=False)
    # the input is in memory already, so its reconstruction may be as large
    err = float(np.linalg.norm(T.full(max_bytes=None) - Xf) / max(np.linalg.norm(Xf), np.finfo(T.dtype).tiny))
    T.save(args.output)
    print(f"input:        {args.input}  shape {tuple(X.shape)}  {X.dtype}  ({_fmt_bytes(X.nbytes)})")
    print(f"ranks:        {T.ranks}")
    print(f"rel. error:   {err:.3e}")
    print(f"compression:  {T.compression_ratio:.1f}x  ({_fmt_bytes(T.nbytes)})")
    print(f"time:         {dt:.3f} s")
    print(f"saved:        {args.output}")
    return 0


def _cmd_info(args) -> int:
    from .tucker import TuckerTensor

    try:
        T = TuckerTensor.load(args.file)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"file:         {args.file}")
    print("format:       Tucker tensor")
    print(f"shape:        {T.shape}")
    print(f"ranks:        {T.ranks}")
    print(f"dtype:        {T.dtype}")
    print(f"stored:       {_fmt_bytes(T.nbytes)}  (full tensor {_fmt_bytes(np.prod(T.shape) * T.core.itemsize)})")
    print(f"compression:  {T.compression_ratio:.1f}x")
    print(f"norm:         {T.norm():.6e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tensorapprox", description="Low-rank tensor and matrix approximation.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the library on built-in data, print a report and draw figures")
    fg = d.add_mutually_exclusive_group()
    fg.add_argument("--figures", metavar="DIR", default="tensorapprox-demo-figures",
                    help="folder for the PNG figures, made if missing (default: ./tensorapprox-demo-figures)")
    fg.add_argument("--no-figures", action="store_true", help="print the report only")
    d.set_defaults(func=_cmd_demo)
    t = sub.add_parser("tucker", help="compress a dense .npy tensor to Tucker form")
    t.add_argument("input", help="dense tensor as .npy (no pickled objects)")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--rank", type=_parse_rank, help="multilinear rank, e.g. 10,10,10 (one number: every mode)")
    g.add_argument("--rtol", type=float, help="relative error bound, e.g. 1e-6")
    t.add_argument("-o", "--output", required=True, help="output .npz")
    t.add_argument("--method", default="auto", choices=["auto", "eigh", "svd", "randomized"])
    t.add_argument("--als", action="store_true", help="refine with Tucker-ALS (HOOI)")
    t.add_argument("--max-iter", type=int, default=50)
    t.add_argument("--seed", type=int, default=0, help="seed of the randomized method")
    t.set_defaults(func=_cmd_tucker)
    i = sub.add_parser("info", help="describe a saved Tucker tensor (.npz)")
    i.add_argument("file")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tensorapprox`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 when an input file cannot be read
        or an argument is rejected by the library (the message goes to
        standard error).

    Raises
    ------
    SystemExit
        From :mod:`argparse`, for ``--help`` (status 0) and for arguments it
        rejects (status 2), as for any command-line program.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from tensorapprox.cli import main
    >>> d = tempfile.mkdtemp()
    >>> x = np.linspace(0, 1, 10)
    >>> np.save(os.path.join(d, "X.npy"), np.exp(-x[:, None, None] * x[None, :, None] - x[None, None, :]))
    >>> main(["tucker", os.path.join(d, "X.npy"), "--rank", "2", "-o", os.path.join(d, "T.npz")])  # doctest: +ELLIPSIS
    input:        ...
    0
    >>> main(["info", os.path.join(d, "T.npz")])  # doctest: +ELLIPSIS
    file:         ...
    ranks:        (2, 2, 2)
    ...
    0
    """
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
