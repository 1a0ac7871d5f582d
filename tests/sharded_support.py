"""Workers of the sharded-registry tests: each runs in its own process of a 2-rank gloo group (torch.multiprocessing
spawns them by reference to this module); an assertion failing in one fails the test."""

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist

from chronoslib.errors import DataError
from chronoslib.registry import Registry
from chronoslib.sharded import ShardedRegistry, load_engine_shard, load_shard, shard_state
from chronoslib.synthetic import regime_latents


def full_registry(n: int, state_dim: int = 3) -> Registry:
    """The same registry in every process: regime latents, ticks 4 apart, states, and some online appends (so
    forgetting weights are stored too)."""
    z = torch.from_numpy(regime_latents(n + 2, dim=16, seed=1))
    r = Registry(n + 2, 16, state_dim, 4, 0.9)
    states = torch.randn(n, state_dim, generator=torch.Generator().manual_seed(0))
    r.add(z[:n], np.arange(n) * 4.0, torch.arange(n), states)
    r.append_live(z[n:], [n * 4.0, n * 4.0 + 4], torch.ones(2, state_dim), forgetting=0.97)
    return r


def _same_route(a, b) -> None:
    assert torch.equal(a.ids, b.ids) and torch.equal(a.slots, b.slots), (a.ids, b.ids)
    for name in ("scores", "cosines", "weights", "state", "confidence", "ticks"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-6, atol=1e-6, msg=name)


def _init(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(folder, 'rendezvous')}", rank=rank,
                            world_size=world)


def route_worker(rank: int, world: int, folder: str) -> None:
    """Sharded route == unsharded route, for a registry of thousands of entries and one smaller than 2 k."""
    _init(rank, world, folder)
    try:
        for n, k in ((3000, 8), (7, 8)):
            state = full_registry(n).state_dict()
            part, first = shard_state(state, rank, world)
            sh = ShardedRegistry(Registry.from_state_dict(part), first)
            ref = Registry.from_state_dict(state)
            assert len(sh) == len(ref) == n + 2
            q = torch.nn.functional.normalize(torch.randn(12, 16, generator=torch.Generator().manual_seed(2)), dim=1)
            for t in (n * 2.0, n * 4.0 + 100.0, -50.0):
                _same_route(sh.route(q, t, k), ref.route(q, t, k))
        with pytest.raises(DataError, match="the ranks routed different queries"):   # misuse is named, not merged
            sh.route(q if rank == 0 else q.flip(0), 0.0, 4)
    finally:
        dist.destroy_process_group()


def engine_worker(rank: int, world: int, folder: str) -> None:
    """predict_batch of an engine whose registry is a shard (read from the checkpoint through a memory map, by
    hand and through load_engine_shard) equals the unsharded engine's."""
    from chronoslib import ChronosDefragEngine

    _init(rank, world, folder)
    try:
        path = os.path.join(folder, "model.pt")
        eng = ChronosDefragEngine.load(path)
        windows = np.load(os.path.join(folder, "windows.npy"))
        ref = eng.predict_batch(windows)
        local, first, span = load_shard(path, rank, world)
        assert local.count < len(eng.registry) and span == eng.registry.span()
        manual = ChronosDefragEngine.load(path)
        manual.registry = ShardedRegistry(local, first, span=span)
        loaded = load_engine_shard(path, rank, world)
        assert loaded.registry.local.count == local.count and len(loaded.registry) == len(eng.registry)
        for sharded in (manual, loaded):
            got = sharded.predict_batch(windows, chunk=5)     # default threads: the chunks still go one by one
            assert np.array_equal(got["neighbour_indices"], ref["neighbour_indices"])
            for key in ("alpha", "confidence", "forecast", "latent", "neighbour_scores"):
                np.testing.assert_allclose(got[key], ref[key], rtol=1e-5, atol=1e-6, err_msg=key)
    finally:
        dist.destroy_process_group()
