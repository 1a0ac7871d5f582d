"""Typed access to the app's per-browser-session state (not a page: it is not listed in st.navigation).

Every key lives here, so pages never spell session-state keys themselves. Values are per session: a second
browser tab gets its own dataset and model, and nothing here is shared through ``st.cache_resource``.
Also owns the shared frame every page shows (``frame``: sidebar with dataset, model provenance, device and
training progress) and the background training run (``TrainJob``: a thread per run, whose engine becomes this
session's model only when it has finished).
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import streamlit as st
import torch

from chronoslib import ChronosDefragEngine, DefragConfig
from chronoslib.data import SAMPLES, Dataset, load_sample
from chronoslib.identity import data_fingerprint, model_fingerprint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root
SAMPLE_CHECKPOINT = os.path.join(ROOT, "sample_data", "sample_model.pt")
DEFAULT_SAMPLE = next(iter(SAMPLES))

K_DATASET, K_ENGINE, K_MODEL_INFO, K_ROUTER = "cd_dataset", "cd_engine", "cd_model_info", "_router_ran"
K_JOB = "cd_train_job"
K_DATA_INFO = "cd_data_info"  # {"id": data_fingerprint, "_obj": id(dataset)} of the session's dataset
K_FRAME_RAN = "_frame_ran"  # set by app.py's frame for the page run that follows it
# Where "Save model" writes (git-ignored); tests point it at a temporary folder.
MODEL_DIR = os.environ.get("CHRONOS_MODEL_DIR", os.path.join(ROOT, "checkpoints"))
# CHRONOS_FAST_UI=1 (set by the browser tests) makes the Train form default to a seconds-long run.
FAST_UI = os.environ.get("CHRONOS_FAST_UI", "") not in ("", "0")


@st.cache_resource(show_spinner=False)
def _sample_checkpoint_bytes() -> bytes:
    # Shared read-only bytes; every session builds its own engine from them, so nothing shared is mutated.
    with open(SAMPLE_CHECKPOINT, "rb") as f:
        return f.read()


SHIPPED_ORIGIN = "shipped sample checkpoint"


def init_defaults() -> None:
    """Load the shipped sample dataset and pre-trained model into a new session."""
    if K_DATASET not in st.session_state:
        set_dataset(load_sample(DEFAULT_SAMPLE))
    if K_ENGINE not in st.session_state:
        set_engine(ChronosDefragEngine.load(_sample_checkpoint_bytes()), SHIPPED_ORIGIN, DEFAULT_SAMPLE)


def dataset() -> Dataset:
    return st.session_state[K_DATASET]


def set_dataset(ds: Dataset) -> None:
    st.session_state[K_DATA_INFO] = {"id": data_fingerprint(ds.features, ds.name, ds.split), "_obj": id(ds)}
    st.session_state[K_DATASET] = ds


def engine() -> ChronosDefragEngine | None:
    return st.session_state.get(K_ENGINE)


def model_info() -> dict[str, Any]:
    return st.session_state.get(K_MODEL_INFO, {})


def set_engine(eng: ChronosDefragEngine, origin: str, dataset_name: str) -> None:
    """Make ``eng`` the session's model; its fingerprint is computed here, once (fit, load, shipped)."""
    info = {"origin": origin, "dataset": dataset_name, "when": eng.meta.get("fitted_at", "?"),
            "id": model_fingerprint(eng), "_obj": id(eng)}
    st.session_state[K_MODEL_INFO] = info
    st.session_state[K_ENGINE] = eng


def model_id() -> str:
    """The current model's fingerprint (computed once per model and kept with its info)."""
    info = st.session_state.get(K_MODEL_INFO)
    eng = engine()
    if info is not None and info.get("id") and info.get("_obj") == id(eng):
        return info["id"]
    fid = model_fingerprint(eng)
    if info is not None:
        info.update(id=fid, _obj=id(eng))
    return fid


def data_id() -> str:
    """The current dataset's fingerprint (computed once per dataset object)."""
    info = st.session_state.get(K_DATA_INFO)
    ds = st.session_state.get(K_DATASET)
    if info is not None and info.get("_obj") == id(ds):
        return info["id"]
    fid = "" if ds is None else data_fingerprint(ds.features, ds.name, ds.split)
    st.session_state[K_DATA_INFO] = info = {"id": fid, "_obj": id(ds)}
    return info["id"]


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


def result_is_current(tag: dict[str, str] | None) -> bool:
    """Whether a derived result stored with ``tag`` (``result_tag``) belongs to the current model and data."""
    return stale_reason(tag, "") is None


def get(key: str, default: Any = None) -> Any:
    """Page-owned plain values (kept across page switches, unlike widget state)."""
    return st.session_state.get(f"cd_{key}", default)


