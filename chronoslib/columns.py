"""DataFrame columns: which hold numbers, the time, ground-truth labels or prices, and which become features.

Detection looks at dtypes, names and (for text) whether the cells parse as numbers or dates. ``feature_columns``
is the one choice of feature columns: ``data.build_dataset``, ``features.raw_features`` (a live window of raw
rows) and the engine on a DataFrame all call it, so a table is read the same way at training and at prediction
time; ``frame_values`` takes those columns out as a float array. Knows nothing about files, missing-value
policies, feature engineering or models.

>>> df = pd.DataFrame({"date": ["2024-01-02", "2024-01-03"], "Close": [10.0, 11.0], "regime": [0, 1]})
>>> detect_timestamp_column(df), detect_label_column(df), detect_price_columns(df)
('date', 'regime', {'price': 'Close'})
>>> feature_columns(df, exclude=("date", "regime"))
['Close']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["numeric_like", "numeric_columns", "detect_timestamp_column", "detect_label_column",
           "detect_price_columns", "market_columns", "feature_columns", "frame_values"]

_LABEL_NAMES = ("regime", "regimes", "label", "labels", "true_regime", "regime_label", "ground_truth", "state")
_TS_NAMES = ("timestamp", "time", "date", "datetime", "ts", "date_time", "time_stamp", "dt")
# Market-data roles by name, tried in this order (a column takes the first role it matches). Names are compared
# lower-case with every run of other characters as "_" ("Adj. Close" -> adj_close, "<TICKVOL>" -> tickvol,
# "AAPL.Close" -> aapl_close), so a ticker prefix and a "_price" suffix are allowed.
_MARKET_PATTERNS: dict[str, re.Pattern[str]] = {
    "adj_close": re.compile(r"(^|_)((adj|adjusted)_?(close|closing)(_price)?|close_adj(usted)?|adjusted)$"),
    "volume": re.compile(r"(^|_)(volume|vol|tickvol|tick_volume|real_volume|qty|quantity)$|^volume_[a-z0-9]+$|"
                         r"^size$"),
    "open": re.compile(r"(^|_)(open|opening)(_price)?$"),
    "high": re.compile(r"(^|_)(high|hi)(_price)?$"),
    "low": re.compile(r"(^|_)(low|lo)(_price)?$"),
    "close": re.compile(r"(^|_)(close|closing|last|px_last|settle|settlement|price|mid)(_price)?$"),
}
_LETTERS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}  # only with h, l and c present


# ---------------------------------------------------------------------------------------------------- detection
def numeric_like(s: pd.Series, min_share: float = 0.5) -> bool:
    """True for a numeric column, or a text column whose non-empty cells are at least ``min_share`` numbers."""
    if pd.api.types.is_bool_dtype(s):
        return False
    if pd.api.types.is_numeric_dtype(s):
        return True
    if pd.api.types.is_datetime64_any_dtype(s) or not (pd.api.types.is_object_dtype(s)
                                                       or pd.api.types.is_string_dtype(s)):
        return False
    vals = s.dropna()
    vals = vals[vals.astype(str).str.strip() != ""]
    if len(vals) == 0:
        return False
    return float(pd.to_numeric(vals.astype(str).str.strip(), errors="coerce").notna().mean()) >= min_share


def numeric_columns(df: pd.DataFrame) -> list[str]:
    """Columns usable as features: numeric dtype, or text whose non-empty cells are mostly (>= 50 %) numbers, so
    its bad cells are reported rather than the column silently dropped. Booleans and dates are excluded; order
    is kept."""
    return [str(c) for c in _numeric_labels(df)]


def _numeric_labels(df: pd.DataFrame) -> list[Any]:
    """``numeric_columns`` as the frame's own labels (a frame made from an array has integer labels)."""
    return [c for c in df.columns if numeric_like(df[c])]


def _parses_as_dates(s: pd.Series, min_share: float = 0.9) -> bool:
    vals = s.dropna().astype(str).str.strip()
    vals = vals[vals != ""].head(200)
    if len(vals) == 0 or pd.to_numeric(vals, errors="coerce").notna().mean() > 0.5:
        return False
    parsed = pd.to_datetime(vals, errors="coerce", format="mixed", utc=True)  # utc: mixed offsets still detect
    return float(parsed.notna().mean()) >= min_share


