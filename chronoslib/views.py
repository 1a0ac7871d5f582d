"""Model views: what the Manifold, Timeline and Overview pages draw of a trained model, computed once, outside the
app's server process, and stored next to the checkpoint.

Owns ``ModelViews`` (a 2-D and a 3-D projection of every training block, the regime clustering at the automatic
K, the orderings the Timeline page compares and the MST lower bound, all tagged with
``projection.latents_key`` of the latents they describe), ``compute_views`` (those, step by step, each step
bounded by the number of blocks N), ``embed`` (the projection: full UMAP up to ``FULL_UMAP_MAX`` blocks, above
that UMAP of ``UMAP_SAMPLE`` sampled blocks and every other block placed at the similarity-weighted mean of its
``PLACE_K`` most similar sampled blocks, ``projection.place_points``; PCA when umap-learn is unavailable) and
``save_views`` / ``load_views`` (npz without pickle, every field checked on load). The ``views`` command
(``python -m chronoslib views M.pt --out V.npz``) lives in ``views_cli``.

Cost per step (one core; measured figures in ``benchmarks`` and the module's tests' docstrings):
  projection  numba JIT of umap-learn once per process (~10 s; the sample stays below umap's 4,096-point
              exact-neighbour limit, which avoids compiling NN-descent), then UMAP of 4,000 blocks (~2-3 s per
              dimension) and the placement matmul O(N x 4,000 x D) (15k: 0.1 s, 100k: ~1 s): constant in N above 4k.
  regimes     ``regimes.cluster_regimes`` (KMeans sweep K = 2..8 + sampled silhouettes) on up to
              ``CLUSTER_FULL_MAX`` blocks; above, fitted on that many sampled blocks and the rest assigned to the
              nearest regime centre (15k: a few s, 100k: bounded like 50k).
  orderings   ``timeline.build_pseudo_timeline`` greedy / refined / regime (refined is the engine's own
              pseudo-timeline when its method and threshold match, so it is not recomputed): 15k ~5 s, 100k ~40 s.
  bound       ``metrics.mst_lower_bound`` (K-NN graph MST above 2,000 blocks): 15k ~1 s, 100k ~5 s.

Knows nothing about Streamlit or files other than its own npz; takes an engine (or latents) and returns arrays.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import metrics, projection, regimes, timeline
from .errors import DataError
from .numeric_checks import unit_latents

FORMAT = 1
ORDERINGS = ("greedy", "refined", "regime")   # the orderings the Timeline page compares (timeline.METHODS[:3])
FULL_UMAP_MAX = 4_000      # up to this many blocks: UMAP of every block (umap-learn's exact-neighbour branch)
UMAP_SAMPLE = 4_000        # above: UMAP of this many sampled blocks, the rest placed by their neighbours
PLACE_K = 10               # sampled neighbours that place each other block
CLUSTER_FULL_MAX = 50_000  # above: the regime sweep runs on this many sampled blocks
CLUSTER_INLINE_MAX = 5_000  # the same bound for a clustering asked for in an interactive process (the app)
REGIME_SETTINGS = {"k_range": (2, 8), "seed": 0, "criterion": "silhouette"}   # the pages' automatic-K defaults
STEPS = ("projection", "regimes", "orderings", "lower_bound")

ViewsProgress = Callable[[str, int, int, dict], None]   # (what, step, total, {"seconds": ...}) like training's


@dataclass(frozen=True)
class ModelViews:
    """Everything the model pages draw of one model's training blocks (N of them)."""

    key: str                              # projection.latents_key(block_latents) these views belong to
    coords2: np.ndarray                   # (N, 2) float32 projection
    coords3: np.ndarray                   # (N, 3) float32 projection
    method: str                           # "umap" | "pca"
    sample: np.ndarray                    # (M,) int64 blocks UMAP was fitted on (all N when full; empty for PCA)
    regime: regimes.RegimeResult          # automatic K at REGIME_SETTINGS, labels numbered by first appearance
    orderings: dict[str, np.ndarray]      # method -> (N,) int64 permutation starting at block 0
    lower_bound: float                    # metrics.mst_lower_bound of the latents
    seconds: dict[str, float] = field(default_factory=dict)   # step -> compute seconds

    @property
    def n_blocks(self) -> int:
        return int(self.coords2.shape[0])

    def coords(self, dim: int) -> np.ndarray:
        return self.coords2 if int(dim) == 2 else self.coords3

    def describe(self) -> str:
        """One sentence saying how the projection was made."""
        n, m = self.n_blocks, len(self.sample)
        if self.method == "pca":
            return f"PCA of all {n:,} blocks (umap-learn was unavailable when these views were computed)"
        if m >= n:
            return f"UMAP of all {n:,} blocks"
        return (f"UMAP of {m:,} sampled blocks; the other {n - m:,} placed at the similarity-weighted mean of "
                f"their {PLACE_K} most similar sampled blocks")


