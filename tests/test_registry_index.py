"""The registry's approximate IVF index: exact when every cell is probed, high recall on regime-structured
latents, consistent with the circular buffer through evictions and online appends, rebuilt after a state_dict
round trip, switched on only above ``index_threshold`` (small registries stay exact), and used by predict_live /
predict_batch of an engine with the same answers as the registry's own query."""

import numpy as np
import pytest
import torch

from chronoslib.config import DefragConfig
from chronoslib.engine import ChronosDefragEngine
from chronoslib.errors import ConfigError, DataError
from chronoslib.registry import Registry
from chronoslib.synthetic import regime_latents
from tests.conftest import small_config


def _filled(n, cap=None, threshold=1, nprobe=4, cells=16, seed=5, state_dim=0):
    z = torch.from_numpy(regime_latents(n, dim=16, seed=seed))
    r = Registry(cap or n, 16, state_dim, 4, 0.9, index_threshold=threshold, index_nprobe=nprobe, index_cells=cells)
    states = torch.randn(n, state_dim) if state_dim else None
    r.add(z, np.arange(n) * 4.0, torch.arange(n), states)
    return r, z


def _exact(r):
    """The same registry contents with the index switched off."""
    e = r.clone()
    e.configure_index(10**9, r.index_nprobe, r.index_cells)
    return e


def _check_index_consistent(r):
    ix = r.index
    seen = []
    for c in range(ix.n_cells):
        m = ix.slots_of(c)
        seen += m.tolist()
        # the cell's copy holds exactly the registry rows of its members
        torch.testing.assert_close(ix.latents_of(c), r.latents[torch.from_numpy(m)], rtol=0, atol=0)
        # every member sits in the cell of its nearest centroid (a brute-force argmax, not faiss's quantizer)
        if len(m):
            sims = (r.latents[torch.from_numpy(m)].double() @ ix.centroids.double().T)
            assert (sims[:, c] >= sims.max(1).values - 1e-6).all()
    assert sorted(seen) == list(range(r.count))       # every filled slot exactly once
    assert ix.sizes.sum() == r.count and ix.index.ntotal == r.count
    assert (ix.cells_of(r.count) >= 0).all()


def test_probing_every_cell_gives_the_exact_answer():
    r, z = _filled(3000, nprobe=16, cells=16)
    e = _exact(r)
    q = torch.nn.functional.normalize(torch.randn(20, 16), dim=1)
    a, b = r.route(q, 20_000.0, 8), e.route(q, 20_000.0, 8)
    assert r.index is not None and e.index is None
    assert torch.equal(a.slots, b.slots) and torch.equal(a.ids, b.ids)
    torch.testing.assert_close(a.scores, b.scores)
    torch.testing.assert_close(a.cosines, b.cosines)
    torch.testing.assert_close(a.ticks, b.ticks)


def test_high_recall_on_regime_structured_latents():
    n, k = 20_000, 8
    z = torch.from_numpy(regime_latents(n + 100, dim=16, seed=3))
    r = Registry(n, 16, 0, 4, 0.9, index_threshold=1, index_nprobe=12, index_cells=0)   # ~141 cells
    r.add(z[:n], np.arange(n) * 4.0, torch.arange(n))
    q = z[n:]                                  # later rows of the same process, like live windows
    a, b = r.route(q, n * 4.0, k), _exact(r).route(q, n * 4.0, k)
    recall = np.mean([len(set(a.slots[i].tolist()) & set(b.slots[i].tolist())) / k for i in range(len(q))])
    assert r.index.n_cells == round(n ** 0.5)
    assert recall >= 0.9
    # candidates are scored exactly: any neighbour found has its true SPD score
    f = r.decay_factors(n * 4.0)
    torch.testing.assert_close(a.scores, (q[:, None, :] * r.latents[a.slots]).sum(-1) * f[a.slots])


def test_index_follows_evictions_and_online_appends():
    r, z = _filled(600, cap=600, cells=8)
    r.ensure_index()
    _check_index_consistent(r)
    fresh = torch.from_numpy(regime_latents(150, dim=16, seed=9))
    for i in range(0, 150, 10):            # overwrite the oldest slots in small batches
        r.add(fresh[i:i + 10], np.arange(i, i + 10) * 4.0 + 2400.0, torch.arange(1000 + i, 1010 + i))
    r.append_live(fresh[:3], [3000.0, 3004.0, 3008.0], forgetting=0.9)
    assert r.index is not None and r.index.rows_since_train == 153
    _check_index_consistent(r)
    assert set(r.ids[r.order()[:447]].tolist()) == set(range(153, 600))   # the 153 oldest left, their cells too
    q = fresh[[5, 100, 140]]
    a = r.route(q, 3100.0, 5)
    e = _exact(r)
    e.configure_index(10**9)
    r.configure_index(1, nprobe=8, cells=8)  # all cells: must equal the exact answer on the updated contents
    b, c = r.route(q, 3100.0, 5), e.route(q, 3100.0, 5)
    assert torch.equal(b.slots, c.slots)
    torch.testing.assert_close(b.scores, c.scores)
    assert a.slots.shape == (3, 5)


def test_a_bulk_write_retrains_the_cells():
    r, z = _filled(800, cap=800, cells=8)
    r.ensure_index()
    old = r.index.centroids.clone()
    r.add(torch.from_numpy(regime_latents(400, dim=16, seed=11)), np.arange(400) * 4.0 + 4000, torch.arange(400))
    assert r.index is None                         # dropped: half the contents changed at once
    r.route(z[:1], 6000.0, 3)
    assert r.index is not None and not torch.equal(r.index.centroids, old)
    _check_index_consistent(r)


