"""The session's training job, as a client of the server's job queue (``cache.job_queue``): ``start_training``
(writes the data and the config into a job and queues ``python -m chronoslib train`` for it), ``poll_training``
(installs a finished job's checkpoint as THIS session's model, once), ``cancel`` and ``status`` (what the Train
page and the sidebar show: stage, step, speed, time left, queue place, the epochs so far).

Training never runs in the Streamlit process: the job is a separate process, so other visitors are unaffected
and a cancel kills it outright. The active model stays as it is until a job finishes, and after a cancel or a
failure. Which session a job belongs to is the job's ``owner`` (the session's tag); any session may cancel any
job (the sidebar lists them all, labelled with their dataset and session tag).
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from chronoslib import ChronosDefragEngine, DefragConfig, jobs
from chronoslib.data import SAMPLE_DIR, SAMPLES, Dataset
from chronoslib.errors import CheckpointError

from . import cache, session

STAGE_TEXT = {"starting": "Starting the training process", "loading": "Reading the data",
              "encoder": "Encoder", "predictor": "Predictor", "pseudo_timeline": "Building the pseudo-timeline",
              "registry": "Building the registry", "saving": "Saving the checkpoint", "views": "Computing the views",
              "done": "Finished", "failed": "Failed"}


# ---------------------------------------------------------------------------------------------- the session's job
def session_tag() -> str:
    """A short tag naming this browser session in job labels (made once per session)."""
    return session.SESSION_TAG.setdefault(uuid.uuid4().hex[:4])


def training_ref() -> dict[str, Any] | None:
    """{"id", "dataset", "installed"} of this session's latest job, or None."""
    return session.TRAIN_JOB.get()


def training_job() -> jobs.Job | None:
    """This session's latest job (queued, running or finished), or None."""
    ref = training_ref()
    return None if ref is None else cache.job_queue().get(ref["id"])


def running() -> bool:
    job = training_job()
    return job is not None and job.active


def start_training(cfg: DefragConfig, ds: Dataset) -> jobs.Job:
    """Queue a training job on ``ds`` with ``cfg``'s model and optimisation settings.

    The data recipe (columns, transforms, split) is ``ds``'s own, passed as command-line flags, so the job builds
    the same dataset from the same file. Raises ConfigError for a bad config, RuntimeError when this session
    already has a job queued or running.
    """
    if running():
        raise RuntimeError("a training job of this session is already queued or running; wait for it or cancel it")
    ds.configure(cfg).validate()              # input_dim and the data recipe: refuse a bad config here, not later
    name, content, sort = job_source(ds)
    recipe = job_recipe(ds, sort)
    argv = jobs.train_argv(os.path.join(jobs.JOB_DIR_TOKEN, name), os.path.join(jobs.JOB_DIR_TOKEN, jobs.CONFIG),
                           recipe, threads=cache.job_queue().threads,
                           views=os.path.join(jobs.JOB_DIR_TOKEN, jobs.VIEWS))   # what the model pages draw
    tag = session_tag()
    job = cache.job_queue().submit(argv, owner=tag, label=f"{ds.name} · session {tag}",
                                   files={name: content, jobs.CONFIG: json.dumps(cfg.to_dict()).encode()})
    session.TRAIN_JOB.set({"id": job.id, "dataset": ds.name, "installed": False})
    return job


def job_source(ds: Dataset) -> tuple[str, bytes | str, bool]:
    """(file name, bytes or a path, sort flag) of the file the job reads: the uploaded file's own bytes when
    ``ds`` was built from the upload in hand, the shipped file for a sample, else ``ds.frame`` as Parquet."""
    up = session.DATA_UPLOAD_SOURCE.get()
    if up is not None and up["token"] == session.DATA_APPLIED.get() and up["name"] == ds.name:
        table = session.DATA_TABLE.get() or {}
        return _plain(up["name"]), up["bytes"], bool((table.get("recipe") or {}).get("sort"))
    if ds.name in SAMPLES:
        return SAMPLES[ds.name], os.path.join(SAMPLE_DIR, SAMPLES[ds.name]), False
    buf = io.BytesIO()
    ds.frame.to_parquet(buf, index=False)     # already in time order
    return _plain(ds.name) + ".parquet", buf.getvalue(), False


def job_recipe(ds: Dataset, sort: bool) -> dict[str, Any]:
    """build_dataset's arguments that made ``ds``, from its recorded DataConfig; the holdout reproduces
    ``ds.split`` exactly."""
    c, n = ds.config, len(ds.features)
    return {"timestamp_col": c.timestamp_col, "label_col": c.label_col, "feature_cols": list(c.features),
            "transforms": list(c.transforms), "price_col": c.price_col, "high_col": c.high_col,
            "low_col": c.low_col, "volume_col": c.volume_col, "vol_window": c.vol_window,
            "nan_policy": c.nan_policy, "holdout": 1.0 - ds.split / n if n else 0.0, "sort": sort}


def _plain(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in os.path.basename(name)).lstrip(".") or "data"


def cancel(job_id: str) -> bool:
    """Cancel any job (this session's or another's); True when it was queued or running."""
    return cache.job_queue().cancel(job_id)


