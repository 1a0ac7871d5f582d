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


def _direct_timeline(ref, z, window, alpha):
    """The drift timeline from the full pooled kernel matrix, window by window (the O(N^3) way)."""
    ref, z = ref.astype(np.float64), z.astype(np.float64)
    pooled = np.concatenate([ref, z])
    d2 = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(-1)
    iu = np.triu_indices(len(ref), k=1)
    bw = np.sqrt(np.median(d2[: len(ref), : len(ref)][iu]))
    k = np.exp(-d2 / (2 * bw ** 2))
    n = len(ref)
    null_mmd, null_cd = [], []
    for s0 in range(n - window + 1):
        a = np.full(n, -1.0 / (n - window))
        a[s0: s0 + window] = 1.0 / window
        null_mmd.append(a @ k[:n, :n] @ a)
        rest = np.delete(np.arange(n), np.arange(s0, s0 + window))
        null_cd.append(np.linalg.norm(ref[s0: s0 + window].mean(0) - ref[rest].mean(0)))
    stat, cd = [], []
    for e in range(window - 1, len(z)):
        idx = n + np.arange(e - window + 1, e + 1)
        stat.append(k[np.ix_(idx, idx)].mean() + k[:n, :n].mean() - 2 * k[np.ix_(idx, np.arange(n))].mean())
        cd.append(np.linalg.norm(z[idx - n].mean(0) - ref.mean(0)))
    return np.array(stat), np.array(cd), np.array(null_mmd), np.array(null_cd)


def _joint_threshold_bracket(null_mmd, null_cd, rate, step=1e-5):
    """Scan the common level q on a grid: the largest grid q whose thresholds leave at most ``rate`` of the null
    windows over either statistic. The exact level lies in [q, q + step): thresholds bracketed for both."""
    grid = np.arange(step, rate + step / 2, step)
    ok = [np.mean((null_mmd > np.quantile(null_mmd, 1 - q)) | (null_cd > np.quantile(null_cd, 1 - q))) <= rate
          for q in grid]
    q = grid[np.nonzero(ok)[0][-1]] if any(ok) else 0.0
    return [(np.quantile(x, 1 - min(q + step, rate)), np.quantile(x, 1 - q)) for x in (null_mmd, null_cd)]


@pytest.mark.parametrize("n,m,window", [(240, 60, 8), (40, 9, 2), (90, 30, 5)])
def test_drift_timeline_equals_the_full_kernel_computation(n, m, window):
    rng = np.random.default_rng(n)
    ref = rng.normal(size=(n, 12))
    ref[n // 2:] += 0.8                                    # two regimes in the training span
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    z = rng.normal(size=(m, 12)) + 0.4
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    tl = drift.drift_timeline(ref, z, window=window, step=1, alpha=0.05)
    stat, cd, null_mmd, null_cd = _direct_timeline(ref, z, window, 0.05)
    np.testing.assert_allclose(tl["mmd2"], stat, atol=1e-12)
    np.testing.assert_allclose(tl["centroid_dist"], cd, atol=1e-12)
    # Both levels: per-statistic quantiles at one common level, the largest that keeps the share of training
    # windows over either threshold at the target (alpha for drift, DRIFTED_FALSE_ALARM for drifted).
    for sfx, rate in (("", 0.05), ("_drifted", drift.DRIFTED_FALSE_ALARM)):
        mmd_thr, cd_thr = tl["mmd_threshold" + sfx][0], tl["centroid_threshold" + sfx][0]
        (m_lo, m_hi), (c_lo, c_hi) = _joint_threshold_bracket(null_mmd, null_cd, rate)
        assert m_lo - 1e-12 <= mmd_thr <= m_hi + 1e-12 and c_lo - 1e-12 <= cd_thr <= c_hi + 1e-12
        over = (null_mmd > mmd_thr + 1e-12) | (null_cd > cd_thr + 1e-12)
        assert over.mean() <= rate
        expect = over.mean() if sfx == "" else max(over.mean(), 1 / (len(null_mmd) + 1))
        assert tl["null" + (sfx or "_drift") + "_rate"][0] == pytest.approx(expect)
        np.testing.assert_array_equal(tl[sfx[1:] or "drift"], (stat > mmd_thr) | (cd > cd_thr))


def test_median_bandwidth_above_its_row_cap_uses_evenly_spaced_rows():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(drift.MEDIAN_ROWS * 3 + 7, 4))
    picked = x[np.linspace(0, len(x) - 1, drift.MEDIAN_ROWS).round().astype(int)]
    assert drift.median_bandwidth(x) == pytest.approx(drift.median_bandwidth(picked), rel=1e-12)
    # The scale of the whole sample: within a few per cent of the median over many random pairs.
    i, j = rng.integers(0, len(x), (2, 200_000))
    keep = i != j
    ref = np.median(np.linalg.norm(x[i[keep]] - x[j[keep]], axis=1))
    assert drift.median_bandwidth(x) == pytest.approx(ref, rel=0.03)
