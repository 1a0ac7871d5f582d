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

from chronoslib import jobs, metrics, projection, regimes, timeline
from chronoslib.projection import Projection, UmapWarmup, latents_key

ENTRIES = 16        # results kept per cached function (a 10k x 3 float32 projection is 120 kB)
_last = threading.local()   # _last.hit: whether the latest project() call was served from the cache


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _clustering(key: str, vol_key: str, k: int | None, k_range: tuple[int, int], seed: int, criterion: str,
                _latents: np.ndarray, _vol: np.ndarray | None) -> regimes.RegimeResult:
    return regimes.cluster_regimes(_latents, k, _vol, k_range, seed, criterion)


def clustering(latents: np.ndarray, k: int | None = None, block_vol: np.ndarray | None = None,
               k_range: tuple[int, int] = (2, 8), seed: int = 0, criterion: str = "silhouette",
               key: str | None = None) -> regimes.RegimeResult:
    """``regimes.cluster_regimes`` of the latents (N, D), once per content and settings in this process.

    ``key`` may be passed when the caller already has ``latents_key(latents)``.
    """
    vol_key = "" if block_vol is None else latents_key(np.asarray(block_vol, dtype=np.float64))
    return _clustering(key or latents_key(latents), vol_key, None if k is None else int(k),
                       (int(k_range[0]), int(k_range[1])), int(seed), criterion, latents, block_vol)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _ordering(key: str, method: str, _latents: np.ndarray) -> np.ndarray:
    return timeline.build_pseudo_timeline(_latents, method=method)


def ordering(latents: np.ndarray, method: str, key: str | None = None) -> np.ndarray:
    """``timeline.build_pseudo_timeline(latents, method)`` (N,), once per content and method in this process."""
    return _ordering(key or latents_key(latents), method, latents)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _lower_bound(key: str, _latents: np.ndarray) -> float:
    return metrics.mst_lower_bound(_latents)


def lower_bound(latents: np.ndarray, key: str | None = None) -> float:
    """``metrics.mst_lower_bound(latents)``, the path-cost lower bound, once per content in this process."""
    return _lower_bound(key or latents_key(latents), latents)


@st.cache_data(max_entries=ENTRIES, show_spinner=False)
def _project(key: str, method: str, dim: int, _latents: np.ndarray) -> Projection:
    _last.hit = False
    return projection.project(_latents, method, dim)


def project(latents: np.ndarray, method: str, dim: int, key: str | None = None) -> tuple[Projection, bool]:
    """(``projection.project`` of the latents (N, D), whether it came from the cache) for this process."""
    _last.hit = True
    proj = _project(key or latents_key(latents), method, int(dim), latents)
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


@st.cache_resource(show_spinner=False)
def job_queue() -> jobs.JobQueue:
    """The server's training-job queue (shared by every session on purpose: one line, one set of slots)."""
    return jobs.JobQueue(**jobs.queue_settings(os.environ))
