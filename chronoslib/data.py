"""Data layer: tables in, (T, F) features out, with precise errors for bad input.

Owns timestamp / feature / label column choice, the missing-value policy, feature engineering (via
``chronoslib.features``), the train / held-out split by time and the shipped sample datasets. Reading files (CSV /
Parquet, size limits) is ``chronoslib.readers``; ``read_table`` is re-exported here. ``build_dataset`` returns a
``Dataset`` whose ``data_config()`` records every choice, so a checkpoint can treat a live window the same way.
Normalisation is not done here: the engine fits it on the training span (``chronoslib.scaling``). Knows nothing
about models.

    >>> ds = build_dataset(read_table("prices.csv"), "prices", price_col="close",
    ...                    transforms=["log_return", "rolling_vol"])          # doctest: +SKIP
    >>> cfg = ds.configure(DefragConfig()); ChronosDefragEngine(cfg).fit(ds.train)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import DataConfig
from .errors import (
    BadValuesError,
    ColumnError,
    DataError,
    DelimiterError,
    EmptyFileError,
    FileTooLargeError,
    NestedColumnError,
    NoFeaturesError,
    NotEnoughBlocksError,
    TimestampError,
    UnreadableFileError,
)
from .features import DEFAULT_VOL_WINDOW, NEEDS, TRANSFORMS, check_transforms, engineer, needed_roles, warmup_ticks
from .readers import MAX_FILE_BYTES, MAX_ROWS, read_table

__all__ = [
    "Dataset", "SAMPLES", "SAMPLE_DIR", "TRANSFORMS", "MAX_FILE_BYTES", "MAX_ROWS", "read_table",
    "detect_timestamp_column", "detect_label_column", "detect_price_columns", "numeric_columns", "build_dataset",
    "load_sample", "load_for_training", "EmptyFileError", "FileTooLargeError", "UnreadableFileError", "DelimiterError",
    "NestedColumnError", "ColumnError", "NoFeaturesError", "BadValuesError", "TimestampError",
]

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data")
# display name -> file in SAMPLE_DIR; the first entry is the app's default.
SAMPLES = {
    "Synthetic regimes (labelled)": "synthetic_regimes.csv",
    "WTI crude oil, daily 1986-2019 (US EIA)": "wti_crude_daily.csv",
}
# file -> build_dataset arguments that turn it into model features
SAMPLE_RECIPES: dict[str, dict[str, Any]] = {
    "synthetic_regimes.csv": dict(timestamp_col="timestamp", feature_cols=[f"f{i}" for i in range(6)],
                                  label_col="regime", price_col="price"),
    "wti_crude_daily.csv": dict(timestamp_col="date", price_col="price",
                                transforms=["log_return", "abs_return", "rolling_vol"]),
}

_LABEL_NAMES = ("regime", "regimes", "label", "labels", "true_regime", "regime_label", "ground_truth", "state")
_TS_NAMES = ("timestamp", "time", "date", "datetime", "ts", "date_time", "time_stamp", "dt")


# ---------------------------------------------------------------------------------------------------- dataset
@dataclass
class Dataset:
    name: str
    frame: pd.DataFrame            # the table as loaded (sorted), for previews
    features: np.ndarray           # (T, F) float32 model input (after feature engineering, before normalising)
    feature_names: list[str]
    timestamps: np.ndarray | None  # (T,) datetime64 / numbers aligned with ``features``, or None
    labels: np.ndarray | None      # (T,) int ground-truth regime per tick (-1: missing), or None
    prices: np.ndarray | None      # (T,) a price series for charts and returns, or None
    split: int                     # first held-out tick: train = features[:split], held-out = features[split:]
    config: DataConfig = field(default_factory=DataConfig)  # the recipe (columns, transforms, NaN policy)
    label_names: list[str] | None = None  # labels[i] == k means label_names[k]
    row_offset: int = 0            # features[i] is frame row i + row_offset (warm-up / unfilled rows dropped)
    notes: list[str] = field(default_factory=list)  # what was done to the data (filled cells, sorting, ...)
    filled_cells: int = 0          # cells forward-filled under nan_policy="ffill"

    @property
    def train(self) -> np.ndarray:
        return self.features[: self.split]

    @property
    def heldout(self) -> np.ndarray:
        return self.features[self.split:]

    def data_config(self, normalize: str | None = None) -> DataConfig:
        """A copy of the recipe, for ``DefragConfig.data`` (``normalize`` kept from the caller if given)."""
        d = dataclasses.replace(self.config, features=list(self.config.features),
                                transforms=list(self.config.transforms),
                                feature_names=list(self.config.feature_names))
        if normalize is not None:
            d.normalize = normalize
        return d

    def configure(self, cfg: Any) -> Any:
        """Point ``cfg`` (a DefragConfig) at this dataset: ``data`` recipe and ``encoder.input_dim``; returns it."""
        cfg.data = self.data_config(normalize=cfg.data.normalize)
        cfg.encoder.input_dim = int(self.features.shape[1])
        return cfg

    def check_blocks(self, block_len: int, min_blocks: int = 4) -> None:
        """``NotEnoughBlocksError`` when the training span is shorter than ``min_blocks`` blocks."""
        n = self.split // block_len
        if n < min_blocks:
            raise NotEnoughBlocksError(
                f"Need at least {min_blocks} blocks: {self.name} has {self.split} training tick(s) "
                f"({len(self.features)} in all, {len(self.features) - self.split} held out), which make {n} "
                f"block(s) of block_len={block_len}; provide at least {min_blocks * block_len} training ticks, "
                f"lower the block length or the held-out fraction")


# ---------------------------------------------------------------------------------------------------- columns
def _numeric_like(s: pd.Series, min_share: float = 0.5) -> bool:
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
    return [str(c) for c in df.columns if _numeric_like(df[c])]


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


def detect_price_columns(df: pd.DataFrame) -> dict[str, str]:
    """Source columns for feature engineering found by name: {'price': 'close', 'high': 'High', ...}."""
    by_low = {str(c).strip().lower().replace(" ", "_"): str(c) for c in df.columns}
    choices = {"price": ("close", "adj_close", "adjclose", "price", "last", "mid", "close_price"),
               "high": ("high", "hi"), "low": ("low", "lo"), "volume": ("volume", "vol", "qty", "size")}
    out: dict[str, str] = {}
    for role, names in choices.items():
        for n in names:
            if n in by_low and _numeric_like(df[by_low[n]]):
                out[role] = by_low[n]
                break
    return out


def _rows_text(rows: np.ndarray, n: int = 5) -> str:
    """'3, 9' or '3, 9, 12, 15, 18 ... (40 in all)', with 0-based data rows (header excluded)."""
    shown = ", ".join(str(int(r)) for r in rows[:n])
    return shown + (f" ... ({rows.size} in all)" if rows.size > n else "") + " (0-based)"


_TZ_SUFFIX = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"  # a time, then an offset


def _to_datetime_text(text: pd.Series, col: str) -> pd.Series:
    """Parse date strings. Rows with different UTC offsets are converted to UTC; rows with an offset next to
    rows without one have no common clock, so that is a ``TimestampError`` naming the first row that differs."""
    try:
        return pd.to_datetime(text, errors="coerce", format="mixed")
    except (ValueError, TypeError) as e:
        if "timezone" not in str(e).lower() and "tz" not in str(e).lower() and "offset" not in str(e).lower():
            raise TimestampError(f"timestamp column {col!r} cannot be parsed as dates: {e}") from None
    aware = text.fillna("").str.strip().str.contains(_TZ_SUFFIX, regex=True).to_numpy()
    if aware.all() or not aware[text.notna().to_numpy()].any():  # all with offsets: one UTC clock
        return pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    r = int(np.flatnonzero(aware != aware[0])[0])
    kinds = ("without a time-zone offset", "with a time-zone offset")
    raise TimestampError(f"timestamp column {col!r} mixes timestamps with and without a time-zone offset: row 0 "
                         f"({text.iloc[0]!r}) is {kinds[int(aware[0])]}, row {r} ({text.iloc[r]!r}) is "
                         f"{kinds[int(aware[r])]}. Use one convention for the whole column")


def _parse_timestamps(s: pd.Series, col: str) -> np.ndarray:
    """(T,) datetime64[ns] or float64 ticks; ``TimestampError`` naming rows that do not parse."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        if pd.api.types.is_integer_dtype(s):  # float64 ticks are exact only up to 2**53
            big = np.flatnonzero(np.abs(s.to_numpy(dtype=object, na_value=0)) > 2 ** 53)
            if big.size:
                raise TimestampError(f"timestamp column {col!r} has {big.size} integer value(s) beyond 2**53 "
                                     f"(first at row {int(big[0])}: {s.iloc[int(big[0])]}); ticks are float64 and "
                                     "cannot tell neighbouring values apart there. Subtract the first value or "
                                     "use a coarser unit")
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(vals))
        if bad.size:
            raise TimestampError(f"timestamp column {col!r} has {bad.size} missing / non-finite value(s) at "
                                 f"row(s) {_rows_text(bad)}")
        return vals
    else:
        text = s.astype(str).str.strip()
        out = _to_datetime_text(text.where(s.notna()), col)
        bad = np.flatnonzero(out.isna().to_numpy())
        if bad.size:
            ex = [str(s.iloc[i]) for i in bad[:3]]
            raise TimestampError(f"timestamp column {col!r} has {bad.size} value(s) that are not dates at row(s) "
                                 f"{_rows_text(bad)} (e.g. {ex})")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    vals = out.to_numpy(dtype="datetime64[ns]")
    bad = np.flatnonzero(np.isnat(vals))
    if bad.size:
        raise TimestampError(f"timestamp column {col!r} has {bad.size} missing value(s) at row(s) {_rows_text(bad)}")
    return vals


