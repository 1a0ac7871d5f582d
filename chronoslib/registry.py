"""The registry: a circular buffer of block latents with SPD-weighted routing of live queries.

* ``Registry``: a preallocated circular buffer of (latent, start tick, block id, predictor state) that evicts
  the oldest entry when full. Index settings are given to the constructor (``RoutingConfig``'s, for an engine).
* ``Registry.route(q, t, k)``: THE routing of a query: top-k entries by Similarity Persistence Decay
  s_hat(i) = cos(q, h_i) * delta ** (|t_q - t_i| / span), where span is the number of ticks the registry
  covers (not its entry count, which made the original formula a pure recency filter), then the SPD-weighted
  neighbourhood: weights, blended predictor state and confidence. ``predict_live``, ``predict_batch``,
  ``update_registry``, the replay's threshold and the evidence protocol all route through it.
* Above ``index_threshold`` entries a query's candidates come from the members of the ``index_nprobe`` cells
  nearest to it in a faiss inverted file (``cells.IVFIndex``), scored by cosine x SPD x forgetting weight before
  top-k (exactly the top-k among those members: ``_top_indexed``); small registries stay exact. The index is
  kept in step with the circular buffer: a written slot leaves its old cell and joins its new latent's nearest.

Knows nothing about encoders, predictors or configs; states are opaque (S,) rows it blends.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from .cells import IVFIndex
from .errors import CheckpointError, DataError, RegistryEmptyError
from .numeric_checks import latent_matrix

# Registry sizes from which queries use the approximate cell index, and cells probed per query (defaults of
# RoutingConfig.index_threshold / index_nprobe).
LOAD_SPARE_SLOTS = 65536  # most empty slots a loaded registry preallocates beyond its rows
INDEX_THRESHOLD = 200_000
INDEX_NPROBE = 64


@dataclass(slots=True)
class Route:
    """Where M queries were routed: their top-k registry entries and the context blended from them."""

    ids: torch.Tensor         # (M, k) block ids of the neighbours (-1 for live-appended entries without one)
    weights: torch.Tensor     # (M, k) SPD weights clamped at 0 and normalised (rows sum to 1; uniform if all 0)
    state: torch.Tensor       # (M, S) predictor state blended with those weights
    confidence: torch.Tensor  # (M,) weighted cosine of the query to its neighbours, clamped to [0, 1]
    scores: torch.Tensor      # (M, k) SPD-weighted scores s_hat, descending
    cosines: torch.Tensor     # (M, k) raw cosine similarities
    ticks: torch.Tensor       # (M, k) start ticks of the neighbours
    slots: torch.Tensor       # (M, k) registry slots
    scored_at: float          # time.perf_counter() once the candidates' cosines were computed (a stage boundary)


def blend(scores: torch.Tensor, cosines: torch.Tensor, states: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The SPD-weighted neighbourhood of top-k scores (M, k) with their cosines (M, k) and states (M, k, S):
    (weights (M, k), blended state (M, S), confidence (M,)).

    Example: scores [[0.8, 0.2, -0.1]] -> weights [[0.8, 0.2, 0]]; all scores <= 0 -> uniform weights 1/k.
    """
    w = scores.clamp_min(0)
    w = (w / w.sum(1, keepdim=True)).nan_to_num_(nan=1.0 / w.shape[1])  # a row without positive score: 0 / 0
    state = torch.bmm(w.unsqueeze(1), states).squeeze(1)                # (M, 1, k) @ (M, k, S) -> (M, S)
    return w, state, (w * cosines).sum(1).clamp_(0.0, 1.0)


