"""ReplaySession, sources and the online registry (forgetting factor), on the tiny random-data engine."""

import io

import numpy as np
import pytest
import torch

from chronoslib import Registry
from chronoslib.errors import DataError, EmptyFileError, FileTooLargeError, RegistryEmptyError
from chronoslib.regimes import block_confidence
from chronoslib.replay import (
    ReplaySession,
    ReplaySource,
    batch_analysis,
    load_continuation,
    suggested_threshold,
    window_starts,
    with_structural_break,
)


@pytest.fixture(scope="module")
def live(small_engine):
    eng, _ = small_engine
    x = np.random.default_rng(10).standard_normal((16 * 12, 6)).astype(np.float32)   # 12 blocks after training
    return eng, ReplaySource(name="cont", features=x, start_tick=eng.train_end_tick,
                             prices=100 + np.cumsum(x[:, 0]))


def test_window_starts_cover_every_complete_window():
    assert window_starts(40, 16, 8).tolist() == [0, 8, 16, 24]
    assert window_starts(16, 16, 4).tolist() == [0]
    with pytest.raises(DataError, match="fewer than one window"):
        window_starts(10, 16, 4)
    with pytest.raises(DataError, match="stride"):
        window_starts(40, 16, 0)


def test_stepping_reproduces_predict_live_window_by_window(live):
    eng, src = live
    rs = ReplaySession(eng, src, stride=4)
    assert rs.n_windows == (len(src.features) - 16) // 4 + 1
    assert rs.step(3) == 3 and rs.position == 3 and rs.current() == 2
    for i in range(3):
        s = int(rs.starts[i])
        p = eng.predict_live(src.features[s:s + 16], timestamp=src.start_tick + s)
        assert rs.confidence[i] == pytest.approx(p.regime_confidence, abs=1e-6)
        assert rs.alpha[i] == pytest.approx(float(p.alpha_prediction), abs=1e-6)
        assert rs.neighbour_ids[i].tolist() == p.neighbour_indices
        np.testing.assert_allclose(rs.neighbour_weights[i], p.neighbour_weights, atol=1e-6)
        assert rs.tick(i) == src.start_tick + s
    rs.step(rs.n_windows)
    assert rs.done and rs.step(5) == 0
    assert np.isfinite(rs.confidence).all() and (rs.confidence <= 1).all()
    rs.rewind(2)
    assert rs.position == 2 and not rs.done
    rs.reset()
    assert rs.position == 0 and rs.neighbour_table() == []


def test_frozen_registry_is_untouched_and_online_registry_grows_per_complete_block(live):
    eng, src = live
    count, latents = len(eng.registry), eng.registry.latents.clone()
    rs = ReplaySession(eng, src, stride=8, online=True, forgetting=0.9)
    rs.step(rs.n_windows)
    assert len(eng.registry) == count and torch.equal(eng.registry.latents, latents)
    appended = len(rs.online_engine.registry) - count
    assert appended == len(range(0, len(src.features) - 16 + 1, 16))   # one per non-overlapping block
    w = rs.online_engine.registry.weights()
    assert w[:count].max() == pytest.approx(0.9 ** appended, rel=1e-5)    # training entries aged by every block
    assert w[-1] == pytest.approx(1.0)
    assert np.isfinite(rs.online_confidence).all()
    assert 0 <= np.nanmin(rs.online_live_share) and np.nanmax(rs.online_live_share) <= 1
    assert "online_mean_confidence" in rs.summary()


def test_registry_query_is_unchanged_until_an_online_update(small_engine):
    eng, _ = small_engine
    reg = eng.registry.clone()
    q = torch.nn.functional.normalize(torch.randn(3, reg.dim), dim=1)
    before = reg.route(q, float(eng.train_end_tick), 5)
    # Independent SPD computation: cos * delta ** (|t_q - t_i| / span).
    cos = q @ reg.latents[: reg.count].T
    t = reg.ticks[: reg.count]
    span = float(t.max() - t.min()) + reg.block_len
    ref = cos * reg.decay ** ((eng.train_end_tick - t).abs() / span).float()
    np.testing.assert_allclose(before.scores.numpy(), torch.topk(ref, 5, dim=1).values.numpy(), rtol=1e-5)
    reg.append_live(q[:1], [eng.train_end_tick], torch.zeros(1, reg.state_dim), forgetting=0.5)
    after = reg.route(q, float(eng.train_end_tick), 5)
    assert after.ids[0, 0] == -1                      # the appended copy of q[0] is its own best match
    restored = Registry.from_state_dict(reg.state_dict())
    torch.testing.assert_close(restored.weights(), reg.weights())
    untouched = eng.registry.state_dict()
    assert "log_weights" not in untouched            # the checkpoint format only changes after updates
    with pytest.raises(DataError, match="forgetting factor"):
        reg.append_live(q[:1], [0], forgetting=1.5)


