"""Evidence experiments: protocol helpers against independent computations, the three training orders really
differ, both forecast protocols match the engine / a hand-built window, and the whole run works."""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from chronoslib import ChronosDefragEngine, experiments
from chronoslib.errors import ConfigError, DataError, NotEnoughBlocksError
from chronoslib.experiments import (
    arm_orders,
    block_returns,
    block_stats,
    chrono_context_forecasts,
    regime_scores,
    routed_forecasts,
    run_evaluation,
)
from chronoslib.metrics import t_interval
from chronoslib.predictor import pseudo_windows
from chronoslib.synthetic import make_regime_series
from tests.conftest import small_config


# ---------------------------------------------------------------------------- protocol helpers
def test_block_stats_match_a_direct_loop():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3))
    x[20:30, 1] = 7.0  # a constant block column: autocorrelation 0, not NaN
    s = block_stats(x, 10)
    assert s.shape == (5, 9)
    for i in range(5):
        blk = x[i * 10:(i + 1) * 10]
        for f in range(3):
            c = blk[:, f] - blk[:, f].mean()
            ac = (c[1:] * c[:-1]).sum() / (c ** 2).sum() if (c ** 2).sum() > 1e-12 else 0.0
            assert s[i, f] == pytest.approx(blk[:, f].mean())
            assert s[i, 3 + f] == pytest.approx(blk[:, f].std())
            assert s[i, 6 + f] == pytest.approx(ac)


def test_block_returns_are_log_returns_from_the_previous_blocks_last_tick():
    p = np.exp(np.arange(12, dtype=float) * 0.1)
    r = block_returns(p, np.array([0, 4, 8]), 4)
    assert np.isnan(r[0])
    assert r[1:] == pytest.approx([np.log(p[7] / p[3]), np.log(p[11] / p[7])])
    with pytest.raises(DataError, match="prices"):
        block_returns(np.array([1.0, -1.0, 2.0, 3.0]), np.array([0]), 4)


def test_the_three_orders_are_distinct_permutations():
    pseudo = np.array([0, 3, 1, 4, 2, 5])
    o = arm_orders(pseudo, np.random.default_rng(0))
    assert o["pseudo"].tolist() == pseudo.tolist()
    assert o["chrono"].tolist() == list(range(6))
    for a in o.values():
        assert sorted(a.tolist()) == list(range(6))
    assert not np.array_equal(o["random"], o["chrono"]) and not np.array_equal(o["random"], o["pseudo"])
    # the windows the predictor trains on differ between arms
    w = {k: pseudo_windows(torch.from_numpy(v), 3) for k, v in o.items()}
    assert not torch.equal(w["pseudo"][0], w["chrono"][0]) and not torch.equal(w["random"][0], w["chrono"][0])


def test_regime_scores_are_perfect_on_separated_clusters_and_match_sklearn():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], 20)
    centres = np.eye(3) * 10
    z = centres[y] + rng.standard_normal((60, 3)) * 0.1
    s = np.concatenate([centres[y], centres[y]], axis=1) + rng.standard_normal((60, 6)) * 0.1
    out = regime_scores(z[:45], z[45:], s[:45], s[45:], y[:45], y[45:], 3, seed=0)
    assert set(out) == {"train", "heldout"}
    assert out["train"]["latent_kmeans"]["ari"] == pytest.approx(1.0)
    assert out["train"]["stats_kmeans"]["nmi"] == pytest.approx(1.0)
    assert out["heldout"]["latent_kmeans"]["ari"] == pytest.approx(adjusted_rand_score(y[45:], y[45:]))
    assert np.isfinite(out["train"]["stats_hmm"]["ari"])


# ---------------------------------------------------------------------------- the two forecast protocols
@pytest.fixture(scope="module")
def fitted():
    s = make_regime_series(16 * 60, n_features=6, n_regimes=3, mean_duration=120, seed=3)
    cfg = small_config(epochs=2, seed=5)
    return ChronosDefragEngine(cfg).fit(s.data[: 16 * 48]), s


def test_routed_forecasts_equal_the_engines_own_batched_live_prediction(fitted):
    eng, s = fitted
    held = s.data[16 * 48:]
    windows = held.reshape(-1, 16, 6)
    tq = 16 * 50
    z = torch.from_numpy(eng.block_latents)
    q = torch.from_numpy(eng.embed(held))
    ours = routed_forecasts(eng.predictor, z, eng.pseudo_timeline, eng.block_starts, q, np.full(len(q), tq), eng.cfg)
    ref = eng.predict_batch(windows, timestamp=tq)["forecast"]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-4, atol=1e-5)


def test_chrono_context_forecast_is_the_predictor_on_the_preceding_window(fitted):
    eng, _ = fitted
    z = torch.from_numpy(eng.block_latents)
    w = eng.cfg.predictor.window
    out = chrono_context_forecasts(eng.predictor, z, np.array([3, 20]))
    manual_20 = eng.predictor(z[20 - w:20].unsqueeze(0))[0]
    manual_3 = eng.predictor(torch.cat([torch.zeros(w - 3, z.shape[1]), z[:3]]).unsqueeze(0))[0]
    assert torch.allclose(out[1], manual_20, atol=1e-6) and torch.allclose(out[0], manual_3, atol=1e-6)


