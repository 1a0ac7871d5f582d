"""Live-latency measurement shared by the benchmark command and the app's latency panel.

``measure_live_latency`` calls ``engine.predict_live`` repeatedly (after a warm-up that is excluded, as in the
spec's benchmark) and summarises wall time per call and per stage.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

# The spec's published figures (Apple M2 Pro CPU, PyTorch 2.3), for comparison panels.
SPEC_FIGURES = {"predict_live_mean_ms": 1.1, "predict_live_p99_ms": 2.8, "qps": 850.0,
                "encoder_fit_30_epochs_48_blocks_s": 4.2, "pseudo_timeline_48_blocks_ms": 0.3,
                "peak_memory_mb": 180.0}


def measure_live_latency(engine: Any, windows: np.ndarray, n_calls: int = 500, warmup: int = 5) -> dict[str, Any]:
    """Time ``n_calls`` predict_live calls cycling over windows (M, L, F).

    Returns p50 / p95 / p99 / mean in ms, QPS (calls per second of wall time over the timed loop), the
    per-call samples and the median of each stage in ``LivePrediction.stage_latency_ms``.
    """
    w = np.asarray(windows, dtype=np.float32)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[0] == 0:
        raise ValueError(f"windows must be (M, block_len, F) with M >= 1, got shape {w.shape}")
    if n_calls < 1:
        raise ValueError(f"n_calls must be >= 1, got {n_calls}")
    for i in range(warmup):
        engine.predict_live(w[i % len(w)])
    samples = np.empty(n_calls)
    stages: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for i in range(n_calls):
        p = engine.predict_live(w[i % len(w)])
        samples[i] = p.system_latency_ms
        for k, v in p.stage_latency_ms.items():
            stages.setdefault(k, []).append(v)
    wall = time.perf_counter() - t0
    return {
        "n_calls": n_calls, "p50_ms": float(np.percentile(samples, 50)), "p95_ms": float(np.percentile(samples, 95)),
        "p99_ms": float(np.percentile(samples, 99)), "mean_ms": float(samples.mean()), "qps": n_calls / wall,
        "samples_ms": samples.tolist(), "stage_ms": {k: float(np.median(v)) for k, v in stages.items()},
    }
