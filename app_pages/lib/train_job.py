"""The session's background training run: ``TrainJob`` (a thread per run, so pages stay responsive and the run
can be cancelled), ``start_training`` and ``poll_training``, which makes a finished run's engine this session's
model (and nobody else's). Training stays on a thread in the Streamlit process; the engine is private to the job
until ``fit`` has returned.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from chronoslib import ChronosDefragEngine, DefragConfig
from chronoslib.data import Dataset

from . import session


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
    return session.TRAIN_JOB.get()


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
    session.TRAIN_JOB.set(job)
    return job.start()


def poll_training() -> TrainJob | None:
    """Install a finished job's engine as this session's model (once); return the job, if any."""
    job = training_job()
    if job is not None and job.done and not job.installed:
        job.installed = True
        if job.error is None:
            session.set_engine(job.engine, "trained in this session", job.dataset_name)
    return job
