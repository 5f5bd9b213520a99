"""Rank allocation across layers under a parameter budget."""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np

from .._array import to_numpy
from .._validation import check_choice

__all__ = ["allocate_ranks"]


def allocate_ranks(spectra: Sequence, budget: float, strategy: str = "uniform", *,
                   shapes: Sequence[tuple[int, int]], weights: Sequence[float] | None = None) -> list[int]:
    """Ranks for a set of matrices that keep a fraction of their parameters.

    Parameters
    ----------
    spectra : sequence of 1-D arrays
        Singular values of each layer (descending), ideally of the whitened
        weight ``W S`` so that the discarded tail is the calibrated output
        error (see :func:`tensorapprox.nn.whitened_svd`).
    budget : float in (0, 1]
        Fraction of the total dense parameter count ``sum m_i n_i`` to keep.
    strategy : {'uniform', 'global'}
        'uniform': every layer keeps the same fraction,
        ``r_i = floor(budget m_i n_i / (m_i + n_i))``. 'global': the budget
        goes where it removes the most relative output error per parameter:
        each added rank of layer ``i`` costs ``m_i + n_i`` and removes
        ``sigma_ik^2 / sum_k sigma_ik^2``; units are bought greedily in order
        of that ratio, every layer keeps rank >= 1, and a layer that reaches
        its break-even rank may be bought whole (kept dense, cost ``m_i n_i``).
    shapes : sequence of (m, n)
        Weight shapes, one per spectrum.
    weights : sequence of float, optional
        'global' only: how much a unit of each layer's squared relative error
        costs the model, e.g. the measured sensitivity of the model's output
        (what :func:`tensorapprox.nn.compress_model` does with
        ``rank_allocation='sensitivity'``). Each layer's gains are multiplied
        by its weight; default 1 for every layer (the summed relative error).

    Returns
    -------
    list of int
        One rank per layer. A rank ``r`` with ``r (m + n) >= m n`` means the
        layer is better kept dense (it returns ``min(m, n)`` then).

    Raises
    ------
    ValueError
        If ``budget`` is outside (0, 1], lengths disagree, a spectrum is too
        short for its shape, or a weight is negative or not finite.

    Notes
    -----
    The global strategy follows WeLore (Jaiswal et al. 2024), which gives
    layers whose spectra have heavy tails (low-rank structure) small ranks
    and keeps the others, here with the calibrated spectra of SVD-LLM so the
    allocation minimizes the summed relative output error to first order.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.nn import allocate_ranks
    >>> steep = 0.5 ** np.arange(64)          # nearly low rank
    >>> flat = np.ones(64)                    # nothing to gain from truncation
    >>> allocate_ranks([steep, flat], 0.5, 'global', shapes=[(64, 64)] * 2)
    [3, 29]
    >>> decaying = 0.9 ** np.arange(64)
    >>> allocate_ranks([decaying] * 2, 0.25, 'global', shapes=[(64, 64)] * 2)
    [8, 8]
    >>> allocate_ranks([decaying] * 2, 0.25, 'global', shapes=[(64, 64)] * 2, weights=[10.0, 1.0])
    [13, 3]
    """
    check_choice(strategy, name="strategy", choices=("uniform", "global"))
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise TypeError(f"budget must be a float in (0, 1], got {type(budget).__name__}")
    budget = float(budget)
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"budget must lie in (0, 1] (the fraction of parameters kept), got {budget}")
    spectra = [np.asarray(to_numpy(s), dtype=np.float64).ravel() for s in spectra]
    shapes = [(int(m), int(n)) for m, n in shapes]
    if len(spectra) != len(shapes):
        raise ValueError(f"got {len(spectra)} spectra but {len(shapes)} shapes; give one shape per spectrum")
    for i, (s, (m, n)) in enumerate(zip(spectra, shapes)):
        if s.size < min(m, n):
            spectra[i] = np.concatenate([s, np.zeros(min(m, n) - s.size)])
    if weights is None:
        weights = np.ones(len(shapes))
    else:
        weights = np.asarray(to_numpy(weights), dtype=np.float64).ravel()
        if weights.shape != (len(shapes),):
            raise ValueError(f"got {weights.size} weights for {len(shapes)} layers; give one weight per layer")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("weights must be finite and non-negative")
    if strategy == "uniform":
        out = []
        for m, n in shapes:
            r = max(1, math.floor(budget * m * n / (m + n)))
            out.append(min(m, n) if r * (m + n) >= m * n else r)
        return out
    return _global(spectra, shapes, budget, weights)


def _global(spectra, shapes, budget, weights):
    total = sum(m * n for m, n in shapes)
    left = budget * total
    ranks = [1] * len(shapes)
    caps = []
    items = []  # (ratio, layer, kind) kind: 0 = one more rank, 1 = go dense
    for i, (s, (m, n)) in enumerate(zip(spectra, shapes)):
        left -= m + n
        e = s ** 2
        E = float(e.sum())
        cap = max(1, (m * n - 1) // (m + n))
        caps.append(cap)
        if E <= 0.0:
            continue
        gains = weights[i] * e[1:cap] / E
        for k, g in enumerate(gains):
            items.append((g / (m + n), i, 0, k + 2))
        tail = weights[i] * float(e[cap:].sum()) / E
        extra = m * n - cap * (m + n)
        if extra > 0:
            items.append((tail / extra, i, 1, 0))
    # stable sort by ratio, descending; within a layer ratios never increase
    items.sort(key=lambda t: -t[0])
    dense = [False] * len(shapes)
    for ratio, i, kind, target in items:
        m, n = shapes[i]
        if dense[i]:
            continue
        if kind == 0:
            if ranks[i] != target - 1 or left < m + n:
                continue
            ranks[i] = target
            left -= m + n
        else:
            extra = m * n - ranks[i] * (m + n)
            if ranks[i] != caps[i] or left < extra:
                continue
            dense[i] = True
            left -= extra
    return [min(m, n) if dense[i] else ranks[i] for i, (m, n) in enumerate(shapes)]
