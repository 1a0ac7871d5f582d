"""Numbers about a model's representation and its evaluation: collapse, timeline quality, agreement, labels.

Owns the collapse statistics and verdicts (mean pairwise cosine, effective rank, ``collapse_stats``, the
mitigations per verdict, per-epoch ``collapse_curves``, ``pairwise_similarities`` for a histogram), timeline
quality (``timeline_entropy``, ``mean_run_length``, ``adjacency_purity``, ``timeline_merit``, ``mst_lower_bound``,
``ordering_scores``, ``ordering_table``), ``agreement``
(ARI / NMI of a labelling against ground truth), the evidence statistics (``t_interval``, ``summarise``,
``spearman``, ``latent_mse``) and ``block_majority``, the project's one majority-label rule (missing labels are
-1, NaN or any negative value; a block with no label gets -1; ties go to the lowest code). Drift lives in
``drift``. All functions take NumPy arrays (or anything ``np.asarray`` accepts) and return plain floats / dicts /
arrays, so the engine, the CLI and the app share one definition of every number they show. Knows nothing about
Streamlit, plotting or engines.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ConfigError, DataError
from .numeric_checks import unit_latents

# A batch whose latents average this cosine or more, or whose effective rank is this low, is collapsed.
COLLAPSE_MEAN_COS = 0.9
COLLAPSE_EFF_RANK = 1.5
# Between healthy and collapsed: worth a warning.
COLLAPSING_MEAN_COS = 0.7
COLLAPSING_EFF_RANK = 3.0


def mean_pairwise_cosine(z: np.ndarray) -> float:
    """Mean cosine over distinct pairs of rows of z (N, D) (rows are normalised here)."""
    n = len(z)
    if n < 2:
        return 1.0
    z = unit_latents(z)
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


# ---------------------------------------------------------------------- collapse: what to do about it
# The spec's Failure Modes section, keyed by verdict, so the app and the CLI say the same thing.
COLLAPSE_MITIGATIONS = {
    "healthy": ["Latents are spread over the sphere: no action needed."],
    "collapsing": [
        "Increase encoder.entropy_weight (TER lambda) so batch entropy stays near its target.",
        "Decrease encoder.temperature (sharper InfoNCE) or raise optim.batch_size for more negatives.",
        "Watch the next epochs: mean pairwise cosine rising towards 0.9 means collapse is under way.",
    ],
    "collapsed": [
        "Re-fit with a larger encoder.entropy_weight (TER lambda) relative to the InfoNCE temperature.",
        "Decrease encoder.temperature and increase optim.batch_size.",
        "Expect regime_confidence uniformly near 1 and every live window routed to the same neighbours "
        "until then: do not trust the pseudo-timeline of a collapsed model.",
    ],
}


def pairwise_similarities(z: np.ndarray, max_pairs: int = 50_000, seed: int = 0) -> np.ndarray:
    """Cosines of distinct pairs of rows of z (N, D), for a similarity histogram.

    All N (N - 1) / 2 pairs when that is at most ``max_pairs``, else ``max_pairs`` pairs drawn uniformly
    (i != j) with an explicit seed, so the histogram costs O(max_pairs * D) for any N.
    """
    n = len(z)
    if n < 2:
        return np.empty(0)
    z = unit_latents(z)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, max_pairs)
        j = (i + rng.integers(1, n, max_pairs)) % n  # never equal to i
    return np.einsum("md,md->m", z[i], z[j])


def collapse_curves(history: list[dict]) -> dict[str, np.ndarray]:
    """Per-epoch encoder curves from ``engine.history``: epoch, entropy, entropy_target, mean_cos, eff_rank,
    loss and verdict (missing values as NaN / ''), one entry per encoder epoch."""
    rows = [h for h in history if h.get("stage", "encoder") == "encoder"]
    out: dict[str, np.ndarray] = {"epoch": np.array([int(h.get("epoch", i + 1)) for i, h in enumerate(rows)])}
    for k in ("entropy", "entropy_target", "mean_cos", "eff_rank", "loss", "infonce", "ter", "lcr"):
        out[k] = np.array([float(h.get(k, np.nan)) for h in rows])
    out["verdict"] = np.array([str(h.get("verdict", "")) for h in rows])
    return out


# ---------------------------------------------------------------------- timeline quality
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


def timeline_merit(latents: np.ndarray, order: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """Figures of merit of the pseudo-timeline against chronological order.

    path_cost_* (timeline.path_cost), timeline_entropy, and with labels (N,) the mean run length of
    same-label blocks and the adjacency purity in both orders.
    """
    from .timeline import path_cost

    order = np.asarray(order, dtype=np.int64)
    pc_c, pc_p = path_cost(latents), path_cost(latents, order)
    out = {"path_cost_chrono": pc_c, "path_cost_pseudo": pc_p,
           "path_cost_ratio": pc_p / pc_c if pc_c > 0 else float("nan"),
           "timeline_entropy": timeline_entropy(order)}
    if labels is not None:
        lab = np.asarray(labels)
        out.update({"run_chrono": mean_run_length(lab), "run_pseudo": mean_run_length(lab[order]),
                    "purity_chrono": adjacency_purity(lab), "purity_pseudo": adjacency_purity(lab, order)})
    return out


def mst_lower_bound(latents: np.ndarray, exact_max: int = 2000, k: int = 16) -> float:
    """Weight of a minimum spanning tree under squared L2 distance: no order of the blocks (no Hamiltonian path)
    costs less than the exact MST. Exact (dense matrix) up to ``exact_max`` blocks; above, the MST of the
    symmetrised K-NN graph (``timeline.candidate_lists``), which equals the exact MST when that graph holds it and
    is otherwise a little above it (an estimate, not a proof; a disconnected graph adds the forest only)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    z = np.asarray(latents, dtype=np.float64)
    n = z.shape[0]
    if n < 2:
        return 0.0
    if n <= exact_max:
        sq = (z * z).sum(1)
        d = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0) + 1e-12  # csgraph reads 0 as "no edge"
        np.fill_diagonal(d, 0.0)
        return float(minimum_spanning_tree(d).sum() - 1e-12 * (n - 1))
    import torch

    from .timeline import candidate_lists

    nbr = candidate_lists(torch.from_numpy(z.astype(np.float32)), k=k)  # (N, K), -1 pads
    rows = np.repeat(np.arange(n), nbr.shape[1])
    cols = nbr.ravel()
    ok = cols >= 0
    rows, cols = rows[ok], cols[ok]
    w = np.empty(len(rows))
    for a in range(0, len(rows), 1 << 18):   # chunks: 16M pairs x 32 dims in one go would take 12 GB
        d = z[rows[a:a + (1 << 18)]] - z[cols[a:a + (1 << 18)]]
        w[a:a + (1 << 18)] = np.einsum("ij,ij->i", d, d) + 1e-12
    g = coo_matrix((w, (rows, cols)), shape=(n, n)).tocsr()
    g = g.maximum(g.T)
    return float(minimum_spanning_tree(g).sum()) + _bridges(z, g)


