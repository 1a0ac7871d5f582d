"""Column detection (time, labels, prices, numbers) and the one feature-column choice that the dataset builder,
a raw live window and the engine on a DataFrame share."""

import numpy as np
import pandas as pd
import pytest

from chronoslib import ChronosDefragEngine, DataError
from chronoslib.columns import (
    detect_label_column,
    detect_price_columns,
    detect_timestamp_column,
    feature_columns,
    frame_values,
    market_columns,
    numeric_columns,
)
from chronoslib.config import DataConfig
from chronoslib.data import build_dataset
from chronoslib.features import raw_features
from tests.conftest import small_config


def _ohlcv(t: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.standard_normal(t) * 0.01))
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-02 09:30", periods=t, freq="1min"),
                         "Open": close, "High": close * 1.01, "Low": close * 0.99, "Close": close,
                         "Volume": rng.integers(100, 10_000, t), "regime": np.arange(t) % 2})


def test_time_label_price_and_numeric_columns_are_detected():
    df = _ohlcv()
    assert detect_timestamp_column(df) == "timestamp"
    text = pd.DataFrame({"when": df["timestamp"].astype(str), "x": np.arange(30.0)})
    assert detect_timestamp_column(text) == "when"
    assert detect_timestamp_column(pd.DataFrame({"x": np.arange(5.0), "y": list("abcde")})) is None
    assert detect_label_column(df) == "regime"
    assert detect_price_columns(df) == {"price": "Close", "open": "Open", "high": "High", "low": "Low",
                                        "volume": "Volume"}
    mixed = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [True, False], "d": ["1", "2"]})
    assert numeric_columns(mixed) == ["a", "d"]


def test_feature_columns_are_the_chosen_ones_or_every_numeric_column_but_the_excluded():
    df = pd.DataFrame({"t": [1, 2], "a": [1.0, 2.0], "flag": [True, False], "note": ["x", "y"], "y": [0, 1]})
    assert feature_columns(df, exclude=("t", "y", "")) == ["a"]
    assert feature_columns(df, chosen=["y", "a"], exclude=("y",)) == ["y", "a"]
    assert feature_columns(pd.DataFrame(np.zeros((2, 3)))) == [0, 1, 2]   # a frame's own (integer) labels


def test_the_dataset_builder_a_raw_window_and_the_engine_choose_the_same_columns():
    # Text that is mostly numbers is a feature everywhere (its bad cells get reported, not the column dropped);
    # booleans and plain text are features nowhere.
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"time": np.arange(96), "a": rng.standard_normal(96), "flag": rng.random(96) > 0.5,
                       "b": [f"{v:.6f}" for v in rng.standard_normal(96)], "note": "x", "label": np.arange(96) % 3})
    ds = build_dataset(df, "t", holdout=0.0)
    assert ds.feature_names == ["a", "b"]
    cfg = DataConfig(timestamp_col="time", label_col="label")          # no recorded columns: the default choice
    np.testing.assert_array_equal(raw_features(df, cfg), ds.features)
    engine_cfg = small_config(input_dim=2)
    engine_cfg.data = cfg
    from_frame = ChronosDefragEngine(engine_cfg).fit(df).block_latents
    engine_cfg = small_config(input_dim=2)
    engine_cfg.data = cfg
    np.testing.assert_allclose(from_frame, ChronosDefragEngine(engine_cfg).fit(ds.features).block_latents, atol=1e-6)


def test_frame_values_name_an_absent_or_non_numeric_column():
    df = pd.DataFrame({"a": [1.0, None], "b": ["1", "x"]})
    np.testing.assert_array_equal(frame_values(df, ["a"]), [[1.0], [np.nan]])
    with pytest.raises(DataError, match=r"window lacks column\(s\) \['c'\]; the feature columns are \['a', 'c'\]"):
        frame_values(df, ["a", "c"], "window")
    with pytest.raises(DataError, match="window: feature column 'b' must be numeric"):
        frame_values(df, ["b"], "window")


@pytest.mark.parametrize("names, want", [
    (["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"],
     {"price": "Adj Close", "open": "Open", "high": "High", "low": "Low", "volume": "Volume"}),
    (["date", "open", "high", "low", "close", "adj_close", "vol"],
     {"price": "adj_close", "open": "open", "high": "high", "low": "low", "volume": "vol"}),
    (["DATE", "OPEN_PRICE", "HIGH_PRICE", "LOW_PRICE", "CLOSE_PRICE", "VOLUME"],
     {"price": "CLOSE_PRICE", "open": "OPEN_PRICE", "high": "HIGH_PRICE", "low": "LOW_PRICE", "volume": "VOLUME"}),
    (["<DATE>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>"],            # MetaTrader export
     {"price": "<CLOSE>", "open": "<OPEN>", "high": "<HIGH>", "low": "<LOW>", "volume": "<TICKVOL>"}),
    (["index", "AAPL.Open", "AAPL.High", "AAPL.Low", "AAPL.Close", "AAPL.Volume", "AAPL.Adjusted"],  # quantmod
     {"price": "AAPL.Adjusted", "open": "AAPL.Open", "high": "AAPL.High", "low": "AAPL.Low", "volume": "AAPL.Volume"}),
    (["t", "o", "h", "l", "c", "v"], {"price": "c", "open": "o", "high": "h", "low": "l", "volume": "v"}),
    (["time", "Adj. Close", "Close"], {"price": "Adj. Close"}),
    (["when", "Last Price", "Volume USD"], {"price": "Last Price", "volume": "Volume USD"}),
    (["when", "open_interest", "below", "flow", "hv"], {}),          # words that only contain a role's name
    (["t", "h", "v", "x"], {}),                                      # single letters only as a full bar set
])
def test_market_columns_are_detected_in_any_case_and_common_variants(names, want):
    df = pd.DataFrame({n: np.arange(1.0, 4.0) for n in names})
    assert detect_price_columns(df) == want
    closes = {"Close", "close", "AAPL.Close"}             # the unadjusted close next to an adjusted one
    assert set(market_columns(df)) == set(want.values()) | (closes & set(names))


def test_market_columns_lists_every_price_level_and_skips_text():
    df = pd.DataFrame({"Date": ["2024-01-02"] * 3, "Close": [1.0, 2, 3], "Adj Close": [0.9, 1.9, 2.9],
                       "Open": ["a", "b", "c"], "vix": [20.0, 21, 19]})
    assert market_columns(df) == ["Close", "Adj Close"]   # text "Open" is no price; vix is no market column
    assert detect_price_columns(df) == {"price": "Adj Close"}
