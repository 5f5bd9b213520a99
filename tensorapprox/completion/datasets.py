"""Readers for public ratings data sets, from a path the user supplies.

Nothing is downloaded and no data ships with the package (the MovieLens
licence forbids redistribution).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .observations import Observations, check_observations

__all__ = ["load_movielens"]


def load_movielens(path: str | os.PathLike, *, duplicates: str = "error") -> Observations:
    """Read MovieLens-100K ratings (``u.data``) as 0-based observations.

    Parameters
    ----------
    path : str or path-like
        The tab-separated ``u.data`` file (``user item rating timestamp``,
        1-based ids), e.g. from https://grouplens.org/datasets/movielens/100k/.
    duplicates : {'error', 'mean'}, default 'error'
        A (user, item) pair rated twice: an error, or the mean of its
        ratings (see :func:`~tensorapprox.completion.check_observations`);
        ML-100K has none.

    Returns
    -------
    Observations
        ``rows`` = user - 1, ``cols`` = item - 1, ``values`` = rating (float64),
        ``shape`` = (max user id, max item id) -- (943, 1682) for ML-100K.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not in the ``u.data`` format, holds no rating, or
        rates a (user, item) pair twice with ``duplicates='error'``.

    Examples
    --------
    >>> import os, tempfile
    >>> from tensorapprox.completion import load_movielens
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "u.data")
    ...     with open(p, "w") as f:
    ...         _ = f.write("1\\t2\\t5\\t881250949\\n2\\t1\\t3\\t891717742\\n")
    ...     obs = load_movielens(p)
    >>> obs.shape, obs.values.tolist()
    ((2, 2), [5.0, 3.0])
    """
    path = os.fsdecode(path)  # a bytes path reached loadtxt, which failed on it
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MovieLens ratings file {path!r} not found; pass the path of u.data")
    if duplicates not in ("error", "mean"):
        raise ValueError(f"duplicates must be 'error' or 'mean', got {duplicates!r}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path!r} is empty; a MovieLens u.data file holds one rating per line")
    try:
        with warnings.catch_warnings():  # "input contained no data": raised below as a ValueError
            warnings.filterwarnings("ignore", message=".*input contained no data")
            data = np.loadtxt(path, dtype=np.int64, delimiter="\t", ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path!r} is not a MovieLens u.data file (tab-separated integers): {exc}") from None
    if data.shape[0] == 0:
        raise ValueError(f"{path!r} holds no rating; a MovieLens u.data file holds one rating per line")
    if data.shape[1] != 4:
        raise ValueError(
            f"{path!r} is not a MovieLens u.data file: expected 4 tab-separated columns "
            f"(user, item, rating, timestamp), got {data.shape[1]}"
        )
    users, items = data[:, 0] - 1, data[:, 1] - 1
    if users.min() < 0 or items.min() < 0:
        raise ValueError(f"{path!r} holds ids below 1; MovieLens ids are 1-based")
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    return check_observations(users, items, data[:, 2].astype(np.float64), shape, duplicates=duplicates)
