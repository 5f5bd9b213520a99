"""Torch adapter: factorized modules, whole-model compression, compact files.

Needs the ``torch`` extra (``pip install 'tensorapprox[torch]'``). The
factorizations themselves run in :mod:`tensorapprox.nn.factorize` on numpy
arrays in float64; the modules hold the factors in the layer's dtype.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import fnmatch
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .._array import optional_import
from .._validation import check_choice
from .allocation import _costs, _interpolative_pays, allocate_ranks
from .factorize import (
    interpolative_form,
    sparse_plus_lowrank,
    svd_factorize,
    tt_matrix,
    tucker2_conv,
    whitened_svd,
)

torch = optional_import("torch", "torch")
nn = torch.nn
F = torch.nn.functional

__all__ = [
    "LowRankLinear",
    "InterpolativeLinear",
    "SparseLowRankLinear",
    "TuckerConv2d",
    "TTLinear",
    "LayerReport",
    "CompressionReport",
    "compress_model",
    "save_compressed",
    "load_compressed",
]


# ---------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------

class LowRankLinear(nn.Module):
    """Linear layer ``y = second @ (first @ x) + bias`` of rank ``rank``.

    Parameters
    ----------
    in_features : int
        Size of each input sample.
    out_features : int
        Size of each output sample.
    rank : int
        Inner dimension of the factorization (``first`` has shape
        ``(rank, in_features)``, ``second`` ``(out_features, rank)``).
    bias : bool, default True
        Learn an additive bias of size ``out_features``.
    device : torch.device or str, optional
        Device of the parameters, as for ``torch.nn.Linear``.
    dtype : torch.dtype, optional
        Floating-point type of the parameters, as for ``torch.nn.Linear``.

    Raises
    ------
    TypeError, ValueError
        If a size cannot be converted with :class:`int`.
    RuntimeError
        If a size is negative (raised by torch when the parameters are
        allocated). The sizes are not otherwise validated: the layer is
        normally built by :func:`compress_model` or :func:`load_compressed`.

    Notes
    -----
    Stores ``rank * (in_features + out_features)`` weights instead of
    ``in_features * out_features``.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import LowRankLinear
    >>> layer = LowRankLinear(16, 8, rank=2)
    >>> layer(torch.ones(3, 16)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.in_features, self.out_features, self.rank = int(in_features), int(out_features), int(rank)
        self.first = nn.Parameter(torch.empty(self.rank, self.in_features, **kw))
        self.second = nn.Parameter(torch.empty(self.out_features, self.rank, **kw))
        self.bias = nn.Parameter(torch.zeros(self.out_features, **kw)) if bias else None
        nn.init.normal_(self.first, std=self.in_features ** -0.5)
        nn.init.normal_(self.second, std=self.rank ** -0.5)

    def forward(self, x):
        """Apply the layer: ``second @ (first @ x) + bias`` over the last axis.

        Parameters
        ----------
        x : torch.Tensor, shape (..., in_features)
            Input batch.

        Returns
        -------
        torch.Tensor, shape (..., out_features)
            Layer output.

        Raises
        ------
        RuntimeError
            If the last axis of ``x`` is not ``in_features`` or its dtype
            or device differs from the parameters' (raised by torch).

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import LowRankLinear
        >>> layer = LowRankLinear(16, 8, rank=2)
        >>> layer.forward(torch.ones(2, 5, 16)).shape
        torch.Size([2, 5, 8])
        """
        return F.linear(F.linear(x, self.first), self.second, self.bias)

    def dense_weight(self):
        """The equivalent dense weight ``second @ first``.

        Returns
        -------
        torch.Tensor, shape (out_features, in_features)
            Dense weight (attached to the autograd graph).

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import LowRankLinear
        >>> layer = LowRankLinear(16, 8, rank=2, bias=False)
        >>> W = layer.dense_weight()
        >>> W.shape, int(torch.linalg.matrix_rank(W.detach()))
        (torch.Size([8, 16]), 2)
        >>> x = torch.ones(3, 16)
        >>> bool(torch.allclose(layer(x), x @ W.T, atol=1e-6))
        True
        """
        return self.second @ self.first

    def config(self) -> dict:
        """Constructor arguments (without device and dtype), JSON-ready.

        Used by :func:`save_compressed` to record the structure of a model.

        Returns
        -------
        dict
            ``in_features``, ``out_features``, ``rank`` and ``bias``.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> from tensorapprox.nn import LowRankLinear
        >>> LowRankLinear(16, 8, rank=2).config()
        {'in_features': 16, 'out_features': 8, 'rank': 2, 'bias': True}
        """
        return {"in_features": self.in_features, "out_features": self.out_features, "rank": self.rank,
                "bias": self.bias is not None}

    def extra_repr(self) -> str:
        """Summary of the sizes shown by ``repr(layer)``.

        Returns
        -------
        str
            ``"in_features=..., out_features=..., rank=..., bias=..."``.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> from tensorapprox.nn import LowRankLinear
        >>> LowRankLinear(16, 8, rank=2)
        LowRankLinear(in_features=16, out_features=8, rank=2, bias=True)
        """
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, " \
               f"bias={self.bias is not None}"


class SparseLowRankLinear(LowRankLinear):
    """Low-rank linear layer plus a sparse residual stored in compressed rows.

    ``y = second @ (first @ x) + S @ x + bias`` with ``S`` given by
    ``crow_indices`` (``out_features + 1``), ``col_indices`` and ``values``
    (``nnz`` each).

    Parameters
    ----------
    in_features : int
        Size of each input sample.
    out_features : int
        Size of each output sample.
    rank : int
        Rank of the low-rank part.
    nnz : int
        Number of stored entries of the sparse residual ``S``. A new layer
        holds zero values in a placeholder layout; :func:`compress_model`
        and :func:`load_compressed` fill the real one.
    bias : bool, default True
        Learn an additive bias of size ``out_features``.
    device : torch.device or str, optional
        Device of the parameters and index buffers.
    dtype : torch.dtype, optional
        Floating-point type of the parameters.

    Raises
    ------
    TypeError, ValueError
        If a size cannot be converted with :class:`int`; ``ValueError``
        also if ``nnz`` exceeds ``out_features * in_features``.
    RuntimeError
        If a size is negative (raised by torch). The sizes are not
        otherwise validated.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import SparseLowRankLinear
    >>> layer = SparseLowRankLinear(16, 8, rank=2, nnz=5)
    >>> layer(torch.ones(3, 16)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_features: int, out_features: int, rank: int, nnz: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__(in_features, out_features, rank, bias, device, dtype)
        self.nnz = int(nnz)
        if self.nnz > self.out_features * self.in_features:
            raise ValueError(f"nnz = {self.nnz} exceeds the {self.out_features} x {self.in_features} = "
                             f"{self.out_features * self.in_features} entries of the residual")
        self.values = nn.Parameter(torch.zeros(self.nnz, device=device, dtype=dtype))
        # a valid placeholder layout (compress_model and load_compressed fill
        # the real one): the entries fill the rows in order, distinct sorted
        # columns in each, as load_compressed's checks ask (all nnz entries
        # in column 0 of the last row were refused there once saved)
        width = max(self.in_features, 1)
        crow = torch.clamp(torch.arange(self.out_features + 1, device=device) * width, max=self.nnz)
        self.register_buffer("crow_indices", crow.to(torch.int32))
        self.register_buffer("col_indices",
                             (torch.arange(self.nnz, device=device) % width).to(torch.int32))

    def sparse_weight(self):
        """The sparse residual ``S`` as a torch sparse CSR tensor.

        Returns
        -------
        torch.Tensor, shape (out_features, in_features)
            Sparse CSR tensor sharing the ``values`` parameter and the index
            buffers (its invariants are not checked here: the buffers come
            from :func:`compress_model`, or from a file that
            :func:`load_compressed` validated in full).

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import SparseLowRankLinear
        >>> S = SparseLowRankLinear(16, 8, rank=2, nnz=5).sparse_weight()
        >>> S.layout, S.shape
        (torch.sparse_csr, torch.Size([8, 16]))
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(self.crow_indices, self.col_indices, self.values,
                                           size=(self.out_features, self.in_features), check_invariants=False)

    def forward(self, x):
        """Apply the layer: ``second @ (first @ x) + S @ x + bias`` over the last axis.

        Parameters
        ----------
        x : torch.Tensor, shape (..., in_features)
            Input batch.

        Returns
        -------
        torch.Tensor, shape (..., out_features)
            Layer output.

        Raises
        ------
        RuntimeError
            If the last axis of ``x`` is not ``in_features`` or its dtype
            or device differs from the parameters' (raised by torch).

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import SparseLowRankLinear
        >>> layer = SparseLowRankLinear(16, 8, rank=2, nnz=5)
        >>> layer.forward(torch.ones(2, 5, 16)).shape
        torch.Size([2, 5, 8])
        """
        y = super().forward(x)
        if self.values.device.type == "meta":
            # torch has no sparse product on the meta device; shapes and
            # dtypes (all a meta tensor carries) are the low-rank part's
            return y
        flat = x.reshape(-1, self.in_features)
        if self.values.dtype in (torch.float16, torch.bfloat16):
            # torch has no sparse CSR product in half precision on the CPU:
            # the residual's product runs in float32 (values and input
            # converted, gradients flow back through the conversion)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                S = torch.sparse_csr_tensor(self.crow_indices, self.col_indices, self.values.to(torch.float32),
                                            size=(self.out_features, self.in_features), check_invariants=False)
            s = torch.sparse.mm(S, flat.T.to(torch.float32)).T.to(y.dtype)
        else:
            s = torch.sparse.mm(self.sparse_weight(), flat.T).T
        return y + s.reshape(y.shape)

    def dense_weight(self):
        """The equivalent dense weight ``second @ first + S``.

        Returns
        -------
        torch.Tensor, shape (out_features, in_features)
            Dense weight.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import SparseLowRankLinear
        >>> layer = SparseLowRankLinear(16, 8, rank=2, nnz=5, bias=False)
        >>> W = layer.dense_weight()
        >>> x = torch.ones(3, 16)
        >>> W.shape, bool(torch.allclose(layer(x), x @ W.T, atol=1e-6))
        (torch.Size([8, 16]), True)
        """
        return super().dense_weight() + self.sparse_weight().to_dense()

    def config(self) -> dict:
        """Constructor arguments (without device and dtype), JSON-ready.

        Returns
        -------
        dict
            ``in_features``, ``out_features``, ``rank``, ``bias`` and ``nnz``.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> from tensorapprox.nn import SparseLowRankLinear
        >>> SparseLowRankLinear(16, 8, rank=2, nnz=5).config()
        {'in_features': 16, 'out_features': 8, 'rank': 2, 'bias': True, 'nnz': 5}
        """
        return {**super().config(), "nnz": self.nnz}


