"""How the benchmarks measure: wall and CPU seconds of one call, extra peak memory, repeated-call summaries and
per-call CPU time of ``predict_live``. Knows nothing about what is benchmarked.

Extra memory is the rise of the process's peak RSS during one call (Linux: the peak is reset through
/proc/self/clear_refs before the call); elsewhere it falls back to the growth of ru_maxrss, which can read 0.
A sampling thread reads the resident size every few milliseconds during the same call as a cross-check
(``extra_mb_sampled``): it can miss a peak shorter than its interval but can never exceed the real one, so a
kernel peak far above it would show a broken reset rather than a real allocation.
"""

from __future__ import annotations

import ctypes
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _status_mb() -> dict[str, float]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmHWM", "VmRSS")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    """Hand freed heap pages back to the OS (glibc), so memory reused from earlier stages is not hidden."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


class _RssSampler:
    """Largest resident size seen by a background thread polling /proc/self/statm every ``interval`` s."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, _rss_mb(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):  # first read after one interval: short calls run undisturbed
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _RssSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())


def measure(fn: Callable[[], Any], sampled: dict[str, float] | None = None) -> tuple[Any, float, float, float]:
    """(result, wall seconds, CPU seconds of this process, extra peak MB) of one call of ``fn``.

    When ``sampled`` is a dict, its "extra_mb" is set to the sampling thread's view of the same rise.
    """
    _trim()
    exact = _reset_peak()
    rss0 = _rss_mb()
    before = _status_mb().get("VmRSS", 0.0) if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with _RssSampler() as smp:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_mb().get("VmHWM", 0.0) if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if sampled is not None:
        sampled["extra_mb"] = max(0.0, smp.peak - rss0)
    return out, dt, dc, max(0.0, peak - before)


def repeat(fn: Callable[[], Any], n: int) -> dict[str, Any]:
    """Median / min / p99 wall seconds, median CPU seconds and the largest extra peak MB over ``n`` calls.

    Single-threaded work on a shared machine: CPU seconds are what the code costs, wall seconds include
    time spent waiting for a core; both are reported. ``result`` is the last call's return value.
    """
    secs, cpu, mem, smp, out = [], [], [], [], None
    for _ in range(max(1, n)):
        s: dict[str, float] = {}
        out, dt, dc, mb = measure(fn, s)
        secs.append(dt)
        cpu.append(dc)
        mem.append(mb)
        smp.append(s["extra_mb"])
    a = np.asarray(secs)
    return {"median_s": float(np.median(a)), "min_s": float(a.min()), "p99_s": float(np.percentile(a, 99)),
            "cpu_s": float(np.median(cpu)), "runs": len(secs), "extra_mb": float(max(mem)),
            "extra_mb_sampled": float(max(smp)), "result": out}


def clean(d: dict[str, Any]) -> dict[str, Any]:
    """``repeat``'s summary without the call's result."""
    return {k: v for k, v in d.items() if k != "result"}


def peak_rss_mb() -> float:
    """Peak resident size of this process so far (ru_maxrss), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_live(engine: Any, w: np.ndarray, n_calls: int) -> np.ndarray:
    """Per-call CPU milliseconds (this thread) of ``n_calls`` predict_live calls cycling over windows w."""
    cpu = np.empty(n_calls)
    for i in range(n_calls):
        c0 = time.thread_time()
        engine.predict_live(w[i % len(w)])
        cpu[i] = (time.thread_time() - c0) * 1e3
    return cpu


def spec_config() -> Any:
    """The reference benchmark setting: 30 encoder + 20 predictor epochs, blocks of 64 x 6, batch 32."""
    from .config import DefragConfig

    cfg = DefragConfig()
    cfg.optim.encoder_epochs, cfg.optim.predictor_epochs, cfg.optim.batch_size = 30, 20, 32
    cfg.encoder.block_len, cfg.encoder.input_dim, cfg.device = 64, 6, "cpu"
    return cfg
