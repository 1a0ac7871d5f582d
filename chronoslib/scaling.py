"""Per-feature normalisation fitted on the training span only and re-applied identically later.

``Normaliser`` stores a centre and a scale per feature (z-score: mean / std; robust: median / IQR; none:
0 / 1) as plain float lists so it can live inside a checkpoint loaded with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError, DataError

_EPS = 1e-8


@dataclass
class Normaliser:
    method: str = "zscore"
    centre: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)

    @property
    def fitted(self) -> bool:
        return len(self.centre) > 0

    def fit(self, x: np.ndarray) -> Normaliser:
        """Fit on ``x`` (T, F). A constant column gets scale 1 (it stays constant, not NaN)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DataError(f"normaliser needs a non-empty (T, F) array, got shape {x.shape}")
        if self.method == "zscore":
            c, s = x.mean(axis=0), x.std(axis=0)
        elif self.method == "robust":
            q25, c, q75 = np.percentile(x, [25, 50, 75], axis=0)
            s = (q75 - q25) / 1.349  # IQR of a unit normal, so robust and z-score agree on Gaussian data
        elif self.method == "none":
            c, s = np.zeros(x.shape[1]), np.ones(x.shape[1])
        else:
            raise ConfigError(f"data.normalize must be zscore | robust | none, got {self.method!r}")
        s = np.where(s > _EPS, s, 1.0)
        self.centre, self.scale = [float(v) for v in c], [float(v) for v in s]
        return self

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.centre, np.float32), np.asarray(self.scale, np.float32)

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise DataError("normaliser is not fitted")
        c, s = self.arrays()
        if x.shape[-1] != c.shape[0]:
            raise DataError(f"expected {c.shape[0]} features, got {x.shape[-1]}")
        return ((np.asarray(x, np.float32) - c) / s).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "centre": list(self.centre), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normaliser:
        """Inverse of ``to_dict``; refuses a wrong method, unequal lengths, non-finite values or a scale <= 0
        (dividing by it would turn every live window into NaN / inf)."""
        if not isinstance(d, dict) or d.get("method") not in ("zscore", "robust", "none"):
            raise DataError(f"normaliser.method must be zscore | robust | none, got {d!r:.80}")
        try:
            c = np.asarray(d["centre"], dtype=np.float64)
            s = np.asarray(d["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"normaliser centre / scale must be lists of numbers: {exc}") from None
        if c.ndim != 1 or c.shape != s.shape:
            raise DataError(f"normaliser centre and scale must be equal-length lists, got {c.shape} and {s.shape}")
        if not (np.isfinite(c).all() and np.isfinite(s).all() and (s > 0).all()):
            raise DataError("normaliser centre must be finite and scale finite and > 0")
        return cls(method=str(d["method"]), centre=[float(v) for v in c], scale=[float(v) for v in s])
