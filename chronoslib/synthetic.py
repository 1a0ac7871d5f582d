"""Synthetic Markov-switching regime data with ground-truth labels.

Each regime k has its own drift mu_k, volatility sigma_k and lag-1 autocorrelation phi_k; features follow
x_t = mu_k + phi_k * (x_{t-1} - mu_k) + sigma_k * A eps_t  with a fixed cross-feature mixing A. The regime
chain is persistent (mean duration ``mean_duration`` ticks) so regimes recur at scattered times: exactly the
case the pseudo-timeline is meant to defragment. Used by the tests and to make ``sample_data/``.

``regime_latents`` skips the encoder: unit latents shaped like a trained encoder's, for benchmarks and tests of
the orderings and the registry at sizes no encoder run reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .metrics import block_majority

# (drift, volatility, lag-1 autocorrelation) per regime: calm trend, turbulent mean-reversion, choppy down.
DEFAULT_REGIMES = ((0.05, 0.5, 0.6), (0.0, 1.6, -0.4), (-0.04, 0.9, 0.0), (0.02, 1.1, 0.85))


@dataclass
class RegimeSeries:
    data: np.ndarray        # (T, F) float32 features
    labels: np.ndarray      # (T,) int regime id per tick
    prices: np.ndarray      # (T,) a price path: exp of the cumulative first feature scaled to returns
    params: tuple           # the (drift, vol, autocorr) of each regime used


def make_regime_series(n_ticks: int = 4096, n_features: int = 6, n_regimes: int = 3, mean_duration: int = 256,
                       seed: int = 0, mix_per_regime: bool = False) -> RegimeSeries:
    """Generate a regime-switching series; deterministic for a given ``seed``.

    mix_per_regime: each regime also gets its own cross-feature mixing (regimes then differ in scale, in
    autocorrelation and in cross-feature correlation); off, every regime shares one mixing A (the default series
    is unchanged by the option's existence: its extra draws come after all the default ones).
    """
    if not 1 <= n_regimes <= len(DEFAULT_REGIMES):
        raise ValueError(f"n_regimes must be in [1, {len(DEFAULT_REGIMES)}], got {n_regimes}")
    if n_ticks < 1 or n_features < 1 or mean_duration < 1:
        raise ValueError("n_ticks, n_features and mean_duration must be >= 1")
    rng = np.random.default_rng(seed)
    params = DEFAULT_REGIMES[:n_regimes]
    # Regime path: geometric durations, next regime uniform among the others.
    labels = np.empty(n_ticks, dtype=np.int64)
    t, k = 0, int(rng.integers(n_regimes))
    while t < n_ticks:
        d = int(rng.geometric(1.0 / mean_duration))
        labels[t:t + d] = k
        t += d
        if n_regimes > 1:
            k = int((k + rng.integers(1, n_regimes)) % n_regimes)
    mix = np.eye(n_features) + 0.3 * rng.standard_normal((n_features, n_features)) / np.sqrt(n_features)
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    raw = rng.standard_normal((n_ticks, n_features))
    eps = raw @ mix.T
    if mix_per_regime:
        for k in range(n_regimes):  # regime k: its own strongly correlated mixing, rows unit norm
            mk = np.eye(n_features) + 0.9 * rng.standard_normal((n_features, n_features)) / np.sqrt(n_features)
            mk /= np.linalg.norm(mk, axis=1, keepdims=True)
            eps[labels == k] = raw[labels == k] @ mk.T
    mu = np.array([p[0] for p in params])[labels]
    sig = np.array([p[1] for p in params])[labels]
    phi = np.array([p[2] for p in params])[labels]
    x = np.empty((n_ticks, n_features))
    prev = np.zeros(n_features)
    for i in range(n_ticks):  # AR(1) recursion: inherently sequential, O(T F)
        prev = mu[i] + phi[i] * (prev - mu[i]) + sig[i] * eps[i]
        x[i] = prev
    prices = 100.0 * np.exp(np.cumsum(0.002 * x[:, 0]))
    return RegimeSeries(data=x.astype(np.float32), labels=labels, prices=prices, params=params)


def block_labels(labels: np.ndarray, block_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Majority regime per non-overlapping block and the share of the block it covers: ((N,), (N,))."""
    return block_majority(labels, block_len, return_share=True)


def regime_latents(n: int, dim: int = 32, n_regimes: int = 4, mean_duration: int = 40, spread: float = 0.35,
                   seed: int = 0, return_labels: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Unit latents (N, D) shaped like a trained encoder's: persistent regimes, each a direction on the sphere,
    with a slowly wandering AR(1) offset inside the regime and a little per-block noise. float32.
    return_labels: also the regime of each block (N,) int64."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_regimes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    durations = rng.geometric(1.0 / mean_duration, size=n // 2 + 2)
    seq = rng.integers(0, n_regimes, size=durations.shape[0])
    lab = np.repeat(seq, durations)[:n]
    if lab.shape[0] < n:
        lab = np.concatenate([lab, np.full(n - lab.shape[0], seq[-1])])
    # AR(1) wander, computed block-wise with a geometric kernel would be exact; a cumulative sum of innovations
    # with periodic damping is close enough and O(N * D).
    innov = rng.standard_normal((n, dim)).astype(np.float32) * 0.15
    walk = np.cumsum(innov, axis=0)
    walk -= np.repeat(walk[::64], 64, axis=0)[:n]               # restart the walk every 64 blocks: bounded drift
    x = centres[lab] + spread * walk / math.sqrt(dim) * 4 + 0.05 * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (x.astype(np.float32), lab.astype(np.int64)) if return_labels else x.astype(np.float32)
