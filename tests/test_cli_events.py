"""``python -m chronoslib train --events``: the event sequence of a run, the plain progress lines, a failed run's
single event and exit status 2, and a SIGTERM that leaves neither a checkpoint nor a temp file."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from chronoslib import ChronosDefragEngine
from chronoslib.cli import main
from chronoslib.progress import STAGES, read_events

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--block-len", "16", "--latent-dim", "8", "--batch-size", "16", "--no-timestamp"]


@pytest.fixture
def csv(tmp_path):
    p = tmp_path / "data.csv"
    x = np.random.default_rng(0).standard_normal((16 * 40, 3))
    pd.DataFrame(x, columns=list("abc")).to_csv(p, index=False)
    return p


def test_a_run_writes_starting_to_done_with_a_rising_fraction(csv, tmp_path, capsys):
    out, ev = tmp_path / "m.pt", tmp_path / "ev.jsonl"
    code = main(["train", str(csv), "--out", str(out), "--events", str(ev), "--epochs", "2",
                 "--predictor-epochs", "1", *SMALL])
    assert code == 0
    events, _ = read_events(str(ev))
    stages = [e["stage"] for e in events]
    assert stages[:2] == ["starting", "loading"] and stages[-2:] == ["saving", "done"]
    assert set(stages) <= set(STAGES) and {"encoder", "pseudo_timeline", "predictor", "registry"} <= set(stages)
    order = [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]]
    assert order == ["starting", "loading", "encoder", "pseudo_timeline", "predictor", "registry", "saving", "done"]
    fr = [e["fraction"] for e in events]
    assert fr == sorted(fr) and fr[0] == 0.0 and fr[-1] == 1.0 and all(0 <= f <= 1 for f in fr)
    done = events[-1]
    assert done["out"] == str(out) and done["views"] is None and done["eta_s"] == 0.0
    assert done["summary"]["encoder_epochs"] == 2 and done["summary"]["predictor_epochs"] == 1
    assert done["summary"]["n_blocks"] == 40 and ChronosDefragEngine.load(str(out)).fitted
    enc = [e for e in events if e["stage"] == "encoder" and e["epoch"]]
    assert {e["epochs"] for e in enc} == {2} and all(e["steps"] == 5 for e in enc)   # 39 anchors, 8 a step
    assert all(e["losses"].keys() >= {"loss", "infonce", "ter", "lcr"} for e in enc)
    # stderr is not a TTY here: one line per epoch and per stage change, nothing before training starts
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert [line.split(" loss=")[0] for line in err if " epoch " in line] == [
        "[encoder] encoder epoch 1/2", "[encoder] encoder epoch 2/2", "[predictor] predictor epoch 1/1"]
    assert err[0].startswith("[encoder] data.csv: 640 ticks x 3 features") and len(err) == 9
    assert json.loads(captured.out.splitlines()[-1]) == done["summary"]      # the stdout summary, as before


def test_derived_epochs_follow_the_budget(csv, tmp_path, capsys):
    ev = tmp_path / "ev.jsonl"
    assert main(["train", str(csv), "--out", str(tmp_path / "m.pt"), "--events", str(ev), "--budget", "80",
                 "--quiet", *SMALL]) == 0
    done = read_events(str(ev))[0][-1]
    assert (done["summary"]["encoder_epochs"], done["summary"]["predictor_epochs"]) == (2, 2)   # 80 // 40 blocks
    eng = ChronosDefragEngine.load(str(tmp_path / "m.pt"))
    assert eng.cfg.optim.encoder_epochs == 0 and [h["stage"] for h in eng.history].count("encoder") == 2
    assert capsys.readouterr().err == ""                   # --quiet


@pytest.mark.parametrize("case", ["missing", "nan", "bad_flag"])
def test_a_bad_input_gives_one_failed_event_and_status_2(csv, tmp_path, capsys, case):
    ev, out = tmp_path / "ev.jsonl", tmp_path / "m.pt"
    data, extra = str(csv), []
    if case == "missing":
        data = str(tmp_path / "nope.csv")
    elif case == "nan":
        pd.DataFrame({"a": [1.0, np.nan] * 200, "b": 1.0}).to_csv(tmp_path / "nan.csv", index=False)
        data = str(tmp_path / "nan.csv")
    else:
        extra = ["--threads", "0"]
    code = main(["train", data, "--out", str(out), "--events", str(ev), *SMALL, *extra])
    events, _ = read_events(str(ev))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:")
    assert [e["stage"] for e in events].count("failed") == 1 and events[-1]["stage"] == "failed"
    assert events[-1]["message"] == err[0].removeprefix("error: ") and not out.exists()


def test_sigterm_mid_run_leaves_no_checkpoint_and_says_so(tmp_path):
    p = tmp_path / "long.csv"
    pd.DataFrame(np.random.default_rng(0).standard_normal((16 * 3000, 3))).to_csv(p, index=False)
    out, ev = tmp_path / "m.pt", tmp_path / "ev.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "chronoslib", "train", str(p), "--out", str(out),
                             "--events", str(ev), "--epochs", "50", "--quiet", *SMALL], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(e["stage"] == "encoder" and e["step"]
                                                      for e in read_events(str(ev))[0]):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        proc.kill()
    events, _ = read_events(str(ev))
    assert proc.returncode == 128 + signal.SIGTERM
    assert events[-1]["stage"] == "failed" and "stopped" in events[-1]["message"]
    assert not out.exists() and os.listdir(tmp_path) == sorted(os.listdir(tmp_path)) and \
        sorted(os.listdir(tmp_path)) == ["ev.jsonl", "long.csv"]
