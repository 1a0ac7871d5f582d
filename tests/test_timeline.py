"""Pseudo-timeline orderings: the fast exact chain equals the plain all-pairs chain and a brute-force oracle, the
approximate chain is a valid permutation within its stated cost bound, the chain groups recurring regimes and
shortens the path, and bad input gets named errors."""

import numpy as np
import pytest
import torch

from chronoslib import build_pseudo_timeline, greedy_chain_exact, path_cost
from chronoslib.errors import DataError
from chronoslib.synthetic import regime_latents
from chronoslib.timeline import greedy_chain_allpairs, greedy_chain_approx, knn_lists


def unit(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_chain(z, start=0):
    """Independent oracle in float64 with an explicit Python scan (lowest index wins ties)."""
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    left, order, cur = set(range(n)) - {start}, [start], start
    while left:
        cur = max(sorted(left), key=lambda j: float(z[cur] @ z[j]))
        left.remove(cur)
        order.append(cur)
    return np.array(order)


def test_allpairs_reference_matches_worked_example_and_brute_force():
    z = np.array([[1, 0], [0, 1], [0.9, 0.1]], dtype=np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    assert greedy_chain_allpairs(z).tolist() == [0, 2, 1]
    zz = unit(60, 5, 0)
    assert np.array_equal(greedy_chain_allpairs(zz), brute_chain(zz))


@pytest.mark.parametrize("n,d,k,start", [(700, 8, 16, 0), (700, 8, 2, 0), (500, 32, 4, 123), (5, 3, 16, 2)])
def test_exact_chain_is_identical_to_all_pairs(n, d, k, start):
    z = unit(n, d, n + d)
    assert np.array_equal(greedy_chain_exact(z, start=start, k=k), greedy_chain_allpairs(z, start=start))


def test_exact_chain_on_regime_latents_with_many_list_exhaustions():
    z = regime_latents(1500, dim=16, seed=4)
    assert np.array_equal(greedy_chain_exact(z, k=3), greedy_chain_allpairs(z))


def test_exact_ties_resolve_to_the_lowest_index_like_the_reference():
    base = unit(40, 6, 1)
    z = np.concatenate([base, base[::-1], base[:10]])   # every row duplicated: exact ties everywhere
    ref = greedy_chain_allpairs(z)
    assert np.array_equal(greedy_chain_exact(z, k=3), ref)
    assert np.array_equal(greedy_chain_exact(z, k=16), ref)


def test_the_public_entry_uses_the_fast_exact_chain():
    z = unit(900, 12, 7)
    ref = greedy_chain_allpairs(z)
    assert np.array_equal(build_pseudo_timeline(torch.from_numpy(z), method="exact"), ref)
    assert np.array_equal(build_pseudo_timeline(z, method="greedy", approx_threshold=10_000), ref)


def test_knn_lists_equal_a_brute_force_top_k():
    z = torch.from_numpy(unit(300, 8, 3))
    idx, val = knn_lists(z, 5, chunk_bytes=4096)  # tiny chunks: many row blocks
    s = (z @ z.T).numpy()
    np.fill_diagonal(s, -np.inf)
    top = np.argsort(-s, axis=1, kind="stable")[:, :5]
    assert np.array_equal(np.sort(idx, axis=1), np.sort(top, axis=1))
    np.testing.assert_allclose(val, np.take_along_axis(s, top, axis=1), atol=1e-6)
    assert (np.diff(val, axis=1) <= 0).all()


def _is_perm_from(order, n, start):
    return order[0] == start and np.array_equal(np.sort(order), np.arange(n))


def test_approx_chain_is_a_valid_permutation_within_the_cost_bound():
    # Stated bound (README, bench): path cost within 5 % of exact greedy on regime-structured latents.
    z = regime_latents(6000, dim=32, seed=2)
    exact = greedy_chain_exact(z)
    approx = greedy_chain_approx(z, n_clusters=60)      # > 2048 blocks: the clustered index is really used
    assert _is_perm_from(approx, 6000, 0)
    assert path_cost(z, approx) <= 1.05 * path_cost(z, exact)
    assert path_cost(z, approx) < path_cost(z)          # and it still defragments: beats chronological order


def test_approx_chain_survives_exhausted_lists_and_hard_data_and_is_seeded():
    z = unit(3000, 24, 9)                                # uniform on the sphere: worst case for cells
    a = greedy_chain_approx(z, k=2, n_clusters=40, probe=2, scan_probe=1, start=17, seed=3)
    assert _is_perm_from(a, 3000, 17)
    b = greedy_chain_approx(z, k=2, n_clusters=40, probe=2, scan_probe=1, start=17, seed=3)
    assert np.array_equal(a, b)
    rand = np.random.default_rng(0).permutation(3000)
    assert path_cost(z, a) < 0.8 * path_cost(z, rand)


def test_approx_on_small_n_is_the_exact_chain_and_auto_switches_by_size():
    z = unit(400, 8, 5)
    assert np.array_equal(greedy_chain_approx(z), greedy_chain_allpairs(z))
    big = regime_latents(3000, dim=8, seed=1)
    assert np.array_equal(build_pseudo_timeline(big, method="greedy", approx_threshold=2500), greedy_chain_approx(big))


@pytest.mark.parametrize("fn", [greedy_chain_allpairs, greedy_chain_exact, greedy_chain_approx])
def test_bad_latents_and_start_are_named_errors(fn):
    with pytest.raises(DataError, match="non-empty"):
        fn(np.zeros((0, 4), dtype=np.float32))
    with pytest.raises(DataError, match="NaN or inf"):
        fn(np.array([[1.0, np.nan], [0.0, 1.0]], dtype=np.float32))
    with pytest.raises(DataError, match="start must be a block index in \\[0, 3\\)"):
        fn(unit(3, 2, 0), start=3)


def _oracle_chain(z):
    """Independent oracle: full similarity matrix, plain Python loop."""
    s = z.astype(np.float64) @ z.T.astype(np.float64)
    n, order, seen = len(z), [0], {0}
    while len(order) < n:
        row = s[order[-1]]
        best = max((j for j in range(n) if j not in seen), key=lambda j: (row[j], -j))
        order.append(best)
        seen.add(best)
    return np.array(order)


@pytest.mark.parametrize("n,d", [(5, 3), (60, 8), (200, 16)])
def test_exact_chain_equals_the_brute_force_oracle(n, d):
    z = unit(n, d, seed=n)
    np.testing.assert_array_equal(greedy_chain_exact(z), _oracle_chain(z))


def test_chain_is_a_permutation_starting_at_block_zero():
    p = build_pseudo_timeline(unit(300, 8, 0))
    assert p[0] == 0 and sorted(p.tolist()) == list(range(300))


def test_chain_groups_clusters_and_shortens_the_path():
    # Three tight clusters visited alternately in time: the chain must visit each cluster in one run.
    rng = np.random.default_rng(0)
    centres = unit(3, 8, seed=1)
    lab = np.arange(30) % 3
    z = centres[lab] + 0.01 * rng.standard_normal((30, 8))
    z = (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)
    p = build_pseudo_timeline(z)
    assert np.count_nonzero(np.diff(lab[p])) == 2
    assert path_cost(z, p) < 0.2 * path_cost(z)


def test_path_cost_is_the_sum_of_squared_jumps():
    z = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    assert path_cost(z) == pytest.approx(4.0)
    assert path_cost(z, np.array([0, 2, 1])) == pytest.approx(4.0 + 2.0)


def test_an_unknown_method_is_a_named_error():
    with pytest.raises(DataError, match=r"method must be one of greedy \| refined \| regime \| auto"):
        build_pseudo_timeline(unit(5, 3, 0), method="fast")


# ---------------------------------------------------------------------------------------------- named methods
def separated(n_per, k, d=16, seed=0, noise=0.02):
    """k tight, well separated clusters of n_per blocks, interleaved in time (block i in cluster i % k)."""
    rng = np.random.default_rng(seed)
    centres = unit(k, d, seed + 100)
    lab = np.arange(n_per * k) % k
    z = centres[lab] + noise * rng.standard_normal((n_per * k, d))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32), lab


@pytest.mark.parametrize("method", ["greedy", "refined", "regime", "auto", "exact", "approx"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 257])
def test_every_method_returns_a_permutation_starting_at_block_zero(method, n):
    z = regime_latents(n, dim=8, seed=n) if n > 3 else unit(n, 8, n)
    p = build_pseudo_timeline(z, method=method)
    assert p[0] == 0 and sorted(p.tolist()) == list(range(n))


def test_greedy_is_the_nearest_neighbour_chain_exact_below_the_threshold_and_approximate_above():
    z = regime_latents(3000, dim=16, seed=4)
    assert np.array_equal(build_pseudo_timeline(z, method="greedy"), greedy_chain_allpairs(z))
    assert np.array_equal(build_pseudo_timeline(z, method="greedy", approx_threshold=2500), greedy_chain_approx(z))
    assert np.array_equal(build_pseudo_timeline(z), build_pseudo_timeline(z, method="refined"))  # the default
    assert np.array_equal(build_pseudo_timeline(z, method="auto"), build_pseudo_timeline(z, method="refined"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refined_never_costs_more_than_greedy(seed):
    for z in (regime_latents(600, seed=seed), unit(300, 8, seed)):
        g = build_pseudo_timeline(z, method="greedy")
        r = build_pseudo_timeline(z, method="refined")
        assert path_cost(z, r) <= path_cost(z, g)
    z = regime_latents(600, seed=seed)
    assert path_cost(z, build_pseudo_timeline(z, method="refined")) < 0.97 * path_cost(z, g)


def test_refined_goes_through_the_approximate_chain_above_the_threshold():
    from chronoslib.timeline import refined_chain

    z = regime_latents(3000, dim=16, seed=5)
    r = refined_chain(z, approx_threshold=2500)
    assert r[0] == 0 and sorted(r.tolist()) == list(range(3000))
    assert path_cost(z, r) <= path_cost(z, greedy_chain_approx(z))


@pytest.mark.parametrize("k", [2, 3, 5])
def test_regime_reaches_k_minus_one_switches_on_perfectly_separated_latents(k):
    z, lab = separated(60, k, seed=k)
    p = build_pseudo_timeline(z, method="regime")
    assert p[0] == 0 and sorted(p.tolist()) == list(range(len(z)))
    assert np.count_nonzero(np.diff(lab[p])) == k - 1
    assert np.count_nonzero(np.diff(lab[build_pseudo_timeline(z, method="greedy")])) >= k - 1


def test_regime_with_given_clusters_keeps_them_contiguous_and_never_adds_a_switch():
    from chronoslib.timeline import regime_chain

    z, lab = regime_latents(800, seed=3, return_labels=True)
    p = regime_chain(z, clusters=lab)
    assert p[0] == 0 and np.count_nonzero(np.diff(lab[p])) == len(np.unique(lab)) - 1
    with pytest.raises(DataError, match="one label per block"):
        regime_chain(z, clusters=lab[:-1])


def test_auto_resolves_to_the_default_method_and_runs_it():
    from chronoslib.timeline import DEFAULT_METHOD, resolve_method

    assert resolve_method("auto") == DEFAULT_METHOD and resolve_method("greedy") == "greedy"
    z = regime_latents(300, dim=8, seed=5)
    auto, default = build_pseudo_timeline(z, method="auto"), build_pseudo_timeline(z, method=DEFAULT_METHOD)
    np.testing.assert_array_equal(auto, default)


def test_the_refined_order_is_bounded_by_rounds_not_by_the_clock():
    # A wall-clock bound would make the permutation depend on how busy the machine is; the default has none.
    from chronoslib import timeline

    assert timeline._search_settings(10_000, None)["time_limit"] is None
    assert timeline.search_rounds(1_000) == 200 and timeline.search_rounds(100_000) == 18
    assert timeline.search_rounds(1_000_000) == 12 and timeline.search_rounds(10**9) == 12
    z = regime_latents(400, dim=8, seed=2)
    slow = timeline.refined_chain(z, time_limit=1e9)   # an explicit cap far away changes nothing
    np.testing.assert_array_equal(timeline.refined_chain(z), slow)
