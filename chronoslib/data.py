"""Data layer: files in, (T, F) features out, with precise errors for bad input.

Owns loading CSV / Parquet (path or uploaded file object), timestamp / feature / label column choice,
feature engineering from prices, missing-value policy, the time split and the shipped sample datasets.
Returns a ``Dataset``; knows nothing about models.

NOTE: minimal first version (sample loading only); the data-layer issue grows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data")
SAMPLES = {"Synthetic regimes (labelled)": "synthetic_regimes.csv"}


@dataclass
class Dataset:
    name: str
    frame: pd.DataFrame            # the table as loaded (sorted), for previews
    features: np.ndarray           # (T, F) float32 model input (after feature engineering, before normalising)
    feature_names: list[str]
    timestamps: np.ndarray | None  # (T,) datetime64 / numbers aligned with ``features``, or None
    labels: np.ndarray | None      # (T,) int ground-truth regime per tick, or None
    prices: np.ndarray | None      # (T,) a price series for charts and returns, or None
    split: int                     # first held-out tick: train = features[:split], held-out = features[split:]

    @property
    def train(self) -> np.ndarray:
        return self.features[: self.split]

    @property
    def heldout(self) -> np.ndarray:
        return self.features[self.split:]


def load_sample(name: str, holdout: float = 0.2) -> Dataset:
    """One of ``SAMPLES`` by display name."""
    if name not in SAMPLES:
        raise DataError(f"unknown sample dataset {name!r}; choose one of {list(SAMPLES)}")
    path = os.path.join(SAMPLE_DIR, SAMPLES[name])
    df = pd.read_csv(path)
    feats = [c for c in df.columns if c.startswith("f")]
    t = len(df)
    return Dataset(name=name, frame=df, features=df[feats].to_numpy(np.float32), feature_names=feats,
                   timestamps=pd.to_datetime(df["timestamp"]).to_numpy(), labels=df["regime"].to_numpy(),
                   prices=df["price"].to_numpy(), split=int(round(t * (1 - holdout))))


def load_for_training(path: str, cfg, features: list[str] | None = None, timestamp_col: str = "",
                      label_col: str = "", holdout: float = 0.0):
    """Load a file for the ``train`` command; returns (Dataset, cfg with input_dim set).

    Minimal version: CSV with numeric feature columns; the data-layer issue replaces it.
    """
    df = pd.read_csv(path)
    skip = {timestamp_col, label_col, "timestamp", "regime", "label"}
    cols = features or [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
    x = df[cols].to_numpy(np.float32)
    cfg.encoder.input_dim = x.shape[1]
    t = len(df)
    return Dataset(name=os.path.basename(path), frame=df, features=x, feature_names=cols, timestamps=None,
                   labels=None, prices=None, split=int(round(t * (1 - holdout)))), cfg
