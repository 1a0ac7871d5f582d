"""Column cells to validated arrays: timestamps (parsed, unique, in order), numbers, missing values, labels.

Every error names the column and the (0-based, header excluded) rows at fault, so a user can find the cell in
the file. ``data.build_dataset`` calls these one column at a time. Knows nothing about which column plays which
role (``chronoslib.columns``), files or models.

>>> apply_nan_policy({"a": np.array([np.nan, 1.0, np.nan, 3.0])}, "ffill", notes := [])
(1, 1)
>>> notes
["forward-filled 1 missing/infinite cell(s) in ['a']; dropped 1 leading row(s) with nothing before them to fill from"]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .columns import numeric_like
from .errors import BadValuesError, NoFeaturesError, TimestampError


def rows_text(rows: np.ndarray, n: int = 5) -> str:
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


def parse_timestamps(s: pd.Series, col: str) -> np.ndarray:
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
                                 f"row(s) {rows_text(bad)}")
        return vals
    else:
        text = s.astype(str).str.strip()
        out = _to_datetime_text(text.where(s.notna()), col)
        bad = np.flatnonzero(out.isna().to_numpy())
        if bad.size:
            ex = [str(s.iloc[i]) for i in bad[:3]]
            raise TimestampError(f"timestamp column {col!r} has {bad.size} value(s) that are not dates at row(s) "
                                 f"{rows_text(bad)} (e.g. {ex})")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    vals = out.to_numpy(dtype="datetime64[ns]")
    bad = np.flatnonzero(np.isnat(vals))
    if bad.size:
        raise TimestampError(f"timestamp column {col!r} has {bad.size} missing value(s) at row(s) {rows_text(bad)}")
    return vals


def time_order(ts: np.ndarray, col: str, sort: bool, notes: list[str]) -> np.ndarray | None:
    """Row order that sorts ``ts`` (None: already increasing); duplicates and (unless ``sort``) disorder raise."""
    if ts.size < 2 or bool((ts[1:] > ts[:-1]).all()):   # strictly increasing: no duplicate, no disorder (O(T),
        return None                                      # where np.unique sorts: 0.15 s at 1M rows)
    uniq, first, counts = np.unique(ts, return_index=True, return_counts=True)
    if (counts > 1).any():
        k = int(np.argmax(counts > 1))
        rows = np.flatnonzero(ts == uniq[k])
        raise TimestampError(f"timestamp column {col!r} has {int((counts - 1).sum())} duplicated value(s); first "
                             f"{_fmt_ts(uniq[k])} at rows {rows_text(rows)}. Each row must be a distinct tick: "
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


def numeric_values(s: pd.Series, col: str, nan_policy: str) -> tuple[np.ndarray, str | None]:
    """(T,) float64 with NaN for missing cells; non-numeric cells refused (or, under ffill, made NaN)."""
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return np.array(s.to_numpy(dtype=np.float64, na_value=np.nan), copy=True), None  # writable: ffill edits it
    if pd.api.types.is_datetime64_any_dtype(s):
        raise NoFeaturesError(f"column {col!r} holds dates, not numbers; choose it as the timestamp column")
    text = s.astype(str).str.strip()
    num = pd.to_numeric(text.where(s.notna() & (text != "")), errors="coerce")
    bad = np.flatnonzero((num.isna() & s.notna() & (text != "")).to_numpy())
    if bad.size == len(s) or (bad.size and not numeric_like(s, 0.5)):
        raise NoFeaturesError(f"column {col!r} is not numeric (e.g. {str(s.iloc[int(bad[0])])!r}); choose "
                              "numeric feature columns")
    note = None
    if bad.size:
        ex = [str(s.iloc[int(i)]) for i in bad[:3]]
        msg = f"column {col!r} has {bad.size} non-numeric cell(s) at row(s) {rows_text(bad)} (e.g. {ex})"
        if nan_policy != "ffill":
            raise BadValuesError(msg + "; fix them, or choose forward-filling (nan_policy='ffill', --nan-policy "
                                 "ffill) to treat them as missing")
        note = msg + ", treated as missing"
    return np.array(num.to_numpy(dtype=np.float64, na_value=np.nan), copy=True), note


def apply_nan_policy(cols: dict[str, np.ndarray], nan_policy: str, notes: list[str]) -> tuple[int, int]:
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
            parts.append(f"column {c!r}: {r.size} {kinds} cell(s) at row(s) {rows_text(r)}")
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


def label_codes(lab: pd.Series, notes: list[str]) -> tuple[np.ndarray, list[str] | None]:
    """(T,) int64 regime codes of a label column (-1: missing) and, for non-numeric labels, their names
    (``codes[i] == k`` means ``names[k]``; None when the labels are whole numbers already)."""
    labels = None
    # Negative codes and blanks (NaN) in a whole-number column are missing (-1), the project's label rule
    # (metrics.block_majority), not a regime called "-1.0".
    num = lab.to_numpy(dtype=np.float64) if pd.api.types.is_float_dtype(lab) else None
    whole = None if num is None else np.isfinite(num) & (num >= 0) & (num == np.floor(num)) & (num < 2.0 ** 53)
    if pd.api.types.is_integer_dtype(lab):
        labels = lab.to_numpy(dtype=np.int64)
        labels = np.where(labels >= 0, labels, -1)
    elif num is not None and bool((whole | ~(np.isfinite(num) & (num >= 0))).all()):
        labels = np.where(whole, num, -1).astype(np.int64)
    if labels is not None:
        if (labels < 0).any():
            notes.append(f"{int((labels < 0).sum())} row(s) without a label (blank or negative; coded -1)")
        return labels, None
    # A blank or whitespace-only cell is a missing label, not a regime called "".
    if lab.dtype == object or pd.api.types.is_string_dtype(lab):
        lab = lab.mask(lab.map(lambda v: isinstance(v, str) and not v.strip()))
    codes, uniq = pd.factorize(lab, sort=True)
    if (codes < 0).any():
        notes.append(f"{int((codes < 0).sum())} row(s) without a label (coded -1)")
    return codes.astype(np.int64), [str(u) for u in uniq]