def _check_order(ts: np.ndarray, col: str, sort: bool, notes: list[str]) -> np.ndarray | None:
    """Row order that sorts ``ts`` (None: already increasing); duplicates and (unless ``sort``) disorder raise."""
    uniq, first, counts = np.unique(ts, return_index=True, return_counts=True)
    if (counts > 1).any():
        k = int(np.argmax(counts > 1))
        rows = np.flatnonzero(ts == uniq[k])
        raise TimestampError(f"timestamp column {col!r} has {int((counts - 1).sum())} duplicated value(s); first "
                             f"{_fmt_ts(uniq[k])} at rows {_rows_text(rows)}. Each row must be a distinct tick: "
                             "drop or aggregate the duplicates")
    down = np.flatnonzero(ts[1:] < ts[:-1])
    if down.size == 0:
        return None
    if not sort:
        r = int(down[0]) + 1
        raise TimestampError(f"timestamp column {col!r} is not in increasing order: row {r} ({_fmt_ts(ts[r])}) "
                             f"comes after row {r - 1} ({_fmt_ts(ts[r - 1])}); {down.size} step(s) go back in "
                             "time. Sort the file by time (or pass sort=True / --sort)")
    notes.append(f"sorted rows by {col!r} ({down.size} step(s) went back in time)")
    return np.argsort(ts, kind="stable")


