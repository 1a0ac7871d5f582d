"""Train page through Streamlit's AppTest: defaults, a short training job (the real train command in its own
process), errors, cancel, collapse banner, model files."""

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("CHRONOS_FAST_UI", "1")  # tiny form defaults (latent 8, a few epochs)

from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages.lib import model_store, session  # noqa: E402
from chronoslib import ChronosDefragEngine, DefragConfig  # noqa: E402
from chronoslib.data import load_sample  # noqa: E402
from tests.job_support import finish, own_job  # noqa: E402
from tests.ohlcv_support import make_ohlcv  # noqa: E402

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
SAMPLE_BYTES = open(session.SAMPLE_CHECKPOINT, "rb").read()


def _train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    return at


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _sidebar_text(at: AppTest) -> str:
    return "\n".join(str(getattr(e, "value", "")) for e in at.sidebar)


def test_train_page_opens_on_the_shipped_model_with_its_fit_summary():
    at = _train_page()
    eng = at.session_state[session.ENGINE.key]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training blocks"] == f"{eng.fit_summary['n_blocks']:,}"
    assert metrics["Timeline entropy"] == f"{eng.fit_summary['timeline_entropy']:.3f}"
    assert metrics["Path cost"] == f"{eng.fit_summary['path_cost_pseudo']:.2f}"
    assert at.number_input(key="tr_latent_dim").value == 8  # CHRONOS_FAST_UI defaults
    assert not at.error


def test_a_short_run_trains_on_the_training_span_only_and_reaches_another_page():
    at = _train_page()
    before = at.session_state[session.ENGINE.key]
    at.number_input(key="tr_encoder_epochs").set_value(2)
    at.number_input(key="tr_predictor_epochs").set_value(1)
    at.number_input(key="tr_block_len").set_value(32)
    at.button(key="tr_train").click().run()
    assert not at.exception and not at.error
    assert at.session_state[session.ENGINE.key] is before        # nothing changes until the job is done
    assert at.get("progress"), "no progress bar right after pressing Train"
    assert finish(at).state == "done"
    assert not at.exception and not at.error
    eng = at.session_state[session.ENGINE.key]
    ds = at.session_state[session.DATASET.key]
    assert eng is not before
    assert eng.train_end_tick == ds.split                       # ds.train only, never the held-out span
    assert eng.cfg.encoder.input_dim == ds.features.shape[1]
    assert eng.cfg.encoder.latent_dim == 8
    assert eng.cfg.encoder.block_len == 32 and len(eng.block_latents) == ds.split // 32
    assert [h["stage"] for h in eng.history] == ["encoder", "encoder", "predictor"]
    assert at.session_state[session.MODEL_INFO.key]["origin"] == "trained in this session"
    assert {m.label: m.value for m in at.metric}["Training blocks"] == f"{ds.split // 32:,}"
    # Another page sees the new model through the shared sidebar.
    at.switch_page("app_pages/manifold.py").run()
    assert "trained in this session" in _sidebar_text(at)
    assert f"{ds.split // 32:,} blocks" in _sidebar_text(at)
    # A second session (another browser tab) still has its own shipped model.
    other = AppTest.from_file(APP, default_timeout=60).run()
    assert other.session_state[session.MODEL_INFO.key]["origin"] == "shipped sample checkpoint"


def test_inconsistent_settings_show_a_message_and_start_nothing():
    at = _train_page()
    at.number_input(key="tr_forecast_dim").set_value(16)   # above latent dim 8
    at.button(key="tr_train").click().run()
    assert not at.exception
    assert "forecast_dim (16) cannot exceed encoder.latent_dim (8)" in _texts(at.error)
    assert session.TRAIN_JOB.key not in at.session_state
    at.number_input(key="tr_forecast_dim").set_value(4)
    at.number_input(key="tr_block_len").set_value(4000)     # 8192 training ticks -> 2 blocks
    at.button(key="tr_train").click().run()
    assert "Need at least 4 blocks" in _texts(at.error) and "2 block(s) of block_len=4000" in _texts(at.error)
    assert session.TRAIN_JOB.key not in at.session_state


