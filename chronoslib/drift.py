"""Drift of live latents away from the training manifold, and the low-confidence re-fit alert.

Owns ``centroid_distance``, the RBF-kernel MMD^2 (``mmd2``, the permutation test ``mmd_test``, the median-heuristic
``median_bandwidth``), ``drift_timeline`` (rolling centroid distance and MMD^2 with two levels of thresholds from
contiguous training windows, each calibrated so the training span exceeds it at a stated rate), ``drift_verdict``
(stable / drifting / drifted, what to do, and how often the rule fires on data like the training span),
``neighbour_age`` and ``low_confidence_alert`` (the deployment rule: re-fit when regime_confidence stays low).
Latent matrices are validated by ``numeric_checks.unit_latents``. Arrays in, floats / dicts / arrays out; knows
nothing about Streamlit, plotting or engines.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DataError
from .numeric_checks import unit_latents

# Without the timeline's "drifted" level (older callers), drift "persists" when at least this share of the most
# recent windows is flagged. Trailing windows overlap, so one stationary excursion flags several in a row: on a
# 13,333-block model's stationary held-out span that rule said "drifted" at 4.6 % of end points.
DRIFT_PERSIST_SHARE = 0.5
# The "drifted" level: the share of contiguous training windows beyond it (either statistic), at most alpha / 2.
# Measured on that span's held-out data it fired at 0.24 % of end points and caught a clear break as soon as the
# share rule did (7 blocks at window 8).
DRIFTED_FALSE_ALARM = 0.005
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

    Thresholds come from the training span itself: the same two statistics for every *contiguous* training
    window against the rest of the training latents. Regimes persist, so a live window is usually concentrated
    in one regime; an i.i.d. permutation null would flag that as drift, the contiguous-window null does not (it
    has the same persistence). Each level is a pair of per-statistic quantiles at one common level, chosen so
    that the share of training windows over *either* threshold is the target (two tests at alpha each would flag
    up to 2 alpha): ``drift`` at alpha, ``drifted`` at min(DRIFTED_FALSE_ALARM, alpha / 2).

    Returns (E,) arrays keyed end (index of the last row), centroid_dist, centroid_threshold, mmd2,
    mmd_threshold, drift (bool: either statistic above its alpha-level threshold), centroid_threshold_drifted,
    mmd_threshold_drifted, drifted (bool: either above the drifted level), null_drift_rate and
    null_drifted_rate (constant: the share of the training windows over each level; the drifted one is at least
    1 / (training windows + 1), the finest rate that many windows can state).

    Cost: O((N + M) * N * D) time in row blocks and O(BLOCK_ROWS * N + (N + M) * window) memory, so a model
    of 15k+ blocks is checked in seconds; no (N, N) matrix is ever held.
    """
    ref, z = _unit_pair(ref, z)
    _check_timeline_args(ref.shape[0], z.shape[0], window, step, alpha)
    ref, z = ref.astype(np.float64), z.astype(np.float64)
    bw = median_bandwidth(ref)
    null_mmd, null_cd, k_rr_mean = _contiguous_null(ref, bw, window)
    levels = {}
    for name, rate in (("drift", alpha), ("drifted", min(DRIFTED_FALSE_ALARM, alpha / 2))):
        level = joint_level(null_mmd, null_cd, rate)
        levels[name] = (float(np.quantile(null_mmd, 1 - level)), float(np.quantile(null_cd, 1 - level)))
    ends = np.arange(window - 1, z.shape[0], step)
    if ends[-1] != z.shape[0] - 1:
        ends = np.append(ends, z.shape[0] - 1)
    cd, stat = _trailing_window_stats(ref, z, bw, k_rr_mean, ends, window)
    out = {"end": ends, "centroid_dist": cd, "mmd2": stat}
    for name, (mmd_thr, cd_thr) in levels.items():
        sfx = "" if name == "drift" else "_drifted"
        null_rate = float(np.mean((null_mmd > mmd_thr) | (null_cd > cd_thr)))
        if name == "drifted":
            null_rate = max(null_rate, 1.0 / (null_mmd.size + 1))
        out.update({f"centroid_threshold{sfx}": np.full(ends.size, cd_thr),
                    f"mmd_threshold{sfx}": np.full(ends.size, mmd_thr),
                    name: (stat > mmd_thr) | (cd > cd_thr), f"null_{name}_rate": np.full(ends.size, null_rate)})
    return out


