"""The benchmark command: quick run prints JSON with every section, the README table is generated from it, the
memory probe sees a real allocation, the plain baselines compute what the fast paths compute, and
predict_batch equals predict_live one window at a time."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from chronoslib import bench, bench_measure
from chronoslib.baselines import plain_augment, plain_encoder_step, plain_info_nce
from chronoslib.losses import info_nce
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "chronoslib", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = json.loads(proc.stdout)
    assert printed == json.loads(out.read_text())
    return printed


def test_quick_bench_prints_json_with_every_section(quick_json):
    r = quick_json
    assert {"meta", "fit_spec", "training", "pseudo_timeline", "predict_live", "predict_batch", "registry_large",
            "ann", "gpu", "peak_rss_mb", "targets", "predict_live_side_by_side", "predict_batch_threads"} <= set(r)
    kn, tk = r["ann"]["knn_lists"], r["ann"]["top_k"]
    assert kn["n"] == 20_000 and tk["entries"] == 100_000 and tk["exact_ms"] > 0 and tk["build_s"] > 0
    for sec in (kn, tk):                          # faiss against the exact answer: more cells probed, more found
        rec = [v["recall_at_k"] for v in sec["by_nprobe"].values()]
        assert rec == sorted(rec) and 0.5 < rec[0] and rec[-1] > 0.95 and rec[-1] <= 1.0
    assert r["meta"]["quick"] is True and r["meta"]["threads"] == 1
    assert r["fit_spec"]["n_blocks"] == 48 and r["fit_spec"]["cpu_s"] > 0
    assert set(r["pseudo_timeline"]["exact"]) == {"48", "1000", "10000"}
    for row in r["pseudo_timeline"]["exact"].values():
        assert row["identical_to_allpairs"] is True and row["ratio_allpairs_over_fast"] > 0
    q = r["pseudo_timeline"]["approx"]["20000"]
    assert 0.9 < q["cost_ratio_approx_over_exact"] < 1.2
    lv = r["predict_live"]
    assert 0 < lv["p50_ms"] <= lv["p99_ms"] and lv["qps"] > 0 and lv["cpu_p50_ms"] > 0
    assert set(lv["stage_ms"]) == {"encode", "query", "spd", "predictor"}
    assert lv["cpu_p99_blocks"] == 1 and lv["cpu_p99_ms_block_median"] == pytest.approx(lv["cpu_p99_ms"])
    assert r["predict_batch"]["same_neighbours_as_live"] is True
    assert r["predict_batch"]["max_abs_alpha_diff_vs_live"] < 1e-4
    rl = r["registry_large"]
    assert rl["registry_entries"] == 100_000
    assert rl["index"]["active"] is True and rl["index"]["cells"] == round(100_000 ** 0.5)
    assert 0 < rl["cpu_p50_ms"] <= rl["cpu_p99_ms"] and rl["exact"]["cpu_p50_ms"] > 0
    rec = rl["recall"]["by_nprobe"]
    assert set(rec) == {"16", "32", "64", "128"} and rl["recall_at_default_nprobe"] == rec["64"]["recall_at_k"]
    assert rec["128"]["recall_at_k"] >= rec["16"]["recall_at_k"] and rec["64"]["recall_at_k"] > 0.9
    bt = r["predict_batch"]
    assert bt["chunk"] == 256 and bt["two_threads"]["windows_per_s_wall"] > 0 and bt["flops_per_window"] > 1e5
    for t in r["training"].values():
        # A speed ratio is reported, never asserted (machines here are noisy): only that it was measured.
        assert np.isfinite(t["ratio_plain_over_fast"]) and t["ratio_plain_over_fast"] > 0
    assert r["gpu"] == {"skipped": "no CUDA device"} or "blocks_per_s" in r["gpu"]
    assert r["peak_rss_mb"] > 50
    names = [t["name"] for t in r["targets"]]
    assert any("10k blocks (exact)" in n for n in names) and any("predict_batch" in n for n in names)


def test_quick_bench_measures_every_ordering_against_lkh_and_the_lower_bound(quick_json):
    o = quick_json["orderings"]
    assert set(o["scale"]) == {"1000", "10000"}
    for row in o["labelled"]:
        assert row["n"] == 256 and 0 <= row["ari"] <= 1 and row["mst_bound"] > 0
        lkh = row["lkh"]["cost"] if isinstance(row["lkh"], dict) else None
        for m in ("greedy", "refined", "regime"):
            assert row[m]["valid"] is True and row[m]["cost_over_mst"] >= 1.0
            if lkh is not None:
                assert row[m]["cost_over_lkh"] == pytest.approx(row[m]["cost"] / lkh)
        assert row["refined"]["cost"] <= row["greedy"]["cost"]
    for row in o["scale"].values():
        assert all(row[m]["valid"] for m in ("greedy", "refined", "regime"))
        assert row["refined"]["cost_over_greedy"] <= 1.0


def test_the_ordering_section_says_skipped_when_elkai_is_not_installed(monkeypatch):
    from chronoslib import bench_orderings
    from chronoslib.synthetic import regime_latents

    monkeypatch.setitem(sys.modules, "elkai", None)          # import elkai -> ImportError
    assert bench_orderings.lkh_open_path(regime_latents(20, seed=0)) is None
    z, lab = regime_latents(120, seed=0, return_labels=True)
    rows = bench_orderings.bench_labelled([{"seed": 0, "n": 120, "z": z, "truth": lab, "k_found": 4, "ari": 1.0}])
    assert rows[0]["lkh"] == "skipped: elkai not installed"
    assert rows[0]["refined"]["cost_over_lkh"] is None and rows[0]["regime"]["switches"] == len(set(lab)) - 1
    md = bench_orderings.to_markdown({"data": "d", "lkh": "l", "labelled": rows, "scale": {}})
    assert "skipped: elkai not installed" in md and "| 120 |" in md


def test_lkh_open_path_starts_at_block_zero_and_is_no_worse_than_greedy():
    pytest.importorskip("elkai")
    from chronoslib import bench_orderings
    from chronoslib.synthetic import regime_latents
    from chronoslib.timeline import build_pseudo_timeline, path_cost

    z = regime_latents(150, seed=3)
    p = bench_orderings.lkh_open_path(z)
    assert p[0] == 0 and sorted(p.tolist()) == list(range(150))
    assert path_cost(z, p) <= path_cost(z, build_pseudo_timeline(z, method="greedy"))


def test_markdown_table_is_generated_from_the_json(quick_json, tmp_path):
    md = bench.to_markdown(quick_json)
    assert "| Metric | ChronosDefrag 0.1.0 reference | ChronosDefrag |" in md and "~4.2 s" in md and "~850 QPS" in md
    assert f"{quick_json['fit_spec']['cpu_s']:.3g} s" in md
    assert md.count("| Pseudo-timeline,") == 4
    assert "IVF index: 316 cells, nprobe 64" in md and "| nprobe | recall@k |" in md
    p = tmp_path / "saved.json"
    p.write_text(json.dumps(quick_json))
    proc = subprocess.run([sys.executable, "-m", "chronoslib", "bench", "--from", str(p), "--markdown"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == md.strip()


def test_target_table_marks_met_missed_and_unmeasured():
    res = {"fit_spec": {"cpu_s": 3.0, "median_s": 9.0},
           "pseudo_timeline": {"exact": {"10000": {"cpu_s": 2.0, "median_s": 2.5, "extra_mb": 50.0}},
                               "approx": {"20000": {"cost_ratio_approx_over_exact": 1.02}}},
           "predict_live": {"p50_ms": 0.4, "p99_ms": 0.9, "cpu_p99_ms": 0.8},
           "predict_batch": {"windows_per_s": 60_000.0}, "registry_large": {"registry_entries": 10, "p50_ms": 6.0}}
    rows = {r["name"]: r for r in bench.target_table(res)}
    assert rows["fit, reference setting (30+20 epochs, 48 blocks), CPU s"]["met"] is True
    assert rows["fit, reference setting (30+20 epochs, 48 blocks), CPU s"]["wall"] == 9.0
    assert rows["pseudo-timeline, 10k blocks (exact), CPU s"]["met"] is False
    assert rows["pseudo-timeline, 1M blocks (approx), CPU s"]["met"] is None
    assert rows["predict_batch throughput (CPU)"]["met"] is True
    assert rows["predict_live p50 with a registry of 10"]["met"] is False
    assert all(r["met"] is None or r["value"] is not None for r in rows.values())


def test_memory_probe_sees_a_real_allocation():
    def alloc():
        a = np.ones(40 * 2**20 // 8)  # 40 MB, touched
        time.sleep(0.05)              # held long enough for the sampling thread to see it
        return float(a.sum())

    sampled = {}
    out, wall, cpu, extra = bench_measure.measure(alloc, sampled)
    assert out == 40 * 2**20 // 8 and wall > 0 and cpu >= 0
    assert 30 < extra < 200
    assert 30 < sampled["extra_mb"] <= extra + 5     # the kernel's peak and the sampled one agree


def test_memory_probe_does_not_count_memory_held_before_the_call():
    held = np.ones(200 * 2**20 // 8)  # 200 MB resident before the measured call
    r = bench_measure.repeat(lambda: float(held[::4096].sum()), 2)
    assert r["extra_mb"] < 20 and r["extra_mb_sampled"] < 20


def test_plain_info_nce_equals_the_vectorised_loss():
    g = torch.Generator().manual_seed(0)
    p1 = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    p2 = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    ids = torch.tensor([0, 1, 2, 0, 4, 5])
    for i in (None, ids):
        torch.testing.assert_close(plain_info_nce(p1, p2, 0.3, ids=i), info_nce(p1, p2, 0.3, ids=i))


def test_plain_augment_shifts_and_jitters_each_block():
    x = torch.arange(2 * 8 * 1, dtype=torch.float32).reshape(2, 8, 1)
    y = plain_augment(x, 0.0, 7, torch.Generator().manual_seed(1))
    for i in range(2):  # a pure cyclic shift of each block (jitter 0)
        assert any(torch.equal(y[i], torch.roll(x[i], -s, 0)) for s in range(8))


def test_plain_encoder_step_trains_the_encoder():
    from chronoslib.encoder import RegimeEncoder

    cfg = small_config()
    torch.manual_seed(0)
    enc = RegimeEncoder(cfg.encoder)
    before = [p.detach().clone() for p in enc.parameters()]
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-2)
    blocks = torch.randn(10, cfg.encoder.block_len, cfg.encoder.input_dim)
    loss = plain_encoder_step(enc, opt, blocks, torch.tensor([0, 3, 5]), cfg, torch.Generator().manual_seed(0))
    assert np.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, enc.parameters()))


def test_predict_batch_equals_predict_live_one_by_one(small_engine):
    eng, x = small_engine
    rng = np.random.default_rng(1)
    L = eng.cfg.encoder.block_len
    w = rng.standard_normal((12, L, 6)).astype(np.float32)
    out = eng.predict_batch(w, chunk=5)  # several chunks
    for i in range(12):
        p = eng.predict_live(w[i])
        assert out["neighbour_indices"][i].tolist() == p.neighbour_indices
        np.testing.assert_allclose(out["neighbour_scores"][i], p.neighbour_scores, atol=1e-5)
        np.testing.assert_allclose(out["alpha"][i], float(p.alpha_prediction), atol=1e-5)
        np.testing.assert_allclose(out["confidence"][i], p.regime_confidence, atol=1e-5)
        np.testing.assert_allclose(out["latent"][i], p.latent.numpy(), atol=1e-5)
