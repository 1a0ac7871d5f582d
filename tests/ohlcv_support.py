"""A realistic daily OHLCV table for tests: Date / Open / High / Low / Close / Adj Close / Volume.

Business-day bars with an upward-drifting price, volatility regimes (calm / turbulent, Markov switching, each
about 120 trading days long) with GARCH(1, 1) clustering inside them, an adjusted close a little below the
close (dividends), and a volume that trends up over the years and rises in turbulent spells. The raw price
levels and the raw volume trend; the engineered returns, ranges and relative volume do not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_ohlcv(n: int = 2520, seed: int = 0, start: str = "2005-01-03") -> tuple[pd.DataFrame, np.ndarray]:
    """(table, regime (n,) 0 calm / 1 turbulent). ``n`` trading days from ``start``; no label column."""
    rng = np.random.default_rng(seed)
    regime = np.zeros(n, dtype=int)
    for t in range(1, n):                                   # Markov switching, mean stay 120 days
        regime[t] = 1 - regime[t - 1] if rng.random() < 1 / 120 else regime[t - 1]
    base = np.where(regime == 1, 0.025, 0.007)              # daily return sd by regime
    r, h = np.empty(n), base[0] ** 2
    for t in range(n):                                      # GARCH(1, 1) around the regime's level
        h = base[t] ** 2 * 0.1 + 0.1 * (r[t - 1] ** 2 if t else h) + 0.8 * h
        r[t] = 0.0004 + np.sqrt(h) * rng.standard_normal()
    close = 50.0 * np.exp(np.cumsum(r))
    gap = np.exp(0.3 * np.sqrt(h) * rng.standard_normal(n))
    open_ = np.concatenate([[close[0]], close[:-1]]) * gap
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.standard_normal(n)) * base * 0.5)
    low = bottom * np.exp(-np.abs(rng.standard_normal(n)) * base * 0.5)
    adj = close * np.exp(-0.00008 * (n - 1 - np.arange(n)))  # dividends: the further back, the lower
    volume = 1e6 * np.exp(0.001 * np.arange(n)) * (1 + 1.5 * regime) * rng.lognormal(0, 0.3, n)
    df = pd.DataFrame({"Date": pd.bdate_range(start, periods=n).strftime("%Y-%m-%d"),
                       "Open": open_.round(4), "High": high.round(4), "Low": low.round(4), "Close": close.round(4),
                       "Adj Close": adj.round(4), "Volume": volume.round().astype(np.int64)})
    return df, regime
