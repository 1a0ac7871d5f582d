"""Regimes in latent space: clustering with an automatic K, stable label order, kNN, block stats and views.

Owns: ``cluster_regimes`` (KMeans on unit latents with K chosen by a silhouette sweep, or a diagonal Gaussian
mixture chosen by a BIC sweep, or a fixed K; labels renumbered by ascending mean block volatility so they never
shuffle between refits), ``nearest_blocks`` (cosine kNN of one block), ``block_table`` (per-block time span,
return and volatility from the dataset arrays), ``reference_series`` (a price-like series for charts when the
data has no prices), ``block_view`` (a model's blocks joined with the dataset: series, time axis, per-block table
and ground truth via ``metrics.block_majority``), ``block_regimes`` (learned and ground-truth regime per
training block, for neighbour tables) and ``block_confidence`` (per-block live confidence from a replay's
neighbour lists). Scores of a labelling (``agreement``, ``timeline_merit``) live in ``metrics``. Arrays
in, arrays / frames out; knows nothing about Streamlit or engines.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .blocks import blocks_end
from .errors import ConfigError, DataError
from .metrics import block_majority
from .numeric_checks import unit_latents

CRITERIA = ("silhouette", "bic")


@dataclass
class RegimeResult:
    labels: np.ndarray                  # (N,) int64 regime id per block, 0 = calmest (lowest mean volatility)
    k: int                              # number of regimes
    scores: dict[int, float]            # the sweep: K -> silhouette (higher better) or BIC (lower better)
    criterion: str                      # "silhouette" | "bic" | "fixed"
    centers: np.ndarray                 # (K, D) unit-normalised mean latent of each regime, in label order
    regime_vol: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) mean block volatility per regime
    silhouette: float = float("nan")    # silhouette of the chosen labelling (cosine), whatever the criterion


def _fit(x: np.ndarray, k: int, criterion: str, seed: int) -> tuple[np.ndarray, float | None]:
    """Labels of one K, and the BIC for the mixture model (None for KMeans)."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    if criterion == "bic":
        gm = GaussianMixture(k, covariance_type="diag", random_state=seed, n_init=2, reg_covar=1e-5).fit(x)
        return gm.predict(x), float(gm.bic(x))
    return KMeans(k, n_init=4, random_state=seed).fit_predict(x), None


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.metrics import silhouette_score

    if not 2 <= len(np.unique(labels)) <= x.shape[0] - 1:
        return float("nan")
    # Exact up to 4k points; a fixed random sample above (silhouette is O(N^2)).
    n = x.shape[0]
    return float(silhouette_score(x, labels, metric="cosine", sample_size=4000 if n > 4000 else None,
                                  random_state=seed))