class InterpolativeLinear(nn.Module):
    """Linear layer of rank ``rank`` in row-interpolative form.

    ``W = [skeleton; coef @ skeleton][order]``: the skeleton rows are kept,
    the others are combinations of them, and ``order`` puts the rows back in
    place. Stores ``rank * (in_features + out_features - rank)`` weights and
    ``out_features`` indices, fewer than the ``rank * (in_features +
    out_features)`` of :class:`LowRankLinear` at the same rank.

    The forward pass computes ``z = skeleton @ x``; for fewer input rows
    than ``rank`` it stacks ``z`` and ``coef @ z`` and gathers the outputs
    in ``order``, for more it forms ``second = [I; coef][order]``
    (``out_features x rank``) and multiplies, whichever costs less (a
    gather along the feature axis of many rows is slow in torch: 9.6 ms
    against 2.5 ms for 32 x 30 tokens through a 1536 x 384 layer of rank
    200, while forming ``second`` costs 0.15 ms, seven times a single
    row's product). Nothing is cached, so any change of the parameters (in
    place, through ``.data``, under ``torch.inference_mode``) shows in the
    next call, and training reaches ``coef``; a cached ``second`` had gone
    stale after a change through ``.data``.

    Parameters
    ----------
    in_features : int
        Size of each input sample.
    out_features : int
        Size of each output sample.
    rank : int
        Number of skeleton rows (``skeleton`` has shape
        ``(rank, in_features)``, ``coef`` ``(out_features - rank, rank)``).
    bias : bool, default True
        Learn an additive bias of size ``out_features``.
    device : torch.device or str, optional
        Device of the parameters and of the index buffer.
    dtype : torch.dtype, optional
        Floating-point type of the parameters.

    Raises
    ------
    TypeError, ValueError
        If a size cannot be converted with :class:`int`.
    RuntimeError
        If a size is negative or ``rank > out_features`` (raised by torch
        when the parameters are allocated). The sizes are not otherwise
        validated: the layer is normally built by :func:`compress_model` or
        :func:`load_compressed`.

    See Also
    --------
    tensorapprox.nn.interpolative_form : The factorization it holds.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import InterpolativeLinear
    >>> layer = InterpolativeLinear(16, 8, rank=2)
    >>> layer(torch.ones(3, 16)).shape
    torch.Size([3, 8])
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.in_features, self.out_features, self.rank = int(in_features), int(out_features), int(rank)
        self.skeleton = nn.Parameter(torch.empty(self.rank, self.in_features, **kw))
        self.coef = nn.Parameter(torch.empty(self.out_features - self.rank, self.rank, **kw))
        self.bias = nn.Parameter(torch.zeros(self.out_features, **kw)) if bias else None
        self.register_buffer("order", torch.arange(self.out_features, dtype=torch.int32, device=device))
        nn.init.normal_(self.skeleton, std=self.in_features ** -0.5)
        nn.init.normal_(self.coef, std=self.rank ** -0.5)

    def _second(self):
        """``[I; coef][order]`` (``out_features x rank``)."""
        eye = torch.eye(self.rank, dtype=self.coef.dtype, device=self.coef.device)
        return torch.cat([eye, self.coef], dim=0).index_select(0, self.order)

    def forward(self, x):
        """Apply the layer over the last axis.

        Parameters
        ----------
        x : torch.Tensor, shape (..., in_features)
            Input batch.

        Returns
        -------
        torch.Tensor, shape (..., out_features)
            Layer output.

        Raises
        ------
        RuntimeError
            If the last axis of ``x`` is not ``in_features`` or its dtype
            or device differs from the parameters' (raised by torch).

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import InterpolativeLinear
        >>> layer = InterpolativeLinear(16, 8, rank=2)
        >>> layer.forward(torch.ones(2, 5, 16)).shape
        torch.Size([2, 5, 8])
        """
        z = F.linear(x, self.skeleton)
        if z.numel() < self.rank * self.rank:  # fewer rows than rank: gather (see the class notes)
            y = torch.cat([z, F.linear(z, self.coef)], dim=-1).index_select(-1, self.order)
            return y if self.bias is None else y + self.bias
        return F.linear(z, self._second(), self.bias)

    def dense_weight(self):
        """The equivalent dense weight ``[skeleton; coef @ skeleton][order]``.

        Returns
        -------
        torch.Tensor, shape (out_features, in_features)
            Dense weight (attached to the autograd graph).

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import InterpolativeLinear
        >>> layer = InterpolativeLinear(16, 8, rank=2, bias=False)
        >>> W = layer.dense_weight()
        >>> x = torch.ones(3, 16)
        >>> W.shape, bool(torch.allclose(layer(x), x @ W.T, atol=1e-6))
        (torch.Size([8, 16]), True)
        """
        return self._second() @ self.skeleton

    # the same constructor arguments and summary as the two-factor layer
    config = LowRankLinear.config
    extra_repr = LowRankLinear.extra_repr


class TuckerConv2d(nn.Module):
    """Tucker-2 convolution: 1x1 to ``r_in``, k x k to ``r_out``, 1x1 to ``out_channels``.

    Stride, padding, dilation and padding mode act on the middle (core)
    convolution; the bias sits on the last one.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the output.
    kernel_size : int or tuple of int
        Size of the core (spatial) kernel, as for ``torch.nn.Conv2d``.
    ranks : sequence of two int
        ``(r_out, r_in)``: output and input channels of the core convolution.
    stride : int or tuple of int, default 1
        Stride of the core convolution.
    padding : int, tuple of int or str, default 0
        Padding of the core convolution (``'same'`` and ``'valid'`` allowed,
        as for ``torch.nn.Conv2d``).
    dilation : int or tuple of int, default 1
        Dilation of the core convolution.
    bias : bool, default True
        Learn a bias on the last (1x1) convolution.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, default 'zeros'
        Padding mode of the core convolution.
    device : torch.device or str, optional
        Device of the parameters.
    dtype : torch.dtype, optional
        Floating-point type of the parameters.

    Raises
    ------
    ValueError
        If ``ranks`` does not hold exactly two values, or a convolution
        argument is invalid (raised by ``torch.nn.Conv2d``).
    TypeError
        If a rank cannot be converted with :class:`int`.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import TuckerConv2d
    >>> conv = TuckerConv2d(8, 16, 3, ranks=(4, 2), padding=1)
    >>> conv(torch.ones(1, 8, 10, 10)).shape
    torch.Size([1, 16, 10, 10])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, ranks: Sequence[int],
                 stride=1, padding=0, dilation=1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        r_out, r_in = (int(r) for r in ranks)
        self.ranks = (r_out, r_in)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.first = nn.Conv2d(in_channels, r_in, 1, bias=False, **kw)
        self.core = nn.Conv2d(r_in, r_out, kernel_size, stride=stride, padding=padding, dilation=dilation,
                              bias=False, padding_mode=padding_mode, **kw)
        self.last = nn.Conv2d(r_out, out_channels, 1, bias=bias, **kw)

    def forward(self, x):
        """Apply the three convolutions (1x1, core, 1x1) in turn.

        Parameters
        ----------
        x : torch.Tensor, shape (batch, in_channels, height, width)
            Input images (an unbatched ``(in_channels, height, width)``
            input is accepted as by ``torch.nn.Conv2d``).

        Returns
        -------
        torch.Tensor, shape (batch, out_channels, height_out, width_out)
            Output feature maps.

        Raises
        ------
        RuntimeError
            If ``x`` has the wrong number of channels, dtype or device
            (raised by torch).

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import TuckerConv2d
        >>> conv = TuckerConv2d(8, 16, 3, ranks=(4, 2), stride=2)
        >>> conv.forward(torch.ones(1, 8, 11, 11)).shape
        torch.Size([1, 16, 5, 5])
        """
        return self.last(self.core(self.first(x)))

    def dense_weight(self):
        """The equivalent dense kernel ``(out, in, kh, kw)``.

        Returns
        -------
        torch.Tensor, shape (out_channels, in_channels, kh, kw)
            Kernel of the single convolution (with the core's stride,
            padding and dilation) equal to the factorized one.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from tensorapprox.nn import TuckerConv2d
        >>> conv = TuckerConv2d(8, 16, 3, ranks=(4, 2), padding=1, bias=False)
        >>> W = conv.dense_weight()
        >>> x = torch.ones(1, 8, 6, 6)
        >>> W.shape, bool(torch.allclose(conv(x), F.conv2d(x, W, padding=1), atol=1e-5))
        (torch.Size([16, 8, 3, 3]), True)
        """
        A = self.first.weight[:, :, 0, 0]       # r_in x c_in
        B = self.last.weight[:, :, 0, 0]        # c_out x r_out
        return torch.einsum("or,rsyx,si->oiyx", B, self.core.weight, A)

    def config(self) -> dict:
        """Constructor arguments (without device and dtype), JSON-ready.

        Returns
        -------
        dict
            ``in_channels``, ``out_channels``, ``kernel_size``, ``ranks``,
            ``stride``, ``padding``, ``dilation``, ``bias`` and
            ``padding_mode`` (tuples as lists).

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> from tensorapprox.nn import TuckerConv2d
        >>> cfg = TuckerConv2d(8, 16, 3, ranks=(4, 2), padding=1).config()
        >>> cfg["kernel_size"], cfg["ranks"], cfg["padding"]
        ([3, 3], [4, 2], [1, 1])
        """
        c = self.core
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(c.kernel_size), "ranks": list(self.ranks), "stride": list(c.stride),
                "padding": c.padding if isinstance(c.padding, str) else list(c.padding),
                "dilation": list(c.dilation), "bias": self.last.bias is not None,
                "padding_mode": c.padding_mode}


