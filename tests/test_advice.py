"""advice: the default feature recipe, the stationarity check, block lengths from timestamps, too few blocks."""

import os

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from chronoslib.advice import (
    DEFAULT_BLOCK_LEN,
    MIN_BLOCK_LEN,
    default_recipe,
    min_blocks_advice,
    stationarity,
    suggest_block_len,
)
from chronoslib.columns import market_columns
from chronoslib.data import SAMPLE_DIR, SAMPLE_RECIPES, SAMPLES, build_dataset, load_sample
from chronoslib.features import engineer
from chronoslib.readers import read_table
from tests.ohlcv_support import make_ohlcv

STATIONARY_SET = ["log_return", "abs_return", "hl_range", "rel_volume", "rolling_vol"]


# ---------------------------------------------------------------------------------------------------- recipe
def test_a_daily_ohlcv_table_gets_the_stationary_set_and_no_price_level():
    df, _ = make_ohlcv(2520, seed=0)                                         # ten years of trading days
    r = default_recipe(df)
    assert r.transforms == STATIONARY_SET and r.feature_cols == []
    assert (r.timestamp_col, r.price_col, r.high_col, r.low_col, r.volume_col) == \
        ("Date", "Adj Close", "High", "Low", "Volume")                       # adjusted close preferred
    assert set(r.excluded) == {"Open", "High", "Low", "Close", "Adj Close", "Volume"}
    ds = build_dataset(df, "bars", **r.build_args())
    assert ds.feature_names == STATIONARY_SET and not set(ds.feature_names) & set(df.columns)
    assert not any(stationarity(ds.train[:, j]).trending for j in range(ds.features.shape[1]))
    assert all(stationarity(df[c].to_numpy(float)).trending for c in ("Close", "Volume"))  # what they replace


def test_other_numeric_columns_stay_features_next_to_market_data():
    df, _ = make_ohlcv(300, seed=1)
    df = df.rename(columns=str.lower).drop(columns=["adj close"]).assign(vix=np.linspace(15, 25, 300))
    r = default_recipe(df)
    assert r.transforms == STATIONARY_SET and r.feature_cols == ["vix"] and r.price_col == "close"
    close_only = df[["date", "close"]]
    assert default_recipe(close_only).transforms == ["log_return", "abs_return", "rolling_vol"]


def test_the_shipped_samples_get_their_own_recipes():
    # The synthetic sample (f0..f5 next to one price) keeps its features and charts the price, so the file
    # gives the shipped model's inputs; WTI (a date and a price) gets the returns its sample recipe names.
    for name, file in SAMPLES.items():
        df = read_table(os.path.join(SAMPLE_DIR, file), max_bytes=None, max_rows=None)
        r = default_recipe(df)
        want = SAMPLE_RECIPES[file]
        assert r.transforms == list(want.get("transforms", []))
        assert r.feature_cols == list(want.get("feature_cols", []))
        assert r.price_col == want["price_col"] and r.timestamp_col == want["timestamp_col"]
        ds, ref = build_dataset(df, name, **r.build_args()), load_sample(name)
        assert ds.feature_names == ref.feature_names
        np.testing.assert_array_equal(ds.features, ref.features)


def test_a_table_without_prices_keeps_every_numeric_column():
    df = pd.DataFrame({"timestamp": np.arange(50), "a": np.ones(50), "b": np.arange(50.0), "regime": np.zeros(50, int)})
    r = default_recipe(df)
    assert r.feature_cols == ["a", "b"] and r.transforms == [] and r.label_col == "regime"
    bars = pd.DataFrame({"High": np.full(9, 2.0), "Low": np.ones(9), "x": np.zeros(9)})  # no price: the range
    assert default_recipe(bars).transforms == ["hl_range"] and default_recipe(bars).feature_cols == ["x"]
    only_levels = pd.DataFrame({"Open": np.ones(9), "x_high": np.ones(9)})            # nothing else to use
    assert default_recipe(only_levels).feature_cols == ["Open", "x_high"] == market_columns(only_levels)


# ---------------------------------------------------------------------------------------------------- stationarity
def _ar1(n, phi, seed):
    return lfilter([1.0], [1.0, -phi], np.random.default_rng(seed).standard_normal(n))


