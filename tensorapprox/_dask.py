"""Shared pieces of the Dask paths: detection, import, limits, computing with progress.

Nothing here imports Dask at module import time: a plain ``import tensorapprox``
never needs the ``dask`` extra. Functions that take a Dask collection import it
through :func:`import_dask`, which names the extra when it is missing.

Two limits, read from Dask's own configuration (``dask.config.set``) so that
they travel with the rest of a user's Dask settings:

``tensorapprox.max-block-bytes`` (default ``"512 MiB"``)
    The largest block an algorithm may materialize at once: the fibre of a
    tensor along the mode whose Gram matrix or projection is being formed,
    or a partition of observed entries. A chunking that would force a larger
    block is refused with an error naming the rechunk that fits.
``tensorapprox.in-memory-bytes`` (default ``"256 MiB"``)
    Intermediate results up to this size (a tensor projected in some modes,
    a Tucker core) are computed into memory and the algorithm goes on with
    the in-memory code; larger ones stay lazy and cost one more pass over
    the data.

Either key takes a positive integer number of bytes or a size string that
:func:`dask.utils.parse_bytes` reads (``"512 MiB"``, ``"1 GB"``, ``"4096"``);
any other value (None, a list, a bool, NaN, Inf, zero, a negative or
fractional size, an unreadable string) raises a ValueError that names the
key and these forms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["is_dask_collection", "import_dask", "max_block_bytes", "in_memory_bytes", "compute", "check_known_chunks",
           "format_size"]

_DEFAULTS = {"max-block-bytes": "512 MiB", "in-memory-bytes": "256 MiB"}


def is_dask_collection(x: Any) -> bool:
    """True for a Dask array (or any Dask collection), without importing Dask."""
    mod = type(x).__module__ or ""
    return mod.split(".")[0] == "dask" and hasattr(x, "__dask_graph__")


def import_dask():
    """``(dask, dask.array)``, or an ImportError naming the extra to install."""
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised without the extra only
        raise ImportError(
            "Dask support needs the 'dask' extra: pip install 'tensorapprox[dask]'"
        ) from exc
    return dask, da


def _limit(key: str) -> int:
    """The positive byte count set for ``tensorapprox.<key>`` (or its default).

    Accepted: a positive integer (or a float holding one, e.g. ``1e9``), or a
    size string that :func:`dask.utils.parse_bytes` reads (``"512 MiB"``,
    ``"1 GB"``, ``"4096"``) giving a positive whole number of bytes. Anything
    else (None, lists, bools, NaN, Inf, zero, negative or fractional sizes,
    unreadable strings) raises a ValueError naming the key and those forms.
    """
    dask, _ = import_dask()
    from dask.utils import parse_bytes

    value = dask.config.get(f"tensorapprox.{key}", _DEFAULTS[key])
    n = None
    if isinstance(value, str):
        try:
            n = parse_bytes(value)
        except (TypeError, ValueError, OverflowError):
            n = None
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        if math.isfinite(value) and float(value).is_integer():
            n = int(value)
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(
            f"dask config 'tensorapprox.{key}' must be a positive whole number of bytes: an int such as "
            f"268435456, or a size string such as '256 MiB' or '1 GB' (as dask.utils.parse_bytes reads), "
            f"got {value!r}"
        )
    return n


def max_block_bytes() -> int:
    """Largest block an algorithm may hold at once (``tensorapprox.max-block-bytes``)."""
    return _limit("max-block-bytes")


def in_memory_bytes() -> int:
    """Size up to which intermediate results are computed into memory (``tensorapprox.in-memory-bytes``)."""
    return _limit("in-memory-bytes")


def format_size(nbytes: float) -> str:
    """A byte count for messages: exact bytes below 1 KiB, else KiB/MiB/GiB/TiB with 3 significant digits.

    Precise enough that a size printed as above a cap reads as above it
    (whole MiB printed "4 MiB, above the block cap of 4 MiB").

    >>> format_size(64), format_size(1536), format_size(3.5 * 2**20), format_size(3.8147 * 2**20)
    ('64 B', '1.5 KiB', '3.5 MiB', '3.81 MiB')
    """
    nbytes = float(nbytes)
    if nbytes < 1024:
        return f"{int(nbytes)} B"
    for unit, power in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 2**power:
            return f"{nbytes / 2**power:.3g} {unit}"
    return f"{int(nbytes)} B"  # pragma: no cover - not reached


def check_known_chunks(X, name: str = "X") -> None:
    """Refuse arrays whose chunk sizes are unknown (NaN), e.g. after boolean indexing."""
    if any(isinstance(c, float) and math.isnan(c) for cs in X.chunks for c in cs):
        raise ValueError(
            f"{name} has unknown chunk sizes (NaN in {name}.chunks); call "
            f"{name}.compute_chunk_sizes() (or {name} = {name}.compute_chunk_sizes()) first"
        )


def _distributed_client():
    """The active ``dask.distributed.Client``, or None."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def compute(*objs, progress: bool = False):
    """``dask.compute(*objs)``, showing Dask's progress bar when asked.

    With a ``dask.distributed.Client`` active the work runs on its cluster
    (Dask's default) and progress comes from ``distributed.progress``;
    otherwise from ``dask.diagnostics.ProgressBar`` on the local scheduler.
    """
    dask, _ = import_dask()
    with _blas_threads_for_local_scheduler(dask, objs):
        if not progress:
            return dask.compute(*objs)
        return _compute_with_progress(dask, objs)


