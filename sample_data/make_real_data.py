"""Regenerate the shipped real market series from a data file inside the `arch` PyPI package (works offline).

    pip install arch            # listed in requirements-dev.txt
    python sample_data/make_real_data.py

Writes sample_data/wti_crude_daily.csv: the daily West Texas Intermediate (WTI, Cushing, Oklahoma) crude oil
spot price in US dollars per barrel, 1986-01-02 .. 2019-01-03, with the 290 days without a quote (holidays)
left out. Source: U.S. Energy Information Administration, series RWTC, as published by FRED (series
DCOILWTICO), shipped in arch's ``arch/data/wti/wti.csv.gz``. EIA data are in the public domain. Deterministic:
the same arch data file gives the same CSV byte for byte. See sample_data/README.md.
"""

from __future__ import annotations

import os

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "wti_crude_daily.csv")


def load_wti() -> pd.DataFrame:
    """(T, 2) table with columns date (YYYY-MM-DD) and price (USD per barrel), holidays dropped."""
    try:
        from arch.data import wti
    except ImportError as exc:  # a clear message instead of a traceback for a missing dev dependency
        raise SystemExit("this script needs the `arch` package: pip install arch") from exc
    raw = wti.load()                                   # DatetimeIndex 'Date', column DCOILWTICO (NaN on holidays)
    s = raw["DCOILWTICO"].dropna()
    out = pd.DataFrame({"date": s.index.strftime("%Y-%m-%d"), "price": s.to_numpy().round(2)})
    if not (out["price"] > 0).all() or out["date"].duplicated().any() or not out["date"].is_monotonic_increasing:
        raise SystemExit("unexpected WTI data: prices must be positive and dates unique and increasing")
    return out


if __name__ == "__main__":
    df = load_wti()
    df.to_csv(OUT, index=False, float_format="%.2f")
    print(f"wrote {OUT}: {len(df)} rows, {df['date'].iloc[0]} .. {df['date'].iloc[-1]}, "
          f"{os.path.getsize(OUT) / 1024:.0f} KiB")
