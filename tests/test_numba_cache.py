"""Numba's on-disk cache serves a second process: nothing is compiled again.

A kernel that calls jitted helpers held as closure variables (defined inside
an enclosing function) gets a cache key that changes from process to
process: Numba then recompiles it in every process and adds one more cache
file each time. The completion solvers had that defect (seconds of
compilation per solver and process); this test runs the kernels in two
fresh processes sharing an empty cache folder and requires the second to
write no cache file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = r"""
import numpy as np
import tensorapprox as ta
from tensorapprox.completion import EntrySampling

rng = np.random.default_rng(0)
X = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 30))
r, c = np.nonzero(rng.random(X.shape) < 0.5)
for solver in ("exact", "cg", "sketch"):
    ta.altmin_complete(r, c, X[r, c], X.shape, 3, solver=solver, random_state=0, max_iter=3)
T = ta.st_hosvd(rng.standard_normal((20, 20, 20)), rank=3)
T.entries(np.array([[1, 2, 3]]))
U = rng.standard_normal((10, 2))
rr, cc = np.nonzero(rng.random((10, 10)) < 0.6)
op = EntrySampling(rr, cc, (10, 10))
ta.subgradient_recover(op, op.apply(U @ U.T), 2, random_state=2, max_iter=20)
"""


def _cache_files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*.nbc")}


def test_second_process_compiles_nothing(tmp_path):
    cache = tmp_path / "numba-cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), TENSORAPPROX_DISABLE_NUMBA="0")
    subprocess.run([sys.executable, "-c", _SCRIPT], env=env, check=True, timeout=900)
    first = _cache_files(cache)
    assert any("exact_nb" in name for name in first)
    assert any("iterative_nb" in name for name in first)
    subprocess.run([sys.executable, "-c", _SCRIPT], env=env, check=True, timeout=900)
    assert _cache_files(cache) == first
