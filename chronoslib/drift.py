"""Drift of live latents away from the training manifold, and the low-confidence re-fit alert.

Owns ``centroid_distance``, the RBF-kernel MMD^2 (``mmd2``, the permutation test ``mmd_test``, the median-heuristic
``median_bandwidth``), ``drift_timeline`` (rolling centroid distance and MMD^2 with thresholds from contiguous
training windows), ``drift_verdict`` (stable / drifting / drifted and what to do), ``neighbour_age`` and
``low_confidence_alert`` (the deployment rule: re-fit when regime_confidence stays low). Latent matrices are
validated by ``numeric_checks.unit_latents``. Arrays in, floats / dicts / arrays out; knows nothing about
Streamlit, plotting or engines.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DataError
from .numeric_checks import unit_latents

# A window whose MMD^2 against the training latents exceeds the permutation (1 - alpha) quantile is flagged;
# drift "persists" when at least this share of the most recent windows is flagged.
DRIFT_PERSIST_SHARE = 0.5
DRIFT_ACTIONS = {
    "stable": "Live latents look like the training manifold: keep serving the frozen model.",
    "drifting": "Some recent windows leave the training manifold: keep watching; consider online registry "
                "updates (forgetting factor) so new regimes become retrievable.",
    "drifted": "Drift persists: re-fit the model on recent data (engine.fit on the latest span) or enable online "
               "registry updates; until then treat alpha and regime_confidence with caution.",
}


def _unit_pair(ref: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training latents ref (N, D) and new latents z (M, D) as unit rows of the same width, else DataError."""
    ref, z = unit_latents(ref, "reference latents"), unit_latents(z, "latents")
    if ref.shape[1] != z.shape[1]:
        raise DataError(f"latent sizes differ: reference has D={ref.shape[1]}, new data D={z.shape[1]}")
    return ref, z