class TTLinear(nn.Module):
    """Linear layer whose weight is a tensor-train (MPO) matrix.

    Parameters
    ----------
    in_shape, out_shape : sequence of int
        Factorizations of ``in_features`` and ``out_features`` (same length).
    ranks : sequence of int
        Bond ranks, one fewer than the number of cores.
    bias : bool, default True
        Learn an additive bias of size ``prod(out_shape)``.
    device : torch.device or str, optional
        Device of the parameters.
    dtype : torch.dtype, optional
        Floating-point type of the parameters.

    Raises
    ------
    ValueError
        If ``in_shape`` and ``out_shape`` differ in length or ``ranks`` does
        not have one entry fewer.
    TypeError
        If a size cannot be converted with :class:`int`.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import TTLinear
    >>> layer = TTLinear((4, 4), (2, 4), ranks=(3,))
    >>> layer(torch.ones(5, 16)).shape
    torch.Size([5, 8])
    """

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], ranks: Sequence[int],
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.in_shape, self.out_shape = tuple(int(s) for s in in_shape), tuple(int(s) for s in out_shape)
        self.ranks = tuple(int(r) for r in ranks)
        if len(self.in_shape) != len(self.out_shape) or len(self.ranks) != len(self.in_shape) - 1:
            raise ValueError("TTLinear needs len(in_shape) == len(out_shape) == len(ranks) + 1")
        self.in_features, self.out_features = math.prod(self.in_shape), math.prod(self.out_shape)
        bonds = (1,) + self.ranks + (1,)
        self.cores = nn.ParameterList([
            nn.Parameter(torch.randn(bonds[k], self.out_shape[k], self.in_shape[k], bonds[k + 1], **kw)
                         / math.sqrt(bonds[k] * self.in_shape[k]))
            for k in range(len(self.in_shape))])
        self.bias = nn.Parameter(torch.zeros(self.out_features, **kw)) if bias else None

    def forward(self, x):
        """Apply the layer over the last axis without forming the dense weight.

        Parameters
        ----------
        x : torch.Tensor, shape (..., prod(in_shape))
            Input batch.

        Returns
        -------
        torch.Tensor, shape (..., prod(out_shape))
            Layer output.

        Raises
        ------
        RuntimeError
            If the last axis of ``x`` is not ``prod(in_shape)`` or its dtype
            or device differs from the cores' (raised by torch).

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import TTLinear
        >>> layer = TTLinear((4, 4), (2, 4), ranks=(3,))
        >>> layer.forward(torch.ones(2, 5, 16)).shape
        torch.Size([2, 5, 8])
        """
        lead = x.shape[:-1]
        t = x.reshape(-1, 1, self.in_shape[0], self.in_features // self.in_shape[0])
        P = t.shape[0]
        d = len(self.cores)
        for k, G in enumerate(self.cores):
            r0, m, n, r1 = G.shape
            rest = t.shape[3]
            t = t.reshape(P, r0 * n, rest).transpose(1, 2)
            t = t @ G.permute(0, 2, 1, 3).reshape(r0 * n, m * r1)
            t = t.reshape(P, rest, m, r1).permute(0, 2, 3, 1)
            P = P * m
            nxt = self.in_shape[k + 1] if k + 1 < d else 1
            t = t.reshape(P, r1, nxt, rest // nxt)
        y = t.reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias

    def dense_weight(self):
        """The equivalent dense weight, contracted directly from the cores.

        Returns
        -------
        torch.Tensor, shape (prod(out_shape), prod(in_shape))
            Dense weight in the cores' dtype (attached to the autograd
            graph).

        Notes
        -----
        Raises nothing of its own. The bias plays no part: the weight used
        to be ``forward(I) - bias``, which in half precision rounded the
        weight to the bias's scale (a relative error of 5e-2 in bfloat16
        with a bias of 8). The contraction runs in float32 for float16 and
        bfloat16 cores (in their own dtype otherwise) and is rounded once to
        the cores' dtype.

        Examples
        --------
        >>> import torch
        >>> from tensorapprox.nn import TTLinear
        >>> layer = TTLinear((4, 4), (2, 4), ranks=(3,), bias=False)
        >>> W = layer.dense_weight()
        >>> x = torch.ones(3, 16)
        >>> W.shape, bool(torch.allclose(layer(x), x @ W.T, atol=1e-5))
        (torch.Size([8, 16]), True)
        """
        dtype = self.cores[0].dtype
        work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        # W[(o_1..o_k), (i_1..i_k), bond]: out and in indices row-major, as forward reads them
        W = torch.ones(1, 1, 1, dtype=work, device=self.cores[0].device)
        for G in self.cores:
            r0, m, n, r1 = G.shape
            W = torch.einsum("abr,rmns->ambns", W, G.to(work)).reshape(W.shape[0] * m, W.shape[1] * n, r1)
        return W[:, :, 0].to(dtype)

    def config(self) -> dict:
        """Constructor arguments (without device and dtype), JSON-ready.

        Returns
        -------
        dict
            ``in_shape``, ``out_shape``, ``ranks`` (as lists) and ``bias``.

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> from tensorapprox.nn import TTLinear
        >>> TTLinear((4, 4), (2, 4), ranks=(3,)).config()
        {'in_shape': [4, 4], 'out_shape': [2, 4], 'ranks': [3], 'bias': True}
        """
        return {"in_shape": list(self.in_shape), "out_shape": list(self.out_shape), "ranks": list(self.ranks),
                "bias": self.bias is not None}


_MODULES = {c.__name__: c for c in (LowRankLinear, InterpolativeLinear, SparseLowRankLinear, TuckerConv2d,
                                          TTLinear)}


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerReport:
    """One row of a :class:`CompressionReport`.

    Built by :func:`compress_model`; the constructor stores its arguments as
    given. Every parameter is available as a read-only attribute of the
    same name.

    Parameters
    ----------
    name : str
        Qualified module name.
    shape : tuple of int
        Weight shape.
    rank : int or tuple or None
        Rank (ranks for Tucker-2 / TT); None when kept dense.
    params_before : int
        Weights stored before compression (biases excluded).
    params_after : int
        Weights stored after compression (biases excluded).
    weight_error : float
        ``||W - W_hat||_F / ||W||_F``.
    output_error : float or None
        Relative output error on the calibration data (None without it).
    status : str
        'compressed' or 'dense: <why>'.

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the row is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import compress_model
    >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64))
    >>> small, report = compress_model(net, "svd", 0.25, progress=False)
    >>> row = report.layers[0]
    >>> row.name, row.shape, row.rank, row.params_before, row.params_after, row.status
    ('0', (64, 64), 8, 4096, 1024, 'compressed')
    """

    name: str
    shape: tuple
    rank: Any
    params_before: int
    params_after: int
    weight_error: float
    output_error: float | None
    status: str


@dataclass(frozen=True)
class CompressionReport:
    """Per-layer table returned by :func:`compress_model`; prints as a table.

    Built by :func:`compress_model`; the constructor stores its arguments as
    given. Every parameter is available as a read-only attribute of the
    same name.

    Parameters
    ----------
    layers : tuple of LayerReport
        One row per targeted layer, in module order.
    method : str
        Factorization method used (see :func:`compress_model`).
    rank_allocation : str
        How ranks were allocated across layers.
    param_ratio : float or None
        Requested fraction of weights to keep (None when not given).
    factor_form : str, default 'product'
        How the two-factor layers are stored ('product' or
        'interpolative', see :func:`compress_model`).

    Raises
    ------
    dataclasses.FrozenInstanceError
        On assignment to an attribute (the report is immutable). The
        constructor itself validates nothing.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import compress_model
    >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64))
    >>> small, report = compress_model(net, "svd", 0.25, progress=False)
    >>> report.method, report.rank_allocation, report.param_ratio, len(report.layers)
    ('svd', 'uniform', 0.25, 1)
    >>> print(str(report).splitlines()[-1])
    total: 4096 -> 1024 weights (0.250 kept; method=svd, allocation=uniform)
    """

    layers: tuple
    method: str
    rank_allocation: str
    param_ratio: float | None
    factor_form: str = "product"

    @property
    def params_before(self) -> int:
        """Weights of the targeted layers before compression (biases excluded).

        Returns
        -------
        int
        """
        return sum(r.params_before for r in self.layers)

    @property
    def params_after(self) -> int:
        """Weights of the targeted layers after compression (biases excluded).

        The index arrays of the sparse and interpolative forms count as
        stored numbers too.

        Returns
        -------
        int
        """
        return sum(r.params_after for r in self.layers)

    @property
    def kept_ratio(self) -> float:
        """Fraction of the targeted weights kept.

        Returns
        -------
        float
        """
        return self.params_after / max(self.params_before, 1)

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready): totals and a list of per-layer dicts.

        Returns
        -------
        dict
            ``method``, ``rank_allocation``, ``param_ratio``, ``factor_form``,
            ``params_before``, ``params_after``, ``kept_ratio`` and
            ``layers`` (a list of dicts with the :class:`LayerReport` fields;
            tuples as lists).

        Notes
        -----
        Raises nothing of its own.

        Examples
        --------
        >>> import json, torch
        >>> from tensorapprox.nn import compress_model
        >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64))
        >>> small, report = compress_model(net, "svd", 0.25, progress=False)
        >>> d = report.to_dict()
        >>> d["params_before"], d["params_after"], d["kept_ratio"]
        (4096, 1024, 0.25)
        >>> d["layers"][0]["shape"], d["layers"][0]["rank"]
        ([64, 64], 8)
        >>> isinstance(json.dumps(d), str)
        True
        """
        return {"method": self.method, "rank_allocation": self.rank_allocation,
                "param_ratio": self.param_ratio, "factor_form": self.factor_form, "params_before": self.params_before,
                "params_after": self.params_after, "kept_ratio": self.kept_ratio,
                "layers": [dict(asdict(r), shape=list(r.shape),
                                rank=list(r.rank) if isinstance(r.rank, tuple) else r.rank)
                           for r in self.layers]}

    def __str__(self) -> str:
        head = ("layer", "shape", "rank", "params", "kept", "weight err", "output err", "status")
        rows = []
        for r in self.layers:
            rows.append((r.name, "x".join(str(s) for s in r.shape), "-" if r.rank is None else str(r.rank),
                         f"{r.params_before} -> {r.params_after}",
                         f"{r.params_after / max(r.params_before, 1):.2f}", f"{r.weight_error:.3e}",
                         "-" if r.output_error is None else f"{r.output_error:.3e}", r.status))
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
        fmt = "  ".join("{:<" + str(w) + "}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row) for row in rows]
        lines.append(f"total: {self.params_before} -> {self.params_after} weights "
                     f"({self.kept_ratio:.3f} kept; method={self.method}, allocation={self.rank_allocation}"
                     + ("" if self.factor_form == "product" else f", form={self.factor_form}") + ")")
        return "\n".join(lines)

    __repr__ = __str__


# ---------------------------------------------------------------------------
# calibration statistics
# ---------------------------------------------------------------------------

class _StopForward(Exception):
    pass


class _Runner:
    """Runs calibration data through a model; knows the current attention mask."""

    def __init__(self, calibration):
        self.mask = None
        if calibration is None:
            self.fn, self.batches = None, None
        elif callable(calibration) and not isinstance(calibration, (torch.Tensor, dict)):
            self.fn, self.batches = calibration, None
        else:
            if isinstance(calibration, dict) or hasattr(calibration, "keys"):
                # iterating a dict gave its key strings as "batches"
                raise TypeError("calibration must be an iterable of batches or a callable f(model), got a "
                                f"single {type(calibration).__name__} batch; wrap it in a list: "
                                "calibration=[batch]")
            try:
                self.batches = list(calibration)
            except TypeError:
                raise TypeError("calibration must be an iterable of input batches or a callable "
                                f"f(model), got {type(calibration).__name__}") from None
            if not self.batches:
                raise ValueError("calibration holds no batches; give at least one input batch")
            self.fn = None

    def run(self, model, stop_after=None):
        with torch.no_grad():
            if self.fn is not None:
                self.mask = None
                self.fn(model)
                return
            for batch in self.batches:
                self.mask = None
                if isinstance(batch, dict) or hasattr(batch, "keys"):
                    m = batch.get("attention_mask") if hasattr(batch, "get") else None
                    self.mask = None if m is None else m.bool()
                try:
                    if isinstance(batch, dict) or hasattr(batch, "keys"):
                        model(**batch)
                    elif isinstance(batch, (tuple, list)):
                        model(*batch)
                    else:
                        model(batch)
                except _StopForward:
                    pass
        self.mask = None


def _rows(runner, x, in_features):
    """The layer input as (tokens, features) float64 rows on its own device, padding dropped."""
    mask = runner.mask
    if mask is not None and x.dim() >= 2 and tuple(x.shape[:-1]) == tuple(mask.shape):
        x = x[mask.to(x.device)]
    return x.reshape(-1, in_features).to(torch.float64)


def _host(t):
    """A torch tensor as a numpy array: detached and moved to the CPU first.

    Calibration statistics are accumulated on the device of the layer
    inputs; ``Tensor.numpy()`` refuses a CUDA tensor (``TypeError: can't
    convert cuda:0 device type tensor to numpy``), so every conversion of
    the calibration path goes through here.
    """
    return t.detach().cpu().numpy()


class _GramCollector:
    """Forward pre-hooks accumulating the float64 input Gram of Linear layers."""

    def __init__(self, runner, named):
        self.runner = runner
        self.grams = {name: None for name, _ in named}
        self.counts = {name: 0 for name, _ in named}
        self.handles = [mod.register_forward_pre_hook(self._hook(name, mod.in_features)) for name, mod in named]

    def _hook(self, name, n):
        def hook(mod, args, kwargs=None):
            x = args[0] if args else None
            if x is None:
                return
            X = _rows(self.runner, x.detach(), n)
            G = X.T @ X
            self.grams[name] = G if self.grams[name] is None else self.grams[name] + G
            self.counts[name] += X.shape[0]
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def _check_grams(grams, counts):
    missing = [n for n, c in counts.items() if c == 0]
    if missing:
        raise ValueError(f"the calibration data never reached layer(s) {', '.join(missing)}; "
                         "check that the batches run through them or exclude them")
    for name, G in grams.items():
        if not bool(torch.isfinite(G).all()):
            raise ValueError(f"non-finite activations reach layer {name}; check the calibration inputs "
                             "(NaN/Inf) or exclude the layer")


# ---------------------------------------------------------------------------
# compress_model
# ---------------------------------------------------------------------------

_LINEAR_METHODS = ("whitened_svd", "svd", "asvd", "tt", "sparse_lowrank")
_METHODS = _LINEAR_METHODS + ("tucker2",)


def _aliases(model) -> dict:
    """``{id(module): [every name it has in model]}``: a module used in several places has several."""
    names = collections.defaultdict(list)
    for n, m in model.named_modules(remove_duplicate=False):
        names[id(m)].append(n)
    return names


def _inside_factorized(model) -> set:
    """Names (every alias) of the modules that are parts of a factorized module of this package.

    A :class:`TuckerConv2d` holds three ``nn.Conv2d`` parts; factorizing
    them again nested a ``TuckerConv2d`` inside a ``TuckerConv2d`` that no
    longer had the layout its ``dense_weight``, ``config`` and
    :func:`save_compressed` rely on.
    """
    factorized = tuple(_MODULES.values())
    inside = set()
    for name, mod in model.named_modules(remove_duplicate=False):
        if isinstance(mod, factorized):
            prefix = f"{name}." if name else ""
            inside.update(prefix + n for n, _ in mod.named_modules(remove_duplicate=False) if n)
    return inside


def _select(model, method, include, exclude):
    """The target layers ``[(name, module)]``, each module once (under its first name).

    A module used under several names is matched by any of them. Parts of
    an already factorized module (the convolutions of a
    :class:`TuckerConv2d`, ...) are never targets, under any of their names.
    """
    kind = nn.Conv2d if method == "tucker2" else nn.Linear
    aliases = _aliases(model)
    inside = _inside_factorized(model)
    candidates = [(n, m) for n, m in model.named_modules() if type(m) is kind]
    skipped = [n for n, m in candidates if any(a in inside for a in aliases[id(m)])]
    candidates = [(n, m) for n, m in candidates if not any(a in inside for a in aliases[id(m)])]
    kind_name = kind.__name__
    note = (f" ({len(skipped)} {kind_name} part(s) of already factorized modules, such as {skipped[0]}, are "
            "left alone)" if skipped else "")

    def matches(mod, pat):
        return any(fnmatch.fnmatchcase(a, pat) for a in aliases[id(mod)])

    def as_list(p, argname):
        if p is None:
            return None
        if isinstance(p, str):
            return [p]
        try:
            return list(p)
        except TypeError:
            raise TypeError(f"{argname} must be a name pattern or a list of patterns, got {type(p).__name__}") from None

    inc, exc = as_list(include, "include"), as_list(exclude, "exclude")
    if inc is not None:
        for pat in inc:
            if not any(matches(m, pat) for _, m in candidates):
                example = ", ".join(n for n, _ in candidates[:3]) or "none"
                raise ValueError(f"include pattern {pat!r} matches no {kind_name} layer "
                                 f"(names look like: {example}){note}")
        candidates = [(n, m) for n, m in candidates if any(matches(m, p) for p in inc)]
    if exc is not None:
        candidates = [(n, m) for n, m in candidates if not any(matches(m, p) for p in exc)]
    if not candidates:
        raise ValueError(f"no {kind_name} layer to compress with method {method!r}; "
                         f"check include/exclude{note}")
    return candidates


def _set_module(model, name, new):
    """Put ``new`` in place of the module called ``name``, and of every other name that module has."""
    old = model.get_submodule(name)
    for alias in _aliases(model)[id(old)]:
        parent_name, _, child = alias.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)


def _tied(model, targets) -> set:
    """Names of the targets whose weight another module holds too (tied weights)."""
    counts = collections.Counter(id(p) for m in model.modules() for p in m._parameters.values() if p is not None)
    return {n for n, m in targets if counts[id(m.weight)] > 1}


@contextlib.contextmanager
def _evaluating(model):
    """Run ``model`` in eval mode, then give every submodule its own training flag back.

    ``model.train(flag)`` afterwards set one flag on all of them: a Dropout
    or BatchNorm layer frozen in eval mode inside a training model came back
    training.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _carry_requires_grad(old, new):
    """Give the parameters of ``new`` the ``requires_grad`` of those of ``old``, which it replaces.

    A factorized layer replacing one of its own type takes each parameter's
    flag by name. One replacing a dense layer gives its bias (``bias``, or
    ``last.bias`` of a Tucker-2 split) the dense bias's flag and every
    factor the dense weight's: a frozen layer stays frozen, a frozen weight
    with a trained bias (BitFit) keeps training only the bias.
    """
    if type(old) is type(new):
        for n, p in new.named_parameters():
            p.requires_grad_(old.get_parameter(n).requires_grad)
        return
    w = old.weight.requires_grad
    b = old.bias.requires_grad if getattr(old, "bias", None) is not None else w
    for n, p in new.named_parameters():
        p.requires_grad_(b if n.rpartition(".")[2] == "bias" else w)