class Registry:
    """Circular buffer of unit latents with their start ticks; the oldest entry is evicted when full."""

    def __init__(self, capacity: int, dim: int, state_dim: int = 0, block_len: int = 1,
                 decay: float = 0.9, index_threshold: int = INDEX_THRESHOLD, index_nprobe: int = INDEX_NPROBE,
                 index_cells: int = 0) -> None:
        if capacity < 1:
            raise DataError(f"registry capacity must be >= 1, got {capacity}")
        self.capacity, self.dim, self.state_dim = int(capacity), int(dim), int(state_dim)
        self.block_len, self.decay = int(block_len), float(decay)
        self.latents = torch.zeros(self.capacity, self.dim)          # (C, D), preallocated
        self.ticks = torch.zeros(self.capacity, dtype=torch.float64)  # (C,)
        self.ids = torch.full((self.capacity,), -1, dtype=torch.int64)
        self.states = torch.zeros(self.capacity, self.state_dim)     # (C, S)
        self.head = 0    # next slot to write
        self.count = 0   # filled slots
        # Online updates (forgetting factor): log of each entry's weight, 0 until ``append_live`` is used, so a
        # registry without live updates answers queries exactly as the plain SPD formula says.
        self.log_weights = torch.zeros(self.capacity, dtype=torch.float64)  # (C,)
        self._weighted = False  # some log weight may be non-zero (append_live with forgetting < 1, or loaded)
        self._decay_cache: tuple[float, torch.Tensor] | None = None
        self._span: float | None = None
        self._pinned_span: float | None = None  # a shard's: the whole registry's span (``pin_span``)
        self._scan: torch.Tensor | None = None  # (D, count) view of the filled rows that exact routing scores
        self._scan_np: tuple | None = None      # route_one's (_scan, SPD factors, their NumPy views) ...
        self._np_buffers = (self.ids.numpy(), self.ticks.numpy(), self.states.numpy())   # ... and these
        # Approximate search for large registries (see cells.IVFIndex); None until first needed.
        self.index: IVFIndex | None = None
        self.configure_index(index_threshold, index_nprobe, index_cells)
        # Readers (queries) and the one online writer hold this around every access to count / head / the
        # buffers / the index, so a reader never mixes two registry sizes. Re-entrant: append_live calls add.
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return self.count

    # ------------------------------------------------------------------ writing
    def add(self, latents: torch.Tensor, ticks: torch.Tensor | np.ndarray, ids: torch.Tensor | None = None,
            states: torch.Tensor | None = None) -> None:
        """Append rows in order; when full, each new row overwrites the oldest."""
        with self.lock:
            self._add(latents, ticks, ids, states)

    def _checked(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents`` (M, D) validated (``latent_matrix``) with this registry's D, as float32."""
        z = latent_matrix(latents, "registry latents")
        if z.shape[1] != self.dim:
            raise DataError(f"registry latents must have {self.dim} columns, got shape {tuple(z.shape)}")
        return z

    def _add(self, latents: torch.Tensor, ticks: torch.Tensor | np.ndarray, ids: torch.Tensor | None,
             states: torch.Tensor | None) -> None:
        latents = self._checked(latents)
        m = latents.shape[0]
        ticks = torch.as_tensor(np.asarray(ticks), dtype=torch.float64).reshape(m)
        ids = torch.full((m,), -1, dtype=torch.int64) if ids is None else torch.as_tensor(ids).reshape(m).long()
        if m > self.capacity:  # only the newest `capacity` rows can survive
            latents, ticks, ids = latents[-self.capacity:], ticks[-self.capacity:], ids[-self.capacity:]
            states = None if states is None else states[-self.capacity:]
            m = self.capacity
        slots = (self.head + torch.arange(m)) % self.capacity
        self.latents[slots] = latents
        self.ticks[slots] = ticks
        self.ids[slots] = ids
        self.log_weights[slots] = 0.0
        if states is not None and self.state_dim:
            self.states[slots] = torch.as_tensor(states, dtype=torch.float32).reshape(m, self.state_dim)
        self.head = int((self.head + m) % self.capacity)
        self.count = min(self.capacity, self.count + m)
        self._decay_cache, self._span, self._scan = None, None, None
        if self.index is not None:
            if m * 4 > self.count:   # a bulk write: retrain the cells (lazily, at the next query) on the new data
                self.index = None
            else:                    # live appends: each written slot leaves its old cell, joins its nearest one
                self.index.update(slots.numpy(), latents)

    def append_live(self, latents: torch.Tensor, ticks: torch.Tensor | np.ndarray, states: torch.Tensor | None = None,
                    forgetting: float = 0.99) -> None:
        """Online update: append live latents (M, D) and age every older entry.

        Each appended row multiplies the weight of every entry already stored by ``forgetting`` (in (0, 1]),
        so an entry's weight is forgetting ** (rows appended after it). Weights scale SPD scores (through
        ``decay_factors``), which makes old entries lose retrieval rank gradually rather than only at eviction.
        Appended rows get block id -1.
        """
        f = float(forgetting)
        if not 0.0 < f <= 1.0:
            raise DataError(f"forgetting factor must be in (0, 1], got {forgetting!r}")
        latents = self._checked(latents)                    # before any entry is aged
        m = latents.shape[0]
        with self.lock:
            if f < 1.0 and self.count:
                self.log_weights[: self.count] += m * math.log(f)
                self._weighted = True
            self._add(latents, ticks, None, states)

    def last_tick(self) -> float:
        """Start tick of the newest entry (-inf when empty)."""
        with self.lock:
            return float(self.ticks[(self.head - 1) % self.capacity]) if self.count else float("-inf")

    def weights(self) -> torch.Tensor:
        """Forgetting weights of the filled slots, (count,) float32 (all 1 without online updates)."""
        return torch.exp(self.log_weights[: self.count]).float()

    def order(self) -> torch.Tensor:
        """Filled slots from oldest to newest."""
        if self.count < self.capacity:
            return torch.arange(self.count)
        return (self.head + torch.arange(self.capacity)) % self.capacity

    # ------------------------------------------------------------------ SPD
    def pin_span(self, span: float | None) -> None:
        """Score against ``span`` ticks instead of this registry's own (a shard of a larger registry uses the
        whole one's, so its SPD factors equal the unsharded ones); None: back to its own."""
        if span is not None and not (math.isfinite(span) and span >= 1.0):
            raise DataError(f"registry span must be a finite number >= 1 tick, got {span!r}")
        self._pinned_span = None if span is None else float(span)
        self._decay_cache = None

    def span(self) -> float:
        """Ticks covered by the registry: newest start + block_len - oldest start (>= 1); cached until a write."""
        if self._pinned_span is not None:
            return self._pinned_span
        if self._span is None:
            t = self.ticks[: self.count] if self.count < self.capacity else self.ticks
            self._span = max(float(t.max() - t.min()) + self.block_len, 1.0)
        return self._span

    def decay_factors(self, t_query: float) -> torch.Tensor:
        """delta ** (|t_q - t_i| / span) for every filled slot, (count,); cached per query time."""
        if self._decay_cache is not None and self._decay_cache[0] == t_query:
            return self._decay_cache[1]
        t = self.ticks[: self.count]
        if self.decay >= 1.0:
            f = torch.ones(self.count)
        else:
            f = torch.exp(math.log(self.decay) * (t_query - t).abs() / self.span()).float()
        if bool((self.log_weights[: self.count] != 0).any()):  # forgetting weights of online updates
            f = f * self.weights()
        self._decay_cache = (float(t_query), f)
        return f

    def factors_at(self, slots: torch.Tensor, t_query: float) -> torch.Tensor:
        """``decay_factors(t_query)[slots]`` without computing the factors of every entry (P,) -> (P,)."""
        if self._decay_cache is not None and self._decay_cache[0] == t_query:
            return self._decay_cache[1].index_select(0, slots)
        if self.decay >= 1.0:
            f = torch.ones(slots.shape[0])
        else:  # the same elementwise operations as decay_factors, on the candidates only
            f = torch.exp(math.log(self.decay) * (t_query - self.ticks[slots]).abs() / self.span()).float()
        if self._weighted:
            f = f * torch.exp(self.log_weights[slots]).float()
        return f

    # ------------------------------------------------------------------ approximate index
    def configure_index(self, threshold: int = INDEX_THRESHOLD, nprobe: int = INDEX_NPROBE, cells: int = 0) -> None:
        """Use the cell index once the registry holds ``threshold`` entries; probe ``nprobe`` of ``cells`` cells
        (0: about sqrt(entries)). A change of the cell count drops a built index (rebuilt at the next query)."""
        for name, v, lo in (("index_threshold", threshold, 1), ("index_nprobe", nprobe, 1), ("index_cells", cells, 0)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise DataError(f"registry {name} must be an integer >= {lo}, got {v!r}")
        if getattr(self, "index_cells", None) not in (None, int(cells)):
            self.index = None
        self.index_threshold, self.index_nprobe, self.index_cells = int(threshold), int(nprobe), int(cells)

    @property
    def index_active(self) -> bool:
        """Whether routing goes through the approximate index (the registry holds >= index_threshold entries)."""
        return self.count >= self.index_threshold

    def ensure_index(self) -> IVFIndex | None:
        """Build the index now if queries will use it (k-means + assignment: about a second per million entries
        on one core), so the first live query does not pay for it. Returns it (None while the registry is exact)."""
        if self.index is None and self.index_active:
            cells = self.index_cells or max(8, int(round(math.sqrt(self.count))))
            self.index = IVFIndex.train(self.latents[: self.count], cells)
        return self.index if self.index_active else None

    # ------------------------------------------------------------------ routing
    def route(self, q: torch.Tensor, t_query: float, k: int, leave_out: torch.Tensor | None = None) -> Route:
        """Route each row of q (M, D) (unit latents) at query tick ``t_query``: its top-k entries by
        s_hat = cos * delta ** (|t_q - t_i| / span) (times the forgetting weight after online updates) and the
        neighbourhood blended from them (``blend``).

        Exact below ``index_threshold`` entries; above it each row scores exactly only the members of its
        ``index_nprobe`` best cells (approximate: a true neighbour in an unprobed cell is missed). ``leave_out``
        (M,): one slot per row that may not be its neighbour (a stored entry routed against the others); k must
        then be below the entry count. Holds the lock, so a concurrent writer never shows half an update.
        """
        with self.lock:
            if self.count == 0:
                raise RegistryEmptyError("Registry is empty: call fit() (or load a checkpoint) before querying")
            if q.dim() != 2:
                q = q.reshape(-1, self.dim)
            k = min(k, self.count)
            if self.count >= self.index_threshold:                  # index_active
                top, slots, cosk, scored_at = self._top_indexed(q, t_query, k, leave_out)
            else:
                top, slots, cosk, scored_at = self._top_exact(q, t_query, k, leave_out)
            ids, ticks, states = self.ids[slots], self.ticks[slots], self.states[slots]   # (M, k), (M, k, S)
        weights, state, confidence = blend(top, cosk, states)
        return Route(ids=ids, weights=weights, state=state, confidence=confidence, scores=top, cosines=cosk,
                     ticks=ticks, slots=slots, scored_at=scored_at)

    def route_one(self, q: torch.Tensor, t_query: float, k: int) -> Route:
        """``route`` of ONE query q (D,) with the query axis dropped from every field (ids (k,), state (S,),
        confidence 0-d): the live path's shortcut. Exact registries score it in NumPy on views of the buffers
        (the maths of ``_top_exact`` + ``blend``; ~20 us against ~45 for the torch ops right after the encoder,
        which evicts their dispatch code); exact ties may come in another order than ``route``'s torch.topk.
        Indexed registries go through ``route``."""
        with self.lock:
            if self.count == 0 or self.count >= self.index_threshold:
                r = self.route(q.reshape(1, self.dim), t_query, k)
                return Route(r.ids[0], r.weights[0], r.state[0], r.confidence[0], r.scores[0], r.cosines[0],
                             r.ticks[0], r.slots[0], r.scored_at)
            k = min(k, self.count)
            if self._scan is None:
                self._scan = self.latents[: self.count].T
            f = self.decay_factors(t_query)
            if self._scan_np is None or self._scan_np[0] is not self._scan or self._scan_np[1] is not f:
                self._scan_np = (self._scan, f, self._scan.numpy(), f.numpy())
            cos = q.numpy() @ self._scan_np[2]                         # (count,)
            scored_at = time.perf_counter()
            s = cos * self._scan_np[3]
            slots = np.argpartition(-s, k - 1)[:k] if k < s.shape[0] else np.arange(s.shape[0])
            slots = slots[np.argsort(-s[slots], kind="stable")]      # (k,) by descending score, as torch.topk
            top, cosk = s[slots], cos[slots]
            ids, ticks, states = (a[slots] for a in self._np_buffers)
        w = np.maximum(top, np.float32(0))
        total = w.sum()
        w = w / total if total > 0 else np.full(k, 1.0 / k, np.float32)   # no positive score: uniform, as in blend
        conf = np.array(min(max(float(w @ cosk), 0.0), 1.0), np.float32)   # (np.clip costs 3 us on a scalar)
        return Route(*(torch.from_numpy(a) for a in (ids, w, w @ states, conf, top, cosk, ticks, slots)), scored_at)

    def _top_exact(self, q: torch.Tensor, t_query: float, k: int, leave_out: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """(scores, slots, cosines) of the top k of every entry, each (M, k), and the time scoring ended."""
        if self._scan is None:                                    # a view, rebuilt after each write
            self._scan = self.latents[: self.count].T
        cos = q @ self._scan                                      # (M, count)
        scored_at = time.perf_counter()
        scores = cos * self.decay_factors(t_query)                # (M, count)
        if leave_out is not None:
            scores[torch.arange(q.shape[0]), leave_out] = -math.inf
        top, slots = torch.topk(scores, k, dim=1)                 # (M, k)
        return top, slots, cos.gather(1, slots), scored_at

    def _top_indexed(self, q: torch.Tensor, t_query: float, k: int, leave_out: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """``_top_exact`` over each row's candidates from the index: the SPD top-k among the members of the
        ``index_nprobe`` cells nearest to the row (more cells only where those hold fewer than k).

        faiss ranks candidates by cosine alone, so each row asks for kk >= 4 k of them and rescores those by SPD.
        Every SPD factor is <= 1 (decay <= 1, forgetting weights <= 1), so a member not returned (cosine <= the
        kk-th) cannot beat a positive k-th score above that cosine; rows where this does not hold ask again with
        twice kk until it does or their cells are exhausted (then it is the exact top-k of their members).
        """
        ix = self.ensure_index()
        m = q.shape[0]
        top, slots = torch.empty(m, k), torch.empty(m, k, dtype=torch.int64)
        cosk = torch.empty(m, k)
        rows, kk, nprobe = torch.arange(m), min(self.count, 4 * (k + 1)), self.index_nprobe
        scored_at = time.perf_counter()
        while rows.numel():
            cos, cand = ix.search(q[rows], kk, nprobe)                      # (R, kk) each, -1 / -inf pads
            scored_at = time.perf_counter()
            found = cand >= 0
            f = self.factors_at(cand.clamp_min(0).reshape(-1), t_query).reshape(cand.shape)
            scores = torch.where(found, cos * f, -math.inf)                 # (R, kk)
            if leave_out is not None:
                scores[cand == leave_out[rows, None]] = -math.inf
            t, j = torch.topk(scores, k, dim=1)                             # (R, k)
            exhausted = ~found[:, -1] | (kk >= self.count)                  # every member of the probed cells seen
            done = torch.isfinite(t[:, -1]) & (exhausted | ((t[:, -1] > 0) & (cos[:, -1] < t[:, -1])))
            top[rows[done]], slots[rows[done]] = t[done], cand.gather(1, j)[done]
            cosk[rows[done]] = cos.gather(1, j)[done]
            if not bool(torch.isfinite(t[:, -1])[exhausted].all()):          # fewer than k members: more cells
                nprobe = min(2 * nprobe, ix.n_cells)
            rows, kk = rows[~done], min(2 * kk, self.count)
        return top, slots, cosk, scored_at

    # ------------------------------------------------------------------ (de)serialisation
    def state_dict(self) -> dict:
        with self.lock:   # a concurrent writer must not move head / count between the copies below
            return self._state_dict()

    def _state_dict(self) -> dict:
        o = self.order()
        return {"capacity": self.capacity, "dim": self.dim, "state_dim": self.state_dim,
                "block_len": self.block_len, "decay": self.decay,
                "latents": self.latents[o].clone(), "ticks": self.ticks[o].clone(),
                "ids": self.ids[o].clone(), "states": self.states[o].clone(),
                # Only written after online updates, so unchanged registries keep the original format.
                **({"log_weights": self.log_weights[o].clone()} if bool((self.log_weights != 0).any()) else {}),
                # Index settings only when not the defaults (the index itself is rebuilt after loading).
                **{name: getattr(self, name) for name, default in (("index_threshold", INDEX_THRESHOLD),
                   ("index_nprobe", INDEX_NPROBE), ("index_cells", 0)) if getattr(self, name) != default}}

    @classmethod
    def from_state_dict(cls, d: dict) -> Registry:
        """Rebuild from ``state_dict`` output. ``capacity`` must hold the rows; slots beyond
        max(rows, LOAD_SPARE_SLOTS) are not preallocated (the buffer then evicts at that size), so a declared
        capacity can never allocate far more than the saved content. Checkpoints are checked field by field in
        ``checkpoint_validate`` before they get here."""
        rows = int(d["latents"].shape[0])
        if int(d["capacity"]) < max(rows, 1):
            raise CheckpointError(f"registry capacity {d['capacity']} is smaller than its {rows} rows")
        r = cls(min(int(d["capacity"]), max(rows, LOAD_SPARE_SLOTS)), int(d["dim"]), int(d["state_dim"]),
                int(d["block_len"]), float(d["decay"]),
                int(d.get("index_threshold", INDEX_THRESHOLD)), int(d.get("index_nprobe", INDEX_NPROBE)),
                int(d.get("index_cells", 0)))
        if d["latents"].shape[0]:
            r.add(d["latents"], d["ticks"].numpy(), d["ids"], d["states"])
            if "log_weights" in d:
                r.log_weights[r.order()] = d["log_weights"].to(torch.float64)
                r._weighted = True
        return r

    def clone(self) -> Registry:
        """An independent copy (e.g. an online-updating registry next to the frozen one)."""
        with self.lock:
            return self._clone()

    def _clone(self) -> Registry:
        r = Registry(self.capacity, self.dim, self.state_dim, self.block_len, self.decay, self.index_threshold,
                     self.index_nprobe, self.index_cells)
        for name in ("latents", "ticks", "ids", "states", "log_weights"):
            getattr(r, name).copy_(getattr(self, name))
        r.head, r.count, r._weighted = self.head, self.count, self._weighted
        r.index = None if self.index is None else self.index.copy()
        return r

