"""`pathgen mil` / `mil-splits` / `mil-table` on plain paths (no config file)."""

import pandas as pd

from pathgen.cli import main
from pathgen_testkit.synthetic_mil import synthetic_cohort, write_synthetic_features


def test_cli_plain_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no config.yaml here: built-in defaults
    t = synthetic_cohort(8, seed=2)
    t.to_csv("labels.csv", index=False)
    write_synthetic_features(tmp_path / "features_synth", t, ["c0", "c1"], dim=8, n_patches=(3, 9))
    rc = main(["mil", "--labels", "labels.csv", "--features-dir", "features_synth", "--model",
               "abmil,transmil", "--out", "out", "--folds", "2", "--epochs", "2", "--threads", "1"])
    assert rc == 0
    for m in ("abmil", "transmil"):
        csv = pd.read_csv(tmp_path / "out" / m / "metrics.csv")
        assert list(csv.fold) == ["0", "1", "mean", "sd"]
    assert "labels synth abmil" in capsys.readouterr().out
    assert main(["mil-table", "out/abmil/metrics.json", "out/transmil/metrics.json",
                 "--out-csv", "t.csv", "--out-md", "t.md"]) == 0
    assert list(pd.read_csv("t.csv").model) == ["abmil", "transmil"]
    assert main(["mil-splits", "--labels", "labels.csv", "--out", "sp", "--folds", "4"]) == 0
    assert sorted(p.name for p in (tmp_path / "sp").glob("splits_*.csv")) == [
        f"splits_{k}.csv" for k in range(4)]


def test_cli_errors_are_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["mil", "--labels", "nope.csv", "--features-dir", ".", "--out", "o",
                 "--classes", "a,b"]) == 2
    assert "nope.csv does not exist" in capsys.readouterr().err
    assert main(["mil", "--model", "abmil"]) == 2
    assert "needs --labels" in capsys.readouterr().err
