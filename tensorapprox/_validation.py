"""Input checks shared by every public function.

Public functions validate once, at the door, and inner code trusts its
inputs. Every error names the argument and says how to fix it.
"""

from __future__ import annotations

import math
import numbers
import os
import zipfile
from typing import Sequence

import numpy as np

from ._array import float_dtype_for, get_namespace

__all__ = [
    "check_tensor",
    "check_rank",
    "check_rtol",
    "check_rank_or_rtol",
    "check_int",
    "check_positive_float",
    "check_choice",
]


def check_tensor(X, *, name: str = "X", min_ndim: int = 2, xp=None, finite: bool = True,
                 return_sumsq: bool = False):
    """Validate a dense tensor and return it as a floating array of its namespace.

    Integer and boolean input is promoted to float64, float32 stays float32.
    The caller's array is never modified (a promoted copy is made only when
    needed; algorithms must not write into the returned array). With
    ``return_sumsq=True`` (needs ``finite=True``) the squared Frobenius norm,
    computed for the finiteness check anyway, is returned too:
    ``(X, sumsq)``.
    """
    if xp is None:
        try:
            xp = get_namespace(X)
        except TypeError:
            xp = None
        if xp is None or not hasattr(X, "shape"):
            raise TypeError(
                f"{name} must be an array (numpy, cupy or array-API), got {type(X).__name__}; "
                "convert lists with numpy.asarray first"
            )
    dtype = float_dtype_for(X, xp)  # raises for complex
    if X.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(X.shape)}")
    if any(int(n) == 0 for n in X.shape):
        raise ValueError(f"{name} has an empty dimension: shape {tuple(X.shape)}")
    if X.dtype != dtype:
        X = xp.astype(X, dtype)
    if finite:
        # one dot product: finite unless X holds NaN/Inf (or overflows, which
        # the exact scan below then tells apart)
        v = xp.reshape(X, (-1,))
        with np.errstate(over="ignore"):
            sumsq = float(xp.vecdot(v, v))
        if not math.isfinite(sumsq) and not bool(xp.all(xp.isfinite(X))):
            raise ValueError(f"{name} contains NaN or Inf values; remove or impute them first")
        if return_sumsq:
            return X, sumsq
    return X


DEFAULT_MAX_DENSE_BYTES = 2**30


def check_dense_size(shape, itemsize: int, max_bytes, *, what: str, instead: str) -> None:
    """Refuse to form a dense array larger than ``max_bytes`` (``None``: no limit).

    Raises ``MemoryError`` naming the size it would need, ``instead`` (what
    to use rather than the dense array) and ``max_bytes``.
    """
    if max_bytes is None:
        return
    need = math.prod(int(n) for n in shape) * int(itemsize)
    if need > max_bytes:
        raise MemoryError(
            f"the dense {what} of shape {tuple(int(n) for n in shape)} needs {need} bytes, more than "
            f"max_bytes={max_bytes}; {instead}, or raise max_bytes (None for no limit)"
        )


def check_size_pair(value, *, name: str, labels: tuple[str, str] = ("n1", "n2")) -> tuple[int, int]:
    """Validate a pair of positive ints, such as a matrix shape ``(n1, n2)``.

    ``TypeError`` for a value that is not a sequence or holds a non-int,
    ``ValueError`` for a sequence of another length or a size below 1; the
    messages name ``name`` (and ``name[0]``, ``name[1]``).
    """
    a, b = labels
    try:
        pair = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a pair of ints ({a}, {b}), got {type(value).__name__}") from None
    if len(pair) != 2:
        raise ValueError(f"{name} must be a pair ({a}, {b}), got {len(pair)} entries: {pair!r}")
    return (check_int(pair[0], name=f"{name}[0]", minimum=1), check_int(pair[1], name=f"{name}[1]", minimum=1))


