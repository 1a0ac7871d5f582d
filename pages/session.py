"""Typed access to the app's per-browser-session state (not a page: it is not listed in st.navigation).

Every key lives here, so pages never spell session-state keys themselves. Values are per session: a second
browser tab gets its own dataset and model, and nothing here is shared through ``st.cache_resource``.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from chronoslib import ChronosDefragEngine
from chronoslib.data import SAMPLES, Dataset, load_sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CHECKPOINT = os.path.join(ROOT, "sample_data", "sample_model.pt")
DEFAULT_SAMPLE = next(iter(SAMPLES))

K_DATASET, K_ENGINE, K_MODEL_INFO, K_ROUTER = "cd_dataset", "cd_engine", "cd_model_info", "_router_ran"


@st.cache_resource(show_spinner=False)
def _sample_checkpoint_bytes() -> bytes:
    # Shared read-only bytes; every session builds its own engine from them, so nothing shared is mutated.
    with open(SAMPLE_CHECKPOINT, "rb") as f:
        return f.read()


def init_defaults() -> None:
    """Load the shipped sample dataset and pre-trained model into a new session."""
    if K_DATASET not in st.session_state:
        st.session_state[K_DATASET] = load_sample(DEFAULT_SAMPLE)
    if K_ENGINE not in st.session_state:
        eng = ChronosDefragEngine.load(_sample_checkpoint_bytes())
        st.session_state[K_ENGINE] = eng
        st.session_state[K_MODEL_INFO] = {"origin": "shipped sample checkpoint", "dataset": DEFAULT_SAMPLE,
                                          "when": eng.meta.get("fitted_at", "?")}


def dataset() -> Dataset:
    return st.session_state[K_DATASET]


def set_dataset(ds: Dataset) -> None:
    st.session_state[K_DATASET] = ds


def engine() -> ChronosDefragEngine | None:
    return st.session_state.get(K_ENGINE)


def model_info() -> dict[str, Any]:
    return st.session_state.get(K_MODEL_INFO, {})


def set_engine(eng: ChronosDefragEngine, origin: str, dataset_name: str) -> None:
    st.session_state[K_ENGINE] = eng
    st.session_state[K_MODEL_INFO] = {"origin": origin, "dataset": dataset_name,
                                      "when": eng.meta.get("fitted_at", "?")}


def get(key: str, default: Any = None) -> Any:
    """Page-owned plain values (kept across page switches, unlike widget state)."""
    return st.session_state.get(f"cd_{key}", default)


def put(key: str, value: Any) -> None:
    st.session_state[f"cd_{key}"] = value


def guard() -> None:
    """Send a direct first request for a page through app.py so the router and defaults run first."""
    if not st.session_state.get(K_ROUTER):
        st.switch_page("app.py")
