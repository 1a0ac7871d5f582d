"""Training jobs: a server-wide queue that runs each job as its own process (``python -m chronoslib train``).

Owns ``JobQueue`` (submit, cancel, queue place, states, progress events read incrementally, a failed job's
message, removal of old job folders), the ``Job`` record and ``train_argv``, the pure function that turns a data
recipe (the column choices that built a ``Dataset``) and a config file into the ``train`` command's argv. Every
job has a folder under the queue's root holding its input file, ``config.json``, ``events.jsonl`` (written by the
job, see ``chronoslib.progress``), ``model.pt`` and ``views.npz``. A job runs in a new session (process group), so
a cancel ends it and everything it started; its threads are limited through OMP_NUM_THREADS and ``--threads``.
The scheduler is a daemon thread (every public call also advances it), so queued jobs start when a slot frees
whether or not anyone is looking. Knows nothing about Streamlit or models: a job is a command and its files.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .progress import read_events

JOB_DIR_TOKEN = "{job}"          # replaced in a submitted argv by the job's folder
EVENTS, MODEL, VIEWS, CONFIG = "events.jsonl", "model.pt", "views.npz", "config.json"
STDERR = "stderr.log"
STATES = ("queued", "running", "done", "failed", "cancelled")
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the folder holding chronoslib/
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "NUMBA_NUM_THREADS")


@dataclass
class Job:
    """One job: what it runs, where its files are and how far it got (``JobQueue`` updates it under its lock)."""

    id: str
    owner: str                       # who submitted it (the app: a browser session's tag)
    label: str                       # what to call it in a list ("m1.csv · session 3fa2")
    argv: list[str]
    dir: str
    state: str = "queued"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    returncode: int | None = None
    message: str = ""                # why it failed or was cancelled
    inputs: list[str] = field(default_factory=list)   # files placed by submit, removed when the job ends
    events: list[dict[str, Any]] = field(default_factory=list)   # every progress event read so far
    _offset: int = 0
    _proc: subprocess.Popen | None = None
    _kill_at: float | None = None    # SIGKILL deadline after a cancel's SIGTERM

    @property
    def events_path(self) -> str:
        return os.path.join(self.dir, EVENTS)

    @property
    def out(self) -> str:
        return os.path.join(self.dir, MODEL)

    @property
    def views(self) -> str:
        return os.path.join(self.dir, VIEWS)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def last_event(self) -> dict[str, Any] | None:
        return self.events[-1] if self.events else None


class JobQueue:
    """Jobs run as processes, at most ``max_concurrent`` at once, the rest waiting in submission order.

    ``threads`` (torch / BLAS threads per job) goes into each job's environment; ``grace_s`` is how long a
    cancelled job has between SIGTERM and SIGKILL; folders of finished jobs older than ``keep_s`` are removed.
    """

    def __init__(self, root: str, max_concurrent: int = 1, threads: int = 1, grace_s: float = 5.0,
                 keep_s: float = 24 * 3600.0, poll_s: float = 0.2) -> None:
        for name, v in (("max_concurrent", max_concurrent), ("threads", threads)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"JobQueue {name} must be an integer >= 1, got {v!r}")
        os.makedirs(root, exist_ok=True)
        self.root, self.max_concurrent, self.threads = os.path.abspath(root), max_concurrent, threads
        self.grace_s, self.keep_s, self.poll_s = float(grace_s), float(keep_s), float(poll_s)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self.remove_old()
        self._thread = threading.Thread(target=self._loop, name="chronos-jobs", daemon=True)
        self._thread.start()
        atexit.register(self._kill_running)     # a job never outlives the server that started it

    # ------------------------------------------------------------------------------------------ public
    def submit(self, argv: Sequence[str], owner: str, label: str,
               files: dict[str, bytes | str] | None = None) -> Job:
        """Queue ``argv`` (``{job}`` in an argument becomes the job's folder); ``files`` are written into the
        folder first: name -> bytes, or name -> a path to link / copy. Returns the job (maybe already running)."""
        if not argv:
            raise ConfigError("a job needs a command, got an empty argv")
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job_dir = os.path.join(self.root, job_id)
        os.makedirs(job_dir)
        try:
            for name, content in (files or {}).items():
                _place(os.path.join(job_dir, _plain_name(name)), content)
        except OSError:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        job = Job(id=job_id, owner=str(owner), label=str(label),
                  argv=[a.replace(JOB_DIR_TOKEN, job_dir) for a in map(str, argv)], dir=job_dir,
                  inputs=[_plain_name(n) for n in files or {}])
        with self._lock:
            self._jobs[job_id] = job
            self._tick()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._tick()
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every job this queue knows, in submission order."""
        with self._lock:
            self._tick()
            return sorted(self._jobs.values(), key=lambda j: j.submitted)

    def position(self, job_id: str) -> int | None:
        """0 for a running job, k for the k-th in line (1 = next to start), None for a finished or unknown one."""
        with self._lock:
            self._tick()
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return None
            if job.state == "running":
                return 0
            line = [j for j in sorted(self._jobs.values(), key=lambda j: j.submitted) if j.state == "queued"]
            return line.index(job) + 1

    def cancel(self, job_id: str) -> bool:
        """Stop a job: a queued one leaves the line; a running one gets SIGTERM (its process group), SIGKILL
        ``grace_s`` later if still alive. True when the job was active."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return False
            if job.state == "running" and job._proc is not None:
                _signal_group(job._proc, signal.SIGTERM)
                job._kill_at = time.time() + self.grace_s
            job.state, job.message, job.finished = "cancelled", "cancelled", time.time()
            self._tick()
            return True

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's progress events so far (new complete lines are read on each call)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return []
            self._read_events(job)
            return list(job.events)

    def wait(self, job_id: str, timeout: float) -> Job | None:
        """Block until the job is no longer queued or running (or ``timeout`` seconds pass); returns it."""
        end = time.time() + timeout
        while time.time() < end:
            job = self.get(job_id)
            if job is None or (not job.active and (job._proc is None or job._proc.poll() is not None)):
                return job
            time.sleep(min(self.poll_s, 0.05))
        return self.get(job_id)

    def remove_old(self) -> int:
        """Remove job folders under the root older than ``keep_s`` that belong to no active job; returns how many."""
        now, removed = time.time(), 0
        with self._lock:
            active = {j.dir for j in self._jobs.values() if j.active}
            for name in os.listdir(self.root):
                path = os.path.join(self.root, name)
                try:
                    old = now - os.path.getmtime(path) > self.keep_s
                except OSError:
                    continue
                if os.path.isdir(path) and path not in active and old:
                    shutil.rmtree(path, ignore_errors=True)
                    self._jobs = {k: j for k, j in self._jobs.items() if j.dir != path}
                    removed += 1
        return removed

    def close(self) -> None:
        """Cancel every active job and stop the scheduler (tests; a server simply exits)."""
        for job in self.jobs():
            self.cancel(job.id)
        end = time.time() + self.grace_s + 1.0
        while time.time() < end and any(j._proc is not None and j._proc.poll() is None for j in self.jobs()):
            time.sleep(0.05)
        self._closed.set()

    def _kill_running(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                if job._proc is not None and job._proc.poll() is None:
                    _signal_group(job._proc, signal.SIGKILL)

    # ------------------------------------------------------------------------------------------ scheduler
    def _loop(self) -> None:
        while not self._closed.wait(self.poll_s):
            with self._lock:
                self._tick()

    def _tick(self) -> None:
        """Reap ended processes, enforce SIGKILL deadlines, start queued jobs while a slot is free."""
        for job in self._jobs.values():
            if job._proc is not None:
                self._reap(job)
        alive = sum(1 for j in self._jobs.values() if j._proc is not None and j._proc.poll() is None)
        for job in sorted(self._jobs.values(), key=lambda j: j.submitted):
            if alive >= self.max_concurrent:
                break
            if job.state == "queued":
                self._start(job)
                alive += 1

    def _start(self, job: Job) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p))
        env.update({v: str(self.threads) for v in THREAD_VARS})
        job.started = time.time()
        try:
            with open(os.path.join(job.dir, STDERR), "wb") as err:
                job._proc = subprocess.Popen(job.argv, cwd=job.dir, env=env, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        except OSError as exc:
            job.state, job.finished, job.message = "failed", time.time(), f"could not start the job: {exc}"
            return
        job.state = "running"

    def _reap(self, job: Job) -> None:
        proc = job._proc
        rc = proc.poll()
        if rc is None:
            if job._kill_at is not None and time.time() >= job._kill_at:
                _signal_group(proc, signal.SIGKILL)
                job._kill_at = None
            return
        if job.returncode is not None:
            return
        job.returncode = rc
        for name in job.inputs:      # a copy of the user's data (up to the upload limit) is not kept
            if name != CONFIG:
                _remove(os.path.join(job.dir, name))
        if job.state == "cancelled":
            return
        self._read_events(job)
        job.finished = time.time()
        if rc == 0 and any(e.get("stage") == "done" for e in job.events):
            job.state = "done"
        else:
            job.state = "failed"
            job.message = failure_message(job.events, _tail(os.path.join(job.dir, STDERR)), rc)

    def _read_events(self, job: Job) -> None:
        if not os.path.exists(job.events_path):
            return
        new, job._offset = read_events(job.events_path, job._offset)
        job.events.extend(new)


# ---------------------------------------------------------------------------------------------- helpers
def failure_message(events: list[dict[str, Any]], stderr_tail: str, returncode: int) -> str:
    """What to tell a user about a failed job: its "failed" event's message, else the command's last ``error:``
    line, else the last line it wrote (a traceback's exception line), else its exit status."""
    for ev in reversed(events):
        if ev.get("stage") == "failed" and ev.get("message"):
            return str(ev["message"])
    lines = [ln.strip() for ln in stderr_tail.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error:"):
            return ln[len("error:"):].strip()
    if lines:
        return lines[-1]
    how = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    return f"the training process ended without a result ({how})"


def _tail(path: str, n_bytes: int = 4096) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - n_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)     # start_new_session: the job leads its own group (pgid == pid)
    except (ProcessLookupError, PermissionError):
        pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _plain_name(name: str) -> str:
    base = os.path.basename(str(name))
    if base in ("", ".", "..") or base != str(name):
        raise ConfigError(f"a job file needs a plain file name, got {name!r}")
    return base


def _place(dest: str, content: bytes | str) -> None:
    """Write bytes to ``dest``, or put the file at path ``content`` there (a hard link when possible)."""
    if isinstance(content, bytes):
        with open(dest, "wb") as f:
            f.write(content)
        return
    try:
        os.link(content, dest)
    except OSError:
        shutil.copyfile(content, dest)


def train_argv(data_path: str, config_path: str, recipe: dict[str, Any], *, threads: int = 1,
               out: str = os.path.join(JOB_DIR_TOKEN, MODEL), events: str = os.path.join(JOB_DIR_TOKEN, EVENTS),
               views: str | None = None, python: str = sys.executable) -> list[str]:
    """The ``python -m chronoslib train`` command that builds the same dataset as ``build_dataset(df, name,
    **recipe)`` and trains with the config in ``config_path``.

    ``recipe`` holds build_dataset's arguments as the Data page keeps them: ``timestamp_col`` ("" = none),
    ``label_col`` ("" = none), ``feature_cols``, ``transforms``, ``price_col`` / ``high_col`` / ``low_col`` /
    ``volume_col`` ("" or None = detect), ``vol_window``, ``nan_policy``, ``sort`` and ``holdout`` (a fraction;
    pass ``1 - split / n`` to reproduce a split exactly).
    """
    holdout = float(recipe.get("holdout", 0.2))
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"recipe holdout must be in [0, 1), got {holdout}")
    argv = [python, "-m", "chronoslib", "train", data_path, "--out", out, "--config", config_path,
            "--events", events, "--threads", str(int(threads)), "--holdout", repr(holdout)]
    if views:
        argv += ["--views", views]
    ts = recipe.get("timestamp_col") or ""
    argv += ["--timestamp", ts] if ts else ["--no-timestamp"]
    if recipe.get("label_col"):   # none given: the command detects one, which only names it (never a feature)
        argv += ["--label", recipe["label_col"]]
    if recipe.get("feature_cols"):
        argv += ["--features", ",".join(recipe["feature_cols"])]
    if recipe.get("transforms"):
        argv += ["--transforms", ",".join(recipe["transforms"])]
    for role in ("price", "high", "low", "volume"):
        if recipe.get(f"{role}_col"):
            argv += [f"--{role}", recipe[f"{role}_col"]]
    if recipe.get("vol_window"):
        argv += ["--vol-window", str(int(recipe["vol_window"]))]
    if recipe.get("nan_policy"):
        argv += ["--nan-policy", recipe["nan_policy"]]
    if recipe.get("sort"):
        argv.append("--sort")
    for name in ("feature_cols", "transforms"):
        bad = [c for c in recipe.get(name) or [] if "," in c]
        if bad:
            raise ConfigError(f"column names with a comma cannot be passed to the train command: {bad}")
    return argv



def queue_settings(environ: Any) -> dict[str, Any]:
    """``JobQueue`` arguments from the environment: CHRONOS_JOB_DIR (root; default a new temporary folder),
    CHRONOS_MAX_JOBS (jobs at once, default 1) and CHRONOS_JOB_THREADS (threads per job, default 1)."""
    def count(var: str) -> int:
        raw = str(environ.get(var, "") or "1").strip()
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"{var} must be a whole number >= 1, got {raw!r}")
        return int(raw)

    root = environ.get("CHRONOS_JOB_DIR")
    if not root:   # a folder of this process's own: removed when it exits
        root = tempfile.mkdtemp(prefix="chronos-jobs-")
        atexit.register(shutil.rmtree, root, True)
    return {"root": root, "max_concurrent": count("CHRONOS_MAX_JOBS"), "threads": count("CHRONOS_JOB_THREADS")}
