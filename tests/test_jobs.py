"""The training-job queue with a fake, fast command: order, concurrency, queue place, cancel (queued, running,
a job that ignores SIGTERM and its children), failure messages, events read as they are written, input files,
the job's environment and the removal of old job folders."""

import json
import os
import sys
import time

import pytest

from chronoslib.errors import ConfigError
from chronoslib.jobs import EVENTS, JobQueue, failure_message

# The fake job: writes a "starting" event, waits until the test creates <job>/release (or its own timeout),
# then does what <job>/mode says: "done" (a done event, exit 0), "fail" (a failed event, exit 2), "error"
# (an error line on stderr, exit 2), "trace" (an uncaught exception), "silent0" (exit 0, no done event).
FAKE = r"""
import json, os, signal, subprocess, sys, time
d = os.getcwd()
def ev(stage, **kw):
    with open(os.path.join(d, "events.jsonl"), "a") as f:
        f.write(json.dumps(dict(t=time.time(), stage=stage, **kw)) + "\n"); f.flush()
if os.path.exists("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open("child.pid", "w").write(str(child.pid))
ev("starting", message=os.environ.get("OMP_NUM_THREADS", ""))
end = time.time() + float(sys.argv[1])
while not os.path.exists("release") and time.time() < end:
    time.sleep(0.02)
mode = open("mode").read() if os.path.exists("mode") else "done"
if mode == "done":
    ev("done", out=os.path.join(d, "model.pt")); sys.exit(0)
if mode == "fail":
    ev("failed", message="the file has 3 blocks, need 4"); sys.exit(2)
if mode == "error":
    print("[data] reading", file=sys.stderr); print("error: column 'close' not found", file=sys.stderr); sys.exit(2)
if mode == "trace":
    raise KeyError("boom")
sys.exit(0)
"""


def _argv(wait_s: float = 30.0) -> list[str]:
    return [sys.executable, "-c", FAKE, str(wait_s)]


@pytest.fixture
def queue(tmp_path):
    q = JobQueue(str(tmp_path / "jobs"), max_concurrent=1, threads=1, grace_s=0.5, poll_s=0.05)
    yield q
    q.close()


def _until(pred, timeout: float = 20.0) -> None:
    end = time.time() + timeout
    while not pred():
        assert time.time() < end, "condition not reached in time"
        time.sleep(0.02)


def _release(job) -> None:
    open(os.path.join(job.dir, "release"), "w").close()


def _started(q, job) -> bool:
    return any(e["stage"] == "starting" for e in q.events(job.id))


def test_jobs_run_one_at_a_time_in_submission_order_and_each_knows_its_place(queue):
    a, b, c = (queue.submit(_argv(), owner=f"s{i}", label=f"job {i}") for i in range(3))
    assert [queue.position(j.id) for j in (a, b, c)] == [0, 1, 2]
    assert [j.state for j in queue.jobs()] == ["running", "queued", "queued"]
    _until(lambda: _started(queue, a))
    _release(a)
    _until(lambda: queue.get(b.id).state == "running")
    assert queue.get(a.id).state == "done" and queue.position(a.id) is None
    assert [queue.position(j.id) for j in (b, c)] == [0, 1]
    _release(b)
    _release(c)
    assert queue.wait(c.id, 20).state == "done"
    assert [j.label for j in queue.jobs()] == ["job 0", "job 1", "job 2"]
    assert all(j.started >= j.submitted for j in queue.jobs())
    assert queue.get(b.id).started >= queue.get(a.id).finished - 0.5   # b waited for a's slot


def test_max_concurrent_jobs_run_together_and_the_rest_wait(tmp_path):
    q = JobQueue(str(tmp_path / "jobs"), max_concurrent=2, threads=1, grace_s=0.5, poll_s=0.05)
    try:
        jobs = [q.submit(_argv(), owner="s", label=str(i)) for i in range(3)]
        assert [q.position(j.id) for j in jobs] == [0, 0, 1]
        _release(jobs[1])
        _until(lambda: q.get(jobs[2].id).state == "running")
        assert q.get(jobs[0].id).state == "running" and q.get(jobs[1].id).state == "done"
    finally:
        q.close()


def test_a_queued_job_cancelled_leaves_the_line_without_ever_starting(queue):
    a, b, c = (queue.submit(_argv(), owner="s", label=str(i)) for i in range(3))
    assert queue.cancel(b.id) is True
    assert queue.get(b.id).state == "cancelled" and queue.position(b.id) is None
    assert queue.position(c.id) == 1
    _release(a)
    _until(lambda: queue.get(c.id).state == "running")
    assert queue.get(b.id).started is None and not os.path.exists(os.path.join(b.dir, EVENTS))
    assert queue.cancel(b.id) is False                       # nothing left to cancel