def check_int(value, *, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Validate an integer argument within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_bool(value, *, name: str) -> bool:
    """``value`` as a bool; only ``True`` or ``False`` (numpy's too) are taken.

    A flag tested for truthiness took any object: ``transpose="no"``
    transposed, ``verbose="no"`` printed.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def check_positive_float(value, *, name: str, allow_zero: bool = False) -> float:
    """Validate a finite positive (or non-negative) real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int (or a Fraction) beyond float64's range
        what = (f"an integer of {int(value).bit_length()} bits" if isinstance(value, numbers.Integral)
                else "a value beyond float64's range")
        raise ValueError(f"{name} must be finite, got {what}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_choice(value, *, name: str, choices: Sequence[str]) -> str:
    """Validate a string option against its allowed values."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def check_rank(rank, shape: Sequence[int], *, name: str = "rank") -> tuple[int, ...]:
    """Validate a multilinear rank against a tensor shape.

    An int is broadcast to every mode. Raises ``ValueError`` naming the mode
    when an entry is non-positive or exceeds the mode size.
    """
    d = len(shape)
    if isinstance(rank, numbers.Integral) and not isinstance(rank, bool):
        rank = (int(rank),) * d
    try:
        rank = tuple(rank)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {type(rank).__name__}") from None
    if len(rank) != d:
        raise ValueError(f"{name} has {len(rank)} entries but the tensor has {d} modes (shape {tuple(shape)})")
    out = []
    for k, (r, n) in enumerate(zip(rank, shape)):
        if isinstance(r, bool) or not isinstance(r, numbers.Integral):
            raise TypeError(f"{name}[{k}] must be an int, got {type(r).__name__}")
        r = int(r)
        if r < 1:
            raise ValueError(f"{name}[{k}] must be positive, got {r} for mode {k}")
        if r > int(n):
            raise ValueError(f"{name}[{k}] = {r} exceeds the size {int(n)} of mode {k}")
        out.append(r)
    return tuple(out)


def check_rtol(rtol, *, name: str = "rtol") -> float:
    """Validate a relative tolerance in the open interval (0, 1)."""
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(rtol).__name__}")
    try:
        rtol = float(rtol)
    except OverflowError:  # an int (or a Fraction) beyond float64's range, with its sign
        rtol = math.inf if rtol > 0 else -math.inf
    if not (0.0 < rtol < 1.0):
        raise ValueError(f"{name} must lie in the open interval (0, 1), got {rtol}")
    return rtol


def check_rank_or_rtol(rank, rtol, shape) -> tuple[tuple[int, ...] | None, float | None]:
    """Exactly one of ``rank`` and ``rtol``; returns the validated pair."""
    if (rank is None) == (rtol is None):
        raise ValueError("give exactly one of rank and rtol (got both)" if rank is not None else
                         "give exactly one of rank and rtol (got neither)")
    if rank is not None:
        return check_rank(rank, shape), None
    return None, check_rtol(rtol)


def read_npz(path, what: str, keys=None) -> dict:
    """The arrays of the ``.npz`` archive at ``path`` (all, or those of ``keys`` it holds), read without pickle.

    ``FileNotFoundError`` passes through; anything else that is not such an
    archive (a single ``.npy`` array, a text or pickled file, a broken zip)
    raises ``ValueError`` naming the file and ``what`` it should hold. With
    ``keys`` only those members are decompressed (absent ones are left out
    of the result): a reader that needs one part of a large archive.
    """
    path = npz_path(path)
    name = repr(os.fspath(path))
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        reason = "neither .npz nor .npy data (pickled or text files are never read)" if "pickle" in str(exc) else exc
        raise ValueError(f"{name} is not a readable .npz file ({reason}); a {what} file may be corrupt") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{name} holds a single .npy array, not a {what} .npz file")
    try:
        with f:
            wanted = f.files if keys is None else [k for k in keys if k in f.files]
            arrays = {k: f[k] for k in wanted}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{name} is not a readable .npz file ({exc}); a {what} file may be corrupt") from None
    except MemoryError:
        # a member whose header claims more than memory holds (a corrupt
        # header of a few hundred bytes claimed 728 TiB)
        raise ValueError(f"{name} holds an array too large to read into memory; a {what} file may be "
                         "corrupt") from None
    # numpy opens any zip archive and gives the raw bytes of members that are
    # not .npy arrays: a plain zip passed for an .npz file
    odd = [k for k, v in arrays.items() if not isinstance(v, np.ndarray)]
    if odd:
        raise ValueError(f"{name} is not a .npz file of arrays: member {odd[0]!r} is not a .npy array; "
                         f"a {what} file may be corrupt")
    return arrays


def npz_path(path):
    """``path``, or ``path + '.npz'`` where only that exists: the file ``np.savez(path)`` wrote.

    numpy appends ``.npz`` to a name without it, so ``save("model")`` wrote
    ``model.npz`` and ``load("model")`` then raised ``FileNotFoundError``.
    """
    if isinstance(path, (str, os.PathLike)):
        p = os.fspath(path)
        if isinstance(p, str) and not p.endswith(".npz") and not os.path.exists(p) and os.path.exists(p + ".npz"):
            return p + ".npz"
    return path


def npz_version(data: dict, name: str, what: str, newest: int) -> int:
    """The format version stored in ``data['version']``: a 0-d integer in ``[1, newest]``, else ``ValueError``.

    ``int()`` of the stored array took 1.9, ``'1'``, ``True`` and negative
    numbers for versions: a corrupt or foreign file read as a valid one.
    """
    v = data.get("version")
    if not isinstance(v, np.ndarray) or v.ndim != 0 or v.dtype.kind not in "iu":
        got = "no version" if v is None else f"version {v!r}"
        raise ValueError(f"{name} is a corrupt {what} file: {got}, where a 0-d integer array was expected")
    v = int(v)
    if v < 1:
        raise ValueError(f"{name} is a corrupt {what} file: format version {v} (versions start at 1)")
    if v > newest:
        raise ValueError(f"{name} has {what} format version {v}; this tensorapprox reads <= {newest}")
    return v