def test_cancel_stops_a_run_and_keeps_the_previous_model():
    at = _train_page()
    before = at.session_state[session.ENGINE.key]
    at.number_input(key="tr_encoder_epochs").set_value(2000)
    at.button(key="tr_train").click().run()
    assert own_job(at).active
    at.button(key="tr_cancel").click().run()
    job = finish(at, 30)
    assert job.state == "cancelled" and not os.path.exists(job.out)
    assert at.session_state[session.ENGINE.key] is before
    assert "cancelled" in _texts(at.warning) and "previous model is still active" in _texts(at.warning)
    assert not at.get("progress")


def test_collapse_banner_appears_when_the_diagnostics_flag_the_model():
    eng = ChronosDefragEngine.load(SAMPLE_BYTES)  # a private copy: nothing shared is mutated
    eng.fit_summary.update(final_verdict="collapsed", final_mean_cos=0.97, final_eff_rank=1.1)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[session.ENGINE.key] = eng
    at.session_state[session.MODEL_INFO.key] = {"origin": "test", "dataset": "x", "when": "?"}
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert "Latent collapse" in _texts(at.error) and "mean pairwise cosine 0.97" in _texts(at.error)


def test_a_bad_uploaded_checkpoint_shows_the_error_and_a_good_one_loads():
    at = _train_page()
    before = at.session_state[session.ENGINE.key]
    at.file_uploader(key="tr_upload").set_value(("junk.pt", b"this is not a checkpoint", "application/octet-stream"))
    at.run()
    at.button(key="tr_load").click().run()
    assert not at.exception
    assert "Could not load **junk.pt**" in _texts(at.error) and "not a readable ChronosDefrag checkpoint" in \
        _texts(at.error)
    assert at.session_state[session.ENGINE.key] is before
    at.file_uploader(key="tr_upload").set_value(("sample_model.pt", SAMPLE_BYTES, "application/octet-stream"))
    at.run()
    at.button(key="tr_load").click().run()
    assert not at.exception and not at.error
    assert at.session_state[session.ENGINE.key] is not before
    assert at.session_state[session.MODEL_INFO.key]["origin"] == "loaded from sample_model.pt"
    assert "Loaded **sample_model.pt**" in _texts(at.success)


def test_save_model_writes_a_checkpoint_that_loads_back(tmp_path, monkeypatch):
    monkeypatch.setattr(model_store, "MODEL_DIR", str(tmp_path))
    at = _train_page()
    at.text_input(key="tr_save_name").set_value("../../evil name")
    at.button(key="tr_save").click().run()
    assert not at.exception
    assert "not a plain file name" in at.error[0].value and "evil_name.pt" in at.error[0].value
    assert list(tmp_path.iterdir()) == []                          # refused, nothing written anywhere
    at.text_input(key="tr_save_name").set_value("mine").run()
    at.button(key="tr_save").click().run()
    assert not at.exception and not at.error
    saved = list(tmp_path.iterdir())
    assert [p.name for p in saved] == ["mine.pt"]
    eng = ChronosDefragEngine.load(str(saved[0]))
    ref = at.session_state[session.ENGINE.key]
    assert (eng.block_latents == ref.block_latents).all()
    at.run()
    assert at.selectbox(key="tr_saved_choice").options == ["(none)", "mine.pt"]


def test_saving_never_silently_overwrites_another_sessions_model(tmp_path, monkeypatch):
    monkeypatch.setattr(model_store, "MODEL_DIR", str(tmp_path))
    theirs = tmp_path / "shared.pt"
    theirs.write_bytes(b"another session's checkpoint")
    at = _train_page()
    at.text_input(key="tr_save_name").set_value("shared.pt").run()
    assert at.checkbox(key="tr_overwrite").value is False
    at.button(key="tr_save").click().run()
    assert not at.exception and "already exists" in at.error[0].value
    assert theirs.read_bytes() == b"another session's checkpoint"
    at.checkbox(key="tr_overwrite").check().run()
    at.button(key="tr_save").click().run()
    assert not at.exception and not at.error
    ChronosDefragEngine.load(str(theirs))                          # replaced only after the explicit tick
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.pt"]   # no temporary file left behind


