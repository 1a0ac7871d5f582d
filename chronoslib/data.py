"""Data layer: tables in, (T, F) features out, with precise errors for bad input.

Owns the ``Dataset``, ``build_dataset`` (a table -> features, as a list of named steps: check the arguments, find
the timestamp and label columns, put rows in time order, find the transforms' source columns, choose the
features, read their values under the missing-value policy, engineer and stack the feature matrix, code the
labels), the train / held-out split by time and the shipped sample datasets. Which column is what is
``chronoslib.columns``; turning a column's cells into checked arrays is ``chronoslib.parsing``; transforms are
``chronoslib.features``; reading files (CSV / Parquet, size limits) is ``chronoslib.readers`` (``read_table`` is
re-exported here). ``build_dataset`` returns a ``Dataset`` whose ``data_config()`` records every choice, so a
checkpoint can treat a live window the same way. Normalisation is not done here: the engine fits it on the
training span (``chronoslib.scaling``). Knows nothing about models.

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

from .advice import default_recipe
from .columns import detect_label_column, detect_price_columns, detect_timestamp_column, feature_columns
from .config import DataConfig
from .errors import BadValuesError, ColumnError, DataError, EmptyFileError, NoFeaturesError, NotEnoughBlocksError
from .features import DEFAULT_VOL_WINDOW, NEEDS, check_transforms, engineer, needed_roles, warmup_ticks
from .parsing import apply_nan_policy, label_codes, numeric_values, parse_timestamps, time_order
from .readers import read_table

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


def build_dataset(df: pd.DataFrame, name: str, timestamp_col: str | None = None,
                  feature_cols: Sequence[str] | None = None, label_col: str | None = None,
                  price_col: str | None = None, transforms: Sequence[str] = (), nan_policy: str = "refuse",
                  holdout: float = 0.2, *, high_col: str | None = None, low_col: str | None = None,
                  volume_col: str | None = None, vol_window: int = DEFAULT_VOL_WINDOW, sort: bool = False,
                  block_len: int | None = None) -> Dataset:
    """Turn a table into a ``Dataset`` (finite float32 features (T, F), split by time, never shuffled).

    - ``timestamp_col``: None detects it (``columns.detect_timestamp_column``), "" means the rows have no
      timestamps. Timestamps must parse, be unique and increase (``sort=True`` sorts instead of refusing disorder).
    - ``label_col``: ground-truth regimes (any values; coded 0..K-1 in ``labels``). None detects a column named
      regime / label / state ..., "" means none. Never a feature.
    - ``feature_cols``: raw columns passed through unchanged. None means every numeric column except the
      timestamp and label (``columns.feature_columns``) when ``transforms`` is empty, and none when transforms
      are given.
    - ``transforms``: names from ``features.TRANSFORMS``, computed from ``price_col`` / ``high_col`` / ``low_col`` /
      ``volume_col`` (detected by name when None); engineered features come first, then ``feature_cols``.
      Their warm-up ticks are dropped from the start.
    - ``nan_policy``: "refuse" (NaN / inf / non-numeric cells raise ``BadValuesError`` naming column and rows) or
      "ffill" (forward-fill, counted in ``notes`` / ``filled_cells``; leading rows with nothing to fill from are
      dropped).
    - ``holdout``: the last fraction of rows kept out of training; ``block_len`` checks the training span holds
      at least 4 blocks.
    """
    transforms = _check_arguments(df, name, nan_policy, holdout, transforms, vol_window)
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    notes: list[str] = []                       # what was done to the data, in the order it was done
    ts_col, lab_col = _time_and_label_columns(df, name, timestamp_col, label_col, notes)
    df, timestamps = _in_time_order(df, ts_col, sort, notes)    # every later row number refers to this order
    roles = _transform_sources(df, name, transforms,
                               {"price": price_col, "high": high_col, "low": low_col, "volume": volume_col}, notes)
    feats = _choose_features(df, name, feature_cols, transforms, ts_col, lab_col)
    sources = [roles[r] for r in needed_roles(transforms)]
    values, filled, lead = _column_values(df, [*sources, *feats], nan_policy, notes)
    x = _feature_matrix(name, values, roles, feats, transforms, vol_window, lead)      # (T, F) float32
    off = lead + warmup_ticks(transforms, vol_window)   # features[i] is row i + off of the (sorted) table
    labels, label_names = label_codes(df[lab_col].iloc[off:], notes) if lab_col else (None, None)
    prices = _price_series(df, values, roles.get("price", ""), off)
    if off > lead:
        notes.append(f"the first {off - lead} row(s) only serve as history for {', '.join(transforms)} (no "
                     "feature row of their own)")
    recipe = DataConfig(features=list(feats), transforms=list(transforms), timestamp_col=ts_col, label_col=lab_col,
                        nan_policy=nan_policy, price_col=roles.get("price", ""), high_col=roles.get("high", ""),
                        low_col=roles.get("low", ""), volume_col=roles.get("volume", ""), vol_window=int(vol_window),
                        feature_names=[*transforms, *feats])
    ds = Dataset(name=name, frame=df, features=x, feature_names=[*transforms, *feats],
                 timestamps=None if timestamps is None else timestamps[off:], labels=labels, prices=prices,
                 split=int(round(x.shape[0] * (1.0 - holdout))), config=recipe, label_names=label_names,
                 row_offset=off, notes=notes, filled_cells=filled)
    if block_len is not None:
        ds.check_blocks(block_len)
    return ds


# ---------------------------------------------------------------------------------------------------- its steps
def _check_arguments(df: Any, name: str, nan_policy: str, holdout: Any, transforms: Sequence[str],
                     vol_window: int) -> list[str]:
    """Refuse a non-DataFrame, an empty table or a bad setting before looking at any cell; returns the
    transform names as a list."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"build_dataset needs a pandas DataFrame, got {type(df).__name__}")
    if nan_policy not in ("refuse", "ffill"):
        raise DataError(f"nan_policy must be 'refuse' or 'ffill', got {nan_policy!r}")
    if not (isinstance(holdout, (int, float)) and 0.0 <= holdout < 1.0):
        raise DataError(f"holdout must be a fraction in [0, 1), got {holdout!r}")
    names = check_transforms(list(transforms), vol_window)
    if df.shape[1] == 0 or len(df) == 0:
        raise EmptyFileError(f"{name} has no {'rows' if df.shape[1] else 'columns'}")
    return names


