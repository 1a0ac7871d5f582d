"""Metrics on constructed cases, against brute-force or hand computations: collapse statistics, timeline
quality (entropy, run length, purity, timeline_merit), agreement (ARI / NMI) and the one majority-label rule
(``metrics.block_majority``: missing labels are NaN, blanks read as NaN or negative codes; ties; blocks at given
starts), with every user of a per-block label (evaluation, synthetic sets, regime views, the replay's neighbour
table) agreeing with it."""
import math

import numpy as np
import pytest
from scipy import stats

from chronoslib import metrics
from chronoslib.errors import ConfigError, DataError
from chronoslib.metrics import block_majority, latent_mse, spearman, t_interval
from chronoslib.timeline import path_cost
from tests.latent_support import grouped_latents


def _unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_identical_vectors_are_flagged_collapsed():
    z = np.tile(_unit_rows(np.random.default_rng(0).standard_normal((1, 16))), (50, 1))
    s = metrics.collapse_stats(z)
    assert s["collapsed"] and s["verdict"] == "collapsed"
    assert s["mean_cos"] == pytest.approx(1.0)
    assert s["eff_rank"] == pytest.approx(1.0)


def test_random_unit_vectors_are_healthy():
    z = _unit_rows(np.random.default_rng(1).standard_normal((200, 16)))
    s = metrics.collapse_stats(z)
    assert s["verdict"] == "healthy" and not s["collapsed"]
    assert abs(s["mean_cos"]) < 0.05
    assert s["eff_rank"] > 12


def test_pairwise_similarities_match_brute_force_and_sample_when_large():
    z = np.random.default_rng(2).standard_normal((30, 5))
    zn = _unit_rows(z)
    brute = [zn[i] @ zn[j] for i in range(30) for j in range(i + 1, 30)]
    np.testing.assert_allclose(np.sort(metrics.pairwise_similarities(z)), np.sort(brute), atol=1e-12)
    sampled = metrics.pairwise_similarities(z, max_pairs=100, seed=3)
    assert sampled.shape == (100,) and np.all(sampled < 1 - 1e-9)  # never a row paired with itself
    assert metrics.pairwise_similarities(z[:1]).size == 0


def test_collapse_curves_keep_encoder_epochs_only():
    hist = [{"stage": "encoder", "epoch": 1, "entropy": 1.0, "entropy_target": 1.5, "mean_cos": 0.2, "eff_rank": 5.0,
             "verdict": "healthy"},
            {"stage": "encoder", "epoch": 2, "entropy": 0.5, "entropy_target": 1.5, "mean_cos": 0.95, "eff_rank": 1.1,
             "verdict": "collapsed"},
            {"stage": "predictor", "epoch": 1, "loss": 0.3}]
    c = metrics.collapse_curves(hist)
    assert c["epoch"].tolist() == [1, 2]
    assert c["mean_cos"].tolist() == [0.2, 0.95]
    assert c["verdict"].tolist() == ["healthy", "collapsed"]
    assert np.isnan(c["ter"]).all()
    assert set(metrics.COLLAPSE_MITIGATIONS) == {"healthy", "collapsing", "collapsed"}


# ---------------------------------------------------------------------- timeline quality and agreement


def test_timeline_merit_reuses_the_library_metrics():
    z, truth = grouped_latents(seed=8)
    order = np.argsort(truth, kind="stable")           # an order that groups the labels perfectly
    m = metrics.timeline_merit(z, order, truth)
    assert m["path_cost_chrono"] == pytest.approx(path_cost(z))
    assert m["path_cost_pseudo"] == pytest.approx(path_cost(z, order))
    assert m["timeline_entropy"] == pytest.approx(metrics.timeline_entropy(order))
    assert m["run_pseudo"] == pytest.approx(20.0) and m["purity_pseudo"] == pytest.approx(57 / 59)
    assert m["run_chrono"] < m["run_pseudo"] and m["path_cost_ratio"] < 1
    assert "run_chrono" not in metrics.timeline_merit(z, order)


def test_agreement_matches_a_hand_computed_adjusted_rand_index():
    truth = np.array([0, 0, 0, 1, 1, 1])
    labels = np.array([0, 0, 1, 1, 2, 2])
    # Contingency [[2,1,0],[0,1,2]]: sum C(n_ij,2) = 1+0+0+0+0+1 = 2; rows C(3,2)*2 = 6; cols C(2,2)*3 = 3; C(6,2) = 15.
    expected = 15.0
    exp_idx = 6 * 3 / expected
    ari = (2 - exp_idx) / (0.5 * (6 + 3) - exp_idx)
    out = metrics.agreement(labels, truth)
    assert out["ari"] == pytest.approx(ari)
    assert metrics.agreement(1 - truth, truth) == pytest.approx({"ari": 1.0, "nmi": 1.0})
    with pytest.raises(DataError, match="same shape"):
        metrics.agreement(labels[:5], truth)