# ---------------------------------------------------------------------------------------------- steps
def embed(latents: np.ndarray, dims: tuple[int, ...] = (2, 3), seed: int = 42,
          sample_size: int = UMAP_SAMPLE, full_max: int = FULL_UMAP_MAX,
          place_k: int = PLACE_K) -> tuple[dict[int, np.ndarray], np.ndarray, str]:
    """({dim: (N, dim) float32}, sampled block indices (M,), method) for latents (N, D).

    Up to ``full_max`` blocks every block is in the UMAP; above, ``sample_size`` blocks drawn with
    ``np.random.default_rng(seed)`` are, and each other block sits at the similarity-weighted mean of its
    ``place_k`` most cosine-similar sampled blocks. PCA of every block when umap-learn cannot be imported.
    """
    x = unit_latents(latents).astype(np.float32)                        # (N, D)
    n = x.shape[0]
    try:
        import umap  # noqa: F401 - availability check; projection.umap_embed imports it again (cached)
    except ImportError:
        return {d: projection.pca(x, d) for d in dims}, np.zeros(0, np.int64), "pca"
    if n < 5:
        return {d: projection.pca(x, d) for d in dims}, np.zeros(0, np.int64), "pca"
    if n <= full_max:
        sample = np.arange(n, dtype=np.int64)
    else:
        sample = np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False)).astype(np.int64)
    out: dict[int, np.ndarray] = {}
    idx = w = None
    if len(sample) < n:
        idx, w = _sample_neighbours(x, sample, place_k)                   # (N, K) into sample, (N, K)
    for d in dims:
        sub = projection.umap_embed(x[sample], d, seed=seed)             # (M, d)
        if idx is None:
            out[d] = sub
            continue
        coords = projection.place_points(sub, idx, w).astype(np.float32)  # (N, d)
        coords[sample] = sub                                             # sampled blocks keep their own place
        out[d] = coords
    return out, sample, "umap"


def _sample_neighbours(x: np.ndarray, sample: np.ndarray, k: int,
                       chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """For every row of unit x (N, D): its k most similar rows of x[sample] as (positions into sample (N, k),
    similarities clipped at 0 (N, k)). Chunked so the (chunk, M) similarity block stays ~130 MB at M = 4,000."""
    s = x[sample]                                                        # (M, D)
    k = min(k, len(sample))
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    w = np.empty((x.shape[0], k), dtype=np.float64)
    for a in range(0, x.shape[0], chunk):
        sim = x[a:a + chunk] @ s.T                                       # (c, M)
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]              # (c, k) unordered top-k
        idx[a:a + chunk] = part
        w[a:a + chunk] = np.clip(np.take_along_axis(sim, part, axis=1), 0.0, None)
    return idx, w


def cluster(latents: np.ndarray, k: int | None = None, k_range: tuple[int, int] = REGIME_SETTINGS["k_range"],
            seed: int = REGIME_SETTINGS["seed"], criterion: str = REGIME_SETTINGS["criterion"],
            full_max: int = CLUSTER_FULL_MAX) -> regimes.RegimeResult:
    """``regimes.cluster_regimes`` without volatility (labels numbered by first appearance; ``regimes.relabel``
    orders them by a dataset's block volatility). Above ``full_max`` blocks the fit runs on a seeded sample of
    that many and every block takes its nearest regime centre, so the cost stops growing with N."""
    n = int(np.shape(latents)[0])
    if n <= full_max:
        return regimes.cluster_regimes(latents, k, None, k_range, seed, criterion)
    x = unit_latents(latents)
    pick = np.sort(np.random.default_rng(seed).choice(n, size=full_max, replace=False))
    fit = regimes.cluster_regimes(x[pick], k, None, k_range, seed, criterion)
    labels = np.argmax(x @ fit.centers.T, axis=1).astype(np.int64)       # (N,) nearest unit centre
    centers = np.stack([x[labels == c].mean(axis=0) if (labels == c).any() else fit.centers[c]
                        for c in range(fit.k)])                          # (K, D) means of all members
    centers /= np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    return regimes.relabel(regimes.RegimeResult(labels, fit.k, fit.scores, fit.criterion, centers,
                                                np.full(fit.k, np.nan), fit.silhouette), None)