def _restore_training(model, flags: dict):
    """Set the training flags saved by name in ``flags``; a replaced module (and its parts) takes its predecessor's."""
    for name, m in model.named_modules():  # parents before children
        if name in flags:
            m.train(flags[name])


def _balanced_factors(n: int, d: int) -> tuple[int, ...]:
    """Split n into d factors as equal as possible (largest first)."""
    primes, k, m = [], 2, n
    while k * k <= m:
        while m % k == 0:
            primes.append(k)
            m //= k
        k += 1
    if m > 1:
        primes.append(m)
    out = [1] * d
    for p in sorted(primes, reverse=True):
        i = int(np.argmin(out))
        out[i] *= p
    return tuple(sorted(out, reverse=True))


def _tt_for_budget(W, budget):
    m, n = W.shape
    d = 3 if min(m, n) >= 64 else 2
    in_shape, out_shape = _balanced_factors(n, d), _balanced_factors(m, d)
    best = None
    lo, hi = 1, max(m, n)
    while lo <= hi:
        mid = (lo + hi) // 2
        T = tt_matrix(W, in_shape, out_shape, ranks=mid)
        if T.n_params <= budget:
            best, lo = T, mid + 1
        else:
            hi = mid - 1
    return best


def _tucker_ranks_for_budget(c_out, c_in, k2, budget):
    best = (1, 1)
    for s in np.linspace(1.0, 0.0, 201)[:-1]:
        r_out, r_in = max(1, round(s * c_out)), max(1, round(s * c_in))
        if c_in * r_in + r_in * r_out * k2 + r_out * c_out <= budget:
            best = (r_out, r_in)
            break
    return best


def _as_tensor(a):
    """A torch tensor holding a C-ordered, writable copy of the numpy array ``a``.

    (Factors of the library's results are read-only; torch warns on tensors
    over read-only numpy memory.)
    """
    return torch.from_numpy(np.array(a, order="C", copy=True))


def _rel(num, den):
    return float(math.sqrt(max(num, 0.0) / den)) if den > 0 else 0.0


def _output_error(W, What, G):
    """Relative output error ``||(W - What) X^T|| / ||W X^T||`` from the input Gram ``G = X^T X``."""
    D = W - What
    return _rel(float(np.sum((D @ G) * D)), float(np.sum((W @ G) * W)))


