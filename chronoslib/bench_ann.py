"""Benchmark section ``ann``: nearest neighbours through faiss (``cells.IVFIndex``) against the exact answer, in
one process: time and recall of the approximate chain's 16-NN lists at 100k blocks and of top-8 queries against a
1M-entry index, over a range of nprobe. Latents are ``synthetic.regime_latents`` (D = 32), shaped like a trained
encoder's. The hand-written cell index faiss replaced was measured side by side before its deletion
(benchmarks/ann_side_by_side.json). Knows nothing about the registry's SPD weights (``bench_registry`` measures
routing through the index) or the app.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import torch

from .cells import IVFIndex, ivf_knn_lists
from .synthetic import regime_latents


def _recall(got: np.ndarray, ref: np.ndarray) -> float:
    """Mean |got_i & ref_i| / k over rows ((M, k) each; -1 pads never count)."""
    k = ref.shape[1]
    return float(np.mean([len(set(g[g >= 0].tolist()) & set(r.tolist())) / k for g, r in zip(got, ref)]))


def _exact_top(q: torch.Tensor, z: torch.Tensor, k: int, skip_self: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k by cosine of unit rows q (M, D) among z (N, D), (M, k); ``skip_self`` (M,): q's own row in z."""
    s = q @ z.T                                                          # (M, N)
    if skip_self is not None:
        s[torch.arange(q.shape[0]), torch.from_numpy(skip_self)] = -math.inf
    return torch.topk(s, k, dim=1).indices.numpy()


def knn_lists_section(n: int, k: int = 16, nprobes: tuple[int, ...] = (4, 8, 16), sample: int = 2000) -> dict[str, Any]:
    """The approximate chain's K-NN lists (4 sqrt(N) cells, as ``timeline``'s) per nprobe: wall seconds (k-means
    + adds + N searches) and recall@k on ``sample`` rows against their exact lists."""
    z = torch.from_numpy(regime_latents(n, dim=32, seed=0))
    rows = np.linspace(0, n - 1, min(n, sample)).round().astype(np.int64)
    ref = _exact_top(z[torch.from_numpy(rows)], z, k, rows)
    cells = max(8, int(round(4 * math.sqrt(n))))
    out: dict[str, Any] = {"n": n, "k": k, "cells": cells, "recall_rows": len(rows), "by_nprobe": {}}
    for p in nprobes:
        t0 = time.perf_counter()
        lists, _ = ivf_knn_lists(z, k, cells, p)
        out["by_nprobe"][str(p)] = {"s": time.perf_counter() - t0, "recall_at_k": _recall(lists[rows], ref),
                                    "load_avg_1min": os.getloadavg()[0]}
    return out


def top_k_section(n: int, k: int = 8, nprobes: tuple[int, ...] = (16, 32, 64), queries: int = 200) -> dict[str, Any]:
    """One query at a time (the live path) against n entries in sqrt(N) cells (the registry's default): build
    seconds, per-query milliseconds and recall@k of faiss per nprobe, and the exact scan's milliseconds."""
    z = torch.from_numpy(regime_latents(n + queries, dim=32, seed=5))
    zr, zq = z[:n].contiguous(), z[n:].contiguous()                     # queries: later rows of the same process
    del z
    t0 = time.perf_counter()
    ref = np.concatenate([_exact_top(zq[i:i + 1], zr, k) for i in range(queries)])
    exact_ms = (time.perf_counter() - t0) / queries * 1e3
    t0 = time.perf_counter()
    ix = IVFIndex.train(zr, max(8, int(round(math.sqrt(n)))))
    out: dict[str, Any] = {"entries": n, "k": k, "queries": queries, "cells": ix.n_cells,
                           "build_s": time.perf_counter() - t0, "exact_ms": exact_ms, "by_nprobe": {}}
    for p in nprobes:
        t0 = time.perf_counter()
        got = np.concatenate([ix.search(zq[i:i + 1], k, p)[1].numpy() for i in range(queries)])
        out["by_nprobe"][str(p)] = {"query_ms": (time.perf_counter() - t0) / queries * 1e3,
                                    "recall_at_k": _recall(got, ref), "load_avg_1min": os.getloadavg()[0]}
    return out


def bench_ann(quick: bool = False) -> dict[str, Any]:
    """Both parts at full size (16-NN lists at 100k, top-8 at 1M), or at 20k / 100k with ``quick``."""
    return {"knn_lists": knn_lists_section(20_000 if quick else 100_000),
            "top_k": top_k_section(100_000 if quick else 1_000_000),
            "hand_written_reference": "benchmarks/ann_side_by_side.json"}
