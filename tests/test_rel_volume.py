"""The rel_volume transform: volume relative to its own rolling mean, causal, reproduced by a live window."""

import numpy as np
import pandas as pd
import pytest

from chronoslib.data import build_dataset
from chronoslib.errors import BadValuesError, DataError
from chronoslib.features import TRANSFORMS, engineer, live_window, warmup_ticks
from tests.ohlcv_support import make_ohlcv

ALL = ["log_return", "abs_return", "hl_range", "rel_volume", "rolling_vol"]


def _sources(df: pd.DataFrame) -> dict[str, np.ndarray]:
    return {"price": df["Adj Close"].to_numpy(float), "high": df["High"].to_numpy(float),
            "low": df["Low"].to_numpy(float), "volume": df["Volume"].to_numpy(float)}


@pytest.mark.parametrize("window", [2, 5, 20])
def test_rel_volume_matches_a_pandas_rolling_mean(window):
    v = pd.Series(np.random.default_rng(window).lognormal(10, 1, 300))
    v[[7, 8, 40]] = 0.0                                           # zero-volume ticks stay finite
    m = v.rolling(window).mean()                                  # pandas: mean of v[t-w+1 .. t]
    ref = np.where(m == 0, 0.0, np.log((1 + v / m) / 2))[window - 1:]   # an all-zero window: the usual level
    got = engineer({"volume": v.to_numpy()}, ["rel_volume"], window)[:, 0]
    assert got.shape == (300 - window + 1,) and warmup_ticks(["rel_volume"], window) == window - 1
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert np.isfinite(got).all()


def test_zero_volume_is_a_defined_value_and_negative_volume_an_error():
    got = engineer({"volume": np.array([0.0, 0.0, 0.0, 6.0, 0.0])}, ["rel_volume"], 3)[:, 0]
    # all-zero window -> 0 (the usual level); 6 vs a mean of 2 -> log(2); 0 vs a mean of 2 -> -log(2)
    np.testing.assert_allclose(got, [0.0, np.log(2.0), -np.log(2.0)])
    with pytest.raises(DataError, match="negative"):
        engineer({"volume": np.array([1.0, -1.0, 2.0])}, ["rel_volume"], 2)
    with pytest.raises(DataError, match="vol_window"):
        engineer({"volume": np.ones(10)}, ["rel_volume"], 1)
    assert "rel_volume" in TRANSFORMS


def test_rel_volume_removes_the_volume_trend_that_log_volume_keeps():
    df, _ = make_ohlcv(2520, seed=1)
    e = engineer(_sources(df), ["log_volume", "rel_volume"], 20)
    years = np.array_split(np.arange(len(e)), 10)
    log_means = [e[i, 0].mean() for i in years]
    rel_means = [e[i, 1].mean() for i in years]
    assert log_means[-1] - log_means[0] > 0.8                    # raw volume grows ~12x over the ten years
    assert np.ptp(rel_means) < 0.1                               # relative volume has no such drift


def test_every_engineered_feature_is_causal():
    df, _ = make_ohlcv(400, seed=2)
    src = _sources(df)
    base = engineer(src, ALL, 20)
    w = warmup_ticks(ALL, 20)
    for k in (50, 200, 399):                                     # change tick k: rows of earlier ticks stay
        bumped = {r: a.copy() for r, a in src.items()}
        for r in bumped:
            bumped[r][k] *= 1.7
        got = engineer(bumped, ALL, 20)
        np.testing.assert_array_equal(got[: k - w], base[: k - w])
        assert not np.array_equal(got[k - w], base[k - w])


def test_live_window_reproduces_the_training_features_on_the_same_span():
    df, _ = make_ohlcv(600, seed=3)
    ds = build_dataset(df, "bars", transforms=ALL, holdout=0.2)
    cfg = ds.data_config()
    assert cfg.volume_col == "Volume" and cfg.price_col == "Adj Close" and ds.row_offset == 20
    block = 32
    for end_row in (ds.row_offset + block, 300, len(df)):        # raw rows [0, end_row) -> features of the last 32
        win = live_window(df.iloc[:end_row], cfg, block)
        i = end_row - ds.row_offset
        np.testing.assert_array_equal(win, ds.features[i - block: i])
    with pytest.raises(DataError, match="needs 52"):
        live_window(df.iloc[:40], cfg, block)


def test_only_rel_volume_needs_window_minus_one_ticks_of_history():
    df, _ = make_ohlcv(100, seed=4)
    ds = build_dataset(df, "v", transforms=["rel_volume"], vol_window=10, holdout=0.0)
    assert ds.row_offset == 9 and ds.feature_names == ["rel_volume"] and len(ds.features) == 91
    bad = df.assign(Volume=df["Volume"].astype(float).where(df.index != 30, -5.0))
    with pytest.raises(BadValuesError, match="Volume"):
        build_dataset(bad, "v", transforms=["rel_volume"], holdout=0.0)


def test_a_checkpoint_with_rel_volume_predicts_from_raw_rows_after_save_and_load(tmp_path):
    from chronoslib import ChronosDefragEngine
    from tests.conftest import small_config

    df, _ = make_ohlcv(16 * 30 + 20, seed=6)
    ds = build_dataset(df, "bars", transforms=ALL, holdout=0.25)
    eng = ChronosDefragEngine(ds.configure(small_config(input_dim=5, epochs=1))).fit(ds.train)
    path = str(tmp_path / "m.pt")
    eng.save(path)
    back = ChronosDefragEngine.load(path)
    assert back.cfg.data.transforms == ALL and back.cfg.data.volume_col == "Volume"
    end = ds.row_offset + ds.split + 24                            # a held-out tick, in frame rows
    raw = df.iloc[:end][["Adj Close", "High", "Low", "Volume"]]    # only the source columns a live feed carries
    i = end - ds.row_offset
    a, b = back.predict_live_raw(raw), back.predict_live(ds.features[i - 16: i])
    assert float(a.alpha_prediction) == float(b.alpha_prediction)
    assert list(a.neighbour_indices) == list(b.neighbour_indices)
