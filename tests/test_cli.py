"""The command line: demo, tucker, info."""

import numpy as np
import pytest

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
    assert "not a readable .npz file" in capsys.readouterr().err
    # an empty rank entry was dropped: "2,,2" read as (2, 2), "2," as 2 in every mode
    for text in ("2,,2,2", "2,"):
        with pytest.raises(SystemExit) as exc:
            main(["tucker", str(inp), "--rank", text, "-o", str(tmp_path / "o.npz")])
        assert exc.value.code == 2
        assert "--rank has an empty entry" in capsys.readouterr().err
    # a missing output folder: exit code 2 before the computation (a traceback after it before)
    assert main(["tucker", str(inp), "--rank", "2", "-o", str(tmp_path / "no" / "o.npz")]) == 2
    assert "output folder" in capsys.readouterr().err
    # numpy appends .npz: the file named is the file written
    assert main(["tucker", str(inp), "--rank", "2", "-o", str(tmp_path / "noext")]) == 0
    assert f"saved:        {tmp_path / 'noext.npz'}" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "noext.npz")]) == 0


def test_demo_runs_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default figure folder is made in the working directory
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "rel. error" in out and "compression" in out
    # the demo's own numbers: st_hosvd at rtol 1e-6 meets its bound
    lines = out.splitlines()

    def row(prefix):
        return next(ln for ln in lines if ln.startswith(prefix)).split()

    assert float(row("st_hosvd(rtol=1e-6)")[2]) <= 1e-6
    # completion: every solver recovers the held-out entries (A1's setting at n = 2000, k = 5)
    for solver in ("exact", "cg", "sketch"):
        assert float(row(f"altmin_complete(solver='{solver}')")[2]) <= 1e-6
    # robust recovery: the l1 loss survives the outliers, least squares does not
    err_l1 = float(row("subgradient_recover(loss='l1')")[2])
    err_l2 = float(row("subgradient_recover(loss='l2')")[2])
    assert err_l1 <= 1e-3 and err_l2 >= 100 * err_l1
    # functional Bayesian Tucker: far below the constant predictor, calibrated error bars
    rmse_const = float(row("constant predictor")[-1])
    fit = row("FunctionalTucker(rank=2, matern32)")
    assert float(fit[2]) <= 0.2 * rmse_const
    assert 90.0 <= float(fit[3].rstrip("%")) <= 100.0
    # weight compression at equal parameter count: the calibrated split wins on the outputs
    plain, calibrated = row("svd_factorize(param_ratio=0.25)"), row("whitened_svd(param_ratio=0.25)")
    assert plain[2] == calibrated[2]
    assert float(calibrated[3]) < float(plain[3])

    # the figure tour: the default folder, every figure named in the report, real PNG files
    folder = tmp_path / "tensorapprox-demo-figures"
    assert "written to tensorapprox-demo-figures" in out
    pngs = sorted(p.name for p in folder.iterdir())
    assert pngs == ["convergence.png", "tucker_error_vs_compression.png", "tucker_mode_spectra.png"]
    for name in pngs:
        assert str(folder.relative_to(tmp_path) / name) in out
        data = (folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_demo_figures_option_and_no_figures(tmp_path, capsys, monkeypatch):
    import tensorapprox.cli as cli

    # one figure only, to keep the test short; the option decides the folder
    monkeypatch.setattr(cli, "demo_figures", lambda: [("tucker_mode_spectra.png", cli._figure_tucker_spectra)])
    monkeypatch.setattr(cli, "demo_sections", lambda: [])
    target = tmp_path / "figs" / "nested"
    assert main(["demo", "--figures", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"written to {target}" in out and str(target / "tucker_mode_spectra.png") in out
    assert (target / "tucker_mode_spectra.png").is_file()

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--no-figures"]) == 0
    assert "Figures" not in capsys.readouterr().out
    assert not (tmp_path / "tensorapprox-demo-figures").exists()


def test_demo_reports_an_unwritable_figure_folder(tmp_path, capsys, monkeypatch):
    import tensorapprox.cli as cli

    monkeypatch.setattr(cli, "demo_sections", lambda: [])
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--figures", str(blocker / "sub")]) == 2
    assert "could not write the figures" in capsys.readouterr().err