def _bridges(z: np.ndarray, g: Any, sample: int = 2000, seed: int = 0) -> float:
    """Weight that joins the K-NN graph's components (well separated regimes leave one per regime): the MST of
    the components under their closest pair, searched among up to ``sample`` blocks of each."""
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    c, comp = connected_components(g, directed=False)
    if c == 1:
        return 0.0
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(comp == i) for i in range(c)]
    members = [m if len(m) <= sample else rng.choice(m, sample, replace=False) for m in members]
    w = np.zeros((c, c))
    for i in range(c):
        for j in range(i + 1, c):
            a, b = z[members[i]], z[members[j]]
            d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
            w[i, j] = w[j, i] = max(float(d.min()), 0.0) + 1e-12
    return float(minimum_spanning_tree(w).sum())


def ordering_table(latents: np.ndarray, orders: dict[str, np.ndarray], labels: np.ndarray | None = None,
                   lower_bound: float | None = None) -> list[dict[str, Any]]:
    """``ordering_scores`` of each named order (N,) against one shared MST lower bound (``mst_lower_bound``
    unless given): one row per order, its name under "order" (cost, lower_bound, gap and, with labels, purity /
    switches / mean_run)."""
    bound = mst_lower_bound(latents) if lower_bound is None else float(lower_bound)
    return [{"order": name, **ordering_scores(latents, o, labels, bound)} for name, o in orders.items()]


def ordering_scores(latents: np.ndarray, order: np.ndarray, labels: np.ndarray | None = None,
                    lower_bound: float | None = None) -> dict[str, float]:
    """One ordering's quality: path cost, the MST lower bound (``mst_lower_bound`` unless given), the optimality
    gap cost / bound - 1 (an upper bound on how far from the best order it can be), and with labels (N,) the
    adjacency purity, the number of label switches between neighbours and the mean same-label run."""
    from .timeline import path_cost

    order = np.asarray(order, dtype=np.int64)
    cost = path_cost(latents, order)
    bound = mst_lower_bound(latents) if lower_bound is None else float(lower_bound)
    out = {"cost": cost, "lower_bound": bound, "gap": cost / bound - 1 if bound > 0 else float("nan")}
    if labels is not None:
        lab = np.asarray(labels)[order]
        out.update({"purity": adjacency_purity(lab), "switches": float(np.count_nonzero(lab[1:] != lab[:-1])),
                    "mean_run": mean_run_length(lab)})
    return out


