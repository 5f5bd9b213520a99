"""Rank allocation across layers under a parameter budget."""

from __future__ import annotations

import heapq
import numbers
from typing import Sequence

import numpy as np

from .._array import to_numpy
from .._validation import check_choice, check_size_pair
from .factorize import _budget_count

__all__ = ["allocate_ranks"]


def allocate_ranks(spectra: Sequence, budget: float, strategy: str = "uniform", *,
                   shapes: Sequence[tuple[int, int]], weights: Sequence[float] | None = None,
                   form: str = "product") -> list[int]:
    """Choose ranks for a set of matrices that keep a fraction of their parameters.

    Parameters
    ----------
    spectra : sequence of 1-D arrays
        Singular values of each layer (descending, finite, non-negative),
        ideally of the whitened weight ``W S`` so that the discarded tail is
        the calibrated output error (see :func:`tensorapprox.nn.whitened_svd`).
        Each needs ``min(m, n)`` values at least; only 'global' reads them,
        so 'uniform' also accepts empty ones. Only relative energies count,
        so scaling a spectrum changes nothing.
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
        A unit that no longer fits ends its layer's purchases, and the rest of
        the budget fills up with the other layers' next units. The budget is
        never exceeded (beyond the rank 1 every layer keeps), and the
        (weighted) relative energy kept is at least that of the prefix
        greedy, which stops at the first unit that does not fit and keeps
        more as the budget grows: the fill-up only adds units to it. Like
        any greedy for this knapsack problem it is a heuristic: a larger
        budget can lower some ranks, and, rarely, keep slightly less energy
        than a smaller one (an expensive unit that fits only at the larger
        budget displaces several cheaper ones).
    shapes : sequence of (m, n)
        Weight shapes, one per spectrum: pairs of positive ints.
    weights : sequence of float, optional
        'global' only: how much a unit of each layer's squared relative error
        costs the model, e.g. the measured sensitivity of the model's output
        (what :func:`tensorapprox.nn.compress_model` does with
        ``rank_allocation='sensitivity'``). Each layer's gains are multiplied
        by its weight; default 1 for every layer (the summed relative error).
    form : {'product', 'interpolative'}, default 'product'
        How a rank-``r`` layer is stored, which sets its cost: two factors,
        ``r (m + n)`` numbers; or the row-interpolative form of
        :func:`tensorapprox.nn.interpolative_form`, ``r (m + n - r) + m``,
        wherever that is smaller (for ``r^2 > m``; below, the two factors).
        The budget is counted in that cost (in the interpolative range the
        ``k``-th rank adds ``m + n - 2k + 1`` numbers), and a layer is kept
        dense once its rank would cost ``m n`` or more.

    Returns
    -------
    list of int
        One rank per layer. A rank ``r`` with ``r (m + n) >= m n`` means the
        layer is better kept dense (it returns ``min(m, n)`` then).

    Raises
    ------
    ValueError
        If ``budget`` is outside (0, 1], lengths disagree, a shape has a
        size below 1, a spectrum holds NaN, Inf or negative values, a
        spectrum is too short for its shape (empty ones pass with 'uniform'),
        or a weight is negative or not finite.
    TypeError
        If ``budget`` is not a real number or a shape is not a pair of ints.

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
    >>> allocate_ranks([decaying], 0.5, shapes=[(64, 64)]), allocate_ranks([decaying], 0.5, shapes=[(64, 64)],
    ...                                                                   form='interpolative')
    ([16], [18])
    """
    check_choice(strategy, name="strategy", choices=("uniform", "global"))
    check_choice(form, name="form", choices=("product", "interpolative"))
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise TypeError(f"budget must be a float in (0, 1], got {type(budget).__name__}")
    budget = float(budget)
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"budget must lie in (0, 1] (the fraction of parameters kept), got {budget}")
    spectra = [np.asarray(to_numpy(s), dtype=np.float64).ravel() for s in spectra]
    shapes = [check_size_pair(shape, name=f"shapes[{i}]", labels=("m", "n")) for i, shape in enumerate(shapes)]
    if len(spectra) != len(shapes):
        raise ValueError(f"got {len(spectra)} spectra but {len(shapes)} shapes; give one shape per spectrum")
    for i, (s, (m, n)) in enumerate(zip(spectra, shapes)):
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError(f"spectra[{i}] must hold finite, non-negative singular values")
        # a short spectrum would read as zeros in its tail: the global
        # allocation would see nothing to gain in ranks it has no values for.
        # 'uniform' does not read the spectra, so an empty one stands for none
        if s.size < min(m, n) and (strategy == "global" or s.size > 0):
            raise ValueError(f"spectra[{i}] has {s.size} singular values, but its {m} x {n} layer has "
                             f"min(m, n) = {min(m, n)}; pass the full spectrum")
    if weights is None:
        weights = np.ones(len(shapes))
    else:
        weights = np.asarray(to_numpy(weights), dtype=np.float64).ravel()
        if weights.shape != (len(shapes),):
            raise ValueError(f"got {weights.size} weights for {len(shapes)} layers; give one weight per layer")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("weights must be finite and non-negative")
    costs = [_costs(m, n, form) for m, n in shapes]
    if strategy == "uniform":
        out = []
        for (m, n), c in zip(shapes, costs):
            # the integer budget: budget * m * n in floats fell just below an
            # exact boundary (0.58 * 100 = 57.99999999999999) and lost a rank
            r = max(1, int(np.searchsorted(c, _budget_count(budget, m * n), side="right")))
            out.append(min(m, n) if r >= c.size or c[r - 1] >= m * n else r)
        return out
    return _global(spectra, shapes, budget, weights, costs)