def centroid_distance(ref: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of z (M, D) to the mean of the training latents ref (N, D): (M,)."""
    ref, z = _unit_pair(ref, z)
    return np.linalg.norm(z - ref.mean(axis=0), axis=1)


# The median heuristic looks at all pairs of at most this many rows (evenly spaced in time above it): the
# median of 2M pair distances is as good a scale as that of 122M, at 1/60 of the memory.
MEDIAN_ROWS = 2000


def median_bandwidth(x: np.ndarray) -> float:
    """Median heuristic for the RBF bandwidth: median distance between distinct rows (> 0); above MEDIAN_ROWS
    rows, between distinct rows of MEDIAN_ROWS evenly spaced ones."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] > MEDIAN_ROWS:
        x = x[np.linspace(0, x.shape[0] - 1, MEDIAN_ROWS).round().astype(np.int64)]
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    iu = np.triu_indices(x.shape[0], k=1)
    med = float(np.sqrt(np.median(d2[iu]))) if iu[0].size else 1.0
    return med if med > 1e-8 else 1.0


def _rbf(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    d2 = np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)
    return np.exp(-d2 / (2.0 * bandwidth ** 2))


def _mmd2_from_kernel(k: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Biased MMD^2 = a^T K a for signed assignment rows a (P, n+m) with +1/n on X and -1/m on Y: (P,)."""
    return ((a @ k) * a).sum(axis=1)


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Biased (V-statistic) squared MMD between rows of x (N, D) and y (M, D) with an RBF kernel.

    0 for identical samples, grows with the difference of the two distributions. The bandwidth defaults to
    the median heuristic on x (the reference), so one reference gives one scale for every window.
    """
    x, y = unit_latents(x, "reference latents"), unit_latents(y, "latents")
    bw = median_bandwidth(x) if bandwidth is None else float(bandwidth)
    n, m = len(x), len(y)
    return float(_rbf(x, x, bw).sum() / n ** 2 + _rbf(y, y, bw).sum() / m ** 2 - 2 * _rbf(x, y, bw).sum() / (n * m))


def mmd_test(ref: np.ndarray, z: np.ndarray, n_perm: int = 200, alpha: float = 0.05, seed: int = 0,
             bandwidth: float | None = None) -> dict:
    """Permutation two-sample test of z (M, D) against ref (N, D) with the MMD^2 statistic.

    The null distribution comes from ``n_perm`` random re-splits of the pooled sample into groups of N and
    M; ``threshold`` is its (1 - alpha) quantile and ``drift`` is ``mmd2 > threshold``. All permutations are
    scored with one kernel matrix of the pooled sample ((N+M)^2 memory).
    """
    ref, z = _unit_pair(ref, z)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    if n_perm < 1:
        raise ConfigError(f"n_perm must be >= 1, got {n_perm}")
    bw = median_bandwidth(ref) if bandwidth is None else float(bandwidth)
    pooled = np.concatenate([ref, z])
    n, m = len(ref), len(z)
    k = _rbf(pooled, pooled, bw)                                  # (N+M, N+M)
    base = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    stat = float(_mmd2_from_kernel(k, base[None])[0])
    rng = np.random.default_rng(seed)
    perms = np.stack([base[rng.permutation(n + m)] for _ in range(n_perm)])  # (P, N+M)
    null = _mmd2_from_kernel(k, perms)
    threshold = float(np.quantile(null, 1 - alpha))
    p_value = float((1 + np.count_nonzero(null >= stat)) / (1 + n_perm))
    return {"mmd2": stat, "threshold": threshold, "p_value": p_value, "drift": stat > threshold, "bandwidth": bw}


def neighbour_age(query_ticks: np.ndarray, neighbour_ticks: np.ndarray) -> np.ndarray:
    """Age in ticks of retrieved neighbours: query tick (M,) minus neighbour start ticks (M, k) -> (M, k)."""
    q = np.asarray(query_ticks, dtype=np.float64).reshape(-1, 1)
    nb = np.asarray(neighbour_ticks, dtype=np.float64)
    if nb.ndim != 2 or nb.shape[0] != q.shape[0]:
        raise DataError(f"neighbour_ticks must be (M={q.shape[0]}, k), got shape {nb.shape}")
    return q - nb


def low_confidence_alert(confidence: np.ndarray, threshold: float, patience: int) -> dict:
    """The spec's deployment rule: re-fit when regime_confidence stays below ``threshold``.

    Returns ``below`` (M,) bool, ``run`` the length of the current below-threshold streak at the end,
    ``alert`` (streak >= patience), ``alerts`` (M,) bool: windows at which a streak of ``patience`` is reached
    or continues, and ``first_alert`` the index of the first such window (-1 if none).
    """
    c = np.asarray(confidence, dtype=np.float64).reshape(-1)
    if patience < 1:
        raise ConfigError(f"patience must be >= 1 window, got {patience}")
    below = c < threshold
    # Streak length ending at each index: reset to 0 where confidence is back above the threshold.
    streak = np.zeros(c.size, dtype=np.int64)
    run = 0
    for i, b in enumerate(below):
        run = run + 1 if b else 0
        streak[i] = run
    alerts = streak >= patience
    first = int(np.argmax(alerts)) if alerts.any() else -1
    return {"below": below, "streak": streak, "run": int(streak[-1]) if c.size else 0,
            "alert": bool(alerts[-1]) if c.size else False, "alerts": alerts, "first_alert": first}


def drift_timeline(ref: np.ndarray, z: np.ndarray, window: int = 8, step: int = 1,
                   alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Rolling drift of latents z (M, D) (in time order) against the training latents ref (N, D, in time order).

    For every trailing window of ``window`` rows ending at positions window-1, window-1+step, ... (and the
    last row): the distance of the window's mean latent to the training centroid and the window's MMD^2
    against ref (RBF kernel, median-heuristic bandwidth from ref).

    Thresholds come from the training span itself, window by window: the (1 - alpha) quantile of the same two
    statistics for every *contiguous* training window against the rest of the training latents. Regimes
    persist, so a live window is usually concentrated in one regime; an i.i.d. permutation null would flag
    that as drift, the contiguous-window null does not (it has the same persistence). Returns arrays keyed
    end (index of the last row), centroid_dist, centroid_threshold, mmd2, mmd_threshold, drift (bool: either
    statistic above its threshold).

    Cost: O((N + M) * N * D) time in row blocks and O(BLOCK_ROWS * N + (N + M) * window) memory, so a model
    of 15k+ blocks is checked in seconds; no (N, N) matrix is ever held.
    """
    ref, z = _unit_pair(ref, z)
    _check_timeline_args(ref.shape[0], z.shape[0], window, step, alpha)
    ref, z = ref.astype(np.float64), z.astype(np.float64)
    bw = median_bandwidth(ref)
    mmd_thr, cd_thr, k_rr_mean = _contiguous_thresholds(ref, bw, window, alpha)
    ends = np.arange(window - 1, z.shape[0], step)
    if ends[-1] != z.shape[0] - 1:
        ends = np.append(ends, z.shape[0] - 1)
    cd, stat = _trailing_window_stats(ref, z, bw, k_rr_mean, ends, window)
    return {"end": ends, "centroid_dist": cd, "centroid_threshold": np.full(ends.size, cd_thr), "mmd2": stat,
            "mmd_threshold": np.full(ends.size, mmd_thr), "drift": (stat > mmd_thr) | (cd > cd_thr)}


def _check_timeline_args(n_ref: int, n_new: int, window: int, step: int, alpha: float) -> None:
    if window < 2:
        raise ConfigError(f"drift window must be >= 2 rows, got {window}")
    if n_new < window:
        raise DataError(f"need at least window={window} latents for a drift timeline, got {n_new}")
    if n_ref < window + 2:
        raise DataError(f"need at least window + 2 = {window + 2} training latents, got {n_ref}")
    if step < 1:
        raise ConfigError(f"step must be >= 1, got {step}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")


# Rows of the kernel computed at once: 1,024 x N float64 is 128 MB at N = 15,625.
BLOCK_ROWS = 1024


def _kernel_row_sums(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    """sum_j k(a_i, b_j) for every row of a (n_a,), computed BLOCK_ROWS rows of a at a time."""
    return np.concatenate([_rbf(a[i: i + BLOCK_ROWS], b, bandwidth).sum(axis=1)
                           for i in range(0, a.shape[0], BLOCK_ROWS)])


def _window_self_sums(x: np.ndarray, bandwidth: float, window: int) -> np.ndarray:
    """sum_{i, j in [s, s + w)} k(x_i, x_j) for every contiguous window start s: (n - w + 1,).

    From the kernel's first w diagonals (k(x_i, x_{i+d}), d < w), each summed over the window by a cumulative
    sum: O(n * w * D)."""
    n = x.shape[0]
    starts = np.arange(n - window + 1)
    total = np.full(starts.size, float(window))                      # k(x, x) = 1 on the diagonal
    for d in range(1, window):
        diag = np.exp(-((x[:-d] - x[d:]) ** 2).sum(1) / (2.0 * bandwidth ** 2))   # (n - d,)
        c = np.concatenate([[0.0], np.cumsum(diag)])
        total += 2.0 * (c[starts + window - d] - c[starts])           # pairs (i, i + d) inside [s, s + w)
    return total


def _contiguous_thresholds(ref: np.ndarray, bandwidth: float, window: int,
                           alpha: float) -> tuple[float, float, float]:
    """(1 - alpha) quantiles of MMD^2 and centroid distance of every contiguous training window [s, s+w) against
    the other N - w training latents, and the mean training kernel value (for the live windows' MMD^2).

    With r = K 1 (row sums) and T = 1' K 1, a window W's MMD^2 against the rest R is
    S_WW / w^2 - 2 S_WR / (w (N - w)) + S_RR / (N - w)^2, where S_WR = sum_W r - S_WW and
    S_RR = T - 2 sum_W r + S_WW: every window in O(N) once r is known."""
    n, w = ref.shape[0], window
    r = _kernel_row_sums(ref, ref, bandwidth)
    t = float(r.sum())
    c = np.concatenate([[0.0], np.cumsum(r)])
    s_wall = c[w:] - c[:-w]                                           # sum of r over each window
    s_ww = _window_self_sums(ref, bandwidth, w)
    null_mmd = s_ww / w ** 2 - 2 * (s_wall - s_ww) / (w * (n - w)) + (t - 2 * s_wall + s_ww) / (n - w) ** 2
    cz = np.concatenate([np.zeros((1, ref.shape[1])), np.cumsum(ref, axis=0)])
    win_sum = cz[w:] - cz[:-w]                                        # (N - w + 1, D)
    rest_mean = (cz[-1] - win_sum) / (n - w)
    null_cd = np.linalg.norm(win_sum / w - rest_mean, axis=1)
    return float(np.quantile(null_mmd, 1 - alpha)), float(np.quantile(null_cd, 1 - alpha)), t / n ** 2


def _trailing_window_stats(ref: np.ndarray, z: np.ndarray, bandwidth: float, k_rr_mean: float,
                           ends: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroid distance and MMD^2 against ref of the ``window`` rows of z ending at each of ``ends``: (E,), (E,).

    k_rr_mean is the mean kernel value over the training latents; each window's cross term comes from the
    row sums of k(z, ref) and its own term from the kernel's first diagonals, so no matrix beyond
    (BLOCK_ROWS, N) is held."""
    n, w = ref.shape[0], window
    r_zr = _kernel_row_sums(z, ref, bandwidth)                        # (M,)
    cr = np.concatenate([[0.0], np.cumsum(r_zr)])
    s_zz = _window_self_sums(z, bandwidth, w)                         # indexed by window start
    starts = ends - w + 1
    cross = (cr[ends + 1] - cr[starts]) / (w * n)
    stat = s_zz[starts] / w ** 2 + k_rr_mean - 2 * cross
    cz = np.concatenate([np.zeros((1, z.shape[1])), np.cumsum(z, axis=0)])
    cd = np.linalg.norm((cz[ends + 1] - cz[starts]) / w - ref.mean(axis=0), axis=1)
    return cd, stat


def drift_verdict(drift_flags: np.ndarray, recent: int = 5, low_confidence_alert: bool = False) -> dict:
    """'stable' / 'drifting' / 'drifted' from the most recent ``recent`` drift flags (and the confidence rule).

    drifted: at least ``DRIFT_PERSIST_SHARE`` of the recent windows are flagged, or the low-confidence
    re-fit alert is on; drifting: any recent flag; stable: none. Returns verdict, recent_share, action and
    reason (which of the two rules fired, in words).
    """
    f = np.asarray(drift_flags, dtype=bool).reshape(-1)
    tail = f[-recent:] if f.size else f
    share = float(tail.mean()) if tail.size else 0.0
    reasons = []
    if share > 0:
        reasons.append(f"{share:.0%} of the last {tail.size} window(s) are off the training manifold")
    if low_confidence_alert:
        reasons.append("regime confidence stayed below the re-fit threshold")
    if share >= DRIFT_PERSIST_SHARE or low_confidence_alert:
        verdict = "drifted"
    elif share > 0:
        verdict = "drifting"
    else:
        verdict = "stable"
    return {"verdict": verdict, "recent_share": share, "action": DRIFT_ACTIONS[verdict],
            "reason": "; ".join(reasons) or "no recent window is off the training manifold"}
