"""The bench's ordering section: every pseudo-timeline method measured against the best achievable.

* ``lkh_open_path``: a near-optimal open path from block 0 by LKH-3 (the ``elkai`` package, a dev requirement;
  None when it is not installed). The start is fixed at block 0 by a dummy city at distance 0 from block 0 and
  a large constant C from every other block: every tour then enters the dummy from block 0 and leaves it to the
  path's free end, so tour cost = path cost + C and LKH-3 minimises the open path from block 0.
* ``encoded_sets``: labelled synthetic series (4 regimes differing in scale, autocorrelation and cross-feature
  correlation) encoded by an encoder trained on them: the purity / ARI / LKH-3 numbers at 256 - 1k blocks.
* ``bench_orderings``: per method and set: path cost against LKH-3 and the MST lower bound, adjacency purity,
  regime switches and mean same-regime run (ground truth), time; then time at 1k - 1M blocks of
  ``synthetic.regime_latents``.

Knows nothing about how the orderings work; ``timeline.build_pseudo_timeline`` is the only entry it calls.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

ORDERINGS = ("greedy", "refined", "regime")


def lkh_open_path(z: np.ndarray, runs: int = 1, scale: float = 1e5) -> np.ndarray | None:
    """LKH-3 open path from block 0 on squared L2 distances of z (N, D) (integers: distance * ``scale``), or
    None when ``elkai`` is not installed. O(N^2) memory: meant for N <= 2k."""
    try:
        import elkai
    except ImportError:
        return None
    zf = np.asarray(z, dtype=np.float64)
    n = zf.shape[0]
    sq = (zf * zf).sum(1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2 * zf @ zf.T, 0.0)
    m = np.rint(d * scale).astype(np.int64)
    big = int(m.max()) * 4 + 1                     # C: more than any one edge, so the dummy always meets block 0
    full = np.full((n + 1, n + 1), big, dtype=np.int64)
    full[:n, :n] = m
    full[n, 0] = full[0, n] = 0
    np.fill_diagonal(full, 0)
    tour = elkai.DistanceMatrix(full.tolist()).solve_tsp(runs=runs)[:-1]   # a cycle through all n + 1 cities
    k = tour.index(n)
    cyc = tour[k + 1:] + tour[:k]                   # the cycle opened at the dummy
    if cyc[0] != 0:
        cyc = cyc[::-1]
    return np.asarray(cyc, dtype=np.int64) if cyc[0] == 0 else None


def encoded_sets(n_blocks: int, seeds: list[int], block_len: int = 32, epochs: int = 30) -> list[dict[str, Any]]:
    """Per seed: a 4-regime ``make_regime_series`` (own mixing per regime, mean regime duration 10 blocks) of
    ``n_blocks`` blocks, the latents of
    an encoder trained on it, the ground-truth block labels and KMeans' agreement with them (automatic K)."""
    import torch

    from .config import DefragConfig
    from .engine import ChronosDefragEngine
    from .metrics import agreement
    from .regimes import cluster_regimes
    from .synthetic import block_labels, make_regime_series

    out = []
    for seed in seeds:
        s = make_regime_series(block_len * n_blocks, n_features=6, n_regimes=4, mean_duration=10 * block_len,
                               seed=seed, mix_per_regime=True)
        cfg = DefragConfig()
        cfg.encoder.block_len, cfg.encoder.input_dim, cfg.seed = block_len, 6, seed
        cfg.optim.encoder_epochs, cfg.optim.predictor_epochs = epochs, 1
        torch.manual_seed(seed)
        eng = ChronosDefragEngine(cfg).fit(s.data)
        z = np.asarray(eng.block_latents, dtype=np.float32)
        truth = block_labels(s.labels, block_len)[0][: z.shape[0]]
        reg = cluster_regimes(z, seed=seed)
        out.append({"seed": seed, "n": int(z.shape[0]), "z": z, "truth": truth, "k_found": reg.k,
                    "ari": agreement(reg.labels, truth)["ari"]})
    return out


def _timed(z: np.ndarray, method: str) -> tuple[np.ndarray, float]:
    from .timeline import build_pseudo_timeline

    t = time.perf_counter()
    order = build_pseudo_timeline(z, method=method)
    return order, time.perf_counter() - t


