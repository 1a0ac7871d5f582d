"""Drift statistics on constructed cases, checked against brute-force NumPy computations: centroid distance,
MMD^2 and its permutation test, the drift timeline and verdict, neighbour age and the low-confidence alert."""

import numpy as np
import pytest

from chronoslib import drift


def _unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_centroid_distance_matches_direct_computation():
    rng = np.random.default_rng(4)
    ref, z = rng.standard_normal((40, 6)), rng.standard_normal((7, 6))
    expect = np.linalg.norm(_unit_rows(z) - _unit_rows(ref).mean(0), axis=1)
    np.testing.assert_allclose(drift.centroid_distance(ref, z), expect)
    with pytest.raises(ValueError, match="latent sizes differ"):
        drift.centroid_distance(ref, z[:, :5])


def test_mmd2_is_zero_for_identical_samples_and_matches_a_kernel_loop():
    rng = np.random.default_rng(5)
    x, y = _unit_rows(rng.standard_normal((12, 4))), _unit_rows(rng.standard_normal((9, 4)) + 1.0)
    assert drift.mmd2(x, x, bandwidth=0.7) == pytest.approx(0.0, abs=1e-12)

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * 0.7 ** 2))

    kxx = np.mean([[k(a, b) for b in x] for a in x])
    kyy = np.mean([[k(a, b) for b in y] for a in y])
    kxy = np.mean([[k(a, b) for b in y] for a in x])
    # Latents are validated as float32 (numeric_checks.unit_latents): agreement to float32 precision.
    assert drift.mmd2(x, y, bandwidth=0.7) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-6)


def test_shifted_distribution_raises_the_drift_statistic_and_unshifted_does_not():
    rng = np.random.default_rng(6)
    ref = rng.standard_normal((150, 8))
    same = rng.standard_normal((60, 8))
    shifted = rng.standard_normal((60, 8)) + 1.5 * np.eye(8)[0]
    r_same = drift.mmd_test(ref, same, n_perm=200, seed=0)
    r_shift = drift.mmd_test(ref, shifted, n_perm=200, seed=0)
    assert not r_same["drift"] and r_same["p_value"] > 0.05
    assert r_shift["drift"] and r_shift["p_value"] < 0.01
    assert r_shift["mmd2"] > 3 * r_same["mmd2"]
    assert r_shift["mmd2"] > r_shift["threshold"]


def test_drift_timeline_flags_the_shifted_half_only():
    rng = np.random.default_rng(7)
    ref = rng.standard_normal((120, 8))
    live = np.concatenate([rng.standard_normal((30, 8)), rng.standard_normal((30, 8)) + 2.0 * np.eye(8)[1]])
    tl = drift.drift_timeline(ref, live, window=8, step=1, alpha=0.05)
    assert tl["end"][0] == 7 and tl["end"][-1] == 59
    before = tl["end"] < 30
    after = tl["end"] >= 30 + 8  # windows entirely after the shift
    assert tl["drift"][before].mean() < 0.2
    assert tl["drift"][after].all()
    assert (tl["mmd2"][after] > tl["mmd_threshold"][after]).all()
    assert tl["centroid_dist"][after].min() > tl["centroid_dist"][before].max()


def test_drift_timeline_rejects_too_little_data():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="at least window=8 latents"):
        drift.drift_timeline(rng.standard_normal((40, 4)), rng.standard_normal((5, 4)), window=8)
    with pytest.raises(ValueError, match="training latents"):
        drift.drift_timeline(rng.standard_normal((6, 4)), rng.standard_normal((20, 4)), window=8)


def test_neighbour_age_is_query_minus_neighbour_tick():
    age = drift.neighbour_age([1000, 1100], [[0, 640], [64, 1000]])
    np.testing.assert_array_equal(age, [[1000, 360], [1036, 100]])
    with pytest.raises(ValueError, match="neighbour_ticks must be"):
        drift.neighbour_age([1, 2], [[1, 2, 3]])


def test_low_confidence_alert_counts_streaks_and_resets():
    c = [0.9, 0.5, 0.4, 0.3, 0.8, 0.2, 0.1, 0.1, 0.1]
    a = drift.low_confidence_alert(c, threshold=0.6, patience=3)
    assert a["streak"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4]
    assert a["alerts"].tolist() == [False, False, False, True, False, False, False, True, True]
    assert a["first_alert"] == 3 and a["run"] == 4 and a["alert"]
    quiet = drift.low_confidence_alert([0.9, 0.5, 0.9], 0.6, 2)
    assert not quiet["alert"] and quiet["first_alert"] == -1
    with pytest.raises(ValueError, match="patience"):
        drift.low_confidence_alert(c, 0.5, 0)


def test_drift_verdict_levels_and_actions():
    assert drift.drift_verdict([False] * 10)["verdict"] == "stable"
    assert drift.drift_verdict([True] + [False] * 9, recent=10)["verdict"] == "drifting"
    v = drift.drift_verdict([False] * 5 + [True] * 5, recent=5)
    assert v["verdict"] == "drifted" and "re-fit" in v["action"]
    low = drift.drift_verdict([False] * 5, low_confidence_alert=True)
    assert low["verdict"] == "drifted" and low["reason"] == "regime confidence stayed below the re-fit threshold"
    assert v["reason"].startswith("100% of the last 5 window(s)")