def _fmt_ts(v: Any) -> str:
    return str(np.datetime_as_string(v, unit="s")) if isinstance(v, np.datetime64) else repr(float(v))


def _numeric_values(s: pd.Series, col: str, nan_policy: str) -> tuple[np.ndarray, str | None]:
    """(T,) float64 with NaN for missing cells; non-numeric cells refused (or, under ffill, made NaN)."""
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return np.array(s.to_numpy(dtype=np.float64, na_value=np.nan), copy=True), None  # writable: ffill edits it
    if pd.api.types.is_datetime64_any_dtype(s):
        raise NoFeaturesError(f"column {col!r} holds dates, not numbers; choose it as the timestamp column")
    text = s.astype(str).str.strip()
    num = pd.to_numeric(text.where(s.notna() & (text != "")), errors="coerce")
    bad = np.flatnonzero((num.isna() & s.notna() & (text != "")).to_numpy())
    if bad.size == len(s) or (bad.size and not _numeric_like(s, 0.5)):
        raise NoFeaturesError(f"column {col!r} is not numeric (e.g. {str(s.iloc[int(bad[0])])!r}); choose "
                              "numeric feature columns")
    note = None
    if bad.size:
        ex = [str(s.iloc[int(i)]) for i in bad[:3]]
        msg = f"column {col!r} has {bad.size} non-numeric cell(s) at row(s) {_rows_text(bad)} (e.g. {ex})"
        if nan_policy != "ffill":
            raise BadValuesError(msg + "; fix them, or choose forward-filling (nan_policy='ffill', --nan-policy "
                                 "ffill) to treat them as missing")
        note = msg + ", treated as missing"
    return np.array(num.to_numpy(dtype=np.float64, na_value=np.nan), copy=True), note


