"""Test helpers for training jobs in the app: wait for a session's job, and submit a fake job (a tiny Python
script that writes given progress events, optionally a checkpoint, then holds until released) to the app's
queue, so page tests see a running, queued, failed or finished job without training anything."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from app_pages.lib import cache, session
from chronoslib.jobs import Job

FAKE = r"""
import json, os, shutil, sys, time
spec = json.load(open("spec.json"))
with open("events.jsonl", "a") as f:
    for ev in spec["events"]:
        f.write(json.dumps(ev) + "\n")
    f.flush()
end = time.time() + spec["hold_s"]
while not os.path.exists("release") and time.time() < end:
    time.sleep(0.02)
if spec.get("model"):
    shutil.copyfile(spec["model"], "model.pt")
with open("events.jsonl", "a") as f:
    for ev in spec.get("final", []):
        f.write(json.dumps(ev) + "\n")
if spec.get("stderr"):
    print(spec["stderr"], file=sys.stderr)
sys.exit(spec.get("rc", 0))
"""


def fake_job(events: list[dict[str, Any]], *, hold_s: float = 0.0, model: str | None = None,
             final: list[dict[str, Any]] | None = None, rc: int = 0, stderr: str = "", owner: str = "fake",
             label: str = "fake job") -> Job:
    """Submit the fake job to the app's queue; it writes ``events``, holds ``hold_s`` s (or until ``release``),
    copies ``model`` to model.pt, writes ``final`` events and exits with ``rc``."""
    spec = {"events": events, "hold_s": hold_s, "model": model, "final": final or [], "rc": rc, "stderr": stderr}
    return cache.job_queue().submit([sys.executable, "-c", FAKE], owner=owner, label=label,
                                    files={"spec.json": json.dumps(spec).encode()})


def release(job: Job) -> None:
    open(os.path.join(job.dir, "release"), "w").close()


def wait_started(job: Job, timeout: float = 20.0) -> None:
    """Until the job has written its first event."""
    end = time.time() + timeout
    while not cache.job_queue().events(job.id):
        assert time.time() < end, "the job wrote no event in time"
        time.sleep(0.02)


def own_job(at: Any) -> Job:
    """The job the AppTest session ``at`` submitted last."""
    ref = at.session_state[session.TRAIN_JOB.key]
    return cache.job_queue().get(ref["id"])


def finish(at: Any, timeout: float = 240.0) -> Job:
    """Wait for the session's job to end, then rerun the app (which installs a finished model)."""
    ref = at.session_state[session.TRAIN_JOB.key]
    job = cache.job_queue().wait(ref["id"], timeout)
    assert job is not None and not job.active, "the training job did not end in time"
    at.run()
    return job


def event(stage: str, **kw: Any) -> dict[str, Any]:
    """A progress event as ``chronoslib.progress`` writes it (unset fields null)."""
    base = {"t": time.time(), "stage": stage, "epoch": None, "epochs": None, "step": None, "steps": None,
            "steps_per_s": None, "eta_s": None, "fraction": 0.0, "losses": {}, "message": ""}
    return base | kw