# ---------------------------------------------------------------------- evidence statistics
def test_t_interval_matches_scipy_student_t():
    v = np.array([0.3, -0.1, 0.45, 0.2, 0.05])
    m, h = t_interval(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert m == pytest.approx(v.mean())
    assert m - h == pytest.approx(lo) and m + h == pytest.approx(hi)
    m1, h1 = t_interval([2.5])
    assert m1 == 2.5 and np.isnan(h1)
    assert np.isnan(t_interval([])[0])


def test_spearman_matches_scipy_including_ties_and_refuses_bad_shapes():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(40)
    b = 0.5 * a + rng.standard_normal(40)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    t1, t2 = np.array([1, 2, 2, 3, 5, 5, 5.0]), np.array([3, 1, 4, 1, 5, 9, 2.0])
    assert spearman(t1, t2) == pytest.approx(stats.spearmanr(t1, t2).statistic)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert np.isnan(spearman([1, 1, 1, 1], [1, 2, 3, 4]))
    with pytest.raises(DataError, match="equal length"):
        spearman([1, 2, 3], [1, 2])


def test_latent_mse_is_the_plain_mean_of_squared_errors():
    p, t = np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 2.0]])
    assert latent_mse(p, t) == pytest.approx((1 + 4 + 0 + 4) / 4)
    with pytest.raises(DataError, match="does not match"):
        latent_mse(p, t[:1])




def test_block_majority_ignores_missing_labels():
    lab = np.array([0, 1, 1, -1, -1, -1, -1, -1, 2, 2, 0, 0, 5])
    assert block_majority(lab, 4).tolist() == [1, -1, 0]   # tie 2 vs 0 -> lowest code; trailing tick ignored


# ---------------------------------------------------------------------- majority label per block
def _brute_rows(rows, bl):
    maj, share = [], []
    for r in rows:
        r = [int(x) for x in r if not (isinstance(x, float) and math.isnan(x)) and x >= 0]
        if not r:
            maj.append(-1)
            share.append(0.0)
            continue
        best = max(set(r), key=lambda v: (r.count(v), -v))   # most ticks, then the lowest code
        maj.append(best)
        share.append(r.count(best) / bl)
    return maj, share


