"""Every key of the app's per-browser-session state, with typed access (not a page: it is not in st.navigation).

Each value has one ``Slot`` here (its key, type and default), so pages never spell a session-state key or touch
``st.session_state`` themselves; widgets whose value a page reads back (a chart selection, the replay player)
have a ``Slot`` too, and their ``key`` is passed to the widget. Values are per session: a second browser tab
gets its own dataset and model, and nothing here is shared between sessions (``cache`` holds what is).
Also owns the session's dataset and model, their fingerprints (computed once per object) and what a derived
result is tagged with (``result_tag`` / ``stale_reason``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

import streamlit as st

from chronoslib import ChronosDefragEngine
from chronoslib.data import SAMPLES, Dataset, load_sample
from chronoslib.identity import data_fingerprint, model_fingerprint

from . import cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root
SAMPLE_CHECKPOINT = os.path.join(ROOT, "sample_data", "sample_model.pt")
DEFAULT_SAMPLE = next(iter(SAMPLES))
SHIPPED_ORIGIN = "shipped sample checkpoint"
# CHRONOS_FAST_UI=1 (set by the browser tests) makes the Train form default to a seconds-long run and the
# Manifold page open on PCA.
FAST_UI = os.environ.get("CHRONOS_FAST_UI", "") not in ("", "0")

T = TypeVar("T")


class Slot(Generic[T]):
    """One session-state value: ``get`` (the stored value, else the default), ``set``, ``clear``."""

    def __init__(self, key: str, default: Callable[[], T]) -> None:
        self.key, self._default = key, default

    def get(self) -> T:
        return st.session_state[self.key] if self.key in st.session_state else self._default()

    def set(self, value: T) -> None:
        st.session_state[self.key] = value

    def setdefault(self, value: T) -> T:
        return st.session_state.setdefault(self.key, value)

    def clear(self) -> None:
        st.session_state.pop(self.key, None)


def _none() -> None:
    return None


# ---------------------------------------------------------------------------------------------- the session's objects
DATASET: Slot[Dataset | None] = Slot("cd_dataset", _none)
ENGINE: Slot[ChronosDefragEngine | None] = Slot("cd_engine", _none)
MODEL_INFO: Slot[dict[str, Any]] = Slot("cd_model_info", dict)   # origin, dataset, when, id (+ "_obj")
DATA_INFO: Slot[dict[str, Any] | None] = Slot("cd_data_info", _none)  # {"id": fingerprint, "_obj": id(dataset)}
TRAIN_JOB: Slot[dict[str, Any] | None] = Slot("cd_train_job", _none)   # {"id", "dataset", "installed"} of the job
SESSION_TAG: Slot[str | None] = Slot("cd_session_tag", _none)    # names this session in the job queue's labels
# Data page
DATA_TABLE: Slot[dict[str, Any] | None] = Slot("cd_data_table", _none)   # the raw table the column controls edit
DATA_APPLIED: Slot[str | None] = Slot("cd_data_applied", _none)          # token of the table now in use
DATA_UPLOAD_ID: Slot[str | None] = Slot("cd_data_upload_id", _none)
DATA_UPLOAD_SOURCE: Slot[dict[str, Any] | None] = Slot("cd_data_upload_source", _none)  # {"token", "name", "bytes"}
DATA_FLASH: Slot[str | None] = Slot("cd_data_flash", _none)
# Train page
TRAIN_SETTINGS: Slot[dict[str, Any] | None] = Slot("cd_train_settings", _none)
TRAIN_FLASH: Slot[str | None] = Slot("cd_train_flash", _none)
# Regime clustering settings: chosen on the Manifold page, used by the Timeline page too
REGIME_K: Slot[int | None] = Slot("cd_regime_k", _none)          # None: choose K automatically
REGIME_CRITERION: Slot[str] = Slot("cd_regime_criterion", lambda: "silhouette")
REGIME_K_RANGE: Slot[tuple[int, int] | None] = Slot("cd_regime_k_range", _none)
# Manifold page
MF_MODEL: Slot[str | None] = Slot("cd_mf_model", _none)          # model the picks below belong to
MF_SELECTED: Slot[list[int]] = Slot("cd_mf_selected", list)
MF_LAST_PICK: Slot[list[int]] = Slot("cd_mf_last_pick", list)
MF_FOCUS: Slot[int] = Slot("cd_mf_focus", lambda: 0)
MF_KNN: Slot[int] = Slot("cd_mf_knn", lambda: 8)
MF_METHOD: Slot[str] = Slot("cd_mf_method", lambda: "PCA" if FAST_UI else "UMAP")
MF_DIM: Slot[int] = Slot("cd_mf_dim", lambda: 2)
MF_COLOUR: Slot[str] = Slot("cd_mf_colour", lambda: "regime cluster")
MF_PROJECTION_EVENT: Slot[Any] = Slot("mf_projection", _none)    # the projection chart's selection (widget)
MF_BLOCK_INPUT: Slot[int] = Slot("mf_block_input", lambda: 0)     # widget
MF_KNN_INPUT: Slot[int] = Slot("mf_knn_input", lambda: 8)         # widget
# Timeline page
TL_LABELS: Slot[str | None] = Slot("cd_tl_labels", _none)
TL_LAYOUT: Slot[str] = Slot("cd_tl_layout", lambda: "side by side")
TL_ORDERING: Slot[str] = Slot("cd_tl_ordering", lambda: "as trained")   # "as trained" | timeline method name
# Live replay page (REPLAY, REPLAY_TAG and REPLAY_RECORDS are read by Manifold, Latency and Diagnostics too)
REPLAY: Slot[Any] = Slot("cd_replay", _none)                      # replay.ReplaySession | None
REPLAY_TAG: Slot[dict[str, str] | None] = Slot("cd_replay_tag", _none)   # result_tag of the replay
REPLAY_RECORDS: Slot[list[dict[str, Any]]] = Slot("cd_replay_records", list)
REPLAY_SIG: Slot[tuple | None] = Slot("cd_replay_sig", _none)
REPLAY_SETTINGS: Slot[dict[str, Any] | None] = Slot("cd_replay_settings", _none)
REPLAY_SETTINGS_NOTE: Slot[str | None] = Slot("cd_replay_settings_note", _none)
REPLAY_PLAYING: Slot[bool] = Slot("cd_replay_playing", lambda: False)
REPLAY_CHUNK: Slot[int] = Slot("cd_replay_chunk", lambda: 0)
REPLAY_FRESH: Slot[bool] = Slot("cd_replay_fresh", lambda: True)
REPLAY_ERROR: Slot[str | None] = Slot("cd_replay_error", _none)
REPLAY_REGIMES: Slot[tuple | None] = Slot("cd_replay_regimes", _none)          # ((model, data), regimes)
REPLAY_SHOWN_REGIMES: Slot[tuple | None] = Slot("cd_replay_shown_regimes", _none)  # (id(replay), regimes)
RP_PLAYER: Slot[dict[str, Any] | None] = Slot("rp_player", _none)              # the player's value (widget)
# Latency, Diagnostics and Evidence pages
LAT_CALLS: Slot[int] = Slot("cd_lat_calls", lambda: 500)
LAT_RESULT: Slot[dict[str, Any] | None] = Slot("cd_lat_result", _none)
DIAG_SETTINGS: Slot[dict[str, Any] | None] = Slot("cd_diag_settings", _none)
EVIDENCE_RESULTS: Slot[dict[str, Any]] = Slot("cd_evidence_results", dict)   # per dataset + model


# ---------------------------------------------------------------------------------------------- dataset and model
def init_defaults() -> None:
    """Load the shipped sample dataset and pre-trained model into a new session."""
    if DATASET.key not in st.session_state:
        set_dataset(load_sample(DEFAULT_SAMPLE))
    if ENGINE.key not in st.session_state:
        set_engine(ChronosDefragEngine.load(cache.sample_checkpoint_bytes(SAMPLE_CHECKPOINT)), SHIPPED_ORIGIN,
                   DEFAULT_SAMPLE)


def dataset() -> Dataset:
    return st.session_state[DATASET.key]


def set_dataset(ds: Dataset) -> None:
    DATA_INFO.set({"id": data_fingerprint(ds.features, ds.name, ds.split), "_obj": id(ds)})
    DATASET.set(ds)


def engine() -> ChronosDefragEngine | None:
    return ENGINE.get()


def model_info() -> dict[str, Any]:
    return MODEL_INFO.get()


def set_engine(eng: ChronosDefragEngine, origin: str, dataset_name: str) -> None:
    """Make ``eng`` the session's model; its fingerprint is computed here, once (fit, load, shipped)."""
    MODEL_INFO.set({"origin": origin, "dataset": dataset_name, "when": eng.meta.get("fitted_at", "?"),
                    "id": model_fingerprint(eng), "_obj": id(eng)})
    ENGINE.set(eng)


