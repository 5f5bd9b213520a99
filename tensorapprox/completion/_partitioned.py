"""Alternating-minimization completion over observations held in row-block partitions (Dask).

:func:`tensorapprox.completion.altmin_complete` hands observations given as
Dask arrays (one partition a chunk) or as lists of COO blocks to this module.
The observations are shuffled once into row blocks (contiguous row ranges,
each in CSR order) and column blocks (contiguous column ranges, CSC order),
validated block by block (the partitions' summaries combined into the
messages the in-memory check gives) and persisted where Dask keeps data (this process
with the local schedulers, the workers' memory with ``dask.distributed``).
Each half-step then solves its rows block by block, with the other side's
factor a single graph key broadcast once to every block. The per-row problems,
their order of operations and the sketch keys are those of the in-memory
solver, so both give the same result to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse.linalg as spla

from .._dask import compute, format_size, import_dask, is_dask_collection, max_block_bytes, tree_sum
from .observations import _as_1d, _check_index, _pair_order, check_observations

__all__ = ["is_partitioned", "PartitionedObservations"]


def is_partitioned(rows, cols, values) -> bool:
    """True for Dask arrays, or for lists/tuples of 1-D blocks (COO partitions)."""
    if any(is_dask_collection(a) for a in (rows, cols, values)):
        return True
    blocks = [isinstance(a, (list, tuple)) and len(a) > 0 and all(np.ndim(b) == 1 for b in a)
              for a in (rows, cols, values)]
    return all(blocks)


def _input_partitions(rows, cols, values):
    """``[(rows_p, cols_p, values_p)]`` delayed or in-memory partitions, and the value dtype."""
    dask, _ = import_dask()
    if any(is_dask_collection(a) for a in (rows, cols, values)):
        if not all(is_dask_collection(a) for a in (rows, cols, values)):
            raise TypeError("rows, cols and values must all be Dask arrays, or all lists of blocks")
        for name, a in (("rows", rows), ("cols", cols), ("values", values)):
            if a.ndim != 1:
                raise ValueError(f"{name} must be a 1-D Dask array, got shape {a.shape}")
            if any(c != c for c in a.chunks[0]):
                raise ValueError(
                    f"{name} has unknown chunk sizes (NaN in {name}.chunks); call "
                    f"{name}.compute_chunk_sizes() first"
                )
        if not (rows.chunks == cols.chunks == values.chunks):
            raise ValueError(
                "rows, cols and values must have the same chunks (one partition a chunk); got "
                f"{rows.chunks[0]}, {cols.chunks[0]} and {values.chunks[0]}; rechunk them alike"
            )
        R, C, V = rows.to_delayed(), cols.to_delayed(), values.to_delayed()
        parts = list(zip(R.ravel(), C.ravel(), V.ravel()))
        vdtype = np.dtype(values.dtype)
    else:
        if not (len(rows) == len(cols) == len(values)):
            raise ValueError(
                f"rows, cols and values must hold the same number of blocks, got {len(rows)}, {len(cols)} "
                f"and {len(values)}"
            )
        parts = []
        for p, (r, c, v) in enumerate(zip(rows, cols, values)):
            if not (np.shape(r)[0] == np.shape(c)[0] == np.shape(v)[0]):
                raise ValueError(
                    f"block {p}: rows, cols and values must have the same length, got "
                    f"{np.shape(r)[0]}, {np.shape(c)[0]} and {np.shape(v)[0]}"
                )
            parts.append((r, c, v))
        vdtype = np.result_type(*[np.asarray(v).dtype for _, _, v in parts])
    if np.issubdtype(vdtype, np.complexfloating):
        raise TypeError("values must be real; complex values are not supported")
    dtype = np.dtype(np.float32) if vdtype == np.float32 else np.dtype(np.float64)
    return parts, dtype


def _partitions_to_fit(nparts: int, largest: int, cap: int) -> int:
    """Partitions to suggest when the largest block of ``nparts`` takes ``largest > cap`` bytes.

    The blocks shrink about in proportion to their number, but smaller
    blocks are less even: the proportional count (17 for 3 partitions of a
    largest 16.1 KiB block under a 2.93 KiB cap) still left one of 3.41 KiB,
    so the suggestion has half as many again.
    """
    return max(1, math.ceil(1.5 * nparts * largest / cap))


def _edges(n: int, nblocks: int) -> np.ndarray:
    nblocks = max(1, min(nblocks, n))
    return np.linspace(0, n, nblocks + 1).round().astype(np.int64)


def _split(r, c, v, shape, row_edges, dtype):
    """Split one input partition by row block; its summary last.

    The types are checked here (their messages name dtypes only). Entries
    with an index out of range or a non-finite value are left out of the
    blocks and counted in the summary ``(n, rows min, rows max, cols min,
    cols max, non-finite count, first non-finite position)``: the caller
    raises, over all partitions, the message the in-memory check gives
    (per-block counts and positions had pointed nowhere in the caller's data).
    """
    r = _check_index(_as_1d(r, "rows"), "rows", None, "row")
    c = _check_index(_as_1d(c, "cols"), "cols", None, "column")
    v = _as_1d(v, "values")
    if v.dtype == bool or not np.issubdtype(v.dtype, np.number):
        raise TypeError(f"values must hold real numbers, got dtype {v.dtype}")
    v = v.astype(dtype, copy=False)
    bad = ~np.isfinite(v)
    n = int(r.shape[0])
    summary = (n, int(r.min(initial=0)), int(r.max(initial=0)), int(c.min(initial=0)), int(c.max(initial=0)),
               int(bad.sum()), int(np.argmax(bad)) if bad.any() else -1)
    ok = ~bad & (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    if not ok.all():
        r, c, v = r[ok], c[ok], v[ok]
    return _by_block(row_edges, r, r, c, v) + [summary]


def _raise_for_summaries(summaries, shape):
    """The in-memory check's first error over all partitions' summaries (see :func:`_split`), if any."""
    real = [s for s in summaries if s[0] > 0]
    if not real:
        return
    n1, n2 = shape
    for name, axis, size, lo_at, hi_at in (("rows", "row", n1, 1, 2), ("cols", "column", n2, 3, 4)):
        lo, hi = min(s[lo_at] for s in real), max(s[hi_at] for s in real)
        _check_index(np.array([lo, hi], dtype=np.int64), name, size, axis)
    count = sum(s[5] for s in summaries)
    if count:
        offsets = np.cumsum([0] + [s[0] for s in summaries])
        first = next(int(offsets[p]) + s[6] for p, s in enumerate(summaries) if s[5])
        raise ValueError(f"values contains {count} NaN or Inf entries (first at position {first}); "
                         "drop those observations instead of encoding them as missing")


def _duplicates(pieces, shape):
    """``(count, (row, col) of the first)`` of the repeated pairs in one row block (pairs repeat within a block)."""
    r, c = (np.concatenate([p[j] for p in pieces]).astype(np.int64, copy=False) for j in range(2))
    # sorted by (row, col) without a key row * n2 + col, which overflowed
    # int64 for n1 * n2 >= 2^63 (distinct pairs then compared equal)
    order = _pair_order(r, c, shape[0], shape[1])
    r, c = r[order], c[order]
    dup = (r[1:] == r[:-1]) & (c[1:] == c[:-1])
    if not dup.any():
        return 0, None
    t = int(np.argmax(dup))
    return int(dup.sum()), (int(r[t]), int(c[t]))


def _by_block(edges, key, r, c, v):
    """``[(r, c, v) of the entries whose key lies in [edges[b], edges[b + 1])]``, stable."""
    b = np.searchsorted(edges, key, side="right") - 1
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(len(edges)))
    return [(r[order[i:j]], c[order[i:j]], v[order[i:j]]) for i, j in zip(bounds[:-1], bounds[1:])]


def _gather(pieces, n, dtype):
    """The pieces of one block concatenated, or None with an empty layout when there are none."""
    r, c, v = (np.concatenate([p[j] for p in pieces]) for j in range(3))
    if r.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return None, (np.zeros(n + 1, dtype=np.int64), e, np.zeros(0, dtype=dtype), e, e)
    return (r, c, v), None


def _row_block(pieces, shape, lo, hi, duplicates, seed, dtype):
    """One row block: validated (sorted by row, col; duplicates handled) and laid out as CSR."""
    from .altmin import _layout

    entries, empty = _gather(pieces, hi - lo, dtype)
    if empty is not None:
        return empty
    # repeated pairs with duplicates='error' are counted over all blocks and
    # raised by the caller (see _duplicates); averaged here, never used then
    obs = check_observations(*entries, shape, duplicates="mean")
    return _layout(obs.rows, obs.cols, obs.values, hi - lo, True, seed, shape, lo=lo)


def _split_cols(layout, col_edges):
    """The entries of a row block, split by column block: ``[(rows, cols, vals)]``."""
    _, cols, vals, rows, _ = layout
    return _by_block(col_edges, cols, rows, cols, vals)


def _col_block(pieces, shape, lo, hi, seed, dtype):
    """One column block laid out as CSC (entries already validated by their row blocks)."""
    from .altmin import _layout

    entries, empty = _gather(pieces, hi - lo, dtype)
    if empty is not None:
        return empty
    return _layout(*entries, hi - lo, False, seed, shape, lo=lo)


def _block_stats(layout):
    """``(nnz, sum / m, sum of squares / m^2, counts per compressed index, m)`` of a block, ``m`` its largest magnitude.

    The values and their squares are summed over ``m`` so that neither tiny
    nor huge values underflow or overflow.
    """
    indptr, _, vals, _, _ = layout
    v = vals.astype(np.float64)
    m = float(np.max(np.abs(v), initial=0.0))
    w = v / m if m > 0 else v
    return vals.shape[0], float(np.sum(w)), float(w @ w), np.diff(indptr), m


def _block_nbytes(layout):
    return sum(a.nbytes for a in layout)


def _block_matmat(layout, lo, hi, n2, mu, p, Om):
    """``M_block @ Om`` with ``M = (values - mu) / p`` on this row block."""
    import scipy.sparse as sp

    indptr, cols, vals, _, _ = layout
    M = sp.csr_matrix(((vals - mu) / p, cols, indptr), shape=(hi - lo, n2))
    return M @ Om


def _block_rmatmat(layout, lo, hi, n2, mu, p, Q):
    """``M_block^T @ Q[lo:hi]``."""
    import scipy.sparse as sp

    indptr, cols, vals, _, _ = layout
    M = sp.csr_matrix(((vals - mu) / p, cols, indptr), shape=(hi - lo, n2))
    return np.asarray(M.T @ Q[lo:hi])


def _block_solve(layout, step, F, X0, lo, hi, mu, b_other, want_rss):
    return step(layout, F, X0[lo:hi], mu, b_other, want_rss)


class PartitionedObservations:
    """Observations shuffled into persisted row and column blocks (the partitioned backend).

    Built by :func:`altmin_complete` from Dask arrays or lists of COO blocks;
    offers what the alternating iteration needs: counts, norms, the scaled
    observed matrix as a linear operator, and block-wise half-step solves.
    """

    def __init__(self, rows, cols, values, shape, *, duplicates, seeds, n_blocks=None, progress=False):
        dask, _ = import_dask()
        parts, dtype = _input_partitions(rows, cols, values)
        n1, n2 = shape
        self.shape = (n1, n2)
        self.dtype = dtype
        self.progress = progress
        nb = n_blocks or len(parts)
        self.row_edges = _edges(n1, nb)
        self.col_edges = _edges(n2, nb)
        rb = len(self.row_edges) - 1
        cb = len(self.col_edges) - 1
        split = dask.delayed(_split, pure=True, nout=rb + 1)
        pieces = [split(r, c, v, self.shape, self.row_edges, dtype) for r, c, v in parts]
        summaries = [pc[rb] for pc in pieces]
        dups = ([dask.delayed(_duplicates, pure=True)([pc[b] for pc in pieces], self.shape) for b in range(rb)]
                if duplicates == "error" else [])
        row_blocks = [
            dask.delayed(_row_block, pure=True)([pc[b] for pc in pieces], self.shape, int(self.row_edges[b]),
                                                int(self.row_edges[b + 1]), duplicates, seeds[0], dtype)
            for b in range(rb)
        ]
        csplit = dask.delayed(_split_cols, pure=True, nout=cb)
        cpieces = [csplit(blk, self.col_edges) for blk in row_blocks]
        col_blocks = [
            dask.delayed(_col_block, pure=True)([pc[b] for pc in cpieces], self.shape, int(self.col_edges[b]),
                                                int(self.col_edges[b + 1]), seeds[1], dtype)
            for b in range(cb)
        ]
        # the input is read once: the summaries and the duplicate counts come
        # from the same pass that builds the blocks
        persisted = dask.persist(*row_blocks, *col_blocks, *summaries, *dups)
        summaries, dups = compute(list(persisted[rb + cb:rb + cb + len(parts)]),
                                  list(persisted[rb + cb + len(parts):]), progress=False)
        _raise_for_summaries(summaries, self.shape)
        count = sum(n for n, _ in dups)
        if count:
            i, j = next(e for n, e in dups if n)
            raise ValueError(f"{count} duplicate (row, col) pairs, e.g. ({i}, {j}); "
                             "remove them or pass duplicates='mean' to average them")
        self.row_blocks = list(persisted[:rb])
        self.col_blocks = list(persisted[rb:rb + cb])
        stats = [dask.delayed(_block_stats, pure=True)(b) for b in self.row_blocks + self.col_blocks]
        sizes = [dask.delayed(_block_nbytes, pure=True)(b) for b in self.row_blocks + self.col_blocks]
        stats, sizes = compute(stats, sizes, progress=progress)
        cap = max_block_bytes()
        if max(sizes) > cap:
            raise ValueError(
                f"a partition of observations takes {format_size(max(sizes))} ({max(sizes)} bytes), above the "
                f"block cap of {format_size(cap)} ({cap} bytes; dask config 'tensorapprox.max-block-bytes'); "
                "split the input into "
                f"more partitions (e.g. rows.rechunk({_partitions_to_fit(len(parts), max(sizes), cap)}"
                " chunks), likewise cols and values) or raise the cap"
            )
        row_stats, col_stats = stats[:rb], stats[rb:]
        self.nnz = int(sum(s[0] for s in row_stats))
        if self.nnz == 0:
            raise ValueError("no observations: rows, cols and values are empty; give at least one observed entry")
        self.max_abs = max(s[4] for s in row_stats)
        top = self.max_abs if self.max_abs > 0 else 1.0
        # the blocks' sums over their largest magnitude, combined over the
        # largest of all: no overflow for values near the float64 limit
        self.mean_values = top * (sum(s[1] * (s[4] / top) for s in row_stats) / self.nnz)
        self.norm_values = top * float(np.sqrt(sum((s[4] / top) ** 2 * s[2] for s in row_stats)))
        self.row_counts = np.concatenate([s[3] for s in row_stats])
        self.col_counts = np.concatenate([s[3] for s in col_stats])

    # -- what the iteration needs -------------------------------------------------
    def operator(self, mu: float, p: float):
        dask, _ = import_dask()
        n1, n2 = self.shape
        e = self.row_edges

        def matmat(Om):
            Od = dask.delayed(np.ascontiguousarray(Om), pure=True)
            parts = [dask.delayed(_block_matmat, pure=True)(b, int(e[i]), int(e[i + 1]), n2, mu, p, Od)
                     for i, b in enumerate(self.row_blocks)]
            (out,) = compute(parts, progress=False)
            return np.concatenate(out, axis=0)

        def rmatmat(Q):
            Qd = dask.delayed(np.ascontiguousarray(Q), pure=True)
            parts = [dask.delayed(_block_rmatmat, pure=True)(b, int(e[i]), int(e[i + 1]), n2, mu, p, Qd)
                     for i, b in enumerate(self.row_blocks)]
            (out,) = compute(tree_sum(dask, parts), progress=False)
            return out

        return spla.LinearOperator((n1, n2), matvec=lambda x: matmat(x[:, None])[:, 0],
                                   rmatvec=lambda y: rmatmat(y[:, None])[:, 0],
                                   matmat=matmat, rmatmat=rmatmat, dtype=self.dtype)

    def solve(self, side, F, X0, mu, b_other, step, want_rss):
        """One half-step: every block of ``side`` solved with ``F`` (and ``b_other``) broadcast once."""
        dask, _ = import_dask()
        blocks, e = (self.col_blocks, self.col_edges) if side == "col" else (self.row_blocks, self.row_edges)
        Fd = dask.delayed(F, pure=True)
        X0d = dask.delayed(np.ascontiguousarray(X0), pure=True)
        bd = dask.delayed(b_other, pure=True) if b_other is not None else None
        parts = [dask.delayed(_block_solve, pure=True, nout=3)(blk, step, Fd, X0d, int(e[i]), int(e[i + 1]), mu, bd,
                                                               want_rss)
                 for i, blk in enumerate(blocks)]
        (out,) = compute(parts, progress=self.progress)
        X = np.concatenate([o[0] for o in out], axis=0)
        rss = float(sum(o[1] for o in out))
        steps = float(sum(o[2] for o in out))
        return X, rss, steps / max(1, X.shape[0])
