"""Representation-health metrics: collapse, timeline quality (and, grown by the app issues, drift).

All functions take NumPy arrays (or anything ``np.asarray`` accepts) and return plain floats / dicts, so
the engine, the CLI and the app share one definition of every number they show.
"""

from __future__ import annotations

import math

import numpy as np

# A batch whose latents average this cosine or more, or whose effective rank is this low, is collapsed.
COLLAPSE_MEAN_COS = 0.9
COLLAPSE_EFF_RANK = 1.5
# Between healthy and collapsed: worth a warning.
COLLAPSING_MEAN_COS = 0.7
COLLAPSING_EFF_RANK = 3.0


def mean_pairwise_cosine(z: np.ndarray) -> float:
    """Mean cosine over distinct pairs of rows of z (N, D) (rows are normalised here)."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    if n < 2:
        return 1.0
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    s = z.sum(axis=0)
    # sum_{i != j} z_i . z_j = |sum z|^2 - sum |z_i|^2, in O(N D) instead of an N x N matrix.
    return float((s @ s - n) / (n * (n - 1)))


def effective_rank(z: np.ndarray) -> float:
    """exp(spectral entropy) of the rows' second-moment matrix: 1 for identical rows, up to min(N, D)."""
    z = np.asarray(z, dtype=np.float64)
    if z.shape[0] == 0:
        return 0.0
    sv = np.linalg.svd(z, compute_uv=False) ** 2
    total = sv.sum()
    if total <= 0:
        return 0.0
    p = sv / total
    p = p[p > 1e-12]
    return float(math.exp(-(p * np.log(p)).sum()))


def collapse_verdict(mean_cos: float, eff_rank: float) -> str:
    """'collapsed', 'collapsing' or 'healthy' from the two distribution statistics."""
    if mean_cos >= COLLAPSE_MEAN_COS or eff_rank < COLLAPSE_EFF_RANK:
        return "collapsed"
    if mean_cos >= COLLAPSING_MEAN_COS or eff_rank < COLLAPSING_EFF_RANK:
        return "collapsing"
    return "healthy"


def collapse_stats(z: np.ndarray) -> dict:
    """Mean pairwise cosine, effective rank, verdict and collapse flag of latents z (N, D)."""
    mc, er = mean_pairwise_cosine(z), effective_rank(z)
    verdict = collapse_verdict(mc, er)
    return {"mean_cos": mc, "eff_rank": er, "verdict": verdict, "collapsed": verdict == "collapsed"}


def timeline_entropy(order: np.ndarray) -> float:
    """How far a permutation is from chronological order, in [0, 1].

    The normalised Shannon entropy of its step sizes d_i = order[i+1] - order[i]: 0 when every step is +1
    (chronological), close to 1 for a random permutation (almost every step size distinct).
    """
    order = np.asarray(order)
    n = order.shape[0]
    if n < 3:
        return 0.0
    _, counts = np.unique(np.diff(order), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(n - 1))


def mean_run_length(labels_in_order: np.ndarray) -> float:
    """Mean length of maximal runs of equal consecutive labels."""
    lab = np.asarray(labels_in_order)
    if lab.size == 0:
        return 0.0
    runs = 1 + int(np.count_nonzero(lab[1:] != lab[:-1]))
    return lab.size / runs


def adjacency_purity(labels: np.ndarray, order: np.ndarray | None = None) -> float:
    """Share of consecutive pairs (in ``order``; chronological when None) whose labels agree."""
    lab = np.asarray(labels)
    if order is not None:
        lab = lab[np.asarray(order)]
    if lab.size < 2:
        return 1.0
    return float(np.mean(lab[1:] == lab[:-1]))
