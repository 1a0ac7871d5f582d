"""Timestamp handling: offsets and naive times, integer ticks beyond 2**53, and the types predict_live accepts."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import torch

from chronoslib.data import build_dataset
from chronoslib.errors import DataError, TimestampError


def _frame(ts):
    n = len(ts)
    return pd.DataFrame({"ts": ts, "a": np.arange(n, dtype=float), "b": np.ones(n)})


@pytest.mark.parametrize("ts, row", [
    (["2024-01-01T00:00:00+00:00", "2024-01-01T01:00:00+02:00", "2024-01-01 03:00"], 2),
    (["2024-01-01 00:00", "2024-01-01 00:30", "2024-01-01T01:00:00+02:00"], 2),
    (["2024-01-01 00:00", "2024-01-01 01:00:00Z", "2024-01-01 02:00"], 1),
])
def test_offsets_next_to_naive_times_name_column_and_row(ts, row):
    with pytest.raises(TimestampError, match=rf"column 'ts' mixes .* row {row} "):
        build_dataset(_frame(ts), "x", timestamp_col="ts")


def test_different_offsets_are_converted_to_utc():
    ds = build_dataset(_frame(["2024-01-01T00:00:00+00:00", "2024-01-01T03:00:00+02:00"]), "x", timestamp_col="ts")
    assert list(ds.timestamps) == [np.datetime64("2024-01-01T00:00"), np.datetime64("2024-01-01T01:00")]


def test_integer_ticks_beyond_2_pow_53_are_refused_by_name():
    ts = pd.Series([2 ** 53 - 1, 2 ** 53, 2 ** 53 + 1], dtype="int64")
    with pytest.raises(TimestampError, match=r"beyond 2\*\*53 \(first at row 2"):
        build_dataset(_frame(ts), "x", timestamp_col="ts")


@pytest.mark.parametrize("ts", [np.datetime64("2024-01-01"), pd.Timestamp("2024-01-01"), "2024-01-01", "700",
                                dt.datetime(2024, 1, 1), True, 1 + 2j, [700, 701], torch.tensor([1.0, 2.0]),
                                2 ** 60])
def test_predict_live_refuses_non_tick_timestamps(small_engine, ts):
    eng, x = small_engine
    before = eng.predict_live(x[:16]).alpha_prediction
    with pytest.raises(DataError, match="timestamp"):
        eng.predict_live(x[:16], ts)
    assert torch.equal(before, eng.predict_live(x[:16]).alpha_prediction)


@pytest.mark.parametrize("ts", [700, 700.0, np.int64(700), np.float32(700), torch.tensor(700.0), np.array(700)])
def test_predict_live_accepts_numeric_ticks(small_engine, ts):
    eng, x = small_engine
    a = eng.predict_live(x[:16], ts)
    b = eng.predict_live(x[:16], 700.0)
    assert torch.equal(a.alpha_prediction, b.alpha_prediction)
