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

from .._validation import check_int, check_positive_float, read_npz

__all__ = ["FunBaTSplit", "load_funbat_split"]


@dataclass(frozen=True)
class FunBaTSplit:
    """One train/test split of a FunBaT data file.

    Returned by :func:`load_funbat_split`; the constructor stores its
    arguments as given. Every parameter is available as a read-only
    attribute of the same name.

    Parameters
    ----------
    X_train : ndarray, shape (n_train, K)
        Continuous coordinates of the training entries.
    y_train : ndarray, shape (n_train,)
        Training targets.
    X_test : ndarray, shape (n_test, K)
        Continuous coordinates of the test entries.
    y_test : ndarray, shape (n_test,)
        Test targets.
    ndims : ndarray, shape (K,)
        Number of bins per mode of the discrete version.
    ind_train : ndarray, shape (n_train, K)
        Discrete bin ids of the training entries.
    ind_test : ndarray, shape (n_test, K)
        Discrete bin ids of the test entries.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the split is immutable). The
        constructor itself validates nothing.

    See Also
    --------
    load_funbat_split : Read a split from a file.

    Examples
    --------
    >>> import numpy as np
    >>> from tensorapprox.bayes.datasets import FunBaTSplit
    >>> ind = np.array([[0, 1], [1, 0]])
    >>> split = FunBaTSplit(X_train=(ind + 0.5) / 2, y_train=np.array([1.0, 2.0]),
    ...                     X_test=np.array([[0.25, 0.25]]), y_test=np.array([0.5]),
    ...                     ndims=np.array([2, 2]), ind_train=ind,
    ...                     ind_test=np.array([[0, 0]]))
    >>> split.X_train.shape, split.y_test.shape
    ((2, 2), (1,))
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
        Coordinates (float64), targets (float64) and bin ids of the fold.

    Raises
    ------
    TypeError
        ``fold`` is not an int or ``scale`` is not a real number.
    ValueError
        ``fold`` is negative or out of range, ``scale`` is not positive, the
        file is not a readable ``.npz`` archive (a text, ``.npy`` or pickled
        file, a folder, a corrupt archive; pickled data is never loaded),
        it has no index arrays for the fold, or its arrays do not fit
        together (``ndims`` not positive integers; bin ids not integers of
        shape ``(n, len(ndims))`` in ``[0, ndims)``; coordinates of another
        shape; targets not one per index row). The message names the key.
    KeyError
        The file lacks ``n_folds``, ``ndims`` or the target arrays of the
        fold (the message names the key).
    FileNotFoundError
        There is no file at ``path``.

    Notes
    -----
    The file must hold ``n_folds``, ``ndims``, ``tr_y_<f>``, ``te_y_<f>``
    and either ``tr_ind_CONTI_<f>``, ``te_ind_CONTI_<f>``,
    ``tr_ind_DISCT_<f>``, ``te_ind_DISCT_<f>`` (continuous coordinates
    and bin ids) or ``tr_ind_<f>``, ``te_ind_<f>`` (bin ids only).

    Examples
    --------
    Write a tiny file with bin ids only and read it back; the coordinates
    are the bin centres ``(i + 0.5) * scale / ndims``:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from tensorapprox.bayes.datasets import load_funbat_split
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "tiny.npz")
    ...     np.savez(path, n_folds=1, ndims=np.array([2, 4]),
    ...              tr_ind_0=np.array([[0, 1], [1, 3], [1, 0]]),
    ...              te_ind_0=np.array([[0, 2]]),
    ...              tr_y_0=np.array([1.0, 2.0, 3.0]), te_y_0=np.array([4.0]))
    ...     split = load_funbat_split(path, 0, scale=10.0)
    >>> split.X_train.shape, split.y_train.shape
    ((3, 2), (3,))
    >>> split.X_test
    array([[2.5 , 6.25]])
    """
    fold = check_int(fold, name="fold", minimum=0)
    scale = check_positive_float(scale, name="scale")
    # read_npz: a text, .npy or pickled file got numpy's advice to load it
    # unsafely, a plain .npy a TypeError about context managers. Only this
    # fold's members are decompressed
    keys = ["n_folds", "ndims"] + [f"{p}_{fold}" for p in ("tr_ind_CONTI", "te_ind_CONTI", "tr_ind_DISCT",
                                                             "te_ind_DISCT", "tr_ind", "te_ind", "tr_y", "te_y")]
    arrays = read_npz(path, "FunBaT split", keys)
    name = repr(os.fspath(path))

    def get(key):
        if key not in arrays:
            raise KeyError(f"{name} lacks {key!r}; a FunBaT split file holds n_folds, ndims and per fold "
                           "tr_y_<f>, te_y_<f> and the index arrays (see load_funbat_split)")
        return arrays[key]

    n_folds = int(get("n_folds"))
    if fold >= n_folds:
        raise ValueError(f"fold must be < n_folds = {n_folds}, got {fold}")
    ndims = np.asarray(get("ndims"))
    if ndims.ndim != 1 or ndims.dtype.kind not in "iu" or ndims.size == 0 or np.any(ndims < 1):
        raise ValueError(f"{name}: 'ndims' must be a 1-D array of positive integers (bins per mode), got {ndims!r}")
    ndims = ndims.astype(np.int64)
    if f"tr_ind_CONTI_{fold}" in arrays:
        kind = "_DISCT"
    elif f"tr_ind_{fold}" in arrays:
        kind = ""
    else:
        raise ValueError(f"{name} has no index arrays for fold {fold}")
    parts = {}
    for side in ("tr", "te"):
        key = f"{side}_ind{kind}_{fold}"
        ind = _checked_bins(name, key, get(key), ndims)
        # without continuous coordinates, the bin centres (of checked bin ids)
        X = get(f"{side}_ind_CONTI_{fold}") if kind else (ind + 0.5) * scale / ndims
        parts[side] = _checked_part(name, fold, side, kind, X, ind, get(f"{side}_y_{fold}"))
    return FunBaTSplit(*parts["tr"][:2], *parts["te"][:2], ndims, parts["tr"][2], parts["te"][2])


