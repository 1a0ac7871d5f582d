"""The command line never destroys data and reports bad arguments as one `error:` line with status 2."""

import os

import numpy as np
import pandas as pd
import pytest

from chronoslib.checkpoint import clean_stale_temps
from chronoslib.cli import main


@pytest.fixture
def csv(tmp_path):
    p = tmp_path / "data.csv"
    pd.DataFrame(np.random.default_rng(0).standard_normal((64, 3)), columns=list("abc")).to_csv(p, index=False)
    return p


def _run(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_out_equal_to_the_input_is_refused_and_the_data_survives(csv, capsys, tmp_path, monkeypatch):
    before = csv.read_bytes()
    link = tmp_path / "link.csv"
    os.symlink(csv, link)
    monkeypatch.chdir(tmp_path)  # restored afterwards: later tests open sample_data/ relative to the root
    for out in (str(csv), "data.csv", str(link), "./sub/../data.csv"):
        code, err = _run(capsys, ["train", str(csv), "--out", out, "--no-timestamp", "--quiet"])
        assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "input" in err[0]
    assert csv.read_bytes() == before


def test_an_existing_non_checkpoint_out_needs_force(csv, capsys, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("precious")
    code, err = _run(capsys, ["train", str(csv), "--out", str(other), "--no-timestamp", "--quiet"])
    assert code == 2 and "--force" in err[0] and other.read_text() == "precious"


@pytest.mark.parametrize("args,word", [(["--epochs", "0"], "--epochs"), (["--epochs", "100000000"], "--epochs"),
                                       (["--seed", "-1"], "--seed"), (["--seed", str(2**64)], "--seed"),
                                       (["--epochs", "x"], "epochs")])
def test_bad_numbers_give_one_error_line(csv, capsys, tmp_path, args, word):
    try:
        code, err = _run(capsys, ["train", str(csv), "--out", str(tmp_path / "m.pt"), "--no-timestamp", *args])
    except SystemExit as exc:  # argparse type errors
        code, err = exc.code, capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and word in err[0]


def test_a_config_file_with_a_string_for_a_list_names_the_field(csv, capsys, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"data": {"features": "a,b"}}')
    code, err = _run(capsys, ["train", str(csv), "--out", str(tmp_path / "m.pt"), "--config", str(cfg)])
    assert code == 2 and len(err) == 1 and "data.features" in err[0]


def test_a_config_file_whose_latent_dims_disagree_names_both(csv, capsys, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"encoder": {"latent_dim": 16}, "predictor": {"latent_dim": 8}}')
    code, err = _run(capsys, ["train", str(csv), "--out", str(tmp_path / "m.pt"), "--config", str(cfg)])
    assert code == 2 and len(err) == 1
    assert "cfg.json: encoder.latent_dim (16) and predictor.latent_dim (8) disagree" in err[0]


def test_stale_temps_of_dead_writers_are_cleaned_but_live_ones_kept(tmp_path):
    dead = tmp_path / ".chronosdefrag-999999999-abc.tmp"   # no such PID
    live = tmp_path / f".chronosdefrag-{os.getppid()}-abc.tmp"
    old = tmp_path / ".chronosdefrag-xyz.tmp"               # older format, no PID
    other = tmp_path / "keep.tmp"
    for p in (dead, live, old, other):
        p.write_bytes(b"x")
    os.utime(old, (0, 0))
    removed = clean_stale_temps(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(old)])
    assert live.exists() and other.exists()