def put(key: str, value: Any) -> None:
    st.session_state[f"cd_{key}"] = value


def guard() -> None:
    """Send a direct first request for a page through app.py so the router and defaults run first.

    When a page runs without app.py in the same run (Streamlit's legacy ``app_pages/`` router, which AppTest's
    ``switch_page`` also uses), draw the frame here so the sidebar and finished-training pickup still happen.
    """
    if not st.session_state.get(K_ROUTER):
        st.switch_page("app.py")
    if not st.session_state.pop(K_FRAME_RAN, False):
        frame(None, mark=False)
    st.session_state.pop(K_FRAME_RAN, None)


def _training_status() -> None:
    """Sidebar progress of a run in flight; reruns the whole app when it ends so every page sees the model."""
    job = training_job()
    if job is None or job.installed:
        return
    if job.done:
        st.rerun()
    st.progress(job.fraction(), text=f"Training: {job.status_line()}")


def frame(current_title: str | None, mark: bool = True) -> None:
    """The shared sidebar (active dataset, model provenance, device, training progress) for every page.

    Also installs a finished training run as this session's model. ``current_title`` is the page about to
    run; the Train page shows its own progress, so the sidebar does not repeat it there.
    """
    poll_training()
    with st.sidebar:
        ds, info, eng = dataset(), model_info(), engine()
        st.markdown("### :material/explore: ChronosDefrag")
        held = ds.features.shape[0] - ds.split
        st.caption(f"**Data:** {ds.name}  \n{ds.features.shape[0]:,} ticks × {ds.features.shape[1]} features · "
                   f"{held:,} held out")
        if eng is not None:
            st.caption(f"**Model:** {info.get('origin', '?')} · on *{info.get('dataset', '?')}* · "
                       f"{len(eng.block_latents):,} blocks · {describe_when(info.get('when'))}")
            if (why := model_mismatch()) is not None:
                st.warning(f"Model and data do not match: {why}. Train or load a matching model.",
                           icon=":material/warning:")
        else:
            st.caption("**Model:** none yet — train one on the Train page")
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        st.caption(f"**Device:** {'cuda · ' + gpu if gpu else 'cpu (no CUDA device)'}")
        job = training_job()
        if job is not None and job.running and current_title != "Train":
            st.fragment(_training_status, run_every=1.0)()
    if mark:
        st.session_state[K_FRAME_RAN] = True


# ---------------------------------------------------------------------------------------------- model provenance
def describe_when(iso: str | None) -> str:
    """'2024-05-01 12:00 UTC' from the engine's ISO ``fitted_at`` stamp (anything unparsable is shown as is)."""
    if not iso or iso == "?":
        return "unknown time"
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(iso)


def model_mismatch() -> str | None:
    """Why the active model cannot be applied to the active dataset (feature count), or None when it can."""
    eng, ds = engine(), dataset()
    if eng is None:
        return None
    f_model, f_data = eng.cfg.encoder.input_dim, ds.features.shape[1]
    if f_model != f_data:
        return f"the model expects {f_model} features per tick but *{ds.name}* has {f_data}"
    return None


