"""The one-window live path (chronoslib.live_path) against the modules it shortcuts, Registry.route_one against
route, and predict_live against predict_batch on engines whose registries take either path."""

import threading

import numpy as np
import pytest
import torch

from chronoslib.config import EncoderConfig, PredictorConfig
from chronoslib.encoder import RegimeEncoder
from chronoslib.errors import ConfigError, DataError
from chronoslib.live_path import WIDE_MIN_HIDDEN, LivePath, available_kernels, kernel_for
from chronoslib.predictor import TemporalPredictor
from chronoslib.registry import Registry

KERNELS = list(available_kernels())


def _parts(n_layers=3, kernel_size=3, hidden=8, p_layers=2, f=3, length=24, seed=0, kernel=None):
    torch.manual_seed(seed)
    enc = RegimeEncoder(EncoderConfig(input_dim=f, block_len=length, hidden_dim=hidden, latent_dim=6, proj_dim=5,
                                      n_layers=n_layers, kernel_size=kernel_size)).eval()
    for b in enc.blocks:  # non-zero biases, so a dropped or misplaced bias shows
        torch.nn.init.normal_(b.conv1.bias, std=0.3)
        torch.nn.init.normal_(b.conv2.bias, std=0.3)
    torch.nn.init.normal_(enc.in_proj.bias, std=0.3)
    pred = TemporalPredictor(PredictorConfig(hidden_dim=7, n_layers=p_layers, forecast_dim=4), 6).eval()
    for c in pred.cells:
        torch.nn.init.normal_(c.lin.bias, std=0.3)
    rng = np.random.default_rng(seed)
    centre, scale = rng.normal(size=(1, f)).astype(np.float32), rng.uniform(0.5, 2, (1, f)).astype(np.float32)
    return enc, pred, centre, scale, LivePath(enc, centre, scale, pred, kernel)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n_layers,kernel_size", [(1, 3), (3, 3), (4, 2), (2, 5)])
def test_encode_equals_the_encoder_on_the_normalised_window(n_layers, kernel_size, kernel):
    enc, _, centre, scale, lp = _parts(n_layers, kernel_size, kernel=kernel)
    assert lp.kernel == kernel
    x = torch.randn(24, 3) * 2 + 1
    with torch.inference_mode():
        ref = enc(((x - torch.from_numpy(centre)) / torch.from_numpy(scale))[None])[0]
        got = lp.encode(x)
        again = lp.encode(x)  # buffers reused: the second window sees nothing of the first
        other = lp.encode(x.flip(0))
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, got, atol=0, rtol=0)
    assert not torch.allclose(other, got)
    assert abs(float(got.norm()) - 1) < 1e-5


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_wide_encoder_matches_on_either_kernel(kernel):
    # The reference release's width (hidden 128, 4 layers, dilations up to 8) on windows of 64 ticks.
    enc, _, centre, scale, lp = _parts(n_layers=4, hidden=128, f=6, length=64, kernel=kernel)
    x = torch.randn(64, 6) * 3
    with torch.inference_mode():
        ref = enc(((x - torch.from_numpy(centre)) / torch.from_numpy(scale))[None])[0]
        torch.testing.assert_close(lp.encode(x), ref, atol=1e-5, rtol=1e-5)


def test_the_kernel_follows_the_encoders_width_and_the_cpu():
    assert _parts(hidden=8)[4].kernel == "blas"
    assert _parts(hidden=WIDE_MIN_HIDDEN)[4].kernel == kernel_for(WIDE_MIN_HIDDEN)
    assert kernel_for(WIDE_MIN_HIDDEN - 1, "GenuineIntel") == kernel_for(WIDE_MIN_HIDDEN - 1, "AuthenticAMD") == "blas"
    have = available_kernels()
    if {"mkl", "onednn"} <= set(have):   # both in this build: MKL's sgemm on Intel, oneDNN elsewhere
        assert kernel_for(128, "GenuineIntel") == "mkl"
        assert kernel_for(128, "AuthenticAMD") == kernel_for(128, "") == "onednn"
    assert all(kernel_for(h, v) in have for h in (8, 128) for v in ("GenuineIntel", "AuthenticAMD", ""))
    with pytest.raises(ConfigError, match="kernel must be one of blas"):
        _parts(kernel="cuda")


@pytest.mark.parametrize("p_layers", [1, 2, 3])
def test_step_equals_the_predictor_step_and_readout(p_layers):
    _, pred, _, _, lp = _parts(p_layers=p_layers)
    q = torch.nn.functional.normalize(torch.randn(6), dim=0)
    state = torch.randn(pred.state_dim)
    with torch.inference_mode():
        ref = pred.readout(pred.step(q[None], state[None]))[0]
        got = lp.step(q, state)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_threads_get_their_own_buffers(kernel):
    enc, _, _, _, lp = _parts(kernel=kernel)
    xs = [torch.randn(24, 3) for _ in range(4)]
    with torch.inference_mode():
        want = [lp.encode(x) for x in xs]
    got, errors = {}, []

    def work(i):
        try:
            with torch.inference_mode():
                for _ in range(200):
                    z = lp.encode(xs[i])
                    if not torch.equal(z, want[i]):
                        errors.append(i)
                got[i] = z
        except Exception as e:  # surfaced below
            errors.append(repr(e))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and all(torch.equal(got[i], want[i]) for i in range(4))


