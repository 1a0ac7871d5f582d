"""Shared fixtures: single-threaded torch (2-core machines stall otherwise) and small synthetic data."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from chronoslib import ChronosDefragEngine, DefragConfig  # noqa: E402
from chronoslib.synthetic import make_regime_series  # noqa: E402

torch.set_num_threads(1)


def small_config(input_dim: int = 6, block_len: int = 16, epochs: int = 3, seed: int = 0) -> DefragConfig:
    cfg = DefragConfig()
    cfg.seed = seed
    cfg.encoder.input_dim = input_dim
    cfg.encoder.block_len = block_len
    cfg.encoder.hidden_dim = 16
    cfg.encoder.latent_dim = 8
    cfg.predictor.hidden_dim = 16
    cfg.predictor.forecast_dim = 4
    cfg.optim.encoder_epochs = epochs
    cfg.optim.predictor_epochs = 2
    cfg.optim.batch_size = 16
    return cfg


@pytest.fixture(scope="session")
def regime_series():
    """4096 ticks, 3 regimes, 6 features."""
    return make_regime_series(64 * 64, n_features=6, n_regimes=3, mean_duration=256, seed=11)


@pytest.fixture(scope="session")
def small_engine():
    """A tiny engine fitted on random data (fast; for API / persistence / error tests)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16 * 40, 6)).astype(np.float32)
    return ChronosDefragEngine(small_config()).fit(x), x


@pytest.fixture
def spawn_safe_main(monkeypatch):
    """Processes started with multiprocessing's spawn re-run ``__main__`` from its file; after an AppTest in the
    same pytest process that is app.py, so the children would start the app. An empty ``__main__`` (no file)
    makes them import only what their target needs."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