def safe_filename(name: str, suffix: str = ".pt") -> str:
    """A plain file name (letters, digits, '-', '_', '.') for saving on the server: no folders, no dot-files."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(name.strip())).strip("._") or "model"
    return stem if stem.endswith(suffix) else stem + suffix


def saved_models() -> list[str]:
    """Regular checkpoint files in ``MODEL_DIR``, newest first (folders, symlinks and dot-files are skipped: a
    dangling or looping link must not break the picker)."""
    try:
        entries = list(os.scandir(MODEL_DIR))
    except OSError:
        return []
    files = []
    for e in entries:
        try:
            if e.name.endswith(".pt") and not e.name.startswith(".") and e.is_file(follow_symlinks=False):
                files.append((e.stat(follow_symlinks=False).st_mtime, e.name))
        except OSError:     # removed meanwhile
            continue
    return [name for _, name in sorted(files, reverse=True)]


# ---------------------------------------------------------------------------------------------- background training
class TrainingCancelled(RuntimeError):
    """Raised inside ``fit`` (through its progress callback) when the user presses Cancel."""


class TrainJob:
    """One training run of a fresh engine on a thread, so the page stays responsive while it trains.

    The engine is private to the job until ``fit`` returns (``fit`` commits its state only at the end), and
    only then does ``poll_training`` put it into this session's state: a failed or cancelled run leaves the
    active model untouched, and no other browser session ever sees it. The page reads progress and the
    per-epoch history through ``snapshot`` (under a lock: the training thread appends to it).
    """

    def __init__(self, cfg: DefragConfig, data: np.ndarray, dataset_name: str, meta: dict[str, Any]) -> None:
        self.engine = ChronosDefragEngine(cfg)   # validates cfg: ConfigError before any thread starts
        self.engine.meta.update(meta)
        self.data = data                         # (T_train, F) the dataset's training span only
        self.dataset_name = dataset_name
        self.encoder_epochs, self.predictor_epochs = cfg.optim.encoder_epochs, cfg.optim.predictor_epochs
        self.error: str | None = None
        self.cancelled = False
        self.done = False
        self.installed = False                   # set by poll_training once the result reached the session
        self.started = time.time()
        self.finished: float | None = None
        self._history: list[dict[str, Any]] = []
        self._stage, self._step, self._total = "starting", 0, 1
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chronos-train", daemon=True)

    def start(self) -> TrainJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True when it has."""
        self._thread.join(timeout)
        return self.done

    @property
    def running(self) -> bool:
        return not self.done

    def _progress(self, stage: str, step: int, total: int, metrics: dict) -> None:
        if self._cancel.is_set():
            raise TrainingCancelled("training was cancelled")
        with self._lock:
            self._stage, self._step, self._total = stage, step, total
            if stage in ("encoder", "predictor"):
                self._history.append(dict(metrics))

    def _run(self) -> None:
        try:
            self.engine.fit(self.data, progress=self._progress)
        except TrainingCancelled:
            self.cancelled = True
            self.error = "Training was cancelled; the previous model is still active."
        except (ValueError, RuntimeError) as exc:  # bad config / data: the library's messages name the problem
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 — a page never shows a traceback; the message still names it
            self.error = f"training failed: {type(exc).__name__}: {exc}"
        finally:
            self.finished = time.time()
            self.done = True

    def snapshot(self) -> tuple[str, int, int, list[dict[str, Any]]]:
        """(stage, step, total, history copy) as of now."""
        with self._lock:
            return self._stage, self._step, self._total, list(self._history)

    def fraction(self) -> float:
        """Share of the run done, counting encoder epochs, the pseudo-timeline and predictor epochs as units."""
        if self.done:
            return 1.0
        stage, step, _, _ = self.snapshot()
        units = self.encoder_epochs + 1 + self.predictor_epochs
        done = {"encoder": step, "pseudo_timeline": self.encoder_epochs + 1,
                "predictor": self.encoder_epochs + 1 + step}.get(stage, 0)
        return min(done / max(units, 1), 1.0)

    def status_line(self) -> str:
        stage, step, total, _ = self.snapshot()
        elapsed = (self.finished or time.time()) - self.started
        what = {"encoder": f"encoder epoch {step}/{total}", "pseudo_timeline": "building the pseudo-timeline",
                "predictor": f"predictor epoch {step}/{total}"}.get(stage, "starting")
        return f"{what} · {elapsed:.1f} s"


def training_job() -> TrainJob | None:
    return st.session_state.get(K_JOB)


def start_training(cfg: DefragConfig, ds: Dataset) -> TrainJob:
    """Train a fresh engine on ``ds.train`` in the background; ``poll_training`` installs it when done.

    Sets ``cfg.encoder.input_dim`` and the data section from the dataset (keeping ``cfg.data.normalize``).
    Raises ConfigError for a bad config and RuntimeError when this session is already training.
    """
    job = training_job()
    if job is not None and job.running:
        raise RuntimeError("a training run is already in progress in this session; wait for it or cancel it")
    ds.configure(cfg)  # input_dim and the data recipe (columns, transforms), so live windows are treated alike
    meta = {"dataset": ds.name, "feature_names": list(ds.feature_names), "train_ticks": int(ds.split),
            "source": "ChronosDefrag app"}
    job = TrainJob(cfg, ds.train, ds.name, meta)
    st.session_state[K_JOB] = job
    return job.start()


def poll_training() -> TrainJob | None:
    """Install a finished job's engine as this session's model (once); return the job, if any."""
    job = training_job()
    if job is not None and job.done and not job.installed:
        job.installed = True
        if job.error is None:
            set_engine(job.engine, "trained in this session", job.dataset_name)
    return job


def model_view(purpose: str) -> tuple[ChronosDefragEngine, Dataset, Any]:
    """(engine, dataset, ``regimes.block_view``) of the active model; otherwise a message and ``st.stop()``."""
    from chronoslib import regimes

    eng, ds = engine(), dataset()
    if eng is None or getattr(eng, "block_latents", None) is None:
        st.info(f"No model yet: train one on the Train page (or load a checkpoint) to see its {purpose}.")
        st.stop()
    try:
        view = regimes.block_view(eng.block_latents, eng.block_starts, int(eng.cfg.encoder.block_len),
                                  eng.pseudo_timeline, ds.features, ds.prices, ds.timestamps, ds.labels)
    except (ValueError, RuntimeError) as exc:
        st.error(str(exc))
        st.stop()
    return eng, ds, view