def test_state_dict_round_trip_and_clone_keep_settings_and_answers():
    r, z = _filled(2000, nprobe=3, cells=12, state_dim=3)
    r.append_live(z[:2], [9000.0, 9004.0], torch.zeros(2, 3), forgetting=0.95)
    r2 = Registry.from_state_dict(r.state_dict())
    assert (r2.index_threshold, r2.index_nprobe, r2.index_cells) == (1, 3, 12)
    r.ensure_index()
    c = r.clone()
    assert c.index is not None and c.index is not r.index and c.index.index is not r.index.index
    c2 = r.clone()
    c2.append_live(z[:1], [9010.0], torch.zeros(1, 3))       # a clone's index moves on alone
    assert c2.index.index.ntotal == r.index.index.ntotal == 2000 and c2.index.rows_since_train == 1
    assert not torch.equal(c2.latents, r.latents)
    q = z[[10, 900, 1500]]
    a, b, d = r.route(q, 9100.0, 6), r2.route(q, 9100.0, 6), c.route(q, 9100.0, 6)
    # the rebuilt index may draw other cells, so compare with the exact answer rather than slot for slot
    assert torch.equal(a.ids, d.ids)
    ex = _exact(r2).route(q, 9100.0, 6)
    for res in (a, b):
        assert np.mean([len(set(res.ids[i].tolist()) & set(ex.ids[i].tolist())) / 6 for i in range(3)]) >= 0.8
    # defaults are not written, so registries without index settings keep the old state_dict keys
    plain = Registry(10, 2)
    plain.add(torch.eye(2), [0, 1])
    assert not {"index_threshold", "index_nprobe", "index_cells"} & set(plain.state_dict())


def test_small_registries_stay_exact_and_settings_are_validated():
    r, _ = _filled(500, threshold=501)
    r.route(torch.eye(16)[:1], 3000.0, 3)
    assert not r.index_active and r.ensure_index() is None and r.index is None
    with pytest.raises(DataError, match="index_nprobe must be an integer >= 1"):
        r.configure_index(10, 0)
    with pytest.raises(DataError, match="index_cells"):
        Registry(4, 2, index_cells=-1)
    cfg = DefragConfig()
    assert (cfg.routing.index_threshold, cfg.routing.index_nprobe, cfg.routing.index_cells) == (200_000, 64, 0)
    cfg.routing.index_nprobe = 0
    with pytest.raises(ConfigError, match="routing.index_nprobe"):
        cfg.validate()
    d = DefragConfig().to_dict()
    del d["routing"]["index_threshold"]         # configs saved before these fields existed still load
    assert DefragConfig.from_dict(d).routing.index_threshold == 200_000


@pytest.fixture(scope="module")
def indexed_engine():
    cfg = small_config()
    cfg.routing.index_threshold, cfg.routing.index_nprobe, cfg.routing.index_cells = 4, 2, 4
    rng = np.random.default_rng(0)
    data = rng.standard_normal((cfg.encoder.block_len * 40, cfg.encoder.input_dim)).astype(np.float32)
    eng = ChronosDefragEngine(cfg).fit(data)
    windows = rng.standard_normal((12, cfg.encoder.block_len, cfg.encoder.input_dim)).astype(np.float32)
    return eng, windows


def test_engine_predict_live_and_batch_use_the_index(indexed_engine):
    eng, windows = indexed_engine
    reg = eng.registry
    assert reg.index_active and reg.index is not None and reg.index.n_cells == 4   # built in _warm_up
    out = eng.predict_batch(windows, chunk=5)
    for i, w in enumerate(windows):
        p = eng.predict_live(w)
        res = reg.route(p.latent[None], float(eng.train_end_tick), eng.cfg.routing.top_k)
        assert p.neighbour_indices == res.ids[0].tolist() == out["neighbour_indices"][i].tolist()
        np.testing.assert_allclose(p.neighbour_scores, out["neighbour_scores"][i], rtol=1e-5, atol=1e-6)
        assert abs(float(p.alpha_prediction) - float(out["alpha"][i])) < 1e-4
    # the registry's own query with the index off and every cell probed agrees with the indexed one at nprobe=all
    reg.configure_index(4, 4, 4)
    q = torch.from_numpy(out["latent"])
    a, b = reg.route(q, float(eng.train_end_tick), 3), _exact(reg).route(q, float(eng.train_end_tick), 3)
    assert torch.equal(a.ids, b.ids)


def test_predict_batch_threads_and_chunk_arguments(indexed_engine):
    eng, windows = indexed_engine
    before = torch.get_num_threads()
    a = eng.predict_batch(windows, threads=2, chunk=3)
    assert torch.get_num_threads() == before                # restored
    b = eng.predict_batch(windows)
    np.testing.assert_allclose(a["alpha"], b["alpha"], rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="threads"):
        eng.predict_batch(windows, threads=0)
    with pytest.raises(DataError, match="chunk"):
        eng.predict_batch(windows, chunk=0)
    c = eng.predict_batch(windows, precision="bf16")     # opt-in bfloat16 encoder: close to fp32, unit latents
    assert c["neighbour_indices"].shape == b["neighbour_indices"].shape
    np.testing.assert_allclose(np.linalg.norm(c["latent"], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(c["latent"], b["latent"], atol=0.05)
    with pytest.raises(DataError, match="precision must be 'fp32' or 'bf16'"):
        eng.predict_batch(windows, precision="fp16")
