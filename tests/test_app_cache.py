"""The app's caches (app_pages/lib/cache.py): keyed on the arrays' content, a copy per caller, one UMAP warm-up."""

import numpy as np
import pytest
import streamlit as st

from app_pages.lib import cache
from chronoslib import regimes


def _groups(seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, 8)) * 4
    return np.concatenate([c + rng.standard_normal((20, 8)) * 0.3 for c in centres])


@pytest.fixture(autouse=True)
def _empty_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def test_clustering_is_computed_once_per_content_and_every_caller_gets_its_own_copy(monkeypatch):
    z = _groups()
    a = cache.clustering(z, k_range=(2, 4))
    monkeypatch.setattr(regimes, "cluster_regimes", lambda *a, **k: pytest.fail("recomputed a cached clustering"))
    b = cache.clustering(z.copy(), k_range=(2, 4))
    assert b is not a and np.array_equal(a.labels, b.labels) and a.k == b.k
    b.labels[:] = -1                     # a caller's copy: the cached result stays as it was
    assert np.array_equal(cache.clustering(z, k_range=(2, 4)).labels, a.labels)
    with pytest.raises(pytest.fail.Exception):
        cache.clustering(z, k=2)         # other settings: computed again


def test_projection_reports_a_cache_hit_and_a_single_edit_misses():
    z = _groups()
    p, hit = cache.project(z, "pca", 2)
    assert not hit and p.coords.shape == (60, 2)
    q, hit = cache.project(z.copy(), "pca", 2)
    assert hit and np.array_equal(q.coords, p.coords)
    z2 = z.copy()
    z2[7, 3] += 1e-3
    assert not cache.project(z2, "pca", 2)[1] and not cache.project(z, "pca", 3)[1]


def test_the_umap_warm_up_is_one_per_server_and_stays_idle_when_tests_switch_it_off(monkeypatch):
    monkeypatch.setenv("CHRONOS_UMAP_WARMUP", "0")
    w = cache.umap_warmup()
    assert w is cache.umap_warmup() and w.state == "idle" and not cache.umap_warming()