def test_update_registry_validates_its_input(small_engine):
    eng, _ = small_engine
    clone = eng.registry.clone()
    saved = eng.registry
    try:
        eng.registry = clone
        with pytest.raises(DataError, match="latent_dim"):
            eng.update_registry(np.zeros((1, 3)), [eng.train_end_tick])
        with pytest.raises(DataError, match="2 latents but 1 ticks"):
            eng.update_registry(np.zeros((2, eng.cfg.encoder.latent_dim)), [eng.train_end_tick])
        with pytest.raises(ValueError, match="anti-look-ahead"):
            eng.update_registry(np.ones((1, eng.cfg.encoder.latent_dim)), [0])
        eng.registry = type(clone)(8, clone.dim, clone.state_dim)
        with pytest.raises(RegistryEmptyError):
            eng.update_registry(np.ones((1, clone.dim)), [eng.train_end_tick])
    finally:
        eng.registry = saved


def test_session_refuses_look_ahead_and_wrong_feature_count(live):
    eng, src = live
    with pytest.raises(DataError, match="inside the training span"):
        ReplaySession(eng, ReplaySource("x", src.features, start_tick=0))
    with pytest.raises(DataError, match=r"expects \(T, 6\)"):
        ReplaySession(eng, ReplaySource("x", src.features[:, :4], start_tick=eng.train_end_tick))


def test_batch_analysis_matches_stepping_at_block_stride(live):
    eng, src = live
    an = batch_analysis(eng, src)
    rs = ReplaySession(eng, src, stride=16)
    rs.step(rs.n_windows)
    np.testing.assert_allclose(an["confidence"], rs.confidence, atol=1e-5)
    np.testing.assert_array_equal(an["neighbour_ids"], rs.neighbour_ids)
    np.testing.assert_allclose(an["latent"], rs.latents, atol=1e-5)
    assert (an["neighbour_age"] > 0).all()
    again = rs.analysis()
    np.testing.assert_array_equal(again["tick"], an["tick"])


def test_records_feed_the_manifold_block_confidence(live):
    eng, src = live
    rs = ReplaySession(eng, src, stride=16)
    rs.step(4)
    recs = rs.records()
    assert len(recs) == 4 and set(recs[0]) >= {"neighbour_indices", "neighbour_weights", "regime_confidence"}
    bc = block_confidence(len(eng.block_latents), recs)
    hit = np.unique(rs.neighbour_ids[:4])
    assert np.isfinite(bc[hit]).all() and np.isnan(np.delete(bc, hit)).all()
    rows = rs.neighbour_table(regimes={"cluster": np.zeros(len(eng.block_latents), dtype=int)})
    assert len(rows) == rs.k and rows[0]["regime"] == 0
    assert sum(r["SPD weight"] for r in rows) == pytest.approx(1.0, abs=1e-3)


def test_uploaded_continuation_is_validated_with_named_columns():
    good = "f0,f1,price\n1,2,100\n3,4,101\n"
    src = load_continuation(io.StringIO(good), ["f0", "f1"], start_tick=50, name="c.csv")
    assert src.features.shape == (2, 2) and src.prices.tolist() == [100, 101] and src.start_tick == 50
    with pytest.raises(DataError, match=r"c.csv: feature column\(s\) \['f1'\] not found"):
        load_continuation(io.StringIO("f0,x\n1,2\n"), ["f0", "f1"], 0, name="c.csv")
    with pytest.raises(DataError, match="first at row 1, column 'f1'"):
        load_continuation(io.StringIO("f0,f1\n1,2\n3,\n"), ["f0", "f1"], 0, name="c.csv")