def joint_level(a: np.ndarray, b: np.ndarray, rate: float) -> float:
    """The largest level q <= rate such that at most ``rate`` of the null values exceed the (1 - q) quantile of a
    *or* that of b (a, b: (n,) two statistics of the same n null windows).

    q = rate when a and b rank the windows alike, about rate / 2 when they disagree entirely; bisection, since
    the share over either threshold only grows with q."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def share(q: float) -> float:
        return float(np.mean((a > np.quantile(a, 1 - q)) | (b > np.quantile(b, 1 - q))))

    if share(rate) <= rate:
        return float(rate)
    lo, hi = 0.0, float(rate)
    for _ in range(40):                     # 2^-40 of rate: far finer than one window of any null
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) <= rate else (lo, mid)
    return lo


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


def _contiguous_null(ref: np.ndarray, bandwidth: float, window: int) -> tuple[np.ndarray, np.ndarray, float]:
    """MMD^2 and centroid distance of every contiguous training window [s, s+w) against the other N - w training
    latents ((N - w + 1,) each), and the mean training kernel value (for the live windows' MMD^2).

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
    return null_mmd, null_cd, t / n ** 2


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


def drift_verdict(drift_flags: np.ndarray, recent: int = 5, low_confidence_alert: bool = False, *,
                  drifted_flags: np.ndarray | None = None,
                  false_alarm: tuple[float, float] | None = None) -> dict:
    """'stable' / 'drifting' / 'drifted' from the most recent drift flags (and the confidence rule).

    With ``drifted_flags`` (drift_timeline's ``drifted``): drifted when the latest window is over the drifted
    level or the low-confidence re-fit alert is on; drifting when any of the last ``recent`` windows is over the
    alpha level. ``false_alarm`` (drift_timeline's null_drift_rate and null_drifted_rate) puts into the reason
    how often each level is crossed on the training span. Without ``drifted_flags``: drifted when at least
    ``DRIFT_PERSIST_SHARE`` of the last ``recent`` flags are set (overlapping windows make that rule fire on
    stationary data far more often than alpha). Returns verdict, recent_share, action and reason (which rule
    fired, in words).
    """
    f = np.asarray(drift_flags, dtype=bool).reshape(-1)
    if recent < 1:
        raise ConfigError(f"recent must be >= 1 window, got {recent}")
    tail = f[-recent:]
    share = float(tail.mean()) if tail.size else 0.0
    strict = None if drifted_flags is None else np.asarray(drifted_flags, dtype=bool).reshape(-1)
    if strict is not None and strict.size != f.size:
        raise DataError(f"drifted_flags has {strict.size} windows but drift_flags has {f.size}")
    persist = bool(strict[-1]) if strict is not None and strict.size else share >= DRIFT_PERSIST_SHARE

    def rated(text: str, level: int) -> str:
        return text if false_alarm is None else \
            f"{text} ({float(false_alarm[level]):.1%} of the training span's windows go that far)"

    reasons = []
    if strict is not None and persist:
        reasons.append(rated("the latest window is past the drifted level", 1))
    elif share > 0:
        what = "the latest window is" if tail.size == 1 else f"{share:.0%} of the last {tail.size} window(s) are"
        reasons.append(rated(f"{what} off the training manifold", 0))
    if low_confidence_alert:
        reasons.append("regime confidence stayed below the re-fit threshold")
    if persist or low_confidence_alert:
        verdict = "drifted"
    elif share > 0:
        verdict = "drifting"
    else:
        verdict = "stable"
    return {"verdict": verdict, "recent_share": share, "action": DRIFT_ACTIONS[verdict],
            "reason": "; ".join(reasons) or "no recent window is off the training manifold"}
