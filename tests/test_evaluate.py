"""The ``evaluate`` command: loading a file for it (label and price detected and kept out of the features) and
the command line printing strict JSON with verdicts."""

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest

from chronoslib.cli import main
from chronoslib.errors import DataError
from chronoslib.evaluate import load_eval_dataset
from chronoslib.synthetic import make_regime_series
from tests.conftest import small_config


def _write_csv(path, n=16 * 30):
    s = make_regime_series(n, n_features=3, n_regimes=2, mean_duration=64, seed=9)
    df = pd.DataFrame(s.data, columns=["a", "b", "c"])
    df.insert(0, "timestamp", pd.date_range("2024-01-01", periods=n, freq="1min"))
    df["price"] = s.prices
    df["regime"] = np.where(s.labels == 0, "calm", "wild")
    df.to_csv(path, index=False)
    return s


def test_load_eval_dataset_detects_label_and_price_and_keeps_them_out_of_features(tmp_path):
    p = tmp_path / "d.csv"
    s = _write_csv(p)
    ds = load_eval_dataset(str(p), holdout=0.25)
    assert ds.feature_names == ["a", "b", "c"] and ds.features.shape == (480, 3)
    assert ds.split == 360
    np.testing.assert_allclose(ds.prices, s.prices, rtol=1e-6)
    assert ds.labels.tolist() == np.where(s.labels == 0, 0, 1).tolist()   # "calm" / "wild" coded 0 / 1
    with pytest.raises(DataError, match="'nope' not found"):
        load_eval_dataset(str(p), label_col="nope")
    with pytest.raises(DataError, match="no such file"):
        load_eval_dataset(str(tmp_path / "missing.csv"))


def test_cli_evaluate_prints_strict_json_with_verdicts(tmp_path, capsys):
    p, cfgp = tmp_path / "d.csv", tmp_path / "cfg.json"
    _write_csv(p)
    cfg = small_config(input_dim=3, epochs=1)
    cfgp.write_text(json.dumps(cfg.to_dict()))
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["evaluate", str(p), "--seeds", "2", "--predictor-epochs", "1", "--holdout", "0.25",
                   "--config", str(cfgp), "--out", str(tmp_path / "r.json")])
    assert rc == 0
    res = json.loads(buf.getvalue())
    assert res["n_features"] == 3 and res["has_prices"] and res["has_regimes"] and res["n_regimes"] == 2
    assert any("defragmented training" in v for v in res["verdicts"])
    assert json.loads((tmp_path / "r.json").read_text())["summary"] == res["summary"]
    assert main(["evaluate", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_evaluate_trains_the_pseudo_arm_on_the_chosen_ordering(tmp_path, capsys):
    p, cfgp = tmp_path / "d.csv", tmp_path / "cfg.json"
    _write_csv(p)
    cfgp.write_text(json.dumps(small_config(input_dim=3, epochs=1).to_dict()))
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["evaluate", str(p), "--seeds", "2", "--predictor-epochs", "1", "--holdout", "0.25",
                   "--config", str(cfgp), "--ordering", "regime"])
    assert rc == 0 and json.loads(buf.getvalue())["ordering"] == "regime"
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(p), "--ordering", "fastest"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_an_ohlcv_file_is_evaluated_on_stationary_features(tmp_path):
    from tests.ohlcv_support import make_ohlcv

    p = tmp_path / "bars.csv"
    make_ohlcv(600, seed=0)[0].to_csv(p, index=False)
    ds = load_eval_dataset(str(p))
    assert ds.feature_names == ["log_return", "abs_return", "hl_range", "rel_volume", "rolling_vol"]
    assert ds.config.price_col == "Adj Close" and ds.prices is not None
    assert load_eval_dataset(str(p), features=["Open"]).feature_names == ["Open"]
