"""ChronosDefragEngine: wires the stages together (fit / embed / predict_live / save / load).

fit: data (T, F) -> normalise (fitted on this span) -> blocks (N, L, F) -> encoder -> latents (N, D)
     -> pseudo-timeline pi -> registry -> predictor trained on windows in pi order -> registry states.
predict_live: window (L, F) -> latent q -> registry top-k with SPD -> blended predictor state -> one step
     -> LivePrediction (alpha, confidence, neighbours, per-stage latency).
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
from .blocks import slice_blocks
from .checkpoint import checkpoint_bytes, read_checkpoint, save_checkpoint
from .columns import feature_columns, frame_values
from .config import DefragConfig
from .encoder import RegimeEncoder
from .errors import CheckpointError, ConfigError, DataError, LookAheadError, NotFittedError, RegistryEmptyError
from .features import live_window, raw_features
from .numeric_checks import as_ticks, check_cast_finite, check_latents_finite, check_update, numeric_array
from .predictor import TemporalPredictor
from .router import Registry, build_pseudo_timeline, path_cost
from .scaling import Normaliser
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

        A second call starts from fresh weights unless ``warm_start=True``.
        """
        t_start = time.perf_counter()
        cfg = self.cfg.validate()
        arr = self._as_array(data)
        sl = slice_blocks(arr, cfg.encoder.block_len)  # raises "Need at least 4 blocks"
        if sl.trailing:
            warnings.warn(f"{sl.trailing} trailing tick(s) do not fill a block of {cfg.encoder.block_len} "
                          "and were not used for training", stacklevel=2)
        normaliser = Normaliser(cfg.data.normalize).fit(arr[: sl.n_blocks * cfg.encoder.block_len])
        dev = _resolve_device(cfg.device)
        blocks = torch.from_numpy(normaliser.transform(sl.blocks)).to(dev)  # (N, L, F)
        gen = torch.Generator().manual_seed(cfg.seed)
        history: list[dict] = []

        if warm_start and self.encoder is not None and self.predictor is not None:
            encoder, predictor = self.encoder.to(dev), self.predictor.to(dev)
        else:
            with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's global RNG
                torch.manual_seed(cfg.seed)
                encoder = RegimeEncoder(cfg.encoder).to(dev)
                predictor = TemporalPredictor(cfg.predictor, cfg.encoder.latent_dim).to(dev)

        train_encoder(encoder, blocks, cfg, gen, history, progress)
        encoder = encoder.cpu().eval()
        z = encode_blocks(encoder, blocks.cpu())                             # (N, D)
        t0 = time.perf_counter()
        order_np = build_pseudo_timeline(z, cfg.routing.chain_method, cfg.routing.approx_threshold)
        chain_s = time.perf_counter() - t0
        order = torch.from_numpy(order_np)
        if progress is not None:
            progress("pseudo_timeline", 1, 1, {"seconds": chain_s})

        train_predictor(predictor, z, order, cfg, gen, history, progress)
        predictor = predictor.cpu().eval()
        states = preceding_states(predictor, z, order)                       # (N, S)

        n = sl.n_blocks
        if cfg.routing.registry_capacity < n:
            warnings.warn(f"routing.registry_capacity={cfg.routing.registry_capacity} is below the "
                          f"{n} training blocks: the {n - cfg.routing.registry_capacity} oldest cannot be "
                          "retrieved live. Raise the capacity to keep them routable", stacklevel=2)
        registry = Registry(cfg.routing.registry_capacity, cfg.encoder.latent_dim, predictor.state_dim,
                            cfg.encoder.block_len, cfg.routing.decay)
        registry.add(z, sl.starts, torch.arange(n), states)

        # Commit state only now: a failure above leaves a previously fitted engine untouched.
        self.encoder, self.predictor, self.registry, self.normaliser = encoder, predictor, registry, normaliser
        self.block_latents, self.block_starts, self.pseudo_timeline = z.numpy(), sl.starts, order_np
        self.history = history
        self.train_end_tick = int(arr.shape[0])
        zn = self.block_latents
        pc_pseudo, pc_chrono = path_cost(zn, order_np), path_cost(zn)
        self.fit_summary = {
            "n_blocks": n, "n_ticks": int(arr.shape[0]), "trailing_ticks": sl.trailing,
            "timeline_entropy": metrics.timeline_entropy(order_np),
            "path_cost_pseudo": pc_pseudo, "path_cost_chrono": pc_chrono,
            "path_cost_ratio": pc_pseudo / pc_chrono if pc_chrono > 0 else 1.0,
            "pseudo_timeline_seconds": chain_s, "fit_seconds": time.perf_counter() - t_start,
            **{f"final_{k}": v for k, v in metrics.collapse_stats(zn).items()},
        }
        self.meta["fitted_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._warm_up()
        return self

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

    def _check_windows(self, windows: Any) -> torch.Tensor:
        """(M, L, F) float32 tensor from the caller's windows, with the shape named in any error."""
        w = torch.from_numpy(numeric_array(windows, "window"))
        L, f = self.cfg.encoder.block_len, self.cfg.encoder.input_dim
        if w.ndim == 2:
            w = w.unsqueeze(0)
        if w.ndim != 3 or tuple(w.shape[1:]) != (L, f):
            raise DataError(f"window must have shape (block_len={L}, input_dim={f}), got {tuple(w.shape)}")
        w = w.float()
        if not torch.isfinite(w).all():
            raise DataError("window contains NaN or inf values")
        c, s = self._norm_t
        return (w - c) / s

    # ------------------------------------------------------------------ live inference
    def _warm_up(self) -> None:
        c, s = self.normaliser.arrays()
        self._norm_t = (torch.from_numpy(c), torch.from_numpy(s))
        self._live_w = self.encoder.live_weights()  # conv weights laid out for the one-window fast path
        r = self.cfg.routing
        self.registry.configure_index(r.index_threshold, r.index_nprobe, r.index_cells)
        self.registry.ensure_index()  # large registries: build the IVF index now, not inside the first live call
        self.registry.decay_factors(float(self.train_end_tick))
        with torch.inference_mode():  # first calls allocate kernels; keep that out of measured latency
            z = torch.zeros(1, self.cfg.encoder.block_len, self.cfg.encoder.input_dim)
            for _ in range(2):
                self.encoder(z)

    def _query_time(self, timestamp: float | None) -> float:
        if timestamp is None:
            return float(self.train_end_tick)
        t = as_ticks(timestamp)
        if not np.isfinite(t):
            raise DataError(f"timestamp must be a finite number of ticks, got {timestamp!r}")
        if t < self.train_end_tick:
            raise LookAheadError(
                f"timestamp {timestamp} is inside the training span [0, {self.train_end_tick}): a live window "
                f"must start at or after tick {self.train_end_tick} (anti-look-ahead check)")
        return t

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
        x = self._check_windows(window)
        tq = self._query_time(timestamp)
        reg, k = self.registry, self.cfg.routing.top_k
        with torch.inference_mode():
            t1 = time.perf_counter()
            q = self.encoder.forward_one(x[0], self._live_w).unsqueeze(0)  # (1, D)
            check_latents_finite(q)
            t2 = time.perf_counter()
            with reg.lock:  # a concurrent update_registry must not change count / buffers / index mid-read
                if reg.count < reg.index_threshold:                        # exact scan over every entry
                    cos = q @ reg.latents[: reg.count].T                   # (1, R)
                    t3 = time.perf_counter()
                    scores = cos * reg.decay_factors(tq)
                    top, slots = torch.topk(scores, min(k, reg.count), dim=1)  # (1, k)
                    cosk = cos.gather(1, slots)
                else:                                                      # large registry: IVF candidates (1, P)
                    cand, cos, scores = reg.probe(q, tq, k)
                    t3 = time.perf_counter()
                    top, j = torch.topk(scores, min(k, reg.count), dim=1)  # (1, k)
                    slots, cosk = cand[j], cos.gather(1, j)
                s0 = slots[0]
                states, ids, ticks = reg.states[s0], reg.ids[s0], reg.ticks[s0]
            w = top.clamp_min(0)
            w = w / w.sum() if float(w.sum()) > 0 else torch.full_like(w, 1.0 / w.shape[1])
            conf = float((w * cosk).sum().clamp(0.0, 1.0))
            state = w @ states                                         # (1, S)
            t4 = time.perf_counter()
            fc = self.predictor.readout(self.predictor.step(q, state))[0]  # (forecast_dim,)
            t5 = time.perf_counter()
        return LivePrediction(
            alpha_prediction=fc[0], regime_confidence=conf, system_latency_ms=(t5 - t0) * 1e3,
            neighbour_indices=ids.tolist(), neighbour_scores=top[0].tolist(),
            stage_latency_ms={"encode": (t2 - t1) * 1e3, "query": (t3 - t2) * 1e3,
                              "spd": (t4 - t3) * 1e3, "predictor": (t5 - t4) * 1e3},
            latent=q[0], forecast=fc, neighbour_weights=w[0].tolist(), neighbour_ticks=ticks.tolist())

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
        cache (measured ~4x faster per window than 8192). threads: torch threads for this call only (restored
        afterwards); None keeps the caller's setting (single-threaded in every entry point). precision: "fp32"
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
        x = self._check_windows(windows)
        tq = self._query_time(timestamp)
        reg, k = self.registry, self.cfg.routing.top_k
        parts: dict[str, list[torch.Tensor]] = {k_: [] for k_ in
                                                ("alpha", "confidence", "forecast", "latent", "ids", "scores")}
        old_threads = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(int(threads))
        try:
            with torch.inference_mode():
                for i in range(0, x.shape[0], chunk):
                    if precision == "bf16":
                        with torch.autocast("cpu", dtype=torch.bfloat16):
                            q = self.encoder(x[i:i + chunk])
                        q = torch.nn.functional.normalize(q.float(), dim=1)  # (m, D) unit fp32
                    else:
                        q = self.encoder(x[i:i + chunk])                   # (m, D)
                    try:
                        check_latents_finite(q)
                    except DataError:  # name the window in the caller's numbering, not the chunk's
                        j = i + int((~torch.isfinite(q).all(1)).nonzero()[0, 0])
                        raise DataError(f"window {j} gives a non-finite latent (its values overflow the "
                                        "encoder); rescale the windows to the training data's range") from None
                    with reg.lock:  # one consistent registry for the query and the states it blends
                        res = reg.query(q, k, tq)
                        w, state = reg.reconstruct_context(res)
                    fc = self.predictor.readout(self.predictor.step(q, state))
                    parts["alpha"].append(fc[:, 0])
                    parts["confidence"].append((w * res.cosines).sum(1).clamp(0.0, 1.0))
                    parts["forecast"].append(fc)
                    parts["latent"].append(q)
                    parts["ids"].append(res.ids)
                    parts["scores"].append(res.scores)
        finally:
            torch.set_num_threads(old_threads)
        cat = {k_: torch.cat(v).numpy() for k_, v in parts.items()}
        return {"alpha": cat["alpha"], "confidence": cat["confidence"], "forecast": cat["forecast"],
                "latent": cat["latent"], "neighbour_indices": cat["ids"], "neighbour_scores": cat["scores"]}

    def update_registry(self, latents: Any, ticks: Any, forgetting: float = 0.99) -> None:
        """Online registry update with a forgetting factor (the spec's future work).

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
                res = reg.query(q[i:i + 1], self.cfg.routing.top_k, float(t[i]))
                _, state = reg.reconstruct_context(res)            # (1, S)
                reg.append_live(q[i:i + 1], t[i:i + 1], state, f)

    # ------------------------------------------------------------------ persistence
    def _payload(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "config": self.cfg.to_dict(),
            "encoder": self.encoder.state_dict(), "predictor": self.predictor.state_dict(),
            "registry": self.registry.state_dict(), "normaliser": self.normaliser.to_dict(),
            "block_latents": torch.from_numpy(self.block_latents),
            "block_starts": torch.from_numpy(self.block_starts),
            "pseudo_timeline": torch.from_numpy(self.pseudo_timeline),
            "history": self.history, "fit_summary": self.fit_summary, "meta": self.meta,
            "train_end_tick": self.train_end_tick,
        }

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
        """The spec's name: load into this engine. If it was built with an explicit config, the checkpoint's
        architecture must match it (else ``CheckpointError`` listing the differences). Returns self."""
        data = read_checkpoint(source)
        if self._explicit_cfg:
            try:
                theirs = DefragConfig.from_dict(data["config"]).architecture()
            except (KeyError, ValueError, TypeError) as exc:
                raise CheckpointError(f"checkpoint field 'config' is unreadable: {exc}") from None
            mine = self.cfg.architecture()
            diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
            if diff:
                raise CheckpointError("checkpoint is incompatible with this engine's config: " + ", ".join(
                    f"{k} is {a} here but {b} in the checkpoint" for k, (a, b) in diff.items()))
        self._restore(data)
        return self

    def _restore(self, data: dict[str, Any]) -> None:
        """Check every field (``checkpoint_validate``), build and warm up a staging copy, and only then
        assign, so a bad file leaves self unchanged (``CheckpointError`` naming the field)."""
        from .checkpoint_validate import build_parts

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