def test_window_checks_name_shape_dtype_and_non_finite_values():
    _, _, _, _, lp = _parts()
    ok = np.zeros((24, 3), np.float32)
    assert lp.window_tensor(ok).data_ptr() == ok.ctypes.data  # the fast path: no copy, no conversion
    assert lp.window_tensor(ok.astype(np.float64).tolist()).dtype == torch.float32
    with pytest.raises(DataError, match="shape"):
        lp.window_tensor(np.zeros((23, 3), np.float32))
    with pytest.raises(DataError, match="real numeric"):
        lp.window_tensor(np.zeros((24, 3), bool))
    for bad in (np.nan, np.inf, -np.inf):
        x = ok.copy()
        x[5, 1] = bad
        with torch.inference_mode(), pytest.raises(DataError, match="NaN or inf"):
            t = lp.window_tensor(x)
            lp.check(lp.encode(t), t)
    huge = np.full((24, 3), 3e38, np.float32)
    with torch.inference_mode(), pytest.raises(DataError, match="overflow"):
        t = lp.window_tensor(huge)
        lp.check(lp.encode(t), t)


def _registry(n=50, index_threshold=10_000, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(n, 6, generator=g), dim=1)
    reg = Registry(64, 6, state_dim=5, block_len=4, decay=0.8, index_threshold=index_threshold, index_nprobe=4)
    reg.add(z, np.arange(n) * 4.0, torch.arange(n), torch.randn(n, 5, generator=g))
    return reg


@pytest.mark.parametrize("case", ["exact", "wrapped_weighted", "indexed", "k_above_count"])
def test_route_one_equals_route(case):
    reg = _registry(index_threshold=20 if case == "indexed" else 10_000)
    k = 8
    if case == "wrapped_weighted":  # circular buffer wrapped, forgetting weights on
        g = torch.Generator().manual_seed(1)
        reg.append_live(torch.nn.functional.normalize(torch.randn(20, 6, generator=g), dim=1),
                        200.0 + np.arange(20), torch.randn(20, 5, generator=g), 0.9)
    if case == "k_above_count":
        k = 70
    qs = torch.nn.functional.normalize(torch.randn(10, 6, generator=torch.Generator().manual_seed(2)), dim=1)
    for q in qs:
        a, b = reg.route(q[None], 260.0, k), reg.route_one(q, 260.0, k)
        for name in ("ids", "slots", "ticks"):
            assert torch.equal(getattr(b, name), getattr(a, name)[0]), name
        for name in ("weights", "state", "confidence", "scores", "cosines"):
            torch.testing.assert_close(getattr(b, name), getattr(a, name)[0], atol=1e-6, rtol=1e-5)
        assert abs(float(b.weights.sum()) - 1) < 1e-5


def test_route_one_sees_writes_and_query_times_after_its_first_call():
    # route_one keeps NumPy views of the scan and of the SPD factors: a write or a new query time must not be
    # answered from the old ones.
    reg = _registry()
    q = torch.nn.functional.normalize(torch.randn(6, generator=torch.Generator().manual_seed(5)), dim=0)
    for t_query in (260.0, 900.0, 260.0):
        a, b = reg.route(q[None], t_query, 8), reg.route_one(q, t_query, 8)
        assert torch.equal(b.slots, a.slots[0])
        torch.testing.assert_close(b.scores, a.scores[0], atol=1e-6, rtol=1e-5)
    reg.append_live(q[None], np.array([300.0]), torch.full((1, 5), 7.0), 1.0)
    b = reg.route_one(q, 300.0, 8)
    assert int(b.slots[0]) == 50 and float(b.cosines[0]) == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(b.slots, reg.route(q[None], 300.0, 8).slots[0])


def test_route_one_with_no_positive_score_blends_uniformly():
    reg = Registry(8, 2, state_dim=1, block_len=1, decay=1.0)
    reg.add(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), np.arange(3.0), None,
            torch.tensor([[1.0], [2.0], [3.0]]))
    r = reg.route_one(torch.tensor([-0.8, -0.6]), 3.0, 3)
    torch.testing.assert_close(r.weights, torch.full((3,), 1 / 3))
    torch.testing.assert_close(r.state, torch.tensor([2.0]))
    assert float(r.confidence) == 0.0


