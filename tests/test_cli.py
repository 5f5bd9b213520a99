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


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e-300), (np.float64, 1e200), (np.float32, 1e-25),
                                          (np.float32, 1e20)])
def test_tucker_reports_the_error_of_data_far_from_unit_size(tmp_path, capsys, dtype, scale):
    # the norms of the raw data underflowed (a printed error of 0) or
    # overflowed (nan) while the decomposition itself was right
    rng = np.random.default_rng(0)
    X = rng.random((20, 20, 20))
    inp, out = tmp_path / "X.npy", tmp_path / "T.npz"
    np.save(inp, (X * scale).astype(dtype))
    assert main(["tucker", str(inp), "--rank", "2", "-o", str(out)]) == 0
    T = ta.TuckerTensor.load(out)
    assert T.dtype == dtype
    Xs = np.load(inp).astype(np.float64) / scale
    ref = np.linalg.norm(T.full().astype(np.float64) / scale - Xs) / np.linalg.norm(Xs)
    assert 0.3 < ref < 0.7  # rank 2 of uniform noise
    printed = float(capsys.readouterr().out.split("rel. error:")[1].split()[0])
    assert printed == pytest.approx(ref, rel=1e-3)


def test_tucker_and_info_refuse_corrupt_files_and_unsafe_outputs(tmp_path, capsys):
    inp = tmp_path / "X.npy"
    np.save(inp, np.random.default_rng(1).random((6, 7, 8)))
    out = str(tmp_path / "o.npz")
    # an empty file raised EOFError, a header claiming 10^14 floats MemoryError
    (tmp_path / "empty.npy").write_bytes(b"")
    head = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    head["shape"] = (10**14,)
    with open(tmp_path / "huge.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, head)
    for name, msg in (("empty.npy", "could not read"), ("huge.npy", "too large to read into memory")):
        assert main(["tucker", str(tmp_path / name), "--rank", "2", "-o", out]) == 2
        assert msg in capsys.readouterr().err
    # info: an archive member of that size, a version or ndim of inf (OverflowError)
    import zipfile

    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.write(tmp_path / "huge.npy", "core.npy")
    assert main(["info", str(tmp_path / "huge.npz")]) == 2
    assert "too large to read into memory" in capsys.readouterr().err
    T = ta.st_hosvd(np.load(inp), 2)
    for field in ("version", "ndim"):
        fields = {"format": "tensorapprox.TuckerTensor", "version": 1, "ndim": 3, "core": T.core,
                  **{f"factor_{k}": U for k, U in enumerate(T.factors)}}
        fields[field] = np.inf
        np.savez(tmp_path / "inf.npz", **fields)
        assert main(["info", str(tmp_path / "inf.npz")]) == 2
        assert "corrupt TuckerTensor file" in capsys.readouterr().err
    # a zip file given as the input: numpy opens it as an .npz archive, whatever its name
    np.savez(tmp_path / "two.npz", a=np.ones(3), b=np.ones(3))
    (tmp_path / "two.npz").rename(tmp_path / "model.pt")
    np.savez(tmp_path / "arrays.npz", a=np.ones(3))
    for name, msg in (("model.pt", "is a zip archive, not a .npy file"), ("arrays.npz", "is a .npz archive")):
        assert main(["tucker", str(tmp_path / name), "--rank", "2", "-o", out]) == 2
        assert msg in capsys.readouterr().err
    # the output is never the input, nor a folder (it wrote a hidden ".npz")
    same = tmp_path / "data.npz"
    np.save(tmp_path / "tmp.npy", np.load(inp))
    (tmp_path / "tmp.npy").rename(same)  # a .npy under a .npz name: numpy reads it by its magic bytes
    before = same.read_bytes()
    assert main(["tucker", str(same), "--rank", "2", "-o", str(same)]) == 2
    assert "is the input file" in capsys.readouterr().err and same.read_bytes() == before
    (tmp_path / "folder").mkdir()
    for bad in (str(tmp_path / "folder") + "/", ""):
        assert main(["tucker", str(inp), "--rank", "2", "-o", bad]) == 2
        assert "names a folder, not a file" in capsys.readouterr().err
    assert not (tmp_path / "folder" / ".npz").exists()
    # "-o folder" naming an existing folder is refused as "-o folder/" is (it
    # wrote folder.npz beside it, with exit code 0)
    assert main(["tucker", str(inp), "--rank", "2", "-o", str(tmp_path / "folder")]) == 2
    assert "names a folder, not a file" in capsys.readouterr().err
    assert not (tmp_path / "folder.npz").exists()


def test_info_prints_the_full_size_of_huge_shapes(tmp_path, capsys):
    # np.prod wrapped around in int64: 6323684780.4 GB instead of about 745 billion GB
    rng = np.random.default_rng(2)
    T = ta.TuckerTensor(rng.random((2, 2, 2, 2)), [rng.random((10**5, 2)) for _ in range(4)])
    T.save(tmp_path / "big.npz")
    assert main(["info", str(tmp_path / "big.npz")]) == 0
    assert "(full tensor 745058059692.4 GB)" in capsys.readouterr().out


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


def test_non_npy_input_is_named_as_such_and_never_unpickled(tmp_path, capsys):
    # a text/CSV file was reported as "pickled (object) data", with numpy's
    # advice to load it with allow_pickle= or pickle.load()
    import pickle

    out = str(tmp_path / "o.npz")
    csv = tmp_path / "data.csv"
    np.savetxt(csv, np.ones((3, 4)), delimiter=",")
    text_npy = tmp_path / "text.npy"
    text_npy.write_text("1 2 3\n4 5 6\n")
    sentinel = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    pkl = tmp_path / "evil.npy"
    pkl.write_bytes(pickle.dumps(Evil()))
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    for path in (csv, text_npy, pkl, obj):
        assert main(["tucker", str(path), "--rank", "2", "-o", out]) == 2
        err = capsys.readouterr().err
        assert f"could not read {path}" in err
        assert "allow_pickle" not in err and "pickle.load" not in err
        if path != obj:
            assert "not a .npy file" in err
        else:  # a real .npy header, of Python objects
            assert "Python objects" in err
    assert not sentinel.exists()


def test_options_without_effect_are_refused_and_max_iter_checked(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.random((40, 40, 40))  # large enough for the randomized method to sketch (seeds differ)
    inp, out = tmp_path / "X.npy", tmp_path / "T.npz"
    np.save(inp, X)
    base = ["tucker", str(inp), "--rank", "3", "-o", str(out)]
    # ignored before: --max-iter without --als, --seed without the randomized method
    for extra, msg in ((["--max-iter", "5"], "--max-iter has an effect only with --als"),
                       (["--seed", "1"], "--seed has an effect only with --method randomized"),
                       (["--als", "--seed", "1"], "--seed has an effect only with --method randomized")):
        assert main(base + extra) == 2
        assert msg in capsys.readouterr().err
    assert not out.exists()
    # --max-iter is a positive integer (-7 passed without --als)
    for bad in ("-7", "0", "2.5", "x"):
        for extra in (["--als"], []):
            with pytest.raises(SystemExit) as exc:
                main(base + extra + ["--max-iter", bad])
            assert exc.value.code == 2
            assert "--max-iter: must be a positive integer" in capsys.readouterr().err
    # with --als, --method/--seed choose the ST-HOSVD start and --max-iter the sweeps:
    # the saved result is the library's with that start (they were ignored)
    got = []
    for seed in (1, 2):
        assert main(base + ["--als", "--method", "randomized", "--seed", str(seed), "--max-iter", "1"]) == 0
        init = ta.st_hosvd(X, 3, method="randomized", random_state=seed)
        want = ta.tucker_als(X, (3, 3, 3), init=init, max_iter=1).tucker
        got.append(ta.TuckerTensor.load(out).full())
        np.testing.assert_allclose(got[-1], want.full(), rtol=0, atol=1e-12)
        printed = float(capsys.readouterr().out.split("rel. error:")[1].split()[0])
        assert printed == pytest.approx(_rel_err(want, X), rel=1e-3)
    assert np.max(np.abs(got[0] - got[1])) > 1e-3  # the seed matters: one sweep from two starts
    # --rtol with --als: the start's ranks
    assert main(["tucker", str(inp), "--rtol", "0.3", "--als", "-o", str(out)]) == 0
    assert ta.TuckerTensor.load(out).ranks == ta.st_hosvd(X, rtol=0.3).ranks


def _rel_err(T, X):
    return float(np.linalg.norm(T.full() - X) / np.linalg.norm(X))
