"""Evidence experiments: metric helpers against independent computations, the three training orders really
differ, both forecast protocols match the engine / a hand-built window, and the whole run and CLI work."""

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from chronoslib import ChronosDefragEngine, experiments
from chronoslib.cli import main
from chronoslib.errors import ConfigError, DataError, NotEnoughBlocksError
from chronoslib.experiments import (
    arm_orders,
    block_returns,
    block_stats,
    chrono_context_forecasts,
    latent_mse,
    load_eval_dataset,
    regime_scores,
    routed_forecasts,
    run_evaluation,
    spearman,
    t_interval,
)
from chronoslib.predictor import pseudo_windows
from chronoslib.synthetic import make_regime_series
from tests.conftest import small_config


# ---------------------------------------------------------------------------- metric helpers
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


def test_block_majority_ignores_missing_labels():
    from chronoslib.experiments import block_majority

    lab = np.array([0, 1, 1, -1, -1, -1, -1, -1, 2, 2, 0, 0, 5])
    assert block_majority(lab, 4).tolist() == [1, -1, 0]   # tie 2 vs 0 -> lowest code; trailing tick ignored


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


# ---------------------------------------------------------------------------- loading and the command line
def _write_csv(path, n=16 * 30):
    s = make_regime_series(n, n_features=3, n_regimes=2, mean_duration=64, seed=9)
    df = pd.DataFrame(s.data, columns=["a", "b", "c"])
    df.insert(0, "timestamp", pd.date_range("2024-01-01", periods=n, freq="1min"))
    df["price"] = s.prices
    df["regime"] = np.where(s.labels == 0, "calm", "wild")
    df.to_csv(path, index=False)
    return s


def test_load_eval_dataset_detects_label_and_price_and_keeps_them_out_of_features(tmp_path):
    p = tmp_path / "d.csv"
    s = _write_csv(p)
    ds = load_eval_dataset(str(p), holdout=0.25)
    assert ds.feature_names == ["a", "b", "c"] and ds.features.shape == (480, 3)
    assert ds.split == 360
    np.testing.assert_allclose(ds.prices, s.prices, rtol=1e-6)
    assert ds.labels.tolist() == np.where(s.labels == 0, 0, 1).tolist()   # "calm" / "wild" coded 0 / 1
    with pytest.raises(DataError, match="'nope' not found"):
        load_eval_dataset(str(p), label_col="nope")
    with pytest.raises(DataError, match="no such file"):
        load_eval_dataset(str(tmp_path / "missing.csv"))


def test_cli_evaluate_prints_strict_json_with_verdicts(tmp_path, capsys):
    p, cfgp = tmp_path / "d.csv", tmp_path / "cfg.json"
    _write_csv(p)
    cfg = small_config(input_dim=3, epochs=1)
    cfgp.write_text(json.dumps(cfg.to_dict()))
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["evaluate", str(p), "--seeds", "2", "--predictor-epochs", "1", "--holdout", "0.25",
                   "--config", str(cfgp), "--out", str(tmp_path / "r.json")])
    assert rc == 0
    res = json.loads(buf.getvalue())
    assert res["n_features"] == 3 and res["has_prices"] and res["has_regimes"] and res["n_regimes"] == 2
    assert any("defragmented training" in v for v in res["verdicts"])
    assert json.loads((tmp_path / "r.json").read_text())["summary"] == res["summary"]
    assert main(["evaluate", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
