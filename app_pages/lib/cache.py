"""The app's caches: what every rerun of a page would otherwise recompute, kept per server process.

Owns: ``clustering`` (``regimes.cluster_regimes``), ``ordering`` (``timeline.build_pseudo_timeline``),
``lower_bound`` (``metrics.mst_lower_bound``) and ``project`` (``projection.project``) behind
``st.cache_data`` keyed on an explicit sha1 of the arrays (``projection.latents_key``: Streamlit's own hashing
samples large arrays and misses edits; the arrays themselves are passed as underscore, i.e. unhashed, arguments),
``umap_warmup`` (one ``projection.UmapWarmup`` per server through ``st.cache_resource``; the environment variable
CHRONOS_UMAP_WARMUP=0, set by tests, keeps it from starting) and ``sample_checkpoint_bytes`` (the shipped model's
file, read once); ``job_queue`` is the server's one training-job queue (``jobs.JobQueue``, set up from
CHRONOS_JOB_DIR / CHRONOS_MAX_JOBS / CHRONOS_JOB_THREADS). ``st.cache_data`` hands every caller its own copy,
so nothing shared is ever mutated; the warm-up and the queue are shared on purpose (one JIT compilation, one
line of jobs per process) and only their own threads change them.
Stored model views (``chronoslib.views``, made by a job, never here): ``put_views`` / ``stored_views`` keep the
last VIEWS_KEPT per server keyed on ``latents_key`` (content-addressed, so sharing them between sessions is safe),
``attach_views_file`` loads one checked against the model's key, ``views_job`` / ``set_views_job`` remember
which queued job computes a key's views; ``clustering`` (default settings), ``ordering``, ``lower_bound`` and
``project`` (UMAP) answer from them when they are there.
The Data page's per-table work: ``computed`` (any small result, copied per caller) and ``figure`` (a plotly
figure, shared and never changed: ``st.plotly_chart`` serialises a copy) once per content key the caller builds
(a sha1 of the upload's bytes or of the dataset's arrays), so a rerun on a 1M-row table redoes none of it.
The library keeps no cache of its own: this module is the only one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numpy as np
import streamlit as st

from chronoslib import jobs, metrics, projection, regimes, timeline, views
from chronoslib.projection import Projection, UmapWarmup, latents_key
from chronoslib.views import ModelViews

ENTRIES = 16        # results kept per cached function (a 10k x 3 float32 projection is 120 kB)
_last = threading.local()   # _last.hit: whether the latest project() call was served from the cache


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _clustering(key: str, vol_key: str, k: int | None, k_range: tuple[int, int], seed: int, criterion: str,
                _latents: np.ndarray, _vol: np.ndarray | None) -> regimes.RegimeResult:
    # Above views.CLUSTER_INLINE_MAX blocks the sweep runs on a sample (bounded time in this process).
    res = views.cluster(_latents, k, k_range, seed, criterion, full_max=views.CLUSTER_INLINE_MAX)
    return regimes.relabel(res, _vol)


def clustering(latents: np.ndarray, k: int | None = None, block_vol: np.ndarray | None = None,
               k_range: tuple[int, int] = (2, 8), seed: int = 0, criterion: str = "silhouette",
               key: str | None = None) -> regimes.RegimeResult:
    """``regimes.cluster_regimes`` of the latents (N, D), once per content and settings in this process.

    ``key`` may be passed when the caller already has ``latents_key(latents)``. With stored views of these
    latents and the automatic-K defaults (``views.REGIME_SETTINGS``), their clustering, numbered by ``block_vol``.
    """
    key = key or latents_key(latents)
    stored = stored_views(key)
    s = views.REGIME_SETTINGS
    if stored is not None and k is None and (tuple(map(int, k_range)), int(seed), criterion) == (
            s["k_range"], s["seed"], s["criterion"]):
        return regimes.relabel(stored.regime, block_vol)
    vol_key = "" if block_vol is None else latents_key(np.asarray(block_vol, dtype=np.float64))
    return _clustering(key or latents_key(latents), vol_key, None if k is None else int(k),
                       (int(k_range[0]), int(k_range[1])), int(seed), criterion, latents, block_vol)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _ordering(key: str, method: str, _latents: np.ndarray) -> np.ndarray:
    return timeline.build_pseudo_timeline(_latents, method=method)


def ordering(latents: np.ndarray, method: str, key: str | None = None) -> np.ndarray:
    """``timeline.build_pseudo_timeline(latents, method)`` (N,), once per content and method in this process
    (from the stored views when they hold it)."""
    key = key or latents_key(latents)
    stored = stored_views(key)
    if stored is not None and method in stored.orderings:
        return stored.orderings[method].copy()
    return _ordering(key, method, latents)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _lower_bound(key: str, _latents: np.ndarray) -> float:
    return metrics.mst_lower_bound(_latents)


def lower_bound(latents: np.ndarray, key: str | None = None) -> float:
    """``metrics.mst_lower_bound(latents)``, the path-cost lower bound, once per content in this process (from
    the stored views when there are some)."""
    key = key or latents_key(latents)
    stored = stored_views(key)
    if stored is not None:
        return stored.lower_bound
    return _lower_bound(key, latents)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _project(key: str, method: str, dim: int, _latents: np.ndarray) -> Projection:
    _last.hit = False
    return projection.project(_latents, method, dim)


def project(latents: np.ndarray, method: str, dim: int, key: str | None = None) -> tuple[Projection, bool]:
    """(``projection.project`` of the latents (N, D), whether it came from the cache) for this process; a UMAP
    comes from the stored views when they hold one (``views.ModelViews.describe`` says how it was made)."""
    key = key or latents_key(latents)
    stored = stored_views(key)
    if stored is not None and method == stored.method and int(dim) in (2, 3):
        return Projection(stored.coords(int(dim)), stored.method, int(dim),
                          stored.seconds.get("projection", float("nan"))), True
    _last.hit = True
    proj = _project(key, method, int(dim), latents)
    return proj, bool(_last.hit)


@st.cache_resource(show_spinner=False)
def _warmup() -> UmapWarmup:
    return UmapWarmup()


def umap_warmup(start: bool = True) -> UmapWarmup:
    """The server's UMAP warm-up, started unless ``start=False`` or CHRONOS_UMAP_WARMUP=0 (tests: no 15-30 s
    numba compilation in the test process)."""
    w = _warmup()
    if start and os.environ.get("CHRONOS_UMAP_WARMUP", "1") != "0":
        w.start()
    return w


def umap_warming() -> bool:
    """Whether the UMAP warm-up is compiling right now (it slows every other measurement on this server)."""
    return _warmup().state == "running"


@st.cache_resource(show_spinner=False)
def sample_checkpoint_bytes(path: str) -> bytes:
    """The shipped checkpoint's bytes (shared and read-only: every session builds its own engine from them)."""
    with open(path, "rb") as f:
        return f.read()