def compress_model(model, method: str = "whitened_svd", param_ratio: float | None = 0.5, calibration=None, *,
                   include=None, exclude=None, rank_allocation: str = "uniform", sequential: bool = False,
                   damping: float = 1e-2, density: float = 0.02, factor_form: str = "product",
                   progress: bool = True, inplace: bool = False):
    """Compress the Linear (or Conv2d) layers of a torch model; return it with a report.

    Parameters
    ----------
    model : torch.nn.Module
        Trained model; not modified unless ``inplace=True``.
    method : {'whitened_svd', 'svd', 'asvd', 'tucker2', 'tt', 'sparse_lowrank'}
        'whitened_svd' (SVD-LLM whitening, needs ``calibration``), 'svd'
        (data-free), 'asvd' (diagonal activation scaling, needs
        ``calibration``), 'sparse_lowrank' (whitened low rank plus a sparse
        residual), 'tt' (tensor-train matrices) act on ``nn.Linear`` layers;
        'tucker2' acts on ``nn.Conv2d`` layers.
    param_ratio : float in (0, 1], or None
        Fraction of the targeted layers' weights to keep. ``None`` is allowed
        only with 'tucker2' and means ranks chosen automatically by VBMF.
    calibration : iterable of batches or callable, optional
        Input batches (a tensor, a tuple of positional arguments, or a dict of
        keyword arguments; a dict's ``attention_mask`` excludes padding
        positions from the statistics), or ``f(model)`` that runs the model on
        calibration data. Batches are kept in a list (several passes are made).
    include, exclude : str or list of str, optional
        ``fnmatch`` patterns on module names (``'encoder.*'``).
    rank_allocation : {'uniform', 'global', 'sensitivity'}
        Same fraction per layer; a global budget spent where it removes the
        most summed relative (calibrated) layer error
        (:func:`tensorapprox.nn.allocate_ranks`); or that global budget with
        each layer's error weighted by how much it moves the model's output
        (measured on the calibration data: one probe pass per layer, see
        Notes). 'global' and 'sensitivity' are available for the two-factor
        methods; 'sensitivity' needs ``calibration``.
    sequential : bool, default False
        Calibrate each layer on the inputs of the already compressed model and
        refit it in closed form to reproduce the original layer's outputs
        (needs ``calibration``; for 'whitened_svd' and 'asvd').
    damping : float, default 1e-2
        Ridge of the whitening relative to the mean Gram diagonal.
    density : float, default 0.02
        Fraction of entries in the sparse residual ('sparse_lowrank').
    factor_form : {'product', 'interpolative'}, default 'product'
        How a rank-``r`` layer is stored, for 'whitened_svd', 'svd' and
        'asvd': two factors (:class:`LowRankLinear`, ``r (m + n)`` weights),
        or the same matrix in row-interpolative form
        (:class:`InterpolativeLinear`, ``r (m + n - r)`` weights and ``m``
        indices; see :func:`tensorapprox.nn.interpolative_form`) wherever
        that stores fewer numbers (``r^2 > m``; lower ranks keep the two
        factors). The parameter budget then buys higher ranks, and ranks
        far above the two-factor break-even rank still save parameters; at
        ``param_ratio = 0.9`` a 384 x 384 layer gets rank 260 instead of
        172.
    progress : bool, default True
        Print one line per layer.
    inplace : bool, default False
        Modify ``model`` itself instead of a deep copy (with
        ``sequential=True`` a copy of the original is still made for the
        paired passes, which need the original layers' inputs).

    Returns
    -------
    compressed_model : torch.nn.Module
        The model with the chosen layers replaced by factored ones (``model``
        itself with ``inplace=True``, a copy otherwise).
    report : CompressionReport
        One row per targeted layer (rank, parameter counts, weight and
        output errors) and the settings used.

    Raises
    ------
    ValueError
        For ``param_ratio`` outside (0, 1], include patterns that match
        nothing, calibration that never reaches a target layer, non-finite
        weights or activations or weights on the 'meta' device (the layer is
        named), a method that needs calibration without it, or a
        'sparse_lowrank' ``density`` that leaves no budget for the low-rank
        part.
    TypeError
        For a model that is not a ``torch.nn.Module``, or a single dict
        batch given as ``calibration`` (wrap it in a list).

    Warns
    -----
    UserWarning
        When a layer would not save parameters at its rank or TT ranks, a
        convolution's groups cannot be carried, or a layer's weight is tied
        to another module's (each stays dense).

    Notes
    -----
    Training flags are kept per module (a compressed layer takes its
    predecessor's), and so is ``requires_grad``: the factors of a layer
    take its weight's flag and its bias the bias's (a frozen layer stays
    frozen). If the call raises, ``model`` is left as it was, also with
    ``inplace=True``: every layer already replaced is put back and every
    training flag restored. Layers of factorized modules of this package
    (the ``Conv2d`` parts of a :class:`TuckerConv2d`, ...) are never
    targets: compressing an already compressed model leaves its
    factorized modules alone. With ``factor_form='interpolative'`` a
    rank-deficient layer (an all-zero, zero-initialised one included) is
    stored at its allocated rank like the two-factor form, and holds the
    same matrix (see :func:`tensorapprox.nn.interpolative_form`).

    A module used under several names is compressed once
    and the compressed module put at every name; a layer whose weight is
    tied to another module's stays dense, since compressing it would untie
    the weights and store more.

    The Gram ``X^T X`` of each target layer's inputs is accumulated in
    float64 by forward pre-hooks, on the device of the inputs (a GPU
    included), and moved to the CPU for the factorizations. 'svd' is LoRD-style one-shot SVD;
    'whitened_svd' is SVD-LLM (Wang et al. 2024); 'asvd' is ASVD (Yuan et al.
    2023); 'global' allocation follows WeLore (Jaiswal et al. 2024);
    'sparse_lowrank' the sparse-plus-low-rank model of LOST / SLTrain;
    'tucker2' Kim et al. (2016) with VBMF ranks; 'tt' the MPO layers of
    CompactifAI (Tomut et al. 2024). With ``sequential=True`` layer ``l``
    minimizes ``sum ||W x - W_hat x'||^2`` over the pairs of original inputs
    ``x`` and compressed-model inputs ``x'``: with ``G' = sum x' x'^T`` and
    ``C = sum x x'^T`` the ridge solution ``W (C + lam I)(G' + lam I)^{-1}``
    is truncated in the ``G'`` metric (the closed-form refit of SVD-LLM v2 and
    of the sequential calibration of GPTQ-style methods).

    ``rank_allocation='sensitivity'`` replaces each target layer in turn by
    its factorization at the uniform rank (the others dense), runs the
    calibration data and records the squared change of the model's output
    (its first floating-point tensor, padding positions dropped) relative to
    the original output, divided by the layer's own squared relative output
    error. These weights, one per layer, enter the global allocation: a
    layer whose errors the rest of the network amplifies gets a larger rank
    or stays dense, one whose errors are damped gives up more. It costs one
    pass over the calibration data per target layer (as ``sequential=True``
    does). In the spirit of sensitivity- and Fisher-weighted rank selection;
    the first-order model (output change proportional to the squared layer
    error) is what makes one probe per layer enough.

    Examples
    --------
    >>> import torch
    >>> from tensorapprox.nn import compress_model
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    >>> batches = [torch.randn(32, 64) for _ in range(4)]
    >>> small, report = compress_model(net, param_ratio=0.5, calibration=batches, progress=False)
    >>> report.params_after < report.params_before
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice(method, name="method", choices=_METHODS)
    check_choice(rank_allocation, name="rank_allocation", choices=("uniform", "global", "sensitivity"))
    if param_ratio is None:
        if method != "tucker2":
            raise ValueError(f"param_ratio=None (automatic ranks) works only with method='tucker2'; "
                             f"give a float in (0, 1] for method={method!r}")
    else:
        if isinstance(param_ratio, bool) or not isinstance(param_ratio, (int, float)):
            raise TypeError(f"param_ratio must be a float in (0, 1], got {type(param_ratio).__name__}")
        if not 0.0 < float(param_ratio) <= 1.0:
            raise ValueError(f"param_ratio must lie in (0, 1] (the fraction of weights kept), got {param_ratio}")
        param_ratio = float(param_ratio)
    if method in ("tt", "tucker2") and rank_allocation != "uniform":
        raise ValueError(f"rank_allocation={rank_allocation!r} is available for the two-factor methods, "
                         f"not {method!r}; use 'uniform'")
    if rank_allocation == "sensitivity" and calibration is None:
        raise ValueError("rank_allocation='sensitivity' measures the model on calibration data; pass "
                         "calibration=<batches or f(model)>")
    needs_data = method in ("whitened_svd", "asvd", "sparse_lowrank") or sequential
    if needs_data and calibration is None:
        raise ValueError(f"method={method!r}{' with sequential=True' if sequential else ''} needs calibration "
                         "data; pass calibration=<batches or f(model)> or use method='svd'")
    if sequential and method not in ("whitened_svd", "asvd"):
        raise ValueError("sequential=True works with method='whitened_svd' or 'asvd'")
    check_choice(factor_form, name="factor_form", choices=("product", "interpolative"))
    if factor_form == "interpolative" and method not in ("whitened_svd", "svd", "asvd"):
        raise ValueError(f"factor_form='interpolative' rewrites a two-factor split; it works with method="
                         f"'whitened_svd', 'svd' or 'asvd', not {method!r}")

    targets = _select(model, method, include, exclude)
    if any(name == "" for name, _ in targets):
        # it was "compressed" under the empty name beside its own dense weight
        raise ValueError(f"model is itself a single {type(model).__name__} layer; compress_model replaces "
                         "layers inside a model: pass torch.nn.Sequential(layer) and take [0] of the result")
    for name, mod in targets:
        if mod.weight.is_meta:
            raise ValueError(f"layer {name} has its weights on the 'meta' device (not loaded); load the "
                             "weights (e.g. model.to_empty(device=...) and a state_dict) first")
        if not bool(torch.isfinite(mod.weight).all()):
            raise ValueError(f"layer {name} has non-finite weights (NaN/Inf); fix or exclude it")
    runner = _Runner(calibration)
    say = print if progress else (lambda *a, **k: None)
    all_targets, dense = targets, {}
    for name in sorted(_tied(model, targets)):
        warnings.warn(f"the weight of layer {name} is tied to another module's; compressing it would untie "
                      "them and store more, so it stays dense", UserWarning, stacklevel=2)
        W = next(m for n, m in targets if n == name).weight.detach()
        dense[name] = _dense_row(name, W.shape, "dense: weight tied to another module", say,
                                 calibrated=calibration is not None and method != "tucker2")
    targets = [(n, m) for n, m in targets if n not in dense]
    # the paired passes of sequential=True need the original model beside the compressed one
    reference = copy.deepcopy(model) if inplace and sequential else model
    out_model = model if inplace else copy.deepcopy(model)
    flags = {name: m.training for name, m in out_model.named_modules()}
    swapped = []  # (name, the module it held): undone if anything fails

    def swap(name, new):
        swapped.append((name, out_model.get_submodule(name)))
        _set_module(out_model, name, new)

    def finish(rows):
        _restore_training(out_model, flags)
        rows = {**dense, **{r.name: r for r in rows}}
        return out_model, CompressionReport(tuple(rows[n] for n, _ in all_targets), method, rank_allocation,
                                            param_ratio, factor_form)

    out_model.eval()
    try:
        if not targets:
            return finish([])
        if method == "tucker2":
            return finish(_compress_convs(targets, param_ratio, say, swap))

        # Grams of the original model
        grams = None
        if calibration is not None:
            with _evaluating(model):
                col = _GramCollector(runner, [(n, model.get_submodule(n)) for n, _ in targets])
                try:
                    runner.run(model)
                finally:
                    col.remove()
            _check_grams(col.grams, col.counts)
            grams = {n: _host(G) for n, G in col.grams.items()}

        weights = {n: _host(m.weight.detach().to(torch.float64)) for n, m in targets}
        shapes = [weights[n].shape for n, _ in targets]

        # ranks
        ranks = None
        factors_at = _factor_source(method, weights, grams, damping, density)
        if method in ("whitened_svd", "svd", "asvd", "sparse_lowrank"):
            frac = param_ratio
            if method == "sparse_lowrank":
                # the residual's values and column indices and its m + 1 row
                # pointers, per layer; the largest share is set aside for every
                # layer, so that each (and the total) keeps within the budget
                frac = param_ratio - max(_sparse_overhead(m, n, density) / (m * n) for m, n in shapes)
                if not frac * min(m * n / (m + n) for m, n in shapes) >= 1.0:
                    raise ValueError(
                        f"density={density} leaves no room for a rank-1 part within param_ratio={param_ratio}: "
                        "the sparse residual's values, column indices and row pointers already take "
                        f"{param_ratio - frac:.3g} of the weights; lower density or raise param_ratio")
            spectra = []
            if rank_allocation in ("global", "sensitivity"):
                for n, _ in targets:
                    W = weights[n]
                    if method != "sparse_lowrank":
                        spectra.append(np.asarray(factors_at(n, 1).singular_values))
                    elif grams is None:
                        spectra.append(np.linalg.svd(W, compute_uv=False))
                    else:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", UserWarning)
                            f = whitened_svd(W, grams[n], rank=1, damping=damping)
                        spectra.append(f.singular_values)
            else:
                spectra = [np.zeros(0)] * len(targets)
            if rank_allocation == "sensitivity":
                probe = allocate_ranks(spectra, frac, "uniform", shapes=shapes, form=factor_form)
                sens = _sensitivities(model, out_model, runner, targets, weights, grams, probe, factors_at,
                                      factor_form, say)
                ranks = allocate_ranks(spectra, frac, "global", shapes=shapes, weights=sens, form=factor_form)
            else:
                ranks = allocate_ranks(spectra, frac, rank_allocation, shapes=shapes, form=factor_form)

        rows = []
        for i, (name, mod) in enumerate(targets):
            W = weights[name]
            m, n = W.shape
            before = m * n
            bias = mod.bias
            G = None if grams is None else grams[name]
            normW = float(np.linalg.norm(W))
            out_err = None
            if method == "tt":
                T = _tt_for_budget(W, param_ratio * before)
                if T is None or T.n_params >= before:
                    warnings.warn(f"no TT ranks of layer {name} ({m}x{n}) save parameters within param_ratio="
                                  f"{param_ratio}; the layer stays dense", UserWarning, stacklevel=2)
                    rows.append(_dense_row(name, W.shape, "dense: no TT ranks save parameters", say,
                                           calibrated=G is not None))
                    continue
                new = TTLinear(T.in_shape, T.out_shape, T.ranks, bias=bias is not None,
                               device=mod.weight.device, dtype=mod.weight.dtype)
                with torch.no_grad():
                    for p, c in zip(new.cores, T.cores):
                        p.copy_(_as_tensor(c))
                    if bias is not None:
                        new.bias.copy_(bias)
                What, rank, after = T.full(), T.ranks, T.n_params
            else:
                r = ranks[i]
                extra = _sparse_overhead(m, n, density) if method == "sparse_lowrank" else 0
                if not _saves(m, n, r, factor_form, extra):
                    msg = f"rank {r} of layer {name} ({m}x{n}) would not save parameters; the layer stays dense"
                    warnings.warn(msg, UserWarning, stacklevel=2)
                    rows.append(_dense_row(name, W.shape, "dense: no saving at this rank", say,
                                           calibrated=G is not None))
                    continue
                if sequential:
                    f, out_err = _sequential_factors(reference, out_model, runner, name, W, r, damping,
                                                     "asvd" if method == "asvd" else "cholesky")
                else:
                    f = factors_at(name, r, last=True)
                if method == "sparse_lowrank":
                    order = np.lexsort((np.asarray(f.cols), np.asarray(f.rows)))
                    rws, cls, vals = (np.asarray(a)[order] for a in (f.rows, f.cols, f.values))
                    new = SparseLowRankLinear(n, m, r, nnz=len(vals), bias=bias is not None,
                                              device=mod.weight.device, dtype=mod.weight.dtype)
                    crow = np.zeros(m + 1, dtype=np.int64)
                    np.add.at(crow, rws + 1, 1)
                    with torch.no_grad():
                        new.crow_indices.copy_(torch.as_tensor(np.cumsum(crow), dtype=torch.int32))
                        new.col_indices.copy_(torch.as_tensor(cls, dtype=torch.int32))
                        new.values.copy_(torch.as_tensor(vals))
                elif factor_form == "interpolative" and _interpolative_pays(m, n, r):
                    f = interpolative_form(f)
                    new = InterpolativeLinear(n, m, r, bias=bias is not None, device=mod.weight.device,
                                              dtype=mod.weight.dtype)
                    with torch.no_grad():
                        new.skeleton.copy_(_as_tensor(f.skeleton))
                        new.coef.copy_(_as_tensor(f.coef))
                        new.order.copy_(torch.as_tensor(f.order, dtype=torch.int32))
                else:
                    new = LowRankLinear(n, m, r, bias=bias is not None, device=mod.weight.device,
                                        dtype=mod.weight.dtype)
                with torch.no_grad():
                    if isinstance(new, LowRankLinear):
                        new.first.copy_(_as_tensor(f.right))
                        new.second.copy_(_as_tensor(f.left))
                    if bias is not None:
                        new.bias.copy_(bias)
                What, rank, after = f.full(), r, f.n_params
            if out_err is None and G is not None:
                out_err = _output_error(W, What, G)
            row = LayerReport(name, (m, n), rank, before, int(after),
                              float(np.linalg.norm(W - What) / max(normW, 1e-300)), out_err, "compressed")
            rows.append(row)
            _carry_requires_grad(mod, new)
            swap(name, new)
            say(f"[compress_model] {name}: {m}x{n} rank {rank}, {before} -> {after} weights, "
                f"weight err {row.weight_error:.3e}" + ("" if out_err is None else f", output err {out_err:.3e}"))
        return finish(rows)
    except BaseException:
        # the model as it was: every replaced module put back, every training flag restored
        for name, old in reversed(swapped):
            _set_module(out_model, name, old)
        _restore_training(out_model, flags)
        raise


def _factorize(method, W, G, r, damping, density):
    """The one-shot factorization of ``W`` at rank ``r`` for a two-factor method.

    The callers decide whether a rank saves parameters (in the layer's storage
    form), so the factorizations' own two-factor break-even warning is muted.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"rank \d+ does not save parameters", category=UserWarning)
        if method == "svd":
            return svd_factorize(W, rank=r)
        if method in ("whitened_svd", "asvd"):
            return whitened_svd(W, G, rank=r, damping=damping, scaling="asvd" if method == "asvd" else "cholesky")
        return sparse_plus_lowrank(W, rank=r, density=density, gram=G, damping=damping)


