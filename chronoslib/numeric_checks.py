"""Numeric safety checks of the engine's inputs and outputs (fit data, latents, live latents, registry updates).

Owns the checks that keep non-finite numbers out of the model: values that overflow float32 on the cast,
live windows (shape, values) and their start ticks (``query_tick``: finite, not inside the training span),
windows whose latents come out non-finite, and rows appended to the registry online (finite, unit norm,
increasing ticks); and ``latent_matrix`` / ``unit_latents``, the one validation every consumer of a latent
matrix (registry, orderings, regime clustering, metrics, projection) applies. Every check raises a
``DataError`` naming the row / column / window and builds nothing, so callers run it before they change any state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import DataError, LookAheadError

UNIT_NORM_TOL = 1e-3  # latents are L2-normalised in float32; 1e-3 admits rounding, refuses scaled / zero rows


def _check_latent_shape(shape: tuple[int, ...], finite_rows: Any, what: str) -> None:
    """The one latent check: a non-empty (N, D) matrix whose rows are all finite, else DataError naming the row."""
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{what} must be a non-empty (N, D) array, got shape {tuple(shape)}")
    finite_rows = np.asarray(finite_rows)
    if not finite_rows.all():
        raise DataError(f"{what} contain NaN or inf (first in row {int(np.argmin(finite_rows))})")


def latent_matrix(z: Any, what: str = "latents") -> torch.Tensor:
    """A latent matrix (N, D) as a contiguous float32 CPU tensor: non-empty, 2-D and finite, else DataError.

    Accepts a NumPy array, a tensor (detached; any device) or anything ``np.asarray`` takes.
    """
    t = (z.detach() if torch.is_tensor(z) else torch.from_numpy(np.asarray(z, dtype=np.float32)))
    t = t.to("cpu", torch.float32)
    _check_latent_shape(tuple(t.shape), torch.isfinite(t).all(1).numpy() if t.ndim == 2 else True, what)
    return t.contiguous()


def unit_latents(z: Any, what: str = "latents") -> np.ndarray:
    """Latents as float64 NumPy rows scaled to unit length (a zero row stays zero): (N, D).

    Same checks as ``latent_matrix``; kept in float64 throughout, so float64 input loses no precision.
    """
    x = np.asarray(z.detach().cpu().numpy() if torch.is_tensor(z) else z, dtype=np.float64)
    _check_latent_shape(x.shape, np.isfinite(x).all(1) if x.ndim == 2 else True, what)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def check_cast_finite(arr32: np.ndarray, what: str, columns: Sequence[Any] | None = None) -> None:
    """Refuse values that were finite before the float32 cast but overflowed it (|x| > 3.4e38)."""
    bad = ~np.isfinite(arr32)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    r, c = int(rows[0]), int(cols[0])
    name = f"column {columns[c]!r}" if columns is not None else f"column {c}"
    raise DataError(f"{what} has {int(bad.sum())} value(s) too large for float32 (|x| > 3.4e38); first at row "
                    f"{r}, {name}. Rescale the data first")


def check_latents_finite(q: torch.Tensor, what: str = "window") -> None:
    """Refuse a finite input whose latents are non-finite (values so large the encoder overflows)."""
    if bool(torch.isfinite(q).all()):
        return
    if q.ndim == 2 and q.shape[0] > 1:
        i = int((~torch.isfinite(q).all(1)).nonzero()[0, 0])
        raise DataError(f"window {i} gives a non-finite latent (its values overflow the encoder); "
                        "rescale the windows to the training data's range")
    raise DataError(f"{what} gives a non-finite latent (its values overflow the encoder); "
                    "rescale it to the training data's range")


def as_ticks(timestamp: Any) -> float:
    """A query tick from a plain number; other types (dates, strings, tensors of several values) are refused."""
    if isinstance(timestamp, (bool, np.bool_)):
        raise DataError(f"timestamp must be a number of ticks (int or float), got a bool {timestamp!r}")
    if torch.is_tensor(timestamp) and timestamp.numel() == 1 and not timestamp.dtype.is_complex:
        timestamp = timestamp.item()
    if isinstance(timestamp, np.ndarray) and timestamp.shape == () and np.issubdtype(timestamp.dtype, np.number):
        timestamp = timestamp.item()
    if not isinstance(timestamp, (int, float, np.integer, np.floating)) or isinstance(timestamp, np.complexfloating):
        raise DataError(f"timestamp must be a number of ticks (int or float; the model counts ticks from the "
                        f"first training row), got {type(timestamp).__name__} {timestamp!r}. Convert dates to "
                        "their row position first")
    if isinstance(timestamp, (int, np.integer)) and abs(int(timestamp)) > 2 ** 53:
        raise DataError(f"timestamp {timestamp} is beyond 2**53 and cannot be represented exactly as a tick")
    return float(timestamp)


def query_tick(timestamp: Any, train_end: int) -> float:
    """The tick a live window starts at: ``train_end`` when ``timestamp`` is None, else ``as_ticks(timestamp)``,
    finite and not inside the training span [0, train_end) (LookAheadError)."""
    if timestamp is None:
        return float(train_end)
    t = as_ticks(timestamp)
    if not np.isfinite(t):
        raise DataError(f"timestamp must be a finite number of ticks, got {timestamp!r}")
    if t < train_end:
        raise LookAheadError(f"timestamp {timestamp} is inside the training span [0, {train_end}): a live window "
                             f"must start at or after tick {train_end} (anti-look-ahead check)")
    return t


def live_windows(windows: Any, block_len: int, input_dim: int) -> torch.Tensor:
    """One window (L, F) or a stack (M, L, F) as an (M, L, F) float32 tensor: numeric, the model's shape (named
    in the error) and finite."""
    w = torch.from_numpy(numeric_array(windows, "window"))
    if w.ndim == 2:
        w = w.unsqueeze(0)
    if w.ndim != 3 or tuple(w.shape[1:]) != (block_len, input_dim):
        raise DataError(f"window must have shape (block_len={block_len}, input_dim={input_dim}), "
                        f"got {tuple(w.shape)}")
    w = w.float()
    if not torch.isfinite(w).all():
        raise DataError("window contains NaN or inf values")
    return w


def check_update(q: torch.Tensor, t: np.ndarray, last_tick: float, train_end: float) -> None:
    """Rows for ``update_registry``: finite unit latents, finite ticks strictly increasing within the call,
    after the newest tick already stored and not inside the training span. Checked all before any append."""
    bad = ~np.isfinite(t)
    if bad.any():
        raise DataError(f"ticks[{int(np.nonzero(bad)[0][0])}] is {t[bad][0]!r}; expected a finite tick")
    if t.size and t[0] < train_end:
        raise LookAheadError(f"ticks[0]={t[0]:g} is inside the training span [0, {train_end:g}) "
                             "(anti-look-ahead check)")
    if t.size and t[0] <= last_tick:
        raise DataError(f"ticks[0]={t[0]:g} is not after the newest tick already in the registry ({last_tick:g})")
    step = np.diff(t) <= 0
    if step.any():
        i = int(np.nonzero(step)[0][0]) + 1
        raise DataError(f"ticks must be strictly increasing: ticks[{i}]={t[i]:g} follows ticks[{i - 1}]={t[i - 1]:g}")
    fin = torch.isfinite(q).all(1)
    if not bool(fin.all()):
        raise DataError(f"latents row {int((~fin).nonzero()[0, 0])} contains NaN or inf")
    norm = q.double().norm(dim=1)
    off = (norm - 1.0).abs() > UNIT_NORM_TOL
    if bool(off.any()):
        i = int(off.nonzero()[0, 0])
        raise DataError(f"latents row {i} has L2 norm {float(norm[i]):.6g}; expected unit norm (within "
                        f"{UNIT_NORM_TOL}) as returned by predict_live / embed")


def numeric_array(data: Any, what: str) -> np.ndarray:
    """A real-valued numeric ndarray from an array-like / tensor; ragged lists, objects, strings, bools and
    complex numbers are refused by name (numpy would raise its own error or silently drop the imaginary part)."""
    if torch.is_tensor(data):
        if data.dtype.is_complex or data.dtype == torch.bool:
            raise DataError(f"{what} must be real numeric values, got a tensor of dtype {data.dtype}")
        data = data.detach().cpu()
        if data.is_floating_point() and data.dtype not in (torch.float32, torch.float64):
            data = data.float()  # bfloat16 / float16 have no numpy dtype
        return data.numpy()
    try:
        arr = np.asarray(data)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} must be a rectangular numeric array, got {type(data).__name__} ({e})") from None
    if arr.dtype.kind not in "iuf":  # signed / unsigned int, float: not bool, complex, object, str, datetime
        raise DataError(f"{what} must be real numeric values (int or float), got dtype {arr.dtype}")
    return arr
