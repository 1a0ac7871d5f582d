"""Pseudo-timeline (exact greedy chain) and the circular registry with SPD queries."""

import math

import numpy as np
import pytest
import torch

from chronoslib import RegistryEmptyError, build_pseudo_timeline, greedy_chain_exact, path_cost
from chronoslib.router import Registry


def _unit(n, d, seed=0):
    z = np.random.default_rng(seed).standard_normal((n, d))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def _brute_force_chain(z):
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
    z = _unit(n, d, seed=n)
    np.testing.assert_array_equal(greedy_chain_exact(z), _brute_force_chain(z))


def test_chain_is_a_permutation_starting_at_block_zero():
    z = _unit(300, 8)
    p = build_pseudo_timeline(z)
    assert p[0] == 0 and sorted(p.tolist()) == list(range(300))


def test_chain_groups_clusters_and_shortens_the_path():
    # Three tight clusters visited alternately in time: the chain must visit each cluster in one run.
    rng = np.random.default_rng(0)
    centres = _unit(3, 8, seed=1)
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


def test_registry_evicts_the_oldest_entries_first():
    r = Registry(capacity=3, dim=2)
    for i in range(5):
        r.add(torch.tensor([[float(i), 1.0]]), [i * 10], ids=torch.tensor([i]))
    assert len(r) == 3
    assert r.ids[r.order()].tolist() == [2, 3, 4]          # oldest -> newest
    assert r.ticks[r.order()].tolist() == [20.0, 30.0, 40.0]
    r.add(torch.zeros(4, 2), [50, 60, 70, 80], ids=torch.tensor([5, 6, 7, 8]))  # more than capacity at once
    assert r.ids[r.order()].tolist() == [6, 7, 8]


def test_spd_weights_match_a_hand_computation():
    # 4 blocks of 10 ticks starting at 0, 10, 20, 30: the registry spans 40 ticks.
    r = Registry(capacity=8, dim=2, block_len=10, decay=0.5)
    lat = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]])
    r.add(lat, [0, 10, 20, 30], ids=torch.arange(4))
    q = torch.tensor([[1.0, 0.0]])
    res = r.query(q, k=4, t_query=40.0)
    cos = np.array([1.0, 0.0, 0.6, 0.8])
    decay = 0.5 ** (np.abs(40 - np.array([0, 10, 20, 30])) / 40.0)
    expected = cos * decay
    order = np.argsort(-expected)
    assert res.ids[0].tolist() == order.tolist()
    np.testing.assert_allclose(res.scores[0].numpy(), expected[order], rtol=1e-6)
    np.testing.assert_allclose(res.cosines[0].numpy(), cos[order], rtol=1e-6)
    assert r.span() == 40.0


def test_spd_exponent_stays_within_one_so_the_oldest_block_remains_retrievable():
    # The spec's |H| (entry count) in the exponent made old blocks unreachable; ours spans ticks.
    n = 500
    r = Registry(capacity=n, dim=2, block_len=64, decay=0.9)
    lat = np.tile([[0.0, 1.0]], (n, 1)).astype(np.float32)
    lat[0] = [1.0, 0.0]
    r.add(torch.from_numpy(lat), np.arange(n) * 64, ids=torch.arange(n))
    res = r.query(torch.tensor([[1.0, 0.0]]), k=1, t_query=n * 64.0)
    assert res.ids[0, 0].item() == 0
    f = r.decay_factors(n * 64.0)
    assert f.min().item() >= 0.9 - 1e-6 and f.max().item() <= 1.0


def test_empty_registry_is_the_spec_error():
    with pytest.raises(RegistryEmptyError, match="Registry is empty"):
        Registry(4, 2).query(torch.zeros(1, 2), 1, 0.0)


def test_context_weights_sum_to_one_and_blend_states():
    r = Registry(capacity=4, dim=2, state_dim=3, block_len=1, decay=1.0)
    r.add(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), [0, 1], states=torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    res = r.query(torch.tensor([[1.0, 0.0]]), k=2, t_query=2.0)
    w, state = r.reconstruct_context(res)
    assert w.sum().item() == pytest.approx(1.0)
    np.testing.assert_allclose(w[0].numpy(), [1 / 1.6, 0.6 / 1.6], rtol=1e-6)
    np.testing.assert_allclose(state[0].numpy(), [1 / 1.6, 0.6 / 1.6, 0.0], rtol=1e-6)


def test_registry_state_dict_round_trip_preserves_order():
    r = Registry(capacity=3, dim=2, block_len=5)
    for i in range(4):
        r.add(torch.tensor([[math.cos(i), math.sin(i)]]), [i * 5], ids=torch.tensor([i]))
    r2 = Registry.from_state_dict(r.state_dict())
    assert r2.ids[r2.order()].tolist() == r.ids[r.order()].tolist() == [1, 2, 3]
    q = torch.tensor([[1.0, 0.0]])
    assert torch.equal(r.query(q, 2, 30.0).ids, r2.query(q, 2, 30.0).ids)