def _factor_source(method, weights, grams, damping, density):
    """``at(name, r, last=False)``: the one-shot split of layer ``name`` at rank ``r``.

    The SVD-based methods factor each layer once, at full rank, and truncate
    that split for every rank asked of the layer (the spectrum, the
    sensitivity probe, the final rank); their components come in decreasing
    order, so the truncation is exactly the split at that rank.
    ``last=True`` drops the layer's stored split; a layer asked only once
    (``last=True`` first, as with the uniform allocation) is factored at
    its rank directly. 'sparse_lowrank' depends on the rank throughout and
    is factored anew each time.
    """
    cache = {}

    def at(name, r, last=False):
        if name in cache:
            return (cache.pop(name) if last else cache[name]).truncate(r)
        W = weights[name]
        G = None if grams is None else grams[name]
        if method == "sparse_lowrank" or last:
            return _factorize(method, W, G, r, damping, density)
        cache[name] = _factorize(method, W, G, min(W.shape), damping, density)
        return cache[name].truncate(r)

    return at


def _first_float_tensor(out):
    """The first floating-point tensor in a model output (tensor, sequence or mapping)."""
    if isinstance(out, torch.Tensor):
        return out if out.is_floating_point() else None
    items = out.values() if hasattr(out, "values") else out if isinstance(out, (tuple, list)) else ()
    for item in items:
        t = _first_float_tensor(item)
        if t is not None:
            return t
    return None


def _model_outputs(runner, model):
    """The model's output on every calibration batch (first float tensor, padding dropped)."""
    outs = []

    def hook(mod, args, out):
        t = _first_float_tensor(out)
        if t is None:
            raise ValueError("rank_allocation='sensitivity' needs a model whose output holds a floating-point "
                             f"tensor; got {type(out).__name__}")
        t = t.detach()
        mask = runner.mask
        if mask is not None and t.dim() >= 2 and tuple(t.shape[:2]) == tuple(mask.shape):
            t = t[mask.to(t.device)]
        outs.append(t.reshape(-1).to(torch.float64))

    h = model.register_forward_hook(hook)
    try:
        runner.run(model)
    finally:
        h.remove()
    return outs


def _saves(m, n, r, form, extra=0):
    """Whether rank ``r`` in ``form`` (plus ``extra`` numbers) stores fewer numbers than the dense ``m x n`` weight."""
    return r < min(m, n) and int(_costs(m, n, form)[r - 1]) + extra < m * n


def _sparse_overhead(m, n, density) -> int:
    """Numbers the sparse residual of an ``m x n`` layer stores: values, column indices, ``m + 1`` row pointers."""
    return 2 * max(1, int(round(density * m * n))) + m + 1


