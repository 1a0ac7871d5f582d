"""Evidence page through Streamlit's AppTest: opens empty with a Run button, a tiny run shows verdicts and
figures and is cached per dataset + model, and a dataset too short to evaluate gives an error, not a traceback."""

import dataclasses
import os

from streamlit.testing.v1 import AppTest

from app_pages.lib import session

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


def _evidence_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("app_pages/evidence.py").run()
    assert not at.exception
    return at


def _tiny(at: AppTest) -> None:
    at.number_input(key="ev_seeds").set_value(2)
    at.number_input(key="ev_enc_epochs").set_value(1)
    at.number_input(key="ev_pred_epochs").set_value(1)


def test_evidence_page_runs_a_tiny_evaluation_and_caches_it():
    at = _evidence_page()
    assert at.title[0].value == "Evidence"
    assert any("shipped with the sample model" in i.value for i in at.info)  # opens on the shipped result
    assert len(at.get("plotly_chart")) == 4 and "cd_evidence_results" not in at.session_state
    _tiny(at)
    at.button[0].click().run()
    assert not at.exception and not at.error
    results = at.session_state["cd_evidence_results"]
    assert len(results) == 1
    res = next(iter(results.values()))
    assert res["seeds"] == [0, 1] and res["encoder_epochs"] == 1 and res["predictor_epochs"] == 1
    assert res["dataset"] == at.session_state[session.DATASET.key].name
    shown = "\n".join(e.value for e in (*at.success, *at.info, *at.warning))
    assert all(v in shown for v in res["verdicts"])
    assert len(at.metric) == 4 and at.metric[0].label == "Error cut · context"
    assert any("defragmented training" in v for v in res["verdicts"])
    assert len(at.get("plotly_chart")) == 4
    # a page switch and back shows the cached result without rerunning
    at.switch_page("app_pages/data.py").run()
    at.switch_page("app_pages/evidence.py").run()
    assert not at.exception and len(at.get("plotly_chart")) == 4
    assert at.session_state["cd_evidence_results"] is results or len(at.session_state["cd_evidence_results"]) == 1


def test_evidence_page_runs_its_three_arms_with_the_chosen_ordering_and_keeps_each_result():
    at = _evidence_page()
    _tiny(at)
    at.selectbox(key="ev_ordering").set_value("regime")
    at.button[0].click().run()
    assert not at.exception and not at.error
    results = at.session_state["cd_evidence_results"]
    assert [k.rsplit(":", 1)[1] for k in results] == ["regime"]
    assert next(iter(results.values()))["ordering"] == "regime"
    assert any("ordered by **regime**" in c.value for c in at.caption)


def test_evidence_page_shows_an_error_for_data_too_short_to_evaluate():
    at = _evidence_page()
    ds = at.session_state[session.DATASET.key]
    # a copy (never mutate what the session may share) with a single held-out block of 64 ticks
    at.session_state[session.DATASET.key] = dataclasses.replace(ds, split=len(ds.features) - 64)
    at.run()
    _tiny(at)
    at.button[0].click().run()
    assert not at.exception
    assert any("Need at least 4 held-out blocks" in e.value for e in at.error)
    assert not at.get("plotly_chart")  # a different split: the shipped result does not apply


def test_evidence_page_without_a_result_for_other_data_invites_a_run():
    at = _evidence_page()
    ds = at.session_state[session.DATASET.key]
    at.session_state[session.DATASET.key] = dataclasses.replace(ds, split=ds.split - 64)
    at.run()
    assert not at.exception
    assert any("No evaluation for this dataset and model yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")