def _relabel(labels: np.ndarray, block_vol: np.ndarray | None) -> np.ndarray:
    """Renumber so regime 0 has the lowest mean block volatility (ties / no volatility: first appearance)."""
    ids = np.unique(labels)
    first = np.array([np.flatnonzero(labels == c)[0] for c in ids])
    vol = (np.array([block_vol[labels == c].mean() for c in ids]) if block_vol is not None
           else np.zeros(len(ids)))
    order = ids[np.lexsort((first, vol))]           # primary key: volatility, then first appearance
    remap = np.empty(int(labels.max()) + 1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    return remap[labels]


def cluster_regimes(latents: np.ndarray, k: int | None = None, block_vol: np.ndarray | None = None,
                    k_range: tuple[int, int] = (2, 8), seed: int = 0, criterion: str = "silhouette") -> RegimeResult:
    """Cluster block latents (N, D) into regimes.

    k=None sweeps K over ``k_range`` (inclusive, clipped to N - 1) and keeps the best silhouette (KMeans) or the
    lowest BIC (diagonal Gaussian mixture), reporting every K's score in ``.scores``. A fixed ``k`` skips the sweep
    (``.scores`` then holds that K's silhouette). ``block_vol`` (N,) orders the labels: regime 0 is the calmest.
    """
    if criterion not in CRITERIA:
        raise ConfigError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    x = unit_latents(latents)
    n = x.shape[0]
    if n < 3:
        raise DataError(f"need at least 3 blocks to cluster regimes, got {n}")
    block_vol = _checked_volatility(block_vol, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning on duplicate points
        if k is not None:
            labels, scores, used = _fit_fixed(x, k, criterion, seed)
        else:
            labels, scores, used = _sweep(x, k_range, criterion, seed)
    labels = _relabel(np.asarray(labels, dtype=np.int64), block_vol)
    return _result(x, labels, scores, used, block_vol, scores[int(k)] if used == "fixed" else None, seed)


def relabel(result: RegimeResult, block_vol: np.ndarray | None) -> RegimeResult:
    """The same clustering numbered as ``cluster_regimes`` numbers it for ``block_vol`` (N,): regime 0 calmest,
    ties by first appearance; centres, sweep scores and silhouette follow the labels. O(N): stored labels
    (``views``) are numbered without volatility, and each dataset's block volatility orders them.

    ``relabel(cluster_regimes(z), vol)`` equals ``cluster_regimes(z, block_vol=vol)``.
    """
    labels = np.asarray(result.labels, dtype=np.int64)
    vol = _checked_volatility(block_vol, labels.shape[0])
    used, compact = np.unique(labels, return_inverse=True)       # drop ids no block carries
    new = _relabel(compact.astype(np.int64), vol)
    k = len(used)
    perm = np.empty(k, dtype=np.int64)                            # perm[new id] = old compact id
    perm[new] = compact
    centers = np.asarray(result.centers)[used][perm]
    regime_vol = (np.array([vol[new == c].mean() for c in range(k)]) if vol is not None else np.full(k, np.nan))
    return RegimeResult(labels=new, k=k, scores=dict(result.scores), criterion=result.criterion, centers=centers,
                        regime_vol=regime_vol, silhouette=result.silhouette)


def _checked_volatility(block_vol: np.ndarray | None, n: int) -> np.ndarray | None:
    """Block volatilities (N,) as float64 with NaN replaced by their mean (0 when all are NaN)."""
    if block_vol is None:
        return None
    block_vol = np.asarray(block_vol, dtype=np.float64)
    if block_vol.shape != (n,):
        raise DataError(f"block_vol must have shape ({n},) to match the latents, got {block_vol.shape}")
    return np.nan_to_num(block_vol, nan=np.nanmean(block_vol) if np.isfinite(block_vol).any() else 0.0)


def _fit_fixed(x: np.ndarray, k: int, criterion: str, seed: int) -> tuple[np.ndarray, dict[int, float], str]:
    n = x.shape[0]
    if not 1 <= int(k) <= n:
        raise ConfigError(f"number of regimes k must be in [1, {n}] for {n} blocks, got {k}")
    labels, _ = _fit(x, int(k), criterion, seed)
    return labels, {int(k): _silhouette(x, labels, seed)}, "fixed"


def _sweep(x: np.ndarray, k_range: tuple[int, int], criterion: str,
           seed: int) -> tuple[np.ndarray, dict[int, float], str]:
    """Fit every K in k_range (clipped to N - 1); keep the best silhouette or the lowest BIC (ties: smaller K)."""
    n = x.shape[0]
    lo, hi = int(k_range[0]), int(k_range[1])
    if lo < 2 or hi < lo:
        raise ConfigError(f"k_range must be (lo, hi) with 2 <= lo <= hi, got {k_range}")
    hi = min(hi, n - 1)
    if hi < lo:
        raise DataError(f"{n} blocks are too few for a sweep starting at K={lo}")
    fits, scores = {}, {}
    for kk in range(lo, hi + 1):
        lab, bic = _fit(x, kk, criterion, seed)
        fits[kk] = lab
        scores[kk] = bic if criterion == "bic" else _silhouette(x, lab, seed)
    finite = {kk: s for kk, s in scores.items() if np.isfinite(s)}
    if not finite:
        best = lo
    elif criterion == "bic":
        best = min(finite, key=lambda kk: (finite[kk], kk))
    else:
        best = max(finite, key=lambda kk: (finite[kk], -kk))
    return fits[best], scores, criterion


def _result(x: np.ndarray, labels: np.ndarray, scores: dict[int, float], used: str, block_vol: np.ndarray | None,
            silhouette: float | None, seed: int) -> RegimeResult:
    """The RegimeResult of final labels: unit centres and mean volatility per regime, the labelling's silhouette."""
    kk = int(labels.max()) + 1
    centers = np.stack([x[labels == c].mean(axis=0) for c in range(kk)])
    centers /= np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    vol = (np.array([block_vol[labels == c].mean() for c in range(kk)]) if block_vol is not None
           else np.full(kk, np.nan))
    sil = _silhouette(x, labels, seed) if silhouette is None else silhouette
    return RegimeResult(labels=labels, k=kk, scores=scores, criterion=used, centers=centers, regime_vol=vol,
                        silhouette=sil)


def nearest_blocks(latents: np.ndarray, index: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The k blocks most cosine-similar to block ``index`` (itself excluded): (indices (k,), similarities (k,)).

    Ties are broken by the lower block index, so the answer is deterministic.
    """
    x = unit_latents(latents)
    n = x.shape[0]
    if not 0 <= int(index) < n:
        raise DataError(f"block index {index} out of range [0, {n})")
    k = int(min(k, n - 1))
    if k < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    sims = x @ x[int(index)]                       # (N,)
    sims[int(index)] = -np.inf
    order = np.lexsort((np.arange(n), -sims))[:k]  # descending similarity, then ascending index
    return order.astype(np.int64), sims[order]


def block_volatility(series: np.ndarray, starts: np.ndarray, block_len: int) -> np.ndarray:
    """Std of log returns (positive series) or of first differences within each block: (N,)."""
    s = np.asarray(series, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size and starts.max() + block_len > s.shape[0]:
        raise DataError(f"blocks reach tick {int(starts.max()) + block_len} but the series has {s.shape[0]} ticks; "
                        "the model was trained on different data")
    seg = s[starts[:, None] + np.arange(block_len)[None, :]]          # (N, L)
    d = np.diff(np.log(seg), axis=1) if (s > 0).all() else np.diff(seg, axis=1)
    return d.std(axis=1) if block_len > 1 else np.zeros(len(starts))


def reference_series(prices: np.ndarray | None, features: np.ndarray) -> tuple[np.ndarray, str]:
    """The series charts draw: the prices when present, else the cumulative sum of the first feature."""
    if prices is not None:
        return np.asarray(prices, dtype=np.float64), "price"
    f = np.asarray(features, dtype=np.float64)
    return np.cumsum(f[:, 0] if f.ndim == 2 else f), "cumulative feature 0"


def block_table(starts: np.ndarray, block_len: int, series: np.ndarray, timestamps: np.ndarray | None = None,
                truth: np.ndarray | None = None) -> pd.DataFrame:
    """One row per block: block, start, end (exclusive tick), t_start, t_end, ret_pct, vol (+ truth when given)."""
    starts = np.asarray(starts, dtype=np.int64)
    s = np.asarray(series, dtype=np.float64)
    vol = block_volatility(s, starts, block_len)
    last = starts + block_len - 1
    first_v, last_v = s[starts], s[last]
    ret = np.where(first_v != 0, (last_v / np.where(first_v != 0, first_v, 1.0) - 1.0) * 100.0, np.nan)
    df = pd.DataFrame({"block": np.arange(len(starts)), "start": starts, "end": starts + block_len,
                       "ret_pct": ret, "vol": vol})
    if timestamps is not None:
        ts = np.asarray(timestamps)
        df["t_start"], df["t_end"] = ts[starts], ts[last]
    else:
        df["t_start"], df["t_end"] = starts, last
    if truth is not None:
        df["truth"] = np.asarray(truth)
    return df


def block_confidence(n_blocks: int, records: Iterable) -> np.ndarray:
    """Per training block: SPD-weighted mean live confidence of the replayed windows that retrieved it.

    ``records``: LivePrediction objects or dicts with ``neighbour_indices``, ``regime_confidence`` and optionally
    ``neighbour_weights``. Returns (n_blocks,) with NaN for blocks never retrieved.
    """
    num, den = np.zeros(n_blocks), np.zeros(n_blocks)
    for r in records:
        get = r.get if isinstance(r, dict) else (lambda name, default=None, _r=r: getattr(_r, name, default))
        idx = np.asarray(get("neighbour_indices", []), dtype=np.int64)
        w = get("neighbour_weights", None)
        w = np.ones(len(idx)) if w is None or len(w) == 0 else np.asarray(w, dtype=np.float64)
        conf = float(get("regime_confidence", np.nan))
        if len(w) != len(idx) or not np.isfinite(conf):
            continue
        ok = (idx >= 0) & (idx < n_blocks)
        np.add.at(num, idx[ok], w[ok] * conf)
        np.add.at(den, idx[ok], w[ok])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def block_regimes(latents: np.ndarray, starts: np.ndarray, block_len: int, features: np.ndarray | None = None,
                  prices: np.ndarray | None = None, labels: np.ndarray | None = None,
                  k: int | None = None) -> dict[str, np.ndarray]:
    """Regime label per training block (N,) for neighbour tables: ``cluster`` (``cluster_regimes``, ordered calm ->
    turbulent by block volatility when the blocks fit the series ``features`` (T, F), as on the manifold page) and,
    when they fit and ``labels`` (T,) are given, ``truth`` (each block's majority label)."""
    starts = np.asarray(starts, dtype=np.int64)
    aligned = features is not None and starts.size > 0 and blocks_end(starts, block_len) <= np.shape(features)[0]
    vol = block_volatility(reference_series(prices, features)[0], starts, block_len) if aligned else None
    out: dict[str, np.ndarray] = {"cluster": np.asarray(cluster_regimes(latents, k=k, block_vol=vol).labels)}
    if aligned and labels is not None:
        # Missing labels (NaN / negative) count for nothing; a label series that cannot be read as codes costs
        # the truth column only, never the learned-regime one.
        try:
            out["truth"] = block_majority(labels, block_len, starts=starts)
        except DataError:
            pass
    return out


@dataclass
class BlockView:
    """Everything the manifold / timeline pages draw about the training blocks of one model on one dataset."""
    latents: np.ndarray            # (N, D)
    starts: np.ndarray             # (N,) start tick in the dataset
    block_len: int
    order: np.ndarray              # (N,) pseudo-timeline
    series: np.ndarray             # (T,) price (or cumulative first feature) of the whole dataset
    series_name: str
    x: np.ndarray                  # (T,) timestamps or tick numbers, for chart axes
    table: pd.DataFrame            # block_table rows
    truth: np.ndarray | None       # (N,) ground-truth majority label per block, or None
    truth_share: np.ndarray | None  # (N,) share of the block its majority label covers


def block_view(latents: np.ndarray, starts: np.ndarray, block_len: int, order: np.ndarray, features: np.ndarray,
               prices: np.ndarray | None = None, timestamps: np.ndarray | None = None,
               labels: np.ndarray | None = None) -> BlockView:
    """Join a model's blocks with the dataset arrays; DataError when the blocks do not fit the dataset."""
    starts = np.asarray(starts, dtype=np.int64)
    latents = np.asarray(latents)
    if latents.shape[0] != starts.shape[0] or np.asarray(order).shape[0] != starts.shape[0]:
        raise DataError(f"model state is inconsistent: {latents.shape[0]} latents, {starts.shape[0]} block starts, "
                        f"{np.asarray(order).shape[0]} pseudo-timeline entries")
    t = np.asarray(features).shape[0]
    need = blocks_end(starts, block_len)
    if need > t:
        raise DataError(f"the model's blocks cover ticks 0..{need - 1} but the current dataset has only {t} ticks: "
                        "the model was trained on other data. Train a model on this dataset or load the matching one")
    series, name = reference_series(prices, features)
    truth = share = None
    if labels is not None:
        truth, share = block_majority(labels, block_len, starts=starts, return_share=True)
    x = np.asarray(timestamps) if timestamps is not None else np.arange(t)
    table = block_table(starts, block_len, series, timestamps, truth)
    return BlockView(latents, starts, block_len, np.asarray(order, dtype=np.int64), series, name, x, table, truth,
                     share)