def test_a_continuation_is_read_like_any_table_with_the_readers_delimiters_and_limits(tmp_path):
    eu = "f0;f1;price\n1,5;2;100\n3;4,25;101\n"          # semicolons with decimal commas
    src = load_continuation(io.StringIO(eu), ["f0", "f1"], 0, name="eu.csv")
    assert src.features.tolist() == [[1.5, 2.0], [3.0, 4.25]] and src.prices.tolist() == [100, 101]
    path = tmp_path / "long.csv"
    path.write_text("f0,f1\n" + "1,2\n" * 3)
    assert load_continuation(str(path), ["f0", "f1"], 0).name == "long.csv"
    with pytest.raises(FileTooLargeError, match="long.csv has more than 2 rows, the limit for loading here"):
        load_continuation(str(path), ["f0", "f1"], 0, max_rows=2)
    with pytest.raises(EmptyFileError, match="empty.csv is empty"):
        load_continuation(io.BytesIO(b""), ["f0", "f1"], 0, name="empty.csv")
    with pytest.raises(DataError, match="gone.csv: cannot read the file"):
        load_continuation(str(tmp_path / "gone.csv"), ["f0", "f1"], 0)


def test_continuation_with_engineered_features_applies_the_models_recipe():
    from chronoslib.config import DataConfig

    cfg = DataConfig(features=["f0"], transforms=["log_return"], price_col="close", feature_names=["log_return", "f0"])
    csv = "close,f0\n100,1\n101,2\n99,3\n"
    src = load_continuation(io.StringIO(csv), ["log_return", "f0"], 10, name="raw.csv", data_cfg=cfg)
    np.testing.assert_allclose(src.features[:, 0], np.log([101 / 100, 99 / 101]), rtol=1e-6)
    assert src.features[:, 1].tolist() == [2, 3] and src.prices.tolist() == [101, 99]     # warm-up row dropped
    with pytest.raises(DataError, match="raw.csv: raw data lacks column"):
        load_continuation(io.StringIO("f0\n1\n2\n"), ["log_return", "f0"], 10, name="raw.csv", data_cfg=cfg)


def test_structural_break_changes_only_the_tail(live):
    _, src = live
    br = with_structural_break(src, at=0.5, vol_scale=2.0, offset=1.0)
    half = len(src.features) // 2
    np.testing.assert_array_equal(br.features[:half], src.features[:half])
    tail, new = src.features[half:], br.features[half:]
    np.testing.assert_allclose(new.std(0), 2.0 * tail.std(0), rtol=1e-4)
    np.testing.assert_allclose(new.mean(0), tail.mean(0) + 1.0, atol=1e-4)
    with pytest.raises(DataError, match="break position"):
        with_structural_break(src, at=1.0)


def test_suggested_threshold_is_a_rounded_low_quantile(small_engine):
    eng, _ = small_engine
    t = suggested_threshold(eng)
    assert 0.05 <= t <= 0.95 and abs(t / 0.05 - round(t / 0.05)) < 1e-9


def test_build_source_makes_each_kind_the_pages_offer(small_engine):
    import pandas as pd

    from chronoslib.data import build_dataset
    from chronoslib.replay import SOURCES, build_source

    eng, _ = small_engine
    x = np.random.default_rng(4).standard_normal((1000, 6))
    ds = build_dataset(pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]), "rand", timestamp_col="", holdout=0.2)
    held = build_source("heldout", ds, eng)
    assert held.n_ticks == 200 and np.allclose(held.features, ds.features[800:])
    brk = build_source("break", ds, eng, break_at=0.5, break_vol=2.0)
    assert brk.n_ticks == 200 and np.allclose(brk.features[:100], held.features[:100])
    assert not np.allclose(brk.features[100:], held.features[100:])
    with pytest.raises(DataError, match="upload a CSV or Parquet"):
        build_source("upload", ds, eng)
    with pytest.raises(DataError, match="replay source must be one of"):
        build_source("tape", ds, eng)
    assert set(SOURCES) == {"heldout", "break", "upload"}