def orderings(latents: np.ndarray, as_trained: np.ndarray | None = None,
              trained_method: str | None = None, approx_threshold: int = 50_000) -> dict[str, np.ndarray]:
    """``timeline.build_pseudo_timeline(latents, m)`` for each of ``ORDERINGS``, exactly as the Timeline page
    asks for them; ``as_trained`` (the engine's own pseudo-timeline, made with ``trained_method``) stands in
    for that method when the threshold is the default one (the same call, so the same permutation)."""
    out = {}
    for m in ORDERINGS:
        if as_trained is not None and trained_method is not None and approx_threshold == 50_000 \
                and timeline.resolve_method(trained_method) == m:
            out[m] = np.asarray(as_trained, dtype=np.int64)
        else:
            out[m] = np.asarray(timeline.build_pseudo_timeline(latents, method=m), dtype=np.int64)
    return out


# ---------------------------------------------------------------------------------------------- compute
def compute_views(engine: Any, progress: ViewsProgress | None = None, workers: int = 1) -> ModelViews:
    """The views of a fitted engine's training blocks (``engine.block_latents`` (N, D)); ``progress`` gets
    (step name, step, total, {"seconds": ...}) after each step; ``workers=2`` runs the regimes, orderings and
    bound in a forked second process while this one makes the projection (wall time: the longer of the two)."""
    z = getattr(engine, "block_latents", None)
    if z is None:
        raise DataError("the model has no training blocks (fit or load a checkpoint before computing its views)")
    routing = engine.cfg.routing
    return views_of_latents(np.asarray(z), engine.pseudo_timeline, routing.chain_method, routing.approx_threshold,
                            progress=progress, workers=workers)


