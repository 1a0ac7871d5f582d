"""Data layer: reading CSV / Parquet, a corpus of bad files with precise errors, NaN policy, feature
engineering against pandas as an oracle, the time split, the samples, and the live-window recipe."""

import io
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from chronoslib import ChronosDefragEngine, DataError, NotEnoughBlocksError
from chronoslib.cli import main as cli_main
from chronoslib.columns import detect_timestamp_column
from chronoslib.data import SAMPLES, build_dataset, load_for_training, load_sample
from chronoslib.errors import (
    BadValuesError,
    ColumnError,
    DelimiterError,
    EmptyFileError,
    FileTooLargeError,
    NestedColumnError,
    NoFeaturesError,
    TimestampError,
    UnreadableFileError,
)
from chronoslib.features import TRANSFORMS, live_window, source_columns, warmup_ticks
from chronoslib.readers import read_table
from tests.conftest import small_config


def _ohlcv(t: int = 400, seed: int = 0) -> pd.DataFrame:
    """A random-walk OHLCV table with minute timestamps and a two-state volatility label."""
    rng = np.random.default_rng(seed)
    state = (np.arange(t) // 100) % 2
    r = rng.standard_normal(t) * np.where(state == 1, 0.02, 0.005)
    close = 100 * np.exp(np.cumsum(r))
    high = close * np.exp(np.abs(rng.standard_normal(t)) * 0.003)
    low = close * np.exp(-np.abs(rng.standard_normal(t)) * 0.003)
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-02 09:30", periods=t, freq="1min"),
                         "Open": close, "High": high, "Low": low, "Close": close,
                         "Volume": rng.integers(100, 10_000, t), "regime": np.where(state == 1, "wild", "calm")})