def test_cancel_kills_a_running_job_that_ignores_sigterm_and_its_children_within_the_grace_period(queue):
    job = queue.submit(_argv(), owner="s", label="stubborn", files={"ignore_term": b""})
    nxt = queue.submit(_argv(), owner="t", label="next")
    _until(lambda: _started(queue, job) and os.path.exists(os.path.join(job.dir, "child.pid")))
    child = int(open(os.path.join(job.dir, "child.pid")).read())
    t0 = time.time()
    assert queue.cancel(job.id)
    assert queue.get(job.id).state == "cancelled"            # at once, for the pages
    assert queue.get(nxt.id).state == "queued"              # the slot frees only when the process is gone
    queue.wait(job.id, 10)
    assert job._proc.poll() is not None and time.time() - t0 < 0.5 + 2.0
    assert job.returncode == -9                              # SIGTERM ignored, SIGKILL after the grace period
    _until(lambda: not _alive(child), 5)                    # the whole process group went
    _until(lambda: queue.get(nxt.id).state == "running", 5)
    assert queue.get(job.id).state == "cancelled"            # never turned into failed by the kill


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie (killed, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("mode,message", [
    ("fail", "the file has 3 blocks, need 4"),              # the job's own "failed" event
    ("error", "column 'close' not found"),                  # its "error:" line on stderr
    ("trace", "KeyError: 'boom'"),                          # a crash: the exception line, not the traceback
    ("silent0", "the training process ended without a result (exit status 0)"),
])
def test_a_failed_job_says_why_in_one_line(queue, mode, message):
    job = queue.submit(_argv(0.0), owner="s", label=mode, files={"mode": mode.encode()})
    done = queue.wait(job.id, 20)
    assert done.state == "failed" and done.message == message
    assert "Traceback" not in done.message


def test_failure_message_of_a_killed_process_names_the_signal():
    assert failure_message([], "", -9) == "the training process ended without a result (killed by signal 9)"


def test_events_are_read_as_they_are_written_and_a_half_line_waits(queue):
    job = queue.submit(_argv(), owner="s", label="e")
    _until(lambda: _started(queue, job))
    first = queue.events(job.id)
    assert [e["stage"] for e in first] == ["starting"]
    assert first[0]["message"] == "1"                       # the job's OMP_NUM_THREADS is the queue's threads
    with open(job.events_path, "a") as f:                   # another writer's half-written line
        f.write(json.dumps({"t": 1.0, "stage": "encoder", "epoch": 1})[:10])
    assert len(queue.events(job.id)) == 1
    with open(job.events_path, "a") as f:
        f.write(json.dumps({"t": 1.0, "stage": "encoder", "epoch": 1})[10:] + "\n")
    assert [e["stage"] for e in queue.events(job.id)] == ["starting", "encoder"]
    _release(job)
    assert queue.wait(job.id, 20).state == "done"
    assert [e["stage"] for e in queue.events(job.id)] == ["starting", "encoder", "done"]


def test_input_files_are_placed_in_the_job_folder_and_removed_when_it_ends(queue, tmp_path):
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    job = queue.submit(_argv(0.0) + ["{job}/data.csv"], owner="s", label="f",
                       files={"data.csv": str(src), "config.json": b"{}", "raw.bin": b"\x00\x01"})
    assert job.argv[-1] == os.path.join(job.dir, "data.csv")  # {job} names the job's folder
    assert queue.wait(job.id, 20).state == "done"
    assert sorted(os.listdir(job.dir)) == ["config.json", "events.jsonl", "stderr.log"]
    assert src.read_text() == "a,b\n1,2\n"                    # the source itself is untouched


def test_bad_submissions_and_settings_are_refused(queue, tmp_path):
    with pytest.raises(ConfigError, match="plain file name"):
        queue.submit(_argv(), owner="s", label="x", files={"../evil": b""})
    with pytest.raises(ConfigError, match="empty argv"):
        queue.submit([], owner="s", label="x")
    with pytest.raises(ConfigError, match="max_concurrent must be an integer >= 1, got 0"):
        JobQueue(str(tmp_path / "q"), max_concurrent=0)
    assert queue.jobs() == []


def test_a_command_that_cannot_start_fails_with_the_reason(queue):
    job = queue.submit(["/nonexistent/python", "-V"], owner="s", label="x")
    assert job.state == "failed" and "could not start the job" in job.message


def test_old_job_folders_are_removed_and_recent_ones_kept(tmp_path):
    root = tmp_path / "jobs"
    (root / "old").mkdir(parents=True)
    (root / "new").mkdir()
    past = time.time() - 3 * 3600
    os.utime(root / "old", (past, past))
    q = JobQueue(str(root), keep_s=3600, poll_s=0.05)
    try:
        assert sorted(os.listdir(root)) == ["new"]
    finally:
        q.close()


def test_running_jobs_are_killed_when_the_process_that_queued_them_exits(tmp_path):
    script = (f"import sys, time; sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})\n"
              "from chronoslib.jobs import JobQueue\n"
              f"q = JobQueue({str(tmp_path / 'jobs')!r})\n"
              f"job = q.submit({_argv(60)!r}, owner='s', label='x')\n"
              "print(job._proc.pid, flush=True)\n"
              "time.sleep(1.0)\n")
    import subprocess
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.split()[0])
    _until(lambda: not _alive(pid), 5)