def _labelled_row(z: np.ndarray, truth: np.ndarray, order: np.ndarray, secs: float, lkh: float | None,
                  bound: float) -> dict[str, Any]:
    from .metrics import ordering_scores

    q = ordering_scores(z, order, truth, lower_bound=bound)
    return {"s": secs, "cost": q["cost"], "cost_over_lkh": None if lkh is None else q["cost"] / lkh,
            "cost_over_mst": q["cost"] / bound, "purity": q["purity"], "switches": q["switches"],
            "mean_run": q["mean_run"], "valid": bool(order[0] == 0 and np.array_equal(np.sort(order),
                                                                                   np.arange(len(order))))}


def bench_labelled(sets: list[dict[str, Any]], lkh_max: int = 2048) -> list[dict[str, Any]]:
    """Every method on every encoded set, with LKH-3 (when installed and N <= lkh_max) and the MST bound."""
    from .metrics import mst_lower_bound, ordering_scores

    rows = []
    for s in sets:
        z, truth, n = s["z"], s["truth"], s["n"]
        bound = mst_lower_bound(z)
        row: dict[str, Any] = {"seed": s["seed"], "n": n, "k_true": int(len(np.unique(truth))),
                               "k_found": s["k_found"], "ari": s["ari"], "mst_bound": bound,
                               "purity_ceiling": 1 - (len(np.unique(truth)) - 1) / (n - 1)}
        lkh = None
        if n <= lkh_max:
            t = time.perf_counter()
            lo = lkh_open_path(z)
            if lo is not None:
                q = ordering_scores(z, lo, truth, lower_bound=bound)
                row["lkh"] = {"s": time.perf_counter() - t, "cost": q["cost"], "cost_over_mst": q["cost"] / bound,
                              "purity": q["purity"], "switches": q["switches"], "mean_run": q["mean_run"]}
                lkh = q["cost"]
            else:
                row["lkh"] = "skipped: elkai not installed"
        for m in ORDERINGS:
            order, secs = _timed(z, m)
            row[m] = _labelled_row(z, truth, order, secs, lkh, bound)
        rows.append(row)
    return rows


def bench_scale(sizes: list[int]) -> dict[str, Any]:
    """Time of each method on ``regime_latents(N, seed=1)``, path cost relative to greedy, switches between the
    generator's regimes, and the MST bound (exact up to 2k blocks, on the K-NN graph above)."""
    import os

    from .metrics import mst_lower_bound, ordering_scores
    from .synthetic import regime_latents

    out: dict[str, Any] = {}
    for n in sizes:
        z, truth = regime_latents(n, seed=1, return_labels=True)
        row: dict[str, Any] = {"load_avg_1min_before": os.getloadavg()[0]}
        bound = mst_lower_bound(z)
        row["mst_bound"] = bound
        base = None
        for m in ORDERINGS:
            order, secs = _timed(z, m)
            q = ordering_scores(z, order, truth, lower_bound=bound)
            base = q["cost"] if base is None else base
            row[m] = {"s": secs, "cost_over_greedy": q["cost"] / base, "cost_over_mst": q["cost"] / bound,
                      "switches": q["switches"], "purity": q["purity"],
                      "valid": bool(order[0] == 0 and np.array_equal(np.sort(order), np.arange(n)))}
        out[str(n)] = row
        del z
    return out


def bench_orderings(quick: bool = False, max_n: int | None = None) -> dict[str, Any]:
    """The section run by ``bench.run_all``: labelled encoded sets, then scale. Quick: 256 blocks x 1 seed,
    scale at 1k / 10k; full: 256 blocks x 5 seeds and 1,024 x 3, scale at 1k / 10k / 100k / 1M (capped by
    max_n)."""
    sizes = [1000, 10_000] if quick else [1000, 10_000, 100_000, 1_000_000]
    sets = encoded_sets(256, [0], epochs=15) if quick else (
        encoded_sets(256, [0, 1, 2, 3, 4]) + encoded_sets(1024, [0, 1, 2]))
    return {"data": "labelled: synthetic.make_regime_series(4 regimes, mix_per_regime=True) encoded by an encoder "
                    "trained on it (block_len 32); scale: synthetic.regime_latents(N, dim=32, seed=1)",
            "lkh": "LKH-3 via elkai, open path with its start fixed at block 0 (dummy city), runs=1",
            "labelled": bench_labelled(sets),
            "scale": bench_scale([n for n in sizes if max_n is None or n <= max_n])}


