"""Loaders for the FunBaT benchmark files (plain ``.npz``, no pickle).

Each file holds ``n_folds`` random 80/20 splits. Files with continuous
coordinates store them under ``tr_ind_CONTI_<f>`` / ``te_ind_CONTI_<f>``;
files with only discrete bin ids (``tr_ind_<f>``) are mapped to the bin
centres ``(i + 0.5) * scale / ndims[k]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .._validation import check_int, check_positive_float

__all__ = ["FunBaTSplit", "load_funbat_split"]


@dataclass(frozen=True)
class FunBaTSplit:
    """One train/test split of a FunBaT data file.

    Attributes
    ----------
    X_train, X_test : ndarray, shape (n, K)
        Continuous coordinates.
    y_train, y_test : ndarray, shape (n,)
        Targets.
    ndims : ndarray, shape (K,)
        Number of bins per mode of the discrete version.
    ind_train, ind_test : ndarray, shape (n, K)
        Discrete bin ids.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    ndims: np.ndarray
    ind_train: np.ndarray
    ind_test: np.ndarray


def load_funbat_split(path: str | os.PathLike, fold: int = 0, *, scale: float = 1.0) -> FunBaTSplit:
    """Load fold ``fold`` of a FunBaT ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.
    fold : int, default 0
        Split index in ``[0, n_folds)``.
    scale : float, default 1.0
        Length of the coordinate range used for bin centres when the file
        has no continuous coordinates (10 for the Beijing files, 1 for
        US-TEMP).

    Returns
    -------
    FunBaTSplit

    Raises
    ------
    ValueError
        ``fold`` out of range or the file lacks the expected keys.

    Examples
    --------
    >>> from tensorapprox.bayes.datasets import load_funbat_split
    >>> split = load_funbat_split("beijing_PM2.5_DISCT_428x501x1461_no_agg.npz", 0, scale=10.0)  # doctest: +SKIP
    """
    fold = check_int(fold, name="fold", minimum=0)
    scale = check_positive_float(scale, name="scale")
    with np.load(path, allow_pickle=False) as d:
        n_folds = int(d["n_folds"])
        if fold >= n_folds:
            raise ValueError(f"fold must be < n_folds = {n_folds}, got {fold}")
        ndims = np.asarray(d["ndims"], dtype=np.int64)
        if f"tr_ind_CONTI_{fold}" in d.files:
            Xtr, Xte = d[f"tr_ind_CONTI_{fold}"], d[f"te_ind_CONTI_{fold}"]
            itr, ite = d[f"tr_ind_DISCT_{fold}"], d[f"te_ind_DISCT_{fold}"]
        elif f"tr_ind_{fold}" in d.files:
            itr, ite = d[f"tr_ind_{fold}"], d[f"te_ind_{fold}"]
            Xtr = (itr + 0.5) * scale / ndims
            Xte = (ite + 0.5) * scale / ndims
        else:
            raise ValueError(f"{os.fspath(path)!r} has no index arrays for fold {fold}")
        return FunBaTSplit(
            np.asarray(Xtr, dtype=np.float64), np.asarray(d[f"tr_y_{fold}"], dtype=np.float64),
            np.asarray(Xte, dtype=np.float64), np.asarray(d[f"te_y_{fold}"], dtype=np.float64),
            ndims, np.asarray(itr), np.asarray(ite),
        )
