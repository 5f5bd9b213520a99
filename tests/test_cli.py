"""The command line: demo, tucker, info."""

import numpy as np

import tensorapprox as ta
from tensorapprox.cli import main


def test_tucker_and_info_roundtrip(tmp_path, capsys):
    x = np.linspace(0, 1, 20)
    X = np.exp(-x[:, None, None] - x[None, :, None] * x[None, None, :])
    inp, out = tmp_path / "X.npy", tmp_path / "T.npz"
    np.save(inp, X)
    assert main(["tucker", str(inp), "--rtol", "1e-8", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    T = ta.TuckerTensor.load(out)
    err = np.linalg.norm(T.full() - X) / np.linalg.norm(X)
    assert err <= 1e-8
    assert f"ranks:        {T.ranks}" in text
    assert f"rel. error:   {err:.3e}" in text
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert f"shape:        {T.shape}" in info and f"compression:  {T.compression_ratio:.1f}x" in info

    assert main(["tucker", str(inp), "--rank", "2,2,2", "--als", "-o", str(out)]) == 0
    assert ta.TuckerTensor.load(out).ranks == (2, 2, 2)


def test_cli_errors(tmp_path, capsys):
    inp = tmp_path / "X.npy"
    np.save(inp, np.ones((4, 5, 6)))
    assert main(["tucker", str(inp), "--rank", "2,2", "-o", str(tmp_path / "o.npz")]) == 2
    assert "rank has 2 entries but the tensor has 3 modes" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert main(["info", str(bad)]) == 2
    assert "could not read" in capsys.readouterr().err


def test_demo_runs_and_reports(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "rel. error" in out and "compression" in out
    # the demo's own numbers: st_hosvd at rtol 1e-6 meets its bound
    line = next(ln for ln in out.splitlines() if ln.startswith("st_hosvd(rtol=1e-6)"))
    assert float(line.split()[2]) <= 1e-6
