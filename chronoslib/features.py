"""Feature engineering from price data: causal transforms, recorded by name so a live window is treated alike.

Each transform turns raw source columns (price / high / low / volume) into one feature column using only the
current and earlier ticks, never later ones, so engineered features keep the anti-look-ahead property of the
blocks. The recipe (transform names, source columns, rolling window) lives in ``DataConfig`` and therefore in
every checkpoint; ``live_window`` re-applies it to a raw window at prediction time. Knows nothing about files,
normalisation or models.

Worked example (three prices, log returns need one tick of history, so two rows come out):

>>> engineer({"price": np.array([100.0, 110.0, 99.0])}, ["log_return", "abs_return"]).round(4).tolist()
[[0.0953, 0.0953], [-0.1054, 0.1054]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .columns import feature_columns, frame_values
from .errors import DataError

# name -> one-line description (names are stable: they are stored in checkpoints).
TRANSFORMS: dict[str, str] = {
    "log_return": "log(price_t / price_t-1): tick-to-tick log return of the price column",
    "abs_return": "|log(price_t / price_t-1)|: size of the move whatever its sign",
    "hl_range": "log(high_t / low_t): the bar's high-low range (needs high and low columns)",
    "log_volume": "log(1 + volume_t): traded volume on a log scale (needs a volume column; trends with the market)",
    "rel_volume": "log((1 + volume_t / m_t) / 2), m_t = mean of the last vol_window volumes (tick t included): "
                  "volume relative to its own recent level, 0 at the usual level (needs a volume column)",
    "rolling_vol": "standard deviation of the last vol_window log returns (causal rolling volatility)",
}
# transform -> the source roles it reads
NEEDS: dict[str, tuple[str, ...]] = {
    "log_return": ("price",), "abs_return": ("price",), "hl_range": ("high", "low"),
    "log_volume": ("volume",), "rel_volume": ("volume",), "rolling_vol": ("price",),
}
ROLLING = ("rolling_vol", "rel_volume")   # transforms that read the last vol_window ticks
ROLES = ("price", "high", "low", "volume")
DEFAULT_VOL_WINDOW = 20


def check_transforms(transforms: Sequence[str], vol_window: int = DEFAULT_VOL_WINDOW) -> list[str]:
    """The transform names as a list, or ``DataError`` naming an unknown or repeated one."""
    names = [str(t) for t in transforms]
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown:
        raise DataError(f"unknown feature transform(s) {unknown}; choose from {list(TRANSFORMS)}")
    if len(set(names)) != len(names):
        raise DataError(f"feature transforms must not repeat, got {names}")
    if any(t in ROLLING for t in names) and (not isinstance(vol_window, int) or isinstance(vol_window, bool)
                                   or vol_window < 2):
        raise DataError(f"vol_window (rolling window of rolling_vol / rel_volume) must be an integer >= 2, got "
                        f"{vol_window!r}")
    return names


def needed_roles(transforms: Sequence[str]) -> list[str]:
    """Source roles the transforms read, in ``ROLES`` order."""
    need = {r for t in transforms for r in NEEDS[t]}
    return [r for r in ROLES if r in need]


def warmup_ticks(transforms: Sequence[str], vol_window: int = DEFAULT_VOL_WINDOW) -> int:
    """Leading ticks that cannot produce a feature row (they only serve as history).

    rolling_vol needs ``vol_window`` returns (so ``vol_window`` earlier ticks), rel_volume ``vol_window - 1``
    earlier volumes; the recipe's warm-up is the longest of its transforms'.

    >>> warmup_ticks(["hl_range"]), warmup_ticks(["log_return"]), warmup_ticks(["log_return", "rolling_vol"], 20)
    (0, 1, 20)
    >>> warmup_ticks(["rel_volume"], 20), warmup_ticks(["rel_volume", "log_return"], 2)
    (19, 1)
    """
    need = {"log_return": 1, "abs_return": 1, "rolling_vol": int(vol_window), "rel_volume": int(vol_window) - 1}
    return max([need.get(t, 0) for t in transforms], default=0)


def _check_positive(role: str, name: str, x: np.ndarray, allow_zero: bool = False) -> None:
    bad = ~(x >= 0) if allow_zero else ~(x > 0)
    if bad.any():
        rows = np.flatnonzero(bad)
        what = "negative" if allow_zero else "zero or negative"
        raise DataError(f"{role} column {name!r} has {rows.size} {what} value(s), first at row(s) "
                        f"{rows[:5].tolist()} (e.g. {x[rows[0]]!r}); the {role} transform needs "
                        f"{'non-negative' if allow_zero else 'positive'} values")


def engineer(sources: Mapping[str, np.ndarray], transforms: Sequence[str], vol_window: int = DEFAULT_VOL_WINDOW,
             names: Mapping[str, str] | None = None) -> np.ndarray:
    """Engineered features (T - warmup, K) float64 from source arrays ``{role: (T,)}``, one column per transform.

    Row ``i`` of the result belongs to tick ``i + warmup_ticks(...)`` and uses only ticks up to that one.
    ``names`` maps roles to column names for error messages.
    """
    transforms = check_transforms(transforms, vol_window)
    names = dict(names or {})
    if not transforms:
        raise DataError("engineer() needs at least one transform")
    src: dict[str, np.ndarray] = {}
    for role in needed_roles(transforms):
        if role not in sources:
            raise DataError(f"transform(s) {[t for t in transforms if role in NEEDS[t]]} need a {role} column; "
                            f"none was given")
        x = np.asarray(sources[role], dtype=np.float64)
        _check_positive(role, names.get(role, role), x, allow_zero=(role == "volume"))
        src[role] = x
    t = len(next(iter(src.values())))
    if any(len(v) != t for v in src.values()):
        raise DataError(f"source columns differ in length: { {k: len(v) for k, v in src.items()} }")
    w = warmup_ticks(transforms, vol_window)
    if t <= w:
        raise DataError(f"{t} tick(s) are too few for transforms {transforms}: the first {w} only serve as history")
    ret = None
    if "price" in src:
        ret = np.empty(t)                        # (T,) ret[i] = log p_i - log p_{i-1}; ret[0] undefined
        ret[0] = np.nan
        ret[1:] = np.diff(np.log(src["price"]))
    cols = []
    for name in transforms:
        if name == "log_return":
            col = ret
        elif name == "abs_return":
            col = np.abs(ret)
        elif name == "hl_range":
            hi, lo = src["high"], src["low"]
            below = np.flatnonzero(hi < lo)
            if below.size:
                raise DataError(f"high column {names.get('high', 'high')!r} is below low column "
                                f"{names.get('low', 'low')!r} at {below.size} row(s), first at "
                                f"{below[:5].tolist()}")
            col = np.log(hi / lo)
        elif name == "log_volume":
            col = np.log1p(src["volume"])
        elif name == "rel_volume":
            col = relative_volume(src["volume"], vol_window)
        else:  # rolling_vol: std of returns at ticks i-w+1 .. i (ddof=1, like pandas' rolling std)
            col = np.full(t, np.nan)
            win = np.lib.stride_tricks.sliding_window_view(ret[1:], vol_window)  # (T - w, w)
            col[vol_window:] = win.std(axis=1, ddof=1)
        cols.append(col[w:])
    return np.stack(cols, axis=1)                # (T - w, K)


def relative_volume(volume: np.ndarray, window: int) -> np.ndarray:
    """(T,) ``log((1 + v_t / m_t) / 2)``, ``m_t`` the mean of ``v_{t-window+1} .. v_t``; NaN for the first
    ``window - 1`` ticks (no full window yet).

    Why this form: the ratio to the tick's own recent mean removes the market-wide trend in volume (raw or log
    volume rises over the years and would make the encoder learn eras); ``log(1 + r) - log 2`` is 0 at the
    usual level, about ``log r`` for bursts and stays finite for a zero-volume tick (``-log 2``); a window
    of zeros (``m_t = 0``, a halted market) counts as the usual level (0). Unit-free: shares, contracts or
    coins give the same feature. Each row's mean is taken over its own window, so a live window reproduces
    training exactly.

    >>> relative_volume(np.array([10.0, 10.0, 40.0, 0.0]), 2).round(4).tolist()
    [nan, 0.0, 0.2624, -0.6931]
    """
    v = np.asarray(volume, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    if len(v) < window:
        return out
    m = np.lib.stride_tricks.sliding_window_view(v, window).mean(axis=1)   # (T - window + 1,) m[i] ends at i+w-1
    tail = v[window - 1:]
    ratio = np.divide(tail, m, out=np.ones_like(m), where=m > 0)
    out[window - 1:] = np.log1p(ratio) - np.log(2.0)
    return out


def source_columns(data_cfg: Any) -> list[str]:
    """Raw columns a live window must carry, in the order an array window must use: price, high, low, volume
    (those the transforms need), then the passthrough feature columns."""
    roles = needed_roles(data_cfg.transforms)
    cols = [getattr(data_cfg, f"{r}_col") for r in roles]
    return [*cols, *[c for c in data_cfg.features if c not in cols]]


def raw_features(raw: Any, data_cfg: Any) -> np.ndarray:
    """Model features (T - warmup, F) float32 from raw rows, by the recipe recorded in ``data_cfg``.

    ``raw`` is a DataFrame holding the named source columns, or an array (T, len(source_columns(data_cfg)))
    with them in that order. Refuses NaN / inf (a live window has no fill policy: its gaps would be silent).
    """
    transforms = list(data_cfg.transforms)
    vw = int(getattr(data_cfg, "vol_window", DEFAULT_VOL_WINDOW))
    w = warmup_ticks(transforms, vw)
    cols = source_columns(data_cfg)
    if hasattr(raw, "columns") and hasattr(raw, "to_numpy"):  # a DataFrame: the data layer's column choice
        cols = feature_columns(raw, cols, exclude=(data_cfg.timestamp_col, data_cfg.label_col))
        arr = frame_values(raw, cols, "raw data")                                           # (T, len(cols))
    else:
        arr = np.asarray(raw.detach().cpu().numpy() if hasattr(raw, "detach") else raw)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"raw data must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if arr.ndim != 2 or (cols and arr.shape[1] != len(cols)):
            raise DataError(f"raw data must have shape (T, {len(cols)}) with columns {cols}, got {arr.shape}")
    if not np.isfinite(arr).all():
        r, c = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(f"raw data has NaN/inf values, first at row {int(r)}, column "
                        f"{cols[int(c)] if cols else int(c)!r}")
    if not transforms:
        return arr.astype(np.float32)
    roles = needed_roles(transforms)
    srcs = {r: arr[:, cols.index(getattr(data_cfg, f"{r}_col"))] for r in roles}
    eng = engineer(srcs, transforms, vw, {r: getattr(data_cfg, f"{r}_col") for r in roles})  # (T - w, K)
    passthrough = arr[w:, [cols.index(c) for c in data_cfg.features]]                      # (T - w, F - K)
    return np.concatenate([eng, passthrough], axis=1).astype(np.float32)


def live_window(raw: Any, data_cfg: Any, block_len: int) -> np.ndarray:
    """A model window (block_len, F) float32 from the last ``block_len + warmup_ticks`` raw rows.

    Uses the recipe recorded in ``data_cfg`` (see ``raw_features``), so the window's features equal what
    training computed for the same ticks. Without transforms the window is the passthrough features themselves.
    """
    w = warmup_ticks(list(data_cfg.transforms), int(getattr(data_cfg, "vol_window", DEFAULT_VOL_WINDOW)))
    need = block_len + w
    n = len(raw) if hasattr(raw, "columns") else int(np.shape(raw)[0]) if np.ndim(raw) >= 1 else 0
    if n < need:
        raise DataError(f"raw live window has {n} rows but needs {need}: block_len={block_len} plus {w} tick(s) "
                        f"of history for transforms {list(data_cfg.transforms)}")
    return raw_features(raw.iloc[-need:] if hasattr(raw, "iloc") else raw[-need:], data_cfg)
