"""``bench --only live``: one JSON document with the side-by-side live rows (ours at both configurations and the
reference stand-in, per-stage medians, ratios), predict_batch at 1 and 2 threads and the live-path targets.
Structure and consistency only: speeds are reported by the bench, never asserted."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_only_live_prints_the_live_rows():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "chronoslib", "bench", "--only", "live", "--quick"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert set(r) == {"meta", "live"} and r["meta"]["bench_s"] > 0
    side, batch = r["live"]["side_by_side"], r["live"]["batch_threads"]
    for name in ("ours_default", "ours_reference_config", "reference"):
        assert 0 < side[name]["p50_ms"] <= side[name]["p99_ms"]
    for name in ("ours_default", "ours_reference_config"):
        st = side[name]["stage_p50_ms"]
        assert set(st) == {"encode", "query", "spd", "predictor", "total"} and all(v >= 0 for v in st.values())
        assert st["encode"] + st["query"] + st["spd"] + st["predictor"] <= st["total"] * 1.5
    ratio = side["ours_reference_config"]["p50_ms"] / side["reference"]["p50_ms"]
    assert abs(side["ratio_p50_ours_over_reference"] - ratio) < 1e-9
    assert side["reference_config"]["hidden"] == 128 and side["reference_config"]["encoder_layers"] == 4
    from chronoslib.live_path import available_kernels, cpu_model, kernel_for
    assert side["kernels"] == {"ours_default": kernel_for(32), "ours_reference_config": kernel_for(128)}
    assert set(side["kernels"].values()) <= set(available_kernels())
    assert r["meta"]["cpu_model"] == cpu_model()
    assert batch["identical"] is True and batch["windows_per_s_1_thread"] > 0 and batch["windows_per_s_2_threads"] > 0
    targets = {t["name"]: t for t in r["live"]["targets"]}
    assert len(targets) == 4 and all(isinstance(t["met"], bool) for t in targets.values())
    p50 = targets["predict_live p50 at the default configuration (ms)"]
    assert p50["value"] == side["ours_default"]["p50_ms"] and p50["met"] == (p50["value"] <= 0.15)