# A malformed file was returned as it was (bin ids outside [0, ndims) became
# coordinates outside the box, targets of another length than the index rows
# passed) or failed in numpy's broadcasting, naming no key.
def _checked_bins(name, key, ind, ndims) -> np.ndarray:
    """The bin ids ``ind`` of array ``key``: integers of shape ``(n, len(ndims))`` in ``[0, ndims)``."""
    ind = np.asarray(ind)
    K = ndims.shape[0]
    if ind.ndim != 2 or ind.shape[1] != K or ind.dtype.kind not in "iu":
        raise ValueError(f"{name}: {key!r} must hold integer bin ids of shape (n, {K}), one column per entry "
                         f"of ndims; got dtype {ind.dtype} and shape {ind.shape}")
    if ind.size and (ind.min() < 0 or np.any(ind >= ndims)):
        raise ValueError(f"{name}: {key!r} holds bin ids outside [0, ndims) with ndims = {ndims.tolist()}")
    return ind


def _checked_part(name, fold, side, kind, X, ind, y):
    """``(X, y, ind)`` of one side (``'tr'`` or ``'te'``) of a fold: coordinates and targets checked against ``ind``."""
    X = np.asarray(X)
    y = np.asarray(y)
    if kind and (X.shape != ind.shape or X.dtype.kind not in "iuf"):
        raise ValueError(f"{name}: '{side}_ind_CONTI_{fold}' must hold real coordinates of shape {ind.shape}, "
                         f"like the bin ids; got dtype {X.dtype} and shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != ind.shape[0] or y.dtype.kind not in "iuf":
        raise ValueError(f"{name}: '{side}_y_{fold}' must hold {ind.shape[0]} real targets, one per row of "
                         f"'{side}_ind{kind}_{fold}'; got dtype {y.dtype} and shape {y.shape}")
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64), ind