# ---------------------------------------------------------------------------- the whole experiment
@pytest.fixture(scope="module")
def evaluation():
    """A 2-seed run on labelled synthetic data with prices; records the orders the predictor was trained on."""
    s = make_regime_series(16 * 64, n_features=6, n_regimes=3, mean_duration=128, seed=4)
    seen: list[np.ndarray] = []
    real = experiments.train_predictor

    def spy(predictor, z, order, cfg, gen, history, progress=None):
        seen.append(order.numpy().copy())
        return real(predictor, z, order, cfg, gen, history, progress)

    mp = pytest.MonkeyPatch()
    mp.setattr(experiments, "train_predictor", spy)
    calls = []
    try:
        res = run_evaluation(s.data, 16 * 52, small_config(epochs=2), labels=s.labels, prices=s.prices, seeds=2,
                             seed0=3, predictor_epochs=2, dataset="synthetic",
                             progress=lambda *a: calls.append(a))
    finally:
        mp.undo()
    return res, seen, calls, s


def test_evaluation_trains_each_arm_on_its_own_order(evaluation):
    res, seen, _, _ = evaluation
    assert len(seen) == 2 * 3            # seeds x arms, in the order pseudo, chrono, random
    n = res["n_train_blocks"]
    for k in range(2):
        pseudo, chrono, rand = seen[3 * k: 3 * k + 3]
        assert pseudo[0] == 0 and sorted(pseudo.tolist()) == list(range(n))
        assert chrono.tolist() == list(range(n))
        assert sorted(rand.tolist()) == list(range(n))
        assert not np.array_equal(pseudo, chrono) and not np.array_equal(rand, chrono)
        assert not np.array_equal(rand, pseudo)
        heads = res["per_seed"][k]["orders_head"]
        assert heads["pseudo"] == pseudo[:12].tolist() and heads["random"] == rand[:12].tolist()


def test_evaluation_result_is_complete_and_summaries_match_per_seed_values(evaluation):
    res, _, calls, _ = evaluation
    assert res["n_train_blocks"] == 52 and res["n_heldout_blocks"] == 12 and res["n_targets"] == 11
    assert res["seeds"] == [3, 4] and res["has_prices"] and res["has_regimes"] and res["n_regimes"] == 3
    json.dumps(res, allow_nan=False)      # strict JSON
    s = res["summary"]
    for p in res["protocols"]:
        for a in res["arms"]:
            vals = [r["error"][p][a] for r in res["per_seed"]]
            assert all(v > 0 for v in vals)
            assert s["error"][p][a]["values"] == vals
            m, h = t_interval(vals)
            assert s["error"][p][a]["mean"] == pytest.approx(m) and s["error"][p][a]["ci"] == pytest.approx(h)
            assert all(-1 <= r["spearman"][p][a] <= 1 for r in res["per_seed"])
        red = [100 * (r["error"][p]["chrono"] - r["error"][p]["pseudo"]) / r["error"][p]["chrono"]
               for r in res["per_seed"]]
        assert s["error_reduction_pct"][p]["vs_chrono"]["values"] == pytest.approx(red)
    for span in ("train", "heldout"):
        for meth in experiments.REGIME_METHODS:
            assert -1 <= s["regimes"][span][meth]["ari"]["mean"] <= 1
    assert [c[1] for c in calls] == list(range(1, 9)) and all(c[2] == 8 for c in calls)


def test_evaluation_baselines_match_a_direct_recomputation(evaluation):
    res, _, _, s = evaluation
    cfg = small_config(epochs=2)
    cfg.seed, cfg.optim.predictor_epochs = 3, 0
    eng = ChronosDefragEngine(cfg).fit(s.data[: 16 * 52])       # the same fit as seed 3 of the run
    zh = eng.embed(s.data[16 * 52:])
    fd = cfg.predictor.forecast_dim
    pers = ((zh[1:, :fd] - zh[:-1, :fd]) ** 2).mean()
    rets = np.log(s.prices[16 * 53 + 15::16] / s.prices[16 * 52 + 15:-16:16])
    seed3 = res["per_seed"][0]
    assert seed3["baselines"]["persistence"] == pytest.approx(pers, rel=1e-4)
    assert seed3["baselines"]["persistence_spearman"] == pytest.approx(stats.spearmanr(zh[:-1, 0], rets).statistic,
                                                                       abs=1e-6)


def test_evaluation_refuses_bad_settings_with_clear_messages():
    x = np.random.default_rng(0).standard_normal((16 * 40, 6)).astype(np.float32)
    cfg = small_config()
    with pytest.raises(NotEnoughBlocksError, match="held-out blocks"):
        run_evaluation(x, 16 * 38, cfg, seeds=1)
    with pytest.raises(NotEnoughBlocksError, match="training blocks"):
        run_evaluation(x, 16 * 5, cfg, seeds=1)
    with pytest.raises(ConfigError, match="seeds"):
        run_evaluation(x, 16 * 30, cfg, seeds=0)
    with pytest.raises(DataError, match="5 features but encoder.input_dim is 6"):
        run_evaluation(x[:, :5], 16 * 30, cfg, seeds=1)
    with pytest.raises(DataError, match="labels have"):
        run_evaluation(x, 16 * 30, cfg, seeds=1, labels=np.zeros(10, dtype=int))
