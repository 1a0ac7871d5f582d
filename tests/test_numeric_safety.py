"""Numbers that would silently become NaN are refused: float32 overflow in fit, non-finite latents in
predict_live / predict_batch, bad rows and ticks in update_registry (all-or-nothing)."""

import numpy as np
import pandas as pd
import pytest
import torch

from chronoslib import ChronosDefragEngine
from chronoslib.errors import DataError, LookAheadError

from .conftest import small_config


@pytest.fixture()
def engine():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16 * 40, 6)).astype(np.float32)
    return ChronosDefragEngine(small_config()).fit(x), x


def _snapshot(reg):
    return (reg.count, reg.head, reg.latents.clone(), reg.ticks.clone(), reg.log_weights.clone())


def _same(a, b):
    return a[0] == b[0] and a[1] == b[1] and all(torch.equal(x, y) for x, y in zip(a[2:], b[2:]))


def test_fit_refuses_float32_overflow_naming_row_and_column():
    x = np.random.default_rng(1).standard_normal((16 * 8, 6))
    x[37, 2] = 1e39
    eng = ChronosDefragEngine(small_config())
    with pytest.raises(DataError, match=r"row 37, column 2"):
        eng.fit(x)
    cfg = small_config()
    cfg.data.features = [f"f{i}" for i in range(6)]
    with pytest.raises(DataError, match=r"row 37, column 'f2'"):
        ChronosDefragEngine(cfg).fit(pd.DataFrame(x, columns=cfg.data.features))


def test_predict_live_refuses_window_whose_latent_overflows(engine):
    eng, x = engine
    w = np.full((16, 6), 1e38, dtype=np.float32)
    with pytest.raises(DataError, match="non-finite latent"):
        eng.predict_live(w)
    assert np.isfinite(float(eng.predict_live(x[:16]).alpha_prediction))


def test_predict_batch_names_the_overflowing_window(engine):
    eng, x = engine
    ws = np.stack([x[i * 16:(i + 1) * 16] for i in range(5)])
    ws[3] = 1e38
    with pytest.raises(DataError, match="window 3 "):
        eng.predict_batch(ws, chunk=2)


@pytest.mark.parametrize("row, expect", [
    ("nan", "row 4 contains NaN"), ("zero", "row 4 has L2 norm 0"), ("huge", r"row 4 has L2 norm 2.8\d*e\+30"),
])
def test_update_registry_refuses_bad_latents_all_or_nothing(engine, row, expect):
    eng, x = engine
    z = eng.embed(x[:16 * 10])
    z[4] = {"nan": np.nan, "zero": 0.0, "huge": 1e30}[row]
    before = _snapshot(eng.registry)
    t = eng.train_end_tick + np.arange(10) * 16.0
    with pytest.raises(DataError, match=expect):
        eng.update_registry(z, t)
    assert _same(before, _snapshot(eng.registry))


@pytest.mark.parametrize("kind", ["nan", "repeat", "decrease", "inside_training", "before_last"])
def test_update_registry_refuses_bad_ticks_all_or_nothing(engine, kind):
    eng, x = engine
    z = eng.embed(x[:16 * 4])
    t0 = float(eng.train_end_tick)
    if kind == "before_last":
        eng.update_registry(z[:1], [t0 + 100])
    t = np.array([t0, t0 + 16, t0 + 32, t0 + 48])
    if kind == "nan":
        t[2] = np.nan
    elif kind == "repeat":
        t[2] = t[1]
    elif kind == "decrease":
        t[3] = t0 + 1
    elif kind == "inside_training":
        t -= 100
    before = _snapshot(eng.registry)
    err = LookAheadError if kind == "inside_training" else DataError
    with pytest.raises(err):
        eng.update_registry(z, t)
    assert _same(before, _snapshot(eng.registry))


def test_update_registry_good_rows_keep_confidence_finite(engine):
    eng, x = engine
    z = eng.embed(x[:16 * 3])
    eng.update_registry(z, eng.train_end_tick + np.arange(3) * 16.0)
    p = eng.predict_live(x[:16], eng.train_end_tick + 64)
    assert np.isfinite(p.regime_confidence) and np.isfinite(float(p.alpha_prediction))


def test_the_latent_check_names_the_first_bad_row_and_keeps_float64_precision():
    from chronoslib.numeric_checks import latent_matrix, unit_latents

    bad = np.ones((5, 3))
    bad[3, 2] = np.nan
    for check in (latent_matrix, unit_latents):
        with pytest.raises(DataError, match=r"contain NaN or inf \(first in row 3\)"):
            check(bad)
        with pytest.raises(DataError, match=r"non-empty \(N, D\) array, got shape \(0, 3\)"):
            check(np.zeros((0, 3)))
        with pytest.raises(DataError, match=r"got shape \(6,\)"):
            check(np.ones(6))
    z = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(unit_latents(z), z / np.linalg.norm(z, axis=1, keepdims=True), rtol=0, atol=1e-15)
    t = latent_matrix(z)
    assert t.dtype == torch.float32 and t.is_contiguous() and tuple(t.shape) == (4, 3)
