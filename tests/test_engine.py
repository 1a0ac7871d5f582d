"""ChronosDefragEngine: fit contract, determinism, persistence, anti-look-ahead and every documented error."""

import os
import warnings

import numpy as np
import pytest
import torch

from chronoslib import (
    CheckpointError,
    ChronosDefragEngine,
    DataError,
    LivePrediction,
    LookAheadError,
    NotEnoughBlocksError,
    NotFittedError,
    RegistryEmptyError,
)
from chronoslib.checkpoint import FORMAT, FORMAT_VERSION
from tests.conftest import small_config


def _data(t=16 * 40, f=6, seed=0):
    return np.random.default_rng(seed).standard_normal((t, f)).astype(np.float32)


def test_fit_exposes_latents_starts_timeline_and_history(small_engine):
    eng, x = small_engine
    assert eng.block_latents.shape == (40, 8)
    np.testing.assert_allclose(np.linalg.norm(eng.block_latents, axis=1), 1.0, atol=1e-5)
    assert eng.block_starts.tolist() == list(range(0, 640, 16))
    assert eng.pseudo_timeline[0] == 0 and sorted(eng.pseudo_timeline.tolist()) == list(range(40))
    enc = [h for h in eng.history if h["stage"] == "encoder"]
    assert len(enc) == 3
    for key in ("infonce", "ter", "lcr", "entropy", "entropy_target", "mean_cos", "eff_rank", "collapsed"):
        assert key in enc[0]
    s = eng.fit_summary
    assert 0.0 <= s["timeline_entropy"] <= 1.0
    assert s["path_cost_pseudo"] <= s["path_cost_chrono"] + 1e-6  # greedy chain never longer here
    assert eng.train_end_tick == 640


def test_progress_reports_every_stage_in_order():
    calls = []
    ChronosDefragEngine(small_config()).fit(_data(), progress=lambda s, i, n, m: calls.append((s, i, n)))
    epochs = [c for c in calls if not c[0].endswith("_batch")]   # in-epoch calls come between the epoch ends
    assert [c[0] for c in epochs] == ["encoder"] * 3 + ["pseudo_timeline"] + ["predictor"] * 2
    assert epochs[2] == ("encoder", 3, 3)
    stages = [c[0] for c in calls]
    assert stages[0] == "encoder_batch" and stages.index("predictor_batch") > stages.index("pseudo_timeline")


def test_embed_matches_training_latents_and_is_causal(small_engine):
    eng, x = small_engine
    np.testing.assert_allclose(eng.embed(x), eng.block_latents, atol=1e-5)
    x2 = x.copy()
    x2[16 * 20:] += 5.0                      # change blocks 20.. only
    z2 = eng.embed(x2)
    np.testing.assert_allclose(z2[:20], eng.block_latents[:20], atol=1e-6)
    assert not np.allclose(z2[20:], eng.block_latents[20:])


def test_same_seed_same_everything_and_second_fit_starts_fresh():
    x = _data()
    a = ChronosDefragEngine(small_config(seed=5)).fit(x)
    b = ChronosDefragEngine(small_config(seed=5))
    b.fit(x)
    b.fit(x)  # refit from fresh weights: identical to a single fit
    np.testing.assert_array_equal(a.block_latents, b.block_latents)
    np.testing.assert_array_equal(a.pseudo_timeline, b.pseudo_timeline)
    w = x[:16]
    assert torch.equal(a.predict_live(w).alpha_prediction, b.predict_live(w).alpha_prediction)
    c = ChronosDefragEngine(small_config(seed=6)).fit(x)
    assert not np.allclose(a.block_latents, c.block_latents)


def test_warm_start_continues_from_current_weights():
    x = _data()
    a = ChronosDefragEngine(small_config()).fit(x)
    before = a.block_latents.copy()
    a.fit(x, warm_start=True)
    assert not np.allclose(before, a.block_latents)


def test_fit_does_not_touch_the_global_rng_or_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ChronosDefragEngine(small_config()).fit(_data())
    assert torch.equal(torch.rand(3), expected)
    assert os.listdir(tmp_path) == []


def test_predict_live_returns_a_full_live_prediction(small_engine):
    eng, x = small_engine
    p = eng.predict_live(x[-16:])
    assert isinstance(p, LivePrediction)
    assert p.alpha_prediction.ndim == 0 and torch.isfinite(p.alpha_prediction)
    assert 0.0 <= p.regime_confidence <= 1.0
    assert set(p.stage_latency_ms) == {"encode", "query", "spd", "predictor"}
    assert p.system_latency_ms >= sum(p.stage_latency_ms.values()) * 0.99
    assert len(p.neighbour_indices) == len(p.neighbour_scores) == 8
    assert p.neighbour_indices[0] == 39  # the newest training block retrieves itself first (decay ~ 1)
    assert sum(p.neighbour_weights) == pytest.approx(1.0, abs=1e-5)
    assert list(p.neighbour_scores) == sorted(p.neighbour_scores, reverse=True)