def _sensitivities(model, out_model, runner, targets, weights, grams, probe, factors_at, form, say):
    """Per layer: relative change of the model output per unit squared relative layer-output error.

    Each layer in turn is replaced by its factorization at its ``probe`` rank
    (the others left dense); the model runs on the calibration data and the
    squared change of its output, relative to the original output, is divided
    by the layer's own squared relative output error (weight error without
    calibration Grams). The original weight is put back after each probe.
    """
    with _evaluating(model):
        ref = _model_outputs(runner, model)
    den = sum(float(torch.sum(o * o)) for o in ref)
    if not den > 0.0:
        raise ValueError("the model's output on the calibration data is zero; rank_allocation='sensitivity' "
                         "has nothing to compare")
    sens = []
    for (name, _), r in zip(targets, probe):
        W = weights[name]
        m, n = W.shape
        lin = out_model.get_submodule(name)
        while r > 1 and not _saves(m, n, r, form):  # the uniform rank saves nothing: probe at the break-even rank
            r -= 1
        G = None if grams is None else grams[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            What = np.asarray(factors_at(name, r).full())
        if G is not None:
            err2 = _output_error(W, What, G) ** 2
        else:
            D = W - What
            err2 = float(np.sum(D * D)) / max(float(np.sum(W * W)), 1e-300)
        original = lin.weight.detach().clone()
        try:
            with torch.no_grad():
                lin.weight.copy_(torch.as_tensor(What, dtype=lin.weight.dtype, device=lin.weight.device))
            outs = _model_outputs(runner, out_model)
        finally:
            with torch.no_grad():
                lin.weight.copy_(original)
        change = sum(float(torch.sum((a - b) ** 2)) for a, b in zip(outs, ref)) / den
        sens.append(change / err2 if err2 > 0.0 else 0.0)
        say(f"[compress_model] sensitivity of {name}: output change {change:.3e} at rank {r} "
            f"(layer output error {math.sqrt(err2):.3e})")
    return sens


def _dense_row(name, shape, status, say, *, calibrated):
    """The report row of a layer kept dense: no error, and an output error only where it is measured."""
    shape = tuple(int(s) for s in shape)
    size = math.prod(shape)
    say(f"[compress_model] {name}: {'x'.join(map(str, shape))} kept dense ({status})")
    return LayerReport(name, shape, None, size, size, 0.0, 0.0 if calibrated else None, status)


def _sequential_factors(model, out_model, runner, name, W, r, damping, scaling):
    """Pair the original and the compressed-model inputs of one layer; refit."""
    n = W.shape[1]
    xs = {"orig": [], "comp": []}

    stop = runner.fn is None  # a user callable cannot be cut short per batch

    def grab(key):
        def hook(mod, args):
            xs[key].append(_rows(runner, args[0].detach(), n))
            if stop:
                raise _StopForward
        return hook

    with _evaluating(model):
        h = model.get_submodule(name).register_forward_pre_hook(grab("orig"))
        try:
            runner.run(model)
        finally:
            h.remove()
    h = out_model.get_submodule(name).register_forward_pre_hook(grab("comp"))
    try:
        runner.run(out_model)
    finally:
        h.remove()
    if not xs["orig"]:
        raise ValueError(f"the calibration data never reached layer {name}; check the batches or exclude it")
    if len(xs["orig"]) != len(xs["comp"]):
        raise ValueError(f"layer {name} saw {len(xs['orig'])} calls in the original model but "
                         f"{len(xs['comp'])} in the compressed one; sequential calibration needs matching passes")
    G = np.zeros((n, n))
    Gp = np.zeros((n, n))
    C = np.zeros((n, n))
    for a, b in zip(xs["orig"], xs["comp"]):
        if a.shape != b.shape:
            raise ValueError(f"layer {name}: original and compressed inputs differ in shape; "
                             "sequential calibration needs deterministic passes")
        G += _host(a.T @ a)
        Gp += _host(b.T @ b)
        C += _host(a.T @ b)
    for M in (G, Gp, C):
        if not np.isfinite(M).all():
            raise ValueError(f"non-finite activations reach layer {name}; check the calibration inputs")
    lam = damping * float(np.trace(Gp)) / n
    # ridge toward W: argmin sum ||W x - B x'||^2 + lam ||B - W||^2
    B = np.linalg.solve(Gp + lam * np.eye(n), (W @ (C + lam * np.eye(n))).T).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        f = whitened_svd(B, Gp, rank=r, damping=damping, scaling=scaling)
    What = f.full()
    num = float(np.sum((W @ G) * W) - 2 * np.sum((W @ C) * What) + np.sum((What @ Gp) * What))
    return f, _rel(num, float(np.sum((W @ G) * W)))


def _compress_convs(targets, param_ratio, say, swap):
    """Tucker-2 split of each target convolution; ``swap(name, new)`` puts the new module in place."""
    rows = []
    for name, mod in targets:
        K = _host(mod.weight.detach().to(torch.float64))
        c_out, c_in, kh, kw = K.shape
        before = K.size
        if not bool(np.isfinite(K).all()):
            raise ValueError(f"layer {name} has non-finite weights (NaN/Inf); fix or exclude it")
        if mod.groups != 1:
            warnings.warn(f"layer {name} has groups={mod.groups}, which a Tucker-2 split cannot carry; "
                          "it stays dense", UserWarning, stacklevel=3)
            rows.append(LayerReport(name, K.shape, None, before, before, 0.0, None,
                                    f"dense: groups={mod.groups} not supported"))
            say(f"[compress_model] {name}: kept dense (groups={mod.groups})")
            continue
        if param_ratio is None:
            f = tucker2_conv(K, ranks="auto")
        else:
            f = tucker2_conv(K, ranks=_tucker_ranks_for_budget(c_out, c_in, kh * kw, param_ratio * before))
        if f.n_params >= before:
            warnings.warn(f"the Tucker-2 ranks {f.ranks} of layer {name} would not save parameters; "
                          "it stays dense", UserWarning, stacklevel=3)
            rows.append(LayerReport(name, K.shape, None, before, before, 0.0, None, "dense: no saving"))
            continue
        new = TuckerConv2d(c_in, c_out, (kh, kw), f.ranks, stride=mod.stride, padding=mod.padding,
                           dilation=mod.dilation, bias=mod.bias is not None, padding_mode=mod.padding_mode,
                           device=mod.weight.device, dtype=mod.weight.dtype)
        with torch.no_grad():
            new.first.weight.copy_(_as_tensor(f.first)[:, :, None, None])
            new.core.weight.copy_(_as_tensor(f.core))
            new.last.weight.copy_(_as_tensor(f.last)[:, :, None, None])
            if mod.bias is not None:
                new.last.bias.copy_(mod.bias)
        err = float(np.linalg.norm(K - f.full()) / max(np.linalg.norm(K), 1e-300))
        rows.append(LayerReport(name, K.shape, f.ranks, before, f.n_params, err, None, "compressed"))
        _carry_requires_grad(mod, new)
        swap(name, new)
        say(f"[compress_model] {name}: {K.shape} ranks {f.ranks}, {before} -> {f.n_params} weights, "
            f"weight err {err:.3e}")
    return rows


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------

def _structure(model) -> dict:
    return {name: {"type": type(mod).__name__, "config": mod.config()}
            for name, mod in model.named_modules() if type(mod) in _MODULES.values()}


def _file_path(path, argname: str = "path") -> str:
    """``path`` as a str (``str``, ``bytes`` or ``os.PathLike``); ``TypeError`` naming ``argname`` otherwise.

    ``str(path)`` wrote files called ``None`` or ``<_io.BytesIO ...>``.
    """
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"{argname} must be a file path (str or os.PathLike), got {type(path).__name__}") from None


def _read_compressed(path: str):
    """``(state, structure)`` from a file of :func:`save_compressed`; ``ValueError`` for any other file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if path.endswith(".safetensors"):
        st = optional_import("safetensors.torch", "torch")
        from safetensors import safe_open

        try:
            with safe_open(path, framework="pt") as fh:
                meta = (fh.metadata() or {}).get("tensorapprox_structure")
            state = st.load_file(path)
        except Exception as exc:  # safetensors' own errors for a corrupt header or body
            raise ValueError(f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    else:
        try:
            blob = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # truncated, not a torch file, or objects weights_only refuses
            raise ValueError(f"{path} is not a file written by save_compressed: torch.load (weights only) "
                             f"failed with {type(exc).__name__}") from None
        if not (isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict)):
            raise ValueError(f"{path} holds no compressed model (a plain state dict, tensor or other object); "
                             "write it with save_compressed")
        state, meta = blob["state_dict"], blob.get("tensorapprox_structure")
    if meta is None:
        raise ValueError(f"{path} holds no compressed-model structure; write it with save_compressed")
    try:
        structure = json.loads(meta) if isinstance(meta, str) else None
    except ValueError:
        structure = None
    ok = isinstance(structure, dict) and all(
        isinstance(spec, dict) and isinstance(spec.get("type"), str) and isinstance(spec.get("config"), dict)
        for spec in structure.values())
    if not ok or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds a corrupt compressed-model structure; write it again with save_compressed")
    return state, structure


_INT32_MAX = 2 ** 31 - 1  # the index buffers are int32
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_config(path, name, cls, config):
    """``ValueError`` unless ``config`` is a valid set of constructor arguments of ``cls``.

    Everything is checked on the JSON values themselves, before any module
    is built: the keys, the types (ints, not bools or floats), signs and
    ranges (ranks and sizes at least 1, ``rank <= out_features``, ``nnz``
    within the matrix and int32), list lengths. A negative size reached
    torch as a ``RuntimeError``; a rank of 0 divided by zero.
    """
    def bad(what):
        return ValueError(f"{path} holds a corrupt configuration for layer {name} ({cls.__name__}): {what}")

    def pos(key, minimum=1):
        v = config[key]
        if not _is_int(v) or v < minimum:
            raise bad(f"{key} must be an int >= {minimum}, got {v!r}")
        return v

    def ints(key, length=None, minimum=1):
        v = config[key]
        ok = isinstance(v, list) and all(_is_int(x) and x >= minimum for x in v)
        ok = ok and (len(v) == length if length is not None else len(v) > 0)
        if not ok:
            size = "a non-empty list of" if length is None else f"a list of {length}"
            raise bad(f"{key} must be {size} ints >= {minimum}, got {v!r}")
        return v

    if cls is TuckerConv2d:
        keys = {"in_channels", "out_channels", "kernel_size", "ranks", "stride", "padding", "dilation", "bias",
                "padding_mode"}
    elif cls is TTLinear:
        keys = {"in_shape", "out_shape", "ranks", "bias"}
    else:
        keys = {"in_features", "out_features", "rank", "bias"} | ({"nnz"} if cls is SparseLowRankLinear else set())
    if set(config) != keys:
        raise bad(f"its keys {sorted(config)} are not {sorted(keys)}")
    if not isinstance(config["bias"], bool):
        raise bad(f"bias must be true or false, got {config['bias']!r}")
    if cls is TuckerConv2d:
        pos("in_channels")
        pos("out_channels")
        for key in ("kernel_size", "ranks", "stride", "dilation"):
            ints(key, 2)
        pad = config["padding"]
        if not isinstance(pad, str):
            ints("padding", 2, minimum=0)
        elif pad not in ("same", "valid"):
            raise bad(f"padding must be 'same', 'valid' or two ints, got {pad!r}")
        if config["padding_mode"] not in _PADDING_MODES:
            raise bad(f"padding_mode must be one of {_PADDING_MODES}, got {config['padding_mode']!r}")
    elif cls is TTLinear:
        d = len(ints("in_shape"))
        ints("out_shape", d)
        ints("ranks", d - 1)
    else:
        m, n, r = pos("out_features"), pos("in_features"), pos("rank")
        if cls is InterpolativeLinear and r > m:
            raise bad(f"rank {r} exceeds out_features {m} (the skeleton holds rank of the output rows)")
        if cls is SparseLowRankLinear:
            nnz = pos("nnz", minimum=0)
            if nnz > m * n or nnz > _INT32_MAX or n > _INT32_MAX:
                raise bad(f"nnz {nnz} does not fit a {m} x {n} matrix with int32 indices")


def _check_entries(path, name, prefix, cls, config, skeleton, state):
    """``ValueError`` unless the file's entries of the layer at ``prefix`` fit ``skeleton`` and are valid.

    Every entry must be present with the shape and kind (floating-point
    weights, integer indices) of the layer the configuration describes
    (``skeleton``, built on the meta device). The index buffers are checked
    in full, as their readers do not check them: the CSR row pointers of
    :class:`SparseLowRankLinear` (start at 0, never decrease, end at
    ``nnz``) and its column indices (within ``[0, in_features)``, increasing
    within each row), which ``torch.sparse.mm`` trusts (out-of-bounds reads:
    NaN, garbage or a segfault); the ``order`` of :class:`InterpolativeLinear`
    (a permutation of the output rows).
    """
    def entry(key):
        return f"{prefix}.{key}" if prefix else key

    def bad(key, what):
        return ValueError(f"entry {entry(key)!r} of {path} (layer {name}, {cls.__name__}) {what}")

    for key, want in skeleton.state_dict().items():
        t = state.get(entry(key))
        if t is None:
            raise bad(key, "is missing")
        if tuple(t.shape) != tuple(want.shape):
            raise bad(key, f"has shape {tuple(t.shape)}, but the layer's configuration gives {tuple(want.shape)}")
        if want.is_floating_point() and not t.is_floating_point():
            raise bad(key, f"holds {t.dtype} values, not floating-point weights")
        if not want.is_floating_point() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
            raise bad(key, f"holds {t.dtype} values, not integer indices")
    if cls is SparseLowRankLinear:
        m, n, nnz = config["out_features"], config["in_features"], config["nnz"]
        crow = state[entry("crow_indices")].to(torch.int64)
        col = state[entry("col_indices")].to(torch.int64)
        if int(crow[0]) != 0:
            raise bad("crow_indices", f"must start at 0 (CSR row pointers), got {int(crow[0])}")
        steps = crow[1:] - crow[:-1]
        if bool((steps < 0).any()):
            i = int(torch.nonzero(steps < 0)[0, 0])
            raise bad("crow_indices", f"decreases at row {i} ({int(crow[i])} -> {int(crow[i + 1])}); "
                                      "CSR row pointers never decrease")
        if int(crow[-1]) != nnz:
            raise bad("crow_indices", f"must end at nnz = {nnz}, got {int(crow[-1])}")
        if nnz:
            lo, hi = int(col.min()), int(col.max())
            if lo < 0 or hi >= n:
                raise bad("col_indices", f"holds column {lo if lo < 0 else hi}, outside [0, {n}) "
                                         "(in_features)")
            row = torch.repeat_interleave(torch.arange(m), steps)
            same_row = row[1:] == row[:-1]
            if bool((same_row & (col[1:] <= col[:-1])).any()):
                i = int(row[1:][same_row & (col[1:] <= col[:-1])][0])
                raise bad("col_indices", f"are not increasing within row {i} (CSR columns are sorted and "
                                         "distinct in each row)")
    elif cls is InterpolativeLinear:
        order = state[entry("order")].to(torch.int64)
        m = config["out_features"]
        if not torch.equal(torch.sort(order).values, torch.arange(m)):
            raise bad("order", f"is not a permutation of the {m} output rows (range(out_features))")


def _meta_tensors(model):
    """Names of the parameters and buffers of ``model`` on the meta device (every name of each)."""
    return [n for n, t in list(model.named_parameters(remove_duplicate=False))
            + list(model.named_buffers(remove_duplicate=False)) if t.is_meta]


def _materialize(model) -> list:
    """Replace each meta parameter and buffer of ``model`` by an uninitialized CPU tensor of its dtype.

    A tensor held by several modules (tied weights) is replaced by one new
    tensor; parameters keep ``requires_grad``. Returns ``[(table, key,
    old)]``, what :func:`_unmaterialize` puts back.
    """
    done, memo = [], {}
    for mod in model.modules():
        for table in (mod._parameters, mod._buffers):
            for key, t in list(table.items()):
                if t is None or not t.is_meta:
                    continue
                if id(t) not in memo:
                    e = torch.empty_like(t, device="cpu")
                    memo[id(t)] = nn.Parameter(e, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else e
                done.append((table, key, t))
                table[key] = memo[id(t)]
    return done


def _tensor_named(model, name):
    """The parameter or buffer called ``name`` in ``model``."""
    owner, _, key = name.rpartition(".")
    mod = model.get_submodule(owner) if owner else model
    return mod._parameters[key] if key in mod._parameters else mod._buffers[key]


def _unmaterialize(done):
    for table, key, t in reversed(done):
        table[key] = t


def _check_replaceable(name, old, cls, config):
    """``ValueError`` unless ``old`` is the dense layer (or the same factored layer) the file's ``name`` replaces."""
    if type(old) is cls:
        if old.config() != config:
            raise ValueError(f"layer {name} is a {cls.__name__} with another configuration than the file's")
        return
    if cls is TuckerConv2d:
        want = (config["in_channels"], config["out_channels"], tuple(config["kernel_size"]))
        have = ((old.in_channels, old.out_channels, tuple(old.kernel_size)) if type(old) is nn.Conv2d else None)
        kind = "Conv2d(in_channels, out_channels, kernel_size)"
    else:
        new = cls(**config, device="meta")
        want = (new.in_features, new.out_features)
        have = (old.in_features, old.out_features) if type(old) is nn.Linear else None
        kind = "Linear(in_features, out_features)"
    if have != want:
        found = type(old).__name__ if have is None else f"{type(old).__name__}{have}"
        raise ValueError(f"layer {name} of model is {found}, but the file holds the compressed form of a "
                         f"{kind} = {want}; pass a dense instance of the architecture that was saved")


