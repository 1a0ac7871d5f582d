"""AppTest for the Live replay, Latency and Diagnostics pages (started from app.py, then switch_page)."""

import os

import pytest
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


@pytest.fixture
def at():
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    return app


def _ok(app):
    assert not app.exception, app.exception
    return app


def _replay(app):
    return app.session_state["cd_replay"]


def test_replay_page_steps_and_publishes_neighbours_for_the_manifold(at):
    _ok(at.switch_page("app_pages/replay.py").run())
    rs = _replay(at)
    assert rs.position == 0 and rs.n_windows == 249        # 2048 held-out ticks, 64-tick windows every 8
    _ok(at.button(key="rp_step").click().run())
    assert _replay(at).position == 1
    last = at.session_state["cd_replay_records"][-1]      # what the manifold page places and colours
    assert len(last["neighbour_indices"]) == 8 and all(0 <= b < 128 for b in last["neighbour_indices"])
    assert 0 < last["regime_confidence"] <= 1
    _ok(at.button(key="rp_block").click().run())
    assert _replay(at).position == 1 + 64 // 8
    assert len(at.session_state["cd_replay_records"]) == 9
    _ok(at.button(key="rp_end").click().run())
    assert _replay(at).done and at.button(key="rp_play").disabled
    assert any("249 of 249 windows replayed" in c.value for c in at.main.caption)
    _ok(at.button(key="rp_reset").click().run())
    assert _replay(at).position == 0


def test_replay_play_and_pause_toggle_the_state(at):
    _ok(at.switch_page("app_pages/replay.py").run())
    _ok(at.button(key="rp_play").click().run())
    assert at.session_state["cd_replay_playing"] is True
    assert at.button(key="rp_play").label == "Pause"
    _ok(at.button(key="rp_play").click().run())
    assert at.session_state["cd_replay_playing"] is False and at.button(key="rp_play").label == "Play"


def test_replay_alerts_when_confidence_stays_below_a_high_threshold(at):
    _ok(at.switch_page("app_pages/replay.py").run())
    at.slider(key="rp_thr").set_value(0.99).run()
    at.number_input(key="rp_patience").set_value(3).run()
    _ok(at.button(key="rp_end").click().run())
    assert any("re-fit alert ON" in c.value for c in at.main.caption)


def test_replay_with_a_break_and_online_registry_compares_both(at):
    _ok(at.switch_page("app_pages/replay.py").run())
    at.radio(key="rp_source").set_value("Held-out span with a simulated structural break").run()
    at.toggle(key="rp_online").set_value(True).run()
    _ok(at.button(key="rp_end").click().run())
    rs = _replay(at)
    assert rs.online and "break" in rs.source.name and rs.done
    assert any("online registry" in c.value for c in at.main.caption)
    assert rs.summary()["online_mean_confidence"] > rs.summary()["mean_confidence"]


def test_latency_page_runs_the_benchmark_in_place(at):
    _ok(at.switch_page("app_pages/latency.py").run())
    assert at.session_state["cd_lat_result"]["n_calls"] == 200   # a short run on opening: real numbers at once
    assert [m.label for m in at.metric][:3] == ["p50", "p95", "p99"]
    at.select_slider(key="lat_calls_w").set_value(100).run()
    _ok(at.button(key="lat_run").click().run())
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["p50", "p95", "p99", "QPS (one caller)"]
    res = at.session_state["cd_lat_result"]
    assert res["n_calls"] == 100 and res["p50_ms"] <= res["p99_ms"]
    assert set(res["stage_ms"]) == {"encode", "query", "spd", "predictor"}


def test_latency_page_never_shows_a_worse_figure_as_better_and_says_when_the_server_is_busy(at, monkeypatch):
    from chronoslib import latency

    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    # References no server can reach: both figures are worse than them and must show red, QPS pointing down.
    monkeypatch.setitem(latency.SPEC_FIGURES, "qps", 1e9)
    monkeypatch.setitem(latency.SPEC_FIGURES, "predict_live_p99_ms", 1e-6)
    _ok(at.switch_page("app_pages/latency.py").run())
    shown = {m.label: m.proto for m in at.metric}
    qps, p99 = shown["QPS (one caller)"], shown["p99"]
    assert qps.MetricColor.Name(qps.color) == "RED" and qps.MetricDirection.Name(qps.direction) == "DOWN"
    assert p99.MetricColor.Name(p99.color) == "RED"
    assert any("busy" in w.value and "load average" in w.value for w in at.warning)
    assert any("overhead" in c.value for c in at.main.caption)
    texts = " ".join(str(e.value) for kind in (at.main.markdown, at.main.caption, at.main.subheader) for e in kind)
    assert "spec" not in texts.lower()


def test_diagnostics_page_shows_collapse_and_flags_a_simulated_break(at):
    _ok(at.switch_page("app_pages/diagnostics.py").run())
    assert at.success[0].value.startswith("**Healthy**")       # the shipped model is not collapsed
    assert at.success[1].value.startswith("**Stable**")        # its own held-out span does not drift
    at.radio(key="dg_source").set_value("Held-out span with a simulated structural break").run()
    _ok(at)
    assert any(e.value.startswith("**Drifted**") for e in at.error)


def test_diagnostics_can_analyse_the_last_replay(at):
    _ok(at.switch_page("app_pages/replay.py").run())
    _ok(at.button(key="rp_end").click().run())
    _ok(at.switch_page("app_pages/diagnostics.py").run())
    assert at.radio(key="dg_source").value == "Last replay"
    assert "last replay" in at.success[1].value


def test_missing_labels_keep_the_learned_regime_column_in_the_replay_neighbour_table(at):
    import dataclasses

    from app_pages.lib import session

    ds = at.session_state[session.DATASET.key]
    lab = ds.labels.copy()
    lab[:64] = -1                                    # a wholly unlabelled first block (blank cells load as -1)
    lab[100:110] = -1                                # blanks inside the second block
    at.session_state[session.DATASET.key] = dataclasses.replace(ds, labels=lab)
    _ok(at.switch_page("app_pages/replay.py").run())
    _ok(at.button(key="rp_block").click().run())
    regimes = at.session_state["cd_replay_regimes"][1]
    assert set(regimes) == {"cluster", "truth"}      # np.bincount raised on -1 and both columns went missing
    assert regimes["truth"][0] == -1 and (regimes["truth"][1:] >= 0).all()
    rows = _replay(at).neighbour_table(regimes=regimes)
    assert rows and all("regime" in r and "truth regime" in r for r in rows)
