"""The hybrid Chebyshev-Tucker format: mesh-free low-rank functions on a box.

A function ``f`` on a box ``[a_1, b_1] x ... x [a_d, b_d]`` is interpolated by
a product Chebyshev expansion of degree ``m_k - 1`` in mode ``k``; its
coefficient tensor ``C`` (shape ``(m_1, ..., m_d)``) is compressed to Tucker
form ``C ~ G x_1 A_1 ... x_d A_d`` with coefficient factors ``A_k`` of shape
``(m_k, r_k)``. The approximant

    f(x) ~ sum_r G[r_1, ..., r_d] prod_k sum_j A_k[j, r_k] T_j(t_k(x_k))

is evaluated anywhere in the box without a mesh. On a tensor grid it is a
Tucker tensor whose factors are ``T(grid_k) @ A_k`` (the two-level format).

References: the hybrid Chebyshev-Tucker format of B. Khoromskij and B. Sun,
arXiv:2503.01696 (Algorithm 4 for canonical input), and the range-separated
tensor format for many-particle potentials (Benner, Khoromskaia, Khoromskij).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Callable, Sequence

import numpy as np

from . import chebyshev as _cheb
from ._array import get_namespace, is_numpy, readonly, to_numpy
from ._kernels.chebyshev import tucker_cheb_eval
from ._validation import check_bool, check_choice, check_int, check_rank, check_rtol, npz_version, read_npz
from .tensor import _pow2_normalized, _scaled_frobenius, _times_pow2, khatri_rao

__all__ = ["ChebTucker", "check_domain", "DEFAULT_MAX_MEMORY"]

#: Default memory guard (bytes) for the sampled Chebyshev grid.
DEFAULT_MAX_MEMORY = 2 * 1024**3
_FORMAT_TAG = "tensorapprox.ChebTucker"
_FORMAT_VERSION = 1
_ADAPTIVE_START = 16
_ADAPTIVE_MAX_DEGREE = 512
# relative slack allowed for points on the box boundary (rounding)
_BOX_SLACK = 1e-12
# off-grid points the adaptive degree checks before it accepts a degree
_ADAPTIVE_CHECK_POINTS = 4
_F64_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #
def check_domain(domain, *, name: str = "domain") -> tuple[tuple[float, float], ...]:
    """Validate a box: a sequence of ``d`` pairs ``(a_k, b_k)`` with ``a_k < b_k``.

    Parameters
    ----------
    domain : sequence of d pairs of real numbers
        The box ``[a_1, b_1] x ... x [a_d, b_d]``, e.g. ``[(-1, 1)] * 3``.
    name : str, default "domain"
        Name of the argument in error messages.

    Returns
    -------
    tuple of tuple of float
        The pairs as Python floats.

    Raises
    ------
    TypeError
        If ``domain`` is not a sequence of pairs of real numbers.
    ValueError
        If a pair has the wrong length, is not finite or has ``a_k >= b_k``.

    Examples
    --------
    >>> from tensorapprox.chebtucker import check_domain
    >>> check_domain([(0, 1), (-2, 2)])
    ((0.0, 1.0), (-2.0, 2.0))
    """
    if isinstance(domain, (str, bytes)) or not hasattr(domain, "__len__"):
        raise TypeError(f"{name} must be a sequence of (a, b) pairs, one per dimension, "
                        f"got {type(domain).__name__}")
    if len(domain) == 2 and all(isinstance(v, (numbers.Real, np.floating, np.integer))
                                                  for v in domain):
        raise ValueError(f"{name} must hold one (a, b) pair per dimension, e.g. [(-1, 1)] * 3; "
                         f"got a single pair {tuple(domain)}")
    if len(domain) == 0:
        raise ValueError(f"{name} is empty; give one (a, b) pair per dimension")
    out = []
    for k, pair in enumerate(domain):
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__"):
            raise TypeError(f"{name}[{k}] must be a pair (a, b), got {type(pair).__name__}")
        if len(pair) != 2:
            raise ValueError(f"{name}[{k}] must have exactly 2 entries (a, b), got {len(pair)}")
        out.append(_cheb.check_interval(pair, name=f"{name}[{k}]"))
    return tuple(out)


def _check_degrees(degree, d: int, *, name: str = "degree") -> tuple[int, ...]:
    if isinstance(degree, (numbers.Integral, np.integer)) and not isinstance(degree, bool):
        check_int(degree, name=name, minimum=1)
        degree = (int(degree),) * d
    try:
        degree = tuple(degree)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of {d} ints, got {type(degree).__name__}") from None
    if len(degree) != d:
        raise ValueError(f"{name} has {len(degree)} entries but the domain has {d} dimensions")
    return tuple(check_int(g, name=f"{name}[{k}]" if d > 1 else name, minimum=1) for k, g in enumerate(degree))


def _box_slack(lo, hi, eps):
    """Slack beyond ``[lo, hi]`` still read as on the boundary, for points of machine epsilon ``eps``.

    ``1e-12 (b - a)`` was below the rounding of the bounds themselves in
    float32 (``float32(0.1)`` lies ``1.5e-9`` above ``0.1``), so a float32
    point on the boundary was rejected as outside the box.
    """
    return np.maximum(_BOX_SLACK * (hi - lo), 4.0 * eps * np.maximum(np.abs(lo), np.abs(hi)))


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def _check_memory(ms: Sequence[int], d: int, max_memory: float, *, name: str = "degree") -> None:
    # the point grid (d values per point), the samples and the coefficients
    need = math.prod(ms) * 8.0 * (d + 2)
    if need > max_memory:
        raise ValueError(
            f"{name} = {tuple(m - 1 for m in ms)} needs a Chebyshev grid of {math.prod(ms):,} points, "
            f"about {_fmt_bytes(need)} of memory, above the guard of {_fmt_bytes(max_memory)}; "
            "lower the degree, or raise max_memory"
        )


def _real_numpy(a, name: str, what: str = "an array of real numbers"):
    """``a`` as a numpy array of integer or real floating dtype, else ``TypeError`` naming ``name``.

    A cast to float64 parsed strings (``"2"`` read as 2.0) and read booleans
    as 0 and 1; complex values lost their imaginary part.
    """
    try:
        arr = np.asarray(to_numpy(a))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {what}, got {type(a).__name__}") from None
    if not _cheb._is_real_dtype(np, arr.dtype):
        kind = "complex" if np.iscomplexobj(arr) else f"dtype {arr.dtype}"
        raise TypeError(f"{name} must be {what}, got {kind}")
    return arr


def _check_weights_factors(weights, factors):
    w = _real_numpy(weights, "weights", "a 1-D array of real numbers").astype(np.float64, copy=False)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contains NaN or Inf values")
    if isinstance(factors, np.ndarray) or not hasattr(factors, "__len__") or len(factors) == 0:
        raise TypeError("factors must be a non-empty sequence of (n_k, R) matrices, one per dimension")
    R = w.shape[0]
    out = []
    for k, F in enumerate(factors):
        F = _real_numpy(F, f"factors[{k}]", "a real array").astype(np.float64, copy=False)
        if F.ndim != 2:
            raise ValueError(f"factors[{k}] must be a matrix (n_{k}, R), got shape {F.shape}")
        if F.shape[1] != R:
            raise ValueError(f"factors[{k}] has {F.shape[1]} columns but weights has {R} entries; "
                             "every factor needs one column per CP term")
        if not np.all(np.isfinite(F)):
            raise ValueError(f"factors[{k}] contains NaN or Inf values")
        out.append(F)
    return w, out


# --------------------------------------------------------------------------- #
# compression helpers
# --------------------------------------------------------------------------- #
# recompress: what is below this times d eps (the terms' size) is rounding;
# the tolerance it implies is clipped just below 1 (check_rtol's range)
_RECOMPRESS_FLOOR = 8.0
_RTOL_BELOW_ONE = 1.0 - 1e-12


def _compress(C, rtol, rank, method):
    """Tucker compression of a dense coefficient tensor -> (core, factors)."""
    from .tucker import hosvd, st_hosvd, tucker_als

    xp = get_namespace(C)
    if rank is not None:
        # before the 1-D branch too: rank=-3 and rank="abc" were accepted there
        if isinstance(rank, (str, bytes)):  # not a sequence of ints ("abc" read as 3 entries)
            raise TypeError(f"rank must be an int or a sequence of ints, got {type(rank).__name__}")
        rank = check_rank(rank, C.shape)
    if C.ndim == 1:
        if rank is not None and rank[0] > 1:
            # as hosvd for d >= 2: the rank of a mode is at most the product
            # of the others' (here none: 1)
            raise ValueError(f"rank[0] = {rank[0]} exceeds 1, the Tucker rank of a 1-D coefficient vector; "
                             "use rank=1")
        # overflow-safe: sqrt(sum C^2) underflowed to 0 for coefficients
        # below 1e-154 (the zero approximant) and overflowed above 1e154
        nrm = _scaled_frobenius(xp, C, 1.0, 0)
        if nrm == 0.0:
            return xp.zeros((1,), dtype=C.dtype), [xp.zeros((C.shape[0], 1), dtype=C.dtype)]
        return xp.asarray([nrm], dtype=C.dtype), [xp.reshape(C / nrm, (-1, 1))]
    if method == "hosvd":
        T = hosvd(C, rank=rank, rtol=None if rank is not None else rtol)
    elif method == "st_hosvd":
        T = st_hosvd(C, rank=rank, rtol=None if rank is not None else rtol)
    else:  # 'als': ST-HOSVD picks the ranks, HOOI refines the subspaces
        T0 = st_hosvd(C, rank=rank, rtol=None if rank is not None else rtol)
        if all(r == n for r, n in zip(T0.ranks, C.shape)):
            T = T0
        else:
            T = tucker_als(C, T0.ranks, init=T0).tucker
    return T.core, list(T.factors)


def _side_basis(A, thresh2):
    """Orthonormal basis of the dominant column space of ``A`` (m x R).

    Keeps the smallest rank whose discarded singular-value tail has squared
    norm <= ``thresh2``. For wide ``A`` (R > m) the spectrum comes from two
    Gram passes: the eigenvectors ``U_1`` of ``A A^T``, then those of
    ``B B^T`` with ``B = U_1^T A``. The first pass alone resolves singular
    values only down to about ``sqrt(m eps)`` of the largest; after the
    rotation ``B B^T`` is graded (nearly diagonal), so the second pass
    resolves the small ones to a few hundred ``eps`` relative to the largest
    with BLAS-3 products only (``O(m^2 R)``). Tolerances closer to ``eps``
    use a QR of ``A^T``.
    """
    m, R = A.shape
    eps = np.finfo(np.float64).eps
    if R > m and thresh2 >= (1e4 * eps) ** 2 * float(np.sum(A * A)):
        _, U1 = np.linalg.eigh(A @ A.T)
        B = U1.T @ A
        w, U2 = np.linalg.eigh(B @ B.T)
        s2 = np.clip(w[::-1], 0.0, None)
        U = U1 @ U2[:, ::-1]
    elif R > m:
        # tolerances near eps: the triangular factor of a QR of A^T
        Rf = np.linalg.qr(A.T, mode="r")
        U, s, _ = np.linalg.svd(Rf.T, full_matrices=False)
        s2 = s**2
    else:
        U, s, _ = np.linalg.svd(A, full_matrices=False)
        s2 = s**2
    tails = np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]])
    ok = np.nonzero(tails <= thresh2)[0]
    r = max(1, int(ok[0])) if ok.size else s2.size
    return np.ascontiguousarray(U[:, :r])


# Khatri-Rao block of _cp_core (elements): 4 MiB, cache-sized (a 32x larger
# block made the particle moments' construction 1.4x slower)
_CP_BLOCK_ELEMS = 1 << 19


def _cp_core(weights, Bs):
    """``sum_r w_r B_1[:, r] x ... x B_d[:, r]`` without forming the large tensor.

    Mode-1 unfolding ``(B_1 diag(w)) @ khatri_rao(B_2, ..., B_d)^T``, chunked
    over ``r`` so the Khatri-Rao block (``_CP_BLOCK_ELEMS`` elements) stays in
    cache between the broadcast that writes it and the GEMM that reads it:
    ``2 r_1 ... r_d R`` flops in GEMMs.
    """
    d = len(Bs)
    ranks = tuple(B.shape[0] for B in Bs)
    R = weights.shape[0]
    if d == 1:
        return Bs[0] @ weights
    if d == 2:
        return (Bs[0] * weights) @ Bs[1].T
    rest = math.prod(ranks[1:])
    per = max(1, min(R, _CP_BLOCK_ELEMS // max(rest, 1)))
    acc = np.zeros((ranks[0], rest))
    for lo in range(0, R, per):
        hi = min(R, lo + per)
        KR = khatri_rao([B[:, lo:hi] for B in Bs[1:]])  # (rest, chunk)
        acc += (Bs[0][:, lo:hi] * weights[lo:hi]) @ KR.T
    return acc.reshape(ranks)


def _coeff_factors_to_tucker(weights, A, rtol, recompress: bool, rank=None):
    """Algorithm 4 of arXiv:2503.01696 on coefficient factors ``A_k`` (m_k x R).

    Each side matrix is truncated by SVD (columns scaled to the magnitude of
    their CP term, so the criterion weighs terms by their size); the core
    comes from the CP weights. With ``recompress`` the side truncation runs
    at a tolerance 10x tighter and the small core is then compressed by the
    truncated-HOSVD protocol, so the ranks are those of HOSVD of the full
    coefficient tensor.
    """
    d = len(A)
    # the weights in units of a power of two near the largest term, and the
    # columns of a factor whose norms leave 2^+-lim in units of powers of two
    # near their largest entries, those powers moved into the weights (all
    # exact): the squares below underflowed for weights near 1e-160 (the
    # ranks fell to 1 and the result to 0) and overflowed near 1e155, and
    # factor columns near 1e100 beside weights near 1e-200 overflowed them
    # too (a wrong rank-1 result). Within 2^+-lim the product of the d norms,
    # squared, stays inside float64's range; those factors are left as they
    # are (no extra pass over them)
    lim = max(1, 256 // d)
    wm, ew = np.frexp(weights)
    live = wm != 0.0
    A = list(A)
    norms = []
    for k, Ak in enumerate(A):
        with np.errstate(over="ignore", under="ignore"):  # checked below
            nk = np.linalg.norm(Ak, axis=0)
        zero = nk == 0.0
        if (not np.all(np.isfinite(nk)) or np.any(np.abs(np.frexp(nk[~zero])[1]) > lim)
                or (np.any(zero) and np.any(Ak[:, zero]))):  # a norm that overflowed or underflowed
            _, ek = np.frexp(np.max(np.abs(Ak), axis=0))
            Ak = A[k] = np.ldexp(Ak, -ek)
            ew = ew + ek
            nk = np.linalg.norm(Ak, axis=0)
        live &= nk != 0.0
        norms.append(nk)
    # the exponent of the largest non-zero term (a zero term's exponent is
    # meaningless and could push the others below the float64 range)
    e = int(np.max(ew[live])) if np.any(live) else 0
    weights = np.ldexp(wm, ew - e)
    mag = np.abs(weights) * np.prod(np.stack(norms), axis=0)
    keep = mag > 0
    if not np.any(keep):
        core = np.zeros((1,) * d)
        return core, [np.zeros((Ak.shape[0], 1)) for Ak in A]
    if not np.all(keep):
        weights = weights[keep]
        A = [Ak[:, keep] for Ak in A]
        norms = [nk[keep] for nk in norms]
        mag = mag[keep]
    total = float(np.sqrt(np.sum(mag**2)))
    tol1 = rtol * (0.1 if recompress else 1.0)
    thresh2 = (tol1 * total) ** 2 / d
    Us = []
    for Ak, nk in zip(A, norms):
        S = Ak * (mag / nk)
        Us.append(_side_basis(S, thresh2))
    Bs = [U.T @ Ak for U, Ak in zip(Us, A)]
    core = _cp_core(weights, Bs)
    if recompress and d > 1:
        core2, V = _compress(core, rtol, rank, "hosvd")
        Us = [U @ Vk for U, Vk in zip(Us, V)]
        core = core2
    return _times_pow2(np, core, e), Us


# --------------------------------------------------------------------------- #
# the class
# --------------------------------------------------------------------------- #
def _in_namespace(xp, a):
    """``a`` as an array of the library ``xp`` (itself when it is one already)."""
    if is_numpy(xp):
        return a if isinstance(a, np.ndarray) else to_numpy(a)
    return a if get_namespace(a) == xp else xp.asarray(to_numpy(a))


class ChebTucker:
    """A function on a box in the hybrid Chebyshev-Tucker format.

    Parameters
    ----------
    core : array, shape (r_1, ..., r_d)
        Tucker core of the Chebyshev coefficient tensor.
    factors : sequence of d arrays, shape (m_k, r_k)
        Coefficient factors: column ``q`` of ``factors[k]`` holds the
        Chebyshev coefficients (degrees ``0..m_k-1``) of a univariate function.
    domain : sequence of d pairs (a_k, b_k)
        The box.

    Attributes
    ----------
    core, factors, domain, ndim, ranks, degrees, nbytes
        See the properties below.

    Raises
    ------
    TypeError
        If ``core`` and ``factors`` are not arrays of one array library, or
        one of them is complex.
    ValueError
        If ``domain`` is not a box, the core does not have one mode per
        interval, a rank is 0, a factor's column count differs from the
        core's size, or the core or a factor holds NaN or Inf.

    Notes
    -----
    Instances are immutable (numpy arrays are stored as read-only copies).
    Build them with :meth:`from_function`, :meth:`from_values` or
    :meth:`from_cp`; ``+`` adds ranks (block-diagonal core), use
    :meth:`recompress` afterwards. ``F * s`` and ``F / s`` take a finite
    real ``s`` (not 0 for ``/``) and raise ``ValueError`` where the scaled
    core would not be finite.

    Examples
    --------
    >>> import numpy as np, tensorapprox.chebtucker as ct
    >>> f = lambda x: np.exp(x[..., 0]) * np.cos(x[..., 1] + x[..., 2])
    >>> F = ct.ChebTucker.from_function(f, [(-1, 1)] * 3, degree=24, rtol=1e-10)
    >>> F.ranks
    (1, 2, 2)
    >>> x = np.array([[0.1, 0.2, -0.3]])
    >>> bool(abs(F(x)[0] - f(x)[0]) < 1e-9)
    True
    """

    __slots__ = ("_core", "_factors", "_domain")

    def __init__(self, core, factors: Sequence, domain):
        domain = check_domain(domain)
        d = len(domain)
        factors = tuple(factors)
        try:
            xp = get_namespace(core, *factors)
        except TypeError as exc:
            raise TypeError(f"core and factors must be arrays of one array library: {exc}") from None
        if not hasattr(core, "ndim") or core.ndim != d:
            raise ValueError(f"core must have {d} dimensions (one per domain pair), "
                             f"got shape {tuple(getattr(core, 'shape', ()))}")
        if len(factors) != d:
            raise ValueError(f"got {len(factors)} factors for a {d}-dimensional domain")
        for k, A in enumerate(factors):
            if A.ndim != 2 or A.shape[0] < 1:
                raise ValueError(f"factors[{k}] must be a matrix (m_{k}, r_{k}), got shape {tuple(A.shape)}")
            if A.shape[1] < 1 or core.shape[k] < 1:
                # a rank-0 mode was accepted and failed later in evaluation
                # ("cannot reshape array of size 0") or recompress
                raise ValueError(f"factors[{k}] has {A.shape[1]} columns and core has size {core.shape[k]} in "
                                 f"mode {k}: every Tucker rank must be >= 1 (the zero function has a rank-1 "
                                 "zero core)")
            if A.shape[1] != core.shape[k]:
                raise ValueError(f"factors[{k}] has {A.shape[1]} columns, the core has size {core.shape[k]} "
                                 f"in mode {k}")
        def own(a):
            # float64 copies in every array library (numpy arrays read-only):
            # integer or float32 arrays of other libraries were kept as given,
            # and gave other dtypes (or a failed evaluation) than numpy's
            a64 = a if a.dtype == xp.float64 else xp.astype(a, xp.float64)
            return readonly(a64, xp, a64 is a)

        for name, a in [("core", core)] + [(f"factors[{k}]", A) for k, A in enumerate(factors)]:
            if xp.isdtype(a.dtype, "complex floating"):
                raise TypeError(f"{name} must be real, got a complex array")
            if xp.isdtype(a.dtype, "real floating") and not bool(xp.all(xp.isfinite(a))):
                # a NaN approximant was accepted (load already called such files corrupt)
                raise ValueError(f"{name} contains NaN or Inf values")

        self._core = own(core)
        self._factors = tuple(own(A) for A in factors)
        self._domain = domain

    # -- properties --------------------------------------------------------
    @property
    def core(self):
        """Tucker core of the coefficient tensor, shape ``ranks``.

        Returns
        -------
        array, shape (r_1, ..., r_d)
            In the array library of the approximant.
        """
        return self._core

    @property
    def factors(self) -> tuple:
        """Coefficient factors, shapes ``(m_k, r_k)``.

        Returns
        -------
        tuple of arrays
        """
        return self._factors

    @property
    def domain(self) -> tuple[tuple[float, float], ...]:
        """The box as ``((a_1, b_1), ..., (a_d, b_d))``.

        Returns
        -------
        tuple of (float, float)
        """
        return self._domain

    @property
    def ndim(self) -> int:
        """Number of variables ``d``.

        Returns
        -------
        int
        """
        return len(self._domain)

    @property
    def ranks(self) -> tuple[int, ...]:
        """Tucker ranks ``(r_1, ..., r_d)``.

        Returns
        -------
        tuple of int
        """
        return tuple(int(s) for s in self._core.shape)

    @property
    def degrees(self) -> tuple[int, ...]:
        """Polynomial degree per mode, ``m_k - 1``.

        Returns
        -------
        tuple of int
        """
        return tuple(int(A.shape[0]) - 1 for A in self._factors)

    @property
    def nbytes(self) -> int:
        """Memory held by the core and the factors, in bytes.

        Returns
        -------
        int
        """
        return 8 * int(sum(math.prod(a.shape) for a in (self._core,) + self._factors))  # float64

    @property
    def compression_ratio(self) -> float:
        """Entries of the full coefficient tensor per stored entry.

        Returns
        -------
        float
        """
        full = math.prod(A.shape[0] for A in self._factors)
        stored = self._core.size + sum(A.size for A in self._factors)
        return full / stored

    @property
    def tucker(self):
        """The coefficient tensor as a :class:`~tensorapprox.tucker.TuckerTensor`.

        Returns
        -------
        TuckerTensor
            Built from the core and the coefficient factors.
        """
        from .tucker import TuckerTensor

        return TuckerTensor(self._core, self._factors, copy=False)

    def __repr__(self) -> str:
        return (f"ChebTucker(domain={self._domain}, degrees={self.degrees}, ranks={self.ranks}, "
                f"nbytes={self.nbytes})")

    # -- constructors ------------------------------------------------------
    @classmethod
    def from_values(cls, values, domain, rtol: float | None = 1e-7, method: str = "hosvd", *,
                    rank=None) -> "ChebTucker":
        """Compress values sampled on the Chebyshev grid of ``domain``.

        Parameters
        ----------
        values : array, shape (m_1, ..., m_d)
            ``values[i_1, ..., i_d] = f(x_{i_1}, ..., x_{i_d})`` at the ascending
            Chebyshev points ``chebpts(m_k, domain[k])``; not modified.
        domain : sequence of d pairs (a_k, b_k)
            The box the values were sampled on.
        rtol : float in (0, 1), default 1e-7
            Truncated-HOSVD tolerance on the coefficient tensor ``C``: each
            mode drops a tail of norm ``<= rtol * ||C||_F / sqrt(d)``.
        method : {'hosvd', 'st_hosvd', 'als'}
            'als' takes the ranks of ST-HOSVD at ``rtol`` and refines the
            factors by HOOI (ranks can be lower than HOSVD's at equal error).
        rank : int or sequence of int, optional
            Fixed Tucker ranks instead of ``rtol``.

        Returns
        -------
        ChebTucker
            The compressed approximant on ``domain``.

        Raises
        ------
        TypeError
            If ``values`` is complex or not real numbers (strings, booleans).
        ValueError
            If ``values`` does not have one dimension per interval, has an
            empty dimension or holds NaN/Inf; or for a bad ``domain``,
            ``rtol``, ``rank`` or ``method``.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct, tensorapprox.chebyshev as cheb
        >>> x = cheb.chebpts(9)
        >>> V = x[:, None] ** 2 + x[None, :]
        >>> F = ct.ChebTucker.from_values(V, [(-1, 1), (-1, 1)], rtol=1e-12)
        >>> F.ranks, round(float(F(np.array([[0.5, 0.25]]))[0]), 12)
        ((2, 2), 0.5)
        """
        domain = check_domain(domain)
        d = len(domain)
        method = check_choice(method, name="method", choices=("hosvd", "st_hosvd", "als"))
        if rank is None:
            if rtol is None:
                raise ValueError("give rtol or rank")
            rtol = check_rtol(rtol)
        if not hasattr(values, "shape"):
            values = np.asarray(values)
        xp = get_namespace(values)
        if values.ndim != d:
            raise ValueError(f"values must have {d} dimensions (one per domain pair), got shape "
                             f"{tuple(values.shape)}")
        if any(int(n) < 1 for n in values.shape):
            raise ValueError(f"values has an empty dimension: shape {tuple(values.shape)}")
        if xp.isdtype(values.dtype, "complex floating"):
            raise TypeError("values must be real, got a complex array")
        if not _cheb._is_real_dtype(xp, values.dtype):
            # the cast below parsed strings ("2.5") and read booleans as 0 and 1
            raise TypeError(f"values must be an array of real numbers, got dtype {values.dtype}")
        if values.dtype != xp.float64:
            # the coefficients are computed and compressed in float64, as the
            # approximant stores them: float32 values were compressed in
            # float32, whose rounding the default rtol of 1e-7 lies below
            values = xp.astype(values, xp.float64)
        if not bool(xp.all(xp.isfinite(values))):
            raise ValueError("values contains NaN or Inf; f must be finite on the whole box")
        C = values
        for k in range(d):
            C = _cheb.vals2coeffs(C, axis=k)
        core, factors = _compress(C, rtol, rank, method)
        return cls(core, factors, domain)

    @classmethod
    def from_coefficients(cls, coeffs, domain, rtol: float | None = 1e-7, method: str = "hosvd", *,
                          rank=None) -> "ChebTucker":
        """Compress a dense Chebyshev coefficient tensor (see :meth:`from_values`).

        Parameters
        ----------
        coeffs : array, shape (m_1, ..., m_d)
            ``coeffs[k_1, ..., k_d]`` multiplies ``T_{k_1}(x_1) ... T_{k_d}(x_d)``
            (on the box mapped to ``[-1, 1]^d``); not modified.
        domain : sequence of d pairs (a_k, b_k)
            The box.
        rtol : float in (0, 1), default 1e-7
            Truncated-HOSVD tolerance on ``coeffs`` (as :meth:`from_values`).
        method : {'hosvd', 'st_hosvd', 'als'}
            Compression method (as :meth:`from_values`).
        rank : int or sequence of int, optional
            Fixed Tucker ranks instead of ``rtol``.

        Returns
        -------
        ChebTucker
            The compressed approximant on ``domain`` (compressed and stored
            in float64 whatever the dtype of ``coeffs``, as
            :meth:`from_values`).

        Raises
        ------
        TypeError
            If ``coeffs`` is complex or not numeric (strings, objects,
            booleans).
        ValueError
            If ``coeffs`` does not have one dimension per interval or holds
            NaN/Inf, or for a bad ``domain``, ``rtol``, ``rank`` or ``method``.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> C = np.zeros((3, 3)); C[1, 2] = 1.0          # T_1(x) T_2(y)
        >>> F = ct.ChebTucker.from_coefficients(C, [(-1, 1), (-1, 1)])
        >>> float(np.round(F(np.array([[0.5, 0.5]]))[0], 12))
        -0.25
        """
        domain = check_domain(domain)
        method = check_choice(method, name="method", choices=("hosvd", "st_hosvd", "als"))
        if rank is None:
            if rtol is None:
                raise ValueError("give rtol or rank")
            rtol = check_rtol(rtol)
        if not hasattr(coeffs, "shape"):
            coeffs = np.asarray(coeffs)
        xp = get_namespace(coeffs)
        if coeffs.ndim != len(domain):
            raise ValueError(f"coeffs must have {len(domain)} dimensions (one per domain pair), got shape "
                             f"{tuple(coeffs.shape)}")
        if xp.isdtype(coeffs.dtype, "complex floating"):
            raise TypeError("coeffs must be real, got a complex array")
        if not _cheb._is_real_dtype(xp, coeffs.dtype):
            # as values: a list of strings was parsed, booleans read as 0 and 1
            raise TypeError(f"coeffs must be a real array, got dtype {coeffs.dtype}")
        if coeffs.dtype != xp.float64:
            # compressed in float64, as from_values and as the approximant
            # stores them: float32 coefficients were compressed in float32,
            # whose rounding (1e-7) lies above rtol=1e-10
            coeffs = xp.astype(coeffs, xp.float64)
        if not bool(xp.all(xp.isfinite(coeffs))):
            raise ValueError("coeffs contains NaN or Inf")
        core, factors = _compress(coeffs, rtol, rank, method)
        return cls(core, factors, domain)

    @classmethod
    def from_function(cls, f: Callable, domain, degree=None, rtol: float | None = 1e-7, method: str = "hosvd", *,
                      rank=None, max_degree: int = _ADAPTIVE_MAX_DEGREE,
                      max_memory: float = DEFAULT_MAX_MEMORY) -> "ChebTucker":
        """Interpolate ``f`` on the Chebyshev grid of ``domain`` and compress.

        Parameters
        ----------
        f : callable
            ``f(x)`` with ``x`` of shape ``(..., d)`` returns the values, shape
            ``(...)``; it is called on the whole grid at once (and, with an
            adaptive degree, on a few off-grid points, ``x`` of shape
            ``(4, d)``).
        domain : sequence of d pairs (a_k, b_k)
            The box on which ``f`` is approximated.
        degree : int or sequence of d ints, optional
            Polynomial degree per mode (``m_k = degree + 1`` points). ``None``
            chooses it adaptively: starting from 16, the degree of each mode
            doubles until its trailing coefficients fall below the tolerance
            (as Chebfun does), up to ``max_degree``. Before a degree is
            accepted, the interpolant is compared with ``f`` at 4
            deterministic points strictly between the Chebyshev points in
            every mode (4 more evaluations of ``f`` per accepted candidate):
            a function that aliases on the grid (``T_20`` sampled at 17
            points looks like ``T_12``, with a decayed tail) misses there by
            more than ``rtol`` times its size, and every mode's degree
            doubles again. The tail below the tolerance is then chopped.
        rtol : float in (0, 1) or None, default 1e-7
            Tolerance of the coefficient-tensor compression (see
            :meth:`from_values`) and of the adaptive degree. ``None`` only
            with ``rank`` and a fixed ``degree``.
        method : {'hosvd', 'st_hosvd', 'als'}
        rank : int or sequence of int, optional
            Fixed Tucker ranks instead of ``rtol`` for the compression (the
            adaptive degree still needs ``rtol``).
        max_degree : int, default 512
            Cap of the adaptive degree.
        max_memory : float, default 2 GiB
            Guard on the memory the sampled grid needs (bytes).

        Returns
        -------
        ChebTucker

        Raises
        ------
        TypeError
            If ``f`` is not callable or returns complex values or other
            non-real values (strings, booleans).
        ValueError
            A bad ``domain``, ``degree``, ``rtol`` or ``rank`` (or a degree
            needing more memory than ``max_memory``: the message says how
            much), neither ``rtol`` nor ``rank``, ``rtol=None`` with an
            adaptive degree, or ``f`` returning the wrong shape or NaN/Inf
            (the message names the first bad point).

        Warns
        -----
        RuntimeWarning
            With an adaptive degree, if a mode is not resolved at
            ``max_degree`` (or at the memory guard), or the interpolant
            still misses ``f`` off the grid there.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> f = lambda x: 1.0 / (1.0 + np.sum(x**2, axis=-1))
        >>> F = ct.ChebTucker.from_function(f, [(-1, 1)] * 3, rtol=1e-8)
        >>> pts = np.random.default_rng(0).uniform(-1, 1, (100, 3))
        >>> bool(np.max(np.abs(F(pts) - f(pts))) < 1e-7)
        True
        """
        if not callable(f):
            raise TypeError(f"f must be callable, got {type(f).__name__}")
        domain = check_domain(domain)
        d = len(domain)
        method = check_choice(method, name="method", choices=("hosvd", "st_hosvd", "als"))
        if rtol is None:
            # as from_values: rank alone fixes the compression (a TypeError
            # from check_rtol before); the adaptive degree needs a tolerance
            if rank is None:
                raise ValueError("give rtol or rank")
            if degree is None:
                raise ValueError("rtol=None needs a fixed degree: the adaptive degree resolves f to rtol; "
                                 "give rtol, or a degree")
        else:
            rtol = check_rtol(rtol)
        if isinstance(max_memory, bool) or not isinstance(max_memory, numbers.Real) or not max_memory > 0:
            raise ValueError(f"max_memory must be a positive number of bytes, got {max_memory!r}")
        if degree is not None:
            degs = _check_degrees(degree, d)
            ms = tuple(g + 1 for g in degs)
            _check_memory(ms, d, max_memory)
            values = _sample(f, domain, ms)
            return cls.from_values(values, domain, rtol=rtol, method=method, rank=rank)
        max_degree = check_int(max_degree, name="max_degree", minimum=1)
        C = _adaptive_coefficients(f, domain, rtol, max_degree, max_memory)
        core, factors = _compress(C, rtol, rank, method)
        return cls(core, factors, domain)

    @classmethod
    def from_cp(cls, weights, factors: Sequence, grid, domain=None, rtol: float = 1e-7, degree=128, *,
                recompress: bool = False) -> "ChebTucker":
        """Chebyshev-Tucker form of a canonical (CP) tensor sampled on a grid.

        The paper's Algorithm 4: each factor column is transferred from its
        grid to the Chebyshev points by a cubic spline, turned into Chebyshev
        coefficients (DCT), each coefficient factor is truncated by SVD, and
        the core is formed from the CP weights. The ``m^d`` sample tensor is
        never formed: the cost is ``O(m R (n + m) + r^d R)``.

        Parameters
        ----------
        weights : array, shape (R,)
            Weights of the ``R`` CP terms.
        factors : sequence of d arrays, shape (n_k, R)
            ``X[i_1, ..., i_d] = sum_r weights[r] prod_k factors[k][i_k, r]``.
        grid : array, shape (n,), or sequence of d arrays (n_k,)
            Strictly increasing coordinates of the rows of each factor.
        domain : sequence of d pairs, optional
            The box of the approximant; by default the grid's extent. Parts of
            the box outside the grid are covered by the splines' extrapolation.
        rtol : float in (0, 1), default 1e-7
            Truncation tolerance of the coefficient factors: mode ``k`` drops a
            singular-value tail of norm ``<= rtol * ||S||_F / sqrt(d)`` of its
            side matrix ``S`` (columns scaled to the size of their CP term).
        degree : int or sequence of d ints, default 128
            Polynomial degree per mode (``m = degree + 1`` Chebyshev points).
        recompress : bool, default False
            Truncate the side matrices 10x tighter, then compress the core by
            truncated HOSVD at ``rtol`` (ranks as HOSVD of the full
            coefficient tensor; a little more work).

        Returns
        -------
        ChebTucker

        Raises
        ------
        TypeError
            If ``weights``, a factor or a grid is not real numbers (strings,
            booleans, complex), or ``recompress`` is not ``True`` or ``False``.
        ValueError
            Mismatched factor shapes (the message names the factor), a grid
            that is not increasing or of the wrong length, a one-point grid
            without ``domain``, NaN/Inf entries.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> g = np.linspace(-1, 1, 101)
        >>> a = np.stack([np.exp(-g**2), np.exp(-4 * g**2)], axis=1)
        >>> F = ct.ChebTucker.from_cp(np.array([1.0, -0.5]), [a, a, a], g, degree=40, rtol=1e-9)
        >>> x = np.array([[0.3, -0.2, 0.1]])
        >>> exact = np.exp(-np.sum(x**2)) - 0.5 * np.exp(-4 * np.sum(x**2))
        >>> bool(abs(F(x)[0] - exact) < 1e-6)
        True
        """
        from scipy.interpolate import CubicSpline

        w, Fs = _check_weights_factors(weights, factors)
        d = len(Fs)
        grids = _check_grids(grid, Fs)
        recompress = check_bool(recompress, name="recompress")
        if domain is None:
            for k, g in enumerate(grids):
                if g.shape[0] < 2:
                    # the default box is the grid's extent: a single point
                    # gave an error about domain[k], which was not passed
                    raise ValueError(f"the grid of mode {k} has a single point, which spans no interval; "
                                     "pass domain (the box of the approximant)")
            domain = tuple((float(g[0]), float(g[-1])) for g in grids)
        domain = check_domain(domain)
        if len(domain) != d:
            raise ValueError(f"domain has {len(domain)} pairs but there are {d} factors")
        rtol = check_rtol(rtol)
        degs = _check_degrees(degree, d)
        A = []
        for k in range(d):
            x = _cheb.chebpts(degs[k] + 1, domain[k])
            if grids[k].shape[0] >= 2:
                V = CubicSpline(grids[k], Fs[k], axis=0, extrapolate=True)(x)
            else:
                V = np.repeat(Fs[k], x.shape[0], axis=0)
            A.append(_cheb.vals2coeffs(V, axis=0))
        core, Us = _coeff_factors_to_tucker(w, A, rtol, recompress)
        return cls(core, Us, domain)

    @classmethod
    def _from_cp_coefficients(cls, weights, coeff_factors, domain, rtol, recompress=True):
        core, Us = _coeff_factors_to_tucker(weights, coeff_factors, rtol, recompress)
        return cls(core, Us, domain)

    # -- evaluation --------------------------------------------------------
    def _check_points(self, points, extrapolate: bool, name: str = "points"):
        d = self.ndim
        extrapolate = check_bool(extrapolate, name="extrapolate")
        if not hasattr(points, "shape"):
            try:
                points = np.asarray(points)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be an (n, {d}) array of real numbers") from None
        xp = get_namespace(points)
        if points.ndim == 1 and d == 1:
            points = xp.reshape(points, (-1, 1))
        if points.ndim != 2 or points.shape[1] != d:
            raise ValueError(f"{name} must have shape (n, {d}), got {tuple(points.shape)}")
        if xp.isdtype(points.dtype, "complex floating"):
            raise TypeError(f"{name} must be real, got a complex array")
        if not _cheb._is_real_dtype(xp, points.dtype):
            # the cast below parsed strings ("0.5") and read True, False as 1, 0
            raise TypeError(f"{name} must be an (n, {d}) array of real numbers, got dtype {points.dtype}")
        if points.dtype != xp.float64 and not xp.isdtype(points.dtype, "real floating"):
            points = xp.astype(points, xp.float64)
        if not bool(xp.all(xp.isfinite(points))):
            raise ValueError(f"{name} contains NaN or Inf")
        lo = np.array([a for a, _ in self._domain])
        hi = np.array([b for _, b in self._domain])
        slack = _box_slack(lo, hi, float(xp.finfo(points.dtype).eps))
        if not extrapolate and points.shape[0] > 0:
            P = to_numpy(points)
            bad = np.nonzero(np.any((P < lo - slack) | (P > hi + slack), axis=1))[0]
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"{name}[{i}] = {tuple(float(v) for v in P[i])} lies outside the box {self._domain} "
                    f"({bad.size} points outside); pass extrapolate=True to evaluate the polynomial there"
                )
        # the map to [-1, 1] in float64: bounds cast to float32 or float16
        # points overflowed there (a box up to 1e39 gave NaN at float32 points)
        P64 = points if points.dtype == xp.float64 else xp.astype(points, xp.float64)
        mid, half = 0.5 * lo + 0.5 * hi, 0.5 * hi - 0.5 * lo  # no overflow on the way
        t = (P64 - xp.asarray(mid, dtype=xp.float64)) / xp.asarray(half, dtype=xp.float64)
        if points.dtype != xp.float64:
            t = xp.astype(t, points.dtype)
        if not extrapolate:
            t = xp.clip(t, -1.0, 1.0)
        return xp, t

    def _arrays_like(self, xp):
        return _in_namespace(xp, self._core), tuple(_in_namespace(xp, A) for A in self._factors)

    def _like_self(self, a):
        """A numpy result in the array library of this approximant."""
        return _in_namespace(get_namespace(self._core), a)

    def __call__(self, points, *, extrapolate: bool = False):
        """Evaluate at scattered points.

        Parameters
        ----------
        points : array, shape (n, d)
            Points in the box (numpy: a Numba kernel; other array libraries:
            array code in their namespace).
        extrapolate : bool, default False
            Allow points outside the box (the polynomial is extended; accuracy
            degrades quickly away from the box).

        Returns
        -------
        array, shape (n,)
            The approximation's values at the points, of the array library
            of ``points``.

        Raises
        ------
        TypeError
            If ``points`` is not real numbers (strings, booleans, complex) or
            ``extrapolate`` is not ``True`` or ``False``.
        ValueError
            Points of the wrong shape, NaN/Inf, or outside the box (the message
            names the first one) unless ``extrapolate=True``. Points within
            ``max(1e-12 (b - a), 4 eps max(|a|, |b|))`` of the box, ``eps``
            of their dtype, are on its boundary (rounding: ``float32(0.1)``
            lies above 0.1).

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] * x[..., 1], [(0, 1), (0, 2)], degree=3)
        >>> F(np.array([[0.5, 1.5]]))
        array([0.75])
        """
        xp, t = self._check_points(points, extrapolate)
        core, factors = self._arrays_like(xp)
        return tucker_cheb_eval(t, factors, core)

    def derivative_factors(self) -> tuple:
        """Coefficient factors of the partial derivatives (one per mode).

        Returns
        -------
        tuple of arrays
            Entry ``k`` has shape ``(max(m_k - 1, 1), r_k)``: the Chebyshev
            coefficients of the derivatives of the columns of ``factors[k]``
            (scaled to the interval). Replacing ``factors[k]`` by it gives
            the approximant of ``df/dx_k``.

        Notes
        -----
        Raises nothing of its own (the approximant was validated when built).

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] ** 2 * x[..., 1], [(-1, 1)] * 2, degree=3)
        >>> [A.shape[0] for A in F.derivative_factors()]
        [3, 3]
        """
        return tuple(_cheb.chebder(A, dom, axis=0) for A, dom in zip(self._factors, self._domain))

    def gradient(self, points, *, extrapolate: bool = False):
        """Gradient at scattered points (for a potential: minus the force per unit charge).

        Parameters
        ----------
        points : array, shape (n, d)
            Points in the box.
        extrapolate : bool, default False
            Allow points outside the box (see :meth:`__call__`).

        Returns
        -------
        array, shape (n, d)
            Column ``k`` is the exact derivative of the approximant in ``x_k``.

        Raises
        ------
        TypeError
            If ``points`` is not real numbers or ``extrapolate`` is not
            ``True`` or ``False``.
        ValueError
            Points of the wrong shape, NaN/Inf, or outside the box unless
            ``extrapolate=True``.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0]**2 * x[..., 1], [(-1, 1)] * 2, degree=4)
        >>> np.round(F.gradient(np.array([[0.5, 2.0 - 1.5]])), 12)
        array([[0.5 , 0.25]])
        """
        xp, t = self._check_points(points, extrapolate)
        core, factors = self._arrays_like(xp)
        dfs = tuple(_in_namespace(xp, A) for A in self.derivative_factors())
        return tucker_cheb_eval(t, factors, core, dfs)

    def integral(self) -> float:
        """Integral over the box (exact for the approximant; Clenshaw-Curtis in effect).

        Returns
        -------
        float
            The integral of the approximant over the box.

        Notes
        -----
        Raises nothing of its own (the approximant was validated when built).

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0]**2 + x[..., 1], [(0, 1), (0, 2)], degree=4)
        >>> round(F.integral(), 12)   # int_0^1 int_0^2 (x^2 + y) dy dx = 2/3 + 2
        2.666666666667
        """
        vecs = []
        for A, (a, b) in zip(self._factors, self._domain):
            vecs.append((0.5 * (b - a)) * (_cheb._moments(np.arange(A.shape[0])) @ to_numpy(A)))
        G = to_numpy(self._core)
        for v in vecs:
            G = np.tensordot(v, G, axes=(0, 0))
        return float(G)

    def inner(self, other: "ChebTucker") -> float:
        """The L2 inner product ``int_box f g dx`` with another approximant on the same box.

        Exact for the two polynomials: with ``M_k[i, j] = int T_i T_j`` over
        mode ``k``'s interval (closed form), it is the inner product of the
        cores after the small matrices ``U_k^T M_k V_k`` are applied, in
        ``O(sum_k m_k m'_k (r_k + r'_k) + prod r_k prod r'_k)``: no grid.

        Parameters
        ----------
        other : ChebTucker
            An approximant on the same ``domain`` (any degrees and ranks).

        Returns
        -------
        float
            ``int_box f g dx`` of the two approximants.

        Raises
        ------
        TypeError
            If ``other`` is not a ``ChebTucker``.
        ValueError
            If the boxes differ.

        See Also
        --------
        norm : ``sqrt(self.inner(self))``, computed without cancellation.

        Examples
        --------
        >>> import tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] * x[..., 1], [(0, 1), (0, 2)], degree=3)
        >>> G = ct.ChebTucker.from_function(lambda x: x[..., 0] + 0 * x[..., 1], [(0, 1), (0, 2)], degree=3)
        >>> round(F.inner(G), 12)   # int_0^1 int_0^2 x^2 y dy dx = 1/3 * 2
        0.666666666667
        """
        if not isinstance(other, ChebTucker):
            raise TypeError(f"other must be a ChebTucker, got {type(other).__name__}")
        if other._domain != self._domain:
            raise ValueError(f"the boxes differ: {self._domain} and {other._domain}; the inner product is over one box")
        W = []
        for A, B, (a, b) in zip(self._factors, other._factors, self._domain):
            A, B = to_numpy(A).astype(np.float64), to_numpy(B).astype(np.float64)
            M = _chebyshev_gram(A.shape[0], B.shape[0], 0.5 * b - 0.5 * a)
            W.append(A.T @ M @ B)
        from .tensor import multi_mode_product

        Gf = to_numpy(self._core).astype(np.float64)
        Gg = multi_mode_product(to_numpy(other._core).astype(np.float64), W)  # r_k x r'_k applied per mode
        return float(np.vdot(Gf, Gg))

    def norm(self) -> float:
        """The L2 norm ``sqrt(int_box f^2 dx)`` of the approximant.

        Exact for the polynomial: ``||core x_k (R_k U_k)||_F`` with
        ``R_k^T R_k`` the Cholesky factorization of the Chebyshev Gram
        matrix of mode ``k`` (see :meth:`inner`), summed without overflow or
        cancellation.

        Returns
        -------
        float
            ``sqrt(int_box f^2 dx)``, non-negative.

        Notes
        -----
        Raises nothing of its own (the approximant was validated when built).

        Examples
        --------
        >>> import tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] + 0 * x[..., 1], [(0, 1), (0, 3)], degree=2)
        >>> round(F.norm() ** 2, 12)   # int_0^1 int_0^3 x^2 dy dx
        1.0
        """
        from .tensor import multi_mode_product

        mats = []
        for A, (a, b) in zip(self._factors, self._domain):
            A = to_numpy(A).astype(np.float64)
            R = np.linalg.cholesky(_chebyshev_gram(A.shape[0], A.shape[0], 0.5 * b - 0.5 * a)).T
            mats.append(R @ A)
        T = multi_mode_product(to_numpy(self._core).astype(np.float64), mats)
        return float(_scaled_frobenius(np, T, 1.0, 0))

    def on_grid(self, *axes):
        """The approximant on a tensor grid, as a Tucker tensor (the two-level format).

        Parameters
        ----------
        *axes : d 1-D arrays
            Grid coordinates per mode, inside the box.

        Returns
        -------
        TuckerTensor
            Factors ``T(axes[k]) @ factors[k]`` (Chebyshev polynomials on the
            grid times the coefficient factors), core unchanged.

        Raises
        ------
        TypeError
            If an axis is not real numbers (strings, booleans, complex).
        ValueError
            If the number of axes is not ``d``, an axis is not a non-empty 1-D
            array, holds NaN or Inf, or it leaves the interval of its mode (beyond
            ``max(1e-12 (b - a), 4 eps max(|a|, |b|))``, ``eps`` of the axis'
            dtype: a float32 axis ending at ``float32(b)`` is inside).

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] + x[..., 1], [(-1, 1)] * 2, degree=2)
        >>> T = F.on_grid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 3))
        >>> T.shape, float(np.round(T.full()[4, 2], 12))
        ((5, 3), 2.0)
        """
        from .tucker import TuckerTensor

        d = self.ndim
        if len(axes) != d:
            raise ValueError(f"on_grid needs {d} axes (one per dimension), got {len(axes)}")
        facs = []
        xp = None
        for k, (ax, A, dom) in enumerate(zip(axes, self._factors, self._domain)):
            if not hasattr(ax, "shape"):
                try:
                    ax = np.asarray(ax)
                except (TypeError, ValueError):
                    raise TypeError(f"axes[{k}] must be a 1-D array of real numbers, got "
                                    f"{type(ax).__name__}") from None
            xp = get_namespace(ax)
            if not _cheb._is_real_dtype(xp, ax.dtype):
                # strings reached a raw UFuncTypeError, booleans were read as 0 and 1
                raise TypeError(f"axes[{k}] must be a 1-D array of real numbers, got dtype {ax.dtype}")
            if ax.ndim != 1 or ax.shape[0] == 0:
                raise ValueError(f"axes[{k}] must be a non-empty 1-D array, got shape {tuple(ax.shape)}")
            if not bool(xp.all(xp.isfinite(ax))):
                # min and max compare False with NaN: the range check let it
                # through and the grid held NaN values
                raise ValueError(f"axes[{k}] contains NaN or Inf")
            a, b = dom
            eps = float(xp.finfo(ax.dtype).eps) if xp.isdtype(ax.dtype, "real floating") else _F64_EPS
            slack = float(_box_slack(a, b, eps))
            if float(xp.min(ax)) < a - slack or float(xp.max(ax)) > b + slack:
                raise ValueError(f"axes[{k}] leaves the interval {dom} of mode {k}")
            facs.append(_cheb.chebvander(ax, A.shape[0], dom) @ _in_namespace(xp, A))
        return TuckerTensor(_in_namespace(xp, self._core), facs, copy=False)

    def coefficients(self):
        """The full coefficient tensor ``(m_1, ..., m_d)`` (dense; for small cases).

        Returns
        -------
        array, shape (m_1, ..., m_d)
            ``core`` multiplied by every coefficient factor.

        Notes
        -----
        Raises nothing of its own (the approximant was validated when built);
        the memory is ``prod m_k`` entries.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] * x[..., 1], [(-1, 1)] * 2, degree=2)
        >>> np.round(F.coefficients(), 12)   # x y = T_1(x) T_1(y)
        array([[0., 0., 0.],
               [0., 1., 0.],
               [0., 0., 0.]])
        """
        from .tensor import multi_mode_product

        return multi_mode_product(self._core, list(self._factors))

    # -- arithmetic --------------------------------------------------------
    def _scaled(self, scalar, divide: bool):
        s = float(scalar)
        op = "/" if divide else "*"
        if not math.isfinite(s):
            raise ValueError(f"cannot scale a ChebTucker by {s} (F {op} {s} is not a finite approximant)")
        if divide and s == 0.0:
            raise ValueError("cannot divide a ChebTucker by zero")
        xp = get_namespace(self._core)
        with np.errstate(over="ignore"):  # checked below
            core = self._core / s if divide else self._core * s
        if not bool(xp.all(xp.isfinite(core))):
            raise ValueError(f"F {op} {s:g} overflows float64 in the core; scale by a smaller factor")
        return ChebTucker(core, self._factors, self._domain)

    def __mul__(self, scalar):
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Real):
            return NotImplemented
        return self._scaled(scalar, divide=False)

    __rmul__ = __mul__

    def __truediv__(self, scalar):
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Real):
            return NotImplemented
        return self._scaled(scalar, divide=True)

    def __neg__(self):
        return ChebTucker(-self._core, self._factors, self._domain)

    def __add__(self, other):
        if not isinstance(other, ChebTucker):
            return NotImplemented
        if other.ndim != self.ndim or not np.allclose(np.array(other.domain), np.array(self.domain),
                                                      rtol=1e-14, atol=0.0):
            raise ValueError(f"cannot add approximants on different boxes: {self.domain} and {other.domain}")
        ra, rb = self.ranks, other.ranks
        core = np.zeros(tuple(a + b for a, b in zip(ra, rb)))
        core[tuple(slice(0, r) for r in ra)] = to_numpy(self._core)
        core[tuple(slice(a, a + b) for a, b in zip(ra, rb))] = to_numpy(other._core)
        factors = []
        for A, B in zip(self._factors, other._factors):
            A, B = to_numpy(A), to_numpy(B)
            m = max(A.shape[0], B.shape[0])
            F = np.zeros((m, A.shape[1] + B.shape[1]))
            F[: A.shape[0], : A.shape[1]] = A
            F[: B.shape[0], A.shape[1]:] = B
            factors.append(self._like_self(F))
        # built in numpy, returned in this approximant's library (it came back numpy)
        return ChebTucker(self._like_self(core), factors, self._domain)

    def __sub__(self, other):
        if not isinstance(other, ChebTucker):
            return NotImplemented
        return self + (-other)

    def recompress(self, rtol: float = 1e-7, *, rank=None) -> "ChebTucker":
        """Re-truncate (after ``+``): QR of each factor, then HOSVD of the small core.

        What a sum cancels down to rounding (about ``8 d eps`` times the
        size of its terms, as in ``F - F``) is dropped with ``rtol``: the
        tolerance is raised to that floor, and a sum that is all rounding
        becomes the zero approximant of ranks ``(1, ..., 1)``.

        Parameters
        ----------
        rtol : float in (0, 1), default 1e-7
            Truncated-HOSVD tolerance on the coefficient tensor (as
            :meth:`from_values`).
        rank : int or sequence of int, optional
            Fixed Tucker ranks instead of ``rtol``.

        Returns
        -------
        ChebTucker
            A new approximant with orthonormal coefficient factors.

        Raises
        ------
        ValueError
            If ``rtol`` is outside (0, 1) or ``rank`` does not fit the ranks.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] * x[..., 1], [(-1, 1)] * 2, degree=3)
        >>> (F + F).ranks, (F + F).recompress(1e-12).ranks
        ((2, 2), (1, 1))
        """
        if rank is None:
            rtol = check_rtol(rtol)
        # core and factors in units of powers of two near their largest
        # entries (exact), the result scaled back at the end: the norms of the
        # rounding floor below overflowed (or underflowed) for cores near
        # 1e200 (1e-200), and the whole approximant was taken for rounding
        core, e = _pow2_normalized(np, to_numpy(self._core))
        Qs = []
        # rounding floor of the re-expanded core: a sum that cancels (F - F,
        # F + G - G) leaves entries of about eps times its terms' size, which a
        # relative rtol would keep as a full-rank approximant of pure noise
        scale = float(np.linalg.norm(core))
        for k, A in enumerate(self._factors):
            A, ek = _pow2_normalized(np, to_numpy(A))
            e += ek
            Q, Rm = np.linalg.qr(A)
            Qs.append(Q)
            scale *= float(np.linalg.norm(Rm, 2))
            core = np.moveaxis(np.tensordot(Rm, core, axes=(1, k)), 0, k)
        if rank is not None:
            rank = check_rank(rank, core.shape)
        else:
            floor = _RECOMPRESS_FLOOR * self.ndim * float(np.finfo(np.float64).eps) * scale
            nrm = float(np.linalg.norm(core))
            if nrm <= floor:  # nothing above rounding: the zero approximant, rank 1
                zero = np.zeros((1,) * self.ndim)
                return ChebTucker(self._like_self(zero), [self._like_self(Q[:, :1]) for Q in Qs], self._domain)
            rtol = min(max(rtol, floor / nrm), _RTOL_BELOW_ONE)
        core2, V = _compress(core, None if rank is not None else rtol, rank, "hosvd")
        core2 = _times_pow2(np, core2, e)
        return ChebTucker(self._like_self(core2), [self._like_self(Q @ Vk) for Q, Vk in zip(Qs, V)], self._domain)

    # -- persistence -------------------------------------------------------
    def save(self, path) -> None:
        """Write to ``.npz`` (no pickle).

        Parameters
        ----------
        path : str or path-like
            Destination; numpy appends ``.npz`` when the name lacks it.

        Raises
        ------
        OSError
            If the file cannot be written.

        Examples
        --------
        >>> import numpy as np, tensorapprox.chebtucker as ct, tempfile, os
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] + x[..., 1], [(0, 1), (0, 1)], degree=1)
        >>> p = os.path.join(tempfile.mkdtemp(), "f.npz"); F.save(p)
        >>> ct.ChebTucker.load(p).ranks == F.ranks
        True
        """
        arrays = {f"factor_{k}": to_numpy(A) for k, A in enumerate(self._factors)}
        np.savez(path, format=np.array(_FORMAT_TAG), version=np.array(_FORMAT_VERSION),
                 ndim=np.array(self.ndim), domain=np.array(self._domain, dtype=np.float64),
                 core=to_numpy(self._core), **arrays)

    @classmethod
    def load(cls, path) -> "ChebTucker":
        """Read a file written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A ``.npz`` file written by :meth:`save`.

        Returns
        -------
        ChebTucker
            The stored approximant.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is unreadable, foreign (no ChebTucker format tag) or corrupt.

        Examples
        --------
        >>> import tensorapprox.chebtucker as ct, tempfile, os
        >>> F = ct.ChebTucker.from_function(lambda x: x[..., 0] * x[..., 1], [(0, 1), (0, 1)], degree=2)
        >>> p = os.path.join(tempfile.mkdtemp(), "f.npz"); F.save(p)
        >>> G = ct.ChebTucker.load(p)
        >>> G.ranks, G.domain
        ((1, 1), ((0.0, 1.0), (0.0, 1.0)))
        """
        data = read_npz(path, "ChebTucker")
        if "format" not in data or data["format"].shape != () or str(data["format"]) != _FORMAT_TAG:
            raise ValueError(f"{path!s} is not a ChebTucker file (missing or foreign 'format' tag)")
        npz_version(data, f"{path!s}", "ChebTucker", _FORMAT_VERSION)

        def member(key, ndim):
            # numbers of the stored dtype only, with the dimensions save
            # writes: the float64 cast dropped a complex core's imaginary part
            # (a ComplexWarning only), parsed a core of strings and read
            # boolean factors as 0 and 1
            if key not in data:
                raise ValueError(f"{path!s} is a corrupt ChebTucker file: no '{key}' array")
            a = data[key]
            if not _cheb._is_real_dtype(np, a.dtype):
                raise ValueError(f"{path!s} is a corrupt ChebTucker file: '{key}' has dtype {a.dtype}, "
                                 "where real numbers were expected")
            if a.ndim != ndim:
                raise ValueError(f"{path!s} is a corrupt ChebTucker file: '{key}' has shape {a.shape}, "
                                 f"where {ndim} dimensions were expected")
            return a

        d = member("ndim", 0)
        if d.dtype.kind not in "iu" or int(d) < 1:
            raise ValueError(f"{path!s} is a corrupt ChebTucker file: ndim {d!r}, where a positive integer "
                             "was expected")
        d = int(d)
        dom = member("domain", 2)
        if dom.shape != (d, 2):
            raise ValueError(f"{path!s} is a corrupt ChebTucker file: 'domain' has shape {dom.shape}, "
                             f"where ({d}, 2) was expected")
        domain = [tuple(float(v) for v in row) for row in dom]
        core = member("core", d).astype(np.float64, copy=False)
        factors = [member(f"factor_{k}", 2).astype(np.float64, copy=False) for k in range(d)]
        if not (np.all(np.isfinite(core)) and all(np.all(np.isfinite(A)) for A in factors)):
            raise ValueError(f"{path!s} is a corrupt ChebTucker file: NaN or Inf entries")
        try:
            return cls(core, factors, domain)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path!s} is a corrupt ChebTucker file: {exc}") from None


# --------------------------------------------------------------------------- #
# sampling
# --------------------------------------------------------------------------- #
def _grid_points(domain, ms):
    axes = [_cheb.chebpts(m, dom) for m, dom in zip(ms, domain)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack(mesh, axis=-1)


def _sample(f, domain, ms):
    return _call_f(f, _grid_points(domain, ms))


def _call_f(f, X):
    """``f(X)`` for points ``X`` of shape ``(..., d)``, checked: real, finite, shape ``X.shape[:-1]``."""
    out = f(X)
    shape = tuple(X.shape[:-1])
    if not hasattr(out, "shape"):
        raise ValueError(f"f must return an array of shape {shape} for points of shape {X.shape}, "
                         f"got {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise ValueError(f"f returned shape {tuple(out.shape)} for points of shape {X.shape}; it must "
                         f"return shape {shape} (one value per point, reduce over the last axis)")
    out = np.asarray(to_numpy(out))
    if np.iscomplexobj(out):
        raise TypeError("f returned complex values; approximate the real and imaginary parts separately")
    if not _cheb._is_real_dtype(np, out.dtype):
        # the cast below parsed strings ("2.5") and read booleans as 0 and 1
        hint = " (cast a boolean indicator with .astype(float))" if out.dtype == np.bool_ else ""
        raise TypeError(f"f must return real numbers, got dtype {out.dtype}{hint}")
    out = out.astype(np.float64, copy=False)
    finite = np.isfinite(out)
    if not finite.all():
        idx = np.unravel_index(int(np.argmin(finite.ravel())), shape)
        kind = "NaN" if np.isnan(out[idx]) else "Inf"
        pt = tuple(float(v) for v in X[idx])
        where = f"grid index {tuple(int(i) for i in idx)}" if len(shape) > 1 else f"point index {int(idx[0])}"
        raise ValueError(f"f returned {kind} at the point {pt} ({where}); "
                         f"f must be finite on the whole box")
    return out


def _coeffs(values):
    C = values
    for k in range(values.ndim):
        C = _cheb.vals2coeffs(C, axis=k)
    return C


def _off_grid_points(domain, degs):
    """``_ADAPTIVE_CHECK_POINTS`` deterministic points strictly between the Chebyshev points of every mode.

    Point ``i`` lies in mode ``k`` at the angle ``pi (j + phi) / n_k`` of the
    ``n_k + 1`` points ``cos(pi j / n_k)``, with ``j`` and ``phi`` in
    ``[0.25, 0.75]`` from golden-ratio and ``sqrt(2)`` sequences: never on
    the grid, spread over the interval, and not at the midpoints in angle
    (where ``T_{4n-k}`` and ``T_k`` agree).
    """
    d = len(domain)
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    X = np.empty((_ADAPTIVE_CHECK_POINTS, d))
    for i in range(_ADAPTIVE_CHECK_POINTS):
        for k, ((a, b), n) in enumerate(zip(domain, degs)):
            s = i * d + k + 1
            j = min(int(n * ((s * golden) % 1.0)), n - 1)
            phi = 0.25 + 0.5 * ((s * math.sqrt(2.0)) % 1.0)
            t = -math.cos(math.pi * (j + phi) / n)
            mid, half = 0.5 * a + 0.5 * b, 0.5 * b - 0.5 * a
            X[i, k] = min(max(mid + half * t, a), b)
    return X


def _eval_dense(C, X, domain):
    """The series with dense coefficients ``C`` at the points ``X`` (n, d)."""
    G = None
    for k, dom in enumerate(domain):
        V = _cheb.chebvander(X[:, k], C.shape[k], dom)  # (n, m_k)
        G = np.tensordot(V, C, axes=(1, 0)) if G is None else np.einsum("nm,nm...->n...", V, G)
    return G


def _adaptive_coefficients(f, domain, rtol, max_degree, max_memory):
    """Double the degree of each unresolved mode until its tail is below tolerance.

    A candidate whose every mode is resolved is then checked off the grid
    (:func:`_off_grid_points`): if the interpolant misses ``f`` there by
    more than ``max(rtol, 100 eps m) * scale`` (``scale`` the largest
    value seen), ``f`` aliased on the grid and every mode below
    ``max_degree`` doubles again.
    """
    d = len(domain)
    degs = [min(_ADAPTIVE_START, max_degree)] * d
    resolved = [False] * d
    eps = np.finfo(np.float64).eps
    missed = None  # off-grid error of a candidate that failed the check at the cap
    while True:
        ms = tuple(g + 1 for g in degs)
        _check_memory(ms, d, max_memory, name="adaptive degree")
        values = _sample(f, domain, ms)
        C = _coeffs(values)
        scale = float(np.max(np.abs(C)))
        grow = False
        profiles = []
        for k in range(d):
            prof = np.max(np.abs(np.moveaxis(C, k, 0)).reshape(ms[k], -1), axis=1)
            profiles.append(prof)
            thresh = max(0.1 * rtol, 10 * eps * ms[k]) * scale
            tail = prof[-max(2, ms[k] // 8):]
            resolved[k] = bool(np.max(tail) <= thresh)
            if not resolved[k]:
                if degs[k] >= max_degree:
                    continue
                degs[k] = min(2 * degs[k], max_degree)
                grow = True
        missed = None
        if not grow and all(resolved):
            # the tail test cannot see aliasing: compare with f off the grid
            X = _off_grid_points(domain, degs)
            fx = _call_f(f, X)
            vscale = max(float(np.max(np.abs(values))), float(np.max(np.abs(fx))))
            err = float(np.max(np.abs(_eval_dense(C, X, domain) - fx)))
            if err > max(rtol, 100 * eps * max(ms)) * vscale:
                missed = err / vscale
                for k in range(d):
                    if degs[k] < max_degree:
                        degs[k] = min(2 * degs[k], max_degree)
                        grow = True
        if not grow:
            break
        # memory guard before the next (larger) sample
        try:
            _check_memory(tuple(g + 1 for g in degs), d, max_memory, name="adaptive degree")
        except ValueError:
            warnings.warn("the adaptive degree reached the memory guard; the result may be unresolved",
                          RuntimeWarning, stacklevel=3)
            break
    if not all(resolved):
        bad = [k for k in range(d) if not resolved[k]]
        warnings.warn(f"modes {bad} are not resolved to rtol={rtol:g} at degree {max_degree}; "
                      "raise max_degree or check f for singularities", RuntimeWarning, stacklevel=3)
    elif missed is not None:
        warnings.warn(f"the interpolant of degree {tuple(degs)} misses f by {missed:.3g} (relative) at points "
                      f"off the Chebyshev grid, above rtol={rtol:g}: f aliases there (it has components of "
                      "higher degree); raise max_degree", RuntimeWarning, stacklevel=3)
    if scale == 0.0:
        return C[tuple(slice(0, 2) for _ in range(d))]
    # chop the tail below the tolerance
    keep = []
    for k, prof in enumerate(profiles):
        thresh = max(0.1 * rtol, 10 * eps * prof.shape[0]) * scale
        big = np.nonzero(prof > thresh)[0]
        last = int(big[-1]) if big.size else 0
        keep.append(max(2, min(prof.shape[0], last + 2)))
    return C[tuple(slice(0, m) for m in keep)]


def _chebyshev_gram(m: int, n: int, half: float) -> np.ndarray:
    """``M[i, j] = int_a^b T_i T_j dx`` (``half = (b - a) / 2``) for ``i < m``, ``j < n``.

    ``T_i T_j = (T_{i+j} + T_{|i-j|}) / 2`` and ``int_{-1}^1 T_k = 2 / (1 - k^2)``
    for even ``k``, 0 for odd ``k``.
    """
    i = np.arange(m)[:, None]
    j = np.arange(n)[None, :]
    return half * 0.5 * (_cheb._moments(i + j) + _cheb._moments(np.abs(i - j)))


def _check_grids(grid, Fs):
    d = len(Fs)
    # coordinates: strings were parsed and booleans read as 0 and 1 by the cast
    if hasattr(grid, "shape") and np.asarray(to_numpy(grid)).ndim == 1:
        grids = [_real_numpy(grid, "grid").astype(np.float64, copy=False)] * d
    else:
        if not hasattr(grid, "__len__") or len(grid) != d:
            raise ValueError(f"grid must be one 1-D array or a sequence of {d} 1-D arrays (one per factor)")
        grids = [_real_numpy(g, f"grid[{k}]").astype(np.float64, copy=False) for k, g in enumerate(grid)]
    for k, (g, F) in enumerate(zip(grids, Fs)):
        if g.ndim != 1:
            raise ValueError(f"grid for mode {k} must be 1-D, got shape {g.shape}")
        if g.shape[0] != F.shape[0]:
            raise ValueError(f"factors[{k}] has {F.shape[0]} rows but the grid of mode {k} has "
                             f"{g.shape[0]} points; each factor needs one row per grid point")
        if not np.all(np.isfinite(g)) or (g.shape[0] > 1 and not np.all(np.diff(g) > 0)):
            raise ValueError(f"grid for mode {k} must be finite and strictly increasing")
    return grids