def test_predict_batch_equals_predict_live_one_by_one(small_engine):
    eng, x = small_engine
    windows = x[: 16 * 5].reshape(5, 16, 6)
    b = eng.predict_batch(windows)
    for i in range(5):
        p = eng.predict_live(windows[i])
        assert b["alpha"][i] == pytest.approx(p.alpha_prediction.item(), abs=1e-5)
        assert b["confidence"][i] == pytest.approx(p.regime_confidence, abs=1e-5)
        assert b["neighbour_indices"][i].tolist() == p.neighbour_indices


def _reference_live(eng, latent, t):
    """predict_live's routing recomputed from the registry's arrays in float64 NumPy (no registry code):
    SPD top-k, clamped normalised weights, blended state, confidence, then one predictor step."""
    reg, k, q = eng.registry, eng.cfg.routing.top_k, latent.double().numpy()
    n = reg.count
    lat, ticks = reg.latents[:n].double().numpy(), reg.ticks[:n].double().numpy()
    cos = lat @ q
    s = cos * reg.decay ** (np.abs(t - ticks) / (ticks.max() - ticks.min() + reg.block_len))
    top = np.argsort(-s, kind="stable")[:k]
    w = np.clip(s[top], 0, None) / np.clip(s[top], 0, None).sum()
    state = torch.from_numpy(w @ reg.states[:n].double().numpy()[top]).float()
    with torch.inference_mode():
        alpha = float(eng.predictor.readout(eng.predictor.step(latent[None], state[None]))[0, 0])
    return {"ids": reg.ids[:n].numpy()[top].tolist(), "scores": s[top], "weights": w, "ticks": ticks[top],
            "confidence": float(np.clip(w @ cos[top], 0, 1)), "alpha": alpha}