def save_compressed(model, path) -> None:
    """Save a compressed model: its state dict (factors, not dense weights) and structure.

    A ``.safetensors`` path (needs the ``safetensors`` package) stores the
    structure in the header metadata; any other suffix uses ``torch.save`` of
    a dict of tensors and a JSON string (read back with
    ``weights_only=True``). No pickled objects are written.

    Parameters
    ----------
    model : torch.nn.Module
        A model returned by :func:`compress_model`.
    path : str or os.PathLike
        Destination file; a ``.safetensors`` suffix selects that format.

    Raises
    ------
    TypeError
        If ``path`` is not a file path.
    ImportError
        If ``path`` ends in ``.safetensors`` and the ``safetensors``
        package is not installed.
    OSError
        If the file cannot be written.

    See Also
    --------
    load_compressed : Read the file back.

    Examples
    --------
    >>> import torch, tempfile, os
    >>> from tensorapprox.nn import compress_model, save_compressed, load_compressed
    >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64))
    >>> small, _ = compress_model(net, 'svd', 0.25, progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), 'net.safetensors')
    >>> save_compressed(small, path)
    >>> again = load_compressed(path, torch.nn.Sequential(torch.nn.Linear(64, 64)))
    >>> x = torch.ones(2, 64)
    >>> bool(torch.equal(again(x), small(x)))
    True
    """
    path = _file_path(path)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = json.dumps(_structure(model))
    if path.endswith(".safetensors"):
        st = optional_import("safetensors.torch", "torch")
        st.save_file(state, path, metadata={"tensorapprox_structure": meta})
    else:
        torch.save({"state_dict": state, "tensorapprox_structure": meta}, path)


def load_compressed(path, model):
    """Rebuild a compressed model from :func:`save_compressed`'s file.

    Parameters
    ----------
    path : str or os.PathLike
        File written by :func:`save_compressed` (``.safetensors`` or a
        ``torch.save`` file).
    model : torch.nn.Module
        A dense instance of the same architecture (its weights are replaced);
        it is modified in place and returned.

    Returns
    -------
    torch.nn.Module
        ``model`` with its factorized modules rebuilt and all weights loaded
        (each rebuilt layer in its predecessor's training mode).

    Raises
    ------
    TypeError
        If ``path`` is not a file path.
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not one of :func:`save_compressed` (another torch
        file, a plain state dict, a truncated or corrupt file), names an
        unknown module type, holds an invalid configuration for a
        factorized layer (wrong keys or types, sizes or ranks below 1, a
        rank or ``nnz`` that does not fit the layer), or entries of a
        factorized layer that do not fit its configuration (missing, other
        shape, integer weights or floating-point indices) or are not valid
        (CSR row pointers that do not start at 0, decrease or do not end at
        ``nnz``; column indices outside ``[0, in_features)`` or not
        increasing within a row; an ``order`` that is not a permutation);
        the message names the entry (the factorized layers ``model``
        already holds, listed in the file or not, are checked alike). Also
        if a layer of ``model`` is not the dense layer (type and shape) the
        file compressed, ``model`` holds tensors on the 'meta' device that
        the file does not fill (non-persistent buffers), or the file holds
        a factorized layer saved on its own (at the root: save it inside a
        container instead).
    ImportError
        If ``path`` ends in ``.safetensors`` and the ``safetensors``
        package is not installed.
    AttributeError
        If ``model`` lacks a layer named in the file (raised by
        ``torch.nn.Module.get_submodule``).
    RuntimeError
        If the stored weights do not match the rebuilt model outside the
        factorized layers: missing or unexpected entries, or other shapes.

    See Also
    --------
    save_compressed : Write the file.

    Notes
    -----
    Everything is checked before ``model`` changes: on any error it is left
    as it was. Every index buffer is validated before any module is built,
    so a crafted or corrupt file cannot make the layers read out of bounds.

    Each rebuilt layer takes its predecessor's training mode and
    ``requires_grad`` (the factors the dense weight's, the bias the
    bias's; by name when it replaces a layer of its own type).

    A ``model`` laid out on the 'meta' device (built under
    ``torch.device("meta")``, which allocates nothing) is materialized:
    the factorized layers are built on the meta device, so the dense
    weights the file replaces are never allocated, and then every meta
    parameter and buffer becomes a CPU tensor of its dtype holding the
    file's values (move the model afterwards with ``.to(...)``).

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from tensorapprox.nn import compress_model, save_compressed, load_compressed
    >>> def make():
    ...     return torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(),
    ...                                torch.nn.Linear(32, 8))
    >>> small, _ = compress_model(make(), "svd", 0.5, progress=False)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "net.pt")
    ...     save_compressed(small, path)
    ...     again = load_compressed(path, make())
    >>> type(again[0]).__name__
    'LowRankLinear'
    >>> x = torch.ones(2, 32)
    >>> bool(torch.equal(again(x), small(x)))
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    path = _file_path(path)
    state, structure = _read_compressed(path)
    if "" in structure:
        # the model itself would be the factorized layer: it cannot replace
        # itself in place (the rollback of a failed try left the model as its
        # own child, and state_dict() recursed without end)
        raise ValueError(f"{path} holds a factorized layer at the root (a {structure['']['type']} saved on its "
                         "own); load_compressed replaces layers inside model: save the layer inside a "
                         "container (e.g. torch.nn.Sequential) and load it into the same container")
    aliases = _aliases(model)
    plan = []
    for name, spec in structure.items():
        cls = _MODULES.get(spec["type"])
        if cls is None:
            raise ValueError(f"unknown module type {spec['type']!r} for layer {name} in {path}")
        config = spec["config"]
        _check_config(path, name, cls, config)
        old = model.get_submodule(name)
        _check_replaceable(name, old, cls, config)
        try:
            skeleton = cls(**config, device="meta")  # shapes and dtypes only: allocates nothing
        except (TypeError, ValueError, RuntimeError) as exc:  # e.g. padding='same' with a stride
            raise ValueError(f"{path} holds a corrupt configuration for layer {name} ({type(exc).__name__}: "
                             f"{exc})") from None
        for alias in aliases[id(old)]:  # a module used under several names is stored under each
            _check_entries(path, name, alias, cls, config, skeleton, state)
        ref = next(iter(old.parameters()), None)
        kw = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
        new = cls(**config, **kw)  # on the meta device for a meta model: materialized below
        new.train(old.training)
        _carry_requires_grad(old, new)
        plan.append((name, old, new))
    # the factorized layers model already holds, outside the file's structure,
    # take their index buffers from the file too: checked the same way (a file
    # with an empty structure loaded out-of-range columns into an existing
    # SparseLowRankLinear, and its next forward pass segfaulted)
    replaced = {a for _, old, _ in plan for a in aliases[id(old)]}
    for name, mod in model.named_modules(remove_duplicate=False):
        if type(mod) not in _MODULES.values() or any(name == r or name.startswith(r + ".") for r in replaced):
            continue
        if not all((f"{name}.{k}" if name else k) in state for k in mod.state_dict()):
            continue  # the strict load below names what is missing
        config = mod.config()
        _check_entries(path, name, name, type(mod), config, type(mod)(**config, device="meta"), state)
    done, materialized = [], []
    try:
        for name, old, new in plan:
            _set_module(model, name, new)
            done.append((name, old))
        expected = model.state_dict(keep_vars=True)
        missing = sorted(expected.keys() - state.keys())
        unexpected = sorted(state.keys() - expected.keys())
        shapes = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
        if missing or unexpected or shapes:
            raise RuntimeError(f"the weights in {path} do not fit the rebuilt model: "
                               f"missing {missing[:3]}, unexpected {unexpected[:3]}, other shapes {shapes[:3]}")
        meta = _meta_tensors(model)
        if meta:
            filled = {id(t) for t in expected.values()}
            unfilled = [n for n in meta if id(_tensor_named(model, n)) not in filled]
            if unfilled:
                raise ValueError(f"model holds tensors on the 'meta' device that {path} does not fill: "
                                 f"{unfilled[:3]} (non-persistent buffers); materialize them first "
                                 "(model.to_empty(device=...) and initialize them)")
            materialized = _materialize(model)
        model.load_state_dict(state, strict=True)
    except BaseException:
        _unmaterialize(materialized)  # the model as it was
        for name, old in reversed(done):
            _set_module(model, name, old)
        raise
    return model
