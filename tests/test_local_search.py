"""Local search on an open path: never worse than its input, first block fixed, a valid permutation, finds the
optimum of small cases a brute force can check, refuses moves that add a label switch, and stops on its limits."""

import itertools

import numpy as np
import pytest
import torch

from chronoslib.errors import DataError
from chronoslib.local_search import improve
from chronoslib.synthetic import regime_latents
from chronoslib.timeline import greedy_chain_exact, knn_lists, path_cost


def lists(z, k):
    return knn_lists(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)), k)[0]


@pytest.mark.parametrize("seed", range(2))
def test_improve_keeps_block_zero_first_and_never_raises_the_cost(seed):
    z = regime_latents(400, dim=16, seed=seed)
    start = np.random.default_rng(seed).permutation(np.arange(1, 400))
    start = np.concatenate([[0], start])                      # a bad order: lots to improve
    out = improve(z, start, lists(z, 8))
    assert out[0] == 0 and sorted(out.tolist()) == list(range(400))
    assert path_cost(z, out) < 0.5 * path_cost(z, start)
    g = greedy_chain_exact(z)
    assert path_cost(z, improve(z, g, lists(z, 8))) <= path_cost(z, g)


def test_improve_reaches_the_brute_force_optimum_of_a_small_open_path():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 2)).astype(np.float32)
    best = min(path_cost(z, np.array((0,) + p)) for p in itertools.permutations(range(1, 7)))
    out = improve(z, np.arange(7), lists(z, 6))
    assert path_cost(z, out) <= best * 1.10                   # 2-opt + Or-opt: at or next to the optimum


def test_points_on_an_arc_visited_slightly_out_of_order_are_straightened():
    t = np.linspace(0, 1.5, 60)
    z = np.stack([np.cos(t), np.sin(t)], 1).astype(np.float32)     # unit rows: the K-NN lists are by cosine
    order = np.arange(60)
    order[10:20] = order[10:20][::-1]                           # a reversed stretch
    order[[30, 40]] = order[[40, 30]]                           # two swapped blocks
    order = np.concatenate([order[:45], order[50:], order[45:50]])  # a run moved to the end
    out = improve(z, order, lists(z, 6))
    assert out.tolist() == list(range(60))


def test_labels_forbid_moves_that_add_a_switch():
    z, lab = regime_latents(500, seed=2, return_labels=True)
    order = np.concatenate([np.flatnonzero(lab == c) for c in np.unique(lab)])
    order = np.concatenate([[0], order[order != 0]])
    sw = np.count_nonzero(np.diff(lab[order]))
    out = improve(z, order, lists(z, 8), labels=lab)
    assert np.count_nonzero(np.diff(lab[out])) <= sw
    assert path_cost(z, out) < path_cost(z, order)


def test_round_and_time_limits_stop_early_with_a_valid_order():
    z = regime_latents(300, seed=1)
    order = np.arange(300)
    one = improve(z, order, lists(z, 8), max_rounds=1)
    assert sorted(one.tolist()) == list(range(300)) and path_cost(z, one) < path_cost(z, order)
    t0 = improve(z, order, lists(z, 8), time_limit=0.0)        # one round, then the clock stops it
    assert np.array_equal(t0, one)


def test_padded_lists_and_tiny_inputs_are_fine_and_shapes_are_checked():
    z = regime_latents(100, seed=0)
    nb = lists(z, 4)
    nb[::3, 2:] = -1                                          # approximate lists pad with -1
    out = improve(z, np.arange(100), nb)
    assert sorted(out.tolist()) == list(range(100))
    assert improve(z[:3], np.arange(3), nb[:3]).tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="must agree on N"):
        improve(z, np.arange(99), nb)