def _brute(labels, bl):
    return _brute_rows([list(labels[i * bl:(i + 1) * bl]) for i in range(len(labels) // bl)], bl)[0]


def test_block_majority_ignores_missing_and_breaks_ties_low_and_matches_brute_force():
    assert block_majority(np.array([-1, -1, -1, -1, 2, 2, 3, 3]), 4).tolist() == [-1, 2]
    rng = np.random.default_rng(0)
    for _ in range(200):
        lab = rng.integers(-1, 4, size=int(rng.integers(4, 40)))
        assert block_majority(lab, 4).tolist() == _brute(lab, 4)


def test_replay_block_regimes_keep_truth_when_labels_have_missing_values(small_engine):
    from chronoslib.regimes import block_regimes

    eng, x = small_engine
    lab = np.repeat(np.arange(40) % 3, 16).astype(np.float64)
    lab[:16] = -1                    # a wholly unlabelled first block
    lab[20] = np.nan                 # a blank inside the second block
    out = block_regimes(eng.block_latents, eng.block_starts, eng.cfg.encoder.block_len, x, 100 + np.cumsum(x[:, 0]),
                        lab, k=3)
    assert "cluster" in out and out["truth"][0] == -1
    assert out["truth"][1:].tolist() == (np.arange(1, 40) % 3).tolist()


def test_one_majority_rule_serves_synthetic_sets_regime_views_and_blocks_at_given_starts():
    from chronoslib.metrics import block_majority as one
    from chronoslib.synthetic import block_labels

    lab = np.array([2, 2, 0, -1, 1, 1, 1, 1, -1, -1, -1, -1], dtype=float)
    lab_nan = lab.copy()
    lab_nan[3] = np.nan
    maj, share = one(lab_nan, 4, return_share=True)
    assert maj.tolist() == [2, 1, -1] and share.tolist() == [0.5, 1.0, 0.0]   # NaN and -1 are both missing
    assert [a.tolist() for a in block_labels(lab.astype(int), 4)] == [maj.tolist(), share.tolist()]
    assert one(lab, 4, starts=np.array([2, 4])).tolist() == [1, 1]            # ticks 2..5 and 4..7


def test_nan_blanks_and_negative_codes_are_missing_and_shares_match_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        bl = int(rng.integers(1, 9))
        lab = rng.integers(-3, 5, size=int(rng.integers(0, 60))).astype(np.float64)
        lab[rng.random(lab.size) < 0.2] = np.nan                   # blank cells read as NaN
        starts = np.sort(rng.choice(max(lab.size - bl + 1, 1), size=min(5, max(lab.size - bl + 1, 0)),
                                    replace=False)) if lab.size >= bl else np.zeros(0, dtype=np.int64)
        maj, share = block_majority(lab, bl, return_share=True)
        ref_maj, ref_share = _brute_rows([list(lab[i * bl:(i + 1) * bl]) for i in range(lab.size // bl)], bl)
        assert maj.tolist() == ref_maj and share.tolist() == pytest.approx(ref_share)
        m2, s2 = block_majority(lab, bl, starts=starts, return_share=True)
        r2, rs2 = _brute_rows([list(lab[s:s + bl]) for s in starts], bl)
        assert m2.tolist() == r2 and s2.tolist() == pytest.approx(rs2)


def test_ties_go_to_the_lowest_code_and_huge_codes_cost_no_memory():
    assert block_majority(np.array([3, 3, 1, 1, 2, 2]), 6).tolist() == [1]
    assert block_majority(np.array([7, -1, 7, 0, -1, 0]), 6).tolist() == [0]
    # A code of 10**12 must not make a 10**12-wide count table (the old rule allocated max(code) + 1 columns).
    big = np.array([10 ** 12, 10 ** 12, 5, -1], dtype=np.int64)
    assert block_majority(big, 4).tolist() == [10 ** 12]


def test_bad_label_input_is_a_clear_error():
    with pytest.raises(ConfigError, match="block_len"):
        block_majority(np.zeros(8, dtype=int), 0)
    with pytest.raises(DataError, match="whole regime codes; tick 1"):
        block_majority(np.array([0.0, 1.5, 2.0, 2.0]), 2)
    with pytest.raises(DataError, match="dtype"):
        block_majority(np.array(["a", "b"]), 1)
    with pytest.raises(DataError, match="1-D"):
        block_majority(np.zeros((4, 2)), 2)
    with pytest.raises(DataError, match="block 1 .*outside"):
        block_majority(np.zeros(8, dtype=int), 4, starts=np.array([0, 6]))


def test_the_evaluation_uses_the_same_rule():
    from chronoslib import experiments

    assert experiments.block_majority is block_majority


def test_a_label_column_with_blanks_and_negative_codes_loads_them_as_missing():
    import pandas as pd

    from chronoslib.data import build_dataset

    x = np.random.default_rng(0).standard_normal((40, 2))
    for col in ([0, 1, -1, None, 2] * 8, [0, 1, -1, 3, 2] * 8, ["a", "b", " ", None, "a"] * 8):
        df = pd.DataFrame({"f1": x[:, 0], "f2": x[:, 1], "regime": col})
        ds = build_dataset(df, "t", holdout=0.0)
        want = [-1 if v is None or v == -1 or v == " " else v for v in col[:5]]
        names = ds.label_names or []
        got = [names[c] if names and c >= 0 else int(c) for c in ds.labels[:5]]
        assert got == want                             # -1 and blanks are missing, not a regime "-1.0" or " "
        assert "-1.0" not in names and " " not in names and "" not in names
        assert block_majority(ds.labels, 5).tolist() == [block_majority(ds.labels[:5], 5)[0]] * 8


def test_the_mst_lower_bound_is_below_every_order_and_its_knn_estimate_is_close_to_the_exact_tree():
    from chronoslib.metrics import mst_lower_bound, ordering_scores, ordering_table
    from chronoslib.synthetic import regime_latents
    from chronoslib.timeline import build_pseudo_timeline, path_cost

    z, lab = regime_latents(2500, seed=0, return_labels=True)
    exact = mst_lower_bound(z, exact_max=3000)
    knn = mst_lower_bound(z)                                          # > 2,000 blocks: the K-NN graph
    assert exact <= knn <= 1.02 * exact
    for m in ("greedy", "refined", "regime"):
        assert path_cost(z, build_pseudo_timeline(z, method=m)) >= exact
    line = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])              # MST = the line: 1 + 4
    assert mst_lower_bound(line) == pytest.approx(5.0)
    q = ordering_scores(line, np.array([0, 2, 1]), np.array([0, 1, 1]))
    assert q["cost"] == pytest.approx(9 + 4) and q["gap"] == pytest.approx(13 / 5 - 1)
    assert q["switches"] == 1 and q["mean_run"] == 1.5 and q["purity"] == 0.5
    rows = ordering_table(line, {"a": np.array([0, 1, 2]), "b": np.array([0, 2, 1])})
    assert [r["order"] for r in rows] == ["a", "b"] and rows[0]["gap"] == pytest.approx(0.0)
