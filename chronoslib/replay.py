"""Live replay as a session object, independent of any UI.

Owns: the span being replayed (``ReplaySource``: the held-out part of a dataset, an uploaded continuation, or
either with a simulated structural break), cutting it into live windows (block_len ticks every ``stride``
ticks), stepping ``predict_live`` through them in time order with a results history, an optional
online-updating registry next to the frozen one (same windows, both predictions kept), and the per-window
arrays the live plots and drift diagnostics read. Knows nothing about Streamlit; the replay page holds one
``ReplaySession`` in its session state and calls ``step`` from a timer.

Query timestamps are absolute ticks: ``source.start_tick + window start``, where ``start_tick`` is at or after
the engine's ``train_end_tick`` (the anti-look-ahead check in ``predict_live`` must pass).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import drift
from .errors import DataError, NotFittedError
from .readers import MAX_FILE_BYTES, MAX_ROWS, read_table
from .registry import Registry


@dataclass
class ReplaySource:
    name: str
    features: np.ndarray               # (T, F) raw features (the engine normalises them itself)
    start_tick: int                    # absolute tick of features[0]; query time of a window = start_tick + start
    prices: np.ndarray | None = None   # (T,) price series for the chart, or None
    timestamps: np.ndarray | None = None  # (T,) datetimes / numbers, or None
    labels: np.ndarray | None = None   # (T,) ground-truth regimes, or None

    @property
    def n_ticks(self) -> int:
        return int(self.features.shape[0])


def heldout_source(dataset: Any, engine: Any) -> ReplaySource:
    """The held-out span of a ``Dataset`` (ticks ``split:``), replayed right after the training span."""
    if engine is None or not getattr(engine, "fitted", False):
        raise NotFittedError("no fitted model: train one or load a checkpoint before replaying")
    sl = slice(dataset.split, None)
    if dataset.features.shape[0] - dataset.split < engine.cfg.encoder.block_len:
        raise DataError(f"the held-out span of {dataset.name!r} has {dataset.features.shape[0] - dataset.split} "
                        f"ticks, fewer than one window of block_len={engine.cfg.encoder.block_len}")
    return ReplaySource(
        name=f"{dataset.name} · held-out", features=dataset.features[sl],
        start_tick=max(int(dataset.split), int(engine.train_end_tick)),
        prices=None if dataset.prices is None else np.asarray(dataset.prices)[sl],
        timestamps=None if dataset.timestamps is None else np.asarray(dataset.timestamps)[sl],
        labels=None if dataset.labels is None else np.asarray(dataset.labels)[sl])


def load_continuation(file: Any, feature_names: list[str], start_tick: int, name: str | None = None,
                      data_cfg: Any = None, *, max_bytes: int | None = MAX_FILE_BYTES,
                      max_rows: int | None = MAX_ROWS) -> ReplaySource:
    """An uploaded continuation (CSV or Parquet path / file object) with the model's feature columns.

    Read by ``readers.read_table`` like any other table (delimiter sniffing, decimal commas, the interactive
    size limits ``max_bytes`` / ``max_rows``, its errors for empty or unreadable files).

    When ``data_cfg`` (the model's ``cfg.data``) records engineered features (``transforms``), the file must
    carry the raw source columns instead and the same recipe is applied (``features.raw_features``; its warm-up
    rows are dropped). Optional columns: the price (``data_cfg.price_col`` or ``price``) for the chart, the
    timestamp, ``regime`` / ``label`` (ground truth). Errors name the missing columns, the first bad row and the
    expected feature list.
    """
    path = os.fspath(file) if isinstance(file, (str, os.PathLike)) else None
    fname = name or getattr(file, "name", None) or path or "upload"
    short = os.path.basename(str(fname))
    try:
        df = read_table(file, name=short, max_bytes=max_bytes, max_rows=max_rows)
    except OSError as exc:      # a path that is gone or unreadable; read_table's own errors are DataErrors
        raise DataError(f"{short}: cannot read the file ({exc})") from exc
    if data_cfg is not None and list(getattr(data_cfg, "transforms", []) or []):
        from .features import raw_features

        try:
            arr = raw_features(df, data_cfg)                      # (T - warm-up, F)
        except DataError as exc:
            raise DataError(f"{short}: {exc}") from exc
        df = df.iloc[len(df) - len(arr):]
        return _continuation(df, arr, short, start_tick, data_cfg)
    missing = [c for c in feature_names if c not in df.columns]
    if missing:
        raise DataError(f"{short}: feature column(s) {missing} not found; the model expects "
                        f"{list(feature_names)}, the file has {list(df.columns)}")
    x = df[list(feature_names)]
    nonnum = [c for c in feature_names if not pd.api.types.is_numeric_dtype(x[c])]
    if nonnum:
        raise DataError(f"{short}: column(s) {nonnum} are not numeric")
    arr = x.to_numpy(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.nonzero(bad)
        raise DataError(f"{short}: {int(bad.sum())} missing / non-finite value(s); first at "
                        f"row {int(r[0])}, column {feature_names[int(c[0])]!r}")
    return _continuation(df, arr, short, start_tick, data_cfg)


def _continuation(df: pd.DataFrame, arr: np.ndarray, name: str, start_tick: int, data_cfg: Any) -> ReplaySource:
    """The optional price / timestamp / label columns of an uploaded continuation next to its features."""
    price_col = (getattr(data_cfg, "price_col", "") if data_cfg is not None else "") or "price"
    ts_col = (getattr(data_cfg, "timestamp_col", "") if data_cfg is not None else "") or "timestamp"
    prices = df[price_col].to_numpy(np.float64) if price_col in df.columns and \
        pd.api.types.is_numeric_dtype(df[price_col]) else None
    ts = pd.to_datetime(df[ts_col], errors="coerce").to_numpy() if ts_col in df.columns else None
    lab_col = next((c for c in (getattr(data_cfg, "label_col", "") if data_cfg is not None else "", "regime", "label")
                    if c and c in df.columns), None)
    labels = df[lab_col].to_numpy() if lab_col else None
    return ReplaySource(name=name, features=arr, start_tick=int(start_tick), prices=prices, timestamps=ts,
                        labels=labels)


def with_structural_break(source: ReplaySource, at: float = 0.5, vol_scale: float = 1.5,
                          offset: float = 1.0) -> ReplaySource:
    """A copy of ``source`` whose features after fraction ``at`` are scaled by ``vol_scale`` around their
    mean and shifted by ``offset``: a market the model never saw, to show drift detection at work."""
    if not 0.0 <= at < 1.0:
        raise DataError(f"break position must be a fraction in [0, 1), got {at}")
    if vol_scale <= 0:
        raise DataError(f"volatility scale must be > 0, got {vol_scale}")
    x = source.features.astype(np.float32).copy()
    b = int(round(at * x.shape[0]))
    mu = x[b:].mean(axis=0, keepdims=True)
    x[b:] = mu + vol_scale * (x[b:] - mu) + offset
    return replace(source, name=f"{source.name} · break at {at:.0%} (vol ×{vol_scale:g}, offset {offset:+g})",
                   features=x)


SOURCES = {"heldout": "Held-out span", "break": "Held-out span with a simulated structural break",
           "upload": "Uploaded continuation"}   # what can be replayed (or checked for drift), by kind


def build_source(kind: str, dataset: Any, engine: Any, upload: Any = None, break_at: float = 0.5,
                 break_vol: float = 1.5, break_offset: float = 1.0) -> ReplaySource:
    """The ``ReplaySource`` of one of ``SOURCES``: the dataset's held-out span, that span with a simulated
    structural break (``with_structural_break``), or an uploaded continuation file (``load_continuation``)."""
    if kind not in SOURCES:
        raise DataError(f"replay source must be one of {list(SOURCES)}, got {kind!r}")
    if kind == "upload":
        if upload is None:
            raise DataError("upload a CSV or Parquet file with the model's feature columns "
                            f"({', '.join(dataset.feature_names)}) to replay it")
        return load_continuation(upload, dataset.feature_names, engine.train_end_tick, data_cfg=engine.cfg.data)
    src = heldout_source(dataset, engine)
    return with_structural_break(src, break_at, break_vol, break_offset) if kind == "break" else src


def window_starts(n_ticks: int, block_len: int, stride: int) -> np.ndarray:
    """Start ticks (relative) of every complete window of ``block_len`` ticks, ``stride`` apart: (M,)."""
    if stride < 1:
        raise DataError(f"stride must be >= 1 tick, got {stride}")
    if n_ticks < block_len:
        raise DataError(f"the span has {n_ticks} ticks, fewer than one window of block_len={block_len}")
    return np.arange(0, n_ticks - block_len + 1, stride, dtype=np.int64)


class ReplaySession:
    """Steps live windows of a ``ReplaySource`` through a frozen engine (and optionally an online copy).

    The frozen engine is never mutated. With ``online=True`` a shallow copy of the engine with a cloned
    registry receives ``update_registry`` after each window that completes a new non-overlapping block
    (overlapping windows would retrieve themselves), with ``forgetting`` per appended block.
    """

    def __init__(self, engine: Any, source: ReplaySource, stride: int = 8, online: bool = False,
                 forgetting: float = 0.995) -> None:
        if engine is None or not getattr(engine, "fitted", False):
            raise NotFittedError("no fitted model: train one or load a checkpoint before replaying")
        f = engine.cfg.encoder.input_dim
        if source.features.ndim != 2 or source.features.shape[1] != f:
            raise DataError(f"replay data has shape {source.features.shape}; the model expects (T, {f}) features")
        if source.start_tick < engine.train_end_tick:
            raise DataError(f"replay starts at tick {source.start_tick}, inside the training span "
                            f"[0, {engine.train_end_tick}) (anti-look-ahead)")
        if not 0.0 < forgetting <= 1.0:
            raise DataError(f"forgetting factor must be in (0, 1], got {forgetting}")
        self.engine, self.source, self.stride = engine, source, int(stride)
        self.block_len = int(engine.cfg.encoder.block_len)
        self.k = int(min(engine.cfg.routing.top_k, len(engine.registry)))
        self.starts = window_starts(source.n_ticks, self.block_len, self.stride)   # (M,)
        self.online, self.forgetting = bool(online), float(forgetting)
        self.online_engine = None
        if self.online:
            self.online_engine = copy.copy(engine)           # shares weights (read-only), owns its registry
            self.online_engine.registry = engine.registry.clone()
        m, d = len(self.starts), int(engine.cfg.encoder.latent_dim)
        self.position = 0                                     # windows done
        self.confidence = np.full(m, np.nan)
        self.alpha = np.full(m, np.nan)
        self.latency_ms = np.full(m, np.nan)
        self.latents = np.zeros((m, d), dtype=np.float32)
        self.neighbour_ids = np.full((m, self.k), -1, dtype=np.int64)
        self.neighbour_ticks = np.zeros((m, self.k))
        self.neighbour_weights = np.zeros((m, self.k))
        self.online_confidence = np.full(m, np.nan)
        self.online_alpha = np.full(m, np.nan)
        self.online_live_share = np.full(m, np.nan)           # share of online neighbours that are live entries
        self.stage_ms: dict[str, list[float]] = {}
        self._last_appended = -10 ** 12

    # ------------------------------------------------------------------ state
    @property
    def n_windows(self) -> int:
        return int(len(self.starts))

    @property
    def done(self) -> bool:
        return self.position >= self.n_windows

    def tick(self, i: int) -> int:
        """Absolute query tick of window i."""
        return int(self.source.start_tick + self.starts[i])

    def reset(self) -> None:
        """Back to the first window; the online registry restarts from the frozen one."""
        self.__init__(self.engine, self.source, self.stride, self.online, self.forgetting)

    def rewind(self, position: int) -> None:
        """Go back to ``position`` windows done (e.g. what a browser had shown when paused). The frozen
        history is simply cut; an online registry is rebuilt by replaying up to there."""
        position = int(position)
        if not 0 <= position <= self.position:
            raise DataError(f"can only rewind to 0..{self.position} windows, got {position}")
        if self.online:
            self.reset()
            self.step(position)
        else:
            self.position = position
            for v in self.stage_ms.values():
                del v[position:]

    # ------------------------------------------------------------------ stepping
    def step(self, n: int = 1) -> int:
        """Predict the next ``n`` windows (fewer at the end); returns how many were done."""
        bl, x = self.block_len, self.source.features
        done = 0
        while done < n and not self.done:
            i = self.position
            s = int(self.starts[i])
            w, t = x[s: s + bl], self.tick(i)
            p = self.engine.predict_live(w, timestamp=t)
            self.confidence[i], self.alpha[i] = p.regime_confidence, float(p.alpha_prediction)
            self.latency_ms[i] = p.system_latency_ms
            self.latents[i] = p.latent.numpy()
            kk = len(p.neighbour_indices)
            self.neighbour_ids[i, :kk] = p.neighbour_indices
            self.neighbour_ticks[i, :kk] = p.neighbour_ticks
            self.neighbour_weights[i, :kk] = p.neighbour_weights
            for name, v in p.stage_latency_ms.items():
                self.stage_ms.setdefault(name, []).append(v)
            if self.online_engine is not None:
                po = self.online_engine.predict_live(w, timestamp=t)
                self.online_confidence[i], self.online_alpha[i] = po.regime_confidence, float(po.alpha_prediction)
                self.online_live_share[i] = float(np.mean(np.asarray(po.neighbour_indices) < 0))
                if s - self._last_appended >= bl:            # a new non-overlapping block is complete
                    self.online_engine.update_registry(po.latent[None], [t], self.forgetting)
                    self._last_appended = s
            self.position += 1
            done += 1
        return done

    # ------------------------------------------------------------------ views
    def current(self) -> int:
        """Index of the latest predicted window (-1 before the first step)."""
        return self.position - 1

    def neighbour_table(self, i: int | None = None, regimes: dict[str, np.ndarray] | None = None,
                        train_timestamps: np.ndarray | None = None) -> list[dict]:
        """Rows describing the neighbours of window i (latest by default): block id ("live" for an appended
        entry), start tick, age in ticks, time (when timestamps are given), learned regime ("regime") and other
        labellings ("truth regime"), SPD weight. Empty before the first step."""
        i = self.current() if i is None else int(i)
        if i < 0:
            return []
        rows = []
        for j in range(self.k):
            bid, tk = int(self.neighbour_ids[i, j]), float(self.neighbour_ticks[i, j])
            row: dict[str, Any] = {"block": bid if bid >= 0 else "live", "start": int(tk),
                                   "age": int(self.tick(i) - tk)}
            if train_timestamps is not None and 0 <= int(tk) < len(train_timestamps):
                row["when"] = str(pd.Timestamp(train_timestamps[int(tk)]))[:16]
            for name, lab in (regimes or {}).items():
                row["regime" if name == "cluster" else f"{name} regime"] = int(lab[bid]) if 0 <= bid < len(lab) else "—"
            row["SPD weight"] = round(float(self.neighbour_weights[i, j]), 4)
            rows.append(row)
        return rows

    def records(self) -> list[dict]:
        """One dict per replayed window (frozen model): tick, regime_confidence, neighbour_indices,
        neighbour_weights; the format ``regimes.block_confidence`` reads to colour the manifold."""
        return [{"tick": self.tick(i), "regime_confidence": float(self.confidence[i]),
                 "neighbour_indices": self.neighbour_ids[i].tolist(),
                 "neighbour_weights": self.neighbour_weights[i].tolist()} for i in range(self.position)]

    def analysis(self) -> dict[str, np.ndarray]:
        """The replayed windows that do not overlap (one every block_len ticks), in the same form as
        ``batch_analysis``: start, tick, latent, confidence, alpha, neighbour_ids, neighbour_age."""
        step = max(1, self.block_len // self.stride)
        idx = np.arange(0, self.position, step)
        ticks = self.source.start_tick + self.starts[idx]
        return {"start": self.starts[idx], "tick": ticks, "latent": self.latents[idx],
                "confidence": self.confidence[idx], "alpha": self.alpha[idx],
                "neighbour_ids": self.neighbour_ids[idx],
                "neighbour_age": drift.neighbour_age(ticks, self.neighbour_ticks[idx])}

    def alert(self, threshold: float, patience: int) -> dict:
        """The deployment rule on the frozen model's confidence so far (see drift.low_confidence_alert)."""
        return drift.low_confidence_alert(self.confidence[: self.position], threshold, patience)

    def summary(self) -> dict[str, float]:
        """Headline numbers of the windows done so far."""
        p = self.position
        out = {"windows": float(p), "of": float(self.n_windows)}
        if p:
            c, lat = self.confidence[:p], self.latency_ms[:p]
            out.update(mean_confidence=float(c.mean()), min_confidence=float(c.min()),
                       p50_ms=float(np.percentile(lat, 50)), p99_ms=float(np.percentile(lat, 99)),
                       mean_age=float(drift.neighbour_age(
                           [self.tick(i) for i in range(p)], self.neighbour_ticks[:p]).mean()))
            if self.online_engine is not None:
                out["online_mean_confidence"] = float(self.online_confidence[:p].mean())
        return out


def batch_analysis(engine: Any, source: ReplaySource, stride: int | None = None,
                   max_calls: int = 2000) -> dict[str, np.ndarray]:
    """All windows of ``source`` through ``engine.predict_batch``: per window tick, latent, confidence, alpha,
    neighbour ids and neighbour age (ticks).

    stride defaults to block_len (non-overlapping windows, like the training blocks: the fair sample for
    drift statistics). SPD depends on the query time, so windows are sent in chunks that share one timestamp
    (their first window's tick): chunks of one window (exactly ``predict_live``'s answers) while that takes at
    most ``max_calls`` calls, larger chunks beyond that.
    """
    if engine is None or not getattr(engine, "fitted", False):
        raise NotFittedError("no fitted model: train one or load a checkpoint first")
    bl = int(engine.cfg.encoder.block_len)
    starts = window_starts(source.n_ticks, bl, stride or bl)
    x = np.lib.stride_tricks.sliding_window_view(source.features, bl, axis=0)[starts]  # (M, F, L)
    x = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float32)                   # (M, L, F)
    ticks = source.start_tick + starts
    m = len(starts)
    chunk = max(1, -(-m // max_calls))
    parts = [engine.predict_batch(x[i: i + chunk], timestamp=float(ticks[i])) for i in range(0, m, chunk)]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ids = np.asarray(out["neighbour_indices"])
    bs = np.asarray(engine.block_starts, dtype=np.float64)
    nb_ticks = np.where(ids >= 0, bs[np.clip(ids, 0, len(bs) - 1)], np.nan)
    return {"start": starts, "tick": ticks, "latent": out["latent"], "confidence": out["confidence"],
            "alpha": out["alpha"], "neighbour_ids": ids,
            "neighbour_age": drift.neighbour_age(ticks, nb_ticks)}


def suggested_threshold(engine: Any, quantile: float = 0.05, max_blocks: int = 2000, seed: int = 0) -> float:
    """A data-driven default for the re-fit threshold: the ``quantile`` of the confidence the training blocks
    get from their own top-k neighbours (``Registry.route`` without SPD decay, each block left out of its own
    neighbours), rounded down to 0.05.

    Live confidence persistently under what even the lowest training blocks get means the live windows have
    no counterpart on the manifold. Uses at most ``max_blocks`` query blocks (seeded sample) against all.
    """
    z = torch.from_numpy(np.asarray(engine.block_latents, dtype=np.float32))
    n = z.shape[0]
    if n < 2:
        return 0.5
    k = int(min(engine.cfg.routing.top_k, n - 1))
    rows = np.arange(n) if n <= max_blocks else np.random.default_rng(seed).choice(n, max_blocks, replace=False)
    reg = Registry(n, z.shape[1], decay=1.0, index_threshold=n + 1)    # SPD-free, exact: every block against all
    reg.add(z, np.arange(n))
    r = [torch.from_numpy(rows[a:a + 256]) for a in range(0, len(rows), 256)]  # (256, N) cosines at a time
    conf = torch.cat([reg.route(z[i], 0.0, k, leave_out=i).confidence for i in r]).double().numpy()
    return float(np.clip(np.floor(np.quantile(conf, quantile) / 0.05) * 0.05, 0.05, 0.95))