def poll_training() -> jobs.Job | None:
    """Install this session's finished job's checkpoint as the session's model (once); return the job, if any.

    The model goes in first; a job's views (``job.views``, when the job wrote them) can be attached after.
    """
    ref, job = training_ref(), training_job()
    if ref is None or job is None or ref["installed"] or job.state != "done":
        return job
    ref["installed"] = True
    try:
        eng = ChronosDefragEngine.load(job.out)
    except (CheckpointError, OSError, ValueError, RuntimeError) as exc:
        ref["error"] = f"The finished job's checkpoint could not be loaded: {exc}"
        return job
    session.set_engine(eng, "trained in this session", ref["dataset"])
    session.TRAIN_FLASH.set(f"Training finished: the new model of *{ref['dataset']}* is active "
                            f"({len(eng.block_latents):,} blocks).")
    return job


# ---------------------------------------------------------------------------------------------- what pages show
@dataclass
class JobStatus:
    """A job as the pages show it (``status``): one line of what it does, one of how fast / how long."""

    state: str
    headline: str
    detail: str
    fraction: float
    place: int | None
    history: list[dict[str, Any]] = field(default_factory=list)   # epoch records, for loss_figure
    epochs: tuple[int | None, int | None] = (None, None)          # planned encoder / predictor epochs
    message: str = ""


def ordinal(k: int) -> str:
    """'1st', '2nd', '3rd', '4th', ..., '11th', '12th', '13th', '21st'."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def duration(s: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def status(job: jobs.Job, events: list[dict[str, Any]], place: int | None, now: float | None = None) -> JobStatus:
    """What to show for ``job`` given its events so far and its queue place (``JobQueue.position``)."""
    now = time.time() if now is None else now
    history = epoch_records(events)
    last = events[-1] if events else {}
    planned = _planned(events)
    if job.state == "queued":
        ahead = "next to start" if place == 1 else f"{ordinal(place or 1)} in line"
        return JobStatus("queued", f"Waiting for a free training slot: {ahead}",
                         f"queued {duration(now - job.submitted)} ago", 0.0, place, history, planned)
    elapsed = duration((job.finished or now) - (job.started or job.submitted))
    if job.state in ("failed", "cancelled", "done"):
        text = {"failed": "Training failed", "cancelled": "Training was cancelled; the previous model is still "
                "active", "done": "Training finished"}[job.state]
        return JobStatus(job.state, text, f"after {elapsed}", 1.0 if job.state == "done" else
                         float(last.get("fraction") or 0.0), None, history, planned, job.message)
    return JobStatus("running", _headline(last), _detail(last, elapsed), float(last.get("fraction") or 0.0),
                     place, history, planned)


def _headline(ev: dict[str, Any]) -> str:
    stage = ev.get("stage", "starting")
    text = STAGE_TEXT.get(stage, stage.replace("_", " ").capitalize())
    if stage in ("encoder", "predictor") and ev.get("epoch") == 0:     # announced, no step taken yet
        return f"{text}: preparing {ev.get('epochs') or '?'} epoch(s)…"
    if stage in ("encoder", "predictor") and ev.get("epoch") is not None:
        text += f" epoch {ev['epoch']}/{ev.get('epochs') or '?'}"
        if ev.get("step") is not None and ev.get("steps"):
            text += f" · step {ev['step']:,}/{ev['steps']:,}"
    return text if stage in ("encoder", "predictor") else text + "…"


def _detail(ev: dict[str, Any], elapsed: str) -> str:
    parts = []
    if ev.get("steps_per_s"):
        parts.append(f"{ev['steps_per_s']:.1f} steps/s")
    if ev.get("eta_s") is not None:
        parts.append(f"about {duration(ev['eta_s'])} left")
    if (loss := (ev.get("losses") or {}).get("loss")) is not None:
        parts.append(f"loss {loss:.4f}")
    return " · ".join([*parts, f"{elapsed} elapsed"])


def epoch_records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch records (stage, epoch, losses) in ``events``, for ``plots.training.loss_figure``: the event
    that ends an epoch is the one of stage encoder / predictor with a message (in-epoch events carry none, and
    the running mean of the epoch so far)."""
    by_epoch: dict[tuple[str, int], dict[str, Any]] = {}
    for ev in events:
        if ev.get("stage") in ("encoder", "predictor") and (ev.get("epoch") or 0) >= 1 and ev.get("message"):
            health = {k: ev[k] for k in ("verdict", "collapsed") if k in ev}
            by_epoch[(ev["stage"], int(ev["epoch"]))] = {"stage": ev["stage"], "epoch": int(ev["epoch"]),
                                                        **(ev.get("losses") or {}), **health}
    return list(by_epoch.values())


def _planned(events: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    enc = next((e.get("epochs") for e in reversed(events) if e.get("stage") == "encoder"), None)
    pred = next((e.get("epochs") for e in reversed(events) if e.get("stage") == "predictor"), None)
    return enc, pred


def queue_overview() -> list[tuple[jobs.Job, int | None]]:
    """Every queued or running job on this server with its place, oldest first."""
    q = cache.job_queue()
    return [(j, q.position(j.id)) for j in q.jobs() if j.active]
