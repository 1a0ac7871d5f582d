"""Spherical k-means cells over unit latents, and the faiss inverted-file index built on cells.

* ``spherical_kmeans``: cosine k-means fitted on a random sample; centroids (C, D) and every row's cell.
* ``nearest_cells``: the nearest centroid of each row, in row chunks through one reused (rows, C) buffer.
* ``regime_clusters``: regime clusters with an automatic K (silhouette), for the regime-aware ordering.
* ``IVFIndex``: faiss ``IndexIVFFlat`` over slots (row positions), cosine on unit rows; each query probes the
  cells nearest to it. It can follow a changing set of rows (a slot leaves its cell and joins another when it is
  overwritten). Used by the registry's approximate search (``registry.Registry``).
* ``ivf_knn_lists``: approximate K-NN lists through a fixed ``IVFIndex``, for the approximate pseudo-timeline
  (``timeline.greedy_chain_approx``) and the local search's candidates.
* ``faiss_lib``: faiss, imported on first use with one OpenMP thread.

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


_FAISS = None


def faiss_lib():  # noqa: ANN201 (faiss has no type stubs)
    """faiss, imported on first use and set to one OpenMP thread: the library's calls are single-threaded like
    every entry point (a caller that deliberately wants more sets ``faiss.omp_set_num_threads`` itself)."""
    global _FAISS
    if _FAISS is None:
        import faiss

        faiss.omp_set_num_threads(1)
        _FAISS = faiss
    return _FAISS


def _f32(z: torch.Tensor | np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else z, dtype=np.float32)


class IVFIndex:
    """An inverted file over unit rows (faiss ``IndexIVFFlat``, inner product = cosine) whose ids are the rows'
    slots: spherical k-means centroids (C, D) and, per cell, the slots nearest to it with a copy of their latents.

    ``removable`` indexes (the registry's) keep a hash map from slot to cell so a rewritten slot leaves its cell
    in O(1) (``update``); fixed ones (the approximate chain's) do not need it.
    """

    def __init__(self, index, rows_since_train: int = 0) -> None:  # noqa: ANN001 (a faiss.IndexIVFFlat)
        self.index = index
        self.n_cells = int(index.nlist)
        self.centroids = torch.from_numpy(index.quantizer.reconstruct_n(0, self.n_cells))   # (C, D) unit rows
        self.rows_since_train = rows_since_train                                          # slots written since

    @classmethod
    def train(cls, latents: torch.Tensor, n_cells: int, seed: int = 0, removable: bool = True,
              sample_per_cell: int = 64) -> IVFIndex:
        """Spherical k-means (10 iterations on at most ``sample_per_cell`` rows per cell) on unit ``latents``
        (N, D), then every row i added as slot i."""
        faiss = faiss_lib()
        x = _f32(latents)
        n, d = x.shape
        ix = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, max(1, min(int(n_cells), n)), faiss.METRIC_INNER_PRODUCT)
        cp = ix.cp
        cp.spherical, cp.niter, cp.seed = True, 10, int(seed)
        cp.max_points_per_centroid, cp.min_points_per_centroid = int(sample_per_cell), 1   # 1: no small-N warning
        ix.train(x)
        if removable:
            ix.set_direct_map_type(faiss.DirectMap.Hashtable)
        ix.add_with_ids(x, np.arange(n, dtype=np.int64))
        return cls(ix)

    @property
    def sizes(self) -> np.ndarray:
        """Slots per cell, (C,) int64."""
        il = self.index.invlists
        return np.array([il.list_size(c) for c in range(self.n_cells)], dtype=np.int64)

    def slots_of(self, c: int) -> np.ndarray:
        """Slots in cell c, (size_c,) int64 (a copy; in the order they were added)."""
        il, m = self.index.invlists, self.index.invlists.list_size(c)
        return np.array(self._faiss_view(il.get_ids(c), m), dtype=np.int64) if m else np.empty(0, dtype=np.int64)

    def latents_of(self, c: int) -> torch.Tensor:
        """Latents of the slots in cell c, (size_c, D) float32 (a copy)."""
        il, m, d = self.index.invlists, self.index.invlists.list_size(c), self.index.d
        if not m:
            return torch.empty(0, d)
        raw = np.array(self._faiss_view(il.get_codes(c), m * il.code_size), dtype=np.uint8)
        return torch.from_numpy(raw.view(np.float32).reshape(m, d))

    @staticmethod
    def _faiss_view(ptr, size: int) -> np.ndarray:  # noqa: ANN001 (a SWIG pointer)
        return faiss_lib().rev_swig_ptr(ptr, size)

    def cells_of(self, n: int) -> np.ndarray:
        """Cell of every slot 0..n-1, (n,) int64 (-1: not indexed)."""
        out = np.full(n, -1, dtype=np.int64)
        for c in range(self.n_cells):
            s = self.slots_of(c)
            out[s[s < n]] = c
        return out

    def assign(self, z: torch.Tensor) -> np.ndarray:
        """Nearest cell of each row of z (M, D), (M,) int64 (the cell an added row joins)."""
        return self.index.quantizer.search(_f32(z), 1)[1][:, 0].astype(np.int64)

    def update(self, slots: np.ndarray, latents: torch.Tensor) -> None:
        """Slots (M,) were just overwritten with ``latents`` (M, D): each leaves its cell and joins its new
        nearest one (a slot not indexed yet only joins)."""
        ids = np.ascontiguousarray(slots, dtype=np.int64)
        self.index.remove_ids(faiss_lib().IDSelectorArray(ids))
        self.index.add_with_ids(_f32(latents), ids)
        self.rows_since_train += len(ids)

    def search(self, q: torch.Tensor, k: int, nprobe: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k most cosine-similar slots to each row of q (M, D) among the members of its ``nprobe`` cells
        nearest to that row: (cosines (M, k) float32, slots (M, k) int64), descending; -1 slots (cosine -inf)
        pad rows whose probed cells hold fewer than k."""
        faiss = faiss_lib()
        params = faiss.SearchParametersIVF(nprobe=int(min(nprobe, self.n_cells)))
        sims, ids = self.index.search(_f32(q), int(k), params=params)
        sims[ids < 0] = -np.inf
        return torch.from_numpy(sims), torch.from_numpy(ids)

    def copy(self) -> IVFIndex:
        return IVFIndex(faiss_lib().clone_index(self.index), self.rows_since_train)


def ivf_knn_lists(z: torch.Tensor, k: int, n_cells: int, nprobe: int, seed: int = 0) -> tuple[np.ndarray, IVFIndex]:
    """Approximate K most similar other rows of unit z (N, D), (N, K) int64 descending (-1 pads), searched in
    the ``nprobe`` cells nearest to each row, and the fixed index they came from."""
    n = z.shape[0]
    # k-means on 32 rows a cell: half the training of 64 for the same recall (0.967 vs 0.968 at 100k, 1,265 cells)
    ix = IVFIndex.train(z, n_cells, seed, removable=False, sample_per_cell=32)
    _, ids = ix.search(z, min(k + 1, n), nprobe)
    ids = ids.numpy()
    own = ids == np.arange(n)[:, None]          # each row finds itself (almost always first): drop it
    own[~own.any(1), -1] = True                 # rows that did not: drop their last instead
    return ids[~own].reshape(n, ids.shape[1] - 1)[:, :k], ix
