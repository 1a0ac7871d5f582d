"""Pseudo-timeline orderings: chain blocks so that similar latents sit next to each other.

Every ordering is a permutation starting at block 0 (the causal anchor). The greedy chain repeatedly moves to the
unvisited block whose unit latent is most cosine-similar to the current one (ties: lowest index):

* ``greedy_chain_allpairs``: the straightforward implementation (N x N similarity matrix, one masked argmax per
  step). O(N^2) memory; the oracle for tests and the baseline for benchmark ratios. Pure NumPy, independent of
  the fast paths.
* ``greedy_chain_exact``: exact and fast. Precompute every block's K most similar blocks with chunked matmuls
  (memory O(N * K + chunk * N), never N x N), then walk: the next block is the first unvisited entry of the
  current block's list whenever its similarity is strictly above the list's K-th value (then nothing outside the
  list can beat it); otherwise a full scan over the still-unvisited blocks, kept compacted so the scans shrink.
* ``greedy_chain_approx``: for 100k - 1M blocks. Spherical k-means splits the latents into ~4 sqrt(N) cells of
  a faiss inverted file (``cells.ivf_knn_lists``); each block's K-NN list is searched only in the cells nearest
  to it, and when a list is exhausted the nearest unvisited block is searched in the few unvisited cells whose
  centroids are closest. Time ~ O(N * sqrt(N) * D), memory O(N * (D + K)). Quality is measured as path cost
  against the exact chain (``python -m chronoslib bench``).
* ``refined_chain``: greedy, then 2-opt / Or-opt on its own K-NN lists (``local_search.improve``).
* ``regime_chain``: greedy inside regime clusters (``cells.regime_clusters``), stitched, no switch added later.
* ``build_pseudo_timeline``: the public entry, by method name (``routing.chain_method``; "auto" = DEFAULT_METHOD).
* ``path_cost``: the sum of squared jumps along an order, the chain's quality measure.

Knows nothing about encoders, training or the registry.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .cells import IVFIndex, ivf_knn_lists, regime_clusters, row_chunk
from .errors import DataError
from .local_search import improve
from .numeric_checks import latent_matrix


def _check_start(start: int, n: int) -> int:
    if not 0 <= int(start) < n:
        raise DataError(f"start must be a block index in [0, {n}), got {start}")
    return int(start)



# ---------------------------------------------------------------------------------------------- reference
def greedy_chain_allpairs(z: np.ndarray | torch.Tensor, start: int = 0) -> np.ndarray:
    """Plain greedy chain: the full (N, N) cosine matrix, then a masked argmax per step. O(N^2) memory.

    Example: z = [[1, 0], [0, 1], [0.9, 0.1]] (rows normalised) -> [0, 2, 1].
    """
    zt = latent_matrix(z).numpy().astype(np.float64)
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
def knn_lists(z: torch.Tensor, k: int, chunk_bytes: int = 16 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Exact K most similar other rows of unit z (N, D): (idx (N, K) int64, sims (N, K) float32), descending."""
    n = z.shape[0]
    k = min(k, n - 1)
    idx = np.empty((n, k), dtype=np.int64)
    val = np.empty((n, k), dtype=np.float32)
    rows = row_chunk(2 * n, chunk_bytes)                     # float64 block + its float32 copy
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



def greedy_chain_exact(z: np.ndarray | torch.Tensor, start: int = 0, k: int = 16) -> np.ndarray:
    """Exact greedy chain (same answer as ``greedy_chain_allpairs``) with O(N * (D + K)) memory.

    Ties are resolved like the reference (lowest index); similarities that differ only by float32 rounding
    of the two matmul orders could in principle resolve differently.
    """
    zt = latent_matrix(z)
    n = zt.shape[0]
    cur = _check_start(start, n)
    order = np.empty(n, dtype=np.int64)
    order[0] = cur
    if n == 1:
        return order
    return _exact_walk(zt, cur, *knn_lists(zt, k))


