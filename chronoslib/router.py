"""Pseudo-timeline construction and the circular latent registry with SPD-weighted queries.

* ``greedy_chain_exact``: greedy nearest-neighbour chaining from block 0. One (N,) similarity vector per
  step and a visited mask, so memory is O(N * D), never an N x N matrix.
* ``build_pseudo_timeline``: the public entry; picks exact or approximate by N (``chain_method``).
* ``Registry``: a preallocated circular buffer of (latent, start tick, block id, predictor state) that evicts
  the oldest entry when full, and answers cosine top-k queries weighted by Similarity Persistence Decay:
  s_hat(i) = cos(q, h_i) * delta ** (|t_q - t_i| / span), where span is the number of ticks the registry
  covers (not its entry count, which made the spec's formula a pure recency filter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import DataError, RegistryEmptyError


def _as_unit_tensor(z: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(z) if not torch.is_tensor(z) else z).detach().to("cpu", torch.float32)
    if t.ndim != 2 or t.shape[0] == 0:
        raise DataError(f"latents must be a non-empty (N, D) array, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise DataError("latents contain NaN or inf")
    return t


def greedy_chain_exact(z: np.ndarray | torch.Tensor, start: int = 0) -> np.ndarray:
    """Exact greedy nearest-neighbour chain over unit vectors z (N, D), starting at ``start``.

    At each step the next position is the unvisited block with the highest cosine similarity to the
    current one (ties: lowest index). Returns an (N,) int64 permutation. Implemented by
    ``timeline.greedy_chain_knn``: cached K-NN lists from chunked matmuls plus a visited mask, with a scan of
    the unvisited blocks only when a list cannot decide; memory O(N * (D + K)), never N x N.
    """
    from .timeline import greedy_chain_knn

    _as_unit_tensor(z)  # same validation and messages as before
    return greedy_chain_knn(z, start=start)


def build_pseudo_timeline(z: np.ndarray | torch.Tensor, method: str = "auto",
                          approx_threshold: int = 50_000) -> np.ndarray:
    """Permutation of block indices (starting at block 0) that chains similar latents together.

    method: "exact" (greedy chain), "approx" (large-N approximation) or "auto" (exact up to
    ``approx_threshold`` blocks).
    """
    n = int(np.shape(z)[0])
    if method not in ("auto", "exact", "approx"):
        raise DataError(f"method must be auto | exact | approx, got {method!r}")
    if method == "approx" or (method == "auto" and n > approx_threshold):
        from .timeline import greedy_chain_approx

        return greedy_chain_approx(z)
    return greedy_chain_exact(z)


def path_cost(z: np.ndarray, order: np.ndarray | None = None) -> float:
    """Sum of squared L2 jumps ||z[o(i+1)] - z[o(i)]||^2 along ``order`` (chronological when None)."""
    z = np.asarray(z, dtype=np.float64)
    zz = z if order is None else z[np.asarray(order)]
    return float(((zz[1:] - zz[:-1]) ** 2).sum())


@dataclass
class QueryResult:
    ids: torch.Tensor        # (M, k) block ids of the neighbours (-1 for live-appended entries without one)
    slots: torch.Tensor      # (M, k) registry slots
    scores: torch.Tensor     # (M, k) SPD-weighted scores s_hat
    cosines: torch.Tensor    # (M, k) raw cosine similarities
    ticks: torch.Tensor      # (M, k) start ticks of the neighbours


class Registry:
    """Circular buffer of unit latents with their start ticks; the oldest entry is evicted when full."""

    def __init__(self, capacity: int, dim: int, state_dim: int = 0, block_len: int = 1,
                 decay: float = 0.9) -> None:
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
        # registry without live updates answers queries exactly as before.
        self.log_weights = torch.zeros(self.capacity, dtype=torch.float64)  # (C,)
        self._decay_cache: tuple[float, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.count

    # ------------------------------------------------------------------ writing
    def add(self, latents: torch.Tensor, ticks: torch.Tensor | np.ndarray, ids: torch.Tensor | None = None,
            states: torch.Tensor | None = None) -> None:
        """Append rows in order; when full, each new row overwrites the oldest."""
        latents = torch.as_tensor(latents, dtype=torch.float32).reshape(-1, self.dim)
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
        self._decay_cache = None

    def append_live(self, latents: torch.Tensor, ticks: torch.Tensor | np.ndarray, states: torch.Tensor | None = None,
                    forgetting: float = 0.99) -> None:
        """Online update (the spec's future work): append live latents (M, D) and age every older entry.

        Each appended row multiplies the weight of every entry already stored by ``forgetting`` (in (0, 1]),
        so an entry's weight is forgetting ** (rows appended after it). Weights scale SPD scores (through
        ``decay_factors``), which makes old entries lose retrieval rank gradually rather than only at eviction.
        Appended rows get block id -1.
        """
        f = float(forgetting)
        if not 0.0 < f <= 1.0:
            raise DataError(f"forgetting factor must be in (0, 1], got {forgetting!r}")
        m = torch.as_tensor(latents).reshape(-1, self.dim).shape[0]
        if f < 1.0 and self.count:
            self.log_weights[: self.count] += m * math.log(f)
        self.add(latents, ticks, None, states)

    def weights(self) -> torch.Tensor:
        """Forgetting weights of the filled slots, (count,) float32 (all 1 without online updates)."""
        return torch.exp(self.log_weights[: self.count]).float()

    def order(self) -> torch.Tensor:
        """Filled slots from oldest to newest."""
        if self.count < self.capacity:
            return torch.arange(self.count)
        return (self.head + torch.arange(self.capacity)) % self.capacity

    # ------------------------------------------------------------------ SPD
    def span(self) -> float:
        """Ticks covered by the registry: newest start + block_len - oldest start (>= 1)."""
        t = self.ticks[: self.count] if self.count < self.capacity else self.ticks
        return max(float(t.max() - t.min()) + self.block_len, 1.0)

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

    def query(self, q: torch.Tensor, k: int, t_query: float) -> QueryResult:
        """Top-k registry entries for each row of q (M, D) by s_hat = cos * delta ** (|t_q - t_i| / span)."""
        if self.count == 0:
            raise RegistryEmptyError("Registry is empty: call fit() (or load a checkpoint) before querying")
        q = q.reshape(-1, self.dim)
        cos = q @ self.latents[: self.count].T                    # (M, count)
        scores = cos * self.decay_factors(t_query)                # (M, count)
        k = min(k, self.count)
        top, slots = torch.topk(scores, k, dim=1)                 # (M, k)
        return QueryResult(ids=self.ids[slots], slots=slots, scores=top,
                           cosines=cos.gather(1, slots), ticks=self.ticks[slots])

    def reconstruct_context(self, result: QueryResult) -> tuple[torch.Tensor, torch.Tensor]:
        """SPD-weighted neighbourhood: (weights (M, k) summing to 1, blended predictor state (M, S))."""
        w = result.scores.clamp_min(0)
        w = torch.where(w.sum(1, keepdim=True) > 0, w, torch.ones_like(w))
        w = w / w.sum(1, keepdim=True)
        state = torch.einsum("mk,mks->ms", w, self.states[result.slots])
        return w, state

    # ------------------------------------------------------------------ (de)serialisation
    def state_dict(self) -> dict:
        o = self.order()
        return {"capacity": self.capacity, "dim": self.dim, "state_dim": self.state_dim,
                "block_len": self.block_len, "decay": self.decay,
                "latents": self.latents[o].clone(), "ticks": self.ticks[o].clone(),
                "ids": self.ids[o].clone(), "states": self.states[o].clone(),
                # Only written after online updates, so unchanged registries keep the original format.
                **({"log_weights": self.log_weights[o].clone()} if bool((self.log_weights != 0).any()) else {})}

    @classmethod
    def from_state_dict(cls, d: dict) -> Registry:
        r = cls(int(d["capacity"]), int(d["dim"]), int(d["state_dim"]), int(d["block_len"]), float(d["decay"]))
        if d["latents"].shape[0]:
            r.add(d["latents"], d["ticks"].numpy(), d["ids"], d["states"])
            if "log_weights" in d:
                r.log_weights[r.order()] = d["log_weights"].to(torch.float64)
        return r

    def clone(self) -> Registry:
        """An independent copy (e.g. an online-updating registry next to the frozen one)."""
        r = Registry(self.capacity, self.dim, self.state_dim, self.block_len, self.decay)
        for name in ("latents", "ticks", "ids", "states", "log_weights"):
            getattr(r, name).copy_(getattr(self, name))
        r.head, r.count = self.head, self.count
        return r
