"""2-D / 3-D projections of block latents (PCA and UMAP), their content key, and the UMAP warm-up.

Owns: ``latents_key`` (sha1 of the array bytes, for callers that cache projections: Streamlit's own hashing
samples large arrays and misses edits), ``pca`` (milliseconds, deterministic signs), ``umap_embed`` (umap-learn
with ``init="pca"``, ``n_jobs=1`` and euclidean distance on unit vectors, which ranks neighbours exactly like
cosine at half the cost), ``project`` (either of them, timed, with read-only coordinates), ``place_points`` (puts
live windows on an existing projection at the similarity-weighted mean of their neighbours: deterministic and
~1 ms, unlike ``reducer.transform``) and ``UmapWarmup`` (a background thread that pays numba's JIT compilation
once, so a UI can show PCA until UMAP is ready instead of freezing for 15-30 s).

Keeps no cache and no process-wide state: caching projections and holding one warm-up per server is the app's
job. Knows nothing about Streamlit, engines or datasets: arrays in, arrays out.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import DataError
from .numeric_checks import unit_latents

METHODS = ("pca", "umap")


def latents_key(z: np.ndarray) -> str:
    """sha1 over dtype, shape and every byte of ``z``: any single-value edit changes the key.

    >>> latents_key(np.zeros((2, 3), np.float32)) == latents_key(np.zeros((2, 3), np.float32))
    True
    """
    a = np.ascontiguousarray(z)
    h = hashlib.sha1(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _check_dim(n_components: int) -> None:
    if n_components not in (2, 3):
        raise DataError(f"n_components must be 2 or 3, got {n_components}")


def pca(z: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Principal components of the unit-normalised rows of z (N, D) -> (N, n_components) float32.

    Each axis's sign is fixed so that its largest-magnitude coordinate is positive, so refits of the same data
    never mirror the picture. Missing components (N or D too small) are zero columns.
    """
    _check_dim(n_components)
    x = unit_latents(z, "latents")
    x = x - x.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(x, full_matrices=False)   # u (N, r), s (r,)
    coords = u[:, :n_components] * s[:n_components]   # (N, <= n_components)
    for j in range(coords.shape[1]):
        if coords[np.argmax(np.abs(coords[:, j])), j] < 0:
            coords[:, j] *= -1
    out = np.zeros((x.shape[0], n_components), dtype=np.float32)
    out[:, : coords.shape[1]] = coords
    return out