# ---------------------------------------------------------------------- agreement with ground truth
def agreement(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Adjusted Rand index and normalised mutual information of a labelling against ground truth."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels, truth = np.asarray(labels), np.asarray(truth)
    if labels.shape != truth.shape:
        raise DataError(f"labels {labels.shape} and ground truth {truth.shape} must have the same shape")
    return {"ari": float(adjusted_rand_score(truth, labels)), "nmi": float(normalized_mutual_info_score(truth, labels))}


# ---------------------------------------------------------------------- evidence statistics
def t_interval(values: Any, level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of a Student-t confidence interval for the mean; half-width is NaN for < 2 values.

    >>> m, h = t_interval([1.0, 2.0, 3.0]); round(m, 3), round(h, 3)
    (2.0, 2.484)
    """
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size < 2:
        return float(v.mean()), float("nan")
    sem = v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(student_t.ppf(0.5 + level / 2, v.size - 1) * sem)


def summarise(values: Any) -> dict[str, Any]:
    """{"mean", "ci" (half-width), "n", "values"} of per-seed numbers."""
    vals = [float(x) for x in values]
    m, h = t_interval(vals)
    return {"mean": m, "ci": h, "n": int(np.isfinite(vals).sum()), "values": vals}


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant or < 3 pairs."""
    from scipy.stats import rankdata

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"spearman needs two 1-D arrays of equal length, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3:
        return float("nan")
    ra, rb = rankdata(a) - (a.size + 1) / 2, rankdata(b) - (b.size + 1) / 2
    den = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb / den) if den > 0 else float("nan")


def latent_mse(pred: Any, target: Any) -> float:
    """Mean over rows of the mean squared error over columns: pred, target (M, K)."""
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if p.shape != t.shape:
        raise DataError(f"prediction shape {p.shape} does not match target shape {t.shape}")
    return float(((p - t) ** 2).mean())


# ---------------------------------------------------------------------- majority label per block
def _codes(labels: np.ndarray) -> np.ndarray:
    """(T,) int64 codes with every missing label (NaN, inf, negative) as -1."""
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise DataError(f"labels must be a 1-D series (T,), got shape {lab.shape}")
    if lab.dtype.kind == "b" or lab.dtype.kind not in "iuf":
        raise DataError(f"labels must be integer regime codes (NaN / negative = missing), got dtype {lab.dtype}")
    if lab.dtype.kind == "f":
        ok = np.isfinite(lab) & (lab >= 0)
        bad = ok & (lab != np.floor(lab))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"labels must be whole regime codes; tick {i} holds {lab[i]!r}")
        if ok.any() and float(lab[ok].max()) >= 2.0 ** 62:
            raise DataError(f"label code {float(lab[ok].max())!r} is too large for an integer code")
        return np.where(ok, lab, -1).astype(np.int64)
    lab = lab.astype(np.int64)
    return np.where(lab >= 0, lab, -1)


def block_majority(labels: np.ndarray, block_len: int, starts: np.ndarray | None = None,
                   return_share: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Majority label code of each block; missing labels (negative or NaN) are ignored, a block with no label
    at all gets -1, ties go to the lowest code.

    Blocks are the complete non-overlapping ones from tick 0, or ``block_len`` ticks from each of ``starts`` (N,).
    With ``return_share`` also the share of the block (of ``block_len`` ticks) that the majority covers (0 for
    an unlabelled block). Memory is O(N * distinct codes), whatever the codes' values.

    >>> block_majority(np.array([0, 1, 1, -1, -1, -1, 2, 2]), 4).tolist()
    [1, 2]
    """
    if isinstance(block_len, bool) or not isinstance(block_len, (int, np.integer)) or block_len < 1:
        raise ConfigError(f"block_len must be a positive integer, got {block_len!r}")
    bl = int(block_len)
    lab = _codes(labels)
    if starts is None:
        n = lab.shape[0] // bl
        lb = lab[: n * bl].reshape(n, bl)                                       # (N, L)
    else:
        st = np.asarray(starts)
        if st.ndim != 1 or (st.size and st.dtype.kind not in "iu"):
            raise DataError(f"block starts must be a 1-D integer array, got shape {st.shape} dtype {st.dtype}")
        st = st.astype(np.int64)
        if st.size and (st.min() < 0 or st.max() + bl > lab.shape[0]):
            i = int(np.flatnonzero((st < 0) | (st + bl > lab.shape[0]))[0])
            raise DataError(f"block {i} (ticks {int(st[i])}..{int(st[i]) + bl - 1}) lies outside the "
                            f"{lab.shape[0]} labelled ticks")
        lb = lab[st[:, None] + np.arange(bl)[None, :]]                            # (N, L)
    n = lb.shape[0]
    vals = np.unique(lb[lb >= 0])                                               # (V,) sorted codes present
    if n == 0 or vals.size == 0:
        maj, top = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    else:
        present = lb >= 0
        idx = np.searchsorted(vals, np.where(present, lb, vals[0]))            # (N, L) code -> 0..V-1
        rows = np.broadcast_to(np.arange(n)[:, None], lb.shape)
        counts = np.bincount((rows * vals.size + idx)[present], minlength=n * vals.size).reshape(n, vals.size)
        top = counts.max(axis=1)
        maj = np.where(top > 0, vals[counts.argmax(axis=1)], -1)               # argmax: first = lowest code
    if not return_share:
        return maj
    return maj, top / bl
