"""Array-namespace helpers, the dtype policy and ``random_state`` handling.

Every dense algorithm in the package obtains its namespace with
:func:`get_namespace` and then uses only that namespace (plus its ``linalg``),
so the same code runs on numpy, cupy and any array-API array and returns
arrays of the input's kind. There is no global backend state.
"""

from __future__ import annotations

import importlib
import numbers
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_cupy_namespace, is_numpy_namespace

__all__ = [
    "get_namespace",
    "is_numpy",
    "is_cupy",
    "float_dtype_for",
    "check_random_state",
    "random_normal",
    "readonly",
    "same_float",
    "to_numpy",
    "optional_import",
]


def get_namespace(*arrays: Any):
    """Return the array-API namespace shared by ``arrays``.

    Python scalars and ``None`` are ignored. Raises ``TypeError`` when the
    arrays come from different libraries.
    """
    arrays = tuple(a for a in arrays if a is not None and not isinstance(a, (numbers.Number, bool)))
    if not arrays:
        return array_namespace(np.empty(0))
    return array_namespace(*arrays)


def is_numpy(xp) -> bool:
    """True when ``xp`` is numpy (or its array-API-compat wrapper)."""
    return is_numpy_namespace(xp)


def is_cupy(xp) -> bool:
    """True when ``xp`` is cupy (or its array-API-compat wrapper)."""
    return is_cupy_namespace(xp)


def float_dtype_for(x, xp):
    """The floating dtype an algorithm computes in for input ``x``.

    float32 stays float32, float64 stays float64, integers and booleans are
    promoted to float64. Complex input raises ``TypeError`` (not supported
    yet).
    """
    dt = x.dtype
    if xp.isdtype(dt, "complex floating"):
        raise TypeError("complex input is not supported yet; pass the real and imaginary parts separately")
    if dt == xp.float32:
        return xp.float32
    if xp.isdtype(dt, "real floating"):
        return xp.float64
    if xp.isdtype(dt, ("integral", "bool")):
        return xp.float64
    raise TypeError(f"unsupported dtype {dt!r}; expected a real floating, integer or boolean array")


def check_random_state(random_state) -> np.random.Generator:
    """Turn ``None``, an int or a ``numpy.random.Generator`` into a Generator.

    Random numbers are always drawn on the host with numpy and moved to the
    input's device (see :func:`random_normal`), so one seed gives the same
    result on numpy and cupy.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}")
        return np.random.default_rng(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise TypeError(
        "random_state must be None, an int or a numpy.random.Generator, "
        f"got {type(random_state).__name__}"
    )


def random_normal(xp, shape, dtype, rng: np.random.Generator, like=None):
    """Standard normal array of ``shape`` in namespace ``xp``.

    Drawn on the host from ``rng`` and moved to the device of ``like``.
    """
    host = rng.standard_normal(shape)
    if like is not None:
        return xp.asarray(host, dtype=dtype, device=device(like))
    return xp.asarray(host, dtype=dtype)


def same_float(xp, *arrays) -> list:
    """``arrays`` as they are when they share a floating dtype; otherwise all in one floating dtype.

    Mixed inputs follow the dtype policy: float32 when every floating array
    is float32 and nothing else is present, float64 otherwise (integers and
    booleans promoted, also when they all share one dtype); complex64 or
    complex128 when any array is complex. numpy would promote a mix itself; the array API
    refuses to mix integers with floats (``array_api_strict`` raised
    TypeError where numpy gave a float64 result).
    """
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) <= 1 and all(xp.isdtype(d, ("real floating", "complex floating")) for d in dtypes):
        return list(arrays)
    # integers and booleans are promoted even when they agree: two int8
    # arrays multiplied in int8 wrapped around, two booleans gave a logical
    # product (and array_api_strict refused matmul on them). A complex array
    # makes the common dtype complex (its imaginary part was cut off)
    if any(xp.isdtype(d, "complex floating") for d in dtypes):
        single = all(d == xp.float32 or d == xp.complex64 for d in dtypes)
        dt = xp.complex64 if single else xp.complex128
    else:
        dt = xp.float32 if all(d == xp.float32 for d in dtypes) else xp.float64
    return [a if a.dtype == dt else xp.astype(a, dt) for a in arrays]


def readonly(a, xp, copy: bool):
    """``a``, or a copy of it with ``copy``; for numpy a read-only array (a read-only view without ``copy``).

    The stored arrays of the immutable result types (``TuckerTensor``,
    ``LowRankMatrix``). Other libraries have no read-only flag: their arrays
    are copied with ``copy`` and kept as they are otherwise.
    """
    if isinstance(a, np.ndarray):
        v = np.array(a, copy=True) if copy else a.view()
        v.flags.writeable = False
        return v
    return xp.asarray(a, copy=True) if copy else a


def to_numpy(x) -> np.ndarray:
    """Copy any array (numpy, cupy, array-API) to a numpy array on the host."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    try:
        return np.asarray(x)
    except Exception:  # array_api_strict refuses implicit conversion
        return np.from_dlpack(x)


def optional_import(module: str, extra: str):
    """Import an optional dependency or raise an ImportError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{module} is required for this feature; install it with "
            f"`pip install 'tensorapprox[{extra}]'`"
        ) from exc
