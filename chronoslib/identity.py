"""Identities of fitted models and datasets: short, stable fingerprints that derived results are tagged with.

A result derived from a model (replay records, drift, neighbour regimes, evidence runs) is stored with the
fingerprints of the model and data it was made with, so the app can tell a result of a previous model from a
current one. Pure functions, no caches: the app computes each fingerprint once, when a model or dataset becomes
the session's, and keeps it in its session state.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def model_fingerprint(engine: Any) -> str:
    """12 hex digits of sha1 over a fitted engine's block latents, config and fit time; "" for no / an unfitted
    engine. Two fits differ (their latents or fit times do); one model keeps its fingerprint through save / load.
    """
    z = None if engine is None else getattr(engine, "block_latents", None)
    if z is None:
        return ""
    a = np.ascontiguousarray(z)
    h = hashlib.sha1(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
    h.update(json.dumps(engine.cfg.to_dict(), sort_keys=True, default=str).encode())
    h.update(str(engine.meta.get("fitted_at", "")).encode())
    return h.hexdigest()[:12]


def data_fingerprint(features: np.ndarray, name: str = "", split: int | None = None) -> str:
    """12 hex digits of sha1 over a dataset's name, training split and feature array (dtype, shape, bytes)."""
    x = np.ascontiguousarray(features)
    h = hashlib.sha1(f"{name}|{split}|{x.dtype.str}|{x.shape}|".encode())
    h.update(x.tobytes())
    return h.hexdigest()[:12]