def test_stationarity_share_is_the_anova_eta_squared_of_eight_parts():
    x = np.random.default_rng(0).standard_normal(1003).cumsum()
    s = stationarity(x)
    parts = pd.Series(x[:1000]).groupby(np.arange(1000) // 125)      # the same parts, computed another way
    ref = parts.transform("mean").var(ddof=0) / pd.Series(x[:1000]).var(ddof=0)
    assert s.segments == 8 and s.share == pytest.approx(ref, rel=1e-12)
    assert s.trending and "pseudo-timeline" in s.why and "eras" in s.why
    assert not stationarity(np.ones(100)).trending and not stationarity(np.arange(10.0)).trending   # constant / short
    with_gaps = np.where(np.arange(2000) % 7 == 0, np.nan, np.arange(2000.0))
    assert stationarity(with_gaps).trending                           # NaN cells are skipped


@pytest.mark.parametrize("n", [1000, 10_000, 100_000])
def test_random_walks_and_trends_are_flagged_noise_returns_and_ar1_are_not(n):
    seeds = range(30 if n < 100_000 else 8)
    rw = np.mean([stationarity(np.random.default_rng(s).standard_normal(n).cumsum()).trending for s in seeds])
    trend = [stationarity(5 * np.arange(n) / n + np.random.default_rng(s).standard_normal(n)).trending
             for s in seeds]
    noise = [stationarity(np.random.default_rng(s).standard_normal(n)).trending for s in seeds]
    ar = [stationarity(_ar1(n, 0.9, s)).trending for s in seeds]
    # measured: a random walk is flagged in 96 % of 200 seeds at every length (its share's 5 % quantile is 0.51)
    assert rw >= 0.8 and all(trend) and not any(noise) and not any(ar)


def test_engineered_ohlcv_features_pass_and_the_levels_they_replace_fail():
    df, _ = make_ohlcv(2520, seed=5)
    src = {"price": df["Adj Close"].to_numpy(float), "high": df["High"].to_numpy(float),
           "low": df["Low"].to_numpy(float), "volume": df["Volume"].to_numpy(float)}
    e = engineer(src, STATIONARY_SET + ["log_volume"], 20)
    flags = {n: stationarity(e[:, j]).trending for j, n in enumerate(STATIONARY_SET + ["log_volume"])}
    assert flags == {**{n: False for n in STATIONARY_SET}, "log_volume": True}


# ---------------------------------------------------------------------------------------------------- block length
@pytest.mark.parametrize("index, want, period", [
    (pd.bdate_range("2015-01-01", "2019-12-31"), (21, 23), "a month"),        # weekdays: 21-23 a month
    (pd.date_range("2015-01-01", periods=2000, freq="D"), (30, 31), "a month"),   # crypto: every day
    (pd.date_range("2024-01-01", periods=5000, freq="h"), (24, 24), "a day"),
    (pd.date_range("2024-01-01", periods=5000, freq="min"), (60, 60), "an hour"),
    (pd.date_range("2024-01-01", periods=5000, freq="5min"), (12, 12), "an hour"),
    (pd.date_range("2024-01-01", periods=5000, freq="s"), (60, 60), "a minute"),
    (pd.date_range("2010-01-01", periods=600, freq="W"), (13, 14), "a quarter"),
    (pd.date_range("1990-01-01", periods=300, freq="MS"), (12, 12), "a year"),
])
def test_block_length_spans_a_calendar_period_of_the_data(index, want, period):
    s = suggest_block_len(index.values)
    assert want[0] <= s.block_len <= want[1] and s.period == period, s


def test_stock_session_bars_and_holidays_count_real_ticks():
    days = pd.bdate_range("2023-01-02", "2023-12-29")
    days = days[~days.isin(pd.to_datetime(["2023-01-16", "2023-02-20", "2023-04-07", "2023-05-29", "2023-06-19",
                                           "2023-07-04", "2023-09-04", "2023-11-23", "2023-12-25"]))]  # NYSE 2023
    assert suggest_block_len(days.values).block_len == 21                      # trading days a month
    hours = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days[:200] for h in range(10, 17)])
    s = suggest_block_len(hours.values)                                       # 7 bars a session, 5 days a week
    assert s.period == "a week" and s.block_len == 35
    raw = np.cumsum(np.random.default_rng(0).exponential(3.0, 20_000)).astype("timedelta64[s]")
    s = suggest_block_len(np.datetime64("2024-01-01") + raw)                  # irregular trades, ~20 a minute
    assert s.period == "a minute" and 15 <= s.block_len <= 25


def test_no_dates_give_the_default_block_length():
    for ts in (None, np.arange(100.0), np.array(["2024-01-01"] * 2, dtype="datetime64[ns]")):
        assert suggest_block_len(ts).block_len == DEFAULT_BLOCK_LEN == 64


def test_min_blocks_advice_offers_the_largest_block_length_that_gives_enough():
    assert min_blocks_advice(3200, 64) is None and min_blocks_advice(3199, 64) is not None
    a = min_blocks_advice(2000, 64)
    assert a.n_blocks == 31 and a.offered == 40 and 2000 // a.offered >= 50 > 2000 // (a.offered + 1)
    assert "31 training blocks" in a.message and "40" in a.message
    tiny = min_blocks_advice(300, 21)
    assert tiny.offered is None and f"{50 * MIN_BLOCK_LEN} training ticks" in tiny.message


# ---------------------------------------------------------------------------------------------------- train command
def test_the_train_command_uses_the_default_recipe_when_nothing_is_chosen(tmp_path):
    from chronoslib import ChronosDefragEngine
    from chronoslib.cli import main as cli_main
    from chronoslib.data import load_for_training
    from tests.conftest import small_config

    path = str(tmp_path / "spx.csv")
    make_ohlcv(1200, seed=2)[0].to_csv(path, index=False)
    ds, cfg = load_for_training(path, small_config())
    assert ds.feature_names == STATIONARY_SET and cfg.data.price_col == "Adj Close"
    ds, _ = load_for_training(path, small_config(), features=["Open"])        # a choice is a choice
    assert ds.feature_names == ["Open"]
    sample = os.path.join(SAMPLE_DIR, "synthetic_regimes.csv")               # the shipped model's inputs
    ds, cfg = load_for_training(sample, small_config())
    assert ds.feature_names == [f"f{i}" for i in range(6)] and cfg.data.price_col == "price"
    assert ds.prices is not None and cfg.data.transforms == []

    out = tmp_path / "m.pt"
    assert cli_main(["train", path, "--out", str(out), "--epochs", "1", "--predictor-epochs", "1",
                     "--block-len", "16", "--quiet"]) == 0
    eng = ChronosDefragEngine.load(str(out))
    assert eng.cfg.data.transforms == STATIONARY_SET and eng.cfg.data.features == []
    assert eng.meta["features"] == STATIONARY_SET
