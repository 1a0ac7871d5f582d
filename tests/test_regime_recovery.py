"""Training must help: on synthetic regimes the trained encoder recovers the true regimes, the pseudo-timeline
groups them, and SPD retrieval finds same-regime neighbours from the whole history."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from chronoslib import ChronosDefragEngine, DefragConfig
from chronoslib.diagnostics import adjacency_purity
from chronoslib.synthetic import block_labels, make_regime_series

L = 64


def _cfg(epochs):
    cfg = DefragConfig()
    cfg.optim.encoder_epochs = epochs
    cfg.optim.predictor_epochs = 2
    cfg.seed = 0
    return cfg


@pytest.fixture(scope="module")
def fitted():
    s = make_regime_series(L * 120, n_regimes=3, seed=17)
    trained = ChronosDefragEngine(_cfg(20)).fit(s.data)
    untrained = ChronosDefragEngine(_cfg(0)).fit(s.data)
    lab, purity = block_labels(s.labels, L)
    return s, trained, untrained, lab, purity >= 0.9


def _ari(z, lab, pure):
    km = KMeans(3, n_init=10, random_state=0).fit_predict(z)
    return adjusted_rand_score(lab[pure], km[pure])


def test_trained_latents_recover_the_true_regimes(fitted):
    s, trained, untrained, lab, pure = fitted
    assert pure.sum() > 80
    ari_trained = _ari(trained.block_latents, lab, pure)
    ari_untrained = _ari(untrained.block_latents, lab, pure)
    assert ari_trained >= 0.8
    assert ari_trained > ari_untrained + 0.2  # training helps, clearly


def test_pseudo_timeline_puts_same_regime_blocks_together_more_than_time_does(fitted):
    s, trained, _, lab, _ = fitted
    assert adjacency_purity(lab, trained.pseudo_timeline) > adjacency_purity(lab)
    assert trained.fit_summary["path_cost_pseudo"] < trained.fit_summary["path_cost_chrono"]


def test_training_is_not_collapsed(fitted):
    _, trained, _, _, _ = fitted
    assert trained.fit_summary["final_verdict"] == "healthy"
    assert not any(h["collapsed"] for h in trained.history if h["stage"] == "encoder")


def test_spd_neighbours_share_the_regime_more_often_than_recency_ranking(fitted):
    s, trained, _, lab, pure = fitted
    reg, k = trained.registry, 8
    qid = np.flatnonzero(pure)
    res = reg.query(torch.from_numpy(trained.block_latents[qid]), k + 1, float(trained.train_end_tick))
    ids = res.ids.numpy()
    others = ids != qid[:, None]                 # a block finding itself proves nothing: drop it
    spd_hits = (lab[ids] == lab[qid][:, None])[others].mean()
    # Recency-only ranking: the k newest blocks, whatever they look like.
    newest = np.argsort(-trained.block_starts)[:k]
    recency_hits = (lab[newest][None, :] == lab[qid][:, None]).mean()
    assert spd_hits > 0.9
    assert spd_hits > recency_hits + 0.3
    # ...and neighbours come from the whole history, not only the recent end.
    ages = trained.train_end_tick - res.ticks.numpy()
    assert ages.max() > 0.8 * trained.train_end_tick