def umap_embed(z: np.ndarray, n_components: int = 2, n_neighbors: int = 15, min_dist: float = 0.1,
               seed: int = 42, n_epochs: int | None = None) -> np.ndarray:
    """UMAP of the unit-normalised rows of z (N, D) -> (N, n_components) float32.

    ``n_epochs`` defaults to 200 (N <= 20k) or 100 (larger), which keeps 10k blocks at ~4 s once the JIT is warm.
    """
    _check_dim(n_components)
    x = unit_latents(z, "latents").astype(np.float32)
    n = x.shape[0]
    if n < 5:
        raise DataError(f"UMAP needs at least 5 blocks, got {n}; use PCA")
    import umap  # lazy: importing umap-learn alone compiles numba code for ~15 s

    if n_epochs is None:
        n_epochs = 200 if n <= 20_000 else 100
    k = int(min(n_neighbors, n - 1))
    extra = {}
    if n <= EXACT_KNN_MAX:
        # umap-learn's own path below 4,096 points measures every pair through a Python-level callable (3,000
        # points: ~40 s of 42); the exact K-NN graph from one matmul, handed over, skips that and NN-descent.
        extra = {"precomputed_knn": exact_knn(x, k), "force_approximation_algorithm": True}
    reducer = umap.UMAP(n_components=n_components, n_neighbors=k, min_dist=min_dist,
                        metric="euclidean", init="pca", n_jobs=1, random_state=seed, n_epochs=n_epochs, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state" and numba chatter
        out = reducer.fit_transform(x)
    return np.asarray(out, dtype=np.float32)


EXACT_KNN_MAX = 20_000   # up to this many points umap_embed hands UMAP an exact K-NN graph (chunked matmul)


def exact_knn(x: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Each unit row's k nearest rows of x (N, D), itself first, in UMAP's layout: (indices (N, k) int64,
    euclidean distances (N, k) float32), ascending. Chunked: a (chunk, N) block at a time.

    >>> exact_knn(np.eye(3, dtype=np.float32), 2)[0][:, 0].tolist()
    [0, 1, 2]
    """
    n = x.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float32)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        sim = x[a:b] @ x.T                                               # (c, N)
        sim[np.arange(b - a), np.arange(a, b)] = np.inf                  # itself first, whatever the rounding
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]               # (c, k) unordered
        ps = np.take_along_axis(sim, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        idx[a:b] = np.take_along_axis(part, order, axis=1)
        d2 = 2.0 - 2.0 * np.take_along_axis(ps, order, axis=1)           # |u - v|^2 of unit rows
        d2[:, 0] = 0.0
        dist[a:b] = np.sqrt(np.clip(d2, 0.0, None))
    return idx, dist


@dataclass(frozen=True)
class Projection:
    coords: np.ndarray   # (N, dim) float32, read-only (callers may share it through a cache)
    method: str          # "pca" | "umap"
    dim: int
    seconds: float       # compute time


def project(z: np.ndarray, method: str = "pca", dim: int = 2, seed: int = 42, n_neighbors: int = 15,
            min_dist: float = 0.1) -> Projection:
    """``pca`` or ``umap_embed`` of z (N, D), timed; the coordinates are read-only."""
    if method not in METHODS:
        raise DataError(f"projection method must be one of {METHODS}, got {method!r}")
    _check_dim(dim)
    t0 = time.perf_counter()
    coords = pca(z, dim) if method == "pca" else umap_embed(z, dim, n_neighbors, min_dist, seed)
    secs = time.perf_counter() - t0
    coords.setflags(write=False)
    return Projection(coords, method, dim, secs)


def place_points(coords: np.ndarray, neighbour_indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Positions of M new points on an existing projection: weighted mean of their neighbours' coordinates.

    coords (N, dim); neighbour_indices (M, k) ints into coords (entries < 0, e.g. live registry entries, are
    ignored); weights (M, k) non-negative similarity weights. Returns (M, dim); a row with no usable neighbour
    is NaN.
    """
    coords = np.asarray(coords, dtype=np.float64)
    idx = np.atleast_2d(np.asarray(neighbour_indices, dtype=np.int64))
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if idx.shape != w.shape:
        raise DataError(f"neighbour_indices {idx.shape} and weights {w.shape} must have the same shape")
    if idx.size and idx.max() >= coords.shape[0]:
        raise DataError(f"neighbour index {int(idx.max())} out of range for {coords.shape[0]} projected blocks")
    valid = idx >= 0
    w = np.where(valid, np.clip(w, 0.0, None), 0.0)               # (M, k)
    pts = coords[np.where(valid, idx, 0)]                          # (M, k, dim)
    tot = w.sum(axis=1, keepdims=True)                             # (M, 1)
    # All-zero weights but valid neighbours: fall back to their plain mean.
    w = np.where((tot > 0), w, valid.astype(np.float64))
    tot = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (w[..., None] * pts).sum(axis=1) / tot
    return out


class UmapWarmup:
    """Pays umap-learn's import + numba JIT once, in a daemon thread, so the first real UMAP is fast.

    States: "idle" -> "running" -> "ready" | "failed" (``error`` holds the message). ``start`` is idempotent.
    """

    def __init__(self, n_points: int = 600, n_dims: int = 32, seed: int = 0) -> None:
        self.n_points, self.n_dims, self.seed = n_points, n_dims, seed
        self.state = "idle"
        self.error = ""
        self.seconds = float("nan")
        self.started_at = float("nan")
        self._lock = threading.Lock()
        self._done = threading.Event()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def elapsed(self) -> float:
        return 0.0 if self.state == "idle" else time.time() - self.started_at

    def start(self) -> UmapWarmup:
        with self._lock:
            if self.state == "idle":
                self.state, self.started_at = "running", time.time()
                threading.Thread(target=self._run, name="umap-warmup", daemon=True).start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished (ready or failed); True when ready."""
        self._done.wait(timeout)
        return self.ready

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            rng = np.random.default_rng(self.seed)
            x = rng.standard_normal((self.n_points, self.n_dims))
            umap_embed(x, 2, n_epochs=20)    # compiles the fit path (exact kNN branch, layout optimiser)
            self.seconds = time.perf_counter() - t0
            self.state = "ready"
        except Exception as exc:  # noqa: BLE001 - reported to the UI, which falls back to PCA
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = "failed"
        finally:
            self._done.set()