def _blas_threads_for_local_scheduler(dask, objs):
    """Share the cores between Dask's local threads and BLAS (needs threadpoolctl, in the extra).

    The local threaded scheduler runs one task per core, and each task's BLAS
    call would start its own threads on every core: oversubscribed, OpenBLAS
    slows down several-fold. For the duration of the computation BLAS gets
    ``cores // dask threads`` threads (one by default). Distributed workers set
    their own limits; other schedulers are left alone.
    """
    import os
    from contextlib import nullcontext

    try:
        from threadpoolctl import threadpool_limits
        import dask.threaded
    except ImportError:
        return nullcontext()
    flat, _ = _flatten(objs)
    if dask.base.get_scheduler(collections=[o for o in flat if dask.is_dask_collection(o)]) is not dask.threaded.get:
        return nullcontext()
    cores = os.cpu_count() or 1
    workers = dask.config.get("num_workers", None) or cores
    return threadpool_limits(max(1, cores // int(workers)), user_api="blas")


def _compute_with_progress(dask, objs):
    client = _distributed_client()
    if client is not None:
        from distributed import progress as dist_progress

        flat, rebuild = _flatten(objs)
        futures = client.compute(flat)
        dist_progress(futures)
        return rebuild(client.gather(futures))
    from dask.diagnostics import ProgressBar

    with ProgressBar():
        return dask.compute(*objs)


def _flatten(objs):
    """Nested lists/tuples of collections -> a flat list, and the function that nests results back."""
    flat = []

    def walk(o):
        if isinstance(o, (list, tuple)):
            return [walk(x) for x in o]
        flat.append(o)
        return len(flat) - 1

    shape = walk(list(objs))

    def rebuild(values):
        def back(s):
            return [back(x) for x in s] if isinstance(s, list) else values[s]

        return tuple(back(shape))

    return flat, rebuild


def tree_sum(dask, items, arity: int = 8, combine=None):
    """Combine delayed values in groups of ``arity`` (a tree), so no task holds more than ``arity`` of them.

    ``combine`` defaults to the element-wise sum (of arrays, scalars or tuples of them); ``max`` gives
    the maximum.
    """
    items = list(items)
    if not items:
        raise ValueError("nothing to sum")
    join = dask.delayed(combine or _add_all, pure=True)
    while len(items) > 1:
        items = [join(*items[i:i + arity]) if len(items[i:i + arity]) > 1 else items[i]
                 for i in range(0, len(items), arity)]
    return items[0]


def _add_all(*parts):
    """Sum of tuples (element-wise) or of arrays/scalars."""
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_add_all(*col) for col in zip(*parts))
    total = first.copy() if hasattr(first, "copy") else first
    with np.errstate(over="ignore", invalid="ignore"):  # Inf/NaN sums are reported by the callers
        for p in parts[1:]:
            total = total + p
    return total
