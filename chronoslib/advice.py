"""Advice on turning a table into model input: the default feature recipe, a stationarity check, a block length
from the timestamps' frequency and the minimum-blocks warning.

The Data page preselects ``default_recipe`` when a table is loaded and the ``train`` command uses it when no
``--features`` / ``--transforms`` are given, so a browser user and a command-line user start from the same
features. ``stationarity`` says when a chosen feature drifts over the series (and why that spoils the
manifold); ``suggest_block_len`` and ``min_blocks_advice`` size the blocks. Pure functions of a DataFrame or
arrays: knows nothing about files, widgets or models.

>>> df = pd.DataFrame({"Date": pd.date_range("2020-01-01", periods=5, freq="B"), "Close": [1.0, 2, 3, 4, 5],
...                    "Volume": [9, 8, 7, 6, 5]})
>>> r = default_recipe(df)
>>> r.feature_cols, r.transforms, r.price_col, r.volume_col
([], ['log_return', 'abs_return', 'rel_volume', 'rolling_vol'], 'Close', 'Volume')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .columns import detect_label_column, detect_price_columns, detect_timestamp_column, feature_columns, market_columns
from .config import EncoderConfig
from .features import DEFAULT_VOL_WINDOW

__all__ = ["Recipe", "default_recipe", "Stationarity", "stationarity", "BlockLenSuggestion", "suggest_block_len",
           "BlockAdvice", "min_blocks_advice", "MIN_BLOCKS", "MIN_BLOCK_LEN", "DRIFT_SEGMENTS", "DRIFT_SHARE"]

MIN_BLOCKS = 50          # fewer training blocks make too sparse a manifold to read regimes from
MIN_BLOCK_LEN = 8        # shorter blocks hold too few ticks for the encoder's dilated convolutions (1, 2, 4)
DRIFT_SEGMENTS = 8       # the stationarity check compares the means of this many consecutive segments
DRIFT_SHARE = 0.5        # ... and flags a feature when they explain at least this share of its variance
MAX_VALUES = 200_000     # longer series are read with a stride (every k-th value)
DEFAULT_BLOCK_LEN = EncoderConfig().block_len


# ---------------------------------------------------------------------------------------------------- recipe
@dataclass(frozen=True)
class Recipe:
    """A feature recipe: ``build_dataset`` keyword arguments (``build_args()``) and why they were chosen."""
    timestamp_col: str
    label_col: str
    feature_cols: list[str]
    transforms: list[str]
    price_col: str = ""
    high_col: str = ""
    low_col: str = ""
    volume_col: str = ""
    vol_window: int = DEFAULT_VOL_WINDOW
    reason: str = ""
    excluded: list[str] = field(default_factory=list)   # price-level / raw-volume columns kept out of features

    def build_args(self) -> dict[str, Any]:
        """Keyword arguments for ``data.build_dataset`` (empty source roles as None: detected when needed)."""
        return {"timestamp_col": self.timestamp_col, "label_col": self.label_col,
                "feature_cols": list(self.feature_cols), "transforms": list(self.transforms),
                "price_col": self.price_col or None, "high_col": self.high_col or None,
                "low_col": self.low_col or None, "volume_col": self.volume_col or None,
                "vol_window": self.vol_window}


def default_recipe(df: pd.DataFrame) -> Recipe:
    """The features a table gets when the user has chosen none. The rule:

    1. The timestamp and the ground-truth label (detected) are never features.
    2. Columns named like market data (``columns.market_columns``: open / high / low / close / adjusted close /
       price levels and raw volume) are never passed through: a price level or a raw volume trends over the
       years, and a trending feature makes the encoder learn eras instead of regimes.
    3. Market data -- a price (adjusted close preferred) with bars (open / high / low) or a volume, or a price
       that is the table's only numeric column -- gets stationary engineered features: ``log_return``,
       ``abs_return``, ``hl_range`` (when high and low exist), ``rel_volume`` (volume relative to its own
       rolling mean, when a volume exists) and ``rolling_vol``; any other numeric column is passed through.
    4. A lone price column next to ready-made numeric features (the layout of the shipped synthetic sample:
       f0..f5 and a price) keeps those features and charts the price; no returns are added, so the file
       gives the shipped sample's recipe and its model.
    5. Without a price, a high / low pair gives ``hl_range`` and a volume ``rel_volume``; every other numeric
       column is passed through (a table of plain numbers keeps every numeric column).
    """
    ts, lab = detect_timestamp_column(df) or "", detect_label_column(df) or ""
    found = detect_price_columns(df)
    market = [c for c in market_columns(df) if c not in (ts, lab)]
    numeric = [str(c) for c in feature_columns(df, exclude=(ts, lab))]
    others = [c for c in numeric if c not in market]
    bars = "high" in found and "low" in found
    price, volume = found.get("price", ""), found.get("volume", "")
    if price and (bars or volume or "open" in found or not others):
        transforms = ["log_return", "abs_return", *(["hl_range"] if bars else []),
                      *(["rel_volume"] if volume else []), "rolling_vol"]
        why = (f"price column {price!r} detected: stationary features engineered from it; price levels and raw "
               f"volume ({', '.join(map(repr, market))}) are not features")
    elif price:
        transforms = []
        why = (f"{price!r} is charted as the price; the other numeric columns are the features (tick feature "
               "engineering to add returns of the price)")
    else:
        transforms = [*(["hl_range"] if bars else []), *(["rel_volume"] if volume else [])]
        why = "no price column detected: " + ("the numeric columns are the features" if not market else
                                               f"{', '.join(map(repr, market))} only through engineered features")
    if not transforms and not others:   # numbers only and all of them named like market data: nothing better
        others, market = numeric, []
    return Recipe(timestamp_col=ts, label_col=lab, feature_cols=others, transforms=transforms, price_col=price,
                  high_col=found.get("high", "") if bars else "", low_col=found.get("low", "") if bars else "",
                  volume_col=volume, reason=why, excluded=market)


# ---------------------------------------------------------------------------------------------------- stationarity
@dataclass(frozen=True)
class Stationarity:
    """Verdict of ``stationarity``: ``trending`` when ``share`` >= ``DRIFT_SHARE``; ``why`` says what it means."""
    trending: bool
    share: float          # variance share of the segment means (between-segment / total), in [0, 1]
    segments: int
    why: str


WHY_TRENDING = ("A trending feature makes the encoder learn eras instead of regimes: blocks differ by when they "
                "are rather than by how the series behaves, the 'regimes' become periods of the series and the "
                "pseudo-timeline comes out nearly chronological. Use its change instead (a log return, a volume "
                "relative to its rolling mean); if it is a slow regime that lasts a large part of the span (a "
                "volatility level held for months), more history lets it recur.")


def stationarity(x: np.ndarray, segments: int = DRIFT_SEGMENTS, threshold: float = DRIFT_SHARE) -> Stationarity:
    """Does ``x`` (T,) drift over the series? Cheap (one pass), scale-free and independent of T.

    The finite values are cut into ``segments`` consecutive equal parts (the last ``T mod segments`` dropped);
    ``share`` = variance of the part means / variance of all values (the eta-squared of a one-way ANOVA). A
    random walk or a trend puts most of the variance between the parts (share near 1); white noise, returns
    and mean-reverting series keep it within them (share near 0). Flagged at ``share >= threshold`` (0.5:
    more than half the variance is "which eighth of the series"). Not a significance test: at 1M rows a tiny
    drift is significant but harmless; this measures how much of the feature is era. Measured false-alarm and
    detection rates: docs/data.md. Fewer than ``2 * segments`` values or a constant feature: not trending.
    Beyond ``MAX_VALUES`` values every k-th is read (1M rows: every 5th), which moves ``share`` by < 0.01.

    >>> t = np.arange(2000.0)
    >>> stationarity(t).trending, stationarity(np.sin(t)).trending
    (True, False)
    """
    v = np.asarray(x).ravel()
    if len(v) > MAX_VALUES:                                  # a stride keeps each part's mean and spread (cheap)
        v = v[:: -(-len(v) // MAX_VALUES)]
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        v = v[np.isfinite(v)]
    m = len(v) // segments
    if m < 2:
        return Stationarity(False, 0.0, segments, f"too short to judge ({len(v)} values)")
    parts = v[: m * segments].reshape(segments, m)          # (segments, m)
    total = float(parts.var())
    share = float(parts.mean(axis=1).var() / total) if total > 0 else 0.0
    trending = share >= threshold
    why = (f"{share:.0%} of its variance lies between the {segments} consecutive parts of the series: it "
           f"trends. {WHY_TRENDING}" if trending else
           f"{share:.0%} of its variance lies between the {segments} consecutive parts of the series: no trend")
    return Stationarity(trending, share, segments, why)


# ---------------------------------------------------------------------------------------------------- block length
@dataclass(frozen=True)
class BlockLenSuggestion:
    block_len: int
    period: str            # "an hour", "a month", ... ("" when no calendar period applies)
    reason: str


# (name, numpy unit, units per bin): the calendar periods a block may span, shortest first
_PERIODS = (("a second", "s", 1), ("a minute", "m", 1), ("an hour", "h", 1), ("a day", "D", 1),
            ("a week", "D", 7), ("a month", "M", 1), ("a quarter", "M", 3), ("a year", "Y", 1))
MIN_TICKS_PER_PERIOD = 12   # a block spans the shortest calendar period holding at least this many ticks


def _ticks_per_bin(ts: np.ndarray, unit: str, k: int) -> float:
    """Median ticks per calendar bin (``k`` ``unit``s), the first and last (partial) bins left out."""
    codes = ts.astype(f"datetime64[{unit}]").astype(np.int64)
    if unit == "D" and k == 7:
        codes = (codes + 3) // 7                              # weeks from Monday (1970-01-01 was a Thursday)
    elif k > 1:
        codes = codes // k
    cuts = np.flatnonzero(np.diff(codes)) + 1                 # (bins - 1,) first tick of each new bin
    counts = np.diff(np.concatenate([[0], cuts, [len(codes)]]))
    return float(np.median(counts[1:-1] if len(counts) > 2 else counts))


def suggest_block_len(timestamps: Any) -> BlockLenSuggestion:
    """A block length spanning a natural calendar period of the data: the shortest of second / minute / hour /
    day / week / month / quarter / year in which the median bin holds at least ``MIN_TICKS_PER_PERIOD`` ticks
    (so it counts the data's own ticks: daily trading days -> a month, 21-22; hourly crypto -> a day, 24;
    hourly stock bars, about 7 a day -> a week; minute bars -> an hour, 60; second bars -> a minute, 60).
    Timestamps that are not dates (numbers, None) or too few: ``EncoderConfig``'s default block length.

    >>> suggest_block_len(pd.bdate_range("2020-01-01", periods=500).values).block_len   # weekdays: 22 a month
    22
    """
    ts = None if timestamps is None else np.asarray(timestamps)
    if ts is None or ts.ndim != 1 or len(ts) < 3 or not np.issubdtype(ts.dtype, np.datetime64):
        return BlockLenSuggestion(DEFAULT_BLOCK_LEN, "", f"the timestamps are not dates: the default block "
                                  f"length ({DEFAULT_BLOCK_LEN} ticks)")
    ts = ts[~np.isnat(ts)]
    spacing = np.median(np.diff(ts).astype("timedelta64[ns]").astype(np.float64)) / 1e9   # seconds
    span_s = {"s": 1, "m": 60, "h": 3600, "D": 86400, "M": 2.6e6, "Y": 3.15e7}
    for name, unit, k in _PERIODS:
        if span_s[unit] * k < spacing:                       # a bin shorter than one tick holds at most one
            continue
        n = _ticks_per_bin(ts, unit, k)
        if n >= MIN_TICKS_PER_PERIOD:
            return BlockLenSuggestion(int(round(n)), name, f"about {name} (the data has a tick every "
                                      f"{_spacing_text(spacing)})")
    return BlockLenSuggestion(DEFAULT_BLOCK_LEN, "", f"no calendar period holds {MIN_TICKS_PER_PERIOD} ticks: the "
                              f"default block length ({DEFAULT_BLOCK_LEN} ticks)")


def _spacing_text(seconds: float) -> str:
    for unit, s in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= s:
            v = seconds / s
            return unit if v == 1 else f"{v:.3g} {unit}s"
    return "second" if seconds == 1 else f"{seconds:.3g} seconds"


@dataclass(frozen=True)
class BlockAdvice:
    n_blocks: int
    block_len: int
    offered: int | None    # the largest block length >= MIN_BLOCK_LEN giving ``min_blocks``; None if none does
    message: str


def min_blocks_advice(n_train_ticks: int, block_len: int, min_blocks: int = MIN_BLOCKS) -> BlockAdvice | None:
    """None when the training span holds at least ``min_blocks`` blocks of ``block_len``; else the advice, with
    the largest block length (at least ``MIN_BLOCK_LEN``) that would give enough.

    >>> min_blocks_advice(2000, 64).offered, min_blocks_advice(2000, 40) is None
    (40, True)
    """
    n = int(n_train_ticks) // max(int(block_len), 1)
    if n >= min_blocks:
        return None
    offered = int(n_train_ticks) // min_blocks
    if offered >= MIN_BLOCK_LEN:
        msg = (f"Only {n} training blocks of {block_len} ticks: at least {min_blocks} are recommended for a "
               f"meaningful manifold. A block length of {offered} gives {int(n_train_ticks) // offered}.")
        return BlockAdvice(n, int(block_len), offered, msg)
    msg = (f"Only {n} training blocks of {block_len} ticks, and even {MIN_BLOCK_LEN}-tick blocks give "
           f"{int(n_train_ticks) // MIN_BLOCK_LEN}: at least {min_blocks * MIN_BLOCK_LEN} training ticks are needed "
           f"for {min_blocks} blocks; add data or hold less out.")
    return BlockAdvice(n, int(block_len), None, msg)
