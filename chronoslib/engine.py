"""ChronosDefragEngine: wires the stages together (fit / embed / predict_live / save / load).

fit: data (T, F) -> normalise (fitted on this span) -> blocks (N, L, F) -> encoder -> latents (N, D)
     -> pseudo-timeline pi -> registry -> predictor trained on windows in pi order -> registry states.
predict_live: window (L, F) -> latent q (``live_path``) -> ``Registry.route_one`` (SPD top-k, blended predictor
     state) -> one step -> LivePrediction (alpha, confidence, neighbours, per-stage latency); predict_batch (chunks
     on worker threads) / update_registry go through ``Registry.route`` alike.
The engine owns no maths of its own; each stage lives in its module and can be used alone.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from . import metrics
from .blocks import SlicedBlocks, slice_blocks
from .checkpoint import checkpoint_bytes, read_checkpoint, save_checkpoint
from .checkpoint_validate import build_parts, check_architecture, checkpoint_payload
from .columns import feature_columns, frame_values
from .config import DefragConfig
from .distributed import group_info
from .encoder import RegimeEncoder
from .errors import CheckpointError, ConfigError, DataError, NotFittedError, RegistryEmptyError
from .features import live_window, raw_features
from .live_path import LivePath, in_chunks
from .numeric_checks import (
    check_cast_finite,
    check_update,
    live_windows,
    numeric_array,
    query_tick,
)
from .predictor import TemporalPredictor
from .registry import Registry
from .scaling import Normaliser
from .timeline import build_pseudo_timeline, path_cost
from .training import encode_blocks, preceding_states, train_encoder, train_predictor

Progress = Callable[[str, int, int, dict], None]


@dataclass
class LivePrediction:
    alpha_prediction: torch.Tensor      # 0-d tensor: predicted first latent coordinate of the next position
    regime_confidence: float            # in [0, 1]: SPD-weighted cosine of the query to its neighbours
    system_latency_ms: float            # wall time of the whole call
    neighbour_indices: list[int]        # training block ids of the neighbours (-1: appended live entry)
    neighbour_scores: list[float]       # their SPD-weighted scores s_hat
    stage_latency_ms: dict[str, float] = field(default_factory=dict)  # encode / query / spd / predictor
    latent: torch.Tensor | None = None          # (D,) the window's latent
    forecast: torch.Tensor | None = None        # (forecast_dim,) predicted leading coordinates
    neighbour_weights: list[float] = field(default_factory=list)  # normalised SPD weights (sum to 1)
    neighbour_ticks: list[float] = field(default_factory=list)    # start ticks of the neighbours


def _resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was requested but no CUDA device is available; use 'auto' or 'cpu'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class ChronosDefragEngine:
    def __init__(self, cfg: DefragConfig | None = None) -> None:
        self._explicit_cfg = cfg is not None
        self.cfg = (cfg if cfg is not None else DefragConfig()).validate()
        self.encoder: RegimeEncoder | None = None
        self.predictor: TemporalPredictor | None = None
        self.registry: Registry | None = None
        self.normaliser: Normaliser | None = None
        self.block_latents: np.ndarray | None = None   # (N, D)
        self.block_starts: np.ndarray | None = None    # (N,)
        self.pseudo_timeline: np.ndarray | None = None  # (N,)
        self.history: list[dict] = []
        self.fit_summary: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}                 # free-form provenance (dataset name, fitted_at, ...)
        self.train_end_tick: int = 0                   # live windows must start at or after this tick

    # ------------------------------------------------------------------ input handling
    @property
    def fitted(self) -> bool:
        return self.registry is not None and len(self.registry) > 0

    def _as_array(self, data: Any, what: str = "data") -> np.ndarray:
        """(T, F) float32 from ndarray / tensor / DataFrame, with shape and value checks."""
        names = None  # feature column names, to name the column of a bad value
        if self.cfg.data.transforms and hasattr(data, "columns"):  # raw prices: the recorded feature recipe
            data = raw_features(data, self.cfg.data)               # (T - warmup, F)
        if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas DataFrame: the data layer's columns
            d = self.cfg.data
            names = feature_columns(data, d.features, exclude=(d.label_col, d.timestamp_col))
            data = frame_values(data, names, what)                     # (T, F) float64
        arr = numeric_array(data, what)
        if arr.ndim != 2:
            raise DataError(f"{what} must be 2-D (T ticks, F features), got shape {arr.shape}")
        f = self.cfg.encoder.input_dim
        if arr.shape[1] != f:
            raise DataError(f"{what} has {arr.shape[1]} features but encoder.input_dim is {f}")
        bad = ~np.isfinite(arr)
        if bad.any():
            rows, cols = np.nonzero(bad)
            col = f"column {names[int(cols[0])]!r}" if names else f"column {int(cols[0])}"
            raise DataError(f"{what} contains {int(bad.sum())} NaN/inf value(s); first at row {int(rows[0])}, "
                            f"{col}. Clean or forward-fill the data first")
        with np.errstate(over="ignore"):  # overflow is reported by check_cast_finite with row and column
            out = arr.astype(np.float32, copy=False)
        check_cast_finite(out, what, names)  # finite float64 can still overflow float32 (|x| > 3.4e38)
        return out

    # ------------------------------------------------------------------ training
    def fit(self, data: Any, progress: Progress | None = None, warm_start: bool = False) -> ChronosDefragEngine:
        """Train encoder, build pseudo-timeline and registry, train predictor. Returns self.

        A second call starts from fresh weights unless ``warm_start=True``. Nothing is assigned until every step
        has succeeded, so a failure leaves a previously fitted engine untouched.
        """
        t_start = time.perf_counter()
        cfg = self.cfg.validate()
        arr = self._as_array(data)                                            # (T, F)
        sl, normaliser, blocks = self._normalised_blocks(arr)                 # blocks (N, L, F) on the device
        gen, history = torch.Generator().manual_seed(cfg.seed), []
        encoder, predictor = self._initial_models(warm_start, blocks.device)
        train_encoder(encoder, blocks, cfg, gen, history, progress)
        encoder = encoder.cpu().eval()
        z = encode_blocks(encoder, blocks.cpu())                              # (N, D)
        order, chain_s = self._pseudo_timeline(z, progress)                   # (N,)
        train_predictor(predictor, z, torch.from_numpy(order), cfg, gen, history, progress)
        predictor = predictor.cpu().eval()
        states = preceding_states(predictor, z, torch.from_numpy(order))      # (N, S)
        registry = self._routing_registry(z, sl.starts, states)

        self.encoder, self.predictor, self.registry, self.normaliser = encoder, predictor, registry, normaliser
        self.block_latents, self.block_starts, self.pseudo_timeline = z.numpy(), sl.starts, order
        self.history, self.train_end_tick = history, int(arr.shape[0])
        self.fit_summary = self._fit_summary(sl, chain_s, time.perf_counter() - t_start)
        self.meta.update(fitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         **dict(zip(("world_size", "backend"), group_info())))   # (1, "none") in one process
        self._warm_up()
        return self

    def _normalised_blocks(self, arr: np.ndarray) -> tuple[SlicedBlocks, Normaliser, torch.Tensor]:
        """Blocks of ``arr`` (T, F) (the slicing, a normaliser fitted on the blocks' span, the normalised
        (N, L, F) blocks on the configured device)."""
        L = self.cfg.encoder.block_len
        sl = slice_blocks(arr, L)  # raises "Need at least 4 blocks"
        if sl.trailing:
            warnings.warn(f"{sl.trailing} trailing tick(s) do not fill a block of {L} and were not used for "
                          "training", stacklevel=3)
        normaliser = Normaliser(self.cfg.data.normalize).fit(arr[: sl.n_blocks * L])
        blocks = torch.from_numpy(normaliser.transform(sl.blocks)).to(_resolve_device(self.cfg.device))
        return sl, normaliser, blocks

    def _initial_models(self, warm_start: bool, dev: torch.device) -> tuple[RegimeEncoder, TemporalPredictor]:
        """The current encoder and predictor (``warm_start`` on a fitted engine) or fresh seeded ones."""
        if warm_start and self.encoder is not None and self.predictor is not None:
            return self.encoder.to(dev), self.predictor.to(dev)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
            torch.manual_seed(self.cfg.seed)
            encoder = RegimeEncoder(self.cfg.encoder).to(dev)
            return encoder, TemporalPredictor(self.cfg.predictor, self.cfg.encoder.latent_dim).to(dev)

    def _pseudo_timeline(self, z: torch.Tensor, progress: Progress | None) -> tuple[np.ndarray, float]:
        """The pseudo-timeline of latents z (N, D), (N,) int64, and the seconds it took."""
        t0 = time.perf_counter()
        order = build_pseudo_timeline(z, self.cfg.routing.chain_method, self.cfg.routing.approx_threshold)
        chain_s = time.perf_counter() - t0
        if progress is not None:
            progress("pseudo_timeline", 1, 1, {"seconds": chain_s})
        return order, chain_s

    def _routing_registry(self, z: torch.Tensor, starts: np.ndarray, states: torch.Tensor) -> Registry:
        """The registry of the training blocks (latents (N, D), start ticks (N,), states (N, S)) with the
        routing config's capacity, decay and index settings."""
        r, n = self.cfg.routing, z.shape[0]
        if r.registry_capacity < n:
            warnings.warn(f"routing.registry_capacity={r.registry_capacity} is below the {n} training blocks: "
                          f"the {n - r.registry_capacity} oldest cannot be retrieved live. Raise the capacity to "
                          "keep them routable", stacklevel=3)
        registry = Registry(r.registry_capacity, z.shape[1], states.shape[1], self.cfg.encoder.block_len, r.decay,
                            index_threshold=r.index_threshold, index_nprobe=r.index_nprobe, index_cells=r.index_cells)
        registry.add(z, starts, torch.arange(n), states)
        return registry

    def _fit_summary(self, sl: SlicedBlocks, chain_s: float, fit_s: float) -> dict[str, Any]:
        """Headline numbers of the fitted blocks, pseudo-timeline and latents."""
        zn, order = self.block_latents, self.pseudo_timeline
        pc_pseudo, pc_chrono = path_cost(zn, order), path_cost(zn)
        return {
            "n_blocks": sl.n_blocks, "n_ticks": self.train_end_tick, "trailing_ticks": sl.trailing,
            "timeline_entropy": metrics.timeline_entropy(order),
            "path_cost_pseudo": pc_pseudo, "path_cost_chrono": pc_chrono,
            "path_cost_ratio": pc_pseudo / pc_chrono if pc_chrono > 0 else 1.0,
            "pseudo_timeline_seconds": chain_s, "fit_seconds": fit_s,
            **{f"final_{k}": v for k, v in metrics.collapse_stats(zn).items()},
        }

    @property
    def timeline_entropy(self) -> float:
        return float(self.fit_summary.get("timeline_entropy", float("nan")))

    def _require_fitted(self) -> None:
        if self.encoder is None or self.normaliser is None:
            raise NotFittedError("the engine is not fitted: call fit() or load a checkpoint first")

    # ------------------------------------------------------------------ encoding
    def embed(self, data: Any) -> np.ndarray:
        """Unit latents (N, D), one per complete non-overlapping block of ``data`` (T, F)."""
        self._require_fitted()
        arr = self._as_array(data)
        sl = slice_blocks(arr, self.cfg.encoder.block_len, min_blocks=1)
        x = torch.from_numpy(self.normaliser.transform(sl.blocks))
        return encode_blocks(self.encoder, x).numpy()

    def _normalised_windows(self, windows: Any) -> torch.Tensor:
        """The caller's windows checked (``live_windows``) and normalised like the training data: (M, L, F)."""
        c, s = self._norm_t
        return (live_windows(windows, self.cfg.encoder.block_len, self.cfg.encoder.input_dim) - c) / s

    # ------------------------------------------------------------------ live inference
    def _warm_up(self) -> None:
        c, s = self.normaliser.arrays()
        self._norm_t = (torch.from_numpy(c), torch.from_numpy(s))
        self._live = LivePath(self.encoder, c, s, self.predictor)  # frozen one-window encoder + predictor step
        self.registry.ensure_index()  # large registries: build the IVF index now, not inside the first live call
        self.registry.decay_factors(float(self.train_end_tick))
        with torch.inference_mode():  # first calls allocate kernels; keep that out of measured latency
            z = torch.zeros(1, self.cfg.encoder.block_len, self.cfg.encoder.input_dim)
            for _ in range(2):
                self.encoder(z)
                self._live.step(self._live.encode(z[0]), torch.zeros(self.predictor.state_dim))

    def predict_live(self, window: Any, timestamp: float | None = None) -> LivePrediction:
        """Route one live window (L, F) through encoder, registry (SPD) and predictor.

        ``timestamp``: the window's start tick (a plain int / float counting rows from the first training row;
        None: the end of training). Dates, strings, numpy datetime64 and pandas Timestamps are refused with a
        DataError (the model has no calendar; convert a date to its row position first). Refused windows: wrong
        shape, non-numeric / complex / bool dtype, NaN or inf values, and finite values so large that the latent
        overflows (DataError). Safe while another thread calls ``update_registry`` (the registry lock)."""
        t0 = time.perf_counter()
        if self.registry is None or len(self.registry) == 0:
            raise RegistryEmptyError("Registry is empty: fit() must be called before predict_live()")
        lp = self._live
        x = lp.window_tensor(window)                                          # (L, F) raw
        tq = query_tick(timestamp, self.train_end_tick)
        with torch.inference_mode():
            t1 = time.perf_counter()
            q = lp.encode(x)                                                  # (D,), normalisation folded in
            lp.check(q, x)
            t2 = time.perf_counter()
            r = self.registry.route_one(q, tq, self.cfg.routing.top_k)        # (k,) neighbours, (S,) state
            t4 = time.perf_counter()
            fc = lp.step(q, r.state)                                          # (forecast_dim,)
            t5 = time.perf_counter()
        # Stages: "query" ends when the candidates' cosines are computed, "spd" covers weighting, top-k, blend.
        return LivePrediction(
            alpha_prediction=fc[0], regime_confidence=float(r.confidence), system_latency_ms=(t5 - t0) * 1e3,
            neighbour_indices=r.ids.tolist(), neighbour_scores=r.scores.tolist(),
            stage_latency_ms={"encode": (t2 - t1) * 1e3, "query": (r.scored_at - t2) * 1e3,
                              "spd": (t4 - r.scored_at) * 1e3, "predictor": (t5 - t4) * 1e3},
            latent=q, forecast=fc, neighbour_weights=r.weights.tolist(), neighbour_ticks=r.ticks.tolist())

    def predict_live_raw(self, raw: Any, timestamp: float | None = None) -> LivePrediction:
        """``predict_live`` on raw rows (DataFrame with the source columns, or array in ``source_columns`` order):
        the feature recipe recorded in ``cfg.data`` (transforms, vol_window) is applied to the last
        ``block_len + warm-up`` rows first, exactly as at training time."""
        return self.predict_live(live_window(raw, self.cfg.data, self.cfg.encoder.block_len), timestamp)

    def predict_batch(self, windows: Any, timestamp: float | None = None, chunk: int = 256,
                      threads: int | None = None, precision: str = "fp32") -> dict[str, np.ndarray]:
        """Vectorised ``predict_live`` over windows (M, L, F); returns arrays with M rows.

        Keys: alpha (M,), confidence (M,), forecast (M, forecast_dim), latent (M, D), neighbour_indices (M, k),
        neighbour_scores (M, k). Equal to calling ``predict_live`` on each window with the same timestamp.
        chunk: windows per encoder pass; 256 keeps a chunk's activations (256 x 32 x 64 floats per layer) in
        cache (measured ~4x faster per window than 8192). threads: worker threads sharing the chunks, each with
        single-threaded ops, so the result is identical to threads=1; None: every core this process may use (at
        most one per chunk; ~2x on 2 cores). precision: "fp32"
        (default, equal to predict_live) or "bf16": the encoder runs under bfloat16 autocast (~3x faster on CPUs
        with AVX512-BF16/AMX, slower elsewhere; latents differ by ~1e-3, so near-tied neighbours can swap); the
        registry query and predictor stay fp32.
        """
        if self.registry is None or len(self.registry) == 0:
            raise RegistryEmptyError("Registry is empty: fit() must be called before predict_batch()")
        if not isinstance(chunk, (int, np.integer)) or chunk < 1:
            raise DataError(f"chunk must be a positive integer, got {chunk!r}")
        if threads is not None and (not isinstance(threads, (int, np.integer)) or threads < 1):
            raise DataError(f"threads must be a positive integer or None, got {threads!r}")
        if precision not in ("fp32", "bf16"):
            raise DataError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        x = self._normalised_windows(windows)
        tq = query_tick(timestamp, self.train_end_tick)
        reg, k = self.registry, self.cfg.routing.top_k

        def one(i: int) -> tuple[torch.Tensor, ...]:   # windows i .. i + chunk; inference_mode is per thread
            with torch.inference_mode():
                q = self._encode_chunk(x[i:i + chunk], i, precision)          # (m, D) unit latents
                r = reg.route(q, tq, k)                                        # (m, k) neighbours, (m, S)
                fc = self.predictor.readout(self.predictor.step(q, r.state))   # (m, forecast_dim)
                return fc[:, 0], r.confidence, fc, q, r.ids, r.scores

        # A sharded registry's route is a collective: every rank must route the same chunks in the same order.
        parts = in_chunks(one, x.shape[0], int(chunk), 1 if getattr(reg, "collective", False) else threads)
        keys = ("alpha", "confidence", "forecast", "latent", "neighbour_indices", "neighbour_scores")
        return {key: torch.cat([p[j] for p in parts]).numpy() for j, key in enumerate(keys)}

    def _encode_chunk(self, x: torch.Tensor, first: int, precision: str) -> torch.Tensor:
        """Latents (m, D) of normalised windows x (m, L, F), the first being window ``first`` of the call."""
        if precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                q = self.encoder(x)
            q = torch.nn.functional.normalize(q.float(), dim=1)                    # unit fp32
        else:
            q = self.encoder(x)
        if not bool(torch.isfinite(q).all()):  # name the window in the caller's numbering, not the chunk's
            j = first + int((~torch.isfinite(q).all(1)).nonzero()[0, 0])
            raise DataError(f"window {j} gives a non-finite latent (its values overflow the encoder); rescale the "
                            "windows to the training data's range")
        return q

    def update_registry(self, latents: Any, ticks: Any, forgetting: float = 0.99) -> None:
        """Online registry update with a forgetting factor.

        Appends live latents (M, D) whose windows start at ``ticks`` (M,), in order, to ``self.registry``. Each
        row's predictor state is the SPD-weighted context its own query blends (what preceded it), so a later
        query that retrieves it continues from there. Every appended row multiplies the weight of all older
        entries by ``forgetting`` (see ``Registry.append_live``); predictions made before any update are unchanged.
        """
        if self.registry is None or len(self.registry) == 0:
            raise RegistryEmptyError("Registry is empty: fit() must be called before update_registry()")
        q = torch.as_tensor(numeric_array(latents, "latents"), dtype=torch.float32)
        d = self.cfg.encoder.latent_dim
        if q.ndim not in (1, 2) or q.shape[-1] != d:
            raise DataError(f"latents must be (M, latent_dim={d}), got shape {tuple(q.shape)}")
        q = q.reshape(-1, d)
        t = numeric_array(ticks, "ticks").astype(np.float64).reshape(-1)
        if t.shape[0] != q.shape[0]:
            raise DataError(f"got {q.shape[0]} latents but {t.shape[0]} ticks")
        f = float(forgetting)
        if not 0.0 < f <= 1.0:
            raise DataError(f"forgetting factor must be in (0, 1], got {forgetting!r}")
        reg = self.registry
        with reg.lock, torch.inference_mode():  # readers see the registry before or after the whole update
            check_update(q, t, reg.last_tick(), float(self.train_end_tick))  # all rows before any append
            for i in range(q.shape[0]):  # one at a time: row i may retrieve rows appended before it
                r = reg.route(q[i:i + 1], float(t[i]), self.cfg.routing.top_k)
                reg.append_live(q[i:i + 1], t[i:i + 1], r.state, f)  # (1, S): the context row i continues

    # ------------------------------------------------------------------ persistence
    def _payload(self) -> dict[str, Any]:
        self._require_fitted()
        return checkpoint_payload(self)

    def save(self, path: str) -> None:
        """Write a checkpoint atomically (temp file + rename)."""
        save_checkpoint(self._payload(), path)

    def to_bytes(self) -> bytes:
        """The checkpoint as bytes, e.g. for a download button."""
        return checkpoint_bytes(self._payload())

    @classmethod
    def load(cls, source: Any) -> ChronosDefragEngine:
        """Rebuild an engine from a checkpoint path, bytes or binary file object."""
        eng = cls.__new__(cls)
        cls.__init__(eng, None)
        eng._restore(read_checkpoint(source))
        return eng

    def load_checkpoint(self, source: Any) -> ChronosDefragEngine:
        """Load a checkpoint into this engine. If it was built with an explicit config, the checkpoint's
        architecture must match it (else ``CheckpointError`` listing the differences). Returns self."""
        data = read_checkpoint(source)
        if self._explicit_cfg:
            check_architecture(self.cfg, data)
        self._restore(data)
        return self

    def _restore(self, data: dict[str, Any]) -> None:
        """Check every field (``checkpoint_validate``), build and warm up a staging copy, and only then
        assign, so a bad file leaves self unchanged (``CheckpointError`` naming the field)."""
        parts = build_parts(data)
        staged = type(self).__new__(type(self))
        staged.__dict__.update(self.__dict__)
        staged.__dict__.update(parts)
        try:
            staged._warm_up()
        except (RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"checkpoint could not be prepared for live queries: "
                                  f"{str(exc).splitlines()[0][:300]}") from None
        self.__dict__.update(staged.__dict__)
