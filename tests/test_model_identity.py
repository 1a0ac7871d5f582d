"""Results derived from a model belong to that model: after the session's model changes, the last replay is
neither analysed for drift on Diagnostics nor drawn on the Manifold page, and both pages say why."""

import os

import numpy as np
from streamlit.testing.v1 import AppTest

from chronoslib import ChronosDefragEngine
from tests.conftest import small_config

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


def _ok(app):
    assert not app.exception, app.exception
    return app


def _texts(app):
    return " ".join(e.value for kind in ("info", "caption", "error", "warning", "success")
                    for e in getattr(app, kind) if isinstance(e.value, str))


def test_a_replay_made_with_a_previous_model_is_not_analysed_or_drawn():
    at = _ok(AppTest.from_file(APP, default_timeout=90).run())
    _ok(at.switch_page("pages/replay.py").run())
    _ok(at.button(key="rp_block").click().run())           # replay a block's worth of windows on the shipped model
    assert at.session_state["cd_replay"].position > 0 and at.session_state["cd_replay_records"]

    # With the model that made it, Diagnostics offers the replay and Manifold can colour by live confidence.
    _ok(at.switch_page("pages/diagnostics.py").run())
    assert "Last replay" in at.radio(key="dg_source").options
    _ok(at.switch_page("pages/manifold.py").run())
    assert "live confidence" in at.selectbox[0].options

    # A new model becomes the session's model (as the Train page does when a run finishes).
    ds = at.session_state["cd_dataset"] if "cd_dataset" in at.session_state else None
    cfg = small_config(input_dim=6, block_len=64, epochs=2)
    x = np.random.default_rng(0).standard_normal((64 * 8, 6)).astype(np.float32)
    eng = ChronosDefragEngine(cfg).fit(x)
    from pages.lib import session as sess
    info = {"origin": "trained in this session", "dataset": "test", "when": eng.meta["fitted_at"],
            "id": sess.fingerprint(eng), "_obj": id(eng)}
    at.session_state[sess.K_ENGINE] = eng
    at.session_state[sess.K_MODEL_INFO] = info
    del ds

    _ok(at.switch_page("pages/diagnostics.py").run())
    assert "Last replay" not in at.radio(key="dg_source").options
    assert "made with a previous model" in _texts(at)
    assert not any("Drifted" in e.value for e in at.error)
    _ok(at.switch_page("pages/manifold.py").run())
    assert "live confidence" not in at.selectbox[0].options
    assert "made with a previous model" in _texts(at)


def test_fingerprints_differ_between_models_and_repeat_for_one():
    from pages.lib import session as sess
    x = np.random.default_rng(1).standard_normal((16 * 8, 6)).astype(np.float32)
    a = ChronosDefragEngine(small_config(epochs=1, seed=0)).fit(x)
    b = ChronosDefragEngine(small_config(epochs=1, seed=1)).fit(x)
    assert sess.fingerprint(a) == sess.fingerprint(a) and len(sess.fingerprint(a)) == 12
    assert sess.fingerprint(a) != sess.fingerprint(b)
    assert sess.fingerprint(None) == ""
