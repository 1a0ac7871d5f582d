"""The ``views`` command and ``train --views``: the views file belongs to the checkpoint's latents, progress
events name each step and the file, bad input is one line, a failed event and exit status 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from chronoslib import ChronosDefragEngine, projection, views
from chronoslib.cli import main
from chronoslib.progress import read_events

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def checkpoint(tmp_path, small_engine):
    path = str(tmp_path / "m.pt")
    small_engine[0].save(path)
    return path


@pytest.fixture
def pca_umap(monkeypatch):
    monkeypatch.setattr(projection, "umap_embed", lambda x, d, *a, **k: projection.pca(x, d))


def test_the_views_command_writes_the_checkpoints_views_and_says_so_in_its_events(tmp_path, checkpoint,
                                                                                   small_engine, pca_umap, capsys):
    out, ev = str(tmp_path / "v.npz"), str(tmp_path / "e.jsonl")
    assert main(["views", checkpoint, "--out", out, "--events", ev, "--workers", "1", "--quiet"]) == 0
    eng = small_engine[0]
    v = views.load_views(out, projection.latents_key(eng.block_latents))
    assert v.n_blocks == len(eng.block_latents)
    assert np.array_equal(v.orderings["refined"], eng.pseudo_timeline)       # the engine's own, reused
    events, _ = read_events(ev)
    stages = [e["stage"] for e in events]
    assert stages[0] == "loading" and stages[-1] == "done" and stages.count("views") == 1 + len(views.STEPS)
    assert events[-1]["views"] == out and events[-1]["out"] == checkpoint and events[-1]["fraction"] == 1.0
    assert [e["step"] for e in events if e["stage"] == "views"] == list(range(len(views.STEPS) + 1))
    assert json.loads(capsys.readouterr().out.strip())["n_blocks"] == v.n_blocks


def test_two_workers_give_the_same_views_as_one(small_engine, pca_umap):
    eng = small_engine[0]
    one, two = views.compute_views(eng, workers=1), views.compute_views(eng, workers=2)
    assert one.key == two.key and np.array_equal(one.coords2, two.coords2)
    assert np.array_equal(one.regime.labels, two.regime.labels) and one.lower_bound == two.lower_bound
    assert all(np.array_equal(one.orderings[m], two.orderings[m]) for m in one.orderings)


def test_a_bad_checkpoint_is_one_line_a_failed_event_and_status_2(tmp_path, capsys):
    bad, ev = tmp_path / "bad.pt", str(tmp_path / "e.jsonl")
    bad.write_bytes(b"not a checkpoint")
    assert main(["views", str(bad), "--out", str(tmp_path / "v.npz"), "--events", ev]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0]
    events, _ = read_events(ev)
    assert events[-1]["stage"] == "failed" and events[-1]["message"]
    assert not (tmp_path / "v.npz").exists()


def test_a_views_path_that_is_the_checkpoint_is_refused(checkpoint, capsys):
    before = open(checkpoint, "rb").read()
    assert main(["views", checkpoint, "--out", checkpoint]) == 2
    assert "would destroy it" in capsys.readouterr().err
    assert open(checkpoint, "rb").read() == before


def test_train_with_views_writes_both_files_and_names_the_views_in_its_done_event(tmp_path):
    out, v, ev = tmp_path / "m.pt", tmp_path / "v.npz", tmp_path / "e.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "chronoslib", "train", "sample_data/synthetic_regimes.csv", "--out",
                        str(out), "--epochs", "1", "--predictor-epochs", "1", "--block-len", "64", "--views", str(v),
                        "--events", str(ev), "--quiet"], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    eng = ChronosDefragEngine.load(str(out))
    got = views.load_views(str(v), projection.latents_key(eng.block_latents))     # real UMAP here
    assert got.method == "umap" and got.coords2.shape == (len(eng.block_latents), 2)
    events, _ = read_events(str(ev))
    assert [e["stage"] for e in events].count("views") == 1 + len(views.STEPS)
    assert events[-1]["stage"] == "done" and events[-1]["views"] == str(v)
    assert set(events[-1]["summary"]["view_seconds"]) == set(views.STEPS)


def test_train_refuses_a_views_path_that_is_its_data_before_training(tmp_path):
    data = tmp_path / "d.csv"
    data.write_bytes(open(os.path.join(ROOT, "sample_data/synthetic_regimes.csv"), "rb").read())
    before = data.read_bytes()
    assert main(["train", str(data), "--out", str(tmp_path / "m.pt"), "--views", str(data), "--quiet"]) == 2
    assert data.read_bytes() == before and not (tmp_path / "m.pt").exists()
