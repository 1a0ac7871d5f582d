"""Data page through Streamlit's AppTest: the default sample, switching samples, uploads good and bad."""

import io
import os

import numpy as np
import pandas as pd

os.environ.setdefault("CHRONOS_FAST_UI", "1")

from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages.lib import session  # noqa: E402
from chronoslib.data import SAMPLES, load_sample  # noqa: E402
from tests.ohlcv_support import make_ohlcv  # noqa: E402

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()  # opens on the Overview
    at.switch_page("app_pages/data.py").run()
    assert not at.exception
    return at


def _upload(at: AppTest, name: str, content: bytes) -> None:
    at.radio(key="dt_source").set_value("Upload a file").run()
    at.file_uploader(key="dt_upload").set_value((name, content, "application/octet-stream")).run()
    assert not at.exception


def _csv(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n, freq="h").astype(str),
                         "close": close.round(4), "volume": rng.integers(100, 1000, n),
                         "spread": rng.normal(0, 1, n).round(4), "state": rng.integers(0, 2, n)})


def test_data_page_opens_on_the_sample_with_metrics_and_the_held_out_chart():
    at = _app()
    ds = load_sample(session.DEFAULT_SAMPLE)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ticks"] == f"{len(ds.features):,}" and metrics["Features"] == str(ds.features.shape[1])
    assert metrics["Training ticks"] == f"{ds.split:,}" and metrics["Held out"] == f"{len(ds.features) - ds.split:,}"
    assert metrics["Ground-truth regimes"] == "3"
    fig = at.get("plotly_chart")[0].proto.spec
    assert '"held out (2,048 ticks)' in fig or "held out (2,048 ticks)" in fig
    assert not at.error


def test_loading_the_other_sample_replaces_the_active_dataset_and_warns_about_the_model():
    other = [n for n in SAMPLES if n != session.DEFAULT_SAMPLE][0]
    at = _app()
    at.selectbox(key="dt_sample").set_value(other)
    at.slider(key="dt_sample_holdout").set_value(30)
    at.button(key="dt_load_sample").click().run()
    assert not at.exception and not at.error
    ds = at.session_state[session.DATASET.key]
    ref = load_sample(other, holdout=0.3)
    assert ds.name == other and ds.split == ref.split and np.array_equal(ds.features, ref.features)
    assert f"Loaded the sample **{other}**" in _texts(at.success)
    if ds.features.shape[1] != 6:  # the shipped model has 6 inputs: the page and the sidebar say it does not fit
        assert "cannot run on this data" in _texts(at.warning)
        assert "Model and data do not match" in _texts(at.sidebar.warning)


def test_a_bad_upload_shows_the_data_layer_message_and_keeps_the_dataset():
    at = _app()
    before = at.session_state[session.DATASET.key]
    _upload(at, "spaces.csv", b"time price volume\n1 2 3\n4 5 6\n")
    assert "Upload refused" in _texts(at.error) and "separated by spaces" in _texts(at.error)
    _upload(at, "empty.csv", b"")
    assert "empty" in _texts(at.error)
    assert at.session_state[session.DATASET.key] is before


def test_an_upload_with_engineered_features_becomes_the_active_dataset():
    at = _app()
    df = _csv()
    _upload(at, "prices.csv", df.to_csv(index=False).encode())
    assert not at.error
    # Widget keys carry the table's token (a new table resets them): find them by prefix.
    keys = {w.key for w in at.get("multiselect")} | {w.key for w in at.get("selectbox")}
    feats_key = next(k for k in keys if k and k.startswith("dt_feats_"))
    trans_key = next(k for k in keys if k and k.startswith("dt_trans_"))
    ts_key = next(k for k in keys if k and k.startswith("dt_ts_"))
    label_key = next(k for k in keys if k and k.startswith("dt_label_"))
    assert at.selectbox(key=ts_key).value == "date"          # detected
    assert at.selectbox(key=label_key).value == "state"      # detected by name, never a feature
    # market data: the price level and raw volume are no features, the stationary set is preselected
    assert at.multiselect(key=feats_key).value == ["spread"]
    assert at.multiselect(key=trans_key).value == ["log_return", "abs_return", "rel_volume", "rolling_vol"]
    at.multiselect(key=feats_key).set_value(["spread"])
    at.multiselect(key=trans_key).set_value(["log_return", "log_volume"])
    at.button(key="dt_apply").click().run()
    assert not at.exception and not at.error
    ds = at.session_state[session.DATASET.key]
    assert ds.name == "prices.csv" and ds.feature_names == ["log_return", "log_volume", "spread"]
    # Independent computation of the first engineered row (row 1: log returns need one tick of history).
    assert ds.features[0, 0] == np.float32(np.log(df.close[1] / df.close[0]))
    assert ds.features[0, 1] == np.float32(np.log1p(df.volume[1]))
    assert ds.split == round(len(ds.features) * 0.8)
    assert "is now the active dataset" in _texts(at.success)
    assert "prices.csv" in "\n".join(str(c.value) for c in at.sidebar.caption)