@st.cache_resource(show_spinner=False)
def job_queue() -> jobs.JobQueue:
    """The server's training-job queue (shared by every session on purpose: one line, one set of slots)."""
    return jobs.JobQueue(**jobs.queue_settings(os.environ))


# ---------------------------------------------------------------------------------------------- stored model views
VIEWS_KEPT = 8      # models whose views this server keeps (15k blocks: ~0.6 MB each)


class _ViewsStore:
    """key -> ModelViews (most recent last) and key -> the job computing it; one per server, under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.views: dict[str, ModelViews] = {}
        self.jobs: dict[str, str] = {}


@st.cache_resource(show_spinner=False)
def _views_store() -> _ViewsStore:
    return _ViewsStore()


def put_views(v: ModelViews) -> None:
    """Keep ``v`` for every session on this server (read-only arrays; the oldest beyond VIEWS_KEPT go)."""
    store = _views_store()
    with store.lock:
        store.views.pop(v.key, None)
        store.views[v.key] = v
        while len(store.views) > VIEWS_KEPT:
            store.views.pop(next(iter(store.views)))


def stored_views(key: str) -> ModelViews | None:
    """The stored views of the latents with ``latents_key`` ``key``, or None."""
    store = _views_store()
    with store.lock:
        return store.views.get(key)


def attach_views_file(path: str, key: str) -> ModelViews | None:
    """Load the views file at ``path`` when it belongs to ``key`` and keep it (``put_views``); None when the
    file is missing, unreadable or another model's."""
    if not path or not os.path.exists(path):
        return None
    try:
        v = views.load_views(path, key)
    except (ValueError, OSError):
        return None
    put_views(v)
    return v


def views_job(key: str) -> str | None:
    """The id of the job submitted to compute ``key``'s views, if any."""
    store = _views_store()
    with store.lock:
        return store.jobs.get(key)


def claim_views_job(key: str, submit: Callable[[], str]) -> str:
    """The id of ``key``'s views job, submitting it with ``submit()`` (which returns the new job's id) when
    there is none; under the store's lock, so two sessions opening the same model queue one job."""
    store = _views_store()
    with store.lock:
        if key not in store.jobs:
            store.jobs[key] = submit()
        return store.jobs[key]


def set_views_job(key: str, job_id: str | None) -> None:
    store = _views_store()
    with store.lock:
        if job_id is None:
            store.jobs.pop(key, None)
        else:
            store.jobs[key] = job_id


@st.cache_data(max_entries=4 * ENTRIES, show_spinner=False)
def _computed(key: str, _compute: Callable[[], object]) -> object:
    return _compute()


def computed(key: str, compute: Callable[[], object]) -> object:
    """``compute()`` once per ``key`` in this process (each caller gets its own copy). ``key`` must name the
    content and the question (e.g. "columns:" + a sha1 of the table): the function itself is not hashed."""
    return _computed(key, compute)


@st.cache_resource(max_entries=ENTRIES, show_spinner=False)
def _figure(key: str, _build: Callable[[], object]) -> object:
    return _build()


def figure(key: str, build: Callable[[], object]) -> object:
    """The plotly figure ``build()`` makes, once per ``key`` (content of everything drawn + the choices) in
    this process. Shared between callers, not copied (unpickling a 20k-point figure costs ~0.2 s): read-only."""
    return _figure(key, build)