def _csv(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _bytes(tmp_path, name: str, data: bytes) -> str:
    (tmp_path / name).write_bytes(data)
    return str(tmp_path / name)


def _good_csv(rows: int = 80) -> str:
    """timestamp (one per minute from 09:30), a = row / 2, b = 2 * row + 1."""
    ts = pd.date_range("2024-01-02 09:30", periods=rows, freq="1min").strftime("%Y-%m-%d %H:%M")
    return "timestamp,a,b\n" + "".join(f"{t},{i * 0.5},{i * 2 + 1}\n" for i, t in enumerate(ts))


# ------------------------------------------------------------------------------------------------ reading
def test_csv_path_and_uploaded_file_object_read_the_same(tmp_path):
    path = _csv(tmp_path, "ok.csv", _good_csv())
    a = read_table(path)
    up = io.BytesIO(_good_csv().encode())
    up.name = "upload.csv"
    b = read_table(up)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["timestamp", "a", "b"] and len(a) == 80


def test_semicolon_tab_and_pipe_delimiters_are_detected(tmp_path):
    for sep in (";", "\t", "|"):
        df = read_table(_csv(tmp_path, "x.csv", _good_csv().replace(",", sep)))
        assert list(df.columns) == ["timestamp", "a", "b"], sep
        assert df["b"].tolist()[:3] == [1, 3, 5]


def test_parquet_is_read_by_extension_and_by_content(tmp_path):
    df = _ohlcv(50)
    df.to_parquet(tmp_path / "x.parquet")
    got = read_table(str(tmp_path / "x.parquet"))
    pd.testing.assert_frame_equal(got, df, check_dtype=False)
    raw = (tmp_path / "x.parquet").read_bytes()
    assert read_table(raw, name="no_extension").shape == df.shape  # sniffed from the PAR1 magic
    # A DatetimeIndex saved by pandas comes back as a column.
    df.set_index("timestamp").to_parquet(tmp_path / "idx.parquet")
    assert detect_timestamp_column(read_table(str(tmp_path / "idx.parquet"))) == "timestamp"


def test_size_and_row_limits_point_to_the_command_line(tmp_path):
    path = _csv(tmp_path, "big.csv", _good_csv(50))
    with pytest.raises(FileTooLargeError, match="MB.*command line.*python -m chronoslib train"):
        read_table(path, max_bytes=100)
    with pytest.raises(FileTooLargeError, match="more than 10 rows.*command line"):
        read_table(path, max_rows=10)
    pd.DataFrame({"a": np.arange(30.0)}).to_parquet(tmp_path / "big.parquet")
    with pytest.raises(FileTooLargeError, match="30 rows"):
        read_table(str(tmp_path / "big.parquet"), max_rows=10)
    assert len(read_table(path, max_bytes=None, max_rows=None)) == 50


# ------------------------------------------------------------------------------------------------ bad-file corpus
def _nested_parquet(tmp_path) -> str:
    table = pa.table({"t": [1, 2, 3], "quote": [{"bid": 1.0, "ask": 1.1}] * 3, "ok": [1.0, 2.0, 3.0]})
    pq.write_table(table, tmp_path / "nested.parquet")
    return str(tmp_path / "nested.parquet")


# name -> (file writer, expected error type, words the message must contain)
CORPUS = {
    "empty file": (lambda p: _csv(p, "empty.csv", ""), EmptyFileError, ["empty"]),
    "blank lines only": (lambda p: _csv(p, "blank.csv", "\n\n  \n"), EmptyFileError, ["empty"]),
    "header only": (lambda p: _csv(p, "header.csv", "timestamp,a,b\n"), EmptyFileError,
                    ["header", "no data rows"]),
    "one column (timestamps only)": (lambda p: _csv(p, "one.csv", "timestamp\n2024-01-01\n2024-01-02\n"),
                                     NoFeaturesError, ["no numeric feature column", "timestamp"]),
    "all non-numeric": (lambda p: _csv(p, "words.csv", "name,colour\nx,red\ny,blue\nz,green\n"),
                        NoFeaturesError, ["no numeric feature column", "name", "colour"]),
    "mixed types": (lambda p: _csv(p, "mixed.csv", _good_csv().replace(",3.0,13\n", ",oops,13\n")),
                    BadValuesError, ["column 'a'", "non-numeric", "row(s) 6", "oops", "ffill"]),
    "NaN cells": (lambda p: _csv(p, "nan.csv",
                                 _good_csv().replace(",1.5,7\n", ",,7\n").replace(",2.0,9\n", ",2.0,NaN\n")),
                  BadValuesError, ["column 'a'", "NaN", "row(s) 3", "column 'b'", "row(s) 4"]),
    "inf cells": (lambda p: _csv(p, "inf.csv", _good_csv().replace(",2.5,11", ",inf,11")),
                  BadValuesError, ["column 'a'", "inf", "row(s) 5"]),
    "duplicated timestamps": (lambda p: _csv(p, "dup.csv", _good_csv().replace("09:33", "09:32")),
                              TimestampError, ["duplicated", "2024-01-02T09:32:00", "rows 2, 3", "1 duplicated"]),
    "unsorted timestamps": (lambda p: _csv(p, "unsorted.csv", _good_csv().replace("09:33", "08:45")),
                            TimestampError,
                            ["not in increasing order", "row 3 (2024-01-02T08:45:00)", "row 2", "sort"]),
    "unparseable timestamps": (lambda p: _csv(p, "badts.csv", _good_csv().replace("2024-01-02 09:35", "soon")),
                               TimestampError, ["not dates", "row(s) 5", "soon"]),
    "fewer rows than 4 blocks": (lambda p: _csv(p, "short.csv", _good_csv(40)), NotEnoughBlocksError,
                                 ["Need at least 4 blocks", "block_len=16"]),
    "wrong delimiter (spaces)": (lambda p: _csv(p, "spaces.csv", "a b c\n1 2 3\n4 5 6\n"), DelimiterError,
                                 ["only one column", "spaces", "comma"]),
    "nested Parquet": (_nested_parquet, NestedColumnError, ["quote", "struct", "flatten"]),
    "not really Parquet": (lambda p: _csv(p, "fake.parquet", "a,b\n1,2\n"), UnreadableFileError, ["PAR1"]),
    "binary garbage": (lambda p: _bytes(p, "junk.csv", bytes(range(256)) * 4), UnreadableFileError,
                       ["junk.csv", "binary"]),
}


def _load(path: str):
    """The full path a user takes: read, then build with a 16-tick block check and default policies."""
    return build_dataset(read_table(path), os.path.basename(path), holdout=0.2, block_len=16)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16 * 30, 6)).astype(np.float32)
    eng = ChronosDefragEngine(small_config(epochs=2)).fit(x)
    window = x[-16:]
    before = eng.predict_live(window)
    return eng, window, before


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_file_gets_a_named_value_error_and_the_engine_is_untouched(case, tmp_path, fitted):
    writer, err, words = CORPUS[case]
    path = writer(tmp_path)
    with pytest.raises(err) as info:
        _load(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DataError)
    for w in words:
        assert w in str(info.value), f"{case}: {w!r} not in {info.value}"
    eng, window, before = fitted
    after = eng.predict_live(window)
    assert float(after.alpha_prediction) == float(before.alpha_prediction)
    assert after.neighbour_indices == before.neighbour_indices


