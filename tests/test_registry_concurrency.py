"""Registry reads stay consistent while one thread appends online: predict_live / predict_batch readers
never see a half-written registry (count, buffers and index from two sizes), and state_dict / clone are
snapshots of one moment."""

import sys
import threading

import numpy as np
import torch

from chronoslib import ChronosDefragEngine

from .conftest import small_config


def _run_concurrently(eng, x, use_index: bool):
    if use_index:  # exercise the IVF path as well: the index is updated by the writer's appends
        eng.registry.configure_index(threshold=8, nprobe=2, cells=4)
        eng.registry.ensure_index()
    windows = [x[i * 16:(i + 1) * 16] for i in range(20)]
    z = eng.embed(x)
    t0 = float(eng.train_end_tick)
    errors, results = [], []
    start = threading.Barrier(3)

    def reader(batch: bool):
        start.wait()
        try:
            for n in range(150):
                if batch:
                    out = eng.predict_batch(np.stack(windows[:4]), t0 + 2000)
                    results.append((out["confidence"], out["alpha"], out["neighbour_indices"]))
                else:
                    p = eng.predict_live(windows[n % 20], t0 + 2000)
                    results.append((np.array([p.regime_confidence]), np.array([float(p.alpha_prediction)]),
                                    np.array([p.neighbour_indices])))
                    assert len(p.neighbour_ticks) == len(p.neighbour_indices) == eng.cfg.routing.top_k
                    for i, tick in zip(p.neighbour_indices, p.neighbour_ticks):
                        assert (i == -1) == (tick >= t0)  # a live row's tick is after training
        except Exception as e:  # noqa: BLE001 - any failure in a thread is the test's failure
            errors.append(e)

    def writer():
        start.wait()
        try:
            for i in range(120):
                eng.update_registry(z[i % len(z)], [t0 + 16 * i])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads very often so a read interleaves with a write
    threads = [threading.Thread(target=reader, args=(False,)), threading.Thread(target=reader, args=(True,)),
               threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.setswitchinterval(old)
    assert errors == []
    assert len(results) == 300
    for conf, alpha, ids in results:
        assert np.isfinite(conf).all() and np.isfinite(alpha).all()
        assert ((conf >= 0) & (conf <= 1)).all() and (ids >= -1).all()
    assert eng.registry.count == min(eng.registry.capacity, len(z) + 120)


def test_two_readers_and_one_writer_exact_registry():
    torch.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal((16 * 40, 6)).astype(np.float32)
    _run_concurrently(ChronosDefragEngine(small_config()).fit(x), x, use_index=False)


def test_two_readers_and_one_writer_indexed_registry():
    x = np.random.default_rng(1).standard_normal((16 * 40, 6)).astype(np.float32)
    _run_concurrently(ChronosDefragEngine(small_config()).fit(x), x, use_index=True)


def _consistent_snapshot(d: dict, dim: int) -> None:
    """A state_dict written while rows n, n+1, ... were appended: oldest to newest, id == tick, latent == f(id)."""
    ticks, ids = d["ticks"], d["ids"].double()
    assert (ticks[1:] > ticks[:-1]).all(), "rows out of order: head moved between the copies"
    assert torch.equal(ticks, ids), "ticks and ids copied at different moments"
    assert torch.equal(d["latents"], _latent(d["ids"], dim)), "latents copied at a different moment"


def _latent(ids: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(ids % dim, dim).float()


def _snapshots_under_a_writer(reg, take, rounds: int = 2000) -> None:
    stop, errors = threading.Event(), []

    def writer():
        n = int(reg.last_tick()) + 1             # after the newest entry: ticks keep rising across rounds
        while not stop.is_set():
            ids = torch.arange(n, n + 3)
            reg.add(_latent(ids, reg.dim), ids.double().numpy(), ids)
            n += 3

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)                  # switch threads as often as possible: races show quickly
    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(rounds):
            try:
                take()
            except AssertionError as e:          # collected: a failure inside the loop must not leave t running
                errors.append(e)
                break
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert not errors, errors[0]


def test_state_dict_and_clone_are_consistent_snapshots_under_a_concurrent_writer():
    from chronoslib.registry import Registry

    reg = Registry(64, 8)
    ids = torch.arange(64)
    reg.add(_latent(ids, 8), ids.double().numpy(), ids)
    _snapshots_under_a_writer(reg, lambda: _consistent_snapshot(reg.state_dict(), 8))
    _snapshots_under_a_writer(reg, lambda: _consistent_snapshot(reg.clone().state_dict(), 8))
