"""Spherical k-means cells over unit latents, and the cell index (IVF) built on them.

* ``spherical_kmeans``: cosine k-means fitted on a random sample; centroids (C, D) and every row's cell.
* ``nearest_cells``: the nearest centroid of each row, in row chunks through one reused (rows, C) buffer.
* ``regime_clusters``: regime clusters with an automatic K (silhouette), for the regime-aware ordering.
* ``CellIndex``: an inverted file over slots (row positions): per cell, the slots whose latent is nearest to its
  centroid, plus a contiguous copy of their latents so scoring a cell is one matvec. It can follow a changing
  set of rows (a slot leaves its cell and joins another when it is overwritten). Used by the registry's
  approximate search (``registry.Registry``) and by the approximate pseudo-timeline
  (``timeline.greedy_chain_approx``).

Knows nothing about ticks, SPD weights, predictor states or chain order.
"""

from __future__ import annotations

import numpy as np
import torch


def row_chunk(n_cols: int, budget_bytes: int = 16 << 20) -> int:
    """Rows per similarity chunk so a (rows, n_cols) float32 block stays within ``budget_bytes``."""
    return max(16, min(4096, budget_bytes // (4 * max(n_cols, 1))))


def nearest_cells(z: torch.Tensor, centroids: torch.Tensor) -> np.ndarray:
    """Nearest centroid of every row of z (N, D) among centroids (C, D): (N,) int64.

    Row chunks are written into ONE reused (rows, C) buffer: a fresh 16 MB product per chunk left glibc unable
    to reuse the freed blocks and grew the heap by ~15 GB at 1M rows x 4,000 cells.
    """
    rows = row_chunk(centroids.shape[0])
    out = torch.empty(z.shape[0], dtype=torch.int64)
    buf = torch.empty(min(rows, z.shape[0]), centroids.shape[0], dtype=z.dtype)
    ct = centroids.T.contiguous()
    for a in range(0, z.shape[0], rows):
        m = min(rows, z.shape[0] - a)
        torch.matmul(z[a:a + m], ct, out=buf[:m])
        torch.argmax(buf[:m], dim=1, out=out[a:a + m])
    return out.numpy()


def spherical_kmeans(z: torch.Tensor, n_clusters: int, iters: int = 6, sample: int | None = None,
                     seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Cosine k-means on unit rows z (N, D): centroids (C, D) fitted on a random sample of ``sample`` rows
    (default max(32 C, 4096)), then labels (N,) for every row. Deterministic for a given ``seed``."""
    n = z.shape[0]
    c = max(1, min(n_clusters, n))
    gen = torch.Generator().manual_seed(seed)
    m = min(n, sample or max(32 * c, 4096))
    zs = z[torch.randperm(n, generator=gen)[:m]]
    cent = zs[torch.randperm(m, generator=gen)[:c]].clone()
    with torch.inference_mode():
        for _ in range(iters):
            lab = torch.from_numpy(nearest_cells(zs, cent))
            sums = torch.zeros_like(cent).index_add_(0, lab, zs)   # (C, D)
            norms = sums.norm(dim=1, keepdim=True)
            empty = norms[:, 0] < 1e-12                           # re-seed empty cells at random points
            if bool(empty.any()):
                sums[empty] = zs[torch.randint(0, m, (int(empty.sum()),), generator=gen)]
                norms = sums.norm(dim=1, keepdim=True)
            cent = sums / norms
        labels = nearest_cells(z, cent)
    return cent, labels


def regime_clusters(z: torch.Tensor, sample: int = 2000, k_range: tuple[int, int] = (2, 8), restarts: int = 3,
                    seed: int = 0) -> np.ndarray:
    """Regime cluster of every unit row of z (N, D), (N,) int64: spherical k-means on an evenly spaced sample of
    at most ``sample`` rows for each K in ``k_range`` (best of ``restarts`` by mean cosine to the centre), K chosen
    by the cosine silhouette as ``regimes.cluster_regimes`` does; then every row joins its nearest centre.

    Spherical k-means rather than ``regimes.cluster_regimes`` itself: the orderings cannot import regimes (which
    imports metrics, which imports the orderings' path cost), and this scales to 1M rows without sklearn KMeans.
    """
    from sklearn.metrics import silhouette_score

    n = z.shape[0]
    pick = torch.from_numpy(np.linspace(0, n - 1, min(n, sample)).round().astype(np.int64))
    zs = z[pick]
    best: tuple[float, torch.Tensor] | None = None
    for k in range(k_range[0], min(k_range[1], zs.shape[0] - 1) + 1):
        fits = [spherical_kmeans(zs, k, iters=20, sample=zs.shape[0], seed=seed + r) for r in range(restarts)]
        cent, lab = max(fits, key=lambda f: float((zs * f[0][torch.from_numpy(f[1])]).sum()))
        if len(np.unique(lab)) < 2:
            continue
        score = float(silhouette_score(zs.numpy(), lab, metric="cosine"))
        if best is None or score > best[0]:
            best = (score, cent)
    if best is None:
        return np.zeros(n, dtype=np.int64)
    return nearest_cells(z, best[1])


class CellIndex:
    """Inverted file over slots: centroids (C, D) and, per cell, the slots whose latent is nearest to it.

    Buckets are per-cell int64 slot arrays (with spare room when rows will be rewritten: amortised O(1) insert)
    plus each slot's cell and position, so removing a slot is a swap with its cell's last member. Each bucket also
    holds a contiguous copy of its members' latents (cap_c, D): scoring a cell is one matvec on contiguous memory
    instead of a gather from the full matrix (measured 4-10x cheaper per candidate); the index costs one more
    copy of the latents plus O(capacity) int64s. Within a cell, members are in ascending slot order after
    ``assign_all``.
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
    def train(cls, latents: torch.Tensor, capacity: int, n_cells: int, seed: int = 0) -> CellIndex:
        """Spherical k-means on a sample of ``latents`` (N, D) (64 rows per cell), then every row assigned to a
        cell with spare room in each bucket for rows written later (the registry's index)."""
        # k-means sees only a sample; the full assignment goes through assign_all's one pass.
        n = latents.shape[0]
        m = min(n, 64 * n_cells)
        sample = latents[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:m]] if m < n else latents
        cent, _ = spherical_kmeans(sample, n_cells, iters=8, sample=m, seed=seed)
        ix = cls(cent, capacity)
        ix.assign_all(latents)
        return ix

    @classmethod
    def fixed(cls, latents: torch.Tensor, n_cells: int, seed: int = 0) -> CellIndex:
        """Spherical k-means (``spherical_kmeans`` defaults) on ``latents`` (N, D) and the index of exactly those
        rows, without spare room (the approximate chain: rows are never rewritten)."""
        cent, labels = spherical_kmeans(latents, n_cells, seed=seed)
        ix = cls(cent, latents.shape[0])
        ix.assign_all(latents, labels, spare=False)
        return ix

    def nearest_cells(self, z: torch.Tensor) -> np.ndarray:
        """Cell of each row of z (M, D)."""
        return nearest_cells(z, self.centroids)

    def assign_all(self, latents: torch.Tensor, labels: np.ndarray | None = None, spare: bool = True) -> None:
        """(Re)build the buckets for slots 0..N-1 holding ``latents`` (N, D) (cells ``labels`` (N,) when already
        known, else their nearest); other slots become unindexed. ``spare``: room for later inserts."""
        n = latents.shape[0]
        lab = self.nearest_cells(latents) if labels is None else labels
        order = np.argsort(lab, kind="stable")                          # slots grouped by cell, ascending
        counts = np.bincount(lab, minlength=self.n_cells)
        off = np.concatenate([[0], np.cumsum(counts)])
        self.cell[:] = -1
        self.cell[:n] = lab
        self.sizes = counts.astype(np.int64)
        for c in range(self.n_cells):
            m = order[off[c]:off[c + 1]]
            room = max(8, int(len(m) * 1.25) + 4) if spare else len(m)
            bucket = np.empty(room, dtype=np.int64)
            bucket[: len(m)] = m
            self.members[c] = bucket
            v = latents.new_empty(room, latents.shape[1])
            v[: len(m)] = latents[torch.from_numpy(m)]
            self.vecs[c] = v
            self.pos[m] = np.arange(len(m))
        self.rows_since_train = 0

    def slots_of(self, c: int) -> np.ndarray:
        """Slots in cell c, (size_c,) (a view)."""
        return self.members[c][: self.sizes[c]]

    def latents_of(self, c: int) -> torch.Tensor:
        """Latents of the slots in cell c, (size_c, D) contiguous (a view)."""
        return self.vecs[c][: self.sizes[c]]

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

    def copy(self) -> CellIndex:
        ix = CellIndex(self.centroids.clone(), self.cell.shape[0])
        ix.cell, ix.pos, ix.sizes = self.cell.copy(), self.pos.copy(), self.sizes.copy()
        ix.members = [b.copy() for b in self.members]
        ix.vecs = [v.clone() for v in self.vecs]
        ix.rows_since_train = self.rows_since_train
        return ix
