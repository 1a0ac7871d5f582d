"""The model pages and stored views (AppTest on the shipped sample): with views of the active model the Manifold,
Timeline and Overview pages compute no clustering, ordering, bound or UMAP; a model above the in-process limit
without views queues one views job (shared by every page and session), shows PCA and a note meanwhile, and
switches to the job's views when it is done."""

import os
import sys

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app_pages.lib import cache, model_views
from chronoslib import metrics, projection, regimes, timeline, views

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
EXPENSIVE = [(regimes, "cluster_regimes"), (timeline, "build_pseudo_timeline"), (metrics, "mst_lower_bound"),
             (projection, "umap_embed")]


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.setenv("CHRONOS_UMAP_WARMUP", "0")
    st.cache_data.clear()
    cache._views_store.clear()
    yield
    q = cache.job_queue()
    for job in q.jobs():
        q.cancel(job.id)
        q.wait(job.id, 10)
    cache._views_store.clear()


def _start() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["cd_mf_method"] = "UMAP"
    at.run()
    assert not at.exception, at.exception
    return at


def _views_of(eng) -> views.ModelViews:
    with pytest.MonkeyPatch.context() as mp:     # PCA standing in for UMAP: no numba compilation in tests
        mp.setattr(projection, "umap_embed", lambda x, d, *a, **k: projection.pca(x, d))
        return views.compute_views(eng)


def _forbid(monkeypatch):
    for mod, name in EXPENSIVE:
        monkeypatch.setattr(mod, name, lambda *a, _n=name, **k: pytest.fail(f"the page called {_n}"))


def _page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("caption", "info", "markdown") for e in at.get(kind))


def test_pages_with_stored_views_compute_no_clustering_ordering_bound_or_umap(monkeypatch):
    at = _start()
    eng = at.session_state["cd_engine"]
    v = _views_of(eng)
    cache.put_views(v)
    _forbid(monkeypatch)
    _page(at, "app_pages/manifold.py")
    assert "computed with the model" in _texts(at) and "UMAP 2-D" in _texts(at)
    assert f"**{v.regime.k} regimes**" in _texts(at)
    _page(at, "app_pages/timeline.py")
    table = at.dataframe[0].value
    assert table["lower bound"].iloc[0] == pytest.approx(v.lower_bound)
    _page(at, "app_pages/overview.py")


def test_stored_views_give_the_timeline_exactly_what_it_computes_without_them():
    at = _page(_start(), "app_pages/timeline.py")
    computed = at.dataframe[0].value
    cache.put_views(_views_of(at.session_state["cd_engine"]))
    st.cache_data.clear()
    stored = _page(at, "app_pages/timeline.py").dataframe[0].value
    assert computed.equals(stored)


FAKE_VIEWS_JOB = r"""
import json, shutil, sys, time
src, hold = sys.argv[1], float(sys.argv[2])
with open("events.jsonl", "a") as f:
    f.write(json.dumps({"t": time.time(), "stage": "views", "fraction": 0.5, "message": "projection done"}) + "\n")
time.sleep(hold)
shutil.copyfile(src, "views.npz")
with open("events.jsonl", "a") as f:
    f.write(json.dumps({"t": time.time(), "stage": "done", "fraction": 1.0, "message": "", "views": "views.npz"})
            + "\n")
"""


def test_a_large_model_without_views_queues_one_job_shows_pca_meanwhile_then_uses_its_views(monkeypatch,
                                                                                              tmp_path):
    at = _start()
    eng = at.session_state["cd_engine"]
    ready = str(tmp_path / "ready.npz")
    views.save_views(ready, _views_of(eng))
    monkeypatch.setattr(model_views, "INLINE_MAX", 10)          # the 128-block sample counts as large
    monkeypatch.setattr(model_views, "views_argv",
                        lambda python=sys.executable: [python, "-c", FAKE_VIEWS_JOB, ready, "1.5"])
    _forbid(monkeypatch)
    before = {j.id for j in cache.job_queue().jobs()}       # the queue is the server's: earlier tests' jobs stay
    _page(at, "app_pages/manifold.py")
    assert "background job" in _texts(at) and "PCA" in _texts(at)
    assert any("PCA 2-D" in c.value for c in at.caption)
    _page(at, "app_pages/timeline.py")
    _page(at, "app_pages/overview.py")
    other = _page(_start(), "app_pages/manifold.py")             # another session, the same model
    jobs = [j for j in cache.job_queue().jobs() if j.label.startswith("views of") and j.id not in before]
    assert len(jobs) == 1 and "views of 128 blocks" in jobs[0].label
    assert cache.job_queue().wait(jobs[0].id, 60).state == "done"
    for a in (at, other):
        _page(a, "app_pages/manifold.py")
        assert "computed with the model" in _texts(a) and "background job" not in _texts(a)
    assert cache.stored_views(projection.latents_key(eng.block_latents)) is not None


def test_a_failed_views_job_says_why_and_offers_to_try_again(monkeypatch):
    at = _start()
    monkeypatch.setattr(model_views, "INLINE_MAX", 10)
    monkeypatch.setattr(model_views, "views_argv",
                        lambda python=sys.executable: [python, "-c", "import sys; print('error: no luck', "
                                                                       "file=sys.stderr); sys.exit(2)"])
    before = {j.id for j in cache.job_queue().jobs()}       # the queue is the server's: earlier tests' jobs stay
    _page(at, "app_pages/timeline.py")
    job = next(j for j in cache.job_queue().jobs() if j.label.startswith("views of") and j.id not in before)
    assert cache.job_queue().wait(job.id, 30).state == "failed"
    _page(at, "app_pages/timeline.py")
    assert "failed: no luck" in _texts(at)
    at.button(key="views_retry").click().run()
    assert not at.exception
    again = [j for j in cache.job_queue().jobs() if j.label.startswith("views of") and j.id not in before]
    assert len(again) == 2 and np.unique([j.id for j in again]).size == 2