def test_the_picker_lists_only_regular_checkpoint_files(tmp_path, monkeypatch):
    monkeypatch.setattr(model_store, "MODEL_DIR", str(tmp_path))
    (tmp_path / "x.pt").mkdir()
    (tmp_path / "dangling.pt").symlink_to(tmp_path / "missing.pt")
    (tmp_path / "loop.pt").symlink_to(tmp_path / "loop.pt")
    (tmp_path / "real.pt").write_bytes(b"not really a checkpoint")
    at = _train_page()
    assert not at.exception
    assert at.selectbox(key="tr_saved_choice").options == ["(none)", "real.pt"]
    at.selectbox(key="tr_saved_choice").set_value("real.pt").run()
    at.button(key="tr_load").click().run()
    assert not at.exception and "Could not load **real.pt**" in at.error[0].value


@pytest.mark.parametrize("name,expected", [
    ("a b/c.pt", "c.pt"), ("..", "model.pt"), ("x.y", "x.y.pt"),
    ("Synthetic regimes (labelled)-2024", "Synthetic_regimes_labelled_-2024.pt")])
def test_safe_filename_keeps_saves_inside_the_model_folder(name, expected):
    assert model_store.safe_filename(name) == expected


def test_sample_dataset_is_what_the_page_trains_on():
    ds = load_sample(session.DEFAULT_SAMPLE)
    assert ds.train.shape == (ds.split, ds.features.shape[1])


# ---------------------------------------------------------------------------------------------- Data -> Train
def _upload_and_train_page(df) -> AppTest:
    """The Data page with ``df`` uploaded as a CSV and applied with its preselected columns, then the Train page."""
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/data.py").run()
    at.radio(key="dt_source").set_value("Upload a file").run()
    at.file_uploader(key="dt_upload").set_value(("bars.csv", df.to_csv(index=False).encode(), "text/csv")).run()
    at.button(key="dt_apply").click().run()
    assert not at.exception and not at.error
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    return at


def _median_per(ts, freq: str) -> int:
    """Median ticks per calendar period (first and last, partial, left out), counted with pandas."""
    counts = pd.Series(1, index=pd.DatetimeIndex(ts)).resample(freq).sum()
    counts = counts[counts > 0].iloc[1:-1]
    return int(round(float(np.median(counts))))


def test_a_daily_upload_trains_on_stationary_features_with_a_month_long_block_by_default():
    df, _ = make_ohlcv(2520, seed=0)                      # ten years of business days
    at = _upload_and_train_page(df)
    ds = at.session_state[session.DATASET.key]
    assert ds.feature_names == ["log_return", "abs_return", "hl_range", "rel_volume", "rolling_vol"]
    month = _median_per(ds.timestamps, "MS")              # trading days in a month: 21 or 22
    assert month in (21, 22)
    assert at.number_input(key="tr_block_len").value == month
    assert ds.split // month >= 50 and "training blocks" not in _texts(at.warning)
    assert f"suggest {month}" in at.number_input(key="tr_block_len").help


def test_a_short_daily_upload_is_warned_and_offered_the_length_that_gives_fifty_blocks():
    df, _ = make_ohlcv(700, seed=1)                       # 560 training days: 26 month-long blocks
    at = _upload_and_train_page(df)
    ds = at.session_state[session.DATASET.key]
    bl = at.number_input(key="tr_block_len").value
    offered = ds.split // 50
    assert bl == _median_per(ds.timestamps, "MS") and ds.split // bl < 50
    warning = _texts(at.warning)
    assert f"Only {ds.split // bl} training blocks of {bl} ticks" in warning
    assert f"A block length of {offered} gives {ds.split // offered}" in warning
    at.button(key="tr_use_offered").click().run()
    assert at.number_input(key="tr_block_len").value == offered and "training blocks" not in _texts(at.warning)


def test_a_minute_bar_upload_gets_hour_long_blocks_and_a_sample_keeps_the_shipped_length():
    df, _ = make_ohlcv(3900, seed=2)                      # ten sessions of 390 one-minute bars (09:30-16:00)
    days = pd.bdate_range("2024-03-04", periods=10)
    df["Date"] = [str(d + pd.Timedelta(hours=9, minutes=30 + m)) for d in days for m in range(390)]
    at = _upload_and_train_page(df)
    ds = at.session_state[session.DATASET.key]
    assert _median_per(ds.timestamps, "h") == 60 and at.number_input(key="tr_block_len").value == 60
    sample = AppTest.from_file(APP, default_timeout=60).run()
    sample.switch_page("app_pages/train.py").run()
    shipped = sample.session_state[session.ENGINE.key].cfg.encoder.block_len
    assert sample.number_input(key="tr_block_len").value == shipped == DefragConfig().encoder.block_len