def model_id() -> str:
    """The current model's fingerprint (computed once per model and kept with its info)."""
    info = st.session_state.get(MODEL_INFO.key)
    eng = engine()
    if info is not None and info.get("id") and info.get("_obj") == id(eng):
        return info["id"]
    fid = model_fingerprint(eng)
    if info is not None:
        info.update(id=fid, _obj=id(eng))
    return fid


def data_id() -> str:
    """The current dataset's fingerprint (computed once per dataset object)."""
    info, ds = DATA_INFO.get(), DATASET.get()
    if info is not None and info.get("_obj") == id(ds):
        return info["id"]
    fid = "" if ds is None else data_fingerprint(ds.features, ds.name, ds.split)
    DATA_INFO.set({"id": fid, "_obj": id(ds)})
    return fid


# ---------------------------------------------------------------------------------------------- provenance
def describe_when(iso: str | None) -> str:
    """'2024-05-01 12:00 UTC' from the engine's ISO ``fitted_at`` stamp (anything unparsable is shown as is)."""
    if not iso or iso == "?":
        return "unknown time"
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(iso)


def model_label(info: dict[str, Any] | None = None) -> str:
    """'model 3f2a1c0d9e8b (trained in this session, 2026-01-01 12:00 UTC)' for the current or a tagged model."""
    info = model_info() | {"id": model_id()} if info is None else info
    fid = info.get("id") or info.get("model") or "?"
    return f"model {fid} ({info.get('origin', '?')}, {describe_when(info.get('when'))})"


