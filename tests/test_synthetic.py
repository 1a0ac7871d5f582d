"""Synthetic regime generator: deterministic, labelled, and its regimes really differ."""

import numpy as np
import pytest

from chronoslib.synthetic import DEFAULT_REGIMES, block_labels, make_regime_series, regime_latents


def test_same_seed_same_series_and_labels():
    a, b = make_regime_series(2000, seed=3), make_regime_series(2000, seed=3)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.data, make_regime_series(2000, seed=4).data)


def test_shapes_and_all_regimes_present():
    s = make_regime_series(8000, n_features=4, n_regimes=3, mean_duration=200, seed=0)
    assert s.data.shape == (8000, 4) and s.data.dtype == np.float32
    assert s.labels.shape == (8000,) and set(np.unique(s.labels)) == {0, 1, 2}
    assert s.prices.shape == (8000,) and np.all(s.prices > 0)


def test_regimes_differ_in_volatility_drift_and_autocorrelation():
    s = make_regime_series(60000, n_features=2, n_regimes=3, mean_duration=500, seed=1)
    x = s.data[:, 0].astype(np.float64)
    for k, (mu, sig, phi) in enumerate(DEFAULT_REGIMES[:3]):
        idx = np.flatnonzero(s.labels == k)
        idx = idx[(idx > 0) & (s.labels[idx - 1] == k)]        # transitions inside regime k
        xk, xprev = x[idx], x[idx - 1]
        ac = np.corrcoef(xk, xprev)[0, 1]
        assert ac == pytest.approx(phi, abs=0.08)
        assert xk.mean() == pytest.approx(mu, abs=0.08)
        assert (xk - phi * xprev - (1 - phi) * mu).std() == pytest.approx(sig, rel=0.1)


def test_block_labels_are_majorities_with_their_share():
    lab = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    maj, share = block_labels(lab, 4)
    assert maj.tolist() == [0, 1]
    assert share.tolist() == [0.75, 0.75]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="n_regimes"):
        make_regime_series(100, n_regimes=9)


def test_regime_latents_are_unit_and_regime_structured():
    z = regime_latents(2000, dim=32, seed=1)
    assert z.shape == (2000, 32) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    adjacent = float((z[1:] * z[:-1]).sum(1).mean())
    random_pairs = float((z * z[np.random.default_rng(0).permutation(2000)]).sum(1).mean())
    assert adjacent > random_pairs + 0.2