@pytest.mark.parametrize("indexed", [False, True])
def test_predict_live_routes_like_a_brute_force_reference_and_like_predict_batch(small_engine, indexed):
    eng = ChronosDefragEngine.load(small_engine[0].to_bytes())   # a copy: its index settings change below
    if indexed:  # above the index threshold, every cell probed: the cell index path must give the exact answer
        eng.registry.configure_index(1, nprobe=4, cells=4)
        assert eng.registry.ensure_index() is not None
    windows = _data(16 * 6, seed=5).reshape(6, 16, 6)
    t = float(eng.train_end_tick + 50)
    batch = eng.predict_batch(windows, t, chunk=4)
    for i, w in enumerate(windows):
        p, ref = eng.predict_live(w, t), _reference_live(eng, eng.predict_live(w, t).latent, t)
        assert p.neighbour_indices == ref["ids"] == batch["neighbour_indices"][i].tolist()
        np.testing.assert_allclose(p.neighbour_scores, ref["scores"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch["neighbour_scores"][i], ref["scores"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p.neighbour_weights, ref["weights"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p.neighbour_ticks, ref["ticks"])
        assert p.regime_confidence == pytest.approx(ref["confidence"], abs=1e-6)
        assert batch["confidence"][i] == pytest.approx(ref["confidence"], abs=1e-6)
        assert float(p.alpha_prediction) == pytest.approx(ref["alpha"], abs=1e-5)
        assert batch["alpha"][i] == pytest.approx(ref["alpha"], abs=1e-5)


def test_anti_look_ahead_refuses_timestamps_inside_the_training_span(small_engine):
    eng, x = small_engine
    with pytest.raises(LookAheadError, match="inside the training span.*640"):
        eng.predict_live(x[:16], timestamp=100)
    eng.predict_live(x[:16], timestamp=640)  # the first tick after training is fine
    with pytest.raises(DataError, match="finite"):
        eng.predict_live(x[:16], timestamp=float("nan"))


@pytest.mark.parametrize("window,fragment", [
    (np.zeros((15, 6)), r"window must have shape \(block_len=16, input_dim=6\), got \(1, 15, 6\)"),
    (np.zeros((16, 5)), r"got \(1, 16, 5\)"),
    (np.full((16, 6), np.nan), "NaN"),
])
def test_bad_windows_are_refused_and_do_not_change_the_engine(small_engine, window, fragment):
    eng, x = small_engine
    before = eng.predict_live(x[:16]).alpha_prediction
    with pytest.raises(DataError, match=fragment):
        eng.predict_live(window)
    assert torch.equal(eng.predict_live(x[:16]).alpha_prediction, before)


def test_unfitted_engine_errors():
    eng = ChronosDefragEngine(small_config())
    with pytest.raises(RegistryEmptyError, match="Registry is empty"):
        eng.predict_live(np.zeros((16, 6)))
    with pytest.raises(NotFittedError):
        eng.embed(_data())
    with pytest.raises(NotFittedError):
        eng.save("never.pt")


def test_bad_training_data_is_refused_and_a_fitted_engine_survives(small_engine):
    eng, x = small_engine
    latents = eng.block_latents.copy()
    with pytest.raises(NotEnoughBlocksError, match="Need at least 4 blocks"):
        eng.fit(_data(t=63))
    with pytest.raises(DataError, match="5 features but encoder.input_dim is 6"):
        eng.fit(_data(f=5))
    bad = _data()
    bad[7, 2] = np.inf
    with pytest.raises(DataError, match="row 7, column 2"):
        eng.fit(bad)
    with pytest.raises(DataError, match="numeric"):
        eng.fit(np.array([["a"] * 6] * 64))
    np.testing.assert_array_equal(eng.block_latents, latents)


def test_trailing_ticks_and_small_registry_are_reported():
    cfg = small_config()
    cfg.routing.registry_capacity = 20
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        eng = ChronosDefragEngine(cfg).fit(_data(t=16 * 40 + 5))
    msgs = " ".join(str(m.message) for m in w)
    assert "5 trailing tick(s)" in msgs
    assert "registry_capacity=20 is below the 40 training blocks" in msgs
    assert eng.fit_summary["trailing_ticks"] == 5
    assert len(eng.registry) == 20


def test_dataframe_input_uses_numeric_columns():
    pd = pytest.importorskip("pandas")
    x = _data()
    df = pd.DataFrame(x, columns=list("abcdef"))
    df["note"] = "text"
    z = ChronosDefragEngine(small_config()).fit(df).block_latents
    np.testing.assert_allclose(z, ChronosDefragEngine(small_config()).fit(x).block_latents, atol=1e-6)


def test_save_load_round_trip_gives_identical_predictions(small_engine, tmp_path):
    eng, x = small_engine
    path = tmp_path / "m.pt"
    eng.save(str(path))
    again = ChronosDefragEngine.load(str(path))
    w = x[32:48]
    a, b = eng.predict_live(w), again.predict_live(w)
    assert torch.equal(a.alpha_prediction, b.alpha_prediction)
    assert a.neighbour_indices == b.neighbour_indices
    np.testing.assert_array_equal(again.pseudo_timeline, eng.pseudo_timeline)
    assert again.history == eng.history and again.cfg == eng.cfg
    from_bytes = ChronosDefragEngine.load(eng.to_bytes())
    assert torch.equal(from_bytes.predict_live(w).alpha_prediction, a.alpha_prediction)


def test_a_crash_while_saving_keeps_the_previous_checkpoint(small_engine, tmp_path, monkeypatch):
    eng, _ = small_engine
    path = tmp_path / "m.pt"
    eng.save(str(path))
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        eng.save(str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.pt"]  # no temp file left behind


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoints_never_unpickle_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "config": _Evil()}, str(path))
    with pytest.raises(CheckpointError, match="not a readable ChronosDefrag checkpoint"):
        ChronosDefragEngine.load(str(path))


def test_bad_checkpoints_get_clear_errors(small_engine, tmp_path):
    eng, _ = small_engine
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt is not a readable"):
        ChronosDefragEngine.load(str(junk))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="no 'chronosdefrag-checkpoint' format tag"):
        ChronosDefragEngine.load(str(other))
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        ChronosDefragEngine.load(str(tmp_path / "missing.pt"))


def test_loading_into_an_engine_with_a_different_architecture_is_refused(small_engine, tmp_path):
    eng, x = small_engine
    path = tmp_path / "m.pt"
    eng.save(str(path))
    cfg = small_config(block_len=32)
    target = ChronosDefragEngine(cfg)
    with pytest.raises(CheckpointError, match="encoder.block_len is 32 here but 16 in the checkpoint"):
        target.load_checkpoint(str(path))
    assert target.encoder is None  # nothing half-loaded
    ok = ChronosDefragEngine(small_config()).load_checkpoint(str(path))
    assert torch.equal(ok.predict_live(x[:16]).alpha_prediction, eng.predict_live(x[:16]).alpha_prediction)
    assert ChronosDefragEngine().load_checkpoint(str(path)).cfg.encoder.block_len == 16  # default cfg adopts


def test_tampered_checkpoint_weights_are_reported(small_engine, tmp_path):
    eng, _ = small_engine
    payload = eng._payload()
    payload["encoder"] = {k: v[..., :1] if v.ndim else v for k, v in payload["encoder"].items()}
    from chronoslib.checkpoint import save_checkpoint

    save_checkpoint(payload, tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="does not fit its own config"):
        ChronosDefragEngine.load(str(tmp_path / "t.pt"))
