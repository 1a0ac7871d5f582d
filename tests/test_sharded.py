"""The sharded registry: shards cover the entries exactly once, and a query answered by 2 gloo processes (local
top-k on each shard, gathered and merged with SPD weights) equals the unsharded answer, through Registry.route and
through an engine's predict_batch."""

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from chronoslib.errors import DataError
from chronoslib.sharded import shard_state
from tests import sharded_support
from tests.conftest import small_config


def test_shards_cover_every_entry_once_in_order():
    state = sharded_support.full_registry(101).state_dict()
    parts = [shard_state(state, r, 3) for r in range(3)]
    assert [first for _, first in parts] == [0, 34, 68]
    for key in ("latents", "ticks", "ids", "states", "log_weights"):
        assert torch.equal(torch.cat([p[key] for p, _ in parts]), state[key])
    assert [p["capacity"] for p, _ in parts] == [34, 34, 35]
    with pytest.raises(DataError, match="shard rank must be in"):
        shard_state(state, 3, 3)


def test_sharded_route_on_two_gloo_processes_equals_the_unsharded_route(spawn_safe_main, tmp_path):
    mp.spawn(sharded_support.route_worker, args=(2, str(tmp_path)), nprocs=2, join=True)


def test_predict_batch_over_a_sharded_registry_equals_the_unsharded_engine(spawn_safe_main, tmp_path):
    from chronoslib import ChronosDefragEngine

    cfg = small_config()
    rng = np.random.default_rng(0)
    eng = ChronosDefragEngine(cfg).fit(rng.standard_normal((16 * 40, 6)).astype(np.float32))
    eng.save(str(tmp_path / "model.pt"))
    np.save(tmp_path / "windows.npy", rng.standard_normal((12, 16, 6)).astype(np.float32))
    mp.spawn(sharded_support.engine_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
