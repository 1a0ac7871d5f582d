"""Pseudo-timeline construction and the circular latent registry with SPD-weighted queries.

* ``greedy_chain_exact``: greedy nearest-neighbour chaining from block 0. One (N,) similarity vector per
  step and a visited mask, so memory is O(N * D), never an N x N matrix.
* ``build_pseudo_timeline``: the public entry; picks exact or approximate by N (``chain_method``).
* ``Registry``: a preallocated circular buffer of (latent, start tick, block id, predictor state) that evicts
  the oldest entry when full, and answers cosine top-k queries weighted by Similarity Persistence Decay:
  s_hat(i) = cos(q, h_i) * delta ** (|t_q - t_i| / span), where span is the number of ticks the registry
  covers (not its entry count, which made the spec's formula a pure recency filter).
* ``IVFIndex``: an approximate inverted-file index the ``Registry`` switches on by itself once it holds
  ``index_threshold`` entries (small registries stay exact). Spherical k-means cells; a query scores the
  centroids, takes the members of the ``nprobe`` best cells and scores only those exactly (cosine x SPD x
  forgetting weight) before top-k. Kept in step with the circular buffer: a written slot leaves its old cell and
  joins the cell of its new latent's nearest centroid.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

from .errors import CheckpointError, DataError, RegistryEmptyError

# Registry sizes from which queries use the approximate IVF index, and cells probed per query (defaults of
# RoutingConfig.index_threshold / index_nprobe).
LOAD_SPARE_SLOTS = 65536  # most empty slots a loaded registry preallocates beyond its rows
INDEX_THRESHOLD = 200_000
INDEX_NPROBE = 64


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

    _as_unit_tensor(z)  # validates shape and values with the shared messages
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


class IVFIndex:
    """Inverted file over registry slots: centroids (C, D) and, per cell, the slots whose latent is nearest to it.

    Buckets are per-cell int64 slot arrays with spare room (amortised O(1) insert) plus each slot's cell and
    position, so removing a slot is a swap with its cell's last member. Each bucket also holds a contiguous copy of
    its members' latents (cap_c, D): scoring a probed cell is one matvec on contiguous memory instead of a gather
    from the registry matrix (measured 4-10x cheaper per candidate); the index costs one more (C, D) float32
    matrix plus O(capacity) int64s.
    """

    def __init__(self, centroids: torch.Tensor, capacity: int) -> None:
        self.centroids = centroids.contiguous()                         # (C, D) unit rows
        self.n_cells = int(centroids.shape[0])
        self.cell = np.full(capacity, -1, dtype=np.int64)               # slot -> cell (-1: not indexed)
        self.pos = np.zeros(capacity, dtype=np.int64)                   # slot -> position in its bucket
        self.members: list[np.ndarray] = [np.empty(0, dtype=np.int64) for _ in range(self.n_cells)]
        self.vecs: list[torch.Tensor] = [centroids.new_empty(0, centroids.shape[1]) for _ in range(self.n_cells)]
        self.sizes = np.zeros(self.n_cells, dtype=np.int64)
        self.rows_since_train = 0                                       # slots (re)written since k-means ran

    @classmethod
    def train(cls, latents: torch.Tensor, capacity: int, n_cells: int, seed: int = 0) -> IVFIndex:
        """Spherical k-means on ``latents`` (N, D) (a sample of it), then every row assigned to a cell."""
        from .timeline import spherical_kmeans

        # k-means sees only a sample: spherical_kmeans also labels every row it is given, in (rows, C) chunks
        # whose freed blocks glibc does not always reuse (measured +3.8 GB of RSS at 1M rows x 1,000 cells);
        # the full assignment below goes through one reused buffer instead.
        n = latents.shape[0]
        m = min(n, 64 * n_cells)
        sample = latents[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:m]] if m < n else latents
        cent, _ = spherical_kmeans(sample, n_cells, iters=8, sample=m, seed=seed)
        ix = cls(cent, capacity)
        ix.assign_all(latents)
        return ix

    def nearest_cells(self, z: torch.Tensor) -> np.ndarray:
        """Cell of each row of z (M, D) (chunked so a (rows, C) block stays small)."""
        out = np.empty(z.shape[0], dtype=np.int64)
        step = max(256, (16 << 20) // (4 * self.n_cells))
        buf = torch.empty(min(step, z.shape[0]), self.n_cells)          # (rows, C), reused by every chunk
        ct = self.centroids.T
        for a in range(0, z.shape[0], step):
            b = min(z.shape[0], a + step)
            s = torch.matmul(z[a:b], ct, out=buf[: b - a])
            out[a:b] = torch.argmax(s, dim=1).numpy()
        return out

    def assign_all(self, latents: torch.Tensor) -> None:
        """(Re)build the buckets for slots 0..N-1 holding ``latents`` (N, D); other slots become unindexed."""
        n = latents.shape[0]
        lab = self.nearest_cells(latents)
        order = np.argsort(lab, kind="stable")                          # slots grouped by cell, ascending
        counts = np.bincount(lab, minlength=self.n_cells)
        off = np.concatenate([[0], np.cumsum(counts)])
        self.cell[:] = -1
        self.cell[:n] = lab
        self.sizes = counts.astype(np.int64)
        for c in range(self.n_cells):
            m = order[off[c]:off[c + 1]]
            room = max(8, int(len(m) * 1.25) + 4)                        # spare room for live inserts
            bucket = np.empty(room, dtype=np.int64)
            bucket[: len(m)] = m
            self.members[c] = bucket
            v = latents.new_empty(room, latents.shape[1])
            v[: len(m)] = latents[torch.from_numpy(m)]
            self.vecs[c] = v
            self.pos[m] = np.arange(len(m))
        self.rows_since_train = 0

    def remove(self, slot: int) -> None:
        c = int(self.cell[slot])
        if c < 0:
            return
        p, last = int(self.pos[slot]), int(self.sizes[c]) - 1
        moved = int(self.members[c][last])
        self.members[c][p] = moved
        self.vecs[c][p] = self.vecs[c][last]
        self.pos[moved] = p
        self.sizes[c] = last
        self.cell[slot] = -1

    def insert(self, slot: int, c: int, z: torch.Tensor) -> None:
        """Slot ``slot`` holding latent z (D,) joins cell c."""
        b, n = self.members[c], int(self.sizes[c])
        if n == b.shape[0]:                                             # grow by doubling
            nb = np.empty(2 * n + 8, dtype=np.int64)
            nb[:n] = b[:n]
            self.members[c] = b = nb
            nv = self.vecs[c].new_empty(2 * n + 8, self.vecs[c].shape[1])
            nv[:n] = self.vecs[c][:n]
            self.vecs[c] = nv
        b[n] = slot
        self.vecs[c][n] = z
        self.pos[slot], self.cell[slot], self.sizes[c] = n, c, n + 1

    def update(self, slots: np.ndarray, latents: torch.Tensor) -> None:
        """Slots (M,) were just overwritten with ``latents`` (M, D): move each to its new nearest cell."""
        cells = self.nearest_cells(latents)
        for i, (s, c) in enumerate(zip(slots.tolist(), cells.tolist())):
            self.remove(s)
            self.insert(s, c, latents[i])
        self.rows_since_train += len(slots)

    def probe_cells(self, q: torch.Tensor, nprobe: int, at_least: int) -> list[int]:
        """The ``nprobe`` cells whose centroids are most similar to q (D,), more (best first) if they hold fewer
        than ``at_least`` slots, so a top-k always has k candidates."""
        cs = self.centroids @ q                                         # (C,)
        p = min(nprobe, self.n_cells)
        if p >= self.n_cells:
            return list(range(self.n_cells))
        cells = torch.topk(cs, p).indices.tolist()
        if int(self.sizes[cells].sum()) >= at_least:
            return cells
        cells, total = [], 0
        for c in torch.argsort(cs, descending=True).tolist():         # tiny cells: widen
            cells.append(c)
            total += int(self.sizes[c])
            if total >= at_least and len(cells) >= p:
                break
        return cells

    def search(self, q: torch.Tensor, nprobe: int, at_least: int) -> tuple[np.ndarray, torch.Tensor]:
        """(slots (P,), cosines (P,)) of every member of the probed cells for unit query q (D,)."""
        cells = [c for c in self.probe_cells(q, nprobe, at_least) if self.sizes[c]]
        slots = np.concatenate([self.members[c][: self.sizes[c]] for c in cells])
        cos = torch.cat([torch.mv(self.vecs[c][: self.sizes[c]], q) for c in cells])
        return slots, cos

    def copy(self) -> IVFIndex:
        ix = IVFIndex(self.centroids.clone(), self.cell.shape[0])
        ix.cell, ix.pos, ix.sizes = self.cell.copy(), self.pos.copy(), self.sizes.copy()
        ix.members = [b.copy() for b in self.members]
        ix.vecs = [v.clone() for v in self.vecs]
        ix.rows_since_train = self.rows_since_train
        return ix


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
        # Approximate search for large registries (see IVFIndex); None until first needed.
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

    def _add(self, latents: torch.Tensor, ticks: torch.Tensor | np.ndarray, ids: torch.Tensor | None,
             states: torch.Tensor | None) -> None:
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
        self._decay_cache, self._span = None, None
        if self.index is not None:
            if m * 4 > self.count:   # a bulk write: retrain the cells (lazily, at the next query) on the new data
                self.index = None
            else:                    # live appends: each written slot leaves its old cell, joins its nearest one
                self.index.update(slots.numpy(), latents)

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
    def span(self) -> float:
        """Ticks covered by the registry: newest start + block_len - oldest start (>= 1); cached until a write."""
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
        """Use the IVF index once the registry holds ``threshold`` entries; probe ``nprobe`` of ``cells`` cells
        (0: about sqrt(entries)). A change of the cell count drops a built index (rebuilt at the next query)."""
        for name, v, lo in (("index_threshold", threshold, 1), ("index_nprobe", nprobe, 1), ("index_cells", cells, 0)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise DataError(f"registry {name} must be an integer >= {lo}, got {v!r}")
        if getattr(self, "index_cells", None) not in (None, int(cells)):
            self.index = None
        self.index_threshold, self.index_nprobe, self.index_cells = int(threshold), int(nprobe), int(cells)

    @property
    def index_active(self) -> bool:
        """Whether queries go through the approximate index (the registry holds >= index_threshold entries)."""
        return self.count >= self.index_threshold

    def ensure_index(self) -> IVFIndex | None:
        """Build the index now if queries will use it (k-means + assignment: about a second per million entries
        on one core), so the first live query does not pay for it. Returns it (None while the registry is exact)."""
        if self.index is None and self.index_active:
            cells = self.index_cells or max(8, int(round(math.sqrt(self.count))))
            self.index = IVFIndex.train(self.latents[: self.count], self.capacity, cells)
        return self.index if self.index_active else None

    def probe(self, q: torch.Tensor, t_query: float, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Candidates of the index for one query q (1, D): (slots (P,), cosines (1, P), s_hat (1, P)), P >= k."""
        ix = self.ensure_index()
        slots, cos = ix.search(q[0], self.index_nprobe, k)                  # (P,), (P,)
        cand, cos = torch.from_numpy(slots), cos.unsqueeze(0)
        return cand, cos, cos * self.factors_at(cand, t_query)

    def query(self, q: torch.Tensor, k: int, t_query: float) -> QueryResult:
        """Top-k registry entries for each row of q (M, D) by s_hat = cos * delta ** (|t_q - t_i| / span).

        Exact below ``index_threshold`` entries; above it each row scores exactly only the members of its
        ``index_nprobe`` best IVF cells (approximate: a true neighbour in an unprobed cell is missed)."""
        with self.lock:
            return self._query(q, k, t_query)

    def _query(self, q: torch.Tensor, k: int, t_query: float) -> QueryResult:
        if self.count == 0:
            raise RegistryEmptyError("Registry is empty: call fit() (or load a checkpoint) before querying")
        q = q.reshape(-1, self.dim)
        k = min(k, self.count)
        if self.index_active:
            rows = []
            for i in range(q.shape[0]):  # each row probes its own cells
                cand, cos, scores = self.probe(q[i:i + 1], t_query, k)
                top, j = torch.topk(scores, k, dim=1)                  # (1, k)
                rows.append((top, cand[j], cos.gather(1, j)))
            top, slots, cosk = (torch.cat([r[n] for r in rows]) for n in range(3))
            return QueryResult(ids=self.ids[slots], slots=slots, scores=top, cosines=cosk, ticks=self.ticks[slots])
        cos = q @ self.latents[: self.count].T                    # (M, count)
        scores = cos * self.decay_factors(t_query)                # (M, count)
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
        r = Registry(self.capacity, self.dim, self.state_dim, self.block_len, self.decay, self.index_threshold,
                     self.index_nprobe, self.index_cells)
        for name in ("latents", "ticks", "ids", "states", "log_weights"):
            getattr(r, name).copy_(getattr(self, name))
        r.head, r.count, r._weighted = self.head, self.count, self._weighted
        r.index = None if self.index is None else self.index.copy()
        return r