def _costs(m: int, n: int, form: str) -> np.ndarray:
    """Stored numbers at ranks ``1 .. min(m, n)`` (entry ``r - 1`` for rank ``r``)."""
    r = np.arange(1, min(m, n) + 1, dtype=np.int64)
    if form == "product":
        return r * (m + n)
    return np.where(_interpolative_pays(m, n, r), r * (m + n - r) + m, r * (m + n))


def _interpolative_pays(m: int, n: int, r):
    """Whether rank ``r`` stores fewer numbers in row-interpolative form than as two factors.

    The interpolative form (:func:`tensorapprox.nn.interpolative_cost`) stores
    ``r (m + n - r) + m`` numbers against ``r (m + n)``: it pays above rank
    ``sqrt(m)``, where the saved ``r^2`` outweighs the ``m`` row indices.
    ``compress_model(factor_form='interpolative')`` and the rank allocation's
    cost table both decide by this rule.
    """
    return r * (m + n - r) + m < r * (m + n)


def _global(spectra, shapes, budget, weights, costs):
    """Greedy purchase of the next rank (or of going dense) with the best gain per number stored.

    Each layer offers one unit at a time: its next rank, or, at its largest
    rank that stores fewer than ``m n`` numbers (``cap``), the rest of its
    spectrum at once by staying dense. The best offer is bought while the
    budget lasts; a layer whose next unit no longer fits stops there. The
    units bought before the first that does not fit are the prefix greedy's
    solution; the fill-up after it only adds units, so it never keeps less
    energy than that prefix (returning the better of the two is returning
    this one).
    """
    total = sum(m * n for m, n in shapes)
    left = _budget_count(budget, total)  # an int, exact on the boundaries (see _budget_count)
    ranks = [1] * len(shapes)
    dense = [False] * len(shapes)
    caps, energies = [], []
    for i, ((m, n), c) in enumerate(zip(shapes, costs)):
        left -= int(c[0])
        caps.append(max(1, int(np.searchsorted(c[:-1], m * n, side="left"))))
        # only the relative energies sigma_k^2 / sum sigma^2 enter: squaring
        # sigma / sigma_1 keeps them from under- or overflowing at any scale
        s = spectra[i]
        top = float(s.max()) if s.size else 0.0
        e = (s / top) ** 2 if top > 0.0 else np.zeros_like(s)
        energies.append((e, float(e.sum())))
    heap = []

    def offer(i):
        m, n = shapes[i]
        e, E = energies[i]
        if E <= 0.0 or dense[i]:
            return
        k = ranks[i]
        if k < caps[i]:
            gain, cost = e[k], int(costs[i][k] - costs[i][k - 1])
        else:
            gain, cost = float(e[k:].sum()), m * n - int(costs[i][k - 1])
        if cost > 0:
            heapq.heappush(heap, (-weights[i] * gain / E / cost, i, cost))

    for i in range(len(shapes)):
        offer(i)
    while heap:
        _, i, cost = heapq.heappop(heap)
        if cost > left:
            continue
        left -= cost
        if ranks[i] < caps[i]:
            ranks[i] += 1
        else:
            dense[i] = True
        offer(i)
    return [min(m, n) if dense[i] else ranks[i] for i, (m, n) in enumerate(shapes)]