def detect_timestamp_column(df: pd.DataFrame) -> str | None:
    """The column that holds the time of each row, or None.

    Order: a datetime-typed column; a column named like a time (timestamp, time, date, datetime, ts, ...) whose
    values are dates or numbers; a text column whose values parse as dates.
    """
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            return str(c)
    for c in df.columns:
        low = str(c).strip().lower()
        if low in _TS_NAMES or low.endswith(("_time", "_date", "_ts", "timestamp")):
            if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
                return str(c)
            if _parses_as_dates(df[c]):
                return str(c)
    for c in df.columns:
        if (pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])) and _parses_as_dates(df[c]):
            return str(c)
    return None


def detect_label_column(df: pd.DataFrame) -> str | None:
    """A ground-truth regime column found by name (regime, label, state, ...), or None; kept out of features."""
    for c in df.columns:
        if str(c).strip().lower() in _LABEL_NAMES:
            return str(c)
    return None


def _market_roles(df: pd.DataFrame) -> dict[str, list[str]]:
    """{role: numeric columns named like it, in table order} for adj_close / volume / open / high / low / close."""
    norm = {str(c): re.sub(r"[^0-9a-z]+", "_", str(c).strip().lower()).strip("_") for c in df.columns}
    letters = {n for n in norm.values() if n in _LETTERS}
    out: dict[str, list[str]] = {r: [] for r in _MARKET_PATTERNS}
    for col, n in norm.items():
        role = next((r for r, pat in _MARKET_PATTERNS.items() if pat.search(n)), None)
        if role is None and n in _LETTERS and {"h", "l", "c"} <= letters:   # o/h/l/c/v bars (exchange APIs)
            role = _LETTERS[n]
        if role is not None and numeric_like(df[col]):
            out[role].append(col)
    return out


def detect_price_columns(df: pd.DataFrame) -> dict[str, str]:
    """Source columns for feature engineering found by name: {'price', 'open', 'high', 'low', 'volume'}, each
    present only when found.

    Any case and punctuation: Open / High / Low / Close / Adj Close / Volume, adj_close, "Adj. Close",
    close_price, last, px_last, price, vol, "<TICKVOL>", a ticker prefix (AAPL.Close), o/h/l/c/v. The price is
    the adjusted close when there is one (returns then include dividends and splits), else the close /
    price / last column.

    >>> detect_price_columns(pd.DataFrame({"Date": ["2024-01-02"], "Open": [1.0], "HIGH": [2.0], "low": [0.5],
    ...                                    "Close": [1.5], "Adj Close": [1.4], "vol": [10]}))
    {'price': 'Adj Close', 'open': 'Open', 'high': 'HIGH', 'low': 'low', 'volume': 'vol'}
    """
    found = _market_roles(df)
    out: dict[str, str] = {}
    price = found["adj_close"] or found["close"]
    if price:
        out["price"] = price[0]
    for role in ("open", "high", "low", "volume"):
        if found[role]:
            out[role] = found[role][0]
    return out


def market_columns(df: pd.DataFrame) -> list[str]:
    """Every numeric column named like a price level (open / high / low / close / adjusted close / price) or a
    traded volume, in table order: the columns a default recipe never passes through as features."""
    found = {c for cols in _market_roles(df).values() for c in cols}
    return [str(c) for c in df.columns if str(c) in found]


# ---------------------------------------------------------------------------------------------------- selection
def feature_columns(df: pd.DataFrame, chosen: Sequence[Any] = (), exclude: Iterable[Any] = ()) -> list[Any]:
    """The columns that become features: ``chosen`` as given (an empty choice means all), else every numeric
    column (``numeric_columns``) not in ``exclude`` (the timestamp and label columns), in table order.

    Whether chosen columns exist is the caller's check (each names its own context); ``frame_values`` does it.
    """
    if len(chosen):
        return list(chosen)
    skip = {c for c in exclude if c}
    # excluded columns are not tested: a 1M-row text timestamp column took 0.7 s of pd.to_numeric
    return [c for c in df.columns if c not in skip and str(c) not in skip and numeric_like(df[c])]


def frame_values(df: pd.DataFrame, cols: Sequence[Any], what: str = "data") -> np.ndarray:
    """(T, len(cols)) float64 of the named columns, NaN where a cell is missing (the caller decides about NaN).

    ``DataError`` naming absent columns, or a column whose cells are not numbers.
    """
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {missing}; the feature columns are {list(cols)}, the data has "
                        f"{list(df.columns)}")
    out = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        try:
            out[:, j] = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as e:
            raise DataError(f"{what}: feature column {c!r} must be numeric ({e})") from None
    return out
