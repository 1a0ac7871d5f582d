"""Regime clustering (automatic K, stable order), kNN, block statistics and block views, checked against
brute-force or hand computations."""

import numpy as np
import pytest

from chronoslib import metrics, regimes
from chronoslib.errors import ConfigError, DataError
from chronoslib.synthetic import block_labels, make_regime_series
from tests.latent_support import grouped_latents


@pytest.mark.parametrize("criterion", ["silhouette", "bic"])
def test_automatic_k_finds_the_three_groups_and_reports_the_sweep(criterion):
    z, truth = grouped_latents()
    res = regimes.cluster_regimes(z, k_range=(2, 6), criterion=criterion)
    assert res.k == 3 and res.criterion == criterion
    assert sorted(res.scores) == [2, 3, 4, 5, 6]
    best = (max if criterion == "silhouette" else min)(res.scores, key=res.scores.get)
    assert best == 3
    assert res.labels.shape == (60,) and metrics.agreement(res.labels, truth)["ari"] == pytest.approx(1.0)
    assert res.centers.shape == (3, 8) and np.allclose(np.linalg.norm(res.centers, axis=1), 1.0)


def test_labels_are_ordered_by_volatility_whatever_the_input_order_or_seed():
    z, truth = grouped_latents(seed=3)
    group_vol = np.array([0.5, 0.1, 0.9])            # group 1 calmest, then 0, then 2
    vol = group_vol[truth] + 0.01 * np.random.default_rng(0).random(len(truth))
    expected = np.array([1, 0, 2])[truth]            # regime id = rank of the group's volatility
    for seed in (0, 1, 7):
        perm = np.random.default_rng(seed).permutation(len(truth))
        res = regimes.cluster_regimes(z[perm], k=3, block_vol=vol[perm], seed=seed)
        assert np.array_equal(res.labels, expected[perm])
        assert np.all(np.diff(res.regime_vol) > 0)


def test_without_volatility_labels_follow_first_appearance():
    z, truth = grouped_latents(seed=4)
    res = regimes.cluster_regimes(z, k=3)
    firsts = [np.flatnonzero(res.labels == c)[0] for c in range(3)]
    assert firsts == sorted(firsts) and res.labels[0] == 0


def test_fixed_k_skips_the_sweep_and_scores_its_silhouette():
    z, _ = grouped_latents()
    res = regimes.cluster_regimes(z, k=2)
    assert res.k == 2 and res.criterion == "fixed" and list(res.scores) == [2]
    assert res.silhouette == pytest.approx(res.scores[2])


@pytest.mark.parametrize("kwargs, err, match", [
    ({"k": 0}, ConfigError, r"k must be in \[1, 60\]"),
    ({"k": 61}, ConfigError, "got 61"),
    ({"k_range": (1, 4)}, ConfigError, "k_range"),
    ({"k_range": (5, 3)}, ConfigError, "k_range"),
    ({"criterion": "gap"}, ConfigError, "criterion"),
    ({"block_vol": np.ones(59)}, DataError, r"block_vol must have shape \(60,\)"),
])
def test_bad_clustering_arguments_get_named_errors(kwargs, err, match):
    z, _ = grouped_latents()
    with pytest.raises(err, match=match):
        regimes.cluster_regimes(z, **kwargs)


def test_too_few_blocks_or_nan_latents_are_refused():
    with pytest.raises(DataError, match="at least 3 blocks"):
        regimes.cluster_regimes(np.eye(2))
    z = np.eye(5)
    z[1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        regimes.cluster_regimes(z)


def test_nearest_blocks_match_brute_force_cosine_ranking():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((40, 5))
    for i in (0, 17, 39):
        idx, sims = regimes.nearest_blocks(z, i, 6)
        cos = (z @ z[i]) / (np.linalg.norm(z, axis=1) * np.linalg.norm(z[i]))
        ref = [j for j in np.argsort(-cos) if j != i][:6]
        assert idx.tolist() == ref and np.allclose(sims, cos[ref])
        assert np.all(np.diff(sims) <= 0)
    assert len(regimes.nearest_blocks(z, 0, 100)[0]) == 39
    with pytest.raises(DataError, match="out of range"):
        regimes.nearest_blocks(z, 40)


def test_block_volatility_and_table_match_direct_computation():
    rng = np.random.default_rng(7)
    prices = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(80)))
    starts = np.array([0, 16, 32, 48, 64])
    vol = regimes.block_volatility(prices, starts, 16)
    assert vol[2] == pytest.approx(np.diff(np.log(prices[32:48])).std())
    tab = regimes.block_table(starts, 16, prices)
    assert tab["ret_pct"][3] == pytest.approx((prices[63] / prices[48] - 1) * 100)
    assert tab["end"].tolist() == [16, 32, 48, 64, 80]
    # A series with non-positive values uses plain differences.
    series = np.cumsum(rng.standard_normal(80))
    assert regimes.block_volatility(series, starts, 16)[1] == pytest.approx(np.diff(series[16:32]).std())
    with pytest.raises(DataError, match="trained on different data"):
        regimes.block_volatility(prices[:70], starts, 16)


def test_block_view_joins_model_blocks_with_dataset_and_refuses_short_data():
    rs = make_regime_series(16 * 20, n_features=3, n_regimes=3, mean_duration=40, seed=2)
    starts = np.arange(18) * 16                        # training covers the first 18 blocks only
    z = np.random.default_rng(0).standard_normal((18, 4))
    view = regimes.block_view(z, starts, 16, np.arange(18), rs.data, rs.prices, None, rs.labels)
    assert np.array_equal(view.truth, block_labels(rs.labels, 16)[0][:18])
    assert view.series_name == "price" and view.x.shape == (320,)
    nolab = regimes.block_view(z, starts, 16, np.arange(18), rs.data)
    assert nolab.truth is None and nolab.series_name.startswith("cumulative")
    assert np.allclose(nolab.series, np.cumsum(rs.data[:, 0]))
    with pytest.raises(DataError, match="only 200 ticks"):
        regimes.block_view(z, starts, 16, np.arange(18), rs.data[:200])
    with pytest.raises(DataError, match="inconsistent"):
        regimes.block_view(z[:17], starts, 16, np.arange(18), rs.data)


def test_block_confidence_is_the_weighted_mean_over_windows_that_retrieved_each_block():
    records = [{"neighbour_indices": [0, 2], "neighbour_weights": [0.75, 0.25], "regime_confidence": 0.8},
               {"neighbour_indices": [2, -1], "neighbour_weights": [1.0, 1.0], "regime_confidence": 0.4},
               {"neighbour_indices": [1], "neighbour_weights": [], "regime_confidence": 0.5}]
    out = regimes.block_confidence(4, records)
    assert out[0] == pytest.approx(0.8)
    assert out[2] == pytest.approx((0.25 * 0.8 + 1.0 * 0.4) / 1.25)
    assert out[1] == pytest.approx(0.5)                # no weights: equal weights
    assert np.isnan(out[3])