@pytest.mark.parametrize("indexed", [False, True])
def test_predict_live_equals_predict_batch(small_engine, indexed):
    eng, x = small_engine
    reg = eng.registry
    saved = (reg.index_threshold, reg.index_nprobe, reg.index_cells)
    if indexed:
        reg.configure_index(8, 4, 4)
    try:
        rng = np.random.default_rng(3)
        w = (x[rng.integers(0, 600, 12)[:, None] + np.arange(16)] + 0.05 * rng.standard_normal((12, 16, 6)))
        w = w.astype(np.float32)
        t = float(eng.train_end_tick) + 100
        b = eng.predict_batch(w, t, chunk=5)
        for i in range(len(w)):
            p = eng.predict_live(w[i], t)
            assert p.neighbour_indices == list(b["neighbour_indices"][i])
            np.testing.assert_allclose(p.latent.numpy(), b["latent"][i], atol=1e-5)
            np.testing.assert_allclose(p.forecast.numpy(), b["forecast"][i], atol=1e-5)
            np.testing.assert_allclose(p.regime_confidence, b["confidence"][i], atol=1e-5)
            np.testing.assert_allclose(p.neighbour_scores, b["neighbour_scores"][i], atol=1e-5)
            assert set(p.stage_latency_ms) == {"encode", "query", "spd", "predictor"}
            assert all(v >= 0 for v in p.stage_latency_ms.values())
            assert sum(p.stage_latency_ms.values()) <= p.system_latency_ms * 1.0001
        # float64 and list input take the checked path and give the same answer
        p64 = eng.predict_live(w[0].astype(np.float64).tolist(), t)
        assert p64.neighbour_indices == list(b["neighbour_indices"][0])
    finally:
        reg.configure_index(*saved)


def test_predict_live_equals_predict_batch_on_random_windows(small_engine):
    # Windows unlike the training data (wider spread, shifted): the folded normalisation and the pooled last conv
    # must still match the batch encoder where the activations are far from the trained range.
    eng, x = small_engine
    rng = np.random.default_rng(11)
    w = (x.mean(0) + 3 * x.std(0) * rng.standard_normal((10, 16, 6))).astype(np.float32)
    b = eng.predict_batch(w)
    for i in range(len(w)):
        p = eng.predict_live(w[i])
        assert p.neighbour_indices == list(b["neighbour_indices"][i])
        np.testing.assert_allclose(p.latent.numpy(), b["latent"][i], atol=1e-5)
        np.testing.assert_allclose(p.forecast.numpy(), b["forecast"][i], atol=1e-5)
        np.testing.assert_allclose(p.neighbour_scores, b["neighbour_scores"][i], atol=1e-5)


def test_predict_batch_on_two_worker_threads_is_identical_to_one(small_engine):
    eng, x = small_engine
    w = np.stack([x[i:i + 16] for i in range(0, 560, 7)]).astype(np.float32)   # 80 windows, 8 chunks of 10
    one, two = eng.predict_batch(w, chunk=10, threads=1), eng.predict_batch(w, chunk=10, threads=2)
    default = eng.predict_batch(w, chunk=10)
    for key in one:
        assert np.array_equal(one[key], two[key]) and np.array_equal(one[key], default[key]), key
    assert one["latent"].shape == (80, 8)


def test_live_bench_rows_side_by_side_with_the_reference_stand_in(small_engine):
    from chronoslib.bench_live import ReferenceLive, bench_batch_threads, bench_live_side_by_side
    from chronoslib.synthetic import make_regime_series

    eng, x = small_engine
    ref = ReferenceLive(np.eye(64)[:10].astype(np.float32), np.arange(10) * 64, 640)
    alpha, conf, ms = ref.predict_live(np.zeros((64, 6), np.float32))
    assert alpha.shape == (1,) and np.isfinite(float(alpha)) and 0 <= conf <= 1 and ms > 0
    s = make_regime_series(64 * 48 + 64 * 4, n_features=6, seed=0)
    live = s.data[64 * 48:].reshape(-1, 64, 6)
    from chronoslib.bench_measure import spec_config
    from chronoslib.engine import ChronosDefragEngine

    cfg = spec_config()  # the bench's default-configuration engine, trained briefly (latency needs no training)
    cfg.optim.encoder_epochs = cfg.optim.predictor_epochs = 1
    ours = ChronosDefragEngine(cfg).fit(s.data[:64 * 48])
    r = bench_live_side_by_side(ours, s.data[:64 * 48], live, n_calls=20, rounds=2)
    for name in ("ours_default", "ours_reference_config", "reference"):
        assert 0 < r[name]["p50_ms"] <= r[name]["p99_ms"], name
    assert r["ratio_p50_ours_over_reference"] == r["ours_reference_config"]["p50_ms"] / r["reference"]["p50_ms"]
    assert len(r["load_avg_1min"]) == 2 and r["reference_config"]["registry_entries"] == 48
    b = bench_batch_threads(eng, x[:16 * 8].reshape(8, 16, 6), n=300, runs=1)
    assert b["identical"] is True and b["windows_per_s_1_thread"] > 0 and b["windows_per_s_2_threads"] > 0