@pytest.mark.parametrize("case", ["empty file", "header only", "mixed types", "unsorted timestamps",
                                  "wrong delimiter (spaces)", "nested Parquet"])
def test_bad_file_on_the_command_line_is_one_error_line_and_status_2(case, tmp_path, capsys):
    path = CORPUS[case][0](tmp_path)
    out = tmp_path / "m.pt"
    assert cli_main(["train", path, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0]
    assert not out.exists()


def test_forced_delimiter_that_does_not_match_is_named(tmp_path):
    path = _csv(tmp_path, "semi.csv", _good_csv().replace(",", ";"))
    with pytest.raises(DelimiterError, match="';'"):
        read_table(path, delimiter=",")


def test_wrong_feature_count_and_window_length_at_predict_live(fitted):
    eng, window, before = fitted
    with pytest.raises(DataError, match=r"input_dim=6.*\(1, 16, 5\)"):
        eng.predict_live(window[:, :5])
    with pytest.raises(DataError, match=r"block_len=16.*\(1, 15, 6\)"):
        eng.predict_live(window[:15])
    with pytest.raises(DataError, match="NaN"):
        bad = window.copy()
        bad[3, 2] = np.nan
        eng.predict_live(bad)
    after = eng.predict_live(window)
    assert float(after.alpha_prediction) == float(before.alpha_prediction)
    assert after.regime_confidence == before.regime_confidence


def test_named_columns_that_do_not_exist_list_the_available_ones():
    df = _ohlcv(100)
    with pytest.raises(ColumnError, match=r"feature column 'close' not found.*'Close'"):
        build_dataset(df, "x", feature_cols=["close"])
    with pytest.raises(ColumnError, match="cannot be features"):
        build_dataset(df, "x", feature_cols=["Close", "timestamp"])
    with pytest.raises(ColumnError, match=r"need a volume column"):
        build_dataset(df.drop(columns=["Volume"]), "x", transforms=["log_volume"])
    with pytest.raises(DataError, match="unknown feature transform"):
        build_dataset(df, "x", transforms=["log_retrun"])


def test_non_positive_prices_are_refused_for_log_transforms():
    df = _ohlcv(100)
    df.loc[7, "Close"] = 0.0
    with pytest.raises(BadValuesError, match=r"price column 'Close'.*row\(s\) \[7\]"):
        build_dataset(df, "x", transforms=["log_return"])


# ------------------------------------------------------------------------------------------------ NaN policy
def test_ffill_fills_like_pandas_counts_cells_and_drops_unfillable_leading_rows():
    df = _ohlcv(200)[["timestamp", "Close", "Volume"]].astype({"Volume": float})
    df.loc[[0, 1], "Close"] = np.nan
    df.loc[[10, 11, 12], "Close"] = np.nan
    df.loc[50, "Volume"] = np.inf
    ds = build_dataset(df, "x", nan_policy="ffill", holdout=0.0)
    oracle = df[["Close", "Volume"]].replace(np.inf, np.nan).ffill().iloc[2:].to_numpy(np.float32)
    np.testing.assert_array_equal(ds.features, oracle)
    assert ds.filled_cells == 4 and ds.row_offset == 2
    assert ds.timestamps[0] == np.datetime64(df["timestamp"].iloc[2])
    assert any("forward-filled 4" in n and "dropped 2 leading" in n for n in ds.notes)
    assert np.isfinite(ds.features).all() and ds.features.dtype == np.float32


def test_ffill_treats_non_numeric_cells_as_missing():
    df = pd.DataFrame({"a": ["1.0", "2.0", "?", "4.0"] * 10, "b": np.arange(40.0)})
    with pytest.raises(BadValuesError, match=r"column 'a' has 10 non-numeric cell\(s\) at row\(s\) 2, 6, 10"):
        build_dataset(df, "x", timestamp_col="")
    ds = build_dataset(df, "x", timestamp_col="", nan_policy="ffill", holdout=0.0)
    assert ds.feature_names == ["a", "b"]
    assert ds.features[2, 0] == 2.0 and ds.features[3, 0] == 4.0 and ds.filled_cells == 10
    assert any("non-numeric" in n for n in ds.notes)


# ------------------------------------------------------------------------------------------------ features
def test_transforms_match_an_independent_pandas_computation():
    df = _ohlcv(300)
    ds = build_dataset(df, "x", transforms=list(TRANSFORMS), vol_window=10, holdout=0.0)
    assert ds.feature_names == list(TRANSFORMS) and ds.row_offset == 10 == warmup_ticks(list(TRANSFORMS), 10)
    assert ds.config.price_col == "Close" and ds.config.volume_col == "Volume"  # detected by name
    lr = np.log(df["Close"]).diff()
    oracle = pd.DataFrame({"log_return": lr, "abs_return": lr.abs(),
                           "hl_range": np.log(df["High"] / df["Low"]),
                           "log_volume": np.log1p(df["Volume"].astype(float)),
                           "rel_volume": np.log1p(df["Volume"] / df["Volume"].rolling(10).mean()) - np.log(2),
                           "rolling_vol": lr.rolling(10).std()}).iloc[10:].to_numpy()
    np.testing.assert_allclose(ds.features, oracle, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ds.prices, df["Close"].iloc[10:].to_numpy(), rtol=1e-6)
    assert ds.labels.tolist()[:3] == [0, 0, 0] and ds.label_names == ["calm", "wild"]


def test_engineered_features_are_causal():
    df = _ohlcv(300)
    a = build_dataset(df, "x", transforms=["log_return", "rolling_vol", "hl_range"], holdout=0.0).features
    df2 = df.copy()
    df2.loc[200:, ["Close", "High", "Low"]] *= 3.0   # change the future only
    b = build_dataset(df2, "x", transforms=["log_return", "rolling_vol", "hl_range"], holdout=0.0).features
    cut = 200 - 20                                   # feature row of tick 199 (warm-up 20)
    np.testing.assert_array_equal(a[:cut], b[:cut])
    assert not np.allclose(a[cut:cut + 5], b[cut:cut + 5])


def test_raw_passthrough_keeps_values_unchanged_and_excludes_timestamp_and_label():
    df = _ohlcv(120)
    ds = build_dataset(df, "x")
    assert ds.feature_names == ["Open", "High", "Low", "Close", "Volume"]
    np.testing.assert_array_equal(ds.features, df[ds.feature_names].to_numpy(np.float32))
    assert ds.config.label_col == "regime" and ds.config.timestamp_col == "timestamp"
    assert ds.config.transforms == [] and ds.row_offset == 0


# ------------------------------------------------------------------------------------------------ split, order
def test_split_is_by_time_and_never_shuffled():
    df = _ohlcv(250)
    ds = build_dataset(df, "x", holdout=0.2)
    assert ds.split == 200
    np.testing.assert_array_equal(ds.train, df[ds.feature_names].to_numpy(np.float32)[:200])
    assert ds.timestamps[: ds.split].max() < ds.timestamps[ds.split:].min()
    with pytest.raises(DataError, match="holdout"):
        build_dataset(df, "x", holdout=1.0)


def test_sort_true_sorts_disordered_rows_and_says_so():
    df = _ohlcv(100)
    shuffled = df.iloc[np.random.default_rng(1).permutation(100)].reset_index(drop=True)
    ds = build_dataset(shuffled, "x", sort=True, holdout=0.0)
    np.testing.assert_array_equal(ds.features, df[ds.feature_names].to_numpy(np.float32))
    assert any("sorted rows" in n for n in ds.notes)


# ------------------------------------------------------------------------------------------------ samples, recipe
def test_samples_load_with_the_synthetic_set_first():
    names = list(SAMPLES)
    assert names[0] == "Synthetic regimes (labelled)"
    syn = load_sample(names[0])
    raw = pd.read_csv(os.path.join("sample_data", "synthetic_regimes.csv"))
    np.testing.assert_array_equal(syn.features, raw[[f"f{i}" for i in range(6)]].to_numpy(np.float32))
    np.testing.assert_array_equal(syn.labels, raw["regime"].to_numpy())
    assert syn.split == round(len(raw) * 0.8)
    wti = load_sample(names[1])
    assert wti.feature_names == ["log_return", "abs_return", "rolling_vol"]
    assert wti.features.shape[0] > 8000 and np.isfinite(wti.features).all() and wti.labels is None
    assert str(wti.timestamps[0])[:10] == "1986-01-30" and wti.prices[0] > 0
    with pytest.raises(DataError, match="unknown sample"):
        load_sample("nope")


def test_load_for_training_configures_cfg_and_checks_blocks(tmp_path):
    path = str(tmp_path / "p.csv")
    _ohlcv(400).to_csv(path, index=False)
    cfg = small_config()
    ds, cfg = load_for_training(path, cfg, transforms=["log_return", "hl_range"], holdout=0.1)
    assert cfg.encoder.input_dim == 2 and cfg.data.transforms == ["log_return", "hl_range"]
    assert cfg.data.price_col == "Close" and cfg.data.high_col == "High" and cfg.data.label_col == "regime"
    cfg.encoder.block_len = 128
    with pytest.raises(NotEnoughBlocksError, match="359 training tick"):
        load_for_training(path, cfg, transforms=["log_return"], holdout=0.1)


@pytest.fixture(scope="module")
def recipe_engine():
    df = _ohlcv(16 * 24 + 20, seed=3)
    ds = build_dataset(df, "ohlcv", transforms=["log_return", "rolling_vol", "log_volume"],
                       feature_cols=["Open"], holdout=0.25)
    cfg = ds.configure(small_config(input_dim=1, epochs=2))
    cfg.data.normalize = "robust"
    return ChronosDefragEngine(cfg).fit(ds.train), ds, df


def test_normaliser_is_fitted_on_the_training_span_only(recipe_engine):
    eng, ds, _ = recipe_engine
    n = (ds.split // 16) * 16
    med = np.median(ds.train[:n].astype(np.float64), axis=0)
    np.testing.assert_allclose(eng.normaliser.centre, med, rtol=1e-5)
    assert not np.allclose(eng.normaliser.centre, np.median(ds.features, axis=0), rtol=1e-3)


def test_raw_live_window_is_engineered_like_training_and_survives_save_load(recipe_engine, tmp_path):
    eng, ds, df = recipe_engine
    assert source_columns(eng.cfg.data) == ["Close", "Volume", "Open"]
    end = ds.row_offset + ds.split + 40                        # a held-out tick, in frame rows
    raw = df.iloc[: end]
    win = live_window(raw, eng.cfg.data, 16)                   # uses the last 16 + 20 raw rows
    np.testing.assert_allclose(win, ds.features[end - ds.row_offset - 16: end - ds.row_offset], rtol=1e-6)
    a = eng.predict_live_raw(raw)
    b = eng.predict_live(win)
    assert float(a.alpha_prediction) == float(b.alpha_prediction)
    path = str(tmp_path / "m.pt")
    eng.save(path)
    back = ChronosDefragEngine.load(path)
    assert back.cfg.data.transforms == ["log_return", "rolling_vol", "log_volume"]
    assert back.cfg.data.feature_names == ds.feature_names
    c = back.predict_live_raw(raw[["Close", "Volume", "Open"]].to_numpy())   # array in source_columns order
    assert float(c.alpha_prediction) == pytest.approx(float(a.alpha_prediction), abs=1e-6)
    np.testing.assert_allclose(eng.embed(df.iloc[ds.row_offset - 20:]), eng.embed(ds.features), atol=1e-5)
    with pytest.raises(DataError, match="needs 36"):
        eng.predict_live_raw(raw.iloc[-30:])
    with pytest.raises(DataError, match=r"lacks column\(s\) \['Volume'\]"):
        eng.predict_live_raw(raw.drop(columns=["Volume"]))


def test_readme_bring_your_own_data_example_runs(monkeypatch, capsys):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    section = text[text.index("## Bring your own data"):]
    code = section[section.index("```python\n") + 10:]
    code = code[:code.index("```")]
    monkeypatch.chdir(root)
    code = code.replace("ds.configure(DefragConfig())", "ds.configure(DefragConfig())\n"
                        "cfg.optim.encoder_epochs = 1; cfg.optim.predictor_epochs = 1")
    exec(compile(code, "README-data", "exec"), {})
    out = capsys.readouterr().out
    assert "(8301, 3) ['log_return', 'abs_return', 'rolling_vol'] train ticks: 6641" in out
    assert "confidence:" in out


def test_semicolon_csv_with_decimal_commas_reads_as_numbers(tmp_path):
    path = _csv(tmp_path, "eu.csv", "datum;kurs;menge\n2024-01-02;1,5;10\n2024-01-03;2,25;11\n2024-01-04;-0,5;12\n")
    df = read_table(path)
    assert df["kurs"].tolist() == [1.5, 2.25, -0.5] and df["menge"].tolist() == [10, 11, 12]
    assert detect_timestamp_column(df) == "datum"


def test_gzipped_csv_reads_from_a_path_and_from_bytes(tmp_path):
    import gzip

    blob = gzip.compress(_good_csv().encode())
    (tmp_path / "x.csv.gz").write_bytes(blob)
    a = read_table(str(tmp_path / "x.csv.gz"))
    b = read_table(blob, name="upload.csv.gz")
    pd.testing.assert_frame_equal(a, b)
    assert a.shape == (80, 3)


# ------------------------------------------------------------------------------------------------ larger corpus
def _pq(p, name, table):
    pq.write_table(table, p / name)
    return str(p / name)


_LINES = _good_csv().splitlines()
CORPUS.update({
    "UTF-8 BOM before the header": (lambda p: _bytes(p, "bom.csv", b"\xef\xbb\xbf" + _good_csv().replace(
        "2024-01-02 09:35", "soon").encode()), TimestampError, ["'timestamp'", "row(s) 5", "soon"]),
    "duplicate column names": (lambda p: _csv(p, "dupcol.csv", _good_csv().replace("timestamp,a,b", "timestamp,a,a")),
                               ColumnError, ["['a']", "more than once"]),
    "number too large for float64": (lambda p: _csv(p, "huge.csv", _good_csv().replace(",2.5,11", ",1e400,11")),
                                     BadValuesError, ["column 'a'", "inf", "row(s) 5"]),
    "'nan' strings": (lambda p: _csv(p, "nanstr.csv", _good_csv().replace(",2.5,11", ",nan,11")),
                      BadValuesError, ["column 'a'", "NaN", "row(s) 5"]),
    "word in an int column": (lambda p: _csv(p, "mixis.csv", _good_csv().replace(",11\n", ",eleven\n")),
                              BadValuesError, ["column 'b'", "row(s) 5", "eleven"]),
    "unicode header": (lambda p: _csv(p, "uni.csv", _good_csv().replace("timestamp,a,b", "timestamp,α,b")
                                      .replace(",2.5,11", ",x,11")), BadValuesError, ["column 'α'", "row(s) 5"]),
    "trailing delimiter": (lambda p: _csv(p, "trail.csv", "\n".join(r + "," for r in _LINES) + "\n"),
                           BadValuesError, ["Unnamed: 3", "NaN", "80 in all"]),
    "quoted newline in a cell": (lambda p: _csv(p, "qnl.csv", _good_csv().replace(",2.5,11", ',"2.\n5",11')),
                                 BadValuesError, ["column 'a'", "row(s) 5"]),
    "header with 20,000 columns": (lambda p: _csv(p, "wide.csv", ",".join(f"c{i}" for i in range(20_000)) + "\n1\n"),
                                   FileTooLargeError, ["more than the 10,000"]),
    "offset next to naive times": (lambda p: _csv(p, "mtz.csv", _good_csv().replace(
        "2024-01-02 09:35", "2024-01-02 09:35+02:00")), TimestampError, ["'timestamp'", "row 5", "offset"]),
    "integer ticks beyond 2**53": (lambda p: _csv(p, "big53.csv", "ts,a\n" + "".join(
        f"{2 ** 53 + i},{i}\n" for i in range(80))), TimestampError, ["'ts'", "2**53", "row 1"]),
    "Parquet with only a timestamp": (lambda p: _pq(p, "onlyts.parquet", pa.table(
        {"timestamp": pd.date_range("2024", periods=80, freq="1min")})), NoFeaturesError, ["no numeric feature"]),
    "Parquet NaN": (lambda p: _pq(p, "pnan.parquet", pa.table({"a": [1.0, float("nan")] * 40,
                                                                "b": list(range(80))})),
                    BadValuesError, ["column 'a'", "NaN"]),
    "Parquet list column": (lambda p: _pq(p, "plist.parquet", pa.table({"a": [[1.0]] * 80, "b": list(range(80))})),
                            NestedColumnError, ["'a (list"]),
    "Parquet without rows": (lambda p: _pq(p, "pempty.parquet", pa.table({"a": pa.array([], pa.float64())})),
                             EmptyFileError, ["no data rows"]),
})

_NEW_CASES = [c for c in CORPUS if c not in list(CORPUS)[:17]]


@pytest.mark.parametrize("case", _NEW_CASES)
def test_more_bad_files_get_named_errors_and_the_engine_is_untouched(case, tmp_path, fitted):
    test_bad_file_gets_a_named_value_error_and_the_engine_is_untouched(case, tmp_path, fitted)


_RNG = np.random.default_rng(5)
# name -> (fit input, words the DataError must contain); each leaves a fitted engine predicting identically
FIT_CORPUS = {
    "1-D array": (np.zeros(16 * 8), ["2-D"]),
    "3-D array": (np.zeros((4, 16, 6)), ["2-D"]),
    "0 rows": (np.zeros((0, 6)), ["Need at least 4 blocks"]),
    "object array": (np.array([[None] * 6] * 64, dtype=object), ["dtype object"]),
    "complex dtype": (np.ones((64, 6), dtype=complex), ["real numeric", "complex"]),
    "bool dtype": (np.ones((64, 6), dtype=bool), ["real numeric", "bool"]),
    "strings": (np.full((64, 6), "1.0"), ["real numeric", "<U3"]),
    "ragged list": ([[1.0] * 6, [1.0] * 5], ["rectangular"]),
    "wrong feature count": (np.zeros((64, 5)), ["5 features", "input_dim is 6"]),
    "NaN cell": (np.where(np.arange(64 * 6).reshape(64, 6) == 100, np.nan, 0.0), ["row 16", "column 4"]),
    "float32 overflow": (np.where(np.arange(64 * 6).reshape(64, 6) == 100, 1e39, 0.0), ["float32", "row 16"]),
    "complex tensor": (torch.ones(64, 6, dtype=torch.complex64), ["real numeric", "complex"]),
    "bool tensor": (torch.ones(64, 6, dtype=torch.bool), ["real numeric", "bool"]),
    "inf in a float16 tensor": (torch.full((64, 6), float("inf"), dtype=torch.float16), ["NaN/inf"]),
}
LIVE_CORPUS = {
    "wrong length": (np.zeros((15, 6), np.float32), ["block_len=16"]),
    "wrong width": (np.zeros((16, 5), np.float32), ["input_dim=6"]),
    "1-D": (np.zeros(96, np.float32), ["shape"]),
    "NaN": (np.full((16, 6), np.nan, np.float32), ["NaN or inf"]),
    "inf": (np.full((16, 6), np.inf, np.float32), ["NaN or inf"]),
    "huge finite": (np.full((16, 6), 1e38, np.float32), ["non-finite latent"]),
    "strings": (np.full((16, 6), "x"), ["real numeric"]),
    "object": (np.array([[object()] * 6] * 16, dtype=object), ["dtype object"]),
    "complex": (np.ones((16, 6), complex), ["complex"]),
    "bool tensor": (torch.ones(16, 6, dtype=torch.bool), ["bool"]),
    "ragged list of lists": ([[0.0] * 6] * 15 + [[0.0] * 5], ["rectangular"]),
    "list of lists with a None": ([[0.0] * 6] * 15 + [[None] * 6], ["dtype object"]),
}


@pytest.mark.parametrize("call,case", [("fit", c) for c in FIT_CORPUS] + [("predict_live", c) for c in LIVE_CORPUS])
def test_bad_fit_input_or_live_window_is_a_named_data_error_and_the_fitted_engine_is_untouched(call, case, fitted):
    bad, words = (FIT_CORPUS if call == "fit" else LIVE_CORPUS)[case]
    eng, window, before = fitted
    with pytest.raises(DataError) as info:
        getattr(eng, call)(bad)
    for w in words:
        assert w in str(info.value), f"{call} {case}: {w!r} not in {info.value}"
    after = eng.predict_live(window)
    assert torch.equal(after.alpha_prediction, before.alpha_prediction)
    assert after.neighbour_indices == before.neighbour_indices



def test_a_row_with_more_fields_than_the_header_is_refused_not_turned_into_an_index():
    # pandas would make the surplus fields index levels: minutes for a 2,000,000-field line.
    text = "a,b\n" + ",".join(["1"] * 200_000) + "\n"
    with pytest.raises(UnreadableFileError, match="more fields than the header"):
        read_table(text.encode(), name="wide.csv")


def test_rows_ending_with_a_delimiter_keep_their_columns_in_place():
    # Without index_col=False pandas took the first column as the index and shifted every column left by one.
    df = read_table(b"a,b\n1,2,\n3,4,\n", name="trailing.csv")
    assert list(df.columns) == ["a", "b"] and df["a"].tolist() == [1, 3] and df["b"].tolist() == [2, 4]


def test_with_chart_price_attaches_a_price_named_column_that_no_transform_reads():
    from chronoslib.data import with_chart_price

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.standard_normal(50), "b": rng.standard_normal(50),
                       "close": 100 + np.cumsum(rng.standard_normal(50))})
    ds = build_dataset(df, "x", timestamp_col="", feature_cols=["a", "b"], holdout=0.0)
    assert ds.prices is None
    charted = with_chart_price(ds)
    np.testing.assert_allclose(charted.prices, df["close"].to_numpy())
    assert charted.config.price_col == "close" and np.array_equal(charted.features, ds.features)
    assert with_chart_price(charted) is charted                    # it has a price already
    plain = build_dataset(df.drop(columns=["close"]), "y", timestamp_col="", holdout=0.0)
    assert with_chart_price(plain) is plain                        # nothing named like a price