def _apply_nan_policy(cols: dict[str, np.ndarray], nan_policy: str, notes: list[str]) -> tuple[int, int]:
    """Refuse NaN / inf (naming columns and rows) or forward-fill them in place; returns (filled, leading rows
    that could not be filled and must be dropped)."""
    bad = {c: np.flatnonzero(~np.isfinite(v)) for c, v in cols.items()}
    bad = {c: r for c, r in bad.items() if r.size}
    if not bad:
        return 0, 0
    if nan_policy == "refuse":
        parts = []
        for c, r in bad.items():
            v = cols[c][r]
            kinds = "/".join(k for k, m in (("NaN", np.isnan(v)), ("inf", np.isinf(v))) if m.any())
            parts.append(f"column {c!r}: {r.size} {kinds} cell(s) at row(s) {_rows_text(r)}")
        raise BadValuesError("missing or infinite values: " + "; ".join(parts)
                             + ". Clean the file, or choose forward-filling (nan_policy='ffill', --nan-policy ffill)")
    filled, lead = 0, 0
    for c, r in bad.items():
        v = cols[c]
        v[~np.isfinite(v)] = np.nan
        ok = np.isfinite(v)
        if not ok.any():
            raise BadValuesError(f"column {c!r} has no finite value at all; nothing to forward-fill from")
        first = int(np.argmax(ok))
        idx = np.where(ok, np.arange(len(v)), 0)
        np.maximum.accumulate(idx, out=idx)       # index of the last finite value at or before each row
        v[first:] = v[idx[first:]]
        lead = max(lead, first)
        filled += int(r.size - first)
    notes.append(f"forward-filled {filled} missing/infinite cell(s) in {sorted(bad)}"
                 + (f"; dropped {lead} leading row(s) with nothing before them to fill from" if lead else ""))
    return filled, lead