# ---------------------------------------------------------------------------------------------- report
TARGET_PURITY, TARGET_LKH, TARGET_100K_S, TARGET_1M_S, TARGET_ARI = 0.97, 1.06, 30.0, 300.0, 0.95


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def labelled_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per set size and method, over seeds: cost / LKH-3 (mean, worst), cost / MST bound, purity (mean, worst),
    switches, mean run, seconds; the seeds with ARI >= 0.95 first (where the targets apply), then all."""
    out = ["| Blocks | Seeds (ARI) | Method | Cost / LKH-3 (worst) | Cost / MST bound | Purity (worst) | Switches "
           "| Mean run | Time |", "|---|---|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in rows}):
        for subset, name in ((lambda r: r["ari"] >= TARGET_ARI, "ARI ≥ 0.95"), (lambda r: True, "all")):
            rs = [r for r in rows if r["n"] == n and subset(r)]
            if not rs:
                continue
            seeds = f"{name}: " + ", ".join(f"{r['seed']} ({r['ari']:.2f})" for r in rs)
            ceiling = _mean([r["purity_ceiling"] for r in rs])
            for m in ("lkh",) + ORDERINGS:
                cells = [r[m] for r in rs if isinstance(r.get(m), dict)]
                if not cells:
                    out.append(f"| {n:,} | {seeds} | LKH-3 | {rs[0].get(m, 'skipped')} | | | | | |")
                    continue
                lk = [c.get("cost_over_lkh", 1.0) for c in cells if c.get("cost_over_lkh", 1.0) is not None]
                lk_s = f"{_mean(lk):.3f} ({max(lk):.3f})" if lk else "-"
                pur = [c["purity"] for c in cells]
                out.append(f"| {n:,} | {seeds} | {'LKH-3' if m == 'lkh' else m} | {lk_s} | "
                           f"{_mean([c['cost_over_mst'] for c in cells]):.3f} | {_mean(pur):.3f} ({min(pur):.3f}; "
                           f"ceiling {ceiling:.3f}) | {_mean([c['switches'] for c in cells]):.1f} | "
                           f"{_mean([c['mean_run'] for c in cells]):.1f} | {_mean([c['s'] for c in cells]):.2f} s |")
    return out


def scale_table(scale: dict[str, Any]) -> list[str]:
    out = ["| Blocks | Method | Time (wall) | Cost / greedy | Cost / MST bound | Switches (generator's regimes) "
           "| Load before |", "|---|---|---|---|---|---|---|"]
    for n, row in scale.items():
        for m in ORDERINGS:
            c = row[m]
            out.append(f"| {int(n):,} | {m} | {c['s']:.2f} s | {c['cost_over_greedy']:.3f} | "
                       f"{c['cost_over_mst']:.3f} | {c['switches']:.0f} | {row['load_avg_1min_before']:.1f} |")
    return out


def targets(res: dict[str, Any]) -> list[str]:
    """Each target per method: met / missed, from the labelled sets with ARI >= 0.95 and the scale runs."""
    good = [r for r in res["labelled"] if r["ari"] >= TARGET_ARI]
    out = ["| Target | " + " | ".join(ORDERINGS) + " |", "|---|" + "---|" * len(ORDERINGS)]

    def cell(vals: list[float], ok: bool) -> str:
        return "-" if not vals else f"{max(vals) if ok else min(vals):.3f}"

    pur = [[r[m]["purity"] for r in good] for m in ORDERINGS]
    lkh = [[r[m]["cost_over_lkh"] for r in good if r[m]["cost_over_lkh"] is not None] for m in ORDERINGS]
    out.append("| worst purity ≥ 0.97 (ARI ≥ 0.95) | " + " | ".join(
        f"{cell(p, False)} {'yes' if p and min(p) >= TARGET_PURITY else '**no**' if p else ''}" for p in pur) + " |")
    out.append("| worst cost ≤ 1.06x LKH-3 (ARI ≥ 0.95) | " + " | ".join(
        f"{cell(c, True)} {'yes' if c and max(c) <= TARGET_LKH else '**no**' if c else ''}" for c in lkh) + " |")
    for n, goal in (("100000", TARGET_100K_S), ("1000000", TARGET_1M_S)):
        if n in res["scale"]:
            row = res["scale"][n]
            out.append(f"| {int(n):,} blocks ≤ {goal:.0f} s | " + " | ".join(
                f"{row[m]['s']:.1f} s {'yes' if row[m]['s'] <= goal else '**no**'}" for m in ORDERINGS) + " |")
    return out


def to_markdown(res: dict[str, Any]) -> str:
    """The defragmentation tables (docs/defragmentation.md) from the section's JSON."""
    return "\n".join(["Labelled sets (" + res["data"] + "; " + res["lkh"] + "):", "", *labelled_table(res["labelled"]),
                      "", "Scale:", "", *scale_table(res["scale"]), "", "Targets:", "", *targets(res)])
