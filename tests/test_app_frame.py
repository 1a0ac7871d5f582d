"""The app frame through Streamlit's AppTest: defaults, the shared sidebar, background-run pickup, config."""

import os

import pytest

os.environ.setdefault("CHRONOS_FAST_UI", "1")

from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages.lib import session  # noqa: E402
from chronoslib import readers  # noqa: E402
from tests.job_support import finish, own_job  # noqa: E402

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "app.py")


def _sidebar(at: AppTest) -> str:
    return "\n".join(str(getattr(e, "value", "")) for e in at.sidebar if getattr(e, "value", None) is not None)


def test_app_opens_on_the_sample_data_and_the_shipped_model():
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    ds, eng = at.session_state[session.DATASET.key], at.session_state[session.ENGINE.key]
    assert ds.name == session.DEFAULT_SAMPLE and eng.fitted
    assert eng.cfg.encoder.input_dim == ds.features.shape[1]
    side = _sidebar(at)
    assert f"**Data:** {ds.name}" in side and f"{len(ds.features):,} ticks × {ds.features.shape[1]} features" in side
    assert "shipped sample checkpoint" in side and f"{len(eng.block_latents):,} blocks" in side
    assert "**Device:** cpu" in side or "**Device:** cuda" in side
    # It opens on the Overview: the shipped model's figures and its defragmented timeline, with links to every page.
    assert at.title[0].value == "ChronosDefrag"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training blocks"] == f"{len(eng.block_latents):,}"
    assert float(metrics["Timeline entropy"]) == pytest.approx(eng.fit_summary["timeline_entropy"], abs=1e-3)
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("page_link")) == 8


def test_every_page_gets_the_sidebar_from_the_frame():
    # AppTest's switch_page runs app.py, whose st.navigation then runs the page: the frame comes first.
    at = AppTest.from_file(APP, default_timeout=60).run()
    for page in ("app_pages/train.py", "app_pages/data.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert "ChronosDefrag" in _sidebar(at) and "shipped sample checkpoint" in _sidebar(at)


def test_a_run_finishing_while_on_another_page_becomes_the_model_there():
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/train.py").run()
    at.number_input(key="tr_encoder_epochs").set_value(2)
    at.number_input(key="tr_predictor_epochs").set_value(1)
    at.button(key="tr_train").click().run()
    before = at.session_state[session.ENGINE.key]
    at.switch_page("app_pages/data.py").run()  # the Data page never touches training itself
    if own_job(at).active:
        assert any(p.proto.text.startswith("Training:") for p in at.sidebar.get("progress"))
    assert finish(at).state == "done"
    assert not at.exception
    assert at.session_state[session.ENGINE.key] is not before
    assert "trained in this session" in _sidebar(at)


def test_describe_when_formats_the_fit_stamp_for_people():
    assert session.describe_when("2024-05-01T12:34:56+00:00") == "2024-05-01 12:34 UTC"
    assert session.describe_when("2024-05-01T14:34:56+02:00") == "2024-05-01 12:34 UTC"
    assert session.describe_when(None) == "unknown time" and session.describe_when("soon") == "soon"


def test_streamlit_config_keeps_statistics_off_and_the_upload_limit_in_step_with_the_data_layer():
    with open(os.path.join(ROOT, ".streamlit", "config.toml"), "rb") as f:
        cfg = tomllib.load(f)
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["maxUploadSize"] * 1024 ** 2 == readers.MAX_FILE_BYTES