def _exact_walk(zt: torch.Tensor, cur: int, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
    """The exact chain's walk from ``cur`` over precomputed lists ``knn_lists`` (idx, val) (N, K)."""
    n = zt.shape[0]
    order = np.empty(n, dtype=np.int64)
    order[0] = cur
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
def _approx_nearest(cells: tuple[torch.Tensor, list[np.ndarray], list[torch.Tensor]], remaining: np.ndarray,
                    q: torch.Tensor, visited: np.ndarray, probe: int) -> int:
    """Most similar unvisited block among the ``probe`` nearest cells that still have unvisited blocks
    (``cells``: centroids (C, D), each cell's blocks and their latents; ``remaining`` (C,): unvisited per cell)."""
    centroids, members, vecs = cells
    cs = centroids @ q                                                  # (C,)
    cs[torch.from_numpy(remaining == 0)] = -math.inf
    live = int((remaining > 0).sum())
    best, best_s = -1, -math.inf
    for c in torch.topk(cs, min(probe, live)).indices.tolist():
        ids = members[c]
        s = torch.mv(vecs[c], q)                                        # (m,)
        s[torch.from_numpy(visited[ids])] = -math.inf
        j = int(torch.argmax(s))
        if float(s[j]) > best_s:
            best, best_s = int(ids[j]), float(s[j])
    return best


def greedy_chain_approx(z: np.ndarray | torch.Tensor, start: int = 0, k: int = 16, n_clusters: int | None = None,
                        probe: int = 8, scan_probe: int = 8, seed: int = 0) -> np.ndarray:
    """Approximate greedy chain for large N (a permutation of range(N) starting at ``start``).

    n_clusters: k-means cells (default 4 * sqrt(N), ~sqrt(N) / 4 blocks each); probe: cells nearest to each
    block searched for its K-NN list (faiss nprobe); scan_probe: cells searched when a list is exhausted.
    Deterministic for a given ``seed``.
    """
    zt = latent_matrix(z)
    n = zt.shape[0]
    cur = _check_start(start, n)
    if n <= 2048:  # small enough that the exact chain is cheaper than building an index
        return greedy_chain_exact(zt, start=cur, k=k)
    zt = torch.nn.functional.normalize(zt, dim=1)
    nbr, ix = ivf_knn_lists(zt, k, n_clusters or max(8, int(round(4 * math.sqrt(n)))), probe, seed)
    return _approx_walk(zt, cur, ix, nbr, scan_probe)


def _approx_walk(zt: torch.Tensor, cur: int, ix: IVFIndex, nbr: np.ndarray, scan_probe: int) -> np.ndarray:
    """The approximate chain's walk from ``cur`` over the cell index and its lists nbr (N, K)."""
    n = zt.shape[0]
    label, remaining = ix.cells_of(n), ix.sizes                       # (N,) cell of each block, (C,) unvisited
    cells = (ix.centroids, [ix.slots_of(c) for c in range(ix.n_cells)],
             [ix.latents_of(c) for c in range(ix.n_cells)])       # read out of faiss once
    order = np.empty(n, dtype=np.int64)
    order[0] = cur
    visited = np.zeros(n, dtype=bool)
    visited[cur] = True
    remaining[label[cur]] -= 1
    with torch.inference_mode():
        for i in range(1, n):
            row = nbr[cur]
            free = (row >= 0) & ~visited[row]
            j = int(free.argmax())
            nxt = int(row[j]) if free[j] else _approx_nearest(cells, remaining, zt[cur], visited, scan_probe)
            visited[nxt] = True
            remaining[label[nxt]] -= 1
            order[i] = cur = nxt
    return order


# ---------------------------------------------------------------------------------------------- refined, regime
def _greedy_and_lists(zt: torch.Tensor, cur: int, approx: bool, k: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The greedy chain (exact or approximate, exactly as ``greedy_chain_exact`` / ``greedy_chain_approx`` with
    their defaults) and the K-NN lists it walked (N, K), reused as the local search's candidates."""
    n = zt.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64), np.full((1, 0), -1, dtype=np.int64)
    if not approx or n <= 2048:
        idx, val = knn_lists(zt, k)
        return _exact_walk(zt, cur, idx, val), idx
    zt = torch.nn.functional.normalize(zt, dim=1)
    nbr, ix = ivf_knn_lists(zt, k, max(8, int(round(4 * math.sqrt(n)))), 8)
    return _approx_walk(zt, cur, ix, nbr, 8), nbr


def candidate_lists(zt: torch.Tensor, k: int = 16, exact_max: int = 20_000) -> np.ndarray:
    """K-NN candidate lists (N, K) for the local search: exact up to ``exact_max`` blocks, else through a cell
    index (``cells.ivf_knn_lists``, the 8 cells nearest each block, -1 pads)."""
    n = zt.shape[0]
    if n <= exact_max:
        return knn_lists(zt, k)[0]
    zn = torch.nn.functional.normalize(zt, dim=1)
    return ivf_knn_lists(zn, k, max(8, int(round(2 * math.sqrt(n)))), 8)[0]


def _search_k(n: int) -> int:
    """Candidates per block: 16 (measured ~1 % closer to LKH-3 than 8 at 256 - 1k blocks), 8 above 200k."""
    return 16 if n <= 200_000 else 8


def search_rounds(n: int) -> int:
    """The local search's budget in rounds for N blocks: 12 + 600,000 / N, at most 200.

    A round budget, not a clock, so an order depends only on the latents, never on how busy the machine is. One
    round is O(N * K * D) work, so this budget is about 12 rounds' worth of a 1M-block search plus a fixed part:
    searches up to ~10k blocks converge before it (~70 rounds at 10k); 18 rounds at 100k, 12 at 1M.
    """
    return min(200, 12 + 600_000 // max(n, 1))


def _search_settings(n: int, time_limit: float | None) -> dict:
    """Or-opt runs of 1 - 6 blocks (1 - 3 above 200k, where each run length costs a pass over N * K), the round
    budget (``search_rounds``) and an optional wall-clock cap (None by default: a cap makes the order depend on
    the machine's load)."""
    return {"segments": (1, 2, 3, 4, 5, 6) if n <= 200_000 else (1, 2, 3), "max_rounds": search_rounds(n),
            "time_limit": time_limit}


def refined_chain(z: np.ndarray | torch.Tensor, start: int = 0, approx_threshold: int = 50_000,
                  time_limit: float | None = None) -> np.ndarray:
    """Greedy chain (as ``build_pseudo_timeline(method="greedy")``) then 2-opt / Or-opt moves on its own K-NN
    lists (``local_search.improve``). Never costs more than the greedy chain.

    time_limit: optional wall-clock cap on the local search, off by default (``_search_settings``): the round
    budget keeps the order reproducible.
    """
    zt = latent_matrix(z)
    n = zt.shape[0]
    cur = _check_start(start, n)
    order, lists = _greedy_and_lists(zt, cur, n > approx_threshold)
    if n < 4:
        return order
    better = improve(zt.numpy(), order, lists[:, :_search_k(n)], **_search_settings(n, time_limit))
    return better if path_cost(zt.numpy(), better) <= path_cost(zt.numpy(), order) else order


def regime_chain(z: np.ndarray | torch.Tensor, start: int = 0, clusters: np.ndarray | None = None,
                 approx_threshold: int = 50_000, time_limit: float | None = None) -> np.ndarray:
    """Chain inside each cluster (``cells.regime_clusters`` unless given), stitched by nearest endpoints, then local
    search that never adds a cluster switch: starting in block 0's cluster, each cluster is walked greedily from
    the block nearest to where the previous one ended, so the order has exactly (number of clusters - 1) switches.
    """
    zt = latent_matrix(z)
    n = zt.shape[0]
    cur = _check_start(start, n)
    lab = regime_clusters(zt) if clusters is None else np.asarray(clusters, dtype=np.int64)  # (N,)
    if lab.shape != (n,):
        raise DataError(f"clusters must have one label per block ({n},), got {lab.shape}")
    left = np.ones(n, dtype=bool)
    parts = []
    k = _search_k(n)
    lists = np.full((n, k), -1, dtype=np.int64)          # within-cluster K-NN lists, reused by the local search
    while True:
        ids = np.flatnonzero(lab == lab[cur])
        local = int(np.searchsorted(ids, cur))
        big = len(ids) > min(approx_threshold, 20_000)     # approximate chain inside clusters above 20k blocks
        walk, sub_lists = _greedy_and_lists(zt[torch.from_numpy(ids)], local, big)
        kk = min(k, sub_lists.shape[1])
        lists[ids, :kk] = np.where(sub_lists[:, :kk] >= 0, ids[np.maximum(sub_lists[:, :kk], 0)], -1)
        parts.append(ids[walk])
        left[ids] = False
        if not left.any():
            break
        rest = np.flatnonzero(left)
        cur = int(rest[int(torch.argmax(zt[torch.from_numpy(rest)] @ zt[int(parts[-1][-1])]))])  # stitch
    order = np.concatenate(parts)
    if n < 4:
        return order
    return improve(zt.numpy(), order, lists, labels=lab, **_search_settings(n, time_limit))


# ---------------------------------------------------------------------------------------------- entry, quality
METHODS = ("greedy", "refined", "regime", "auto", "exact", "approx")


def build_pseudo_timeline(z: np.ndarray | torch.Tensor, method: str = "auto",
                          approx_threshold: int = 50_000) -> np.ndarray:
    """Permutation of block indices (starting at block 0) that chains similar latents together.

    method: "greedy" (the nearest-neighbour chain: exact up to ``approx_threshold`` blocks, approximate above),
    "refined" (``refined_chain``: greedy + 2-opt / Or-opt), "regime" (``regime_chain``: chained inside regime
    clusters, K - 1 switches), "auto" (the default ordering), "exact" / "approx" (the greedy chain forced exact
    or approximate).
    """
    if method not in METHODS:
        raise DataError(f"method must be one of {' | '.join(METHODS)}, got {method!r}")
    method = resolve_method(method)
    if method == "refined":
        return refined_chain(z, approx_threshold=approx_threshold)
    if method == "regime":
        return regime_chain(z, approx_threshold=approx_threshold)
    if method == "approx" or (method == "greedy" and int(np.shape(z)[0]) > approx_threshold):
        return greedy_chain_approx(z)
    return greedy_chain_exact(z)


# What "auto" (the default) means. Chosen by the bench's ordering section (docs/defragmentation.md): within
# ~4 % of LKH-3 on encoded regime sets (greedy: 16-22 % above), purity at or above greedy's, 100k blocks in ~12 s.
DEFAULT_METHOD = "refined"


def resolve_method(method: str) -> str:
    """The ordering a method name runs: "auto" is ``DEFAULT_METHOD``; every other name is itself."""
    return DEFAULT_METHOD if method == "auto" else method


def path_cost(z: np.ndarray, order: np.ndarray | None = None) -> float:
    """Sum of squared L2 jumps ||z[o(i+1)] - z[o(i)]||^2 along ``order`` (chronological when None).

    Example: z = [[1, 0], [0, 1], [-1, 0]] -> 2 + 2 = 4; along order [0, 2, 1] -> 4 + 2 = 6.
    """
    z = np.asarray(z, dtype=np.float64)
    zz = z if order is None else z[np.asarray(order)]
    return float(((zz[1:] - zz[:-1]) ** 2).sum())
