"""Live-latency measurement shared by the benchmark command and the app's latency panel.

``measure_live_latency`` calls ``engine.predict_live`` repeatedly (after a warm-up that is excluded, as in the
reference benchmark) and summarises wall time per call and per stage, including the per-call remainder that no
stage accounts for ("overhead"). ``compare`` turns a measured figure and a reference figure into an honest
delta (worse is always shown as worse) and ``busy_reasons`` says why a measurement on this server may be slow.
``span_windows`` cuts the live windows a measurement cycles over from a span of ticks, and
``measure_batch_throughput`` times one batched ``predict_batch`` call over them for comparison.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

# ChronosDefrag 0.1.0's published reference figures (Apple M2 Pro CPU, PyTorch 2.3), for comparison panels.
REFERENCE_LABEL = "ChronosDefrag 0.1.0 reference figures (Apple M2 Pro, PyTorch 2.3)"
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
    overhead = np.empty(n_calls)          # per call: total minus the sum of its stages
    stages: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for i in range(n_calls):
        p = engine.predict_live(w[i % len(w)])
        samples[i] = p.system_latency_ms
        overhead[i] = p.system_latency_ms - float(sum(p.stage_latency_ms.values()))
        for k, v in p.stage_latency_ms.items():
            stages.setdefault(k, []).append(v)
    wall = time.perf_counter() - t0
    return {
        "n_calls": n_calls, "p50_ms": float(np.percentile(samples, 50)), "p95_ms": float(np.percentile(samples, 95)),
        "p99_ms": float(np.percentile(samples, 99)), "mean_ms": float(samples.mean()), "qps": n_calls / wall,
        "samples_ms": samples.tolist(), "stage_ms": {k: float(np.median(v)) for k, v in stages.items()},
        "overhead_ms": float(np.median(overhead)),
    }


def span_windows(features: np.ndarray, block_len: int, max_windows: int = 256) -> np.ndarray:
    """Up to ``max_windows`` live windows (M, block_len, F) from a span (T, F), block_len // 4 ticks apart."""
    from .replay import window_starts

    starts = window_starts(int(np.asarray(features).shape[0]), block_len, max(1, block_len // 4))
    return np.stack([features[s:s + block_len] for s in starts[:max_windows]])


def measure_batch_throughput(engine: Any, windows: np.ndarray, timestamp: float) -> dict[str, Any]:
    """Windows per second of one ``engine.predict_batch`` call over windows (M, L, F) queried at ``timestamp``."""
    w = np.asarray(windows, dtype=np.float32)
    t0 = time.perf_counter()
    engine.predict_batch(w, timestamp=float(timestamp))
    return {"batch_windows": int(len(w)), "batch_windows_per_s": len(w) / (time.perf_counter() - t0)}


def stages_with_overhead(stage_ms: dict[str, float], overhead_ms: float) -> dict[str, float]:
    """The per-stage medians plus an "overhead" entry: the median per-call remainder total - sum(stages), i.e.
    Python dispatch, input checks and building the result, which no stage timer covers.

    >>> stages_with_overhead({"encode": 1.0, "query": 0.5}, 0.25)
    {'encode': 1.0, 'query': 0.5, 'overhead': 0.25}
    """
    out = dict(stage_ms)
    out["overhead"] = max(0.0, float(overhead_ms))
    return out


def compare(measured: float, reference: float, higher_is_better: bool, unit: str = "") -> tuple[str, str]:
    """(delta text, st.metric delta_color) for a measured figure against a reference figure.

    The delta's sign is the figure's own direction (measured - reference), so the arrow points the way the
    number moved; the colour says whether that is better: latency (lower is better) uses "inverse", QPS
    (higher is better) "normal". A worse figure is therefore always red, never a green up-arrow.

    >>> compare(92.0, 850.0, higher_is_better=True, unit=" QPS")
    ('-758 QPS (0.11×)', 'normal')
    >>> compare(7.5, 2.8, higher_is_better=False, unit=" ms")
    ('+4.70 ms (2.68×)', 'inverse')
    """
    if not (np.isfinite(measured) and np.isfinite(reference)) or reference == 0:
        return "no reference", "off"
    d = measured - reference
    num = f"{d:+,.0f}" if abs(reference) >= 100 else f"{d:+.2f}"
    return f"{num}{unit} ({measured / reference:.2f}×)", "normal" if higher_is_better else "inverse"


def busy_reasons(load1: float | None = None, cpus: int | None = None, umap_warming: bool = False,
                 training: bool = False, max_load_per_cpu: float = 0.75) -> list[str]:
    """Why latency measured now may be inflated (empty when the server looks idle). ``load1`` defaults to
    ``os.getloadavg()[0]`` and ``cpus`` to ``os.cpu_count()``.

    >>> busy_reasons(load1=3.0, cpus=2)
    ['load average 3.00 on 2 CPU cores']
    """
    reasons = []
    if umap_warming:
        reasons.append("UMAP warm-up running in this server")
    if training:
        reasons.append("a training job running in this server")
    if load1 is None:
        try:
            load1 = os.getloadavg()[0]
        except (OSError, AttributeError):   # not available on every platform
            load1 = None
    cpus = cpus or os.cpu_count() or 1
    if load1 is not None and load1 > max_load_per_cpu * cpus:
        reasons.append(f"load average {load1:.2f} on {cpus} CPU cores")
    return reasons
