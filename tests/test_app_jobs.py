"""Training jobs as the pages show them (AppTest, with fake jobs on the app's queue, so nothing trains): the
Train page's progress line (stage, step within the epoch, steps/s, time left) and Cancel, a queue place, a
failed job's one-line message, a finished job's checkpoint becoming this session's model only, and the sidebar
of another session listing the job with a Cancel that stops it."""

import json
import os

import pytest

os.environ.setdefault("CHRONOS_FAST_UI", "1")

from streamlit.testing.v1 import AppTest  # noqa: E402

from app_pages.lib import cache, session, train_job  # noqa: E402
from tests.job_support import event, fake_job, release, wait_started  # noqa: E402

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


@pytest.fixture(autouse=True)
def empty_queue():
    yield
    q = cache.job_queue()
    for job in q.jobs():
        q.cancel(job.id)
        q.wait(job.id, 10)


def _session_with(job, page: str = "app_pages/train.py") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[session.TRAIN_JOB.key] = {"id": job.id, "dataset": "fake data", "installed": False}
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _progress_texts(at, where=None) -> str:
    return "\n".join(p.proto.text for p in (where or at).get("progress"))


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


ENCODER_STEP = event("encoder", epoch=2, epochs=5, step=40, steps=120, steps_per_s=31.5, eta_s=75.0,
                     fraction=0.3, losses={"loss": 1.2345})


def test_a_running_job_shows_stage_step_speed_and_time_left_and_cancel_keeps_the_model():
    job = fake_job([event("starting"), ENCODER_STEP], hold_s=60)
    wait_started(job)
    at = _session_with(job)
    text = _progress_texts(at)
    assert "Encoder epoch 2/5 · step 40/120" in text
    assert "31.5 steps/s" in text and "about 1 min 15 s left" in text and "loss 1.2345" in text
    before = at.session_state[session.ENGINE.key]
    at.button(key="tr_cancel").click().run()
    assert not at.exception
    assert cache.job_queue().get(job.id).state == "cancelled"
    at.run()
    assert "Training was cancelled; the previous model is still active." in _texts(at.warning)
    assert at.session_state[session.ENGINE.key] is before


def test_a_queued_job_shows_its_place_in_line():
    ahead = [fake_job([event("starting")], hold_s=60, owner=o, label=f"{o}.csv · session {o}") for o in "ab"]
    mine = fake_job([event("starting")], hold_s=60)
    at = _session_with(mine)
    assert "Waiting for a free training slot: 2nd in line" in _progress_texts(at)
    release(ahead[0])
    cache.job_queue().wait(ahead[0].id, 20)
    at.run()
    assert "next to start" in _progress_texts(at)
    side = _texts(at.sidebar.caption)
    assert "b.csv · session b: running" in side


def test_a_failed_job_says_why_in_the_page_without_a_traceback():
    job = fake_job([event("starting"), event("failed", message="prices.csv: column 'close' not found")], rc=2,
                   stderr="error: prices.csv: column 'close' not found")
    cache.job_queue().wait(job.id, 20)
    at = _session_with(job)
    assert "Training failed: prices.csv: column 'close' not found" in _texts(at.error)
    assert "Traceback" not in _texts(at.error)
    assert at.session_state[session.MODEL_INFO.key]["origin"] == session.SHIPPED_ORIGIN


def test_a_finished_job_becomes_this_sessions_model_and_nobody_elses():
    job = fake_job([event("starting")], model=session.SAMPLE_CHECKPOINT,
                   final=[event("done", fraction=1.0, out="model.pt")])
    assert cache.job_queue().wait(job.id, 20).state == "done"
    at = _session_with(job, "app_pages/data.py")
    info = at.session_state[session.MODEL_INFO.key]
    assert info["origin"] == "trained in this session" and info["dataset"] == "fake data"
    assert at.session_state[session.TRAIN_JOB.key]["installed"] is True
    other = AppTest.from_file(APP, default_timeout=60).run()
    assert other.session_state[session.MODEL_INFO.key]["origin"] == session.SHIPPED_ORIGIN


def test_another_session_sees_the_job_in_its_sidebar_and_can_cancel_it():
    job = fake_job([event("starting"), ENCODER_STEP], hold_s=60, owner="a1b2", label="m1.csv · session a1b2")
    wait_started(job)
    other = AppTest.from_file(APP, default_timeout=60).run()
    other.switch_page("app_pages/manifold.py").run()
    assert "m1.csv · session a1b2: running" in _texts(other.sidebar.caption)
    other.button(key=f"sb_cancel_{job.id}").click().run()
    assert not other.exception
    assert cache.job_queue().get(job.id).state == "cancelled"


def test_status_lines_for_each_state():
    job = fake_job([event("starting")], hold_s=60)
    wait_started(job)
    s = train_job.status(job, [event("loading", fraction=0.01)], 0)
    assert s.headline == "Reading the data…" and s.state == "running" and s.detail.endswith("elapsed")
    s = train_job.status(job, [event("encoder", epoch=0, epochs=3, step=0, steps=488, message="m1.csv: ...")], 0)
    assert s.headline == "Encoder: preparing 3 epoch(s)…" and not train_job.epoch_records([event(
        "encoder", epoch=0, epochs=3, message="announced")])
    s = train_job.status(job, [], 0)
    assert s.headline == "Starting the training process…" and s.fraction == 0.0
    assert [train_job.ordinal(k) for k in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
    assert [train_job.duration(s) for s in (0.4, 42, 185, 3725)] == ["0 s", "42 s", "3 min 05 s", "1 h 02 min"]


def test_epoch_records_come_from_the_events_that_end_an_epoch():
    ends = [event("encoder", epoch=1, epochs=2, step=120, steps=120, losses={"loss": 2.0, "infonce": 1.5},
                  message="encoder epoch 1/2 loss=2.0000"),
            event("predictor", epoch=1, epochs=1, step=30, steps=30, losses={"loss": 0.5},
                  message="predictor epoch 1/1 loss=0.50000")]
    events = [event("starting"), ENCODER_STEP | {"epoch": 1}, ends[0], ENCODER_STEP, ends[1], event("registry")]
    assert train_job.epoch_records(events) == [
        {"stage": "encoder", "epoch": 1, "loss": 2.0, "infonce": 1.5},
        {"stage": "predictor", "epoch": 1, "loss": 0.5}]
    job = fake_job([event("starting")], hold_s=60)
    wait_started(job)
    s = train_job.status(job, events, 0)
    assert s.epochs == (5, 1) and len(s.history) == 2 and s.headline == "Building the registry…"


def test_a_collapsed_epoch_of_a_running_job_shows_the_collapse_banner_and_the_target_line():
    end = event("encoder", epoch=1, epochs=5, step=120, steps=120, message="encoder epoch 1/5 ...",
                losses={"loss": 2.0, "infonce": 1.5, "ter": 0.1, "lcr": 0.4, "entropy": 0.2, "entropy_target": 1.0,
                        "mean_cos": 0.97, "eff_rank": 1.1}, verdict="collapsed", collapsed=True)
    job = fake_job([event("starting"), end, ENCODER_STEP], hold_s=60)
    wait_started(job)
    at = _session_with(job)
    assert "Latent collapse" in _texts(at.error) and "mean pairwise cosine 0.97" in _texts(at.error)
    traces = {t.get("name"): t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert traces["target"]["y"] == [1.0] and traces["entropy"]["y"] == [0.2]