def _timed(name: str, fn: Callable[[], Any], secs: dict[str, float]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    secs[name] = round(time.perf_counter() - t0, 3)
    return out


def _latent_steps(z: np.ndarray, as_trained: np.ndarray | None, trained_method: str | None,
                  approx_threshold: int) -> tuple[regimes.RegimeResult, dict[str, np.ndarray], float, dict]:
    """Regimes, orderings and the lower bound (everything but the projection), timed; picklable for a worker."""
    secs: dict[str, float] = {}
    reg = _timed("regimes", lambda: cluster(z), secs)
    orders = _timed("orderings", lambda: orderings(z, as_trained, trained_method, approx_threshold), secs)
    bound = _timed("lower_bound", lambda: float(metrics.mst_lower_bound(z)), secs)
    return reg, orders, bound, secs


def views_of_latents(latents: np.ndarray, as_trained: np.ndarray | None = None, trained_method: str | None = None,
                     approx_threshold: int = 50_000, progress: ViewsProgress | None = None,
                     workers: int = 1) -> ModelViews:
    """``compute_views`` for bare latents (N, D), with the engine's pseudo-timeline when there is one."""
    z = np.asarray(latents)
    key = projection.latents_key(z)
    secs: dict[str, float] = {}

    def report(names: tuple[str, ...]) -> None:
        for name in names:
            if progress is not None:
                progress(name, STEPS.index(name) + 1, len(STEPS), {"seconds": secs[name]})

    args = (z, as_trained, trained_method, approx_threshold)
    pool = None
    if workers >= 2:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Forked before umap-learn is imported here (no numba threads to copy); the child sees z without a copy.
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        rest = pool.submit(_latent_steps, *args)
    try:
        coords, sample, method = _timed("projection", lambda: embed(z, (2, 3)), secs)
        report(("projection",))
        reg, orders, bound, more = rest.result() if pool is not None else _latent_steps(*args)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    secs.update(more)
    report(("regimes", "orderings", "lower_bound"))
    for c in coords.values():
        c.setflags(write=False)
    return ModelViews(key, coords[2], coords[3], method, sample, reg, orders, bound, secs)


# ---------------------------------------------------------------------------------------------- files
def save_views(path: str, views: ModelViews) -> None:
    """Write ``views`` to ``path`` as an npz (plain arrays only), atomically (a temporary file, then rename)."""
    r = views.regime
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT), "key": np.array(views.key), "method": np.array(views.method),
        "coords2": views.coords2, "coords3": views.coords3, "sample": views.sample,
        "regime_labels": r.labels, "regime_k": np.array(r.k), "regime_criterion": np.array(r.criterion),
        "regime_centers": r.centers, "regime_silhouette": np.array(r.silhouette),
        "regime_score_k": np.array(sorted(r.scores), dtype=np.int64),
        "regime_score_v": np.array([r.scores[k] for k in sorted(r.scores)], dtype=np.float64),
        "lower_bound": np.array(views.lower_bound),
        "step_names": np.array(list(views.seconds), dtype=str),
        "step_seconds": np.array(list(views.seconds.values()), dtype=np.float64),
        **{f"order_{m}": o for m, o in views.orderings.items()},
    }
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_views(path: str, key: str | None = None) -> ModelViews:
    """The views stored at ``path``; DataError naming the file and field when one is missing or malformed, or
    when ``key`` is given and differs from the stored one (views of another model)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            a = {name: f[name] for name in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"views file {path}: cannot be read as an npz ({type(exc).__name__}: {exc})") from exc
    return _from_arrays(a, path, key)


def _from_arrays(a: dict[str, np.ndarray], path: str, key: str | None) -> ModelViews:
    """Check every field of a loaded npz (names, dtypes, shapes, permutations, finite values) and build the views."""

    def need(name: str, kind: str, ndim: int) -> np.ndarray:
        if name not in a:
            raise DataError(f"views file {path}: field {name!r} is missing (not a ChronosDefrag views file?)")
        v = a[name]
        if v.dtype.kind not in kind or v.ndim != ndim:
            raise DataError(f"views file {path}: field {name!r} should be a {ndim}-D array of kind {kind!r}, "
                            f"got {v.ndim}-D {v.dtype}")
        return v

    fmt = int(need("format", "iu", 0))
    if fmt != FORMAT:
        raise DataError(f"views file {path}: format {fmt} is not the supported format {FORMAT}")
    stored = str(need("key", "U", 0))
    if key is not None and stored != key:
        raise DataError(f"views file {path} belongs to other latents (key {stored[:12]}…) than the model's "
                        f"({key[:12]}…); compute this model's views instead")
    c2, c3 = need("coords2", "f", 2), need("coords3", "f", 2)
    n = c2.shape[0]
    if c2.shape != (n, 2) or c3.shape != (n, 3) or not (np.isfinite(c2).all() and np.isfinite(c3).all()):
        raise DataError(f"views file {path}: coords2 {c2.shape} / coords3 {c3.shape} should be ({n}, 2) / "
                        f"({n}, 3) finite values")
    orders = {m: _check_order(need(f"order_{m}", "iu", 1), n, f"{path}: order_{m}") for m in ORDERINGS}
    labels = need("regime_labels", "iu", 1).astype(np.int64)
    k = int(need("regime_k", "iu", 0))
    centers = need("regime_centers", "f", 2)
    if labels.shape != (n,) or k < 1 or labels.min() < 0 or labels.max() >= k or centers.shape[0] != k:
        raise DataError(f"views file {path}: regime labels {labels.shape} with K={k} and centres {centers.shape} "
                        f"do not fit {n} blocks")
    sk, sv = need("regime_score_k", "iu", 1), need("regime_score_v", "f", 1)
    if sk.shape != sv.shape:
        raise DataError(f"views file {path}: regime scores {sk.shape} / {sv.shape} differ in length")
    sample = need("sample", "iu", 1).astype(np.int64)
    if sample.size and (sample.min() < 0 or sample.max() >= n):
        raise DataError(f"views file {path}: sampled block indices fall outside 0..{n - 1}")
    names, secs = need("step_names", "U", 1), need("step_seconds", "f", 1)
    method = str(need("method", "U", 0))
    if method not in projection.METHODS:
        raise DataError(f"views file {path}: method {method!r} is not one of {projection.METHODS}")
    reg = regimes.RegimeResult(labels, k, {int(i): float(v) for i, v in zip(sk, sv)},
                               str(need("regime_criterion", "U", 0)), centers.astype(np.float64),
                               np.full(k, np.nan), float(need("regime_silhouette", "f", 0)))
    for c in (c2, c3):
        c.setflags(write=False)
    return ModelViews(stored, c2.astype(np.float32, copy=False), c3.astype(np.float32, copy=False), method,
                      sample, reg, orders, float(need("lower_bound", "f", 0)),
                      {str(s): float(t) for s, t in zip(names, secs)})


def _check_order(o: np.ndarray, n: int, what: str) -> np.ndarray:
    """An (N,) permutation of 0..N-1 starting at block 0, else DataError naming ``what``."""
    o = o.astype(np.int64)
    if o.shape != (n,) or (n and o[0] != 0) or not np.array_equal(np.sort(o), np.arange(n)):
        raise DataError(f"views file {what} should be a permutation of the {n} blocks starting at block 0")
    return o
