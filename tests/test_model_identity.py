"""Results derived from a model belong to that model and that data: after the session's model (or dataset)
changes, the last replay is neither analysed for drift on Diagnostics nor drawn on the Manifold page, a re-fit
threshold chosen for the old model is not applied to the new one, an evaluation of the old model is not shown as
the new one's, and every page says which model the old result was made with."""

import dataclasses
import os

os.environ.setdefault("CHRONOS_FAST_UI", "1")  # small Train form defaults, as the other Train-page tests use

import numpy as np  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages.lib import session  # noqa: E402
from chronoslib import ChronosDefragEngine  # noqa: E402
from chronoslib.identity import data_fingerprint, model_fingerprint  # noqa: E402
from tests.conftest import small_config  # noqa: E402
from tests.job_support import finish  # noqa: E402

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


def _ok(app: AppTest) -> AppTest:
    assert not app.exception, app.exception
    return app


def _texts(app: AppTest) -> str:
    return " ".join(e.value for kind in ("info", "caption", "error", "warning", "success")
                    for e in getattr(app, kind) if isinstance(e.value, str))


def _replayed() -> AppTest:
    """A session that replayed a block's worth of held-out windows on the shipped model."""
    at = _ok(AppTest.from_file(APP, default_timeout=90).run())
    _ok(at.switch_page("app_pages/replay.py").run())
    _ok(at.button(key="rp_block").click().run())
    assert at.session_state["cd_replay"].position > 0 and at.session_state["cd_replay_records"]
    return at


def _train_new_model(at: AppTest) -> ChronosDefragEngine:
    """A 2-epoch model trained by the Train page's job, installed as the Train page does."""
    _ok(at.switch_page("app_pages/train.py").run())
    for key, value in (("tr_encoder_epochs", 2), ("tr_predictor_epochs", 1), ("tr_block_len", 32),
                       ("tr_latent_dim", 8), ("tr_hidden_dim", 16)):
        at.number_input(key=key).set_value(value)
    before = at.session_state[session.ENGINE.key]
    _ok(at.button(key="tr_train").click().run())
    assert finish(at, 180).state == "done"
    _ok(at)
    eng = at.session_state[session.ENGINE.key]
    assert eng is not before and at.session_state[session.MODEL_INFO.key]["origin"] == "trained in this session"
    return eng


def test_a_replay_made_with_a_previous_model_is_not_analysed_or_drawn_and_pages_name_both_models():
    at = _replayed()
    old_id = at.session_state[session.MODEL_INFO.key]["id"]
    # The re-fit threshold chosen on the Live replay page for the shipped model: far above its default.
    _ok(at.slider(key="rp_thr").set_value(0.99).run())

    # With the model that made it, Diagnostics offers the replay and Manifold can colour by live confidence.
    _ok(at.switch_page("app_pages/diagnostics.py").run())
    assert at.radio(key="dg_source").options[0] == "Last replay"
    _ok(at.switch_page("app_pages/manifold.py").run())
    assert "live confidence" in at.selectbox[0].options

    new = _train_new_model(at)
    new_id = at.session_state[session.MODEL_INFO.key]["id"]
    assert new_id == model_fingerprint(new) and new_id != old_id

    _ok(at.switch_page("app_pages/diagnostics.py").run())
    assert "Last replay" not in at.radio(key="dg_source").options
    text = _texts(at)
    assert f"The last replay was made with model {old_id} (shipped sample checkpoint" in text
    assert f"the current model is model {new_id} (trained in this session" in text
    assert not any("last replay" in e.value for e in (*at.error, *at.warning, *at.success))
    assert not any("Drifted" in e.value for e in at.error)         # the old model's 0.99 threshold made it red
    # The old model's 0.99 threshold is not the new model's: Diagnostics uses the new model's default.
    from chronoslib import replay
    thr = replay.suggested_threshold(new)
    assert f"Re-fit threshold on confidence ({thr:.2f})" in text and "(0.99)" not in text

    _ok(at.switch_page("app_pages/manifold.py").run())
    assert "live confidence" not in at.selectbox[0].options
    assert f"The last replay was made with model {old_id}" in _texts(at)

    # The Live replay page starts a new replay with the new model, says so, and re-derives its threshold.
    _ok(at.switch_page("app_pages/replay.py").run())
    text = _texts(at)
    assert f"The previous replay was made with model {old_id}" in text and "starts afresh" in text
    assert "were reset to the current model's defaults" in text
    assert at.session_state["cd_replay"].engine is new and at.session_state["cd_replay"].position == 0
    assert at.session_state["cd_replay_settings"]["threshold"] == thr
    assert at.session_state["cd_replay_tag"]["model"] == new_id
    _ok(at.button(key="rp_block").click().run())
    _ok(at.switch_page("app_pages/diagnostics.py").run())
    assert at.radio(key="dg_source").options[0] == "Last replay"      # the new replay is the new model's