def build_dataset(df: pd.DataFrame, name: str, timestamp_col: str | None = None,
                  feature_cols: Sequence[str] | None = None, label_col: str | None = None,
                  price_col: str | None = None, transforms: Sequence[str] = (), nan_policy: str = "refuse",
                  holdout: float = 0.2, *, high_col: str | None = None, low_col: str | None = None,
                  volume_col: str | None = None, vol_window: int = DEFAULT_VOL_WINDOW, sort: bool = False,
                  block_len: int | None = None) -> Dataset:
    """Turn a table into a ``Dataset`` (finite float32 features (T, F), split by time, never shuffled).

    - ``timestamp_col``: None detects it (``detect_timestamp_column``), "" means the rows have no timestamps.
      Timestamps must parse, be unique and increase (``sort=True`` sorts instead of refusing disorder).
    - ``label_col``: ground-truth regimes (any values; coded 0..K-1 in ``labels``). None detects a column named
      regime / label / state ..., "" means none. Never a feature.
    - ``feature_cols``: raw columns passed through unchanged. None means every numeric column except the
      timestamp and label when ``transforms`` is empty, and none when transforms are given.
    - ``transforms``: names from ``TRANSFORMS``, computed from ``price_col`` / ``high_col`` / ``low_col`` /
      ``volume_col`` (detected by name when None); engineered features come first, then ``feature_cols``.
      Their warm-up ticks are dropped from the start.
    - ``nan_policy``: "refuse" (NaN / inf / non-numeric cells raise ``BadValuesError`` naming column and rows) or
      "ffill" (forward-fill, counted in ``notes`` / ``filled_cells``; leading rows with nothing to fill from are
      dropped).
    - ``holdout``: the last fraction of rows kept out of training; ``block_len`` checks the training span holds
      at least 4 blocks.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"build_dataset needs a pandas DataFrame, got {type(df).__name__}")
    if nan_policy not in ("refuse", "ffill"):
        raise DataError(f"nan_policy must be 'refuse' or 'ffill', got {nan_policy!r}")
    if not (isinstance(holdout, (int, float)) and 0.0 <= holdout < 1.0):
        raise DataError(f"holdout must be a fraction in [0, 1), got {holdout!r}")
    transforms = check_transforms(list(transforms), vol_window)
    if df.shape[1] == 0 or len(df) == 0:
        raise EmptyFileError(f"{name} has no {'rows' if df.shape[1] else 'columns'}")
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    cols = list(df.columns)

    def need(c: str, role: str) -> str:
        if c not in df.columns:
            raise ColumnError(f"{role} column {c!r} not found in {name}; available columns: {cols}")
        return c

    notes: list[str] = []
    ts_col = detect_timestamp_column(df) if timestamp_col is None else (need(timestamp_col, "timestamp")
                                                                        if timestamp_col else "")
    lab_col = need(label_col, "label") if label_col else (detect_label_column(df) if label_col is None else "")
    if label_col is None and lab_col:
        notes.append(f"using {lab_col!r} as the ground-truth label column (not a feature)")
    if ts_col and ts_col == lab_col:
        raise ColumnError(f"column {ts_col!r} cannot be both the timestamp and the label")

    # Time order first: every later row number refers to the sorted table.
    timestamps = None
    if ts_col:
        timestamps = _parse_timestamps(df[ts_col], ts_col)
        order = _check_order(timestamps, ts_col, sort, notes)
        if order is not None:
            df, timestamps = df.iloc[order].reset_index(drop=True), timestamps[order]

    # Sources for transforms (detected by name when not given).
    found = detect_price_columns(df) if transforms else {}
    given = {"price": price_col, "high": high_col, "low": low_col, "volume": volume_col}
    roles: dict[str, str] = {}
    for role in ("price", "high", "low", "volume"):
        if given[role]:
            roles[role] = need(given[role], role)
    for role in needed_roles(transforms):
        if role not in roles:
            if role not in found:
                users = [t for t in transforms if role in NEEDS[t]]
                raise ColumnError(f"transform(s) {users} need a {role} column: pass {role}_col (none named like "
                                  f"one was found among {cols})")
            roles[role] = found[role]
            notes.append(f"using {found[role]!r} as the {role} column")

    skip = {ts_col, lab_col}
    if feature_cols is None:
        feats = [] if transforms else [c for c in numeric_columns(df) if c not in skip]
        if not feats and not transforms:
            kinds = {c: str(df[c].dtype) for c in cols if c not in skip}
            roles_txt = ", ".join(f"{c!r} is the {r}" for c, r in ((ts_col, "timestamp"), (lab_col, "label")) if c)
            raise NoFeaturesError(f"{name} has no numeric feature column: "
                                  + (f"the other columns are not numbers ({kinds})" if kinds else
                                     "there is no other column")
                                  + (f"; {roles_txt}" if roles_txt else ""))
    else:
        feats = [need(str(c), "feature") for c in feature_cols]
        if len(set(feats)) != len(feats):
            raise ColumnError(f"feature columns repeat: {feats}")
        clash = [c for c in feats if c in skip]
        if clash:
            raise ColumnError(f"column(s) {clash} cannot be features: they are the timestamp / label column")
        if not feats and not transforms:
            raise NoFeaturesError("no feature columns chosen and no transforms: nothing to train on")
    used = list(dict.fromkeys([*[roles[r] for r in needed_roles(transforms)], *feats]))
    values: dict[str, np.ndarray] = {}
    for c in used:
        values[c], note = _numeric_values(df[c], c, nan_policy)
        if note:
            notes.append(note)
    filled, lead = _apply_nan_policy(values, nan_policy, notes)

    # Feature engineering, then passthrough; drop the leading rows that are history only.
    w = warmup_ticks(transforms, vol_window)
    parts = []
    if transforms:
        srcs = {r: values[roles[r]][lead:] for r in needed_roles(transforms)}
        try:
            parts.append(engineer(srcs, transforms, vol_window, roles))
        except DataError as exc:
            raise BadValuesError(f"{name}: {exc}") from exc
    if feats:
        parts.append(np.column_stack([values[c][lead + w:] for c in feats]))
    x64 = np.concatenate(parts, axis=1)                 # (T, F)
    x = x64.astype(np.float32)
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        names = [*transforms, *feats]
        raise BadValuesError(f"feature {names[int(c)]!r} is not finite at row {int(r) + lead + w} after "
                             "conversion to float32 (values beyond +-3.4e38?)")
    off = lead + w
    t = x.shape[0]

    labels, label_names = None, None
    if lab_col:
        lab = df[lab_col].iloc[off:]
        # Negative codes and blanks (NaN) in a whole-number column are missing (-1), the project's label rule
        # (metrics.block_majority), not a regime called "-1.0".
        num = lab.to_numpy(dtype=np.float64) if pd.api.types.is_float_dtype(lab) else None
        whole = None if num is None else np.isfinite(num) & (num >= 0) & (num == np.floor(num)) & (num < 2.0 ** 53)
        if pd.api.types.is_integer_dtype(lab):
            labels = lab.to_numpy(dtype=np.int64)
            labels = np.where(labels >= 0, labels, -1)
        elif num is not None and bool((whole | ~(np.isfinite(num) & (num >= 0))).all()):
            labels = np.where(whole, num, -1).astype(np.int64)
        if labels is not None and (labels < 0).any():
            notes.append(f"{int((labels < 0).sum())} row(s) without a label (blank or negative; coded -1)")
        if labels is None:
            # A blank or whitespace-only cell is a missing label, not a regime called "".
            if lab.dtype == object or pd.api.types.is_string_dtype(lab):
                lab = lab.mask(lab.map(lambda v: isinstance(v, str) and not v.strip()))
            codes, uniq = pd.factorize(lab, sort=True)
            labels, label_names = codes.astype(np.int64), [str(u) for u in uniq]
            if (codes < 0).any():
                notes.append(f"{int((codes < 0).sum())} row(s) without a label (coded -1)")
    prices = None
    pc = roles.get("price") or (price_col or "")
    if pc:
        prices = (values[pc] if pc in values else _numeric_values(df[pc], pc, "ffill")[0])[off:]
    if w:
        notes.append(f"the first {w} row(s) only serve as history for {', '.join(transforms)} (no feature row "
                     "of their own)")

    dc = DataConfig(features=list(feats), transforms=list(transforms), timestamp_col=ts_col, label_col=lab_col,
                    nan_policy=nan_policy, price_col=roles.get("price", price_col or ""),
                    high_col=roles.get("high", ""), low_col=roles.get("low", ""), volume_col=roles.get("volume", ""),
                    vol_window=int(vol_window), feature_names=[*transforms, *feats])
    ds = Dataset(name=name, frame=df, features=x, feature_names=[*transforms, *feats],
                 timestamps=None if timestamps is None else timestamps[off:], labels=labels, prices=prices,
                 split=int(round(t * (1.0 - holdout))), config=dc, label_names=label_names, row_offset=off,
                 notes=notes, filled_cells=filled)
    if block_len is not None:
        ds.check_blocks(block_len)
    return ds


# ---------------------------------------------------------------------------------------------------- entry points
def load_sample(name: str, holdout: float = 0.2) -> Dataset:
    """One of ``SAMPLES`` by display name, turned into features by its recipe in ``SAMPLE_RECIPES``."""
    if name not in SAMPLES:
        raise DataError(f"unknown sample dataset {name!r}; choose one of {list(SAMPLES)}")
    file = SAMPLES[name]
    df = read_table(os.path.join(SAMPLE_DIR, file), max_bytes=None, max_rows=None)
    return build_dataset(df, name, holdout=holdout, **SAMPLE_RECIPES[file])


def load_for_training(path: str, cfg: Any, features: list[str] | None = None, timestamp_col: str = "",
                      label_col: str = "", holdout: float = 0.0, *, transforms: Sequence[str] = (),
                      price_col: str | None = None, high_col: str | None = None, low_col: str | None = None,
                      volume_col: str | None = None, vol_window: int | None = None, nan_policy: str | None = None,
                      sort: bool = False, no_timestamp: bool = False) -> tuple[Dataset, Any]:
    """Load a file for the ``train`` command: returns (Dataset, cfg with ``data`` and ``encoder.input_dim`` set).

    No file-size limit (this is the command line); rows are limited by available memory. An empty
    ``timestamp_col`` means "detect" (``no_timestamp=True`` means none); ``nan_policy`` defaults to
    ``cfg.data.nan_policy``. Checks that the training span holds at least 4 blocks of ``cfg.encoder.block_len``.
    """
    df = read_table(path, max_bytes=None, max_rows="memory")
    ds = build_dataset(df, os.path.basename(os.fspath(path)),
                       timestamp_col="" if no_timestamp else (timestamp_col or None),
                       feature_cols=features or None, label_col=label_col or None, price_col=price_col,
                       transforms=transforms, nan_policy=nan_policy or cfg.data.nan_policy, holdout=holdout,
                       high_col=high_col, low_col=low_col, volume_col=volume_col,
                       vol_window=vol_window or cfg.data.vol_window, sort=sort,
                       block_len=cfg.encoder.block_len)
    return ds, ds.configure(cfg)
