"""Pseudo-timeline construction at scale: fast exact greedy chaining, an approximate chain for large N, and the
plain all-pairs reference both are checked against.

All three answer the same question: starting at block 0, repeatedly move to the unvisited block whose unit
latent has the highest cosine similarity to the current one (ties: lowest index).

* ``greedy_chain_allpairs``: the straightforward implementation (N x N similarity matrix, one masked argmax per
  step). O(N^2) memory; the oracle for tests and the baseline for benchmark ratios. Pure NumPy, independent of
  the fast paths.
* ``greedy_chain_knn``: exact and fast. Precompute every block's K most similar blocks with chunked matmuls
  (memory O(N * K + chunk * N), never N x N), then walk: the next block is the first unvisited entry of the
  current block's list whenever its similarity is strictly above the list's K-th value (then nothing outside the
  list can beat it); otherwise a full scan over the still-unvisited blocks, kept compacted so the scans shrink.
* ``greedy_chain_approx``: for 100k - 1M blocks. Spherical k-means splits the latents into ~sqrt(N) cells; each
  block's K-NN list is searched only in its own cell and the cells with the nearest centroids (an IVF index),
  and when a list is exhausted the nearest unvisited block is searched in the few unvisited cells whose
  centroids are closest. Time ~ O(N * sqrt(N) * D), memory O(N * (D + K)). Quality is measured as path cost
  against the exact chain (``python -m chronoslib bench``).
* ``regime_latents``: synthetic regime-structured unit latents for benchmarks at sizes no encoder run reaches.

Knows nothing about encoders, training or the registry.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import DataError


def _latents(z: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, D) float32 CPU tensor, validated (non-empty, finite)."""
    t = (z.detach() if torch.is_tensor(z) else torch.from_numpy(np.asarray(z))).to("cpu", torch.float32)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise DataError(f"latents must be a non-empty (N, D) array, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise DataError("latents contain NaN or inf")
    return t.contiguous()


def _check_start(start: int, n: int) -> int:
    if not 0 <= int(start) < n:
        raise DataError(f"start must be a block index in [0, {n}), got {start}")
    return int(start)


# ---------------------------------------------------------------------------------------------- reference
def greedy_chain_allpairs(z: np.ndarray | torch.Tensor, start: int = 0) -> np.ndarray:
    """Plain greedy chain: the full (N, N) cosine matrix, then a masked argmax per step. O(N^2) memory.

    Example: z = [[1, 0], [0, 1], [0.9, 0.1]] (rows normalised) -> [0, 2, 1].
    """
    zt = _latents(z).numpy().astype(np.float64)
    n = zt.shape[0]
    cur = _check_start(start, n)
    sims = (zt @ zt.T).astype(np.float32)  # (N, N): the matrix the fast paths avoid (float64 sums: see knn_lists)
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[i] = cur
        sims[:, cur] = -np.inf             # visited: never chosen again
        if i < n - 1:
            cur = int(np.argmax(sims[cur]))  # first maximum = lowest index on ties
    return order


# ---------------------------------------------------------------------------------------------- exact, fast
def _row_chunk(n_cols: int, budget_bytes: int = 16 << 20) -> int:
    """Rows per similarity chunk so a (rows, n_cols) float32 block stays within ``budget_bytes``."""
    return max(16, min(4096, budget_bytes // (4 * max(n_cols, 1))))


def knn_lists(z: torch.Tensor, k: int, chunk_bytes: int = 16 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Exact K most similar other rows of unit z (N, D): (idx (N, K) int64, sims (N, K) float32), descending."""
    n = z.shape[0]
    k = min(k, n - 1)
    idx = np.empty((n, k), dtype=np.int64)
    val = np.empty((n, k), dtype=np.float32)
    rows = _row_chunk(2 * n, chunk_bytes)                     # float64 block + its float32 copy
    # Accumulate in float64: products of float32 numbers are exact there, so the float32 result no longer
    # depends on the order a BLAS kernel summed them; the same pair gets the same value in this chunked matmul,
    # in the scan of _Unvisited and in the reference, and identical latents (constant blocks) tie exactly.
    zd = z.double()                                           # (N, D) float64, once
    with torch.inference_mode():
        for a in range(0, n, rows):
            b = min(n, a + rows)
            s = (zd[a:b] @ zd.T).float()                        # (rows, N), the only large temporary
            s[torch.arange(b - a), torch.arange(a, b)] = -math.inf  # not your own neighbour
            v, j = torch.topk(s, k, dim=1)                      # (rows, K) sorted descending
            idx[a:b], val[a:b] = j.numpy(), v.numpy()
    return idx, val


class _Unvisited:
    """Exact 'most similar unvisited block' by a scan over a compacted copy of the unvisited rows.

    The copy is rebuilt when half of it has been visited, so the total cost of rebuilding is O(N * D) and
    each scan costs O(unvisited * D).
    """

    def __init__(self, z: torch.Tensor, visited: np.ndarray) -> None:
        self.z, self.visited = z, visited
        self._compact()

    def _compact(self) -> None:
        self.alive = np.flatnonzero(~self.visited)              # ascending: argmax ties -> lowest index
        self.za = self.z[torch.from_numpy(self.alive)].double()  # (A, D), float64 like knn_lists
        self.dead = 0

    def nearest(self, q: torch.Tensor, newly_visited: int) -> int:
        self.dead += newly_visited
        if self.dead * 2 > len(self.alive):
            self._compact()
        s = torch.mv(self.za, q.double()).float()                 # (A,)
        s[torch.from_numpy(self.visited[self.alive])] = -math.inf
        return int(self.alive[int(torch.argmax(s))])


def greedy_chain_knn(z: np.ndarray | torch.Tensor, start: int = 0, k: int = 16) -> np.ndarray:
    """Exact greedy chain (same answer as ``greedy_chain_allpairs``) with O(N * (D + K)) memory.

    Ties are resolved like the reference (lowest index); similarities that differ only by float32 rounding
    of the two matmul orders could in principle resolve differently.
    """
    zt = _latents(z)
    n = zt.shape[0]
    cur = _check_start(start, n)
    order = np.empty(n, dtype=np.int64)
    order[0] = cur
    if n == 1:
        return order
    idx, val = knn_lists(zt, k)
    kk = idx.shape[1]
    complete = kk == n - 1                 # the list holds every other block: never needs a scan
    visited = np.zeros(n, dtype=bool)
    visited[cur] = True
    scan: _Unvisited | None = None
    since_scan = 0
    with torch.inference_mode():
        for i in range(1, n):
            row = idx[cur]
            free = ~visited[row]                                 # (K,)
            j = int(free.argmax())
            nxt = -1
            if free[j]:
                v = val[cur, j]
                if complete or v > val[cur, kk - 1]:
                    nxt = int(row[j])
                    if j + 1 < kk and val[cur, j + 1] == v:     # exact tie inside the list: lowest index
                        tied = row[(val[cur] == v) & free]
                        nxt = int(tied.min())
            if nxt < 0:                                          # list exhausted or inconclusive: full scan
                if scan is None:
                    scan = _Unvisited(zt, visited)
                    since_scan = 0
                nxt = scan.nearest(zt[cur], since_scan)
                since_scan = 0
            visited[nxt] = True
            since_scan += 1
            order[i] = cur = nxt
    return order


# ---------------------------------------------------------------------------------------------- approximate
def spherical_kmeans(z: torch.Tensor, n_clusters: int, iters: int = 6, sample: int | None = None,
                     seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Cosine k-means: centroids (C, D) fitted on a random sample, then labels (N,) for every row (chunked)."""
    n = z.shape[0]
    c = max(1, min(n_clusters, n))
    gen = torch.Generator().manual_seed(seed)
    m = min(n, sample or max(32 * c, 4096))
    zs = z[torch.randperm(n, generator=gen)[:m]]
    cent = zs[torch.randperm(m, generator=gen)[:c]].clone()
    with torch.inference_mode():
        for _ in range(iters):
            lab = _assign(zs, cent)
            sums = torch.zeros_like(cent).index_add_(0, lab, zs)   # (C, D)
            norms = sums.norm(dim=1, keepdim=True)
            empty = norms[:, 0] < 1e-12                           # re-seed empty cells at random points
            if bool(empty.any()):
                sums[empty] = zs[torch.randint(0, m, (int(empty.sum()),), generator=gen)]
                norms = sums.norm(dim=1, keepdim=True)
            cent = sums / norms
        labels = _assign(z, cent).numpy()
    return cent, labels


def _assign(z: torch.Tensor, cent: torch.Tensor) -> torch.Tensor:
    """Nearest centroid of every row, (N,) int64, in row chunks written into ONE reused (rows, C) buffer.

    A fresh 16 MB product per chunk left glibc unable to reuse the freed blocks and grew the heap by ~15 GB at
    1M rows x 4,000 cells; the reused buffer keeps the extra memory at one chunk.
    """
    rows = _row_chunk(cent.shape[0])
    out = torch.empty(z.shape[0], dtype=torch.int64)
    buf = torch.empty(min(rows, z.shape[0]), cent.shape[0], dtype=z.dtype)
    ct = cent.T.contiguous()
    for a in range(0, z.shape[0], rows):
        m = min(rows, z.shape[0] - a)
        torch.matmul(z[a:a + m], ct, out=buf[:m])
        torch.argmax(buf[:m], dim=1, out=out[a:a + m])
    return out


class _CellIndex:
    """Latents sorted by k-means cell (contiguous per cell) with per-cell unvisited counts."""

    def __init__(self, z: torch.Tensor, n_clusters: int, seed: int) -> None:
        self.cent, labels = spherical_kmeans(z, n_clusters, seed=seed)
        self.c = self.cent.shape[0]
        self.perm = np.argsort(labels, kind="stable")              # sorted position -> block id
        counts = np.bincount(labels, minlength=self.c)
        self.off = np.concatenate([[0], np.cumsum(counts)])          # cell c = sorted rows off[c]:off[c+1]
        self.zs = z[torch.from_numpy(self.perm)]                    # (N, D) sorted copy
        self.remaining = counts.astype(np.int64)
        self.label = labels

    def members(self, c: int) -> slice:
        return slice(int(self.off[c]), int(self.off[c + 1]))


def _approx_knn(ix: _CellIndex, k: int, probe: int) -> np.ndarray:
    """Approximate K-NN lists (N, K) int64 (block ids, descending similarity) searched in each cell and the
    ``probe - 1`` cells with the nearest centroids; rows without K candidates are padded with -1."""
    n = ix.zs.shape[0]
    out = np.full((n, k), -1, dtype=np.int64)
    near = torch.topk(ix.cent @ ix.cent.T, min(probe + 1, ix.c), dim=1).indices.numpy()  # (C, probe + 1)
    perm_t = torch.from_numpy(ix.perm)
    with torch.inference_mode():
        for c in range(ix.c):
            rows = ix.members(c)
            if rows.start == rows.stop:
                continue
            cells = [c] + [p for p in near[c] if p != c][: probe - 1]   # own cell first (self-mask below)
            pool = np.concatenate([np.arange(ix.off[p], ix.off[p + 1]) for p in cells])  # sorted positions
            pool_t = torch.from_numpy(pool)
            zp = ix.zs[pool_t]                                         # (P, D)
            kk = min(k, len(pool) - 1)
            if kk <= 0:
                continue
            step = _row_chunk(len(pool))
            for a in range(rows.start, rows.stop, step):
                b = min(rows.stop, a + step)
                s = ix.zs[a:b] @ zp.T                                  # (rows, P)
                # The cell's own rows come first in the pool, at offsets a - rows.start ...: mask self.
                s[torch.arange(b - a), torch.arange(a - rows.start, b - rows.start)] = -math.inf
                j = torch.topk(s, kk, dim=1).indices                  # (rows, kk)
                out[ix.perm[a:b], :kk] = perm_t[pool_t[j]].numpy()
    return out


def _refine_knn(z: torch.Tensor, nbr: np.ndarray, fan: int = 8, rows: int = 2048) -> np.ndarray:
    """One round of neighbour-of-neighbour search (NN-descent): each row's list is merged with the lists of
    its ``fan`` nearest neighbours and the best K kept. Lifts IVF recall where cells cut through neighbourhoods
    (high intrinsic dimension). nbr (N, K) with -1 padding -> refined (N, K)."""
    n, k = nbr.shape
    nb = torch.from_numpy(nbr)
    out = np.empty_like(nbr)
    ar = torch.arange(n)
    with torch.inference_mode():
        for a in range(0, n, rows):
            b = min(n, a + rows)
            own = nb[a:b]                                               # (R, K)
            two = nb[own[:, :fan].clamp_min(0)].reshape(b - a, -1)      # (R, fan * K) neighbours of neighbours
            two = torch.where(own[:, :fan].repeat_interleave(k, dim=1) >= 0, two, torch.full_like(two, -1))
            cand = torch.cat([own, two], dim=1)                         # (R, C)
            cand, _ = torch.sort(cand, dim=1)
            dup = torch.zeros_like(cand, dtype=torch.bool)
            dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
            bad = dup | (cand < 0) | (cand == ar[a:b, None])
            s = torch.bmm(z[cand.clamp_min(0)], z[a:b, :, None])[:, :, 0]  # (R, C) cosines
            s[bad] = -math.inf
            v, j = torch.topk(s, k, dim=1)
            best = cand.gather(1, j)
            out[a:b] = torch.where(torch.isfinite(v), best, torch.full_like(best, -1)).numpy()
    return out


def _approx_nearest(ix: _CellIndex, q: torch.Tensor, visited: np.ndarray, probe: int) -> int:
    """Most similar unvisited block among the ``probe`` nearest cells that still have unvisited blocks."""
    cs = ix.cent @ q                                                    # (C,)
    cs[torch.from_numpy(ix.remaining == 0)] = -math.inf
    live = int((ix.remaining > 0).sum())
    best, best_s = -1, -math.inf
    for c in torch.topk(cs, min(probe, live)).indices.tolist():
        rows = ix.members(c)
        s = torch.mv(ix.zs[rows], q)                                    # (m,)
        s[torch.from_numpy(visited[ix.perm[rows]])] = -math.inf
        j = int(torch.argmax(s))
        if float(s[j]) > best_s:
            best, best_s = int(ix.perm[rows.start + j]), float(s[j])
    return best


def greedy_chain_approx(z: np.ndarray | torch.Tensor, start: int = 0, k: int = 16, n_clusters: int | None = None,
                        probe: int = 32, scan_probe: int = 8, seed: int = 0) -> np.ndarray:
    """Approximate greedy chain for large N (a permutation of range(N) starting at ``start``).

    n_clusters: k-means cells (default 4 * sqrt(N), ~sqrt(N) / 4 blocks each); probe: cells searched per K-NN
    list (own + nearest centroids); scan_probe: cells searched when a list is exhausted. Small cells with many
    probes follow a neighbourhood better than few large cells for the same work (measured: path cost within
    ~2.5 % of exact greedy at 20k-50k regime-structured blocks). Deterministic for a given ``seed``.
    """
    zt = _latents(z)
    n = zt.shape[0]
    cur = _check_start(start, n)
    if n <= 2048:  # small enough that the exact chain is cheaper than building an index
        return greedy_chain_knn(zt, start=cur, k=k)
    zt = torch.nn.functional.normalize(zt, dim=1)
    ix = _CellIndex(zt, n_clusters or max(8, int(round(4 * math.sqrt(n)))), seed)
    nbr = _approx_knn(ix, k, probe)
    order = np.empty(n, dtype=np.int64)
    order[0] = cur
    visited = np.zeros(n, dtype=bool)
    visited[cur] = True
    ix.remaining[ix.label[cur]] -= 1
    with torch.inference_mode():
        for i in range(1, n):
            row = nbr[cur]
            free = (row >= 0) & ~visited[row]
            j = int(free.argmax())
            nxt = int(row[j]) if free[j] else _approx_nearest(ix, zt[cur], visited, scan_probe)
            visited[nxt] = True
            ix.remaining[ix.label[nxt]] -= 1
            order[i] = cur = nxt
    return order


# ---------------------------------------------------------------------------------------------- data
def regime_latents(n: int, dim: int = 32, n_regimes: int = 4, mean_duration: int = 40, spread: float = 0.35,
                   seed: int = 0) -> np.ndarray:
    """Unit latents (N, D) shaped like a trained encoder's: persistent regimes, each a direction on the sphere,
    with a slowly wandering AR(1) offset inside the regime and a little per-block noise. float32."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_regimes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    durations = rng.geometric(1.0 / mean_duration, size=n // 2 + 2)
    seq = rng.integers(0, n_regimes, size=durations.shape[0])
    lab = np.repeat(seq, durations)[:n]
    if lab.shape[0] < n:
        lab = np.concatenate([lab, np.full(n - lab.shape[0], seq[-1])])
    # AR(1) wander, computed block-wise with a geometric kernel would be exact; a cumulative sum of innovations
    # with periodic damping is close enough and O(N * D).
    innov = rng.standard_normal((n, dim)).astype(np.float32) * 0.15
    walk = np.cumsum(innov, axis=0)
    walk -= np.repeat(walk[::64], 64, axis=0)[:n]               # restart the walk every 64 blocks: bounded drift
    x = centres[lab] + spread * walk / math.sqrt(dim) * 4 + 0.05 * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)
