"""
Weight compression of a small convolutional network
===================================================

A four-layer CNN is trained for a few seconds on scikit-learn's bundled 8x8
handwritten digits (1400 training and 397 test images). Its two large
convolutions are then replaced by Tucker-2 factorizations (a 1x1
convolution into ``r_in`` channels, an ``r_out x r_in`` 3x3 core convolution
and a 1x1 convolution back out; Kim et al. 2016) with
:func:`tensorapprox.nn.compress_model`: first with ranks chosen
automatically by variational Bayesian matrix factorization (VBMF), then at
fixed fractions of the weights kept.

Left: weights per layer before and after the automatic compression (log
scale), annotated with the Tucker-2 ranks. Middle: test accuracy against the
fraction of the convolution weights kept. Right: the per-layer report --
shape, ranks, weights before and after, relative weight error and the test
accuracy when only that layer is compressed.

Needs the ``torch`` extra and scikit-learn. Run
``python plot_weight_compression.py [output folder]`` (or set
``TENSORAPPROX_FIGURES``).
"""

import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402

from tensorapprox.nn import compress_model  # noqa: E402

torch.set_num_threads(1)  # small tensors: one thread is fastest, and robust on a busy machine

# %%
# Data and a short training run (Adam, 8 epochs of mini-batches of 128).
X, y = load_digits(return_X_y=True)
order = np.random.default_rng(0).permutation(len(y))
X = torch.tensor(X[order] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
y = torch.tensor(y[order])
X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]

torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 4, 10))
opt = torch.optim.Adam(net.parameters(), lr=3e-3)
gen = torch.Generator().manual_seed(0)
t0 = time.perf_counter()
for epoch in range(8):
    perm = torch.randperm(len(y_train), generator=gen)
    for i in range(0, len(y_train), 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        nn.functional.cross_entropy(net(X_train[idx]), y_train[idx]).backward()
        opt.step()
net.eval()


def accuracy(model):
    with torch.no_grad():
        return float((model(X_test).argmax(1) == y_test).float().mean())


def n_weights(model):
    return sum(p.numel() for p in model.parameters())


acc0 = accuracy(net)
print(f"trained in {time.perf_counter() - t0:.1f} s: test accuracy {acc0:.4f}, {n_weights(net)} parameters")

# %%
# Tucker-2 with automatic (VBMF) ranks on the two large convolutions
# (modules "2" and "5" of the Sequential). The per-layer report prints as a
# table.
targets = ["2", "5"]
small, report = compress_model(net, "tucker2", None, include=targets, progress=False)
acc_auto = accuracy(small)
print(report)
print(f"test accuracy {acc0:.4f} -> {acc_auto:.4f}; whole model {n_weights(net)} -> {n_weights(small)} parameters")

# the accuracy when only one layer is compressed (same automatic ranks)
acc_single = {}
for name in targets:
    one, _ = compress_model(net, "tucker2", None, include=[name], progress=False)
    acc_single[name] = accuracy(one)

# %%
# Fixed budgets: fraction of the targeted convolution weights kept.
ratios = [0.03, 0.05, 0.1, 0.2, 0.3, 0.5]
kept, accs, ranks = [], [], []
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    for p in ratios:
        s, rep = compress_model(net, "tucker2", p, include=targets, progress=False)
        kept.append(rep.kept_ratio)
        accs.append(accuracy(s))
        ranks.append([r.rank for r in rep.layers])
        print(f"kept {rep.kept_ratio:.3f} of the conv weights (ranks {ranks[-1]}): accuracy {accs[-1]:.4f}")

fig, ax = plt.subplots(1, 3, figsize=(16, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.35]})

# per-layer weights before / after (all parametrized layers of the network)
names = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
before = [dict(net.named_modules())[n].weight.numel() for n in names]
by_name = {r.name: r for r in report.layers}
after = [by_name[n].params_after if n in by_name else b for n, b in zip(names, before)]
pos = np.arange(len(names))
ax[0].bar(pos - 0.2, before, 0.4, label="original")
ax[0].bar(pos + 0.2, after, 0.4, label="Tucker-2, VBMF ranks")
for i, n in enumerate(names):
    text = f"ranks {by_name[n].rank}" if n in by_name else "kept dense"
    ax[0].annotate(text, (pos[i] + 0.2, after[i]), textcoords="offset points", xytext=(0, 3), ha="center",
                   fontsize=7)
labels = [f"{n}: {type(dict(net.named_modules())[n]).__name__}" for n in names]
ax[0].set_xticks(pos, labels, fontsize=8)
ax[0].set_yscale("log")
ax[0].set_xlabel("layer (module name: type)")
ax[0].set_ylabel("weights (count, biases excluded)")
ax[0].set_title(f"weights per layer: {sum(before)} -> {sum(after)}")
ax[0].legend(loc="upper left", fontsize=8)

ax[1].semilogx(kept, accs, "o-", label="Tucker-2 at a fixed fraction")
ax[1].semilogx([report.kept_ratio], [acc_auto], "r*", ms=12, label="Tucker-2, VBMF ranks")
ax[1].axhline(acc0, color="k", ls="--", lw=1, label=f"original ({acc0:.3f})")
ax[1].set_xticks(ratios, [f"{p:g}" for p in ratios])
ax[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
ax[1].set_xlabel("fraction of convolution weights kept (dimensionless)")
ax[1].set_ylabel("test accuracy (fraction correct)")
ax[1].set_title("accuracy vs compression, 397 test images")
ax[1].grid(True, which="both", alpha=0.3)
ax[1].legend(loc="lower right", fontsize=8)

ax[2].set_axis_off()
cells = [[r.name, "x".join(map(str, r.shape)), str(r.rank), f"{r.params_before} -> {r.params_after}",
          f"{r.weight_error:.2f}", f"{acc_single[r.name]:.4f}"] for r in report.layers]
cells.append(["total", "", "", f"{report.params_before} -> {report.params_after}", "", f"{acc_auto:.4f}"])
table = ax[2].table(cellText=cells, colLabels=["layer", "shape", "ranks", "weights", "rel. weight\nerror",
                                               "test accuracy"],
                    loc="center", cellLoc="center")
table.auto_set_font_size(False)
table.set_fontsize(9)
table.auto_set_column_width(list(range(6)))
table.scale(1.0, 2.2)
ax[2].set_title(f"per-layer report, VBMF ranks\n(test accuracy {acc0:.4f} before, {acc_auto:.4f} after; "
                "last column: only that layer compressed)", fontsize=10)
fig.tight_layout()

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the example from its folder without __file__
    here = Path.cwd()
out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TENSORAPPROX_FIGURES", here))
out_dir.mkdir(parents=True, exist_ok=True)
path = out_dir / "plot_weight_compression.png"
fig.savefig(path, dpi=110)
print(f"saved {os.path.relpath(path)}")
