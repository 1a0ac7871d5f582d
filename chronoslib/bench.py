"""Benchmarks: ``python -m chronoslib bench [--quick] [--markdown] [--out FILE] [--from FILE]``.

Prints one JSON document with, for every stage, medians, p99 where there is a distribution, extra peak memory,
and for the pseudo-timeline and training the ratio against the plain implementation (``timeline.
greedy_chain_allpairs``, ``baselines.plain_encoder_step``) run in the same process, so the ratios survive a noisy
machine. ``--markdown`` renders the README's performance table from that JSON (``--from`` re-renders a saved
run without measuring). Single-threaded torch, like every entry point. Knows nothing about the app. How each
number is measured (wall / CPU seconds, extra peak memory) is ``bench_measure``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

from .bench_measure import clean, cpu_live, peak_rss_mb, repeat, spec_config
from .bench_report import TARGETS, target_table, to_markdown
from .latency import SPEC_FIGURES, measure_live_latency
from .live_path import cpu_model, cpu_vendor


# ---------------------------------------------------------------------------------------------- sections
def bench_fit_spec(runs: int) -> tuple[dict[str, Any], Any, np.ndarray]:
    """fit() on 48 blocks of 64 x 6 synthetic regime data; returns (section, engine, holdout windows)."""
    from .engine import ChronosDefragEngine
    from .synthetic import make_regime_series

    cfg = spec_config()
    s = make_regime_series(64 * 48 + 64 * 64, n_features=6, seed=0)
    train = s.data[: 64 * 48]
    r = repeat(lambda: ChronosDefragEngine(spec_config()).fit(train), runs)
    eng = r["result"]
    live = s.data[64 * 48:].reshape(-1, cfg.encoder.block_len, 6)      # (64, 64, 6) windows after training
    sec = clean(r)
    sec.update(n_blocks=48, encoder_epochs=30, predictor_epochs=20, batch_size=32,
               spec_s=SPEC_FIGURES["encoder_fit_30_epochs_48_blocks_s"], target_s=TARGETS["fit_spec_s"])
    return sec, eng, live


def bench_training(n_blocks: int, plain_batches: int) -> dict[str, Any]:
    """One encoder epoch on ``n_blocks`` (fast loop) vs the plain per-sample step on the same batch size."""
    from .baselines import plain_encoder_step
    from .encoder import RegimeEncoder
    from .synthetic import make_regime_series
    from .training import anchor_batches, train_encoder

    cfg = spec_config()
    cfg.optim.encoder_epochs = 1
    x = make_regime_series(64 * n_blocks, n_features=6, seed=3).data
    blocks = torch.from_numpy(((x - x.mean(0)) / x.std(0)).reshape(n_blocks, 64, 6).astype(np.float32))
    torch.manual_seed(0)
    enc = RegimeEncoder(cfg.encoder)
    hist: list[dict] = []
    fast = repeat(lambda: train_encoder(enc, blocks, cfg, torch.Generator().manual_seed(0), hist), 1)
    n_batches = len(anchor_batches(n_blocks, cfg.optim.batch_size, torch.Generator().manual_seed(0)))
    enc2 = RegimeEncoder(cfg.encoder).train()
    opt = torch.optim.AdamW(enc2.parameters(), lr=cfg.optim.lr)
    gen = torch.Generator().manual_seed(0)
    groups = anchor_batches(n_blocks, cfg.optim.batch_size, gen)[:plain_batches]
    plain = repeat(lambda: [plain_encoder_step(enc2, opt, blocks, a, cfg, gen) for a in groups], 1)
    # CPU seconds: both loops are single-threaded, so this is their cost independent of machine load.
    fast_batch_ms = fast["cpu_s"] / n_batches * 1e3
    plain_batch_ms = plain["cpu_s"] / len(groups) * 1e3
    return {"n_blocks": n_blocks, "batch_size": cfg.optim.batch_size, "epoch_cpu_s": fast["cpu_s"],
            "epoch_s": fast["median_s"], "blocks_per_s": n_blocks / fast["cpu_s"], "batch_ms": fast_batch_ms,
            "extra_mb": fast["extra_mb"],
            "plain_batch_ms": plain_batch_ms, "plain_batches_timed": len(groups),
            "ratio_plain_over_fast": plain_batch_ms / fast_batch_ms}


def bench_timeline(exact_sizes: list[int], allpairs_max: int, approx_quality: list[int], approx_only: list[int],
                   runs: int) -> dict[str, Any]:
    """Exact chain (and all-pairs reference where it fits) per N; approximate chain quality and scale."""
    from .synthetic import regime_latents
    from .timeline import (
        build_pseudo_timeline,
        greedy_chain_allpairs,
        greedy_chain_approx,
        greedy_chain_exact,
        path_cost,
    )

    out: dict[str, Any] = {"data": "synthetic.regime_latents(N, dim=32, seed=1): synthetic regime-structured latents",
                           "exact": {}, "approx": {}}
    for n in exact_sizes:
        z = regime_latents(n, seed=1)
        r = repeat(lambda z=z: build_pseudo_timeline(z, method="exact"), runs if n <= 10_000 else 1)
        row = clean(r)
        row["ms"] = r["median_s"] * 1e3
        if n <= allpairs_max:
            ref = repeat(lambda z=z: greedy_chain_allpairs(z), 1 if n > 2000 else runs)
            row.update(allpairs_s=ref["median_s"], allpairs_extra_mb=ref["extra_mb"],
                       ratio_allpairs_over_fast=ref["median_s"] / r["median_s"],
                       identical_to_allpairs=bool(np.array_equal(ref["result"], r["result"])))
        out["exact"][str(n)] = row
    for n in approx_quality:
        z = regime_latents(n, seed=1)
        ex = repeat(lambda z=z: greedy_chain_exact(z), 1)
        ap = repeat(lambda z=z: greedy_chain_approx(z), 1)
        pe, pa = path_cost(z, ex["result"]), path_cost(z, ap["result"])
        out["approx"][str(n)] = {"exact_s": ex["median_s"], "exact_cpu_s": ex["cpu_s"],
                                 "exact_extra_mb": ex["extra_mb"], "approx_s": ap["median_s"],
                                 "approx_cpu_s": ap["cpu_s"], "approx_extra_mb": ap["extra_mb"],
                                 "cost_ratio_approx_over_exact": pa / pe,
                                 "cost_ratio_chrono_over_exact": path_cost(z) / pe}
    for n in approx_only:
        z = regime_latents(n, seed=1)
        ap = repeat(lambda z=z: greedy_chain_approx(z), 1)
        ok = bool(np.array_equal(np.sort(ap["result"]), np.arange(n)))
        out["approx"][str(n)] = {"approx_s": ap["median_s"], "approx_cpu_s": ap["cpu_s"],
                                 "approx_extra_mb": ap["extra_mb"],
                                 "approx_extra_mb_sampled": ap["extra_mb_sampled"], "valid_permutation": ok,
                                 "latents_mb": z.nbytes / 2**20}
        del z
    return out


def bench_live(engine: Any, windows: np.ndarray, n_calls: int) -> dict[str, Any]:
    r = measure_live_latency(engine, windows, n_calls=n_calls, warmup=20)
    r.pop("samples_ms")
    # The same calls timed in this thread's CPU time: what a call costs when it has a core to itself
    # (wall-time percentiles above include waiting for a core on a shared machine).
    w = np.asarray(windows, dtype=np.float32)
    cpu = np.empty(n_calls)
    for i in range(n_calls):
        c0 = time.thread_time()
        engine.predict_live(w[i % len(w)])
        cpu[i] = (time.thread_time() - c0) * 1e3
    # p99 of each block of 500 consecutive calls, median over blocks: a burst of other jobs on the shared cores
    # (which also shows in thread CPU time: cache and memory-bandwidth contention, hypervisor steal) then moves
    # one block's p99 rather than the whole figure.
    blocks = [np.percentile(cpu[a:a + 500], 99) for a in range(0, n_calls - 499, 500)] or [np.percentile(cpu, 99)]
    r.update(cpu_p50_ms=float(np.percentile(cpu, 50)), cpu_p99_ms=float(np.percentile(cpu, 99)),
             cpu_p99_ms_block_median=float(np.median(blocks)), cpu_p99_blocks=len(blocks),
             cpu_qps=float(1e3 / cpu.mean()))
    r.update(registry_entries=len(engine.registry), spec_mean_ms=SPEC_FIGURES["predict_live_mean_ms"],
             spec_p99_ms=SPEC_FIGURES["predict_live_p99_ms"], spec_qps=SPEC_FIGURES["qps"])
    return r


def bench_batch(engine: Any, windows: np.ndarray, n: int, runs: int) -> dict[str, Any]:
    """predict_batch on n windows; checks the first rows against predict_live one by one."""
    rng = np.random.default_rng(0)
    w = windows[rng.integers(0, len(windows), n)] + 0.01 * rng.standard_normal((n,) + windows.shape[1:])
    w = w.astype(np.float32)
    live_before = float(np.median(cpu_live(engine, w, 200)))
    r = repeat(lambda: engine.predict_batch(w), runs)
    out = r["result"]
    # Both cores for this call only (restored after): wall time is what can improve; CPU time adds both threads.
    engine.predict_batch(w[:512], threads=2)                             # start the second thread's pool first
    two = repeat(lambda: engine.predict_batch(w, threads=2), runs)
    big = repeat(lambda: engine.predict_batch(w, chunk=8192), 1)         # one big chunk, to show why 256 is the default
    bf = repeat(lambda: engine.predict_batch(w, precision="bf16"), runs)  # opt-in bfloat16 encoder
    bf_out = bf["result"]
    live_after = float(np.median(cpu_live(engine, w, 200)))
    single = [engine.predict_live(w[i]) for i in range(8)]
    diff = max(abs(float(p.alpha_prediction) - float(out["alpha"][i])) for i, p in enumerate(single))
    same_nb = all(list(out["neighbour_indices"][i]) == p.neighbour_indices for i, p in enumerate(single))
    res = clean(r)
    res.update(windows=n, chunk=256, windows_per_s=n / r["cpu_s"], windows_per_s_wall=n / r["median_s"],
               two_threads={"windows_per_s_wall": n / two["median_s"], "windows_per_s_cpu": n / two["cpu_s"]},
               chunk_8192={"windows_per_s": n / big["cpu_s"], "windows_per_s_wall": n / big["median_s"]},
               bf16={"windows_per_s": n / bf["cpu_s"], "windows_per_s_wall": n / bf["median_s"],
                     "same_top1_as_fp32": float((bf_out["neighbour_indices"][:, 0]
                                                 == out["neighbour_indices"][:, 0]).mean()),
                     "max_abs_alpha_diff_vs_fp32": float(np.abs(bf_out["alpha"] - out["alpha"]).max()),
                     "cpu_bf16_supported": bool(torch.backends.mkldnn.is_available()
                                                and torch.ops.mkldnn._is_mkldnn_bf16_supported())},
               live_cpu_p50_ms_before=live_before, live_cpu_p50_ms_after=live_after,
               flops_per_window=_encoder_flops(engine),
               max_abs_alpha_diff_vs_live=diff,
               same_neighbours_as_live=same_nb)
    return res


def _encoder_flops(engine: Any) -> float:
    """Multiply-adds x 2 of one encoder pass per window (conv and linear layers), from a forward hook count."""
    flops = 0.0

    def hook(mod: torch.nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal flops
        if isinstance(mod, torch.nn.Conv1d):
            flops += 2.0 * out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0]
        elif isinstance(mod, torch.nn.Linear):
            flops += 2.0 * out.numel() * mod.in_features

    hs = [m.register_forward_hook(hook) for m in engine.encoder.modules()
          if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear))]
    try:
        with torch.inference_mode():
            engine.encoder(torch.zeros(1, engine.cfg.encoder.block_len, engine.cfg.encoder.input_dim))
    finally:
        for h in hs:
            h.remove()
    return flops


def bench_registry(engine: Any, windows: np.ndarray, size: int, n_calls: int,
                   recall_nprobe: tuple[int, ...] = (16, 32, 64, 128), n_recall: int = 200) -> dict[str, Any]:
    """predict_live against a registry of ``size`` entries (synthetic regime latents, the engine's trained
    weights): IVF index path (the default above ``index_threshold``) vs the exact scan, and recall@k of the index
    against the exact SPD top-k for queries drawn from the same latent process (held-out later rows)."""
    from .registry import INDEX_NPROBE, INDEX_THRESHOLD, Registry
    from .synthetic import regime_latents

    old = engine.registry
    d, k = old.dim, engine.cfg.routing.top_k
    z = torch.from_numpy(regime_latents(size + n_recall, dim=d, seed=5))
    zq = z[size:].clone()                                                # (Q, D) recall queries
    # Default index settings; the threshold is lowered to ``size`` so a --quick run (100k) exercises the index too.
    reg = Registry(size, d, old.state_dim, old.block_len, old.decay, index_threshold=min(INDEX_THRESHOLD, size))
    states = old.states[torch.arange(size) % len(old)]
    reg.add(z[:size], np.arange(size, dtype=np.float64) * old.block_len, torch.arange(size), states)
    del z, states
    tq = float(engine.train_end_tick)
    w = np.asarray(windows, dtype=np.float32)
    out: dict[str, Any] = {"registry_entries": size,
                           "registry_mb": (reg.latents.numel() * 4 + reg.states.numel() * 4) / 2**20}
    try:
        engine.registry = reg
        reg.decay_factors(tq)
        built = repeat(reg.ensure_index, 1)
        ix = reg.index
        out["index"] = {"active": reg.index_active, "threshold": reg.index_threshold, "cells": ix.n_cells,
                        "nprobe": reg.index_nprobe, "build_s": built["median_s"], "build_cpu_s": built["cpu_s"],
                        "build_extra_mb": built["extra_mb"], "cell_size_median": float(np.median(ix.sizes)),
                        "cell_size_max": int(ix.sizes.max())}
        r = measure_live_latency(engine, w, n_calls=n_calls, warmup=5)
        r.pop("samples_ms")
        cpu = cpu_live(engine, w, n_calls)
        out.update(r, cpu_p50_ms=float(np.percentile(cpu, 50)), cpu_p99_ms=float(np.percentile(cpu, 99)))
        # The exact scan on the same registry, for comparison (fewer calls: ~10-20 ms each).
        reg.configure_index(size + 1, reg.index_nprobe, reg.index_cells)
        ex = measure_live_latency(engine, w, n_calls=max(20, n_calls // 5), warmup=2)
        cpu = cpu_live(engine, w, max(20, n_calls // 5))
        out["exact"] = {"p50_ms": ex["p50_ms"], "p99_ms": ex["p99_ms"], "cpu_p50_ms": float(np.percentile(cpu, 50)),
                        "cpu_p99_ms": float(np.percentile(cpu, 99)), "stage_ms": ex["stage_ms"]}
        exact = reg.route(zq, tq, k)                                     # (Q, k) exact SPD top-k
        reg.configure_index(1, INDEX_NPROBE, reg.index_cells)
        rec = {}
        for npb in recall_nprobe:
            reg.index_nprobe = npb
            c0 = time.process_time()
            got = reg.route(zq, tq, k)
            ms = (time.process_time() - c0) / len(zq) * 1e3
            hit = [len(set(got.slots[i].tolist()) & set(exact.slots[i].tolist())) / k for i in range(len(zq))]
            rec[str(npb)] = {"recall_at_k": float(np.mean(hit)), "top1": float((got.slots[:, 0] == exact.slots[:, 0])
                                                                              .float().mean()), "query_cpu_ms": ms}
        out["recall"] = {"k": k, "queries": len(zq), "by_nprobe": rec,
                         "queries_from": "held-out later rows of the same synthetic.regime_latents process"}
        out["recall_at_default_nprobe"] = rec.get(str(INDEX_NPROBE), {}).get("recall_at_k")
    finally:
        engine.registry = old
    return out


def bench_gpu() -> dict[str, Any]:
    """Mixed-precision training throughput on CUDA when present; skipped (with the reason) on CPU."""
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    from .encoder import RegimeEncoder
    from .synthetic import make_regime_series
    from .training import train_encoder

    cfg = spec_config()
    cfg.device, cfg.optim.encoder_epochs, cfg.optim.batch_size = "cuda", 1, 512
    n = 10_000
    x = make_regime_series(64 * n, n_features=6, seed=3).data
    blocks = torch.from_numpy(((x - x.mean(0)) / x.std(0)).reshape(n, 64, 6)).cuda()
    enc = RegimeEncoder(cfg.encoder).cuda()
    train_encoder(enc, blocks, cfg, torch.Generator().manual_seed(0), [])     # warm-up (kernels, autotune)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    train_encoder(enc, blocks, cfg, torch.Generator().manual_seed(0), [])
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"device": torch.cuda.get_device_name(0), "n_blocks": n, "batch_size": 512, "epoch_s": dt,
            "blocks_per_s": n / dt, "amp": "bfloat16 autocast"}


# ---------------------------------------------------------------------------------------------- driver
def run_all(quick: bool = False, max_n: int | None = None, only: str = "", rows: int | None = None) -> dict[str, Any]:
    """Every section (``only="orderings"`` / ``"ann"`` / ``"data"`` / ``"live"`` / ``"at_size"`` (``rows`` rows):
    just that one)."""
    from .bench_ann import bench_ann
    from .bench_data import bench_data
    from .bench_orderings import bench_orderings

    torch.set_num_threads(1)

    def cap(sizes: list[int]) -> list[int]:
        return [s for s in sizes if max_n is None or s <= max_n]

    t_all = time.perf_counter()
    res: dict[str, Any] = {"meta": {
        "quick": quick, "python": platform.python_version(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "load_avg_1min": os.getloadavg()[0],
        "cpu": platform.processor() or platform.machine(), "cpu_model": cpu_model(), "cpu_vendor": cpu_vendor(),
        "cores": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S")}}
    def log(section: str) -> None:  # progress on stderr; stdout stays one JSON document
        print(f"[bench] {section} done at {time.perf_counter() - t_all:.1f} s", file=sys.stderr, flush=True)

    if only == "orderings":
        res["orderings"] = bench_orderings(quick, max_n)
        res["meta"]["bench_s"] = time.perf_counter() - t_all
        return res
    if only == "ann":
        res["ann"] = bench_ann(quick)
        res["meta"]["bench_s"] = time.perf_counter() - t_all
        return res
    if only == "data":
        res["data"] = bench_data(quick)
        res["meta"]["bench_s"] = time.perf_counter() - t_all
        return res
    if only == "live":
        from .bench_live import bench_live_only
        res["live"] = bench_live_only(quick)
        res["meta"]["bench_s"] = time.perf_counter() - t_all
        return res
    if only == "at_size":  # minutes at 1M rows: only on its own, never in the full run
        from .bench_at_size import bench_at_size
        res["at_size"] = bench_at_size(rows or 1_000_000)
        res["meta"]["bench_s"] = time.perf_counter() - t_all
        return res
    res["fit_spec"], eng, live = bench_fit_spec(1 if quick else 3)
    log("fit_spec")
    res["training"] = {"spec_48": bench_training(48, 24),
                       "large": bench_training(2000 if quick else 10_000, 6 if quick else 20)}
    log("training")
    res["pseudo_timeline"] = bench_timeline(
        exact_sizes=cap([48, 1000, 10_000] if quick else [48, 1000, 10_000, 20_000, 50_000]),
        allpairs_max=10_000, approx_quality=cap([20_000] if quick else [20_000, 50_000]),
        approx_only=cap([] if quick else [100_000, 1_000_000]), runs=3 if quick else 5)
    log("pseudo_timeline")
    res["orderings"] = bench_orderings(quick, max_n)
    log("orderings")
    res["predict_live"] = bench_live(eng, live, 500 if quick else 3000)
    res["predict_batch"] = bench_batch(eng, live, 4096 if quick else 16_384, 1 if quick else 3)
    from .bench_live import bench_batch_threads, bench_live_side_by_side
    from .synthetic import make_regime_series
    spec_train = make_regime_series(64 * 48 + 64 * 64, n_features=6, seed=0).data[: 64 * 48]  # fit_spec's blocks
    res["predict_live_side_by_side"] = bench_live_side_by_side(eng, spec_train, live, 500 if quick else 2000,
                                                               3 if quick else 5)
    res["predict_batch_threads"] = bench_batch_threads(eng, live, 4096 if quick else 16_384, 1 if quick else 3)
    res["registry_large"] = bench_registry(eng, live, 100_000 if quick else 1_000_000, 100 if quick else 300)
    log("predict_live, predict_batch, registry_large")
    res["ann"] = bench_ann(quick)
    log("ann")
    res["data"] = bench_data(quick)
    log("data")
    res["gpu"] = bench_gpu()
    res["peak_rss_mb"] = peak_rss_mb()
    res["targets"] = target_table(res)
    res["meta"]["bench_s"] = time.perf_counter() - t_all
    return res


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmarks and print JSON")
    p.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    p.add_argument("--max-n", type=int, default=None, help="skip pseudo-timeline sizes above this many blocks")
    p.add_argument("--only", choices=["orderings", "ann", "data", "live", "at_size"], default="",
                   help="run only this section")
    p.add_argument("--rows", type=int, default=None, help="rows of the generated file for --only at_size (1,000,000)")
    p.add_argument("--out", default="", help="also write the JSON to this file")
    p.add_argument("--from", dest="from_file", default="", help="render a saved JSON instead of measuring")
    p.add_argument("--markdown", action="store_true", help="print the README performance table, not JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.from_file:
        with open(args.from_file) as f:
            res = json.load(f)
    else:
        res = run_all(quick=args.quick, max_n=args.max_n, only=args.only, rows=args.rows)
    text = json.dumps(res, indent=1, default=float)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(to_markdown(res) if args.markdown else text)
    sys.stdout.flush()
    return 0
