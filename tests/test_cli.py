"""Command line: train writes a loadable checkpoint; bad input gives one line and exit status 2."""

import json
import os
import subprocess
import sys

from chronoslib import ChronosDefragEngine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "chronoslib", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_train_writes_a_checkpoint_and_prints_a_json_summary(tmp_path):
    out, cfg = tmp_path / "model.pt", tmp_path / "cfg.json"
    # A config file that states the latent size for encoder and predictor alike still loads; flags override it.
    cfg.write_text(json.dumps({"encoder": {"latent_dim": 16}, "predictor": {"latent_dim": 16}}))
    r = _run("train", "sample_data/synthetic_regimes.csv", "--out", str(out), "--epochs", "2",
             "--predictor-epochs", "1", "--block-len", "32", "--config", str(cfg), "--latent-dim", "6", "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["n_blocks"] >= 4 and 0 <= summary["timeline_entropy"] <= 1
    eng = ChronosDefragEngine.load(str(out))
    assert eng.cfg.encoder.block_len == 32 and eng.cfg.optim.encoder_epochs == 2
    assert eng.cfg.encoder.latent_dim == 6 and eng.cfg.predictor.forecast_dim == 6   # lowered to fit


def test_missing_file_is_one_line_without_traceback(tmp_path):
    r = _run("train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m.pt"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error:") and "nope.csv" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_bad_config_value_is_one_line(tmp_path):
    r = _run("train", "sample_data/synthetic_regimes.csv", "--out", str(tmp_path / "m.pt"), "--block-len", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "block_len" in r.stderr
