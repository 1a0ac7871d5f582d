"""The at-size benchmark section: the train command run end to end on a generated labelled file, its events turned
into per-stage seconds that add up to the run, the child's own peak memory, and regime recovery scored against
the generator's labels."""

import json
import os
import subprocess
import sys

import pytest

from chronoslib.bench_at_size import encoder_rates, stage_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("starting", "loading", "encoder", "pseudo_timeline", "predictor", "registry", "saving")


def _ev(stage, t, message="", **kw):
    return {"stage": stage, "t": t, "message": message, **kw}


def test_stage_seconds_give_each_interval_to_the_earlier_events_stage():
    evs = [_ev("starting", 100.5), _ev("loading", 101.0), _ev("encoder", 103.0), _ev("encoder", 110.0),
           _ev("pseudo_timeline", 111.0), _ev("encoder", 111.5), _ev("done", 112.0)]
    r = stage_seconds(evs, launched=100.0, ended=113.0)
    # encoder: 103 -> 111 and the late 111.5 -> 112, a stage met twice adds up
    assert r["stages_s"] == {"starting": 0.5, "loading": 2.0, "encoder": 8.5, "pseudo_timeline": 0.5}
    assert r["first_event_s"] == 0.5 and r["after_done_s"] == 1.0
    assert r["first_event_s"] + sum(r["stages_s"].values()) + r["after_done_s"] == pytest.approx(13.0)
    assert stage_seconds([], 0.0, 1.0) == {"stages_s": {}, "first_event_s": None, "after_done_s": None}


def test_encoder_rates_come_from_epoch_end_events_only():
    evs = [_ev("encoder", 1, epoch=1, epochs=3, steps=10, steps_per_s=99.0),          # in-epoch: no message
           _ev("encoder", 2, "encoder epoch 1/3", epoch=1, epochs=3, steps=10, steps_per_s=4.0),
           _ev("encoder", 3, "encoder epoch 2/3", epoch=2, epochs=3, steps=10, steps_per_s=6.0),
           _ev("encoder", 4, "...", epoch=0, epochs=3, steps=10, steps_per_s=None),      # stage start
           _ev("predictor", 5, "predictor epoch 1/1", epoch=1, epochs=1, steps=5, steps_per_s=20.0)]
    r = encoder_rates(evs)
    assert r["encoder"] == {"epochs": 3, "epochs_run": 2, "steps_per_epoch": 10, "steps_per_s_median": 5.0}
    assert r["predictor"]["steps_per_s_median"] == 20.0 and r["predictor"]["epochs_run"] == 1


def test_bench_only_at_size_trains_through_the_command_and_reports_every_figure():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    # Few epochs and no views keep this test short; the section's defaults are the command's own.
    code = ("import sys; from chronoslib import bench_at_size, cli; bench_at_size.bench_at_size.__defaults__ = "
            "(1_000_000, ('--epochs', '2', '--predictor-epochs', '1'), False, 600.0); "
            "sys.exit(cli.main(['bench', '--only', 'at_size', '--rows', '12800']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert set(res) == {"meta", "at_size"}
    r = res["at_size"]
    assert r["rows"] == 12800 and r["blocks"] == 12800 // r["block_len"] == 200 and r["features"] == 6
    assert r["file_mb"] > 0.5 and r["views"] is False
    assert 0 < r["read"]["read_s"] < r["read"]["process_s"] and r["read"]["build_s"] > 0
    assert set(STAGES) <= set(r["stages_s"]) and all(v >= 0 for v in r["stages_s"].values())
    assert 0 < r["first_event_s"] < r["total_s"]
    assert r["first_event_s"] + r["stages_sum_s"] + r["after_done_s"] == pytest.approx(r["total_s"], abs=0.5)
    enc = r["training"]["encoder"]
    assert enc["epochs"] == enc["epochs_run"] == 2 and enc["steps_per_s_median"] > 0
    assert r["summary"]["n_blocks"] == 200 and r["summary"]["encoder_epochs"] == 2
    assert 100 < r["peak_rss_mb"] < 4000        # a torch process, its own figure (not the bench's)
    rec = r["regime_recovery"]
    assert rec["true_k"] == 3 and rec["blocks"] == 200 and rec["k_found"] >= 2
    for name in ("model", "latent_kmeans_true_k", "stats_kmeans_true_k"):
        assert -1.0 <= rec[name]["ari"] <= 1.0 and 0.0 <= rec[name]["nmi"] <= 1.0
    # Long regimes: nearly every block lies inside one regime, so block-majority labels are a fair truth.
    assert rec["block_label_share_mean"] > 0.9
    assert len(r["load_avg"]["before"]) == len(r["load_avg"]["after"]) == 3
