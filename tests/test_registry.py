"""The circular registry and its routing: eviction order, SPD scores against a hand computation, the exponent
spanning ticks, weights / blended states / confidence, the empty-registry error, state_dict round trips, and
``route`` against a brute-force NumPy reference (exact and through the cell index)."""

import math

import numpy as np
import pytest
import torch

from chronoslib import RegistryEmptyError
from chronoslib.errors import DataError
from chronoslib.registry import Registry


def _unit(n, d, seed=0):
    z = np.random.default_rng(seed).standard_normal((n, d))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


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
    res = r.route(q, 40.0, k=4)
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
    res = r.route(torch.tensor([[1.0, 0.0]]), n * 64.0, k=1)
    assert res.ids[0, 0].item() == 0
    f = r.decay_factors(n * 64.0)
    assert f.min().item() >= 0.9 - 1e-6 and f.max().item() <= 1.0


def test_empty_registry_is_the_spec_error():
    with pytest.raises(RegistryEmptyError, match="Registry is empty"):
        Registry(4, 2).route(torch.zeros(1, 2), 0.0, 1)


def test_context_weights_sum_to_one_and_blend_states():
    r = Registry(capacity=4, dim=2, state_dim=3, block_len=1, decay=1.0)
    r.add(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), [0, 1], states=torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    res = r.route(torch.tensor([[1.0, 0.0]]), 2.0, k=2)
    assert res.weights.sum().item() == pytest.approx(1.0)
    np.testing.assert_allclose(res.weights[0].numpy(), [1 / 1.6, 0.6 / 1.6], rtol=1e-6)
    np.testing.assert_allclose(res.state[0].numpy(), [1 / 1.6, 0.6 / 1.6, 0.0], rtol=1e-6)
    # confidence: the weighted cosine (1 * 1 + 0.6 * 0.6) / 1.6
    assert res.confidence[0].item() == pytest.approx(1.36 / 1.6, rel=1e-6)


def test_registry_state_dict_round_trip_preserves_order():
    r = Registry(capacity=3, dim=2, block_len=5)
    for i in range(4):
        r.add(torch.tensor([[math.cos(i), math.sin(i)]]), [i * 5], ids=torch.tensor([i]))
    r2 = Registry.from_state_dict(r.state_dict())
    assert r2.ids[r2.order()].tolist() == r.ids[r.order()].tolist() == [1, 2, 3]
    q = torch.tensor([[1.0, 0.0]])
    assert torch.equal(r.route(q, 30.0, 2).ids, r2.route(q, 30.0, 2).ids)


def _reference_route(r, q, t, k, leave_out=None):
    """Brute-force NumPy routing in float64: every filled slot scored cos * delta ** (|t - t_i| / span) * weight,
    top k (stable order), weights clamped and normalised (uniform if all 0), blended states, confidence."""
    n = r.count
    lat, ticks = r.latents[:n].double().numpy(), r.ticks[:n].double().numpy()
    span = max(ticks.max() - ticks.min() + r.block_len, 1.0)
    f = r.decay ** (np.abs(t - ticks) / span) * np.exp(r.log_weights[:n].double().numpy())
    cos = q.double().numpy() @ lat.T                                    # (M, n)
    s = cos * f
    if leave_out is not None:
        s[np.arange(len(s)), np.asarray(leave_out)] = -np.inf
    slots = np.argsort(-s, axis=1, kind="stable")[:, :k]                # (M, k)
    top, cosk = np.take_along_axis(s, slots, 1), np.take_along_axis(cos, slots, 1)
    w = np.clip(top, 0, None)
    tot = w.sum(1, keepdims=True)
    w = np.where(tot > 0, w / np.where(tot > 0, tot, 1), 1.0 / k)
    state = np.einsum("mk,mks->ms", w, r.states[:n].double().numpy()[slots])
    return {"slots": slots, "ids": r.ids[:n].numpy()[slots], "scores": top, "cosines": cosk, "weights": w,
            "state": state, "confidence": np.clip((w * cosk).sum(1), 0, 1), "ticks": ticks[slots]}


def _hand_built(index_threshold=10**9, cells=6):
    """Capacity 300 filled past wrap-around (the 60 oldest evicted), then online appends with forgetting."""
    z = torch.from_numpy(_unit(360, 8, seed=3))
    r = Registry(300, 8, state_dim=5, block_len=4, decay=0.7, index_threshold=index_threshold,
                 index_nprobe=cells, index_cells=cells)
    states = torch.randn(360, 5, generator=torch.Generator().manual_seed(0))
    r.add(z[:340], np.arange(340) * 4.0, torch.arange(340), states[:340])
    r.append_live(z[340:], 1400.0 + np.arange(20) * 4.0, states[340:], forgetting=0.97)
    return r


def _assert_route_equals_reference(got, ref):
    assert got.slots.tolist() == ref["slots"].tolist() and got.ids.tolist() == ref["ids"].tolist()
    for name in ("scores", "cosines", "weights", "state", "confidence", "ticks"):
        np.testing.assert_allclose(getattr(got, name).double().numpy(), ref[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_route_equals_a_brute_force_reference_exact_and_through_the_index():
    q = torch.from_numpy(_unit(12, 8, seed=4))
    exact = _hand_built()
    indexed = _hand_built(index_threshold=100)          # above the threshold: the cell index, every cell probed
    assert not exact.index_active and indexed.index_active
    for r in (exact, indexed):
        for t in (1500.0, 900.0):
            _assert_route_equals_reference(r.route(q, t, 7), _reference_route(r, q, t, 7))
    assert indexed.index is not None and indexed.index.n_cells == 6


def test_leave_out_keeps_a_stored_entry_out_of_its_own_neighbours():
    for r in (_hand_built(), _hand_built(index_threshold=100)):
        slots = torch.tensor([0, 17, 250, 299])
        q = r.latents[slots]
        got = r.route(q, 1500.0, 5, leave_out=slots)
        assert not (got.slots == slots[:, None]).any()
        _assert_route_equals_reference(got, _reference_route(r, q, 1500.0, 5, leave_out=slots.numpy()))
        plain = r.route(q, 1500.0, 5)
        assert (plain.slots == slots[:, None]).any(1).all()             # without it, each is among its own top 5


def test_only_negative_scores_give_uniform_weights():
    r = Registry(4, 2, state_dim=2, decay=1.0)
    r.add(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), [0, 1], states=torch.tensor([[2.0, 0.0], [0.0, 4.0]]))
    res = r.route(torch.tensor([[-0.6, -0.8]]), 2.0, 2)
    assert res.weights[0].tolist() == [0.5, 0.5] and res.state[0].tolist() == [1.0, 2.0]
    assert res.confidence[0].item() == 0.0                            # clamped: the query points away


def test_bad_latents_are_refused_before_anything_is_written():
    r = Registry(4, 2)
    with pytest.raises(DataError, match="registry latents contain NaN or inf"):
        r.add(torch.tensor([[1.0, float("nan")]]), [0])
    with pytest.raises(DataError, match="registry latents must have 2 columns"):
        r.add(torch.ones(1, 3), [0])
    assert len(r) == 0
    r.add(torch.tensor([[1.0, 0.0]]), [0])
    with pytest.raises(DataError, match="NaN or inf"):
        r.append_live(torch.tensor([[float("inf"), 0.0]]), [1], forgetting=0.5)
    assert len(r) == 1 and r.weights().tolist() == [1.0]              # nothing aged either