def test_a_replay_on_other_data_is_not_used_and_the_page_names_the_data():
    at = _replayed()
    ds = at.session_state[session.DATASET.key]
    other = dataclasses.replace(ds, name="edited copy", features=ds.features * np.float32(1.5))
    at.session_state[session.DATASET.key] = other                      # same model, different data
    _ok(at.switch_page("app_pages/diagnostics.py").run())
    assert "Last replay" not in at.radio(key="dg_source").options
    text = _texts(at)
    assert f"The last replay was made on the data *{ds.name}*" in text and "the current data is *edited copy*" in text


def test_an_evaluation_of_a_previous_model_is_not_shown_as_the_current_ones():
    at = _ok(AppTest.from_file(APP, default_timeout=120).run())
    _ok(at.switch_page("app_pages/evidence.py").run())
    for key, value in (("ev_seeds", 2), ("ev_enc_epochs", 1), ("ev_pred_epochs", 1)):
        at.number_input(key=key).set_value(value)
    _ok(at.button[0].click().run())
    res = next(iter(at.session_state["cd_evidence_results"].values()))
    old_id = at.session_state[session.MODEL_INFO.key]["id"]
    assert res["made_with"]["model"] == old_id and len(at.get("plotly_chart")) == 4

    ds = at.session_state[session.DATASET.key]
    eng = ChronosDefragEngine(small_config(input_dim=ds.features.shape[1], block_len=64, epochs=1)).fit(ds.train)
    at.session_state[session.ENGINE.key] = eng                         # the fingerprint follows the engine
    at.session_state[session.MODEL_INFO.key] = {"origin": "trained in this session", "dataset": ds.name,
                                              "when": eng.meta["fitted_at"]}
    _ok(at.run())
    assert not at.get("plotly_chart")                                # the old model's figures are not drawn
    text = _texts(at)
    assert f"The last evaluation was made with model {old_id}" in text
    assert f"the current model is model {model_fingerprint(eng)}" in text
    assert "No evaluation for this dataset and model yet" in text


def test_picked_blocks_of_a_previous_model_are_dropped_on_the_manifold():
    at = _ok(AppTest.from_file(APP, default_timeout=90).run())
    at.session_state["cd_mf_selected"] = [1, 2, 3]
    at.session_state["cd_mf_focus"] = 5
    _ok(at.switch_page("app_pages/manifold.py").run())
    assert at.session_state["cd_mf_selected"] == [] and at.session_state["cd_mf_focus"] == 0   # set before this model
    at.session_state["cd_mf_selected"] = [1, 2, 3]
    _ok(at.run())
    assert at.session_state["cd_mf_selected"] == [1, 2, 3]          # this model's picks stay
    ds = at.session_state[session.DATASET.key]
    eng = ChronosDefragEngine(small_config(input_dim=ds.features.shape[1], block_len=64, epochs=1)).fit(ds.train)
    at.session_state[session.ENGINE.key] = eng
    _ok(at.run())
    assert at.session_state["cd_mf_selected"] == []


def test_fingerprints_differ_between_models_and_data_and_repeat_for_one():
    x = np.random.default_rng(1).standard_normal((16 * 8, 6)).astype(np.float32)
    a = ChronosDefragEngine(small_config(epochs=1, seed=0)).fit(x)
    b = ChronosDefragEngine(small_config(epochs=1, seed=1)).fit(x)
    assert model_fingerprint(a) == model_fingerprint(a) and len(model_fingerprint(a)) == 12
    assert model_fingerprint(a) != model_fingerprint(b)
    assert model_fingerprint(ChronosDefragEngine.load(a.to_bytes())) == model_fingerprint(a)  # through a save
    assert model_fingerprint(None) == "" and model_fingerprint(ChronosDefragEngine(small_config())) == ""
    y = x.copy()
    y[7, 3] += 1e-3                                                   # one value edited
    assert data_fingerprint(x, "d", 64) == data_fingerprint(x.copy(), "d", 64)
    assert len({data_fingerprint(x, "d", 64), data_fingerprint(y, "d", 64), data_fingerprint(x, "e", 64),
                data_fingerprint(x, "d", 32)}) == 4