def result_tag() -> dict[str, str]:
    """The identity a derived result is stored with: the current model and data fingerprints, and what to call
    them in a message. Store it next to the result when the result is made."""
    info = model_info()
    return {"model": model_id(), "data": data_id(), "origin": str(info.get("origin", "?")),
            "when": str(info.get("when", "?")), "dataset": dataset().name}


def stale_reason(tag: dict[str, str] | None, what: str) -> str | None:
    """None when a result tagged with ``tag`` (``result_tag``) belongs to the current model and data; otherwise
    a sentence naming what ``what`` (e.g. "The last replay") was made with and what is current now."""
    if tag is not None and tag.get("model") == model_id() and tag.get("data") == data_id():
        return None
    if tag is None or not tag.get("model"):
        return f"{what} belongs to no known model, so it is not used with the current {model_label()}."
    if tag.get("model") != model_id():
        return (f"{what} was made with {model_label(tag)}; the current model is {model_label()}, "
                "so it is not used here.")
    return (f"{what} was made on the data *{tag.get('dataset', '?')}* ({tag.get('data') or '?'}); the current "
            f"data is *{dataset().name}* ({data_id()}), so it is not used here.")


def model_mismatch() -> str | None:
    """Why the active model cannot be applied to the active dataset (feature count), or None when it can."""
    eng, ds = engine(), dataset()
    if eng is None:
        return None
    f_model, f_data = eng.cfg.encoder.input_dim, ds.features.shape[1]
    if f_model != f_data:
        return f"the model expects {f_model} features per tick but *{ds.name}* has {f_data}"
    return None