def _key(at: AppTest, kind: str, prefix: str) -> str:
    return next(w.key for w in at.get(kind) if w.key and w.key.startswith(prefix))


def test_a_daily_ohlcv_upload_gets_stationary_defaults_and_never_a_raw_price_column():
    df, _ = make_ohlcv(2520, seed=0)                     # Date / Open / High / Low / Close / Adj Close / Volume
    at = _app()
    _upload(at, "spx.csv", df.to_csv(index=False).encode())
    assert not at.error
    feats, trans = _key(at, "multiselect", "dt_feats_"), _key(at, "multiselect", "dt_trans_")
    assert at.multiselect(key=feats).value == []         # no raw price level, no raw volume
    assert at.multiselect(key=trans).value == ["log_return", "abs_return", "hl_range", "rel_volume", "rolling_vol"]
    assert at.selectbox(key=_key(at, "selectbox", "dt_price_")).value == "Adj Close"
    assert "price levels and raw volume" in _texts(at.caption)
    assert "trend" not in _texts(at.warning)
    at.multiselect(key=feats).set_value(["Close", "Volume"]).run()      # a raw level chosen: warned before use
    assert "**Close**" in _texts(at.warning) and "**Volume**" in _texts(at.warning)
    assert "pseudo-timeline" in _texts(at.warning)
    at.multiselect(key=feats).set_value([]).run()
    at.button(key="dt_apply").click().run()
    assert not at.exception and not at.error
    ds = at.session_state[session.DATASET.key]
    assert ds.feature_names == ["log_return", "abs_return", "hl_range", "rel_volume", "rolling_vol"]
    assert not set(ds.feature_names) & set(df.columns) and ds.config.price_col == "Adj Close"
    assert "trend" not in _texts(at.warning) and "Only" not in _texts(at.warning)
    assert "Suggested block length: **21 ticks**" in _texts(at.caption) or \
        "Suggested block length: **22 ticks**" in _texts(at.caption)


def test_a_short_upload_is_offered_a_block_length_that_gives_fifty_blocks():
    df, _ = make_ohlcv(700, seed=1)                      # 700 days: 544 training rows, 24 blocks of a month
    at = _app()
    _upload(at, "short.csv", df.to_csv(index=False).encode())
    at.button(key="dt_apply").click().run()
    ds = at.session_state[session.DATASET.key]
    offered = ds.split // 50
    assert f"A block length of {offered} gives {ds.split // offered}" in _texts(at.warning)


def test_bad_cells_are_reported_and_forward_fill_is_an_explicit_choice():
    df = _csv(200)
    df.loc[37, "spread"] = np.nan
    at = _app()
    _upload(at, "holes.parquet", _parquet(df))
    keys = [w.key for w in at.get("radio")]
    at.button(key="dt_apply").click().run()
    assert not at.exception
    assert "spread" in _texts(at.error) and "37" in _texts(at.error)
    nan_key = next(k for k in keys if k and k.startswith("dt_nan_"))
    at.radio(key=nan_key).set_value("ffill")
    at.button(key="dt_apply").click().run()
    assert not at.error
    ds = at.session_state[session.DATASET.key]
    assert ds.name == "holes.parquet" and ds.filled_cells == 1
    assert any("fill" in n for n in ds.notes) and "fill" in _texts(at.info)


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def test_the_data_page_renders_the_sample_with_its_content_on_every_visit():
    at = _app()
    ds = load_sample(session.DEFAULT_SAMPLE)
    first = None
    for visit in range(2):   # the second visit is served from the page's caches: the same content
        if visit:
            at.switch_page("app_pages/overview.py").run()
            at.switch_page("app_pages/data.py").run()
        assert not at.exception and not at.error
        assert [t.value for t in at.title] == ["Data"]
        assert f"Active dataset: {ds.name}" in [h.value for h in at.subheader]
        frames = [f.value for f in at.dataframe]
        # model features (500 rows: time + features), statistics (one row per feature), raw table (500 rows);
        # the raw table is not repeated inside the applied table's expander
        assert len(frames) == 3
        feat, stats, raw = frames
        assert list(feat.columns) == ["time", *ds.feature_names] and len(feat) == 500
        np.testing.assert_allclose(feat[ds.feature_names].to_numpy(), ds.features[:500])
        assert list(stats["feature"]) == ds.feature_names
        np.testing.assert_allclose(stats["median"], np.median(ds.train.astype(np.float64), 0))
        assert len(raw) == 500 and "regime" in raw.columns
        spec = at.get("plotly_chart")[0].proto.spec
        assert "held out (2,048 ticks)" in spec
        assert "Suggested block length" in _texts(at.caption)
        first = first or spec
        assert spec == first