def _need(df: pd.DataFrame, name: str, col: str, role: str) -> str:
    """``col`` when the table has it, else a ``ColumnError`` listing the columns it does have."""
    if col not in df.columns:
        raise ColumnError(f"{role} column {col!r} not found in {name}; available columns: {list(df.columns)}")
    return col


def _time_and_label_columns(df: pd.DataFrame, name: str, timestamp_col: str | None, label_col: str | None,
                            notes: list[str]) -> tuple[str, str]:
    """(timestamp column, label column), each "" for none: named ones checked, None ones detected."""
    if timestamp_col is None:
        ts_col = detect_timestamp_column(df) or ""
    else:
        ts_col = _need(df, name, timestamp_col, "timestamp") if timestamp_col else ""
    if label_col:
        lab_col = _need(df, name, label_col, "label")
    else:
        lab_col = (detect_label_column(df) or "") if label_col is None else ""
        if lab_col:
            notes.append(f"using {lab_col!r} as the ground-truth label column (not a feature)")
    if ts_col and ts_col == lab_col:
        raise ColumnError(f"column {ts_col!r} cannot be both the timestamp and the label")
    return ts_col, lab_col


def _in_time_order(df: pd.DataFrame, ts_col: str, sort: bool,
                   notes: list[str]) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The table in time order and its parsed timestamps (T,) (None without a timestamp column)."""
    if not ts_col:
        return df, None
    timestamps = parse_timestamps(df[ts_col], ts_col)
    order = time_order(timestamps, ts_col, sort, notes)
    if order is None:
        return df, timestamps
    return df.iloc[order].reset_index(drop=True), timestamps[order]


def _transform_sources(df: pd.DataFrame, name: str, transforms: list[str], given: dict[str, str | None],
                       notes: list[str]) -> dict[str, str]:
    """{role: column} for the price / high / low / volume columns: the given ones, then those the transforms
    need, detected by name."""
    roles = {role: _need(df, name, col, role) for role, col in given.items() if col}
    found = detect_price_columns(df) if transforms else {}
    for role in needed_roles(transforms):
        if role in roles:
            continue
        if role not in found:
            users = [t for t in transforms if role in NEEDS[t]]
            raise ColumnError(f"transform(s) {users} need a {role} column: pass {role}_col (none named like "
                              f"one was found among {list(df.columns)})")
        roles[role] = found[role]
        notes.append(f"using {found[role]!r} as the {role} column")
    return roles


def _choose_features(df: pd.DataFrame, name: str, feature_cols: Sequence[str] | None, transforms: list[str],
                     ts_col: str, lab_col: str) -> list[str]:
    """The passthrough feature columns: the chosen ones (checked), or by default every numeric column but the
    timestamp and label (none when transforms are given)."""
    skip = {ts_col, lab_col}
    if feature_cols is None:
        if transforms:
            return []
        feats = feature_columns(df, exclude=skip)
        if not feats:
            kinds = {c: str(df[c].dtype) for c in df.columns if c not in skip}
            roles_txt = ", ".join(f"{c!r} is the {r}" for c, r in ((ts_col, "timestamp"), (lab_col, "label")) if c)
            raise NoFeaturesError(f"{name} has no numeric feature column: "
                                  + (f"the other columns are not numbers ({kinds})" if kinds else
                                     "there is no other column")
                                  + (f"; {roles_txt}" if roles_txt else ""))
        return feats
    feats = [_need(df, name, str(c), "feature") for c in feature_cols]
    if len(set(feats)) != len(feats):
        raise ColumnError(f"feature columns repeat: {feats}")
    clash = [c for c in feats if c in skip]
    if clash:
        raise ColumnError(f"column(s) {clash} cannot be features: they are the timestamp / label column")
    if not feats and not transforms:
        raise NoFeaturesError("no feature columns chosen and no transforms: nothing to train on")
    return feats


def _column_values(df: pd.DataFrame, used: list[str], nan_policy: str,
                   notes: list[str]) -> tuple[dict[str, np.ndarray], int, int]:
    """({column: (T,) float64} for every column read, cells filled, leading rows to drop) under ``nan_policy``."""
    values: dict[str, np.ndarray] = {}
    for c in dict.fromkeys(used):               # a column that is both a source and a feature is read once
        values[c], note = numeric_values(df[c], c, nan_policy)
        if note:
            notes.append(note)
    filled, lead = apply_nan_policy(values, nan_policy, notes)
    return values, filled, lead


def _feature_matrix(name: str, values: dict[str, np.ndarray], roles: dict[str, str], feats: list[str],
                    transforms: list[str], vol_window: int, lead: int) -> np.ndarray:
    """(T, F) float32: engineered features first, then passthrough, without the leading rows that are history
    only (``lead`` unfillable rows, then the transforms' warm-up)."""
    w = warmup_ticks(transforms, vol_window)
    parts = []
    if transforms:
        srcs = {r: values[roles[r]][lead:] for r in needed_roles(transforms)}
        try:
            eng = engineer(srcs, transforms, vol_window, roles)                   # (T, K)
        except DataError as exc:
            raise BadValuesError(f"{name}: {exc}") from exc
        parts = [eng[:, j] for j in range(eng.shape[1])]
    parts += [values[c][lead + w:] for c in feats]                                # F - K columns (T,)
    x = np.empty((len(parts[0]), len(parts)), dtype=np.float32)                   # one float32 copy, no stack
    for j, col in enumerate(parts):
        x[:, j] = col
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        names = [*transforms, *feats]
        raise BadValuesError(f"feature {names[int(c)]!r} is not finite at row {int(r) + lead + w} after "
                             "conversion to float32 (values beyond +-3.4e38?)")
    return x


def _price_series(df: pd.DataFrame, values: dict[str, np.ndarray], price_col: str, off: int) -> np.ndarray | None:
    """(T,) the price column aligned with the features (forward-filled when it is not a feature), or None."""
    if not price_col:
        return None
    return (values[price_col] if price_col in values else numeric_values(df[price_col], price_col, "ffill")[0])[off:]


def with_chart_price(ds: Dataset) -> Dataset:
    """``ds`` with a price series for charts when it has none but a column of its table is named like a price
    (no transform reads it, so it is no feature); ``ds`` itself when there is none or it is not numeric.

    The price is read as ``build_dataset(..., price_col=that column)`` reads it (forward-filled, aligned with
    the feature rows) and recorded in ``config.price_col``, so a replayed continuation charts it too.
    """
    if ds.prices is not None or not (found := detect_price_columns(ds.frame).get("price")):
        return ds
    try:
        prices = _price_series(ds.frame, {}, found, ds.row_offset)
    except DataError:   # unusable cells: keep the dataset without a chart price
        return ds
    return dataclasses.replace(ds, prices=prices, config=dataclasses.replace(ds.config, price_col=found))


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
    Neither ``features`` nor ``transforms`` given: ``advice.default_recipe`` chooses them (market data gets
    stationary engineered features, never a price level), with the source columns it found.
    """
    df = read_table(path, max_bytes=None, max_rows="memory")
    if not features and not transforms:
        rec = default_recipe(df)
        features = [c for c in rec.feature_cols if c not in (timestamp_col, label_col)]
        transforms = rec.transforms
        price_col, high_col = price_col or rec.price_col or None, high_col or rec.high_col or None
        low_col, volume_col = low_col or rec.low_col or None, volume_col or rec.volume_col or None
    ds = build_dataset(df, os.path.basename(os.fspath(path)),
                       timestamp_col="" if no_timestamp else (timestamp_col or None),
                       feature_cols=features or None, label_col=label_col or None, price_col=price_col,
                       transforms=transforms, nan_policy=nan_policy or cfg.data.nan_policy, holdout=holdout,
                       high_col=high_col, low_col=low_col, volume_col=volume_col,
                       vol_window=vol_window or cfg.data.vol_window, sort=sort,
                       block_len=cfg.encoder.block_len)
    return ds, ds.configure(cfg)
